/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User identity: a token the agent presents (the PostgreSQL password, later
 * an HTTP bearer token or the Redis AUTH password) is verified against the
 * policy's issuers, and its claims become the user the rules match.
 * Workload and process identity come from the kernel (session.c); nothing
 * here trusts what the agent says about itself beyond a signed token.
 */
#ifndef BRIDLE_IDENTITY_H
#define BRIDLE_IDENTITY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bridle/jwt.h"
#include "bridle/policy.h"

/* A verified user; u's strings point into the claims it owns. */
struct identity_user {
	struct policy_user u;
	struct jwt_claims claims;
	const char **groups;
	char **scopes;
	size_t nscopes;
	char *issuer; /* the issuer's name: a copy, the user outlives reloads */
};

/*
 * Verify @token (@len bytes) against the issuer of @p whose "iss" it
 * carries, at @now (seconds). Returns 0 and a new user in *@out, or -1
 * with a reason that may be shown to the agent (it never holds the
 * token) in @err.
 */
int identity_authenticate(const struct policy *p, const char *token, size_t len,
			  int64_t now, struct identity_user **out, char *err,
			  size_t errlen);
void identity_user_free(struct identity_user *u);

/* The user JSON object @claims names under issuer @is, taken as verified
 * (`bridle policy explain --claims`). Returns 0 and a new user, or -1
 * with @err. */
int identity_user_from_claims(const struct policy_issuer *is, json_t *claims,
			      struct identity_user **out, char *err,
			      size_t errlen);

/* {"issuer", "sub", "email", "groups"} for logs; a new reference. */
json_t *identity_user_json(const struct identity_user *u);

#endif
