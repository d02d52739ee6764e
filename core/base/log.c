/*
 * log.c - leveled log lines on stderr, tagged with their origin
 * ("[i-0abc isolate]").  Lines from worker threads never interleave, and
 * every registered secret is masked as a last line of defence: a plugin
 * that logs a webhook URL by mistake still does not leak it.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "text.h"

static int log_level = IRFW_LOG_INFO;
/* A live status line at the bottom of a terminal (progress), redrawn
 * below every log line; NULL when there is none. */
static char *status_line;
static bool log_color;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t n_secrets;

void irfw_log_set_level(int level)
{
	log_level = level;
}

int irfw_log_get_level(void)
{
	return log_level;
}

void irfw_log_set_color(bool on)
{
	log_color = on;
}

void irfw_log_add_secret(const char *s)
{
	/* Short strings would mask ordinary words; secrets are long. */
	if (!s || strlen(s) < 8)
		return;
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < n_secrets; i++)
		if (strcmp(secrets[i], s) == 0) {
			pthread_mutex_unlock(&log_lock);
			return;
		}
	char **v = realloc(secrets, (n_secrets + 1) * sizeof(*v));
	if (v) {
		secrets = v;
		secrets[n_secrets] = strdup(s);
		if (secrets[n_secrets])
			n_secrets++;
	}
	pthread_mutex_unlock(&log_lock);
}

void irfw_log_clear_secrets(void)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	free(secrets);
	secrets = NULL;
	n_secrets = 0;
	pthread_mutex_unlock(&log_lock);
}

/* Replace every registered secret in `s` (in place) with asterisks. */
static void mask_secrets(char *s)
{
	for (size_t i = 0; i < n_secrets; i++) {
		size_t n = strlen(secrets[i]);
		for (char *p = strstr(s, secrets[i]); p; p = strstr(p + n, secrets[i]))
			memset(p, '*', n);
	}
}

void irfw_vlogf(irfw_log_level level, const char *origin, const char *fmt, va_list ap)
{
	if ((int)level > log_level)
		return;
	char msg[4096];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	static const char *names[] = {"error: ", "warning: ", "", ""};
	static const char *colors[] = {"\033[31m", "\033[33m", "", "\033[2m"};
	/* Text from AWS (tags, names, error messages) reaches the terminal
	 * only escaped: a Name tag holding a newline or U+202E cannot forge a
	 * line of its own. */
	char *safe = irfw_text_is_safe(msg) ? NULL : irfw_escape_text(msg);
	pthread_mutex_lock(&log_lock);
	mask_secrets(safe ? safe : msg);
	bool color = log_color && colors[level][0];
	if (status_line)
		fputs("\r\033[K", stderr); /* the line above the status */
	fprintf(stderr, "%s%s%s%s%s%s%s\n", color ? colors[level] : "", origin ? "[" : "",
	        origin ? origin : "", origin ? "] " : "", names[level], safe ? safe : msg,
	        color ? "\033[0m" : "");
	if (status_line)
		fputs(status_line, stderr);
	pthread_mutex_unlock(&log_lock);
	free(safe);
}

void irfw_logf(irfw_log_level level, const char *origin, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	irfw_vlogf(level, origin, fmt, ap);
	va_end(ap);
}

void irfw_log_status(const char *line)
{
	pthread_mutex_lock(&log_lock);
	free(status_line);
	status_line = line ? strdup(line) : NULL;
	fputs("\r\033[K", stderr);
	if (status_line)
		fputs(status_line, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

char *irfw_log_masked(const char *s)
{
	if (!s)
		return NULL;
	char *copy = strdup(s);
	if (!copy)
		return NULL;
	pthread_mutex_lock(&log_lock);
	mask_secrets(copy);
	pthread_mutex_unlock(&log_lock);
	return copy;
}
