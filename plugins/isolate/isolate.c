/*
 * isolate.c - contain an instance: a quarantine security group on every
 * network interface, tracked connections broken first, the original groups
 * recorded for release, and optionally a deny-all network ACL on its subnet.
 *
 * What it reports is what AWS shows afterwards: the interfaces and the
 * group's rules are read back and the verdict goes to
 * irfw_containment_report() on every path.  The per-VPC groups are found,
 * checked, completed or created in prepare, before any instance is touched,
 * so that a group that cannot be trusted stops the run with exit status 2
 * instead of being put on interfaces.
 */
/* strdup */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "irfw/irfw.h"

/* Tags that mark the groups irfw made, so a later run finds them even when
 * the site changed its naming template in between, and knows them for its
 * own (to complete) rather than a site's (to check). */
#define TAG_QUARANTINE "irfw:quarantine"
#define TAG_UNTRACK    "irfw:untrack"
/* EC2 tag values hold at most 256 characters. */
#define TAG_VALUE_MAX 256
/* Memo value meaning "does not exist yet; a dry run does not create it". */
#define WOULD_CREATE ""
/* Who made a group or network ACL: the case and step of the call that
 * created it, given in that call. */
#define TAG_MADE_CASE "irfw:created-by-case"
#define TAG_MADE_STEP "irfw:created-by-step"
/* After a create whose outcome is unknown, a second look this much later
 * (a new resource shows in Describe* after a moment). */
#define SETTLE_S 1

static const struct irfw_option opts[] = {
    {.name = "group_id",
     .type = IRFW_OPT_STRING,
     .help =
         "Quarantine security group to use instead of finding or creating one. -g/--sgid (or sgid in [irfw]) "
         "wins over it. It must exist and be in the VPC of every instance of the run, else the run stops "
         "before any change (exit status 2). It is checked like any existing group (see existing_group)."},
    {.name = "group_name",
     .type = IRFW_OPT_STRING,
     .def = "irfw-quarantine-${vpc_id}",
     .help = "Name of the per-VPC quarantine group, found by this name (or by the tag irfw:quarantine=true) "
             "or else created with no egress rule and ingress only from admin_cidrs. A group carrying the "
             "tag irfw:quarantine=true is irfw's own and is completed to that shape whatever state it is in; "
             "one without it is checked (see existing_group)."},
    {.name = "existing_group",
     .type = IRFW_OPT_ENUM,
     .def = "refuse",
     .choices = "refuse|fix|use",
     .help = "What to do with a quarantine group irfw did not make (given with -g or group_id, or found by "
             "name without the tag irfw:quarantine=true) that has an egress rule or ingress from anything "
             "admin_cidrs does not cover: refuse (stop the run before any change, exit status 2, naming the "
             "open rules), fix (record the open rules in the case, then revoke them) or use (use it as it "
             "is; the instance is reported not contained, exit status 4)."},
    {.name = "admin_cidrs",
     .type = IRFW_OPT_LIST,
     .def = NULL,
     .help = "CIDRs (IPv4 or IPv6) allowed in on admin_ports by the quarantine group irfw makes, and the "
             "only sources an existing group may let in. Default none: the group lets nothing in. Nothing is "
             "opened to 0.0.0.0/0 unless written here."},
    {.name = "admin_ports",
     .type = IRFW_OPT_LIST,
     .def = "22",
     .help = "TCP ports (or ranges like 8000-8010) that admin_cidrs may reach."},
    {.name = "break_tracked",
     .type = IRFW_OPT_BOOL,
     .def = "true",
     .help =
         "Break tracked connections first: put the per-VPC all-open untracking group on each interface for "
         "an instant, then the quarantine group, so established flows are dropped instead of surviving the "
         "change. The untracking group is deleted once no instance of the run needs it any more."},
    {.name = "untrack_group_name",
     .type = IRFW_OPT_STRING,
     .def = "irfw-untrack-${vpc_id}",
     .help = "Name of the per-VPC untracking group (all traffic in and out from 0.0.0.0/0 and ::/0), found "
             "by this name (or the tag irfw:untrack=true) or else created. A group of this name without the "
             "tag irfw:untrack=true is not irfw's: the run stops before any change."},
    {.name = "original_groups_tag",
     .type = IRFW_OPT_STRING,
     .def = "irfw:original-sgs",
     .help = "Instance tag that keeps the original groups (eni-1=sg-a+sg-b;eni-2=sg-c, cut at 256 "
             "characters) next to the manifest record, set after the change. Empty: no tag."},
    {.name = "nacl",
     .type = IRFW_OPT_BOOL,
     .def = "false",
     .help = "Also associate a deny-all network ACL with the instance's subnet(s). Stateless, it cuts what "
             "security groups cannot (ICMP, untrackable flows) but it cuts the whole subnet. When it is not "
             "applied the instance is reported partially contained."},
    {.name = "nacl_name",
     .type = IRFW_OPT_STRING,
     .def = "irfw-quarantine-${vpc_id}",
     .help = "Name tag of the per-VPC deny-all network ACL, found by it or else created."},
    {.name = "nacl_shared_subnet",
     .type = IRFW_OPT_ENUM,
     .def = "refuse",
     .choices = "refuse|allow",
     .help =
         "When the subnet holds other instances or interfaces: refuse (the ACL is not applied, the security "
         "groups stay applied, the instance is partially contained) or allow (cut them off too)."},
    {.name = NULL},
};

struct port_range {
	long from, to;
};

/* A parsed CIDR. */
struct cidr {
	int af; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int len;
};

/*
 * What DescribeSecurityGroups answered about a VPC's irfw groups, so that
 * prepare's two passes (judge, then complete or create) and the
 * quarantine and untracking groups ask AWS once: one call for both names
 * (group-name values are ORed), one for both tags (tag-key values are
 * ORed; the value is checked here), made only when a name did not answer
 * for the group, and the -g group by id.  Only prepare uses it: a run
 * that must look again (prepare's look failed) asks AWS afresh.
 */
struct grp_look {
	cJSON *by_name; /* securityGroupInfo of the name look-up; NULL: not asked yet */
	cJSON *by_tag;  /* ... of the tag look-up */
	cJSON *given;   /* the group given with -g or group_id, as described */
	/* A VPC with neither group: both CreateSecurityGroup sent at once
	 * (make_both), each answer taken by its group's make_group, and both
	 * completed in one round trip. */
	irfw_calls *made;
	int made_idx[2]; /* [untrack]: the call's index in `made`; -1: none */
	bool made_taken[2];
	cJSON *made_groups; /* both new groups as completed (fresh_group), or NULL */
};

static void look_free(struct grp_look *l)
{
	cJSON_Delete(l->by_name);
	cJSON_Delete(l->by_tag);
	cJSON_Delete(l->given);
	irfw_calls_free(l->made);
	cJSON_Delete(l->made_groups);
	memset(l, 0, sizeof(*l));
}

/* One VPC of the batch.  Built in prepare; afterwards only `left` changes. */
struct vpc_ent {
	char *vpc;
	struct grp_look look; /* prepare's look-ups of its groups */
	atomic_int left;      /* instances of the batch whose isolate has not finished */
	atomic_int trouble;   /* isolates of the VPC that ended with a failed change or not contained */
	bool u_made;          /* prepare created its untracking group */
	size_t first;         /* index of its first target in the batch */
	char *note;           /* what prepare did to its groups, for the run's detail */
	bool note_failed;     /* ...and a change prepare needed was refused */
};

/* Parsed options, read-only after init; the VPC map, built in prepare. */
struct iso_state {
	char **cidrs; /* irfw_step_get_list(): NULL-terminated */
	size_t n_cidrs;
	struct cidr *nets; /* cidrs, parsed */
	struct port_range *ports;
	size_t n_ports;
	struct vpc_ent *vpcs;
	size_t n_vpcs;
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

static bool cidr_parse(const char *s, struct cidr *c)
{
	char host[64];
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || (size_t)(slash - s) >= sizeof(host))
		return false;
	memcpy(host, s, (size_t)(slash - s));
	host[slash - s] = '\0';
	memset(c, 0, sizeof(*c));
	c->af = strchr(host, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(c->af, host, c->addr) != 1)
		return false;
	char *end;
	long n = strtol(slash + 1, &end, 10);
	if (end == slash + 1 || *end || n < 0 || n > (c->af == AF_INET ? 32 : 128))
		return false;
	c->len = (int)n;
	return true;
}

/* True when every address of `in` is in `out`. */
static bool cidr_inside(const struct cidr *in, const struct cidr *out)
{
	if (in->af != out->af || in->len < out->len)
		return false;
	size_t full = (size_t)out->len / 8;
	int rest = out->len % 8;
	if (memcmp(in->addr, out->addr, full) != 0)
		return false;
	if (!rest)
		return true;
	unsigned char m = (unsigned char)(0xffu << (8 - rest));
	return (in->addr[full] & m) == (out->addr[full] & m);
}

static bool cidr_equal(const char *a, const char *b)
{
	struct cidr x, y;
	return cidr_parse(a, &x) && cidr_parse(b, &y) && cidr_inside(&x, &y) && x.len == y.len;
}

/* True when one of admin_cidrs covers `s`. */
static bool admin_covers(const struct iso_state *st, const char *s)
{
	struct cidr c;
	if (!cidr_parse(s, &c))
		return false;
	for (size_t i = 0; i < st->n_cidrs; i++)
		if (cidr_inside(&c, &st->nets[i]))
			return true;
	return false;
}

static bool list_has(const cJSON *list, const char *s)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, list) if (cJSON_IsString(x) && streq(x->valuestring, s)) return true;
	return false;
}

static void list_add_unique(cJSON *list, const char *s)
{
	if (s && !list_has(list, s))
		cJSON_AddItemToArray(list, cJSON_CreateString(s));
}

/* True when a described resource carries the tag key=true. */
static bool has_marker(const cJSON *res, const char *key)
{
	const cJSON *tag;
	cJSON_ArrayForEach(tag, cJSON_GetObjectItemCaseSensitive(res, "tagSet"))
	{
		if (streq(irfw_json_str(tag, "key"), key) && streq(irfw_json_str(tag, "value"), "true"))
			return true;
	}
	return false;
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

/* The last failed call as "Code (request id)": short enough for a cause
 * (UnauthorizedOperation's message can be kilobytes long). */
static void aws_brief(irfw_target *t, char *out, size_t n)
{
	const char *code = irfw_aws_error_code(t), *rid = irfw_aws_request_id(t);
	snprintf(out, n, "%s (request %s)", code && *code ? code : "Error", rid && *rid ? rid : "-");
}

/* The last failed call as "Code: message (request id)", for the log. */
static void aws_long(irfw_target *t, char *out, size_t n)
{
	const char *code = irfw_aws_error_code(t), *msg = irfw_aws_error_message(t);
	const char *rid = irfw_aws_request_id(t);
	snprintf(out, n, "%s%s%s (request %s)", code && *code ? code : "Error", msg && *msg ? ": " : "",
	         msg ? msg : "", rid && *rid ? rid : "-");
}

static void memo_key(char *out, size_t n, irfw_target *t, const char *what, const char *vpc)
{
	snprintf(out, n, "isolate:%s:%s:%s", irfw_step_name(irfw_target_step(t)), what, vpc);
}

static struct vpc_ent *vpc_find(struct iso_state *st, const char *vpc)
{
	for (size_t i = 0; vpc && i < st->n_vpcs; i++)
		if (streq(st->vpcs[i].vpc, vpc))
			return &st->vpcs[i];
	return NULL;
}

static void vpcs_free(struct iso_state *st)
{
	for (size_t i = 0; i < st->n_vpcs; i++) {
		free(st->vpcs[i].vpc);
		free(st->vpcs[i].note);
		look_free(&st->vpcs[i].look);
	}
	free(st->vpcs);
	st->vpcs = NULL;
	st->n_vpcs = 0;
}

/* ------------------------------------------------------------------ */
/* Security group rules, from the wire shapes of DescribeSecurityGroups. */

/* The sources of a rule: where they are on the wire, and in a request. */
static const struct {
	const char *wlist, *wkey, *rlist, *rkey, *label;
} SRC[] = {
    {"ipRanges", "cidrIp", "IpRanges", "CidrIp", ""},
    {"ipv6Ranges", "cidrIpv6", "Ipv6Ranges", "CidrIpv6", ""},
    {"prefixListIds", "prefixListId", "PrefixListIds", "PrefixListId", "prefix list "},
    {"groups", "groupId", "Groups", "GroupId", "group "},
};
#define N_SRC (sizeof(SRC) / sizeof(SRC[0]))

/* "all traffic", "tcp 22", "tcp 8000-8010", "udp (all ports)", "icmp". */
static void proto_text(const cJSON *w, char *out, size_t n)
{
	const char *p = irfw_json_text(w, "ipProtocol");
	if (!p || streq(p, "-1")) {
		snprintf(out, n, "all traffic");
		return;
	}
	const char *name = streq(p, "6")    ? "tcp"
	                   : streq(p, "17") ? "udp"
	                   : streq(p, "1")  ? "icmp"
	                   : streq(p, "58") ? "icmpv6"
	                                    : p;
	long from = irfw_json_long(w, "fromPort", -1), to = irfw_json_long(w, "toPort", -1);
	bool icmp = streq(name, "icmp") || streq(name, "icmpv6");
	if (icmp)
		snprintf(out, n, from < 0 ? "%s" : "%s type %ld", name, from);
	else if (from < 0 || to < 0 || (from == 0 && to == 65535))
		snprintf(out, n, "%s (all ports)", name);
	else if (from == to)
		snprintf(out, n, "%s %ld", name, from);
	else
		snprintf(out, n, "%s %ld-%ld", name, from, to);
}

static void copy_port(cJSON *perm, const cJSON *w, const char *wkey, const char *rkey)
{
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(w, wkey)) || irfw_json_text(w, wkey))
		cJSON_AddNumberToObject(perm, rkey, (double)irfw_json_long(w, wkey, 0));
}

/* A request-shaped permission for one source of the wire rule `w`: a
 * revoke must name the rule exactly as AWS holds it. */
static cJSON *perm_one(const cJSON *w, size_t k, const char *value)
{
	cJSON *perm = cJSON_CreateObject();
	const char *proto = irfw_json_text(w, "ipProtocol");
	cJSON_AddStringToObject(perm, "IpProtocol", proto ? proto : "-1");
	copy_port(perm, w, "fromPort", "FromPort");
	copy_port(perm, w, "toPort", "ToPort");
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, SRC[k].rkey, value);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(perm, SRC[k].rlist), r);
	return perm;
}

/*
 * The rules that make group `g` open: every egress rule, and ingress from
 * anything admin_cidrs does not cover (a wider CIDR, a prefix list, another
 * group).  Their texts go to `eg_txt` / `in_txt` ("all traffic to
 * 0.0.0.0/0", "tcp 443 from 0.0.0.0/0"), and request-shaped permissions to
 * `eg` / `in` (each may be NULL).  Returns how many there are.
 */
static int open_rules(const struct iso_state *st, const cJSON *g, irfw_strbuf *eg_txt, irfw_strbuf *in_txt,
                      cJSON *eg, cJSON *in)
{
	int n = 0;
	for (int dir = 0; dir < 2; dir++) {
		const cJSON *w;
		cJSON_ArrayForEach(
		    w, cJSON_GetObjectItemCaseSensitive(g, dir ? "ipPermissions" : "ipPermissionsEgress"))
		{
			char proto[64];
			proto_text(w, proto, sizeof(proto));
			for (size_t k = 0; k < N_SRC; k++) {
				const cJSON *it;
				cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(w, SRC[k].wlist))
				{
					const char *v = irfw_json_text(it, SRC[k].wkey);
					if (!v || (dir && k < 2 && admin_covers(st, v)))
						continue;
					irfw_strbuf *txt = dir ? in_txt : eg_txt;
					if (txt)
						irfw_strbuf_printf(txt, "%s%s %s %s%s",
						                   irfw_strbuf_len(txt) ? ", " : "", proto,
						                   dir ? "from" : "to", SRC[k].label, v);
					if (dir ? in != NULL : eg != NULL)
						cJSON_AddItemToArray(dir ? in : eg, perm_one(w, k, v));
					n++;
				}
			}
		}
	}
	return n;
}

/* "egress open: sg-1 allows all traffic to 0.0.0.0/0; ingress open: sg-1
 * allows tcp 443 from 0.0.0.0/0" into `out`, or nothing when closed.
 * Returns the number of open rules. */
static int open_text(const struct iso_state *st, const cJSON *g, irfw_strbuf *out)
{
	irfw_strbuf *eg = irfw_strbuf_new(), *in = irfw_strbuf_new();
	int n = open_rules(st, g, eg, in, NULL, NULL);
	const char *id = irfw_json_str(g, "groupId");
	if (irfw_strbuf_len(eg))
		irfw_strbuf_printf(out, "%segress open: %s allows %s", irfw_strbuf_len(out) ? "; " : "", id,
		                   irfw_strbuf_str(eg));
	if (irfw_strbuf_len(in))
		irfw_strbuf_printf(out, "%singress open: %s allows %s", irfw_strbuf_len(out) ? "; " : "", id,
		                   irfw_strbuf_str(in));
	irfw_strbuf_free(eg);
	irfw_strbuf_free(in);
	return n;
}

