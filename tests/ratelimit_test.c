/*
 * ratelimit_test.c - class table, token buckets on a fake clock, spec
 * parsing, backoff schedule, and a real-clock concurrency check.
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aws/ratelimit.h"

#define EPS 1e-9

/* ------------------------------------------------------------------ */
/* Fake clock: time moves only when someone sleeps (or never, frozen),
 * and every sleep is recorded.  Locked, since worker threads share it. */

#define MAX_SLEEPS 1024

struct fake_clock {
	pthread_mutex_t lock;
	double t;
	bool frozen; /* sleep records but does not advance: shows bookings */
	double sleeps[MAX_SLEEPS];
	size_t nsleeps;
};

static double fake_now(void *ctx)
{
	struct fake_clock *fc = ctx;
	double t;

	pthread_mutex_lock(&fc->lock);
	t = fc->t;
	pthread_mutex_unlock(&fc->lock);
	return t;
}

static void fake_sleep(void *ctx, double seconds)
{
	struct fake_clock *fc = ctx;

	pthread_mutex_lock(&fc->lock);
	if (fc->nsleeps < MAX_SLEEPS)
		fc->sleeps[fc->nsleeps++] = seconds;
	if (!fc->frozen)
		fc->t += seconds;
	pthread_mutex_unlock(&fc->lock);
}

static void fake_init(struct fake_clock *fc, struct irfw_clock *clk, bool frozen)
{
	memset(fc, 0, sizeof(*fc));
	pthread_mutex_init(&fc->lock, NULL);
	fc->t = 1000.0; /* not 0, so nothing relies on an origin at 0 */
	fc->frozen = frozen;
	clk->now = fake_now;
	clk->sleep = fake_sleep;
	clk->ctx = fc;
}

static void fake_advance(struct fake_clock *fc, double s)
{
	pthread_mutex_lock(&fc->lock);
	fc->t += s;
	pthread_mutex_unlock(&fc->lock);
}

static void fake_reset_sleeps(struct fake_clock *fc)
{
	pthread_mutex_lock(&fc->lock);
	fc->nsleeps = 0;
	pthread_mutex_unlock(&fc->lock);
}

static size_t fake_nsleeps(struct fake_clock *fc)
{
	size_t n;

	pthread_mutex_lock(&fc->lock);
	n = fc->nsleeps;
	pthread_mutex_unlock(&fc->lock);
	return n;
}

static void acquire_n(struct irfw_ratelimit *rl, int n, const char *account, const char *region,
                      const char *service, const char *op)
{
	for (int i = 0; i < n; i++)
		irfw_ratelimit_acquire(rl, account, region, service, op);
}

/* ------------------------------------------------------------------ */

static void test_class_table(void **state)
{
	(void)state;
	assert_string_equal(irfw_ratelimit_class("ec2", "DescribeInstances"), "ec2-describe");
	assert_string_equal(irfw_ratelimit_class("ec2", "DescribeVolumes"), "ec2-describe");
	assert_string_equal(irfw_ratelimit_class("ec2", "GetConsoleOutput"), "ec2-describe");
	assert_string_equal(irfw_ratelimit_class("ec2", "ListImagesInRecycleBin"), "ec2-describe");
	assert_string_equal(irfw_ratelimit_class("ec2", "CreateSnapshot"), "ec2-snapshot");
	assert_string_equal(irfw_ratelimit_class("ec2", "CreateSnapshots"), "ec2-snapshot");
	assert_string_equal(irfw_ratelimit_class("ec2", "ModifyNetworkInterfaceAttribute"), "ec2-eni");
	assert_string_equal(irfw_ratelimit_class("ec2", "CreateTags"), "ec2-tags");
	assert_string_equal(irfw_ratelimit_class("ec2", "StopInstances"), "ec2-mutate");
	assert_string_equal(irfw_ratelimit_class("ec2", "ModifyInstanceAttribute"), "ec2-mutate");
	assert_string_equal(irfw_ratelimit_class("ec2", "CreateSnapshotCopy"), "ec2-mutate");
	assert_string_equal(irfw_ratelimit_class("ec2", "DeleteTags"), "ec2-mutate");
	/* A prefix alone is not a read verb. */
	assert_string_equal(irfw_ratelimit_class("ec2", "Get"), "ec2-mutate");
	assert_string_equal(irfw_ratelimit_class("ec2", "Describeinstances"), "ec2-mutate");
	assert_string_equal(irfw_ratelimit_class("ec2", NULL), "ec2-mutate");
	/* Other services, whatever the operation. */
	assert_string_equal(irfw_ratelimit_class("s3", "GetObject"), "other");
	assert_string_equal(irfw_ratelimit_class("sts", "GetCallerIdentity"), "other");
	assert_string_equal(irfw_ratelimit_class("autoscaling", "DescribeAutoScalingGroups"), "other");
	assert_string_equal(irfw_ratelimit_class("ec2x", "DescribeInstances"), "other");
	assert_string_equal(irfw_ratelimit_class(NULL, "DescribeInstances"), "other");
}

