/*
 * run.c - a run: the configuration and the plugins loaded and checked, the
 * instances described once (DescribeInstances), the case records opened,
 * every step prepared, the pipeline scheduled, and the outcome decided.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h> /* malloc_trim */
#endif

#include "casestore.h"
#include "run.h"
#include "containment.h"
#include "report.h"
#include "scheduler.h"
#include "events.h"
#include "fleet.h"
#include "policy.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/names.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

#ifndef IRFW_PLUGINDIR
#define IRFW_PLUGINDIR "/usr/lib/irfw/plugins"
#endif

/* ------------------------------------------------------------------ */
/* Globals.                                                            */

const char *irfw_run_global(const struct irfw_run *r, const char *key)
{
	struct {
		const char *key, *val;
	} cli[] = {{"region", r->region}, {"profile", r->profile}, {"bucket", r->bucket},
	           {"topic", r->topic},   {"sgid", r->sgid},       {"evidence_dir", r->evidence_dir_opt}};
	for (size_t i = 0; i < sizeof(cli) / sizeof(cli[0]); i++)
		if (cli[i].val && strcmp(cli[i].key, key) == 0)
			return cli[i].val;
	if (strcmp(key, "region") == 0 && r->resolved_region)
		return r->resolved_region;
	const struct irfw_kv_line *kv = irfw_section_find(r->global, key);
	if (kv)
		return kv->value;
	const struct irfw_option *o = irfw_option_find(irfw_global_options(), key);
	if (o && !o->def && strcmp(key, "evidence_dir") == 0)
		return IRFW_CASESDIR; /* where `make install` or the package made it */
	return o ? o->def : NULL;
}

const char *irfw_global_get(const irfw_step *step, const char *key)
{
	return irfw_run_global(step->run, key);
}

/* ------------------------------------------------------------------ */
/* Interruption: the signal handler's side.  Only lock-free atomics and
 * write(2) here: both are async-signal-safe. */

static atomic_int sig_first, sig_count;
static atomic_int wake_fd[2] = {-1, -1};

void irfw_run_interrupt(int sig)
{
	int saved = errno;
	int none = 0;
	atomic_compare_exchange_strong(&sig_first, &none, sig);
	if (atomic_fetch_add(&sig_count, 1) >= 1)
		irfw_aws_abandon();
	int fd = atomic_load(&wake_fd[1]);
	if (fd >= 0) {
		char c = 1;
		ssize_t n = write(fd, &c, 1);
		(void)n; /* a full pipe already holds a wake-up */
	}
	errno = saved;
}

int irfw_run_interrupt_signal(void)
{
	return atomic_load(&sig_first);
}

int irfw_run_interrupt_count(void)
{
	return atomic_load(&sig_count);
}

int irfw_run_interrupt_pipe(void)
{
	if (atomic_load(&wake_fd[0]) >= 0)
		return 0;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	atomic_store(&wake_fd[0], fds[0]);
	atomic_store(&wake_fd[1], fds[1]);
	return 0;
}

void irfw_run_interrupt_wake(void)
{
	int fd = atomic_load(&wake_fd[1]);
	char c = 0;
	if (fd >= 0) {
		ssize_t n = write(fd, &c, 1);
		(void)n; /* full: a wake-up is pending already */
	}
}

int irfw_run_interrupt_fd(void)
{
	return atomic_load(&wake_fd[0]);
}

const char *irfw_signal_name(int sig, char buf[16])
{
	if (sig == SIGINT)
		return "SIGINT";
	if (sig == SIGTERM)
		return "SIGTERM";
	snprintf(buf, 16, "signal %d", sig);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Loading.                                                            */

/* A run id: the start time (UTC) and 48 random bits, unique enough to
 * tell the runs of one case apart ("20261128T031500Z-4f3a9c01d2e7"). */
static void make_run_id(struct irfw_run *r)
{
	unsigned char rnd[6] = {0};
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		unsigned long x =
		    (unsigned long)r->started ^ ((unsigned long)getpid() << 16) ^ (unsigned long)(uintptr_t)r;
		for (size_t i = 0; i < sizeof(rnd); i++, x >>= 8)
			rnd[i] = (unsigned char)x;
	}
	struct tm tm;
	char ts[20] = "";
	if (gmtime_r(&r->started, &tm))
		strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(r->run_id, sizeof(r->run_id), "%s-%02x%02x%02x%02x%02x%02x", ts, rnd[0], rnd[1], rnd[2],
	         rnd[3], rnd[4], rnd[5]);
}

int irfw_run_init(struct irfw_run *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->memo_lock, NULL);
	pthread_cond_init(&r->memo_cond, NULL);
	pthread_mutex_init(&r->prepare_lock, NULL);
	r->started = time(NULL);
	r->batch.run = r;
	make_run_id(r);
	return 0;
}

const char *irfw_run_id(const irfw_target *t)
{
	return t->run->run_id;
}

bool irfw_step_repeated(const irfw_target *t)
{
	return t->repeating;
}

