/*
 * log.h - leveled lines on standard error, tagged with their origin
 * ("[i-0abc isolate]"), never interleaved between threads, with every
 * registered secret masked and text from AWS escaped.  The levels are the
 * SDK's (irfw_log_level).
 */
#ifndef IRFW_BASE_LOG_H
#define IRFW_BASE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "irfw/irfw.h"

void irfw_log_set_level(int level); /* an irfw_log_level */
int irfw_log_get_level(void);
void irfw_log_set_color(bool on);
/* Mask this string wherever it would appear in a log line (8 characters
 * or more: shorter ones would mask ordinary words). */
void irfw_log_add_secret(const char *s);
void irfw_log_clear_secrets(void);
/* `origin` is the bracketed tag without brackets, or NULL. */
void irfw_logf(irfw_log_level level, const char *origin, const char *fmt, ...) IRFW_PRINTF(3, 4);
void irfw_vlogf(irfw_log_level level, const char *origin, const char *fmt, va_list ap) IRFW_PRINTF(3, 0);

/* Show `line` as a live status line at the bottom of the terminal, below
 * every later log line (NULL: remove it).  Only for a terminal. */
void irfw_log_status(const char *line);
/* A copy of s with every registered secret masked, to free(). */
char *irfw_log_masked(const char *s);

#endif /* IRFW_BASE_LOG_H */
