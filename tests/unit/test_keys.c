// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for user/keys.c and the layout of include/bridle/bpf_shared.h:
 * the enforcer must compute, byte for byte, the map keys the BPF programs
 * wrote, so the structs are checked for size and implicit padding and the
 * conversions for IPv4-mapped folding, short lengths and round trips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "bridle/keys.h"

#define COOKIE 0x1122334455667788ULL

static struct sockaddr_in sin4(const char *ip, uint16_t port)
{
	struct sockaddr_in s;

	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &s.sin_addr), 1);
	return s;
}

static struct sockaddr_in6 sin6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 s;

	memset(&s, 0, sizeof(s));
	s.sin6_family = AF_INET6;
	s.sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
	return s;
}

/* The key as bpf/redirect.bpf.c builds it: zeroed, then filled. */
static struct bridle_tuple_key expected_key(int family, const char *ip,
					    uint16_t port)
{
	struct bridle_tuple_key k;

	memset(&k, 0, sizeof(k));
	k.netns_cookie = COOKIE;
	k.family = (uint16_t)family;
	k.port = port;
	assert_int_equal(inet_pton(family, ip, k.addr), 1);
	return k;
}

/* ---- bpf_shared.h layout -------------------------------------------- */

/* @b starts right where @a ends: no implicit padding between them. */
#define ASSERT_NEXT(type, a, b)                                               \
	assert_int_equal(offsetof(type, b),                                   \
			 offsetof(type, a) + sizeof(((type *)0)->a))
/* @last is the last member and the struct ends right after it. */
#define ASSERT_LAST(type, last)                                               \
	assert_int_equal(sizeof(type),                                        \
			 offsetof(type, last) + sizeof(((type *)0)->last))

static void test_layout_pod_cfg(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct bridle_pod_cfg), 16);
	assert_int_equal(offsetof(struct bridle_pod_cfg, pod_id), 0);
	ASSERT_NEXT(struct bridle_pod_cfg, pod_id, flags);
	ASSERT_NEXT(struct bridle_pod_cfg, flags, listen_port);
	ASSERT_NEXT(struct bridle_pod_cfg, listen_port, pad);
	ASSERT_LAST(struct bridle_pod_cfg, pad);
}

static void test_layout_orig(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct bridle_orig), 56);
	assert_int_equal(offsetof(struct bridle_orig, addr), 0);
	ASSERT_NEXT(struct bridle_orig, addr, port);
	ASSERT_NEXT(struct bridle_orig, port, family);
	ASSERT_NEXT(struct bridle_orig, family, tgid);
	ASSERT_NEXT(struct bridle_orig, tgid, uid);
	ASSERT_NEXT(struct bridle_orig, uid, pod_id);
	ASSERT_NEXT(struct bridle_orig, pod_id, cgroup_id);
	ASSERT_NEXT(struct bridle_orig, cgroup_id, sock_cookie);
	ASSERT_NEXT(struct bridle_orig, sock_cookie, workload_cgroup);
	ASSERT_LAST(struct bridle_orig, workload_cgroup);
	assert_int_equal(offsetof(struct bridle_orig, cgroup_id) % 8, 0);
}

static void test_layout_tuple_key(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct bridle_tuple_key), 32);
	assert_int_equal(offsetof(struct bridle_tuple_key, netns_cookie), 0);
	ASSERT_NEXT(struct bridle_tuple_key, netns_cookie, addr);
	ASSERT_NEXT(struct bridle_tuple_key, addr, port);
	ASSERT_NEXT(struct bridle_tuple_key, port, family);
	ASSERT_NEXT(struct bridle_tuple_key, family, pad);
	ASSERT_LAST(struct bridle_tuple_key, pad);
}

static void test_layout_resolver_key(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct bridle_resolver_key), 20);
	assert_int_equal(offsetof(struct bridle_resolver_key, addr), 0);
	ASSERT_NEXT(struct bridle_resolver_key, addr, family);
	ASSERT_NEXT(struct bridle_resolver_key, family, pad);
	ASSERT_LAST(struct bridle_resolver_key, pad);
}

static void test_layout_event(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct bridle_event), 56);
	assert_int_equal(offsetof(struct bridle_event, netns_cookie), 0);
	ASSERT_NEXT(struct bridle_event, netns_cookie, cgroup_id);
	ASSERT_NEXT(struct bridle_event, cgroup_id, kind);
	ASSERT_NEXT(struct bridle_event, kind, tgid);
	ASSERT_NEXT(struct bridle_event, tgid, uid);
	ASSERT_NEXT(struct bridle_event, uid, family);
	ASSERT_NEXT(struct bridle_event, family, port);
	ASSERT_NEXT(struct bridle_event, port, addr);
	ASSERT_NEXT(struct bridle_event, addr, sock_type);
	ASSERT_NEXT(struct bridle_event, sock_type, sock_proto);
	ASSERT_LAST(struct bridle_event, sock_proto);
}

