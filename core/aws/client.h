/*
 * client.h - the AWS client: one call of an AWS operation, signed,
 * rate-limited and retried, whatever the protocol; and one HTTPS POST for
 * webhooks.  The engine's face of core/aws/.
 *
 * The client knows nothing of runs, pipelines, plugins or cases: it is
 * configured by a plain struct, and it reports errors as values
 * (struct irfw_aws_error, in xml.h) and messages in a caller's buffer.
 */
#ifndef IRFW_AWS_CLIENT_H
#define IRFW_AWS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "xml.h"

/* What the client is configured with; strings are copied by irfw_aws_new
 * and may be NULL. */
struct irfw_aws_config {
	/* The region given (--region or the site file's), else the
	 * environment, the profile's, then IMDS are asked. */
	const char *region;
	const char *profile;      /* else AWS_PROFILE, then the default chain */
	const char *endpoint_url; /* every call goes there (AWS_ENDPOINT_URL* win) */
	const char *ca_file;      /* CA bundle; TLS verification is always on */
	long connect_timeout;     /* seconds per attempt; 0: 10 */
	long timeout;             /* seconds per attempt, transfer included; 0: 120 */
	/* Seconds an attempt may move less than one byte a second (a stalled
	 * answer) before it is abandoned; 0: IRFW_AWS_LOW_SPEED_TIME, else 10. */
	long low_speed_time;
	/* Seconds one call may take, retries and backoff included (waiting
	 * for the client-side rate limit is not counted); 0:
	 * IRFW_AWS_CALL_DEADLINE, else 120, or `timeout` when that is longer. */
	long call_deadline;
	int max_attempts; /* per call; 0: AWS_MAX_ATTEMPTS, the profile's, 5 */
	bool s3_path_style;
	/* Client-side token buckets: for each class of irfw_ratelimit_class
	 * (ratelimit.h) a "CAPACITY/REFILL" spec, or NULL for the default. */
	const char *ratelimit[8];
};

struct irfw_aws;

/* Create the client: credentials, region, HTTP, rate limits.  0, or -1
 * with a message in err. */
int irfw_aws_new(const struct irfw_aws_config *cfg, struct irfw_aws **out, char *err, size_t errlen);
void irfw_aws_free(struct irfw_aws *a);

/* The region the client resolved. */
const char *irfw_aws_region(const struct irfw_aws *a);

/* The account the calls are made in (sts:GetCallerIdentity), which keys the
 * rate limits: AWS's buckets are per account and region. */
void irfw_aws_set_account(struct irfw_aws *a, const char *account_id);

/* One call with retries.  dry_run: a change is sent with DryRun when its
 * API has that parameter (AWS's DryRunOperation answer is a success with
 * *result NULL), else not sent at all (success, *result NULL).  On failure
 * fills *e; on success copies the request id into req_id. */
int irfw_aws_request(struct irfw_aws *a, const char *region, const char *service, const char *operation,
                     const cJSON *params, bool dry_run, cJSON **result, struct irfw_aws_error *e,
                     char req_id[128]);

/* The error code of a call that was not re-sent because it may have been
 * carried out (IRFW_AWS_REQ_NOT_IDEMPOTENT). */
#define IRFW_AWS_OUTCOME_UNKNOWN "irfw.OutcomeUnknown"

/* Flags of irfw_aws_request_ex. */
enum {
	/* The operation is a create AWS cannot deduplicate (no ClientToken):
	 * once a request may have reached AWS (it was sent and no answer, a
	 * 5xx that is not throttling, or an unreadable 2xx came back) it is
	 * not re-sent; the call fails with IRFW_AWS_OUTCOME_UNKNOWN, keeping
	 * the original cause in the message.  Requests that cannot have
	 * acted (no connection, throttling answers) are still retried. */
	IRFW_AWS_REQ_NOT_IDEMPOTENT = 1u << 0,
};
/* How urgent the call is, 0 (the most: containment, and the run's own
 * look-ups) to 3: among callers waiting for the same client-side bucket,
 * the more urgent go first (irfw_ratelimit_acquire_ex). */
#define IRFW_AWS_REQ_PRIORITY(p)    ((((unsigned)(p)) & 3u) << 4)
#define IRFW_AWS_REQ_PRIORITY_OF(f) ((int)(((f) >> 4) & 3u))

/* irfw_aws_request with flags (IRFW_AWS_REQ_*). */
int irfw_aws_request_ex(struct irfw_aws *a, const char *region, const char *service, const char *operation,
                        const cJSON *params, bool dry_run, unsigned flags, cJSON **result,
                        struct irfw_aws_error *e, char req_id[128]);

/* The time limits the client applies (after defaults), for logs and tests. */
struct irfw_aws_limits {
	long connect_timeout, timeout, low_speed_time, call_deadline;
	int max_attempts;
	bool retry_quota;
};
void irfw_aws_limits_get(const struct irfw_aws *a, struct irfw_aws_limits *out);

/* What the client sent so far: requests put on the wire (every attempt),
 * of them retries, and throttling answers received. */
struct irfw_aws_stats {
	long requests, retries, throttled;
};
void irfw_aws_stats_get(const struct irfw_aws *a, struct irfw_aws_stats *out);

/* True when a dry run may send `operation` of `service`: it reads, or it
 * is an EC2 change whose API has a DryRun parameter. */
bool irfw_operation_dry_sendable(const char *service, const char *operation);

/* POST `body` to a URL that is not AWS (a chat webhook): https only (http
 * to 127.0.0.1 or localhost, for test receivers), TLS verified, with the
 * client's CA file and timeouts.  The URL is registered as a secret with
 * the log.  0 when the server answered 2xx; else -1 with *http_status (0 on
 * a transport error) and a reason in why that names only the URL's host
 * and shows the answer only when it is one short error word (an answer may
 * quote the URL's secret path). */
int irfw_aws_http_post(struct irfw_aws *a, const char *url, const char *content_type, const char *body,
                       size_t len, long *http_status, char *why, size_t whylen);

/* 0 when a webhook URL may be posted to (https, or http to this machine);
 * else -1 with why naming only the host.  Registers the URL as a secret. */
int irfw_aws_http_url_check(const char *url, char *why, size_t whylen);

/* Abandon every call in flight and refuse new ones (they fail with code
 * "Interrupted"), for good: a second SIGINT or SIGTERM.  Async-signal-safe. */
void irfw_aws_abandon(void);
bool irfw_aws_abandoned(void);

#endif /* IRFW_AWS_CLIENT_H */
