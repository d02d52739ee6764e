/* loader_test.c - the plugin loader accepts a good module and refuses each
 * broken fixture (built by make check) with its file and the reason. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "run.h"
#include "base/buf.h"
#include "base/text.h"
#include "aws/names.h"

static const char *fixtures(void)
{
	const char *d = getenv("IRFW_TEST_FIXTURES");
	return d ? d : "tests/fixtures";
}

static struct irfw_loader loader;

static int setup(void **state)
{
	(void)state;
	char **dirs = calloc(2, sizeof(*dirs));
	dirs[0] = strdup(fixtures());
	return irfw_loader_init(&loader, dirs, 1);
}

static int teardown(void **state)
{
	(void)state;
	char **dirs = loader.dirs;
	irfw_loader_fini(&loader);
	irfw_strv_free(dirs);
	return 0;
}

static void expect_refusal(const char *name, const char *reason)
{
	char err[1024] = "";
	struct irfw_module *m = irfw_loader_get(&loader, name, err, sizeof(err));
	assert_null(m);
	char file[512];
	snprintf(file, sizeof(file), "%s/%s.la", fixtures(), name);
	if (!strstr(err, file) || !strstr(err, reason))
		fail_msg("refusal of %s: got \"%s\", wanted file %s and \"%s\"", name, err, file, reason);
}

static void test_good(void **state)
{
	(void)state;
	char err[1024] = "";
	struct irfw_module *m = irfw_loader_get(&loader, "good", err, sizeof(err));
	if (!m)
		fail_msg("good fixture refused: %s", err);
	assert_string_equal(m->name, "good");
	assert_non_null(m->vt.run);
	assert_int_equal(m->vt.abi_major, IRFW_ABI_MAJOR);
	assert_non_null(irfw_option_find(m->vt.options, "needed"));
	/* Asking again gives the same module, not a second copy. */
	assert_ptr_equal(irfw_loader_get(&loader, "good", err, sizeof(err)), m);
}

static void test_refusals(void **state)
{
	(void)state;
	expect_refusal("badmajor", "major differs");
	expect_refusal("newminor", "newer than this irfw");
	expect_refusal("shortsize", "smaller than");
	expect_refusal("noentry", "entry point noentry_LTX_irfw_plugin_get is missing");
	expect_refusal("misnamed", "calls itself 'someoneelse'");
	expect_refusal("badopts", "declared twice");
}

static void test_unknown_and_invalid(void **state)
{
	(void)state;
	char err[1024];
	assert_null(irfw_loader_get(&loader, "nosuchplugin", err, sizeof(err)));
	assert_non_null(strstr(err, "unknown plugin 'nosuchplugin'"));
	assert_non_null(strstr(err, fixtures()));
	assert_null(irfw_loader_get(&loader, "../etc/passwd", err, sizeof(err)));
	assert_non_null(strstr(err, "not a valid plugin name"));
}

static void test_unresolved_symbol(void **state)
{
	(void)state;
	char err[1024];
	assert_null(irfw_loader_get(&loader, "unresolved", err, sizeof(err)));
	assert_non_null(strstr(err, "irfw_function_from_the_future"));
	assert_non_null(strstr(err, "unresolved.so"));
}

/* Linked -z now, it fails in dlopen itself: the error still names the
 * symbol, not libltdl's "file not found". */
static void test_unresolved_symbol_bound_now(void **state)
{
	(void)state;
	char err[1024], path[512];
	snprintf(path, sizeof(path), "%s/.libs/unresolved_now.so", fixtures());
	assert_null(irfw_loader_load_file(&loader, path, "unresolved_now", err, sizeof(err)));
	assert_non_null(strstr(err, "irfw_function_from_the_future"));
	assert_non_null(strstr(err, "rebuild the module"));
}

static void test_duplicate_name(void **state)
{
	(void)state;
	char err[1024], path[512];
	snprintf(path, sizeof(path), "%s/good.la", fixtures());
	assert_non_null(irfw_loader_get(&loader, "good", err, sizeof(err)));
	assert_null(irfw_loader_load_file(&loader, path, "good", err, sizeof(err)));
	assert_non_null(strstr(err, "already loaded"));
}

static void report(const char *what, void *ctx)
{
	(*(int *)ctx)++;
	assert_non_null(strstr(what, fixtures()));
}

static void test_scan(void **state)
{
	(void)state;
	int refused = 0;
	irfw_loader_scan(&loader, report, &refused);
	/* The six broken vtables, and unresolved and unresolved_now. */
	assert_int_equal(refused, 8);
	assert_true(loader.n_mods >= 1); /* good, awscall and contain */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_and_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unresolved_symbol, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unresolved_symbol_bound_now, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