static void test_layout_constants(void **state)
{
	(void)state;
	/* The BPF side cannot include the libc headers: its values must
	 * agree with the ones user space uses. */
	assert_int_equal(BRIDLE_AF_INET, AF_INET);
	assert_int_equal(BRIDLE_AF_INET6, AF_INET6);
}

/* ---- keys_tuple_from_peer ------------------------------------------- */

static void check_tuple(const struct sockaddr *sa, socklen_t len, int family,
			const char *ip, uint16_t port)
{
	struct bridle_tuple_key got, want = expected_key(family, ip, port);

	memset(&got, 0xa5, sizeof(got));
	assert_int_equal(keys_tuple_from_peer(COOKIE, sa, len, &got), 0);
	assert_int_equal(got.family, family);
	assert_int_equal(got.port, port);
	assert_true(got.netns_cookie == COOKIE);
	/* A map key is compared byte for byte, padding included. */
	assert_memory_equal(&got, &want, sizeof(got));
}

static void test_tuple_inet(void **state)
{
	struct sockaddr_in s = sin4("10.1.2.3", 40000);

	(void)state;
	check_tuple((struct sockaddr *)&s, sizeof(s), AF_INET, "10.1.2.3",
		    40000);
	s = sin4("127.0.0.1", 1);
	check_tuple((struct sockaddr *)&s, sizeof(s), AF_INET, "127.0.0.1", 1);
	s = sin4("255.255.255.255", 65535);
	check_tuple((struct sockaddr *)&s, sizeof(s), AF_INET,
		    "255.255.255.255", 65535);
}

static void test_tuple_inet_addr_word(void **state)
{
	struct sockaddr_in s = sin4("10.1.2.3", 5);
	struct bridle_tuple_key k;
	const uint8_t *b = (const uint8_t *)k.addr;

	(void)state;
	assert_int_equal(
		keys_tuple_from_peer(7, (struct sockaddr *)&s, sizeof(s), &k), 0);
	/* Network byte order in addr[0], the other words zero. */
	assert_int_equal(b[0], 10);
	assert_int_equal(b[1], 1);
	assert_int_equal(b[2], 2);
	assert_int_equal(b[3], 3);
	assert_int_equal(k.addr[0], s.sin_addr.s_addr);
	assert_int_equal(k.addr[1], 0);
	assert_int_equal(k.addr[2], 0);
	assert_int_equal(k.addr[3], 0);
	assert_int_equal(k.pad, 0);
}

static void test_tuple_inet6(void **state)
{
	static const char *const addrs[] = {
		"2001:db8::1", "::1", "fe80::1:2:3:4",
		/* Look like mapped ones but are not. */
		"::10.1.2.3", "::fffe:10.1.2.3", "0:0:0:0:1:ffff:a01:203",
		"ffff::ffff:10.1.2.3",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct sockaddr_in6 s = sin6(addrs[i], 443);

		check_tuple((struct sockaddr *)&s, sizeof(s), AF_INET6,
			    addrs[i], 443);
	}
}

static void test_tuple_v4mapped_folds(void **state)
{
	static const struct {
		const char *v6, *v4;
	} cases[] = {
		{ "::ffff:10.1.2.3", "10.1.2.3" },
		{ "::ffff:127.0.0.1", "127.0.0.1" },
		{ "::ffff:0.0.0.0", "0.0.0.0" },
		{ "::ffff:255.255.255.255", "255.255.255.255" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_in6 s = sin6(cases[i].v6, 8080);
		struct bridle_tuple_key k;

		check_tuple((struct sockaddr *)&s, sizeof(s), AF_INET,
			    cases[i].v4, 8080);
		/* Same key as the same peer seen over IPv4. */
		struct sockaddr_in s4 = sin4(cases[i].v4, 8080);
		struct bridle_tuple_key k4;

		assert_int_equal(keys_tuple_from_peer(COOKIE,
						      (struct sockaddr *)&s,
						      sizeof(s), &k),
				 0);
		assert_int_equal(keys_tuple_from_peer(COOKIE,
						      (struct sockaddr *)&s4,
						      sizeof(s4), &k4),
				 0);
		assert_memory_equal(&k, &k4, sizeof(k));
	}
}

static void test_tuple_scope_and_flow_ignored(void **state)
{
	struct sockaddr_in6 s = sin6("fe80::1", 22);

	(void)state;
	s.sin6_scope_id = 3;
	s.sin6_flowinfo = htonl(0x12345);
	check_tuple((struct sockaddr *)&s, sizeof(s), AF_INET6, "fe80::1", 22);
}

static void test_tuple_longer_len_ok(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in s = sin4("192.0.2.1", 9);

	(void)state;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, &s, sizeof(s));
	check_tuple((struct sockaddr *)&ss, sizeof(ss), AF_INET, "192.0.2.1",
		    9);
}

