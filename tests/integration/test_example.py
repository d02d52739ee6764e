"""The out-of-tree example plugin (examples/site_tag), built against the
INSTALLED SDK and run by the INSTALLED irfw, against moto.

scripts/test-example.sh BUILDDIR installs a build tree into a stage, builds
the example there with its own Makefile, and runs this file with:
  IRFW_EXAMPLE_BIN        the installed irfw binary
  IRFW_EXAMPLE_LIBDIR     the installed library folder (for LD_LIBRARY_PATH)
  IRFW_EXAMPLE_PLUGINDIR  the installed plugin folder (in-tree plugins)
  IRFW_EXAMPLE_PLUGIN     the example's installed site_tag.so
Without them every test here is skipped, with that reason.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUILDDIR, REPO
from refusing_proxy import RefusingProxy, ec2_error

VARS = ("IRFW_EXAMPLE_BIN", "IRFW_EXAMPLE_LIBDIR", "IRFW_EXAMPLE_PLUGINDIR", "IRFW_EXAMPLE_PLUGIN")
MISSING = [v for v in VARS if not os.environ.get(v)]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not set: run scripts/test-example.sh BUILDDIR")

BIN = Path(os.environ.get("IRFW_EXAMPLE_BIN", "/nonexistent"))
LIBDIR = os.environ.get("IRFW_EXAMPLE_LIBDIR", "")
PLUGINDIR = Path(os.environ.get("IRFW_EXAMPLE_PLUGINDIR", "/nonexistent"))
PLUGIN = Path(os.environ.get("IRFW_EXAMPLE_PLUGIN", "/nonexistent"))
KEY = "acme:incident"


def irfw(world, *args, env=None, check_rc=None, valgrind=False):
    """Run the installed irfw, with only installed plugins on its path (its
    compiled-in plugin folder is the real prefix, not the stage)."""
    ld = os.environ.get("LD_LIBRARY_PATH")
    e = world.env(LD_LIBRARY_PATH=LIBDIR + (":" + ld if ld else ""), IRFW_PLUGIN_PATH=str(PLUGINDIR))
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    cmd = [str(BIN), *map(str, args)]
    if valgrind:
        cmd = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite,indirect", *cmd]
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=300, cwd=world.tmp)
    p.json = None
    if "json" in args and p.stdout.strip().startswith("{"):
        p.json = json.loads(p.stdout)
    if check_rc is not None:
        assert p.returncode == check_rc, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def step(p, name):
    return next(s for s in p.json["instances"][0]["steps"] if s["step"] == name)


def tags(world, iid):
    return {t["Key"]: t["Value"] for t in world.instance(iid).get("Tags", [])}


def eni_groups(world, iid):
    eni = world.instance(iid)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2 = world.client("ec2")
    # moto mixes the instance's launch groups into an ENI's: ask which
    # groups really hold it (MOTO-NOTES).
    groups = ec2.describe_security_groups()["SecurityGroups"]
    return sorted(g["GroupId"] for g in groups if ec2.describe_network_interfaces(
        Filters=[{"Name": "group-id", "Values": [g["GroupId"]]},
                 {"Name": "network-interface-id", "Values": [eni]}])["NetworkInterfaces"])


def site(world, extra=None, **globals_):
    """isolate (an installed in-tree plugin), then the example."""
    return world.write_conf(["isolate", "site_tag"], {
        "isolate": {"admin_cidrs": "10.0.0.0/8"},
        "site_tag": {"key": KEY, "value": "${case_id}/${containment}", **(extra or {})}}, **globals_)


def test_installed_not_build_tree():
    """What runs is the stage, not this tree: otherwise the tests below
    would prove nothing about the installed SDK."""
    for path in (BIN, PLUGIN, PLUGINDIR):
        assert path.exists(), path
        assert not path.resolve().is_relative_to(REPO), path
        assert not path.resolve().is_relative_to(BUILDDIR), path
    assert PLUGIN.parent == PLUGINDIR


def test_example_tags_after_installed_isolate(world):
    """The example runs in a pipeline with an installed in-tree plugin, in
    its phase (report, after containment), and the tag it wrote is in moto,
    its value a template expanded per instance."""
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    p = irfw(world, "--conf", site(world), "-i", iid, "--case-id", "IR-EX-1", "-o", "json", check_rc=0)
    s = step(p, "site_tag")
    assert s["plugin"] == "site_tag" and s["phase"] == "report" and s["status"] == "ok", s
    assert f"tagged {KEY}=IR-EX-1/contained" in s["detail"], s
    assert p.json["instances"][0]["containment"]["state"] == "contained"
    assert tags(world, iid)[KEY] == "IR-EX-1/contained"
    # isolate, the installed in-tree plugin, really ran too.
    assert w["sg"] not in eni_groups(world, iid)


@pytest.mark.parametrize("how", [["check"], ["--dry-run"]])
def test_check_and_dry_run_send_create_tags_dry(world, how):
    """`irfw check` and --dry-run call the example's check with DryRun on:
    status ok, nothing tagged, nothing isolated.  A proxy answers only a
    CreateTags carrying DryRun=true, so a preflight that forgot DryRun
    would reach moto and tag the instance."""
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    seen = []

    def rule(body):
        if b"Action=CreateTags" in body:
            seen.append(body)
        return None

    proxy = RefusingProxy(world.moto.url, rule)
    try:
        args = ["check", "--conf", site(world)] if how == ["check"] else ["--conf", site(world), "-n"]
        p = irfw(world, *args, "-i", iid, "-o", "json", env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    finally:
        proxy.close()
    s = step(p, "site_tag")
    assert s["status"] == "ok", s
    assert f"dry run: CreateTags {KEY}=" in s["detail"] and "allowed" in s["detail"], s
    assert seen and all(b"DryRun=true" in b for b in seen), seen
    assert KEY not in tags(world, iid)
    assert eni_groups(world, iid) == [w["sg"]]
    # The same step really run does tag: this test can fail.
    irfw(world, "--conf", site(world), "-i", iid, check_rc=0)
    assert KEY in tags(world, iid)


def test_check_names_the_refused_call(world):
    """AWS answers a DryRun CreateTags the identity may not make with
    UnauthorizedOperation: the check fails, naming the call, the instance,
    the code and the request id, and exit status 1."""
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]

    def rule(body):
        if b"Action=CreateTags" in body:
            return 403, "text/xml", ec2_error("UnauthorizedOperation", "You are not authorized to perform "
                                              "this operation.", request_id="req-denied-7")
        return None

    proxy = RefusingProxy(world.moto.url, rule)
    try:
        conf = world.write_conf(["site_tag"], {"site_tag": {"key": KEY}})
        p = irfw(world, "check", "--conf", conf, "-i", iid, "-o", "json",
                 env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=1)
    finally:
        proxy.close()
    s = step(p, "site_tag")
    assert s["status"] == "failed", s
    assert "CreateTags" in s["detail"] and iid in s["detail"], s
    assert "UnauthorizedOperation" in (s["aws_error"] or s["detail"]), s
    assert "req-denied-7" in (s["request_id"] or s["detail"]), s
    assert KEY not in tags(world, iid)


def test_overwrite_false_keeps_the_value(world):
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    world.client("ec2").create_tags(Resources=[iid], Tags=[{"Key": KEY, "Value": "owned-by-cmdb"}])
    conf = world.write_conf(["site_tag"], {"site_tag": {"key": KEY, "overwrite": "false"}})
    p = irfw(world, "--conf", conf, "-i", iid, "--case-id", "IR-EX-2", "-o", "json", check_rc=0)
    s = step(p, "site_tag")
    assert s["status"] == "skipped" and "owned-by-cmdb" in s["detail"], s
    assert tags(world, iid)[KEY] == "owned-by-cmdb"
    # The default (overwrite = true) replaces it: this test can fail.
    conf = world.write_conf(["site_tag"], {"site_tag": {"key": KEY}})
    irfw(world, "--conf", conf, "-i", iid, "--case-id", "IR-EX-3", check_rc=0)
    assert tags(world, iid)[KEY] == "IR-EX-3"


@pytest.mark.parametrize("keys,msg,where", [
    # Required, absent: the core names the step and the pipeline's line
    # (a section without keys is not seen by inih).
    ({}, "has no [site_tag] section with keys, and its plugin site_tag requires 'key'", ":2:"),
    # Refused by the plugin's init, and not in its options table.
    ({"key": "aws:incident"}, "[site_tag] key: 'aws:incident': the aws: prefix is reserved by AWS",
     ":7: "),
    ({"key": KEY, "colour": "red"}, "unknown key 'colour'", ":8: "),
])
def test_configuration_errors_stop_before_any_change(world, keys, msg, where):
    """The options table and init are the plugin's validation: a mistake in
    its section is exit 2 naming the file (and line), before isolate
    (earlier in the pipeline) touches anything."""
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    conf = world.write_conf(["isolate", "site_tag"], {"site_tag": keys})
    p = irfw(world, "--conf", conf, "-i", iid, check_rc=2)
    assert msg in p.stderr and f"{conf}{where}" in p.stderr, p.stderr
    assert eni_groups(world, iid) == [w["sg"]]
    assert KEY not in tags(world, iid) and "aws:incident" not in tags(world, iid)


def test_plugins_lists_and_describes_it(world):
    conf = site(world)
    p = irfw(world, "plugins", "--conf", conf, check_rc=0)
    line = next((ln for ln in p.stdout.splitlines() if ln.split()[:1] == ["site_tag"]), None)
    assert line and "tag the instance with one key of the site's" in line, p.stdout
    assert any(ln.split()[:1] == ["isolate"] for ln in p.stdout.splitlines()), p.stdout
    d = irfw(world, "plugins", "--conf", conf, "--describe", "site_tag", check_rc=0)
    assert f"file: {PLUGIN}" in d.stdout, d.stdout
    assert "[site_tag]" in d.stdout
    opts = {ln.split()[0]: ln for ln in d.stdout.splitlines() if ln.startswith("  ") and " = <" in ln}
    assert "default" not in opts["key"], opts  # required: no default
    assert "default: ${case_id}" in opts["value"], opts
    assert "default: true" in opts["overwrite"], opts
    assert "Key of the tag to write" in d.stdout and "DryRun" in d.stdout
    # A third-party plugin gets its own page, irfw-site_tag(7), and its
    # section of irfw.ini(5).
    m = irfw(world, "plugins", "--conf", conf, "--describe", "site_tag", "--man", check_rc=0)
    assert m.stdout.startswith(".TH IRFW\\-SITE_TAG 7") and ".SH OPTIONS" in m.stdout, m.stdout
    sec = irfw(world, "plugins", "--conf", conf, "--describe", "site_tag", "--man-section", check_rc=0)
    assert sec.stdout.startswith(".SS") and "site_tag" in sec.stdout, sec.stdout


def test_plugin_path_in_the_site_file(world):
    """A site keeps its own plugins in its own folder, named by plugin_path
    (relative to the INI's folder): found there with no IRFW_PLUGIN_PATH.
    The same folder writable by its group is refused, exit 2, naming it,
    before anything is changed."""
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    mine = world.tmp / "site-plugins"
    mine.mkdir(mode=0o755)
    shutil.copy(PLUGIN, mine / "site_tag.so")
    (mine / "site_tag.so").chmod(0o644)
    conf = world.write_conf(["site_tag"], {"site_tag": {"key": KEY}}, plugin_path="site-plugins")
    env = {"IRFW_PLUGIN_PATH": None}
    d = irfw(world, "plugins", "--conf", conf, "--describe", "site_tag", env=env, check_rc=0)
    assert f"file: {mine / 'site_tag.so'}" in d.stdout, d.stdout
    mine.chmod(0o775)
    p = irfw(world, "--conf", conf, "-i", iid, "--case-id", "IR-EX-4", env=env, check_rc=2)
    assert str(mine) in p.stderr and "writable" in p.stderr, p.stderr
    assert KEY not in tags(world, iid)
    mine.chmod(0o755)
    irfw(world, "--conf", conf, "-i", iid, "--case-id", "IR-EX-4", env=env, check_rc=0)
    assert tags(world, iid)[KEY] == "IR-EX-4"


def sanitized():
    """True when the installed irfw was built with ASan, which valgrind
    cannot run (and which checks leaks itself)."""
    if MISSING or not shutil.which("ldd"):
        return False
    p = subprocess.run(["ldd", str(BIN)], capture_output=True, text=True,
                       env={**os.environ, "LD_LIBRARY_PATH": LIBDIR})
    return "libasan" in p.stdout


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind not installed")
@pytest.mark.skipif(sanitized(), reason="irfw built with ASan: valgrind cannot run it")
def test_no_leak_or_error_under_valgrind(world):
    """The example frees what it makes, in run and in check."""
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["site_tag"], {"site_tag": {"key": KEY}})
    irfw(world, "check", "--conf", conf, "-i", iid, valgrind=True, check_rc=0)
    irfw(world, "--conf", conf, "-i", iid, "--case-id", "IR-EX-5", valgrind=True, check_rc=0)
    assert tags(world, iid)[KEY] == "IR-EX-5"
