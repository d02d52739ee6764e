/*
 * credentials_sso.c - IAM Identity Center (SSO) profiles, as botocore's
 * SSOProvider reads them:
 *
 *   [profile p]                       [profile legacy]
 *   sso_session = corp                sso_start_url = https://x.awsapps.com/start
 *   sso_account_id = 111122223333     sso_region = us-east-1
 *   sso_role_name = Responder         sso_account_id = 111122223333
 *   [sso-session corp]                sso_role_name = Responder
 *   sso_start_url = https://x.awsapps.com/start
 *   sso_region = us-east-1
 *
 * The access token is the one `aws sso login` cached in
 * ~/.aws/sso/cache/<sha1>.json ({"accessToken", "expiresAt", ...}), the
 * SHA-1 being of the session's name, or of the start URL for a legacy
 * profile (botocore's SSOTokenLoader).  irfw does not log in or refresh
 * that token itself: a missing or expired one is an error that says to run
 * `aws sso login`, before any AWS call.  The role's credentials come from
 * the portal's GetRoleCredentials: an unsigned
 *   GET https://portal.sso.REGION.amazonaws.com/federation/credentials
 *       ?role_name=R&account_id=A
 * with the token in x-amz-sso_bearer_token.
 */
#define _GNU_SOURCE

#include "creds_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "buf.h"
#include "protocol.h"
#include "text.h"

struct sso_cfg {
	const char *session; /* NULL for a legacy profile */
	const char *start_url, *region, *account, *role;
};

/* The profile's SSO settings, merged with its [sso-session].  Returns 0,
 * 1 when the profile is not an SSO one, -1 on error. */
static int sso_config(const struct shared *sh, const char *profile, struct sso_cfg *s, char *err,
                      size_t errlen)
{
	const char *keys[] = {"sso_start_url", "sso_region"};
	const char **vals[] = {&s->start_url, &s->region};
	char missing[160] = "";

	memset(s, 0, sizeof(*s));
	s->account = creds_shared_get(sh, profile, "sso_account_id");
	s->role = creds_shared_get(sh, profile, "sso_role_name");
	if (!s->account && !s->role)
		return 1;
	s->session = creds_shared_get(sh, profile, "sso_session");
	s->start_url = creds_shared_get(sh, profile, "sso_start_url");
	s->region = creds_shared_get(sh, profile, "sso_region");
	if (s->session) {
		if (!creds_shared_has_sect(sh, SECT_SSO_SESSION, s->session)) {
			irfw_set_err(err, errlen,
			             "profile \"%s\": sso_session \"%s\" has no [sso-session %s] in %s",
			             profile, s->session, s->session,
			             sh->config.path ? sh->config.path : "the config file");
			return -1;
		}
		for (size_t i = 0; i < 2; i++) {
			const char *v = creds_shared_get_sect(sh, SECT_SSO_SESSION, s->session, keys[i]);

			if (v && *vals[i] && strcmp(v, *vals[i]) != 0) {
				irfw_set_err(
				    err, errlen,
				    "profile \"%s\": %s differs between the profile and [sso-session %s]",
				    profile, keys[i], s->session);
				return -1;
			}
			if (v)
				*vals[i] = v;
		}
	}
	if (!s->role)
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " sso_role_name");
	if (!s->account)
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " sso_account_id");
	if (!s->start_url)
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " sso_start_url");
	if (!s->region)
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " sso_region");
	if (*missing) {
		irfw_set_err(err, errlen, "profile \"%s\" is configured for SSO but lacks%s", profile,
		             missing);
		return -1;
	}
	return 0;
}

/* ~/.aws/sso/cache/<sha1 hex of key>.json, to free(). */
static char *cache_path(const char *key)
{
	const char *home = getenv("HOME");
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (!home || !*home || !EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha1(), NULL))
		return NULL;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return irfw_strfmt("%s/.aws/sso/cache/%s.json", home, hex);
}

/* The cached access token, to creds_wipe_free().  NULL with err saying to
 * log in when it is missing, unreadable or expired. */
