/*
 * asg.c - take the instance out of its Auto Scaling group.
 *
 * An Auto Scaling group replaces an instance that fails its health checks
 * (isolation makes it fail them) by terminating it, and scale-in picks
 * instances to terminate: either would destroy the evidence.  Detaching the
 * instance (or moving it to Standby) takes it out of the group's hands.
 *
 * AWS refuses both with decrement = true when the group is at its minimum
 * size (the common layout), and any of them can be refused for want of a
 * permission.  EC2 termination protection does not stop Auto Scaling, so a
 * refusal must not leave the instance to the group: the `fallback` list
 * says what to try next (Standby, then scale-in protection with the group's
 * health-check processes suspended).  Every outcome is read back from AWS
 * before the step says it worked.
 */
/* strdup is POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irfw/irfw.h"

/* DescribeAutoScalingInstances takes at most 50 ids per call. */
#define DESCRIBE_CHUNK 50
/* DetachInstances takes at most 20 instance ids per call. */
#define DETACH_MAX 20
/* Bytes of an AWS error message quoted in a note: the step's note and
 * detail have a fixed size, and several refusals may be quoted. */
#define MSG_MAX      140
#define FALLBACK_MAX 2

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
             "replacement is launched (AWS refuses it when the group is already at its minimum size: "
             "see fallback).  false: the group launches a replacement so the service keeps its "
             "capacity."},
    {.name = "fallback",
     .type = IRFW_OPT_LIST,
     .def = "standby, protect",
     .help = "What to try, in this order, when AWS refuses the `mode` way for any reason (the minimum "
             "size, AccessDenied...), until one is verified.  standby: EnterStandby with "
             "ShouldDecrementDesiredCapacity = decrement; at the minimum size AWS refuses that too with "
             "decrement = true, so a ValidationError is answered by sending it once more without "
             "decrement (the group launches a replacement, as with decrement = false, and the suspect "
             "instance survives).  protect: scale-in protection on the instance (SetInstanceProtection) "
             "and the processes of suspend_processes suspended on the WHOLE group (SuspendProcesses).  "
             "standby is ignored with mode = standby (already tried).  Empty: no fallback, the step "
             "fails and the group can still terminate the instance."},
    {.name = "suspend_processes",
     .type = IRFW_OPT_LIST,
     .def = "HealthCheck, ReplaceUnhealthy, AZRebalance",
     .help = "The group's processes the protect fallback suspends, for every instance of the group "
             "until they are resumed.  Must hold HealthCheck and ReplaceUnhealthy: scale-in protection "
             "does not stop the group from replacing an instance that fails its health checks, and "
             "isolation makes it fail them.  AZRebalance terminates instances to even the group out "
             "across zones, and AWS does not document that scale-in protection covers it.  Consider "
             "InstanceRefresh: a refresh with ScaleInProtectedInstances = Refresh replaces protected "
             "instances.  Only those not already suspended are suspended and recorded, so a release "
             "resumes only what irfw suspended."},
    {.name = NULL},
};

/* The processes SuspendProcesses knows (API reference, ProcessType). */
static const char *const aws_processes[] = {
    "Launch",      "Terminate",       "AddToLoadBalancer", "AlarmNotification", "AZRebalance",
    "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy",  "ScheduledActions",  NULL,
};

enum fallback { FB_STANDBY, FB_PROTECT };

struct asg_state {
	irfw_step *step; /* for logging in prepare */
	/* instance id -> {"group", "state", "protected"}, or null when the
	 * instance was looked up and is in no group.  Built in prepare, which
	 * runs before any run, and only read afterwards.  An id missing from
	 * the map (its batched look-up failed) is looked up again by run. */
	cJSON *map;
	/* From init, read-only afterwards. */
	enum fallback fallback[FALLBACK_MAX];
	size_t n_fallback;
	char **procs;     /* suspend_processes */
	char *procs_text; /* the same, "A, B and C", for notes */
};

static bool in_list(char *const *list, const char *word)
{
	for (; list && *list; list++)
		if (strcmp(*list, word) == 0)
			return true;
	return false;
}

static bool json_has_string(const cJSON *arr, const char *word)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		if (cJSON_IsString(it) && strcmp(it->valuestring, word) == 0)
			return true;
	}
	return false;
}

static bool is_standby(const char *lstate)
{
	return lstate && (strcmp(lstate, "Standby") == 0 || strcmp(lstate, "EnteringStandby") == 0);
}

/* Put every AutoScalingInstances member of a reply into map. */
static void map_reply(cJSON *map, const cJSON *res)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "AutoScalingInstances"))
	{
		const char *id = irfw_json_text(it, "InstanceId");
		const char *group = irfw_json_text(it, "AutoScalingGroupName");
		if (!id || !group)
			continue;
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "group", group);
		const char *ls = irfw_json_text(it, "LifecycleState");
		cJSON_AddStringToObject(e, "state", ls ? ls : "");
		cJSON_AddBoolToObject(e, "protected", irfw_json_bool(it, "ProtectedFromScaleIn", false));
		cJSON_DeleteItemFromObjectCaseSensitive(map, id);
		cJSON_AddItemToObject(map, id, e);
	}
}

static void fini(void *state)
{
	struct asg_state *s = state;
	if (s) {
		cJSON_Delete(s->map);
		irfw_list_free(s->procs);
		free(s->procs_text);
	}
	free(s);
}

