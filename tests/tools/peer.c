// SPDX-License-Identifier: Apache-2.0
/*
 * peer: a TCP client for the end-to-end tests. It connects (optionally
 * bound to a fixed local port, optionally with TCP Fast Open), reports what
 * getpeername() and getsockname() say, sends data, half-closes, and reads
 * the reply. Every result is printed as a key=value line so that the shell
 * tests can grep them:
 *
 *   connect=OK | connect=<ERRNO NAME>
 *   peer=10.77.0.1:7 | peer=[fd77::1]:7 | peer=[::ffff:10.77.0.1]:7
 *   (HOST may carry an IPv6 scope: fe80::1%eth0)
 *   local=...
 *   recv_bytes=N
 *   recv=<received text, \n and non-printables escaped>   (without -o)
 *   result=OK | result=<ERRNO NAME> | result=TIMEOUT | result=EOF_EARLY
 *   elapsed_ms=N
 *
 * Exit status: 0 all fine, 1 usage, 2 connect failed, 3 I/O error after the
 * connect (e.g. reset by the peer), 4 timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

static const char usage[] =
	"usage: peer [options] HOST PORT\n"
	"  -6          use an AF_INET6 socket; an IPv4 HOST becomes ::ffff:HOST\n"
	"  -b PORT     bind the local side to PORT first (SO_REUSEADDR)\n"
	"  -B ADDR     bind the local side to ADDR first\n"
	"  -s TEXT     send TEXT after connecting\n"
	"  -i FILE     send the contents of FILE after connecting (full duplex)\n"
	"  -o FILE     write everything received to FILE instead of recv=\n"
	"  -F          TCP Fast Open: the first data goes out with\n"
	"              sendto(MSG_FASTOPEN) (needs -s)\n"
	"  -C          TCP Fast Open with setsockopt(TCP_FASTOPEN_CONNECT)\n"
	"  -k          keep the write side open after sending (no shutdown)\n"
	"  -d MS       wait MS milliseconds before sending\n"
	"  -D MS       wait MS milliseconds before the first read\n"
	"  -A          abort: after sending, close with a reset (SO_LINGER 0)\n"
	"  -n          do not read; close right after sending\n"
	"  -t MS       timeout for the connect and for each read (default 5000)\n"
	"  -R BYTES    stop reading after BYTES bytes (then close)\n";

static struct timespec t0;

static long elapsed_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
}

static const char *ename(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "EUNKNOWN";
}

static void print_addr(const char *key, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		printf("%s=%s:%u\n", key, a, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		printf("%s=[%s]:%u\n", key, a, ntohs(s->sin6_port));
	} else {
		printf("%s=family%d\n", key, ss->ss_family);
	}
}

static int finish(const char *result, int code)
{
	printf("result=%s\nelapsed_ms=%ld\n", result, elapsed_ms());
	fflush(stdout);
	return code;
}

static void put_escaped(const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

/* "fe80::1%eth0": an IPv6 address with an optional scope (interface). */
static bool parse_v6(const char *host, struct sockaddr_in6 *s6)
{
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	char *pct;

	snprintf(buf, sizeof(buf), "%s", host);
	pct = strchr(buf, '%');
	if (pct) {
		*pct++ = '\0';
		s6->sin6_scope_id = if_nametoindex(pct);
		if (!s6->sin6_scope_id)
			return false;
	}
	return inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1;
}

