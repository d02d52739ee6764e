/*
 * isolate.c - contain an instance: a quarantine security group on every
 * network interface, tracked connections broken first, the original groups
 * recorded for release, and optionally a deny-all network ACL on its subnet.
 */
/* strdup */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irfw/irfw.h"

/* Tags that mark the groups irfw made, so a later run finds them even when
 * the site changed its naming template in between. */
#define TAG_QUARANTINE "irfw:quarantine"
#define TAG_UNTRACK    "irfw:untrack"
/* EC2 tag values hold at most 256 characters. */
#define TAG_VALUE_MAX 256
/* Memo value meaning "does not exist yet; a dry run does not create it". */
#define WOULD_CREATE ""

static const struct irfw_option opts[] = {
    {.name = "group_id",
     .type = IRFW_OPT_STRING,
     .help = "Quarantine security group to use as it is, instead of finding or creating one. -g/--sgid "
             "(or sgid in [irfw]) wins over it. It must be in the instance's VPC, else the step fails "
             "without touching the instance."},
    {.name = "group_name",
     .type = IRFW_OPT_STRING,
     .def = "irfw-quarantine-${vpc_id}",
     .help = "Name of the per-VPC quarantine group, found by this name (or by the tag "
             "irfw:quarantine=true) or else created with no egress rule and ingress only from admin_cidrs."},
    {.name = "admin_cidrs",
     .type = IRFW_OPT_LIST,
     .def = NULL,
     .help = "CIDRs (IPv4 or IPv6) allowed in on admin_ports when irfw creates the quarantine group. "
             "Default none: the group lets nothing in. Nothing is opened to 0.0.0.0/0 unless written here."},
    {.name = "admin_ports",
     .type = IRFW_OPT_LIST,
     .def = "22",
     .help = "TCP ports (or ranges like 8000-8010) that admin_cidrs may reach."},
    {.name = "break_tracked",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help = "Break tracked connections first: put the per-VPC all-open untracking group on each "
             "interface for an instant, then the quarantine group, so established flows are dropped "
             "instead of surviving the change."},
    {.name = "untrack_group_name",
     .type = IRFW_OPT_STRING,
     .def = "irfw-untrack-${vpc_id}",
     .help = "Name of the per-VPC untracking group (all traffic in and out from 0.0.0.0/0 and ::/0), "
             "found by this name (or the tag irfw:untrack=true) or else created."},
    {.name = "original_groups_tag",
     .type = IRFW_OPT_STRING,
     .def = "irfw:original-sgs",
     .help = "Instance tag that keeps the original groups (eni-1=sg-a+sg-b;eni-2=sg-c, cut at 256 "
             "characters) next to the manifest record. Empty: no tag."},
    {.name = "nacl",
     .type = IRFW_OPT_BOOL,
     .def = "false",
     .help = "Also associate a deny-all network ACL with the instance's subnet(s). Stateless, it cuts "
             "what security groups cannot (ICMP, untrackable flows) but it cuts the whole subnet."},
    {.name = "nacl_name",
     .type = IRFW_OPT_STRING,
     .def = "irfw-quarantine-${vpc_id}",
     .help = "Name tag of the per-VPC deny-all network ACL, found by it or else created."},
    {.name = "nacl_shared_subnet",
     .type = IRFW_OPT_ENUM,
     .def = "refuse",
     .choices = "refuse|allow",
     .help = "When the subnet holds other instances or interfaces: refuse (fail the step, the security "
             "groups stay applied) or allow (cut them off too)."},
    {.name = NULL},
};

struct port_range {
	long from, to;
};

/* Parsed admin_cidrs and admin_ports; read-only after init. */
struct iso_state {
	char **cidrs; /* irfw_step_get_list(): NULL-terminated */
	size_t n_cidrs;
	struct port_range *ports;
	size_t n_ports;
};

/* ------------------------------------------------------------------ */
/* Small helpers.                                                      */

static bool streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static bool parse_port(const char *s, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < 0 || v > 65535)
		return false;
	*out = v;
	return true;
}

static void add_filter(cJSON *params, const char *name, const char *value)
{
	cJSON *f = cJSON_GetObjectItemCaseSensitive(params, "Filter");
	if (!f)
		f = cJSON_AddArrayToObject(params, "Filter");
	cJSON *it = cJSON_CreateObject();
	cJSON_AddStringToObject(it, "Name", name);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(it, "Value"), cJSON_CreateString(value));
	cJSON_AddItemToArray(f, it);
}

/* TagSpecification.1 for a resource being created. */
static void add_tag_spec(cJSON *params, const char *type, const char *name, const char *marker)
{
	cJSON *spec = cJSON_CreateObject();
	cJSON_AddStringToObject(spec, "ResourceType", type);
	cJSON *tags = cJSON_AddArrayToObject(spec, "Tag");
	const char *kv[][2] = {{"Name", name}, {marker, "true"}};
	for (size_t i = 0; i < 2; i++) {
		cJSON *tag = cJSON_CreateObject();
		cJSON_AddStringToObject(tag, "Key", kv[i][0]);
		cJSON_AddStringToObject(tag, "Value", kv[i][1]);
		cJSON_AddItemToArray(tags, tag);
	}
	cJSON_AddItemToArray(cJSON_AddArrayToObject(params, "TagSpecification"), spec);
}

