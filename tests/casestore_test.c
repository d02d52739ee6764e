/*
 * casestore_test.c - the case record: folders, journal, manifest, artifacts,
 * resume and recovery.  Every test works in its own mkdtemp folder.
 */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <dirent.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "casestore.h"

#define SHA_ABC       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

struct fx {
	char root[64];
	char ev[128];
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->root, "/tmp/casestore_test.XXXXXX");
	if (!mkdtemp(f->root)) {
		free(f);
		return -1;
	}
	snprintf(f->ev, sizeof(f->ev), "%s/evidence", f->root);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	fclose(fp);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void spit(const char *path, const char *data, const char *mode)
{
	FILE *fp = fopen(path, mode);

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, strlen(data), fp), strlen(data));
	assert_int_equal(fclose(fp), 0);
}

static cJSON *read_json(const char *path)
{
	char *text = slurp(path, NULL);
	cJSON *j;

	assert_non_null(text);
	j = cJSON_Parse(text);
	free(text);
	assert_non_null(j);
	return j;
}

/* manifest.json as a reader of the open record sees it after asking for it
 * (it is rewritten at each step's end, on flush and on close). */
static cJSON *read_manifest(struct irfw_case *c)
{
	assert_int_equal(irfw_case_flush(c), 0);
	return read_json(irfw_case_manifest_path(c));
}

/* Every journal line must be one JSON object; returns how many. */
static int journal_lines(const char *path, cJSON **last)
{
	char *text = slurp(path, NULL);
	int n = 0;

	assert_non_null(text);
	if (last)
		*last = NULL;
	for (char *line = text, *nl; *line; line = nl + 1) {
		cJSON *j;

		nl = strchr(line, '\n');
		assert_non_null(nl); /* every line is terminated */
		*nl = '\0';
		j = cJSON_Parse(line);
		if (j) {
			assert_true(cJSON_IsObject(j));
			n++;
			if (last) {
				cJSON_Delete(*last);
				*last = j;
			} else {
				cJSON_Delete(j);
			}
		}
	}
	free(text);
	return n;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void assert_ts(const char *ts)
{
	assert_non_null(ts);
	assert_int_equal(strlen(ts), 24); /* 2024-01-02T03:04:05.678Z */
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[19], '.');
	assert_int_equal(ts[23], 'Z');
}

/* The case store's fsync, counting the folder syncs, and whether one came
 * before the last journal sync (names_before_datasync: a folder sync since
 * the previous fdatasync, when that fdatasync came). */
static int n_dirsync;
static bool dirsync_pending, names_before_datasync;

int fsync(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		n_dirsync++;
		dirsync_pending = true;
	}
	return (int)syscall(SYS_fsync, fd);
}

static void note_datasync(void)
{
	names_before_datasync = dirsync_pending;
	dirsync_pending = false;
}

/* The journal's syncs, counted: this definition takes the place of libc's
 * for the case store linked into the test, and does the real sync.  Each
 * call notes the size of the file it made durable. */
static int n_datasync;
static off_t datasync_size = -1;

int fdatasync(int fd)
{
	struct stat st;

	n_datasync++;
	note_datasync();
	datasync_size = fstat(fd, &st) == 0 ? st.st_size : -1;
	return (int)syscall(SYS_fdatasync, fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static struct irfw_case *open_case(struct fx *f, const char *inst, const char *who)
{
	struct irfw_case *c = NULL;
	char err[512] = "";
	cJSON *run = cJSON_CreateObject();

	cJSON_AddStringToObject(run, "tool", "irfw");
	cJSON_AddStringToObject(run, "caller_arn", who);
	if (irfw_case_open(f->ev, "case-1", inst, run, &c, err, sizeof(err)) != 0)
		fail_msg("open: %s", err);
	cJSON_Delete(run);
	return c;
}

static void test_open_creates_private_folders(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "arn:aws:iam::1:user/a");
	const char *dirs[] = {"", "/case-1", "/case-1/i-0abc"};
	char path[512];
	struct stat st;
	cJSON *m, *last;

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", f->ev, dirs[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0700);
	}
	assert_string_equal(irfw_case_dir(c), path);
	snprintf(path, sizeof(path), "%s/case-1/i-0abc/manifest.json", f->ev);
	assert_string_equal(irfw_case_manifest_path(c), path);

	m = read_manifest(c);
	assert_string_equal(jstr(m, "format"), "irfw-case/1");
	assert_string_equal(jstr(m, "case_id"), "case-1");
	assert_string_equal(jstr(m, "instance_id"), "i-0abc");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "runs")), 1);
	assert_string_equal(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "runs"), 0), "caller_arn"),
	                    "arn:aws:iam::1:user/a");
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(m, "steps")));
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(m, "artifacts")));
	/* pretty-printed */
	{
		char *text = slurp(irfw_case_manifest_path(c), NULL);
		assert_non_null(strchr(text, '\n'));
		free(text);
	}
	cJSON_Delete(m);

	assert_int_equal(journal_lines(irfw_case_journal_path(c), &last), 1);
	assert_string_equal(jstr(last, "event"), "run-start");
	assert_ts(jstr(last, "ts"));
	cJSON_Delete(last);
	irfw_case_close(c);
}

