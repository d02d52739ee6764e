/*
 * main.c - the irfw command: parses the command line and hands the work to
 * libirfw.  Exit status: 0 every step OK or SKIPPED, 1 a step FAILED, 2 a
 * usage or configuration error (nothing changed), 3 an instance was not
 * found or is terminated, 4 an instance is not (fully) contained; 130 and
 * 143: interrupted by SIGINT or SIGTERM (resume with --case-id).
 */
#define _GNU_SOURCE
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "irfw/runner.h"

#ifndef IRFW_SYSCONFDIR
#define IRFW_SYSCONFDIR "/etc"
#endif

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: irfw [OPTIONS] -i INSTANCE_ID [-i INSTANCE_ID ...]\n"
	        "       irfw check [OPTIONS] [-i INSTANCE_ID ...]\n"
	        "       irfw plugins [--describe NAME [--man|--man-section|--ini]] [--conf FILE]\n"
	        "       irfw policy [--release] [--conf FILE]   the pipeline's least-privilege IAM policy\n"
	        "       irfw release --case-id ID -i INSTANCE_ID [-i ...] [--dry-run] [--unprotect]\n"
	        "                    [--force --restore-groups SG[,SG]]\n"
	        "       irfw verify CASE_DIR [--s3] [-o json]   re-check a case record\n"
	        "\n"
	        "Contain, preserve, protect, tag and report compromised EC2 instances, running\n"
	        "the site's pipeline of action plugins for each instance.\n"
	        "\n"
	        "Targets:\n"
	        "  -i, --iid ID           instance to handle (repeatable; i- and 8 or 17 hex digits)\n"
	        "  -f, --from-file FILE   read instance ids from FILE, one a line ('-' for stdin)\n"
	        "      --filter N=V[,V]   the instances DescribeInstances finds with this filter\n"
	        "                         (tag:app=web, vpc-id=vpc-1, instance-state-name=running;\n"
	        "                         repeatable, all must match); listed and confirmed first\n"
	        "      --finding FILE     the instances a GuardDuty or Security Hub finding names (its\n"
	        "                         EventBridge event, or a JSON array of them; '-' for stdin)\n"
	        "  -y, --yes              handle --filter's matches without asking\n"
	        "\n"
	        "Configuration:\n"
	        "  -c, --conf FILE        site configuration (default %s/irfw/irfw.ini,\n"
	        "                         then conf/irfw.ini when run from the source tree)\n"
	        "  -r, --region REGION    AWS region (else [irfw] region, AWS_REGION,\n"
	        "                         AWS_DEFAULT_REGION, the profile's region, IMDS)\n"
	        "  -p, --profile NAME     AWS profile from ~/.aws/config and ~/.aws/credentials\n"
	        "  -g, --sgid SG          quarantine security group to use\n"
	        "  -b, --bucket BUCKET    evidence bucket\n"
	        "  -t, --topic ARN        SNS topic for notifications\n"
	        "      --case-id ID       case to record into; an existing case is resumed\n"
	        "      --evidence-dir DIR where case records are kept (else $IRFW_EVIDENCE_DIR,\n"
	        "                         [irfw] evidence_dir, " IRFW_CASESDIR ")\n"
	        "\n"
	        "What to do:\n"
	        "      --plan             print each instance's steps and exit; no AWS call\n"
	        "  -n, --dry-run          ask AWS with DryRun where the API has it; change nothing\n"
	        "      --only STEPS       run only these steps (comma-separated)\n"
	        "      --skip STEPS       do not run these steps\n"
	        "      --no-resume        repeat steps an earlier run of the case already did\n"
	        "  -j, --jobs N           instances handled in parallel (default: [irfw] jobs)\n"
	        "\n"
	        "Output:\n"
	        "  -o, --output FORMAT    text (default) or json (one document on stdout, its\n"
	        "                         \"format\" key naming its kind and version)\n"
	        "      --color WHEN       colour on standard error: auto (default: a terminal,\n"
	        "                         unless NO_COLOR is set and not empty or TERM=dumb),\n"
	        "                         always or never\n"
	        "      --events FILE      JSON-lines events as they happen (step begin/end,\n"
	        "                         instance done, run done); '-' for stdout\n"
	        "                         (the text report then goes to standard error)\n"
	        "  -v, --verbose          more detail: every AWS call with status, request id, ms\n"
	        "  -q, --quiet            errors only\n"
	        "  -V, --version          print the version\n"
	        "  -h, --help             this help\n"
	        "\n"
	        "release (undo a case's quarantine from its record, last step first):\n"
	        "      --unprotect        also undo protect (termination and stop protection,\n"
	        "                         shutdown behaviour, volumes kept); snapshots stay\n"
	        "      --restore-groups SG[,SG]  the groups every interface gets back\n"
	        "      --force            release an instance without a record of the case\n"
	        "                         (needs --restore-groups)\n"
	        "\n"
	        "plugins:\n"
	        "      --describe NAME    options of plugin NAME ('irfw' for the [irfw] section)\n"
	        "      --man              with --describe: the plugin's man page, irfw-NAME(7)\n"
	        "      --man-section      with --describe: its section of irfw.ini(5) (roff)\n"
	        "      --ini              with --describe: a documented site-file section\n"
	        "                         (--man, --man-section and --ini: one at most)\n"
	        "\n"
	        "policy:\n"
	        "      --release          also what 'irfw release' calls: one policy for both\n"
	        "\n"
	        "verify:\n"
	        "      --s3               also compare the uploaded copies (HeadObject: size,\n"
	        "                         checksum, ETag, version, KMS key; the manifest read back)\n"
	        "                         with -r, -p and the site file's endpoint settings\n"
	        "  CASE_DIR is <evidence_dir>/<case>[/<instance>]; exit 0 when every artifact,\n"
	        "  the journal's hash chain and the manifest match, 1 on any mismatch or what\n"
	        "  could not be checked, 2 when CASE_DIR holds no case record.\n"
	        "\n"
	        "Exit status: 0 all steps ok or skipped; 4 an instance is not (fully)\n"
	        "contained; else 1 a step failed; else 3 an instance was not found or is\n"
	        "terminated; 2 usage or configuration error (nothing was changed);\n"
	        "130/143 interrupted by SIGINT/SIGTERM (the summary says how to resume).\n"
	        "release: 0 every instance released, 1 a release step failed, 2 refused\n"
	        "(usage, no case record, case open elsewhere; nothing was changed), 3 an\n"
	        "instance was not found or is terminated.\n"
	        "See irfw(1) and irfw.ini(5).\n",
	        IRFW_SYSCONFDIR);
}

