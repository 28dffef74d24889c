// SPDX-License-Identifier: Apache-2.0
/*
 * tcpbench: a small TCP benchmark, client and server in one binary.
 *
 *   tcpbench server     --port P [--bind ADDR] [--threads T]
 *   tcpbench throughput --host H --port P [--seconds N] [--conns C]
 *   tcpbench latency    --host H --port P [--count N] [--size S] [--conns C]
 *                       [--warmup W]
 *   tcpbench connrate   --host H --port P [--seconds N] [--conns C]
 *                       [--size S]
 *
 * Every client run prints one JSON object on stdout (on failure too, with an
 * "error" key and a non-zero exit status); --label L adds "label": L to it.
 *
 * Wire protocol: the first byte a client sends picks the connection's mode.
 *   'S' sink: the server reads and discards; when it reads end of stream it
 *       replies with 16 bytes (two little-endian u64: bytes received after
 *       the mode byte, and nanoseconds from the first to the last data byte)
 *       and closes. The throughput client only stops its clock when that
 *       confirmation arrives, so bytes still in flight (in socket buffers or
 *       a proxy's buffers) are never counted as delivered.
 *   'E' echo: the server writes back every byte it reads, until end of
 *       stream, then closes.
 *
 * The server runs T worker threads (default: the number of CPUs), each with
 * its own SO_REUSEPORT listener and epoll loop, all sockets non-blocking.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SEND_CHUNK (128 * 1024)
#define RECV_CHUNK (256 * 1024)
#define ECHO_BUF (64 * 1024)
#define MAX_CONNS 256

struct opts {
	const char *mode;
	const char *host;
	const char *bind;
	const char *label;
	int port;
	double seconds;
	int conns;
	long count;
	long warmup;
	int size;
	int threads;
};

static struct opts O = {
	.host = "127.0.0.1",
	.bind = "0.0.0.0",
	.seconds = 3,
	.conns = 1,
	.count = 20000,
	.warmup = -1,
	.size = 64,
	.threads = 0,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ---------------------------------------------------------------- output */

static void json_head(FILE *f, const char *mode)
{
	fprintf(f, "{\"mode\":\"%s\"", mode);
	if (O.label)
		fprintf(f, ",\"label\":\"%s\"", O.label);
	fprintf(f, ",\"host\":\"%s\",\"port\":%d,\"conns\":%d", O.host, O.port,
		O.conns);
}

static int fail(const char *mode, const char *what, int err)
{
	json_head(stdout, mode);
	printf(",\"error\":\"%s: %s\"}\n", what, strerror(err));
	fflush(stdout);
	return 1;
}

/* ---------------------------------------------------------------- server */

enum conn_mode { CM_NEW, CM_SINK, CM_ECHO };

struct sconn {
	int fd;
	enum conn_mode mode;
	uint64_t bytes, first_ns, last_ns;
	/* echo: bytes read but not yet written back */
	unsigned char *buf;
	size_t off, len;
	bool eof;
};

struct worker {
	int lfd, epfd;
	pthread_t tid;
};

static void sconn_close(struct worker *w, struct sconn *c)
{
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->buf);
	free(c);
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Sink: read everything; at end of stream send the 16-byte confirmation. */
static void serve_sink(struct worker *w, struct sconn *c, unsigned char *buf)
{
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(c->fd, buf, RECV_CHUNK);

		if (n > 0) {
			uint64_t t = now_ns();

			if (!c->bytes)
				c->first_ns = t;
			c->last_ns = t;
			c->bytes += (uint64_t)n;
			continue;
		}
		if (n == 0) {
			unsigned char r[16];
			int fl = fcntl(c->fd, F_GETFL);

			put_u64(r, c->bytes);
			put_u64(r + 8, c->last_ns - c->first_ns);
			/* 16 bytes into an idle socket: blocking is harmless. */
			fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
			if (write(c->fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
				/* the client will report the error */
			}
			sconn_close(w, c);
			return;
		}
		if (errno == EAGAIN || errno == EINTR)
			return;
		sconn_close(w, c);
		return;
	}
}

