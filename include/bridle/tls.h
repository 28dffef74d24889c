/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS contexts. The agent side: bridle terminates the agent's TLS with a
 * certificate from the config, or one it generates at start (a fresh key
 * and a self-signed certificate that live as long as the process). The
 * destination side: one client context per CA file, shared by sessions;
 * verification of the name is per connection.
 */
#ifndef BRIDLE_TLS_H
#define BRIDLE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/*
 * The agent-side context: @cert and @key files (PEM), or both NULL for a
 * generated certificate. Returns NULL with @err filled.
 */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err,
			size_t errlen);

/*
 * A client context that verifies against @ca_file, or (NULL) does not
 * verify. Contexts are cached by CA file for the life of the process.
 * Returns NULL with @err filled.
 */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen);

/* The last OpenSSL error (or @fallback), for messages. Thread-local. */
const char *tls_error(const char *fallback);

#endif