static int sg_rules_call(irfw_target *t, const char *op, const char *gid, cJSON *perms)
{
	if (cJSON_GetArraySize(perms) == 0) {
		cJSON_Delete(perms);
		return 0;
	}
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "GroupId", gid);
	cJSON_AddItemToObject(p, "IpPermissions", perms);
	return ec2(t, op, p, NULL);
}

/* ------------------------------------------------------------------ */
/* Finding, checking, completing and creating the per-VPC groups.      */

/* What making a memo value found, for the caller to report. */
struct make_ctx {
	const struct iso_state *st;
	irfw_batch *batch; /* in prepare: records go to every instance of the VPC */
	const char *vpc;
	const char *who;       /* the instance(s) of the VPC, for messages */
	bool untrack;          /* the untracking group, not the quarantine one */
	bool validate;         /* look and judge only: change nothing, create nothing */
	const char *key;       /* the option a usage error names: "sgid", "group_id" or NULL */
	struct grp_look *look; /* prepare's answers of this VPC, or NULL: ask AWS */
	char err[1536];
	bool aws;   /* err follows a failed AWS call */
	bool usage; /* the operator's input or the site's groups are wrong */
	char note[1024];
	bool note_failed; /* a change the group needed was refused */
	bool made;        /* make_group created the group */
};

static void ctx_fail(struct make_ctx *c, bool aws, bool usage, const char *fmt, ...) IRFW_PRINTF(4, 5);
static void ctx_fail(struct make_ctx *c, bool aws, bool usage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->aws = aws;
	c->usage = usage;
}

static void ctx_note(struct make_ctx *c, const char *fmt, ...) IRFW_PRINTF(2, 3);
static void ctx_note(struct make_ctx *c, const char *fmt, ...)
{
	size_t n = strlen(c->note);
	if (n + 3 >= sizeof(c->note))
		return;
	if (n)
		n += (size_t)snprintf(c->note + n, sizeof(c->note) - n, "; ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->note + n, sizeof(c->note) - n, fmt, ap);
	va_end(ap);
}

/* The first group of `vpc` matching one more filter, as described (to
 * cJSON_Delete); NULL with *err = 0 when none, *err = 1 on an AWS error. */
static cJSON *sg_find(irfw_target *t, const char *vpc, const char *fname, const char *fvalue, int *err)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL, *g = NULL;
	irfw_ec2_filter(p, "vpc-id", vpc);
	irfw_ec2_filter(p, fname, fvalue);
	*err = 0;
	if (ec2(t, "DescribeSecurityGroups", p, &res) != 0) {
		*err = 1;
		return NULL;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "securityGroupInfo"))
	{
		if (irfw_json_text(it, "groupId") && streq(irfw_json_str(it, "vpcId"), vpc)) {
			g = cJSON_Duplicate(it, true);
			break;
		}
	}
	cJSON_Delete(res);
	return g;
}

/* One group by id (to cJSON_Delete).  NULL on an AWS error, with
 * *missing set when AWS says there is no such group. */
static cJSON *sg_get(irfw_target *t, const char *gid, bool *missing)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL, *g = NULL;
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "GroupId"), cJSON_CreateString(gid));
	if (missing)
		*missing = false;
	if (ec2(t, "DescribeSecurityGroups", p, &res) != 0) {
		const char *code = irfw_aws_error_code(t);
		if (missing)
			*missing = streq(code, "InvalidGroup.NotFound") ||
			           streq(code, "InvalidGroupId.Malformed") ||
			           streq(code, "InvalidGroupId.NotFound");
		return NULL;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "securityGroupInfo"))
	{
		if (streq(irfw_json_str(it, "groupId"), gid)) {
			g = cJSON_Duplicate(it, true);
			break;
		}
	}
	cJSON_Delete(res);
	if (!g && missing)
		*missing = true;
	return g;
}

/* DescribeSecurityGroups' parameters: `vpc` and one more filter of
 * several values (ORed). */
static cJSON *sg_list_params(const char *vpc, const char *fname, const char *const *values)
{
	cJSON *p = cJSON_CreateObject();
	irfw_ec2_filter(p, "vpc-id", vpc);
	for (size_t i = 0; values[i]; i++)
		irfw_ec2_filter(p, fname, values[i]);
	return p;
}

/* The groups DescribeSecurityGroups answered (securityGroupInfo), as a
 * list of one's own. */
static cJSON *sg_info(const cJSON *res)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(res, "securityGroupInfo");
	return l ? cJSON_Duplicate(l, true) : cJSON_CreateArray();
}

/* The groups of `vpc` matching one more filter of several values: the
 * answer's securityGroupInfo, or NULL on an AWS error. */
static cJSON *sg_list(irfw_target *t, const char *vpc, const char *fname, const char *const *values)
{
	cJSON *res = NULL;
	if (ec2(t, "DescribeSecurityGroups", sg_list_params(vpc, fname, values), &res) != 0)
		return NULL;
	cJSON *list = sg_info(res);
	cJSON_Delete(res);
	return list;
}

/* In prepare, the look-up by name and the one by irfw's tags sent
 * together: a VPC without the groups (a first incident) needs both, and
 * one round trip is saved before anything can be created; where the
 * names find the groups, the tag look-up is one describe of the run's.
 * A failed look-up leaves its list NULL (the by-name one's error is the
 * target's last). */
static void sg_list_both(irfw_target *t, const char *vpc, const char *const *names, const char *const *keys,
                         cJSON **by_name, cJSON **by_tag)
{
	irfw_calls *c = irfw_calls_new(t);
	cJSON *p = sg_list_params(vpc, "group-name", names);
	int i_name = c ? irfw_calls_add(c, NULL, "ec2", "DescribeSecurityGroups", p, 0) : -1;
	cJSON_Delete(p);
	p = sg_list_params(vpc, "tag-key", keys);
	int i_tag = c ? irfw_calls_add(c, NULL, "ec2", "DescribeSecurityGroups", p, 0) : -1;
	cJSON_Delete(p);
	if (i_name < 0 || i_tag < 0) {
		irfw_calls_free(c);
		*by_name = sg_list(t, vpc, "group-name", names);
		return;
	}
	irfw_calls_run(c);
	if (irfw_calls_select(c, (size_t)i_tag) == 0)
		*by_tag = sg_info(irfw_calls_result(c, (size_t)i_tag));
	if (irfw_calls_select(c, (size_t)i_name) == 0)
		*by_name = sg_info(irfw_calls_result(c, (size_t)i_name));
	irfw_calls_free(c);
}

/* The first group of `list` in `vpc` named `name` (by_tag: carrying the
 * tag `name`=true), as a copy to cJSON_Delete, or NULL. */
static cJSON *sg_pick(const cJSON *list, const char *vpc, const char *name, bool by_tag)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, list)
	{
		if (!irfw_json_text(it, "groupId") || !streq(irfw_json_str(it, "vpcId"), vpc))
			continue;
		if (by_tag ? has_marker(it, name) : streq(irfw_json_str(it, "groupName"), name))
			return cJSON_Duplicate(it, true);
	}
	return NULL;
}

/* Record `v` in the case of every instance of the VPC (in prepare), or
 * of `t` alone.  False when a record could not be written. */
static bool record_for_vpc(irfw_target *t, const struct make_ctx *c, const char *key, const cJSON *v)
{
	bool ok = true, any = false;
	for (size_t i = 0, n = c->batch ? irfw_batch_count(c->batch) : 0; i < n; i++) {
		irfw_target *x = irfw_batch_target(c->batch, i);
		if (!irfw_target_instance(x) || !streq(irfw_target_vpc_id(x), c->vpc))
			continue;
		any = true;
		if (irfw_record(x, key, cJSON_Duplicate(v, true)) != 0)
			ok = false;
	}
	if (!any && irfw_record(t, key, cJSON_Duplicate(v, true)) != 0)
		ok = false;
	return ok;
}

/* Revoke or authorize `perms` (freed); on a refusal, say so in the note.
 * A rule already there (Authorize) or already gone (Revoke) is what was
 * wanted. */
static void rules_change(irfw_target *t, struct make_ctx *c, const char *op, const char *gid, cJSON *perms)
{
	if (sg_rules_call(t, op, gid, perms) == 0 ||
	    streq(irfw_aws_error_code(t), "InvalidPermission.Duplicate") ||
	    streq(irfw_aws_error_code(t), "InvalidPermission.NotFound"))
		return;
	char why[512];
	aws_long(t, why, sizeof(why));
	irfw_log(t, IRFW_LOG_ERROR, "%s on %s refused: %s", op, gid, why);
	aws_brief(t, why, sizeof(why));
	ctx_note(c, "%s on %s refused: %s", op, gid, why);
	c->note_failed = true;
}

/*
 * Make irfw's own quarantine group what it must be, whatever state a lost
 * answer or a kill left it in: no egress rule, ingress exactly admin_cidrs
 * on admin_ports.  Egress goes first: it is what lets the instance talk.
 * A refusal is noted, and the group still used: the read-back after the
 * change reports what it lets through.
 */
/* Every egress rule of group `g`, request-shaped, for a revoke. */
static cJSON *egress_perms(const cJSON *g)
{
	cJSON *eg = cJSON_CreateArray();
	const cJSON *w, *it;
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(g, "ipPermissionsEgress"))
	{
		for (size_t k = 0; k < N_SRC; k++)
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(w, SRC[k].wlist))
			{
				const char *v = irfw_json_text(it, SRC[k].wkey);
				if (v)
					cJSON_AddItemToArray(eg, perm_one(w, k, v));
			}
	}
	return eg;
}

/* The admin rules (admin_cidrs on admin_ports) group `g` lacks,
 * request-shaped, for AuthorizeSecurityGroupIngress; and, into `in` when
 * it is not NULL, every other ingress rule of `g`, for a revoke. */
static cJSON *admin_add(const struct iso_state *st, const cJSON *g, cJSON *in)
{
	cJSON *add = cJSON_CreateArray();
	size_t n_want = st->n_ports * st->n_cidrs;
	bool *have = calloc(n_want ? n_want : 1, sizeof(*have));
	const cJSON *w, *it;
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(g, "ipPermissions"))
	{
		const char *proto = irfw_json_text(w, "ipProtocol");
		bool tcp = streq(proto, "tcp") || streq(proto, "6");
		long from = irfw_json_long(w, "fromPort", -2), to = irfw_json_long(w, "toPort", -2);
		for (size_t k = 0; k < N_SRC; k++)
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(w, SRC[k].wlist))
			{
				const char *v = irfw_json_text(it, SRC[k].wkey);
				bool wanted = false;
				for (size_t i = 0; v && tcp && k < 2 && have && i < st->n_ports; i++)
					for (size_t j = 0; j < st->n_cidrs; j++)
						if (st->ports[i].from == from && st->ports[i].to == to &&
						    cidr_equal(v, st->cidrs[j])) {
							have[i * st->n_cidrs + j] = true;
							wanted = true;
						}
				if (v && !wanted && in)
					cJSON_AddItemToArray(in, perm_one(w, k, v));
			}
	}
	for (size_t i = 0; have && i < st->n_ports; i++)
		for (size_t j = 0; j < st->n_cidrs; j++) {
			if (have[i * st->n_cidrs + j])
				continue;
			bool six = st->nets[j].af == AF_INET6;
			cJSON *perm = cJSON_CreateObject();
			cJSON_AddStringToObject(perm, "IpProtocol", "tcp");
			cJSON_AddNumberToObject(perm, "FromPort", (double)st->ports[i].from);
			cJSON_AddNumberToObject(perm, "ToPort", (double)st->ports[i].to);
			cJSON *r = cJSON_CreateObject();
			cJSON_AddStringToObject(r, six ? "CidrIpv6" : "CidrIp", st->cidrs[j]);
			cJSON_AddStringToObject(r, "Description", "irfw admin access");
			cJSON_AddItemToArray(cJSON_AddArrayToObject(perm, six ? "Ipv6Ranges" : "IpRanges"),
			                     r);
			cJSON_AddItemToArray(add, perm);
		}
	free(have);
	return add;
}

static void complete_quarantine(irfw_target *t, struct make_ctx *c, const cJSON *g, bool fresh)
{
	const struct iso_state *st = c->st;
	const char *gid = irfw_json_str(g, "groupId");
	cJSON *eg = egress_perms(g), *in = cJSON_CreateArray(), *add = admin_add(st, g, in);
	int n_eg = cJSON_GetArraySize(eg), n_in = cJSON_GetArraySize(in), n_add = cJSON_GetArraySize(add);
	if (fresh)
		ctx_note(c, "created the quarantine group %s (%s)", gid,
		         irfw_json_text(g, "groupName") ? irfw_json_text(g, "groupName") : "");
	else if (n_eg + n_in + n_add)
		ctx_note(c,
		         "%s irfw's quarantine group %s: %d egress rule(s) and %d other ingress rule(s) "
		         "revoked, %d admin rule(s) added",
		         irfw_target_dry_run(t) ? "would complete" : "completed", gid, n_eg, n_in, n_add);
	rules_change(t, c, "RevokeSecurityGroupEgress", gid, eg);
	rules_change(t, c, "RevokeSecurityGroupIngress", gid, in);
	rules_change(t, c, "AuthorizeSecurityGroupIngress", gid, add);
}

/* irfw's untracking group: all traffic in and out from 0.0.0.0/0 and
 * ::/0, or it does not untrack.  When all rules of every group on an
 * interface allow all traffic both ways, EC2 stops tracking its flows; the
 * quarantine group put on right after then drops them, where a tracked
 * flow would have outlived the change.  0 or -1 (c->err set). */
static const char *const UNTRACK_ANY[2] = {"0.0.0.0/0", "::/0"};
static const char *const UNTRACK_OPS[2] = {"AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress"};

/* The Authorize parameters that open the untracking group `g` all ways in
 * direction `dir` (0 egress, 1 ingress), or NULL when it is open so. */
static cJSON *untrack_params(const cJSON *g, int dir)
{
	bool have[2] = {false, false};
	const cJSON *w, *it;
	cJSON_ArrayForEach(w,
	                   cJSON_GetObjectItemCaseSensitive(g, dir ? "ipPermissions" : "ipPermissionsEgress"))
	{
		if (!streq(irfw_json_text(w, "ipProtocol"), "-1"))
			continue;
		for (size_t k = 0; k < 2; k++)
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(w, SRC[k].wlist)) have[k] =
			    have[k] || streq(irfw_json_text(it, SRC[k].wkey), UNTRACK_ANY[k]);
	}
	if (have[0] && have[1])
		return NULL;
	cJSON *perm = cJSON_CreateObject();
	cJSON_AddStringToObject(perm, "IpProtocol", "-1");
	for (size_t k = 0; k < 2; k++) {
		if (have[k])
			continue;
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, SRC[k].rkey, UNTRACK_ANY[k]);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(perm, SRC[k].rlist), r);
	}
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "GroupId", irfw_json_str(g, "groupId"));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "IpPermissions"), perm);
	return p;
}

static int complete_untrack(irfw_target *t, struct make_ctx *c, const cJSON *g)
{
	const char *gid = irfw_json_str(g, "groupId");
	const char *const *ops = UNTRACK_OPS;
	/* Both directions at once: neither depends on the other. */
	irfw_calls *calls = irfw_calls_new(t);
	int idx[2] = {-1, -1};
	for (int dir = 0; dir < 2; dir++) {
		cJSON *p = untrack_params(g, dir);
		if (!p)
			continue;
		idx[dir] = irfw_calls_add(calls, NULL, "ec2", ops[dir], p, 0);
		cJSON_Delete(p);
		if (idx[dir] < 0) {
			irfw_calls_free(calls);
			ctx_fail(c, false, false, "opening the untracking group %s: out of memory", gid);
			return -1;
		}
	}
	irfw_calls_run(calls);
	for (int dir = 0; dir < 2; dir++) {
		if (idx[dir] < 0 || irfw_calls_select(calls, (size_t)idx[dir]) == 0 ||
		    streq(irfw_aws_error_code(t), "InvalidPermission.Duplicate"))
			continue;
		char why[512];
		aws_long(t, why, sizeof(why));
		ctx_fail(c, true, false, "opening the untracking group %s (%s): %s", gid, ops[dir], why);
		irfw_calls_free(calls);
		return -1;
	}
	irfw_calls_free(calls);
	return 0;
}

/* Use group `g` (found, given or just created) if it may be used: irfw's
 * own is completed; a site's is checked against existing_group.  Returns
 * its id (to free) or NULL with c->err set. */
