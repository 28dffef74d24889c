// SPDX-License-Identifier: Apache-2.0
/*
 * JWT verification: keys generated at run time (RSA 2048, EC P-256,
 * Ed25519) and published as a JWKS document, tokens signed here. A table
 * of tokens with the result each must get (accepted, or the exact reason),
 * malformed tokens, every good token with each byte flipped, JWKS parse
 * errors, and the RFC 4648 base64url vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "bridle/jwt.h"

#define NOW 1700000000
#define ISS "https://idp.example"

static EVP_PKEY *rsa, *rsa_other, *ec, *ed;
static struct jwt_keyset *ks; /* r1 (RS256), e1 (ES256), d1, ra (RSA, ES256) */
static char *jwks_doc;

static char *b64url(const uint8_t *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(len * 4 / 3 + 4), *o = out;
	size_t i;

	assert_non_null(out);
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (len - i == 1) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[(in[i] & 3) << 4];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		*o++ = tab[v >> 10];
		*o++ = tab[(v >> 4) & 63];
		*o++ = tab[(v & 15) << 2];
	}
	*o = 0;
	return out;
}

static char *b64s(const char *s)
{
	return b64url((const uint8_t *)s, strlen(s));
}

static void set_b64(json_t *o, const char *name, const uint8_t *b, size_t len)
{
	char *s = b64url(b, len);

	json_object_set_new(o, name, json_string(s));
	free(s);
}

static void set_bn(json_t *o, const char *name, const BIGNUM *bn)
{
	uint8_t buf[1024];
	int n = BN_bn2bin(bn, buf);

	set_b64(o, name, buf, (size_t)n);
}

static json_t *jwk_base(const char *kty, const char *kid, const char *alg)
{
	json_t *o = json_pack("{s:s}", "kty", kty);

	if (kid)
		json_object_set_new(o, "kid", json_string(kid));
	if (alg)
		json_object_set_new(o, "alg", json_string(alg));
	return o;
}

static json_t *jwk_rsa(EVP_PKEY *k, const char *kid, const char *alg)
{
	json_t *o = jwk_base("RSA", kid, alg);
	BIGNUM *n = NULL, *e = NULL;

	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e), 1);
	set_bn(o, "n", n);
	set_bn(o, "e", e);
	BN_free(n);
	BN_free(e);
	return o;
}

/* The uncompressed point 04 || x || y. */
static void ec_point(EVP_PKEY *k, uint8_t pt[65])
{
	size_t len = 0;

	assert_int_equal(EVP_PKEY_get_octet_string_param(
				 k, OSSL_PKEY_PARAM_PUB_KEY, pt, 65, &len),
			 1);
	assert_int_equal(len, 65);
	assert_int_equal(pt[0], 4);
}

static json_t *jwk_ec(EVP_PKEY *k, const char *kid, const char *alg)
{
	json_t *o = jwk_base("EC", kid, alg);
	uint8_t pt[65];

	ec_point(k, pt);
	json_object_set_new(o, "crv", json_string("P-256"));
	set_b64(o, "x", pt + 1, 32);
	set_b64(o, "y", pt + 33, 32);
	return o;
}

static json_t *jwk_okp(EVP_PKEY *k, const char *kid, const char *alg)
{
	json_t *o = jwk_base("OKP", kid, alg);
	uint8_t x[32];
	size_t len = sizeof(x);

	assert_int_equal(EVP_PKEY_get_raw_public_key(k, x, &len), 1);
	assert_int_equal(len, 32);
	json_object_set_new(o, "crv", json_string("Ed25519"));
	set_b64(o, "x", x, 32);
	return o;
}

/* A keyset from a JSON array of JWKs (stolen); must parse. */
static struct jwt_keyset *keyset_of(json_t *keys, char **doc)
{
	json_t *root = json_pack("{s:o}", "keys", keys);
	char *s = json_dumps(root, JSON_COMPACT), err[256] = "";
	struct jwt_keyset *k = jwt_keyset_parse(s, strlen(s), err, sizeof(err));

	if (!k)
		fail_msg("keyset: %s", err);
	json_decref(root);
	if (doc)
		*doc = s;
	else
		free(s);
	return k;
}

/* jwt_keyset_parse's error for @doc ("" when it parses). */
static void parse_err(const char *doc, char *err, size_t errlen)
{
	struct jwt_keyset *k;

	err[0] = 0;
	k = jwt_keyset_parse(doc, strlen(doc), err, errlen);
	if (k) {
		err[0] = 0;
		jwt_keyset_free(k);
	}
}

