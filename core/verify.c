/*
 * verify.c - `irfw verify`: the case record checked against itself and,
 * with --s3, against the copies in S3 (see verify.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>
#include <openssl/evp.h>

#include "verify.h"
#include "casestore.h"
#include "report.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/client.h"
#include "aws/sigv4.h"

/* One row of the table. */
struct row {
	char *name;
	const char *local, *chain, *s3;
	bool bad; /* any column mismatched or could not be checked */
};

/* One instance folder. */
struct inst {
	const char *dir;
	char *case_id, *instance_id;
	struct row *rows;
	size_t n_rows;
	cJSON *problems; /* strings, each naming what does not match */
	cJSON *notes;
	struct irfw_journal_check jc;
	bool have_jc;
};

/* The client, made at the first S3 call. */
struct ctx {
	const struct irfw_verify_opts *o;
	struct irfw_aws *aws;
	bool aws_failed;
};

static void problem(struct inst *in, const char *fmt, ...) IRFW_BASE_PRINTF(2, 3);

static void problem(struct inst *in, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = irfw_vstrfmt(fmt, ap);
	va_end(ap);
	cJSON_AddItemToArray(in->problems, cJSON_CreateString(s ? s : "out of memory"));
	free(s);
}

static void note(struct inst *in, const char *fmt, ...) IRFW_BASE_PRINTF(2, 3);

static void note(struct inst *in, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = irfw_vstrfmt(fmt, ap);
	va_end(ap);
	cJSON_AddItemToArray(in->notes, cJSON_CreateString(s ? s : "out of memory"));
	free(s);
}

static struct row *add_row(struct inst *in, const char *name)
{
	struct row *r = realloc(in->rows, (in->n_rows + 1) * sizeof(*r));
	if (!r)
		return NULL;
	in->rows = r;
	r += in->n_rows++;
	memset(r, 0, sizeof(*r));
	r->name = irfw_strdup(name);
	r->local = r->chain = r->s3 = "-";
	return r;
}

