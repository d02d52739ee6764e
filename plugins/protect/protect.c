/*
 * protect.c - keep a compromised instance and its disks from being deleted
 * or stopped by a person, a script or an Auto Scaling policy while the case
 * is open: termination protection, stop protection, shutdown behaviour
 * "stop" (a `shutdown -h` from inside must not terminate it), and
 * DeleteOnTermination=false on every EBS volume (so even a forced
 * termination leaves the disks for the investigation).
 *
 * Every change is its own ModifyInstanceAttribute call (the API takes one
 * attribute per call), all sent at once (irfw_calls), and every one is
 * tried whatever becomes of the others: a missing permission for stop
 * protection must not leave the volumes unprotected.  What AWS answered OK
 * for is then read back, and only what the read-back shows is said set.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irfw/irfw.h"

/* How long to wait before reading a change back a second time: EC2 is
 * eventually consistent, and a read right after the change may show the
 * state before it. */
#define SETTLE_S 1

static const struct irfw_option opts[] = {
    {.name = "termination",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Turn on termination protection (DisableApiTermination). Not attempted on spot "
             "instances, where EC2 does not support it."},
    {.name = "stop",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Turn on stop protection (DisableApiStop), so the memory of a running instance is not "
             "lost to a stop. Not attempted on spot instances."},
    {.name = "shutdown_behavior",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Set the instance-initiated shutdown behaviour to 'stop', so a shutdown from inside "
             "the guest does not terminate it."},
    {.name = "keep_volumes",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Set DeleteOnTermination=false on every attached EBS volume, so the disks survive a "
             "termination."},
    {.name = NULL},
};

/* What became of the attempted changes, for the note, the record and the
 * failure message. */
struct outcome {
	char set[512];         /* changes made */
	char unsupported[256]; /* EC2 answered UnsupportedOperation */
	char failed[512];      /* other errors, each with its code */
	int n_failed;
	/* The first error, kept because later calls overwrite the core's. */
	char already[256]; /* in place before the step: not sent */
	char first_err[512];
	bool first_err_is_last; /* no call since the first error: irfw_fail_aws has it */
	cJSON *record;
};

static void append(char *buf, size_t cap, const char *what)
{
	size_t n = strlen(buf);
	if (n + 1 >= cap)
		return;
	snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", what);
}

static bool is_spot(irfw_target *t)
{
	const char *lc = irfw_json_str(irfw_target_instance(t), "instanceLifecycle");
	if (lc && strcmp(lc, "spot") == 0)
		return true;
	const char *fact = irfw_fact_get(t, "lifecycle");
	return fact && strcmp(fact, "spot") == 0;
}

/* The outcome of one ModifyInstanceAttribute call (rc; the target's error
 * is the call's), into o.  `what` names the change in notes;
 * `record_key`/`record_value` go into the case record when it succeeded. */
static void settle(irfw_target *t, struct outcome *o, int rc, const char *what, const char *record_key,
                   cJSON *record_value)
{
	o->first_err_is_last = false;
	if (rc == 0) {
		append(o->set, sizeof(o->set), what);
		cJSON_AddItemToObject(o->record, record_key, record_value);
		return;
	}
	const char *code = irfw_aws_error_code(t);
	if (strcmp(code, "UnsupportedOperation") == 0) {
		/* Spot instances and some instance types refuse protection; the
		 * instance is not less protected than EC2 allows. */
		append(o->unsupported, sizeof(o->unsupported), what);
		cJSON *u = cJSON_GetObjectItemCaseSensitive(o->record, "unsupported");
		if (!u)
			u = cJSON_AddArrayToObject(o->record, "unsupported");
		cJSON_AddItemToArray(u, cJSON_CreateString(record_key));
		cJSON_Delete(record_value);
		return;
	}
	cJSON_Delete(record_value);
	char one[256];
	snprintf(one, sizeof(one), "%s (%s)", what, *code ? code : "error");
	append(o->failed, sizeof(o->failed), one);
	irfw_log(t, IRFW_LOG_ERROR, "%s: %s: %s", what, *code ? code : "error", irfw_aws_error_message(t));
	if (o->n_failed++ == 0) {
		snprintf(o->first_err, sizeof(o->first_err), "%s: %s (request %s)", *code ? code : "Error",
		         irfw_aws_error_message(t),
		         *irfw_aws_request_id(t) ? irfw_aws_request_id(t) : "none");
		o->first_err_is_last = true;
	}
}

