#!/bin/sh
# check-layers.sh - the promises of the tree's layout, checked by `make check`:
#  1. libirfw.so exports exactly the functions its installed headers declare
#     with IRFW_EXPORT (the plugin SDK and the runner API), nothing else;
#  2. the lower layers include nothing from the layers above them:
#     core/base/ nothing of core/aws/ or the engine, core/aws/ nothing of
#     the engine (its include path has no engine folder, and no file may
#     reach one by a relative path either);
#  3. debian/libirfw1.symbols lists exactly those functions (dpkg-gensymbols
#     would fail the package build on any difference, much later);
#  4. the lower layers' archives call no irfw_ function defined above them.
set -u
src=${IRFW_TEST_SRCDIR:?}
build=${IRFW_TEST_BUILDDIR:?}
fail=0

lib=$build/.libs/libirfw.so
if [ -f "$lib" ]; then
	declared=$(cat "$src"/include/irfw/*.h |
		perl -0ne 'while (/IRFW_EXPORT\s+[^;{(#]*?\b(irfw_\w+)\s*\(/g) { print "$1\n" }' | sort -u)
	exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ && $3 !~ /^_/ {print $3}' | sort -u)
	extra=$(printf '%s\n' "$exported" | grep -vxF "$declared")
	missing=$(printf '%s\n' "$declared" | grep -vxF "$exported")
	if [ -n "$extra" ]; then
		echo "FAIL: libirfw.so exports symbols no installed header documents:"; echo "$extra"; fail=1
	fi
	if [ -n "$missing" ]; then
		echo "FAIL: declared with IRFW_EXPORT but not exported:"; echo "$missing"; fail=1
	fi
	[ $fail = 0 ] && echo "ok: libirfw.so exports the $(printf '%s\n' "$exported" | wc -l) documented functions"
	listed=$(sed -n 's/^ \(irfw_[a-z0-9_]*\)@Base .*/\1/p' "$src/debian/libirfw1.symbols" 2>/dev/null | sort -u)
	if [ ! -f "$src/debian/libirfw1.symbols" ]; then
		echo "ok: no debian/ here (a release tarball): the symbols file is checked in the repository"
	elif [ "$listed" != "$exported" ]; then
		echo "FAIL: debian/libirfw1.symbols differs from what libirfw.so exports (- listed, + exported):"
		printf '%s\n' "$listed" >"$build/symbols.listed"
		printf '%s\n' "$exported" >"$build/symbols.exported"
		diff "$build/symbols.listed" "$build/symbols.exported" | grep '^[<>]' | sed 's/^</-/; s/^>/+/'
		echo "(a new function is listed with the upstream version that adds it)"
		fail=1
	else
		echo "ok: debian/libirfw1.symbols lists the same functions"
	fi
else
	echo "FAIL: $lib not built"; fail=1
fi

# Engine headers: everything directly in core/ (and core/engine/, core/cli/).
engine_headers=$(cd "$src/core" && ls *.h 2>/dev/null; cd "$src/core" && ls engine/*.h cli/*.h 2>/dev/null)
for layer in base aws; do
	for f in "$src"/core/$layer/*.[ch]; do
		[ -f "$f" ] || continue
		incs=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
		for i in $incs; do
			base=$(basename "$i")
			case "$i" in
			../*|*/../*) echo "FAIL: $f includes $i: no relative way out of core/$layer/"; fail=1 ;;
			esac
			if [ "$layer" = base ] && [ -f "$src/core/aws/$base" ] && [ ! -f "$src/core/base/$base" ]; then
				echo "FAIL: $f (base) includes $i of the AWS layer"; fail=1
			fi
			for e in $engine_headers; do
				if [ "$base" = "$(basename "$e")" ] && [ ! -f "$src/core/$layer/$base" ] && [ "$base" != config.h ]; then
					echo "FAIL: $f ($layer) includes the engine header $i"; fail=1
				fi
			done
		done
	done
done
[ $fail = 0 ] && echo "ok: core/base and core/aws include nothing from the layers above"

# 4. The lower layers call nothing of the layers above either: an include can come in by way of the SDK
#    header, which declares the engine's functions too, so the libraries'
#    symbols are what tells.  Every irfw_ function a lower layer's archive
#    calls is defined in that layer or one below it.
syms() { nm "$1" 2>/dev/null | awk -v k="$2" 'NF >= 2 && $(NF-1) ~ k && $NF ~ /^irfw_/ {print $NF}' | sort -u; }
below=
for layer in base aws; do
	a=$build/.libs/libirfw_$layer.a
	if [ ! -f "$a" ]; then
		echo "FAIL: $a not built"; fail=1; continue
	fi
	below=$(printf '%s\n%s\n' "$below" "$(syms "$a" '^[TDBRVW]$')" | sort -u)
	up=$(syms "$a" '^U$' | grep -vxF "$below")
	if [ -n "$up" ]; then
		echo "FAIL: core/$layer calls functions of a layer above it:"; echo "$up"; fail=1
	fi
done
[ $fail = 0 ] && echo "ok: core/base and core/aws call nothing from the layers above"
exit $fail
