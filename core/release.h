/*
 * release.h - `irfw release`: undo what a case's run did, from its case
 * record, by calling each step's `release` callback in reverse pipeline
 * order, then the `report_release` of the steps that tell of it, in
 * pipeline order (release.c; runner.c drives it).
 */
#ifndef IRFW_RELEASE_H
#define IRFW_RELEASE_H

#include <stdbool.h>

struct irfw_run;

/* What the command line adds to a run for a release. */
struct irfw_release_opts {
	bool force;                 /* release an instance without a case record */
	bool unprotect;             /* also undo protect (termination/stop protection...) */
	const char *restore_groups; /* "sg-a,sg-b": the groups every interface gets, or NULL */
};

/* The facts a release leaves for the plugins' release callbacks
 * (irfw_fact_get): the groups of --restore-groups ("sg-a,sg-b"), and
 * "true" for --unprotect and --force. */
#define IRFW_FACT_RESTORE_GROUPS "release.restore_groups"
#define IRFW_FACT_UNPROTECT      "release.unprotect"
#define IRFW_FACT_FORCE          "release.force"

struct irfw_target;

/* The release of t so far, from the results of its steps' release
 * callbacks (each read AWS back), the steps that only tell of it
 * (report_release) and the one asking left out: "released" (none
 * failed), "partially-released", "not-released" (none did anything);
 * *headline "RELEASED", "PARTIALLY RELEASED", "NOT RELEASED"; cause the
 * first failure, latest in the pipeline first, or "".  Either may be NULL. */
const char *irfw_release_state(const struct irfw_target *t, const char **headline, char *cause,
                               size_t cause_len);

/* The whole release, after irfw_run_load(): returns an irfw_run_status
 * (OK: every instance released; STEP_FAILED: a release step failed;
 * USAGE: refused before any change; NOT_HANDLED: an instance not found). */
int irfw_run_release(struct irfw_run *r, const struct irfw_release_opts *o, bool json);

#endif /* IRFW_RELEASE_H */
