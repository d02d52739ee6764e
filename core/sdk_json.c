/*
 * sdk_json.c - what the SDK gives a plugin for AWS results and requests:
 * one shape of result whatever the protocol, getters that read what every
 * protocol sends, a paginator, and builders for EC2's Filter.N and
 * TagSpecification.N.  Plugins used to carry a copy of each of these, and
 * each copy knew one protocol's quirks.
 */
/* gmtime_r, strdup */
#define _POSIX_C_SOURCE 200809L

#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/protocol.h"
#include "sdk_json.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"

/* Modules built for an older minor keep the wire's tree: they were written
 * to unwrap it themselves, and a minor bump must not break them. */
#define NEUTRAL_SINCE_MINOR 2

/* ------------------------------------------------------------------ */
/* Getters.                                                            */

const char *irfw_json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *irfw_json_text(const cJSON *obj, const char *key)
{
	const char *s = irfw_json_str(obj, key);
	return s && *s ? s : NULL;
}

/* A whole decimal number, optional sign, nothing around it. */
static bool decimal(const char *s, long *out)
{
	const char *d = s + (*s == '-' || *s == '+');
	if (*d < '0' || *d > '9')
		return false; /* strtol would skip blanks and take "" as 0 */
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

long irfw_json_long(const cJSON *obj, const char *key, long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	long l;
	if (cJSON_IsNumber(v))
		/* -(double)LONG_MIN is 2^63 exactly, which LONG_MAX is not. */
		return v->valuedouble >= (double)LONG_MIN && v->valuedouble < -(double)LONG_MIN
		           ? (long)v->valuedouble
		           : def;
	if (cJSON_IsString(v) && decimal(v->valuestring, &l))
		return l;
	return def;
}

int irfw_json_int(const cJSON *obj, const char *key, int def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	long l;
	if (cJSON_IsNumber(v))
		return v->valueint;
	if (cJSON_IsString(v) && decimal(v->valuestring, &l) && l >= INT_MIN && l <= INT_MAX)
		return (int)l;
	return def;
}

bool irfw_json_bool(const cJSON *obj, const char *key, bool def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	if (cJSON_IsString(v) && strcmp(v->valuestring, "true") == 0)
		return true;
	if (cJSON_IsString(v) && strcmp(v->valuestring, "false") == 0)
		return false;
	return def;
}

static const cJSON *list_of(const cJSON *obj, const char *key)
{
	return key ? cJSON_GetObjectItemCaseSensitive(obj, key) : obj;
}

int irfw_json_list_count(const cJSON *obj, const char *key)
{
	const cJSON *v = list_of(obj, key);
	if (!v || cJSON_IsNull(v) || cJSON_IsInvalid(v))
		return 0;
	if (cJSON_IsArray(v))
		return cJSON_GetArraySize(v);
	if (cJSON_IsString(v) && v->valuestring[0] == '\0')
		return 0;
	return 1;
}

const cJSON *irfw_json_list_item(const cJSON *obj, const char *key, int i)
{
	const cJSON *v = list_of(obj, key);
	if (i < 0 || i >= irfw_json_list_count(v, NULL))
		return NULL;
	return cJSON_IsArray(v) ? cJSON_GetArrayItem(v, i) : v;
}

size_t irfw_utf8_prefix(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	/* Back up over continuation bytes to the start of a character. */
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

const char *irfw_iso8601(time_t when, char out[21])
{
	struct tm tm;
	if (!gmtime_r(&when, &tm) || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
	return out;
}

/* ------------------------------------------------------------------ */
/* Builders.                                                           */

/* The entry of params[list] whose `field` is `value`, created (with
 * field set) when there is none; NULL when memory ran out. */
static cJSON *entry_of(cJSON *params, const char *list, const char *field, const char *value)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(params, list), *e;
	if (!arr)
		arr = cJSON_AddArrayToObject(params, list);
	if (!cJSON_IsArray(arr))
		return NULL;
	cJSON_ArrayForEach(e, arr)
	{
		const char *v = irfw_json_str(e, field);
		if (v && strcmp(v, value) == 0)
			return e;
	}
	e = cJSON_CreateObject();
	if (!e || !cJSON_AddStringToObject(e, field, value) || !cJSON_AddItemToArray(arr, e)) {
		cJSON_Delete(e);
		return NULL;
	}
	return e;
}

/* {"Key": key, "Value": value} into the array holder[list], replacing a tag
 * of the same key: EC2 refuses a key twice in one request. */
static int put_tag(cJSON *holder, const char *list, const char *key, const char *value)
{
	cJSON *tags = cJSON_GetObjectItemCaseSensitive(holder, list), *tag;
	if (!tags)
		tags = cJSON_AddArrayToObject(holder, list);
	if (!cJSON_IsArray(tags))
		return -1;
	for (int i = cJSON_GetArraySize(tags) - 1; i >= 0; i--) {
		const char *k = irfw_json_str(cJSON_GetArrayItem(tags, i), "Key");
		if (k && strcmp(k, key) == 0)
			cJSON_DeleteItemFromArray(tags, i);
	}
	tag = cJSON_CreateObject();
	if (!tag || !cJSON_AddStringToObject(tag, "Key", key) ||
	    (value && !cJSON_AddStringToObject(tag, "Value", value)) || !cJSON_AddItemToArray(tags, tag)) {
		cJSON_Delete(tag);
		return -1;
	}
	return 0;
}

int irfw_ec2_filter(cJSON *params, const char *name, const char *value)
{
	if (!params || !name || !value)
		return -1;
	cJSON *f = entry_of(params, "Filter", "Name", name), *vals, *v;
	if (!f)
		return -1;
	vals = cJSON_GetObjectItemCaseSensitive(f, "Value");
	if (!vals)
		vals = cJSON_AddArrayToObject(f, "Value");
	if (!cJSON_IsArray(vals))
		return -1;
	cJSON_ArrayForEach(v, vals)
	{
		if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
			return 0;
	}
	v = cJSON_CreateString(value);
	if (!v || !cJSON_AddItemToArray(vals, v)) {
		cJSON_Delete(v);
		return -1;
	}
	return 0;
}

int irfw_ec2_tag_spec(cJSON *params, const char *resource_type, const char *key, const char *value)
{
	if (!params || !resource_type || !key || !value)
		return -1;
	cJSON *spec = entry_of(params, "TagSpecification", "ResourceType", resource_type);
	return spec ? put_tag(spec, "Tag", key, value) : -1;
}

int irfw_ec2_tag(cJSON *params, const char *key, const char *value)
{
	if (!params || !key)
		return -1;
	return put_tag(params, "Tag", key, value);
}

/* ------------------------------------------------------------------ */
/* Reading EC2 answers.                                                */

const cJSON *irfw_ec2_instance_in(const cJSON *result, const char *instance_id)
{
	const cJSON *r, *i;
	if (!instance_id)
		return NULL;
	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(result, "reservationSet"))
	    cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(r, "instancesSet"))
	{
		const char *id = irfw_json_text(i, "instanceId");
		if (id && strcmp(id, instance_id) == 0)
			return i;
	}
	return NULL;
}

