/*
 * credentials_test.c - credential chain, shared files, STS hook, refresh,
 * region order, and container/IMDSv2 against tests/integration/fake_metadata.py.
 * No network but 127.0.0.1.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "aws/credentials.h"

static char tmpdir[256];
static char cred_path[300], conf_path[300], tok_path[300], script_path[300], count_path[300];
static char args_path[300], sso_dir[300], sso_file[400];

static const char *const aws_vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_PROFILE",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_WEB_IDENTITY_TOKEN_FILE",
                                       "AWS_ROLE_ARN",
                                       "AWS_ROLE_SESSION_NAME",
                                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                       "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                       "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
                                       "AWS_EC2_METADATA_DISABLED",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_SSO",
                                       "AWS_ENDPOINT_URL_STS",
                                       "AWS_ENDPOINT_URL_EC2",
                                       "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                                       "AWS_CA_BUNDLE",
                                       "AWS_MAX_ATTEMPTS",
                                       "AWS_RETRY_MODE",
                                       NULL};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* ------------------------------------------------------------------ */
/* Fake STS.                                                           */

struct fake_sts {
	int calls;
	int fail_from;      /* fail calls numbered >= this (1-based); 0: never */
	long expires_in[8]; /* seconds, per call; 0 => 3600 */
	useconds_t delay_us;
	char last_op[64];
	char last_region[32];
	bool last_source_null;
	char last_source_akid[64];
	char last_source_secret[64];
	cJSON *last_params;
	pthread_mutex_t lock;
};

static struct fake_sts sts;

static void sts_reset(void)
{
	cJSON_Delete(sts.last_params);
	memset(&sts, 0, sizeof(sts));
	pthread_mutex_init(&sts.lock, NULL);
}

static const char *param(const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(sts.last_params, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int fake_sts_fn(void *ctx, const char *op, const cJSON *params, const struct irfw_creds *source,
                       const char *region, cJSON **result, char *err, size_t errlen)
{
	struct fake_sts *s = ctx;
	char key[64], akid[32], exp[32];
	time_t t;
	cJSON *root, *inner, *cr;
	int n;
	long in;

	pthread_mutex_lock(&s->lock);
	n = ++s->calls;
	snprintf(s->last_op, sizeof(s->last_op), "%s", op);
	snprintf(s->last_region, sizeof(s->last_region), "%s", region ? region : "(null)");
	s->last_source_null = source == NULL;
	if (source) {
		snprintf(s->last_source_akid, sizeof(s->last_source_akid), "%s", source->access_key_id);
		snprintf(s->last_source_secret, sizeof(s->last_source_secret), "%s",
		         source->secret_access_key);
	}
	cJSON_Delete(s->last_params);
	s->last_params = cJSON_Duplicate(params, 1);
	in = n - 1 < 8 ? s->expires_in[n - 1] : 0;
	pthread_mutex_unlock(&s->lock);
	if (s->delay_us)
		usleep(s->delay_us);
	if (s->fail_from && n >= s->fail_from) {
		snprintf(err, errlen, "AccessDenied: not allowed");
		return -1;
	}
	t = time(NULL) + (in ? in : 3600);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	snprintf(akid, sizeof(akid), "ASIASTS%05d", n);
	snprintf(key, sizeof(key), "%sResult", op);
	root = cJSON_CreateObject();
	inner = cJSON_AddObjectToObject(root, key);
	cr = cJSON_AddObjectToObject(inner, "Credentials");
	cJSON_AddStringToObject(cr, "AccessKeyId", akid);
	cJSON_AddStringToObject(cr, "SecretAccessKey", "stsSecretKeyForTests");
	cJSON_AddStringToObject(cr, "SessionToken", "sts-session-token");
	cJSON_AddStringToObject(cr, "Expiration", exp);
	*result = root;
	return 0;
}

static struct irfw_cred_options opts_with_sts(void)
{
	struct irfw_cred_options o = {.sts = fake_sts_fn, .sts_ctx = &sts};

	return o;
}

/* ------------------------------------------------------------------ */
/* Fixtures.                                                           */

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/irfw-cred-test-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", tmpdir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", tmpdir);
	snprintf(tok_path, sizeof(tok_path), "%s/token", tmpdir);
	snprintf(script_path, sizeof(script_path), "%s/cred helper.sh", tmpdir);
	snprintf(count_path, sizeof(count_path), "%s/count", tmpdir);
	snprintf(args_path, sizeof(args_path), "%s/args", tmpdir);
	snprintf(sso_dir, sizeof(sso_dir), "%s/.aws/sso/cache", tmpdir);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	unlink(cred_path);
	unlink(conf_path);
	unlink(tok_path);
	unlink(script_path);
	unlink(count_path);
	unlink(args_path);
	unlink(sso_file);
	rmdir(sso_dir);
	snprintf(sso_file, sizeof(sso_file), "%s/.aws/sso", tmpdir);
	rmdir(sso_file);
	snprintf(sso_file, sizeof(sso_file), "%s/.aws", tmpdir);
	rmdir(sso_file);
	rmdir(tmpdir);
	cJSON_Delete(sts.last_params);
	sts.last_params = NULL;
	curl_global_cleanup();
	return 0;
}

/* Every test starts with no AWS settings at all and IMDS off, so nothing
 * can reach for 169.254.169.254. */
static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; aws_vars[i]; i++)
		unsetenv(aws_vars[i]);
	unlink(cred_path);
	unlink(conf_path);
	unlink(tok_path);
	unlink(script_path);
	unlink(count_path);
	unlink(args_path);
	setenv("HOME", tmpdir, 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
	setenv("AWS_CONFIG_FILE", conf_path, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	sts_reset();
	return 0;
}

static void get_creds(const struct irfw_cred_options *o, struct irfw_creds *c)
{
	struct irfw_cred_provider *p = NULL;
	char err[1024] = "";
	int rc = irfw_creds_provider_new(o, &p, err, sizeof(err));

	if (rc != 0)
		fail_msg("provider_new: %s", err);
	assert_int_equal(irfw_creds_get(p, c, err, sizeof(err)), 0);
	irfw_creds_provider_free(p);
}

static void expect_failure(const struct irfw_cred_options *o, char *err, size_t errlen)
{
	struct irfw_cred_provider *p = NULL;

	assert_int_equal(irfw_creds_provider_new(o, &p, err, errlen), -1);
	assert_null(p);
}

/* ------------------------------------------------------------------ */
/* Environment and shared files.                                       */

static void test_env_creds(void **state)
{
	struct irfw_creds c;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV0000000000001", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecret", 1);
	setenv("AWS_SESSION_TOKEN", "envToken", 1);
	get_creds(NULL, &c);
	assert_string_equal(c.source, "env");
	assert_string_equal(c.access_key_id, "AKIAENV0000000000001");
	assert_string_equal(c.secret_access_key, "envSecret");
	assert_string_equal(c.session_token, "envToken");
	assert_int_equal(c.expiration, 0);
	irfw_creds_clear(&c);
	assert_null(c.access_key_id);

	unsetenv("AWS_SESSION_TOKEN");
	get_creds(NULL, &c);
	assert_null(c.session_token);
	irfw_creds_clear(&c);
}

static void test_env_partial_is_error(void **state)
{
	char err[512];

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV0000000000001", 1);
	write_file(cred_path, "[default]\naws_access_key_id = AKIAFILE\n"
	                      "aws_secret_access_key = fileSecret\n");
	expect_failure(NULL, err, sizeof(err));
	assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));
}

