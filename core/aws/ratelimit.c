/*
 * ratelimit.c - client-side token buckets per (account, region, API class)
 * and full-jitter retry backoff.  See ratelimit.h for the why.
 */
#define _POSIX_C_SOURCE 200809L

#include "ratelimit.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/rand.h>

/* ------------------------------------------------------------------ */
/* Clock.                                                              */

static double real_now(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0.0; /* cannot happen on Linux; a stuck clock only over-limits */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void real_sleep(void *ctx, double seconds)
{
	struct timespec deadline;
	double whole, frac;
	int rc;

	(void)ctx;
	if (!(seconds > 0))
		return;
	/* Keep the conversion to time_t defined whatever a caller asks for. */
	if (seconds > 1e9)
		seconds = 1e9;
	/* An absolute deadline, so a signal that interrupts us does not make
	 * the next nanosleep start the whole wait again (or cut it short). */
	if (clock_gettime(CLOCK_MONOTONIC, &deadline) != 0)
		return;
	frac = modf(seconds, &whole);
	deadline.tv_sec += (time_t)whole;
	deadline.tv_nsec += (long)(frac * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	do
		rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
	while (rc == EINTR);
}

const struct irfw_clock *irfw_clock_real(void)
{
	static const struct irfw_clock real = {.now = real_now, .sleep = real_sleep, .ctx = NULL};

	return &real;
}

/* ------------------------------------------------------------------ */
/* Classes.                                                            */

enum rl_class_id {
	RL_EC2_DESCRIBE = 0,
	RL_EC2_DESCRIBE_UNFILTERED,
	RL_EC2_MUTATE,
	RL_EC2_SNAPSHOT,
	RL_EC2_ENI,
	RL_EC2_TAGS,
	RL_OTHER,
	RL_NCLASSES
};

/* Defaults follow AWS's published bucket sizes and refill rates, so that
 * irfw alone never empties an account's buckets.  EC2 evaluates each API
 * on its own ("Request throttling for the Amazon EC2 API": a request takes
 * a token from its API's bucket; other APIs are not affected), so every
 * EC2 class below is a bucket per action, with the sizes of its category;
 * only "other" is one bucket per service. */
static const struct {
	const char *name;
	double capacity;
	double rate;
	const char *spec; /* the same, as a site writes it */
	const char *help;
} rl_defaults[RL_NCLASSES] = {
    [RL_EC2_DESCRIBE] = {"ec2-describe", 100, 20, "100/20",
                         "each EC2 Describe*, Get* and List* action (a bucket per action)"},
    [RL_EC2_DESCRIBE_UNFILTERED] = {"ec2-describe-unfiltered", 50, 10, "50/10",
                                    "each of DescribeInstances, DescribeInstanceStatus, "
                                    "DescribeNetworkInterfaces, DescribeSecurityGroups, DescribeSnapshots, "
                                    "DescribeSpotInstanceRequests and DescribeVolumes sent with neither a "
                                    "filter nor pagination (a bucket per action)"},
    [RL_EC2_MUTATE] = {"ec2-mutate", 50, 5, "50/5", "each EC2 change not listed below (a bucket per action)"},
    [RL_EC2_SNAPSHOT] = {"ec2-snapshot", 100, 5, "100/5",
                         "EC2 CreateSnapshot and CreateSnapshots (a bucket each)"},
    [RL_EC2_ENI] = {"ec2-eni", 100, 5, "100/5", "EC2 ModifyNetworkInterfaceAttribute"},
    [RL_EC2_TAGS] = {"ec2-tags", 100, 10, "100/10", "EC2 CreateTags"},
    [RL_OTHER] = {"other", 0, 0, "0/0",
                  "each other service (one bucket per service): no pacing until the service throttles, then "
                  "half the rate, regrown 5 % a success"},
};

size_t irfw_ratelimit_class_count(void)
{
	return RL_NCLASSES;
}

const char *irfw_ratelimit_class_name(size_t i)
{
	return i < RL_NCLASSES ? rl_defaults[i].name : NULL;
}

const char *irfw_ratelimit_class_default(size_t i)
{
	return i < RL_NCLASSES ? rl_defaults[i].spec : NULL;
}

const char *irfw_ratelimit_class_help(size_t i)
{
	return i < RL_NCLASSES ? rl_defaults[i].help : NULL;
}

/* "Describe" followed by a capital: the start of the next CamelCase word,
 * so a bare or odd name ("Get", "Listen") is not taken for a read. */
static bool has_verb(const char *op, const char *verb)
{
	size_t n = strlen(verb);

	return strncmp(op, verb, n) == 0 && op[n] >= 'A' && op[n] <= 'Z';
}

/* The describes EC2 gives a smaller bucket when they are sent with neither
 * a filter nor pagination. */
static bool narrowable(const char *op)
{
	static const char *const ops[] = {
	    "DescribeInstances",      "DescribeInstanceStatus", "DescribeNetworkInterfaces",
	    "DescribeSecurityGroups", "DescribeSnapshots",      "DescribeSpotInstanceRequests",
	    "DescribeVolumes"};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i]) == 0)
			return true;
	return false;
}

