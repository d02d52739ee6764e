/*
 * engine.c - a run: configuration and plugins loaded and checked, the
 * instances described once, each instance's pipeline of steps run on a pool
 * of worker threads, every step recorded in the case record, and the
 * results printed for people (text) or programs (JSON).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caserec.h"
#include "internal.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

#include <sys/stat.h>

#ifndef IRFW_PLUGINDIR
#define IRFW_PLUGINDIR "/usr/lib/irfw/plugins"
#endif

/* Per-thread current target, so that irfw_log from deep helpers still
 * carries the right tag. */
static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}


/* ------------------------------------------------------------------ */
/* Globals.                                                            */

const char *irfw_run_global(const struct irfw_run *r, const char *key)
{
	struct {
		const char *key, *val;
	} cli[] = {{"region", r->region}, {"profile", r->profile}, {"bucket", r->bucket},
	           {"topic", r->topic},   {"sgid", r->sgid},     {"evidence_dir", r->evidence_dir_opt}};
	for (size_t i = 0; i < sizeof(cli) / sizeof(cli[0]); i++)
		if (cli[i].val && strcmp(cli[i].key, key) == 0)
			return cli[i].val;
	if (strcmp(key, "region") == 0 && r->resolved_region)
		return r->resolved_region;
	const struct irfw_kv_line *kv = irfw_section_find(r->global, key);
	if (kv)
		return kv->value;
	const struct irfw_option *o = irfw_option_find(irfw_global_options(), key);
	return o ? o->def : NULL;
}

const char *irfw_global_get(const irfw_step *step, const char *key)
{
	return irfw_run_global(step->run, key);
}

/* ------------------------------------------------------------------ */
/* Loading.                                                            */

int irfw_run_init(struct irfw_run *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->memo_lock, NULL);
	pthread_cond_init(&r->memo_cond, NULL);
	r->started = time(NULL);
	r->batch.run = r;
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static void add_dir(char ***dirs, size_t *n, char *dir)
{
	if (!dir)
		return;
	char **v = realloc(*dirs, (*n + 2) * sizeof(*v));
	if (!v) {
		free(dir);
		return;
	}
	*dirs = v;
	v[(*n)++] = dir;
	v[*n] = NULL;
}

/* Search path: plugin_path (relative to the INI file's folder),
 * $IRFW_PLUGIN_PATH, then the installed plugin folder. */
static void plugin_dirs(struct irfw_run *r, char ***dirs, size_t *n)
{
	*dirs = NULL;
	*n = 0;
	const struct irfw_kv_line *pp = irfw_section_find(r->global, "plugin_path");
	if (pp && r->cfg.path) {
		char **list = NULL;
		irfw_split_list(pp->value, &list);
		char *base = dir_of(r->cfg.path);
		for (char **p = list; p && *p; p++)
			add_dir(dirs, n, **p == '/' ? strdup(*p) : irfw_strfmt("%s/%s", base, *p));
		free(base);
		irfw_strv_free(list);
	}
	const char *env = getenv("IRFW_PLUGIN_PATH");
	if (env && *env) {
		char *copy = strdup(env), *save = NULL;
		for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save))
			add_dir(dirs, n, strdup(t));
		free(copy);
	}
	add_dir(dirs, n, strdup(IRFW_PLUGINDIR));
}

static bool in_list(char **list, const char *s)
{
	for (char **p = list; p && *p; p++)
		if (strcmp(*p, s) == 0)
			return true;
	return false;
}

static void print_config_errors(const struct irfw_config *cfg)
{
	size_t shown = cfg->n_errors > 20 ? 20 : cfg->n_errors;
	for (size_t i = 0; i < shown; i++)
		irfw_logf(IRFW_LOG_ERROR, NULL, "%s", cfg->errors[i]);
	if (cfg->n_errors > shown)
		irfw_logf(IRFW_LOG_ERROR, NULL, "... and %zu more configuration errors", cfg->n_errors - shown);
}

static int add_step(struct irfw_run *r, const char *name, int line)
{
	struct irfw_config *cfg = &r->cfg;
	for (size_t i = 0; i < r->n_steps; i++)
		if (strcmp(r->steps[i]->name, name) == 0) {
			irfw_config_error(cfg, line, "[irfw] pipeline lists step '%s' twice", name);
			return -1;
		}
	if (!irfw_valid_module_name(name)) {
		irfw_config_error(cfg, line, "[irfw] pipeline step '%s' is not a valid name ([a-z0-9_]+)", name);
		return -1;
	}
	struct irfw_step *s = calloc(1, sizeof(*s));
	struct irfw_step **v = s ? realloc(r->steps, (r->n_steps + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(s);
		return -1;
	}
	r->steps = v;
	r->steps[r->n_steps++] = s;
	s->run = r;
	s->name = strdup(name);
	s->sec = irfw_config_section(cfg, name);
	const struct irfw_kv_line *pl = irfw_section_find(s->sec, "plugin");
	const char *modname = pl ? pl->value : name;
	char err[1024];
	s->mod = irfw_loader_get(&r->loader, modname, err, sizeof(err));
	if (!s->mod) {
		irfw_config_error(cfg, pl ? pl->line : line, "step '%s': %s", name, err);
		return -1;
	}
	if (s->sec) {
		irfw_config_validate(cfg, s->sec, s->mod->vt.options, irfw_step_options);
	} else {
		/* No section (inih reports none that holds no key): name the
		 * step and its pipeline line. */
		for (const struct irfw_option *o = s->mod->vt.options; o && o->name; o++)
			if (o->flags & IRFW_OPT_REQUIRED)
				irfw_config_error(cfg, line,
				                  "step '%s' has no [%s] section with keys, and its plugin %s requires '%s'",
				                  name, name, s->mod->name, o->name);
	}
	const char *oe = irfw_step_get(s, "on_error");
	s->stop_on_error = oe && strcmp(oe, "stop") == 0;
	/* A 1.0 module's copy is zero past its size: phase unset. */
	s->phase = s->mod->vt.phase >= IRFW_PHASE_CONTAIN && s->mod->vt.phase <= IRFW_PHASE_REPORT
	               ? s->mod->vt.phase
	               : IRFW_PHASE_PRESERVE;
	const struct irfw_kv_line *ph = irfw_section_find(s->sec, "phase");
	if (ph)
		s->phase = strcmp(ph->value, "contain") == 0    ? IRFW_PHASE_CONTAIN
		           : strcmp(ph->value, "report") == 0 ? IRFW_PHASE_REPORT
		                                              : IRFW_PHASE_PRESERVE;
	return 0;
}

static const char *phase_name(irfw_phase p)
{
	return p == IRFW_PHASE_CONTAIN ? "contain" : p == IRFW_PHASE_REPORT ? "report" : "preserve";
}

/* Only the plugin search path, for `irfw plugins` without a usable
 * configuration. */
static int loader_only(struct irfw_run *r)
{
	char **dirs;
	size_t n_dirs;
	plugin_dirs(r, &dirs, &n_dirs);
	return irfw_loader_init(&r->loader, dirs, n_dirs);
}

/* The values an operator types that name AWS things, checked for syntax
 * before anything is loaded or sent: a typo is a usage error (exit 2), not
 * a failed step after the instance was already changed. */
static void check_global_values(struct irfw_run *r)
{
	static const struct {
		const char *key, *flag, *what;
		bool (*valid)(const char *);
	} checks[] = {
		{"sgid", "-g/--sgid", "is not a security group id (sg- and 8 or 17 hex digits)", irfw_valid_sg_id},
		{"topic", "-t/--topic", "is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
		 irfw_valid_topic_arn},
		{"bucket", "-b/--bucket", "is not an S3 bucket name (3-63 of a-z 0-9 . -)", irfw_valid_bucket},
		{"region", "-r/--region", "is not an AWS region (like us-east-1)", irfw_valid_region},
	};
	const char *cli[] = {r->sgid, r->topic, r->bucket, r->region};
	static const char *const no_vars[] = {NULL};
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		if (cli[i] && !checks[i].valid(cli[i])) {
			char *e = irfw_escape_text(cli[i]);
			irfw_logf(IRFW_LOG_ERROR, NULL, "%s '%s' %s", checks[i].flag, e ? e : "", checks[i].what);
			free(e);
			r->usage_error = true;
		}
		const struct irfw_kv_line *kv = irfw_section_find(r->global, checks[i].key);
		/* A template is checked when it is expanded. */
		if (!cli[i] && kv && irfw_template_check_vars(kv->value, no_vars) == NULL && !checks[i].valid(kv->value))
			irfw_config_error(&r->cfg, kv->line, "[irfw] %s = %s %s", checks[i].key, kv->value,
			                  checks[i].what);
	}
	/* Rate limits, so that a typo is exit 2 with its line, not a client
	 * that cannot start. */
	for (size_t i = 0; i < irfw_ratelimit_class_count(); i++) {
		char key[64];
		double cap, rate;
		snprintf(key, sizeof(key), "ratelimit.%s", irfw_ratelimit_class_name(i));
		const struct irfw_kv_line *kv = irfw_section_find(r->global, key);
		if (kv && irfw_ratelimit_parse_spec(kv->value, &cap, &rate) != 0)
			irfw_config_error(&r->cfg, kv->line,
			                  "[irfw] %s = %s: expected CAPACITY/REFILL_PER_SECOND, e.g. 50/5", key, kv->value);
	}
	/* The case id is made before any instance is known. */
	static const char *const case_vars[] = {"account_id", "region", "date", "time", NULL};
	const struct irfw_kv_line *cid = irfw_section_find(r->global, "case_id");
	const char *why = cid ? irfw_template_check_vars(cid->value, case_vars) : NULL;
	if (why)
		irfw_config_error(&r->cfg, cid->line, "[irfw] case_id = %s: %s", cid->value, why);
}

