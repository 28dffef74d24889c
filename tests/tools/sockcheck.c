// SPDX-License-Identifier: Apache-2.0
/*
 * sockcheck: try one socket operation that bridle restricts inside an
 * enrolled workload, and say what happened.
 *
 *   sockcheck raw              socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
 *   sockcheck raw6             socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)
 *   sockcheck ping             socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)
 *   sockcheck packet           socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))
 *   sockcheck packet-dgram     socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP))
 *   sockcheck inet-packet      socket(AF_INET, SOCK_PACKET, htons(ETH_P_ALL))
 *   sockcheck mptcp            socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)
 *   sockcheck mptcp6           socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP)
 *   sockcheck tcp | udp        plain TCP / UDP sockets (controls)
 *   sockcheck udp-sendto HOST PORT TEXT   unconnected UDP: sendto(), then
 *                              wait up to 1 s for a reply
 *   sockcheck udp-connect HOST PORT TEXT  connect(), send(), wait for reply
 *   sockcheck udp-connected-sendto HOST PORT HOST2 PORT2 TEXT
 *                              connect() to HOST, then sendto() HOST2
 *   sockcheck bind tcp|udp HOST PORT      bind() (and listen() for TCP)
 *   sockcheck packet-udp IFNAME DSTMAC SRC DST PORT TEXT
 *                              build an IPv4/UDP datagram SRC -> DST:PORT by
 *                              hand and send it with an AF_PACKET SOCK_DGRAM
 *                              socket on IFNAME to DSTMAC (a bypass probe)
 *
 * An IPv4 HOST given with -6 (first argument) is used as ::ffff:HOST on an
 * AF_INET6 socket. Prints one line: the result word (OK, or the errno name
 * such as EPERM, or TIMEOUT when no UDP reply came), then details, e.g.
 * "OK reply=dns:hello". Exit status: 0 for OK, 1 for any failure, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static bool v6sock;

static const char *ename(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "EUNKNOWN";
}

static int report_errno(const char *what)
{
	int e = errno;

	printf("%s %s\n", ename(e), what);
	return 1;
}

static int try_socket(int family, int type, int proto, const char *what)
{
	int fd = socket(family, type, proto);

	if (fd < 0)
		return report_errno(what);
	printf("OK %s\n", what);
	close(fd);
	return 0;
}

static int parse(const char *host, const char *port,
		 struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct in_addr a4;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &a4) == 1 && !v6sock) {
		s4->sin_family = AF_INET;
		s4->sin_addr = a4;
		s4->sin_port = htons(atoi(port));
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_addr.s6_addr[10] = 0xff;
		s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], &a4, 4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
	} else {
		fprintf(stderr, "sockcheck: bad address %s\n", host);
		return -1;
	}
	s6->sin6_port = htons(atoi(port));
	*len = sizeof(*s6);
	return 0;
}

static int wait_reply(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[2048];
	ssize_t n;

	if (poll(&p, 1, 1000) <= 0) {
		printf("TIMEOUT no reply\n");
		return 1;
	}
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return report_errno("recv");
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	printf("OK reply=%s\n", buf);
	return 0;
}

static int udp(int argc, char **argv, int mode)
{
	struct sockaddr_storage a, b;
	socklen_t al, bl = 0;
	const char *text;
	int fd;

	if ((mode < 2 && argc != 3) || (mode == 2 && argc != 5))
		return 2;
	if (parse(argv[0], argv[1], &a, &al))
		return 2;
	if (mode == 2 && parse(argv[2], argv[3], &b, &bl))
		return 2;
	text = argv[argc - 1];
	fd = socket(a.ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		return report_errno("socket");
	if (mode == 0) {
		if (sendto(fd, text, strlen(text), 0, (struct sockaddr *)&a,
			   al) < 0)
			return report_errno("sendto");
	} else {
		if (connect(fd, (struct sockaddr *)&a, al) < 0)
			return report_errno("connect");
		if (mode == 1 && send(fd, text, strlen(text), 0) < 0)
			return report_errno("send");
		if (mode == 2 && sendto(fd, text, strlen(text), 0,
					(struct sockaddr *)&b, bl) < 0)
			return report_errno("sendto");
	}
	return wait_reply(fd);
}

static int do_bind(int argc, char **argv)
{
	struct sockaddr_storage a;
	socklen_t al;
	int fd, type, one = 1;

	if (argc != 3)
		return 2;
	type = strcmp(argv[0], "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM;
	if (parse(argv[1], argv[2], &a, &al))
		return 2;
	fd = socket(a.ss_family, type, 0);
	if (fd < 0)
		return report_errno("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, al) < 0)
		return report_errno("bind");
	if (type == SOCK_STREAM && listen(fd, 1) < 0)
		return report_errno("listen");
	printf("OK bind\n");
	close(fd);
	return 0;
}

static uint16_t csum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)(b[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int packet_udp(int argc, char **argv)
{
	struct sockaddr_ll ll = { .sll_family = AF_PACKET };
	unsigned mac[6];
	uint8_t pkt[1500];
	struct in_addr src, dst;
	size_t tlen;
	int fd;

	if (argc != 6 ||
	    sscanf(argv[1], "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2],
		   &mac[3], &mac[4], &mac[5]) != 6 ||
	    inet_pton(AF_INET, argv[2], &src) != 1 ||
	    inet_pton(AF_INET, argv[3], &dst) != 1)
		return 2;
	tlen = strlen(argv[5]);
	if (tlen > 1000)
		return 2;
	memset(pkt, 0, sizeof(pkt));
	/* IPv4 header */
	pkt[0] = 0x45;
	pkt[2] = (uint8_t)((20 + 8 + tlen) >> 8);
	pkt[3] = (uint8_t)(20 + 8 + tlen);
	pkt[8] = 64;
	pkt[9] = IPPROTO_UDP;
	memcpy(pkt + 12, &src, 4);
	memcpy(pkt + 16, &dst, 4);
	uint16_t c = csum(pkt, 20);

	pkt[10] = (uint8_t)(c >> 8);
	pkt[11] = (uint8_t)c;
	/* UDP header, checksum 0 (none) */
	pkt[20] = 0x9c;
	pkt[21] = 0x40; /* source port 40000 */
	pkt[22] = (uint8_t)(atoi(argv[4]) >> 8);
	pkt[23] = (uint8_t)atoi(argv[4]);
	pkt[24] = (uint8_t)((8 + tlen) >> 8);
	pkt[25] = (uint8_t)(8 + tlen);
	memcpy(pkt + 28, argv[5], tlen);
	fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	if (fd < 0)
		return report_errno("socket");
	ll.sll_protocol = htons(ETH_P_IP);
	ll.sll_ifindex = (int)if_nametoindex(argv[0]);
	ll.sll_halen = 6;
	for (int i = 0; i < 6; i++)
		ll.sll_addr[i] = (unsigned char)mac[i];
	if (!ll.sll_ifindex)
		return report_errno("if_nametoindex");
	if (sendto(fd, pkt, 28 + tlen, 0, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		return report_errno("sendto");
	printf("OK sent\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *c;
	int r;

	if (argc > 1 && strcmp(argv[1], "-6") == 0) {
		v6sock = true;
		argv++;
		argc--;
	}
	if (argc < 2)
		goto usage;
	c = argv[1];
	if (!strcmp(c, "raw"))
		return try_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, "raw");
	if (!strcmp(c, "raw6"))
		return try_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, "raw6");
	if (!strcmp(c, "ping"))
		return try_socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP, "ping");
	if (!strcmp(c, "packet"))
		return try_socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL),
				  "packet");
	if (!strcmp(c, "packet-dgram"))
		return try_socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP),
				  "packet-dgram");
	if (!strcmp(c, "inet-packet"))
		return try_socket(AF_INET, SOCK_PACKET, htons(ETH_P_ALL),
				  "inet-packet");
	if (!strcmp(c, "mptcp"))
		return try_socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP, "mptcp");
	if (!strcmp(c, "mptcp6"))
		return try_socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP,
				  "mptcp6");
	if (!strcmp(c, "tcp"))
		return try_socket(AF_INET, SOCK_STREAM, 0, "tcp");
	if (!strcmp(c, "udp"))
		return try_socket(AF_INET, SOCK_DGRAM, 0, "udp");
	if (!strcmp(c, "udp-sendto"))
		r = udp(argc - 2, argv + 2, 0);
	else if (!strcmp(c, "udp-connect"))
		r = udp(argc - 2, argv + 2, 1);
	else if (!strcmp(c, "udp-connected-sendto"))
		r = udp(argc - 2, argv + 2, 2);
	else if (!strcmp(c, "bind"))
		r = do_bind(argc - 2, argv + 2);
	else if (!strcmp(c, "packet-udp"))
		r = packet_udp(argc - 2, argv + 2);
	else
		goto usage;
	if (r != 2)
		return r;
usage:
	fprintf(stderr,
		"usage: sockcheck [-6] raw|raw6|ping|packet|packet-dgram|"
		"inet-packet|mptcp|mptcp6|tcp|udp\n"
		"       sockcheck [-6] udp-sendto|udp-connect HOST PORT TEXT\n"
		"       sockcheck [-6] udp-connected-sendto HOST PORT HOST2 "
		"PORT2 TEXT\n"
		"       sockcheck [-6] bind tcp|udp HOST PORT\n"
		"       sockcheck packet-udp IFNAME DSTMAC SRC DST PORT TEXT\n");
	return 2;
}
