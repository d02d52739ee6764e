/*
 * capture.c - volatile evidence from the EC2 control plane: the instance's
 * user data and network interfaces, its console output and a console
 * screenshot, each stored as an artifact through the core (which hashes it
 * and records it in the case manifest).  This plugin never talks to S3; the
 * upload step ships what it leaves behind.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irfw/irfw.h"

static const struct irfw_option opts[] = {
    {.name = "metadata",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Store instance-attributes.json (DescribeInstanceAttribute userData), the decoded user data as "
             "user-data.bin when there is any, and network-interfaces.json (DescribeNetworkInterfaces of the "
             "instance's ENIs). The DescribeInstances record itself is stored by the core as "
             "describe-instance.json."},
    {.name = "console_output",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Store the latest serial console output as console-output.txt (GetConsoleOutput, Latest=true; "
             "falls back to the buffered output where the instance type cannot give the latest)."},
    {.name = "screenshot",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Store a console screenshot as console-screenshot.jpg (GetConsoleScreenshot, WakeUp=true). "
             "Instance types without screenshot support are noted as skipped with AWS's reason."},
    {.name = NULL},
};

/* Outcome of the parts of one run, so the step can decide its status only
 * after every part was tried: evidence is worth more than an early exit. */
struct tally {
	char captured[256]; /* artifact names stored */
	char skipped[1024]; /* parts not applicable, with AWS's reason */
	char failed[1536];  /* parts that failed, with the AWS error */
	int n_captured, n_skipped, n_failed;
};

static void append(char *buf, size_t size, const char *fmt, ...) IRFW_PRINTF(3, 4);
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	if (used + 3 >= size)
		return;
	if (used) {
		memcpy(buf + used, "; ", 3);
		used += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

static void captured(struct tally *ty, const char *name)
{
	ty->n_captured++;
	append(ty->captured, sizeof(ty->captured), "%s", name);
}

/* The last call failed: remember its error now, since the next call clears it. */
static void aws_failed(irfw_target *t, struct tally *ty, const char *what)
{
	const char *rid = irfw_aws_request_id(t);
	ty->n_failed++;
	append(ty->failed, sizeof(ty->failed), "%s: %s: %s%s%s", what, irfw_aws_error_code(t),
	       irfw_aws_error_message(t), *rid ? " (request " : "", *rid ? rid : "");
	if (*rid)
		strncat(ty->failed, ")", sizeof(ty->failed) - strlen(ty->failed) - 1);
	irfw_log(t, IRFW_LOG_WARN, "%s failed: %s: %s", what, irfw_aws_error_code(t),
	         irfw_aws_error_message(t));
}

/* Errors that mean "this instance cannot give that", not "something broke":
 * AWS answers UnsupportedOperation for instance types (bare metal, some
 * Graviton and older generations) without a screenshot or latest-output
 * facility, and IncorrectInstanceState when the instance is not running. */
static bool not_applicable(const char *code)
{
	return strcmp(code, "UnsupportedOperation") == 0 || strcmp(code, "IncorrectInstanceState") == 0 ||
	       strcmp(code, "UnsupportedInstanceType") == 0;
}

static void aws_skipped(irfw_target *t, struct tally *ty, const char *what)
{
	ty->n_skipped++;
	append(ty->skipped, sizeof(ty->skipped), "%s skipped: %s: %s", what, irfw_aws_error_code(t),
	       irfw_aws_error_message(t));
	irfw_log(t, IRFW_LOG_INFO, "%s not available: %s: %s", what, irfw_aws_error_code(t),
	         irfw_aws_error_message(t));
}

static void store_failed(struct tally *ty, const char *name)
{
	ty->n_failed++;
	append(ty->failed, sizeof(ty->failed), "cannot store %s in the case folder (see the log)", name);
}

static cJSON *instance_params(irfw_target *t)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "InstanceId", irfw_target_id(t));
	return p;
}

/* Store a cJSON tree as a pretty-printed JSON artifact. */
static void store_json(irfw_target *t, struct tally *ty, const char *name, const cJSON *tree)
{
	char *text = cJSON_Print(tree);
	if (text && irfw_evidence_add(t, name, "application/json", text, strlen(text)) == 0)
		captured(ty, name);
	else
		store_failed(ty, name);
	free(text);
}

