// SPDX-License-Identifier: Apache-2.0
/*
 * User identity from OIDC tokens. The issuer is chosen by the token's
 * unverified "iss" only to know which keys to verify it with; everything
 * the policy then uses comes from the verified payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/identity.h"
#include "bridle/jwks.h"

/* The "iss" of @token's payload, before any verification. */
static char *peek_issuer(const char *token, size_t len)
{
	const char *d1 = memchr(token, '.', len), *d2;
	uint8_t *buf;
	ssize_t n;
	json_t *j;
	char *iss = NULL;

	if (!d1)
		return NULL;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (!d2 || d2 - d1 - 1 > JWT_MAX_TOKEN)
		return NULL;
	buf = malloc((size_t)(d2 - d1));
	if (!buf)
		return NULL;
	n = jwt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf,
			      (size_t)(d2 - d1));
	j = n > 0 ? json_loadb((const char *)buf, (size_t)n, 0, NULL) : NULL;
	free(buf);
	if (json_is_string(json_object_get(j, "iss")))
		iss = strdup(json_string_value(json_object_get(j, "iss")));
	json_decref(j);
	return iss;
}

/* Strings of claim @v: an array of strings, or one string split at
 * spaces when @split (OAuth's "scope"). */
static int claim_strings(json_t *v, bool split, char ***out, size_t *n)
{
	size_t i, cap = 0;
	json_t *e;

	*out = NULL;
	*n = 0;
	if (json_is_string(v) && split) {
		char *copy = strdup(json_string_value(v)), *save = NULL, *tok;

		if (!copy)
			return -1;
		for (tok = strtok_r(copy, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save)) {
			char **nv;

			if (*n == cap) {
				cap = cap ? cap * 2 : 8;
				nv = realloc(*out, cap * sizeof(*nv));
				if (!nv) {
					free(copy);
					return -1;
				}
				*out = nv;
			}
			if (!((*out)[(*n)++] = strdup(tok))) {
				free(copy);
				return -1;
			}
		}
		free(copy);
		return 0;
	}
	if (json_is_string(v))
		v = json_pack("[O]", v);
	else
		json_incref(v);
	if (json_is_array(v) && json_array_size(v)) {
		*out = calloc(json_array_size(v), sizeof(**out));
		if (!*out) {
			json_decref(v);
			return -1;
		}
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			continue;
		if (!((*out)[(*n)++] = strdup(json_string_value(e)))) {
			json_decref(v);
			return -1;
		}
	}
	json_decref(v);
	return 0;
}

void identity_user_free(struct identity_user *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->u.ngroups; i++)
		free((char *)u->groups[i]);
	free(u->groups);
	for (size_t i = 0; i < u->nscopes; i++)
		free(u->scopes[i]);
	free(u->scopes);
	jwt_claims_release(&u->claims);
	free(u->issuer);
	free(u);
}

/*
 * The user @u's claims name, under issuer @is: subject, e-mail, groups,
 * scopes, expiry with the skew. On failure @u is freed and @err says why.
 */
static int user_of(const struct policy_issuer *is, struct identity_user *u,
		   char *err, size_t errlen)
{
	size_t ng = 0;

	u->issuer = strdup(is->name);
	if (!u->issuer)
		goto nomem;
	u->u.issuer = u->issuer;
	u->u.sub = u->claims.sub;
	u->u.email = u->claims.email;
	/* exp + skew, without overflow (a far exp is "never", not UB). */
	u->u.expires = !u->claims.exp ? 0 :
		       u->claims.exp > INT64_MAX - (int64_t)is->skew_s ?
					INT64_MAX :
					u->claims.exp + is->skew_s;
	if (claim_strings(json_object_get(u->claims.payload, is->groups_claim),
			  false, (char ***)&u->groups, &ng))
		goto nomem;
	u->u.groups = u->groups;
	u->u.ngroups = ng;
	if (is->scopes_claim) {
		if (claim_strings(json_object_get(u->claims.payload,
						  is->scopes_claim),
				  true, &u->scopes, &u->nscopes))
			goto nomem;
		u->u.scoped = true;
		u->u.scopes = (const char *const *)u->scopes;
		u->u.nscopes = u->nscopes;
	}
	return 0;
nomem:
	u->u.ngroups = ng;
	identity_user_free(u);
	snprintf(err, errlen, "out of memory");
	return -1;
}

int identity_authenticate(const struct policy *p, const char *token, size_t len,
			  int64_t now, struct identity_user **out, char *err,
			  size_t errlen)
{
	const struct policy_issuer *is = NULL;
	struct identity_user *u;
	struct jwt_expect ex;
	char *iss;
	int ret;

	*out = NULL;
	if (!policy_issuer_count(p)) {
		snprintf(err, errlen, "the policy names no token issuer");
		return -1;
	}
	if (len == 0 || len > JWT_MAX_TOKEN) {
		snprintf(err, errlen, "no user token");
		return -1;
	}
	iss = peek_issuer(token, len);
	if (!iss) {
		snprintf(err, errlen, "not a signed token with an issuer");
		return -1;
	}
	for (size_t i = 0; i < policy_issuer_count(p) && !is; i++)
		if (strcmp(policy_issuer_at(p, i)->issuer, iss) == 0)
			is = policy_issuer_at(p, i);
	if (!is) {
		/* The value is the agent's: keep it short and printable. */
		for (char *c = iss; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				*c = '?';
		snprintf(err, errlen, "token issuer \"%.80s\" is not trusted",
			 iss);
		free(iss);
		return -1;
	}
	free(iss);
	u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ex = (struct jwt_expect){
		.issuer = is->issuer,
		.audiences = (const char *const *)is->audiences,
		.naudiences = is->naudiences,
		.skew_s = is->skew_s,
		.now = now,
	};
	if (is->keys)
		ret = jwt_verify(is->keys, token, len, &ex, &u->claims, err,
				 errlen);
	else
		ret = jwks_verify(is->source, token, len, &ex, &u->claims, err,
				  errlen);
	if (ret) {
		free(u);
		return -1;
	}
	if (user_of(is, u, err, errlen))
		return -1;
	*out = u;
	return 0;
}

int identity_user_from_claims(const struct policy_issuer *is, json_t *claims,
			      struct identity_user **out, char *err,
			      size_t errlen)
{
	struct identity_user *u = calloc(1, sizeof(*u));
	json_t *exp = json_object_get(claims, "exp");

	*out = NULL;
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	u->claims.payload = json_incref(claims);
	u->claims.sub = json_string_value(json_object_get(claims, "sub"));
	u->claims.email = json_string_value(json_object_get(claims, "email"));
	u->claims.iss = json_string_value(json_object_get(claims, "iss"));
	u->claims.exp = json_is_integer(exp) ? json_integer_value(exp) : 0;
	if (user_of(is, u, err, errlen))
		return -1;
	*out = u;
	return 0;
}

json_t *identity_user_json(const struct identity_user *u)
{
	json_t *g = json_array();

	for (size_t i = 0; i < u->u.ngroups; i++)
		json_array_append_new(g, json_string(u->u.groups[i]));
	return json_pack("{s:s,s:s?,s:s?,s:o}", "issuer", u->issuer, "sub",
			 u->u.sub, "email", u->u.email, "groups", g);
}
