/*
 * snapshot.c - crash-consistent EBS snapshots of every volume of the
 * instance, tagged with the case, the instance and each volume's device, so
 * the disks can be examined (or restored to a forensic workstation) whatever
 * happens to the instance afterwards.
 *
 * CreateSnapshots takes all volumes of an instance at the same instant,
 * which is what makes the set consistent across disks.  Where it is refused
 * (old partitions, some regions, emulators), each volume is snapshotted on
 * its own with CreateSnapshot: less consistent, far better than nothing.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irfw/irfw.h"

#define TAG_CASE     "irfw:case"
#define TAG_INSTANCE "irfw:instance"
#define TAG_DEVICE   "irfw:device"
#define TAG_STEP     "irfw:step"
/* After a create whose outcome is unknown, a second look this much later
 * (tags and new snapshots show in DescribeSnapshots after a moment). */
#define SETTLE_S 1
/* Backoff while waiting for completion. */
#define WAIT_FIRST_S 1
#define WAIT_MAX_S   15

static const struct irfw_option opts[] = {
    {.name = "description",
     .type = IRFW_OPT_STRING,
     .def = "irfw ${case_id} ${instance_id}",
     .help = "Description of each snapshot (a template)."},
    {.name = "wait",
     .type = IRFW_OPT_BOOL,
     .def = "false",
     .help = "Wait until every snapshot is complete. Snapshots are point-in-time when they are "
             "created, so waiting is only needed when a later step or the responder needs them "
             "usable at once (to create volumes for a forensic workstation)."},
    {.name = "wait_timeout",
     .type = IRFW_OPT_INT,
     .def = "600",
     .help = "With wait = true: seconds to wait before the step fails; the snapshots already "
             "started are recorded and go on."},
    {.name = NULL},
};

/* One EBS volume of the instance and its snapshot, when it has one. */
struct vol {
	const char *volume; /* in the instance record */
	const char *device;
	char *snapshot;
	bool has_device_tag;
};

struct job {
	struct vol *v;
	size_t n;
};

/* What prepare found: the snapshots of this batch's cases, by instance. */
struct snap_state {
	irfw_step *step;
	cJSON *by_instance; /* instance id -> [snapshot items]; NULL: look one by one */
};

static int init(irfw_step *step, void **state)
{
	if (irfw_step_get_bool(step, "wait") && irfw_step_get_int(step, "wait_timeout") <= 0) {
		irfw_step_error(step, "wait_timeout", "must be a positive number of seconds");
		return -1;
	}
	struct snap_state *st = calloc(1, sizeof(*st));
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
	struct snap_state *st = state;
	if (st)
		cJSON_Delete(st->by_instance);
	free(st);
}

/* At most this many values in one filter (EC2's limit on filter values). */
#define FILTER_VALUES 200

static int found_page(irfw_batch *b, const cJSON *res, void *ctx)
{
	(void)b;
	cJSON *by = ctx;
	const cJSON *s;
	cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(res, "snapshotSet"))
	{
		const char *inst = NULL;
		const cJSON *tg;
		cJSON_ArrayForEach(tg, cJSON_GetObjectItemCaseSensitive(s, "tagSet"))
		{
			const char *k = irfw_json_str(tg, "key");
			if (k && strcmp(k, TAG_INSTANCE) == 0)
				inst = irfw_json_str(tg, "value");
		}
		if (!inst)
			continue;
		cJSON *list = cJSON_GetObjectItemCaseSensitive(by, inst);
		if (!list)
			list = cJSON_AddArrayToObject(by, inst);
		if (list)
			cJSON_AddItemToArray(list, cJSON_Duplicate(s, 1));
	}
	return 0;
}

/* The account's own snapshots: Owner=self, and the owner-id filter ahead
 * of the tag filters, so that a service which applies filters one after
 * another (moto does) narrows by owner before it reads any tags, rather
 * than reading the tags of every public snapshot. */
static void own_snapshots(cJSON *params, const char *account)
{
	cJSON_AddItemToArray(cJSON_AddArrayToObject(params, "Owner"), cJSON_CreateString("self"));
	if (account && *account)
		irfw_ec2_filter(params, "owner-id", account);
}

