/*
 * tag.c - mark an instance under investigation, its volumes and its network
 * interfaces with the case, following the site's tag naming rules, so that
 * anyone looking at the console, a cost report or an inventory script sees
 * at once that the resource is evidence, whom to ask, and whether it is
 * really cut off.
 *
 * The status tag says what AWS shows, not what irfw tried: its value
 * follows the containment the core verified (irfw_target_containment), so
 * "quarantined" appears only on a contained instance, and the tags that
 * claim a quarantine (the time tag) or explain its absence (the cause tag)
 * are written only when they are true, and removed when an earlier run left
 * them and they no longer are.
 *
 * The tags are fixed options with renamable keys rather than one list of
 * key=value templates: INI lists split on commas and blanks, which would
 * break values with spaces (an operator's ARN cannot have one, but a status
 * text can).  Free-form extra tags are a list of key=value without blanks.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
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
/* Values per EC2 filter. */
#define MAX_FILTER_VALUES 200
/* Seconds before the second read-back of tags not shown yet (EC2 is
 * eventually consistent). */
#define SETTLE_S 1
/* The status tag's value after `irfw release`. */
#define RELEASED "released"

static const struct irfw_option opts[] = {
    {.name = "case_key",
     .type = IRFW_OPT_STRING,
     .def = "irfw:case",
     .help = "Key of the tag holding the case id. Empty: no such tag."},
    {.name = "status_key",
     .type = IRFW_OPT_STRING,
     .def = "irfw:status",
     .help = "Key of the status tag, whose value follows the instance's verified containment (the "
             "four status_* keys). Empty: no such tag."},
    {.name = "status_value",
     .type = IRFW_OPT_STRING,
     .def = "quarantined",
     .help = "Value of the status tag when the instance is contained: AWS shows every network "
             "interface in the quarantine group and nothing else open (a template)."},
    {.name = "status_partial",
     .type = IRFW_OPT_STRING,
     .def = "partially-contained",
     .help = "Value of the status tag when the instance is partially contained: something of it is "
             "still open, the cause tag says what (a template)."},
    {.name = "status_not_contained",
     .type = IRFW_OPT_STRING,
     .def = "containment-failed",
     .help = "Value of the status tag when containment was attempted and AWS does not show the "
             "instance cut off (a template)."},
    {.name = "status_not_attempted",
     .type = IRFW_OPT_STRING,
     .def = "under-investigation",
     .help = "Value of the status tag when no step of the run tried to contain the instance (a "
             "pipeline without isolate, or a dry run) (a template)."},
    {.name = "time_key",
     .type = IRFW_OPT_STRING,
     .def = "irfw:quarantined-at",
     .help = "Key of the tag holding the time of tagging, ISO 8601 in UTC (2024-05-01T12:34:56Z), "
             "written only when the instance is contained, since its key claims a quarantine; on "
             "an instance that is not, an earlier run's tag of this key is removed. Empty: no such "
             "tag."},
    {.name = "cause_key",
     .type = IRFW_OPT_STRING,
     .def = "irfw:containment",
     .help = "Key of the tag saying why the instance is not (fully) contained (\"eni-0ab still in "
             "sg-1\"), cut to 256 characters; written only when it is partially or not contained, "
             "removed otherwise when an earlier run left it. Empty: no such tag."},
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
	static const char *keys[] = {"case_key", "status_key", "time_key", "cause_key", "operator_key", NULL};
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
 * Takes ownership of key and value.  *written (may be NULL) gets a copy of
 * the key as set, or stays NULL when no tag was set. */
static void put_tag(irfw_target *t, cJSON *tags, char *key, char *value, char **written)
{
	if (!key || !value || !*key)
		goto out; /* an empty key turns the tag off */
	if (truncate_utf8(key, MAX_KEY_CHARS))
		irfw_note(t, "tag key cut to %d characters: %s", MAX_KEY_CHARS, key);
	if (truncate_utf8(value, MAX_VALUE_CHARS))
		irfw_note(t, "value of tag %s cut to %d characters", key, MAX_VALUE_CHARS);
	cJSON_DeleteItemFromObjectCaseSensitive(tags, key);
	cJSON_AddStringToObject(tags, key, value);
	if (written)
		*written = strdup(key);
out:
	free(key);
	free(value);
}

/* Add `key` (owned) to the keys to remove, cut as put_tag would have cut
 * it when an earlier run wrote it. */
static void drop_key(cJSON *remove, char *key)
{
	if (key && *key) {
		truncate_utf8(key, MAX_KEY_CHARS);
		cJSON_AddItemToArray(remove, cJSON_CreateString(key));
	}
	free(key);
}

static char *iso_now(void)
{
	char buf[21];
	return strdup(irfw_iso8601(time(NULL), buf));
}

/* A copy of `s` with line breaks and other control characters made blanks:
 * a tag value is read on one line in the console. */
static char *one_line(const char *s)
{
	char *out = strdup(s);
	for (char *p = out; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return out;
}

/* What the step does to the tags of one target. */
struct plan {
	cJSON *tags;   /* key -> value, to set */
	cJSON *remove; /* keys whose claim is not true now, to remove */
	irfw_containment containment;
	char *status_key; /* the status tag's key as set, or NULL when off */
};

static void plan_free(struct plan *pl)
{
	cJSON_Delete(pl->tags);
	cJSON_Delete(pl->remove);
	free(pl->status_key);
	memset(pl, 0, sizeof(*pl));
}

/* The tags to set and to remove, per the step's options and the instance's
 * containment as the core verified it.  -1 when a template does not
 * expand (logged by core). */
static int build_plan(irfw_target *t, struct plan *pl)
{
	/* The status option for each containment state. */
	static const char *const status_opt[] = {
	    [IRFW_CONTAINMENT_NOT_ATTEMPTED] = "status_not_attempted",
	    [IRFW_CONTAINED] = "status_value",
	    [IRFW_PARTIALLY_CONTAINED] = "status_partial",
	    [IRFW_NOT_CONTAINED] = "status_not_contained",
	};
	irfw_step *step = irfw_target_step(t);
	const char *cause_now = NULL;
	memset(pl, 0, sizeof(*pl));
	pl->tags = cJSON_CreateObject();
	pl->remove = cJSON_CreateArray();
	pl->containment = irfw_target_containment(t, &cause_now);
	/* A copy: the core rebuilds the cause at every irfw_target_containment()
	 * call, which irfw_expand() makes for ${containment}. */
	char *cause = cause_now && *cause_now ? one_line(cause_now) : NULL;
	/* A state this plugin does not know (a newer core) claims nothing. */
	if ((unsigned)pl->containment > IRFW_NOT_CONTAINED)
		pl->containment = IRFW_NOT_CONTAINED;
	bool contained = pl->containment == IRFW_CONTAINED;
	bool open = pl->containment == IRFW_PARTIALLY_CONTAINED || pl->containment == IRFW_NOT_CONTAINED;

	const char *case_id = irfw_target_case_id(t);
	put_tag(t, pl->tags, irfw_step_expand(t, "case_key"), strdup(case_id ? case_id : ""), NULL);
	char *sv = irfw_step_expand(t, status_opt[pl->containment]);
	if (!sv)
		goto fail;
	put_tag(t, pl->tags, irfw_step_expand(t, "status_key"), sv, &pl->status_key);
	/* The time tag's key claims a quarantine: only a contained instance
	 * gets it.  The cause tag explains why one is not. */
	if (contained)
		put_tag(t, pl->tags, irfw_step_expand(t, "time_key"), iso_now(), NULL);
	else
		drop_key(pl->remove, irfw_step_expand(t, "time_key"));
	if (open && cause) {
		put_tag(t, pl->tags, irfw_step_expand(t, "cause_key"), cause, NULL);
		cause = NULL;
	} else {
		drop_key(pl->remove, irfw_step_expand(t, "cause_key"));
	}

	const char *op = irfw_target_caller_arn(t);
	char *op_key = irfw_step_expand(t, "operator_key");
	if (op && *op) {
		put_tag(t, pl->tags, op_key, strdup(op), NULL);
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
		put_tag(t, pl->tags, key, value, NULL);
	}
	irfw_list_free(extra);
	/* A key being set (an extra tag may reuse one) is not removed. */
	for (int i = cJSON_GetArraySize(pl->remove) - 1; i >= 0; i--) {
		const char *k = cJSON_GetArrayItem(pl->remove, i)->valuestring;
		if (cJSON_GetObjectItemCaseSensitive(pl->tags, k))
			cJSON_DeleteItemFromArray(pl->remove, i);
	}
	free(cause);
	return 0;
fail:
	free(cause);
	plan_free(pl);
	return -1;
}

/* Keep in `remove` only the keys the instance carries (DescribeInstances at
 * the start of the run): they were set by an earlier run together on the
 * instance and its volumes and ENIs, so an instance without them means
 * there is nothing to remove, and no DeleteTags call is made. */
static void keep_carried(irfw_target *t, cJSON *remove)
{
	const cJSON *tag_set = cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "tagSet");
	for (int i = cJSON_GetArraySize(remove) - 1; i >= 0; i--) {
		const char *k = cJSON_GetArrayItem(remove, i)->valuestring;
		bool carried = false;
		const cJSON *it;
		cJSON_ArrayForEach(it, tag_set)
		{
			const char *tk = irfw_json_str(it, "key");
			if (tk && strcmp(tk, k) == 0)
				carried = true;
		}
		if (!carried)
			cJSON_DeleteItemFromArray(remove, i);
	}
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

/* The instance's current values of the keys about to be set or removed, so
 * a release can put them back. */
static cJSON *previous_values(irfw_target *t, const struct plan *pl)
{
	cJSON *prev = cJSON_CreateObject();
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "tagSet"))
	{
		const char *k = irfw_json_str(it, "key"), *v = irfw_json_str(it, "value");
		bool removed = false;
		const cJSON *r;
		cJSON_ArrayForEach(r, pl->remove)
		{
			if (k && strcmp(r->valuestring, k) == 0)
				removed = true;
		}
		if (k && (removed || cJSON_GetObjectItemCaseSensitive(pl->tags, k)))
			cJSON_AddStringToObject(prev, k, v ? v : "");
	}
	return prev;
}

