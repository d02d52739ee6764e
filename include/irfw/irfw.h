/*
 * irfw.h - the whole public SDK of irfw, the EC2 incident-response framework.
 *
 * A plugin includes this one header and links against libirfw and cJSON
 * (`pkg-config --cflags --libs irfw`).  Everything a plugin needs is here:
 * the plugin vtable it exports, the option table that documents and validates
 * its INI section, and the core services it calls (configuration, target
 * facts, the AWS client, evidence, the case record and logging).
 *
 * Core objects are opaque handles reached through accessor functions, so the
 * core can grow them without breaking plugins that were built earlier.
 *
 * Thread model: `run`, `check` and `release` are called for different
 * targets from several worker threads at once; the calls for one target are
 * never concurrent.  Every function taking an irfw_target is safe to call
 * from the thread that is running that target.  State a plugin builds in
 * `init` must be read-only afterwards; per-VPC or per-account work belongs in
 * `prepare` or behind irfw_memo().
 */
#ifndef IRFW_IRFW_H
#define IRFW_IRFW_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI of the plugin contract.  A module must carry the same major; its minor
 * must not be newer than the core's.  New vtable fields are only ever
 * appended, and every new field, function or enum value of this header
 * bumps the minor, so that a module using it is refused (with its file and
 * the reason) by an older core instead of failing in the middle of a run.
 * Modules are also bound at load: a module calling a function this libirfw
 * lacks is refused before any instance is touched.
 *
 *   1.0  the first contract
 *   1.1  irfw_utf8_prefix (shipped without a bump: a 1.0 module using it
 *        must be rebuilt); the vtable's `phase`; containment reports
 *        (irfw_containment_report, irfw_target_containment); calls in
 *        another region (irfw_aws_call_in, irfw_arn_region); the target's
 *        instance state (irfw_target_state); irfw_step_error from prepare
 *   1.2  one shape of AWS result whatever the protocol (see irfw_aws_call:
 *        no query <Operation>Result wrapper, lists always arrays), given to
 *        modules built for 1.2 or later; the typed getters irfw_json_bool,
 *        irfw_json_long, irfw_json_text, irfw_json_list_count and
 *        irfw_json_list_item (and irfw_json_int reading decimal strings);
 *        the paginators irfw_aws_paginate, irfw_aws_paginate_in and
 *        irfw_batch_aws_paginate; the request builders irfw_ec2_filter,
 *        irfw_ec2_tag_spec and irfw_ec2_tag; irfw_iso8601
 *   1.3  the vtable's `actions` (struct irfw_action): what a step calls,
 *        for `irfw policy` and the run's estimate
 *   1.4  irfw_aws_call_ex() and IRFW_CALL_NOT_IDEMPOTENT: a create AWS
 *        cannot deduplicate is not re-sent once it may have reached AWS;
 *        it fails with IRFW_AWS_OUTCOME_UNKNOWN and the step looks first
 *   1.5  `irfw release` calls the vtable's `release` (reverse pipeline
 *        order, no prepare); runner.h: irfw_runner_release,
 *        IRFW_SET_RESTORE_GROUPS, IRFW_FLAG_FORCE, IRFW_FLAG_UNPROTECT
 *   1.6  irfw_journal_head: the hash chain's head of the case record, for
 *        the uploaded manifest's metadata and the notifications
 *   1.7  irfw_run_id and irfw_step_repeated, for side effects that must
 *        not be repeated by a resumed run (a notification); runner.h:
 *        irfw_runner_interrupt, irfw_runner_interrupted,
 *        IRFW_DESCRIBE_AS_MAN_PAGE; irfw_step_resumed, for prepare
 *   1.8  irfw_calls: several independent calls of one target sent at once
 *        (irfw_calls_new, _add, _run, _result, _select, _count, _free)
 *   1.9  the prepares of modules built for 1.9 or later run at the same
 *        time, each on its own thread (see `prepare`); an older module's
 *        prepare still runs alone
 *   1.10 irfw_record_result: a record of what a change did, not synced on
 *        its own
 *   1.11 irfw_ec2_instance_in and irfw_ec2_delete_on_termination, for
 *        reading an instance's volumes back
 *   1.12 the vtable's `report_release`: `irfw release` tells of the
 *        release once the other steps are released (notify_sns and
 *        notify_slack send a RELEASED message); irfw_notice_*: a
 *        notification sent once, as the in-tree notifiers do it
 *   1.13 irfw_aws_call_together: one request for the same change of
 *        several targets (DetachInstances, DeregisterTargets)
 */
#define IRFW_ABI_MAJOR 1
#define IRFW_ABI_MINOR 13

#if defined(__GNUC__)
#define IRFW_EXPORT       __attribute__((visibility("default")))
#define IRFW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define IRFW_EXPORT
#define IRFW_PRINTF(f, a)
#endif

/* Opaque core handles. */
typedef struct irfw_step irfw_step;     /* one configured step: an INI section */
typedef struct irfw_batch irfw_batch;   /* all targets of one run */
typedef struct irfw_target irfw_target; /* one instance being handled */

/** Result of a step for one target. */
typedef enum irfw_status {
	IRFW_OK = 0,      /* the step did what it is for */
	IRFW_SKIPPED = 1, /* not applicable; the reason is recorded */
	IRFW_FAILED = 2   /* it failed; code, message and request id recorded */
} irfw_status;

/** Type of an option in a plugin's options table. */
typedef enum irfw_opt_type {
	IRFW_OPT_STRING = 0, /* any text; ${var} templates expand at use */
	IRFW_OPT_BOOL,       /* true/false, yes/no, on/off, 1/0 */
	IRFW_OPT_INT,        /* decimal integer */
	IRFW_OPT_LIST,       /* comma-separated list of words */
	IRFW_OPT_ENUM        /* one of `choices` ("a|b|c") */
} irfw_opt_type;

/**
 * The phase a step belongs to.  In an incident the order of business is:
 * stop the bleeding on every instance (contain), then preserve the evidence
 * (preserve), then record and tell (report).  A plugin declares its
 * default in the vtable; a site may override it with `phase =` in the
 * step's section.  A step of the contain phase that FAILED keeps its
 * instance from being reported as contained.
 */
typedef enum irfw_phase {
	IRFW_PHASE_UNSET = 0,    /* not declared (a 1.0 module): preserve */
	IRFW_PHASE_CONTAIN = 1,  /* take it out of service and cut it off */
	IRFW_PHASE_PRESERVE = 2, /* protect, capture, snapshot */
	IRFW_PHASE_REPORT = 3    /* tag, upload, notify */
} irfw_phase;

/* Option flags. */
#define IRFW_OPT_REQUIRED 0x1u /* must be given in the section */
#define IRFW_OPT_SECRET   0x2u /* value is never printed or logged */

/**
 * One INI key a plugin accepts.  The table ends with an entry whose name is
 * NULL.  This struct is frozen for ABI major 1: a table is an array the
 * core walks, so a new field would change its stride; options with new
 * properties need a new struct and a major bump.  Core rejects unknown keys and missing required ones with
 * file:line, checks types, and generates `irfw plugins --describe` and the man page from the table, so `help`
 * is the user documentation of the key.
 */
