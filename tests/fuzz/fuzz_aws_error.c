/*
 * fuzz_aws_error.c - libFuzzer target: an AWS error reply through
 * irfw_aws_error_parse() (core/aws/xml.c), for each wire protocol.
 *
 * Input: one control byte, then the body.  Control byte bits 0-1: the
 * wire (EC2, query, REST-XML, JSON); bits 2-4: the HTTP status (from the
 * table below); bit 5: a request id header; bit 6: an X-Amzn-ErrorType
 * header; bit 7: pass a NULL body when it is empty.
 */
#include "fuzz_common.h"

#include "aws/xml.h"

static const long statuses[8] = {400, 403, 404, 301, 500, 503, 429, 412};

/* The promises of xml.h: NUL-terminated fields, no control character, a
 * code that is never empty. */
static void check_field(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	FUZZ_ASSERT(n < cap);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct irfw_aws_error e;
	enum irfw_wire wire;
	uint8_t ctl;
	const char *body;

	if (size < 1)
		return 0;
	ctl = data[0];
	wire = (enum irfw_wire)(ctl & 3);
	body = (const char *)data + 1;
	if (size == 1 && (ctl & 0x80))
		body = NULL;
	irfw_aws_error_parse(wire, statuses[(ctl >> 2) & 7], body, size - 1,
	                     (ctl & 0x20) ? "hdr-4a5b-request-id" : NULL,
	                     (ctl & 0x40) ? "com.amazon.coral#HeaderErrorType:http://x/" : NULL, &e);
	FUZZ_ASSERT(e.http_status == statuses[(ctl >> 2) & 7]);
	check_field(e.code, sizeof(e.code));
	check_field(e.message, sizeof(e.message));
	check_field(e.request_id, sizeof(e.request_id));
	FUZZ_ASSERT(e.code[0] != '\0');
	(void)irfw_aws_error_is_throttle(&e);
	(void)irfw_aws_error_is_retryable(&e);
	return 0;
}
