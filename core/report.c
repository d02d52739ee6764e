/*
 * report.c - the outcome for people (text) and programs (JSON), and the
 * summary a notification plugin gets (irfw_target_summary).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "casestore.h"
#include "run.h"
#include "containment.h"
#include "report.h"
#include "release.h"
#include "fleet.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

/* The "format" of the -o json document of a run, a dry run or a check
 * (doc/irfw-output.schema.json): "irfw-run/" and its major version, bumped
 * when a key changes meaning or goes away (new keys do not bump it). */
#define IRFW_OUTPUT_RUN_FORMAT "irfw-run/1"

cJSON *irfw_report_aws_calls(const struct irfw_run *r)
{
	if (!r->aws)
		return NULL;
	struct irfw_aws_stats st;
	irfw_aws_stats_get(r->aws, &st);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "requests", (double)st.requests);
	cJSON_AddNumberToObject(o, "retries", (double)st.retries);
	cJSON_AddNumberToObject(o, "throttled", (double)st.throttled);
	return o;
}

const char *irfw_status_name(irfw_status s)
{
	return s == IRFW_OK ? "ok" : s == IRFW_SKIPPED ? "skipped" : "failed";
}

/* The instance's case record folder and manifest.json: the record's while
 * it is open, else the paths kept when it was closed (NULL: no record). */
static const char *case_dir_of(const irfw_target *t)
{
	return t->rec ? irfw_case_dir(t->rec) : t->case_dir;
}

static const char *manifest_path_of(const irfw_target *t)
{
	return t->rec ? irfw_case_manifest_path(t->rec) : t->manifest_path;
}

static cJSON *result_json(const struct irfw_step_result *res)
{
	cJSON *s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "step", res->step);
	cJSON_AddStringToObject(s, "plugin", res->plugin);
	cJSON_AddStringToObject(s, "status",
	                        !res->ran          ? "not-run"
	                        : res->interrupted ? "interrupted"
	                        : res->not_checked ? "not-checked"
	                                           : irfw_status_name(res->status));
	if (res->unchecked)
		cJSON_AddItemToObject(s, "not_checked", cJSON_Duplicate(res->unchecked, true));
	if (res->detail)
		cJSON_AddStringToObject(s, "detail", res->detail);
	else
		cJSON_AddNullToObject(s, "detail");
	if (res->aws_error)
		cJSON_AddStringToObject(s, "aws_error", res->aws_error);
	else
		cJSON_AddNullToObject(s, "aws_error");
	if (res->request_id)
		cJSON_AddStringToObject(s, "request_id", res->request_id);
	else
		cJSON_AddNullToObject(s, "request_id");
	cJSON_AddNumberToObject(s, "ms", (double)res->ms);
	if (res->resumed)
		cJSON_AddTrueToObject(s, "resumed");
	if (res->phase)
		cJSON_AddStringToObject(s, "phase", irfw_phase_name(res->phase));
	return s;
}

/* {"state": "...", "outcome": "...", "cause": "..."} of the target. */
static cJSON *containment_json(const irfw_target *t)
{
	const char *cause;
	irfw_containment c = irfw_target_containment(t, &cause);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "state", irfw_containment_name(c));
	cJSON_AddStringToObject(o, "outcome", irfw_containment_outcome(c));
	cJSON_AddStringToObject(o, "cause", cause);
	return o;
}

