/*
 * sigv4.c - AWS Signature Version 4, on OpenSSL's SHA-256 and HMAC.
 *
 * Reference: the AWS "Create a signed AWS API request" guide, checked against
 * aws-c-auth's test suites and the S3 API Reference examples (see
 * tests/sigv4_test.c).
 */
#define _POSIX_C_SOURCE 200809L

#include "sigv4.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
/* AWS refuses presigned URLs valid for longer than seven days. */
#define MAX_PRESIGN_EXPIRES 604800L

/* A growable string.  Allocation failure is sticky so that callers can
 * append freely and check once at the end. */
struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 128;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

/* Hands the string over to the caller; NULL when anything failed. */
static char *buf_take(struct buf *b)
{
	char *p;

	if (!b->p && !b->oom)
		buf_add(b, "", 0);
	if (b->oom) {
		free(b->p);
		p = NULL;
	} else {
		p = b->p;
	}
	memset(b, 0, sizeof(*b));
	return p;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static void encode_into(struct buf *b, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			buf_addc(b, (char)c);
		} else {
			char esc[3] = {'%', hex[c >> 4], hex[c & 0xf]};
			buf_add(b, esc, 3);
		}
	}
}

char *irfw_uri_encode(const char *s, size_t len, bool keep_slash)
{
	struct buf b = {0};

	encode_into(&b, s, len, keep_slash);
	return buf_take(&b);
}

void irfw_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	/* An empty string rather than a wrong hash: the signer checks. */
	out[0] = '\0';
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes into a new string.  A '%' not followed by two hex digits
 * is kept literally, so that it is re-encoded as %25 rather than refused.
 * '+' stays '+': SigV4 query strings are RFC 3986, not HTML forms. */
static char *uri_decode(const char *s, size_t len, size_t *outlen)
{
	char *d = malloc(len + 1);
	size_t n = 0;

	if (!d)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			d[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			d[n++] = s[i];
		}
	}
	d[n] = '\0';
	*outlen = n;
	return d;
}

/* Canonical URI.  Normalisation follows RFC 3986 remove_dot_segments plus
 * collapsing empty segments, the way the AWS SDKs do; a trailing slash
 * survives when the path had one. */
static char *canonical_path(const char *path, bool normalize, int passes)
{
	struct buf norm = {0}, once = {0}, twice = {0};
	const char *src = path && *path ? path : "/";
	char *res = NULL;

	if (normalize) {
		size_t n = strlen(src);
		/* Offsets into norm where each kept segment starts, for "..". */
		size_t *starts = malloc((n + 1) * sizeof(*starts));
		size_t depth = 0;
		const char *p = src;

		if (!starts)
			goto out;
		while (*p) {
			while (*p == '/')
				p++;
			const char *e = strchr(p, '/');
			size_t sl = e ? (size_t)(e - p) : strlen(p);
			if (sl == 0 || (sl == 1 && p[0] == '.')) {
				/* empty or "." segment: nothing */
			} else if (sl == 2 && p[0] == '.' && p[1] == '.') {
				if (depth > 0)
					norm.len = starts[--depth];
			} else {
				starts[depth++] = norm.len;
				buf_addc(&norm, '/');
				buf_add(&norm, p, sl);
			}
			p += sl;
		}
		free(starts);
		if (norm.p && !norm.oom)
			norm.p[norm.len] = '\0';
		if (norm.len == 0 || src[n - 1] == '/')
			buf_addc(&norm, '/');
		if (norm.oom)
			goto out;
		src = norm.p;
	} else if (src[0] != '/') {
		buf_addc(&norm, '/');
		buf_adds(&norm, src);
		if (norm.oom)
			goto out;
		src = norm.p;
	}

	encode_into(&once, src, strlen(src), true);
	if (passes == 1) {
		res = buf_take(&once);
		goto out;
	}
	if (once.oom)
		goto out;
	encode_into(&twice, once.p, once.len, true);
	res = buf_take(&twice);
out:
	buf_free(&norm);
	buf_free(&once);
	buf_free(&twice);
	return res;
}

struct qparam {
	char *name, *value; /* both already in canonical (encoded) form */
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static void qparams_free(struct qparam *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free_secret(q[i].name);
		free_secret(q[i].value);
	}
	free(q);
}