static void test_steps_in_journal_and_manifest(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "me");
	cJSON *last, *m, *s, *ids = cJSON_CreateArray();

	assert_int_equal(irfw_case_step_begin(c, "contain", "quarantine"), 0);
	assert_int_equal(journal_lines(irfw_case_journal_path(c), &last), 2);
	assert_string_equal(jstr(last, "event"), "step-begin");
	assert_string_equal(jstr(last, "step"), "contain");
	assert_string_equal(jstr(last, "plugin"), "quarantine");
	assert_ts(jstr(last, "ts"));
	cJSON_Delete(last);
	assert_string_equal(irfw_case_step_status(c, "contain"), "running");
	assert_false(irfw_case_step_done(c, "contain"));

	cJSON_AddItemToArray(ids, cJSON_CreateString("req-1"));
	cJSON_AddItemToArray(ids, cJSON_CreateString("req-2"));
	assert_int_equal(irfw_case_step_end(c, "contain", "ok", "moved to sg-9", NULL, ids, 42), 0);
	assert_int_equal(journal_lines(irfw_case_journal_path(c), &last), 3);
	assert_string_equal(jstr(last, "event"), "step-end");
	assert_string_equal(jstr(last, "status"), "ok");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(last, "request_ids")), 2);
	assert_int_equal(cJSON_GetObjectItem(last, "ms")->valueint, 42);
	cJSON_Delete(last);

	m = read_manifest(c);
	s = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "steps"), "contain");
	assert_non_null(s);
	assert_string_equal(jstr(s, "status"), "ok");
	assert_string_equal(jstr(s, "plugin"), "quarantine");
	assert_string_equal(jstr(s, "detail"), "moved to sg-9");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(s, "aws_error")));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(s, "done")));
	assert_int_equal(cJSON_GetObjectItem(s, "attempts")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(s, "ms")->valueint, 42);
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "request_ids"), 1)->valuestring,
	                    "req-2");
	assert_ts(jstr(s, "started"));
	assert_ts(jstr(s, "finished"));
	cJSON_Delete(m);

	/* wrong arguments are refused, not recorded */
	assert_int_equal(irfw_case_step_end(c, "contain", "done", NULL, NULL, NULL, 1), -1);
	assert_non_null(strstr(irfw_case_error(c), "status"));
	assert_int_equal(irfw_case_step_end(c, "contain", "ok", NULL, NULL, ids, -1), 0);
	cJSON_AddItemToArray(ids, cJSON_CreateNumber(3));
	assert_int_equal(irfw_case_step_end(c, "contain", "ok", NULL, NULL, ids, 1), -1);
	assert_int_equal(irfw_case_step_begin(c, "", NULL), -1);
	assert_int_equal(journal_lines(irfw_case_journal_path(c), NULL), 4);

	/* steps keep the order they first appeared in */
	assert_int_equal(irfw_case_step_begin(c, "snapshot", "ebs_snapshot"), 0);
	assert_int_equal(irfw_case_step_begin(c, "tag", NULL), 0);
	m = read_manifest(c);
	s = cJSON_GetObjectItem(m, "steps");
	assert_string_equal(cJSON_GetArrayItem(s, 0)->string, "contain");
	assert_string_equal(cJSON_GetArrayItem(s, 1)->string, "snapshot");
	assert_string_equal(cJSON_GetArrayItem(s, 2)->string, "tag");
	cJSON_Delete(m);

	cJSON_Delete(ids);
	irfw_case_close(c);
}

static void test_artifact_sha256(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "me");
	char src[256], *content;
	size_t len;
	struct stat st;
	cJSON *m, *a;
	FILE *fp;

	assert_int_equal(irfw_case_artifact_add(c, "capture", "console.txt", "text/plain", "abc", 3), 0);
	assert_int_equal(irfw_case_artifact_count(c), 1);
	assert_string_equal(irfw_case_artifact_sha256(c, 0), SHA_ABC);
	assert_string_equal(irfw_case_artifact_name(c, 0), "console.txt");
	assert_string_equal(irfw_case_artifact_media_type(c, 0), "text/plain");
	assert_int_equal(irfw_case_artifact_size(c, 0), 3);
	content = slurp(irfw_case_artifact_path(c, 0), &len);
	assert_int_equal(len, 3);
	assert_memory_equal(content, "abc", 3);
	free(content);
	assert_non_null(strstr(irfw_case_artifact_path(c, 0), "/case-1/i-0abc/console.txt"));

	assert_int_equal(irfw_case_artifact_add(c, "capture", "empty", NULL, NULL, 0), 0);
	assert_string_equal(irfw_case_artifact_sha256(c, 1), SHA_EMPTY);
	assert_string_equal(irfw_case_artifact_media_type(c, 1), "application/octet-stream");

	/* streamed from a file, across many chunks */
	snprintf(src, sizeof(src), "%s/million", f->root);
	fp = fopen(src, "wb");
	assert_non_null(fp);
	for (int i = 0; i < 1000000; i++)
		fputc('a', fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(irfw_case_artifact_add_file(c, "capture", "mem.lime", "application/x-lime", src), 0);
	assert_string_equal(irfw_case_artifact_sha256(c, 2), SHA_MILLION_A);
	assert_int_equal(irfw_case_artifact_size(c, 2), 1000000);
	assert_int_equal(stat(irfw_case_artifact_path(c, 2), &st), 0);
	assert_int_equal(st.st_size, 1000000);
	assert_int_equal(irfw_case_artifact_add_file(c, "capture", "x", NULL, "/nonexistent/x"), -1);
	assert_non_null(strstr(irfw_case_error(c), "/nonexistent/x"));

	m = read_manifest(c);
	a = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "artifacts"), 0);
	assert_string_equal(jstr(a, "name"), "console.txt");
	assert_string_equal(jstr(a, "sha256"), SHA_ABC);
	assert_string_equal(jstr(a, "step"), "capture");
	assert_int_equal(cJSON_GetObjectItem(a, "size")->valueint, 3);
	assert_ts(jstr(a, "created"));
	cJSON_Delete(m);

	/* no temp files left behind */
	{
		DIR *d = opendir(irfw_case_dir(c));
		struct dirent *de;
		assert_non_null(d);
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				assert_true(de->d_name[0] != '.');
		closedir(d);
	}
	irfw_case_close(c);
}

