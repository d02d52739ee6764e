/*
 * sigv4.c - AWS Signature Version 4, on OpenSSL's SHA-256 and HMAC.
 *
 * Reference: the AWS "Create a signed AWS API request" guide, checked against
 * aws-c-auth's test suites and the S3 API Reference examples (see
 * tests/sigv4_test.c).
 */
#define _POSIX_C_SOURCE 200809L

#include "sigv4.h"

#include "buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
/* AWS refuses presigned URLs valid for longer than seven days. */
#define MAX_PRESIGN_EXPIRES 604800L
/* Signing keys kept: one per (day, region, service, credentials) in use. */
#define KEY_CACHE 8

/*
 * OpenSSL 3 looks an algorithm up by name on every EVP_sha256() digest and
 * HMAC() call; SHA-256 and HMAC-SHA256 are fetched once here instead, and
 * one HMAC context, set to SHA-256 once, is re-keyed for each MAC.  The
 * signing key (four HMACs from the secret) changes only with the date,
 * region, service and credentials, so the last few are kept.  The context
 * and the cache are shared by every thread that signs (the workers and the
 * calls pool), under `crypto_lock`; a MAC is a microsecond.  A cached key
 * is found by the access key id and the SHA-256 of the secret (the secret
 * itself is not kept), and wiped at exit.
 */
struct signing_key {
	bool used;
	char date8[9];
	char region[64];
	char service[64];
	char access_key_id[128];
	unsigned char secret_hash[32];
	unsigned char key[32];
};

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t crypto_lock = PTHREAD_MUTEX_INITIALIZER;
static EVP_MD *sha256_md;
static EVP_MAC *hmac_mac;
static EVP_MAC_CTX *hmac_ctx;                   /* under crypto_lock */
static struct signing_key key_cache[KEY_CACHE]; /* under crypto_lock */
static unsigned key_next;                       /* the entry replaced next */

static void crypto_free(void)
{
	pthread_mutex_lock(&crypto_lock);
	OPENSSL_cleanse(key_cache, sizeof(key_cache));
	EVP_MAC_CTX_free(hmac_ctx);
	hmac_ctx = NULL;
	pthread_mutex_unlock(&crypto_lock);
	EVP_MAC_free(hmac_mac);
	hmac_mac = NULL;
	EVP_MD_free(sha256_md);
	sha256_md = NULL;
}

static void crypto_init(void)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	                       OSSL_PARAM_construct_end()};

	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	hmac_ctx = hmac_mac ? EVP_MAC_CTX_new(hmac_mac) : NULL;
	if (hmac_ctx && EVP_MAC_CTX_set_params(hmac_ctx, params) != 1) {
		EVP_MAC_CTX_free(hmac_ctx);
		hmac_ctx = NULL;
	}
	/* Registered after OpenSSL's own exit handler (the fetches above
	 * initialise it if nothing did), so it runs first. */
	(void)atexit(crypto_free);
}

/* SHA-256 of len bytes into md[32]; false if OpenSSL fails. */
static bool sha256(const void *data, size_t len, unsigned char md[32])
{
	unsigned int n = 0;

	pthread_once(&crypto_once, crypto_init);
	return sha256_md && EVP_Digest(data, len, md, &n, sha256_md, NULL) == 1 && n == 32;
}

const EVP_MD *irfw_sha256_md(void)
{
	pthread_once(&crypto_once, crypto_init);
	return sha256_md;
}

static void hex32(const unsigned char md[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0xf];
	}
	out[64] = '\0';
}

void irfw_sha256_encoded(const void *data, size_t len, char hex[65], char b64[45])
{
	unsigned char md[32];
	if (!sha256(data, len, md))
		memset(md, 0, sizeof(md));
	if (hex)
		hex32(md, hex);
	if (b64)
		EVP_EncodeBlock((unsigned char *)b64, md, 32);
}