int irfw_run_load(struct irfw_run *r, bool init_steps)
{
	struct irfw_config *cfg = &r->cfg;
	if (!r->conf_path) {
		if (!init_steps && loader_only(r) == 0)
			return IRFW_RUN_OK;
		irfw_logf(IRFW_LOG_ERROR, NULL, "no configuration file");
		return IRFW_RUN_USAGE;
	}
	if (irfw_config_load(r->conf_path, cfg) != 0) {
		if (!init_steps) {
			print_config_errors(cfg);
			return loader_only(r) == 0 ? IRFW_RUN_OK : IRFW_RUN_USAGE;
		}
		goto bad;
	}
	r->global = irfw_config_section(cfg, "irfw");
	if (!r->global) {
		irfw_config_error(cfg, 0, "no [irfw] section (it holds the pipeline and the global settings)");
		goto bad;
	}
	irfw_config_validate(cfg, r->global, irfw_global_options(), NULL);
	long jobs = 0;
	if (!irfw_parse_long(irfw_run_global(r, "jobs"), &jobs) || jobs < 1 || jobs > 64) {
		const struct irfw_kv_line *kv = irfw_section_find(r->global, "jobs");
		irfw_config_error(cfg, kv ? kv->line : 0, "[irfw] jobs must be between 1 and 64");
	}
	if (!r->jobs)
		r->jobs = jobs;
	check_global_values(r);
	if (cfg->n_errors || r->usage_error)
		goto bad;

	char **dirs;
	size_t n_dirs;
	plugin_dirs(r, &dirs, &n_dirs);
	if (irfw_loader_init(&r->loader, dirs, n_dirs) != 0) {
		irfw_config_error(cfg, 0, "libltdl failed to initialise");
		goto bad;
	}

	/* `irfw plugins` needs the search path, not the pipeline. */
	if (!init_steps)
		return IRFW_RUN_OK;
	const struct irfw_kv_line *pl = irfw_section_find(r->global, "pipeline");
	char **names = NULL;
	size_t n = irfw_split_list(pl->value, &names);
	if (n == 0)
		irfw_config_error(cfg, pl->line, "[irfw] pipeline is empty");
	for (char **p = r->only; p && *p; p++)
		if (!in_list(names, *p))
			irfw_config_error(cfg, pl->line, "--only %s: no such step in the pipeline (%s)", *p, pl->value);
	for (char **p = r->skip; p && *p; p++)
		if (!in_list(names, *p))
			irfw_config_error(cfg, pl->line, "--skip %s: no such step in the pipeline (%s)", *p, pl->value);
	for (size_t i = 0; i < n; i++) {
		if ((r->only && !in_list(r->only, names[i])) || in_list(r->skip, names[i]))
			continue;
		add_step(r, names[i], pl->line);
	}
	/* A section nobody reads is most often a typo of a step's name. */
	for (size_t i = 0; i < cfg->n_sections; i++) {
		const char *sn = cfg->sections[i].name;
		if (strcmp(sn, "irfw") != 0 && !in_list(names, sn))
			irfw_logf(IRFW_LOG_DEBUG, NULL, "%s:%d: section [%s] is not in the pipeline; ignored", cfg->path,
			          cfg->sections[i].line, sn);
	}
	irfw_strv_free(names);
	if (cfg->n_errors)
		goto bad;
	for (size_t i = 0; i < r->n_steps; i++) {
		struct irfw_step *s = r->steps[i];
		if (s->mod->vt.init && s->mod->vt.init(s, &s->state) != 0) {
			s->init_failed = true;
			if (!cfg->n_errors)
				irfw_config_error(cfg, s->sec ? s->sec->line : 0, "step '%s' refused its configuration",
				                  s->name);
		}
		s->initialised = !s->init_failed;
	}
	if (cfg->n_errors)
		goto bad;
	return IRFW_RUN_OK;
bad:
	print_config_errors(cfg);
	return IRFW_RUN_USAGE;
}

int irfw_run_add_target(struct irfw_run *r, const char *id)
{
	if (!irfw_valid_instance_id(id)) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "'%s' is not an instance id (expected i- followed by 8 or 17 lowercase hex digits)", id);
		return IRFW_RUN_USAGE;
	}
	for (size_t i = 0; i < r->batch.n; i++)
		if (strcmp(r->batch.targets[i]->id, id) == 0)
			return IRFW_RUN_OK; /* the same instance twice is handled once */
	struct irfw_target *t = calloc(1, sizeof(*t));
	struct irfw_target **v = t ? realloc(r->batch.targets, (r->batch.n + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(t);
		return IRFW_RUN_USAGE;
	}
	r->batch.targets = v;
	t->run = r;
	t->id = strdup(id);
	r->batch.targets[r->batch.n++] = t;
	return IRFW_RUN_OK;
}

/* ------------------------------------------------------------------ */
/* Plan.                                                               */

int irfw_run_plan(struct irfw_run *r, bool json)
{
	if (json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(doc, "instances");
		for (size_t t = 0; t < r->batch.n; t++) {
			cJSON *it = cJSON_CreateObject();
			cJSON_AddStringToObject(it, "instance_id", r->batch.targets[t]->id);
			cJSON *steps = cJSON_AddArrayToObject(it, "steps");
			for (size_t i = 0; i < r->n_steps; i++) {
				cJSON *s = cJSON_CreateObject();
				cJSON_AddStringToObject(s, "step", r->steps[i]->name);
				cJSON_AddStringToObject(s, "plugin", r->steps[i]->mod->name);
				cJSON_AddStringToObject(s, "on_error", r->steps[i]->stop_on_error ? "stop" : "continue");
				cJSON_AddStringToObject(s, "summary",
				                        r->steps[i]->mod->vt.summary ? r->steps[i]->mod->vt.summary : "");
				cJSON_AddItemToArray(steps, s);
			}
			cJSON_AddItemToArray(arr, it);
		}
		char *out = cJSON_Print(doc);
		if (out)
			puts(out);
		free(out);
		cJSON_Delete(doc);
		return IRFW_RUN_OK;
	}
	printf("Plan (no AWS call made)%s:\n", r->dry_run ? ", dry run" : "");
	for (size_t t = 0; t < r->batch.n; t++) {
		printf("%s\n", r->batch.targets[t]->id);
		for (size_t i = 0; i < r->n_steps; i++) {
			const struct irfw_step *s = r->steps[i];
			printf("  %2zu. %-14s %-14s %s%s\n", i + 1, s->name, s->mod->name,
			       s->mod->vt.summary ? s->mod->vt.summary : "",
			       s->stop_on_error ? "  [stops on error]" : "");
		}
	}
	return IRFW_RUN_OK;
}

/* ------------------------------------------------------------------ */
/* Step configuration accessors.                                       */

const char *irfw_step_name(const irfw_step *step)
{
	return step->name;
}

const char *irfw_step_get(const irfw_step *step, const char *key)
{
	const struct irfw_option *o = irfw_option_find(step->mod->vt.options, key);
	if (!o)
		o = irfw_option_find(irfw_step_options, key);
	if (!o) {
		/* A typo in the plugin's code would read as "unset" forever:
		 * say so loudly, every time. */
		irfw_logf(IRFW_LOG_ERROR, step->name,
		          "plugin bug: %s asked for key '%s', which its options table does not declare",
		          step->mod->name, key ? key : "(null)");
		return NULL;
	}
	const struct irfw_kv_line *kv = irfw_section_find(step->sec, key);
	return kv ? kv->value : o->def;
}

bool irfw_step_get_bool(const irfw_step *step, const char *key)
{
	const char *v = irfw_step_get(step, key);
	bool b = false;
	return v && irfw_parse_bool(v, &b) && b;
}

long irfw_step_get_int(const irfw_step *step, const char *key)
{
	const char *v = irfw_step_get(step, key);
	long l = 0;
	return v && irfw_parse_long(v, &l) ? l : 0;
}

char **irfw_step_get_list(const irfw_step *step, const char *key)
{
	char **v = NULL;
	irfw_split_list(irfw_step_get(step, key), &v);
	return v;
}

void irfw_list_free(char **list)
{
	irfw_strv_free(list);
}

void irfw_step_error(irfw_step *step, const char *key, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (step->run->preparing) {
		/* About the batch (a -g group of another VPC), not a file line. */
		irfw_logf(IRFW_LOG_ERROR, step->name, "%s%s%s", key ? key : "", key ? ": " : "", msg);
		step->run->prepare_usage_error = true;
		return;
	}
	const struct irfw_kv_line *kv = key ? irfw_section_find(step->sec, key) : NULL;
	int line = kv ? kv->line : step->sec ? step->sec->line : 0;
	if (key)
		irfw_config_error(&step->run->cfg, line, "[%s] %s: %s", step->name, key, msg);
	else
		irfw_config_error(&step->run->cfg, line, "[%s] %s", step->name, msg);
}