cJSON *irfw_target_summary(const irfw_target *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "case_id", t->run->case_id_resolved ? t->run->case_id_resolved : "");
	cJSON_AddStringToObject(o, "instance_id", t->id);
	if (t->run->account_id)
		cJSON_AddStringToObject(o, "account_id", t->run->account_id);
	if (t->run->resolved_region)
		cJSON_AddStringToObject(o, "region", t->run->resolved_region);
	if (t->name_tag)
		cJSON_AddStringToObject(o, "name", t->name_tag);
	cJSON *steps = cJSON_AddArrayToObject(o, "steps");
	/* The step asking (a notifier) is not finished: leave it out. */
	int count[3] = {0, 0, 0};
	for (size_t i = 0; i < t->n_results; i++)
		if (t->results[i].ran && &t->results[i] != t->cur_res) {
			cJSON_AddItemToArray(steps, result_json(&t->results[i]));
			count[t->results[i].status]++;
		}
	cJSON *counts = cJSON_AddObjectToObject(o, "counts");
	cJSON_AddNumberToObject(counts, "ok", count[IRFW_OK]);
	cJSON_AddNumberToObject(counts, "skipped", count[IRFW_SKIPPED]);
	cJSON_AddNumberToObject(counts, "failed", count[IRFW_FAILED]);
	if (t->run->releasing) {
		/* A release: the containment the run verified is no longer
		 * what AWS shows; what the release's read-backs showed is. */
		const char *headline;
		char cause[1024];
		const char *state = irfw_release_state(t, &headline, cause, sizeof(cause));
		cJSON_AddStringToObject(o, "command", "release");
		cJSON *rel = cJSON_AddObjectToObject(o, "release");
		cJSON_AddStringToObject(rel, "state", state);
		cJSON_AddStringToObject(rel, "outcome", headline);
		cJSON_AddStringToObject(rel, "cause", cause);
		if (t->run->caller_arn)
			cJSON_AddStringToObject(rel, "by", t->run->caller_arn);
	} else {
		cJSON_AddItemToObject(o, "containment", containment_json(t));
	}
	const cJSON *fnd = irfw_fleet_findings_of(t->run, t->id);
	if (fnd)
		cJSON_AddItemToObject(o, "findings", cJSON_Duplicate(fnd, true));
	cJSON *arts = cJSON_AddArrayToObject(o, "artifacts");
	for (size_t i = 0; t->rec && i < irfw_case_artifact_count(t->rec); i++) {
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "name", irfw_case_artifact_name(t->rec, i));
		cJSON_AddStringToObject(a, "sha256", irfw_case_artifact_sha256(t->rec, i));
		const cJSON *all = cJSON_GetObjectItemCaseSensitive(irfw_case_manifest(t->rec), "artifacts");
		const cJSON *uri = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(all, (int)i), "uri");
		if (cJSON_IsString(uri))
			cJSON_AddStringToObject(a, "uri", uri->valuestring);
		cJSON_AddItemToArray(arts, a);
	}
	if (t->rec) {
		cJSON_AddStringToObject(o, "case_dir", irfw_case_dir(t->rec));
		/* The record as it is now, pinned: `irfw verify` finds this hash
		 * in the journal's chain. */
		const char *head = irfw_case_journal_head(t->rec);
		if (head && *head) {
			cJSON_AddStringToObject(o, "journal_head", head);
			cJSON_AddNumberToObject(o, "journal_lines", (double)irfw_case_journal_lines(t->rec));
		}
	}
	return o;
}

static const char *result_word(const struct irfw_step_result *res)
{
	if (!res->ran)
		return "not-run";
	if (res->interrupted)
		return "INTERRUPTED";
	if (res->not_checked)
		return "unchecked";
	return res->status == IRFW_OK ? "ok" : res->status == IRFW_SKIPPED ? "skipped" : "FAILED";
}

/* Above this many instances (or after a live progress line) the text
 * report is a recap rather than every step of every instance. */
#define DETAIL_MAX_INSTANCES 20

/* The recap: counts per step, then what did not go well, instance by
 * instance (containment, failed steps with their AWS error and request
 * id), then where the case records are. */
