/*
 * aws_proto.c - services, endpoints, and turning parameters into requests
 * for the EC2 query, AWS query, REST-XML (S3) and JSON 1.1 protocols.
 */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol.h"
#include "sigv4.h"

static const struct irfw_service services[] = {
    {"ec2", "ec2", "ec2", "EC2", IRFW_WIRE_EC2, "2016-11-15", NULL, false},
    {"autoscaling", "autoscaling", "autoscaling", "AUTO_SCALING", IRFW_WIRE_QUERY, "2011-01-01", NULL, false},
    {"elasticloadbalancing", "elasticloadbalancing", "elasticloadbalancing", "ELASTIC_LOAD_BALANCING_V2",
     IRFW_WIRE_QUERY, "2015-12-01", NULL, false},
    {"elbv2", "elasticloadbalancing", "elasticloadbalancing", "ELASTIC_LOAD_BALANCING_V2", IRFW_WIRE_QUERY,
     "2015-12-01", NULL, false},
    {"elb", "elasticloadbalancing", "elasticloadbalancing", "ELASTIC_LOAD_BALANCING", IRFW_WIRE_QUERY,
     "2012-06-01", NULL, false},
    {"sns", "sns", "sns", "SNS", IRFW_WIRE_QUERY, "2010-03-31", NULL, false},
    {"sts", "sts", "sts", "STS", IRFW_WIRE_QUERY, "2011-06-15", NULL, false},
    {"iam", "iam", "iam", "IAM", IRFW_WIRE_QUERY, "2010-05-08", NULL, true},
    {"s3", "s3", "s3", "S3", IRFW_WIRE_REST_XML, NULL, NULL, false},
    {"kms", "kms", "kms", "KMS", IRFW_WIRE_JSON, NULL, "TrentService", false},
    {"ssm", "ssm", "ssm", "SSM", IRFW_WIRE_JSON, NULL, "AmazonSSM", false},
};

const struct irfw_service *irfw_service_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(services) / sizeof(services[0]); i++)
		if (strcmp(services[i].name, name) == 0)
			return &services[i];
	return NULL;
}

