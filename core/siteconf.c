/*
 * config.c - the site configuration: parsed with inih, validated against
 * the options tables of the core and of each plugin, every problem reported
 * as "file:line: message".
 *
 * inih's handler is not told line numbers by Debian's build (it is built
 * without INI_HANDLER_LINENO), so lines reach inih through our own reader,
 * which counts them, refuses lines longer than inih's buffer (the packaged
 * library would silently split them into two entries), and notes whether a
 * line is an indented continuation of the previous value.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ini.h>

#include "siteconf.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/ratelimit.h"
#include "aws/ratelimit.h"

static const struct irfw_option global_base[] = {
    {"pipeline", IRFW_OPT_LIST, NULL, IRFW_OPT_REQUIRED,
     "Steps to run for each instance, in order. Each names an INI section; the section's "
     "`plugin` (default: its name) is the module run.",
     NULL},
    {"region", IRFW_OPT_STRING, NULL, 0,
     "AWS region of the instances. Overridden by --region; else AWS_REGION, AWS_DEFAULT_REGION, "
     "the profile's region, the instance metadata service.",
     NULL},
    {"profile", IRFW_OPT_STRING, NULL, 0,
     "Named profile of the AWS shared config files (--profile overrides). Given here or with --profile "
     "it is explicit, so it wins over AWS_ACCESS_KEY_ID; AWS_PROFILE does not (as in boto3).",
     NULL},
    {"plugin_path", IRFW_OPT_LIST, NULL, 0,
     "Folders searched for plugin modules before the installed plugin folder. A relative "
     "folder is taken relative to this file's folder.",
     NULL},
    {"evidence_dir", IRFW_OPT_STRING, NULL, 0,
     "Where case records live: <evidence_dir>/<case>/<instance>/ holds the artifacts, "
     "manifest.json and journal.jsonl. A relative folder is taken relative to the working directory. "
     "Default: the cases folder of the installation, LOCALSTATEDIR/lib/irfw/cases "
     "(/var/lib/irfw/cases from the packages), made mode 0700 when irfw is installed.",
     NULL},
    {"case_id", IRFW_OPT_STRING, "IR-${date}-${time}", 0,
     "Template of the case id when --case-id is not given. Variables: ${date} (YYYY-MM-DD, UTC), "
     "${time} (HHMMSS, UTC), ${account_id}, ${region}. Re-running with the same case id resumes it.",
     NULL},
    {"jobs", IRFW_OPT_INT, "16", 0,
     "Workers handling the fleet's steps at once (--jobs overrides); 1 to 64. At 50 to 100 ms a call a "
     "worker "
     "makes 10 to 20 calls a second, while EC2's buckets take bursts of 50 to 100 calls and refill at 5 to "
     "20 "
     "a second: 16 workers drain a burst in well under a second and keep every bucket busy, so the account's "
     "limits, not the pool, set the pace.",
     NULL},
    {"max_attempts", IRFW_OPT_INT, "5", 0,
     "Attempts per AWS call, retrying 5xx and network errors with capped exponential backoff and "
     "full jitter. Throttling answers are not counted: they are retried until call_deadline. Written "
     "here it wins; else AWS_MAX_ATTEMPTS, then the profile's max_attempts. 1: no retry at all.",
     NULL},
    {"connect_timeout", IRFW_OPT_INT, "10", 0, "Seconds to connect to an AWS endpoint.", NULL},
    {"timeout", IRFW_OPT_INT, "120", 0, "Seconds for one AWS request, transfer included.", NULL},
    {"low_speed_time", IRFW_OPT_INT, "10", 0,
     "Seconds an attempt may go without a byte moving (a stalled answer) before it is abandoned and "
     "retried. Written here it wins; else IRFW_AWS_LOW_SPEED_TIME.",
     NULL},
    {"call_deadline", IRFW_OPT_INT, "120", 0,
     "Seconds one AWS call may take, every attempt and backoff included (waiting for irfw's own "
     "rate limit is not counted); at least timeout. Written here it wins; else IRFW_AWS_CALL_DEADLINE.",
     NULL},
    {"ca_file", IRFW_OPT_STRING, NULL, 0,
     "A CA bundle to verify AWS endpoints with (TLS verification is always on); else AWS_CA_BUNDLE, "
     "then the profile's ca_bundle.",
     NULL},
    {"endpoint_url", IRFW_OPT_STRING, NULL, 0,
     "Send every AWS call to this endpoint (an emulator, a VPC endpoint). AWS_ENDPOINT_URL and "
     "AWS_ENDPOINT_URL_<SERVICE> take precedence; the shared config's [services] entries and the "
     "profile's endpoint_url come after it; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops those but not this.",
     NULL},
    {"s3_path_style", IRFW_OPT_BOOL, "false", 0,
     "Address S3 buckets path-style instead of virtual-host style.", NULL},
    {"bucket", IRFW_OPT_STRING, NULL, 0, "Evidence bucket for every step that takes one (-b overrides).",
     NULL},
    {"topic", IRFW_OPT_STRING, NULL, 0, "SNS topic ARN for every step that takes one (-t overrides).", NULL},
    {"sgid", IRFW_OPT_STRING, NULL, 0,
     "Quarantine security group id to use instead of finding one (-g overrides).", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

/* The [irfw] keys: the table above and one ratelimit.<class> key per
 * rate-limit class of the AWS client, from its one list (ratelimit.c). */