static void recap(struct irfw_run *r)
{
	size_t n_found = 0, n_gone = 0, n_missing = 0, by[4] = {0, 0, 0, 0};
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->found)
			n_missing++;
		else if (t->skipped_state)
			n_gone++;
		else {
			n_found++;
			by[irfw_target_containment(t, NULL)]++;
		}
	}
	printf("\ncase %s%s: %zu instance(s) handled", r->case_id_resolved ? r->case_id_resolved : "-",
	       r->dry_run ? " (dry run)" : "", n_found);
	if (!r->dry_run)
		printf(": %zu contained, %zu partially contained, %zu not contained, %zu not attempted",
		       by[IRFW_CONTAINED], by[IRFW_PARTIALLY_CONTAINED], by[IRFW_NOT_CONTAINED],
		       by[IRFW_CONTAINMENT_NOT_ATTEMPTED]);
	if (n_missing)
		printf("; %zu not found", n_missing);
	if (n_gone)
		printf("; %zu terminated or shutting down", n_gone);
	printf("\n\n  %-14s %6s %8s %7s %8s\n", "step", "ok", "skipped", "failed", "not-run");
	for (size_t k = 0; k < r->n_steps; k++) {
		size_t c[4] = {0, 0, 0, 0};
		for (size_t i = 0; i < r->batch.n; i++) {
			const struct irfw_target *t = r->batch.targets[i];
			if (k >= t->n_results)
				continue;
			const struct irfw_step_result *res = &t->results[k];
			c[!res->ran ? 3 : (unsigned)res->status < 3 ? res->status : 2]++;
		}
		printf("  %-14s %6zu %8zu %7zu %8zu\n", r->steps[k]->name, c[IRFW_OK], c[IRFW_SKIPPED],
		       c[IRFW_FAILED], c[3]);
	}
	bool header = false;
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->found || t->skipped_state) {
			if (!header)
				printf("\nneeds attention:\n");
			header = true;
			printf("  %s  %s\n", t->id, !t->found ? "NOT FOUND" : t->state ? t->state : "gone");
			continue;
		}
		const char *cause;
		irfw_containment c = irfw_target_containment(t, &cause);
		bool bad = c == IRFW_PARTIALLY_CONTAINED || c == IRFW_NOT_CONTAINED;
		for (size_t k = 0; k < t->n_results; k++)
			bad = bad || (t->results[k].ran && t->results[k].status == IRFW_FAILED);
		if (!bad)
			continue;
		if (!header)
			printf("\nneeds attention:\n");
		header = true;
		char *ecause = irfw_escape_text(cause);
		printf("  %s  %s%s%s\n", t->id, irfw_containment_outcome(c), ecause && *ecause ? ": " : "",
		       ecause ? ecause : "");
		free(ecause);
		for (size_t k = 0; k < t->n_results; k++) {
			const struct irfw_step_result *res = &t->results[k];
			if (!res->ran || res->status != IRFW_FAILED)
				continue;
			char *detail = irfw_escape_text(res->detail);
			char *aerr = irfw_escape_text(res->aws_error);
			printf("      FAILED %-12s %.160s%s%s%s%s%s\n", res->step, detail ? detail : "",
			       aerr ? " [" : "", aerr ? aerr : "", res->request_id ? ", request " : "",
			       res->request_id ? res->request_id : "", aerr ? "]" : "");
			free(detail);
			free(aerr);
		}
	}
	const char *ev = irfw_run_global(r, "evidence_dir");
	if (!r->dry_run && ev && r->case_id_resolved)
		printf("\ncase records: %s/%s/<instance>/\n", ev, r->case_id_resolved);
}

/* The preflight's verdicts (`irfw check`, --dry-run), each with its mark:
 * ✓ ✗ in a UTF-8 locale, words elsewhere (LC_ALL, LC_CTYPE, LANG as the C
 * library reads them; a terminal or not makes no difference, so a log of
 * the same run reads the same). */
enum verdict { V_OK, V_PART, V_NONE, V_SKIP, V_FAIL, V_NOTRUN, V_COUNT };

static enum verdict verdict_of(const struct irfw_step_result *res)
{
	if (!res->ran)
		return V_NOTRUN;
	if (res->not_checked)
		return V_NONE;
	if (res->status == IRFW_FAILED)
		return V_FAIL;
	if (res->status == IRFW_SKIPPED)
		return V_SKIP;
	return cJSON_GetArraySize(res->unchecked) > 0 ? V_PART : V_OK;
}

static bool utf8_locale(void)
{
	locale_t loc = newlocale(LC_CTYPE_MASK, "", (locale_t)0);
	if (loc == (locale_t)0)
		return false;
	const char *cs = nl_langinfo_l(CODESET, loc);
	bool utf8 = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
	freelocale(loc);
	return utf8;
}

