/*
 * client.c - the AWS client every plugin calls through irfw_aws_call():
 * endpoint, protocol, SigV4 signature, client-side rate limit, retries with
 * capped exponential backoff and jitter, and one error value whatever the
 * wire said.  libcurl does the HTTP, one easy handle per thread sharing DNS
 * and TLS sessions.
 */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "client.h"
#include "credentials.h"
#include "log.h"
#include "protocol.h"
#include "ratelimit.h"
#include "sigv4.h"
#include "text.h"
#include "xml.h"

#define MAX_RESPONSE ((size_t)64 << 20)
#define MAX_HEADERS  200 /* of a response; more are ignored */

/* Time limits (seconds) when neither the site file nor the environment
 * sets them; man/irfw.1, TIME LIMITS AND RETRIES, states them. */
#define DEFAULT_CONNECT_TIMEOUT 10
#define DEFAULT_TIMEOUT         120
#define DEFAULT_LOW_SPEED_TIME  10
#define DEFAULT_CALL_DEADLINE   120
#define USER_AGENT              "irfw/" PACKAGE_VERSION

struct easy_slot {
	CURL *easy;
	struct easy_slot *next;
};

/* An endpoint URL (and S3 bucket) split into its base and Host header, so
 * that a call does not parse its endpoint's URL again: a run talks to a
 * handful of endpoints.  BASE_MEMO entries at most; more are parsed each
 * time. */
#define BASE_MEMO 32
struct base_memo {
	char *url, *bucket; /* bucket NULL: not S3 virtual-hosted */
	char *base, *host;
};

struct irfw_aws {
	char account[64]; /* keys the rate limits; set before any worker runs */
	char *region;
	char *profile;
	char *endpoint_cfg;               /* [irfw] endpoint_url */
	struct irfw_endpoints *endpoints; /* the environment's and the shared config's */
	char *ca_file;
	long connect_timeout, timeout, low_speed_time, call_deadline;
	int max_attempts;
	bool retry_quota; /* standard and adaptive modes; not legacy */
	bool s3_path_style;
	struct irfw_cred_provider *creds;
	struct irfw_ratelimit *rl;
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	pthread_key_t easy_key;
	pthread_mutex_t slots_lock;
	struct easy_slot *slots;
	char last_key_id[128]; /* last credentials registered for masking */
	pthread_mutex_t memo_lock;
	struct base_memo memo[BASE_MEMO];
	size_t n_memo;
	atomic_long n_requests, n_retries, n_throttled; /* irfw_aws_stats */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)h;
	(void)a;
	pthread_mutex_lock(&((struct irfw_aws *)u)->share_lock[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
	(void)h;
	pthread_mutex_unlock(&((struct irfw_aws *)u)->share_lock[d]);
}

/* This thread's easy handle: connections are reused call after call. */
static CURL *thread_easy(struct irfw_aws *a)
{
	CURL *e = pthread_getspecific(a->easy_key);
	if (e) {
		curl_easy_reset(e);
		return e;
	}
	e = curl_easy_init();
	struct easy_slot *s = e ? calloc(1, sizeof(*s)) : NULL;
	if (!s) {
		if (e)
			curl_easy_cleanup(e);
		return NULL;
	}
	s->easy = e;
	pthread_mutex_lock(&a->slots_lock);
	s->next = a->slots;
	a->slots = s;
	pthread_mutex_unlock(&a->slots_lock);
	pthread_setspecific(a->easy_key, e);
	return e;
}

/* ------------------------------------------------------------------ */
/* Abandoning the calls in flight (a second SIGINT or SIGTERM: the      */
/* engine's run.c calls irfw_aws_abandon from its signal handler).      */

static atomic_int abandon_all;

void irfw_aws_abandon(void)
{
	atomic_store(&abandon_all, 1); /* lock-free: async-signal-safe */
}

bool irfw_aws_abandoned(void)
{
	return atomic_load(&abandon_all) != 0;
}

/* libcurl calls it about once a second, and more often while data moves:
 * nonzero ends the transfer with CURLE_ABORTED_BY_CALLBACK. */
static int abandon_progress(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)u;
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return irfw_aws_abandoned() ? 1 : 0;
}

static void abandon_hook(CURL *c)
{
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abandon_progress);
}

/* True, with *e saying so, once the calls are abandoned: no new attempt. */
static bool abandon_check(struct irfw_aws_error *e)
{
	if (!irfw_aws_abandoned())
		return false;
	e->http_status = 0;
	snprintf(e->code, sizeof(e->code), "Interrupted");
	snprintf(e->message, sizeof(e->message), "call abandoned: irfw was interrupted a second time");
	return true;
}

/* A retry's backoff, cut short when the calls are abandoned. */
static void abandonable_sleep(double d)
{
	while (d > 0 && !irfw_aws_abandoned()) {
		double slice = d < 0.1 ? d : 0.1;
		struct timespec ts = {0, (long)(slice * 1e9)};
		nanosleep(&ts, NULL);
		d -= slice;
	}
}

/* ------------------------------------------------------------------ */
/* HTTP.                                                               */

struct http_resp {
	long status;
	struct irfw_buf body;
	bool too_large;
	/* The headers as "name\0value\0" pairs in one buffer (names lowered):
	 * two allocations a response instead of four a header. */
	struct irfw_buf hdr_text;
	size_t hdr_at[MAX_HEADERS]; /* where each pair starts in hdr_text */
	size_t n_hdrs;
};

static const char *hdr_name(const struct http_resp *r, size_t i)
{
	return r->hdr_text.data + r->hdr_at[i];
}

static const char *hdr_value(const struct http_resp *r, size_t i)
{
	const char *n = hdr_name(r, i);
	return n + strlen(n) + 1;
}

static void resp_free(struct http_resp *r)
{
	irfw_buf_free(&r->body);
	irfw_buf_free(&r->hdr_text);
	memset(r, 0, sizeof(*r));
}

