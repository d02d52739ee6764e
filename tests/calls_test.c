/*
 * calls_test.c - irfw_calls (ABI 1.8): several calls of one target sent at
 * once.  Driven through the real irfw_calls_run() and its pool, with the
 * AWS client's requests replaced by answers of our own (the link wraps
 * irfw_aws_request and irfw_aws_request_ex): answers that come back in
 * the reverse order of the calls, one failure among several, a set of one
 * and of none, params changed after they were added, a dry run, and many
 * targets' sets at once (the --jobs workers of a run).  Also one
 * instance's containment read from several threads at once, as the
 * prepares of different steps (ABI 1.9) do when they expand a template.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aws/xml.h"
#include "run.h"

/* The fake AWS.  A call's params carry "N" (its number in the test) and
 * "SleepMs"; the answer is {"Echo": N, "Thread": "caller"|"other"} and
 * request id "req-N", or, when N is in fail_n, AccessDenied with request
 * id "err-N". */
static struct {
	pthread_mutex_t lock;
	pthread_t caller; /* the test's thread */
	int in_flight, max_in_flight;
	int calls, calls_ex;
	int fail_n[4];
	char seen[64][160]; /* "op params" in the order they arrived */
	int n_seen;
	bool dry_seen;
	const char *xml; /* answer with this XML body instead */
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int answer(const char *region, const char *operation, const cJSON *params, bool dry_run,
                  cJSON **result, struct irfw_aws_error *e, char req_id[128])
{
	int n = irfw_json_int(params, "N", -1);
	long ms = irfw_json_long(params, "SleepMs", 0);
	bool mine = pthread_equal(pthread_self(), fake.caller);
	pthread_mutex_lock(&fake.lock);
	fake.in_flight++;
	if (fake.in_flight > fake.max_in_flight)
		fake.max_in_flight = fake.in_flight;
	if (fake.n_seen < 64) {
		char *p = cJSON_PrintUnformatted(params);
		snprintf(fake.seen[fake.n_seen++], sizeof(fake.seen[0]), "%s %s %s", region, operation,
		         p ? p : "null");
		free(p);
	}
	fake.dry_seen = fake.dry_seen || dry_run;
	pthread_mutex_unlock(&fake.lock);
	if (ms)
		sleep_ms(ms);
	pthread_mutex_lock(&fake.lock);
	fake.in_flight--;
	pthread_mutex_unlock(&fake.lock);

	memset(e, 0, sizeof(*e));
	req_id[0] = '\0';
	for (size_t i = 0; i < sizeof(fake.fail_n) / sizeof(fake.fail_n[0]); i++) {
		if (fake.fail_n[i] && fake.fail_n[i] == n) {
			e->http_status = 403;
			snprintf(e->code, sizeof(e->code), "AccessDenied");
			snprintf(e->message, sizeof(e->message), "denied %d", n);
			snprintf(e->request_id, sizeof(e->request_id), "err-%d", n);
			return -1;
		}
	}
	snprintf(req_id, 128, "req-%d", n);
	if (fake.xml) {
		char err[128];
		*result = irfw_xml_to_json(fake.xml, strlen(fake.xml), err, sizeof(err));
		return 0;
	}
	*result = cJSON_CreateObject();
	cJSON_AddNumberToObject(*result, "Echo", n);
	cJSON_AddStringToObject(*result, "Thread", mine ? "caller" : "other");
	return 0;
}

int __wrap_irfw_aws_request(struct irfw_aws *a, const char *region, const char *service,
                            const char *operation, const cJSON *params, bool dry_run, cJSON **result,
                            struct irfw_aws_error *e, char req_id[128]);
int __wrap_irfw_aws_request(struct irfw_aws *a, const char *region, const char *service,
                            const char *operation, const cJSON *params, bool dry_run, cJSON **result,
                            struct irfw_aws_error *e, char req_id[128])
{
	(void)a;
	(void)service;
	pthread_mutex_lock(&fake.lock);
	fake.calls++;
	pthread_mutex_unlock(&fake.lock);
	return answer(region, operation, params, dry_run, result, e, req_id);
}

int __wrap_irfw_aws_request_ex(struct irfw_aws *a, const char *region, const char *service,
                               const char *operation, const cJSON *params, bool dry_run, unsigned flags,
                               cJSON **result, struct irfw_aws_error *e, char req_id[128]);
int __wrap_irfw_aws_request_ex(struct irfw_aws *a, const char *region, const char *service,
                               const char *operation, const cJSON *params, bool dry_run, unsigned flags,
                               cJSON **result, struct irfw_aws_error *e, char req_id[128])
{
	(void)a;
	(void)service;
	/* Besides the flag, only the step's priority may be set. */
	assert_int_equal(flags & ~IRFW_AWS_REQ_PRIORITY(3), flags & IRFW_AWS_REQ_NOT_IDEMPOTENT);
	pthread_mutex_lock(&fake.lock);
	if (flags & IRFW_AWS_REQ_NOT_IDEMPOTENT)
		fake.calls_ex++;
	else
		fake.calls++;
	pthread_mutex_unlock(&fake.lock);
	return answer(region, operation, params, dry_run, result, e, req_id);
}

/* One run with `n_targets` targets, each running the same step. */
#define MAX_T 12
struct world {
	struct irfw_run run;
	struct irfw_module mod;
	struct irfw_step step;
	struct irfw_target t[MAX_T];
	struct irfw_step_result res[MAX_T];
	struct irfw_target *targets[MAX_T];
};

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_lock(&fake.lock);
	fake.in_flight = fake.max_in_flight = fake.calls = fake.calls_ex = fake.n_seen = 0;
	memset(fake.fail_n, 0, sizeof(fake.fail_n));
	fake.dry_seen = false;
	fake.xml = NULL;
	fake.caller = pthread_self();
	pthread_mutex_unlock(&fake.lock);
	w->run.aws = (struct irfw_aws *)&fake; /* never dereferenced: the fake answers */
	w->run.resolved_region = "us-east-1";
	w->mod.name = "test";
	w->mod.vt.abi_major = IRFW_ABI_MAJOR;
	w->mod.vt.abi_minor = IRFW_ABI_MINOR;
	w->step.name = "test";
	w->step.mod = &w->mod;
	for (int i = 0; i < MAX_T; i++) {
		w->t[i].run = &w->run;
		w->t[i].id = "i-1";
		w->t[i].cur = &w->step;
		w->t[i].cur_res = &w->res[i];
		w->res[i].step = "test";
		w->targets[i] = &w->t[i];
	}
	w->run.batch.run = &w->run;
	w->run.batch.targets = w->targets;
	w->run.batch.n = MAX_T;
}