static void preflight_table(struct irfw_run *r)
{
	static const char *const utf8_marks[V_COUNT] = {"✓", "~", "?", "-", "✗", "·"};
	static const char *const ascii_marks[V_COUNT] = {"ok", "part", "??", "skip", "FAIL", "--"};
	static const char *const meaning[V_COUNT] = {"checked",
	                                             "partly checked (the calls named were not sent)",
	                                             "not checked (no preflight)",
	                                             "a run would skip it",
	                                             "a run would fail",
	                                             "not reached"};
	bool utf8 = utf8_locale();
	const char *const *marks = utf8 ? utf8_marks : ascii_marks;
	size_t count[V_COUNT] = {0}, n_missing = 0, n_gone = 0;
	printf("\npreflight%s%s: nothing was changed\n", r->case_id_resolved ? " of case " : "",
	       r->case_id_resolved ? r->case_id_resolved : "");
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		char *name = irfw_escape_text(t->name_tag);
		printf("\n%s%s%s%s", t->id, name ? " (" : "", name ? name : "", name ? ")" : "");
		free(name);
		if (!t->found) {
			printf("  NOT FOUND in %s\n", r->resolved_region ? r->resolved_region : "?");
			n_missing++;
			continue;
		}
		if (t->skipped_state) {
			printf("  %s: not handled\n", t->state ? t->state : "gone");
			n_gone++;
			continue;
		}
		printf("\n");
		for (size_t k = 0; k < t->n_results; k++) {
			const struct irfw_step_result *res = &t->results[k];
			enum verdict v = verdict_of(res);
			count[v]++;
			char *detail = irfw_escape_text(res->detail);
			char *aerr = irfw_escape_text(res->aws_error);
			/* The marks are one column wide in UTF-8, words in ASCII. */
			printf("  %s%*s %-14s %s%s%s%s%s%s\n", marks[v], utf8 ? 0 : 4 - (int)strlen(marks[v]),
			       "", res->step,
			       v == V_NOTRUN ? "not reached: an earlier step stopped"
			       : detail      ? detail
			                     : "",
			       aerr ? " [" : "", aerr ? aerr : "", res->request_id ? ", request " : "",
			       res->request_id ? res->request_id : "", aerr ? "]" : "");
			free(detail);
			free(aerr);
		}
	}
	printf("\n");
	for (int v = 0; v < V_COUNT; v++)
		if (count[v])
			printf("%s %zu %s\n", marks[v], count[v], meaning[v]);
	if (n_missing)
		printf("%zu instance(s) not found\n", n_missing);
	if (n_gone)
		printf("%zu instance(s) terminated or shutting down: not handled\n", n_gone);
	if (count[V_FAIL]) {
		printf("a run would fail at:");
		for (size_t k = 0; k < r->n_steps; k++) {
			size_t n = 0;
			for (size_t i = 0; i < r->batch.n; i++) {
				const struct irfw_target *t = r->batch.targets[i];
				n += k < t->n_results && verdict_of(&t->results[k]) == V_FAIL;
			}
			if (n)
				printf(" %s (%zu)", r->steps[k]->name, n);
		}
		printf("\n");
	}
}

/* ------------------------------------------------------------------ */
/* An interrupted run: what is left, and the command that resumes it.  */

/* A word for a POSIX shell: bare when it holds only safe characters, else
 * in single quotes (a quote inside as '\''). */
static void shell_word(struct irfw_buf *b, const char *w)
{
	if (*w && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-") ==
	              strlen(w)) {
		irfw_buf_puts(b, w);
		return;
	}
	irfw_buf_puts(b, "'");
	for (const char *p = w; *p; p++)
		if (*p == '\'')
			irfw_buf_puts(b, "'\\''");
		else
			irfw_buf_add(b, p, 1);
	irfw_buf_puts(b, "'");
}

static void shell_opt(struct irfw_buf *b, const char *opt, const char *value)
{
	if (!value)
		return;
	irfw_buf_printf(b, " %s ", opt);
	shell_word(b, value);
}

static void shell_list(struct irfw_buf *b, const char *opt, char **list)
{
	if (!list || !*list)
		return;
	struct irfw_buf v = {0};
	for (char **p = list; *p; p++)
		irfw_buf_printf(&v, "%s%s", p == list ? "" : ",", *p);
	shell_opt(b, opt, v.data);
	irfw_buf_free(&v);
}

/* The command that resumes the case: the same configuration, evidence
 * folder, region, case and instances (ids, also those a --filter or
 * --finding chose), and the settings given on the command line that
 * change what is done.  Paths are made absolute so that it works from any
 * folder. */