/* "A, B and C" */
static char *words_text(char *const *list)
{
	irfw_strbuf *b = irfw_strbuf_new();
	size_t n = 0;
	while (list && list[n])
		n++;
	for (size_t i = 0; i < n; i++)
		irfw_strbuf_printf(b, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ", list[i]);
	return irfw_strbuf_steal(b);
}

static int init(irfw_step *step, void **state)
{
	struct asg_state *s = calloc(1, sizeof(*s));
	char **fb = NULL;
	if (!s)
		goto oom;
	s->step = step;
	fb = irfw_step_get_list(step, "fallback");
	s->procs = irfw_step_get_list(step, "suspend_processes");
	if (!fb || !s->procs)
		goto oom;
	bool standby_mode = strcmp(irfw_step_get(step, "mode"), "standby") == 0;
	for (char **w = fb; *w; w++) {
		enum fallback f;
		if (strcmp(*w, "standby") == 0)
			f = FB_STANDBY;
		else if (strcmp(*w, "protect") == 0)
			f = FB_PROTECT;
		else {
			irfw_step_error(step, "fallback", "unknown fallback \"%s\" (standby, protect)", *w);
			goto fail;
		}
		/* mode = standby has already tried EnterStandby; a word given
		 * twice would only repeat a refusal. */
		bool seen = f == FB_STANDBY && standby_mode;
		for (size_t i = 0; i < s->n_fallback; i++)
			seen = seen || s->fallback[i] == f;
		if (!seen)
			s->fallback[s->n_fallback++] = f;
	}
	bool protect = false;
	for (size_t i = 0; i < s->n_fallback; i++)
		protect = protect || s->fallback[i] == FB_PROTECT;
	for (char **w = s->procs; *w; w++) {
		if (!in_list((char *const *)aws_processes, *w)) {
			irfw_step_error(step, "suspend_processes",
			                "unknown process \"%s\" (Launch, Terminate, AddToLoadBalancer, "
			                "AlarmNotification, AZRebalance, HealthCheck, InstanceRefresh, "
			                "ReplaceUnhealthy, ScheduledActions)",
			                *w);
			goto fail;
		}
	}
	if (protect && (!in_list(s->procs, "HealthCheck") || !in_list(s->procs, "ReplaceUnhealthy"))) {
		/* Scale-in protection alone leaves the isolated instance to the
		 * health-check replacement: "protected" would claim too much. */
		irfw_step_error(
		    step, "suspend_processes",
		    "must hold HealthCheck and ReplaceUnhealthy for the protect fallback: the group "
		    "replaces an instance that fails its health checks, protected or not");
		goto fail;
	}
	s->procs_text = words_text(s->procs);
	if (!s->procs_text)
		goto oom;
	irfw_list_free(fb);
	*state = s;
	return 0;
oom:
	irfw_step_error(step, NULL, "out of memory");
fail:
	irfw_list_free(fb);
	fini(s);
	return -1;
}

static int map_page(irfw_batch *b, const cJSON *res, void *found)
{
	(void)b;
	map_reply(found, res);
	return 0;
}

/* Describe one chunk of ids; on success mark all of them looked up. */
static void prepare_chunk(irfw_batch *b, struct asg_state *s, cJSON *ids)
{
	cJSON *params = cJSON_CreateObject();
	cJSON_AddItemReferenceToObject(params, "InstanceIds", ids);
	cJSON_AddNumberToObject(params, "MaxRecords", DESCRIBE_CHUNK);
	cJSON *found = cJSON_CreateObject();
	if (irfw_batch_aws_paginate(b, NULL, "autoscaling", "DescribeAutoScalingInstances", params, map_page,
	                            found) != 0) {
		/* Not fatal: run looks these instances up one by one and
		 * reports the error against each. */
		irfw_step_log(s->step, IRFW_LOG_WARN,
		              "batched DescribeAutoScalingInstances failed; looking up one by one");
		goto out;
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

/* What AWS holds about the instance: its group (NULL when in none), its
 * lifecycle state and its scale-in protection. */
struct membership {
	char *group;
	char *lstate;
	bool protected;
};

static void membership_clear(struct membership *m)
{
	free(m->group);
	free(m->lstate);
	memset(m, 0, sizeof(*m));
}

static void membership_from(struct membership *m, const cJSON *e)
{
	const char *g = irfw_json_text(e, "group"), *ls = irfw_json_text(e, "state");
	m->group = g ? strdup(g) : NULL;
	m->lstate = ls ? strdup(ls) : NULL;
	m->protected = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "protected"));
}

/* One DescribeAutoScalingInstances call for the instance: the look-up when
 * prepare's failed, and every read-back.  0, or -1 on an AWS error. */
static int read_instance(irfw_target *t, struct membership *m)
{
	membership_clear(m);
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
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(map, irfw_target_id(t));
	if (e)
		membership_from(m, e);
	cJSON_Delete(map);
	return 0;
}

/* From prepare's map, else one call.  0, or -1 on an AWS error. */
static int lookup(irfw_target *t, const struct asg_state *s, struct membership *m)
{
	const cJSON *e = s->map ? cJSON_GetObjectItemCaseSensitive(s->map, irfw_target_id(t)) : NULL;
	if (!e)
		return read_instance(t, m);
	membership_clear(m);
	if (cJSON_IsObject(e))
		membership_from(m, e);
	return 0;
}

/* DescribeAutoScalingGroups of one group: *res to free, and the group in
 * it (NULL when AWS lists none).  0, or -1 on an AWS error. */
static int read_group(irfw_target *t, const char *group, cJSON **res, const cJSON **g)
{
	cJSON *params = cJSON_CreateObject();
	cJSON *names = cJSON_AddArrayToObject(params, "AutoScalingGroupNames");
	cJSON_AddItemToArray(names, cJSON_CreateString(group));
	int rc = irfw_aws_call(t, "autoscaling", "DescribeAutoScalingGroups", params, res);
	cJSON_Delete(params);
	*g = rc == 0 ? irfw_json_list_item(*res, "AutoScalingGroups", 0) : NULL;
	return rc;
}

/* The names of the group's suspended processes, as a cJSON array. */
static cJSON *suspended_names(const cJSON *g)
{
	cJSON *out = cJSON_CreateArray();
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(g, "SuspendedProcesses"))
	{
		const char *n = irfw_json_text(it, "ProcessName");
		if (n)
			cJSON_AddItemToArray(out, cJSON_CreateString(n));
	}
	return out;
}

