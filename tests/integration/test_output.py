"""Output conventions: every -o json document carries a "format" key and
matches doc/irfw-output.schema.json (validated with the jsonschema package);
every subcommand honours -o json; colour follows no-color.org, TERM=dumb and
--color, with no stray escape code (checked on a real pseudo-terminal); and
`irfw plugins --describe NAME --man` is a complete page that groff renders
without a warning.
"""
import copy
import json
import os
import pty
import re
import shutil
import subprocess

import jsonschema
import pytest

from conftest import IRFW_BIN, PLUGINDIR, REPO

SCHEMA = json.loads((REPO / "doc" / "irfw-output.schema.json").read_text())
MISSING = "i-0000000000000000a"


def validate(doc, kind):
    """doc against the schema as a whole and against its definition `kind`."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    sub = {"$defs": copy.deepcopy(SCHEMA["$defs"]), "$ref": f"#/$defs/{kind}"}
    jsonschema.validate(doc, sub, cls=jsonschema.Draft202012Validator)


def test_every_json_document_matches_the_schema(world):
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    site = world.write_conf(["isolate", "good"], {"isolate": {}, "good": {"needed": "x"}})
    docs = {}
    # A real run (contained; one id not found), its dry run, and check with
    # and without instances.
    p = world.irfw("--conf", site, "-i", iid, "-i", MISSING, "--case-id", "OUT-1", "-o", "json", check_rc=3)
    docs["run"] = p.json
    docs["dry"] = world.irfw("--conf", site, "-i", iid, "-n", "-o", "json", check_rc=0).json
    docs["check"] = world.irfw("check", "--conf", site, "-i", iid, "-o", "json", check_rc=0).json
    docs["check-none"] = world.irfw("check", "--conf", site, "-o", "json", check_rc=0).json
    # No AWS call for these.
    docs["plugins"] = world.irfw("plugins", "--conf", site, "-o", "json",
                                 env={"IRFW_PLUGIN_PATH": str(PLUGINDIR)}, check_rc=0).json
    docs["describe"] = world.irfw("plugins", "--describe", "upload", "-o", "json", check_rc=0).json
    docs["describe-irfw"] = world.irfw("plugins", "--describe", "irfw", "-o", "json", check_rc=0).json
    docs["policy"] = json.loads(world.irfw("policy", "--conf", site, check_rc=0).stdout)
    docs["plan"] = world.irfw("--conf", site, "-i", iid, "--plan", "-o", "json", check_rc=0).json
    # The case record of the run, checked, then released (a dry run first).
    case_dir = world.evidence / "OUT-1"
    docs["verify"] = world.irfw("verify", str(case_dir), "-o", "json", check_rc=0).json
    docs["release-dry"] = world.irfw("release", "--conf", site, "--case-id", "OUT-1", "-i", iid, "-n",
                                     "-o", "json", check_rc=0).json
    docs["release"] = world.irfw("release", "--conf", site, "--case-id", "OUT-1", "-i", iid, "-o", "json",
                                 check_rc=0).json
    for name, kind in [("run", "run"), ("dry", "check"), ("check", "check"), ("check-none", "check"),
                       ("plugins", "plugins"), ("describe", "plugin"), ("describe-irfw", "plugin"),
                       ("policy", "policy"), ("plan", "plan"), ("verify", "verify"),
                       ("release-dry", "release"), ("release", "release")]:
        assert docs[name] is not None, name
        validate(docs[name], kind)
    # Every document but the IAM policy names its kind and version.
    assert docs["plan"]["format"] == "irfw-plan/1"
    assert [s["phase"] for s in docs["plan"]["instances"][0]["steps"]] == ["contain", "preserve"]
    assert docs["verify"]["format"] == "irfw-verify/1" and docs["verify"]["ok"] is True
    assert docs["release"]["format"] == docs["release-dry"]["format"] == "irfw-release/1"
    assert docs["release-dry"]["instances"][0]["outcome"] == "dry-run"
    assert docs["release"]["instances"][0]["outcome"] == "released"
    for name in ["run", "dry", "check", "check-none"]:
        assert docs[name]["format"] == "irfw-run/1", name
    assert docs["plugins"]["format"] == "irfw-plugins/1"
    assert docs["describe"]["format"] == docs["describe-irfw"]["format"] == "irfw-plugin/1"
    # The documents say what moto holds.
    run = {i["instance_id"]: i for i in docs["run"]["instances"]}
    assert run[MISSING]["found"] is False and run[iid]["containment"]["state"] == "contained"
    q = world.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"irfw-quarantine-{w['vpc']}"]}])["SecurityGroups"]
    assert len(q) == 1 and q[0]["IpPermissionsEgress"] == []
    assert docs["check"]["dry_run"] is True and docs["check-none"]["instances"] == []
    assert docs["check-none"]["account_id"] == world.account_id
    names = {p["name"] for p in docs["plugins"]["plugins"]}
    assert {"isolate", "upload", "notify_sns", "notify_slack"} <= names
    assert {a["action"] for a in docs["describe"]["actions"]} >= {"s3:PutObject", "kms:DescribeKey"}
    assert any(o["name"] == "kms_key" for o in docs["describe"]["options"])
    # The schema is not a rubber stamp: a document without its format, or
    # with a status it does not know, is refused.
    bad = copy.deepcopy(docs["check"])
    del bad["format"]
    with pytest.raises(jsonschema.ValidationError):
        validate(bad, "check")
    bad = copy.deepcopy(docs["check"])
    bad["instances"][0]["steps"][0]["status"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad, "run")


# ---- colour ---------------------------------------------------------------

SGR = re.compile(rb"\x1b\[[0-9;]*m")
ERASE = b"\r\x1b[K"  # the live status line's redraw


def on_pty(world, args, env):
    """Run irfw with standard error on a pseudo-terminal; returns (rc,
    stdout bytes, stderr bytes as the terminal got them)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(IRFW_BIN), *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=slave, env=world.env(**env), cwd=world.tmp)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read()
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, out, err


