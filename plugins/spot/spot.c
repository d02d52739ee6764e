/*
 * spot.c - make a spot instance safe to investigate.
 *
 * A spot instance can be taken back by EC2 at two minutes' notice, and a
 * persistent spot request relaunches a fresh instance that nobody asked
 * for.  Neither protect's termination protection nor stop protection
 * applies to spot, so this step does what can be done instead: it keeps the
 * EBS volumes beyond termination, cancels a persistent request, and tells
 * the later steps (through the fact "lifecycle" = "spot") that protection
 * is not applicable.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irfw/irfw.h"

/* Seconds before a change not shown yet is read again (EC2 is eventually
 * consistent). */
#define SETTLE_S 1

static void settle_wait(void)
{
	struct timespec ts = {.tv_sec = SETTLE_S};
	nanosleep(&ts, NULL);
}

static const char RISK_NOTE[] = "spot instance: an interruption still terminates it (2-minute notice); "
                                "volumes are kept and evidence already taken survives";

static const struct irfw_option opts[] = {
    {.name = "keep_volumes",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Set DeleteOnTermination=false on every attached EBS volume, so an interruption does not "
             "take the disks with it.  Done first, before anything else can fail."},
    {.name = "cancel_persistent",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Cancel the instance's spot request when it is persistent, so that EC2 does not launch a "
             "new instance when this one is interrupted or stopped.  One-time requests are left alone.  "
             "Cancelling a request does not terminate the instance."},
    {.name = NULL},
};

/* How many devices of `changed` (ModifyInstanceAttribute's
 * BlockDeviceMapping list) DescribeInstances does not show kept on
 * termination now, named in `left`; -1 when it could not be read. */
static int volumes_left(irfw_target *t, const cJSON *changed, char *left, size_t cap)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "InstanceId"), cJSON_CreateString(irfw_target_id(t)));
	int rc = irfw_aws_call(t, "ec2", "DescribeInstances", p, &res);
	cJSON_Delete(p);
	if (rc != 0) {
		cJSON_Delete(res);
		return -1;
	}
	const cJSON *now = irfw_ec2_instance_in(res, irfw_target_id(t)), *c;
	int n = 0;
	left[0] = '\0';
	cJSON_ArrayForEach(c, changed)
	{
		const char *dev = irfw_json_text(c, "DeviceName");
		bool kept = irfw_ec2_delete_on_termination(now, dev) == 0;
		if (!kept) {
			size_t len = strlen(left);
			snprintf(left + len, cap - len, "%s%s", len ? ", " : "", dev ? dev : "?");
			n++;
		}
	}
	cJSON_Delete(res);
	return n;
}

/* DeleteOnTermination=false on every EBS volume that would go with the
 * instance.  The original flags are recorded first, so release can put
 * them back. */
static irfw_status keep_volumes(irfw_target *t, const cJSON *inst)
{
	cJSON *params = cJSON_CreateObject();
	cJSON *record = cJSON_CreateArray();
	cJSON *bdm = cJSON_AddArrayToObject(params, "BlockDeviceMapping");
	irfw_status st = IRFW_OK;
	int changed = 0, kept = 0;

	cJSON_AddStringToObject(params, "InstanceId", irfw_target_id(t));
	const cJSON *m;
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(inst, "blockDeviceMapping"))
	{
		const char *dev = irfw_json_text(m, "deviceName");
		const cJSON *ebs = cJSON_GetObjectItemCaseSensitive(m, "ebs");
		if (!dev || !cJSON_IsObject(ebs))
			continue; /* instance-store volumes have no such flag */
		bool dot = irfw_json_bool(ebs, "deleteOnTermination", false);
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "device", dev);
		const char *vol = irfw_json_text(ebs, "volumeId");
		if (vol)
			cJSON_AddStringToObject(r, "volume_id", vol);
		cJSON_AddBoolToObject(r, "delete_on_termination", dot);
		cJSON_AddItemToArray(record, r);
		if (!dot) {
			kept++;
			continue;
		}
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "DeviceName", dev);
		cJSON *e = cJSON_AddObjectToObject(item, "Ebs");
		cJSON_AddFalseToObject(e, "DeleteOnTermination");
		cJSON_AddItemToArray(bdm, item);
		changed++;
	}
	irfw_record(t, "volumes", record);
	if (changed == 0) {
		irfw_note(
		    t, kept ? "all %d EBS volume(s) already kept on termination" : "no EBS volumes attached",
		    kept);
		irfw_fact_set(t, "volumes.kept", "true");
		goto out;
	}
	if (irfw_aws_call(t, "ec2", "ModifyInstanceAttribute", params, NULL) != 0) {
		st = irfw_fail_aws(t, "ModifyInstanceAttribute (DeleteOnTermination=false) on %s",
		                   irfw_target_id(t));
		goto out;
	}
	if (irfw_target_dry_run(t)) {
		irfw_note(t, "%d EBS volume(s) set to DeleteOnTermination=false (dry run)", changed);
		goto out;
	}
	/* Said kept only when AWS shows it. */
	char left[256];
	int n_left = volumes_left(t, bdm, left, sizeof(left));
	if (n_left > 0) {
		settle_wait();
		n_left = volumes_left(t, bdm, left, sizeof(left));
	}
	if (n_left < 0) {
		st = irfw_fail_aws(t,
		                   "ModifyInstanceAttribute (DeleteOnTermination=false) answered OK, but the "
		                   "volumes could not be read back (DescribeInstances)");
		goto out;
	}
	if (n_left > 0) {
		st = irfw_fail(t,
		               "ModifyInstanceAttribute (DeleteOnTermination=false) answered OK, but "
		               "DescribeInstances shows DeleteOnTermination still true on %s",
		               left);
		goto out;
	}
	irfw_note(t, "%d EBS volume(s) set to DeleteOnTermination=false (read back)", changed);
	/* protect need not ask again (one ModifyInstanceAttribute saved). */
	irfw_fact_set(t, "volumes.kept", "true");