void irfw_step_log(irfw_step *step, irfw_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	irfw_vlogf(level, step->name, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Batch and target accessors.                                         */

size_t irfw_batch_count(const irfw_batch *b)
{
	return b->n;
}

irfw_target *irfw_batch_target(irfw_batch *b, size_t i)
{
	return i < b->n ? b->targets[i] : NULL;
}

const char *irfw_batch_case_id(const irfw_batch *b)
{
	return b->run->case_id_resolved;
}

const char *irfw_target_id(const irfw_target *t)
{
	return t->id;
}

const char *irfw_target_region(const irfw_target *t)
{
	return t->run->resolved_region;
}

const char *irfw_target_account_id(const irfw_target *t)
{
	return t->run->account_id;
}

const char *irfw_target_case_id(const irfw_target *t)
{
	return t->run->case_id_resolved;
}

const char *irfw_target_caller_arn(const irfw_target *t)
{
	return t->run->caller_arn;
}

const char *irfw_target_vpc_id(const irfw_target *t)
{
	return t->vpc_id;
}

const cJSON *irfw_target_instance(const irfw_target *t)
{
	return t->instance;
}

const char *irfw_target_state(const irfw_target *t)
{
	return t->state ? t->state : "";
}

bool irfw_target_dry_run(const irfw_target *t)
{
	return t->run->dry_run;
}

irfw_step *irfw_target_step(irfw_target *t)
{
	return t->cur;
}

int irfw_fact_set(irfw_target *t, const char *key, const char *value)
{
	for (size_t i = 0; i < t->n_facts; i++)
		if (strcmp(t->facts[i].key, key) == 0) {
			char *v = strdup(value ? value : "");
			if (!v)
				return -1;
			free(t->facts[i].value);
			t->facts[i].value = v;
			return 0;
		}
	struct irfw_fact *v = realloc(t->facts, (t->n_facts + 1) * sizeof(*v));
	if (!v)
		return -1;
	t->facts = v;
	t->facts[t->n_facts].key = strdup(key);
	t->facts[t->n_facts].value = strdup(value ? value : "");
	t->n_facts++;
	return 0;
}

const char *irfw_fact_get(const irfw_target *t, const char *key)
{
	for (size_t i = 0; i < t->n_facts; i++)
		if (strcmp(t->facts[i].key, key) == 0)
			return t->facts[i].value;
	return NULL;
}

static char *tag_of(irfw_target *t)
{
	return irfw_strfmt("%s %s", t->id, t->cur ? t->cur->name : "-");
}

void irfw_log(irfw_target *t, irfw_log_level level, const char *fmt, ...)
{
	char *tag = tag_of(t);
	va_list ap;
	va_start(ap, fmt);
	irfw_vlogf(level, tag, fmt, ap);
	va_end(ap);
	free(tag);
}

static const char *containment_outcome(irfw_containment c)
{
	switch (c) {
	case IRFW_CONTAINED: return "CONTAINED";
	case IRFW_PARTIALLY_CONTAINED: return "PARTIALLY CONTAINED";
	case IRFW_NOT_CONTAINED: return "NOT CONTAINED";
	case IRFW_CONTAINMENT_NOT_ATTEMPTED: break;
	}
	return "CONTAINMENT NOT ATTEMPTED";
}

char *irfw_expand(irfw_target *t, const char *tmpl)
{
	irfw_containment c = irfw_target_containment(t, NULL);
	struct irfw_vars v = {.account_id = t->run->account_id,
	                      .region = t->run->resolved_region,
	                      .instance_id = t->id,
	                      .vpc_id = t->vpc_id,
	                      .case_id = t->run->case_id_resolved,
	                      .name_tag = t->name_tag,
	                      .containment = irfw_containment_name(c),
	                      .outcome = containment_outcome(c),
	                      .now = t->run->started};
	const char *err = NULL;
	char *s = irfw_template_expand(tmpl, &v, &err);
	if (!s)
		irfw_log(t, IRFW_LOG_ERROR, "cannot expand '%s': %s", tmpl, err ? err : "out of memory");
	return s;
}

char *irfw_step_expand(irfw_target *t, const char *key)
{
	const char *v = t->cur ? irfw_step_get(t->cur, key) : NULL;
	return v ? irfw_expand(t, v) : NULL;
}

/* ------------------------------------------------------------------ */
/* Containment.                                                        */

const char *irfw_containment_name(irfw_containment c)
{
	switch (c) {
	case IRFW_CONTAINED: return "contained";
	case IRFW_PARTIALLY_CONTAINED: return "partially-contained";
	case IRFW_NOT_CONTAINED: return "not-contained";
	case IRFW_CONTAINMENT_NOT_ATTEMPTED: break;
	}
	return "not-attempted";
}

static bool containment_from_name(const char *s, irfw_containment *out)
{
	for (int c = IRFW_CONTAINMENT_NOT_ATTEMPTED; c <= IRFW_NOT_CONTAINED; c++)
		if (s && strcmp(s, irfw_containment_name((irfw_containment)c)) == 0) {
			*out = (irfw_containment)c;
			return true;
		}
	return false;
}

/* Keep `step`'s report (replacing an earlier one); takes `cause`. */
static void cont_put(irfw_target *t, const char *step, irfw_containment c, char *cause)
{
	for (size_t i = 0; i < t->n_cont; i++)
		if (strcmp(t->cont[i].step, step) == 0) {
			free(t->cont[i].cause);
			t->cont[i].state = c;
			t->cont[i].cause = cause;
			return;
		}
	struct irfw_cont_report *v = realloc(t->cont, (t->n_cont + 1) * sizeof(*v));
	char *name = strdup(step);
	if (!v || !name) {
		if (v)
			t->cont = v;
		free(name);
		free(cause);
		return;
	}
	t->cont = v;
	t->cont[t->n_cont++] = (struct irfw_cont_report){.step = name, .state = c, .cause = cause};
}

/* Reports kept by earlier runs of the case: steps.<step>.records.containment. */
static void cont_load(irfw_target *t)
{
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(irfw_case_manifest(t->rec), "steps");
	const cJSON *st;
	cJSON_ArrayForEach(st, steps)
	{
		const cJSON *rec = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(st, "records"), "containment");
		irfw_containment c;
		if (st->string && containment_from_name(irfw_json_str(rec, "state"), &c))
			cont_put(t, st->string, c, irfw_strdup(irfw_json_str(rec, "cause")));
	}
}

int irfw_containment_report(irfw_target *t, irfw_containment c, const char *fmt, ...)
{
	if (t->run->dry_run || !t->cur)
		return 0;
	if (c < IRFW_CONTAINMENT_NOT_ATTEMPTED || c > IRFW_NOT_CONTAINED)
		c = IRFW_NOT_CONTAINED;
	char msg[1024] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	cont_put(t, t->cur->name, c, strdup(msg));
	irfw_log(t, c == IRFW_CONTAINED ? IRFW_LOG_INFO : IRFW_LOG_WARN, "containment: %s%s%s",
	         irfw_containment_name(c), *msg ? ": " : "", msg);
	if (!t->rec)
		return -1;
	cJSON *v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "state", irfw_containment_name(c));
	cJSON_AddStringToObject(v, "cause", msg);
	char ts[32];
	irfw_iso_now(ts);
	cJSON_AddStringToObject(v, "verified_at", ts);
	return irfw_case_record(t->rec, t->cur->name, "containment", v);
}

static const struct irfw_step *step_named(const struct irfw_run *r, const char *name)
{
	for (size_t i = 0; i < r->n_steps; i++)
		if (strcmp(r->steps[i]->name, name) == 0)
			return r->steps[i];
	return NULL;
}

static bool has_report(const irfw_target *t, const char *step)
{
	for (size_t i = 0; i < t->n_cont; i++)
		if (strcmp(t->cont[i].step, step) == 0)
			return true;
	return false;
}

irfw_containment irfw_target_containment(const irfw_target *t, const char **cause)
{
	irfw_target *mt = (irfw_target *)t; /* the cause is cached per target */
	irfw_containment worst = IRFW_CONTAINMENT_NOT_ATTEMPTED;
	struct irfw_buf b = {0};
	irfw_buf_puts(&b, "");
	if (t->run->dry_run) {
		irfw_buf_puts(&b, "dry run: nothing was changed");
		goto out;
	}
	for (size_t i = 0; i < t->n_cont; i++) {
		const struct irfw_cont_report *c = &t->cont[i];
		if (c->state > worst)
			worst = c->state;
		if (c->state != IRFW_CONTAINED && c->cause && *c->cause)
			irfw_buf_printf(&b, "%s%s", b.len ? "; " : "", c->cause);
	}
	/* A failed step of the contain phase that said nothing itself: what
	 * it was for did not happen. */
	for (size_t i = 0; i < t->n_results; i++) {
		const struct irfw_step_result *res = &t->results[i];
		const struct irfw_step *s = res->step ? step_named(t->run, res->step) : NULL;
		if (!res->ran || !res->step || res->status != IRFW_FAILED || !s || s->phase != IRFW_PHASE_CONTAIN ||
		    has_report(t, res->step) || res == t->cur_res)
			continue;
		if (worst == IRFW_CONTAINED)
			worst = IRFW_PARTIALLY_CONTAINED;
		else if (worst == IRFW_CONTAINMENT_NOT_ATTEMPTED)
			worst = IRFW_NOT_CONTAINED;
		irfw_buf_printf(&b, "%s%s failed%s%s", b.len ? "; " : "", res->step, res->detail ? ": " : "",
		                res->detail ? res->detail : "");
	}
out:
	/* Keep the pointer a caller holds valid while the text is the same:
	 * it changes only with a report or a failed step. */
	if (mt->cont_cause && b.data && strcmp(mt->cont_cause, b.data) == 0) {
		irfw_buf_free(&b);
	} else {
		free(mt->cont_cause);
		mt->cont_cause = b.data;
	}
	if (cause)
		*cause = mt->cont_cause ? mt->cont_cause : "";
	return worst;
}

/* ------------------------------------------------------------------ */
/* Step results.                                                       */

IRFW_PRINTF(2, 0) static void set_detail(irfw_target *t, const char *fmt, va_list ap)
{
	if (!t->cur_res)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	free(t->cur_res->detail);
	t->cur_res->detail = strdup(msg);
}

irfw_status irfw_skip(irfw_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(t, fmt, ap);
	va_end(ap);
	return IRFW_SKIPPED;
}

irfw_status irfw_fail(irfw_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(t, fmt, ap);
	va_end(ap);
	return IRFW_FAILED;
}

