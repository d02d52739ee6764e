/*
 * run.h - the engine's objects behind the SDK's opaque handles (a run, its
 * steps, its batch of targets and their results), and the run's life:
 * load, plan, execute, free (run.c; runner.c drives it).
 */
#ifndef IRFW_RUN_H
#define IRFW_RUN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "irfw/irfw.h"
#include "aws/client.h"
#include "loader.h"
#include "siteconf.h"

struct irfw_case;
struct irfw_calls_pool;
struct irfw_together;
struct irfw_aws;

struct irfw_run;

struct irfw_step {
	struct irfw_run *run;
	char *name;               /* section name */
	struct irfw_section *sec; /* may be NULL when the section is absent */
	struct irfw_module *mod;
	void *state;
	bool initialised;
	bool stop_on_error;
	bool init_failed;
	irfw_phase phase; /* the plugin's, or the section's `phase =` */
};

struct irfw_fact {
	char *key, *value;
};

/* One step's containment report (irfw_containment_report). */
struct irfw_cont_report {
	char *step;
	irfw_containment state;
	char *cause;
};

struct irfw_step_result {
	const char *step; /* points into irfw_step */
	const char *plugin;
	irfw_status status;
	char *detail;
	char *aws_error; /* "Code: message" or NULL */
	char *request_id;
	cJSON *request_ids; /* every request id of the step's calls */
	cJSON *unchecked;   /* dry run: changes not sent ("sns:Publish") */
	bool not_checked;   /* `irfw check` of a plugin without check */
	char *record_error; /* first irfw_record() that failed: the step fails */
	long ms;
	irfw_phase phase; /* the step's */
	bool resumed;     /* done in an earlier run of this case */
	bool ran;         /* false: not reached (an earlier stop) */
	bool interrupted; /* begun, and its calls abandoned by a second signal */
};

/* A target's last call: what irfw_aws_error_code() and friends answer. */
struct irfw_call_state {
	struct irfw_aws_error err;       /* last failed call */
	struct irfw_aws_error first_err; /* first failed call of the current step */
	char last_request_id[128];
	char err_service[32], err_operation[64]; /* of err */
};

struct irfw_target {
	struct irfw_run *run;
	char *id;
	cJSON *instance; /* owned copy of the DescribeInstances item */
	char *vpc_id, *name_tag;
	bool found;
	struct irfw_case *rec; /* open while the instance has steps to run */
	/* The record's folder and manifest.json, kept when the record is
	 * closed (the instance is finished) for the report; NULL: none. */
	char *case_dir, *manifest_path;
	struct irfw_fact *facts;
	size_t n_facts;
	struct irfw_step_result *results;
	size_t n_results;
	struct irfw_step *cur; /* step running now */
	struct irfw_step_result *cur_res;
	struct irfw_call_state calls;  /* through irfw_target_calls() only */
	char *notes;                   /* accumulated irfw_note text */
	char *state;                   /* instance-state name, or NULL */
	struct irfw_cont_report *cont; /* reports of this run and earlier ones */
	size_t n_cont;
	char *cont_cause;   /* last irfw_target_containment() cause */
	bool skipped_state; /* terminated or shutting down: not handled */
	size_t index;       /* in the batch */
	size_t next_step;   /* scheduler: the step its next item runs */
	bool repeating;     /* the current step was done in an earlier run */
};

struct irfw_memo_entry {
	char *key;
	char *value;
	bool busy;
};

/* The live status line's state (progress.c). */
struct irfw_progress {
	int on;          /* asked for: standard error is a terminal */
	int active;      /* drawn now */
	int saved_level; /* the log level before the line took over */
	size_t total;
	double started, drawn;
};

struct irfw_batch {
	struct irfw_run *run;
	struct irfw_target **targets;
	size_t n;
};

/* Everything a run needs: the parsed options, the configuration, modules,
 * steps, the AWS client and the batch. */
struct irfw_run {
	/* From the command line (may be NULL). */
	const char *conf_path;
	const char *region, *profile, *bucket, *topic, *sgid, *case_id;
	const char *events_path; /* --events */
	char **filters;          /* --filter NAME=VALUES, each */
	size_t n_filters;
	cJSON *findings;              /* --finding: instance id -> [{id, type, source, title}] */
	bool yes;                     /* --yes: no confirmation of --filter's matches */
	const char *evidence_dir_opt; /* --evidence-dir, else $IRFW_EVIDENCE_DIR */
	bool plan, dry_run, no_resume;
	bool policy_release; /* irfw policy --release: also what release callbacks call */
	bool releasing;      /* irfw release: summaries and ${outcome} are the release's */
	long jobs;
	char **only, **skip;

	struct irfw_config cfg;
	struct irfw_section *global;
	struct irfw_loader loader;
	struct irfw_step **steps;
	size_t n_steps;

	char *resolved_region;
	char *account_id, *caller_arn;
	char *case_id_resolved;
	char *evidence_dir;
	time_t started;

	struct irfw_aws *aws;
	struct irfw_batch batch;

	pthread_mutex_t memo_lock;
	pthread_cond_t memo_cond;
	pthread_mutex_t prepare_lock; /* a target's record and facts, while prepares run at once */
	struct irfw_memo_entry *memo;
	size_t n_memo;

	FILE *events; /* --events, or NULL */
	unsigned long event_seq;
	struct irfw_progress progress;
	bool usage_error;                /* a command-line value was refused */
	bool preparing;                  /* in the steps' prepare callbacks */
	atomic_bool prepare_usage_error; /* irfw_step_error() called from prepare */

	struct irfw_calls_pool *calls_pool; /* irfw_calls' threads (sdk_calls.c), or NULL */
	struct irfw_together *together;     /* irfw_aws_call_together's (sdk_together.c), or NULL */

