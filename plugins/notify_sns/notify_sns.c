/*
 * notify_sns.c - tell the people on call what irfw did, through SNS.
 *
 * Publishes a summary of the instance's pipeline (its containment as the
 * core verified it, every earlier step's status, detail and AWS error, the
 * artifacts and where they went, the local case folder) to one SNS topic,
 * as plain text for a human or as the JSON summary object for a machine.
 * The subject and the first line say the containment (NOT CONTAINED: ...)
 * because that is what a responder woken at 3 a.m. must read first, and it
 * must be what AWS shows, not what irfw tried.  The topic may be in another
 * region than the run (a central on-call topic): Publish goes to the
 * topic's own region.  The topic's subscribers (e-mail, a Lambda that
 * forwards to chat, a ticketing queue) are the site's business.
 */
/* strdup(); the rest is C11. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "irfw/irfw.h"

/* SNS refuses a Message above 256 KiB (bytes of UTF-8) and a Subject of 100
 * characters or more. */
#define SNS_MESSAGE_MAX  (256u * 1024u)
#define SNS_SUBJECT_MAX  99u
#define TRUNCATED_MARKER "\n... (truncated, see the case manifest)\n"

static const struct irfw_option opts[] = {
    {.name = "topic",
     .type = IRFW_OPT_STRING,
     .def = "arn:aws:sns:${region}:${account_id}:slack-events",
     .help = "ARN of the topic to publish to (templates expand). The global `topic` key or `-t ARN` "
             "overrides it. Publish is sent to the region the ARN names, which may differ from the "
             "run's. The default is the naming rule of the tool irfw replaces."},
    {.name = "subject",
     .type = IRFW_OPT_STRING,
     .def = "${outcome}: ${instance_id} (case ${case_id})",
     .help = "Subject template (e-mail subscribers see it). ${outcome} is the verified containment "
             "as a headline: CONTAINED, PARTIALLY CONTAINED, NOT CONTAINED or CONTAINMENT NOT "
             "ATTEMPTED (in `irfw release`: RELEASED, PARTIALLY RELEASED or NOT RELEASED). Control "
             "characters and non-ASCII are replaced and it is cut to the 99 "
             "characters SNS accepts."},
    {.name = "format",
     .type = IRFW_OPT_ENUM,
     .def = "text",
     .choices = "text|json",
     .help = "`text`: a report for a human, whose first line is the containment outcome and its "
             "cause; `json`: the summary object (case_id, instance_id, name, account_id, region, "
             "containment {state, outcome, cause}, steps, counts, artifacts, case_dir) for a "
             "program."},
    {.name = NULL},
};

/* Append s with line breaks and other control characters turned into
 * spaces, so that a detail can never break the one-line-per-step layout. */
static void buf_put_line(irfw_strbuf *b, const char *s)
{
	for (const char *p = s; *p; p++) {
		char c = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
		irfw_strbuf_add(b, &c, 1);
	}
}

/* Make the SNS subject: printable ASCII only (a multi-byte character becomes
 * one '?'), no leading blanks (SNS wants a letter, digit or punctuation
 * first), at most SNS_SUBJECT_MAX characters. */
static char *sanitize_subject(const char *in)
{
	char *out = malloc(SNS_SUBJECT_MAX + 1);
	if (!out)
		return NULL;
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && n < SNS_SUBJECT_MAX; p++) {
		char c;
		if (*p >= 0x80) {
			if ((*p & 0xC0) == 0x80)
				continue; /* rest of a multi-byte character */
			c = '?';
		} else if (*p < 0x20 || *p == 0x7f) {
			c = ' ';
		} else {
			c = (char)*p;
		}
		if (c == ' ' && (n == 0 || out[n - 1] == ' '))
			continue; /* no leading blank, no runs of blanks from CR LF */
		out[n++] = c;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return out;
}

