/*
 * sdk_calls.c - several independent AWS calls of one target at once
 * (irfw_calls_*, ABI 1.8), on a small pool of threads the run keeps.
 *
 * Only the sending is concurrent.  What irfw_aws_call_ex() does around the
 * client's request (the dry run's "unchecked" list, the neutral result,
 * the request ids of the step, the IAM permission named in an AccessDenied,
 * the step's first error, the debug line) is done in the plugin's own
 * thread, before and after, in index order: a pool thread calls
 * irfw_aws_request() or irfw_aws_request_ex() (thread-safe; each thread
 * keeps its curl handle, so its connections are reused) and touches
 * nothing else, the target least of all.
 *
 * The pool is the run's (struct irfw_run's calls_pool): up to POOL_MAX
 * threads, started as queued calls find none idle, shared by every worker
 * of the run, and joined by irfw_calls_pool_free() when the run is freed.
 * A caller does not wait idle while its own calls are still queued: it
 * takes them from the queue and sends them itself, so a run whose workers
 * all send sets at once, or a pool that could not start a thread, still
 * makes progress.
 */
#define _GNU_SOURCE
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "policy.h"
#include "base/buf.h"
#include "base/log.h"
#include "aws/client.h"
#include "sdk_json.h"

#define POOL_MAX 8

enum slot_state { SLOT_NEW = 0, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

struct irfw_calls;

/* One call of a set; also its node in the pool's queue. */
struct slot {
	struct slot *prev, *next; /* in the queue while SLOT_QUEUED */
	struct irfw_calls *owner;
	char *region;            /* NULL: the run's */
	const char *send_region; /* where it goes: region, or the run's (set before it is queued) */
	char *service, *operation;
	cJSON *params; /* a copy */
	unsigned flags;
	unsigned req_flags; /* the client's: the flags above, and the step's priority */
	enum slot_state state;
	/* Written by whoever sends it, read by the owner once it is done. */
	int rc;
	cJSON *res;
	struct irfw_aws_error err;
	char rid[128];
};

struct irfw_calls {
	irfw_target *t;
	struct slot **v; /* pointers: a queued slot must not move */
	size_t n, cap;
	size_t pending;      /* queued or running, of the last run (pool lock) */
	pthread_cond_t done; /* pending reached 0 */
	bool cond_ready;
};

struct irfw_calls_pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a slot was queued, or stop */
	struct slot *head, *tail;
	size_t queued;
	pthread_t threads[POOL_MAX];
	size_t n_threads, idle, starting;
	bool stop;
	struct irfw_aws *aws;
	bool dry_run;
};

static pthread_mutex_t pool_make_lock = PTHREAD_MUTEX_INITIALIZER;

/* The client's request for one slot: all a pool thread does, reading only
 * the slot and the run's client. */
static void send_slot(struct irfw_aws *aws, bool dry_run, struct slot *s)
{
	const char *reg = s->send_region;
	memset(&s->err, 0, sizeof(s->err));
	s->rid[0] = '\0';
	s->res = NULL;
	s->rc = s->req_flags ? irfw_aws_request_ex(aws, reg, s->service, s->operation, s->params, dry_run,
	                                           s->req_flags, &s->res, &s->err, s->rid)
	                     : irfw_aws_request(aws, reg, s->service, s->operation, s->params, dry_run,
	                                        &s->res, &s->err, s->rid);
}

static void unlink_slot(struct irfw_calls_pool *p, struct slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		p->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		p->tail = s->prev;
	s->prev = s->next = NULL;
	p->queued--;
}

/* Under p->lock: a sent slot is done; wake its owner after its last. */
static void slot_done(struct slot *s)
{
	s->state = SLOT_DONE;
	if (--s->owner->pending == 0)
		pthread_cond_broadcast(&s->owner->done);
}

static void *pool_thread(void *arg)
{
	struct irfw_calls_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	p->starting--;
	for (;;) {
		while (!p->head && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->work, &p->lock);
			p->idle--;
		}
		if (!p->head)
			break; /* stop, and nothing left */
		struct slot *s = p->head;
		unlink_slot(p, s);
		s->state = SLOT_RUNNING;
		pthread_mutex_unlock(&p->lock);
		send_slot(p->aws, p->dry_run, s);
		pthread_mutex_lock(&p->lock);
		slot_done(s);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The run's pool, made on first use; NULL when it cannot be (the caller
 * then sends every call itself). */
