// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bridle's cgroup programs. Attached to every enrolled workload cgroup, they
 * send each TCP connect to the enforcer's listener inside the workload's own
 * network namespace, remember the original destination for the enforcer and
 * for getpeername(), limit UDP to the configured DNS resolvers, and refuse
 * socket kinds that could go around the enforcer (raw, packet, MPTCP, SCTP…).
 * A workload whose netns is not marked ready gets ECONNREFUSED: fail closed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "lib/maps.h"
#include "lib/addr.h"

#define AF_INET 2
#define AF_INET6 10
#define AF_UNIX 1
#define AF_NETLINK 16
#define AF_PACKET 17
#define AF_ALG 38
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define ECONNREFUSED 111
#define EPERM 1
#define DNS_PORT 53

#define SOCK_ADDR_ALLOW 1
#define SOCK_ADDR_REFUSE 0

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void bridle_emit_ns(__u64 netns_cookie, __u32 kind,
					   __u16 family, const __u32 addr[4],
					   __u16 port, __u32 sock_type,
					   __u32 sock_proto)
{
	struct bridle_event_rate *rate;
	struct bridle_event *ev;
	__u32 zero = 0;
	__u64 now;

	/* A flood of refusals must not flood the enforcer: a few events per
	 * CPU per window, the rest only counted. */
	rate = bpf_map_lookup_elem(&bridle_event_rate, &zero);
	if (!rate)
		return;
	now = bpf_ktime_get_ns();
	if (now - rate->window_start > BRIDLE_EVENT_WINDOW_NS) {
		rate->window_start = now;
		rate->count = 0;
	}
	if (rate->count >= BRIDLE_EVENTS_PER_WINDOW) {
		bridle_count(BRIDLE_CNT_EVENTS_SUPPRESSED);
		return;
	}
	rate->count++;
	ev = bpf_ringbuf_reserve(&bridle_events, sizeof(*ev), 0);
	if (!ev)
		return; /* the counters still see it */
	ev->netns_cookie = netns_cookie;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->kind = kind;
	ev->tgid = bpf_get_current_pid_tgid() >> 32;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->family = family;
	ev->port = port;
	ev->addr[0] = addr[0];
	ev->addr[1] = addr[1];
	ev->addr[2] = addr[2];
	ev->addr[3] = addr[3];
	ev->sock_type = sock_type;
	ev->sock_proto = sock_proto;
	bpf_ringbuf_submit(ev, 0);
}

#define bridle_emit(ctx, ...) \
	bridle_emit_ns(bpf_get_netns_cookie(ctx), __VA_ARGS__)

static __always_inline int bridle_refuse(struct bpf_sock_addr *ctx, int err)
{
	bpf_set_retval(-err);
	return SOCK_ADDR_REFUSE;
}

static __always_inline int bridle_is_loopback(__u16 family, const __u32 a[4])
{
	if (family == AF_INET)
		return (bpf_ntohl(a[0]) >> 24) == 127 || a[0] == 0;
	return a[0] == 0 && a[1] == 0 && a[2] == 0 &&
	       (a[3] == 0 || a[3] == bpf_htonl(1));
}

/*
 * UDP: only DNS to a configured resolver. Used by connect and sendmsg; the
 * sendmsg hook only runs when the caller names a destination, so connected
 * UDP sockets are checked at connect time.
 */
static __always_inline int bridle_udp(struct bpf_sock_addr *ctx, __u16 family,
				      const __u32 addr[4], __u16 port)
{
	struct bridle_resolver_key key = {};

	key.family = family;
	key.addr[0] = addr[0];
	key.addr[1] = addr[1];
	key.addr[2] = addr[2];
	key.addr[3] = addr[3];
	if (port == DNS_PORT && bpf_map_lookup_elem(&bridle_resolvers, &key)) {
		bridle_count(BRIDLE_CNT_UDP_ALLOWED);
		return SOCK_ADDR_ALLOW;
	}
	bridle_count(BRIDLE_CNT_UDP_DENIED);
	bridle_emit(ctx, BRIDLE_EV_UDP_DENIED, family, addr, port, SOCK_DGRAM,
		    IPPROTO_UDP);
	return bridle_refuse(ctx, EPERM);
}

/*
 * The enrolled cgroup the current task is in or below: the identity the
 * enforcer uses for the workload, whatever network namespace it shares.
 */