/* One ModifyInstanceAttribute call now; `params` gains the InstanceId and
 * is freed. */
static void modify(irfw_target *t, struct outcome *o, const char *what, cJSON *params, const char *record_key,
                   cJSON *record_value)
{
	cJSON_AddStringToObject(params, "InstanceId", irfw_target_id(t));
	cJSON *res = NULL;
	int rc = irfw_aws_call(t, "ec2", "ModifyInstanceAttribute", params, &res);
	cJSON_Delete(params);
	cJSON_Delete(res); /* the reply is just <return>true</return> */
	settle(t, o, rc, what, record_key, record_value);
}

/* The run's changes, sent together (the API takes one attribute per call,
 * and they do not depend on one another), then settled in the order they
 * were queued, so notes and the record read as if made one by one. */
struct queued {
	char what[64];
	const char *record_key;
	cJSON *record_value;
	int call; /* in the set, or -1 */
	bool ok;  /* AWS answered OK (the value moved into the record) */
};

struct queue {
	irfw_calls *c;
	struct queued q[4];
	int n;
};

static void enqueue(irfw_target *t, struct queue *qu, const char *what, cJSON *params, const char *record_key,
                    cJSON *record_value)
{
	cJSON_AddStringToObject(params, "InstanceId", irfw_target_id(t));
	struct queued *e = &qu->q[qu->n++];
	snprintf(e->what, sizeof(e->what), "%s", what);
	e->record_key = record_key;
	e->record_value = record_value;
	e->call = irfw_calls_add(qu->c, NULL, "ec2", "ModifyInstanceAttribute", params, 0);
	cJSON_Delete(params);
}

/* Send the queue, then settle each change in order. */
static void run_queue(irfw_target *t, struct queue *qu, struct outcome *o)
{
	irfw_calls_run(qu->c);
	for (int i = 0; i < qu->n; i++) {
		struct queued *e = &qu->q[i];
		int rc = e->call >= 0 ? irfw_calls_select(qu->c, (size_t)e->call) : -1;
		e->ok = rc == 0;
		settle(t, o, rc, e->what, e->record_key, e->record_value);
		e->record_value = NULL; /* the record's, or freed */
	}
}

static cJSON *value_param(const char *name, bool value)
{
	cJSON *p = cJSON_CreateObject();
	cJSON *v = cJSON_AddObjectToObject(p, name);
	cJSON_AddBoolToObject(v, "Value", value);
	return p;
}

/* DeleteOnTermination=false on every EBS volume in one call: the API takes a
 * list of mappings.  Returns the number of volumes in the call, or -1 when an
 * earlier step of this run already kept them all. */
