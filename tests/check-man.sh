#!/bin/sh
# check-man.sh - the man pages, checked by `make check`:
#  1. man/irfw.ini.5 (committed, installed without running anything of the
#     build, so that a cross build can install it) is what
#     scripts/gen-man.sh makes from the options tables: not stale;
#  2. every page renders without a warning, as lintian and man(1) would
#     complain: with man-db's man as lintian runs it (its environment, a
#     120-column page: tbl's warnings depend on where a page breaks), else
#     with groff -ww.
# Skips the first check (alone) in a build with some plugin disabled.
set -u
src=${IRFW_TEST_SRCDIR:?}
build=${IRFW_TEST_BUILDDIR:?}
fail=0

render() {
	if command -v man >/dev/null 2>&1 && man --help 2>&1 | grep -q -- --warnings; then
		env -i PATH="$PATH" LC_ALL=C.UTF-8 MANROFFSEQ= MANWIDTH=120 \
			man --warnings -E UTF-8 -l -Tutf8 -Z "$1" 2>&1 >/dev/null
	else
		LC_ALL=C.UTF-8 groff -t -ww -man -Tutf8 "$1" 2>&1 >/dev/null
	fi
}

if command -v groff >/dev/null 2>&1; then
	for page in "$src"/man/irfw.1 "$src"/man/irfw.ini.5 "$src"/man/irfw-plugin.7; do
		msgs=$(render "$page")
		if [ -n "$msgs" ]; then
			echo "FAIL: ${page#"$src"/} does not render cleanly:"; echo "$msgs" | head -20; fail=1
		else
			echo "ok: ${page#"$src"/} renders without warnings"
		fi
	done
else
	echo "skip: no groff here: the pages' rendering is not checked"
fi

. "$src/tests/generated.sh"
full_build_or_skip "irfw.ini(5)"
check_fresh man/irfw.ini.5 gen-man.sh
exit $fail
