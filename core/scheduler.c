/*
 * scheduler.c - the workers: each takes an instance and runs its steps in
 * pipeline order, resuming what an earlier run of the case did, calling
 * only a plugin's check in a preflight, recording each step.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
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
#include "aws/client.h"
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

/* The calls a dry step could not ask AWS about (no DryRun in their API),
 * appended to its detail: "...; not checked (no DryRun in the API): X Y". */
int irfw_target_results_init(struct irfw_target *t)
{
	const struct irfw_run *r = t->run;
	t->results = calloc(r->n_steps ? r->n_steps : 1, sizeof(*t->results));
	if (!t->results)
		return -1;
	t->n_results = r->n_steps;
	for (size_t k = 0; k < r->n_steps; k++) {
		t->results[k].step = r->steps[k]->name;
		t->results[k].plugin = r->steps[k]->mod->name;
		t->results[k].phase = r->steps[k]->phase;
	}
	return 0;
}

void irfw_result_note_unchecked(struct irfw_step_result *res)
{
	struct irfw_buf b = {0};
	irfw_buf_printf(&b, "%s%snot checked (no DryRun in the API):", res->detail ? res->detail : "",
	                res->detail ? "; " : "");
	const cJSON *u;
	cJSON_ArrayForEach(u, res->unchecked) irfw_buf_printf(&b, " %s", u->valuestring);
	if (b.data) {
		free(res->detail);
		res->detail = b.data;
	}
}

static void run_step(struct irfw_target *t, struct irfw_step *s, struct irfw_step_result *res,
                     bool check_only)
{
	t->cur = s;
	t->cur_res = res;
	res->ran = true;
	free(t->notes);
	t->notes = NULL;
	memset(&irfw_target_calls(t)->first_err, 0, sizeof(irfw_target_calls(t)->first_err));
	/* A dry run changes nothing and so must not mark steps done. */
	bool record = !check_only && t->rec && !t->run->dry_run;
	if (record && irfw_step_done_before(t, s) && !report_is_stale(t, s)) {
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
	/* Here with the step done before: --no-resume, or a stale report. */
	t->repeating =
	    record && irfw_case_step_done(t->rec, s->name) && !irfw_case_step_released(t->rec, s->name);
	if (record && irfw_case_step_begin(t->rec, s->name, s->mod->name) != 0)
		irfw_log(t, IRFW_LOG_WARN, "journal: %s", irfw_case_error(t->rec));
	irfw_log(t, IRFW_LOG_DEBUG, "start");
	double t0 = now_ms();
	irfw_status st = fn(t, s->state);
	res->ms = (long)(now_ms() - t0);
	if (st != IRFW_OK && st != IRFW_SKIPPED && st != IRFW_FAILED)
		st = IRFW_FAILED;
	res->status = st;
	t->repeating = false;
	if (irfw_aws_abandoned() &&
	    (st != IRFW_OK || strcmp(irfw_target_calls(t)->first_err.code, "Interrupted") == 0 ||
	     strcmp(irfw_target_calls(t)->err.code, "Interrupted") == 0)) {
		/* A second signal cut its calls short: what it did is unknown,
		 * so it is recorded as not done and redone on resume. */
		char sb[16];
		const char *sig = irfw_signal_name(irfw_run_interrupt_signal(), sb);
		char *d = irfw_strfmt("interrupted (%s twice): its AWS calls were abandoned; the step is "
		                      "redone when the case is resumed%s%s",
		                      sig, res->detail ? "; " : "", res->detail ? res->detail : "");
		if (d) {
			free(res->detail);
			res->detail = d;
		}
		res->interrupted = true;
		st = res->status = IRFW_FAILED;
		if (record) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "signal", sig);
			cJSON_AddStringToObject(o, "run_id", t->run->run_id);
			if (irfw_case_record(t->rec, s->name, "interrupted", o) != 0)
				irfw_log(t, IRFW_LOG_WARN, "case record: %s", irfw_case_error(t->rec));
		}
	}
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
		irfw_result_note_unchecked(res); /* what the dry run could not ask AWS about */
	} else if (st != IRFW_OK && !res->detail)
		res->detail =
		    strdup(st == IRFW_SKIPPED ? "skipped (no reason given)" : "failed (no reason given)");
	if (record && s->phase == IRFW_PHASE_REPORT && st != IRFW_FAILED) {
		cJSON *seen = cJSON_CreateObject();
		cJSON_AddStringToObject(seen, "state",
		                        irfw_containment_name(irfw_target_containment(t, NULL)));
		if (irfw_case_record_result(t->rec, s->name, "containment_seen", seen) != 0)
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
	bool stopping; /* a signal came: no new step is started */
	size_t busy;   /* steps in flight */
	bool over;     /* the workers are done: the watcher ends */
};

/* Whether a signal asked the run to stop.  Under the lock. */
static bool stop_asked(struct sched *sc)
{
	if (!sc->stopping && irfw_run_interrupt_signal())
		sc->stopping = true;
	return sc->stopping;
}

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

/* After a step: the instance's next item, or its end (true: the caller
 * finishes it and says so, out of the lock).  Under the lock. */