static int keep_volumes(irfw_target *t, struct queue *qu)
{
	const cJSON *bdm = cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "blockDeviceMapping");
	/* The spot step of this run already made every volume stay. */
	const char *kept = irfw_fact_get(t, "volumes.kept");
	if (kept && strcmp(kept, "true") == 0) {
		irfw_note(t, "volumes already kept on termination (by an earlier step of this run)");
		return -1;
	}
	cJSON *params = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(params, "BlockDeviceMapping");
	cJSON *rec = cJSON_CreateArray();
	int n = 0;
	const cJSON *m;
	cJSON_ArrayForEach(m, bdm)
	{
		const char *dev = irfw_json_str(m, "deviceName");
		const cJSON *ebs = cJSON_GetObjectItemCaseSensitive(m, "ebs");
		const char *vol = irfw_json_str(ebs, "volumeId");
		if (!dev || !vol)
			continue; /* instance-store: nothing to keep */
		/* Already so, as DescribeInstances shows: no call for it. */
		if (!irfw_json_bool(ebs, "deleteOnTermination", true))
			continue;
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "DeviceName", dev);
		cJSON_AddBoolToObject(cJSON_AddObjectToObject(item, "Ebs"), "DeleteOnTermination", false);
		cJSON_AddItemToArray(list, item);
		/* The value before, so a release can put it back. */
		const cJSON *was = cJSON_GetObjectItemCaseSensitive(ebs, "deleteOnTermination");
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "volume", vol);
		cJSON_AddStringToObject(r, "device", dev);
		if (cJSON_IsString(was) || cJSON_IsBool(was))
			cJSON_AddBoolToObject(r, "deleteOnTerminationWas",
			                      irfw_json_bool(ebs, "deleteOnTermination", false));
		cJSON_AddItemToArray(rec, r);
		n++;
	}
	if (n == 0) {
		cJSON_Delete(params);
		cJSON_Delete(rec);
		return 0;
	}
	char what[64];
	snprintf(what, sizeof(what), "DeleteOnTermination=false on %d volume%s", n, n == 1 ? "" : "s");
	enqueue(t, qu, what, params, "keptVolumes", rec);
	return n;
}

/* DescribeInstanceAttribute's parameters for one attribute of the instance. */
static cJSON *attribute_params(irfw_target *t, const char *attribute)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "InstanceId", irfw_target_id(t));
	cJSON_AddStringToObject(p, "Attribute", attribute);
	return p;
}

/* What is in place already, read in one round before changing anything:
 * a change AWS shows made is not sent.  DescribeInstanceAttribute draws on
 * EC2's non-mutating bucket (refill 20/s), ModifyInstanceAttribute on the
 * mutating one (5/s), which is what paces a fleet's protection, and a
 * new instance's shutdown behaviour is "stop" already.  A read that fails
 * leaves its change to be sent.  The shutdown behaviour found, when it is
 * not "stop", goes to *shutdown_was for the record (release puts it back). */
static void read_in_place(irfw_target *t, bool *want[3], struct outcome *o, char *shutdown_was, size_t cap)
{
	static const char *const attrs[3] = {"disableApiTermination", "disableApiStop",
	                                     "instanceInitiatedShutdownBehavior"};
	static const char *const names[3] = {"termination protection", "stop protection",
	                                     "shutdown behaviour=stop"};
	irfw_calls *c = irfw_calls_new(t);
	int ci[3] = {-1, -1, -1};
	for (int i = 0; c && i < 3; i++) {
		if (!*want[i])
			continue;
		cJSON *p = attribute_params(t, attrs[i]);
		ci[i] = irfw_calls_add(c, NULL, "ec2", "DescribeInstanceAttribute", p, 0);
		cJSON_Delete(p);
	}
	if (!c)
		return;
	irfw_calls_run(c);
	for (int i = 0; i < 3; i++) {
		if (ci[i] < 0)
			continue;
		if (irfw_calls_select(c, (size_t)ci[i]) != 0) {
			irfw_log(t, IRFW_LOG_WARN, "%s not read (%s: %s); setting it without looking",
			         attrs[i], irfw_aws_error_code(t), irfw_aws_error_message(t));
			continue;
		}
		const cJSON *v =
		    cJSON_GetObjectItemCaseSensitive(irfw_calls_result(c, (size_t)ci[i]), attrs[i]);
		bool in_place;
		if (i < 2) {
			in_place = irfw_json_bool(v, "value", false);
		} else {
			const char *val = irfw_json_str(v, "value");
			in_place = val && strcmp(val, "stop") == 0;
			if (val && !in_place)
				snprintf(shutdown_was, cap, "%s", val);
		}
		if (!in_place)
			continue;
		*want[i] = false;
		append(o->already, sizeof(o->already), names[i]);
		cJSON *a = cJSON_GetObjectItemCaseSensitive(o->record, "alreadySet");
		if (!a)
			a = cJSON_AddArrayToObject(o->record, "alreadySet");
		cJSON_AddItemToArray(a, cJSON_CreateString(attrs[i]));
	}
	irfw_calls_free(c);
}