static int look_up_cases(irfw_batch *b, cJSON *by, cJSON *case_ids)
{
	cJSON *params = cJSON_CreateObject();
	own_snapshots(params, irfw_target_account_id(irfw_batch_target(b, 0)));
	const cJSON *id;
	cJSON_ArrayForEach(id, case_ids) irfw_ec2_filter(params, "tag:" TAG_CASE, id->valuestring);
	cJSON_AddNumberToObject(params, "MaxResults", 1000);
	int rc = irfw_batch_aws_paginate(b, NULL, "ec2", "DescribeSnapshots", params, found_page, by);
	cJSON_Delete(params);
	return rc;
}

/* One look-up for the whole batch: the snapshots earlier runs of these cases
 * made (a re-run, or a run killed after CreateSnapshots), instead of one
 * DescribeSnapshots per instance.  A failure is not fatal: run then looks
 * instance by instance and reports the error against each. */
static int prepare(irfw_batch *b, void *state)
{
	struct snap_state *st = state;
	cJSON_Delete(st->by_instance);
	st->by_instance = NULL;
	cJSON *by = cJSON_CreateObject(), *cases = cJSON_CreateArray();
	int rc = by && cases ? 0 : -1;
	for (size_t i = 0, n = irfw_batch_count(b); rc == 0 && i < n; i++) {
		irfw_target *t = irfw_batch_target(b, i);
		if (!irfw_target_instance(t) || irfw_step_resumed(t))
			continue; /* never run here */
		const char *cid = irfw_target_case_id(t);
		bool seen = false;
		const cJSON *c;
		cJSON_ArrayForEach(c, cases) seen = seen || strcmp(c->valuestring, cid) == 0;
		if (seen)
			continue;
		cJSON_AddItemToArray(cases, cJSON_CreateString(cid));
		if (cJSON_GetArraySize(cases) == FILTER_VALUES) {
			rc = look_up_cases(b, by, cases);
			cJSON_Delete(cases);
			cases = cJSON_CreateArray();
		}
	}
	if (rc == 0 && cJSON_GetArraySize(cases) > 0)
		rc = look_up_cases(b, by, cases);
	cJSON_Delete(cases);
	if (rc != 0) {
		irfw_step_log(st->step, IRFW_LOG_WARN,
		              "batched DescribeSnapshots failed; looking instance by instance");
		cJSON_Delete(by);
		return 0;
	}
	st->by_instance = by;
	return 0;
}

static void job_free(struct job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->v[i].snapshot);
	free(j->v);
}

static int job_load(irfw_target *t, struct job *j)
{
	const cJSON *bdm = cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "blockDeviceMapping");
	int cap = cJSON_GetArraySize(bdm);
	j->n = 0;
	j->v = calloc(cap > 0 ? (size_t)cap : 1, sizeof(*j->v));
	if (!j->v)
		return -1;
	const cJSON *m;
	cJSON_ArrayForEach(m, bdm)
	{
		const char *dev = irfw_json_str(m, "deviceName");
		const char *vol = irfw_json_str(cJSON_GetObjectItemCaseSensitive(m, "ebs"), "volumeId");
		if (vol && j->n < (size_t)cap) {
			j->v[j->n].volume = vol;
			j->v[j->n].device = dev ? dev : "";
			j->n++;
		}
	}
	return 0;
}

static struct vol *find_volume(struct job *j, const char *volume)
{
	for (size_t i = 0; volume && i < j->n; i++)
		if (strcmp(j->v[i].volume, volume) == 0)
			return &j->v[i];
	return NULL;
}

/* The step a snapshot was made for: its irfw:step tag, or NULL (made
 * before the tag was given, or by hand). */
static const char *snapshot_step(const cJSON *s)
{
	const cJSON *tg;
	cJSON_ArrayForEach(tg, cJSON_GetObjectItemCaseSensitive(s, "tagSet"))
	{
		const char *k = irfw_json_str(tg, "key");
		if (k && strcmp(k, TAG_STEP) == 0)
			return irfw_json_str(tg, "value");
	}
	return NULL;
}

/* Adopt the snapshots of `set` (DescribeSnapshots' snapshotSet items) that
 * this step made of this instance's volumes. */
