/*
 * eip.c - take the Elastic IP addresses off a compromised instance.
 *
 * A fixed public address is how the intruder (and anything the instance
 * serves) reaches it.  Disassociating it cuts that path even where the
 * quarantine security group cannot (tracked connections, NACL gaps), and
 * the addresses are recorded so that they can be put back.  They are not
 * released unless the site asks: the address is evidence, it may sit in
 * firewall rules and DNS elsewhere, and a released address cannot be got
 * back.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irfw/irfw.h"

static const struct irfw_option opts[] = {
    {.name = "release_addresses",
     .type = IRFW_OPT_BOOL,
     .def = "false",
     .help = "Also release each address after disassociating it (ReleaseAddress).  Off by default, and "
             "best left off: the public IP is evidence, may be allow-listed elsewhere, and once released "
             "cannot be recovered."},
    {.name = NULL},
};

/* Whether `addrs` already holds the address with this association. */
static bool have_address(const cJSON *addrs, const char *assoc_id)
{
	const cJSON *a;
	cJSON_ArrayForEach(a, addrs)
	{
		const char *id = irfw_json_text(a, "associationId");
		if (id && strcmp(id, assoc_id) == 0)
			return true;
	}
	return false;
}

/* Run one DescribeAddresses with the filter of `p` (freed) and add the
 * associated addresses it returns to `addrs` (deduplicated). */
static int describe_into(irfw_target *t, cJSON *p, cJSON *addrs)
{
	cJSON *res = NULL;
	int rc = irfw_aws_call(t, "ec2", "DescribeAddresses", p, &res);
	cJSON_Delete(p);
	if (rc != 0)
		return -1;
	const cJSON *a;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(res, "addressesSet"))
	{
		const char *assoc = irfw_json_text(a, "associationId");
		/* Only VPC associations have an id; EC2-Classic is retired. */
		if (assoc && !have_address(addrs, assoc))
			cJSON_AddItemToArray(addrs, cJSON_Duplicate(a, true));
	}
	cJSON_Delete(res);
	return 0;
}

/*
 * Every Elastic IP on the instance: by instance-id (the primary
 * interface's), and by each attached interface, which also finds
 * addresses on secondary interfaces and secondary private IPs.
 */
static int find_addresses(irfw_target *t, cJSON *addrs)
{
	cJSON *p = cJSON_CreateObject();
	irfw_ec2_filter(p, "instance-id", irfw_target_id(t));
	if (describe_into(t, p, addrs) != 0)
		return -1;
	p = cJSON_CreateObject();
	int n = 0;
	const cJSON *ni;
	cJSON_ArrayForEach(ni,
	                   cJSON_GetObjectItemCaseSensitive(irfw_target_instance(t), "networkInterfaceSet"))
	{
		const char *id = irfw_json_text(ni, "networkInterfaceId");
		if (id && irfw_ec2_filter(p, "network-interface-id", id) == 0)
			n++;
	}
	if (n == 0) {
		cJSON_Delete(p);
		return 0;
	}
	return describe_into(t, p, addrs);
}

/* The addresses still associated with the instance after the changes,
 * read back (a second time a second later when some still show: EC2 is
 * eventually consistent), named in `left`.  Returns how many, or -1 when
 * DescribeAddresses failed. */
static int still_associated(irfw_target *t, char *left, size_t cap)
{
	int n = 0;
	for (int pass = 0; pass < 2; pass++) {
		cJSON *now = cJSON_CreateArray();
		if (find_addresses(t, now) != 0) {
			cJSON_Delete(now);
			return -1;
		}
		n = cJSON_GetArraySize(now);
		left[0] = '\0';
		const cJSON *a;
		cJSON_ArrayForEach(a, now)
		{
			size_t len = strlen(left);
			const char *ip = irfw_json_text(a, "publicIp");
			snprintf(left + len, cap - len, "%s%s", len ? ", " : "", ip ? ip : "?");
		}
		cJSON_Delete(now);
		if (n == 0 || pass > 0)
			break;
		struct timespec ts = {.tv_sec = 1};
		nanosleep(&ts, NULL);
	}
	return n;
}

static cJSON *address_record(const cJSON *a)
{
	static const char *const keys[][2] = {
	    {"public_ip", "publicIp"},           {"allocation_id", "allocationId"},
	    {"association_id", "associationId"}, {"network_interface_id", "networkInterfaceId"},
	    {"private_ip", "privateIpAddress"},
	};
	cJSON *r = cJSON_CreateObject();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = irfw_json_text(a, keys[i][1]);
		if (v)
			cJSON_AddStringToObject(r, keys[i][0], v);
		else
			cJSON_AddNullToObject(r, keys[i][0]);
	}
	return r;
}

