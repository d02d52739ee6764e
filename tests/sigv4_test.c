/*
 * sigv4_test.c - the SigV4 signer against the official vectors.
 *
 * - tests/data/sigv4/v4/: every aws-c-auth case, in header mode and in
 *   query (presign) mode, one named cmocka test each;
 * - tests/data/sigv4/classic/: every original-suite case (.creq/.sts/.authz);
 * - the S3 API Reference examples from s3-examples.md, written out below;
 * - encoding, normalisation and error edge cases the suites do not cover.
 *
 * The data directory comes from IRFW_TEST_DATADIR (default tests/data).
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>

#include "aws/sigv4.h"

#define MAX_CASES 64
#define MAX_HDRS  32

/* ---------------------------------------------------------------- helpers */

static const char *datadir(void)
{
	const char *d = getenv("IRFW_TEST_DATADIR");

	return d && *d ? d : "tests/data";
}

/* Whole file, NUL-terminated; NULL when it cannot be read. */
static char *slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			assert_non_null(nb);
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

static char *slurp_case(const char *dir, const char *file)
{
	char path[2048];
	char *s;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	s = slurp(path, NULL);
	if (!s)
		fail_msg("cannot read %s", path);
	return s;
}

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so the test needs neither timegm nor TZ games. */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static time_t iso8601_utc(const char *s)
{
	int y, mo, d, h, mi, se;

	assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se), 6);
	return (time_t)(days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se);
}

/* An HTTP/1.1 message as the suites write it: request line, headers (with
 * duplicates and obs-fold continuation lines), blank line, body. */
