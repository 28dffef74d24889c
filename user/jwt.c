// SPDX-License-Identifier: Apache-2.0
/*
 * JWT verification with OpenSSL (see include/bridle/jwt.h). The token's
 * parts are base64url-decoded into bounded buffers, the header and the
 * claims parsed with jansson, the key chosen by "kid" (or the only key
 * that fits), and the signature checked with EVP_DigestVerify: RS256
 * (RSA PKCS#1 v1.5, SHA-256), ES256 (P-256; the JOSE r||s form turned
 * into DER), EdDSA (Ed25519). Nothing else is accepted.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "bridle/jwt.h"

enum jwt_kty { KTY_RSA, KTY_EC, KTY_OKP };

struct jwt_key {
	enum jwt_kty kty;
	char kid[256];
	char alg[8]; /* "" when the JWK names none */
	EVP_PKEY *pkey;
};

struct jwt_keyset {
	struct jwt_key keys[JWT_MAX_KEYS];
	size_t n;
};

/* @s for a message the agent may see: as it is when short and plain. */
static const char *printable(const char *s)
{
	size_t n = 0;

	for (const char *p = s; p && *p; p++, n++)
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			return "(unprintable)";
	return n <= 64 ? s : "(too long)";
}

static int fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
	snprintf(err, errlen, fmt, arg ? arg : "");
	return -1;
}

ssize_t jwt_b64url_decode(const char *in, size_t len, uint8_t *out,
			  size_t outlen)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		int v;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '-')
			v = 62;
		else if (c == '_')
			v = 63;
		else
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == outlen)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* The leftover bits must be zero (a canonical encoding). */
	if (bits && (acc & ((1u << bits) - 1)))
		return -1;
	return (ssize_t)o;
}

/* A base64url JSON member of @jwk decoded into @buf. */
static ssize_t member_b64(json_t *jwk, const char *name, uint8_t *buf,
			  size_t len)
{
	const char *s = json_string_value(json_object_get(jwk, name));

	if (!s)
		return -1;
	return jwt_b64url_decode(s, strlen(s), buf, len);
}

static EVP_PKEY *fromdata(const char *type, OSSL_PARAM_BLD *b)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *rsa_key(json_t *jwk)
{
	uint8_t n[1024], e[16];
	ssize_t nl = member_b64(jwk, "n", n, sizeof(n));
	ssize_t el = member_b64(jwk, "e", e, sizeof(e));
	OSSL_PARAM_BLD *b;
	BIGNUM *bn = NULL, *be = NULL;
	EVP_PKEY *pkey = NULL;

	/* No leading zeros (RFC 7518), and the exponent odd and > 1. */
	if (nl < 1 || el < 1 || n[0] == 0 || e[0] == 0)
		return NULL;
	b = OSSL_PARAM_BLD_new();
	bn = BN_bin2bn(n, (int)nl, NULL);
	be = BN_bin2bn(e, (int)el, NULL);
	/* 2048 bits at least: shorter RSA keys are not safe. */
	if (b && bn && be && BN_num_bits(bn) >= 2048 && BN_is_odd(be) &&
	    !BN_is_one(be) &&
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be))
		pkey = fromdata("RSA", b);
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_BLD_free(b);
	return pkey;
}

static EVP_PKEY *ec_key(json_t *jwk)
{
	uint8_t x[32], y[32], pt[65];
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	OSSL_PARAM_BLD *b;
	EVP_PKEY *pkey = NULL;

	if (!crv || strcmp(crv, "P-256") ||
	    member_b64(jwk, "x", x, sizeof(x)) != 32 ||
	    member_b64(jwk, "y", y, sizeof(y)) != 32)
		return NULL;
	pt[0] = 4; /* uncompressed point */
	memcpy(pt + 1, x, 32);
	memcpy(pt + 33, y, 32);
	b = OSSL_PARAM_BLD_new();
	if (b &&
	    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME,
					    "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt,
					     sizeof(pt)))
		pkey = fromdata("EC", b); /* checks the point is on the curve */
	OSSL_PARAM_BLD_free(b);
	return pkey;
}

