/*
 * sdk_target.c - the SDK's view of an instance being handled: the batch,
 * target facts, templates, logging, and the step results a plugin returns.
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
#include "containment.h"
#include "release.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

/* ------------------------------------------------------------------ */
/* Batch and target accessors.                                         */

size_t irfw_batch_count(const irfw_batch *b)
{
	return b->n;
}

irfw_target *irfw_batch_target(irfw_batch *b, size_t i)
{
	return i < b->n ? b->targets[i] : NULL;
}

const char *irfw_batch_case_id(const irfw_batch *b)
{
	return b->run->case_id_resolved;
}

const char *irfw_target_id(const irfw_target *t)
{
	return t->id;
}

const char *irfw_target_region(const irfw_target *t)
{
	return t->run->resolved_region;
}

const char *irfw_target_account_id(const irfw_target *t)
{
	return t->run->account_id;
}

const char *irfw_target_case_id(const irfw_target *t)
{
	return t->run->case_id_resolved;
}

const char *irfw_target_caller_arn(const irfw_target *t)
{
	return t->run->caller_arn;
}

const char *irfw_target_vpc_id(const irfw_target *t)
{
	return t->vpc_id;
}

const cJSON *irfw_target_instance(const irfw_target *t)
{
	return t->instance;
}

const char *irfw_target_state(const irfw_target *t)
{
	return t->state ? t->state : "";
}

bool irfw_target_dry_run(const irfw_target *t)
{
	return t->run->dry_run;
}

irfw_step *irfw_target_step(irfw_target *t)
{
	return irfw_target_cur(t);
}

/* A prepare must not set facts (irfw.h); one that does anyway, while
 * other prepares run, is at least serialised with them. */
static int fact_set(irfw_target *t, const char *key, const char *value)
{
	for (size_t i = 0; i < t->n_facts; i++)
		if (strcmp(t->facts[i].key, key) == 0) {
			char *v = strdup(value ? value : "");
			if (!v)
				return -1;
			free(t->facts[i].value);
			t->facts[i].value = v;
			return 0;
		}
	struct irfw_fact *v = realloc(t->facts, (t->n_facts + 1) * sizeof(*v));
	if (!v)
		return -1;
	t->facts = v;
	t->facts[t->n_facts].key = strdup(key);
	t->facts[t->n_facts].value = strdup(value ? value : "");
	t->n_facts++;
	return 0;
}

int irfw_fact_set(irfw_target *t, const char *key, const char *value)
{
	irfw_prepare_enter(t->run);
	int rc = fact_set(t, key, value);
	irfw_prepare_leave(t->run);
	return rc;
}

const char *irfw_fact_get(const irfw_target *t, const char *key)
{
	for (size_t i = 0; i < t->n_facts; i++)
		if (strcmp(t->facts[i].key, key) == 0)
			return t->facts[i].value;
	return NULL;
}

static char *tag_of(irfw_target *t)
{
	return irfw_strfmt("%s %s", t->id, irfw_target_cur(t) ? irfw_target_cur(t)->name : "-");
}

void irfw_log(irfw_target *t, irfw_log_level level, const char *fmt, ...)
{
	char *tag = tag_of(t);
	va_list ap;
	va_start(ap, fmt);
	irfw_vlogf(level, tag, fmt, ap);
	va_end(ap);
	free(tag);
}

char *irfw_expand(irfw_target *t, const char *tmpl)
{
	irfw_containment c = irfw_target_containment(t, NULL);
	const char *rel_headline = NULL;
	const char *rel_state = t->run->releasing ? irfw_release_state(t, &rel_headline, NULL, 0) : NULL;
	struct irfw_vars v = {.account_id = t->run->account_id,
	                      .region = t->run->resolved_region,
	                      .instance_id = t->id,
	                      .vpc_id = t->vpc_id,
	                      .case_id = t->run->case_id_resolved,
	                      .name_tag = t->name_tag,
	                      .containment = rel_state ? rel_state : irfw_containment_name(c),
	                      .outcome = rel_state ? rel_headline : irfw_containment_outcome(c),
	                      .now = t->run->started};
	const char *err = NULL;
	char *s = irfw_template_expand(tmpl, &v, &err);
	if (!s)
		irfw_log(t, IRFW_LOG_ERROR, "cannot expand '%s': %s", tmpl, err ? err : "out of memory");
	return s;
}

char *irfw_step_expand(irfw_target *t, const char *key)
{
	struct irfw_step *cur = irfw_target_cur(t);
	const char *v = cur ? irfw_step_get(cur, key) : NULL;
	return v ? irfw_expand(t, v) : NULL;
}

/* ------------------------------------------------------------------ */
/* Step results.                                                       */

IRFW_PRINTF(2, 0) static void set_detail(irfw_target *t, const char *fmt, va_list ap)
{
	if (!t->cur_res)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	free(t->cur_res->detail);
	/* Details reach the report, the record, the manifest uploaded and the
	 * notifications: a secret (an AWS error quoting a token) is masked
	 * there as in the log. */
	t->cur_res->detail = irfw_log_masked(msg);
}

irfw_status irfw_skip(irfw_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(t, fmt, ap);
	va_end(ap);
	return IRFW_SKIPPED;
}

irfw_status irfw_fail(irfw_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(t, fmt, ap);
	va_end(ap);
	return IRFW_FAILED;
}

static void set_aws_error(irfw_target *t, const struct irfw_aws_error *e)
{
	if (!t->cur_res)
		return;
	free(t->cur_res->aws_error);
	char *raw = irfw_strfmt("%s: %s", e->code[0] ? e->code : "Error", e->message);
	t->cur_res->aws_error = raw ? irfw_log_masked(raw) : NULL;
	free(raw);
	free(t->cur_res->request_id);
	t->cur_res->request_id = e->request_id[0] ? strdup(e->request_id) : NULL;
}

irfw_status irfw_fail_aws(irfw_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(t, fmt, ap);
	va_end(ap);
	set_aws_error(t, &irfw_target_calls(t)->err);
	return IRFW_FAILED;
}

irfw_status irfw_fail_aws_first(irfw_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(t, fmt, ap);
	va_end(ap);
	set_aws_error(t, irfw_target_calls(t)->first_err.code[0] ? &irfw_target_calls(t)->first_err
	                                                         : &irfw_target_calls(t)->err);
	return IRFW_FAILED;
}

void irfw_note(irfw_target *t, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *m = irfw_log_masked(msg);
	char *n = !m ? NULL : t->notes ? irfw_strfmt("%s; %s", t->notes, m) : strdup(m);
	free(m);
	if (n) {
		free(t->notes);
		t->notes = n;
	}
}
