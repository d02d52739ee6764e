/*
 * scheduler.c - the workers: each takes an instance and runs its steps in
 * pipeline order, resuming what an earlier run of the case did, calling
 * only a plugin's check in a preflight, recording each step.
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
#include "report.h"
#include "scheduler.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

/* Per-thread current target, so that irfw_log from deep helpers still
 * carries the right tag. */
static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------ */
/* Running.                                                            */

/* A report step (tag, notify) done in an earlier run told what the
 * containment was then; when it has changed since (isolate failed then and
 * worked now), what it wrote is no longer true, so it runs again. */
static bool report_is_stale(irfw_target *t, const struct irfw_step *s)
{
	if (s->phase != IRFW_PHASE_REPORT)
		return false;
	const char *seen = irfw_json_str(irfw_case_record_get(t->rec, s->name, "containment_seen"), "state");
	const char *now = irfw_containment_name(irfw_target_containment(t, NULL));
	if (!seen || strcmp(seen, now) == 0)
		return false;
	irfw_log(t, IRFW_LOG_INFO, "done in an earlier run when the instance was %s; it is %s now: run again",
	         seen, now);
	return true;
}

static void run_step(struct irfw_target *t, struct irfw_step *s, struct irfw_step_result *res,
                     bool check_only)
{
	t->cur = s;
	t->cur_res = res;
	res->ran = true;
	free(t->notes);
	t->notes = NULL;
	memset(&t->first_err, 0, sizeof(t->first_err));
	/* A dry run changes nothing and so must not mark steps done. */
	bool record = !check_only && t->rec && !t->run->dry_run;
	if (record && !t->run->no_resume && irfw_case_step_done(t->rec, s->name) && !report_is_stale(t, s)) {
		res->status = IRFW_OK;
		res->resumed = true;
		res->detail = irfw_strfmt("done in an earlier run of this case (%s); not repeated",
		                          irfw_case_step_status(t->rec, s->name));
		irfw_log(t, IRFW_LOG_INFO, "%s", res->detail);
		return;
	}
	/* `irfw check` and --dry-run promise to change nothing: only a
	 * plugin's own check is called, never its run. */
	bool preflight = check_only || t->run->dry_run;
	if (preflight && !s->mod->vt.check) {
		res->status = IRFW_SKIPPED;
		res->not_checked = true;
		res->detail = strdup("not checked (no preflight): the plugin has no check");
		irfw_log(t, IRFW_LOG_INFO, "%s", res->detail);
		return;
	}
	irfw_status (*fn)(irfw_target *, void *) = preflight ? s->mod->vt.check : s->mod->vt.run;
	if (record && irfw_case_step_begin(t->rec, s->name, s->mod->name) != 0)
		irfw_log(t, IRFW_LOG_WARN, "journal: %s", irfw_case_error(t->rec));
	irfw_log(t, IRFW_LOG_DEBUG, "start");
	double t0 = now_ms();
	irfw_status st = fn(t, s->state);
	res->ms = (long)(now_ms() - t0);
	if (st != IRFW_OK && st != IRFW_SKIPPED && st != IRFW_FAILED)
		st = IRFW_FAILED;
	res->status = st;
	if (st == IRFW_OK && t->notes && !res->detail)
		res->detail = strdup(t->notes);
	if (res->record_error && st != IRFW_FAILED) {
		char *d =
		    irfw_strfmt("%s%sbut the case record could not be written (%s): what the step did is not "
		                "recorded",
		                res->detail ? res->detail : "", res->detail ? "; " : "", res->record_error);
		if (d) {
			free(res->detail);
			res->detail = d;
		}
		st = res->status = IRFW_FAILED;
	}
	if (res->unchecked && st != IRFW_FAILED) {
		/* What the dry run could not ask AWS about. */
		struct irfw_buf b = {0};
		irfw_buf_printf(&b, "%s%snot checked (no DryRun in the API):", res->detail ? res->detail : "",
		                res->detail ? "; " : "");
		const cJSON *u;
		cJSON_ArrayForEach(u, res->unchecked) irfw_buf_printf(&b, " %s", u->valuestring);
		if (b.data) {
			free(res->detail);
			res->detail = b.data;
		}
	} else if (st != IRFW_OK && !res->detail)
		res->detail =
		    strdup(st == IRFW_SKIPPED ? "skipped (no reason given)" : "failed (no reason given)");
	if (record && s->phase == IRFW_PHASE_REPORT && st != IRFW_FAILED) {
		cJSON *seen = cJSON_CreateObject();
		cJSON_AddStringToObject(seen, "state",
		                        irfw_containment_name(irfw_target_containment(t, NULL)));
		if (irfw_case_record(t->rec, s->name, "containment_seen", seen) != 0)
			irfw_log(t, IRFW_LOG_WARN, "case record: %s", irfw_case_error(t->rec));
	}
	if (record && irfw_case_step_end(t->rec, s->name, irfw_status_name(st), res->detail, res->aws_error,
	                                 res->request_ids, res->ms) != 0)
		irfw_log(t, IRFW_LOG_WARN, "case record: %s", irfw_case_error(t->rec));
	if (st == IRFW_FAILED)
		irfw_log(t, IRFW_LOG_ERROR, "FAILED: %s%s%s%s%s%s", res->detail ? res->detail : "",
		         res->aws_error ? " [" : "", res->aws_error ? res->aws_error : "",
		         res->request_id ? ", request " : "", res->request_id ? res->request_id : "",
		         res->aws_error ? "]" : "");
	else
		irfw_log(t, IRFW_LOG_INFO, "%s%s%s", st == IRFW_OK ? "ok" : "skipped",
		         res->detail ? ": " : "", res->detail ? res->detail : "");
}