static void test_tuple_short_len(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in s = sin4("10.1.2.3", 1);
	struct sockaddr_in6 s6 = sin6("2001:db8::1", 1);
	struct bridle_tuple_key k;

	(void)state;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, &s, sizeof(s));
	for (socklen_t len = 0; len < sizeof(s); len++)
		assert_int_equal(keys_tuple_from_peer(COOKIE,
						      (struct sockaddr *)&ss,
						      len, &k),
				 -EINVAL);
	memcpy(&ss, &s6, sizeof(s6));
	for (socklen_t len = 0; len < sizeof(s6); len++)
		assert_int_equal(keys_tuple_from_peer(COOKIE,
						      (struct sockaddr *)&ss,
						      len, &k),
				 -EINVAL);
}

static void test_tuple_unsupported_family(void **state)
{
	static const sa_family_t families[] = { AF_UNIX, AF_UNSPEC, AF_PACKET,
						AF_NETLINK, 0xffff };
	struct sockaddr_storage ss;
	struct bridle_tuple_key k;

	(void)state;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = families[i];
		assert_int_equal(keys_tuple_from_peer(COOKIE,
						      (struct sockaddr *)&ss,
						      sizeof(ss), &k),
				 -EAFNOSUPPORT);
	}
}

/*
 * BUG: keys_tuple_from_peer() reads peer->sa_family before checking that
 * @len covers it. With len 0 or 1 the family is not the caller's data; the
 * answer must be -EINVAL, as it is for every other short length. (Over a
 * buffer of exactly len bytes this is an out-of-bounds read: fuzz_keys
 * crashes under ASan on the empty input.)
 */
static void test_tuple_len_shorter_than_family(void **state)
{
	struct sockaddr_storage ss;
	struct bridle_tuple_key k;

	(void)state;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(
		keys_tuple_from_peer(COOKIE, (struct sockaddr *)&ss, 0, &k),
		-EINVAL);
	assert_int_equal(
		keys_tuple_from_peer(COOKIE, (struct sockaddr *)&ss, 1, &k),
		-EINVAL);
}

/* ---- keys_resolver -------------------------------------------------- */

static void check_resolver(int family, const char *ip, int want_family,
			   const char *want_ip)
{
	uint8_t addr[16] = { 0 };
	struct bridle_resolver_key got, want;

	assert_int_equal(inet_pton(family, ip, addr), 1);
	memset(&want, 0, sizeof(want));
	want.family = (uint16_t)want_family;
	assert_int_equal(inet_pton(want_family, want_ip, want.addr), 1);
	memset(&got, 0x5a, sizeof(got));
	assert_int_equal(keys_resolver(family, addr, &got), 0);
	assert_memory_equal(&got, &want, sizeof(got));
}

static void test_resolver(void **state)
{
	(void)state;
	check_resolver(AF_INET, "10.77.0.1", AF_INET, "10.77.0.1");
	check_resolver(AF_INET6, "2001:db8::53", AF_INET6, "2001:db8::53");
	check_resolver(AF_INET6, "::ffff:10.77.0.1", AF_INET, "10.77.0.1");
	check_resolver(AF_INET6, "::10.77.0.1", AF_INET6, "::10.77.0.1");
}

static void test_resolver_v4_reads_four_bytes(void **state)
{
	/* Only 4 bytes are valid for AF_INET: the rest must not leak in. */
	uint8_t addr[16];
	struct bridle_resolver_key k;

	(void)state;
	memset(addr, 0xee, sizeof(addr));
	addr[0] = 10;
	addr[1] = 0;
	addr[2] = 0;
	addr[3] = 53;
	assert_int_equal(keys_resolver(AF_INET, addr, &k), 0);
	assert_int_equal(k.family, AF_INET);
	assert_memory_equal(k.addr, addr, 4);
	assert_int_equal(k.addr[1], 0);
	assert_int_equal(k.addr[2], 0);
	assert_int_equal(k.addr[3], 0);
	assert_int_equal(k.pad, 0);
}

