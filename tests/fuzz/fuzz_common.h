/*
 * fuzz_common.h - what the libFuzzer targets of tests/fuzz/ share: a file
 * in memory for parsers that take a path, and splitting an input into
 * NUL-separated fields.  Header-only: each target is one translation unit.
 */
#ifndef IRFW_FUZZ_COMMON_H
#define IRFW_FUZZ_COMMON_H

#define _GNU_SOURCE /* memfd_create */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Stop the run (libFuzzer saves the input) when a documented promise of
 * the code under test is broken; a plain abort() so the report names the
 * line. */
#define FUZZ_ASSERT(cond)                                                                                    \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__, #cond);           \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

/* A file in memory, reachable by path (/proc/self/fd/N), rewritten for
 * every input: no disk traffic, nothing left behind. */
struct fuzz_file {
	int fd;
	char path[64];
};

static inline void fuzz_file_open(struct fuzz_file *f, const char *name)
{
	f->fd = memfd_create(name, 0);
	if (f->fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

static inline void fuzz_file_write(struct fuzz_file *f, const uint8_t *data, size_t size)
{
	if (ftruncate(f->fd, 0) != 0 || (size && pwrite(f->fd, data, size, 0) != (ssize_t)size)) {
		perror("memfd write");
		abort();
	}
}

/* Up to `max` fields of data[0..size), split at NUL bytes, each a malloc'd
 * NUL-terminated string; returns their number.  Free with fuzz_fields_free. */
static inline size_t fuzz_fields(const uint8_t *data, size_t size, char **out, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= size && n < max; i++) {
		if (i == size || data[i] == '\0') {
			out[n] = malloc(i - start + 1);
			if (!out[n])
				abort();
			memcpy(out[n], data + start, i - start);
			out[n][i - start] = '\0';
			n++;
			start = i + 1;
		}
	}
	return n;
}

static inline void fuzz_fields_free(char **f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i]);
}

#endif /* IRFW_FUZZ_COMMON_H */