static void test_burst_then_spacing(void **state)
{
	struct fake_clock fc;
	struct irfw_clock clk;
	struct irfw_ratelimit *rl;

	(void)state;
	fake_init(&fc, &clk, false);
	rl = irfw_ratelimit_new(&clk);
	assert_non_null(rl);

	/* Default ec2-describe: 100 at once, then one per 1/20 s. */
	acquire_n(rl, 100, "111", "eu-west-1", "ec2", "DescribeInstances");
	assert_int_equal(fake_nsleeps(&fc), 0);
	assert_true(fabs(fc.t - 1000.0) < EPS);
	acquire_n(rl, 10, "111", "eu-west-1", "ec2", "DescribeInstances");
	assert_int_equal(fake_nsleeps(&fc), 10);
	for (size_t i = 0; i < 10; i++)
		assert_true(fabs(fc.sleeps[i] - 0.05) < EPS);
	assert_true(fabs(fc.t - 1000.5) < EPS);

	/* One idle second refills 20 tokens, not more. */
	fake_reset_sleeps(&fc);
	fake_advance(&fc, 1.0);
	acquire_n(rl, 20, "111", "eu-west-1", "ec2", "DescribeInstances");
	assert_int_equal(fake_nsleeps(&fc), 0);
	irfw_ratelimit_acquire(rl, "111", "eu-west-1", "ec2", "DescribeInstances");
	assert_int_equal(fake_nsleeps(&fc), 1);
	assert_true(fabs(fc.sleeps[0] - 0.05) < EPS);

	/* A long idle refills up to the capacity only. */
	fake_reset_sleeps(&fc);
	fake_advance(&fc, 3600.0);
	acquire_n(rl, 100, "111", "eu-west-1", "ec2", "DescribeInstances");
	assert_int_equal(fake_nsleeps(&fc), 0);
	irfw_ratelimit_acquire(rl, "111", "eu-west-1", "ec2", "DescribeInstances");
	assert_int_equal(fake_nsleeps(&fc), 1);

	irfw_ratelimit_free(rl);
	pthread_mutex_destroy(&fc.lock);
}

/* With time frozen, each waiter's booking shows as its sleep: the n-th
 * waiter past the burst sleeps n/rate. */
static void test_reserve_then_sleep(void **state)
{
	struct fake_clock fc;
	struct irfw_clock clk;
	struct irfw_ratelimit *rl;

	(void)state;
	fake_init(&fc, &clk, true);
	rl = irfw_ratelimit_new(&clk);
	assert_non_null(rl);
	assert_int_equal(irfw_ratelimit_configure(rl, "ec2-mutate", 2, 4), 0);

	acquire_n(rl, 2, "111", "us-east-1", "ec2", "StopInstances");
	assert_int_equal(fake_nsleeps(&fc), 0);
	acquire_n(rl, 5, "111", "us-east-1", "ec2", "StopInstances");
	assert_int_equal(fake_nsleeps(&fc), 5);
	for (size_t i = 0; i < 5; i++)
		assert_true(fabs(fc.sleeps[i] - 0.25 * (double)(i + 1)) < EPS);

	irfw_ratelimit_free(rl);
	pthread_mutex_destroy(&fc.lock);
}

#define FIFO_THREADS 8
#define FIFO_EACH    5

struct fifo_arg {
	struct irfw_ratelimit *rl;
	pthread_barrier_t *start;
};

static void *fifo_worker(void *p)
{
	struct fifo_arg *a = p;

	pthread_barrier_wait(a->start);
	acquire_n(a->rl, FIFO_EACH, "111", "us-east-1", "sts", "GetCallerIdentity");
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Threads racing for one bucket each get their own slot: sorted, the
 * bookings are exactly 1/rate, 2/rate, ... with no two alike. */
static void test_fifo_threads(void **state)
{
	struct fake_clock fc;
	struct irfw_clock clk;
	struct irfw_ratelimit *rl;
	pthread_t th[FIFO_THREADS];
	pthread_barrier_t start;
	struct fifo_arg arg;
	const size_t total = FIFO_THREADS * FIFO_EACH;

	(void)state;
	fake_init(&fc, &clk, true);
	rl = irfw_ratelimit_new(&clk);
	assert_non_null(rl);
	assert_int_equal(irfw_ratelimit_configure(rl, "other", 1, 10), 0);
	pthread_barrier_init(&start, NULL, FIFO_THREADS);
	arg.rl = rl;
	arg.start = &start;
	for (int i = 0; i < FIFO_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fifo_worker, &arg), 0);
	for (int i = 0; i < FIFO_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);

	assert_int_equal(fc.nsleeps, total - 1);
	qsort(fc.sleeps, fc.nsleeps, sizeof(fc.sleeps[0]), cmp_double);
	for (size_t i = 0; i < fc.nsleeps; i++)
		assert_true(fabs(fc.sleeps[i] - 0.1 * (double)(i + 1)) < EPS);

	irfw_ratelimit_free(rl);
	pthread_mutex_destroy(&fc.lock);
}

