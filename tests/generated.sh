# generated.sh - sourced by check-conf.sh and check-man.sh: a committed file
# that a script makes from the options tables must be what it makes now.
#   full_build_or_skip WHAT  - exit 77 (or $fail) unless every plugin of
#                              configure.ac is built here
#   check_fresh FILE GEN     - FILE (relative to $src) against
#                              `sh $src/scripts/GEN $build OUT`; sets fail=1
full_build_or_skip()
{
	for p in $(sed -n 's/^IRFW_PLUGIN(\[\([a-z0-9_]*\)\].*/\1/p' "$src/configure.ac"); do
		if [ ! -f "$build/plugins/$p.la" ]; then
			echo "SKIP: plugin $p is not built here: $1 is checked in full builds only"
			[ "$fail" = 0 ] && exit 77
			exit "$fail"
		fi
	done
}

check_fresh()
{
	gen_out=$(mktemp)
	if ! sh "$src/scripts/$2" "$build" "$gen_out"; then
		echo "FAIL: scripts/$2 failed"
		fail=1
	elif ! diff -u "$src/$1" "$gen_out" >"$gen_out.diff"; then
		head -40 "$gen_out.diff"
		echo "FAIL: $1 is stale: run scripts/$2 $build and commit it"
		fail=1
	else
		echo "ok: $1 is what the options tables make"
	fi
	rm -f "$gen_out" "$gen_out.diff"
}