/* CreateTags or DeleteTags of `tag_list` on every id, in as few calls as
 * EC2 takes.  Returns IRFW_OK or the step's failure. */
static irfw_status tag_call(irfw_target *t, const char *op, const cJSON *ids, cJSON *tag_list)
{
	int n_ids = cJSON_GetArraySize(ids);
	for (int from = 0; from < n_ids; from += MAX_RESOURCES_PER_CALL) {
		cJSON *params = cJSON_CreateObject();
		cJSON *chunk = cJSON_AddArrayToObject(params, "ResourceId");
		for (int i = from; i < n_ids && i < from + MAX_RESOURCES_PER_CALL; i++)
			cJSON_AddItemToArray(chunk,
			                     cJSON_CreateString(cJSON_GetArrayItem(ids, i)->valuestring));
		cJSON_AddItemReferenceToObject(params, "Tag", tag_list);
		cJSON *res = NULL;
		int rc = irfw_aws_call(t, "ec2", op, params, &res);
		cJSON_Delete(res);
		cJSON_Delete(params);
		if (rc != 0)
			return irfw_fail_aws(t, "%s on %d resource(s) starting with %s", op, n_ids - from,
			                     cJSON_GetArrayItem(ids, from)->valuestring);
	}
	return IRFW_OK;
}