bool irfw_step_done_before(const struct irfw_target *t, const struct irfw_step *s)
{
	if (!t->rec || !s || t->run->dry_run || t->run->no_resume)
		return false;
	irfw_prepare_enter(t->run); /* another prepare may be recording */
	bool done = irfw_case_step_done(t->rec, s->name) && !irfw_case_step_released(t->rec, s->name);
	/* A step that verified containment is never taken as done: what AWS
	 * showed then need not be what it shows now (an interface put back in
	 * its groups by hand, one attached since), and nothing may say
	 * contained unread.  It runs again, reads AWS back, and puts right
	 * what is no longer in place. */
	if (done && irfw_case_record_get(t->rec, s->name, "containment"))
		done = false;
	irfw_prepare_leave(t->run);
	return done;
}

bool irfw_step_resumed(const irfw_target *t)
{
	return irfw_step_done_before(t, irfw_target_cur(t));
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
		irfw_logf(IRFW_LOG_ERROR, NULL, "... and %zu more configuration errors",
		          cfg->n_errors - shown);
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
		irfw_config_error(cfg, line, "[irfw] pipeline step '%s' is not a valid name ([a-z0-9_]+)",
		                  name);
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
	const struct irfw_kv_line *opt = irfw_section_find(s->sec, "optional");
	bool optional = false;
	if (opt && irfw_parse_bool(opt->value, &optional) && optional && irfw_valid_module_name(modname) &&
	    !irfw_loader_exists(&r->loader, modname)) {
		/* A distribution ships some plugins as packages of their own: the
		 * site file may name them all, and runs with those installed. */
		char pkg[96];
		snprintf(pkg, sizeof(pkg), "irfw-plugin-%s", modname);
		for (char *c = pkg; *c; c++)
			if (*c == '_')
				*c = '-';
		irfw_logf(
		    IRFW_LOG_WARN, name,
		    "optional step left out: plugin %s is not installed (Debian and Ubuntu: apt install %s)",
		    modname, pkg);
		free(s->name);
		free(s);
		r->n_steps--;
		return 0;
	}
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
				                  "step '%s' has no [%s] section with keys, and its plugin "
				                  "%s requires '%s'",
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
		s->phase = strcmp(ph->value, "contain") == 0  ? IRFW_PHASE_CONTAIN
		           : strcmp(ph->value, "report") == 0 ? IRFW_PHASE_REPORT
		                                              : IRFW_PHASE_PRESERVE;
	return 0;
}

const char *irfw_phase_name(irfw_phase p)
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
	    {"sgid", "-g/--sgid", "is not a security group id (sg- and 8 or 17 hex digits)",
	     irfw_valid_sg_id},
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
			irfw_logf(IRFW_LOG_ERROR, NULL, "%s '%s' %s", checks[i].flag, e ? e : "",
			          checks[i].what);
			free(e);
			r->usage_error = true;
		}
		const struct irfw_kv_line *kv = irfw_section_find(r->global, checks[i].key);
		/* A template is checked when it is expanded. */
		if (!cli[i] && kv && irfw_template_check_vars(kv->value, no_vars) == NULL &&
		    !checks[i].valid(kv->value))
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
			                  "[irfw] %s = %s: expected CAPACITY/REFILL_PER_SECOND, e.g. 50/5",
			                  key, kv->value);
	}
	/* The case id is made before any instance is known. */
	static const char *const case_vars[] = {"account_id", "region", "date", "time", NULL};
	const struct irfw_kv_line *cid = irfw_section_find(r->global, "case_id");
	const char *why = cid ? irfw_template_check_vars(cid->value, case_vars) : NULL;
	if (why)
		irfw_config_error(&r->cfg, cid->line, "[irfw] case_id = %s: %s", cid->value, why);
}

/* Whether a and b (short names) are at most `max` single-letter edits
 * apart (Levenshtein). */
