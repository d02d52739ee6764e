/* report.h - the outcome for people and programs (report.c). */
#ifndef IRFW_REPORT_H
#define IRFW_REPORT_H

#include <cJSON.h>

#include "irfw/irfw.h"

struct irfw_run;

/* "ok", "skipped", "failed". */
const char *irfw_status_name(irfw_status s);
/* The run's results on standard output, as text or one JSON document. */
void irfw_report_text(struct irfw_run *r);
void irfw_report_json(struct irfw_run *r);
/* Print a whole -o json document on standard output, flush, and free it. */
void irfw_json_doc_put(cJSON *doc);
/* The -o json document of a run that stopped before any step, because
 * `call` (GetCallerIdentity, DescribeInstances) failed with e: no
 * instance handled, nothing changed, and why ("error"). */
struct irfw_aws_error;
void irfw_report_json_stopped(struct irfw_run *r, const char *call, const struct irfw_aws_error *e);
/* {"requests", "retries", "throttled"}: what the run sent to AWS so far
 * (-o json, the run-done event), or NULL before its client exists. */
cJSON *irfw_report_aws_calls(const struct irfw_run *r);

#endif /* IRFW_REPORT_H */