static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	irfw_step *step = irfw_target_step(t);
	bool release = irfw_step_get_bool(step, "release_addresses");
	cJSON *addrs = cJSON_CreateArray(), *res = NULL;
	irfw_status st = IRFW_OK;
	int done = 0, released = 0;
	irfw_strbuf *said = irfw_strbuf_new(); /* the notes, given once read back */

	if (find_addresses(t, addrs) != 0) {
		st = irfw_fail_aws(t, "DescribeAddresses for %s", irfw_target_id(t));
		goto out;
	}
	if (cJSON_GetArraySize(addrs) == 0) {
		/* Resumed after a partial run: the record says what was taken. */
		const cJSON *prev = irfw_record_get(t, irfw_step_name(step), "addresses");
		if (cJSON_GetArraySize(prev) > 0) {
			irfw_note(t, "%d Elastic IP(s) already disassociated in an earlier run",
			          cJSON_GetArraySize(prev));
			goto out;
		}
		st = irfw_skip(t, "no Elastic IP");
		goto out;
	}

	/* Recorded before anything changes, so the responder can put them back. */
	if (!irfw_target_dry_run(t)) {
		const cJSON *prev = irfw_record_get(t, irfw_step_name(step), "addresses");
		cJSON *rec = prev ? cJSON_Duplicate(prev, true) : cJSON_CreateArray();
		if (!cJSON_IsArray(rec)) {
			cJSON_Delete(rec);
			rec = cJSON_CreateArray();
		}
		const cJSON *a;
		cJSON_ArrayForEach(a, addrs)
		{
			bool seen = false;
			const cJSON *r;
			cJSON_ArrayForEach(r, rec)
			{
				const char *id = irfw_json_text(r, "association_id");
				if (id && strcmp(id, irfw_json_text(a, "associationId")) == 0)
					seen = true;
			}
			if (!seen)
				cJSON_AddItemToArray(rec, address_record(a));
		}
		if (irfw_record(t, "addresses", rec) != 0) {
			st = irfw_fail(t, "cannot record the Elastic IPs; not changing them");
			goto out;
		}
	}

	const cJSON *a;
	cJSON_ArrayForEach(a, addrs)
	{
		const char *ip = irfw_json_text(a, "publicIp");
		const char *assoc = irfw_json_text(a, "associationId");
		const char *alloc = irfw_json_text(a, "allocationId");
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "AssociationId", assoc);
		int rc = irfw_aws_call(t, "ec2", "DisassociateAddress", p, &res);
		cJSON_Delete(p);
		cJSON_Delete(res);
		res = NULL;
		if (rc != 0) {
			if (strcmp(irfw_aws_error_code(t), "InvalidAssociationID.NotFound") != 0) {
				st = irfw_fail_aws(t, "DisassociateAddress %s (%s)", ip ? ip : "?", assoc);
				goto out;
			}
			/* Gone between the look and the change: the goal is met. */
		}
		done++;
		if (release && alloc) {
			p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "AllocationId", alloc);
			rc = irfw_aws_call(t, "ec2", "ReleaseAddress", p, &res);
			cJSON_Delete(p);
			cJSON_Delete(res);
			res = NULL;
			if (rc != 0) {
				st = irfw_fail_aws(t, "ReleaseAddress %s (%s), after disassociating it",
				                   ip ? ip : "?", alloc);
				goto out;
			}
			released++;
		}
		const char *eni = irfw_json_text(a, "networkInterfaceId");
		irfw_strbuf_printf(said, "%s%s Elastic IP %s (%s) from %s%s",
		                   irfw_strbuf_len(said) ? "; " : "",
		                   irfw_target_dry_run(t) ? "dry run: would disassociate" : "disassociated",
		                   ip ? ip : "?", alloc ? alloc : "no allocation id",
		                   eni ? eni : irfw_target_id(t), release && alloc ? " and released it" : "");
	}
	if (!irfw_target_dry_run(t)) {
		/* Said disassociated only when AWS shows none left. */
		char left[512];
		int n_left = still_associated(t, left, sizeof(left));
		if (n_left < 0) {
			st = irfw_fail_aws(t,
			                   "DisassociateAddress answered OK, but the addresses could not be "
			                   "read back (DescribeAddresses)");
			goto out;
		}
		if (n_left > 0) {
			st = irfw_fail(
			    t,
			    "DisassociateAddress answered OK, but DescribeAddresses still shows %s on "
			    "the instance",
			    left);
			goto out;
		}
	}
	irfw_note(t, "%s%s", irfw_strbuf_str(said), irfw_target_dry_run(t) ? "" : " (read back)");
	if (release && released < done)
		irfw_note(t, "%d address(es) without an allocation id not released", done - released);
out:
	irfw_strbuf_free(said);
	cJSON_Delete(addrs);
	return st;
}

