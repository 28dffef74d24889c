// SPDX-License-Identifier: Apache-2.0
/*
 * SCRAM server messages from a hostile upstream: the input is split at the
 * first newline into a server-first and a server-final message, fed to a
 * client that started with a fixed nonce. Nothing may crash; a verified
 * exchange with a made-up server is impossible without the password's
 * keys, so it must never report success unless the input is the RFC 7677
 * exchange itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/scram.h"

#define RFC_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scram_client c;
	char out[512], err[256];
	const uint8_t *nl = memchr(data, '\n', size);
	size_t first_len = nl ? (size_t)(nl - data) : size;
	char *first = malloc(first_len ? first_len : 1);

	if (!first)
		return 0;
	memcpy(first, data, first_len);
	if (scram_client_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out,
			       sizeof(out), err, sizeof(err)) < 0)
		abort();
	if (scram_client_final(&c, "pencil", first, first_len, out, sizeof(out),
			       err, sizeof(err)) > 0 &&
	    nl) {
		size_t flen = size - first_len - 1;
		char *fin = malloc(flen ? flen : 1);

		if (fin) {
			memcpy(fin, nl + 1, flen);
			if (scram_client_verify(&c, fin, flen, err,
						sizeof(err)) == 0 &&
			    (flen != strlen(RFC_FINAL) ||
			     memcmp(fin, RFC_FINAL, flen) != 0))
				abort();
			free(fin);
		}
	}
	scram_client_clear(&c);
	free(first);
	return 0;
}
