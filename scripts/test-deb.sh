#!/bin/bash
# The Debian packages, end to end, on this machine (CI: root, throwaway):
#
#   scripts/test-deb.sh
#
# 1. copies the tree (git's files, with uncommitted changes) to a temporary
#    folder and installs what debian/control's Build-Depends lacks;
# 2. builds the packages there: dpkg-buildpackage -us -uc -b (make check
#    included);
# 3. runs lintian on them: any error fails, and so does a warning that
#    debian/README.source does not list and justify;
# 4. installs them (dpkg -i) and uses the INSTALLED files only, through a
#    pytest module this script writes (IRFW_BIN=/usr/bin/irfw,
#    IRFW_PLUGIN_PATH unset): the package contents (no .la, the conffile,
#    the 0700 case folder, the ABI dependencies, the library's exports, the
#    man pages, the bash completion), `irfw plugins`, the example plugin
#    built against the installed SDK, `irfw check` with a site file
#    pointing at moto (which it starts itself), one real run of the
#    installed default site against moto, `make install`'s handling of an
#    edited irfw.ini; then removes irfw-plugin-notify-slack and checks the
#    warning that names the package, and purges everything.
# pytest's summary line is the last line printed, its status the script's.
# About 5 minutes on 2 cores; the whole has a budget of 470 s
# (IRFW_DEB_BUDGET), each stage what is left of it.  IRFW_KEEP=1 keeps the
# temporary folder (the tree, the build, the .debs).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd -P)
fail() { echo "test-deb: $*" >&2; exit 1; }
step() { printf '\n=== %s (%ds)\n' "$*" "$SECONDS"; }

[ "$(id -u)" = 0 ] || fail "run as root, on a machine where installing and purging the irfw packages is fine"
command -v dpkg-buildpackage >/dev/null && command -v lintian >/dev/null && command -v dh >/dev/null ||
	fail "needs dpkg-dev, debhelper and lintian (scripts/bootstrap.sh installs them)"