#define N_BASE   (sizeof(global_base) / sizeof(global_base[0]) - 1)
#define N_RL_MAX 8
static struct irfw_option global_all[N_BASE + N_RL_MAX + 1];
static char rl_names[N_RL_MAX][48], rl_helps[N_RL_MAX][200];
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void build_global_options(void)
{
	size_t n = 0;
	for (; n < N_BASE; n++)
		global_all[n] = global_base[n];
	for (size_t i = 0; i < irfw_ratelimit_class_count() && i < N_RL_MAX; i++) {
		snprintf(rl_names[i], sizeof(rl_names[i]), "ratelimit.%s", irfw_ratelimit_class_name(i));
		snprintf(rl_helps[i], sizeof(rl_helps[i]),
		         "Client-side token bucket of %s: CAPACITY/REFILL_PER_SECOND, shared by all threads "
		         "(0 refill: no limit).",
		         irfw_ratelimit_class_help(i));
		global_all[n++] = (struct irfw_option){.name = rl_names[i],
		                                       .type = IRFW_OPT_STRING,
		                                       .def = irfw_ratelimit_class_default(i),
		                                       .help = rl_helps[i]};
	}
	global_all[n] = (struct irfw_option){.name = NULL};
}

const struct irfw_option *irfw_global_options(void)
{
	pthread_once(&global_once, build_global_options);
	return global_all;
}

const struct irfw_option irfw_step_options[] = {
    {"plugin", IRFW_OPT_STRING, NULL, 0, "Module this step runs (default: the section's name).", NULL},
    {"on_error", IRFW_OPT_ENUM, "continue", 0,
     "When this step fails for an instance: `continue` with its next steps, or `stop` them.",
     "stop|continue"},
    {"optional", IRFW_OPT_BOOL, "false", 0,
     "true: when the step's plugin is not installed (a distribution ships it as a package of its "
     "own), the step is left out with a warning naming the package, instead of stopping the run.",
     NULL},
    {"phase", IRFW_OPT_ENUM, NULL, 0,
     "Phase of the step (default: the plugin's own): `contain` (take the instance out of service "
     "and cut it off), `preserve` (protect and capture evidence) or `report` (tag, upload, "
     "notify). A failed step of the contain phase keeps the instance from being reported contained.",
     "contain|preserve|report"},
    {NULL, 0, NULL, 0, NULL, NULL},
};

/* ------------------------------------------------------------------ */
/* Errors.                                                             */

void irfw_config_error(struct irfw_config *cfg, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char **v = realloc(cfg->errors, (cfg->n_errors + 1) * sizeof(*v));
	if (!v)
		return;
	cfg->errors = v;
	cfg->errors[cfg->n_errors] =
	    line > 0 ? irfw_strfmt("%s:%d: %s", cfg->path, line, msg) : irfw_strfmt("%s: %s", cfg->path, msg);
	if (cfg->errors[cfg->n_errors])
		cfg->n_errors++;
}

/* ------------------------------------------------------------------ */
/* Parsing.                                                            */

