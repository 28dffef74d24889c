/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For unit tests of the policy: compile a policy from JSON text, as the
 * file "p.json". Include after cmocka.h.
 */
#ifndef BRIDLE_TEST_POLICY_TEXT_H
#define BRIDLE_TEST_POLICY_TEXT_H

#include "bridle/policy.h"

/* The first error goes to @err; with @all, every error is appended there
 * too (as `bridle policy check` collects them). */
static struct policy *compile_text(const char *text, char *err, size_t errlen,
				   json_t *all)
{
	json_error_t je;
	struct policy *p;
	struct jv v;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	if (!root)
		fail_msg("test policy does not parse: %s\n%s", je.text, text);
	jv_init(&v, "p.json", err, errlen);
	v.all = all;
	p = policy_compile(&v, root);
	json_decref(root);
	return p;
}

#endif
