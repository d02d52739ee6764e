/*
 * credentials_http.c - HTTP to the link-local metadata services, and the
 * container credentials provider (ECS, EKS Pod Identity).
 */
#define _GNU_SOURCE /* timegm, getline */

#include "creds_private.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <ini.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "text.h"

/* ------------------------------------------------------------------ */
/* HTTP to the metadata services.                                      */

static size_t body_write(char *data, size_t size, size_t nmemb, void *user)
{
	struct body *b = user;
	size_t add = size * nmemb;
	char *np;

	if (b->n + add > MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	np = malloc(b->n + add + 1);
	if (!np)
		return 0;
	/* Copy rather than realloc so that no stale copy of a secret is left. */
	if (b->p) {
		memcpy(np, b->p, b->n);
		OPENSSL_cleanse(b->p, b->n);
		free(b->p);
	}
	memcpy(np + b->n, data, add);
	b->n += add;
	np[b->n] = '\0';
	b->p = np;
	return add;
}

/* Keep the AWS error type (up to its first ':') and request id headers. */
static size_t header_write(char *data, size_t size, size_t nmemb, void *user)
{
	struct creds_http_opts *o = user;
	size_t len = size * nmemb;
	static const struct {
		const char *name;
		size_t off;
	} keep[] = {{"x-amzn-errortype:", offsetof(struct creds_http_opts, errortype)},
	            {"x-amzn-requestid:", offsetof(struct creds_http_opts, request_id)}};

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		size_t nl = strlen(keep[i].name);
		char *dst = (char *)o + keep[i].off;
		size_t v = nl, e;

		if (len <= nl || strncasecmp(data, keep[i].name, nl) != 0)
			continue;
		while (v < len && (data[v] == ' ' || data[v] == '\t'))
			v++;
		for (e = v; e < len && data[e] != '\r' && data[e] != '\n' && data[e] != ':'; e++)
			;
		snprintf(dst, 128, "%.*s", (int)(e - v), data + v);
	}
	return len;
}

/* One request.  Returns 0 with *status and *body (wipe_free it), or -1 on a
 * transport error.  `what` names the service in messages; the URL is left
 * out because container URLs can carry an identifier. */
int creds_http_ex(const char *method, const char *url, const char *const *headers, struct creds_http_opts *o,
                  const char *what, long *status, char **body, char *err, size_t errlen)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL, *t;
	struct body b = {NULL, 0, false};
	char ebuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	int ret = -1;

	*body = NULL;
	*status = 0;
	o->errortype[0] = o->request_id[0] = '\0';
	if (!h) {
		irfw_set_err(err, errlen, "%s: cannot create a curl handle", what);
		return -1;
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		t = curl_slist_append(hl, headers[i]);
		if (!t) {
			irfw_set_err(err, errlen, "out of memory");
			goto out;
		}
		hl = t;
	}
	if (strcmp(method, "PUT") == 0) {
		/* An empty PUT body; drop the form content type POSTFIELDS adds. */
		t = curl_slist_append(hl, "Content-Type:");
		if (!t) {
			irfw_set_err(err, errlen, "out of memory");
			goto out;
		}
		hl = t;
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_write);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, o);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we run in worker threads */
	/* Link-local and loopback services must never go through a proxy. */
	if (!o->use_proxy)
		curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->total_ms);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		if (b.too_big)
			irfw_set_err(err, errlen, "%s: reply larger than %d bytes", what, MAX_BODY);
		else
			irfw_set_err(err, errlen, "%s: %s", what, *ebuf ? ebuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	*body = b.p ? b.p : strdup("");
	b.p = NULL;
	if (!*body) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	if (b.p) {
		OPENSSL_cleanse(b.p, b.n);
		free(b.p);
	}
	/* The list holds tokens; wipe our copies before curl frees them. */
	for (t = hl; t; t = t->next)
		OPENSSL_cleanse(t->data, strlen(t->data));
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	return ret;
}