static struct irfw_calls_pool *run_pool(struct irfw_run *r)
{
	pthread_mutex_lock(&pool_make_lock);
	struct irfw_calls_pool *p = r->calls_pool;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (p) {
			pthread_mutex_init(&p->lock, NULL);
			pthread_cond_init(&p->work, NULL);
			p->aws = r->aws;
			p->dry_run = r->dry_run;
			r->calls_pool = p;
		}
	}
	pthread_mutex_unlock(&pool_make_lock);
	return p;
}

/* Under p->lock: start threads for queued slots that no idle (or
 * starting) thread will take, up to POOL_MAX.  A thread that cannot start
 * is not an error: the callers send what stays queued. */
static void pool_grow(struct irfw_calls_pool *p)
{
	while (p->n_threads < POOL_MAX && p->queued > p->idle + p->starting) {
		if (pthread_create(&p->threads[p->n_threads], NULL, pool_thread, p) != 0)
			break;
		p->n_threads++;
		p->starting++;
	}
}

void irfw_calls_pool_free(struct irfw_run *r)
{
	struct irfw_calls_pool *p = r->calls_pool;
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
	r->calls_pool = NULL;
}

/* ------------------------------------------------------------------ */
/* The set.                                                             */

irfw_calls *irfw_calls_new(irfw_target *t)
{
	if (!t)
		return NULL;
	irfw_calls *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->t = t;
	if (pthread_cond_init(&c->done, NULL) != 0) {
		free(c);
		return NULL;
	}
	c->cond_ready = true;
	return c;
}

static void slot_free(struct slot *s)
{
	if (!s)
		return;
	free(s->region);
	free(s->service);
	free(s->operation);
	cJSON_Delete(s->params);
	cJSON_Delete(s->res);
	free(s);
}

void irfw_calls_free(irfw_calls *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		slot_free(c->v[i]);
	free(c->v);
	if (c->cond_ready)
		pthread_cond_destroy(&c->done);
	free(c);
}

size_t irfw_calls_count(const irfw_calls *c)
{
	return c ? c->n : 0;
}

int irfw_calls_add(irfw_calls *c, const char *region, const char *service, const char *operation,
                   const cJSON *params, unsigned flags)
{
	if (!c || !service || !*service || !operation || !*operation || c->n >= (size_t)INT_MAX)
		return -1;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		struct slot **v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return -1;
		c->v = v;
		c->cap = cap;
	}
	struct slot *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->owner = c;
	s->flags = flags;
	s->req_flags = irfw_target_req_flags(c->t, flags);
	s->region = region && *region ? strdup(region) : NULL;
	s->service = strdup(service);
	s->operation = strdup(operation);
	s->params = params ? cJSON_Duplicate(params, true) : NULL;
	if ((region && *region && !s->region) || !s->service || !s->operation || (params && !s->params)) {
		slot_free(s);
		return -1;
	}
	c->v[c->n] = s;
	return (int)c->n++;
}

/* Make slot s's outcome the target's, as if it were the last call made. */
static void make_current(irfw_target *t, const struct slot *s)
{
	if (s->rc == 0)
		memset(&irfw_target_calls(t)->err, 0, sizeof(irfw_target_calls(t)->err));
	else
		irfw_target_calls(t)->err = s->err;
	snprintf(irfw_target_calls(t)->last_request_id, sizeof(irfw_target_calls(t)->last_request_id), "%s",
	         s->rc == 0 ? s->rid : "");
	if (s->rc != 0) {
		snprintf(irfw_target_calls(t)->err_service, sizeof(irfw_target_calls(t)->err_service), "%s",
		         s->service);
		snprintf(irfw_target_calls(t)->err_operation, sizeof(irfw_target_calls(t)->err_operation),
		         "%s", s->operation);
	}
}

