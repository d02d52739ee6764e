/*
 * elb.c - take the instance out of every load balancer.
 *
 * While a compromised instance is registered, a load balancer keeps sending
 * it customer traffic (and the customers' data), and once isolate cuts it
 * off, its failing health checks page the service owners.  Deregistering it
 * first drains it cleanly.  Both ELBv2 target groups (ALB/NLB/GWLB) and
 * classic load balancers are covered.
 */
/* clock_gettime and nanosleep are POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irfw/irfw.h"

/* How often wait_drain polls DescribeTargetHealth. */
#define DRAIN_POLL_SECONDS 5
/* Targets per DeregisterTargets that irfw gathers from several instances:
 * AWS documents no limit; this one keeps a request small. */
#define DEREGISTER_MAX 100

static const struct irfw_option opts[] = {
    {.name = "wait_drain",
     .type = IRFW_OPT_BOOL,
     .def = "false",
     .help = "Wait until the deregistered targets have finished draining (DescribeTargetHealth shows "
             "them gone or unused) before the next step runs.  Off by default: the deregistration "
             "delay is 300 s unless the target group says otherwise, and isolation should not wait "
             "that long."},
    {.name = "drain_timeout",
     .type = IRFW_OPT_INT,
     .def = "330",
     .help = "With wait_drain, give up waiting after this many seconds; the step still succeeds (the "
             "targets are deregistered) and notes that they were still draining."},
    {.name = NULL},
};

/* What prepare saw for the whole batch: the instances any load balancer of
 * the account names.  NULL: every instance looks for itself. */
struct elb_state {
	irfw_step *step;
	cJSON *named; /* instance id -> true */
	/* target group arn -> how many instances of the run it holds, so
	 * their deregistrations go in one DeregisterTargets */
	cJSON *held;
};

static int init(irfw_step *step, void **state)
{
	if (irfw_step_get_bool(step, "wait_drain") && irfw_step_get_int(step, "drain_timeout") <= 0) {
		irfw_step_error(step, "drain_timeout", "drain_timeout must be a positive number of seconds");
		return -1;
	}
	struct elb_state *st = calloc(1, sizeof(*st));
	if (!st) {
		irfw_step_error(step, NULL, "out of memory");
		return -1;
	}
	st->step = step;
	*state = st;
	return 0;
}

static void fini(void *state)
{
	struct elb_state *st = state;
	if (st) {
		cJSON_Delete(st->named);
		cJSON_Delete(st->held);
	}
	free(st);
}

/* ------------------------------------------------------------------ */
/* The batch's screen: one walk over the account's load balancers.      */

static void name_instance(cJSON *named, const char *id)
{
	if (id && !cJSON_GetObjectItemCaseSensitive(named, id))
		cJSON_AddTrueToObject(named, id);
}

/* What the screen of target groups fills in. */
struct screen {
	cJSON *named;
	cJSON *held;
	cJSON *batch; /* the run's instance ids -> true */
};

static int screen_groups(irfw_batch *b, const cJSON *res, void *ctx)
{
	struct screen *sc = ctx;
	const cJSON *tg;
	cJSON_ArrayForEach(tg, cJSON_GetObjectItemCaseSensitive(res, "TargetGroups"))
	{
		const char *arn = irfw_json_text(tg, "TargetGroupArn");
		const char *type = irfw_json_text(tg, "TargetType");
		if (!arn || (type && strcmp(type, "instance") != 0))
			continue;
		cJSON *hp = cJSON_CreateObject();
		cJSON_AddStringToObject(hp, "TargetGroupArn", arn);
		cJSON *hres = NULL;
		int rc =
		    irfw_batch_aws_call(b, NULL, "elasticloadbalancing", "DescribeTargetHealth", hp, &hres);
		cJSON_Delete(hp);
		if (rc != 0)
			return 1; /* (a group deleted meanwhile too: each instance looks again) */
		const cJSON *d;
		double n = 0;
		cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(hres, "TargetHealthDescriptions"))
		{
			const char *id = irfw_json_text(cJSON_GetObjectItemCaseSensitive(d, "Target"), "Id");
			name_instance(sc->named, id);
			n += id && cJSON_GetObjectItemCaseSensitive(sc->batch, id) != NULL;
		}
		if (n > 0 && !cJSON_GetObjectItemCaseSensitive(sc->held, arn))
			cJSON_AddNumberToObject(sc->held, arn, n);
		cJSON_Delete(hres);
	}
	return 0;
}

