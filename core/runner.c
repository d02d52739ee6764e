/*
 * runner.c - the public API for programs that run irfw (irfw/runner.h):
 * a thin shell over the run (struct irfw_run) that copies its settings,
 * checks values that are wrong by themselves, and turns the engine's
 * outcome into an irfw_result.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "run.h"
#include "casestore.h"
#include "plugins_doc.h"
#include "fleet.h"
#include "policy.h"
#include "release.h"
#include "verify.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/names.h"
#include "irfw/runner.h"

struct irfw_runner {
	struct irfw_run run;
	bool json, loaded;
	struct irfw_release_opts release;
	/* Owned copies of the settings the run points to. */
	char *values[IRFW_SET_RESTORE_GROUPS + 1];
};

irfw_runner *irfw_runner_new(void)
{
	irfw_runner *r = calloc(1, sizeof(*r));
	if (r)
		irfw_run_init(&r->run);
	return r;
}

void irfw_runner_free(irfw_runner *r)
{
	if (!r)
		return;
	irfw_strv_free(r->run.only);
	irfw_strv_free(r->run.skip);
	irfw_run_free(&r->run);
	for (size_t i = 0; i < sizeof(r->values) / sizeof(r->values[0]); i++)
		free(r->values[i]);
	free(r);
}

int irfw_runner_set(irfw_runner *r, irfw_setting what, const char *value)
{
	if ((unsigned)what > IRFW_SET_RESTORE_GROUPS || !value)
		return -1;
	/* Every value may reach JSON (the report, the record) or AWS: UTF-8. */
	if (!irfw_utf8_valid(value)) {
		char *shown = irfw_escape_text(value);
		irfw_logf(IRFW_LOG_ERROR, NULL, "'%s' is not UTF-8 text: options take UTF-8",
		          shown ? shown : "?");
		free(shown);
		return -1;
	}
	if (what == IRFW_SET_JOBS) {
		long jobs;
		if (!irfw_parse_long(value, &jobs) || jobs < 1 || jobs > 64) {
			irfw_logf(IRFW_LOG_ERROR, NULL, "--jobs takes a number from 1 to 64");
			return -1;
		}
		r->run.jobs = jobs;
		return 0;
	}
	/* A usage error, before any AWS call (the case's folder name). */
	if (what == IRFW_SET_CASE_ID && !irfw_case_id_valid(value)) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "--case-id '%s' is not a case id: use letters, digits and . _ - : (at most 128)",
		          value);
		return -1;
	}
	if (what == IRFW_SET_FILTER)
		return irfw_fleet_add_filter(&r->run, value);
	if (what == IRFW_SET_FINDING)
		return irfw_fleet_add_findings(&r->run, value);
	if (what == IRFW_SET_ONLY || what == IRFW_SET_SKIP) {
		char ***list = what == IRFW_SET_ONLY ? &r->run.only : &r->run.skip;
		irfw_strv_free(*list);
		irfw_split_list(value, list);
		return *list ? 0 : -1;
	}
	char *copy = strdup(value);
	if (!copy)
		return -1;
	free(r->values[what]);
	r->values[what] = copy;
	switch (what) {
	case IRFW_SET_CONF:
		r->run.conf_path = copy;
		break;
	case IRFW_SET_REGION:
		r->run.region = copy;
		break;
	case IRFW_SET_PROFILE:
		r->run.profile = copy;
		break;
	case IRFW_SET_SGID:
		r->run.sgid = copy;
		break;
	case IRFW_SET_BUCKET:
		r->run.bucket = copy;
		break;
	case IRFW_SET_TOPIC:
		r->run.topic = copy;
		break;
	case IRFW_SET_CASE_ID:
		r->run.case_id = copy;
		break;
	case IRFW_SET_EVIDENCE_DIR:
		r->run.evidence_dir_opt = copy;
		break;
	case IRFW_SET_EVENTS:
		r->run.events_path = copy;
		break;
	case IRFW_SET_RESTORE_GROUPS:
		r->release.restore_groups = copy;
		break;
	default:
		break;
	}
	return 0;
}