int irfw_ec2_delete_on_termination(const cJSON *instance, const char *device)
{
	const cJSON *m;
	if (!device)
		return -1;
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(instance, "blockDeviceMapping"))
	{
		const char *d = irfw_json_text(m, "deviceName");
		const cJSON *ebs = cJSON_GetObjectItemCaseSensitive(m, "ebs");
		if (!d || strcmp(d, device) != 0 || !cJSON_IsObject(ebs))
			continue;
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(ebs, "deleteOnTermination");
		if (!cJSON_IsBool(f) && !cJSON_IsString(f))
			return -1;
		return irfw_json_bool(ebs, "deleteOnTermination", false) ? 1 : 0;
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* The neutral result.                                                 */

/* EC2 lists not named ...Set (every ...Set is a list). */
static const char *const ec2_lists[] = {
    "securityGroupInfo",
    "ipPermissions",
    "ipPermissionsEgress",
    "ipRanges",
    "ipv6Ranges",
    "prefixListIds",
    "groups",
    "userIdGroupPairs",
    "blockDeviceMapping",
    "productCodes",
    NULL,
};

/* The query services' lists: with <member> entries they are arrays
 * anyway; these names make an empty one [] rather than "". */
static const char *const autoscaling_lists[] = {
    "AutoScalingGroups",
    "AutoScalingInstances",
    "Instances",
    "SuspendedProcesses",
    "LoadBalancerNames",
    "TargetGroupARNs",
    "Tags",
    "Activities",
    "AvailabilityZones",
    "EnabledMetrics",
    "TerminationPolicies",
    "LifecycleHooks",
    "TrafficSources",
    "Processes",
    NULL,
};
static const char *const elbv2_lists[] = {
    "TargetGroups",
    "TargetHealthDescriptions",
    "LoadBalancers",
    "LoadBalancerArns",
    "AvailabilityZones",
    "SecurityGroups",
    "Listeners",
    "Rules",
    "TagDescriptions",
    "Tags",
    NULL,
};
static const char *const elb_lists[] = {
    "LoadBalancerDescriptions",
    "Instances",
    "InstanceStates",
    "ListenerDescriptions",
    "AvailabilityZones",
    "Subnets",
    "SecurityGroups",
    "BackendServerDescriptions",
    "PolicyNames",
    "TagDescriptions",
    "Tags",
    NULL,
};
static const char *const iam_lists[] = {
    "Roles",
    "InstanceProfiles",
    "Users",
    "Groups",
    "Policies",
    "PolicyNames",
    "AttachedPolicies",
    "AccessKeyMetadata",
    "Tags",
    NULL,
};
static const char *const sns_lists[] = {"Topics", "Subscriptions", "Tags", NULL};

static const struct {
	const char *service;
	const char *const *lists;
} query_lists[] = {
    {"autoscaling", autoscaling_lists},
    {"elasticloadbalancing", elbv2_lists},
    {"elbv2", elbv2_lists},
    {"elb", elb_lists},
    {"iam", iam_lists},
    {"sns", sns_lists},
};

/* S3 repeats an element once per entry, with no wrapper around them. */
static const char *const s3_objects[] = {"Contents", "CommonPrefixes", NULL};
static const char *const s3_versions[] = {"Version", "DeleteMarker", "CommonPrefixes", NULL};
static const char *const s3_parts[] = {"Part", NULL};
static const char *const s3_uploads[] = {"Upload", "CommonPrefixes", NULL};
static const char *const s3_rules[] = {"Rule", NULL};
static const char *const s3_deleted[] = {"Deleted", "Error", NULL};

static const struct {
	const char *operation;
	const char *const *lists;
} s3_lists[] = {
    {"ListObjectsV2", s3_objects}, {"ListObjects", s3_objects},          {"ListObjectVersions", s3_versions},
    {"ListParts", s3_parts},       {"ListMultipartUploads", s3_uploads}, {"GetBucketEncryption", s3_rules},
    {"DeleteObjects", s3_deleted},
};

/* Which member names of one reply are lists. */
struct shape {
	const char *const *lists; /* NULL-ended, or NULL */
	bool set_suffix;          /* EC2: a name ending in Set is one too */
	bool wrap;                /* S3: a lone entry becomes a list of one */
};

static bool in_names(const char *const *names, const char *s)
{
	for (; names && *names; names++)
		if (strcmp(*names, s) == 0)
			return true;
	return false;
}

static bool is_list(const struct shape *sh, const char *name)
{
	size_t n = strlen(name);
	if (sh->set_suffix && n > 3 && strcmp(name + n - 3, "Set") == 0)
		return true;
	return in_names(sh->lists, name);
}

/* Move item's key to its replacement (who then owns it). */
static void move_key(cJSON *to, cJSON *from)
{
	to->string = from->string;
	to->type |= from->type & cJSON_StringIsConst;
	from->string = NULL;
	from->type &= ~cJSON_StringIsConst;
}

/* Make member `item` of `parent` an array, keeping its place; returns the
 * member now there (item itself when it already is, or memory ran out). */
static cJSON *as_array(cJSON *parent, cJSON *item, bool wrap)
{
	if (cJSON_IsArray(item))
		return item;
	bool empty = cJSON_IsNull(item) || (cJSON_IsString(item) && item->valuestring[0] == '\0');
	if (!empty && !wrap)
		return item;
	cJSON *arr = cJSON_CreateArray();
	if (!arr)
		return item;
	if (empty) {
		move_key(arr, item);
		cJSON_ReplaceItemViaPointer(parent, item, arr);
		return arr;
	}
	int at = 0;
	for (const cJSON *c = parent->child; c && c != item; c = c->next)
		at++;
	cJSON_DetachItemViaPointer(parent, item);
	move_key(arr, item);
	cJSON_AddItemToArray(arr, item);
	cJSON_InsertItemInArray(parent, at, arr);
	return arr;
}

static void lists_walk(cJSON *node, const struct shape *sh)
{
	for (cJSON *c = node->child, *next; c; c = next) {
		next = c->next;
		if (cJSON_IsObject(node) && c->string && is_list(sh, c->string))
			c = as_array(node, c, sh->wrap);
		if (cJSON_IsObject(c) || cJSON_IsArray(c))
			lists_walk(c, sh);
	}
}

/* The query protocols answer <OpResponse><OpResult>...</OpResult>
 * <ResponseMetadata/></OpResponse>; the root is gone already.  The
 * members of OpResult become the top level, alone.  Without an OpResult
 * (an operation with no output) only ResponseMetadata goes. */
static void unwrap_query(cJSON *res, const char *operation)
{
	char name[160];
	snprintf(name, sizeof(name), "%sResult", operation);
	cJSON *inner = cJSON_DetachItemFromObjectCaseSensitive(res, name);
	cJSON_DeleteItemFromObjectCaseSensitive(res, "ResponseMetadata");
	while (inner && res->child)
		cJSON_Delete(cJSON_DetachItemViaPointer(res, res->child));
	while (cJSON_IsObject(inner) && inner->child) {
		cJSON *m = cJSON_DetachItemViaPointer(inner, inner->child);
		/* The key is copied before the old one is freed. */
		if (!cJSON_AddItemToObject(res, m->string, m))
			cJSON_Delete(m);
	}
	cJSON_Delete(inner);
}

void irfw_result_neutral(cJSON *res, const char *service, const char *operation,
                         const struct irfw_step *caller)
{
	const struct irfw_service *svc = irfw_service_find(service);
	struct shape sh = {0};
	if (!cJSON_IsObject(res) || !svc || !operation || svc->wire == IRFW_WIRE_JSON)
		return;
	if (caller && caller->mod && caller->mod->vt.abi_minor < NEUTRAL_SINCE_MINOR)
		return;
	switch (svc->wire) {
	case IRFW_WIRE_EC2:
		cJSON_DeleteItemFromObjectCaseSensitive(res, "requestId");
		sh.lists = ec2_lists;
		sh.set_suffix = true;
		break;
	case IRFW_WIRE_QUERY:
		unwrap_query(res, operation);
		for (size_t i = 0; i < sizeof(query_lists) / sizeof(query_lists[0]); i++)
			if (strcmp(query_lists[i].service, service) == 0)
				sh.lists = query_lists[i].lists;
		break;
	case IRFW_WIRE_REST_XML:
		for (size_t i = 0; i < sizeof(s3_lists) / sizeof(s3_lists[0]); i++)
			if (strcmp(s3_lists[i].operation, operation) == 0)
				sh.lists = s3_lists[i].lists;
		sh.wrap = true;
		break;
	case IRFW_WIRE_JSON:
		return;
	}
	if (sh.lists || sh.set_suffix)
		lists_walk(res, &sh);
}

/* ------------------------------------------------------------------ */
/* The paginator.                                                      */

static bool said_last(const cJSON *res)
{
	static const char *const flags[] = {"IsTruncated", "Truncated"};
	for (size_t i = 0; i < 2; i++)
		if (cJSON_GetObjectItemCaseSensitive(res, flags[i]) && !irfw_json_bool(res, flags[i], false))
			return true;
	return false;
}

bool irfw_page_next(const cJSON *res, const char **param, const char **token)
{
	/* The reply's token and the request parameter that sends it back. */
	static const struct {
		const char *reply, *request;
		bool needs_truncated; /* only with IsTruncated true (IAM) */
	} tokens[] = {
	    {"NextContinuationToken", "ContinuationToken", false},
	    {"NextMarker", "Marker", false},
	    {"NextToken", "NextToken", false},
	    {"nextToken", "NextToken", false},
	    {"Marker", "Marker", true},
	};
	if (!res || said_last(res))
		return false;
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		const char *v = irfw_json_text(res, tokens[i].reply);
		if (!v || (tokens[i].needs_truncated && !irfw_json_bool(res, "IsTruncated", false)))
			continue;
		*param = tokens[i].request;
		*token = v;
		return true;
	}
	return false;
}