static int setup(void **state)
{
	(void)state;
	rsa = EVP_RSA_gen(2048);
	rsa_other = EVP_RSA_gen(2048);
	ec = EVP_EC_gen("P-256");
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!rsa || !rsa_other || !ec || !ed)
		return -1;
	ks = keyset_of(json_pack("[oooooo]", jwk_rsa(rsa, "r1", "RS256"),
				 jwk_ec(ec, "e1", "ES256"),
				 jwk_okp(ed, "d1", NULL),
				 jwk_rsa(rsa_other, "ra", "ES256"),
				 json_pack("{s:s,s:s,s:s,s:s,s:s}", "kty", "RSA",
					   "use", "enc", "kid", "x1", "n", "AQAB",
					   "e", "AQAB"),
				 json_pack("{s:s,s:s,s:s}", "kty", "oct", "kid",
					   "h1", "k", "c2VjcmV0")),
		       &jwks_doc);
	return ks ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	jwt_keyset_free(ks);
	free(jwks_doc);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa_other);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
	return 0;
}

enum signer { S_RSA, S_RSA_OTHER, S_EC, S_ED, S_HS_PEM, S_HS_N, S_NONE };

/* The signature over @data by @s, base64url-encoded. */
static char *sign(enum signer s, const char *data)
{
	uint8_t sig[512];
	size_t siglen = sizeof(sig);
	EVP_PKEY *k = s == S_RSA ? rsa : s == S_RSA_OTHER ? rsa_other :
		      s == S_EC  ? ec :
				   ed;

	if (s == S_NONE)
		return strdup("");
	if (s == S_HS_PEM || s == S_HS_N) {
		/* The classic confusion: the public key as an HMAC secret. */
		char *secret = NULL;
		size_t slen;
		BIO *bio = NULL;

		if (s == S_HS_PEM) {
			bio = BIO_new(BIO_s_mem());
			assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa), 1);
			slen = (size_t)BIO_get_mem_data(bio, &secret);
		} else {
			json_t *j = jwk_rsa(rsa, NULL, NULL);

			secret = strdup(json_string_value(json_object_get(j, "n")));
			slen = strlen(secret);
			json_decref(j);
		}
		assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
					  secret, slen, (const uint8_t *)data,
					  strlen(data), sig, sizeof(sig),
					  &siglen));
		if (bio)
			BIO_free(bio);
		else
			free(secret);
		return b64url(sig, siglen);
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL,
					    k == ed ? NULL : EVP_sha256(), NULL, k),
			 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (const uint8_t *)data,
					strlen(data)),
			 1);
	EVP_MD_CTX_free(ctx);
	if (k == ec) { /* DER to JOSE r || s */
		const uint8_t *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
		uint8_t rs[64];

		assert_non_null(es);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32), 32);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32), 32);
		ECDSA_SIG_free(es);
		return b64url(rs, 64);
	}
	return b64url(sig, siglen);
}

/* header.payload.signature, each part base64url of the given JSON. */
static char *make_token(enum signer s, const char *hdr, const char *payload)
{
	char *h = b64s(hdr), *p = b64s(payload), *tok, *sig;
	size_t n = strlen(h) + strlen(p) + 2;
	char *signed_part = malloc(n);

	assert_non_null(signed_part);
	snprintf(signed_part, n, "%s.%s", h, p);
	sig = sign(s, signed_part);
	tok = malloc(n + strlen(sig) + 1);
	assert_non_null(tok);
	sprintf(tok, "%s.%s", signed_part, sig);
	free(h);
	free(p);
	free(sig);
	free(signed_part);
	return tok;
}

static const char *const aud_bridle[] = { "bridle" };

static struct jwt_expect expect_default(void)
{
	struct jwt_expect ex = { .issuer = ISS,
				 .audiences = aud_bridle,
				 .naudiences = 1,
				 .skew_s = 0,
				 .now = NOW };
	return ex;
}

#define GOOD_CLAIMS                                                        \
	"{\"sub\":\"u-42\",\"email\":\"alice@example.com\",\"iss\":\"" ISS \
	"\",\"aud\":\"bridle\",\"exp\":1700000600,\"iat\":1699999000}"

struct verify_case {
	const char *name;
	enum signer signer;
	const char *hdr, *payload;
	int tamper; /* replace the payload after signing */
	uint32_t skew;
	const char *want; /* NULL: accepted */
};

