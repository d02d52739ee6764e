/*
 * credentials.h - AWS credential and region resolution, and the settings of
 * the shared config files, the way the AWS SDKs (botocore, so boto3 and
 * the AWS CLI) read them (internal to libirfw).
 *
 * Order of the credential chain, as botocore's create_credential_resolver:
 *   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN),
 *      unless a profile was given explicitly (--profile or [irfw] profile):
 *      the keys win over AWS_PROFILE, an explicit profile wins over them;
 *   2. the profile (explicit, else AWS_PROFILE, else "default"; a named
 *      profile that does not exist is an error), in this order:
 *      role_arn with source_profile or credential_source (and mfa_serial);
 *      web identity (AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN, which win
 *      unless the profile is explicit, else the profile's
 *      web_identity_token_file + role_arn); SSO (sso_session or the legacy
 *      sso_start_url..., from the token `aws sso login` cached); the
 *      credentials file's keys; credential_process; the config file's keys;
 *   3. AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (not with an explicit
 *      profile), when the profile does not exist;
 *   4. container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI);
 *   5. the EC2 instance role through IMDSv2.
 * A source_profile is resolved the same way without the variables, its
 * keys winning over its role_arn, as botocore does.
 *
 * The shared files are ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE) and
 * ~/.aws/config (AWS_CONFIG_FILE).  For the same key of the same profile the
 * credentials file wins.  STS is reached through a callback, so this file
 * needs no SigV4 client of its own.
 *
 * The caller calls curl_global_init() once before any of these functions.
 * No error message written by these functions contains a secret, and every
 * secret they obtain (keys, tokens, SSO access tokens) is registered with
 * the log's masking.
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
	 * "assume-role:<arn>" (truncated), "web-identity", "process:x",
	 * "sso:x", "container", "imds".  Never secret. */
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
	bool imds_v1_fallback;    /* allow IMDSv1 when the IMDSv2 token is refused */
	long timeout_ms;          /* total time of one container/IMDS request; 0: 2000 */
	const char *ca_file;      /* CA bundle for the SSO portal; NULL: the system's */
	const char *endpoint_url; /* [irfw] endpoint_url (see irfw_endpoints_get); may be NULL */
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

/**
 * Configured endpoints, as botocore reads them: for service `id` (the
 * AWS_ENDPOINT_URL_<id> suffix: "EC2", "AUTO_SCALING", "SSO"...),
 *   1. AWS_ENDPOINT_URL_<id>, 2. AWS_ENDPOINT_URL,
 *   3. `site` (the [irfw] endpoint_url),
 *   4. endpoint_url of sub-section <id in lower case> of the profile's
 *      `services = NAME` section [services NAME] in the config file,
 *   5. the profile's endpoint_url.
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (else the profile's
 * ignore_configured_endpoint_urls) drops 1, 2, 4 and 5: the environment's
 * and the shared files' endpoints; the site file's is irfw's own setting,
 * like an endpoint given in code to an SDK, and stays.
 */
struct irfw_endpoints;

/** Read the profile's endpoint settings (`profile`, else AWS_PROFILE, else
 * "default").  NULL with err on an unreadable file or a `services` that
 * names no [services NAME] section. */
struct irfw_endpoints *irfw_endpoints_load(const char *profile, char *err, size_t errlen);
/** The endpoint for `id`, to free(); NULL: AWS's own. */
char *irfw_endpoints_get(const struct irfw_endpoints *e, const char *id, const char *site);
/** True when configured endpoints are ignored (for logs). */
bool irfw_endpoints_ignored(const struct irfw_endpoints *e);
void irfw_endpoints_free(struct irfw_endpoints *e);

/** The AWS client's settings that the SDKs read from the environment and
 * the profile. */
struct irfw_aws_settings {
	char *ca_bundle;     /* to free(); NULL: the system's CA store */
	int max_attempts;    /* >= 1 */
	char retry_mode[16]; /* "legacy", "standard" or "adaptive" */
	/* Where each came from ("[irfw] ca_file", "AWS_CA_BUNDLE", "profile x",
	 * "default"), for -v.  Never secret. */
	char ca_from[80], attempts_from[80], mode_from[80];
};

/**
 * Resolve them, the site file's explicit values first:
 *   CA bundle:    site_ca_file ([irfw] ca_file), AWS_CA_BUNDLE, the
 *                 profile's ca_bundle, the system's;
 *   max attempts: site_max_attempts when > 0 ([irfw] max_attempts written
 *                 in the file), AWS_MAX_ATTEMPTS, the profile's
 *                 max_attempts, 5;
 *   retry mode:   AWS_RETRY_MODE, the profile's retry_mode, "standard".
 * Returns 0, or -1 with err naming the setting for a value that is not a
 * positive number or not one of the three modes.
 */
int irfw_aws_settings_resolve(const char *profile, const char *site_ca_file, int site_max_attempts,
                              struct irfw_aws_settings *s, char *err, size_t errlen);
void irfw_aws_settings_free(struct irfw_aws_settings *s);

/* Path of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 * ~/.aws/credentials), to free(); NULL without HOME. */
char *irfw_shared_credentials_path(void);

#endif /* IRFW_CREDENTIALS_H */
