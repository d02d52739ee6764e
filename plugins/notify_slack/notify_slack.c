/*
 * notify_slack.c - tell the people on call what irfw did, in a Slack channel.
 *
 * Posts the instance's summary as Block Kit to an incoming webhook: a
 * header that leads with the instance's containment as the core verified
 * it (":rotating_light: NOT CONTAINED: i-..."), the cause when it is not
 * contained, the instance / case / account facts, one line per earlier step
 * with an emoji for its status, and where the evidence is.  The webhook URL is a
 * credential (anyone holding it can post to the channel), so it is read from
 * the INI, a file or the environment and never logged or recorded.
 */
/* strdup(); the rest is C11. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "irfw/irfw.h"

/* Slack's limits: section text 3000 characters, a field 2000, a header's
 * plain text 150.  Bytes are counted, which is never less than characters. */
#define SECTION_MAX      3000u
#define FIELD_MAX        2000u
#define HEADER_MAX       150u
#define DETAIL_MAX       400u /* one step's detail, so one step cannot eat the section */
#define WEBHOOK_FILE_MAX 4096u
#define DEFAULT_ENV      "IRFW_SLACK_WEBHOOK"
#define TRUNCATED_MARKER "\n… (truncated, see the case manifest)"

static const struct irfw_option opts[] = {
    {.name = "webhook_url",
     .type = IRFW_OPT_STRING,
     .flags = IRFW_OPT_SECRET,
     .help = "Incoming webhook URL (https://hooks.slack.com/services/...). It is a credential: prefer "
             "webhook_url_file or webhook_url_env so the INI can be world-readable. Set only one of "
             "the three."},
    {.name = "webhook_url_file",
     .type = IRFW_OPT_STRING,
     .help = "File whose first line is the webhook URL (templates expand in the path)."},
    {.name = "webhook_url_env",
     .type = IRFW_OPT_STRING,
     .help = "Environment variable holding the webhook URL. When none of the three keys is set, "
             "$" DEFAULT_ENV " is used if present, and the step is skipped if it is not."},
    {.name = "channel",
     .type = IRFW_OPT_STRING,
     .help = "Channel override (#name), for legacy webhooks that allow it."},
    {.name = "username",
     .type = IRFW_OPT_STRING,
     .help = "Sender name override, for legacy webhooks that allow it."},
    {.name = NULL},
};

/*
 * Append text for a mrkdwn field: & < > escaped as Slack asks (which also
 * stops a detail from carrying <!channel> or a link), control characters
 * made spaces, at most `max` source bytes (then "…").
 */
static void buf_mrkdwn(irfw_strbuf *b, const char *s, size_t max)
{
	size_t n = irfw_utf8_prefix(s, strlen(s), max);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '&')
			irfw_strbuf_puts(b, "&amp;");
		else if (c == '<')
			irfw_strbuf_puts(b, "&lt;");
		else if (c == '>')
			irfw_strbuf_puts(b, "&gt;");
		else if ((unsigned char)c < 0x20 || c == 0x7f)
			irfw_strbuf_puts(b, " ");
		else
			irfw_strbuf_add(b, &c, 1);
	}
	if (n < strlen(s))
		irfw_strbuf_puts(b, "…");
}

/* ------------------------------------------------------------------ */
/* The webhook URL.                                                    */

static const char *errno_text(int e)
{
	/* strerror() is not thread-safe and run() is called from many threads. */
	switch (e) {
	case ENOENT:
		return "no such file";
	case EACCES:
		return "permission denied";
	case EISDIR:
		return "is a directory";
	default:
		return "cannot be read";
	}
}

/* The first line of `path`, blanks trimmed; NULL with *err set. */
/* The webhook URL is a credential: anyone who reads the file can post as
 * irfw.  A warning, not a refusal (the file is the site's business). */
static void warn_if_readable(irfw_target *t, const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		irfw_log(t, IRFW_LOG_WARN, "webhook_url_file %s is readable by %s (mode %04o): chmod go-r %s",
		         path, (st.st_mode & S_IROTH) ? "anyone" : "its group",
		         (unsigned)(st.st_mode & 07777), path);
}

