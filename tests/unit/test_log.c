// SPDX-License-Identifier: Apache-2.0
/*
 * log_utf8: bytes from agents and processes made valid UTF-8 for JSON
 * logs: well-formed characters kept, anything else (overlongs, surrogates,
 * code points past U+10FFFF, cut sequences, stray continuation bytes) one
 * U+FFFD per byte, and a cut between characters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "bridle/log.h"

#define FFFD "\xef\xbf\xbd"

static void test_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "plain ascii", "plain ascii" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "\xff", FFFD },
		{ "a\x80z", "a" FFFD "z" },
		{ "\xc0\x80", FFFD FFFD },		/* overlong NUL */
		{ "\xe0\x80\xaf", FFFD FFFD FFFD },	/* overlong '/' */
		{ "\xed\xa0\x80", FFFD FFFD FFFD },	/* a surrogate */
		{ "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD }, /* past U+10FFFF */
		{ "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },   /* U+10FFFF */
		{ "\xc3", FFFD },			/* cut at the end */
		{ "\xe2\x82", FFFD FFFD },
		{ "x\xe2\x82y", "x" FFFD FFFD "y" },
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = log_utf8(buf, sizeof(buf), cases[i].in);

		if (strcmp(buf, cases[i].out) != 0 || n != strlen(buf))
			fail_msg("case %zu: got \"%s\"", i, buf);
	}
}

static void test_cut(void **state)
{
	char buf[6];

	(void)state;
	/* "ab" + "é" + "€" = 2 + 2 + 3: only "abé" fits in 5 bytes + NUL. */
	assert_int_equal(log_utf8(buf, sizeof(buf), "ab\xc3\xa9\xe2\x82\xac"), 4);
	assert_string_equal(buf, "ab\xc3\xa9");
	assert_int_equal(log_utf8(buf, 1, "abc"), 0);
	assert_string_equal(buf, "");
	assert_int_equal(log_utf8(buf, 3, "\xff\xff"), 0); /* no room for U+FFFD */
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
