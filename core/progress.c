/*
 * progress.c - the live status line (progress.h).
 *
 * An instance counts as contained once no step of the contain phase is
 * left for it, preserved once none of the preserve phase is left, done
 * once it has no step left; failed when any of its steps failed.
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "progress.h"
#include "base/log.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* No step of `phase` at or after the instance's next one. */
static int none_left(const struct irfw_run *r, const irfw_target *t, irfw_phase phase)
{
	for (size_t i = t->next_step; i < r->n_steps; i++)
		if (r->steps[i]->phase == phase)
			return 0;
	return 1;
}

static void clock_text(char *out, size_t len, double s)
{
	long v = (long)(s + 0.5);
	if (v >= 3600)
		snprintf(out, len, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
	else
		snprintf(out, len, "%ld:%02ld", v / 60, v % 60);
}

static void draw(struct irfw_run *r, int force)
{
	struct irfw_progress *p = &r->progress;
	double now = now_s();
	if (!force && now - p->drawn < 0.1)
		return;
	p->drawn = now;
	size_t contained = 0, preserved = 0, done = 0, failed = 0;
	for (size_t i = 0; i < r->batch.n; i++) {
		const irfw_target *t = r->batch.targets[i];
		if (!t->results)
			continue;
		contained += (size_t)none_left(r, t, IRFW_PHASE_CONTAIN);
		preserved += (size_t)none_left(r, t, IRFW_PHASE_PRESERVE);
		done += t->next_step >= r->n_steps;
		for (size_t k = 0; k < t->n_results; k++)
			if (t->results[k].ran && t->results[k].status == IRFW_FAILED) {
				failed++;
				break;
			}
	}
	char el[32], eta[40] = "";
	double elapsed = now - p->started;
	clock_text(el, sizeof(el), elapsed);
	if (done > 0 && done < p->total) {
		char e[32];
		clock_text(e, sizeof(e), elapsed / (double)done * (double)(p->total - done));
		snprintf(eta, sizeof(eta), "  ETA %s", e);
	}
	char line[256];
	snprintf(line, sizeof(line),
	         "contained %zu/%zu  preserved %zu/%zu  done %zu/%zu  failed %zu  elapsed %s%s", contained,
	         p->total, preserved, p->total, done, p->total, failed, el, eta);
	irfw_log_status(line);
}

void irfw_progress_start(struct irfw_run *r, size_t n)
{
	struct irfw_progress *p = &r->progress;
	p->total = n;
	p->started = now_s();
	p->drawn = 0;
	if (!p->on || n == 0)
		return;
	/* The per-step lines give way to the status line; warnings and
	 * errors still print, above it.  -v keeps them all. */
	p->saved_level = irfw_log_get_level();
	if (p->saved_level == IRFW_LOG_INFO)
		irfw_log_set_level(IRFW_LOG_WARN);
	p->active = 1;
	draw(r, 1);
}

void irfw_progress_step_done(struct irfw_run *r, irfw_target *t)
{
	(void)t;
	if (r->progress.active)
		draw(r, 0);
}

void irfw_progress_end(struct irfw_run *r)
{
	struct irfw_progress *p = &r->progress;
	if (!p->active)
		return;
	draw(r, 1);
	irfw_log_status(NULL);
	irfw_log_set_level(p->saved_level);
	p->active = 0;
}