/* One run of the step for one instance. */
struct attempt {
	irfw_target *t;
	const struct asg_state *s;
	const char *id, *group, *step_name;
	const struct membership *before;
	bool decrement;
	long desired, min;
	irfw_strbuf *refused; /* each refusal, in order: the note's or the detail's start */
	irfw_strbuf *done;    /* what was verified, when one way worked */
	irfw_strbuf *partial; /* what is in place although not enough */
	irfw_strbuf *unrecorded;
	bool aws_error; /* a call failed: irfw_fail_aws_first has an error to give */
};

/* Quote the last call's AWS error after `what`. */
static void refused(struct attempt *a, const char *what)
{
	const char *code = irfw_aws_error_code(a->t), *msg = irfw_aws_error_message(a->t),
	           *rid = irfw_aws_request_id(a->t);
	size_t len = strlen(msg), n = irfw_utf8_prefix(msg, len, MSG_MAX);
	a->aws_error = true;
	irfw_strbuf_printf(a->refused, "%s%s (%s: %.*s%s, request %s)",
	                   irfw_strbuf_len(a->refused) ? "; " : "", what, *code ? code : "Error", (int)n, msg,
	                   n < len ? "..." : "", *rid ? rid : "-");
}

/* A change AWS accepted but the read-back does not show (or could not be
 * read back): not done, whatever the answer said. */
static void not_shown(struct attempt *a, const char *what, const char *rid, const char *shown)
{
	irfw_strbuf_printf(a->refused, "%s%s answered OK (request %s) but %s",
	                   irfw_strbuf_len(a->refused) ? "; " : "", what, rid && *rid ? rid : "-", shown);
}

/* Record for a later release, before the change.  A failure to record does
 * not stop the change (containment goes first): it is logged and noted. */
static void keep_record(struct attempt *a, const char *key, cJSON *value)
{
	if (irfw_record(a->t, key, value) == 0)
		return;
	irfw_log(a->t, IRFW_LOG_WARN,
	         "could not record %s in the case record: a release will not know of it; going on", key);
	irfw_strbuf_printf(a->unrecorded, "%s%s", irfw_strbuf_len(a->unrecorded) ? ", " : "", key);
}

static cJSON *member_params(const struct attempt *a)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "AutoScalingGroupName", a->group);
	cJSON *ids = cJSON_AddArrayToObject(p, "InstanceIds");
	cJSON_AddItemToArray(ids, cJSON_CreateString(a->id));
	return p;
}

static int change(struct attempt *a, const char *op, cJSON *params, char rid[128])
{
	int rc = irfw_aws_call(a->t, "autoscaling", op, params, NULL);
	cJSON_Delete(params);
	snprintf(rid, 128, "%s", irfw_aws_last_request_id(a->t));
	return rc;
}

/* `together`: how many instances the request carried (1: this one). */
static void capacity_note(struct attempt *a, bool decrement, size_t together)
{
	if (decrement && together > 1)
		irfw_strbuf_printf(
		    a->done,
		    ", desired capacity lowered by %zu (it was %ld when this instance read it), "
		    "no replacement",
		    together, a->desired);
	else if (decrement)
		irfw_strbuf_printf(a->done, ", desired capacity %ld -> %ld, no replacement", a->desired,
		                   a->desired - 1);
	else
		irfw_strbuf_printf(a->done, ", desired capacity kept at %ld: a replacement is launched",
		                   a->desired);
}

/* How many instances of the run prepare found in `group`: the ones that
 * may detach from it together. */
static size_t members_in(const struct asg_state *s, const char *group)
{
	size_t n = 0;
	const cJSON *e, *map = s ? s->map : NULL;
	cJSON_ArrayForEach(e, map)
	{
		const char *g = irfw_json_text(e, "group");
		n += g && strcmp(g, group) == 0;
	}
	return n;
}

static bool try_detach(struct attempt *a)
{
	char rid[128];
	/* With the other instances of the run in the same group, in one
	 * request (DetachInstances takes up to 20). */
	cJSON *p = cJSON_CreateObject(), *item = cJSON_CreateString(a->id);
	cJSON_AddStringToObject(p, "AutoScalingGroupName", a->group);
	cJSON_AddBoolToObject(p, "ShouldDecrementDesiredCapacity", a->decrement);
	size_t together = 1;
	int rc = irfw_aws_call_together(a->t, "autoscaling", "DetachInstances", p, "InstanceIds", item,
	                                DETACH_MAX, members_in(a->s, a->group), &together);
	cJSON_Delete(p);
	cJSON_Delete(item);
	if (rc != 0 && together > 1) {
		/* AWS refuses the whole list for one instance's reason (or the
		 * capacity the list would take below the minimum): alone, this
		 * instance gets its own answer. */
		irfw_log(a->t, IRFW_LOG_INFO, "DetachInstances of %zu instances together refused (%s); alone",
		         together, irfw_aws_error_code(a->t));
		together = 1;
		p = member_params(a);
		cJSON_AddBoolToObject(p, "ShouldDecrementDesiredCapacity", a->decrement);
		rc = change(a, "DetachInstances", p, rid);
	}
	snprintf(rid, sizeof(rid), "%s", irfw_aws_last_request_id(a->t));
	if (rc != 0) {
		refused(a, "not detached");
		return false;
	}
	struct membership now = {0};
	bool ok = false;
	if (read_instance(a->t, &now) != 0) {
		refused(a, "DetachInstances answered OK but not read back: DescribeAutoScalingInstances");
		goto out;
	}
	/* Detaching and Detached are on their way out; the group no longer
	 * health-checks or scales them in. */
	ok = !now.group || strcmp(now.group, a->group) != 0 ||
	     (now.lstate && (strcmp(now.lstate, "Detaching") == 0 || strcmp(now.lstate, "Detached") == 0));
	if (!ok) {
		char shown[160];
		snprintf(shown, sizeof(shown), "the group still holds it (%s)",
		         now.lstate ? now.lstate : "?");
		not_shown(a, "DetachInstances", rid, shown);
		goto out;
	}
	irfw_strbuf_printf(a->done, "detached from Auto Scaling group %s", a->group);
	if (together > 1)
		irfw_strbuf_printf(a->done, " (one request for %zu instances, %s)", together, rid);
	capacity_note(a, a->decrement, together);
	if (now.group)
		irfw_strbuf_printf(a->done, " (read back: %s)", now.lstate);
out:
	membership_clear(&now);
	return ok;
}