/* irfw_aws_call on EC2 that also frees `params`. */
static int ec2(irfw_target *t, const char *op, cJSON *params, cJSON **res)
{
	cJSON *r = NULL;
	int rc = irfw_aws_call(t, "ec2", op, params, &r);
	cJSON_Delete(params);
	if (res)
		*res = r;
	else
		cJSON_Delete(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Finding and creating the per-VPC groups.                            */

/* Why making a memo value failed, for the caller to report. */
struct make_ctx {
	const struct iso_state *st;
	const char *vpc;
	const char *given; /* -g / group_id, or NULL */
	bool untrack;      /* making the untracking group, not the quarantine one */
	char err[768];
	bool aws; /* err describes the last AWS call's failure */
};

static void ctx_fail(struct make_ctx *c, bool aws, const char *fmt, ...) IRFW_PRINTF(3, 4);
static void ctx_fail(struct make_ctx *c, bool aws, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->aws = aws;
}

/* DescribeSecurityGroups in `vpc` by one extra filter.  Returns the first
 * match's id (to free), NULL with *err = 0 when none, NULL with *err = 1 on
 * an AWS error. */
static char *sg_lookup(irfw_target *t, const char *vpc, const char *fname, const char *fvalue, int *err)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	add_filter(p, "vpc-id", vpc);
	add_filter(p, fname, fvalue);
	*err = 0;
	if (ec2(t, "DescribeSecurityGroups", p, &res) != 0) {
		*err = 1;
		return NULL;
	}
	char *id = NULL;
	const cJSON *g;
	cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(res, "securityGroupInfo"))
	{
		const char *gid = irfw_json_str(g, "groupId");
		if (gid && streq(irfw_json_str(g, "vpcId"), vpc)) {
			id = strdup(gid);
			break;
		}
	}
	cJSON_Delete(res);
	return id;
}

/* One security group by id, or NULL (AWS error). */
static cJSON *sg_describe(irfw_target *t, const char *gid)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "GroupId"), cJSON_CreateString(gid));
	if (ec2(t, "DescribeSecurityGroups", p, &res) != 0)
		return NULL;
	const cJSON *info = cJSON_GetObjectItemCaseSensitive(res, "securityGroupInfo");
	cJSON *g = NULL;
	if (cJSON_IsArray(info) && cJSON_GetArraySize(info) > 0)
		g = cJSON_Duplicate(cJSON_GetArrayItem(info, 0), true);
	cJSON_Delete(res);
	return g ? g : cJSON_CreateObject();
}

/* Copy the wire items `from[].wkey` into a request list `to[].rkey`. */
static void copy_ranges(cJSON *perm, const cJSON *w, const char *wlist, const char *wkey, const char *rlist,
                        const char *rkey)
{
	const cJSON *it;
	cJSON *out = NULL;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(w, wlist))
	{
		const char *v = irfw_json_str(it, wkey);
		if (!v || !*v)
			continue;
		if (!out)
			out = cJSON_AddArrayToObject(perm, rlist);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, rkey, v);
		cJSON_AddItemToArray(out, o);
	}
}

/* Revoke every egress rule of a group just created.  AWS gives a new group
 * allow-all egress (IPv4, and IPv6 in a dual-stack VPC); a quarantine group
 * must have none, so whatever it came with is read back and revoked. */
static int revoke_all_egress(irfw_target *t, const char *gid)
{
	cJSON *g = sg_describe(t, gid);
	if (!g)
		return -1;
	cJSON *perms = cJSON_CreateArray();
	const cJSON *w;
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(g, "ipPermissionsEgress"))
	{
		cJSON *perm = cJSON_CreateObject();
		const char *proto = irfw_json_str(w, "ipProtocol");
		cJSON_AddStringToObject(perm, "IpProtocol", proto ? proto : "-1");
		const char *from = irfw_json_str(w, "fromPort"), *to = irfw_json_str(w, "toPort");
		if (from && *from)
			cJSON_AddStringToObject(perm, "FromPort", from);
		if (to && *to)
			cJSON_AddStringToObject(perm, "ToPort", to);
		copy_ranges(perm, w, "ipRanges", "cidrIp", "IpRanges", "CidrIp");
		copy_ranges(perm, w, "ipv6Ranges", "cidrIpv6", "Ipv6Ranges", "CidrIpv6");
		copy_ranges(perm, w, "prefixListIds", "prefixListId", "PrefixListIds", "PrefixListId");
		copy_ranges(perm, w, "groups", "groupId", "Groups", "GroupId");
		cJSON_AddItemToArray(perms, perm);
	}
	cJSON_Delete(g);
	if (cJSON_GetArraySize(perms) == 0) {
		cJSON_Delete(perms);
		return 0;
	}
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "GroupId", gid);
	cJSON_AddItemToObject(p, "IpPermissions", perms);
	return ec2(t, "RevokeSecurityGroupEgress", p, NULL);
}

/* Ingress of a new quarantine group: admin_cidrs on admin_ports, nothing
 * else.  One rule per port range, holding every CIDR. */
