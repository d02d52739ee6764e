/*
 * iam_profile.c - take the instance role away from a compromised instance.
 *
 * An attacker on the instance reads the role's credentials from the
 * metadata service; isolating the network does not stop them being used
 * from anywhere else.  This step disassociates the instance profile (or
 * replaces it with a site quarantine profile), so the instance gets no
 * new credentials, and can optionally deny every session of the role
 * issued before now, which is the only way to kill credentials already
 * handed out.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irfw/irfw.h"

#define REVOKE_POLICY_NAME "irfw-revoke-older-sessions"

static const struct irfw_option opts[] = {
    {.name = "mode",
     .type = IRFW_OPT_ENUM,
     .def = "disassociate",
     .choices = "disassociate|replace",
     .help = "disassociate: remove the instance profile, so the instance gets no role credentials at all. "
             "replace: swap it for quarantine_profile (a profile whose role grants next to nothing), for "
             "sites whose agents must keep some role."},
    {.name = "quarantine_profile",
     .type = IRFW_OPT_STRING,
     .def = NULL,
     .help = "Instance profile put in place with mode = replace: its name or ARN (templates allowed, e.g. "
             "irfw-quarantine-${region}).  Required with mode = replace."},
    {.name = "revoke_sessions",
     .type = IRFW_OPT_BOOL,
     .def = "false",
     .help = "Also attach the inline policy " REVOKE_POLICY_NAME " to the role of the original profile, "
             "denying every action to sessions issued before now (aws:TokenIssueTime).  This kills "
             "credentials already stolen, but WARNING: it hits EVERY instance and service using that "
             "role, until they refresh their credentials."},
    {.name = NULL},
};

static int init(irfw_step *step, void **state)
{
	(void)state;
	const char *mode = irfw_step_get(step, "mode");
	const char *qp = irfw_step_get(step, "quarantine_profile");
	bool replace = mode && strcmp(mode, "replace") == 0;

	/* Caught here, not per instance: a typo must stop the run before any
	 * instance is touched, with the line to fix. */
	if (replace && (!qp || !*qp)) {
		irfw_step_error(step, "mode",
		                "mode = replace needs quarantine_profile (a profile name or ARN)");
		return -1;
	}
	if (!replace && qp && *qp)
		irfw_step_log(step, IRFW_LOG_WARN, "quarantine_profile is ignored with mode = %s",
		              mode ? mode : "disassociate");
	if (irfw_step_get_bool(step, "revoke_sessions"))
		irfw_step_log(
		    step, IRFW_LOG_WARN,
		    "revoke_sessions is on: each target's role will deny ALL sessions issued before the "
		    "run, for EVERY instance and service sharing that role");
	return 0;
}

/* The profile's name is the last part of its ARN's resource path
 * (arn:aws:iam::123456789012:instance-profile/path/name). */
static const char *profile_name_of(const char *arn)
{
	const char *slash = strrchr(arn, '/');
	return slash ? slash + 1 : arn;
}

/* Whether an associated profile ARN is the one the site names by name or ARN. */
static bool is_profile(const char *arn, const char *name_or_arn)
{
	if (strncmp(name_or_arn, "arn:", 4) == 0)
		return strcmp(arn, name_or_arn) == 0;
	return strcmp(profile_name_of(arn), name_or_arn) == 0;
}

/*
 * The instance's current association, asked of EC2 rather than read from
 * the batch's DescribeInstances, because the association id is needed and
 * an earlier (resumed) run may have changed it.  *assoc is a copy to
 * delete, or NULL when none is associated.
 */
static int find_association(irfw_target *t, cJSON **assoc)
{
	const char *iid = irfw_target_id(t);
	cJSON *res = NULL;
	*assoc = NULL;

	cJSON *p = cJSON_CreateObject();
	irfw_ec2_filter(p, "instance-id", iid);
	irfw_ec2_filter(p, "state", "associated");

	int rc = irfw_aws_call(t, "ec2", "DescribeIamInstanceProfileAssociations", p, &res);
	cJSON_Delete(p);
	if (rc != 0)
		return -1;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "iamInstanceProfileAssociationSet"))
	{
		const char *inst = irfw_json_str(it, "instanceId");
		const char *state = irfw_json_str(it, "state");
		if (inst && strcmp(inst, iid) == 0 && (!state || strcmp(state, "associated") == 0) &&
		    irfw_json_str(it, "associationId")) {
			*assoc = cJSON_Duplicate(it, true);
			break;
		}
	}
	cJSON_Delete(res);
	return 0;
}