/* Appends name=value, each decoded then re-encoded, to q[*n]. */
static int qparam_add_wire(struct qparam *q, size_t *n, const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);
	size_t nl = eq ? (size_t)(eq - s) : len;
	size_t dl;
	char *d;

	d = uri_decode(s, nl, &dl);
	if (!d)
		return -1;
	q[*n].name = irfw_uri_encode(d, dl, false);
	free_secret(d);
	d = eq ? uri_decode(eq + 1, len - nl - 1, &dl) : calloc(1, 1);
	if (!eq)
		dl = 0;
	if (!d) {
		free(q[*n].name);
		return -1;
	}
	q[*n].value = irfw_uri_encode(d, dl, false);
	free_secret(d);
	if (!q[*n].name || !q[*n].value) {
		free(q[*n].name);
		free(q[*n].value);
		return -1;
	}
	(*n)++;
	return 0;
}

static int qparam_add_raw(struct qparam *q, size_t *n, const char *name, const char *value)
{
	q[*n].name = irfw_uri_encode(name, strlen(name), false);
	q[*n].value = irfw_uri_encode(value, strlen(value), false);
	if (!q[*n].name || !q[*n].value) {
		free(q[*n].name);
		free(q[*n].value);
		return -1;
	}
	(*n)++;
	return 0;
}

/* The parameters the signer adds in query mode; the caller must not. */
static const char *const presign_names[] = {
	"X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",      "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Security-Token",
};

struct hdr {
	char *name;  /* lowercase */
	char *value; /* trimmed, inner whitespace runs collapsed */
	size_t order;
};

static int hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* qsort is not stable; duplicates must keep their order of appearance. */
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);

	if (d)
		for (char *p = d; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return d;
}

static char *canonical_value(const char *v)
{
	struct buf b = {0};
	bool space = false;

	for (const char *p = v; *p; p++) {
		if (*p == ' ' || *p == '\t') {
			space = b.len > 0;
			continue;
		}
		if (space)
			buf_addc(&b, ' ');
		space = false;
		buf_addc(&b, *p);
	}
	return buf_take(&b);
}

static int hdr_add(struct hdr *h, size_t *n, const char *name, const char *value)
{
	h[*n].name = lower_dup(name);
	h[*n].value = canonical_value(value);
	h[*n].order = *n;
	if (!h[*n].name || !h[*n].value) {
		free(h[*n].name);
		free_secret(h[*n].value);
		return -1;
	}
	(*n)++;
	return 0;
}

static void hdrs_free(struct hdr *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free_secret(h[i].value);
	}
	free(h);
}

static bool name_is(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
		char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
		if (x != y)
			return false;
	}
	return *a == *b;
}

static int check_inputs(const struct irfw_sigv4_request *req, const struct irfw_sigv4_params *p,
                        bool query_mode, char *err, size_t errlen)
{
	bool host = false;

	if (!req || !p || !req->method || !*req->method) {
		set_err(err, errlen, "sigv4: no request method");
		return -1;
	}
	if (!p->access_key_id || !*p->access_key_id || !p->secret_access_key ||
	    !*p->secret_access_key) {
		set_err(err, errlen, "sigv4: missing access key id or secret access key");
		return -1;
	}
	if (!p->region || !*p->region || !p->service || !*p->service ||
	    strpbrk(p->region, "/ \r\n") || strpbrk(p->service, "/ \r\n")) {
		set_err(err, errlen, "sigv4: missing or invalid region or service");
		return -1;
	}
	if (p->presign_expires > MAX_PRESIGN_EXPIRES) {
		set_err(err, errlen, "sigv4: presign expiry %ld s exceeds the %ld s AWS allows",
		        p->presign_expires, MAX_PRESIGN_EXPIRES);
		return -1;
	}
	if (p->session_token && strpbrk(p->session_token, "\r\n")) {
		set_err(err, errlen, "sigv4: session token contains a line break");
		return -1;
	}
	if (req->n_headers && !req->headers) {
		set_err(err, errlen, "sigv4: n_headers is set but headers is NULL");
		return -1;
	}
	if (req->body_len && !req->body && !req->payload_hash) {
		set_err(err, errlen, "sigv4: body_len is set but body is NULL");
		return -1;
	}
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *n = req->headers[i].name, *v = req->headers[i].value;
		if (!n || !*n || !v) {
			set_err(err, errlen, "sigv4: header %zu has no name or value", i);
			return -1;
		}
		for (const char *c = n; *c; c++) {
			if (!is_tchar((unsigned char)*c)) {
				set_err(err, errlen, "sigv4: invalid header name \"%s\"", n);
				return -1;
			}
		}
		/* A line break would let a value smuggle in unsigned headers. */
		if (strpbrk(v, "\r\n")) {
			set_err(err, errlen, "sigv4: value of header %s contains a line break", n);
			return -1;
		}
		if (name_is(n, "host"))
			host = true;
		if (name_is(n, "authorization") || name_is(n, "x-amz-date") ||
		    name_is(n, "x-amz-security-token") ||
		    (!query_mode && p->sign_body && name_is(n, "x-amz-content-sha256"))) {
			set_err(err, errlen, "sigv4: header %s is added by the signer", n);
			return -1;
		}
	}
	/* SigV4 requires Host to be signed; without it anyone could replay the
	 * signature against another endpoint. */
	if (!host) {
		set_err(err, errlen, "sigv4: request has no Host header");
		return -1;
	}
	return 0;
}