static void test_reopen_resumes(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "first");
	cJSON *sgs = cJSON_CreateArray(), *m;
	const cJSON *v;

	cJSON_AddItemToArray(sgs, cJSON_CreateString("sg-1"));
	cJSON_AddItemToArray(sgs, cJSON_CreateString("sg-2"));
	assert_int_equal(irfw_case_step_begin(c, "contain", "quarantine"), 0);
	assert_int_equal(irfw_case_record(c, "contain", "original_groups", sgs), 0);
	assert_int_equal(irfw_case_step_end(c, "contain", "ok", NULL, NULL, NULL, 5), 0);
	assert_int_equal(irfw_case_step_begin(c, "protect", "protect"), 0);
	assert_int_equal(irfw_case_step_end(c, "protect", "failed", "denied", "AccessDenied", NULL, 7), 0);
	assert_int_equal(irfw_case_step_begin(c, "asg", "asg_detach"), 0);
	assert_int_equal(irfw_case_step_end(c, "asg", "skipped", "not in an ASG", NULL, NULL, 1), 0);
	assert_int_equal(irfw_case_artifact_add(c, "capture", "console.txt", "text/plain", "abc", 3), 0);
	irfw_case_close(c);

	c = open_case(f, "i-0abc", "second");
	assert_true(irfw_case_step_done(c, "contain"));
	assert_true(irfw_case_step_done(c, "asg"));
	assert_false(irfw_case_step_done(c, "protect"));
	assert_string_equal(irfw_case_step_status(c, "protect"), "failed");
	assert_false(irfw_case_step_done(c, "never"));
	assert_null(irfw_case_step_status(c, "never"));
	v = irfw_case_record_get(c, "contain", "original_groups");
	assert_non_null(v);
	assert_string_equal(cJSON_GetArrayItem(v, 1)->valuestring, "sg-2");
	assert_null(irfw_case_record_get(c, "contain", "other"));
	assert_null(irfw_case_record_get(c, "protect", "original_groups"));
	assert_int_equal(irfw_case_artifact_count(c), 1);
	assert_string_equal(irfw_case_artifact_sha256(c, 0), SHA_ABC);
	assert_non_null(irfw_case_artifact_path(c, 0));

	m = read_manifest(c);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "runs")), 2);
	assert_string_equal(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "runs"), 1), "caller_arn"),
	                    "second");
	cJSON_Delete(m);

	/* the retry of the failed step counts as a second attempt; a later
	 * failure does not undo an earlier success */
	assert_int_equal(irfw_case_step_begin(c, "protect", "protect"), 0);
	assert_int_equal(irfw_case_step_end(c, "protect", "ok", NULL, NULL, NULL, 3), 0);
	assert_true(irfw_case_step_done(c, "protect"));
	assert_int_equal(irfw_case_step_begin(c, "contain", "quarantine"), 0);
	assert_int_equal(irfw_case_step_end(c, "contain", "failed", NULL, NULL, NULL, 3), 0);
	assert_true(irfw_case_step_done(c, "contain"));
	m = read_manifest(c);
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "steps"), "protect"), "attempts")
	        ->valueint,
	    2);
	cJSON_Delete(m);

	/* a record replaces its earlier value; NULL records null */
	assert_int_equal(irfw_case_record(c, "contain", "original_groups", cJSON_CreateString("x")), 0);
	assert_string_equal(irfw_case_record_get(c, "contain", "original_groups")->valuestring, "x");
	assert_int_equal(irfw_case_record(c, "contain", "nothing", NULL), 0);
	assert_true(cJSON_IsNull(irfw_case_record_get(c, "contain", "nothing")));
	assert_int_equal(irfw_case_record(c, "", "k", cJSON_CreateString("leak?")), -1);
	irfw_case_close(c);
}

static void fill_case(struct fx *f)
{
	struct irfw_case *c = open_case(f, "i-0abc", "first");
	cJSON *ids = cJSON_CreateArray();

	cJSON_AddItemToArray(ids, cJSON_CreateString("r-1"));
	assert_int_equal(irfw_case_step_begin(c, "contain", "quarantine"), 0);
	assert_int_equal(irfw_case_record(c, "contain", "original_groups", cJSON_CreateString("sg-1")), 0);
	assert_int_equal(irfw_case_step_end(c, "contain", "ok", NULL, NULL, ids, 5), 0);
	assert_int_equal(irfw_case_step_begin(c, "protect", NULL), 0);
	assert_int_equal(irfw_case_step_end(c, "protect", "failed", NULL, "AccessDenied", NULL, 1), 0);
	assert_int_equal(irfw_case_artifact_add(c, "capture", "console.txt", "text/plain", "abc", 3), 0);
	assert_int_equal(irfw_case_artifact_set_location(c, 0, "s3://b/k", "v1", "\"e\"", "alias/k"), 0);
	cJSON_Delete(ids);
	irfw_case_close(c);
}

static void check_filled(struct irfw_case *c, int runs)
{
	const cJSON *m = irfw_case_manifest(c);
	const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "artifacts"), 0);
	const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "steps"), "contain");

	assert_true(irfw_case_step_done(c, "contain"));
	assert_false(irfw_case_step_done(c, "protect"));
	assert_string_equal(irfw_case_step_status(c, "protect"), "failed");
	assert_string_equal(irfw_case_record_get(c, "contain", "original_groups")->valuestring, "sg-1");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "request_ids"), 0)->valuestring, "r-1");
	assert_int_equal(irfw_case_artifact_count(c), 1);
	assert_string_equal(irfw_case_artifact_sha256(c, 0), SHA_ABC);
	assert_string_equal(jstr(a, "uri"), "s3://b/k");
	assert_string_equal(jstr(a, "version_id"), "v1");
	assert_string_equal(jstr(a, "kms_key"), "alias/k");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "runs")), runs);
	assert_string_equal(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "runs"), 0), "caller_arn"),
	                    "first");
}

static bool has_file_with_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			found = true;
	closedir(d);
	return found;
}

