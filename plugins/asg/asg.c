/*
 * asg.c - take the instance out of its Auto Scaling group.
 *
 * An Auto Scaling group replaces an instance that fails its health checks
 * (isolation makes it fail them) by terminating it, and scale-in picks
 * instances to terminate: either would destroy the evidence.  Detaching the
 * instance (or moving it to Standby) takes it out of the group's hands.
 */
/* strdup is POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "irfw/irfw.h"

/* DescribeAutoScalingInstances takes at most 50 ids per call. */
#define DESCRIBE_CHUNK 50

static const struct irfw_option opts[] = {
    {.name = "mode",
     .type = IRFW_OPT_ENUM,
     .def = "detach",
     .choices = "detach|standby",
     .help = "detach: DetachInstances, the instance leaves the group (what it was is recorded, so it "
             "can be attached again).  standby: EnterStandby, the instance stays a member but the group no "
             "longer "
             "health-checks, replaces or scales it in, and it is taken out of the group's load "
             "balancers."},
    {.name = "decrement",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "ShouldDecrementDesiredCapacity.  true: the desired capacity drops by one and no "
             "replacement is launched (fails when the group is already at its minimum size).  false: "
             "the group launches a replacement so the service keeps its capacity."},
    {.name = NULL},
};

struct asg_state {
	irfw_step *step; /* for logging in prepare */
	/* instance id -> {"group", "state"}, or null when the instance was
	 * looked up and is in no group.  Built in prepare, which runs before
	 * any run, and only read afterwards.  An id missing from the map (its
	 * batched look-up failed) is looked up again by run. */
	cJSON *map;
};

/* irfw_json_str, with an empty string (an empty XML element) read as absent. */
static const char *str_nonempty(const cJSON *o, const char *key)
{
	const char *s = irfw_json_str(o, key);
	return s && *s ? s : NULL;
}

static long num_item(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (cJSON_IsNumber(v))
		return (long)v->valuedouble;
	return cJSON_IsString(v) ? strtol(v->valuestring, NULL, 10) : -1;
}

static const cJSON *result_of(const cJSON *res, const char *op_result, const char *list)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, op_result), list);
}

static const char *next_token(const cJSON *res, const char *op_result)
{
	return str_nonempty(cJSON_GetObjectItemCaseSensitive(res, op_result), "NextToken");
}

/* Put every AutoScalingInstances member of a reply into map. */
static void map_reply(cJSON *map, const cJSON *res)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, result_of(res, "DescribeAutoScalingInstancesResult", "AutoScalingInstances"))
	{
		const char *id = str_nonempty(it, "InstanceId");
		const char *group = str_nonempty(it, "AutoScalingGroupName");
		if (!id || !group)
			continue;
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "group", group);
		const char *ls = str_nonempty(it, "LifecycleState");
		cJSON_AddStringToObject(e, "state", ls ? ls : "");
		cJSON_DeleteItemFromObjectCaseSensitive(map, id);
		cJSON_AddItemToObject(map, id, e);
	}
}

static int init(irfw_step *step, void **state)
{
	struct asg_state *s = calloc(1, sizeof(*s));
	if (!s) {
		irfw_step_error(step, NULL, "out of memory");
		return -1;
	}
	s->step = step;
	*state = s;
	return 0;
}

static void fini(void *state)
{
	struct asg_state *s = state;
	if (s)
		cJSON_Delete(s->map);
	free(s);
}

/* Describe one chunk of ids; on success mark all of them looked up. */
static void prepare_chunk(irfw_batch *b, struct asg_state *s, cJSON *ids)
{
	cJSON *params = cJSON_CreateObject();
	cJSON_AddItemReferenceToObject(params, "InstanceIds", ids);
	cJSON_AddNumberToObject(params, "MaxRecords", DESCRIBE_CHUNK);
	cJSON *found = cJSON_CreateObject();
	for (;;) {
		cJSON *res = NULL;
		if (irfw_batch_aws_call(b, NULL, "autoscaling", "DescribeAutoScalingInstances", params,
		                        &res) != 0) {
			/* Not fatal: run looks these instances up one by one and
			 * reports the error against each. */
			irfw_step_log(s->step, IRFW_LOG_WARN,
			              "batched DescribeAutoScalingInstances failed; looking up one by one");
			goto out;
		}
		map_reply(found, res);
		const char *tok = next_token(res, "DescribeAutoScalingInstancesResult");
		cJSON_DeleteItemFromObjectCaseSensitive(params, "NextToken");
		if (tok)
			cJSON_AddStringToObject(params, "NextToken", tok);
		cJSON_Delete(res);
		if (!tok)
			break;
	}
	const cJSON *id;
	cJSON_ArrayForEach(id, ids)
	{
		cJSON *e = cJSON_DetachItemFromObjectCaseSensitive(found, id->valuestring);
		cJSON_DeleteItemFromObjectCaseSensitive(s->map, id->valuestring);
		cJSON_AddItemToObject(s->map, id->valuestring, e ? e : cJSON_CreateNull());
	}
out:
	cJSON_Delete(found);
	cJSON_Delete(params);
}

