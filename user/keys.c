// SPDX-License-Identifier: Apache-2.0
/*
 * Map keys from socket addresses, with the same IPv4-mapped folding as the
 * BPF programs (bpf/lib/addr.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "bridle/keys.h"

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0,    0,
					     0, 0, 0, 0, 0xff, 0xff };

int keys_tuple_from_peer(uint64_t netns_cookie, const struct sockaddr *peer,
			 socklen_t len, struct bridle_tuple_key *out)
{
	memset(out, 0, sizeof(*out));
	out->netns_cookie = netns_cookie;
	if (len < sizeof(sa_family_t))
		return -EINVAL;
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)peer;

		if (len < sizeof(*sin))
			return -EINVAL;
		out->family = AF_INET;
		memcpy(out->addr, &sin->sin_addr, 4);
		out->port = ntohs(sin->sin_port);
		return 0;
	}
	if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)peer;

		if (len < sizeof(*sin6))
			return -EINVAL;
		out->port = ntohs(sin6->sin6_port);
		if (memcmp(&sin6->sin6_addr, v4mapped_prefix, 12) == 0) {
			out->family = AF_INET;
			memcpy(out->addr, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->addr, &sin6->sin6_addr, 16);
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

int keys_resolver(int family, const uint8_t *addr,
		  struct bridle_resolver_key *out)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		memcpy(out->addr, addr, 4);
	} else if (family == AF_INET6) {
		if (memcmp(addr, v4mapped_prefix, 12) == 0) {
			family = AF_INET;
			memcpy(out->addr, addr + 12, 4);
		} else {
			memcpy(out->addr, addr, 16);
		}
	} else {
		return -EAFNOSUPPORT;
	}
	out->family = (uint16_t)family;
	return 0;
}

int keys_orig_sockaddr(const struct bridle_orig *o, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (o->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(o->port);
		memcpy(&sin->sin_addr, o->addr, 4);
		*len = sizeof(*sin);
		return AF_INET;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(o->port);
	memcpy(&sin6->sin6_addr, o->addr, 16);
	*len = sizeof(*sin6);
	return AF_INET6;
}