static bool edit_distance_at_most(const char *a, const char *b, size_t max)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > max)
		return false;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] <= max;
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
		irfw_config_error(cfg, 0,
		                  "no [irfw] section (it holds the pipeline and the global settings)");
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
			irfw_config_error(cfg, pl->line, "--only %s: no such step in the pipeline (%s)", *p,
			                  pl->value);
	for (char **p = r->skip; p && *p; p++)
		if (!in_list(names, *p))
			irfw_config_error(cfg, pl->line, "--skip %s: no such step in the pipeline (%s)", *p,
			                  pl->value);
	for (size_t i = 0; i < n; i++) {
		if ((r->only && !in_list(r->only, names[i])) || in_list(r->skip, names[i]))
			continue;
		add_step(r, names[i], pl->line);
	}
	/* A section nobody reads is most often a typo of a step's name, and
	 * that step then runs with its defaults: a warning when the section is
	 * a letter or two from a step's name (one for a short name), else only
	 * a debug line (a site may keep the section of a step it took out of
	 * the pipeline). */
	for (size_t i = 0; i < cfg->n_sections; i++) {
		const char *sn = cfg->sections[i].name;
		if (strcmp(sn, "irfw") == 0 || in_list(names, sn))
			continue;
		const char *near = NULL;
		for (size_t k = 0; k < n && !near; k++)
			if (edit_distance_at_most(sn, names[k], strlen(names[k]) > 4 ? 2 : 1))
				near = names[k];
		if (near)
			irfw_logf(IRFW_LOG_WARN, NULL,
			          "%s:%d: section [%s] is not in the pipeline and is ignored: did you mean "
			          "[%s]? (step %s runs without it)",
			          cfg->path, cfg->sections[i].line, sn, near, near);
		else
			irfw_logf(IRFW_LOG_DEBUG, NULL, "%s:%d: section [%s] is not in the pipeline; ignored",
			          cfg->path, cfg->sections[i].line, sn);
	}
	irfw_strv_free(names);
	if (cfg->n_errors)
		goto bad;
	for (size_t i = 0; i < r->n_steps; i++) {
		struct irfw_step *s = r->steps[i];
		if (s->mod->vt.init && s->mod->vt.init(s, &s->state) != 0) {
			s->init_failed = true;
			if (!cfg->n_errors)
				irfw_config_error(cfg, s->sec ? s->sec->line : 0,
				                  "step '%s' refused its configuration", s->name);
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
		          "'%s' is not an instance id (expected i- followed by 8 or 17 lowercase hex digits)",
		          id);
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
	t->index = r->batch.n;
	r->batch.targets[r->batch.n++] = t;
	return IRFW_RUN_OK;
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
/* Take the instances of one DescribeInstances reply into their targets. */
static void take_instances(struct irfw_run *r, const cJSON *res)
{
	const cJSON *resv, *inst;
	cJSON_ArrayForEach(resv, cJSON_GetObjectItemCaseSensitive(res, "reservationSet"))
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

/* Every page of DescribeInstances with `p`.  0, 1 (error code in e), or -1. */
static int describe_pages(struct irfw_run *r, cJSON *p, struct irfw_aws_error *e)
{
	char *token = NULL;
	for (int page = 0; page < 1000; page++) {
		cJSON_DeleteItemFromObjectCaseSensitive(p, "NextToken");
		if (token)
			cJSON_AddStringToObject(p, "NextToken", token);
		free(token);
		token = NULL;
		char rid[128];
		cJSON *res = NULL;
		if (irfw_aws_request(r->aws, r->resolved_region, "ec2", "DescribeInstances", p, false, &res,
		                     e, rid) != 0)
			return 1;
		take_instances(r, res);
		const char *nt = irfw_json_str(res, "nextToken");
		if (nt && *nt)
			token = strdup(nt);
		cJSON_Delete(res);
		if (!token)
			return 0;
	}
	free(token);
	return 0;
}

/* The ids an InvalidInstanceID.NotFound message names ("The instance IDs
 * 'i-1, i-2' do not exist"), removed from `ids`; how many were. */
static int drop_missing(cJSON *ids, const char *message)
{
	int dropped = 0;
	for (int i = cJSON_GetArraySize(ids) - 1; i >= 0; i--) {
		const char *id = cJSON_GetArrayItem(ids, i)->valuestring;
		const char *hit = strstr(message, id);
		size_t n = strlen(id);
		if (hit && !((hit[n] >= '0' && hit[n] <= '9') || (hit[n] >= 'a' && hit[n] <= 'f'))) {
			cJSON_DeleteItemFromArray(ids, i);
			dropped++;
		}
	}
	return dropped;
}

/* DescribeInstances for the batch: one call per 1000 ids (InstanceId.N).
 * AWS fails such a call as a whole for an id that does not exist, naming
 * it: the call is made again without it.  When the message names none,
 * the instance-id filter (200 values a call), which answers for the ids
 * that exist, finds the rest. */
/* DescribeInstances of every target.  -1 with *failed set (not logged:
 * the caller says it, after a GetCallerIdentity on its way has spoken). */
static int describe_targets(struct irfw_run *r, struct irfw_aws_error *failed)
{
	const size_t chunk = 1000, filter_chunk = 200;
	for (size_t start = 0; start < r->batch.n; start += chunk) {
		cJSON *p = cJSON_CreateObject();
		cJSON *ids = cJSON_AddArrayToObject(p, "InstanceId");
		for (size_t i = start; i < r->batch.n && i < start + chunk; i++)
			cJSON_AddItemToArray(ids, cJSON_CreateString(r->batch.targets[i]->id));
		struct irfw_aws_error e;
		int rc, tries = 0;
		/* AWS names every missing id at once; an emulator may name one a
		 * call: after a few, the filter is cheaper. */
		while ((rc = describe_pages(r, p, &e)) == 1 &&
		       strcmp(e.code, "InvalidInstanceID.NotFound") == 0 && ++tries <= 3 &&
		       drop_missing(ids, e.message) > 0 && cJSON_GetArraySize(ids) > 0)
			;
		if (rc == 1 && cJSON_GetArraySize(ids) == 0)
			rc = 0; /* none of them exists */
		bool fallback = rc == 1 && strcmp(e.code, "InvalidInstanceID.NotFound") == 0;
		cJSON_Delete(p);
		if (rc == 1 && !fallback) {
			*failed = e;
			return -1;
		}
		for (size_t f = start; fallback && f < r->batch.n && f < start + chunk; f += filter_chunk) {
			cJSON *q = cJSON_CreateObject();
			cJSON *flt = cJSON_CreateObject();
			cJSON_AddStringToObject(flt, "Name", "instance-id");
			cJSON *vals = cJSON_AddArrayToObject(flt, "Value");
			for (size_t i = f; i < r->batch.n && i < f + filter_chunk && i < start + chunk; i++)
				if (!r->batch.targets[i]->found)
					cJSON_AddItemToArray(vals,
					                     cJSON_CreateString(r->batch.targets[i]->id));
			cJSON_AddItemToArray(cJSON_AddArrayToObject(q, "Filter"), flt);
			rc = cJSON_GetArraySize(vals) ? describe_pages(r, q, &e) : 0;
			cJSON_Delete(q);
			if (rc != 0) {
				*failed = e;
				return -1;
			}
		}
	}
	return 0;
}

static int resolve_case_id(struct irfw_run *r)
{
	const char *err = NULL;
	if (r->case_id) {
		r->case_id_resolved = strdup(r->case_id);
	} else {
		struct irfw_vars v = {
		    .account_id = r->account_id, .region = r->resolved_region, .now = r->started};
		r->case_id_resolved = irfw_template_expand(irfw_run_global(r, "case_id"), &v, &err);
	}
	if (!irfw_case_id_valid(r->case_id_resolved)) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "case id '%s' %s; use letters, digits and . _ - : (at most 128)",
		          r->case_id_resolved ? r->case_id_resolved : "", err ? err : "is not valid");
		return -1;
	}
	return 0;
}