static EVP_PKEY *okp_key(json_t *jwk)
{
	uint8_t x[32];
	const char *crv = json_string_value(json_object_get(jwk, "crv"));

	if (!crv || strcmp(crv, "Ed25519") ||
	    member_b64(jwk, "x", x, sizeof(x)) != 32)
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
}

void jwt_keyset_free(struct jwt_keyset *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->keys[i].pkey);
	free(ks);
}

size_t jwt_keyset_count(const struct jwt_keyset *ks)
{
	return ks->n;
}

struct jwt_keyset *jwt_keyset_parse(const char *json, size_t len, char *err,
				    size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	json_t *keys = json_object_get(root, "keys"), *jwk;
	struct jwt_keyset *ks = NULL;
	size_t i;

	if (!root) {
		snprintf(err, errlen, "JWKS: line %d: %s", je.line, je.text);
		return NULL;
	}
	if (!json_is_array(keys)) {
		fail(err, errlen, "JWKS: no \"keys\" array%s", NULL);
		goto out;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		fail(err, errlen, "out of memory%s", NULL);
		goto out;
	}
	json_array_foreach(keys, i, jwk) {
		const char *kty =
			json_string_value(json_object_get(jwk, "kty"));
		const char *use =
			json_string_value(json_object_get(jwk, "use"));
		const char *kid =
			json_string_value(json_object_get(jwk, "kid"));
		const char *alg =
			json_string_value(json_object_get(jwk, "alg"));
		struct jwt_key *k;

		if (!kty) {
			snprintf(err, errlen, "JWKS: key %zu has no \"kty\"",
				 i);
			goto bad;
		}
		if (kid && strlen(kid) >= sizeof(ks->keys[0].kid)) {
			snprintf(err, errlen,
				 "JWKS: key %zu: a key id of 256 bytes or more",
				 i);
			goto bad;
		}
		/* Encryption keys and unknown types are not for us. */
		if ((use && strcmp(use, "sig")) ||
		    (strcmp(kty, "RSA") && strcmp(kty, "EC") &&
		     strcmp(kty, "OKP")))
			continue;
		if (ks->n == JWT_MAX_KEYS) {
			fail(err, errlen, "JWKS: more than 64 keys%s", NULL);
			goto bad;
		}
		k = &ks->keys[ks->n];
		k->kty = !strcmp(kty, "RSA") ? KTY_RSA :
			 !strcmp(kty, "EC")  ? KTY_EC :
					       KTY_OKP;
		snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
		snprintf(k->alg, sizeof(k->alg), "%s", alg ? alg : "");
		k->pkey = k->kty == KTY_RSA ? rsa_key(jwk) :
			  k->kty == KTY_EC  ? ec_key(jwk) :
					      okp_key(jwk);
		if (!k->pkey) {
			snprintf(err, errlen,
				 "JWKS: key %zu (%s%s%s) is malformed or not "
				 "supported (RSA >= 2048 bits, EC P-256, OKP "
				 "Ed25519)",
				 i, kty, kid ? " " : "", kid ? kid : "");
			goto bad;
		}
		ks->n++;
	}
	goto out;
bad:
	jwt_keyset_free(ks);
	ks = NULL;
out:
	json_decref(root);
	return ks;
}

struct jwt_keyset *jwt_keyset_load(const char *path, char *err, size_t errlen)
{
	char buf[1 << 16];
	size_t n;
	FILE *f = fopen(path, "re");
	struct jwt_keyset *ks;

	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (n == sizeof(buf) || ferror(f)) {
		fclose(f);
		snprintf(err, errlen, "%s: unreadable or larger than 64 KiB",
			 path);
		return NULL;
	}
	fclose(f);
	ks = jwt_keyset_parse(buf, n, err, errlen);
	return ks;
}

/* The key for @alg and @kid: the one with that kid, or without a kid in
 * the token, the only key of the right type. */
