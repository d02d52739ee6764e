/*
 * casestore.c - the case record and evidence store (see casestore.h).
 *
 * Every change goes journal first (one line, written before the call
 * returns), then the in-memory manifest (by the same apply_event() that
 * replays the journal, so a rebuilt manifest cannot differ from a live one),
 * then, when a reader needs it, manifest.json (temp file and rename).
 *
 * Which journal lines are synced (fdatasync) before the call returns: the
 * "record" lines of irfw_case_record(), because a step records what it is
 * about to change before it sends the change (isolate's original groups
 * before the swap, a notification's id before the publish), and that must
 * survive a crash of the machine once AWS may have acted on it.
 * The other lines announce no change: run-start, step-begin, step-end,
 * artifact, artifact-location, recovered, and the record lines of
 * irfw_case_record_result(), which say what a change did or what AWS
 * showed after it.  They are written, so a crash of the process loses none
 * of them, and become durable with the next synced line (the journal is
 * append-only, so one fdatasync covers every byte written before it), with
 * irfw_case_flush() or on close.  A crash of the machine can lose that
 * unsynced tail only, which is the record as a crash of the process just
 * before those lines leaves it: the next run of the case finds those steps
 * not begun or not ended, or a change announced without its result, and
 * reads AWS again, as it does for a step interrupted in any other way.
 * The folder's new entries (an artifact's name, a new journal) follow the
 * same rule: an artifact's file is synced before it is given its name,
 * and the folder is synced before the next journal sync, so a durable
 * line never names a file the machine's crash could take back, and a
 * capture of five files syncs the folder once, not five times.
 *
 * manifest.json is the journal's cache, so it is rewritten only when asked
 * for (irfw_case_flush: the upload step sends the file, and a recovery
 * writes it at once) and on close, after the journal it reflects is synced;
 * it is not synced itself change by change: a crash of the process leaves
 * the rename done, and a crash of the machine can at worst leave it behind
 * the journal or torn, which opening replays or rebuilds.  Closing the
 * record syncs it once.
 */
/* _DEFAULT_SOURCE for flock(); without _GNU_SOURCE glibc gives the XSI
 * strerror_r, which is the portable one. */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include "casestore.h"
#include "log.h"
#include "aws/sigv4.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define ARTIFACT_NAME_MAX 200
#define SUFFIX_MAX        10000
#define COPY_CHUNK        65536
#define TS_LEN            32

struct irfw_case {
	char *dir;
	char *manifest_path;
	char *journal_path;
	char *case_id;
	char *instance_id;
	int dir_fd;
	int journal_fd;
	off_t journal_bytes; /* journal size after the last line applied */
	bool poisoned;       /* memory no longer matches the journal */
	cJSON *manifest;     /* NULL while `cold` holds it */
	/* manifest.json's text as last written, when the tree was dropped
	 * after it (parsed back on the next use): a fleet's records are open
	 * together, and the text is smaller than the tree (a full pipeline's
	 * manifest: 10 KB of text, 37 KB of cJSON nodes and strings). */
	char *cold;
	char head[65];     /* SHA-256 of the last journal line, or the genesis */
	long lines;        /* journal lines */
	long chained_from; /* first line carrying "prev" (1-based); 0: none yet */
	char **paths;      /* artifact paths, index-aligned with "artifacts" */
	size_t npaths;
	bool manifest_dirty;    /* the journal holds changes manifest.json lacks */
	bool manifest_unsynced; /* manifest.json renamed in place, not yet synced */
	bool journal_unsynced;  /* journal lines written since the last fdatasync */
	bool names_unsynced;    /* entries made in the folder since its last fsync */
	char err[512];
};

/* ------------------------------------------------------------------ */
/* Small helpers.                                                      */