/* DescribeInstanceAttribute userData answered (rc, res: the call's). */
static void capture_user_data(irfw_target *t, struct tally *ty, int rc, const cJSON *res)
{
	if (rc != 0) {
		if (not_applicable(irfw_aws_error_code(t)))
			aws_skipped(t, ty, "user data");
		else
			aws_failed(t, ty, "DescribeInstanceAttribute userData");
		return;
	}
	if (!res)
		return;
	store_json(t, ty, "instance-attributes.json", res);
	/* Attackers hide scripts in user data; keep the decoded bytes too
	 * (often a shell script, sometimes gzip or MIME multipart). */
	const cJSON *ud = cJSON_GetObjectItemCaseSensitive(res, "userData");
	const char *val = irfw_json_str(ud, "value");
	if (val && *val) {
		size_t len = 0;
		void *bytes = irfw_base64_decode(val, &len);
		if (!bytes) {
			ty->n_failed++;
			append(ty->failed, sizeof(ty->failed), "user data is not base64");
		} else if (irfw_evidence_add(t, "user-data.bin", "application/octet-stream", bytes, len) ==
		           0) {
			captured(ty, "user-data.bin");
		} else {
			store_failed(ty, "user-data.bin");
		}
		free(bytes);
	}
}

/* DescribeNetworkInterfaces answered. */
static void capture_interfaces(irfw_target *t, struct tally *ty, int rc, const cJSON *res)
{
	if (rc != 0)
		aws_failed(t, ty, "DescribeNetworkInterfaces");
	else if (res)
		/* The reply holds no request id (the core keeps it apart): the
		 * artifact is the interfaces alone. */
		store_json(t, ty, "network-interfaces.json", res);
}

/* GetConsoleOutput (Latest=true) answered; asked again without Latest
 * where the instance type cannot give the latest. */
static void capture_console_output(irfw_target *t, struct tally *ty, int rc, const cJSON *res)
{
	cJSON *again = NULL;
	if (rc != 0 && strcmp(irfw_aws_error_code(t), "UnsupportedOperation") == 0) {
		/* Latest=true needs a Nitro instance; the buffered output is
		 * still evidence on the others. */
		irfw_log(t, IRFW_LOG_INFO,
		         "latest console output not supported (%s); asking for the buffered output",
		         irfw_aws_error_message(t));
		cJSON *p = instance_params(t);
		rc = irfw_aws_call(t, "ec2", "GetConsoleOutput", p, &again);
		cJSON_Delete(p);
		res = again;
	}
	if (rc != 0) {
		if (not_applicable(irfw_aws_error_code(t)))
			aws_skipped(t, ty, "console output");
		else
			aws_failed(t, ty, "GetConsoleOutput");
		return;
	}
	const char *out = irfw_json_str(res, "output");
	if (!out || !*out) {
		/* Not an error: a fresh or silent instance has nothing yet. */
		ty->n_skipped++;
		append(ty->skipped, sizeof(ty->skipped), "console output empty");
		cJSON_Delete(again);
		return;
	}
	size_t len = 0;
	void *text = irfw_base64_decode(out, &len);
	if (!text) {
		ty->n_failed++;
		append(ty->failed, sizeof(ty->failed), "GetConsoleOutput: output is not base64");
	} else if (irfw_evidence_add(t, "console-output.txt", "text/plain", text, len) == 0) {
		captured(ty, "console-output.txt");
	} else {
		store_failed(ty, "console-output.txt");
	}
	free(text);
	cJSON_Delete(again);
}

/* GetConsoleScreenshot answered. */
static void capture_screenshot(irfw_target *t, struct tally *ty, int rc, const cJSON *res)
{
	if (rc != 0) {
		if (not_applicable(irfw_aws_error_code(t)))
			aws_skipped(t, ty, "screenshot");
		else
			aws_failed(t, ty, "GetConsoleScreenshot");
		return;
	}
	const char *img = irfw_json_str(res, "imageData");
	if (!img || !*img) {
		ty->n_skipped++;
		append(ty->skipped, sizeof(ty->skipped), "screenshot empty");
		return;
	}
	size_t len = 0;
	void *jpeg = irfw_base64_decode(img, &len);
	if (!jpeg) {
		ty->n_failed++;
		append(ty->failed, sizeof(ty->failed), "GetConsoleScreenshot: imageData is not base64");
	} else if (irfw_evidence_add(t, "console-screenshot.jpg", "image/jpeg", jpeg, len) == 0) {
		captured(ty, "console-screenshot.jpg");
	} else {
		store_failed(ty, "console-screenshot.jpg");
	}
	free(jpeg);
}

/* Add one call of the capture to the set; its index, or -1. */
static int add_call(irfw_calls *c, const char *operation, cJSON *params)
{
	int i = params ? irfw_calls_add(c, NULL, "ec2", operation, params, 0) : -1;
	cJSON_Delete(params);
	return i;
}

/* Call i's outcome made the target's (its error for the tally), and its
 * result. */
static int outcome(irfw_calls *c, int i, const cJSON **res)
{
	*res = irfw_calls_result(c, (size_t)i);
	return irfw_calls_select(c, (size_t)i);
}