static char *resume_command(struct irfw_run *r)
{
	struct irfw_buf b = {0};
	char abs[PATH_MAX];
	irfw_buf_puts(&b, "irfw");
	if (r->conf_path)
		shell_opt(&b, "--conf", realpath(r->conf_path, abs) ? abs : r->conf_path);
	const char *ev = irfw_run_global(r, "evidence_dir");
	if (ev)
		shell_opt(&b, "--evidence-dir", realpath(ev, abs) ? abs : ev);
	shell_opt(&b, "--region", r->resolved_region ? r->resolved_region : r->region);
	shell_opt(&b, "--profile", r->profile);
	shell_opt(&b, "--sgid", r->sgid);
	shell_opt(&b, "--bucket", r->bucket);
	shell_opt(&b, "--topic", r->topic);
	shell_list(&b, "--only", r->only);
	shell_list(&b, "--skip", r->skip);
	if (r->dry_run)
		irfw_buf_puts(&b, " --dry-run");
	shell_opt(&b, "--case-id", r->case_id_resolved ? r->case_id_resolved : r->case_id);
	for (size_t i = 0; i < r->batch.n; i++)
		shell_opt(&b, "-i", r->batch.targets[i]->id);
	return b.data;
}

/* How many steps the interruption left: not begun, and begun but
 * abandoned (a second signal). */
static void left_undone(const struct irfw_run *r, size_t *not_run, size_t *interrupted)
{
	*not_run = *interrupted = 0;
	for (size_t i = 0; i < r->batch.n; i++) {
		const struct irfw_target *t = r->batch.targets[i];
		if (!t->found || t->skipped_state)
			continue;
		if (!t->results) {
			*not_run += r->n_steps;
			continue;
		}
		for (size_t k = 0; k < t->n_results; k++)
			if (t->results[k].interrupted)
				(*interrupted)++;
			else if (!t->results[k].ran)
				(*not_run)++;
	}
}

/* {"signal", "abandoned", "steps_not_run", "steps_interrupted",
 * "resume_command"}, or null: the run was not interrupted. */
static cJSON *interrupted_json(struct irfw_run *r)
{
	if (!r->interrupted)
		return cJSON_CreateNull();
	char sb[16];
	size_t nr, ni;
	left_undone(r, &nr, &ni);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "signal", irfw_signal_name(r->interrupted, sb));
	cJSON_AddBoolToObject(o, "abandoned", r->abandoned);
	cJSON_AddNumberToObject(o, "steps_not_run", (double)nr);
	cJSON_AddNumberToObject(o, "steps_interrupted", (double)ni);
	char *cmd = resume_command(r);
	cJSON_AddStringToObject(o, "resume_command", cmd ? cmd : "");
	free(cmd);
	return o;
}

/* The end of the text summary, and one line on standard error (where an
 * operator watching the progress looks, also with -o json). */
static void interrupted_text(struct irfw_run *r, bool to_stdout)
{
	if (!r->interrupted)
		return;
	char sb[16];
	size_t nr, ni;
	left_undone(r, &nr, &ni);
	char *cmd = resume_command(r);
	const char *sig = irfw_signal_name(r->interrupted, sb);
	if (to_stdout) {
		printf("\nINTERRUPTED by %s%s: %zu step(s) not run, %zu interrupted (redone on resume); "
		       "the case is not complete.\nresume it with:\n  %s\n",
		       sig, r->abandoned ? " (twice: the calls in flight were abandoned)" : "", nr, ni,
		       cmd ? cmd : "");
		fflush(stdout);
	}
	irfw_logf(IRFW_LOG_WARN, NULL,
	          "interrupted by %s: %zu step(s) not run, %zu interrupted; resume with: %s", sig, nr, ni,
	          cmd ? cmd : "");
	free(cmd);
}

static void report_text_body(struct irfw_run *r);

void irfw_report_text(struct irfw_run *r)
{
	/* With --events - the standard output is the events' (JSON lines, for
	 * a program): the report for people goes to standard error instead. */
	bool events_out = r->events_path && strcmp(r->events_path, "-") == 0;
	int saved = -1;
	if (events_out) {
		fflush(stdout);
		saved = dup(STDOUT_FILENO);
		if (saved >= 0 && dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
			close(saved);
			saved = -1;
		}
	}
	report_text_body(r);
	interrupted_text(r, true);
	if (saved >= 0) {
		fflush(stdout);
		dup2(saved, STDOUT_FILENO);
		close(saved);
	}
}