#if defined(__GNUC__)
static void set_err(struct irfw_case *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif

static void set_err(struct irfw_case *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* "<what> <path>: <strerror>" */
static void sys_err(struct irfw_case *c, const char *what, const char *path, int e)
{
	char buf[128];

	if (strerror_r(e, buf, sizeof(buf)) != 0)
		snprintf(buf, sizeof(buf), "error %d", e);
	set_err(c, "%s %s: %s", what, path, buf);
}

static void now_iso(char out[TS_LEN])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(out, TS_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + 19, TS_LEN - 19, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/* Lower-case hex SHA-256 of len bytes at data; -1 if OpenSSL fails. */
static int sha256_hex(const void *data, size_t len, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (EVP_Digest(data, len, md, &n, irfw_sha256_md(), NULL) != 1 || n != 32)
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0xf];
	}
	out[64] = '\0';
	return 0;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	bool slash = la > 0 && a[la - 1] != '/';
	char *p = malloc(la + slash + lb + 1);

	if (!p)
		return NULL;
	memcpy(p, a, la);
	if (slash)
		p[la] = '/';
	memcpy(p + la + slash, b, lb + 1);
	return p;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Durability of a new directory entry needs the parent folder synced too. */
static void fsync_parent(const char *path)
{
	char *copy = xstrdup(path);
	char *slash;
	int fd;

	if (!copy)
		return;
	slash = strrchr(copy, '/');
	if (slash == copy)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(copy, ".");
	fd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Some filesystems cannot fsync a directory (EINVAL); nothing to do then. */
static int fsync_dir(struct irfw_case *c)
{
	if (fsync(c->dir_fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
		sys_err(c, "fsync", c->dir, errno);
		return -1;
	}
	return 0;
}

/* The folder synced when an entry was made in it since (an artifact, a
 * new journal): before any journal sync, so a durable line never names a
 * file a crash of the machine could take back. */
static int sync_names(struct irfw_case *c)
{
	if (!c->names_unsynced)
		return 0;
	if (fsync_dir(c) != 0)
		return -1;
	c->names_unsynced = false;
	return 0;
}

static const char *str_field(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Add or replace obj[key]; always consumes item. */
static int set_item(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
		if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)) {
			cJSON_Delete(item);
			return -1;
		}
		return 0;
	}
	if (!cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		return -1;
	}
	return 0;
}

static cJSON *string_or_null(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* Strict parse: trailing garbage means the file is not what we wrote. */
static cJSON *parse_strict(const char *buf, size_t len)
{
	return cJSON_ParseWithLengthOpts(buf, len + 1, NULL, 1);
}

/* Case and instance ids become folder names. */
static bool id_ok(const char *id)
{
	if (!id || !*id || strcmp(id, ".") == 0 || strstr(id, "..") || strchr(id, '/'))
		return false;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static bool artifact_name_ok(const char *name)
{
	size_t n;

	if (!name || !*name || name[0] == '.')
		return false;
	n = strlen(name);
	if (n > ARTIFACT_NAME_MAX + 8)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return strcmp(name, "manifest.json") != 0 && strcmp(name, "journal.jsonl") != 0;
}

static bool status_ok(const char *s)
{
	return s && (strcmp(s, "ok") == 0 || strcmp(s, "skipped") == 0 || strcmp(s, "failed") == 0);
}

/* ------------------------------------------------------------------ */
/* Applying events to the manifest: shared by live changes and replay. */

static cJSON *step_entry(cJSON *m, const char *step)
{
	cJSON *steps = cJSON_GetObjectItemCaseSensitive(m, "steps");
	cJSON *s = cJSON_GetObjectItemCaseSensitive(steps, step);

	if (s)
		return cJSON_IsObject(s) ? s : NULL;
	s = cJSON_CreateObject();
	if (!s || !cJSON_AddItemToObject(steps, step, s)) {
		cJSON_Delete(s);
		return NULL;
	}
	return s;
}

static cJSON *find_artifact(const cJSON *m, const char *name, int *index)
{
	const cJSON *arts = cJSON_GetObjectItemCaseSensitive(m, "artifacts");
	cJSON *a;
	int i = 0;

	cJSON_ArrayForEach(a, arts)
	{
		const char *n = str_field(a, "name");
		if (n && strcmp(n, name) == 0) {
			if (index)
				*index = i;
			return a;
		}
		i++;
	}
	return NULL;
}

static int apply_run_start(cJSON *m, const cJSON *ev, const char *ts)
{
	cJSON *runs = cJSON_GetObjectItemCaseSensitive(m, "runs");
	const cJSON *info = cJSON_GetObjectItemCaseSensitive(ev, "run");
	cJSON *run;

	if (cJSON_GetArraySize(runs) == 0 && set_item(m, "created", cJSON_CreateString(ts)) != 0)
		return -1;
	run = cJSON_IsObject(info) ? cJSON_Duplicate(info, 1) : cJSON_CreateObject();
	if (!run)
		return -1;
	if (!cJSON_GetObjectItemCaseSensitive(run, "started") &&
	    set_item(run, "started", cJSON_CreateString(ts)) != 0)
		goto fail;
	if (!cJSON_AddItemToArray(runs, run))
		goto fail;
	return 0;
fail:
	cJSON_Delete(run);
	return -1;
}

static int apply_step_begin(cJSON *m, const cJSON *ev, const char *ts)
{
	const char *step = str_field(ev, "step");
	static const char *const stale[] = {"finished", "ms", "detail", "aws_error", "request_ids"};
	cJSON *s, *att;
	double attempts = 0;

	if (!step)
		return 1;
	s = step_entry(m, step);
	if (!s)
		return -1;
	att = cJSON_GetObjectItemCaseSensitive(s, "attempts");
	if (cJSON_IsNumber(att))
		attempts = att->valuedouble;
	for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(s, stale[i]);
	if (set_item(s, "plugin", string_or_null(str_field(ev, "plugin"))) != 0 ||
	    set_item(s, "status", cJSON_CreateString("running")) != 0 ||
	    set_item(s, "attempts", cJSON_CreateNumber(attempts + 1)) != 0 ||
	    set_item(s, "started", cJSON_CreateString(ts)) != 0)
		return -1;
	return 0;
}

static int apply_step_end(cJSON *m, const cJSON *ev, const char *ts)
{
	const char *step = str_field(ev, "step");
	const char *status = str_field(ev, "status");
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(ev, "ms");
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(ev, "request_ids");
	cJSON *s;

	if (!step || !status_ok(status))
		return 1;
	s = step_entry(m, step);
	if (!s)
		return -1;
	if (set_item(s, "status", cJSON_CreateString(status)) != 0)
		return -1;
	if (strcmp(status, "failed") != 0 && set_item(s, "done", cJSON_CreateTrue()) != 0)
		return -1;
	if (set_item(s, "finished", cJSON_CreateString(ts)) != 0)
		return -1;
	if (cJSON_IsNumber(ms)) {
		if (set_item(s, "ms", cJSON_CreateNumber(ms->valuedouble)) != 0)
			return -1;
	} else {
		cJSON_DeleteItemFromObjectCaseSensitive(s, "ms");
	}
	if (set_item(s, "detail", string_or_null(str_field(ev, "detail"))) != 0 ||
	    set_item(s, "aws_error", string_or_null(str_field(ev, "aws_error"))) != 0 ||
	    set_item(s, "request_ids", cJSON_IsArray(ids) ? cJSON_Duplicate(ids, 1) : cJSON_CreateArray()) !=
	        0)
		return -1;
	return 0;
}

static int apply_record(cJSON *m, const cJSON *ev)
{
	const char *step = str_field(ev, "step");
	const char *key = str_field(ev, "key");
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(ev, "value");
	cJSON *s, *records;

	if (!step || !key)
		return 1;
	s = step_entry(m, step);
	if (!s)
		return -1;
	records = cJSON_GetObjectItemCaseSensitive(s, "records");
	if (!cJSON_IsObject(records)) {
		if (set_item(s, "records", cJSON_CreateObject()) != 0)
			return -1;
		records = cJSON_GetObjectItemCaseSensitive(s, "records");
	}
	return set_item(records, key, value ? cJSON_Duplicate(value, 1) : cJSON_CreateNull());
}

static int apply_artifact(cJSON *m, const cJSON *ev, const char *ts)
{
	static const char *const copied[] = {"name", "requested_name", "media_type",
	                                     "size", "sha256",         "step"};
	cJSON *arts = cJSON_GetObjectItemCaseSensitive(m, "artifacts");
	const char *name = str_field(ev, "name");
	cJSON *a;

	if (!name || !str_field(ev, "sha256") || find_artifact(m, name, NULL))
		return 1;
	a = cJSON_CreateObject();
	if (!a)
		return -1;
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, copied[i]);
		if (v && set_item(a, copied[i], cJSON_Duplicate(v, 1)) != 0)
			goto fail;
	}
	if (set_item(a, "created", cJSON_CreateString(ts)) != 0 || !cJSON_AddItemToArray(arts, a))
		goto fail;
	return 0;
fail:
	cJSON_Delete(a);
	return -1;
}

static int apply_location(cJSON *m, const cJSON *ev, const char *ts)
{
	static const char *const fields[] = {"uri", "version_id", "etag", "kms_key", "uploaded"};
	const char *name = str_field(ev, "name");
	cJSON *a = name ? find_artifact(m, name, NULL) : NULL;

	if (!a)
		return 1;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(a, fields[i]);
	for (size_t i = 0; i < 4; i++) {
		const char *v = str_field(ev, fields[i]);
		if (v && set_item(a, fields[i], cJSON_CreateString(v)) != 0)
			return -1;
	}
	return set_item(a, "uploaded", cJSON_CreateString(ts));
}

/* 0 applied, 1 not applicable (unknown or informational), -1 out of memory. */
static int apply_event(cJSON *m, const cJSON *ev)
{
	const char *type = str_field(ev, "event");
	const char *ts = str_field(ev, "ts");

	if (!type || !ts)
		return 1;
	if (strcmp(type, "run-start") == 0)
		return apply_run_start(m, ev, ts);
	if (strcmp(type, "step-begin") == 0)
		return apply_step_begin(m, ev, ts);
	if (strcmp(type, "step-end") == 0)
		return apply_step_end(m, ev, ts);
	if (strcmp(type, "record") == 0)
		return apply_record(m, ev);
	if (strcmp(type, "artifact") == 0)
		return apply_artifact(m, ev, ts);
	if (strcmp(type, "artifact-location") == 0)
		return apply_location(m, ev, ts);
	return 1;
}

/* ------------------------------------------------------------------ */
/* Journal and manifest files.                                         */

static cJSON *new_event(const char *type)
{
	char ts[TS_LEN];
	cJSON *ev = cJSON_CreateObject();

	now_iso(ts);
	if (!ev || !cJSON_AddStringToObject(ev, "ts", ts) || !cJSON_AddStringToObject(ev, "event", type)) {
		cJSON_Delete(ev);
		return NULL;
	}
	return ev;
}

/* Append ev as one line; fdatasync'ed before returning when `sync` (see
 * the top of the file for which lines are). */
static int journal_append(struct irfw_case *c, const cJSON *ev, bool sync)
{
	struct stat st;
	char *line = cJSON_PrintUnformatted(ev);
	char *buf = NULL;
	size_t len;
	int rc = -1;

	if (!line) {
		set_err(c, "journal %s: out of memory", c->journal_path);
		return -1;
	}
	if (sync && sync_names(c) != 0) {
		free(line);
		return -1;
	}
	len = strlen(line);
	buf = malloc(len + 1);
	if (!buf) {
		set_err(c, "journal %s: out of memory", c->journal_path);
		goto out;
	}
	memcpy(buf, line, len);
	buf[len] = '\n';
	if (fstat(c->journal_fd, &st) != 0) {
		sys_err(c, "stat", c->journal_path, errno);
		goto out;
	}
	/* fdatasync: the size that makes the line readable is flushed with it
	 * (and with it every line written before), the modification time need
	 * not be. */
	if (write_all(c->journal_fd, buf, len + 1) != 0 || (sync && fdatasync(c->journal_fd) != 0)) {
		int e = errno;
		/* Take back a torn line so the journal stays one object a line. */
		if (ftruncate(c->journal_fd, st.st_size) != 0) {
			/* the open-time tail repair copes with what is left */
		}
		sys_err(c, "append to", c->journal_path, e);
		goto out;
	}
	c->journal_bytes = st.st_size + (off_t)len + 1;
	c->journal_unsynced = !sync;
	/* The next line carries this one's hash: the bytes as written, without
	 * the newline. */
	if (sha256_hex(line, len, c->head) != 0) {
		c->poisoned = true;
		set_err(c, "journal %s: SHA-256 failed", c->journal_path);
		goto out;
	}
	c->lines++;
	if (c->chained_from == 0)
		c->chained_from = c->lines;
	rc = 0;
out:
	free(buf);
	cJSON_free(line);
	return rc;
}

/* Write path atomically, not durably (see the top of the file): temp file
 * in the same folder, rename. */
static int write_atomic(struct irfw_case *c, const char *path, const char *data, size_t len)
{
	char *tmp = path_join(c->dir, ".manifest.json.XXXXXX");
	int fd = -1, rc = -1;

	if (!tmp) {
		set_err(c, "write %s: out of memory", path);
		return -1;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		sys_err(c, "create", tmp, errno);
		goto out;
	}
	if (write_all(fd, data, len) != 0) {
		sys_err(c, "write", tmp, errno);
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		sys_err(c, "write", tmp, errno);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		sys_err(c, "rename to", path, errno);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		(void)unlink(tmp);
	free(tmp);
	return rc;
}

/* The manifest's own account of the journal it reflects, after each line. */
static pthread_mutex_t thaw_lock = PTHREAD_MUTEX_INITIALIZER;

/* The manifest tree, parsed back from the text last written if it was
 * dropped (NULL: out of memory; the caller fails as for any allocation).
 * A const object may change here: the tree is a cache of the text.  Under
 * a lock: readers of one record may be on several threads (the prepares of
 * different steps, each asking whether it ran before). */
static cJSON *man(const struct irfw_case *c)
{
	struct irfw_case *mc = (struct irfw_case *)c;
	pthread_mutex_lock(&thaw_lock);
	if (!mc->manifest && mc->cold) {
		mc->manifest = cJSON_Parse(mc->cold);
		if (mc->manifest) {
			free(mc->cold);
			mc->cold = NULL;
		}
	}
	cJSON *m = mc->manifest;
	pthread_mutex_unlock(&thaw_lock);
	return m;
}

static int manifest_stamp(struct irfw_case *c)
{
	char ts[TS_LEN];

	now_iso(ts);
	cJSON *m = man(c);
	if (!m || set_item(m, "updated", cJSON_CreateString(ts)) != 0 ||
	    set_item(m, "journal_bytes", cJSON_CreateNumber((double)c->journal_bytes)) != 0 ||
	    set_item(m, "journal_lines", cJSON_CreateNumber((double)c->lines)) != 0 ||
	    set_item(m, "journal_head", cJSON_CreateString(c->head)) != 0 ||
	    (c->chained_from > 1 &&
	     set_item(m, "journal_chained_from", cJSON_CreateNumber((double)c->chained_from)) != 0)) {
		set_err(c, "write %s: out of memory", c->manifest_path);
		return -1;
	}
	return 0;
}

/* Between steps, the tree gives way to its text (printed as the file
 * will be): a fleet's records are all open while their instances wait for
 * their next phase.  0, or -1 (out of memory: the tree stays). */
static int manifest_chill(struct irfw_case *c)
{
	if (!c->manifest || c->poisoned)
		return 0;
	char *text = cJSON_Print(c->manifest);
	size_t len = text ? strlen(text) : 0;
	char *buf = text ? malloc(len + 2) : NULL;
	if (buf) {
		memcpy(buf, text, len);
		memcpy(buf + len, "\n", 2);
		free(c->cold);
		c->cold = buf;
		cJSON_Delete(c->manifest);
		c->manifest = NULL;
	}
	cJSON_free(text);
	return 0;
}

static int manifest_save(struct irfw_case *c)
{
	char *text, *buf;
	size_t len;
	int rc;

	if (!c->manifest && c->cold) {
		/* The tree gave way to its text, which is current. */
		rc = write_atomic(c, c->manifest_path, c->cold, strlen(c->cold));
		if (rc == 0)
			c->manifest_unsynced = true;
		return rc;
	}
	text = cJSON_Print(c->manifest);
	len = text ? strlen(text) : 0;
	buf = text ? malloc(len + 2) : NULL;
	if (!buf) {
		cJSON_free(text);
		set_err(c, "write %s: out of memory", c->manifest_path);
		return -1;
	}
	memcpy(buf, text, len);
	memcpy(buf + len, "\n", 2);
	cJSON_free(text);
	rc = write_atomic(c, c->manifest_path, buf, len + 1);
	if (rc == 0)
		c->manifest_unsynced = true;
	/* The tree stays: a step may hold values irfw_record_get() gave it
	 * (irfw_manifest_path() flushes in the middle of a step).  It gives
	 * way to its text only between steps (irfw_case_chill). */
	free(buf);
	return rc;
}

/* Keep the artifact path cache in step with the (append-only) array. */
static int paths_sync(struct irfw_case *c)
{
	const cJSON *arts = cJSON_GetObjectItemCaseSensitive(man(c), "artifacts");
	size_t n = (size_t)cJSON_GetArraySize(arts);
	char **p;

	if (n <= c->npaths)
		return 0;
	p = realloc(c->paths, n * sizeof(*p));
	if (!p)
		return -1;
	c->paths = p;
	while (c->npaths < n) {
		const char *name = str_field(cJSON_GetArrayItem(arts, (int)c->npaths), "name");
		/* A manifest edited by hand may hold a name that escapes the
		 * folder; such an entry gets no path. */
		p[c->npaths] = name && artifact_name_ok(name) ? path_join(c->dir, name) : NULL;
		c->npaths++;
	}
	return 0;
}

/* Journal ev (synced when `sync`, see the top of the file) and apply it.
 * manifest.json is rewritten after a recovery, when asked for
 * (irfw_case_flush) and on close: between those the journal alone holds
 * the latest lines, which is all opening needs.  Consumes ev. */
static int commit_ex(struct irfw_case *c, cJSON *ev, bool sync)
{
	int rc = -1;

	if (!ev) {
		set_err(c, "%s: out of memory", c->journal_path);
		return -1;
	}
	if (c->poisoned) {
		set_err(c, "%s: case record is inconsistent after an earlier error; reopen it", c->dir);
		goto out;
	}
	/* Chain the line to the one before it (or to the genesis). */
	cJSON_DeleteItemFromObjectCaseSensitive(ev, "prev");
	if (!cJSON_AddStringToObject(ev, "prev", c->head)) {
		set_err(c, "%s: out of memory", c->journal_path);
		goto out;
	}
	const char *type = str_field(ev, "event");
	if (journal_append(c, ev, sync) != 0)
		goto out;
	/* Set first: even a poisoned record is flushed on close, which syncs
	 * the line. */
	c->manifest_dirty = true;
	if (!man(c) || apply_event(c->manifest, ev) < 0 || paths_sync(c) != 0 || manifest_stamp(c) != 0) {
		/* The journal has it and the saved manifest predates it, so a
		 * reopen replays it; this object must not write on top. */
		c->poisoned = true;
		set_err(c, "%s: out of memory applying a journaled change", c->manifest_path);
		goto out;
	}
	rc = type && strcmp(type, "recovered") == 0 ? irfw_case_flush(c) : 0;
out:
	cJSON_Delete(ev);
	return rc;
}

/* Every line but an announcing record is written unsynced. */
static int commit(struct irfw_case *c, cJSON *ev)
{
	return commit_ex(c, ev, false);
}

static int flush_now(struct irfw_case *c)
{
	if (c->journal_unsynced && c->journal_fd >= 0) {
		if (sync_names(c) != 0)
			return -1;
		if (fdatasync(c->journal_fd) != 0) {
			sys_err(c, "sync", c->journal_path, errno);
			return -1;
		}
		c->journal_unsynced = false;
	}
	if (!c->manifest_dirty)
		return 0;
	if (c->poisoned) {
		set_err(c, "%s: case record is inconsistent after an earlier error; reopen it", c->dir);
		return -1;
	}
	if (manifest_save(c) != 0)
		return -1;
	c->manifest_dirty = false;
	return 0;
}

void irfw_case_chill(struct irfw_case *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&thaw_lock);
	(void)manifest_chill(c);
	pthread_mutex_unlock(&thaw_lock);
}

/* Make every line written durable, then bring manifest.json up to date:
 * the file never shows a line a crash of the machine could still take
 * back from the journal.  A failure is said here, for closing ignores it
 * (the journal has every line; the next open replays them) and it is the
 * only word that manifest.json is behind (a full evidence disk). */
int irfw_case_flush(struct irfw_case *c)
{
	if (!c)
		return -1;
	if (flush_now(c) == 0)
		return 0;
	irfw_logf(IRFW_LOG_WARN, c->instance_id, "case record: %s", c->err);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Opening.                                                            */

static int mkdir_p(struct irfw_case *c, const char *path)
{
	char *p = xstrdup(path);
	int rc = -1;

	if (!p) {
		set_err(c, "mkdir %s: out of memory", path);
		return -1;
	}
	for (char *s = p + 1;; s++) {
		bool end = *s == '\0';
		struct stat st;

		if (*s != '/' && !end)
			continue;
		*s = '\0';
		if (mkdir(p, 0700) == 0) {
			fsync_parent(p);
		} else {
			int e = errno;
			if (stat(p, &st) != 0) {
				sys_err(c, "mkdir", p, e);
				goto out;
			}
			if (!S_ISDIR(st.st_mode)) {
				sys_err(c, "mkdir", p, ENOTDIR);
				goto out;
			}
		}
		if (end)
			break;
		*s = '/';
	}
	rc = 0;
out:
	free(p);
	return rc;
}

/* A crash may leave a torn last line; end it so the next line parses. */
static int journal_fix_tail(struct irfw_case *c)
{
	struct stat st;
	char last;

	if (fstat(c->journal_fd, &st) != 0) {
		sys_err(c, "stat", c->journal_path, errno);
		return -1;
	}
	if (st.st_size == 0)
		return 0;
	if (pread(c->journal_fd, &last, 1, st.st_size - 1) != 1) {
		sys_err(c, "read", c->journal_path, errno);
		return -1;
	}
	if (last != '\n' && (write_all(c->journal_fd, "\n", 1) != 0 || fsync(c->journal_fd) != 0)) {
		sys_err(c, "append to", c->journal_path, errno);
		return -1;
	}
	return 0;
}

static int read_file(struct irfw_case *c, const char *path, char **out, size_t *outlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		sys_err(c, "stat", path, errno);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		set_err(c, "read %s: out of memory", path);
		goto fail;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sys_err(c, "read", path, errno);
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;
fail:
	free(buf);
	close(fd);
	errno = 0;
	return -1;
}

static cJSON *manifest_skeleton(const struct irfw_case *c)
{
	char ts[TS_LEN];
	cJSON *m = cJSON_CreateObject();

	now_iso(ts);
	if (!m || !cJSON_AddStringToObject(m, "format", IRFW_CASE_FORMAT) ||
	    !cJSON_AddStringToObject(m, "case_id", c->case_id) ||
	    !cJSON_AddStringToObject(m, "instance_id", c->instance_id) ||
	    !cJSON_AddStringToObject(m, "created", ts) || !cJSON_AddStringToObject(m, "updated", ts) ||
	    !cJSON_AddNumberToObject(m, "journal_bytes", 0) || !cJSON_AddArrayToObject(m, "runs") ||
	    !cJSON_AddObjectToObject(m, "steps") || !cJSON_AddArrayToObject(m, "artifacts")) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

/* Why m is not a manifest of this instance, or NULL if it is one. */
static const char *manifest_invalid(const struct irfw_case *c, const cJSON *m)
{
	const char *f = str_field(m, "format");
	const char *cid = str_field(m, "case_id");
	const char *iid = str_field(m, "instance_id");
	const cJSON *jb = cJSON_GetObjectItemCaseSensitive(m, "journal_bytes");
	const cJSON *it;

	if (!cJSON_IsObject(m))
		return "not a JSON object";
	if (!f || strcmp(f, IRFW_CASE_FORMAT) != 0)
		return "unknown format";
	if (!cid || strcmp(cid, c->case_id) != 0 || !iid || strcmp(iid, c->instance_id) != 0)
		return "case_id or instance_id differs from its folder";
	if (!cJSON_IsNumber(jb) || jb->valuedouble < 0)
		return "no journal_bytes";
	if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(m, "runs")) ||
	    !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, "steps")) ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(m, "artifacts")))
		return "runs, steps or artifacts missing";
	/* apply_event() relies on these shapes. */
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(m, "steps"))
	{
		if (!cJSON_IsObject(it))
			return "a step entry is not an object";
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(m, "artifacts"))
	{
		if (!str_field(it, "name") || !str_field(it, "sha256"))
			return "an artifact entry has no name or sha256";
	}
	return NULL;
}