/* The step this thread prepares: prepares run at once, each on its own
 * thread, and every target is in all of them. */
static _Thread_local struct irfw_step *preparing_step;

/* This prepare thread's call state of each target, made on first use. */
static _Thread_local struct irfw_call_state **prep_calls;
static _Thread_local size_t prep_n;
static _Thread_local struct irfw_call_state prep_spare; /* out of memory */

struct irfw_step *irfw_target_cur(const struct irfw_target *t)
{
	return preparing_step ? preparing_step : t->cur;
}

struct irfw_call_state *irfw_target_calls(const struct irfw_target *t)
{
	if (!preparing_step)
		return (struct irfw_call_state *)&t->calls;
	if (!prep_calls) {
		prep_n = t->run->batch.n;
		prep_calls = calloc(prep_n ? prep_n : 1, sizeof(*prep_calls));
	}
	if (!prep_calls || t->index >= prep_n)
		return &prep_spare;
	if (!prep_calls[t->index])
		prep_calls[t->index] = calloc(1, sizeof(**prep_calls));
	return prep_calls[t->index] ? prep_calls[t->index] : &prep_spare;
}

void irfw_prepare_enter(struct irfw_run *r)
{
	if (r->preparing)
		pthread_mutex_lock(&r->prepare_lock);
}

void irfw_prepare_leave(struct irfw_run *r)
{
	if (r->preparing)
		pthread_mutex_unlock(&r->prepare_lock);
}

struct prep_job {
	struct irfw_run *r;
	struct irfw_step *s;
	int rc; /* prepare's answer */
	pthread_t th;
	bool started; /* on a thread of its own */
};

static void *prepare_one(void *arg)
{
	struct prep_job *j = arg;
	preparing_step = j->s;
	j->rc = j->s->mod->vt.prepare(&j->r->batch, j->s->state);
	preparing_step = NULL;
	if (prep_calls)
		for (size_t i = 0; i < prep_n; i++)
			free(prep_calls[i]);
	free(prep_calls);
	prep_calls = NULL;
	prep_n = 0;
	return NULL;
}

/* A module built for ABI 1.9 or later has a prepare that may run beside
 * other steps' prepares; an older one is prepared alone. */
static bool prepares_alongside(const struct irfw_step *s)
{
	return s->mod->vt.abi_minor >= 9;
}

/* Every step's prepare, before any step runs.  Consecutive prepares of
 * modules that allow it run at once (what one step's prepare asks AWS does
 * not wait for another's), one thread each; a module that does not is
 * prepared alone, in pipeline order.  Returns 0, 1 (an error) or 2 (the
 * operator's input is wrong: irfw_step_error was called). */
static int call_prepare(struct irfw_run *r)
{
	int rc = 0;
	struct prep_job *jobs = calloc(r->n_steps ? r->n_steps : 1, sizeof(*jobs));
	if (!jobs)
		return IRFW_RUN_STEP_FAILED;
	r->preparing = true;
	size_t i = 0;
	while (i < r->n_steps && rc == 0) {
		/* A group: one step that must be alone, or a run of those that
		 * need not be. */
		size_t n = 0;
		for (; i < r->n_steps; i++) {
			struct irfw_step *s = r->steps[i];
			if (!s->mod->vt.prepare)
				continue;
			if (n && !prepares_alongside(s))
				break;
			jobs[n++] = (struct prep_job){.r = r, .s = s};
			if (!prepares_alongside(s)) {
				i++;
				break;
			}
		}
		for (size_t k = 1; k < n; k++)
			jobs[k].started = pthread_create(&jobs[k].th, NULL, prepare_one, &jobs[k]) == 0;
		for (size_t k = 0; k < n; k++)
			if (k == 0 || !jobs[k].started)
				prepare_one(&jobs[k]); /* this thread: the first, and any not started */
		for (size_t k = 1; k < n; k++)
			if (jobs[k].started)
				pthread_join(jobs[k].th, NULL);
		for (size_t k = 0; k < n; k++)
			if (jobs[k].rc != 0) {
				irfw_logf(IRFW_LOG_ERROR, jobs[k].s->name,
				          "preparing the batch failed; no step was started");
				rc = IRFW_RUN_STEP_FAILED;
			}
		if (atomic_load(&r->prepare_usage_error)) {
			if (rc == 0)
				irfw_logf(IRFW_LOG_ERROR, NULL,
				          "preparing the batch failed; no step was started");
			rc = IRFW_RUN_USAGE;
		}
	}
	r->preparing = false;
	free(jobs);
	return rc;
}