struct msg {
	char *method, *target;
	struct irfw_kv h[MAX_HDRS];
	size_t nh;
	char *body;
	size_t body_len;
};

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	assert_non_null(d);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static void parse_msg(const char *text, struct msg *m)
{
	const char *p = text, *eol, *sp1, *sp2;

	memset(m, 0, sizeof(*m));
	eol = strchr(p, '\n');
	if (!eol)
		eol = p + strlen(p);
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	assert_non_null(sp1);
	for (sp2 = eol; sp2 > sp1 && *sp2 != ' '; sp2--)
		;
	assert_true(sp2 > sp1); /* the target may itself contain spaces */
	m->method = dupn(p, (size_t)(sp1 - p));
	m->target = dupn(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	p = *eol ? eol + 1 : eol;

	while (*p) {
		size_t len;
		eol = strchr(p, '\n');
		len = eol ? (size_t)(eol - p) : strlen(p);
		if (len && p[len - 1] == '\r')
			len--;
		if (len == 0) {
			if (eol) {
				m->body = dupn(eol + 1, strlen(eol + 1));
				m->body_len = strlen(eol + 1);
			}
			break;
		}
		if (*p == ' ' || *p == '\t') {
			/* obs-fold: the signer collapses the whitespace. */
			assert_true(m->nh > 0);
			char *prev = (char *)m->h[m->nh - 1].value;
			size_t pl = strlen(prev);
			char *v = realloc(prev, pl + 1 + len + 1);
			assert_non_null(v);
			v[pl] = ' ';
			memcpy(v + pl + 1, p, len);
			v[pl + 1 + len] = '\0';
			m->h[m->nh - 1].value = v;
		} else {
			const char *colon = memchr(p, ':', len);
			assert_non_null(colon);
			assert_true(m->nh < MAX_HDRS);
			m->h[m->nh].name = dupn(p, (size_t)(colon - p));
			m->h[m->nh].value = dupn(colon + 1, len - (size_t)(colon - p) - 1);
			m->nh++;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
}

static void msg_free(struct msg *m)
{
	free(m->method);
	free(m->target);
	for (size_t i = 0; i < m->nh; i++) {
		free((char *)m->h[i].name);
		free((char *)m->h[i].value);
	}
	free(m->body);
	memset(m, 0, sizeof(*m));
}

/* Removes header name from m and returns its value (caller frees), or NULL. */
static char *msg_take_header(struct msg *m, const char *name)
{
	for (size_t i = 0; i < m->nh; i++) {
		if (!strcasecmp(m->h[i].name, name)) {
			char *v = (char *)m->h[i].value;
			free((char *)m->h[i].name);
			memmove(&m->h[i], &m->h[i + 1], (m->nh - i - 1) * sizeof(m->h[0]));
			m->nh--;
			return v;
		}
	}
	return NULL;
}

static bool msg_has_header(const struct msg *m, const char *name, const char *value)
{
	for (size_t i = 0; i < m->nh; i++)
		if (!strcasecmp(m->h[i].name, name) && !strcmp(m->h[i].value, value))
			return true;
	return false;
}

/* Splits a request target into a malloc'd path and query (NULL if none). */
static void split_target(const char *target, char **path, char **query)
{
	const char *q = strchr(target, '?');

	*path = dupn(target, q ? (size_t)(q - target) : strlen(target));
	*query = q ? dupn(q + 1, strlen(q + 1)) : NULL;
}

/* Line n (0-based) of s, malloc'd. */
static char *line_of(const char *s, int n)
{
	for (; n > 0; n--) {
		s = strchr(s, '\n');
		assert_non_null(s);
		s++;
	}
	const char *e = strchr(s, '\n');
	return dupn(s, e ? (size_t)(e - s) : strlen(s));
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Query strings equal as multisets of parameters: wire order is free. */
static void assert_same_params(const char *got, const char *want)
{
	char *a = strdup(got), *b = strdup(want);
	char *pa[64], *pb[64], *save;
	size_t na = 0, nb = 0;

	assert_non_null(a);
	assert_non_null(b);
	for (char *t = strtok_r(a, "&", &save); t; t = strtok_r(NULL, "&", &save)) {
		assert_true(na < 64);
		pa[na++] = t;
	}
	for (char *t = strtok_r(b, "&", &save); t; t = strtok_r(NULL, "&", &save)) {
		assert_true(nb < 64);
		pb[nb++] = t;
	}
	qsort(pa, na, sizeof(*pa), cmp_strp);
	qsort(pb, nb, sizeof(*pb), cmp_strp);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++)
		assert_string_equal(pa[i], pb[i]);
	free(a);
	free(b);
}

static const char *added(const struct irfw_sigv4_result *r, const char *name)
{
	for (size_t i = 0; i < r->n_add; i++)
		if (!strcasecmp(r->add[i].name, name))
			return r->add[i].value;
	return NULL;
}

/* ------------------------------------------------------ v4 (aws-c-auth) */

struct suite_case {
	char name[512]; /* shown by cmocka */
	char dir[1400]; /* case folder */
	char base[256]; /* folder's last component */
	bool query;     /* v4: presign mode */
};

static struct suite_case v4_cases[2 * MAX_CASES], classic_cases[MAX_CASES];
static size_t n_v4_dirs, n_classic;

static void v4_case(void **state)
{
	const struct suite_case *c = *state;
	const char *mode = c->query ? "query" : "header";
	char fname[64], *ctx_text, *req_text, *want_creq, *want_sts, *want_sig, *sreq_text;
	char *path, *query, *spath, *squery;
	cJSON *ctx, *creds;
	struct msg req, sreq;
	struct irfw_sigv4_params p = {0};
	struct irfw_sigv4_result r;
	char err[256] = "";
	int rc;

	ctx_text = slurp_case(c->dir, "context.json");
	req_text = slurp_case(c->dir, "request.txt");
	snprintf(fname, sizeof(fname), "%s-canonical-request.txt", mode);
	want_creq = slurp_case(c->dir, fname);
	snprintf(fname, sizeof(fname), "%s-string-to-sign.txt", mode);
	want_sts = slurp_case(c->dir, fname);
	snprintf(fname, sizeof(fname), "%s-signature.txt", mode);
	want_sig = slurp_case(c->dir, fname);
	chomp(want_sig);
	snprintf(fname, sizeof(fname), "%s-signed-request.txt", mode);
	sreq_text = slurp_case(c->dir, fname);

	ctx = cJSON_Parse(ctx_text);
	assert_non_null(ctx);
	creds = cJSON_GetObjectItemCaseSensitive(ctx, "credentials");
	assert_non_null(creds);
	p.access_key_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(creds, "access_key_id"));
	p.secret_access_key =
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(creds, "secret_access_key"));
	p.session_token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(creds, "token"));
	p.region = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "region"));
	p.service = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "service"));
	p.when = iso8601_utc(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "timestamp")));
	/* aws-c-auth: use_double_uri_encode=true on literal paths (one pass
	 * from raw) and should_normalize_uri_path=normalize.  Unnormalised
	 * with one pass is exactly S3 mode. */
	p.s3_mode = !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctx, "normalize"));
	p.path_encode_once = true;
	p.sign_body = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctx, "sign_body"));
	p.omit_session_token = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctx, "omit_session_token"));
	if (c->query) {
		cJSON *exp = cJSON_GetObjectItemCaseSensitive(ctx, "expiration_in_seconds");
		assert_true(cJSON_IsNumber(exp));
		p.presign_expires = (long)exp->valuedouble;
	}
	assert_non_null(p.access_key_id);
	assert_non_null(p.region);

	parse_msg(req_text, &req);
	split_target(req.target, &path, &query);
	struct irfw_sigv4_request rq = {
	    .method = req.method,
	    .path = path,
	    .query = query,
	    .headers = req.h,
	    .n_headers = req.nh,
	    .body = req.body,
	    .body_len = req.body_len,
	};

	rc = irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s: sign failed: %s", c->name, err);
	assert_string_equal(r.canonical_request, want_creq);
	assert_string_equal(r.string_to_sign, want_sts);
	assert_string_equal(r.signature, want_sig);

	/* The signed request is the original plus what the signer added. */
	parse_msg(sreq_text, &sreq);
	split_target(sreq.target, &spath, &squery);
	assert_string_equal(sreq.method, req.method);
	assert_string_equal(spath, path);
	for (size_t i = 0; i < req.nh; i++)
		assert_true(msg_has_header(&sreq, req.h[i].name, req.h[i].value));
	if (c->query) {
		assert_int_equal(r.n_add, 0);
		assert_non_null(r.query);
		assert_non_null(squery);
		assert_string_equal(r.query, squery);
		assert_int_equal(sreq.nh, req.nh);
	} else {
		assert_null(r.query);
		assert_string_equal(squery ? squery : "", query ? query : "");
		assert_int_equal(sreq.nh, req.nh + r.n_add);
		for (size_t i = 0; i < r.n_add; i++) {
			if (!msg_has_header(&sreq, r.add[i].name, r.add[i].value))
				fail_msg("%s: added header %s differs from the signed request", c->name,
				         r.add[i].name);
		}
		assert_string_equal(r.add[r.n_add - 1].name, "Authorization");
	}
	assert_int_equal(sreq.body_len, req.body_len);

	irfw_sigv4_result_free(&r);
	msg_free(&sreq);
	msg_free(&req);
	free(spath);
	free(squery);
	free(path);
	free(query);
	cJSON_Delete(ctx);
	free(ctx_text);
	free(req_text);
	free(want_creq);
	free(want_sts);
	free(want_sig);
	free(sreq_text);
}

/* --------------------------------------------------- classic (AWS suite) */

static char *classic_readme_token(void)
{
	char path[1024], *text, *tok;
	const char *key = "X-Amz-Security-Token:";

	snprintf(path, sizeof(path), "%s/sigv4/classic/post-sts-token/readme.txt", datadir());
	text = slurp(path, NULL);
	assert_non_null(text);
	/* The token is the last thing in the file, after the last "...Token:". */
	char *at = NULL;
	for (char *s = text; (s = strstr(s, key)) != NULL; s += strlen(key))
		at = s;
	assert_non_null(at);
	at += strlen(key);
	at += strspn(at, " \r\n");
	tok = strdup(at);
	assert_non_null(tok);
	chomp(tok);
	free(text);
	return tok;
}

