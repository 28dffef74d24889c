/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON Web Tokens for user identity (groundwork for the policy and
 * identity issue): a key set from a JWKS document, and verification of a
 * compact JWS (RS256, ES256, EdDSA) with OpenSSL, then of its claims
 * (iss, aud, exp, nbf with a skew). Tokens signed with "none", with an
 * HMAC algorithm, or with an algorithm that does not fit the key's type
 * are refused. Pure functions over the caller's bytes.
 */
#ifndef BRIDLE_JWT_H
#define BRIDLE_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN 16384
#define JWT_MAX_KEYS 64

struct jwt_keyset;

/* Parse a JWKS document ({"keys": [...]}). Keys of other types or uses
 * are skipped; a malformed key is an error. Returns NULL with @err. */
struct jwt_keyset *jwt_keyset_parse(const char *json, size_t len, char *err,
				    size_t errlen);
struct jwt_keyset *jwt_keyset_load(const char *path, char *err, size_t errlen);
void jwt_keyset_free(struct jwt_keyset *ks);
size_t jwt_keyset_count(const struct jwt_keyset *ks);

/* What a token must satisfy. */
struct jwt_expect {
	const char *issuer; /* required "iss"; NULL: any */
	const char *const *audiences; /* "aud" must hold one of them */
	size_t naudiences; /* 0: any */
	uint32_t skew_s; /* allowed clock difference for exp/nbf/iat */
	int64_t now; /* seconds since the epoch */
};

struct jwt_claims {
	json_t *payload; /* owned; the verified claims */
	const char *sub, *email, *iss; /* into payload; may be NULL */
	int64_t exp; /* 0 when absent */
	char alg[8];
	char kid[128];
};

/*
 * Verify compact token @token (@len bytes) against @ks and @ex. Returns 0
 * and fills @out (release it with jwt_claims_release), or -1 with a short
 * reason in @err ("token expired", "bad signature", ...) that may be shown
 * to the agent: it never contains the token.
 */
int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len,
	       const struct jwt_expect *ex, struct jwt_claims *out, char *err,
	       size_t errlen);
void jwt_claims_release(struct jwt_claims *c);

/* base64url without padding into @out (at most @outlen). Returns the
 * decoded length, or -1 on a bad character or length. */
ssize_t jwt_b64url_decode(const char *in, size_t len, uint8_t *out,
			  size_t outlen);

#endif