static const char *resp_header(const struct http_resp *r, const char *name)
{
	for (size_t i = 0; i < r->n_hdrs; i++)
		if (strcmp(hdr_name(r, i), name) == 0)
			return hdr_value(r, i);
	return NULL;
}

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
	struct http_resp *r = u;
	size_t len = size * n;
	if (r->body.len + len > MAX_RESPONSE) {
		r->too_large = true;
		return 0;
	}
	return irfw_buf_add(&r->body, p, len) == 0 ? len : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *u)
{
	struct http_resp *r = u;
	size_t len = size * n;
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after 100-continue or a redirect) starts over. */
		r->n_hdrs = 0;
		r->hdr_text.len = 0;
		return len;
	}
	const char *colon = memchr(p, ':', len);
	if (!colon || r->n_hdrs >= MAX_HEADERS)
		return len;
	const char *v = colon + 1;
	size_t nlen = (size_t)(colon - p), vlen = len - (size_t)(v - p);
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
	size_t at = r->hdr_text.len;
	irfw_buf_add(&r->hdr_text, p, nlen);
	irfw_buf_putc(&r->hdr_text, '\0');
	irfw_buf_add(&r->hdr_text, v, vlen);
	if (irfw_buf_putc(&r->hdr_text, '\0') != 0)
		return 0;
	for (char *c = r->hdr_text.data + at; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	r->hdr_at[r->n_hdrs++] = at;
	return len;
}

/* A prepared request: everything but the signature. */
struct http_req {
	const char *method;
	char *base;      /* scheme://host[:port] */
	char *host;      /* Host header value */
	char *path;      /* decoded path, for signing */
	char *wire_path; /* encoded path, for the URL */
	char *query;     /* encoded query or NULL */
	struct irfw_kv hdrs[24];
	char *hdr_store[24];
	size_t n_hdrs;
	const char *body;
	size_t body_len;
	char payload_hash[65]; /* the body's SHA-256 in hex when known; "" to hash it */
	bool head;
};

static void req_add_header(struct http_req *q, const char *name, const char *value)
{
	if (q->n_hdrs >= sizeof(q->hdrs) / sizeof(q->hdrs[0]))
		return;
	/* One allocation holds "name\0value\0". */
	size_t nl = strlen(name), vl = strlen(value);
	char *store = malloc(nl + vl + 2);
	if (!store)
		return;
	memcpy(store, name, nl + 1);
	memcpy(store + nl + 1, value, vl + 1);
	q->hdr_store[q->n_hdrs] = store;
	q->hdrs[q->n_hdrs].name = store;
	q->hdrs[q->n_hdrs].value = store + nl + 1;
	q->n_hdrs++;
}

static void req_free(struct http_req *q)
{
	free(q->base);
	free(q->host);
	free(q->path);
	free(q->wire_path);
	free(q->query);
	for (size_t i = 0; i < q->n_hdrs; i++)
		free(q->hdr_store[i]);
	memset(q, 0, sizeof(*q));
}

/* Split a base URL into scheme://host[:port] and the Host header value. */
static int parse_base_now(const char *url, const char *bucket, char **base, char **host)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *port = NULL;
	int rc = -1;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK)
		goto out;
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (bucket)
		*host = port ? irfw_strfmt("%s.%s:%s", bucket, h, port) : irfw_strfmt("%s.%s", bucket, h);
	else
		*host = port ? irfw_strfmt("%s:%s", h, port) : strdup(h);
	*base = irfw_strfmt("%s://%s", scheme, *host);
	rc = *host && *base ? 0 : -1;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static bool same_or_both_null(const char *x, const char *y)
{
	return x == y || (x && y && strcmp(x, y) == 0);
}

/* parse_base_now(), remembered per (url, bucket); *base and *host are the
 * caller's copies either way. */
static int parse_base(struct irfw_aws *a, const char *url, const char *bucket, char **base, char **host)
{
	*base = *host = NULL;
	pthread_mutex_lock(&a->memo_lock);
	for (size_t i = 0; i < a->n_memo; i++) {
		const struct base_memo *m = &a->memo[i];
		if (strcmp(m->url, url) == 0 && same_or_both_null(m->bucket, bucket)) {
			*base = strdup(m->base);
			*host = strdup(m->host);
			break;
		}
	}
	pthread_mutex_unlock(&a->memo_lock);
	if (*base && *host)
		return 0;
	free(*base);
	free(*host);
	*base = *host = NULL;
	if (parse_base_now(url, bucket, base, host) != 0)
		return -1;
	pthread_mutex_lock(&a->memo_lock);
	if (a->n_memo < BASE_MEMO) {
		struct base_memo *m = &a->memo[a->n_memo];
		m->url = strdup(url);
		m->bucket = bucket ? strdup(bucket) : NULL;
		m->base = strdup(*base);
		m->host = strdup(*host);
		if (m->url && (!bucket || m->bucket) && m->base && m->host) {
			a->n_memo++;
		} else {
			free(m->url);
			free(m->bucket);
			free(m->base);
			free(m->host);
			memset(m, 0, sizeof(*m));
		}
	}
	pthread_mutex_unlock(&a->memo_lock);
	return 0;
}

static bool host_is_ip_or_localhost(const char *url)
{
	CURLU *u = curl_url();
	char *h = NULL;
	bool yes = false;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK) {
		yes = strcmp(h, "localhost") == 0 || h[0] == '[' || strspn(h, "0123456789.") == strlen(h);
	}
	curl_free(h);
	curl_url_cleanup(u);
	return yes;
}

/* Stall detection: curl's own low-speed check averages over a window of
 * several seconds, so a stall right after the request was sent is seen
 * only 5 to 6 s late; this one counts from the last byte that moved. */
struct stall_watch {
	curl_off_t dl, ul;
	double last; /* now_s() when a byte last moved */
	long limit;  /* seconds */
	bool stalled;
	CURL *easy;
};

static double now_s(void);