const char *irfw_partition_suffix(const char *region)
{
	return region && strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

int irfw_endpoint_resolve(const struct irfw_service *svc, const char *region, const char *override,
                          char **url, char **sign_region)
{
	*url = NULL;
	*sign_region = NULL;
	if (!region || !*region)
		return -1;
	if (override && *override) {
		size_t n = strlen(override);
		while (n && override[n - 1] == '/')
			n--;
		*url = strndup(override, n);
		*sign_region = strdup(svc->global && strcmp(svc->name, "iam") == 0 ? "us-east-1" : region);
		if (svc->global && strncmp(region, "cn-", 3) == 0) {
			free(*sign_region);
			*sign_region = strdup("cn-north-1");
		}
		return *url && *sign_region ? 0 : -1;
	}
	const char *suffix = irfw_partition_suffix(region);
	if (svc->global) {
		/* IAM: one endpoint per partition, signed for its home region. */
		if (strncmp(region, "cn-", 3) == 0) {
			*url = irfw_strfmt("https://%s.cn-north-1.%s", svc->prefix, suffix);
			*sign_region = strdup("cn-north-1");
		} else if (strncmp(region, "us-gov-", 7) == 0) {
			*url = irfw_strfmt("https://%s.us-gov.%s", svc->prefix, suffix);
			*sign_region = strdup("us-gov-west-1");
		} else {
			*url = irfw_strfmt("https://%s.%s", svc->prefix, suffix);
			*sign_region = strdup("us-east-1");
		}
	} else {
		*url = irfw_strfmt("https://%s.%s.%s", svc->prefix, region, suffix);
		*sign_region = strdup(region);
	}
	return *url && *sign_region ? 0 : -1;
}

bool irfw_operation_mutates(const char *op)
{
	static const char *readers[] = {"Describe", "Get", "List", "Head", "Lookup", NULL};
	for (const char **p = readers; *p; p++) {
		size_t n = strlen(*p);
		if (strncmp(op, *p, n) == 0 && (op[n] == '\0' || isupper((unsigned char)op[n])))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Query protocols.                                                    */

/* application/x-www-form-urlencoded: as the SDKs send it, a space is '+'
 * (a literal '+' is %2B).  AWS takes %20 too, but some emulators' signature
 * checks only take '+'. */
static char *form_encode(const char *s)
{
	char *e = irfw_uri_encode(s, strlen(s), false);
	if (!e)
		return NULL;
	char *w = e;
	for (const char *r = e; *r;) {
		if (r[0] == '%' && r[1] == '2' && r[2] == '0') {
			*w++ = '+';
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return e;
}

static void add_pair(struct irfw_buf *b, const char *name, const char *value)
{
	char *n = form_encode(name);
	char *v = form_encode(value);
	if (n && v)
		irfw_buf_printf(b, "&%s=%s", n, v);
	free(n);
	free(v);
}

static void scalar_text(const cJSON *v, char *out, size_t n)
{
	if (cJSON_IsBool(v))
		snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
	else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9e15)
		snprintf(out, n, "%.0f", v->valuedouble);
	else if (cJSON_IsNumber(v))
		snprintf(out, n, "%.17g", v->valuedouble);
	else
		out[0] = '\0';
}

static void flatten(struct irfw_buf *b, const char *prefix, const cJSON *v, bool ec2)
{
	if (cJSON_IsArray(v)) {
		int i = 1;
		const cJSON *it;
		cJSON_ArrayForEach(it, v)
		{
			char *p =
			    ec2 ? irfw_strfmt("%s.%d", prefix, i) : irfw_strfmt("%s.member.%d", prefix, i);
			if (p)
				flatten(b, p, it, ec2);
			free(p);
			i++;
		}
		/* An empty list is sent as the bare name with no value. */
		if (i == 1 && !ec2)
			add_pair(b, prefix, "");
	} else if (cJSON_IsObject(v)) {
		const cJSON *it;
		cJSON_ArrayForEach(it, v)
		{
			char *p = *prefix ? irfw_strfmt("%s.%s", prefix, it->string) : strdup(it->string);
			if (p)
				flatten(b, p, it, ec2);
			free(p);
		}
	} else if (cJSON_IsString(v)) {
		add_pair(b, prefix, v->valuestring);
	} else if (!cJSON_IsNull(v)) {
		char text[64];
		scalar_text(v, text, sizeof(text));
		add_pair(b, prefix, text);
	}
}

char *irfw_query_body(const struct irfw_service *svc, const char *operation, const cJSON *params)
{
	struct irfw_buf b = {0};
	irfw_buf_puts(&b, "Action=");
	char *op = irfw_uri_encode(operation, strlen(operation), false);
	irfw_buf_puts(&b, op ? op : "");
	free(op);
	add_pair(&b, "Version", svc->api_version);
	if (params)
		flatten(&b, "", params, svc->wire == IRFW_WIRE_EC2);
	return b.data;
}

/* ------------------------------------------------------------------ */
/* S3.                                                                 */

bool irfw_s3_bucket_dns_ok(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-'))
			return false; /* dots break TLS wildcard certificates */
	return b[0] != '-' && b[n - 1] != '-';
}

static const char *str_param(const cJSON *p, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Parameters sent as request headers. */
static const struct {
	const char *param, *header;
} s3_headers[] = {
    {"ContentType", "Content-Type"},
    {"ContentMD5", "Content-MD5"},
    {"ServerSideEncryption", "x-amz-server-side-encryption"},
    {"SSEKMSKeyId", "x-amz-server-side-encryption-aws-kms-key-id"},
    {"BucketKeyEnabled", "x-amz-server-side-encryption-bucket-key-enabled"},
    {"ChecksumSHA256", "x-amz-checksum-sha256"},
    /* ChecksumAlgorithm is an instruction to the client (client.c computes
     * x-amz-checksum-sha256 and names the algorithm as the SDKs do). */
    {"ChecksumMode", "x-amz-checksum-mode"},
    {"Tagging", "x-amz-tagging"},
    {"ObjectLockMode", "x-amz-object-lock-mode"},
    {"ObjectLockRetainUntilDate", "x-amz-object-lock-retain-until-date"},
    {"ObjectLockLegalHoldStatus", "x-amz-object-lock-legal-hold"},
    {"ExpectedBucketOwner", "x-amz-expected-bucket-owner"},
    {"Range", "Range"},
    {NULL, NULL},
};

static int read_body_file(const cJSON *p, struct irfw_s3_request *rq, char *err, size_t errlen)
{
	const char *file = str_param(p, "BodyFile");
	const cJSON *off = cJSON_GetObjectItemCaseSensitive(p, "BodyOffset");
	const cJSON *len = cJSON_GetObjectItemCaseSensitive(p, "BodyLength");
	FILE *f = fopen(file, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", file, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0) {
		snprintf(err, errlen, "cannot stat %s: %s", file, strerror(errno));
		fclose(f);
		return -1;
	}
	long long start = cJSON_IsNumber(off) ? (long long)off->valuedouble : 0;
	long long n = cJSON_IsNumber(len) ? (long long)len->valuedouble : (long long)st.st_size - start;
	if (start < 0 || n < 0 || start + n > (long long)st.st_size || n > (1LL << 30)) {
		snprintf(err, errlen, "%s: range %lld+%lld outside the file (%lld bytes)", file, start, n,
		         (long long)st.st_size);
		fclose(f);
		return -1;
	}
	rq->body = malloc((size_t)n + 1);
	if (!rq->body || fseeko(f, (off_t)start, SEEK_SET) != 0 ||
	    (n && fread(rq->body, 1, (size_t)n, f) != (size_t)n)) {
		snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno ? errno : EIO));
		fclose(f);
		return -1;
	}
	fclose(f);
	rq->body_len = (size_t)n;
	return 0;
}

static char *xml_escape(const char *s)
{
	struct irfw_buf b = {0};
	irfw_buf_puts(&b, "");
	for (; *s; s++) {
		switch (*s) {
		case '&':
			irfw_buf_puts(&b, "&amp;");
			break;
		case '<':
			irfw_buf_puts(&b, "&lt;");
			break;
		case '>':
			irfw_buf_puts(&b, "&gt;");
			break;
		case '"':
			irfw_buf_puts(&b, "&quot;");
			break;
		default:
			irfw_buf_add(&b, s, 1);
		}
	}
	return b.data;
}

/* CompleteMultipartUpload body from Parts: [{PartNumber, ETag, ChecksumSHA256}]. */
static char *complete_body(const cJSON *parts)
{
	struct irfw_buf b = {0};
	irfw_buf_puts(&b, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	const cJSON *part;
	cJSON_ArrayForEach(part, parts)
	{
		const cJSON *num = cJSON_GetObjectItemCaseSensitive(part, "PartNumber");
		char *etag = xml_escape(str_param(part, "ETag") ? str_param(part, "ETag") : "");
		irfw_buf_printf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>",
		                cJSON_IsNumber(num) ? num->valueint : 0, etag ? etag : "");
		free(etag);
		const char *ck = str_param(part, "ChecksumSHA256");
		if (ck) {
			char *e = xml_escape(ck);
			irfw_buf_printf(&b, "<ChecksumSHA256>%s</ChecksumSHA256>", e ? e : "");
			free(e);
		}
		irfw_buf_puts(&b, "</Part>");
	}
	irfw_buf_puts(&b, "</CompleteMultipartUpload>");
	return b.data;
}

int irfw_s3_build(const char *op, const cJSON *p, bool path_style, struct irfw_s3_request *rq, char *err,
                  size_t errlen)
{
	memset(rq, 0, sizeof(*rq));
	const char *bucket = str_param(p, "Bucket"), *key = str_param(p, "Key");
	struct {
		const char *op, *method;
		bool needs_key;
	} ops[] = {
	    {"PutObject", "PUT", true},
	    {"GetObject", "GET", true},
	    {"HeadObject", "HEAD", true},
	    {"DeleteObject", "DELETE", true},
	    {"CreateMultipartUpload", "POST", true},
	    {"UploadPart", "PUT", true},
	    {"CompleteMultipartUpload", "POST", true},
	    {"AbortMultipartUpload", "DELETE", true},
	    {"HeadBucket", "HEAD", false},
	    {"ListObjectsV2", "GET", false},
	    {"GetBucketLocation", "GET", false},
	    {"GetBucketEncryption", "GET", false},
	    {"GetBucketVersioning", "GET", false},
	    {"GetObjectLockConfiguration", "GET", false},
	};
	size_t i;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(ops[i].op, op) == 0)
			break;
	if (i == sizeof(ops) / sizeof(ops[0])) {
		snprintf(err, errlen, "s3 operation %s is not supported by irfw's client", op);
		return -1;
	}
	if (!bucket || !*bucket || (ops[i].needs_key && (!key || !*key))) {
		snprintf(err, errlen, "s3 %s needs Bucket%s", op, ops[i].needs_key ? " and Key" : "");
		return -1;
	}
	rq->method = ops[i].method;
	rq->head = strcmp(rq->method, "HEAD") == 0;
	bool vhost = !path_style && irfw_s3_bucket_dns_ok(bucket);
	rq->host_bucket = vhost ? strdup(bucket) : NULL;
	if (vhost)
		rq->path = irfw_strfmt("/%s", key ? key : "");
	else
		rq->path = key ? irfw_strfmt("/%s/%s", bucket, key) : irfw_strfmt("/%s", bucket);

	struct irfw_buf q = {0};
	const char *upload_id = str_param(p, "UploadId");
	const cJSON *part = cJSON_GetObjectItemCaseSensitive(p, "PartNumber");
	char *enc_id = upload_id ? irfw_uri_encode(upload_id, strlen(upload_id), false) : NULL;
	if (strcmp(op, "CreateMultipartUpload") == 0)
		irfw_buf_puts(&q, "uploads=");
	else if (strcmp(op, "UploadPart") == 0)
		irfw_buf_printf(&q, "partNumber=%d&uploadId=%s", cJSON_IsNumber(part) ? part->valueint : 0,
		                enc_id ? enc_id : "");
	else if (strcmp(op, "CompleteMultipartUpload") == 0 || strcmp(op, "AbortMultipartUpload") == 0)
		irfw_buf_printf(&q, "uploadId=%s", enc_id ? enc_id : "");
	else if (strcmp(op, "ListObjectsV2") == 0) {
		irfw_buf_puts(&q, "list-type=2");
		const char *prefix = str_param(p, "Prefix");
		if (prefix) {
			char *e = irfw_uri_encode(prefix, strlen(prefix), false);
			irfw_buf_printf(&q, "&prefix=%s", e ? e : "");
			free(e);
		}
	} else if (strcmp(op, "GetBucketLocation") == 0)
		irfw_buf_puts(&q, "location=");
	else if (strcmp(op, "GetBucketEncryption") == 0)
		irfw_buf_puts(&q, "encryption=");
	else if (strcmp(op, "GetBucketVersioning") == 0)
		irfw_buf_puts(&q, "versioning=");
	else if (strcmp(op, "GetObjectLockConfiguration") == 0)
		irfw_buf_puts(&q, "object-lock=");
	free(enc_id);
	rq->query = q.data;

	for (size_t h = 0; s3_headers[h].param; h++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, s3_headers[h].param);
		char text[64];
		if (cJSON_IsString(v))
			irfw_buf_printf(&rq->headers, "%s: %s\n", s3_headers[h].header, v->valuestring);
		else if (cJSON_IsBool(v) || cJSON_IsNumber(v)) {
			scalar_text(v, text, sizeof(text));
			irfw_buf_printf(&rq->headers, "%s: %s\n", s3_headers[h].header, text);
		}
	}
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p, "Metadata");
	const cJSON *m;
	cJSON_ArrayForEach(m, meta)
	{
		if (cJSON_IsString(m))
			irfw_buf_printf(&rq->headers, "x-amz-meta-%s: %s\n", m->string, m->valuestring);
	}

	const char *body = str_param(p, "Body");
	if (body) {
		rq->body = strdup(body);
		rq->body_len = strlen(body);
	} else if (str_param(p, "BodyFile")) {
		if (read_body_file(p, rq, err, errlen) != 0)
			goto fail;
	} else if (strcmp(op, "CompleteMultipartUpload") == 0) {
		rq->body = complete_body(cJSON_GetObjectItemCaseSensitive(p, "Parts"));
		rq->body_len = rq->body ? strlen(rq->body) : 0;
		irfw_buf_puts(&rq->headers, "Content-Type: application/xml\n");
	}
	return 0;
fail:
	irfw_s3_request_free(rq);
	return -1;
}

