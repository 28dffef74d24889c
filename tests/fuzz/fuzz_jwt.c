// SPDX-License-Identifier: Apache-2.0
/*
 * JWT tokens and JWKS documents from a hostile peer. The input is verified
 * as a token against a fixed key set (public halves of keys generated once
 * with tests/unit/test_jwt.c's helpers; the private halves are gone), then
 * parsed as a JWKS document, and a fixed token checked against whatever
 * keys it holds. Nothing may crash, and no token may verify against the
 * fixed set unless its header and claims are one of the seeds' (which
 * were signed with those keys): that would be a forgery.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/jwt.h"

static const char jwks[] =
	"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"alg\":\"RS256\",\"n"
	"\":\"zZouOe7MibzyDuaArTQQbUMTpYWpnTjyKvb25GqvL7dLPWazP6KnBfv8qa7"
	"H0eiMD43QN2FanTx5nPwg_E-VG8MTi7YJdaOXVRIdHGe9ju36EMLyirt7iEIpqoD"
	"4OvqWwF7VhVI_KaECHX5e3xnAvJOBa_kp11N_iLolgvBzzJglk_6uLQc84EQqhUs"
	"4poUHc3CcOb05wUggX-d9WY49XmZmDKB1afNYprUHbzyHD1fd9jDeI7soBjUrpaB"
	"zouXatnB-2S1obM90xu6s_Jc7wg9YsaC-P5himi5FQgzXEu0qZoMDSAfNFk_qIdL"
	"MsHV4Ke5tUHcWsEEkEI7Ei_ZhSw\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\""
	"kid\":\"e1\",\"alg\":\"ES256\",\"crv\":\"P-256\",\"x\":\"hDMGL6q"
	"TPxYeTt1sEQzbqi2mkAzlv-W3dh8jGM6M_gI\",\"y\":\"ZeMrfMMzM2oHZlPJ6"
	"FAFfCS6NAYHtMFIQsLm4czzU2Q\"},{\"kty\":\"OKP\",\"kid\":\"d1\",\""
	"crv\":\"Ed25519\",\"x\":\"Ts94yCAZRPOd5IDuwxfmrCBPN3QEYg-LDwyLvO"
	"LBxOY\"},{\"kty\":\"RSA\",\"kid\":\"ra\",\"alg\":\"ES256\",\"n\""
	":\"zV7G-7PpC055_0yfwuZUFgR2zX47ajkzoXxJDv4oTQYgbalsDIHeZfjNciPxc"
	"gD71UJKnoBCAbKDNIZTSHOyVU68TWL67AQok2nuR9tfjoT_4JV9iZFuYnwFOaMLI"
	"VOgIN9JZJALYpgWGsWNp-9NK8T2QX3Oywjyqz0d_jUDgr_3uKphqnlVMH6f5j4ZA"
	"5dCdwpx4QCarol1jsYE5BHgWvQgrPtZynyYXx2kqWlbD1eiGRAF2jIVI_zZ2gRBZ"
	"-zGm7RLa1aUCxmjIqOH5u_BKfIdwkGBy0tPQM-2bLAWU7wtKxkiOflR63Tb75Rp1"
	"vRalPCaI3wchXHAckD7VqmcIQ\",\"e\":\"AQAB\"},{\"kty\":\"RSA\",\"u"
	"se\":\"enc\",\"kid\":\"x1\",\"n\":\"AQAB\",\"e\":\"AQAB\"},{\"kt"
	"y\":\"oct\",\"kid\":\"h1\",\"k\":\"c2VjcmV0\"}]}";

/* header.claims of the seed tokens signed with the keys above. */
static const char *const signed_parts[] = {
	("eyJhbGciOiJSUzI1NiIsImtpZCI6InIxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1"
	 "LTQyIiwiZW1haWwiOiJhbGljZUBleGFtcGxlLmNvbSIsImlzcyI6Imh0dHBzOi8v"
	 "aWRwLmV4YW1wbGUiLCJhdWQiOiJicmlkbGUiLCJleHAiOjE3MDAwMDA2MDAsIm5i"
	 "ZiI6MTY5OTk5OTAwMH0"),
	("eyJhbGciOiJFUzI1NiIsImtpZCI6ImUxIn0.eyJzdWIiOiJ1LTQyIiwiZW1haWwi"
	 "OiJhbGljZUBleGFtcGxlLmNvbSIsImlzcyI6Imh0dHBzOi8vaWRwLmV4YW1wbGUi"
	 "LCJhdWQiOiJicmlkbGUiLCJleHAiOjE3MDAwMDA2MDAsIm5iZiI6MTY5OTk5OTAw"
	 "MH0"),
	("eyJhbGciOiJFZERTQSIsImtpZCI6ImQxIn0.eyJzdWIiOiJ1LTQyIiwiZW1haWwi"
	 "OiJhbGljZUBleGFtcGxlLmNvbSIsImlzcyI6Imh0dHBzOi8vaWRwLmV4YW1wbGUi"
	 "LCJhdWQiOiJicmlkbGUiLCJleHAiOjE3MDAwMDA2MDAsIm5iZiI6MTY5OTk5OTAw"
	 "MH0"),
	("eyJhbGciOiJFZERTQSJ9.eyJleHAiOjE3MDAwMDA2MDAsImF1ZCI6WyJ4IiwiYnJ"
	 "pZGxlIl0sImlzcyI6Imh0dHBzOi8vaWRwLmV4YW1wbGUifQ"),
};