/* A file holding secrets that group or others can read: say so (a warning,
 * not a refusal: the file is the site's business, the warning ours). */
static void warn_if_readable(const char *path, const char *what)
{
	struct stat st;
	if (path && stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		irfw_logf(IRFW_LOG_WARN, NULL, "%s %s is readable by %s (mode %04o): chmod go-r %s", what,
		          path, (st.st_mode & S_IROTH) ? "anyone" : "its group",
		          (unsigned)(st.st_mode & 07777), path);
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
	    /* Only when written: else the IRFW_AWS_* variables, the defaults. */
	    .low_speed_time =
	        irfw_section_find(r->global, "low_speed_time") ? global_long(r, "low_speed_time") : 0,
	    .call_deadline =
	        irfw_section_find(r->global, "call_deadline") ? global_long(r, "call_deadline") : 0,
	    /* Only when written: else AWS_MAX_ATTEMPTS, the profile's, 5. */
	    .max_attempts =
	        irfw_section_find(r->global, "max_attempts") ? (int)global_long(r, "max_attempts") : 0,
	    .s3_path_style = ps && irfw_parse_bool(ps, &path_style) && path_style,
	};
	char key[64];
	for (size_t i = 0;
	     i < irfw_ratelimit_class_count() && i < sizeof(c.ratelimit) / sizeof(c.ratelimit[0]); i++) {
		snprintf(key, sizeof(key), "ratelimit.%s", irfw_ratelimit_class_name(i));
		const struct irfw_kv_line *kv = irfw_section_find(r->global, key);
		c.ratelimit[i] = kv ? kv->value : NULL;
	}
	return irfw_aws_new(&c, &r->aws, err, errlen);
}

/* "under a minute", "1.5 min", "7 min". */
static const char *minutes(double s, char *out, size_t len)
{
	if (s < 60)
		snprintf(out, len, "under a minute");
	else if (s < 600)
		snprintf(out, len, "about %.1f min", s / 60);
	else
		snprintf(out, len, "about %.0f min", s / 60);
	return out;
}

/* An instance is finished: the scheduler gives it no more work.  Its case
 * record says what an interruption left undone (the journal's "record" of
 * core/interrupted: the signal, the steps not run and those abandoned) when
 * a signal came before the instance finished; else an earlier
 * interruption's note is cleared, this run having done the instance.  Then
 * the record is closed (manifest.json synced) and what only the steps used
 * is freed: the report needs the record's two paths, kept in the target.
 * In the thread that ran the instance's last step, or the main thread. */
void irfw_target_finish(struct irfw_target *t, int sig, bool abandoned)
{
	char sb[16];
	cJSON_Delete(t->instance); /* the steps' (irfw_target_instance) */
	t->instance = NULL;
	if (!t->rec)
		return;
	if (!sig) {
		const cJSON *was = irfw_case_record_get(t->rec, "core", "interrupted");
		if (was && !cJSON_IsNull(was) && irfw_case_record(t->rec, "core", "interrupted", NULL) != 0)
			irfw_logf(IRFW_LOG_WARN, t->id, "case record: %s", irfw_case_error(t->rec));
	} else {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "signal", irfw_signal_name(sig, sb));
		cJSON_AddStringToObject(o, "run_id", t->run->run_id);
		cJSON_AddBoolToObject(o, "abandoned", abandoned);
		cJSON *nr = cJSON_AddArrayToObject(o, "not_run");
		cJSON *ir = cJSON_AddArrayToObject(o, "interrupted");
		for (size_t k = 0; k < t->n_results; k++) {
			const struct irfw_step_result *res = &t->results[k];
			if (res->interrupted)
				cJSON_AddItemToArray(ir, cJSON_CreateString(res->step));
			else if (!res->ran)
				cJSON_AddItemToArray(nr, cJSON_CreateString(res->step));
		}
		if (irfw_case_record(t->rec, "core", "interrupted", o) != 0)
			irfw_logf(IRFW_LOG_WARN, t->id, "case record: %s", irfw_case_error(t->rec));
	}
	free(t->case_dir);
	free(t->manifest_path);
	t->case_dir = irfw_strdup(irfw_case_dir(t->rec));
	t->manifest_path = irfw_strdup(irfw_case_manifest_path(t->rec));
	irfw_case_close(t->rec);
	t->rec = NULL;
}

/* After the schedule: the instances it did not finish (a signal stopped
 * it) are finished now, their records saying what is left. */
static void record_interruption(struct irfw_run *r)
{
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (t->rec)
			irfw_target_finish(t, r->interrupted, r->abandoned);
	}
}