/* Keep a corrupt manifest for whoever investigates; a leading dot keeps the
 * name out of the artifact namespace. */
static int move_aside(struct irfw_case *c, char **moved_to)
{
	char stamp[TS_LEN], name[96];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 0; i < SUFFIX_MAX; i++) {
		char *path;
		struct stat st;

		if (i == 0)
			snprintf(name, sizeof(name), ".manifest.json.corrupt-%s", stamp);
		else
			snprintf(name, sizeof(name), ".manifest.json.corrupt-%s.%d", stamp, i);
		path = path_join(c->dir, name);
		if (!path)
			break;
		if (lstat(path, &st) == 0) {
			free(path);
			continue;
		}
		if (rename(c->manifest_path, path) != 0) {
			sys_err(c, "rename to", path, errno);
			free(path);
			return -1;
		}
		free(path);
		(void)fsync(c->dir_fd);
		*moved_to = xstrdup(name);
		return 0;
	}
	set_err(c, "%s: cannot move the corrupt manifest aside", c->manifest_path);
	return -1;
}

void irfw_case_genesis(const char *case_id, const char *instance_id, char out[65])
{
	char *g = irfw_case_genesis_text(case_id, instance_id);

	if (!g || sha256_hex(g, strlen(g), out) != 0)
		out[0] = '\0';
	free(g);
}

