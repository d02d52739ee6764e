/*
 * credentials_process.c - credentials from a profile's credential_process,
 * as botocore's ProcessProvider: the command is split into words the way a
 * POSIX shell quotes (botocore: shlex.split) and run WITHOUT a shell; its
 * standard output is one JSON object
 *   {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
 *    "Expiration": "2026-11-28T12:00:00Z"}
 * and a non-zero exit status is a failure whose standard error is the
 * reason.  The output holds secrets: it is never logged or quoted.
 */
#define _GNU_SOURCE

#include "creds_private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wordexp.h>

#include <cJSON.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "text.h"

extern char **environ;

/*
 * Words of the command.  wordexp(3) is POSIX's shell word splitter; with
 * WRDE_NOCMD it refuses command substitution and, like shlex, unquoted
 * shell operators.  It would also expand variables, ~ and wildcards, which
 * botocore leaves as they are and which the AWS CLI's documentation says
 * not to use: those characters are refused rather than read differently.
 */
static int split_command(const char *profile, const char *command, wordexp_t *we, char *err, size_t errlen)
{
	const char *bad = strpbrk(command, "$`~*?[");
	int rc;

	if (bad) {
		irfw_set_err(
		    err, errlen,
		    "profile \"%s\": credential_process contains '%c': irfw runs it without a shell, "
		    "as the AWS CLI does, so it may not use variables, ~ or wildcards (give the full "
		    "path; quote words that hold spaces with \"...\")",
		    profile, *bad);
		return -1;
	}
	rc = wordexp(command, we, WRDE_NOCMD);
	switch (rc) {
	case 0:
		break;
	case WRDE_BADCHAR:
		irfw_set_err(err, errlen,
		             "profile \"%s\": credential_process contains an unquoted | & ; < > ( ) { } or "
		             "line break: irfw runs it without a shell",
		             profile);
		return -1;
	case WRDE_SYNTAX:
		irfw_set_err(err, errlen, "profile \"%s\": credential_process has unbalanced quotes",
		             profile);
		return -1;
	case WRDE_NOSPACE:
		wordfree(we);
		irfw_set_err(err, errlen, "out of memory");
		return -1;
	default:
		irfw_set_err(err, errlen,
		             "profile \"%s\": credential_process cannot be split into words (%d)", profile,
		             rc);
		return -1;
	}
	if (we->we_wordc == 0) {
		wordfree(we);
		irfw_set_err(err, errlen, "profile \"%s\": credential_process is empty", profile);
		return -1;
	}
	return 0;
}

struct sink {
	char *p;
	size_t n, max;
	bool over;
};

/* Append, copying rather than realloc'ing so no stale secret is left. */
static int sink_add(struct sink *s, const char *data, size_t len)
{
	char *np;

	if (s->n + len > s->max) {
		s->over = true;
		len = s->max - s->n;
	}
	if (len == 0)
		return 0;
	np = malloc(s->n + len + 1);
	if (!np)
		return -1;
	if (s->p) {
		memcpy(np, s->p, s->n);
		OPENSSL_cleanse(s->p, s->n);
		free(s->p);
	}
	memcpy(np + s->n, data, len);
	s->n += len;
	np[s->n] = '\0';
	s->p = np;
	return 0;
}

/* The last non-empty line of the program's standard error, printable. */
static char *stderr_reason(const struct sink *e)
{
	char *copy, *line = NULL, *save = NULL, *out;

	if (!e->p || !*e->p)
		return NULL;
	copy = strdup(e->p);
	if (!copy)
		return NULL;
	for (char *l = strtok_r(copy, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save))
		if (*irfw_trim(l))
			line = irfw_trim(l);
	if (line && strlen(line) > 300)
		line[300] = '\0';
	out = line ? irfw_escape_text(line) : NULL;
	free(copy);
	return out;
}

/* Run argv, collecting its output and error (bounded) with a deadline.
 * Returns 0 with *status (waitpid's), or -1 with err. */