static int screen_classic(irfw_batch *b, const cJSON *res, void *named)
{
	(void)b;
	const cJSON *lb;
	cJSON_ArrayForEach(lb, cJSON_GetObjectItemCaseSensitive(res, "LoadBalancerDescriptions"))
	{
		const cJSON *in;
		cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(lb, "Instances"))
		    name_instance(named, irfw_json_text(in, "InstanceId"));
	}
	return 0;
}

/* For a fleet, one walk over every target group and classic load balancer
 * instead of one per instance (DescribeTargetGroups and
 * DescribeLoadBalancers answer the whole account each time): an instance no
 * load balancer names is then skipped without a call, and only the ones
 * named look again for themselves, fresh, in run (so what they record and
 * deregister is what AWS shows then, after the asg step's detach).  A
 * failure here is not fatal: every instance looks for itself. */
static int prepare(irfw_batch *b, void *state)
{
	struct elb_state *st = state;
	cJSON_Delete(st->named);
	cJSON_Delete(st->held);
	st->named = st->held = NULL;
	struct screen sc = {
	    .named = cJSON_CreateObject(), .held = cJSON_CreateObject(), .batch = cJSON_CreateObject()};
	size_t todo = 0;
	for (size_t i = 0, n = irfw_batch_count(b); i < n; i++) {
		irfw_target *t = irfw_batch_target(b, i);
		if (irfw_target_instance(t) && !irfw_step_resumed(t)) {
			todo++;
			name_instance(sc.batch, irfw_target_id(t));
		}
	}
	/* Even for one instance: the same calls as its own look-up, made
	 * while the other steps prepare instead of on its path. */
	if (todo == 0 || !sc.named || !sc.held || !sc.batch)
		goto out;
	if (irfw_batch_aws_paginate(b, NULL, "elasticloadbalancing", "DescribeTargetGroups", NULL,
	                            screen_groups, &sc) != 0 ||
	    irfw_batch_aws_paginate(b, NULL, "elb", "DescribeLoadBalancers", NULL, screen_classic,
	                            sc.named) != 0) {
		irfw_step_log(st->step, IRFW_LOG_WARN,
		              "the batch's look-up of load balancers failed; each instance looks for itself");
		goto out;
	}
	st->named = sc.named;
	st->held = sc.held;
	sc.named = sc.held = NULL;
out:
	cJSON_Delete(sc.named);
	cJSON_Delete(sc.held);
	cJSON_Delete(sc.batch);
	return 0;
}

/* ------------------------------------------------------------------ */
/* ELBv2 target groups.                                                 */

/* find_targets' walk over the pages of DescribeTargetGroups. */
struct tg_walk {
	cJSON *found;
	irfw_status *st;
};

/* The instance's registrations in the target groups of one page: 0, or 1
 * after reporting an AWS error (which stops the walk). */