struct irfw_option {
	const char *name;
	irfw_opt_type type;
	const char *def; /* default as written in INI, or NULL for none */
	unsigned flags;
	const char *help;
	const char *choices; /* IRFW_OPT_ENUM: "stop|continue" */
};

/**
 * One AWS action a step may call: the plugin's statement of what it needs,
 * from which `irfw policy` prints the least-privilege IAM policy of a
 * pipeline and a run estimates how long the account's EC2 request buckets
 * make it take.  The table ends with an entry whose action is NULL.
 * Frozen for ABI major 1, like struct irfw_option.
 */
struct irfw_action {
	/** The IAM action, "ec2:ModifyNetworkInterfaceAttribute".  A call an
	 * API authorises under another name is declared under that name (an S3
	 * HeadObject is s3:GetObject), and the permissions a call needs on
	 * another service too (SSE-KMS: kms:GenerateDataKey). */
	const char *action;
	/** NULL: any resource ("*").  Else an ARN template: ${account_id},
	 * ${region}, and ${opt:NAME}, the step's option NAME (itself
	 * expanded; a value that cannot be known yet, such as ${instance_id},
	 * becomes "*"). */
	const char *resource;
	/** NULL: always.  "NAME=VALUE": only when the step's option NAME has
	 * VALUE ("nacl=true", "mode=standby"); "NAME!=VALUE": unless. */
	const char *when;
	/** For the estimate: what one lot of `calls` is made for: "instance",
	 * "interface" (of the instance), "volume" (of the instance) or "run". */
	const char *per;
	/** Calls of it per `per` in the usual case (0: rare, not estimated). */
	unsigned calls;
};

/**
 * The vtable a plugin module exports.  Fill it with designated initialisers
 * starting with IRFW_PLUGIN_HEADER, and export it with IRFW_PLUGIN_ENTRY.
 * Only `name`, `run` and the header are mandatory.
 */
struct irfw_plugin {
	uint16_t abi_major; /* IRFW_ABI_MAJOR when built */
	uint16_t abi_minor; /* IRFW_ABI_MINOR when built */
	uint32_t size;      /* sizeof(struct irfw_plugin) when built */
	const char *name;   /* equals the module's file basename, [a-z0-9_]+ */
	const char *version;
	const char *summary; /* one line, shown by `irfw plugins` */
	const struct irfw_option *options;

	/** Called once per step, with the step's section validated.  May set
	 * *state.  Return 0, or -1 after irfw_step_error(). */
	int (*init)(irfw_step *step, void **state);
	/** Optional.  Once per batch, all targets known, before any run (and
	 * before any change to any instance).  While it runs, each target's
	 * irfw_target_step() is this step, so irfw_step_expand(),
	 * irfw_aws_call() and irfw_memo() work on any target of the batch.
	 * Return 0, or -1 to stop the run before anything is changed; call
	 * irfw_step_error() first when the cause is the operator's input (a
	 * -g group of another VPC), which makes the exit status 2.
	 * Built for ABI 1.9 or later, it runs at the same time as the other
	 * steps' prepares (one thread each; the run waits for all of them):
	 * it may call AWS, log, record (the core serialises records) and read
	 * the batch's targets, keeping what it learns in its own state, but
	 * must not set facts nor depend on another step's prepare.  If any
	 * prepare fails, no step runs on any instance. */
	int (*prepare)(irfw_batch *batch, void *state);
	/** Optional.  Permission preflight for `irfw check`: it must change
	 * nothing.  Called with irfw_target_dry_run() true, so EC2 changes made
	 * through irfw_aws_call() are sent with DryRun (AWS answers with the
	 * permission verdict) and other changes are not sent at all.  A step
	 * without `check` is reported "not checked (no preflight)": the core
	 * never calls `run` from `irfw check`.  A plugin whose `run` is safe
	 * under these rules may give the same function for both. */
	irfw_status (*check)(irfw_target *t, void *state);
	/** Act on one instance. */
	irfw_status (*run)(irfw_target *t, void *state);
	/** Optional.  Undo what run did, for `irfw release` (ABI 1.5: called
	 * since then): from what the step recorded in the case
	 * (irfw_record_get() with its own step name), put back what it changed,
	 * read AWS back, and return OK only when AWS shows it put back;
	 * SKIPPED when there is nothing to undo (nothing recorded), FAILED
	 * with the AWS error.  Called in reverse pipeline order, without
	 * prepare, and again on a later release if it did not end OK or
	 * SKIPPED, so it must read what is in place before changing it (a
	 * module with `report_release` is not called here but after the
	 * others).  In a
	 * dry run irfw_target_dry_run() is true and calls run dry as in check.
	 * Facts: "release.restore_groups" (the --restore-groups list,
	 * "sg-a,sg-b"), "release.unprotect" and "release.force" ("true"). */
	irfw_status (*release)(irfw_target *t, void *state);
	/** Optional.  Free what init made. */
	void (*fini)(void *state);

	/** Optional.  Paragraphs for the man page and `irfw plugins
	 * --describe`: what the step does, why it sits where it does, and
	 * what it cannot do.  Paragraphs are separated by a blank line. */
	const char *description;

	/* ---- ABI 1.1 ---- */
	/** The step's default phase (a site may override it with `phase =`).
	 * IRFW_PHASE_UNSET is taken as IRFW_PHASE_PRESERVE. */
	irfw_phase phase;

	/* ---- ABI 1.3 ---- */
	/** Optional.  The AWS actions the step may call (NULL-terminated),
	 * for `irfw policy` and the run's estimate.  A step without it is
	 * listed by `irfw policy` as "actions not declared". */
	const struct irfw_action *actions;

	/* ---- ABI 1.12 ---- */
	/** Optional.  Tell of a release (a notifier): `irfw release` calls it
	 * after every other step of the instance is released, in pipeline
	 * order, in place of `release` (which it then never calls).  The
	 * summary (irfw_target_summary) is then the release's: "command" is
	 * "release", "release" {state, outcome, cause} stands where
	 * "containment" stands in a run, and "steps" are the release's
	 * results; ${outcome} expands to RELEASED, PARTIALLY RELEASED or NOT
	 * RELEASED and ${containment} to released, partially-released or
	 * not-released, from the other steps' release results (AWS read back
	 * by each).  It is called again by every later release of the case,
	 * so it must not repeat what it recorded as done for the same
	 * outcome. */
	irfw_status (*report_release)(irfw_target *t, void *state);
};

/* The least the loader accepts: the vtable up to `fini`.  Fields after it
 * are read only when the module's `size` covers them. */
#define IRFW_PLUGIN_MIN_SIZE (offsetof(struct irfw_plugin, fini) + sizeof(void (*)(void *)))

#define IRFW_PLUGIN_HEADER                                                                                   \
	.abi_major = IRFW_ABI_MAJOR, .abi_minor = IRFW_ABI_MINOR, .size = (uint32_t)sizeof(struct irfw_plugin)

