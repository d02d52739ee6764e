/*
 * aws_proto.h - what the AWS client knows about services: their wire
 * protocol and API version, endpoints per partition, and how a cJSON
 * parameter tree becomes a request.  Pure functions, no I/O, so every rule
 * here is unit-tested.
 */
#ifndef IRFW_AWS_PROTO_H
#define IRFW_AWS_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "xml.h"
#include "buf.h"

struct irfw_service {
	const char *name;         /* as plugins name it: "ec2", "elb" ... */
	const char *prefix;       /* endpoint prefix: "elasticloadbalancing" */
	const char *signing_name; /* SigV4 service name */
	const char *env_id;       /* AWS_ENDPOINT_URL_<env_id> */
	enum irfw_wire wire;
	const char *api_version; /* query protocols */
	const char *json_target; /* JSON 1.1: X-Amz-Target prefix */
	bool global;             /* one endpoint per partition (IAM) */
};

/* The service called `name`, or NULL. */
const struct irfw_service *irfw_service_find(const char *name);

/* Partition DNS suffix of a region: amazonaws.com, amazonaws.com.cn. */
const char *irfw_partition_suffix(const char *region);

/*
 * Endpoint of `svc` in `region`: base URL (scheme://host[:port], no path)
 * into *url (malloc'd) and the region to sign with into *sign_region.
 * `override` is a configured endpoint URL (environment, configuration) or
 * NULL for AWS's own.
 */
int irfw_endpoint_resolve(const struct irfw_service *svc, const char *region, const char *override,
                          char **url, char **sign_region);

/* Query-protocol body: Action, Version and params flattened the EC2 way
 * (lists as Name.N) or the query way (lists as Name.member.N). */
char *irfw_query_body(const struct irfw_service *svc, const char *operation, const cJSON *params);

/* True when `operation` changes something (for --dry-run). */
bool irfw_operation_mutates(const char *operation);

/* An S3 request built from parameters. */
struct irfw_s3_request {
	const char *method;
	char *path;              /* decoded path: "/bucket/key" or "/key" (virtual host) */
	char *query;             /* encoded query string or NULL */
	char *host_bucket;       /* bucket for virtual-host addressing, or NULL */
	struct irfw_buf headers; /* "Name: value\n" lines */
	char *body;              /* owned body, or NULL */
	size_t body_len;
	bool head; /* no response body (HEAD) */
};

/* Build the S3 `operation` from params.  path_style: address the bucket in
 * the path.  Returns 0, or -1 with err (unknown operation, missing Bucket or
 * Key, unreadable BodyFile). */
int irfw_s3_build(const char *operation, const cJSON *params, bool path_style, struct irfw_s3_request *rq,
                  char *err, size_t errlen);
void irfw_s3_request_free(struct irfw_s3_request *rq);

/* Map S3 response headers (lowercase name, value) into the result object. */
void irfw_s3_response_header(cJSON *result, const char *name, const char *value);

/* True when a bucket name can be a DNS label under TLS (virtual host). */
bool irfw_s3_bucket_dns_ok(const char *bucket);

#endif