static void set_aws_error(irfw_target *t, const struct irfw_aws_error *e)
{
	if (!t->cur_res)
		return;
	free(t->cur_res->aws_error);
	t->cur_res->aws_error = irfw_strfmt("%s: %s", e->code[0] ? e->code : "Error", e->message);
	free(t->cur_res->request_id);
	t->cur_res->request_id = e->request_id[0] ? strdup(e->request_id) : NULL;
}

irfw_status irfw_fail_aws(irfw_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(t, fmt, ap);
	va_end(ap);
	set_aws_error(t, &t->err);
	return IRFW_FAILED;
}

irfw_status irfw_fail_aws_first(irfw_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(t, fmt, ap);
	va_end(ap);
	set_aws_error(t, t->first_err.code[0] ? &t->first_err : &t->err);
	return IRFW_FAILED;
}

void irfw_note(irfw_target *t, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *n = t->notes ? irfw_strfmt("%s; %s", t->notes, msg) : strdup(msg);
	if (n) {
		free(t->notes);
		t->notes = n;
	}
}

/* ------------------------------------------------------------------ */
/* AWS calls from plugins.                                             */

const char *irfw_aws_error_code(const irfw_target *t)
{
	return t->err.code;
}

const char *irfw_aws_error_message(const irfw_target *t)
{
	return t->err.message;
}

const char *irfw_aws_request_id(const irfw_target *t)
{
	return t->err.request_id;
}

long irfw_aws_http_status(const irfw_target *t)
{
	return t->err.http_status;
}

const char *irfw_aws_last_request_id(const irfw_target *t)
{
	return t->last_request_id;
}

int irfw_aws_call(irfw_target *t, const char *service, const char *operation, const cJSON *params,
                  cJSON **result)
{
	return irfw_aws_call_in(t, NULL, service, operation, params, result);
}

bool irfw_arn_region(const char *arn, char out[64])
{
	/* arn:partition:service:region:account:resource */
	if (!arn || strncmp(arn, "arn:", 4) != 0)
		return false;
	const char *p = arn + 4;
	for (int field = 0; field < 2; field++) {
		p = strchr(p, ':');
		if (!p)
			return false;
		p++;
	}
	const char *end = strchr(p, ':');
	size_t n = end ? (size_t)(end - p) : 0;
	if (!end || n == 0 || n >= 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
			return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

int irfw_aws_call_in(irfw_target *t, const char *region, const char *service, const char *operation,
                     const cJSON *params, cJSON **result)
{
	if (result)
		*result = NULL;
	memset(&t->err, 0, sizeof(t->err));
	t->last_request_id[0] = '\0';
	if (!t->run->aws) {
		snprintf(t->err.code, sizeof(t->err.code), "NoClient");
		snprintf(t->err.message, sizeof(t->err.message), "no AWS client in this mode");
		return -1;
	}
	if (t->run->dry_run && t->cur_res && !irfw_operation_dry_sendable(service, operation)) {
		/* Not sent (no DryRun in its API): say so rather than let the
		 * step's "ok" vouch for a permission nobody checked. */
		char *name = irfw_strfmt("%s:%s", service, operation);
		bool seen = false;
		const cJSON *u;
		cJSON_ArrayForEach(u, t->cur_res->unchecked) seen = seen || (name && strcmp(u->valuestring, name) == 0);
		if (!t->cur_res->unchecked)
			t->cur_res->unchecked = cJSON_CreateArray();
		if (name && !seen)
			cJSON_AddItemToArray(t->cur_res->unchecked, cJSON_CreateString(name));
		free(name);
	}
	cJSON *res = NULL;
	char rid[128] = "";
	int rc = irfw_aws_request(t->run->aws, region && *region ? region : t->run->resolved_region, service,
	                          operation, params, t->run->dry_run, &res, &t->err, rid);
	if (rc == 0)
		irfw_result_neutral(res, service, operation, t->cur);
	const char *id = rc == 0 ? rid : t->err.request_id;
	if (*id && t->cur_res) {
		if (!t->cur_res->request_ids)
			t->cur_res->request_ids = cJSON_CreateArray();
		cJSON_AddItemToArray(t->cur_res->request_ids, cJSON_CreateString(id));
	}
	snprintf(t->last_request_id, sizeof(t->last_request_id), "%s", rid);
	if (rc != 0 && !t->first_err.code[0])
		t->first_err = t->err;
	if (rc != 0)
		irfw_log(t, IRFW_LOG_DEBUG, "%s %s failed: %s %s (request %s)", service, operation, t->err.code,
		         t->err.message, t->err.request_id[0] ? t->err.request_id : "-");
	if (result)
		*result = res;
	else
		cJSON_Delete(res);
	return rc;
}

int irfw_batch_aws_call(irfw_batch *b, const char *region, const char *service, const char *operation,
                        const cJSON *params, cJSON **result)
{
	struct irfw_aws_error e;
	char rid[128];
	if (result)
		*result = NULL;
	if (!b->run->aws)
		return -1;
	cJSON *res = NULL;
	int rc = irfw_aws_request(b->run->aws, region ? region : b->run->resolved_region, service, operation,
	                          params, b->run->dry_run, &res, &e, rid);
	if (rc == 0) /* in prepare every target's step is the one preparing */
		irfw_result_neutral(res, service, operation, b->n ? b->targets[0]->cur : NULL);
	if (rc != 0)
		irfw_logf(IRFW_LOG_ERROR, NULL, "%s %s: %s: %s (request %s)", service, operation, e.code, e.message,
		          e.request_id[0] ? e.request_id : "-");
	if (result)
		*result = res;
	else
		cJSON_Delete(res);
	return rc;
}

const char *irfw_memo(irfw_target *t, const char *key, char *(*make)(irfw_target *t, void *arg), void *arg)
{
	struct irfw_run *r = t->run;
	pthread_mutex_lock(&r->memo_lock);
	for (;;) {
		struct irfw_memo_entry *e = NULL;
		for (size_t i = 0; i < r->n_memo; i++)
			if (strcmp(r->memo[i].key, key) == 0)
				e = &r->memo[i];
		if (e && e->value) {
			const char *v = e->value;
			pthread_mutex_unlock(&r->memo_lock);
			return v;
		}
		if (e && e->busy) {
			pthread_cond_wait(&r->memo_cond, &r->memo_lock);
			continue;
		}
		if (!e) {
			struct irfw_memo_entry *v = realloc(r->memo, (r->n_memo + 1) * sizeof(*v));
			if (!v) {
				pthread_mutex_unlock(&r->memo_lock);
				return NULL;
			}
			r->memo = v;
			e = &r->memo[r->n_memo++];
			e->key = strdup(key);
			e->value = NULL;
		}
		e->busy = true;
		size_t idx = (size_t)(e - r->memo);
		pthread_mutex_unlock(&r->memo_lock);
		char *val = make(t, arg);
		pthread_mutex_lock(&r->memo_lock);
		e = &r->memo[idx]; /* the array may have moved */
		e->busy = false;
		e->value = val;
		pthread_cond_broadcast(&r->memo_cond);
		pthread_mutex_unlock(&r->memo_lock);
		return val;
	}
}

int irfw_http_post(irfw_target *t, const char *url, const char *content_type, const char *body, size_t len,
                   long *http_status)
{
	*http_status = 0;
	if (!t->run->aws) {
		irfw_log(t, IRFW_LOG_ERROR, "no HTTP client in this mode");
		return -1;
	}
	char why[512];
	if (irfw_aws_http_url_check(url, why, sizeof(why)) != 0) {
		irfw_log(t, IRFW_LOG_ERROR, "%s", why);
		return -1;
	}
	if (t->run->dry_run) {
		irfw_log(t, IRFW_LOG_INFO, "dry run: not posting the webhook");
		return 0;
	}
	int rc = irfw_aws_http_post(t->run->aws, url, content_type, body, len, http_status, why, sizeof(why));
	if (rc != 0)
		irfw_log(t, IRFW_LOG_ERROR, "%s", why);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Evidence and record.                                                */

int irfw_evidence_add(irfw_target *t, const char *name, const char *media_type, const void *data, size_t len)
{
	if (!t->rec && t->run->dry_run) {
		/* `irfw check` opens no case record: what was read is dropped. */
		irfw_log(t, IRFW_LOG_DEBUG, "check: %s (%zu bytes) not stored", name, len);
		return 0;
	}
	if (!t->rec) {
		irfw_log(t, IRFW_LOG_ERROR, "cannot store evidence %s: this instance has no case record (see the "
		                            "warning at the start of the run)", name);
		return -1;
	}
	int rc = irfw_case_artifact_add(t->rec, t->cur ? t->cur->name : "core", name, media_type, data, len);
	if (rc != 0)
		irfw_log(t, IRFW_LOG_ERROR, "cannot store evidence %s: %s", name, irfw_case_error(t->rec));
	return rc;
}

size_t irfw_evidence_count(const irfw_target *t)
{
	return t->rec ? irfw_case_artifact_count(t->rec) : 0;
}

const char *irfw_evidence_name(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_name(t->rec, i);
}

const char *irfw_evidence_path(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_path(t->rec, i);
}

const char *irfw_evidence_media_type(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_media_type(t->rec, i);
}

const char *irfw_evidence_sha256(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_sha256(t->rec, i);
}

uint64_t irfw_evidence_size(const irfw_target *t, size_t i)
{
	return irfw_case_artifact_size(t->rec, i);
}

int irfw_evidence_set_location(irfw_target *t, size_t i, const char *uri, const char *version_id,
                               const char *etag, const char *kms_key)
{
	return t->rec ? irfw_case_artifact_set_location(t->rec, i, uri, version_id, etag, kms_key) : -1;
}

const char *irfw_manifest_path(const irfw_target *t)
{
	return t->rec ? irfw_case_manifest_path(t->rec) : NULL;
}

int irfw_record(irfw_target *t, const char *key, cJSON *value)
{
	if (t->run->dry_run) {
		/* Nothing was changed, so there is nothing to undo. */
		cJSON_Delete(value);
		return 0;
	}
	if (!t->rec) {
		irfw_log(t, IRFW_LOG_ERROR, "cannot record %s: this instance has no case record", key);
		cJSON_Delete(value);
		return -1;
	}
	int rc = irfw_case_record(t->rec, t->cur ? t->cur->name : "core", key, value);
	if (rc != 0)
		irfw_log(t, IRFW_LOG_ERROR, "cannot record %s: %s", key, irfw_case_error(t->rec));
	return rc;
}

const cJSON *irfw_record_get(const irfw_target *t, const char *step, const char *key)
{
	return t->rec ? irfw_case_record_get(t->rec, step, key) : NULL;
}

static const char *status_name(irfw_status s)
{
	return s == IRFW_OK ? "ok" : s == IRFW_SKIPPED ? "skipped" : "failed";
}

static cJSON *result_json(const struct irfw_step_result *res)
{
	cJSON *s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "step", res->step);
	cJSON_AddStringToObject(s, "plugin", res->plugin);
	cJSON_AddStringToObject(s, "status",
	                        !res->ran ? "not-run" : res->not_checked ? "not-checked" : status_name(res->status));
	if (res->unchecked)
		cJSON_AddItemToObject(s, "not_checked", cJSON_Duplicate(res->unchecked, true));
	if (res->detail)
		cJSON_AddStringToObject(s, "detail", res->detail);
	else
		cJSON_AddNullToObject(s, "detail");
	if (res->aws_error)
		cJSON_AddStringToObject(s, "aws_error", res->aws_error);
	else
		cJSON_AddNullToObject(s, "aws_error");
	if (res->request_id)
		cJSON_AddStringToObject(s, "request_id", res->request_id);
	else
		cJSON_AddNullToObject(s, "request_id");
	cJSON_AddNumberToObject(s, "ms", (double)res->ms);
	if (res->resumed)
		cJSON_AddTrueToObject(s, "resumed");
	if (res->phase)
		cJSON_AddStringToObject(s, "phase", phase_name(res->phase));
	return s;
}

/* {"state": "...", "outcome": "...", "cause": "..."} of the target. */
static cJSON *containment_json(const irfw_target *t)
{
	const char *cause;
	irfw_containment c = irfw_target_containment(t, &cause);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "state", irfw_containment_name(c));
	cJSON_AddStringToObject(o, "outcome", containment_outcome(c));
	cJSON_AddStringToObject(o, "cause", cause);
	return o;
}

cJSON *irfw_target_summary(const irfw_target *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "case_id", t->run->case_id_resolved ? t->run->case_id_resolved : "");
	cJSON_AddStringToObject(o, "instance_id", t->id);
	if (t->run->account_id)
		cJSON_AddStringToObject(o, "account_id", t->run->account_id);
	if (t->run->resolved_region)
		cJSON_AddStringToObject(o, "region", t->run->resolved_region);
	if (t->name_tag)
		cJSON_AddStringToObject(o, "name", t->name_tag);
	cJSON *steps = cJSON_AddArrayToObject(o, "steps");
	/* The step asking (a notifier) is not finished: leave it out. */
	int count[3] = {0, 0, 0};
	for (size_t i = 0; i < t->n_results; i++)
		if (t->results[i].ran && &t->results[i] != t->cur_res) {
			cJSON_AddItemToArray(steps, result_json(&t->results[i]));
			count[t->results[i].status]++;
		}
	cJSON *counts = cJSON_AddObjectToObject(o, "counts");
	cJSON_AddNumberToObject(counts, "ok", count[IRFW_OK]);
	cJSON_AddNumberToObject(counts, "skipped", count[IRFW_SKIPPED]);
	cJSON_AddNumberToObject(counts, "failed", count[IRFW_FAILED]);
	cJSON_AddItemToObject(o, "containment", containment_json(t));
	cJSON *arts = cJSON_AddArrayToObject(o, "artifacts");
	for (size_t i = 0; t->rec && i < irfw_case_artifact_count(t->rec); i++) {
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "name", irfw_case_artifact_name(t->rec, i));
		cJSON_AddStringToObject(a, "sha256", irfw_case_artifact_sha256(t->rec, i));
		const cJSON *all = cJSON_GetObjectItemCaseSensitive(irfw_case_manifest(t->rec), "artifacts");
		const cJSON *uri = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(all, (int)i), "uri");
		if (cJSON_IsString(uri))
			cJSON_AddStringToObject(a, "uri", uri->valuestring);
		cJSON_AddItemToArray(arts, a);
	}
	if (t->rec)
		cJSON_AddStringToObject(o, "case_dir", irfw_case_dir(t->rec));
	return o;
}

