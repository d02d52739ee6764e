/*
 * awsxml.c - AWS reply bodies to cJSON, and error replies to irfw_aws_error.
 */
#define _POSIX_C_SOURCE 200809L

#include "xml.h"

#include "buf.h"

#include <expat.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef XML_UNICODE
#error "irfw needs expat built with char (UTF-8) XML_Char"
#endif

/* Cannot occur in a namespace URI or an XML name, so the last one in an
 * expanded name always separates the URI from the local name. */
#define NS_SEP '\x01'

#if defined(__GNUC__)
#define AWSXML_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AWSXML_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------ */
/* XML to JSON                                                          */

/* One open element. */
struct xml_frame {
	char *name;       /* local name */
	cJSON *container; /* NULL until the first child element starts */
	cJSON **repeated; /* arrays in container built from repeated siblings */
	size_t nrepeated;
	char *text; /* character data while no child has been seen */
	size_t text_len;
	size_t text_cap;
};

struct xml_state {
	XML_Parser parser;
	struct xml_frame stack[IRFW_XML_MAX_DEPTH];
	int depth;
	cJSON *result;
	bool failed;
	char errmsg[160];
};

static void frame_free(struct xml_frame *f)
{
	free(f->name);
	cJSON_Delete(f->container);
	free(f->repeated);
	free(f->text);
	memset(f, 0, sizeof(*f));
}

static void xml_fail(struct xml_state *st, const char *fmt, ...) AWSXML_PRINTF(2, 3);

static void xml_fail(struct xml_state *st, const char *fmt, ...)
{
	va_list ap;

	if (st->failed)
		return;
	st->failed = true;
	va_start(ap, fmt);
	vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
	va_end(ap);
	XML_StopParser(st->parser, XML_FALSE);
}

static unsigned long long xml_line(const struct xml_state *st)
{
	return (unsigned long long)XML_GetCurrentLineNumber(st->parser);
}

static const char *local_name(const XML_Char *name)
{
	const char *sep = strrchr(name, NS_SEP);

	return sep ? sep + 1 : name;
}

static bool is_list_entry(const char *name)
{
	return strcmp(name, "item") == 0 || strcmp(name, "member") == 0;
}

static bool is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

static bool frame_is_repeated(const struct xml_frame *f, const cJSON *item)
{
	for (size_t i = 0; i < f->nrepeated; i++)
		if (f->repeated[i] == item)
			return true;
	return false;
}

/* Add `value` under `name` to the parent's container; takes ownership. */
static bool frame_attach(struct xml_frame *parent, const char *name, cJSON *value)
{
	cJSON *c = parent->container, *old, *arr, **grown;

	if (cJSON_IsArray(c)) {
		cJSON_AddItemToArray(c, value);
		return true;
	}
	old = cJSON_GetObjectItemCaseSensitive(c, name);
	if (!old) {
		if (!cJSON_AddItemToObject(c, name, value))
			goto fail;
		return true;
	}
	/* An array made by an <item> list is a value of its own and must not
	 * swallow a repeated sibling; only arrays we built by repetition grow. */
	if (frame_is_repeated(parent, old)) {
		cJSON_AddItemToArray(old, value);
		return true;
	}
	grown = realloc(parent->repeated, (parent->nrepeated + 1) * sizeof(*grown));
	if (!grown)
		goto fail;
	parent->repeated = grown;
	arr = cJSON_CreateArray();
	if (!arr)
		goto fail;
	cJSON_DetachItemViaPointer(c, old);
	cJSON_free(old->string);
	old->string = NULL;
	cJSON_AddItemToArray(arr, old);
	cJSON_AddItemToArray(arr, value);
	if (!cJSON_AddItemToObject(c, name, arr)) {
		cJSON_Delete(arr);
		return false;
	}
	parent->repeated[parent->nrepeated++] = arr;
	return true;
fail:
	cJSON_Delete(value);
	return false;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xml_state *st = ud;
	struct xml_frame *f;
	const char *local = local_name(name);

	(void)atts;
	if (st->failed)
		return;
	if (st->depth >= IRFW_XML_MAX_DEPTH) {
		xml_fail(st, "XML nested deeper than %d elements at line %llu", IRFW_XML_MAX_DEPTH,
		         xml_line(st));
		return;
	}
	if (st->depth > 0) {
		struct xml_frame *parent = &st->stack[st->depth - 1];

		if (!parent->container) {
			/* The root always maps to an object: the caller expects one. */
			bool list = st->depth > 1 && is_list_entry(local);

			parent->container = list ? cJSON_CreateArray() : cJSON_CreateObject();
			if (!parent->container) {
				xml_fail(st, "out of memory");
				return;
			}
			free(parent->text);
			parent->text = NULL;
			parent->text_len = parent->text_cap = 0;
		}
	}
	f = &st->stack[st->depth];
	memset(f, 0, sizeof(*f));
	f->name = strdup(local);
	if (!f->name) {
		xml_fail(st, "out of memory");
		return;
	}
	st->depth++;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xml_state *st = ud;
	struct xml_frame *f;
	cJSON *value;

	(void)name;
	if (st->failed || st->depth == 0)
		return;
	f = &st->stack[st->depth - 1];
	if (f->container) {
		value = f->container;
		f->container = NULL;
	} else if (f->text_len == 0 || is_blank(f->text, f->text_len)) {
		value = cJSON_CreateString("");
	} else {
		value = cJSON_CreateString(f->text);
	}
	if (!value) {
		xml_fail(st, "out of memory");
		return;
	}
	if (st->depth == 1) {
		if (cJSON_IsObject(value)) {
			st->result = value;
		} else {
			st->result = cJSON_CreateObject();
			if (!st->result || (value->valuestring[0] != '\0' &&
			                    !cJSON_AddItemToObject(st->result, f->name, value))) {
				cJSON_Delete(value);
				xml_fail(st, "out of memory");
				return;
			}
			if (value->valuestring[0] == '\0')
				cJSON_Delete(value);
		}
	} else if (!frame_attach(&st->stack[st->depth - 2], f->name, value)) {
		xml_fail(st, "out of memory");
		return;
	}
	frame_free(f);
	st->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct xml_state *st = ud;
	struct xml_frame *f;
	size_t n = (size_t)len;

	if (st->failed || st->depth == 0 || len <= 0)
		return;
	f = &st->stack[st->depth - 1];
	if (f->container)
		return; /* whitespace or stray text between child elements */
	if (f->text_len + n + 1 > f->text_cap) {
		size_t cap = f->text_cap ? f->text_cap : 64;
		char *p;

		while (cap < f->text_len + n + 1)
			cap *= 2;
		p = realloc(f->text, cap);
		if (!p) {
			xml_fail(st, "out of memory");
			return;
		}
		f->text = p;
		f->text_cap = cap;
	}
	memcpy(f->text + f->text_len, s, n);
	f->text_len += n;
	f->text[f->text_len] = '\0';
}

