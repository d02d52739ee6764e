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
/* The SSO portal and a credential_process are not metadata services. */
#define SSO_CONNECT_TIMEOUT_MS 10000L
#define SSO_TIMEOUT_MS         30000L
#define SSO_ATTEMPTS           3
#define PROCESS_TIMEOUT_S      300
#define PROCESS_MAX_STDERR     4096

/* What an INI section of the shared files is. */
enum cfg_sect {
	SECT_PROFILE,     /* [default], [profile x]; any section of the credentials file */
	SECT_SSO_SESSION, /* [sso-session x] */
	SECT_SERVICES,    /* [services x] */
};

struct kv {
	enum cfg_sect sect;
	char *profile; /* the section's name: profile, sso-session or services name */
	char *key;     /* lower case; a sub-section's key is "parent.key" ("sts.endpoint_url") */
	char *value;
	bool nested; /* "key =" followed by indented "sub = value" lines */
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
	const char *profile;       /* the profile in force (for the SSO portal's endpoint settings) */
	const char *ca_file;       /* CA bundle for the SSO portal; NULL: the system's */
	const char *site_endpoint; /* [irfw] endpoint_url; NULL: none */
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
/* ISO-8601 as AWS writes it (2026-11-28T12:00:00Z, a fraction, +hh:mm, or
 * the "UTC" the AWS CLI v2 once wrote).  0, or -1. */
int creds_parse_time(const char *s, time_t *out);
/* Register a secret with the log's masking (NULL and short ones ignored). */
void creds_mask(const char *secret);

/* shared_config.c: ~/.aws/config and ~/.aws/credentials. */
struct shared *creds_shared_load(char *err, size_t errlen);
void creds_shared_free(struct shared *sh);
const char *creds_shared_get(const struct shared *sh, const char *profile, const char *key);
/* One file only: the credentials file (in_creds) or the config file. */
const char *creds_shared_get_in(const struct shared *sh, bool in_creds, const char *profile, const char *key);
/* A key of an [sso-session x] or [services x] section of the config file. */
const char *creds_shared_get_sect(const struct shared *sh, enum cfg_sect sect, const char *name,
                                  const char *key);
bool creds_shared_has_sect(const struct shared *sh, enum cfg_sect sect, const char *name);
bool creds_shared_has_profile(const struct shared *sh, const char *profile);
const char *creds_effective_profile(const char *profile);

/* credentials_http.c: the metadata services' HTTP, and the container provider. */
int creds_http(const char *method, const char *url, const char *const *headers, long timeout_ms,
               const char *what, long *status, char **body, char *err, size_t errlen);
/* The same for a service that is not link-local (the SSO portal): the
 * environment's proxy settings apply, TLS is verified with ca_file (NULL:
 * the system's), and the AWS error type and request id headers are kept. */
struct creds_http_opts {
	const char *ca_file;
	bool use_proxy;
	long connect_ms, total_ms;
	char errortype[128];  /* out: x-amzn-errortype, up to its first ':' */
	char request_id[128]; /* out: x-amzn-requestid */
};
int creds_http_ex(const char *method, const char *url, const char *const *headers, struct creds_http_opts *o,
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

/* credentials_profile.c: a profile's credentials in the AWS SDKs' order:
 * role_arn (+ source_profile or credential_source, mfa_serial), web
 * identity, SSO, the credentials file's keys, credential_process, the
 * config file's keys.  must_exist: the profile was named (--profile,
 * AWS_PROFILE), so its absence is an error.  env_web_identity: the
 * AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN variables take part (not when
 * the profile was given explicitly, as in the SDKs).  Returns 0, 1 when the
 * profile has no credentials (reason in err), -1 on error. */
int creds_shared_profile(const struct resolver *r, const char *name, bool must_exist, bool env_web_identity,
                         struct irfw_creds *c, char *err, size_t errlen);
/* 0 when the profile exists in the shared files, else -1 with err. */
int creds_profile_check(const char *name, char *err, size_t errlen);
/* The MFA code for `serial`, asked on the controlling terminal (/dev/tty),
 * not echoed.  0, or -1 with err (no terminal, not 6 digits). */
int creds_mfa_code(const char *profile, const char *serial, char *code, size_t len, char *err, size_t errlen);

/* credentials_process.c: credential_process, run without a shell. */
int creds_process(const char *profile, const char *command, struct irfw_creds *c, char *err, size_t errlen);

/* credentials_sso.c: IAM Identity Center (SSO) profiles, from the token
 * `aws sso login` cached.  Returns 1 when the profile is not an SSO one. */
int creds_sso(const struct resolver *r, const struct shared *sh, const char *profile, struct irfw_creds *c,
              char *err, size_t errlen);

#endif /* IRFW_AWS_CREDS_PRIVATE_H */