static void world_free(struct world *w)
{
	irfw_calls_pool_free(&w->run);
	assert_null(w->run.calls_pool);
	for (int i = 0; i < MAX_T; i++) {
		cJSON_Delete(w->res[i].request_ids);
		cJSON_Delete(w->res[i].unchecked);
	}
}

static cJSON *call_params(int n, long sleep)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddNumberToObject(p, "N", n);
	if (sleep)
		cJSON_AddNumberToObject(p, "SleepMs", (double)sleep);
	return p;
}

static void assert_json(const cJSON *j, const char *want)
{
	char *s = cJSON_PrintUnformatted(j);
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

/* Answers arriving in reverse order: results and request ids still by
 * index, and the calls really were in flight together. */
static void test_order(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	irfw_target *t = &w.t[0];
	irfw_calls *c = irfw_calls_new(t);
	assert_non_null(c);
	for (int i = 0; i < 6; i++) {
		/* The first added answers last. */
		cJSON *p = call_params(i + 1, 60 * (6 - i));
		assert_int_equal(irfw_calls_add(c, NULL, "kms", "DescribeKey", p, 0), i);
		cJSON_Delete(p);
	}
	assert_int_equal(irfw_calls_count(c), 6);
	assert_int_equal(irfw_calls_run(c), 0);
	assert_int_equal(fake.calls, 6);
	assert_true(fake.max_in_flight >= 3);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(irfw_json_int(irfw_calls_result(c, (size_t)i), "Echo", -1), i + 1);
		assert_int_equal(irfw_calls_select(c, (size_t)i), 0);
		char want[16];
		snprintf(want, sizeof(want), "req-%d", i + 1);
		assert_string_equal(irfw_aws_last_request_id(t), want);
		assert_string_equal(irfw_aws_error_code(t), "");
	}
	assert_json(w.res[0].request_ids, "[\"req-1\",\"req-2\",\"req-3\",\"req-4\",\"req-5\",\"req-6\"]");
	/* Out of range: -1, nothing. */
	assert_null(irfw_calls_result(c, 6));
	assert_int_equal(irfw_calls_select(c, 6), -1);
	irfw_calls_free(c);
	world_free(&w);
}

/* One failure among several: the others' results stand, the failure is
 * the target's (the IAM permission named), and select picks each. */