static const char *sfield(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double nfield(const cJSON *o, const char *k, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const cJSON *find_by_name(const cJSON *arr, const char *name)
{
	const cJSON *a;
	cJSON_ArrayForEach(a, arr)
	{
		const char *n = sfield(a, "name");
		if (n && strcmp(n, name) == 0)
			return a;
	}
	return NULL;
}

static bool name_ok(const char *n)
{
	if (!n || !*n || n[0] == '.' || strlen(n) > 255)
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* SHA-256 (hex) and size of a file, streamed.  -1 with errno. */
static int hash_file(const char *path, char hex[65], unsigned long long *size)
{
	static const char digits[] = "0123456789abcdef";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536], dg[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	unsigned long long total = 0;
	int rc = -1;
	if (!md || EVP_DigestInit_ex(md, irfw_sha256_md(), NULL) != 1)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto out;
		total += (unsigned long long)n;
	}
	if (EVP_DigestFinal_ex(md, dg, &dl) != 1 || dl != 32)
		goto out;
	for (unsigned i = 0; i < 32; i++) {
		hex[2 * i] = digits[dg[i] >> 4];
		hex[2 * i + 1] = digits[dg[i] & 0xf];
	}
	hex[64] = '\0';
	*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	close(fd);
	return rc;
}

/* The hex SHA-256 as S3 reports it: base64 of the digest (OpenSSL). */
static bool hex_to_b64(const char *hex, char out[45])
{
	unsigned char raw[32];
	if (!hex || strlen(hex) != 64)
		return false;
	for (size_t i = 0; i < 32; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char ch = hex[2 * i + (size_t)k];
			int d = ch >= '0' && ch <= '9'   ? ch - '0'
			        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			                                 : -1;
			if (d < 0)
				return false;
			v = v * 16 + d;
		}
		raw[i] = (unsigned char)v;
	}
	EVP_EncodeBlock((unsigned char *)out, raw, 32);
	return true;
}

/* A copy of m without what changes at every save or is the journal's own
 * bookkeeping (checked separately). */
static cJSON *comparable(const cJSON *m)
{
	static const char *const volatile_keys[] = {"updated", "journal_bytes", "journal_lines",
	                                            "journal_head", "journal_chained_from"};
	cJSON *c = cJSON_Duplicate(m, true);
	for (size_t i = 0; c && i < sizeof(volatile_keys) / sizeof(volatile_keys[0]); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(c, volatile_keys[i]);
	return c;
}

/* ------------------------------------------------------------------ */
/* S3.                                                                  */

static struct irfw_aws *client(struct ctx *cx, const char *region)
{
	if (cx->aws || cx->aws_failed)
		return cx->aws;
	char err[512] = "";
	struct irfw_aws_config c = {
	    .region = cx->o->region ? cx->o->region : region,
	    .profile = cx->o->profile,
	    .endpoint_url = cx->o->endpoint_url,
	    .ca_file = cx->o->ca_file,
	    .s3_path_style = cx->o->s3_path_style,
	};
	if (irfw_aws_new(&c, &cx->aws, err, sizeof(err)) != 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "verify --s3: %s", err);
		cx->aws = NULL;
		cx->aws_failed = true;
	}
	return cx->aws;
}

/* s3://bucket/key -> bucket, key (malloc'd); false when not such a URI. */
static bool split_uri(const char *uri, char **bucket, char **key)
{
	if (!uri || strncmp(uri, "s3://", 5) != 0)
		return false;
	const char *b = uri + 5, *slash = strchr(b, '/');
	if (!slash || slash == b || !slash[1])
		return false;
	*bucket = irfw_strfmt("%.*s", (int)(slash - b), b);
	*key = irfw_strdup(slash + 1);
	return *bucket && *key;
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

/* One S3 call; on failure names the call, the object, the AWS error and
 * its request id among the instance's problems. */
static int s3_call(struct ctx *cx, struct inst *in, const char *region, const char *op, const char *bucket,
                   const char *key, cJSON **res)
{
	struct irfw_aws *a = client(cx, region);
	if (!a) {
		problem(in, "s3://%s/%s: no AWS client (see the error above)", bucket, key);
		return -1;
	}
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "Bucket", bucket);
	cJSON_AddStringToObject(p, "Key", key);
	if (strcmp(op, "HeadObject") == 0)
		cJSON_AddStringToObject(p, "ChecksumMode", "ENABLED");
	struct irfw_aws_error e;
	char rid[128] = "";
	memset(&e, 0, sizeof(e));
	int rc = irfw_aws_request(a, region, "s3", op, p, false, res, &e, rid);
	cJSON_Delete(p);
	if (rc != 0)
		problem(in, "s3://%s/%s: %s failed: %s%s%s (HTTP %ld, request %s)", bucket, key, op,
		        e.code[0] ? e.code : "error", e.message[0] ? ": " : "", e.message, e.http_status,
		        e.request_id[0] ? e.request_id : "-");
	return rc;
}

/* Compare an uploaded artifact with its manifest entry. */
static const char not_uploaded[] = "not uploaded";

static const char *s3_artifact(struct ctx *cx, struct inst *in, const char *region, const cJSON *a)
{
	const char *name = sfield(a, "name"), *uri = sfield(a, "uri");
	char *bucket = NULL, *key = NULL;
	cJSON *res = NULL;
	const char *verdict = "ERROR";
	if (!uri)
		return not_uploaded;
	if (!split_uri(uri, &bucket, &key)) {
		problem(in, "%s: recorded location %s is not an s3:// URI", name, uri);
		goto out;
	}
	if (s3_call(cx, in, region, "HeadObject", bucket, key, &res) != 0) {
		verdict = "MISSING";
		goto out;
	}
	verdict = "CHANGED";
	bool bad = false;
	double size = nfield(a, "size", -1);
	long got = -1;
	const char *len = sfield(res, "ContentLength");
	if (len) {
		char *end = NULL;
		got = strtol(len, &end, 10);
		if (!end || *end)
			got = -1;
	}
	if (got < 0 || (double)got != size) {
		problem(in, "%s: %s is %s bytes in S3, the manifest says %.0f", name, uri, len ? len : "?",
		        size);
		bad = true;
	}
	char want[45];
	const char *ck = sfield(res, "ChecksumSHA256");
	if (ck && hex_to_b64(sfield(a, "sha256"), want)) {
		if (strchr(ck, '-'))
			irfw_logf(IRFW_LOG_INFO, NULL,
			          "%s: %s has a multipart checksum %s (not compared; size, "
			          "ETag and key are)",
			          name, uri, ck);
		else if (strcmp(ck, want) != 0) {
			problem(in, "%s: SHA-256 checksum of %s in S3 is %s, the manifest's is %s", name, uri,
			        ck, want);
			bad = true;
		}
	} else if (!ck) {
		note(in, "%s: S3 reports no SHA-256 checksum for %s (compared by size, ETag and key only)",
		     name, uri);
	}
	const char *etag = sfield(res, "ETag"), *etag_rec = sfield(a, "etag");
	if (etag && etag_rec) {
		char x[160], y[160];
		strip_quotes(etag, x, sizeof(x));
		strip_quotes(etag_rec, y, sizeof(y));
		if (strcmp(x, y) != 0) {
			problem(in, "%s: ETag of %s in S3 is %s, the upload's was %s (overwritten?)", name,
			        uri, etag, etag_rec);
			bad = true;
		}
	}
	const char *ver = sfield(res, "VersionId"), *ver_rec = sfield(a, "version_id");
	if (ver_rec && (!ver || strcmp(ver, ver_rec) != 0)) {
		problem(in, "%s: current version of %s is %s, the upload made %s (overwritten)", name, uri,
		        ver ? ver : "(none)", ver_rec);
		bad = true;
	}
	const char *kms = sfield(a, "kms_key"), *kid = sfield(res, "SSEKMSKeyId");
	if (kms && (!kid || strcmp(kms, kid) != 0)) {
		problem(in, "%s: %s is encrypted with KMS key %s in S3, the manifest says %s", name, uri,
		        kid ? kid : "(none)", kms);
		bad = true;
	}
	if (!bad)
		verdict = "ok";
out:
	cJSON_Delete(res);
	free(bucket);
	free(key);
	return verdict;
}

/* The uploaded manifest: read back, its journal head must be a line of the
 * local chain (the record then was a prefix of the record now), and its
 * artifacts the local ones. */
static const char *s3_manifest(struct ctx *cx, struct inst *in, const char *region, const cJSON *rec,
                               const cJSON *local)
{
	const char *uri = sfield(rec, "uri");
	char *bucket = NULL, *key = NULL;
	cJSON *res = NULL, *m = NULL;
	const char *verdict = "ERROR";
	if (!uri)
		return "not uploaded";
	if (!split_uri(uri, &bucket, &key)) {
		problem(in, "manifest.json: recorded location %s is not an s3:// URI", uri);
		goto out;
	}
	if (s3_call(cx, in, region, "GetObject", bucket, key, &res) != 0) {
		verdict = "MISSING";
		goto out;
	}
	verdict = "CHANGED";
	const char *body = sfield(res, "Body");
	m = body ? cJSON_Parse(body) : NULL;
	if (!cJSON_IsObject(m)) {
		problem(in, "manifest.json: %s is not a JSON manifest", uri);
		goto out;
	}
	bool bad = false;
	const char *head = sfield(m, "journal_head");
	long lines = (long)nfield(m, "journal_lines", 0);
	if (!head) {
		cJSON_AddItemToArray(
		    in->notes, cJSON_CreateString("manifest.json in S3 quotes no journal head (uploaded "
		                                  "by an older irfw): only its artifacts are compared"));
	} else if (lines < 1 || lines > in->jc.lines || strcmp(in->jc.hashes[lines - 1], head) != 0) {
		long at = 0;
		for (long i = 0; i < in->jc.lines && !at; i++)
			if (strcmp(in->jc.hashes[i], head) == 0)
				at = i + 1;
		if (at)
			problem(
			    in,
			    "manifest.json: %s quotes journal head %.16s... at line %ld, found at line %ld",
			    uri, head, lines, at);
		else
			problem(in,
			        "manifest.json: journal head %.16s... quoted by %s is no line of the local "
			        "journal (the journal was rewritten after the upload)",
			        head, uri);
		bad = true;
	} else {
		note(in, "manifest.json in S3 quotes the journal head of line %ld of %ld", lines,
		     in->jc.lines);
	}
	const char *cid = sfield(m, "case_id"), *iid = sfield(m, "instance_id");
	if (!cid || !iid || strcmp(cid, in->case_id) != 0 || strcmp(iid, in->instance_id) != 0) {
		problem(in, "manifest.json: %s is the manifest of %s/%s, not of %s/%s", uri, cid ? cid : "?",
		        iid ? iid : "?", in->case_id, in->instance_id);
		bad = true;
	}
	const cJSON *a;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(m, "artifacts"))
	{
		const char *name = sfield(a, "name"), *sha = sfield(a, "sha256");
		const cJSON *la =
		    name ? find_by_name(cJSON_GetObjectItemCaseSensitive(local, "artifacts"), name) : NULL;
		const char *lsha = sfield(la, "sha256");
		if (!la || !sha || !lsha || strcmp(sha, lsha) != 0 ||
		    nfield(a, "size", -1) != nfield(la, "size", -2)) {
			problem(in, "manifest.json: %s lists %s with SHA-256 %s, the local manifest %s", uri,
			        name ? name : "?", sha ? sha : "?", lsha ? lsha : "nothing");
			bad = true;
		}
	}
	if (!bad)
		verdict = "ok";
out:
	cJSON_Delete(res);
	cJSON_Delete(m);
	free(bucket);
	free(key);
	return verdict;
}