static void report_text_body(struct irfw_run *r)
{
	if (r->dry_run && r->batch.n <= DETAIL_MAX_INSTANCES) {
		preflight_table(r);
		return;
	}
	if (r->batch.n > DETAIL_MAX_INSTANCES || r->progress.on) {
		recap(r);
		return;
	}
	printf("\ncase %s%s\n", r->case_id_resolved ? r->case_id_resolved : "-",
	       r->dry_run ? " (dry run)" : "");
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->found) {
			printf("%s  NOT FOUND in %s\n", t->id, r->resolved_region ? r->resolved_region : "?");
			continue;
		}
		char *name = irfw_escape_text(t->name_tag);
		if (t->skipped_state) {
			printf("%s%s%s%s  %s: not handled\n", t->id, name ? " (" : "", name ? name : "",
			       name ? ")" : "", t->state ? t->state : "gone");
			free(name);
			continue;
		}
		size_t ok = 0, sk = 0, fl = 0;
		for (size_t k = 0; k < t->n_results; k++)
			if (!t->results[k].ran)
				continue;
			else if (t->results[k].status == IRFW_OK)
				ok++;
			else if (t->results[k].status == IRFW_SKIPPED)
				sk++;
			else
				fl++;
		const char *cause;
		irfw_containment c = irfw_target_containment(t, &cause);
		char *ecause = irfw_escape_text(cause);
		printf("%s%s%s%s  %s%s%s  (%zu ok, %zu skipped, %zu failed)\n", t->id, name ? " (" : "",
		       name ? name : "", name ? ")" : "", irfw_containment_outcome(c),
		       ecause && *ecause ? ": " : "", ecause ? ecause : "", ok, sk, fl);
		free(ecause);
		free(name);
		for (size_t k = 0; k < t->n_results; k++) {
			const struct irfw_step_result *res = &t->results[k];
			char *detail = irfw_escape_text(res->detail);
			char *aerr = irfw_escape_text(res->aws_error);
			printf("  %-8s %-14s %s%s%s%s%s%s\n", result_word(res), res->step,
			       detail ? detail : "", aerr ? " [" : "", aerr ? aerr : "",
			       res->request_id ? ", request " : "", res->request_id ? res->request_id : "",
			       aerr ? "]" : "");
			free(detail);
			free(aerr);
		}
		if (case_dir_of(t))
			printf("  evidence: %s\n", case_dir_of(t));
	}
}

/* One instance of the -o json document. */
static cJSON *instance_json(struct irfw_run *r, struct irfw_target *t)
{
	cJSON *it = cJSON_CreateObject();
	cJSON_AddStringToObject(it, "instance_id", t->id);
	cJSON_AddBoolToObject(it, "found", t->found);
	if (t->state)
		cJSON_AddStringToObject(it, "state", t->state);
	if (t->found)
		cJSON_AddBoolToObject(it, "handled", !t->skipped_state);
	if (t->found && !t->skipped_state)
		cJSON_AddItemToObject(it, "containment", containment_json(t));
	const cJSON *fnd = irfw_fleet_findings_of(r, t->id);
	if (fnd)
		cJSON_AddItemToObject(it, "findings", cJSON_Duplicate(fnd, true));
	if (case_dir_of(t)) {
		cJSON_AddStringToObject(it, "case_dir", case_dir_of(t));
		cJSON_AddStringToObject(it, "manifest", manifest_path_of(t));
	}
	cJSON *steps = cJSON_AddArrayToObject(it, "steps");
	for (size_t k = 0; k < t->n_results; k++)
		cJSON_AddItemToArray(steps, result_json(&t->results[k]));
	return it;
}

/* `text` (cJSON_Print of a value) as it reads `depth` levels down in a
 * formatted document: cJSON's only line breaks are its own (a string's
 * are escaped), each followed by one tab per level. */
static void put_indented(FILE *f, const char *text, int depth)
{
	for (const char *p = text; *p; p++) {
		fputc(*p, f);
		if (*p == '\n')
			for (int d = 0; d < depth; d++)
				fputc('\t', f);
	}
}