static void classic_case(void **state)
{
	const struct suite_case *c = *state;
	char fname[300], *req_text, *want_creq, *want_sts, *want_authz;
	char *path, *query, *date, *token, *readme_token = NULL;
	struct msg req;
	struct irfw_sigv4_params p = {
	    .access_key_id = "AKIDEXAMPLE",
	    .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	    .region = "us-east-1",
	    .service = "service",
	    .when = iso8601_utc("2015-08-30T12:36:00Z"),
	    .path_encode_once = true, /* literal paths, see v4_case */
	};
	struct irfw_sigv4_result r;
	char err[256] = "";

	snprintf(fname, sizeof(fname), "%s.req", c->base);
	req_text = slurp_case(c->dir, fname);
	snprintf(fname, sizeof(fname), "%s.creq", c->base);
	want_creq = slurp_case(c->dir, fname);
	snprintf(fname, sizeof(fname), "%s.sts", c->base);
	want_sts = slurp_case(c->dir, fname);
	snprintf(fname, sizeof(fname), "%s.authz", c->base);
	want_authz = slurp_case(c->dir, fname);
	chomp(want_authz);

	parse_msg(req_text, &req);
	/* The classic .req already carries what our signer adds itself. */
	date = msg_take_header(&req, "X-Amz-Date");
	assert_non_null(date);
	assert_string_equal(date, "20150830T123600Z");
	token = msg_take_header(&req, "X-Amz-Security-Token");
	if (token) {
		p.session_token = token;
	} else if (!strcmp(c->base, "post-sts-header-after")) {
		readme_token = classic_readme_token();
		p.session_token = readme_token;
		p.omit_session_token = true;
	}
	split_target(req.target, &path, &query);
	struct irfw_sigv4_request rq = {
	    .method = req.method,
	    .path = path,
	    .query = query,
	    .headers = req.h,
	    .n_headers = req.nh,
	    .body = req.body,
	    .body_len = req.body_len,
	};
	if (irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)) != 0)
		fail_msg("%s: sign failed: %s", c->name, err);
	assert_string_equal(r.canonical_request, want_creq);
	assert_string_equal(r.string_to_sign, want_sts);
	assert_string_equal(added(&r, "Authorization"), want_authz);
	assert_string_equal(added(&r, "X-Amz-Date"), date);
	if (p.session_token)
		assert_string_equal(added(&r, "X-Amz-Security-Token"), p.session_token);

	irfw_sigv4_result_free(&r);
	msg_free(&req);
	free(path);
	free(query);
	free(date);
	free(token);
	free(readme_token);
	free(req_text);
	free(want_creq);
	free(want_sts);
	free(want_authz);
}

/* ----------------------------------------------------- case discovery */

static int cmp_case(const void *a, const void *b)
{
	return strcmp(((const struct suite_case *)a)->dir, ((const struct suite_case *)b)->dir);
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void find_v4_cases(void)
{
	char root[900], ctx[1500];
	static struct suite_case found[MAX_CASES];
	size_t n = 0;
	DIR *d;
	struct dirent *e;

	snprintf(root, sizeof(root), "%s/sigv4/v4", datadir());
	d = opendir(root);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL && n < MAX_CASES) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(found[n].dir, sizeof(found[n].dir), "%s/%s", root, e->d_name);
		snprintf(ctx, sizeof(ctx), "%s/context.json", found[n].dir);
		if (access(ctx, R_OK) != 0)
			continue;
		snprintf(found[n].base, sizeof(found[n].base), "%s", e->d_name);
		n++;
	}
	closedir(d);
	qsort(found, n, sizeof(*found), cmp_case);
	for (size_t i = 0; i < n; i++) {
		for (int q = 0; q < 2; q++) {
			struct suite_case *c = &v4_cases[2 * i + (size_t)q];
			*c = found[i];
			c->query = q;
			snprintf(c->name, sizeof(c->name), "v4/%s [%s]", found[i].base,
			         q ? "query" : "header");
		}
	}
	n_v4_dirs = n;
}

/* A classic case is a folder holding <folder>.req; they nest one level. */
static void find_classic_in(const char *dir, const char *rel, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL && n_classic < MAX_CASES) {
		char sub[1200], req[1500], subrel[300];
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (!is_dir(sub))
			continue;
		snprintf(subrel, sizeof(subrel), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		snprintf(req, sizeof(req), "%s/%s.req", sub, e->d_name);
		if (access(req, R_OK) == 0) {
			struct suite_case *c = &classic_cases[n_classic++];
			snprintf(c->dir, sizeof(c->dir), "%s", sub);
			snprintf(c->base, sizeof(c->base), "%s", e->d_name);
			snprintf(c->name, sizeof(c->name), "classic/%s", subrel);
		} else if (depth < 2) {
			find_classic_in(sub, subrel, depth + 1);
		}
	}
	closedir(d);
}

static void find_classic_cases(void)
{
	char root[900];

	snprintf(root, sizeof(root), "%s/sigv4/classic", datadir());
	find_classic_in(root, "", 0);
	qsort(classic_cases, n_classic, sizeof(*classic_cases), cmp_case);
}

/* The README promises 38 + 30 cases: a missing folder must fail, not shrink
 * the run. */
static void test_suites_complete(void **state)
{
	(void)state;
	assert_int_equal(n_v4_dirs, 38);
	assert_int_equal(n_classic, 30);
}

/* --------------------------------------------------- S3 API examples */

#define S3_EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_example {
	const char *method, *path, *query;
	struct irfw_kv h[6];
	size_t nh;
	const char *body;
	const char *payload_hash;
	long expires;
	const char *creq, *sts, *sig;
	const char *authz; /* as printed by AWS, without spaces after commas */
	const char *presigned_query;
};