char *irfw_case_genesis_text(const char *case_id, const char *instance_id)
{
	const char *pre = "irfw-journal-genesis ";
	size_t n = strlen(pre) + strlen(case_id) + 1 + strlen(instance_id) + 1;
	char *g = malloc(n);

	if (g)
		snprintf(g, n, "%s%s/%s", pre, case_id, instance_id);
	return g;
}

/* The chain's state at the end of the journal: its last line's hash (the
 * next line's "prev"), how many lines there are, and where the chain began
 * (a journal of an older irfw has lines without "prev": the chain starts
 * at the first new line). */
static int journal_scan(struct irfw_case *c)
{
	FILE *f = fopen(c->journal_path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	irfw_case_genesis(c->case_id, c->instance_id, c->head);
	c->lines = 0;
	c->chained_from = 0;
	if (!f) {
		sys_err(c, "open", c->journal_path, errno);
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		size_t len = (size_t)n;
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		c->lines++;
		if (c->chained_from == 0) {
			cJSON *ev = parse_strict(line, len);
			if (str_field(ev, "prev"))
				c->chained_from = c->lines;
			cJSON_Delete(ev);
		}
		if (sha256_hex(line, len, c->head) != 0) {
			set_err(c, "%s: SHA-256 failed", c->journal_path);
			free(line);
			fclose(f);
			return -1;
		}
	}
	free(line);
	fclose(f);
	return 0;
}

struct replay_stats {
	int events;
	int skipped;
};

/* Apply the journal from byte `from` to its end onto m. */
static int replay(struct irfw_case *c, cJSON *m, off_t from, struct replay_stats *rs)
{
	FILE *f = fopen(c->journal_path, "re");
	char *line = NULL;
	size_t cap = 0;
	off_t pos = from;
	ssize_t n;
	int rc = -1;

	if (!f) {
		sys_err(c, "open", c->journal_path, errno);
		return -1;
	}
	if (fseeko(f, from, SEEK_SET) != 0) {
		sys_err(c, "seek", c->journal_path, errno);
		goto out;
	}
	errno = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		cJSON *ev;
		size_t len = (size_t)n;
		int r;

		if (line[len - 1] != '\n')
			break; /* torn tail: journal_fix_tail ends it before replay */
		pos += n;
		line[--len] = '\0';
		if (len == 0)
			continue;
		ev = parse_strict(line, len);
		if (!ev) {
			rs->skipped++;
			continue;
		}
		r = apply_event(m, ev);
		cJSON_Delete(ev);
		if (r < 0) {
			set_err(c, "replay %s: out of memory", c->journal_path);
			goto out;
		}
		if (r == 0)
			rs->events++;
	}
	if (ferror(f)) {
		sys_err(c, "read", c->journal_path, errno ? errno : EIO);
		goto out;
	}
	c->journal_bytes = pos;
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}