/* One look-up for the whole batch, instead of one call per instance. */
static int prepare(irfw_batch *b, void *state)
{
	struct asg_state *s = state;
	cJSON_Delete(s->map);
	s->map = cJSON_CreateObject();
	if (!s->map)
		return 0; /* run looks up one by one */
	cJSON *ids = cJSON_CreateArray();
	for (size_t i = 0, n = irfw_batch_count(b); i < n; i++) {
		irfw_target *t = irfw_batch_target(b, i);
		if (!irfw_target_instance(t))
			continue; /* not found: never run */
		cJSON_AddItemToArray(ids, cJSON_CreateString(irfw_target_id(t)));
		if (cJSON_GetArraySize(ids) == DESCRIBE_CHUNK) {
			prepare_chunk(b, s, ids);
			cJSON_Delete(ids);
			ids = cJSON_CreateArray();
		}
	}
	if (cJSON_GetArraySize(ids) > 0)
		prepare_chunk(b, s, ids);
	cJSON_Delete(ids);
	return 0;
}

/* The instance's group and lifecycle state: from prepare's map, else one
 * call.  Returns 0 (group NULL when in none) or -1 on an AWS error. */
static int lookup(irfw_target *t, const struct asg_state *s, char **group, char **lstate)
{
	*group = *lstate = NULL;
	const cJSON *e = s->map ? cJSON_GetObjectItemCaseSensitive(s->map, irfw_target_id(t)) : NULL;
	if (e) {
		if (cJSON_IsObject(e)) {
			*group = strdup(str_nonempty(e, "group"));
			const char *ls = str_nonempty(e, "state");
			*lstate = ls ? strdup(ls) : NULL;
		}
		return 0;
	}
	cJSON *params = cJSON_CreateObject();
	cJSON *ids = cJSON_AddArrayToObject(params, "InstanceIds");
	cJSON_AddItemToArray(ids, cJSON_CreateString(irfw_target_id(t)));
	cJSON *res = NULL;
	int rc = irfw_aws_call(t, "autoscaling", "DescribeAutoScalingInstances", params, &res);
	cJSON_Delete(params);
	if (rc != 0)
		return -1;
	cJSON *map = cJSON_CreateObject();
	map_reply(map, res);
	cJSON_Delete(res);
	e = cJSON_GetObjectItemCaseSensitive(map, irfw_target_id(t));
	if (e) {
		*group = strdup(str_nonempty(e, "group"));
		const char *ls = str_nonempty(e, "state");
		*lstate = ls ? strdup(ls) : NULL;
	}
	cJSON_Delete(map);
	return 0;
}