static void test_separate_keys(void **state)
{
	struct fake_clock fc;
	struct irfw_clock clk;
	struct irfw_ratelimit *rl;

	(void)state;
	fake_init(&fc, &clk, true);
	rl = irfw_ratelimit_new(&clk);
	assert_non_null(rl);
	assert_int_equal(irfw_ratelimit_configure(rl, "ec2-mutate", 3, 1), 0);
	assert_int_equal(irfw_ratelimit_configure(rl, "ec2-tags", 1, 1), 0);
	assert_int_equal(irfw_ratelimit_configure(rl, "ec2-describe", 2, 1), 0);
	assert_int_equal(irfw_ratelimit_configure(rl, "other", 1, 1), 0);

	/* Each account, each region, each class is its own bucket. */
	acquire_n(rl, 3, "111", "us-east-1", "ec2", "StopInstances");
	acquire_n(rl, 3, "222", "us-east-1", "ec2", "StopInstances");
	acquire_n(rl, 3, "111", "eu-west-1", "ec2", "StopInstances");
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "ec2", "CreateTags");
	/* Concatenations that collide as plain strings stay apart. */
	irfw_ratelimit_acquire(rl, "ab", "c", "ec2", "CreateTags");
	irfw_ratelimit_acquire(rl, "a", "bc", "ec2", "CreateTags");
	/* "other" is per service. */
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "s3", "PutObject");
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "sts", "GetCallerIdentity");
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "kms", "Encrypt");
	/* More keys than the registry has hash slots: buckets that share a
	 * slot must still be told apart by every part of the key. */
	for (int i = 0; i < 200; i++) {
		char acct[32];

		snprintf(acct, sizeof(acct), "acct-%d", i);
		acquire_n(rl, 3, acct, "ap-south-1", "ec2", "TerminateInstances");
		acquire_n(rl, 3, "999", acct, "ec2", "TerminateInstances");
		irfw_ratelimit_acquire(rl, "999", "ap-south-1", acct, "Op");
	}
	/* NULL key parts are empty strings, not a crash. */
	irfw_ratelimit_acquire(rl, NULL, NULL, NULL, NULL);
	assert_int_equal(fake_nsleeps(&fc), 0);

	/* EC2 keeps a bucket per action, each of its class's size... */
	acquire_n(rl, 2, "111", "us-east-1", "ec2", "DescribeInstances");
	assert_int_equal(fake_nsleeps(&fc), 0);
	acquire_n(rl, 2, "111", "us-east-1", "ec2", "GetConsoleOutput");
	assert_int_equal(fake_nsleeps(&fc), 0);
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "ec2", "GetConsoleOutput");
	assert_int_equal(fake_nsleeps(&fc), 1);
	/* ...while one other service shares one bucket between operations. */
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "s3", "GetObject");
	assert_int_equal(fake_nsleeps(&fc), 2);
	/* Each exhausted bucket now makes its next caller wait. */
	irfw_ratelimit_acquire(rl, "222", "us-east-1", "ec2", "StopInstances");
	assert_int_equal(fake_nsleeps(&fc), 3);
	irfw_ratelimit_acquire(rl, "a", "bc", "ec2", "CreateTags");
	assert_int_equal(fake_nsleeps(&fc), 4);

	irfw_ratelimit_free(rl);
	pthread_mutex_destroy(&fc.lock);
}

/* The describes EC2 gives a smaller bucket when sent with neither a filter
 * nor pagination draw on it only then, and on a bucket apart from their
 * filtered calls'. */
static void test_unfiltered_bucket(void **state)
{
	struct fake_clock fc;
	struct irfw_clock clk;
	struct irfw_ratelimit *rl;

	(void)state;
	fake_init(&fc, &clk, true);
	rl = irfw_ratelimit_new(&clk);
	assert_non_null(rl);
	assert_string_equal(irfw_ratelimit_class_ex("ec2", "DescribeInstances", IRFW_RL_UNFILTERED),
	                    "ec2-describe-unfiltered");
	assert_string_equal(irfw_ratelimit_class_ex("ec2", "DescribeNetworkInterfaces", IRFW_RL_UNFILTERED),
	                    "ec2-describe-unfiltered");
	assert_string_equal(irfw_ratelimit_class_ex("ec2", "DescribeInstances", 0), "ec2-describe");
	/* Not one of the seven: its one bucket whatever the request. */
	assert_string_equal(irfw_ratelimit_class_ex("ec2", "DescribeInstanceAttribute", IRFW_RL_UNFILTERED),
	                    "ec2-describe");
	assert_string_equal(irfw_ratelimit_class_ex("s3", "ListObjects", IRFW_RL_UNFILTERED), "other");

	/* Default 50/10: the 51st unfiltered call waits 1/10 s; a filtered
	 * one still goes at once. */
	for (int i = 0; i < 50; i++)
		irfw_ratelimit_acquire_ex(rl, "111", "us-east-1", "ec2", "DescribeVolumes",
		                          IRFW_RL_UNFILTERED);
	assert_int_equal(fake_nsleeps(&fc), 0);
	irfw_ratelimit_acquire_ex(rl, "111", "us-east-1", "ec2", "DescribeVolumes", 0);
	assert_int_equal(fake_nsleeps(&fc), 0);
	irfw_ratelimit_acquire_ex(rl, "111", "us-east-1", "ec2", "DescribeVolumes", IRFW_RL_UNFILTERED);
	assert_int_equal(fake_nsleeps(&fc), 1);
	assert_true(fabs(fc.sleeps[0] - 0.1) < EPS);

	irfw_ratelimit_free(rl);
	pthread_mutex_destroy(&fc.lock);
}