def assert_clean_colour(err):
    """Each line: no escape, or one colour start and one reset at its end."""
    lines = err.replace(ERASE, b"").split(b"\r\n")
    for ln in lines:
        codes = SGR.findall(ln)
        if not codes:
            assert b"\x1b" not in ln, ln
            continue
        assert len(codes) == 2 and codes[1] == b"\x1b[0m" and ln.startswith(codes[0]) \
            and ln.endswith(b"\x1b[0m"), ln
        assert b"\x1b" not in SGR.sub(b"", ln), ln


def test_colour_rules_on_a_terminal(world):
    site = world.write_conf(["good"], {"good": {"needed": "x"}})
    # An instance that is not there: an error line (red), info lines (plain).
    args = ["check", "--conf", site, "-i", MISSING]
    cases = [
        # (env, extra args, colour expected)
        ({"NO_COLOR": None, "TERM": "xterm"}, [], True),
        ({"NO_COLOR": "", "TERM": "xterm"}, [], True),  # empty: not set (no-color.org)
        ({"NO_COLOR": "1", "TERM": "xterm"}, [], False),
        ({"NO_COLOR": None, "TERM": "dumb"}, [], False),
        ({"NO_COLOR": "1", "TERM": "dumb"}, ["--color=always"], True),
        ({"NO_COLOR": None, "TERM": "xterm"}, ["--color=never"], False),
        ({"NO_COLOR": None, "TERM": "xterm"}, ["--color", "auto"], True),
    ]
    for env, extra, colour in cases:
        rc, out, err = on_pty(world, [*args, *extra], env)
        assert rc == 3, (env, extra, rc, err)
        assert b"instance not found" in err, err
        assert b"acting as" in err, err
        assert bool(SGR.search(err)) == colour, (env, extra, err)
        assert_clean_colour(err)
        if env.get("TERM") == "dumb" and not colour:
            assert b"\x1b" not in err, err  # not even the live line's redraw
        # Plain lines stay plain even with colour on.
        info = next(ln for ln in err.split(b"\r\n") if b"acting as" in ln)
        assert b"\x1b" not in info, info
        assert b"\x1b" not in out, out
    # Not a terminal: no colour, but --color=always still gives it.
    p = world.irfw(*args, env={"NO_COLOR": None}, check_rc=3)
    assert "\x1b" not in p.stderr + p.stdout
    p = world.irfw(*args, "--color=always", check_rc=3)
    assert "\x1b[31m" in p.stderr and "\x1b" not in p.stdout
    p = world.irfw(*args, "--color=sometimes", check_rc=2)
    assert "--color takes auto, always or never" in p.stderr