/* Send the slots of `todo` (count n) and wait for them all. */
static void send_all(irfw_calls *c, struct slot **todo, size_t n)
{
	struct irfw_run *r = c->t->run;
	struct irfw_calls_pool *p = n > 1 ? run_pool(r) : NULL;
	if (!p) {
		/* One call, or no pool: in this thread, one after another. */
		for (size_t i = 0; i < n; i++) {
			send_slot(r->aws, r->dry_run, todo[i]);
			todo[i]->state = SLOT_DONE;
		}
		return;
	}
	pthread_mutex_lock(&p->lock);
	c->pending = n;
	for (size_t i = 0; i < n; i++) {
		struct slot *s = todo[i];
		s->state = SLOT_QUEUED;
		s->prev = p->tail;
		s->next = NULL;
		if (p->tail)
			p->tail->next = s;
		else
			p->head = s;
		p->tail = s;
		p->queued++;
	}
	pool_grow(p);
	pthread_cond_broadcast(&p->work);
	/* Send our own queued calls while the pool is busy; wait only for
	 * those a pool thread is sending. */
	size_t next = 0;
	while (c->pending > 0) {
		while (next < n && todo[next]->state != SLOT_QUEUED)
			next++;
		if (next < n) {
			struct slot *s = todo[next];
			unlink_slot(p, s);
			s->state = SLOT_RUNNING;
			pthread_mutex_unlock(&p->lock);
			send_slot(r->aws, r->dry_run, s);
			pthread_mutex_lock(&p->lock);
			slot_done(s);
			continue;
		}
		pthread_cond_wait(&c->done, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
}

int irfw_calls_run(irfw_calls *c)
{
	if (!c)
		return -1;
	irfw_target *t = c->t;
	size_t n_new = 0;
	for (size_t i = 0; i < c->n; i++)
		n_new += c->v[i]->state == SLOT_NEW;
	struct slot **todo = n_new ? malloc(n_new * sizeof(*todo)) : NULL;
	if (n_new && !todo) {
		for (size_t i = 0; i < c->n; i++) {
			struct slot *s = c->v[i];
			if (s->state != SLOT_NEW)
				continue;
			s->state = SLOT_DONE;
			s->rc = -1;
			snprintf(s->err.code, sizeof(s->err.code), "OutOfMemory");
			snprintf(s->err.message, sizeof(s->err.message), "out of memory: not sent");
		}
		n_new = 0;
	}
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct slot *s = c->v[i];
		if (s->state != SLOT_NEW)
			continue;
		if (!t->run->aws) {
			s->state = SLOT_DONE;
			s->rc = -1;
			snprintf(s->err.code, sizeof(s->err.code), "NoClient");
			snprintf(s->err.message, sizeof(s->err.message), "no AWS client in this mode");
			continue;
		}
		irfw_call_note_unchecked(t, s->service, s->operation);
		s->send_region = s->region ? s->region : t->run->resolved_region;
		todo[k++] = s;
	}
	if (k)
		send_all(c, todo, k);
	/* Settled in index order, so the step's request ids and first error
	 * read as if the calls had been made one after another. */
	for (size_t i = 0; i < k; i++)
		irfw_call_settle(t, todo[i]->service, todo[i]->operation, todo[i]->rc, todo[i]->res,
		                 &todo[i]->err, todo[i]->rid);
	free(todo);

	/* The target's error: the first failed call's, by index (none: clear);
	 * the last request id: the last call's that succeeded. */
	const struct slot *first_failed = NULL, *last_ok = NULL;
	int failed = 0;
	for (size_t i = 0; i < c->n; i++) {
		const struct slot *s = c->v[i];
		if (s->state != SLOT_DONE)
			continue;
		if (s->rc != 0) {
			failed++;
			if (!first_failed)
				first_failed = s;
		} else {
			last_ok = s;
		}
	}
	memset(&irfw_target_calls(t)->err, 0, sizeof(irfw_target_calls(t)->err));
	irfw_target_calls(t)->last_request_id[0] = '\0';
	if (last_ok)
		snprintf(irfw_target_calls(t)->last_request_id, sizeof(irfw_target_calls(t)->last_request_id),
		         "%s", last_ok->rid);
	if (first_failed) {
		irfw_target_calls(t)->err = first_failed->err;
		snprintf(irfw_target_calls(t)->err_service, sizeof(irfw_target_calls(t)->err_service), "%s",
		         first_failed->service);
		snprintf(irfw_target_calls(t)->err_operation, sizeof(irfw_target_calls(t)->err_operation),
		         "%s", first_failed->operation);
	}
	return failed;
}

const cJSON *irfw_calls_result(const irfw_calls *c, size_t i)
{
	if (!c || i >= c->n || c->v[i]->state != SLOT_DONE || c->v[i]->rc != 0)
		return NULL;
	return c->v[i]->res;
}

int irfw_calls_select(irfw_calls *c, size_t i)
{
	if (!c || i >= c->n || c->v[i]->state != SLOT_DONE)
		return -1;
	make_current(c->t, c->v[i]);
	return c->v[i]->rc == 0 ? 0 : -1;
}