static char *read_first_line(const char *path, const char **err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		*err = errno_text(errno);
		return NULL;
	}
	char *line = calloc(1, WEBHOOK_FILE_MAX + 1);
	if (!line) {
		fclose(f);
		*err = "out of memory";
		return NULL;
	}
	if (!fgets(line, WEBHOOK_FILE_MAX + 1, f) && ferror(f)) {
		*err = errno_text(errno);
		fclose(f);
		free(line);
		return NULL;
	}
	fclose(f);
	size_t n = strlen(line);
	while (n > 0 && strchr(" \t\r\n", line[n - 1]))
		line[--n] = '\0';
	size_t lead = strspn(line, " \t");
	memmove(line, line + lead, n - lead + 1);
	return line;
}

/*
 * Find the webhook URL from the one configured source.  Returns IRFW_OK with
 * *url (to free), or the step's SKIPPED / FAILED result.  *source names the
 * source for the note; it never contains the URL.
 */
static irfw_status webhook_url(irfw_target *t, char **url, char *source, size_t source_len)
{
	irfw_step *step = irfw_target_step(t);
	const char *inline_url = irfw_step_get(step, "webhook_url");
	const char *env = irfw_step_get(step, "webhook_url_env");
	*url = NULL;

	if (inline_url && inline_url[0]) {
		snprintf(source, source_len, "webhook_url");
		*url = strdup(inline_url);
		return *url ? IRFW_OK : irfw_fail(t, "out of memory");
	}
	if (irfw_step_get(step, "webhook_url_file")) {
		char *path = irfw_step_expand(t, "webhook_url_file");
		if (!path)
			return irfw_fail(t, "webhook_url_file: the path template did not expand");
		const char *err = NULL;
		warn_if_readable(t, path);
		*url = read_first_line(path, &err);
		irfw_status st = IRFW_OK;
		if (!*url)
			st = irfw_fail(t, "webhook_url_file %s: %s", path, err);
		else if (!(*url)[0])
			st = irfw_fail(t, "webhook_url_file %s is empty", path);
		else
			snprintf(source, source_len, "webhook_url_file");
		if (st != IRFW_OK) {
			free(*url);
			*url = NULL;
		}
		free(path);
		return st;
	}
	const char *name = env && env[0] ? env : DEFAULT_ENV;
	const char *val = getenv(name);
	if (!val || !val[0]) {
		/* Naming a variable on purpose and not setting it is a mistake
		 * worth a failure; the default variable being absent just means
		 * this site does not use Slack from this host. */
		if (env && env[0])
			return irfw_fail(t, "webhook_url_env names $%s, which is not set", name);
		return irfw_skip(t, "no Slack webhook configured (webhook_url, webhook_url_file or $%s)",
		                 name);
	}
	snprintf(source, source_len, "$%.100s", name);
	*url = strdup(val);
	return *url ? IRFW_OK : irfw_fail(t, "out of memory");
}

/* ------------------------------------------------------------------ */
/* The message.                                                        */

static cJSON *text_obj(const char *type, const char *text)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddStringToObject(o, "text", text);
	if (strcmp(type, "plain_text") == 0)
		cJSON_AddTrueToObject(o, "emoji");
	return o;
}

static void add_field(cJSON *fields, const char *label, const char *value, const char *extra)
{
	irfw_strbuf *b = irfw_strbuf_new();
	irfw_strbuf_printf(b, "*%s*\n", label);
	buf_mrkdwn(b, value ? value : "?", FIELD_MAX / 2);
	if (extra) {
		irfw_strbuf_puts(b, " (");
		buf_mrkdwn(b, extra, FIELD_MAX / 4);
		irfw_strbuf_puts(b, ")");
	}
	char *s = irfw_strbuf_steal(b);
	cJSON_AddItemToArray(fields, text_obj("mrkdwn", s ? s : "?"));
	free(s);
}

static const char *status_emoji(const char *s)
{
	if (s && strcmp(s, "ok") == 0)
		return ":white_check_mark:";
	if (s && strcmp(s, "skipped") == 0)
		return ":heavy_minus_sign:";
	if (s && strcmp(s, "failed") == 0)
		return ":x:";
	return ":grey_question:";
}

