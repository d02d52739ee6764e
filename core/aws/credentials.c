/*
 * credentials.c - AWS credential and region resolution (see credentials.h).
 */
#define _GNU_SOURCE /* timegm, getline */

#include "credentials.h"

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

/* Refresh this long before the credentials expire, as the SDKs do. */
#define REFRESH_WINDOW_S 300
/* A source_profile chain longer than this is a misconfiguration. */
#define MAX_CHAIN 16
#define DEFAULT_TIMEOUT_MS 2000L
#define CONNECT_TIMEOUT_MS 1000L
/* Metadata replies are tiny; anything bigger is not a metadata service. */
#define MAX_BODY (64 * 1024)
#define MAX_TOKEN_FILE (64 * 1024)
#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_IPV6_ENDPOINT "http://[fd00:ec2::254]"
#define ECS_HOST_URL "http://169.254.170.2"

/* ------------------------------------------------------------------ */
/* Small helpers.                                                      */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* An unset and an empty variable mean the same to the SDKs. */
static const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static void wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
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
static void cjson_wipe_delete(cJSON *j)
{
	if (!j)
		return;
	cjson_wipe(j);
	cJSON_Delete(j);
}

void irfw_creds_clear(struct irfw_creds *c)
{
	if (!c)
		return;
	wipe_free(c->access_key_id);
	wipe_free(c->secret_access_key);
	wipe_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

static int creds_copy(struct irfw_creds *dst, const struct irfw_creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key_id = strdup(src->access_key_id);
	dst->secret_access_key = strdup(src->secret_access_key);
	dst->session_token = src->session_token ? strdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	memcpy(dst->source, src->source, sizeof(dst->source));
	if (!dst->access_key_id || !dst->secret_access_key ||
	    (src->session_token && !dst->session_token)) {
		irfw_creds_clear(dst);
		return -1;
	}
	return 0;
}

static int creds_set(struct irfw_creds *c, const char *akid, const char *secret, const char *token,
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
 * and a Z or +hh:mm offset. */
static int parse_iso8601(const char *s, time_t *out)
{
	struct tm tm;
	int n = 0, oh = 0, om = 0;
	const char *p;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n == 0)
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
static int creds_from_json(const cJSON *o, const char *token_key, const char *source,
			   struct irfw_creds *c, char *err, size_t errlen)
{
	const cJSON *akid = cJSON_GetObjectItemCaseSensitive(o, "AccessKeyId");
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "SecretAccessKey");
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(o, token_key);
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "Expiration");
	time_t expiration = 0;

	if (!cJSON_IsString(akid) || !*akid->valuestring || !cJSON_IsString(sec) ||
	    !*sec->valuestring) {
		set_err(err, errlen, "%s: reply has no AccessKeyId/SecretAccessKey", source);
		return -1;
	}
	if (cJSON_IsString(exp)) {
		if (parse_iso8601(exp->valuestring, &expiration) < 0) {
			set_err(err, errlen, "%s: bad Expiration \"%.40s\"", source,
				exp->valuestring);
			return -1;
		}
	} else if (cJSON_IsNumber(exp)) {
		expiration = (time_t)exp->valuedouble; /* JSON protocols give epoch seconds */
	}
	if (creds_set(c, akid->valuestring, sec->valuestring,
		      cJSON_IsString(tok) ? tok->valuestring : NULL, expiration, source) < 0) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static char *read_small_file(const char *path, char *err, size_t errlen, const char *what)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (!f) {
		set_err(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_TOKEN_FILE + 1);
	if (!buf) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	n = fread(buf, 1, MAX_TOKEN_FILE + 1, f);
	if (ferror(f) || n > MAX_TOKEN_FILE) {
		set_err(err, errlen, "cannot read %s %s: %s", what, path,
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
/* Shared config and credentials files.                                */

struct kv {
	char *profile;
	char *key;
	char *value;
};

struct cfgfile {
	char *path;
	struct kv *v;
	size_t n, cap;
	bool is_config; /* sections are "profile x" / "default" */
};

struct shared {
	struct cfgfile creds;
	struct cfgfile config;
};

/* The packaged inih (r55) splits lines of 200 characters or more into
 * several lines without a word, which would silently truncate a session
 * token.  This reader hands inih whole short lines and, for a long
 * `key = value` line, the key with a placeholder for the value, which the
 * handler then looks up here. */
struct ini_ctx {
	struct cfgfile *file;
	FILE *f;
	char *line;
	size_t cap;
	int lineno;
	int bad_line; /* first line that could not be handed to inih */
	bool oom;
	char **longv;
	size_t nlong, caplong;
};

#define LONG_MARK '\x1f'

static char *cfg_reader(char *str, int num, void *stream)
{
	struct ini_ctx *c = stream;
	ssize_t len = getline(&c->line, &c->cap, c->f);
	char *s, *val, **nv;
	size_t k;

	if (len < 0)
		return NULL;
	c->lineno++;
	if (len < num) {
		memcpy(str, c->line, (size_t)len + 1);
		return str;
	}
	s = c->line;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == ';' || *s == '#') {
		snprintf(str, (size_t)num, ";\n");
		return str;
	}
	k = strcspn(c->line, "=:");
	if (*s == '[' || (s == c->line && (c->line[k] == '\0' || k + 32 > (size_t)num))) {
		if (!c->bad_line)
			c->bad_line = c->lineno;
		snprintf(str, (size_t)num, "\n");
		return str;
	}
	/* An indented line continues the previous value, as inih reads it. */
	val = s > c->line ? s : c->line + k + 1;
	for (char *p = val; *p; p++)
		if (*p == ';' && p > val && isspace((unsigned char)p[-1])) {
			*p = '\0';
			break;
		}
	val = trim(val);
	if (c->nlong == c->caplong) {
		size_t ncap = c->caplong ? c->caplong * 2 : 4;

		nv = realloc(c->longv, ncap * sizeof(*nv));
		if (!nv)
			goto oom;
		c->longv = nv;
		c->caplong = ncap;
	}
	c->longv[c->nlong] = strdup(val);
	if (!c->longv[c->nlong])
		goto oom;
	if (s > c->line)
		snprintf(str, (size_t)num, " %c%zu\n", LONG_MARK, c->nlong);
	else
		snprintf(str, (size_t)num, "%.*s=%c%zu\n", (int)k, c->line, LONG_MARK, c->nlong);
	c->nlong++;
	return str;
oom:
	c->oom = true;
	snprintf(str, (size_t)num, "\n");
	return str;
}

/* Map an INI section to a profile name; NULL for sections that are not
 * profiles (sso-session, services, bare names in the config file). */
static const char *section_profile(const struct cfgfile *f, const char *section, char *buf,
				   size_t buflen)
{
	char *s;

	snprintf(buf, buflen, "%s", section);
	s = trim(buf);
	if (!f->is_config)
		return *s ? s : NULL;
	if (strcmp(s, "default") == 0)
		return s;
	if (strncmp(s, "profile", 7) == 0 && isspace((unsigned char)s[7])) {
		s = trim(s + 7);
		return *s ? s : NULL;
	}
	return NULL;
}

static struct kv *cfg_find(const struct cfgfile *f, const char *profile, const char *key)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i].profile, profile) == 0 && strcasecmp(f->v[i].key, key) == 0)
			return &f->v[i];
	return NULL;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *c = user;
	struct cfgfile *f = c->file;
	char buf[256];
	const char *prof = section_profile(f, section, buf, sizeof(buf));
	struct kv *e;
	char *v;

	if (!prof)
		return 1;
	if (value[0] == LONG_MARK) {
		size_t i = strtoul(value + 1, NULL, 10);

		value = i < c->nlong ? c->longv[i] : "";
	}
	v = strdup(value);
	if (!v)
		return 0;
	e = cfg_find(f, prof, name);
	if (e) { /* inih merges repeated sections; the last value wins */
		wipe_free(e->value);
		e->value = v;
		return 1;
	}
	if (f->n == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 16;
		struct kv *nv = realloc(f->v, ncap * sizeof(*nv));

		if (!nv)
			goto oom;
		f->v = nv;
		f->cap = ncap;
	}
	e = &f->v[f->n];
	e->profile = strdup(prof);
	e->key = strdup(name);
	e->value = v;
	if (!e->profile || !e->key) {
		free(e->profile);
		free(e->key);
		goto oom;
	}
	for (char *p = e->key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	f->n++;
	return 1;
oom:
	wipe_free(v);
	return 0;
}