/* "k1, k2" of an object's keys or an array's strings, into buf. */
static void join_keys(const cJSON *keys, char *buf, size_t size)
{
	const cJSON *k;
	buf[0] = '\0';
	cJSON_ArrayForEach(k, keys)
	{
		size_t len = strlen(buf);
		snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
		         cJSON_IsString(k) ? k->valuestring : k->string);
	}
}

/* One DescribeTags page into `seen`: resource id -> {key: value}. */
static int seen_page(irfw_target *t, const cJSON *result, void *ctx)
{
	(void)t;
	cJSON *seen = ctx;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(result, "tagSet"))
	{
		const char *id = irfw_json_str(it, "resourceId"), *k = irfw_json_str(it, "key");
		const char *v = irfw_json_str(it, "value");
		if (!id || !k)
			continue;
		cJSON *r = cJSON_GetObjectItemCaseSensitive(seen, id);
		if (!r)
			r = cJSON_AddObjectToObject(seen, id);
		if (r && !cJSON_GetObjectItemCaseSensitive(r, k))
			cJSON_AddStringToObject(r, k, v ? v : "");
	}
	return 0;
}

/* What AWS shows against the plan, for `ids`: "k=v on id" not there and
 * "k on id" still there, into `bad` (empty when all shows).  -1 when
 * DescribeTags failed (the target's error says why). */