void irfw_s3_request_free(struct irfw_s3_request *rq)
{
	free(rq->path);
	free(rq->query);
	free(rq->host_bucket);
	free(rq->body);
	irfw_buf_free(&rq->headers);
	memset(rq, 0, sizeof(*rq));
}

void irfw_s3_response_header(cJSON *result, const char *name, const char *value)
{
	static const struct {
		const char *header, *field;
	} map[] = {
	    {"etag", "ETag"},
	    {"x-amz-version-id", "VersionId"},
	    {"x-amz-server-side-encryption", "ServerSideEncryption"},
	    {"x-amz-server-side-encryption-aws-kms-key-id", "SSEKMSKeyId"},
	    {"x-amz-server-side-encryption-bucket-key-enabled", "BucketKeyEnabled"},
	    {"x-amz-checksum-sha256", "ChecksumSHA256"},
	    {"content-length", "ContentLength"},
	    {"content-type", "ContentType"},
	    {"last-modified", "LastModified"},
	    {"x-amz-bucket-region", "BucketRegion"},
	    {"x-amz-object-lock-mode", "ObjectLockMode"},
	    {"x-amz-object-lock-retain-until-date", "ObjectLockRetainUntilDate"},
	    {"x-amz-object-lock-legal-hold", "ObjectLockLegalHoldStatus"},
	    {NULL, NULL},
	};
	/* User metadata, as the SDKs give it: Metadata {name: value}. */
	if (strncmp(name, "x-amz-meta-", 11) == 0 && name[11]) {
		cJSON *m = cJSON_GetObjectItemCaseSensitive(result, "Metadata");
		if (!cJSON_IsObject(m)) {
			cJSON_DeleteItemFromObjectCaseSensitive(result, "Metadata");
			m = cJSON_AddObjectToObject(result, "Metadata");
		}
		if (m) {
			cJSON_DeleteItemFromObjectCaseSensitive(m, name + 11);
			cJSON_AddStringToObject(m, name + 11, value);
		}
		return;
	}
	for (size_t i = 0; map[i].header; i++)
		if (strcmp(map[i].header, name) == 0) {
			cJSON_DeleteItemFromObjectCaseSensitive(result, map[i].field);
			cJSON_AddStringToObject(result, map[i].field, value);
			return;
		}
}