static int authorize_admin(irfw_target *t, const struct iso_state *st, const char *gid)
{
	if (st->n_cidrs == 0 || st->n_ports == 0)
		return 0;
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "GroupId", gid);
	cJSON *perms = cJSON_AddArrayToObject(p, "IpPermissions");
	for (size_t i = 0; i < st->n_ports; i++) {
		cJSON *perm = cJSON_CreateObject();
		cJSON_AddStringToObject(perm, "IpProtocol", "tcp");
		cJSON_AddNumberToObject(perm, "FromPort", (double)st->ports[i].from);
		cJSON_AddNumberToObject(perm, "ToPort", (double)st->ports[i].to);
		cJSON *v4 = NULL, *v6 = NULL;
		for (size_t k = 0; k < st->n_cidrs; k++) {
			bool six = strchr(st->cidrs[k], ':') != NULL;
			cJSON **list = six ? &v6 : &v4;
			if (!*list)
				*list = cJSON_AddArrayToObject(perm, six ? "Ipv6Ranges" : "IpRanges");
			cJSON *r = cJSON_CreateObject();
			cJSON_AddStringToObject(r, six ? "CidrIpv6" : "CidrIp", st->cidrs[k]);
			cJSON_AddStringToObject(r, "Description", "irfw admin access");
			cJSON_AddItemToArray(*list, r);
		}
		cJSON_AddItemToArray(perms, perm);
	}
	return ec2(t, "AuthorizeSecurityGroupIngress", p, NULL);
}

/* The untracking group: every protocol in and out from anywhere.  When all
 * rules of every group on an interface allow all traffic both ways, EC2
 * stops tracking its flows; the quarantine group put on right after then
 * drops them, where a tracked flow would have outlived the change. */
static int open_untrack(irfw_target *t, const char *gid)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "GroupId", gid);
	cJSON *perm = cJSON_CreateObject();
	cJSON_AddStringToObject(perm, "IpProtocol", "-1");
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "CidrIp", "0.0.0.0/0");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(perm, "IpRanges"), r);
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "CidrIpv6", "::/0");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(perm, "Ipv6Ranges"), r);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "IpPermissions"), perm);
	if (ec2(t, "AuthorizeSecurityGroupIngress", p, NULL) != 0 &&
	    !streq(irfw_aws_error_code(t), "InvalidPermission.Duplicate"))
		return -1;
	/* Egress already allows 0.0.0.0/0; add ::/0 (a dual-stack VPC's new
	 * group may have it already). */
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "GroupId", gid);
	perm = cJSON_CreateObject();
	cJSON_AddStringToObject(perm, "IpProtocol", "-1");
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "CidrIpv6", "::/0");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(perm, "Ipv6Ranges"), r);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "IpPermissions"), perm);
	if (ec2(t, "AuthorizeSecurityGroupEgress", p, NULL) != 0 &&
	    !streq(irfw_aws_error_code(t), "InvalidPermission.Duplicate"))
		return -1;
	return 0;
}

/* Use the group the operator named: it must be in the instance's VPC. */
static char *use_given(irfw_target *t, struct make_ctx *c)
{
	cJSON *g = sg_describe(t, c->given);
	if (!g) {
		ctx_fail(c, true, "quarantine group %s (from -g/--sgid or group_id) could not be described",
		         c->given);
		return NULL;
	}
	const char *gvpc = irfw_json_str(g, "vpcId");
	char *id = NULL;
	if (!streq(gvpc, c->vpc))
		ctx_fail(
		    c, false,
		    "quarantine group %s is in VPC %s, but instance %s is in VPC %s: a security group only "
		    "applies to interfaces of its own VPC; give a group of %s (nothing was changed)",
		    c->given, gvpc && *gvpc ? gvpc : "(none)", irfw_target_id(t), c->vpc, c->vpc);
	else
		id = strdup(c->given);
	cJSON_Delete(g);
	return id;
}

/* irfw_memo maker for "isolate:sg:<vpc>" and "isolate:untrack:<vpc>":
 * the group's id, WOULD_CREATE in a dry run when it does not exist yet, or
 * NULL with c->err set. */