/* The end of a run that a signal stopped before its steps were scheduled
 * (nothing was changed by this run, or only the case records opened). */
static int stopped_early(struct irfw_run *r, bool json, int status)
{
	r->interrupted = irfw_run_interrupt_signal();
	r->abandoned = irfw_run_interrupt_count() > 1;
	irfw_event_run_done(r, status);
	irfw_events_close(r);
	if (json)
		irfw_report_json(r);
	else
		irfw_report_text(r);
	return status;
}

/* One instance's case record opened (made, or read back to resume), with
 * what the run knows of it: the findings that name it and the instance as
 * DescribeInstances showed it, the first piece of evidence. */
static void open_record(struct irfw_run *r, struct irfw_target *t, const char *ev, const cJSON *info)
{
	char err[1024] = "";
	if (irfw_case_open(ev, r->case_id_resolved, t->id, info, &t->rec, err, sizeof(err)) != 0) {
		/* Containment goes first and alone: a full or unwritable
		 * evidence folder must not keep the instance open.  The
		 * steps that need the record say so when they fail. */
		irfw_logf(IRFW_LOG_WARN, t->id,
		          "no case record: %s; containment goes on, but evidence and records "
		          "of this "
		          "instance cannot be kept (free the folder or give --evidence-dir, "
		          "then run "
		          "again with --case-id %s to complete the case)",
		          err, r->case_id_resolved);
		t->rec = NULL;
		return;
	}
	irfw_containment_load(t);
	const cJSON *fnd = irfw_fleet_findings_of(r, t->id);
	if (fnd && irfw_case_record(t->rec, "core", "findings", cJSON_Duplicate(fnd, true)) != 0)
		irfw_logf(IRFW_LOG_WARN, t->id, "case record: %s", irfw_case_error(t->rec));
	/* The instance as found is the first piece of evidence. */
	char *desc = cJSON_Print(t->instance);
	if (desc) {
		irfw_case_artifact_add(t->rec, "core", "describe-instance.json", "application/json", desc,
		                       strlen(desc));
		free(desc);
	}
	/* It waits for its first step while the fleet's records open. */
	irfw_case_chill(t->rec);
}

struct opener {
	struct irfw_run *r;
	const char *ev;
	const cJSON *info;
	atomic_size_t next;
};

static void *open_records_worker(void *arg)
{
	struct opener *o = arg;
	size_t i;
	while ((i = atomic_fetch_add(&o->next, 1)) < o->r->batch.n) {
		struct irfw_target *t = o->r->batch.targets[i];
		if (t->found && !t->skipped_state)
			open_record(o->r, t, o->ev, o->info);
	}
	return NULL;
}

/* Every instance's case record, as many at a time as the run has workers:
 * each is its own folder, and a record written (and synced) one after
 * another held a fleet's containment back by 50 ms an instance. */
static void open_records(struct irfw_run *r, const char *ev, const cJSON *info)
{
	struct opener o = {.r = r, .ev = ev, .info = info};
	atomic_init(&o.next, 0);
#if defined(__GLIBC__)
	/* The batch's DescribeInstances answer was parsed whole and freed,
	 * each target keeping its item: give back the pages it left free (at
	 * N = 100 the main heap's resident size fell from 3.1 to 2.1 MB).
	 * And from here the run's threads (these, the workers, irfw_calls'
	 * pool) share 4 malloc arenas instead of one each: each arena keeps
	 * its own free pages (6.1 MB for 15 of them at N = 100), and the
	 * threads mostly wait on AWS, not on malloc. */
	malloc_trim(0);
	mallopt(M_ARENA_MAX, 4);
#endif
	size_t n = r->jobs > 1 ? (size_t)r->jobs : 1;
	if (n > r->batch.n)
		n = r->batch.n;
	pthread_t *th = n > 1 ? calloc(n, sizeof(*th)) : NULL;
	size_t started = 0;
	for (; th && started < n; started++)
		if (pthread_create(&th[started], NULL, open_records_worker, &o) != 0)
			break;
	open_records_worker(&o); /* this thread too, and alone if none started */
	for (size_t k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	free(th);
}

/* GetCallerIdentity, on a thread of its own while the run goes on to
 * DescribeInstances (neither needs the other's answer). */
struct whoami {
	struct irfw_run *r;
	pthread_t th;
	bool started;
	int rc;
	cJSON *who;
	struct irfw_aws_error e;
	char rid[128];
	bool json; /* a failure prints the -o json document that says it */
};

static void *whoami_call(void *arg)
{
	struct whoami *w = arg;
	w->rc = irfw_aws_request(w->r->aws, w->r->resolved_region, "sts", "GetCallerIdentity", NULL, false,
	                         &w->who, &w->e, w->rid);
	return NULL;
}

/* Who is acting: the account keys names and rate limits, the ARN goes
 * into the case record. */
static int whoami_finish(struct irfw_run *r, struct whoami *w)
{
	if (w->started)
		pthread_join(w->th, NULL);
	else
		whoami_call(w);
	if (w->rc != 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "sts:GetCallerIdentity: %s: %s (request %s)", w->e.code,
		          w->e.message, w->e.request_id[0] ? w->e.request_id : "-");
		if (w->json)
			irfw_report_json_stopped(r, "sts:GetCallerIdentity", &w->e);
		return w->e.http_status == 403 || w->e.http_status == 401 ? IRFW_RUN_USAGE
		                                                          : IRFW_RUN_STEP_FAILED;
	}
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(w->who, "GetCallerIdentityResult");
	const cJSON *acct = cJSON_GetObjectItemCaseSensitive(res, "Account");
	const cJSON *arn = cJSON_GetObjectItemCaseSensitive(res, "Arn");
	r->account_id = cJSON_IsString(acct) ? strdup(acct->valuestring) : NULL;
	r->caller_arn = cJSON_IsString(arn) ? strdup(arn->valuestring) : NULL;
	cJSON_Delete(w->who);
	w->who = NULL;
	if (!r->account_id) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "sts:GetCallerIdentity returned no account id");
		return IRFW_RUN_STEP_FAILED;
	}
	irfw_aws_set_account(r->aws, r->account_id);
	irfw_logf(IRFW_LOG_INFO, NULL, "acting as %s in account %s, region %s",
	          r->caller_arn ? r->caller_arn : "?", r->account_id, r->resolved_region);
	return IRFW_RUN_OK;
}

