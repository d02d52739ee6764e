/*
 * upload.c - ship the case's evidence to S3, encrypted with a KMS key, with
 * the integrity of every object checked by S3 on the way in and by us
 * afterwards, and record where each artifact went in the case manifest.
 * The manifest itself goes last, so the copy in S3 lists every object.
 *
 * The bucket may be in another region than the run (a central evidence
 * account's bucket): its region is looked up once per run, and every S3
 * call goes there.  S3 encrypts only with a KMS key of the bucket's region,
 * so a key elsewhere is refused before anything is uploaded rather than
 * after the first PutObject fails.
 */
/* POSIX: strdup, fseeko, off_t */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "irfw/irfw.h"

#define MIB (1024ULL * 1024ULL)
/* S3 limits: parts of 5 MiB at least (but the last), 10000 parts at most. */
#define MIN_PART_MIB 5
#define MAX_PARTS    10000

static const struct irfw_option opts[] = {
    {.name = "bucket",
     .type = IRFW_OPT_STRING,
     .def = "s3-access-logs.${account_id}-${region}",
     .help = "Evidence bucket (template). The -b command-line option overrides it."},
    {.name = "prefix",
     .type = IRFW_OPT_STRING,
     .def = "${case_id}/${instance_id}/",
     .help = "Key prefix of the case's objects (template), a folder: artifacts go under it by name, "
             "then manifest.json. Empty segments are dropped (an instance without a Name tag makes "
             "${name_tag} empty), so no key has a leading slash or an empty segment (//), and a "
             "slash ends it unless it is empty."},
    {.name = "kms_key",
     .type = IRFW_OPT_STRING,
     .help = "KMS key for SSE-KMS: key id, key ARN, alias/NAME or alias ARN. Resolved once per run with "
             "DescribeKey to the key ARN, which must be enabled; an ARN is described in the region it "
             "names, an id or alias in the bucket's region. A key in another region than the bucket is "
             "refused before anything is uploaded: S3 encrypts only with a key of the bucket's "
             "region."},
    {.name = "kms_key_description",
     .type = IRFW_OPT_STRING,
     .help = "Alternative to kms_key: use the one key of the bucket's region whose description is exactly "
             "this text (ListKeys, then DescribeKey of each). No match or more than one is an error."},
    {.name = "allow_unencrypted",
     .type = IRFW_OPT_BOOL,
     .def = "false",
     .help = "Upload without SSE-KMS (bucket default encryption only) when no key is configured. Off: "
             "the step refuses to upload and fails."},
    {.name = "multipart_threshold",
     .type = IRFW_OPT_INT,
     .def = "64",
     .help = "Artifacts larger than this many MiB go up in parts (0: every non-empty artifact)."},
    {.name = "part_size",
     .type = IRFW_OPT_INT,
     .def = "16",
     .help = "Part size in MiB for multipart uploads (at least 5; raised when a file would need more "
             "than 10000 parts)."},
    {.name = "object_lock",
     .type = IRFW_OPT_ENUM,
     .def = "none",
     .choices = "none|governance|compliance",
     .help = "S3 Object Lock retention on every object: governance (a principal with "
             "s3:BypassGovernanceRetention may still delete it) or compliance (nobody can, the root "
             "user included, until retain_days have passed). Needs a bucket made with Object Lock: "
             "checked (GetObjectLockConfiguration) before anything is uploaded, and refused if it "
             "lacks it."},
    {.name = "retain_days",
     .type = IRFW_OPT_INT,
     .def = "0",
     .help = "Days of Object Lock retention from the upload (required with object_lock)."},
    {.name = "legal_hold",
     .type = IRFW_OPT_BOOL,
     .def = "false",
     .help = "Put an Object Lock legal hold on every object (no deletion until it is removed, "
             "whatever the retention). Needs a bucket with Object Lock, as object_lock does."},
    {.name = NULL},
};

static int init(irfw_step *step, void **state)
{
	*state = NULL;
	const char *key = irfw_step_get(step, "kms_key"), *desc = irfw_step_get(step, "kms_key_description");
	if (key && *key && desc && *desc) {
		irfw_step_error(step, "kms_key_description", "give kms_key or kms_key_description, not both");
		return -1;
	}
	if (irfw_step_get_int(step, "part_size") < MIN_PART_MIB) {
		irfw_step_error(step, "part_size",
		                "part_size must be at least %d (MiB): S3's minimum part size", MIN_PART_MIB);
		return -1;
	}
	const char *lock = irfw_step_get(step, "object_lock");
	bool locking = lock && strcmp(lock, "none") != 0;
	long days = irfw_step_get_int(step, "retain_days");
	if (locking && (days < 1 || days > 36500)) {
		irfw_step_error(step, "retain_days",
		                "object_lock = %s needs retain_days, from 1 to 36500 (days of retention)",
		                lock);
		return -1;
	}
	if (!locking && days != 0) {
		irfw_step_error(step, "retain_days",
		                "retain_days needs object_lock = governance or compliance");
		return -1;
	}
	if (irfw_step_get_int(step, "multipart_threshold") < 0) {
		irfw_step_error(step, "multipart_threshold", "multipart_threshold must be 0 or more (MiB)");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* KMS key resolution, once per run and key spec (irfw_memo).           */

struct kms_req {
	const char *spec;   /* kms_key or the description */
	bool by_desc;       /* spec is a description */
	const char *region; /* where the key is looked for */
	bool aws_error;     /* err came from the last AWS call */
	char err[512];
};

/* The key must be usable for SSE-KMS: enabled and symmetric. */
static char *usable_key_arn(const cJSON *meta, struct kms_req *rq)
{
	const char *arn = irfw_json_str(meta, "Arn"), *state = irfw_json_str(meta, "KeyState");
	const char *spec = irfw_json_str(meta, "KeySpec");
	const cJSON *enabled = cJSON_GetObjectItemCaseSensitive(meta, "Enabled");
	if (!arn) {
		snprintf(rq->err, sizeof(rq->err), "KMS DescribeKey of %s gave no key ARN", rq->spec);
		return NULL;
	}
	if (!cJSON_IsTrue(enabled) || (state && strcmp(state, "Enabled") != 0)) {
		snprintf(rq->err, sizeof(rq->err), "KMS key %s is not enabled (state %s)", arn,
		         state ? state : "?");
		return NULL;
	}
	if (spec && strcmp(spec, "SYMMETRIC_DEFAULT") != 0) {
		snprintf(rq->err, sizeof(rq->err), "KMS key %s is %s; S3 encrypts only with symmetric keys",
		         arn, spec);
		return NULL;
	}
	return strdup(arn);
}

static char *kms_by_id(irfw_target *t, struct kms_req *rq)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	char *arn = NULL;
	cJSON_AddStringToObject(p, "KeyId", rq->spec);
	if (irfw_aws_call_in(t, rq->region, "kms", "DescribeKey", p, &res) != 0) {
		rq->aws_error = true;
		snprintf(rq->err, sizeof(rq->err), "KMS key %s: DescribeKey in %s failed", rq->spec,
		         rq->region);
	} else {
		arn = usable_key_arn(cJSON_GetObjectItemCaseSensitive(res, "KeyMetadata"), rq);
	}
	cJSON_Delete(p);
	cJSON_Delete(res);
	return arn;
}

/* kms_by_description's search through the pages of ListKeys. */
struct kms_search {
	struct kms_req *rq;
	cJSON *match; /* KeyMetadata of the match */
	int n_match, n_unreadable;
	char arns[256];
};

/* DescribeKey of every key of one page (all at once), keeping those
 * described so. */
static int kms_page(irfw_target *t, const cJSON *res, void *ctx)
{
	struct kms_search *ks = ctx;
	irfw_calls *c = irfw_calls_new(t);
	if (!c)
		return 1; /* stops the search: not found */
	const cJSON *k;
	cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(res, "Keys"))
	{
		const char *id = irfw_json_str(k, "KeyId");
		if (!id)
			continue;
		cJSON *dp = cJSON_CreateObject();
		cJSON_AddStringToObject(dp, "KeyId", id);
		int rc = irfw_calls_add(c, ks->rq->region, "kms", "DescribeKey", dp, 0);
		cJSON_Delete(dp);
		if (rc < 0) {
			irfw_calls_free(c);
			return 1;
		}
	}
	irfw_calls_run(c);
	size_t i = 0;
	cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(res, "Keys"))
	{
		const char *id = irfw_json_str(k, "KeyId");
		if (!id)
			continue;
		if (irfw_calls_select(c, i++) != 0) {
			/* A key policy may hide a key from us; it cannot be ours then. */
			irfw_log(t, IRFW_LOG_WARN, "KMS DescribeKey %s: %s: %s (ignored)", id,
			         irfw_aws_error_code(t), irfw_aws_error_message(t));
			ks->n_unreadable++;
			continue;
		}
		const cJSON *meta =
		    cJSON_GetObjectItemCaseSensitive(irfw_calls_result(c, i - 1), "KeyMetadata");
		const char *d = irfw_json_str(meta, "Description"), *state = irfw_json_str(meta, "KeyState");
		/* A key pending deletion is as good as gone. */
		bool dying =
		    state && strncmp(state, "Pending", 7) == 0 && strcmp(state, "PendingImport") != 0;
		if (d && strcmp(d, ks->rq->spec) == 0 && !dying) {
			ks->n_match++;
			const char *a = irfw_json_str(meta, "Arn");
			size_t used = strlen(ks->arns);
			snprintf(ks->arns + used, sizeof(ks->arns) - used, "%s%s", used ? ", " : "",
			         a ? a : id);
			cJSON_Delete(ks->match);
			ks->match = cJSON_Duplicate(meta, true);
		}
	}
	irfw_calls_free(c);
	return 0;
}