/* ------------------------------------------------------------------ */
/* One instance folder.                                                */

static char *base_name(const char *path, int up)
{
	char *p = irfw_strdup(path);
	if (!p)
		return NULL;
	for (int i = 0; i <= up; i++) {
		size_t l = strlen(p);
		while (l > 1 && p[l - 1] == '/')
			p[--l] = '\0';
		char *s = strrchr(p, '/');
		if (i == up) {
			char *out = irfw_strdup(s ? s + 1 : p);
			free(p);
			return out;
		}
		if (!s) {
			free(p);
			return NULL;
		}
		*s = '\0';
	}
	free(p);
	return NULL;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct irfw_buf b = {0};
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		irfw_buf_add(&b, chunk, n);
	fclose(f);
	irfw_buf_puts(&b, "");
	return irfw_buf_take(&b);
}

static void check_instance(struct ctx *cx, struct inst *in)
{
	char *mpath = irfw_strfmt("%s/manifest.json", in->dir),
	     *jpath = irfw_strfmt("%s/journal.jsonl", in->dir);
	char *text = mpath ? read_text(mpath) : NULL;
	cJSON *m = text ? cJSON_Parse(text) : NULL;
	char err[512] = "";
	struct stat st;
	free(text);

	/* The journal: chain and replay. */
	struct row *jr = add_row(in, "journal.jsonl");
	if (jpath &&
	    irfw_case_check_journal(jpath, in->case_id, in->instance_id, &in->jc, err, sizeof(err)) == 0) {
		in->have_jc = true;
		const cJSON *p;
		cJSON_ArrayForEach(p, in->jc.problems) problem(in, "journal.jsonl: %s", p->valuestring);
		cJSON_ArrayForEach(p, in->jc.notes)
		    cJSON_AddItemToArray(in->notes, cJSON_CreateString(p->valuestring));
		if (jr) {
			jr->local = "ok";
			jr->chain = cJSON_GetArraySize(in->jc.problems)        ? "BROKEN"
			            : in->jc.chained_from == 0 && in->jc.lines ? "none (old)"
			            : in->jc.chained_from > 1                  ? "ok (partial)"
			                                                       : "ok";
			jr->bad = cJSON_GetArraySize(in->jc.problems) > 0;
		}
	} else {
		problem(in, "journal.jsonl: %s", err[0] ? err : "cannot be read");
		if (jr) {
			jr->local = "MISSING";
			jr->bad = true;
		}
	}

	/* The manifest against the journal. */
	struct row *mr = add_row(in, "manifest.json");
	size_t mi = in->n_rows - 1;
	if (!cJSON_IsObject(m)) {
		problem(in, "manifest.json: %s", m ? "not a JSON object" : "missing or not valid JSON");
		if (mr) {
			mr->local = "MISSING";
			mr->bad = true;
		}
	} else if (mr) {
		mr->local = "ok";
		if (in->have_jc) {
			bool bad = false;
			const char *head = sfield(m, "journal_head");
			double lines = nfield(m, "journal_lines", -1), bytes = nfield(m, "journal_bytes", -1);
			if (head && strcmp(head, in->jc.head) != 0) {
				problem(in,
				        "manifest.json: journal_head %.16s... is not the journal's last line "
				        "(%.16s...): lines removed from or added to its end",
				        head, in->jc.head);
				bad = true;
			}
			if (lines >= 0 && (long)lines != in->jc.lines) {
				problem(in, "manifest.json: journal_lines is %.0f, the journal has %ld lines",
				        lines, in->jc.lines);
				bad = true;
			}
			if (jpath && stat(jpath, &st) == 0 && bytes >= 0 && (off_t)bytes != st.st_size) {
				problem(in,
				        "manifest.json: journal_bytes is %.0f, the journal has %lld bytes",
				        bytes, (long long)st.st_size);
				bad = true;
			}
			if (!head && in->jc.chained_from)
				cJSON_AddItemToArray(in->notes,
				                     cJSON_CreateString("manifest.json has no journal_head"));
			cJSON *x = comparable(m), *y = comparable(in->jc.replayed);
			if (!cJSON_Compare(x, y, true)) {
				/* Name what differs, at the top level. */
				const cJSON *it;
				cJSON_ArrayForEach(it, x)
				{
					const cJSON *o = cJSON_GetObjectItemCaseSensitive(y, it->string);
					if (!o || !cJSON_Compare(it, o, true))
						problem(
						    in,
						    "manifest.json: \"%s\" is not what replaying the journal "
						    "gives",
						    it->string);
				}
				cJSON_ArrayForEach(it, y)
				{
					if (!cJSON_GetObjectItemCaseSensitive(x, it->string))
						problem(in, "manifest.json: \"%s\" missing", it->string);
				}
				bad = true;
			}
			cJSON_Delete(x);
			cJSON_Delete(y);
			mr->chain = bad ? "DIFFERS" : "ok";
			mr->bad = bad;
		}
	}

	/* Where the upload step put things. */
	const cJSON *up_rec = NULL;
	const char *region = NULL;
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(m, "steps"), *s;
	cJSON_ArrayForEach(s, steps)
	{
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(s, "records"), "manifest");
		if (sfield(r, "uri")) {
			up_rec = r;
			region = sfield(r, "region");
		}
	}

	/* Each artifact: on disk, in the journal, in S3. */
	const cJSON *arts = cJSON_GetObjectItemCaseSensitive(m, "artifacts"), *a;
	const cJSON *rarts =
	    in->have_jc ? cJSON_GetObjectItemCaseSensitive(in->jc.replayed, "artifacts") : NULL;
	cJSON_ArrayForEach(a, arts)
	{
		const char *name = sfield(a, "name"), *sha = sfield(a, "sha256");
		struct row *r = add_row(in, name ? name : "?");
		if (!r)
			break;
		if (!name_ok(name)) {
			problem(in, "artifact \"%s\": not a plain file name", name ? name : "?");
			r->local = "BAD NAME";
			r->bad = true;
			continue;
		}
		char *path = irfw_strfmt("%s/%s", in->dir, name), hex[65];
		unsigned long long size = 0;
		if (!path || hash_file(path, hex, &size) != 0) {
			problem(in, "%s: cannot read %s: %s", name, path ? path : name, strerror(errno));
			r->local = "MISSING";
			r->bad = true;
		} else if (!sha || strcmp(hex, sha) != 0) {
			problem(in, "%s: SHA-256 on disk is %s, the manifest's is %s", name, hex,
			        sha ? sha : "none");
			r->local = "CHANGED";
			r->bad = true;
		} else if ((double)size != nfield(a, "size", -1)) {
			problem(in, "%s: %llu bytes on disk, the manifest says %.0f", name, size,
			        nfield(a, "size", -1));
			r->local = "CHANGED";
			r->bad = true;
		} else {
			r->local = "ok";
		}
		free(path);
		if (in->have_jc) {
			const cJSON *ra = find_by_name(rarts, name);
			if (!ra) {
				problem(in, "%s: in the manifest but in no journal line", name);
				r->chain = "NOT IN JOURNAL";
				r->bad = true;
			} else if (!cJSON_Compare(a, ra, true)) {
				problem(in, "%s: the manifest's entry differs from the journal's", name);
				r->chain = "DIFFERS";
				r->bad = true;
			} else {
				r->chain = cJSON_GetArraySize(in->jc.problems) ? "BROKEN" : "ok";
			}
		}
		if (cx->o->s3) {
			r->s3 = s3_artifact(cx, in, region, a);
			if (strcmp(r->s3, "ok") != 0 && r->s3 != not_uploaded)
				r->bad = true;
		}
	}
	/* What the journal holds and the manifest dropped. */
	cJSON_ArrayForEach(a, rarts)
	{
		const char *name = sfield(a, "name");
		if (name && !find_by_name(arts, name)) {
			struct row *r = add_row(in, name);
			problem(in, "%s: in the journal but not in the manifest", name);
			if (r) {
				r->local = "NOT IN MANIFEST";
				r->chain = "ok";
				r->bad = true;
			}
		}
	}
	mr = mi < in->n_rows ? &in->rows[mi] : NULL; /* add_row() moves the rows */
	if (cx->o->s3 && mr && cJSON_IsObject(m)) {
		if (!up_rec) {
			mr->s3 = "not uploaded";
		} else {
			mr->s3 = s3_manifest(cx, in, region, up_rec, m);
			if (strcmp(mr->s3, "ok") != 0)
				mr->bad = true;
		}
	}
	cJSON_Delete(m);
	free(mpath);
	free(jpath);
}