void irfw_runner_set_flag(irfw_runner *r, irfw_flag what, bool on)
{
	switch (what) {
	case IRFW_FLAG_DRY_RUN:
		r->run.dry_run = on;
		break;
	case IRFW_FLAG_NO_RESUME:
		r->run.no_resume = on;
		break;
	case IRFW_FLAG_JSON:
		r->json = on;
		break;
	case IRFW_FLAG_PROGRESS:
		r->run.progress.on = on;
		break;
	case IRFW_FLAG_YES:
		r->run.yes = on;
		break;
	case IRFW_FLAG_FORCE:
		r->release.force = on;
		break;
	case IRFW_FLAG_UNPROTECT:
		r->release.unprotect = on;
		break;
	case IRFW_FLAG_POLICY_RELEASE:
		r->run.policy_release = on;
		break;
	}
}

int irfw_runner_add_instance(irfw_runner *r, const char *id)
{
	return irfw_run_add_target(&r->run, id) == 0 ? 0 : -1;
}

int irfw_runner_add_instance_file(irfw_runner *r, const char *path)
{
	struct stat st;
	bool in = strcmp(path, "-") == 0;
	if (!in && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "--from-file %s: is a folder; give a file of instance ids, one a line", path);
		return -1;
	}
	FILE *f = in ? stdin : fopen(path, "r");
	if (!f) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "--from-file %s: %s", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	int rc = 0, lineno = 0;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		char *id = irfw_trim(line);
		if (!*id || *id == '#')
			continue;
		if (!irfw_valid_instance_id(id)) {
			char *e = irfw_escape_text(id);
			irfw_logf(IRFW_LOG_ERROR, NULL, "%s:%d: '%s' is not an instance id", path, lineno,
			          e ? e : "");
			free(e);
			rc = -1;
			continue;
		}
		if (irfw_run_add_target(&r->run, id) != 0)
			rc = -1;
	}
	free(line);
	if (!in)
		fclose(f);
	return rc;
}

size_t irfw_runner_instance_count(const irfw_runner *r)
{
	/* A filter names instances too, found when the run starts. */
	return r->run.batch.n + r->run.n_filters;
}

static irfw_result from_status(int status)
{
	switch (status) {
	case IRFW_RUN_OK:
		return IRFW_RESULT_OK;
	case IRFW_RUN_STEP_FAILED:
		return IRFW_RESULT_STEP_FAILED;
	case IRFW_RUN_NOT_HANDLED:
		return IRFW_RESULT_NOT_HANDLED;
	case IRFW_RUN_NOT_CONTAINED:
		return IRFW_RESULT_NOT_CONTAINED;
	default:
		return IRFW_RESULT_USAGE;
	}
}

irfw_result irfw_runner_load(irfw_runner *r)
{
	if (r->json && r->run.events_path && strcmp(r->run.events_path, "-") == 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "--events - and --output json both want standard output: give "
		          "--events a file");
		return IRFW_RESULT_USAGE;
	}
	irfw_result res = from_status(irfw_run_load(&r->run, true));
	r->loaded = res == IRFW_RESULT_OK;
	return res;
}

irfw_result irfw_runner_plan(irfw_runner *r)
{
	if (!r->loaded)
		return IRFW_RESULT_USAGE;
	if (r->run.n_filters) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "--plan makes no AWS call, so it cannot find what --filter "
		          "matches: use irfw check --filter ... to see them");
		return IRFW_RESULT_USAGE;
	}
	return from_status(irfw_run_plan(&r->run, r->json));
}

irfw_result irfw_runner_execute(irfw_runner *r)
{
	if (!r->loaded)
		return IRFW_RESULT_USAGE;
	return from_status(irfw_run_execute(&r->run, r->json, false));
}

irfw_result irfw_runner_check(irfw_runner *r)
{
	if (!r->loaded)
		return IRFW_RESULT_USAGE;
	/* check changes nothing: its steps run dry. */
	r->run.dry_run = true;
	/* Without instances (and no --filter that may find some), -o json
	 * gets the same document as with them, listing none: the dry run of
	 * an empty batch, which checks the configuration and credentials,
	 * touches no instance and writes no case record. */
	if (r->json && r->run.batch.n == 0 && r->run.n_filters == 0)
		return from_status(irfw_run_execute(&r->run, true, false));
	return from_status(irfw_run_execute(&r->run, r->json, true));
}