static void test_explicit_profile_over_env(void **state)
{
	struct irfw_creds c;
	struct irfw_cred_options o = {.profile = "work"};
	char err[512];

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV0000000000001", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecret", 1);
	write_file(cred_path, "[work]\naws_access_key_id = AKIAWORK\n"
	                      "aws_secret_access_key = workSecret\n"
	                      "[home]\naws_access_key_id = AKIAHOME\n"
	                      "aws_secret_access_key = homeSecret\n");
	get_creds(&o, &c);
	assert_string_equal(c.source, "profile:work");
	assert_string_equal(c.access_key_id, "AKIAWORK");
	assert_string_equal(c.secret_access_key, "workSecret");
	irfw_creds_clear(&c);

	/* AWS_PROFILE does not beat the environment's keys (boto3 and the
	 * CLI use the keys); --profile does. */
	setenv("AWS_PROFILE", "home", 1);
	get_creds(NULL, &c);
	assert_string_equal(c.source, "env");
	assert_string_equal(c.access_key_id, "AKIAENV0000000000001");
	irfw_creds_clear(&c);
	get_creds(&o, &c);
	assert_string_equal(c.access_key_id, "AKIAWORK");
	irfw_creds_clear(&c);
	/* Without the keys, AWS_PROFILE's profile. */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	get_creds(NULL, &c);
	assert_string_equal(c.access_key_id, "AKIAHOME");
	irfw_creds_clear(&c);

	/* A named profile that does not exist is an error, not a fall-through,
	 * even when the keys are there (botocore: ProfileNotFound). */
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV0000000000001", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecret", 1);
	setenv("AWS_PROFILE", "nosuch", 1);
	expect_failure(NULL, err, sizeof(err));
	assert_non_null(strstr(err, "\"nosuch\" not found"));
	unsetenv("AWS_PROFILE");
	o.profile = "nosuch";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "\"nosuch\" not found"));
}

/* botocore's order: the web identity variables come before the profile's
 * own keys; an explicit profile ignores both the variables and the keys,
 * and one without credentials falls through to container and IMDS. */
static void test_chain_order_like_botocore(void **state)
{
	struct irfw_creds c;
	struct irfw_cred_options o = opts_with_sts();
	char err[1024];

	(void)state;
	write_file(tok_path, "wi-token");
	write_file(cred_path, "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = defSecret\n"
	                      "[bare]\nregion = eu-west-1\n");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok_path, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/Pod", 1);
	get_creds(&o, &c);
	assert_string_equal(c.source, "web-identity");
	assert_int_equal(sts.calls, 1);
	irfw_creds_clear(&c);
	o.profile = "default";
	get_creds(&o, &c);
	assert_string_equal(c.source, "profile:default");
	assert_int_equal(sts.calls, 1);
	irfw_creds_clear(&c);

	/* The token file without a role is an error, not a skip. */
	o.profile = NULL;
	unsetenv("AWS_ROLE_ARN");
	unlink(cred_path);
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "AWS_ROLE_ARN is not"));

	write_file(cred_path, "[bare]\nregion = eu-west-1\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV0000000000001", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecret", 1);
	o.profile = "bare";
	expect_failure(&o, err, sizeof(err));
	assert_null(strstr(err, "environment ("));
	assert_null(strstr(err, "web identity ("));
	assert_non_null(strstr(err, "shared files (profile \"bare\" has no credentials)"));
	assert_non_null(strstr(err, "; container ("));
	assert_non_null(strstr(err, "; IMDS ("));
}

static void test_shared_files(void **state)
{
	struct irfw_creds c;
	struct irfw_cred_options o = {0};

	(void)state;
	write_file(cred_path, "; comment\n[default]\naws_access_key_id = AKIACREDFILE\n"
	                      "aws_secret_access_key = credFileSecret ; inline comment\n");
	write_file(conf_path, "[default]\nregion = us-east-2\naws_access_key_id = AKIACONF\n"
	                      "aws_secret_access_key = confSecret\n"
	                      "[profile x]\naws_access_key_id = AKIAX\n"
	                      "aws_secret_access_key = xSecret\naws_session_token = xToken\n"
	                      "s3 =\n  max_concurrent_requests = 20\n"
	                      "[y]\naws_access_key_id = AKIABAREY\naws_secret_access_key = s\n"
	                      "[sso-session corp]\nsso_region = us-east-1\n");
	/* The credentials file wins over config for the same profile. */
	get_creds(NULL, &c);
	assert_string_equal(c.source, "profile:default");
	assert_string_equal(c.access_key_id, "AKIACREDFILE");
	assert_string_equal(c.secret_access_key, "credFileSecret");
	irfw_creds_clear(&c);

	o.profile = "x";
	get_creds(&o, &c);
	assert_string_equal(c.source, "profile:x");
	assert_string_equal(c.access_key_id, "AKIAX");
	assert_string_equal(c.session_token, "xToken");
	irfw_creds_clear(&c);

	/* A bare [y] in the config file is not a profile. */
	{
		char err[512];

		o.profile = "y";
		expect_failure(&o, err, sizeof(err));
		assert_non_null(strstr(err, "\"y\" not found"));
	}
}

/* Real session tokens are far longer than inih's 200-character lines. */
static void test_long_session_token(void **state)
{
	char token[901], text[1400], err[512];
	struct irfw_creds c;

	(void)state;
	for (int i = 0; i < 900; i++)
		token[i] = (char)("ABCDEFGH/+=abcdef0123456789"[i % 27]);
	token[900] = '\0';
	snprintf(text, sizeof(text),
	         "[default]\naws_access_key_id = AKIALONG\naws_secret_access_key = s\n"
	         "aws_session_token = %s  \n",
	         token);
	write_file(cred_path, text);
	get_creds(NULL, &c);
	assert_string_equal(c.session_token, token);
	irfw_creds_clear(&c);

	/* A long line that is not key = value is refused with file:line. */
	snprintf(text, sizeof(text), "[default]\naws_access_key_id = AKIALONG\n[%s]\n", token);
	write_file(cred_path, text);
	expect_failure(NULL, err, sizeof(err));
	assert_non_null(strstr(err, "credentials:3: line too long"));
}

static void test_parse_error(void **state)
{
	char err[512];

	(void)state;
	write_file(conf_path, "[default]\nregion = us-east-1\nthis line is wrong\n");
	expect_failure(NULL, err, sizeof(err));
	assert_non_null(strstr(err, "config:3"));
}

/* ------------------------------------------------------------------ */
/* Roles.                                                              */

static void test_assume_role_source_profile(void **state)
{
	struct irfw_creds c;
	struct irfw_cred_options o = opts_with_sts();

	(void)state;
	write_file(cred_path, "[base]\naws_access_key_id = AKIABASE\n"
	                      "aws_secret_access_key = baseSecret\n");
	write_file(conf_path, "[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/IR\n"
	                      "source_profile = base\nexternal_id = ext-42\n"
	                      "duration_seconds = 1800\nrole_session_name = alice\n"
	                      "region = ap-south-1\n");
	o.profile = "ops";
	get_creds(&o, &c);
	assert_int_equal(sts.calls, 1);
	assert_string_equal(sts.last_op, "AssumeRole");
	assert_false(sts.last_source_null);
	assert_string_equal(sts.last_source_akid, "AKIABASE");
	assert_string_equal(sts.last_source_secret, "baseSecret");
	assert_string_equal(sts.last_region, "ap-south-1");
	assert_string_equal(param("RoleArn"), "arn:aws:iam::123456789012:role/IR");
	assert_string_equal(param("RoleSessionName"), "alice");
	assert_string_equal(param("ExternalId"), "ext-42");
	assert_string_equal(param("DurationSeconds"), "1800");
	assert_string_equal(c.access_key_id, "ASIASTS00001");
	assert_string_equal(c.secret_access_key, "stsSecretKeyForTests");
	assert_string_equal(c.session_token, "sts-session-token");
	assert_true(c.expiration > time(NULL) + 3000);
	assert_int_equal(strncmp(c.source, "assume-role:arn:aws:iam::", 25), 0);
	irfw_creds_clear(&c);
}