static void run_s3(const struct s3_example *x)
{
	struct irfw_sigv4_params p = {
	    .access_key_id = "AKIAIOSFODNN7EXAMPLE",
	    .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	    .region = "us-east-1",
	    .service = "s3",
	    .when = iso8601_utc("2013-05-24T00:00:00Z"),
	    .s3_mode = true,
	    .sign_body = true,
	    .presign_expires = x->expires,
	};
	struct irfw_sigv4_request rq = {
	    .method = x->method,
	    .path = x->path,
	    .query = x->query,
	    .headers = x->h,
	    .n_headers = x->nh,
	    .body = x->body,
	    .body_len = x->body ? strlen(x->body) : 0,
	    .payload_hash = x->payload_hash,
	};
	struct irfw_sigv4_result r;
	char err[256] = "";

	if (irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)) != 0)
		fail_msg("sign failed: %s", err);
	assert_string_equal(r.canonical_request, x->creq);
	assert_string_equal(r.string_to_sign, x->sts);
	assert_string_equal(r.signature, x->sig);
	if (x->authz) {
		/* Ours has ", " between the parts, as AWS SDKs send it. */
		char authz[512];
		size_t j = 0;
		const char *a = added(&r, "Authorization");
		assert_non_null(a);
		for (size_t i = 0; a[i] && j + 1 < sizeof(authz); i++)
			if (!(a[i] == ' ' && i > 0 && a[i - 1] == ','))
				authz[j++] = a[i];
		authz[j] = '\0';
		assert_string_equal(authz, x->authz);
		assert_string_equal(added(&r, "X-Amz-Date"), "20130524T000000Z");
		assert_non_null(added(&r, "x-amz-content-sha256"));
	}
	if (x->presigned_query) {
		assert_int_equal(r.n_add, 0);
		assert_non_null(r.query);
		assert_same_params(r.query, x->presigned_query);
	}
	irfw_sigv4_result_free(&r);
}

static void test_s3_get_object_range(void **state)
{
	(void)state;
	const struct s3_example x = {
	    .method = "GET",
	    .path = "/test.txt",
	    .h = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}},
	    .nh = 2,
	    .creq = "GET\n"
	            "/test.txt\n"
	            "\n"
	            "host:examplebucket.s3.amazonaws.com\n"
	            "range:bytes=0-9\n"
	            "x-amz-content-sha256:" S3_EMPTY_SHA "\n"
	            "x-amz-date:20130524T000000Z\n"
	            "\n"
	            "host;range;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA,
	    .sts = "AWS4-HMAC-SHA256\n"
	           "20130524T000000Z\n"
	           "20130524/us-east-1/s3/aws4_request\n"
	           "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
	    .sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
	    .authz = "AWS4-HMAC-SHA256 "
	             "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	             "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
	             "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
	};
	run_s3(&x);
}

