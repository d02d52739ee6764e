/*
 * loader.h - plugin modules found, loaded with libltdl, bound at load, and
 * refused (with their file and the reason) before any instance is touched
 * when they do not fit (loader.c).
 */
#ifndef IRFW_LOADER_H
#define IRFW_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "irfw/irfw.h"

/* [a-z0-9_]+, at most 64: a plugin module's name. */
bool irfw_valid_module_name(const char *s);

struct irfw_module {
	char *name;
	char *path;            /* file it was loaded from */
	void *handle;          /* lt_dlhandle */
	struct irfw_plugin vt; /* copy of min(size, sizeof) bytes, rest zero */
};

struct irfw_loader {
	char **dirs; /* search path, in order */
	size_t n_dirs;
	struct irfw_module **mods;
	size_t n_mods;
	bool ltdl_up;
};

int irfw_loader_init(struct irfw_loader *l, char **dirs, size_t n_dirs);
/* Load module `name` (searching dirs) or return the one already loaded.
 * On refusal returns NULL with err "FILE: reason". */
struct irfw_module *irfw_loader_get(struct irfw_loader *l, const char *name, char *err, size_t errlen);
/* Load one module from an explicit file (absolute path, with or without
 * extension); `expect` is the name it must carry. */
struct irfw_module *irfw_loader_load_file(struct irfw_loader *l, const char *file, const char *expect,
                                          char *err, size_t errlen);
/* Every module found in the search path (for `irfw plugins`); refusals
 * are reported through `report`. */
void irfw_loader_scan(struct irfw_loader *l, void (*report)(const char *what, void *ctx), void *ctx);
void irfw_loader_fini(struct irfw_loader *l);
/* True when module `name` has a file in the search path (loaded or not). */
bool irfw_loader_exists(const struct irfw_loader *l, const char *name);
/* 0 when `file` and every folder above it (as given and resolved) are
 * owned by root or the invoking user and not writable by group or others
 * (a sticky folder such as /tmp excepted); else -1 with why. */
int irfw_loader_trusted(const char *file, char *why, size_t len);

#endif /* IRFW_LOADER_H */