struct parse_ctx {
	struct irfw_config *cfg;
	FILE *f;
	char *line; /* getline buffer */
	size_t line_cap;
	int lineno;
	bool continuation; /* current line starts with blank: a value's next line */
	bool too_long;
	int section_line;          /* line of the last [section] header */
	int empty_section_line;    /* last "[ ]" header reported */
	struct irfw_kv_line *last; /* last key set, for continuations */
};

static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *p = stream;
	if (p->too_long)
		return NULL;
	ssize_t n = getline(&p->line, &p->line_cap, p->f);
	if (n < 0)
		return NULL;
	p->lineno++;
	while (n > 0 && (p->line[n - 1] == '\n' || p->line[n - 1] == '\r'))
		p->line[--n] = '\0';
	/* inih needs room for the line and its terminator in `num` bytes. */
	if (n > num - 1 || (size_t)n != strlen(p->line)) {
		irfw_config_error(p->cfg, p->lineno,
		                  (size_t)n != strlen(p->line)
		                      ? "line contains a NUL byte"
		                      : "line is longer than %d characters; "
		                        "shorten it or split a list over indented lines",
		                  num - 1);
		p->too_long = true;
		return NULL;
	}
	p->continuation = n > 0 && (p->line[0] == ' ' || p->line[0] == '\t');
	/* inih reports no event for a [section] line: remember where it was. */
	const char *first = p->line + strspn(p->line, " \t");
	if (*first == '[')
		p->section_line = p->lineno;
	memcpy(str, p->line, (size_t)n + 1);
	return str;
}

static struct irfw_section *section_get(struct irfw_config *cfg, const char *name, int line)
{
	struct irfw_section *s = irfw_config_section(cfg, name);
	if (s)
		return s;
	struct irfw_section *v = realloc(cfg->sections, (cfg->n_sections + 1) * sizeof(*v));
	if (!v)
		return NULL;
	cfg->sections = v;
	s = &cfg->sections[cfg->n_sections++];
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	s->line = line;
	return s;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	struct irfw_config *cfg = p->cfg;
	/* inih trims keys and values but not a section's name: "[ isolate ]"
	 * would be a section nobody reads, and isolate would run without its
	 * keys.  Trimmed, it is [isolate], and a second [isolate] is the same
	 * section (a key set in both is an error, as for any repeat). */
	char sec[256];
	snprintf(sec, sizeof(sec), "%s", section);
	section = irfw_trim(sec);
	if (!*section) {
		if (!p->section_line) {
			irfw_config_error(cfg, p->lineno, "key '%s' outside any [section]", name);
		} else if (p->empty_section_line != p->section_line) {
			irfw_config_error(cfg, p->section_line, "section header without a name");
			p->empty_section_line = p->section_line;
		}
		return 0;
	}
	/* Values go into JSON (the report, the record, events) and AWS tags,
	 * which hold UTF-8 only: anything else is refused where it stands. */
	if (!irfw_utf8_valid(section) || (name && !irfw_utf8_valid(name)) ||
	    (value && !irfw_utf8_valid(value))) {
		irfw_config_error(cfg, p->lineno, "not UTF-8 text: the site file must be UTF-8");
		return 0;
	}
	struct irfw_section *s = section_get(cfg, section, p->section_line ? p->section_line : p->lineno);
	if (!s)
		return 0;
	if (!name) /* inih >= r53 reports a bare [section] with name NULL when INI_CALL_HANDLER_ON_NEW_SECTION
	            */
		return 1;
	const struct irfw_kv_line *old = irfw_section_find(s, name);
	if (old && p->continuation && p->last == old) {
		/* Multi-line value: join with a space, so lists read naturally. */
		char *joined = irfw_strfmt("%s %s", old->value, value);
		if (!joined)
			return 0;
		free(p->last->value);
		p->last->value = joined;
		return 1;
	}
	if (old) {
		irfw_config_error(cfg, p->lineno, "[%s] key '%s' is already set on line %d", section, name,
		                  old->line);
		return 0;
	}
	struct irfw_kv_line *v = realloc(s->kv, (s->n_kv + 1) * sizeof(*v));
	if (!v)
		return 0;
	s->kv = v;
	struct irfw_kv_line *kv = &s->kv[s->n_kv++];
	kv->key = strdup(name);
	kv->value = strdup(value);
	kv->line = p->lineno;
	p->last = kv;
	return 1;
}

