/*
 * events.c - the run as JSON lines (events.h).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "report.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"

static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

int irfw_events_open(struct irfw_run *r, const char *path, char *err, size_t errlen)
{
	if (strcmp(path, "-") == 0) {
		r->events = stdout;
		return 0;
	}
	r->events = fopen(path, "a");
	if (!r->events) {
		irfw_set_err(err, errlen, "--events %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

void irfw_events_close(struct irfw_run *r)
{
	if (r->events && r->events != stdout)
		fclose(r->events);
	r->events = NULL;
}

/* Write one event: `o` gains seq, ts and event, is written on one line
 * with secrets masked, and is freed. */
static void emit(struct irfw_run *r, const char *event, cJSON *o)
{
	if (!r->events) {
		cJSON_Delete(o);
		return;
	}
	char ts[32];
	irfw_iso_now(ts);
	pthread_mutex_lock(&events_lock);
	cJSON_AddNumberToObject(o, "seq", (double)++r->event_seq);
	cJSON_AddStringToObject(o, "ts", ts);
	cJSON_AddStringToObject(o, "event", event);
	if (r->case_id_resolved)
		cJSON_AddStringToObject(o, "case_id", r->case_id_resolved);
	char *line = cJSON_PrintUnformatted(o);
	char *masked = irfw_log_masked(line);
	if (masked) {
		fputs(masked, r->events);
		fputc('\n', r->events);
		fflush(r->events);
	}
	pthread_mutex_unlock(&events_lock);
	free(masked);
	free(line);
	cJSON_Delete(o);
}

static cJSON *about(irfw_target *t, const struct irfw_step *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "instance", t->id);
	if (s) {
		cJSON_AddStringToObject(o, "step", s->name);
		cJSON_AddStringToObject(o, "plugin", s->mod->name);
		cJSON_AddStringToObject(o, "phase", irfw_phase_name(s->phase));
	}
	return o;
}

void irfw_event_run_start(struct irfw_run *r, size_t instances)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "account_id", r->account_id ? r->account_id : "");
	cJSON_AddStringToObject(o, "region", r->resolved_region ? r->resolved_region : "");
	cJSON_AddNumberToObject(o, "instances", (double)instances);
	cJSON_AddBoolToObject(o, "dry_run", r->dry_run);
	cJSON *steps = cJSON_AddArrayToObject(o, "pipeline");
	for (size_t i = 0; i < r->n_steps; i++)
		cJSON_AddItemToArray(steps, cJSON_CreateString(r->steps[i]->name));
	emit(r, "run-start", o);
}

void irfw_event_step_begin(struct irfw_run *r, irfw_target *t, const struct irfw_step *s, unsigned long order)
{
	cJSON *o = about(t, s);
	cJSON_AddNumberToObject(o, "order", (double)order);
	emit(r, "step-begin", o);
}

void irfw_event_step_end(struct irfw_run *r, irfw_target *t, const struct irfw_step *s,
                         const struct irfw_step_result *res)
{
	cJSON *o = about(t, s);
	cJSON_AddStringToObject(o, "status",
	                        res->resumed       ? "ok"
	                        : res->not_checked ? "not-checked"
	                                           : irfw_status_name(res->status));
	if (res->resumed)
		cJSON_AddTrueToObject(o, "resumed");
	if (res->detail)
		cJSON_AddStringToObject(o, "detail", res->detail);
	if (res->aws_error)
		cJSON_AddStringToObject(o, "aws_error", res->aws_error);
	if (res->request_id)
		cJSON_AddStringToObject(o, "request_id", res->request_id);
	cJSON_AddNumberToObject(o, "ms", (double)res->ms);
	emit(r, "step-end", o);
}

void irfw_event_instance_done(struct irfw_run *r, irfw_target *t)
{
	if (!r->events)
		return;
	cJSON *o = about(t, NULL);
	const char *cause;
	irfw_containment c = irfw_target_containment(t, &cause);
	cJSON *cont = cJSON_AddObjectToObject(o, "containment");
	cJSON_AddStringToObject(cont, "state", irfw_containment_name(c));
	cJSON_AddStringToObject(cont, "cause", cause);
	int n[3] = {0, 0, 0};
	for (size_t k = 0; k < t->n_results; k++)
		if (t->results[k].ran && (unsigned)t->results[k].status < 3)
			n[t->results[k].status]++;
	cJSON *counts = cJSON_AddObjectToObject(o, "counts");
	cJSON_AddNumberToObject(counts, "ok", n[IRFW_OK]);
	cJSON_AddNumberToObject(counts, "skipped", n[IRFW_SKIPPED]);
	cJSON_AddNumberToObject(counts, "failed", n[IRFW_FAILED]);
	emit(r, "instance-done", o);
}

void irfw_event_run_done(struct irfw_run *r, int status)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "status", status);
	/* The signal that stopped the run (the exit status is then 128 + it),
	 * or null. */
	char sb[16];
	if (r->interrupted)
		cJSON_AddStringToObject(o, "interrupted", irfw_signal_name(r->interrupted, sb));
	else
		cJSON_AddNullToObject(o, "interrupted");
	cJSON *calls = irfw_report_aws_calls(r);
	if (calls)
		cJSON_AddItemToObject(o, "aws_calls", calls);
	emit(r, "run-done", o);
}