/* Priority.  A clock whose sleeps are held at a gate until the test opens
 * it, and that sums what each thread slept: callers asleep on a bucket
 * stay asleep while a more urgent one arrives. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool open;
	int asleep; /* sleeps begun */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
static _Thread_local double slept;

static double gate_now(void *ctx)
{
	(void)ctx;
	return 1000.0; /* frozen: a wait ends by what was slept */
}

static void gate_sleep(void *ctx, double seconds)
{
	(void)ctx;
	slept += seconds;
	pthread_mutex_lock(&gate.lock);
	gate.asleep++;
	pthread_cond_broadcast(&gate.cv);
	while (!gate.open)
		pthread_cond_wait(&gate.cv, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

static void gate_wait_asleep(int n)
{
	pthread_mutex_lock(&gate.lock);
	while (gate.asleep < n)
		pthread_cond_wait(&gate.cv, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

struct prio_arg {
	struct irfw_ratelimit *rl;
	int priority;
	double slept; /* in all, until its turn */
};

static void *prio_worker(void *p)
{
	struct prio_arg *a = p;

	slept = 0;
	irfw_ratelimit_acquire_ex(a->rl, "111", "us-east-1", "ec2", "ModifyInstanceAttribute",
	                          IRFW_RL_PRIORITY(a->priority));
	a->slept = slept;
	return NULL;
}

static void test_priority(void **state)
{
	struct irfw_clock clk = {.now = gate_now, .sleep = gate_sleep, .ctx = NULL};
	struct irfw_ratelimit *rl;
	pthread_t th[4];
	/* two less urgent (2) asleep, then an urgent (0), then one more of 2 */
	struct prio_arg arg[4] = {{.priority = 2}, {.priority = 2}, {.priority = 0}, {.priority = 2}};

	(void)state;
	rl = irfw_ratelimit_new(&clk);
	assert_non_null(rl);
	assert_int_equal(irfw_ratelimit_configure(rl, "ec2-mutate", 1, 1), 0);
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "ec2", "ModifyInstanceAttribute"); /* the burst */
	for (int i = 0; i < 4; i++) {
		arg[i].rl = rl;
		assert_int_equal(pthread_create(&th[i], NULL, prio_worker, &arg[i]), 0);
		gate_wait_asleep(i + 1); /* booked, in this order */
	}
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.lock);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);

	/* The urgent caller took the first turn; the others moved one turn
	 * later each, in their order, and the rate (1/s) held: turns 1..4. */
	assert_true(fabs(arg[2].slept - 1.0) < EPS);
	assert_true(fabs(arg[0].slept - 2.0) < EPS);
	assert_true(fabs(arg[1].slept - 3.0) < EPS);
	assert_true(fabs(arg[3].slept - 4.0) < EPS);
	/* Another bucket, another action: not affected. */
	slept = 0;
	irfw_ratelimit_acquire_ex(rl, "111", "us-east-1", "ec2", "StopInstances", IRFW_RL_PRIORITY(3));
	assert_true(slept == 0);
	irfw_ratelimit_free(rl);
}

static void test_configure(void **state)
{
	struct fake_clock fc;
	struct irfw_clock clk;
	struct irfw_ratelimit *rl;

	(void)state;
	fake_init(&fc, &clk, true);
	rl = irfw_ratelimit_new(&clk);
	assert_non_null(rl);

	assert_int_equal(irfw_ratelimit_configure(rl, "ec2-foo", 10, 1), -1);
	assert_int_equal(irfw_ratelimit_configure(rl, NULL, 10, 1), -1);
	assert_int_equal(irfw_ratelimit_configure(NULL, "other", 10, 1), -1);
	assert_int_equal(irfw_ratelimit_configure(rl, "other", -1, 1), -1);
	assert_int_equal(irfw_ratelimit_configure(rl, "other", 10, -1), -1);
	assert_int_equal(irfw_ratelimit_configure(rl, "other", NAN, 1), -1);
	assert_int_equal(irfw_ratelimit_configure(rl, "other", 10, INFINITY), -1);
	assert_int_equal(irfw_ratelimit_configure(rl, "other", 0.5, 1), -1);

	/* A smaller capacity applies to a bucket that already exists. */
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "sns", "Publish");
	assert_int_equal(irfw_ratelimit_configure(rl, "other", 2, 1), 0);
	acquire_n(rl, 2, "111", "us-east-1", "sns", "Publish");
	assert_int_equal(fake_nsleeps(&fc), 0);
	irfw_ratelimit_acquire(rl, "111", "us-east-1", "sns", "Publish");
	assert_int_equal(fake_nsleeps(&fc), 1);
	assert_true(fabs(fc.sleeps[0] - 1.0) < EPS);

	/* Rate 0 turns the class's limit off. */
	fake_reset_sleeps(&fc);
	assert_int_equal(irfw_ratelimit_configure(rl, "ec2-mutate", 0, 0), 0);
	acquire_n(rl, 1000, "111", "us-east-1", "ec2", "StopInstances");
	assert_int_equal(fake_nsleeps(&fc), 0);

	/* No registry, no limit. */
	irfw_ratelimit_acquire(NULL, "111", "us-east-1", "ec2", "StopInstances");

	irfw_ratelimit_free(rl);
	irfw_ratelimit_free(NULL);
	pthread_mutex_destroy(&fc.lock);
}