/*
 * EnterStandby with the site's decrement.  With decrement = true AWS refuses
 * it when the desired capacity would fall below the minimum size (the API
 * reference: "the instances can enter standby as long as the desired capacity
 * ... after the instances are placed into standby is equal to or greater than
 * the minimum capacity"), the very case that makes DetachInstances fail.  So
 * a ValidationError is answered by one more EnterStandby without decrement:
 * the group launches a replacement, which it would have done anyway after
 * terminating the isolated instance, and the suspect instance survives out
 * of its hands.  A site that wants no replacement at all leaves standby out
 * of `fallback`.
 */
static bool try_standby(struct attempt *a)
{
	if (is_standby(a->before->lstate)) {
		irfw_strbuf_printf(a->done, "already %s in Auto Scaling group %s", a->before->lstate,
		                   a->group);
		return true;
	}
	bool dec = a->decrement, retried = false;
	char rid[128];
	for (;;) {
		cJSON *rec = cJSON_CreateObject();
		cJSON_AddBoolToObject(rec, "decrement", dec);
		keep_record(a, "standby", rec);
		cJSON *p = member_params(a);
		cJSON_AddBoolToObject(p, "ShouldDecrementDesiredCapacity", dec);
		if (change(a, "EnterStandby", p, rid) == 0)
			break;
		refused(a, retried ? "not moved to Standby without decrement" : "not moved to Standby");
		if (!dec || strcmp(irfw_aws_error_code(a->t), "ValidationError") != 0)
			return false;
		irfw_log(a->t, IRFW_LOG_WARN,
		         "EnterStandby with decrement refused (%s: %s); again without decrement: group %s "
		         "launches a replacement",
		         irfw_aws_error_code(a->t), irfw_aws_error_message(a->t), a->group);
		dec = false;
		retried = true;
	}
	struct membership now = {0};
	bool ok = false;
	if (read_instance(a->t, &now) != 0) {
		refused(a, "EnterStandby answered OK but not read back: DescribeAutoScalingInstances");
		goto out;
	}
	ok = now.group && strcmp(now.group, a->group) == 0 && is_standby(now.lstate);
	if (!ok) {
		char shown[160];
		snprintf(shown, sizeof(shown), "the group lists it as %s",
		         now.group ? (now.lstate ? now.lstate : "?") : "not a member");
		not_shown(a, "EnterStandby", rid, shown);
		goto out;
	}
	irfw_strbuf_printf(a->done, "moved to Standby in Auto Scaling group %s%s", a->group,
	                   retried ? " without decrement" : "");
	capacity_note(a, dec, 1);
	if (strcmp(now.lstate, "Standby") != 0)
		irfw_strbuf_printf(a->done, " (read back: %s)", now.lstate);
out:
	membership_clear(&now);
	return ok;
}

/*
 * Keep the instance a member, but one the group leaves alone: scale-in
 * protection stops scale-in from picking it, and suspending HealthCheck and
 * ReplaceUnhealthy (plus what the site lists) stops the health-check
 * replacement that scale-in protection does not cover.  Suspending is a
 * change to the whole group, so it is logged as a warning and said in the
 * note.
 */