/* Load manifest.json, replay what it lacks, or rebuild it from the journal. */
static int load_state(struct irfw_case *c)
{
	struct replay_stats rs = {0, 0};
	struct stat st;
	const char *reason = NULL;
	char *text = NULL, *moved_to = NULL;
	size_t len = 0;
	cJSON *m = NULL, *ev;
	off_t from = 0;
	int rc = -1;

	if (fstat(c->journal_fd, &st) != 0) {
		sys_err(c, "stat", c->journal_path, errno);
		return -1;
	}
	if (read_file(c, c->manifest_path, &text, &len) != 0) {
		if (errno != ENOENT) {
			/* Unreadable is not missing: do not build over it. */
			if (errno != 0)
				sys_err(c, "open", c->manifest_path, errno);
			return -1;
		}
		reason = st.st_size > 0 ? "manifest missing" : NULL;
	} else {
		m = parse_strict(text, len);
		reason = m ? manifest_invalid(c, m) : "manifest is not valid JSON";
		if (reason) {
			cJSON_Delete(m);
			m = NULL;
			if (move_aside(c, &moved_to) != 0)
				goto out;
		} else {
			double jb = cJSON_GetObjectItemCaseSensitive(m, "journal_bytes")->valuedouble;

			if (jb > (double)st.st_size) {
				/* The journal lost lines the manifest reflects: keep the
				 * manifest, and note the mismatch below. */
				reason = "journal shorter than manifest says";
				from = st.st_size;
			} else {
				from = (off_t)jb;
				if (from < st.st_size)
					reason = "manifest behind journal";
			}
		}
	}
	if (!m) {
		m = manifest_skeleton(c);
		if (!m) {
			set_err(c, "%s: out of memory", c->manifest_path);
			goto out;
		}
	}
	if (replay(c, m, from, &rs) != 0)
		goto out;
	c->manifest = m;
	m = NULL;
	if (paths_sync(c) != 0) {
		set_err(c, "%s: out of memory", c->manifest_path);
		goto out;
	}
	if (reason) {
		ev = new_event("recovered");
		if (ev && (!cJSON_AddStringToObject(ev, "reason", reason) ||
		           (moved_to && !cJSON_AddStringToObject(ev, "moved_to", moved_to)) ||
		           !cJSON_AddNumberToObject(ev, "replayed_from", (double)from) ||
		           !cJSON_AddNumberToObject(ev, "events", rs.events) ||
		           !cJSON_AddNumberToObject(ev, "skipped_lines", rs.skipped))) {
			cJSON_Delete(ev);
			ev = NULL;
		}
		if (commit(c, ev) != 0)
			goto out;
	}
	rc = 0;
out:
	cJSON_Delete(m);
	free(text);
	free(moved_to);
	return rc;
}

bool irfw_case_id_valid(const char *c)
{
	bool ok = c && *c && strlen(c) <= 128 && strcmp(c, ".") != 0 && strcmp(c, "..") != 0;
	for (; ok && *c; c++)
		ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		     strchr("._-:", *c);
	return ok;
}