static void echo_interest(struct worker *w, struct sconn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	ev.events = c->len ? EPOLLOUT : EPOLLIN;
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Echo: write back what was read; stop reading while a write is pending. */
static void serve_echo(struct worker *w, struct sconn *c)
{
	bool was_pending = c->len > 0;

	for (int i = 0; i < 64; i++) {
		ssize_t n;

		if (c->len) {
			n = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				sconn_close(w, c);
				return;
			}
			c->off += (size_t)n;
			c->len -= (size_t)n;
			if (c->len)
				continue;
			c->off = 0;
		}
		if (c->eof) {
			sconn_close(w, c);
			return;
		}
		n = read(c->fd, c->buf, ECHO_BUF);
		if (n > 0) {
			c->len = (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = true;
			sconn_close(w, c);
			return;
		}
		if (errno == EAGAIN || errno == EINTR)
			break;
		sconn_close(w, c);
		return;
	}
	if (was_pending != (c->len > 0))
		echo_interest(w, c);
}

static void serve_first(struct worker *w, struct sconn *c, unsigned char *buf)
{
	unsigned char m;
	ssize_t n = read(c->fd, &m, 1);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		sconn_close(w, c);
		return;
	}
	if (n < 0)
		return;
	if (m == 'S') {
		c->mode = CM_SINK;
		serve_sink(w, c, buf);
	} else if (m == 'E') {
		c->mode = CM_ECHO;
		c->buf = malloc(ECHO_BUF);
		if (!c->buf) {
			sconn_close(w, c);
			return;
		}
		set_nodelay(c->fd);
		serve_echo(w, c);
	} else {
		sconn_close(w, c);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	unsigned char *buf = malloc(RECV_CHUNK);

	if (!buf)
		return NULL;
	for (;;) {
		int n = epoll_wait(w->epfd, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;

			if (!c) {
				for (int k = 0; k < 64; k++) {
					int fd = accept4(w->lfd, NULL, NULL,
							 SOCK_NONBLOCK |
								 SOCK_CLOEXEC);
					struct epoll_event ev = {
						.events = EPOLLIN
					};

					if (fd < 0)
						break;
					c = calloc(1, sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					ev.data.ptr = c;
					if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd,
						      &ev)) {
						close(fd);
						free(c);
					}
				}
				continue;
			}
			switch (c->mode) {
			case CM_NEW:
				serve_first(w, c, buf);
				break;
			case CM_SINK:
				serve_sink(w, c, buf);
				break;
			case CM_ECHO:
				serve_echo(w, c);
				break;
			}
		}
	}
	return NULL;
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr *sa;
	socklen_t sl;
	int one = 1, fd, family;

	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
		s4.sin_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&s4;
		sl = sizeof(s4);
		family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
		s6.sin6_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&s6;
		sl = sizeof(s6);
		family = AF_INET6;
	} else {
		errno = EINVAL;
		return -1;
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, sa, sl) || listen(fd, 4096)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int run_server(void)
{
	int nt = O.threads > 0 ? O.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct worker *ws;

	if (nt < 1)
		nt = 1;
	ws = calloc((size_t)nt, sizeof(*ws));
	if (!ws)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < nt; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		ws[i].lfd = listen_on(O.bind, O.port);
		ws[i].epfd = epoll_create1(EPOLL_CLOEXEC);
		if (ws[i].lfd < 0 || ws[i].epfd < 0 ||
		    epoll_ctl(ws[i].epfd, EPOLL_CTL_ADD, ws[i].lfd, &ev)) {
			fprintf(stderr, "tcpbench server: listen %s:%d: %s\n",
				O.bind, O.port, strerror(errno));
			return 1;
		}
	}
	for (int i = 1; i < nt; i++)
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i])) {
			fprintf(stderr, "tcpbench server: threads: %s\n",
				strerror(errno));
			return 1;
		}
	fprintf(stderr, "tcpbench server: listening on %s:%d, %d threads\n",
		O.bind, O.port, nt);
	worker_main(&ws[0]);
	return 1;
}

/* ---------------------------------------------------------------- client */

static struct sockaddr_storage peer;
static socklen_t peer_len;