static int targets_in_page(irfw_target *t, const cJSON *res, void *ctx)
{
	struct tg_walk *w = ctx;
	const char *id = irfw_target_id(t);
	const char *vpc = irfw_target_vpc_id(t);
	const cJSON *tg;
	cJSON_ArrayForEach(tg, cJSON_GetObjectItemCaseSensitive(res, "TargetGroups"))
	{
		const char *arn = irfw_json_text(tg, "TargetGroupArn");
		const char *type = irfw_json_text(tg, "TargetType");
		const char *tg_vpc = irfw_json_text(tg, "VpcId");
		/* Only instance targets name instance ids, and a target
		 * group holds instances of its own VPC only. */
		if (!arn || (type && strcmp(type, "instance") != 0) ||
		    (vpc && tg_vpc && strcmp(vpc, tg_vpc) != 0))
			continue;
		cJSON *hp = cJSON_CreateObject();
		cJSON_AddStringToObject(hp, "TargetGroupArn", arn);
		cJSON *hres = NULL;
		int hrc = irfw_aws_call(t, "elasticloadbalancing", "DescribeTargetHealth", hp, &hres);
		cJSON_Delete(hp);
		if (hrc != 0) {
			/* Deleted between the two calls: nothing registered there. */
			if (strcmp(irfw_aws_error_code(t), "TargetGroupNotFound") == 0)
				continue;
			*w->st = irfw_fail_aws(t, "DescribeTargetHealth %s", arn);
			return 1;
		}
		const cJSON *d;
		cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(hres, "TargetHealthDescriptions"))
		{
			const cJSON *target = cJSON_GetObjectItemCaseSensitive(d, "Target");
			const char *tid = irfw_json_text(target, "Id");
			if (!tid || strcmp(tid, id) != 0)
				continue;
			const char *state =
			    irfw_json_text(cJSON_GetObjectItemCaseSensitive(d, "TargetHealth"), "State");
			cJSON *f = cJSON_CreateObject();
			cJSON_AddStringToObject(f, "target_group_arn", arn);
			cJSON_AddNumberToObject(f, "port", (double)irfw_json_long(target, "Port", 0));
			cJSON_AddStringToObject(f, "state", state ? state : "");
			cJSON_AddItemToArray(w->found, f);
		}
		cJSON_Delete(hres);
	}
	return 0;
}

/* Where the instance is registered: [{arn, port, state}] into *found
 * (drained or deregistering targets included).  Returns 0, or -1 on an AWS
 * error (reported). */
static int find_targets(irfw_target *t, cJSON *found, irfw_status *st)
{
	struct tg_walk w = {.found = found, .st = st};
	int rc =
	    irfw_aws_paginate(t, "elasticloadbalancing", "DescribeTargetGroups", NULL, targets_in_page, &w);
	if (rc < 0)
		*st = irfw_fail_aws(t, "DescribeTargetGroups");
	return rc == 0 ? 0 : -1;
}

static bool draining(const cJSON *f)
{
	const char *s = irfw_json_text(f, "state");
	return s && strcmp(s, "draining") == 0;
}

/* This instance as a target of registration `f` ({"Id", "Port"} as the
 * ELBv2 API takes it; the port only where the registration has one). */
static cJSON *target_of(irfw_target *t, const cJSON *f)
{
	cJSON *tt = cJSON_CreateObject();
	cJSON_AddStringToObject(tt, "Id", irfw_target_id(t));
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(f, "port");
	if (cJSON_IsNumber(port) && port->valuedouble > 0)
		cJSON_AddNumberToObject(tt, "Port", port->valuedouble);
	return tt;
}

/* DescribeTargetHealth of this instance in registration `f`: 0 with *res,
 * or -1 (the AWS error is the target's last). */
static int target_health(irfw_target *t, const cJSON *f, cJSON **res)
{
	cJSON *params = cJSON_CreateObject();
	cJSON_AddStringToObject(params, "TargetGroupArn", irfw_json_text(f, "target_group_arn"));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(params, "Targets"), target_of(t, f));
	int rc = irfw_aws_call(t, "elasticloadbalancing", "DescribeTargetHealth", params, res);
	cJSON_Delete(params);
	return rc;
}

/* Deregister every (group, port) in `todo`, one call per target group; an
 * instance with one registration in a group goes in one request with the
 * other instances of the run the group holds. */
