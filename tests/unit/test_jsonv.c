// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for user/jsonv.c, the validating walk under the config and
 * policy loaders: the JSON path follows pushes and pops, the first error is
 * kept, and every getter names the file, the path and the reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridle/jsonv.h"

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	if (!j)
		fail_msg("test JSON does not parse: %s: %s", text, je.text);
	return j;
}

static void test_path_push_pop(void **state)
{
	char err[256];
	struct jv v;
	size_t a, b, c;

	(void)state;
	jv_init(&v, "f.json", err, sizeof(err));
	assert_string_equal(v.path, "$");
	assert_string_equal(err, "");
	a = jv_push_key(&v, "workloads");
	b = jv_push_index(&v, 12);
	c = jv_push_key(&v, "cgroup");
	assert_string_equal(v.path, "$.workloads[12].cgroup");
	jv_pop(&v, c);
	assert_string_equal(v.path, "$.workloads[12]");
	jv_pop(&v, b);
	assert_string_equal(v.path, "$.workloads");
	jv_pop(&v, a);
	assert_string_equal(v.path, "$");
}

static void test_path_overflow_truncates(void **state)
{
	char err[512], key[100];
	struct jv v;
	size_t olds[10];

	(void)state;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	jv_init(&v, "f.json", err, sizeof(err));
	for (size_t i = 0; i < 10; i++)
		olds[i] = jv_push_key(&v, key);
	assert_true(strlen(v.path) < sizeof(v.path));
	for (size_t i = 10; i-- > 0;)
		jv_pop(&v, olds[i]);
	assert_string_equal(v.path, "$");
}

static void test_fail_format_and_first_error_kept(void **state)
{
	char err[256];
	struct jv v;
	size_t old;

	(void)state;
	jv_init(&v, "conf.json", err, sizeof(err));
	old = jv_push_key(&v, "policy");
	assert_int_equal(jv_fail(&v, "default", "bad %d", 42), -1);
	assert_string_equal(err, "conf.json: $.policy.default: bad 42");
	assert_int_equal(jv_fail(&v, "other", "second"), -1);
	assert_string_equal(err, "conf.json: $.policy.default: bad 42");
	jv_pop(&v, old);

	jv_init(&v, "conf.json", err, sizeof(err));
	assert_string_equal(err, "");
	jv_fail(&v, NULL, "at the root");
	assert_string_equal(err, "conf.json: $: at the root");
}

static void test_fail_small_or_no_buffer(void **state)
{
	char err[12];
	struct jv v;

	(void)state;
	jv_init(&v, "conf.json", err, sizeof(err));
	assert_int_equal(jv_fail(&v, "key", "long reason here"), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "conf.json: ", 11);

	jv_init(&v, "conf.json", NULL, 0);
	assert_int_equal(jv_fail(&v, "key", "nowhere to go"), -1);
}

