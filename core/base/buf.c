/* buf.c - the growable string and message helpers of every core layer. */
#define _POSIX_C_SOURCE 200809L
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int irfw_buf_add(struct irfw_buf *b, const void *data, size_t len)
{
	if (b->failed)
		return -1;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p) {
			b->failed = true;
			return -1;
		}
		b->data = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int irfw_buf_puts(struct irfw_buf *b, const char *s)
{
	return irfw_buf_add(b, s, strlen(s));
}

int irfw_buf_putc(struct irfw_buf *b, char c)
{
	return irfw_buf_add(b, &c, 1);
}

int irfw_buf_printf(struct irfw_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = irfw_vstrfmt(fmt, ap);
	va_end(ap);
	if (!s) {
		b->failed = true;
		return -1;
	}
	int rc = irfw_buf_puts(b, s);
	free(s);
	return rc;
}

char *irfw_buf_take(struct irfw_buf *b)
{
	if (!b->data && !b->failed)
		irfw_buf_add(b, "", 0);
	char *s = b->failed ? NULL : b->data;
	if (b->failed)
		free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
	return s;
}

void irfw_buf_free(struct irfw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

char *irfw_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *irfw_vstrfmt(const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

char *irfw_strfmt(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = irfw_vstrfmt(fmt, ap);
	va_end(ap);
	return s;
}

void irfw_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