static bool try_protect(struct attempt *a)
{
	const struct asg_state *s = a->s;
	char rid[128] = "";
	cJSON *gres = NULL, *already = NULL, *todo = cJSON_CreateArray(), *now_susp = NULL;
	const cJSON *g = NULL;
	struct membership now = {0};
	bool ok = false;

	/* Read now, not at the start: a release must resume only what irfw
	 * suspended, and the group may have changed since. */
	if (read_group(a->t, a->group, &gres, &g) != 0) {
		/* Containment first: suspend them all, and record them all. */
		refused(a, "suspended processes not read: DescribeAutoScalingGroups");
		irfw_log(
		    a->t, IRFW_LOG_WARN,
		    "cannot read which processes of group %s are suspended: suspending and recording all "
		    "of %s",
		    a->group, s->procs_text);
	}
	already = suspended_names(g);
	cJSON_Delete(gres);
	gres = NULL;

	if (!a->before->protected) {
		keep_record(a, "protected_from_scale_in", cJSON_CreateTrue());
		cJSON *p = member_params(a);
		cJSON_AddTrueToObject(p, "ProtectedFromScaleIn");
		if (change(a, "SetInstanceProtection", p, rid) != 0)
			refused(a, "scale-in protection not set");
	}

	for (char **w = s->procs; *w; w++)
		if (!json_has_string(already, *w))
			cJSON_AddItemToArray(todo, cJSON_CreateString(*w));
	/* Never send an empty list: SuspendProcesses without ScalingProcesses
	 * suspends every process of the group, Launch and Terminate too. */
	if (cJSON_GetArraySize(todo) > 0) {
		/* What an earlier run of this case suspended stays listed. */
		cJSON *rec = cJSON_Duplicate(todo, true);
		const cJSON *prev = irfw_record_get(a->t, a->step_name, "suspended_processes"), *it;
		cJSON_ArrayForEach(it, prev)
		{
			if (cJSON_IsString(it) && !json_has_string(rec, it->valuestring))
				cJSON_AddItemToArray(rec, cJSON_CreateString(it->valuestring));
		}
		keep_record(a, "suspended_processes", rec);
		irfw_strbuf *names = irfw_strbuf_new();
		cJSON_ArrayForEach(it, todo)
		{
			irfw_strbuf_printf(names, "%s%s", irfw_strbuf_len(names) ? ", " : "",
			                   it->valuestring);
		}
		char *list = irfw_strbuf_steal(names);
		irfw_log(
		    a->t, IRFW_LOG_WARN,
		    "suspending %s on Auto Scaling group %s: this affects EVERY instance of the group, not "
		    "only %s, until they are resumed",
		    list ? list : "processes", a->group, a->id);
		free(list);
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "AutoScalingGroupName", a->group);
		cJSON_AddItemReferenceToObject(p, "ScalingProcesses", todo);
		if (change(a, "SuspendProcesses", p, rid) != 0)
			refused(a, "processes not suspended");
	}

	/* What AWS shows now decides, not the answers above. */
	if (read_instance(a->t, &now) != 0) {
		refused(a, "scale-in protection not read back: DescribeAutoScalingInstances");
		goto out;
	}
	bool prot = now.group && strcmp(now.group, a->group) == 0 && now.protected;
	if (read_group(a->t, a->group, &gres, &g) != 0 || !g) {
		if (irfw_aws_error_code(a->t)[0])
			refused(a, "suspended processes not read back: DescribeAutoScalingGroups");
		else
			irfw_strbuf_printf(a->refused,
			                   "%sread back: DescribeAutoScalingGroups lists no group %s",
			                   irfw_strbuf_len(a->refused) ? "; " : "", a->group);
		if (prot)
			irfw_strbuf_printf(a->partial, "scale-in protection on");
		goto out;
	}
	now_susp = suspended_names(g);
	irfw_strbuf *on = irfw_strbuf_new(), *off = irfw_strbuf_new(), *pre = irfw_strbuf_new();
	size_t n_on = 0, n_off = 0;
	for (char **w = s->procs; *w; w++) {
		bool susp = json_has_string(now_susp, *w);
		irfw_strbuf *b = susp ? on : off;
		irfw_strbuf_printf(b, "%s%s", irfw_strbuf_len(b) ? ", " : "", *w);
		if (susp && json_has_string(already, *w))
			irfw_strbuf_printf(pre, "%s%s", irfw_strbuf_len(pre) ? ", " : "", *w);
		if (susp)
			n_on++;
		else
			n_off++;
	}
	ok = prot && n_off == 0;
	irfw_strbuf *dst = ok ? a->done : a->partial;
	if (ok) {
		irfw_strbuf_printf(dst,
		                   "scale-in protection on%s, %s suspended on group %s (the whole group)",
		                   a->before->protected ? " (it already was)" : "", s->procs_text, a->group);
	} else {
		if (prot)
			irfw_strbuf_puts(dst, "scale-in protection on");
		if (n_on)
			irfw_strbuf_printf(dst, "%s%s suspended on group %s (the whole group)",
			                   prot ? ", " : "", irfw_strbuf_str(on), a->group);
		if (!prot || n_off) {
			/* The refusals quoted say why; these say what AWS shows. */
			irfw_strbuf_printf(a->refused, "%sread back: %s%s%s%s",
			                   irfw_strbuf_len(a->refused) ? "; " : "",
			                   prot ? "" : "scale-in protection off", !prot && n_off ? ", " : "",
			                   n_off ? "not suspended: " : "", irfw_strbuf_str(off));
		}
	}
	if (irfw_strbuf_len(pre))
		irfw_strbuf_printf(dst, " (already suspended before: %s)", irfw_strbuf_str(pre));
	irfw_strbuf_free(on);
	irfw_strbuf_free(off);
	irfw_strbuf_free(pre);
out:
	membership_clear(&now);
	cJSON_Delete(gres);
	cJSON_Delete(already);
	cJSON_Delete(todo);
	cJSON_Delete(now_susp);
	return ok;
}

/* In a dry run nothing of Auto Scaling is sent (the API has no DryRun):
 * say what would be tried, and claim nothing. */
static void dry_note(const struct attempt *a, bool standby)
{
	irfw_strbuf *b = irfw_strbuf_new();
	irfw_strbuf_printf(
	    b, "dry run, nothing sent (Auto Scaling has no DryRun): would %s Auto Scaling group %s",
	    standby ? "move to Standby in" : "detach from", a->group);
	if (a->decrement)
		irfw_strbuf_printf(b, ", desired capacity %ld -> %ld, no replacement", a->desired,
		                   a->desired - 1);
	else
		irfw_strbuf_printf(b, ", desired capacity kept at %ld: a replacement is launched",
		                   a->desired);
	if (a->decrement && a->desired >= 0 && a->desired <= a->min)
		irfw_strbuf_printf(b, " (AWS refuses that: desired capacity %ld is at the minimum size %ld)",
		                   a->desired, a->min);
	for (size_t i = 0; i < a->s->n_fallback; i++) {
		irfw_strbuf_puts(b, i == 0 ? "; if refused: " : ", then ");
		if (a->s->fallback[i] == FB_STANDBY)
			irfw_strbuf_printf(b, "EnterStandby%s",
			                   a->decrement ? " (again without decrement, with a "
			                                  "replacement, if refused)"
			                                : "");
		else
			irfw_strbuf_printf(
			    b, "scale-in protection and suspending %s on group %s (the whole group)",
			    a->s->procs_text, a->group);
	}
	if (a->s->n_fallback == 0)
		irfw_strbuf_puts(b, "; no fallback if refused");
	char *n = irfw_strbuf_steal(b);
	irfw_note(a->t, "%s", n ? n : "dry run: nothing sent");
	free(n);
}

