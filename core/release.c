/*
 * release.c - `irfw release`: put an instance back as it was before a case
 * quarantined it, from what the case record holds.
 *
 * Every instance must have a record of the case (unless --force with
 * --restore-groups), and the record must not be open in another process:
 * all of that is checked, and every record opened, before the first change.
 * Then each instance's steps are released in REVERSE pipeline order (the
 * tags first, containment last, so the instance is cut off until the end),
 * each through its plugin's `release` callback, which reads its records
 * (irfw_record_get), restores, and reads AWS back before saying OK.
 * Last, in pipeline order, the steps that tell of the release (their
 * plugin's `report_release`, a notifier's): the summary and ${outcome}
 * they get are the release's (irfw_release_state), never the containment
 * the run verified and the release has undone.
 *
 * A release is journaled in the case like a run (step "release:NAME"), so a
 * second release after a partial one does only what is left.  A dry run
 * writes nothing, not even to the record: it reads a copy of it.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "casestore.h"
#include "release.h"
#include "report.h"
#include "run.h"
#include "scheduler.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/names.h"
#include "aws/ratelimit.h"

#define RELEASE_PREFIX "release:"

/* ------------------------------------------------------------------ */
/* Setting up: the client, who acts, the instances.                    */

/* ------------------------------------------------------------------ */
/* The case records.                                                   */

static bool file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A copy of `from` as `to` (0600), for a dry run to read. */
static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb");
	if (!in)
		return errno == ENOENT ? 0 : -1;
	int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
	int rc = out ? 0 : -1;
	char buf[65536];
	size_t n;
	while (out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	if (ferror(in))
		rc = -1;
	fclose(in);
	if (out && fclose(out) != 0)
		rc = -1;
	else if (!out && fd >= 0)
		close(fd);
	return rc;
}