static int on_progress(void *u, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct stall_watch *w = u;
	(void)dltotal;
	(void)ultotal;
	if (irfw_aws_abandoned())
		return 1; /* a second signal: end the transfer now */
	double t = now_s();
	curl_off_t connected = 0;
	curl_easy_getinfo(w->easy, CURLINFO_CONNECT_TIME_T, &connected);
	if (connected == 0 || dlnow != w->dl || ulnow != w->ul) {
		/* Connecting is timed by the connect timeout; a byte moved. */
		w->dl = dlnow;
		w->ul = ulnow;
		w->last = t;
		return 0;
	}
	if (w->limit > 0 && t - w->last >= (double)w->limit) {
		w->stalled = true;
		return 1; /* abort: CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

/* Perform one signed attempt within `budget_ms` (the call's deadline).
 * Returns 0 when an HTTP answer came back (any status), -1 on a transport
 * failure with *e filled and *sent telling whether any of the request may
 * have left (false only when no byte of it was sent: no connection). */
static int http_perform(struct irfw_aws *a, const struct http_req *q, struct curl_slist *extra,
                        long budget_ms, struct http_resp *resp, struct irfw_aws_error *e, bool *sent)
{
	*sent = true;
	CURL *c = thread_easy(a);
	if (!c) {
		snprintf(e->code, sizeof(e->code), "ClientError");
		snprintf(e->message, sizeof(e->message), "cannot create an HTTP handle");
		return -1;
	}
	char *url = q->query && *q->query ? irfw_strfmt("%s%s?%s", q->base, q->wire_path, q->query)
	                                  : irfw_strfmt("%s%s", q->base, q->wire_path);
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_SHARE, a->share);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (a->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
	/* Per attempt: connecting, the whole exchange, and a stall (less than
	 * a byte a second for low_speed_time seconds, the answer awaited
	 * included); each cut to what is left of the call's deadline. */
	long conn_ms = a->connect_timeout * 1000, total_ms = a->timeout * 1000;
	if (budget_ms < 1)
		budget_ms = 1;
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, conn_ms < budget_ms ? conn_ms : budget_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_ms < budget_ms ? total_ms : budget_ms);
	struct stall_watch watch = {.last = now_s(), .limit = a->low_speed_time, .easy = c};
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &watch);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, extra);
	if (q->head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(q->method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
	}
	CURLcode rc = curl_easy_perform(c);
	free(url);
	if (rc != CURLE_OK) {
		long req_size = 0;
		if (curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &req_size) == CURLE_OK && req_size == 0)
			*sent = false; /* no byte of the request left this machine */
		e->http_status = 0;
		if (watch.stalled) {
			snprintf(e->code, sizeof(e->code), "Timeout");
			snprintf(e->message, sizeof(e->message),
			         "stalled: connected, but no byte moved for %ld s (the low-speed limit)",
			         a->low_speed_time);
			return -1;
		}
		bool timeout = rc == CURLE_OPERATION_TIMEDOUT;
		snprintf(e->code, sizeof(e->code), "%s",
		         resp->too_large ? "ResponseTooLarge"
		         : timeout       ? "Timeout"
		                         : "ConnectionError");
		snprintf(e->message, sizeof(e->message), "%s%s%s",
		         resp->too_large ? "response larger than 64 MiB; refused" : curl_easy_strerror(rc),
		         errbuf[0] ? ": " : "", errbuf);
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Requests.                                                           */

/* AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, [irfw] endpoint_url, the
 * profile's [services] section and endpoint_url (credentials.h). */
static char *endpoint_override(struct irfw_aws *a, const struct irfw_service *svc)
{
	return irfw_endpoints_get(a->endpoints, svc->env_id, a->endpoint_cfg);
}

/* Build the request for any protocol.  Returns 0 or -1 with *e. */
static int build_request(struct irfw_aws *a, const struct irfw_service *svc, const char *region,
                         const char *op, const cJSON *params, struct http_req *q, char **owned_body,
                         char **sign_region, struct irfw_aws_error *e)
{
	char *override = endpoint_override(a, svc), *url = NULL;
	int rc = -1;
	*owned_body = NULL;
	if (irfw_endpoint_resolve(svc, region, override, &url, sign_region) != 0) {
		snprintf(e->code, sizeof(e->code), "EndpointError");
		snprintf(e->message, sizeof(e->message), "no endpoint for %s in region '%s'", svc->name,
		         region ? region : "");
		goto out;
	}
	if (svc->wire == IRFW_WIRE_REST_XML) {
		struct irfw_s3_request s3;
		char err[512];
		bool path_style = a->s3_path_style || (override && host_is_ip_or_localhost(url));
		if (irfw_s3_build(op, params, path_style, &s3, err, sizeof(err)) != 0) {
			snprintf(e->code, sizeof(e->code), "InvalidParameter");
			snprintf(e->message, sizeof(e->message), "%s", err);
			goto out;
		}
		/* AWS's own S3 endpoint in us-east-1 is s3.amazonaws.com too, but the regional name works
		 * everywhere. */
		if (parse_base(a, url, s3.host_bucket, &q->base, &q->host) != 0) {
			irfw_s3_request_free(&s3);
			snprintf(e->code, sizeof(e->code), "EndpointError");
			snprintf(e->message, sizeof(e->message), "bad endpoint URL for s3");
			goto out;
		}
		q->method = s3.method;
		q->head = s3.head;
		q->path = s3.path;
		s3.path = NULL;
		q->wire_path = irfw_uri_encode(q->path, strlen(q->path), true);
		q->query = s3.query;
		s3.query = NULL;
		req_add_header(q, "Host", q->host);
		for (char *line = s3.headers.data, *nl; line && *line; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl)
				break;
			*nl = '\0';
			char *colon = strstr(line, ": ");
			if (colon) {
				*colon = '\0';
				req_add_header(q, line, colon + 2);
			}
		}
		const cJSON *algo = cJSON_GetObjectItemCaseSensitive(params, "ChecksumAlgorithm");
		bool sha256 = cJSON_IsString(algo) && strcmp(algo->valuestring, "SHA256") == 0;
		if (sha256 && strcmp(op, "CreateMultipartUpload") == 0) {
			/* The parts' algorithm, which each UploadPart then sends. */
			req_add_header(q, "x-amz-checksum-algorithm", "SHA256");
		} else if (sha256) {
			const cJSON *given = cJSON_GetObjectItemCaseSensitive(params, "ChecksumSHA256");
			bool whole_body = strcmp(op, "PutObject") == 0 || strcmp(op, "UploadPart") == 0;
			if (!given && s3.body) {
				/* As the SDKs do: S3 verifies the body against it. */
				char b64[45];
				irfw_sha256_encoded(s3.body, s3.body_len, whole_body ? q->payload_hash : NULL,
				                    b64);
				req_add_header(q, "x-amz-checksum-sha256", b64);
			} else if (whole_body && s3.body && cJSON_IsString(given)) {
				/* Left "" (hashed) unless it is a whole SHA-256. */
				(void)irfw_sha256_b64_to_hex(given->valuestring, q->payload_hash);
			}
			/* Either way the body's digest is known: the signature's
			 * payload hash is that digest, not hashed again.  A body that
			 * is not what was hashed (a file changed since it was
			 * captured) is refused by S3 under both. */
			/* Named, as the SDKs name it: S3 then stores and reports the
			 * checksum, and takes it in place of Content-MD5 where one is
			 * required (an upload with Object Lock). */
			req_add_header(q, "x-amz-sdk-checksum-algorithm", "SHA256");
		}
		/* Without it, curl labels the body as a form, and some servers
		 * then read it as form fields instead of the object. */
		if (s3.body && !cJSON_GetObjectItemCaseSensitive(params, "ContentType") &&
		    strcmp(op, "CompleteMultipartUpload") != 0)
			req_add_header(q, "Content-Type", "application/octet-stream");
		*owned_body = s3.body;
		s3.body = NULL;
		q->body = *owned_body;
		q->body_len = s3.body_len;
		irfw_s3_request_free(&s3);
		rc = 0;
		goto out;
	}
	if (parse_base(a, url, NULL, &q->base, &q->host) != 0) {
		snprintf(e->code, sizeof(e->code), "EndpointError");
		snprintf(e->message, sizeof(e->message), "bad endpoint URL for %s", svc->name);
		goto out;
	}
	q->method = "POST";
	q->path = strdup("/");
	q->wire_path = strdup("/");
	req_add_header(q, "Host", q->host);
	if (svc->wire == IRFW_WIRE_JSON) {
		char target[160];
		snprintf(target, sizeof(target), "%s.%s", svc->json_target, op);
		req_add_header(q, "Content-Type", "application/x-amz-json-1.1");
		req_add_header(q, "X-Amz-Target", target);
		*owned_body = params ? cJSON_PrintUnformatted(params) : strdup("{}");
	} else {
		req_add_header(q, "Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
		*owned_body = irfw_query_body(svc, op, params);
	}
	q->body = *owned_body;
	q->body_len = *owned_body ? strlen(*owned_body) : 0;
	rc = *owned_body ? 0 : -1;
out:
	free(override);
	free(url);
	return rc;
}

/* Turn a 2xx reply into the result tree. */
static cJSON *parse_success(const struct irfw_service *svc, const char *op, const struct http_resp *resp,
                            struct irfw_aws_error *e)
{
	char err[256] = "";
	cJSON *res = NULL;
	if (svc->wire == IRFW_WIRE_JSON) {
		res = resp->body.len ? cJSON_ParseWithLength(resp->body.data, resp->body.len)
		                     : cJSON_CreateObject();
		if (!res)
			snprintf(err, sizeof(err), "reply is not JSON");
	} else if (svc->wire == IRFW_WIRE_REST_XML) {
		if (strcmp(op, "GetObject") == 0) {
			res = cJSON_CreateObject();
			/* Text bodies only; binary objects are not read by irfw. */
			cJSON_AddStringToObject(res, "Body", resp->body.data ? resp->body.data : "");
		} else if (resp->body.len && resp->body.data[0] == '<') {
			res = irfw_xml_to_json(resp->body.data, resp->body.len, err, sizeof(err));
		} else {
			res = cJSON_CreateObject();
		}
		for (size_t i = 0; res && i < resp->n_hdrs; i++)
			irfw_s3_response_header(res, hdr_name(resp, i), hdr_value(resp, i));
	} else {
		res = resp->body.len ? irfw_xml_to_json(resp->body.data, resp->body.len, err, sizeof(err))
		                     : cJSON_CreateObject();
	}
	if (!res) {
		e->http_status = resp->status;
		snprintf(e->code, sizeof(e->code), "InvalidReply");
		snprintf(e->message, sizeof(e->message), "cannot parse the %s %s reply: %s", svc->name, op,
		         err);
	}
	return res;
}

static void find_request_id(const cJSON *res, const struct http_resp *resp, char out[128])
{
	const char *h = resp_header(resp, "x-amzn-requestid");
	if (!h)
		h = resp_header(resp, "x-amz-request-id");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, "requestId");
	if (!cJSON_IsString(v))
		v = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(res, "ResponseMetadata"), "RequestId");
	snprintf(out, 128, "%s", cJSON_IsString(v) ? v->valuestring : h ? h : "");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Backoff (seconds): the base after transient errors and after
 * throttling, and the cap, as the AWS SDKs' standard mode has them. */