/* Who a pagination is for: a target, or the batch (prepare). */
struct pager {
	irfw_target *t;
	irfw_batch *b;
	const char *region, *service, *operation;
	int (*tpage)(irfw_target *t, const cJSON *result, void *ctx);
	int (*bpage)(irfw_batch *b, const cJSON *result, void *ctx);
	void *ctx;
};

/* A failure of the paginator itself, kept like an AWS error of the
 * target so that irfw_fail_aws() reports it, or logged for the batch. */
static int page_error(const struct pager *pg, const char *code, const char *fmt, ...) IRFW_PRINTF(3, 4);
static int page_error(const struct pager *pg, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!pg->t) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "%s %s: %s: %s", pg->service, pg->operation, code, msg);
		return -1;
	}
	irfw_log(pg->t, IRFW_LOG_DEBUG, "%s %s: %s: %s", pg->service, pg->operation, code, msg);
	memset(&irfw_target_calls(pg->t)->err, 0, sizeof(irfw_target_calls(pg->t)->err));
	snprintf(irfw_target_calls(pg->t)->err.code, sizeof(irfw_target_calls(pg->t)->err.code), "%s", code);
	snprintf(irfw_target_calls(pg->t)->err.message, sizeof(irfw_target_calls(pg->t)->err.message), "%s",
	         msg);
	if (!irfw_target_calls(pg->t)->first_err.code[0])
		irfw_target_calls(pg->t)->first_err = irfw_target_calls(pg->t)->err;
	return -1;
}

