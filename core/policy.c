/*
 * policy.c - a pipeline's AWS actions, from the plugins' declarations
 * (policy.h).
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/ratelimit.h"

const char *irfw_iam_action(const char *service, const char *operation, char out[128])
{
	/* S3 authorises some operations under another name. */
	static const struct {
		const char *op, *action;
	} s3[] = {
	    {"HeadObject", "s3:GetObject"},
	    {"HeadBucket", "s3:ListBucket"},
	    {"ListObjectsV2", "s3:ListBucket"},
	    {"CreateMultipartUpload", "s3:PutObject"},
	    {"UploadPart", "s3:PutObject"},
	    {"CompleteMultipartUpload", "s3:PutObject"},
	    {"GetBucketEncryption", "s3:GetEncryptionConfiguration"},
	};
	if (service && strcmp(service, "s3") == 0)
		for (size_t i = 0; i < sizeof(s3) / sizeof(s3[0]); i++)
			if (strcmp(operation, s3[i].op) == 0) {
				snprintf(out, 128, "%s", s3[i].action);
				return out;
			}
	/* Classic load balancers share the ELBv2 prefix. */
	const char *prefix = !service ? "?" : strcmp(service, "elb") == 0 ? "elasticloadbalancing" : service;
	snprintf(out, 128, "%s:%s", prefix, operation ? operation : "?");
	return out;
}

/* The step's value of option `name`, the [irfw] key of the same name
 * winning when set (bucket, topic and sgid work that way), or NULL. */
static const char *option_value(const struct irfw_step *s, const char *name)
{
	const char *g = irfw_run_global(s->run, name);
	if (g && *g && irfw_option_find(irfw_global_options(), name) &&
	    (strcmp(name, "bucket") == 0 || strcmp(name, "topic") == 0 || strcmp(name, "sgid") == 0))
		return g;
	if (!irfw_option_find(s->mod->vt.options, name) && !irfw_option_find(irfw_step_options, name))
		return NULL;
	return irfw_step_get(s, name);
}

/* "NAME=VALUE", "NAME!=VALUE" or "NAME" (set and not empty); "release":
 * what the step's release callback calls, for `irfw policy --release`
 * only (and never estimated: a release is not a run). */
static bool applies(const struct irfw_step *s, const char *when)
{
	if (!when || !*when)
		return true;
	if (strcmp(when, "release") == 0)
		return s->run->policy_release;
	const char *eq = strchr(when, '=');
	bool negate = eq && eq > when && eq[-1] == '!';
	size_t n = eq ? (size_t)(eq - when) - (negate ? 1 : 0) : strlen(when);
	char name[64];
	snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1), when);
	const char *v = option_value(s, name);
	if (!eq)
		return v && *v;
	const char *want = eq + 1;
	bool same, a, b;
	if (v && irfw_parse_bool(v, &a) && irfw_parse_bool(want, &b))
		same = a == b;
	else
		same = v && strcmp(v, want) == 0;
	return negate ? !same : same;
}

/* An ARN template with ${opt:NAME}, ${account_id} and ${region}; what
 * cannot be known before the run becomes "*". */
static char *resource_of(const struct irfw_step *s, const char *tmpl)
{
	if (!tmpl)
		return strdup("*");
	struct irfw_buf b = {0};
	for (const char *p = tmpl; *p;) {
		if (strncmp(p, "${opt:", 6) == 0 && strchr(p, '}')) {
			const char *end = strchr(p, '}');
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)(end - p - 6 < 63 ? end - p - 6 : 63),
			         p + 6);
			const char *v = option_value(s, name);
			irfw_buf_puts(&b, v && *v ? v : "*");
			p = end + 1;
		} else {
			irfw_buf_add(&b, p, 1);
			p++;
		}
	}
	char *raw = irfw_buf_take(&b);
	if (!raw)
		return NULL;
	const struct irfw_run *r = s->run;
	const char *region = r->resolved_region ? r->resolved_region : irfw_run_global(r, "region");
	struct irfw_vars v = {.account_id = r->account_id ? r->account_id : "*",
	                      .region = region && *region ? region : "*",
	                      .instance_id = "*",
	                      .vpc_id = "*",
	                      .case_id = r->case_id_resolved ? r->case_id_resolved : "*",
	                      .name_tag = "*",
	                      .containment = "*",
	                      .outcome = "*",
	                      .now = r->started};
	const char *err = NULL;
	char *out = irfw_template_expand(raw, &v, &err);
	/* A date or time in a name is not known before the run either. */
	free(raw);
	return out ? out : strdup("*");
}

static void add_unique(cJSON *arr, const char *s)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, arr) if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0) return;
	cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

/* The statement for one resource of one step (created on first use). */
static cJSON *statement(cJSON *stmts, const char *sid, const char *resource)
{
	cJSON *st;
	cJSON_ArrayForEach(st, stmts)
	{
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(st, "Resource");
		if (strcmp(irfw_json_str(st, "_step"), sid) == 0 && cJSON_IsString(res) &&
		    strcmp(res->valuestring, resource) == 0)
			return st;
	}
	/* Sids are unique in a policy: the step's second resource gets "2". */
	int same = 0;
	cJSON_ArrayForEach(st, stmts)
	{
		const char *other = irfw_json_str(st, "_step");
		same += other && strcmp(other, sid) == 0;
	}
	st = cJSON_CreateObject();
	char unique[112];
	if (same)
		snprintf(unique, sizeof(unique), "%s%d", sid, same + 1);
	else
		snprintf(unique, sizeof(unique), "%s", sid);
	cJSON_AddStringToObject(st, "Sid", unique);
	cJSON_AddStringToObject(st, "_step", sid);
	cJSON_AddStringToObject(st, "Effect", "Allow");
	cJSON_AddArrayToObject(st, "Action");
	cJSON_AddStringToObject(st, "Resource", resource);
	cJSON_AddItemToArray(stmts, st);
	return st;
}

