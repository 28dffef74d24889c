// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: policy_parse_cidr() on a NUL-terminated copy of the
 * input. What it accepts must be well formed (prefix within the family,
 * host bits zero, IPv4-mapped folded) and must parse back to itself from
 * its printed form.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/policy.h"

static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void check(int family, const uint8_t addr[16], unsigned prefix)
{
	char text[INET6_ADDRSTRLEN + 8], ip[INET6_ADDRSTRLEN];
	unsigned max, prefix2 = 999;
	uint8_t addr2[16];
	int family2 = -1;

	if (family == AF_INET) {
		max = 32;
		for (int i = 4; i < 16; i++)
			if (addr[i])
				abort();
	} else if (family == AF_INET6) {
		max = 128;
		if (memcmp(addr, mapped, 12) == 0)
			abort(); /* must have been folded to IPv4 */
	} else {
		abort();
	}
	if (prefix > max)
		abort();
	for (unsigned bit = prefix; bit < max; bit++)
		if (addr[bit / 8] & (0x80 >> (bit % 8)))
			abort();
	if (!inet_ntop(family, addr, ip, sizeof(ip)))
		abort();
	snprintf(text, sizeof(text), "%s/%u", ip, prefix);
	if (policy_parse_cidr(text, &family2, addr2, &prefix2) != 0 ||
	    family2 != family || prefix2 != prefix ||
	    memcmp(addr2, addr, 16) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	uint8_t addr[16];
	unsigned prefix = 999;
	int family = -1, r;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	r = policy_parse_cidr(s, &family, addr, &prefix);
	if (r == 0)
		check(family, addr, prefix);
	else if (r != -EINVAL)
		abort();
	free(s);
	return 0;
}