/**
 * Export `var` (a `static const struct irfw_plugin`) as module `mod`'s entry
 * point.  libltdl's `mod_LTX_` prefix lets every module export the same
 * symbol and still be linked statically.
 */
#define IRFW_PLUGIN_ENTRY(mod, var)                                                                          \
	IRFW_EXPORT const struct irfw_plugin *mod##_LTX_irfw_plugin_get(void);                               \
	IRFW_EXPORT const struct irfw_plugin *mod##_LTX_irfw_plugin_get(void)                                \
	{                                                                                                    \
		return &(var);                                                                               \
	}

/* ------------------------------------------------------------------ */
/* Logging.                                                            */

typedef enum irfw_log_level {
	IRFW_LOG_ERROR = 0,
	IRFW_LOG_WARN = 1,
	IRFW_LOG_INFO = 2,
	IRFW_LOG_DEBUG = 3
} irfw_log_level;

/** Log a line tagged `[instance step]`.  Never pass a secret. */
IRFW_EXPORT void irfw_log(irfw_target *t, irfw_log_level level, const char *fmt, ...) IRFW_PRINTF(3, 4);

/** Log a line tagged with the step, outside any target (init, prepare). */
IRFW_EXPORT void irfw_step_log(irfw_step *step, irfw_log_level level, const char *fmt, ...) IRFW_PRINTF(3, 4);

/* ------------------------------------------------------------------ */
/* Step configuration (the step's own INI section).                    */

/** The step's name: its INI section. */
IRFW_EXPORT const char *irfw_step_name(const irfw_step *step);

/** Raw value of `key` (or its default), unexpanded; NULL if neither. */
IRFW_EXPORT const char *irfw_step_get(const irfw_step *step, const char *key);

/** Boolean value of `key` (validated at load time). */
IRFW_EXPORT bool irfw_step_get_bool(const irfw_step *step, const char *key);

/** Integer value of `key` (validated at load time); 0 when unset. */
IRFW_EXPORT long irfw_step_get_int(const irfw_step *step, const char *key);

/** A LIST option split into words (commas and blanks separate them), as
 * a NULL-terminated array to free with irfw_list_free(); an empty list
 * gives an array holding only NULL.  NULL on allocation failure. */
IRFW_EXPORT char **irfw_step_get_list(const irfw_step *step, const char *key);
IRFW_EXPORT void irfw_list_free(char **list);

/**
 * Report a configuration error in `init`, naming the file and line of
 * `key` (or of the section when key is NULL).  Makes the run stop with
 * exit status 2 before any instance is touched.
 */
IRFW_EXPORT void irfw_step_error(irfw_step *step, const char *key, const char *fmt, ...) IRFW_PRINTF(3, 4);

/** Value of a global `[irfw]` key or a command-line override (bucket,
 * topic, sgid, region, profile); NULL when unset. */
IRFW_EXPORT const char *irfw_global_get(const irfw_step *step, const char *key);

/* ------------------------------------------------------------------ */
/* Batch.                                                              */

IRFW_EXPORT size_t irfw_batch_count(const irfw_batch *b);
IRFW_EXPORT irfw_target *irfw_batch_target(irfw_batch *b, size_t i);
IRFW_EXPORT const char *irfw_batch_case_id(const irfw_batch *b);

/* ------------------------------------------------------------------ */
/* Target facts.                                                       */

IRFW_EXPORT const char *irfw_target_id(const irfw_target *t);
IRFW_EXPORT const char *irfw_target_region(const irfw_target *t);
IRFW_EXPORT const char *irfw_target_account_id(const irfw_target *t);
IRFW_EXPORT const char *irfw_target_case_id(const irfw_target *t);
/** The caller's ARN from sts:GetCallerIdentity (the operator). */
IRFW_EXPORT const char *irfw_target_caller_arn(const irfw_target *t);
/** The instance's VPC, or NULL (EC2-Classic, or not yet described). */
IRFW_EXPORT const char *irfw_target_vpc_id(const irfw_target *t);
/** The instance as DescribeInstances returned it (an "item" of
 * instancesSet, keys as on the wire: instanceId, networkInterfaceSet...),
 * or NULL for a target of the batch that is not handled (not found, or
 * terminated or shutting down): prepare must skip those.  Its lists with
 * entries are arrays, but it is the wire's tree, not irfw_aws_call()'s
 * shape: an empty list may be "" (cJSON_ArrayForEach reads it as none),
 * and its scalars are strings (read them with irfw_json_text(),
 * irfw_json_bool() and irfw_json_long()). */
IRFW_EXPORT const cJSON *irfw_target_instance(const irfw_target *t);
/** The instance's state as DescribeInstances gave it ("pending",
 * "running", "stopping", "stopped"; terminated and shutting-down
 * instances never reach a step), or "" when unknown. */
IRFW_EXPORT const char *irfw_target_state(const irfw_target *t);
/** True for `--dry-run` and `irfw check`: mutating calls carry DryRun and
 * change nothing; operations without a DryRun parameter are not sent. */
IRFW_EXPORT bool irfw_target_dry_run(const irfw_target *t);
/** The step being run for this target. */
IRFW_EXPORT irfw_step *irfw_target_step(irfw_target *t);

/** Leave a fact for later steps of this target (key and value copied).
 * Facts live for this run only: a resumed case does not see the facts of
 * the run that did a step, so what a later run needs goes in irfw_record()
 * (or is read from AWS again).  Not from a prepare (see prepare). */
IRFW_EXPORT int irfw_fact_set(irfw_target *t, const char *key, const char *value);
/** A fact left by an earlier step, or NULL.  Valid until the same key is
 * set again. */
IRFW_EXPORT const char *irfw_fact_get(const irfw_target *t, const char *key);

/**
 * Expand ${account_id} ${region} ${instance_id} ${vpc_id} ${case_id}
 * ${date} ${time} ${name_tag} ${containment} ${outcome} in `tmpl` ($$ is a
 * literal $).  ${name_tag} is "" for an instance without a Name tag;
 * ${containment} is the word irfw_containment_name() gives for the
 * instance's containment so far, ${outcome} the same as a headline
 * ("CONTAINED", "PARTIALLY CONTAINED", "NOT CONTAINED", "CONTAINMENT NOT
 * ATTEMPTED").  Returns a string to free(), or NULL (unknown variable:
 * logged).
 */
IRFW_EXPORT char *irfw_expand(irfw_target *t, const char *tmpl);

/** irfw_expand() of the step's `key`; NULL when the key is unset. */
IRFW_EXPORT char *irfw_step_expand(irfw_target *t, const char *key);

/* ------------------------------------------------------------------ */
/* Containment: a fact verified by reading AWS back.                    */

