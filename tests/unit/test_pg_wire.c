// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL framing: a table of startup packets and messages, each fed
 * whole and then every shorter prefix (which must ask for more, never
 * fail or succeed early), and the limits on lengths from the network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bridle/pg_wire.h"

#define BE32(x)                                                  \
	(uint8_t)((x) >> 24), (uint8_t)((x) >> 16), (uint8_t)((x) >> 8), \
		(uint8_t)(x)

struct startup_case {
	const char *name;
	uint8_t bytes[96];
	size_t len;
	ssize_t want;             /* length, or PG_INVALID */
	enum pg_startup_kind kind;
	size_t nparams;
	const char *why;          /* substring of the reason when invalid */
};

static const struct startup_case startup_cases[] = {
	{ "ssl", { BE32(8), BE32(80877103) }, 8, 8, PG_SSL_REQUEST, 0, NULL },
	{ "gssenc", { BE32(8), BE32(80877104) }, 8, 8, PG_GSSENC_REQUEST, 0,
	  NULL },
	{ "cancel", { BE32(16), BE32(80877102), BE32(4242), BE32(7) }, 16, 16,
	  PG_CANCEL_REQUEST, 0, NULL },
	{ "startup user+db",
	  { BE32(31), BE32(0x00030000), 'u', 's', 'e', 'r', 0, 'a', 'p', 'p',
	    0, 'd', 'a', 't', 'a', 'b', 'a', 's', 'e', 0, 'o', 'r', 'd', 0,
	    0 },
	  31, 31, PG_STARTUP_MESSAGE, 2, NULL },
	{ "startup 3.2", { BE32(9), BE32(0x00030002), 0 }, 9, 9,
	  PG_STARTUP_MESSAGE, 0, NULL },
	{ "ssl with a body", { BE32(12), BE32(80877103), 0, 0, 0, 0 }, 12,
	  PG_INVALID, 0, 0, "encryption request length" },
	{ "cancel too short", { BE32(12), BE32(80877102), 0, 0, 0, 0 }, 12,
	  PG_INVALID, 0, 0, "cancel request length" },
	{ "length 7", { BE32(7), BE32(0x00030000) }, 8, PG_INVALID, 0, 0,
	  "startup packet length" },
	{ "length over the limit", { BE32(10001), BE32(0x00030000) }, 8,
	  PG_INVALID, 0, 0, "startup packet length" },
	{ "protocol 2", { BE32(9), BE32(0x00020000), 0 }, 9, PG_INVALID, 0, 0,
	  "protocol version" },
	{ "no terminator", { BE32(8), BE32(0x00030000) }, 8, PG_INVALID, 0, 0,
	  "not terminated" },
	{ "value missing", { BE32(14), BE32(0x00030000), 'u', 's', 'e', 'r', 0,
			     0 },
	  14, PG_INVALID, 0, 0, "" },
	{ "value not terminated",
	  { BE32(16), BE32(0x00030000), 'u', 's', 'e', 'r', 0, 'a', 'b', 'c' },
	  16, PG_INVALID, 0, 0, "not terminated" },
	{ "junk after the list",
	  { BE32(18), BE32(0x00030000), 'u', 0, 'a', 0, 0, 'x', 0, 0 }, 18,
	  PG_INVALID, 0, 0, "not terminated" },
};

static void test_startup_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(startup_cases) / sizeof(*startup_cases);
	     i++) {
		const struct startup_case *c = &startup_cases[i];
		struct pg_startup s;
		const char *why = NULL;
		ssize_t n = pg_parse_startup(c->bytes, c->len, &s, &why);

		if (n != c->want)
			fail_msg("%s: got %zd, want %zd (%s)", c->name, n,
				 c->want, why ? why : "");
		if (c->want == PG_INVALID) {
			assert_non_null(why);
			assert_non_null(strstr(why, c->why));
			continue;
		}
		assert_int_equal(s.kind, c->kind);
		assert_int_equal(s.nparams, c->nparams);
		/* Every prefix asks for more, unless it is already invalid. */
		for (size_t k = 0; k < c->len; k++) {
			ssize_t m = pg_parse_startup(c->bytes, k, &s, &why);

			if (m != PG_NEED_MORE)
				fail_msg("%s: prefix %zu gave %zd", c->name, k,
					 m);
		}
	}
}