static void test_assume_role_chain(void **state)
{
	struct irfw_creds c;
	struct irfw_cred_options o = opts_with_sts();
	const char *sess;

	(void)state;
	write_file(cred_path, "[base]\naws_access_key_id = AKIABASE\n"
	                      "aws_secret_access_key = baseSecret\n");
	write_file(conf_path, "[profile hop1]\nrole_arn = arn:aws:iam::111111111111:role/A\n"
	                      "source_profile = base\n"
	                      "[profile hop2]\nrole_arn = arn:aws:iam::222222222222:role/B\n"
	                      "source_profile = hop1\n");
	o.profile = "hop2";
	o.region = "eu-north-1";
	get_creds(&o, &c);
	assert_int_equal(sts.calls, 2);
	/* The second hop is signed with what the first returned. */
	assert_string_equal(sts.last_source_akid, "ASIASTS00001");
	assert_string_equal(sts.last_region, "eu-north-1");
	assert_string_equal(param("RoleArn"), "arn:aws:iam::222222222222:role/B");
	assert_null(param("ExternalId"));
	assert_null(param("DurationSeconds"));
	sess = param("RoleSessionName");
	assert_non_null(sess);
	assert_int_equal(strncmp(sess, "irfw-", 5), 0);
	assert_true(strtoll(sess + 5, NULL, 10) > 1700000000LL);
	assert_string_equal(c.access_key_id, "ASIASTS00002");
	irfw_creds_clear(&c);
}

static void test_source_profile_loop(void **state)
{
	struct irfw_cred_options o = opts_with_sts();
	char err[512];

	(void)state;
	write_file(conf_path, "[profile a]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = b\n"
	                      "[profile b]\nrole_arn = arn:aws:iam::1:role/B\nsource_profile = a\n");
	o.profile = "a";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "source_profile loop: a -> b -> a"));
	assert_int_equal(sts.calls, 0);

	/* The implicit default profile refuses a loop too, rather than skipping. */
	write_file(conf_path, "[default]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = c\n"
	                      "[profile c]\nrole_arn = arn:aws:iam::1:role/C\n"
	                      "source_profile = default\n");
	o.profile = NULL;
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "loop"));
}

static void test_role_misconfigurations(void **state)
{
	struct irfw_cred_options o = opts_with_sts();
	char err[512];

	(void)state;
	write_file(conf_path, "[profile r]\nrole_arn = arn:aws:iam::1:role/R\n"
	                      "[profile d]\nrole_arn = arn:aws:iam::1:role/R\n"
	                      "credential_source = Environment\nduration_seconds = 12\n"
	                      "[profile s]\nrole_arn = arn:aws:iam::1:role/R\n"
	                      "credential_source = Nowhere\n"
	                      "[profile half]\naws_access_key_id = AKIAHALF\n"
	                      "[profile sso]\nsso_session = corp\nsso_account_id = 1\n");
	o.profile = "r";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "no source_profile"));
	o.profile = "d";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "duration_seconds"));
	o.profile = "s";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "Nowhere"));
	o.profile = "half";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "no aws_secret_access_key"));
	o.profile = "sso";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "has no [sso-session corp]"));
	assert_int_equal(sts.calls, 0);

	/* Without an STS client a role profile fails clearly. */
	write_file(cred_path, "[base]\naws_access_key_id = AKIABASE\n"
	                      "aws_secret_access_key = baseSecret\n");
	write_file(conf_path, "[profile r]\nrole_arn = arn:aws:iam::1:role/R\n"
	                      "source_profile = base\n");
	o.sts = NULL;
	o.profile = "r";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "no STS client"));
	assert_null(strstr(err, "baseSecret"));
}

static void test_credential_source_environment(void **state)
{
	struct irfw_creds c;
	struct irfw_cred_options o = opts_with_sts();

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV0000000000001", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecret", 1);
	write_file(conf_path, "[profile e]\nrole_arn = arn:aws:iam::1:role/E\n"
	                      "credential_source = Environment\n");
	o.profile = "e";
	get_creds(&o, &c);
	assert_int_equal(sts.calls, 1);
	assert_string_equal(sts.last_source_akid, "AKIAENV0000000000001");
	assert_string_equal(c.access_key_id, "ASIASTS00001");
	irfw_creds_clear(&c);
}

static void test_web_identity_env(void **state)
{
	struct irfw_creds c;
	struct irfw_cred_options o = opts_with_sts();

	(void)state;
	write_file(tok_path, "eyJhbGciOiJSUzI1NiJ9.payload.sig\n");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok_path, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Pod", 1);
	setenv("AWS_ROLE_SESSION_NAME", "pod-7", 1);
	get_creds(&o, &c);
	assert_int_equal(sts.calls, 1);
	assert_string_equal(sts.last_op, "AssumeRoleWithWebIdentity");
	assert_true(sts.last_source_null);
	assert_string_equal(param("WebIdentityToken"), "eyJhbGciOiJSUzI1NiJ9.payload.sig");
	assert_string_equal(param("RoleArn"), "arn:aws:iam::123456789012:role/Pod");
	assert_string_equal(param("RoleSessionName"), "pod-7");
	assert_string_equal(c.source, "web-identity");
	assert_string_equal(c.access_key_id, "ASIASTS00001");
	irfw_creds_clear(&c);

	/* A missing token file is an error that names the file. */
	unlink(tok_path);
	{
		char err[512];

		expect_failure(&o, err, sizeof(err));
		assert_non_null(strstr(err, tok_path));
	}
}

static void test_web_identity_profile(void **state)
{
	struct irfw_creds c;
	struct irfw_cred_options o = opts_with_sts();
	char text[512];

	(void)state;
	write_file(tok_path, "profile-token");
	snprintf(text, sizeof(text),
	         "[profile wi]\nrole_arn = arn:aws:iam::1:role/W\nweb_identity_token_file = %s\n", tok_path);
	write_file(conf_path, text);
	o.profile = "wi";
	get_creds(&o, &c);
	assert_string_equal(sts.last_op, "AssumeRoleWithWebIdentity");
	assert_true(sts.last_source_null);
	assert_string_equal(param("WebIdentityToken"), "profile-token");
	assert_string_equal(param("RoleArn"), "arn:aws:iam::1:role/W");
	irfw_creds_clear(&c);
}