int main(int argc, char **argv)
{
	const char *send_text = NULL, *in_file = NULL, *out_file = NULL;
	const char *bind_addr = NULL;
	bool v6sock = false, tfo = false, tfo_connect = false, keep = false;
	bool no_read = false, abort_close = false;
	int read_delay = 0;
	int bind_port = -1, timeout = 5000, delay = 0, opt;
	long long read_limit = -1;
	struct sockaddr_storage dst = {}, loc = {};
	socklen_t dlen, llen = 0;
	int fd, infd = -1, outfd = -1, one = 1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((opt = getopt(argc, argv, "6b:B:s:i:o:FCknd:D:At:R:h")) != -1) {
		switch (opt) {
		case '6': v6sock = true; break;
		case 'b': bind_port = atoi(optarg); break;
		case 'B': bind_addr = optarg; break;
		case 's': send_text = optarg; break;
		case 'i': in_file = optarg; break;
		case 'o': out_file = optarg; break;
		case 'F': tfo = true; break;
		case 'C': tfo_connect = true; break;
		case 'k': keep = true; break;
		case 'n': no_read = true; break;
		case 'd': delay = atoi(optarg); break;
		case 'D': read_delay = atoi(optarg); break;
		case 'A': abort_close = true; no_read = true; keep = true; break;
		case 't': timeout = atoi(optarg); break;
		case 'R': read_limit = atoll(optarg); break;
		default:
			fputs(usage, opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 1;
		}
	}
	if (argc - optind != 2 || (tfo && !send_text)) {
		fputs(usage, stderr);
		return 1;
	}
	const char *host = argv[optind];
	int port = atoi(argv[optind + 1]);

	/* Destination. */
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;
		struct in_addr a4;

		if (inet_pton(AF_INET, host, &a4) == 1 && !v6sock) {
			s4->sin_family = AF_INET;
			s4->sin_addr = a4;
			s4->sin_port = htons(port);
			dlen = sizeof(*s4);
		} else if (inet_pton(AF_INET, host, &a4) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_addr.s6_addr[10] = 0xff;
			s6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&s6->sin6_addr.s6_addr[12], &a4, 4);
			s6->sin6_port = htons(port);
			dlen = sizeof(*s6);
		} else if (parse_v6(host, s6)) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(port);
			dlen = sizeof(*s6);
		} else {
			fprintf(stderr, "peer: bad address %s\n", host);
			return 1;
		}
	}
	if (in_file) {
		infd = open(in_file, O_RDONLY | O_CLOEXEC);
		if (infd < 0) {
			perror(in_file);
			return 1;
		}
	}
	if (out_file) {
		outfd = open(out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0644);
		if (outfd < 0) {
			perror(out_file);
			return 1;
		}
	}
	fd = socket(dst.ss_family, SOCK_STREAM, 0);
	if (fd < 0) {
		printf("socket=%s\n", ename(errno));
		printf("connect=%s\n", ename(errno));
		return finish(ename(errno), 2);
	}
	{
		struct timeval tv = { .tv_sec = timeout / 1000,
				      .tv_usec = (timeout % 1000) * 1000 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (bind_port >= 0 || bind_addr) {
		struct sockaddr_storage b = {};
		socklen_t bl;

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		b.ss_family = dst.ss_family;
		if (dst.ss_family == AF_INET) {
			struct sockaddr_in *s = (void *)&b;

			s->sin_port = htons(bind_port < 0 ? 0 : bind_port);
			if (bind_addr &&
			    inet_pton(AF_INET, bind_addr, &s->sin_addr) != 1)
				return fprintf(stderr, "peer: bad -B\n"), 1;
			bl = sizeof(*s);
		} else {
			struct sockaddr_in6 *s = (void *)&b;

			s->sin6_port = htons(bind_port < 0 ? 0 : bind_port);
			if (bind_addr &&
			    inet_pton(AF_INET6, bind_addr, &s->sin6_addr) != 1)
				return fprintf(stderr, "peer: bad -B\n"), 1;
			bl = sizeof(*s);
		}
		if (bind(fd, (struct sockaddr *)&b, bl) < 0) {
			printf("bind=%s\n", ename(errno));
			printf("connect=%s\n", ename(errno));
			return finish(ename(errno), 2);
		}
		printf("bind=OK\n");
	}
	if (tfo_connect &&
	    setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)))
		printf("tfo_connect_opt=%s\n", ename(errno));

	size_t sent_first = 0;

	if (tfo) {
		ssize_t n = sendto(fd, send_text, strlen(send_text),
				   MSG_FASTOPEN | MSG_NOSIGNAL,
				   (struct sockaddr *)&dst, dlen);

		if (n < 0) {
			printf("connect=%s\n", ename(errno));
			return finish(ename(errno), 2);
		}
		sent_first = (size_t)n;
	} else if (connect(fd, (struct sockaddr *)&dst, dlen) < 0) {
		printf("connect=%s\n", ename(errno));
		return finish(ename(errno), 2);
	}
	printf("connect=OK\n");
	{
		struct sockaddr_storage p = {};
		socklen_t pl = sizeof(p);

		if (getpeername(fd, (struct sockaddr *)&p, &pl) == 0)
			print_addr("peer", &p);
		else
			printf("peer=%s\n", ename(errno));
		llen = sizeof(loc);
		if (getsockname(fd, (struct sockaddr *)&loc, &llen) == 0)
			print_addr("local", &loc);
	}
	fflush(stdout);
	if (delay > 0)
		usleep((useconds_t)delay * 1000);

	/* Full duplex: send (text or file) while reading. */
	const char *txt = send_text ? send_text + sent_first : NULL;
	size_t txt_left = send_text ? strlen(send_text) - sent_first : 0;
	bool wr_done = !txt_left && infd < 0, shut = false, rd_done = no_read;
	char fbuf[65536], rbuf[65536];
	size_t fb_off = 0, fb_len = 0;
	long long got = 0;
	int ret = 0;
	const char *res = "OK";

	if (!send_text && infd < 0 && !keep) {
		/* Nothing to send: half-close right away unless -k. */
		wr_done = true;
	}
	if (txt_left == 0 && send_text && infd < 0)
		wr_done = true;
	if (!rd_done && !out_file)
		fputs("recv=", stdout);
	long read_after = elapsed_ms() + read_delay;
	while (!rd_done || !wr_done || (!shut && !keep)) {
		struct pollfd p = { .fd = fd, .events = 0 };
		int pr;

		if (wr_done && !shut && !keep) {
			shutdown(fd, SHUT_WR);
			shut = true;
			if (rd_done)
				break;
			continue;
		}
		if (!wr_done)
			p.events |= POLLOUT;
		if (!rd_done && elapsed_ms() >= read_after)
			p.events |= POLLIN;
		if (!p.events) {
			if (!rd_done) {
				/* -D: nothing to do but wait to read. */
				usleep(10000);
				continue;
			}
			break;
		}
		pr = poll(&p, 1, (p.events & POLLIN) ? timeout : 10);
		if (pr == 0 && !(p.events & POLLIN))
			continue;
		if (pr == 0) {
			res = "TIMEOUT";
			ret = 4;
			break;
		}
		if (pr < 0)
			continue;
		if (!wr_done && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n;

			if (txt_left) {
				n = send(fd, txt, txt_left,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
				if (n > 0) {
					txt += n;
					txt_left -= (size_t)n;
				}
			} else {
				if (fb_off == fb_len) {
					ssize_t r = read(infd, fbuf, sizeof(fbuf));

					if (r <= 0) {
						wr_done = true;
						continue;
					}
					fb_off = 0;
					fb_len = (size_t)r;
				}
				n = send(fd, fbuf + fb_off, fb_len - fb_off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
				if (n > 0)
					fb_off += (size_t)n;
			}
			if (n < 0 && errno != EAGAIN) {
				res = ename(errno);
				ret = 3;
				break;
			}
			if (!txt_left && infd < 0)
				wr_done = true;
		}
		if (!rd_done && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
			ssize_t n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);

			if (n > 0) {
				if (read_limit >= 0 && got + n > read_limit)
					n = (ssize_t)(read_limit - got);
				got += n;
				if (outfd >= 0) {
					if (write(outfd, rbuf, (size_t)n) != n) {
						perror("write");
						return 1;
					}
				} else {
					put_escaped(rbuf, (size_t)n);
				}
				if (read_limit >= 0 && got >= read_limit)
					rd_done = true;
			} else if (n == 0) {
				rd_done = true;
				if (!wr_done) {
					/* Peer closed before we sent all. */
					wr_done = true;
				}
			} else if (errno != EAGAIN) {
				res = ename(errno);
				ret = 3;
				break;
			}
		}
	}
	if (!no_read && !out_file)
		putchar('\n');
	printf("recv_bytes=%lld\n", got);
	if (keep && ret == 0 && !rd_done)
		res = "OK";
	if (abort_close) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
	return finish(res, ret);
}