void irfw_report_json_stopped(struct irfw_run *r, const char *call, const struct irfw_aws_error *e)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "format", IRFW_OUTPUT_RUN_FORMAT);
	const char *cid = r->case_id_resolved ? r->case_id_resolved : r->case_id;
	cJSON_AddStringToObject(doc, "case_id", cid ? cid : "");
	if (r->account_id)
		cJSON_AddStringToObject(doc, "account_id", r->account_id);
	if (r->resolved_region)
		cJSON_AddStringToObject(doc, "region", r->resolved_region);
	cJSON_AddBoolToObject(doc, "dry_run", r->dry_run);
	cJSON_AddArrayToObject(doc, "instances");
	cJSON *err = cJSON_AddObjectToObject(doc, "error");
	cJSON_AddStringToObject(err, "call", call);
	char *aws = irfw_strfmt("%s: %s", e->code[0] ? e->code : "Error", e->message);
	char *masked = aws ? irfw_log_masked(aws) : NULL;
	cJSON_AddStringToObject(err, "aws_error", masked ? masked : "");
	free(masked);
	free(aws);
	if (e->request_id[0])
		cJSON_AddStringToObject(err, "request_id", e->request_id);
	else
		cJSON_AddNullToObject(err, "request_id");
	cJSON_AddFalseToObject(err, "changed");
	cJSON_AddItemToObject(doc, "aws_calls", irfw_report_aws_calls(r));
	irfw_json_doc_put(doc);
}

void irfw_json_doc_put(cJSON *doc)
{
	char *out = cJSON_Print(doc);
	if (out)
		puts(out);
	free(out);
	cJSON_Delete(doc);
	fflush(stdout);
}

/*
 * The document is the bytes cJSON_Print() makes of it whole, but written
 * one instance at a time: the members before "instances" printed as one
 * object, then each instance made, printed two levels down and freed, so
 * that a fleet's summaries are never all in memory at once.
 */
void irfw_report_json(struct irfw_run *r)
{
	cJSON *doc = cJSON_CreateObject();
	/* The document's kind and version, as the manifest's "format"
	 * (doc/irfw-output.schema.json). */
	cJSON_AddStringToObject(doc, "format", IRFW_OUTPUT_RUN_FORMAT);
	cJSON_AddStringToObject(doc, "case_id", r->case_id_resolved ? r->case_id_resolved : "");
	if (r->account_id)
		cJSON_AddStringToObject(doc, "account_id", r->account_id);
	if (r->resolved_region)
		cJSON_AddStringToObject(doc, "region", r->resolved_region);
	cJSON_AddBoolToObject(doc, "dry_run", r->dry_run);
	cJSON_AddItemToObject(doc, "interrupted", interrupted_json(r));
	cJSON *calls = irfw_report_aws_calls(r);
	if (calls)
		cJSON_AddItemToObject(doc, "aws_calls", calls);
	char *head = cJSON_Print(doc);
	cJSON_Delete(doc);
	size_t len = head ? strlen(head) : 0;
	if (len < 2 || strcmp(head + len - 2, "\n}") != 0) {
		free(head);
		irfw_logf(IRFW_LOG_ERROR, NULL, "-o json: out of memory");
		interrupted_text(r, false);
		return;
	}
	/* "{\n\t...\n}": the object still open after its last member. */
	fwrite(head, 1, len - 2, stdout);
	free(head);
	fputs(",\n\t\"instances\":\t[", stdout);
	for (size_t i = 0; i < r->batch.n; i++) {
		cJSON *it = instance_json(r, r->batch.targets[i]);
		char *out = it ? cJSON_Print(it) : NULL;
		cJSON_Delete(it);
		if (!out) {
			/* Left unterminated: not a valid document, rather than
			 * one that leaves instances out. */
			irfw_logf(IRFW_LOG_ERROR, r->batch.targets[i]->id, "-o json: out of memory");
			fflush(stdout);
			interrupted_text(r, false);
			return;
		}
		if (i)
			fputs(", ", stdout);
		put_indented(stdout, out, 2);
		free(out);
	}
	fputs("]\n}\n", stdout);
	fflush(stdout);
	interrupted_text(r, false);
}