static int tags_shown(irfw_target *t, const cJSON *ids, const struct plan *pl, irfw_strbuf *bad)
{
	cJSON *seen = cJSON_CreateObject();
	int n_ids = cJSON_GetArraySize(ids), rc = 0;
	const cJSON *k;
	/* Only the keys the step set or removed: a resource's other tags are
	 * not its business (and would only lengthen the answer). */
	cJSON *keys = cJSON_CreateArray();
	cJSON_ArrayForEach(k, pl->tags) cJSON_AddItemToArray(keys, cJSON_CreateString(k->string));
	cJSON_ArrayForEach(k, pl->remove) cJSON_AddItemToArray(keys, cJSON_CreateString(k->valuestring));
	for (int from = 0; rc == 0 && from < n_ids; from += MAX_FILTER_VALUES) {
		cJSON *p = cJSON_CreateObject();
		for (int i = from; i < n_ids && i < from + MAX_FILTER_VALUES; i++)
			irfw_ec2_filter(p, "resource-id", cJSON_GetArrayItem(ids, i)->valuestring);
		cJSON_ArrayForEach(k, keys) irfw_ec2_filter(p, "key", k->valuestring);
		rc = irfw_aws_paginate(t, "ec2", "DescribeTags", p, seen_page, seen) == 0 ? 0 : -1;
		cJSON_Delete(p);
	}
	cJSON_Delete(keys);
	const cJSON *id, *walk = rc == 0 ? ids : NULL;
	cJSON_ArrayForEach(id, walk)
	{
		const cJSON *has = cJSON_GetObjectItemCaseSensitive(seen, id->valuestring);
		cJSON_ArrayForEach(k, pl->tags)
		{
			const char *v = irfw_json_str(has, k->string);
			if (!v || strcmp(v, k->valuestring) != 0)
				irfw_strbuf_printf(bad, "%s%s=%s not on %s", irfw_strbuf_len(bad) ? ", " : "",
				                   k->string, k->valuestring, id->valuestring);
		}
		cJSON_ArrayForEach(k, pl->remove)
		{
			if (irfw_json_str(has, k->valuestring))
				irfw_strbuf_printf(bad, "%s%s still on %s", irfw_strbuf_len(bad) ? ", " : "",
				                   k->valuestring, id->valuestring);
		}
	}
	cJSON_Delete(seen);
	return rc;
}

/* Read the tags back after the change, once more SETTLE_S later when
 * something does not show yet.  IRFW_OK when AWS shows the plan on every
 * resource; else the step's failure. */
