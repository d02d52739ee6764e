"""The irfw command line: usage, configuration errors with file:line, plugin
refusals, plan, JSON output, exit statuses, resume and on_error."""
import json
import os
import subprocess

import pytest

from conftest import BUILDDIR, FIXTUREDIR, IRFW_BIN, PLUGINDIR, REPO

GOOD = {"good": {"needed": "x"}}


def run_plain(*args, env=None, cwd=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update({"AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1", "HOME": "/nonexistent"})
    e.update(env or {})
    return subprocess.run([str(IRFW_BIN), *map(str, args)], env=e, capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=60)


def test_help_and_version():
    p = run_plain("--help")
    assert p.returncode == 0
    for word in ["--iid", "--sgid", "--region", "--bucket", "--topic", "--plan", "--dry-run",
                 "--from-file", "--case-id", "--only", "--skip", "--jobs", "--output", "plugins", "check"]:
        assert word in p.stdout
    p = run_plain("--version")
    assert p.returncode == 0 and p.stdout.startswith("irfw ")


@pytest.mark.parametrize("args,msg", [
    ([], "no instance given"),
    (["-i", "i-12345"], "'i-12345' is not an instance id"),
    (["-i", "I-0123456789ABCDEF0"], "is not an instance id"),
    (["-i", "i-0123456789abcdef0", "--output", "xml"], "--output takes text or json"),
    (["-i", "i-0123456789abcdef0", "--jobs", "0"], "--jobs takes a number"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["--bogus"], "Try 'irfw --help'"),
])
def test_usage_errors(args, msg):
    p = run_plain(*args, "--conf", "/nonexistent.ini") if args and args[0] != "frobnicate" else run_plain(*args)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr


def test_missing_config(world):
    p = world.irfw("--conf", world.tmp / "nope.ini", "-i", "i-0123456789abcdef0")
    assert p.returncode == 2
    assert f"{world.tmp}/nope.ini" in p.stderr and "cannot open" in p.stderr


BAD_CONFIGS = [
    # (ini text, expected line, expected message)
    ("[irfw]\npipeline = good\n\n[good]\nneeded = x\ncolour = blue\n", 6, "unknown key 'colour'"),
    ("[irfw]\npipeline = good\n\n[good]\ncount = 3\n", 4, "required key 'needed' is missing"),
    ("[irfw]\npipeline = good\n\n[good]\n", 2, "no [good] section with keys, and its plugin good requires 'needed'"),
    ("[irfw]\npipeline = good\n\n[good]\nneeded = x\ncount = three\n", 6, "expected an integer"),
    ("[irfw]\npipeline = good\n\n[good]\nneeded = x\nloud = sometimes\n", 6, "expected a boolean"),
    ("[irfw]\npipeline = good\n\n[good]\nneeded = x\nmode = c\n", 6, "expected one of a|b"),
    ("[irfw]\npipeline = good\n\n[good]\nneeded = x\ngreeting = ${instanceid}\n", 6, "unknown variable"),
    ("[irfw]\npipeline = good\n\n[good]\nneeded = " + "x" * 200 + "\n", 5, "longer than 199"),
    ("[irfw]\npipeline = good, nosuch\n\n[good]\nneeded = x\n", 2, "unknown plugin 'nosuch'"),
    ("[irfw]\npipeline = good\njobs = 0\n[good]\nneeded = x\n", 3, "jobs must be between 1 and 64"),
    ("[irfw]\npipeline = good\n[good]\nneeded = x\non_error = explode\n", 5, "expected one of stop|continue"),
    ("[irfw]\npipeline = good\n[good]\nneeded = x\nneeded = y\n", 5, "already set on line 4"),
    ("[irfw]\npipeline = good\n[good\n", 3, "syntax error"),
    # [ good ] is [good]: the same section, so a key set in both is a repeat.
    ("[irfw]\npipeline = good\n[good]\nneeded = x\n[ good ]\nneeded = y\n", 6, "already set on line 4"),
    ("[irfw]\npipeline = good\n[good]\nneeded = x\n[ ]\ncount = 3\n", 5, "section header without a name"),
    ("[irfw]\npipeline = good\nregoin = us-east-1\n[good]\nneeded = x\n", 3, "unknown key 'regoin'"),
]


@pytest.mark.parametrize("text,line,msg", BAD_CONFIGS)
def test_bad_configuration(world, text, line, msg):
    conf = world.tmp / "bad.ini"
    conf.write_text(text)
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    p = world.irfw("--conf", conf, "-i", inst)
    assert p.returncode == 2, p.stderr
    assert f"{conf}:{line}:" in p.stderr, p.stderr
    assert msg in p.stderr
    # Refused before any instance was touched: no case record at all.
    assert not world.evidence.exists()


@pytest.mark.parametrize("module,reason", [
    ("badmajor", "major differs"),
    ("newminor", "newer than this irfw"),
    ("shortsize", "smaller than"),
    ("noentry", "noentry_LTX_irfw_plugin_get is missing"),
    ("misnamed", "calls itself 'someoneelse'"),
    ("badopts", "declared twice"),
])
def test_broken_plugin_refused(world, module, reason):
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["good", module], {**GOOD, module: {"needed": "x"}})
    p = world.irfw("--conf", conf, "-i", inst, env={"IRFW_PLUGIN_PATH": str(FIXTUREDIR)})
    assert p.returncode == 2, p.stderr
    assert f"{FIXTUREDIR}/{module}.la" in p.stderr and reason in p.stderr, p.stderr
    assert not world.evidence.exists()