/* The emoji for the instance's containment state (the summary's
 * containment.state): the first thing the channel shows. */
static const char *containment_emoji(const char *state)
{
	if (state && strcmp(state, "contained") == 0)
		return ":lock:";
	if (state && strcmp(state, "partially-contained") == 0)
		return ":warning:";
	if (state && strcmp(state, "not-contained") == 0)
		return ":rotating_light:";
	return ":grey_question:"; /* not attempted, or unknown */
}

/* One line for a step: emoji, name, status, detail, AWS code and request. */
/* The emoji for a release's state (the summary's release.state). */
static const char *release_emoji(const char *state)
{
	if (state && strcmp(state, "released") == 0)
		return ":unlock:";
	if (state && strcmp(state, "partially-released") == 0)
		return ":warning:";
	return ":lock:";
}

static char *step_line(const cJSON *st, size_t detail_max)
{
	irfw_strbuf *b = irfw_strbuf_new();
	const char *s = irfw_json_text(st, "status"), *code = irfw_json_text(st, "aws_error");
	const char *rid = irfw_json_text(st, "request_id"), *detail = irfw_json_text(st, "detail");
	irfw_strbuf_printf(b, "%s *", status_emoji(s));
	buf_mrkdwn(b, irfw_json_text(st, "step") ? irfw_json_text(st, "step") : "?", 100);
	irfw_strbuf_puts(b, "* ");
	irfw_strbuf_puts(b, s && strcmp(s, "failed") == 0 ? "FAILED" : s ? s : "?");
	if (detail) {
		irfw_strbuf_puts(b, ": ");
		buf_mrkdwn(b, detail, detail_max);
	}
	if (code || rid) {
		irfw_strbuf_puts(b, " [");
		if (code) {
			/* aws_error is "Code: message": the code in code style. */
			const char *colon = strstr(code, ": ");
			size_t clen = colon ? (size_t)(colon - code) : strlen(code);
			char c[128];
			snprintf(c, sizeof(c), "%.*s", (int)(clen < sizeof(c) ? clen : sizeof(c) - 1), code);
			irfw_strbuf_puts(b, "`");
			buf_mrkdwn(b, c, sizeof(c));
			irfw_strbuf_puts(b, "`");
			if (colon) {
				irfw_strbuf_puts(b, " ");
				buf_mrkdwn(b, colon + 2, detail_max);
			}
		}
		if (code && rid)
			irfw_strbuf_puts(b, ", ");
		if (rid) {
			irfw_strbuf_puts(b, "request id ");
			buf_mrkdwn(b, rid, 100);
		}
		irfw_strbuf_puts(b, "]");
	}
	return irfw_strbuf_steal(b);
}

/* The steps section with details cut to detail_max bytes: every line that
 * fits in SECTION_MAX, then a marker; *cut tells whether lines were lost. */
static char *steps_text_cut(const cJSON *steps, size_t detail_max, int *cut)
{
	irfw_strbuf *b = irfw_strbuf_new();
	const size_t room = SECTION_MAX - (sizeof(TRUNCATED_MARKER) - 1);
	const cJSON *st;
	cJSON_ArrayForEach(st, steps)
	{
		char *line = step_line(st, detail_max);
		if (!line) {
			irfw_strbuf_free(b);
			return NULL;
		}
		size_t len = irfw_strbuf_len(b);
		size_t need = strlen(line) + (len ? 1 : 0);
		if (len + need > room) {
			free(line);
			irfw_strbuf_puts(b, TRUNCATED_MARKER);
			*cut = 1;
			break;
		}
		if (len)
			irfw_strbuf_puts(b, "\n");
		irfw_strbuf_puts(b, line);
		free(line);
	}
	if (irfw_strbuf_len(b) == 0)
		irfw_strbuf_puts(b, "_No earlier step ran._");
	return irfw_strbuf_steal(b);
}

/* The steps section.  A line per step matters more than long details (a
 * FAILED step at the end must not fall off), so details are shortened
 * before any line is dropped. */
