/*
 * credentials.c - the credential chain (environment, profile, web identity,
 * container, IMDS, in the AWS SDKs' order), its cache and refresh, and the
 * helpers the providers share.  Each provider has a file of its own.
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
#include "log.h"
#include "text.h"

/* ------------------------------------------------------------------ */
/* Small helpers.                                                      */

/* An unset and an empty variable mean the same to the SDKs. */
const char *creds_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

void creds_wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

static void cjson_wipe(cJSON *j)
{
	for (; j; j = j->next) {
		if (j->valuestring)
			OPENSSL_cleanse(j->valuestring, strlen(j->valuestring));
		cjson_wipe(j->child);
	}
}

/* cJSON_Delete does not wipe; credential replies hold secrets. */
void creds_json_wipe_delete(cJSON *j)
{
	if (!j)
		return;
	cjson_wipe(j);
	cJSON_Delete(j);
}

void creds_mask(const char *secret)
{
	irfw_log_add_secret(secret);
}

void irfw_creds_clear(struct irfw_creds *c)
{
	if (!c)
		return;
	creds_wipe_free(c->access_key_id);
	creds_wipe_free(c->secret_access_key);
	creds_wipe_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

int creds_copy(struct irfw_creds *dst, const struct irfw_creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key_id = strdup(src->access_key_id);
	dst->secret_access_key = strdup(src->secret_access_key);
	dst->session_token = src->session_token ? strdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	memcpy(dst->source, src->source, sizeof(dst->source));
	if (!dst->access_key_id || !dst->secret_access_key || (src->session_token && !dst->session_token)) {
		irfw_creds_clear(dst);
		return -1;
	}
	return 0;
}

int creds_set(struct irfw_creds *c, const char *akid, const char *secret, const char *token,
              time_t expiration, const char *source)
{
	memset(c, 0, sizeof(*c));
	c->access_key_id = strdup(akid);
	c->secret_access_key = strdup(secret);
	c->session_token = token && *token ? strdup(token) : NULL;
	c->expiration = expiration;
	snprintf(c->source, sizeof(c->source), "%s", source);
	if (!c->access_key_id || !c->secret_access_key || (token && *token && !c->session_token)) {
		irfw_creds_clear(c);
		return -1;
	}
	return 0;
}

/* ISO-8601 as AWS writes it: 2026-11-28T12:00:00Z, with optional fraction
 * and a Z, UTC or +hh:mm offset. */
int creds_parse_time(const char *s, time_t *out)
{
	struct tm tm;
	int n = 0, oh = 0, om = 0;
	const char *p;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	           &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n == 0)
		return -1;
	p = s + n;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (strcmp(p, "UTC") == 0) { /* what the AWS CLI v2 once wrote in its SSO cache */
		p += 3;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;

		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return -1;
		t -= sign * (oh * 3600 + om * 60);
		p += 6;
	} else if (*p != '\0') {
		return -1;
	}
	if (*p != '\0')
		return -1;
	*out = t;
	return 0;
}

/* Fill `c` from a {AccessKeyId, SecretAccessKey, <token_key>, Expiration}
 * object, as STS, ECS and IMDS all reply. */
