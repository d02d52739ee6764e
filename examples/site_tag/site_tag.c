/*
 * site_tag.c - an example irfw plugin, built out of the irfw tree against
 * the installed SDK only: copy this folder, rename it, and make it yours.
 *
 * It tags the instance being handled with one tag of the site's own, say
 * acme:incident = IR-2026-05-01-031500, so that the site's inventory and
 * cost reports find it.  It shows the parts every plugin has: an options
 * table (documentation and validation in one), init checking the section,
 * a check (the preflight of `irfw check`) and a run, results
 * that name the AWS call that failed, and the exported vtable.
 *
 * The module name ("site_tag") must equal the file's basename (site_tag.so)
 * and be [a-z0-9_]+: the loader looks the entry point up by it.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The whole SDK: this one header (and cJSON, which it includes). */
#include <irfw/irfw.h>

/* The INI keys of a [site_tag] step.  The core refuses unknown keys and a
 * missing required one with file:line before touching any instance, checks
 * the types, and prints this table for `irfw plugins --describe site_tag`,
 * so `help` is the user's documentation. */
static const struct irfw_option options[] = {
    {.name = "key",
     .type = IRFW_OPT_STRING,
     .flags = IRFW_OPT_REQUIRED,
     .help = "Key of the tag to write on the instance (acme:incident)."},
    {.name = "value",
     .type = IRFW_OPT_STRING,
     .def = "${case_id}",
     .help = "Value of the tag, a template: ${case_id}, ${instance_id}, ${name_tag}, ${containment}..."},
    {.name = "overwrite",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Replace a value the instance already has under `key`; false: leave it and skip."},
    {.name = NULL},
};

/* Once per step, with the section already validated against the table.
 * What the types cannot say is checked here: a mistake is reported with
 * the file and line of the key, and irfw stops (exit 2) before any change.
 * This plugin keeps no state; it reads its options when it runs. */
static int init(irfw_step *step, void **state)
{
	const char *key = irfw_step_get(step, "key");
	*state = NULL;
	if (!key || !*key) {
		irfw_step_error(step, "key", "the tag key is empty");
		return -1;
	}
	if (strncmp(key, "aws:", 4) == 0) {
		irfw_step_error(step, "key", "'%s': the aws: prefix is reserved by AWS", key);
		return -1;
	}
	return 0;
}

/* The value the instance carried under `key` when irfw described it at the
 * start of the run, or NULL.  The core hands every step the instance as
 * DescribeInstances returned it, keys as on the wire (tagSet, key, value). */
static const char *current_value(irfw_target *t, const char *key)
{
	const cJSON *tag;
	cJSON_ArrayForEach(tag, cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "tagSet"))
	{
		const char *k = irfw_json_str(tag, "key");
		if (k && strcmp(k, key) == 0)
			return irfw_json_str(tag, "value");
	}
	return NULL;
}

/* One CreateTags call.  In a dry run (irfw check, --dry-run) the core sends
 * it with DryRun=true: AWS checks the permission and the parameters and
 * changes nothing, and irfw_aws_call() takes its DryRunOperation answer as
 * success.  Returns the step's result. */
static irfw_status tag_instance(irfw_target *t)
{
	irfw_step *step = irfw_target_step(t);
	const char *key = irfw_step_get(step, "key");
	const char *id = irfw_target_id(t);
	bool dry = irfw_target_dry_run(t);
	irfw_status status;
	cJSON *params = NULL, *result = NULL;
	/* Templates are expanded per instance; NULL when one does not expand
	 * (the core has logged which variable). */
	char *value = irfw_step_expand(t, "value");
	if (!value)
		return irfw_fail(t, "the value of %s does not expand (see the log)", key);

	const char *old = current_value(t, key);
	if (old && strcmp(old, value) != 0 && !irfw_step_get_bool(step, "overwrite")) {
		status = irfw_skip(t, "%s already has %s=%s (overwrite = false)", id, key, old);
		goto out;
	}

	/* Parameters in the API reference's shape; the core flattens the
	 * arrays into ResourceId.1, Tag.1.Key, Tag.1.Value. */
	params = cJSON_CreateObject();
	cJSON_AddItemToObject(params, "ResourceId", cJSON_CreateStringArray(&id, 1));
	cJSON *tag = cJSON_CreateObject();
	cJSON_AddStringToObject(tag, "Key", key);
	cJSON_AddStringToObject(tag, "Value", value);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(params, "Tag"), tag);
	if (irfw_aws_call(t, "ec2", "CreateTags", params, &result) != 0) {
		/* Adds AWS's error code, message and request id to the context. */
		status = irfw_fail_aws(t, "CreateTags %s=%s on %s", key, value, id);
		goto out;
	}
	/* Claim no more than AWS said: in a dry run, only that the call would
	 * be allowed. */
	if (dry)
		irfw_note(t, "dry run: CreateTags %s=%s on %s allowed", key, value, id);
	else
		irfw_note(t, "tagged %s=%s (request %s)", key, value, irfw_aws_last_request_id(t));
	status = IRFW_OK;
out:
	cJSON_Delete(result);
	cJSON_Delete(params);
	free(value);
	return status;
}

/* The preflight of `irfw check`: it must change nothing.  The core calls it
 * with irfw_target_dry_run() true, so the same CreateTags goes out with
 * DryRun and tells whether this identity may tag the instance.  A plugin
 * without check is reported "not checked" and never run by `irfw check`. */
static irfw_status check(irfw_target *t, void *state)
{
	(void)state;
	if (!irfw_target_dry_run(t)) /* cannot happen; never tag from a preflight */
		return irfw_fail(t, "preflight called outside a dry run");
	return tag_instance(t);
}

/* Called for different instances from several threads at once: it uses
 * nothing but its arguments and the core's services.  It may be called in
 * a dry run too (--dry-run), and is safe there: its only change is the
 * CreateTags that the core then sends with DryRun. */
static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	return tag_instance(t);
}

/* The vtable, with designated initialisers: fields this file does not name
 * (prepare, release, fini) are NULL, and fields a newer SDK appends stay
 * zero.  IRFW_PLUGIN_HEADER stamps the ABI version and the struct size. */
static const struct irfw_plugin site_tag = {
    IRFW_PLUGIN_HEADER,
    .name = "site_tag",
    .version = "1.0",
    .summary = "tag the instance with one key of the site's (an out-of-tree example)",
    .options = options,
    /* A tag is public: write it after the instance is contained and its
     * evidence preserved, not before (a site may override with phase =). */
    .phase = IRFW_PHASE_REPORT,
    .init = init,
    .check = check,
    .run = run,
    .description = "Writes one tag on the instance: `key` = `value`, a template expanded per "
                   "instance (by default the case id), in one CreateTags call. With overwrite = "
                   "false an instance that already has another value under the key keeps it, and "
                   "the step is skipped with the reason.\n"
                   "\n"
                   "`irfw check` and --dry-run send the same CreateTags with DryRun, so they tell "
                   "whether the identity may tag the instance, and change nothing.\n"
                   "\n"
                   "This plugin is the example of examples/ in the irfw source: a minimal plugin "
                   "built out of tree against the installed SDK.",
};

/* The one exported symbol, site_tag_LTX_irfw_plugin_get: everything else
 * is hidden by -fvisibility=hidden (see the Makefile). */
IRFW_PLUGIN_ENTRY(site_tag, site_tag)