static char *make_group(irfw_target *t, void *arg)
{
	struct make_ctx *c = arg;
	if (c->given)
		return use_given(t, c);
	const char *what = c->untrack ? "untracking" : "quarantine";
	const char *marker = c->untrack ? TAG_UNTRACK : TAG_QUARANTINE;
	char *name = irfw_step_expand(t, c->untrack ? "untrack_group_name" : "group_name");
	char *id = NULL;
	int err;
	if (!name || !*name) {
		ctx_fail(c, false, "%s group name template does not expand", what);
		goto out;
	}
	id = sg_lookup(t, c->vpc, "group-name", name, &err);
	if (!id && !err) {
		char tagf[64];
		snprintf(tagf, sizeof(tagf), "tag:%s", marker);
		id = sg_lookup(t, c->vpc, tagf, "true", &err);
	}
	if (err) {
		ctx_fail(c, true, "looking up the %s group %s in %s", what, name, c->vpc);
		goto out;
	}
	if (id) {
		irfw_log(t, IRFW_LOG_INFO, "%s group of %s: %s (existing)", what, c->vpc, id);
		goto out;
	}

	cJSON *p = cJSON_CreateObject(), *res = NULL;
	cJSON_AddStringToObject(p, "GroupName", name);
	cJSON_AddStringToObject(p, "GroupDescription",
	                        c->untrack
	                            ? "irfw: all-open for an instant, to untrack flows before quarantine"
	                            : "irfw: quarantine, no egress, admin ingress only");
	cJSON_AddStringToObject(p, "VpcId", c->vpc);
	add_tag_spec(p, "security-group", name, marker);
	if (ec2(t, "CreateSecurityGroup", p, &res) != 0) {
		if (streq(irfw_aws_error_code(t), "InvalidGroup.Duplicate")) {
			/* Another irfw run made it between our look-up and now. */
			id = sg_lookup(t, c->vpc, "group-name", name, &err);
			if (!id)
				ctx_fail(c, err != 0, "%s group %s exists in %s but cannot be found", what,
				         name, c->vpc);
		} else {
			ctx_fail(c, true, "creating the %s group %s in %s", what, name, c->vpc);
		}
		goto out;
	}
	if (!res) { /* dry run */
		id = strdup(WOULD_CREATE);
		goto out;
	}
	const char *gid = irfw_json_str(res, "groupId");
	id = gid ? strdup(gid) : NULL;
	cJSON_Delete(res);
	if (!id) {
		ctx_fail(c, false, "CreateSecurityGroup for %s answered without a groupId", name);
		goto out;
	}
	int rc = c->untrack ? open_untrack(t, id) : revoke_all_egress(t, id);
	if (rc == 0 && !c->untrack)
		rc = authorize_admin(t, c->st, id);
	if (rc != 0) {
		/* A half-made group would be found by name next time and trusted:
		 * delete it rather than leave it behind. */
		ctx_fail(c, true, "setting the rules of the new %s group %s (%s)", what, id, name);
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "GroupId", id);
		char saved[sizeof(c->err)];
		memcpy(saved, c->err, sizeof(saved));
		if (ec2(t, "DeleteSecurityGroup", d, NULL) != 0)
			irfw_log(t, IRFW_LOG_ERROR,
			         "could not delete the half-made %s group %s: delete it by hand", what, id);
		memcpy(c->err, saved, sizeof(saved));
		free(id);
		id = NULL;
		goto out;
	}
	irfw_log(t, IRFW_LOG_INFO, "%s group of %s: %s (created)", what, c->vpc, id);
out:
	free(name);
	return id;
}

/* The memoized group of this VPC, or NULL after recording the failure. */
static const char *vpc_group(irfw_target *t, const struct iso_state *st, const char *vpc, const char *given,
                             bool untrack, irfw_status *fail)
{
	struct make_ctx c = {.st = st, .vpc = vpc, .given = given, .untrack = untrack};
	char key[160];
	snprintf(key, sizeof(key), "isolate:%s:%s", untrack ? "untrack" : "sg", vpc);
	const char *id = irfw_memo(t, key, make_group, &c);
	if (!id) {
		if (!c.err[0])
			*fail = irfw_fail(t, "could not get the %s group of %s",
			                  untrack ? "untracking" : "quarantine", vpc);
		else if (c.aws)
			*fail = irfw_fail_aws(t, "%s", c.err);
		else
			*fail = irfw_fail(t, "%s", c.err);
	}
	return id;
}

/* ------------------------------------------------------------------ */
/* Interfaces.                                                         */

/* True when the interface's groups are exactly {gid}. */
static bool only_group(const cJSON *eni, const char *gid)
{
	const cJSON *gs = cJSON_GetObjectItemCaseSensitive(eni, "groupSet"), *g;
	int n = 0;
	bool ok = true;
	cJSON_ArrayForEach(g, gs)
	{
		n++;
		ok = ok && streq(irfw_json_str(g, "groupId"), gid);
	}
	return ok && n == 1;
}

static int set_groups(irfw_target *t, const char *eni, const cJSON *ids)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "NetworkInterfaceId", eni);
	cJSON_AddItemToObject(p, "SecurityGroupId", cJSON_Duplicate(ids, true));
	return ec2(t, "ModifyNetworkInterfaceAttribute", p, NULL);
}

static int set_group(irfw_target *t, const char *eni, const char *gid)
{
	cJSON *ids = cJSON_CreateArray();
	cJSON_AddItemToArray(ids, cJSON_CreateString(gid));
	int rc = set_groups(t, eni, ids);
	cJSON_Delete(ids);
	return rc;
}

/* The original groups: kept from an earlier run of this case, plus the
 * interfaces it did not know, each without the groups irfw itself puts on
 * (those are not what release must restore). */
static cJSON *original_groups(irfw_target *t, const cJSON *enis, const char *q, const char *u, int *unknown)
{
	const cJSON *prior = irfw_record_get(t, irfw_step_name(irfw_target_step(t)), "original_groups");
	cJSON *rec = cJSON_IsObject(prior) ? cJSON_Duplicate(prior, true) : cJSON_CreateObject();
	const cJSON *e;
	*unknown = 0;
	cJSON_ArrayForEach(e, enis)
	{
		const char *id = irfw_json_str(e, "networkInterfaceId");
		if (!id || cJSON_GetObjectItemCaseSensitive(rec, id))
			continue;
		cJSON *list = cJSON_CreateArray();
		const cJSON *g;
		cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(e, "groupSet"))
		{
			const char *gid = irfw_json_str(g, "groupId");
			if (gid && !streq(gid, q) && !streq(gid, u))
				cJSON_AddItemToArray(list, cJSON_CreateString(gid));
		}
		if (cJSON_GetArraySize(list) == 0) {
			/* Only irfw's groups: isolated before this case began. */
			cJSON_Delete(list);
			(*unknown)++;
			continue;
		}
		cJSON_AddItemToObject(rec, id, list);
	}
	return rec;
}

