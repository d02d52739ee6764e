/*
 * casestore.h - the case record: one instance's evidence folder.
 *
 * For each (case, instance) there is a folder
 * `<evidence_dir>/<case_id>/<instance_id>/` holding the artifacts,
 * `manifest.json` and an append-only `journal.jsonl`.
 *
 * The journal is the source of truth.  Every change is first appended to the
 * journal as one compact JSON line (a "record" line, which announces a
 * change, is synced before the call returns; the others with the next
 * synced line, a flush or the close), then applied to the in-memory
 * manifest, kept as text between steps.  manifest.json is rewritten
 * atomically (a rename) on irfw_case_flush() and on close, after the
 * journal it reflects is synced, and synced on close.  The manifest records
 * how many journal bytes it reflects ("journal_bytes"), so after a crash
 * between the two writes, or with a missing or corrupt manifest, opening the
 * case replays the journal and loses nothing.
 *
 * Journal events (each line has "ts", "event" and "prev", the hash chain
 * described below):
 *   run-start       {run}                       one per irfw_case_open()
 *   step-begin      {step, plugin}
 *   step-end        {step, status, detail, aws_error, request_ids, ms}
 *   record          {step, key, value}
 *   artifact        {step, name, requested_name?, media_type, size, sha256}
 *   artifact-location {name, uri, version_id, etag, kms_key}
 *   manifest-rebuilt  {moved_to?, reason}      informational, not replayed
 *
 * Threads: one object is used by one thread at a time; different objects
 * share nothing.  One process at a time may hold a case instance open
 * (flock on the journal); a second open fails instead of interleaving.
 *
 * Errors never abort: functions return -1 (or NULL/false) and
 * irfw_case_error() says why, naming the path and strerror.
 */
#ifndef IRFW_CORE_CASESTORE_H
#define IRFW_CORE_CASESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

/* Value of the manifest's "format" field. */
#define IRFW_CASE_FORMAT "irfw-case/1"

struct irfw_case;

/**
 * Open the record of `instance_id` in case `case_id`, creating
 * `<evidence_dir>/<case_id>/<instance_id>/` (missing folders get mode 0700)
 * or resuming an existing one.  An existing manifest.json is loaded and any
 * journal lines it does not reflect yet are replayed; a missing or corrupt
 * manifest is rebuilt from journal.jsonl (a corrupt one is first moved aside
 * to `.manifest.json.corrupt-<time>`).  `run_info` (who ran it: tool,
 * version, caller_arn, account_id, region, argv...; may be NULL) is copied
 * and appended to the manifest's "runs" with a "started" time.
 *
 * case_id and instance_id must be non-empty, not ".", and contain no '/',
 * no "..", and no control characters.
 *
 * Returns 0 and sets *out, or -1 with a message in err (may be NULL).
 */
/* The rule for a case id given by a person or a site template (the folder
 * of its records): 1 to 128 of letters, digits and . _ - :, not "." or "..". */
bool irfw_case_id_valid(const char *case_id);

int irfw_case_open(const char *evidence_dir, const char *case_id, const char *instance_id,
                   const cJSON *run_info, struct irfw_case **out, char *err, size_t errlen);

/** Close the record and free the object (NULL is fine).  Closing syncs
 * the journal's unsynced lines and writes and syncs manifest.json. */
void irfw_case_close(struct irfw_case *c);

/** Write manifest.json now if the journal holds changes it lacks (it is
 * otherwise rewritten only on close), after syncing the journal; a
 * failure is also logged.  0, or -1 with
 * irfw_case_error().  For readers of the file while the record is open. */
int irfw_case_flush(struct irfw_case *c);

/** Let the in-memory manifest give way to its text (a third of its size)
 * until the next reader parses it back: for a record whose instance now
 * waits, between phases, while the rest of the fleet goes on.  Only while
 * no step or prepare of the instance holds what irfw_case_record_get()
 * gave it. */
void irfw_case_chill(struct irfw_case *c);

/** The message of the last failed call on `c` ("" when none). */
const char *irfw_case_error(const struct irfw_case *c);

/** The instance folder, `<evidence_dir>/<case_id>/<instance_id>`. */
const char *irfw_case_dir(const struct irfw_case *c);