/* ------------------------------------------------------------------ */
/* Output.                                                             */

static bool inst_ok(const struct inst *in)
{
	if (cJSON_GetArraySize(in->problems))
		return false;
	for (size_t i = 0; i < in->n_rows; i++)
		if (in->rows[i].bad)
			return false;
	return true;
}

static void print_text(const struct inst *in, bool s3)
{
	char *c = irfw_escape_text(in->case_id), *i = irfw_escape_text(in->instance_id),
	     *d = irfw_escape_text(in->dir);
	printf("case %s, instance %s (%s)\n", c ? c : "", i ? i : "", d ? d : "");
	free(c);
	free(i);
	free(d);
	size_t w = strlen("ARTIFACT");
	for (size_t k = 0; k < in->n_rows; k++)
		if (in->rows[k].name && strlen(in->rows[k].name) > w)
			w = strlen(in->rows[k].name);
	printf("  %-*s  %-16s  %-14s  %s\n", (int)w, "ARTIFACT", "LOCAL", "CHAIN", s3 ? "S3" : "");
	for (size_t k = 0; k < in->n_rows; k++) {
		const struct row *r = &in->rows[k];
		char *n = irfw_escape_text(r->name ? r->name : "?");
		printf("  %-*s  %-16s  %-14s  %s\n", (int)w, n ? n : "?", r->local, r->chain,
		       s3 ? r->s3 : "");
		free(n);
	}
	const cJSON *p;
	cJSON_ArrayForEach(p, in->notes)
	{
		char *e = irfw_escape_text(p->valuestring);
		printf("  note: %s\n", e ? e : "");
		free(e);
	}
	cJSON_ArrayForEach(p, in->problems)
	{
		char *e = irfw_escape_text(p->valuestring);
		printf("  MISMATCH: %s\n", e ? e : "");
		free(e);
	}
	if (in->have_jc)
		printf("  journal: %ld lines, head %s\n", in->jc.lines, in->jc.head);
	printf("  %s\n\n", inst_ok(in) ? "verified: everything matches"
	                               : "NOT VERIFIED: the record does not match (see above)");
}