/* The client, and GetCallerIdentity sent (w->started: on its thread). */
static int connect_start(struct irfw_run *r, struct whoami *w, bool together)
{
	char err[1024] = "";
	memset(w, 0, sizeof(*w));
	w->r = r;
	if (aws_client(r, err, sizeof(err)) != 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "%s", err);
		return IRFW_RUN_USAGE;
	}
	r->resolved_region = strdup(irfw_aws_region(r->aws));
	w->started = together && pthread_create(&w->th, NULL, whoami_call, w) == 0;
	return IRFW_RUN_OK;
}

int irfw_run_connect(struct irfw_run *r)
{
	struct whoami w;
	int rc = connect_start(r, &w, false);
	return rc != IRFW_RUN_OK ? rc : whoami_finish(r, &w);
}

static void describe_failed(const struct irfw_aws_error *e)
{
	irfw_logf(IRFW_LOG_ERROR, NULL, "DescribeInstances: %s: %s (request %s)", e->code, e->message,
	          e->request_id[0] ? e->request_id : "-");
}

int irfw_run_describe(struct irfw_run *r)
{
	struct irfw_aws_error e;
	if (describe_targets(r, &e) == 0)
		return 0;
	describe_failed(&e);
	return -1;
}

/* The run ended before its first step with an error that is not the
 * operator's (AWS unreachable, DescribeInstances or a prepare failed):
 * no instance it was asked to contain is contained, and the exit status
 * says so (4, the first that applies, as after any run that leaves one
 * open) where the pipeline has a contain step; a dry run, a check or a
 * pipeline that contains nothing ends 1.
 * Usage errors (2) and interruptions keep theirs. */
static int stopped_before_steps(struct irfw_run *r, bool check_only, bool described, int status)
{
	bool contains = false;
	for (size_t i = 0; i < r->n_steps; i++)
		contains = contains || r->steps[i]->phase == IRFW_PHASE_CONTAIN;
	if (status != IRFW_RUN_STEP_FAILED || check_only || r->dry_run || !contains ||
	    irfw_run_interrupt_signal()) {
		r->interrupted = irfw_run_interrupt_signal(); /* run-done names the signal */
		irfw_event_run_done(r, status);
		irfw_events_close(r);
		return status;
	}
	size_t named = 0;
	for (size_t i = 0; i < r->batch.n; i++) {
		const struct irfw_target *t = r->batch.targets[i];
		if (t->skipped_state || (described && !t->found))
			continue;
		irfw_logf(IRFW_LOG_ERROR, t->id,
		          "NOT CONTAINED: the run stopped before its first step; nothing was changed "
		          "on this instance");
		named++;
	}
	if (!named)
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "NOT CONTAINED: the run stopped before its first step; no instance was changed");
	irfw_event_run_done(r, IRFW_RUN_NOT_CONTAINED);
	irfw_events_close(r);
	return IRFW_RUN_NOT_CONTAINED;
}