static __always_inline __u64 bridle_current_workload_cgroup(void)
{
	for (int level = 1; level < BRIDLE_CGROUP_MAX_DEPTH; level++) {
		__u64 anc = bpf_get_current_ancestor_cgroup_id(level);

		if (!anc)
			break;
		if (bpf_map_lookup_elem(&bridle_cgroups, &anc))
			return anc;
	}
	return 0;
}

/*
 * TCP connect: remember where the caller wanted to go, then point the
 * socket at the enforcer's listener in the same netns. @family/@addr is the
 * original destination with IPv4-mapped IPv6 already folded to IPv4.
 * Returns the listener port, or 0 when the connect must be refused.
 */
static __always_inline __u16 bridle_tcp_redirect(struct bpf_sock_addr *ctx,
						 __u16 family,
						 const __u32 addr[4],
						 __u16 port)
{
	struct bridle_pod_cfg *cfg;
	struct bridle_orig *orig;
	__u64 netns = bpf_get_netns_cookie(ctx);
	__u64 id, wl_cgroup;

	cfg = bpf_map_lookup_elem(&bridle_pod_cfg, &netns);
	if (!cfg || !(cfg->flags & BRIDLE_POD_READY)) {
		bridle_count(BRIDLE_CNT_NOT_READY);
		bridle_emit(ctx, BRIDLE_EV_NOT_READY, family, addr, port,
			    SOCK_STREAM, IPPROTO_TCP);
		return 0;
	}
	if (port == cfg->listen_port && bridle_is_loopback(family, addr)) {
		bridle_count(BRIDLE_CNT_SELF_CONNECT);
		bridle_emit(ctx, BRIDLE_EV_SELF_CONNECT, family, addr, port,
			    SOCK_STREAM, IPPROTO_TCP);
		return 0;
	}
	wl_cgroup = bridle_current_workload_cgroup();
	if (!wl_cgroup)
		return 0; /* not below an enrolled cgroup: cannot say whose */
	orig = bpf_sk_storage_get(&bridle_orig_sk, ctx->sk, 0,
				  BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig)
		return 0; /* cannot remember the destination: refuse */
	orig->addr[0] = addr[0];
	orig->addr[1] = addr[1];
	orig->addr[2] = addr[2];
	orig->addr[3] = addr[3];
	orig->port = port;
	orig->family = family;
	id = bpf_get_current_pid_tgid();
	orig->tgid = id >> 32;
	orig->uid = (__u32)bpf_get_current_uid_gid();
	orig->pod_id = cfg->pod_id;
	orig->cgroup_id = bpf_get_current_cgroup_id();
	orig->sock_cookie = bpf_get_socket_cookie(ctx);
	orig->workload_cgroup = wl_cgroup;
	bridle_count(BRIDLE_CNT_REDIRECTED);
	return cfg->listen_port;
}

SEC("cgroup/connect4")
int bridle_connect4(struct bpf_sock_addr *ctx)
{
	__u32 addr[4] = { ctx->user_ip4, 0, 0, 0 };
	__u16 port = bpf_ntohs(ctx->user_port);
	__u16 lport;

	if (ctx->type == SOCK_DGRAM)
		return bridle_udp(ctx, AF_INET, addr, port);
	if (ctx->type != SOCK_STREAM)
		return bridle_refuse(ctx, EPERM);
	lport = bridle_tcp_redirect(ctx, AF_INET, addr, port);
	if (!lport)
		return bridle_refuse(ctx, ECONNREFUSED);
	ctx->user_ip4 = BRIDLE_LOOPBACK4;
	ctx->user_port = bpf_htons(lport);
	return SOCK_ADDR_ALLOW;
}

SEC("cgroup/connect6")
int bridle_connect6(struct bpf_sock_addr *ctx)
{
	__u32 addr[4];
	__u16 port = bpf_ntohs(ctx->user_port);
	__u16 family = AF_INET6;
	__u16 lport;

	/* ctx->user_ip6 must be read one word at a time (verifier). */
	addr[0] = ctx->user_ip6[0];
	addr[1] = ctx->user_ip6[1];
	addr[2] = ctx->user_ip6[2];
	addr[3] = ctx->user_ip6[3];
	if (bridle_is_v4mapped(addr)) {
		family = AF_INET;
		addr[0] = addr[3];
		addr[1] = addr[2] = addr[3] = 0;
	}
	if (ctx->type == SOCK_DGRAM)
		return bridle_udp(ctx, family, addr, port);
	if (ctx->type != SOCK_STREAM)
		return bridle_refuse(ctx, EPERM);
	lport = bridle_tcp_redirect(ctx, family, addr, port);
	if (!lport)
		return bridle_refuse(ctx, ECONNREFUSED);
	if (family == AF_INET) {
		/* Dual-stack socket: stay IPv4-mapped to reach 127.0.0.1. */
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = BRIDLE_LOOPBACK4;
	} else {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	}
	ctx->user_port = bpf_htons(lport);
	return SOCK_ADDR_ALLOW;
}