/** What AWS shows about an instance's containment. */
typedef enum irfw_containment {
	IRFW_CONTAINMENT_NOT_ATTEMPTED = 0, /* no step reported on it (yet) */
	IRFW_CONTAINED = 1,                 /* verified closed */
	IRFW_PARTIALLY_CONTAINED = 2,       /* some of it is open: the cause says what */
	IRFW_NOT_CONTAINED = 3              /* nothing verified closed: the cause says why */
} irfw_containment;

/**
 * Report what the current step established about the instance's
 * containment, from what AWS shows after its changes (read back, not
 * assumed from the calls' answers).  `fmt` says what is open or why (may
 * be NULL for IRFW_CONTAINED).  Replaces this step's earlier report in
 * this case; kept in the case record, so a resumed run knows it.  Ignored
 * in a dry run (nothing was changed).  Returns 0, or -1 when it could not
 * be recorded (the report still holds for this run).
 *
 * The instance's containment is the worst report of all its steps, and a
 * FAILED step of the contain phase makes a contained instance partially
 * contained (and one without any report not contained).  Tags, the
 * notification, the summaries and the exit status all take it from here.
 */
IRFW_EXPORT int irfw_containment_report(irfw_target *t, irfw_containment c, const char *fmt, ...)
    IRFW_PRINTF(3, 4);

/** The instance's containment as established so far (this run and earlier
 * runs of the case); *cause (may be NULL) gets what is open or why, ""
 * when contained or not attempted.  The text stays valid until it changes
 * (a report, or a step of the contain phase failing): copy it to keep it.
 * Prepares running at once may call it (and irfw_expand) for the same
 * target. */
IRFW_EXPORT irfw_containment irfw_target_containment(const irfw_target *t, const char **cause);

/** "contained", "partially-contained", "not-contained", "not-attempted". */
IRFW_EXPORT const char *irfw_containment_name(irfw_containment c);

/* ------------------------------------------------------------------ */
/* Step results.                                                        */

/** Record why the step was skipped; returns IRFW_SKIPPED. */
IRFW_EXPORT irfw_status irfw_skip(irfw_target *t, const char *fmt, ...) IRFW_PRINTF(2, 3);

/** Record a failure with no AWS error; returns IRFW_FAILED. */
IRFW_EXPORT irfw_status irfw_fail(irfw_target *t, const char *fmt, ...) IRFW_PRINTF(2, 3);

/** Record a failure of the last irfw_aws_call(): the context given here,
 * plus the AWS error code, message and request id; returns IRFW_FAILED. */
IRFW_EXPORT irfw_status irfw_fail_aws(irfw_target *t, const char *fmt, ...) IRFW_PRINTF(2, 3);

/** Like irfw_fail_aws(), with the FIRST AWS error of this step rather
 * than the last: for steps that try every change before reporting. */
IRFW_EXPORT irfw_status irfw_fail_aws_first(irfw_target *t, const char *fmt, ...) IRFW_PRINTF(2, 3);

/** Add a one-line note to the step's result (shown with OK too). */
IRFW_EXPORT void irfw_note(irfw_target *t, const char *fmt, ...) IRFW_PRINTF(2, 3);

/* ------------------------------------------------------------------ */
/* AWS client.                                                         */

/**
 * Call AWS `service` (ec2, autoscaling, elasticloadbalancing, elb, s3, kms,
 * sns, sts, ssm, iam) `operation` with `params` for the target's account and
 * region.  Parameters are given in the API reference's shape (for EC2 and
 * query services a cJSON object whose arrays are flattened the protocol's
 * way; for JSON services the request object itself).  On success *result
 * is the reply as cJSON, which the caller frees with cJSON_Delete.
 * Retries, signing, rate limits and endpoints are the core's business.
 *
 * The result has one shape whatever the protocol (ABI 1.2: for a module
 * built against 1.2 or later; one built for 1.0 or 1.1 gets the tree of
 * the wire it was written for, the query wrapper and request id included):
 *  - Keys are the wire's member names: EC2's lowerCamel (reservationSet,
 *    groupId), the query services' and S3's UpperCamel (AutoScalingGroups,
 *    Contents).  KMS and SSM (JSON protocol) replies are the service's
 *    JSON, untouched by anything below.
 *  - The query services' (autoscaling, elasticloadbalancing/elbv2, elb,
 *    sns, sts, iam) <Operation>Result wrapper is removed: its members are
 *    the top level, with nothing beside them.  DescribeAutoScalingGroups
 *    gives {"AutoScalingGroups": [...], "NextToken": "..."}, sts
 *    GetCallerIdentity {"Arn", "UserId", "Account"}.
 *  - The request id is never part of the result (EC2's requestId and the
 *    query services' ResponseMetadata are removed): irfw_aws_last_request_id()
 *    gives it.
 *  - A list that is present is an array, with one entry as with many.  EC2
 *    and query lists (<item> and <member> entries) always are.  An EMPTY
 *    one (the wire sends an empty element) is [] at any depth when it is
 *      EC2's and named ...Set, or securityGroupInfo, ipPermissions,
 *        ipPermissionsEgress, ipRanges, ipv6Ranges, prefixListIds, groups,
 *        userIdGroupPairs, blockDeviceMapping or productCodes;
 *      Auto Scaling's AutoScalingGroups, AutoScalingInstances, Instances,
 *        SuspendedProcesses, LoadBalancerNames, TargetGroupARNs, Tags,
 *        Activities, AvailabilityZones, EnabledMetrics, TerminationPolicies,
 *        LifecycleHooks, TrafficSources or Processes;
 *      ELBv2's (elasticloadbalancing, elbv2) TargetGroups,
 *        TargetHealthDescriptions, LoadBalancers, LoadBalancerArns,
 *        AvailabilityZones, SecurityGroups, Listeners, Rules,
 *        TagDescriptions or Tags;
 *      ELB's (elb) LoadBalancerDescriptions, Instances, InstanceStates,
 *        ListenerDescriptions, AvailabilityZones, Subnets, SecurityGroups,
 *        BackendServerDescriptions, PolicyNames, TagDescriptions or Tags;
 *      IAM's Roles, InstanceProfiles, Users, Groups, Policies, PolicyNames,
 *        AttachedPolicies, AccessKeyMetadata or Tags;
 *      SNS's Topics, Subscriptions or Tags.
 *    Any other empty list may be "", which cJSON_ArrayForEach,
 *    cJSON_GetArraySize and irfw_json_list_count() all read as no entries.
 *    S3's repeated elements are arrays even when there is one:
 *    ListObjectsV2 (and ListObjects) Contents and CommonPrefixes,
 *    ListObjectVersions Version, DeleteMarker and CommonPrefixes, ListParts
 *    Part, ListMultipartUploads Upload and CommonPrefixes,
 *    GetBucketEncryption Rule, DeleteObjects Deleted and Error.  A list the
 *    reply leaves out stays absent (S3 omits an empty Contents).  So
 *    cJSON_ArrayForEach over any list is right, and irfw_json_list_count()
 *    and irfw_json_list_item() also take a lone object (a repeated element
 *    not named here) and absence alike.
 *  - Scalars of XML replies stay the strings the wire sent ("true", "42",
 *    "2024-05-01T12:34:56.000Z", "" for an empty element): read them with
 *    irfw_json_text(), irfw_json_bool() and irfw_json_long(), which take
 *    the JSON protocols' booleans and numbers as well.
 *
 * Returns 0 on success, -1 on failure; then irfw_aws_error_code() and friends
 * describe the error, and irfw_fail_aws() turns it into a step failure.
 * For --dry-run, mutating EC2 operations get DryRun=true, and AWS's
 * DryRunOperation answer counts as success with *result NULL.
 *
 * S3 operations (PutObject, HeadObject, GetObject, CreateMultipartUpload,
 * UploadPart, CompleteMultipartUpload, AbortMultipartUpload, HeadBucket,
 * ListObjectsV2, GetBucketLocation, GetBucketEncryption) take their REST
 * parameters by the API reference's names: Bucket, Key, Body (a string) or
 * BodyFile (a path, with BodyOffset/BodyLength for a part), ContentType,
 * ServerSideEncryption, SSEKMSKeyId, ChecksumSHA256, Metadata (object),
 * UploadId, PartNumber, Parts ([{PartNumber, ETag, ChecksumSHA256}]).
 * With ChecksumAlgorithm = "SHA256" and no ChecksumSHA256 the core computes
 * it from the body.  Response headers come back as ETag, VersionId,
 * ServerSideEncryption, SSEKMSKeyId, ChecksumSHA256, ContentLength...
 */
