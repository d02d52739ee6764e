/*
 * credentials_profile.c - a profile's credentials in botocore's order:
 * role_arn with source_profile or credential_source (and mfa_serial, the
 * code asked on the terminal), web identity, SSO, the credentials file's
 * keys, credential_process, the config file's keys.
 */
#define _GNU_SOURCE /* timegm, getline */

#include "creds_private.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <curl/curl.h>
#include <ini.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "text.h"

/* ------------------------------------------------------------------ */
/* Profiles.                                                           */

static void chain_text(const struct chain *ch, const char *last, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ch->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s -> ", ch->names[i]);
	if (off < len)
		snprintf(buf + off, len - off, "%s", last);
}

static int profile_creds(const struct resolver *r, const struct shared *sh, const char *name, bool top,
                         bool env_wi, struct chain *ch, struct irfw_creds *c, char *err, size_t errlen);

/* Keys of one file.  Returns 0, 1 when there are none, -1 when half. */
static int static_keys_in(const struct shared *sh, bool in_creds, const char *name, struct irfw_creds *c,
                          char *err, size_t errlen)
{
	const char *akid = creds_shared_get_in(sh, in_creds, name, "aws_access_key_id");
	const char *sec = creds_shared_get_in(sh, in_creds, name, "aws_secret_access_key");
	const char *tok = creds_shared_get_in(sh, in_creds, name, "aws_session_token");
	const char *file = in_creds ? sh->creds.path : sh->config.path;
	char label[48];

	if (!akid && !sec) {
		irfw_set_err(err, errlen, "profile \"%s\" has no credentials", name);
		return 1;
	}
	if (!akid || !sec) {
		irfw_set_err(err, errlen, "profile \"%s\" has %s but no %s in %s", name,
		             akid ? "aws_access_key_id" : "aws_secret_access_key",
		             akid ? "aws_secret_access_key" : "aws_access_key_id", file ? file : "its file");
		return -1;
	}
	if (!tok)
		tok = creds_shared_get_in(sh, in_creds, name, "aws_security_token"); /* the old name */
	snprintf(label, sizeof(label), "profile:%s", name);
	if (creds_set(c, akid, sec, tok, 0, label) < 0) {
		irfw_set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static bool has_static(const struct shared *sh, const char *name)
{
	return creds_shared_get(sh, name, "aws_access_key_id") ||
	       creds_shared_get(sh, name, "aws_secret_access_key");
}

/* What a profile holds besides roles and web identity, in botocore's order:
 * SSO, the credentials file's keys, credential_process, the config file's
 * keys.  Returns 0, 1 when none (reason in err), -1 on error. */
static int plain_creds(const struct resolver *r, const struct shared *sh, const char *name,
                       struct irfw_creds *c, char *err, size_t errlen)
{
	const char *cp;
	int rc;

	rc = creds_sso(r, sh, name, c, err, errlen);
	if (rc != 1)
		return rc;
	rc = static_keys_in(sh, true, name, c, err, errlen);
	if (rc != 1)
		return rc;
	if (creds_shared_get(sh, name, "login_session")) {
		/* Better a clear refusal than a silent fall-through to IMDS. */
		irfw_set_err(err, errlen,
		             "profile \"%s\" uses login_session (aws login), which irfw does not support; "
		             "use an SSO, role or credential_process profile",
		             name);
		return -1;
	}
	cp = creds_shared_get(sh, name, "credential_process");
	if (cp)
		return creds_process(name, cp, c, err, errlen);
	return static_keys_in(sh, false, name, c, err, errlen);
}

/* The credentials a role profile assumes the role with. */
static int role_source(const struct resolver *r, const struct shared *sh, const char *name, struct chain *ch,
                       struct irfw_creds *src, char *err, size_t errlen)
{
	const char *sp = creds_shared_get(sh, name, "source_profile");
	const char *cs = creds_shared_get(sh, name, "credential_source");
	char path[256];
	int rc;

	if (sp && cs) {
		irfw_set_err(err, errlen, "profile \"%s\" has both source_profile and credential_source",
		             name);
		return -1;
	}
	if (cs) {
		if (strcmp(cs, "Environment") == 0)
			rc = creds_env_keys(src, err, errlen);
		else if (strcmp(cs, "Ec2InstanceMetadata") == 0)
			rc = creds_imds(r->imds_v1_fallback, r->timeout_ms, src, err, errlen);
		else if (strcmp(cs, "EcsContainer") == 0)
			rc = creds_container(r->timeout_ms, src, err, errlen);
		else {
			irfw_set_err(err, errlen,
			             "profile \"%s\": credential_source \"%.40s\" is not one of "
			             "Environment, Ec2InstanceMetadata, EcsContainer",
			             name, cs);
			return -1;
		}
		if (rc != 0) {
			char why[256];

			snprintf(why, sizeof(why), "%s", err);
			irfw_set_err(err, errlen, "profile \"%s\": credential_source %s: %s", name, cs, why);
			return -1;
		}
		return 0;
	}
	if (!sp) {
		irfw_set_err(err, errlen,
		             "profile \"%s\" has role_arn but no source_profile, credential_source "
		             "or web_identity_token_file",
		             name);
		return -1;
	}
	/* A profile may name itself to use its own keys, as the CLI allows. */
	if (strcmp(sp, name) == 0) {
		if (!has_static(sh, name)) {
			irfw_set_err(err, errlen, "source_profile loop: %s -> %s (it has no keys of its own)",
			             name, name);
			return -1;
		}
		rc = plain_creds(r, sh, name, src, err, errlen);
		return rc == 0 ? 0 : -1;
	}
	for (size_t i = 0; i < ch->n; i++)
		if (strcmp(ch->names[i], sp) == 0) {
			chain_text(ch, sp, path, sizeof(path));
			irfw_set_err(err, errlen, "source_profile loop: %s", path);
			return -1;
		}
	if (ch->n == MAX_CHAIN) {
		irfw_set_err(err, errlen, "source_profile chain longer than %d profiles", MAX_CHAIN);
		return -1;
	}
	rc = profile_creds(r, sh, sp, false, false, ch, src, err, errlen);
	if (rc == 1) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		irfw_set_err(err, errlen, "profile \"%s\": source_profile: %s", name, why);
		return -1;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* MFA.                                                                */

int creds_mfa_code(const char *profile, const char *serial, char *code, size_t len, char *err, size_t errlen)
{
	struct termios old, quiet;
	bool restore = false;
	char *shown = irfw_escape_text(serial);
	size_t n = 0;
	int fd, ret = -1;
	char ch;

	code[0] = '\0';
	/* The terminal itself, not stdin: the SDKs' getpass does the same, and
	 * irfw's stdin may be a list of instance ids. */
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		irfw_set_err(err, errlen,
		             "profile \"%s\": mfa_serial needs a terminal for the code; run from a terminal "
		             "or use credentials without MFA",
		             profile);
		free(shown);
		return -1;
	}
	if (tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
		restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	if (dprintf(fd, "Enter MFA code for %s: ", shown ? shown : "?") < 0)
		goto out;
	while (read(fd, &ch, 1) == 1 && ch != '\n' && ch != '\r')
		if (n + 1 < len)
			code[n++] = ch;
	code[n] = '\0';
	if (write(fd, "\n", 1) < 0) {
		/* The echo of a newline is cosmetic. */
	}
	{
		char *t = irfw_trim(code);

		memmove(code, t, strlen(t) + 1);
	}
	if (strlen(code) != 6 || strspn(code, "0123456789") != 6) {
		irfw_set_err(err, errlen, "profile \"%s\": the MFA code for %s must be 6 digits", profile,
		             shown ? shown : "?");
		OPENSSL_cleanse(code, len);
		goto out;
	}
	ret = 0;
out:
	if (ret != 0 && !err[0])
		irfw_set_err(err, errlen, "profile \"%s\": cannot ask for the MFA code on the terminal",
		             profile);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	close(fd);
	free(shown);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Roles.                                                              */

static int assume_role(const struct resolver *r, const struct shared *sh, const char *name,
                       const char *role_arn, struct chain *ch, struct irfw_creds *c, char *err, size_t errlen)
{
	const char *ext = creds_shared_get(sh, name, "external_id");
	const char *sess = creds_shared_get(sh, name, "role_session_name");
	const char *dur = creds_shared_get(sh, name, "duration_seconds");
	const char *mfa = creds_shared_get(sh, name, "mfa_serial");
	struct irfw_creds src;
	cJSON *params = NULL;
	char sbuf[64], code[16] = "", *end;
	int ret = -1;

	memset(&src, 0, sizeof(src));
	if (dur) {
		long d;

		errno = 0;
		d = strtol(dur, &end, 10);
		if (errno || *end || d < 900 || d > 43200) {
			irfw_set_err(err, errlen,
			             "profile \"%s\": duration_seconds \"%.20s\" is not 900..43200", name,
			             dur);
			return -1;
		}
	}
	if (role_source(r, sh, name, ch, &src, err, errlen) < 0)
		goto out;
	/* Asked after the source credentials, as botocore does; asked again
	 * when the role's credentials are refreshed. */
	if (mfa && creds_mfa_code(name, mfa, code, sizeof(code), err, errlen) < 0)
		goto out;
	if (!sess) {
		snprintf(sbuf, sizeof(sbuf), "irfw-%lld", (long long)time(NULL));
		sess = sbuf;
	}
	params = cJSON_CreateObject();
	if (!params || creds_add_param(params, "RoleArn", role_arn) < 0 ||
	    creds_add_param(params, "RoleSessionName", sess) < 0 ||
	    (ext && creds_add_param(params, "ExternalId", ext) < 0) ||
	    (dur && creds_add_param(params, "DurationSeconds", dur) < 0) ||
	    (mfa && (creds_add_param(params, "SerialNumber", mfa) < 0 ||
	             creds_add_param(params, "TokenCode", code) < 0))) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = creds_sts(r, "AssumeRole", params, &src, name, role_arn, c, err, errlen);
out:
	OPENSSL_cleanse(code, sizeof(code));
	creds_json_wipe_delete(params); /* it holds the MFA code */
	irfw_creds_clear(&src);
	return ret;
}

/* Returns 0, 1 when the profile is absent or holds no credential settings
 * (reason in err), -1 on error.  top: the profile in force (not a
 * source_profile); env_wi: the web identity variables take part. */
static int profile_creds(const struct resolver *r, const struct shared *sh, const char *name, bool top,
                         bool env_wi, struct chain *ch, struct irfw_creds *c, char *err, size_t errlen)
{
	const char *role_arn, *wif, *tok, *arn, *sess;
	int rc;

	if (!creds_shared_has_profile(sh, name)) {
		irfw_set_err(err, errlen, "profile \"%s\" not found in %s or %s", name,
		             sh->creds.path ? sh->creds.path : "(no credentials file)",
		             sh->config.path ? sh->config.path : "(no config file)");
		return 1;
	}
	role_arn = creds_shared_get(sh, name, "role_arn");
	wif = creds_shared_get(sh, name, "web_identity_token_file");
	/* botocore's AssumeRoleProvider: a role without a token file; for a
	 * source_profile, its own keys win over its role. */
	if (role_arn && !wif && (top || !has_static(sh, name))) {
		ch->names[ch->n++] = name;
		rc = assume_role(r, sh, name, role_arn, ch, c, err, errlen);
		ch->n--;
		return rc;
	}
	/* Web identity: the variables first (unless the profile was given
	 * explicitly), then the profile's. */
	tok = env_wi ? creds_env("AWS_WEB_IDENTITY_TOKEN_FILE") : NULL;
	if (!tok)
		tok = wif;
	if (tok) {
		arn = env_wi ? creds_env("AWS_ROLE_ARN") : NULL;
		sess = env_wi ? creds_env("AWS_ROLE_SESSION_NAME") : NULL;
		if (!arn)
			arn = role_arn;
		if (!sess)
			sess = creds_shared_get(sh, name, "role_session_name");
		if (!arn) {
			irfw_set_err(
			    err, errlen,
			    "profile \"%s\": a web identity token file but no role_arn (or AWS_ROLE_ARN)",
			    name);
			return -1;
		}
		return creds_web_identity(r, tok, arn, sess, name, c, err, errlen);
	}
	return plain_creds(r, sh, name, c, err, errlen);
}

int creds_shared_profile(const struct resolver *r, const char *name, bool must_exist, bool env_web_identity,
                         struct irfw_creds *c, char *err, size_t errlen)
{
	struct chain ch = {.n = 0};
	struct shared *sh = creds_shared_load(err, errlen);
	int rc;

	if (!sh)
		return -1;
	rc = profile_creds(r, sh, name, true, env_web_identity, &ch, c, err, errlen);
	/* A profile named by --profile or AWS_PROFILE must exist, as in the
	 * SDKs (ProfileNotFound), even when other sources would do. */
	if (rc == 1 && must_exist && !creds_shared_has_profile(sh, name))
		rc = -1;
	creds_shared_free(sh);
	return rc;
}

int creds_profile_check(const char *name, char *err, size_t errlen)
{
	struct shared *sh = creds_shared_load(err, errlen);
	int rc = -1;

	if (!sh)
		return -1;
	if (creds_shared_has_profile(sh, name))
		rc = 0;
	else
		irfw_set_err(err, errlen, "profile \"%s\" not found in %s or %s", name,
		             sh->creds.path ? sh->creds.path : "(no credentials file)",
		             sh->config.path ? sh->config.path : "(no config file)");
	creds_shared_free(sh);
	return rc;
}