/*
 * `irfw release`: each recorded address associated again with its
 * interface and private address (AllowReassociation off: an address that
 * was given to something else meanwhile is not taken from it), then read
 * back.  A released address cannot be got back, and is said so.
 */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	const cJSON *rec = irfw_record_get(t, irfw_step_name(irfw_target_step(t)), "addresses"), *a;
	irfw_status st = IRFW_OK;
	int again = 0, already = 0;
	if (cJSON_GetArraySize(rec) == 0)
		return irfw_skip(t, "no Elastic IP recorded: nothing to put back");
	for (int pass = 0; pass < 2; pass++) {
		cJSON_ArrayForEach(a, rec)
		{
			const char *alloc = irfw_json_text(a, "allocation_id"),
			           *ip = irfw_json_text(a, "public_ip");
			const char *eni = irfw_json_text(a, "network_interface_id");
			const char *priv = irfw_json_text(a, "private_ip");
			if (!alloc)
				continue;
			cJSON *p = cJSON_CreateObject(), *res = NULL;
			cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "AllocationId"),
			                     cJSON_CreateString(alloc));
			int rc = irfw_aws_call(t, "ec2", "DescribeAddresses", p, &res);
			cJSON_Delete(p);
			if (rc != 0) {
				cJSON_Delete(res);
				if (strcmp(irfw_aws_error_code(t), "InvalidAllocationID.NotFound") == 0)
					return irfw_fail_aws(
					    t, "Elastic IP %s (%s) was released: it cannot be got back",
					    ip ? ip : "?", alloc);
				return irfw_fail_aws(t, "DescribeAddresses %s", alloc);
			}
			const cJSON *now = irfw_json_list_item(res, "addressesSet", 0);
			const char *now_eni = irfw_json_text(now, "networkInterfaceId");
			const char *now_priv = irfw_json_text(now, "privateIpAddress");
			bool back = now_eni && eni && strcmp(now_eni, eni) == 0 &&
			            (!priv || (now_priv && strcmp(now_priv, priv) == 0));
			bool elsewhere = !back && irfw_json_text(now, "associationId");
			char other[128];
			snprintf(other, sizeof(other), "%s", now_eni ? now_eni : "?");
			cJSON_Delete(res);
			if (back) {
				already += pass == 0;
				continue;
			}
			if (pass == 1 || elsewhere) {
				st = irfw_fail(t, "not released: Elastic IP %s (%s) is %s%s", ip ? ip : "?",
				               alloc, elsewhere ? "associated with " : "not associated with ",
				               elsewhere ? other : (eni ? eni : "its interface"));
				if (elsewhere)
					irfw_note(t, "it was not taken from there (AllowReassociation off)");
				return st;
			}
			p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "AllocationId", alloc);
			if (eni)
				cJSON_AddStringToObject(p, "NetworkInterfaceId", eni);
			else
				cJSON_AddStringToObject(p, "InstanceId", irfw_target_id(t));
			if (priv)
				cJSON_AddStringToObject(p, "PrivateIpAddress", priv);
			cJSON_AddFalseToObject(p, "AllowReassociation");
			rc = irfw_aws_call(t, "ec2", "AssociateAddress", p, NULL);
			cJSON_Delete(p);
			if (rc != 0)
				return irfw_fail_aws(t, "AssociateAddress %s (%s) with %s", ip ? ip : "?",
				                     alloc, eni ? eni : irfw_target_id(t));
			again++;
		}
		if (irfw_target_dry_run(t)) {
			irfw_note(t, "dry run: would associate %d Elastic IP(s) again", again);
			return IRFW_OK;
		}
	}
	irfw_note(t, "verified: %d Elastic IP(s) associated again%s", again,
	          already ? ", the others were already" : "");
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "ec2:DescribeAddresses", .per = "instance", .calls = 1},
    {.action = "ec2:DisassociateAddress", .per = "instance"},
    {.action = "ec2:ReleaseAddress", .when = "release_addresses=true", .per = "instance"},
    /* What release() calls besides the above (irfw policy --release). */
    {.action = "ec2:AssociateAddress", .when = "release", .per = "instance"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "eip",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "disassociate the instance's Elastic IPs, recording them",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_CONTAIN,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .release = release,
    .description =
        "Finds every Elastic IP on the instance (DescribeAddresses by instance-id and by each attached "
        "network interface, so addresses on secondary interfaces and secondary private IPs are found too) "
        "and disassociates it (DisassociateAddress by association id), then reads them back: the step says "
        "disassociated only when DescribeAddresses shows none left on the instance (a second look a second "
        "later first, as EC2 is eventually consistent).  Each address is recorded first "
        "(public_ip, allocation_id, association_id, network_interface_id, private_ip) so it can be "
        "associated again after the investigation.  An instance with none is skipped with \"no Elastic "
        "IP\".\n"
        "\n"
        "It runs before isolate and is off in the default pipeline: taking the public address away is "
        "visible to the intruder and breaks whatever the address serves, so the site turns it on when "
        "it prefers that to the quarantine security group alone.  Auto-assigned public IPs (not Elastic "
        "IPs) are not touched: they cannot be removed from a running instance's primary interface, and "
        "the quarantine group is what contains them.\n"
        "\n"
        "Addresses are never released unless release_addresses = true: the public IP is evidence, it may "
        "be in firewall rules, allow lists and DNS elsewhere, and a released address cannot be got back.",
};

IRFW_PLUGIN_ENTRY(eip, plugin)
