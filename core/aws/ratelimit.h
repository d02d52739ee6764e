/*
 * ratelimit.h - client-side rate limiting of AWS calls and retry backoff.
 *
 * EC2 throttles each account and region with a token bucket per API
 * action, sized by the action's category ("Request throttling for the
 * Amazon EC2 API").  irfw runs many worker threads over hundreds of
 * instances; without a shared client-side limit they would burn the
 * account's buckets and get RequestLimitExceeded, which also throttles
 * every other tool using that account.  So all threads draw from one
 * registry of buckets keyed by (account, region, class, action) for EC2
 * and (account, region, service) for the others, that mirrors AWS's own;
 * a caller may be more urgent than others waiting on the same bucket
 * (containment before evidence); and retries back off with the SDKs'
 * "standard" full-jitter schedule.
 */
#ifndef IRFW_CORE_RATELIMIT_H
#define IRFW_CORE_RATELIMIT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A monotonic clock that can be replaced, so tests of waiting neither wait
 * nor depend on the scheduler.  `now` returns seconds from an arbitrary
 * origin and never goes back; `sleep` returns after at least `seconds`
 * (or at once for seconds <= 0).  Both must be callable from any thread.
 */
struct irfw_clock {
	double (*now)(void *ctx);
	void (*sleep)(void *ctx, double seconds);
	void *ctx;
};

/** The real clock: CLOCK_MONOTONIC, and a sleep that resumes after
 * signals until its deadline.  Static; never freed. */
const struct irfw_clock *irfw_clock_real(void);

/**
 * The throttling class of AWS `service` (lower-case, as irfw_aws_call()
 * takes it: "ec2", "s3"...) `operation` ("DescribeInstances"):
 *   "ec2-describe"             EC2 Describe*, Get*, List*
 *   "ec2-describe-unfiltered"  DescribeInstances, DescribeInstanceStatus,
 *                              DescribeNetworkInterfaces,
 *                              DescribeSecurityGroups, DescribeSnapshots,
 *                              DescribeSpotInstanceRequests, DescribeVolumes
 *                              sent with neither a filter nor pagination
 *                              (irfw_ratelimit_class_ex, IRFW_RL_UNFILTERED)
 *   "ec2-snapshot"             EC2 CreateSnapshot, CreateSnapshots
 *   "ec2-eni"                  EC2 ModifyNetworkInterfaceAttribute
 *   "ec2-tags"                 EC2 CreateTags
 *   "ec2-mutate"               every other EC2 action
 *   "other"                    every other service
 * Each EC2 action has a bucket of its own with its class's size; "other"
 * is one bucket per service.  Returns a static string; NULL arguments
 * count as unknown ("other" for a NULL service, "ec2-mutate" for a NULL
 * EC2 operation).
 */
const char *irfw_ratelimit_class(const char *service, const char *operation);

/** Flags of irfw_ratelimit_acquire_ex and irfw_ratelimit_class_ex. */
/* The request has neither a filter nor pagination (no Filter.N, MaxResults
 * or NextToken): the describes listed above draw on their smaller bucket. */
#define IRFW_RL_UNFILTERED 0x1u
/* How urgent the caller is, 0 (most) to 3; 0 without the macro. */
#define IRFW_RL_PRIORITY(p)    ((((unsigned)(p)) & 3u) << 4)
#define IRFW_RL_PRIORITY_OF(f) ((int)(((f) >> 4) & 3u))

/** irfw_ratelimit_class with IRFW_RL_UNFILTERED taken into account. */
const char *irfw_ratelimit_class_ex(const char *service, const char *operation, unsigned flags);

/** The classes above, in a fixed order, with their defaults: the one list
 * the site file's ratelimit.* keys and their documentation come from. */
size_t irfw_ratelimit_class_count(void);
const char *irfw_ratelimit_class_name(size_t i);    /* NULL past the end */
const char *irfw_ratelimit_class_default(size_t i); /* "100/20" */
const char *irfw_ratelimit_class_help(size_t i);    /* what it paces */

/** Registry of buckets shared by all threads. */
struct irfw_ratelimit;

/**
 * New registry with every class at its default (capacity/refill per s):
 * ec2-describe 100/20, ec2-describe-unfiltered 50/10, ec2-mutate 50/5,
 * ec2-snapshot 100/5, ec2-eni 100/5, ec2-tags 100/10, other 0/0 (adaptive).  `clock` is copied (the struct,
 * not what its ctx points to, which must outlive the registry); NULL means the real clock.  Returns NULL when
 * out of memory.
 */
struct irfw_ratelimit *irfw_ratelimit_new(const struct irfw_clock *clock);

/**
 * Override class `cls` (one of the names above), e.g. from the `[irfw]` key
 * `ratelimit.ec2-mutate = 50/5`.  A refill rate of 0 disables the limit for
 * the class; otherwise capacity must be at least 1.  Buckets that already
 * exist take the new values at their next use.  Thread-safe.
 * Returns 0, or -1 for an unknown class or values out of range.
 */
int irfw_ratelimit_configure(struct irfw_ratelimit *rl, const char *cls, double capacity,
                             double refill_per_sec);

/**
 * Parse a "CAPACITY/RATE" spec such as "50/5", "100/0.5" or "0/0": plain
 * decimal numbers (digits and one optional '.'), no sign, exponent or
 * space, checked as irfw_ratelimit_configure() checks them.  The decimal
 * point is '.' in the C locale, which irfw never changes.
 * Returns 0 and sets *cap and *rate, or -1 leaving them untouched.
 */
int irfw_ratelimit_parse_spec(const char *spec, double *cap, double *rate);

