/*
 * buf.h - the one growable string of irfw's core, and the few helpers
 * every layer (base, aws, engine) builds messages with.  The SDK's
 * irfw_strbuf is this buffer behind an opaque handle.
 */
#ifndef IRFW_BASE_BUF_H
#define IRFW_BASE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__)
#define IRFW_BASE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define IRFW_BASE_PRINTF(f, a)
#endif

/* A growable string, always NUL-terminated once anything was added.  An
 * allocation failure is sticky (`failed`): every later append is ignored
 * and returns -1, so a caller may append freely and check once. */
struct irfw_buf {
	char *data;
	size_t len, cap;
	bool failed;
};

int irfw_buf_add(struct irfw_buf *b, const void *data, size_t len);
int irfw_buf_puts(struct irfw_buf *b, const char *s);
int irfw_buf_putc(struct irfw_buf *b, char c);
int irfw_buf_printf(struct irfw_buf *b, const char *fmt, ...) IRFW_BASE_PRINTF(2, 3);
/* The text (to free()) and an empty buffer; NULL after a failure. */
char *irfw_buf_take(struct irfw_buf *b);
void irfw_buf_free(struct irfw_buf *b);

/* NULL-safe strdup. */
char *irfw_strdup(const char *s);
/* A formatted string to free(), or NULL. */
char *irfw_strfmt(const char *fmt, ...) IRFW_BASE_PRINTF(1, 2);
char *irfw_vstrfmt(const char *fmt, va_list ap) IRFW_BASE_PRINTF(1, 0);
/* snprintf into an error buffer that may be NULL or of size 0. */
void irfw_set_err(char *err, size_t errlen, const char *fmt, ...) IRFW_BASE_PRINTF(3, 4);

#endif /* IRFW_BASE_BUF_H */
