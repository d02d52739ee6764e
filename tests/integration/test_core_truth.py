"""The core's share of "say only what AWS shows": the containment fact and
the exit status it drives, instances that are gone, a check and a dry run
that change nothing, usage errors before any change, an evidence folder
that cannot be written, and AWS text that cannot forge terminal output.

The `contain` test fixture (tests/fixtures/contain.c) reports whatever
containment its options say, so these tests do not depend on isolate."""
import http.server
import json
import threading

import pytest

from conftest import AMI

GOOD = {"needed": "x"}


def inst_of(p, iid):
    return next(i for i in p.json["instances"] if i["instance_id"] == iid)


def step_of(p, iid, name):
    return next(s for s in inst_of(p, iid)["steps"] if s["step"] == name)


def tags(world, iid):
    return {t["Key"]: t["Value"] for t in world.instance(iid).get("Tags", [])}


# ---------------------------------------------------------- containment --

@pytest.mark.parametrize("report,state,rc", [
    ("contained", "contained", 0),
    ("partially-contained", "partially-contained", 4),
    ("not-contained", "not-contained", 4),
    ("none", "not-attempted", 0),
])
def test_containment_drives_summary_and_exit(world, report, state, rc):
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["contain", "good"], {"contain": {"report": report, "cause": "eni-x open"},
                                                  "good": GOOD})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", "C1", check_rc=rc)
    c = inst_of(p, iid)["containment"]
    assert c["state"] == state
    if state in ("partially-contained", "not-contained"):
        assert c["cause"] == "eni-x open"
        assert c["outcome"] == state.replace("-", " ").upper()
    # Kept in the case record, where a resumed run finds it.
    rec = world.manifest("C1", iid)["steps"]["contain"].get("records", {})
    if report != "none":
        assert rec["containment"]["state"] == state
    # The text summary leads each instance with it.
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "C2", check_rc=rc)
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith(iid))
    assert state.replace("-", " ").upper() in line