/* ------------------------------------------------------------------ */
/* Running.                                                            */

/* A report step (tag, notify) done in an earlier run told what the
 * containment was then; when it has changed since (isolate failed then and
 * worked now), what it wrote is no longer true, so it runs again. */
static bool report_is_stale(irfw_target *t, const struct irfw_step *s)
{
	if (s->phase != IRFW_PHASE_REPORT)
		return false;
	const char *seen = irfw_json_str(irfw_case_record_get(t->rec, s->name, "containment_seen"), "state");
	const char *now = irfw_containment_name(irfw_target_containment(t, NULL));
	if (!seen || strcmp(seen, now) == 0)
		return false;
	irfw_log(t, IRFW_LOG_INFO, "done in an earlier run when the instance was %s; it is %s now: run again",
	         seen, now);
	return true;
}

static void run_step(struct irfw_target *t, struct irfw_step *s, struct irfw_step_result *res, bool check_only)
{
	t->cur = s;
	t->cur_res = res;
	res->ran = true;
	free(t->notes);
	t->notes = NULL;
	memset(&t->first_err, 0, sizeof(t->first_err));
	/* A dry run changes nothing and so must not mark steps done. */
	bool record = !check_only && t->rec && !t->run->dry_run;
	if (record && !t->run->no_resume && irfw_case_step_done(t->rec, s->name) && !report_is_stale(t, s)) {
		res->status = IRFW_OK;
		res->resumed = true;
		res->detail = irfw_strfmt("done in an earlier run of this case (%s); not repeated",
		                          irfw_case_step_status(t->rec, s->name));
		irfw_log(t, IRFW_LOG_INFO, "%s", res->detail);
		return;
	}
	/* `irfw check` and --dry-run promise to change nothing: only a
	 * plugin's own check is called, never its run. */
	bool preflight = check_only || t->run->dry_run;
	if (preflight && !s->mod->vt.check) {
		res->status = IRFW_SKIPPED;
		res->not_checked = true;
		res->detail = strdup("not checked (no preflight): the plugin has no check");
		irfw_log(t, IRFW_LOG_INFO, "%s", res->detail);
		return;
	}
	irfw_status (*fn)(irfw_target *, void *) = preflight ? s->mod->vt.check : s->mod->vt.run;
	if (record && irfw_case_step_begin(t->rec, s->name, s->mod->name) != 0)
		irfw_log(t, IRFW_LOG_WARN, "journal: %s", irfw_case_error(t->rec));
	irfw_log(t, IRFW_LOG_DEBUG, "start");
	double t0 = now_ms();
	irfw_status st = fn(t, s->state);
	res->ms = (long)(now_ms() - t0);
	if (st != IRFW_OK && st != IRFW_SKIPPED && st != IRFW_FAILED)
		st = IRFW_FAILED;
	res->status = st;
	if (st == IRFW_OK && t->notes && !res->detail)
		res->detail = strdup(t->notes);
	if (res->unchecked && st != IRFW_FAILED) {
		/* What the dry run could not ask AWS about. */
		struct irfw_buf b = {0};
		irfw_buf_printf(&b, "%s%snot checked (no DryRun in the API):", res->detail ? res->detail : "",
		                res->detail ? "; " : "");
		const cJSON *u;
		cJSON_ArrayForEach(u, res->unchecked) irfw_buf_printf(&b, " %s", u->valuestring);
		if (b.data) {
			free(res->detail);
			res->detail = b.data;
		}
	}
	else if (st != IRFW_OK && !res->detail)
		res->detail = strdup(st == IRFW_SKIPPED ? "skipped (no reason given)" : "failed (no reason given)");
	if (record && s->phase == IRFW_PHASE_REPORT && st != IRFW_FAILED) {
		cJSON *seen = cJSON_CreateObject();
		cJSON_AddStringToObject(seen, "state", irfw_containment_name(irfw_target_containment(t, NULL)));
		if (irfw_case_record(t->rec, s->name, "containment_seen", seen) != 0)
			irfw_log(t, IRFW_LOG_WARN, "case record: %s", irfw_case_error(t->rec));
	}
	if (record &&
	    irfw_case_step_end(t->rec, s->name, status_name(st), res->detail, res->aws_error, res->request_ids,
	                       res->ms) != 0)
		irfw_log(t, IRFW_LOG_WARN, "case record: %s", irfw_case_error(t->rec));
	if (st == IRFW_FAILED)
		irfw_log(t, IRFW_LOG_ERROR, "FAILED: %s%s%s%s%s%s", res->detail ? res->detail : "",
		         res->aws_error ? " [" : "", res->aws_error ? res->aws_error : "",
		         res->request_id ? ", request " : "", res->request_id ? res->request_id : "",
		         res->aws_error ? "]" : "");
	else
		irfw_log(t, IRFW_LOG_INFO, "%s%s%s", st == IRFW_OK ? "ok" : "skipped", res->detail ? ": " : "",
		         res->detail ? res->detail : "");
}