static int deregister_targets(irfw_target *t, const struct elb_state *es, const cJSON *todo, cJSON *rids,
                              irfw_status *st)
{
	const cJSON *f;
	cJSON *done = cJSON_CreateObject(); /* arns already sent */
	int rc = 0;
	cJSON_ArrayForEach(f, todo)
	{
		const char *arn = irfw_json_text(f, "target_group_arn");
		if (cJSON_GetObjectItemCaseSensitive(done, arn))
			continue;
		cJSON_AddTrueToObject(done, arn);
		cJSON *params = cJSON_CreateObject();
		cJSON_AddStringToObject(params, "TargetGroupArn", arn);
		cJSON *targets = cJSON_AddArrayToObject(params, "Targets");
		const cJSON *g;
		cJSON_ArrayForEach(g, todo)
		{
			if (strcmp(irfw_json_text(g, "target_group_arn"), arn) != 0)
				continue;
			cJSON_AddItemToArray(targets, target_of(t, g));
		}
		int crc;
		size_t together = 1;
		double held = es && es->held
		                  ? cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(es->held, arn))
		                  : 0;
		if (cJSON_GetArraySize(targets) == 1 && held > 1) {
			cJSON *item = cJSON_DetachItemFromArray(targets, 0);
			cJSON_DeleteItemFromObjectCaseSensitive(params, "Targets");
			crc =
			    irfw_aws_call_together(t, "elasticloadbalancing", "DeregisterTargets", params,
			                           "Targets", item, DEREGISTER_MAX, (size_t)held, &together);
			if (crc != 0 && together > 1) {
				/* A refused list is the request's: alone, the answer is
				 * this instance's. */
				together = 1;
				cJSON *one = cJSON_AddArrayToObject(params, "Targets");
				cJSON_AddItemToArray(one, cJSON_Duplicate(item, true));
				crc = irfw_aws_call(t, "elasticloadbalancing", "DeregisterTargets", params,
				                    NULL);
			}
			cJSON_Delete(item);
			if (crc == 0 && together > 1)
				irfw_note(t, "deregistered from %s in one request for %zu instances (%s)",
				          arn, together, irfw_aws_last_request_id(t));
		} else {
			crc = irfw_aws_call(t, "elasticloadbalancing", "DeregisterTargets", params, NULL);
		}
		cJSON_Delete(params);
		if (crc == 0)
			cJSON_AddStringToObject(rids, arn, irfw_aws_last_request_id(t));
		if (crc != 0) {
			*st = irfw_fail_aws(t, "DeregisterTargets %s from %s", irfw_target_id(t), arn);
			rc = -1;
			break;
		}
	}
	cJSON_Delete(done);
	return rc;
}

/* Read back what was deregistered (DescribeTargetHealth of each
 * registration; DeregisterTargets answers OK even for a target it does not
 * hold): draining or unused is out of the rotation, anything else is still
 * in it.  0, or -1 with *st set (an AWS error, or a registration AWS
 * still shows serving). */
static int check_deregistered(irfw_target *t, const cJSON *todo, const cJSON *rids, irfw_status *st)
{
	const cJSON *f;
	cJSON_ArrayForEach(f, todo)
	{
		const char *arn = irfw_json_text(f, "target_group_arn");
		cJSON *res = NULL;
		if (target_health(t, f, &res) != 0) {
			const char *code = irfw_aws_error_code(t);
			/* The group gone, or the target unknown to it: not served. */
			if (strcmp(code, "TargetGroupNotFound") == 0 || strcmp(code, "InvalidTarget") == 0)
				continue;
			*st = irfw_fail_aws(
			    t, "DeregisterTargets answered OK but not read back: DescribeTargetHealth %s",
			    arn);
			return -1;
		}
		const cJSON *d;
		const char *serving = NULL;
		cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(res, "TargetHealthDescriptions"))
		{
			const char *tid = irfw_json_text(cJSON_GetObjectItemCaseSensitive(d, "Target"), "Id");
			const char *state =
			    irfw_json_text(cJSON_GetObjectItemCaseSensitive(d, "TargetHealth"), "State");
			if (!tid || strcmp(tid, irfw_target_id(t)) != 0)
				continue;
			if (!state || (strcmp(state, "unused") != 0 && !strstr(state, "draining")))
				serving = state ? state : "?";
		}
		if (serving) {
			*st = irfw_fail(t,
			                "DeregisterTargets answered OK (request %s) but target group %s "
			                "still shows %s %s",
			                irfw_json_text(rids, arn) ? irfw_json_text(rids, arn) : "-", arn,
			                irfw_target_id(t), serving);
			cJSON_Delete(res);
			return -1;
		}
		cJSON_Delete(res);
	}
	return 0;
}