int irfw_case_open(const char *evidence_dir, const char *case_id, const char *instance_id,
                   const cJSON *run_info, struct irfw_case **out, char *err, size_t errlen)
{
	struct irfw_case *c = calloc(1, sizeof(*c));
	char *case_dir = NULL;
	cJSON *ev;
	int rc = -1;

	if (out)
		*out = NULL;
	if (!c) {
		if (err && errlen)
			snprintf(err, errlen, "case record: out of memory");
		return -1;
	}
	c->dir_fd = c->journal_fd = -1;
	if (!out || !evidence_dir || !*evidence_dir) {
		set_err(c, "case record: no evidence folder given");
		goto out;
	}
	if (!id_ok(case_id) || !id_ok(instance_id)) {
		set_err(c, "case record: case id and instance id must be non-empty and have no "
		           "'/', '..' or control characters");
		goto out;
	}
	c->case_id = xstrdup(case_id);
	c->instance_id = xstrdup(instance_id);
	case_dir = path_join(evidence_dir, case_id);
	c->dir = case_dir ? path_join(case_dir, instance_id) : NULL;
	c->manifest_path = c->dir ? path_join(c->dir, "manifest.json") : NULL;
	c->journal_path = c->dir ? path_join(c->dir, "journal.jsonl") : NULL;
	if (!c->case_id || !c->instance_id || !c->manifest_path || !c->journal_path) {
		set_err(c, "case record: out of memory");
		goto out;
	}
	if (mkdir_p(c, c->dir) != 0)
		goto out;
	c->dir_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dir_fd < 0) {
		sys_err(c, "open", c->dir, errno);
		goto out;
	}
	c->journal_fd = open(c->journal_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (c->journal_fd < 0) {
		sys_err(c, "open", c->journal_path, errno);
		goto out;
	}
	/* Two writers would interleave journals and race on the manifest. */
	if (flock(c->journal_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			set_err(c, "%s: case instance is open in another process or handle", c->journal_path);
		else
			sys_err(c, "lock", c->journal_path, errno);
		goto out;
	}
	/* The journal's entry: synced with the first synced line. */
	c->names_unsynced = true;
	if (journal_fix_tail(c) != 0 || journal_scan(c) != 0 || load_state(c) != 0)
		goto out;

	ev = new_event("run-start");
	if (ev && (!cJSON_AddStringToObject(ev, "case_id", case_id) ||
	           !cJSON_AddStringToObject(ev, "instance_id", instance_id) ||
	           !cJSON_AddItemToObject(ev, "run",
	                                  cJSON_IsObject(run_info) ? cJSON_Duplicate(run_info, 1)
	                                                           : cJSON_CreateObject()))) {
		cJSON_Delete(ev);
		ev = NULL;
	}
	if (commit(c, ev) != 0)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	if (c && err && errlen)
		snprintf(err, errlen, "%s", c->err);
	irfw_case_close(c);
	free(case_dir);
	return rc;
}

void irfw_case_close(struct irfw_case *c)
{
	if (!c)
		return;
	if (c->manifest_dirty && c->journal_fd >= 0)
		(void)irfw_case_flush(c); /* on failure, the next open replays the journal */
	if (c->manifest_unsynced) {
		/* Best effort: the journal is durable, and a manifest a machine
		 * crash lost is rebuilt from it on the next open. */
		int fd = open(c->manifest_path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	}
	if ((c->manifest_unsynced || c->names_unsynced) && c->dir_fd >= 0)
		(void)fsync(c->dir_fd);
	if (c->journal_fd >= 0)
		close(c->journal_fd); /* releases the flock */
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	for (size_t i = 0; i < c->npaths; i++)
		free(c->paths[i]);
	free(c->paths);
	cJSON_Delete(c->manifest);
	free(c->cold);
	free(c->dir);
	free(c->manifest_path);
	free(c->journal_path);
	free(c->case_id);
	free(c->instance_id);
	free(c);
}

const char *irfw_case_error(const struct irfw_case *c)
{
	return c ? c->err : "case record: no case";
}

const char *irfw_case_dir(const struct irfw_case *c)
{
	return c ? c->dir : NULL;
}

const char *irfw_case_manifest_path(const struct irfw_case *c)
{
	return c ? c->manifest_path : NULL;
}

const char *irfw_case_journal_path(const struct irfw_case *c)
{
	return c ? c->journal_path : NULL;
}

const cJSON *irfw_case_manifest(const struct irfw_case *c)
{
	return c ? man(c) : NULL;
}

/* ------------------------------------------------------------------ */
/* Steps and records.                                                  */

int irfw_case_step_begin(struct irfw_case *c, const char *step, const char *plugin)
{
	cJSON *ev;

	if (!c)
		return -1;
	if (!step || !*step) {
		set_err(c, "%s: step name missing", c->dir);
		return -1;
	}
	ev = new_event("step-begin");
	if (ev && (!cJSON_AddStringToObject(ev, "step", step) ||
	           !cJSON_AddItemToObject(ev, "plugin", string_or_null(plugin)))) {
		cJSON_Delete(ev);
		ev = NULL;
	}
	return commit(c, ev);
}

int irfw_case_step_end(struct irfw_case *c, const char *step, const char *status, const char *detail,
                       const char *aws_error, const cJSON *request_ids, long ms)
{
	const cJSON *id;
	cJSON *ev;

	if (!c)
		return -1;
	if (!step || !*step) {
		set_err(c, "%s: step name missing", c->dir);
		return -1;
	}
	if (!status_ok(status)) {
		set_err(c, "%s: step %s: status must be ok, skipped or failed", c->dir, step);
		return -1;
	}
	if (request_ids && !cJSON_IsArray(request_ids)) {
		set_err(c, "%s: step %s: request_ids must be an array of strings", c->dir, step);
		return -1;
	}
	cJSON_ArrayForEach(id, request_ids)
	{
		if (!cJSON_IsString(id)) {
			set_err(c, "%s: step %s: request_ids must be an array of strings", c->dir, step);
			return -1;
		}
	}
	ev = new_event("step-end");
	if (ev &&
	    (!cJSON_AddStringToObject(ev, "step", step) || !cJSON_AddStringToObject(ev, "status", status) ||
	     !cJSON_AddItemToObject(ev, "detail", string_or_null(detail)) ||
	     !cJSON_AddItemToObject(ev, "aws_error", string_or_null(aws_error)) ||
	     !cJSON_AddItemToObject(ev, "request_ids",
	                            request_ids ? cJSON_Duplicate(request_ids, 1) : cJSON_CreateArray()) ||
	     !cJSON_AddItemToObject(ev, "ms",
	                            ms >= 0 ? cJSON_CreateNumber((double)ms) : cJSON_CreateNull()))) {
		cJSON_Delete(ev);
		ev = NULL;
	}
	return commit(c, ev);
}

static const cJSON *step_get(const struct irfw_case *c, const char *step)
{
	if (!c || !step)
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(man(c), "steps"), step);
}

bool irfw_case_step_done(const struct irfw_case *c, const char *step)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(step_get(c, step), "done"));
}

bool irfw_case_step_released(const struct irfw_case *c, const char *step)
{
	char rel[256];
	if (snprintf(rel, sizeof(rel), "release:%s", step) >= (int)sizeof(rel))
		return false;
	const cJSON *r = step_get(c, rel), *s = step_get(c, step);
	const char *rs = str_field(r, "status"), *rf = str_field(r, "finished"),
	           *sf = str_field(s, "finished");
	return rs && strcmp(rs, "ok") == 0 && rf && (!sf || strcmp(rf, sf) >= 0);
}

const char *irfw_case_step_status(const struct irfw_case *c, const char *step)
{
	return str_field(step_get(c, step), "status");
}

static int record(struct irfw_case *c, const char *step, const char *key, cJSON *value, bool sync)
{
	cJSON *ev;

	if (!c) {
		cJSON_Delete(value);
		return -1;
	}
	if (!step || !*step || !key || !*key) {
		set_err(c, "%s: record needs a step and a key", c->dir);
		cJSON_Delete(value);
		return -1;
	}
	if (!value)
		value = cJSON_CreateNull();
	ev = new_event("record");
	if (!ev || !cJSON_AddStringToObject(ev, "step", step) || !cJSON_AddStringToObject(ev, "key", key)) {
		cJSON_Delete(value);
		cJSON_Delete(ev);
		return commit(c, NULL);
	}
	/* cJSON leaves value with us when adding fails. */
	if (!value || !cJSON_AddItemToObject(ev, "value", value)) {
		cJSON_Delete(value);
		cJSON_Delete(ev);
		return commit(c, NULL);
	}
	return commit_ex(c, ev, sync);
}

int irfw_case_record(struct irfw_case *c, const char *step, const char *key, cJSON *value)
{
	return record(c, step, key, value, true);
}

int irfw_case_record_result(struct irfw_case *c, const char *step, const char *key, cJSON *value)
{
	return record(c, step, key, value, false);
}

const cJSON *irfw_case_record_get(const struct irfw_case *c, const char *step, const char *key)
{
	if (!key)
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(step_get(c, step), "records"), key);
}

/* ------------------------------------------------------------------ */
/* Artifacts.                                                          */

struct source {
	const unsigned char *data; /* in-memory content, or */
	size_t len;
	int fd; /* a file to stream from, when >= 0 */
	const char *path;
};

