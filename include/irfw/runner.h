/*
 * runner.h - running irfw from a program.
 *
 * The irfw command is one such program (core/cli/main.c: it parses the
 * command line, calls these functions and turns their result into its exit
 * status); a Lambda handler or a SOAR integration can be another.  Plugins
 * do not use this header: theirs is irfw.h.
 *
 * A runner is used from one thread; the run itself uses worker threads of
 * its own.  Every function that can fail logs why (standard error, tagged,
 * secrets masked) and returns -1 or an irfw_result other than IRFW_RESULT_OK.
 * Nothing is changed in AWS before irfw_runner_execute().
 *
 * Part of the plugin ABI's versioning (irfw.h): functions are only added,
 * with a minor bump.
 */
#ifndef IRFW_RUNNER_H
#define IRFW_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

#include "irfw/irfw.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a run ended with; the most important news wins, in this order:
 * IRFW_RESULT_USAGE (nothing was done), IRFW_RESULT_NOT_CONTAINED,
 * IRFW_RESULT_STEP_FAILED, IRFW_RESULT_NOT_HANDLED. */
typedef enum irfw_result {
	IRFW_RESULT_OK = 0,          /* every step ok or skipped, every instance contained */
	IRFW_RESULT_STEP_FAILED = 1, /* a step failed (for an instance that is contained) */
	IRFW_RESULT_USAGE = 2,       /* usage, configuration, plugin or credentials error: nothing changed */
	IRFW_RESULT_NOT_HANDLED =
	    3, /* an instance was not found, or is terminated (the others were handled) */
	IRFW_RESULT_NOT_CONTAINED = 4 /* an instance is not contained, or only partially */
} irfw_result;

/** Settings taking a value, as the command line's options do. */
typedef enum irfw_setting {
	IRFW_SET_CONF = 0,     /* site configuration file (required before load) */
	IRFW_SET_REGION,       /* AWS region (syntax checked at load) */
	IRFW_SET_PROFILE,      /* profile of the AWS shared files */
	IRFW_SET_SGID,         /* quarantine security group (syntax checked at load) */
	IRFW_SET_BUCKET,       /* evidence bucket (syntax checked at load) */
	IRFW_SET_TOPIC,        /* SNS topic ARN (syntax checked at load) */
	IRFW_SET_CASE_ID,      /* case to record into; an existing case is resumed */
	IRFW_SET_EVIDENCE_DIR, /* where case records are kept */
	IRFW_SET_ONLY,         /* run only these steps (comma-separated) */
	IRFW_SET_SKIP,         /* do not run these steps (comma-separated) */
	IRFW_SET_JOBS,         /* instances handled in parallel, 1 to 64 */
	IRFW_SET_EVENTS,       /* JSON-lines events to this file ("-": standard output) */
	IRFW_SET_FILTER,       /* add a DescribeInstances filter NAME=VALUES (repeatable) */
	IRFW_SET_FINDING,      /* add the instances of a findings file ("-": standard input) */
	/* ABI 1.5 */
	IRFW_SET_RESTORE_GROUPS /* release: the groups every interface gets ("sg-a,sg-b") */
} irfw_setting;

/** Switches. */
typedef enum irfw_flag {
	IRFW_FLAG_DRY_RUN = 0, /* EC2 changes with DryRun, other changes not sent */
	IRFW_FLAG_NO_RESUME,   /* repeat steps an earlier run of the case did */
	IRFW_FLAG_JSON,        /* results as one JSON document on standard output */
	IRFW_FLAG_PROGRESS,    /* a live status line on standard error (a terminal) */
	IRFW_FLAG_YES,         /* handle --filter's matches without asking */
	/* ABI 1.5 */
	IRFW_FLAG_FORCE,     /* release: an instance without a case record (needs restore groups) */
	IRFW_FLAG_UNPROTECT, /* release: undo protect too (termination/stop protection...) */
	/* ABI 1.7 */
	IRFW_FLAG_POLICY_RELEASE /* policy: also what `irfw release` calls */
} irfw_flag;

typedef struct irfw_runner irfw_runner;

/** A new runner, or NULL (out of memory). */
IRFW_EXPORT irfw_runner *irfw_runner_new(void);
IRFW_EXPORT void irfw_runner_free(irfw_runner *r);

/** Set a value; the string is copied.  -1 for a value that is wrong by
 * itself (--jobs 0), logged; the syntax of AWS names is checked by
 * irfw_runner_load(). */
IRFW_EXPORT int irfw_runner_set(irfw_runner *r, irfw_setting what, const char *value);
IRFW_EXPORT void irfw_runner_set_flag(irfw_runner *r, irfw_flag what, bool on);

/** Add an instance (the same one twice is handled once); -1 when `id` is
 * not an instance id (logged). */
IRFW_EXPORT int irfw_runner_add_instance(irfw_runner *r, const char *id);

/** Add the instance ids of a file, one a line ("-": standard input; blank
 * lines and lines starting with # ignored); -1 when the file cannot be
 * read or holds a word that is not an instance id (logged, with file:line;
 * the good ids are added all the same). */
IRFW_EXPORT int irfw_runner_add_instance_file(irfw_runner *r, const char *path);

/** Number of instances added. */
IRFW_EXPORT size_t irfw_runner_instance_count(const irfw_runner *r);