/* A change AWS answered OK for, as the read-back finds it. */
struct seen {
	struct queued *e;
	int call;      /* in this round's set, or -1 */
	bool shown;    /* AWS shows the change */
	bool read;     /* the read-back answered */
	char how[192]; /* what AWS shows instead, or why it was not read */
};

/* True when DescribeInstances' answer shows DeleteOnTermination=false on
 * every device of `kept` (the record's keptVolumes); else what it shows. */
static bool volumes_kept(irfw_target *t, const cJSON *res, const cJSON *kept, char *how, size_t cap)
{
	const cJSON *inst = irfw_ec2_instance_in(res, irfw_target_id(t)), *v;
	if (!inst) {
		snprintf(how, cap, "DescribeInstances does not list the instance");
		return false;
	}
	*how = '\0';
	cJSON_ArrayForEach(v, kept)
	{
		const char *dev = irfw_json_str(v, "device");
		if (irfw_ec2_delete_on_termination(inst, dev) != 0) {
			size_t n = strlen(how);
			snprintf(how + n, cap - n, "%s%s", n ? ", " : "DeleteOnTermination not false on ",
			         dev ? dev : "?");
		}
	}
	return !*how;
}

/* Whether `s`'s answer shows its change; the answer is the selected one. */
static bool shows(irfw_target *t, irfw_calls *c, struct seen *s, const cJSON *record)
{
	const cJSON *res = irfw_calls_result(c, (size_t)s->call);
	const char *key = s->e->record_key;
	if (strcmp(key, "keptVolumes") == 0)
		return volumes_kept(t, res, cJSON_GetObjectItemCaseSensitive(record, key), s->how,
		                    sizeof(s->how));
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, key);
	if (strcmp(key, "instanceInitiatedShutdownBehavior") == 0) {
		const char *val = irfw_json_str(v, "value");
		snprintf(s->how, sizeof(s->how), "DescribeInstanceAttribute shows %s",
		         val ? val : "no value");
		return val && strcmp(val, "stop") == 0;
	}
	snprintf(s->how, sizeof(s->how), "DescribeInstanceAttribute shows it off");
	return irfw_json_bool(v, "value", false);
}

/* Read back every change AWS answered OK for (DescribeInstanceAttribute per
 * attribute, DescribeInstances for the volumes, sent together); what does
 * not show is read once more after SETTLE_S (EC2 is eventually
 * consistent).  A change still not shown, or not read back, is a failure:
 * it leaves the set list, and its record entry moves under "notShown"
 * (release still undoes it, in case it takes effect later). */
