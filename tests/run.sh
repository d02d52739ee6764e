#!/bin/bash
# The whole test suite, from a fresh clone on a fresh Debian machine:
#   tests/run.sh
# 1. installs what is missing (scripts/bootstrap.sh),
# 2. builds with gcc and with clang, warnings as errors, and checks the
#    format (clang-format) and lint (cppcheck),
# 3. runs the C unit tests (make check), then again under ASan+UBSan, and
#    the integration suite against the sanitizer build,
# 4. runs `make distcheck`, fuzzes each libFuzzer target for 60 s
#    (IRFW_FUZZ_SECONDS), and builds, checks, installs and runs the
#    Debian packages (scripts/test-deb.sh),
# 5. runs the irfw CLI once under valgrind against moto,
# 6. runs the fleet benchmark's smoke mode (bench/run.py --smoke), builds
#    examples/ against a `make install DESTDIR=` tree and runs it,
# 7. runs the integration suite (pytest, moto on 127.0.0.1), whose summary
#    line is the last line printed.
# IRFW_QUICK=1 skips the clang, sanitizer, distcheck, fuzz and Debian builds.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
scripts/bootstrap.sh

step "build (gcc, -Werror)"
./autogen.sh >/dev/null 2>&1
scripts/build.sh "$src/build" --enable-werror
step "format and lint (clang-format, cppcheck)"
make -C build format-check >build/format.out 2>&1 || { tail -40 build/format.out; echo "run: make -C build format"; exit 1; }
make -C build lint >build/lint.out 2>&1 || { tail -40 build/lint.out; exit 1; }
echo "formatted; cppcheck found nothing"

step "unit tests"
make -C build -j"$(nproc)" check >build/check.out 2>&1 || { cat build/check.out; for f in build/tests/*.log; do echo "--- $f"; tail -30 "$f"; done; exit 1; }
grep -E '^(PASS|FAIL|ERROR|SKIP|# )' build/check.out

if [ "${IRFW_QUICK:-0}" != 1 ]; then
	step "build (clang, -Werror)"
	CC=clang scripts/build.sh "$src/build-clang" --enable-werror

	step "unit tests under ASan+UBSan"
	san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g -O1"
	CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" scripts/build.sh "$src/build-asan" --enable-werror
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		make -C build-asan -j"$(nproc)" check >build-asan/check.out 2>&1 ||
		{ cat build-asan/check.out; for f in build-asan/tests/*.log; do echo "--- $f"; tail -40 "$f"; done; exit 1; }
	grep -E '^(PASS|FAIL|ERROR|SKIP|# )' build-asan/check.out

	step "integration tests against the ASan+UBSan build (leaks fail a run)"
	# The sanitizers write their reports to files, whole: a test's
	# assertion message shortens the stderr it quotes, and a report from
	# a process whose exit status a test does not check still fails here.
	san_logs="$src/build-asan/sanitizer"
	rm -rf "$san_logs" && mkdir -p "$san_logs"
	show_san() { for f in "$san_logs"/*; do [ -e "$f" ] && { echo "--- $f"; head -60 "$f"; }; done; }
	ASAN_OPTIONS="detect_leaks=1:log_path=$san_logs/asan" \
		UBSAN_OPTIONS="print_stacktrace=1:log_path=$san_logs/ubsan" \
		IRFW_BUILDDIR="$src/build-asan" python3 -m pytest -q -p no:cacheprovider \
		tests/integration >build-asan/integration.out 2>&1 ||
		{ tail -100 build-asan/integration.out; show_san; exit 1; }
	if compgen -G "$san_logs/*" >/dev/null; then
		echo "sanitizer reports during the integration tests:"
		show_san
		exit 1
	fi
	tail -1 build-asan/integration.out

	step "make distcheck"
	make -C build distcheck >build/distcheck.out 2>&1 || { tail -60 build/distcheck.out; exit 1; }
	grep -E 'archives ready|irfw-.*tar.gz' build/distcheck.out | head -3

	step "fuzzing: each libFuzzer target for ${IRFW_FUZZ_SECONDS:-60} s (scripts/fuzz.sh)"
	IRFW_FUZZ_BUILDDIR="$src/build-fuzz" scripts/fuzz.sh "${IRFW_FUZZ_SECONDS:-60}" >build/fuzz.out 2>&1 ||
		{ tail -60 build/fuzz.out; exit 1; }
	tail -1 build/fuzz.out

	step "Debian packages: built, lintian, installed, run against moto (scripts/test-deb.sh)"
	scripts/test-deb.sh >build/deb.out 2>&1 || { tail -80 build/deb.out; exit 1; }
	tail -1 build/deb.out
fi

step "irfw under valgrind"
vg="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
# Loading every plugin and printing the plan, then a full run against moto.
IRFW_PLUGIN_PATH="$src/build/plugins" build/libtool --mode=execute $vg \
	build/irfw --conf conf/irfw.ini --plan -i i-0123456789abcdef0 >/dev/null
IRFW_BUILDDIR="$src/build" IRFW_VALGRIND=1 python3 -m pytest -q -p no:cacheprovider \
	tests/integration/test_cli.py tests/integration/test_default_site.py -k "valgrind or one_liner" \
	>build/valgrind.out 2>&1 || { tail -60 build/valgrind.out; exit 1; }
tail -1 build/valgrind.out

step "the fleet benchmark, smoke run (bench/run.py --smoke: 3 instances, mixed world)"
python3 bench/run.py --smoke --irfw build/irfw >build/bench-smoke.out 2>&1 || { tail -60 build/bench-smoke.out; exit 1; }
tail -3 build/bench-smoke.out

step "the out-of-tree example plugin, built and run against the installed SDK"
scripts/test-example.sh "$src/build" >build/example.out 2>&1 || { tail -60 build/example.out; exit 1; }
tail -1 build/example.out

step "integration tests (moto)"
IRFW_BUILDDIR="$src/build" exec python3 -m pytest -p no:cacheprovider -q -rs tests/integration
