/*
 * internal.h - the engine's own types, shared by the files of libirfw.
 * Nothing here is part of the plugin SDK.
 */
#ifndef IRFW_INTERNAL_H
#define IRFW_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "irfw/irfw.h"
#include "aws/client.h"

struct irfw_case;
struct irfw_aws;

#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/names.h"

/* [a-z0-9_]+, at most 64: a plugin module's name (loader.c). */
bool irfw_valid_module_name(const char *s);

/* ------------------------------------------------------------------ */
/* Configuration (config.c).                                           */

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

/* ------------------------------------------------------------------ */
/* Plugin loader (loader.c).                                           */

struct irfw_module {
	char *name;
	char *path;             /* file it was loaded from */
	void *handle;           /* lt_dlhandle */
	struct irfw_plugin vt;  /* copy of min(size, sizeof) bytes, rest zero */
};

struct irfw_loader {
	char **dirs;            /* search path, in order */
	size_t n_dirs;
	struct irfw_module **mods;
	size_t n_mods;
	bool ltdl_up;
};

int irfw_loader_init(struct irfw_loader *l, char **dirs, size_t n_dirs);
/* Load module `name` (searching dirs) or return the one already loaded.
 * On refusal returns NULL with err "FILE: reason". */
struct irfw_module *irfw_loader_get(struct irfw_loader *l, const char *name, char *err, size_t errlen);
/* Load one module from an explicit file (absolute path, with or without
 * extension); `expect` is the name it must carry. */
struct irfw_module *irfw_loader_load_file(struct irfw_loader *l, const char *file, const char *expect,
                                          char *err, size_t errlen);
/* Every module found in the search path (for `irfw plugins`); refusals
 * are reported through `report`. */
void irfw_loader_scan(struct irfw_loader *l, void (*report)(const char *what, void *ctx), void *ctx);
void irfw_loader_fini(struct irfw_loader *l);
/* 0 when `file` and every folder above it (as given and resolved) are
 * owned by root or the invoking user and not writable by group or others
 * (a sticky folder such as /tmp excepted); else -1 with why. */
int irfw_loader_trusted(const char *file, char *why, size_t len);

/* ------------------------------------------------------------------ */
/* Engine objects behind the public opaque handles (engine.c).          */

struct irfw_run;

struct irfw_step {
	struct irfw_run *run;
	char *name;                 /* section name */
	struct irfw_section *sec;   /* may be NULL when the section is absent */
	struct irfw_module *mod;
	void *state;
	bool initialised;
	bool stop_on_error;
	bool init_failed;
	irfw_phase phase;           /* the plugin's, or the section's `phase =` */
};

struct irfw_fact {
	char *key, *value;
};

/* One step's containment report (irfw_containment_report). */
struct irfw_cont_report {
	char *step;
	irfw_containment state;
	char *cause;
};

struct irfw_step_result {
	const char *step;           /* points into irfw_step */
	const char *plugin;
	irfw_status status;
	char *detail;
	char *aws_error;            /* "Code: message" or NULL */
	char *request_id;
	cJSON *request_ids;         /* every request id of the step's calls */
	cJSON *unchecked;           /* dry run: changes not sent ("sns:Publish") */
	bool not_checked;           /* `irfw check` of a plugin without check */
	long ms;
	irfw_phase phase;           /* the step's */
	bool resumed;               /* done in an earlier run of this case */
	bool ran;                   /* false: not reached (an earlier stop) */
};


struct irfw_target {
	struct irfw_run *run;
	char *id;
	cJSON *instance;            /* owned copy of the DescribeInstances item */
	char *vpc_id, *name_tag;
	bool found;
	struct irfw_case *rec;
	struct irfw_fact *facts;
	size_t n_facts;
	struct irfw_step_result *results;
	size_t n_results;
	struct irfw_step *cur;      /* step running now */
	struct irfw_step_result *cur_res;
	struct irfw_aws_error err;       /* last failed call */
	struct irfw_aws_error first_err; /* first failed call of the current step */
	char last_request_id[128];
	char *notes;                /* accumulated irfw_note text */
	char *state;                /* instance-state name, or NULL */
	struct irfw_cont_report *cont;  /* reports of this run and earlier ones */
	size_t n_cont;
	char *cont_cause;           /* last irfw_target_containment() cause */
	bool skipped_state;         /* terminated or shutting down: not handled */
};