static char *cached_token(const char *profile, const struct sso_cfg *s, char *err, size_t errlen)
{
	char *path = cache_path(s->session ? s->session : s->start_url), *text = NULL, *tok = NULL;
	char why[256] = "";
	cJSON *j = NULL;
	const cJSON *at, *exp;
	time_t until;

	if (!path) {
		irfw_set_err(err, errlen, "profile \"%s\": no HOME to find the SSO token cache in", profile);
		return NULL;
	}
	if (access(path, F_OK) != 0) {
		irfw_set_err(
		    err, errlen,
		    "profile \"%s\": no SSO token cached for %s %s (%s): run `aws sso login --profile %s`",
		    profile, s->session ? "sso-session" : "start URL", s->session ? s->session : s->start_url,
		    path, profile);
		goto out;
	}
	text = creds_read_file(path, why, sizeof(why), "SSO token cache");
	j = text ? cJSON_Parse(text) : NULL;
	at = cJSON_GetObjectItemCaseSensitive(j, "accessToken");
	exp = cJSON_GetObjectItemCaseSensitive(j, "expiresAt");
	if (!cJSON_IsString(at) || !*at->valuestring || !cJSON_IsString(exp) ||
	    creds_parse_time(exp->valuestring, &until) < 0) {
		irfw_set_err(err, errlen,
		             "profile \"%s\": the SSO token cache %s is %s: run `aws sso login --profile %s`",
		             profile, path, *why ? why : "not a token (accessToken, expiresAt)", profile);
		goto out;
	}
	creds_mask(at->valuestring);
	if (time(NULL) >= until) {
		irfw_set_err(err, errlen,
		             "profile \"%s\": the SSO token expired at %s: run `aws sso login --profile %s`",
		             profile, exp->valuestring, profile);
		goto out;
	}
	tok = strdup(at->valuestring);
	if (!tok)
		irfw_set_err(err, errlen, "out of memory");
out:
	creds_json_wipe_delete(j);
	if (text) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	free(path);
	return tok;
}

/* The portal's URL for GetRoleCredentials, to free(). */
static char *portal_url(const struct resolver *r, const struct sso_cfg *s, char *err, size_t errlen)
{
	struct irfw_endpoints *e = irfw_endpoints_load(r->profile, err, errlen);
	char *base, *role = NULL, *acct = NULL, *url = NULL;
	size_t bl;

	if (!e)
		return NULL;
	base = irfw_endpoints_get(e, "SSO", r->site_endpoint);
	irfw_endpoints_free(e);
	if (!base)
		base = irfw_strfmt("https://portal.sso.%s.%s", s->region, irfw_partition_suffix(s->region));
	role = curl_easy_escape(NULL, s->role, 0);
	acct = curl_easy_escape(NULL, s->account, 0);
	if (base && role && acct) {
		bl = strlen(base);
		while (bl > 0 && base[bl - 1] == '/')
			base[--bl] = '\0';
		url = irfw_strfmt("%s/federation/credentials?role_name=%s&account_id=%s", base, role, acct);
	}
	if (!url)
		irfw_set_err(err, errlen, "out of memory");
	curl_free(role);
	curl_free(acct);
	free(base);
	return url;
}

/* A short reason from an error reply: its "message", printable. */
static char *reply_message(const char *body)
{
	cJSON *j = cJSON_Parse(body);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
	char *out = NULL;

	if (!cJSON_IsString(m))
		m = cJSON_GetObjectItemCaseSensitive(j, "Message");
	if (cJSON_IsString(m)) {
		if (strlen(m->valuestring) > 200)
			m->valuestring[200] = '\0';
		out = irfw_escape_text(m->valuestring);
	}
	cJSON_Delete(j);
	return out;
}