/* True when no target of `wait` is still registered or draining. */
static int drained(irfw_target *t, const cJSON *wait, bool *all_gone)
{
	const cJSON *f;
	*all_gone = true;
	cJSON_ArrayForEach(f, wait)
	{
		cJSON *res = NULL;
		if (target_health(t, f, &res) != 0) {
			if (strcmp(irfw_aws_error_code(t), "TargetGroupNotFound") == 0)
				continue;
			return -1;
		}
		const cJSON *d;
		cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(res, "TargetHealthDescriptions"))
		{
			const char *tid = irfw_json_text(cJSON_GetObjectItemCaseSensitive(d, "Target"), "Id");
			const char *s =
			    irfw_json_text(cJSON_GetObjectItemCaseSensitive(d, "TargetHealth"), "State");
			if (tid && strcmp(tid, irfw_target_id(t)) == 0 && (!s || strcmp(s, "unused") != 0))
				*all_gone = false;
		}
		cJSON_Delete(res);
		if (!*all_gone)
			break;
	}
	return 0;
}

static irfw_status wait_drain(irfw_target *t, const cJSON *wait, long timeout)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		bool gone;
		if (drained(t, wait, &gone) != 0)
			return irfw_fail_aws(t,
			                     "DescribeTargetHealth while waiting for the targets to drain");
		clock_gettime(CLOCK_MONOTONIC, &now);
		long waited = (long)(now.tv_sec - start.tv_sec);
		if (gone) {
			irfw_note(t, "targets drained after %ld s", waited);
			return IRFW_OK;
		}
		if (waited >= timeout) {
			/* Deregistered is what matters for containment; isolate
			 * must not be held back by a long deregistration delay. */
			irfw_log(t, IRFW_LOG_WARN, "targets still draining after %ld s; continuing", waited);
			irfw_note(t, "targets still draining after %ld s (drain_timeout); continuing",
			          waited);
			return IRFW_OK;
		}
		struct timespec nap = {.tv_sec = DRAIN_POLL_SECONDS, .tv_nsec = 0};
		if (timeout - waited < DRAIN_POLL_SECONDS)
			nap.tv_sec = timeout - waited;
		nanosleep(&nap, NULL);
	}
}

/* ------------------------------------------------------------------ */
/* Classic load balancers.                                              */

/* The classic load balancers of one page that hold the instance. */
static int classic_in_page(irfw_target *t, const cJSON *res, void *names)
{
	const char *id = irfw_target_id(t);
	const cJSON *lb;
	cJSON_ArrayForEach(lb, cJSON_GetObjectItemCaseSensitive(res, "LoadBalancerDescriptions"))
	{
		const char *name = irfw_json_text(lb, "LoadBalancerName");
		const cJSON *in;
		cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(lb, "Instances"))
		{
			const char *iid = irfw_json_text(in, "InstanceId");
			if (name && iid && strcmp(iid, id) == 0) {
				cJSON_AddItemToArray(names, cJSON_CreateString(name));
				break;
			}
		}
	}
	return 0;
}

static int find_classic(irfw_target *t, cJSON *names, irfw_status *st)
{
	if (irfw_aws_paginate(t, "elb", "DescribeLoadBalancers", NULL, classic_in_page, names) == 0)
		return 0;
	*st = irfw_fail_aws(t, "DescribeLoadBalancers (classic)");
	return -1;
}

