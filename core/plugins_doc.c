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

/* The formats of the -o json documents (doc/irfw-output.schema.json). */
#define IRFW_OUTPUT_PLUGINS_FORMAT "irfw-plugins/1"
#define IRFW_OUTPUT_PLUGIN_FORMAT  "irfw-plugin/1"

struct refusals {
	int n;
	cJSON *list; /* with -o json: the reasons, else NULL */
};

static void report_refusal(const char *what, void *ctx)
{
	struct refusals *rf = ctx;
	irfw_logf(IRFW_LOG_ERROR, NULL, "refused: %s", what);
	if (rf->list)
		cJSON_AddItemToArray(rf->list, cJSON_CreateString(what));
	rf->n++;
}

static void print_json(cJSON *doc)
{
	char *out = doc ? cJSON_Print(doc) : NULL;
	if (out)
		puts(out);
	free(out);
	cJSON_Delete(doc);
}

static void add_str_or_null(cJSON *o, const char *key, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

int irfw_plugins_list(struct irfw_run *r, bool json)
{
	struct refusals rf = {0, json ? cJSON_CreateArray() : NULL};
	irfw_loader_scan(&r->loader, report_refusal, &rf);
	if (json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "format", IRFW_OUTPUT_PLUGINS_FORMAT);
		cJSON *arr = cJSON_AddArrayToObject(doc, "plugins");
		for (size_t i = 0; i < r->loader.n_mods; i++) {
			const struct irfw_module *m = r->loader.mods[i];
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", m->name);
			add_str_or_null(o, "version", m->vt.version);
			add_str_or_null(o, "summary", m->vt.summary);
			cJSON_AddStringToObject(o, "path", m->path);
			char abi[16];
			snprintf(abi, sizeof(abi), "%u.%u", (unsigned)m->vt.abi_major,
			         (unsigned)m->vt.abi_minor);
			cJSON_AddStringToObject(o, "abi", abi);
			cJSON_AddItemToArray(arr, o);
		}
		cJSON *dirs = cJSON_AddArrayToObject(doc, "search_path");
		for (size_t d = 0; d < r->loader.n_dirs; d++)
			cJSON_AddItemToArray(dirs, cJSON_CreateString(r->loader.dirs[d]));
		cJSON_AddItemToObject(doc, "refused", rf.list);
		print_json(doc);
		return rf.n ? IRFW_RUN_USAGE : IRFW_RUN_OK;
	}
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
	return rf.n ? IRFW_RUN_USAGE : IRFW_RUN_OK;
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

/* ------------------------------------------------------------------ */
/* Roff: text from the tables, escaped so that it renders as written.  */

/* One paragraph or value: a backslash is \e, a dash \- (an option's
 * hyphen, not a typographic one), and a line starting with '.' or '\''
 * is not taken for a request. */
static void roff_put(const char *s, size_t n)
{
	bool bol = true;
	for (size_t i = 0; i < n && s[i]; i++) {
		char c = s[i];
		if (bol && (c == '.' || c == '\''))
			fputs("\\&", stdout);
		bol = c == '\n';
		if (c == '\\')
			fputs("\\e", stdout);
		else if (c == '-')
			fputs("\\-", stdout);
		else
			putchar(c);
	}
}

static void roff(const char *s)
{
	if (s)
		roff_put(s, strlen(s));
}

/* Paragraphs separated by a blank line become .PP paragraphs. */
static void roff_paragraphs(const char *text)
{
	for (const char *p = text; p && *p;) {
		while (*p == '\n')
			p++;
		if (!*p)
			break;
		const char *nl = strstr(p, "\n\n");
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		printf(".PP\n");
		roff_put(p, n);
		printf("\n");
		p += n;
	}
}

static void man_options(const struct irfw_option *opts)
{
	for (const struct irfw_option *o = opts; o && o->name; o++) {
		const char *def = (o->flags & IRFW_OPT_SECRET) && o->def ? "(secret)" : o->def;
		printf(".TP\n.B ");
		roff(o->name);
		printf("\n(%s", type_name(o->type));
		if (o->type == IRFW_OPT_ENUM && o->choices) {
			printf(": ");
			roff(o->choices);
		}
		if (o->flags & IRFW_OPT_REQUIRED)
			printf(", required");
		if (def && *def) {
			printf(", default: ");
			roff(def);
		}
		printf(")\n");
		if (o->help) {
			roff(o->help);
			printf("\n");
		}
	}
}

/* irfw-NAME(7): a complete page, from the module's own tables. */
static void man_page(const struct irfw_module *m)
{
	char up[128];
	size_t i = 0;
	for (; i < sizeof(up) - 1 && m->name[i]; i++)
		up[i] = (char)(m->name[i] >= 'a' && m->name[i] <= 'z' ? m->name[i] - 'a' + 'A' : m->name[i]);
	up[i] = '\0';
	printf(".TH IRFW\\-");
	roff(up);
	printf(" 7 \"\" \"irfw %s\" \"irfw plugins\"\n", PACKAGE_VERSION);
	printf(".SH NAME\nirfw\\-");
	roff(m->name);
	printf(" \\- ");
	roff(m->vt.summary ? m->vt.summary : "an irfw plugin");
	printf("\n.SH SYNOPSIS\n.nf\n[irfw]\npipeline = ..., ");
	roff(m->name);
	printf(", ...\n.PP\n[");
	roff(m->name);
	printf("]\n");
	for (const struct irfw_option *o = m->vt.options; o && o->name; o++) {
		roff(o->name);
		printf(" = %s\n", (o->flags & IRFW_OPT_REQUIRED) ? "VALUE" : "...");
	}
	printf(".fi\n.SH DESCRIPTION\n");
	if (m->vt.description)
		roff_paragraphs(m->vt.description);
	else {
		printf(".PP\n");
		roff(m->vt.summary ? m->vt.summary : "");
		printf(".\n");
	}
	printf(".PP\nModule %s", m->vt.version ? m->vt.version : "");
	printf(", plugin ABI %u.%u, default phase %s.\n", (unsigned)m->vt.abi_major,
	       (unsigned)m->vt.abi_minor,
	       m->vt.phase >= IRFW_PHASE_CONTAIN && m->vt.phase <= IRFW_PHASE_REPORT
	           ? irfw_phase_name(m->vt.phase)
	           : "preserve");
	printf(".B irfw check\nand\n.B \\-\\-dry\\-run\ncall %s.\n",
	       m->vt.check ? "its preflight, which changes nothing"
	                   : "nothing of it: it has no preflight and is reported not checked");
	printf(".SH OPTIONS\nKeys of the step's section.\n");
	man_options(m->vt.options);
	printf(".SS Keys of every step\n");
	man_options(irfw_step_options);
	printf(".SH AWS PERMISSIONS\n");
	if (!m->vt.actions || !m->vt.actions[0].action) {
		printf("None: the plugin calls no AWS action.\n");
	} else {
		printf("The IAM actions the step may call, as\n.B irfw policy\nprints them for a "
		       "site.\n");
		for (const struct irfw_action *a = m->vt.actions; a->action; a++) {
			printf(".TP\n.B ");
			roff(a->action);
			printf("\non ");
			roff(a->resource ? a->resource : "any resource (*)");
			if (a->when) {
				printf("; only when ");
				roff(a->when);
			}
			if (a->per) {
				printf("; per ");
				roff(a->per);
			}
			printf("\n");
		}
	}
	printf(".SH SEE ALSO\n.BR irfw (1),\n.BR irfw.ini (5),\n.BR irfw\\-plugin (7)\n");
}

static cJSON *options_json(const struct irfw_option *opts)
{
	cJSON *arr = cJSON_CreateArray();
	for (const struct irfw_option *o = opts; o && o->name; o++) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "name", o->name);
		cJSON_AddStringToObject(j, "type", type_name(o->type));
		if (o->type == IRFW_OPT_ENUM && o->choices)
			cJSON_AddStringToObject(j, "choices", o->choices);
		cJSON_AddBoolToObject(j, "required", (o->flags & IRFW_OPT_REQUIRED) != 0);
		cJSON_AddBoolToObject(j, "secret", (o->flags & IRFW_OPT_SECRET) != 0);
		/* A secret's default is not shown, as in the text. */
		add_str_or_null(j, "default", (o->flags & IRFW_OPT_SECRET) ? NULL : o->def);
		add_str_or_null(j, "help", o->help);
		cJSON_AddItemToArray(arr, j);
	}
	return arr;
}

