/*
 * credentials_profile.c - a profile's credentials: static keys,
 * role_arn with source_profile or credential_source, web identity.
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
#include <sys/socket.h>

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

static int profile_creds(const struct resolver *r, const struct shared *sh, const char *name,
                         struct chain *ch, struct irfw_creds *c, char *err, size_t errlen);

static int static_keys(const struct shared *sh, const char *name, struct irfw_creds *c, char *err,
                       size_t errlen)
{
	const char *akid = creds_shared_get(sh, name, "aws_access_key_id");
	const char *sec = creds_shared_get(sh, name, "aws_secret_access_key");
	char label[48];

	if (!akid && !sec) {
		irfw_set_err(err, errlen, "profile \"%s\" has no credentials", name);
		return 1;
	}
	if (!akid || !sec) {
		irfw_set_err(err, errlen, "profile \"%s\" has %s but no %s", name,
		             akid ? "aws_access_key_id" : "aws_secret_access_key",
		             akid ? "aws_secret_access_key" : "aws_access_key_id");
		return -1;
	}
	snprintf(label, sizeof(label), "profile:%s", name);
	if (creds_set(c, akid, sec, creds_shared_get(sh, name, "aws_session_token"), 0, label) < 0) {
		irfw_set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
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
		rc = static_keys(sh, name, src, err, errlen);
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
	rc = profile_creds(r, sh, sp, ch, src, err, errlen);
	if (rc == 1) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		irfw_set_err(err, errlen, "profile \"%s\": source_profile: %s", name, why);
		return -1;
	}
	return rc;
}

static int assume_role(const struct resolver *r, const struct shared *sh, const char *name,
                       const char *role_arn, struct chain *ch, struct irfw_creds *c, char *err, size_t errlen)
{
	const char *ext = creds_shared_get(sh, name, "external_id");
	const char *sess = creds_shared_get(sh, name, "role_session_name");
	const char *dur = creds_shared_get(sh, name, "duration_seconds");
	struct irfw_creds src;
	cJSON *params = NULL;
	char sbuf[64], *end;
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
	if (!sess) {
		snprintf(sbuf, sizeof(sbuf), "irfw-%lld", (long long)time(NULL));
		sess = sbuf;
	}
	params = cJSON_CreateObject();
	if (!params || creds_add_param(params, "RoleArn", role_arn) < 0 ||
	    creds_add_param(params, "RoleSessionName", sess) < 0 ||
	    (ext && creds_add_param(params, "ExternalId", ext) < 0) ||
	    (dur && creds_add_param(params, "DurationSeconds", dur) < 0)) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = creds_sts(r, "AssumeRole", params, &src, name, role_arn, c, err, errlen);
out:
	cJSON_Delete(params);
	irfw_creds_clear(&src);
	return ret;
}

/* Returns 0, 1 when the profile is absent or holds no credential settings
 * (reason in err), -1 on error. */
static int profile_creds(const struct resolver *r, const struct shared *sh, const char *name,
                         struct chain *ch, struct irfw_creds *c, char *err, size_t errlen)
{
	const char *role_arn, *wif;
	int rc;

	if (!creds_shared_has_profile(sh, name)) {
		irfw_set_err(err, errlen, "profile \"%s\" not found in %s or %s", name,
		             sh->creds.path ? sh->creds.path : "(no credentials file)",
		             sh->config.path ? sh->config.path : "(no config file)");
		return 1;
	}
	role_arn = creds_shared_get(sh, name, "role_arn");
	if (!role_arn) {
		static const char *const unsupported[] = {"credential_process", "sso_session",
		                                          "sso_start_url", NULL};

		rc = static_keys(sh, name, c, err, errlen);
		/* Better a clear refusal than a silent fall-through to IMDS. */
		for (size_t i = 0; rc == 1 && unsupported[i]; i++)
			if (creds_shared_get(sh, name, unsupported[i])) {
				irfw_set_err(err, errlen,
				             "profile \"%s\" uses %s, which irfw does not "
				             "support; export keys or use a role profile",
				             name, unsupported[i]);
				rc = -1;
			}
		return rc;
	}
	if (creds_shared_get(sh, name, "mfa_serial")) {
		irfw_set_err(err, errlen,
		             "profile \"%s\": mfa_serial needs an interactive prompt, "
		             "which irfw does not do",
		             name);
		return -1;
	}
	wif = creds_shared_get(sh, name, "web_identity_token_file");
	if (wif && !creds_shared_get(sh, name, "source_profile") &&
	    !creds_shared_get(sh, name, "credential_source"))
		return creds_web_identity(r, wif, role_arn, creds_shared_get(sh, name, "role_session_name"),
		                          name, c, err, errlen);
	ch->names[ch->n++] = name;
	rc = assume_role(r, sh, name, role_arn, ch, c, err, errlen);
	ch->n--;
	return rc;
}

int creds_shared_profile(const struct resolver *r, const char *name, struct irfw_creds *c, char *err,
                         size_t errlen)
{
	struct chain ch = {.n = 0};
	struct shared *sh = creds_shared_load(err, errlen);
	int rc;

	if (!sh)
		return -1;
	rc = profile_creds(r, sh, name, &ch, c, err, errlen);
	creds_shared_free(sh);
	return rc;
}