def test_failed_contain_step_degrades_containment(world):
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    # A contain step that failed without saying anything, after one that
    # verified containment: partially contained, naming the failed step.
    conf = world.write_conf(["contain", "other"], {"contain": {},
                                                   "other": {"plugin": "contain", "report": "none",
                                                             "fail": "true", "cause": "detach refused"}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", "D1", check_rc=4)
    c = inst_of(p, iid)["containment"]
    assert c["state"] == "partially-contained" and "other failed" in c["cause"], c
    # Alone, nothing verified anything: not contained.
    conf = world.write_conf(["other"], {"other": {"plugin": "contain", "report": "none", "fail": "true"}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", "D2", check_rc=4)
    assert inst_of(p, iid)["containment"]["state"] == "not-contained"
    # A failed step of another phase does not touch containment.
    conf = world.write_conf(["contain", "other"], {"contain": {},
                                                   "other": {"plugin": "contain", "report": "none", "fail": "true",
                                                             "phase": "preserve"}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", "D3", check_rc=1)
    assert inst_of(p, iid)["containment"]["state"] == "contained"


def test_report_step_runs_again_when_containment_changed(world):
    """A report step done while the instance was not contained said so;
    resumed after containment succeeded, it must say the new truth."""
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    sections = {"contain": {"report": "not-contained", "fail": "true"},
                "say": {"plugin": "good", "needed": "x", "phase": "report", "greeting": "${outcome}"}}
    conf = world.write_conf(["contain", "say"], sections)
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", "R1", check_rc=4)
    assert step_of(p, iid, "say")["detail"].startswith("NOT CONTAINED")
    sections["contain"] = {"report": "contained"}
    conf = world.write_conf(["contain", "say"], sections)
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", "R1", check_rc=0)
    say = step_of(p, iid, "say")
    assert not say.get("resumed") and say["detail"].startswith("CONTAINED"), say
    # Nothing changed since: now it is resumed, not repeated.
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", "R1", check_rc=0)
    assert step_of(p, iid, "say").get("resumed") is True


def test_dry_run_reports_no_containment(world):
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["contain"], {"contain": {"report": "not-contained"}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--dry-run", check_rc=0)
    c = inst_of(p, iid)["containment"]
    assert c["state"] == "not-attempted" and "dry run" in c["cause"]


# ------------------------------------------------------- instance state --

def test_terminated_instance_not_handled(world):
    w = world.vpc_world(n_instances=2, enis=1, volumes=1)
    gone, live = w["instances"]
    world.client("ec2").terminate_instances(InstanceIds=[gone])
    conf = world.write_conf(["contain", "good"], {"contain": {}, "good": GOOD})
    p = world.irfw("--conf", conf, "-i", gone, "-i", live, "-o", "json", "--case-id", "T1", check_rc=3)
    g = inst_of(p, gone)
    assert g["found"] is True and g["handled"] is False and g["state"] == "terminated"
    assert g["steps"] == [] and "containment" not in g
    assert f"[{gone}] error: instance is terminated" in p.stderr
    assert not (world.evidence / "T1" / gone).exists()
    assert inst_of(p, live)["containment"]["state"] == "contained"
    p = world.irfw("--conf", conf, "-i", gone, "--case-id", "T2", check_rc=3)
    assert "terminated: not handled" in p.stdout and "CONTAINED" not in p.stdout


def test_stopped_instance_is_handled(world):
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    world.client("ec2").stop_instances(InstanceIds=[iid])
    conf = world.write_conf(["contain", "good"], {"contain": {}, "good": GOOD})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)
    assert inst_of(p, iid)["state"] == "stopped"
    assert step_of(p, iid, "good")["status"] == "ok"


# ------------------------------------------------------ check and dry ----

def test_check_never_runs_a_plugin_without_check(world):
    """awscall (a fixture) has no check: `irfw check` must not call its run,
    which would tag the instance."""
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    params = json.dumps({"ResourceId": ["${instance_id}"], "Tag": [{"Key": "touched", "Value": "yes"}]})
    conf = world.write_conf(["tagit"], {"tagit": {"plugin": "awscall", "service": "ec2",
                                                  "operation": "CreateTags", "params": params}})
    p = world.irfw("check", "--conf", conf, "-i", iid, "-o", "json", check_rc=0)
    s = step_of(p, iid, "tagit")
    assert s["status"] == "not-checked" and "no preflight" in s["detail"]
    assert "touched" not in tags(world, iid)
    assert not world.evidence.exists()
    # The same step really run does tag: the test can fail.
    world.irfw("--conf", conf, "-i", iid, check_rc=0)
    assert tags(world, iid)["touched"] == "yes"


def make_profile(world):
    iam = world.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                       "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="web-role", AssumeRolePolicyDocument=json.dumps(trust))
    prof = iam.create_instance_profile(InstanceProfileName="web-profile")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="web-profile", RoleName="web-role")
    return prof["Arn"]


def associated(world, iid):
    res = world.client("ec2").describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [iid]}, {"Name": "state", "Values": ["associated"]}])
    return res["IamInstanceProfileAssociations"]


@pytest.mark.parametrize("how", [["check"], ["--dry-run"]])
def test_dry_means_dry_for_calls_without_dry_run(world, how):
    """DisassociateIamInstanceProfile has no DryRun parameter: a preflight
    must not send it (moto would perform it), and must say it is unchecked."""
    arn = make_profile(world)
    iid = world.client("ec2").run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                            IamInstanceProfile={"Arn": arn})["Instances"][0]["InstanceId"]
    conf = world.write_conf(["iam_profile"], {"iam_profile": {}})
    p = world.irfw(*how, "--conf", conf, "-i", iid, "-o", "json", check_rc=0)
    assert len(associated(world, iid)) == 1, "the preflight removed the instance profile"
    s = step_of(p, iid, "iam_profile")
    assert "ec2:DisassociateIamInstanceProfile" in s["detail"] and "not checked" in s["detail"], s
    assert s["not_checked"] == ["ec2:DisassociateIamInstanceProfile"]


# ---------------------------------------------------------- usage ------

@pytest.mark.parametrize("flag,value,msg", [
    ("-g", "sg-nothex!", "is not a security group id"),
    ("-t", "arn:aws:sqs:us-east-1:123456789012:q", "is not an SNS topic ARN"),
    ("-b", "Evidence_Bucket", "is not an S3 bucket name"),
    ("--region", "us-east-1; rm", "is not an AWS region"),
])
def test_bad_values_refused_before_any_change(world, flag, value, msg):
    w = world.vpc_world(enis=1, volumes=1)
    iid, web = w["instances"][0], w["sg"]
    conf = world.write_conf(["isolate", "protect"], {"isolate": {}, "protect": {}})
    p = world.irfw("--conf", conf, "-i", iid, flag, value, check_rc=2)
    assert msg in p.stderr and flag.split("/")[0] in p.stderr
    inst = world.instance(iid)
    assert [g["GroupId"] for g in inst["NetworkInterfaces"][0]["Groups"]] == [web]
    attr = world.client("ec2").describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
    assert attr["DisableApiTermination"]["Value"] is False
    assert not world.evidence.exists()


def test_bad_values_in_the_site_file(world):
    conf = world.write_conf(["good"], {"good": GOOD}, sgid="sg-12", case_id="IR-${name_tag}")
    p = world.irfw("--conf", conf, "-i", "i-0123456789abcdef0", check_rc=2)
    assert f"{conf}:5: [irfw] sgid = sg-12 is not a security group id" in p.stderr
    assert f"{conf}:6: [irfw] case_id" in p.stderr and "${name_tag}" in p.stderr


def test_from_file_folder_is_a_usage_error(world):
    p = world.irfw("--conf", world.write_conf(["good"], {"good": GOOD}), "--from-file", world.tmp, check_rc=2)
    assert "is a folder" in p.stderr


# ---------------------------------------------------- evidence folder ----

def test_unwritable_evidence_folder_does_not_stop_containment(world):
    w = world.vpc_world(enis=1, volumes=1)
    iid, vpc = w["instances"][0], w["vpc"]
    blocker = world.tmp / "a-file"
    blocker.write_text("not a folder")
    conf = world.write_conf(["isolate", "good"], {"isolate": {}, "good": GOOD})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--evidence-dir", blocker / "cases")
    assert "no case record" in p.stderr and "containment goes on" in p.stderr
    q = world.client("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": [f"irfw-quarantine-{vpc}"]}])
    qid = q["SecurityGroups"][0]["GroupId"]
    hits = world.client("ec2").describe_network_interfaces(Filters=[
        {"Name": "attachment.instance-id", "Values": [iid]}, {"Name": "group-id", "Values": [qid]}])
    assert len(hits["NetworkInterfaces"]) == 1, "the interface was not isolated"
    assert step_of(p, iid, "good")["status"] == "ok"