static char *settle(irfw_target *t, struct make_ctx *c, const cJSON *g, const char *how)
{
	irfw_step *step = irfw_target_step(t);
	const char *gid = irfw_json_str(g, "groupId"), *gname = irfw_json_str(g, "groupName");
	const char *what = c->untrack ? "untracking" : "quarantine";
	if (!gname)
		gname = "";
	if (has_marker(g, c->untrack ? TAG_UNTRACK : TAG_QUARANTINE)) {
		if (c->validate)
			return strdup(gid);
		if (c->untrack && complete_untrack(t, c, g) != 0)
			return NULL;
		if (!c->untrack)
			complete_quarantine(t, c, g, streq(how, "created"));
		irfw_log(t, IRFW_LOG_INFO, "%s group of %s: %s (%s; irfw's own)", what, c->vpc, gid, how);
		return strdup(gid);
	}
	if (c->untrack) {
		ctx_fail(c, false, true,
		         "a security group named %s (%s) exists in %s but is not irfw's untracking group (it "
		         "lacks the tag %s=true): irfw does not put a group it does not know on the "
		         "interfaces of %s. Delete or rename it, set untrack_group_name to a free name, or "
		         "set break_tracked = false (nothing was changed)",
		         gname, gid, c->vpc, TAG_UNTRACK, c->who);
		return NULL;
	}
	if (has_marker(g, TAG_UNTRACK)) {
		ctx_fail(c, false, true,
		         "%s (%s, %s) is irfw's ALL-OPEN untracking group, not a quarantine group: give "
		         "another group (nothing was changed)",
		         gid, gname, how);
		return NULL;
	}
	cJSON *eg = cJSON_CreateArray(), *in = cJSON_CreateArray();
	irfw_strbuf *txt = irfw_strbuf_new();
	int n = open_rules(c->st, g, NULL, NULL, eg, in);
	open_text(c->st, g, txt);
	char *id = NULL;
	const char *policy = irfw_step_get(step, "existing_group");
	if (n == 0 || (c->validate && !streq(policy, "refuse"))) {
		if (!c->validate)
			irfw_log(t, IRFW_LOG_INFO, "quarantine group of %s: %s (%s, %s; closed)", c->vpc, gid,
			         gname, how);
		id = strdup(gid);
	} else if (streq(policy, "fix")) {
		/* Recorded first, so that release can give the site its rules back. */
		cJSON *rec = cJSON_CreateObject();
		cJSON_AddStringToObject(rec, "group_id", gid);
		cJSON_AddItemToObject(rec, "egress", cJSON_Duplicate(eg, true));
		cJSON_AddItemToObject(rec, "ingress", cJSON_Duplicate(in, true));
		if (!record_for_vpc(t, c, "revoked_rules", rec))
			irfw_log(
			    t, IRFW_LOG_ERROR,
			    "the rules about to be revoked from %s could not be recorded in the case: %s",
			    gid, irfw_strbuf_str(txt));
		cJSON_Delete(rec);
		ctx_note(c, "%s the open rules of %s (%s, %s; existing_group = fix): %s",
		         irfw_target_dry_run(t) ? "would revoke" : "revoked", gid, gname, how,
		         irfw_strbuf_str(txt));
		rules_change(t, c, "RevokeSecurityGroupEgress", gid, eg);
		rules_change(t, c, "RevokeSecurityGroupIngress", gid, in);
		eg = in = NULL;
		id = strdup(gid);
	} else if (streq(policy, "use")) {
		irfw_log(t, IRFW_LOG_WARN, "quarantine group %s used as it is (existing_group = use): %s",
		         gid, irfw_strbuf_str(txt));
		ctx_note(c, "%s (%s, %s) used as it is (existing_group = use) although %s", gid, gname, how,
		         irfw_strbuf_str(txt));
		id = strdup(gid);
	} else {
		ctx_fail(c, false, true,
		         "quarantine group %s (%s, %s in %s) for %s is not closed: %s. irfw did not make it "
		         "(it lacks the tag %s=true) and does not trust it: set existing_group = fix in [%s] "
		         "to revoke those rules (recorded in the case first), existing_group = use to use it "
		         "as it is (the instance is then reported not contained), or give a closed group "
		         "with -g (nothing was changed)",
		         gid, gname, how, c->vpc, c->who, irfw_strbuf_str(txt), TAG_QUARANTINE,
		         irfw_step_name(step));
	}
	cJSON_Delete(eg);
	cJSON_Delete(in);
	irfw_strbuf_free(txt);
	return id;
}

/* The group the operator named (-g/--sgid or group_id): it must exist in
 * the instance's VPC, and is then checked like any other. */
static char *use_given(irfw_target *t, struct make_ctx *c, const char *given)
{
	const char *from = streq(c->key, "sgid") ? "-g/--sgid" : "group_id";
	bool missing = false;
	cJSON *g = NULL;
	if (c->look && c->look->given && streq(irfw_json_str(c->look->given, "groupId"), given))
		g = cJSON_Duplicate(c->look->given, true);
	else if ((g = sg_get(t, given, &missing)) && c->look) {
		cJSON_Delete(c->look->given);
		c->look->given = cJSON_Duplicate(g, true);
	}
	char *id = NULL;
	if (!g) {
		char why[512];
		aws_long(t, why, sizeof(why));
		if (missing)
			ctx_fail(c, false, true,
			         "quarantine group %s (from %s) does not exist in account %s, region %s "
			         "(%s); %s is in %s (nothing was changed)",
			         given, from, irfw_target_account_id(t), irfw_target_region(t), why, c->who,
			         c->vpc);
		else
			ctx_fail(c, true, false, "describing the quarantine group %s (from %s): %s", given,
			         from, why);
		return NULL;
	}
	const char *gvpc = irfw_json_str(g, "vpcId");
	if (!streq(gvpc, c->vpc)) {
		ctx_fail(
		    c, false, true,
		    "quarantine group %s (from %s) is in VPC %s, but %s is in VPC %s: a security group only "
		    "applies to interfaces of its own VPC; give a group of %s (nothing was changed)",
		    given, from, gvpc && *gvpc ? gvpc : "(none)", c->who, c->vpc, c->vpc);
	} else {
		char how[64];
		snprintf(how, sizeof(how), "given with %s", from);
		id = settle(t, c, g, how);
	}
	cJSON_Delete(g);
	return id;
}

/* CreateSecurityGroup's parameters for irfw's quarantine (untrack false)
 * or untracking group `name` in `vpc`. */
static cJSON *csg_params(irfw_target *t, bool untrack, const char *vpc, const char *name)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "GroupName", name);
	cJSON_AddStringToObject(p, "GroupDescription",
	                        untrack ? "irfw: all-open for an instant, to untrack flows before quarantine"
	                                : "irfw: quarantine, no egress, admin ingress only");
	cJSON_AddStringToObject(p, "VpcId", vpc);
	/* The marker goes on in the same call, so that a group whose answer
	 * was lost, or whose run was killed before its rules were set, is
	 * known for irfw's and completed by the next look-up. */
	irfw_ec2_tag_spec(p, "security-group", "Name", name);
	irfw_ec2_tag_spec(p, "security-group", untrack ? TAG_UNTRACK : TAG_QUARANTINE, "true");
	irfw_ec2_tag_spec(p, "security-group", TAG_MADE_CASE, irfw_target_case_id(t));
	irfw_ec2_tag_spec(p, "security-group", TAG_MADE_STEP, irfw_step_name(irfw_target_step(t)));
	return p;
}

/* A copy of the group `gid` of `list`, or NULL. */
static cJSON *sg_pick_id(const cJSON *list, const char *gid)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, list)
	{
		if (streq(irfw_json_str(it, "groupId"), gid))
			return cJSON_Duplicate(it, true);
	}
	return NULL;
}

/* True when the look-ups show no group of this kind in the VPC, by name
 * or by irfw's tag. */
static bool none_of(const struct grp_look *look, const char *vpc, const char *name, const char *marker)
{
	cJSON *a = sg_pick(look->by_name, vpc, name, false), *b = sg_pick(look->by_tag, vpc, marker, true);
	bool none = !a && !b;
	cJSON_Delete(a);
	cJSON_Delete(b);
	return none;
}

/* The request-shaped permission `perm` (tcp or all traffic, CIDR sources)
 * in the wire's shape, as DescribeSecurityGroups would show it. */
static cJSON *wire_rule(const cJSON *perm)
{
	cJSON *w = cJSON_CreateObject();
	const char *proto = irfw_json_str(perm, "IpProtocol");
	cJSON_AddStringToObject(w, "ipProtocol", proto ? proto : "-1");
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(perm, "FromPort")))
		cJSON_AddNumberToObject(w, "fromPort", (double)irfw_json_long(perm, "FromPort", 0));
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(perm, "ToPort")))
		cJSON_AddNumberToObject(w, "toPort", (double)irfw_json_long(perm, "ToPort", 0));
	for (size_t k = 0; k < 2; k++) {
		const cJSON *r;
		cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(perm, SRC[k].rlist))
		{
			const char *v = irfw_json_str(r, SRC[k].rkey);
			cJSON *list = cJSON_GetObjectItemCaseSensitive(w, SRC[k].wlist);
			if (!list)
				list = cJSON_AddArrayToObject(w, SRC[k].wlist);
			cJSON *x = cJSON_CreateObject();
			cJSON_AddStringToObject(x, SRC[k].wkey, v ? v : "");
			cJSON_AddItemToArray(list, x);
		}
	}
	return w;
}

/* All traffic to or from `cidr` (SRC[k]'s kind), request-shaped. */
static cJSON *all_traffic(size_t k, const char *cidr)
{
	cJSON *perm = cJSON_CreateObject();
	cJSON_AddStringToObject(perm, "IpProtocol", "-1");
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, SRC[k].rkey, cidr);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(perm, SRC[k].rlist), r);
	return perm;
}

/*
 * A group irfw has just created, as AWS documents a new group of a VPC and
 * as DescribeSecurityGroups would show it: no ingress rule, one egress rule
 * (all traffic to 0.0.0.0/0), and the marker CreateSecurityGroup put on.
 * A VPC with an IPv6 block also gives it all traffic to ::/0, which
 * complete_fresh revokes whether or not it is there.  irfw completes a new
 * group from this rather than reading it first; the quarantine group's
 * rules are read from AWS by the read-back after the change (verify),
 * before any interface is said contained.
 */
static cJSON *fresh_group(const char *gid, const char *name, const char *marker)
{
	cJSON *g = cJSON_CreateObject(), *perm = all_traffic(0, UNTRACK_ANY[0]);
	cJSON_AddStringToObject(g, "groupId", gid);
	cJSON_AddStringToObject(g, "groupName", name ? name : "");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(g, "ipPermissionsEgress"), wire_rule(perm));
	cJSON_Delete(perm);
	cJSON_AddArrayToObject(g, "ipPermissions");
	cJSON *tag = cJSON_CreateObject();
	cJSON_AddStringToObject(tag, "key", marker);
	cJSON_AddStringToObject(tag, "value", "true");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(g, "tagSet"), tag);
	return g;
}

/* Drop group `g`'s egress rule of all traffic to SRC[k]'s `cidr`. */
static void drop_egress(cJSON *g, size_t k, const char *cidr)
{
	cJSON *list = cJSON_GetObjectItemCaseSensitive(g, "ipPermissionsEgress");
	for (int i = cJSON_GetArraySize(list) - 1; i >= 0; i--) {
		const cJSON *w = cJSON_GetArrayItem(list, i), *it;
		if (!streq(irfw_json_text(w, "ipProtocol"), "-1"))
			continue;
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(w, SRC[k].wlist))
		{
			if (streq(irfw_json_text(it, SRC[k].wkey), cidr)) {
				cJSON_DeleteItemFromArray(list, i);
				break;
			}
		}
	}
}

/*
 * Groups just created (fresh_group), completed in one round trip: the
 * quarantine group `q` loses its default egress (0.0.0.0/0, and ::/0,
 * which only a VPC with an IPv6 block gives: "not found" means it was not
 * there) and gains the admin rules; the untracking group `u` is opened
 * both ways.  Either may be NULL.  What AWS accepted is taken out of (or
 * put into) the groups, so settle() finds it done; anything refused is
 * left for settle() to send again and report as it always does.  A group
 * not visible yet (AWS is eventually consistent) gets a second's grace
 * before settle() sends again.
 */
/* Call `i` of `c` answered OK, or with `done` (the rule was already as
 * wanted).  *unseen is set when AWS did not show the group yet. */
static bool answered(irfw_target *t, irfw_calls *c, int i, const char *done, bool *unseen)
{
	if (irfw_calls_select(c, (size_t)i) == 0)
		return true;
	*unseen = *unseen || streq(irfw_aws_error_code(t), "InvalidGroup.NotFound");
	return streq(irfw_aws_error_code(t), done);
}

static void complete_fresh(irfw_target *t, const struct iso_state *st, cJSON *q, cJSON *u)
{
	irfw_calls *c = irfw_calls_new(t);
	if (!c)
		return;
	const char *q_id = irfw_json_str(q, "groupId");
	int i_eg[2] = {-1, -1}, i_adm = -1, i_u[2] = {-1, -1};
	cJSON *adm = q ? admin_add(st, q, NULL) : NULL, *perm[2] = {NULL, NULL};
	for (size_t k = 0; q && k < 2; k++) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "GroupId", q_id);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "IpPermissions"),
		                     all_traffic(k, UNTRACK_ANY[k]));
		i_eg[k] = irfw_calls_add(c, NULL, "ec2", "RevokeSecurityGroupEgress", p, 0);
		cJSON_Delete(p);
	}
	if (cJSON_GetArraySize(adm) > 0) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "GroupId", q_id);
		cJSON_AddItemToObject(p, "IpPermissions", cJSON_Duplicate(adm, true));
		i_adm = irfw_calls_add(c, NULL, "ec2", "AuthorizeSecurityGroupIngress", p, 0);
		cJSON_Delete(p);
	}
	for (int dir = 0; u && dir < 2; dir++) {
		cJSON *p = untrack_params(u, dir);
		if (!p)
			continue;
		i_u[dir] = irfw_calls_add(c, NULL, "ec2", UNTRACK_OPS[dir], p, 0);
		perm[dir] =
		    cJSON_DetachItemFromArray(cJSON_GetObjectItemCaseSensitive(p, "IpPermissions"), 0);
		cJSON_Delete(p);
	}
	irfw_calls_run(c);
	bool unseen = false;
	for (size_t k = 0; k < 2; k++) {
		if (i_eg[k] < 0)
			continue;
		if (answered(t, c, i_eg[k], "InvalidPermission.NotFound", &unseen)) {
			drop_egress(q, k, UNTRACK_ANY[k]);
		} else if (k == 1) {
			/* Not known gone: settle() revokes it again. */
			cJSON *r = all_traffic(1, UNTRACK_ANY[1]);
			cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(q, "ipPermissionsEgress"),
			                     wire_rule(r));
			cJSON_Delete(r);
		}
	}
	if (i_adm >= 0 && answered(t, c, i_adm, "InvalidPermission.Duplicate", &unseen)) {
		const cJSON *r;
		cJSON_ArrayForEach(r, adm)
		    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(q, "ipPermissions"), wire_rule(r));
	}
	for (int dir = 0; dir < 2; dir++) {
		if (i_u[dir] < 0 || !perm[dir])
			continue;
		if (answered(t, c, i_u[dir], "InvalidPermission.Duplicate", &unseen)) {
			const char *key = dir ? "ipPermissions" : "ipPermissionsEgress";
			cJSON *list = cJSON_GetObjectItemCaseSensitive(u, key);
			if (!list)
				list = cJSON_AddArrayToObject(u, key);
			cJSON_AddItemToArray(list, wire_rule(perm[dir]));
		}
		cJSON_Delete(perm[dir]);
	}
	cJSON_Delete(adm);
	irfw_calls_free(c);
	if (unseen) {
		struct timespec ts = {.tv_sec = SETTLE_S};
		nanosleep(&ts, NULL);
	}
}

/*
 * In prepare, a VPC that has neither group (a first incident): both are
 * created at once and completed at once (complete_fresh), rather than one
 * after the other, each create then its completion.  make_group takes
 * these answers as its own, so a lost or refused answer is handled as it
 * always is.
 * Only when prepare's look-ups asked both names and both tags, no group
 * is given, and the untracking group is wanted.
 */
static void make_both(irfw_batch *b, const struct iso_state *st, struct vpc_ent *ent)
{
	irfw_target *t = irfw_batch_target(b, ent->first);
	irfw_step *step = irfw_target_step(t);
	struct grp_look *look = &ent->look;
	const char *v = irfw_global_get(step, "sgid");
	if (irfw_target_dry_run(t) || look->made || !look->by_name || !look->by_tag ||
	    !irfw_step_get_bool(step, "break_tracked") || (v && *v) ||
	    ((v = irfw_step_get(step, "group_id")) && *v) || atomic_load(&ent->left) == 0)
		return;
	char *qn = irfw_step_expand(t, "group_name"), *un = irfw_step_expand(t, "untrack_group_name");
	if (qn && *qn && un && *un && !streq(qn, un) && none_of(look, ent->vpc, qn, TAG_QUARANTINE) &&
	    none_of(look, ent->vpc, un, TAG_UNTRACK) && (look->made = irfw_calls_new(t))) {
		const char *names[2] = {qn, un};
		for (int k = 0; k < 2; k++) {
			cJSON *p = csg_params(t, k == 1, ent->vpc, names[k]);
			look->made_idx[k] = irfw_calls_add(look->made, NULL, "ec2", "CreateSecurityGroup", p,
			                                   IRFW_CALL_NOT_IDEMPOTENT);
			cJSON_Delete(p);
		}
		irfw_calls_run(look->made);
		const char *ids[2];
		for (int k = 0; k < 2; k++)
			ids[k] =
			    look->made_idx[k] >= 0
			        ? irfw_json_text(irfw_calls_result(look->made, (size_t)look->made_idx[k]),
			                         "groupId")
			        : NULL;
		if (ids[0] && ids[1] && (look->made_groups = cJSON_CreateArray())) {
			cJSON *q = fresh_group(ids[0], qn, TAG_QUARANTINE),
			      *u = fresh_group(ids[1], un, TAG_UNTRACK);
			cJSON_AddItemToArray(look->made_groups, q);
			cJSON_AddItemToArray(look->made_groups, u);
			complete_fresh(t, st, q, u);
		}
	}
	free(qn);
	free(un);
}