	char run_id[40]; /* this run's id: UTC time and random hex */
	int interrupted; /* SIGINT or SIGTERM stopped it early, or 0 */
	bool abandoned;  /* a second signal abandoned the calls in flight */
};

/* A global key's value: CLI override first, then [irfw], then the default. */
const char *irfw_run_global(const struct irfw_run *r, const char *key);

/* What a run ended with (runner.c turns it into an irfw_result). */
enum irfw_run_status {
	IRFW_RUN_OK = 0,
	IRFW_RUN_STEP_FAILED = 1,
	IRFW_RUN_USAGE = 2,
	IRFW_RUN_NOT_HANDLED = 3,
	IRFW_RUN_NOT_CONTAINED = 4
};

int irfw_run_init(struct irfw_run *r);
/* Load configuration and plugins, validate, init steps. */
int irfw_run_load(struct irfw_run *r, bool init_steps);
int irfw_run_add_target(struct irfw_run *r, const char *id);
/* Print each target's steps; no AWS call. */
int irfw_run_plan(struct irfw_run *r, bool json);
/* The whole run (or `irfw check`). */
int irfw_run_execute(struct irfw_run *r, bool json, bool check_only);
/* The AWS client from the command line and [irfw], then who is acting
 * (GetCallerIdentity: r->account_id, r->caller_arn), logged.  IRFW_RUN_OK,
 * IRFW_RUN_USAGE (bad settings, refused credentials) or
 * IRFW_RUN_STEP_FAILED. */
int irfw_run_connect(struct irfw_run *r);

/* The case record says step `s` is done for `t` and this run does not
 * repeat it (not released since, no --no-resume, not a dry run). */
bool irfw_step_done_before(const struct irfw_target *t, const struct irfw_step *s);
/* The step t is in: the one this thread prepares (prepares run at once,
 * each on its own thread, so t->cur cannot say), else t->cur. */
struct irfw_step *irfw_target_cur(const struct irfw_target *t);
/* The client's flags (IRFW_AWS_REQ_*) for a call a plugin makes on t with
 * `call_flags` (IRFW_CALL_*): with the urgency of the step's phase, so
 * containment goes first where calls wait for the same bucket. */
unsigned irfw_target_req_flags(const struct irfw_target *t, unsigned call_flags);
/* t's call state: in a prepare, this thread's own for t (prepares of
 * several steps may call AWS on the same target at once), else t->calls. */
struct irfw_call_state *irfw_target_calls(const struct irfw_target *t);
/* Around what changes or reads a target's record or facts: prepares of
 * several steps may reach the same target at once (no-ops outside them). */
void irfw_prepare_enter(struct irfw_run *r);
void irfw_prepare_leave(struct irfw_run *r);

/* DescribeInstances for the batch (1000 ids a call, the instance-id filter
 * for what AWS does not find): each target's instance, state, VPC and Name
 * tag; `found` stays false for an id that does not exist.  0 or -1
 * (logged). */
int irfw_run_describe(struct irfw_run *r);

void irfw_run_free(struct irfw_run *r);

/* The instance is finished (the scheduler gives it no more work): its case
 * record notes the interruption by signal `sig` (0: none; `abandoned`: a
 * second signal cut calls short) or clears an earlier one, and is closed,
 * its folder and manifest path kept in case_dir and manifest_path; the
 * DescribeInstances item is freed.  No step of the target may run after. */
void irfw_target_finish(struct irfw_target *t, int sig, bool abandoned);

/* What irfw_aws_call_ex() does around a request, shared with irfw_calls
 * (sdk_aws.c), in the target's thread.  Before: in a dry run, an operation
 * the dry run does not send is listed as not checked.  After: the result
 * made neutral, the request id added to the step's, and for a failure (in
 * *e) the IAM permission named in an access refusal, the target's first
 * error kept and a debug line. */
struct irfw_aws_error;
void irfw_call_note_unchecked(struct irfw_target *t, const char *service, const char *operation);
void irfw_call_settle(struct irfw_target *t, const char *service, const char *operation, int rc, cJSON *res,
                      struct irfw_aws_error *e, const char *rid);

/* Join the threads irfw_calls_run() started for the run, and free the pool
 * (sdk_calls.c); before the run's AWS client is freed.  None: nothing. */
void irfw_calls_pool_free(struct irfw_run *r);
/* Free what irfw_aws_call_together kept for the run (sdk_together.c). */
void irfw_together_free(struct irfw_run *r);

/*
 * Interruption.  irfw_run_interrupt() is what a SIGINT or SIGTERM handler
 * calls (async-signal-safe, process-wide): the first signal stops the
 * scheduler from starting new steps (those in flight finish or time out),
 * the second abandons the AWS calls in flight (irfw_aws_abandon) and, if
 * the workers are not done 10 s later, ends the process.
 */
void irfw_run_interrupt(int sig);
/* The first signal received (0: none) and how many were. */
int irfw_run_interrupt_signal(void);
int irfw_run_interrupt_count(void);
/* The self-pipe the handler writes a byte to, read end (-1 before
 * irfw_run_interrupt_pipe() made it; 0 or -1). */
int irfw_run_interrupt_pipe(void);
int irfw_run_interrupt_fd(void);
/* Wake the reader of the pipe without a signal (the run is over). */
void irfw_run_interrupt_wake(void);
/* "SIGINT", "SIGTERM", "signal N". */
const char *irfw_signal_name(int sig, char buf[16]);

/* "contain", "preserve", "report". */
const char *irfw_phase_name(irfw_phase p);

#endif /* IRFW_RUN_H */
