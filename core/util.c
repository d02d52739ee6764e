/* util.c - small string helpers used across the engine. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "internal.h"

IRFW_PRINTF(1, 0) static char *vstrfmt(const char *fmt, va_list ap)
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
	char *s = vstrfmt(fmt, ap);
	va_end(ap);
	return s;
}

int irfw_buf_add(struct irfw_buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p)
			return -1;
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

int irfw_buf_printf(struct irfw_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = vstrfmt(fmt, ap);
	va_end(ap);
	if (!s)
		return -1;
	int rc = irfw_buf_puts(b, s);
	free(s);
	return rc;
}

void irfw_buf_free(struct irfw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *irfw_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *irfw_trim(char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

size_t irfw_split_list(const char *s, char ***out)
{
	size_t n = 0, cap = 4;
	char **v = calloc(cap + 1, sizeof(*v));
	char *copy = irfw_strdup(s ? s : "");
	if (!v || !copy) {
		free(v);
		free(copy);
		*out = NULL;
		return 0;
	}
	char *save = NULL;
	for (char *tok = strtok_r(copy, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save)) {
		if (n == cap) {
			char **nv = realloc(v, (cap * 2 + 1) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
			cap *= 2;
		}
		v[n++] = strdup(tok);
		v[n] = NULL;
	}
	free(copy);
	*out = v;
	return n;
}

void irfw_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

bool irfw_parse_bool(const char *s, bool *out)
{
	static const char *yes[] = {"true", "yes", "on", "1"};
	static const char *no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

bool irfw_parse_long(const char *s, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

bool irfw_valid_instance_id(const char *s)
{
	if (!s || strncmp(s, "i-", 2) != 0)
		return false;
	size_t n = strlen(s + 2);
	return (n == 8 || n == 17) && all_hex(s + 2, n);
}

bool irfw_valid_sg_id(const char *s)
{
	if (!s || strncmp(s, "sg-", 3) != 0)
		return false;
	size_t n = strlen(s + 3);
	return (n == 8 || n == 17) && all_hex(s + 3, n);
}

/* us-east-1, us-gov-west-1, ap-southeast-4, cn-north-1: letters, then
 * dash-separated words, then a number. */
bool irfw_valid_region(const char *s)
{
	if (!s || strlen(s) < 4 || strlen(s) > 32)
		return false;
	const char *p = s;
	size_t words = 0;
	for (;;) {
		size_t n = 0;
		while (islower((unsigned char)p[n]))
			n++;
		if (n == 0)
			break;
		words++;
		p += n;
		if (*p != '-')
			return false;
		p++;
	}
	size_t d = strspn(p, "0123456789");
	return words >= 2 && d > 0 && p[d] == '\0';
}

/* S3's naming rules for general purpose buckets. */
bool irfw_valid_bucket(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 3 || n > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
		return false;
	if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]) || strstr(s, ".."))
		return false;
	int a, b, c, d;
	char rest;
	if (sscanf(s, "%d.%d.%d.%d%c", &a, &b, &c, &d, &rest) == 4)
		return false; /* formatted as an IP address */
	return strncmp(s, "xn--", 4) != 0;
}

/* arn:PARTITION:sns:REGION:ACCOUNT:NAME (NAME: 1-256 of A-Za-z0-9_-, and
 * an optional .fifo). */
bool irfw_valid_topic_arn(const char *s)
{
	if (!s || strncmp(s, "arn:", 4) != 0)
		return false;
	const char *f[6];
	size_t len[6], k = 0;
	for (const char *p = s; k < 6; k++) {
		const char *c = k < 5 ? strchr(p, ':') : p + strlen(p);
		if (!c)
			return false;
		f[k] = p;
		len[k] = (size_t)(c - p);
		p = c + (k < 5);
	}
	if (len[2] != 3 || strncmp(f[2], "sns", 3) != 0 || len[1] == 0 || len[4] != 12)
		return false;
	char region[33];
	if (len[3] >= sizeof(region))
		return false;
	memcpy(region, f[3], len[3]);
	region[len[3]] = '\0';
	if (!irfw_valid_region(region) || strspn(f[4], "0123456789") < 12)
		return false;
	size_t n = len[5];
	if (n > 5 && strcmp(f[5] + n - 5, ".fifo") == 0)
		n -= 5;
	if (n == 0 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)f[5][i]) && f[5][i] != '-' && f[5][i] != '_')
			return false;
	return true;
}

bool irfw_valid_module_name(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

void irfw_iso_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char base[24];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%.19s.%03dZ", base, (int)(ts.tv_nsec / 1000000));
}

/* Length of the UTF-8 sequence at s (1..4) and its code point, or 0 when
 * the bytes are not well-formed UTF-8. */
static size_t utf8_decode(const unsigned char *s, unsigned long *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
	if (n == 0)
		return 0;
	unsigned long v = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	static const unsigned long min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* Characters that change what a terminal shows: C0 and C1 controls, DEL,
 * and the bidirectional controls that reorder a line (Trojan Source). */
static bool unsafe_code_point(unsigned long c)
{
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x061c || c == 0x200e ||
	       c == 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

char *irfw_escape_text(const char *s)
{
	if (!s)
		return NULL;
	struct irfw_buf b = {0};
	irfw_buf_puts(&b, "");
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		unsigned long cp;
		size_t n = utf8_decode(p, &cp);
		if (n == 0) {
			irfw_buf_printf(&b, "\\x%02x", *p);
			p++;
		} else if (unsafe_code_point(cp)) {
			if (cp < 0x100)
				irfw_buf_printf(&b, "\\x%02lx", cp);
			else
				irfw_buf_printf(&b, "\\u%04lx", cp);
			p += n;
		} else {
			if (cp == '\\')
				irfw_buf_add(&b, "\\", 1);
			irfw_buf_add(&b, p, n);
			p += n;
		}
	}
	return b.data;
}

bool irfw_text_is_safe(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p;) {
		unsigned long cp;
		size_t n = utf8_decode(p, &cp);
		if (n == 0 || unsafe_code_point(cp))
			return false;
		p += n;
	}
	return true;
}
