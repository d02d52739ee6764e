/*
 * sdk_evidence.c - evidence and records of a step, in the case record.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "casestore.h"
#include "run.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

/* ------------------------------------------------------------------ */
/* Evidence and record.                                                */

int irfw_evidence_add(irfw_target *t, const char *name, const char *media_type, const void *data, size_t len)
{
	if (!t->rec && t->run->dry_run) {
		/* `irfw check` opens no case record: what was read is dropped. */
		irfw_log(t, IRFW_LOG_DEBUG, "check: %s (%zu bytes) not stored", name, len);
		return 0;
	}
	if (!t->rec) {
		irfw_log(t, IRFW_LOG_ERROR,
		         "cannot store evidence %s: this instance has no case record (see the "
		         "warning at the start of the run)",
		         name);
		return -1;
	}
	irfw_prepare_enter(t->run);
	int rc = irfw_case_artifact_add(t->rec, irfw_target_cur(t) ? irfw_target_cur(t)->name : "core", name,
	                                media_type, data, len);
	irfw_prepare_leave(t->run);
	if (rc != 0)
		irfw_log(t, IRFW_LOG_ERROR, "cannot store evidence %s: %s", name, irfw_case_error(t->rec));
	return rc;
}

size_t irfw_evidence_count(const irfw_target *t)
{
	return t->rec ? irfw_case_artifact_count(t->rec) : 0;
}

const char *irfw_evidence_name(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_name(t->rec, i);
}

const char *irfw_evidence_path(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_path(t->rec, i);
}

const char *irfw_evidence_media_type(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_media_type(t->rec, i);
}

const char *irfw_evidence_sha256(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_sha256(t->rec, i);
}

uint64_t irfw_evidence_size(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_size(t->rec, i);
}

int irfw_evidence_set_location(irfw_target *t, size_t i, const char *uri, const char *version_id,
                               const char *etag, const char *kms_key)
{
	return t->rec ? irfw_case_artifact_set_location(t->rec, i, uri, version_id, etag, kms_key) : -1;
}

const char *irfw_manifest_path(const irfw_target *t)
{
	/* The plugin reads the file (upload sends it): bring it up to date (a
	 * failure is logged by the case store). */
	if (t->rec)
		(void)irfw_case_flush(t->rec);
	return t->rec ? irfw_case_manifest_path(t->rec) : NULL;
}

static int record(irfw_target *t, const char *key, cJSON *value, bool sync)
{
	if (t->run->dry_run) {
		/* Nothing was changed, so there is nothing to undo. */
		cJSON_Delete(value);
		return 0;
	}
	char why[600] = "";
	int rc = -1;
	if (!t->rec) {
		snprintf(why, sizeof(why), "this instance has no case record");
		cJSON_Delete(value);
	} else {
		irfw_prepare_enter(t->run);
		const char *step = irfw_target_cur(t) ? irfw_target_cur(t)->name : "core";
		rc = sync ? irfw_case_record(t->rec, step, key, value)
		          : irfw_case_record_result(t->rec, step, key, value);
		if (rc != 0)
			snprintf(why, sizeof(why), "%s", irfw_case_error(t->rec));
		irfw_prepare_leave(t->run);
	}
	if (rc != 0) {
		irfw_log(t, IRFW_LOG_ERROR, "cannot record %s: %s", key, why);
		/* What a step changed and cannot record is lost for release and
		 * for the reader of the case: the step fails when it ends
		 * (scheduler.c), whatever it returns. */
		if (t->cur_res && !t->cur_res->record_error)
			t->cur_res->record_error = irfw_strfmt("%s: %s", key, why);
	}
	return rc;
}

int irfw_record(irfw_target *t, const char *key, cJSON *value)
{
	return record(t, key, value, true);
}

int irfw_record_result(irfw_target *t, const char *key, cJSON *value)
{
	return record(t, key, value, false);
}

