#!/bin/sh
# Install what building and testing irfw needs, on Debian/Ubuntu, once:
# packages already present are not touched.  Safe to run again.
set -e
APT_PKGS="build-essential autoconf automake libtool libtool-bin pkg-config
  libcurl4-openssl-dev libssl-dev libcjson-dev libltdl-dev libinih-dev
  libexpat1-dev libcmocka-dev valgrind clang clang-format cppcheck python3 python3-pip curl
  debhelper lintian bash-completion groff-base libclang-rt-14-dev python3-jsonschema time"
# debhelper, lintian: scripts/test-deb.sh builds and checks the Debian
# packages (debian/control's Build-Depends are the list above's);
# bash-completion: its helpers, for tests/integration/test_completion.py;
# libclang-rt-14-dev: libFuzzer for clang 14 (Debian 12), scripts/fuzz.sh;
# python3-jsonschema: tests/integration/test_output.py checks -o json
# against doc/irfw-output.schema.json; time: GNU time, the peak memory
# figure of bench/run.py.
MOTO_VERSION=5.2.1

missing=""
for p in $APT_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "bootstrap: installing Debian packages:$missing"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY -c "import moto, boto3, pytest, flask; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
	echo "bootstrap: installing moto[server]==$MOTO_VERSION, boto3, pytest"
	# Debian's own python refuses system-wide pip installs unless told.
	$PY -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" boto3 pytest 2>/dev/null ||
		$PY -m pip install --quiet --disable-pip-version-check --break-system-packages \
			"moto[server]==$MOTO_VERSION" boto3 pytest
fi
# tests/integration/test_output.py validates -o json against
# doc/irfw-output.schema.json: Debian's python3-jsonschema above, else
# (another python than Debian's) from PyPI.
if ! $PY -c "import jsonschema" 2>/dev/null; then
	echo "bootstrap: installing jsonschema"
	$PY -m pip install --quiet --disable-pip-version-check jsonschema 2>/dev/null ||
		$PY -m pip install --quiet --disable-pip-version-check --break-system-packages jsonschema
fi