static irfw_status run(irfw_target *t, void *state)
{
	const struct asg_state *s = state;
	irfw_step *step = irfw_target_step(t);
	const char *mode = irfw_step_get(step, "mode");
	bool standby = mode && strcmp(mode, "standby") == 0;
	bool decrement = irfw_step_get_bool(step, "decrement");
	const char *id = irfw_target_id(t);
	char *group = NULL, *lstate = NULL;
	cJSON *params = NULL, *res = NULL;
	irfw_status st = IRFW_OK;

	if (lookup(t, s, &group, &lstate) != 0) {
		st = irfw_fail_aws(t, "DescribeAutoScalingInstances for %s", id);
		goto out;
	}
	if (!group) {
		/* A resumed case with resume off: say where it went. */
		const cJSON *prev = irfw_record_get(t, irfw_step_name(step), "asg");
		const char *pg = str_nonempty(prev, "group");
		if (pg && !standby) {
			irfw_note(t, "already out of Auto Scaling group %s (recorded by an earlier run)", pg);
			goto out;
		}
		st = irfw_skip(t, "not in an Auto Scaling group");
		goto out;
	}
	if (standby && lstate && (strcmp(lstate, "Standby") == 0 || strcmp(lstate, "EnteringStandby") == 0)) {
		irfw_note(t, "already %s in Auto Scaling group %s", lstate, group);
		goto out;
	}

	/* The group's capacity before, for the record and for release. */
	params = cJSON_CreateObject();
	cJSON *names = cJSON_AddArrayToObject(params, "AutoScalingGroupNames");
	cJSON_AddItemToArray(names, cJSON_CreateString(group));
	if (irfw_aws_call(t, "autoscaling", "DescribeAutoScalingGroups", params, &res) != 0) {
		st = irfw_fail_aws(t, "DescribeAutoScalingGroups %s", group);
		goto out;
	}
	const cJSON *g =
	    cJSON_GetArrayItem(result_of(res, "DescribeAutoScalingGroupsResult", "AutoScalingGroups"), 0);
	long desired = num_item(g, "DesiredCapacity"), min = num_item(g, "MinSize"),
	     max = num_item(g, "MaxSize");

	cJSON *rec = cJSON_CreateObject();
	cJSON_AddStringToObject(rec, "group", group);
	cJSON_AddStringToObject(rec, "mode", standby ? "standby" : "detach");
	cJSON_AddBoolToObject(rec, "decrement", decrement);
	cJSON_AddNumberToObject(rec, "desired_capacity", (double)desired);
	cJSON_AddNumberToObject(rec, "min_size", (double)min);
	cJSON_AddNumberToObject(rec, "max_size", (double)max);
	cJSON_AddStringToObject(rec, "lifecycle_state", lstate ? lstate : "");
	irfw_record(t, "asg", rec);

	cJSON_Delete(params);
	cJSON_Delete(res);
	res = NULL;
	params = cJSON_CreateObject();
	cJSON_AddStringToObject(params, "AutoScalingGroupName", group);
	cJSON *ids = cJSON_AddArrayToObject(params, "InstanceIds");
	cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	cJSON_AddBoolToObject(params, "ShouldDecrementDesiredCapacity", decrement);
	const char *op = standby ? "EnterStandby" : "DetachInstances";
	if (irfw_aws_call(t, "autoscaling", op, params, &res) != 0) {
		if (decrement && desired >= 0 && desired <= min)
			st = irfw_fail_aws(t,
			                   "%s %s from %s (desired capacity %ld is at the minimum size %ld: "
			                   "decrement = false keeps capacity with a replacement)",
			                   op, id, group, desired, min);
		else
			st = irfw_fail_aws(t, "%s %s from %s", op, id, group);
		goto out;
	}
	const char *dry = res ? "" : " (dry run)";
	if (decrement)
		irfw_note(t, "%s Auto Scaling group %s, desired capacity %ld -> %ld, no replacement%s",
		          standby ? "moved to Standby in" : "detached from", group, desired, desired - 1,
		          dry);
	else
		irfw_note(
		    t, "%s Auto Scaling group %s, desired capacity kept at %ld: a replacement is launched%s",
		    standby ? "moved to Standby in" : "detached from", group, desired, dry);
out:
	cJSON_Delete(params);
	cJSON_Delete(res);
	free(group);
	free(lstate);
	return st;
}

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "asg",
    .version = "1.0",
    .summary = "detach the instance from its Auto Scaling group (or move it to Standby)",
    .options = opts,
    .phase = IRFW_PHASE_CONTAIN,
    .init = init,
    .prepare = prepare,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .fini = fini,
    .description =
        "Finds the instance's Auto Scaling group (one DescribeAutoScalingInstances call per 50 instances "
        "of the run) and detaches it (mode = detach) or moves it to Standby (mode = standby), with "
        "ShouldDecrementDesiredCapacity = decrement.  The group name, mode, decrement flag, the group's "
        "desired, minimum and maximum capacity and the instance's lifecycle state before are recorded "
        "as asg, so release can put it back.  An instance in no group is skipped with the reason \"not "
        "in an Auto Scaling group\".\n\n"
        "It runs before isolate: an isolated instance fails its health checks, and the group would "
        "terminate and replace it, destroying the evidence; scale-in could pick it as well.  Detaching "
        "also takes the instance out of the group's load balancers and target groups (the elb step "
        "then covers registrations made outside the group).\n\n"
        "What it cannot do: with decrement = true AWS refuses when the group is already at its minimum "
        "size; set decrement = false (a replacement is launched) or lower the minimum.  Lifecycle hooks "
        "on the group still run for the detach.",
};

IRFW_PLUGIN_ENTRY(asg, plugin)