static void test_parse_spec(void **state)
{
	static const char *const bad[] = {
	    "",      "50",     "50/",   "/5",    "/",       "50/5/1", "-1/5",  "50/-5",  "+5/1",   "abc",
	    "5a/1",  "1e3/5",  " 50/5", "50/5 ", "50 /5",   "inf/1",  "nan/1", "1/inf",  "0x10/5", "0/5",
	    "0.5/1", "1..2/3", "./1",   "1/.",   "1.2.3/4", "50\\5",  "50,5",  "50/5\n",
	};
	double cap = -7, rate = -7;

	(void)state;
	assert_int_equal(irfw_ratelimit_parse_spec("50/5", &cap, &rate), 0);
	assert_true(cap == 50.0 && rate == 5.0);
	assert_int_equal(irfw_ratelimit_parse_spec("0/0", &cap, &rate), 0);
	assert_true(cap == 0.0 && rate == 0.0);
	assert_int_equal(irfw_ratelimit_parse_spec("100/0.5", &cap, &rate), 0);
	assert_true(cap == 100.0 && rate == 0.5);
	assert_int_equal(irfw_ratelimit_parse_spec("1.5/.25", &cap, &rate), 0);
	assert_true(cap == 1.5 && rate == 0.25);
	/* Capacity is moot when the limit is off. */
	assert_int_equal(irfw_ratelimit_parse_spec("50/0", &cap, &rate), 0);
	assert_true(cap == 50.0 && rate == 0.0);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cap = -7;
		rate = -7;
		if (irfw_ratelimit_parse_spec(bad[i], &cap, &rate) != -1)
			fail_msg("accepted bad spec \"%s\"", bad[i]);
		assert_true(cap == -7 && rate == -7);
	}
	assert_int_equal(irfw_ratelimit_parse_spec(NULL, &cap, &rate), -1);
	assert_int_equal(irfw_ratelimit_parse_spec("50/5", NULL, &rate), -1);
	assert_int_equal(irfw_ratelimit_parse_spec("50/5", &cap, NULL), -1);
}

static double fixed_rand(void *ctx)
{
	return *(const double *)ctx;
}

static void test_backoff(void **state)
{
	static const double expect[] = {0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 20, 20, 20};
	double one = 1.0, zero = 0.0, half = 0.5, two = 2.0, neg = -1.0, nan_ = NAN;

	(void)state;
	for (int i = 0; i < (int)(sizeof(expect) / sizeof(expect[0])); i++)
		assert_true(fabs(irfw_backoff_delay(i + 1, 0.1, 20, fixed_rand, &one) - expect[i]) < EPS);
	assert_true(irfw_backoff_delay(64, 0.1, 20, fixed_rand, &one) == 20.0);
	assert_true(irfw_backoff_delay(5000, 0.1, 20, fixed_rand, &one) == 20.0);
	assert_true(irfw_backoff_delay(INT_MAX, 0.1, 20, fixed_rand, &one) == 20.0);
	for (int i = 1; i <= 12; i++)
		assert_true(irfw_backoff_delay(i, 0.1, 20, fixed_rand, &zero) == 0.0);

	/* Throttling base. */
	assert_true(fabs(irfw_backoff_delay(1, 0.5, 20, fixed_rand, &half) - 0.25) < EPS);
	assert_true(fabs(irfw_backoff_delay(3, 0.5, 20, fixed_rand, &half) - 1.0) < EPS);
	assert_true(fabs(irfw_backoff_delay(7, 0.5, 20, fixed_rand, &one) - 20.0) < EPS);

	/* Nonsense in, no delay or a clamped one out. */
	assert_true(irfw_backoff_delay(0, 0.1, 20, fixed_rand, &one) == 0.0);
	assert_true(irfw_backoff_delay(-3, 0.1, 20, fixed_rand, &one) == 0.0);
	assert_true(irfw_backoff_delay(1, 0.0, 20, fixed_rand, &one) == 0.0);
	assert_true(irfw_backoff_delay(1, 0.1, 0.0, fixed_rand, &one) == 0.0);
	assert_true(irfw_backoff_delay(1, NAN, 20, fixed_rand, &one) == 0.0);
	assert_true(fabs(irfw_backoff_delay(2, 0.1, 20, fixed_rand, &two) - 0.2) < EPS);
	assert_true(irfw_backoff_delay(2, 0.1, 20, fixed_rand, &neg) == 0.0);
	assert_true(irfw_backoff_delay(2, 0.1, 20, fixed_rand, &nan_) == 0.0);

	/* The default source stays within the ceiling. */
	for (int i = 0; i < 1000; i++) {
		double d = irfw_backoff_delay(4, 0.1, 20, NULL, NULL);

		assert_true(d >= 0.0 && d < 0.8);
	}
}

