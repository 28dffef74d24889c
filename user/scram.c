// SPDX-License-Identifier: Apache-2.0
/*
 * SCRAM-SHA-256 client with OpenSSL: PBKDF2 for the salted password,
 * HMAC-SHA-256 for the keys and signatures, constant-time comparison of
 * the server's signature. Server messages are network input: every
 * attribute is checked and lengths are bounded.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/scram.h"

#define SCRAM_MAX_MSG 1024

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int hmac(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
		uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = SCRAM_KEY_LEN;

	return HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &len) ? 0 :
									  -1;
}

/* Printable nonce characters: base64 without ',' (RFC 5802 allows these). */
static int valid_nonce(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e || *s == ',')
			return 0;
	return 1;
}

int scram_client_first(struct scram_client *c, const char *user,
		       const char *nonce, char *out, size_t outlen, char *err,
		       size_t errlen)
{
	int n;

	memset(c, 0, sizeof(*c));
	if (nonce) {
		if (strlen(nonce) >= sizeof(c->nonce) || !valid_nonce(nonce))
			return fail(err, errlen, "invalid client nonce");
		snprintf(c->nonce, sizeof(c->nonce), "%s", nonce);
	} else {
		uint8_t raw[18];

		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return fail(err, errlen, "no randomness for the nonce");
		EVP_EncodeBlock((unsigned char *)c->nonce, raw, sizeof(raw));
	}
	/* PostgreSQL ignores this user name (the startup packet's counts);
	 * ',' and '=' would need escaping, so they are refused. */
	if (strpbrk(user, ",=") || strlen(user) > 64)
		return fail(err, errlen, "user name not usable in SCRAM");
	n = snprintf(c->client_first_bare, sizeof(c->client_first_bare),
		     "n=%s,r=%s", user, c->nonce);
	if (n < 0 || (size_t)n >= sizeof(c->client_first_bare))
		return fail(err, errlen, "client-first-message too long");
	n = snprintf(out, outlen, "n,,%s", c->client_first_bare);
	if (n < 0 || (size_t)n >= outlen)
		return fail(err, errlen, "output buffer too small");
	c->state = 1;
	return n;
}

/* Find "X=value" among comma-separated attributes of @msg. */
static int attr(const char *msg, char name, char *out, size_t outlen)
{
	const char *p = msg;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len >= 2 && p[0] == name && p[1] == '=') {
			if (len - 2 >= outlen)
				return -1;
			memcpy(out, p + 2, len - 2);
			out[len - 2] = '\0';
			return 0;
		}
		p = end ? end + 1 : NULL;
	}
	return -1;
}

