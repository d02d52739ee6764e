/*
 * fleet.c - filters and findings as sources of instances (fleet.h).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/names.h"

/* Findings larger than this are not a finding file. */
#define MAX_FINDINGS_BYTES ((size_t)64 << 20)
/* Listing more than this many matches before asking helps nobody. */
#define MAX_LISTED 50

/* ------------------------------------------------------------------ */
/* Filters.                                                            */

int irfw_fleet_add_filter(struct irfw_run *r, const char *spec)
{
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec || !eq[1]) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "--filter %s: expected NAME=VALUES, such as tag:app=web, vpc-id=vpc-1 or "
		          "instance-state-name=running (VALUES comma-separated)",
		          spec);
		return -1;
	}
	/* An empty value (tag:app=, or a, ,b) would select instances whose
	 * value is empty, which nobody means. */
	for (const char *v = eq + 1;;) {
		const char *end = strchr(v, ',');
		size_t len = end ? (size_t)(end - v) : strlen(v), blank = 0;
		while (blank < len && (v[blank] == ' ' || v[blank] == '\t'))
			blank++;
		if (blank == len) {
			irfw_logf(IRFW_LOG_ERROR, NULL,
			          "--filter %s: an empty value; give each value of VALUES (comma-separated)",
			          spec);
			return -1;
		}
		if (!end)
			break;
		v = end + 1;
	}
	char **v = realloc(r->filters, (r->n_filters + 1) * sizeof(*v));
	char *copy = strdup(spec);
	if (!v || !copy) {
		free(copy);
		if (v)
			r->filters = v;
		return -1;
	}
	r->filters = v;
	r->filters[r->n_filters++] = copy;
	return 0;
}

/* The DescribeInstances parameters of the filters. */
static cJSON *filter_params(const struct irfw_run *r)
{
	cJSON *p = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(p, "Filter");
	for (size_t i = 0; i < r->n_filters; i++) {
		const char *eq = strchr(r->filters[i], '=');
		cJSON *f = cJSON_CreateObject();
		char *name = strndup(r->filters[i], (size_t)(eq - r->filters[i]));
		cJSON_AddStringToObject(f, "Name", name ? name : "");
		free(name);
		cJSON *vals = cJSON_AddArrayToObject(f, "Value");
		char **words = NULL;
		irfw_split_list(eq + 1, &words);
		for (char **w = words; w && *w; w++)
			cJSON_AddItemToArray(vals, cJSON_CreateString(*w));
		irfw_strv_free(words);
		cJSON_AddItemToArray(arr, f);
	}
	return p;
}

static const char *name_of(const cJSON *inst)
{
	const cJSON *tag;
	cJSON_ArrayForEach(tag, cJSON_GetObjectItemCaseSensitive(inst, "tagSet"))
	{
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(tag, "key");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(tag, "value");
		if (cJSON_IsString(k) && cJSON_IsString(v) && strcmp(k->valuestring, "Name") == 0)
			return v->valuestring;
	}
	return NULL;
}

/* Ask on the terminal; true for y/yes.  *asked false without a terminal. */
static bool confirm(const char *question, bool *asked)
{
	*asked = false;
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return false;
	FILE *tty = fdopen(fd, "r+");
	if (!tty) {
		close(fd);
		return false;
	}
	*asked = true;
	fprintf(tty, "%s [y/N] ", question);
	fflush(tty);
	char answer[16] = "";
	bool yes = fgets(answer, sizeof(answer), tty) &&
	           (strcmp(irfw_trim(answer), "y") == 0 || strcmp(irfw_trim(answer), "yes") == 0);
	fclose(tty);
	return yes;
}

