/*
 * plan.c - `irfw --plan`: each instance's steps, without any AWS call.
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
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

/* ------------------------------------------------------------------ */
/* Plan.                                                               */

int irfw_run_plan(struct irfw_run *r, bool json)
{
	if (json) {
		cJSON *doc = cJSON_CreateObject();
		/* The document's kind and version (doc/irfw-output.schema.json). */
		cJSON_AddStringToObject(doc, "format", "irfw-plan/1");
		cJSON *arr = cJSON_AddArrayToObject(doc, "instances");
		for (size_t t = 0; t < r->batch.n; t++) {
			cJSON *it = cJSON_CreateObject();
			cJSON_AddStringToObject(it, "instance_id", r->batch.targets[t]->id);
			cJSON *steps = cJSON_AddArrayToObject(it, "steps");
			for (size_t i = 0; i < r->n_steps; i++) {
				cJSON *s = cJSON_CreateObject();
				cJSON_AddStringToObject(s, "step", r->steps[i]->name);
				cJSON_AddStringToObject(s, "plugin", r->steps[i]->mod->name);
				cJSON_AddStringToObject(s, "on_error",
				                        r->steps[i]->stop_on_error ? "stop" : "continue");
				cJSON_AddStringToObject(s, "phase", irfw_phase_name(r->steps[i]->phase));
				cJSON_AddStringToObject(
				    s, "summary",
				    r->steps[i]->mod->vt.summary ? r->steps[i]->mod->vt.summary : "");
				cJSON_AddItemToArray(steps, s);
			}
			cJSON_AddItemToArray(arr, it);
		}
		irfw_json_doc_put(doc);
		return IRFW_RUN_OK;
	}
	printf("Plan (no AWS call made)%s:\n", r->dry_run ? ", dry run" : "");
	for (size_t t = 0; t < r->batch.n; t++) {
		printf("%s\n", r->batch.targets[t]->id);
		for (size_t i = 0; i < r->n_steps; i++) {
			const struct irfw_step *s = r->steps[i];
			printf("  %2zu. %-14s %-14s %-9s %s%s\n", i + 1, s->name, s->mod->name,
			       irfw_phase_name(s->phase), s->mod->vt.summary ? s->mod->vt.summary : "",
			       s->stop_on_error ? "  [stops on error]" : "");
		}
	}
	return IRFW_RUN_OK;
}
