/*
 * fleet.h - the instances of a run beyond -i and --from-file: DescribeInstances
 * filters (`--filter Name=Values`, confirmed on a terminal) and security
 * findings (`--finding FILE|-`: a GuardDuty finding, its EventBridge event,
 * a Security Hub ASFF finding, or a JSON array of them) (fleet.c).
 */
#ifndef IRFW_FLEET_H
#define IRFW_FLEET_H

#include <stdbool.h>

#include "run.h"

/* "Name=V1,V2" (tag:app=web, vpc-id=vpc-1, instance-state-name=running):
 * checked and kept.  0, or -1 (logged) for a malformed one. */
int irfw_fleet_add_filter(struct irfw_run *r, const char *spec);

/* Read findings from `path` ("-": standard input) and add the instances
 * they name; their ids and types go into each instance's case record and
 * summary.  0, or -1 (logged: unreadable, not JSON, or naming no instance). */
int irfw_fleet_add_findings(struct irfw_run *r, const char *path);

/* After the AWS client is up: the instances the filters match, listed and
 * confirmed (on /dev/tty, unless r->yes), added to the batch.  IRFW_RUN_OK,
 * IRFW_RUN_USAGE (refused, or no terminal to confirm on) or
 * IRFW_RUN_STEP_FAILED (DescribeInstances failed). */
int irfw_fleet_resolve_filters(struct irfw_run *r);

/* The findings naming instance `id` (an array of {id, type, source,
 * title?}), or NULL. */
const cJSON *irfw_fleet_findings_of(const struct irfw_run *r, const char *id);

#endif /* IRFW_FLEET_H */