static void test_nothing_found(void **state)
{
	char err[1024];

	(void)state;
	write_file(conf_path, "[default]\nregion = us-east-1\n");
	expect_failure(NULL, err, sizeof(err));
	assert_non_null(strstr(err, "no AWS credentials found"));
	assert_non_null(strstr(err, "environment (AWS_ACCESS_KEY_ID"));
	assert_non_null(strstr(err, "shared files (profile \"default\" has no credentials"));
	assert_non_null(strstr(err, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE"));
	assert_non_null(strstr(err, "container (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
	assert_non_null(strstr(err, "IMDS (disabled by AWS_EC2_METADATA_DISABLED)"));
}

/* ------------------------------------------------------------------ */
/* Expiry and refresh.                                                 */

static void role_profile(void)
{
	write_file(cred_path, "[base]\naws_access_key_id = AKIABASE\n"
	                      "aws_secret_access_key = baseSecret\n");
	write_file(conf_path, "[profile r]\nrole_arn = arn:aws:iam::1:role/R\n"
	                      "source_profile = base\n");
}

static void test_refresh_near_expiry(void **state)
{
	struct irfw_cred_options o = opts_with_sts();
	struct irfw_cred_provider *p = NULL;
	struct irfw_creds c;
	char err[512];

	(void)state;
	role_profile();
	o.profile = "r";
	sts.expires_in[0] = 60; /* inside the 5-minute window */
	sts.expires_in[1] = 120;
	sts.expires_in[2] = 3600;
	assert_int_equal(irfw_creds_provider_new(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(sts.calls, 1);
	assert_int_equal(irfw_creds_get(p, &c, err, sizeof(err)), 0);
	assert_int_equal(sts.calls, 2);
	assert_string_equal(c.access_key_id, "ASIASTS00002");
	irfw_creds_clear(&c);
	assert_int_equal(irfw_creds_get(p, &c, err, sizeof(err)), 0);
	assert_int_equal(sts.calls, 3);
	irfw_creds_clear(&c);
	/* Now an hour away: no more calls. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(irfw_creds_get(p, &c, err, sizeof(err)), 0);
		assert_string_equal(c.access_key_id, "ASIASTS00003");
		irfw_creds_clear(&c);
	}
	assert_int_equal(sts.calls, 3);
	irfw_creds_provider_free(p);
}

static void test_refresh_failure(void **state)
{
	struct irfw_cred_options o = opts_with_sts();
	struct irfw_cred_provider *p = NULL;
	struct irfw_creds c;
	char err[512] = "";

	(void)state;
	role_profile();
	o.profile = "r";
	sts.expires_in[0] = 60;
	sts.fail_from = 2;
	assert_int_equal(irfw_creds_provider_new(&o, &p, err, sizeof(err)), 0);
	/* Refresh fails, but the old credentials are still good for a minute. */
	assert_int_equal(irfw_creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "ASIASTS00001");
	irfw_creds_clear(&c);
	irfw_creds_provider_free(p);

	/* Already expired and the refresh fails: an error, without secrets. */
	sts_reset();
	sts.expires_in[0] = -10;
	sts.fail_from = 2;
	assert_int_equal(irfw_creds_provider_new(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(irfw_creds_get(p, &c, err, sizeof(err)), -1);
	assert_null(c.access_key_id);
	assert_non_null(strstr(err, "expired"));
	assert_non_null(strstr(err, "AccessDenied"));
	assert_null(strstr(err, "stsSecretKeyForTests"));
	assert_null(strstr(err, "baseSecret"));
	assert_null(strstr(err, "sts-session-token"));
	irfw_creds_provider_free(p);
}

struct getter {
	struct irfw_cred_provider *p;
	int rc;
	char akid[32];
};

static void *getter_main(void *arg)
{
	struct getter *g = arg;
	struct irfw_creds c;
	char err[256];

	g->rc = irfw_creds_get(g->p, &c, err, sizeof(err));
	if (g->rc == 0)
		snprintf(g->akid, sizeof(g->akid), "%s", c.access_key_id);
	irfw_creds_clear(&c);
	return NULL;
}

static void test_refresh_one_thread(void **state)
{
	struct irfw_cred_options o = opts_with_sts();
	struct irfw_cred_provider *p = NULL;
	struct getter g[8];
	pthread_t th[8];
	char err[512];

	(void)state;
	role_profile();
	o.profile = "r";
	sts.expires_in[0] = -1; /* expired: every thread needs the refresh */
	sts.expires_in[1] = 3600;
	assert_int_equal(irfw_creds_provider_new(&o, &p, err, sizeof(err)), 0);
	sts.delay_us = 200000;
	for (int i = 0; i < 8; i++) {
		g[i].p = p;
		g[i].rc = -2;
		assert_int_equal(pthread_create(&th[i], NULL, getter_main, &g[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(sts.calls, 2);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(g[i].rc, 0);
		assert_string_equal(g[i].akid, "ASIASTS00002");
	}
	irfw_creds_provider_free(p);
}

/* ------------------------------------------------------------------ */
/* Region and profile settings.                                        */

static void test_region_order(void **state)
{
	char *r;

	(void)state;
	write_file(conf_path, "[default]\nregion = us-west-1\n"
	                      "[profile p]\nregion = ca-central-1\n"
	                      "endpoint_url = http://127.0.0.1:5000\n");
	r = irfw_resolve_region(NULL, NULL);
	assert_string_equal(r, "us-west-1");
	free(r);
	r = irfw_resolve_region(NULL, "p");
	assert_string_equal(r, "ca-central-1");
	free(r);
	setenv("AWS_PROFILE", "p", 1);
	r = irfw_resolve_region(NULL, NULL);
	assert_string_equal(r, "ca-central-1");
	free(r);
	setenv("AWS_DEFAULT_REGION", "sa-east-1", 1);
	r = irfw_resolve_region(NULL, NULL);
	assert_string_equal(r, "sa-east-1");
	free(r);
	setenv("AWS_REGION", "af-south-1", 1);
	r = irfw_resolve_region(NULL, NULL);
	assert_string_equal(r, "af-south-1");
	free(r);
	r = irfw_resolve_region("me-south-1", NULL);
	assert_string_equal(r, "me-south-1");
	free(r);

	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	assert_null(irfw_resolve_region(NULL, "nosuch"));

	r = irfw_profile_get(NULL, "endpoint_url");
	assert_string_equal(r, "http://127.0.0.1:5000");
	free(r);
	assert_null(irfw_profile_get("default", "endpoint_url"));
}

/* ------------------------------------------------------------------ */
/* Container and IMDS against fake_metadata.py.                        */

struct fake_srv {
	pid_t pid;
	int port;
};

static const char *fake_script(char *buf, size_t len)
{
	const char *s = getenv("IRFW_FAKE_METADATA");
	const char *d = getenv("IRFW_TEST_DATADIR");

	if (s && *s)
		return s;
	snprintf(buf, len, "%s/../integration/fake_metadata.py", d && *d ? d : "tests/data");
	return buf;
}

/* Start the fake on a port it picks; 0, or 1 when python3 is missing. */
static int fake_start(struct fake_srv *s, const char *mode, const char *const *extra)
{
	char script[512], line[64] = "";
	const char *argv[16];
	int fds[2], n = 0, status;
	size_t got = 0;

	fake_script(script, sizeof(script));
	if (access(script, R_OK) != 0)
		fail_msg("cannot find %s (set IRFW_TEST_DATADIR)", script);
	argv[n++] = "python3";
	argv[n++] = script;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--mode";
	argv[n++] = mode;
	argv[n++] = "--lifetime";
	argv[n++] = "60";
	for (size_t i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	assert_int_equal(pipe(fds), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	while (got + 1 < sizeof(line) && !strchr(line, '\n')) {
		struct pollfd pf = {.fd = fds[0], .events = POLLIN};
		ssize_t r;

		if (poll(&pf, 1, 10000) <= 0)
			break;
		r = read(fds[0], line + got, sizeof(line) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		line[got] = '\0';
	}
	close(fds[0]);
	if (sscanf(line, "READY %d", &s->port) == 1)
		return 0;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return 1;
	fail_msg("fake_metadata.py did not start");
	return -1;
}

static void fake_stop(struct fake_srv *s)
{
	int status;

	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
}

static void test_container(void **state)
{
	static const char *const extra[] = {"--token", "Bearer secret-auth", NULL};
	struct fake_srv s;
	struct irfw_creds c;
	char url[128], err[1024];

	(void)state;
	if (fake_start(&s, "container", extra) == 1)
		skip();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/credentials/abc", s.port);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer secret-auth", 1);
	get_creds(NULL, &c);
	assert_string_equal(c.source, "container");
	assert_string_equal(c.access_key_id, "ASIAFAKECONTAINER001");
	assert_string_equal(c.secret_access_key, "fakeContainerSecretKey/ForTestsOnly00001");
	assert_string_equal(c.session_token, "fake-container-session-token");
	assert_true(c.expiration > time(NULL) + 3600);
	irfw_creds_clear(&c);

	/* The token file wins over the variable. */
	write_file(tok_path, "Bearer secret-auth\n");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tok_path, 1);
	get_creds(NULL, &c);
	assert_string_equal(c.access_key_id, "ASIAFAKECONTAINER001");
	irfw_creds_clear(&c);

	/* A wrong token is an error that does not echo it. */
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer not-the-one", 1);
	expect_failure(NULL, err, sizeof(err));
	assert_non_null(strstr(err, "HTTP 401"));
	assert_null(strstr(err, "not-the-one"));
	fake_stop(&s);

	/* Plain http is only for loopback and the ECS/EKS agents; refused
	 * before any connection is made. */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/creds", 1);
	expect_failure(NULL, err, sizeof(err));
	assert_non_null(strstr(err, "only allowed to loopback"));
}

static void test_imds_v2(void **state)
{
	static const char *const extra[] = {"--token", "imds-tok-123", NULL};
	struct fake_srv s;
	struct irfw_creds c;
	struct irfw_cred_options o = {0};
	char url[128];
	char *region;

	(void)state;
	if (fake_start(&s, "imds", extra) == 1)
		skip();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	get_creds(&o, &c);
	assert_string_equal(c.source, "imds");
	assert_string_equal(c.access_key_id, "ASIAFAKEIMDS00000001");
	assert_string_equal(c.secret_access_key, "fakeImdsSecretKey/ForTestsOnly0000000001");
	assert_string_equal(c.session_token, "fake-imds-credentials-session-token");
	assert_true(c.expiration > time(NULL) + 3600);
	irfw_creds_clear(&c);

	region = irfw_imds_region(&o);
	assert_non_null(region);
	assert_string_equal(region, "eu-west-3");
	free(region);
	fake_stop(&s);

	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_null(irfw_imds_region(NULL));
}

static void test_imds_v1_fallback(void **state)
{
	static const char *const extra[] = {"--no-v2", NULL};
	struct fake_srv s;
	struct irfw_creds c;
	struct irfw_cred_options o = {0};
	char url[128], err[1024];

	(void)state;
	if (fake_start(&s, "imds", extra) == 1)
		skip();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "IMDSv2 token request refused (HTTP 403)"));
	assert_non_null(strstr(err, "fallback is off"));
	o.imds_v1_fallback = true;
	get_creds(&o, &c);
	assert_string_equal(c.access_key_id, "ASIAFAKEIMDS00000001");
	irfw_creds_clear(&c);
	fake_stop(&s);
}

/* Nothing listening: the chain ends quickly with IMDS in the list. */
static void test_imds_unreachable(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char url[128], err[1024];
	time_t t0;

	(void)state;
	/* A port that was free a moment ago. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	t0 = time(NULL);
	expect_failure(NULL, err, sizeof(err));
	assert_true(time(NULL) - t0 <= 3);
	assert_non_null(strstr(err, "; IMDS (IMDS token: "));
}

/* ------------------------------------------------------------------ */
/* credential_process.                                                 */

static const char helper_script[] =
    "#!/bin/sh\n"
    "n=$(cat \"$IRFW_T_COUNT\" 2>/dev/null || echo 0); echo $((n + 1)) > \"$IRFW_T_COUNT\"\n"
    "printf '%s\\n' \"$@\" > \"$IRFW_T_ARGS\"\n"
    "case \"$1\" in\n"
    "ok) printf '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC\", \"SecretAccessKey\": "
    "\"procSecret/0123456789\", \"SessionToken\": \"procToken-0123456789\", \"Expiration\": \"%s\"}' "
    "\"$2\";;\n"
    "static) printf "
    "'{\"Version\":1,\"AccessKeyId\":\"AKIAPROCSTATIC\",\"SecretAccessKey\":\"procStaticSecret\"}';;\n"
    "fail) echo starting >&2; echo 'token expired for alice' >&2; exit 3;;\n"
    "badjson) printf 'not json procSecretLeak0123';;\n"
    "nosecret) printf '{\"Version\":1,\"AccessKeyId\":\"ASIAPROC\"}';;\n"
    "v2) printf '{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"procSecretV2xx\"}';;\n"
    "esac\n";

static void write_helper(void)
{
	write_file(script_path, helper_script);
	assert_int_equal(chmod(script_path, 0700), 0);
	setenv("IRFW_T_COUNT", count_path, 1);
	setenv("IRFW_T_ARGS", args_path, 1);
}

static int helper_runs(void)
{
	FILE *f = fopen(count_path, "r");
	int n = 0;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

static void process_profile(const char *args)
{
	char text[1024];

	snprintf(text, sizeof(text), "[profile p]\ncredential_process = \"%s\" %s\n", script_path, args);
	write_file(conf_path, text);
}

static void test_credential_process(void **state)
{
	struct irfw_cred_options o = {.profile = "p"};
	struct irfw_cred_provider *p = NULL;
	struct irfw_creds c;
	char err[1024], exp[32], args[256] = "", want[128];
	time_t t = time(NULL) + 7200;
	FILE *f;
	size_t n;

	(void)state;
	write_helper();
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	snprintf(args, sizeof(args), "ok %s \"two words\" 'single q'", exp);
	process_profile(args);
	get_creds(&o, &c);
	assert_string_equal(c.source, "process:p");
	assert_string_equal(c.access_key_id, "ASIAPROC");
	assert_string_equal(c.secret_access_key, "procSecret/0123456789");
	assert_string_equal(c.session_token, "procToken-0123456789");
	assert_true(c.expiration == t);
	irfw_creds_clear(&c);
	/* Split like shlex, without a shell: quoted words stay whole. */
	f = fopen(args_path, "r");
	assert_non_null(f);
	n = fread(args, 1, sizeof(args) - 1, f);
	args[n] = '\0';
	fclose(f);
	snprintf(want, sizeof(want), "ok\n%s\ntwo words\nsingle q\n", exp);
	assert_string_equal(args, want);

	/* No Expiration: long-term keys. */
	process_profile("static");
	get_creds(&o, &c);
	assert_string_equal(c.access_key_id, "AKIAPROCSTATIC");
	assert_null(c.session_token);
	assert_int_equal(c.expiration, 0);
	irfw_creds_clear(&c);

	/* Refreshed before Expiration, like other temporary credentials. */
	unlink(count_path);
	t = time(NULL) + 60;
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	snprintf(args, sizeof(args), "ok %s", exp);
	process_profile(args);
	assert_int_equal(irfw_creds_provider_new(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(helper_runs(), 1);
	assert_int_equal(irfw_creds_get(p, &c, err, sizeof(err)), 0);
	irfw_creds_clear(&c);
	assert_int_equal(helper_runs(), 2);
	irfw_creds_provider_free(p);

	/* Failures: clear, with the program's own reason, never its output. */
	process_profile("fail");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(
	    strstr(err, "profile \"p\": credential_process exited with status 3: token expired for alice"));
	process_profile("badjson");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "did not print a JSON object"));
	assert_null(strstr(err, "procSecretLeak"));
	process_profile("nosecret");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "output has no SecretAccessKey"));
	process_profile("v2");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "only Version 1"));
	assert_null(strstr(err, "procSecretV2"));
	write_file(conf_path, "[profile p]\ncredential_process = /nonexistent/irfw-helper --x\n");
	expect_failure(&o, err, sizeof(err));
	if (!strstr(err, "cannot run /nonexistent/irfw-helper"))
		fail_msg("%s", err);
	/* What a shell would expand is refused, not run differently. */
	write_file(conf_path, "[profile p]\ncredential_process = $HOME/bin/helper\n");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "contains '$'"));
	write_file(conf_path, "[profile p]\ncredential_process = /bin/helper; rm -rf x\n");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "without a shell"));
	write_file(conf_path, "[profile p]\ncredential_process = \"/bin/helper\n");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "unbalanced quotes"));
}

/* botocore's order inside a profile: the credentials file's keys, then
 * credential_process, then the config file's keys; and a process profile
 * can be a role's source_profile. */
static void test_credential_process_order(void **state)
{
	struct irfw_cred_options o = opts_with_sts();
	struct irfw_creds c;
	char text[1024];

	(void)state;
	write_helper();
	write_file(cred_path,
	           "[p]\naws_access_key_id = AKIACREDFILE\naws_secret_access_key = credFileSecret\n");
	snprintf(text, sizeof(text),
	         "[profile p]\ncredential_process = \"%s\" static\n"
	         "[profile q]\ncredential_process = \"%s\" static\naws_access_key_id = AKIACONF\n"
	         "aws_secret_access_key = confSecret\n"
	         "[profile r]\nrole_arn = arn:aws:iam::1:role/R\nsource_profile = q\n",
	         script_path, script_path);
	write_file(conf_path, text);
	o.profile = "p";
	get_creds(&o, &c);
	assert_string_equal(c.access_key_id, "AKIACREDFILE");
	irfw_creds_clear(&c);
	o.profile = "q";
	get_creds(&o, &c);
	assert_string_equal(c.access_key_id, "AKIAPROCSTATIC");
	irfw_creds_clear(&c);
	o.profile = "r";
	get_creds(&o, &c);
	assert_string_equal(sts.last_source_akid, "AKIAPROCSTATIC");
	assert_string_equal(c.access_key_id, "ASIASTS00001");
	irfw_creds_clear(&c);
}

/* ------------------------------------------------------------------ */
/* A tiny HTTP server on 127.0.0.1 for the SSO portal.                 */

struct fake_http {
	int fd, port;
	pthread_t th;
	volatile int stop;
	int status;
	char body[1024];
	char headers[256];
	int requests;
	char last[4096];
};

static void *http_main(void *arg)
{
	struct fake_http *h = arg;

	while (!h->stop) {
		struct pollfd pf = {.fd = h->fd, .events = POLLIN};
		char req[4096], resp[2048];
		size_t got = 0;
		int c;

		if (poll(&pf, 1, 50) <= 0)
			continue;
		c = accept(h->fd, NULL, NULL);
		if (c < 0)
			continue;
		while (got + 1 < sizeof(req)) {
			ssize_t r = read(c, req + got, sizeof(req) - 1 - got);

			if (r <= 0)
				break;
			got += (size_t)r;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = '\0';
		memcpy(h->last, req, got + 1);
		h->requests++;
		snprintf(resp, sizeof(resp),
		         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n"
		         "Connection: close\r\n\r\n%s",
		         h->status, h->headers, strlen(h->body), h->body);
		if (write(c, resp, strlen(resp)) < 0) {
			/* the client went away */
		}
		close(c);
	}
	return NULL;
}

static void http_start(struct fake_http *h)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);

	memset(h, 0, sizeof(*h));
	h->status = 200;
	h->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(h->fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(h->fd, 8), 0);
	assert_int_equal(getsockname(h->fd, (struct sockaddr *)&sa, &sl), 0);
	h->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&h->th, NULL, http_main, h), 0);
}

