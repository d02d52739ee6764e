/*
 * shared_config.c - ~/.aws/config and ~/.aws/credentials (or the files
 * AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name), read with inih,
 * and the profile's region and settings.
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
/* Shared config and credentials files.                                */

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
	val = irfw_trim(val);
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

/* Map an INI section to what it is and its name; NULL for sections that
 * are none of the SDKs' (a bare [name] in the config file). */
static const char *section_name(const struct cfgfile *f, const char *section, enum cfg_sect *sect, char *buf,
                                size_t buflen)
{
	static const struct {
		const char *word;
		enum cfg_sect sect;
	} kinds[] = {
	    {"profile", SECT_PROFILE}, {"sso-session", SECT_SSO_SESSION}, {"services", SECT_SERVICES}};
	char *s;

	snprintf(buf, buflen, "%s", section);
	s = irfw_trim(buf);
	*sect = SECT_PROFILE;
	if (!f->is_config)
		return *s ? s : NULL;
	if (strcmp(s, "default") == 0)
		return s;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].word);

		if (strncmp(s, kinds[i].word, n) == 0 && isspace((unsigned char)s[n])) {
			s = irfw_trim(s + n);
			*sect = kinds[i].sect;
			return *s ? s : NULL;
		}
	}
	return NULL;
}

static struct kv *cfg_find(const struct cfgfile *f, enum cfg_sect sect, const char *profile, const char *key)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].sect == sect && strcmp(f->v[i].profile, profile) == 0 &&
		    strcasecmp(f->v[i].key, key) == 0)
			return &f->v[i];
	return NULL;
}

/* Set key = value (value is taken over) in a section; the last value wins. */
static int cfg_put(struct cfgfile *f, enum cfg_sect sect, const char *prof, const char *name, char *v)
{
	struct kv *e = cfg_find(f, sect, prof, name);

	if (e) { /* inih merges repeated sections; the last value wins */
		creds_wipe_free(e->value);
		e->value = v;
		return 0;
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
	memset(e, 0, sizeof(*e));
	e->sect = sect;
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
	return 0;
oom:
	creds_wipe_free(v);
	return -1;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *c = user;
	struct cfgfile *f = c->file;
	char buf[256];
	enum cfg_sect sect;
	const char *prof = section_name(f, section, &sect, buf, sizeof(buf));
	bool indented = c->line && (c->line[0] == ' ' || c->line[0] == '\t');
	struct kv *parent;
	char *v;

	if (!prof)
		return 1;
	if (value[0] == LONG_MARK) {
		size_t i = strtoul(value + 1, NULL, 10);

		value = i < c->nlong ? c->longv[i] : "";
	}
	/* A sub-section, as botocore reads it: "sts =" then indented
	 * "endpoint_url = ..." lines, kept as "sts.endpoint_url". */
	parent = indented ? cfg_find(f, sect, prof, name) : NULL;
	if (parent && (parent->nested || !*parent->value)) {
		const char *eq = strchr(value, '=');
		char sub[128], key[256];
		size_t kl;

		parent->nested = true;
		if (!eq)
			return 1; /* not "key = value": nothing the SDKs read */
		kl = (size_t)(eq - value);
		snprintf(sub, sizeof(sub), "%.*s", (int)(kl < sizeof(sub) ? kl : sizeof(sub) - 1), value);
		snprintf(key, sizeof(key), "%s.%s", name, irfw_trim(sub));
		v = strdup(eq + 1);
		if (!v)
			return 0;
		{
			char *t = irfw_trim(v);

			memmove(v, t, strlen(t) + 1);
		}
		return cfg_put(f, sect, prof, key, v) == 0;
	}
	v = strdup(value);
	if (!v)
		return 0;
	return cfg_put(f, sect, prof, name, v) == 0;
}

static void cfgfile_free(struct cfgfile *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].profile);
		free(f->v[i].key);
		creds_wipe_free(f->v[i].value);
	}
	free(f->v);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