int irfw_config_load(const char *path, struct irfw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = strdup(path);
	struct parse_ctx p = {.cfg = cfg};
	p.f = fopen(path, "r");
	if (!p.f) {
		irfw_config_error(cfg, 0, "cannot open configuration: %s", strerror(errno));
		return -1;
	}
	int rc = ini_parse_stream(reader, &p, handler, &p);
	if (!p.too_long && ferror(p.f))
		irfw_config_error(cfg, p.lineno, "read error: %s", strerror(errno));
	fclose(p.f);
	free(p.line);
	/* inih's own syntax errors (no '=' or ']') come back as a line number;
	 * errors the handler refused are already listed. */
	if (rc > 0 && cfg->n_errors == 0)
		irfw_config_error(cfg, rc, "syntax error (expected [section] or key = value)");
	else if (rc == -2)
		irfw_config_error(cfg, 0, "out of memory");
	return cfg->n_errors ? -1 : 0;
}

void irfw_config_free(struct irfw_config *cfg)
{
	for (size_t i = 0; i < cfg->n_sections; i++) {
		struct irfw_section *s = &cfg->sections[i];
		for (size_t k = 0; k < s->n_kv; k++) {
			free(s->kv[k].key);
			free(s->kv[k].value);
		}
		free(s->kv);
		free(s->name);
	}
	free(cfg->sections);
	for (size_t i = 0; i < cfg->n_errors; i++)
		free(cfg->errors[i]);
	free(cfg->errors);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

struct irfw_section *irfw_config_section(const struct irfw_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_sections; i++)
		if (strcmp(cfg->sections[i].name, name) == 0)
			return &cfg->sections[i];
	return NULL;
}