/* The plain-text report: what a responder needs at 3 a.m., top to bottom. */
static char *format_text(const cJSON *sum)
{
	irfw_strbuf *b = irfw_strbuf_new();
	const char *iid = irfw_json_text(sum, "instance_id"), *name = irfw_json_text(sum, "name");
	const char *acct = irfw_json_text(sum, "account_id"), *region = irfw_json_text(sum, "region");
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(sum, "steps");
	const cJSON *arts = cJSON_GetObjectItemCaseSensitive(sum, "artifacts");
	const cJSON *st;

	/* The core counts the statuses of the steps in the summary. */
	const cJSON *counts = cJSON_GetObjectItemCaseSensitive(sum, "counts");
	int n_ok = irfw_json_int(counts, "ok", 0);
	int n_skip = irfw_json_int(counts, "skipped", 0);
	int n_fail = irfw_json_int(counts, "failed", 0);

	/* First what a responder must know: is it cut off, and if not, why.
	 * The core's verified containment, never a guess from step results;
	 * in a release, what the release's read-backs showed. */
	const cJSON *rel = cJSON_GetObjectItemCaseSensitive(sum, "release");
	const cJSON *cont = rel ? rel : cJSON_GetObjectItemCaseSensitive(sum, "containment");
	const char *outcome = irfw_json_text(cont, "outcome"), *cause = irfw_json_text(cont, "cause");
	buf_put_line(b, outcome ? outcome : rel ? "RELEASE UNKNOWN" : "CONTAINMENT UNKNOWN");
	if (cause && *cause) {
		irfw_strbuf_puts(b, ": ");
		buf_put_line(b, cause);
	}
	irfw_strbuf_puts(b, rel ? "\n\nirfw release report (the instance is put back as it was before the "
	                          "case)\n\n"
	                        : "\n\nirfw incident response report\n\n");
	irfw_strbuf_puts(b, "Instance: ");
	buf_put_line(b, iid ? iid : "?");
	if (name) {
		irfw_strbuf_puts(b, " (");
		buf_put_line(b, name);
		irfw_strbuf_puts(b, ")");
	}
	irfw_strbuf_printf(b, "\nAccount:  %s\nRegion:   %s\nCase:     ", acct ? acct : "?",
	                   region ? region : "?");
	buf_put_line(b, irfw_json_text(sum, "case_id") ? irfw_json_text(sum, "case_id") : "?");
	/* The findings that named the instance (--finding), if any. */
	const cJSON *fnd;
	cJSON_ArrayForEach(fnd, cJSON_GetObjectItemCaseSensitive(sum, "findings"))
	{
		irfw_strbuf_puts(b, "\nFinding:  ");
		buf_put_line(b, irfw_json_text(fnd, "type") ? irfw_json_text(fnd, "type") : "?");
		irfw_strbuf_puts(b, " (");
		buf_put_line(b, irfw_json_text(fnd, "source") ? irfw_json_text(fnd, "source") : "?");
		irfw_strbuf_puts(b, " ");
		buf_put_line(b, irfw_json_text(fnd, "id") ? irfw_json_text(fnd, "id") : "?");
		irfw_strbuf_puts(b, ")");
	}
	if (rel && irfw_json_text(rel, "by")) {
		irfw_strbuf_puts(b, "\nBy:       ");
		buf_put_line(b, irfw_json_text(rel, "by"));
	}
	irfw_strbuf_printf(b, "\nResult:   %s%d ok, %d skipped, %d failed\n\n%s:\n",
	                   n_fail ? "ATTENTION: " : "", n_ok, n_skip, n_fail, rel ? "Released" : "Steps");

	cJSON_ArrayForEach(st, steps)
	{
		const char *s = irfw_json_text(st, "status"), *step = irfw_json_text(st, "step");
		const char *detail = irfw_json_text(st, "detail"), *code = irfw_json_text(st, "aws_error");
		const char *rid = irfw_json_text(st, "request_id");
		const char *label = !s                          ? "?"
		                    : strcmp(s, "ok") == 0      ? "ok"
		                    : strcmp(s, "skipped") == 0 ? "skipped"
		                                                : "FAILED";
		irfw_strbuf_printf(b, "  %-7s %s", label, step ? step : "?");
		if (detail) {
			irfw_strbuf_puts(b, ": ");
			buf_put_line(b, detail);
		}
		if (code || rid) {
			irfw_strbuf_puts(b, " [");
			if (code)
				buf_put_line(b, code);
			if (code && rid)
				irfw_strbuf_puts(b, ", ");
			if (rid) {
				irfw_strbuf_puts(b, "request id ");
				buf_put_line(b, rid);
			}
			irfw_strbuf_puts(b, "]");
		}
		irfw_strbuf_puts(b, "\n");
	}
	if (!cJSON_GetArraySize(steps))
		irfw_strbuf_puts(b, "  (no earlier step ran)\n");

	int n_arts = cJSON_GetArraySize(arts);
	irfw_strbuf_printf(b, "\nEvidence (%d artifact%s):\n", n_arts, n_arts == 1 ? "" : "s");
	const cJSON *a;
	cJSON_ArrayForEach(a, arts)
	{
		const char *an = irfw_json_text(a, "name"), *sha = irfw_json_text(a, "sha256"),
		           *uri = irfw_json_text(a, "uri");
		irfw_strbuf_puts(b, "  ");
		buf_put_line(b, an ? an : "?");
		irfw_strbuf_printf(b, "  sha256 %s  ", sha ? sha : "?");
		buf_put_line(b, uri ? uri : "(not uploaded)");
		irfw_strbuf_puts(b, "\n");
	}
	const char *dir = irfw_json_text(sum, "case_dir");
	irfw_strbuf_puts(b, "\nLocal case folder: ");
	buf_put_line(b, dir ? dir : "(none)");
	const char *head = irfw_json_text(sum, "journal_head");
	if (head) {
		irfw_strbuf_printf(b, "\nCase record: journal head %s (line %ld; irfw verify finds it)", head,
		                   irfw_json_long(sum, "journal_lines", 0));
	}
	irfw_strbuf_puts(b, "\nNotification id: ");
	buf_put_line(b,
	             irfw_json_text(sum, "notification_id") ? irfw_json_text(sum, "notification_id") : "?");
	irfw_strbuf_puts(b, "\n");
	return irfw_strbuf_steal(b);
}

