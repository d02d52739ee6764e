/*
 * tag.c - mark a quarantined instance, its volumes and its network
 * interfaces with the case, following the site's tag naming rules, so that
 * anyone looking at the console, a cost report or an inventory script sees
 * at once that the resource is evidence and whom to ask.
 *
 * The tags are fixed options with renamable keys rather than one list of
 * key=value templates: INI lists split on commas and blanks, which would
 * break values with spaces (an operator's ARN cannot have one, but a status
 * text can).  Free-form extra tags are a list of key=value without blanks.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, gmtime_r */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irfw/irfw.h"

/* EC2 limits, in Unicode characters. */
#define MAX_KEY_CHARS   128
#define MAX_VALUE_CHARS 256
/* CreateTags takes at most this many resource ids per call. */
#define MAX_RESOURCES_PER_CALL 1000

static const struct irfw_option opts[] = {
    {.name = "case_key",
     .type = IRFW_OPT_STRING,
     .def = "irfw:case",
     .help = "Key of the tag holding the case id. Empty: no such tag."},
    {.name = "status_key",
     .type = IRFW_OPT_STRING,
     .def = "irfw:status",
     .help = "Key of the status tag. Empty: no such tag."},
    {.name = "status_value",
     .type = IRFW_OPT_STRING,
     .def = "quarantined",
     .help = "Value of the status tag (a template)."},
    {.name = "time_key",
     .type = IRFW_OPT_STRING,
     .def = "irfw:quarantined-at",
     .help = "Key of the tag holding the time of tagging, ISO 8601 in UTC "
             "(2024-05-01T12:34:56Z). Empty: no such tag."},
    {.name = "operator_key",
     .type = IRFW_OPT_STRING,
     .def = "irfw:operator",
     .help = "Key of the tag holding the ARN of the identity that ran irfw. Empty: no such tag."},
    {.name = "extra",
     .type = IRFW_OPT_LIST,
     .def = "",
     .help = "More tags, as key=value words separated by commas or blanks (so neither key nor value "
             "may contain a blank or a comma); values are templates: team=secops, "
             "ticket=${case_id}. An extra tag with the key of a fixed one replaces it."},
    {.name = "resources",
     .type = IRFW_OPT_LIST,
     .def = "instance, volumes, enis",
     .help = "What to tag: any of instance, volumes (every attached EBS volume), enis (every "
             "attached network interface)."},
    {.name = NULL},
};

enum { RES_INSTANCE = 1, RES_VOLUMES = 2, RES_ENIS = 4 };

struct tag_state {
	unsigned resources; /* RES_* */
};