static void run_target(struct irfw_target *t, bool check_only)
{
	struct irfw_run *r = t->run;
	t->results = calloc(r->n_steps, sizeof(*t->results));
	if (!t->results)
		return;
	t->n_results = r->n_steps;
	for (size_t i = 0; i < r->n_steps; i++) {
		t->results[i].step = r->steps[i]->name;
		t->results[i].plugin = r->steps[i]->mod->name;
		t->results[i].phase = r->steps[i]->phase;
	}
	bool stopped = false;
	for (size_t i = 0; i < r->n_steps; i++) {
		struct irfw_step_result *res = &t->results[i];
		if (stopped)
			continue;
		run_step(t, r->steps[i], res, check_only);
		if (res->status == IRFW_FAILED && r->steps[i]->stop_on_error) {
			irfw_log(t, IRFW_LOG_WARN, "on_error = stop: the remaining steps are not run for this instance");
			stopped = true;
		}
	}
	t->cur = NULL;
	t->cur_res = NULL;
}

struct worker_arg {
	struct irfw_run *r;
	bool check_only;
};

static void *worker(void *arg)
{
	struct worker_arg *w = arg;
	struct irfw_run *r = w->r;
	for (;;) {
		pthread_mutex_lock(&r->memo_lock);
		size_t i = r->next_target++;
		pthread_mutex_unlock(&r->memo_lock);
		if (i >= r->batch.n)
			break;
		if (r->batch.targets[i]->found && !r->batch.targets[i]->skipped_state)
			run_target(r->batch.targets[i], w->check_only);
	}
	return NULL;
}

static const char *tag_value(const cJSON *inst, const char *key)
{
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(inst, "tagSet");
	const cJSON *tag;
	cJSON_ArrayForEach(tag, tags)
	{
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(tag, "key");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(tag, "value");
		if (cJSON_IsString(k) && cJSON_IsString(v) && strcmp(k->valuestring, key) == 0)
			return v->valuestring;
	}
	return NULL;
}

static struct irfw_target *find_target(struct irfw_run *r, const char *id)
{
	for (size_t i = 0; i < r->batch.n; i++)
		if (strcmp(r->batch.targets[i]->id, id) == 0)
			return r->batch.targets[i];
	return NULL;
}

/* DescribeInstances once for the whole batch.  The instance-id filter,
 * unlike InstanceId.N, answers for the ids that exist instead of failing
 * the whole call for one typo. */
static int describe_targets(struct irfw_run *r)
{
	const size_t chunk = 200;
	for (size_t start = 0; start < r->batch.n; start += chunk) {
		cJSON *p = cJSON_CreateObject();
		cJSON *filters = cJSON_AddArrayToObject(p, "Filter");
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "Name", "instance-id");
		cJSON *vals = cJSON_AddArrayToObject(f, "Value");
		for (size_t i = start; i < r->batch.n && i < start + chunk; i++)
			cJSON_AddItemToArray(vals, cJSON_CreateString(r->batch.targets[i]->id));
		cJSON_AddItemToArray(filters, f);
		char *token = NULL;
		do {
			if (token) {
				cJSON_DeleteItemFromObjectCaseSensitive(p, "NextToken");
				cJSON_AddStringToObject(p, "NextToken", token);
			}
			free(token);
			token = NULL;
			struct irfw_aws_error e;
			char rid[128];
			cJSON *res = NULL;
			if (irfw_aws_request(r->aws, r->resolved_region, "ec2", "DescribeInstances", p, false, &res, &e,
			                     rid) != 0) {
				irfw_logf(IRFW_LOG_ERROR, NULL, "DescribeInstances: %s: %s (request %s)", e.code, e.message,
				          e.request_id[0] ? e.request_id : "-");
				cJSON_Delete(p);
				return -1;
			}
			const cJSON *resv;
			cJSON_ArrayForEach(resv, cJSON_GetObjectItemCaseSensitive(res, "reservationSet"))
			{
				const cJSON *inst;
				cJSON_ArrayForEach(inst, cJSON_GetObjectItemCaseSensitive(resv, "instancesSet"))
				{
					const cJSON *id = cJSON_GetObjectItemCaseSensitive(inst, "instanceId");
					struct irfw_target *t = cJSON_IsString(id) ? find_target(r, id->valuestring) : NULL;
					if (!t || t->found)
						continue;
					t->found = true;
					t->instance = cJSON_Duplicate(inst, true);
					t->state = irfw_strdup(
					    irfw_json_str(cJSON_GetObjectItemCaseSensitive(inst, "instanceState"), "name"));
					const cJSON *vpc = cJSON_GetObjectItemCaseSensitive(inst, "vpcId");
					t->vpc_id = cJSON_IsString(vpc) ? strdup(vpc->valuestring) : NULL;
					t->name_tag = irfw_strdup(tag_value(inst, "Name"));
				}
			}
			const cJSON *nt = cJSON_GetObjectItemCaseSensitive(res, "nextToken");
			if (cJSON_IsString(nt) && *nt->valuestring)
				token = strdup(nt->valuestring);
			cJSON_Delete(res);
		} while (token);
		cJSON_Delete(p);
	}
	return 0;
}

static int resolve_case_id(struct irfw_run *r)
{
	const char *err = NULL;
	if (r->case_id) {
		r->case_id_resolved = strdup(r->case_id);
	} else {
		struct irfw_vars v = {.account_id = r->account_id, .region = r->resolved_region, .now = r->started};
		r->case_id_resolved = irfw_template_expand(irfw_run_global(r, "case_id"), &v, &err);
	}
	const char *c = r->case_id_resolved;
	bool ok = c && *c && strlen(c) <= 128 && strcmp(c, ".") != 0 && strcmp(c, "..") != 0;
	for (; ok && *c; c++)
		ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		     strchr("._-:", *c);
	if (!ok) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "case id '%s' %s; use letters, digits and . _ - : (at most 128)",
		          r->case_id_resolved ? r->case_id_resolved : "", err ? err : "is not valid");
		return -1;
	}
	return 0;
}

static const char *result_word(const struct irfw_step_result *res)
{
	if (!res->ran)
		return "not-run";
	if (res->not_checked)
		return "unchecked";
	return res->status == IRFW_OK ? "ok" : res->status == IRFW_SKIPPED ? "skipped" : "FAILED";
}

static void print_text(struct irfw_run *r)
{
	printf("\ncase %s%s\n", r->case_id_resolved ? r->case_id_resolved : "-", r->dry_run ? " (dry run)" : "");
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->found) {
			printf("%s  NOT FOUND in %s\n", t->id, r->resolved_region ? r->resolved_region : "?");
			continue;
		}
		char *name = irfw_escape_text(t->name_tag);
		if (t->skipped_state) {
			printf("%s%s%s%s  %s: not handled\n", t->id, name ? " (" : "", name ? name : "",
			       name ? ")" : "", t->state ? t->state : "gone");
			free(name);
			continue;
		}
		size_t ok = 0, sk = 0, fl = 0;
		for (size_t k = 0; k < t->n_results; k++)
			if (!t->results[k].ran)
				continue;
			else if (t->results[k].status == IRFW_OK)
				ok++;
			else if (t->results[k].status == IRFW_SKIPPED)
				sk++;
			else
				fl++;
		const char *cause;
		irfw_containment c = irfw_target_containment(t, &cause);
		char *ecause = irfw_escape_text(cause);
		printf("%s%s%s%s  %s%s%s  (%zu ok, %zu skipped, %zu failed)\n", t->id, name ? " (" : "",
		       name ? name : "", name ? ")" : "", containment_outcome(c), ecause && *ecause ? ": " : "",
		       ecause ? ecause : "", ok, sk, fl);
		free(ecause);
		free(name);
		for (size_t k = 0; k < t->n_results; k++) {
			const struct irfw_step_result *res = &t->results[k];
			char *detail = irfw_escape_text(res->detail);
			char *aerr = irfw_escape_text(res->aws_error);
			printf("  %-8s %-14s %s%s%s%s%s%s\n", result_word(res), res->step, detail ? detail : "",
			       aerr ? " [" : "", aerr ? aerr : "", res->request_id ? ", request " : "",
			       res->request_id ? res->request_id : "", aerr ? "]" : "");
			free(detail);
			free(aerr);
		}
		if (t->rec)
			printf("  evidence: %s\n", irfw_case_dir(t->rec));
	}
}

static void print_json(struct irfw_run *r)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "case_id", r->case_id_resolved ? r->case_id_resolved : "");
	if (r->account_id)
		cJSON_AddStringToObject(doc, "account_id", r->account_id);
	if (r->resolved_region)
		cJSON_AddStringToObject(doc, "region", r->resolved_region);
	cJSON_AddBoolToObject(doc, "dry_run", r->dry_run);
	cJSON *arr = cJSON_AddArrayToObject(doc, "instances");
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		cJSON *it = cJSON_CreateObject();
		cJSON_AddStringToObject(it, "instance_id", t->id);
		cJSON_AddBoolToObject(it, "found", t->found);
		if (t->state)
			cJSON_AddStringToObject(it, "state", t->state);
		if (t->found)
			cJSON_AddBoolToObject(it, "handled", !t->skipped_state);
		if (t->found && !t->skipped_state)
			cJSON_AddItemToObject(it, "containment", containment_json(t));
		if (t->rec) {
			cJSON_AddStringToObject(it, "case_dir", irfw_case_dir(t->rec));
			cJSON_AddStringToObject(it, "manifest", irfw_case_manifest_path(t->rec));
		}
		cJSON *steps = cJSON_AddArrayToObject(it, "steps");
		for (size_t k = 0; k < t->n_results; k++)
			cJSON_AddItemToArray(steps, result_json(&t->results[k]));
		cJSON_AddItemToArray(arr, it);
	}
	char *out = cJSON_Print(doc);
	if (out)
		puts(out);
	free(out);
	cJSON_Delete(doc);
}

