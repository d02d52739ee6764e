/*
 * sdk_together.c - one AWS request for the same change of several targets
 * (irfw_aws_call_together, ABI 1.13).
 *
 * Some changes take a list: DetachInstances up to 20 instance ids,
 * DeregisterTargets any number of targets of one target group.  A fleet
 * in the same Auto Scaling group would otherwise send one request per
 * instance.  Targets of one step that make the same call (service,
 * operation, parameters but the list) within a short window are gathered:
 * the first to arrive leads, waits until the call is full (`max`), until
 * every target the plugin expects has joined, or until the window closes,
 * then sends one request, and every member returns its outcome.
 *
 * A worker waiting here holds its slot in the pool for at most the window;
 * the leader never waits for a member that has not started (the window is
 * the bound), so the pool cannot deadlock on itself.  Only the sending is
 * shared: each member notes and settles the call in its own thread, as
 * irfw_aws_call_ex does, so its step's request ids, first error and debug
 * line read as if it had sent the request itself.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run.h"
#include "base/buf.h"
#include "aws/client.h"

/* How long a leader waits for the others: long enough for the workers
 * that started the same step together, short against a request's cost. */
#define WINDOW_MS 200

/* One request being gathered (open) or sent (closed). */
struct group {
	struct group *next;
	char *key;
	cJSON *items; /* the list, in order of arrival */
	size_t n;     /* items */
	size_t users; /* members still to read the outcome */
	bool closed;  /* the leader is sending: no one joins */
	bool done;    /* the outcome below is there */
	int rc;
	struct irfw_aws_error err;
	char rid[128];
};

/* How many items were sent under a key so far in this run, so that a
 * leader does not wait for targets that went in an earlier request. */
struct sent {
	struct sent *next;
	char *key;
	size_t n;
};