SEC("cgroup/sendmsg4")
int bridle_sendmsg4(struct bpf_sock_addr *ctx)
{
	__u32 addr[4] = { ctx->user_ip4, 0, 0, 0 };

	return bridle_udp(ctx, AF_INET, addr, bpf_ntohs(ctx->user_port));
}

SEC("cgroup/sendmsg6")
int bridle_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 addr[4];
	__u16 family = AF_INET6;

	addr[0] = ctx->user_ip6[0];
	addr[1] = ctx->user_ip6[1];
	addr[2] = ctx->user_ip6[2];
	addr[3] = ctx->user_ip6[3];
	if (bridle_is_v4mapped(addr)) {
		family = AF_INET;
		addr[0] = addr[3];
		addr[1] = addr[2] = addr[3] = 0;
	}
	return bridle_udp(ctx, family, addr, bpf_ntohs(ctx->user_port));
}

SEC("cgroup/getpeername4")
int bridle_getpeername4(struct bpf_sock_addr *ctx)
{
	struct bridle_orig *orig;

	orig = bpf_sk_storage_get(&bridle_orig_sk, ctx->sk, 0, 0);
	if (orig && orig->family == AF_INET) {
		ctx->user_ip4 = orig->addr[0];
		ctx->user_port = bpf_htons(orig->port);
	}
	return SOCK_ADDR_ALLOW;
}

SEC("cgroup/getpeername6")
int bridle_getpeername6(struct bpf_sock_addr *ctx)
{
	struct bridle_orig *orig;

	orig = bpf_sk_storage_get(&bridle_orig_sk, ctx->sk, 0, 0);
	if (!orig)
		return SOCK_ADDR_ALLOW;
	if (orig->family == AF_INET) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = orig->addr[0];
	} else {
		ctx->user_ip6[0] = orig->addr[0];
		ctx->user_ip6[1] = orig->addr[1];
		ctx->user_ip6[2] = orig->addr[2];
		ctx->user_ip6[3] = orig->addr[3];
	}
	ctx->user_port = bpf_htons(orig->port);
	return SOCK_ADDR_ALLOW;
}

/* Nothing in the workload may take the enforcer's listener port. */
static __always_inline int bridle_bind(struct bpf_sock_addr *ctx, __u16 family)
{
	struct bridle_pod_cfg *cfg;
	__u64 netns = bpf_get_netns_cookie(ctx);
	__u16 port = bpf_ntohs(ctx->user_port);
	__u32 none[4] = {};

	cfg = bpf_map_lookup_elem(&bridle_pod_cfg, &netns);
	if (!cfg || port == 0 || port != cfg->listen_port)
		return SOCK_ADDR_ALLOW;
	bridle_count(BRIDLE_CNT_BIND_DENIED);
	bridle_emit(ctx, BRIDLE_EV_BIND_DENIED, family, none, port, ctx->type,
		    ctx->protocol);
	return bridle_refuse(ctx, EPERM);
}

SEC("cgroup/bind4")
int bridle_bind4(struct bpf_sock_addr *ctx)
{
	return bridle_bind(ctx, AF_INET);
}

SEC("cgroup/bind6")
int bridle_bind6(struct bpf_sock_addr *ctx)
{
	return bridle_bind(ctx, AF_INET6);
}

/*
 * Record the original destination under the socket's own address and port,
 * which is what the enforcer sees as the peer of the accepted connection.
 * TCP_CONNECT_CB runs once the local port is chosen, before the SYN leaves.
 */