out:
	cJSON_Delete(params);
	return st;
}

/* The spot request of the instance, by id when the instance names it, else
 * by the instance-id filter (the instance record does not always carry the
 * id).  Returns a detached request object, NULL with *failed false when
 * there is none, NULL with *failed true on an AWS error. */
static cJSON *find_request(irfw_target *t, const char *req_id, bool *failed)
{
	cJSON *params = cJSON_CreateObject();
	cJSON *res = NULL, *found = NULL;

	*failed = false;
	if (req_id) {
		cJSON *ids = cJSON_AddArrayToObject(params, "SpotInstanceRequestId");
		cJSON_AddItemToArray(ids, cJSON_CreateString(req_id));
	} else {
		irfw_ec2_filter(params, "instance-id", irfw_target_id(t));
	}
	if (irfw_aws_call(t, "ec2", "DescribeSpotInstanceRequests", params, &res) != 0) {
		/* A request that no longer exists is an answer, not a failure. */
		*failed = strcmp(irfw_aws_error_code(t), "InvalidSpotInstanceRequestID.NotFound") != 0;
		goto out;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "spotInstanceRequestSet"))
	{
		const char *inst = irfw_json_text(it, "instanceId");
		/* By id there is one; by filter prefer the one naming us. */
		if (req_id || (inst && strcmp(inst, irfw_target_id(t)) == 0)) {
			found = cJSON_Duplicate(it, true);
			break;
		}
	}
out:
	cJSON_Delete(params);
	cJSON_Delete(res);
	return found;
}