/* Scratch folder of a dry run, removed at the end. */
struct scratch {
	char *root; /* mkdtemp */
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* The scratch folder and everything casestore wrote in it. */
static void rm_tree(const char *root)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The instance folder of `t` in the case (to free). */
static char *case_folder(const char *ev, const char *case_id, const struct irfw_target *t)
{
	return irfw_strfmt("%s/%s/%s", ev, case_id, t->id);
}

/* True when another process holds the record (its journal's lock). */
static bool held_elsewhere(const char *journal)
{
	int fd = open(journal, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

/*
 * Open every instance's record before any change: 0, or IRFW_RUN_USAGE
 * after saying why (no record, a record held by another process, a record
 * that cannot be opened).  A dry run opens a copy in a scratch folder.
 */
static int open_records(struct irfw_run *r, const struct irfw_release_opts *o, struct scratch *sc)
{
	const char *ev = irfw_run_global(r, "evidence_dir");
	const char *case_id = r->case_id_resolved;
	int rc = IRFW_RUN_OK;
	char err[1024];
	if (r->dry_run) {
		char tmpl[] = "/tmp/irfw-release-dry-XXXXXX";
		char *d = mkdtemp(tmpl);
		if (!d) {
			irfw_logf(IRFW_LOG_ERROR, NULL, "dry run: cannot make a scratch folder: %s",
			          strerror(errno));
			return IRFW_RUN_USAGE;
		}
		sc->root = strdup(d);
	}
	cJSON *info = cJSON_CreateObject();
	char ts[32];
	irfw_iso_now(ts);
	cJSON_AddStringToObject(info, "tool", "irfw");
	cJSON_AddStringToObject(info, "version", PACKAGE_VERSION);
	cJSON_AddStringToObject(info, "command", "release");
	cJSON_AddStringToObject(info, "started", ts);
	cJSON_AddStringToObject(info, "caller_arn", r->caller_arn ? r->caller_arn : "");
	cJSON_AddStringToObject(info, "account_id", r->account_id);
	cJSON_AddStringToObject(info, "region", r->resolved_region);
	cJSON_AddBoolToObject(info, "force", o->force);
	cJSON_AddBoolToObject(info, "unprotect", o->unprotect);
	if (o->restore_groups)
		cJSON_AddStringToObject(info, "restore_groups", o->restore_groups);
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->found || t->skipped_state)
			continue;
		char *dir = case_folder(ev, case_id, t);
		char *journal = dir ? irfw_strfmt("%s/journal.jsonl", dir) : NULL;
		char *manifest = dir ? irfw_strfmt("%s/manifest.json", dir) : NULL;
		bool have = journal && manifest && (file_exists(journal) || file_exists(manifest));
		if (!have && !o->force) {
			irfw_logf(IRFW_LOG_ERROR, t->id,
			          "no record of case %s for this instance (looked in %s): release puts back "
			          "what a case recorded, and there is nothing recorded; check --case-id and "
			          "--evidence-dir, or give --force --restore-groups sg-... to set the groups "
			          "of every interface without a record",
			          case_id, dir ? dir : ev);
			rc = IRFW_RUN_USAGE;
		} else if (have && held_elsewhere(journal)) {
			irfw_logf(IRFW_LOG_ERROR, t->id,
			          "case %s is open in another process (%s is locked): wait for that run to "
			          "end, then release",
			          case_id, journal);
			rc = IRFW_RUN_USAGE;
		} else if (r->dry_run) {
			/* The copy: a dry run must not write even a run-start. */
			char *cdir = irfw_strfmt("%s/%s", sc->root, case_id);
			char *idir = irfw_strfmt("%s/%s/%s", sc->root, case_id, t->id);
			char *cj = idir ? irfw_strfmt("%s/journal.jsonl", idir) : NULL;
			char *cm = idir ? irfw_strfmt("%s/manifest.json", idir) : NULL;
			if (!cdir || !idir || !cj || !cm || (mkdir(cdir, 0700) != 0 && errno != EEXIST) ||
			    mkdir(idir, 0700) != 0 ||
			    (have && (copy_file(journal, cj) != 0 || copy_file(manifest, cm) != 0))) {
				irfw_logf(IRFW_LOG_ERROR, t->id,
				          "dry run: cannot copy the case record %s: %s", dir,
				          strerror(errno));
				rc = IRFW_RUN_USAGE;
			} else if (irfw_case_open(sc->root, case_id, t->id, info, &t->rec, err,
			                          sizeof(err)) != 0) {
				irfw_logf(IRFW_LOG_ERROR, t->id, "case record %s: %s", dir, err);
				rc = IRFW_RUN_USAGE;
			}
			free(cdir);
			free(idir);
			free(cj);
			free(cm);
		} else if (irfw_case_open(ev, case_id, t->id, info, &t->rec, err, sizeof(err)) != 0) {
			/* Lost a race with another process, or unreadable. */
			irfw_logf(IRFW_LOG_ERROR, t->id, "case record: %s", err);
			rc = IRFW_RUN_USAGE;
		}
		if (t->rec && !have)
			irfw_logf(IRFW_LOG_WARN, t->id,
			          "--force: no record of case %s for this instance; only --restore-groups "
			          "can be applied, and this release is recorded in a new record %s",
			          case_id, dir);
		free(dir);
		free(journal);
		free(manifest);
	}
	cJSON_Delete(info);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Releasing.                                                          */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* What a case record shows of step `name`: it began at least once. */
static bool step_in_case(const struct irfw_target *t, const char *name)
{
	return irfw_case_step_status(t->rec, name) != NULL;
}

/* One step's release: `fn` is the plugin's release, or its report_release
 * (report: asked again by every release, it decides itself what it did
 * already). */
static void release_step(struct irfw_target *t, struct irfw_step *s, struct irfw_step_result *res, bool force,
                         irfw_status (*fn)(irfw_target *, void *), bool report)
{
	struct irfw_run *r = t->run;
	bool record = !r->dry_run;
	char *name = irfw_strfmt(RELEASE_PREFIX "%s", s->name);
	t->cur = s;
	t->cur_res = res;
	res->ran = true;
	free(t->notes);
	t->notes = NULL;
	memset(&irfw_target_calls(t)->first_err, 0, sizeof(irfw_target_calls(t)->first_err));
	if (!name) {
		res->status = IRFW_FAILED;
		res->detail = strdup("out of memory");
		goto out;
	}
	if (!fn) {
		res->status = IRFW_SKIPPED;
		res->detail = strdup("nothing to undo (the plugin has no release)");
		goto out;
	}
	if (!force && !step_in_case(t, s->name)) {
		res->status = IRFW_SKIPPED;
		res->detail = strdup("not run in this case: nothing to undo");
		goto out;
	}
	/* Only "ok" is done: a step skipped (protection kept without
	 * --unprotect) is asked again, and skips again when nothing changed. */
	const char *was = irfw_case_step_status(t->rec, name);
	if (!report && !r->no_resume && was && strcmp(was, "ok") == 0) {
		res->status = IRFW_OK;
		res->resumed = true;
		res->detail = strdup("released by an earlier release of this case; not repeated");
		goto out;
	}
	if (record && irfw_case_step_begin(t->rec, name, s->mod->name) != 0)
		irfw_log(t, IRFW_LOG_WARN, "journal: %s", irfw_case_error(t->rec));
	double t0 = now_ms();
	irfw_status st = fn(t, s->state);
	res->ms = (long)(now_ms() - t0);
	if (st != IRFW_OK && st != IRFW_SKIPPED && st != IRFW_FAILED)
		st = IRFW_FAILED;
	res->status = st;
	if (st == IRFW_OK && t->notes && !res->detail)
		res->detail = strdup(t->notes);
	if (res->unchecked && st != IRFW_FAILED)
		irfw_result_note_unchecked(res);
	if (!res->detail)
		res->detail = strdup(st == IRFW_OK        ? "released"
		                     : st == IRFW_SKIPPED ? "skipped (no reason given)"
		                                          : "failed (no reason given)");
	if (record && irfw_case_step_end(t->rec, name, irfw_status_name(st), res->detail, res->aws_error,
	                                 res->request_ids, res->ms) != 0)
		irfw_log(t, IRFW_LOG_WARN, "case record: %s", irfw_case_error(t->rec));
out:
	if (res->status == IRFW_FAILED)
		irfw_log(t, IRFW_LOG_ERROR, "release FAILED: %s%s%s%s%s%s", res->detail ? res->detail : "",
		         res->aws_error ? " [" : "", res->aws_error ? res->aws_error : "",
		         res->request_id ? ", request " : "", res->request_id ? res->request_id : "",
		         res->aws_error ? "]" : "");
	else
		irfw_log(t, IRFW_LOG_INFO, "release %s: %s", res->status == IRFW_OK ? "ok" : "skipped",
		         res->detail ? res->detail : "");
	free(name);
}

struct pool {
	struct irfw_run *r;
	bool force;
	pthread_mutex_t lock;
	size_t next;
};

/* One instance: every step, last first; then the steps that tell of the
 * release (report_release), in pipeline order, with the others' results
 * before them. */
static void release_target(struct irfw_target *t, bool force)
{
	struct irfw_run *r = t->run;
	if (irfw_target_results_init(t) != 0)
		return;
	for (size_t k = r->n_steps; k-- > 0;)
		if (!r->steps[k]->mod->vt.report_release)
			release_step(t, r->steps[k], &t->results[k], force, r->steps[k]->mod->vt.release,
			             false);
	for (size_t k = 0; k < r->n_steps; k++)
		if (r->steps[k]->mod->vt.report_release)
			release_step(t, r->steps[k], &t->results[k], force,
			             r->steps[k]->mod->vt.report_release, true);
	t->cur = NULL;
	t->cur_res = NULL;
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		struct irfw_target *t = NULL;
		while (p->next < p->r->batch.n && !t) {
			struct irfw_target *c = p->r->batch.targets[p->next++];
			if (c->rec)
				t = c;
		}
		pthread_mutex_unlock(&p->lock);
		if (!t)
			return NULL;
		release_target(t, p->force);
	}
}

static void release_all(struct irfw_run *r, bool force)
{
	struct pool p = {.r = r, .force = force};
	pthread_mutex_init(&p.lock, NULL);
	size_t n = (size_t)(r->jobs > 0 ? r->jobs : 1);
	if (n > r->batch.n)
		n = r->batch.n;
	pthread_t *th = calloc(n ? n : 1, sizeof(*th));
	size_t started = 0;
	for (size_t i = 0; th && i < n; i++)
		if (pthread_create(&th[i], NULL, worker, &p) == 0)
			started++;
	if (started == 0)
		worker(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	pthread_mutex_destroy(&p.lock);
}

/* ------------------------------------------------------------------ */
/* The outcome.                                                        */

/* The release so far: the results that ran, but for the step asking and,
 * with instance_only, the steps that only tell of it. */
static void release_counts(const struct irfw_target *t, bool instance_only, size_t *ok, size_t *failed,
                           const struct irfw_step_result **first_failed)
{
	*ok = *failed = 0;
	*first_failed = NULL;
	/* Released last first: the first failure is the step latest in the
	 * pipeline, and containment, the last released, the last listed. */
	for (size_t k = t->n_results; k-- > 0;) {
		const struct irfw_step_result *res = &t->results[k];
		if (!res->ran || res == t->cur_res)
			continue;
		if (instance_only && k < t->run->n_steps && t->run->steps[k]->mod->vt.report_release)
			continue;
		if (res->status == IRFW_FAILED) {
			if (!*first_failed)
				*first_failed = res;
			(*failed)++;
		} else if (res->status == IRFW_OK) {
			(*ok)++;
		}
	}
}

const char *irfw_release_state(const struct irfw_target *t, const char **headline, char *cause,
                               size_t cause_len)
{
	size_t ok, failed;
	const struct irfw_step_result *ff;
	release_counts(t, true, &ok, &failed, &ff);
	const char *state = !failed ? "released" : ok ? "partially-released" : "not-released";
	if (headline)
		*headline = !failed ? "RELEASED" : ok ? "PARTIALLY RELEASED" : "NOT RELEASED";
	if (cause && cause_len) {
		cause[0] = '\0';
		if (ff)
			snprintf(cause, cause_len, "%zu step(s) not released, %s: %s%s%s%s", failed, ff->step,
			         ff->detail ? ff->detail : "failed", ff->aws_error ? " [" : "",
			         ff->aws_error ? ff->aws_error : "", ff->aws_error ? "]" : "");
	}
	return state;
}

/* "released", "partially-released" (some step failed after others did
 * something), "not-released", "not-found", "terminated". */
static const char *outcome(const struct irfw_target *t, bool dry)
{
	if (!t->found)
		return "not-found";
	if (t->skipped_state)
		return t->state ? t->state : "terminated";
	if (!t->rec)
		return "not-released";
	size_t ok, failed;
	const struct irfw_step_result *ff;
	release_counts(t, false, &ok, &failed, &ff);
	if (dry)
		return failed ? "dry-run-refused" : "dry-run";
	if (!failed)
		return "released";
	return ok ? "partially-released" : "not-released";
}

static void print_text(struct irfw_run *r)
{
	printf("%srelease of case %s\n", r->dry_run ? "dry run: " : "", r->case_id_resolved);
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (t->rec && !r->dry_run)
			printf("%s: %s (record %s)\n", t->id, outcome(t, false), irfw_case_dir(t->rec));
		else
			printf("%s: %s\n", t->id, outcome(t, r->dry_run));
		for (size_t k = t->n_results; k-- > 0;) {
			const struct irfw_step_result *res = &t->results[k];
			printf("  %-12s %-8s %s", res->step, irfw_status_name(res->status),
			       res->detail ? res->detail : "");
			if (res->aws_error)
				printf(" [%s%s%s]", res->aws_error, res->request_id ? ", request " : "",
				       res->request_id ? res->request_id : "");
			printf("\n");
		}
	}
	fflush(stdout);
}

static void print_json(struct irfw_run *r, int status)
{
	cJSON *doc = cJSON_CreateObject();
	/* The document's kind and version (doc/irfw-output.schema.json). */
	cJSON_AddStringToObject(doc, "format", "irfw-release/1");
	cJSON_AddStringToObject(doc, "command", "release");
	cJSON_AddStringToObject(doc, "case_id", r->case_id_resolved ? r->case_id_resolved : "");
	cJSON_AddBoolToObject(doc, "dry_run", r->dry_run);
	cJSON *insts = cJSON_AddArrayToObject(doc, "instances");
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "instance_id", t->id);
		cJSON_AddStringToObject(o, "outcome", outcome(t, r->dry_run));
		if (t->rec && !r->dry_run)
			cJSON_AddStringToObject(o, "case_dir", irfw_case_dir(t->rec));
		cJSON *steps = cJSON_AddArrayToObject(o, "steps");
		for (size_t k = t->n_results; k-- > 0;) {
			const struct irfw_step_result *res = &t->results[k];
			cJSON *s = cJSON_CreateObject();
			cJSON_AddStringToObject(s, "step", res->step);
			cJSON_AddStringToObject(s, "plugin", res->plugin);
			cJSON_AddStringToObject(s, "status", irfw_status_name(res->status));
			cJSON_AddStringToObject(s, "detail", res->detail ? res->detail : "");
			if (res->aws_error)
				cJSON_AddStringToObject(s, "aws_error", res->aws_error);
			if (res->request_id)
				cJSON_AddStringToObject(s, "request_id", res->request_id);
			if (res->request_ids)
				cJSON_AddItemToObject(s, "request_ids",
				                      cJSON_Duplicate(res->request_ids, true));
			cJSON_AddBoolToObject(s, "resumed", res->resumed);
			cJSON_AddNumberToObject(s, "ms", (double)res->ms);
			cJSON_AddItemToArray(steps, s);
		}
		cJSON_AddItemToArray(insts, o);
	}
	cJSON_AddNumberToObject(doc, "exit_status", status);
	irfw_json_doc_put(doc);
}