/* Every step's prepare, before any change.  Returns 0, 1 (an error) or 2
 * (the operator's input is wrong: irfw_step_error was called). */
static int call_prepare(struct irfw_run *r)
{
	int rc = 0;
	r->preparing = true;
	for (size_t i = 0; i < r->n_steps && rc == 0; i++) {
		struct irfw_step *s = r->steps[i];
		if (!s->mod->vt.prepare)
			continue;
		for (size_t k = 0; k < r->batch.n; k++)
			r->batch.targets[k]->cur = s;
		if (s->mod->vt.prepare(&r->batch, s->state) != 0 || r->prepare_usage_error) {
			irfw_logf(IRFW_LOG_ERROR, s->name, "preparing the batch failed; nothing was changed");
			rc = r->prepare_usage_error ? IRFW_RUN_USAGE : IRFW_RUN_STEP_FAILED;
		}
	}
	for (size_t k = 0; k < r->batch.n; k++)
		r->batch.targets[k]->cur = NULL;
	r->preparing = false;
	return rc;
}

/* A file holding secrets that group or others can read: say so (a warning,
 * not a refusal: the file is the site's business, the warning ours). */
static void warn_if_readable(const char *path, const char *what)
{
	struct stat st;
	if (path && stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		irfw_logf(IRFW_LOG_WARN, NULL, "%s %s is readable by %s (mode %04o): chmod go-r %s", what, path,
		          (st.st_mode & S_IROTH) ? "anyone" : "its group", (unsigned)(st.st_mode & 07777), path);
}

/* The site file, when one of its steps holds a secret value inline. */
static void warn_readable_secrets(struct irfw_run *r)
{
	for (size_t i = 0; i < r->n_steps; i++) {
		const struct irfw_step *s = r->steps[i];
		for (const struct irfw_option *o = s->mod->vt.options; o && o->name; o++)
			if ((o->flags & IRFW_OPT_SECRET) && irfw_section_find(s->sec, o->name)) {
				char *what = irfw_strfmt("the site file, holding [%s] %s,", s->name, o->name);
				warn_if_readable(r->cfg.path, what ? what : "the site file");
				free(what);
				return;
			}
	}
}

static long global_long(const struct irfw_run *r, const char *key)
{
	long v;
	const char *s = irfw_run_global(r, key);
	return s && irfw_parse_long(s, &v) && v > 0 ? v : 0;
}

/* The AWS client, configured from the command line and [irfw]. */
static int aws_client(struct irfw_run *r, char *err, size_t errlen)
{
	bool path_style = false;
	const char *ps = irfw_run_global(r, "s3_path_style");
	struct irfw_aws_config c = {
	    .region = irfw_run_global(r, "region"),
	    .profile = irfw_run_global(r, "profile"),
	    .endpoint_url = irfw_run_global(r, "endpoint_url"),
	    .ca_file = irfw_run_global(r, "ca_file"),
	    .connect_timeout = global_long(r, "connect_timeout"),
	    .timeout = global_long(r, "timeout"),
	    .max_attempts = (int)global_long(r, "max_attempts"),
	    .s3_path_style = ps && irfw_parse_bool(ps, &path_style) && path_style,
	};
	char key[64];
	for (size_t i = 0; i < irfw_ratelimit_class_count() && i < sizeof(c.ratelimit) / sizeof(c.ratelimit[0]); i++) {
		snprintf(key, sizeof(key), "ratelimit.%s", irfw_ratelimit_class_name(i));
		const struct irfw_kv_line *kv = irfw_section_find(r->global, key);
		c.ratelimit[i] = kv ? kv->value : NULL;
	}
	return irfw_aws_new(&c, &r->aws, err, errlen);
}

int irfw_run_execute(struct irfw_run *r, bool json, bool check_only)
{
	char err[1024] = "";
	int status = IRFW_RUN_OK;
	if (aws_client(r, err, sizeof(err)) != 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "%s", err);
		return IRFW_RUN_USAGE;
	}
	r->resolved_region = strdup(irfw_aws_region(r->aws));
	warn_readable_secrets(r);
	char *creds = irfw_shared_credentials_path();
	warn_if_readable(creds, "the AWS credentials file");
	free(creds);

	/* Who is acting: the account keys names and rate limits, the ARN goes
	 * into the case record. */
	struct irfw_aws_error e;
	char rid[128];
	cJSON *who = NULL;
	if (irfw_aws_request(r->aws, r->resolved_region, "sts", "GetCallerIdentity", NULL, false, &who, &e, rid) != 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "sts:GetCallerIdentity: %s: %s (request %s)", e.code, e.message,
		          e.request_id[0] ? e.request_id : "-");
		return e.http_status == 403 || e.http_status == 401 ? IRFW_RUN_USAGE : IRFW_RUN_STEP_FAILED;
	}
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(who, "GetCallerIdentityResult");
	const cJSON *acct = cJSON_GetObjectItemCaseSensitive(res, "Account");
	const cJSON *arn = cJSON_GetObjectItemCaseSensitive(res, "Arn");
	r->account_id = cJSON_IsString(acct) ? strdup(acct->valuestring) : NULL;
	r->caller_arn = cJSON_IsString(arn) ? strdup(arn->valuestring) : NULL;
	cJSON_Delete(who);
	if (r->account_id)
		irfw_aws_set_account(r->aws, r->account_id);
	if (!r->account_id) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "sts:GetCallerIdentity returned no account id");
		return IRFW_RUN_STEP_FAILED;
	}
	irfw_logf(IRFW_LOG_INFO, NULL, "acting as %s in account %s, region %s", r->caller_arn ? r->caller_arn : "?",
	          r->account_id, r->resolved_region);
	if (check_only && r->batch.n == 0) {
		printf("configuration, plugins and credentials are fine (%zu steps)\n", r->n_steps);
		return IRFW_RUN_OK;
	}

	if (resolve_case_id(r) != 0)
		return IRFW_RUN_USAGE;
	if (describe_targets(r) != 0)
		return IRFW_RUN_STEP_FAILED;
	size_t found = 0;
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->found) {
			irfw_logf(IRFW_LOG_ERROR, t->id, "instance not found in account %s, region %s", r->account_id,
			          r->resolved_region);
			status = IRFW_RUN_NOT_HANDLED;
			continue;
		}
		if (t->state && (strcmp(t->state, "terminated") == 0 || strcmp(t->state, "shutting-down") == 0)) {
			/* Nothing left to contain; its volumes are going or gone.
			 * Steps never see it: no instance, no VPC. */
			irfw_logf(IRFW_LOG_ERROR, t->id, "instance is %s: nothing to contain or preserve; not handled",
			          t->state);
			t->skipped_state = true;
			cJSON_Delete(t->instance);
			t->instance = NULL;
			free(t->vpc_id);
			t->vpc_id = NULL;
			status = IRFW_RUN_NOT_HANDLED;
			continue;
		}
		found++;
	}
	/* A dry run changes nothing, not even the evidence folder: what its
	 * steps read is dropped, as for `irfw check`. */
	if (!check_only && !r->dry_run) {
		const char *ev = irfw_run_global(r, "evidence_dir");
		cJSON *info = cJSON_CreateObject();
		char ts[32];
		irfw_iso_now(ts);
		cJSON_AddStringToObject(info, "tool", "irfw");
		cJSON_AddStringToObject(info, "version", PACKAGE_VERSION);
		cJSON_AddStringToObject(info, "started", ts);
		cJSON_AddStringToObject(info, "caller_arn", r->caller_arn ? r->caller_arn : "");
		cJSON_AddStringToObject(info, "account_id", r->account_id);
		cJSON_AddStringToObject(info, "region", r->resolved_region);
		cJSON_AddBoolToObject(info, "dry_run", r->dry_run);
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		cJSON_AddStringToObject(info, "host", host);
		cJSON *steps = cJSON_AddArrayToObject(info, "pipeline");
		for (size_t i = 0; i < r->n_steps; i++)
			cJSON_AddItemToArray(steps, cJSON_CreateString(r->steps[i]->name));
		for (size_t i = 0; i < r->batch.n; i++) {
			struct irfw_target *t = r->batch.targets[i];
			if (!t->found || t->skipped_state)
				continue;
			if (irfw_case_open(ev, r->case_id_resolved, t->id, info, &t->rec, err, sizeof(err)) != 0) {
				/* Containment goes first and alone: a full or unwritable
				 * evidence folder must not keep the instance open.  The
				 * steps that need the record say so when they fail. */
				irfw_logf(IRFW_LOG_WARN, t->id,
				          "no case record: %s; containment goes on, but evidence and records of this "
				          "instance cannot be kept (free the folder or give --evidence-dir, then run "
				          "again with --case-id %s to complete the case)",
				          err, r->case_id_resolved);
				t->rec = NULL;
				continue;
			}
			cont_load(t);
			/* The instance as found is the first piece of evidence. */
			char *desc = cJSON_Print(t->instance);
			if (desc) {
				irfw_case_artifact_add(t->rec, "core", "describe-instance.json", "application/json", desc,
				                       strlen(desc));
				free(desc);
			}
		}
		cJSON_Delete(info);
		irfw_logf(IRFW_LOG_INFO, NULL, "case %s: %zu instance(s), %zu step(s) each", r->case_id_resolved,
		          found, r->n_steps);
	} else if (r->dry_run && !check_only) {
		irfw_logf(IRFW_LOG_INFO, NULL,
		          "dry run of case %s: %zu instance(s), %zu step(s) each; nothing is changed and no case "
		          "record is written",
		          r->case_id_resolved, found, r->n_steps);
	}
	if (found) {
		int prc = call_prepare(r);
		if (prc != 0)
			return prc;
	}

	size_t n_threads = (size_t)r->jobs < found ? (size_t)r->jobs : found;
	pthread_t *th = calloc(n_threads ? n_threads : 1, sizeof(*th));
	struct worker_arg wa = {.r = r, .check_only = check_only};
	size_t started = 0;
	for (size_t i = 0; th && i < n_threads; i++)
		if (pthread_create(&th[i], NULL, worker, &wa) == 0)
			started++;
	if (started == 0 && found)
		worker(&wa);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);

	/* The most important news decides the exit status: an instance left
	 * open (4), then a failed step (1), then an instance not handled (3). */
	bool failed = false, open = false;
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		for (size_t k = 0; k < t->n_results; k++)
			if (t->results[k].ran && t->results[k].status == IRFW_FAILED)
				failed = true;
		if (t->found && !t->skipped_state && !r->dry_run && !check_only) {
			irfw_containment c = irfw_target_containment(t, NULL);
			open = open || c == IRFW_PARTIALLY_CONTAINED || c == IRFW_NOT_CONTAINED;
		}
	}
	if (open)
		status = IRFW_RUN_NOT_CONTAINED;
	else if (failed)
		status = IRFW_RUN_STEP_FAILED;
	if (json)
		print_json(r);
	else
		print_text(r);
	return status;
}