/* "eni-1=sg-a+sg-b;eni-2=sg-c", cut to what a tag value holds. */
static void tag_value(const cJSON *rec, char out[TAG_VALUE_MAX + 1])
{
	size_t n = 0;
	out[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, rec)
	{
		n += (size_t)snprintf(out + n, TAG_VALUE_MAX + 1 - n, "%s%s=", n ? ";" : "", e->string);
		if (n >= TAG_VALUE_MAX)
			break;
		const cJSON *g;
		bool first = true;
		cJSON_ArrayForEach(g, e)
		{
			n += (size_t)snprintf(out + n, TAG_VALUE_MAX + 1 - n, "%s%s", first ? "" : "+",
			                      cJSON_IsString(g) ? g->valuestring : "");
			first = false;
			if (n >= TAG_VALUE_MAX)
				break;
		}
		if (n >= TAG_VALUE_MAX)
			break;
	}
	out[TAG_VALUE_MAX] = '\0';
}

static int tag_instance(irfw_target *t, const char *key, const char *value)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "ResourceId"), cJSON_CreateString(irfw_target_id(t)));
	cJSON *tag = cJSON_CreateObject();
	cJSON_AddStringToObject(tag, "Key", key);
	cJSON_AddStringToObject(tag, "Value", value);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "Tag"), tag);
	return ec2(t, "CreateTags", p, NULL);
}

/* After the untracking group went on and the quarantine group failed: the
 * interface must not stay all-open.  Put its original groups back. */
static irfw_status undo_untrack(irfw_target *t, const char *eni, const cJSON *orig, const char *u)
{
	char what[512];
	snprintf(what, sizeof(what), "%s: %s", irfw_aws_error_code(t), irfw_aws_error_message(t));
	if (cJSON_GetArraySize(orig) > 0 && set_groups(t, eni, orig) == 0)
		return irfw_fail(
		    t, "applying the quarantine group to %s failed (%s); its original groups were put back",
		    eni, what);
	irfw_log(t, IRFW_LOG_ERROR, "%s is left with the ALL-OPEN untracking group %s: change it by hand now",
	         eni, u);
	return irfw_fail(
	    t,
	    "applying the quarantine group to %s failed (%s) and its original groups could not be put "
	    "back: %s is LEFT WITH THE ALL-OPEN untracking group %s; change it by hand now",
	    eni, what, eni, u);
}

/* ------------------------------------------------------------------ */
/* Deny-all network ACL.                                               */

static char *make_nacl(irfw_target *t, void *arg)
{
	struct make_ctx *c = arg;
	char *name = irfw_step_expand(t, "nacl_name");
	char *id = NULL;
	cJSON *p, *res = NULL;
	if (!name || !*name) {
		ctx_fail(c, false, "nacl_name does not expand");
		goto out;
	}
	p = cJSON_CreateObject();
	add_filter(p, "vpc-id", c->vpc);
	add_filter(p, "tag:Name", name);
	if (ec2(t, "DescribeNetworkAcls", p, &res) != 0) {
		ctx_fail(c, true, "looking up the network ACL %s in %s", name, c->vpc);
		goto out;
	}
	const cJSON *a;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(res, "networkAclSet"))
	{
		if (irfw_json_str(a, "networkAclId")) {
			id = strdup(irfw_json_str(a, "networkAclId"));
			break;
		}
	}
	cJSON_Delete(res);
	res = NULL;
	if (id)
		goto out;
	/* A new network ACL has only the default entries, which deny all. */
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "VpcId", c->vpc);
	add_tag_spec(p, "network-acl", name, TAG_QUARANTINE);
	if (ec2(t, "CreateNetworkAcl", p, &res) != 0) {
		ctx_fail(c, true, "creating the deny-all network ACL %s in %s", name, c->vpc);
		goto out;
	}
	if (!res) {
		id = strdup(WOULD_CREATE);
		goto out;
	}
	const char *nid = irfw_json_str(cJSON_GetObjectItemCaseSensitive(res, "networkAcl"), "networkAclId");
	if (nid)
		id = strdup(nid);
	else
		ctx_fail(c, false, "CreateNetworkAcl answered without a networkAclId");
	cJSON_Delete(res);
out:
	free(name);
	return id;
}

/* Others living in `subnet`: instances and interfaces that are not this
 * instance's, appended to `who` (a comma list).  -1 on an AWS error. */
