// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: keys_tuple_from_peer() with the input as the socket
 * address and its size as the length, exactly as a caller hands over a
 * sockaddr and socklen_t. Accepted addresses must give a key the BPF side
 * could have written, and survive orig -> sockaddr -> key unchanged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/keys.h"

#define COOKIE 0x0123456789abcdefULL

static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bridle_tuple_key k, k2;
	struct bridle_resolver_key rk;
	struct bridle_orig o;
	struct sockaddr_storage ss;
	socklen_t len;
	int r;

	if (size > 4096)
		return 0;
	r = keys_tuple_from_peer(COOKIE, (const struct sockaddr *)data,
				 (socklen_t)size, &k);
	if (r) {
		if (r != -EINVAL && r != -EAFNOSUPPORT)
			abort();
		return 0;
	}
	if (k.netns_cookie != COOKIE || k.pad != 0)
		abort();
	if (k.family == AF_INET) {
		if (k.addr[1] || k.addr[2] || k.addr[3])
			abort();
	} else if (k.family == AF_INET6) {
		if (memcmp(k.addr, mapped, 12) == 0)
			abort(); /* IPv4-mapped must fold to AF_INET */
	} else {
		abort();
	}

	/* The resolver key of the same address agrees on family and bytes. */
	if (keys_resolver(k.family, (const uint8_t *)k.addr, &rk) != 0 ||
	    rk.family != k.family || rk.pad != 0 ||
	    memcmp(rk.addr, k.addr, sizeof(rk.addr)) != 0)
		abort();

	/* orig -> sockaddr -> key gives the same key back. */
	memset(&o, 0, sizeof(o));
	memcpy(o.addr, k.addr, sizeof(o.addr));
	o.port = k.port;
	o.family = k.family;
	if (keys_orig_sockaddr(&o, &ss, &len) != k.family)
		abort();
	if (keys_tuple_from_peer(COOKIE, (const struct sockaddr *)&ss, len,
				 &k2) != 0 ||
	    memcmp(&k, &k2, sizeof(k)) != 0)
		abort();
	return 0;
}
