// SPDX-License-Identifier: Apache-2.0
/*
 * PII detectors: a table of texts with the matches each must produce (as
 * "kind:text"), including look-alikes that must not match (Luhn-invalid
 * numbers, SSNs in never-issued ranges, IBANs with a wrong check, IP-like
 * version strings), and the three masking styles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bridle/mask.h"

struct mask_case {
	const char *text;
	const char *want; /* "kind:match|kind:match", "" for none */
};

static const struct mask_case cases[] = {
	{ "mail alice@example.com now", "email:alice@example.com" },
	{ "a.b+tag@sub.example.org.", "email:a.b+tag@sub.example.org" },
	{ "not@an-email", "" },
	{ "x@y.c", "" },
	{ "card 4111 1111 1111 1111 ok", "credit_card:4111 1111 1111 1111" },
	{ "4111-1111-1111-1111", "credit_card:4111-1111-1111-1111" },
	{ "5500005555555559", "credit_card:5500005555555559" },
	{ "4111111111111112", "" }, /* Luhn fails */
	{ "order 1234567890123", "" },
	{ "ssn 123-45-6789.", "us_ssn:123-45-6789" },
	{ "000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000", "" },
	{ "call +1 415 555 0100", "phone:+1 415 555 0100" },
	{ "(415) 555-0100", "phone:(415) 555-0100" },
	{ "415-555-0100", "phone:415-555-0100" },
	{ "iban GB82 WEST 1234 5698 7654 32 end",
	  "iban:GB82 WEST 1234 5698 7654 32" },
	{ "DE89370400440532013000", "iban:DE89370400440532013000" },
	{ "GB82WEST12345698765433", "" }, /* check digits wrong */
	{ "from 10.77.0.1:5432", "ipv4:10.77.0.1" },
	{ "version 1.2.3.4.5", "" },
	{ "256.1.1.1", "" },
	{ "key AKIAIOSFODNN7EXAMPLE here", "aws_access_key:AKIAIOSFODNN7EXAMPLE" },
	{ "AKIAIOSFODNN7EXAMPLEX", "" },
	{ "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE "
	  "KEY----- tail",
	  "private_key:-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA "
	  "PRIVATE KEY-----" },
	{ "tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig_-x end",
	  "jwt:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig_-x" },
	{ "eyJ.notjwt", "" },
	{ "bob@x.io paid with 4111111111111111 from 192.168.1.10",
	  "email:bob@x.io|credit_card:4111111111111111|ipv4:192.168.1.10" },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct mask_match m[8];
		char got[512] = "";
		size_t off = 0,
		       n = mask_scan(cases[i].text, strlen(cases[i].text),
				     MASK_ALL, m, 8);

		for (size_t k = 0; k < n && k < 8; k++)
			off += (size_t)snprintf(got + off, sizeof(got) - off,
						"%s%s:%.*s", k ? "|" : "",
						mask_detector_name(m[k].kind),
						(int)m[k].len,
						cases[i].text + m[k].off);
		if (strcmp(got, cases[i].want))
			fail_msg("\"%s\"\n  got:  %s\n  want: %s",
				 cases[i].text, got, cases[i].want);
	}
}

static void test_only_enabled(void **state)
{
	const char *t = "bob@x.io 4111111111111111";
	struct mask_match m[4];

	(void)state;
	assert_int_equal(mask_scan(t, strlen(t), 1u << MASK_CREDIT_CARD, m, 4),
			 1);
	assert_int_equal(m[0].kind, MASK_CREDIT_CARD);
	assert_int_equal(mask_scan(t, strlen(t), 0, m, 4), 0);
	/* More matches than room: counted, not stored past max. */
	assert_int_equal(mask_scan(t, strlen(t), MASK_ALL, m, 1), 2);
}

/*
 * The Vectorscan prefilter never hides what the exact walk finds: the
 * table's values, and many generated strings of the characters the
 * detectors care about, each detector alone and all together.
 */
static void test_prefilter_agrees(void **state)
{
	static const char alphabet[] = "0123456789-- ..@+()ABKIZeyJa_xX";
	char buf[64];
	unsigned seed = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		for (int d = 0; d < MASK_NDETECTORS; d++)
			assert_int_equal(
				mask_scan(cases[i].text, strlen(cases[i].text),
					  1u << d, NULL, 0),
				mask_scan_exact(cases[i].text,
						strlen(cases[i].text), 1u << d,
						NULL, 0));
	for (int round = 0; round < 200000; round++) {
		size_t len = 8 + (seed = seed * 1103515245 + 12345) % 40;

		for (size_t k = 0; k < len; k++) {
			seed = seed * 1103515245 + 12345;
			buf[k] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		for (int d = 0; d < MASK_NDETECTORS; d++)
			if (mask_scan(buf, len, 1u << d, NULL, 0) !=
			    mask_scan_exact(buf, len, 1u << d, NULL, 0))
				fail_msg("prefilter hides %s in '%.*s'",
					 mask_detector_name(d), (int)len, buf);
	}
}

static void test_validators(void **state)
{
	(void)state;
	assert_true(mask_luhn_valid("4111111111111111", 16));
	assert_false(mask_luhn_valid("4111111111111112", 16));
	assert_false(mask_luhn_valid("0000", 4)); /* too short */
	assert_true(mask_iban_valid("GB82 WEST 1234 5698 7654 32", 27));
	assert_false(mask_iban_valid("GB82 WEST 1234 5698 7654 33", 27));
	assert_true(mask_ssn_valid("123-45-6789", 11));
	assert_false(mask_ssn_valid("666-45-6789", 11));
	assert_int_equal(mask_detector_from_name("credit_card"),
			 MASK_CREDIT_CARD);
	assert_int_equal(mask_detector_from_name("nope"), -1);
}

static void test_render(void **state)
{
	const uint8_t key[] = "k1", key2[] = "k2";
	char a[64], b[64], c[64];

	(void)state;
	assert_int_equal(mask_render(MASK_REDACT, MASK_CREDIT_CARD, "4111", 4,
				     NULL, 0, a, sizeof(a)),
			 (int)strlen("[REDACTED:CREDIT_CARD]"));
	assert_string_equal(a, "[REDACTED:CREDIT_CARD]");
	assert_int_equal(mask_render(MASK_PARTIAL, MASK_CREDIT_CARD,
				     "4111111111111111", 16, NULL, 0, a,
				     sizeof(a)),
			 16);
	assert_string_equal(a, "************1111");
	assert_int_equal(mask_render(MASK_PARTIAL, MASK_EMAIL, "abc", 3, NULL,
				     0, a, sizeof(a)),
			 3);
	assert_string_equal(a, "***");
	/* Keyed and stable: same key, same hash; another key, another. */
	assert_true(mask_render(MASK_HASH, MASK_EMAIL, "a@b.io", 6, key, 2, a,
				sizeof(a)) > 0);
	assert_true(mask_render(MASK_HASH, MASK_EMAIL, "a@b.io", 6, key, 2, b,
				sizeof(b)) > 0);
	assert_true(mask_render(MASK_HASH, MASK_EMAIL, "a@b.io", 6, key2, 2, c,
				sizeof(c)) > 0);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strncmp(a, "[HASH:", 6), 0);
	assert_int_equal(mask_render(MASK_REDACT, MASK_EMAIL, "x", 1, NULL, 0,
				     a, 8),
			 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_only_enabled),
		cmocka_unit_test(test_prefilter_agrees),
		cmocka_unit_test(test_validators),
		cmocka_unit_test(test_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