static irfw_status handle_request(irfw_target *t, const cJSON *inst, bool cancel_persistent)
{
	const char *req_id = irfw_json_text(inst, "spotInstanceRequestId");
	bool failed;
	irfw_status st = IRFW_OK;
	cJSON *req = find_request(t, req_id, &failed);

	if (failed)
		return irfw_fail_aws(t, "DescribeSpotInstanceRequests for %s",
		                     req_id ? req_id : irfw_target_id(t));
	cJSON *rec = cJSON_CreateObject();
	if (!req) {
		if (req_id)
			cJSON_AddStringToObject(rec, "id", req_id);
		else
			cJSON_AddNullToObject(rec, "id");
		cJSON_AddNullToObject(rec, "type");
		cJSON_AddStringToObject(rec, "state", "not found");
		cJSON_AddFalseToObject(rec, "cancelled");
		irfw_record_result(t, "spot_request", rec);
		irfw_note(t, "spot request %snot found", req_id ? "named by the instance " : "");
		return IRFW_OK;
	}
	const char *id = irfw_json_text(req, "spotInstanceRequestId");
	const char *type = irfw_json_text(req, "type");
	const char *state = irfw_json_text(req, "state");
	id = id ? id : req_id ? req_id : "?";
	cJSON_AddStringToObject(rec, "id", id);
	cJSON_AddStringToObject(rec, "type", type ? type : "unknown");
	cJSON_AddStringToObject(rec, "state", state ? state : "unknown");

	bool persistent = type && strcmp(type, "persistent") == 0;
	/* cancelled, closed and failed requests can no longer launch anything. */
	bool live = state && (strcmp(state, "open") == 0 || strcmp(state, "active") == 0 ||
	                      strcmp(state, "disabled") == 0);
	if (!persistent || !live || !cancel_persistent) {
		cJSON_AddFalseToObject(rec, "cancelled");
		irfw_record_result(t, "spot_request", rec);
		if (!persistent)
			irfw_note(t, "spot request %s is %s: left alone", id,
			          type ? type : "of unknown type");
		else if (!live)
			irfw_note(t, "persistent spot request %s is already %s", id,
			          state ? state : "inactive");
		else
			irfw_note(
			    t,
			    "persistent spot request %s left active (cancel_persistent = false): it will "
			    "relaunch an instance after an interruption",
			    id);
		goto out;
	}
	/* Recorded before the change, as every step does; cancelled is
	 * updated once it happened. */
	cJSON_AddFalseToObject(rec, "cancelled");
	irfw_record(t, "spot_request", cJSON_Duplicate(rec, true));
	cJSON *params = cJSON_CreateObject();
	cJSON *ids = cJSON_AddArrayToObject(params, "SpotInstanceRequestId");
	cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	int rc = irfw_aws_call(t, "ec2", "CancelSpotInstanceRequests", params, NULL);
	cJSON_Delete(params);
	if (rc != 0) {
		cJSON_Delete(rec);
		st = irfw_fail_aws(t, "CancelSpotInstanceRequests %s (persistent: it would relaunch)", id);
		goto out;
	}
	if (irfw_target_dry_run(t)) {
		cJSON_Delete(rec);
		irfw_note(t, "persistent spot request %s cancelled, so it does not relaunch (dry run)", id);
		goto out;
	}
	/* Read back: the request cancelled (or closed), or gone.  Its id
	 * and state are copied: each read replaces `req`. */
	char rid[128], shown_buf[64];
	snprintf(rid, sizeof(rid), "%s", id);
	id = rid;
	const char *shown = NULL;
	for (int pass = 0; pass < 2; pass++) {
		cJSON_Delete(req);
		req = find_request(t, id, &failed);
		if (failed) {
			cJSON_Delete(rec);
			st = irfw_fail_aws(t,
			                   "CancelSpotInstanceRequests %s answered OK, but the request could "
			                   "not be read back (DescribeSpotInstanceRequests)",
			                   id);
			goto out;
		}
		shown = req ? irfw_json_text(req, "state") : "gone";
		snprintf(shown_buf, sizeof(shown_buf), "%s", shown ? shown : "in no state");
		shown = shown ? shown_buf : NULL;
		if (shown && (strcmp(shown, "cancelled") == 0 || strcmp(shown, "closed") == 0 ||
		              strcmp(shown, "gone") == 0))
			break;
		if (pass == 0)
			settle_wait();
		else {
			cJSON_Delete(rec);
			st = irfw_fail(t,
			               "CancelSpotInstanceRequests %s answered OK, but "
			               "DescribeSpotInstanceRequests shows it %s: it can still relaunch",
			               id, shown ? shown : "in no state");
			goto out;
		}
	}
	cJSON_ReplaceItemInObjectCaseSensitive(rec, "cancelled", cJSON_CreateTrue());
	cJSON_AddStringToObject(rec, "state_after", shown);
	irfw_record_result(t, "spot_request", rec);
	irfw_note(t, "persistent spot request %s cancelled, so it does not relaunch (read back: %s)", id,
	          shown);
out:
	cJSON_Delete(req);
	return st;
}

static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	irfw_step *step = irfw_target_step(t);
	const cJSON *inst = irfw_target_instance(t);
	const char *lifecycle = irfw_json_text(inst, "instanceLifecycle");

	if (!lifecycle || strcmp(lifecycle, "spot") != 0)
		return irfw_skip(t, "not a spot instance");
	/* Later steps (protect) read this to skip what spot cannot have. */
	irfw_fact_set(t, "lifecycle", "spot");

	if (irfw_step_get_bool(step, "keep_volumes")) {
		irfw_status st = keep_volumes(t, inst);
		if (st != IRFW_OK)
			return st;
	} else {
		irfw_note(t, "volumes left as they are (keep_volumes = false)");
	}
	irfw_status st = handle_request(t, inst, irfw_step_get_bool(step, "cancel_persistent"));
	if (st != IRFW_OK)
		return st;
	irfw_note(t, "%s", RISK_NOTE);
	return IRFW_OK;
}

