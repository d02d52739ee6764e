/*
 * containment.c - the containment of an instance as a fact: each step's
 * report (kept in the case record), merged with the failed steps of the
 * contain phase into one state and cause.
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
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

const char *irfw_containment_outcome(irfw_containment c)
{
	switch (c) {
	case IRFW_CONTAINED:
		return "CONTAINED";
	case IRFW_PARTIALLY_CONTAINED:
		return "PARTIALLY CONTAINED";
	case IRFW_NOT_CONTAINED:
		return "NOT CONTAINED";
	case IRFW_CONTAINMENT_NOT_ATTEMPTED:
		break;
	}
	return "CONTAINMENT NOT ATTEMPTED";
}

/* ------------------------------------------------------------------ */
/* Containment.                                                        */

const char *irfw_containment_name(irfw_containment c)
{
	switch (c) {
	case IRFW_CONTAINED:
		return "contained";
	case IRFW_PARTIALLY_CONTAINED:
		return "partially-contained";
	case IRFW_NOT_CONTAINED:
		return "not-contained";
	case IRFW_CONTAINMENT_NOT_ATTEMPTED:
		break;
	}
	return "not-attempted";
}

static bool containment_from_name(const char *s, irfw_containment *out)
{
	for (int c = IRFW_CONTAINMENT_NOT_ATTEMPTED; c <= IRFW_NOT_CONTAINED; c++)
		if (s && strcmp(s, irfw_containment_name((irfw_containment)c)) == 0) {
			*out = (irfw_containment)c;
			return true;
		}
	return false;
}

/* An instance's reports and its cached cause: since SDK 1.9 the prepares
 * of different steps run at once, and each may read the containment (for
 * ${containment}) or report it for the same instance. */
static pthread_mutex_t cont_lock = PTHREAD_MUTEX_INITIALIZER;

/* Keep `step`'s report (replacing an earlier one); takes `cause`. */
static void cont_put(irfw_target *t, const char *step, irfw_containment c, char *cause)
{
	pthread_mutex_lock(&cont_lock);
	for (size_t i = 0; i < t->n_cont; i++)
		if (strcmp(t->cont[i].step, step) == 0) {
			free(t->cont[i].cause);
			t->cont[i].state = c;
			t->cont[i].cause = cause;
			pthread_mutex_unlock(&cont_lock);
			return;
		}
	struct irfw_cont_report *v = realloc(t->cont, (t->n_cont + 1) * sizeof(*v));
	char *name = strdup(step);
	if (!v || !name) {
		if (v)
			t->cont = v;
		free(name);
		free(cause);
	} else {
		t->cont = v;
		t->cont[t->n_cont++] = (struct irfw_cont_report){.step = name, .state = c, .cause = cause};
	}
	pthread_mutex_unlock(&cont_lock);
}

/* Reports kept by earlier runs of the case: steps.<step>.records.containment. */
void irfw_containment_load(irfw_target *t)
{
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(irfw_case_manifest(t->rec), "steps");
	const cJSON *st;
	cJSON_ArrayForEach(st, steps)
	{
		const cJSON *rec = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(st, "records"), "containment");
		irfw_containment c;
		if (st->string && containment_from_name(irfw_json_str(rec, "state"), &c))
			cont_put(t, st->string, c, irfw_strdup(irfw_json_str(rec, "cause")));
	}
}