static void adopt(irfw_target *t, struct job *j, const cJSON *set)
{
	const cJSON *s;
	cJSON_ArrayForEach(s, set)
	{
		const char *status = irfw_json_str(s, "status");
		const char *step = snapshot_step(s);
		struct vol *v = find_volume(j, irfw_json_str(s, "volumeId"));
		if (!v || v->snapshot || !irfw_json_str(s, "snapshotId") ||
		    (status && strcmp(status, "error") == 0))
			continue; /* a failed snapshot preserves nothing */
		if (step && strcmp(step, irfw_step_name(irfw_target_step(t))) != 0)
			continue; /* another snapshot step of the pipeline took it */
		v->snapshot = strdup(irfw_json_str(s, "snapshotId"));
		const cJSON *tg;
		cJSON_ArrayForEach(tg, cJSON_GetObjectItemCaseSensitive(s, "tagSet"))
		{
			const char *k = irfw_json_str(tg, "key");
			if (k && strcmp(k, TAG_DEVICE) == 0)
				v->has_device_tag = true;
		}
	}
}

/* Snapshots of this case, instance and step made by an earlier run (or an
 * earlier attempt of this one, whose answer was lost): fills v[].snapshot.
 * Returns 0 or -1 (AWS error). */
static int find_existing(irfw_target *t, struct job *j)
{
	cJSON *params = cJSON_CreateObject();
	own_snapshots(params, irfw_target_account_id(t));
	irfw_ec2_filter(params, "tag:" TAG_CASE, irfw_target_case_id(t));
	irfw_ec2_filter(params, "tag:" TAG_INSTANCE, irfw_target_id(t));
	cJSON *res = NULL;
	int rc = irfw_aws_call(t, "ec2", "DescribeSnapshots", params, &res);
	cJSON_Delete(params);
	if (rc != 0)
		return -1;
	adopt(t, j, cJSON_GetObjectItemCaseSensitive(res, "snapshotSet"));
	cJSON_Delete(res);
	return 0;
}

static size_t count_snapshots(const struct job *j)
{
	size_t n = 0;
	for (size_t i = 0; i < j->n; i++)
		n += j->v[i].snapshot != NULL;
	return n;
}

/* The snapshots' tags, in the call that creates them. */
static void tag_spec(cJSON *params, irfw_target *t, const char *device)
{
	irfw_ec2_tag_spec(params, "snapshot", TAG_CASE, irfw_target_case_id(t));
	irfw_ec2_tag_spec(params, "snapshot", TAG_INSTANCE, irfw_target_id(t));
	irfw_ec2_tag_spec(params, "snapshot", TAG_STEP, irfw_step_name(irfw_target_step(t)));
	if (device)
		irfw_ec2_tag_spec(params, "snapshot", TAG_DEVICE, device);
}

/* Whether a refusal of CreateSnapshots means "use CreateSnapshot instead"
 * rather than "you may not" (an AccessDenied would refuse that too). */
static bool should_fall_back(irfw_target *t)
{
	const char *code = irfw_aws_error_code(t);
	return strcmp(code, "UnsupportedOperation") == 0 || strncmp(code, "InvalidParameter", 16) == 0 ||
	       strcmp(code, "InvalidAction") == 0 || strcmp(code, "NotImplemented") == 0 ||
	       irfw_aws_http_status(t) >= 500;
}

static bool outcome_unknown(irfw_target *t)
{
	return strcmp(irfw_aws_error_code(t), IRFW_AWS_OUTCOME_UNKNOWN) == 0;
}

/* After a create whose answer was lost: what exists now, looking twice
 * (SETTLE_S apart) when the first look finds nothing new.  Returns the
 * number of snapshots found, or -1 on an AWS error. */
static int look_again(irfw_target *t, struct job *j)
{
	size_t before = count_snapshots(j);
	for (int look = 0; look < 2; look++) {
		if (look) {
			struct timespec ts = {.tv_sec = SETTLE_S};
			nanosleep(&ts, NULL);
		}
		if (find_existing(t, j) != 0)
			return -1;
		if (count_snapshots(j) > before)
			break;
	}
	return (int)count_snapshots(j);
}

/* CreateSnapshots: all volumes at one instant.  Returns 0, 1 when EC2
 * refused it in a way that calls for the fallback, 2 when it may have been
 * carried out (the answer was lost: look before sending it again), -1 on
 * other errors.  Never re-sent blindly (IRFW_CALL_NOT_IDEMPOTENT). */