int irfw_fleet_resolve_filters(struct irfw_run *r)
{
	if (r->n_filters == 0)
		return IRFW_RUN_OK;
	cJSON *p = filter_params(r);
	cJSON *matches = cJSON_CreateArray();
	char *token = NULL;
	int rc = IRFW_RUN_OK;
	for (int page = 0; page < 1000; page++) {
		cJSON_DeleteItemFromObjectCaseSensitive(p, "NextToken");
		if (token)
			cJSON_AddStringToObject(p, "NextToken", token);
		free(token);
		token = NULL;
		struct irfw_aws_error e;
		char rid[128];
		cJSON *res = NULL;
		if (irfw_aws_request(r->aws, r->resolved_region, "ec2", "DescribeInstances", p, false, &res,
		                     &e, rid) != 0) {
			irfw_logf(IRFW_LOG_ERROR, NULL, "--filter: DescribeInstances: %s: %s (request %s)",
			          e.code, e.message, e.request_id[0] ? e.request_id : "-");
			/* A filter AWS does not know is the operator's mistake. */
			rc = strncmp(e.code, "InvalidParameter", 16) == 0 ? IRFW_RUN_USAGE
			                                                  : IRFW_RUN_STEP_FAILED;
			goto out;
		}
		const cJSON *resv, *inst;
		cJSON_ArrayForEach(resv, cJSON_GetObjectItemCaseSensitive(res, "reservationSet"))
		    cJSON_ArrayForEach(inst, cJSON_GetObjectItemCaseSensitive(resv, "instancesSet"))
		{
			const char *id = irfw_json_str(inst, "instanceId");
			if (!id || !irfw_valid_instance_id(id))
				continue;
			cJSON *m = cJSON_CreateObject();
			cJSON_AddStringToObject(m, "id", id);
			const char *name = name_of(inst);
			if (name)
				cJSON_AddStringToObject(m, "name", name);
			const char *state =
			    irfw_json_str(cJSON_GetObjectItemCaseSensitive(inst, "instanceState"), "name");
			cJSON_AddStringToObject(m, "state", state ? state : "?");
			const char *vpc = irfw_json_str(inst, "vpcId");
			cJSON_AddStringToObject(m, "vpc", vpc ? vpc : "-");
			cJSON_AddItemToArray(matches, m);
		}
		const char *nt = irfw_json_str(res, "nextToken");
		if (nt && *nt)
			token = strdup(nt);
		cJSON_Delete(res);
		if (!token)
			break;
	}
	int n = cJSON_GetArraySize(matches);
	struct irfw_buf what = {0};
	for (size_t i = 0; i < r->n_filters; i++)
		irfw_buf_printf(&what, "%s%s", i ? " and " : "", r->filters[i]);
	if (n == 0) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "--filter %s: no instance matches in account %s, region %s",
		          what.data ? what.data : "", r->account_id ? r->account_id : "?",
		          r->resolved_region);
		rc = IRFW_RUN_NOT_HANDLED;
		goto out;
	}
	irfw_logf(IRFW_LOG_INFO, NULL, "--filter %s matches %d instance(s):", what.data ? what.data : "", n);
	int shown = 0;
	const cJSON *m;
	cJSON_ArrayForEach(m, matches)
	{
		if (shown++ == MAX_LISTED) {
			irfw_logf(IRFW_LOG_INFO, NULL, "  ... and %d more", n - MAX_LISTED);
			break;
		}
		char *name = irfw_escape_text(irfw_json_str(m, "name"));
		irfw_logf(IRFW_LOG_INFO, NULL, "  %s  %-10s %s  %s", irfw_json_str(m, "id"),
		          irfw_json_str(m, "state"), irfw_json_str(m, "vpc"), name ? name : "");
		free(name);
	}
	if (!r->yes && !r->dry_run) {
		char q[128];
		snprintf(q, sizeof(q), "Handle these %d instance(s)?", n);
		bool asked;
		bool yes = confirm(q, &asked);
		if (!asked) {
			irfw_logf(
			    IRFW_LOG_ERROR, NULL,
			    "--filter selects instances to change: confirm on a terminal, or give --yes; "
			    "nothing was changed");
			rc = IRFW_RUN_USAGE;
			goto out;
		}
		if (!yes) {
			irfw_logf(IRFW_LOG_ERROR, NULL, "not confirmed; nothing was changed");
			rc = IRFW_RUN_USAGE;
			goto out;
		}
	}
	cJSON_ArrayForEach(m, matches) irfw_run_add_target(r, irfw_json_str(m, "id"));
out:
	free(token);
	irfw_buf_free(&what);
	cJSON_Delete(matches);
	cJSON_Delete(p);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Findings.                                                           */

/* i-... at the end of an ARN ("arn:aws:ec2:r:a:instance/i-0abc"), or the
 * id itself. */
static char *instance_of(const char *s)
{
	const char *slash = s ? strrchr(s, '/') : NULL;
	const char *id = slash ? slash + 1 : s;
	return id && irfw_valid_instance_id(id) ? strdup(id) : NULL;
}

static void keep(struct irfw_run *r, const char *iid, const char *fid, const char *type, const char *source,
                 const char *title, size_t *added)
{
	if (!r->findings)
		r->findings = cJSON_CreateObject();
	cJSON *list = cJSON_GetObjectItemCaseSensitive(r->findings, iid);
	if (!list)
		list = cJSON_AddArrayToObject(r->findings, iid);
	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "id", fid ? fid : "");
	cJSON_AddStringToObject(f, "type", type ? type : "");
	cJSON_AddStringToObject(f, "source", source);
	if (title)
		cJSON_AddStringToObject(f, "title", title);
	cJSON_AddItemToArray(list, f);
	if (irfw_run_add_target(r, iid) == IRFW_RUN_OK)
		(*added)++;
}

/* One value of a findings file: a finding, an event carrying one or more,
 * a response or array holding several.  Counts what named no instance. */