static void test_one_failure(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	fake.fail_n[0] = 3;
	irfw_target *t = &w.t[0];
	snprintf(t->calls.err.code, sizeof(t->calls.err.code), "Stale"); /* an earlier call's */
	irfw_calls *c = irfw_calls_new(t);
	for (int i = 0; i < 5; i++) {
		cJSON *p = call_params(i + 1, 20);
		irfw_calls_add(c, "eu-west-1", "s3", "PutObject", p, 0);
		cJSON_Delete(p);
	}
	assert_int_equal(irfw_calls_run(c), 1);
	/* After the run: the failed call's error is the target's. */
	assert_string_equal(irfw_aws_error_code(t), "AccessDenied");
	assert_string_equal(irfw_aws_request_id(t), "err-3");
	assert_string_equal(irfw_aws_error_message(t), "denied 3 (needs the IAM permission s3:PutObject)");
	assert_string_equal(irfw_aws_last_request_id(t), "req-5");
	assert_string_equal(t->calls.first_err.code, "AccessDenied");
	assert_string_equal(t->calls.first_err.request_id, "err-3");
	assert_string_equal(t->calls.err_operation, "PutObject");
	/* Select a success: no error; the failure again: its error. */
	assert_int_equal(irfw_calls_select(c, 1), 0);
	assert_string_equal(irfw_aws_error_code(t), "");
	assert_string_equal(irfw_aws_last_request_id(t), "req-2");
	assert_int_equal(irfw_calls_select(c, 2), -1);
	assert_string_equal(irfw_aws_request_id(t), "err-3");
	assert_string_equal(irfw_aws_last_request_id(t), "");
	assert_null(irfw_calls_result(c, 2));
	assert_non_null(irfw_calls_result(c, 4));
	/* The step's failure names it, and its request ids include it, in
	 * index order. */
	assert_int_equal(irfw_fail_aws(t, "PutObject of artifact 3"), IRFW_FAILED);
	assert_string_equal(w.res[0].aws_error,
	                    "AccessDenied: denied 3 (needs the IAM permission s3:PutObject)");
	assert_string_equal(w.res[0].request_id, "err-3");
	assert_json(w.res[0].request_ids, "[\"req-1\",\"req-2\",\"err-3\",\"req-4\",\"req-5\"]");
	free(w.res[0].detail);
	free(w.res[0].aws_error);
	free(w.res[0].request_id);
	irfw_calls_free(c);
	world_free(&w);

	/* Two failures: the first by index is the target's, and the step's
	 * first error, whichever answered first. */
	world_init(&w);
	t = &w.t[0];
	fake.fail_n[0] = 4;
	fake.fail_n[1] = 2;
	c = irfw_calls_new(t);
	for (int i = 0; i < 4; i++) {
		cJSON *p = call_params(i + 1, i == 1 ? 80 : 0); /* call 2 answers last */
		irfw_calls_add(c, NULL, "ec2", "ModifyInstanceAttribute", p, 0);
		cJSON_Delete(p);
	}
	assert_int_equal(irfw_calls_run(c), 2);
	assert_string_equal(irfw_aws_request_id(t), "err-2");
	assert_string_equal(t->calls.first_err.request_id, "err-2");
	assert_string_equal(irfw_aws_error_message(t),
	                    "denied 2 (needs the IAM permission ec2:ModifyInstanceAttribute)");
	irfw_calls_free(c);
	world_free(&w);
}