static void test_s3_put_object(void **state)
{
	(void)state;
	const struct s3_example x = {
	    .method = "PUT",
	    .path = "/test$file.text",
	    .h = {{"Host", "examplebucket.s3.amazonaws.com"},
	          {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	          {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
	    .nh = 3,
	    .body = "Welcome to Amazon S3.",
	    .creq = "PUT\n"
	            "/test%24file.text\n"
	            "\n"
	            "date:Fri, 24 May 2013 00:00:00 GMT\n"
	            "host:examplebucket.s3.amazonaws.com\n"
	            "x-amz-content-sha256:"
	            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
	            "x-amz-date:20130524T000000Z\n"
	            "x-amz-storage-class:REDUCED_REDUNDANCY\n"
	            "\n"
	            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
	            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	    .sts = "AWS4-HMAC-SHA256\n"
	           "20130524T000000Z\n"
	           "20130524/us-east-1/s3/aws4_request\n"
	           "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
	    .sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
	    .authz = "AWS4-HMAC-SHA256 "
	             "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	             "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
	             "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
	};
	run_s3(&x);
}

static void test_s3_get_lifecycle(void **state)
{
	(void)state;
	const struct s3_example x = {
	    .method = "GET",
	    .path = "/",
	    .query = "lifecycle",
	    .h = {{"Host", "examplebucket.s3.amazonaws.com"}},
	    .nh = 1,
	    .creq = "GET\n"
	            "/\n"
	            "lifecycle=\n"
	            "host:examplebucket.s3.amazonaws.com\n"
	            "x-amz-content-sha256:" S3_EMPTY_SHA "\n"
	            "x-amz-date:20130524T000000Z\n"
	            "\n"
	            "host;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA,
	    .sts = "AWS4-HMAC-SHA256\n"
	           "20130524T000000Z\n"
	           "20130524/us-east-1/s3/aws4_request\n"
	           "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
	    .sig = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
	    .authz = "AWS4-HMAC-SHA256 "
	             "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	             "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	             "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
	};
	run_s3(&x);
}

static void test_s3_list_objects(void **state)
{
	(void)state;
	const struct s3_example x = {
	    .method = "GET",
	    .path = "/",
	    .query = "max-keys=2&prefix=J",
	    .h = {{"Host", "examplebucket.s3.amazonaws.com"}},
	    .nh = 1,
	    .creq = "GET\n"
	            "/\n"
	            "max-keys=2&prefix=J\n"
	            "host:examplebucket.s3.amazonaws.com\n"
	            "x-amz-content-sha256:" S3_EMPTY_SHA "\n"
	            "x-amz-date:20130524T000000Z\n"
	            "\n"
	            "host;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA,
	    .sts = "AWS4-HMAC-SHA256\n"
	           "20130524T000000Z\n"
	           "20130524/us-east-1/s3/aws4_request\n"
	           "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
	    .sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
	    .authz = "AWS4-HMAC-SHA256 "
	             "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	             "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	             "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
	};
	run_s3(&x);
}

static void test_s3_presigned_url(void **state)
{
	(void)state;
	const struct s3_example x = {
	    .method = "GET",
	    .path = "/test.txt",
	    .h = {{"Host", "examplebucket.s3.amazonaws.com"}},
	    .nh = 1,
	    .payload_hash = "UNSIGNED-PAYLOAD",
	    .expires = 86400,
	    .creq = "GET\n"
	            "/test.txt\n"
	            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
	            "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
	            "X-Amz-SignedHeaders=host\n"
	            "host:examplebucket.s3.amazonaws.com\n"
	            "\n"
	            "host\n"
	            "UNSIGNED-PAYLOAD",
	    .sts = "AWS4-HMAC-SHA256\n"
	           "20130524T000000Z\n"
	           "20130524/us-east-1/s3/aws4_request\n"
	           "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
	    .sig = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
	    /* From the published URL (which orders Expires before SignedHeaders). */
	    .presigned_query =
	        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
	        "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
	        "X-Amz-SignedHeaders=host&X-Amz-Signature="
	        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
	};
	run_s3(&x);
}

/* Only the seed request of the chunked upload: the per-chunk signature chain
 * is not part of this signer's API. */
static void test_s3_chunked_upload_seed(void **state)
{
	(void)state;
	const struct s3_example x = {
	    .method = "PUT",
	    .path = "/examplebucket/chunkObject.txt",
	    .h = {{"Host", "s3.amazonaws.com"},
	          {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	          {"Content-Encoding", "aws-chunked"},
	          {"Content-Length", "66824"},
	          {"x-amz-decoded-content-length", "66560"}},
	    .nh = 5,
	    .payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
	    .creq = "PUT\n"
	            "/examplebucket/chunkObject.txt\n"
	            "\n"
	            "content-encoding:aws-chunked\n"
	            "content-length:66824\n"
	            "host:s3.amazonaws.com\n"
	            "x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD\n"
	            "x-amz-date:20130524T000000Z\n"
	            "x-amz-decoded-content-length:66560\n"
	            "x-amz-storage-class:REDUCED_REDUNDANCY\n"
	            "\n"
	            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-"
	            "decoded-content-length;x-amz-storage-class\n"
	            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
	    .sts = "AWS4-HMAC-SHA256\n"
	           "20130524T000000Z\n"
	           "20130524/us-east-1/s3/aws4_request\n"
	           "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455",
	    .sig = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
	};
	run_s3(&x);
}

/* ------------------------------------------------------------ edge cases */

static const struct irfw_kv host_only[] = {{"Host", "example.amazonaws.com"}};

static struct irfw_sigv4_params edge_params(void)
{
	struct irfw_sigv4_params p = {
	    .access_key_id = "AKIDEXAMPLE",
	    .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	    .region = "us-east-1",
	    .service = "service",
	    .when = iso8601_utc("2015-08-30T12:36:00Z"),
	};
	return p;
}

/* Signs GET path?query and returns line n of the canonical request. */
static char *creq_line_for(const char *path, const char *query, const struct irfw_sigv4_params *p, int n)
{
	struct irfw_sigv4_request rq = {
	    .method = "GET", .path = path, .query = query, .headers = host_only, .n_headers = 1};
	struct irfw_sigv4_result r;
	char err[256] = "", *line;

	if (irfw_sigv4_sign(&rq, p, &r, err, sizeof(err)) != 0)
		fail_msg("sign failed: %s", err);
	line = line_of(r.canonical_request, n);
	irfw_sigv4_result_free(&r);
	return line;
}

static void test_uri_encode(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len;
		bool slash;
		const char *want;
	} t[] = {
	    {"", 0, false, ""},
	    {"AZaz09-._~", 10, false, "AZaz09-._~"},
	    {"a b+c", 5, false, "a%20b%2Bc"},
	    {"/a b/", 5, false, "%2Fa%20b%2F"},
	    {"/a b/", 5, true, "/a%20b/"},
	    {"k=v&w", 5, false, "k%3Dv%26w"},
	    {"%", 1, false, "%25"},
	    {"\xe1\x88\xb4", 3, false, "%E1%88%B4"},
	    {"a\0b", 3, false, "a%00b"},
	    {"*!'()$", 6, true, "%2A%21%27%28%29%24"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		char *got = irfw_uri_encode(t[i].in, t[i].len, t[i].slash);
		assert_non_null(got);
		assert_string_equal(got, t[i].want);
		free(got);
	}
}

static void test_sha256_hex(void **state)
{
	char out[65];

	(void)state;
	irfw_sha256_hex("", 0, out);
	assert_string_equal(out, S3_EMPTY_SHA);
	irfw_sha256_hex("abc", 3, out);
	assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_canonical_query_encoding(void **state)
{
	(void)state;
	static const struct {
		const char *query, *want;
	} t[] = {
	    {"acl", "acl="},
	    {"acl=", "acl="},
	    {"k=a+b", "k=a%2Bb"},
	    {"k=a%2Bb", "k=a%2Bb"},
	    {"k=a b", "k=a%20b"},
	    {"k=a%20b", "k=a%20b"},
	    {"k=a/b", "k=a%2Fb"},
	    {"k=a%2fb", "k=a%2Fb"},
	    {"k=a=b", "k=a%3Db"},
	    {"k=a%3Db", "k=a%3Db"},
	    {"k=~a", "k=~a"},
	    {"k=%7Ea", "k=~a"},
	    {"k=100%", "k=100%25"},
	    {"k=%zz", "k=%25zz"},
	    {"b=1&a=2&a=10", "a=10&a=2&b=1"},
	    {"prefix=&delimiter=%2F", "delimiter=%2F&prefix="},
	    {"a=1&&b=2&", "a=1&b=2"},
	    {"B=1&a=1", "B=1&a=1"},
	    {"\xe1\x88\xb4=x&Z=y", "%E1%88%B4=x&Z=y"},
	    {"", ""},
	};
	struct irfw_sigv4_params p = edge_params();

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		char *got = creq_line_for("/", t[i].query, &p, 2);
		if (strcmp(got, t[i].want))
			fail_msg("query \"%s\": got \"%s\", want \"%s\"", t[i].query, got, t[i].want);
		free(got);
	}
}

static void test_paths(void **state)
{
	(void)state;
	static const struct {
		bool s3, once;
		const char *path, *want;
	} t[] = {
	    /* S3: encoded once, never normalised */
	    {true, false, "/my key/a+b", "/my%20key/a%2Bb"},
	    {true, false, "//example//", "//example//"},
	    {true, false, "/a/./b/../c", "/a/./b/../c"},
	    {true, false, "/test$file.text", "/test%24file.text"},
	    {true, false, "/50%", "/50%25"},
	    {true, false, "/\xe1\x88\xb4", "/%E1%88%B4"},
	    {true, false, "", "/"},
	    {true, false, NULL, "/"},
	    /* other services: normalised, encoded twice */
	    {false, false, "/a/./b/../c//d/", "/a/c/d/"},
	    {false, false, "//example//", "/example/"},
	    {false, false, "/a/b/..", "/a"},
	    {false, false, "/../..", "/"},
	    {false, false, "/my key", "/my%2520key"},
	    {false, false, "/50%done", "/50%2525done"},
	    {false, false, "/\xe1\x88\xb4", "/%25E1%2588%25B4"},
	    {false, false, "/a+b", "/a%252Bb"},
	    {false, false, "/-._~", "/-._~"},
	    {false, false, "", "/"},
	    /* the aws-c-auth suite's single pass */
	    {false, true, "/example space/", "/example%20space/"},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		struct irfw_sigv4_params p = edge_params();
		p.s3_mode = t[i].s3;
		p.path_encode_once = t[i].once;
		char *got = creq_line_for(t[i].path, NULL, &p, 1);
		if (strcmp(got, t[i].want))
			fail_msg("path \"%s\" (s3=%d): got \"%s\", want \"%s\"",
			         t[i].path ? t[i].path : "(null)", t[i].s3, got, t[i].want);
		free(got);
	}
}

static void test_header_canonicalisation(void **state)
{
	(void)state;
	const struct irfw_kv h[] = {
	    {"X-Foo", "  a   b\t c  "},
	    {"Host", "example.amazonaws.com"},
	    {"x-foo", "second"},
	    {"X-BAR", "\"q   q\""},
	    {"X-Empty", ""},
	    {"X-FOO", "first?"},
	};
	struct irfw_sigv4_request rq = {.method = "GET", .path = "/", .headers = h, .n_headers = 6};
	struct irfw_sigv4_params p = edge_params();
	struct irfw_sigv4_result r;
	char err[256];

	assert_int_equal(irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)), 0);
	assert_string_equal(r.canonical_request, "GET\n/\n\n"
	                                         "host:example.amazonaws.com\n"
	                                         "x-amz-date:20150830T123600Z\n"
	                                         "x-bar:\"q q\"\n"
	                                         "x-empty:\n"
	                                         "x-foo:a b c,second,first?\n"
	                                         "\n"
	                                         "host;x-amz-date;x-bar;x-empty;x-foo\n" S3_EMPTY_SHA);
	irfw_sigv4_result_free(&r);
}

static void test_header_mode_additions(void **state)
{
	(void)state;
	struct irfw_sigv4_request rq = {.method = "PUT",
	                                .path = "/k",
	                                .headers = host_only,
	                                .n_headers = 1,
	                                .body = "hello",
	                                .body_len = 5};
	struct irfw_sigv4_params p = edge_params();
	struct irfw_sigv4_result r;
	char err[256], want_hash[65];

	irfw_sha256_hex("hello", 5, want_hash);
	p.session_token = "TOKEN/+=";
	p.sign_body = true;
	assert_int_equal(irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)), 0);
	assert_null(r.query);
	assert_int_equal(r.n_add, 4);
	assert_string_equal(r.add[0].name, "X-Amz-Date");
	assert_string_equal(r.add[0].value, "20150830T123600Z");
	assert_string_equal(r.add[1].name, "X-Amz-Security-Token");
	assert_string_equal(r.add[1].value, "TOKEN/+=");
	assert_string_equal(r.add[2].name, "x-amz-content-sha256");
	assert_string_equal(r.add[2].value, want_hash);
	assert_string_equal(r.add[3].name, "Authorization");
	assert_non_null(strstr(r.add[3].value, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
	                                       "x-amz-security-token, Signature="));
	assert_non_null(strstr(r.canonical_request, "x-amz-security-token:TOKEN/+=\n"));
	char *last = line_of(r.canonical_request, 9);
	assert_string_equal(last, want_hash);
	free(last);
	irfw_sigv4_result_free(&r);

	/* Token added after signing: sent, but not signed. */
	p.omit_session_token = true;
	p.sign_body = false;
	assert_int_equal(irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)), 0);
	assert_int_equal(r.n_add, 3);
	assert_string_equal(r.add[1].name, "X-Amz-Security-Token");
	assert_null(strstr(r.canonical_request, "TOKEN"));
	assert_non_null(strstr(r.add[2].value, "SignedHeaders=host;x-amz-date, "));
	irfw_sigv4_result_free(&r);

	/* An explicit payload hash wins over the body. */
	rq.payload_hash = "UNSIGNED-PAYLOAD";
	assert_int_equal(irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)), 0);
	last = line_of(r.canonical_request, 7);
	assert_string_equal(last, "UNSIGNED-PAYLOAD");
	free(last);
	irfw_sigv4_result_free(&r);
}