IRFW_EXPORT int irfw_aws_call(irfw_target *t, const char *service, const char *operation, const cJSON *params,
                              cJSON **result);

/** irfw_aws_call() in `region` rather than the target's (NULL: the
 * target's): for a resource named by an ARN of another region, such as a
 * central SNS topic or a KMS key. */
IRFW_EXPORT int irfw_aws_call_in(irfw_target *t, const char *region, const char *service,
                                 const char *operation, const cJSON *params, cJSON **result);

/* Flags of irfw_aws_call_ex() (ABI 1.4). */
enum {
	/**
	 * The operation creates something AWS cannot deduplicate (no
	 * ClientToken: CreateSnapshots, CreateSnapshot, CreateSecurityGroup).
	 * The core still retries what cannot have been carried out (no
	 * connection was made; a throttling answer), but once the request may
	 * have reached AWS (sent and then no answer, a reset, a stall; a 5xx
	 * that is not throttling; a 2xx whose body cannot be read) it is not
	 * sent again: the call fails with the code IRFW_AWS_OUTCOME_UNKNOWN,
	 * the cause in the message, and the step looks up what exists (by the
	 * tags it gave in the same call) before sending it again.
	 */
	IRFW_CALL_NOT_IDEMPOTENT = 1u << 0,
};

/** irfw_aws_error_code() of a call made with IRFW_CALL_NOT_IDEMPOTENT that
 * was not re-sent because AWS may have carried it out (ABI 1.4). */
#define IRFW_AWS_OUTCOME_UNKNOWN "irfw.OutcomeUnknown"

/** irfw_aws_call_in() with flags (IRFW_CALL_*; 0 is irfw_aws_call_in
 * itself) (ABI 1.4).  `region` NULL: the target's. */
IRFW_EXPORT int irfw_aws_call_ex(irfw_target *t, const char *region, const char *service,
                                 const char *operation, const cJSON *params, unsigned flags, cJSON **result);

/**
 * One request for the same change of several targets (ABI 1.13): the
 * calls of this step on other targets with the same `service`,
 * `operation` and `params` are gathered, each adding its `item` to the
 * array parameter `list` (an instance id to "InstanceIds", a target
 * {Id, Port} to "Targets").  The first target to call leads: it waits
 * until the request holds `max` items (the API's limit), or `expect` of
 * them (how many targets of the step the plugin expects to make this call
 * in the run, itself included; items sent in earlier requests under the
 * same key count), or a short window (200 ms) has passed, then sends it.
 * Every member returns the request's outcome as irfw_aws_call() would have
 * returned its own: 0 or -1, the target's error and request id are the
 * request's, and the step's request ids include it.  *together (may be
 * NULL) is how many items the request carried.  There is no result: use it
 * for changes whose answer says nothing per item, and read each target
 * back.  A refusal is the whole request's (AWS refuses a list when one
 * item is wrong): call again alone to tell whose it is.  With `expect` or
 * `max` at most 1, or in a dry run, the call is made at once with a list
 * of one.  Not for changes AWS cannot deduplicate.  Returns 0, or -1
 * (also for a NULL argument or max 0).
 */
IRFW_EXPORT int irfw_aws_call_together(irfw_target *t, const char *service, const char *operation,
                                       const cJSON *params, const char *list, const cJSON *item, size_t max,
                                       size_t expect, size_t *together);

/**
 * Several independent calls of one target, sent at once (ABI 1.8): the
 * PutObjects of a target's artifacts, the reads of a capture.  Each call
 * behaves exactly as irfw_aws_call_ex() with the same arguments would (the
 * same result shape, retries, rate limits and deadline, dry-run rules,
 * the IAM permission named in an AccessDenied message); only the waiting
 * is shared.  The calls must not depend on one another: they may reach AWS
 * in any order.
 *
 *     irfw_calls *c = irfw_calls_new(t);
 *     for (...) irfw_calls_add(c, NULL, "s3", "PutObject", params, 0);
 *     irfw_calls_run(c);
 *     irfw_status st = IRFW_OK;
 *     for (size_t i = 0; i < irfw_calls_count(c) && st == IRFW_OK; i++)
 *             if (irfw_calls_select(c, i) != 0)   // call i's error is the target's
 *                     st = irfw_fail_aws(t, "PutObject %s", name[i]);
 *             else
 *                     use(irfw_calls_result(c, i));
 *     irfw_calls_free(c);
 *
 * Call the functions of one set from the thread running its target only.
 * The calls are sent by a small pool of threads the run keeps (shared by
 * all targets; connections are reused) and by the calling thread itself,
 * which sends its own calls while the pool is busy; a set of one call is
 * sent in the calling thread.  The step's request ids are added in index
 * order, and its first error (irfw_fail_aws_first()) is the failed call
 * of the lowest index, as if the calls had been made one after another.
 */
typedef struct irfw_calls irfw_calls;

/** A new, empty set of calls for target t; NULL when out of memory. */
IRFW_EXPORT irfw_calls *irfw_calls_new(irfw_target *t);

/** Add a call (not sent yet): `region` NULL is the target's, `flags` are
 * irfw_aws_call_ex()'s.  region, service, operation and params are
 * copied (params may be NULL and may be changed or freed on return).
 * Returns the call's index (0, 1, ... in the order added), or -1 (a NULL
 * set, no service or operation, out of memory). */
IRFW_EXPORT int irfw_calls_add(irfw_calls *c, const char *region, const char *service, const char *operation,
                               const cJSON *params, unsigned flags);