/* Builds the sorted canonical query; in query mode the X-Amz-* parameters
 * (but not X-Amz-Signature) are part of it. */
static char *canonical_query(const char *query, const struct qparam *extra, size_t n_extra,
                             char *err, size_t errlen)
{
	struct qparam *q = NULL;
	size_t n = 0, cap = n_extra + 1;
	struct buf b = {0};
	char *res = NULL;

	if (query)
		for (const char *c = query; *c; c++)
			cap += *c == '&';
	q = calloc(cap, sizeof(*q));
	if (!q)
		goto oom;
	for (const char *s = query; s && *s;) {
		const char *e = strchr(s, '&');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len && qparam_add_wire(q, &n, s, len) < 0)
			goto oom;
		if (len && n_extra) {
			for (size_t i = 0; i < sizeof(presign_names) / sizeof(*presign_names); i++) {
				if (!strcmp(q[n - 1].name, presign_names[i])) {
					set_err(err, errlen,
					        "sigv4: query parameter %s is added by the signer",
					        presign_names[i]);
					goto out;
				}
			}
		}
		s += len + (e != NULL);
	}
	for (size_t i = 0; i < n_extra; i++) {
		q[n].name = strdup(extra[i].name);
		q[n].value = strdup(extra[i].value);
		if (!q[n].name || !q[n].value) {
			n++;
			goto oom;
		}
		n++;
	}
	qsort(q, n, sizeof(*q), qparam_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addc(&b, '&');
		buf_adds(&b, q[i].name);
		buf_addc(&b, '=');
		buf_adds(&b, q[i].value);
	}
	res = buf_take(&b);
	if (!res)
		goto oom;
	goto out;
oom:
	set_err(err, errlen, "sigv4: out of memory");
out:
	qparams_free(q, n);
	buf_free(&b);
	return res;
}

/* Canonical header block ("name:value\n" each) and the signed header list.
 * Duplicate names are merged with ',' in order of appearance. */
static int canonical_headers(struct hdr *h, size_t n, struct buf *block, struct buf *signed_list)
{
	qsort(h, n, sizeof(*h), hdr_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && !strcmp(h[i].name, h[i - 1].name)) {
			/* block ends in '\n'; replace it to continue the line. */
			block->len--;
			buf_addc(block, ',');
		} else {
			if (signed_list->len)
				buf_addc(signed_list, ';');
			buf_adds(signed_list, h[i].name);
			buf_adds(block, h[i].name);
			buf_addc(block, ':');
		}
		buf_adds(block, h[i].value);
		buf_addc(block, '\n');
	}
	if (!block->p)
		buf_add(block, "", 0);
	if (!signed_list->p)
		buf_add(signed_list, "", 0);
	return block->oom || signed_list->oom ? -1 : 0;
}

static bool hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	unsigned int len = 0;

	return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out,
	            &len) &&
	       len == 32;
}

/* signature = hex(HMAC(kSigning, sts)), with kSigning derived from the
 * secret through date, region, service and "aws4_request". */
static int compute_signature(const struct irfw_sigv4_params *p, const char *date8,
                             const char *sts, char out[65])
{
	/* Separate buffers: HMAC's key and output never alias. */
	unsigned char k1[32], k2[32], sig[32];
	struct buf key = {0};
	int rc = -1;

	buf_adds(&key, "AWS4");
	buf_adds(&key, p->secret_access_key);
	if (key.oom)
		goto out;
	if (!hmac(key.p, key.len, date8, k1) || !hmac(k1, 32, p->region, k2) ||
	    !hmac(k2, 32, p->service, k1) || !hmac(k1, 32, "aws4_request", k2) ||
	    !hmac(k2, 32, sts, sig))
		goto out;
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sig[i]);
	rc = 0;