static void test_query_mode_token(void **state)
{
	(void)state;
	struct irfw_sigv4_request rq = {
	    .method = "GET", .path = "/", .query = "b=2&a=1", .headers = host_only, .n_headers = 1};
	struct irfw_sigv4_params p = edge_params();
	struct irfw_sigv4_result r;
	char err[256];

	p.session_token = "T/k+n=";
	p.presign_expires = 60;
	assert_int_equal(irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)), 0);
	assert_int_equal(r.n_add, 0);
	char *cq = line_of(r.canonical_request, 2);
	/* Byte order: uppercase "X-Amz-" sorts before lowercase names. */
	assert_string_equal(cq, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
	                        "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-"
	                        "Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-Security-Token="
	                        "T%2Fk%2Bn%3D&X-Amz-SignedHeaders=host&a=1&b=2");
	free(cq);
	assert_true(strncmp(r.query, "b=2&a=1&X-Amz-Algorithm=", 24) == 0);
	assert_non_null(strstr(r.query, "&X-Amz-Security-Token=T%2Fk%2Bn%3D&X-Amz-Signature="));
	irfw_sigv4_result_free(&r);

	p.omit_session_token = true;
	assert_int_equal(irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)), 0);
	assert_null(strstr(r.canonical_request, "Security-Token"));
	assert_non_null(strstr(r.query, "&X-Amz-Security-Token=T%2Fk%2Bn%3D&X-Amz-Signature="));
	irfw_sigv4_result_free(&r);
}