static const struct jwt_key *pick_key(const struct jwt_keyset *ks,
				      enum jwt_kty kty, const char *alg,
				      const char *kid, char *err, size_t errlen)
{
	const struct jwt_key *found = NULL;
	size_t n = 0;

	for (size_t i = 0; i < ks->n; i++) {
		const struct jwt_key *k = &ks->keys[i];

		if (kid && strcmp(k->kid, kid))
			continue;
		if (k->kty != kty || (k->alg[0] && strcmp(k->alg, alg))) {
			if (kid) {
				fail(err, errlen,
				     "the key \"%s\" is not for this algorithm",
				     printable(kid));
				return NULL;
			}
			continue;
		}
		found = k;
		n++;
	}
	if (!found) {
		fail(err, errlen,
		     kid ? "unknown key id \"%s\"" : "no key for this token%s",
		     kid ? printable(kid) : NULL);
		return NULL;
	}
	if (n > 1) {
		fail(err, errlen,
		     kid ? "several keys have the key id \"%s\"" :
			   "several keys fit a token without a key id%s",
		     kid ? printable(kid) : NULL);
		return NULL;
	}
	return found;
}

/* JOSE's ES256 signature is r || s (32 bytes each); OpenSSL wants DER. */
static int es256_der(const uint8_t *sig, size_t len, uint8_t *der,
		     size_t *derlen)
{
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	unsigned char *p = der;
	int n;

	if (len != 64)
		return -1;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return -1;
	}
	n = i2d_ECDSA_SIG(es, NULL);
	if (n <= 0 || (size_t)n > *derlen) {
		ECDSA_SIG_free(es);
		return -1;
	}
	*derlen = (size_t)i2d_ECDSA_SIG(es, &p);
	ECDSA_SIG_free(es);
	return 0;
}

static int verify_sig(const struct jwt_key *k, const char *alg,
		      const char *signed_part, size_t signed_len,
		      const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t derlen = sizeof(der);
	const EVP_MD *md = strcmp(alg, "EdDSA") ? EVP_sha256() : NULL;
	int ok = 0;

	if (!strcmp(alg, "ES256")) {
		if (es256_der(sig, siglen, der, &derlen)) {
			EVP_MD_CTX_free(ctx);
			return -1;
		}
		sig = der;
		siglen = derlen;
	}
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->pkey) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen,
				      (const unsigned char *)signed_part,
				      signed_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

static bool aud_ok(json_t *aud, const struct jwt_expect *ex)
{
	size_t i;
	json_t *a;

	if (!ex->naudiences)
		return true;
	if (json_is_string(aud)) {
		for (size_t k = 0; k < ex->naudiences; k++)
			if (!strcmp(json_string_value(aud), ex->audiences[k]))
				return true;
		return false;
	}
	json_array_foreach(aud, i, a)
		if (json_is_string(a) && aud_ok(a, ex))
			return true;
	return false;
}

/* A NumericDate claim: absent (0), or an integer; anything else is bad. */
static int numeric(json_t *claims, const char *name, int64_t *out)
{
	json_t *v = json_object_get(claims, name);

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	/* A fraction of a second is allowed; a value past int64 is not. */
	if (json_is_real(v) && json_real_value(v) > -9.2e18 &&
	    json_real_value(v) < 9.2e18) {
		*out = (int64_t)json_real_value(v);
		return 0;
	}
	return -1;
}

void jwt_claims_release(struct jwt_claims *c)
{
	json_decref(c->payload);
	memset(c, 0, sizeof(*c));
}

