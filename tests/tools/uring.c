// SPDX-License-Identifier: Apache-2.0
/*
 * uring: the same socket operations as peer/sockcheck, but issued through
 * io_uring (raw syscalls, no liburing), to show that io_uring goes through
 * bridle's hooks too.
 *
 *   uring connect HOST PORT TEXT   IORING_OP_CONNECT, then send TEXT,
 *                                  half-close and read the reply
 *   uring socket raw|tcp           IORING_OP_SOCKET: AF_INET SOCK_RAW
 *                                  IPPROTO_ICMP, or a plain TCP socket
 *   uring udp-sendmsg HOST PORT TEXT  IORING_OP_SENDMSG on an unconnected
 *                                  UDP socket, then wait 1 s for a reply
 *
 * Output is key=value lines like peer's: connect=OK|<ERRNO>, peer=...,
 * recv=..., result=OK|<ERRNO>|TIMEOUT; "socket=OK|<ERRNO>" for socket;
 * "send=OK|<ERRNO>" and "reply=..." for udp-sendmsg; "uring=<ERRNO>" when
 * io_uring itself is not available. Exit status 0 when every step worked,
 * 1 otherwise, 2 for usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static const char *ename(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "EUNKNOWN";
}

static int ring_init(struct ring *r)
{
	struct io_uring_params p;
	size_t sqsz, cqsz;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		return -errno;
	sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (cqsz > sqsz)
			sqsz = cqsz;
	}
	sq = mmap(NULL, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		  r->fd, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return -errno;
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		cq = sq;
	} else {
		cq = mmap(NULL, cqsz, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			return -errno;
	}
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		       IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* Submit one SQE and wait for its completion; returns cqe->res. */
static int ring_run(struct ring *r, const struct io_uring_sqe *sqe)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
	struct io_uring_cqe *cqe;
	int res;

	r->sqes[idx] = *sqe;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS,
		    NULL, 0) < 0)
		return -errno;
	for (;;) {
		head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
		if (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
			break;
		if (syscall(__NR_io_uring_enter, r->fd, 0, 1,
			    IORING_ENTER_GETEVENTS, NULL, 0) < 0)
			return -errno;
	}
	cqe = &r->cqes[head & *r->cq_mask];
	res = cqe->res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

static int parse(const char *host, const char *port,
		 struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(atoi(port));
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(atoi(port));
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static void print_peer(int fd)
{
	struct sockaddr_storage p;
	socklen_t pl = sizeof(p);
	char a[INET6_ADDRSTRLEN] = "?";

	if (getpeername(fd, (struct sockaddr *)&p, &pl)) {
		printf("peer=%s\n", ename(errno));
		return;
	}
	if (p.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&p;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		printf("peer=%s:%u\n", a, ntohs(s->sin_port));
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&p;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		printf("peer=[%s]:%u\n", a, ntohs(s->sin6_port));
	}
}

static int do_connect(struct ring *r, char **argv)
{
	struct sockaddr_storage ss;
	struct io_uring_sqe sqe;
	socklen_t sl;
	char buf[4096];
	size_t got = 0;
	int fd, res;

	if (parse(argv[0], argv[1], &ss, &sl))
		return 2;
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0) {
		printf("connect=%s\n", ename(errno));
		return 1;
	}
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_CONNECT;
	sqe.fd = fd;
	sqe.addr = (unsigned long)&ss;
	sqe.off = sl;
	res = ring_run(r, &sqe);
	if (res < 0) {
		printf("connect=%s\n", ename(-res));
		return 1;
	}
	printf("connect=OK\n");
	print_peer(fd);
	if (send(fd, argv[2], strlen(argv[2]), MSG_NOSIGNAL) < 0) {
		printf("result=%s\n", ename(errno));
		return 1;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0) {
			printf("recv=%.*s\nresult=TIMEOUT\n", (int)got, buf);
			return 1;
		}
		n = recv(fd, buf + got, sizeof(buf) - got - 1, 0);
		if (n < 0) {
			printf("recv=%.*s\nresult=%s\n", (int)got, buf,
			       ename(errno));
			return 1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	printf("recv=%.*s\nresult=OK\n", (int)got, buf);
	return 0;
}

static int do_socket(struct ring *r, const char *kind)
{
	struct io_uring_sqe sqe;
	int res;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_SOCKET;
	sqe.fd = AF_INET;
	if (!strcmp(kind, "raw")) {
		sqe.off = SOCK_RAW;
		sqe.len = IPPROTO_ICMP;
	} else {
		sqe.off = SOCK_STREAM;
		sqe.len = 0;
	}
	res = ring_run(r, &sqe);
	if (res < 0) {
		printf("socket=%s\n", ename(-res));
		return 1;
	}
	close(res);
	printf("socket=OK\n");
	return 0;
}

static int do_udp(struct ring *r, char **argv)
{
	struct sockaddr_storage ss;
	struct io_uring_sqe sqe;
	struct msghdr msg;
	struct iovec iov;
	socklen_t sl;
	struct pollfd p;
	char buf[2048];
	ssize_t n;
	int fd, res;

	if (parse(argv[0], argv[1], &ss, &sl))
		return 2;
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0) {
		printf("send=%s\n", ename(errno));
		return 1;
	}
	iov.iov_base = argv[2];
	iov.iov_len = strlen(argv[2]);
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &ss;
	msg.msg_namelen = sl;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_SENDMSG;
	sqe.fd = fd;
	sqe.addr = (unsigned long)&msg;
	sqe.len = 1;
	res = ring_run(r, &sqe);
	if (res < 0) {
		printf("send=%s\n", ename(-res));
		return 1;
	}
	printf("send=OK\n");
	p.fd = fd;
	p.events = POLLIN;
	if (poll(&p, 1, 1000) <= 0) {
		printf("reply=TIMEOUT\n");
		return 1;
	}
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0) {
		printf("reply=%s\n", ename(errno));
		return 1;
	}
	printf("reply=%.*s\n", (int)n, buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct ring r;
	int ret = 2;

	if (argc < 2)
		goto usage;
	ret = ring_init(&r);
	if (ret) {
		printf("uring=%s\n", ename(-ret));
		return 1;
	}
	if (!strcmp(argv[1], "connect") && argc == 5)
		ret = do_connect(&r, argv + 2);
	else if (!strcmp(argv[1], "socket") && argc == 3)
		ret = do_socket(&r, argv[2]);
	else if (!strcmp(argv[1], "udp-sendmsg") && argc == 5)
		ret = do_udp(&r, argv + 2);
	else
		ret = 2;
	if (ret != 2)
		return ret;
usage:
	fprintf(stderr, "usage: uring connect HOST PORT TEXT\n"
			"       uring socket raw|tcp\n"
			"       uring udp-sendmsg HOST PORT TEXT\n");
	return 2;
}
