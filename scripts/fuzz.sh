#!/bin/bash
# Build the libFuzzer targets of tests/fuzz/ and run each for a while:
#   scripts/fuzz.sh [SECONDS [TARGET...]]
# SECONDS per target (default: $FUZZ_SECONDS, else 60); TARGETs are names
# of tests/fuzz/fuzz_<name>.c (default: all of them).  Fails on any crash,
# leak, sanitizer report or timeout, naming the target and keeping the
# input that did it in $BUILD/fuzz-artifacts/.
#
# The build is its own out-of-tree configure of this source tree with
# clang (-fsanitize=fuzzer-no-link,address,undefined on the libraries,
# -fsanitize=fuzzer,address,undefined on the targets), in
# $IRFW_FUZZ_BUILDDIR (default: build-fuzz/ beside the sources), rebuilt
# incrementally.  Each target fuzzes a copy of its seed corpus
# (tests/fuzz/<name>/) in a temporary folder, so the repository's corpus
# never grows by itself; the crash-* inputs kept there are replayed on
# every run.  FUZZ_JOBS targets run at a time (default 2), FUZZ_CC is the
# compiler (default clang).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
b=${IRFW_FUZZ_BUILDDIR:-$src/build-fuzz}
jobs=${FUZZ_JOBS:-2}
cc=${FUZZ_CC:-clang}

die() {
	echo "fuzz.sh: $*" >&2
	exit 1
}
case $secs in '' | *[!0-9]*) die "SECONDS must be a whole number, not '$secs'" ;; esac

# --- the toolchain: clang with its libFuzzer runtime
command -v "$cc" >/dev/null || die "$cc not found: install clang (Debian: apt-get install clang)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/irfw-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
	'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
	>"$tmp/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" >"$tmp/probe.err" 2>&1; then
	major=$("$cc" -dumpversion 2>/dev/null | cut -d. -f1)
	sed -n 1,5p "$tmp/probe.err" >&2
	die "$cc cannot link libFuzzer (-fsanitize=fuzzer): install clang's runtime libraries," \
		"package libclang-rt-${major:-N}-dev (Debian 12: libclang-rt-14-dev; or libclang-rt-dev for the default clang)"
fi

# --- the libraries, instrumented
[ -f "$src/config.status" ] &&
	die "$src is configured in place; an out-of-tree build needs it clean (make distclean there)"
[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh >/dev/null 2>&1)
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
lib_cflags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $san"
stamp="$cc $lib_cflags"
if [ -f "$b/Makefile" ]; then
	[ -f "$b/fuzz-flags" ] || die "$b is a build fuzz.sh did not make: set IRFW_FUZZ_BUILDDIR to another folder"
	[ "$(cat "$b/fuzz-flags")" = "$stamp" ] || rm -rf "$b" # made with other flags
fi
mkdir -p "$b"
if [ ! -f "$b/Makefile" ]; then
	echo "fuzz.sh: configuring $b ($cc)"
	echo "$stamp" >"$b/fuzz-flags"
	# Static only: the targets link the convenience libraries, and libtool
	# then compiles each source once instead of twice.
	(cd "$b" && "$src/configure" CC="$cc" CFLAGS="$lib_cflags" LDFLAGS="$san" --disable-shared \
		>configure.out 2>&1) || { tail -30 "$b/configure.out"; die "configure failed (see $b/configure.out)"; }
fi
echo "fuzz.sh: building the libraries"
make -C "$b" -j"$jobs" libirfw_core.la >"$b/make.out" 2>&1 ||
	{ grep -E 'error|warning' "$b/make.out" | head -40; tail -20 "$b/make.out"; die "build failed (see $b/make.out)"; }

# --- the targets
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in "$src"/tests/fuzz/fuzz_*.c; do
		t=$(basename "$f" .c)
		targets+=("${t#fuzz_}")
	done
fi
cjson=$(pkg-config --cflags libcjson)
mkdir -p "$b/fuzz"
run=()
for t in "${targets[@]}"; do
	f="$src/tests/fuzz/fuzz_$t.c"
	[ -f "$f" ] || die "no target $t (no $f)"
	[ -d "$src/tests/fuzz/$t" ] || die "target $t has no seed corpus tests/fuzz/$t/"