int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len,
	       const struct jwt_expect *ex, struct jwt_claims *out, char *err,
	       size_t errlen)
{
	const char *dot1, *dot2, *alg, *kid;
	ssize_t hl, pl, sl;
	json_t *hdr = NULL, *claims = NULL;
	const struct jwt_key *k;
	enum jwt_kty kty;
	int64_t exp, nbf, iat;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (len > JWT_MAX_TOKEN)
		return fail(err, errlen, "token too long%s", NULL);
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) :
		      NULL;
	if (!dot1 || !dot2 ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return fail(err, errlen, "malformed token%s", NULL);
	{
		uint8_t *h = malloc(JWT_MAX_TOKEN), *p = malloc(JWT_MAX_TOKEN);
		uint8_t *s = malloc(JWT_MAX_TOKEN);

		if (!h || !p || !s) {
			free(h);
			free(p);
			free(s);
			return fail(err, errlen, "out of memory%s", NULL);
		}
		hl = jwt_b64url_decode(token, (size_t)(dot1 - token), h,
				       JWT_MAX_TOKEN);
		pl = jwt_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), p,
				       JWT_MAX_TOKEN);
		sl = jwt_b64url_decode(dot2 + 1,
				       len - (size_t)(dot2 + 1 - token), s,
				       JWT_MAX_TOKEN);
		if (hl <= 0 || pl <= 0 || sl < 0) {
			fail(err, errlen, "malformed token%s", NULL);
			goto free_bufs;
		}
		hdr = json_loadb((const char *)h, (size_t)hl,
				 JSON_REJECT_DUPLICATES, NULL);
		claims = json_loadb((const char *)p, (size_t)pl,
				    JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(hdr) || !json_is_object(claims)) {
			fail(err, errlen, "malformed token%s", NULL);
			goto free_bufs;
		}
		alg = json_string_value(json_object_get(hdr, "alg"));
		kid = json_string_value(json_object_get(hdr, "kid"));
		if (!alg) {
			fail(err, errlen, "malformed token: no alg%s", NULL);
			goto free_bufs;
		}
		if (!strcmp(alg, "none") || !strcmp(alg, "None") ||
		    !strcmp(alg, "NONE")) {
			fail(err, errlen,
			     "unsigned tokens (alg none) are "
			     "refused%s",
			     NULL);
			goto free_bufs;
		}
		if (!strcmp(alg, "RS256"))
			kty = KTY_RSA;
		else if (!strcmp(alg, "ES256"))
			kty = KTY_EC;
		else if (!strcmp(alg, "EdDSA"))
			kty = KTY_OKP;
		else {
			fail(err, errlen,
			     "algorithm \"%s\" is not accepted (RS256, ES256, "
			     "EdDSA)",
			     printable(alg));
			goto free_bufs;
		}
		if (json_object_get(hdr, "crit")) {
			fail(err, errlen,
			     "critical header extensions are not "
			     "supported%s",
			     NULL);
			goto free_bufs;
		}
		k = pick_key(ks, kty, alg, kid, err, errlen);
		if (!k)
			goto free_bufs;
		if (verify_sig(k, alg, token, (size_t)(dot2 - token), s,
			       (size_t)sl)) {
			fail(err, errlen, "bad signature%s", NULL);
			goto free_bufs;
		}
		ret = 0;
free_bufs:
		free(h);
		free(p);
		free(s);
	}
	if (ret)
		goto out;
	ret = -1;
	/* The signature holds: now what the claims say. */
	if (numeric(claims, "exp", &exp) || numeric(claims, "nbf", &nbf) ||
	    numeric(claims, "iat", &iat)) {
		fail(err, errlen, "malformed time claims%s", NULL);
		goto out;
	}
	if (!json_object_get(claims, "exp")) {
		fail(err, errlen, "the token has no expiry (exp)%s", NULL);
		goto out;
	}
	/* now - skew cannot overflow; exp + skew could. */
	if (ex->now - (int64_t)ex->skew_s > exp) {
		fail(err, errlen, "token expired%s", NULL);
		goto out;
	}
	if (nbf && ex->now + (int64_t)ex->skew_s < nbf) {
		fail(err, errlen, "token not yet valid%s", NULL);
		goto out;
	}
	if (iat && ex->now + (int64_t)ex->skew_s < iat) {
		fail(err, errlen, "token issued in the future%s", NULL);
		goto out;
	}
	if (ex->issuer &&
	    (!json_is_string(json_object_get(claims, "iss")) ||
	     strcmp(json_string_value(json_object_get(claims, "iss")),
		    ex->issuer))) {
		fail(err, errlen, "wrong issuer%s", NULL);
		goto out;
	}
	if (!aud_ok(json_object_get(claims, "aud"), ex)) {
		fail(err, errlen, "wrong audience%s", NULL);
		goto out;
	}
	out->payload = claims;
	claims = NULL;
	out->sub = json_string_value(json_object_get(out->payload, "sub"));
	out->email = json_string_value(json_object_get(out->payload, "email"));
	out->iss = json_string_value(json_object_get(out->payload, "iss"));
	out->exp = exp;
	snprintf(out->alg, sizeof(out->alg), "%s", alg);
	snprintf(out->kid, sizeof(out->kid), "%s", kid ? kid : "");
	ret = 0;
out:
	json_decref(hdr);
	json_decref(claims);
	return ret;
}
