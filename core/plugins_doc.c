/*
 * plugins_doc.c - `irfw plugins`: the installed plugins, and each one's
 * documentation (text, man page, or a section of a site file) from its
 * options table.
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
#include "plugins_doc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "sdk_json.h"

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
		printf("%-14s %-8s %s\n", m->name, m->vt.version ? m->vt.version : "-",
		       m->vt.summary ? m->vt.summary : "");
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
			       o->type == IRFW_OPT_ENUM ? ": " : "",
			       o->type == IRFW_OPT_ENUM ? o->choices : "",
			       (o->flags & IRFW_OPT_REQUIRED) ? ", required" : "", def ? ", default: " : "",
			       def ? def : "", o->help ? o->help : "");
		} else {
			printf("  %s = <%s%s%s>%s%s%s\n", o->name, type_name(o->type),
			       o->type == IRFW_OPT_ENUM ? " " : "",
			       o->type == IRFW_OPT_ENUM ? o->choices : "",
			       (o->flags & IRFW_OPT_REQUIRED) ? "  (required)" : "", def ? "  default: " : "",
			       def ? def : "");
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