/* ------------------------------------------------------------------ */

static int check_groups(const char *list)
{
	char **v = NULL;
	int rc = 0;
	size_t n = irfw_split_list(list, &v);
	if (n == 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "--restore-groups: no group given");
		rc = -1;
	}
	for (char **p = v; p && *p; p++)
		if (!irfw_valid_sg_id(*p)) {
			irfw_logf(IRFW_LOG_ERROR, NULL,
			          "--restore-groups: '%s' is not a security group id (sg- and 8 or 17 hex "
			          "digits)",
			          *p);
			rc = -1;
		}
	irfw_strv_free(v);
	return rc;
}

int irfw_run_release(struct irfw_run *r, const struct irfw_release_opts *o, bool json)
{
	struct scratch sc = {0};
	int status = IRFW_RUN_OK;
	if (!r->case_id || !irfw_case_id_valid(r->case_id)) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          r->case_id
		              ? "--case-id '%s' is not a case id (letters, digits and . _ - :)"
		              : "release needs --case-id: the case whose record says what to put back%s",
		          r->case_id ? r->case_id : "");
		return IRFW_RUN_USAGE;
	}
	if (o->force && !o->restore_groups) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "--force needs --restore-groups sg-...: without a record, the groups to put back "
		          "must be given");
		return IRFW_RUN_USAGE;
	}
	if (o->restore_groups && check_groups(o->restore_groups) != 0)
		return IRFW_RUN_USAGE;
	r->case_id_resolved = strdup(r->case_id);
	r->releasing = true;
	int rc = irfw_run_connect(r);
	if (rc != IRFW_RUN_OK)
		return rc;
	if (irfw_run_describe(r) != 0)
		return IRFW_RUN_STEP_FAILED;
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->found) {
			irfw_logf(IRFW_LOG_ERROR, t->id, "instance not found in account %s, region %s",
			          r->account_id, r->resolved_region);
			status = IRFW_RUN_NOT_HANDLED;
		} else if (t->state &&
		           (strcmp(t->state, "terminated") == 0 || strcmp(t->state, "shutting-down") == 0)) {
			irfw_logf(IRFW_LOG_ERROR, t->id, "instance is %s: nothing to release", t->state);
			t->skipped_state = true;
			status = IRFW_RUN_NOT_HANDLED;
		}
	}
	rc = open_records(r, o, &sc);
	if (rc != IRFW_RUN_OK) {
		status = rc;
		goto out;
	}
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->rec)
			continue;
		if (o->restore_groups)
			irfw_fact_set(t, IRFW_FACT_RESTORE_GROUPS, o->restore_groups);
		if (o->unprotect)
			irfw_fact_set(t, IRFW_FACT_UNPROTECT, "true");
		if (o->force)
			irfw_fact_set(t, IRFW_FACT_FORCE, "true");
	}
	if (r->dry_run)
		irfw_logf(IRFW_LOG_INFO, NULL,
		          "dry run of the release of case %s: EC2 changes are sent with DryRun, others not "
		          "at all; no record is written",
		          r->case_id_resolved);
	release_all(r, o->force);

	bool failed = false;
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		for (size_t k = 0; k < t->n_results; k++)
			failed = failed || t->results[k].status == IRFW_FAILED;
		if (t->rec && !r->dry_run) {
			cJSON *v = cJSON_CreateObject();
			char ts[32];
			irfw_iso_now(ts);
			cJSON_AddStringToObject(v, "outcome", outcome(t, false));
			cJSON_AddStringToObject(v, "at", ts);
			cJSON_AddStringToObject(v, "by", r->caller_arn ? r->caller_arn : "");
			if (irfw_case_record(t->rec, "release", "outcome", v) != 0)
				irfw_log(t, IRFW_LOG_WARN, "case record: %s", irfw_case_error(t->rec));
		}
	}
	if (failed)
		status = IRFW_RUN_STEP_FAILED;
out:
	if (status != IRFW_RUN_USAGE) {
		if (json)
			print_json(r, status);
		else
			print_text(r);
	}
	if (sc.root) {
		for (size_t i = 0; i < r->batch.n; i++) {
			irfw_case_close(r->batch.targets[i]->rec);
			r->batch.targets[i]->rec = NULL;
		}
		rm_tree(sc.root);
		free(sc.root);
	}
	return status;
}