/* The JSON form.  If it does not fit, drop artifacts from the end (the
 * manifest has them all) before cutting bytes, so it normally stays JSON. */
static char *format_json(cJSON *sum)
{
	char *out = cJSON_PrintUnformatted(sum);
	cJSON *arts = cJSON_GetObjectItemCaseSensitive(sum, "artifacts");
	while (out && strlen(out) > SNS_MESSAGE_MAX && cJSON_GetArraySize(arts) > 0) {
		free(out);
		cJSON_DeleteItemFromArray(arts, cJSON_GetArraySize(arts) - 1);
		if (!cJSON_HasObjectItem(sum, "truncated"))
			cJSON_AddStringToObject(sum, "truncated",
			                        "artifacts left out, see the case manifest");
		out = cJSON_PrintUnformatted(sum);
	}
	return out;
}

/* Cut `msg` to the SNS limit in place (it was malloc'ed with room to spare
 * or is reallocated), ending with the marker. */
static char *fit_message(char *msg)
{
	size_t len = strlen(msg);
	if (len <= SNS_MESSAGE_MAX)
		return msg;
	size_t keep = irfw_utf8_prefix(msg, len, SNS_MESSAGE_MAX - (sizeof(TRUNCATED_MARKER) - 1));
	memcpy(msg + keep, TRUNCATED_MARKER, sizeof(TRUNCATED_MARKER));
	return msg;
}

/*
 * Exactly once, as far as the case record can tell (irfw_notice_*: the
 * SDK's bookkeeping).  A notification has an id, "<case>/<instance>/<run
 * id>", sent in its attributes and its text.  The intent to publish is
 * recorded before Publish, the result after it: a resumed run that finds
 * the result does not publish again; one that finds only the intent (the
 * run was killed between the two) cannot know whether SNS got it, so it
 * publishes again with the same id and says so (subscribers can drop the
 * second by the id).  A step repeated on purpose (--no-resume, or the
 * containment changed since) is a new notification.
 */

/* The topic: a command-line `-t` (or the global `topic`) wins over the
 * step's own key. */
static char *resolve_topic(irfw_target *t)
{
	const char *g = irfw_global_get(irfw_target_step(t), "topic");
	return g && g[0] ? irfw_expand(t, g) : irfw_step_expand(t, "topic");
}

