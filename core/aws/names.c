/* names.c - the syntax of AWS names an operator types (instance and
 * security group ids, regions, bucket names, topic ARNs), checked before
 * any call so that a typo is a usage error, not a failed step. */
#define _POSIX_C_SOURCE 200809L
#include "names.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

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