static const struct verify_case vcases[] = {
	{ "RS256 good", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}",
	  GOOD_CLAIMS, 0, 0, NULL },
	{ "ES256 good", S_EC, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", GOOD_CLAIMS,
	  0, 0, NULL },
	{ "EdDSA good", S_ED, "{\"alg\":\"EdDSA\",\"kid\":\"d1\"}", GOOD_CLAIMS,
	  0, 0, NULL },
	{ "RS256 no kid, one RSA key fits", S_RSA, "{\"alg\":\"RS256\"}",
	  GOOD_CLAIMS, 0, 0, NULL },
	{ "EdDSA no kid", S_ED, "{\"alg\":\"EdDSA\"}", GOOD_CLAIMS, 0, 0, NULL },
	{ "aud array", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"bridle\"],\"exp\":1700000001}",
	  0, 0, NULL },
	{ "tampered payload", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  GOOD_CLAIMS, 1, 0, "bad signature" },
	{ "tampered payload ES256", S_EC, "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
	  GOOD_CLAIMS, 1, 0, "bad signature" },
	{ "tampered payload EdDSA", S_ED, "{\"alg\":\"EdDSA\",\"kid\":\"d1\"}",
	  GOOD_CLAIMS, 1, 0, "bad signature" },
	{ "another key, same kid", S_RSA_OTHER,
	  "{\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD_CLAIMS, 0, 0,
	  "bad signature" },
	{ "ES256 no kid, only e1 fits", S_EC, "{\"alg\":\"ES256\"}", GOOD_CLAIMS,
	  0, 0, NULL },
	{ "EC kid in an RS256 token", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"e1\"}",
	  GOOD_CLAIMS, 0, 0, "the key \"e1\" is not for this algorithm" },
	{ "OKP kid in an ES256 token", S_EC, "{\"alg\":\"ES256\",\"kid\":\"d1\"}",
	  GOOD_CLAIMS, 0, 0, "the key \"d1\" is not for this algorithm" },
	{ "JWK alg ES256 on an RSA key", S_RSA_OTHER,
	  "{\"alg\":\"RS256\",\"kid\":\"ra\"}", GOOD_CLAIMS, 0, 0,
	  "the key \"ra\" is not for this algorithm" },
	{ "unknown kid", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"nope\"}",
	  GOOD_CLAIMS, 0, 0, "unknown key id \"nope\"" },
	{ "use enc key skipped", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"x1\"}",
	  GOOD_CLAIMS, 0, 0, "unknown key id \"x1\"" },
	{ "expired", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":1699999990}", 0, 0,
	  "token expired" },
	{ "expired within skew", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":1699999990}", 0, 30,
	  NULL },
	{ "expired beyond skew", S_EC, "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":1699999990}", 0, 5,
	  "token expired" },
	{ "exp == now", S_ED, "{\"alg\":\"EdDSA\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":1700000000}", 0, 0,
	  NULL },
	{ "exp 0", S_ED, "{\"alg\":\"EdDSA\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":0}", 0, 0,
	  "token expired" },
	{ "not yet valid", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"" ISS
	  "\",\"aud\":\"bridle\",\"exp\":1700000600,\"nbf\":1700000100}",
	  0, 0, "token not yet valid" },
	{ "nbf within skew", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"" ISS
	  "\",\"aud\":\"bridle\",\"exp\":1700000600,\"nbf\":1700000100}",
	  0, 100, NULL },
	{ "wrong issuer", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"https://evil.example\",\"aud\":\"bridle\",\"exp\":1700000600}",
	  0, 0, "wrong issuer" },
	{ "no issuer", S_EC, "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
	  "{\"aud\":\"bridle\",\"exp\":1700000600}", 0, 0, "wrong issuer" },
	{ "issuer not a string", S_EC, "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
	  "{\"iss\":7,\"aud\":\"bridle\",\"exp\":1700000600}", 0, 0,
	  "wrong issuer" },
	{ "wrong audience", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"other\",\"exp\":1700000600}", 0, 0,
	  "wrong audience" },
	{ "wrong audience array", S_ED, "{\"alg\":\"EdDSA\",\"kid\":\"d1\"}",
	  "{\"iss\":\"" ISS
	  "\",\"aud\":[\"other\",[\"bridle\"],7],\"exp\":1700000600}",
	  0, 0, "wrong audience" },
	{ "no audience", S_ED, "{\"alg\":\"EdDSA\",\"kid\":\"d1\"}",
	  "{\"iss\":\"" ISS "\",\"exp\":1700000600}", 0, 0, "wrong audience" },
	{ "alg none", S_NONE, "{\"alg\":\"none\"}", GOOD_CLAIMS, 0, 0,
	  "unsigned tokens (alg none) are refused" },
	{ "alg None", S_NONE, "{\"alg\":\"None\",\"kid\":\"r1\"}", GOOD_CLAIMS,
	  0, 0, "unsigned tokens (alg none) are refused" },
	{ "alg NONE with a signature", S_RSA, "{\"alg\":\"NONE\"}", GOOD_CLAIMS,
	  0, 0, "unsigned tokens (alg none) are refused" },
	{ "alg nOnE", S_NONE, "{\"alg\":\"nOnE\"}", GOOD_CLAIMS, 0, 0,
	  "algorithm \"nOnE\" is not accepted (RS256, ES256, EdDSA)" },
	{ "HS256 keyed with the PEM", S_HS_PEM,
	  "{\"alg\":\"HS256\",\"kid\":\"r1\"}", GOOD_CLAIMS, 0, 0,
	  "algorithm \"HS256\" is not accepted (RS256, ES256, EdDSA)" },
	{ "HS256 keyed with n", S_HS_N, "{\"alg\":\"HS256\"}", GOOD_CLAIMS, 0,
	  0, "algorithm \"HS256\" is not accepted (RS256, ES256, EdDSA)" },
	{ "HS256 with the oct key's kid", S_HS_N,
	  "{\"alg\":\"HS256\",\"kid\":\"h1\"}", GOOD_CLAIMS, 0, 0,
	  "algorithm \"HS256\" is not accepted (RS256, ES256, EdDSA)" },
	{ "PS256", S_RSA, "{\"alg\":\"PS256\",\"kid\":\"r1\"}", GOOD_CLAIMS, 0,
	  0, "algorithm \"PS256\" is not accepted (RS256, ES256, EdDSA)" },
	{ "no alg", S_RSA, "{\"kid\":\"r1\"}", GOOD_CLAIMS, 0, 0,
	  "malformed token: no alg" },
	{ "alg not a string", S_RSA, "{\"alg\":1,\"kid\":\"r1\"}", GOOD_CLAIMS,
	  0, 0, "malformed token: no alg" },
	{ "crit", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"b64\"],"
			 "\"b64\":false}",
	  GOOD_CLAIMS, 0, 0, "critical header extensions are not supported" },
	{ "no exp", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"bridle\"}", 0, 0,
	  "the token has no expiry (exp)" },
	{ "exp a string", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":\"1700000600\"}", 0,
	  0, "malformed time claims" },
	{ "exp null", S_EC, "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
	  "{\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":null}", 0, 0,
	  "malformed time claims" },
	{ "payload an array", S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	  "[1]", 0, 0, "malformed token" },
	{ "header duplicate alg", S_RSA,
	  "{\"alg\":\"none\",\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD_CLAIMS, 0,
	  0, "malformed token" },
};