/**
 * Take one token for `operation` of `service` in `account`/`region`,
 * sleeping through the registry's clock until it is due.  The waiter's
 * turn is reserved under the registry's lock before it sleeps, so waiters
 * are served in the order they arrived, spaced 1/rate apart, and none
 * starves.  NULL strings count as empty; a NULL rl does not limit.
 * Never fails: if a new bucket cannot be allocated, the class's shared
 * fallback bucket is used, which is stricter, never looser.
 */
void irfw_ratelimit_acquire(struct irfw_ratelimit *rl, const char *account, const char *region,
                            const char *service, const char *operation);

/**
 * irfw_ratelimit_acquire with flags: IRFW_RL_UNFILTERED, and
 * IRFW_RL_PRIORITY(p).  A caller that must wait takes the earliest turn
 * booked by a less urgent (higher p) caller still asleep; those move one
 * turn later each, keeping their order.  So the bucket's rate is kept,
 * callers of one priority are served in arrival order, and a less urgent
 * caller waits while more urgent ones keep coming (containment before
 * evidence: the scheduler's phases are finite).
 */
void irfw_ratelimit_acquire_ex(struct irfw_ratelimit *rl, const char *account, const char *region,
                               const char *service, const char *operation, unsigned flags);

/**
 * Services without documented buckets ("other", when ratelimit.other is
 * not set) are paced adaptively: not at all until the service answers
 * with throttling (irfw_ratelimit_throttled), then at 10 calls/s, halved
 * at each further throttling (to 0.5/s at the least), grown 5 % at each
 * success (irfw_ratelimit_succeeded) until pacing stops at 200/s.  No-ops
 * for the EC2 classes and a configured "other".
 */
void irfw_ratelimit_throttled(struct irfw_ratelimit *rl, const char *account, const char *region,
                              const char *service, const char *operation);
void irfw_ratelimit_succeeded(struct irfw_ratelimit *rl, const char *account, const char *region,
                              const char *service, const char *operation);
/** The adaptive rate of `service` now (0: not paced), for tests and logs. */
double irfw_ratelimit_adaptive_rate(struct irfw_ratelimit *rl, const char *account, const char *region,
                                    const char *service);

/**
 * Retry quota, as the AWS SDKs' "standard" retry mode keeps it, but one per
 * (account, region, class[, service]) rather than one per client:
 * a bucket starts with IRFW_RETRY_QUOTA tokens; each retry takes
 * IRFW_RETRY_COST of them (IRFW_RETRY_TIMEOUT_COST after a timeout or a
 * connection failure); a call that succeeds after retries gives back what
 * its last retry took, and a call that succeeds at once gives back
 * IRFW_RETRY_SUCCESS_REFILL, never above the start.  When a bucket has not
 * enough left, calls there are not retried at all: a dead or melting
 * endpoint fails fast instead of multiplying the load.
 */
#define IRFW_RETRY_QUOTA          500
#define IRFW_RETRY_COST           5
#define IRFW_RETRY_TIMEOUT_COST   10
#define IRFW_RETRY_SUCCESS_REFILL 1

/** Take the cost of one retry of `operation` (timeout: the attempt timed
 * out or could not connect).  Returns the tokens taken (> 0), or 0 when
 * the quota is too low and the call must not be retried.  With the quota
 * disabled (irfw_ratelimit_retry_quota_enable) or a NULL rl it always
 * allows (returns the cost, takes nothing).  Thread-safe. */
int irfw_ratelimit_retry_take(struct irfw_ratelimit *rl, const char *account, const char *region,
                              const char *service, const char *operation, int timeout);
/** A call succeeded: `taken` is what its last retry took (0: it was not
 * retried).  Thread-safe; NULL rl is a no-op. */
void irfw_ratelimit_retry_success(struct irfw_ratelimit *rl, const char *account, const char *region,
                                  const char *service, const char *operation, int taken);
/** Tokens left in the retry quota of `operation`'s bucket, for tests. */
double irfw_ratelimit_retry_left(struct irfw_ratelimit *rl, const char *account, const char *region,
                                 const char *service, const char *operation);
/** Keep a quota (the default; the "standard" and "adaptive" retry modes)
 * or not ("legacy": retries are bounded by attempts and deadline only). */
void irfw_ratelimit_retry_quota_enable(struct irfw_ratelimit *rl, int on);

/** Free the registry; no thread may be inside acquire.  NULL is a no-op. */
void irfw_ratelimit_free(struct irfw_ratelimit *rl);

/**
 * Delay in seconds before retry number `attempt` (1 for the first retry),
 * the AWS SDKs' "standard" mode with full jitter:
 * rand01() * min(cap, base * 2^(attempt-1)).  The SDKs use base 0.1 s
 * (0.5 s after throttling errors) and cap 20 s.  `rand01` returns a number
 * in [0, 1] (clamped if not); NULL means irfw_rand01.  Returns 0 for
 * attempt < 1 or a base or cap that is not positive.
 */
double irfw_backoff_delay(int attempt, double base, double cap, double (*rand01)(void *ctx), void *ctx);

/**
 * A uniform number in [0, 1) for jitter, safe from any thread without
 * locking: a per-thread generator seeded from OpenSSL RAND_bytes (or
 * getrandom() should that fail), so that threads and processes that fail
 * together do not retry together.  Not for secrets.  `unused` is ignored;
 * it makes the function fit irfw_backoff_delay().
 */
double irfw_rand01(void *unused);

#ifdef __cplusplus
}
#endif

#endif /* IRFW_CORE_RATELIMIT_H */
