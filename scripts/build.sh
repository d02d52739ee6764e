#!/bin/sh
# Configure and build irfw out of tree: scripts/build.sh [BUILDDIR] [configure args...]
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
b=${1:-$src/build}
[ $# -gt 0 ] && shift
[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh >/dev/null 2>&1)
mkdir -p "$b"
cd "$b"
if [ ! -f Makefile ]; then
	"$src/configure" "$@" >configure.out 2>&1 || { tail -40 configure.out; exit 1; }
fi
make -j"$(nproc)" >make.out 2>&1 || { grep -E 'error|warning' make.out | head -60; tail -20 make.out; exit 1; }