/* Copy src into a new temp file in the folder, hashing it on the way. */
static int write_temp_hashed(struct irfw_case *c, const struct source *src, char **tmp_out, char hex[65],
                             uint64_t *size)
{
	static const char digits[] = "0123456789abcdef";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[EVP_MAX_MD_SIZE], *chunk = NULL;
	unsigned int dlen = 0;
	char *tmp = path_join(c->dir, ".artifact.XXXXXX");
	uint64_t total = 0;
	bool created = false;
	int fd = -1, rc = -1;

	if (!md || !tmp || EVP_DigestInit_ex(md, irfw_sha256_md(), NULL) != 1) {
		set_err(c, "%s: cannot set up SHA-256", c->dir);
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		sys_err(c, "create", tmp, errno);
		goto out;
	}
	created = true;
	if (src->fd < 0) {
		for (size_t off = 0; off < src->len;) {
			size_t n = src->len - off < COPY_CHUNK ? src->len - off : COPY_CHUNK;
			if (EVP_DigestUpdate(md, src->data + off, n) != 1) {
				set_err(c, "%s: SHA-256 failed", tmp);
				goto out;
			}
			if (write_all(fd, src->data + off, n) != 0) {
				sys_err(c, "write", tmp, errno);
				goto out;
			}
			off += n;
		}
		total = src->len;
	} else {
		chunk = malloc(COPY_CHUNK);
		if (!chunk) {
			set_err(c, "%s: out of memory", tmp);
			goto out;
		}
		for (;;) {
			ssize_t n = read(src->fd, chunk, COPY_CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				sys_err(c, "read", src->path, errno);
				goto out;
			}
			if (n == 0)
				break;
			if (EVP_DigestUpdate(md, chunk, (size_t)n) != 1) {
				set_err(c, "%s: SHA-256 failed", tmp);
				goto out;
			}
			if (write_all(fd, chunk, (size_t)n) != 0) {
				sys_err(c, "write", tmp, errno);
				goto out;
			}
			total += (uint64_t)n;
		}
	}
	if (fsync(fd) != 0) {
		sys_err(c, "fsync", tmp, errno);
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		sys_err(c, "write", tmp, errno);
		goto out;
	}
	fd = -1;
	if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32) {
		set_err(c, "%s: SHA-256 failed", tmp);
		goto out;
	}
	for (unsigned int i = 0; i < dlen; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 0xf];
	}
	hex[64] = '\0';
	*size = total;
	*tmp_out = tmp;
	tmp = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp && created)
		(void)unlink(tmp);
	free(tmp);
	free(chunk);
	EVP_MD_CTX_free(md);
	return rc;
}

/* "mem.lime" + 2 -> "mem.2.lime"; "notes" + 2 -> "notes.2". */
static char *suffixed_name(const char *name, int n)
{
	const char *dot = strrchr(name, '.');
	size_t stem = dot ? (size_t)(dot - name) : strlen(name);
	size_t len = strlen(name) + 16;
	char *out = malloc(len);

	if (out)
		snprintf(out, len, "%.*s.%d%s", (int)stem, name, n, dot ? dot : "");
	return out;
}

/* Give the temp file its final name without ever replacing a file.
 * Returns the chosen name, or NULL (error set). */
static char *place_artifact(struct irfw_case *c, const char *tmp, const char *name)
{
	for (int n = 0; n < SUFFIX_MAX; n++) {
		char *cand = n == 0 ? xstrdup(name) : suffixed_name(name, n);
		char *path = cand ? path_join(c->dir, cand) : NULL;
		struct stat st;

		if (!path) {
			free(cand);
			set_err(c, "%s: out of memory", c->dir);
			return NULL;
		}
		if (find_artifact(man(c), cand, NULL) || !artifact_name_ok(cand))
			goto next;
		/* link() fails on an existing name, unlike rename(). */
		if (link(tmp, path) == 0) {
			(void)unlink(tmp);
			free(path);
			return cand;
		}
		if (errno == EEXIST)
			goto next;
		if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != ENOSYS &&
		    errno != EMLINK) {
			sys_err(c, "link to", path, errno);
			free(path);
			free(cand);
			return NULL;
		}
		/* No hard links here: check, then rename (we hold the lock). */
		if (lstat(path, &st) == 0)
			goto next;
		if (rename(tmp, path) != 0) {
			sys_err(c, "rename to", path, errno);
			free(path);
			free(cand);
			return NULL;
		}
		free(path);
		return cand;
	next:
		free(path);
		free(cand);
	}
	set_err(c, "%s: no free name for artifact %s", c->dir, name);
	return NULL;
}

static int artifact_add(struct irfw_case *c, const char *step, const char *name, const char *media_type,
                        const struct source *src)
{
	const cJSON *arts, *a;
	char hex[65];
	char *tmp = NULL, *final = NULL;
	uint64_t size = 0;
	cJSON *ev;
	int rc = -1;

	if (!step || !*step) {
		set_err(c, "%s: artifact %s: step name missing", c->dir, name ? name : "");
		return -1;
	}
	if (!artifact_name_ok(name) || strlen(name) > ARTIFACT_NAME_MAX) {
		set_err(c, "%s: bad artifact name \"%s\": use [A-Za-z0-9._-], not starting with '.'", c->dir,
		        name ? name : "");
		return -1;
	}
	if (c->poisoned) {
		set_err(c, "%s: case record is inconsistent after an earlier error; reopen it", c->dir);
		return -1;
	}
	if (write_temp_hashed(c, src, &tmp, hex, &size) != 0)
		return -1;

	/* The same evidence again (a resumed step): nothing new to keep. */
	arts = cJSON_GetObjectItemCaseSensitive(man(c), "artifacts");
	cJSON_ArrayForEach(a, arts)
	{
		const char *req = str_field(a, "requested_name");
		const char *sha = str_field(a, "sha256");
		if (!req)
			req = str_field(a, "name");
		if (req && sha && strcmp(req, name) == 0 && strcmp(sha, hex) == 0) {
			rc = 0;
			goto out;
		}
	}

	final = place_artifact(c, tmp, name);
	if (!final)
		goto out;
	free(tmp);
	tmp = NULL;
	/* The file is synced; its name is, with the next journal sync. */
	c->names_unsynced = true;
	ev = new_event("artifact");
	if (ev &&
	    (!cJSON_AddStringToObject(ev, "step", step) || !cJSON_AddStringToObject(ev, "name", final) ||
	     (strcmp(final, name) != 0 && !cJSON_AddStringToObject(ev, "requested_name", name)) ||
	     !cJSON_AddStringToObject(ev, "media_type",
	                              media_type ? media_type : "application/octet-stream") ||
	     !cJSON_AddNumberToObject(ev, "size", (double)size) ||
	     !cJSON_AddStringToObject(ev, "sha256", hex))) {
		cJSON_Delete(ev);
		ev = NULL;
	}
	rc = commit(c, ev);
out:
	if (tmp)
		(void)unlink(tmp);
	free(tmp);
	free(final);
	return rc;
}

int irfw_case_artifact_add(struct irfw_case *c, const char *step, const char *name, const char *media_type,
                           const void *data, size_t len)
{
	struct source src = {.data = data, .len = len, .fd = -1, .path = NULL};

	if (!c)
		return -1;
	if (!data && len > 0) {
		set_err(c, "%s: artifact %s: no data", c->dir, name ? name : "");
		return -1;
	}
	return artifact_add(c, step, name, media_type, &src);
}