static void test_rebuild_from_journal(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c;
	char mpath[600], dir[512];
	cJSON *m, *last;

	fill_case(f);
	snprintf(dir, sizeof(dir), "%s/case-1/i-0abc", f->ev);
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", dir);

	spit(mpath, "{ \"format\": \"irfw-case/1\", \"steps\": ", "w");
	c = open_case(f, "i-0abc", "second");
	check_filled(c, 2);
	assert_true(has_file_with_prefix(dir, ".manifest.json.corrupt-"));
	m = read_json(mpath);
	assert_string_equal(jstr(m, "format"), "irfw-case/1");
	cJSON_Delete(m);
	/* the recovery itself is on the record */
	assert_true(journal_lines(irfw_case_journal_path(c), &last) > 0);
	cJSON_Delete(last);
	{
		char *j = slurp(irfw_case_journal_path(c), NULL);
		assert_non_null(strstr(j, "\"event\":\"recovered\""));
		free(j);
	}
	irfw_case_close(c);

	/* valid JSON that is not a manifest, and then no manifest at all */
	spit(mpath, "[1, 2, 3]", "w");
	c = open_case(f, "i-0abc", "third");
	check_filled(c, 3);
	irfw_case_close(c);
	assert_int_equal(unlink(mpath), 0);
	c = open_case(f, "i-0abc", "fourth");
	check_filled(c, 4);
	irfw_case_close(c);

	/* a manifest of the right shape outside but not inside */
	spit(mpath,
	     "{\"format\":\"irfw-case/1\",\"case_id\":\"case-1\",\"instance_id\":"
	     "\"i-0abc\",\"journal_bytes\":0,\"runs\":[],\"steps\":{\"x\":1},"
	     "\"artifacts\":[]}",
	     "w");
	c = open_case(f, "i-0abc", "fifth");
	check_filled(c, 5);
	irfw_case_close(c);

	/* a manifest claiming more journal than there is is kept as it is */
	m = read_json(mpath);
	cJSON_ReplaceItemInObject(m, "journal_bytes", cJSON_CreateNumber(1e300));
	{
		char *text = cJSON_Print(m);
		spit(mpath, text, "w");
		cJSON_free(text);
	}
	cJSON_Delete(m);
	c = open_case(f, "i-0abc", "sixth");
	check_filled(c, 6);
	irfw_case_close(c);
	c = open_case(f, "i-0abc", "seventh");
	check_filled(c, 7);
	irfw_case_close(c);
}

static void test_manifest_behind_journal(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "first");
	char *old;

	assert_int_equal(irfw_case_step_begin(c, "contain", NULL), 0);
	assert_int_equal(irfw_case_step_end(c, "contain", "ok", NULL, NULL, NULL, 1), 0);
	assert_int_equal(irfw_case_flush(c), 0);
	old = slurp(irfw_case_manifest_path(c), NULL);
	assert_non_null(old);
	assert_int_equal(irfw_case_step_begin(c, "snap", NULL), 0);
	assert_int_equal(irfw_case_step_end(c, "snap", "ok", NULL, NULL, NULL, 1), 0);
	assert_int_equal(irfw_case_flush(c), 0);
	/* as if the process died between journal and manifest */
	spit(irfw_case_manifest_path(c), old, "w");
	free(old);
	irfw_case_close(c);

	c = open_case(f, "i-0abc", "second");
	assert_true(irfw_case_step_done(c, "contain"));
	assert_true(irfw_case_step_done(c, "snap"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(irfw_case_manifest(c), "runs")), 2);
	assert_int_equal(
	    cJSON_GetObjectItem(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(irfw_case_manifest(c), "steps"), "contain"),
	        "attempts")
	        ->valueint,
	    1);
	irfw_case_close(c);
}

static void test_torn_journal_tail(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "first");
	char jpath[512];

	snprintf(jpath, sizeof(jpath), "%s", irfw_case_journal_path(c));
	assert_int_equal(irfw_case_step_begin(c, "contain", NULL), 0);
	irfw_case_close(c);
	spit(jpath, "{\"ts\":\"2024-01-01T00:00:00.000Z\",\"event\":\"step-e", "a");

	c = open_case(f, "i-0abc", "second");
	assert_int_equal(irfw_case_step_end(c, "contain", "ok", NULL, NULL, NULL, 1), 0);
	assert_true(irfw_case_step_done(c, "contain"));
	irfw_case_close(c);
	/* run-start, step-begin, run-start, recovered, step-end; torn line kept */
	assert_int_equal(journal_lines(jpath, NULL), 5);

	c = open_case(f, "i-0abc", "third");
	assert_true(irfw_case_step_done(c, "contain"));
	irfw_case_close(c);
}

static void test_bad_names_refused(void **state)
{
	struct fx *f = *state;
	const char *bad_ids[] = {"../x", "a/b", "..", ".", "", "x..y", "a\nb"};
	const char *bad_names[] = {"../x", "a/b", ".hidden", "manifest.json", "journal.jsonl", "", "a b",
	                           "x\n",  "..",  "a:b"};
	struct irfw_case *c = NULL;
	char err[256], path[512];

	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		err[0] = '\0';
		assert_int_equal(irfw_case_open(f->ev, bad_ids[i], "i-1", NULL, &c, err, sizeof(err)), -1);
		assert_null(c);
		assert_true(err[0] != '\0');
		assert_int_equal(irfw_case_open(f->ev, "case-1", bad_ids[i], NULL, &c, err, sizeof(err)), -1);
		assert_null(c);
	}
	snprintf(path, sizeof(path), "%s/x", f->root);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(f->ev, F_OK), -1); /* nothing was created */

	c = open_case(f, "i-0abc", "me");
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		assert_int_equal(irfw_case_artifact_add(c, "s", bad_names[i], NULL, "x", 1), -1);
		assert_non_null(strstr(irfw_case_error(c), "artifact name"));
	}
	assert_int_equal(irfw_case_artifact_add(c, "s", NULL, NULL, "x", 1), -1);
	assert_int_equal(irfw_case_artifact_count(c), 0);
	assert_int_equal(irfw_case_artifact_add(c, "s", "ok_name-1.2.txt", NULL, "x", 1), 0);
	assert_int_equal(irfw_case_artifact_count(c), 1);
	snprintf(path, sizeof(path), "%s/case-1/x", f->ev);
	assert_int_equal(access(path, F_OK), -1);
	irfw_case_close(c);
}