#define BACKOFF_BASE          0.1
#define BACKOFF_THROTTLE_BASE 0.5
#define BACKOFF_CAP           20.0

/* Answers that say AWS did not carry the request out, whatever the
 * operation: it never read all of it. */
static bool acted_not(const struct irfw_aws_error *e)
{
	return e->http_status >= 400 && e->http_status < 500 &&
	       (strcmp(e->code, "RequestTimeout") == 0 || strcmp(e->code, "RequestTimeoutException") == 0);
}

/* Turn *e into the failure of a call that is not re-sent because AWS may
 * have carried it out, keeping the cause (and any request id). */
static void outcome_unknown(struct irfw_aws_error *e, const char *op, bool transport)
{
	char cause[sizeof(e->message)];
	if (e->http_status)
		snprintf(cause, sizeof(cause), "HTTP %ld %s%s%.700s", e->http_status, e->code,
		         e->message[0] ? ": " : "", e->message);
	else
		snprintf(cause, sizeof(cause), "%s%s%.700s", e->code, e->message[0] ? ": " : "", e->message);
	struct irfw_buf m = {0};
	irfw_buf_printf(&m,
	                "%s may have been carried out (%s %s); not sent again, since AWS cannot tell a "
	                "repeat from a new request: look up what exists before sending it again",
	                op, transport ? "the request was sent, then" : "the answer was", cause);
	snprintf(e->message, sizeof(e->message), "%s", m.data && !m.failed ? m.data : cause);
	irfw_buf_free(&m);
	snprintf(e->code, sizeof(e->code), "%s", IRFW_AWS_OUTCOME_UNKNOWN);
}