static void test_resolver_unsupported(void **state)
{
	uint8_t addr[16] = { 0 };
	struct bridle_resolver_key k;

	(void)state;
	assert_int_equal(keys_resolver(AF_UNIX, addr, &k), -EAFNOSUPPORT);
	assert_int_equal(keys_resolver(0, addr, &k), -EAFNOSUPPORT);
}

/* ---- keys_orig_sockaddr --------------------------------------------- */

static void test_orig_sockaddr_inet(void **state)
{
	struct bridle_orig o;
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;
	socklen_t len = 0;
	char buf[INET_ADDRSTRLEN];

	(void)state;
	memset(&o, 0, sizeof(o));
	o.family = AF_INET;
	o.port = 5432;
	assert_int_equal(inet_pton(AF_INET, "10.0.0.5", o.addr), 1);
	memset(&ss, 0xcc, sizeof(ss));
	assert_int_equal(keys_orig_sockaddr(&o, &ss, &len), AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(s->sin_family, AF_INET);
	assert_int_equal(ntohs(s->sin_port), 5432);
	assert_non_null(inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf)));
	assert_string_equal(buf, "10.0.0.5");
	for (size_t i = 0; i < sizeof(s->sin_zero); i++)
		assert_int_equal(s->sin_zero[i], 0);
}

static void test_orig_sockaddr_inet6(void **state)
{
	struct bridle_orig o;
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
	socklen_t len = 0;
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	memset(&o, 0, sizeof(o));
	o.family = AF_INET6;
	o.port = 443;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::5", o.addr), 1);
	memset(&ss, 0xcc, sizeof(ss));
	assert_int_equal(keys_orig_sockaddr(&o, &ss, &len), AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(s->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s->sin6_port), 443);
	assert_int_equal(s->sin6_flowinfo, 0);
	assert_int_equal(s->sin6_scope_id, 0);
	assert_non_null(inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf)));
	assert_string_equal(buf, "2001:db8::5");
}

/* orig → sockaddr → tuple key gives back the same family/address/port. */
static void test_orig_round_trip(void **state)
{
	static const struct {
		int family;
		const char *ip;
		uint16_t port;
	} cases[] = {
		{ AF_INET, "10.0.0.5", 5432 },	{ AF_INET, "0.0.0.0", 0 },
		{ AF_INET, "1.2.3.4", 65535 },	{ AF_INET6, "::1", 6379 },
		{ AF_INET6, "2001:db8::1", 80 }, { AF_INET6, "fe80::2", 1 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bridle_orig o;
		struct sockaddr_storage ss;
		socklen_t len;
		struct bridle_tuple_key k;

		memset(&o, 0, sizeof(o));
		o.family = (uint16_t)cases[i].family;
		o.port = cases[i].port;
		assert_int_equal(inet_pton(cases[i].family, cases[i].ip,
					   o.addr),
				 1);
		assert_int_equal(keys_orig_sockaddr(&o, &ss, &len),
				 cases[i].family);
		assert_int_equal(keys_tuple_from_peer(COOKIE,
						      (struct sockaddr *)&ss,
						      len, &k),
				 0);
		assert_int_equal(k.family, o.family);
		assert_int_equal(k.port, o.port);
		assert_memory_equal(k.addr, o.addr, sizeof(k.addr));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_pod_cfg),
		cmocka_unit_test(test_layout_orig),
		cmocka_unit_test(test_layout_tuple_key),
		cmocka_unit_test(test_layout_resolver_key),
		cmocka_unit_test(test_layout_event),
		cmocka_unit_test(test_layout_constants),
		cmocka_unit_test(test_tuple_inet),
		cmocka_unit_test(test_tuple_inet_addr_word),
		cmocka_unit_test(test_tuple_inet6),
		cmocka_unit_test(test_tuple_v4mapped_folds),
		cmocka_unit_test(test_tuple_scope_and_flow_ignored),
		cmocka_unit_test(test_tuple_longer_len_ok),
		cmocka_unit_test(test_tuple_short_len),
		cmocka_unit_test(test_tuple_unsupported_family),
		cmocka_unit_test(test_tuple_len_shorter_than_family),
		cmocka_unit_test(test_resolver),
		cmocka_unit_test(test_resolver_v4_reads_four_bytes),
		cmocka_unit_test(test_resolver_unsupported),
		cmocka_unit_test(test_orig_sockaddr_inet),
		cmocka_unit_test(test_orig_sockaddr_inet6),
		cmocka_unit_test(test_orig_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