static int run(const char *profile, char *const *argv, struct sink *out, struct sink *errs, int *status,
               char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, rc, ret = -1;
	pid_t pid = -1;
	time_t deadline = time(NULL) + PROCESS_TIMEOUT_S;
	bool killed = false;

	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		irfw_set_err(err, errlen, "profile \"%s\": credential_process: pipe: %s", profile,
		             strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pe[1], STDERR_FILENO);
	/* Standard input stays the terminal's, as with the SDKs. */
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (rc != 0) {
		char *shown = irfw_escape_text(argv[0]);

		irfw_set_err(err, errlen, "profile \"%s\": credential_process: cannot run %s: %s", profile,
		             shown ? shown : "?", strerror(rc));
		free(shown);
		pid = -1;
		goto out;
	}
	for (;;) {
		struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
		long left = (long)(deadline - time(NULL));
		char buf[4096];
		int n;

		if (po[0] < 0 && pe[0] < 0)
			break;
		if (left <= 0) {
			killed = true;
			break;
		}
		n = poll(pf, 2, (int)(left > 1 ? 1000 : left * 1000));
		if (n < 0 && errno != EINTR) {
			irfw_set_err(err, errlen, "profile \"%s\": credential_process: poll: %s", profile,
			             strerror(errno));
			killed = true;
			break;
		}
		for (int i = 0; n > 0 && i < 2; i++) {
			int *fd = i == 0 ? &po[0] : &pe[0];
			struct sink *s = i == 0 ? out : errs;
			ssize_t r;

			if (*fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(*fd, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (sink_add(s, buf, (size_t)r) < 0) {
				OPENSSL_cleanse(buf, sizeof(buf));
				irfw_set_err(err, errlen, "out of memory");
				killed = true;
				goto stop;
			}
			OPENSSL_cleanse(buf, sizeof(buf));
			if (out->over) {
				killed = true;
				goto stop;
			}
		}
	}
stop:
	if (killed)
		kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	if (killed) {
		if (out->over)
			irfw_set_err(err, errlen,
			             "profile \"%s\": credential_process wrote more than %d bytes; stopped",
			             profile, MAX_BODY);
		else if (!err[0])
			irfw_set_err(
			    err, errlen,
			    "profile \"%s\": credential_process did not finish within %d seconds; stopped",
			    profile, PROCESS_TIMEOUT_S);
		goto out;
	}
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return ret;
}

int creds_process(const char *profile, const char *command, struct irfw_creds *c, char *err, size_t errlen)
{
	wordexp_t we;
	struct sink out = {.max = MAX_BODY}, errs = {.max = PROCESS_MAX_STDERR};
	const cJSON *ver, *akid, *sec, *tok, *exp;
	cJSON *j = NULL;
	char label[48], *why = NULL;
	time_t expiration = 0;
	int status = 0, ret = -1;

	err[0] = '\0';
	if (split_command(profile, command, &we, err, errlen) < 0)
		return -1;
	if (run(profile, we.we_wordv, &out, &errs, &status, err, errlen) < 0)
		goto out;
	if (WIFSIGNALED(status)) {
		why = stderr_reason(&errs);
		irfw_set_err(err, errlen, "profile \"%s\": credential_process was killed by signal %d%s%s",
		             profile, WTERMSIG(status), why ? ": " : "", why ? why : "");
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !errs.n) {
		/* Where posix_spawn cannot report a failed exec (some kernels,
		 * valgrind), the child exits 127, as a shell does. */
		char *shown = irfw_escape_text(we.we_wordv[0]);

		irfw_set_err(err, errlen,
		             "profile \"%s\": credential_process: cannot run %s (exit status 127)", profile,
		             shown ? shown : "?");
		free(shown);
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		why = stderr_reason(&errs);
		irfw_set_err(err, errlen, "profile \"%s\": credential_process exited with status %d%s%s",
		             profile, WIFEXITED(status) ? WEXITSTATUS(status) : -1, why ? ": " : "",
		             why ? why : "");
		goto out;
	}
	j = out.p ? cJSON_ParseWithLength(out.p, out.n) : NULL;
	if (!cJSON_IsObject(j)) {
		irfw_set_err(err, errlen,
		             "profile \"%s\": credential_process did not print a JSON object (%zu bytes, not "
		             "shown)",
		             profile, out.n);
		goto out;
	}
	ver = cJSON_GetObjectItemCaseSensitive(j, "Version");
	if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
		irfw_set_err(err, errlen,
		             "profile \"%s\": credential_process output has %s Version; only Version 1 is "
		             "supported",
		             profile, ver ? "an unsupported" : "no");
		goto out;
	}
	akid = cJSON_GetObjectItemCaseSensitive(j, "AccessKeyId");
	sec = cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey");
	tok = cJSON_GetObjectItemCaseSensitive(j, "SessionToken");
	exp = cJSON_GetObjectItemCaseSensitive(j, "Expiration");
	if (!cJSON_IsString(akid) || !*akid->valuestring || !cJSON_IsString(sec) || !*sec->valuestring) {
		irfw_set_err(err, errlen, "profile \"%s\": credential_process output has no %s", profile,
		             !cJSON_IsString(akid) || !*akid->valuestring ? "AccessKeyId"
		                                                          : "SecretAccessKey");
		goto out;
	}
	if (tok && !cJSON_IsNull(tok) && !cJSON_IsString(tok)) {
		irfw_set_err(err, errlen,
		             "profile \"%s\": credential_process output: SessionToken is not a string",
		             profile);
		goto out;
	}
	if (exp && !cJSON_IsNull(exp)) {
		if (!cJSON_IsString(exp) || creds_parse_time(exp->valuestring, &expiration) < 0) {
			irfw_set_err(
			    err, errlen,
			    "profile \"%s\": credential_process output: Expiration is not an ISO 8601 "
			    "time",
			    profile);
			goto out;
		}
	}
	creds_mask(sec->valuestring);
	if (cJSON_IsString(tok))
		creds_mask(tok->valuestring);
	snprintf(label, sizeof(label), "process:%s", profile);
	if (creds_set(c, akid->valuestring, sec->valuestring, cJSON_IsString(tok) ? tok->valuestring : NULL,
	              expiration, label) < 0) {
		irfw_set_err(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	creds_json_wipe_delete(j);
	if (out.p) {
		OPENSSL_cleanse(out.p, out.n);
		free(out.p);
	}
	free(errs.p);
	free(why);
	wordfree(&we);
	return ret;
}