#define RAND_THREADS 4
#define RAND_N       20000

static void *rand_worker(void *p)
{
	double *first = p;

	*first = irfw_rand01(NULL);
	for (int i = 0; i < RAND_N; i++) {
		double r = irfw_rand01(NULL);

		if (!(r >= 0.0 && r < 1.0))
			*first = -1.0; /* reported by the main thread */
	}
	return NULL;
}

static void test_rand01(void **state)
{
	pthread_t th[RAND_THREADS];
	double first[RAND_THREADS];
	double sum = 0, lo = 1, hi = 0;

	(void)state;
	for (int i = 0; i < RAND_N; i++) {
		double r = irfw_rand01(NULL);

		assert_true(r >= 0.0 && r < 1.0);
		sum += r;
		lo = r < lo ? r : lo;
		hi = r > hi ? r : hi;
	}
	assert_true(fabs(sum / RAND_N - 0.5) < 0.02);
	assert_true(lo < 0.01 && hi > 0.99);

	/* Threads draw without a shared lock and get their own streams. */
	for (int i = 0; i < RAND_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, rand_worker, &first[i]), 0);
	for (int i = 0; i < RAND_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < RAND_THREADS; i++) {
		assert_true(first[i] >= 0.0);
		for (int j = 0; j < i; j++)
			assert_true(first[i] != first[j]);
	}
}

static void test_real_clock(void **state)
{
	const struct irfw_clock *c = irfw_clock_real();
	double t0, t1, t2;

	(void)state;
	assert_ptr_equal(c, irfw_clock_real());
	t0 = c->now(c->ctx);
	c->sleep(c->ctx, 0.0);
	c->sleep(c->ctx, -1.0);
	c->sleep(c->ctx, NAN);
	t1 = c->now(c->ctx);
	assert_true(t1 >= t0);
	assert_true(t1 - t0 < 0.5);
	c->sleep(c->ctx, 0.02);
	t2 = c->now(c->ctx);
	assert_true(t2 - t1 >= 0.02);
}

/* ------------------------------------------------------------------ */
/* Real threads, real clock: every call is granted, none early, no hang. */

#define CONC_THREADS  8
#define CONC_EACH     25
#define CONC_DEADLINE 30 /* seconds; a hang fails instead of blocking CI */

struct conc {
	struct irfw_ratelimit *rl;
	pthread_mutex_t lock;
	pthread_cond_t done_cv;
	int grants;
	int done;
};

static void *conc_worker(void *p)
{
	struct conc *c = p;

	for (int i = 0; i < CONC_EACH; i++) {
		/* One action: EC2's buckets are per action. */
		irfw_ratelimit_acquire(c->rl, "123456789012", "us-east-1", "ec2", "DescribeInstances");
		pthread_mutex_lock(&c->lock);
		c->grants++;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&c->lock);
	c->done++;
	pthread_cond_signal(&c->done_cv);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void test_concurrency_real_clock(void **state)
{
	const struct irfw_clock *clk = irfw_clock_real();
	pthread_t th[CONC_THREADS];
	struct conc c = {0};
	pthread_condattr_t ca;
	struct timespec deadline;
	double t0, elapsed;
	int rc = 0;

	(void)state;
	c.rl = irfw_ratelimit_new(NULL);
	assert_non_null(c.rl);
	assert_int_equal(irfw_ratelimit_configure(c.rl, "ec2-describe", 10, 1000), 0);
	pthread_mutex_init(&c.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c.done_cv, &ca);
	pthread_condattr_destroy(&ca);

	t0 = clk->now(clk->ctx);
	for (int i = 0; i < CONC_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, conc_worker, &c), 0);

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += CONC_DEADLINE;
	pthread_mutex_lock(&c.lock);
	while (c.done < CONC_THREADS && rc == 0)
		rc = pthread_cond_timedwait(&c.done_cv, &c.lock, &deadline);
	pthread_mutex_unlock(&c.lock);
	if (c.done < CONC_THREADS)
		fail_msg("deadlock: %d of %d threads done after %d s", c.done, CONC_THREADS, CONC_DEADLINE);
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	elapsed = clk->now(clk->ctx) - t0;

	assert_int_equal(c.grants, CONC_THREADS * CONC_EACH);
	/* 10 from the burst, the other 190 at no more than 1000 per second. */
	if (elapsed < (CONC_THREADS * CONC_EACH - 10) / 1000.0)
		fail_msg("200 grants in %.4f s: faster than the bucket allows", elapsed);

	pthread_cond_destroy(&c.done_cv);
	pthread_mutex_destroy(&c.lock);
	irfw_ratelimit_free(c.rl);
}

