/*
 * sigv4.h - AWS Signature Version 4 request signing (internal to libirfw).
 *
 * The signer is pure computation: it never touches the network and never
 * logs.  The HTTP client hands it each request exactly as it will go on the
 * wire (minus the path encoding, which the signer owns) and adds what comes
 * back: either headers (header mode) or a replacement query string
 * (presign/query mode).
 *
 * Secrets (the secret key, the session token, the signature, the
 * Authorization header and presigned query strings) must never be logged.
 * canonical_request and string_to_sign hold no secret unless a signed
 * session token is in use: log them only at debug level and only without a
 * token.
 */
#ifndef IRFW_CORE_SIGV4_H
#define IRFW_CORE_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

/** One header or query parameter; both strings are borrowed. */
struct irfw_kv {
	const char *name;
	const char *value;
};

/** The request to sign.  Every pointer is borrowed for the call only. */
struct irfw_sigv4_request {
	const char *method; /* "GET", "POST", ... */
	/* The raw, NOT percent-encoded path ("/my key/\xe1\x88\xb4"); NULL or
	 * "" means "/".  The signer encodes it for the canonical URI. */
	const char *path;
	/* The query string as on the wire, without '?', or NULL.  Each name and
	 * value is percent-decoded then re-encoded; '+' is a literal plus. */
	const char *query;
	/* The headers as they will be sent, Host included; names in any case,
	 * duplicates allowed.  Must not contain X-Amz-Date, Authorization or
	 * X-Amz-Security-Token (the signer adds them), nor
	 * x-amz-content-sha256 when sign_body is set. */
	const struct irfw_kv *headers;
	size_t n_headers;
	const void *body;
	size_t body_len;
	/* Hex SHA-256 of the body, "UNSIGNED-PAYLOAD" or
	 * "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"; NULL = hash body/body_len. */
	const char *payload_hash;
};

/** Who signs, for what, and how. */
struct irfw_sigv4_params {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL for long-term credentials */
	const char *region;
	const char *service;
	time_t when; /* signing time, UTC */
	/* true (S3): the path is neither normalised nor encoded twice, because
	 * S3 keys may contain "//" and "." segments.  false (every other
	 * service): remove "." and ".." segments and empty segments, then
	 * percent-encode the path twice. */
	bool s3_mode;
	/* Non-S3 only: normalise, but percent-encode the path once.  No real
	 * service wants this; it exists because the aws-c-auth test suite feeds
	 * literal paths ("/example space/") to a signer that encodes once more
	 * than the wire, so its expected results are one pass from raw. */
	bool path_encode_once;
	/* Header mode: add a signed x-amz-content-sha256 header carrying the
	 * payload hash.  S3 requires it on every request. */
	bool sign_body;
	/* Add the session token after signing, outside the signature (some
	 * services want it so). */
	bool omit_session_token;
	/* > 0: query (presign) mode with this X-Amz-Expires, at most 604800. */
	long presign_expires;
};

/** What the signer produced.  Free with irfw_sigv4_result_free(). */
struct irfw_sigv4_result {
	char *canonical_request; /* for tests and debug logs */
	char *string_to_sign;
	char *signature; /* hex; secret-equivalent, never log */
	/* Header mode: headers the caller must ADD, in this order: X-Amz-Date,
	 * [X-Amz-Security-Token], [x-amz-content-sha256], Authorization.
	 * Empty in query mode. */
	struct {
		char *name;
		char *value;
	} add[4];
	size_t n_add;
	/* Query mode: the complete query string to send (the original one as
	 * given, then the X-Amz-* parameters, X-Amz-Signature last).  NULL in
	 * header mode. */
	char *query;
};

/**
 * Sign a request.
 *
 * Fills *out (which need not be initialised) and returns 0.  On error
 * returns -1, leaves *out empty (safe to free) and writes a message to err
 * (if err is not NULL), which never contains a secret.
 */
int irfw_sigv4_sign(const struct irfw_sigv4_request *req, const struct irfw_sigv4_params *p,
                    struct irfw_sigv4_result *out, char *err, size_t errlen);

/** Free everything in *r and zero it; r may be NULL.  Secrets are wiped. */
void irfw_sigv4_result_free(struct irfw_sigv4_result *r);

/**
 * Percent-encode len bytes of s the SigV4 way, which is also the right way to
 * build wire paths and query strings: RFC 3986 unreserved characters
 * (A-Z a-z 0-9 - . _ ~) are kept, every other byte becomes %XX with
 * uppercase hex (a space is %20, never '+'); '/' is kept when keep_slash.
 * Returns a malloc'd NUL-terminated string, or NULL when out of memory.
 */
char *irfw_uri_encode(const char *s, size_t len, bool keep_slash);

/** Write the lowercase hex SHA-256 of data[0..len) and a NUL into out. */
void irfw_sha256_hex(const void *data, size_t len, char out[65]);

/** SHA-256 of data as lowercase hex into hex[65] and/or base64 into b64[45]
 * (either may be NULL): the one implementation, which the SDK's
 * irfw_sha256 and S3's checksums both use. */
void irfw_sha256_encoded(const void *data, size_t len, char hex[65], char b64[45]);

/** The hex form of a base64 SHA-256 digest (44 characters, one '=' pad);
 * false, hex untouched, for anything else. */
bool irfw_sha256_b64_to_hex(const char *b64, char hex[65]);

/** SHA-256 as fetched once for the library (EVP_sha256() is looked up by
 * name on every digest in OpenSSL 3), for the digests of the case record
 * and the SDK; NULL if OpenSSL has none. */
const EVP_MD *irfw_sha256_md(void);

#endif /* IRFW_CORE_SIGV4_H */