static int deregister_classic(irfw_target *t, const cJSON *names, irfw_status *st)
{
	const cJSON *n;
	cJSON_ArrayForEach(n, names)
	{
		cJSON *params = cJSON_CreateObject();
		cJSON_AddStringToObject(params, "LoadBalancerName", n->valuestring);
		cJSON *insts = cJSON_AddArrayToObject(params, "Instances");
		cJSON *in = cJSON_CreateObject();
		cJSON_AddStringToObject(in, "InstanceId", irfw_target_id(t));
		cJSON_AddItemToArray(insts, in);
		cJSON *res = NULL;
		int rc = irfw_aws_call(t, "elb", "DeregisterInstancesFromLoadBalancer", params, &res);
		cJSON_Delete(params);
		if (rc != 0) {
			*st = irfw_fail_aws(t, "DeregisterInstancesFromLoadBalancer %s from %s",
			                    irfw_target_id(t), n->valuestring);
			return -1;
		}
		/* The answer lists the instances the load balancer still holds. */
		const cJSON *in_lb;
		bool still = false;
		cJSON_ArrayForEach(in_lb, cJSON_GetObjectItemCaseSensitive(res, "Instances"))
		{
			const char *iid = irfw_json_text(in_lb, "InstanceId");
			still = still || (iid && strcmp(iid, irfw_target_id(t)) == 0);
		}
		cJSON_Delete(res);
		if (still && !irfw_target_dry_run(t)) {
			*st = irfw_fail(
			    t,
			    "DeregisterInstancesFromLoadBalancer answered OK (request %s) but classic load "
			    "balancer %s still lists %s",
			    irfw_aws_last_request_id(t), n->valuestring, irfw_target_id(t));
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */

static irfw_status run(irfw_target *t, void *state)
{
	const struct elb_state *es = state;
	irfw_step *step = irfw_target_step(t);
	irfw_status st = IRFW_OK;
	cJSON *found = cJSON_CreateArray();
	cJSON *todo = cJSON_CreateArray();
	cJSON *classic = cJSON_CreateArray();
	cJSON *rids = cJSON_CreateObject(); /* target group arn -> its DeregisterTargets' request */
	int n_draining = 0;
	const char *dry = irfw_target_dry_run(t) ? " (dry run)" : "";

	/* The batch's screen names no such instance: nothing to look up. */
	if (es && es->named && !cJSON_GetObjectItemCaseSensitive(es->named, irfw_target_id(t))) {
		st = irfw_skip(t,
		               "not registered with any load balancer (as the run found them at its start)");
		goto out;
	}
	/* Look everything up before changing anything, so a failure midway
	 * leaves a record of all that was registered. */
	if (find_targets(t, found, &st) != 0 || find_classic(t, classic, &st) != 0)
		goto out;
	const cJSON *f;
	cJSON_ArrayForEach(f, found)
	{
		if (draining(f)) {
			n_draining++; /* deregistered already (the asg step's detach does that) */
			continue;
		}
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "target_group_arn", irfw_json_text(f, "target_group_arn"));
		cJSON_AddNumberToObject(r, "port",
		                        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(f, "port")));
		cJSON_AddItemToArray(todo, r);
	}
	int n_todo = cJSON_GetArraySize(todo), n_classic = cJSON_GetArraySize(classic);
	if (n_todo == 0 && n_classic == 0 && n_draining == 0) {
		st = irfw_skip(t, "not registered with any load balancer");
		goto out;
	}
	/* Recorded before the change, so release can register it again. */
	if (n_todo)
		irfw_record(t, "targets", cJSON_Duplicate(todo, true));
	if (n_classic)
		irfw_record(t, "classic", cJSON_Duplicate(classic, true));

	if (deregister_targets(t, es, todo, rids, &st) != 0 || deregister_classic(t, classic, &st) != 0)
		goto out;
	if (n_todo && !irfw_target_dry_run(t) && check_deregistered(t, todo, rids, &st) != 0)
		goto out;
	if (n_todo)
		irfw_note(t, "deregistered from %d target group registration(s)%s", n_todo, dry);
	if (n_draining)
		irfw_note(t, "%d target group registration(s) already draining", n_draining);
	if (n_classic)
		irfw_note(t, "deregistered from %d classic load balancer(s)%s", n_classic, dry);

	if (irfw_step_get_bool(step, "wait_drain") && !irfw_target_dry_run(t) && n_todo + n_draining > 0)
		st = wait_drain(t, found, irfw_step_get_int(step, "drain_timeout"));
	else if (n_todo + n_draining > 0)
		irfw_note(t, "not waiting for connection draining (wait_drain = false)");
out:
	cJSON_Delete(found);
	cJSON_Delete(todo);
	cJSON_Delete(classic);
	cJSON_Delete(rids);
	return st;
}

/* Whether `found` ({target_group_arn, port, state}) lists `arn` (and `port`
 * when it is set), not draining. */
static bool registered(const cJSON *found, const char *arn, double port)
{
	const cJSON *f;
	cJSON_ArrayForEach(f, found)
	{
		const char *a = irfw_json_text(f, "target_group_arn");
		double p = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(f, "port"));
		if (a && strcmp(a, arn) == 0 && (port <= 0 || p == port) && !draining(f))
			return true;
	}
	return false;
}

