#!/bin/bash
# The irfw demo, on a fresh machine: installs what is missing, builds, starts
# the AWS emulator (moto) on 127.0.0.1, seeds an incident world, runs
#   irfw --conf conf/demo.ini -i <web server> -i <spot worker>
# with its progress, and prints what changed and where the evidence is.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
echo "=== Building irfw (out of tree, in build/)"
./autogen.sh >/dev/null 2>&1
scripts/build.sh "$PWD/build"
exec python3 scripts/demo.py --irfw "$PWD/build/irfw" --plugins "$PWD/build/plugins" --workdir "$PWD"