/* The run's notification, or with `release` the release's (its outcome
 * from the summary: each new outcome of a release is told once). */
static irfw_status publish(irfw_target *t, bool release)
{
	irfw_step *step = irfw_target_step(t);
	irfw_status st = IRFW_FAILED;
	char *topic = NULL, *subj_raw = NULL, *subject = NULL, *msg = NULL;
	cJSON *sum = irfw_target_summary(t), *params = NULL, *res = NULL;
	const char *rel_outcome =
	    release ? irfw_json_text(cJSON_GetObjectItemCaseSensitive(sum, "release"), "outcome") : NULL;
	irfw_notice *n =
	    sum && (!release || rel_outcome)
	        ? irfw_notice_begin(t, release ? "release_notification" : "notification", rel_outcome)
	        : NULL;
	if (!n) {
		st = irfw_fail(t, "out of memory");
		goto out;
	}
	const char *nid = irfw_notice_id(n), *before = irfw_notice_before(n);
	if (before && strcmp(before, "sent") == 0) {
		const char *mid = irfw_notice_earlier(n, "message_id");
		irfw_note(t,
		          "published by an earlier %s of this case (MessageId %s, notification %s); not "
		          "sent again",
		          release ? "release" : "run", mid ? mid : "?", nid);
		st = IRFW_OK;
		goto out;
	}
	topic = resolve_topic(t);
	if (!topic || !topic[0]) {
		st = irfw_fail(t, "no SNS topic: the topic template did not expand");
		goto out;
	}
	subj_raw = irfw_step_expand(t, "subject");
	subject = sanitize_subject(subj_raw ? subj_raw : "");
	if (!subject) {
		st = irfw_fail(t, "out of memory building the summary");
		goto out;
	}
	/* The summary lists this step too (still running): leave it out. */
	cJSON *steps = cJSON_GetObjectItemCaseSensitive(sum, "steps");
	for (int i = cJSON_GetArraySize(steps) - 1; i >= 0; i--) {
		const char *sn = irfw_json_text(cJSON_GetArrayItem(steps, i), "step");
		if (sn && strcmp(sn, irfw_step_name(step)) == 0)
			cJSON_DeleteItemFromArray(steps, i);
	}

	cJSON_AddStringToObject(sum, "notification_id", nid);
	const char *fmt = irfw_step_get(step, "format");
	msg = fmt && strcmp(fmt, "json") == 0 ? format_json(sum) : format_text(sum);
	if (!msg) {
		st = irfw_fail(t, "out of memory formatting the message");
		goto out;
	}
	msg = fit_message(msg);

	/* A central on-call topic lives in its own region: Publish goes there
	 * (an ARN that names no region is left to SNS to refuse). */
	char region[64];
	bool has_region = irfw_arn_region(topic, region);
	params = cJSON_CreateObject();
	cJSON_AddStringToObject(params, "TopicArn", topic);
	cJSON_AddStringToObject(params, "Message", msg);
	if (subject[0])
		cJSON_AddStringToObject(params, "Subject", subject);
	/* The id as an attribute, for a subscriber's filter policy or dedup. */
	cJSON *attr = cJSON_CreateObject();
	cJSON_AddStringToObject(attr, "Name", "irfw.notification_id");
	cJSON *val = cJSON_AddObjectToObject(attr, "Value");
	cJSON_AddStringToObject(val, "DataType", "String");
	cJSON_AddStringToObject(val, "StringValue", nid);
	cJSON_AddItemToObject(
	    cJSON_AddObjectToObject(cJSON_AddObjectToObject(params, "MessageAttributes"), "entry"), "1",
	    attr);
	if (before && !irfw_target_dry_run(t))
		irfw_log(
		    t, IRFW_LOG_WARN,
		    "notification %s: an earlier run %s; publishing it again with the same id "
		    "(subscribers may get it twice)",
		    nid,
		    strcmp(before, "failed") == 0
		        ? "failed to publish it (the message may have reached SNS all the same)"
		        : "recorded the intent to publish it but not the result (it was stopped between)");
	/* The intent, before the call: a kill between the two is seen. */
	if (!irfw_target_dry_run(t) && irfw_notice_record(t, n, "intended", NULL) != 0)
		irfw_log(t, IRFW_LOG_ERROR,
		         "notification %s: the intent to publish could not be recorded; "
		         "publishing all the same",
		         nid);
	/* A FIFO topic drops a repeat by its deduplication id (for 5 minutes)
	 * and wants a group: the notification's hash, and the instance. */
	size_t tl = strlen(topic);
	if (tl > 5 && strcmp(topic + tl - 5, ".fifo") == 0) {
		char dedup[65];
		irfw_sha256(nid, strlen(nid), dedup, NULL);
		cJSON_AddStringToObject(params, "MessageDeduplicationId", dedup);
		cJSON_AddStringToObject(params, "MessageGroupId", irfw_target_id(t));
	}
	/* Not retried blindly: a Publish whose answer was lost may have
	 * reached SNS, and SNS (but for a FIFO topic) keeps both.  It is sent
	 * once more, with the same id, and the step says so, as after a kill
	 * between the intent and the result. */
	const char *where = has_region ? region : NULL;
	bool resent = false;
	int prc = irfw_aws_call_ex(t, where, "sns", "Publish", params, IRFW_CALL_NOT_IDEMPOTENT, &res);
	if (prc != 0 && irfw_aws_error_code(t) &&
	    strcmp(irfw_aws_error_code(t), IRFW_AWS_OUTCOME_UNKNOWN) == 0) {
		irfw_log(t, IRFW_LOG_WARN,
		         "notification %s: the answer to Publish was lost (%s); SNS may have it: publishing "
		         "it again with the same id (subscribers may get it twice)",
		         nid, irfw_aws_error_message(t) ? irfw_aws_error_message(t) : "no answer");
		resent = true;
		prc = irfw_aws_call_ex(t, where, "sns", "Publish", params, IRFW_CALL_NOT_IDEMPOTENT, &res);
	}
	if (prc != 0) {
		st = irfw_fail_aws(t, "Publish to %s%s", topic,
		                   resent ? " (sent twice: the first answer was lost; SNS may have either)"
		                          : "");
		if (!irfw_target_dry_run(t)) {
			cJSON *e = cJSON_CreateObject();
			if (irfw_aws_error_code(t))
				cJSON_AddStringToObject(e, "error", irfw_aws_error_code(t));
			irfw_notice_record(t, n, "failed", e);
		}
		goto out;
	}
	if (!res) {
		irfw_note(t, "dry run: would publish %zu bytes to %s", strlen(msg), topic);
		st = IRFW_OK;
		goto out;
	}
	const char *mid = irfw_json_text(res, "MessageId");
	cJSON *sent = cJSON_CreateObject();
	if (mid)
		cJSON_AddStringToObject(sent, "message_id", mid);
	if (resent)
		cJSON_AddTrueToObject(sent, "sent_twice");
	irfw_notice_record(t, n, "sent", sent);
	if (mid)
		irfw_record_result(t, "message_id", cJSON_CreateString(mid));
	irfw_note(t, "published %sto %s, MessageId %s, notification %s%s%s", release ? "the release " : "",
	          topic, mid ? mid : "(none returned)", nid,
	          before ? " (sent again: an earlier run may have published it)" : "",
	          resent ? " (sent twice: the answer to the first Publish was lost, subscribers may get it "
	                   "twice)"
	                 : "");
	st = IRFW_OK;
out:
	irfw_notice_free(n);
	cJSON_Delete(res);
	cJSON_Delete(params);
	cJSON_Delete(sum);
	free(msg);
	free(subject);
	free(subj_raw);
	free(topic);
	return st;
}