void creds_shared_free(struct shared *sh)
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
	const char *v = creds_env(env);
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
		irfw_set_err(err, errlen, "%s: %s", f->path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(cfg_reader, &c, cfg_handler, &c);
	if (c.oom || rc == -2) {
		irfw_set_err(err, errlen, "out of memory reading %s", f->path);
		goto out;
	}
	if (c.bad_line && (rc <= 0 || c.bad_line < rc)) {
		irfw_set_err(err, errlen, "%s:%d: line too long", f->path, c.bad_line);
		goto out;
	}
	if (rc != 0) {
		irfw_set_err(err, errlen, "%s:%d: cannot parse line", f->path, rc);
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
		creds_wipe_free(c.longv[i]);
	free(c.longv);
	return ret;
}

struct shared *creds_shared_load(char *err, size_t errlen)
{
	struct shared *sh = calloc(1, sizeof(*sh));

	if (!sh) {
		irfw_set_err(err, errlen, "out of memory");
		return NULL;
	}
	sh->config.is_config = true;
	sh->creds.path = shared_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	sh->config.path = shared_path("AWS_CONFIG_FILE", "config");
	if (cfgfile_load(&sh->creds, err, errlen) < 0 || cfgfile_load(&sh->config, err, errlen) < 0) {
		creds_shared_free(sh);
		return NULL;
	}
	return sh;
}

const char *creds_shared_get_in(const struct shared *sh, bool in_creds, const char *profile, const char *key)
{
	const struct kv *e = cfg_find(in_creds ? &sh->creds : &sh->config, SECT_PROFILE, profile, key);

	return e && *e->value ? e->value : NULL;
}

const char *creds_shared_get(const struct shared *sh, const char *profile, const char *key)
{
	const char *v = creds_shared_get_in(sh, true, profile, key);

	return v ? v : creds_shared_get_in(sh, false, profile, key);
}

const char *creds_shared_get_sect(const struct shared *sh, enum cfg_sect sect, const char *name,
                                  const char *key)
{
	const struct kv *e = cfg_find(&sh->config, sect, name, key);

	return e && *e->value ? e->value : NULL;
}

bool creds_shared_has_sect(const struct shared *sh, enum cfg_sect sect, const char *name)
{
	for (size_t i = 0; i < sh->config.n; i++)
		if (sh->config.v[i].sect == sect && strcmp(sh->config.v[i].profile, name) == 0)
			return true;
	return false;
}

bool creds_shared_has_profile(const struct shared *sh, const char *profile)
{
	const struct cfgfile *files[] = {&sh->creds, &sh->config};

	for (size_t f = 0; f < 2; f++)
		for (size_t i = 0; i < files[f]->n; i++)
			if (files[f]->v[i].sect == SECT_PROFILE &&
			    strcmp(files[f]->v[i].profile, profile) == 0)
				return true;
	return false;
}

const char *creds_effective_profile(const char *profile)
{
	if (profile && *profile)
		return profile;
	if (creds_env("AWS_PROFILE"))
		return creds_env("AWS_PROFILE");
	return "default";
}

char *irfw_profile_get(const char *profile, const char *key)
{
	char err[256];
	struct shared *sh = creds_shared_load(err, sizeof(err));
	const char *v;
	char *r = NULL;

	if (!sh || !key)
		goto out;
	v = creds_shared_get(sh, creds_effective_profile(profile), key);
	if (v)
		r = strdup(v);
out:
	creds_shared_free(sh);
	return r;
}

char *irfw_resolve_region(const char *explicit_region, const char *profile)
{
	if (explicit_region && *explicit_region)
		return strdup(explicit_region);
	if (creds_env("AWS_REGION"))
		return strdup(creds_env("AWS_REGION"));
	if (creds_env("AWS_DEFAULT_REGION"))
		return strdup(creds_env("AWS_DEFAULT_REGION"));
	return irfw_profile_get(profile, "region");
}

/* ------------------------------------------------------------------ */
/* Configured endpoints.                                               */

struct svc_url {
	char *id; /* lower case: "ec2", "auto_scaling" */
	char *url;
};

struct irfw_endpoints {
	bool ignore;
	char *profile_url;
	struct svc_url *svc;
	size_t n;
};

/* botocore's ensure_boolean: only "true", in any case, is true. */
static bool sdk_true(const char *v)
{
	return v && strcasecmp(v, "true") == 0;
}

void irfw_endpoints_free(struct irfw_endpoints *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++) {
		free(e->svc[i].id);
		free(e->svc[i].url);
	}
	free(e->svc);
	free(e->profile_url);
	free(e);
}

