/* config_test.c - the site configuration: parsing with file:line errors,
 * validation against options tables, and ${var} templates. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "run.h"
#include "base/buf.h"
#include "base/text.h"
#include "aws/names.h"
#include "policy.h"

static char *write_tmp(const char *text)
{
	char tmpl[] = "/tmp/irfw-config-XXXXXX";
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return strdup(tmpl);
}

/* True when some error contains both `a` and `b`. */
static bool has_error(const struct irfw_config *cfg, const char *a, const char *b)
{
	for (size_t i = 0; i < cfg->n_errors; i++)
		if (strstr(cfg->errors[i], a) && (!b || strstr(cfg->errors[i], b)))
			return true;
	return false;
}

static void test_parse_ok(void **state)
{
	(void)state;
	char *path = write_tmp(
	    "; comment\n[irfw]\npipeline = a,\n  b, c\nregion = eu-west-1\n\n[a]\nkey = v ; inline\n");
	struct irfw_config cfg;
	assert_int_equal(irfw_config_load(path, &cfg), 0);
	struct irfw_section *g = irfw_config_section(&cfg, "irfw");
	assert_non_null(g);
	const struct irfw_kv_line *kv = irfw_section_find(g, "pipeline");
	assert_non_null(kv);
	assert_string_equal(kv->value, "a, b, c"); /* continuation joined */
	assert_int_equal(kv->line, 3);
	kv = irfw_section_find(g, "region");
	assert_int_equal(kv->line, 5);
	kv = irfw_section_find(irfw_config_section(&cfg, "a"), "key");
	assert_string_equal(kv->value, "v");
	assert_int_equal(kv->line, 8);
	irfw_config_free(&cfg);
	unlink(path);
	free(path);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct irfw_config cfg;
	assert_int_not_equal(irfw_config_load("/nonexistent/irfw.ini", &cfg), 0);
	assert_true(has_error(&cfg, "/nonexistent/irfw.ini", "No such file"));
	irfw_config_free(&cfg);
}

static void test_long_line(void **state)
{
	(void)state;
	char text[600];
	char value[300];
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	snprintf(text, sizeof(text), "[irfw]\npipeline = a\n[a]\nkey = %s\n", value);
	char *path = write_tmp(text);
	struct irfw_config cfg;
	assert_int_not_equal(irfw_config_load(path, &cfg), 0);
	char where[64];
	snprintf(where, sizeof(where), "%s:4:", path);
	assert_true(has_error(&cfg, where, "longer than"));
	irfw_config_free(&cfg);
	unlink(path);
	free(path);

	/* 199 characters still fit. */
	memset(value, 'y', 195);
	value[195] = '\0';
	snprintf(text, sizeof(text), "[a]\nk = %s\n", value);
	assert_int_equal(strlen(strchr(text, 'k')) - 1, 199);
	path = write_tmp(text);
	assert_int_equal(irfw_config_load(path, &cfg), 0);
	assert_int_equal(strlen(irfw_section_find(irfw_config_section(&cfg, "a"), "k")->value), 195);
	irfw_config_free(&cfg);
	unlink(path);
	free(path);
}

static void test_duplicate_and_syntax(void **state)
{
	(void)state;
	char *path = write_tmp("[a]\nk = 1\nk = 2\n[b\nno equals here\n");
	struct irfw_config cfg;
	assert_int_not_equal(irfw_config_load(path, &cfg), 0);
	char where[64];
	snprintf(where, sizeof(where), "%s:3:", path);
	assert_true(has_error(&cfg, where, "already set on line 2"));
	irfw_config_free(&cfg);
	unlink(path);
	free(path);

	path = write_tmp("[a]\nk = 1\n[b\n");
	assert_int_not_equal(irfw_config_load(path, &cfg), 0);
	snprintf(where, sizeof(where), "%s:3:", path);
	assert_true(has_error(&cfg, where, "syntax"));
	irfw_config_free(&cfg);
	unlink(path);
	free(path);

	path = write_tmp("k = 1\n");
	assert_int_not_equal(irfw_config_load(path, &cfg), 0);
	assert_true(has_error(&cfg, ":1:", "outside any [section]"));
	irfw_config_free(&cfg);
	unlink(path);
	free(path);

	/* Blanks inside the brackets are not part of the name: [ a ] is [a],
	 * the same section, and its first header is the section's line. */
	path = write_tmp("[ a ]\nk = 1\n[\ta]\nj = 2\n[a ]\nk = 3\n");
	assert_int_not_equal(irfw_config_load(path, &cfg), 0);
	assert_int_equal(cfg.n_sections, 1);
	assert_string_equal(cfg.sections[0].name, "a");
	assert_int_equal(cfg.sections[0].line, 1);
	assert_non_null(irfw_section_find(irfw_config_section(&cfg, "a"), "j"));
	snprintf(where, sizeof(where), "%s:6:", path);
	assert_true(has_error(&cfg, where, "[a] key 'k' is already set on line 2"));
	irfw_config_free(&cfg);
	unlink(path);
	free(path);

	/* A header of blanks names nothing: said once, at the header. */
	path = write_tmp("[a]\nk = 1\n[  ]\nj = 2\nl = 3\n");
	assert_int_not_equal(irfw_config_load(path, &cfg), 0);
	assert_int_equal(cfg.n_errors, 1);
	snprintf(where, sizeof(where), "%s:3:", path);
	assert_true(has_error(&cfg, where, "section header without a name"));
	irfw_config_free(&cfg);
	unlink(path);
	free(path);
}