/* Register new credentials with the log mask (worker threads race here). */
static void remember_secrets(struct irfw_aws *a, const struct irfw_creds *c)
{
	if (!c->access_key_id)
		return;
	pthread_mutex_lock(&a->slots_lock);
	bool fresh = strcmp(a->last_key_id, c->access_key_id) != 0;
	if (fresh)
		snprintf(a->last_key_id, sizeof(a->last_key_id), "%s", c->access_key_id);
	pthread_mutex_unlock(&a->slots_lock);
	if (fresh) {
		irfw_log_add_secret(c->secret_access_key);
		irfw_log_add_secret(c->session_token);
	}
}

/*
 * One operation with retries.  `creds` overrides the provider (STS calls
 * made while resolving credentials); `anonymous` sends it unsigned.
 */
static int do_call(struct irfw_aws *a, const struct irfw_creds *creds, bool anonymous, const char *region,
                   const char *service, const char *op, const cJSON *params, unsigned flags, cJSON **result,
                   struct irfw_aws_error *e, char req_id[128])
{
	memset(e, 0, sizeof(*e));
	req_id[0] = '\0';
	*result = NULL;
	const struct irfw_service *svc = irfw_service_find(service);
	if (!svc) {
		snprintf(e->code, sizeof(e->code), "UnknownService");
		snprintf(e->message, sizeof(e->message),
		         "service '%s' is not known to irfw (ec2, autoscaling, elasticloadbalancing, elb, "
		         "s3, kms, "
		         "sns, sts, ssm, iam)",
		         service);
		return -1;
	}
	struct http_req q = {0};
	char *body = NULL, *sign_region = NULL;
	int rc = -1;
	if (build_request(a, svc, region, op, params, &q, &body, &sign_region, e) != 0)
		goto out;
	int max = a->max_attempts > 0 ? a->max_attempts : 1;
	/* The call's deadline runs on the wire and in backoff; waiting for a
	 * client-side token does not count (a fleet queued on a slow bucket
	 * is not failing). */
	double deadline = now_s() + (double)a->call_deadline;
	double started = now_s();
	/* The bucket: EC2's describes without a filter or pagination have a
	 * smaller one; and how urgent the caller's phase is. */
	unsigned rl_flags = IRFW_RL_PRIORITY(IRFW_AWS_REQ_PRIORITY_OF(flags));
	if (!params || (!cJSON_GetObjectItemCaseSensitive(params, "Filter") &&
	                !cJSON_GetObjectItemCaseSensitive(params, "MaxResults") &&
	                !cJSON_GetObjectItemCaseSensitive(params, "NextToken")))
		rl_flags |= IRFW_RL_UNFILTERED;
	int transient = 0, taken = 0, attempt;
	const char *gave_up = NULL;
	for (attempt = 1;; attempt++) {
		memset(e, 0, sizeof(*e));
		if (abandon_check(e))
			break;
		double w0 = now_s();
		irfw_ratelimit_acquire_ex(a->rl, a->account, region, service, op, rl_flags);
		deadline += now_s() - w0;
		struct irfw_creds own = {0};
		const struct irfw_creds *use = creds;
		char err[512] = "";
		if (!anonymous && !use) {
			if (irfw_creds_get(a->creds, &own, err, sizeof(err)) != 0) {
				snprintf(e->code, sizeof(e->code), "CredentialsError");
				snprintf(e->message, sizeof(e->message), "%s", err);
				goto out;
			}
			remember_secrets(a, &own);
			use = &own;
		}
		struct curl_slist *hl = NULL;
		for (size_t i = 0; i < q.n_hdrs; i++) {
			char *line = irfw_strfmt("%s: %s", q.hdrs[i].name, q.hdrs[i].value);
			hl = curl_slist_append(hl, line);
			free(line);
		}
		hl = curl_slist_append(hl, "Expect:");
		if (!anonymous) {
			struct irfw_sigv4_request sr = {
			    .method = q.method,
			    .path = q.path,
			    .query = q.query,
			    .headers = q.hdrs,
			    .n_headers = q.n_hdrs,
			    .body = q.body,
			    .body_len = q.body_len,
			    .payload_hash = q.payload_hash[0] ? q.payload_hash : NULL,
			};
			struct irfw_sigv4_params sp = {
			    .access_key_id = use->access_key_id,
			    .secret_access_key = use->secret_access_key,
			    .session_token = use->session_token,
			    .region = sign_region,
			    .service = svc->signing_name,
			    .when = time(NULL),
			    .s3_mode = svc->wire == IRFW_WIRE_REST_XML,
			    .sign_body = svc->wire == IRFW_WIRE_REST_XML,
			};
			struct irfw_sigv4_result sig;
			if (irfw_sigv4_sign(&sr, &sp, &sig, err, sizeof(err)) != 0) {
				irfw_creds_clear(&own);
				curl_slist_free_all(hl);
				snprintf(e->code, sizeof(e->code), "SigningError");
				snprintf(e->message, sizeof(e->message), "%s", err);
				goto out;
			}
			for (size_t i = 0; i < sig.n_add; i++) {
				char *line = irfw_strfmt("%s: %s", sig.add[i].name, sig.add[i].value);
				hl = curl_slist_append(hl, line);
				if (line) {
					explicit_bzero(line, strlen(line));
					free(line);
				}
			}
			irfw_sigv4_result_free(&sig);
		}
		irfw_creds_clear(&own);

		struct http_resp resp = {0};
		double t0 = now_s();
		bool sent = true;
		int prc = http_perform(a, &q, hl, (long)((deadline - t0) * 1000), &resp, e, &sent);
		curl_slist_free_all(hl);
		if (sent)
			atomic_fetch_add(&a->n_requests, 1);
		long ms = (long)((now_s() - t0) * 1000);
		if (prc == 0 && resp.status >= 200 && resp.status < 300) {
			*result = parse_success(svc, op, &resp, e);
			irfw_ratelimit_succeeded(a->rl, a->account, region, service, op);
			if (*result) {
				find_request_id(*result, &resp, req_id);
				irfw_logf(IRFW_LOG_DEBUG, "aws",
				          "%s %s: HTTP %ld, request %s, attempt %d, %ld ms", service, op,
				          resp.status, req_id[0] ? req_id : "-", attempt, ms);
				irfw_ratelimit_retry_success(a->rl, a->account, region, service, op, taken);
				rc = 0;
				resp_free(&resp);
				goto out;
			}
			/* A 2xx whose body cannot be read (cut short): AWS acted,
			 * the answer is lost. */
			const char *hid = resp_header(&resp, "x-amzn-requestid");
			if (!hid)
				hid = resp_header(&resp, "x-amz-request-id");
			if (hid)
				snprintf(e->request_id, sizeof(e->request_id), "%s", hid);
		} else if (prc == 0) {
			const char *hid = resp_header(&resp, "x-amzn-requestid");
			if (!hid)
				hid = resp_header(&resp, "x-amz-request-id");
			irfw_aws_error_parse(svc->wire, resp.status, resp.body.data, resp.body.len, hid,
			                     resp_header(&resp, "x-amzn-errortype"), e);
		}
		resp_free(&resp);
		irfw_logf(IRFW_LOG_DEBUG, "aws", "%s %s: HTTP %ld, %s, request %s, attempt %d, %ld ms",
		          service, op, e->http_status, e->code, e->request_id[0] ? e->request_id : "-",
		          attempt, ms);
		if (strcmp(e->code, "DryRunOperation") == 0 ||
		    strcmp(e->code, "DryRunOperationException") == 0) {
			snprintf(req_id, 128, "%s", e->request_id);
			*result = NULL;
			rc = 0;
			goto out;
		}
		if (abandon_check(e))
			break;
		bool throttle = irfw_aws_error_is_throttle(e);
		bool unreadable = strcmp(e->code, "InvalidReply") == 0;
		if (throttle) {
			atomic_fetch_add(&a->n_throttled, 1);
			irfw_ratelimit_throttled(a->rl, a->account, region, service, op);
		}
		if (!throttle && !unreadable && !irfw_aws_error_is_retryable(e))
			break; /* AWS's answer stands: not a fault of the wire */
		if ((flags & IRFW_AWS_REQ_NOT_IDEMPOTENT) && !throttle && (prc == 0 || sent) &&
		    !acted_not(e)) {
			/* It may have been carried out: the caller looks before
			 * sending it again. */
			outcome_unknown(e, op, prc != 0);
			break;
		}
		/* Throttling answers did nothing and are not counted against
		 * max_attempts (only the deadline and the quota bound them);
		 * everything else is. */
		if (!throttle)
			transient++;
		if (max <= 1 || transient >= max) {
			gave_up = "max_attempts";
			break;
		}
		bool timed = e->http_status == 0;
		int cost = irfw_ratelimit_retry_take(a->rl, a->account, region, service, op, timed);
		if (cost == 0) {
			gave_up = "the retry quota of this API is spent";
			break;
		}
		taken = cost;
		double d = irfw_backoff_delay(attempt, throttle ? BACKOFF_THROTTLE_BASE : BACKOFF_BASE,
		                              BACKOFF_CAP, irfw_rand01, NULL);
		if (now_s() + d >= deadline) {
			gave_up = "the call's deadline";
			break;
		}
		irfw_logf(IRFW_LOG_DEBUG, "aws", "%s %s: retrying in %.2f s (%s)", service, op, d, e->code);
		atomic_fetch_add(&a->n_retries, 1);
		abandonable_sleep(d);
		if (now_s() >= deadline) {
			gave_up = "the call's deadline";
			break;
		}
	}
	if (gave_up && (attempt > 1 || strcmp(gave_up, "max_attempts") != 0)) {
		/* Say why it stopped, with the limits, so a bound is visible. */
		size_t n = strlen(e->message);
		snprintf(e->message + n, sizeof(e->message) - n,
		         "%s(gave up after %d attempts in %.1f s: %s; limits %d attempts, %ld s a call)",
		         n ? " " : "", attempt, now_s() - started, gave_up, max, a->call_deadline);
	}
out:
	free(body);
	free(sign_region);
	req_free(&q);
	return rc;
}