static void test_date_format(void **state)
{
	(void)state;
	static const struct {
		time_t when;
		const char *want;
	} t[] = {
	    {0, "19700101T000000Z"},
	    {951782400, "20000229T000000Z"},
	    {(time_t)4102444799LL, "20991231T235959Z"},
	};
	struct irfw_sigv4_request rq = {.method = "GET", .path = "/", .headers = host_only, .n_headers = 1};

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		struct irfw_sigv4_params p = edge_params();
		struct irfw_sigv4_result r;
		char err[256];
		p.when = t[i].when;
		assert_int_equal(irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)), 0);
		assert_string_equal(r.add[0].value, t[i].want);
		assert_non_null(strstr(r.string_to_sign, t[i].want));
		irfw_sigv4_result_free(&r);
	}
	assert_int_equal(iso8601_utc("2013-05-24T00:00:00Z"), 1369353600);
}

static void expect_error(const struct irfw_sigv4_request *rq, const struct irfw_sigv4_params *p,
                         const char *needle)
{
	struct irfw_sigv4_result r;
	char err[256] = "";

	assert_int_equal(irfw_sigv4_sign(rq, p, &r, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	if (p->secret_access_key && *p->secret_access_key)
		assert_null(strstr(err, p->secret_access_key));
	assert_null(r.canonical_request);
	assert_null(r.signature);
	assert_int_equal(r.n_add, 0);
	irfw_sigv4_result_free(&r);
}

static void test_errors(void **state)
{
	(void)state;
	struct irfw_sigv4_params p = edge_params();
	const struct irfw_kv no_host[] = {{"X-Foo", "1"}};
	const struct irfw_kv crlf[] = {{"Host", "example.amazonaws.com"}, {"X-Foo", "1\r\nX-Evil: 2"}};
	const struct irfw_kv bad_name[] = {{"Host", "example.amazonaws.com"}, {"X Foo", "1"}};
	const struct irfw_kv date[] = {{"Host", "example.amazonaws.com"}, {"x-amz-date", "1"}};
	const struct irfw_kv authz[] = {{"Host", "example.amazonaws.com"}, {"Authorization", "x"}};
	struct irfw_sigv4_request rq = {.method = "GET", .path = "/", .headers = no_host, .n_headers = 1};

	expect_error(&rq, &p, "no Host");
	rq.headers = crlf;
	rq.n_headers = 2;
	expect_error(&rq, &p, "line break");
	rq.headers = bad_name;
	expect_error(&rq, &p, "invalid header name");
	rq.headers = date;
	expect_error(&rq, &p, "added by the signer");
	rq.headers = authz;
	expect_error(&rq, &p, "added by the signer");

	rq.headers = host_only;
	rq.n_headers = 1;
	rq.method = NULL;
	expect_error(&rq, &p, "method");
	rq.method = "GET";

	p.presign_expires = 604801;
	expect_error(&rq, &p, "exceeds");
	p.presign_expires = 60;
	rq.query = "X-Amz-Signature=abc";
	expect_error(&rq, &p, "added by the signer");
	rq.query = NULL;
	p.presign_expires = 0;

	p.region = "";
	expect_error(&rq, &p, "region");
	p.region = "us-east-1";
	p.secret_access_key = "";
	expect_error(&rq, &p, "secret");
}

/* Different secrets must give different signatures (guards against a test
 * that compares a value with itself). */
static void test_secret_matters(void **state)
{
	(void)state;
	struct irfw_sigv4_request rq = {.method = "GET", .path = "/", .headers = host_only, .n_headers = 1};
	struct irfw_sigv4_params p = edge_params();
	struct irfw_sigv4_result a, b;
	char err[256];

	assert_int_equal(irfw_sigv4_sign(&rq, &p, &a, err, sizeof(err)), 0);
	p.secret_access_key = "another-secret";
	assert_int_equal(irfw_sigv4_sign(&rq, &p, &b, err, sizeof(err)), 0);
	assert_string_equal(a.canonical_request, b.canonical_request);
	assert_string_not_equal(a.signature, b.signature);
	assert_int_equal(strlen(a.signature), 64);
	irfw_sigv4_result_free(&a);
	irfw_sigv4_result_free(&b);
	irfw_sigv4_result_free(NULL);
}

/* ----------------------------------------------- the signing key cache */

/* The signature derived from scratch with OpenSSL's one-shot HMAC, the way
 * the AWS guide spells it: what a cached key must reproduce. */
static void reference_signature(const struct irfw_sigv4_params *p, const char *sts, char out[65])
{
	unsigned char k[32], k2[32];
	unsigned int n = 0;
	char date8[9], secret[256];
	struct tm tm;

	assert_non_null(gmtime_r(&p->when, &tm));
	strftime(date8, sizeof(date8), "%Y%m%d", &tm);
	snprintf(secret, sizeof(secret), "AWS4%s", p->secret_access_key);
	assert_non_null(
	    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)date8, 8, k, &n));
	assert_non_null(
	    HMAC(EVP_sha256(), k, 32, (const unsigned char *)p->region, strlen(p->region), k2, &n));
	assert_non_null(
	    HMAC(EVP_sha256(), k2, 32, (const unsigned char *)p->service, strlen(p->service), k, &n));
	assert_non_null(HMAC(EVP_sha256(), k, 32, (const unsigned char *)"aws4_request", 12, k2, &n));
	assert_non_null(HMAC(EVP_sha256(), k2, 32, (const unsigned char *)sts, strlen(sts), k, &n));
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", k[i]);
}