static void read_back(irfw_target *t, struct queue *qu, struct outcome *o)
{
	struct seen s[4];
	int n = 0;
	for (int i = 0; i < qu->n; i++)
		if (qu->q[i].ok)
			s[n++] = (struct seen){.e = &qu->q[i], .call = -1};
	for (int pass = 0; n && pass < 2; pass++) {
		irfw_calls *c = irfw_calls_new(t);
		bool again = false;
		for (int i = 0; c && i < n; i++) {
			s[i].call = -1;
			if (s[i].shown || (pass > 0 && !s[i].read))
				continue;
			cJSON *p = cJSON_CreateObject();
			if (strcmp(s[i].e->record_key, "keptVolumes") == 0) {
				cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "InstanceId"),
				                     cJSON_CreateString(irfw_target_id(t)));
				s[i].call = irfw_calls_add(c, NULL, "ec2", "DescribeInstances", p, 0);
			} else {
				cJSON_AddStringToObject(p, "InstanceId", irfw_target_id(t));
				cJSON_AddStringToObject(p, "Attribute", s[i].e->record_key);
				s[i].call = irfw_calls_add(c, NULL, "ec2", "DescribeInstanceAttribute", p, 0);
			}
			cJSON_Delete(p);
		}
		if (!c) {
			for (int i = 0; i < n; i++)
				if (!s[i].shown)
					snprintf(s[i].how, sizeof(s[i].how), "not read back: out of memory");
			break;
		}
		/* The target's error is now the read-back's. */
		o->first_err_is_last = false;
		irfw_calls_run(c);
		for (int i = 0; i < n; i++) {
			if (s[i].call < 0)
				continue;
			if (irfw_calls_select(c, (size_t)s[i].call) != 0) {
				s[i].read = false;
				snprintf(s[i].how, sizeof(s[i].how), "not read back: %s (request %s)",
				         *irfw_aws_error_code(t) ? irfw_aws_error_code(t) : "error",
				         *irfw_aws_request_id(t) ? irfw_aws_request_id(t) : "none");
				continue;
			}
			s[i].read = true;
			s[i].shown = shows(t, c, &s[i], o->record);
			again |= !s[i].shown;
		}
		irfw_calls_free(c);
		if (!again || pass > 0)
			break;
		irfw_log(t, IRFW_LOG_INFO, "a change answered OK is not shown yet; reading again in %d s",
		         SETTLE_S);
		struct timespec ts = {.tv_sec = SETTLE_S};
		nanosleep(&ts, NULL);
	}
	/* The set list, rebuilt from what AWS shows. */
	o->set[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (s[i].shown) {
			append(o->set, sizeof(o->set), s[i].e->what);
			continue;
		}
		char one[320];
		snprintf(one, sizeof(one), "%s (answered OK; %s)", s[i].e->what, s[i].how);
		append(o->failed, sizeof(o->failed), one);
		irfw_log(t, IRFW_LOG_ERROR, "%s: ModifyInstanceAttribute answered OK; %s", s[i].e->what,
		         s[i].how);
		if (o->n_failed++ == 0)
			snprintf(o->first_err, sizeof(o->first_err), "%s", one);
		o->first_err_is_last = false;
		cJSON *not_shown = cJSON_GetObjectItemCaseSensitive(o->record, "notShown");
		if (!not_shown)
			not_shown = cJSON_AddObjectToObject(o->record, "notShown");
		cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(o->record, s[i].e->record_key);
		if (item)
			cJSON_AddItemToObject(not_shown, s[i].e->record_key, item);
	}
}