/* "Step" + the step's name in CamelCase: IAM Sids are alphanumeric. */
static void sid_of(const char *step, char out[96])
{
	size_t n = snprintf(out, 96, "Step");
	bool up = true;
	for (const char *p = step; *p && n < 95; p++) {
		if (*p == '_') {
			up = true;
			continue;
		}
		out[n++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
		up = false;
	}
	out[n] = '\0';
}

cJSON *irfw_policy_document(struct irfw_run *r, size_t *undeclared)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "Version", "2012-10-17");
	cJSON *stmts = cJSON_AddArrayToObject(doc, "Statement");
	/* What the core itself calls: who is acting, and the instances. */
	cJSON *core = statement(stmts, "IrfwCore", "*");
	cJSON *acts = cJSON_GetObjectItemCaseSensitive(core, "Action");
	add_unique(acts, "sts:GetCallerIdentity");
	add_unique(acts, "ec2:DescribeInstances");
	*undeclared = 0;
	for (size_t i = 0; i < r->n_steps; i++) {
		const struct irfw_step *s = r->steps[i];
		if (!s->mod->vt.actions) {
			(*undeclared)++;
			irfw_logf(IRFW_LOG_WARN, s->name,
			          "plugin %s declares no AWS actions: the policy does not cover this step",
			          s->mod->name);
			continue;
		}
		char sid[96];
		sid_of(s->name, sid);
		for (const struct irfw_action *a = s->mod->vt.actions; a->action; a++) {
			if (!applies(s, a->when))
				continue;
			char *res = resource_of(s, a->resource);
			cJSON *st = statement(stmts, sid, res ? res : "*");
			add_unique(cJSON_GetObjectItemCaseSensitive(st, "Action"), a->action);
			free(res);
		}
	}
	/* The bookkeeping key is not IAM's. */
	cJSON *st;
	cJSON_ArrayForEach(st, stmts) cJSON_DeleteItemFromObjectCaseSensitive(st, "_step");
	return doc;
}

/* ------------------------------------------------------------------ */
/* The estimate.                                                       */

/* Calls per EC2 bucket, split by phase.  EC2 keeps a bucket per action,
 * sized by its class (the rate limiter's, ratelimit.h); other services
 * are not paced by buckets. */
#define MAX_CLASSES 8
#define MAX_ACTIONS 128

static size_t class_index(const char *action, bool *ec2)
{
	const char *colon = strchr(action, ':');
	*ec2 = colon && strncmp(action, "ec2:", 4) == 0;
	if (!*ec2)
		return 0;
	const char *cls = irfw_ratelimit_class("ec2", colon + 1);
	for (size_t i = 0; i < irfw_ratelimit_class_count() && i < MAX_CLASSES; i++)
		if (strcmp(irfw_ratelimit_class_name(i), cls) == 0)
			return i;
	return 0;
}

static double bucket_time(const struct irfw_run *r, size_t cls, double calls)
{
	char key[64];
	snprintf(key, sizeof(key), "ratelimit.%s", irfw_ratelimit_class_name(cls));
	double cap, rate;
	const char *spec = irfw_run_global(r, key);
	if (!spec || irfw_ratelimit_parse_spec(spec, &cap, &rate) != 0 || rate <= 0)
		return 0;
	return calls > cap ? (calls - cap) / rate : 0;
}

struct bucket_calls {
	const char *action; /* "ec2:ModifyInstanceAttribute" */
	size_t cls;
	double calls[2]; /* contain phase, all */
};

void irfw_policy_estimate(const struct irfw_run *r, double *contain, double *all)
{
	struct bucket_calls b[MAX_ACTIONS];
	size_t nb = 0;
	for (size_t i = 0; i < r->n_steps; i++) {
		const struct irfw_step *s = r->steps[i];
		for (const struct irfw_action *a = s->mod->vt.actions; a && a->action; a++) {
			bool ec2;
			size_t cls = class_index(a->action, &ec2);
			if (!ec2 || a->calls == 0 || !applies(s, a->when))
				continue;
			double n = 0;
			for (size_t k = 0; k < r->batch.n; k++) {
				const irfw_target *t = r->batch.targets[k];
				if (!t->found || t->skipped_state || !t->instance)
					continue;
				if (!a->per || strcmp(a->per, "instance") == 0)
					n += a->calls;
				else if (strcmp(a->per, "interface") == 0)
					n += a->calls *
					     (double)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
					         t->instance, "networkInterfaceSet"));
				else if (strcmp(a->per, "volume") == 0)
					n += a->calls *
					     (double)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
					         t->instance, "blockDeviceMapping"));
			}
			if (a->per && strcmp(a->per, "run") == 0)
				n = a->calls;
			size_t j = 0;
			while (j < nb && strcmp(b[j].action, a->action) != 0)
				j++;
			if (j == nb) {
				if (nb == MAX_ACTIONS)
					continue; /* more actions than any pipeline declares */
				b[nb++] = (struct bucket_calls){.action = a->action, .cls = cls};
			}
			if (s->phase == IRFW_PHASE_CONTAIN)
				b[j].calls[0] += n;
			b[j].calls[1] += n;
		}
	}
	*contain = *all = 0;
	for (size_t j = 0; j < nb; j++) {
		double tc = bucket_time(r, b[j].cls, b[j].calls[0]),
		       ta = bucket_time(r, b[j].cls, b[j].calls[1]);
		if (tc > *contain)
			*contain = tc;
		if (ta > *all)
			*all = ta;
	}
}
