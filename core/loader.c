/*
 * loader.c - finds and loads plugin modules with libltdl, and refuses the
 * ones that do not fit before any instance is touched.
 *
 * A module exports one entry point, `<module>_LTX_irfw_plugin_get`, which
 * lt_dlsym also finds under its short name `irfw_plugin_get`.  The vtable
 * it returns is checked (ABI major equal, minor not newer, size at least the
 * 1.0 size, name equal to the file's basename, mandatory fields present,
 * options table well formed) and copied, never more than its declared size.
 */
#define _XOPEN_SOURCE 700
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ltdl.h>

#include "loader.h"
#include "siteconf.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/text.h"

bool irfw_valid_module_name(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

int irfw_loader_init(struct irfw_loader *l, char **dirs, size_t n_dirs)
{
	memset(l, 0, sizeof(*l));
	l->dirs = dirs;
	l->n_dirs = n_dirs;
	if (lt_dlinit() != 0)
		return -1;
	l->ltdl_up = true;
	return 0;
}

static void module_free(struct irfw_module *m)
{
	if (!m)
		return;
	if (m->handle)
		lt_dlclose((lt_dlhandle)m->handle);
	free(m->name);
	free(m->path);
	free(m);
}

void irfw_loader_fini(struct irfw_loader *l)
{
	for (size_t i = 0; i < l->n_mods; i++)
		module_free(l->mods[i]);
	free(l->mods);
	l->mods = NULL;
	l->n_mods = 0;
	if (l->ltdl_up)
		lt_dlexit();
	l->ltdl_up = false;
}

static struct irfw_module *find_loaded(struct irfw_loader *l, const char *name)
{
	for (size_t i = 0; i < l->n_mods; i++)
		if (strcmp(l->mods[i]->name, name) == 0)
			return l->mods[i];
	return NULL;
}

/* Check an options table: names unique and well formed, types known, enum
 * choices present, defaults of the declared type. */
static const char *check_options(const struct irfw_option *opts)
{
	static __thread char msg[256];
	size_t n = 0;
	for (const struct irfw_option *o = opts; o && o->name; o++, n++) {
		if (n > 256)
			return "options table has no NULL terminator (over 256 entries)";
		if (!*o->name || strchr(o->name, '=') || strchr(o->name, ' ')) {
			snprintf(msg, sizeof(msg), "option %zu has an invalid name", n);
			return msg;
		}
		if ((unsigned)o->type > IRFW_OPT_ENUM) {
			snprintf(msg, sizeof(msg), "option '%.64s' has an unknown type %d", o->name,
			         (int)o->type);
			return msg;
		}
		if (o->type == IRFW_OPT_ENUM && (!o->choices || !*o->choices)) {
			snprintf(msg, sizeof(msg), "enum option '%.64s' lists no choices", o->name);
			return msg;
		}
		if (irfw_option_find(irfw_step_options, o->name)) {
			snprintf(msg, sizeof(msg), "option '%.64s' is reserved by the core", o->name);
			return msg;
		}
		for (const struct irfw_option *p = opts; p < o; p++)
			if (strcmp(p->name, o->name) == 0) {
				snprintf(msg, sizeof(msg), "option '%.64s' is declared twice", o->name);
				return msg;
			}
		const char *why = o->def ? irfw_option_check(o, o->def) : NULL;
		if (why) {
			snprintf(msg, sizeof(msg), "default of option '%.64s' is invalid: %.120s", o->name,
			         why);
			return msg;
		}
	}
	return NULL;
}

/* The module's basename: "/x/y/isolate.so" -> "isolate". */
static char *basename_noext(const char *file)
{
	const char *b = strrchr(file, '/');
	b = b ? b + 1 : file;
	char *s = strdup(b);
	if (!s)
		return NULL;
	char *dot = strchr(s, '.');
	if (dot)
		*dot = '\0';
	return s;
}

/* ------------------------------------------------------------------ */
/* Who could have written the module.                                  */

/* One file or folder: owned by root or by the user running irfw, and not
 * writable by group or others -- except a folder with the sticky bit (such
 * as /tmp), where nobody can replace an entry owned by someone else. */
static bool node_trusted(const char *path, bool dir, char *why, size_t len)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		return false;
	}
	uid_t me = getuid();
	if (st.st_uid != 0 && st.st_uid != me) {
		snprintf(why, len, "%s %s is owned by uid %u, neither root nor you (uid %u)",
		         dir ? "folder" : "file", path, (unsigned)st.st_uid, (unsigned)me);
		return false;
	}
	bool sticky_dir = dir && (st.st_mode & S_ISVTX);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_dir) {
		snprintf(why, len, "%s %s is writable by %s (mode %04o); chmod go-w %s",
		         dir ? "folder" : "file", path, (st.st_mode & S_IWOTH) ? "anyone" : "its group",
		         (unsigned)(st.st_mode & 07777), path);
		return false;
	}
	return true;
}