/** Send every call added since the last irfw_calls_run() and wait until
 * each has its answer (or error).  Returns the number of the set's calls
 * that failed (0: all succeeded), or -1 for a NULL set.  Afterwards the
 * target's error (irfw_aws_error_code() and friends) is that of the
 * failed call of the lowest index (none when all succeeded), and
 * irfw_aws_last_request_id() that of the successful call of the highest
 * index; irfw_calls_select() picks another. */
IRFW_EXPORT int irfw_calls_run(irfw_calls *c);

/** Call i's result as irfw_aws_call() gives it, owned by the set (valid
 * until irfw_calls_free()); NULL when the call failed, was not run, has
 * no result (a dry run's change) or i is out of range. */
IRFW_EXPORT const cJSON *irfw_calls_result(const irfw_calls *c, size_t i);

/** Make call i's outcome the target's, as if it were the last call made:
 * its error for irfw_aws_error_code(), irfw_aws_request_id() and
 * irfw_fail_aws() (none when it succeeded), its request id for
 * irfw_aws_last_request_id().  Returns 0 when call i succeeded, -1 when it
 * failed, or -1 leaving the target as it was when i is out of range or
 * the call was not run. */
IRFW_EXPORT int irfw_calls_select(irfw_calls *c, size_t i);

/** The number of calls added to the set. */
IRFW_EXPORT size_t irfw_calls_count(const irfw_calls *c);

/** Free the set and its results (NULL: nothing); not while it runs. */
IRFW_EXPORT void irfw_calls_free(irfw_calls *c);

/** The region of an ARN ("arn:aws:sns:eu-west-1:123456789012:oncall" gives
 * "eu-west-1") into out; false when `arn` is not an ARN or names no region
 * (S3 and IAM ARNs). */
IRFW_EXPORT bool irfw_arn_region(const char *arn, char out[64]);

/** Same as irfw_aws_call(), for work outside one target (prepare).
 * `region` NULL: the run's.  A failure is logged with its AWS error code,
 * message and request id (there is no target to hold them). */
IRFW_EXPORT int irfw_batch_aws_call(irfw_batch *b, const char *region, const char *service,
                                    const char *operation, const cJSON *params, cJSON **result);

/**
 * Call a paginated operation page after page (ABI 1.2).  `params` (not
 * changed; may be NULL) is sent with the token of the page before added as
 * the operation's protocol asks: a result's NextContinuationToken goes back
 * as ContinuationToken (S3), NextMarker as Marker (ELB, ELBv2, KMS),
 * NextToken or EC2's nextToken as NextToken (EC2, Auto Scaling, SNS, SSM),
 * and Marker as Marker when IsTruncated is true (IAM).  A result whose
 * IsTruncated or Truncated is false, or that carries no such token, is the
 * last page.
 *
 * `page` is called with each result (in the shape irfw_aws_call()
 * describes; it is freed after the call, so copy what you keep) and
 * returns 0 for the next page, or non-zero to stop there.  At most 1000
 * pages are read.
 *
 * Returns 0 once the last page was read, the callback's value when it
 * stopped (so stop with a positive value), or -1 when a call failed:
 * irfw_aws_error_code() and friends then describe it, and irfw_fail_aws()
 * reports it (code "PaginationLoop" when AWS gave back the token just
 * sent, "PaginationLimit" past 1000 pages).  In a dry run an operation the
 * dry run does not send gives no page and returns 0.
 */
IRFW_EXPORT int irfw_aws_paginate(irfw_target *t, const char *service, const char *operation,
                                  const cJSON *params,
                                  int (*page)(irfw_target *t, const cJSON *result, void *ctx), void *ctx);

/** irfw_aws_paginate() in `region` rather than the target's (NULL: the
 * target's), as irfw_aws_call_in(). */
IRFW_EXPORT int irfw_aws_paginate_in(irfw_target *t, const char *region, const char *service,
                                     const char *operation, const cJSON *params,
                                     int (*page)(irfw_target *t, const cJSON *result, void *ctx), void *ctx);

/** irfw_aws_paginate() outside one target (prepare), as
 * irfw_batch_aws_call(): `region` NULL is the run's, and a failure (-1)
 * is logged rather than kept. */
IRFW_EXPORT int irfw_batch_aws_paginate(irfw_batch *b, const char *region, const char *service,
                                        const char *operation, const cJSON *params,
                                        int (*page)(irfw_batch *b, const cJSON *result, void *ctx),
                                        void *ctx);

/** The last failed call's AWS error code ("AccessDenied"), or a transport
 * code ("Timeout", "ConnectionError"); "" when none. */
IRFW_EXPORT const char *irfw_aws_error_code(const irfw_target *t);
IRFW_EXPORT const char *irfw_aws_error_message(const irfw_target *t);
IRFW_EXPORT const char *irfw_aws_request_id(const irfw_target *t);
IRFW_EXPORT long irfw_aws_http_status(const irfw_target *t);

/** Request id of the last successful call, to record what was done. */
IRFW_EXPORT const char *irfw_aws_last_request_id(const irfw_target *t);

/**
 * Compute a value once per `key` in this run, shared by all threads (the
 * quarantine group of a VPC, the KMS key of an alias).  The first caller
 * runs make(); others wait and get its result.  A failure (NULL) is not
 * remembered, so the next caller tries again.  The string returned lives
 * until the end of the run.
 */
IRFW_EXPORT const char *irfw_memo(irfw_target *t, const char *key, char *(*make)(irfw_target *t, void *arg),
                                  void *arg);

/* ------------------------------------------------------------------ */
/* Evidence and the case record.                                        */

/**
 * Add an artifact to the target's evidence: written as `name` under the
 * case folder, its SHA-256 computed and recorded in the manifest.  `name`
 * is a plain file name ([A-Za-z0-9._-]).  Returns 0 or -1 (logged).
 */
IRFW_EXPORT int irfw_evidence_add(irfw_target *t, const char *name, const char *media_type, const void *data,
                                  size_t len);

/** Number of artifacts of the target, and their properties. */
IRFW_EXPORT size_t irfw_evidence_count(const irfw_target *t);
IRFW_EXPORT const char *irfw_evidence_name(const irfw_target *t, size_t i);
IRFW_EXPORT const char *irfw_evidence_path(const irfw_target *t, size_t i);
IRFW_EXPORT const char *irfw_evidence_media_type(const irfw_target *t, size_t i);
IRFW_EXPORT const char *irfw_evidence_sha256(const irfw_target *t, size_t i); /* hex */
IRFW_EXPORT uint64_t irfw_evidence_size(const irfw_target *t, size_t i);

/** Record where artifact i was shipped (upload plugin). */
IRFW_EXPORT int irfw_evidence_set_location(irfw_target *t, size_t i, const char *uri, const char *version_id,
                                           const char *etag, const char *kms_key);

/** Path of the target's manifest.json, first brought up to date with every
 * change recorded so far (the file is otherwise rewritten only when the
 * record is closed: journal.jsonl is the record, the manifest its cache). */
IRFW_EXPORT const char *irfw_manifest_path(const irfw_target *t);