int creds_from_json(const cJSON *o, const char *token_key, const char *source, struct irfw_creds *c,
                    char *err, size_t errlen)
{
	const cJSON *akid = cJSON_GetObjectItemCaseSensitive(o, "AccessKeyId");
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "SecretAccessKey");
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(o, token_key);
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "Expiration");
	time_t expiration = 0;

	if (!cJSON_IsString(akid) || !*akid->valuestring || !cJSON_IsString(sec) || !*sec->valuestring) {
		irfw_set_err(err, errlen, "%s: reply has no AccessKeyId/SecretAccessKey", source);
		return -1;
	}
	if (cJSON_IsString(exp)) {
		if (creds_parse_time(exp->valuestring, &expiration) < 0) {
			irfw_set_err(err, errlen, "%s: bad Expiration \"%.40s\"", source, exp->valuestring);
			return -1;
		}
	} else if (cJSON_IsNumber(exp)) {
		expiration = (time_t)exp->valuedouble; /* JSON protocols give epoch seconds */
	}
	if (creds_set(c, akid->valuestring, sec->valuestring, cJSON_IsString(tok) ? tok->valuestring : NULL,
	              expiration, source) < 0) {
		irfw_set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

char *creds_read_file(const char *path, char *err, size_t errlen, const char *what)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (!f) {
		irfw_set_err(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_TOKEN_FILE + 1);
	if (!buf) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	n = fread(buf, 1, MAX_TOKEN_FILE + 1, f);
	if (ferror(f) || n > MAX_TOKEN_FILE) {
		irfw_set_err(err, errlen, "cannot read %s %s: %s", what, path,
		             ferror(f) ? "read error" : "too large");
		OPENSSL_cleanse(buf, MAX_TOKEN_FILE + 1);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
out:
	fclose(f);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Environment.                                                        */

/* Returns 0, 1 when not set, -1 when only half is set. */
int creds_env_keys(struct irfw_creds *c, char *err, size_t errlen)
{
	const char *akid = creds_env("AWS_ACCESS_KEY_ID");
	const char *sec = creds_env("AWS_SECRET_ACCESS_KEY");

	if (!akid && !sec) {
		irfw_set_err(err, errlen, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set");
		return 1;
	}
	if (!akid || !sec) {
		irfw_set_err(err, errlen, "%s is set but %s is not",
		             akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		             akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -1;
	}
	if (creds_set(c, akid, sec, creds_env("AWS_SESSION_TOKEN"), 0, "env") < 0) {
		irfw_set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The provider.                                                       */

enum src_kind { SRC_ENV, SRC_PROFILE, SRC_WEB_IDENTITY, SRC_CONTAINER, SRC_IMDS };

struct irfw_cred_provider {
	pthread_mutex_t lock;
	pthread_cond_t done;
	bool refreshing;
	struct irfw_creds cur;
	enum src_kind kind;
	char *profile;         /* the profile in force: explicit, AWS_PROFILE or "default" */
	bool explicit_profile; /* --profile or [irfw] profile: no environment keys */
	bool named;            /* explicit or AWS_PROFILE: it must exist */
	char *region;
	char *ca_file;
	char *site_endpoint;
	struct resolver r;
};

static int fetch(const struct irfw_cred_provider *p, struct irfw_creds *c, char *err, size_t errlen)
{
	int rc = -1;

	switch (p->kind) {
	case SRC_ENV:
		rc = creds_env_keys(c, err, errlen);
		break;
	case SRC_PROFILE:
		rc = creds_shared_profile(&p->r, p->profile, p->named, !p->explicit_profile, c, err, errlen);
		break;
	case SRC_WEB_IDENTITY:
		rc = creds_env_web_identity(&p->r, c, err, errlen);
		break;
	case SRC_CONTAINER:
		rc = creds_container(p->r.timeout_ms, c, err, errlen);
		break;
	case SRC_IMDS:
		rc = creds_imds(p->r.imds_v1_fallback, p->r.timeout_ms, c, err, errlen);
		break;
	}
	return rc == 0 ? 0 : -1;
}

static void append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t off = strlen(buf);
	va_list ap;

	if (off + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
}

/* Walk the chain; set p->kind and p->cur.  The error lists every source. */
static int resolve_chain(struct irfw_cred_provider *p, char *err, size_t errlen)
{
	char why[512], tried[1536] = "";
	int rc;

	/* A profile named by --profile or AWS_PROFILE must exist, even when
	 * the environment's keys would be used (botocore: ProfileNotFound). */
	if (p->named && creds_profile_check(p->profile, err, errlen) < 0)
		return -1;
	/* An explicit profile negates the environment's keys; AWS_PROFILE
	 * does not (botocore's create_credential_resolver). */
	if (!p->explicit_profile) {
		p->kind = SRC_ENV;
		rc = creds_env_keys(&p->cur, why, sizeof(why));
		if (rc <= 0)
			goto done;
		append(tried, sizeof(tried), "environment (%s); ", why);
	}

	p->kind = SRC_PROFILE;
	rc = creds_shared_profile(&p->r, p->profile, p->named, !p->explicit_profile, &p->cur, why,
	                          sizeof(why));
	if (rc <= 0)
		goto done;
	append(tried, sizeof(tried), "shared files (%s)", why);

	if (!p->explicit_profile) {
		p->kind = SRC_WEB_IDENTITY;
		rc = creds_env_web_identity(&p->r, &p->cur, why, sizeof(why));
		if (rc <= 0)
			goto done;
		append(tried, sizeof(tried), "; web identity (%s)", why);
	}

	p->kind = SRC_CONTAINER;
	rc = creds_container(p->r.timeout_ms, &p->cur, why, sizeof(why));
	if (rc <= 0)
		goto done;
	append(tried, sizeof(tried), "; container (%s)", why);

	/* Failing to reach IMDS just means we are not on EC2. */
	p->kind = SRC_IMDS;
	rc = creds_imds(p->r.imds_v1_fallback, p->r.timeout_ms, &p->cur, why, sizeof(why));
	if (rc == 0)
		return 0;
	append(tried, sizeof(tried), "; IMDS (%s)", why);
	irfw_set_err(err, errlen, "no AWS credentials found; tried: %s", tried);
	return -1;
done:
	if (rc < 0)
		irfw_set_err(err, errlen, "%s", why);
	return rc;
}

static char *dup_opt(const char *s, bool *oom)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

int irfw_creds_provider_new(const struct irfw_cred_options *o, struct irfw_cred_provider **out, char *err,
                            size_t errlen)
{
	struct irfw_cred_provider *p;
	const char *profile = NULL;
	bool oom = false;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		irfw_set_err(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->done, NULL);
	if (o) {
		p->r.sts = o->sts;
		p->r.sts_ctx = o->sts_ctx;
		p->r.imds_v1_fallback = o->imds_v1_fallback;
		p->r.timeout_ms = o->timeout_ms;
		if (o->profile && *o->profile) {
			profile = o->profile;
			p->explicit_profile = true;
		}
		p->region = dup_opt(o->region, &oom);
		p->ca_file = dup_opt(o->ca_file, &oom);
		p->site_endpoint = dup_opt(o->endpoint_url, &oom);
	}
	if (!profile)
		profile = creds_env("AWS_PROFILE");
	p->named = profile != NULL;
	p->profile = strdup(profile ? profile : "default");
	if (!p->profile || oom)
		goto oom;
	p->r.region = p->region;
	p->r.profile = p->profile;
	p->r.ca_file = p->ca_file;
	p->r.site_endpoint = p->site_endpoint;
	if (resolve_chain(p, err, errlen) < 0) {
		irfw_creds_provider_free(p);
		return -1;
	}
	*out = p;
	return 0;
oom:
	irfw_set_err(err, errlen, "out of memory");
	irfw_creds_provider_free(p);
	return -1;
}

static bool needs_refresh(const struct irfw_creds *c, time_t now)
{
	return c->expiration != 0 && now + REFRESH_WINDOW_S >= c->expiration;
}

static bool expired(const struct irfw_creds *c, time_t now)
{
	return c->expiration != 0 && now >= c->expiration;
}

int irfw_creds_get(struct irfw_cred_provider *p, struct irfw_creds *copy, char *err, size_t errlen)
{
	struct irfw_creds fresh;
	char why[512] = "";
	int ret = -1, rc;

	memset(copy, 0, sizeof(*copy));
	pthread_mutex_lock(&p->lock);
	for (;;) {
		time_t now = time(NULL);

		if (!needs_refresh(&p->cur, now) || (p->refreshing && !expired(&p->cur, now)))
			goto give_copy;
		if (!p->refreshing)
			break;
		/* Another thread is fetching and ours are dead: wait for it. */
		pthread_cond_wait(&p->done, &p->lock);
	}
	p->refreshing = true;
	pthread_mutex_unlock(&p->lock);

	/* Fetch without the lock so the others keep signing meanwhile. */
	memset(&fresh, 0, sizeof(fresh));
	rc = fetch(p, &fresh, why, sizeof(why));

	pthread_mutex_lock(&p->lock);
	p->refreshing = false;
	pthread_cond_broadcast(&p->done);
	if (rc == 0) {
		irfw_creds_clear(&p->cur);
		p->cur = fresh;
	} else if (expired(&p->cur, time(NULL))) {
		irfw_set_err(err, errlen, "credentials from %s expired and refresh failed: %s", p->cur.source,
		             why);
		goto out;
	}
	/* A failed refresh of still-valid credentials is retried next call. */
give_copy:
	if (creds_copy(copy, &p->cur) < 0) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void irfw_creds_provider_free(struct irfw_cred_provider *p)
{
	if (!p)
		return;
	irfw_creds_clear(&p->cur);
	free(p->profile);
	free(p->region);
	free(p->ca_file);
	free(p->site_endpoint);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