static void test_object_keys(void **state)
{
	static const char *const allowed[] = { "a", "b", NULL };
	char err[256];
	struct jv v;
	json_t *j;

	(void)state;
	j = parse("{\"a\": 1, \"b\": 2}");
	jv_init(&v, "f.json", err, sizeof(err));
	assert_int_equal(jv_object(&v, j, allowed), 0);
	assert_string_equal(err, "");
	json_decref(j);

	j = parse("{}");
	assert_int_equal(jv_object(&v, j, allowed), 0);
	json_decref(j);

	j = parse("{\"a\": 1, \"c\": 2}");
	assert_int_equal(jv_object(&v, j, allowed), -1);
	assert_string_equal(err, "f.json: $.c: unknown key (allowed: a, b)");
	json_decref(j);

	static const struct {
		const char *text, *err;
	} types[] = {
		{ "[]", "f.json: $: expected an object, found an array" },
		{ "\"x\"", "f.json: $: expected an object, found a string" },
		{ "1", "f.json: $: expected an object, found an integer" },
		{ "1.5", "f.json: $: expected an object, found a number" },
		{ "true", "f.json: $: expected an object, found a boolean" },
		{ "null", "f.json: $: expected an object, found null" },
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		j = json_loads(types[i].text, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		jv_init(&v, "f.json", err, sizeof(err));
		assert_int_equal(jv_object(&v, j, allowed), -1);
		assert_string_equal(err, types[i].err);
		json_decref(j);
	}
}

static void test_object_unknown_key_hint_truncated(void **state)
{
	const char *allowed[40];
	char names[40][16], err[512];
	struct jv v;
	json_t *j;

	(void)state;
	for (size_t i = 0; i < 39; i++) {
		snprintf(names[i], sizeof(names[i]), "key_number_%02zu", i);
		allowed[i] = names[i];
	}
	allowed[39] = NULL;
	j = parse("{\"nope\": 1}");
	jv_init(&v, "f.json", err, sizeof(err));
	assert_int_equal(jv_object(&v, j, allowed), -1);
	assert_non_null(strstr(err, "f.json: $.nope: unknown key (allowed: "
				    "key_number_00, key_number_01"));
	json_decref(j);
}

static void test_string(void **state)
{
	char err[256];
	struct jv v;
	const char *s = "default";
	json_t *j = parse("{\"s\": \"value\", \"n\": 1, \"e\": \"\"}");

	(void)state;
	jv_init(&v, "f.json", err, sizeof(err));
	assert_int_equal(jv_string(&v, j, "s", true, &s), 0);
	assert_string_equal(s, "value");
	s = "default";
	assert_int_equal(jv_string(&v, j, "missing", false, &s), 0);
	assert_string_equal(s, "default");
	assert_string_equal(err, "");

	assert_int_equal(jv_string(&v, j, "missing", true, &s), -1);
	assert_string_equal(err, "f.json: $.missing: required key is missing");

	jv_init(&v, "f.json", err, sizeof(err));
	assert_int_equal(jv_string(&v, j, "n", false, &s), -1);
	assert_string_equal(err,
			    "f.json: $.n: expected a string, found an integer");

	jv_init(&v, "f.json", err, sizeof(err));
	assert_int_equal(jv_string(&v, j, "e", false, &s), -1);
	assert_string_equal(err, "f.json: $.e: must not be empty");
	assert_string_equal(s, "default");
	json_decref(j);
}

static void test_uint(void **state)
{
	static const struct {
		const char *text;
		int ret;
		uint64_t value;
		const char *err;
	} cases[] = {
		{ "{\"n\": 5}", 0, 5, "" },
		{ "{\"n\": 1}", 0, 1, "" },
		{ "{\"n\": 10}", 0, 10, "" },
		{ "{}", 0, 99, "" },
		{ "{\"n\": 0}", -1, 99, "f.json: $.n: 0 is out of range 1..10" },
		{ "{\"n\": 11}", -1, 99, "f.json: $.n: 11 is out of range 1..10" },
		{ "{\"n\": -1}", -1, 99, "f.json: $.n: -1 is out of range 1..10" },
		{ "{\"n\": -9223372036854775808}", -1, 99,
		  "f.json: $.n: -9223372036854775808 is out of range 1..10" },
		{ "{\"n\": 9223372036854775807}", -1, 99,
		  "f.json: $.n: 9223372036854775807 is out of range 1..10" },
		{ "{\"n\": 5.0}", -1, 99,
		  "f.json: $.n: expected an integer, found a number" },
		{ "{\"n\": \"5\"}", -1, 99,
		  "f.json: $.n: expected an integer, found a string" },
		{ "{\"n\": true}", -1, 99,
		  "f.json: $.n: expected an integer, found a boolean" },
		{ "{\"n\": null}", -1, 99,
		  "f.json: $.n: expected an integer, found null" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256];
		struct jv v;
		uint64_t n = 99;
		json_t *j = parse(cases[i].text);

		jv_init(&v, "f.json", err, sizeof(err));
		assert_int_equal(jv_uint(&v, j, "n", false, 1, 10, &n),
				 cases[i].ret);
		assert_int_equal(n, cases[i].value);
		assert_string_equal(err, cases[i].err);
		json_decref(j);
	}
}

static void test_uint_required(void **state)
{
	char err[256];
	struct jv v;
	uint64_t n = 7;
	json_t *j = parse("{}");

	(void)state;
	jv_init(&v, "f.json", err, sizeof(err));
	assert_int_equal(jv_uint(&v, j, "n", true, 0, 10, &n), -1);
	assert_string_equal(err, "f.json: $.n: required key is missing");
	assert_int_equal(n, 7);
	json_decref(j);
}

static void test_bool(void **state)
{
	char err[256];
	struct jv v;
	bool b = false;
	json_t *j = parse("{\"t\": true, \"f\": false, \"n\": 0}");

	(void)state;
	jv_init(&v, "f.json", err, sizeof(err));
	assert_int_equal(jv_bool(&v, j, "t", &b), 0);
	assert_true(b);
	assert_int_equal(jv_bool(&v, j, "f", &b), 0);
	assert_false(b);
	b = true;
	assert_int_equal(jv_bool(&v, j, "missing", &b), 0);
	assert_true(b);
	assert_int_equal(jv_bool(&v, j, "n", &b), -1);
	assert_string_equal(err,
			    "f.json: $.n: expected true or false, found an "
			    "integer");
	json_decref(j);
}

static char *write_temp(const char *text)
{
	char *path = strdup("/tmp/bridle-test-jsonv-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_load_file(void **state)
{
	char err[512], want[600];
	char *ok = write_temp("{\"a\": [1, 2]}\n");
	char *bad = write_temp("{\"a\": 1,\n \"a\": 2}\n");
	char *broken = write_temp("{\"a\": \n");
	json_t *j;

	(void)state;
	j = jv_load_file(ok, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "a")), 2);
	json_decref(j);

	/* Duplicate keys are refused, with file:line:column. */
	assert_null(jv_load_file(bad, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2:", bad);
	assert_memory_equal(err, want, strlen(want));
	assert_non_null(strstr(err, "invalid JSON: duplicate object key"));

	assert_null(jv_load_file(broken, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2:", broken);
	assert_memory_equal(err, want, strlen(want));
	assert_non_null(strstr(err, "invalid JSON: "));

	assert_int_equal(unlink(ok), 0);
	assert_null(jv_load_file(ok, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory",
		 ok);
	assert_string_equal(err, want);
	unlink(bad);
	unlink(broken);
	free(ok);
	free(bad);
	free(broken);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_push_pop),
		cmocka_unit_test(test_path_overflow_truncates),
		cmocka_unit_test(test_fail_format_and_first_error_kept),
		cmocka_unit_test(test_fail_small_or_no_buffer),
		cmocka_unit_test(test_object_keys),
		cmocka_unit_test(test_object_unknown_key_hint_truncated),
		cmocka_unit_test(test_string),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_uint_required),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