static int subnet_neighbours(irfw_target *t, const char *subnet, char *who, size_t len)
{
	const char *self = irfw_target_id(t);
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	add_filter(p, "subnet-id", subnet);
	cJSON *states = cJSON_CreateObject();
	cJSON_AddStringToObject(states, "Name", "instance-state-name");
	cJSON *sv = cJSON_AddArrayToObject(states, "Value");
	const char *live[] = {"pending", "running", "stopping", "stopped"};
	for (size_t i = 0; i < 4; i++)
		cJSON_AddItemToArray(sv, cJSON_CreateString(live[i]));
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(p, "Filter"), states);
	if (ec2(t, "DescribeInstances", p, &res) != 0)
		return -1;
	size_t n = strlen(who);
	const cJSON *r, *i;
	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(res, "reservationSet"))
	    cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(r, "instancesSet"))
	{
		const char *id = irfw_json_str(i, "instanceId");
		if (id && !streq(id, self) && n < len)
			n += (size_t)snprintf(who + n, len - n, "%s%s", n ? ", " : "", id);
	}
	cJSON_Delete(res);
	/* Load balancers, NAT gateways, Lambda and RDS live in subnets too,
	 * as interfaces that belong to no instance. */
	p = cJSON_CreateObject();
	add_filter(p, "subnet-id", subnet);
	if (ec2(t, "DescribeNetworkInterfaces", p, &res) != 0)
		return -1;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "networkInterfaceSet"))
	{
		const cJSON *att = cJSON_GetObjectItemCaseSensitive(e, "attachment");
		const char *owner = irfw_json_str(att, "instanceId");
		const char *id = irfw_json_str(e, "networkInterfaceId");
		if (id && (!owner || !*owner) && n < len)
			n += (size_t)snprintf(who + n, len - n, "%s%s (%s)", n ? ", " : "", id,
			                      irfw_json_str(e, "interfaceType")
			                          ? irfw_json_str(e, "interfaceType")
			                          : "interface");
	}
	cJSON_Delete(res);
	return 0;
}

/* The subnet's current ACL association: id and ACL (to free), or -1. */
static int subnet_assoc(irfw_target *t, const char *subnet, char **assoc, char **acl)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	add_filter(p, "association.subnet-id", subnet);
	*assoc = *acl = NULL;
	if (ec2(t, "DescribeNetworkAcls", p, &res) != 0)
		return -1;
	const cJSON *a, *as;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(res, "networkAclSet"))
	    cJSON_ArrayForEach(as, cJSON_GetObjectItemCaseSensitive(a, "associationSet"))
	{
		if (!*assoc && streq(irfw_json_str(as, "subnetId"), subnet) &&
		    irfw_json_str(as, "networkAclAssociationId")) {
			*assoc = strdup(irfw_json_str(as, "networkAclAssociationId"));
			*acl =
			    strdup(irfw_json_str(a, "networkAclId") ? irfw_json_str(a, "networkAclId") : "");
		}
	}
	cJSON_Delete(res);
	return 0;
}

/* Put the deny-all ACL on every subnet of the instance's interfaces.
 * `done` describes the security-group part, for a failure message. */
static irfw_status apply_nacl(irfw_target *t, const char *vpc, const cJSON *enis, const char *done)
{
	irfw_step *step = irfw_target_step(t);
	bool allow_shared = streq(irfw_step_get(step, "nacl_shared_subnet"), "allow");
	cJSON *subnets = cJSON_CreateArray();
	const cJSON *e;
	cJSON_ArrayForEach(e, enis)
	{
		const char *s = irfw_json_str(e, "subnetId");
		bool seen = false;
		const cJSON *x;
		cJSON_ArrayForEach(x, subnets) seen = seen || streq(x->valuestring, s);
		if (s && !seen)
			cJSON_AddItemToArray(subnets, cJSON_CreateString(s));
	}
	if (cJSON_GetArraySize(subnets) == 0 && irfw_json_str(irfw_target_instance(t), "subnetId"))
		cJSON_AddItemToArray(subnets,
		                     cJSON_CreateString(irfw_json_str(irfw_target_instance(t), "subnetId")));

	irfw_status st = IRFW_OK;
	cJSON *rec = NULL;
	const cJSON *s;
	char who[1024];
	/* Refuse before touching any subnet. */
	cJSON_ArrayForEach(s, subnets)
	{
		who[0] = '\0';
		if (subnet_neighbours(t, s->valuestring, who, sizeof(who)) != 0) {
			st = irfw_fail_aws(t, "%s; checking who else is in subnet %s", done, s->valuestring);
			goto out;
		}
		if (who[0] && !allow_shared) {
			st = irfw_fail(
			    t,
			    "%s; deny-all network ACL refused: subnet %s also holds %s, which it would cut "
			    "off too (set nacl_shared_subnet = allow to do it anyway)",
			    done, s->valuestring, who);
			goto out;
		}
		if (who[0])
			irfw_log(t, IRFW_LOG_WARN,
			         "deny-all network ACL on shared subnet %s also cuts off %s", s->valuestring,
			         who);
	}

	struct make_ctx c = {.vpc = vpc};
	char key[160];
	snprintf(key, sizeof(key), "isolate:nacl:%s", vpc);
	const char *nacl = irfw_memo(t, key, make_nacl, &c);
	if (!nacl) {
		st = c.aws ? irfw_fail_aws(t, "%s; %s", done, c.err)
		           : irfw_fail(t, "%s; %s", done, c.err[0] ? c.err : "no deny-all network ACL");
		goto out;
	}
	if (!*nacl) {
		irfw_note(t,
		          "dry run: would create the deny-all network ACL and associate it with %d subnet(s)",
		          cJSON_GetArraySize(subnets));
		goto out;
	}
	const cJSON *prior = irfw_record_get(t, irfw_step_name(step), "original_nacl");
	rec = cJSON_IsObject(prior) ? cJSON_Duplicate(prior, true) : cJSON_CreateObject();
	int changed = 0;
	cJSON_ArrayForEach(s, subnets)
	{
		char *assoc = NULL, *acl = NULL;
		if (subnet_assoc(t, s->valuestring, &assoc, &acl) != 0 || !assoc) {
			st = assoc ? irfw_fail(t, "%s; subnet %s has no network ACL association", done,
			                       s->valuestring)
			           : irfw_fail_aws(t, "%s; reading the network ACL of subnet %s", done,
			                           s->valuestring);
			free(assoc);
			free(acl);
			goto out;
		}
		if (streq(acl, nacl)) {
			free(assoc);
			free(acl);
			continue;
		}
		if (!irfw_target_dry_run(t) && !cJSON_GetObjectItemCaseSensitive(rec, s->valuestring)) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "association_id", assoc);
			cJSON_AddStringToObject(o, "network_acl_id", acl);
			cJSON_AddItemToObject(rec, s->valuestring, o);
			/* Before the change, so release can put it back. */
			irfw_record(t, "original_nacl", cJSON_Duplicate(rec, true));
		}
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "AssociationId", assoc);
		cJSON_AddStringToObject(p, "NetworkAclId", nacl);
		int rc = ec2(t, "ReplaceNetworkAclAssociation", p, NULL);
		free(assoc);
		free(acl);
		if (rc != 0) {
			st = irfw_fail_aws(t, "%s; associating the deny-all network ACL %s with %s", done,
			                   nacl, s->valuestring);
			goto out;
		}
		changed++;
	}
	irfw_note(t, "deny-all network ACL %s on %d subnet(s)%s", nacl, cJSON_GetArraySize(subnets),
	          changed ? "" : " (already)");