static void walk(struct irfw_run *r, const cJSON *v, size_t *added, size_t *ignored, int depth)
{
	if (depth > 8)
		return;
	if (cJSON_IsArray(v)) {
		const cJSON *it;
		cJSON_ArrayForEach(it, v) walk(r, it, added, ignored, depth + 1);
		return;
	}
	if (!cJSON_IsObject(v)) {
		(*ignored)++;
		return;
	}
	/* An EventBridge event: the finding (GuardDuty) or findings (Security
	 * Hub) are its detail. */
	const cJSON *detail = cJSON_GetObjectItemCaseSensitive(v, "detail");
	if (cJSON_IsObject(detail) && cJSON_GetObjectItemCaseSensitive(v, "detail-type")) {
		walk(r, detail, added, ignored, depth + 1);
		return;
	}
	static const char *lists[] = {"findings", "Findings"};
	for (size_t i = 0; i < 2; i++) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(v, lists[i]);
		if (cJSON_IsArray(l)) {
			walk(r, l, added, ignored, depth + 1);
			return;
		}
	}
	/* GuardDuty: resource.instanceDetails.instanceId. */
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(v, "resource");
	const cJSON *idet = cJSON_GetObjectItemCaseSensitive(res, "instanceDetails");
	if (cJSON_IsObject(idet)) {
		char *iid = instance_of(irfw_json_str(idet, "instanceId"));
		if (iid)
			keep(r, iid, irfw_json_str(v, "id"), irfw_json_str(v, "type"), "guardduty",
			     irfw_json_str(v, "title"), added);
		else
			(*ignored)++;
		free(iid);
		return;
	}
	/* Security Hub ASFF: Resources[] of Type AwsEc2Instance. */
	const cJSON *resources = cJSON_GetObjectItemCaseSensitive(v, "Resources");
	if (cJSON_IsArray(resources)) {
		const cJSON *types = cJSON_GetObjectItemCaseSensitive(v, "Types");
		const char *type = cJSON_IsArray(types) && cJSON_IsString(cJSON_GetArrayItem(types, 0))
		                       ? cJSON_GetArrayItem(types, 0)->valuestring
		                       : NULL;
		bool any = false;
		const cJSON *rs;
		cJSON_ArrayForEach(rs, resources)
		{
			const char *rtype = irfw_json_str(rs, "Type");
			char *iid = rtype && strcmp(rtype, "AwsEc2Instance") == 0
			                ? instance_of(irfw_json_str(rs, "Id"))
			                : NULL;
			if (iid) {
				keep(r, iid, irfw_json_str(v, "Id"), type, "securityhub",
				     irfw_json_str(v, "Title"), added);
				any = true;
			}
			free(iid);
		}
		if (!any)
			(*ignored)++;
		return;
	}
	(*ignored)++;
}

int irfw_fleet_add_findings(struct irfw_run *r, const char *path)
{
	bool in = strcmp(path, "-") == 0;
	FILE *f = in ? stdin : fopen(path, "r");
	if (!f) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "--finding %s: %s", path, strerror(errno));
		return -1;
	}
	struct irfw_buf b = {0};
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= MAX_FINDINGS_BYTES)
		irfw_buf_add(&b, chunk, n);
	bool err = ferror(f);
	if (!in)
		fclose(f);
	if (err || b.failed || b.len > MAX_FINDINGS_BYTES) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "--finding %s: %s", path,
		          err        ? "read error"
		          : b.failed ? "out of memory"
		                     : "larger than 64 MiB");
		irfw_buf_free(&b);
		return -1;
	}
	/* JSON is UTF-8 (RFC 8259); cJSON passes other bytes through, and
	 * the finding's id, type and title go into the record and the
	 * notification. */
	if (b.len && (memchr(b.data, '\0', b.len) || !irfw_utf8_valid(b.data))) {
		irfw_logf(IRFW_LOG_ERROR, NULL, "--finding %s: not UTF-8 text (JSON is UTF-8)", path);
		irfw_buf_free(&b);
		return -1;
	}
	cJSON *doc = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
	irfw_buf_free(&b);
	if (!doc) {
		irfw_logf(IRFW_LOG_ERROR, NULL,
		          "--finding %s: not JSON (expected a GuardDuty finding, its EventBridge event, a "
		          "Security Hub finding, or a JSON array of them)",
		          path);
		return -1;
	}
	size_t added = 0, ignored = 0;
	walk(r, doc, &added, &ignored, 0);
	cJSON_Delete(doc);
	if (ignored)
		irfw_logf(IRFW_LOG_WARN, NULL, "--finding %s: %zu finding(s) name no EC2 instance; ignored",
		          path, ignored);
	if (!r->findings || added == 0) {
		bool none = !r->findings;
		if (none) {
			irfw_logf(IRFW_LOG_ERROR, NULL, "--finding %s: no finding names an EC2 instance",
			          path);
			return -1;
		}
	}
	return 0;
}

const cJSON *irfw_fleet_findings_of(const struct irfw_run *r, const char *id)
{
	return r->findings ? cJSON_GetObjectItemCaseSensitive(r->findings, id) : NULL;
}