struct irfw_endpoints *irfw_endpoints_load(const char *profile, char *err, size_t errlen)
{
	struct irfw_endpoints *e = calloc(1, sizeof(*e));
	struct shared *sh = NULL;
	const char *prof = creds_effective_profile(profile), *services, *v;
	static const char suffix[] = ".endpoint_url";

	if (!e)
		goto oom;
	sh = creds_shared_load(err, errlen);
	if (!sh)
		goto fail;
	v = creds_env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	e->ignore = sdk_true(v ? v : creds_shared_get(sh, prof, "ignore_configured_endpoint_urls"));
	v = creds_shared_get(sh, prof, "endpoint_url");
	if (v && !(e->profile_url = strdup(v)))
		goto oom;
	services = creds_shared_get(sh, prof, "services");
	if (services) {
		const struct cfgfile *f = &sh->config;

		if (!creds_shared_has_sect(sh, SECT_SERVICES, services)) {
			irfw_set_err(err, errlen,
			             "profile \"%s\": services = %s, but %s has no [services %s] section",
			             prof, services, f->path ? f->path : "the config file", services);
			goto fail;
		}
		for (size_t i = 0; i < f->n; i++) {
			const struct kv *k = &f->v[i];
			size_t kl = strlen(k->key);
			struct svc_url *nv;

			if (k->sect != SECT_SERVICES || strcmp(k->profile, services) != 0 || !*k->value ||
			    kl <= sizeof(suffix) - 1 ||
			    strcmp(k->key + kl - (sizeof(suffix) - 1), suffix) != 0)
				continue;
			nv = realloc(e->svc, (e->n + 1) * sizeof(*nv));
			if (!nv)
				goto oom;
			e->svc = nv;
			nv[e->n].id = strndup(k->key, kl - (sizeof(suffix) - 1));
			nv[e->n].url = strdup(k->value);
			if (!nv[e->n].id || !nv[e->n].url) {
				free(nv[e->n].id);
				free(nv[e->n].url);
				goto oom;
			}
			e->n++;
		}
	}
	creds_shared_free(sh);
	return e;
oom:
	irfw_set_err(err, errlen, "out of memory");
fail:
	creds_shared_free(sh);
	irfw_endpoints_free(e);
	return NULL;
}

bool irfw_endpoints_ignored(const struct irfw_endpoints *e)
{
	return e && e->ignore;
}