static int init(irfw_step *step, void **state)
{
	struct tag_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	int rc = 0;
	char **v = irfw_step_get_list(step, "resources");
	for (char **w = v; w && *w; w++) {
		if (strcmp(*w, "instance") == 0)
			st->resources |= RES_INSTANCE;
		else if (strcmp(*w, "volumes") == 0)
			st->resources |= RES_VOLUMES;
		else if (strcmp(*w, "enis") == 0)
			st->resources |= RES_ENIS;
		else {
			irfw_step_error(step, "resources",
			                "unknown resource kind '%s' (known: instance volumes enis)", *w);
			rc = -1;
		}
	}
	irfw_list_free(v);
	if (rc == 0 && !st->resources) {
		irfw_step_error(step, "resources",
		                "nothing to tag: name at least one of instance volumes enis");
		rc = -1;
	}
	v = irfw_step_get_list(step, "extra");
	for (char **w = v; w && *w; w++) {
		const char *eq = strchr(*w, '=');
		if (!eq || eq == *w) {
			irfw_step_error(step, "extra", "'%s' is not key=value", *w);
			rc = -1;
		} else if (strncmp(*w, "aws:", 4) == 0) {
			irfw_step_error(step, "extra", "'%s': the aws: prefix is reserved by AWS", *w);
			rc = -1;
		}
	}
	irfw_list_free(v);
	static const char *keys[] = {"case_key", "status_key", "time_key", "operator_key", NULL};
	for (const char **k = keys; *k; k++) {
		const char *val = irfw_step_get(step, *k);
		if (val && strncmp(val, "aws:", 4) == 0) {
			irfw_step_error(step, *k, "'%s': the aws: prefix is reserved by AWS", val);
			rc = -1;
		}
	}
	if (rc != 0) {
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static void fini(void *state)
{
	free(state);
}

/* Cut `s` in place to at most `max` UTF-8 characters, never inside one;
 * returns true when it was cut. */
static bool truncate_utf8(char *s, size_t max)
{
	size_t chars = 0;
	for (char *p = s; *p; p++) {
		if (((unsigned char)*p & 0xC0) == 0x80)
			continue; /* continuation byte */
		if (chars++ == max) {
			*p = '\0';
			return true;
		}
	}
	return false;
}

/* Add a tag to `tags` (a cJSON object key -> value), replacing an earlier
 * one with the same key: one CreateTags call must not name a key twice.
 * Takes ownership of key and value. */
static void put_tag(irfw_target *t, cJSON *tags, char *key, char *value)
{
	if (!key || !value || !*key)
		goto out; /* an empty key turns the tag off */
	if (truncate_utf8(key, MAX_KEY_CHARS))
		irfw_note(t, "tag key cut to %d characters: %s", MAX_KEY_CHARS, key);
	if (truncate_utf8(value, MAX_VALUE_CHARS))
		irfw_note(t, "value of tag %s cut to %d characters", key, MAX_VALUE_CHARS);
	cJSON_DeleteItemFromObjectCaseSensitive(tags, key);
	cJSON_AddStringToObject(tags, key, value);
out:
	free(key);
	free(value);
}

static char *iso_now(void)
{
	char buf[32];
	struct tm tm;
	time_t now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return strdup(buf);
}

/* The tags to set, per the step's options, for this target.  NULL when a
 * template does not expand (logged by core). */
static cJSON *build_tags(irfw_target *t)
{
	irfw_step *step = irfw_target_step(t);
	cJSON *tags = cJSON_CreateObject();
	const char *case_id = irfw_target_case_id(t);
	put_tag(t, tags, irfw_step_expand(t, "case_key"), strdup(case_id ? case_id : ""));
	char *sv = irfw_step_expand(t, "status_value");
	if (!sv)
		goto fail;
	put_tag(t, tags, irfw_step_expand(t, "status_key"), sv);
	put_tag(t, tags, irfw_step_expand(t, "time_key"), iso_now());
	const char *op = irfw_target_caller_arn(t);
	char *op_key = irfw_step_expand(t, "operator_key");
	if (op && *op) {
		put_tag(t, tags, op_key, strdup(op));
	} else {
		if (op_key && *op_key)
			irfw_note(t, "caller ARN unknown: no %s tag", op_key);
		free(op_key);
	}
	char **extra = irfw_step_get_list(step, "extra");
	for (char **w = extra; w && *w; w++) {
		char *eq = strchr(*w, '=');
		if (!eq)
			continue; /* refused by init */
		*eq = '\0';
		char *key = irfw_expand(t, *w);
		char *value = irfw_expand(t, eq + 1);
		if (!key || !value) {
			free(key);
			free(value);
			irfw_list_free(extra);
			goto fail;
		}
		put_tag(t, tags, key, value);
	}
	irfw_list_free(extra);
	return tags;
fail:
	cJSON_Delete(tags);
	return NULL;
}

/* Add `id` to the array unless it is there already. */
static void add_id(cJSON *ids, const char *id)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, ids)
	{
		if (strcmp(it->valuestring, id) == 0)
			return;
	}
	cJSON_AddItemToArray(ids, cJSON_CreateString(id));
}

/* The resource ids to tag; counts of volumes and ENIs for the note. */
static cJSON *collect_resources(irfw_target *t, unsigned kinds, int *n_vol, int *n_eni)
{
	const cJSON *inst = irfw_target_instance(t);
	cJSON *ids = cJSON_CreateArray();
	*n_vol = *n_eni = 0;
	if (kinds & RES_INSTANCE)
		add_id(ids, irfw_target_id(t));
	const cJSON *it;
	if (kinds & RES_VOLUMES) {
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(inst, "blockDeviceMapping"))
		{
			const char *vol =
			    irfw_json_str(cJSON_GetObjectItemCaseSensitive(it, "ebs"), "volumeId");
			if (vol) {
				add_id(ids, vol);
				(*n_vol)++;
			}
		}
	}
	if (kinds & RES_ENIS) {
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(inst, "networkInterfaceSet"))
		{
			const char *eni = irfw_json_str(it, "networkInterfaceId");
			if (eni) {
				add_id(ids, eni);
				(*n_eni)++;
			}
		}
	}
	return ids;
}

/* The instance's current values of the keys about to be set, so a release
 * can put them back. */
static cJSON *previous_values(irfw_target *t, const cJSON *tags)
{
	cJSON *prev = cJSON_CreateObject();
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "tagSet"))
	{
		const char *k = irfw_json_str(it, "key"), *v = irfw_json_str(it, "value");
		if (k && cJSON_GetObjectItemCaseSensitive(tags, k))
			cJSON_AddStringToObject(prev, k, v ? v : "");
	}
	return prev;
}

