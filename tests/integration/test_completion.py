"""Bash completion (completion/irfw.bash): sourced in a real bash, its
function called the way bash calls it (COMP_WORDS, COMP_CWORD, COMP_LINE,
COMP_POINT set, then `_irfw irfw CUR PREV`), COMPREPLY read back.

What it offers comes from the binary being completed: the options from
`irfw --help`, plugin names from `irfw plugins`, the steps of --only and
--skip from `irfw --plan` of the line's --conf (which makes no AWS call).
Most tests run with bash-completion's helpers (as an installed system has
them) and skip without them; one runs without, as a bare bash has it.

Environment: IRFW_BUILDDIR (as for the other tests); IRFW_COMPLETION, the
completion file to test (default: completion/irfw.bash of this tree; the
Debian test points it at the installed one).
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IRFW_BIN, PLUGINDIR, REPO

COMPLETION = Path(os.environ.get("IRFW_COMPLETION", REPO / "completion" / "irfw.bash"))
HELPERS = Path("/usr/share/bash-completion/bash_completion")
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="no bash on this machine")
needs_helpers = pytest.mark.skipif(
    not HELPERS.exists(), reason=f"bash-completion's helpers ({HELPERS}) are not installed "
    "(Debian: apt install bash-completion)")

DRIVER = r'''
set -u
[ "${HELPERS:-}" ] && . "$HELPERS"
. "$COMPLETION"
complete -p irfw
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_irfw irfw "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(*words, helpers=True, env=None, cwd=None):
    """The candidates bash would offer for the line `words` (the last one
    the word being completed), with the build's irfw as the command."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IRFW_"))}
    e.update({"IRFW_PLUGIN_PATH": str(PLUGINDIR), "COMPLETION": str(COMPLETION),
              "HELPERS": str(HELPERS) if helpers else "", "HOME": os.environ.get("HOME", "/root"),
              # Any AWS call would go nowhere and fail: completion makes none.
              "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true"})
    e.update(env or {})
    p = subprocess.run([BASH, "--norc", "--noprofile", "-c", DRIVER, "bash", str(IRFW_BIN), *words],
                       env=e, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert p.returncode == 0, p.stderr
    # Nothing on the terminal: a completion that prints breaks the line.
    assert p.stderr == "", p.stderr
    registered, *candidates = p.stdout.split("\n")
    assert registered == "complete -F _irfw irfw", registered
    return [x for x in candidates if x]


def long_options():
    """Every long option `irfw --help` lists (lines "  -i, --iid ID  ...")."""
    out = subprocess.run([str(IRFW_BIN), "--help"], capture_output=True, text=True, check=True).stdout
    return {m.group(1) for m in re.finditer(r"^ +(?:-\w, )?(--[a-z][a-z0-9-]*)", out, re.M)}


def installed_plugins(path=PLUGINDIR):
    out = subprocess.run([str(IRFW_BIN), "plugins"], capture_output=True, text=True, check=True,
                         env={**os.environ, "IRFW_PLUGIN_PATH": str(path)}).stdout
    return {l.split()[0] for l in out.splitlines()[1:] if l.strip() and not l.startswith("Search")}


def site(tmp_path, text, name="site.ini"):
    p = tmp_path / name
    p.write_text(text)
    return p


def commands():
    """The subcommands of `irfw --help`'s usage lines."""
    out = subprocess.run([str(IRFW_BIN), "--help"], capture_output=True, text=True, check=True).stdout
    return sorted(set(re.findall(r"^(?:Usage:)? +irfw ([a-z]+)\b", out, re.M)))


@needs_helpers
def test_commands():
    cmds = commands()
    assert {"check", "plugins", "policy", "release"} <= set(cmds), cmds
    assert complete("") == cmds
    assert complete("ch") == ["check"]
    assert complete("pl") == ["plugins"]
    assert complete("rel") == ["release"]
    # After the command, nothing positional is left to complete.
    assert complete("check", "") == []
    # Options before the command do not count as one (getopt permutes).
    assert complete("-v", "-o", "json", "") == cmds


@needs_helpers
def test_options_are_those_of_help():
    help_opts = long_options()
    assert {"--iid", "--conf", "--dry-run", "--only", "--skip", "--plan", "--evidence-dir"} <= help_opts
    offered = set(complete("--"))
    plugins_only = {"--describe", "--man", "--ini"}
    # Every option of --help but those of `irfw plugins`, nothing else.
    assert offered == help_opts - plugins_only
    assert complete("--dr") == ["--dry-run"]
    assert complete("check", "--no") == ["--no-resume"]
    # `irfw plugins` takes --describe, --man and --ini.
    p = set(complete("plugins", "--"))
    assert plugins_only <= p and "--dry-run" not in p and "--iid" not in p
    assert complete("plugins", "--de") == ["--describe"]


@needs_helpers
def test_plugin_names_from_irfw_plugins():
    names = installed_plugins()
    assert {"isolate", "tag", "notify_slack"} <= names
    assert set(complete("plugins", "--describe", "")) == names | {"irfw"}
    assert complete("plugins", "--describe", "notify_") == ["notify_slack", "notify_sns"]
    # The listing follows the plugin path the completed command would use
    # (without the build's plugins: only those installed on this machine).
    elsewhere = installed_plugins("/nonexistent")
    assert set(complete("plugins", "--describe", "", env={"IRFW_PLUGIN_PATH": "/nonexistent"})) == \
        elsewhere | {"irfw"}


@needs_helpers
def test_steps_of_the_configured_pipeline(tmp_path):
    conf = site(tmp_path, "[irfw]\npipeline = isolate, tag,\n    tag_twice, gone\n\n"
                "[tag_twice]\nplugin = tag\n\n[gone]\noptional = true\n")
    # The steps are the pipeline's (a step named after its section, not its
    # plugin), without the optional one whose plugin is not installed.
    assert complete("--conf", str(conf), "--only", "") == ["isolate", "tag", "tag_twice"]
    assert complete("-c", str(conf), "-i", "i-0123456789abcdef0", "--skip", "t") == ["tag", "tag_twice"]
    assert complete(f"--conf={conf}", "--only", "ta") == ["tag", "tag_twice"]
    # A list: the words before the last comma are kept, and not offered again.
    assert complete("--conf", str(conf), "--skip", "tag,") == ["tag,isolate", "tag,tag_twice"]
    assert complete("--conf", str(conf), "--only=isolate,t") == ["isolate,tag", "isolate,tag_twice"]
    # A --conf anywhere on the line counts.
    assert complete("--only", "is", "-c", str(conf), "--only", "is") == ["isolate"]
    # A broken site file gives no steps, and no error on the terminal.
    bad = site(tmp_path, "[irfw]\npipeline = isolate\nno_such_key = 1\n", "bad.ini")
    assert complete("--conf", str(bad), "--only", "") == []


@needs_helpers
def test_default_pipeline(tmp_path):
    """With the documented site file, the steps are the default pipeline's."""
    steps = complete("--conf", str(REPO / "conf" / "irfw.ini"), "--skip", "")
    assert steps[:5] == ["spot", "asg", "elb", "iam_profile", "isolate"]
    assert "notify_slack" in steps and "eip" not in steps


@needs_helpers
def test_values_not_completed():
    """Instance ids (and other values only AWS knows) are not completed; the
    option is not mistaken for the end of the options either."""
    for opt in ("-i", "--iid", "-r", "--region", "-g", "--sgid", "-b", "-t", "--case-id", "-j", "-p"):
        assert complete(opt, "") == [], opt
    assert complete("-i", "i-") == []
    assert complete("--iid=i-") == []
    assert complete("-o", "") == ["text", "json"]
    assert complete("--output", "j") == ["json"]


@needs_helpers
def test_files_and_folders(tmp_path):
    (tmp_path / "site.ini").write_text("[irfw]\n")
    (tmp_path / "cases").mkdir()
    assert complete("--conf", "si", cwd=tmp_path) == ["site.ini"]
    assert "site.ini" in complete("-f", "", cwd=tmp_path)
    assert complete("--evidence-dir", "", cwd=tmp_path) == ["cases"]


def test_without_bash_completion_helpers(tmp_path):
    """A bare bash (no bash-completion package): still commands, options,
    plugins and steps, from the plain words."""
    conf = site(tmp_path, "[irfw]\npipeline = isolate, tag\n")
    assert complete("", helpers=False) == commands()
    assert complete("--dry", helpers=False) == ["--dry-run"]
    assert complete("plugins", "--describe", "iso", helpers=False) == ["isolate"]
    assert complete("--conf", str(conf), "--only", "", helpers=False) == ["isolate", "tag"]
    assert complete("-i", "", helpers=False) == []
