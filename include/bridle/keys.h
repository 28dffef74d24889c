/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conversions between socket addresses and the keys and values of the BPF
 * maps. The BPF side folds IPv4-mapped IPv6 to IPv4; so does this side, so
 * that both compute the same key for the same socket.
 */
#ifndef BRIDLE_KEYS_H
#define BRIDLE_KEYS_H

#include <stdint.h>
#include <sys/socket.h>

#include "bridle/bpf_shared.h"

/*
 * Key of bridle_orig_by_tuple for a connection accepted in the netns
 * @netns_cookie from @peer. Returns 0, or -EAFNOSUPPORT / -EINVAL.
 */
int keys_tuple_from_peer(uint64_t netns_cookie, const struct sockaddr *peer,
			 socklen_t len, struct bridle_tuple_key *out);

/* Key of bridle_resolvers for @family/@addr (4 or 16 bytes). */
int keys_resolver(int family, const uint8_t *addr,
		  struct bridle_resolver_key *out);

/* The destination recorded in @o as a sockaddr. Returns its family. */
int keys_orig_sockaddr(const struct bridle_orig *o, struct sockaddr_storage *ss,
		       socklen_t *len);

#endif