bool irfw_sha256_b64_to_hex(const char *b64, char hex[65])
{
	unsigned char raw[33]; /* EVP_DecodeBlock counts the '=' pad as a byte */
	if (!b64 || strlen(b64) != 44 || b64[43] != '=' || b64[42] == '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)b64, 44) != 33)
		return false;
	hex32(raw, hex);
	return true;
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
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

static void encode_into(struct irfw_buf *b, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			irfw_buf_putc(b, (char)c);
		} else {
			char esc[3] = {'%', hex[c >> 4], hex[c & 0xf]};
			irfw_buf_add(b, esc, 3);
		}
	}
}

char *irfw_uri_encode(const char *s, size_t len, bool keep_slash)
{
	struct irfw_buf b = {0};

	encode_into(&b, s, len, keep_slash);
	return irfw_buf_take(&b);
}

void irfw_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];

	/* An empty string rather than a wrong hash: the signer checks. */
	out[0] = '\0';
	if (sha256(data, len, md))
		hex32(md, out);
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
	struct irfw_buf norm = {0}, once = {0}, twice = {0};
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
				irfw_buf_putc(&norm, '/');
				irfw_buf_add(&norm, p, sl);
			}
			p += sl;
		}
		free(starts);
		if (norm.data && !norm.failed)
			norm.data[norm.len] = '\0';
		if (norm.len == 0 || src[n - 1] == '/')
			irfw_buf_putc(&norm, '/');
		if (norm.failed)
			goto out;
		src = norm.data;
	} else if (src[0] != '/') {
		irfw_buf_putc(&norm, '/');
		irfw_buf_puts(&norm, src);
		if (norm.failed)
			goto out;
		src = norm.data;
	}

	encode_into(&once, src, strlen(src), true);
	if (passes == 1) {
		res = irfw_buf_take(&once);
		goto out;
	}
	if (once.failed)
		goto out;
	encode_into(&twice, once.data, once.len, true);
	res = irfw_buf_take(&twice);
out:
	irfw_buf_free(&norm);
	irfw_buf_free(&once);
	irfw_buf_free(&twice);
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
    "X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",           "X-Amz-Expires",
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
	struct irfw_buf b = {0};
	bool space = false;

	for (const char *p = v; *p; p++) {
		if (*p == ' ' || *p == '\t') {
			space = b.len > 0;
			continue;
		}
		if (space)
			irfw_buf_putc(&b, ' ');
		space = false;
		irfw_buf_putc(&b, *p);
	}
	return irfw_buf_take(&b);
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
		irfw_set_err(err, errlen, "sigv4: no request method");
		return -1;
	}
	if (!p->access_key_id || !*p->access_key_id || !p->secret_access_key || !*p->secret_access_key) {
		irfw_set_err(err, errlen, "sigv4: missing access key id or secret access key");
		return -1;
	}
	if (!p->region || !*p->region || !p->service || !*p->service || strpbrk(p->region, "/ \r\n") ||
	    strpbrk(p->service, "/ \r\n")) {
		irfw_set_err(err, errlen, "sigv4: missing or invalid region or service");
		return -1;
	}
	if (p->presign_expires > MAX_PRESIGN_EXPIRES) {
		irfw_set_err(err, errlen, "sigv4: presign expiry %ld s exceeds the %ld s AWS allows",
		             p->presign_expires, MAX_PRESIGN_EXPIRES);
		return -1;
	}
	if (p->session_token && strpbrk(p->session_token, "\r\n")) {
		irfw_set_err(err, errlen, "sigv4: session token contains a line break");
		return -1;
	}
	if (req->n_headers && !req->headers) {
		irfw_set_err(err, errlen, "sigv4: n_headers is set but headers is NULL");
		return -1;
	}
	if (req->body_len && !req->body && !req->payload_hash) {
		irfw_set_err(err, errlen, "sigv4: body_len is set but body is NULL");
		return -1;
	}
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *n = req->headers[i].name, *v = req->headers[i].value;
		if (!n || !*n || !v) {
			irfw_set_err(err, errlen, "sigv4: header %zu has no name or value", i);
			return -1;
		}
		for (const char *c = n; *c; c++) {
			if (!is_tchar((unsigned char)*c)) {
				irfw_set_err(err, errlen, "sigv4: invalid header name \"%s\"", n);
				return -1;
			}
		}
		/* A line break would let a value smuggle in unsigned headers. */
		if (strpbrk(v, "\r\n")) {
			irfw_set_err(err, errlen, "sigv4: value of header %s contains a line break", n);
			return -1;
		}
		if (name_is(n, "host"))
			host = true;
		if (name_is(n, "authorization") || name_is(n, "x-amz-date") ||
		    name_is(n, "x-amz-security-token") ||
		    (!query_mode && p->sign_body && name_is(n, "x-amz-content-sha256"))) {
			irfw_set_err(err, errlen, "sigv4: header %s is added by the signer", n);
			return -1;
		}
	}
	/* SigV4 requires Host to be signed; without it anyone could replay the
	 * signature against another endpoint. */
	if (!host) {
		irfw_set_err(err, errlen, "sigv4: request has no Host header");
		return -1;
	}
	return 0;
}

