/*
 * events.h - `--events FILE|-`: the run as JSON lines for other tools (a
 * SOAR, a dashboard): run-start, step-begin, step-end, instance-done,
 * run-done, each with a sequence number and a time, written and flushed as
 * they happen (events.c).  Secrets are masked as in the log.
 */
#ifndef IRFW_EVENTS_H
#define IRFW_EVENTS_H

#include "run.h"

/* Open the events file ("-": standard output).  0, or -1 with err. */
int irfw_events_open(struct irfw_run *r, const char *path, char *err, size_t errlen);
void irfw_events_close(struct irfw_run *r);

void irfw_event_run_start(struct irfw_run *r, size_t instances);
/* `order`: the n-th item the scheduler handed out. */
void irfw_event_step_begin(struct irfw_run *r, irfw_target *t, const struct irfw_step *s,
                           unsigned long order);
void irfw_event_step_end(struct irfw_run *r, irfw_target *t, const struct irfw_step *s,
                         const struct irfw_step_result *res);
void irfw_event_instance_done(struct irfw_run *r, irfw_target *t);
void irfw_event_run_done(struct irfw_run *r, int status);

#endif /* IRFW_EVENTS_H */