/* AWS never sends a DTD; refusing it rules out entity-expansion tricks. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset)
{
	struct xml_state *st = ud;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	xml_fail(st, "XML DOCTYPE not accepted (line %llu)", xml_line(st));
}

cJSON *irfw_xml_to_json(const char *xml, size_t len, char *err, size_t errlen)
{
	struct xml_state st;
	cJSON *out = NULL;

	memset(&st, 0, sizeof(st));
	irfw_set_err(err, errlen, "%s", "");
	if (len > IRFW_XML_MAX_BYTES) {
		irfw_set_err(err, errlen, "XML reply of %zu bytes exceeds the %zu-byte limit", len,
		             IRFW_XML_MAX_BYTES);
		return NULL;
	}
	st.parser = XML_ParserCreateNS(NULL, NS_SEP);
	if (!st.parser) {
		irfw_set_err(err, errlen, "out of memory");
		return NULL;
	}
	XML_SetUserData(st.parser, &st);
	XML_SetElementHandler(st.parser, on_start, on_end);
	XML_SetCharacterDataHandler(st.parser, on_text);
	XML_SetStartDoctypeDeclHandler(st.parser, on_doctype);

	if (XML_Parse(st.parser, xml ? xml : "", (int)len, XML_TRUE) == XML_STATUS_ERROR || st.failed) {
		if (st.failed)
			irfw_set_err(err, errlen, "%s", st.errmsg);
		else
			irfw_set_err(err, errlen, "XML error at line %llu, column %llu: %s", xml_line(&st),
			             (unsigned long long)XML_GetCurrentColumnNumber(st.parser),
			             XML_ErrorString(XML_GetErrorCode(st.parser)));
		goto out;
	}
	if (!st.result) {
		irfw_set_err(err, errlen, "XML reply has no root element");
		goto out;
	}
	out = st.result;
	st.result = NULL;
out:
	while (st.depth > 0)
		frame_free(&st.stack[--st.depth]);
	cJSON_Delete(st.result);
	XML_ParserFree(st.parser);
	return out;
}

int irfw_json_list_len(const cJSON *v)
{
	if (!v || cJSON_IsNull(v) || cJSON_IsInvalid(v))
		return 0;
	if (cJSON_IsArray(v))
		return cJSON_GetArraySize(v);
	if (cJSON_IsString(v) && (!v->valuestring || v->valuestring[0] == '\0'))
		return 0;
	return 1;
}

const cJSON *irfw_json_list_at(const cJSON *v, int i)
{
	if (i < 0 || i >= irfw_json_list_len(v))
		return NULL;
	if (cJSON_IsArray(v))
		return cJSON_GetArrayItem(v, i);
	return v;
}

/* ------------------------------------------------------------------ */
/* Error replies                                                        */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive search for NUL-terminated `needle` in s[from..len). */
static size_t ci_find(const char *s, size_t len, size_t from, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = from; i + m <= len; i++) {
		size_t k = 0;

		while (k < m && ascii_lower(s[i + k]) == needle[k])
			k++;
		if (k == m)
			return i;
	}
	return SIZE_MAX;
}