SEC("sockops")
int bridle_sockops(struct bpf_sock_ops *skops)
{
	struct bridle_tuple_key key = {};
	struct bridle_orig *orig;
	struct bpf_sock *sk;

	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	orig = bpf_sk_storage_get(&bridle_orig_sk, sk, 0, 0);
	if (!orig)
		return 1;
	key.netns_cookie = bpf_get_netns_cookie(skops);
	key.port = skops->local_port;
	if (skops->family == AF_INET) {
		key.family = AF_INET;
		key.addr[0] = skops->local_ip4;
	} else {
		key.addr[0] = skops->local_ip6[0];
		key.addr[1] = skops->local_ip6[1];
		key.addr[2] = skops->local_ip6[2];
		key.addr[3] = skops->local_ip6[3];
		key.family = AF_INET6;
		if (bridle_is_v4mapped(key.addr)) {
			key.family = AF_INET;
			key.addr[0] = key.addr[3];
			key.addr[1] = key.addr[2] = key.addr[3] = 0;
		}
	}
	if (bpf_map_update_elem(&bridle_orig_by_tuple, &key, orig, BPF_ANY) ==
	    0)
		bridle_count(BRIDLE_CNT_TUPLE_RECORDED);
	return 1;
}

/*
 * Socket creation, inet families: inside an enrolled cgroup only TCP and UDP
 * are allowed, so MPTCP, SCTP, raw and ICMP sockets are refused.
 */
SEC("cgroup/sock_create")
int bridle_sock_create(struct bpf_sock *sk)
{
	__u32 family = sk->family, type = sk->type, proto = sk->protocol;
	__u32 none[4] = {};

	if (family != AF_INET && family != AF_INET6)
		return 1; /* this hook only sees inet sockets anyway */
	if (type == SOCK_STREAM && proto == IPPROTO_TCP)
		return 1;
	if (type == SOCK_DGRAM && proto == IPPROTO_UDP)
		return 1;
	bridle_count(BRIDLE_CNT_SOCK_DENIED);
	bridle_emit(sk, BRIDLE_EV_SOCK_DENIED, family, none, 0, type, proto);
	return 0;
}

/*
 * Socket creation, every family: cgroup/sock_create never sees packet,
 * vsock or other non-inet sockets, so the LSM hook refuses all families but
 * UNIX, netlink, AF_ALG and inet (checked above). Needs the bpf LSM; the
 * loader runs without this program, and says so, where it is not enabled.
 */
SEC("lsm_cgroup/socket_create")
int BPF_PROG(bridle_lsm_socket_create, int family, int type, int protocol,
	     int kern)
{
	__u32 none[4] = {};

	if (kern)
		return 1;
	if (family == AF_UNIX || family == AF_NETLINK || family == AF_INET ||
	    family == AF_INET6 || family == AF_ALG)
		return 1;
	bridle_count(BRIDLE_CNT_SOCK_DENIED);
	bridle_emit_ns(0, BRIDLE_EV_SOCK_DENIED, (__u16)family, none, 0,
		       (__u32)type, (__u32)protocol);
	return 0;
}

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* Is the socket behind @skb in an enrolled cgroup or below one? */
static __always_inline int bridle_skb_enrolled(struct __sk_buff *skb)
{
	for (int level = 1; level < BRIDLE_CGROUP_MAX_DEPTH; level++) {
		__u64 anc = bpf_skb_ancestor_cgroup_id(skb, level);

		if (!anc)
			break;
		if (bpf_map_lookup_elem(&bridle_cgroups, &anc))
			return 1;
	}
	return 0;
}

/*
 * Egress guard on the workload's network interfaces, for what the socket
 * hooks cannot see: frames from packet (and other non-inet) sockets of an
 * enrolled cgroup. Inet sockets are already governed by the cgroup hooks
 * (TCP redirected, UDP limited to DNS, raw refused), so only non-inet
 * senders are dropped here. Frames without a full socket are the kernel's
 * own (ARP, NDP replies, RSTs) and pass. Where the lsm_cgroup program loads,
 * such sockets cannot even be created; this guard covers kernels where it
 * cannot.
 */
SEC("tc")
int bridle_tc_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	__u32 none[4] = {};

	if (!sk)
		return TC_ACT_OK;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->family == AF_INET || sk->family == AF_INET6)
		return TC_ACT_OK;
	if (!bridle_skb_enrolled(skb))
		return TC_ACT_OK;
	bridle_count(BRIDLE_CNT_FRAME_DROPPED);
	bridle_emit_ns(0, BRIDLE_EV_FRAME_DROPPED, (__u16)sk->family, none, 0,
		       sk->type, sk->protocol);
	return TC_ACT_SHOT;
}

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6 58
#define CGROUP_SKB_PASS 1
#define CGROUP_SKB_DROP 0

