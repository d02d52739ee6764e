"""Load no code and no configuration that someone else could have written:
irfw runs with the responder's AWS credentials, and a plugin is code.

- conf/irfw.ini of the working folder is read only by a binary of a build
  tree inside that folder (the source tree), never by an installed one;
- a plugin file, or a folder above it, writable by group or others (a
  sticky folder such as /tmp excepted) or owned by someone else than root
  or the invoking user is refused before any instance is touched;
- secrets in files readable by group or others are warned about."""
import os
import shutil
import stat

import pytest

from conftest import BUILDDIR, FIXTUREDIR, IRFW_BIN

GOOD = {"good": {"needed": "x"}}
IID = "i-0123456789abcdef0"


def good_so():
    return FIXTUREDIR / ".libs" / "good.so"


def attacker_folder(tmp):
    """A folder someone else prepared: a conf/irfw.ini naming a plugin of
    theirs next to it."""
    evil = tmp / "evil"
    (evil / "conf").mkdir(parents=True)
    (evil / "plugins").mkdir()
    shutil.copy(good_so(), evil / "plugins" / "good.so")
    (evil / "conf" / "irfw.ini").write_text(
        "[irfw]\npipeline = good\nplugin_path = ../plugins\nregion = us-east-1\n\n[good]\nneeded = pwned\n")
    return evil


def installed_copy(tmp):
    """The binary outside any build tree, as `make install` puts it."""
    real = BUILDDIR / ".libs" / "irfw"
    if not real.exists():
        real = BUILDDIR / ".libs" / "lt-irfw"
    bindir = tmp / "bin"
    bindir.mkdir()
    shutil.copy(real, bindir / "irfw")
    return bindir / "irfw"


def test_installed_binary_ignores_conf_of_working_folder(world):
    evil = attacker_folder(world.tmp)
    binary = installed_copy(world.tmp)
    env = world.env(IRFW_PLUGIN_PATH=None, LD_LIBRARY_PATH=str(BUILDDIR / ".libs"))
    import subprocess
    p = subprocess.run([str(binary), "--plan", "-i", IID], cwd=evil, env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "never reads conf/irfw.ini from the working folder" in p.stderr
    assert "pwned" not in p.stdout and "good" not in p.stdout


def test_build_tree_binary_ignores_a_foreign_folder(world):
    """Even the build tree's binary reads conf/irfw.ini only from the source
    tree it belongs to, not from wherever it is run."""
    evil = attacker_folder(world.tmp)
    import subprocess
    p = subprocess.run([str(IRFW_BIN), "--plan", "-i", IID], cwd=evil, env=world.env(IRFW_PLUGIN_PATH=None),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "no configuration" in p.stderr and "good" not in p.stdout


@pytest.mark.parametrize("where", ["env", "plugin_path"])
def test_world_writable_plugin_folder_refused(world, where):
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    ww = world.tmp / "shared-plugins"
    ww.mkdir()
    shutil.copy(good_so(), ww / "good.so")
    ww.chmod(0o777)
    if where == "env":
        conf = world.write_conf(["good"], GOOD)
        env = {"IRFW_PLUGIN_PATH": str(ww)}
    else:
        conf = world.write_conf(["good"], GOOD, plugin_path=str(ww))
        env = {"IRFW_PLUGIN_PATH": None}
    for args in (["--plan"], []):
        p = world.irfw(*args, "--conf", conf, "-i", inst, env=env)
        assert p.returncode == 2, p.stdout + p.stderr
        assert f"folder {ww} is writable by anyone" in p.stderr, p.stderr
    assert not world.evidence.exists()


def test_group_writable_plugin_file_refused(world):
    d = world.tmp / "plugins"
    d.mkdir()
    shutil.copy(good_so(), d / "good.so")
    (d / "good.so").chmod(0o775)
    conf = world.write_conf(["good"], GOOD)
    p = world.irfw("--plan", "--conf", conf, "-i", IID, env={"IRFW_PLUGIN_PATH": str(d)}, check_rc=2)
    assert f"file {d}/good.so is writable by its group" in p.stderr
    # Fixed, it loads: the refusal was the mode and nothing else.
    (d / "good.so").chmod(0o755)
    world.irfw("--plan", "--conf", conf, "-i", IID, env={"IRFW_PLUGIN_PATH": str(d)}, check_rc=0)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_plugin_owned_by_someone_else_refused(world):
    d = world.tmp / "plugins"
    d.mkdir()
    shutil.copy(good_so(), d / "good.so")
    os.chown(d / "good.so", 12345, 12345)
    conf = world.write_conf(["good"], GOOD)
    p = world.irfw("--plan", "--conf", conf, "-i", IID, env={"IRFW_PLUGIN_PATH": str(d)}, check_rc=2)
    assert "owned by uid 12345" in p.stderr


def test_sticky_folder_on_the_path_is_fine(world):
    """/tmp is writable by anyone but sticky: nobody can replace what is
    ours in it, so a plugin below it (in a folder of ours) loads."""
    sticky = world.tmp / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    d = sticky / "mine"
    d.mkdir()
    shutil.copy(good_so(), d / "good.so")
    conf = world.write_conf(["good"], GOOD)
    world.irfw("--plan", "--conf", conf, "-i", IID, env={"IRFW_PLUGIN_PATH": str(d)}, check_rc=0)


def test_readable_secrets_warned(world):
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["good", "notify_slack"],
                            {**GOOD, "notify_slack": {"webhook_url": "https://hooks.example/services/T0/B0/xyzzy1234"}})
    conf.chmod(0o644)
    aws = world.home / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKIAIRFWTESTKEY00001\n"
                                     "aws_secret_access_key = irfw/test/secret/key/0000000000000000000\n")
    (aws / "credentials").chmod(0o640)
    p = world.irfw("--conf", conf, "-i", inst, "--dry-run")
    assert f"{conf} is readable by anyone (mode 0644)" in p.stderr, p.stderr
    assert f"credentials file {aws}/credentials is readable by its group" in p.stderr
    # Private, no warning.
    conf.chmod(0o600)
    (aws / "credentials").chmod(0o600)
    p = world.irfw("--conf", conf, "-i", inst, "--dry-run")
    assert "is readable by" not in p.stderr


def test_group_readable_webhook_file_warned(world):
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    hook = world.tmp / "slack-hook"
    hook.write_text("https://hooks.example/services/T0/B0/xyzzy1234\n")
    hook.chmod(0o640)
    conf = world.write_conf(["notify_slack"], {"notify_slack": {"webhook_url_file": str(hook)}})
    p = world.irfw("--conf", conf, "-i", inst, "--dry-run")
    assert f"webhook_url_file {hook} is readable by its group (mode 0640)" in p.stderr, p.stderr
    assert "xyzzy1234" not in p.stdout + p.stderr
    hook.chmod(0o600)
    p = world.irfw("--conf", conf, "-i", inst, "--dry-run")
    assert "is readable by" not in p.stderr
