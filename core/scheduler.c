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
#include "events.h"
#include "progress.h"
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

/*
 * The scheduler.  Work is (instance, next step) items: an instance's steps
 * keep their pipeline order, and a free worker always takes the ready item
 * of the highest phase (contain, then preserve, then report; the batch's
 * order among equals), so every instance is contained before the evidence
 * work of the fleet fills the pool, and no worker waits while an item is
 * ready.  An instance has at most one item at a time.
 */
struct sched {
	struct irfw_run *r;
	bool check_only;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct irfw_target **ready; /* instances whose next step may start */
	size_t n_ready;
	size_t remaining; /* instances not finished */
	unsigned long picks;
};

static irfw_phase next_phase(const struct sched *sc, const struct irfw_target *t)
{
	return sc->r->steps[t->next_step]->phase;
}

/* The instance to run next: lowest phase number, then batch order. */
static struct irfw_target *pick(struct sched *sc)
{
	size_t best = 0;
	for (size_t i = 1; i < sc->n_ready; i++) {
		irfw_phase a = next_phase(sc, sc->ready[i]), b = next_phase(sc, sc->ready[best]);
		if (a < b || (a == b && sc->ready[i]->index < sc->ready[best]->index))
			best = i;
	}
	struct irfw_target *t = sc->ready[best];
	sc->ready[best] = sc->ready[--sc->n_ready];
	return t;
}

/* After a step: the instance's next item, or its end.  Under the lock. */
static void advance(struct sched *sc, struct irfw_target *t)
{
	struct irfw_run *r = sc->r;
	struct irfw_step_result *res = &t->results[t->next_step];
	if (res->status == IRFW_FAILED && r->steps[t->next_step]->stop_on_error) {
		irfw_log(t, IRFW_LOG_WARN,
		         "on_error = stop: the remaining steps are not run for this instance");
		t->next_step = r->n_steps;
	} else {
		t->next_step++;
	}
	irfw_progress_step_done(r, t);
	if (t->next_step < r->n_steps) {
		sc->ready[sc->n_ready++] = t;
	} else {
		t->cur = NULL;
		t->cur_res = NULL;
		sc->remaining--;
		irfw_event_instance_done(r, t);
	}
	pthread_cond_broadcast(&sc->cond);
}

static void *worker(void *arg)
{
	struct sched *sc = arg;
	pthread_mutex_lock(&sc->lock);
	for (;;) {
		while (sc->n_ready == 0 && sc->remaining > 0)
			pthread_cond_wait(&sc->cond, &sc->lock);
		if (sc->remaining == 0)
			break;
		struct irfw_target *t = pick(sc);
		struct irfw_step *s = sc->r->steps[t->next_step];
		/* The order work was handed out in, for --events readers. */
		irfw_event_step_begin(sc->r, t, s, ++sc->picks);
		pthread_mutex_unlock(&sc->lock);
		run_step(t, s, &t->results[t->next_step], sc->check_only);
		irfw_event_step_end(sc->r, t, s, &t->results[t->next_step]);
		pthread_mutex_lock(&sc->lock);
		advance(sc, t);
	}
	pthread_mutex_unlock(&sc->lock);
	return NULL;
}

void irfw_schedule(struct irfw_run *r, size_t found, bool check_only)
{
	struct sched sc = {.r = r, .check_only = check_only};
	pthread_mutex_init(&sc.lock, NULL);
	pthread_cond_init(&sc.cond, NULL);
	sc.ready = calloc(r->batch.n ? r->batch.n : 1, sizeof(*sc.ready));
	for (size_t i = 0; sc.ready && i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		t->index = i;
		if (!t->found || t->skipped_state)
			continue;
		t->results = calloc(r->n_steps ? r->n_steps : 1, sizeof(*t->results));
		if (!t->results)
			continue;
		t->n_results = r->n_steps;
		for (size_t k = 0; k < r->n_steps; k++) {
			t->results[k].step = r->steps[k]->name;
			t->results[k].plugin = r->steps[k]->mod->name;
			t->results[k].phase = r->steps[k]->phase;
		}
		t->next_step = 0;
		if (r->n_steps == 0)
			continue;
		sc.ready[sc.n_ready++] = t;
		sc.remaining++;
	}
	irfw_progress_start(r, sc.remaining);
	size_t n_threads = (size_t)r->jobs < sc.remaining ? (size_t)r->jobs : sc.remaining;
	pthread_t *th = calloc(n_threads ? n_threads : 1, sizeof(*th));
	size_t started = 0;
	for (size_t i = 0; th && i < n_threads; i++)
		if (pthread_create(&th[i], NULL, worker, &sc) == 0)
			started++;
	if (started == 0 && sc.remaining)
		worker(&sc);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	irfw_progress_end(r);
	free(th);
	free(sc.ready);
	pthread_cond_destroy(&sc.cond);
	pthread_mutex_destroy(&sc.lock);
	(void)found;
}