/* Builds the sorted canonical query; in query mode the X-Amz-* parameters
 * (but not X-Amz-Signature) are part of it. */
static char *canonical_query(const char *query, const struct qparam *extra, size_t n_extra, char *err,
                             size_t errlen)
{
	struct qparam *q = NULL;
	size_t n = 0, cap = n_extra + 1;
	struct irfw_buf b = {0};
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
					irfw_set_err(err, errlen,
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
			irfw_buf_putc(&b, '&');
		irfw_buf_puts(&b, q[i].name);
		irfw_buf_putc(&b, '=');
		irfw_buf_puts(&b, q[i].value);
	}
	res = irfw_buf_take(&b);
	if (!res)
		goto oom;
	goto out;
oom:
	irfw_set_err(err, errlen, "sigv4: out of memory");
out:
	qparams_free(q, n);
	irfw_buf_free(&b);
	return res;
}

/* Canonical header block ("name:value\n" each) and the signed header list.
 * Duplicate names are merged with ',' in order of appearance. */
static int canonical_headers(struct hdr *h, size_t n, struct irfw_buf *block, struct irfw_buf *signed_list)
{
	qsort(h, n, sizeof(*h), hdr_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && !strcmp(h[i].name, h[i - 1].name)) {
			/* block ends in '\n'; replace it to continue the line. */
			block->len--;
			irfw_buf_putc(block, ',');
		} else {
			if (signed_list->len)
				irfw_buf_putc(signed_list, ';');
			irfw_buf_puts(signed_list, h[i].name);
			irfw_buf_puts(block, h[i].name);
			irfw_buf_putc(block, ':');
		}
		irfw_buf_puts(block, h[i].value);
		irfw_buf_putc(block, '\n');
	}
	if (!block->data)
		irfw_buf_add(block, "", 0);
	if (!signed_list->data)
		irfw_buf_add(signed_list, "", 0);
	return block->failed || signed_list->failed ? -1 : 0;
}

/* HMAC-SHA256 of msg under key, with crypto_lock held. */
static bool hmac_locked(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	size_t len = 0;

	return hmac_ctx && EVP_MAC_init(hmac_ctx, key, keylen, NULL) == 1 &&
	       EVP_MAC_update(hmac_ctx, (const unsigned char *)msg, strlen(msg)) == 1 &&
	       EVP_MAC_final(hmac_ctx, out, &len, 32) == 1 && len == 32;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
 * "aws4_request"), with crypto_lock held. */
static bool derive_key_locked(const struct irfw_sigv4_params *p, const char *date8, unsigned char out[32])
{
	/* Separate buffers: HMAC's key and output never alias. */
	unsigned char k1[32];
	struct irfw_buf key = {0};
	bool ok;

	irfw_buf_puts(&key, "AWS4");
	irfw_buf_puts(&key, p->secret_access_key);
	ok = !key.failed && hmac_locked(key.data, key.len, date8, k1) &&
	     hmac_locked(k1, 32, p->region, out) && hmac_locked(out, 32, p->service, k1) &&
	     hmac_locked(k1, 32, "aws4_request", out);
	if (key.data)
		OPENSSL_cleanse(key.data, key.len);
	irfw_buf_free(&key);
	OPENSSL_cleanse(k1, sizeof(k1));
	return ok;
}

static bool fits(const char *s, size_t size)
{
	return strlen(s) < size;
}