static irfw_status read_back(irfw_target *t, const cJSON *ids, const struct plan *pl)
{
	irfw_strbuf *bad = irfw_strbuf_new();
	irfw_status st = IRFW_OK;
	for (int pass = 0; pass < 2; pass++) {
		irfw_strbuf_truncate(bad, 0);
		if (tags_shown(t, ids, pl, bad) != 0) {
			st = irfw_fail_aws(t, "CreateTags answered OK, but the tags could not be read back "
			                      "(DescribeTags)");
			break;
		}
		if (!irfw_strbuf_len(bad))
			break;
		if (pass == 0) {
			irfw_log(t, IRFW_LOG_INFO, "tags not shown yet (%s); reading again in %d s",
			         irfw_strbuf_str(bad), SETTLE_S);
			struct timespec ts = {.tv_sec = SETTLE_S};
			nanosleep(&ts, NULL);
			continue;
		}
		st = irfw_fail(t,
		               "CreateTags and DeleteTags answered OK, but DescribeTags shows otherwise: %s",
		               irfw_strbuf_str(bad));
	}
	irfw_strbuf_free(bad);
	return st;
}

static irfw_status run(irfw_target *t, void *state)
{
	const struct tag_state *st = state;
	irfw_status status = IRFW_OK;
	int n_vol, n_eni;
	cJSON *ids = NULL, *tag_list = NULL, *key_list = NULL;
	struct plan pl;
	if (build_plan(t, &pl) != 0)
		return irfw_fail(t, "a tag template does not expand (see the log)");
	if (!cJSON_GetArraySize(pl.tags) && !cJSON_GetArraySize(pl.remove)) {
		status = irfw_skip(t, "no tags configured (every key is empty)");
		goto out;
	}
	ids = collect_resources(t, st->resources, &n_vol, &n_eni);
	if (cJSON_GetArraySize(ids) == 0) {
		status = irfw_skip(t, "nothing to tag: no resources of the kinds configured");
		goto out;
	}
	/* Without the instance among the resources its tags cannot tell
	 * whether an earlier run left a claim: remove it everywhere. */
	if (st->resources & RES_INSTANCE)
		keep_carried(t, pl.remove);
	const char *cont_name = irfw_containment_name(pl.containment);

	/* Record before changing anything (a dry run changes nothing, and a
	 * release must not undo it). */
	cJSON *rec = cJSON_CreateObject();
	cJSON_AddItemToObject(rec, "resources", cJSON_Duplicate(ids, true));
	cJSON_AddStringToObject(rec, "containment", cont_name);
	cJSON_AddItemToObject(rec, "tags", cJSON_Duplicate(pl.tags, true));
	if (cJSON_GetArraySize(pl.remove))
		cJSON_AddItemToObject(rec, "removed", cJSON_Duplicate(pl.remove, true));
	cJSON_AddItemToObject(rec, "previous_instance_values", previous_values(t, &pl));
	if (irfw_target_dry_run(t))
		cJSON_Delete(rec);
	else
		irfw_record_result(t, "tags", rec);

	/* The status first: if the removal fails, the instance still says
	 * what is true now, and the failure names what is left.  The lists
	 * are built once, in holders, and sent with every chunk of ids. */
	tag_list = cJSON_CreateObject();
	const cJSON *tg;
	cJSON_ArrayForEach(tg, pl.tags) irfw_ec2_tag(tag_list, tg->string, tg->valuestring);
	cJSON *set = cJSON_GetObjectItemCaseSensitive(tag_list, "Tag");
	if (cJSON_GetArraySize(set) && (status = tag_call(t, "CreateTags", ids, set)) != IRFW_OK)
		goto out;
	/* A key without a value deletes the tag whatever its value. */
	key_list = cJSON_CreateObject();
	cJSON_ArrayForEach(tg, pl.remove) irfw_ec2_tag(key_list, tg->valuestring, NULL);
	cJSON *drop = cJSON_GetObjectItemCaseSensitive(key_list, "Tag");
	if (cJSON_GetArraySize(drop) && (status = tag_call(t, "DeleteTags", ids, drop)) != IRFW_OK)
		goto out;

	bool dry = irfw_target_dry_run(t);
	/* Said tagged only when AWS shows it. */
	if (!dry && (status = read_back(t, ids, &pl)) != IRFW_OK)
		goto out;
	char keys[512], removed[256] = "", status_text[400];
	join_keys(pl.tags, keys, sizeof(keys));
	if (cJSON_GetArraySize(pl.remove)) {
		char rk[200];
		join_keys(pl.remove, rk, sizeof(rk));
		snprintf(removed, sizeof(removed), "; %s %s, no longer true",
		         dry ? "would have removed" : "removed", rk);
	}
	const cJSON *sv = pl.status_key ? cJSON_GetObjectItemCaseSensitive(pl.tags, pl.status_key) : NULL;
	if (cJSON_IsString(sv))
		snprintf(status_text, sizeof(status_text), "status %s=%s (instance %s)", pl.status_key,
		         sv->valuestring, cont_name);
	else
		snprintf(status_text, sizeof(status_text), "no status tag (instance %s)", cont_name);
	irfw_note(t, "%stagged %s%d volume%s and %d ENI%s with %d tag%s (%s); %s%s",
	          dry ? "dry run: would have " : "", (st->resources & RES_INSTANCE) ? "the instance, " : "",
	          n_vol, n_vol == 1 ? "" : "s", n_eni, n_eni == 1 ? "" : "s", cJSON_GetArraySize(pl.tags),
	          cJSON_GetArraySize(pl.tags) == 1 ? "" : "s", keys, status_text, removed);
out:
	cJSON_Delete(tag_list);
	cJSON_Delete(key_list);
	cJSON_Delete(ids);
	plan_free(&pl);
	return status;
}