static cJSON *inst_json(const struct inst *in)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "case_id", in->case_id);
	cJSON_AddStringToObject(o, "instance_id", in->instance_id);
	cJSON_AddStringToObject(o, "dir", in->dir);
	cJSON_AddBoolToObject(o, "ok", inst_ok(in));
	cJSON *j = cJSON_AddObjectToObject(o, "journal");
	if (in->have_jc) {
		cJSON_AddNumberToObject(j, "lines", (double)in->jc.lines);
		cJSON_AddNumberToObject(j, "chained_from", (double)in->jc.chained_from);
		cJSON_AddStringToObject(j, "head", in->jc.head);
		cJSON_AddBoolToObject(j, "chain_ok", cJSON_GetArraySize(in->jc.problems) == 0);
	}
	cJSON *rows = cJSON_AddArrayToObject(o, "artifacts");
	for (size_t k = 0; k < in->n_rows; k++) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "name", in->rows[k].name ? in->rows[k].name : "?");
		cJSON_AddStringToObject(r, "local", in->rows[k].local);
		cJSON_AddStringToObject(r, "chain", in->rows[k].chain);
		cJSON_AddStringToObject(r, "s3", in->rows[k].s3);
		cJSON_AddBoolToObject(r, "ok", !in->rows[k].bad);
		cJSON_AddItemToArray(rows, r);
	}
	cJSON_AddItemToObject(o, "problems", cJSON_Duplicate(in->problems, true));
	cJSON_AddItemToObject(o, "notes", cJSON_Duplicate(in->notes, true));
	return o;
}