static irfw_status run(irfw_target *t, void *state)
{
	const struct asg_state *s = state;
	irfw_step *step = irfw_target_step(t);
	const char *mode = irfw_step_get(step, "mode");
	bool standby = mode && strcmp(mode, "standby") == 0;
	bool decrement = irfw_step_get_bool(step, "decrement");
	const char *id = irfw_target_id(t);
	struct membership m = {0};
	cJSON *res = NULL;
	irfw_status st = IRFW_OK;
	struct attempt a = {0};

	if (lookup(t, s, &m) != 0) {
		st = irfw_fail_aws(t, "DescribeAutoScalingInstances for %s", id);
		goto out;
	}
	if (!m.group) {
		/* A resumed case with resume off: say where it went. */
		const cJSON *prev = irfw_record_get(t, irfw_step_name(step), "asg");
		const char *pg = irfw_json_text(prev, "group");
		if (pg && !standby) {
			irfw_note(t, "already out of Auto Scaling group %s (recorded by an earlier run)", pg);
			goto out;
		}
		st = irfw_skip(t, "not in an Auto Scaling group");
		goto out;
	}
	if (standby && is_standby(m.lstate)) {
		irfw_note(t, "already %s in Auto Scaling group %s", m.lstate, m.group);
		goto out;
	}

	/* The group's capacity before, for the record and for release. */
	const cJSON *g = NULL;
	if (read_group(t, m.group, &res, &g) != 0) {
		st = irfw_fail_aws(t, "DescribeAutoScalingGroups %s", m.group);
		goto out;
	}
	long desired = irfw_json_long(g, "DesiredCapacity", -1), min = irfw_json_long(g, "MinSize", -1),
	     max = irfw_json_long(g, "MaxSize", -1);

	a = (struct attempt){
	    .t = t,
	    .s = s,
	    .id = id,
	    .group = m.group,
	    .step_name = irfw_step_name(step),
	    .before = &m,
	    .decrement = decrement,
	    .desired = desired,
	    .min = min,
	    .refused = irfw_strbuf_new(),
	    .done = irfw_strbuf_new(),
	    .partial = irfw_strbuf_new(),
	    .unrecorded = irfw_strbuf_new(),
	};

	cJSON *rec = cJSON_CreateObject();
	cJSON_AddStringToObject(rec, "group", m.group);
	cJSON_AddStringToObject(rec, "mode", standby ? "standby" : "detach");
	cJSON_AddBoolToObject(rec, "decrement", decrement);
	cJSON_AddNumberToObject(rec, "desired_capacity", (double)desired);
	cJSON_AddNumberToObject(rec, "min_size", (double)min);
	cJSON_AddNumberToObject(rec, "max_size", (double)max);
	cJSON_AddStringToObject(rec, "lifecycle_state", m.lstate ? m.lstate : "");
	cJSON_AddBoolToObject(rec, "protected_from_scale_in_before", m.protected);
	keep_record(&a, "asg", rec);

	if (irfw_target_dry_run(t)) {
		dry_note(&a, standby);
		goto out;
	}

	size_t mark = 0;
	bool ok = standby ? try_standby(&a) : try_detach(&a);
	for (size_t i = 0; !ok && i < s->n_fallback; i++) {
		/* What the last attempt met, not the whole story again. */
		const char *last = irfw_strbuf_str(a.refused) + mark;
		if (strncmp(last, "; ", 2) == 0)
			last += 2;
		irfw_log(t, IRFW_LOG_WARN, "%s; trying %s", last,
		         s->fallback[i] == FB_STANDBY ? "EnterStandby"
		                                      : "scale-in protection and suspending processes");
		mark = irfw_strbuf_len(a.refused);
		ok = s->fallback[i] == FB_STANDBY ? try_standby(&a) : try_protect(&a);
	}

	irfw_strbuf *msg = irfw_strbuf_new();
	if (ok) {
		if (irfw_strbuf_len(a.refused))
			irfw_strbuf_printf(msg, "%s: ", irfw_strbuf_str(a.refused));
		irfw_strbuf_puts(msg, irfw_strbuf_str(a.done));
	} else {
		irfw_strbuf_printf(msg, "Auto Scaling group %s can still terminate %s: %s", m.group, id,
		                   irfw_strbuf_str(a.refused));
		if (decrement && desired >= 0 && desired <= min)
			irfw_strbuf_printf(
			    msg,
			    " (desired capacity %ld is at the minimum size %ld: decrement = false "
			    "keeps capacity with a replacement)",
			    desired, min);
		if (irfw_strbuf_len(a.partial))
			irfw_strbuf_printf(msg, "; in place: %s", irfw_strbuf_str(a.partial));
		if (s->n_fallback == 0)
			irfw_strbuf_puts(msg, "; no fallback configured");
	}
	if (irfw_strbuf_len(a.unrecorded))
		irfw_strbuf_printf(msg, "; NOT in the case record (a release will not know): %s",
		                   irfw_strbuf_str(a.unrecorded));
	char *text = irfw_strbuf_steal(msg);
	if (ok)
		irfw_note(t, "%s", text ? text : "out of the Auto Scaling group's hands");
	else if (a.aws_error)
		st = irfw_fail_aws_first(t, "%s", text ? text : "still in the Auto Scaling group's hands");
	else
		st = irfw_fail(t, "%s", text ? text : "still in the Auto Scaling group's hands");
	free(text);
out:
	irfw_strbuf_free(a.refused);
	irfw_strbuf_free(a.done);
	irfw_strbuf_free(a.partial);
	irfw_strbuf_free(a.unrecorded);
	cJSON_Delete(res);
	membership_clear(&m);
	return st;
}