static char *steps_text(const cJSON *steps)
{
	static const size_t detail_max[] = {DETAIL_MAX, 160, 60, 0};
	char *text = NULL;
	for (size_t i = 0; i < sizeof(detail_max) / sizeof(detail_max[0]); i++) {
		int cut = 0;
		free(text);
		text = steps_text_cut(steps, detail_max[i], &cut);
		if (!text || !cut)
			break;
	}
	return text;
}

/* Where the evidence is: the S3 prefix the artifacts share (or a count of
 * those not uploaded) and the local case folder. */
static char *evidence_text(const cJSON *sum)
{
	const cJSON *arts = cJSON_GetObjectItemCaseSensitive(sum, "artifacts");
	const cJSON *a;
	const char *first = NULL;
	size_t common = 0;
	int n = 0, uploaded = 0;
	cJSON_ArrayForEach(a, arts)
	{
		n++;
		const char *uri = irfw_json_text(a, "uri");
		if (!uri)
			continue;
		uploaded++;
		if (!first) {
			first = uri;
			common = strlen(uri);
		} else {
			size_t k = 0;
			while (k < common && uri[k] == first[k])
				k++;
			common = k;
		}
	}
	while (first && common > 0 && first[common - 1] != '/')
		common--;

	irfw_strbuf *b = irfw_strbuf_new();
	irfw_strbuf_printf(b, ":file_folder: %d artifact%s", n, n == 1 ? "" : "s");
	if (uploaded) {
		/* A prefix shared by all URIs, or the one URI when alone. */
		size_t plen = common ? common : strlen(first);
		char prefix[1024];
		if (plen >= sizeof(prefix))
			plen = sizeof(prefix) - 1;
		snprintf(prefix, sizeof(prefix), "%.*s", (int)plen, first);
		irfw_strbuf_puts(b, " in ");
		buf_mrkdwn(b, prefix, sizeof(prefix));
		if (uploaded < n)
			irfw_strbuf_printf(b, " (%d not uploaded)", n - uploaded);
	} else if (n) {
		irfw_strbuf_puts(b, ", not uploaded");
	}
	const char *dir = irfw_json_text(sum, "case_dir");
	if (dir) {
		irfw_strbuf_puts(b, " · local case folder `");
		buf_mrkdwn(b, dir, 1000);
		irfw_strbuf_puts(b, "`");
	}
	const char *head = irfw_json_text(sum, "journal_head");
	if (head) /* hex: nothing to escape */
		irfw_strbuf_printf(b, " · record head `%.64s` (line %ld)", head,
		                   irfw_json_long(sum, "journal_lines", 0));
	const char *nid = irfw_json_text(sum, "notification_id");
	if (nid) {
		irfw_strbuf_puts(b, " · notification `");
		buf_mrkdwn(b, nid, 400);
		irfw_strbuf_puts(b, "`");
	}
	return irfw_strbuf_steal(b);
}