static irfw_status run(irfw_target *t, void *state)
{
	const struct tag_state *st = state;
	irfw_status status = IRFW_OK;
	int n_vol, n_eni;
	cJSON *ids = NULL;
	cJSON *tags = build_tags(t);
	if (!tags)
		return irfw_fail(t, "a tag template does not expand (see the log)");
	if (!cJSON_GetArraySize(tags)) {
		status = irfw_skip(t, "no tags configured (every key is empty)");
		goto out;
	}
	ids = collect_resources(t, st->resources, &n_vol, &n_eni);
	int n_ids = cJSON_GetArraySize(ids);
	if (n_ids == 0) {
		status = irfw_skip(t, "nothing to tag: no resources of the kinds configured");
		goto out;
	}

	/* Record before changing anything (a dry run changes nothing, and a
	 * release must not undo it). */
	cJSON *rec = cJSON_CreateObject();
	cJSON_AddItemToObject(rec, "resources", cJSON_Duplicate(ids, true));
	cJSON_AddItemToObject(rec, "tags", cJSON_Duplicate(tags, true));
	cJSON_AddItemToObject(rec, "previous_instance_values", previous_values(t, tags));
	if (irfw_target_dry_run(t))
		cJSON_Delete(rec);
	else
		irfw_record(t, "tags", rec);

	cJSON *tag_list = cJSON_CreateArray();
	const cJSON *tg;
	cJSON_ArrayForEach(tg, tags)
	{
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "Key", tg->string);
		cJSON_AddStringToObject(o, "Value", tg->valuestring);
		cJSON_AddItemToArray(tag_list, o);
	}
	/* One call for everything, unless there are more than EC2 takes. */
	for (int from = 0; from < n_ids; from += MAX_RESOURCES_PER_CALL) {
		cJSON *params = cJSON_CreateObject();
		cJSON *chunk = cJSON_AddArrayToObject(params, "ResourceId");
		for (int i = from; i < n_ids && i < from + MAX_RESOURCES_PER_CALL; i++)
			cJSON_AddItemToArray(chunk,
			                     cJSON_CreateString(cJSON_GetArrayItem(ids, i)->valuestring));
		cJSON_AddItemReferenceToObject(params, "Tag", tag_list);
		cJSON *res = NULL;
		int rc = irfw_aws_call(t, "ec2", "CreateTags", params, &res);
		cJSON_Delete(res);
		cJSON_Delete(params);
		if (rc != 0) {
			cJSON_Delete(tag_list);
			status = irfw_fail_aws(t, "CreateTags on %d resource(s) starting with %s",
			                       n_ids - from, cJSON_GetArrayItem(ids, from)->valuestring);
			goto out;
		}
	}
	cJSON_Delete(tag_list);

	char keys[512] = "";
	cJSON_ArrayForEach(tg, tags)
	{
		size_t len = strlen(keys);
		snprintf(keys + len, sizeof(keys) - len, "%s%s", len ? ", " : "", tg->string);
	}
	irfw_note(t, "%stagged %s%d volume%s and %d ENI%s with %d tag%s (%s)",
	          irfw_target_dry_run(t) ? "dry run: would have " : "",
	          (st->resources & RES_INSTANCE) ? "the instance, " : "", n_vol, n_vol == 1 ? "" : "s", n_eni,
	          n_eni == 1 ? "" : "s", cJSON_GetArraySize(tags), cJSON_GetArraySize(tags) == 1 ? "" : "s",
	          keys);
out:
	cJSON_Delete(ids);
	cJSON_Delete(tags);
	return status;
}

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "tag",
    .version = "1.0",
    .summary = "tag the instance, its volumes and ENIs with the case",
    .options = opts,
    .phase = IRFW_PHASE_REPORT,
    .init = init,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .fini = fini,
    .description =
        "Tags the instance, its attached EBS volumes and its network interfaces in one CreateTags "
        "call: the case id, a status (quarantined), the time of tagging in UTC, the ARN of the "
        "operator, and any extra key=value tags of the site. Every key can be renamed to fit the "
        "site's naming rules, and an empty key turns that tag off. Keys longer than 128 characters "
        "and values longer than 256 are cut, with a note. The tags set and the instance's former "
        "values of those keys are recorded under 'tags' in the case record.\n"
        "\n"
        "It runs late in the pipeline, after containment and preservation: a tag is the public "
        "sign that a resource is under investigation, so it should not alert an attacker watching "
        "the account before the instance is isolated, and it should describe what was actually "
        "done.\n"
        "\n"
        "Tags are not access control: anyone allowed to change tags can remove them. Resources "
        "that are not attached at the time of the run (a detached volume) are not tagged.",
};

IRFW_PLUGIN_ENTRY(tag, plugin)