/** Read the configuration, load and check the plugins, initialise the
 * steps.  IRFW_RESULT_OK or IRFW_RESULT_USAGE. */
IRFW_EXPORT irfw_result irfw_runner_load(irfw_runner *r);

/** Print each instance's steps; no AWS call.  After load. */
IRFW_EXPORT irfw_result irfw_runner_plan(irfw_runner *r);

/** Handle the instances.  After load. */
IRFW_EXPORT irfw_result irfw_runner_execute(irfw_runner *r);

/** The permission preflight of `irfw check`: changes nothing, records no
 * case.  Without instances, checks the configuration and credentials only.
 * After load. */
IRFW_EXPORT irfw_result irfw_runner_check(irfw_runner *r);

/**
 * `irfw release` (ABI 1.5): put the instances back as they were before the
 * case (IRFW_SET_CASE_ID, required) quarantined them, from its record: each
 * step's `release` callback, in reverse pipeline order, each reading AWS
 * back before it says OK.  Refused (IRFW_RESULT_USAGE, nothing changed)
 * without --case-id, for an instance without a record of the case (unless
 * IRFW_FLAG_FORCE with IRFW_SET_RESTORE_GROUPS), and while a record is open
 * in another process.  Journaled in the case (steps "release:NAME") and
 * resumable: a second release does only what the first left.  With
 * IRFW_FLAG_DRY_RUN, EC2 changes carry DryRun, others are not sent, and no
 * record is written.  IRFW_RESULT_OK: every instance released;
 * IRFW_RESULT_STEP_FAILED: a release step failed; IRFW_RESULT_NOT_HANDLED:
 * an instance not found or terminated.  After load.
 */
IRFW_EXPORT irfw_result irfw_runner_release(irfw_runner *r);

/** How irfw_runner_plugins() describes a plugin. */
typedef enum irfw_describe {
	IRFW_DESCRIBE_AS_TEXT = 0, /* for a terminal */
	IRFW_DESCRIBE_AS_MAN,      /* roff: the plugin's section of irfw.ini(5) */
	IRFW_DESCRIBE_AS_INI,      /* a documented section of a site file */
	IRFW_DESCRIBE_AS_MAN_PAGE  /* (ABI 1.7) roff: a complete page, irfw-NAME(7) */
} irfw_describe;

/** `irfw plugins`: list the plugins of the search path (and any module
 * that would be refused), or describe one (`name`; "irfw" for the [irfw]
 * section).  Needs no configuration; uses one when set.  With
 * IRFW_FLAG_JSON the list or the description is one JSON document
 * (`how` then does not matter). */
IRFW_EXPORT irfw_result irfw_runner_plugins(irfw_runner *r, const char *name, irfw_describe how);

/** `irfw policy`: the least-privilege IAM policy of the pipeline, from the
 * plugins' declared actions, as a JSON document on standard output.  No
 * AWS call.  After load. */
IRFW_EXPORT irfw_result irfw_runner_policy(irfw_runner *r);

/** `irfw verify PATH` (ABI 1.6): re-check a case record, PATH being one
 * instance folder (<evidence_dir>/<case>/<instance>) or a case folder (each
 * instance folder in it): every artifact hashed again against manifest.json,
 * journal.jsonl's hash chain, replaying the journal gives the manifest; with
 * `s3`, each uploaded copy compared by HeadObject (size, SHA-256 checksum,
 * ETag, version, SSE-KMS key) and the uploaded manifest read back (the
 * journal head it quotes must be a line of the local chain).  Prints a table
 * per instance (artifact, local, chain, s3), or one JSON document with
 * IRFW_FLAG_JSON.  For `s3` it uses the region (else the one the upload
 * recorded for the bucket), the profile and, when a site file is set, its
 * [irfw] endpoint_url, ca_file and s3_path_style; needs no load.
 * IRFW_RESULT_OK when everything matches, IRFW_RESULT_STEP_FAILED when
 * anything does not match or could not be checked, IRFW_RESULT_USAGE when
 * PATH holds no case record. */
IRFW_EXPORT irfw_result irfw_runner_verify(irfw_runner *r, const char *path, bool s3);

/** Interrupting a run (ABI 1.7).  Call it from a SIGINT or SIGTERM
 * handler (it is async-signal-safe and process-wide): the first call stops
 * the run from starting new steps, those in flight finish or time out and
 * are recorded, and irfw_runner_execute() returns with the summary printed
 * (the command that resumes the case in it); a second call abandons the
 * AWS calls in flight, whose steps are recorded as interrupted (redone on
 * resume), and ends the process 10 s later if they are not done. */
IRFW_EXPORT void irfw_runner_interrupt(int sig);

/** The signal that interrupted the runner's run (irfw_runner_interrupt),
 * or 0.  The irfw command exits with 128 + it. */
IRFW_EXPORT int irfw_runner_interrupted(const irfw_runner *r);

/** Log level of the process (IRFW_LOG_ERROR .. IRFW_LOG_DEBUG), and colour
 * on standard error. */
IRFW_EXPORT void irfw_set_log_level(irfw_log_level level);
IRFW_EXPORT void irfw_set_log_color(bool on);

/** The package version ("0.1.0"). */
IRFW_EXPORT const char *irfw_version(void);

#ifdef __cplusplus
}
#endif
#endif /* IRFW_RUNNER_H */
