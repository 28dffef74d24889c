/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SCRAM-SHA-256 client (RFC 5802, RFC 7677), as PostgreSQL speaks it:
 * bridle authenticates upstream with the credentials it holds, so the
 * agent never sees them. Groundwork for the PostgreSQL issue. The
 * password is used only inside these calls and the derived keys are wiped
 * by scram_client_clear(). Passwords are used as given (no SASLprep),
 * which is exact for ASCII passwords.
 */
#ifndef BRIDLE_SCRAM_H
#define BRIDLE_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#define SCRAM_MAX_ITERATIONS 1000000u
#define SCRAM_KEY_LEN 32

struct scram_client {
	char client_first_bare[160]; /* "n=user,r=nonce" */
	char nonce[64];
	uint8_t salted_password[SCRAM_KEY_LEN];
	uint8_t server_signature[SCRAM_KEY_LEN];
	int state; /* 0 new, 1 first sent, 2 final sent, 3 verified */
};

/*
 * Write the client-first-message ("n,,n=USER,r=NONCE") into @out. @nonce
 * NULL draws a random one (tests pass their own). Returns its length, or
 * -1 with @err.
 */
int scram_client_first(struct scram_client *c, const char *user,
		       const char *nonce, char *out, size_t outlen, char *err,
		       size_t errlen);

/*
 * Given the server-first-message, write the client-final-message (with the
 * proof) into @out. The server's nonce must extend ours; iterations are
 * bounded. Returns its length, or -1 with @err.
 */
int scram_client_final(struct scram_client *c, const char *password,
		       const char *server_first, size_t len, char *out,
		       size_t outlen, char *err, size_t errlen);

/* Check the server-final-message ("v=…", or "e=…"). Returns 0, or -1. */
int scram_client_verify(struct scram_client *c, const char *server_final,
			size_t len, char *err, size_t errlen);

/* Wipe the derived keys. */
void scram_client_clear(struct scram_client *c);

#endif