/* irfw_memo maker for the quarantine and untracking groups of a VPC: the
 * group's id, WOULD_CREATE in a dry run when it does not exist yet, or
 * NULL with c->err set. */
static char *make_group(irfw_target *t, void *arg)
{
	struct make_ctx *c = arg;
	irfw_step *step = irfw_target_step(t);
	const char *what = c->untrack ? "untracking" : "quarantine";
	const char *marker = c->untrack ? TAG_UNTRACK : TAG_QUARANTINE;
	char *name = NULL, *other = NULL, *id = NULL;
	cJSON *g = NULL, *res = NULL;
	struct grp_look own = {0}, *look = c->look ? c->look : &own;
	int err = 0;
	char why[768];
	bool given_q = false;
	if (!c->untrack) {
		const char *v = irfw_global_get(step, "sgid");
		given_q = (v && *v) || ((v = irfw_step_get(step, "group_id")) && *v);
	}
	if (!c->untrack) {
		const char *given = irfw_global_get(step, "sgid");
		c->key = "sgid";
		if (!given || !*given) {
			given = irfw_step_get(step, "group_id");
			c->key = "group_id";
		}
		if (given && *given)
			return use_given(t, c, given);
		c->key = NULL;
	}
	name = irfw_step_expand(t, c->untrack ? "untrack_group_name" : "group_name");
	if (!name || !*name) {
		ctx_fail(c, false, true, "the %s group name template does not expand", what);
		goto out;
	}
	const char *how = "found by name";
	/* In prepare, the other group of the VPC is asked for in the same
	 * call: the quarantine group's name (unless -g gives it) with the
	 * untracking group's, and their tags. */
	bool both = c->look && (c->untrack ? !given_q : irfw_step_get_bool(step, "break_tracked"));
	if (both)
		other = irfw_step_expand(t, c->untrack ? "group_name" : "untrack_group_name");
	const char *keys[3] = {marker, both ? (c->untrack ? TAG_QUARANTINE : TAG_UNTRACK) : NULL, NULL};
	if (!look->by_name) {
		const char *names[3] = {name, other && *other && !streq(other, name) ? other : NULL, NULL};
		if (c->look && !look->by_tag)
			sg_list_both(t, c->vpc, names, keys, &look->by_name, &look->by_tag);
		else
			look->by_name = sg_list(t, c->vpc, "group-name", names);
		err = !look->by_name;
	}
	g = err ? NULL : sg_pick(look->by_name, c->vpc, name, false);
	if (!err && (!g || (c->untrack && !has_marker(g, marker)))) {
		/* By the marker: a group irfw made under another naming rule
		 * (and, for the untracking group, rather than a stranger that
		 * happens to hold the name). */
		if (!look->by_tag) {
			look->by_tag = sg_list(t, c->vpc, "tag-key", keys);
			err = !look->by_tag;
		}
		cJSON *m = err ? NULL : sg_pick(look->by_tag, c->vpc, marker, true);
		if (m) {
			cJSON_Delete(g);
			g = m;
			how = "found by the tag " TAG_QUARANTINE "=true";
			if (c->untrack)
				how = "found by the tag " TAG_UNTRACK "=true";
		}
		err = g ? 0 : err;
	}
	if (err) {
		aws_long(t, why, sizeof(why));
		ctx_fail(c, true, false, "looking up the %s group %s in %s: %s", what, name, c->vpc, why);
		goto out;
	}
	if (g || c->validate) {
		id = g ? settle(t, c, g, how) : strdup(WOULD_CREATE);
		goto out;
	}

	cJSON *p = csg_params(t, c->untrack, c->vpc, name);
	/* Never re-sent blindly: a lost answer is settled by looking.  One
	 * sent by make_both is taken as if sent here. */
	int rc;
	if (look->made && look->made_idx[c->untrack] >= 0 && !look->made_taken[c->untrack]) {
		size_t mi = (size_t)look->made_idx[c->untrack];
		look->made_taken[c->untrack] = true;
		rc = irfw_calls_select(look->made, mi);
		const cJSON *r0 = irfw_calls_result(look->made, mi);
		res = rc == 0 && r0 ? cJSON_Duplicate(r0, true) : NULL;
	} else {
		rc = irfw_aws_call_ex(t, NULL, "ec2", "CreateSecurityGroup", p, IRFW_CALL_NOT_IDEMPOTENT,
		                      &res);
	}
	for (int send = 1; rc != 0 && streq(irfw_aws_error_code(t), IRFW_AWS_OUTCOME_UNKNOWN) && send < 3;
	     send++) {
		aws_long(t, why, sizeof(why));
		irfw_log(t, IRFW_LOG_WARN, "CreateSecurityGroup %s: %s; looking it up", name, why);
		for (int n = 0; n < 2 && !g && !err; n++) {
			if (n) {
				struct timespec ts = {.tv_sec = SETTLE_S};
				nanosleep(&ts, NULL);
			}
			g = sg_find(t, c->vpc, "group-name", name, &err);
		}
		if (g || err || send == 2)
			break; /* found (settled below), or the look failed */
		irfw_log(t, IRFW_LOG_INFO, "no group %s in %s: sending CreateSecurityGroup again", name,
		         c->vpc);
		rc = irfw_aws_call_ex(t, NULL, "ec2", "CreateSecurityGroup", p, IRFW_CALL_NOT_IDEMPOTENT,
		                      &res);
	}
	cJSON_Delete(p);
	if (g) {
		irfw_log(t, IRFW_LOG_INFO, "CreateSecurityGroup %s was carried out, its answer lost", name);
		id = settle(t, c, g, "found after CreateSecurityGroup's answer was lost");
		goto out;
	}
	if (rc == 0 && !res) {
		id = strdup(WOULD_CREATE); /* dry run: AWS said it would */
		goto out;
	}
	const char *gid = rc == 0 ? irfw_json_text(res, "groupId") : NULL;
	if (!gid) {
		if (rc != 0)
			aws_long(t, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "the answer holds no groupId");
		/* The group may exist all the same: made by a call whose answer
		 * was lost (the retry then answers InvalidGroup.Duplicate), or
		 * by another run in between.  Look again before giving up. */
		g = sg_find(t, c->vpc, "group-name", name, &err);
		if (g) {
			irfw_log(t, IRFW_LOG_INFO,
			         "CreateSecurityGroup for %s failed (%s), but the group exists", name, why);
			id = settle(t, c, g, "found after CreateSecurityGroup failed");
		} else {
			ctx_fail(c, rc != 0, false, "creating the %s group %s in %s: %s", what, name, c->vpc,
			         why);
		}
		goto out;
	}
	g = look->made_groups ? sg_pick_id(look->made_groups, gid) : NULL;
	if (!g && (g = fresh_group(gid, name, marker)))
		complete_fresh(t, c->st, c->untrack ? NULL : g, c->untrack ? g : NULL);
	c->made = true;
	if (!g) {
		ctx_fail(c, false, false, "out of memory");
		goto out;
	}
	id = settle(t, c, g, "created");
out:
	cJSON_Delete(res);
	cJSON_Delete(g);
	look_free(&own);
	free(name);
	free(other);
	return id;
}

/* A memo maker that makes nothing: irfw_memo() with it reads a value
 * without causing one. */
static char *make_none(irfw_target *t, void *arg)
{
	(void)t;
	(void)arg;
	return NULL;
}

/* The memoized group of this VPC: made at most once per run, however many
 * instances ask at once.  NULL with c->err set. */
static const char *vpc_group(irfw_target *t, struct make_ctx *c)
{
	char key[256];
	memo_key(key, sizeof(key), t, c->untrack ? "untrack" : "sg", c->vpc);
	const char *id = irfw_memo(t, key, make_group, c);
	if (!id && !c->err[0])
		ctx_fail(c, false, false, "could not get the %s group of %s",
		         c->untrack ? "untracking" : "quarantine", c->vpc);
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

/* True when DescribeInstances shows every interface in only `q`. */
static bool all_in(const cJSON *enis, const char *q)
{
	bool all = q && *q;
	const cJSON *e;
	cJSON_ArrayForEach(e, enis) all = all && only_group(e, q);
	return all;
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

/* The group ids of an interface's groupSet. */
static cJSON *group_ids(const cJSON *eni)
{
	cJSON *ids = cJSON_CreateArray();
	const cJSON *g;
	cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(eni, "groupSet"))
	    list_add_unique(ids, irfw_json_text(g, "groupId"));
	return ids;
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
	irfw_ec2_tag(p, key, value);
	return ec2(t, "CreateTags", p, NULL);
}

/* What happened to one interface, for the containment cause. */
struct eni_res {
	const char *id;
	char act[640];       /* the change that failed and what followed; "" when none */
	bool untrack_missed; /* quarantined without the untracking group first */
	bool swapped;        /* the quarantine group went on */
	bool via_instance;   /* the untracking group went on with ModifyInstanceAttribute */
};

/* EC2's throttling codes: a throttled call is no verdict on the request. */
static bool throttling(const char *code)
{
	static const char *const codes[] = {"RequestLimitExceeded",
	                                    "Throttling",
	                                    "ThrottlingException",
	                                    "EC2ThrottledException",
	                                    "RequestThrottled",
	                                    "TooManyRequestsException",
	                                    NULL};
	for (size_t i = 0; code && codes[i]; i++)
		if (streq(code, codes[i]))
			return true;
	return false;
}

/* True when the last call was refused by AWS for what it asked (a 4xx
 * other than throttling): another form of the same change may be
 * accepted.  Not after a transport error (no status), a 5xx or
 * throttling, whose request may well have been fine. */
static bool refused(irfw_target *t)
{
	long s = irfw_aws_http_status(t);
	return s >= 400 && s < 500 && s != 429 && !throttling(irfw_aws_error_code(t));
}

/* ModifyInstanceAttribute GroupId.N: "[EC2-VPC] Replaces the security
 * groups of the instance", i.e. of its only interface.  Its own request
 * bucket, not the interfaces' one. */
static int set_instance_groups(irfw_target *t, const cJSON *ids)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "InstanceId", irfw_target_id(t));
	cJSON_AddItemToObject(p, "GroupId", cJSON_Duplicate(ids, true));
	return ec2(t, "ModifyInstanceAttribute", p, NULL);
}

static int set_instance_group(irfw_target *t, const char *gid)
{
	cJSON *ids = cJSON_CreateArray();
	cJSON_AddItemToArray(ids, cJSON_CreateString(gid));
	int rc = set_instance_groups(t, ids);
	cJSON_Delete(ids);
	return rc;
}

/*
 * The first change of the swap: the untracking group on the interface.
 * On an instance with a single interface (`via_instance`) it goes through
 * ModifyInstanceAttribute, which draws on another EC2 request bucket than
 * the quarantine change that follows, so a fleet's two changes are paced
 * by two buckets instead of one; when AWS refuses that form (several
 * interfaces after all, an unsupported instance, no permission), it is
 * made with ModifyNetworkInterfaceAttribute.  0, or -1 with `op` naming
 * the API that was refused last.
 */
static int untrack_on(irfw_target *t, const char *u, struct eni_res *r, bool via_instance, const char **op)
{
	*op = "ModifyNetworkInterfaceAttribute";
	if (via_instance) {
		if (set_instance_group(t, u) == 0) {
			r->via_instance = true;
			return 0;
		}
		if (!refused(t)) {
			*op = "ModifyInstanceAttribute";
			return -1;
		}
		char why[512];
		aws_long(t, why, sizeof(why));
		irfw_log(
		    t, IRFW_LOG_WARN,
		    "ModifyInstanceAttribute with the untracking group %s refused (%s): putting it on %s "
		    "with ModifyNetworkInterfaceAttribute",
		    u, why, r->id);
	}
	return set_group(t, r->id, u);
}

/*
 * The two-step swap on one interface: the untracking group, then the
 * quarantine group.  If the second is refused the interface must not stay
 * all-open: its groups of just before are put back.  If the untracking
 * group is refused (or gone: another run removed it), the quarantine group
 * goes on directly: containment first, even with tracked flows surviving.
 */
static void swap(irfw_target *t, const cJSON *eni, const char *q, const char *u, bool via_instance,
                 struct eni_res *r)
{
	char e1[256], e2[256];
	const char *op = NULL;
	if (u && untrack_on(t, u, r, via_instance, &op) != 0) {
		aws_brief(t, e1, sizeof(e1));
		irfw_log(t, IRFW_LOG_WARN,
		         "the untracking group %s could not go on %s (%s): quarantining it directly", u,
		         r->id, e1);
		r->untrack_missed = true;
		snprintf(r->act, sizeof(r->act), "%s with the untracking group %s refused on %s: %s", op, u,
		         r->id, e1);
		u = NULL;
		if (set_group(t, r->id, q) == 0) {
			r->swapped = true;
			return;
		}
		aws_brief(t, e2, sizeof(e2));
		snprintf(r->act, sizeof(r->act),
		         "ModifyNetworkInterfaceAttribute refused on %s: %s; original groups kept", r->id,
		         e2);
		return;
	}
	if (set_group(t, r->id, q) == 0) {
		r->swapped = true;
		return;
	}
	aws_brief(t, e1, sizeof(e1));
	if (!u) {
		snprintf(r->act, sizeof(r->act),
		         "ModifyNetworkInterfaceAttribute refused on %s: %s; original groups kept", r->id,
		         e1);
		return;
	}
	cJSON *before = group_ids(eni);
	int rc = cJSON_GetArraySize(before) > 0 ? set_groups(t, r->id, before) : -1;
	const char *how = "";
	if (rc != 0 && r->via_instance && cJSON_GetArraySize(before) > 0) {
		/* The form that put the untracking group on may take it off. */
		aws_brief(t, e2, sizeof(e2));
		irfw_log(t, IRFW_LOG_WARN,
		         "putting the groups of %s back with ModifyNetworkInterfaceAttribute refused (%s): "
		         "with ModifyInstanceAttribute",
		         r->id, e2);
		rc = set_instance_groups(t, before);
		how = " (with ModifyInstanceAttribute)";
	}
	cJSON_Delete(before);
	if (rc == 0) {
		snprintf(r->act, sizeof(r->act),
		         "ModifyNetworkInterfaceAttribute with the quarantine group %s refused on %s: %s; "
		         "original groups put back%s",
		         q, r->id, e1, how);
		return;
	}
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(eni, "groupSet")) > 0)
		aws_brief(t, e2, sizeof(e2));
	else
		snprintf(e2, sizeof(e2), "its groups were not known");
	irfw_log(t, IRFW_LOG_ERROR, "%s is left with the ALL-OPEN untracking group %s: change it by hand now",
	         r->id, u);
	snprintf(r->act, sizeof(r->act),
	         "ModifyNetworkInterfaceAttribute with the quarantine group %s refused on %s: %s, and so was "
	         "putting its groups back: %s",
	         q, r->id, e1, e2);
}

/* The ids among `enis` that DescribeNetworkInterfaces shows holding one of
 * `groups` (the group-id filter looks at the interface's own groups), or
 * NULL on an AWS error. */
static cJSON *enis_holding(irfw_target *t, const cJSON *enis, const cJSON *groups)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	const cJSON *v;
	cJSON_ArrayForEach(v, enis) irfw_ec2_filter(p, "network-interface-id", v->valuestring);
	cJSON_ArrayForEach(v, groups) irfw_ec2_filter(p, "group-id", v->valuestring);
	if (ec2(t, "DescribeNetworkInterfaces", p, &res) != 0)
		return NULL;
	cJSON *ids = cJSON_CreateArray();
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "networkInterfaceSet"))
	    list_add_unique(ids, irfw_json_text(e, "networkInterfaceId"));
	cJSON_Delete(res);
	return ids;
}

static void cause_add(irfw_strbuf *b, const char *fmt, ...) IRFW_PRINTF(2, 3);
static void cause_add(irfw_strbuf *b, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	irfw_strbuf_printf(b, "%s%s", irfw_strbuf_len(b) ? "; " : "", msg);
}

static const struct eni_res *res_of(const struct eni_res *res, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (streq(res[i].id, id))
			return &res[i];
	return NULL;
}

/*
 * What AWS holds now: every interface attached to the instance and the
 * quarantine group's rules, read back.  Contained only when each attached
 * interface holds only `q` and `q` has no egress rule and no ingress wider
 * than admin_cidrs.  groupSet is read with one DescribeNetworkInterfaces;
 * where it shows other groups than `q`, one more call filtered by
 * group-id says which interfaces really hold them (the filter agrees with
 * groupSet on AWS; moto lists the instance's launch groups in groupSet
 * too).  The cause names what is open, prefixed by the change that failed.
 */