static enum rl_class_id class_of(const char *service, const char *operation, bool unfiltered)
{
	if (!service || strcmp(service, "ec2") != 0)
		return RL_OTHER;
	if (!operation)
		return RL_EC2_MUTATE;
	if (has_verb(operation, "Describe") || has_verb(operation, "Get") || has_verb(operation, "List"))
		return unfiltered && narrowable(operation) ? RL_EC2_DESCRIBE_UNFILTERED : RL_EC2_DESCRIBE;
	if (strcmp(operation, "CreateSnapshot") == 0 || strcmp(operation, "CreateSnapshots") == 0)
		return RL_EC2_SNAPSHOT;
	if (strcmp(operation, "ModifyNetworkInterfaceAttribute") == 0)
		return RL_EC2_ENI;
	if (strcmp(operation, "CreateTags") == 0)
		return RL_EC2_TAGS;
	return RL_EC2_MUTATE;
}

const char *irfw_ratelimit_class(const char *service, const char *operation)
{
	return rl_defaults[class_of(service, operation, false)].name;
}

const char *irfw_ratelimit_class_ex(const char *service, const char *operation, unsigned flags)
{
	return rl_defaults[class_of(service, operation, flags & IRFW_RL_UNFILTERED)].name;
}

static int check_values(double capacity, double rate)
{
	if (!isfinite(capacity) || !isfinite(rate) || capacity < 0 || rate < 0)
		return -1;
	/* A bucket that cannot hold one whole token would make every call
	 * wait; that is a typo, not a policy. */
	if (rate > 0 && capacity < 1)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Registry.                                                           */

/* A caller asleep until its turn: its node in its bucket's list, on the
 * caller's stack.  `slot` is when it may go; a more urgent caller that
 * arrives later may take it and hand it a later one (under the lock). */
struct rl_booking {
	struct rl_booking *next;
	double slot;
	int priority;
};

struct rl_state {
	double tokens;             /* negative: turns already promised to sleepers */
	struct rl_booking *booked; /* those sleepers, in no order */
	double last;               /* clock time tokens was brought up to date */
	bool primed;
	/* Adaptive pacing of a class without a configured rate: 0 = none;
	 * set by throttling, regrown by successes (AIMD). */
	double adaptive;
	/* Retry quota (standard mode): tokens left, once primed. */
	double quota;
	bool quota_primed;
};

struct rl_bucket {
	struct rl_bucket *next;
	enum rl_class_id cls;
	struct rl_state st;
	/* point into key[]; operation is "" for a bucket of the whole class
	 * (retry quotas) or of a service ("other") */
	const char *account, *region, *service, *operation;
	char key[];
};

struct rl_class {
	double capacity;
	double rate;
	/* Shared by every key of the class when a bucket cannot be allocated:
	 * stricter than per-key buckets, never looser, and needs no memory. */
	struct rl_state fallback;
};

/* Keys are few (accounts x regions x classes), so a fixed table is plenty. */
#define RL_SLOTS 64

struct irfw_ratelimit {
	pthread_mutex_t lock;
	struct irfw_clock clock;
	struct rl_class cls[RL_NCLASSES];
	struct rl_bucket *slots[RL_SLOTS];
	bool no_quota; /* legacy retry mode */
};

struct irfw_ratelimit *irfw_ratelimit_new(const struct irfw_clock *clock)
{
	struct irfw_ratelimit *rl = calloc(1, sizeof(*rl));

	if (!rl)
		return NULL;
	if (pthread_mutex_init(&rl->lock, NULL) != 0) {
		free(rl);
		return NULL;
	}
	rl->clock = clock ? *clock : *irfw_clock_real();
	for (int i = 0; i < RL_NCLASSES; i++) {
		rl->cls[i].capacity = rl_defaults[i].capacity;
		rl->cls[i].rate = rl_defaults[i].rate;
	}
	return rl;
}

int irfw_ratelimit_configure(struct irfw_ratelimit *rl, const char *cls, double capacity,
                             double refill_per_sec)
{
	if (!rl || !cls || check_values(capacity, refill_per_sec) != 0)
		return -1;
	for (int i = 0; i < RL_NCLASSES; i++) {
		if (strcmp(cls, rl_defaults[i].name) != 0)
			continue;
		pthread_mutex_lock(&rl->lock);
		rl->cls[i].capacity = capacity;
		rl->cls[i].rate = refill_per_sec;
		pthread_mutex_unlock(&rl->lock);
		return 0;
	}
	return -1;
}

/* Digits with at most one '.', at least one digit, nothing else: strtod
 * alone would also take signs, spaces, hex, exponents, "inf" and "nan". */
static bool plain_decimal(const char *s, size_t n)
{
	size_t digits = 0, dots = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			digits++;
		else if (s[i] == '.')
			dots++;
		else
			return false;
	}
	return digits > 0 && dots <= 1;
}