int irfw_case_artifact_add_file(struct irfw_case *c, const char *step, const char *name,
                                const char *media_type, const char *src_path)
{
	struct source src = {.data = NULL, .len = 0, .fd = -1, .path = src_path};
	int rc;

	if (!c)
		return -1;
	if (!src_path) {
		set_err(c, "%s: artifact %s: no source file", c->dir, name ? name : "");
		return -1;
	}
	src.fd = open(src_path, O_RDONLY | O_CLOEXEC);
	if (src.fd < 0) {
		sys_err(c, "open", src_path, errno);
		return -1;
	}
	rc = artifact_add(c, step, name, media_type, &src);
	close(src.fd);
	return rc;
}

static const cJSON *artifact_at(const struct irfw_case *c, size_t i)
{
	if (!c || i > INT_MAX)
		return NULL;
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(man(c), "artifacts"), (int)i);
}

size_t irfw_case_artifact_count(const struct irfw_case *c)
{
	if (!c)
		return 0;
	return (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(man(c), "artifacts"));
}

const char *irfw_case_artifact_name(const struct irfw_case *c, size_t i)
{
	return str_field(artifact_at(c, i), "name");
}

const char *irfw_case_artifact_path(const struct irfw_case *c, size_t i)
{
	return c && i < c->npaths ? c->paths[i] : NULL;
}

const char *irfw_case_artifact_media_type(const struct irfw_case *c, size_t i)
{
	return str_field(artifact_at(c, i), "media_type");
}

const char *irfw_case_artifact_sha256(const struct irfw_case *c, size_t i)
{
	return str_field(artifact_at(c, i), "sha256");
}

uint64_t irfw_case_artifact_size(const struct irfw_case *c, size_t i)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(artifact_at(c, i), "size");

	/* 2^64: anything larger would be undefined to convert. */
	if (!cJSON_IsNumber(s) || !(s->valuedouble > 0) || s->valuedouble >= 18446744073709551616.0)
		return 0;
	return (uint64_t)s->valuedouble;
}

int irfw_case_artifact_set_location(struct irfw_case *c, size_t i, const char *uri, const char *version_id,
                                    const char *etag, const char *kms_key)
{
	const char *name = irfw_case_artifact_name(c, i);
	cJSON *ev;

	if (!c)
		return -1;
	if (!name) {
		set_err(c, "%s: no artifact %zu", c->dir, i);
		return -1;
	}
	ev = new_event("artifact-location");
	if (ev && (!cJSON_AddStringToObject(ev, "name", name) ||
	           (uri && !cJSON_AddStringToObject(ev, "uri", uri)) ||
	           (version_id && !cJSON_AddStringToObject(ev, "version_id", version_id)) ||
	           (etag && !cJSON_AddStringToObject(ev, "etag", etag)) ||
	           (kms_key && !cJSON_AddStringToObject(ev, "kms_key", kms_key)))) {
		cJSON_Delete(ev);
		ev = NULL;
	}
	return commit(c, ev);
}

/* ------------------------------------------------------------------ */
/* Checking a journal (irfw verify).                                   */

#if defined(__GNUC__)
static void add_problem(cJSON *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif

static void add_problem(cJSON *list, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cJSON_AddItemToArray(list, cJSON_CreateString(buf));
}

int irfw_case_check_journal(const char *journal_path, const char *case_id, const char *instance_id,
                            struct irfw_journal_check *out, char *err, size_t errlen)
{
	struct irfw_case tmp;
	char expected[65];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	memset(out, 0, sizeof(*out));
	memset(&tmp, 0, sizeof(tmp));
	tmp.case_id = (char *)case_id;
	tmp.instance_id = (char *)instance_id;
	out->problems = cJSON_CreateArray();
	out->notes = cJSON_CreateArray();
	out->replayed = manifest_skeleton(&tmp);
	if (!out->problems || !out->notes || !out->replayed) {
		snprintf(err, errlen, "%s: out of memory", journal_path);
		goto fail;
	}
	f = fopen(journal_path, "re");
	if (!f) {
		char buf[128];
		if (strerror_r(errno, buf, sizeof(buf)) != 0)
			snprintf(buf, sizeof(buf), "error %d", errno);
		snprintf(err, errlen, "open %s: %s", journal_path, buf);
		goto fail;
	}
	irfw_case_genesis(case_id, instance_id, expected);
	snprintf(out->head, sizeof(out->head), "%s", expected);
	while ((n = getline(&line, &cap, f)) > 0) {
		size_t len = (size_t)n;
		char(*h)[65];
		const char *prev;
		cJSON *ev;
		long no;

		if (line[len - 1] == '\n')
			line[--len] = '\0';
		else
			add_problem(out->notes, "line %ld does not end with a newline (torn by a crash?)",
			            out->lines + 1);
		h = realloc(out->hashes, (size_t)(out->lines + 1) * sizeof(*h));
		if (!h) {
			fclose(f);
			snprintf(err, errlen, "%s: out of memory", journal_path);
			goto fail;
		}
		out->hashes = h;
		no = ++out->lines;
		if (sha256_hex(line, len, out->hashes[no - 1]) != 0) {
			fclose(f);
			snprintf(err, errlen, "%s: SHA-256 failed", journal_path);
			goto fail;
		}
		ev = len ? parse_strict(line, len) : NULL;
		prev = str_field(ev, "prev");
		if (!ev) {
			out->unparsed++;
			add_problem(out->notes, "line %ld is not a JSON object (a write torn by a crash?)",
			            no);
		}
		if (prev) {
			if (out->chained_from == 0)
				out->chained_from = no;
			if (strcmp(prev, expected) != 0) {
				if (no == 1)
					add_problem(
					    out->problems,
					    "line 1: prev is not the genesis hash of %s/%s (lines removed "
					    "from the start, or another case's journal)",
					    case_id, instance_id);
				else
					add_problem(
					    out->problems,
					    "line %ld: prev does not match the hash of line %ld (line %ld "
					    "edited, or a line removed or inserted there)",
					    no, no - 1, no - 1);
			}
		} else if (ev && out->chained_from != 0) {
			add_problem(
			    out->problems,
			    "line %ld has no prev hash though the chain began at line %ld (inserted or "
			    "edited)",
			    no, out->chained_from);
		} else if (ev) {
			out->legacy++;
		}
		if (ev && apply_event(out->replayed, ev) < 0) {
			cJSON_Delete(ev);
			fclose(f);
			snprintf(err, errlen, "%s: out of memory", journal_path);
			goto fail;
		}
		cJSON_Delete(ev);
		snprintf(expected, sizeof(expected), "%s", out->hashes[no - 1]);
		snprintf(out->head, sizeof(out->head), "%s", expected);
	}
	fclose(f);
	free(line);
	if (out->chained_from > 1)
		add_problem(out->notes,
		            "lines 1-%ld were written by an older irfw without a hash chain: the chain "
		            "starts at line %ld",
		            out->chained_from - 1, out->chained_from);
	else if (out->chained_from == 0 && out->lines > 0)
		add_problem(out->notes, "no line carries a hash chain (a journal of an older irfw)");
	return 0;
fail:
	free(line);
	irfw_journal_check_free(out);
	return -1;
}

void irfw_journal_check_free(struct irfw_journal_check *jc)
{
	if (!jc)
		return;
	free(jc->hashes);
	cJSON_Delete(jc->problems);
	cJSON_Delete(jc->notes);
	cJSON_Delete(jc->replayed);
	memset(jc, 0, sizeof(*jc));
}

const char *irfw_case_journal_head(const struct irfw_case *c)
{
	return c && c->lines > 0 ? c->head : NULL;
}

long irfw_case_journal_lines(const struct irfw_case *c)
{
	return c ? c->lines : 0;
}