/* The original-groups tag, sent with the read-back: after the change
 * (containment first), and not a round trip of its own. */
struct tag_req {
	const char *key, *value;
	bool failed;
	char why[256]; /* the AWS error when failed */
};

/*
 * The last isolate of a VPC, which removes the untracking group after it
 * (untrack_release): who holds the group is read with the read-back, and,
 * when nothing this run did can have left it on an interface, its
 * DeleteSecurityGroup goes in the same round trip.  EC2 refuses to delete
 * a group an interface holds (DependencyViolation), so a change not in
 * effect yet costs a refusal, which untrack_release settles as before.
 */
struct last_isolate {
	const char *group; /* the untracking group */
	bool drop;         /* send its DeleteSecurityGroup with the read-back */
	cJSON *users;      /* DescribeNetworkInterfaces' answer: who holds it (to free) */
	int dropped;       /* 1 deleted, -1 refused (why), 0 not sent */
	char why[512];
};

static irfw_containment verify(irfw_target *t, const struct iso_state *st, const char *q, const char *u,
                               const struct eni_res *res, size_t n_res, irfw_strbuf *cause,
                               struct tag_req *tag, struct last_isolate *last)
{
	const char *users_of = last ? last->group : NULL;
	const char *iid = irfw_target_id(t);
	irfw_containment c = IRFW_NOT_CONTAINED;
	cJSON *p = cJSON_CreateObject();
	cJSON *x_enis = cJSON_CreateArray(), *x_groups = cJSON_CreateArray(), *u_enis = cJSON_CreateArray();
	cJSON *x_held = NULL, *u_held = NULL;
	irfw_strbuf *open = irfw_strbuf_new(), *gtxt = irfw_strbuf_new();
	char why[256];
	int n_att = 0, n_closed = 0;
	bool left_open = false, group_bad = false;
	/* The interfaces and the group's rules, asked together. */
	irfw_calls *rb = irfw_calls_new(t);
	irfw_ec2_filter(p, "attachment.instance-id", iid);
	int i_now = irfw_calls_add(rb, NULL, "ec2", "DescribeNetworkInterfaces", p, 0);
	cJSON_Delete(p);
	p = cJSON_CreateObject();
	irfw_ec2_filter(p, "group-id", q);
	int i_grp = irfw_calls_add(rb, NULL, "ec2", "DescribeSecurityGroups", p, 0);
	cJSON_Delete(p);
	int i_tag = -1;
	if (tag) {
		p = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "ResourceId"), cJSON_CreateString(iid));
		irfw_ec2_tag(p, tag->key, tag->value);
		i_tag = irfw_calls_add(rb, NULL, "ec2", "CreateTags", p, 0);
		cJSON_Delete(p);
	}
	/* Who holds the untracking group, for the last isolate of the VPC,
	 * which removes it afterwards (untrack_release). */
	int i_users = -1;
	if (users_of) {
		p = cJSON_CreateObject();
		irfw_ec2_filter(p, "group-id", users_of);
		i_users = irfw_calls_add(rb, NULL, "ec2", "DescribeNetworkInterfaces", p, 0);
		cJSON_Delete(p);
	}
	int i_drop = -1;
	if (users_of && last->drop) {
		p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "GroupId", users_of);
		i_drop = irfw_calls_add(rb, NULL, "ec2", "DeleteSecurityGroup", p, 0);
		cJSON_Delete(p);
	}
	irfw_calls_run(rb);
	if (last && i_users >= 0 && irfw_calls_select(rb, (size_t)i_users) == 0 &&
	    irfw_calls_result(rb, (size_t)i_users))
		last->users = cJSON_Duplicate(irfw_calls_result(rb, (size_t)i_users), true);
	if (i_drop >= 0) {
		/* NotFound: gone (a resend after a lost answer to the delete). */
		last->dropped = irfw_calls_select(rb, (size_t)i_drop) == 0 ||
		                        streq(irfw_aws_error_code(t), "InvalidGroup.NotFound")
		                    ? 1
		                    : -1;
		if (last->dropped < 0)
			aws_long(t, last->why, sizeof(last->why));
	}
	if (tag && (i_tag < 0 || irfw_calls_select(rb, (size_t)i_tag) != 0)) {
		tag->failed = true;
		aws_brief(t, tag->why, sizeof(tag->why));
	}
	const cJSON *now = i_now >= 0 ? irfw_calls_result(rb, (size_t)i_now) : NULL;
	const cJSON *grp = i_grp >= 0 ? irfw_calls_result(rb, (size_t)i_grp) : NULL;
	if (i_now < 0 || irfw_calls_select(rb, (size_t)i_now) != 0) {
		aws_brief(t, why, sizeof(why));
		for (size_t i = 0; i < n_res; i++)
			if (res[i].act[0])
				cause_add(cause, "%s", res[i].act);
		cause_add(cause,
		          "the interfaces of %s could not be read back (DescribeNetworkInterfaces: %s): "
		          "nothing is verified",
		          iid, why);
		goto out;
	}
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(now, "networkInterfaceSet"), *e, *g;
	cJSON_ArrayForEach(e, list)
	{
		const char *id = irfw_json_text(e, "networkInterfaceId");
		cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(e, "groupSet"))
		{
			const char *gid = irfw_json_text(g, "groupId");
			if (!id || !gid || streq(gid, q))
				continue;
			if (streq(gid, u)) {
				list_add_unique(u_enis, id);
			} else {
				list_add_unique(x_enis, id);
				list_add_unique(x_groups, gid);
			}
		}
	}
	bool x_err = false, u_err = false;
	if (cJSON_GetArraySize(x_enis) > 0 && !(x_held = enis_holding(t, x_enis, x_groups))) {
		x_err = true;
		aws_brief(t, why, sizeof(why));
		cause_add(open, "which groups %s hold could not be confirmed (%s)", "its interfaces", why);
	}
	/* Who holds the untracking group, when read with the read-back (the
	 * group-id filter, the same question enis_holding asks): no call of
	 * its own. */
	const cJSON *holders =
	    users_of && streq(users_of, u) && i_users >= 0 ? irfw_calls_result(rb, (size_t)i_users) : NULL;
	if (cJSON_GetArraySize(u_enis) > 0 && holders) {
		u_held = cJSON_CreateArray();
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(holders, "networkInterfaceSet"))
		{
			const char *id = irfw_json_text(e, "networkInterfaceId");
			if (id && list_has(u_enis, id))
				list_add_unique(u_held, id);
		}
	} else if (cJSON_GetArraySize(u_enis) > 0) {
		cJSON *ug = cJSON_CreateArray();
		cJSON_AddItemToArray(ug, cJSON_CreateString(u));
		u_held = enis_holding(t, u_enis, ug);
		cJSON_Delete(ug);
		if (!u_held) {
			u_err = true;
			aws_brief(t, why, sizeof(why));
			cause_add(
			    open,
			    "whether its interfaces hold the untracking group %s could not be confirmed (%s)",
			    u, why);
		}
	}

	/* The group's rules, as AWS holds them now. */
	if (i_grp < 0 || irfw_calls_select(rb, (size_t)i_grp) != 0) {
		aws_brief(t, why, sizeof(why));
		cause_add(gtxt, "the rules of the quarantine group %s could not be read back (%s)", q, why);
		group_bad = true;
	} else {
		const cJSON *qg = NULL;
		cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(grp, "securityGroupInfo"))
		{
			if (streq(irfw_json_str(g, "groupId"), q))
				qg = g;
		}
		if (!qg) {
			cause_add(gtxt, "the quarantine group %s does not exist", q);
			group_bad = true;
		} else if (open_text(st, qg, gtxt) > 0) {
			group_bad = true;
		}
	}

	cJSON_ArrayForEach(e, list)
	{
		const char *id = irfw_json_text(e, "networkInterfaceId");
		if (!id)
			continue;
		n_att++;
		bool in_q = false;
		irfw_strbuf *names = irfw_strbuf_new();
		cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(e, "groupSet"))
		{
			const char *gid = irfw_json_text(g, "groupId"), *gn = irfw_json_text(g, "groupName");
			if (streq(gid, q))
				in_q = true;
			else if (gid && !streq(gid, u))
				irfw_strbuf_printf(names, "%s%s%s%s%s", irfw_strbuf_len(names) ? ", " : "",
				                   gid, gn ? " (" : "", gn ? gn : "", gn ? ")" : "");
		}
		bool holds_u = list_has(u_enis, id) && (u_err || list_has(u_held, id));
		bool holds_x = list_has(x_enis, id) && (x_err || list_has(x_held, id));
		const struct eni_res *r = res_of(res, n_res, id);
		if (in_q && !holds_u && !holds_x) {
			n_closed++;
		} else {
			char seen[1024];
			if (holds_u) {
				left_open = true;
				snprintf(seen, sizeof(seen),
				         "%s LEFT IN THE ALL-OPEN untracking group %s: change it by hand now",
				         id, u);
			} else if (holds_x) {
				snprintf(seen, sizeof(seen), "%s still in %s", id, irfw_strbuf_str(names));
			} else {
				snprintf(seen, sizeof(seen), "%s is not in the quarantine group %s", id, q);
			}
			if (r && r->act[0])
				cause_add(open, "%s; read back: %s", r->act, seen);
			else
				cause_add(open, "%s", seen);
		}
		irfw_strbuf_free(names);
	}
	/* Changes that failed on interfaces no longer attached. */
	for (size_t i = 0; i < n_res; i++) {
		bool listed = false;
		cJSON_ArrayForEach(e, list) listed =
		    listed || streq(irfw_json_text(e, "networkInterfaceId"), res[i].id);
		if (!listed && res[i].act[0])
			cause_add(open, "%s", res[i].act);
	}
	if (n_att == 0)
		cause_add(open, "no interface is attached to %s in the read-back", iid);

	if (irfw_strbuf_len(gtxt))
		cause_add(cause, "%s", irfw_strbuf_str(gtxt));
	if (irfw_strbuf_len(open))
		cause_add(cause, "%s", irfw_strbuf_str(open));
	if (n_att == 0 || left_open || group_bad || n_closed == 0)
		c = IRFW_NOT_CONTAINED;
	else if (n_closed < n_att || irfw_strbuf_len(open))
		c = IRFW_PARTIALLY_CONTAINED;
	else
		c = IRFW_CONTAINED;
out:
	irfw_calls_free(rb);
	cJSON_Delete(x_enis);
	cJSON_Delete(x_groups);
	cJSON_Delete(u_enis);
	cJSON_Delete(x_held);
	cJSON_Delete(u_held);
	irfw_strbuf_free(open);
	irfw_strbuf_free(gtxt);
	return c;
}

/* ------------------------------------------------------------------ */
/* Deny-all network ACL.                                               */

/* CreateNetworkAcl's ClientToken: the same for the same case, VPC and
 * name, so a re-send (after a lost answer, or on resume) is recognised by
 * EC2 as the same request; another case gets another token (a token is
 * remembered for a while even after its ACL is deleted).  Two FNV-1a
 * hashes: not a secret, only an identifier (at most 64 ASCII characters). */
static void nacl_token(irfw_target *t, const char *vpc, const char *name, char out[64])
{
	uint64_t h[2] = {1469598103934665603ULL, 1469598103934665603ULL ^ 0x5bd1e995ULL};
	const char *parts[3] = {irfw_target_case_id(t), vpc, name};
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 3; i++)
			for (const char *q = parts[i] ? parts[i] : "";; q++) {
				h[k] = (h[k] ^ (unsigned char)*q) * 1099511628211ULL;
				if (!*q)
					break;
			}
	snprintf(out, 64, "irfw-nacl-%016llx%016llx", (unsigned long long)h[0], (unsigned long long)h[1]);
}

/* The network ACL of `vpc` named `name` (tag Name), or NULL with *err set
 * on an AWS error. */
static char *nacl_find(irfw_target *t, const char *vpc, const char *name, int *err)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	char *id = NULL;
	irfw_ec2_filter(p, "vpc-id", vpc);
	irfw_ec2_filter(p, "tag:Name", name);
	*err = 0;
	if (ec2(t, "DescribeNetworkAcls", p, &res) != 0) {
		*err = 1;
		return NULL;
	}
	const cJSON *a;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(res, "networkAclSet"))
	{
		if (irfw_json_text(a, "networkAclId")) {
			id = strdup(irfw_json_text(a, "networkAclId"));
			break;
		}
	}
	cJSON_Delete(res);
	return id;
}

static char *make_nacl(irfw_target *t, void *arg)
{
	struct make_ctx *c = arg;
	char *name = irfw_step_expand(t, "nacl_name");
	char *id = NULL;
	cJSON *p, *res = NULL;
	char why[512];
	if (!name || !*name) {
		ctx_fail(c, false, false, "nacl_name does not expand");
		goto out;
	}
	int err = 0;
	id = nacl_find(t, c->vpc, name, &err);
	if (err) {
		aws_brief(t, why, sizeof(why));
		ctx_fail(c, true, false, "looking up the network ACL %s in %s: %s", name, c->vpc, why);
		goto out;
	}
	if (id)
		goto out;
	/* A new network ACL has only the default entries, which deny all. */
	char token[64];
	nacl_token(t, c->vpc, name, token);
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "VpcId", c->vpc);
	cJSON_AddStringToObject(p, "ClientToken", token);
	irfw_ec2_tag_spec(p, "network-acl", "Name", name);
	irfw_ec2_tag_spec(p, "network-acl", TAG_QUARANTINE, "true");
	irfw_ec2_tag_spec(p, "network-acl", TAG_MADE_CASE, irfw_target_case_id(t));
	irfw_ec2_tag_spec(p, "network-acl", TAG_MADE_STEP, irfw_step_name(irfw_target_step(t)));
	/* EC2 deduplicates by the ClientToken; the core does not re-send it
	 * blindly all the same, and a lost answer is looked up by name first
	 * (an emulator may ignore the token), then sent again with the same
	 * token. */
	int rc = irfw_aws_call_ex(t, NULL, "ec2", "CreateNetworkAcl", p, IRFW_CALL_NOT_IDEMPOTENT, &res);
	for (int send = 1; rc != 0 && streq(irfw_aws_error_code(t), IRFW_AWS_OUTCOME_UNKNOWN) && send < 3;
	     send++) {
		aws_long(t, why, sizeof(why));
		irfw_log(t, IRFW_LOG_WARN, "CreateNetworkAcl %s: %s; looking it up", name, why);
		for (int look = 0; look < 2 && !id && !err; look++) {
			if (look) {
				struct timespec ts = {.tv_sec = SETTLE_S};
				nanosleep(&ts, NULL);
			}
			id = nacl_find(t, c->vpc, name, &err);
		}
		if (id || err || send == 2)
			break;
		rc = irfw_aws_call_ex(t, NULL, "ec2", "CreateNetworkAcl", p, IRFW_CALL_NOT_IDEMPOTENT, &res);
	}
	cJSON_Delete(p);
	if (id) {
		irfw_log(t, IRFW_LOG_INFO, "CreateNetworkAcl %s was carried out, its answer lost", name);
		goto out;
	}
	if (rc != 0) {
		aws_brief(t, why, sizeof(why));
		ctx_fail(c, true, false, "creating the deny-all network ACL %s in %s: %s", name, c->vpc, why);
		goto out;
	}
	if (!res) {
		id = strdup(WOULD_CREATE);
		goto out;
	}
	const char *nid = irfw_json_text(cJSON_GetObjectItemCaseSensitive(res, "networkAcl"), "networkAclId");
	if (nid)
		id = strdup(nid);
	else
		ctx_fail(c, false, false, "CreateNetworkAcl answered without a networkAclId");
out:
	cJSON_Delete(res);
	free(name);
	return id;
}

/* Others living in `subnet`: instances and interfaces that are not this
 * instance's, appended to `who` (a comma list).  -1 on an AWS error. */
static int subnet_neighbours(irfw_target *t, const char *subnet, char *who, size_t len)
{
	const char *self = irfw_target_id(t);
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	irfw_ec2_filter(p, "subnet-id", subnet);
	const char *live[] = {"pending", "running", "stopping", "stopped"};
	for (size_t i = 0; i < 4; i++)
		irfw_ec2_filter(p, "instance-state-name", live[i]);
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
	irfw_ec2_filter(p, "subnet-id", subnet);
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
			                      irfw_json_text(e, "interfaceType")
			                          ? irfw_json_text(e, "interfaceType")
			                          : "interface");
	}
	cJSON_Delete(res);
	return 0;
}

