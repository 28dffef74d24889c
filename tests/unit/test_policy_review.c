// SPDX-License-Identifier: Apache-2.0
/*
 * Regression tests from the review of the policy language work: the
 * all-errors mode of `bridle policy check` must not crash on an issuer
 * without a name, and a rule about an issuer must match a user of that
 * issuer whatever the length of its name (else a deny rule silently does
 * not apply).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "bridle/identity.h"
#include "bridle/policy.h"

#include "policy_text.h"

#include "ed25519_tokens.h"

#define NOW 1900000000

static char jwks_path[64];
static EVP_PKEY *key;

/* Compile @text collecting every error (as `bridle policy check`). */
static struct policy *compile_all(const char *text, json_t *errors)
{
	char err[1024];

	return compile_text(text, err, sizeof(err), errors);
}

static char *fmt(const char *f, ...)
{
	char *out = NULL;
	va_list ap;

	va_start(ap, f);
	assert_true(vasprintf(&out, f, ap) > 0);
	va_end(ap);
	return out;
}

/*
 * user/policy.c parse_issuer() returns before it sets the name when the
 * object has an unknown key (or is no object); with v->all the next
 * issuers and the rules are still parsed, and strcmp()/fnmatch() get
 * that NULL name: `bridle policy check` dies with SIGSEGV.
 */
static void test_check_issuer_without_name(void **state)
{
	static const char *const cases[] = {
		/* a second issuer compares its name with the first's */
		"{\"issuers\": [{\"nme\": \"x\", \"issuer\": \"https://a\", "
		"\"audience\": \"b\", \"jwks_file\": \"%1$s\"}, {\"name\": "
		"\"corp\", \"issuer\": \"https://b\", \"audience\": \"b\", "
		"\"jwks_file\": \"%1$s\"}], \"targets\": [], \"rules\": []}",
		/* a rule naming an issuer is checked against every name */
		"{\"issuers\": [5], \"targets\": [], \"rules\": [{\"name\": "
		"\"r\", \"when\": {\"user\": {\"issuer\": \"corp\"}}, "
		"\"action\": \"allow\"}]}",
		"{\"issuers\": [{\"nme\": \"x\"}], \"targets\": [], \"rules\": "
		"[{\"name\": \"r\", \"when\": {\"user\": {\"issuer\": "
		"\"corp\"}}, \"action\": \"allow\"}]}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = fmt(cases[i], jwks_path);
		json_t *errors = json_array();

		assert_null(compile_all(text, errors));
		assert_true(json_array_size(errors) >= 1);
		json_decref(errors);
		free(text);
	}
}

static char *token(const char *payload)
{
	return ed_token(key, "k1", payload);
}

static const uint8_t db_addr[4] = { 10, 0, 0, 5 };

/*
 * user/identity.c copies the issuer's name into a char[128]
 * (struct identity_user.issuer): a longer name is cut, and the rule's
 * issuer glob, checked against the full name when the policy compiled,
 * never matches at run time. Here the deny rule about that issuer does
 * not apply and the "any user" allow rule admits the contractor.
 */
static void test_long_issuer_name(void **state)
{
	char name[201], *text, *tok, err[256];
	struct identity_user *u = NULL;
	struct policy *p;
	struct policy_input in = {
		.workload = "agent",
		.family = AF_INET,
		.addr = db_addr,
		.port = 5432,
		.now = NOW,
	};
	struct policy_decision d;
	json_t *errors = json_array();

	(void)state;
	memset(name, 'c', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	text = fmt("{\"issuers\": [{\"name\": \"%s\", \"issuer\": "
		   "\"https://idp.example\", \"audience\": \"bridle\", "
		   "\"jwks_file\": \"%s\"}], \"targets\": [{\"name\": \"db\", "
		   "\"address\": \"10.0.0.5\", \"port\": 5432, \"protocol\": "
		   "\"postgres\", \"require_user\": true, \"credentials\": "
		   "{\"user\": \"app\", \"password_env\": \"PW\"}}], "
		   "\"rules\": [{\"name\": \"users\", \"when\": {\"user\": {}}, "
		   "\"action\": \"allow\"}, {\"name\": \"not that issuer\", "
		   "\"when\": {\"user\": {\"issuer\": \"%s\"}}, \"action\": "
		   "\"deny\"}]}",
		   name, jwks_path, name);
	p = compile_all(text, errors);
	if (!p)
		fail_msg("policy refused: %s",
			 json_string_value(json_array_get(errors, 0)));
	tok = token("{\"iss\": \"https://idp.example\", \"aud\": \"bridle\", "
		    "\"sub\": \"mallory\", \"exp\": 1900000100}");
	if (identity_authenticate(p, tok, strlen(tok), NOW, &u, err,
				  sizeof(err)))
		fail_msg("token refused: %s", err);
	in.user = &u->u;
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "not that issuer");
	identity_user_free(u);
	free(tok);
	policy_free(p);
	json_decref(errors);
	free(text);
}

static int setup(void **state)
{
	(void)state;
	key = ed_key_and_jwks("k1", jwks_path, sizeof(jwks_path));
	return key ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	unlink(jwks_path);
	EVP_PKEY_free(key);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Last: with the bug, the sanitizers abort the binary. */
		cmocka_unit_test(test_long_issuer_name),
		cmocka_unit_test(test_check_issuer_without_name),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