/* Copy src[0..n) into dst[cap] without leading/trailing blanks, cutting
 * before an incomplete UTF-8 sequence and turning control characters into
 * spaces so a reply cannot forge log lines. */
static void copy_field(char *dst, size_t cap, const char *src, size_t n)
{
	size_t i;

	while (n > 0 && is_space(*src)) {
		src++;
		n--;
	}
	while (n > 0 && is_space(src[n - 1]))
		n--;
	if (n > cap - 1) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[i] = '\0';
}

/* "com.amazonaws.kms#NotFoundException" and
 * "NotFoundException:http://internal.amazon.com/..." both mean
 * "NotFoundException". */
static void set_code(struct irfw_aws_error *e, const char *s)
{
	const char *hash = strrchr(s, '#');

	if (hash)
		s = hash + 1;
	copy_field(e->code, sizeof(e->code), s, strcspn(s, ":"));
}

/* First non-empty string among keys[] in object o, or NULL. */
static const char *json_str(const cJSON *o, const char *const *keys)
{
	for (; *keys; keys++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *keys);

		if (cJSON_IsString(v) && v->valuestring && v->valuestring[0])
			return v->valuestring;
	}
	return NULL;
}

static const char *const code_keys[] = {"Code", NULL};
static const char *const message_keys[] = {"Message", "message", NULL};
static const char *const request_id_keys[] = {"RequestId", "RequestID", "requestId", NULL};

/* EC2 <Response><Errors><Error>, query <ErrorResponse><Error>, S3 <Error>. */
static void parse_xml_error(const char *body, size_t len, struct irfw_aws_error *e)
{
	cJSON *doc = irfw_xml_to_json(body, len, NULL, 0);
	const cJSON *err = NULL, *x;
	const char *s;

	if (!doc)
		return;
	if (json_str(doc, code_keys)) {
		err = doc;
	} else if ((x = irfw_json_list_at(cJSON_GetObjectItemCaseSensitive(doc, "Error"), 0)) &&
	           json_str(x, code_keys)) {
		err = x;
	} else if ((x = irfw_json_list_at(cJSON_GetObjectItemCaseSensitive(doc, "Errors"), 0)) &&
	           (x = irfw_json_list_at(cJSON_GetObjectItemCaseSensitive(x, "Error"), 0)) &&
	           json_str(x, code_keys)) {
		err = x;
	}
	if (err) {
		set_code(e, json_str(err, code_keys));
		if ((s = json_str(err, message_keys)))
			copy_field(e->message, sizeof(e->message), s, strlen(s));
	}
	s = json_str(doc, request_id_keys);
	if (!s && err)
		s = json_str(err, request_id_keys);
	if (s)
		copy_field(e->request_id, sizeof(e->request_id), s, strlen(s));
	cJSON_Delete(doc);
}

/* JSON 1.0/1.1 {"__type": ..., "message": ...} and REST-JSON {"code": ...}. */
static void parse_json_error(const char *body, size_t len, struct irfw_aws_error *e)
{
	static const char *const type_keys[] = {"__type", "code", "Code", NULL};
	static const char *const msg_keys[] = {"message", "Message", "errorMessage", NULL};
	cJSON *doc = cJSON_ParseWithLength(body, len);
	const char *s;

	if (!cJSON_IsObject(doc))
		goto out;
	if ((s = json_str(doc, type_keys)))
		set_code(e, s);
	if ((s = json_str(doc, msg_keys)))
		copy_field(e->message, sizeof(e->message), s, strlen(s));
	if ((s = json_str(doc, request_id_keys)))
		copy_field(e->request_id, sizeof(e->request_id), s, strlen(s));
out:
	cJSON_Delete(doc);
}

/* Append s[0..n) to out[*pos..limit) collapsing blanks and control
 * characters into one space and dropping non-ASCII bytes (a cut there
 * could split a UTF-8 sequence). */
static void append_printable(char *out, size_t *pos, size_t limit, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *pos < limit; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f) {
			if (*pos > 0 && out[*pos - 1] != ' ')
				out[(*pos)++] = ' ';
		} else if (c < 0x7f) {
			out[(*pos)++] = (char)c;
		}
	}
	while (*pos > 0 && out[*pos - 1] == ' ')
		(*pos)--;
	out[*pos] = '\0';
}