out:
	cJSON_Delete(rec);
	cJSON_Delete(subnets);
	return st;
}

/* ------------------------------------------------------------------ */
/* The step.                                                           */

static irfw_status run(irfw_target *t, void *state)
{
	const struct iso_state *st = state;
	irfw_step *step = irfw_target_step(t);
	const cJSON *inst = irfw_target_instance(t);
	const char *vpc = irfw_target_vpc_id(t);
	bool dry = irfw_target_dry_run(t);
	irfw_status fail = IRFW_FAILED;
	cJSON *orig = NULL;

	if (!vpc || !*vpc)
		return irfw_skip(t, "instance is not in a VPC: security groups of a VPC cannot be applied");
	const cJSON *enis = cJSON_GetObjectItemCaseSensitive(inst, "networkInterfaceSet");
	int n_enis = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, enis) n_enis++;
	if (n_enis == 0)
		return irfw_skip(t, "instance has no network interface");

	const char *given = irfw_global_get(step, "sgid");
	if (!given || !*given)
		given = irfw_step_get(step, "group_id");
	if (given && !*given)
		given = NULL;
	const char *q = vpc_group(t, st, vpc, given, false, &fail);
	if (!q)
		return fail;

	bool all_done = *q != '\0';
	cJSON_ArrayForEach(e, enis) all_done = all_done && only_group(e, q);
	char done[256];
	if (all_done) {
		irfw_fact_set(t, "quarantine_sg", q);
		irfw_note(t, "already isolated: %s is the only group of all %d interface(s)", q, n_enis);
		snprintf(done, sizeof(done), "already isolated in %s", q);
		return irfw_step_get_bool(step, "nacl") ? apply_nacl(t, vpc, enis, done) : IRFW_OK;
	}

	const char *u = NULL;
	if (irfw_step_get_bool(step, "break_tracked")) {
		u = vpc_group(t, st, vpc, NULL, true, &fail);
		if (!u)
			return fail;
	}

	int unknown = 0;
	orig = original_groups(t, enis, q, u, &unknown);
	if (!dry) {
		/* Recorded before anything changes, so release can undo it. */
		irfw_record(t, "original_groups", cJSON_Duplicate(orig, true));
		irfw_record(t, "quarantine_sg", cJSON_CreateString(q));
	}
	const char *tagkey = irfw_step_get(step, "original_groups_tag");
	if (tagkey && *tagkey && cJSON_GetArraySize(orig) > 0) {
		char value[TAG_VALUE_MAX + 1];
		tag_value(orig, value);
		if (tag_instance(t, tagkey, value) != 0) {
			fail = irfw_fail_aws(t, "tagging %s with its original groups (nothing changed yet)",
			                     irfw_target_id(t));
			goto out;
		}
	}

	if (!*q || (u && !*u)) {
		irfw_note(t, "dry run: would create the %s group and apply it to %d interface(s)",
		          !*q ? "quarantine" : "untracking", n_enis);
		goto ok;
	}

	int changed = 0;
	cJSON_ArrayForEach(e, enis)
	{
		const char *id = irfw_json_str(e, "networkInterfaceId");
		if (!id || only_group(e, q))
			continue;
		if (u && set_group(t, id, u) != 0) {
			fail = irfw_fail_aws(
			    t, "applying the untracking group %s to %s (%d interface(s) done before)", u, id,
			    changed);
			goto out;
		}
		if (set_group(t, id, q) != 0) {
			fail =
			    u ? undo_untrack(t, id, cJSON_GetObjectItemCaseSensitive(orig, id), u)
			      : irfw_fail_aws(
			            t, "applying the quarantine group %s to %s (%d interface(s) done before)",
			            q, id, changed);
			goto out;
		}
		changed++;
	}
	irfw_note(t, "%squarantine group %s on %d of %d interface(s)%s%s", dry ? "dry run: would put " : "",
	          q, changed, n_enis, u ? ", after the untracking group " : "", u ? u : "");
	if (unknown)
		irfw_note(t,
		          "%d interface(s) were in quarantine before this case: their original "
		          "groups are not known",
		          unknown);