int irfw_run_execute(struct irfw_run *r, bool json, bool check_only)
{
	char err[1024] = "";
	int status = IRFW_RUN_OK;
	/* The instances given by id are described while GetCallerIdentity
	 * is on its way: a round trip less before the first step.  A filter
	 * (which lists matches, maybe on a terminal) and check without
	 * instances wait for it first. */
	bool together = r->n_filters == 0 && r->batch.n > 0;
	/* An events file that cannot be written is the operator's error:
	 * said before anything is asked of AWS. */
	if (r->events_path && irfw_events_open(r, r->events_path, err, sizeof(err)) != 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "%s", err);
		return IRFW_RUN_USAGE;
	}
	struct whoami w;
	int crc = connect_start(r, &w, together);
	if (crc != IRFW_RUN_OK)
		return stopped_before_steps(r, check_only, false, crc);
	w.json = json;
	if (!together && (crc = whoami_finish(r, &w)) != IRFW_RUN_OK)
		return stopped_before_steps(r, check_only, false, crc);
	warn_readable_secrets(r);
	char *creds = irfw_shared_credentials_path();
	warn_if_readable(creds, "the AWS credentials file");
	free(creds);
	if (r->n_filters) {
		int frc = irfw_fleet_resolve_filters(r);
		if (frc != IRFW_RUN_OK)
			return stopped_before_steps(r, check_only, false, frc);
	}
	if (check_only && r->batch.n == 0) {
		printf("configuration, plugins and credentials are fine (%zu steps)\n", r->n_steps);
		return IRFW_RUN_OK;
	}

	struct irfw_aws_error de;
	int drc = describe_targets(r, &de);
	/* Who is acting speaks first: bad credentials are a usage error, said
	 * once, whatever DescribeInstances answered to them. */
	if (together && (crc = whoami_finish(r, &w)) != IRFW_RUN_OK)
		return stopped_before_steps(r, check_only, false, crc);
	if (resolve_case_id(r) != 0) /* may name the account */
		return stopped_before_steps(r, check_only, false, IRFW_RUN_USAGE);
	if (drc != 0) {
		describe_failed(&de);
		if (json && !irfw_run_interrupt_signal())
			irfw_report_json_stopped(r, "ec2:DescribeInstances", &de);
		return irfw_run_interrupt_signal()
		           ? stopped_early(r, json, IRFW_RUN_STEP_FAILED)
		           : stopped_before_steps(r, check_only, false, IRFW_RUN_STEP_FAILED);
	}
	if (irfw_run_interrupt_signal())
		return stopped_early(r, json, IRFW_RUN_OK); /* nothing was changed */
	size_t found = 0;
	for (size_t i = 0; i < r->batch.n; i++) {
		struct irfw_target *t = r->batch.targets[i];
		if (!t->found) {
			irfw_logf(IRFW_LOG_ERROR, t->id, "instance not found in account %s, region %s",
			          r->account_id, r->resolved_region);
			status = IRFW_RUN_NOT_HANDLED;
			continue;
		}
		if (t->state &&
		    (strcmp(t->state, "terminated") == 0 || strcmp(t->state, "shutting-down") == 0)) {
			/* Nothing left to contain; its volumes are going or gone.
			 * Steps never see it: no instance, no VPC. */
			irfw_logf(IRFW_LOG_ERROR, t->id,
			          "instance is %s: nothing to contain or preserve; not handled", t->state);
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
		cJSON_AddStringToObject(info, "run_id", r->run_id);
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
		open_records(r, ev, info);
		cJSON_Delete(info);
		irfw_logf(IRFW_LOG_INFO, NULL, "case %s: %zu instance(s), %zu step(s) each",
		          r->case_id_resolved, found, r->n_steps);
	} else if (r->dry_run && !check_only) {
		irfw_logf(
		    IRFW_LOG_INFO, NULL,
		    "dry run of case %s: %zu instance(s), %zu step(s) each; nothing is changed and no case "
		    "record is written",
		    r->case_id_resolved, found, r->n_steps);
	}
	/* prepare may change AWS (a quarantine group per VPC): not after a
	 * signal.  The scheduler then starts no step. */
	if (found && !irfw_run_interrupt_signal()) {
		int prc = call_prepare(r);
		if (prc != 0)
			return stopped_before_steps(r, check_only, true, prc);
		/* The prepares read the records (did the step run before?):
		 * their trees give way to text again while the instances wait
		 * for their first step. */
		for (size_t i = 0; i < r->batch.n; i++)
			irfw_case_chill(r->batch.targets[i]->rec);
	}

	if (found > 50 && !check_only) {
		/* What the account's EC2 request buckets make this take: the
		 * calls the steps declare, through buckets of the sizes and refill
		 * rates irfw paces itself with. */
		double contain, all;
		irfw_policy_estimate(r, &contain, &all);
		char a[32], b[32];
		irfw_logf(IRFW_LOG_INFO, NULL,
		          "%zu instances: all contained in %s, all steps in %s at "
		          "this account's EC2 request limits",
		          found, minutes(contain, a, sizeof(a)), minutes(all, b, sizeof(b)));
	}
	irfw_event_run_start(r, found);
	irfw_schedule(r, found, check_only);
	r->interrupted = irfw_run_interrupt_signal();
	r->abandoned = irfw_run_interrupt_count() > 1;
	if (!check_only && !r->dry_run)
		record_interruption(r);

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
	irfw_event_run_done(r, status);
	irfw_events_close(r);
	if (json)
		irfw_report_json(r);
	else
		irfw_report_text(r);
	return status;
}

void irfw_run_free(struct irfw_run *r)
{
	irfw_events_close(r);
	for (size_t i = 0; i < r->n_filters; i++)
		free(r->filters[i]);
	free(r->filters);
	cJSON_Delete(r->findings);
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
			free(t->results[k].record_error);
		}
		free(t->results);
		for (size_t k = 0; k < t->n_facts; k++) {
			free(t->facts[k].key);
			free(t->facts[k].value);
		}
		free(t->facts);
		if (t->rec)
			irfw_case_close(t->rec);
		free(t->case_dir);
		free(t->manifest_path);
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
	irfw_calls_pool_free(r); /* its threads use the client */
	irfw_together_free(r);
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
	pthread_mutex_destroy(&r->prepare_lock);
	irfw_log_clear_secrets();
}