def test_a_step_whose_record_cannot_be_written_fails(world):
    """protect changes the instance and records how it was; when the record
    cannot be written the change stays (AWS shows it) but the step says it
    is not recorded and fails."""
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    blocker = world.tmp / "a-file"
    blocker.write_text("not a folder")
    conf = world.write_conf(["protect"], {"protect": {}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--evidence-dir", blocker / "cases", check_rc=1)
    s = step_of(p, iid, "protect")
    assert s["status"] == "failed" and "case record could not be written" in s["detail"], s
    attr = world.client("ec2").describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
    assert attr["DisableApiTermination"]["Value"] is True


@pytest.mark.parametrize("how", ["flag", "env"])
def test_evidence_dir_from_flag_or_environment(world, how):
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    conf = world.write_conf(["good"], {"good": GOOD})
    where = world.tmp / "elsewhere"
    if how == "flag":
        world.irfw("--conf", conf, "-i", iid, "--case-id", "E1", "--evidence-dir", where, check_rc=0)
    else:
        world.irfw("--conf", conf, "-i", iid, "--case-id", "E1", env={"IRFW_EVIDENCE_DIR": str(where)}, check_rc=0)
    assert (where / "E1" / iid / "manifest.json").is_file()
    assert not (world.evidence / "E1").exists()


# -------------------------------------------------------- forged text ----

def test_name_tag_cannot_forge_output(world):
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    # (moto writes control characters other than newline into its XML
    # unescaped, which no parser accepts: ESC cannot be tested here.)
    evil = "web\n[" + iid + " isolate] ok: quarantined\u202egnp.exe"
    world.client("ec2").create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": evil}])
    conf = world.write_conf(["contain", "good"], {"contain": {}, "good": {"needed": "x", "greeting": "${name_tag}"}})
    p = world.irfw("--conf", conf, "-i", iid, check_rc=0)
    out = p.stdout + p.stderr
    assert "\u202e" not in out
    assert not any(line.startswith(f"[{iid} isolate]") for line in out.splitlines()), out
    assert "\\x0a" in out and "\\u202e" in out


# --------------------------------------------------------- webhook ------

class EchoingWebhook:
    """Answers 404 with a body that quotes the request path, as some
    servers do: the path is the secret part of a webhook URL."""

    def __init__(self):
        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = f"<html>No webhook at {self.path}</html>".encode()
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0ECHO/B0ECHO/s3cr3tEchoedT0ken"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_webhook_error_body_never_leaks_the_url(world):
    iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
    hook = EchoingWebhook()
    try:
        conf = world.write_conf(["notify_slack"], {"notify_slack": {}})
        p = world.irfw("--conf", conf, "-i", iid, "-vv", env={"IRFW_SLACK_WEBHOOK": hook.url}, check_rc=1)
    finally:
        hook.close()
    out = p.stdout + p.stderr
    assert "HTTP 404" in out
    assert "s3cr3tEchoed" not in out and "T0ECHO" not in out