static bool advance(struct sched *sc, struct irfw_target *t)
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
	bool done = t->next_step >= r->n_steps;
	if (!done) {
		sc->ready[sc->n_ready++] = t;
	} else {
		t->cur = NULL;
		t->cur_res = NULL;
		sc->remaining--;
	}
	pthread_cond_broadcast(&sc->cond);
	return done;
}

static void *worker(void *arg)
{
	struct sched *sc = arg;
	pthread_mutex_lock(&sc->lock);
	for (;;) {
		while (sc->n_ready == 0 && sc->remaining > 0 && !stop_asked(sc))
			pthread_cond_wait(&sc->cond, &sc->lock);
		if (sc->remaining == 0 || stop_asked(sc))
			break;
		struct irfw_target *t = pick(sc);
		struct irfw_step *s = sc->r->steps[t->next_step];
		/* The order work was handed out in, for --events readers. */
		irfw_event_step_begin(sc->r, t, s, ++sc->picks);
		sc->busy++;
		pthread_mutex_unlock(&sc->lock);
		run_step(t, s, &t->results[t->next_step], sc->check_only);
		/* Its next step is of a later phase, so it waits while the
		 * fleet catches up: its record's tree gives way to its text
		 * (before it is ready again, so no other worker runs it).  An
		 * instance goes through the steps of one phase back to back
		 * (pick), with its tree kept. */
		if (t->next_step + 1 < sc->r->n_steps && sc->r->steps[t->next_step + 1]->phase != s->phase)
			irfw_case_chill(t->rec);
		pthread_mutex_lock(&sc->lock);
		/* Under the lock, with the next item made ready in the same
		 * hold: an --events reader sees a step end before any pick that
		 * could have taken what it readied. */
		irfw_event_step_end(sc->r, t, s, &t->results[t->next_step]);
		if (advance(sc, t)) {
			/* Its record closed now, not at the end of the run: a
			 * fleet's records would otherwise all be held in memory
			 * (and locked) until the last instance is done.  The
			 * instance-done event follows: the record is final. */
			pthread_mutex_unlock(&sc->lock);
			irfw_target_finish(t, irfw_run_interrupt_signal(), irfw_run_interrupt_count() > 1);
			irfw_event_instance_done(sc->r, t);
			pthread_mutex_lock(&sc->lock);
		}
		sc->busy--;
	}
	pthread_mutex_unlock(&sc->lock);
	return NULL;
}

/*
 * The watcher: woken by the signal handler's byte on the self-pipe, it
 * wakes the idle workers so that they see the stop.  After a second
 * signal the calls in flight are abandoned (the client's progress
 * callback); workers still busy 10 s later are not waited for: the process
 * ends with 128 + the signal, the case records holding what was written.
 */
#define ABANDON_GRACE_MS 10000

static void *watcher(void *arg)
{
	struct sched *sc = arg;
	struct pollfd pfd = {.fd = irfw_run_interrupt_fd(), .events = POLLIN};
	double abandoned_at = 0;
	for (;;) {
		int rc = poll(&pfd, 1, 200);
		if (rc > 0) {
			char buf[64];
			while (read(pfd.fd, buf, sizeof(buf)) > 0)
				;
		}
		pthread_mutex_lock(&sc->lock);
		bool over = sc->over;
		if (!over && irfw_run_interrupt_signal() && !sc->stopping) {
			sc->stopping = true;
			char sb[16];
			irfw_logf(IRFW_LOG_WARN, NULL,
			          "%s: no new step is started; the %zu in flight finish or time out (%s "
			          "again abandons them)",
			          irfw_signal_name(irfw_run_interrupt_signal(), sb), sc->busy,
			          irfw_signal_name(irfw_run_interrupt_signal(), sb));
		}
		if (sc->stopping)
			pthread_cond_broadcast(&sc->cond);
		pthread_mutex_unlock(&sc->lock);
		if (over)
			break;
		if (irfw_aws_abandoned() && abandoned_at == 0) {
			abandoned_at = now_ms();
			irfw_logf(IRFW_LOG_WARN, NULL,
			          "interrupted again: the AWS calls in flight are abandoned");
		}
		if (abandoned_at > 0 && now_ms() - abandoned_at > ABANDON_GRACE_MS) {
			static const char msg[] =
			    "irfw: steps still busy 10 s after the calls were abandoned: "
			    "exiting; resume the case with the same command and "
			    "--case-id\n";
			ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
			(void)n;
			_exit(128 + irfw_run_interrupt_signal());
		}
	}
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
		if (irfw_target_results_init(t) != 0)
			continue;
		t->next_step = 0;
		if (r->n_steps == 0)
			continue;
		sc.ready[sc.n_ready++] = t;
		sc.remaining++;
	}
	irfw_progress_start(r, sc.remaining);
	pthread_t wt;
	bool watching = irfw_run_interrupt_pipe() == 0 && pthread_create(&wt, NULL, watcher, &sc) == 0;
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
	if (watching) {
		pthread_mutex_lock(&sc.lock);
		sc.over = true;
		pthread_mutex_unlock(&sc.lock);
		irfw_run_interrupt_wake();
		pthread_join(wt, NULL);
	}
	irfw_progress_end(r);
	free(th);
	free(sc.ready);
	pthread_cond_destroy(&sc.cond);
	pthread_mutex_destroy(&sc.lock);
	(void)found;
}