bool irfw_operation_dry_sendable(const char *service, const char *op)
{
	if (!irfw_operation_mutates(op))
		return true;
	/* KMS's cryptographic operations take DryRun (since 2023) and answer
	 * DryRunOperationException: the permission and the key's state are
	 * checked, nothing is encrypted. */
	if (strcmp(service, "kms") == 0) {
		static const char *kms_dry[] = {"GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		                                "Encrypt",         "Decrypt",
		                                "ReEncrypt",       NULL};
		for (const char **p = kms_dry; *p; p++)
			if (strcmp(op, *p) == 0)
				return true;
		return false;
	}
	if (strcmp(service, "ec2") != 0)
		return false;
	/* EC2 actions whose request has no DryRun parameter (API reference):
	 * sent "dry", they would really be performed. */
	static const char *no_dry_run[] = {"AssociateIamInstanceProfile", "DisassociateIamInstanceProfile",
	                                   "ReplaceIamInstanceProfileAssociation", NULL};
	for (const char **p = no_dry_run; *p; p++)
		if (strcmp(op, *p) == 0)
			return false;
	return true;
}

int irfw_aws_request(struct irfw_aws *a, const char *region, const char *service, const char *operation,
                     const cJSON *params, bool dry_run, cJSON **result, struct irfw_aws_error *e,
                     char req_id[128])
{
	return irfw_aws_request_ex(a, region, service, operation, params, dry_run, 0, result, e, req_id);
}

int irfw_aws_request_ex(struct irfw_aws *a, const char *region, const char *service, const char *operation,
                        const cJSON *params, bool dry_run, unsigned flags, cJSON **result,
                        struct irfw_aws_error *e, char req_id[128])
{
	cJSON *res = NULL;
	int rc;
	if (dry_run && irfw_operation_mutates(operation)) {
		if (irfw_operation_dry_sendable(service, operation)) {
			/* EC2 checks permissions and parameters and answers DryRunOperation. */
			cJSON *p = params ? cJSON_Duplicate(params, true) : cJSON_CreateObject();
			cJSON_DeleteItemFromObjectCaseSensitive(p, "DryRun");
			cJSON_AddTrueToObject(p, "DryRun");
			rc = do_call(a, NULL, false, region, service, operation, p, flags, &res, e, req_id);
			cJSON_Delete(p);
		} else {
			/* No DryRun in this API: the call is not made at all. */
			irfw_logf(IRFW_LOG_INFO, "dry-run",
			          "not calling %s %s (no DryRun in its API: not checked)", service,
			          operation);
			memset(e, 0, sizeof(*e));
			req_id[0] = '\0';
			rc = 0;
		}
		cJSON_Delete(res);
		if (result)
			*result = NULL;
		return rc;
	}
	rc = do_call(a, NULL, false, region, service, operation, params, flags, &res, e, req_id);
	if (result)
		*result = res;
	else
		cJSON_Delete(res);
	return rc;
}