/* None and one: nothing sent; one sent in the caller's thread, no pool. */
static void test_zero_and_one(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	irfw_target *t = &w.t[0];
	irfw_calls *c = irfw_calls_new(t);
	assert_int_equal(irfw_calls_count(c), 0);
	assert_int_equal(irfw_calls_run(c), 0);
	assert_int_equal(fake.calls, 0);
	assert_null(irfw_calls_result(c, 0));
	assert_int_equal(irfw_calls_select(c, 0), -1);
	irfw_calls_free(c);
	assert_null(w.run.calls_pool);

	c = irfw_calls_new(t);
	cJSON *p = call_params(7, 0);
	irfw_calls_add(c, NULL, "kms", "DescribeKey", p, 0);
	cJSON_Delete(p);
	assert_int_equal(irfw_calls_run(c), 0);
	assert_string_equal(irfw_json_str(irfw_calls_result(c, 0), "Thread"), "caller");
	assert_null(w.run.calls_pool); /* no thread for one call */
	assert_string_equal(irfw_aws_last_request_id(t), "req-7");
	/* Run again: nothing new to send. */
	assert_int_equal(irfw_calls_run(c), 0);
	assert_int_equal(fake.calls, 1);
	/* A call added after a run is sent by the next run, alone. */
	p = call_params(8, 0);
	assert_int_equal(irfw_calls_add(c, NULL, "kms", "DescribeKey", p, IRFW_CALL_NOT_IDEMPOTENT), 1);
	cJSON_Delete(p);
	assert_int_equal(irfw_calls_run(c), 0);
	assert_int_equal(fake.calls, 1);
	assert_int_equal(fake.calls_ex, 1);
	assert_int_equal(irfw_json_int(irfw_calls_result(c, 1), "Echo", -1), 8);
	assert_json(w.res[0].request_ids, "[\"req-7\",\"req-8\"]");
	irfw_calls_free(c);

	/* Bad arguments. */
	assert_null(irfw_calls_new(NULL));
	assert_int_equal(irfw_calls_add(NULL, NULL, "kms", "DescribeKey", NULL, 0), -1);
	c = irfw_calls_new(t);
	assert_int_equal(irfw_calls_add(c, NULL, NULL, "DescribeKey", NULL, 0), -1);
	assert_int_equal(irfw_calls_add(c, NULL, "kms", "", NULL, 0), -1);
	assert_int_equal(irfw_calls_count(c), 0);
	irfw_calls_free(c);
	assert_int_equal(irfw_calls_run(NULL), -1);
	irfw_calls_free(NULL);
	world_free(&w);
}

/* Params (and the region) are copied: the caller may change and free them
 * at once.  Region NULL is the run's. */
static void test_params_copied(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	irfw_calls *c = irfw_calls_new(&w.t[0]);
	cJSON *p = call_params(1, 0);
	cJSON_AddStringToObject(p, "Key", "a");
	irfw_calls_add(c, NULL, "s3", "HeadObject", p, 0);
	cJSON_ReplaceItemInObjectCaseSensitive(p, "Key", cJSON_CreateString("b"));
	cJSON_ReplaceItemInObjectCaseSensitive(p, "N", cJSON_CreateNumber(2));
	char region[16] = "eu-west-1";
	irfw_calls_add(c, region, "s3", "HeadObject", p, 0);
	cJSON_Delete(p);
	memcpy(region, "xx-west-9", 9);
	assert_int_equal(irfw_calls_run(c), 0);
	assert_int_equal(fake.n_seen, 2);
	bool a = false, b = false;
	for (int i = 0; i < 2; i++) {
		a = a || strcmp(fake.seen[i], "us-east-1 HeadObject {\"N\":1,\"Key\":\"a\"}") == 0;
		b = b || strcmp(fake.seen[i], "eu-west-1 HeadObject {\"N\":2,\"Key\":\"b\"}") == 0;
	}
	assert_true(a && b);
	assert_int_equal(irfw_json_int(irfw_calls_result(c, 0), "Echo", -1), 1);
	assert_int_equal(irfw_json_int(irfw_calls_result(c, 1), "Echo", -1), 2);
	irfw_calls_free(c);
	world_free(&w);
}

/* The result has irfw_aws_call()'s neutral shape; a dry run keeps its
 * "unchecked" list; no client: NoClient, nothing sent. */
static void test_shape_dry_noclient(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	fake.xml = "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult>"
	           "<AutoScalingGroups><member><AutoScalingGroupName>web</AutoScalingGroupName></member>"
	           "</AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata>"
	           "<RequestId>r</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>";
	irfw_calls *c = irfw_calls_new(&w.t[0]);
	for (int i = 0; i < 2; i++) {
		cJSON *p = call_params(i + 1, 0);
		irfw_calls_add(c, NULL, "autoscaling", "DescribeAutoScalingGroups", p, 0);
		cJSON_Delete(p);
	}
	assert_int_equal(irfw_calls_run(c), 0);
	assert_json(irfw_calls_result(c, 1), "{\"AutoScalingGroups\":[{\"AutoScalingGroupName\":\"web\"}]}");
	irfw_calls_free(c);
	world_free(&w);

	world_init(&w);
	w.run.dry_run = true;
	c = irfw_calls_new(&w.t[0]);
	for (int i = 0; i < 3; i++) {
		cJSON *p = call_params(i + 1, 0);
		irfw_calls_add(c, NULL, "s3", "PutObject", p, 0);
		cJSON_Delete(p);
	}
	assert_int_equal(irfw_calls_run(c), 0);
	assert_true(fake.dry_seen);
	assert_json(w.res[0].unchecked, "[\"s3:PutObject\"]");
	irfw_calls_free(c);
	world_free(&w);

	world_init(&w);
	w.run.aws = NULL;
	c = irfw_calls_new(&w.t[0]);
	irfw_calls_add(c, NULL, "kms", "DescribeKey", NULL, 0);
	irfw_calls_add(c, NULL, "kms", "DescribeKey", NULL, 0);
	assert_int_equal(irfw_calls_run(c), 2);
	assert_string_equal(irfw_aws_error_code(&w.t[0]), "NoClient");
	assert_int_equal(fake.calls, 0);
	irfw_calls_free(c);
	world_free(&w);
}