static const struct irfw_option opts[] = {
    {"name", IRFW_OPT_STRING, "x-${instance_id}", 0, "n", NULL},
    {"count", IRFW_OPT_INT, "3", 0, "c", NULL},
    {"flag", IRFW_OPT_BOOL, "false", 0, "f", NULL},
    {"mode", IRFW_OPT_ENUM, "a", 0, "m", "a|bb"},
    {"must", IRFW_OPT_STRING, NULL, IRFW_OPT_REQUIRED, "r", NULL},
    {"secret", IRFW_OPT_STRING, NULL, IRFW_OPT_SECRET, "s", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static void test_validate(void **state)
{
	(void)state;
	char *path = write_tmp("[s]\ncount = many\nflag = perhaps\nmode = c\nbogus = 1\n"
	                       "name = ${instanceid}\nsecret = ${nope} hunter2\non_error = stop\n");
	struct irfw_config cfg;
	assert_int_equal(irfw_config_load(path, &cfg), 0);
	irfw_config_validate(&cfg, irfw_config_section(&cfg, "s"), opts, irfw_step_options);
	assert_true(has_error(&cfg, ":2:", "expected an integer"));
	assert_true(has_error(&cfg, ":3:", "expected a boolean"));
	assert_true(has_error(&cfg, ":4:", "expected one of a|bb"));
	assert_true(has_error(&cfg, ":5:", "unknown key 'bogus'"));
	assert_true(has_error(&cfg, ":6:", "unknown variable ${instanceid}"));
	assert_true(has_error(&cfg, ":1:", "required key 'must' is missing"));
	/* A secret's value never appears in an error. */
	assert_true(has_error(&cfg, ":7:", "(secret)"));
	for (size_t i = 0; i < cfg.n_errors; i++)
		assert_null(strstr(cfg.errors[i], "hunter2"));
	assert_int_equal(cfg.n_errors, 7);
	irfw_config_free(&cfg);
	unlink(path);
	free(path);
}

static void test_templates(void **state)
{
	(void)state;
	struct irfw_vars v = {.account_id = "123456789012",
	                      .region = "eu-west-1",
	                      .instance_id = "i-0abc",
	                      .vpc_id = "vpc-1",
	                      .case_id = "IR-1",
	                      .now = 86400 * 365};
	const char *err = NULL;
	char *s = irfw_template_expand("s3-access-logs.${account_id}-${region}/$${x}/${date}/${name_tag}.",
	                               &v, &err);
	assert_non_null(s);
	assert_string_equal(s, "s3-access-logs.123456789012-eu-west-1/${x}/1971-01-01/.");
	free(s);
	assert_null(irfw_template_expand("${nope}", &v, &err));
	assert_non_null(err);
	v.vpc_id = NULL;
	assert_null(irfw_template_expand("${vpc_id}", &v, &err));
	assert_non_null(strstr(err, "no value"));
	assert_null(irfw_template_check("a ${case_id} $$ b"));
	assert_non_null(irfw_template_check("a $b"));
	assert_non_null(irfw_template_check("a ${case_id"));
}

static void test_helpers(void **state)
{
	(void)state;
	assert_true(irfw_valid_instance_id("i-0123456789abcdef0"));
	assert_true(irfw_valid_instance_id("i-0123abcd"));
	assert_false(irfw_valid_instance_id("i-0123456789ABCDEF0"));
	assert_false(irfw_valid_instance_id("i-0123"));
	assert_false(irfw_valid_instance_id("sg-0123abcd"));
	assert_false(irfw_valid_instance_id("i-0123abcd; rm -rf /"));
	char **v = NULL;
	assert_int_equal(irfw_split_list(" a, b  c,,d ", &v), 4);
	assert_string_equal(v[3], "d");
	assert_null(v[4]);
	irfw_strv_free(v);
	bool b;
	assert_true(irfw_parse_bool("Yes", &b) && b);
	assert_false(irfw_parse_bool("maybe", &b));
	size_t n;
	char *dec = irfw_base64_decode("aGVs\nbG8=", &n);
	assert_non_null(dec);
	assert_int_equal(n, 5);
	assert_memory_equal(dec, "hello", 5);
	free(dec);
	assert_null(irfw_base64_decode("abc", &n));
	char hex[65], b64[45];
	irfw_sha256("abc", 3, hex, b64);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_string_equal(b64, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");

	/* "é" is two bytes: a cut inside it backs up to its start. */
	assert_int_equal(irfw_utf8_prefix("ab\xc3\xa9z", 5, 3), 2);
	assert_int_equal(irfw_utf8_prefix("ab\xc3\xa9z", 5, 4), 4);
	assert_int_equal(irfw_utf8_prefix("abc", 3, 10), 3);
	cJSON *o = cJSON_Parse("{\"n\":7,\"s\":\"x\"}");
	assert_int_equal(irfw_json_int(o, "n", -1), 7);
	assert_int_equal(irfw_json_int(o, "s", -1), -1);
	assert_string_equal(irfw_json_str(o, "s"), "x");
	assert_null(irfw_json_str(o, "n"));
	cJSON_Delete(o);

	irfw_strbuf *sb = irfw_strbuf_new();
	assert_string_equal(irfw_strbuf_str(sb), "");
	irfw_strbuf_puts(sb, "step ");
	for (int i = 0; i < 200; i++)
		irfw_strbuf_printf(sb, "%d,", i);
	assert_int_equal(irfw_strbuf_len(sb), strlen(irfw_strbuf_str(sb)));
	irfw_strbuf_truncate(sb, 7);
	assert_string_equal(irfw_strbuf_str(sb), "step 0,");
	char *text = irfw_strbuf_steal(sb);
	assert_string_equal(text, "step 0,");
	free(text);
}

static void check_escape(const char *in, const char *want)
{
	char *got = irfw_escape_text(in);
	assert_string_equal(got, want);
	free(got);
}

/* Well-formed UTF-8 only: what JSON and AWS tags can hold. */
static void test_utf8_valid(void **state)
{
	(void)state;
	assert_true(irfw_utf8_valid(""));
	assert_true(irfw_utf8_valid("plain ascii"));
	assert_true(irfw_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92")); /* é € 🔒 */
	assert_false(irfw_utf8_valid("A\xff\xfe"
	                             "B"));                /* not UTF-8 at all */
	assert_false(irfw_utf8_valid("\xc3("));            /* a lead byte cut off */
	assert_false(irfw_utf8_valid("\xc0\xaf"));         /* overlong '/' */
	assert_false(irfw_utf8_valid("\xe0\x80\xaf"));     /* overlong, three bytes */
	assert_false(irfw_utf8_valid("\xed\xa0\x80"));     /* a surrogate */
	assert_false(irfw_utf8_valid("\xf4\x90\x80\x80")); /* above U+10FFFF */
	assert_false(irfw_utf8_valid("\xe2\x82"));         /* truncated at the end */

	/* And the site file refuses it where it stands. */
	char *path = write_tmp("[irfw]\npipeline = a\n[a]\ngreeting = A\xff\xfe"
	                       "B\n");
	struct irfw_config cfg;
	assert_int_not_equal(irfw_config_load(path, &cfg), 0);
	char where[64];
	snprintf(where, sizeof(where), "%s:4:", path);
	assert_true(has_error(&cfg, where, "not UTF-8"));
	irfw_config_free(&cfg);
	unlink(path);
	free(path);
}

static void test_escape(void **state)
{
	(void)state;
	check_escape("web-1 (prod)", "web-1 (prod)");
	check_escape("caf\xc3\xa9", "caf\xc3\xa9"); /* UTF-8 stays */
	check_escape("a\nb\tc", "a\\x0ab\\x09c");
	check_escape("x\x1b[2Jy\x7f", "x\\x1b[2Jy\\x7f");
	check_escape("\xe2\x80\xaegnp.exe", "\\u202egnp.exe"); /* U+202E */
	check_escape("\xc2\x9b", "\\x9b");                     /* C1 CSI */
	check_escape("\xff\xc3", "\\xff\\xc3");                /* not UTF-8 */
	check_escape("back\\slash", "back\\\\slash");
	assert_null(irfw_escape_text(NULL));
	assert_true(irfw_text_is_safe("plain text \xc3\xa9"));
	assert_false(irfw_text_is_safe("two\nlines"));
	assert_false(irfw_text_is_safe("\xe2\x81\xa6isolate"));
}

static void test_operator_values(void **state)
{
	(void)state;
	assert_true(irfw_valid_sg_id("sg-0123456789abcdef0"));
	assert_true(irfw_valid_sg_id("sg-01234567"));
	assert_false(irfw_valid_sg_id("sg-0123"));
	assert_false(irfw_valid_sg_id("web"));
	assert_true(irfw_valid_region("us-east-1"));
	assert_true(irfw_valid_region("us-gov-west-1"));
	assert_true(irfw_valid_region("ap-southeast-4"));
	assert_false(irfw_valid_region("us-east"));
	assert_false(irfw_valid_region("US-EAST-1"));
	assert_false(irfw_valid_region("us-east-1; rm -rf"));
	assert_true(irfw_valid_bucket("irfw-evidence.example"));
	assert_false(irfw_valid_bucket("ab"));
	assert_false(irfw_valid_bucket("Evidence"));
	assert_false(irfw_valid_bucket("a..b"));
	assert_false(irfw_valid_bucket("192.168.1.1"));
	assert_false(irfw_valid_bucket("-lead"));
	assert_true(irfw_valid_topic_arn("arn:aws:sns:eu-west-1:123456789012:oncall"));
	assert_true(irfw_valid_topic_arn("arn:aws-us-gov:sns:us-gov-west-1:123456789012:a_b-c.fifo"));
	assert_false(irfw_valid_topic_arn("arn:aws:sqs:eu-west-1:123456789012:q"));
	assert_false(irfw_valid_topic_arn("arn:aws:sns:eu-west-1:1234:oncall"));
	assert_false(irfw_valid_topic_arn("arn:aws:sns:eu-west-1:123456789012:"));
	assert_false(irfw_valid_topic_arn("oncall"));
}

static void test_template_context(void **state)
{
	(void)state;
	static const char *const case_vars[] = {"date", "time", NULL};
	assert_null(irfw_template_check_vars("IR-${date}-${time}", case_vars));
	const char *why = irfw_template_check_vars("IR-${name_tag}", case_vars);
	assert_non_null(why);
	assert_non_null(strstr(why, "no variable ${name_tag}"));
	assert_null(irfw_template_check("${outcome}: ${instance_id} ${containment}"));
}

static void test_iam_action(void **state)
{
	(void)state;
	char a[128];
	assert_string_equal(irfw_iam_action("ec2", "ModifyNetworkInterfaceAttribute", a),
	                    "ec2:ModifyNetworkInterfaceAttribute");
	assert_string_equal(irfw_iam_action("s3", "HeadObject", a), "s3:GetObject");
	assert_string_equal(irfw_iam_action("s3", "UploadPart", a), "s3:PutObject");
	assert_string_equal(irfw_iam_action("s3", "HeadBucket", a), "s3:ListBucket");
	assert_string_equal(irfw_iam_action("elb", "DescribeLoadBalancers", a),
	                    "elasticloadbalancing:DescribeLoadBalancers");
	assert_string_equal(irfw_iam_action("sns", "Publish", a), "sns:Publish");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),         cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_long_line),        cmocka_unit_test(test_duplicate_and_syntax),
	    cmocka_unit_test(test_validate),         cmocka_unit_test(test_templates),
	    cmocka_unit_test(test_helpers),          cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_utf8_valid),       cmocka_unit_test(test_operator_values),
	    cmocka_unit_test(test_template_context), cmocka_unit_test(test_iam_action),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