static void cfgfile_free(struct cfgfile *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].profile);
		free(f->v[i].key);
		wipe_free(f->v[i].value);
	}
	free(f->v);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

static void shared_free(struct shared *sh)
{
	if (!sh)
		return;
	cfgfile_free(&sh->creds);
	cfgfile_free(&sh->config);
	free(sh);
}

/* The file named by `env`, else ~/.aws/<name>, with a leading ~/ expanded. */
static char *shared_path(const char *env, const char *name)
{
	const char *v = env_get(env);
	const char *home = getenv("HOME");
	char *p = NULL;

	if (v && strncmp(v, "~/", 2) == 0 && home) {
		if (asprintf(&p, "%s/%s", home, v + 2) < 0)
			p = NULL;
	} else if (v) {
		p = strdup(v);
	} else if (home) {
		if (asprintf(&p, "%s/.aws/%s", home, name) < 0)
			p = NULL;
	}
	return p;
}

char *irfw_shared_credentials_path(void)
{
	return shared_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
}

static int cfgfile_load(struct cfgfile *f, char *err, size_t errlen)
{
	struct ini_ctx c;
	int rc, ret = -1;

	memset(&c, 0, sizeof(c));
	c.file = f;
	if (!f->path)
		return 0;
	c.f = fopen(f->path, "r");
	if (!c.f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0; /* a missing file is simply empty */
		set_err(err, errlen, "%s: %s", f->path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(cfg_reader, &c, cfg_handler, &c);
	if (c.oom || rc == -2) {
		set_err(err, errlen, "out of memory reading %s", f->path);
		goto out;
	}
	if (c.bad_line && (rc <= 0 || c.bad_line < rc)) {
		set_err(err, errlen, "%s:%d: line too long", f->path, c.bad_line);
		goto out;
	}
	if (rc != 0) {
		set_err(err, errlen, "%s:%d: cannot parse line", f->path, rc);
		goto out;
	}
	ret = 0;
out:
	fclose(c.f);
	if (c.line) {
		OPENSSL_cleanse(c.line, c.cap);
		free(c.line);
	}
	for (size_t i = 0; i < c.nlong; i++)
		wipe_free(c.longv[i]);
	free(c.longv);
	return ret;
}

static struct shared *shared_load(char *err, size_t errlen)
{
	struct shared *sh = calloc(1, sizeof(*sh));

	if (!sh) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	sh->config.is_config = true;
	sh->creds.path = shared_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	sh->config.path = shared_path("AWS_CONFIG_FILE", "config");
	if (cfgfile_load(&sh->creds, err, errlen) < 0 ||
	    cfgfile_load(&sh->config, err, errlen) < 0) {
		shared_free(sh);
		return NULL;
	}
	return sh;
}

static const char *shared_get(const struct shared *sh, const char *profile, const char *key)
{
	const struct kv *e = cfg_find(&sh->creds, profile, key);

	if (!e)
		e = cfg_find(&sh->config, profile, key);
	return e && *e->value ? e->value : NULL;
}

static bool shared_has_profile(const struct shared *sh, const char *profile)
{
	const struct cfgfile *files[] = {&sh->creds, &sh->config};

	for (size_t f = 0; f < 2; f++)
		for (size_t i = 0; i < files[f]->n; i++)
			if (strcmp(files[f]->v[i].profile, profile) == 0)
				return true;
	return false;
}

static const char *effective_profile(const char *profile)
{
	if (profile && *profile)
		return profile;
	if (env_get("AWS_PROFILE"))
		return env_get("AWS_PROFILE");
	return "default";
}

char *irfw_profile_get(const char *profile, const char *key)
{
	char err[256];
	struct shared *sh = shared_load(err, sizeof(err));
	const char *v;
	char *r = NULL;

	if (!sh || !key)
		goto out;
	v = shared_get(sh, effective_profile(profile), key);
	if (v)
		r = strdup(v);
out:
	shared_free(sh);
	return r;
}

char *irfw_resolve_region(const char *explicit_region, const char *profile)
{
	if (explicit_region && *explicit_region)
		return strdup(explicit_region);
	if (env_get("AWS_REGION"))
		return strdup(env_get("AWS_REGION"));
	if (env_get("AWS_DEFAULT_REGION"))
		return strdup(env_get("AWS_DEFAULT_REGION"));
	return irfw_profile_get(profile, "region");
}

/* ------------------------------------------------------------------ */
/* HTTP to the metadata services.                                      */

struct body {
	char *p;
	size_t n;
	bool too_big;
};

static size_t body_write(char *data, size_t size, size_t nmemb, void *user)
{
	struct body *b = user;
	size_t add = size * nmemb;
	char *np;

	if (b->n + add > MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	np = malloc(b->n + add + 1);
	if (!np)
		return 0;
	/* Copy rather than realloc so that no stale copy of a secret is left. */
	if (b->p) {
		memcpy(np, b->p, b->n);
		OPENSSL_cleanse(b->p, b->n);
		free(b->p);
	}
	memcpy(np + b->n, data, add);
	b->n += add;
	np[b->n] = '\0';
	b->p = np;
	return add;
}

/* One request.  Returns 0 with *status and *body (wipe_free it), or -1 on a
 * transport error.  `what` names the service in messages; the URL is left
 * out because container URLs can carry an identifier. */
static int http_do(const char *method, const char *url, const char *const *headers,
		   long timeout_ms, const char *what, long *status, char **body, char *err,
		   size_t errlen)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL, *t;
	struct body b = {NULL, 0, false};
	char ebuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	int ret = -1;

	*body = NULL;
	*status = 0;
	if (!h) {
		set_err(err, errlen, "%s: cannot create a curl handle", what);
		return -1;
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		t = curl_slist_append(hl, headers[i]);
		if (!t) {
			set_err(err, errlen, "out of memory");
			goto out;
		}
		hl = t;
	}
	if (strcmp(method, "PUT") == 0) {
		/* An empty PUT body; drop the form content type POSTFIELDS adds. */
		t = curl_slist_append(hl, "Content-Type:");
		if (!t) {
			set_err(err, errlen, "out of memory");
			goto out;
		}
		hl = t;
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we run in worker threads */
	/* Link-local and loopback services must never go through a proxy. */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		if (b.too_big)
			set_err(err, errlen, "%s: reply larger than %d bytes", what, MAX_BODY);
		else
			set_err(err, errlen, "%s: %s", what, *ebuf ? ebuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	*body = b.p ? b.p : strdup("");
	b.p = NULL;
	if (!*body) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	if (b.p) {
		OPENSSL_cleanse(b.p, b.n);
		free(b.p);
	}
	/* The list holds tokens; wipe our copies before curl frees them. */
	for (t = hl; t; t = t->next)
		OPENSSL_cleanse(t->data, strlen(t->data));
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	return ret;
}

/* ------------------------------------------------------------------ */
/* IMDSv2.                                                             */

struct imds {
	char base[256];
	char *token; /* NULL: IMDSv1 */
	long timeout_ms;
};

static long opt_timeout(long timeout_ms)
{
	return timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

/* Returns 0 with a session, 1 when IMDS is disabled (reason in err), -1 on
 * error. */
static int imds_open(struct imds *m, bool v1_fallback, long timeout_ms, char *err, size_t errlen)
{
	static const char *const token_hdr[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600",
						NULL};
	const char *ep = env_get("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = env_get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	const char *dis = env_get("AWS_EC2_METADATA_DISABLED");
	char url[320];
	char *body = NULL;
	long status;
	size_t n;

	memset(m, 0, sizeof(*m));
	m->timeout_ms = opt_timeout(timeout_ms);
	if (dis && strcasecmp(dis, "true") == 0) {
		set_err(err, errlen, "disabled by AWS_EC2_METADATA_DISABLED");
		return 1;
	}
	if (!ep)
		ep = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_IPV6_ENDPOINT
							    : IMDS_DEFAULT_ENDPOINT;
	snprintf(m->base, sizeof(m->base), "%s", ep);
	n = strlen(m->base);
	while (n > 0 && m->base[n - 1] == '/')
		m->base[--n] = '\0';
	snprintf(url, sizeof(url), "%s/latest/api/token", m->base);
	if (http_do("PUT", url, token_hdr, m->timeout_ms, "IMDS token", &status, &body, err,
		    errlen) < 0)
		return -1;
	if (status == 200 && *trim(body)) {
		m->token = strdup(trim(body));
		wipe_free(body);
		if (!m->token) {
			set_err(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	wipe_free(body);
	/* 403/404/405 are how an IMDS without v2 (or a v1 proxy) answers. */
	if ((status == 403 || status == 404 || status == 405) && v1_fallback)
		return 0;
	set_err(err, errlen, "IMDSv2 token request refused (HTTP %ld)%s", status,
		v1_fallback ? "" : "; IMDSv1 fallback is off");
	return -1;
}

static void imds_close(struct imds *m)
{
	wipe_free(m->token);
	m->token = NULL;
}

static int imds_get(const struct imds *m, const char *path, char **body, char *err, size_t errlen)
{
	char url[512];
	char *hdr = NULL;
	const char *hdrs[2] = {NULL, NULL};
	long status;
	int ret = -1;

	snprintf(url, sizeof(url), "%s%s", m->base, path);
	if (m->token) {
		if (asprintf(&hdr, "X-aws-ec2-metadata-token: %s", m->token) < 0) {
			set_err(err, errlen, "out of memory");
			return -1;
		}
		hdrs[0] = hdr;
	}
	if (http_do("GET", url, hdrs, m->timeout_ms, "IMDS", &status, body, err, errlen) < 0)
		goto out;
	if (status != 200) {
		set_err(err, errlen, "IMDS GET %s: HTTP %ld", path, status);
		wipe_free(*body);
		*body = NULL;
		goto out;
	}
	ret = 0;
out:
	wipe_free(hdr);
	return ret;
}

/* Returns 0, 1 when IMDS is disabled, -1 on error. */
static int imds_creds(bool v1_fallback, long timeout_ms, struct irfw_creds *c, char *err,
		      size_t errlen)
{
	static const char list_path[] = "/latest/meta-data/iam/security-credentials/";
	struct imds m;
	char *body = NULL, *role, path[400];
	cJSON *j = NULL;
	const cJSON *code;
	int rc;

	rc = imds_open(&m, v1_fallback, timeout_ms, err, errlen);
	if (rc != 0)
		return rc;
	rc = -1;
	if (imds_get(&m, list_path, &body, err, errlen) < 0)
		goto out;
	role = trim(body);
	role[strcspn(role, "\r\n")] = '\0';
	if (!*role || strchr(role, '/') || strlen(role) > 128) {
		set_err(err, errlen, "IMDS: no instance role attached");
		goto out;
	}
	snprintf(path, sizeof(path), "%s%s", list_path, role);
	wipe_free(body);
	body = NULL;
	if (imds_get(&m, path, &body, err, errlen) < 0)
		goto out;
	j = cJSON_Parse(body);
	if (!cJSON_IsObject(j)) {
		set_err(err, errlen, "IMDS: credentials reply is not JSON");
		goto out;
	}
	code = cJSON_GetObjectItemCaseSensitive(j, "Code");
	if (cJSON_IsString(code) && strcmp(code->valuestring, "Success") != 0) {
		set_err(err, errlen, "IMDS: credentials reply Code=%.40s", code->valuestring);
		goto out;
	}
	rc = creds_from_json(j, "Token", "imds", c, err, errlen);
out:
	cjson_wipe_delete(j);
	wipe_free(body);
	imds_close(&m);
	return rc;
}

char *irfw_imds_region(const struct irfw_cred_options *o)
{
	struct imds m;
	char err[256], *body = NULL, *r = NULL;

	if (imds_open(&m, o ? o->imds_v1_fallback : false, o ? o->timeout_ms : 0, err,
		      sizeof(err)) != 0)
		return NULL;
	if (imds_get(&m, "/latest/meta-data/placement/region", &body, err, sizeof(err)) == 0 &&
	    *trim(body))
		r = strdup(trim(body));
	free(body);
	imds_close(&m);
	return r;
}

/* ------------------------------------------------------------------ */
/* Container credentials (ECS task roles, EKS Pod Identity).          */

static bool addr_allowed(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		uint32_t a = ntohl(in->sin_addr.s_addr);

		return (a >> 24) == 127 || a == 0xA9FEAA02u /* 169.254.170.2 */ ||
		       a == 0xA9FEAA17u /* 169.254.170.23 */;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		static const unsigned char eks[16] = {0xfd, 0, 0, 0, 0x0e, 0xc2, 0, 0,
						      0,    0, 0, 0, 0,    0,    0, 0x23};

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       memcmp(&in6->sin6_addr, eks, 16) == 0;
	}
	return false;
}

/* A full URI may be https anywhere, but plain http only to loopback or the
 * ECS/EKS agents: otherwise any DNS trick could harvest the token. */
static int full_uri_allowed(const char *uri, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	struct addrinfo hints, *res = NULL, *ai;
	size_t hl;
	int ret = -1;

	if (!u) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid URL");
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0) {
		ret = 0;
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0) {
		set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be http or https");
		goto out;
	}
	hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) {
		set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI: cannot resolve %s", host);
		goto out;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if (!addr_allowed(ai->ai_addr)) {
			set_err(err, errlen,
				"AWS_CONTAINER_CREDENTIALS_FULL_URI: http is only allowed to "
				"loopback or the ECS/EKS agent, not %s",
				host);
			goto out;
		}
	ret = 0;
out:
	if (res)
		freeaddrinfo(res);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

/* Returns 0, 1 when not configured (reason in err), -1 on error. */
static int container_creds(long timeout_ms, struct irfw_creds *c, char *err, size_t errlen)
{
	const char *rel = env_get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_get("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tokfile = env_get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tokenv = env_get("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *url = NULL, *filetok = NULL, *hdr = NULL, *body = NULL;
	const char *hdrs[2] = {NULL, NULL}, *tok = NULL;
	cJSON *j = NULL;
	long status;
	int ret = -1;

	if (!rel && !full) {
		set_err(err, errlen,
			"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI not set");
		return 1;
	}
	if (rel) {
		if (asprintf(&url, "%s%s%s", ECS_HOST_URL, rel[0] == '/' ? "" : "/", rel) < 0)
			url = NULL;
	} else {
		if (full_uri_allowed(full, err, errlen) < 0)
			return -1;
		url = strdup(full);
	}
	if (!url) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	/* The file wins: EKS rotates it, while the variable is fixed at start. */
	if (tokfile) {
		filetok = read_small_file(tokfile, err, errlen, "container authorization token file");
		if (!filetok)
			goto out;
		tok = trim(filetok);
	} else {
		tok = tokenv;
	}
	if (tok) {
		if (strpbrk(tok, "\r\n")) {
			set_err(err, errlen, "container authorization token contains a line break");
			goto out;
		}
		if (asprintf(&hdr, "Authorization: %s", tok) < 0) {
			hdr = NULL;
			set_err(err, errlen, "out of memory");
			goto out;
		}
		hdrs[0] = hdr;
	}
	if (http_do("GET", url, hdrs, opt_timeout(timeout_ms), "container credentials endpoint",
		    &status, &body, err, errlen) < 0)
		goto out;
	if (status != 200) {
		set_err(err, errlen, "container credentials endpoint: HTTP %ld", status);
		goto out;
	}
	j = cJSON_Parse(body);
	if (!cJSON_IsObject(j)) {
		set_err(err, errlen, "container credentials endpoint: reply is not JSON");
		goto out;
	}
	ret = creds_from_json(j, "Token", "container", c, err, errlen);
out:
	cjson_wipe_delete(j);
	wipe_free(body);
	wipe_free(hdr);
	if (filetok) {
		OPENSSL_cleanse(filetok, MAX_TOKEN_FILE + 1);
		free(filetok);
	}
	free(url);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Environment.                                                        */

/* Returns 0, 1 when not set, -1 when only half is set. */
static int env_creds(struct irfw_creds *c, char *err, size_t errlen)
{
	const char *akid = env_get("AWS_ACCESS_KEY_ID");
	const char *sec = env_get("AWS_SECRET_ACCESS_KEY");

	if (!akid && !sec) {
		set_err(err, errlen, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set");
		return 1;
	}
	if (!akid || !sec) {
		set_err(err, errlen, "%s is set but %s is not",
			akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -1;
	}
	if (creds_set(c, akid, sec, env_get("AWS_SESSION_TOKEN"), 0, "env") < 0) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* STS.                                                                */

struct resolver {
	irfw_sts_fn sts;
	void *sts_ctx;
	const char *region; /* may be NULL */
	bool imds_v1_fallback;
	long timeout_ms;
};

static int add_param(cJSON *params, const char *name, const char *value)
{
	return cJSON_AddStringToObject(params, name, value) ? 0 : -1;
}

/* Run an STS operation and turn its reply into credentials.  `source` NULL
 * for web identity.  `profile` picks the region when none was given. */
static int sts_creds(const struct resolver *r, const char *op, cJSON *params,
		     const struct irfw_creds *source, const char *profile, const char *role_arn,
		     struct irfw_creds *c, char *err, size_t errlen)
{
	char *region = NULL, label[48], key[64], msg[256] = "";
	cJSON *res = NULL;
	const cJSON *inner, *cr;
	int ret = -1;

	if (!r->sts) {
		set_err(err, errlen, "%s %s: no STS client available", op, role_arn);
		return -1;
	}
	region = r->region ? strdup(r->region) : irfw_resolve_region(NULL, profile);
	if (r->sts(r->sts_ctx, op, params, source, region, &res, msg, sizeof(msg)) != 0) {
		set_err(err, errlen, "%s %s: %s", op, role_arn, *msg ? msg : "failed");
		goto out;
	}
	snprintf(key, sizeof(key), "%sResult", op);
	inner = cJSON_GetObjectItemCaseSensitive(res, key);
	if (!inner)
		inner = res;
	cr = cJSON_GetObjectItemCaseSensitive(inner, "Credentials");
	if (!cJSON_IsObject(cr)) {
		set_err(err, errlen, "%s %s: reply has no Credentials", op, role_arn);
		goto out;
	}
	if (source)
		snprintf(label, sizeof(label), "assume-role:%s", role_arn);
	else
		snprintf(label, sizeof(label), "web-identity");
	ret = creds_from_json(cr, "SessionToken", label, c, err, errlen);
out:
	cjson_wipe_delete(res);
	free(region);
	return ret;
}

static int web_identity(const struct resolver *r, const char *token_file, const char *role_arn,
			const char *session_name, const char *profile, struct irfw_creds *c,
			char *err, size_t errlen)
{
	char *tok = read_small_file(token_file, err, errlen, "web identity token file");
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
	if (!params || add_param(params, "RoleArn", role_arn) < 0 ||
	    add_param(params, "RoleSessionName", session_name) < 0 ||
	    add_param(params, "WebIdentityToken", trim(tok)) < 0) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = sts_creds(r, "AssumeRoleWithWebIdentity", params, NULL, profile, role_arn, c, err,
			errlen);
out:
	cjson_wipe_delete(params);
	OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
	return ret;
}

/* Returns 0, 1 when not set, -1 on error. */
static int env_web_identity(const struct resolver *r, struct irfw_creds *c, char *err,
			    size_t errlen)
{
	const char *file = env_get("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = env_get("AWS_ROLE_ARN");

	if (!file || !arn) {
		set_err(err, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN not set");
		return 1;
	}
	return web_identity(r, file, arn, env_get("AWS_ROLE_SESSION_NAME"), NULL, c, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Profiles.                                                           */

struct chain {
	const char *names[MAX_CHAIN];
	size_t n;
};

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
	const char *akid = shared_get(sh, name, "aws_access_key_id");
	const char *sec = shared_get(sh, name, "aws_secret_access_key");
	char label[48];

	if (!akid && !sec) {
		set_err(err, errlen, "profile \"%s\" has no credentials", name);
		return 1;
	}
	if (!akid || !sec) {
		set_err(err, errlen, "profile \"%s\" has %s but no %s", name,
			akid ? "aws_access_key_id" : "aws_secret_access_key",
			akid ? "aws_secret_access_key" : "aws_access_key_id");
		return -1;
	}
	snprintf(label, sizeof(label), "profile:%s", name);
	if (creds_set(c, akid, sec, shared_get(sh, name, "aws_session_token"), 0, label) < 0) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* The credentials a role profile assumes the role with. */
static int role_source(const struct resolver *r, const struct shared *sh, const char *name,
		       struct chain *ch, struct irfw_creds *src, char *err, size_t errlen)
{
	const char *sp = shared_get(sh, name, "source_profile");
	const char *cs = shared_get(sh, name, "credential_source");
	char path[256];
	int rc;

	if (sp && cs) {
		set_err(err, errlen,
			"profile \"%s\" has both source_profile and credential_source", name);
		return -1;
	}
	if (cs) {
		if (strcmp(cs, "Environment") == 0)
			rc = env_creds(src, err, errlen);
		else if (strcmp(cs, "Ec2InstanceMetadata") == 0)
			rc = imds_creds(r->imds_v1_fallback, r->timeout_ms, src, err, errlen);
		else if (strcmp(cs, "EcsContainer") == 0)
			rc = container_creds(r->timeout_ms, src, err, errlen);
		else {
			set_err(err, errlen,
				"profile \"%s\": credential_source \"%.40s\" is not one of "
				"Environment, Ec2InstanceMetadata, EcsContainer",
				name, cs);
			return -1;
		}
		if (rc != 0) {
			char why[256];

			snprintf(why, sizeof(why), "%s", err);
			set_err(err, errlen, "profile \"%s\": credential_source %s: %s", name, cs,
				why);
			return -1;
		}
		return 0;
	}
	if (!sp) {
		set_err(err, errlen,
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
			set_err(err, errlen, "source_profile loop: %s", path);
			return -1;
		}
	if (ch->n == MAX_CHAIN) {
		set_err(err, errlen, "source_profile chain longer than %d profiles", MAX_CHAIN);
		return -1;
	}
	rc = profile_creds(r, sh, sp, ch, src, err, errlen);
	if (rc == 1) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		set_err(err, errlen, "profile \"%s\": source_profile: %s", name, why);
		return -1;
	}
	return rc;
}

static int assume_role(const struct resolver *r, const struct shared *sh, const char *name,
		       const char *role_arn, struct chain *ch, struct irfw_creds *c, char *err,
		       size_t errlen)
{
	const char *ext = shared_get(sh, name, "external_id");
	const char *sess = shared_get(sh, name, "role_session_name");
	const char *dur = shared_get(sh, name, "duration_seconds");
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
			set_err(err, errlen,
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
	if (!params || add_param(params, "RoleArn", role_arn) < 0 ||
	    add_param(params, "RoleSessionName", sess) < 0 ||
	    (ext && add_param(params, "ExternalId", ext) < 0) ||
	    (dur && add_param(params, "DurationSeconds", dur) < 0)) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = sts_creds(r, "AssumeRole", params, &src, name, role_arn, c, err, errlen);
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

	if (!shared_has_profile(sh, name)) {
		set_err(err, errlen, "profile \"%s\" not found in %s or %s", name,
			sh->creds.path ? sh->creds.path : "(no credentials file)",
			sh->config.path ? sh->config.path : "(no config file)");
		return 1;
	}
	role_arn = shared_get(sh, name, "role_arn");
	if (!role_arn) {
		static const char *const unsupported[] = {"credential_process", "sso_session",
							  "sso_start_url", NULL};

		rc = static_keys(sh, name, c, err, errlen);
		/* Better a clear refusal than a silent fall-through to IMDS. */
		for (size_t i = 0; rc == 1 && unsupported[i]; i++)
			if (shared_get(sh, name, unsupported[i])) {
				set_err(err, errlen, "profile \"%s\" uses %s, which irfw does not "
						     "support; export keys or use a role profile",
					name, unsupported[i]);
				rc = -1;
			}
		return rc;
	}
	if (shared_get(sh, name, "mfa_serial")) {
		set_err(err, errlen, "profile \"%s\": mfa_serial needs an interactive prompt, "
				     "which irfw does not do",
			name);
		return -1;
	}
	wif = shared_get(sh, name, "web_identity_token_file");
	if (wif && !shared_get(sh, name, "source_profile") &&
	    !shared_get(sh, name, "credential_source"))
		return web_identity(r, wif, role_arn, shared_get(sh, name, "role_session_name"),
				    name, c, err, errlen);
	ch->names[ch->n++] = name;
	rc = assume_role(r, sh, name, role_arn, ch, c, err, errlen);
	ch->n--;
	return rc;
}

static int shared_profile_creds(const struct resolver *r, const char *name, struct irfw_creds *c,
				char *err, size_t errlen)
{
	struct chain ch = {.n = 0};
	struct shared *sh = shared_load(err, errlen);
	int rc;

	if (!sh)
		return -1;
	rc = profile_creds(r, sh, name, &ch, c, err, errlen);
	shared_free(sh);
	return rc;
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
	char *profile; /* SRC_PROFILE */
	char *region;
	struct resolver r;
};

static int fetch(const struct irfw_cred_provider *p, struct irfw_creds *c, char *err,
		 size_t errlen)
{
	int rc = -1;

	switch (p->kind) {
	case SRC_ENV:
		rc = env_creds(c, err, errlen);
		break;
	case SRC_PROFILE:
		rc = shared_profile_creds(&p->r, p->profile, c, err, errlen);
		break;
	case SRC_WEB_IDENTITY:
		rc = env_web_identity(&p->r, c, err, errlen);
		break;
	case SRC_CONTAINER:
		rc = container_creds(p->r.timeout_ms, c, err, errlen);
		break;
	case SRC_IMDS:
		rc = imds_creds(p->r.imds_v1_fallback, p->r.timeout_ms, c, err, errlen);
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
static int resolve_chain(struct irfw_cred_provider *p, const char *explicit_profile, char *err,
			 size_t errlen)
{
	char why[256], tried[1024] = "";
	int rc;

	if (explicit_profile) {
		p->kind = SRC_PROFILE;
		rc = shared_profile_creds(&p->r, p->profile, &p->cur, err, errlen);
		return rc == 0 ? 0 : -1;
	}
	p->kind = SRC_ENV;
	rc = env_creds(&p->cur, why, sizeof(why));
	if (rc <= 0)
		goto done;
	append(tried, sizeof(tried), "environment (%s)", why);

	p->kind = SRC_PROFILE;
	rc = shared_profile_creds(&p->r, p->profile, &p->cur, why, sizeof(why));
	if (rc <= 0)
		goto done;
	append(tried, sizeof(tried), "; shared files (%s)", why);

	p->kind = SRC_WEB_IDENTITY;
	rc = env_web_identity(&p->r, &p->cur, why, sizeof(why));
	if (rc <= 0)
		goto done;
	append(tried, sizeof(tried), "; web identity (%s)", why);

	p->kind = SRC_CONTAINER;
	rc = container_creds(p->r.timeout_ms, &p->cur, why, sizeof(why));
	if (rc <= 0)
		goto done;
	append(tried, sizeof(tried), "; container (%s)", why);

	/* Failing to reach IMDS just means we are not on EC2. */
	p->kind = SRC_IMDS;
	rc = imds_creds(p->r.imds_v1_fallback, p->r.timeout_ms, &p->cur, why, sizeof(why));
	if (rc == 0)
		return 0;
	append(tried, sizeof(tried), "; IMDS (%s)", why);
	set_err(err, errlen, "no AWS credentials found; tried: %s", tried);
	return -1;
done:
	if (rc < 0)
		set_err(err, errlen, "%s", why);
	return rc;
}

int irfw_creds_provider_new(const struct irfw_cred_options *o, struct irfw_cred_provider **out,
			    char *err, size_t errlen)
{
	struct irfw_cred_provider *p;
	const char *explicit_profile = NULL;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->done, NULL);
	if (o) {
		p->r.sts = o->sts;
		p->r.sts_ctx = o->sts_ctx;
		p->r.imds_v1_fallback = o->imds_v1_fallback;
		p->r.timeout_ms = o->timeout_ms;
		if (o->profile && *o->profile)
			explicit_profile = o->profile;
		if (o->region && *o->region) {
			p->region = strdup(o->region);
			if (!p->region)
				goto oom;
		}
	}
	if (!explicit_profile)
		explicit_profile = env_get("AWS_PROFILE");
	p->r.region = p->region;
	p->profile = strdup(explicit_profile ? explicit_profile : "default");
	if (!p->profile)
		goto oom;
	if (resolve_chain(p, explicit_profile, err, errlen) < 0) {
		irfw_creds_provider_free(p);
		return -1;
	}
	*out = p;
	return 0;
oom:
	set_err(err, errlen, "out of memory");
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
		set_err(err, errlen, "credentials from %s expired and refresh failed: %s",
			p->cur.source, why);
		goto out;
	}
	/* A failed refresh of still-valid credentials is retried next call. */
give_copy:
	if (creds_copy(copy, &p->cur) < 0) {
		set_err(err, errlen, "out of memory");
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
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
