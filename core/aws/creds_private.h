/*
 * creds_private.h - what the credential providers of core/aws/ share
 * (credentials.c holds the chain; one file per provider, as the AWS SDKs
 * and fluent-bit's src/aws/ lay them out).  Not for the engine: its face
 * is credentials.h.
 */
#ifndef IRFW_AWS_CREDS_PRIVATE_H
#define IRFW_AWS_CREDS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <cJSON.h>

#include "credentials.h"

/* Refresh this long before the credentials expire, as the SDKs do. */
#define REFRESH_WINDOW_S 300
/* A source_profile chain longer than this is a misconfiguration. */
#define MAX_CHAIN          16
#define DEFAULT_TIMEOUT_MS 2000L
#define CONNECT_TIMEOUT_MS 1000L
/* Metadata replies are tiny; anything bigger is not a metadata service. */
#define MAX_BODY              (64 * 1024)
#define MAX_TOKEN_FILE        (64 * 1024)
#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_IPV6_ENDPOINT    "http://[fd00:ec2::254]"
#define ECS_HOST_URL          "http://169.254.170.2"

struct kv {
	char *profile;
	char *key;
	char *value;
};

struct cfgfile {
	char *path;
	struct kv *v;
	size_t n, cap;
	bool is_config; /* sections are "profile x" / "default" */
};

struct shared {
	struct cfgfile creds;
	struct cfgfile config;
};

struct resolver {
	irfw_sts_fn sts;
	void *sts_ctx;
	const char *region; /* may be NULL */
	bool imds_v1_fallback;
	long timeout_ms;
};

struct chain {
	const char *names[MAX_CHAIN];
	size_t n;
};

struct body {
	char *p;
	size_t n;
	bool too_big;
};

/* credentials.c: helpers shared by the providers. */
const char *creds_env(const char *name); /* unset and empty alike: NULL */
void creds_wipe_free(char *s);
void creds_json_wipe_delete(cJSON *j); /* credential replies hold secrets */
int creds_copy(struct irfw_creds *dst, const struct irfw_creds *src);
int creds_set(struct irfw_creds *c, const char *akid, const char *secret, const char *token,
              time_t expiration, const char *source);
int creds_from_json(const cJSON *o, const char *token_key, const char *source, struct irfw_creds *c,
                    char *err, size_t errlen);
char *creds_read_file(const char *path, char *err, size_t errlen, const char *what);
long creds_timeout(long timeout_ms);
int creds_env_keys(struct irfw_creds *c, char *err, size_t errlen);

/* shared_config.c: ~/.aws/config and ~/.aws/credentials. */
struct shared *creds_shared_load(char *err, size_t errlen);
void creds_shared_free(struct shared *sh);
const char *creds_shared_get(const struct shared *sh, const char *profile, const char *key);
bool creds_shared_has_profile(const struct shared *sh, const char *profile);
const char *creds_effective_profile(const char *profile);

/* credentials_http.c: the metadata services' HTTP, and the container provider. */
int creds_http(const char *method, const char *url, const char *const *headers, long timeout_ms,
               const char *what, long *status, char **body, char *err, size_t errlen);
int creds_container(long timeout_ms, struct irfw_creds *c, char *err, size_t errlen);

/* credentials_imds.c: the instance's role through IMDSv2. */
int creds_imds(bool v1_fallback, long timeout_ms, struct irfw_creds *c, char *err, size_t errlen);

/* credentials_sts.c: AssumeRole and AssumeRoleWithWebIdentity. */
int creds_sts(const struct resolver *r, const char *op, cJSON *params, const struct irfw_creds *source,
              const char *profile, const char *role_arn, struct irfw_creds *c, char *err, size_t errlen);
int creds_web_identity(const struct resolver *r, const char *token_file, const char *role_arn,
                       const char *session_name, const char *profile, struct irfw_creds *c, char *err,
                       size_t errlen);
int creds_env_web_identity(const struct resolver *r, struct irfw_creds *c, char *err, size_t errlen);
int creds_add_param(cJSON *params, const char *name, const char *value);

/* credentials_profile.c: a profile's keys, role_arn + source_profile or
 * credential_source, web identity. */
int creds_shared_profile(const struct resolver *r, const char *name, struct irfw_creds *c, char *err,
                         size_t errlen);

#endif /* IRFW_AWS_CREDS_PRIVATE_H */