/* The file and every folder above it, as given and as resolved (a symbolic
 * link must not lead through, or out of, a folder others can write). */
static bool path_trusted_as(const char *path, char *why, size_t len)
{
	if (!node_trusted(path, false, why, len))
		return false;
	char *copy = strdup(path);
	if (!copy) {
		snprintf(why, len, "out of memory");
		return false;
	}
	bool ok = true;
	for (char *slash = strrchr(copy, '/'); ok && slash; slash = strrchr(copy, '/')) {
		if (slash == copy) {
			ok = node_trusted("/", true, why, len);
			break;
		}
		*slash = '\0';
		ok = node_trusted(copy, true, why, len);
	}
	free(copy);
	return ok;
}

/* Refuse to load `file` (and, for a libtool .la, the .libs folder beside it
 * where the code is) when someone but root or the invoking user could
 * have written it: the module runs with the responder's AWS credentials. */
int irfw_loader_trusted(const char *file, char *why, size_t len)
{
	char *abs = file[0] == '/' ? strdup(file) : NULL;
	if (!abs) {
		char cwd[4096];
		abs = getcwd(cwd, sizeof(cwd)) ? irfw_strfmt("%s/%s", cwd, file) : NULL;
	}
	char real[PATH_MAX];
	bool ok =
	    abs && path_trusted_as(abs, why, len) && realpath(abs, real) && path_trusted_as(real, why, len);
	if (ok && strlen(abs) > 3 && strcmp(abs + strlen(abs) - 3, ".la") == 0) {
		char *libs = irfw_strfmt("%s", abs);
		char *slash = libs ? strrchr(libs, '/') : NULL;
		if (slash) {
			strcpy(slash, "/.libs");
			struct stat st;
			if (stat(libs, &st) == 0)
				ok = node_trusted(libs, true, why, len);
		}
		free(libs);
	}
	if (!abs)
		snprintf(why, len, "out of memory");
	free(abs);
	return ok ? 0 : -1;
}

/* dlopen with every symbol bound now; on failure `err` says why, naming
 * the symbol this libirfw lacks when that is the reason. */
static void *dlopen_now(const char *path, char *err, size_t errlen)
{
	dlerror();
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h)
		return h;
	const char *e = dlerror();
	const char *sym = e ? strstr(e, "undefined symbol: ") : NULL;
	if (sym)
		snprintf(err, errlen,
		         "%s: refers to %s, which this libirfw (%s, plugin ABI %d.%d) does not have: "
		         "rebuild the module against this irfw's SDK, or upgrade irfw",
		         path, sym + strlen("undefined symbol: "), PACKAGE_VERSION, IRFW_ABI_MAJOR,
		         IRFW_ABI_MINOR);
	else
		snprintf(err, errlen, "%s: cannot load module: %s", path, e ? e : "unknown error");
	return NULL;
}

/*
 * Resolve every symbol of a module now rather than at its first call.
 * libltdl opens modules with RTLD_LAZY, so a module calling a function this
 * libirfw lacks (built against a newer SDK) would load, pass every check,
 * and kill the process with "symbol lookup error" in the middle of an
 * incident.  glibc does not rebind an object already loaded lazily, so the
 * file libltdl chose is closed, opened again with RTLD_NOW (which fails
 * naming the symbol), then handed back to libltdl while that binding holds.
 */
