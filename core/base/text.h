/* text.h - words, lists, numbers, times and terminal-safe text. */
#ifndef IRFW_BASE_TEXT_H
#define IRFW_BASE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Strip leading and trailing blanks, in place. */
char *irfw_trim(char *s);
/* Split a comma (or blank) separated list; returns the count, *out a
 * NULL-ended array of strings to free with irfw_strv_free. */
size_t irfw_split_list(const char *s, char ***out);
void irfw_strv_free(char **v);
/* true/false, yes/no, on/off, 1/0 (any case). */
bool irfw_parse_bool(const char *s, bool *out);
/* A whole decimal number. */
bool irfw_parse_long(const char *s, long *out);
/* ISO-8601 UTC now, with milliseconds ("2026-11-28T18:53:08.123Z"). */
void irfw_iso_now(char out[32]);
/* A copy of s safe to print on a terminal: control characters, DEL, C1
 * controls, bidirectional controls and bytes that are not UTF-8 become
 * \xNN or \uNNNN (and a backslash is doubled, so nothing can pose as an
 * escape).  NULL for NULL; free() the result. */
char *irfw_escape_text(const char *s);
/* True when s is well-formed UTF-8 (no overlong form, no surrogate, at
 * most U+10FFFF): what JSON, tags and the case record can hold as it is. */
bool irfw_utf8_valid(const char *s);
/* True when irfw_escape_text(s) would change nothing but backslashes. */
bool irfw_text_is_safe(const char *s);

#endif /* IRFW_BASE_TEXT_H */