static void inst_free(struct inst *in)
{
	for (size_t k = 0; k < in->n_rows; k++)
		free(in->rows[k].name);
	free(in->rows);
	free(in->case_id);
	free(in->instance_id);
	cJSON_Delete(in->problems);
	cJSON_Delete(in->notes);
	irfw_journal_check_free(&in->jc);
}

static bool is_instance_dir(const char *dir)
{
	char *j = irfw_strfmt("%s/journal.jsonl", dir), *m = irfw_strfmt("%s/manifest.json", dir);
	struct stat st;
	bool yes = (j && stat(j, &st) == 0) || (m && stat(m, &st) == 0);
	free(j);
	free(m);
	return yes;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int irfw_verify_case(const char *path, const struct irfw_verify_opts *o)
{
	struct stat st;
	if (!path || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "verify: %s: %s", path ? path : "(none)",
		          path && stat(path, &st) != 0 ? strerror(errno) : "not a folder");
		return 2;
	}
	/* The instance folders to check. */
	char **dirs = NULL;
	size_t n = 0;
	if (is_instance_dir(path)) {
		dirs = calloc(1, sizeof(*dirs));
		if (dirs && (dirs[0] = irfw_strdup(path)))
			n = 1;
	} else {
		DIR *d = opendir(path);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char *sub = irfw_strfmt("%s/%s", path, de->d_name);
			char **nd =
			    sub && is_instance_dir(sub) ? realloc(dirs, (n + 1) * sizeof(*dirs)) : NULL;
			if (!nd) {
				free(sub);
				continue;
			}
			dirs = nd;
			dirs[n++] = sub;
		}
		if (d)
			closedir(d);
		if (n)
			qsort(dirs, n, sizeof(*dirs), by_name);
	}
	if (n == 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "verify: %s holds no case record (journal.jsonl or manifest.json), nor do its "
		          "folders: give <evidence_dir>/<case> or <evidence_dir>/<case>/<instance>",
		          path);
		free(dirs);
		return 2;
	}

	struct ctx cx = {.o = o};
	bool all_ok = true;
	cJSON *doc = o->json ? cJSON_CreateObject() : NULL, *list = NULL;
	if (doc) {
		/* The document's kind and version (doc/irfw-output.schema.json). */
		cJSON_AddStringToObject(doc, "format", "irfw-verify/1");
		cJSON_AddStringToObject(doc, "path", path);
		cJSON_AddBoolToObject(doc, "s3", o->s3);
		list = cJSON_AddArrayToObject(doc, "instances");
	}
	for (size_t k = 0; k < n; k++) {
		struct inst in;
		memset(&in, 0, sizeof(in));
		in.dir = dirs[k];
		in.instance_id = base_name(dirs[k], 0);
		in.case_id = base_name(dirs[k], 1);
		in.problems = cJSON_CreateArray();
		in.notes = cJSON_CreateArray();
		if (!in.instance_id || !in.case_id || !in.problems || !in.notes) {
			irfw_logf(IRFW_LOG_ERROR, NULL, "verify: out of memory");
			inst_free(&in);
			all_ok = false;
			break;
		}
		check_instance(&cx, &in);
		if (!inst_ok(&in))
			all_ok = false;
		if (doc)
			cJSON_AddItemToArray(list, inst_json(&in));
		else
			print_text(&in, o->s3);
		inst_free(&in);
	}
	if (doc) {
		cJSON_AddBoolToObject(doc, "ok", all_ok);
		irfw_json_doc_put(doc);
	} else {
		printf("%s\n", all_ok ? "irfw verify: every record matches" : "irfw verify: MISMATCH");
	}
	for (size_t k = 0; k < n; k++)
		free(dirs[k]);
	free(dirs);
	irfw_aws_free(cx.aws);
	return all_ok ? 0 : 1;
}