static int bind_now(lt_dlhandle lazy, lt_dlhandle *out, const char *file, char *err, size_t errlen)
{
	const lt_dlinfo *info = lt_dlgetinfo(lazy);
	char *real = info && info->filename ? strdup(info->filename) : NULL;
	if (!real) {
		snprintf(err, errlen, "%s: cannot tell which file libltdl opened", file);
		lt_dlclose(lazy);
		*out = NULL;
		return -1;
	}
	lt_dlclose(lazy);
	*out = NULL;
	char why[1024];
	if (irfw_loader_trusted(real, why, sizeof(why)) != 0) {
		snprintf(err, errlen,
		         "%s: not loaded: %s (whoever can write it would run code with your AWS credentials)",
		         file, why);
		free(real);
		return -1;
	}
	void *now = dlopen_now(real, err, errlen);
	if (!now) {
		free(real);
		return -1;
	}
	*out = lt_dlopenext(file);
	dlclose(now);
	free(real);
	if (!*out) {
		const char *e = lt_dlerror();
		snprintf(err, errlen, "%s: cannot load module: %s", file, e ? e : "unknown error");
		return -1;
	}
	return 0;
}

struct irfw_module *irfw_loader_load_file(struct irfw_loader *l, const char *file, const char *expect,
                                          char *err, size_t errlen)
{
	struct irfw_module *m = calloc(1, sizeof(*m));
	char *base = basename_noext(file);
	if (!m || !base) {
		snprintf(err, errlen, "%s: out of memory", file);
		goto fail;
	}
	m->path = strdup(file);
	char why[1024];
	if (irfw_loader_trusted(file, why, sizeof(why)) != 0) {
		snprintf(err, errlen,
		         "%s: not loaded: %s (whoever can write it would run code with your AWS credentials)",
		         file, why);
		goto fail;
	}
	lt_dlhandle h = lt_dlopenext(file);
	if (!h) {
		/* libltdl's own message for a module linked with -z now that
		 * lacks a symbol is "file not found"; dlopen names the symbol. */
		const char *e = lt_dlerror();
		snprintf(err, errlen, "%s: cannot load module: %s", file, e ? e : "unknown error");
		size_t n = strlen(file);
		if (n > 3 && strcmp(file + n - 3, ".so") == 0 && access(file, F_OK) == 0) {
			void *probe = dlopen_now(file, err, errlen);
			if (probe) /* opens now: keep libltdl's reason */
				dlclose(probe);
		}
		goto fail;
	}
	if (bind_now(h, &h, file, err, errlen) != 0)
		goto fail;
	m->handle = h;
	const struct irfw_plugin *(*get)(void);
	void *sym = lt_dlsym(h, "irfw_plugin_get");
	if (!sym) {
		snprintf(err, errlen, "%s: not an irfw plugin: entry point %s_LTX_irfw_plugin_get is missing",
		         file, base);
		goto fail;
	}
	/* POSIX guarantees this conversion works for dlsym results. */
	memcpy(&get, &sym, sizeof(get));
	const struct irfw_plugin *p = get();
	if (!p) {
		snprintf(err, errlen, "%s: entry point returned no plugin", file);
		goto fail;
	}
	if (p->abi_major != IRFW_ABI_MAJOR) {
		snprintf(err, errlen,
		         "%s: built for plugin ABI %u.%u, this irfw has ABI %d.%d (major differs)", file,
		         p->abi_major, p->abi_minor, IRFW_ABI_MAJOR, IRFW_ABI_MINOR);
		goto fail;
	}
	if (p->abi_minor > IRFW_ABI_MINOR) {
		snprintf(err, errlen,
		         "%s: built for plugin ABI %u.%u, newer than this irfw's %d.%d; upgrade irfw", file,
		         p->abi_major, p->abi_minor, IRFW_ABI_MAJOR, IRFW_ABI_MINOR);
		goto fail;
	}
	if (p->size < IRFW_PLUGIN_MIN_SIZE) {
		snprintf(err, errlen, "%s: plugin struct is %u bytes, smaller than the %zu of ABI %d.0", file,
		         p->size, (size_t)IRFW_PLUGIN_MIN_SIZE, IRFW_ABI_MAJOR);
		goto fail;
	}
	/* Never read past what the module says it has. */
	memcpy(&m->vt, p, p->size < sizeof(m->vt) ? p->size : sizeof(m->vt));
	if (!m->vt.name || !irfw_valid_module_name(m->vt.name)) {
		snprintf(err, errlen, "%s: plugin name is missing or not [a-z0-9_]+", file);
		goto fail;
	}
	if (strcmp(m->vt.name, base) != 0) {
		snprintf(err, errlen, "%s: plugin calls itself '%.64s' but its file is '%s'; they must match",
		         file, m->vt.name, base);
		goto fail;
	}
	if (expect && strcmp(expect, base) != 0) {
		snprintf(err, errlen, "%s: expected module '%s'", file, expect);
		goto fail;
	}
	if (!m->vt.run) {
		snprintf(err, errlen, "%s: plugin has no run function", file);
		goto fail;
	}
	const char *bad_opts = check_options(m->vt.options);
	if (bad_opts) {
		snprintf(err, errlen, "%s: %s", file, bad_opts);
		goto fail;
	}
	if (find_loaded(l, base)) {
		snprintf(err, errlen, "%s: a plugin named '%s' is already loaded from %s", file, base,
		         find_loaded(l, base)->path);
		goto fail;
	}
	struct irfw_module **v = realloc(l->mods, (l->n_mods + 1) * sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "%s: out of memory", file);
		goto fail;
	}
	l->mods = v;
	m->name = base;
	l->mods[l->n_mods++] = m;
	return m;
