/*
 * siteconf.h - the site file (siteconf.c): parsed with inih into sections
 * with file:line for every key, validated against options tables, and the
 * ${variable} templates of its values.
 */
#ifndef IRFW_SITECONF_H
#define IRFW_SITECONF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "irfw/irfw.h"

struct irfw_kv_line {
	char *key;
	char *value;
	int line;
};

struct irfw_section {
	char *name;
	int line; /* first [name] header */
	struct irfw_kv_line *kv;
	size_t n_kv;
};

struct irfw_config {
	char *path;
	struct irfw_section *sections;
	size_t n_sections;
	/* Errors found so far, each "file:line: message". */
	char **errors;
	size_t n_errors;
};

/* Parse `path` with inih.  Syntax problems (missing file, over-long line,
 * duplicate key, bad syntax) land in cfg->errors; returns 0 when none. */
int irfw_config_load(const char *path, struct irfw_config *cfg);
void irfw_config_free(struct irfw_config *cfg);
void irfw_config_error(struct irfw_config *cfg, int line, const char *fmt, ...) IRFW_PRINTF(3, 4);
struct irfw_section *irfw_config_section(const struct irfw_config *cfg, const char *name);
const struct irfw_kv_line *irfw_section_find(const struct irfw_section *s, const char *key);
/* Validate a section's keys against an options table (plus `extra`,
 * keys the core itself reads).  Errors go to cfg. */
void irfw_config_validate(struct irfw_config *cfg, const struct irfw_section *s,
                          const struct irfw_option *opts, const struct irfw_option *extra);
/* Check a value against one option's type; NULL when fine, else a message. */
const char *irfw_option_check(const struct irfw_option *o, const char *value);
/* Check that a template only names known ${variables}. */
const char *irfw_template_check(const char *value);
/* Same, with only the NULL-terminated `vars` allowed (a template expanded
 * before instances are known, such as case_id). */
const char *irfw_template_check_vars(const char *value, const char *const *vars);
/* Look up `name` in an options table. */
const struct irfw_option *irfw_option_find(const struct irfw_option *opts, const char *name);

/* Global [irfw] keys, documented like a plugin's options. */
const struct irfw_option *irfw_global_options(void);
/* Keys every step section accepts besides its plugin's. */
extern const struct irfw_option irfw_step_options[];

/* Variables of a template expansion. */
struct irfw_vars {
	const char *account_id, *region, *instance_id, *vpc_id, *case_id, *name_tag;
	const char *containment, *outcome;
	time_t now;
};
/* Expand ${var}; "$$" is a literal "$".  NULL and *err set on an unknown
 * variable or a variable with no value here. */
char *irfw_template_expand(const char *tmpl, const struct irfw_vars *v, const char **err);

#endif /* IRFW_SITECONF_H */