/*
 * `irfw release`: the resources tagged keep the case id and the operator
 * (the history of the resource), the status becomes "released", and the
 * tags claiming a quarantine or explaining an open one (time_key,
 * cause_key) are removed.  Read back on the instance.
 */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	irfw_step *step = irfw_target_step(t);
	const cJSON *rec = irfw_record_get(t, irfw_step_name(step), "tags");
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(rec, "resources");
	const char *status_key = irfw_step_get(step, "status_key");
	const char *drop_keys[] = {irfw_step_get(step, "time_key"), irfw_step_get(step, "cause_key")};
	irfw_status st = IRFW_OK;
	cJSON *set = cJSON_CreateObject(), *drop = cJSON_CreateObject(), *res = NULL, *p = NULL;
	if (cJSON_GetArraySize(ids) == 0) {
		st = irfw_skip(t, "no tags recorded: nothing to put back");
		goto out;
	}
	if (status_key && *status_key)
		irfw_ec2_tag(set, status_key, RELEASED);
	for (size_t i = 0; i < sizeof(drop_keys) / sizeof(drop_keys[0]); i++)
		if (drop_keys[i] && *drop_keys[i])
			irfw_ec2_tag(drop, drop_keys[i], NULL);
	cJSON *sl = cJSON_GetObjectItemCaseSensitive(set, "Tag"),
	      *dl = cJSON_GetObjectItemCaseSensitive(drop, "Tag");
	if (cJSON_GetArraySize(sl) && (st = tag_call(t, "CreateTags", ids, sl)) != IRFW_OK)
		goto out;
	if (cJSON_GetArraySize(dl) && (st = tag_call(t, "DeleteTags", ids, dl)) != IRFW_OK)
		goto out;
	if (irfw_target_dry_run(t)) {
		irfw_note(t, "dry run: would set %s=%s and remove the quarantine tags on %d resource(s)",
		          status_key && *status_key ? status_key : "(no status key)", RELEASED,
		          cJSON_GetArraySize(ids));
		goto out;
	}
	/* Read back what the instance carries now. */
	p = cJSON_CreateObject();
	irfw_ec2_filter(p, "resource-id", irfw_target_id(t));
	if (irfw_aws_call(t, "ec2", "DescribeTags", p, &res) != 0) {
		st = irfw_fail_aws(t, "DescribeTags (read back)");
		goto out;
	}
	bool status_ok = !(status_key && *status_key);
	char left[300] = "";
	const cJSON *tg;
	cJSON_ArrayForEach(tg, cJSON_GetObjectItemCaseSensitive(res, "tagSet"))
	{
		const char *k = irfw_json_str(tg, "key"), *v = irfw_json_str(tg, "value");
		if (!k)
			continue;
		if (status_key && strcmp(k, status_key) == 0 && v && strcmp(v, RELEASED) == 0)
			status_ok = true;
		for (size_t i = 0; i < sizeof(drop_keys) / sizeof(drop_keys[0]); i++)
			if (drop_keys[i] && *drop_keys[i] && strcmp(k, drop_keys[i]) == 0) {
				size_t n = strlen(left);
				snprintf(left + n, sizeof(left) - n, "%s%s", n ? ", " : "", k);
			}
	}
	if (!status_ok || left[0]) {
		st = irfw_fail(t, "the instance does not show the release: %s%s%s%s%s",
		               status_ok ? "" : status_key, status_ok ? "" : " is not " RELEASED,
		               left[0] && !status_ok ? "; " : "", left, left[0] ? " still set" : "");
		goto out;
	}
	irfw_note(t, "verified: %s=%s on the instance, quarantine tags removed from %d resource(s)",
	          status_key && *status_key ? status_key : "(no status key)", RELEASED,
	          cJSON_GetArraySize(ids));
