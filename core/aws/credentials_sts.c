/*
 * credentials_sts.c - credentials from AWS STS: AssumeRole and
 * AssumeRoleWithWebIdentity (the AWS_WEB_IDENTITY_TOKEN_FILE provider).
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
/* STS.                                                                */

int creds_add_param(cJSON *params, const char *name, const char *value)
{
	return cJSON_AddStringToObject(params, name, value) ? 0 : -1;
}

/* Run an STS operation and turn its reply into credentials.  `source` NULL
 * for web identity.  `profile` picks the region when none was given. */
int creds_sts(const struct resolver *r, const char *op, cJSON *params, const struct irfw_creds *source,
              const char *profile, const char *role_arn, struct irfw_creds *c, char *err, size_t errlen)
{
	char *region = NULL, label[48], key[64], msg[256] = "";
	cJSON *res = NULL;
	const cJSON *inner, *cr;
	int ret = -1;

	if (!r->sts) {
		irfw_set_err(err, errlen, "%s %s: no STS client available", op, role_arn);
		return -1;
	}
	region = r->region ? strdup(r->region) : irfw_resolve_region(NULL, profile);
	if (r->sts(r->sts_ctx, op, params, source, region, &res, msg, sizeof(msg)) != 0) {
		irfw_set_err(err, errlen, "%s %s: %s", op, role_arn, *msg ? msg : "failed");
		goto out;
	}
	snprintf(key, sizeof(key), "%sResult", op);
	inner = cJSON_GetObjectItemCaseSensitive(res, key);
	if (!inner)
		inner = res;
	cr = cJSON_GetObjectItemCaseSensitive(inner, "Credentials");
	if (!cJSON_IsObject(cr)) {
		irfw_set_err(err, errlen, "%s %s: reply has no Credentials", op, role_arn);
		goto out;
	}
	if (source)
		snprintf(label, sizeof(label), "assume-role:%s", role_arn);
	else
		snprintf(label, sizeof(label), "web-identity");
	ret = creds_from_json(cr, "SessionToken", label, c, err, errlen);
out:
	creds_json_wipe_delete(res);
	free(region);
	return ret;
}

int creds_web_identity(const struct resolver *r, const char *token_file, const char *role_arn,
                       const char *session_name, const char *profile, struct irfw_creds *c, char *err,
                       size_t errlen)
{
	char *tok = creds_read_file(token_file, err, errlen, "web identity token file");
	char sess[64];
	cJSON *params = NULL;
	int ret = -1;

	if (!tok)
		return -1;
	if (!session_name) {
		snprintf(sess, sizeof(sess), "irfw-%lld", (long long)time(NULL));
		session_name = sess;
	}
	params = cJSON_CreateObject();
	if (!params || creds_add_param(params, "RoleArn", role_arn) < 0 ||
	    creds_add_param(params, "RoleSessionName", session_name) < 0 ||
	    creds_add_param(params, "WebIdentityToken", irfw_trim(tok)) < 0) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = creds_sts(r, "AssumeRoleWithWebIdentity", params, NULL, profile, role_arn, c, err, errlen);
out:
	creds_json_wipe_delete(params);
	OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
	return ret;
}

/* Returns 0, 1 when not set, -1 on error. */
int creds_env_web_identity(const struct resolver *r, struct irfw_creds *c, char *err, size_t errlen)
{
	const char *file = creds_env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = creds_env("AWS_ROLE_ARN");

	if (!file) {
		irfw_set_err(err, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN not set");
		return 1;
	}
	if (!arn) {
		/* botocore refuses this too, rather than skip to other sources. */
		irfw_set_err(err, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
		return -1;
	}
	return creds_web_identity(r, file, arn, creds_env("AWS_ROLE_SESSION_NAME"), NULL, c, err, errlen);
}
