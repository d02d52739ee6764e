/*
 * sdk_step.c - the SDK's view of a step: its INI section's typed values,
 * configuration errors and logging (irfw.h, "Step configuration").
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "casestore.h"
#include "run.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

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
