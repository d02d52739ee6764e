#!/bin/sh
# check-conf.sh - one source for every fact, checked by `make check`:
#  1. conf/irfw.ini (committed, installed as the sample site file) is what
#     scripts/gen-conf.sh makes from the options tables: not stale;
#  2. the plugin list is configure.ac's: plugins/Makemodule.am includes
#     exactly those plugins, and each has its folder.
# Skips (77) the first check in a build with some plugin disabled.
set -u
src=${IRFW_TEST_SRCDIR:?}
build=${IRFW_TEST_BUILDDIR:?}
fail=0

all=$(sed -n 's/^IRFW_PLUGIN(\[\([a-z0-9_]*\)\].*/\1/p' "$src/configure.ac" | sort)
inc=$(sed -n 's|^include plugins/\([a-z0-9_]*\)/Makemodule.am|\1|p' "$src/plugins/Makemodule.am" | sort)
if [ "$all" != "$inc" ]; then
	echo "FAIL: plugins/Makemodule.am includes [$(echo $inc)], configure.ac knows [$(echo $all)]"
	fail=1
fi
for p in $all; do
	[ -f "$src/plugins/$p/$p.c" ] && [ -f "$src/plugins/$p/Makemodule.am" ] ||
		{ echo "FAIL: configure.ac's plugin $p has no plugins/$p/$p.c and Makemodule.am"; fail=1; }
done

. "$src/tests/generated.sh"
full_build_or_skip "the sample site file"
check_fresh conf/irfw.ini gen-conf.sh
[ $fail = 0 ] && echo "ok: the plugin list is configure.ac's"
exit $fail
