// SPDX-License-Identifier: Apache-2.0
/*
 * SCRAM-SHA-256 client against the RFC 7677 test vector, and the server
 * messages it must refuse: foreign nonces, missing attributes, absurd
 * iteration counts, bad salts, server errors, a wrong server signature,
 * steps out of order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "bridle/scram.h"

#define NONCE "rOprNGfwEbeRWgbNEkqO"
#define SFIRST NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SERVER_FIRST "r=" SFIRST ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define CLIENT_FINAL                       \
	"c=biws,r=" SFIRST ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void start(struct scram_client *c)
{
	char out[256], err[256];

	assert_int_equal(scram_client_first(c, "user", NONCE, out, sizeof(out),
					    err, sizeof(err)),
			 (int)strlen("n,,n=user,r=" NONCE));
	assert_string_equal(out, "n,,n=user,r=" NONCE);
}

static void test_rfc7677(void **state)
{
	struct scram_client c;
	char out[256], err[256];

	(void)state;
	start(&c);
	assert_true(scram_client_final(&c, "pencil", SERVER_FIRST,
				       strlen(SERVER_FIRST), out, sizeof(out),
				       err, sizeof(err)) > 0);
	assert_string_equal(out, CLIENT_FINAL);
	assert_int_equal(scram_client_verify(&c, SERVER_FINAL,
					     strlen(SERVER_FINAL), err,
					     sizeof(err)),
			 0);
	scram_client_clear(&c);
	for (size_t i = 0; i < sizeof(c.salted_password); i++)
		assert_int_equal(c.salted_password[i], 0);
}

static void test_random_nonce(void **state)
{
	struct scram_client a, b;
	char out1[256], out2[256], err[256];

	(void)state;
	assert_true(scram_client_first(&a, "", NULL, out1, sizeof(out1), err,
				       sizeof(err)) > 0);
	assert_true(scram_client_first(&b, "", NULL, out2, sizeof(out2), err,
				       sizeof(err)) > 0);
	assert_int_equal(strncmp(out1, "n,,n=,r=", 8), 0);
	assert_true(strlen(a.nonce) >= 24);
	assert_string_not_equal(a.nonce, b.nonce);
}

static void test_bad_server_first(void **state)
{
	static const struct {
		const char *msg, *why;
	} cases[] = {
		{ "r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce" },
		{ "r=" NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce" },
		{ "r=" SFIRST ",i=4096", "lacks" },
		{ "r=" SFIRST ",s=W22ZaJ0SNY7soEsUEjb6gQ==", "lacks" },
		{ "r=" SFIRST ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "iteration" },
		{ "r=" SFIRST ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",
		  "iteration" },
		{ "r=" SFIRST ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1", "iteration" },
		{ "r=" SFIRST ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=12x", "iteration" },
		{ "r=" SFIRST ",s=***,i=4096", "salt" },
		{ "m=ext,r=" SFIRST ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		  "extension" },
	};
	char out[256], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct scram_client c;

		start(&c);
		err[0] = '\0';
		if (scram_client_final(&c, "pencil", cases[i].msg,
				       strlen(cases[i].msg), out, sizeof(out),
				       err, sizeof(err)) != -1)
			fail_msg("accepted: %s", cases[i].msg);
		if (!strstr(err, cases[i].why))
			fail_msg("%s: reason \"%s\", want \"%s\"",
				 cases[i].msg, err, cases[i].why);
	}
}

static void test_bad_server_final(void **state)
{
	static const char *const finals[] = {
		"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		"e=invalid-proof",
		"x=1",
		"v=short",
		/* Same signature bytes, non-canonical last character. */
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4Z",
	};
	char out[256], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(finals) / sizeof(*finals); i++) {
		struct scram_client c;

		start(&c);
		assert_true(scram_client_final(&c, "pencil", SERVER_FIRST,
					       strlen(SERVER_FIRST), out,
					       sizeof(out), err,
					       sizeof(err)) > 0);
		assert_int_equal(scram_client_verify(&c, finals[i],
						     strlen(finals[i]), err,
						     sizeof(err)),
				 -1);
	}
	/* The wrong password gives a different proof, and the real server's
	 * signature no longer verifies. */
	{
		struct scram_client c;

		start(&c);
		assert_true(scram_client_final(&c, "pencil2", SERVER_FIRST,
					       strlen(SERVER_FIRST), out,
					       sizeof(out), err,
					       sizeof(err)) > 0);
		assert_string_not_equal(out, CLIENT_FINAL);
		assert_int_equal(scram_client_verify(&c, SERVER_FINAL,
						     strlen(SERVER_FINAL), err,
						     sizeof(err)),
				 -1);
	}
}

static void test_order(void **state)
{
	struct scram_client c;
	char out[256], err[256];

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(scram_client_final(&c, "p", SERVER_FIRST,
					    strlen(SERVER_FIRST), out,
					    sizeof(out), err, sizeof(err)),
			 -1);
	start(&c);
	assert_int_equal(scram_client_verify(&c, SERVER_FINAL,
					     strlen(SERVER_FINAL), err,
					     sizeof(err)),
			 -1);
	assert_int_equal(scram_client_first(&c, "a,b", NONCE, out, sizeof(out),
					    err, sizeof(err)),
			 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7677),
		cmocka_unit_test(test_random_nonce),
		cmocka_unit_test(test_bad_server_first),
		cmocka_unit_test(test_bad_server_final),
		cmocka_unit_test(test_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
