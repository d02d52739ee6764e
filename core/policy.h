/*
 * policy.h - what a pipeline calls in AWS, from the plugins' declarations
 * (struct irfw_action): the least-privilege IAM policy `irfw policy`
 * prints, the IAM action an AccessDenied names, and the time the account's
 * EC2 request buckets make a fleet take (policy.c).
 */
#ifndef IRFW_POLICY_H
#define IRFW_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "run.h"

/* The IAM action that authorises `operation` of `service` (the name irfw
 * calls it by): "ec2:CreateTags", and for S3 the authorising name
 * (HeadObject is s3:GetObject).  Into out; out is returned. */
const char *irfw_iam_action(const char *service, const char *operation, char out[128]);

/* The pipeline's IAM policy document (a JSON object to free), with a
 * statement per step and one for the core; *undeclared counts the steps
 * whose plugin declares no actions.  After load. */
cJSON *irfw_policy_document(struct irfw_run *r, size_t *undeclared);

/* The seconds the account's EC2 request buckets need for the calls the
 * pipeline's steps declare for these instances: those of the contain
 * phase (*contain) and all (*all).  Targets must be described. */
void irfw_policy_estimate(const struct irfw_run *r, double *contain, double *all);

#endif /* IRFW_POLICY_H */