fail:
	free(base);
	module_free(m);
	return NULL;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool irfw_loader_exists(const struct irfw_loader *l, const char *name)
{
	static const char *exts[] = {".la", ".so"};
	for (size_t d = 0; d < l->n_dirs; d++)
		for (size_t e = 0; e < 2; e++) {
			char *path = irfw_strfmt("%s/%s%s", l->dirs[d], name, exts[e]);
			bool here = path && file_exists(path);
			free(path);
			if (here)
				return true;
		}
	return false;
}

struct irfw_module *irfw_loader_get(struct irfw_loader *l, const char *name, char *err, size_t errlen)
{
	struct irfw_module *m = find_loaded(l, name);
	if (m)
		return m;
	if (!irfw_valid_module_name(name)) {
		snprintf(err, errlen, "'%s' is not a valid plugin name ([a-z0-9_]+)", name);
		return NULL;
	}
	/* A .la (build tree) or a bare .so (distros delete .la files). */
	static const char *exts[] = {".la", ".so"};
	for (size_t d = 0; d < l->n_dirs; d++)
		for (size_t e = 0; e < 2; e++) {
			char *path = irfw_strfmt("%s/%s%s", l->dirs[d], name, exts[e]);
			if (path && file_exists(path)) {
				m = irfw_loader_load_file(l, path, name, err, errlen);
				free(path);
				return m;
			}
			free(path);
		}
	struct irfw_buf b = {0};
	irfw_buf_printf(&b, "unknown plugin '%s': no %s.so in", name, name);
	for (size_t d = 0; d < l->n_dirs; d++)
		irfw_buf_printf(&b, "%s %s", d ? "," : "", l->dirs[d]);
	snprintf(err, errlen, "%s", b.data ? b.data : "unknown plugin");
	irfw_buf_free(&b);
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void irfw_loader_scan(struct irfw_loader *l, void (*report)(const char *what, void *ctx), void *ctx)
{
	for (size_t d = 0; d < l->n_dirs; d++) {
		DIR *dir = opendir(l->dirs[d]);
		if (!dir)
			continue;
		char **names = NULL;
		size_t n = 0;
		struct dirent *de;
		while ((de = readdir(dir)) != NULL) {
			size_t len = strlen(de->d_name);
			bool so = len > 3 && strcmp(de->d_name + len - 3, ".so") == 0;
			bool la = len > 3 && strcmp(de->d_name + len - 3, ".la") == 0;
			if (!so && !la)
				continue;
			char *base = basename_noext(de->d_name);
			bool dup = false;
			for (size_t i = 0; base && i < n; i++)
				dup = dup || strcmp(names[i], base) == 0;
			char **v = dup || !base ? NULL : realloc(names, (n + 1) * sizeof(*v));
			if (!v) {
				free(base);
				continue;
			}
			names = v;
			names[n++] = base;
		}
		closedir(dir);
		qsort(names, n, sizeof(*names), cmp_str);
		for (size_t i = 0; i < n; i++) {
			char err[1024];
			if (!find_loaded(l, names[i]) && !irfw_loader_get(l, names[i], err, sizeof(err)))
				report(err, ctx);
			free(names[i]);
		}
		free(names);
	}
}
