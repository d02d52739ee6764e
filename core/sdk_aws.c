/*
 * sdk_aws.c - AWS calls from plugins (irfw_aws_call and friends, the result
 * made protocol-neutral), ARN regions, the once-per-run memo, webhooks.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "casestore.h"
#include "run.h"
#include "policy.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

/* ------------------------------------------------------------------ */
/* AWS calls from plugins.                                             */

const char *irfw_aws_error_code(const irfw_target *t)
{
	return irfw_target_calls(t)->err.code;
}

const char *irfw_aws_error_message(const irfw_target *t)
{
	return irfw_target_calls(t)->err.message;
}

const char *irfw_aws_request_id(const irfw_target *t)
{
	return irfw_target_calls(t)->err.request_id;
}

long irfw_aws_http_status(const irfw_target *t)
{
	return irfw_target_calls(t)->err.http_status;
}

const char *irfw_aws_last_request_id(const irfw_target *t)
{
	return irfw_target_calls(t)->last_request_id;
}

int irfw_aws_call(irfw_target *t, const char *service, const char *operation, const cJSON *params,
                  cJSON **result)
{
	return irfw_aws_call_in(t, NULL, service, operation, params, result);
}

bool irfw_arn_region(const char *arn, char out[64])
{
	/* arn:partition:service:region:account:resource */
	if (!arn || strncmp(arn, "arn:", 4) != 0)
		return false;
	const char *p = arn + 4;
	for (int field = 0; field < 2; field++) {
		p = strchr(p, ':');
		if (!p)
			return false;
		p++;
	}
	const char *end = strchr(p, ':');
	size_t n = end ? (size_t)(end - p) : 0;
	if (!end || n == 0 || n >= 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
			return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

static bool access_denied(const char *code)
{
	return strncmp(code, "AccessDenied", 12) == 0 || strcmp(code, "UnauthorizedOperation") == 0 ||
	       strcmp(code, "AuthorizationError") == 0 || strcmp(code, "UnauthorizedAccess") == 0;
}

void irfw_call_note_unchecked(irfw_target *t, const char *service, const char *operation)
{
	if (!t->run->dry_run || !t->cur_res || irfw_operation_dry_sendable(service, operation))
		return;
	/* Not sent (no DryRun in its API): say so rather than let the step's
	 * "ok" vouch for a permission nobody checked. */
	char *name = irfw_strfmt("%s:%s", service, operation);
	bool seen = false;
	const cJSON *u;
	cJSON_ArrayForEach(u, t->cur_res->unchecked) seen =
	    seen || (name && strcmp(u->valuestring, name) == 0);
	if (!t->cur_res->unchecked)
		t->cur_res->unchecked = cJSON_CreateArray();
	if (name && !seen)
		cJSON_AddItemToArray(t->cur_res->unchecked, cJSON_CreateString(name));
	free(name);
}

void irfw_call_settle(irfw_target *t, const char *service, const char *operation, int rc, cJSON *res,
                      struct irfw_aws_error *e, const char *rid)
{
	if (rc == 0)
		irfw_result_neutral(res, service, operation, irfw_target_cur(t));
	const char *id = rc == 0 ? rid : e->request_id;
	if (*id && t->cur_res) {
		if (!t->cur_res->request_ids)
			t->cur_res->request_ids = cJSON_CreateArray();
		cJSON_AddItemToArray(t->cur_res->request_ids, cJSON_CreateString(id));
	}
	if (rc == 0)
		return;
	/* A refusal for want of a permission says which IAM action it takes,
	 * wherever a plugin quotes the message. */
	if (access_denied(e->code)) {
		char action[128];
		size_t n = strlen(e->message);
		snprintf(e->message + n, sizeof(e->message) - n, " (needs the IAM permission %s)",
		         irfw_iam_action(service, operation, action));
	}
	if (!irfw_target_calls(t)->first_err.code[0])
		irfw_target_calls(t)->first_err = *e;
	irfw_log(t, IRFW_LOG_DEBUG, "%s %s failed: %s %s (request %s)", service, operation, e->code,
	         e->message, e->request_id[0] ? e->request_id : "-");
}

int irfw_aws_call_in(irfw_target *t, const char *region, const char *service, const char *operation,
                     const cJSON *params, cJSON **result)
{
	return irfw_aws_call_ex(t, region, service, operation, params, 0, result);
}

unsigned irfw_target_req_flags(const irfw_target *t, unsigned call_flags)
{
	const struct irfw_step *s = t ? irfw_target_cur(t) : NULL;
	/* Containment first: a contain step's calls go before the evidence
	 * work of the fleet that waits on the same bucket, and that before
	 * the record's and the notices'. */
	int prio = !s || s->phase == IRFW_PHASE_CONTAIN ? 0 : s->phase == IRFW_PHASE_REPORT ? 2 : 1;
	return ((call_flags & IRFW_CALL_NOT_IDEMPOTENT) ? IRFW_AWS_REQ_NOT_IDEMPOTENT : 0) |
	       IRFW_AWS_REQ_PRIORITY(prio);
}

int irfw_aws_call_ex(irfw_target *t, const char *region, const char *service, const char *operation,
                     const cJSON *params, unsigned flags, cJSON **result)
{
	if (result)
		*result = NULL;
	memset(&irfw_target_calls(t)->err, 0, sizeof(irfw_target_calls(t)->err));
	irfw_target_calls(t)->last_request_id[0] = '\0';
	if (!t->run->aws) {
		snprintf(irfw_target_calls(t)->err.code, sizeof(irfw_target_calls(t)->err.code), "NoClient");
		snprintf(irfw_target_calls(t)->err.message, sizeof(irfw_target_calls(t)->err.message),
		         "no AWS client in this mode");
		return -1;
	}
	irfw_call_note_unchecked(t, service, operation);
	cJSON *res = NULL;
	char rid[128] = "";
	const char *reg = region && *region ? region : t->run->resolved_region;
	/* Plain calls go through irfw_aws_request (tests/sdk_json_test.c
	 * replaces it at link time). */
	unsigned req = irfw_target_req_flags(t, flags);
	int rc = req ? irfw_aws_request_ex(t->run->aws, reg, service, operation, params, t->run->dry_run, req,
	                                   &res, &irfw_target_calls(t)->err, rid)
	             : irfw_aws_request(t->run->aws, reg, service, operation, params, t->run->dry_run, &res,
	                                &irfw_target_calls(t)->err, rid);
	irfw_call_settle(t, service, operation, rc, res, &irfw_target_calls(t)->err, rid);
	snprintf(irfw_target_calls(t)->last_request_id, sizeof(irfw_target_calls(t)->last_request_id), "%s",
	         rid);
	if (rc != 0) {
		snprintf(irfw_target_calls(t)->err_service, sizeof(irfw_target_calls(t)->err_service), "%s",
		         service);
		snprintf(irfw_target_calls(t)->err_operation, sizeof(irfw_target_calls(t)->err_operation),
		         "%s", operation);
	}
	if (result)
		*result = res;
	else
		cJSON_Delete(res);
	return rc;
}

int irfw_batch_aws_call(irfw_batch *b, const char *region, const char *service, const char *operation,
                        const cJSON *params, cJSON **result)
{
	struct irfw_aws_error e;
	char rid[128];
	if (result)
		*result = NULL;
	if (!b->run->aws)
		return -1;
	cJSON *res = NULL;
	int rc = irfw_aws_request(b->run->aws, region ? region : b->run->resolved_region, service, operation,
	                          params, b->run->dry_run, &res, &e, rid);
	if (rc == 0) /* in prepare every target's step is the one preparing */
		irfw_result_neutral(res, service, operation, b->n ? irfw_target_cur(b->targets[0]) : NULL);
	if (rc != 0)
		irfw_logf(IRFW_LOG_ERROR, NULL, "%s %s: %s: %s (request %s)", service, operation, e.code,
		          e.message, e.request_id[0] ? e.request_id : "-");
	if (result)
		*result = res;
	else
		cJSON_Delete(res);
	return rc;
}

const char *irfw_memo(irfw_target *t, const char *key, char *(*make)(irfw_target *t, void *arg), void *arg)
{
	struct irfw_run *r = t->run;
	pthread_mutex_lock(&r->memo_lock);
	for (;;) {
		struct irfw_memo_entry *e = NULL;
		for (size_t i = 0; i < r->n_memo; i++)
			if (strcmp(r->memo[i].key, key) == 0)
				e = &r->memo[i];
		if (e && e->value) {
			const char *v = e->value;
			pthread_mutex_unlock(&r->memo_lock);
			return v;
		}
		if (e && e->busy) {
			pthread_cond_wait(&r->memo_cond, &r->memo_lock);
			continue;
		}
		if (!e) {
			struct irfw_memo_entry *v = realloc(r->memo, (r->n_memo + 1) * sizeof(*v));
			if (!v) {
				pthread_mutex_unlock(&r->memo_lock);
				return NULL;
			}
			r->memo = v;
			e = &r->memo[r->n_memo++];
			e->key = strdup(key);
			e->value = NULL;
		}
		e->busy = true;
		size_t idx = (size_t)(e - r->memo);
		pthread_mutex_unlock(&r->memo_lock);
		char *val = make(t, arg);
		pthread_mutex_lock(&r->memo_lock);
		e = &r->memo[idx]; /* the array may have moved */
		e->busy = false;
		e->value = val;
		pthread_cond_broadcast(&r->memo_cond);
		pthread_mutex_unlock(&r->memo_lock);
		return val;
	}
}

int irfw_http_post(irfw_target *t, const char *url, const char *content_type, const char *body, size_t len,
                   long *http_status)
{
	*http_status = 0;
	if (!t->run->aws) {
		irfw_log(t, IRFW_LOG_ERROR, "no HTTP client in this mode");
		return -1;
	}
	char why[512];
	if (irfw_aws_http_url_check(url, why, sizeof(why)) != 0) {
		irfw_log(t, IRFW_LOG_ERROR, "%s", why);
		return -1;
	}
	if (t->run->dry_run) {
		irfw_log(t, IRFW_LOG_INFO, "dry run: not posting the webhook");
		return 0;
	}
	int rc = irfw_aws_http_post(t->run->aws, url, content_type, body, len, http_status, why, sizeof(why));
	if (rc != 0)
		irfw_log(t, IRFW_LOG_ERROR, "%s", why);
	return rc;
}
