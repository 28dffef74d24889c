// SPDX-License-Identifier: Apache-2.0
/*
 * A user token from a hostile agent (the PostgreSQL password of a target
 * that requires a user), through identity_authenticate: the unverified
 * issuer peek, verification with the issuer's keys (tests/docs/jwks.json,
 * the public half of the key the seeds were signed with), and the claims
 * that become the user (groups, scopes). Nothing may crash or leak, and a
 * user that verifies must be well formed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/identity.h"
#include "bridle/policy.h"

static const char policy_json[] =
	"{\"issuers\": [{\"name\": \"corp\", \"issuer\": "
	"\"https://idp.example.com\", \"audience\": [\"bridle\", \"x\"], "
	"\"jwks_file\": \"tests/docs/jwks.json\", \"scopes_claim\": "
	"\"scope\"}, {\"name\": \"other\", \"issuer\": \"https://other\", "
	"\"audience\": \"bridle\", \"jwks_file\": \"tests/docs/jwks.json\", "
	"\"groups_claim\": \"roles\"}]}";

static struct policy *pol;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct identity_user *u = NULL;
	char err[256];

	if (!pol) {
		struct jv v;
		json_t *root = json_loads(policy_json, 0, NULL);

		jv_init(&v, "fuzz", err, sizeof(err));
		pol = policy_compile(&v, root);
		json_decref(root);
		if (!pol)
			abort(); /* run from the repository root */
	}
	if (identity_authenticate(pol, (const char *)data, size, 1900000000,
				  &u, err, sizeof(err)) == 0) {
		if (!u || !u->u.issuer || u->u.ngroups > size ||
		    (u->u.nscopes && !u->u.scoped))
			abort();
		for (size_t i = 0; i < u->u.ngroups; i++)
			(void)strlen(u->u.groups[i]);
		for (size_t i = 0; i < u->u.nscopes; i++)
			(void)strlen(u->u.scopes[i]);
		json_decref(identity_user_json(u));
		identity_user_free(u);
	} else if (u || strlen(err) == 0) {
		abort();
	}
	return 0;
}