/* The subnet's current ACL association: id and ACL (to free), or -1. */
static int subnet_assoc(irfw_target *t, const char *subnet, char **assoc, char **acl)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	irfw_ec2_filter(p, "association.subnet-id", subnet);
	*assoc = *acl = NULL;
	if (ec2(t, "DescribeNetworkAcls", p, &res) != 0)
		return -1;
	const cJSON *a, *as;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(res, "networkAclSet"))
	    cJSON_ArrayForEach(as, cJSON_GetObjectItemCaseSensitive(a, "associationSet"))
	{
		if (!*assoc && streq(irfw_json_str(as, "subnetId"), subnet) &&
		    irfw_json_text(as, "networkAclAssociationId")) {
			*assoc = strdup(irfw_json_text(as, "networkAclAssociationId"));
			*acl = strdup(irfw_json_text(a, "networkAclId") ? irfw_json_text(a, "networkAclId")
			                                                : "");
		}
	}
	cJSON_Delete(res);
	return 0;
}

/*
 * Put the deny-all ACL on every subnet of the instance's interfaces, and
 * read each association back.  0 when it is on all of them (in a dry run:
 * when AWS would allow it), else -1 with `why` saying what is not.
 */
static int apply_nacl(irfw_target *t, const char *vpc, const cJSON *enis, char *why, size_t len)
{
	irfw_step *step = irfw_target_step(t);
	bool allow_shared = streq(irfw_step_get(step, "nacl_shared_subnet"), "allow");
	bool dry = irfw_target_dry_run(t);
	cJSON *subnets = cJSON_CreateArray(), *rec = NULL;
	const cJSON *e, *s;
	char who[1024], err[256];
	int rc = -1;
	cJSON_ArrayForEach(e, enis) list_add_unique(subnets, irfw_json_text(e, "subnetId"));
	if (cJSON_GetArraySize(subnets) == 0)
		list_add_unique(subnets, irfw_json_text(irfw_target_instance(t), "subnetId"));
	why[0] = '\0';
	/* Refuse before touching any subnet. */
	cJSON_ArrayForEach(s, subnets)
	{
		who[0] = '\0';
		if (subnet_neighbours(t, s->valuestring, who, sizeof(who)) != 0) {
			aws_brief(t, err, sizeof(err));
			snprintf(why, len, "who else is in subnet %s could not be read: %s", s->valuestring,
			         err);
			goto out;
		}
		if (who[0] && !allow_shared) {
			snprintf(why, len,
			         "subnet %s also holds %s, which it would cut off too (set "
			         "nacl_shared_subnet = allow to do it anyway)",
			         s->valuestring, who);
			goto out;
		}
		if (who[0])
			irfw_log(t, IRFW_LOG_WARN,
			         "deny-all network ACL on shared subnet %s also cuts off %s", s->valuestring,
			         who);
	}

	struct make_ctx c = {.vpc = vpc};
	char key[256];
	memo_key(key, sizeof(key), t, "nacl", vpc);
	const char *nacl = irfw_memo(t, key, make_nacl, &c);
	if (!nacl) {
		snprintf(why, len, "%s", c.err[0] ? c.err : "no deny-all network ACL");
		goto out;
	}
	if (!*nacl) {
		irfw_note(t,
		          "dry run: would create the deny-all network ACL and associate it with %d subnet(s)",
		          cJSON_GetArraySize(subnets));
		rc = 0;
		goto out;
	}
	const cJSON *prior = irfw_record_get(t, irfw_step_name(step), "original_nacl");
	rec = cJSON_IsObject(prior) ? cJSON_Duplicate(prior, true) : cJSON_CreateObject();
	int changed = 0;
	cJSON_ArrayForEach(s, subnets)
	{
		char *assoc = NULL, *acl = NULL;
		int ar = subnet_assoc(t, s->valuestring, &assoc, &acl);
		if (ar != 0 || !assoc) {
			if (ar == 0) {
				snprintf(why, len, "subnet %s has no network ACL association",
				         s->valuestring);
			} else {
				aws_brief(t, err, sizeof(err));
				snprintf(why, len, "the network ACL of subnet %s could not be read: %s",
				         s->valuestring, err);
			}
			free(assoc);
			free(acl);
			goto out;
		}
		if (streq(acl, nacl)) {
			free(assoc);
			free(acl);
			continue;
		}
		if (!dry && !cJSON_GetObjectItemCaseSensitive(rec, s->valuestring)) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "association_id", assoc);
			cJSON_AddStringToObject(o, "network_acl_id", acl);
			cJSON_AddItemToObject(rec, s->valuestring, o);
			/* Before the change, so release can put it back. */
			if (irfw_record(t, "original_nacl", cJSON_Duplicate(rec, true)) != 0)
				irfw_log(t, IRFW_LOG_ERROR,
				         "the original network ACL of %s (%s, association %s) could not be "
				         "recorded",
				         s->valuestring, acl, assoc);
		}
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "AssociationId", assoc);
		cJSON_AddStringToObject(p, "NetworkAclId", nacl);
		int r = ec2(t, "ReplaceNetworkAclAssociation", p, NULL);
		free(assoc);
		free(acl);
		if (r != 0) {
			aws_brief(t, err, sizeof(err));
			snprintf(why, len, "ReplaceNetworkAclAssociation of %s with %s refused: %s",
			         s->valuestring, nacl, err);
			goto out;
		}
		changed++;
	}
	if (dry) {
		irfw_note(t, "dry run: would associate the deny-all network ACL %s with %d subnet(s)", nacl,
		          changed);
		rc = 0;
		goto out;
	}
	/* Read back: what the subnets hold now, not what the calls said. */
	cJSON_ArrayForEach(s, subnets)
	{
		char *assoc = NULL, *acl = NULL;
		int r = subnet_assoc(t, s->valuestring, &assoc, &acl);
		if (r != 0)
			aws_brief(t, err, sizeof(err));
		if (r != 0 || !streq(acl, nacl))
			snprintf(why, len, "subnet %s %s%s", s->valuestring,
			         r != 0 ? "could not be read back: "
			                : "does not hold the deny-all network ACL ",
			         r != 0 ? err : nacl);
		free(assoc);
		free(acl);
		if (why[0])
			goto out;
	}
	irfw_note(t, "deny-all network ACL %s on %d subnet(s)%s", nacl, cJSON_GetArraySize(subnets),
	          changed ? "" : " (already)");
	rc = 0;
out:
	cJSON_Delete(rec);
	cJSON_Delete(subnets);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The step.                                                           */

/* The VPC's quarantine (or untracking) group, through the memo. */
static const char *group_of(irfw_target *t, const struct iso_state *st, const char *vpc, bool untrack,
                            struct make_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->st = st;
	c->vpc = vpc;
	c->who = irfw_target_id(t);
	c->untrack = untrack;
	return vpc_group(t, c);
}

/* The preconditions of run and check; NULL when the step cannot apply,
 * with *why set. */
static const cJSON *interfaces_of(irfw_target *t, const char **why)
{
	const char *vpc = irfw_target_vpc_id(t);
	const cJSON *enis = cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "networkInterfaceSet");
	*why = NULL;
	if (!vpc || !*vpc)
		*why = "instance is not in a VPC: security groups of a VPC cannot be applied";
	else if (cJSON_GetArraySize(enis) == 0)
		*why = "instance has no network interface";
	return *why ? NULL : enis;
}

/*
 * `irfw check` and --dry-run: prove the rights isolate needs, change
 * nothing.  prepare has resolved the groups without creating any (a
 * DryRun CreateSecurityGroup when one is missing); each interface gets a
 * DryRun ModifyNetworkInterfaceAttribute, with the quarantine group when
 * it exists, else with its current groups (valid ids, so only the right
 * is judged).  Never reports containment: nothing was changed.
 */
static irfw_status check(irfw_target *t, void *state)
{
	const struct iso_state *st = state;
	irfw_step *step = irfw_target_step(t);
	const char *vpc = irfw_target_vpc_id(t), *why;
	const cJSON *enis = interfaces_of(t, &why), *e;
	if (!enis)
		return irfw_skip(t, "%s", why);
	int n_enis = cJSON_GetArraySize(enis);
	struct make_ctx c, cu;
	irfw_strbuf *ok = irfw_strbuf_new(), *bad = irfw_strbuf_new(), *nc = irfw_strbuf_new();
	char err[512];
	bool call_failed = false;
	irfw_status ret;
	struct vpc_ent *ent = vpc_find((struct iso_state *)st, vpc);

	const char *q = group_of(t, st, vpc, false, &c);
	if (!q) {
		ret = c.aws ? irfw_fail_aws_first(t, "isolate would fail: %s", c.err)
		            : irfw_fail(t, "isolate would fail: %s", c.err);
		goto out;
	}
	bool all_done = all_in(enis, q);
	const char *u = NULL;
	if (!all_done && irfw_step_get_bool(step, "break_tracked")) {
		u = group_of(t, st, vpc, true, &cu);
		if (!u) {
			cause_add(bad, "the untracking group: %s", cu.err);
			call_failed = call_failed || cu.aws;
		}
	}
	char *qname = irfw_step_expand(t, "group_name");
	if (all_done)
		irfw_note(t, "dry run: already isolated: %s is the only group of all %d interface(s)", q,
		          n_enis);
	else if (*q)
		irfw_note(t, "dry run: would put quarantine group %s on %d interface(s)%s%s%s", q, n_enis,
		          u ? ", after the untracking group " : "", u && *u ? u : "",
		          u && !*u ? "(to be created)" : "");
	else
		irfw_note(t, "dry run: would create the quarantine group %s and apply it to %d interface(s)",
		          qname ? qname : "", n_enis);
	free(qname);
	if (ent && ent->note)
		irfw_note(t, "%s", ent->note);
	if (ent && ent->note_failed)
		cause_add(bad, "%s", ent->note);
	cause_add(ok, "DescribeSecurityGroups");
	/* The read-back of a real run: without it every run would report
	 * the instance not contained. */
	cJSON *rb = cJSON_CreateObject();
	irfw_ec2_filter(rb, "attachment.instance-id", irfw_target_id(t));
	if (ec2(t, "DescribeNetworkInterfaces", rb, NULL) != 0) {
		aws_brief(t, err, sizeof(err));
		cause_add(bad,
		          "DescribeNetworkInterfaces (the read-back that verifies containment) refused: %s",
		          err);
		call_failed = true;
	} else {
		cause_add(ok, "DescribeNetworkInterfaces");
	}
	if (!*q)
		cause_add(ok, "CreateSecurityGroup");
	if (u && !*u && *q)
		cause_add(ok, "CreateSecurityGroup (untracking group)");

	int n_mod = 0;
	cJSON_ArrayForEach(e, enis)
	{
		const char *id = irfw_json_text(e, "networkInterfaceId");
		cJSON *ids = *q ? cJSON_CreateArray() : group_ids(e);
		if (*q)
			cJSON_AddItemToArray(ids, cJSON_CreateString(q));
		if (!id || cJSON_GetArraySize(ids) == 0) {
			cause_add(nc, "ModifyNetworkInterfaceAttribute on %s (no group to ask with)",
			          id ? id : "?");
			cJSON_Delete(ids);
			continue;
		}
		if (set_groups(t, id, ids) != 0) {
			aws_brief(t, err, sizeof(err));
			cause_add(bad, "ModifyNetworkInterfaceAttribute on %s refused: %s", id, err);
			call_failed = true;
		} else {
			n_mod++;
		}
		cJSON_Delete(ids);
		bool mia_refused = false;
		if (u && n_enis == 1) {
			/* A run puts the untracking group on a single interface
			 * with ModifyInstanceAttribute: asked with the group, or
			 * when it is not made yet with the current groups. */
			cJSON *uids = *u ? cJSON_CreateArray() : group_ids(e);
			if (*u)
				cJSON_AddItemToArray(uids, cJSON_CreateString(u));
			if (cJSON_GetArraySize(uids) == 0) {
				cause_add(nc, "ModifyInstanceAttribute (no group to ask with)");
			} else if (set_instance_groups(t, uids) != 0) {
				aws_brief(t, err, sizeof(err));
				cause_add(
				    bad,
				    "ModifyInstanceAttribute with the untracking group on %s refused: %s (a "
				    "run would fall back to ModifyNetworkInterfaceAttribute)",
				    irfw_target_id(t), err);
				call_failed = true;
				mia_refused = true;
			} else {
				cause_add(ok, "ModifyInstanceAttribute (the untracking group)");
			}
			cJSON_Delete(uids);
		}
		if (u && *u && (n_enis != 1 || mia_refused) && set_group(t, id, u) != 0) {
			aws_brief(t, err, sizeof(err));
			cause_add(
			    bad,
			    "ModifyNetworkInterfaceAttribute with the untracking group on %s refused: %s", id,
			    err);
			call_failed = true;
		}
	}
	cause_add(ok, "ModifyNetworkInterfaceAttribute on %d of %d interface(s) (%s)", n_mod, n_enis,
	          *q ? "with the quarantine group"
	             : "with their current groups: the quarantine group is not made yet");
	const char *tagkey = irfw_step_get(step, "original_groups_tag");
	if (!all_done && tagkey && *tagkey) {
		if (tag_instance(t, tagkey, "check") != 0) {
			aws_brief(t, err, sizeof(err));
			cause_add(bad, "CreateTags (the original-groups tag) refused: %s", err);
			call_failed = true;
		} else {
			cause_add(ok, "CreateTags");
		}
	}
	if (irfw_step_get_bool(step, "nacl")) {
		char nwhy[2048];
		if (apply_nacl(t, vpc, enis, nwhy, sizeof(nwhy)) != 0)
			cause_add(bad, "deny-all network ACL: %s", nwhy);
		else
			cause_add(ok, "the deny-all network ACL (DescribeNetworkAcls, CreateNetworkAcl, "
			              "ReplaceNetworkAclAssociation)");
	}
	if (!*q || (u && !*u))
		cause_add(nc, "the rules of a group still to be made (RevokeSecurityGroupEgress, "
		              "AuthorizeSecurityGroupIngress/Egress)");
	if (u)
		cause_add(nc, "DeleteSecurityGroup of the untracking group after the run");
	irfw_note(t, "checked: %s; not checked: %s", irfw_strbuf_str(ok), irfw_strbuf_str(nc));
	if (irfw_strbuf_len(bad))
		ret = call_failed ? irfw_fail_aws_first(t, "isolate would fail: %s", irfw_strbuf_str(bad))
		                  : irfw_fail(t, "isolate would fail: %s", irfw_strbuf_str(bad));
	else
		ret = IRFW_OK;
out:
	irfw_strbuf_free(ok);
	irfw_strbuf_free(bad);
	irfw_strbuf_free(nc);
	return ret;
}

/* Contain the instance, read back what AWS holds, report it. */
/* The run's untracking group of t's VPC, if one was had (no call). */
static const char *untrack_of(irfw_target *t)
{
	char key[256];
	memo_key(key, sizeof(key), t, "untrack", irfw_target_vpc_id(t));
	const char *u = irfw_memo(t, key, make_none, NULL);
	return u && *u && !streq(u, WOULD_CREATE) ? u : NULL;
}

