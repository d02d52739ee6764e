/*
 * progress.h - one live status line on a terminal while the fleet is
 * handled (contained n/N, preserved n/N, done n/N, failed n, elapsed,
 * ETA), warnings and failures printed above it as they happen, instead of
 * a line per step (progress.c).  Off when standard error is not a
 * terminal: the per-step lines are printed then.
 */
#ifndef IRFW_PROGRESS_H
#define IRFW_PROGRESS_H

#include <stddef.h>

#include "run.h"

/* Before the first item: `n` instances to handle. */
void irfw_progress_start(struct irfw_run *r, size_t n);
/* After each step of `t` ended (under the scheduler's lock). */
void irfw_progress_step_done(struct irfw_run *r, irfw_target *t);
/* After the last item: the line is taken away. */
void irfw_progress_end(struct irfw_run *r);

#endif /* IRFW_PROGRESS_H */