struct irfw_together {
	struct group *groups;
	struct sent *sent;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

void irfw_together_free(struct irfw_run *r)
{
	if (!r || !r->together)
		return;
	for (struct group *g = r->together->groups, *next; g; g = next) {
		next = g->next;
		free(g->key);
		cJSON_Delete(g->items);
		free(g);
	}
	for (struct sent *s = r->together->sent, *next; s; s = next) {
		next = s->next;
		free(s->key);
		free(s);
	}
	free(r->together);
	r->together = NULL;
}

static struct sent *sent_of(struct irfw_together *tg, const char *key)
{
	for (struct sent *s = tg->sent; s; s = s->next)
		if (strcmp(s->key, key) == 0)
			return s;
	struct sent *s = calloc(1, sizeof(*s));
	if (!s || !(s->key = strdup(key))) {
		free(s);
		return NULL;
	}
	s->next = tg->sent;
	tg->sent = s;
	return s;
}

static void unlink_group(struct irfw_together *tg, struct group *g)
{
	for (struct group **pp = &tg->groups; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	free(g->key);
	cJSON_Delete(g->items);
	free(g);
}

/* The key: the step, where and what is sent, and the list's name. */
static char *key_of(const irfw_target *t, const char *region, const char *service, const char *operation,
                    const cJSON *params, const char *list)
{
	char *p = params ? cJSON_PrintUnformatted(params) : NULL;
	const struct irfw_step *s = irfw_target_cur(t);
	char *k = irfw_strfmt("%s\n%s\n%s\n%s\n%s\n%s", s ? s->name : "-", region, service, operation, list,
	                      p ? p : "null");
	free(p);
	return k;
}

/* The outcome as the target's last call, and settled in its thread. */
static void settle(irfw_target *t, const char *service, const char *operation, int rc,
                   const struct irfw_aws_error *err, const char *rid)
{
	struct irfw_aws_error e = *err;
	irfw_call_settle(t, service, operation, rc, NULL, &e, rid);
	struct irfw_call_state *cs = irfw_target_calls(t);
	if (rc == 0)
		memset(&cs->err, 0, sizeof(cs->err));
	else
		cs->err = e;
	snprintf(cs->last_request_id, sizeof(cs->last_request_id), "%s", rid);
	if (rc != 0) {
		snprintf(cs->err_service, sizeof(cs->err_service), "%s", service);
		snprintf(cs->err_operation, sizeof(cs->err_operation), "%s", operation);
	}
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int irfw_aws_call_together(irfw_target *t, const char *service, const char *operation, const cJSON *params,
                           const char *list, const cJSON *item, size_t max, size_t expect, size_t *together)
{
	if (together)
		*together = 1;
	if (!t || !service || !operation || !list || !*list || !item || max < 1)
		return -1;
	struct irfw_run *r = t->run;
	/* Alone, expected alone, or in a dry run (where nothing is sent that
	 * could be shared): the plain call with a list of one. */
	if (max == 1 || expect <= 1 || r->dry_run || !r->aws) {
		cJSON *p = params ? cJSON_Duplicate(params, true) : cJSON_CreateObject();
		cJSON *arr = p ? cJSON_AddArrayToObject(p, list) : NULL;
		cJSON *it = arr ? cJSON_Duplicate(item, true) : NULL;
		if (!it) {
			cJSON_Delete(p);
			return -1;
		}
		cJSON_AddItemToArray(arr, it);
		int rc = irfw_aws_call(t, service, operation, p, NULL);
		cJSON_Delete(p);
		return rc;
	}

	const char *region = r->resolved_region ? r->resolved_region : "";
	char *key = key_of(t, region, service, operation, params, list);
	cJSON *mine = cJSON_Duplicate(item, true);
	if (!key || !mine) {
		free(key);
		cJSON_Delete(mine);
		return -1;
	}
	irfw_call_note_unchecked(t, service, operation);

	pthread_mutex_lock(&lock);
	if (!r->together)
		r->together = calloc(1, sizeof(*r->together));
	struct irfw_together *tg = r->together;
	struct group *g = NULL;
	bool leader = false;
	for (struct group *x = tg ? tg->groups : NULL; x; x = x->next)
		if (!x->closed && x->n < max && strcmp(x->key, key) == 0) {
			g = x;
			break;
		}
	if (!g && tg) {
		g = calloc(1, sizeof(*g));
		if (g && (g->key = strdup(key)) && (g->items = cJSON_CreateArray())) {
			g->next = tg->groups;
			tg->groups = g;
			leader = true;
		} else if (g) {
			free(g->key);
			free(g);
			g = NULL;
		}
	}
	if (!g) {
		pthread_mutex_unlock(&lock);
		free(key);
		cJSON_Delete(mine);
		return -1;
	}
	cJSON_AddItemToArray(g->items, mine);
	g->n++;
	g->users++;
	pthread_cond_broadcast(&changed); /* a leader may be full now */

	if (leader) {
		struct sent *s = sent_of(tg, key);
		size_t before = s ? s->n : 0;
		size_t want = expect > before ? expect - before : 1;
		if (want > max)
			want = max;
		struct timespec until;
		deadline_in(&until, WINDOW_MS);
		while (g->n < want) {
			if (pthread_cond_timedwait(&changed, &lock, &until) == ETIMEDOUT)
				break;
		}
		g->closed = true;
		if (s)
			s->n += g->n;
		cJSON *p = params ? cJSON_Duplicate(params, true) : cJSON_CreateObject();
		if (p)
			cJSON_AddItemToObject(p, list, cJSON_Duplicate(g->items, true));
		pthread_mutex_unlock(&lock);

		struct irfw_aws_error e = {0};
		char rid[128] = "";
		int rc = -1;
		if (p) {
			rc = irfw_aws_request_ex(r->aws, region, service, operation, p, false,
			                         irfw_target_req_flags(t, 0), NULL, &e, rid);
		} else {
			snprintf(e.code, sizeof(e.code), "OutOfMemory");
			snprintf(e.message, sizeof(e.message), "out of memory: not sent");
		}
		cJSON_Delete(p);

		pthread_mutex_lock(&lock);
		g->rc = rc;
		g->err = e;
		snprintf(g->rid, sizeof(g->rid), "%s", rid);
		g->done = true;
		pthread_cond_broadcast(&changed);
	} else {
		while (!g->done)
			pthread_cond_wait(&changed, &lock);
	}
	int rc = g->rc;
	struct irfw_aws_error e = g->err;
	char rid[128];
	snprintf(rid, sizeof(rid), "%s", g->rid);
	if (together)
		*together = g->n;
	if (--g->users == 0)
		unlink_group(tg, g);
	pthread_mutex_unlock(&lock);
	free(key);

	settle(t, service, operation, rc, &e, rid);
	return rc;
}