struct irfw_memo_entry {
	char *key;
	char *value;
	bool busy;
};

struct irfw_batch {
	struct irfw_run *run;
	struct irfw_target **targets;
	size_t n;
};

/* Everything a run needs: the parsed options, the configuration, modules,
 * steps, the AWS client and the batch. */
struct irfw_run {
	/* From the command line (may be NULL). */
	const char *conf_path;
	const char *region, *profile, *bucket, *topic, *sgid, *case_id;
	const char *evidence_dir_opt; /* --evidence-dir, else $IRFW_EVIDENCE_DIR */
	bool plan, dry_run, no_resume;
	long jobs;
	char **only, **skip;

	struct irfw_config cfg;
	struct irfw_section *global;
	struct irfw_loader loader;
	struct irfw_step **steps;
	size_t n_steps;

	char *resolved_region;
	char *account_id, *caller_arn;
	char *case_id_resolved;
	char *evidence_dir;
	time_t started;

	struct irfw_aws *aws;
	struct irfw_batch batch;

	pthread_mutex_t memo_lock;
	pthread_cond_t memo_cond;
	struct irfw_memo_entry *memo;
	size_t n_memo;

	size_t next_target;         /* work queue index, under memo_lock */
	bool usage_error;           /* a command-line value was refused */
	bool preparing;             /* in the steps' prepare callbacks */
	bool prepare_usage_error;   /* irfw_step_error() called from prepare */
};

/* A global key's value: CLI override first, then [irfw], then the default. */
const char *irfw_run_global(const struct irfw_run *r, const char *key);


/* ------------------------------------------------------------------ */
/* The run, as runner.c drives it (engine.c).                          */

/* What a run ended with (runner.c turns it into an irfw_result). */
enum irfw_run_status {
	IRFW_RUN_OK = 0,
	IRFW_RUN_STEP_FAILED = 1,
	IRFW_RUN_USAGE = 2,
	IRFW_RUN_NOT_HANDLED = 3,
	IRFW_RUN_NOT_CONTAINED = 4
};

int irfw_run_init(struct irfw_run *r);
/* Load configuration and plugins, validate, init steps. */
int irfw_run_load(struct irfw_run *r, bool init_steps);
int irfw_run_add_target(struct irfw_run *r, const char *id);
/* Print each target's steps; no AWS call. */
int irfw_run_plan(struct irfw_run *r, bool json);
/* The whole run (or `irfw check`). */
int irfw_run_execute(struct irfw_run *r, bool json, bool check_only);
void irfw_run_free(struct irfw_run *r);
/* `irfw plugins`: list, or describe one (text or man format). */
int irfw_plugins_list(struct irfw_run *r);
enum { IRFW_DESCRIBE_TEXT, IRFW_DESCRIBE_MAN, IRFW_DESCRIBE_INI };
int irfw_plugins_describe(struct irfw_run *r, const char *name, int format);

/* Shared between the engine's files. */
const char *irfw_phase_name(irfw_phase p);                     /* run.c */
const char *irfw_containment_outcome(irfw_containment c);      /* containment.c */
void irfw_containment_load(irfw_target *t);                    /* containment.c */
const char *irfw_status_name(irfw_status s);                   /* report.c */
void irfw_report_text(struct irfw_run *r);                     /* report.c */
void irfw_report_json(struct irfw_run *r);                     /* report.c */
/* Run every handled target's pipeline on up to r->jobs worker threads
 * (scheduler.c). */
void irfw_schedule(struct irfw_run *r, size_t found, bool check_only);

#endif /* IRFW_INTERNAL_H */