def test_plan_makes_no_aws_call(tmp_path):
    # The sample site configuration from the source tree, no credentials,
    # and an endpoint nobody listens on: --plan must still work.
    p = run_plain("--plan", "-i", "i-0123456789abcdef0", "--conf", REPO / "conf" / "irfw.ini",
                  env={"IRFW_PLUGIN_PATH": str(PLUGINDIR), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert p.returncode == 0, p.stderr
    assert "i-0123456789abcdef0" in p.stdout
    for step in ["isolate", "protect", "snapshot", "upload"]:
        assert step in p.stdout


@pytest.mark.parametrize("cmd", [["--plan"], [], ["check"], ["release"]])
@pytest.mark.parametrize("case", ["../../etc", "a/b", "", "x y"])
def test_bad_case_id_is_a_usage_error_before_any_aws_call(cmd, case):
    """A case id names the records' folder: a bad one is refused (exit 2)
    as the command line is read, before any AWS call (the endpoint here
    answers nothing) and in --plan too."""
    args = [*cmd, "--case-id", case, "-i", "i-0123456789abcdef0", "--conf", REPO / "conf" / "irfw.ini"]
    p = run_plain(*args, env={"IRFW_PLUGIN_PATH": str(PLUGINDIR), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "is not a case id" in p.stderr, p.stderr
    assert "ConnectionError" not in p.stderr and "acting as" not in p.stderr


def test_plan_from_source_tree_default_conf():
    """`irfw --plan -i ID` from the top of the source tree finds
    conf/irfw.ini and the plugins of the build tree the binary is from."""
    p = run_plain("--plan", "-i", "i-0123456789abcdef0", cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert "isolate" in p.stdout and "notify_slack" in p.stdout
    # `irfw plugins` from there lists them, and says nothing else.
    p = run_plain("plugins", cwd=REPO)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "isolate" in p.stdout


def test_plan_json_only_skip(world):
    conf = world.write_conf(["good", "second", "third"],
                            {"good": {"needed": "x"}, "second": {"plugin": "good", "needed": "y"},
                             "third": {"plugin": "good", "needed": "z", "on_error": "stop"}})
    p = world.irfw("--conf", conf, "--plan", "-o", "json", "-i", "i-0123456789abcdef0", "--skip", "second")
    assert p.returncode == 0, p.stderr
    steps = p.json["instances"][0]["steps"]
    assert [s["step"] for s in steps] == ["good", "third"]
    assert steps[1]["plugin"] == "good" and steps[1]["on_error"] == "stop"
    p = world.irfw("--conf", conf, "--plan", "-i", "i-0123456789abcdef0", "--only", "nosuch")
    assert p.returncode == 2 and "--only nosuch: no such step" in p.stderr


def test_plugins_listing_and_describe(world):
    env = {"IRFW_PLUGIN_PATH": str(PLUGINDIR)}
    conf = world.write_conf(["good"], GOOD)
    p = world.irfw("plugins", "--conf", conf, env=env)
    assert p.returncode == 0, p.stderr
    names = [line.split()[0] for line in p.stdout.splitlines()[1:] if line.strip() and not line.startswith("Search")]
    assert names, p.stdout
    for name in names + ["irfw"]:
        d = world.irfw("plugins", "--conf", conf, "--describe", name, env=env)
        assert d.returncode == 0, d.stderr
        assert d.stdout.strip()
        # --man: a plugin's own page, irfw-NAME(7); the [irfw] section has
        # none (it is irfw.ini(5)'s).  --man-section: the part of irfw.ini(5).
        m = world.irfw("plugins", "--conf", conf, "--describe", name, "--man", env=env)
        assert m.returncode == 0 and m.stdout.startswith(".SS" if name == "irfw" else ".TH"), m.stdout[:200]
        m = world.irfw("plugins", "--conf", conf, "--describe", name, "--man-section", env=env)
        assert m.returncode == 0 and m.stdout.startswith(".SS")
    p = world.irfw("plugins", "--conf", conf, "--describe", "nosuch", env=env)
    assert p.returncode == 2 and "unknown plugin 'nosuch'" in p.stderr
    # Broken modules in the path are reported, with their file.
    p = world.irfw("plugins", "--conf", conf, env={"IRFW_PLUGIN_PATH": str(FIXTUREDIR)})
    assert p.returncode == 2 and "badmajor.la" in p.stderr


@pytest.mark.parametrize("choices,named", [
    (["--man", "--ini"], "--man and --ini"),
    (["--ini", "--man-section"], "--man-section and --ini"),
    (["--man-section", "--man"], "--man and --man-section"),
    (["--man", "--man-section", "--ini"], "--man, --man-section and --ini"),
])
def test_describe_output_choices_are_alternatives(choices, named):
    """--man, --man-section and --ini each choose what --describe prints:
    two of them were one silently ignored.  Now a usage error naming them,
    before the site file or the plugins are looked at (this one names a
    file that does not exist and a plugin that is not there)."""
    p = run_plain("plugins", "--describe", "nosuch", *choices, "--conf", "/nonexistent.ini",
                  env={"IRFW_PLUGIN_PATH": str(PLUGINDIR)})
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    assert p.stderr.startswith(f"irfw: {named} are alternatives: give one of --man, --man-section, --ini\n"), \
        p.stderr
    assert "nonexistent" not in p.stderr and "nosuch" not in p.stderr


def test_run_json_facts_and_exit_codes(world):
    inst = world.vpc_world(n_instances=2, enis=1, volumes=1)["instances"]
    conf = world.write_conf(["good", "second"], {"good": {"needed": "x", "greeting": "hi ${instance_id} ${name_tag}"},
                                                 "second": {"plugin": "good", "needed": "y"}})
    p = world.irfw("--conf", conf, "-i", inst[0], "-i", inst[1], "-o", "json", "--case-id", "IR-T1", check_rc=0)
    doc = p.json
    assert doc["case_id"] == "IR-T1" and doc["account_id"] == world.account_id
    by_id = {i["instance_id"]: i for i in doc["instances"]}
    s = by_id[inst[0]]["steps"]
    assert s[0]["status"] == "ok" and s[0]["detail"] == f"hi {inst[0]} web-0"
    assert s[1]["detail"].endswith("after good")  # a fact left by the earlier step
    for key in ["step", "plugin", "status", "detail", "aws_error", "request_id", "ms"]:
        assert key in s[0]
    m = world.manifest("IR-T1", inst[1])
    assert m["steps"]["good"]["status"] == "ok"
    assert any(a["name"] == "describe-instance.json" for a in m["artifacts"])
    journal = (world.evidence / "IR-T1" / inst[1] / "journal.jsonl").read_text().splitlines()
    assert len(journal) >= 4

    # Not found: exit 3, the other instance is still handled.
    p = world.irfw("--conf", conf, "-i", inst[0], "-i", "i-0123456789abcdef0", "-o", "json")
    assert p.returncode == 3, p.stderr
    assert "i-0123456789abcdef0" in p.stderr and "not found" in p.stderr
    assert {i["instance_id"]: i["found"] for i in p.json["instances"]} == {inst[0]: True, "i-0123456789abcdef0": False}


def test_on_error_stop_and_continue(world):
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["first", "fails", "after"], {
        "first": {"plugin": "good", "needed": "x"},
        "fails": {"plugin": "good", "needed": "x", "mode": "b", "on_error": "stop"},
        "after": {"plugin": "good", "needed": "x"}})
    p = world.irfw("--conf", conf, "-i", inst, "-o", "json")
    assert p.returncode == 1
    st = [s["status"] for s in p.json["instances"][0]["steps"]]
    assert st == ["ok", "failed", "not-run"]
    conf = world.write_conf(["first", "fails", "after"], {
        "first": {"plugin": "good", "needed": "x"},
        "fails": {"plugin": "good", "needed": "x", "mode": "b"},
        "after": {"plugin": "good", "needed": "x"}})
    p = world.irfw("--conf", conf, "-i", inst, "-o", "json")
    assert p.returncode == 1
    assert [s["status"] for s in p.json["instances"][0]["steps"]] == ["ok", "failed", "ok"]


def test_resume_same_case(world):
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["good", "fails"], {"good": {"needed": "x"},
                                                "fails": {"plugin": "good", "needed": "x", "mode": "b"}})
    world.irfw("--conf", conf, "-i", inst, "--case-id", "IR-R", check_rc=1)
    p = world.irfw("--conf", conf, "-i", inst, "--case-id", "IR-R", "-o", "json", check_rc=1)
    steps = p.json["instances"][0]["steps"]
    assert steps[0].get("resumed") is True          # done before: not repeated
    assert steps[1]["status"] == "failed" and not steps[1].get("resumed")  # failed before: tried again
    m = world.manifest("IR-R", inst)
    assert len(m["runs"]) == 2
    assert m["steps"]["fails"]["attempts"] == 2


def test_from_file_and_stdin(world):
    ids = world.vpc_world(n_instances=2, enis=1, volumes=1)["instances"]
    f = world.tmp / "ids.txt"
    f.write_text(f"# suspected\n{ids[0]}\n\n  {ids[1]}  \n")
    conf = world.write_conf(["good"], GOOD)
    p = world.irfw("--conf", conf, "--from-file", f, "-o", "json", check_rc=0)
    assert sorted(i["instance_id"] for i in p.json["instances"]) == sorted(ids)
    p = world.irfw("--conf", conf, "--from-file", "-", "-o", "json", input=ids[0] + "\n", check_rc=0)
    assert [i["instance_id"] for i in p.json["instances"]] == [ids[0]]
    f.write_text("i-nothex\n")
    p = world.irfw("--conf", conf, "--from-file", f)
    assert p.returncode == 2 and f"{f}:1:" in p.stderr


def test_bad_credentials_are_reported_without_secret(world):
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["good"], GOOD)
    p = world.irfw("--conf", conf, "-i", inst, env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    assert p.returncode == 2
    assert "no usable AWS credentials" in p.stderr


def test_valgrind_full_run(world):
    """Run under valgrind by tests/run.sh (IRFW_VALGRIND=1); plain otherwise."""
    inst = world.vpc_world(enis=2, volumes=2)["instances"][0]
    conf = world.write_conf(["good", "second"], {"good": {"needed": "x"},
                                                 "second": {"plugin": "good", "needed": "y"}})
    world.irfw("--conf", conf, "-i", inst, "-o", "json", check_rc=0)


def test_module_calling_missing_function_refused_at_load(world):
    """A module built against a newer SDK (it calls a function this libirfw
    lacks) is refused when loaded, naming the file and the symbol, by every
    command, before any instance is touched; lazily bound, it would pass
    these and die with "symbol lookup error" in the middle of a run."""
    w = world.vpc_world(enis=1, volumes=1)
    inst, web = w["instances"][0], w["sg"]
    conf = world.write_conf(["good", "isolate", "unresolved"], {**GOOD, "isolate": {}})
    for args in (["--plan"], ["check"], []):
        p = world.irfw(*args, "--conf", conf, "-i", inst)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert "unresolved.so" in p.stderr and "irfw_function_from_the_future" in p.stderr, p.stderr
        assert "symbol lookup error" not in p.stderr
    p = world.irfw("plugins", "--conf", conf)
    assert "irfw_function_from_the_future" in p.stderr
    assert not world.evidence.exists()
    eni = world.instance(inst)["NetworkInterfaces"][0]
    assert [g["GroupId"] for g in eni["Groups"]] == [web]


def test_undeclared_key_is_a_loud_plugin_bug(world):
    """irfw_step_get() on a key the plugin's table does not declare (a typo
    in its code) must not read as "unset" silently.  The awscall fixture
    reads the keys its INI names; asking for "servce" is such a typo."""
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["call"], {"call": {"plugin": "awscall", "service": "ec2",
                                                "operation": "DescribeRegions", "params": "{}",
                                                "also_read": "servce"}})
    p = world.irfw("--conf", conf, "-i", inst)
    assert "plugin bug: awscall asked for key 'servce'" in p.stderr, p.stderr


def test_optional_step_whose_plugin_is_not_installed(world):
    """A distribution ships some plugins as packages of their own: a step
    marked optional = true whose plugin is not installed is left out with a
    warning naming the package; one not marked optional stops the run."""
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    some = world.tmp / "some-plugins"
    some.mkdir()
    for f in ("good.so",):
        (some / f).symlink_to(FIXTUREDIR / ".libs" / f)
    conf = world.write_conf(["good", "notify_slack"], {**GOOD, "notify_slack": {"optional": "true"}})
    p = world.irfw("--conf", conf, "-i", inst, "-o", "json", env={"IRFW_PLUGIN_PATH": str(some)}, check_rc=0)
    assert "optional step left out: plugin notify_slack is not installed" in p.stderr
    assert "apt install irfw-plugin-notify-slack" in p.stderr
    assert [s["step"] for s in p.json["instances"][0]["steps"]] == ["good"]
    conf = world.write_conf(["good", "notify_slack"], GOOD)
    p = world.irfw("--conf", conf, "-i", inst, env={"IRFW_PLUGIN_PATH": str(some)}, check_rc=2)
    assert "unknown plugin 'notify_slack'" in p.stderr


def test_text_that_is_not_utf8_is_refused_before_aws(world):
    """JSON (the report, the record) and AWS tags hold UTF-8 only: a site
    value or an option that is not UTF-8 is a usage error (exit 2) before
    any AWS call, never bytes written raw into a JSON document."""
    iid = "i-0123456789abcdef0"
    site = world.tmp / "bad.ini"
    site.write_bytes(b"[irfw]\npipeline = good\n[good]\nneeded = A\xff\xfeB\n")
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    p = world.irfw("--conf", site, "-i", iid, "-o", "json", env=env, check_rc=2)
    assert "not UTF-8" in p.stderr and f"{site}:4:" in p.stderr, p.stderr
    p = subprocess.run([str(IRFW_BIN), "--conf", str(world.write_conf(["good"], {"good": {"needed": "x"}})),
                        "-i", iid, "--evidence-dir", os.fsdecode(b"/tmp/ev\xff"), "-o", "json"],
                       capture_output=True, env=world.env(**env))
    assert p.returncode == 2 and b"not UTF-8" in p.stderr and p.stdout == b"", p.stderr


@pytest.mark.parametrize("args", [["--from-file", "-", "--finding", "-"], ["--finding", "-", "-f", "-"]])
def test_standard_input_given_twice_is_named(args):
    p = subprocess.run([str(IRFW_BIN), *args], input="i-0123456789abcdef0\n", capture_output=True,
                       text=True, env={**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert p.returncode == 2 and "given twice" in p.stderr, p.stderr


@pytest.mark.parametrize("command", ["check", "dry-run"])
def test_blanks_inside_section_brackets_are_trimmed(world, command):
    """inih trims keys and values but not "[ good ]": the section was one
    nobody read ("no [good] section", or a step silently run without its
    keys).  Trimmed, check and a dry run both read it, its keys and their
    errors with file:line."""
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    args = ["check"] if command == "check" else ["--dry-run", "-i", inst]
    site = world.tmp / "blanks.ini"
    site.write_text(f"[ irfw ]\npipeline = good\nregion = {world.region}\nevidence_dir = {world.evidence}\n"
                    "[\tgood ]\nneeded = x\n")
    p = world.irfw(*args, "--conf", site)
    assert p.returncode == 0, p.stderr
    assert "section" not in p.stderr, p.stderr
    site.write_text(site.read_text() + "count = three\n")
    p = world.irfw(*args, "--conf", site)
    assert p.returncode == 2, p.stderr
    assert f"{site}:7: [good] count = three: expected an integer" in p.stderr, p.stderr


def test_a_section_one_typo_from_a_step_is_warned_about(tmp_path):
    """[isolat] is read by nothing: isolate would run with its defaults.
    A section a letter or two from a step's name is named, with the step;
    one for a step simply not in the pipeline ([asg]) is not."""
    site = tmp_path / "site.ini"
    site.write_text("[irfw]\npipeline = isolate, tag\n[isolat]\nadmin_cidrs = 10.0.0.0/8\n"
                    "[asg]\nmode = detach\n")
    p = run_plain("--plan", "-i", "i-0123456789abcdef0", "--conf", site,
                  env={"IRFW_PLUGIN_PATH": str(PLUGINDIR)})
    assert p.returncode == 0, p.stderr
    assert f"{site}:3: section [isolat] is not in the pipeline" in p.stderr
    assert "did you mean [isolate]?" in p.stderr
    assert "[asg]" not in p.stderr