static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	irfw_step *step = irfw_target_step(t);
	bool want_term = irfw_step_get_bool(step, "termination");
	bool want_stop = irfw_step_get_bool(step, "stop");
	bool want_shutdown = irfw_step_get_bool(step, "shutdown_behavior");
	bool want_volumes = irfw_step_get_bool(step, "keep_volumes");
	bool spot = is_spot(t);
	struct outcome o = {.record = cJSON_CreateObject()};
	char spot_reason[128] = "";
	int attempted = 0;

	if (spot && (want_term || want_stop)) {
		/* EC2 answers UnsupportedOperation for these on spot instances;
		 * asking would only turn a known limit into a failure. */
		snprintf(spot_reason, sizeof(spot_reason),
		         "spot instance: %s%s%s protection not supported by EC2, not attempted",
		         want_term ? "termination" : "", want_term && want_stop ? " and " : "",
		         want_stop ? "stop" : "");
		cJSON_AddTrueToObject(o.record, "spot");
		want_term = want_stop = false;
	}
	char shutdown_was[32] = "";
	bool *want[3] = {&want_term, &want_stop, &want_shutdown};
	read_in_place(t, want, &o, shutdown_was, sizeof(shutdown_was));
	struct queue qu = {.c = irfw_calls_new(t)};
	if (!qu.c) {
		cJSON_Delete(o.record);
		return irfw_fail(t, "out of memory");
	}
	if (want_term) {
		attempted++;
		enqueue(t, &qu, "termination protection", value_param("DisableApiTermination", true),
		        "disableApiTermination", cJSON_CreateTrue());
	}
	if (want_stop) {
		attempted++;
		enqueue(t, &qu, "stop protection", value_param("DisableApiStop", true), "disableApiStop",
		        cJSON_CreateTrue());
	}
	if (want_shutdown) {
		/* The Attribute/Value form rather than
		 * InstanceInitiatedShutdownBehavior.Value: both are valid for
		 * EC2, and the emulator the tests use only understands this one
		 * (it takes the other for a security-group change with no
		 * groups and empties the instance's groups). */
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "Attribute", "instanceInitiatedShutdownBehavior");
		cJSON_AddStringToObject(p, "Value", "stop");
		attempted++;
		enqueue(t, &qu, "shutdown behaviour=stop", p, "instanceInitiatedShutdownBehavior",
		        cJSON_CreateString("stop"));
		if (*shutdown_was)
			cJSON_AddStringToObject(o.record, "instanceInitiatedShutdownBehaviorWas",
			                        shutdown_was);
	}
	int n_volumes = 0;
	if (want_volumes) {
		n_volumes = keep_volumes(t, &qu);
		if (n_volumes > 0)
			attempted++;
		else if (n_volumes == 0)
			irfw_note(
			    t, "no EBS volume to change: none attached, or all already kept on termination");
	}
	run_queue(t, &qu, &o);
	irfw_calls_free(qu.c);
	/* A dry run's changes carried DryRun: nothing to read back. */
	if (!irfw_target_dry_run(t))
		read_back(t, &qu, &o);

	if (attempted == 0 && *o.already) {
		/* Nothing to change: AWS shows every protection asked for. */
		if (irfw_target_dry_run(t))
			cJSON_Delete(o.record);
		else
			irfw_record_result(t, "attributes", o.record);
		irfw_note(t, "already in place: %s", o.already);
		if (*spot_reason)
			irfw_note(t, "%s", spot_reason);
		return IRFW_OK;
	}
	if (attempted == 0) {
		cJSON_Delete(o.record);
		if (*spot_reason)
			return irfw_skip(t, "%s; nothing else enabled", spot_reason);
		return irfw_skip(t, "nothing to do: every protection is turned off in the configuration");
	}
	/* What was set, so `release` and the responder know what to undo; a
	 * dry run set nothing, and a release must not undo it. */
	if (irfw_target_dry_run(t))
		cJSON_Delete(o.record);
	else
		irfw_record_result(t, "attributes", o.record);

	const char *prefix = irfw_target_dry_run(t) ? "dry run: would set " : "set ";
	if (o.n_failed) {
		char msg[1800];
		snprintf(
		    msg, sizeof(msg), "%d of %d protection changes failed: %s%s%s%s%s%s%s%s", o.n_failed,
		    attempted, o.failed, *o.set ? "; " : "", *o.set ? prefix : "", o.set,
		    *spot_reason ? "; " : "", spot_reason,
		    /* A later call replaced the core's error: carry the
		     * first one in the detail. */
		    o.first_err_is_last ? "" : "; first error: ", o.first_err_is_last ? "" : o.first_err);
		if (o.first_err_is_last)
			return irfw_fail_aws(t, "%s", msg);
		return irfw_fail(t, "%s", msg);
	}
	if (!*o.set) /* every attempt was refused as unsupported: nothing done */
		return irfw_skip(t, "not supported for this instance (UnsupportedOperation): %s%s%s",
		                 o.unsupported, *spot_reason ? "; " : "", spot_reason);
	irfw_note(t, "%s%s", prefix, o.set);
	if (*o.already)
		irfw_note(t, "already in place: %s", o.already);
	if (*o.unsupported)
		irfw_note(t, "not supported for this instance (UnsupportedOperation): %s", o.unsupported);
	if (*spot_reason)
		irfw_note(t, "%s", spot_reason);
	return IRFW_OK;
}

/* One attribute read back with DescribeInstanceAttribute: its boolean
 * value into *on; 0 or -1. */