/* The old tool's rule: the key whose description is exactly `spec`. */
static char *kms_by_description(irfw_target *t, struct kms_req *rq)
{
	struct kms_search ks = {.rq = rq};
	char *arn = NULL;
	cJSON *p = cJSON_CreateObject();
	cJSON_AddNumberToObject(p, "Limit", 1000);
	int rc = irfw_aws_paginate_in(t, rq->region, "kms", "ListKeys", p, kms_page, &ks);
	cJSON_Delete(p);
	if (rc > 0) { /* kms_page stopped it */
		snprintf(rq->err, sizeof(rq->err), "out of memory looking for the KMS key described \"%s\"",
		         rq->spec);
	} else if (rc != 0) {
		rq->aws_error = true;
		snprintf(rq->err, sizeof(rq->err),
		         "KMS ListKeys in %s failed looking for the key described \"%s\"", rq->region,
		         rq->spec);
	} else if (ks.n_match == 1) {
		arn = usable_key_arn(ks.match, rq);
	} else if (ks.n_match == 0) {
		snprintf(rq->err, sizeof(rq->err), "no KMS key in %s has the description \"%s\"%s",
		         rq->region, rq->spec, ks.n_unreadable ? " (some keys could not be described)" : "");
	} else {
		snprintf(rq->err, sizeof(rq->err),
		         "%d KMS keys have the description \"%s\" (%s): set kms_key instead", ks.n_match,
		         rq->spec, ks.arns);
	}
	cJSON_Delete(ks.match);
	return arn;
}

static char *make_kms(irfw_target *t, void *arg)
{
	struct kms_req *rq = arg;
	return rq->by_desc ? kms_by_description(t, rq) : kms_by_id(t, rq);
}

/* ------------------------------------------------------------------ */
/* The bucket's region, once per run and bucket (irfw_memo).            */

struct region_req {
	const char *bucket;
	bool aws_error; /* err came with the last AWS call's error */
	char err[768];
};

/* GetBucketLocation's LocationConstraint as a region: S3 answers none for
 * us-east-1, and the legacy "EU" for some eu-west-1 buckets. */
static char *location_region(const char *lc)
{
	if (!lc || !*lc)
		return strdup("us-east-1");
	if (strcmp(lc, "EU") == 0)
		return strdup("eu-west-1");
	return strdup(lc);
}

static char *make_bucket_region(irfw_target *t, void *arg)
{
	struct region_req *rq = arg;
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	char *region = NULL, first[400];
	cJSON_AddStringToObject(p, "Bucket", rq->bucket);
	/* GetBucketLocation answers from any region, for the bucket's own
	 * account. */
	if (irfw_aws_call(t, "s3", "GetBucketLocation", p, &res) == 0) {
		region = location_region(irfw_json_str(res, "LocationConstraint"));
		goto out;
	}
	if (strcmp(irfw_aws_error_code(t), "NoSuchBucket") == 0) {
		rq->aws_error = true;
		snprintf(rq->err, sizeof(rq->err), "evidence bucket %s: GetBucketLocation failed",
		         rq->bucket);
		goto out;
	}
	/* Refused (no s3:GetBucketLocation, or another account's bucket,
	 * whose policy does not apply outside its region).  HeadBucket in the
	 * run's region answers 200 with x-amz-bucket-region when the bucket is
	 * there; elsewhere AWS answers 301 with that header, which the client
	 * does not hand to plugins, so the region stays unknown then. */
	snprintf(first, sizeof(first), "GetBucketLocation: %s: %s", irfw_aws_error_code(t),
	         irfw_aws_error_message(t));
	if (irfw_aws_call(t, "s3", "HeadBucket", p, &res) == 0) {
		const char *br = irfw_json_str(res, "BucketRegion");
		region = strdup(br && *br ? br : irfw_target_region(t));
		goto out;
	}
	rq->aws_error = true;
	snprintf(rq->err, sizeof(rq->err),
	         "cannot find the region of evidence bucket %s (%s; HeadBucket in %s failed too: allow "
	         "s3:GetBucketLocation on it)",
	         rq->bucket, first, irfw_target_region(t));
out:
	cJSON_Delete(p);
	cJSON_Delete(res);
	return region;
}

/* ------------------------------------------------------------------ */
/* One object.                                                          */

/* Where and how the objects of this target go. */
struct dest {
	char *bucket;
	char *prefix;
	const char *region;  /* the bucket's: every S3 call goes there */
	const char *kms_arn; /* NULL: no SSE-KMS (allow_unencrypted) */
	uint64_t threshold;  /* bytes; multipart above it */
	uint64_t part_size;  /* bytes */
	bool always_multipart;
	const char *lock_mode; /* "GOVERNANCE", "COMPLIANCE" or NULL */
	char lock_until[21];   /* ISO 8601, with lock_mode */
	bool legal_hold;
};

/* What was put: to record, and to compare with HeadObject. */
struct put {
	char *etag;
	char *version_id;
	char *checksum;      /* the object's checksum as S3 should report it, or NULL */
	char *full_checksum; /* multipart: the whole object's, which S3 may report instead */
	char *reported;      /* the checksum the PutObject reply carried, or NULL */
	bool confirmed;      /* S3 reported a SHA-256 checksum (PutObject or HeadObject) */
};

static void put_free(struct put *p)
{
	free(p->etag);
	free(p->version_id);
	free(p->checksum);
	free(p->full_checksum);
	free(p->reported);
	memset(p, 0, sizeof(*p));
}

static char *dup_item(const cJSON *o, const char *name)
{
	const char *s = irfw_json_str(o, name);
	return s ? strdup(s) : NULL;
}