static bool file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* The build tree this binary runs from (libtool puts the real binary in
 * .libs/; configure leaves config.status at the top of the tree), or false
 * for an installed binary. */
static bool build_tree(char *out, size_t len)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = '\0';
	size_t dl = strlen(exe);
	if (dl >= 6 && strcmp(exe + dl - 6, "/.libs") == 0)
		exe[dl - 6] = '\0';
	char marker[4200];
	snprintf(marker, sizeof(marker), "%s/config.status", exe);
	if (!file_exists(marker))
		return false;
	snprintf(out, len, "%s", exe);
	return true;
}

/* conf/irfw.ini of the working directory, only for a binary of a build
 * tree inside that directory (the source tree and its build/): an
 * installed irfw run from a cloned repository, a scratch folder or an
 * evidence share must never load a configuration (and so plugins) that
 * someone else put there. */
static bool source_tree_conf(const char *build)
{
	char cwd[4096], real_build[4096];
	if (!getcwd(cwd, sizeof(cwd)) || !realpath(build, real_build) || !file_exists("conf/irfw.ini"))
		return false;
	size_t n = strlen(cwd);
	return strncmp(real_build, cwd, n) == 0 && (real_build[n] == '\0' || real_build[n] == '/');
}

/* The one place where a run's result becomes an exit status (irfw(1)). */
static int exit_status(irfw_result res)
{
	switch (res) {
	case IRFW_RESULT_OK:
		return 0;
	case IRFW_RESULT_STEP_FAILED:
		return 1;
	case IRFW_RESULT_USAGE:
		return 2;
	case IRFW_RESULT_NOT_HANDLED:
		return 3;
	case IRFW_RESULT_NOT_CONTAINED:
		return 4;
	}
	return 2;
}