/* Detach (or swap) the association; the original is recorded first. */
static irfw_status change_association(irfw_target *t, const cJSON *assoc, const char *quarantine)
{
	const char *assoc_id = irfw_json_str(assoc, "associationId");
	const cJSON *prof = cJSON_GetObjectItemCaseSensitive(assoc, "iamInstanceProfile");
	const char *arn = irfw_json_str(prof, "arn");
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	irfw_status st = IRFW_OK;

	cJSON_AddStringToObject(p, "AssociationId", assoc_id);
	if (quarantine) {
		cJSON *ip = cJSON_AddObjectToObject(p, "IamInstanceProfile");
		cJSON_AddStringToObject(ip, strncmp(quarantine, "arn:", 4) == 0 ? "Arn" : "Name", quarantine);
		if (irfw_aws_call(t, "ec2", "ReplaceIamInstanceProfileAssociation", p, &res) != 0) {
			st = irfw_fail_aws(t, "ReplaceIamInstanceProfileAssociation %s with %s", assoc_id,
			                   quarantine);
			goto out;
		}
		irfw_note(t, "%s instance profile %s with %s (association %s)",
		          irfw_target_dry_run(t) ? "dry run: would replace" : "replaced", arn, quarantine,
		          assoc_id);
	} else {
		if (irfw_aws_call(t, "ec2", "DisassociateIamInstanceProfile", p, &res) != 0) {
			/* Gone between the look and the change: the goal is met. */
			if (strcmp(irfw_aws_error_code(t), "InvalidAssociationID.NotFound") == 0) {
				irfw_note(t, "instance profile %s was disassociated meanwhile", arn);
				goto out;
			}
			st = irfw_fail_aws(t, "DisassociateIamInstanceProfile %s (%s)", assoc_id, arn);
			goto out;
		}
		irfw_note(t, "%s instance profile %s (association %s)",
		          irfw_target_dry_run(t) ? "dry run: would disassociate" : "disassociated", arn,
		          assoc_id);
	}
	/* res is NULL on a dry run: nothing more to read from it anyway. */
out:
	cJSON_Delete(res);
	cJSON_Delete(p);
	return st;
}

/*
 * The role inside an instance profile, as a string to free; NULL with
 * *role_missing false on an AWS failure, or with it true when the
 * profile holds no role.
 */
static char *role_of_profile(irfw_target *t, const char *pname, bool *role_missing)
{
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	char *role = NULL;
	*role_missing = false;

	cJSON_AddStringToObject(p, "InstanceProfileName", pname);
	int rc = irfw_aws_call(t, "iam", "GetInstanceProfile", p, &res);
	cJSON_Delete(p);
	if (rc != 0)
		return NULL;
	const cJSON *prof = cJSON_GetObjectItemCaseSensitive(res, "InstanceProfile");
	/* A profile holds at most one role. */
	const char *name = irfw_json_text(irfw_json_list_item(prof, "Roles", 0), "RoleName");
	if (name)
		role = strdup(name);
	else
		*role_missing = true;
	cJSON_Delete(res);
	return role;
}

/* The policy document denying everything to sessions issued before `now`. */
static char *deny_older_sessions(const char *now)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "Version", "2012-10-17");
	cJSON *stmt = cJSON_CreateObject();
	cJSON_AddStringToObject(stmt, "Effect", "Deny");
	cJSON_AddStringToObject(stmt, "Action", "*");
	cJSON_AddStringToObject(stmt, "Resource", "*");
	cJSON *lt = cJSON_AddObjectToObject(cJSON_AddObjectToObject(stmt, "Condition"), "DateLessThan");
	cJSON_AddStringToObject(lt, "aws:TokenIssueTime", now);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "Statement"), stmt);
	char *text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return text;
}

/*
 * Deny every action to sessions of the profile's role issued before now.
 * Credentials already taken from the metadata service stay valid until
 * they expire; an explicit Deny on aws:TokenIssueTime is the documented
 * way to revoke them.  Every other user of the role is hit too.
 */