int irfw_containment_report(irfw_target *t, irfw_containment c, const char *fmt, ...)
{
	if (t->run->dry_run || !irfw_target_cur(t))
		return 0;
	if (c < IRFW_CONTAINMENT_NOT_ATTEMPTED || c > IRFW_NOT_CONTAINED)
		c = IRFW_NOT_CONTAINED;
	char msg[1024] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	/* The cause reaches tags, reports and notifications: masked as the
	 * log is (an AWS error quoting a secret). */
	char *masked = irfw_log_masked(msg);
	if (masked) {
		snprintf(msg, sizeof(msg), "%s", masked);
		free(masked);
	}
	cont_put(t, irfw_target_cur(t)->name, c, strdup(msg));
	irfw_log(t, c == IRFW_CONTAINED ? IRFW_LOG_INFO : IRFW_LOG_WARN, "containment: %s%s%s",
	         irfw_containment_name(c), *msg ? ": " : "", msg);
	if (!t->rec)
		return -1;
	cJSON *v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "state", irfw_containment_name(c));
	cJSON_AddStringToObject(v, "cause", msg);
	char ts[32];
	irfw_iso_now(ts);
	cJSON_AddStringToObject(v, "verified_at", ts);
	return irfw_case_record_result(t->rec, irfw_target_cur(t)->name, "containment", v);
}

static const struct irfw_step *step_named(const struct irfw_run *r, const char *name)
{
	for (size_t i = 0; i < r->n_steps; i++)
		if (strcmp(r->steps[i]->name, name) == 0)
			return r->steps[i];
	return NULL;
}

static bool has_report(const irfw_target *t, const char *step)
{
	for (size_t i = 0; i < t->n_cont; i++)
		if (strcmp(t->cont[i].step, step) == 0)
			return true;
	return false;
}

/* The worst state, and into `b` (when not NULL) what is open or why. */
static irfw_containment evaluate(const irfw_target *t, struct irfw_buf *b)
{
	irfw_containment worst = IRFW_CONTAINMENT_NOT_ATTEMPTED;
	if (t->run->dry_run) {
		if (b)
			irfw_buf_puts(b, "dry run: nothing was changed");
		return worst;
	}
	for (size_t i = 0; i < t->n_cont; i++) {
		const struct irfw_cont_report *c = &t->cont[i];
		if (c->state > worst)
			worst = c->state;
		if (b && c->state != IRFW_CONTAINED && c->cause && *c->cause)
			irfw_buf_printf(b, "%s%s", b->len ? "; " : "", c->cause);
	}
	/* A failed step of the contain phase that said nothing itself: what
	 * it was for did not happen. */
	for (size_t i = 0; i < t->n_results; i++) {
		const struct irfw_step_result *res = &t->results[i];
		const struct irfw_step *s = res->step ? step_named(t->run, res->step) : NULL;
		if (!res->ran || !res->step || res->status != IRFW_FAILED || !s ||
		    s->phase != IRFW_PHASE_CONTAIN || has_report(t, res->step) || res == t->cur_res)
			continue;
		if (worst == IRFW_CONTAINED)
			worst = IRFW_PARTIALLY_CONTAINED;
		else if (worst == IRFW_CONTAINMENT_NOT_ATTEMPTED)
			worst = IRFW_NOT_CONTAINED;
		if (b)
			irfw_buf_printf(b, "%s%s failed%s%s", b->len ? "; " : "", res->step,
			                res->detail ? ": " : "", res->detail ? res->detail : "");
	}
	return worst;
}

irfw_containment irfw_target_containment(const irfw_target *t, const char **cause)
{
	irfw_target *mt = (irfw_target *)t; /* the cause is cached per target */
	pthread_mutex_lock(&cont_lock);
	if (!cause) {
		/* The state alone: the cache is left as it is. */
		irfw_containment worst = evaluate(t, NULL);
		pthread_mutex_unlock(&cont_lock);
		return worst;
	}
	struct irfw_buf b = {0};
	irfw_buf_puts(&b, "");
	irfw_containment worst = evaluate(t, &b);
	/* Keep the pointer a caller holds valid while the text is the same:
	 * it changes only with a report or a failed step. */
	if (mt->cont_cause && b.data && strcmp(mt->cont_cause, b.data) == 0) {
		irfw_buf_free(&b);
	} else {
		free(mt->cont_cause);
		mt->cont_cause = b.data;
	}
	*cause = mt->cont_cause ? mt->cont_cause : "";
	pthread_mutex_unlock(&cont_lock);
	return worst;
}