ok:
	if (*q)
		irfw_fact_set(t, "quarantine_sg", q);
	snprintf(done, sizeof(done), "quarantine group %s applied to %d interface(s)", q, n_enis);
	fail = irfw_step_get_bool(step, "nacl") ? apply_nacl(t, vpc, enis, done) : IRFW_OK;
out:
	cJSON_Delete(orig);
	return fail;
}

/* ------------------------------------------------------------------ */
/* Configuration.                                                      */

static void fini(void *state)
{
	struct iso_state *st = state;
	if (!st)
		return;
	irfw_list_free(st->cidrs);
	free(st->ports);
	free(st);
}

static int init(irfw_step *step, void **state)
{
	struct iso_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	char **ports = NULL;
	st->cidrs = irfw_step_get_list(step, "admin_cidrs");
	if (!st->cidrs)
		goto bad;
	for (; st->cidrs[st->n_cidrs]; st->n_cidrs++) {
		const char *w = st->cidrs[st->n_cidrs];
		if (!strchr(w, '/') || strspn(w, "0123456789abcdefABCDEF.:/") != strlen(w)) {
			irfw_step_error(step, "admin_cidrs", "'%s' is not a CIDR (like 10.0.0.0/8)", w);
			goto bad;
		}
		if (strcmp(w, "0.0.0.0/0") == 0 || strcmp(w, "::/0") == 0)
			irfw_step_log(step, IRFW_LOG_WARN,
			              "admin_cidrs holds %s: the quarantine group lets anyone in", w);
	}
	ports = irfw_step_get_list(step, "admin_ports");
	if (!ports)
		goto bad;
	for (char **w = ports; *w; w++) {
		struct port_range r;
		char *dash = strchr(*w, '-');
		if (dash)
			*dash = '\0';
		bool ok = parse_port(*w, &r.from) &&
		          (dash ? parse_port(dash + 1, &r.to) : (r.to = r.from, true)) && r.from <= r.to;
		if (dash)
			*dash = '-';
		if (!ok) {
			irfw_step_error(step, "admin_ports", "'%s' is not a port or a range like 8000-8010",
			                *w);
			goto bad;
		}
		struct port_range *v = realloc(st->ports, (st->n_ports + 1) * sizeof(*v));
		if (!v)
			goto bad;
		st->ports = v;
		st->ports[st->n_ports++] = r;
	}
	irfw_list_free(ports);
	*state = st;
	return 0;
bad:
	irfw_list_free(ports);
	fini(st);
	return -1;
}

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "isolate",
    .version = "1.0",
    .summary = "quarantine security group on every interface, tracked flows broken, originals recorded",
    .options = opts,
    .phase = IRFW_PHASE_CONTAIN,
    .init = init,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .fini = fini,
    .description =
        "Contains the instance. The quarantine group of its VPC (the -g group, which must be in that "
        "VPC; else the one named group_name or tagged irfw:quarantine=true; else a new one with no "
        "egress rule and ingress only from admin_cidrs on admin_ports) becomes the only group of "
        "every network interface, with ModifyNetworkInterfaceAttribute (ModifyInstanceAttribute "
        "refuses instances with several interfaces). Each VPC's group is found or created once per "
        "run, however many instances are handled in parallel.\n\n"
        "A security group change does not end connections EC2 already tracks. With break_tracked, "
        "as AWS's incident response guide advises, each interface first gets the VPC's untracking "
        "group (all traffic in and out from 0.0.0.0/0 and ::/0, which makes flows untracked) and "
        "right after it the quarantine group, which then drops them. The all-open group is on an "
        "interface only between two API calls; if the second fails the original groups are put back. "
        "This cannot break ICMP flows, nor flows through a Network Load Balancer, NAT gateway or "
        "Transit Gateway, which stay tracked whatever the rules; nacl = true (a deny-all network "
        "ACL on the subnet, refused on a shared subnet unless nacl_shared_subnet = allow) cuts those "
        "too, at the price of the whole subnet.\n\n"
        "Before changing anything, the original groups of each interface are recorded in the case "
        "(records.original_groups) and in an instance tag (original_groups_tag), and the subnet's "
        "original network ACL association in records.original_nacl; later steps get the fact "
        "quarantine_sg. It runs after asg and elb, so the instance is out of service before it is cut "
        "off (an Auto Scaling health check would otherwise replace it), and before protect, capture "
        "and snapshot, so the evidence is preserved from an instance that can no longer talk.",
};

IRFW_PLUGIN_ENTRY(isolate, plugin)