/* Signs with variant v of the credentials and scope (the same access key
 * id with three secrets, two days, two regions, two services: more
 * variants than the cache holds) and compares with the reference; 0 if
 * equal. */
static int sign_variant(unsigned v)
{
	static const char *const secrets[] = {"secret-one", "secret-two",
	                                      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
	struct irfw_sigv4_request rq = {.method = "GET", .path = "/", .headers = host_only, .n_headers = 1};
	struct irfw_sigv4_params p = edge_params();
	struct irfw_sigv4_result r;
	char err[256], want[65];
	int rc;

	p.secret_access_key = secrets[v % 3];
	p.when += (time_t)((v / 3) % 2) * 86400;
	p.region = (v / 6) % 2 ? "eu-west-1" : "us-east-1";
	p.service = (v / 12) % 2 ? "ec2" : "service";
	if (irfw_sigv4_sign(&rq, &p, &r, err, sizeof(err)) != 0)
		return -1;
	reference_signature(&p, r.string_to_sign, want);
	rc = strcmp(r.signature, want) == 0 ? 0 : 1;
	irfw_sigv4_result_free(&r);
	return rc;
}

/* The key is kept per day, region, service and credentials: a changed
 * secret under the same access key id, another day or region, and a key
 * pushed out of the cache and derived again all give the signature derived
 * from scratch. */
static void test_signing_key_cache(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++)
		for (unsigned v = 0; v < 24; v++)
			assert_int_equal(sign_variant(v), 0);
	/* And the official vector still holds after the cache churned. */
	test_s3_get_object_range(NULL);
	test_s3_get_object_range(NULL);
}

static void *sign_many(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	intptr_t bad = 0;

	for (unsigned i = 0; i < 300; i++)
		bad += sign_variant((seed + i * 7) % 24) != 0;
	return (void *)bad;
}

/* Workers and the calls pool sign at once: the shared HMAC context and
 * cache give every thread its own right signature. */
static void test_signing_concurrently(void **state)
{
	(void)state;
	pthread_t th[8];

	for (uintptr_t i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, sign_many, (void *)i), 0);
	for (int i = 0; i < 8; i++) {
		void *bad = NULL;
		assert_int_equal(pthread_join(th[i], &bad), 0);
		assert_int_equal((intptr_t)bad, 0);
	}
}

/* The encoded digests, and the base64 form back to hex: "abc" is FIPS
 * 180-2's first example. */
static void test_sha256_encoded(void **state)
{
	(void)state;
	const char *hex_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char hex[65], b64[45], back[65];
	irfw_sha256_encoded("abc", 3, hex, b64);
	assert_string_equal(hex, hex_abc);
	assert_string_equal(b64, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
	irfw_sha256_encoded("abc", 3, NULL, NULL); /* either may be NULL */
	assert_true(irfw_sha256_b64_to_hex(b64, back));
	assert_string_equal(back, hex_abc);
	/* Not a whole SHA-256: untouched and false. */
	strcpy(back, "untouched");
	assert_false(irfw_sha256_b64_to_hex(NULL, back));
	assert_false(irfw_sha256_b64_to_hex("", back));
	assert_false(irfw_sha256_b64_to_hex("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=-3", back));
	assert_false(irfw_sha256_b64_to_hex("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0", back));
	assert_false(irfw_sha256_b64_to_hex("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAF==", back));
	assert_false(irfw_sha256_b64_to_hex("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/Yf!AFa0=", back));
	assert_string_equal(back, "untouched");
}

int main(void)
{
	const struct CMUnitTest unit[] = {
	    cmocka_unit_test(test_suites_complete),
	    cmocka_unit_test(test_uri_encode),
	    cmocka_unit_test(test_sha256_hex),
	    cmocka_unit_test(test_canonical_query_encoding),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_header_canonicalisation),
	    cmocka_unit_test(test_header_mode_additions),
	    cmocka_unit_test(test_query_mode_token),
	    cmocka_unit_test(test_date_format),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_secret_matters),
	    cmocka_unit_test(test_s3_get_object_range),
	    cmocka_unit_test(test_s3_put_object),
	    cmocka_unit_test(test_s3_get_lifecycle),
	    cmocka_unit_test(test_s3_list_objects),
	    cmocka_unit_test(test_s3_presigned_url),
	    cmocka_unit_test(test_s3_chunked_upload_seed),
	    cmocka_unit_test(test_signing_key_cache),
	    cmocka_unit_test(test_signing_concurrently),
	    cmocka_unit_test(test_sha256_encoded),
	};
	static struct CMUnitTest v4[2 * MAX_CASES], classic[MAX_CASES];
	int failed = 0;

	find_v4_cases();
	find_classic_cases();
	for (size_t i = 0; i < 2 * n_v4_dirs; i++)
		v4[i] = (struct CMUnitTest){
		    .name = v4_cases[i].name, .test_func = v4_case, .initial_state = &v4_cases[i]};
	for (size_t i = 0; i < n_classic; i++)
		classic[i] = (struct CMUnitTest){.name = classic_cases[i].name,
		                                 .test_func = classic_case,
		                                 .initial_state = &classic_cases[i]};

	failed += cmocka_run_group_tests_name("sigv4", unit, NULL, NULL);
	failed += _cmocka_run_group_tests("sigv4_v4_suite", v4, 2 * n_v4_dirs, NULL, NULL);
	failed += _cmocka_run_group_tests("sigv4_classic_suite", classic, n_classic, NULL, NULL);
	return failed ? 1 : 0;
}