/* ------------------------------------------------------------------ */
/* Plugins listing and documentation.                                  */

static void report_refusal(const char *what, void *ctx)
{
	int *bad = ctx;
	irfw_logf(IRFW_LOG_ERROR, NULL, "refused: %s", what);
	(*bad)++;
}

int irfw_plugins_list(struct irfw_run *r)
{
	int bad = 0;
	irfw_loader_scan(&r->loader, report_refusal, &bad);
	printf("%-14s %-8s %s\n", "PLUGIN", "VERSION", "SUMMARY");
	for (size_t i = 0; i < r->loader.n_mods; i++) {
		const struct irfw_module *m = r->loader.mods[i];
		printf("%-14s %-8s %s\n", m->name, m->vt.version ? m->vt.version : "-", m->vt.summary ? m->vt.summary : "");
	}
	printf("\nSearch path:");
	for (size_t d = 0; d < r->loader.n_dirs; d++)
		printf(" %s", r->loader.dirs[d]);
	printf("\n");
	return bad ? IRFW_RUN_USAGE : IRFW_RUN_OK;
}

static const char *type_name(irfw_opt_type t)
{
	static const char *names[] = {"string", "bool", "int", "list", "enum"};
	return (unsigned)t <= IRFW_OPT_ENUM ? names[t] : "?";
}

static void describe_options(const struct irfw_option *opts, bool man)
{
	for (const struct irfw_option *o = opts; o && o->name; o++) {
		const char *def = (o->flags & IRFW_OPT_SECRET) && o->def ? "(secret)" : o->def;
		if (man) {
			printf(".TP\n.B %s\n(%s%s%s%s%s%s)\n%s\n", o->name, type_name(o->type),
			       o->type == IRFW_OPT_ENUM ? ": " : "", o->type == IRFW_OPT_ENUM ? o->choices : "",
			       (o->flags & IRFW_OPT_REQUIRED) ? ", required" : "", def ? ", default: " : "", def ? def : "",
			       o->help ? o->help : "");
		} else {
			printf("  %s = <%s%s%s>%s%s%s\n", o->name, type_name(o->type), o->type == IRFW_OPT_ENUM ? " " : "",
			       o->type == IRFW_OPT_ENUM ? o->choices : "", (o->flags & IRFW_OPT_REQUIRED) ? "  (required)" : "",
			       def ? "  default: " : "", def ? def : "");
			printf("      %s\n", o->help ? o->help : "");
		}
	}
}

/* `text` as "; " comment lines of at most 76 columns; a blank line of
 * the text (a paragraph break) becomes a lone ";". */
static void ini_comment(const char *text)
{
	if (!text)
		return;
	for (const char *p = text; *p;) {
		if (*p == '\n') {
			if (p[1] == '\n')
				printf(";\n");
			p += p[1] == '\n' ? 2 : 1;
			continue;
		}
		const char *end = p;
		const char *brk = NULL;
		while (*end && *end != '\n' && end - p < 74) {
			if (*end == ' ')
				brk = end;
			end++;
		}
		if (*end && *end != '\n' && *end != ' ' && brk)
			end = brk;
		int n = (int)(end - p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		printf("; %.*s\n", n, p);
		p = end;
		while (*p == ' ')
			p++;
	}
}

/* A section of the sample site file: the plugin's description and each
 * key's help as comments, each key with its default, commented out so
 * that a later version's defaults apply to a site that did not choose. */
static void describe_ini(const char *section, const char *summary, const char *description,
                         const struct irfw_option *opts)
{
	printf("[%s]\n", section);
	if (summary) {
		char *line = irfw_strfmt("%s: %s.", section, summary);
		ini_comment(line);
		free(line);
	}
	if (description) {
		printf(";\n");
		ini_comment(description);
	}
	for (const struct irfw_option *o = opts; o && o->name; o++) {
		printf("\n");
		struct irfw_buf b = {0};
		irfw_buf_printf(&b, "%s", o->help ? o->help : "");
		if (o->type == IRFW_OPT_ENUM)
			irfw_buf_printf(&b, " One of: %s.", o->choices);
		if (o->flags & IRFW_OPT_REQUIRED)
			irfw_buf_puts(&b, " Required.");
		char *help = irfw_buf_take(&b);
		ini_comment(help);
		free(help);
		if (o->flags & IRFW_OPT_REQUIRED)
			printf("%s =\n", o->name);
		else if (o->def && *o->def && !(o->flags & IRFW_OPT_SECRET))
			printf(";%s = %s\n", o->name, o->def);
		else
			printf(";%s =\n", o->name);
	}
}

int irfw_plugins_describe(struct irfw_run *r, const char *name, int format)
{
	bool man = format == IRFW_DESCRIBE_MAN;
	if (strcmp(name, "irfw") == 0) {
		if (format == IRFW_DESCRIBE_INI) {
			describe_ini("irfw", "the global settings", NULL, irfw_global_options());
			return IRFW_RUN_OK;
		}
		printf(man ? ".SS [irfw]\n" : "[irfw]  global settings\n\n");
		describe_options(irfw_global_options(), man);
		return IRFW_RUN_OK;
	}
	char err[1024];
	struct irfw_module *m = irfw_loader_get(&r->loader, name, err, sizeof(err));
	if (!m) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "%s", err);
		return IRFW_RUN_USAGE;
	}
	if (format == IRFW_DESCRIBE_INI) {
		describe_ini(m->name, m->vt.summary, m->vt.description, m->vt.options);
		return IRFW_RUN_OK;
	}
	if (man) {
		printf(".SS [%s] \\(em %s\n", m->name, m->vt.summary ? m->vt.summary : "");
		/* Paragraphs become .PP; a line starting with '.' must not be
		 * taken for a roff request. */
		for (const char *p = m->vt.description; p && *p;) {
			const char *nl = strstr(p, "\n\n");
			size_t n = nl ? (size_t)(nl - p) : strlen(p);
			printf(".PP\n%s%.*s\n", *p == '.' ? "\\&" : "", (int)n, p);
			p = nl ? nl + 2 : p + n;
		}
	} else {
		printf("%s %s - %s\nfile: %s\n\n", m->name, m->vt.version ? m->vt.version : "",
		       m->vt.summary ? m->vt.summary : "", m->path);
		if (m->vt.description)
			printf("%s\n\n", m->vt.description);
		printf("[%s]\n", m->name);
	}
	describe_options(m->vt.options, man);
	describe_options(irfw_step_options, man);
	return IRFW_RUN_OK;
}

/* ------------------------------------------------------------------ */

void irfw_run_free(struct irfw_run *r)
{
	for (size_t i = 0; i < r->n_steps; i++) {
		struct irfw_step *s = r->steps[i];
		if (s->initialised && s->mod->vt.fini)
			s->mod->vt.fini(s->state);
		free(s->name);
		free(s);
	}
	free(r->steps);
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		for (size_t k = 0; k < t->n_results; k++) {
			free(t->results[k].detail);
			free(t->results[k].aws_error);
			free(t->results[k].request_id);
			cJSON_Delete(t->results[k].request_ids);
			cJSON_Delete(t->results[k].unchecked);
		}
		free(t->results);
		for (size_t k = 0; k < t->n_facts; k++) {
			free(t->facts[k].key);
			free(t->facts[k].value);
		}
		free(t->facts);
		if (t->rec)
			irfw_case_close(t->rec);
		cJSON_Delete(t->instance);
		free(t->vpc_id);
		free(t->name_tag);
		free(t->notes);
		free(t->state);
		for (size_t k = 0; k < t->n_cont; k++) {
			free(t->cont[k].step);
			free(t->cont[k].cause);
		}
		free(t->cont);
		free(t->cont_cause);
		free(t->id);
		free(t);
	}
	free(r->batch.targets);
	for (size_t i = 0; i < r->n_memo; i++) {
		free(r->memo[i].key);
		free(r->memo[i].value);
	}
	free(r->memo);
	if (r->aws)
		irfw_aws_free(r->aws);
	/* Modules are closed after every step's fini has run. */
	char **dirs = r->loader.dirs;
	irfw_loader_fini(&r->loader);
	irfw_strv_free(dirs);
	irfw_config_free(&r->cfg);
	free(r->resolved_region);
	free(r->account_id);
	free(r->caller_arn);
	free(r->case_id_resolved);
	free(r->evidence_dir);
	pthread_mutex_destroy(&r->memo_lock);
	pthread_cond_destroy(&r->memo_cond);
	irfw_log_clear_secrets();
}
