"""The AWS conventions people already use with boto3 and the AWS CLI, against
moto with a temporary HOME: credential_process, SSO profiles (the portal is
played by a local server: moto does not implement GetRoleCredentials),
mfa_serial on a terminal, [services] sections and the other configured
endpoints, AWS_CA_BUNDLE, AWS_MAX_ATTEMPTS / AWS_RETRY_MODE, and the SDKs'
credential precedence.  Which principal acted is read from moto's answer to
sts:GetCallerIdentity as irfw records it (the case manifest's caller_arn)
and prints it ("acting as ..."); no secret seeded here may appear in any
output or case file."""
import fcntl
import hashlib
import http.server
import json
import os
import select
import shutil
import ssl
import subprocess
import sys
import termios
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import IRFW_BIN

NO_ENV_KEYS = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}


# ---------------------------------------------------------------- helpers

def iso(delta_s):
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def moto_user(world, name):
    """An IAM user in moto and its key: GetCallerIdentity then names it."""
    iam = world.client("iam")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def moto_role(world, name="ir-responder"):
    return world.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]


def aws_files(world, config=None, credentials=None):
    aws = world.home / ".aws"
    aws.mkdir(exist_ok=True)
    if config is not None:
        (aws / "config").write_text(config)
    if credentials is not None:
        (aws / "credentials").write_text(credentials)
        os.chmod(aws / "credentials", 0o600)
    return aws


def instance(world):
    return world.vpc_world(enis=1, volumes=1)["instances"][0]


def conf(world, **globals_):
    return world.write_conf(["good"], {"good": {"needed": "x"}}, **globals_)


def acting_as(p):
    for line in p.stderr.splitlines():
        if "acting as " in line:
            return line.split("acting as ", 1)[1].split(" in account ")[0]
    return None


def assert_no_secrets(world, p, secrets):
    """No seeded secret in stdout, stderr or any file of the case record."""
    texts = {"stdout": p.stdout, "stderr": p.stderr}
    if world.evidence.exists():
        for f in world.evidence.rglob("*"):
            if f.is_file():
                texts[str(f)] = f.read_text(errors="replace")
    for s in secrets:
        assert s, "an empty secret proves nothing"
        for where, text in texts.items():
            assert s not in text, f"secret {s[:4]}... found in {where}"