int irfw_ratelimit_parse_spec(const char *spec, double *cap, double *rate)
{
	const char *slash, *rstr;
	char *end;
	double c, r;

	if (!spec || !cap || !rate)
		return -1;
	slash = strchr(spec, '/');
	if (!slash)
		return -1;
	rstr = slash + 1;
	if (!plain_decimal(spec, (size_t)(slash - spec)) || !plain_decimal(rstr, strlen(rstr)))
		return -1;
	errno = 0;
	c = strtod(spec, &end);
	if (end != slash || errno == ERANGE)
		return -1;
	r = strtod(rstr, &end);
	if (*end != '\0' || errno == ERANGE)
		return -1;
	if (check_values(c, r) != 0)
		return -1;
	*cap = c;
	*rate = r;
	return 0;
}

static size_t key_slot(enum rl_class_id cls, const char *account, const char *region, const char *service,
                       const char *operation)
{
	const char *parts[4] = {account, region, service, operation};
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)cls; /* FNV-1a */

	for (int i = 0; i < 4; i++) {
		/* Hash the NUL too, so ("ab","c") and ("a","bc") differ. */
		for (const char *p = parts[i];; p++) {
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
			if (!*p)
				break;
		}
	}
	return (size_t)(h % RL_SLOTS);
}

/* The state for this key, created full on first use.  Called locked. */
static struct rl_state *find_state(struct irfw_ratelimit *rl, enum rl_class_id cls, const char *account,
                                   const char *region, const char *service, const char *operation)
{
	size_t slot = key_slot(cls, account, region, service, operation);
	size_t la = strlen(account) + 1, lr = strlen(region) + 1, ls = strlen(service) + 1,
	       lo = strlen(operation) + 1;
	struct rl_bucket *b;

	for (b = rl->slots[slot]; b; b = b->next) {
		if (b->cls == cls && strcmp(b->account, account) == 0 && strcmp(b->region, region) == 0 &&
		    strcmp(b->service, service) == 0 && strcmp(b->operation, operation) == 0)
			return &b->st;
	}
	b = malloc(sizeof(*b) + la + lr + ls + lo);
	if (!b)
		return &rl->cls[cls].fallback;
	b->cls = cls;
	b->st = (struct rl_state){0};
	memcpy(b->key, account, la);
	memcpy(b->key + la, region, lr);
	memcpy(b->key + la + lr, service, ls);
	memcpy(b->key + la + lr + ls, operation, lo);
	b->account = b->key;
	b->region = b->key + la;
	b->service = b->key + la + lr;
	b->operation = b->key + la + lr + ls;
	b->next = rl->slots[slot];
	rl->slots[slot] = b;
	return &b->st;
}