static int read_flag(irfw_target *t, const char *attribute, bool *on)
{
	cJSON *p = attribute_params(t, attribute), *res = NULL;
	int rc = irfw_aws_call(t, "ec2", "DescribeInstanceAttribute", p, &res);
	cJSON_Delete(p);
	if (rc == 0)
		*on = irfw_json_bool(cJSON_GetObjectItemCaseSensitive(res, attribute), "value", false);
	cJSON_Delete(res);
	return rc;
}

/* The same for a text attribute: true when it reads `want`. */
static bool reads(irfw_target *t, const char *attribute, const char *want)
{
	cJSON *p = attribute_params(t, attribute), *res = NULL;
	int rc = irfw_aws_call(t, "ec2", "DescribeInstanceAttribute", p, &res);
	cJSON_Delete(p);
	const char *v =
	    rc == 0 ? irfw_json_str(cJSON_GetObjectItemCaseSensitive(res, attribute), "value") : NULL;
	bool same = v && strcmp(v, want) == 0;
	cJSON_Delete(res);
	return same;
}

/* A change the record holds: set (and read back), or answered OK but not
 * shown by the read-back ("notShown"), which release undoes all the same in
 * case it took effect later. */
static const cJSON *recorded(const cJSON *rec, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
	return v ? v
	         : cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec, "notShown"), key);
}

/*
 * `irfw release`: protection stays unless the operator asked for
 * --unprotect (the instance is still evidence until the case is closed).
 * Then termination and stop protection go off (only where irfw turned them
 * on), each volume gets back the DeleteOnTermination it had, and the
 * shutdown behaviour the one it had when irfw changed it; read back.
 */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	const cJSON *rec = irfw_record_get(t, irfw_step_name(irfw_target_step(t)), "attributes");
	const char *unprotect = irfw_fact_get(t, "release.unprotect");
	bool dry = irfw_target_dry_run(t);
	struct outcome o = {.record = cJSON_CreateObject()};
	irfw_status st = IRFW_OK;
	if (!cJSON_IsObject(rec)) {
		st = irfw_skip(t, "no protection recorded: nothing to put back");
		goto out;
	}
	if (!unprotect || strcmp(unprotect, "true") != 0) {
		st = irfw_skip(
		    t, "protection kept (termination and stop protection, volumes kept on termination): "
		       "the instance is evidence until the case is closed; release --unprotect removes it");
		goto out;
	}
	bool term = cJSON_IsTrue(recorded(rec, "disableApiTermination"));
	bool stop = cJSON_IsTrue(recorded(rec, "disableApiStop"));
	if (term)
		modify(t, &o, "termination protection off", value_param("DisableApiTermination", false),
		       "disableApiTermination", cJSON_CreateFalse());
	if (stop)
		modify(t, &o, "stop protection off", value_param("DisableApiStop", false), "disableApiStop",
		       cJSON_CreateFalse());
	const char *was = irfw_json_str(rec, "instanceInitiatedShutdownBehaviorWas");
	if (was) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "Attribute", "instanceInitiatedShutdownBehavior");
		cJSON_AddStringToObject(p, "Value", was);
		char what[64];
		snprintf(what, sizeof(what), "shutdown behaviour back to %s", was);
		modify(t, &o, what, p, "instanceInitiatedShutdownBehavior", cJSON_CreateString(was));
	}
	cJSON *params = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(params, "BlockDeviceMapping");
	const cJSON *v;
	cJSON_ArrayForEach(v, recorded(rec, "keptVolumes"))
	{
		const char *dev = irfw_json_str(v, "device");
		if (!dev || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "deleteOnTerminationWas")))
			continue;
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "DeviceName", dev);
		cJSON_AddBoolToObject(cJSON_AddObjectToObject(item, "Ebs"), "DeleteOnTermination", true);
		cJSON_AddItemToArray(list, item);
	}
	int n_vol = cJSON_GetArraySize(list);
	if (n_vol)
		modify(t, &o, "DeleteOnTermination back to true", params, "keptVolumes", cJSON_CreateNull());
	else
		cJSON_Delete(params);
	if (o.n_failed) {
		st = o.first_err_is_last
		         ? irfw_fail_aws(t, "not released: %s", o.failed)
		         : irfw_fail(t, "not released: %s; first error: %s", o.failed, o.first_err);
		goto out;
	}
	if (dry) {
		irfw_note(t, "dry run: would set %s", *o.set ? o.set : "nothing");
		goto out;
	}
	/* Read back. */
	bool on = false;
	char bad[256] = "";
	if (term && (read_flag(t, "disableApiTermination", &on) != 0 || on))
		append(bad, sizeof(bad), "termination protection still on (or not read back)");
	if (stop && (read_flag(t, "disableApiStop", &on) != 0 || on))
		append(bad, sizeof(bad), "stop protection still on (or not read back)");
	if (bad[0]) {
		st = irfw_fail(t, "not released: %s", bad);
		goto out;
	}
	if (was) {
		if (!reads(t, "instanceInitiatedShutdownBehavior", was)) {
			st = irfw_fail(
			    t, "not released: shutdown behaviour not back to %s (or not read back)", was);
			goto out;
		}
	}
	irfw_note(t, "verified: %s%s%s", *o.set ? o.set : "nothing to undo",
	          n_vol ? " (volumes as before)" : "",
	          was ? "" : "; shutdown behaviour left at stop (it was stop, or irfw did not change it)");