/**
 * Record a value under this step in the case record (original security
 * groups, the Auto Scaling group left...).  Takes ownership of `value`.
 * Written to journal.jsonl and synced before the call returns (record
 * what you are about to change before you change it); manifest.json
 * shows it from the next irfw_manifest_path() or the record's close.
 * In a dry run nothing is recorded (value is freed, 0 returned).
 *
 * Returns 0, or -1 when it could not be written (the evidence folder is
 * full or read-only, or the instance has no case record): the reason is
 * logged, and the step then ends FAILED whatever it returns, its detail
 * saying what was not recorded.  A step may go on after a failure (isolate
 * still contains the instance); it need not report it itself.
 */
IRFW_EXPORT int irfw_record(irfw_target *t, const char *key, cJSON *value);

/**
 * Record what a change did, or what AWS showed after it (ABI 1.10): the
 * snapshots made, the tags put on, a message id, a containment read back.
 * As irfw_record() (the same record, read by irfw_record_get() and
 * release), except that it is written but not synced on its own: it
 * becomes durable with the target's next irfw_record(), when the manifest
 * is written, or when the record closes, at the latest.
 *
 * A crash of irfw loses nothing either way.  A crash of the machine can
 * take back such a line, and leaves the record as a crash of irfw just
 * before the line would: the step is found not ended, and the next run of
 * the case runs it again, which must find in AWS what it did (by the case's
 * tag, a client token, the state read back).  A value that must be known
 * before a change is sent (what release puts back, a notification's id)
 * goes through irfw_record(), before the change.
 */
IRFW_EXPORT int irfw_record_result(irfw_target *t, const char *key, cJSON *value);

/** A value recorded by step `step` for this target in this case (this run
 * or an earlier one), or NULL.  It stays valid until the current step or
 * prepare returns, unless the same key is recorded again: copy it
 * (cJSON_Duplicate) to keep it longer. */
IRFW_EXPORT const cJSON *irfw_record_get(const irfw_target *t, const char *step, const char *key);

/**
 * The head of the target's hash-chained journal (ABI 1.6): the lower-case
 * hex SHA-256 of its last line, as manifest.json records it under
 * "journal_head", copied into hex[65], and the number of lines it covers
 * (when `lines` is not NULL).  It changes with every line written, so a
 * notification or an uploaded manifest that quotes it pins the record as it
 * was then: `irfw verify` finds it in the chain.  Returns 0, or -1 (hex
 * set to "") when the target has no case record (a dry run, `irfw check`).
 */
IRFW_EXPORT int irfw_journal_head(const irfw_target *t, char hex[65], long *lines);

/** This run's id (ABI 1.7): one per irfw invocation, the same for every
 * target, recorded in the case manifest's "runs" ("20261128T031500Z-" and
 * 12 hex digits).  With the case and instance it names a side effect of
 * this run, so that receivers can tell a re-sent one. */
IRFW_EXPORT const char *irfw_run_id(const irfw_target *t);

/** True while the current step runs although an earlier run of the case
 * finished it (ABI 1.7): --no-resume, or a report step whose containment
 * has changed since.  False for a step that an earlier run began and did
 * not finish (killed, interrupted, or failed): what that run recorded
 * (irfw_record_get) then tells what it already did. */
IRFW_EXPORT bool irfw_step_repeated(const irfw_target *t);

/**
 * A side effect that must reach its receivers once (ABI 1.12): a
 * notification, a ticket, a page.  The bookkeeping notify_sns and
 * notify_slack use, for any plugin that tells people:
 *
 *   n = irfw_notice_begin(t, "notification", NULL);
 *   if (irfw_notice_before(n) && !strcmp(irfw_notice_before(n), "sent"))
 *       -> told already: say so, do not send;
 *   irfw_notice_record(t, n, "intended", NULL);    (synced, before sending)
 *   send, carrying irfw_notice_id(n) for the receivers to drop a repeat;
 *   irfw_notice_record(t, n, "sent" or "failed", extra);
 *   irfw_notice_free(n);
 *
 * irfw_notice_begin looks up what the current step recorded under `key` in
 * this case.  When an earlier attempt recorded a notice there, for the same
 * `outcome` (NULL: any; a release passes its headline, so that a new
 * outcome is told again) and the step is not repeated on purpose
 * (irfw_step_repeated), the notice keeps that id and irfw_notice_before
 * says how the attempt ended: "intended" (stopped between intent and
 * result: whether it arrived is not known; send again with the same id),
 * "failed" or "sent".  Otherwise it is new (before: NULL) with the id
 * CASE/INSTANCE/RUN_ID.  NULL only when out of memory.
 */
typedef struct irfw_notice irfw_notice;
IRFW_EXPORT irfw_notice *irfw_notice_begin(irfw_target *t, const char *key, const char *outcome);
IRFW_EXPORT const char *irfw_notice_id(const irfw_notice *n);
IRFW_EXPORT const char *irfw_notice_before(const irfw_notice *n);
/** A string field the earlier attempt recorded ("message_id"), or NULL. */
IRFW_EXPORT const char *irfw_notice_earlier(const irfw_notice *n, const char *field);
/** Record the notice in `state`: "intended" is synced before the call
 * returns (irfw_record), anything else is recorded as a result
 * (irfw_record_result).  The record holds id, run_id, state, the outcome,
 * "resent_after" (the earlier state) when a repeat is "sent", and the
 * fields of `extra` (an object or NULL; taken): message_id, http_status,
 * error.  Nothing in a dry run.  0 or -1 as irfw_record(). */
IRFW_EXPORT int irfw_notice_record(irfw_target *t, const irfw_notice *n, const char *state, cJSON *extra);
IRFW_EXPORT void irfw_notice_free(irfw_notice *n);

/** True when this run will not run the current step on the target
 * because an earlier run of the case did it (ABI 1.7): resumed as done,
 * not undone by `irfw release` since, and no --no-resume.  For prepare,
 * which sees every target of the batch: what it sets up for the targets
 * the step will run (a group it removes after the last of them) must
 * count only those.  A report step whose containment has changed since
 * runs again although this says true. */
IRFW_EXPORT bool irfw_step_resumed(const irfw_target *t);

/** A one-object summary of the target so far, for notification plugins:
 * case_id, instance_id, account_id, region, name, steps (those finished
 * before the current one: step, plugin, status, detail, aws_error,
 * request_id, ms), counts {ok, skipped, failed}, artifacts {name, sha256,
 * uri}, case_dir, and journal_head and journal_lines (the case record's
 * hash-chain head now and the lines it covers: quoted in a message, it
 * pins the record as it was; `irfw verify` finds it).  Free with
 * cJSON_Delete. */
IRFW_EXPORT cJSON *irfw_target_summary(const irfw_target *t);

/* ------------------------------------------------------------------ */
/* Helpers, so a plugin needs no crypto or HTTP library of its own.     */

/* Reading results.  Every getter takes obj NULL (and an absent key) and
 * then gives its default, so calls can be chained through lookups. */

