/*
 * fuzz_sigv4.c - libFuzzer target: the SigV4 signer's canonicaliser
 * (core/aws/sigv4.c: path normalisation and encoding, query decoding,
 * re-encoding and sorting, header folding) through irfw_sigv4_sign() with
 * fixed keys, in header and presign mode.  Nothing is compared: a run
 * passes when nothing crashes, no UB, no leak.
 *
 * Input: one flags byte, then NUL-separated fields: method, path, query,
 * then header name, header value, ...; an unpaired last field is the body.
 * Flags: 1 s3_mode, 2 path_encode_once, 4 sign_body, 8 presign,
 * 16 session token, 32 omit_session_token, 64 UNSIGNED-PAYLOAD,
 * 128 no Host header added (the signer must refuse).
 */
#include "fuzz_common.h"

#include <stdbool.h>
#include <strings.h>

#include "aws/sigv4.h"

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[MAX_FIELDS];
	struct irfw_kv h[MAX_FIELDS / 2 + 1];
	struct irfw_sigv4_request rq = {0};
	struct irfw_sigv4_params p = {
	    .access_key_id = "AKIDEXAMPLE",
	    .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	    .region = "us-east-1",
	    .service = "service",
	    .when = 1440938160, /* 20150830T123600Z, the aws-c-auth suite's */
	};
	struct irfw_sigv4_result out;
	char err[256];
	size_t n, nh = 0;
	uint8_t fl;
	bool has_host;
	int rc;

	if (size < 1)
		return 0;
	fl = data[0];
	n = fuzz_fields(data + 1, size - 1, f, MAX_FIELDS);
	p.s3_mode = fl & 1;
	p.path_encode_once = fl & 2;
	p.sign_body = fl & 4;
	p.presign_expires = (fl & 8) ? 86400 : 0;
	p.session_token =
	    (fl & 16) ? "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW" : NULL;
	p.omit_session_token = fl & 32;
	rq.payload_hash = (fl & 64) ? "UNSIGNED-PAYLOAD" : NULL;
	rq.method = n > 0 ? f[0] : "GET";
	rq.path = n > 1 ? f[1] : NULL;
	rq.query = n > 2 && f[2][0] ? f[2] : NULL;
	has_host = !(fl & 128);
	if (has_host)
		h[nh++] = (struct irfw_kv){"Host", "example.amazonaws.com"};
	for (size_t i = 3; i + 1 < n; i += 2) {
		h[nh++] = (struct irfw_kv){f[i], f[i + 1]};
		if (strcasecmp(f[i], "host") == 0)
			has_host = true;
	}
	if (n > 3 && (n - 3) % 2 == 1) {
		rq.body = f[n - 1];
		rq.body_len = strlen(f[n - 1]);
	}
	rq.headers = h;
	rq.n_headers = nh;

	rc = irfw_sigv4_sign(&rq, &p, &out, err, sizeof(err));
	if (rc == 0) {
		FUZZ_ASSERT(out.canonical_request && out.string_to_sign && out.signature);
		FUZZ_ASSERT(strlen(out.signature) == 64);
		FUZZ_ASSERT(p.presign_expires ? out.query != NULL : out.n_add >= 2);
	} else {
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(!out.canonical_request && !out.query && out.n_add == 0);
	}
	/* SigV4 must sign Host: a request without one is refused. */
	if (!has_host)
		FUZZ_ASSERT(rc != 0);
	irfw_sigv4_result_free(&out);

	/* The encoder the client builds wire paths with. */
	if (rq.path) {
		char *e = irfw_uri_encode(rq.path, strlen(rq.path), !p.s3_mode);
		FUZZ_ASSERT(e != NULL);
		free(e);
	}
	fuzz_fields_free(f, n);
	return 0;
}