const struct irfw_kv_line *irfw_section_find(const struct irfw_section *s, const char *key)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_kv; i++)
		if (strcmp(s->kv[i].key, key) == 0)
			return &s->kv[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Validation.                                                         */

const struct irfw_option *irfw_option_find(const struct irfw_option *opts, const char *name)
{
	for (; opts && opts->name; opts++)
		if (strcmp(opts->name, name) == 0)
			return opts;
	return NULL;
}

static const char *known_vars[] = {"account_id", "region",   "instance_id", "vpc_id",  "case_id", "date",
                                   "time",       "name_tag", "containment", "outcome", NULL};

const char *irfw_template_check(const char *value)
{
	return irfw_template_check_vars(value, known_vars);
}

const char *irfw_template_check_vars(const char *value, const char *const *vars)
{
	static __thread char msg[160];
	for (const char *p = value; (p = strchr(p, '$')) != NULL;) {
		if (p[1] == '$') {
			p += 2;
			continue;
		}
		if (p[1] != '{')
			return "a '$' must start ${variable} (write $$ for a literal '$')";
		const char *end = strchr(p, '}');
		if (!end)
			return "unterminated ${variable}";
		size_t n = (size_t)(end - p - 2);
		bool ok = false;
		for (const char *const *v = vars; *v; v++)
			if (strlen(*v) == n && strncmp(*v, p + 2, n) == 0)
				ok = true;
		if (!ok) {
			size_t len = (size_t)snprintf(
			    msg, sizeof(msg),
			    "%s variable ${%.*s} (known%s:", vars == known_vars ? "unknown" : "no",
			    (int)(n > 40 ? 40 : n), p + 2, vars == known_vars ? "" : " here");
			for (const char *const *v = vars; *v && len < sizeof(msg); v++)
				len += (size_t)snprintf(msg + len, sizeof(msg) - len, " %s", *v);
			if (len < sizeof(msg))
				snprintf(msg + len, sizeof(msg) - len, ")");
			return msg;
		}
		p = end + 1;
	}
	return NULL;
}

const char *irfw_option_check(const struct irfw_option *o, const char *value)
{
	static __thread char msg[256];
	bool b;
	long l;
	switch (o->type) {
	case IRFW_OPT_BOOL:
		if (!irfw_parse_bool(value, &b))
			return "expected a boolean (true/false, yes/no, on/off, 1/0)";
		return NULL;
	case IRFW_OPT_INT:
		if (!irfw_parse_long(value, &l))
			return "expected an integer";
		return NULL;
	case IRFW_OPT_ENUM: {
		size_t n = strlen(value);
		for (const char *c = o->choices; c && *c;) {
			const char *bar = strchr(c, '|');
			size_t len = bar ? (size_t)(bar - c) : strlen(c);
			if (len == n && strncmp(c, value, n) == 0)
				return NULL;
			c = bar ? bar + 1 : c + len;
		}
		snprintf(msg, sizeof(msg), "expected one of %s", o->choices ? o->choices : "(none)");
		return msg;
	}
	case IRFW_OPT_STRING:
	case IRFW_OPT_LIST:
		return irfw_template_check(value);
	}
	return NULL;
}

void irfw_config_validate(struct irfw_config *cfg, const struct irfw_section *s,
                          const struct irfw_option *opts, const struct irfw_option *extra)
{
	for (size_t i = 0; s && i < s->n_kv; i++) {
		const struct irfw_kv_line *kv = &s->kv[i];
		const struct irfw_option *o = irfw_option_find(opts, kv->key);
		if (!o)
			o = irfw_option_find(extra, kv->key);
		if (!o) {
			irfw_config_error(cfg, kv->line, "[%s] unknown key '%s'", s->name, kv->key);
			continue;
		}
		const char *why = irfw_option_check(o, kv->value);
		if (!why && (o->flags & IRFW_OPT_REQUIRED) && !*kv->value) {
			irfw_config_error(cfg, kv->line, "[%s] required key '%s' is empty", s->name, kv->key);
			continue;
		}
		if (why)
			irfw_config_error(cfg, kv->line, "[%s] %s = %s: %s", s->name, kv->key,
			                  (o->flags & IRFW_OPT_SECRET) ? "(secret)" : kv->value, why);
	}
	const struct irfw_option *tables[] = {opts, extra};
	for (size_t t = 0; t < 2; t++)
		for (const struct irfw_option *o = tables[t]; o && o->name; o++)
			if ((o->flags & IRFW_OPT_REQUIRED) && !irfw_section_find(s, o->name))
				irfw_config_error(cfg, s ? s->line : 0, "[%s] required key '%s' is missing",
				                  s ? s->name : "?", o->name);
}

/* ------------------------------------------------------------------ */
/* Templates.                                                          */

char *irfw_template_expand(const char *tmpl, const struct irfw_vars *v, const char **err)
{
	struct irfw_buf b = {0};
	char date[16], tod[16];
	struct tm tm;
	time_t now = v->now ? v->now : time(NULL);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	strftime(tod, sizeof(tod), "%H%M%S", &tm);
	*err = NULL;
	irfw_buf_puts(&b, "");
	for (const char *p = tmpl; *p;) {
		if (p[0] == '$' && p[1] == '$') {
			irfw_buf_add(&b, "$", 1);
			p += 2;
			continue;
		}
		if (p[0] != '$' || p[1] != '{') {
			irfw_buf_add(&b, p, 1);
			p++;
			continue;
		}
		const char *end = strchr(p, '}');
		if (!end) {
			*err = "unterminated ${variable}";
			goto fail;
		}
		size_t n = (size_t)(end - p - 2);
		const char *name = p + 2, *val = NULL;
		bool known = true;
#define VAR(s, x) else if (n == strlen(s) && strncmp(name, s, n) == 0) val = (x)
		if (0)
			;
		VAR("account_id", v->account_id);
		VAR("region", v->region);
		VAR("instance_id", v->instance_id);
		VAR("vpc_id", v->vpc_id);
		VAR("case_id", v->case_id);
		VAR("name_tag", v->name_tag ? v->name_tag : "");
		VAR("containment", v->containment);
		VAR("outcome", v->outcome);
		VAR("date", date);
		VAR("time", tod);
		else known = false;
#undef VAR
		if (!known) {
			*err = "unknown ${variable}";
			goto fail;
		}
		if (!val) {
			static __thread char msg[96];
			snprintf(msg, sizeof(msg), "${%.*s} has no value here", (int)(n > 40 ? 40 : n), name);
			*err = msg;
			goto fail;
		}
		irfw_buf_puts(&b, val);
		p = end + 1;
	}
	return b.data;
fail:
	irfw_buf_free(&b);
	return NULL;
}