static void test_same_name_keeps_both(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "me");
	char stray[512], *text;
	cJSON *m;

	assert_int_equal(irfw_case_artifact_add(c, "s", "console.txt", "text/plain", "one", 3), 0);
	assert_int_equal(irfw_case_artifact_add(c, "s", "console.txt", "text/plain", "two", 3), 0);
	assert_int_equal(irfw_case_artifact_count(c), 2);
	assert_string_equal(irfw_case_artifact_name(c, 0), "console.txt");
	assert_string_equal(irfw_case_artifact_name(c, 1), "console.1.txt");
	text = slurp(irfw_case_artifact_path(c, 0), NULL);
	assert_string_equal(text, "one");
	free(text);
	text = slurp(irfw_case_artifact_path(c, 1), NULL);
	assert_string_equal(text, "two");
	free(text);
	m = read_manifest(c);
	assert_string_equal(
	    jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "artifacts"), 1), "requested_name"),
	    "console.txt");
	assert_null(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "artifacts"), 0), "requested_name"));
	cJSON_Delete(m);

	/* the same content again is the same evidence: nothing new */
	assert_int_equal(irfw_case_artifact_add(c, "s", "console.txt", "text/plain", "one", 3), 0);
	assert_int_equal(irfw_case_artifact_add(c, "s", "console.txt", "text/plain", "two", 3), 0);
	assert_int_equal(irfw_case_artifact_count(c), 2);
	assert_int_equal(irfw_case_artifact_add(c, "s", "console.txt", "text/plain", "three", 5), 0);
	assert_string_equal(irfw_case_artifact_name(c, 2), "console.2.txt");

	assert_int_equal(irfw_case_artifact_add(c, "s", "notes", NULL, "x", 1), 0);
	assert_int_equal(irfw_case_artifact_add(c, "s", "notes", NULL, "y", 1), 0);
	assert_string_equal(irfw_case_artifact_name(c, 4), "notes.1");

	/* a file nobody recorded (a crash, a person) is not overwritten */
	snprintf(stray, sizeof(stray), "%s/stray.bin", irfw_case_dir(c));
	spit(stray, "precious", "w");
	assert_int_equal(irfw_case_artifact_add(c, "s", "stray.bin", NULL, "new", 3), 0);
	assert_string_equal(irfw_case_artifact_name(c, 5), "stray.1.bin");
	text = slurp(stray, NULL);
	assert_string_equal(text, "precious");
	free(text);
	irfw_case_close(c);
}

static void test_journal_only_grows(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c;
	char jpath[512], *before, *after;
	size_t blen, alen;
	int nbefore;

	fill_case(f);
	snprintf(jpath, sizeof(jpath), "%s/case-1/i-0abc/journal.jsonl", f->ev);
	before = slurp(jpath, &blen);
	nbefore = journal_lines(jpath, NULL);
	assert_true(nbefore >= 8);

	c = open_case(f, "i-0abc", "second");
	assert_int_equal(irfw_case_step_begin(c, "protect", NULL), 0);
	assert_int_equal(irfw_case_step_end(c, "protect", "ok", NULL, NULL, NULL, 1), 0);
	irfw_case_close(c);

	after = slurp(jpath, &alen);
	assert_true(alen > blen);
	assert_memory_equal(before, after, blen);
	assert_int_equal(journal_lines(jpath, NULL), nbefore + 3);
	free(before);
	free(after);
}

static void test_one_writer_per_instance(void **state)
{
	struct fx *f = *state;
	struct irfw_case *a = open_case(f, "i-0abc", "me"), *b = NULL, *other;
	char err[512];

	assert_int_equal(irfw_case_open(f->ev, "case-1", "i-0abc", NULL, &b, err, sizeof(err)), -1);
	assert_null(b);
	assert_non_null(strstr(err, "journal.jsonl"));
	other = open_case(f, "i-0def", "me");
	assert_int_equal(irfw_case_step_begin(other, "contain", NULL), 0);
	irfw_case_close(other);
	irfw_case_close(a);
	b = open_case(f, "i-0abc", "me");
	irfw_case_close(b);
}

static void test_errors_name_path(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = NULL;
	char err[512], moved[512], file[512];

	/* the evidence folder is a file */
	snprintf(file, sizeof(file), "%s/plainfile", f->root);
	spit(file, "x", "w");
	assert_int_equal(irfw_case_open(file, "case-1", "i-1", NULL, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, file));
	assert_non_null(strstr(err, "Not a directory"));

	/* the instance folder vanishes under an open case */
	c = open_case(f, "i-0abc", "me");
	snprintf(moved, sizeof(moved), "%s/moved", f->root);
	assert_int_equal(rename(irfw_case_dir(c), moved), 0);
	assert_int_equal(irfw_case_artifact_add(c, "s", "a.txt", NULL, "abc", 3), -1);
	assert_non_null(strstr(irfw_case_error(c), irfw_case_dir(c)));
	assert_non_null(strstr(irfw_case_error(c), "No such file or directory"));
	assert_int_equal(rename(moved, irfw_case_dir(c)), 0);
	assert_int_equal(irfw_case_artifact_add(c, "s", "a.txt", NULL, "abc", 3), 0);
	assert_int_equal(irfw_case_artifact_set_location(c, 7, "s3://b/k", NULL, NULL, NULL), -1);
	irfw_case_close(c);
	irfw_case_close(NULL);
}