static int paginate(const struct pager *pg, const cJSON *params)
{
	cJSON *p = params ? cJSON_Duplicate(params, true) : cJSON_CreateObject();
	char *sent = NULL; /* the token the last request carried */
	int rc = 0;
	if (!p)
		return page_error(pg, "OutOfMemory", "no memory for the request");
	for (int pages = 0;; pages++) {
		if (pages == IRFW_MAX_PAGES) {
			rc = page_error(pg, "PaginationLimit", "more than %d pages; stopped there",
			                IRFW_MAX_PAGES);
			break;
		}
		cJSON *res = NULL;
		if ((pg->t ? irfw_aws_call_in(pg->t, pg->region, pg->service, pg->operation, p, &res)
		           : irfw_batch_aws_call(pg->b, pg->region, pg->service, pg->operation, p, &res)) !=
		    0) {
			rc = -1;
			break;
		}
		if (!res)
			break; /* a dry run did not send it */
		rc = pg->t ? pg->tpage(pg->t, res, pg->ctx) : pg->bpage(pg->b, res, pg->ctx);
		const char *param = NULL, *token = NULL;
		bool more = rc == 0 && irfw_page_next(res, &param, &token);
		if (more && sent && strcmp(sent, token) == 0) {
			/* A service that ignores the token would give this page
			 * forever. */
			rc = page_error(pg, "PaginationLoop", "the reply gave back the %s just sent", param);
			more = false;
		}
		if (more) {
			free(sent);
			sent = strdup(token);
			cJSON_DeleteItemFromObjectCaseSensitive(p, param);
			if (!sent || !cJSON_AddStringToObject(p, param, token)) {
				rc = page_error(pg, "OutOfMemory", "no memory for the next page's request");
				more = false;
			}
		}
		cJSON_Delete(res);
		if (!more)
			break;
	}
	free(sent);
	cJSON_Delete(p);
	return rc;
}

int irfw_aws_paginate_in(irfw_target *t, const char *region, const char *service, const char *operation,
                         const cJSON *params, int (*page)(irfw_target *t, const cJSON *result, void *ctx),
                         void *ctx)
{
	struct pager pg = {
	    .t = t, .region = region, .service = service, .operation = operation, .tpage = page, .ctx = ctx};
	if (!t || !page)
		return -1;
	return paginate(&pg, params);
}

int irfw_aws_paginate(irfw_target *t, const char *service, const char *operation, const cJSON *params,
                      int (*page)(irfw_target *t, const cJSON *result, void *ctx), void *ctx)
{
	return irfw_aws_paginate_in(t, NULL, service, operation, params, page, ctx);
}

int irfw_batch_aws_paginate(irfw_batch *b, const char *region, const char *service, const char *operation,
                            const cJSON *params, int (*page)(irfw_batch *b, const cJSON *result, void *ctx),
                            void *ctx)
{
	struct pager pg = {
	    .b = b, .region = region, .service = service, .operation = operation, .bpage = page, .ctx = ctx};
	if (!b || !page)
		return -1;
	return paginate(&pg, params);
}
