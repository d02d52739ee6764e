/*
 * awsxml.h - turn AWS reply bodies into cJSON and AWS error replies into
 * one irfw_aws_error value.  Internal to libirfw.
 */
#ifndef IRFW_CORE_AWSXML_H
#define IRFW_CORE_AWSXML_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

/* Limits of irfw_xml_to_json(). */
#define IRFW_XML_MAX_DEPTH 64
#define IRFW_XML_MAX_BYTES ((size_t)64 << 20)

/**
 * Convert an AWS XML reply (EC2, query services, S3) to cJSON with expat.
 *
 * Returns an object holding the children of the root element (the root's
 * name is dropped).  Elements are keyed by local name; namespaces and
 * attributes are ignored.  Mapping of an element's value:
 *  - only text: a string (entities and CDATA decoded); text that is empty
 *    or whitespace only gives "" (pretty-printed empty sets look like that);
 *  - children named `item` or `member`: an array of the children's values;
 *  - other children: an object; a name repeated among siblings becomes an
 *    array of the values in document order (one `<Contents>` stays an
 *    object, two become an array: read such keys with irfw_json_list_*);
 *  - text between child elements is dropped.
 * A root holding only text gives {"RootName": "text"}; an empty root {}.
 *
 * `xml` need not be NUL-terminated.  Documents larger than
 * IRFW_XML_MAX_BYTES, nested deeper than IRFW_XML_MAX_DEPTH, carrying a
 * DOCTYPE, or malformed are refused: returns NULL and writes a message (for
 * malformed XML expat's, with line and column) to err (may be NULL).
 * The caller frees the result with cJSON_Delete.
 */
cJSON *irfw_xml_to_json(const char *xml, size_t len, char *err, size_t errlen);

/**
 * Number of entries of a value that may be a list: an array counts its
 * items; NULL, cJSON null and "" count 0; any other value counts 1.
 * Lets callers treat "one <Contents>", "many <Contents>" and an empty set
 * alike.
 */
int irfw_json_list_len(const cJSON *v);

/**
 * Entry `i` of a value as counted by irfw_json_list_len(): an array's item,
 * the value itself for i == 0, or NULL when out of range.  O(i) for arrays;
 * walk big arrays with cJSON_ArrayForEach instead.
 */
const cJSON *irfw_json_list_at(const cJSON *v, int i);

/** An AWS error, or a transport error with http_status 0. */
struct irfw_aws_error {
	long http_status;   /* 0 for transport errors */
	char code[128];     /* "AccessDenied", "InvalidInstanceID.NotFound", or
	                     * "HTTP500" etc. for replies that are not AWS errors */
	char message[1024]; /* "" when the reply had none */
	char request_id[128];
};

/** Protocol of the service that answered. */
enum irfw_wire { IRFW_WIRE_EC2, IRFW_WIRE_QUERY, IRFW_WIRE_REST_XML, IRFW_WIRE_JSON };

/**
 * Fill *e from an error reply of HTTP status `http_status`.
 *
 * The body is read by its first non-space character whatever `wire` says
 * (moto answers some JSON services with XML errors): '<' as an EC2, query
 * or S3 XML error document, '{' as a JSON error (`__type`/`code`, with any
 * "prefix#" and ":suffix" stripped; `message`/`Message`).  `wire` matters
 * only for bodiless replies: on IRFW_WIRE_REST_XML (S3 HEAD) 404, 403 and
 * 301 become NotFound, Forbidden and PermanentRedirect.  Anything else
 * (an HTML error page, an empty body) gets code "HTTP<status>" and a short
 * summary as message.
 *
 * header_request_id (x-amzn-RequestId, x-amz-request-id or x-amz-id-2) is
 * used when the body has no request id; header_error_type (X-Amzn-ErrorType)
 * when the body has no code.  Both may be NULL.  `body` need not be
 * NUL-terminated and may be NULL when len is 0.  Fields are truncated to
 * fit (never inside a UTF-8 sequence), control characters become spaces, and
 * e->code is never empty.
 */
void irfw_aws_error_parse(enum irfw_wire wire, long http_status, const char *body, size_t len,
                          const char *header_request_id, const char *header_error_type,
                          struct irfw_aws_error *e);

/** True when AWS asked us to slow down (throttling codes or HTTP 429). */
bool irfw_aws_error_is_throttle(const struct irfw_aws_error *e);

/**
 * True when the same request may succeed if sent again: throttling, HTTP
 * 500/502/503/504, transient AWS codes (InternalError, RequestTimeout, ...)
 * and the transport codes "Timeout" and "ConnectionError" with status 0.
 */
bool irfw_aws_error_is_retryable(const struct irfw_aws_error *e);

#endif /* IRFW_CORE_AWSXML_H */