static void http_stop(struct fake_http *h)
{
	h->stop = 1;
	pthread_join(h->th, NULL);
	close(h->fd);
}

/* ------------------------------------------------------------------ */
/* SSO.                                                                */

static void sso_token(const char *sha1, const char *token, const char *expires)
{
	char text[512], d[320];

	snprintf(d, sizeof(d), "%s/.aws", tmpdir);
	mkdir(d, 0700);
	snprintf(d, sizeof(d), "%s/.aws/sso", tmpdir);
	mkdir(d, 0700);
	mkdir(sso_dir, 0700);
	snprintf(sso_file, sizeof(sso_file), "%s/%s.json", sso_dir, sha1);
	snprintf(text, sizeof(text),
	         "{\"startUrl\": \"https://example.awsapps.com/start\", \"region\": \"eu-west-1\", "
	         "\"accessToken\": \"%s\", \"expiresAt\": \"%s\"}",
	         token, expires);
	write_file(sso_file, text);
}

/* botocore's names: sha1("corp"), sha1("https://example.awsapps.com/start"). */
#define SHA1_CORP      "ee0bfd2552fbd840c02cc48b6e823320543c450f"
#define SHA1_START_URL "e8be5486177c5b5392bd9aa76563515b29358e6e"

static void test_sso(void **state)
{
	struct irfw_cred_options o = opts_with_sts();
	struct fake_http h;
	struct irfw_creds c;
	char url[64], err[1024], text[2048];
	time_t t0 = time(NULL);

	(void)state;
	http_start(&h);
	snprintf(
	    h.body, sizeof(h.body),
	    "{\"roleCredentials\": {\"accessKeyId\": \"ASIASSO\", \"secretAccessKey\": \"ssoSecret/0123\", "
	    "\"sessionToken\": \"ssoSessionToken0123\", \"expiration\": %lld000}}",
	    (long long)t0 + 3600);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", h.port);
	setenv("AWS_ENDPOINT_URL_SSO", url, 1);
	write_file(conf_path,
	           "[profile p]\nsso_session = corp\nsso_account_id = 111122223333\n"
	           "sso_role_name = Responder\nregion = us-east-1\n"
	           "[sso-session corp]\nsso_start_url = https://example.awsapps.com/start\n"
	           "sso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n"
	           "[profile legacy]\nsso_start_url = https://example.awsapps.com/start\n"
	           "sso_region = eu-west-1\nsso_account_id = 444455556666\nsso_role_name = Legacy\n"
	           "[profile half]\nsso_account_id = 1\nsso_role_name = R\n"
	           "[profile odd]\nsso_session = corp\nsso_region = us-west-2\n"
	           "sso_account_id = 1\nsso_role_name = R\n"
	           "[profile r]\nrole_arn = arn:aws:iam::1:role/R\nsource_profile = p\n");
	sso_token(SHA1_CORP, "ssoAccessToken-secret-1", "2099-01-01T00:00:00Z");
	o.profile = "p";
	get_creds(&o, &c);
	assert_string_equal(c.source, "sso:p");
	assert_string_equal(c.access_key_id, "ASIASSO");
	assert_string_equal(c.secret_access_key, "ssoSecret/0123");
	assert_string_equal(c.session_token, "ssoSessionToken0123");
	assert_true(c.expiration == t0 + 3600);
	irfw_creds_clear(&c);
	assert_int_equal(h.requests, 1);
	assert_non_null(
	    strstr(h.last, "GET /federation/credentials?role_name=Responder&account_id=111122223333 "));
	assert_non_null(strstr(h.last, "\r\nx-amz-sso_bearer_token: ssoAccessToken-secret-1\r\n"));
	assert_null(strstr(h.last, "Authorization:")); /* unsigned */

	/* An SSO profile as a role's source. */
	o.profile = "r";
	get_creds(&o, &c);
	assert_string_equal(sts.last_source_akid, "ASIASSO");
	irfw_creds_clear(&c);

	/* Legacy: the token is named after the start URL; the CLI v2's old
	 * "UTC" suffix is read too. */
	sso_token(SHA1_START_URL, "legacyAccessToken-2", "2099-01-01T00:00:00UTC");
	o.profile = "legacy";
	get_creds(&o, &c);
	irfw_creds_clear(&c);
	assert_non_null(strstr(h.last, "role_name=Legacy&account_id=444455556666"));
	assert_non_null(strstr(h.last, "x-amz-sso_bearer_token: legacyAccessToken-2\r\n"));

	/* Expired or missing: log in again; no call is made. */
	sso_token(SHA1_CORP, "ssoAccessToken-secret-1", "2001-01-01T00:00:00Z");
	o.profile = "p";
	h.requests = 0;
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "expired"));
	assert_non_null(strstr(err, "run `aws sso login --profile p`"));
	assert_null(strstr(err, "ssoAccessToken"));
	unlink(sso_file);
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "no SSO token cached for sso-session corp"));
	assert_non_null(strstr(err, "run `aws sso login --profile p`"));
	assert_int_equal(h.requests, 0);

	/* The portal refuses the token. */
	sso_token(SHA1_CORP, "ssoAccessToken-secret-1", "2099-01-01T00:00:00Z");
	h.status = 401;
	snprintf(h.headers, sizeof(h.headers),
	         "x-amzn-ErrorType: UnauthorizedException:http://x/\r\n"
	         "x-amzn-RequestId: rid-401\r\n");
	snprintf(h.body, sizeof(h.body), "{\"message\":\"Session token not found or invalid\"}");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "refused the cached token (HTTP 401, request rid-401)"));
	assert_non_null(strstr(err, "aws sso login --profile p"));
	h.status = 403;
	snprintf(h.headers, sizeof(h.headers), "x-amzn-ErrorType: ForbiddenException\r\n");
	snprintf(h.body, sizeof(h.body), "{\"message\":\"No access\"}");
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(
	    err, "sso:GetRoleCredentials 111122223333/Responder: HTTP 403 ForbiddenException: No access"));

	/* Misconfigurations. */
	o.profile = "half";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "lacks sso_start_url sso_region"));
	o.profile = "odd";
	expect_failure(&o, err, sizeof(err));
	assert_non_null(strstr(err, "sso_region differs"));

	/* The portal's endpoint from a [services] section too. */
	unsetenv("AWS_ENDPOINT_URL_SSO");
	h.status = 200;
	h.headers[0] = '\0';
	snprintf(h.body, sizeof(h.body),
	         "{\"roleCredentials\": {\"accessKeyId\": \"ASIASSO2\", \"secretAccessKey\": \"s2\", "
	         "\"sessionToken\": \"t2\", \"expiration\": %lld000}}",
	         (long long)t0 + 3600);
	snprintf(
	    text, sizeof(text),
	    "[profile p]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = R\nservices = local\n"
	    "[sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = eu-west-1\n"
	    "[services local]\nsso =\n  endpoint_url = %s\n",
	    url);
	write_file(conf_path, text);
	o.profile = "p";
	get_creds(&o, &c);
	assert_string_equal(c.access_key_id, "ASIASSO2");
	irfw_creds_clear(&c);
	http_stop(&h);
}