/* A seed token (EdDSA, kid d1), verified against fuzzed key sets. */
static const char fixed_token[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6ImQxIn0.eyJzdWIiOiJ1LTQyIiwiZW1haWwi"
	"OiJhbGljZUBleGFtcGxlLmNvbSIsImlzcyI6Imh0dHBzOi8vaWRwLmV4YW1wbGUi"
	"LCJhdWQiOiJicmlkbGUiLCJleHAiOjE3MDAwMDA2MDAsIm5iZiI6MTY5OTk5OTAw"
	"MH0.AusM1glAaicbOGb5HGMyFrumxg5-YifM2R3a8CR9BVEYbNkfw2byJv6hs4_e"
	"3lkgXpItmMttD_aa-m0MiB-vBw";

static struct jwt_keyset *ks;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	ks = jwt_keyset_parse(jwks, sizeof(jwks) - 1, err, sizeof(err));
	if (!ks || jwt_keyset_count(ks) != 4)
		abort();
	return 0;
}

static int known(const uint8_t *data, size_t size)
{
	const uint8_t *dot = memchr(data, '.', size);

	dot = dot ? memchr(dot + 1, '.', size - (size_t)(dot + 1 - data)) : NULL;
	if (!dot)
		return 0;
	for (size_t i = 0; i < sizeof(signed_parts) / sizeof(*signed_parts); i++)
		if (strlen(signed_parts[i]) == (size_t)(dot - data) &&
		    !memcmp(signed_parts[i], data, (size_t)(dot - data)))
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const aud[] = { "bridle" };
	struct jwt_expect ex = { .issuer = "https://idp.example",
				 .audiences = aud,
				 .naudiences = 1,
				 .skew_s = 60,
				 .now = 1700000000 };
	struct jwt_claims c;
	struct jwt_keyset *fk;
	char err[256];
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	/* Copied, so that a read past @size is caught. */
	memcpy(buf, data, size);
	if (jwt_verify(ks, (const char *)buf, size, &ex, &c, err,
		       sizeof(err)) == 0) {
		if (!known(buf, size) || !c.payload)
			abort();
		jwt_claims_release(&c);
	} else if (!memchr(err, 0, sizeof(err)) || !err[0]) {
		abort();
	}
	jwt_b64url_decode((const char *)buf, size, buf, size);

	memcpy(buf, data, size);
	fk = jwt_keyset_parse((const char *)buf, size, err, sizeof(err));
	if (fk) {
		if (jwt_keyset_count(fk) > JWT_MAX_KEYS)
			abort();
		if (jwt_verify(fk, fixed_token, sizeof(fixed_token) - 1, &ex,
			       &c, err, sizeof(err)) == 0)
			jwt_claims_release(&c);
		jwt_keyset_free(fk);
	}
	free(buf);
	return 0;
}