#define SUMMARY_CHARS 100

/* A short description of a reply that is no AWS error document: its HTML
 * <title> if any (a plain search, not parsing), else its first characters. */
static void summarize_body(const char *body, size_t len, char out[SUMMARY_CHARS + 1])
{
	size_t pos = 0, start, end;

	out[0] = '\0';
	start = ci_find(body, len, 0, "<title");
	if (start != SIZE_MAX) {
		start = ci_find(body, len, start, ">");
		if (start != SIZE_MAX) {
			start++;
			end = ci_find(body, len, start, "</title");
			append_printable(out, &pos, SUMMARY_CHARS, body + start,
			                 (end == SIZE_MAX ? len : end) - start);
		}
	}
	if (pos == 0)
		append_printable(out, &pos, SUMMARY_CHARS, body, len);
}

/* Bodiless replies: S3 answers HEAD errors with the status alone. */
static void empty_reply(enum irfw_wire wire, long status, struct irfw_aws_error *e)
{
	const char *code = NULL;

	if (wire == IRFW_WIRE_REST_XML) {
		switch (status) {
		case 301:
			code = "PermanentRedirect";
			break;
		case 400:
			code = "BadRequest";
			break;
		case 403:
			code = "Forbidden";
			break;
		case 404:
			code = "NotFound";
			break;
		case 412:
			code = "PreconditionFailed";
			break;
		default:
			break;
		}
	}
	if (code)
		snprintf(e->code, sizeof(e->code), "%s", code);
	else
		snprintf(e->code, sizeof(e->code), "HTTP%ld", status);
	snprintf(e->message, sizeof(e->message), "empty reply (HTTP %ld)", status);
}

void irfw_aws_error_parse(enum irfw_wire wire, long http_status, const char *body, size_t len,
                          const char *header_request_id, const char *header_error_type,
                          struct irfw_aws_error *e)
{
	size_t i = 0;

	memset(e, 0, sizeof(*e));
	e->http_status = http_status;
	if (!body)
		len = 0;
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && is_space(body[i]))
		i++;

	/* Sniff the body: moto sends XML errors for JSON services. */
	if (i < len && body[i] == '<')
		parse_xml_error(body + i, len - i, e);
	else if (i < len && body[i] == '{')
		parse_json_error(body + i, len - i, e);

	if (!e->code[0] && header_error_type && header_error_type[0])
		set_code(e, header_error_type);
	if (!e->code[0]) {
		if (i == len) {
			empty_reply(wire, http_status, e);
		} else {
			char summary[SUMMARY_CHARS + 1];

			summarize_body(body, len, summary);
			snprintf(e->code, sizeof(e->code), "HTTP%ld", http_status);
			snprintf(e->message, sizeof(e->message), "non-AWS reply (HTTP %ld, %zu bytes): %s",
			         http_status, len, summary);
		}
	}
	if (!e->request_id[0] && header_request_id)
		copy_field(e->request_id, sizeof(e->request_id), header_request_id,
		           strlen(header_request_id));
	if (!e->code[0])
		snprintf(e->code, sizeof(e->code), "HTTP%ld", http_status);
}

static bool code_in(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(code, *list) == 0)
			return true;
	return false;
}

bool irfw_aws_error_is_throttle(const struct irfw_aws_error *e)
{
	static const char *const throttle_codes[] = {
	    "Throttling",
	    "ThrottlingException",
	    "ThrottledException",
	    "RequestThrottledException",
	    "TooManyRequestsException",
	    "ProvisionedThroughputExceededException",
	    "TransactionInProgressException",
	    "RequestLimitExceeded",
	    "BandwidthLimitExceeded",
	    "LimitExceededException",
	    "RequestThrottled",
	    "SlowDown",
	    "PriorRequestNotComplete",
	    "EC2ThrottledException",
	    NULL,
	};

	return e->http_status == 429 || code_in(e->code, throttle_codes);
}

bool irfw_aws_error_is_retryable(const struct irfw_aws_error *e)
{
	static const char *const transient_codes[] = {
	    "RequestTimeout",
	    "RequestTimeoutException",
	    "InternalError",
	    "InternalFailure",
	    "ServiceUnavailable",
	    "IDPCommunicationError",
	    NULL,
	};
	static const char *const transport_codes[] = {"Timeout", "ConnectionError", NULL};

	if (irfw_aws_error_is_throttle(e))
		return true;
	switch (e->http_status) {
	case 500:
	case 502:
	case 503:
	case 504:
		return true;
	default:
		break;
	}
	if (code_in(e->code, transient_codes))
		return true;
	return e->http_status == 0 && code_in(e->code, transport_codes);
}