/* The manifest's hex SHA-256 as S3 wants it (base64 of the raw digest). */
static char *hex_to_b64(const char *hex)
{
	unsigned char raw[32];
	if (!hex || strlen(hex) != 64)
		return NULL;
	for (size_t i = 0; i < 32; i++) {
		char pair[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
		if (!isxdigit((unsigned char)pair[0]) || !isxdigit((unsigned char)pair[1]))
			return NULL;
		raw[i] = (unsigned char)strtoul(pair, NULL, 16);
	}
	return irfw_base64_encode(raw, sizeof(raw));
}

static void add_sse(cJSON *p, const struct dest *d)
{
	if (d->kms_arn) {
		cJSON_AddStringToObject(p, "ServerSideEncryption", "aws:kms");
		cJSON_AddStringToObject(p, "SSEKMSKeyId", d->kms_arn);
	}
	/* Object Lock rides with the object's creation (PutObject,
	 * CreateMultipartUpload), as the encryption does. */
	if (d->lock_mode) {
		cJSON_AddStringToObject(p, "ObjectLockMode", d->lock_mode);
		cJSON_AddStringToObject(p, "ObjectLockRetainUntilDate", d->lock_until);
	}
	if (d->legal_hold)
		cJSON_AddStringToObject(p, "ObjectLockLegalHoldStatus", "ON");
}

/* The bucket's Object Lock, once per run and bucket (irfw_memo): "Enabled",
 * or NULL with why. */
struct lock_req {
	const char *bucket, *region;
	bool aws_error;
	char err[600];
};

static char *make_lock_check(irfw_target *t, void *arg)
{
	struct lock_req *rq = arg;
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	char *out = NULL;
	cJSON_AddStringToObject(p, "Bucket", rq->bucket);
	if (irfw_aws_call_in(t, rq->region, "s3", "GetObjectLockConfiguration", p, &res) != 0) {
		const char *code = irfw_aws_error_code(t);
		rq->aws_error = true;
		if (strcmp(code, "ObjectLockConfigurationNotFoundError") == 0)
			snprintf(rq->err, sizeof(rq->err),
			         "evidence bucket %s has no Object Lock (it can only be enabled on a bucket "
			         "made with it, or by AWS support): unset object_lock and legal_hold, or use "
			         "a bucket with Object Lock",
			         rq->bucket);
		else
			snprintf(rq->err, sizeof(rq->err),
			         "cannot read the Object Lock configuration of evidence bucket %s",
			         rq->bucket);
		goto out;
	}
	const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(res, "ObjectLockConfiguration");
	const char *en = irfw_json_str(cfg ? cfg : res, "ObjectLockEnabled");
	if (!en || strcmp(en, "Enabled") != 0) {
		snprintf(rq->err, sizeof(rq->err), "evidence bucket %s has Object Lock %s, not Enabled",
		         rq->bucket, en ? en : "unset");
		goto out;
	}
	out = strdup(en);
out:
	cJSON_Delete(p);
	cJSON_Delete(res);
	return out;
}

static cJSON *object_params(const struct dest *d, const char *key)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "Bucket", d->bucket);
	cJSON_AddStringToObject(p, "Key", key);
	return p;
}

/* The PutObject of a whole file.  With sha_b64 S3 checks the body against
 * the hash the manifest recorded, so a file changed on disk since it was
 * captured is refused (BadDigest); without it the core hashes the body. */
static cJSON *put_params(const struct dest *d, const char *key, const char *path, const char *media_type,
                         const char *sha_b64, const cJSON *meta)
{
	cJSON *p = object_params(d, key);
	cJSON_AddStringToObject(p, "BodyFile", path);
	cJSON_AddStringToObject(p, "ContentType", media_type ? media_type : "application/octet-stream");
	cJSON_AddStringToObject(p, "ChecksumAlgorithm", "SHA256");
	if (sha_b64)
		cJSON_AddStringToObject(p, "ChecksumSHA256", sha_b64);
	add_sse(p, d);
	cJSON_AddItemToObject(p, "Metadata", cJSON_Duplicate(meta, true));
	return p;
}

/* What a successful PutObject answered. */
static void put_parse(const cJSON *res, const char *sha_b64, struct put *out)
{
	out->etag = dup_item(res, "ETag");
	out->version_id = dup_item(res, "VersionId");
	out->checksum = sha_b64 ? strdup(sha_b64) : dup_item(res, "ChecksumSHA256");
	out->reported = dup_item(res, "ChecksumSHA256");
}

static int put_single(irfw_target *t, const struct dest *d, const char *key, const char *path,
                      const char *media_type, const char *sha_b64, const cJSON *meta, struct put *out)
{
	cJSON *p = put_params(d, key, path, media_type, sha_b64, meta), *res = NULL;
	int rc = irfw_aws_call_in(t, d->region, "s3", "PutObject", p, &res);
	cJSON_Delete(p);
	if (rc == 0)
		put_parse(res, sha_b64, out);
	cJSON_Delete(res);
	return rc;
}

/* Read bytes [off, off+len) of path, to hash a part ourselves: S3 then
 * checks each part on arrival, and we can predict the composite checksum. */