static void test_location_replaced(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "me");
	const cJSON *a;

	assert_int_equal(irfw_case_artifact_add(c, "s", "a.txt", NULL, "abc", 3), 0);
	assert_int_equal(irfw_case_artifact_set_location(c, 0, "s3://b/1", "v1", NULL, "k1"), 0);
	assert_int_equal(irfw_case_artifact_set_location(c, 0, "s3://b/2", "v2", "e2", NULL), 0);
	a = cJSON_GetArrayItem(cJSON_GetObjectItem(irfw_case_manifest(c), "artifacts"), 0);
	assert_string_equal(jstr(a, "uri"), "s3://b/2");
	assert_string_equal(jstr(a, "etag"), "e2");
	assert_null(jstr(a, "kms_key"));
	assert_ts(jstr(a, "uploaded"));
	irfw_case_close(c);
}

/* ------------------------------------------------------------------ */
/* The hash chain.                                                     */

/* A small case: two runs' worth of lines. */
static struct irfw_case *chain_case(struct fx *f)
{
	struct irfw_case *c = NULL;
	char err[256];

	assert_int_equal(irfw_case_open(f->ev, "CASE-1", "i-0abc", NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(irfw_case_step_begin(c, "isolate", "isolate"), 0);
	assert_int_equal(irfw_case_record(c, "isolate", "groups", cJSON_CreateString("sg-1")), 0);
	assert_int_equal(irfw_case_step_end(c, "isolate", "ok", NULL, NULL, NULL, 12), 0);
	assert_int_equal(irfw_case_artifact_add(c, "capture", "notes.txt", "text/plain", "abc", 3), 0);
	return c;
}

static void check_clean(const char *jpath, long lines, const char *head)
{
	struct irfw_journal_check jc;
	char err[256];

	assert_int_equal(irfw_case_check_journal(jpath, "CASE-1", "i-0abc", &jc, err, sizeof(err)), 0);
	assert_int_equal(cJSON_GetArraySize(jc.problems), 0);
	assert_int_equal(jc.lines, lines);
	assert_int_equal(jc.chained_from, 1);
	assert_int_equal(jc.legacy, 0);
	assert_string_equal(jc.head, head);
	irfw_journal_check_free(&jc);
}

/* The sync rule (casestore.c's head comment): a record line may announce
 * an AWS change, so it is durable, with every line before it, before
 * irfw_case_record() returns; step, artifact and location lines and the
 * results of irfw_case_record_result() are only written, and made durable
 * by the next record line, a flush or close. */
/* Between steps the manifest is kept as text and parsed back by the next
 * reader; readers of one record on several threads at once (the prepares
 * of different steps asking whether theirs ran before) parse it once. */
struct reader {
	struct irfw_case *c;
	pthread_barrier_t *go;
	int wrong;
};

static void *read_done(void *arg)
{
	struct reader *rd = arg;
	pthread_barrier_wait(rd->go);
	rd->wrong += !irfw_case_step_done(rd->c, "contain");
	rd->wrong += irfw_case_step_done(rd->c, "never");
	return NULL;
}

static void test_readers_at_once(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "me");
	enum { READERS = 4 };
	for (int round = 0; round < 1000; round++) {
		/* Between phases the tree gives way to its text. */
		assert_int_equal(irfw_case_step_begin(c, "contain", "quarantine"), 0);
		assert_int_equal(irfw_case_step_end(c, "contain", "ok", "moved", NULL, NULL, 1), 0);
		irfw_case_chill(c);
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, READERS);
		pthread_t th[READERS];
		struct reader rd[READERS];
		for (int k = 0; k < READERS; k++) {
			rd[k] = (struct reader){.c = c, .go = &go};
			assert_int_equal(pthread_create(&th[k], NULL, read_done, &rd[k]), 0);
		}
		for (int k = 0; k < READERS; k++) {
			pthread_join(th[k], NULL);
			assert_int_equal(rd[k].wrong, 0);
		}
		pthread_barrier_destroy(&go);
	}
	irfw_case_close(c);
}

static void test_record_lines_synced_others_not(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0abc", "first");
	char jpath[512], mpath[512];
	cJSON *m;

	snprintf(jpath, sizeof(jpath), "%s", irfw_case_journal_path(c));
	snprintf(mpath, sizeof(mpath), "%s", irfw_case_manifest_path(c));
	n_datasync = 0;
	assert_int_equal(irfw_case_step_begin(c, "isolate", "isolate"), 0);
	assert_int_equal(n_datasync, 0);
	assert_int_equal(irfw_case_record(c, "isolate", "original_groups", cJSON_CreateString("sg-1")), 0);
	assert_int_equal(n_datasync, 1);
	assert_int_equal(datasync_size, file_size(jpath)); /* the line and the step-begin */
	assert_int_equal(irfw_case_step_end(c, "isolate", "ok", NULL, NULL, NULL, 5), 0);
	assert_int_equal(irfw_case_artifact_add(c, "capture", "notes.txt", "text/plain", "abc", 3), 0);
	assert_int_equal(irfw_case_artifact_set_location(c, 0, "s3://b/k", NULL, NULL, NULL), 0);
	assert_int_equal(
	    irfw_case_record_result(c, "isolate", "containment", cJSON_CreateString("contained")), 0);
	assert_int_equal(n_datasync, 1);
	assert_true(file_size(jpath) > datasync_size);
	/* A result is a record like any other, to readers and to a reopen. */
	assert_string_equal(cJSON_GetStringValue(irfw_case_record_get(c, "isolate", "containment")),
	                    "contained");
	/* A reader of manifest.json gets the journal synced first. */
	m = read_manifest(c);
	assert_int_equal(n_datasync, 2);
	assert_int_equal(datasync_size, file_size(jpath));
	assert_int_equal((off_t)cJSON_GetObjectItem(m, "journal_bytes")->valuedouble, file_size(jpath));
	cJSON_Delete(m);
	assert_int_equal(irfw_case_flush(c), 0); /* nothing new: no sync */
	assert_int_equal(n_datasync, 2);
	assert_int_equal(irfw_case_step_begin(c, "tag", "tag"), 0);
	assert_int_equal(n_datasync, 2);
	irfw_case_close(c);
	assert_int_equal(n_datasync, 3);
	assert_int_equal(datasync_size, file_size(jpath));
	m = read_json(mpath);
	assert_int_equal((off_t)cJSON_GetObjectItem(m, "journal_bytes")->valuedouble, file_size(jpath));
	cJSON_Delete(m);
	c = open_case(f, "i-0abc", "second");
	assert_string_equal(cJSON_GetStringValue(irfw_case_record_get(c, "isolate", "containment")),
	                    "contained");
	irfw_case_close(c);
}

