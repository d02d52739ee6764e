/* text.c - words, lists, numbers, times and terminal-safe text. */
#define _POSIX_C_SOURCE 200809L
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"

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

bool irfw_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (p && *p) {
		unsigned c = *p;
		size_t n = c < 0x80             ? 0
		           : (c & 0xE0) == 0xC0 ? 1
		           : (c & 0xF0) == 0xE0 ? 2
		           : (c & 0xF8) == 0xF0 ? 3
		                                : 9;
		if (n == 9 || c == 0xC0 || c == 0xC1 || c > 0xF4)
			return false;
		unsigned long cp = n ? c & (0x3Fu >> n) : c;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3Fu);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += n + 1;
	}
	return true;
}