static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	return publish(t, false);
}

/* `irfw release`, once the other steps are released: the release's
 * outcome (RELEASED, PARTIALLY RELEASED, NOT RELEASED) to the same topic. */
static irfw_status report_release(irfw_target *t, void *state)
{
	(void)state;
	return publish(t, true);
}

/* `irfw check` and --dry-run: the topic must exist and be readable by
 * this caller (GetTopicAttributes, in the topic's region); then run() in a
 * dry run builds the message, and the Publish it would send is named as not
 * checked (SNS has no DryRun: the core does not send it). */
static irfw_status check(irfw_target *t, void *state)
{
	char *topic = resolve_topic(t);
	if (!topic || !topic[0]) {
		free(topic);
		return irfw_fail(t, "no SNS topic: the topic template did not expand");
	}
	char region[64];
	bool has_region = irfw_arn_region(topic, region);
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "TopicArn", topic);
	int rc = irfw_aws_call_in(t, has_region ? region : NULL, "sns", "GetTopicAttributes", p, NULL);
	cJSON_Delete(p);
	if (rc != 0) {
		const char *code = irfw_aws_error_code(t);
		irfw_status st =
		    code && strcmp(code, "NotFound") == 0
		        ? irfw_fail_aws(t, "SNS topic %s does not exist (GetTopicAttributes)", topic)
		        : irfw_fail_aws(t, "SNS topic %s: GetTopicAttributes failed", topic);
		free(topic);
		return st;
	}
	irfw_note(t, "SNS topic %s exists", topic);
	free(topic);
	return irfw_target_dry_run(t) ? run(t, state) : IRFW_OK;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "sns:Publish", .resource = "${opt:topic}", .per = "instance", .calls = 1},
    /* irfw check: the topic exists (a run does not call it). */
    {.action = "sns:GetTopicAttributes", .resource = "${opt:topic}", .per = "run"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "notify_sns",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "publish a summary of what was done to an SNS topic",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_REPORT,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = check,
    .run = run,
    .report_release = report_release,
    .description =
        "Publishes one message per instance to an SNS topic. The subject and the first line of the "
        "message give the instance's containment as the core verified it by reading AWS back "
        "(CONTAINED, PARTIALLY CONTAINED, NOT CONTAINED or CONTAINMENT NOT ATTEMPTED) and, when it is "
        "not contained, the cause (\"NOT CONTAINED: eni-0ab still in sg-1\"). Then the instance, its "
        "Name tag, account, region and case, one line per earlier step (ok, skipped or FAILED, with "
        "the detail, the AWS error code and request id), every artifact with its SHA-256 and S3 "
        "location, and the local case folder. With format = json the message is the summary object "
        "instead, containment included. The MessageId is recorded in the case record.\n\n"
        "Publish goes to the region the topic's ARN names, so a central on-call topic in another "
        "region than the instances is reached.\n\n"
        "It runs last so that the summary covers every step of the instance, including failed ones; "
        "a step stopped by on_error = stop stops the notification too, so keep on_error = continue "
        "on the steps before it when people must always be told.\n\n"
        "The subject is cut to what SNS accepts (printable ASCII, under 100 characters) and the "
        "message to 256 KiB, ending with a marker that points to the case manifest. Secrets are "
        "never part of the message: it carries only the summary listed above. The step sends nothing "
        "in a dry run.\n\n"
        "Each message carries a notification id, CASE/INSTANCE/RUN_ID, as the message attribute "
        "irfw.notification_id and on its last line (the `notification_id` field in JSON). The "
        "intent to publish is recorded in the case before Publish and the MessageId after it: a "
        "resumed run does not publish again what an earlier run published; when only the intent is "
        "recorded (the run was killed between the two), it publishes again with the same id and "
        "says so, so subscribers may get that message twice and can drop it by its id. A Publish whose "
        "answer is lost (SNS may have taken it) is not retried blindly: it is sent once more with the "
        "same id and the step says \"sent twice\". To a FIFO topic (.fifo) the Publish carries a "
        "MessageDeduplicationId made from the id, so SNS drops such a repeat itself, and the instance "
        "id as MessageGroupId.\n\n"
        "`irfw release` publishes to the same topic once the instance's other steps are released: "
        "the subject's ${outcome} is then RELEASED, PARTIALLY RELEASED or NOT RELEASED, from what "
        "the release read back (the cause names the first step not released), and the message "
        "lists each step's release. A later release of the case publishes again only when that "
        "outcome changed.",
};

IRFW_PLUGIN_ENTRY(notify_sns, plugin)