static cJSON *describe_json(const struct irfw_module *m)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "format", IRFW_OUTPUT_PLUGIN_FORMAT);
	if (!m) {
		cJSON_AddStringToObject(doc, "name", "irfw");
		cJSON_AddStringToObject(doc, "summary", "the global settings ([irfw] section)");
		cJSON_AddItemToObject(doc, "options", options_json(irfw_global_options()));
		return doc;
	}
	cJSON_AddStringToObject(doc, "name", m->name);
	add_str_or_null(doc, "version", m->vt.version);
	add_str_or_null(doc, "summary", m->vt.summary);
	cJSON_AddStringToObject(doc, "path", m->path);
	char abi[16];
	snprintf(abi, sizeof(abi), "%u.%u", (unsigned)m->vt.abi_major, (unsigned)m->vt.abi_minor);
	cJSON_AddStringToObject(doc, "abi", abi);
	cJSON_AddStringToObject(doc, "phase",
	                        m->vt.phase >= IRFW_PHASE_CONTAIN && m->vt.phase <= IRFW_PHASE_REPORT
	                            ? irfw_phase_name(m->vt.phase)
	                            : "preserve");
	cJSON_AddBoolToObject(doc, "preflight", m->vt.check != NULL);
	add_str_or_null(doc, "description", m->vt.description);
	cJSON_AddItemToObject(doc, "options", options_json(m->vt.options));
	cJSON_AddItemToObject(doc, "step_options", options_json(irfw_step_options));
	cJSON *acts = cJSON_AddArrayToObject(doc, "actions");
	for (const struct irfw_action *a = m->vt.actions; a && a->action; a++) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "action", a->action);
		add_str_or_null(j, "resource", a->resource);
		add_str_or_null(j, "when", a->when);
		add_str_or_null(j, "per", a->per);
		cJSON_AddNumberToObject(j, "calls", a->calls);
		cJSON_AddItemToArray(acts, j);
	}
	return doc;
}

int irfw_plugins_describe(struct irfw_run *r, const char *name, int format)
{
	bool man = format == IRFW_DESCRIBE_MAN;
	if (strcmp(name, "irfw") == 0) {
		if (format == IRFW_DESCRIBE_JSON) {
			print_json(describe_json(NULL));
			return IRFW_RUN_OK;
		}
		/* The [irfw] section is irfw.ini(5)'s: there is no page of its
		 * own, so --man gives that section too. */
		man = man || format == IRFW_DESCRIBE_MAN_PAGE;
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
	if (format == IRFW_DESCRIBE_JSON) {
		print_json(describe_json(m));
		return IRFW_RUN_OK;
	}
	if (format == IRFW_DESCRIBE_MAN_PAGE) {
		man_page(m);
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