/* The Block Kit payload for the summary. */
static char *build_payload(irfw_target *t, const cJSON *sum)
{
	irfw_step *step = irfw_target_step(t);
	const char *iid = irfw_json_text(sum, "instance_id"), *name = irfw_json_text(sum, "name");
	const char *case_id = irfw_json_text(sum, "case_id");
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(sum, "steps");
	/* The core counts the statuses of the steps in the summary. */
	const cJSON *counts = cJSON_GetObjectItemCaseSensitive(sum, "counts");
	int n_ok = irfw_json_int(counts, "ok", 0);
	int n_skip = irfw_json_int(counts, "skipped", 0);
	int n_fail = irfw_json_int(counts, "failed", 0);
	char result[128];
	snprintf(result, sizeof(result), "%s%d ok, %d skipped, %d failed", n_fail ? ":warning: " : "", n_ok,
	         n_skip, n_fail);

	/* The containment as the core verified it leads the message; in a
	 * release, what the release's read-backs showed. */
	const cJSON *rel = cJSON_GetObjectItemCaseSensitive(sum, "release");
	const cJSON *cont = rel ? rel : cJSON_GetObjectItemCaseSensitive(sum, "containment");
	const char *outcome = irfw_json_text(cont, "outcome"), *cause = irfw_json_text(cont, "cause");
	const char *emoji = rel ? release_emoji(irfw_json_text(rel, "state"))
	                        : containment_emoji(irfw_json_text(cont, "state"));
	if (cause && !*cause)
		cause = NULL;
	if (!outcome)
		outcome = rel ? "RELEASE UNKNOWN" : "CONTAINMENT UNKNOWN";

	cJSON *root = cJSON_CreateObject();
	char *out = NULL, *header = NULL, *acct = NULL, *steps_s = NULL, *ev = NULL, *fallback = NULL;
	char *cause_s = NULL;

	/* The header is plain text: no escaping, only the length limit. */
	irfw_strbuf *hb = irfw_strbuf_new();
	irfw_strbuf_printf(hb, "%s %s: ", emoji, outcome);
	irfw_strbuf_puts(hb, iid ? iid : "?");
	if (n_fail)
		irfw_strbuf_printf(hb, ", %d step%s FAILED", n_fail, n_fail == 1 ? "" : "s");
	else
		irfw_strbuf_puts(hb, ", no step failed");
	header = irfw_strbuf_steal(hb);
	if (cause) {
		irfw_strbuf *cb = irfw_strbuf_new();
		irfw_strbuf_printf(cb, "%s *%s:* ", emoji, outcome);
		buf_mrkdwn(cb, cause, SECTION_MAX / 2);
		cause_s = irfw_strbuf_steal(cb);
	}
	irfw_strbuf *ab = irfw_strbuf_new();
	irfw_strbuf_puts(ab, irfw_json_text(sum, "account_id") ? irfw_json_text(sum, "account_id") : "?");
	irfw_strbuf_puts(ab, " / ");
	irfw_strbuf_puts(ab, irfw_json_text(sum, "region") ? irfw_json_text(sum, "region") : "?");
	acct = irfw_strbuf_steal(ab);
	steps_s = steps_text(steps);
	ev = evidence_text(sum);
	/* `text` is what notifications and screen readers show: outcome and
	 * cause first, so a phone's lock screen says it. */
	irfw_strbuf *fb = irfw_strbuf_new();
	irfw_strbuf_printf(fb, "%s %s: ", emoji, outcome);
	buf_mrkdwn(fb, iid ? iid : "?", 100);
	if (cause) {
		irfw_strbuf_puts(fb, ": ");
		buf_mrkdwn(fb, cause, SECTION_MAX / 2);
	}
	irfw_strbuf_puts(fb, " (case ");
	buf_mrkdwn(fb, case_id ? case_id : "?", 200);
	irfw_strbuf_puts(fb, "): ");
	irfw_strbuf_puts(fb, result);
	fallback = irfw_strbuf_steal(fb);
	if (!root || !header || !acct || !steps_s || !ev || !fallback || (cause && !cause_s))
		goto out;
	header[irfw_utf8_prefix(header, strlen(header), HEADER_MAX)] = '\0';

	cJSON_AddStringToObject(root, "text", fallback);
	const char *channel = irfw_step_get(step, "channel"), *username = irfw_step_get(step, "username");
	if (channel && channel[0])
		cJSON_AddStringToObject(root, "channel", channel);
	if (username && username[0])
		cJSON_AddStringToObject(root, "username", username);
	/* Slack's message metadata: the id where a program finds it. */
	const char *nid = irfw_json_text(sum, "notification_id");
	if (nid) {
		cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
		cJSON_AddStringToObject(meta, "event_type", "irfw_notification");
		cJSON *pl = cJSON_AddObjectToObject(meta, "event_payload");
		cJSON_AddStringToObject(pl, "notification_id", nid);
		cJSON_AddStringToObject(pl, "case_id", case_id ? case_id : "");
		cJSON_AddStringToObject(pl, "instance_id", iid ? iid : "");
	}

	cJSON *blocks = cJSON_AddArrayToObject(root, "blocks");
	cJSON *blk = cJSON_CreateObject();
	cJSON_AddStringToObject(blk, "type", "header");
	cJSON_AddItemToObject(blk, "text", text_obj("plain_text", header));
	cJSON_AddItemToArray(blocks, blk);

	/* Why it is not contained, right under the header. */
	if (cause_s) {
		blk = cJSON_CreateObject();
		cJSON_AddStringToObject(blk, "type", "section");
		cJSON_AddItemToObject(blk, "text", text_obj("mrkdwn", cause_s));
		cJSON_AddItemToArray(blocks, blk);
	}

	blk = cJSON_CreateObject();
	cJSON_AddStringToObject(blk, "type", "section");
	cJSON *fields = cJSON_AddArrayToObject(blk, "fields");
	add_field(fields, "Instance", iid, name);
	add_field(fields, "Case", case_id, NULL);
	add_field(fields, "Account / region", acct, NULL);
	add_field(fields, "Result", result, NULL);
	/* The findings that named the instance (--finding), if any. */
	const cJSON *fnd;
	int n_fnd = 0;
	/* A section holds at most 10 fields: the first few findings. */
	cJSON_ArrayForEach(fnd, cJSON_GetObjectItemCaseSensitive(sum, "findings")) if (n_fnd++ < 4)
	    add_field(fields, "Finding", irfw_json_text(fnd, "type"), irfw_json_text(fnd, "id"));
	cJSON_AddItemToArray(blocks, blk);

	blk = cJSON_CreateObject();
	cJSON_AddStringToObject(blk, "type", "section");
	cJSON_AddItemToObject(blk, "text", text_obj("mrkdwn", steps_s));
	cJSON_AddItemToArray(blocks, blk);

	blk = cJSON_CreateObject();
	cJSON_AddStringToObject(blk, "type", "context");
	cJSON *els = cJSON_AddArrayToObject(blk, "elements");
	cJSON_AddItemToArray(els, text_obj("mrkdwn", ev));
	cJSON_AddItemToArray(blocks, blk);

	out = cJSON_PrintUnformatted(root);
out:
	cJSON_Delete(root);
	free(header);
	free(acct);
	free(steps_s);
	free(ev);
	free(fallback);
	free(cause_s);
	return out;
}