/*
 * Take a token now and return how long the caller must sleep before using
 * it.  The bucket may go negative: each waiter's turn is booked here, under
 * the lock, so the next waiter books the slot after it instead of all of
 * them waking together and racing for the same token.
 */
static double reserve(struct rl_state *st, const struct rl_class *c, double now)
{
	if (!st->primed) {
		st->tokens = c->capacity;
		st->last = now;
		st->primed = true;
	}
	if (now > st->last) {
		st->tokens += (now - st->last) * c->rate;
		st->last = now;
	}
	if (st->tokens > c->capacity)
		st->tokens = c->capacity;
	st->tokens -= 1.0;
	return st->tokens < 0 ? -st->tokens / c->rate : 0.0;
}

/*
 * Book `me` (whose slot is the bucket's next free turn) among the sleepers
 * of `st`.  A caller more urgent than some of them (a lower priority
 * number) takes the earliest of their turns that is still to come, and
 * each of those less urgent sleepers moves to the next one's turn, the
 * last to the new turn: the bucket's rate is kept, the less urgent keep
 * their order among themselves, and the more urgent go first.  Called
 * locked.  Without memory for the list it just queues last.
 */
static int cmp_slot(const void *a, const void *b)
{
	double x = (*(struct rl_booking *const *)a)->slot, y = (*(struct rl_booking *const *)b)->slot;

	return (x > y) - (x < y);
}

static void book(struct rl_state *st, struct rl_booking *me, double now)
{
	size_t n = 0, k = 0;
	struct rl_booking *b, **later;

	for (b = st->booked; b; b = b->next)
		if (b->priority > me->priority && b->slot > now)
			n++;
	later = n ? malloc(n * sizeof(*later)) : NULL;
	if (later) {
		for (b = st->booked; b; b = b->next)
			if (b->priority > me->priority && b->slot > now)
				later[k++] = b;
		qsort(later, n, sizeof(*later), cmp_slot);
		double tail = me->slot;
		me->slot = later[0]->slot;
		for (k = 0; k + 1 < n; k++)
			later[k]->slot = later[k + 1]->slot;
		later[n - 1]->slot = tail;
		free(later);
	}
	me->next = st->booked;
	st->booked = me;
}

static void unbook(struct rl_state *st, const struct rl_booking *me)
{
	for (struct rl_booking **pp = &st->booked; *pp; pp = &(*pp)->next) {
		if (*pp == me) {
			*pp = me->next;
			return;
		}
	}
}

void irfw_ratelimit_acquire_ex(struct irfw_ratelimit *rl, const char *account, const char *region,
                               const char *service, const char *operation, unsigned flags)
{
	enum rl_class_id cls = class_of(service, operation, flags & IRFW_RL_UNFILTERED);
	struct rl_state *st = NULL;
	struct rl_booking me = {.priority = IRFW_RL_PRIORITY_OF(flags)};
	double wait = 0.0, now = 0.0;

	if (!rl)
		return;
	account = account ? account : "";
	region = region ? region : "";
	service = service ? service : "";
	pthread_mutex_lock(&rl->lock);
	if (rl->cls[cls].rate > 0) {
		/* EC2: a bucket per action; another service: one per service. */
		st = find_state(rl, cls, account, region, service,
		                cls == RL_OTHER || !operation ? "" : operation);
		/* Read under the lock so bookings are made in clock order. */
		now = rl->clock.now(rl->clock.ctx);
		wait = reserve(st, &rl->cls[cls], now);
	} else if (cls == RL_OTHER) {
		st = find_state(rl, cls, account, region, service, "");
		if (st->adaptive > 0) {
			struct rl_class c = {.capacity = st->adaptive < 1 ? 1 : st->adaptive,
			                     .rate = st->adaptive};
			now = rl->clock.now(rl->clock.ctx);
			wait = reserve(st, &c, now);
		}
	}
	if (!(wait > 0)) {
		pthread_mutex_unlock(&rl->lock);
		return;
	}
	me.slot = now + wait;
	book(st, &me, now);
	/* Sleep to the turn; a more urgent caller may have moved it later
	 * meanwhile.  Time is counted by what was slept, not read again, so
	 * a clock that does not move (tests) still ends the wait. */
	double awake = now;
	for (;;) {
		double until = me.slot;
		pthread_mutex_unlock(&rl->lock);
		rl->clock.sleep(rl->clock.ctx, until - awake);
		awake = until;
		pthread_mutex_lock(&rl->lock);
		if (!(me.slot > awake))
			break;
	}
	unbook(st, &me);
	pthread_mutex_unlock(&rl->lock);
}