/** Path of manifest.json in the instance folder. */
const char *irfw_case_manifest_path(const struct irfw_case *c);

/** Path of journal.jsonl in the instance folder. */
const char *irfw_case_journal_path(const struct irfw_case *c);

/**
 * Journal that `step` (run by module `plugin`, may be NULL) is about to act,
 * written before returning (synced with the next record line, a flush or
 * the close) so that an interrupted step shows up as
 * "running".  The manifest's step entry gets status "running", a new
 * "started" time and one more "attempts"; the previous attempt's finished,
 * ms, detail, aws_error and request_ids are cleared (the journal keeps
 * them).  Returns 0 or -1.
 */
int irfw_case_step_begin(struct irfw_case *c, const char *step, const char *plugin);

/**
 * Journal the end of `step`: `status` is "ok", "skipped" or "failed";
 * `detail` (reason or note) and `aws_error` may be NULL; `request_ids` is
 * NULL or an array of strings (copied); `ms` is the duration, or negative
 * when unknown.  Updates the step's manifest entry; "ok" and "skipped" also
 * set its sticky "done" flag.  Returns 0 or -1.
 */
int irfw_case_step_end(struct irfw_case *c, const char *step, const char *status, const char *detail,
                       const char *aws_error, const cJSON *request_ids, long ms);

/** True if `step` has ended "ok" or "skipped" at least once in this case
 * (this run or an earlier one): resuming must not do it again. */
bool irfw_case_step_done(const struct irfw_case *c, const char *step);

/** True if `irfw release` undid `step` after it was last done: its release
 * step, "release:<step>", ended "ok" later (the timestamps are
 * milliseconds, ISO 8601, so they order as text).  A run of the case then
 * does the step again instead of resuming it as done. */
bool irfw_case_step_released(const struct irfw_case *c, const char *step);

/** The step's last status ("running", "ok", "skipped", "failed") or NULL
 * if it never began.  "running" after a reopen means a run was interrupted
 * while the step was acting. */
const char *irfw_case_step_status(const struct irfw_case *c, const char *step);

/**
 * Record `value` under steps[step].records[key] (replacing an earlier value
 * of the key), journaled and synced before returning (what a step is about
 * to change must survive a crash of the machine), and applied to the
 * in-memory manifest.
 * Always takes ownership of `value`, even on failure; NULL records a JSON
 * null.  Returns 0 or -1.
 */
int irfw_case_record(struct irfw_case *c, const char *step, const char *key, cJSON *value);

/** As irfw_case_record(), for a value that says what a change did or what
 * AWS showed after it: journaled (the same "record" line) and applied, not
 * synced; it becomes durable with the next synced line, a flush or close. */
int irfw_case_record_result(struct irfw_case *c, const char *step, const char *key, cJSON *value);

/** The value recorded by `step` under `key` (any run of this case), or NULL.
 * Owned by the case; valid until the next change to the record. */
const cJSON *irfw_case_record_get(const struct irfw_case *c, const char *step, const char *key);

/**
 * Add an artifact made by `step`: `len` bytes at `data` are written to a
 * temporary file in the instance folder, hashed (SHA-256) while written,
 * fsynced and moved into place without ever replacing an existing file.
 *
 * `name` must match [A-Za-z0-9._-]+, not start with '.', be at most 200
 * characters and not be "manifest.json" or "journal.jsonl".
 *
 * Evidence is never overwritten: if an artifact of the same requested name
 * with the same SHA-256 exists, nothing is written and 0 is returned (so a
 * resumed step may add its artifacts again).  If the name is taken by other
 * content (or any file), the new one is stored as `stem.N.ext` (the first
 * free N from 1; "mem.lime" -> "mem.1.lime", "notes" -> "notes.1") and
 * the manifest entry has "requested_name" set to `name`.
 *
 * Returns 0 or -1.
 */
int irfw_case_artifact_add(struct irfw_case *c, const char *step, const char *name, const char *media_type,
                           const void *data, size_t len);

/** Same as irfw_case_artifact_add(), copying the content of the file at
 * `src_path` (streamed, for captures too large for memory). */
