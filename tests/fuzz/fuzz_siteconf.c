/*
 * fuzz_siteconf.c - libFuzzer target: a site file (irfw.ini) through
 * irfw_config_load() (core/siteconf.c, inih behind its own line reader),
 * every section validated against the core's options tables (types,
 * enums, templates), and every value through the template checker,
 * irfw_template_expand(), the list splitter and the ratelimit.<class>
 * spec parser.  Input: the file's bytes, as is.
 */
#include "fuzz_common.h"

#include <math.h>

#include "siteconf.h"
#include "base/text.h"
#include "aws/ratelimit.h"

static struct fuzz_file ini;

/* A case id is expanded before instances are known. */
static const char *const case_vars[] = {"date", "time", "account_id", "region", NULL};

/* The other readers of values: lists (pipeline, plugin_path, ...) and
 * ratelimit.<class> = CAPACITY/RATE. */
static void values(const char *value)
{
	char **v = NULL;
	size_t n = irfw_split_list(value, &v);
	double cap = -1, rate = -1;

	FUZZ_ASSERT(v != NULL);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT(v[i] && v[i][0] && !strpbrk(v[i], ", \t\n"));
	FUZZ_ASSERT(v[n] == NULL);
	irfw_strv_free(v);
	if (irfw_ratelimit_parse_spec(value, &cap, &rate) == 0)
		FUZZ_ASSERT(isfinite(cap) && isfinite(rate) && cap >= 0 && rate >= 0);
	else
		FUZZ_ASSERT(cap == -1 && rate == -1);
}

static void templates(const char *value)
{
	const struct irfw_vars all = {.account_id = "123456789012",
	                              .region = "eu-west-1",
	                              .instance_id = "i-0123456789abcdef0",
	                              .vpc_id = "vpc-0123abcd",
	                              .case_id = "IR-2026-01-01-000000",
	                              .name_tag = "web ${region} $$",
	                              .containment = "contained",
	                              .outcome = "CONTAINED",
	                              .now = 1767225600};
	const struct irfw_vars some = {.account_id = "123456789012", .region = "eu-west-1", .now = 1};
	const char *why = irfw_template_check(value), *err = (const char *)1;
	char *s;

	(void)irfw_template_check_vars(value, case_vars);
	s = irfw_template_expand(value, &all, &err);
	/* What the checker lets through expands when every variable is set. */
	if (!why)
		FUZZ_ASSERT(s != NULL);
	FUZZ_ASSERT((s == NULL) == (err != NULL));
	free(s);
	s = irfw_template_expand(value, &some, &err);
	FUZZ_ASSERT((s == NULL) == (err != NULL));
	free(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_file_open(&ini, "irfw.ini");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct irfw_config cfg;
	int rc;

	fuzz_file_write(&ini, data, size);
	rc = irfw_config_load(ini.path, &cfg);
	FUZZ_ASSERT((rc == 0) == (cfg.n_errors == 0));
	for (size_t i = 0; i < cfg.n_sections; i++) {
		const struct irfw_section *s = &cfg.sections[i];
		bool global = strcmp(s->name, "irfw") == 0;

		FUZZ_ASSERT(irfw_config_section(&cfg, s->name) == s);
		irfw_config_validate(&cfg, s, global ? irfw_global_options() : irfw_step_options, NULL);
		for (size_t k = 0; k < s->n_kv; k++) {
			FUZZ_ASSERT(s->kv[k].key && s->kv[k].value);
			FUZZ_ASSERT(irfw_section_find(s, s->kv[k].key) == &s->kv[k]);
			templates(s->kv[k].value);
			values(s->kv[k].value);
		}
	}
	for (size_t i = 0; i < cfg.n_errors; i++)
		FUZZ_ASSERT(cfg.errors[i] != NULL);
	irfw_config_free(&cfg);
	return 0;
}
