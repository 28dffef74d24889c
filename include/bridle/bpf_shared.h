/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structures shared by the BPF programs (bpf/redirect.bpf.c) and the
 * enforcer. Fixed-width fields only, no pointers, explicit padding: both
 * sides must agree byte for byte. Addresses are kept in network byte order
 * in a 16-byte array; IPv4 uses the first word and family AF_INET.
 */
#ifndef BRIDLE_BPF_SHARED_H
#define BRIDLE_BPF_SHARED_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define BRIDLE_MAX_PODS 4096
#define BRIDLE_MAX_TUPLES 65536
#define BRIDLE_MAX_RESOLVERS 64
#define BRIDLE_EVENTS_BYTES (256 * 1024)
#define BRIDLE_MAX_CGROUPS 4096
#define BRIDLE_CGROUP_MAX_DEPTH 32
/* Kernel events per CPU per window; more are counted, not reported. */
#define BRIDLE_EVENTS_PER_WINDOW 64
#define BRIDLE_EVENT_WINDOW_NS 100000000ULL

struct bridle_event_rate {
	__u64 window_start;
	__u64 count;
};

#define BRIDLE_AF_INET 2
#define BRIDLE_AF_INET6 10

/* pod_cfg flags */
#define BRIDLE_POD_READY (1u << 0)

/* Per enrolled network namespace, keyed by its netns cookie. */
struct bridle_pod_cfg {
	__u32 pod_id; /* enforcer's workload index + 1; 0 is never used */
	__u32 flags; /* BRIDLE_POD_* */
	__u16 listen_port; /* host byte order; listeners on 127.0.0.1 and ::1 */
	__u16 pad[3];
};

/* Original destination of a redirected socket (sk_storage and per tuple). */
struct bridle_orig {
	__u32 addr[4]; /* network byte order; IPv4 in addr[0] */
	__u16 port; /* host byte order */
	__u16 family; /* BRIDLE_AF_INET or BRIDLE_AF_INET6 */
	__u32 tgid; /* connecting process, as the init pid namespace sees it */
	__u32 uid;
	__u32 pod_id;
	__u64 cgroup_id; /* the process's own cgroup (a container's, say) */
	__u64 sock_cookie;
	__u64 workload_cgroup; /* the enrolled cgroup it is in or below */
};

/*
 * Key of bridle_orig_by_tuple: the redirected socket's own address as the
 * enforcer's listener sees it (the accepted socket's peer), in the network
 * namespace identified by netns_cookie.
 */
struct bridle_tuple_key {
	__u64 netns_cookie;
	__u32 addr[4]; /* network byte order; IPv4 in addr[0], rest zero */
	__u16 port; /* host byte order */
	__u16 family;
	__u32 pad;
};

/* A UDP destination that may be reached: a configured DNS resolver. */
struct bridle_resolver_key {
	__u32 addr[4];
	__u16 family;
	__u16 pad;
};

/* Kernel-side refusals, reported on the bridle_events ring buffer. */
enum bridle_event_kind {
	/* TCP connect from a pod that is not ready */
	BRIDLE_EV_NOT_READY = 1,
	BRIDLE_EV_UDP_DENIED = 2,
	BRIDLE_EV_SOCK_DENIED = 3,
	/* connect to the enforcer's listener port */
	BRIDLE_EV_SELF_CONNECT = 4,
	BRIDLE_EV_BIND_DENIED = 5,
	/* tc guard: a frame that bypassed the hooks */
	BRIDLE_EV_FRAME_DROPPED = 6,
	/* IP options, extension headers, UDP elsewhere */
	BRIDLE_EV_IP_DROPPED = 7,
	/* source route, packet qdisc bypass, AF_XDP */
	BRIDLE_EV_SOCKOPT_DENIED = 8,
};

struct bridle_event {
	__u64 netns_cookie;
	__u64 cgroup_id;
	__u32 kind;
	__u32 tgid;
	__u32 uid;
	__u16 family;
	__u16 port;
	__u32 addr[4];
	__u32 sock_type; /* for SOCK_DENIED: type and protocol */
	__u32 sock_proto;
};

/* Indexes into the per-CPU counters array. */
enum bridle_counter {
	BRIDLE_CNT_REDIRECTED = 0,
	BRIDLE_CNT_NOT_READY,
	BRIDLE_CNT_UDP_ALLOWED,
	BRIDLE_CNT_UDP_DENIED,
	BRIDLE_CNT_SOCK_DENIED,
	BRIDLE_CNT_SELF_CONNECT,
	BRIDLE_CNT_TUPLE_RECORDED,
	BRIDLE_CNT_NO_ORIG,
	BRIDLE_CNT_BIND_DENIED,
	BRIDLE_CNT_FRAME_DROPPED,
	BRIDLE_CNT_IP_DROPPED,
	BRIDLE_CNT_EVENTS_SUPPRESSED,
	BRIDLE_CNT_MAX,
};

#endif