static char *tamper_payload(char *tok)
{
	/* Same header and signature, a payload naming another subject. */
	char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	char *p = b64s("{\"sub\":\"admin\",\"email\":\"alice@example.com\","
		       "\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":"
		       "1700000600,\"iat\":1699999000}");
	char *out = malloc(strlen(tok) + strlen(p) + 1);

	assert_non_null(out);
	sprintf(out, "%.*s.%s%s", (int)(d1 - tok), tok, p, d2);
	free(p);
	free(tok);
	return out;
}

/* jwt_verify on @tok; returns its result, @err filled. */
static int verify(const struct jwt_keyset *k, const char *tok, size_t len,
		  const struct jwt_expect *ex, char *err, size_t errlen,
		  struct jwt_claims *c)
{
	struct jwt_claims tmp;
	int r;

	err[0] = 0;
	r = jwt_verify(k, tok, len, ex, c ? c : &tmp, err, errlen);
	if (r == 0 && !c)
		jwt_claims_release(&tmp);
	return r;
}

static void test_table(void **state)
{
	(void)state;
	assert_int_equal(jwt_keyset_count(ks), 4);
	for (size_t i = 0; i < sizeof(vcases) / sizeof(*vcases); i++) {
		const struct verify_case *vc = &vcases[i];
		struct jwt_expect ex = expect_default();
		struct jwt_claims c;
		char *tok = make_token(vc->signer, vc->hdr, vc->payload);
		char err[256];
		int r;

		if (vc->tamper)
			tok = tamper_payload(tok);
		ex.skew_s = vc->skew;
		r = verify(ks, tok, strlen(tok), &ex, err, sizeof(err), &c);
		if (vc->want && r == 0)
			fail_msg("%s: accepted, want \"%s\"", vc->name, vc->want);
		if (!vc->want && r != 0)
			fail_msg("%s: refused: %s", vc->name, err);
		if (vc->want && strcmp(err, vc->want))
			fail_msg("%s:\n  got:  %s\n  want: %s", vc->name, err,
				 vc->want);
		if (r == 0) {
			assert_non_null(c.payload);
			assert_string_equal(c.iss, ISS);
			jwt_claims_release(&c);
		}
		free(tok);
	}
}