irfw_result irfw_runner_release(irfw_runner *r)
{
	if (!r->loaded)
		return IRFW_RESULT_USAGE;
	if (r->run.n_filters || r->run.findings) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "release takes the instances by id (-i, --from-file), not --filter or --finding: "
		          "it undoes what one case recorded for each");
		return IRFW_RESULT_USAGE;
	}
	return from_status(irfw_run_release(&r->run, &r->release, r->json));
}

irfw_result irfw_runner_plugins(irfw_runner *r, const char *name, irfw_describe how)
{
	/* A broken configuration should not hide the installed plugins. */
	irfw_run_load(&r->run, false);
	if (!r->run.loader.ltdl_up)
		return IRFW_RESULT_USAGE;
	int format = r->json                            ? IRFW_DESCRIBE_JSON
	             : how == IRFW_DESCRIBE_AS_MAN      ? IRFW_DESCRIBE_MAN
	             : how == IRFW_DESCRIBE_AS_MAN_PAGE ? IRFW_DESCRIBE_MAN_PAGE
	             : how == IRFW_DESCRIBE_AS_INI      ? IRFW_DESCRIBE_INI
	                                                : IRFW_DESCRIBE_TEXT;
	return from_status(name ? irfw_plugins_describe(&r->run, name, format)
	                        : irfw_plugins_list(&r->run, r->json));
}

irfw_result irfw_runner_policy(irfw_runner *r)
{
	if (!r->loaded)
		return IRFW_RESULT_USAGE;
	size_t undeclared = 0;
	cJSON *doc = irfw_policy_document(&r->run, &undeclared);
	char *out = doc ? cJSON_Print(doc) : NULL;
	if (out)
		puts(out);
	free(out);
	cJSON_Delete(doc);
	return out ? IRFW_RESULT_OK : IRFW_RESULT_USAGE;
}

irfw_result irfw_runner_verify(irfw_runner *r, const char *path, bool s3)
{
	struct irfw_verify_opts o = {
	    .s3 = s3,
	    .json = r->json,
	    .region = r->run.region,
	    .profile = r->run.profile,
	};
	struct irfw_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	bool have_cfg = false;
	/* Only the site file's client settings matter here: no plugin is loaded. */
	if (s3 && r->run.conf_path) {
		if (irfw_config_load(r->run.conf_path, &cfg) != 0) {
			for (size_t i = 0; i < cfg.n_errors; i++)
				irfw_logf(IRFW_LOG_ERROR, NULL, "%s", cfg.errors[i]);
			irfw_config_free(&cfg);
			return IRFW_RESULT_USAGE;
		}
		have_cfg = true;
		const struct irfw_section *g = irfw_config_section(&cfg, "irfw");
		const struct irfw_kv_line *kv;
		bool ps = false;
		if (!o.region && (kv = irfw_section_find(g, "region")))
			o.region = kv->value;
		if (!o.profile && (kv = irfw_section_find(g, "profile")))
			o.profile = kv->value;
		if ((kv = irfw_section_find(g, "endpoint_url")))
			o.endpoint_url = kv->value;
		if ((kv = irfw_section_find(g, "ca_file")))
			o.ca_file = kv->value;
		if ((kv = irfw_section_find(g, "s3_path_style")))
			o.s3_path_style = irfw_parse_bool(kv->value, &ps) && ps;
	}
	int rc = irfw_verify_case(path, &o);
	if (have_cfg)
		irfw_config_free(&cfg);
	return rc == 0 ? IRFW_RESULT_OK : rc == 1 ? IRFW_RESULT_STEP_FAILED : IRFW_RESULT_USAGE;
}

void irfw_runner_interrupt(int sig)
{
	irfw_run_interrupt(sig);
}

int irfw_runner_interrupted(const irfw_runner *r)
{
	return r->run.interrupted ? r->run.interrupted : irfw_run_interrupt_signal();
}

void irfw_set_log_level(irfw_log_level level)
{
	irfw_log_set_level(level);
}

void irfw_set_log_color(bool on)
{
	irfw_log_set_color(on);
}

const char *irfw_version(void)
{
	return PACKAGE_VERSION;
}
