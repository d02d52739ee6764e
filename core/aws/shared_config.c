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

/* Map an INI section to a profile name; NULL for sections that are not
 * profiles (sso-session, services, bare names in the config file). */
static const char *section_profile(const struct cfgfile *f, const char *section, char *buf, size_t buflen)
{
	char *s;

	snprintf(buf, buflen, "%s", section);
	s = irfw_trim(buf);
	if (!f->is_config)
		return *s ? s : NULL;
	if (strcmp(s, "default") == 0)
		return s;
	if (strncmp(s, "profile", 7) == 0 && isspace((unsigned char)s[7])) {
		s = irfw_trim(s + 7);
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
		creds_wipe_free(e->value);
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
	creds_wipe_free(v);
	return 0;
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

const char *creds_shared_get(const struct shared *sh, const char *profile, const char *key)
{
	const struct kv *e = cfg_find(&sh->creds, profile, key);

	if (!e)
		e = cfg_find(&sh->config, profile, key);
	return e && *e->value ? e->value : NULL;
}

bool creds_shared_has_profile(const struct shared *sh, const char *profile)
{
	const struct cfgfile *files[] = {&sh->creds, &sh->config};

	for (size_t f = 0; f < 2; f++)
		for (size_t i = 0; i < files[f]->n; i++)
			if (strcmp(files[f]->v[i].profile, profile) == 0)
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