void irfw_ratelimit_acquire(struct irfw_ratelimit *rl, const char *account, const char *region,
                            const char *service, const char *operation)
{
	irfw_ratelimit_acquire_ex(rl, account, region, service, operation, 0);
}

void irfw_ratelimit_free(struct irfw_ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < RL_SLOTS; i++) {
		struct rl_bucket *b = rl->slots[i];

		while (b) {
			struct rl_bucket *next = b->next;

			free(b);
			b = next;
		}
	}
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

/* ------------------------------------------------------------------ */
/* Backoff.                                                            */

double irfw_backoff_delay(int attempt, double base, double cap, double (*rand01)(void *ctx), void *ctx)
{
	double ceiling, r;

	if (attempt < 1 || !(base > 0) || !(cap > 0))
		return 0.0;
	/* ldexp saturates to inf instead of overflowing an integer shift. */
	ceiling = ldexp(base, attempt > 1100 ? 1100 : attempt - 1);
	if (!(ceiling < cap))
		ceiling = cap;
	r = rand01 ? rand01(ctx) : irfw_rand01(NULL);
	if (!(r >= 0.0)) /* also NaN */
		r = 0.0;
	else if (r > 1.0)
		r = 1.0;
	return r * ceiling;
}

static uint64_t seed64(void)
{
	uint64_t s = 0;
	struct timespec ts;

	if (RAND_bytes((unsigned char *)&s, sizeof(s)) == 1)
		return s;
	if (getrandom(&s, sizeof(s), 0) == (ssize_t)sizeof(s))
		return s;
	/* Last resort, still different per thread and per moment. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&s;
}

double irfw_rand01(void *unused)
{
	/* One generator per thread: no lock, no shared state to race on. */
	static _Thread_local uint64_t state;
	static _Thread_local bool seeded;
	uint64_t z;

	(void)unused;
	if (!seeded) {
		state = seed64();
		seeded = true;
	}
	/* splitmix64 */
	z = (state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

/* The adaptive pacing of services AWS does not document buckets for, as
 * the SDKs' adaptive retry mode does in spirit: nothing until the service
 * throttles; then half the rate (from 10 calls/s), regrown 5 % with each
 * success until it no longer paces at all. */
#define ADAPTIVE_START 10.0
#define ADAPTIVE_MIN   0.5
#define ADAPTIVE_FREE  200.0

static struct rl_state *adaptive_state(struct irfw_ratelimit *rl, const char *account, const char *region,
                                       const char *service, const char *operation)
{
	if (class_of(service, operation, false) != RL_OTHER || rl->cls[RL_OTHER].rate > 0)
		return NULL;
	return find_state(rl, RL_OTHER, account ? account : "", region ? region : "", service ? service : "",
	                  "");
}

void irfw_ratelimit_throttled(struct irfw_ratelimit *rl, const char *account, const char *region,
                              const char *service, const char *operation)
{
	if (!rl)
		return;
	pthread_mutex_lock(&rl->lock);
	struct rl_state *st = adaptive_state(rl, account, region, service, operation);
	if (st) {
		st->adaptive = st->adaptive > 0 ? st->adaptive / 2 : ADAPTIVE_START;
		if (st->adaptive < ADAPTIVE_MIN)
			st->adaptive = ADAPTIVE_MIN;
		/* Pacing starts now: one call may go at once, the rest spaced. */
		st->primed = true;
		st->last = rl->clock.now(rl->clock.ctx);
		if (st->tokens > 1)
			st->tokens = 1;
	}
	pthread_mutex_unlock(&rl->lock);
}

void irfw_ratelimit_succeeded(struct irfw_ratelimit *rl, const char *account, const char *region,
                              const char *service, const char *operation)
{
	if (!rl)
		return;
	pthread_mutex_lock(&rl->lock);
	struct rl_state *st = adaptive_state(rl, account, region, service, operation);
	if (st && st->adaptive > 0) {
		st->adaptive *= 1.05;
		if (st->adaptive > ADAPTIVE_FREE)
			st->adaptive = 0;
	}
	pthread_mutex_unlock(&rl->lock);
}

double irfw_ratelimit_adaptive_rate(struct irfw_ratelimit *rl, const char *account, const char *region,
                                    const char *service)
{
	if (!rl)
		return 0;
	pthread_mutex_lock(&rl->lock);
	struct rl_state *st = adaptive_state(rl, account, region, service, "Any");
	double v = st ? st->adaptive : 0;
	pthread_mutex_unlock(&rl->lock);
	return v;
}

/* ------------------------------------------------------------------ */
/* Retry quota.                                                        */

static struct rl_state *quota_state(struct irfw_ratelimit *rl, const char *account, const char *region,
                                    const char *service, const char *operation)
{
	/* One quota per class (and service), not per action. */
	struct rl_state *st = find_state(rl, class_of(service, operation, false), account ? account : "",
	                                 region ? region : "", service ? service : "", "");
	if (!st->quota_primed) {
		st->quota = IRFW_RETRY_QUOTA;
		st->quota_primed = true;
	}
	return st;
}

int irfw_ratelimit_retry_take(struct irfw_ratelimit *rl, const char *account, const char *region,
                              const char *service, const char *operation, int timeout)
{
	int cost = timeout ? IRFW_RETRY_TIMEOUT_COST : IRFW_RETRY_COST;

	if (!rl)
		return cost;
	pthread_mutex_lock(&rl->lock);
	if (!rl->no_quota) {
		struct rl_state *st = quota_state(rl, account, region, service, operation);
		if (st->quota < cost)
			cost = 0;
		else
			st->quota -= cost;
	}
	pthread_mutex_unlock(&rl->lock);
	return cost;
}

void irfw_ratelimit_retry_success(struct irfw_ratelimit *rl, const char *account, const char *region,
                                  const char *service, const char *operation, int taken)
{
	if (!rl)
		return;
	pthread_mutex_lock(&rl->lock);
	if (!rl->no_quota) {
		struct rl_state *st = quota_state(rl, account, region, service, operation);
		st->quota += taken > 0 ? taken : IRFW_RETRY_SUCCESS_REFILL;
		if (st->quota > IRFW_RETRY_QUOTA)
			st->quota = IRFW_RETRY_QUOTA;
	}
	pthread_mutex_unlock(&rl->lock);
}

double irfw_ratelimit_retry_left(struct irfw_ratelimit *rl, const char *account, const char *region,
                                 const char *service, const char *operation)
{
	double v;

	if (!rl)
		return IRFW_RETRY_QUOTA;
	pthread_mutex_lock(&rl->lock);
	v = rl->no_quota ? IRFW_RETRY_QUOTA : quota_state(rl, account, region, service, operation)->quota;
	pthread_mutex_unlock(&rl->lock);
	return v;
}

void irfw_ratelimit_retry_quota_enable(struct irfw_ratelimit *rl, int on)
{
	if (!rl)
		return;
	pthread_mutex_lock(&rl->lock);
	rl->no_quota = !on;
	pthread_mutex_unlock(&rl->lock);
}