/* ------------------------------------------------------------------ */
/* Exactly once, as far as the case record can tell (irfw_notice_*, as
 * notify_sns: the id CASE/INSTANCE/RUN_ID in the message, the intent
 * recorded before the post and the result after it; only the intent found
 * on resume means the run was killed between: posted again with the same
 * id, and said so).  */

/* ------------------------------------------------------------------ */
/* The step.                                                           */

static int init(irfw_step *step, void **state)
{
	(void)state;
	static const char *const keys[] = {"webhook_url", "webhook_url_file", "webhook_url_env"};
	const char *first = NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!irfw_step_get(step, keys[i]))
			continue;
		if (first) {
			irfw_step_error(step, keys[i],
			                "%s and %s are both set: give the webhook URL one way only", first,
			                keys[i]);
			return -1;
		}
		first = keys[i];
	}
	return 0;
}

/* The run's message, or with `release` the release's (its outcome from
 * the summary: each new outcome of a release is told once). */
static irfw_status post(irfw_target *t, bool release)
{
	char source[128] = "";
	char *url = NULL, *body = NULL;
	cJSON *sum = irfw_target_summary(t);
	irfw_status st;
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
		irfw_note(t, "posted by an earlier %s of this case (notification %s); not sent again",
		          release ? "release" : "run", nid);
		st = IRFW_OK;
		goto out;
	}
	st = webhook_url(t, &url, source, sizeof(source));
	if (st != IRFW_OK)
		goto out;
	/* The summary lists this step too (still running): leave it out. */
	const char *self = irfw_step_name(irfw_target_step(t));
	cJSON *steps = cJSON_GetObjectItemCaseSensitive(sum, "steps");
	for (int i = cJSON_GetArraySize(steps) - 1; i >= 0; i--) {
		const char *sn = irfw_json_text(cJSON_GetArrayItem(steps, i), "step");
		if (sn && strcmp(sn, self) == 0)
			cJSON_DeleteItemFromArray(steps, i);
	}

	cJSON_AddStringToObject(sum, "notification_id", nid);
	body = build_payload(t, sum);
	if (!body) {
		st = irfw_fail(t, "out of memory building the Slack message");
		goto out;
	}
	bool dry = irfw_target_dry_run(t);
	if (before && !dry)
		irfw_log(t, IRFW_LOG_WARN,
		         "notification %s: an earlier run %s; posting it again with the same id (the "
		         "channel may show it twice)",
		         nid,
		         strcmp(before, "failed") == 0
		             ? "failed to post it (Slack may have shown it all the same)"
		             : "recorded the intent to post it but not the result (it was stopped between)");
	if (!dry && irfw_notice_record(t, n, "intended", NULL) != 0)
		irfw_log(t, IRFW_LOG_ERROR,
		         "notification %s: the intent to post could not be recorded; posting all the same",
		         nid);
	long http = 0;
	int prc = irfw_http_post(t, url, "application/json", body, strlen(body), &http);
	if (!dry) {
		cJSON *e = cJSON_CreateObject();
		if (http > 0)
			cJSON_AddNumberToObject(e, "http_status", (double)http);
		irfw_notice_record(t, n, prc == 0 ? "sent" : "failed", e);
	}
	if (prc != 0) {
		/* The status only: the URL is a credential, and its host is in
		 * the log already. */
		if (http > 0)
			st = irfw_fail(t, "Slack webhook (from %s) answered HTTP %ld", source, http);
		else
			st = irfw_fail(t,
			               "posting to the Slack webhook (from %s) failed: connection error, "
			               "timeout or URL refused (see the log)",
			               source);
		goto out;
	}
	if (irfw_target_dry_run(t))
		irfw_note(t, "dry run: the Slack message was not posted");
	else
		irfw_note(t, "posted the %s to Slack (webhook from %s), notification %s%s",
		          release ? "release" : "summary", source, nid,
		          before ? " (sent again: an earlier run may have posted it)" : "");
	st = IRFW_OK;
