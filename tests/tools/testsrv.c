// SPDX-License-Identifier: Apache-2.0
/*
 * testsrv: the "far side" of the end-to-end tests. It listens on TCP
 * and/or UDP addresses and appends one line per accepted connection or
 * received datagram to a log file, so a test can prove that a denied
 * connection never arrived:
 *
 *   tcp <listen addr> <peer addr>
 *   udp <listen addr> <peer addr> <bytes>
 *
 * TCP modes (-m):
 *   echo   send the greeting (-g), then echo everything back until the
 *          client half-closes, then close (default)
 *   eof    read until the client half-closes, then send
 *          "<greeting>got N bytes\n" and close (half-close test)
 *   hold   send the greeting, then read and discard until EOF
 *   rst    send the greeting, read one chunk, then reset the connection
 *          (close with SO_LINGER 0)
 *   source send -n BYTES bytes of a fixed pattern, then close
 * With -E ENDLOG, one line per finished TCP connection:
 *   end <listen addr> <peer addr> eof|reset|<errno> <bytes received>
 * UDP: every datagram is answered with greeting + payload.
 *
 * usage: testsrv [-l ADDR:PORT]... [-u ADDR:PORT]... [-L LOG] [-E ENDLOG]
 *                [-g TEXT] [-m echo|eof|hold|rst|source] [-n BYTES] [-F]
 *                [-r READYFILE]
 * ADDR is an IPv4 address or an IPv6 one in brackets: [fd77::1]:7.
 * -F sets TCP_FASTOPEN on the listeners. READYFILE is created once every
 * socket listens. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXSOCK 16

struct lsock {
	int fd;
	bool udp;
	char name[80];
};

static struct lsock socks[MAXSOCK];
static int nsocks;
static const char *greeting = "";
static const char *mode = "echo";
static int logfd = -1, endfd = -1;
static unsigned long long source_bytes = 1 << 20;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s->sin_port));
	} else {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s->sin6_port));
	}
}

static void log_to(int fd, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	pthread_mutex_lock(&log_lock);
	if (fd >= 0 && write(fd, line, (size_t)n) != n)
		perror("log");
	pthread_mutex_unlock(&log_lock);
}

static int parse_addr(const char *s, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(atoi(end + 2));
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : -1;
	}
	colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(atoi(colon + 1));
	*len = sizeof(*s4);
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -1;
}

static int open_sock(const char *spec, bool udp, bool tfo)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	if (nsocks == MAXSOCK || parse_addr(spec, &ss, &sl)) {
		fprintf(stderr, "testsrv: bad address %s\n", spec);
		return -1;
	}
	fd = socket(ss.ss_family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0) {
		perror("socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		fprintf(stderr, "testsrv: bind %s: %s\n", spec, strerror(errno));
		return -1;
	}
	if (!udp) {
		int qlen = 16;

		if (tfo && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen,
				      sizeof(qlen)) < 0)
			perror("TCP_FASTOPEN");
		if (listen(fd, 128) < 0) {
			perror("listen");
			return -1;
		}
	}
	socks[nsocks].fd = fd;
	socks[nsocks].udp = udp;
	snprintf(socks[nsocks].name, sizeof(socks[nsocks].name), "%s", spec);
	nsocks++;
	return 0;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

struct conn {
	int fd;
	char listen[80], peer[96];
};

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	int fd = c->fd;
	char buf[65536];
	unsigned long long total = 0;
	bool echo = strcmp(mode, "echo") == 0, eof = strcmp(mode, "eof") == 0;
	bool rst = strcmp(mode, "rst") == 0;
	const char *how = "eof";

	if (!eof && greeting[0] && !write_all(fd, greeting, strlen(greeting))) {
		how = strerrorname_np(errno);
		goto out;
	}
	if (strcmp(mode, "source") == 0) {
		unsigned long long left = source_bytes;

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)('a' + i % 26);
		while (left) {
			size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);

			if (!write_all(fd, buf, n)) {
				how = strerrorname_np(errno);
				goto out;
			}
			left -= n;
		}
		how = "sent";
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			how = errno == ECONNRESET ? "reset" : strerrorname_np(errno);
			break;
		}
		if (n == 0)
			break;
		total += (unsigned long long)n;
		if (rst) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			how = "sent-reset";
			break;
		}
		if (echo && !write_all(fd, buf, (size_t)n)) {
			how = strerrorname_np(errno);
			goto out;
		}
	}
	if (eof) {
		char reply[256];
		int n = snprintf(reply, sizeof(reply), "%sgot %llu bytes\n",
				 greeting, total);

		write_all(fd, reply, (size_t)n);
	}
out:
	log_to(endfd, "end %s %s %s %llu", c->listen, c->peer, how, total);
	close(fd);
	free(c);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct lsock *l = arg;

	for (;;) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		char p[96];
		pthread_t t;
		int fd;

		if (l->udp) {
			char buf[2048], out[4096];
			ssize_t n = recvfrom(l->fd, buf, sizeof(buf), 0,
					     (struct sockaddr *)&peer, &pl);
			int m;

			if (n < 0)
				continue;
			fmt_addr(&peer, p, sizeof(p));
			log_to(logfd, "udp %s %s %zd", l->name, p, n);
			m = snprintf(out, sizeof(out), "%s%.*s", greeting,
				     (int)n, buf);
			sendto(l->fd, out, (size_t)m, 0,
			       (struct sockaddr *)&peer, pl);
			continue;
		}
		fd = accept(l->fd, (struct sockaddr *)&peer, &pl);
		if (fd < 0)
			continue;
		fmt_addr(&peer, p, sizeof(p));
		log_to(logfd, "tcp %s %s", l->name, p);
		struct conn *c = calloc(1, sizeof(*c));

		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		snprintf(c->listen, sizeof(c->listen), "%s", l->name);
		snprintf(c->peer, sizeof(c->peer), "%s", p);
		if (pthread_create(&t, NULL, conn_main, c)) {
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *ready = NULL;
	bool tfo = false;
	int opt;

	/* First pass for -F, which must be known before the listeners. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-F") == 0)
			tfo = true;
	while ((opt = getopt(argc, argv, "l:u:L:E:g:m:n:Fr:")) != -1) {
		switch (opt) {
		case 'l':
		case 'u':
			if (open_sock(optarg, opt == 'u', tfo))
				return 1;
			break;
		case 'L':
			logfd = open(optarg,
				     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
				     0644);
			if (logfd < 0) {
				perror(optarg);
				return 1;
			}
			break;
		case 'E':
			endfd = open(optarg,
				     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
				     0644);
			if (endfd < 0) {
				perror(optarg);
				return 1;
			}
			break;
		case 'n': source_bytes = strtoull(optarg, NULL, 0); break;
		case 'g': greeting = optarg; break;
		case 'm': mode = optarg; break;
		case 'F': break;
		case 'r': ready = optarg; break;
		default:
			fprintf(stderr,
				"usage: testsrv [-l ADDR:PORT]... [-u ADDR:PORT]... "
				"[-L LOG] [-E ENDLOG] [-g TEXT] "
				"[-m echo|eof|hold|rst|source] [-n BYTES] [-F] "
				"[-r READYFILE]\n");
			return 2;
		}
	}
	if (!nsocks) {
		fprintf(stderr, "testsrv: nothing to listen on\n");
		return 2;
	}
	if (strcmp(mode, "echo") && strcmp(mode, "eof") && strcmp(mode, "hold") &&
	    strcmp(mode, "rst") && strcmp(mode, "source")) {
		fprintf(stderr, "testsrv: bad mode %s\n", mode);
		return 2;
	}
	for (int i = 1; i < nsocks; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, accept_main, &socks[i]))
			return 1;
		pthread_detach(t);
	}
	if (ready) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);

		if (fd >= 0)
			close(fd);
	}
	accept_main(&socks[0]);
	return 0;
}