static void run_target(struct irfw_target *t, bool check_only)
{
	struct irfw_run *r = t->run;
	t->results = calloc(r->n_steps, sizeof(*t->results));
	if (!t->results)
		return;
	t->n_results = r->n_steps;
	for (size_t i = 0; i < r->n_steps; i++) {
		t->results[i].step = r->steps[i]->name;
		t->results[i].plugin = r->steps[i]->mod->name;
		t->results[i].phase = r->steps[i]->phase;
	}
	bool stopped = false;
	for (size_t i = 0; i < r->n_steps; i++) {
		struct irfw_step_result *res = &t->results[i];
		if (stopped)
			continue;
		run_step(t, r->steps[i], res, check_only);
		if (res->status == IRFW_FAILED && r->steps[i]->stop_on_error) {
			irfw_log(t, IRFW_LOG_WARN,
			         "on_error = stop: the remaining steps are not run for this instance");
			stopped = true;
		}
	}
	t->cur = NULL;
	t->cur_res = NULL;
}

struct worker_arg {
	struct irfw_run *r;
	bool check_only;
};

static void *worker(void *arg)
{
	struct worker_arg *w = arg;
	struct irfw_run *r = w->r;
	for (;;) {
		pthread_mutex_lock(&r->memo_lock);
		size_t i = r->next_target++;
		pthread_mutex_unlock(&r->memo_lock);
		if (i >= r->batch.n)
			break;
		if (r->batch.targets[i]->found && !r->batch.targets[i]->skipped_state)
			run_target(r->batch.targets[i], w->check_only);
	}
	return NULL;
}

void irfw_schedule(struct irfw_run *r, size_t found, bool check_only)
{
	size_t n_threads = (size_t)r->jobs < found ? (size_t)r->jobs : found;
	pthread_t *th = calloc(n_threads ? n_threads : 1, sizeof(*th));
	struct worker_arg wa = {.r = r, .check_only = check_only};
	size_t started = 0;
	for (size_t i = 0; th && i < n_threads; i++)
		if (pthread_create(&th[i], NULL, worker, &wa) == 0)
			started++;
	if (started == 0 && found)
		worker(&wa);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
}