static void *read_range(const char *path, uint64_t off, uint64_t len)
{
	FILE *f = fopen(path, "rb");
	void *buf = f ? malloc(len ? (size_t)len : 1) : NULL;
	bool ok = buf && fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(buf, 1, (size_t)len, f) == (size_t)len;
	if (f)
		fclose(f);
	if (!ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Called after the failure is recorded (the abort call clears the error). */
static void abort_upload(irfw_target *t, const struct dest *d, const char *key, const char *upload_id)
{
	cJSON *p = object_params(d, key);
	cJSON_AddStringToObject(p, "UploadId", upload_id);
	if (irfw_aws_call_in(t, d->region, "s3", "AbortMultipartUpload", p, NULL) != 0)
		irfw_log(t, IRFW_LOG_WARN,
		         "AbortMultipartUpload %s: %s: %s (parts may linger until a lifecycle rule "
		         "removes them)",
		         key, irfw_aws_error_code(t), irfw_aws_error_message(t));
	else
		irfw_log(t, IRFW_LOG_INFO, "multipart upload of %s aborted", key);
	cJSON_Delete(p);
}

/* A multipart upload's failure: the step's (report), or, when an artifact
 * before it failed already and is the step's failure, logged.  aws: with
 * the last call's AWS error. */
static void mp_fail(irfw_target *t, bool report, bool aws, const char *fmt, ...) IRFW_PRINTF(4, 5);
static void mp_fail(irfw_target *t, bool report, bool aws, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (report && aws)
		irfw_fail_aws(t, "%s", msg);
	else if (report)
		irfw_fail(t, "%s", msg);
	else if (aws)
		irfw_log(t, IRFW_LOG_ERROR, "%s: %s: %s (request %s)", msg, irfw_aws_error_code(t),
		         irfw_aws_error_message(t),
		         *irfw_aws_request_id(t) ? irfw_aws_request_id(t) : "none");
	else
		irfw_log(t, IRFW_LOG_ERROR, "%s", msg);
}

/* Multipart upload; on any failure the upload is aborted, so no invisible
 * parts are left to pay for.  Returns 0, or -1 after recording the step's
 * failure (the AWS error of the failed call, then `ctx`), or only logging
 * it when !report. */
static int put_multipart(irfw_target *t, const struct dest *d, const char *key, const char *path,
                         uint64_t size, const char *media_type, const char *sha_b64, cJSON *meta,
                         struct put *out, const char *ctx, bool report)
{
	cJSON *p = object_params(d, key), *res = NULL, *parts = NULL;
	char *upload_id = NULL, *digests = NULL;
	int rc = -1;

	cJSON_AddStringToObject(p, "ContentType", media_type ? media_type : "application/octet-stream");
	cJSON_AddStringToObject(p, "ChecksumAlgorithm", "SHA256");
	add_sse(p, d);
	cJSON_AddItemToObject(p, "Metadata", cJSON_Duplicate(meta, true));
	if (irfw_aws_call_in(t, d->region, "s3", "CreateMultipartUpload", p, &res) != 0) {
		mp_fail(t, report, true, "CreateMultipartUpload %s", ctx);
		goto out;
	}
	upload_id = dup_item(res, "UploadId");
	cJSON_Delete(res);
	res = NULL;
	if (!upload_id) {
		mp_fail(t, report, false, "CreateMultipartUpload gave no UploadId: %s", ctx);
		goto out;
	}

	uint64_t part = d->part_size;
	if (size / part >= MAX_PARTS)
		part = (size + MAX_PARTS - 1) / MAX_PARTS;
	uint64_t n_parts = size ? (size + part - 1) / part : 1;
	digests = malloc((size_t)n_parts * 32);
	parts = cJSON_CreateArray();
	if (!digests || !parts) {
		mp_fail(t, report, false, "out of memory: %s", ctx);
		abort_upload(t, d, key, upload_id);
		goto out;
	}
	for (uint64_t n = 0; n < n_parts; n++) {
		uint64_t off = n * part, len = size - off < part ? size - off : part;
		void *bytes = read_range(path, off, len);
		char b64[45];
		if (!bytes) {
			mp_fail(t, report, false, "cannot read part %llu of %s: %s",
			        (unsigned long long)n + 1, path, ctx);
			abort_upload(t, d, key, upload_id);
			goto out;
		}
		irfw_sha256(bytes, (size_t)len, NULL, b64);
		free(bytes);
		size_t rawlen = 0;
		unsigned char *raw = irfw_base64_decode(b64, &rawlen);
		if (raw && rawlen == 32)
			memcpy(digests + n * 32, raw, 32);
		free(raw);

		cJSON *pp = object_params(d, key);
		cJSON_AddStringToObject(pp, "UploadId", upload_id);
		/* Without it the HTTP client labels the body a form, and moto
		 * then parses it for the query (S3 itself ignores it here). */
		cJSON_AddStringToObject(pp, "ContentType", "application/octet-stream");
		cJSON_AddNumberToObject(pp, "PartNumber", (double)(n + 1));
		cJSON_AddStringToObject(pp, "BodyFile", path);
		cJSON_AddNumberToObject(pp, "BodyOffset", (double)off);
		cJSON_AddNumberToObject(pp, "BodyLength", (double)len);
		cJSON_AddStringToObject(pp, "ChecksumAlgorithm", "SHA256");
		cJSON_AddStringToObject(pp, "ChecksumSHA256", b64);
		int prc = irfw_aws_call_in(t, d->region, "s3", "UploadPart", pp, &res);
		cJSON_Delete(pp);
		const char *etag = irfw_json_str(res, "ETag");
		if (prc != 0 || !etag) {
			if (prc != 0)
				mp_fail(t, report, true, "UploadPart %llu %s", (unsigned long long)n + 1,
				        ctx);
			else
				mp_fail(t, report, false, "UploadPart %llu gave no ETag: %s",
				        (unsigned long long)n + 1, ctx);
			cJSON_Delete(res);
			res = NULL;
			abort_upload(t, d, key, upload_id);
			goto out;
		}
		cJSON *entry = cJSON_CreateObject();
		cJSON_AddNumberToObject(entry, "PartNumber", (double)(n + 1));
		cJSON_AddStringToObject(entry, "ETag", etag);
		cJSON_AddStringToObject(entry, "ChecksumSHA256", b64);
		cJSON_AddItemToArray(parts, entry);
		cJSON_Delete(res);
		res = NULL;
	}

	cJSON *cp = object_params(d, key);
	cJSON_AddStringToObject(cp, "UploadId", upload_id);
	cJSON_AddItemToObject(cp, "Parts", parts);
	parts = NULL;
	int crc = irfw_aws_call_in(t, d->region, "s3", "CompleteMultipartUpload", cp, &res);
	cJSON_Delete(cp);
	if (crc != 0 || !irfw_json_str(res, "ETag")) {
		if (crc != 0)
			mp_fail(t, report, true, "CompleteMultipartUpload %s", ctx);
		else
			mp_fail(t, report, false, "CompleteMultipartUpload gave no ETag: %s", ctx);
		abort_upload(t, d, key, upload_id);
		goto out;
	}
	out->etag = dup_item(res, "ETag");
	out->version_id = dup_item(res, "VersionId");
	/* S3's composite checksum: SHA-256 of the parts' digests, "-N". */
	char whole[45];
	irfw_sha256(digests, (size_t)n_parts * 32, NULL, whole);
	size_t clen = strlen(whole) + 24;
	out->checksum = malloc(clen);
	if (out->checksum)
		snprintf(out->checksum, clen, "%s-%llu", whole, (unsigned long long)n_parts);
	out->full_checksum = sha_b64 ? strdup(sha_b64) : NULL;
	rc = 0;
out:
	cJSON_Delete(p);
	cJSON_Delete(res);
	cJSON_Delete(parts);
	free(upload_id);
	free(digests);
	return rc;
}

static void strip_quotes(const char *in, char *out, size_t n)
{
	if (*in == '"')
		in++;
	snprintf(out, n, "%s", in);
	size_t l = strlen(out);
	if (l && out[l - 1] == '"')
		out[l - 1] = '\0';
}

static cJSON *head_params(const struct dest *d, const char *key)
{
	cJSON *p = object_params(d, key);
	cJSON_AddStringToObject(p, "ChecksumMode", "ENABLED");
	return p;
}

/* The HeadObject read back: the object must be there, whole, and encrypted
 * with our key.  Returns 0, or -1 with why. */
static int check_head(const struct dest *d, const cJSON *res, uint64_t size, struct put *put, char *why,
                      size_t why_len)
{
	int rc = -1;
	const char *len = irfw_json_str(res, "ContentLength"),
	           *sse = irfw_json_str(res, "ServerSideEncryption");
	const char *kid = irfw_json_str(res, "SSEKMSKeyId"), *ck = irfw_json_str(res, "ChecksumSHA256");
	const char *etag = irfw_json_str(res, "ETag");
	long got = irfw_json_long(res, "ContentLength", -1);
	if (got < 0 || (uint64_t)got != size) {
		snprintf(why, why_len, "size in S3 is %s bytes, expected %llu", len ? len : "unknown",
		         (unsigned long long)size);
		goto out;
	}
	if (d->kms_arn) {
		if (!sse || strcmp(sse, "aws:kms") != 0) {
			snprintf(why, why_len, "object is not SSE-KMS encrypted (ServerSideEncryption %s)",
			         sse ? sse : "absent");
			goto out;
		}
		if (!kid || strcmp(kid, d->kms_arn) != 0) {
			snprintf(why, why_len, "object is encrypted with KMS key %s, not %s",
			         kid ? kid : "(none)", d->kms_arn);
			goto out;
		}
	}
	/* What the PutObject reply said S3 stored must be what we sent. */
	if (put->reported && put->checksum && strcmp(put->reported, put->checksum) != 0) {
		snprintf(why, why_len, "PutObject answered checksum %s, ours is %s", put->reported,
		         put->checksum);
		goto out;
	}
	/* S3 reports the full-object or the composite checksum depending on
	 * how it was put; either must match what we sent. */
	/* The composite one is "<digest>-<parts>"; some S3 implementations
	 * report the digest alone (moto does): the same digest is the same. */
	const char *dash = put->checksum ? strrchr(put->checksum, '-') : NULL;
	bool same_composite = ck && dash && strlen(ck) == (size_t)(dash - put->checksum) &&
	                      strncmp(ck, put->checksum, (size_t)(dash - put->checksum)) == 0;
	if (ck && put->checksum && strcmp(ck, put->checksum) != 0 && !same_composite &&
	    !(put->full_checksum && strcmp(ck, put->full_checksum) == 0)) {
		snprintf(why, why_len, "checksum in S3 %s differs from ours %s", ck, put->checksum);
		goto out;
	}
	put->confirmed = (ck && put->checksum) || (put->reported && put->checksum);
	if (etag && put->etag) {
		char a[128], b[128];
		strip_quotes(etag, a, sizeof(a));
		strip_quotes(put->etag, b, sizeof(b));
		if (strcmp(a, b) != 0) {
			snprintf(why, why_len,
			         "ETag in S3 %s differs from the upload's %s (overwritten meanwhile?)", etag,
			         put->etag);
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

/* The read-back of the last call's failure, for why. */
static void head_failed(irfw_target *t, char *why, size_t why_len)
{
	snprintf(why, why_len, "HeadObject after the upload failed: %s: %s", irfw_aws_error_code(t),
	         irfw_aws_error_message(t));
}

/* HeadObject now, then check_head.  Returns 0, or -1 with why. */
static int verify(irfw_target *t, const struct dest *d, const char *key, uint64_t size, struct put *put,
                  char *why, size_t why_len)
{
	cJSON *p = head_params(d, key), *res = NULL;
	int rc = -1;
	if (irfw_aws_call_in(t, d->region, "s3", "HeadObject", p, &res) != 0)
		head_failed(t, why, why_len);
	else
		rc = check_head(d, res, size, put, why, why_len);
	cJSON_Delete(p);
	cJSON_Delete(res);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The step.                                                            */

/* The expanded prefix as a folder: its non-empty segments, each followed by
 * a slash.  An empty ${name_tag} (an instance without a Name tag) in
 * "${case_id}/${name_tag}/" must not make "case//", nor a leading slash
 * an empty first segment: S3 would keep them, and the console would show a
 * folder without a name.  An empty prefix stays empty (the bucket's top). */
static char *folder_prefix(const char *in)
{
	char *out = malloc(strlen(in) + 2);
	if (!out)
		return NULL;
	size_t o = 0;
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		const char *seg = p;
		while (*p && *p != '/')
			p++;
		if (p > seg) {
			memcpy(out + o, seg, (size_t)(p - seg));
			o += (size_t)(p - seg);
			out[o++] = '/';
		}
	}
	out[o] = '\0';
	return out;
}

/* The URI of artifact i as an earlier run recorded it, or NULL. */
static const char *recorded_uri(const cJSON *summary, size_t i)
{
	const cJSON *arts = cJSON_GetObjectItemCaseSensitive(summary, "artifacts");
	return irfw_json_str(cJSON_GetArrayItem(arts, (int)i), "uri");
}

/* The case folder, for messages (from the summary: irfw_manifest_path
 * would write the manifest out only to name its folder). */
static char *case_dir(const cJSON *summary)
{
	const char *dir = irfw_json_str(summary, "case_dir");
	return strdup(dir ? dir : "(no case folder)");
}

/* One artifact to ship in this run. */
struct art {
	size_t i;
	const char *name, *path;
	uint64_t size;
	char *key, *uri, *sha_b64;
	bool multi;
	int put_call, head_call; /* in the sets of single PutObjects and of HeadObjects, or -1 */
	struct put put;
};

/* The first failure, by index: the step's, reported once every artifact
 * that could be shipped is shipped and recorded. */
enum first_fail { FIRST_NONE = 0, FIRST_PUT, FIRST_VERIFY, FIRST_REPORTED };

/*
 * Every artifact not already at its place (a resumed case) goes up, its
 * location recorded in index order: the single PutObjects all at once,
 * then their HeadObject read-backs all at once, then in index order each
 * multipart upload (its parts one after another) and each location.  A
 * failure does not stop the others: every artifact that reached S3 and
 * was read back is recorded, and the step fails with the first failure by
 * index (the artifact, the AWS code and the request id).  Returns 0, or
 * -1 with *st the step's failure.
 */
static int ship_artifacts(irfw_target *t, const struct dest *d, cJSON *meta, const cJSON *summary,
                          const char *dir, size_t *n_up, size_t *n_kept, size_t *n_unconfirmed,
                          irfw_status *st)
{
	size_t n = irfw_evidence_count(t), n_arts = 0;
	struct art *arts = calloc(n ? n : 1, sizeof(*arts));
	irfw_calls *puts = irfw_calls_new(t), *heads = irfw_calls_new(t);
	enum first_fail first = FIRST_NONE;
	const struct art *first_art = NULL;
	char invalid[512] = "", first_why[512] = "";
	int rc = -1;
	if (!arts || !puts || !heads)
		goto oom;

	for (size_t i = 0; i < n; i++) {
		const char *name = irfw_evidence_name(t, i), *path = irfw_evidence_path(t, i);
		const char *sha = irfw_evidence_sha256(t, i);
		if (!name || !path || !sha) {
			/* Those before it still go up, as they always did. */
			snprintf(invalid, sizeof(invalid),
			         "artifact %zu has no name, file or hash in the case record; evidence kept "
			         "in %s",
			         i, dir);
			break;
		}
		struct art *a = &arts[n_arts];
		a->i = i;
		a->name = name;
		a->path = path;
		a->size = irfw_evidence_size(t, i);
		a->put_call = a->head_call = -1;
		size_t klen = strlen(d->prefix) + strlen(name) + 1;
		a->key = malloc(klen);
		size_t ulen = strlen(d->bucket) + klen + 8;
		a->uri = malloc(ulen);
		if (!a->key || !a->uri) {
			free(a->key);
			free(a->uri);
			goto oom;
		}
		snprintf(a->key, klen, "%s%s", d->prefix, name);
		snprintf(a->uri, ulen, "s3://%s/%s", d->bucket, a->key);
		/* Resumed case: this very artifact (its hash is fixed per entry)
		 * is already at this very place. */
		const char *had = recorded_uri(summary, i);
		if (had && strcmp(had, a->uri) == 0) {
			irfw_log(t, IRFW_LOG_INFO, "%s already at %s", name, a->uri);
			(*n_kept)++;
			free(a->key);
			free(a->uri);
			memset(a, 0, sizeof(*a));
			continue;
		}
		n_arts++;
		a->sha_b64 = hex_to_b64(sha);
		a->multi = a->size > 0 && (d->always_multipart || a->size > d->threshold);
		if (a->multi)
			continue;
		cJSON_AddStringToObject(meta, "sha256", sha);
		cJSON *p = put_params(d, a->key, path, irfw_evidence_media_type(t, i), a->sha_b64, meta);
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "sha256");
		a->put_call = p ? irfw_calls_add(puts, d->region, "s3", "PutObject", p, 0) : -1;
		cJSON_Delete(p);
		if (a->put_call < 0)
			goto oom;
	}

	/* The single uploads at once, then the read-back of those that went up. */
	irfw_calls_run(puts);
	for (size_t k = 0; k < n_arts; k++) {
		struct art *a = &arts[k];
		if (a->put_call < 0 || irfw_calls_select(puts, (size_t)a->put_call) != 0)
			continue;
		put_parse(irfw_calls_result(puts, (size_t)a->put_call), a->sha_b64, &a->put);
		cJSON *p = head_params(d, a->key);
		a->head_call = irfw_calls_add(heads, d->region, "s3", "HeadObject", p, 0);
		cJSON_Delete(p);
		if (a->head_call < 0)
			goto oom;
	}
	irfw_calls_run(heads);

	/* In index order: the multipart uploads, and every location. */
	for (size_t k = 0; k < n_arts; k++) {
		struct art *a = &arts[k];
		char why[512] = "";
		if (!a->multi) {
			if (irfw_calls_select(puts, (size_t)a->put_call) != 0) {
				if (!first) {
					first = FIRST_PUT;
					first_art = a;
				} else {
					/* Not the step's failure: said here. */
					irfw_log(t, IRFW_LOG_ERROR,
					         "PutObject %s to %s failed too: %s: %s (request %s)",
					         a->name, a->uri, irfw_aws_error_code(t),
					         irfw_aws_error_message(t),
					         *irfw_aws_request_id(t) ? irfw_aws_request_id(t) : "none");
				}
				continue;
			}
			if (irfw_calls_select(heads, (size_t)a->head_call) != 0)
				head_failed(t, why, sizeof(why));
			else
				check_head(d, irfw_calls_result(heads, (size_t)a->head_call), a->size,
				           &a->put, why, sizeof(why));
		} else {
			char ctx[1024];
			snprintf(ctx, sizeof(ctx),
			         "%s to %s failed (%zu of %zu artifacts uploaded); evidence kept in %s",
			         a->name, a->uri, *n_up + *n_kept, n, dir);
			cJSON_AddStringToObject(meta, "sha256", irfw_evidence_sha256(t, a->i));
			int mrc =
			    put_multipart(t, d, a->key, a->path, a->size, irfw_evidence_media_type(t, a->i),
			                  a->sha_b64, meta, &a->put, ctx, !first);
			cJSON_DeleteItemFromObjectCaseSensitive(meta, "sha256");
			if (mrc != 0) {
				if (!first) {
					first = FIRST_REPORTED;
					first_art = a;
				}
				continue;
			}
			verify(t, d, a->key, a->size, &a->put, why, sizeof(why));
		}
		if (why[0]) { /* check_head and verify say why whenever they fail */
			if (!first) {
				first = FIRST_VERIFY;
				first_art = a;
				snprintf(first_why, sizeof(first_why), "%s", why);
			} else {
				irfw_log(t, IRFW_LOG_ERROR, "%s: verification of %s failed too: %s", a->name,
				         a->uri, why);
			}
			continue;
		}
		if (!a->put.confirmed)
			(*n_unconfirmed)++;
		if (irfw_evidence_set_location(t, a->i, a->uri, a->put.version_id, a->put.etag, d->kms_arn) !=
		    0)
			irfw_log(t, IRFW_LOG_WARN, "cannot record the location of %s in the manifest",
			         a->name);
		irfw_log(t, IRFW_LOG_INFO, "%s -> %s (%llu bytes%s)", a->name, a->uri,
		         (unsigned long long)a->size, a->multi ? ", multipart" : "");
		(*n_up)++;
	}

	switch (first) {
	case FIRST_PUT:
		irfw_calls_select(puts, (size_t)first_art->put_call);
		*st = irfw_fail_aws(
		    t, "PutObject %s to %s failed (%zu of %zu artifacts uploaded); evidence kept in %s",
		    first_art->name, first_art->uri, *n_up + *n_kept, n, dir);
		break;
	case FIRST_VERIFY:
		*st = irfw_fail(
		    t,
		    "%s: verification of %s failed: %s (%zu of %zu artifacts uploaded); evidence kept in %s",
		    first_art->name, first_art->uri, first_why, *n_up + *n_kept, n, dir);
		break;
	case FIRST_REPORTED:
		*st = IRFW_FAILED;
		break;
	case FIRST_NONE:
		if (invalid[0])
			*st = irfw_fail(t, "%s", invalid);
		else
			rc = 0;
		break;
	}
	goto out;
oom:
	*st = irfw_fail(t, "out of memory; evidence kept in %s", dir);
out:
	for (size_t k = 0; k < n_arts; k++) {
		free(arts[k].key);
		free(arts[k].uri);
		free(arts[k].sha_b64);
		put_free(&arts[k].put);
	}
	free(arts);
	irfw_calls_free(puts);
	irfw_calls_free(heads);
	return rc;
}

/* The bucket of t: -b on the command line wins over the site's rule. */
static char *bucket_of(irfw_target *t, irfw_step *step)
{
	const char *cli_bucket = irfw_global_get(step, "bucket");
	return cli_bucket && *cli_bucket ? irfw_expand(t, cli_bucket) : irfw_step_expand(t, "bucket");
}

/* The KMS key the site names (kms_key, or kms_key_description); spec NULL
 * when it names none. */
static void kms_spec(irfw_step *step, struct kms_req *rq)
{
	const char *kms_key = irfw_step_get(step, "kms_key"),
	           *kms_desc = irfw_step_get(step, "kms_key_description");
	memset(rq, 0, sizeof(*rq));
	if (kms_key && *kms_key) {
		rq->spec = kms_key;
	} else if (kms_desc && *kms_desc) {
		rq->spec = kms_desc;
		rq->by_desc = true;
	}
}

/* The bucket's region, once per run and bucket. */
static const char *memo_region(irfw_target *t, const char *bucket, struct region_req *brq)
{
	char memo_key[600];
	memset(brq, 0, sizeof(*brq));
	brq->bucket = bucket;
	snprintf(memo_key, sizeof(memo_key), "upload:bucket-region:%s", bucket);
	return irfw_memo(t, memo_key, make_bucket_region, brq);
}

/* The key's ARN, once per run and key: an ARN names its region; an id,
 * alias or description is looked for where S3 will look for it, in the
 * bucket's region.  spec_region holds rq->region when the ARN names it. */
static const char *memo_kms(irfw_target *t, struct kms_req *rq, const char *bucket_region,
                            char spec_region[64])
{
	char memo_key[600];
	bool arn = !rq->by_desc && strncmp(rq->spec, "arn:", 4) == 0;
	rq->region = arn && irfw_arn_region(rq->spec, spec_region) ? spec_region : bucket_region;
	snprintf(memo_key, sizeof(memo_key), "upload:kms:%s:%s%s", rq->region,
	         rq->by_desc ? "description=" : "", rq->spec);
	return irfw_memo(t, memo_key, make_kms, rq);
}

/* Before any step runs, while the others prepare: the bucket's region and
 * the KMS key are looked up here rather than on the first instance's path
 * (the memo keeps them for the run).  Nothing fails here: a look-up that
 * does not answer is tried again by the step, which reports it. */
static int prepare(irfw_batch *b, void *state)
{
	(void)state;
	/* The first instance to upload: its answers serve the others (a site
	 * names one bucket and key for the run). */
	irfw_target *t = NULL;
	for (size_t i = 0, n = irfw_batch_count(b); i < n && !t; i++)
		if (irfw_target_instance(irfw_batch_target(b, i)) &&
		    !irfw_step_resumed(irfw_batch_target(b, i)))
			t = irfw_batch_target(b, i);
	if (!t)
		return 0;
	irfw_step *step = irfw_target_step(t);
	char *bucket = bucket_of(t, step);
	struct region_req brq;
	const char *region = bucket && *bucket ? memo_region(t, bucket, &brq) : NULL;
	struct kms_req rq;
	kms_spec(step, &rq);
	char spec_region[64];
	if (region && rq.spec)
		memo_kms(t, &rq, region, spec_region);
	free(bucket);
	return 0;
}

static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	irfw_step *step = irfw_target_step(t);
	struct dest d;
	memset(&d, 0, sizeof(d));
	cJSON *summary = irfw_target_summary(t), *meta = NULL;
	char *uri = NULL, *dir = case_dir(summary);
	irfw_status st = IRFW_FAILED;

	d.bucket = bucket_of(t, step);
	char *raw_prefix = irfw_step_expand(t, "prefix");
	d.prefix = raw_prefix ? folder_prefix(raw_prefix) : NULL;
	free(raw_prefix);
	if (!d.bucket || !*d.bucket || !d.prefix) {
		st = irfw_fail(t, "cannot expand bucket or prefix (see the log); evidence kept in %s", dir);
		goto out;
	}
	long thr = irfw_step_get_int(step, "multipart_threshold");
	d.always_multipart = thr == 0;
	d.threshold = (uint64_t)thr * MIB;
	d.part_size = (uint64_t)irfw_step_get_int(step, "part_size") * MIB;

	struct kms_req rq;
	kms_spec(step, &rq);
	if (!rq.spec && !irfw_step_get_bool(step, "allow_unencrypted")) {
		st = irfw_fail(t,
		               "no KMS key configured; refusing to upload evidence unencrypted (set "
		               "allow_unencrypted = true to override); evidence kept in %s",
		               dir);
		goto out;
	}

	/* The bucket's region, once per run: every S3 call goes there. */
	struct region_req brq;
	d.region = memo_region(t, d.bucket, &brq);
	if (!d.region) {
		if (brq.aws_error)
			st = irfw_fail_aws(t, "%s; nothing uploaded, evidence kept in %s", brq.err, dir);
		else
			st = irfw_fail(t,
			               "cannot find the region of evidence bucket %s; nothing uploaded, "
			               "evidence kept in %s",
			               d.bucket, dir);
		goto out;
	}

	/* The key: once per run, not once per instance. */
	char spec_region[64];
	if (rq.spec) {
		d.kms_arn = memo_kms(t, &rq, d.region, spec_region);
		if (!d.kms_arn) {
			if (rq.aws_error)
				st = irfw_fail_aws(t, "%s; nothing uploaded, evidence kept in %s", rq.err,
				                   dir);
			else
				st = irfw_fail(t, "%s; nothing uploaded, evidence kept in %s",
				               rq.err[0] ? rq.err : "cannot resolve the KMS key", dir);
			goto out;
		}
		/* S3 encrypts only with a key of the bucket's region: say so
		 * now rather than after the first PutObject is refused. */
		char key_region[64];
		if (!irfw_arn_region(d.kms_arn, key_region)) {
			st = irfw_fail(t,
			               "cannot tell the region of KMS key %s; nothing uploaded, evidence "
			               "kept in %s",
			               d.kms_arn, dir);
			goto out;
		}
		if (strcmp(key_region, d.region) != 0) {
			const char *id = strrchr(d.kms_arn, '/');
			bool mrk = id && strncmp(id + 1, "mrk-", 4) == 0;
			st = irfw_fail(t,
			               "KMS key %s is in %s but evidence bucket %s is in %s: S3 encrypts "
			               "only with a key of the bucket's region%s%s%s; nothing uploaded, "
			               "evidence kept in %s",
			               d.kms_arn, key_region, d.bucket, d.region,
			               mrk ? " (a multi-Region key: give its replica's ARN in " : "",
			               mrk ? d.region : "", mrk ? ")" : "", dir);
			goto out;
		}
	}
	const char *kms_text = d.kms_arn ? d.kms_arn : "none: bucket default encryption";

	/* Object Lock: the bucket must have it, or nothing is uploaded. */
	const char *lock = irfw_step_get(step, "object_lock");
	if (lock && strcmp(lock, "governance") == 0)
		d.lock_mode = "GOVERNANCE";
	else if (lock && strcmp(lock, "compliance") == 0)
		d.lock_mode = "COMPLIANCE";
	d.legal_hold = irfw_step_get_bool(step, "legal_hold");
	if (d.lock_mode || d.legal_hold) {
		struct lock_req lrq;
		memset(&lrq, 0, sizeof(lrq));
		lrq.bucket = d.bucket;
		lrq.region = d.region;
		char memo_key[600];
		snprintf(memo_key, sizeof(memo_key), "upload:object-lock:%s", d.bucket);
		if (!irfw_memo(t, memo_key, make_lock_check, &lrq)) {
			if (lrq.aws_error)
				st = irfw_fail_aws(
				    t,
				    "Object Lock asked (object_lock = %s%s): %s; nothing uploaded, "
				    "evidence kept in %s",
				    lock ? lock : "none", d.legal_hold ? ", legal_hold" : "", lrq.err, dir);
			else
				st = irfw_fail(
				    t, "Object Lock asked: %s; nothing uploaded, evidence kept in %s",
				    lrq.err[0] ? lrq.err : "the bucket's Object Lock is unknown", dir);
			goto out;
		}
		if (d.lock_mode)
			irfw_iso8601(time(NULL) + (time_t)irfw_step_get_int(step, "retain_days") * 86400,
			             d.lock_until);
	}

	size_t n = irfw_evidence_count(t);
	if (irfw_target_dry_run(t)) {
		irfw_note(t,
		          "dry run: would upload %zu artifacts and manifest.json to s3://%s/%s (KMS key %s), "
		          "bucket in %s",
		          n, d.bucket, d.prefix, kms_text, d.region);
		st = IRFW_OK;
		goto out;
	}

	meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "irfw-case-id", irfw_target_case_id(t));
	cJSON_AddStringToObject(meta, "irfw-instance-id", irfw_target_id(t));

	size_t n_up = 0, n_kept = 0, n_unconfirmed = 0;
	if (ship_artifacts(t, &d, meta, summary, dir, &n_up, &n_kept, &n_unconfirmed, &st) != 0)
		goto out;

	/* The manifest last: now it names every object's place in S3. */
	const char *mpath = irfw_manifest_path(t);
	struct stat sb;
	if (!mpath || stat(mpath, &sb) != 0) {
		st = irfw_fail(t, "cannot read the case manifest %s", mpath ? mpath : "(none)");
		goto out;
	}
	{
		size_t klen = strlen(d.prefix) + sizeof("manifest.json");
		char *key = malloc(klen);
		if (!key)
			goto oom;
		snprintf(key, klen, "%smanifest.json", d.prefix);
		struct put put;
		memset(&put, 0, sizeof(put));
		char why[512] = "";
		free(uri);
		uri = NULL;
		size_t ulen = strlen(d.bucket) + klen + 8;
		uri = malloc(ulen);
		if (!uri) {
			free(key);
			goto oom;
		}
		snprintf(uri, ulen, "s3://%s/%s", d.bucket, key);
		/* The head of the hash-chained journal this manifest reflects:
		 * `irfw verify --s3` finds it in the local chain, so a journal
		 * rewritten after the upload shows. */
		char head[65], mb64[45] = "", lines_text[32];
		long lines = 0;
		if (irfw_journal_head(t, head, &lines) == 0) {
			snprintf(lines_text, sizeof(lines_text), "%ld", lines);
			cJSON_AddStringToObject(meta, "irfw-journal-head", head);
			cJSON_AddStringToObject(meta, "irfw-journal-lines", lines_text);
		}
		/* Its own checksum, as for the artifacts: S3 checks the body. */
		char *mtext = read_range(mpath, 0, (uint64_t)sb.st_size);
		if (mtext)
			irfw_sha256(mtext, (size_t)sb.st_size, NULL, mb64);
		free(mtext);
		if (put_single(t, &d, key, mpath, "application/json", mb64[0] ? mb64 : NULL, meta, &put) !=
		    0) {
			st = irfw_fail_aws(
			    t,
			    "PutObject manifest.json to %s failed (%zu artifacts uploaded); evidence kept "
			    "in %s",
			    uri, n_up + n_kept, dir);
			free(key);
			goto out;
		}
		if (verify(t, &d, key, (uint64_t)sb.st_size, &put, why, sizeof(why)) != 0) {
			st = irfw_fail(t, "manifest.json: verification of %s failed: %s; evidence kept in %s",
			               uri, why, dir);
			put_free(&put);
			free(key);
			goto out;
		}
		cJSON *rec = cJSON_CreateObject();
		cJSON_AddStringToObject(rec, "uri", uri);
		if (put.etag)
			cJSON_AddStringToObject(rec, "etag", put.etag);
		if (put.version_id)
			cJSON_AddStringToObject(rec, "version_id", put.version_id);
		if (d.kms_arn)
			cJSON_AddStringToObject(rec, "kms_key", d.kms_arn);
		cJSON_AddStringToObject(rec, "region", d.region);
		cJSON_AddNumberToObject(rec, "artifacts", (double)(n_up + n_kept));
		if (cJSON_GetObjectItemCaseSensitive(meta, "irfw-journal-head")) {
			cJSON_AddStringToObject(rec, "journal_head", head);
			cJSON_AddNumberToObject(rec, "journal_lines", (double)lines);
		}
		if (!put.confirmed)
			n_unconfirmed++;
		/* What S3 itself confirmed, for the reader of the record. */
		cJSON_AddNumberToObject(rec, "checksum_unconfirmed", (double)n_unconfirmed);
		irfw_record_result(t, "manifest", rec);
		put_free(&put);
		free(key);
	}
	irfw_note(t, "%zu artifacts to s3://%s/%s (KMS key %s), bucket in %s", n_up + n_kept, d.bucket,
	          d.prefix, kms_text, d.region);
	if (n_kept)
		irfw_note(t, "%zu already uploaded by an earlier run", n_kept);
	if (n_unconfirmed)
		irfw_log(t, IRFW_LOG_INFO,
		         "S3 reported no SHA-256 checksum for %zu of the objects: checked by size, ETag and "
		         "KMS key only",
		         n_unconfirmed);
	st = IRFW_OK;
	goto out;
oom:
	st = irfw_fail(t, "out of memory; evidence kept in %s", dir);
out:
	cJSON_Delete(summary);
	cJSON_Delete(meta);
	free(uri);
	free(dir);
	free(d.bucket);
	free(d.prefix);
	return st;
}

/* `irfw check` and --dry-run: what a run would hit.  run() in a dry run
 * resolves the bucket's region (GetBucketLocation, or HeadBucket) and the
 * KMS key (DescribeKey: it must exist, be enabled, symmetric and in the
 * bucket's region) exactly as the real run does, and uploads nothing.
 * Then the calls that S3 and KMS cannot be asked about without doing them
 * is named as not checked: PutObject (S3 has no DryRun).  The data key S3
 * asks KMS for with the caller's rights is asked for with DryRun
 * (GenerateDataKey): KMS checks the permission and the key's state. */
static irfw_status check(irfw_target *t, void *state)
{
	irfw_status st = run(t, state);
	if (st != IRFW_OK || !irfw_target_dry_run(t))
		return st;
	irfw_step *step = irfw_target_step(t);
	char *bucket = bucket_of(t, step);
	if (!bucket)
		return irfw_fail(t, "cannot expand the bucket (see the log)");
	struct region_req brq;
	/* Found by run() a moment ago: the memo answers without a call. */
	const char *region = memo_region(t, bucket, &brq);
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "Bucket", bucket);
	cJSON_AddStringToObject(p, "Key", ".irfw-check");
	cJSON_AddStringToObject(p, "Body", "");
	irfw_aws_call_in(t, region, "s3", "PutObject", p, NULL);
	cJSON_Delete(p);

	struct kms_req rq;
	kms_spec(step, &rq);
	if (rq.spec && region) {
		char spec_region[64];
		const char *key_arn = memo_kms(t, &rq, region, spec_region);
		if (key_arn) {
			p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "KeyId", key_arn);
			cJSON_AddStringToObject(p, "KeySpec", "AES_256");
			/* Sent with DryRun: KMS answers whether this caller may
			 * have a data key of it, as S3 will ask on its behalf. */
			int krc = irfw_aws_call_in(t, region, "kms", "GenerateDataKey", p, NULL);
			cJSON_Delete(p);
			if (krc != 0) {
				free(bucket);
				return irfw_fail_aws(
				    t,
				    "KMS key %s: GenerateDataKey (dry run) refused: S3 could "
				    "not encrypt the evidence with it",
				    key_arn);
			}
			irfw_note(t, "KMS key %s is enabled and symmetric, in the bucket's region", key_arn);
		}
	}
	free(bucket);
	return IRFW_OK;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "s3:GetBucketLocation", .resource = "arn:aws:s3:::${opt:bucket}", .per = "run", .calls = 1},
    {.action = "s3:ListBucket", .resource = "arn:aws:s3:::${opt:bucket}", .per = "run"},
    {.action = "s3:PutObject", .resource = "arn:aws:s3:::${opt:bucket}/*", .per = "instance", .calls = 6},
    {.action = "s3:GetObject", .resource = "arn:aws:s3:::${opt:bucket}/*", .per = "instance"},
    {.action = "s3:AbortMultipartUpload", .resource = "arn:aws:s3:::${opt:bucket}/*", .per = "instance"},
    /* Object Lock: the bucket's configuration once, then the retention and
     * the legal hold ride with each object's creation. */
    {.action = "s3:GetBucketObjectLockConfiguration",
     .resource = "arn:aws:s3:::${opt:bucket}",
     .when = "object_lock!=none",
     .per = "run",
     .calls = 1},
    {.action = "s3:PutObjectRetention",
     .resource = "arn:aws:s3:::${opt:bucket}/*",
     .when = "object_lock!=none",
     .per = "instance"},
    {.action = "s3:PutObjectLegalHold",
     .resource = "arn:aws:s3:::${opt:bucket}/*",
     .when = "legal_hold=true",
     .per = "instance"},
    {.action = "kms:DescribeKey", .when = "allow_unencrypted=false", .per = "run", .calls = 1},
    {.action = "kms:ListKeys", .when = "kms_key_description", .per = "run", .calls = 1},
    /* SSE-KMS: S3 asks KMS for a data key with the caller's rights, and
     * for a multipart upload also to decrypt it. */
    {.action = "kms:GenerateDataKey", .when = "allow_unencrypted=false", .per = "instance"},
    {.action = "kms:Decrypt", .when = "allow_unencrypted=false", .per = "instance"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "upload",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "ship every artifact and the case manifest to S3 with SSE-KMS, checksums verified",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_REPORT,
    .init = init,
    .prepare = prepare,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = check,
    .run = run,
    .description =
        "Uploads every artifact of the case (the core's describe-instance.json, capture's files, anything "
        "other steps added) to s3://BUCKET/PREFIXNAME, encrypted with SSE-KMS, and then the case "
        "manifest as PREFIXmanifest.json. Each PutObject carries the SHA-256 the manifest recorded when the "
        "artifact was captured, so S3 refuses a body that changed since; large artifacts go up in parts, "
        "each part checked the same way, and a failed multipart upload is aborted. After each upload "
        "HeadObject confirms the object is there with the right size, checksum, and KMS key, and the "
        "object's URI, ETag, version id and key are recorded in the manifest.\n\n"
        "The bucket may be in another region than the run: its region is found once per run "
        "(GetBucketLocation, or HeadBucket in the run's region when that is refused) and every S3 call "
        "goes there. The KMS key is given by id, ARN or alias (kms_key), or by its description "
        "(kms_key_description, the rule of the tool irfw replaces). It is resolved once per run to its "
        "ARN, in the region its ARN names or else in the bucket's, and must be enabled. S3 encrypts only "
        "with a key of the bucket's region, so a key of another region is refused, naming both regions, "
        "before anything is uploaded. Without a key the step refuses to upload unless allow_unencrypted "
        "is set.\n\n"
        "The prefix is a folder: its empty segments are dropped (an instance without a Name tag makes "
        "${name_tag} empty), so no key has a leading slash or an empty segment.\n\n"
        "It runs last but for the notifications, so that the manifest it ships records every step before "
        "it and the notification can name where the evidence is. A failed upload leaves the evidence in "
        "the local case folder, which the failure message names; a re-run of the case uploads only what is "
        "not yet at the same place in S3.",
};

IRFW_PLUGIN_ENTRY(upload, plugin)