/* The claims of the three good tokens, and every byte of each flipped. */
static void test_good_and_flipped(void **state)
{
	static const struct {
		enum signer s;
		const char *hdr, *alg, *kid;
	} good[] = {
		{ S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", "RS256", "r1" },
		{ S_EC, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", "ES256", "e1" },
		{ S_ED, "{\"alg\":\"EdDSA\",\"kid\":\"d1\"}", "EdDSA", "d1" },
		{ S_ED, "{\"alg\":\"EdDSA\"}", "EdDSA", "" },
	};
	static const uint8_t masks[] = { 0x01, 0x20, 0x80 };

	(void)state;
	for (size_t g = 0; g < sizeof(good) / sizeof(*good); g++) {
		struct jwt_expect ex = expect_default();
		struct jwt_claims c;
		char *tok = make_token(good[g].s, good[g].hdr, GOOD_CLAIMS);
		size_t len = strlen(tok);
		char err[256];

		if (verify(ks, tok, len, &ex, err, sizeof(err), &c))
			fail_msg("%s: %s", good[g].alg, err);
		assert_string_equal(c.sub, "u-42");
		assert_string_equal(c.email, "alice@example.com");
		assert_string_equal(c.iss, ISS);
		assert_int_equal(c.exp, 1700000600);
		assert_string_equal(c.alg, good[g].alg);
		assert_string_equal(c.kid, good[g].kid);
		jwt_claims_release(&c);
		assert_null(c.payload);

		for (size_t i = 0; i < len; i++)
			for (size_t m = 0; m < sizeof(masks); m++) {
				char *t = malloc(len);

				assert_non_null(t);
				memcpy(t, tok, len); /* not terminated */
				t[i] = (char)(t[i] ^ masks[m]);
				if (!verify(ks, t, len, &ex, err, sizeof(err),
					    NULL))
					fail_msg("%s: byte %zu ^ 0x%02x accepted",
						 good[g].alg, i, masks[m]);
				free(t);
			}
		/* Truncated anywhere: never accepted either. */
		for (size_t l = 0; l < len; l++)
			if (!verify(ks, tok, l, &ex, err, sizeof(err), NULL))
				fail_msg("%s: prefix of %zu bytes accepted",
					 good[g].alg, l);
		free(tok);
	}
}

/* The last character of the part ending at @end given nonzero unused bits. */
static void set_trailing_bit(char *end)
{
	char *p = end - 1;

	/* 'A'..'P' etc.: the value's low bits are zero; set the lowest. */
	*p = (char)(*p == 'A' ? 'B' : *p == 'Q' ? 'R' : *p == 'g' ? 'h' :
		    *p == 'w' ? 'x' : *p == '0' ? '1' : *p == 'E' ? 'F' :
		    *p == 'I' ? 'J' : *p == 'M' ? 'N' : *p == 'U' ? 'V' :
		    *p == 'Y' ? 'Z' : *p == 'c' ? 'd' : *p == 'k' ? 'l' :
		    *p == 'o' ? 'p' : *p == 's' ? 't' : *p == '4' ? '5' :
		    *p == '8' ? '9' : '?');
	assert_int_not_equal(*p, '?');
}

static void test_malformed(void **state)
{
	struct jwt_expect ex = expect_default();
	char *tok = make_token(S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
			       GOOD_CLAIMS);
	size_t len = strlen(tok);
	char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	char *buf = malloc(JWT_MAX_TOKEN + 2), err[256];
	const char *raw[] = {
		"",
		".",
		"..",
		"a.b",
		"eyJhbGciOiJub25lIn0.e30",
		"eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJub25lIn0.e30..",
		"eyJhbGciOiJub25lIn0.e30.a.b",
		"eyJhbGciOiJSUzI1NiJ9.e30.a+b/",
		"eyJhbGciOiJSUzI1NiJ9.e30.abc=",
		"eyJhbGciOiJSUzI1NiJ9==.e30.abc",
		"eyJhbGciOiJSUzI1NiJ9.e30.a",
		"eyJhbGciOiJSUzI1NiJ9 .e30.abc",
		"e.e30.abc",
		"bm90IGpzb24.e30.abc", /* "not json" */
	};

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < sizeof(raw) / sizeof(*raw); i++) {
		if (!verify(ks, raw[i], strlen(raw[i]), &ex, err, sizeof(err),
			    NULL))
			fail_msg("\"%s\" accepted", raw[i]);
		if (strcmp(err, "malformed token") &&
		    strcmp(err, "unsigned tokens (alg none) are refused"))
			fail_msg("\"%s\": %s", raw[i], err);
	}
	/* The good token with a fourth part, and cut to two. */
	snprintf(buf, JWT_MAX_TOKEN, "%s.%s", tok, d2 + 1);
	assert_int_equal(verify(ks, buf, strlen(buf), &ex, err, sizeof(err), NULL), -1);
	assert_string_equal(err, "malformed token");
	assert_int_equal(verify(ks, tok, (size_t)(d2 - tok), &ex, err,
				sizeof(err), NULL),
			 -1);
	assert_string_equal(err, "malformed token");
	/* Non-canonical base64url: same bytes, nonzero unused bits. 256 and
	 * 64 byte signatures leave 4 bits; the header's length is chosen. */
	memcpy(buf, tok, len + 1);
	set_trailing_bit(buf + len);
	assert_int_equal(verify(ks, buf, len, &ex, err, sizeof(err), NULL), -1);
	assert_string_equal(err, "malformed token");
	memcpy(buf, tok, len + 1);
	if ((d1 - tok) % 4 != 0) {
		set_trailing_bit(buf + (d1 - tok));
		assert_int_equal(verify(ks, buf, len, &ex, err, sizeof(err),
					NULL),
				 -1);
		assert_string_equal(err, "malformed token");
	}
	/* Oversize: the limit plus one, a valid token padded in the claims. */
	memset(buf, 'A', JWT_MAX_TOKEN + 1);
	memcpy(buf, tok, len);
	assert_int_equal(verify(ks, buf, JWT_MAX_TOKEN + 1, &ex, err,
				sizeof(err), NULL),
			 -1);
	assert_string_equal(err, "token too long");
	{
		size_t n = 12500;
		char *claims = malloc(n + 200), *big;

		assert_non_null(claims);
		snprintf(claims, n + 200,
			 "{\"iss\":\"" ISS "\",\"aud\":\"bridle\",\"exp\":"
			 "1700000600,\"pad\":\"%0*d\"}",
			 (int)n, 0);
		big = make_token(S_ED, "{\"alg\":\"EdDSA\"}", claims);
		assert_true(strlen(big) > JWT_MAX_TOKEN);
		assert_int_equal(verify(ks, big, strlen(big), &ex, err,
					sizeof(err), NULL),
				 -1);
		assert_string_equal(err, "token too long");
		free(big);
		free(claims);
	}
	free(buf);
	free(tok);
}

static void test_key_choice(void **state)
{
	struct jwt_expect ex = expect_default();
	struct jwt_keyset *two = keyset_of(
		json_pack("[oo]", jwk_rsa(rsa, "r1", "RS256"),
			  jwk_rsa(rsa_other, "r2", NULL)),
		NULL);
	struct jwt_keyset *only_ec =
		keyset_of(json_pack("[o]", jwk_ec(ec, "e1", NULL)), NULL);
	char *nokid = make_token(S_RSA, "{\"alg\":\"RS256\"}", GOOD_CLAIMS);
	char *kid2 = make_token(S_RSA_OTHER, "{\"alg\":\"RS256\",\"kid\":\"r2\"}",
				GOOD_CLAIMS);
	char *kid1_other = make_token(
		S_RSA_OTHER, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD_CLAIMS);
	char err[256];

	(void)state;
	assert_int_equal(jwt_keyset_count(two), 2);
	assert_int_equal(verify(two, nokid, strlen(nokid), &ex, err,
				sizeof(err), NULL),
			 -1);
	assert_string_equal(err, "several keys fit a token without a key id");
	assert_int_equal(verify(two, kid2, strlen(kid2), &ex, err, sizeof(err),
				NULL),
			 0);
	assert_int_equal(verify(two, kid1_other, strlen(kid1_other), &ex, err,
				sizeof(err), NULL),
			 -1);
	assert_string_equal(err, "bad signature");
	assert_int_equal(verify(only_ec, nokid, strlen(nokid), &ex, err,
				sizeof(err), NULL),
			 -1);
	assert_string_equal(err, "no key for this token");
	free(nokid);
	free(kid2);
	free(kid1_other);
	jwt_keyset_free(two);
	jwt_keyset_free(only_ec);
}

/* Expectations on claims: none (any issuer, any audience). */
static void test_no_expectations(void **state)
{
	struct jwt_expect ex = { .now = NOW };
	char *tok = make_token(S_EC, "{\"alg\":\"ES256\"}",
			       "{\"exp\":1700000001,\"aud\":7}");
	struct jwt_claims c;
	char err[256];

	(void)state;
	assert_int_equal(verify(ks, tok, strlen(tok), &ex, err, sizeof(err),
				&c),
			 0);
	assert_null(c.sub);
	assert_null(c.email);
	assert_null(c.iss);
	jwt_claims_release(&c);
	free(tok);
}

/* A far-future exp from the issuer with a skew: exp + skew must not be
 * computed in int64_t (signed overflow, UB). Run in a child so that a
 * sanitizer abort fails this test only. */
static void test_exp_max(void **state)
{
	char *tok = make_token(S_RSA, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
			       "{\"iss\":\"" ISS "\",\"aud\":\"bridle\","
			       "\"exp\":9223372036854775807}");
	int status = 0;
	pid_t pid;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct jwt_expect ex = expect_default();
		char err[256];

		ex.skew_s = 60;
		_exit(verify(ks, tok, strlen(tok), &ex, err, sizeof(err),
			     NULL) == 0 ?
			      0 :
			      3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	free(tok);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("exp = INT64_MAX with skew 60: child %s %d (3: "
			 "refused; else a sanitizer report above)",
			 WIFEXITED(status) ? "exited" : "killed by signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) :
					     WTERMSIG(status));
}

static void test_jwks_errors(void **state)
{
	EVP_PKEY *small = EVP_RSA_gen(1024);
	json_t *jsmall = jwk_rsa(small, "small", NULL), *jpad, *joff, *j;
	uint8_t pt[65], npad[256];
	BIGNUM *n = NULL;
	char *doc, err[512], padded_err[512];

	(void)state;
	assert_non_null(small);
	parse_err("not json", err, sizeof(err));
	assert_true(!strncmp(err, "JWKS: line 1: ", 14));
	parse_err("{\"keys\":[],\"keys\":[]}", err, sizeof(err));
	assert_true(!strncmp(err, "JWKS: line 1: ", 14));
	parse_err("{}", err, sizeof(err));
	assert_string_equal(err, "JWKS: no \"keys\" array");
	parse_err("{\"keys\":{}}", err, sizeof(err));
	assert_string_equal(err, "JWKS: no \"keys\" array");
	parse_err("[]", err, sizeof(err));
	assert_string_equal(err, "JWKS: no \"keys\" array");
	parse_err("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
		  "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},{\"kid\":"
		  "\"k\"}]}",
		  err, sizeof(err));
	assert_string_equal(err, "JWKS: key 1 has no \"kty\"");
	parse_err("{\"keys\":[7]}", err, sizeof(err));
	assert_string_equal(err, "JWKS: key 0 has no \"kty\"");

	/* RSA 1024 bits, as it is and with n padded to 256 bytes by leading
	 * zeros: both must be refused. */
	doc = json_dumps(j = json_pack("{s:[O]}", "keys", jsmall), 0);
	json_decref(j);
	parse_err(doc, err, sizeof(err));
	free(doc);
	assert_string_equal(err, "JWKS: key 0 (RSA small) is malformed or not "
				 "supported (RSA >= 2048 bits, EC P-256, OKP "
				 "Ed25519)");
	assert_int_equal(EVP_PKEY_get_bn_param(small, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(BN_bn2binpad(n, npad, sizeof(npad)), 256);
	BN_free(n);
	jpad = json_deep_copy(jsmall);
	set_b64(jpad, "n", npad, sizeof(npad));
	doc = json_dumps(j = json_pack("{s:[o]}", "keys", jpad), 0);
	json_decref(j);
	parse_err(doc, err, sizeof(err));
	free(doc);
	snprintf(padded_err, sizeof(padded_err), "%s", err);

	/* EC: a point off the curve (y changed), another curve. */
	ec_point(ec, pt);
	pt[64] ^= 1;
	joff = jwk_base("EC", "bad", NULL);
	json_object_set_new(joff, "crv", json_string("P-256"));
	set_b64(joff, "x", pt + 1, 32);
	set_b64(joff, "y", pt + 33, 32);
	doc = json_dumps(j = json_pack("{s:[o]}", "keys", joff), 0);
	json_decref(j);
	parse_err(doc, err, sizeof(err));
	free(doc);
	assert_string_equal(err, "JWKS: key 0 (EC bad) is malformed or not "
				 "supported (RSA >= 2048 bits, EC P-256, OKP "
				 "Ed25519)");
	j = jwk_ec(ec, NULL, NULL);
	json_object_set_new(j, "crv", json_string("P-384"));
	doc = json_dumps(j = json_pack("{s:[o]}", "keys", j), 0);
	json_decref(j);
	parse_err(doc, err, sizeof(err));
	free(doc);
	assert_string_equal(err, "JWKS: key 0 (EC) is malformed or not "
				 "supported (RSA >= 2048 bits, EC P-256, OKP "
				 "Ed25519)");
	parse_err("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":"
		  "\"d\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR\"}]}",
		  err, sizeof(err));
	assert_string_equal(err, "JWKS: key 0 (OKP d) is malformed or not "
				 "supported (RSA >= 2048 bits, EC P-256, OKP "
				 "Ed25519)");
	parse_err("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":"
		  "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
		  err, sizeof(err));
	assert_string_equal(err, "JWKS: key 0 (OKP) is malformed or not "
				 "supported (RSA >= 2048 bits, EC P-256, OKP "
				 "Ed25519)");

	/* Skipped: "use":"enc" (even malformed), unknown kty. */
	{
		const char *skip = "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\","
				   "\"n\":\"AQAB\",\"e\":\"AQAB\"},{\"kty\":"
				   "\"oct\",\"k\":\"c2VjcmV0\"},{\"kty\":\"OKP\","
				   "\"use\":\"sig\",\"crv\":\"Ed25519\",\"x\":"
				   "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";
		struct jwt_keyset *k = jwt_keyset_parse(skip, strlen(skip), err,
							sizeof(err));

		if (!k)
			fail_msg("skip: %s", err);
		assert_int_equal(jwt_keyset_count(k), 1);
		jwt_keyset_free(k);
		k = jwt_keyset_parse("{\"keys\":[]}", 11, err, sizeof(err));
		assert_non_null(k);
		assert_int_equal(jwt_keyset_count(k), 0);
		jwt_keyset_free(k);
	}
	json_decref(jsmall);
	EVP_PKEY_free(small);
	/* Checked last, so that a failure leaks nothing. */
	if (strcmp(padded_err, "JWKS: key 0 (RSA small) is malformed or not "
			       "supported (RSA >= 2048 bits, EC P-256, OKP "
			       "Ed25519)"))
		fail_msg("a 1024-bit RSA key whose n has 128 leading zero "
			 "bytes: got \"%s\"",
			 padded_err);
}

static void test_keyset_load(void **state)
{
	char path[] = "/tmp/test_jwt_XXXXXX", err[512];
	int fd = mkstemp(path);
	struct jwt_keyset *k;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, jwks_doc, strlen(jwks_doc)),
			 (ssize_t)strlen(jwks_doc));
	close(fd);
	k = jwt_keyset_load(path, err, sizeof(err));
	unlink(path);
	if (!k)
		fail_msg("load: %s", err);
	assert_int_equal(jwt_keyset_count(k), 4);
	jwt_keyset_free(k);
	assert_null(jwt_keyset_load("/nonexistent/jwks.json", err, sizeof(err)));
	assert_string_equal(err, "cannot open /nonexistent/jwks.json: No such "
				 "file or directory");
}

static void test_b64url(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: refused */
		size_t outlen;
	} v[] = {
		/* RFC 4648 section 10, without padding */
		{ "", "", 8 },
		{ "Zg", "f", 8 },
		{ "Zm8", "fo", 8 },
		{ "Zm9v", "foo", 8 },
		{ "Zm9vYg", "foob", 8 },
		{ "Zm9vYmE", "fooba", 8 },
		{ "Zm9vYmFy", "foobar", 8 },
		{ "-_8", "\xfb\xff", 8 }, /* the url alphabet */
		{ "+/8", NULL, 8 },
		{ "Zg==", NULL, 8 },
		{ "Zm9vYg=", NULL, 8 },
		{ "Z", NULL, 8 },
		{ "Zm9vY", NULL, 8 },
		{ "Zh", NULL, 8 }, /* unused bits set */
		{ "Zm9", NULL, 8 },
		{ "Zm9vYmFy", NULL, 5 }, /* no room */
		{ "Zm9vYmFy", "foobar", 6 },
		{ "Zm 9v", NULL, 8 },
		{ "Zm9v\n", NULL, 8 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		uint8_t out[8];
		ssize_t n = jwt_b64url_decode(v[i].in, strlen(v[i].in), out,
					      v[i].outlen);

		if (!v[i].out) {
			if (n != -1)
				fail_msg("\"%s\": %zd, want -1", v[i].in, n);
			continue;
		}
		if (n != (ssize_t)strlen(v[i].out) ||
		    memcmp(out, v[i].out, (size_t)n))
			fail_msg("\"%s\": %zd bytes, want \"%s\"", v[i].in, n,
				 v[i].out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_good_and_flipped),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_key_choice),
		cmocka_unit_test(test_no_expectations),
		cmocka_unit_test(test_keyset_load),
		cmocka_unit_test(test_jwks_errors),
		cmocka_unit_test(test_exp_max),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
