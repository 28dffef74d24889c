/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An OIDC issuer's keys (its JWKS document) fetched over HTTPS with
 * libcurl and kept fresh by one background thread, so that the event loop
 * verifies tokens against keys in memory and never waits on the network.
 * A source is shared by everything that names the same URL and CA file,
 * and counted by reference.
 *
 * Locks: one global mutex for the list of sources, their counters and the
 * refresher's schedule, never held across network I/O; one rwlock per
 * source around its key set, held for reading by jwks_verify and for
 * writing only while a fetched key set is swapped in.
 */
#ifndef BRIDLE_JWKS_H
#define BRIDLE_JWKS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bridle/jwt.h"

#define JWKS_MAX_BODY (1u << 20) /* a JWKS document larger is refused */
#define JWKS_CONNECT_TIMEOUT_MS 5000
#define JWKS_TIMEOUT_MS 10000
#define JWKS_RETRY_MAX_S 30 /* a failed fetch is retried this soon at most */
#define JWKS_KID_REFRESH_S 10 /* unknown kids refresh a source this often */

struct jwks_source;

/*
 * The source of @url (must be https://), verifying the server with
 * @ca_file (NULL: the system CAs), refreshed every @refresh_s seconds
 * (>= 1). Sources are shared: the same url+ca_file returns the same source
 * with one more reference, refreshed at the shortest interval asked for.
 * Does not fetch: registered sources are fetched by the thread once
 * jwks_start() has run (and immediately when registered after that).
 * Returns NULL with a reason in @err (bad URL, out of memory).
 * Thread-safe.
 */
struct jwks_source *jwks_source_get(const char *url, const char *ca_file,
				    uint32_t refresh_s, char *err,
				    size_t errlen);

/* Drop a reference (NULL is allowed); the last one removes the source from
 * the refresher and frees it. Thread-safe. */
void jwks_source_put(struct jwks_source *s);

/* Start the refresher thread (idempotent): it fetches every registered
 * source now and then each at its interval. Returns 0 or -errno. */
int jwks_start(void);

/* Stop and join the thread (at exit); idempotent. A fetch in progress is
 * aborted (within about a second). Sources stay registered until their
 * last reference goes; jwks_start() may run again. */
void jwks_stop(void);

/*
 * Verify @token with the source's current keys (see jwt_verify). While a
 * refresh swaps the key set, verification waits on a rwlock, never on the
 * network. When the keys were never fetched: -1, err "the issuer's keys
 * are not loaded yet (<last fetch error or 'fetching'>)". When the token's
 * kid is unknown (or no key fits a token without one): -1 with
 * jwt_verify's error, and a refresh of this source is requested at once,
 * at most once per JWKS_KID_REFRESH_S seconds per source (rotation by
 * kid). Thread-safe.
 */
int jwks_verify(struct jwks_source *s, const char *token, size_t len,
		const struct jwt_expect *ex, struct jwt_claims *out, char *err,
		size_t errlen);

/* Fetch @s now, synchronously on the caller's thread (tests; `bridle
 * policy explain`). Returns 0 or -1 with @err. */
int jwks_fetch_now(struct jwks_source *s, char *err, size_t errlen);

/* Every source: {"url", "keys": n, "fetches", "failures", "last_ok_ms"
 * (wall clock ms or null), "last_error" (string or null; null after a
 * good fetch)} as a JSON array (new reference). */
json_t *jwks_status_json(void);

#endif