static bool has_name(const cJSON *names, const char *name)
{
	const cJSON *n;
	cJSON_ArrayForEach(n, names) if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) return true;
	return false;
}

/*
 * `irfw release`: register the instance again where the record says it was
 * (target groups with their ports, classic load balancers), unless it is
 * there already (a re-attach to its Auto Scaling group registers it with
 * the group's own), then read the registrations back.
 */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	const char *name = irfw_step_name(irfw_target_step(t));
	const cJSON *targets = irfw_record_get(t, name, "targets"),
	            *classic = irfw_record_get(t, name, "classic");
	const char *id = irfw_target_id(t);
	bool dry = irfw_target_dry_run(t);
	irfw_status st = IRFW_OK;
	cJSON *found = cJSON_CreateArray(), *lbs = cJSON_CreateArray();
	int n_tg = 0, n_lb = 0, again = 0;
	if (cJSON_GetArraySize(targets) == 0 && cJSON_GetArraySize(classic) == 0) {
		st = irfw_skip(t, "no load balancer registration recorded: nothing to put back");
		goto out;
	}
	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: register what is missing; pass 1: read back. */
		cJSON_Delete(found);
		cJSON_Delete(lbs);
		found = cJSON_CreateArray();
		lbs = cJSON_CreateArray();
		if ((cJSON_GetArraySize(targets) && find_targets(t, found, &st) != 0) ||
		    (cJSON_GetArraySize(classic) && find_classic(t, lbs, &st) != 0))
			goto out;
		const cJSON *r;
		cJSON_ArrayForEach(r, targets)
		{
			const char *arn = irfw_json_text(r, "target_group_arn");
			double port = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "port"));
			if (!arn || registered(found, arn, port))
				continue;
			if (pass == 1) {
				st =
				    irfw_fail(t, "not released: target group %s does not list %s (port %.0f)",
				              arn, id, port);
				goto out;
			}
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "TargetGroupArn", arn);
			cJSON *tt = cJSON_CreateObject();
			cJSON_AddStringToObject(tt, "Id", id);
			if (port > 0)
				cJSON_AddNumberToObject(tt, "Port", port);
			cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "Targets"), tt);
			int rc = irfw_aws_call(t, "elasticloadbalancing", "RegisterTargets", p, NULL);
			cJSON_Delete(p);
			if (rc != 0) {
				st = irfw_fail_aws(t, "RegisterTargets %s with %s", id, arn);
				goto out;
			}
			n_tg++;
		}
		cJSON_ArrayForEach(r, classic)
		{
			if (!cJSON_IsString(r) || has_name(lbs, r->valuestring))
				continue;
			if (pass == 1) {
				st = irfw_fail(t, "not released: classic load balancer %s does not list %s",
				               r->valuestring, id);
				goto out;
			}
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "LoadBalancerName", r->valuestring);
			cJSON *in = cJSON_CreateObject();
			cJSON_AddStringToObject(in, "InstanceId", id);
			cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "Instances"), in);
			int rc = irfw_aws_call(t, "elb", "RegisterInstancesWithLoadBalancer", p, NULL);
			cJSON_Delete(p);
			if (rc != 0) {
				st = irfw_fail_aws(t, "RegisterInstancesWithLoadBalancer %s with %s", id,
				                   r->valuestring);
				goto out;
			}
			n_lb++;
		}
		if (pass == 0) {
			again = cJSON_GetArraySize(targets) + cJSON_GetArraySize(classic) - n_tg - n_lb;
			if (dry) {
				irfw_note(
				    t,
				    "dry run (no DryRun in the API, nothing sent): would register again with "
				    "%d target group registration(s) and %d classic load balancer(s)",
				    n_tg, n_lb);
				goto out;
			}
		}
	}
	irfw_note(t,
	          "verified: registered again with %d target group registration(s) and %d classic load "
	          "balancer(s)%s",
	          n_tg, n_lb, again ? "; the others listed it already" : "");