/** The string member `key` of a cJSON object (an AWS reply), or NULL when
 * it is absent or not a string.  "" is returned as "": see
 * irfw_json_text() for the value of an element that may be empty. */
IRFW_EXPORT const char *irfw_json_str(const cJSON *obj, const char *key);

/** The member `key` as an int: a number (saturated as cJSON does), or a
 * string holding a whole decimal number in int's range ("42", "-1", as XML
 * replies send numbers; since ABI 1.2); `def` otherwise. */
IRFW_EXPORT int irfw_json_int(const cJSON *obj, const char *key, int def);

/** The member `key` as a long: a number (its fraction dropped), or a
 * string holding a whole decimal number ("42", "-1", optional sign, no
 * blanks), in long's range; `def` when absent or anything else (ABI 1.2). */
IRFW_EXPORT long irfw_json_long(const cJSON *obj, const char *key, long def);

/** The member `key` as a boolean: a JSON true/false (JSON protocols), or
 * the string "true"/"false" (XML replies); `def` when absent or anything
 * else (ABI 1.2). */
IRFW_EXPORT bool irfw_json_bool(const cJSON *obj, const char *key, bool def);

/** The member `key` when it is a non-empty string, else NULL: an empty XML
 * element ("") reads as absent (ABI 1.2). */
IRFW_EXPORT const char *irfw_json_text(const cJSON *obj, const char *key);

/** The number of entries of the list `key` of obj (key NULL: obj itself):
 * an array's size; 0 when absent, null or "" (an empty element); 1 for
 * any other value (a list of one that a protocol sent as a lone object)
 * (ABI 1.2). */
IRFW_EXPORT int irfw_json_list_count(const cJSON *obj, const char *key);

/** Entry i of the list `key` of obj (key NULL: obj itself), counted as
 * irfw_json_list_count() does: an array's item, the lone value for i == 0,
 * or NULL out of range.  O(i): walk long arrays with cJSON_ArrayForEach
 * (ABI 1.2). */
IRFW_EXPORT const cJSON *irfw_json_list_item(const cJSON *obj, const char *key, int i);

/* Building requests (ABI 1.2).  Each returns 0, or -1 on a bad argument
 * (NULL params, name, key or value where one is needed), when params holds
 * a member of that name that is not a list (left as it is), or when memory
 * ran out (params may then hold part of the change). */

/** Add `value` to the EC2 filter `name` of params (the Filter list:
 * [{"Name": name, "Value": [...]}]), creating the list and the filter as
 * needed; a value the filter holds already is not added twice.  Several
 * values of one filter match any of them; several filters must all
 * match. */
IRFW_EXPORT int irfw_ec2_filter(cJSON *params, const char *name, const char *value);

/** Add the tag key=value to the TagSpecification of `resource_type`
 * ("security-group", "snapshot") in params, creating the list and the
 * specification as needed, so a resource is tagged in the call that
 * creates it; a tag of the same key is replaced (EC2 refuses a key twice). */
IRFW_EXPORT int irfw_ec2_tag_spec(cJSON *params, const char *resource_type, const char *key,
                                  const char *value);

/** Add the tag key=value to the Tag list of params (CreateTags), or the key
 * alone with value NULL (DeleteTags then removes the tag whatever its
 * value); a tag of the same key is replaced. */
IRFW_EXPORT int irfw_ec2_tag(cJSON *params, const char *key, const char *value);

/* Reading EC2 answers (ABI 1.11). */

/** The instance `instance_id` in a DescribeInstances result (its
 * reservationSet's instancesSet), or NULL when the result lists no such
 * instance. */
IRFW_EXPORT const cJSON *irfw_ec2_instance_in(const cJSON *result, const char *instance_id);

/** What `instance` (irfw_target_instance(), or irfw_ec2_instance_in() of a
 * fresh DescribeInstances) shows for the EBS volume at `device`
 * ("/dev/sdf"): 1 when DeleteOnTermination is true, 0 when false (the
 * volume survives the instance), -1 when no EBS volume is attached there
 * or the flag is missing. */
IRFW_EXPORT int irfw_ec2_delete_on_termination(const cJSON *instance, const char *device);

/** `when` in ISO 8601 UTC to the second ("2024-05-01T12:34:56Z"), the form
 * of AWS condition keys and of irfw's tags, into out; returns out ("" when
 * the time cannot be represented) (ABI 1.2). */
IRFW_EXPORT const char *irfw_iso8601(time_t when, char out[21]);

/** The length of the longest prefix of s[0..len) that is at most `max`
 * bytes and does not split a UTF-8 sequence (for APIs with byte limits). */
IRFW_EXPORT size_t irfw_utf8_prefix(const char *s, size_t len, size_t max);

/** A growable string for building messages.  After an allocation failure
 * every later append is ignored and irfw_strbuf_steal() returns NULL, so a
 * caller checks once, at the end. */
typedef struct irfw_strbuf irfw_strbuf;
IRFW_EXPORT irfw_strbuf *irfw_strbuf_new(void);
IRFW_EXPORT void irfw_strbuf_add(irfw_strbuf *b, const void *data, size_t len);
IRFW_EXPORT void irfw_strbuf_puts(irfw_strbuf *b, const char *s);
IRFW_EXPORT void irfw_strbuf_printf(irfw_strbuf *b, const char *fmt, ...) IRFW_PRINTF(2, 3);
/** The text so far ("" when empty), valid until the next append. */
IRFW_EXPORT const char *irfw_strbuf_str(const irfw_strbuf *b);
IRFW_EXPORT size_t irfw_strbuf_len(const irfw_strbuf *b);
/** Shorten to `len` bytes (no-op when already shorter). */
IRFW_EXPORT void irfw_strbuf_truncate(irfw_strbuf *b, size_t len);
/** Free the builder and return its text (to free()), or NULL after an
 * allocation failure. */
IRFW_EXPORT char *irfw_strbuf_steal(irfw_strbuf *b);
IRFW_EXPORT void irfw_strbuf_free(irfw_strbuf *b);

/** SHA-256 of data: lowercase hex into hex[65] and/or base64 into b64[45]
 * (either may be NULL). */
IRFW_EXPORT void irfw_sha256(const void *data, size_t len, char hex[65], char b64[45]);

/** Base64 encode; returns a string to free(). */
IRFW_EXPORT char *irfw_base64_encode(const void *data, size_t len);

/** Base64 decode (whitespace ignored); returns bytes to free() and their
 * count in *len, or NULL when the input is not base64. */
IRFW_EXPORT void *irfw_base64_decode(const char *s, size_t *len);

/**
 * POST `body` to an HTTPS URL that is not AWS (a chat webhook).  TLS is
 * verified; the URL is treated as a secret and never logged (errors name
 * only its host).  Returns 0 when the server answered 2xx, else -1 with
 * *http_status (0 on a transport error) and a reason logged.
 */
IRFW_EXPORT int irfw_http_post(irfw_target *t, const char *url, const char *content_type, const char *body,
                               size_t len, long *http_status);

#ifdef __cplusplus
}
#endif
#endif /* IRFW_IRFW_H */
