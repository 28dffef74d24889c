/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For unit tests that need real user tokens: an Ed25519 key generated at
 * run time, published as a one-key JWKS file, and compact EdDSA JWS signed
 * with it. Include after cmocka.h.
 */
#ifndef BRIDLE_TEST_ED25519_TOKENS_H
#define BRIDLE_TEST_ED25519_TOKENS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

static char *b64url(const uint8_t *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789-_";
	char *out = malloc(len * 4 / 3 + 4), *o = out;
	uint32_t acc = 0;
	int bits = 0;

	assert_non_null(out);
	for (size_t i = 0; i < len; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			*o++ = tab[(acc >> bits) & 63];
		}
	}
	if (bits)
		*o++ = tab[(acc << (6 - bits)) & 63];
	*o = 0;
	return out;
}

/* A compact JWS of @payload, signed EdDSA with @k, header kid @kid. */
static char *ed_token(EVP_PKEY *k, const char *kid, const char *payload)
{
	char hdr[128], *h, *pl, *signing, *sig64, *out;
	uint8_t sig[64];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	snprintf(hdr, sizeof(hdr), "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", kid);
	h = b64url((const uint8_t *)hdr, strlen(hdr));
	pl = b64url((const uint8_t *)payload, strlen(payload));
	assert_true(asprintf(&signing, "%s.%s", h, pl) > 0);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen,
					(const uint8_t *)signing,
					strlen(signing)),
			 1);
	sig64 = b64url(sig, siglen);
	assert_true(asprintf(&out, "%s.%s", signing, sig64) > 0);
	EVP_MD_CTX_free(ctx);
	free(h);
	free(pl);
	free(signing);
	free(sig64);
	return out;
}

/* A new Ed25519 key, its public half written as a JWKS with @kid to a
 * new file whose name goes to @path (a buffer of @len). NULL on failure. */
static EVP_PKEY *ed_key_and_jwks(const char *kid, char *path, size_t len)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	uint8_t pub[32];
	size_t n = sizeof(pub);
	char *x;
	FILE *f;
	int fd;

	if (!k || !EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY,
						   pub, sizeof(pub), &n)) {
		EVP_PKEY_free(k);
		return NULL;
	}
	snprintf(path, len, "/tmp/bridle-jwks-XXXXXX");
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		EVP_PKEY_free(k);
		return NULL;
	}
	x = b64url(pub, n);
	fprintf(f,
		"{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", "
		"\"kid\": \"%s\", \"x\": \"%s\"}]}",
		kid, x);
	fclose(f);
	free(x);
	return k;
}

#endif