/* An artifact's name is made durable with the next journal sync, before
 * it: one folder sync for a capture's files, none on their own. */
static void test_artifact_names_synced_with_the_journal(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = open_case(f, "i-0dir", "first");

	n_dirsync = 0;
	for (int i = 0; i < 3; i++) {
		char name[32];
		snprintf(name, sizeof(name), "file-%d.txt", i);
		assert_int_equal(
		    irfw_case_artifact_add(c, "capture", name, "text/plain", "abcdef", 3 + (size_t)i), 0);
	}
	assert_int_equal(n_dirsync, 0);
	int before = n_datasync;
	assert_int_equal(irfw_case_record(c, "notify", "intended", cJSON_CreateString("x")), 0);
	assert_int_equal(n_datasync, before + 1);
	assert_int_equal(n_dirsync, 1);
	assert_true(names_before_datasync);
	/* Nothing new in the folder: the next sync does not sync it again. */
	assert_int_equal(irfw_case_record(c, "notify", "sent", cJSON_CreateString("y")), 0);
	assert_int_equal(n_dirsync, 1);
	assert_false(names_before_datasync);
	/* An artifact the close finds unsynced: the close syncs the folder. */
	assert_int_equal(irfw_case_artifact_add(c, "capture", "late.txt", "text/plain", "abcd", 4), 0);
	irfw_case_close(c);
	assert_true(n_dirsync >= 2);
	assert_true(names_before_datasync);
	c = open_case(f, "i-0dir", "second");
	cJSON *arts = cJSON_GetObjectItemCaseSensitive(irfw_case_manifest(c), "artifacts");
	assert_int_equal(cJSON_GetArraySize(arts), 4);
	irfw_case_close(c);
}

static void test_chain_links_every_line(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = chain_case(f);
	char genesis[65], path[300];
	char *text = slurp(irfw_case_journal_path(c), NULL);
	const cJSON *m = irfw_case_manifest(c);
	long n = 0;

	irfw_case_genesis("CASE-1", "i-0abc", genesis);
	assert_int_equal(strlen(genesis), 64);
	/* The genesis is the hash of a stated text. */
	{
		char *g = irfw_case_genesis_text("CASE-1", "i-0abc");
		assert_string_equal(g, "irfw-journal-genesis CASE-1/i-0abc");
		free(g);
	}
	/* Each line's prev is the previous line's hash (the genesis first),
	 * checked here independently of irfw_case_check_journal. */
	char expected[65];
	snprintf(expected, sizeof(expected), "%s", genesis);
	for (char *line = text, *nl; *line; line = nl + 1) {
		unsigned char md[32];
		unsigned int mdlen = 0;
		cJSON *ev;

		nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		ev = cJSON_Parse(line);
		assert_non_null(ev);
		assert_string_equal(cJSON_GetObjectItem(ev, "prev")->valuestring, expected);
		cJSON_Delete(ev);
		assert_int_equal(EVP_Digest(line, strlen(line), md, &mdlen, EVP_sha256(), NULL), 1);
		for (unsigned i = 0; i < 32; i++)
			snprintf(expected + 2 * i, 3, "%02x", md[i]);
		n++;
	}
	free(text);
	assert_true(n >= 5);
	assert_string_equal(irfw_case_journal_head(c), expected);
	assert_string_equal(cJSON_GetObjectItem(m, "journal_head")->valuestring, expected);
	assert_int_equal((long)cJSON_GetObjectItem(m, "journal_lines")->valuedouble, n);
	assert_null(cJSON_GetObjectItem(m, "journal_chained_from"));
	/* What is on disk says the same. */
	cJSON *disk = read_manifest(c);
	assert_string_equal(cJSON_GetObjectItem(disk, "journal_head")->valuestring, expected);
	cJSON_Delete(disk);
	snprintf(path, sizeof(path), "%s", irfw_case_journal_path(c));
	check_clean(path, n, expected);
	irfw_case_close(c);
}

