/* scheduler.h - the workers that run each instance's steps (scheduler.c). */
#ifndef IRFW_SCHEDULER_H
#define IRFW_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

struct irfw_run;
struct irfw_step_result;
struct irfw_target;

/* Run every handled target's pipeline on up to r->jobs worker threads;
 * returns when all are done.  check_only: `irfw check`. */
void irfw_schedule(struct irfw_run *r, size_t found, bool check_only);

/* A result slot per step of the pipeline, named; 0 or -1 (no memory). */
int irfw_target_results_init(struct irfw_target *t);

/* The calls a dry step could not ask AWS about, appended to its detail
 * (also for release --dry-run). */
void irfw_result_note_unchecked(struct irfw_step_result *res);

#endif /* IRFW_SCHEDULER_H */