static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	irfw_step *step = irfw_target_step(t);
	struct tally ty;
	memset(&ty, 0, sizeof(ty));

	bool want_meta = irfw_step_get_bool(step, "metadata");
	bool want_out = irfw_step_get_bool(step, "console_output");
	bool want_shot = irfw_step_get_bool(step, "screenshot");
	if (!want_meta && !want_out && !want_shot)
		return irfw_skip(t,
		                 "nothing to capture: metadata, console_output and screenshot are all off");

	/* The reads are independent: all sent at once, so the console (the
	 * most volatile: a ring buffer that later boots overwrite), the
	 * screen and the configuration are taken at the same moment. */
	irfw_calls *c = irfw_calls_new(t);
	if (!c)
		return irfw_fail(t, "out of memory");
	int i_out = -1, i_shot = -1, i_attr = -1, i_enis = -1;
	if (want_out) {
		cJSON *p = instance_params(t);
		cJSON_AddTrueToObject(p, "Latest");
		i_out = add_call(c, "GetConsoleOutput", p);
	}
	if (want_shot) {
		cJSON *p = instance_params(t);
		/* WakeUp: a screen blanked by power saving shows nothing. */
		cJSON_AddTrueToObject(p, "WakeUp");
		i_shot = add_call(c, "GetConsoleScreenshot", p);
	}
	if (want_meta) {
		cJSON *p = instance_params(t);
		cJSON_AddStringToObject(p, "Attribute", "userData");
		i_attr = add_call(c, "DescribeInstanceAttribute", p);
		/* By filter rather than by the ids in the instance record: an
		 * ENI attached or detached since the batch was described is
		 * still seen. */
		p = cJSON_CreateObject();
		irfw_ec2_filter(p, "attachment.instance-id", irfw_target_id(t));
		i_enis = add_call(c, "DescribeNetworkInterfaces", p);
	}
	if ((want_out && i_out < 0) || (want_shot && i_shot < 0) ||
	    (want_meta && (i_attr < 0 || i_enis < 0))) {
		irfw_calls_free(c);
		return irfw_fail(t, "out of memory");
	}
	irfw_calls_run(c);

	/* The artifacts in the order they always had. */
	const cJSON *res;
	int rc;
	if (want_out) {
		rc = outcome(c, i_out, &res);
		capture_console_output(t, &ty, rc, res);
	}
	if (want_shot) {
		rc = outcome(c, i_shot, &res);
		capture_screenshot(t, &ty, rc, res);
	}
	if (want_meta) {
		rc = outcome(c, i_attr, &res);
		capture_user_data(t, &ty, rc, res);
		rc = outcome(c, i_enis, &res);
		capture_interfaces(t, &ty, rc, res);
	}
	irfw_calls_free(c);

	if (ty.n_failed)
		return irfw_fail(t, "%s%s%s%s%s", ty.failed,
		                 ty.n_captured ? "; captured: " : "; nothing captured", ty.captured,
		                 ty.n_skipped ? "; " : "", ty.skipped);
	if (!ty.n_captured)
		return irfw_skip(t, "nothing captured: %s", ty.skipped);
	irfw_note(t, "captured %s", ty.captured);
	if (ty.n_skipped)
		irfw_note(t, "%s", ty.skipped);
	return IRFW_OK;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "ec2:GetConsoleOutput", .when = "console_output=true", .per = "instance", .calls = 1},
    {.action = "ec2:GetConsoleScreenshot", .when = "screenshot=true", .per = "instance", .calls = 1},
    {.action = "ec2:DescribeInstanceAttribute", .when = "metadata=true", .per = "instance", .calls = 1},
    {.action = "ec2:DescribeNetworkInterfaces", .when = "metadata=true", .per = "instance", .calls = 1},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "capture",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "store user data, network interfaces, console output and a console screenshot as evidence",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_PRESERVE,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .description =
        "Collects the evidence EC2 itself holds about the instance and adds each piece to the case "
        "through the core, which writes it under the case folder, computes its SHA-256 and records it in "
        "manifest.json: instance-attributes.json and user-data.bin (DescribeInstanceAttribute userData, "
        "where attackers like to hide bootstrap scripts), network-interfaces.json (DescribeNetworkInterfaces "
        "of the instance's ENIs), console-output.txt (GetConsoleOutput, latest) and console-screenshot.jpg "
        "(GetConsoleScreenshot). The DescribeInstances record is stored by the core when the case is opened "
        "(describe-instance.json).\n\n"
        "It runs after isolate and protect, so the instance can no longer talk to an attacker nor be "
        "deleted while its evidence is taken, and before snapshot and upload, which ship what it leaves. "
        "Note that the network interfaces it records already carry the quarantine group; the original "
        "groups are in isolate's record.\n\n"
        "Every part is tried even when an earlier one fails. Instance types that cannot give a screenshot "
        "or the latest console output (UnsupportedOperation), and instances that are not running "
        "(IncorrectInstanceState), are noted as skipped with AWS's reason. The step is OK when anything was "
        "captured, SKIPPED when nothing applied, and FAILED when any other AWS error occurred. It cannot "
        "capture memory or disk contents: that needs an agent on the instance or the snapshot step.",
};

IRFW_PLUGIN_ENTRY(capture, plugin)