/* ------------------------------------------------------------------ */
/* MFA.                                                                */

static void mfa_profile(void)
{
	write_file(cred_path, "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = baseSecret\n");
	write_file(conf_path, "[profile m]\nrole_arn = arn:aws:iam::1:role/R\nsource_profile = base\n"
	                      "mfa_serial = arn:aws:iam::123456789012:mfa/alice\n");
}

static int wait_child(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void test_mfa_needs_a_terminal(void **state)
{
	pid_t pid;

	(void)state;
	mfa_profile();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct irfw_cred_options o = opts_with_sts();
		struct irfw_cred_provider *p = NULL;
		char err[1024];

		setsid(); /* no controlling terminal */
		o.profile = "m";
		if (irfw_creds_provider_new(&o, &p, err, sizeof(err)) != -1)
			_exit(1);
		if (!strstr(err,
		            "profile \"m\": mfa_serial needs a terminal for the code; run from a terminal "
		            "or use credentials without MFA"))
			_exit(2);
		_exit(sts.calls == 0 ? 0 : 3);
	}
	assert_int_equal(wait_child(pid), 0);
}

/* Run the provider in a child whose terminal is a pty; type `typed`. */
static int mfa_on_pty(const char *typed, char *screen, size_t len)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	size_t got = 0;
	pid_t pid;
	int rc;

	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct irfw_cred_options o = opts_with_sts();
		struct irfw_cred_provider *p = NULL;
		char err[1024];
		int s;

		setsid();
		s = open(ptsname(m), O_RDWR); /* becomes the controlling terminal */
		if (s < 0)
			_exit(10);
		close(m);
		o.profile = "m";
		if (irfw_creds_provider_new(&o, &p, err, sizeof(err)) != 0) {
			if (strstr(err, "must be 6 digits"))
				_exit(20);
			_exit(11);
		}
		if (!param("SerialNumber") ||
		    strcmp(param("SerialNumber"), "arn:aws:iam::123456789012:mfa/alice"))
			_exit(12);
		if (!param("TokenCode") || strcmp(param("TokenCode"), "123456"))
			_exit(13);
		irfw_creds_provider_free(p);
		_exit(0);
	}
	screen[0] = '\0';
	/* Wait for the prompt, type, then keep what the terminal shows. */
	for (int i = 0; i < 100 && !strstr(screen, "mfa/alice: "); i++) {
		struct pollfd pf = {.fd = m, .events = POLLIN};
		ssize_t r;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		r = read(m, screen + got, len - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		screen[got] = '\0';
	}
	assert_int_equal(write(m, typed, strlen(typed)), (ssize_t)strlen(typed));
	rc = wait_child(pid);
	for (;;) {
		struct pollfd pf = {.fd = m, .events = POLLIN};
		ssize_t r;

		if (got + 1 >= len || poll(&pf, 1, 100) <= 0)
			break;
		r = read(m, screen + got, len - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		screen[got] = '\0';
	}
	close(m);
	return rc;
}

static void test_mfa_prompt(void **state)
{
	char screen[1024];

	(void)state;
	mfa_profile();
	assert_int_equal(mfa_on_pty("123456\n", screen, sizeof(screen)), 0);
	assert_non_null(strstr(screen, "Enter MFA code for arn:aws:iam::123456789012:mfa/alice: "));
	assert_null(strstr(screen, "123456\r")); /* not echoed */
	assert_null(strstr(screen, "123456\n"));
	assert_int_equal(mfa_on_pty("12ab\n", screen, sizeof(screen)), 20);
}

/* ------------------------------------------------------------------ */
/* Endpoints and client settings.                                      */

static void expect_endpoint(const struct irfw_endpoints *e, const char *id, const char *site,
                            const char *want)
{
	char *v = irfw_endpoints_get(e, id, site);

	if (!want) {
		if (v)
			fail_msg("%s: expected none, got %s", id, v);
		return;
	}
	if (!v || strcmp(v, want) != 0)
		fail_msg("%s: expected %s, got %s", id, want, v ? v : "(none)");
	free(v);
}

static void test_configured_endpoints(void **state)
{
	struct irfw_endpoints *e;
	char err[512], longurl[260], text[1024];

	(void)state;
	memset(longurl, 'a', sizeof(longurl));
	memcpy(longurl, "http://", 7);
	memcpy(longurl + 230, ".example:1234", 14);
	snprintf(
	    text, sizeof(text),
	    "[default]\nendpoint_url = http://global.example\nservices = local\n"
	    "[services local]\nsts =\n  endpoint_url = http://sts.example\n  other = x\n"
	    "ec2 =\n  endpoint_url = http://ec2.example\n"
	    "auto_scaling =\n  endpoint_url = %s\n"
	    "[profile broken]\nservices = nosuch\n"
	    "[profile quiet]\nendpoint_url = http://quiet.example\nignore_configured_endpoint_urls = true\n",
	    longurl);
	write_file(conf_path, text);
	e = irfw_endpoints_load(NULL, err, sizeof(err));
	assert_non_null(e);
	expect_endpoint(e, "STS", NULL, "http://sts.example");
	expect_endpoint(e, "EC2", NULL, "http://ec2.example");
	expect_endpoint(e, "AUTO_SCALING", NULL, longurl);
	expect_endpoint(e, "SSO", NULL, "http://global.example");
	/* The site file's endpoint_url comes before the shared config's... */
	expect_endpoint(e, "STS", "http://site.example", "http://site.example");
	/* ...and after the environment's. */
	setenv("AWS_ENDPOINT_URL", "http://env.example", 1);
	setenv("AWS_ENDPOINT_URL_STS", "http://env-sts.example", 1);
	expect_endpoint(e, "STS", "http://site.example", "http://env-sts.example");
	expect_endpoint(e, "EC2", "http://site.example", "http://env.example");
	irfw_endpoints_free(e);

	/* Ignored: the environment's and the shared config's, not the site's. */
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE", 1);
	e = irfw_endpoints_load(NULL, err, sizeof(err));
	assert_non_null(e);
	assert_true(irfw_endpoints_ignored(e));
	expect_endpoint(e, "STS", NULL, NULL);
	expect_endpoint(e, "EC2", NULL, NULL);
	expect_endpoint(e, "STS", "http://site.example", "http://site.example");
	irfw_endpoints_free(e);
	/* Only "true" is true, as botocore's ensure_boolean. */
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "yes", 1);
	e = irfw_endpoints_load(NULL, err, sizeof(err));
	assert_false(irfw_endpoints_ignored(e));
	irfw_endpoints_free(e);
	/* The profile's setting, which the variable overrides. */
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_STS");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	e = irfw_endpoints_load("quiet", err, sizeof(err));
	assert_true(irfw_endpoints_ignored(e));
	expect_endpoint(e, "STS", NULL, NULL);
	irfw_endpoints_free(e);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false", 1);
	e = irfw_endpoints_load("quiet", err, sizeof(err));
	expect_endpoint(e, "STS", NULL, "http://quiet.example");
	irfw_endpoints_free(e);

	/* A services name without its section is an error. */
	assert_null(irfw_endpoints_load("broken", err, sizeof(err)));
	assert_non_null(strstr(err, "services = nosuch"));
	assert_non_null(strstr(err, "no [services nosuch] section"));
}