static __always_inline int bridle_ip_drop(__u16 family, const __u32 addr[4],
					  __u16 port, __u32 proto)
{
	bridle_count(BRIDLE_CNT_IP_DROPPED);
	bridle_emit_ns(0, BRIDLE_EV_IP_DROPPED, family, addr, port, 0, proto);
	return CGROUP_SKB_DROP;
}

/* UDP from an enrolled socket: to a resolver's port 53, and nowhere else. */
static __always_inline int bridle_udp_packet_ok(struct __sk_buff *skb,
						__u32 off, __u16 family,
						const __u32 daddr[4])
{
	struct bridle_resolver_key key = {};
	struct udphdr udp;

	if (bpf_skb_load_bytes(skb, off, &udp, sizeof(udp)))
		return 0;
	key.family = family;
	key.addr[0] = daddr[0];
	key.addr[1] = daddr[1];
	key.addr[2] = daddr[2];
	key.addr[3] = daddr[3];
	return udp.dest == bpf_htons(DNS_PORT) &&
	       bpf_map_lookup_elem(&bridle_resolvers, &key) != NULL;
}

/*
 * Every IP packet a socket of the workload sends, as it really leaves:
 * the connect and sendmsg hooks judged the address the caller named, but a
 * source route (IPv4 options, an IPv6 routing header, also passed per
 * send as control messages) would send the packet to its first hop
 * instead. So: no IPv4 options, no IPv6 extension headers, and UDP only to
 * a resolver's port 53. TCP goes to the enforcer on loopback, and ICMP can
 * only come from the kernel here (ICMP sockets are refused at creation).
 */
SEC("cgroup_skb/egress")
int bridle_skb_egress(struct __sk_buff *skb)
{
	__u32 daddr[4] = {};

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return CGROUP_SKB_DROP;
		daddr[0] = ip.daddr;
		if (ip.ihl != 5)
			return bridle_ip_drop(AF_INET, daddr, 0, ip.protocol);
		if (ip.protocol != IPPROTO_UDP)
			return CGROUP_SKB_PASS;
		/* A later fragment has no UDP header to check. */
		if ((ip.frag_off & bpf_htons(0x1fff)) ||
		    !bridle_udp_packet_ok(skb, sizeof(ip), AF_INET, daddr))
			return bridle_ip_drop(AF_INET, daddr, 0, ip.protocol);
		return CGROUP_SKB_PASS;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return CGROUP_SKB_DROP;
		__builtin_memcpy(daddr, &ip6.daddr, 16);
		if (ip6.nexthdr == IPPROTO_TCP || ip6.nexthdr == IPPROTO_ICMPV6)
			return CGROUP_SKB_PASS;
		if (ip6.nexthdr == IPPROTO_UDP &&
		    bridle_udp_packet_ok(skb, sizeof(ip6), AF_INET6, daddr))
			return CGROUP_SKB_PASS;
		return bridle_ip_drop(AF_INET6, daddr, 0, ip6.nexthdr);
	}
	return CGROUP_SKB_PASS;
}

#define SOL_IP 0
#define SOL_IPV6 41
#define SOL_PACKET 263
#define SOL_XDP 283
#define IP_OPTIONS 4
#define IPV6_2292RTHDR 5
#define IPV6_RTHDR 57
#define PACKET_QDISC_BYPASS 20

/*
 * Socket options that would take a workload's packets around the other
 * programs: source routes (also caught on egress), a packet socket's
 * qdisc bypass (skips the tc guard), and AF_XDP rings.
 */
SEC("cgroup/setsockopt")
int bridle_setsockopt(struct bpf_sockopt *ctx)
{
	__s32 level = ctx->level, opt = ctx->optname;

	if ((level == SOL_IP && opt == IP_OPTIONS) ||
	    (level == SOL_IPV6 &&
	     (opt == IPV6_RTHDR || opt == IPV6_2292RTHDR)) ||
	    (level == SOL_PACKET && opt == PACKET_QDISC_BYPASS) ||
	    level == SOL_XDP) {
		__u32 none[4] = {};

		bridle_count(BRIDLE_CNT_SOCK_DENIED);
		bridle_emit_ns(0, BRIDLE_EV_SOCKOPT_DENIED, 0, none, 0,
			       (__u32)level, (__u32)opt);
		return 0;
	}
	return 1;
}