done
echo "fuzz.sh: building ${targets[*]}"
for t in "${targets[@]}"; do
	# shellcheck disable=SC2086 # cjson holds several words
	"$cc" -std=c11 -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer $san \
		-I"$b" -I"$src/include" -I"$src/core" -I"$src/core/base" -I"$src/core/aws" $cjson \
		-c "$src/tests/fuzz/fuzz_$t.c" -o "$b/fuzz/fuzz_$t.o" &
done
wait_all() {
	local st=0
	for p in $(jobs -p); do wait "$p" || st=1; done
	return $st
}
wait_all || die "a target did not compile"
for t in "${targets[@]}"; do
	# libtool brings the libraries' own dependencies (curl, OpenSSL, cJSON,
	# inih, expat, ltdl) from the .la files.
	"$b/libtool" --silent --tag=CC --mode=link "$cc" -fsanitize=fuzzer $san -o "$b/fuzz/fuzz_$t" \
		"$b/fuzz/fuzz_$t.o" "$b/libirfw_core.la" >"$b/fuzz/link-$t.out" 2>&1 ||
		{ cat "$b/fuzz/link-$t.out"; die "$t did not link"; }
	# A stub (a target whose code under test does not exist yet) is kept
	# compiling, not run.
	if grep -q 'IRFW_FUZZ_STUB' "$src/tests/fuzz/fuzz_$t.c"; then
		echo "fuzz.sh: $t: a stub (tests/fuzz/README.md), built, not run"
	else
		run+=("$t")
	fi
done

# --- the runs, $jobs at a time
fuzz_one() {
	local t=$1 dict=()
	mkdir -p "$tmp/corpus/$t" "$tmp/artifacts/$t"
	cp -R "$src/tests/fuzz/$t/." "$tmp/corpus/$t/"
	[ -f "$src/tests/fuzz/$t.dict" ] && dict=(-dict="$src/tests/fuzz/$t.dict")
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$b/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$tmp/artifacts/$t/" "${dict[@]}" "$tmp/corpus/$t" >"$tmp/$t.log" 2>&1
}
rm -rf "$b/fuzz-artifacts"
echo "fuzz.sh: fuzzing ${#run[@]} targets for ${secs}s each, $jobs at a time"
failed=()
i=0
while [ $i -lt ${#run[@]} ]; do
	batch=("${run[@]:i:jobs}")
	pids=()
	for t in "${batch[@]}"; do
		fuzz_one "$t" &
		pids+=($!)
	done
	for k in "${!batch[@]}"; do
		t=${batch[$k]}
		if wait "${pids[$k]}"; then
			runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log")
			cov=$(grep -E '^#[0-9]+' "$tmp/$t.log" | tail -1 | grep -oE 'cov: [0-9]+' || true)
			n=$(find "$tmp/corpus/$t" -type f | wc -l)
			echo "fuzz.sh: $t: ok, ${runs:-?} inputs, ${cov:-cov: ?}, corpus $n"
		else
			failed+=("$t")
			mkdir -p "$b/fuzz-artifacts/$t"
			cp -R "$tmp/artifacts/$t/." "$b/fuzz-artifacts/$t/" 2>/dev/null || true
			cp "$tmp/$t.log" "$b/fuzz-artifacts/$t.log"
			echo "fuzz.sh: $t: FAILED"
			grep -E 'ERROR|SUMMARY|runtime error|promise broken|#[0-9]+ +0x[0-9a-f]+ in ' "$tmp/$t.log" |
				grep -v -e 'in fuzzer::' -e '__libc_start' -e ' in _start ' | head -30 || true
			echo "fuzz.sh: $t: log $b/fuzz-artifacts/$t.log, input(s):" \
				"$(ls "$b/fuzz-artifacts/$t" 2>/dev/null | sed "s|^|$b/fuzz-artifacts/$t/|" | tr '\n' ' ')"
		fi
	done
	i=$((i + jobs))
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz.sh: FAILED: ${failed[*]} (reproduce: $b/fuzz/fuzz_<target> <input>;" \
		"once fixed, keep the input as tests/fuzz/<target>/crash-<what>)"
	exit 1
fi
echo "fuzz.sh: ${#run[@]} targets fuzzed ${secs}s each: no crash, leak or sanitizer report"