static int create_multi(irfw_target *t, struct job *j, const char *desc)
{
	cJSON *params = cJSON_CreateObject();
	cJSON *spec = cJSON_AddObjectToObject(params, "InstanceSpecification");
	cJSON_AddStringToObject(spec, "InstanceId", irfw_target_id(t));
	cJSON_AddFalseToObject(spec, "ExcludeBootVolume");
	cJSON_AddStringToObject(params, "Description", desc);
	cJSON_AddStringToObject(params, "CopyTagsFromSource", "volume");
	/* CreateSnapshots cannot tag per volume: the device comes after. */
	tag_spec(params, t, NULL);
	cJSON *res = NULL;
	int rc = irfw_aws_call_ex(t, NULL, "ec2", "CreateSnapshots", params, IRFW_CALL_NOT_IDEMPOTENT, &res);
	cJSON_Delete(params);
	if (rc != 0 && outcome_unknown(t))
		return 2;
	if (rc != 0)
		return should_fall_back(t) ? 1 : -1;
	const cJSON *s;
	cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(res, "snapshotSet"))
	{
		struct vol *v = find_volume(j, irfw_json_str(s, "volumeId"));
		if (!v) {
			/* Attached since the instance was described: still
			 * preserved, just not in the record. */
			irfw_log(t, IRFW_LOG_WARN, "snapshot %s of volume %s, not in the instance record",
			         irfw_json_str(s, "snapshotId") ? irfw_json_str(s, "snapshotId") : "?",
			         irfw_json_str(s, "volumeId") ? irfw_json_str(s, "volumeId") : "?");
			continue;
		}
		if (!v->snapshot && irfw_json_str(s, "snapshotId"))
			v->snapshot = strdup(irfw_json_str(s, "snapshotId"));
	}
	cJSON_Delete(res);
	return 0;
}

/* CreateSnapshot for each volume without a snapshot, tagged with its device
 * at once.  Returns 0 or -1 (the error of the first failure; the others are
 * still tried). */
static int create_each(irfw_target *t, struct job *j, const char *desc, char *err, size_t errlen)
{
	int rc = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct vol *v = &j->v[i];
		if (v->snapshot)
			continue;
		cJSON *params = cJSON_CreateObject();
		cJSON_AddStringToObject(params, "VolumeId", v->volume);
		cJSON_AddStringToObject(params, "Description", desc);
		tag_spec(params, t, v->device);
		cJSON *res = NULL;
		int crc = -1;
		char why[1024] = "";
		for (int send = 0; send < 2 && !v->snapshot; send++) {
			cJSON_Delete(res);
			res = NULL;
			crc = irfw_aws_call_ex(t, NULL, "ec2", "CreateSnapshot", params,
			                       IRFW_CALL_NOT_IDEMPOTENT, &res);
			if (crc == 0)
				break;
			snprintf(why, sizeof(why), "CreateSnapshot of %s (%s): %s: %s (request %s)",
			         v->volume, v->device, irfw_aws_error_code(t), irfw_aws_error_message(t),
			         *irfw_aws_request_id(t) ? irfw_aws_request_id(t) : "none");
			if (!outcome_unknown(t))
				break;
			/* Its answer was lost: adopt it if it exists, else send
			 * it once more. */
			irfw_log(t, IRFW_LOG_WARN, "%s; looking it up", why);
			if (look_again(t, j) < 0) {
				size_t n = strlen(why);
				snprintf(why + n, sizeof(why) - n,
				         "; then DescribeSnapshots: %s (request %s)", irfw_aws_error_code(t),
				         *irfw_aws_request_id(t) ? irfw_aws_request_id(t) : "none");
				break;
			}
		}
		if (crc != 0 && v->snapshot) {
			irfw_note(t, "the snapshot of %s was made, its answer lost: found by its tags",
			          v->volume);
		} else if (crc == 0) {
			if (irfw_json_str(res, "snapshotId")) {
				v->snapshot = strdup(irfw_json_str(res, "snapshotId"));
				v->has_device_tag = true;
			}
		} else {
			if (rc == 0)
				snprintf(err, errlen, "%s", why);
			rc = -1;
		}
		cJSON_Delete(params);
		cJSON_Delete(res);
	}
	return rc;
}

/* Tag each snapshot that lacks it with its volume's device.  Returns the
 * number of failures (the first one's error in err). */