/*
 * `irfw release`: what spot did cannot all be undone.  A cancelled spot
 * request stays cancelled (EC2 cannot reopen one); the volumes kept on
 * termination go back to DeleteOnTermination as they were only with
 * --unprotect (they are evidence), and are read back.
 */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	const char *name = irfw_step_name(irfw_target_step(t));
	const cJSON *req = irfw_record_get(t, name, "spot_request");
	const cJSON *vols = irfw_record_get(t, name, "volumes"), *v;
	const char *unprotect = irfw_fact_get(t, "release.unprotect");
	bool undo = unprotect && strcmp(unprotect, "true") == 0;
	if (!req && !vols)
		return irfw_skip(t, "nothing recorded: not a spot instance when quarantined");
	char cannot[300] = "";
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "cancelled")))
		snprintf(cannot, sizeof(cannot),
		         "the persistent spot request %s stays cancelled (EC2 cannot reopen one): after an "
		         "interruption nothing relaunches",
		         irfw_json_text(req, "id") ? irfw_json_text(req, "id") : "?");
	cJSON *params = cJSON_CreateObject();
	cJSON *bdm = cJSON_AddArrayToObject(params, "BlockDeviceMapping");
	cJSON_AddStringToObject(params, "InstanceId", irfw_target_id(t));
	cJSON_ArrayForEach(v, vols)
	{
		const char *dev = irfw_json_text(v, "device");
		if (!dev || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "delete_on_termination")))
			continue;
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "DeviceName", dev);
		cJSON_AddTrueToObject(cJSON_AddObjectToObject(item, "Ebs"), "DeleteOnTermination");
		cJSON_AddItemToArray(bdm, item);
	}
	int n = cJSON_GetArraySize(bdm);
	irfw_status st;
	if (n && undo) {
		if (irfw_aws_call(t, "ec2", "ModifyInstanceAttribute", params, NULL) != 0) {
			cJSON_Delete(params);
			return irfw_fail_aws(t, "ModifyInstanceAttribute (DeleteOnTermination back to true)");
		}
		irfw_note(t, "%s%d volume(s) back to DeleteOnTermination=true",
		          irfw_target_dry_run(t) ? "dry run: " : "", n);
		st = IRFW_OK;
	} else if (n) {
		st = irfw_skip(
		    t, "%d volume(s) kept on termination (evidence; release --unprotect puts them back)%s%s",
		    n, cannot[0] ? "; " : "", cannot);
		cJSON_Delete(params);
		return st;
	} else {
		st = cannot[0] ? IRFW_SKIPPED : IRFW_OK;
	}
	cJSON_Delete(params);
	if (cannot[0])
		return irfw_skip(t, "%s", cannot);
	if (st == IRFW_OK && !n)
		irfw_note(t, "nothing to undo");
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "ec2:DescribeSpotInstanceRequests", .per = "instance"},
    {.action = "ec2:ModifyInstanceAttribute", .when = "keep_volumes=true", .per = "instance"},
    /* The volumes read back. */
    {.action = "ec2:DescribeInstances", .when = "keep_volumes=true", .per = "instance"},
    {.action = "ec2:CancelSpotInstanceRequests", .when = "cancel_persistent=true", .per = "instance"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "spot",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "keep a spot instance's volumes and cancel its persistent spot request",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_CONTAIN,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .release = release,
    .description =
        "Detects a spot instance (instanceLifecycle = spot); any other instance is skipped with the "
        "reason \"not a spot instance\".  For a spot instance it first sets DeleteOnTermination=false on "
        "every attached EBS volume, so that an interruption cannot take the disks with it, recording the "
        "original flags.  It then looks up the instance's spot request (by the id on the instance, or by "
        "the instance-id filter when the instance does not carry it) and cancels it when it is persistent, "
        "so that EC2 does not relaunch a replacement; one-time requests are left alone.  Both are read "
        "back before the step says so (DescribeInstances shows every volume DeleteOnTermination=false; "
        "DescribeSpotInstanceRequests shows the request cancelled, closed or gone), once more a second "
        "later if not yet (EC2 is eventually consistent); otherwise the step fails naming what AWS shows.  "
        "What it found is recorded as spot_request {id, type, state, cancelled, state_after}.\n\n"
        "It runs first because an interruption can come at any moment: keeping the volumes is the one "
        "thing that preserves the disks if the instance goes away during the rest of the pipeline.  It "
        "leaves the fact lifecycle = spot, so protect reports termination and stop protection as not "
        "applicable instead of failing.\n\n"
        "What it cannot do: nothing stops EC2 from interrupting a spot instance.  The interruption still "
        "terminates it with a two-minute notice; the volumes are kept and evidence already taken "
        "survives, but memory and the running state are lost.",
};

IRFW_PLUGIN_ENTRY(spot, plugin)
