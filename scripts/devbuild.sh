#!/bin/sh
# Private out-of-tree development build with only some plugins enabled:
#   scripts/devbuild.sh BUILDDIR [PLUGIN ...]
# Builds irfw, libirfw, the named plugins and the test fixtures in BUILDDIR
# (the source tree is left alone, so several builds can run side by side).
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
b=$1; shift
all=$(sed -n 's/^IRFW_PLUGIN(\[\([a-z0-9_]*\)\].*/\1/p' "$src/configure.ac")
flags=""
for p in $all; do
	case " $* " in *" $p "*) flags="$flags --enable-$p" ;; *) flags="$flags --disable-$p" ;; esac
done
[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh)
mkdir -p "$b"
cd "$b"
[ -f Makefile ] || "$src/configure" --enable-werror $flags >configure.out 2>&1 || { tail -30 configure.out; exit 1; }
make -j"$(nproc)" >make.out 2>&1 || { grep -E 'error|warning' make.out | head -40; exit 1; }
for f in good badmajor newminor shortsize noentry misnamed badopts awscall contain unresolved; do echo tests/fixtures/$f.la; done | xargs make -j"$(nproc)" >>make.out 2>&1
echo "built in $b"