out:
	cJSON_Delete(set);
	cJSON_Delete(drop);
	cJSON_Delete(res);
	cJSON_Delete(p);
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "ec2:CreateTags", .per = "instance", .calls = 1},
    {.action = "ec2:DeleteTags", .per = "instance"},
    /* The read-back (release reads back too). */
    {.action = "ec2:DescribeTags", .per = "instance", .calls = 1},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "tag",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "tag the instance, its volumes and ENIs with the case and its verified containment",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_REPORT,
    .init = init,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .release = release,
    .fini = fini,
    .description =
        "Tags the instance, its attached EBS volumes and its network interfaces in one CreateTags "
        "call: the case id, a status, the time of tagging in UTC, the ARN of the operator, and any "
        "extra key=value tags of the site. Every key can be renamed to fit the site's naming rules, "
        "and an empty key turns that tag off. Keys longer than 128 characters and values longer than "
        "256 are cut, with a note. The tags set, the instance's containment, and the instance's former "
        "values of those keys are recorded under 'tags' in the case record. The tags are then read back "
        "(one DescribeTags of the resources and the step's keys; what does not show yet is read once more "
        "a second later, as EC2 is eventually consistent): the step says tagged only when AWS shows every "
        "tag on every resource and none of the removed ones, and fails naming what is missing otherwise.\n"
        "\n"
        "The status tag says what AWS shows, not what was tried: its value follows the containment "
        "the core verified by reading AWS back. status_value (quarantined) only when the instance is "
        "contained; status_partial (partially-contained), status_not_contained (containment-failed) or "
        "status_not_attempted (under-investigation) otherwise. The time tag (irfw:quarantined-at) "
        "claims a quarantine, so it is written only on a contained instance; the cause tag "
        "(irfw:containment) says what is still open, and is written only on an instance that is "
        "partially or not contained. When the instance carries one of these two from an earlier run "
        "and it is no longer true, it is removed (DeleteTags) from every resource tagged. The step's "
        "detail names the status written.\n"
        "\n"
        "It runs late in the pipeline (report phase), after containment and preservation: a tag is the "
        "public sign that a resource is under investigation, so it should not alert an attacker "
        "watching the account before the instance is isolated, and it should describe what was "
        "actually done.\n"
        "\n"
        "Tags are not access control: anyone allowed to change tags can remove them. Resources "
        "that are not attached at the time of the run (a detached volume) are not tagged.",
};

IRFW_PLUGIN_ENTRY(tag, plugin)