int creds_http(const char *method, const char *url, const char *const *headers, long timeout_ms,
               const char *what, long *status, char **body, char *err, size_t errlen)
{
	struct creds_http_opts o = {
	    .use_proxy = false,
	    .connect_ms = timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS,
	    .total_ms = timeout_ms,
	};

	return creds_http_ex(method, url, headers, &o, what, status, body, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Container credentials (ECS task roles, EKS Pod Identity).          */

static bool addr_allowed(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		uint32_t a = ntohl(in->sin_addr.s_addr);

		return (a >> 24) == 127 || a == 0xA9FEAA02u /* 169.254.170.2 */ ||
		       a == 0xA9FEAA17u /* 169.254.170.23 */;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		static const unsigned char eks[16] = {0xfd, 0, 0, 0, 0x0e, 0xc2, 0, 0,
		                                      0,    0, 0, 0, 0,    0,    0, 0x23};

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) || memcmp(&in6->sin6_addr, eks, 16) == 0;
	}
	return false;
}

/* A full URI may be https anywhere, but plain http only to loopback or the
 * ECS/EKS agents: otherwise any DNS trick could harvest the token. */
static int full_uri_allowed(const char *uri, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	struct addrinfo hints, *res = NULL, *ai;
	size_t hl;
	int ret = -1;

	if (!u) {
		irfw_set_err(err, errlen, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		irfw_set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid URL");
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0) {
		ret = 0;
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0) {
		irfw_set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be http or https");
		goto out;
	}
	hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) {
		irfw_set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI: cannot resolve %s", host);
		goto out;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if (!addr_allowed(ai->ai_addr)) {
			irfw_set_err(err, errlen,
			             "AWS_CONTAINER_CREDENTIALS_FULL_URI: http is only allowed to "
			             "loopback or the ECS/EKS agent, not %s",
			             host);
			goto out;
		}
	ret = 0;
out:
	if (res)
		freeaddrinfo(res);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

/* Returns 0, 1 when not configured (reason in err), -1 on error. */
int creds_container(long timeout_ms, struct irfw_creds *c, char *err, size_t errlen)
{
	const char *rel = creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tokfile = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tokenv = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *url = NULL, *filetok = NULL, *hdr = NULL, *body = NULL;
	const char *hdrs[2] = {NULL, NULL}, *tok = NULL;
	cJSON *j = NULL;
	long status;
	int ret = -1;

	if (!rel && !full) {
		irfw_set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI not set");
		return 1;
	}
	if (rel) {
		if (asprintf(&url, "%s%s%s", ECS_HOST_URL, rel[0] == '/' ? "" : "/", rel) < 0)
			url = NULL;
	} else {
		if (full_uri_allowed(full, err, errlen) < 0)
			return -1;
		url = strdup(full);
	}
	if (!url) {
		irfw_set_err(err, errlen, "out of memory");
		return -1;
	}
	/* The file wins: EKS rotates it, while the variable is fixed at start. */
	if (tokfile) {
		filetok = creds_read_file(tokfile, err, errlen, "container authorization token file");
		if (!filetok)
			goto out;
		tok = irfw_trim(filetok);
	} else {
		tok = tokenv;
	}
	if (tok) {
		if (strpbrk(tok, "\r\n")) {
			irfw_set_err(err, errlen, "container authorization token contains a line break");
			goto out;
		}
		if (asprintf(&hdr, "Authorization: %s", tok) < 0) {
			hdr = NULL;
			irfw_set_err(err, errlen, "out of memory");
			goto out;
		}
		hdrs[0] = hdr;
	}
	if (creds_http("GET", url, hdrs, creds_timeout(timeout_ms), "container credentials endpoint", &status,
	               &body, err, errlen) < 0)
		goto out;
	if (status != 200) {
		irfw_set_err(err, errlen, "container credentials endpoint: HTTP %ld", status);
		goto out;
	}
	j = cJSON_Parse(body);
	if (!cJSON_IsObject(j)) {
		irfw_set_err(err, errlen, "container credentials endpoint: reply is not JSON");
		goto out;
	}
	ret = creds_from_json(j, "Token", "container", c, err, errlen);
out:
	creds_json_wipe_delete(j);
	creds_wipe_free(body);
	creds_wipe_free(hdr);
	if (filetok) {
		OPENSSL_cleanse(filetok, MAX_TOKEN_FILE + 1);
		free(filetok);
	}
	free(url);
	return ret;
}