static irfw_status contain(irfw_target *t, struct iso_state *st, struct last_isolate *last)
{
	irfw_step *step = irfw_target_step(t);
	const char *vpc = irfw_target_vpc_id(t), *why;
	const cJSON *enis = interfaces_of(t, &why), *e;
	struct make_ctx c, cu;
	struct eni_res *res = NULL;
	cJSON *orig = NULL;
	irfw_strbuf *cause = irfw_strbuf_new(), *extra = irfw_strbuf_new();
	irfw_status ret = IRFW_FAILED;
	bool groups_recorded = true, report_recorded = true, call_failed = false;
	char tagv[TAG_VALUE_MAX + 1];
	if (!enis) {
		irfw_containment_report(t, IRFW_NOT_CONTAINED, "isolate could not apply: %s", why);
		ret = irfw_skip(t, "%s", why);
		goto out;
	}
	int n_enis = cJSON_GetArraySize(enis);
	struct vpc_ent *ent = vpc_find(st, vpc);

	const char *q = group_of(t, st, vpc, false, &c);
	if (!q || !*q) {
		irfw_containment_report(t, IRFW_NOT_CONTAINED, "no quarantine group for %s: %s", vpc,
		                        c.err[0] ? c.err : "none");
		ret = c.aws
		          ? irfw_fail_aws_first(t, "%s; nothing was changed", c.err)
		          : irfw_fail(t, "%s; nothing was changed", c.err[0] ? c.err : "no quarantine group");
		goto out;
	}
	bool all_done = all_in(enis, q);
	const char *u = NULL;
	if (!all_done && irfw_step_get_bool(step, "break_tracked")) {
		u = group_of(t, st, vpc, true, &cu);
		if (!u || !*u) {
			u = NULL;
			irfw_log(t, IRFW_LOG_WARN, "no untracking group (%s): quarantining directly", cu.err);
			cause_add(
			    extra,
			    "tracked connections may survive: the untracking group could not be had (%s)",
			    cu.err);
		}
	}
	int unknown = 0, changed = 0, i = 0;
	struct tag_req otag = {0};
	bool want_tag = false;
	orig = original_groups(t, enis, q, u, &unknown);
	tag_value(orig, tagv);
	res = calloc((size_t)n_enis, sizeof(*res));
	if (!res || !orig) {
		irfw_containment_report(t, IRFW_NOT_CONTAINED, "out of memory before any change");
		ret = irfw_fail(t, "out of memory before any change");
		goto out;
	}
	cJSON_ArrayForEach(e, enis) res[i++].id = irfw_json_text(e, "networkInterfaceId");
	if (!all_done) {
		/* Recorded before anything changes, so release can undo it, and
		 * logged too; a record that cannot be written does not stop
		 * the containment.  The group is written first and made durable
		 * with the original groups (one sync for both). */
		irfw_log(t, IRFW_LOG_INFO, "original groups: %s", tagv[0] ? tagv : "(none known)");
		if (irfw_record_result(t, "quarantine_sg", cJSON_CreateString(q)) != 0)
			groups_recorded = false;
		if (irfw_record(t, "original_groups", cJSON_Duplicate(orig, true)) != 0)
			groups_recorded = false;
		if (!groups_recorded)
			irfw_log(
			    t, IRFW_LOG_ERROR,
			    "the original groups could not be recorded in the case record (is the evidence "
			    "folder full or read-only?): %s; containing all the same",
			    tagv[0] ? tagv : "(none known)");
		i = 0;
		cJSON_ArrayForEach(e, enis)
		{
			struct eni_res *r = &res[i++];
			if (!r->id || only_group(e, q))
				continue;
			swap(t, e, q, u, n_enis == 1, r);
			if (r->swapped)
				changed++;
			if (r->act[0])
				call_failed = true;
			if (r->swapped && r->untrack_missed)
				cause_add(extra, "tracked connections of %s may survive (%s)", r->id, r->act);
		}
		/* The tag comes after the change, with the read-back:
		 * containment first.  The record holds the groups; the tag is
		 * a convenience. */
		const char *tagkey = irfw_step_get(step, "original_groups_tag");
		if (tagkey && *tagkey && cJSON_GetArraySize(orig) > 0) {
			otag.key = tagkey;
			otag.value = tagv;
			want_tag = true;
		}
	}
	if (irfw_step_get_bool(step, "nacl")) {
		char nwhy[2048];
		if (apply_nacl(t, vpc, enis, nwhy, sizeof(nwhy)) != 0)
			cause_add(extra, "deny-all network ACL not applied: %s", nwhy);
	}

	if (ent && atomic_load(&ent->left) == 1 && (last->group = untrack_of(t)))
		/* Nothing of this run can have left it on: made by this run,
		 * put on and taken off here without a failed change, and no
		 * other isolate of the VPC in trouble. */
		last->drop = ent->u_made && streq(u, last->group) && changed > 0 && !call_failed &&
		             atomic_load(&ent->trouble) == 0;
	irfw_containment cs = verify(t, st, q, u, res, (size_t)n_enis, cause, want_tag ? &otag : NULL,
	                             last->group ? last : NULL);
	if (ent && (cs != IRFW_CONTAINED || call_failed))
		atomic_fetch_add(&ent->trouble, 1);
	if (want_tag && otag.failed)
		irfw_note(t, "the original-groups tag %s could not be set (%s): %s", otag.key, otag.why,
		          groups_recorded ? "the case record holds them" : "they are in the log only");
	if (irfw_strbuf_len(extra)) {
		cause_add(cause, "%s", irfw_strbuf_str(extra));
		if (cs == IRFW_CONTAINED)
			cs = IRFW_PARTIALLY_CONTAINED;
	}
	if (irfw_containment_report(t, cs, "%s", irfw_strbuf_str(cause)) != 0)
		report_recorded = false;
	irfw_fact_set(t, "quarantine_sg", q);

	if (all_done)
		irfw_note(t, "already isolated: %s is the only group of all %d interface(s)", q, n_enis);
	else
		irfw_note(t, "quarantine group %s on %d of %d interface(s)%s%s%s", q, changed, n_enis,
		          u ? ", after the untracking group " : "", u ? u : "",
		          n_enis == 1 && res[0].via_instance ? " (put on with ModifyInstanceAttribute)" : "");
	if (ent && ent->note)
		irfw_note(t, "%s", ent->note);
	if (c.note[0])
		irfw_note(t, "%s", c.note);
	if (unknown)
		irfw_note(t,
		          "%d interface(s) were in quarantine before this case: their original groups are "
		          "not known",
		          unknown);
	if (cs == IRFW_CONTAINED)
		irfw_note(t,
		          "verified: every attached interface holds only %s, which allows no egress and no "
		          "ingress beyond admin_cidrs",
		          q);

	char rec[TAG_VALUE_MAX + 512] = "";
	if (!groups_recorded)
		snprintf(rec, sizeof(rec),
		         "the original groups could not be recorded in the case record (is the evidence "
		         "folder full or read-only?): they were %s",
		         tagv[0] ? tagv : "(none known)");
	else if (!report_recorded)
		snprintf(rec, sizeof(rec), "the containment verdict could not be written to the case record");
	if (cs == IRFW_CONTAINED && !rec[0])
		ret = IRFW_OK;
	else if (cs == IRFW_CONTAINED)
		ret = irfw_fail(t, "contained; but %s", rec);
	else if (call_failed)
		ret = irfw_fail_aws_first(t, "%s: %s%s%s", irfw_containment_name(cs), irfw_strbuf_str(cause),
		                          rec[0] ? "; and " : "", rec);
	else
		ret = irfw_fail(t, "%s: %s%s%s", irfw_containment_name(cs), irfw_strbuf_str(cause),
		                rec[0] ? "; and " : "", rec);
out:
	free(res);
	cJSON_Delete(orig);
	irfw_strbuf_free(cause);
	irfw_strbuf_free(extra);
	return ret;
}

/*
 * The untracking group is all-open by design, and scanners rightly flag an
 * all-open group: it is removed once no instance of this run needs it, by
 * the last isolate of its VPC to finish.  Never while an interface holds
 * it: that interface is left all-open and must be named, not hidden.
 */
static void untrack_release(irfw_target *t, struct iso_state *st, struct last_isolate *last)
{
	const char *vpc = irfw_target_vpc_id(t);
	struct vpc_ent *ent = vpc_find(st, vpc);
	if (!ent || atomic_fetch_sub(&ent->left, 1) != 1)
		return;
	char err[512];
	const char *u = untrack_of(t);
	if (!u)
		return;
	if (last->dropped > 0 && streq(last->group, u)) {
		irfw_log(t, IRFW_LOG_INFO,
		         "untracking group %s of %s removed: no instance of this run needs it", u, vpc);
		irfw_note(t, "untracking group %s removed", u);
		return;
	}
	/* Read with the read-back when this was known to be the last; read
	 * again, a moment later, when the delete sent with it was refused
	 * (the change may not have been in effect yet). */
	cJSON *p = NULL, *res = NULL;
	if (last->dropped < 0) {
		irfw_log(t, IRFW_LOG_INFO,
		         "DeleteSecurityGroup %s, sent with the read-back, was refused (%s); looking again",
		         u, last->why);
		struct timespec ts = {.tv_sec = SETTLE_S};
		nanosleep(&ts, NULL);
	} else if (last->users && streq(last->group, u)) {
		res = cJSON_Duplicate(last->users, true);
	}
	if (!res) {
		p = cJSON_CreateObject();
		irfw_ec2_filter(p, "group-id", u);
	}
	if (!res && ec2(t, "DescribeNetworkInterfaces", p, &res) != 0) {
		aws_brief(t, err, sizeof(err));
		irfw_log(t, IRFW_LOG_WARN,
		         "the untracking group %s of %s is kept: who holds it could not be read (%s)", u, vpc,
		         err);
		irfw_note(t, "the untracking group %s is kept: who holds it could not be read (%s)", u, err);
		return;
	}
	irfw_strbuf *who = irfw_strbuf_new();
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "networkInterfaceSet"))
	{
		const char *id = irfw_json_text(e, "networkInterfaceId");
		const char *owner =
		    irfw_json_text(cJSON_GetObjectItemCaseSensitive(e, "attachment"), "instanceId");
		if (id)
			irfw_strbuf_printf(who, "%s%s%s%s%s", irfw_strbuf_len(who) ? ", " : "", id,
			                   owner ? " (" : "", owner ? owner : "", owner ? ")" : "");
	}
	cJSON_Delete(res);
	if (irfw_strbuf_len(who)) {
		irfw_log(t, IRFW_LOG_ERROR,
		         "the ALL-OPEN untracking group %s of %s is still on %s: it is kept; put those "
		         "interfaces in the quarantine group by hand, then delete it",
		         u, vpc, irfw_strbuf_str(who));
		irfw_note(t, "the ALL-OPEN untracking group %s is kept: still on %s", u,
		          irfw_strbuf_str(who));
		irfw_strbuf_free(who);
		return;
	}
	irfw_strbuf_free(who);
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "GroupId", u);
	if (ec2(t, "DeleteSecurityGroup", p, NULL) == 0 ||
	    streq(irfw_aws_error_code(t), "InvalidGroup.NotFound")) {
		/* NotFound: the first delete went through and its answer was
		 * lost; the resend finds it gone. */
		irfw_log(t, IRFW_LOG_INFO,
		         "untracking group %s of %s removed: no instance of this run needs it", u, vpc);
		irfw_note(t, "untracking group %s removed", u);
		return;
	}
	aws_long(t, err, sizeof(err));
	if (streq(irfw_aws_error_code(t), "DependencyViolation"))
		irfw_log(t, IRFW_LOG_ERROR,
		         "the ALL-OPEN untracking group %s of %s is still held by an interface (%s): it is "
		         "kept; find it with the filter group-id=%s and quarantine it by hand",
		         u, vpc, err, u);
	else
		irfw_log(t, IRFW_LOG_WARN,
		         "the untracking group %s of %s could not be deleted (%s): delete it later", u, vpc,
		         err);
	irfw_note(t, "the untracking group %s is kept: DeleteSecurityGroup refused (%s)", u, err);
}

static irfw_status run(irfw_target *t, void *state)
{
	struct iso_state *st = state;
	if (irfw_target_dry_run(t))
		return check(t, state);
	struct last_isolate last = {0};
	irfw_status s = contain(t, st, &last);
	untrack_release(t, st, &last);
	cJSON_Delete(last.users);
	return s;
}

/* "instance i-1" or "instances i-1, i-2 and 3 more" of `vpc`. */
static char *instances_in(irfw_batch *b, const char *vpc)
{
	irfw_strbuf *w = irfw_strbuf_new();
	size_t n = 0;
	for (size_t i = 0, m = irfw_batch_count(b); i < m; i++) {
		irfw_target *t = irfw_batch_target(b, i);
		if (!irfw_target_instance(t) || !streq(irfw_target_vpc_id(t), vpc))
			continue;
		if (++n <= 5)
			irfw_strbuf_printf(w, "%s%s", n > 1 ? ", " : "", irfw_target_id(t));
	}
	if (n > 5)
		irfw_strbuf_printf(w, " and %zu more", n - 5);
	char *list = irfw_strbuf_steal(w);
	irfw_strbuf *out = irfw_strbuf_new();
	irfw_strbuf_printf(out, "%s %s", n == 1 ? "instance" : "instances", list ? list : "");
	free(list);
	return irfw_strbuf_steal(out);
}

/* Does some instance of `vpc` need the untracking group (not already in
 * only `q`)? */
static bool vpc_needs_untrack(irfw_batch *b, const char *vpc, const char *q)
{
	for (size_t i = 0, m = irfw_batch_count(b); i < m; i++) {
		irfw_target *t = irfw_batch_target(b, i);
		if (irfw_target_instance(t) && !irfw_step_resumed(t) && streq(irfw_target_vpc_id(t), vpc) &&
		    !all_in(cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "networkInterfaceSet"),
		            q))
			return true;
	}
	return false;
}

/* Resolve one group of one VPC in prepare; false after a usage error. */
static bool prepare_group(irfw_batch *b, struct iso_state *st, struct vpc_ent *ent, const char *who,
                          bool untrack, bool validate, char **q_out)
{
	irfw_target *t = irfw_batch_target(b, ent->first);
	irfw_step *step = irfw_target_step(t);
	struct make_ctx c = {.st = st,
	                     .batch = b,
	                     .vpc = ent->vpc,
	                     .who = who,
	                     .untrack = untrack,
	                     .validate = validate,
	                     .look = &ent->look};
	char *own = NULL;
	const char *id = validate ? (own = make_group(t, &c)) : vpc_group(t, &c);
	if (q_out)
		*q_out = id ? strdup(id) : NULL;
	if (untrack && !validate && id && c.made)
		ent->u_made = true;
	free(own);
	if (c.note[0]) {
		irfw_step_log(step, c.note_failed ? IRFW_LOG_ERROR : IRFW_LOG_INFO, "%s: %s", ent->vpc,
		              c.note);
		char *n = NULL;
		irfw_strbuf *w = irfw_strbuf_new();
		irfw_strbuf_printf(w, "%s%s%s", ent->note ? ent->note : "", ent->note ? "; " : "", c.note);
		n = irfw_strbuf_steal(w);
		if (n) {
			free(ent->note);
			ent->note = n;
		}
		ent->note_failed = ent->note_failed || c.note_failed;
	}
	if (id)
		return true;
	if (c.usage) {
		irfw_step_error(step, untrack ? "untrack_group_name" : c.key, "%s", c.err);
		return false;
	}
	if (!validate)
		irfw_step_log(step, IRFW_LOG_WARN, "%s; each instance of %s tries again", c.err, ent->vpc);
	return true;
}

/*
 * Before any instance is touched: every VPC's groups found and judged
 * first (nothing changed), so that a group that cannot be used stops the
 * run with exit status 2 with nothing changed anywhere; then completed,
 * fixed or created, once per VPC.  Also counts each VPC's instances, for
 * removing the untracking group after the last.
 */
static int prepare(irfw_batch *b, void *state)
{
	struct iso_state *st = state;
	vpcs_free(st);
	for (size_t i = 0, n = irfw_batch_count(b); i < n; i++) {
		irfw_target *t = irfw_batch_target(b, i);
		const char *vpc = irfw_target_instance(t) ? irfw_target_vpc_id(t) : NULL;
		if (!vpc || !*vpc)
			continue;
		struct vpc_ent *ent = vpc_find(st, vpc);
		if (!ent) {
			struct vpc_ent *v = realloc(st->vpcs, (st->n_vpcs + 1) * sizeof(*v));
			if (!v)
				return -1;
			st->vpcs = v;
			ent = &st->vpcs[st->n_vpcs];
			ent->vpc = strdup(vpc);
			ent->first = i;
			ent->note = NULL;
			memset(&ent->look, 0, sizeof(ent->look));
			ent->note_failed = false;
			atomic_init(&ent->left, 0);
			atomic_init(&ent->trouble, 0);
			ent->u_made = false;
			if (!ent->vpc)
				return -1;
			st->n_vpcs++;
		}
		/* The untracking group goes after the last isolate of this run:
		 * instances resumed as done never get there. */
		if (!irfw_step_resumed(t))
			atomic_fetch_add(&ent->left, 1);
	}
	int rc = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		bool validate = pass == 0;
		for (size_t k = 0; k < st->n_vpcs; k++) {
			struct vpc_ent *ent = &st->vpcs[k];
			irfw_target *t = irfw_batch_target(b, ent->first);
			char *who = instances_in(b, ent->vpc), *q = NULL;
			if (!validate)
				make_both(b, st, ent);
			if (!prepare_group(b, st, ent, who ? who : "", false, validate, &q))
				rc = -1;
			else if (q && irfw_step_get_bool(irfw_target_step(t), "break_tracked") &&
			         vpc_needs_untrack(b, ent->vpc, q) &&
			         !prepare_group(b, st, ent, who ? who : "", true, validate, NULL))
				rc = -1;
			free(q);
			free(who);
		}
	}
	/* What was looked up is prepare's: a run asks AWS afresh. */
	for (size_t k = 0; k < st->n_vpcs; k++)
		look_free(&st->vpcs[k].look);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Configuration.                                                      */