static int tag_devices(irfw_target *t, struct job *j, char *err, size_t errlen)
{
	/* One CreateTags per snapshot (each its own value), sent together. */
	irfw_calls *c = irfw_calls_new(t);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return 1;
	}
	int *call = calloc(j->n ? j->n : 1, sizeof(*call));
	if (!call) {
		irfw_calls_free(c);
		snprintf(err, errlen, "out of memory");
		return 1;
	}
	for (size_t i = 0; i < j->n; i++) {
		struct vol *v = &j->v[i];
		call[i] = -1;
		if (!v->snapshot || v->has_device_tag || !*v->device)
			continue;
		cJSON *params = cJSON_CreateObject();
		cJSON *ids = cJSON_AddArrayToObject(params, "ResourceId");
		cJSON_AddItemToArray(ids, cJSON_CreateString(v->snapshot));
		irfw_ec2_tag(params, TAG_DEVICE, v->device);
		call[i] = irfw_calls_add(c, NULL, "ec2", "CreateTags", params, 0);
		cJSON_Delete(params);
	}
	irfw_calls_run(c);
	int failed = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct vol *v = &j->v[i];
		if (call[i] < 0 && (!v->snapshot || v->has_device_tag || !*v->device))
			continue;
		if (call[i] >= 0 && irfw_calls_select(c, (size_t)call[i]) == 0) {
			v->has_device_tag = true;
		} else if (failed++ == 0) {
			snprintf(err, errlen, "CreateTags %s=%s on %s: %s: %s (request %s)", TAG_DEVICE,
			         v->device, v->snapshot, call[i] >= 0 ? irfw_aws_error_code(t) : "NotSent",
			         call[i] >= 0 ? irfw_aws_error_message(t) : "out of memory",
			         call[i] >= 0 && *irfw_aws_request_id(t) ? irfw_aws_request_id(t) : "none");
		}
	}
	free(call);
	irfw_calls_free(c);
	return failed;
}

static void record_snapshots(irfw_target *t, const struct job *j)
{
	if (irfw_target_dry_run(t))
		return; /* the real run records them; a dry run changes nothing */
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; i < j->n; i++) {
		if (!j->v[i].snapshot)
			continue;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "volume", j->v[i].volume);
		cJSON_AddStringToObject(o, "device", j->v[i].device);
		cJSON_AddStringToObject(o, "snapshot", j->v[i].snapshot);
		cJSON_AddItemToArray(arr, o);
	}
	irfw_record_result(t, "snapshots", arr);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Poll DescribeSnapshots until every snapshot is completed.  Returns OK, or
 * FAILED on error state, AWS error or timeout. */
static irfw_status wait_done(irfw_target *t, struct job *j, long timeout)
{
	double deadline = now_s() + (double)timeout;
	unsigned delay = WAIT_FIRST_S;
	for (;;) {
		cJSON *params = cJSON_CreateObject();
		cJSON *ids = cJSON_AddArrayToObject(params, "SnapshotId");
		for (size_t i = 0; i < j->n; i++)
			if (j->v[i].snapshot)
				cJSON_AddItemToArray(ids, cJSON_CreateString(j->v[i].snapshot));
		cJSON *res = NULL;
		int rc = irfw_aws_call(t, "ec2", "DescribeSnapshots", params, &res);
		cJSON_Delete(params);
		if (rc != 0)
			return irfw_fail_aws(t, "DescribeSnapshots while waiting for completion");
		size_t done = 0, total = 0;
		const char *failed = NULL;
		const cJSON *s;
		cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(res, "snapshotSet"))
		{
			const char *status = irfw_json_str(s, "status");
			total++;
			if (status && strcmp(status, "completed") == 0)
				done++;
			else if (status && strcmp(status, "error") == 0 && !failed)
				failed = irfw_json_str(s, "snapshotId");
		}
		if (failed) {
			irfw_status st = irfw_fail(t, "snapshot %s ended in state error", failed);
			cJSON_Delete(res);
			return st;
		}
		cJSON_Delete(res);
		if (done == total && total == count_snapshots(j))
			return IRFW_OK;
		double left = deadline - now_s();
		if (left <= 0)
			return irfw_fail(
			    t, "%zu of %zu snapshots not complete after %ld s (they go on; ids recorded)",
			    count_snapshots(j) - done, count_snapshots(j), timeout);
		double d = (double)delay < left ? (double)delay : left;
		struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
		irfw_log(t, IRFW_LOG_DEBUG, "%zu of %zu snapshots complete; next look in %.0f s", done,
		         count_snapshots(j), d);
		nanosleep(&ts, NULL);
		delay = delay * 2 > WAIT_MAX_S ? WAIT_MAX_S : delay * 2;
	}
}