char *irfw_endpoints_get(const struct irfw_endpoints *e, const char *id, const char *site)
{
	bool ignore = e ? e->ignore : sdk_true(creds_env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"));
	char var[96], low[64];
	const char *v = NULL;
	size_t i;

	if (!ignore) {
		snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", id);
		v = creds_env(var);
		if (!v)
			v = creds_env("AWS_ENDPOINT_URL");
	}
	if (!v && site && *site)
		v = site;
	if (!v && !ignore && e) {
		for (i = 0; id[i] && i + 1 < sizeof(low); i++)
			low[i] = (char)tolower((unsigned char)id[i]);
		low[i] = '\0';
		for (i = 0; i < e->n && !v; i++)
			if (strcmp(e->svc[i].id, low) == 0)
				v = e->svc[i].url;
		if (!v)
			v = e->profile_url;
	}
	return v ? strdup(v) : NULL;
}

/* ------------------------------------------------------------------ */
/* The client's settings: CA bundle, attempts, retry mode.             */

void irfw_aws_settings_free(struct irfw_aws_settings *s)
{
	if (!s)
		return;
	free(s->ca_bundle);
	memset(s, 0, sizeof(*s));
}

static int positive(const char *what, const char *v, int *out, char *err, size_t errlen)
{
	long n;

	if (!irfw_parse_long(v, &n) || n < 1 || n > 100) {
		irfw_set_err(err, errlen, "%s = \"%.40s\": expected a number of attempts from 1 to 100", what,
		             v);
		return -1;
	}
	*out = (int)n;
	return 0;
}

int irfw_aws_settings_resolve(const char *profile, const char *site_ca_file, int site_max_attempts,
                              struct irfw_aws_settings *s, char *err, size_t errlen)
{
	struct shared *sh;
	const char *prof = creds_effective_profile(profile), *v;
	char what[96];
	int ret = -1;

	memset(s, 0, sizeof(*s));
	sh = creds_shared_load(err, errlen);
	if (!sh)
		return -1;

	/* CA bundle. */
	if (site_ca_file && *site_ca_file) {
		v = site_ca_file;
		snprintf(s->ca_from, sizeof(s->ca_from), "[irfw] ca_file");
	} else if ((v = creds_env("AWS_CA_BUNDLE"))) {
		snprintf(s->ca_from, sizeof(s->ca_from), "AWS_CA_BUNDLE");
	} else if ((v = creds_shared_get(sh, prof, "ca_bundle"))) {
		snprintf(s->ca_from, sizeof(s->ca_from), "ca_bundle of profile %.40s", prof);
	} else {
		snprintf(s->ca_from, sizeof(s->ca_from), "the system's CA store");
	}
	if (v && !(s->ca_bundle = strdup(v))) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}

	/* Attempts. */
	if (site_max_attempts > 0) {
		s->max_attempts = site_max_attempts;
		snprintf(s->attempts_from, sizeof(s->attempts_from), "[irfw] max_attempts");
	} else if ((v = creds_env("AWS_MAX_ATTEMPTS"))) {
		if (positive("AWS_MAX_ATTEMPTS", v, &s->max_attempts, err, errlen) < 0)
			goto out;
		snprintf(s->attempts_from, sizeof(s->attempts_from), "AWS_MAX_ATTEMPTS");
	} else if ((v = creds_shared_get(sh, prof, "max_attempts"))) {
		snprintf(what, sizeof(what), "max_attempts of profile \"%.40s\"", prof);
		if (positive(what, v, &s->max_attempts, err, errlen) < 0)
			goto out;
		snprintf(s->attempts_from, sizeof(s->attempts_from), "max_attempts of profile %.40s", prof);
	} else {
		s->max_attempts = 5;
		snprintf(s->attempts_from, sizeof(s->attempts_from), "default");
	}

	/* Retry mode. */
	if ((v = creds_env("AWS_RETRY_MODE"))) {
		snprintf(what, sizeof(what), "AWS_RETRY_MODE");
		snprintf(s->mode_from, sizeof(s->mode_from), "AWS_RETRY_MODE");
	} else if ((v = creds_shared_get(sh, prof, "retry_mode"))) {
		snprintf(what, sizeof(what), "retry_mode of profile \"%.40s\"", prof);
		snprintf(s->mode_from, sizeof(s->mode_from), "retry_mode of profile %.40s", prof);
	} else {
		v = "standard";
		snprintf(s->mode_from, sizeof(s->mode_from), "default");
	}
	if (strcmp(v, "legacy") != 0 && strcmp(v, "standard") != 0 && strcmp(v, "adaptive") != 0) {
		irfw_set_err(err, errlen, "%s = \"%.40s\": expected legacy, standard or adaptive", what, v);
		goto out;
	}
	snprintf(s->retry_mode, sizeof(s->retry_mode), "%s", v);
	ret = 0;
out:
	if (ret != 0)
		irfw_aws_settings_free(s);
	creds_shared_free(sh);
	return ret;
}