static void test_chain_continues_after_reopen(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = chain_case(f);
	char path[300], err[256], head[65];
	long n;

	snprintf(path, sizeof(path), "%s", irfw_case_journal_path(c));
	irfw_case_close(c);
	assert_int_equal(irfw_case_open(f->ev, "CASE-1", "i-0abc", NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(irfw_case_step_begin(c, "tag", "tag"), 0);
	snprintf(head, sizeof(head), "%s", irfw_case_journal_head(c));
	n = irfw_case_journal_lines(c);
	irfw_case_close(c);
	check_clean(path, n, head);

	/* Replaying the journal gives the manifest (but for its bookkeeping). */
	struct irfw_journal_check jc;
	assert_int_equal(irfw_case_check_journal(path, "CASE-1", "i-0abc", &jc, err, sizeof(err)), 0);
	char mpath[300];
	snprintf(mpath, sizeof(mpath), "%s/CASE-1/i-0abc/manifest.json", f->ev);
	cJSON *m = read_json(mpath);
	static const char *const skip[] = {"updated", "journal_bytes", "journal_lines", "journal_head"};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		cJSON_DeleteItemFromObject(m, skip[i]);
		cJSON_DeleteItemFromObject(jc.replayed, skip[i]);
	}
	assert_true(cJSON_Compare(m, jc.replayed, 1));
	cJSON_Delete(m);
	irfw_journal_check_free(&jc);
}

/* Rewrite the journal with line `drop` (1-based) removed, or line `edit`
 * changed ("ok" -> "KO"). */
static void tamper(const char *path, int drop, int edit)
{
	char *text = slurp(path, NULL);
	FILE *fp = fopen(path, "w");
	int no = 0;

	assert_non_null(text);
	assert_non_null(fp);
	for (char *line = text, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		*nl = '\0';
		no++;
		if (no == drop)
			continue;
		if (no == edit) {
			char *ok = strstr(line, "\"ok\"");
			assert_non_null(ok);
			memcpy(ok, "\"KO\"", 4);
		}
		fprintf(fp, "%s\n", line);
	}
	fclose(fp);
	free(text);
}

static bool has_problem(const struct irfw_journal_check *jc, const char *text)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, jc->problems)
	{
		if (strstr(p->valuestring, text))
			return true;
	}
	return false;
}

static void test_chain_detects_edit_and_removal(void **state)
{
	struct fx *f = *state;
	struct irfw_case *c = chain_case(f);
	char path[300], copy[320], err[256], cmd[700];
	struct irfw_journal_check jc;

	snprintf(path, sizeof(path), "%s", irfw_case_journal_path(c));
	irfw_case_close(c);
	snprintf(copy, sizeof(copy), "%s.orig", path);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
	assert_int_equal(system(cmd), 0);

	/* Line 4 is the step-end "ok": edited, line 5 no longer links. */
	tamper(path, 0, 4);
	assert_int_equal(irfw_case_check_journal(path, "CASE-1", "i-0abc", &jc, err, sizeof(err)), 0);
	assert_int_equal(cJSON_GetArraySize(jc.problems), 1);
	assert_true(has_problem(&jc, "line 5: prev does not match the hash of line 4"));
	irfw_journal_check_free(&jc);

	/* Line 2 removed: line 3 (now 2) names line 1. */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", copy, path);
	assert_int_equal(system(cmd), 0);
	tamper(path, 2, 0);
	assert_int_equal(irfw_case_check_journal(path, "CASE-1", "i-0abc", &jc, err, sizeof(err)), 0);
	assert_true(has_problem(&jc, "line 2: prev does not match the hash of line 1"));
	irfw_journal_check_free(&jc);

	/* The first line removed: the genesis does not match. */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", copy, path);
	assert_int_equal(system(cmd), 0);
	tamper(path, 1, 0);
	assert_int_equal(irfw_case_check_journal(path, "CASE-1", "i-0abc", &jc, err, sizeof(err)), 0);
	assert_true(has_problem(&jc, "line 1: prev is not the genesis hash of CASE-1/i-0abc"));
	irfw_journal_check_free(&jc);

	/* Another instance's genesis: not this journal. */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", copy, path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(irfw_case_check_journal(path, "CASE-1", "i-0def", &jc, err, sizeof(err)), 0);
	assert_true(has_problem(&jc, "line 1: prev is not the genesis"));
	irfw_journal_check_free(&jc);
	unlink(copy);
}

static void test_chain_starts_after_an_old_journal(void **state)
{
	struct fx *f = *state;
	char dir[300], path[340], err[256];
	struct irfw_case *c = NULL;
	struct irfw_journal_check jc;

	/* A journal as an irfw before the chain wrote it, and no manifest. */
	snprintf(dir, sizeof(dir), "%s/CASE-1/i-0abc", f->ev);
	snprintf(path, sizeof(path), "mkdir -p '%s'", dir);
	assert_int_equal(system(path), 0);
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	spit(path,
	     "{\"ts\":\"2024-01-01T00:00:00.000Z\",\"event\":\"run-start\",\"run\":{}}\n"
	     "{\"ts\":\"2024-01-01T00:00:01.000Z\",\"event\":\"step-begin\",\"step\":\"isolate\","
	     "\"plugin\":\"isolate\"}\n",
	     "w");
	assert_int_equal(irfw_case_open(f->ev, "CASE-1", "i-0abc", NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(irfw_case_step_status(c, "isolate"), "running");
	const cJSON *m = irfw_case_manifest(c);
	assert_int_equal((long)cJSON_GetObjectItem(m, "journal_chained_from")->valuedouble, 3);
	irfw_case_close(c);

	assert_int_equal(irfw_case_check_journal(path, "CASE-1", "i-0abc", &jc, err, sizeof(err)), 0);
	assert_int_equal(cJSON_GetArraySize(jc.problems), 0);
	assert_int_equal(jc.legacy, 2);
	assert_int_equal(jc.chained_from, 3);
	assert_true(jc.lines >= 4);
	assert_true(strstr(cJSON_GetArrayItem(jc.notes, cJSON_GetArraySize(jc.notes) - 1)->valuestring,
	                   "the chain starts at line 3") != NULL);
	irfw_journal_check_free(&jc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_creates_private_folders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_steps_in_journal_and_manifest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_artifact_sha256, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_resumes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rebuild_from_journal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_manifest_behind_journal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_journal_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_names_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_same_name_keeps_both, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_journal_only_grows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_writer_per_instance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors_name_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_location_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_record_lines_synced_others_not, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_artifact_names_synced_with_the_journal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readers_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_links_every_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_continues_after_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_detects_edit_and_removal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_starts_after_an_old_journal, setup, teardown),
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