static int resolve(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char port[16];
	int r;

	snprintf(port, sizeof(port), "%d", O.port);
	r = getaddrinfo(O.host, port, &hints, &res);
	if (r) {
		errno = EHOSTUNREACH;
		return -1;
	}
	memcpy(&peer, res->ai_addr, res->ai_addrlen);
	peer_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int dial(void)
{
	int fd = socket(peer.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&peer, peer_len)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int write_all(int fd, const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t len)
{
	unsigned char *b = p;

	while (len) {
		ssize_t n = read(fd, b, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = ECONNRESET; /* premature end of stream */
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static pthread_barrier_t barrier;

struct tjob {
	pthread_t tid;
	int fd;
	int err;
	const char *what;
	/* throughput */
	uint64_t sent, confirmed, server_ns, start_ns, end_ns;
	/* latency / connrate samples, in nanoseconds */
	uint64_t *samples;
	size_t nsamples, cap;
	uint64_t ops;
};

static int set_err(struct tjob *j, const char *what)
{
	j->err = errno ? errno : EIO;
	j->what = what;
	return -1;
}

static void *tput_thread(void *arg)
{
	struct tjob *j = arg;
	unsigned char *buf = malloc(SEND_CHUNK), r[16];
	uint64_t deadline;
	bool failed = false;

	if (!buf) {
		set_err(j, "malloc");
		failed = true;
	} else {
		memset(buf, 0xa5, SEND_CHUNK);
		buf[0] = 'S';
	}
	pthread_barrier_wait(&barrier);
	if (failed)
		return NULL;
	j->start_ns = now_ns();
	deadline = j->start_ns + (uint64_t)(O.seconds * 1e9);
	if (write_all(j->fd, buf, 1)) {
		set_err(j, "send");
		goto out;
	}
	while (now_ns() < deadline) {
		ssize_t n = send(j->fd, buf, SEND_CHUNK, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			set_err(j, "send");
			goto out;
		}
		j->sent += (uint64_t)n;
	}
	if (shutdown(j->fd, SHUT_WR)) {
		set_err(j, "shutdown");
		goto out;
	}
	if (read_all(j->fd, r, sizeof(r))) {
		set_err(j, "reading the server's confirmation");
		goto out;
	}
	j->end_ns = now_ns();
	j->confirmed = get_u64(r);
	j->server_ns = get_u64(r + 8);
	if (j->confirmed != j->sent) {
		errno = EPROTO;
		set_err(j, "server confirmed a different byte count");
	}
out:
	free(buf);
	return NULL;
}

static int run_throughput(void)
{
	struct tjob *jobs = calloc((size_t)O.conns, sizeof(*jobs));
	uint64_t total = 0, start = UINT64_MAX, end = 0;
	double srv_rate = 0, elapsed;

	if (!jobs)
		return fail("throughput", "malloc", ENOMEM);
	pthread_barrier_init(&barrier, NULL, (unsigned)O.conns);
	for (int i = 0; i < O.conns; i++) {
		jobs[i].fd = dial();
		if (jobs[i].fd < 0)
			return fail("throughput", "connect", errno);
	}
	for (int i = 0; i < O.conns; i++)
		pthread_create(&jobs[i].tid, NULL, tput_thread, &jobs[i]);
	for (int i = 0; i < O.conns; i++)
		pthread_join(jobs[i].tid, NULL);
	for (int i = 0; i < O.conns; i++) {
		struct tjob *j = &jobs[i];

		if (j->err)
			return fail("throughput", j->what, j->err);
		total += j->confirmed;
		if (j->start_ns < start)
			start = j->start_ns;
		if (j->end_ns > end)
			end = j->end_ns;
		if (j->server_ns)
			srv_rate += (double)j->confirmed * 1e9 /
				    (double)j->server_ns;
		close(j->fd);
	}
	elapsed = (double)(end - start) / 1e9;
	json_head(stdout, "throughput");
	printf(",\"seconds\":%.3f,\"bytes\":%llu,\"elapsed_s\":%.6f,"
	       "\"bytes_per_sec\":%.0f,\"gbit_per_sec\":%.4f,"
	       "\"server_bytes_per_sec\":%.0f}\n",
	       O.seconds, (unsigned long long)total, elapsed,
	       (double)total / elapsed, (double)total * 8 / elapsed / 1e9,
	       srv_rate);
	free(jobs);
	return 0;
}

static int add_sample(struct tjob *j, uint64_t ns)
{
	if (j->nsamples == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 65536;
		uint64_t *p = realloc(j->samples, cap * sizeof(*p));

		if (!p) {
			errno = ENOMEM;
			return -1;
		}
		j->samples = p;
		j->cap = cap;
	}
	j->samples[j->nsamples++] = ns;
	return 0;
}

static void *latency_thread(void *arg)
{
	struct tjob *j = arg;
	unsigned char *out = malloc((size_t)O.size + 1), *in = malloc((size_t)O.size);
	long total = O.warmup + O.count;
	bool failed = false;

	if (!out || !in) {
		set_err(j, "malloc");
		failed = true;
	} else {
		memset(out, 'x', (size_t)O.size + 1);
		out[0] = 'E';
		set_nodelay(j->fd);
		if (write_all(j->fd, out, 1))
			failed = set_err(j, "send");
		out[0] = 'x';
	}
	pthread_barrier_wait(&barrier);
	for (long i = 0; i < total && !failed; i++) {
		uint64_t t0 = now_ns();

		out[0] = (unsigned char)i;
		if (write_all(j->fd, out, (size_t)O.size)) {
			set_err(j, "send");
			break;
		}
		if (read_all(j->fd, in, (size_t)O.size)) {
			set_err(j, "recv");
			break;
		}
		if (in[0] != out[0]) {
			errno = EPROTO;
			set_err(j, "echo mismatch");
			break;
		}
		if (i >= O.warmup && add_sample(j, now_ns() - t0)) {
			set_err(j, "malloc");
			break;
		}
	}
	free(out);
	free(in);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Percentiles (nearest rank) and mean, in microseconds. */
static void print_dist(const uint64_t *s, size_t n)
{
	static const double ps[] = { 50, 90, 99, 99.9 };
	static const char *const names[] = { "p50", "p90", "p99", "p999" };
	double sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += (double)s[i];
	printf(",\"samples\":%zu,\"min_us\":%.2f,\"mean_us\":%.2f", n,
	       n ? (double)s[0] / 1e3 : 0, n ? sum / (double)n / 1e3 : 0);
	for (size_t k = 0; k < sizeof(ps) / sizeof(*ps); k++) {
		size_t idx = n ? (size_t)ceil(ps[k] / 100.0 * (double)n) : 0;

		if (idx > 0)
			idx--;
		printf(",\"%s_us\":%.2f", names[k], n ? (double)s[idx] / 1e3 : 0);
	}
	printf(",\"max_us\":%.2f", n ? (double)s[n - 1] / 1e3 : 0);
}

static uint64_t *merge(struct tjob *jobs, size_t *n)
{
	size_t total = 0, k = 0;
	uint64_t *all;

	for (int i = 0; i < O.conns; i++)
		total += jobs[i].nsamples;
	all = malloc((total ? total : 1) * sizeof(*all));
	if (!all)
		return NULL;
	for (int i = 0; i < O.conns; i++) {
		memcpy(all + k, jobs[i].samples,
		       jobs[i].nsamples * sizeof(*all));
		k += jobs[i].nsamples;
		free(jobs[i].samples);
	}
	qsort(all, total, sizeof(*all), cmp_u64);
	*n = total;
	return all;
}

static int run_latency(void)
{
	struct tjob *jobs = calloc((size_t)O.conns, sizeof(*jobs));
	uint64_t *all, t0, t1;
	size_t n;

	if (!jobs)
		return fail("latency", "malloc", ENOMEM);
	if (O.warmup < 0)
		O.warmup = O.count / 10 > 1000 ? 1000 : O.count / 10;
	pthread_barrier_init(&barrier, NULL, (unsigned)O.conns);
	for (int i = 0; i < O.conns; i++) {
		jobs[i].fd = dial();
		if (jobs[i].fd < 0)
			return fail("latency", "connect", errno);
	}
	t0 = now_ns();
	for (int i = 0; i < O.conns; i++)
		pthread_create(&jobs[i].tid, NULL, latency_thread, &jobs[i]);
	for (int i = 0; i < O.conns; i++)
		pthread_join(jobs[i].tid, NULL);
	t1 = now_ns();
	for (int i = 0; i < O.conns; i++) {
		if (jobs[i].err)
			return fail("latency", jobs[i].what, jobs[i].err);
		close(jobs[i].fd);
	}
	all = merge(jobs, &n);
	if (!all)
		return fail("latency", "malloc", ENOMEM);
	json_head(stdout, "latency");
	printf(",\"size\":%d,\"count\":%ld,\"warmup\":%ld,\"elapsed_s\":%.6f",
	       O.size, O.count, O.warmup, (double)(t1 - t0) / 1e9);
	print_dist(all, n);
	printf("}\n");
	free(all);
	free(jobs);
	return 0;
}

static void *connrate_thread(void *arg)
{
	struct tjob *j = arg;
	unsigned char *out = malloc((size_t)O.size + 1), *in = malloc((size_t)O.size);
	uint64_t deadline;
	bool failed = false;

	if (!out || !in) {
		set_err(j, "malloc");
		failed = true;
	} else {
		memset(out, 'c', (size_t)O.size + 1);
		out[0] = 'E';
	}
	pthread_barrier_wait(&barrier);
	if (failed)
		goto out;
	j->start_ns = now_ns();
	deadline = j->start_ns + (uint64_t)(O.seconds * 1e9);
	for (;;) {
		uint64_t t0 = now_ns();
		int fd;

		if (t0 >= deadline)
			break;
		fd = dial();
		if (fd < 0) {
			set_err(j, "connect");
			break;
		}
		set_nodelay(fd);
		/* mode byte and request in one segment */
		if (write_all(fd, out, (size_t)O.size + 1)) {
			set_err(j, "send");
			close(fd);
			break;
		}
		if (read_all(fd, in, (size_t)O.size)) {
			set_err(j, "recv");
			close(fd);
			break;
		}
		close(fd);
		j->ops++;
		if (add_sample(j, now_ns() - t0)) {
			set_err(j, "malloc");
			break;
		}
	}
	j->end_ns = now_ns();
out:
	free(out);
	free(in);
	return NULL;
}

static int run_connrate(void)
{
	struct tjob *jobs = calloc((size_t)O.conns, sizeof(*jobs));
	uint64_t ops = 0, start = UINT64_MAX, end = 0, *all;
	double elapsed;
	size_t n;

	if (!jobs)
		return fail("connrate", "malloc", ENOMEM);
	pthread_barrier_init(&barrier, NULL, (unsigned)O.conns);
	for (int i = 0; i < O.conns; i++)
		pthread_create(&jobs[i].tid, NULL, connrate_thread, &jobs[i]);
	for (int i = 0; i < O.conns; i++)
		pthread_join(jobs[i].tid, NULL);
	for (int i = 0; i < O.conns; i++) {
		struct tjob *j = &jobs[i];

		if (j->err)
			return fail("connrate", j->what, j->err);
		ops += j->ops;
		if (j->start_ns < start)
			start = j->start_ns;
		if (j->end_ns > end)
			end = j->end_ns;
	}
	elapsed = (double)(end - start) / 1e9;
	all = merge(jobs, &n);
	if (!all)
		return fail("connrate", "malloc", ENOMEM);
	json_head(stdout, "connrate");
	printf(",\"seconds\":%.3f,\"size\":%d,\"connections\":%llu,"
	       "\"elapsed_s\":%.6f,\"conns_per_sec\":%.1f",
	       O.seconds, O.size, (unsigned long long)ops, elapsed,
	       (double)ops / elapsed);
	print_dist(all, n);
	printf("}\n");
	free(all);
	free(jobs);
	return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fputs("usage:\n"
	      "  tcpbench server     --port P [--bind ADDR] [--threads T]\n"
	      "  tcpbench throughput --host H --port P [--seconds N] [--conns C]\n"
	      "  tcpbench latency    --host H --port P [--count N] [--size S]\n"
	      "                      [--warmup W] [--conns C]\n"
	      "  tcpbench connrate   --host H --port P [--seconds N] [--conns C]\n"
	      "                      [--size S]\n"
	      "client options: --label L (copied into the JSON output)\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 's' },
		{ "conns", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 'z' },
		{ "threads", required_argument, NULL, 't' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	O.mode = argv[1];
	if (!strcmp(O.mode, "-h") || !strcmp(O.mode, "--help")) {
		usage(stdout);
		return 0;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "H:p:b:s:c:n:w:z:t:l:h", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'H': O.host = optarg; break;
		case 'p': O.port = atoi(optarg); break;
		case 'b': O.bind = optarg; break;
		case 's': O.seconds = atof(optarg); break;
		case 'c': O.conns = atoi(optarg); break;
		case 'n': O.count = atol(optarg); break;
		case 'w': O.warmup = atol(optarg); break;
		case 'z': O.size = atoi(optarg); break;
		case 't': O.threads = atoi(optarg); break;
		case 'l': O.label = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (O.port < 1 || O.port > 65535 || O.conns < 1 || O.conns > MAX_CONNS ||
	    O.seconds <= 0 || O.count < 1 || O.size < 1 || O.size > 1 << 20 ||
	    (O.label && strpbrk(O.label, "\"\\"))) {
		fprintf(stderr, "tcpbench: bad option value\n");
		usage(stderr);
		return 2;
	}
	if (!strcmp(O.mode, "server"))
		return run_server();
	signal(SIGPIPE, SIG_IGN);
	if (resolve())
		return fail(O.mode, "resolve", errno);
	if (!strcmp(O.mode, "throughput"))
		return run_throughput();
	if (!strcmp(O.mode, "latency"))
		return run_latency();
	if (!strcmp(O.mode, "connrate"))
		return run_connrate();
	fprintf(stderr, "tcpbench: unknown mode \"%s\"\n", O.mode);
	usage(stderr);
	return 2;
}