int irfw_journal_head(const irfw_target *t, char hex[65], long *lines)
{
	const char *h = t && t->rec ? irfw_case_journal_head(t->rec) : NULL;

	if (lines)
		*lines = h ? irfw_case_journal_lines(t->rec) : 0;
	snprintf(hex, 65, "%s", h ? h : "");
	return h ? 0 : -1;
}

const cJSON *irfw_record_get(const irfw_target *t, const char *step, const char *key)
{
	if (!t->rec)
		return NULL;
	irfw_prepare_enter(t->run); /* another prepare may be recording */
	const cJSON *v = irfw_case_record_get(t->rec, step, key);
	irfw_prepare_leave(t->run);
	return v;
}

/* ------------------------------------------------------------------ */
/* Notices: a side effect sent once (irfw_notice_*, ABI 1.12).          */

struct irfw_notice {
	char *key, *outcome, *id;
	/* A copy of the earlier attempt's record (its "state" says how it
	 * ended): the record's tree changes with the next irfw_record. */
	cJSON *earlier;
};

void irfw_notice_free(irfw_notice *n)
{
	if (!n)
		return;
	free(n->key);
	free(n->outcome);
	free(n->id);
	cJSON_Delete(n->earlier);
	free(n);
}

irfw_notice *irfw_notice_begin(irfw_target *t, const char *key, const char *outcome)
{
	irfw_notice *n = calloc(1, sizeof(*n));
	if (!n || !key)
		goto fail;
	n->key = strdup(key);
	n->outcome = outcome ? strdup(outcome) : NULL;
	if (!n->key || (outcome && !n->outcome))
		goto fail;
	const struct irfw_step *cur = irfw_target_cur(t);
	const cJSON *prev = cur ? irfw_record_get(t, cur->name, key) : NULL;
	const char *pid = irfw_json_text(prev, "id"), *pout = irfw_json_text(prev, "outcome");
	bool same = !outcome || (pout && strcmp(pout, outcome) == 0);
	if (pid && same && !irfw_step_repeated(t)) {
		n->id = strdup(pid);
		n->earlier = cJSON_Duplicate(prev, true);
		if (!n->id || !n->earlier)
			goto fail;
	} else {
		const char *cid = irfw_target_case_id(t);
		n->id = irfw_strfmt("%s/%s/%s", cid ? cid : "-", irfw_target_id(t), irfw_run_id(t));
		if (!n->id)
			goto fail;
	}
	return n;
fail:
	irfw_notice_free(n);
	return NULL;
}

const char *irfw_notice_id(const irfw_notice *n)
{
	return n ? n->id : NULL;
}

const char *irfw_notice_before(const irfw_notice *n)
{
	return n ? irfw_json_text(n->earlier, "state") : NULL;
}

const char *irfw_notice_earlier(const irfw_notice *n, const char *field)
{
	return n && field ? irfw_json_text(n->earlier, field) : NULL;
}

int irfw_notice_record(irfw_target *t, const irfw_notice *n, const char *state, cJSON *extra)
{
	if (!n || !state) {
		cJSON_Delete(extra);
		return -1;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", n->id);
	cJSON_AddStringToObject(o, "run_id", irfw_run_id(t));
	cJSON_AddStringToObject(o, "state", state);
	if (n->outcome)
		cJSON_AddStringToObject(o, "outcome", n->outcome);
	const char *before = irfw_notice_before(n);
	if (before && strcmp(state, "sent") == 0)
		cJSON_AddStringToObject(o, "resent_after", before);
	cJSON *f, *next;
	for (f = extra ? extra->child : NULL; f; f = next) {
		next = f->next;
		if (f->string && !cJSON_HasObjectItem(o, f->string))
			cJSON_AddItemToObject(o, f->string, cJSON_DetachItemViaPointer(extra, f));
	}
	cJSON_Delete(extra);
	/* The intent is synced before the message goes out; what came of it
	 * need not be: lost, it reads as the intent alone, as after a kill. */
	if (strcmp(state, "intended") == 0)
		return irfw_record(t, n->key, o);
	return irfw_record_result(t, n->key, o);
}