/* Every worker of a run sending a set at once: more calls than the pool
 * has threads; all answered, each set's results its own. */
struct worker {
	struct world *w;
	int k;
	int failed, wrong;
};

static void *worker(void *arg)
{
	struct worker *wk = arg;
	irfw_target *t = &wk->w->t[wk->k];
	irfw_calls *c = irfw_calls_new(t);
	for (int i = 0; i < 5; i++) {
		cJSON *p = call_params(wk->k * 100 + i, 40);
		irfw_calls_add(c, NULL, "kms", "DescribeKey", p, 0);
		cJSON_Delete(p);
	}
	wk->failed = irfw_calls_run(c);
	for (int i = 0; i < 5; i++)
		wk->wrong += irfw_json_int(irfw_calls_result(c, (size_t)i), "Echo", -1) != wk->k * 100 + i;
	irfw_calls_free(c);
	return NULL;
}

static void test_many_targets(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	pthread_t th[MAX_T];
	struct worker wk[MAX_T];
	for (int k = 0; k < MAX_T; k++) {
		wk[k] = (struct worker){.w = &w, .k = k};
		assert_int_equal(pthread_create(&th[k], NULL, worker, &wk[k]), 0);
	}
	for (int k = 0; k < MAX_T; k++) {
		pthread_join(th[k], NULL);
		assert_int_equal(wk[k].failed, 0);
		assert_int_equal(wk[k].wrong, 0);
		assert_int_equal(cJSON_GetArraySize(w.res[k].request_ids), 5);
	}
	assert_int_equal(fake.calls, 5 * MAX_T);
	assert_true(fake.max_in_flight > 8); /* the pool's 8 and the callers */
	world_free(&w);
}

/* Prepares of different steps expand ${containment} and read the cause
 * of the same instance at once: the cached cause is made by one of them
 * and replaced by no one while it stays the same (a race here leaked it,
 * or freed it under a reader).  Each round starts from no cached cause,
 * the readers released together. */
struct reader {
	irfw_target *t;
	pthread_barrier_t *go;
	int wrong;
};

static void *reader(void *arg)
{
	struct reader *rd = arg;
	pthread_barrier_wait(rd->go);
	char *s = irfw_expand(rd->t, "${containment}");
	if (!s || strcmp(s, "partially-contained") != 0)
		rd->wrong++;
	free(s);
	const char *cause = NULL;
	if (irfw_target_containment(rd->t, &cause) != IRFW_PARTIALLY_CONTAINED ||
	    strcmp(cause, "eni-2 still open") != 0)
		rd->wrong++;
	return NULL;
}

static void test_containment_read_at_once(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	irfw_target *t = &w.t[0];
	assert_int_equal(irfw_containment_report(t, IRFW_PARTIALLY_CONTAINED, "eni-2 still open"), -1);
	enum { READERS = 4 };
	pthread_barrier_t go;
	for (int round = 0; round < 5000; round++) {
		free(t->cont_cause);
		t->cont_cause = NULL;
		pthread_barrier_init(&go, NULL, READERS);
		pthread_t th[READERS];
		struct reader rd[READERS];
		for (int k = 0; k < READERS; k++) {
			rd[k] = (struct reader){.t = t, .go = &go};
			assert_int_equal(pthread_create(&th[k], NULL, reader, &rd[k]), 0);
		}
		for (int k = 0; k < READERS; k++) {
			pthread_join(th[k], NULL);
			assert_int_equal(rd[k].wrong, 0);
		}
		pthread_barrier_destroy(&go);
	}
	for (size_t i = 0; i < t->n_cont; i++) {
		free(t->cont[i].step);
		free(t->cont[i].cause);
	}
	free(t->cont);
	free(t->cont_cause);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_one_failure),
	    cmocka_unit_test(test_zero_and_one),
	    cmocka_unit_test(test_params_copied),
	    cmocka_unit_test(test_shape_dry_noclient),
	    cmocka_unit_test(test_many_targets),
	    cmocka_unit_test(test_containment_read_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