out:
	cJSON_Delete(o.record);
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    /* Four changes; a new instance's shutdown behaviour is "stop" already. */
    {.action = "ec2:ModifyInstanceAttribute", .per = "instance", .calls = 3},
    /* Three reads before the changes, the changed two read back after
     * (release reads back too). */
    {.action = "ec2:DescribeInstanceAttribute", .per = "instance", .calls = 5},
    /* The volumes' DeleteOnTermination, read back. */
    {.action = "ec2:DescribeInstances", .per = "instance", .calls = 1},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "protect",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "termination and stop protection, shutdown=stop, keep EBS volumes",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_PRESERVE,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .release = release,
    .description =
        "Turns on termination protection and stop protection, sets the instance-initiated shutdown "
        "behaviour to 'stop', and sets DeleteOnTermination=false on every attached EBS volume. It first "
        "reads the three attributes (DescribeInstanceAttribute, sent together) and does not send a change "
        "AWS shows in place already (a new instance's shutdown behaviour is 'stop'; a volume's "
        "DeleteOnTermination is in DescribeInstances): ModifyInstanceAttribute's bucket is what paces a "
        "fleet's protection, the describes' refills four times faster. Each change is a separate "
        "ModifyInstanceAttribute call, all sent together, and all are tried even when one fails; the step "
        "fails with the first AWS error after trying the rest. Every change AWS answered OK for is then "
        "read back (DescribeInstanceAttribute, and DescribeInstances for the volumes, sent together; what "
        "does not show yet is read once more a second later, as EC2 is eventually consistent): only what "
        "the read-back shows is said set, and a change it does not show fails the step. What was set is "
        "recorded under the "
        "'attributes' key of the case record, with each volume's former DeleteOnTermination, the former "
        "shutdown behaviour when it was not 'stop', what was answered OK but not shown by the read-back "
        "(notShown, undone by a release all the same), and what was in place already (alreadySet), which "
        "`irfw release --unprotect` leaves as it found it.\n"
        "\n"
        "It runs after containment (isolate) and before evidence capture and snapshots: once the "
        "instance cannot talk, the next risk is someone or something (an Auto Scaling policy, a "
        "cleanup script, the attacker with stolen keys) terminating it and taking the disks with it.\n"
        "\n"
        "On spot instances EC2 supports neither termination nor stop protection: they are not "
        "attempted and the step says so; the shutdown behaviour and the volumes are still handled, "
        "and keeping the volumes is what matters most there, as EC2 may reclaim the instance at any "
        "time. If EC2 answers UnsupportedOperation for an attribute on any other instance, that "
        "attribute is noted as not supported rather than failing the step.",
};

IRFW_PLUGIN_ENTRY(protect, plugin)