# ---- man pages --------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("groff"), reason="groff is not installed (scripts/bootstrap.sh)")
def test_describe_man_is_a_complete_page_groff_accepts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["IRFW_PLUGIN_PATH"] = str(PLUGINDIR)

    def irfw(*args):
        p = subprocess.run([str(IRFW_BIN), *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    plugins = json.loads(irfw("plugins", "-o", "json"))["plugins"]
    assert len(plugins) >= 10
    for plug in plugins:
        name = plug["name"]
        page = irfw("plugins", "--describe", name, "--man")
        assert page.startswith(f'.TH IRFW\\-{name.upper().replace("-", "")} 7 '), page[:80]
        heads = re.findall(r"^\.SH (.+)$", page, re.M)
        assert heads == ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "AWS PERMISSIONS", "SEE ALSO"], heads
        assert f"[{name}]" in page
        desc = json.loads(irfw("plugins", "--describe", name, "-o", "json"))
        perms = page.split(".SH AWS PERMISSIONS", 1)[1].split(".SH SEE ALSO", 1)[0]
        for a in desc["actions"]:
            assert f".B {a['action']}" in perms.replace("\\-", "-"), (name, a)
        for o in desc["options"]:
            assert f".B {o['name']}" in page, (name, o)
        r = subprocess.run(["groff", "-ww", "-man", "-Tutf8", "-z"], input=page, capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr == "", (name, r.stderr)
        shown = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou"], input=page, capture_output=True,
                               text=True).stdout
        assert re.search(rf"irfw-{name}\s+-\s", shown), shown[:400]
    # irfw(1) itself, with its tables (tbl: the page asks for it in its first line).
    r = subprocess.run(["groff", "-ww", "-t", "-man", "-Tutf8", "-z", str(REPO / "man" / "irfw.1")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert (REPO / "man" / "irfw.1").read_text().startswith("'\\\" t\n")
    # The [irfw] section and --man-section stay irfw.ini(5)'s parts.
    assert irfw("plugins", "--describe", "upload", "--man-section").startswith(".SS [upload]")
    assert irfw("plugins", "--describe", "irfw", "--man").startswith(".SS [irfw]")


def test_json_document_when_aws_cannot_be_asked(world):
    """DescribeInstances unreachable (nothing listens on the EC2 endpoint):
    -o json still prints one document, valid against the schema, with no
    instance and the call that failed; nothing changed, so the instance is
    not contained: exit 4 (a dry run, which contains nothing anyway: 1)."""
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    site = world.write_conf(["isolate"], {"isolate": {}})
    for extra, rc in (([], 4), (["-n"], 1)):
        p = world.irfw("--conf", site, "-i", iid, "--case-id", "OUT-X", "-o", "json", *extra,
                       env={"AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"},
                       check_rc=rc)
        assert (f"[{iid}] error: NOT CONTAINED: the run stopped before its first step" in p.stderr) == (rc == 4)
        doc = p.json
        validate(doc, "run")
        assert doc["instances"] == [] and doc["error"]["call"] == "ec2:DescribeInstances"
        assert doc["error"]["aws_error"].startswith("ConnectionError") and doc["error"]["changed"] is False
    ec2 = world.client("ec2")
    assert not [g for g in ec2.describe_security_groups()["SecurityGroups"]
                if g["GroupName"].startswith("irfw-")]
    assert not (world.evidence / "OUT-X").exists()


def test_events_belongs_to_runs_and_check(tmp_path):
    """--events with a command that writes no events is a usage error, not
    a file silently left unwritten."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["IRFW_PLUGIN_PATH"] = str(PLUGINDIR)
    events = tmp_path / "e.jsonl"
    for cmd in (["release", "--case-id", "C1", "-i", "i-0123456789abcdef0"], ["verify", str(tmp_path)],
                ["plugins"], ["policy"]):
        p = subprocess.run([str(IRFW_BIN), "--events", str(events), *cmd], env=env, capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
        assert p.returncode == 2, (cmd, p.stdout, p.stderr)
        assert f"--events belongs to a quarantine run and 'irfw check', not to 'irfw {cmd[0]}'" in p.stderr
        assert not events.exists()