static void test_startup_params(void **state)
{
	const struct startup_case *c = &startup_cases[3];
	const struct pg_str *v;
	struct pg_startup s;

	(void)state;
	assert_int_equal(pg_parse_startup(c->bytes, c->len, &s, NULL), 31);
	assert_int_equal(s.version, 0x00030000);
	v = pg_startup_param(&s, "user");
	assert_non_null(v);
	assert_int_equal(v->len, 3);
	assert_memory_equal(v->p, "app", 3);
	v = pg_startup_param(&s, "database");
	assert_non_null(v);
	assert_memory_equal(v->p, "ord", 3);
	assert_null(pg_startup_param(&s, "options"));
	assert_null(pg_startup_param(&s, "use"));
}

static void test_cancel_fields(void **state)
{
	const struct startup_case *c = &startup_cases[2];
	struct pg_startup s;

	(void)state;
	assert_int_equal(pg_parse_startup(c->bytes, c->len, &s, NULL), 16);
	assert_int_equal(s.cancel_pid, 4242);
	assert_int_equal(s.cancel_key, 7);
}

static void test_too_many_params(void **state)
{
	uint8_t buf[1024];
	size_t off = 8;
	const char *why = NULL;
	struct pg_startup s;

	(void)state;
	for (int i = 0; i <= PG_MAX_STARTUP_PARAMS; i++) {
		buf[off++] = 'k';
		buf[off++] = 0;
		buf[off++] = 'v';
		buf[off++] = 0;
	}
	buf[off++] = 0;
	uint8_t hdr[8] = { BE32(off), BE32(0x00030000) };

	memcpy(buf, hdr, 8);
	assert_int_equal(pg_parse_startup(buf, off, &s, &why), PG_INVALID);
	assert_non_null(strstr(why, "too many"));
}

static void test_messages(void **state)
{
	/* Query "select 1;" then Sync, back to back. */
	const uint8_t buf[] = { 'Q', BE32(14), 's', 'e', 'l', 'e', 'c', 't',
				' ', '1', ';', 0, 'S', BE32(4) };
	struct pg_msg m;
	const char *why = NULL;
	ssize_t n;

	(void)state;
	n = pg_parse_message(buf, sizeof(buf), 1 << 20, &m, &why);
	assert_int_equal(n, 15);
	assert_int_equal(m.type, 'Q');
	assert_int_equal(m.body_len, 10);
	assert_memory_equal(m.body, "select 1;", 10);
	n = pg_parse_message(buf + 15, sizeof(buf) - 15, 1 << 20, &m, &why);
	assert_int_equal(n, 5);
	assert_int_equal(m.type, 'S');
	assert_int_equal(m.body_len, 0);
	for (size_t k = 0; k < 15; k++)
		assert_int_equal(pg_parse_message(buf, k, 1 << 20, &m, &why),
				 PG_NEED_MORE);
}

static void test_message_limits(void **state)
{
	const uint8_t short_len[] = { 'Q', BE32(3) };
	const uint8_t big[] = { 'Q', BE32(0x7fffffff) };
	const uint8_t at_limit[] = { 'd', BE32(8), 1, 2, 3, 4 };
	struct pg_msg m;
	const char *why = NULL;

	(void)state;
	assert_int_equal(pg_parse_message(short_len, 5, 100, &m, &why),
			 PG_INVALID);
	assert_non_null(strstr(why, "length"));
	/* Refused from the header alone: nothing is buffered first. */
	assert_int_equal(pg_parse_message(big, 5, 1 << 20, &m, &why),
			 PG_INVALID);
	assert_non_null(strstr(why, "too large"));
	assert_int_equal(pg_parse_message(at_limit, 9, 4, &m, &why), 9);
	assert_int_equal(pg_parse_message(at_limit, 9, 3, &m, &why),
			 PG_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup_table),
		cmocka_unit_test(test_startup_params),
		cmocka_unit_test(test_cancel_fields),
		cmocka_unit_test(test_too_many_params),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_message_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
