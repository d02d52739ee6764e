/*
 * credentials_imds.c - the instance role's credentials and the region
 * through the EC2 instance metadata service (IMDSv2).
 */
#define _GNU_SOURCE /* timegm, getline */

#include "creds_private.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
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
/* IMDSv2.                                                             */

struct imds {
	char base[256];
	char *token; /* NULL: IMDSv1 */
	long timeout_ms;
};

long creds_timeout(long timeout_ms)
{
	return timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

/* Returns 0 with a session, 1 when IMDS is disabled (reason in err), -1 on
 * error. */
static int imds_open(struct imds *m, bool v1_fallback, long timeout_ms, char *err, size_t errlen)
{
	static const char *const token_hdr[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL};
	const char *ep = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	const char *dis = creds_env("AWS_EC2_METADATA_DISABLED");
	char url[320];
	char *body = NULL;
	long status;
	size_t n;

	memset(m, 0, sizeof(*m));
	m->timeout_ms = creds_timeout(timeout_ms);
	if (dis && strcasecmp(dis, "true") == 0) {
		irfw_set_err(err, errlen, "disabled by AWS_EC2_METADATA_DISABLED");
		return 1;
	}
	if (!ep)
		ep = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_IPV6_ENDPOINT : IMDS_DEFAULT_ENDPOINT;
	snprintf(m->base, sizeof(m->base), "%s", ep);
	n = strlen(m->base);
	while (n > 0 && m->base[n - 1] == '/')
		m->base[--n] = '\0';
	snprintf(url, sizeof(url), "%s/latest/api/token", m->base);
	if (creds_http("PUT", url, token_hdr, m->timeout_ms, "IMDS token", &status, &body, err, errlen) < 0)
		return -1;
	if (status == 200 && *irfw_trim(body)) {
		m->token = strdup(irfw_trim(body));
		creds_wipe_free(body);
		if (!m->token) {
			irfw_set_err(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	creds_wipe_free(body);
	/* 403/404/405 are how an IMDS without v2 (or a v1 proxy) answers. */
	if ((status == 403 || status == 404 || status == 405) && v1_fallback)
		return 0;
	irfw_set_err(err, errlen, "IMDSv2 token request refused (HTTP %ld)%s", status,
	             v1_fallback ? "" : "; IMDSv1 fallback is off");
	return -1;
}

static void imds_close(struct imds *m)
{
	creds_wipe_free(m->token);
	m->token = NULL;
}

static int imds_get(const struct imds *m, const char *path, char **body, char *err, size_t errlen)
{
	char url[512];
	char *hdr = NULL;
	const char *hdrs[2] = {NULL, NULL};
	long status;
	int ret = -1;

	snprintf(url, sizeof(url), "%s%s", m->base, path);
	if (m->token) {
		if (asprintf(&hdr, "X-aws-ec2-metadata-token: %s", m->token) < 0) {
			irfw_set_err(err, errlen, "out of memory");
			return -1;
		}
		hdrs[0] = hdr;
	}
	if (creds_http("GET", url, hdrs, m->timeout_ms, "IMDS", &status, body, err, errlen) < 0)
		goto out;
	if (status != 200) {
		irfw_set_err(err, errlen, "IMDS GET %s: HTTP %ld", path, status);
		creds_wipe_free(*body);
		*body = NULL;
		goto out;
	}
	ret = 0;
out:
	creds_wipe_free(hdr);
	return ret;
}

/* Returns 0, 1 when IMDS is disabled, -1 on error. */
int creds_imds(bool v1_fallback, long timeout_ms, struct irfw_creds *c, char *err, size_t errlen)
{
	static const char list_path[] = "/latest/meta-data/iam/security-credentials/";
	struct imds m;
	char *body = NULL, *role, path[400];
	cJSON *j = NULL;
	const cJSON *code;
	int rc;

	rc = imds_open(&m, v1_fallback, timeout_ms, err, errlen);
	if (rc != 0)
		return rc;
	rc = -1;
	if (imds_get(&m, list_path, &body, err, errlen) < 0)
		goto out;
	role = irfw_trim(body);
	role[strcspn(role, "\r\n")] = '\0';
	if (!*role || strchr(role, '/') || strlen(role) > 128) {
		irfw_set_err(err, errlen, "IMDS: no instance role attached");
		goto out;
	}
	snprintf(path, sizeof(path), "%s%s", list_path, role);
	creds_wipe_free(body);
	body = NULL;
	if (imds_get(&m, path, &body, err, errlen) < 0)
		goto out;
	j = cJSON_Parse(body);
	if (!cJSON_IsObject(j)) {
		irfw_set_err(err, errlen, "IMDS: credentials reply is not JSON");
		goto out;
	}
	code = cJSON_GetObjectItemCaseSensitive(j, "Code");
	if (cJSON_IsString(code) && strcmp(code->valuestring, "Success") != 0) {
		irfw_set_err(err, errlen, "IMDS: credentials reply Code=%.40s", code->valuestring);
		goto out;
	}
	rc = creds_from_json(j, "Token", "imds", c, err, errlen);
out:
	creds_json_wipe_delete(j);
	creds_wipe_free(body);
	imds_close(&m);
	return rc;
}

char *irfw_imds_region(const struct irfw_cred_options *o)
{
	struct imds m;
	char err[256], *body = NULL, *r = NULL;

	if (imds_open(&m, o ? o->imds_v1_fallback : false, o ? o->timeout_ms : 0, err, sizeof(err)) != 0)
		return NULL;
	if (imds_get(&m, "/latest/meta-data/placement/region", &body, err, sizeof(err)) == 0 &&
	    *irfw_trim(body))
		r = strdup(irfw_trim(body));
	free(body);
	imds_close(&m);
	return r;
}