int irfw_case_artifact_add_file(struct irfw_case *c, const char *step, const char *name,
                                const char *media_type, const char *src_path);

/** Number of artifacts of this instance, in the order they were added. */
size_t irfw_case_artifact_count(const struct irfw_case *c);

/** Stored file name of artifact i (after any numeric suffix), or NULL. */
const char *irfw_case_artifact_name(const struct irfw_case *c, size_t i);

/** Path of artifact i: the instance folder joined with its name (absolute
 * when evidence_dir was), or NULL. */
const char *irfw_case_artifact_path(const struct irfw_case *c, size_t i);

/** Media type of artifact i, or NULL. */
const char *irfw_case_artifact_media_type(const struct irfw_case *c, size_t i);

/** Lower-case hex SHA-256 of artifact i, or NULL. */
const char *irfw_case_artifact_sha256(const struct irfw_case *c, size_t i);

/** Size in bytes of artifact i, or 0. */
uint64_t irfw_case_artifact_size(const struct irfw_case *c, size_t i);

/**
 * Record where artifact i was shipped: `uri` (s3://bucket/key), and the
 * S3 version id, ETag and KMS key used (each may be NULL).  Replaces any
 * earlier location of the artifact and adds an "uploaded" time.
 * Returns 0 or -1.
 */
int irfw_case_artifact_set_location(struct irfw_case *c, size_t i, const char *uri, const char *version_id,
                                    const char *etag, const char *kms_key);

/* ------------------------------------------------------------------ */
/* The hash chain.
 *
 * Every journal line carries "prev": the lower-case hex SHA-256 of the
 * line before it, as written (its bytes without the newline); the first
 * line's "prev" is the genesis hash, the SHA-256 of the text
 * "irfw-journal-genesis CASE_ID/INSTANCE_ID".  The manifest holds the
 * head (the hash of the journal's last line, "journal_head"), the line
 * count ("journal_lines") and, for a journal begun by an older irfw whose
 * lines have no "prev", the line the chain starts at
 * ("journal_chained_from"; absent when it is 1). */

/** The genesis text and its hash (hex into out[65]; "" if OpenSSL fails).
 * The text is malloc'd (NULL when out of memory). */
char *irfw_case_genesis_text(const char *case_id, const char *instance_id);
void irfw_case_genesis(const char *case_id, const char *instance_id, char out[65]);

/** Hex hash of the journal's last line (what the manifest calls
 * journal_head), or NULL for an empty journal.  Changes with every line. */
const char *irfw_case_journal_head(const struct irfw_case *c);

/** Number of journal lines. */
long irfw_case_journal_lines(const struct irfw_case *c);

/** What irfw_case_check_journal() found. */
struct irfw_journal_check {
	long lines;         /* lines read */
	long chained_from;  /* first line with "prev" (1-based), 0: none */
	long legacy;        /* lines before it, without "prev" */
	long unparsed;      /* lines that are not JSON (torn by a crash) */
	char head[65];      /* hash of the last line (the genesis when empty) */
	char (*hashes)[65]; /* hash of line i+1 at [i], `lines` entries */
	cJSON *problems;    /* array of strings: each break of the chain */
	cJSON *notes;       /* array of strings: what is not an error */
	cJSON *replayed;    /* the manifest rebuilt by replaying every line */
};

/**
 * Read a journal without opening the case (no lock, nothing written):
 * check each line's "prev" against the line before it (or the genesis of
 * case_id/instance_id), and replay it into a fresh manifest.  Returns 0
 * (problems may be non-empty) or -1 with a message in err when the file
 * cannot be read.  Free with irfw_journal_check_free().
 */
int irfw_case_check_journal(const char *journal_path, const char *case_id, const char *instance_id,
                            struct irfw_journal_check *out, char *err, size_t errlen);
void irfw_journal_check_free(struct irfw_journal_check *jc);

/** The whole manifest tree as last written, read-only: format, case_id,
 * instance_id, created, updated, journal_bytes, runs, steps, artifacts. */
const cJSON *irfw_case_manifest(const struct irfw_case *c);

#endif /* IRFW_CORE_CASESTORE_H */
