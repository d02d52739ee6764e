#!/bin/bash
# Build the example plugin of examples/ the way a third party would, against
# an INSTALLED irfw and nothing of this source tree, then run it with the
# installed irfw against moto:
#
#   scripts/test-example.sh BUILDDIR        (a configured and built tree)
#
# 1. `make -C BUILDDIR install DESTDIR=<tmp>/root`: the SDK (irfw/irfw.h,
#    libirfw.so, irfw.pc), the irfw binary and the in-tree plugins, staged.
# 2. A copy of the staged irfw.pc whose absolute paths point into the stage.
#    (PKG_CONFIG_SYSROOT_DIR is the usual tool for a stage, but pkgconf
#    prefixes it to the flags of every package, so libcjson's
#    -I/usr/include/cjson would point into the stage too, and to
#    --variable=plugindir as well.)
# 3. The example as installed with the documentation (checked to be all of
#    examples/), copied to <tmp>/src and built there with its own Makefile,
#    warning-free with cc and clang; the script proves that irfw.h came
#    from the stage (the compiler's dependency list), that no -I or -L
#    names the source or build tree, that the module's libirfw is the
#    staged one, and that it exports its entry point alone.
# 4. `make install` into the staged plugin folder, and once more with a
#    DESTDIR to check that DESTDIR is honoured.
# 5. tests/integration/test_example.py with the installed binary, its
#    library folder and the example's .so in IRFW_EXAMPLE_*; pytest's
#    summary line is the last line printed, its status the script's.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd -P)
build=$(cd "$1" && pwd -P)
[ -f "$build/Makefile" ] || { echo "$0: $build is not a configured build tree" >&2; exit 2; }
fail() { echo "test-example: $*" >&2; exit 1; }

# irfw refuses plugins in group- or world-writable folders: make sure ours
# are not, whatever the caller's umask.
umask 022
tmp=$(mktemp -d "${TMPDIR:-/tmp}/irfw-example.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

echo "== install $build into a stage"
make -C "$build" install DESTDIR="$root" >"$tmp/install.out" 2>&1 || { tail -30 "$tmp/install.out"; exit 1; }
pc=$(find "$root" -name irfw.pc -path '*/pkgconfig/*' | head -1)
bin=$(find "$root" -path '*/bin/irfw' -type f | head -1)
[ -n "$pc" ] && [ -n "$bin" ] || fail "no irfw.pc or bin/irfw under the stage"

mkdir "$tmp/pkgconfig"
sed -E "s|^([A-Za-z_]+)=/|\1=$root/|" "$pc" >"$tmp/pkgconfig/irfw.pc"
export PKG_CONFIG_PATH="$tmp/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
libdir=$(pkg-config --variable=libdir irfw)
includedir=$(pkg-config --variable=includedir irfw)
plugindir=$(pkg-config --variable=plugindir irfw)
case "$plugindir" in "$root"/*) ;; *) fail "plugindir $plugindir is not in the stage" ;; esac

echo "== build the installed example out of tree against the staged SDK"
# The copy `make install` put with the documentation, which is what a user
# of a distribution's package has; it must be the whole of examples/.
docex=$(find "$root" -type d -path '*/doc/irfw/examples' | head -1)
[ -n "$docex" ] || fail "make install did not install examples/ with the documentation"
diff -r -x .gitignore -x '*.so' -x '*.d' "$src/examples" "$docex" ||
	fail "the installed examples differ from examples/ (list new files in Makefile.am)"
cp -R "$docex" "$tmp/src"
ex=$tmp/src/site_tag
# Warning-free with clang too, when it is there (a third party's compiler
# is not ours to choose); the module kept is built with the default one.
if command -v clang >/dev/null; then
	make -C "$ex" CC=clang >"$tmp/make.out" 2>&1 || { cat "$tmp/make.out"; exit 1; }
	! grep -E ': (warning|error):' "$tmp/make.out" || fail "the example does not build cleanly with clang"
	make -C "$ex" clean >/dev/null
fi
# CPPFLAGS=-MD: the compiler writes the headers it read to site_tag.d.
make -C "$ex" CPPFLAGS=-MD >"$tmp/make.out" 2>&1 || { cat "$tmp/make.out"; exit 1; }
cat "$tmp/make.out"
! grep -E ': (warning|error):' "$tmp/make.out" || fail "the example does not build cleanly"
if grep -E -e "-[IL] *($src|$build)([/ ]|\$)" "$tmp/make.out"; then
	fail "the example's build reached into the source or build tree"
fi
header=$(tr ' \\' '\n\n' <"$ex/site_tag.d" | grep '/irfw/irfw\.h$' | head -1)
[ "$header" = "$includedir/irfw/irfw.h" ] || fail "irfw.h came from '$header', not $includedir"
echo "irfw.h from $header"
lib=$(LD_LIBRARY_PATH="$libdir" ldd "$ex/site_tag.so" | awk '$1 ~ /^libirfw\.so/ { print $3 }')
[ "$lib" = "$libdir/${lib##*/}" ] || fail "site_tag.so binds libirfw at '$lib', not in $libdir"
echo "libirfw from $lib"
exported=$(nm -D --defined-only "$ex/site_tag.so" | awk '{ print $3 }')
[ "$exported" = site_tag_LTX_irfw_plugin_get ] || fail "site_tag.so exports more than its entry point: $exported"

echo "== install the example"
make -C "$ex" install >/dev/null
so=$plugindir/site_tag.so
[ -f "$so" ] || fail "make install did not put site_tag.so in $plugindir"
make -C "$ex" install DESTDIR="$tmp/stage2" >/dev/null
[ -f "$tmp/stage2$plugindir/site_tag.so" ] || fail "make install DESTDIR=... did not honour DESTDIR"
echo "installed $so"

echo "== run it with the installed irfw against moto"
cd "$src"
# The harness (conftest.py) wants a binary; the tests run IRFW_EXAMPLE_BIN.
IRFW_BUILDDIR="$build" IRFW_BIN="$bin" \
	IRFW_EXAMPLE_BIN="$bin" IRFW_EXAMPLE_LIBDIR="$libdir" \
	IRFW_EXAMPLE_PLUGINDIR="$plugindir" IRFW_EXAMPLE_PLUGIN="$so" \
	python3 -m pytest -q -p no:cacheprovider -rs tests/integration/test_example.py
