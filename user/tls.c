// SPDX-License-Identifier: Apache-2.0
/*
 * TLS contexts for both sides of a session (see include/bridle/tls.h).
 * Sessions create their SSL objects from these; the contexts themselves
 * are shared between worker threads, which OpenSSL allows once they are
 * set up.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bridle/tls.h"

const char *tls_error(const char *fallback)
{
	static __thread char buf[256];
	unsigned long e = ERR_get_error();

	if (!e)
		return fallback;
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static int fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, tls_error("unknown error"));
	return -1;
}

/* A P-256 key and a self-signed certificate for "bridle", a year long. */
static int generate(SSL_CTX *ctx, char *err, size_t errlen)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	int ret = -1;

	if (!key || !x) {
		fail(err, errlen, "cannot generate a key");
		goto out;
	}
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"bridle", -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (!X509_sign(x, key, EVP_sha256())) {
		fail(err, errlen, "cannot sign a certificate");
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		fail(err, errlen, "cannot use the generated certificate");
		goto out;
	}
	ret = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}

static void common(SSL_CTX *ctx)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF |
					 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err,
			size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		fail(err, errlen, "cannot create a TLS context");
		return NULL;
	}
	common(ctx);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!cert) {
		if (generate(ctx, err, errlen))
			goto fail;
		return ctx;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		char what[600];

		snprintf(what, sizeof(what), "cannot load %s", cert);
		fail(err, errlen, what);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char what[600];

		snprintf(what, sizeof(what), "cannot load key %s", key);
		fail(err, errlen, what);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct client_ctx {
	struct client_ctx *next;
	char *ca_file; /* NULL: no verification */
	SSL_CTX *ctx;
};

static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;
static struct client_ctx *clients;

SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen)
{
	struct client_ctx *c;
	SSL_CTX *ctx = NULL;

	pthread_mutex_lock(&client_lock);
	for (c = clients; c; c = c->next)
		if ((!c->ca_file && !ca_file) ||
		    (c->ca_file && ca_file && !strcmp(c->ca_file, ca_file))) {
			ctx = c->ctx;
			goto out;
		}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		fail(err, errlen, "cannot create a TLS context");
		goto out;
	}
	common(ctx);
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			char what[600];

			snprintf(what, sizeof(what), "cannot load CA file %s",
				 ca_file);
			fail(err, errlen, what);
			SSL_CTX_free(ctx);
			ctx = NULL;
			goto out;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	c = calloc(1, sizeof(*c));
	if (!c || (ca_file && !(c->ca_file = strdup(ca_file)))) {
		free(c);
		SSL_CTX_free(ctx);
		ctx = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	c->ctx = ctx;
	c->next = clients;
	clients = c;
out:
	pthread_mutex_unlock(&client_lock);
	return ctx;
}