/* STS for the credential chain: AssumeRole signed with the source
 * credentials, AssumeRoleWithWebIdentity unsigned. */
static int sts_hook(void *ctx, const char *operation, const cJSON *params, const struct irfw_creds *source,
                    const char *region, cJSON **result, char *err, size_t errlen)
{
	struct irfw_aws *a = ctx;
	struct irfw_aws_error e;
	char rid[128];
	const char *reg = region ? region : a->region ? a->region : "us-east-1";
	if (do_call(a, source, source == NULL, reg, "sts", operation, params, 0, result, &e, rid) != 0) {
		snprintf(err, errlen, "sts:%s: %s: %s%s%s", operation, e.code, e.message,
		         e.request_id[0] ? " request " : "", e.request_id);
		return -1;
	}
	return 0;
}

/* The host of a URL, for messages that must not show the URL itself. */
static char *url_host(const char *url)
{
	CURLU *u = curl_url();
	char *h = NULL, *out = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK)
		out = strdup(h);
	curl_free(h);
	curl_url_cleanup(u);
	return out ? out : strdup("(unparsable URL)");
}

/* True for an answer that is one short error word (Slack's "invalid_token",
 * "no_text", "channel_not_found"), which cannot hold a URL. */
static bool webhook_error_word(const char *body)
{
	size_t n = body ? strlen(body) : 0;
	return n > 0 && n <= 64 && strspn(body, "abcdefghijklmnopqrstuvwxyz_") == n;
}

int irfw_aws_http_url_check(const char *url, char *why, size_t whylen)
{
	irfw_set_err(why, whylen, "%s", "");
	irfw_log_add_secret(url);
	if (strncmp(url, "https://", 8) == 0)
		return 0;
	/* Plain http only to this machine (test receivers): the host itself,
	 * as curl parses it, not a prefix ("http://127.0.0.1.example.net/"
	 * would carry the URL, a secret, in clear to another machine). */
	char *host = url_host(url);
	if (strncmp(url, "http://", 7) == 0 &&
	    (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
	     strcmp(host, "[::1]") == 0)) {
		free(host);
		return 0;
	}
	irfw_set_err(why, whylen, "refusing to post to %s: only https URLs are allowed", host);
	free(host);
	return -1;
}

int irfw_aws_http_post(struct irfw_aws *a, const char *url, const char *content_type, const char *body,
                       size_t len, long *http_status, char *why, size_t whylen)
{
	*http_status = 0;
	if (irfw_aws_http_url_check(url, why, whylen) != 0)
		return -1;
	char *host = url_host(url);
	CURL *c = thread_easy(a);
	struct http_resp resp = {0};
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hl = NULL;
	char *ct = irfw_strfmt("Content-Type: %s", content_type ? content_type : "application/json");
	hl = curl_slist_append(hl, ct);
	free(ct);
	int rc = -1;
	if (!c)
		irfw_set_err(why, whylen, "post to %s: out of memory", host);
	if (c) {
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_SHARE, a->share);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
		if (a->ca_file)
			curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, a->connect_timeout);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, a->low_speed_time);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
		abandon_hook(c);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
		CURLcode cr = curl_easy_perform(c);
		if (cr != CURLE_OK) {
			/* curl's messages may quote the URL: the code's text only. */
			irfw_set_err(why, whylen, "post to %s failed: %s", host, curl_easy_strerror(cr));
		} else {
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, http_status);
			if (*http_status >= 200 && *http_status < 300)
				rc = 0;
			else if (webhook_error_word(resp.body.data))
				irfw_set_err(why, whylen, "post to %s: HTTP %ld: %s", host, *http_status,
				             resp.body.data);
			else
				/* A server may echo the request path, which is the
				 * secret part of a webhook URL: show no free text. */
				irfw_set_err(
				    why, whylen,
				    "post to %s: HTTP %ld (%zu-byte answer not shown: it may quote the "
				    "webhook URL)",
				    host, *http_status, resp.body.len);
		}
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	}
	curl_slist_free_all(hl);
	resp_free(&resp);
	free(host);
	return rc;
}

void irfw_aws_limits_get(const struct irfw_aws *a, struct irfw_aws_limits *out)
{
	out->connect_timeout = a->connect_timeout;
	out->timeout = a->timeout;
	out->low_speed_time = a->low_speed_time;
	out->call_deadline = a->call_deadline;
	out->max_attempts = a->max_attempts;
	out->retry_quota = a->retry_quota;
}

void irfw_aws_stats_get(const struct irfw_aws *a, struct irfw_aws_stats *out)
{
	/* The counters only grow; a reader sees each at some moment. */
	struct irfw_aws *m = (struct irfw_aws *)a;
	out->requests = atomic_load(&m->n_requests);
	out->retries = atomic_load(&m->n_retries);
	out->throttled = atomic_load(&m->n_throttled);
}

/* A time limit: the configured value, else the environment's, else `def`.
 * 0, or -1 with a message for an environment value that is not a whole
 * number of seconds from 1 to 86400. */
static int limit_from(long cfg, const char *env, long def, long *out, char *err, size_t errlen)
{
	const char *v = getenv(env);
	*out = def;
	if (cfg > 0) {
		*out = cfg;
		return 0;
	}
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < 1 || n > 86400) {
		snprintf(err, errlen, "%s = \"%.20s\": expected whole seconds from 1 to 86400", env, v);
		return -1;
	}
	*out = n;
	return 0;
}

const char *irfw_aws_region(const struct irfw_aws *a)
{
	return a->region;
}

void irfw_aws_set_account(struct irfw_aws *a, const char *account_id)
{
	snprintf(a->account, sizeof(a->account), "%s", account_id ? account_id : "");
}