static void test_adaptive_other(void **state)
{
	struct fake_clock fc;
	struct irfw_clock clk;
	struct irfw_ratelimit *rl;

	(void)state;
	fake_init(&fc, &clk, false);
	rl = irfw_ratelimit_new(&clk);
	assert_non_null(rl);
	/* No pacing at all until the service throttles. */
	for (int i = 0; i < 100; i++)
		irfw_ratelimit_acquire(rl, "111", "us-east-1", "s3", "PutObject");
	assert_int_equal(fc.nsleeps, 0);
	assert_true(irfw_ratelimit_adaptive_rate(rl, "111", "us-east-1", "s3") == 0);
	/* Throttled: 10 calls a second, then half at each throttling. */
	irfw_ratelimit_throttled(rl, "111", "us-east-1", "s3", "PutObject");
	assert_true(irfw_ratelimit_adaptive_rate(rl, "111", "us-east-1", "s3") == 10.0);
	irfw_ratelimit_throttled(rl, "111", "us-east-1", "s3", "PutObject");
	assert_true(irfw_ratelimit_adaptive_rate(rl, "111", "us-east-1", "s3") == 5.0);
	for (int i = 0; i < 6; i++)
		irfw_ratelimit_acquire(rl, "111", "us-east-1", "s3", "PutObject");
	assert_true(fc.nsleeps >= 4);
	/* Other services and the EC2 buckets are not touched by it. */
	assert_true(irfw_ratelimit_adaptive_rate(rl, "111", "us-east-1", "sns") == 0);
	irfw_ratelimit_throttled(rl, "111", "us-east-1", "ec2", "StopInstances");
	assert_true(irfw_ratelimit_adaptive_rate(rl, "111", "us-east-1", "ec2") == 0);
	/* Successes regrow it until it paces no more. */
	for (int i = 0; i < 200; i++)
		irfw_ratelimit_succeeded(rl, "111", "us-east-1", "s3", "PutObject");
	assert_true(irfw_ratelimit_adaptive_rate(rl, "111", "us-east-1", "s3") == 0);
	/* A configured "other" is a fixed bucket: no adaptation. */
	assert_int_equal(irfw_ratelimit_configure(rl, "other", 5, 1), 0);
	irfw_ratelimit_throttled(rl, "111", "us-east-1", "s3", "PutObject");
	assert_true(irfw_ratelimit_adaptive_rate(rl, "111", "us-east-1", "s3") == 0);
	irfw_ratelimit_free(rl);
}