# irfw refuses plugins in group- or world-writable folders.
umask 022
tmp=$(mktemp -d "${TMPDIR:-/tmp}/irfw-deb.XXXXXX")
chmod 0755 "$tmp"
packages=$(sed -n 's/^Package: //p' "$src/debian/control")
cleanup() {
	# After a failure: leave no irfw package behind on the machine.
	set +e
	local p installed=()
	for p in $packages; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.[^n]' && installed+=("$p")
	done
	[ ${#installed[@]} = 0 ] || dpkg --purge "${installed[@]}" >/dev/null 2>&1
	if [ "${IRFW_KEEP:-0}" = 1 ]; then echo "test-deb: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
# The whole script has a fixed budget (CI's step: under 8 minutes); each
# stage gets what is left of it.
budget=${IRFW_DEB_BUDGET:-470}
left() {
	local n=$((budget - SECONDS))
	[ $n -gt 10 ] || fail "over the time budget of ${budget}s"
	echo $n
}

version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
upstream=${version%-*}
tree=$tmp/irfw-$upstream

step "copy the tree to $tree"
mkdir "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -cf - -T -) | tar -xf - -C "$tree"
else
	tar -C "$src" --exclude='./build*' --exclude=./debian/build --exclude=.git -cf - . | tar -xf - -C "$tree"
fi
cd "$tree"
if ! dpkg-checkbuilddeps >/dev/null 2>&1; then
	echo "installing the build dependencies"
	export DEBIAN_FRONTEND=noninteractive
	apt-get build-dep -y -qq ./ >"$tmp/build-dep.out" 2>&1 ||
		{ apt-get update -qq && apt-get build-dep -y -qq ./ >"$tmp/build-dep.out" 2>&1; } ||
		{ tail -20 "$tmp/build-dep.out"; fail "cannot install the build dependencies"; }
fi
dpkg-checkbuilddeps

step "dpkg-buildpackage -us -uc -b"
# No -dbgsym packages: they are dh's, and cost time here.
export DEB_BUILD_OPTIONS="parallel=$(nproc) noddebs ${DEB_BUILD_OPTIONS:-}"
t=$(left)
timeout "$t" dpkg-buildpackage -us -uc -b >"$tmp/build.out" 2>&1 || {
	grep -E 'error|FAIL|warning: ' "$tmp/build.out" | head -40
	tail -40 "$tmp/build.out"
	for f in debian/build/tests/*.log; do [ -f "$f" ] && grep -q FAIL "$f" && { echo "--- $f"; tail -30 "$f"; }; done
	fail "the packages did not build (or the time budget ran out)"
}
changes=$tmp/irfw_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).changes
[ -f "$changes" ] || fail "no $changes"
grep -E '^(# (TOTAL|PASS|FAIL|SKIP|ERROR)|dpkg-deb: building)' "$tmp/build.out"

step "lintian"
t=$(left)
timeout "$t" lintian --fail-on error --tag-display-limit 0 "$changes" >"$tmp/lintian.out" 2>&1 || {
	cat "$tmp/lintian.out"
	fail "lintian reports errors"
}
grep -E '^[EWI]: ' "$tmp/lintian.out" || echo "lintian: nothing to report"
# Every warning must be listed, with its reason, in debian/README.source.
unjustified=$(sed -n 's/^W: [^:]*: \([a-z0-9-]*\).*/\1/p' "$tmp/lintian.out" | sort -u |
	while read -r tag; do grep -qw -- "$tag" debian/README.source || echo "$tag"; done)
[ -z "$unjustified" ] || fail "lintian warnings not justified in debian/README.source: $unjustified"

step "install the packages"
debs=()
for p in $packages; do debs+=("$tmp/${p}_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb"); done
# An earlier run's packages, if a failure left any.
for p in $packages; do dpkg-query -W "$p" >/dev/null 2>&1 && dpkg --purge "$p" >/dev/null 2>&1 || true; done
dpkg -i "${debs[@]}" >"$tmp/dpkg.out" 2>&1 || { cat "$tmp/dpkg.out"; fail "dpkg -i failed"; }
dpkg-query -W $packages
echo "\$ irfw plugins"
env -u IRFW_PLUGIN_PATH /usr/bin/irfw plugins

step "use the installed files (pytest)"
cat >"$tmp/test_installed.py" <<'PY'
"""The installed Debian packages, used as a user would.  The tests run in
file order: the last ones remove a plugin package, then purge everything."""
import gzip
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(os.environ["IRFW_SRC"])
TREE = Path(os.environ["IRFW_DEB_TREE"])
DEBDIR = Path(os.environ["IRFW_DEB_DIR"])
VERSION = os.environ["IRFW_DEB_VERSION"]
PACKAGES = os.environ["IRFW_DEB_PACKAGES"].split()
IRFW = "/usr/bin/irfw"
os.environ["IRFW_BIN"] = IRFW  # read by the harness at import
sys.path.insert(0, str(SRC / "tests" / "integration"))
from conftest import Moto, World  # noqa: E402
from screenshot_proxy import ScreenshotProxy  # noqa: E402

ARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_ARCH"], capture_output=True, text=True).stdout.strip()
TRIPLET = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True,
                         text=True).stdout.strip()
LIBDIR = Path("/usr/lib") / TRIPLET
PLUGINDIR = LIBDIR / "irfw" / "plugins"
CORE = {"spot", "asg", "elb", "isolate", "protect", "capture", "snapshot", "tag", "upload"}
OPTIONAL = {"iam_profile": "irfw-plugin-iam-profile", "notify_sns": "irfw-plugin-notify-sns",
            "notify_slack": "irfw-plugin-notify-slack", "eip": "irfw-plugin-eip"}
CASES = Path("/var/lib/irfw/cases")


def sh(*cmd, check=True, env=None, cwd=None, input=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, input=input)
    if check:
        assert p.returncode == 0, f"{cmd}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def user_env(**extra):
    """A responder's environment: no IRFW_* (no plugin path), no AWS_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IRFW_"))}
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def field(pkg, name):
    return sh("dpkg-query", "-W", "-f", "${" + name + "}", pkg).stdout


def abi():
    m = re.search(r"plugin ABI (\d+)\.(\d+)", sh(IRFW, "--version").stdout)
    assert m
    return m.group(1), m.group(2)


def irfw(world, *args, **kw):
    """The installed irfw with the harness, IRFW_PLUGIN_PATH unset."""
    env = {"IRFW_PLUGIN_PATH": None, "IRFW_EVIDENCE_DIR": None, **kw.pop("env", {})}
    return world.irfw(*args, env=env, **kw)


@pytest.fixture(scope="module")
def moto():
    m = Moto()
    yield m
    m.stop()


@pytest.fixture
def world(moto, tmp_path):
    moto.reset()
    yield World(moto, tmp_path)
    moto.reset()


def seed(world, region="us-west-2"):
    world.region = region
    w = world.vpc_world(region=region)
    # The sample site's upload finds its key by description (the old tool's rule).
    key = world.client("kms").create_key(Description="test")["KeyMetadata"]["Arn"]
    world.client("s3").create_bucket(Bucket="ir-evidence",
                                     CreateBucketConfiguration={"LocationConstraint": region})
    sns, sqs = world.client("sns"), world.client("sqs")
    topic = sns.create_topic(Name="ir-oncall")["TopicArn"]
    q = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    return {**w, "iid": w["instances"][0], "key": key, "topic": topic, "queue": q}


def site_for_moto(world, url):
    """The installed /etc/irfw/irfw.ini, with [irfw] pointed at moto."""
    text = Path("/etc/irfw/irfw.ini").read_text()
    assert re.search(r"^\[irfw\]$", text, re.M)
    text = re.sub(r"^\[irfw\]$", f"[irfw]\nendpoint_url = {url}\nevidence_dir = {world.evidence}",
                  text, count=1, flags=re.M)
    p = world.tmp / "site.ini"
    p.write_text(text)
    return p


# ---- what the packages hold ---------------------------------------------

def test_packages_installed():
    for p in PACKAGES:
        assert sh("dpkg-query", "-W", "-f", "${Status} ${Version}", p).stdout == f"install ok installed {VERSION}"
    assert sh(IRFW, "--version").stdout.startswith(f"irfw {VERSION.rsplit('-', 1)[0]} ")


def test_files_of_each_package():
    files = {p: sh("dpkg", "-L", p).stdout.split("\n") for p in PACKAGES}
    every = [f for fs in files.values() for f in fs]
    assert [f for f in every if f.endswith(".la")] == [], "a .la file is installed"
    assert {p.stem for p in PLUGINDIR.glob("*.so")} == CORE | set(OPTIONAL)
    assert list(PLUGINDIR.glob("*.la")) == []
    for name in CORE:
        assert str(PLUGINDIR / f"{name}.so") in files["irfw"]
    for name, pkg in OPTIONAL.items():
        assert str(PLUGINDIR / f"{name}.so") in files[pkg]
        assert str(PLUGINDIR / f"{name}.so") not in files["irfw"]
    assert {"/usr/bin/irfw", "/usr/share/bash-completion/completions/irfw", "/etc/irfw/irfw.ini",
            "/usr/share/man/man1/irfw.1.gz", "/usr/share/man/man5/irfw.ini.5.gz"} <= set(files["irfw"])
    assert {"/usr/include/irfw/irfw.h", "/usr/include/irfw/runner.h", f"{LIBDIR}/pkgconfig/irfw.pc",
            f"{LIBDIR}/libirfw.so", "/usr/share/man/man7/irfw-plugin.7.gz",
            "/usr/share/doc/libirfw-dev/examples/site_tag/site_tag.c"} <= set(files["libirfw-dev"])
    assert f"{LIBDIR}/libirfw.so.1" in files["libirfw1"]
    # The examples are the source tree's, uncompressed, so they build as they are.
    for f in ["README.md", "site_tag/Makefile", "site_tag/site_tag.c"]:
        assert (Path("/usr/share/doc/libirfw-dev/examples") / f).read_bytes() == (SRC / "examples" / f).read_bytes()


def test_conffile_and_case_folder():
    assert "/etc/irfw/irfw.ini " in field("irfw", "Conffiles")
    assert Path("/etc/irfw/irfw.ini").read_text() == (SRC / "conf" / "irfw.ini").read_text()
    st = CASES.stat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0
    assert sh("dpkg", "-S", str(CASES)).stdout.startswith("irfw: ")


def test_abi_dependencies():
    major, minor = abi()
    assert major == "1"
    assert field("libirfw1", "Provides") == f"irfw-abi-1 (= {major}.{minor})"
    for pkg in OPTIONAL.values():
        deps = [d.strip() for d in field(pkg, "Depends").split(",")]
        assert f"irfw (= {VERSION})" in deps and f"irfw-abi-1 (>= {major}.{minor})" in deps, deps


@pytest.mark.parametrize("needs,ok", [("same", True), ("newer", False)])
def test_abi_dependency_is_enforced_by_dpkg(tmp_path, needs, ok):
    """A third-party plugin package built for this ABI installs; one built
    for a newer minor is refused by dpkg, as the loader would refuse it."""
    major, minor = abi()
    want = f"{major}.{minor}" if needs == "same" else f"{major}.{int(minor) + 1}"
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: irfw-plugin-abi-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.org>\n"
        f"Depends: irfw-abi-1 (>= {want})\nDescription: probe\n probe\n")
    sh("dpkg-deb", "--root-owner-group", "-b", root, tmp_path / "probe.deb")
    p = sh("dpkg", "-i", tmp_path / "probe.deb", check=False)
    try:
        assert (p.returncode == 0) == ok, p.stdout + p.stderr
        if not ok:
            assert "irfw-abi-1" in p.stderr
    finally:
        sh("dpkg", "--purge", "irfw-plugin-abi-probe", check=False)


def test_library_exports_exactly_the_api():
    nm = sh("nm", "-D", "--defined-only", LIBDIR / "libirfw.so.1").stdout
    exported = {l.split()[2] for l in nm.splitlines() if len(l.split()) == 3 and l.split()[1] in "TDBRVW"
                and not l.split()[2].startswith("_")}
    headers = "".join(p.read_text() for p in Path("/usr/include/irfw").glob("*.h"))
    declared = set(re.findall(r"IRFW_EXPORT\s+[^;{(#]*?\b(irfw_\w+)\s*\(", headers))
    symbols = set(re.findall(r"^ (irfw_\w+)@Base ", (SRC / "debian" / "libirfw1.symbols").read_text(), re.M))
    assert exported == declared == symbols


def test_man_pages():
    for section, name in [("1", "irfw"), ("5", "irfw.ini"), ("7", "irfw-plugin")]:
        path = sh("man", "-w", section, name).stdout.strip()
        assert path.startswith("/usr/share/man/"), path
        p = sh("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path,
               env={**os.environ, "MANROFFSEQ": "", "MANWIDTH": "80", "LC_ALL": "C.UTF-8"})
        assert p.stderr == "", p.stderr
    # The pages are the source tree's (irfw.ini(5) committed, not generated
    # by the build: a cross build installs the same).
    for page in ["man1/irfw.1", "man5/irfw.ini.5", "man7/irfw-plugin.7"]:
        installed = gzip.decompress(Path(f"/usr/share/man/{page}.gz").read_bytes())
        assert installed == (SRC / "man" / Path(page).name).read_bytes(), page


# ---- using them ---------------------------------------------------------

def test_plugins_listed():
    p = sh(IRFW, "plugins", env=user_env())
    names = {l.split()[0] for l in p.stdout.splitlines()[1:] if l.strip() and not l.startswith("Search")}
    assert names == CORE | set(OPTIONAL)
    assert f"Search path: {PLUGINDIR}" in p.stdout
    assert sh("pkg-config", "--variable=plugindir", "irfw").stdout.strip() == str(PLUGINDIR)


def test_example_plugin_builds_against_installed_sdk(tmp_path):
    ex = tmp_path / "examples"
    shutil.copytree("/usr/share/doc/libirfw-dev/examples", ex)
    build = sh("make", "-C", ex / "site_tag", env=user_env())
    assert ": warning:" not in build.stdout + build.stderr
    so = ex / "site_tag" / "site_tag.so"
    exports = sh("nm", "-D", "--defined-only", so).stdout.split()
    assert exports[2::3] == ["site_tag_LTX_irfw_plugin_get"]
    lib = re.search(r"libirfw\.so\.1 => (\S+)", sh("ldd", so).stdout).group(1)
    assert Path(lib).resolve() == (LIBDIR / "libirfw.so.1").resolve()
    d = sh(IRFW, "plugins", "--describe", "site_tag", env=user_env(IRFW_PLUGIN_PATH=str(so.parent)))
    assert "key" in d.stdout


def test_check_against_moto(world):
    w = seed(world)
    ec2 = world.client("ec2")
    before = world.instance(w["iid"])
    with ScreenshotProxy(world.moto.url) as proxy:
        conf = site_for_moto(world, proxy.url)
        # Only the site file points at moto (through the proxy that answers
        # GetConsoleScreenshot, which moto lacks).
        env = {"AWS_ENDPOINT_URL": None}
        p = irfw(world, "check", "--conf", conf, "-i", w["iid"], "-r", world.region, "-b", "ir-evidence",
                 "-t", w["topic"], env=env)
        print(p.stdout + p.stderr)
        assert p.returncode == 0, p.stdout + p.stderr
        assert irfw(world, "check", "--conf", conf, "-r", world.region, env=env).returncode == 0
    # Nothing changed in AWS, and no case record was written.
    after = world.instance(w["iid"])
    assert [g["GroupId"] for g in after["SecurityGroups"]] == [g["GroupId"] for g in before["SecurityGroups"]]
    assert after.get("Tags") == before.get("Tags")
    assert ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["irfw-*"]}])["SecurityGroups"] == []
    attr = ec2.describe_instance_attribute(InstanceId=w["iid"], Attribute="disableApiTermination")
    assert attr["DisableApiTermination"]["Value"] is False
    assert ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [
        m["Ebs"]["VolumeId"] for m in after["BlockDeviceMappings"]]}])["Snapshots"] == []
    assert "Contents" not in world.client("s3").list_objects_v2(Bucket="ir-evidence")
    assert not world.evidence.exists() or list(world.evidence.iterdir()) == []


def test_run_with_installed_default_site(world):
    """The old tool's one-liner, no --conf: /etc/irfw/irfw.ini, the
    installed plugins and the packaged case folder."""
    w = seed(world)
    iid = w["iid"]
    with ScreenshotProxy(world.moto.url) as proxy:
        p = irfw(world, "-i", iid, "-r", world.region, "-b", "ir-evidence", "-t", w["topic"], "-o", "json",
                 env={"AWS_ENDPOINT_URL": proxy.url})
    case_dir = CASES / p.json["case_id"] if p.json else None
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        inst = p.json["instances"][0]
        steps = {s["step"]: s["status"] for s in inst["steps"]}
        assert list(steps) == ["spot", "asg", "elb", "iam_profile", "isolate", "protect", "capture", "snapshot",
                               "tag", "upload", "notify_sns", "notify_slack"]
        assert "failed" not in steps.values(), inst["steps"]
        assert inst["containment"]["state"] == "contained"
        # In moto: every interface in the quarantine group, protected, tagged,
        # snapshotted, the evidence encrypted in the bucket, the summary sent.
        ec2 = world.client("ec2")
        qg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [
            f"irfw-quarantine-{w['vpc']}"]}])["SecurityGroups"][0]
        enis = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
        in_q = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [qg["GroupId"]]}])
        assert len(enis["NetworkInterfaces"]) == 2 and \
            {e["NetworkInterfaceId"] for e in enis["NetworkInterfaces"]} == \
            {e["NetworkInterfaceId"] for e in in_q["NetworkInterfaces"]}
        assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
            "DisableApiTermination"]["Value"] is True
        tags = {t["Key"]: t["Value"] for t in world.instance(iid)["Tags"]}
        assert tags["irfw:status"] == "quarantined" and tags["irfw:case"] == p.json["case_id"]
        assert len(ec2.describe_snapshots(Filters=[{"Name": "tag:irfw:instance", "Values": [iid]}])["Snapshots"]) == 2
        s3 = world.client("s3")
        objs = s3.list_objects_v2(Bucket="ir-evidence", Prefix=f"{p.json['case_id']}/{iid}/")["Contents"]
        assert {o["Key"].rsplit("/", 1)[1] for o in objs} >= {"manifest.json", "console-output.txt"}
        for o in objs:
            assert s3.head_object(Bucket="ir-evidence", Key=o["Key"])["SSEKMSKeyId"] == w["key"]
        msgs = world.client("sqs").receive_message(QueueUrl=w["queue"], MaxNumberOfMessages=10)["Messages"]
        assert iid in msgs[0]["Body"]
        # The case record, in the packaged folder.
        assert Path(inst["case_dir"]).resolve().parent == case_dir.resolve()
        assert (case_dir / iid / "manifest.json").is_file()
    finally:
        if case_dir and case_dir.parent == CASES:
            shutil.rmtree(case_dir, ignore_errors=True)


def test_completion_installed():
    """tests/integration/test_completion.py on the installed completion and irfw."""
    p = sh(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
           SRC / "tests" / "integration" / "test_completion.py", check=False, cwd=SRC,
           env=user_env(IRFW_BIN=IRFW, IRFW_COMPLETION="/usr/share/bash-completion/completions/irfw",
                        HOME=os.environ.get("HOME", "/root")))
    print(p.stdout)
    assert p.returncode == 0 and " passed" in p.stdout and "skipped" not in p.stdout, p.stdout + p.stderr


def test_make_install_keeps_an_edited_site_file(tmp_path):
    """`make install` of the packages' build tree (prefix /usr): the sample
    goes in as irfw.ini only when there is none, no plugin .la is left,
    a staged install makes no case folder, uninstall keeps an edited file."""
    build = TREE / "debian" / "build"
    stage = tmp_path / "stage"
    sh("make", "-C", build, "install", f"DESTDIR={stage}")
    conf = stage / "etc" / "irfw" / "irfw.ini"
    assert conf.read_text() == (SRC / "conf" / "irfw.ini").read_text()
    assert list((stage / LIBDIR.relative_to("/") / "irfw" / "plugins").glob("*.la")) == []
    assert len(list((stage / LIBDIR.relative_to("/") / "irfw" / "plugins").glob("*.so"))) == 13
    assert not (stage / "var" / "lib" / "irfw" / "cases").exists()
    conf.write_text(conf.read_text() + "; edited by the site\n")
    p = sh("make", "-C", build, "install", f"DESTDIR={stage}")
    assert conf.read_text().endswith("; edited by the site\n")
    assert (conf.parent / "irfw.ini.dist").read_text() == (SRC / "conf" / "irfw.ini").read_text()
    assert "kept the existing" in p.stdout
    sh("make", "-C", build, "uninstall", f"DESTDIR={stage}")
    assert conf.read_text().endswith("; edited by the site\n") and not (conf.parent / "irfw.ini.dist").exists()
    assert list(stage.rglob("*.so")) == []
    # Installed for real (no DESTDIR), the case folder is made, 0700.
    var = tmp_path / "var"
    sh("make", "-C", build, "install-data-local", f"localstatedir={var}", f"sysconfdir={tmp_path / 'etc'}",
       f"bashcompletiondir={tmp_path / 'bc'}")
    assert stat.S_IMODE((var / "lib" / "irfw" / "cases").stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "lib" / "irfw").stat().st_mode) == 0o755
    assert (tmp_path / "bc" / "irfw").is_file()


def test_edited_conffile_survives_reinstall():
    conf = Path("/etc/irfw/irfw.ini")
    original = conf.read_text()
    conf.write_text(original + "; edited by the site\n")
    try:
        sh("dpkg", "-i", DEBDIR / f"irfw_{VERSION}_{ARCH}.deb")
        assert conf.read_text() == original + "; edited by the site\n"
    finally:
        conf.write_text(original)


def test_remove_an_optional_plugin_package(world):
    p = sh("dpkg", "-r", "irfw-plugin-notify-slack")
    assert not (PLUGINDIR / "notify_slack.so").exists()
    listed = sh(IRFW, "plugins", env=user_env()).stdout
    assert "notify_slack" not in listed and "notify_sns" in listed
    # The default site still loads: the step is left out, naming the package.
    msg = ("optional step left out: plugin notify_slack is not installed "
           "(Debian and Ubuntu: apt install irfw-plugin-notify-slack)")
    plan = sh(IRFW, "--plan", "-o", "json", "-i", "i-0123456789abcdef0", env=user_env(), cwd=world.tmp)
    print(plan.stderr)
    assert msg in plan.stderr
    assert "notify_slack" not in plan.stdout and '"notify_sns"' in plan.stdout
    w = seed(world)
    with ScreenshotProxy(world.moto.url) as proxy:
        c = irfw(world, "check", "--conf", site_for_moto(world, proxy.url), "-i", w["iid"], "-r", world.region,
                 "-b", "ir-evidence", "-t", w["topic"], env={"AWS_ENDPOINT_URL": None})
    print(c.stderr)
    assert c.returncode == 0 and msg in c.stderr, c.stdout + c.stderr


def test_purge_leaves_nothing():
    sh("dpkg", "--purge", *PACKAGES)
    for pkg in PACKAGES:
        q = sh("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", pkg, check=False)
        assert q.returncode != 0 or q.stdout.strip() in ("un", "pn"), (pkg, q.stdout)
    for path in ["/etc/irfw", "/usr/bin/irfw", LIBDIR / "irfw", LIBDIR / "libirfw.so.1", "/usr/include/irfw",
                 "/var/lib/irfw", "/usr/share/bash-completion/completions/irfw", "/usr/share/doc/libirfw-dev",
                 "/usr/share/man/man7/irfw-plugin.7.gz"]:
        assert not Path(path).exists(), path
PY
cd "$tmp"
t=$(left)
IRFW_SRC="$src" IRFW_DEB_TREE="$tree" IRFW_DEB_DIR="$tmp" IRFW_DEB_VERSION="$version" \
	IRFW_DEB_PACKAGES="$packages" timeout "$t" python3 -m pytest -q -p no:cacheprovider -rsP --durations=5 \
	"$tmp/test_installed.py"