/* "snap-1 (/dev/sda1), snap-2 (/dev/sdf)" for the note. */
static void list_ids(const struct job *j, char *buf, size_t cap)
{
	buf[0] = '\0';
	for (size_t i = 0; i < j->n; i++) {
		if (!j->v[i].snapshot)
			continue;
		size_t len = strlen(buf);
		snprintf(buf + len, cap - len, "%s%s (%s)", len ? ", " : "", j->v[i].snapshot,
		         j->v[i].device);
	}
}

static irfw_status run(irfw_target *t, void *state)
{
	const struct snap_state *st = state;
	irfw_step *step = irfw_target_step(t);
	struct job j = {0};
	irfw_status status = IRFW_OK;
	char *desc = NULL;
	char err[1024] = "", ids[1024];
	bool existed = false;

	if (job_load(t, &j) != 0)
		return irfw_fail(t, "out of memory");
	if (j.n == 0) {
		status = irfw_skip(t, "no EBS volumes attached: nothing to snapshot");
		goto out;
	}
	desc = irfw_step_expand(t, "description");
	if (!desc) {
		status = irfw_fail(t, "the description template does not expand (see the log)");
		goto out;
	}
	/* Look before creating: a re-run of the case must not snapshot twice.
	 * prepare looked for the whole batch at once (not in `irfw check`,
	 * which calls no prepare). */
	if (st && st->by_instance)
		adopt(t, &j, cJSON_GetObjectItemCaseSensitive(st->by_instance, irfw_target_id(t)));
	else if (find_existing(t, &j) != 0) {
		status = irfw_fail_aws(t, "DescribeSnapshots for earlier snapshots of this case");
		goto out;
	}
	size_t had = count_snapshots(&j);
	existed = had == j.n;
	if (had == 0) {
		int rc = create_multi(t, &j, desc);
		/* What refused or lost CreateSnapshots, kept across the look-ups. */
		char code[128];
		snprintf(code, sizeof(code), "%s", irfw_aws_error_code(t));
		for (int send = 1; rc == 2; send++) {
			/* The answer was lost: what exists is the truth. */
			long http = irfw_aws_http_status(t);
			irfw_log(t, IRFW_LOG_WARN, "%s; looking for the snapshots by their tags",
			         irfw_aws_error_message(t));
			int found = look_again(t, &j);
			if (found < 0) {
				status = irfw_fail_aws(t, "DescribeSnapshots after CreateSnapshots' answer "
				                          "was lost");
				goto out;
			}
			if (found > 0) {
				irfw_note(t,
				          "CreateSnapshots was carried out but its answer lost: %d "
				          "snapshot%s found by their tags",
				          found, found == 1 ? "" : "s");
				rc = 0;
			} else if (send < 2 && http == 0) {
				/* Lost on the wire, and nothing made: once more. */
				irfw_note(t, "CreateSnapshots' answer was lost and no snapshot carries its "
				             "tags: sent again");
				rc = create_multi(t, &j, desc);
				snprintf(code, sizeof(code), "%s", irfw_aws_error_code(t));
			} else {
				/* A server error and nothing made (or lost twice): one
				 * volume at a time, each looked up the same way. */
				snprintf(code, sizeof(code), "HTTP %ld, nothing made", http);
				rc = 1;
			}
		}
		if (rc < 0) {
			status = irfw_fail_aws(t, "CreateSnapshots of %s", irfw_target_id(t));
			goto out;
		}
		if (rc == 0 && irfw_target_dry_run(t)) {
			irfw_note(t, "dry run: would snapshot %zu volume%s", j.n, j.n == 1 ? "" : "s");
			goto out;
		}
		if (rc > 0) {
			irfw_log(t, IRFW_LOG_WARN,
			         "CreateSnapshots refused (%s: %s); one CreateSnapshot per volume",
			         *code ? code : "error", irfw_aws_error_message(t));
			irfw_note(
			    t,
			    "CreateSnapshots refused (%s): snapshots taken one volume at a time, not at "
			    "one instant",
			    *code ? code : "HTTP error");
			/* A 5xx may hide a request that was carried out. */
			if (find_existing(t, &j) != 0) {
				status =
				    irfw_fail_aws(t, "DescribeSnapshots after CreateSnapshots was refused");
				goto out;
			}
		}
	} else if (had < j.n) {
		irfw_note(t, "%zu of %zu volumes already snapshotted in this case", had, j.n);
	}
	if (count_snapshots(&j) < j.n) {
		bool dry = irfw_target_dry_run(t);
		if (create_each(t, &j, desc, err, sizeof(err)) != 0) {
			record_snapshots(t, &j);
			status = irfw_fail(t, "%s", err);
			goto out;
		}
		if (dry) {
			irfw_note(t, "dry run: would snapshot %zu volume%s", j.n - had,
			          j.n - had == 1 ? "" : "s");
			goto out;
		}
	}
	/* Recorded before anything else can fail, so the ids are never lost. */
	record_snapshots(t, &j);
	int tag_failures = tag_devices(t, &j, err, sizeof(err));
	list_ids(&j, ids, sizeof(ids));
	if (tag_failures) {
		status = irfw_fail(t, "%zu snapshots (%s), but %d %s tag%s failed: %s", count_snapshots(&j),
		                   ids, tag_failures, TAG_DEVICE, tag_failures == 1 ? "" : "s", err);
		goto out;
	}
	irfw_note(t, "%s%zu snapshot%s: %s", existed ? "already snapshotted: " : "", count_snapshots(&j),
	          count_snapshots(&j) == 1 ? "" : "s", ids);
	if (irfw_step_get_bool(step, "wait")) {
		status = wait_done(t, &j, irfw_step_get_int(step, "wait_timeout"));
		if (status == IRFW_OK)
			irfw_note(t, "all complete");
	}
out:
	free(desc);
	job_free(&j);
	return status;
}