static irfw_status revoke_sessions(irfw_target *t, const char *profile_arn)
{
	const char *pname = profile_name_of(profile_arn);
	bool role_missing;
	char *role = role_of_profile(t, pname, &role_missing);
	if (!role) {
		if (!role_missing)
			return irfw_fail_aws(
			    t, "GetInstanceProfile %s (to find the role whose sessions to revoke)", pname);
		irfw_note(t, "instance profile %s has no role: no sessions to revoke", pname);
		return IRFW_OK;
	}

	char now[21];
	irfw_iso8601(time(NULL), now);

	char *doc = deny_older_sessions(now);
	cJSON *p = cJSON_CreateObject(), *res = NULL;
	cJSON_AddStringToObject(p, "RoleName", role);
	cJSON_AddStringToObject(p, "PolicyName", REVOKE_POLICY_NAME);
	cJSON_AddStringToObject(p, "PolicyDocument", doc);
	int rc = irfw_aws_call(t, "iam", "PutRolePolicy", p, &res);
	cJSON_Delete(res);
	cJSON_Delete(p);
	cJSON_free(doc);

	irfw_status st = IRFW_OK;
	if (rc != 0) {
		st = irfw_fail_aws(t, "PutRolePolicy %s on role %s", REVOKE_POLICY_NAME, role);
	} else if (irfw_target_dry_run(t)) {
		irfw_log(
		    t, IRFW_LOG_WARN,
		    "WARNING: without --dry-run, role %s would deny EVERY session issued before now (inline "
		    "policy %s): that affects EVERY instance and service sharing role %s, not only %s",
		    role, REVOKE_POLICY_NAME, role, irfw_target_id(t));
		irfw_note(
		    t,
		    "dry run: would revoke sessions of role %s (inline policy %s) - WARNING: that affects "
		    "EVERY instance and service sharing that role",
		    role, REVOKE_POLICY_NAME);
	} else {
		cJSON *rec = cJSON_CreateObject();
		cJSON_AddStringToObject(rec, "role", role);
		cJSON_AddStringToObject(rec, "policy_name", REVOKE_POLICY_NAME);
		cJSON_AddStringToObject(rec, "token_issue_time", now);
		irfw_record(t, "revoked_sessions", rec);
		irfw_log(
		    t, IRFW_LOG_WARN,
		    "WARNING: role %s now denies EVERY session issued before %s (inline policy %s): this "
		    "affects EVERY instance and service sharing role %s, not only %s, until they "
		    "refresh their credentials",
		    role, now, REVOKE_POLICY_NAME, role, irfw_target_id(t));
		irfw_note(
		    t,
		    "WARNING: revoked sessions of role %s issued before %s (inline policy %s) - this affects "
		    "EVERY instance and service sharing that role",
		    role, now, REVOKE_POLICY_NAME);
	}
	free(role);
	return st;
}

static irfw_status run(irfw_target *t, void *state)
{
	(void)state;
	irfw_step *step = irfw_target_step(t);
	const char *mode = irfw_step_get(step, "mode");
	bool replace = mode && strcmp(mode, "replace") == 0;
	bool revoke = irfw_step_get_bool(step, "revoke_sessions");
	const cJSON *prev = irfw_record_get(t, irfw_step_name(step), "original_profile");
	char *quarantine = NULL;
	cJSON *assoc = NULL;
	irfw_status st = IRFW_OK;
	char *orig_arn = NULL;

	if (replace) {
		quarantine = irfw_step_expand(t, "quarantine_profile");
		if (!quarantine || !*quarantine) {
			st = irfw_fail(t, "quarantine_profile does not expand to a profile name or ARN");
			goto out;
		}
	}
	/* No profile in this run's DescribeInstances and none taken by an
	 * earlier run: nothing to ask EC2 (a call per instance, before
	 * isolation, for what the fleet's describe already said). */
	const cJSON *inst = irfw_target_instance(t);
	if (!prev && inst && !cJSON_GetObjectItemCaseSensitive(inst, "iamInstanceProfile")) {
		st = irfw_skip(t, "no instance profile");
		goto out;
	}
	if (find_association(t, &assoc) != 0) {
		st = irfw_fail_aws(t, "DescribeIamInstanceProfileAssociations for %s", irfw_target_id(t));
		goto out;
	}

	if (assoc) {
		const cJSON *prof = cJSON_GetObjectItemCaseSensitive(assoc, "iamInstanceProfile");
		const char *arn = irfw_json_str(prof, "arn");
		if (!arn) {
			st = irfw_fail(t, "association %s names no profile ARN",
			               irfw_json_str(assoc, "associationId"));
			goto out;
		}
		if (quarantine && is_profile(arn, quarantine)) {
			/* Resumed, or quarantined by hand: the role to revoke is the
			 * recorded original, never the quarantine one. */
			irfw_note(t, "quarantine profile %s already associated", arn);
			if (irfw_json_str(prev, "arn"))
				orig_arn = strdup(irfw_json_str(prev, "arn"));
		} else {
			orig_arn = strdup(arn);
			/* Keep the first record: after a partial earlier run it is
			 * the true original. */
			if (!prev && !irfw_target_dry_run(t)) {
				cJSON *rec = cJSON_CreateObject();
				cJSON_AddStringToObject(rec, "arn", arn);
				const char *pid = irfw_json_str(prof, "id");
				if (pid)
					cJSON_AddStringToObject(rec, "id", pid);
				else
					cJSON_AddNullToObject(rec, "id");
				cJSON_AddStringToObject(rec, "association_id",
				                        irfw_json_str(assoc, "associationId"));
				if (irfw_record(t, "original_profile", rec) != 0) {
					st = irfw_fail(
					    t, "cannot record the original profile %s; not changing it", arn);
					goto out;
				}
			}
			st = change_association(t, assoc, quarantine);
			if (st != IRFW_OK)
				goto out;
		}
	} else if (prev && irfw_json_str(prev, "arn")) {
		/* An earlier run of this case took it away, and stopped before
		 * the end (a failed revoke, say). */
		orig_arn = strdup(irfw_json_str(prev, "arn"));
		irfw_note(t, "instance profile %s already removed in an earlier run", orig_arn);
	} else {
		st = irfw_skip(t, "no instance profile");
		goto out;
	}

	if (revoke) {
		if (orig_arn)
			st = revoke_sessions(t, orig_arn);
		else
			irfw_note(t, "original profile unknown: sessions not revoked");
	}
out:
	free(orig_arn);
	cJSON_Delete(assoc);
	free(quarantine);
	return st;
}