int scram_client_final(struct scram_client *c, const char *password,
		       const char *server_first, size_t len, char *out,
		       size_t outlen, char *err, size_t errlen)
{
	char msg[SCRAM_MAX_MSG + 1], nonce[SCRAM_MAX_MSG], salt_b64[512],
		iter_s[16], without_proof[SCRAM_MAX_MSG + 32],
		auth[3 * SCRAM_MAX_MSG];
	uint8_t salt[384], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN],
		sig[SCRAM_KEY_LEN], server_key[SCRAM_KEY_LEN],
		proof[SCRAM_KEY_LEN];
	char proof_b64[64];
	int salt_len, n, ret = -1;
	char *end;
	unsigned long iters;
	size_t slen;

	if (c->state != 1)
		return fail(err, errlen, "SCRAM exchange out of order");
	if (len > SCRAM_MAX_MSG || memchr(server_first, 0, len))
		return fail(err, errlen, "invalid server-first-message");
	memcpy(msg, server_first, len);
	msg[len] = '\0';
	if (msg[0] == 'm')
		return fail(err, errlen,
			    "server requires an unknown extension");
	if (attr(msg, 'r', nonce, sizeof(nonce)) ||
	    attr(msg, 's', salt_b64, sizeof(salt_b64)) ||
	    attr(msg, 'i', iter_s, sizeof(iter_s)))
		return fail(err, errlen,
			    "server-first-message lacks r=, s= or i=");
	if (strncmp(nonce, c->nonce, strlen(c->nonce)) != 0 ||
	    strlen(nonce) == strlen(c->nonce) || !valid_nonce(nonce))
		return fail(err, errlen, "server nonce does not extend ours");
	errno = 0;
	iters = strtoul(iter_s, &end, 10);
	if (*end || iter_s[0] < '1' || iter_s[0] > '9' ||
	    iters > SCRAM_MAX_ITERATIONS)
		return fail(err, errlen, "invalid iteration count \"%s\"",
			    iter_s);
	slen = strlen(salt_b64);
	if (slen == 0 || slen % 4)
		return fail(err, errlen, "invalid salt");
	salt_len = EVP_DecodeBlock(salt, (const unsigned char *)salt_b64,
				   (int)slen);
	if (salt_len < 0)
		return fail(err, errlen, "invalid salt");
	/* EVP_DecodeBlock counts padding bytes as data. */
	salt_len -= (salt_b64[slen - 1] == '=') + (salt_b64[slen - 2] == '=');
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, salt_len,
			      (int)iters, EVP_sha256(), SCRAM_KEY_LEN,
			      c->salted_password) != 1)
		return fail(err, errlen, "PBKDF2 failed");
	n = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%s",
		     nonce);
	if (n < 0 || (size_t)n >= sizeof(without_proof))
		return fail(err, errlen, "client-final-message too long");
	n = snprintf(auth, sizeof(auth), "%s,%s,%s", c->client_first_bare, msg,
		     without_proof);
	if (n < 0 || (size_t)n >= sizeof(auth))
		return fail(err, errlen, "auth message too long");
	if (hmac(c->salted_password, SCRAM_KEY_LEN, "Client Key", 10,
		 client_key) ||
	    !SHA256(client_key, SCRAM_KEY_LEN, stored) ||
	    hmac(stored, SCRAM_KEY_LEN, auth, (size_t)n, sig) ||
	    hmac(c->salted_password, SCRAM_KEY_LEN, "Server Key", 10,
		 server_key) ||
	    hmac(server_key, SCRAM_KEY_LEN, auth, (size_t)n,
		 c->server_signature)) {
		fail(err, errlen, "HMAC failed");
		goto out;
	}
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = client_key[i] ^ sig[i];
	EVP_EncodeBlock((unsigned char *)proof_b64, proof, SCRAM_KEY_LEN);
	n = snprintf(out, outlen, "%s,p=%s", without_proof, proof_b64);
	if (n < 0 || (size_t)n >= outlen) {
		fail(err, errlen, "output buffer too small");
		goto out;
	}
	c->state = 2;
	ret = n;
out:
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	OPENSSL_cleanse(proof, sizeof(proof));
	return ret;
}

int scram_client_verify(struct scram_client *c, const char *server_final,
			size_t len, char *err, size_t errlen)
{
	char msg[SCRAM_MAX_MSG + 1], v[128], want[64];
	size_t vlen;
	int n;

	if (c->state != 2)
		return fail(err, errlen, "SCRAM exchange out of order");
	if (len > SCRAM_MAX_MSG || memchr(server_final, 0, len))
		return fail(err, errlen, "invalid server-final-message");
	memcpy(msg, server_final, len);
	msg[len] = '\0';
	if (attr(msg, 'e', v, sizeof(v)) == 0)
		return fail(err, errlen, "server refused: %s", v);
	if (attr(msg, 'v', v, sizeof(v)))
		return fail(err, errlen, "server-final-message lacks v=");
	vlen = strlen(v);
	/* Compare encodings, so only the canonical one is accepted (a
	 * decoder ignores the low bits of the last character). */
	n = EVP_EncodeBlock((unsigned char *)want, c->server_signature,
			    SCRAM_KEY_LEN);
	if (vlen != (size_t)n || CRYPTO_memcmp(v, want, vlen) != 0)
		return fail(err, errlen,
			    "server signature does not match: not the server "
			    "that holds this password");
	c->state = 3;
	return 0;
}

void scram_client_clear(struct scram_client *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}
