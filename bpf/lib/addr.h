/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address helpers for the sock_addr and sock_ops programs: IPv4-mapped IPv6
 * detection and the loopback addresses the enforcer listens on.
 */
#ifndef BRIDLE_BPF_LIB_ADDR_H
#define BRIDLE_BPF_LIB_ADDR_H

#define BRIDLE_LOOPBACK4 bpf_htonl(0x7f000001)

static __always_inline int bridle_is_v4mapped(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

#endif