/*
 * `irfw release`: the recorded original profile associated again
 * (AssociateIamInstanceProfile when none is, ReplaceIamInstanceProfile-
 * Association when the quarantine profile is), then read back.  The
 * revoke-sessions policy stays: removing it would make the stolen
 * credentials valid again; the note says to delete it once they expired.
 */
static irfw_status release(irfw_target *t, void *state)
{
	(void)state;
	const char *name = irfw_step_name(irfw_target_step(t));
	const cJSON *orig = irfw_record_get(t, name, "original_profile");
	const cJSON *revoked = irfw_record_get(t, name, "revoked_sessions");
	const char *arn = irfw_json_text(orig, "arn");
	cJSON *assoc = NULL, *p = NULL, *res = NULL;
	irfw_status st = IRFW_OK;
	const char *how = "already associated";
	if (!arn) {
		st = irfw_skip(t, "no original instance profile recorded: nothing to put back");
		goto out;
	}
	if (find_association(t, &assoc) != 0) {
		st = irfw_fail_aws(t, "DescribeIamInstanceProfileAssociations for %s", irfw_target_id(t));
		goto out;
	}
	const char *now = irfw_json_str(cJSON_GetObjectItemCaseSensitive(assoc, "iamInstanceProfile"), "arn");
	if (!now || strcmp(now, arn) != 0) {
		p = cJSON_CreateObject();
		cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "IamInstanceProfile"), "Arn", arn);
		const char *op =
		    assoc ? "ReplaceIamInstanceProfileAssociation" : "AssociateIamInstanceProfile";
		if (assoc)
			cJSON_AddStringToObject(p, "AssociationId", irfw_json_str(assoc, "associationId"));
		else
			cJSON_AddStringToObject(p, "InstanceId", irfw_target_id(t));
		if (irfw_aws_call(t, "ec2", op, p, &res) != 0) {
			st = irfw_fail_aws(t, "%s %s", op, arn);
			goto out;
		}
		how = assoc ? "replaced the quarantine profile" : "associated again";
		if (irfw_target_dry_run(t)) {
			irfw_note(t,
			          "dry run (no DryRun in the API, nothing sent): would put back profile %s",
			          arn);
			goto out;
		}
		cJSON_Delete(assoc);
		assoc = NULL;
		if (find_association(t, &assoc) != 0) {
			st = irfw_fail_aws(t, "DescribeIamInstanceProfileAssociations (read back)");
			goto out;
		}
		now = irfw_json_str(cJSON_GetObjectItemCaseSensitive(assoc, "iamInstanceProfile"), "arn");
		if (!now || strcmp(now, arn) != 0) {
			st = irfw_fail(t, "not released: %s answered OK but the instance shows %s", op,
			               now ? now : "no profile");
			goto out;
		}
	}
	irfw_note(t, "verified: instance profile %s (%s)", arn, how);
	if (irfw_json_text(revoked, "role"))
		irfw_note(
		    t,
		    "the inline policy %s on role %s stays (it keeps stolen credentials of before %s "
		    "invalid): delete it once they have expired",
		    irfw_json_text(revoked, "policy_name") ? irfw_json_text(revoked, "policy_name") : "?",
		    irfw_json_text(revoked, "role"),
		    irfw_json_text(revoked, "token_issue_time") ? irfw_json_text(revoked, "token_issue_time")
		                                                : "the quarantine");
