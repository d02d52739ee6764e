"""The README's first command runs scripts/demo.py; keep it working."""
import subprocess
import sys

from conftest import BUILDDIR, REPO


def test_demo_runs_clean(tmp_path):
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--irfw", str(BUILDDIR / "irfw"),
                        "--plugins", str(BUILDDIR / "plugins"), "--workdir", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    out = p.stdout
    assert "irfw exit status: 0" in out
    assert "disableApiTermination: True" in out
    assert "egress none" in out and "192.0.2.0/24" in out
    assert "aws:kms" in out and "SNS message on the on-call queue" in out
    assert "Slack stand-in received 2 message(s)" in out
    assert list((tmp_path / "demo-cases").glob("IR-DEMO-*/i-*/manifest.json"))