/* signature = hex(HMAC(kSigning, sts)), kSigning from the cache or derived
 * (and then cached). */
static int compute_signature(const struct irfw_sigv4_params *p, const char *date8, const char *sts,
                             char out[65])
{
	unsigned char skey[32], sig[32], sh[32];
	struct signing_key *hit = NULL;
	bool cacheable, ok;

	if (!sha256(p->secret_access_key, strlen(p->secret_access_key), sh))
		return -1;
	cacheable = fits(p->region, sizeof(key_cache[0].region)) &&
	            fits(p->service, sizeof(key_cache[0].service)) &&
	            fits(p->access_key_id, sizeof(key_cache[0].access_key_id));
	pthread_mutex_lock(&crypto_lock);
	for (int i = 0; cacheable && i < KEY_CACHE; i++) {
		struct signing_key *k = &key_cache[i];
		if (k->used && strcmp(k->date8, date8) == 0 && strcmp(k->region, p->region) == 0 &&
		    strcmp(k->service, p->service) == 0 && strcmp(k->access_key_id, p->access_key_id) == 0 &&
		    CRYPTO_memcmp(k->secret_hash, sh, 32) == 0) {
			hit = k;
			break;
		}
	}
	if (hit) {
		memcpy(skey, hit->key, 32);
		ok = true;
	} else {
		ok = derive_key_locked(p, date8, skey);
		if (ok && cacheable) {
			struct signing_key *k = &key_cache[key_next++ % KEY_CACHE];
			k->used = true;
			snprintf(k->date8, sizeof(k->date8), "%s", date8);
			snprintf(k->region, sizeof(k->region), "%s", p->region);
			snprintf(k->service, sizeof(k->service), "%s", p->service);
			snprintf(k->access_key_id, sizeof(k->access_key_id), "%s", p->access_key_id);
			memcpy(k->secret_hash, sh, 32);
			memcpy(k->key, skey, 32);
		}
	}
	ok = ok && hmac_locked(skey, 32, sts, sig);
	pthread_mutex_unlock(&crypto_lock);
	if (ok)
		hex32(sig, out);
	OPENSSL_cleanse(skey, sizeof(skey));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(sh, sizeof(sh));
	return ok ? 0 : -1;
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
	struct irfw_buf hblock = {0}, slist = {0}, creq = {0}, sts = {0}, scope = {0}, tmp = {0};
	char *path = NULL, *cquery = NULL;
	int rc = -1;

	if (!out) {
		irfw_set_err(err, errlen, "sigv4: no result");
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
		irfw_set_err(err, errlen, "sigv4: signing time out of range");
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
		irfw_set_err(err, errlen, "sigv4: invalid or failed payload hash");
		return -1;
	}

	irfw_buf_puts(&scope, date8);
	irfw_buf_putc(&scope, '/');
	irfw_buf_puts(&scope, p->region);
	irfw_buf_putc(&scope, '/');
	irfw_buf_puts(&scope, p->service);
	irfw_buf_puts(&scope, "/aws4_request");
	if (scope.failed)
		goto oom;

	path = canonical_path(req->path, !p->s3_mode, p->s3_mode || p->path_encode_once ? 1 : 2);
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
		irfw_buf_puts(&tmp, p->access_key_id);
		irfw_buf_putc(&tmp, '/');
		irfw_buf_puts(&tmp, scope.data);
		if (tmp.failed)
			goto oom;
		snprintf(expires, sizeof(expires), "%ld", p->presign_expires);
		if (qparam_add_raw(extra, &n_extra, "X-Amz-Algorithm", ALGORITHM) < 0 ||
		    qparam_add_raw(extra, &n_extra, "X-Amz-Credential", tmp.data) < 0 ||
		    qparam_add_raw(extra, &n_extra, "X-Amz-Date", amzdate) < 0 ||
		    qparam_add_raw(extra, &n_extra, "X-Amz-SignedHeaders", slist.data) < 0 ||
		    qparam_add_raw(extra, &n_extra, "X-Amz-Expires", expires) < 0)
			goto oom;
		if (token_signed || token_after) {
			if (qparam_add_raw(extra, &n_extra, "X-Amz-Security-Token", p->session_token) < 0)
				goto oom;
		}
		irfw_buf_free(&tmp);
	}
	/* An unsigned token is sent but kept out of the canonical query; it is
	 * last in extra. */
	cquery = canonical_query(req->query, extra, query_mode && token_after ? n_extra - 1 : n_extra, err,
	                         errlen);
	if (!cquery)
		goto out;

	irfw_buf_puts(&creq, req->method);
	irfw_buf_putc(&creq, '\n');
	irfw_buf_puts(&creq, path);
	irfw_buf_putc(&creq, '\n');
	irfw_buf_puts(&creq, cquery);
	irfw_buf_putc(&creq, '\n');
	irfw_buf_puts(&creq, hblock.data);
	irfw_buf_putc(&creq, '\n');
	irfw_buf_puts(&creq, slist.data);
	irfw_buf_putc(&creq, '\n');
	irfw_buf_puts(&creq, payload_hash);
	if (creq.failed)
		goto oom;

	irfw_sha256_hex(creq.data, creq.len, creq_hash);
	if (!creq_hash[0])
		goto crypto;
	irfw_buf_puts(&sts, ALGORITHM "\n");
	irfw_buf_puts(&sts, amzdate);
	irfw_buf_putc(&sts, '\n');
	irfw_buf_puts(&sts, scope.data);
	irfw_buf_putc(&sts, '\n');
	irfw_buf_puts(&sts, creq_hash);
	if (sts.failed)
		goto oom;

	if (compute_signature(p, date8, sts.data, sig) < 0)
		goto crypto;

	if (query_mode) {
		if (req->query && *req->query) {
			irfw_buf_puts(&tmp, req->query);
			irfw_buf_putc(&tmp, '&');
		}
		/* Wire order as aws-c-auth emits it; the server does not care.  The
		 * names are unreserved, so their encoded form is the name. */
		for (size_t i = 0; i < n_extra; i++) {
			if (i)
				irfw_buf_putc(&tmp, '&');
			irfw_buf_puts(&tmp, extra[i].name);
			irfw_buf_putc(&tmp, '=');
			irfw_buf_puts(&tmp, extra[i].value);
		}
		irfw_buf_puts(&tmp, "&X-Amz-Signature=");
		irfw_buf_puts(&tmp, sig);
		out->query = irfw_buf_take(&tmp);
		if (!out->query)
			goto oom;
	} else {
		if (add_out(out, "X-Amz-Date", amzdate) < 0)
			goto oom;
		if (p->session_token && add_out(out, "X-Amz-Security-Token", p->session_token) < 0)
			goto oom;
		if (p->sign_body && add_out(out, "x-amz-content-sha256", payload_hash) < 0)
			goto oom;
		irfw_buf_puts(&tmp, ALGORITHM " Credential=");
		irfw_buf_puts(&tmp, p->access_key_id);
		irfw_buf_putc(&tmp, '/');
		irfw_buf_puts(&tmp, scope.data);
		irfw_buf_puts(&tmp, ", SignedHeaders=");
		irfw_buf_puts(&tmp, slist.data);
		irfw_buf_puts(&tmp, ", Signature=");
		irfw_buf_puts(&tmp, sig);
		if (tmp.failed)
			goto oom;
		if (add_out(out, "Authorization", tmp.data) < 0)
			goto oom;
	}
	out->canonical_request = irfw_buf_take(&creq);
	out->string_to_sign = irfw_buf_take(&sts);
	out->signature = strdup(sig);
	if (!out->canonical_request || !out->string_to_sign || !out->signature)
		goto oom;
	rc = 0;
	goto out;
crypto:
	irfw_set_err(err, errlen, "sigv4: OpenSSL SHA-256/HMAC failed");
	goto out;
oom:
	irfw_set_err(err, errlen, "sigv4: out of memory");
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
	if (tmp.data)
		OPENSSL_cleanse(tmp.data, tmp.len);
	irfw_buf_free(&tmp);
	irfw_buf_free(&hblock);
	irfw_buf_free(&slist);
	irfw_buf_free(&creq);
	irfw_buf_free(&sts);
	irfw_buf_free(&scope);
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