out:
	irfw_notice_free(n);
	cJSON_Delete(sum);
	free(body);
	free(url);
	return st;
}

static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	return post(t, false);
}

/* `irfw release`, once the other steps are released: the release's
 * outcome (RELEASED, PARTIALLY RELEASED, NOT RELEASED) to the same
 * webhook. */
static irfw_status report_release(irfw_target *t, void *state)
{
	(void)state;
	return post(t, true);
}

/* The first n bytes of a equal b's, ASCII letters in either case. */
static bool ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char x = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] - 'A' + 'a') : a[i];
		char y = b[i] >= 'A' && b[i] <= 'Z' ? (char)(b[i] - 'A' + 'a') : b[i];
		if (x != y || !x)
			return false;
	}
	return true;
}

/* The hosts of Slack's incoming webhooks (Slack, and GovSlack). */
static bool slack_host(const char *h, size_t n)
{
	static const char *const hosts[] = {"hooks.slack.com", "hooks.slack-gov.com"};
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		if (n == strlen(hosts[i]) && ascii_ieq(h, hosts[i], n))
			return true;
	return false;
}

/* /services/T.../B.../SECRET: three segments of letters and digits. */
static bool webhook_path(const char *p)
{
	if (strncmp(p, "/services/", 10) != 0)
		return false;
	p += 10;
	for (int seg = 0; seg < 3; seg++) {
		size_t n = 0;
		while ((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z') ||
		       (p[n] >= '0' && p[n] <= '9'))
			n++;
		if (n == 0)
			return false;
		p += n;
		if (seg < 2 && *p++ != '/')
			return false;
	}
	return *p == '\0';
}

/*
 * `irfw check` and --dry-run: the webhook URL, from its one source, must
 * be one a run can post to: https (plain http only to this machine, as
 * the core allows for test receivers), no user part, and on Slack's hosts
 * the path of an incoming webhook.  Nothing is posted, and neither the URL
 * nor its path is ever shown: a failure names only the source and the
 * host.  A host other than Slack's (a compatible relay) passes with a
 * note.
 */
static irfw_status check(irfw_target *t, void *state)
{
	char source[128] = "";
	char *url = NULL;
	irfw_status st = webhook_url(t, &url, source, sizeof(source));
	if (st != IRFW_OK)
		return st;
	/* The scheme as the core takes it: in lower case. */
	bool https = strncmp(url, "https://", 8) == 0, local = false;
	const char *auth = https ? url + 8 : strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
	size_t alen = auth ? strcspn(auth, "/?#") : 0;
	size_t hlen = auth ? strcspn(auth, ":/?#") : 0;
	if (auth && !https)
		local = (hlen == 9 && strncmp(auth, "127.0.0.1", 9) == 0) ||
		        (hlen == 9 && strncmp(auth, "localhost", 9) == 0);
	if (!auth || (!https && !local))
		st = irfw_fail(
		    t, "the Slack webhook URL (from %s) is not an https URL; a run would refuse to post it",
		    source);
	else if (hlen == 0 || memchr(auth, '@', alen))
		st = irfw_fail(t, "the Slack webhook URL (from %s) has no host, or a user part before it",
		               source);
	else if (slack_host(auth, hlen) && !webhook_path(auth + alen))
		st = irfw_fail(t,
		               "the Slack webhook URL (from %s) is not an incoming webhook's "
		               "(https://%.*s/services/T.../B.../...): Slack would refuse the post",
		               source, (int)hlen, auth);
	else if (slack_host(auth, hlen))
		irfw_note(t, "dry run: the Slack incoming webhook (from %s) is well-formed; not posted to",
		          source);
	else
		irfw_note(t,
		          "dry run: the webhook (from %s) is on %.*s, not Slack's hooks.slack.com: a run "
		          "posts there; "
		          "not posted to",
		          source, (int)hlen, auth);
	free(url);
	(void)state;
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    /* None: a webhook is not AWS. */
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "notify_slack",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "post a summary of what was done to a Slack incoming webhook",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_REPORT,
    .init = init,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = check,
    .run = run,
    .report_release = report_release,
    .description =
        "Posts one Block Kit message per instance to a Slack incoming webhook. It leads with the "
        "instance's containment as the core verified it by reading AWS back, an emoji and the outcome "
        "(:lock: CONTAINED, :warning: PARTIALLY CONTAINED, :rotating_light: NOT CONTAINED, "
        ":grey_question: CONTAINMENT NOT ATTEMPTED) in the header and the notification text, and the "
        "cause right under it when the instance is not contained. Then the instance and its Name tag, "
        "the case, account and region, one line per earlier step with an emoji for ok, skipped or "
        "FAILED (and the AWS error code and request id), and where the evidence is (S3 prefix and "
        "local case folder).\n\n"
        "It runs last so that the summary covers every step of the instance. A failed post fails "
        "this step with the HTTP status and nothing else; the instance's containment is not undone. "
        "To post to two channels, add a second step with `plugin = notify_slack`.\n\n"
        "The webhook URL is a credential. Give it in exactly one of webhook_url, webhook_url_file "
        "or webhook_url_env; with none of them, $" DEFAULT_ENV " is used, and the step is skipped "
        "when that is unset. The URL is never logged, printed or written to the case record. Slack's "
        "text limits are respected by trimming, with a marker that points to the case manifest. "
        "Nothing is posted in a dry run.\n\n"
        "Each message carries a notification id, CASE/INSTANCE/RUN_ID, in its context line and in "
        "its Slack metadata (event_type irfw_notification). The intent to post is recorded in the "
        "case before the post and the result after it: a resumed run does not post again what an "
        "earlier run posted; when only the intent is recorded (the run was killed between), it posts "
        "again with the same id and says so.\n\n"
        "`irfw release` posts to the same webhook once the instance's other steps are released: "
        ":unlock: RELEASED, :warning: PARTIALLY RELEASED or :lock: NOT RELEASED, from what the release "
        "read back, with the first step not released as the cause and each step's release listed. A "
        "later release of the case posts again only when that outcome changed.",
};

IRFW_PLUGIN_ENTRY(notify_slack, plugin)