int irfw_aws_new(const struct irfw_aws_config *cfg, struct irfw_aws **out, char *err, size_t errlen)
{
	*out = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl failed to initialise: %s", curl_easy_strerror(curl_init_rc));
		return -1;
	}
	struct irfw_aws *a = calloc(1, sizeof(*a));
	if (!a)
		return -1;
	pthread_mutex_init(&a->slots_lock, NULL);
	pthread_mutex_init(&a->memo_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&a->share_lock[i], NULL);
	pthread_key_create(&a->easy_key, NULL);
	a->share = curl_share_init();
	if (a->share) {
		curl_share_setopt(a->share, CURLSHOPT_LOCKFUNC, share_lock);
		curl_share_setopt(a->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
		curl_share_setopt(a->share, CURLSHOPT_USERDATA, a);
		curl_share_setopt(a->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
		curl_share_setopt(a->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	}
	a->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
	a->timeout = cfg->timeout > 0 ? cfg->timeout : DEFAULT_TIMEOUT;
	if (limit_from(cfg->low_speed_time, "IRFW_AWS_LOW_SPEED_TIME", DEFAULT_LOW_SPEED_TIME,
	               &a->low_speed_time, err, errlen) != 0 ||
	    limit_from(cfg->call_deadline, "IRFW_AWS_CALL_DEADLINE",
	               a->timeout > DEFAULT_CALL_DEADLINE ? a->timeout : DEFAULT_CALL_DEADLINE,
	               &a->call_deadline, err, errlen) != 0) {
		irfw_aws_free(a);
		return -1;
	}
	a->endpoint_cfg = irfw_strdup(cfg->endpoint_url);
	a->s3_path_style = cfg->s3_path_style;
	const char *prof = cfg->profile;
	a->profile = irfw_strdup(prof);
	/* CA bundle, attempts and retry mode: the site file's, else the
	 * environment's, else the profile's (credentials.h). */
	struct irfw_aws_settings set;
	if (irfw_aws_settings_resolve(prof, cfg->ca_file, cfg->max_attempts, &set, err, errlen) != 0) {
		irfw_aws_free(a);
		return -1;
	}
	a->max_attempts = set.max_attempts;
	/* legacy: no retry quota; standard and adaptive keep one per bucket
	 * (adaptive pacing of undocumented services is always on). */
	a->retry_quota = strcmp(set.retry_mode, "legacy") != 0;
	a->ca_file = set.ca_bundle;
	set.ca_bundle = NULL;
	irfw_logf(IRFW_LOG_DEBUG, "aws",
	          "retry mode %s (%s), %d attempts (%s), CA bundle from %s; per attempt: connect %ld s, "
	          "%ld s in all, stalled %ld s; per call %ld s",
	          set.retry_mode, set.mode_from, set.max_attempts, set.attempts_from, set.ca_from,
	          a->connect_timeout, a->timeout, a->low_speed_time, a->call_deadline);
	irfw_aws_settings_free(&set);
	a->endpoints = irfw_endpoints_load(prof, err, errlen);
	if (!a->endpoints) {
		irfw_aws_free(a);
		return -1;
	}
	if (irfw_endpoints_ignored(a->endpoints))
		irfw_logf(IRFW_LOG_DEBUG, "aws",
		          "ignoring the configured endpoint URLs (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)");

	a->rl = irfw_ratelimit_new(irfw_clock_real());
	irfw_ratelimit_retry_quota_enable(a->rl, a->retry_quota);
	for (size_t i = 0; a->rl && i < irfw_ratelimit_class_count(); i++) {
		double cap, rate;
		const char *spec =
		    i < sizeof(cfg->ratelimit) / sizeof(cfg->ratelimit[0]) ? cfg->ratelimit[i] : NULL;
		if (spec && (irfw_ratelimit_parse_spec(spec, &cap, &rate) != 0 ||
		             irfw_ratelimit_configure(a->rl, irfw_ratelimit_class_name(i), cap, rate) != 0)) {
			snprintf(err, errlen,
			         "ratelimit.%s = %s: expected CAPACITY/REFILL_PER_SECOND, e.g. 50/5",
			         irfw_ratelimit_class_name(i), spec);
			irfw_aws_free(a);
			return -1;
		}
	}

	/* Region: the one given, AWS_REGION, AWS_DEFAULT_REGION, the profile, IMDS. */
	a->region = irfw_resolve_region(cfg->region, prof);
	struct irfw_cred_options co = {.profile = prof,
	                               .region = a->region,
	                               .sts = sts_hook,
	                               .sts_ctx = a,
	                               .timeout_ms = 2000,
	                               .ca_file = a->ca_file,
	                               .endpoint_url = a->endpoint_cfg};
	if (!a->region)
		a->region = irfw_imds_region(&co);
	if (!a->region) {
		snprintf(
		    err, errlen,
		    "no AWS region: irfw does not guess one (a wrong region finds no instance, or the wrong "
		    "ones); give --region REGION, or set region in the [irfw] section, AWS_REGION or "
		    "AWS_DEFAULT_REGION, or region in the AWS profile; on EC2 the instance's own region is "
		    "used");
		irfw_aws_free(a);
		return -1;
	}
	co.region = a->region;
	char cerr[1024];
	if (irfw_creds_provider_new(&co, &a->creds, cerr, sizeof(cerr)) != 0) {
		snprintf(err, errlen, "no usable AWS credentials: %s", cerr);
		irfw_aws_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

void irfw_aws_free(struct irfw_aws *a)
{
	if (!a)
		return;
	for (struct easy_slot *s = a->slots, *n; s; s = n) {
		n = s->next;
		curl_easy_cleanup(s->easy);
		free(s);
	}
	if (a->share)
		curl_share_cleanup(a->share);
	pthread_key_delete(a->easy_key);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&a->share_lock[i]);
	pthread_mutex_destroy(&a->slots_lock);
	for (size_t i = 0; i < a->n_memo; i++) {
		free(a->memo[i].url);
		free(a->memo[i].bucket);
		free(a->memo[i].base);
		free(a->memo[i].host);
	}
	pthread_mutex_destroy(&a->memo_lock);
	if (a->creds)
		irfw_creds_provider_free(a->creds);
	if (a->rl)
		irfw_ratelimit_free(a->rl);
	free(a->region);
	free(a->profile);
	free(a->endpoint_cfg);
	irfw_endpoints_free(a->endpoints);
	free(a->ca_file);
	free(a);
}