/* The retry quota (SDK standard mode), per bucket. */
static void test_retry_quota(void **state)
{
	struct irfw_ratelimit *rl;
	const char *A = "111", *R = "us-east-1";

	(void)state;
	rl = irfw_ratelimit_new(NULL);
	assert_non_null(rl);
	assert_true(irfw_ratelimit_retry_left(rl, A, R, "ec2", "CreateSnapshots") == IRFW_RETRY_QUOTA);
	/* A retry costs 5, one after a timeout 10. */
	assert_int_equal(irfw_ratelimit_retry_take(rl, A, R, "ec2", "CreateSnapshots", 0), IRFW_RETRY_COST);
	assert_int_equal(irfw_ratelimit_retry_take(rl, A, R, "ec2", "CreateSnapshots", 1),
	                 IRFW_RETRY_TIMEOUT_COST);
	assert_true(irfw_ratelimit_retry_left(rl, A, R, "ec2", "CreateSnapshot") ==
	            IRFW_RETRY_QUOTA - IRFW_RETRY_COST - IRFW_RETRY_TIMEOUT_COST);
	/* Per bucket: the describe class and another region are untouched. */
	assert_true(irfw_ratelimit_retry_left(rl, A, R, "ec2", "DescribeInstances") == IRFW_RETRY_QUOTA);
	assert_true(irfw_ratelimit_retry_left(rl, A, "eu-west-1", "ec2", "CreateSnapshots") ==
	            IRFW_RETRY_QUOTA);
	assert_true(irfw_ratelimit_retry_left(rl, A, R, "sns", "Publish") == IRFW_RETRY_QUOTA);
	/* Success after a retry refunds what that retry took. */
	irfw_ratelimit_retry_success(rl, A, R, "ec2", "CreateSnapshots", IRFW_RETRY_TIMEOUT_COST);
	assert_true(irfw_ratelimit_retry_left(rl, A, R, "ec2", "CreateSnapshots") ==
	            IRFW_RETRY_QUOTA - IRFW_RETRY_COST);
	/* Success at once gives back 1, never above the start. */
	irfw_ratelimit_retry_success(rl, A, R, "ec2", "CreateSnapshots", 0);
	assert_true(irfw_ratelimit_retry_left(rl, A, R, "ec2", "CreateSnapshots") ==
	            IRFW_RETRY_QUOTA - IRFW_RETRY_COST + IRFW_RETRY_SUCCESS_REFILL);
	for (int i = 0; i < 10; i++)
		irfw_ratelimit_retry_success(rl, A, R, "ec2", "CreateSnapshots", 0);
	assert_true(irfw_ratelimit_retry_left(rl, A, R, "ec2", "CreateSnapshots") == IRFW_RETRY_QUOTA);
	/* Spent: 50 timeout retries empty it; then no retry is allowed, of
	 * either kind, and nothing goes below zero. */
	for (int i = 0; i < IRFW_RETRY_QUOTA / IRFW_RETRY_TIMEOUT_COST; i++)
		assert_int_equal(irfw_ratelimit_retry_take(rl, A, R, "ec2", "CreateSnapshots", 1),
		                 IRFW_RETRY_TIMEOUT_COST);
	assert_int_equal(irfw_ratelimit_retry_take(rl, A, R, "ec2", "CreateSnapshots", 1), 0);
	assert_int_equal(irfw_ratelimit_retry_take(rl, A, R, "ec2", "CreateSnapshots", 0), 0);
	assert_true(irfw_ratelimit_retry_left(rl, A, R, "ec2", "CreateSnapshots") == 0);
	/* Successes refill it until a retry fits again. */
	for (int i = 0; i < IRFW_RETRY_COST - 1; i++)
		irfw_ratelimit_retry_success(rl, A, R, "ec2", "CreateSnapshots", 0);
	assert_int_equal(irfw_ratelimit_retry_take(rl, A, R, "ec2", "CreateSnapshots", 0), 0);
	irfw_ratelimit_retry_success(rl, A, R, "ec2", "CreateSnapshots", 0);
	assert_int_equal(irfw_ratelimit_retry_take(rl, A, R, "ec2", "CreateSnapshots", 0), IRFW_RETRY_COST);
	/* Legacy mode keeps no quota: always allowed, nothing taken. */
	irfw_ratelimit_retry_quota_enable(rl, 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(irfw_ratelimit_retry_take(rl, A, R, "ec2", "CreateSnapshots", 1),
		                 IRFW_RETRY_TIMEOUT_COST);
	/* NULL registry: allowed. */
	assert_int_equal(irfw_ratelimit_retry_take(NULL, A, R, "ec2", "X", 0), IRFW_RETRY_COST);
	irfw_ratelimit_retry_success(NULL, A, R, "ec2", "X", 0);
	irfw_ratelimit_free(rl);
}

/* The standard schedule's bound for a throttling burst: the delays before
 * retries 1..n never exceed min(cap, base 2^(k-1)) each, and with the
 * attempts a 4-s burst takes, their sum can cover it. */
static void test_backoff_throttle_schedule(void **state)
{
	double top = 0, sum_max = 0;

	(void)state;
	for (int k = 1; k <= 8; k++) {
		double d = irfw_backoff_delay(k, 0.5, 20.0, NULL, NULL);
		double ceiling = fmin(20.0, 0.5 * pow(2, k - 1));
		assert_true(d >= 0 && d <= ceiling + EPS);
		top = fmax(top, d);
		sum_max += ceiling;
	}
	assert_true(top <= 20.0);
	/* 0.5 + 1 + 2 + 4 + 8 + 16 + 20 + 20 */
	assert_true(fabs(sum_max - 71.5) < EPS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_class_table),
	    cmocka_unit_test(test_burst_then_spacing),
	    cmocka_unit_test(test_reserve_then_sleep),
	    cmocka_unit_test(test_fifo_threads),
	    cmocka_unit_test(test_separate_keys),
	    cmocka_unit_test(test_configure),
	    cmocka_unit_test(test_unfiltered_bucket),
	    cmocka_unit_test(test_priority),
	    cmocka_unit_test(test_adaptive_other),
	    cmocka_unit_test(test_parse_spec),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_rand01),
	    cmocka_unit_test(test_real_clock),
	    cmocka_unit_test(test_concurrency_real_clock),
	    cmocka_unit_test(test_retry_quota),
	    cmocka_unit_test(test_backoff_throttle_schedule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