static void test_client_settings(void **state)
{
	struct irfw_aws_settings s;
	char err[512];

	(void)state;
	assert_int_equal(irfw_aws_settings_resolve(NULL, NULL, 0, &s, err, sizeof(err)), 0);
	assert_null(s.ca_bundle);
	assert_int_equal(s.max_attempts, 5);
	assert_string_equal(s.retry_mode, "standard");
	irfw_aws_settings_free(&s);

	write_file(conf_path, "[default]\nca_bundle = /etc/p.pem\nmax_attempts = 2\nretry_mode = legacy\n"
	                      "[profile bad]\nmax_attempts = 0\n[profile badmode]\nretry_mode = fast\n");
	assert_int_equal(irfw_aws_settings_resolve(NULL, NULL, 0, &s, err, sizeof(err)), 0);
	assert_string_equal(s.ca_bundle, "/etc/p.pem");
	assert_int_equal(s.max_attempts, 2);
	assert_string_equal(s.retry_mode, "legacy");
	irfw_aws_settings_free(&s);

	/* The environment beats the profile... */
	setenv("AWS_CA_BUNDLE", "/etc/e.pem", 1);
	setenv("AWS_MAX_ATTEMPTS", "3", 1);
	setenv("AWS_RETRY_MODE", "adaptive", 1);
	assert_int_equal(irfw_aws_settings_resolve(NULL, NULL, 0, &s, err, sizeof(err)), 0);
	assert_string_equal(s.ca_bundle, "/etc/e.pem");
	assert_int_equal(s.max_attempts, 3);
	assert_string_equal(s.retry_mode, "adaptive");
	assert_string_equal(s.ca_from, "AWS_CA_BUNDLE");
	irfw_aws_settings_free(&s);
	/* ...and the site file's explicit values beat both. */
	assert_int_equal(irfw_aws_settings_resolve(NULL, "/etc/s.pem", 7, &s, err, sizeof(err)), 0);
	assert_string_equal(s.ca_bundle, "/etc/s.pem");
	assert_int_equal(s.max_attempts, 7);
	assert_string_equal(s.attempts_from, "[irfw] max_attempts");
	irfw_aws_settings_free(&s);

	/* Bad values are errors that name the setting. */
	setenv("AWS_MAX_ATTEMPTS", "zero", 1);
	assert_int_equal(irfw_aws_settings_resolve(NULL, NULL, 0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "AWS_MAX_ATTEMPTS = \"zero\""));
	setenv("AWS_MAX_ATTEMPTS", "3", 1);
	setenv("AWS_RETRY_MODE", "Fast", 1);
	assert_int_equal(irfw_aws_settings_resolve(NULL, NULL, 0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected legacy, standard or adaptive"));
	unsetenv("AWS_MAX_ATTEMPTS");
	unsetenv("AWS_RETRY_MODE");
	assert_int_equal(irfw_aws_settings_resolve("bad", NULL, 0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "max_attempts of profile \"bad\""));
	assert_int_equal(irfw_aws_settings_resolve("badmode", NULL, 0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "retry_mode of profile \"badmode\" = \"fast\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_env_creds, setup),
	    cmocka_unit_test_setup(test_env_partial_is_error, setup),
	    cmocka_unit_test_setup(test_explicit_profile_over_env, setup),
	    cmocka_unit_test_setup(test_chain_order_like_botocore, setup),
	    cmocka_unit_test_setup(test_shared_files, setup),
	    cmocka_unit_test_setup(test_long_session_token, setup),
	    cmocka_unit_test_setup(test_parse_error, setup),
	    cmocka_unit_test_setup(test_assume_role_source_profile, setup),
	    cmocka_unit_test_setup(test_assume_role_chain, setup),
	    cmocka_unit_test_setup(test_source_profile_loop, setup),
	    cmocka_unit_test_setup(test_role_misconfigurations, setup),
	    cmocka_unit_test_setup(test_credential_source_environment, setup),
	    cmocka_unit_test_setup(test_web_identity_env, setup),
	    cmocka_unit_test_setup(test_web_identity_profile, setup),
	    cmocka_unit_test_setup(test_nothing_found, setup),
	    cmocka_unit_test_setup(test_refresh_near_expiry, setup),
	    cmocka_unit_test_setup(test_refresh_failure, setup),
	    cmocka_unit_test_setup(test_refresh_one_thread, setup),
	    cmocka_unit_test_setup(test_region_order, setup),
	    cmocka_unit_test_setup(test_container, setup),
	    cmocka_unit_test_setup(test_imds_v2, setup),
	    cmocka_unit_test_setup(test_imds_v1_fallback, setup),
	    cmocka_unit_test_setup(test_imds_unreachable, setup),
	    cmocka_unit_test_setup(test_credential_process, setup),
	    cmocka_unit_test_setup(test_credential_process_order, setup),
	    cmocka_unit_test_setup(test_sso, setup),
	    cmocka_unit_test_setup(test_mfa_needs_a_terminal, setup),
	    cmocka_unit_test_setup(test_mfa_prompt, setup),
	    cmocka_unit_test_setup(test_configured_endpoints, setup),
	    cmocka_unit_test_setup(test_client_settings, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