class Recorder:
    """A proxy in front of moto that records each request (method, path,
    headers, form body) and may answer one itself: rule(req) -> None to
    forward, or (status, content_type, body)."""

    def __init__(self, upstream, rule=None, tls=None):
        rec = self
        self.requests = []
        self.answered = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def handle_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
                req = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                       "form": form}
                rec.requests.append(req)
                answer = rule(req) if rule else None
                if answer is not None:
                    rec.answered += 1
                    status, ctype, out = answer
                    self.reply(status, {"Content-Type": ctype}, out)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                r = urllib.request.Request(upstream + self.path, data=body if body else None,
                                           method=self.command, headers=headers)
                try:
                    resp = urllib.request.urlopen(r, timeout=30)
                    status, data, rh = resp.status, resp.read(), resp.headers
                except urllib.error.HTTPError as e:
                    status, data, rh = e.code, e.read(), e.headers
                keep = {k: v for k, v in rh.items()
                        if k.lower() not in ("content-length", "connection", "transfer-encoding", "server",
                                             "date")}
                self.reply(status, keep, data)

            def reply(self, status, headers, data):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def actions(self):
        return [r["form"].get("Action") for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Portal:
    """The SSO portal's GetRoleCredentials, which moto does not implement:
    GET /federation/credentials?role_name=R&account_id=A with the token in
    x-amz-sso_bearer_token; answers the given keys."""

    def __init__(self, akid, secret, token):
        portal = self
        self.requests = []
        self.status = 200

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urlparse(self.path)
                portal.requests.append({"path": u.path, "query": {k: v[0] for k, v in parse_qs(u.query).items()},
                                        "headers": {k.lower(): v for k, v in self.headers.items()}})
                if portal.status == 200:
                    body = json.dumps({"roleCredentials": {
                        "accessKeyId": akid, "secretAccessKey": secret, "sessionToken": token,
                        "expiration": int((time.time() + 3600) * 1000)}}).encode()
                    extra = {}
                else:
                    body = b'{"message":"Session token not found or invalid"}'
                    extra = {"x-amzn-ErrorType": "UnauthorizedException:http://internal.amazon.com/"}
                self.send_response(portal.status)
                self.send_header("Content-Type", "application/json")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------- 5. the SDKs' credential order

def role_world(world):
    """A role profile `ir` whose source is a moto user `base-user`; env keys
    of another moto user `env-user`."""
    role = moto_role(world)
    base = moto_user(world, "base-user")
    env = moto_user(world, "env-user")
    aws_files(world,
              config=f"[profile ir]\nrole_arn = {role}\nsource_profile = base\nrole_session_name = irfw-conv\n"
                     "region = us-east-1\n",
              credentials=f"[base]\naws_access_key_id = {base[0]}\naws_secret_access_key = {base[1]}\n")
    return role, base, env


def test_env_keys_beat_aws_profile_and_explicit_profile_beats_them(world):
    """boto3: with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and AWS_PROFILE
    both set the keys are used; --profile (explicit) wins over the keys."""
    inst = instance(world)
    _, base, env = role_world(world)
    c = conf(world)
    keys = {"AWS_ACCESS_KEY_ID": env[0], "AWS_SECRET_ACCESS_KEY": env[1], "AWS_PROFILE": "ir"}

    p = world.irfw("--conf", c, "-i", inst, "--case-id", "IR-ENV", env=keys)
    assert p.returncode == 0, p.stderr
    assert acting_as(p).endswith(":user/env-user"), p.stderr
    assert world.manifest("IR-ENV", inst)["runs"][0]["caller_arn"].endswith(":user/env-user")

    p = world.irfw("--conf", c, "-i", inst, "--case-id", "IR-EXPLICIT", "--profile", "ir", env=keys)
    assert p.returncode == 0, p.stderr
    assert "assumed-role/ir-responder/irfw-conv" in acting_as(p), p.stderr
    assert "assumed-role/ir-responder/irfw-conv" in world.manifest("IR-EXPLICIT", inst)["runs"][0]["caller_arn"]

    # Without the keys, AWS_PROFILE's role.
    p = world.irfw("--conf", c, "-i", inst, "--case-id", "IR-PROFILE",
                   env={**NO_ENV_KEYS, "AWS_PROFILE": "ir"})
    assert p.returncode == 0, p.stderr
    assert "assumed-role/ir-responder" in world.manifest("IR-PROFILE", inst)["runs"][0]["caller_arn"]
    assert_no_secrets(world, p, [base[1], env[1]])

    # A named profile that does not exist stops irfw, keys or not.
    p = world.irfw("--conf", c, "-i", inst, env={**keys, "AWS_PROFILE": "nosuch"})
    assert p.returncode == 2
    assert 'profile "nosuch" not found' in p.stderr


# --------------------------------------------------- 1. credential_process

HELPER = r'''#!/usr/bin/env python3
import json, os, sys
with open(os.environ["IRFW_T_COUNT"], "a") as f:
    f.write("x")
mode = sys.argv[1]
if mode == "fail":
    print("helper: the vault is sealed", file=sys.stderr)
    sys.exit(4)
if mode == "garbage":
    print("oops " + sys.argv[2])
    sys.exit(0)
print(json.dumps({"Version": 1, "AccessKeyId": sys.argv[2], "SecretAccessKey": sys.argv[3],
                  "SessionToken": sys.argv[4], "Expiration": sys.argv[5]}))
'''


def helper(world):
    path = world.tmp / "cred helper"
    path.write_text(HELPER)
    path.chmod(0o700)
    return path, world.tmp / "helper-runs"


def runs(counter):
    return len(counter.read_text()) if counter.exists() else 0


def test_credential_process(world):
    inst = instance(world)
    akid, secret = moto_user(world, "proc-user")
    token = "procSessionToken-6d0c9b1e0f3a47d8"
    path, counter = helper(world)
    aws_files(world, config=f'[profile proc]\nregion = us-east-1\ncredential_process = "{path}" ok {akid} '
                            f'{secret} {token} {iso(7200)}\n')
    env = {**NO_ENV_KEYS, "IRFW_T_COUNT": str(counter)}
    p = world.irfw("--conf", conf(world), "-i", inst, "--case-id", "IR-PROC", "--profile", "proc", "-v", env=env)
    assert p.returncode == 0, p.stderr
    assert acting_as(p).endswith(":user/proc-user"), p.stderr
    assert world.manifest("IR-PROC", inst)["runs"][0]["caller_arn"].endswith(":user/proc-user")
    assert runs(counter) == 1  # valid for two hours: run once
    assert_no_secrets(world, p, [secret, token])


def test_credential_process_refreshed_before_expiration(world):
    inst = instance(world)
    akid, secret = moto_user(world, "proc-user")
    path, counter = helper(world)
    # Expiring within the 5-minute window: fetched again before each use.
    aws_files(world, config=f'[profile proc]\nregion = us-east-1\ncredential_process = "{path}" ok {akid} '
                            f'{secret} procToken-refresh-0123456789 {iso(120)}\n')
    p = world.irfw("--conf", conf(world), "-i", inst, "--profile", "proc",
                   env={**NO_ENV_KEYS, "IRFW_T_COUNT": str(counter)})
    assert p.returncode == 0, p.stderr
    assert runs(counter) >= 2


@pytest.mark.parametrize("mode,message", [
    ("fail", 'profile "proc": credential_process exited with status 4: helper: the vault is sealed'),
    ("garbage", 'profile "proc": credential_process did not print a JSON object'),
])
def test_credential_process_failures_are_clear(world, mode, message):
    path, counter = helper(world)
    leak = "notShownHelperOutput0123"
    aws_files(world, config=f'[profile proc]\nregion = us-east-1\ncredential_process = "{path}" {mode} {leak}\n')
    rec = Recorder(world.moto.url)
    try:
        p = world.irfw("--conf", conf(world), "-i", "i-0123456789abcdef0", "--profile", "proc",
                       env={**NO_ENV_KEYS, "IRFW_T_COUNT": str(counter), "AWS_ENDPOINT_URL": rec.url})
    finally:
        rec.close()
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert leak not in p.stderr + p.stdout
    assert rec.requests == []  # nothing reached AWS


# ------------------------------------------------------------------ 2. SSO

SSO_CONFIG = """[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Responder
region = us-east-1

[sso-session corp]
sso_start_url = https://example.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile legacy]
sso_start_url = https://legacy.awsapps.com/start
sso_region = eu-west-1
sso_account_id = 123456789012
sso_role_name = LegacyResponder
region = us-east-1
"""


def sso_token(world, key, token, expires):
    """What `aws sso login` leaves: ~/.aws/sso/cache/<sha1(key)>.json."""
    d = world.home / ".aws" / "sso" / "cache"
    d.mkdir(parents=True, exist_ok=True)
    f = d / (hashlib.sha1(key.encode()).hexdigest() + ".json")
    f.write_text(json.dumps({"startUrl": "https://example.awsapps.com/start", "region": "eu-west-1",
                             "accessToken": token, "expiresAt": expires}))
    return f


@pytest.mark.parametrize("profile,key,role", [("sso", "corp", "Responder"),
                                               ("legacy", "https://legacy.awsapps.com/start", "LegacyResponder")])
def test_sso_profile(world, profile, key, role):
    inst = instance(world)
    akid, secret = moto_user(world, "sso-user")
    session_token = "ssoRoleSessionToken-4f1d2c3b"
    access_token = f"ssoAccessToken-{profile}-9a8b7c6d5e4f"
    portal = Portal(akid, secret, session_token)
    aws_files(world, config=SSO_CONFIG)
    sso_token(world, key, access_token, iso(3600))
    try:
        p = world.irfw("--conf", conf(world), "-i", inst, "--case-id", "IR-SSO", "--profile", profile, "-v",
                       env={**NO_ENV_KEYS, "AWS_ENDPOINT_URL_SSO": portal.url})
    finally:
        portal.close()
    assert p.returncode == 0, p.stderr
    assert acting_as(p).endswith(":user/sso-user"), p.stderr
    assert world.manifest("IR-SSO", inst)["runs"][0]["caller_arn"].endswith(":user/sso-user")
    assert len(portal.requests) == 1
    r = portal.requests[0]
    assert r["path"] == "/federation/credentials"
    assert r["query"] == {"role_name": role, "account_id": "123456789012"}
    assert r["headers"]["x-amz-sso_bearer_token"] == access_token
    assert "authorization" not in r["headers"]  # unsigned
    assert_no_secrets(world, p, [access_token, secret, session_token])


@pytest.mark.parametrize("state", ["expired", "missing", "refused"])
def test_sso_login_needed(world, state):
    """An expired or missing token: exit 2 and no AWS call; a token the
    portal refuses: the same advice."""
    access_token = "ssoAccessToken-stale-0f9e8d7c6b"
    portal = Portal("AKIAUNUSED0000000000", "unused-secret-000000", "unused-token-000000")
    rec = Recorder(world.moto.url)
    aws_files(world, config=SSO_CONFIG)
    if state != "missing":
        sso_token(world, "corp", access_token, iso(-60) if state == "expired" else iso(3600))
    if state == "refused":
        portal.status = 401
    try:
        p = world.irfw("--conf", conf(world), "-i", "i-0123456789abcdef0", "--profile", "sso",
                       env={**NO_ENV_KEYS, "AWS_ENDPOINT_URL_SSO": portal.url, "AWS_ENDPOINT_URL": rec.url})
    finally:
        portal.close()
        rec.close()
    assert p.returncode == 2, p.stderr
    assert "run `aws sso login --profile sso`" in p.stderr
    assert rec.requests == []
    assert len(portal.requests) == (1 if state == "refused" else 0)
    assert access_token not in p.stderr + p.stdout


# ------------------------------------------------------------------ 3. MFA

MFA_SERIAL = "arn:aws:iam::123456789012:mfa/alice"


def mfa_world(world):
    role = moto_role(world)
    base = moto_user(world, "base-user")
    aws_files(world,
              config=f"[profile mfa]\nrole_arn = {role}\nsource_profile = base\nmfa_serial = {MFA_SERIAL}\n"
                     "role_session_name = irfw-mfa\nregion = us-east-1\n",
              credentials=f"[base]\naws_access_key_id = {base[0]}\naws_secret_access_key = {base[1]}\n")
    return base


def run_on_terminal(world, args, env, typed):
    """irfw with a pseudo-terminal as its controlling terminal (its stdin,
    stdout and stderr stay pipes): read the prompt, type `typed`."""
    master, slave = os.openpty()

    def child():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([str(IRFW_BIN), *map(str, args)], env=world.env(**env), cwd=world.tmp,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=child, pass_fds=(slave,))
    os.close(slave)
    screen = b""
    deadline = time.time() + 60
    while b"Enter MFA code" not in screen and time.time() < deadline and proc.poll() is None:
        if select.select([master], [], [], 0.2)[0]:
            try:
                screen += os.read(master, 4096)
            except OSError:
                break
    os.write(master, typed.encode())
    out, err = proc.communicate(timeout=120)
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    proc.stdout, proc.stderr = out, err
    return proc, screen.decode(errors="replace")


def test_mfa_serial_asks_the_code_on_the_terminal(world):
    inst = instance(world)
    base = mfa_world(world)
    code = "918273"
    rec = Recorder(world.moto.url)
    try:
        p, screen = run_on_terminal(world, ["--conf", conf(world), "-i", inst, "--case-id", "IR-MFA",
                                            "--profile", "mfa", "-v"],
                                    {**NO_ENV_KEYS, "AWS_ENDPOINT_URL": rec.url}, code + "\n")
    finally:
        rec.close()
    assert p.returncode == 0, p.stderr
    assert f"Enter MFA code for {MFA_SERIAL}: " in screen
    assert code not in screen  # not echoed
    assume = [r["form"] for r in rec.requests if r["form"].get("Action") == "AssumeRole"]
    assert len(assume) == 1
    # moto accepts any code: what was sent is what is asserted.
    assert assume[0]["SerialNumber"] == MFA_SERIAL and assume[0]["TokenCode"] == code
    assert "assumed-role/ir-responder/irfw-mfa" in world.manifest("IR-MFA", inst)["runs"][0]["caller_arn"]
    assert_no_secrets(world, p, [code, base[1]])


def test_mfa_serial_without_a_terminal_is_refused(world):
    mfa_world(world)
    rec = Recorder(world.moto.url)
    try:
        p = subprocess.run([str(IRFW_BIN), "--conf", str(conf(world)), "-i", "i-0123456789abcdef0",
                            "--profile", "mfa"], env=world.env(**NO_ENV_KEYS, AWS_ENDPOINT_URL=rec.url),
                           cwd=world.tmp, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60, start_new_session=True)  # no controlling terminal
    finally:
        rec.close()
    assert p.returncode == 2, p.stderr
    assert ("mfa_serial needs a terminal for the code; run from a terminal or use credentials without MFA"
            in p.stderr)
    assert "AssumeRole" not in rec.actions()


# ----------------------------------------------------------- 4. endpoints

def test_services_section_and_ignore_configured_endpoints(world):
    inst = instance(world)
    akid, secret = moto_user(world, "svc-user")
    rec = Recorder(world.moto.url)
    aws_files(world,
              config=f"[profile svc]\nregion = us-east-1\nservices = local\nendpoint_url = {world.moto.url}\n\n"
                     f"[services local]\nsts =\n  endpoint_url = {rec.url}\n"
                     f"ec2 =\n  endpoint_url = {world.moto.url}\n",
              credentials=f"[svc]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n")
    env = {**NO_ENV_KEYS, "AWS_ENDPOINT_URL": None}
    try:
        # sts from [services local], ec2 from its own sub-section.
        p = world.irfw("--conf", conf(world), "-i", inst, "--profile", "svc", env=env)
        assert p.returncode == 0, p.stderr
        assert rec.actions() == ["GetCallerIdentity"]
        assert acting_as(p).endswith(":user/svc-user")

        # AWS_ENDPOINT_URL_STS beats the config file.
        rec.requests.clear()
        p = world.irfw("--conf", conf(world), "-i", inst, "--profile", "svc",
                       env={**env, "AWS_ENDPOINT_URL_STS": world.moto.url})
        assert p.returncode == 0, p.stderr
        assert rec.requests == []

        # Ignored: the config file's and the environment's endpoints; the
        # site file's endpoint_url stays (irfw's own setting).
        p = world.irfw("--conf", conf(world, endpoint_url=world.moto.url), "-i", inst, "--profile", "svc",
                       env={**env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
                            "AWS_ENDPOINT_URL_STS": rec.url})
        assert p.returncode == 0, p.stderr
        assert rec.requests == []
    finally:
        rec.close()

    # A services name without its section is a configuration error.
    aws_files(world, config="[profile svc]\nregion = us-east-1\nservices = nosuch\n")
    p = world.irfw("--conf", conf(world), "-i", inst, "--profile", "svc", env=env)
    assert p.returncode == 2
    assert "no [services nosuch] section" in p.stderr


def tls_context(world):
    if not shutil.which("openssl"):
        pytest.skip("openssl(1) is needed to make a test certificate")
    key, cert = world.tmp / "key.pem", world.tmp / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx, cert


def test_ca_bundle(world):
    """AWS_CA_BUNDLE and the profile's ca_bundle verify a TLS endpoint; the
    site file's ca_file, when written, wins over both."""
    inst = instance(world)
    ctx, cert = tls_context(world)
    tls = Recorder(world.moto.url, tls=ctx)
    aws_files(world, config="[default]\nregion = us-east-1\n")
    env = {"AWS_ENDPOINT_URL": tls.url}
    try:
        p = world.irfw("--conf", conf(world, max_attempts=1), "-i", inst, env=env)
        assert p.returncode != 0 and "GetCallerIdentity" in p.stderr  # not trusted
        assert "certificate" in p.stderr.lower() or "ssl" in p.stderr.lower(), p.stderr

        p = world.irfw("--conf", conf(world, max_attempts=1), "-i", inst, env={**env, "AWS_CA_BUNDLE": str(cert)})
        assert p.returncode == 0, p.stderr

        aws_files(world, config=f"[default]\nregion = us-east-1\nca_bundle = {cert}\n")
        p = world.irfw("--conf", conf(world, max_attempts=1), "-i", inst, env=env)
        assert p.returncode == 0, p.stderr

        p = world.irfw("--conf", conf(world, max_attempts=1, ca_file=world.tmp / "key.pem"), "-i", inst,
                       env={**env, "AWS_CA_BUNDLE": str(cert)})
        assert p.returncode != 0, p.stderr  # the site file's (wrong) bundle was used
    finally:
        tls.close()


def unavailable(req):
    if req["form"].get("Action") == "GetCallerIdentity":
        return (503, "text/xml", b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
                                 b"<Message>try later</Message></Error><RequestId>req-503</RequestId>"
                                 b"</ErrorResponse>")
    return None


@pytest.mark.parametrize("site,env,profile,attempts", [
    ({}, {}, None, 5),                                     # irfw's default
    ({}, {"AWS_MAX_ATTEMPTS": "2"}, "3", 2),                # the environment beats the profile
    ({}, {}, "3", 3),                                      # the profile's max_attempts
    ({"max_attempts": 1}, {"AWS_MAX_ATTEMPTS": "2"}, "3", 1),  # the site file's, when written, first
])
def test_max_attempts(world, site, env, profile, attempts):
    rec = Recorder(world.moto.url, unavailable)
    aws_files(world, config="[default]\nregion = us-east-1\n" + (f"max_attempts = {profile}\n" if profile else ""))
    try:
        p = world.irfw("--conf", conf(world, **site), "-i", "i-0123456789abcdef0",
                       env={"AWS_ENDPOINT_URL": rec.url, **env})
    finally:
        rec.close()
    assert p.returncode == 1, p.stderr
    assert "ServiceUnavailable" in p.stderr and "req-503" in p.stderr
    assert rec.answered == attempts


@pytest.mark.parametrize("mode", ["legacy", "standard", "adaptive"])
def test_retry_modes_are_accepted(world, mode):
    rec = Recorder(world.moto.url, unavailable)
    aws_files(world, config=f"[default]\nregion = us-east-1\nretry_mode = {mode}\n")
    try:
        p = world.irfw("--conf", conf(world), "-i", "i-0123456789abcdef0", "-v",
                       env={"AWS_ENDPOINT_URL": rec.url, "AWS_MAX_ATTEMPTS": "2"})
    finally:
        rec.close()
    assert p.returncode == 1, p.stderr
    assert f"retry mode {mode}" in p.stderr
    assert rec.answered == 2  # every mode retries the same way in irfw


@pytest.mark.parametrize("env,message", [
    ({"AWS_RETRY_MODE": "fast"}, 'AWS_RETRY_MODE = "fast": expected legacy, standard or adaptive'),
    ({"AWS_MAX_ATTEMPTS": "many"}, 'AWS_MAX_ATTEMPTS = "many"'),
])
def test_bad_retry_settings_stop_irfw(world, env, message):
    rec = Recorder(world.moto.url)
    try:
        p = world.irfw("--conf", conf(world), "-i", "i-0123456789abcdef0", env={"AWS_ENDPOINT_URL": rec.url, **env})
    finally:
        rec.close()
    assert p.returncode == 2
    assert message in p.stderr
    assert rec.requests == []