out:
	cJSON_Delete(found);
	cJSON_Delete(lbs);
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "elasticloadbalancing:DescribeTargetGroups", .per = "run", .calls = 1},
    {.action = "elasticloadbalancing:DescribeTargetHealth", .per = "run", .calls = 1},
    {.action = "elasticloadbalancing:DeregisterTargets", .per = "instance"},
    {.action = "elasticloadbalancing:DescribeLoadBalancers", .per = "run", .calls = 1},
    {.action = "elasticloadbalancing:DeregisterInstancesFromLoadBalancer", .per = "instance"},
    /* What release() calls besides the above (irfw policy --release). */
    {.action = "elasticloadbalancing:RegisterTargets", .when = "release", .per = "instance"},
    {.action = "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
     .when = "release",
     .per = "instance"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "elb",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "deregister the instance from every target group and classic load balancer",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_CONTAIN,
    .init = init,
    .prepare = prepare,
    .fini = fini,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .release = release,
    .description =
        "Looks through every ELBv2 target group of the instance's VPC (DescribeTargetGroups, paginated, "
        "then DescribeTargetHealth of each) for registrations of the instance on any port, and through "
        "every classic load balancer (DescribeLoadBalancers), then deregisters it from all of them.  "
        "What it removed is recorded first, as targets [{target_group_arn, port}] and classic [names], "
        "so release can register it again.  An instance registered nowhere is skipped with the reason "
        "\"not registered with any load balancer\". The account's load balancers are read once "
        "for the run, in prepare (every target group's DescribeTargetHealth, every classic load balancer): "
        "an instance none of them names is skipped without a call, and one they name looks again for itself "
        "before deregistering, so what it records is what AWS shows then.  Instances of the run held by "
        "the same target group leave it in one DeregisterTargets (an instance registered there on "
        "several ports sends its own); a refused request is sent again by each instance alone.  Each "
        "deregistration is read back (DescribeTargetHealth of the registration: draining or unused; a "
        "classic load balancer's answer lists the instances it still holds), as DeregisterTargets "
        "answers OK even for a target it does not hold: one still served fails the step.\n\n"
        "It runs after asg (a detach already deregisters the instance from the group's own load "
        "balancers; those show up here as draining) and before isolate, so that customer traffic is "
        "drained away before the quarantine group cuts the connections, and the isolated instance's "
        "failing health checks do not page anyone.\n\n"
        "What it cannot do: draining takes the target group's deregistration delay (300 s by default); "
        "with wait_drain = false the next steps start at once.  Classic load balancers report no "
        "per-instance draining state, so only target groups are waited for.",
};

IRFW_PLUGIN_ENTRY(elb, plugin)