/* `irfw release` changes nothing here: the snapshots are the case's
 * evidence, and outlive the quarantine until someone closes the case. */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	const cJSON *rec = irfw_record_get(t, irfw_step_name(irfw_target_step(t)), "snapshots");
	int n = cJSON_GetArraySize(rec);
	if (n == 0)
		return irfw_skip(t, "no snapshot recorded: nothing to put back");
	return irfw_skip(
	    t,
	    "%d snapshot(s) kept: they are the case's evidence (delete them by hand once the case "
	    "is closed)",
	    n);
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "ec2:DescribeSnapshots", .per = "run", .calls = 1},
    {.action = "ec2:CreateSnapshots", .per = "instance", .calls = 1},
    {.action = "ec2:CreateSnapshot", .per = "volume"},
    /* The case's tags, given with TagSpecifications. */
    {.action = "ec2:CreateTags", .per = "instance"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "snapshot",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "crash-consistent EBS snapshots of every volume, tagged with the case",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_PRESERVE,
    .init = init,
    .prepare = prepare,
    .fini = fini,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .release = release,
    .description =
        "Takes crash-consistent snapshots of every EBS volume of the instance, root volume "
        "included, with one CreateSnapshots call, so that all disks are captured at the same "
        "instant. The snapshots copy the volumes' tags and carry irfw:case (the case id), "
        "irfw:instance (the instance id), irfw:step (the step's name) and irfw:device (the volume's device "
        "name, added with "
        "CreateTags since CreateSnapshots cannot tag per volume). Their ids are recorded under "
        "'snapshots' in the case record as {volume, device, snapshot}.\n"
        "\n"
        "It runs after containment and protection, so the disks cannot change much or disappear "
        "while the snapshots start, and after the volatile captures (console output and "
        "screenshot), which are lost first. A snapshot is point-in-time when it is created; with "
        "wait = true the step also waits for completion.\n"
        "\n"
        "A re-run of the same case takes no new snapshots: before creating, it looks for snapshots "
        "tagged with this case, instance and step (one DescribeSnapshots for the whole run, in prepare), and "
        "snapshots only the volumes that have none. "
        "The create calls are never re-sent blindly: when one may have been carried out but its "
        "answer was lost (a reset, a 5xx, a cut or stalled answer), the step looks the snapshots "
        "up by those tags (twice, 1 s apart), adopts what it finds, and sends the call again only "
        "when none is there; the record lists the snapshots AWS shows. Where "
        "EC2 refuses CreateSnapshots (UnsupportedOperation, InvalidParameter...), each volume is "
        "snapshotted with CreateSnapshot, and the step notes that the set is not from one instant. "
        "Instance-store volumes cannot be snapshotted, and memory is not captured.",
};

IRFW_PLUGIN_ENTRY(snapshot, plugin)
