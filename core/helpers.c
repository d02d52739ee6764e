/* helpers.c - hashing and base64 for plugins, on OpenSSL. */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"
#include "aws/sigv4.h"

void irfw_sha256(const void *data, size_t len, char hex[65], char b64[45])
{
	irfw_sha256_encoded(data, len, hex, b64);
}

char *irfw_base64_encode(const void *data, size_t len)
{
	if (len > (size_t)1 << 30)
		return NULL;
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

void *irfw_base64_decode(const char *s, size_t *len)
{
	*len = 0;
	size_t n = strlen(s);
	if (n > (size_t)1 << 30)
		return NULL;
	/* EVP_DecodeBlock wants no whitespace and a multiple of 4. */
	char *clean = malloc(n + 1);
	if (!clean)
		return NULL;
	size_t k = 0, pad = 0;
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			clean[k++] = s[i];
	clean[k] = '\0';
	if (k % 4 != 0) {
		free(clean);
		return NULL;
	}
	if (k >= 1 && clean[k - 1] == '=')
		pad++;
	if (k >= 2 && clean[k - 2] == '=')
		pad++;
	unsigned char *out = malloc(k / 4 * 3 + 1);
	int got = out ? EVP_DecodeBlock(out, (unsigned char *)clean, (int)k) : -1;
	free(clean);
	if (got < 0) {
		free(out);
		return NULL;
	}
	*len = (size_t)got - pad;
	return out;
}

/* ------------------------------------------------------------------ */
/* irfw_strbuf: the engine's irfw_buf behind an opaque handle. */

struct irfw_strbuf {
	struct irfw_buf b;
	bool failed;
};

irfw_strbuf *irfw_strbuf_new(void)
{
	irfw_strbuf *b = calloc(1, sizeof(*b));
	if (b && irfw_buf_puts(&b->b, "") != 0) {
		free(b);
		return NULL;
	}
	return b;
}

void irfw_strbuf_add(irfw_strbuf *b, const void *data, size_t len)
{
	if (b && !b->failed && irfw_buf_add(&b->b, data, len) != 0)
		b->failed = true;
}

void irfw_strbuf_puts(irfw_strbuf *b, const char *s)
{
	irfw_strbuf_add(b, s, strlen(s));
}

void irfw_strbuf_printf(irfw_strbuf *b, const char *fmt, ...)
{
	va_list ap, cp;
	va_start(ap, fmt);
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s) {
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		irfw_strbuf_add(b, s, (size_t)n);
		free(s);
	} else if (b) {
		b->failed = true;
	}
	va_end(ap);
}

const char *irfw_strbuf_str(const irfw_strbuf *b)
{
	return b && b->b.data ? b->b.data : "";
}

size_t irfw_strbuf_len(const irfw_strbuf *b)
{
	return b ? b->b.len : 0;
}

void irfw_strbuf_truncate(irfw_strbuf *b, size_t len)
{
	if (b && b->b.data && len < b->b.len) {
		b->b.len = len;
		b->b.data[len] = '\0';
	}
}

char *irfw_strbuf_steal(irfw_strbuf *b)
{
	if (!b)
		return NULL;
	char *s = b->failed ? NULL : b->b.data;
	if (b->failed)
		irfw_buf_free(&b->b);
	free(b);
	return s;
}

void irfw_strbuf_free(irfw_strbuf *b)
{
	if (!b)
		return;
	irfw_buf_free(&b->b);
	free(b);
}