out:
	if (key.p)
		OPENSSL_cleanse(key.p, key.len);
	buf_free(&key);
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(sig, sizeof(sig));
	return rc;
}

static int add_out(struct irfw_sigv4_result *out, const char *name, const char *value)
{
	size_t i = out->n_add;

	out->add[i].name = strdup(name);
	out->add[i].value = strdup(value);
	out->n_add++;
	return out->add[i].name && out->add[i].value ? 0 : -1;
}

int irfw_sigv4_sign(const struct irfw_sigv4_request *req, const struct irfw_sigv4_params *p,
                    struct irfw_sigv4_result *out, char *err, size_t errlen)
{
	bool query_mode;
	bool token_signed, token_after;
	char amzdate[17], date8[9], payload[65], sig[65] = "", creq_hash[65];
	const char *payload_hash;
	struct tm tm;
	struct hdr *h = NULL;
	size_t nh = 0;
	struct qparam extra[6] = {{0}};
	size_t n_extra = 0;
	struct buf hblock = {0}, slist = {0}, creq = {0}, sts = {0}, scope = {0}, tmp = {0};
	char *path = NULL, *cquery = NULL;
	int rc = -1;

	if (!out) {
		set_err(err, errlen, "sigv4: no result");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	query_mode = p && p->presign_expires > 0;
	if (check_inputs(req, p, query_mode, err, errlen) < 0)
		return -1;
	token_signed = p->session_token && !p->omit_session_token;
	token_after = p->session_token && p->omit_session_token;

	if (!gmtime_r(&p->when, &tm) || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999 ||
	    strftime(amzdate, sizeof(amzdate), "%Y%m%dT%H%M%SZ", &tm) != 16) {
		set_err(err, errlen, "sigv4: signing time out of range");
		return -1;
	}
	memcpy(date8, amzdate, 8);
	date8[8] = '\0';

	if (req->payload_hash) {
		payload_hash = req->payload_hash;
	} else {
		irfw_sha256_hex(req->body_len ? req->body : "", req->body_len, payload);
		payload_hash = payload;
	}
	if (!*payload_hash || strpbrk(payload_hash, "\r\n")) {
		set_err(err, errlen, "sigv4: invalid or failed payload hash");
		return -1;
	}

	buf_adds(&scope, date8);
	buf_addc(&scope, '/');
	buf_adds(&scope, p->region);
	buf_addc(&scope, '/');
	buf_adds(&scope, p->service);
	buf_adds(&scope, "/aws4_request");
	if (scope.oom)
		goto oom;

	path = canonical_path(req->path, !p->s3_mode,
	                      p->s3_mode || p->path_encode_once ? 1 : 2);
	if (!path)
		goto oom;

	h = calloc(req->n_headers + 3, sizeof(*h));
	if (!h)
		goto oom;
	for (size_t i = 0; i < req->n_headers; i++)
		if (hdr_add(h, &nh, req->headers[i].name, req->headers[i].value) < 0)
			goto oom;
	if (!query_mode) {
		if (hdr_add(h, &nh, "X-Amz-Date", amzdate) < 0)
			goto oom;
		if (token_signed && hdr_add(h, &nh, "X-Amz-Security-Token", p->session_token) < 0)
			goto oom;
		if (p->sign_body && hdr_add(h, &nh, "x-amz-content-sha256", payload_hash) < 0)
			goto oom;
	}
	if (canonical_headers(h, nh, &hblock, &slist) < 0)
		goto oom;

	if (query_mode) {
		char expires[24];
		buf_adds(&tmp, p->access_key_id);
		buf_addc(&tmp, '/');
		buf_adds(&tmp, scope.p);
		if (tmp.oom)
			goto oom;
		snprintf(expires, sizeof(expires), "%ld", p->presign_expires);
		if (qparam_add_raw(extra, &n_extra, "X-Amz-Algorithm", ALGORITHM) < 0 ||
		    qparam_add_raw(extra, &n_extra, "X-Amz-Credential", tmp.p) < 0 ||
		    qparam_add_raw(extra, &n_extra, "X-Amz-Date", amzdate) < 0 ||
		    qparam_add_raw(extra, &n_extra, "X-Amz-SignedHeaders", slist.p) < 0 ||
		    qparam_add_raw(extra, &n_extra, "X-Amz-Expires", expires) < 0)
			goto oom;
		if (token_signed || token_after) {
			if (qparam_add_raw(extra, &n_extra, "X-Amz-Security-Token",
			                   p->session_token) < 0)
				goto oom;
		}
		buf_free(&tmp);
	}
	/* An unsigned token is sent but kept out of the canonical query; it is
	 * last in extra. */
	cquery = canonical_query(req->query, extra,
	                         query_mode && token_after ? n_extra - 1 : n_extra, err, errlen);
	if (!cquery)
		goto out;

	buf_adds(&creq, req->method);
	buf_addc(&creq, '\n');
	buf_adds(&creq, path);
	buf_addc(&creq, '\n');
	buf_adds(&creq, cquery);
	buf_addc(&creq, '\n');
	buf_adds(&creq, hblock.p);
	buf_addc(&creq, '\n');
	buf_adds(&creq, slist.p);
	buf_addc(&creq, '\n');
	buf_adds(&creq, payload_hash);
	if (creq.oom)
		goto oom;

	irfw_sha256_hex(creq.p, creq.len, creq_hash);
	if (!creq_hash[0])
		goto crypto;
	buf_adds(&sts, ALGORITHM "\n");
	buf_adds(&sts, amzdate);
	buf_addc(&sts, '\n');
	buf_adds(&sts, scope.p);
	buf_addc(&sts, '\n');
	buf_adds(&sts, creq_hash);
	if (sts.oom)
		goto oom;

	if (compute_signature(p, date8, sts.p, sig) < 0)
		goto crypto;

	if (query_mode) {
		if (req->query && *req->query) {
			buf_adds(&tmp, req->query);
			buf_addc(&tmp, '&');
		}
		/* Wire order as aws-c-auth emits it; the server does not care.  The
		 * names are unreserved, so their encoded form is the name. */
		for (size_t i = 0; i < n_extra; i++) {
			if (i)
				buf_addc(&tmp, '&');
			buf_adds(&tmp, extra[i].name);
			buf_addc(&tmp, '=');
			buf_adds(&tmp, extra[i].value);
		}
		buf_adds(&tmp, "&X-Amz-Signature=");
		buf_adds(&tmp, sig);
		out->query = buf_take(&tmp);
		if (!out->query)
			goto oom;
	} else {
		if (add_out(out, "X-Amz-Date", amzdate) < 0)
			goto oom;
		if (p->session_token && add_out(out, "X-Amz-Security-Token", p->session_token) < 0)
			goto oom;
		if (p->sign_body && add_out(out, "x-amz-content-sha256", payload_hash) < 0)
			goto oom;
		buf_adds(&tmp, ALGORITHM " Credential=");
		buf_adds(&tmp, p->access_key_id);
		buf_addc(&tmp, '/');
		buf_adds(&tmp, scope.p);
		buf_adds(&tmp, ", SignedHeaders=");
		buf_adds(&tmp, slist.p);
		buf_adds(&tmp, ", Signature=");
		buf_adds(&tmp, sig);
		if (tmp.oom)
			goto oom;
		if (add_out(out, "Authorization", tmp.p) < 0)
			goto oom;
	}
	out->canonical_request = buf_take(&creq);
	out->string_to_sign = buf_take(&sts);
	out->signature = strdup(sig);
	if (!out->canonical_request || !out->string_to_sign || !out->signature)
		goto oom;
	rc = 0;
	goto out;
crypto:
	set_err(err, errlen, "sigv4: OpenSSL SHA-256/HMAC failed");
	goto out;
oom:
	set_err(err, errlen, "sigv4: out of memory");
out:
	if (rc < 0)
		irfw_sigv4_result_free(out);
	hdrs_free(h, nh);
	for (size_t i = 0; i < n_extra; i++) {
		free(extra[i].name);
		free_secret(extra[i].value);
	}
	free(path);
	free_secret(cquery);
	if (tmp.p)
		OPENSSL_cleanse(tmp.p, tmp.len);
	buf_free(&tmp);
	buf_free(&hblock);
	buf_free(&slist);
	buf_free(&creq);
	buf_free(&sts);
	buf_free(&scope);
	OPENSSL_cleanse(sig, sizeof(sig));
	return rc;
}

void irfw_sigv4_result_free(struct irfw_sigv4_result *r)
{
	if (!r)
		return;
	free_secret(r->canonical_request);
	free_secret(r->string_to_sign);
	free_secret(r->signature);
	for (size_t i = 0; i < r->n_add; i++) {
		free(r->add[i].name);
		free_secret(r->add[i].value);
	}
	free_secret(r->query);
	memset(r, 0, sizeof(*r));
}