/* SIGINT and SIGTERM: the handler only tells the runner (a flag and a
 * byte on a self-pipe, async-signal-safe); the run stops starting steps,
 * records them and prints the summary with the command that resumes the
 * case, and irfw exits 130 or 143.  A signal ignored when irfw started (a
 * background job of a non-interactive shell) stays ignored. */
static void on_signal(int sig)
{
	irfw_runner_interrupt(sig);
}

static void signal_setup(void)
{
	static const int sigs[] = {SIGINT, SIGTERM};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old, sa;
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		sigaction(sigs[i], &sa, NULL);
	}
}

int main(int argc, char **argv)
{
	enum {
		OPT_PLAN = 256,
		OPT_CASE,
		OPT_ONLY,
		OPT_SKIP,
		OPT_DESCRIBE,
		OPT_MAN,
		OPT_INI,
		OPT_NO_RESUME,
		OPT_EVIDENCE,
		OPT_EVENTS,
		OPT_FILTER,
		OPT_FINDING,
		OPT_FORCE,
		OPT_UNPROTECT,
		OPT_RESTORE_GROUPS,
		OPT_S3,
		OPT_POLICY_RELEASE,
		OPT_COLOR,
		OPT_MAN_SECTION
	};
	static const struct option longopts[] = {
	    {"iid", required_argument, NULL, 'i'},
	    {"from-file", required_argument, NULL, 'f'},
	    {"conf", required_argument, NULL, 'c'},
	    {"region", required_argument, NULL, 'r'},
	    {"profile", required_argument, NULL, 'p'},
	    {"sgid", required_argument, NULL, 'g'},
	    {"bucket", required_argument, NULL, 'b'},
	    {"topic", required_argument, NULL, 't'},
	    {"case-id", required_argument, NULL, OPT_CASE},
	    {"plan", no_argument, NULL, OPT_PLAN},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"only", required_argument, NULL, OPT_ONLY},
	    {"skip", required_argument, NULL, OPT_SKIP},
	    {"jobs", required_argument, NULL, 'j'},
	    {"output", required_argument, NULL, 'o'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {"describe", required_argument, NULL, OPT_DESCRIBE},
	    {"man", no_argument, NULL, OPT_MAN},
	    {"no-resume", no_argument, NULL, OPT_NO_RESUME},
	    {"evidence-dir", required_argument, NULL, OPT_EVIDENCE},
	    {"events", required_argument, NULL, OPT_EVENTS},
	    {"filter", required_argument, NULL, OPT_FILTER},
	    {"finding", required_argument, NULL, OPT_FINDING},
	    {"yes", no_argument, NULL, 'y'},
	    {"ini", no_argument, NULL, OPT_INI},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"unprotect", no_argument, NULL, OPT_UNPROTECT},
	    {"restore-groups", required_argument, NULL, OPT_RESTORE_GROUPS},
	    {"s3", no_argument, NULL, OPT_S3},
	    {"release", no_argument, NULL, OPT_POLICY_RELEASE},
	    {"color", required_argument, NULL, OPT_COLOR},
	    {"colour", required_argument, NULL, OPT_COLOR},
	    {"man-section", no_argument, NULL, OPT_MAN_SECTION},
	    {NULL, 0, NULL, 0},
	};
	irfw_runner *r = irfw_runner_new();
	if (!r) {
		fprintf(stderr, "irfw: out of memory\n");
		return 2;
	}
	int verbosity = IRFW_LOG_INFO, opt;
	irfw_result res = IRFW_RESULT_OK;
	int interrupted = 0;
	bool man = false, man_section = false, ini = false, plan = false, have_conf = false,
	     have_evidence = false, have_events = false, done = false;
	bool release_opt = false;
	bool s3 = false, policy_release = false;
	const char *color = "auto";
	const char *describe = NULL;
	char **from_files = NULL;
	size_t n_from = 0;
	char **ids = NULL;
	size_t n_ids = 0;
	static const struct {
		int opt;
		irfw_setting what;
	} settings[] = {{'c', IRFW_SET_CONF},
	                {'r', IRFW_SET_REGION},
	                {'p', IRFW_SET_PROFILE},
	                {'g', IRFW_SET_SGID},
	                {'b', IRFW_SET_BUCKET},
	                {'t', IRFW_SET_TOPIC},
	                {OPT_CASE, IRFW_SET_CASE_ID},
	                {OPT_ONLY, IRFW_SET_ONLY},
	                {OPT_SKIP, IRFW_SET_SKIP},
	                {OPT_EVIDENCE, IRFW_SET_EVIDENCE_DIR},
	                {'j', IRFW_SET_JOBS},
	                {OPT_EVENTS, IRFW_SET_EVENTS},
	                {OPT_FILTER, IRFW_SET_FILTER},
	                {OPT_FINDING, IRFW_SET_FINDING},
	                {OPT_RESTORE_GROUPS, IRFW_SET_RESTORE_GROUPS}};

	int stdin_uses = 0;
	while (!done && (opt = getopt_long(argc, argv, "i:f:c:r:p:g:b:t:nj:o:vqVhy", longopts, NULL)) != -1) {
		bool setting = false;
		/* Standard input can be read once: name the clash instead of a
		 * second reader finding it empty. */
		if ((opt == 'f' || opt == OPT_FINDING) && optarg && strcmp(optarg, "-") == 0 &&
		    ++stdin_uses > 1) {
			fprintf(stderr,
			        "irfw: '-' (standard input) is given twice (--from-file, --finding): it "
			        "can be read once; give the other a file\n");
			res = IRFW_RESULT_USAGE;
			done = true;
			break;
		}
		for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
			if (settings[i].opt == opt) {
				setting = true;
				if (irfw_runner_set(r, settings[i].what, optarg) != 0)
					res = IRFW_RESULT_USAGE;
			}
		have_conf = have_conf || opt == 'c';
		have_evidence = have_evidence || opt == OPT_EVIDENCE;
		have_events = have_events || opt == OPT_EVENTS;
		release_opt =
		    release_opt || opt == OPT_FORCE || opt == OPT_UNPROTECT || opt == OPT_RESTORE_GROUPS;
		if (setting)
			continue;
		switch (opt) {
		case 'i':
		case 'f': {
			char ***v = opt == 'i' ? &ids : &from_files;
			size_t *n = opt == 'i' ? &n_ids : &n_from;
			char **grown = realloc(*v, (*n + 1) * sizeof(**v));
			if (!grown) {
				res = IRFW_RESULT_USAGE;
				done = true;
				break;
			}
			*v = grown;
			(*v)[(*n)++] = optarg;
			break;
		}
		case OPT_PLAN:
			plan = true;
			break;
		case 'n':
			irfw_runner_set_flag(r, IRFW_FLAG_DRY_RUN, true);
			break;
		case 'y':
			irfw_runner_set_flag(r, IRFW_FLAG_YES, true);
			break;
		case OPT_NO_RESUME:
			irfw_runner_set_flag(r, IRFW_FLAG_NO_RESUME, true);
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0)
				irfw_runner_set_flag(r, IRFW_FLAG_JSON, true);
			else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr, "irfw: --output takes text or json\n");
				res = IRFW_RESULT_USAGE;
			}
			break;
		case 'v':
			verbosity++;
			break;
		case 'q':
			verbosity = IRFW_LOG_ERROR;
			break;
		case 'V':
			printf("irfw %s (plugin ABI %d.%d)\n", irfw_version(), IRFW_ABI_MAJOR,
			       IRFW_ABI_MINOR);
			done = true;
			break;
		case 'h':
			usage(stdout);
			done = true;
			break;
		case OPT_DESCRIBE:
			describe = optarg;
			break;
		case OPT_MAN:
			man = true;
			break;
		case OPT_INI:
			ini = true;
			break;
		case OPT_FORCE:
			irfw_runner_set_flag(r, IRFW_FLAG_FORCE, true);
			break;
		case OPT_UNPROTECT:
			irfw_runner_set_flag(r, IRFW_FLAG_UNPROTECT, true);
			break;
		case OPT_S3:
			s3 = true;
			break;
		case OPT_POLICY_RELEASE:
			policy_release = true;
			irfw_runner_set_flag(r, IRFW_FLAG_POLICY_RELEASE, true);
			break;
		case OPT_MAN_SECTION:
			man_section = true;
			break;
		case OPT_COLOR:
			if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "always") != 0 &&
			    strcmp(optarg, "never") != 0) {
				fprintf(stderr, "irfw: --color takes auto, always or never\n");
				res = IRFW_RESULT_USAGE;
			}
			color = optarg;
			break;
		default:
			fprintf(stderr, "Try 'irfw --help'.\n");
			res = IRFW_RESULT_USAGE;
			done = true;
			break;
		}
	}
	if (done)
		goto out;
	signal_setup();
	irfw_set_log_level(verbosity > IRFW_LOG_DEBUG ? IRFW_LOG_DEBUG : (irfw_log_level)verbosity);
	/* Colour as no-color.org asks: NO_COLOR set and not empty turns it
	 * off, an empty one does not; a dumb terminal gets none either;
	 * --color=always and never override both. */
	const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");
	bool dumb = term && strcmp(term, "dumb") == 0;
	bool tty = isatty(STDERR_FILENO);
	irfw_set_log_color(strcmp(color, "always") == 0 ||
	                   (strcmp(color, "auto") == 0 && tty && !(no_color && *no_color) && !dumb));
	/* A terminal gets one live status line instead of a line per step
	 * (not a dumb one: the line is redrawn with an escape sequence). */
	irfw_runner_set_flag(r, IRFW_FLAG_PROGRESS, tty && !dumb && verbosity == IRFW_LOG_INFO);
	const char *env_evidence = getenv("IRFW_EVIDENCE_DIR");
	if (!have_evidence && env_evidence && *env_evidence)
		irfw_runner_set(r, IRFW_SET_EVIDENCE_DIR, env_evidence);

	const char *cmd = optind < argc ? argv[optind++] : NULL;
	if (cmd && strcmp(cmd, "check") != 0 && strcmp(cmd, "plugins") != 0 && strcmp(cmd, "policy") != 0 &&
	    strcmp(cmd, "release") != 0 && strcmp(cmd, "verify") != 0) {
		fprintf(stderr,
		        "irfw: unknown command '%s' (commands: check, plugins, policy, release, verify)\nTry "
		        "'irfw "
		        "--help'.\n",
		        cmd);
		res = IRFW_RESULT_USAGE;
		goto out;
	}
	if (have_events && cmd && strcmp(cmd, "check") != 0) {
		fprintf(stderr,
		        "irfw: --events belongs to a quarantine run and 'irfw check', not to "
		        "'irfw %s'\n",
		        cmd);
		res = IRFW_RESULT_USAGE;
		goto out;
	}
	if (s3 && !(cmd && strcmp(cmd, "verify") == 0)) {
		fprintf(stderr, "irfw: --s3 belongs to 'irfw verify'\n");
		res = IRFW_RESULT_USAGE;
		goto out;
	}
	if (cmd && strcmp(cmd, "verify") == 0) {
		/* verify reads a case folder: no instance, no pipeline, no plugin. */
		if (optind + 1 != argc || n_ids || n_from) {
			fprintf(stderr,
			        "irfw: verify takes one CASE_DIR (<evidence_dir>/<case>[/<instance>])\n"
			        "Try 'irfw --help'.\n");
			res = IRFW_RESULT_USAGE;
			goto out;
		}
		if (res == IRFW_RESULT_OK)
			res = irfw_runner_verify(r, argv[optind], s3);
		goto out;
	}
	if (optind < argc) {
		fprintf(stderr, "irfw: unexpected argument '%s'\nTry 'irfw --help'.\n", argv[optind]);
		res = IRFW_RESULT_USAGE;
		goto out;
	}
	if (res != IRFW_RESULT_OK)
		goto out;
	bool plugins_cmd = cmd && strcmp(cmd, "plugins") == 0;
	bool check_cmd = cmd && strcmp(cmd, "check") == 0;
	bool policy_cmd = cmd && strcmp(cmd, "policy") == 0;
	bool release_cmd = cmd && strcmp(cmd, "release") == 0;
	if (release_opt && !release_cmd) {
		fprintf(stderr, "irfw: --force, --unprotect and --restore-groups belong to 'irfw release'\n");
		res = IRFW_RESULT_USAGE;
		goto out;
	}
	if (policy_release && !policy_cmd) {
		fprintf(stderr, "irfw: --release belongs to 'irfw policy' (the command is 'irfw release')\n");
		res = IRFW_RESULT_USAGE;
		goto out;
	}
	if (release_cmd && plan) {
		fprintf(stderr, "irfw: release has no --plan: use release --dry-run\n");
		res = IRFW_RESULT_USAGE;
		goto out;
	}
	if ((describe || man || man_section || ini) && !plugins_cmd) {
		fprintf(stderr,
		        "irfw: --describe, --man, --man-section and --ini belong to 'irfw plugins'\n");
		res = IRFW_RESULT_USAGE;
		goto out;
	}
	/* --man, --man-section and --ini each choose what --describe prints:
	 * two of them would leave one silently unused. */
	if (man + man_section + ini > 1) {
		fprintf(stderr,
		        "irfw: %s%s%s%s%s are alternatives: give one of --man, --man-section, --ini\n"
		        "Try 'irfw --help'.\n",
		        man ? "--man" : "",
		        man && (man_section || ini) ? (man_section && ini ? ", " : " and ") : "",
		        man_section ? "--man-section" : "", man_section && ini ? " and " : "",
		        ini ? "--ini" : "");
		res = IRFW_RESULT_USAGE;
		goto out;
	}

	/* Instance ids are checked before anything else is done. */
	for (size_t i = 0; i < n_ids; i++)
		if (irfw_runner_add_instance(r, ids[i]) != 0)
			res = IRFW_RESULT_USAGE;
	for (size_t i = 0; i < n_from; i++)
		if (irfw_runner_add_instance_file(r, from_files[i]) != 0)
			res = IRFW_RESULT_USAGE;
	if (res != IRFW_RESULT_OK)
		goto out;
	if (!plugins_cmd && !check_cmd && !policy_cmd && irfw_runner_instance_count(r) == 0) {
		fprintf(stderr, "irfw: no instance given: use -i INSTANCE_ID, --from-file FILE, --filter "
		                "NAME=VALUES or --finding FILE\n"
		                "Try 'irfw --help'.\n");
		res = IRFW_RESULT_USAGE;
		goto out;
	}

	char default_conf[4096], build[4096];
	bool in_build_tree = build_tree(build, sizeof(build));
	bool conf_fallback = false;
	if (!have_conf) {
		snprintf(default_conf, sizeof(default_conf), "%s/irfw/irfw.ini", IRFW_SYSCONFDIR);
		if (file_exists(default_conf)) {
			irfw_runner_set(r, IRFW_SET_CONF, default_conf);
		} else if (in_build_tree && source_tree_conf(build)) {
			/* Run from the source tree: its sample site and its plugins. */
			irfw_runner_set(r, IRFW_SET_CONF, "conf/irfw.ini");
			conf_fallback = true;
		} else if (!plugins_cmd) {
			fprintf(
			    stderr,
			    "irfw: no configuration: looked for %s%s; give one with --conf FILE (the "
			    "documented sample is conf/irfw.ini of the source)%s\n",
			    default_conf, in_build_tree ? " and conf/irfw.ini of the source tree" : "",
			    in_build_tree
			        ? ""
			        : "; an installed irfw never reads conf/irfw.ini from the working folder");
			res = IRFW_RESULT_USAGE;
			goto out;
		}
	}
	if (conf_fallback && !getenv("IRFW_PLUGIN_PATH")) {
		/* From the source tree: the plugins of the build tree this binary
		 * belongs to (in-tree, or an out-of-tree build such as build/). */
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s/plugins", build);
		if (file_exists(dir))
			setenv("IRFW_PLUGIN_PATH", dir, 1);
	}

	if (plugins_cmd)
		res = irfw_runner_plugins(r, describe,
		                          man           ? IRFW_DESCRIBE_AS_MAN_PAGE
		                          : man_section ? IRFW_DESCRIBE_AS_MAN
		                          : ini         ? IRFW_DESCRIBE_AS_INI
		                                        : IRFW_DESCRIBE_AS_TEXT);
	else if ((res = irfw_runner_load(r)) != IRFW_RESULT_OK)
		; /* the reasons are logged */
	else if (policy_cmd)
		res = irfw_runner_policy(r);
	else if (release_cmd)
		res = irfw_runner_release(r);
	else if (plan)
		res = irfw_runner_plan(r);
	else if (check_cmd)
		res = irfw_runner_check(r);
	else
		res = irfw_runner_execute(r);
	interrupted = irfw_runner_interrupted(r);
out:
	free(ids);
	free(from_files);
	irfw_runner_free(r);
	return interrupted ? 128 + interrupted : exit_status(res);
}