/* One Auto Scaling change of the release; `what` goes to bad on a refusal. */
static bool undo(irfw_target *t, const char *op, cJSON *p, const char *what, irfw_strbuf *bad, bool *aws)
{
	int rc = irfw_aws_call(t, "autoscaling", op, p, NULL);
	cJSON_Delete(p);
	if (rc == 0)
		return true;
	const char *rid = irfw_aws_request_id(t);
	irfw_strbuf_printf(bad, "%s%s refused (%s: %s, request %s)", irfw_strbuf_len(bad) ? "; " : "", what,
	                   irfw_aws_error_code(t), irfw_aws_error_message(t), *rid ? rid : "-");
	*aws = true;
	return false;
}

static cJSON *instance_params(irfw_target *t, const char *group)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "AutoScalingGroupName", group);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "InstanceIds"), cJSON_CreateString(irfw_target_id(t)));
	return p;
}

/*
 * `irfw release`: the instance back in its group as recorded (attached
 * again after a detach, out of Standby), its scale-in protection as it was,
 * the processes irfw suspended resumed, and the desired capacity back to
 * the recorded one when the group now wants fewer.  Each is read first (a
 * second release does only what is left) and read back after.
 */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	const char *name = irfw_step_name(irfw_target_step(t));
	const cJSON *rec = irfw_record_get(t, name, "asg");
	const cJSON *susp = irfw_record_get(t, name, "suspended_processes");
	const cJSON *prot = irfw_record_get(t, name, "protected_from_scale_in");
	const char *group = irfw_json_text(rec, "group");
	long want = irfw_json_long(rec, "desired_capacity", -1);
	bool was_protected = irfw_json_bool(rec, "protected_from_scale_in_before", false);
	bool was_standby = is_standby(irfw_json_text(rec, "lifecycle_state"));
	bool dry = irfw_target_dry_run(t), aws = false;
	struct membership now = {0};
	irfw_strbuf *bad = irfw_strbuf_new(), *done = irfw_strbuf_new();
	cJSON *gres = NULL;
	irfw_status st = IRFW_OK;
	if (!group) {
		st = irfw_skip(t, "no Auto Scaling group recorded: nothing to put back");
		goto out;
	}
	if (read_instance(t, &now) != 0) {
		st = irfw_fail_aws(t, "DescribeAutoScalingInstances for %s", irfw_target_id(t));
		goto out;
	}
	bool member = now.group && strcmp(now.group, group) == 0 && now.lstate &&
	              strcmp(now.lstate, "Detaching") != 0 && strcmp(now.lstate, "Detached") != 0;
	if (now.group && strcmp(now.group, group) != 0) {
		st = irfw_fail(t, "now a member of Auto Scaling group %s, not %s: not moved", now.group,
		               group);
		goto out;
	}
	if (!member) {
		if (undo(t, "AttachInstances", instance_params(t, group), "AttachInstances", bad, &aws))
			irfw_strbuf_printf(done, "attached again to Auto Scaling group %s", group);
	} else if (is_standby(now.lstate) && !was_standby) {
		if (undo(t, "ExitStandby", instance_params(t, group), "ExitStandby", bad, &aws))
			irfw_strbuf_printf(done, "out of Standby in Auto Scaling group %s", group);
	} else {
		irfw_strbuf_printf(done, "%s in Auto Scaling group %s", now.lstate, group);
	}
	if (cJSON_IsTrue(prot) && !was_protected && member && now.protected) {
		cJSON *p = instance_params(t, group);
		cJSON_AddFalseToObject(p, "ProtectedFromScaleIn");
		if (undo(t, "SetInstanceProtection", p, "SetInstanceProtection (off)", bad, &aws))
			irfw_strbuf_puts(done, ", scale-in protection off again");
	}
	if (cJSON_GetArraySize(susp) > 0) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "AutoScalingGroupName", group);
		cJSON_AddItemToObject(p, "ScalingProcesses", cJSON_Duplicate(susp, true));
		if (undo(t, "ResumeProcesses", p, "ResumeProcesses", bad, &aws))
			irfw_strbuf_puts(done, ", the processes irfw suspended resumed");
	}
	if (dry) {
		irfw_note(t, "dry run (Auto Scaling has no DryRun, nothing sent): would put it back: %s",
		          irfw_strbuf_str(done));
		goto out;
	}
	/* Read back. */
	const cJSON *g = NULL;
	if (read_instance(t, &now) != 0) {
		irfw_strbuf_printf(bad, "%snot read back: DescribeAutoScalingInstances (%s)",
		                   irfw_strbuf_len(bad) ? "; " : "", irfw_aws_error_code(t));
		aws = true;
	} else if (!now.group || strcmp(now.group, group) != 0 || (is_standby(now.lstate) && !was_standby)) {
		irfw_strbuf_printf(bad, "%sthe group lists it as %s", irfw_strbuf_len(bad) ? "; " : "",
		                   now.group ? now.lstate : "not a member");
	} else if (cJSON_IsTrue(prot) && now.protected != was_protected) {
		irfw_strbuf_printf(bad, "%sscale-in protection is %s", irfw_strbuf_len(bad) ? "; " : "",
		                   now.protected ? "on" : "off");
	}
	if (read_group(t, group, &gres, &g) != 0 || !g) {
		irfw_strbuf_printf(bad, "%sgroup %s not read back", irfw_strbuf_len(bad) ? "; " : "", group);
	} else {
		cJSON *still = suspended_names(g);
		const cJSON *it;
		cJSON_ArrayForEach(it,
		                   susp) if (cJSON_IsString(it) && json_has_string(still, it->valuestring))
		    irfw_strbuf_printf(bad, "%s%s still suspended", irfw_strbuf_len(bad) ? "; " : "",
		                       it->valuestring);
		cJSON_Delete(still);
		long desired = irfw_json_long(g, "DesiredCapacity", -1),
		     max = irfw_json_long(g, "MaxSize", -1);
		if (want >= 0 && desired >= 0 && desired < want && (max < 0 || want <= max)) {
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "AutoScalingGroupName", group);
			cJSON_AddNumberToObject(p, "DesiredCapacity", (double)want);
			if (undo(t, "SetDesiredCapacity", p, "SetDesiredCapacity", bad, &aws))
				irfw_strbuf_printf(done, ", desired capacity %ld -> %ld (as recorded)",
				                   desired, want);
		} else if (want >= 0 && desired > want) {
			irfw_strbuf_printf(
			    done,
			    ", desired capacity %ld, recorded %ld: not lowered (the group would "
			    "terminate an instance, maybe this one)",
			    desired, want);
		} else if (desired == want) {
			irfw_strbuf_printf(done, ", desired capacity %ld as recorded", desired);
		}
	}
	if (irfw_strbuf_len(bad))
		st = aws ? irfw_fail_aws_first(t, "not released: %s", irfw_strbuf_str(bad))
		         : irfw_fail(t, "not released: %s", irfw_strbuf_str(bad));
	else
		irfw_note(t, "verified: %s", irfw_strbuf_str(done));
