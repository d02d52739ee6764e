/*
 * credentials.h - AWS credential and region resolution, the way the AWS SDKs
 * and the AWS CLI do it (internal to libirfw).
 *
 * Order of the credential chain:
 *   1. a profile named explicitly (--profile, else AWS_PROFILE): that profile
 *      of the shared files and nothing else, as the CLI does;
 *   2. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *   3. the shared files' profile "default" (static keys, role_arn with
 *      source_profile or credential_source, or web_identity_token_file);
 *   4. AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME);
 *   5. container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI);
 *   6. the EC2 instance role through IMDSv2.
 *
 * The shared files are ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE) and
 * ~/.aws/config (AWS_CONFIG_FILE).  For the same key of the same profile the
 * credentials file wins.  STS is reached through a callback, so this file
 * needs no SigV4 client of its own.
 *
 * The caller calls curl_global_init() once before any of these functions.
 * No error message written by these functions contains a secret.
 */
#ifndef IRFW_CREDENTIALS_H
#define IRFW_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <cJSON.h>

/** A set of credentials.  Free the strings with irfw_creds_clear(). */
struct irfw_creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL for long-term keys */
	time_t expiration;   /* 0 = never expires */
	/* Where they came from, for logs: "env", "profile:x",
	 * "assume-role:<arn>" (truncated), "web-identity", "container",
	 * "imds".  Never secret. */
	char source[48];
};

/**
 * STS hook, provided by the HTTP client.  Call STS `operation`
 * ("AssumeRole" or "AssumeRoleWithWebIdentity") in `region` (NULL: the
 * caller's default) with `params`, a flat object of query parameter names to
 * string values, signed with `source` (NULL for AssumeRoleWithWebIdentity,
 * which is unsigned).  On success set *result to the parsed reply, e.g.
 * {"AssumeRoleResult":{"Credentials":{"AccessKeyId":..,"SecretAccessKey":..,
 * "SessionToken":..,"Expiration":"2026-11-28T12:00:00Z"}}}
 * (or "AssumeRoleWithWebIdentityResult"); the credentials code frees it with
 * cJSON_Delete().  Return 0, or -1 with a secret-free message in err.
 */
typedef int (*irfw_sts_fn)(void *ctx, const char *operation, const cJSON *params,
                           const struct irfw_creds *source, const char *region, cJSON **result, char *err,
                           size_t errlen);

/** How to resolve credentials.  Zeroed fields take the defaults. */
struct irfw_cred_options {
	const char *profile; /* --profile; NULL: AWS_PROFILE, else the chain */
	const char *region;  /* --region, used for STS; NULL: irfw_resolve_region() */
	irfw_sts_fn sts;     /* NULL: profiles needing STS fail with a clear error */
	void *sts_ctx;
	bool imds_v1_fallback; /* allow IMDSv1 when the IMDSv2 token is refused */
	long timeout_ms;       /* total time of one container/IMDS request; 0: 2000 */
};

/** A resolved, self-refreshing source of credentials.  Thread-safe. */
struct irfw_cred_provider;

/**
 * Resolve the credential chain and fetch the first credentials.
 * Returns 0 and sets *out, or -1 with err saying which sources were tried and
 * why each was not used.  `o` is copied; its strings need not outlive the call.
 */
int irfw_creds_provider_new(const struct irfw_cred_options *o, struct irfw_cred_provider **out, char *err,
                            size_t errlen);

/**
 * Give the caller its own copy of the current credentials, refreshing them
 * first when they expire within 5 minutes.  Safe from many threads: one
 * refreshes while the others keep using still-valid credentials (or wait for
 * the refresh when they have expired).  Returns 0, or -1 with err when no
 * valid credentials could be had.  Free the copy with irfw_creds_clear().
 */
int irfw_creds_get(struct irfw_cred_provider *p, struct irfw_creds *copy, char *err, size_t errlen);

/** Free the strings of `c` after wiping them, and zero `c`.  NULL is fine. */
void irfw_creds_clear(struct irfw_creds *c);

/** Free a provider and wipe the credentials it holds.  NULL is fine. */
void irfw_creds_provider_free(struct irfw_cred_provider *p);

/**
 * The region to use: `explicit_region` (--region), else AWS_REGION, else
 * AWS_DEFAULT_REGION, else `region` of the profile (`profile`, else
 * AWS_PROFILE, else "default") in the shared files, else NULL.
 * Returns a malloc'd string or NULL.
 */
char *irfw_resolve_region(const char *explicit_region, const char *profile);

/**
 * The instance's region from IMDSv2 (/latest/meta-data/placement/region),
 * honouring the IMDS settings of `o` (NULL: defaults) and the
 * AWS_EC2_METADATA_* variables.  Returns a malloc'd string, or NULL when not
 * on EC2 or IMDS is disabled.
 */
char *irfw_imds_region(const struct irfw_cred_options *o);

/**
 * Any setting `key` (e.g. "endpoint_url") of a profile (`profile`, else
 * AWS_PROFILE, else "default") in the shared files, the credentials file
 * winning over the config file.  Returns a malloc'd string or NULL.
 */
char *irfw_profile_get(const char *profile, const char *key);

/* Path of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 * ~/.aws/credentials), to free(); NULL without HOME. */
char *irfw_shared_credentials_path(void);

#endif /* IRFW_CREDENTIALS_H */