int creds_sso(const struct resolver *r, const struct shared *sh, const char *profile, struct irfw_creds *c,
              char *err, size_t errlen)
{
	struct sso_cfg s;
	struct creds_http_opts ho = {.ca_file = r->ca_file,
	                             .use_proxy = true,
	                             .connect_ms = SSO_CONNECT_TIMEOUT_MS,
	                             .total_ms = SSO_TIMEOUT_MS};
	char *tok = NULL, *url = NULL, *hdr = NULL, *body = NULL, *msg = NULL, label[48];
	const char *hdrs[2] = {NULL, NULL};
	const cJSON *rc_, *akid, *sec, *st, *exp;
	cJSON *j = NULL;
	long status = 0;
	int rc, ret = -1;

	rc = sso_config(sh, profile, &s, err, errlen);
	if (rc != 0)
		return rc;
	tok = cached_token(profile, &s, err, errlen);
	if (!tok)
		return -1;
	url = portal_url(r, &s, err, errlen);
	if (!url)
		goto out;
	if (strpbrk(tok, "\r\n")) {
		irfw_set_err(err, errlen, "profile \"%s\": the cached SSO token holds a line break", profile);
		goto out;
	}
	hdr = irfw_strfmt("x-amz-sso_bearer_token: %s", tok);
	if (!hdr) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	hdrs[0] = hdr;
	for (int attempt = 1; attempt <= SSO_ATTEMPTS; attempt++) {
		creds_wipe_free(body);
		body = NULL;
		rc = creds_http_ex("GET", url, hdrs, &ho, "SSO portal", &status, &body, err, errlen);
		if (rc == 0 && status != 429 && status < 500)
			break;
		if (attempt < SSO_ATTEMPTS)
			sleep((unsigned)attempt);
	}
	if (!body) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		irfw_set_err(err, errlen, "profile \"%s\": sso:GetRoleCredentials: %s", profile, why);
		goto out;
	}
	if (status == 401 || strcmp(ho.errortype, "UnauthorizedException") == 0) {
		irfw_set_err(
		    err, errlen,
		    "profile \"%s\": the SSO portal refused the cached token (HTTP %ld%s%s): run `aws sso "
		    "login --profile %s`",
		    profile, status, ho.request_id[0] ? ", request " : "", ho.request_id, profile);
		goto out;
	}
	if (status != 200) {
		msg = reply_message(body);
		irfw_set_err(err, errlen, "profile \"%s\": sso:GetRoleCredentials %s/%s: HTTP %ld %s%s%s%s%s",
		             profile, s.account, s.role, status, ho.errortype[0] ? ho.errortype : "error",
		             msg ? ": " : "", msg ? msg : "", ho.request_id[0] ? " request " : "",
		             ho.request_id);
		goto out;
	}
	j = cJSON_Parse(body);
	rc_ = cJSON_GetObjectItemCaseSensitive(j, "roleCredentials");
	akid = cJSON_GetObjectItemCaseSensitive(rc_, "accessKeyId");
	sec = cJSON_GetObjectItemCaseSensitive(rc_, "secretAccessKey");
	st = cJSON_GetObjectItemCaseSensitive(rc_, "sessionToken");
	exp = cJSON_GetObjectItemCaseSensitive(rc_, "expiration");
	if (!cJSON_IsString(akid) || !*akid->valuestring || !cJSON_IsString(sec) || !*sec->valuestring ||
	    !cJSON_IsNumber(exp)) {
		irfw_set_err(err, errlen,
		             "profile \"%s\": sso:GetRoleCredentials answered without roleCredentials "
		             "(accessKeyId, secretAccessKey, expiration)",
		             profile);
		goto out;
	}
	creds_mask(sec->valuestring);
	if (cJSON_IsString(st))
		creds_mask(st->valuestring);
	snprintf(label, sizeof(label), "sso:%s", profile);
	/* The portal gives milliseconds since the epoch. */
	if (creds_set(c, akid->valuestring, sec->valuestring, cJSON_IsString(st) ? st->valuestring : NULL,
	              (time_t)(exp->valuedouble / 1000.0), label) < 0) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	creds_json_wipe_delete(j);
	creds_wipe_free(body);
	creds_wipe_free(hdr);
	creds_wipe_free(tok);
	free(msg);
	free(url);
	return ret;
}