out:
	membership_clear(&now);
	cJSON_Delete(gres);
	irfw_strbuf_free(bad);
	irfw_strbuf_free(done);
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "autoscaling:DescribeAutoScalingInstances", .per = "run", .calls = 1},
    {.action = "autoscaling:DescribeAutoScalingGroups", .per = "instance"},
    {.action = "autoscaling:DetachInstances", .when = "mode=detach", .per = "instance"},
    {.action = "autoscaling:EnterStandby", .per = "instance"},
    {.action = "autoscaling:SetInstanceProtection", .when = "fallback", .per = "instance"},
    {.action = "autoscaling:SuspendProcesses", .when = "fallback", .per = "instance"},
    /* What release() calls besides the above (irfw policy --release). */
    {.action = "autoscaling:AttachInstances", .when = "release", .per = "instance"},
    {.action = "autoscaling:ExitStandby", .when = "release", .per = "instance"},
    {.action = "autoscaling:ResumeProcesses", .when = "release", .per = "instance"},
    {.action = "autoscaling:SetDesiredCapacity", .when = "release", .per = "instance"},
    {.action = "autoscaling:SetInstanceProtection", .when = "release", .per = "instance"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "asg",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "take the instance out of its Auto Scaling group's hands (detach, Standby, or protect)",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_CONTAIN,
    .init = init,
    .prepare = prepare,
    /* Run dry: Auto Scaling has no DryRun, so in a dry run it sends no
     * change and says what it would try. */
    .check = run,
    .run = run,
    .release = release,
    .fini = fini,
    .description =
        "Finds the instance's Auto Scaling group (one DescribeAutoScalingInstances call per 50 instances "
        "of the run) and detaches it (mode = detach) or moves it to Standby (mode = standby), with "
        "ShouldDecrementDesiredCapacity = decrement.  Instances of the run in the same group detach "
        "together, in one DetachInstances of up to 20 (each is then read back on its own); when AWS "
        "refuses the list, each instance asks again alone, so that the refusal is its own.  The group name, "
        "mode, decrement flag, the group's "
        "desired, minimum and maximum capacity, the instance's lifecycle state and scale-in protection "
        "before are recorded as asg, so release can put it back.  An instance in no group is skipped "
        "with the reason \"not in an Auto Scaling group\".\n\n"
        "It runs before isolate: an isolated instance fails its health checks, and the group would "
        "terminate and replace it, destroying the evidence; scale-in could pick it as well.  EC2 "
        "termination protection does not stop Auto Scaling.  Detaching also takes the instance out of "
        "the group's load balancers and target groups (the elb step then covers registrations made "
        "outside the group).\n\n"
        "When AWS refuses (with decrement = true it refuses DetachInstances and EnterStandby when the "
        "group is at its minimum size, the common layout; or a permission is missing), the fallback "
        "list is tried in order: standby (EnterStandby; a ValidationError with decrement = true is "
        "answered by EnterStandby without decrement, and the group launches a replacement), then "
        "protect (scale-in protection on the instance, and suspend_processes, by default HealthCheck, "
        "ReplaceUnhealthy and AZRebalance, suspended on the group: this affects EVERY instance of the "
        "group until they are resumed, and is logged as a warning).  Before each change the record "
        "gets what it does: standby (its decrement), protected_from_scale_in, and suspended_processes "
        "(only those not suspended before, read just before), so a release undoes only what irfw did; "
        "a record that cannot be written does not stop the change but shows in the note and the "
        "log.\n\n"
        "Every outcome is read back (DescribeAutoScalingInstances: membership, LifecycleState, "
        "ProtectedFromScaleIn; DescribeAutoScalingGroups: SuspendedProcesses).  The step is OK only "
        "when AWS shows the instance detached, in Standby, or protected with every listed process "
        "suspended; its note says which, and why each preferred way was refused (AWS error code and "
        "request id).  Otherwise it FAILS with the first AWS error and each attempt in the detail, "
        "which keeps the instance from being reported contained.  The step reports no containment of "
        "its own: it does not cut the instance off, isolate does.\n\n"
        "In a dry run (irfw check, --dry-run) no Auto Scaling change is sent, as the API has no DryRun: "
        "the note says what would be tried, and whether AWS will refuse it at the minimum size.\n\n"
        "What it cannot do: a protected instance can still be terminated by hand "
        "(TerminateInstanceInAutoScalingGroup), by an instance refresh that replaces protected "
        "instances, or as a Spot interruption; suspended processes stay suspended until someone "
        "resumes them.  Lifecycle hooks on the group still run for the detach.",
};

IRFW_PLUGIN_ENTRY(asg, plugin)