out:
	cJSON_Delete(assoc);
	cJSON_Delete(p);
	cJSON_Delete(res);
	return st;
}

/* The AWS actions the step may call: `irfw policy` prints the IAM policy
 * from them, and a fleet run its estimate (calls: the usual case). */
static const struct irfw_action actions[] = {
    {.action = "ec2:DescribeIamInstanceProfileAssociations", .per = "instance", .calls = 1},
    {.action = "ec2:DisassociateIamInstanceProfile", .when = "mode=disassociate", .per = "instance"},
    {.action = "ec2:ReplaceIamInstanceProfileAssociation", .when = "mode=replace", .per = "instance"},
    {.action = "iam:GetInstanceProfile", .when = "mode=replace", .per = "instance"},
    /* Giving an instance a profile passes its role. */
    {.action = "iam:PassRole",
     .resource = "arn:aws:iam::${account_id}:role/*",
     .when = "mode=replace",
     .per = "instance"},
    {.action = "iam:GetInstanceProfile", .when = "revoke_sessions=true", .per = "instance"},
    {.action = "iam:PutRolePolicy",
     .resource = "arn:aws:iam::${account_id}:role/*",
     .when = "revoke_sessions=true",
     .per = "instance"},
    /* What release() calls besides the above (irfw policy --release). */
    {.action = "ec2:AssociateIamInstanceProfile", .when = "release", .per = "instance"},
    {.action = "iam:PassRole", .when = "release", .per = "instance"},
    {.action = NULL},
};

static const struct irfw_plugin plugin = {
    IRFW_PLUGIN_HEADER,
    .name = "iam_profile",
    .version = IRFW_PLUGIN_VERSION, /* the package's: in-tree plugins ship with it */
    .summary = "remove (or replace) the instance profile; optionally revoke the role's older sessions",
    .options = opts,
    .actions = actions,
    .phase = IRFW_PHASE_CONTAIN,
    .init = init,
    /* Run dry: EC2 changes carry DryRun, others are not sent. */
    .check = run,
    .run = run,
    .release = release,
    .description =
        "Takes the IAM role away from the instance.  With mode = disassociate (the default) the instance "
        "profile association is removed (DescribeIamInstanceProfileAssociations, then "
        "DisassociateIamInstanceProfile), so the metadata service hands out no role credentials any more.  "
        "With mode = replace it is swapped (ReplaceIamInstanceProfileAssociation) for the site's "
        "quarantine_profile, for sites whose agents need some role to keep working.  The original profile "
        "(ARN, id and association id) is recorded in the case before it is changed, so it can be put back.  "
        "An instance with no profile is skipped with \"no instance profile\".\n"
        "\n"
        "It runs before isolate: network isolation does not stop credentials read from the metadata "
        "service being used from anywhere on the internet, and the sooner the role is gone the fewer fresh "
        "credentials the intruder can fetch.\n"
        "\n"
        "What it cannot do on its own: credentials already handed out stay valid until they expire (hours).  "
        "revoke_sessions = true (off by default) attaches the inline policy " REVOKE_POLICY_NAME " to the "
        "role of the original profile (iam GetInstanceProfile, PutRolePolicy), denying every action to "
        "sessions issued before now (aws:TokenIssueTime).  WARNING: the role is not the instance's alone: "
        "EVERY instance, container and service using that role loses its current credentials too, until it "
        "fetches new ones.  The step says so loudly in the log and in its result.  Delete the policy once "
        "the stolen credentials have expired.  With --dry-run, EC2 calls are checked with DryRun and the "
        "IAM policy is not written.",
};

IRFW_PLUGIN_ENTRY(iam_profile, plugin)
