/*
 * fuzz_shared_config.c - libFuzzer target: the AWS shared files
 * (~/.aws/config and ~/.aws/credentials) through core/aws/shared_config.c:
 * creds_shared_load() (its long-line reader in front of inih, profile
 * sections, the credentials file winning), then the public readers
 * irfw_profile_get() and irfw_resolve_region() on the same files.
 *
 * Input: the config file, a NUL byte, the credentials file (no NUL: an
 * empty credentials file).  AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE
 * name two files in memory; no network, no real ~/.aws.
 */
#include "fuzz_common.h"

#include "creds_private.h"

static struct fuzz_file config, credentials;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const unset[] = {"AWS_PROFILE",
	                                    "AWS_REGION",
	                                    "AWS_DEFAULT_REGION",
	                                    "AWS_ACCESS_KEY_ID",
	                                    "AWS_SECRET_ACCESS_KEY",
	                                    "AWS_SESSION_TOKEN",
	                                    NULL};

	(void)argc;
	(void)argv;
	fuzz_file_open(&config, "config");
	fuzz_file_open(&credentials, "credentials");
	for (size_t i = 0; unset[i]; i++)
		unsetenv(unset[i]);
	setenv("AWS_CONFIG_FILE", config.path, 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", credentials.path, 1);
	return 0;
}

static void check_file(const struct shared *sh, const struct cfgfile *f, bool wins)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct kv *e = &f->v[i];
		const char *got = creds_shared_get(sh, e->profile, e->key);

		FUZZ_ASSERT(e->profile && e->key && e->value);
		/* A profile's keys make it a profile; [sso-session X] and
		 * [services X] sections are no profiles. */
		if (e->sect == SECT_PROFILE)
			FUZZ_ASSERT(creds_shared_has_profile(sh, e->profile));
		/* Keys are stored lowercased and found case-insensitively. */
		for (const char *p = e->key; *p; p++)
			FUZZ_ASSERT(!(*p >= 'A' && *p <= 'Z'));
		if (wins && e->value[0])
			FUZZ_ASSERT(got == e->value);
		if (got)
			FUZZ_ASSERT(got[0] != '\0');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t clen = nul ? (size_t)(nul - data) : size;
	char err[512] = "";
	struct shared *sh;
	char *s;

	fuzz_file_write(&config, data, clen);
	fuzz_file_write(&credentials, nul ? nul + 1 : data, nul ? size - clen - 1 : 0);

	sh = creds_shared_load(err, sizeof(err));
	if (!sh) {
		FUZZ_ASSERT(err[0] != '\0');
	} else {
		check_file(sh, &sh->creds, true);
		check_file(sh, &sh->config, false);
		(void)creds_shared_has_profile(sh, "default");
		creds_shared_free(sh);
	}

	free(irfw_profile_get(NULL, "region"));
	free(irfw_profile_get("dev", "role_arn"));
	free(irfw_profile_get(NULL, NULL));
	s = irfw_resolve_region(NULL, NULL);
	if (s)
		FUZZ_ASSERT(s[0] != '\0');
	free(s);
	return 0;
}