static void fini(void *state)
{
	struct iso_state *st = state;
	if (!st)
		return;
	vpcs_free(st);
	irfw_list_free(st->cidrs);
	free(st->nets);
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
	while (st->cidrs[st->n_cidrs])
		st->n_cidrs++;
	st->nets = calloc(st->n_cidrs ? st->n_cidrs : 1, sizeof(*st->nets));
	if (!st->nets)
		goto bad;
	for (size_t i = 0; i < st->n_cidrs; i++) {
		const char *w = st->cidrs[i];
		if (!cidr_parse(w, &st->nets[i])) {
			irfw_step_error(step, "admin_cidrs",
			                "'%s' is not a CIDR (like 10.0.0.0/8 or 2001:db8::/32)", w);
			goto bad;
		}
		if (st->nets[i].len == 0)
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

/* ------------------------------------------------------------------ */
/* Release.                                                            */

/* The groups --restore-groups gives ("sg-a,sg-b"), as an array. */
static cJSON *given_groups(const char *list)
{
	cJSON *ids = cJSON_CreateArray();
	char *copy = list ? strdup(list) : NULL, *save = NULL;
	for (char *w = copy ? strtok_r(copy, ", ", &save) : NULL; w; w = strtok_r(NULL, ", ", &save))
		list_add_unique(ids, w);
	free(copy);
	return ids;
}

/* Put the subnets' original network ACLs back (records.original_nacl).
 * Returns the number of subnets that do not show theirs, with `why`. */
static int release_nacl(irfw_target *t, const cJSON *rec, irfw_strbuf *why, int *restored)
{
	int bad = 0;
	char err[512];
	const cJSON *s;
	*restored = 0;
	cJSON_ArrayForEach(s, rec)
	{
		const char *subnet = s->string, *want = irfw_json_text(s, "network_acl_id");
		char *assoc = NULL, *acl = NULL;
		if (!subnet || !want)
			continue;
		if (subnet_assoc(t, subnet, &assoc, &acl) != 0 || !assoc) {
			aws_brief(t, err, sizeof(err));
			cause_add(why, "the network ACL of subnet %s could not be read: %s", subnet,
			          assoc ? err : "no association");
			bad++;
		} else if (!streq(acl, want)) {
			if (irfw_target_dry_run(t)) {
				/* Some emulators make this change even with DryRun. */
				irfw_note(t, "dry run: would put network ACL %s back on subnet %s", want,
				          subnet);
			} else {
				cJSON *p = cJSON_CreateObject();
				cJSON_AddStringToObject(p, "AssociationId", assoc);
				cJSON_AddStringToObject(p, "NetworkAclId", want);
				if (ec2(t, "ReplaceNetworkAclAssociation", p, NULL) != 0) {
					aws_brief(t, err, sizeof(err));
					cause_add(
					    why,
					    "ReplaceNetworkAclAssociation of subnet %s with %s refused: %s",
					    subnet, want, err);
					bad++;
				} else {
					(*restored)++;
				}
			}
		}
		free(assoc);
		free(acl);
		assoc = acl = NULL;
		/* Read back. */
		if (!irfw_target_dry_run(t) && !bad) {
			if (subnet_assoc(t, subnet, &assoc, &acl) != 0 || !streq(acl, want)) {
				cause_add(why, "subnet %s does not show its network ACL %s back", subnet,
				          want);
				bad++;
			}
			free(assoc);
			free(acl);
		}
	}
	return bad;
}

/*
 * `irfw release`: every interface gets its recorded original groups back
 * (or the --restore-groups list), then the read-back: each interface must
 * hold each of its groups and no longer the quarantine group (the group-id
 * filter, which tells what the interface itself holds).  The subnet's
 * original network ACL goes back too, and the original-groups tag is
 * removed.  An interface already showing its groups is not changed again.
 */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	irfw_step *step = irfw_target_step(t);
	const char *name = irfw_step_name(step), *why = NULL;
	const cJSON *orig = irfw_record_get(t, name, "original_groups");
	const cJSON *qrec = irfw_record_get(t, name, "quarantine_sg");
	const cJSON *nrec = irfw_record_get(t, name, "original_nacl");
	const char *q = cJSON_IsString(qrec) ? qrec->valuestring : NULL;
	const char *given = irfw_fact_get(t, "release.restore_groups");
	bool dry = irfw_target_dry_run(t);
	const cJSON *enis = interfaces_of(t, &why), *e;
	cJSON *forced = given ? given_groups(given) : NULL, *ids = cJSON_CreateArray(), *qs = NULL,
	      *held = NULL;
	irfw_strbuf *bad = irfw_strbuf_new(), *done = irfw_strbuf_new();
	irfw_status st = IRFW_OK;
	int changed = 0, already = 0, unknown = 0, n = 0;
	bool call_failed = false;
	char err[512];
	if (!enis) {
		st = irfw_skip(t, "%s", why);
		goto out;
	}
	if (!forced && !cJSON_IsObject(orig) && !cJSON_IsObject(nrec)) {
		st = irfw_skip(t, "no original groups recorded: nothing to put back");
		goto out;
	}
	cJSON_ArrayForEach(e, enis)
	{
		const char *id = irfw_json_text(e, "networkInterfaceId");
		if (id)
			list_add_unique(ids, id);
	}
	/* Which interfaces hold the quarantine group now. */
	qs = cJSON_CreateArray();
	if (q)
		list_add_unique(qs, q);
	held = q ? enis_holding(t, ids, qs) : cJSON_CreateArray();
	if (!held) {
		st = irfw_fail_aws(t, "DescribeNetworkInterfaces (which interfaces hold %s)", q);
		goto out;
	}
	cJSON_ArrayForEach(e, ids)
	{
		const char *id = e->valuestring;
		const cJSON *want = forced ? forced : cJSON_GetObjectItemCaseSensitive(orig, id);
		n++;
		if (cJSON_GetArraySize(want) == 0) {
			if (list_has(held, id)) {
				unknown++;
				cause_add(
				    bad,
				    "%s: its original groups are not known (quarantined before this case?): "
				    "give --restore-groups",
				    id);
			}
			continue;
		}
		if (!list_has(held, id)) {
			cJSON *mine = cJSON_CreateArray();
			list_add_unique(mine, id);
			bool all = true;
			const cJSON *g;
			cJSON_ArrayForEach(g, want)
			{
				cJSON *one = cJSON_CreateArray();
				list_add_unique(one, g->valuestring);
				cJSON *h = enis_holding(t, mine, one);
				all = all && h && list_has(h, id);
				cJSON_Delete(h);
				cJSON_Delete(one);
			}
			cJSON_Delete(mine);
			if (all) {
				already++;
				continue;
			}
		}
		if (set_groups(t, id, want) != 0) {
			aws_brief(t, err, sizeof(err));
			cause_add(bad, "ModifyNetworkInterfaceAttribute %s refused: %s", id, err);
			call_failed = true;
			continue;
		}
		changed++;
	}
	int nacl_restored = 0, nacl_bad = 0;
	if (cJSON_IsObject(nrec))
		nacl_bad = release_nacl(t, nrec, bad, &nacl_restored);

	if (dry) {
		irfw_note(t, "dry run: would put %s on %d of %d interface(s)%s",
		          forced ? "the groups of --restore-groups" : "the original groups back", changed, n,
		          already ? " (the others show them already)" : "");
		if (irfw_strbuf_len(bad))
			st = call_failed ? irfw_fail_aws_first(t, "%s", irfw_strbuf_str(bad))
			                 : irfw_fail(t, "%s", irfw_strbuf_str(bad));
		goto out;
	}
	/* Read back: the groups each interface holds, not what the calls said. */
	cJSON_Delete(held);
	held = q ? enis_holding(t, ids, qs) : cJSON_CreateArray();
	if (!held) {
		st = irfw_fail_aws(t, "DescribeNetworkInterfaces (read back)");
		goto out;
	}
	cJSON_ArrayForEach(e, ids)
	{
		const char *id = e->valuestring;
		const cJSON *want = forced ? forced : cJSON_GetObjectItemCaseSensitive(orig, id), *g;
		if (list_has(held, id))
			cause_add(bad, "%s still holds the quarantine group %s", id, q);
		if (cJSON_GetArraySize(want) == 0)
			continue;
		cJSON *mine = cJSON_CreateArray();
		list_add_unique(mine, id);
		irfw_strbuf_printf(done, "%s%s=", irfw_strbuf_len(done) ? ", " : "", id);
		bool first = true;
		cJSON_ArrayForEach(g, want)
		{
			cJSON *one = cJSON_CreateArray();
			list_add_unique(one, g->valuestring);
			cJSON *h = enis_holding(t, mine, one);
			if (!h || !list_has(h, id))
				cause_add(bad, "%s does not show %s%s", id, g->valuestring,
				          h ? "" : " (it could not be read back)");
			irfw_strbuf_printf(done, "%s%s", first ? "" : "+", g->valuestring);
			first = false;
			cJSON_Delete(h);
			cJSON_Delete(one);
		}
		cJSON_Delete(mine);
	}
	if (irfw_strbuf_len(bad)) {
		st = call_failed ? irfw_fail_aws_first(t, "not released: %s", irfw_strbuf_str(bad))
		                 : irfw_fail(t, "not released: %s", irfw_strbuf_str(bad));
		goto out;
	}
	(void)nacl_bad;
	/* The tag that kept the original groups no longer says anything true. */
	const char *tagkey = irfw_step_get(step, "original_groups_tag");
	if (tagkey && *tagkey) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "ResourceId"),
		                     cJSON_CreateString(irfw_target_id(t)));
		irfw_ec2_tag(p, tagkey, NULL);
		if (ec2(t, "DeleteTags", p, NULL) != 0) {
			aws_brief(t, err, sizeof(err));
			irfw_note(t, "the tag %s could not be removed (%s)", tagkey, err);
		}
	}
	irfw_containment_report(t, IRFW_NOT_CONTAINED,
	                        "released: the original groups are back (irfw release)");
	irfw_note(t, "verified: %s (%d interface(s) changed, %d showed them already)",
	          irfw_strbuf_len(done) ? irfw_strbuf_str(done) : "no interface with known groups", changed,
	          already);
	if (nacl_restored)
		irfw_note(t, "original network ACL back on %d subnet(s)", nacl_restored);
	if (forced)
		irfw_note(t, "groups from --restore-groups, not from the record");
out:
	cJSON_Delete(forced);
	cJSON_Delete(ids);
	cJSON_Delete(qs);
	cJSON_Delete(held);
	irfw_strbuf_free(bad);
	irfw_strbuf_free(done);
	(void)unknown;
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    /* The look-ups of a VPC's groups (both names in one call, both tags in
     * another, sent together), and the read-back of the quarantine
     * group's rules. */
    {.action = "ec2:DescribeSecurityGroups", .per = "run", .calls = 2},
    {.action = "ec2:DescribeSecurityGroups", .per = "instance", .calls = 1},
    {.action = "ec2:CreateSecurityGroup", .per = "run"},
    /* CreateSecurityGroup's TagSpecifications, and the original-groups tag. */
    {.action = "ec2:CreateTags", .per = "instance", .calls = 1},
    {.action = "ec2:RevokeSecurityGroupEgress", .per = "run"},
    {.action = "ec2:AuthorizeSecurityGroupIngress", .per = "run"},
    {.action = "ec2:AuthorizeSecurityGroupEgress", .when = "break_tracked=true", .per = "run"},
    {.action = "ec2:RevokeSecurityGroupIngress", .when = "existing_group=fix", .per = "run"},
    {.action = "ec2:DeleteSecurityGroup", .when = "break_tracked=true", .per = "run", .calls = 1},
    /* With break_tracked the usual instance has one interface: the
     * untracking group goes on with ModifyInstanceAttribute (its own
     * bucket), the quarantine group with ModifyNetworkInterfaceAttribute;
     * an instance with several interfaces makes both changes with the
     * latter (2 a interface). */
    {.action = "ec2:ModifyInstanceAttribute", .when = "break_tracked=true", .per = "instance", .calls = 1},
    {.action = "ec2:ModifyNetworkInterfaceAttribute",
     .when = "break_tracked=true",
     .per = "interface",
     .calls = 1},
    {.action = "ec2:ModifyNetworkInterfaceAttribute",
     .when = "break_tracked=false",
     .per = "interface",
     .calls = 1},
    /* The read-back that makes containment a fact; who holds the
     * untracking group before it is deleted. */
    {.action = "ec2:DescribeNetworkInterfaces", .per = "instance", .calls = 1},
    {.action = "ec2:DescribeNetworkInterfaces", .when = "break_tracked=true", .per = "run", .calls = 1},
    {.action = "ec2:DescribeNetworkAcls", .when = "nacl=true", .per = "instance", .calls = 1},
    {.action = "ec2:CreateNetworkAcl", .when = "nacl=true", .per = "run"},
    {.action = "ec2:ReplaceNetworkAclAssociation", .when = "nacl=true", .per = "instance", .calls = 1},
    {.action = "ec2:DescribeInstances", .when = "nacl=true", .per = "instance", .calls = 1},
    /* What release() calls besides the above (irfw policy --release). */
    {.action = "ec2:DeleteTags", .when = "release", .per = "instance"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "isolate",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "quarantine security group on every interface, tracked flows broken, containment verified",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_CONTAIN,
    .init = init,
    .prepare = prepare,
    .check = check,
    .run = run,
    .release = release,
    .fini = fini,
    .description =
        "Contains the instance. The quarantine group of its VPC becomes the only group of every network "
        "interface, with ModifyNetworkInterfaceAttribute. The group is the -g group (or group_id), which "
        "must exist in the VPC of every "
        "instance of the run; else the one named group_name or tagged irfw:quarantine=true; else a new one, "
        "made with that tag, with no egress rule and ingress only from admin_cidrs on admin_ports.\n\n"
        "Each VPC's groups are resolved once per run, in prepare, before any instance is touched. A group "
        "carrying irfw's tag (irfw:quarantine=true, irfw:untrack=true) is irfw's own and is completed "
        "whatever a lost answer or a kill left it in: egress revoked, other ingress revoked, the admin "
        "ingress added. Any other group is checked: an egress rule, or ingress from a CIDR admin_cidrs does "
        "not cover, a prefix list or another group, makes it open, and existing_group decides: refuse stops "
        "the run with exit status 2 naming the open rules, before any change; fix records them in the case "
        "(records.revoked_rules) and revokes them; use puts it on as it is and the instance is reported not "
        "contained. A -g group that does not exist or is of another VPC, and a group named like the "
        "untracking group without its tag, also stop the run with exit status 2.\n\n"
        "Containment is a verified fact. After the change (and when the instance was already isolated) the "
        "step reads back every interface attached to the instance (DescribeNetworkInterfaces, and where "
        "groupSet shows other groups, the group-id filter to confirm which the interface really holds) and "
        "the quarantine group's rules, and reports contained only when every attached interface holds only "
        "the quarantine group and the group has no egress and no ingress beyond admin_cidrs; partially "
        "contained names the interface that is not (or the deny-all network ACL the site asked for and did "
        "not get); not contained gives the cause, with the AWS error code and request id of the change that "
        "failed. The step is FAILED whenever the instance is not contained.\n\n"
        "A security group change does not end connections EC2 already tracks. With break_tracked, as AWS's "
        "incident response guide advises, each interface first gets the VPC's untracking group (all traffic "
        "in and out from 0.0.0.0/0 and ::/0, which makes flows untracked) and right after it the quarantine "
        "group, which then drops them. On an instance with a single interface (as DescribeInstances shows "
        "it) the first change is made with ModifyInstanceAttribute GroupId (which replaces the groups of the "
        "instance's only interface) and the second with ModifyNetworkInterfaceAttribute: EC2 paces the two "
        "APIs with separate request buckets, so a fleet's two changes per instance go through two buckets "
        "and the fleet is contained in about half the time. When AWS refuses the ModifyInstanceAttribute "
        "form (InvalidInstanceID for several interfaces, UnsupportedOperation, no permission; not "
        "throttling or a lost connection), that interface's first change is made with "
        "ModifyNetworkInterfaceAttribute, and the log says so. An instance with several interfaces gets both "
        "changes on each interface with ModifyNetworkInterfaceAttribute. The all-open group is on an "
        "interface only between two API calls; if the second is refused the interface's groups of just "
        "before are put back (with ModifyInstanceAttribute if ModifyNetworkInterfaceAttribute is refused "
        "and the first change went that way), and if that is refused too the interface is reported LEFT "
        "ALL-OPEN (not contained), naming it. Whatever API made the change, the read-back of the interfaces "
        "decides. If the untracking group "
        "cannot go on, the quarantine group goes on directly and the instance is reported partially "
        "contained (tracked flows may survive). The untracking group is deleted by the last isolate of its "
        "VPC in the run, unless an interface still holds it (then it is named, loudly); it stays behind when "
        "some instance of the batch did not run isolate (an earlier step stopped its pipeline, or the step "
        "was done in an earlier run of the case), and the next run removes it. This cannot break ICMP flows, "
        "nor flows through a Network Load Balancer, NAT gateway or Transit Gateway, which stay tracked "
        "whatever the rules; nacl = true (a deny-all network ACL on the subnet, refused on a shared subnet "
        "unless nacl_shared_subnet = allow) cuts those too, at the price of the whole subnet.\n\n"
        "Containment goes first and alone. Before the change the original groups of each interface are "
        "recorded in the case (records.original_groups) and logged; a record that cannot be written does not "
        "stop the change, and the step then ends FAILED after the containment was done and reported. The "
        "instance tag original_groups_tag is set after the change, and a refused tag is only noted. The "
        "subnet's original network ACL association goes to records.original_nacl; later steps get the fact "
        "quarantine_sg.\n\n"
        "irfw check (and --dry-run) proves the rights without changing anything: the groups are looked up, a "
        "missing one is asked for with a DryRun CreateSecurityGroup, and each interface gets a DryRun "
        "ModifyNetworkInterfaceAttribute (with the quarantine group when it exists, else with its current "
        "groups), an instance with a single interface a DryRun ModifyInstanceAttribute GroupId when "
        "break_tracked is on (a refusal is reported: a run would fall back to "
        "ModifyNetworkInterfaceAttribute), plus a DryRun CreateTags; what cannot be asked without the group "
        "existing is listed as not "
        "checked.\n\n"
        "It runs after asg and elb, so the instance is out of service before it is cut off (an Auto Scaling "
        "health check would otherwise replace it), and before protect, capture and snapshot, so the evidence "
        "is preserved from an instance that can no longer talk.",
};

IRFW_PLUGIN_ENTRY(isolate, plugin)
