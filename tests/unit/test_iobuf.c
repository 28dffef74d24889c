// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for user/iobuf.c: the sent <= parsed <= recv <= cap cursors,
 * compaction, reading and writing non-blocking socketpairs, back-pressure
 * when full, end of stream, and a stream fed one byte at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridle/iobuf.h"

struct pair {
	int fd[2]; /* fd[0]: the buffer's side; fd[1]: the test's side */
};

static void pair_open(struct pair *p)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
						     SOCK_CLOEXEC,
				    0, p->fd),
			 0);
}

static void pair_close(struct pair *p)
{
	if (p->fd[0] != -1)
		close(p->fd[0]);
	if (p->fd[1] != -1)
		close(p->fd[1]);
	p->fd[0] = p->fd[1] = -1;
}

static void put(int fd, const void *data, size_t len)
{
	assert_int_equal(write(fd, data, len), (ssize_t)len);
}

static void check_cursors(const struct iobuf *b, size_t sent, size_t parsed,
			  size_t recv)
{
	assert_int_equal(b->sent, sent);
	assert_int_equal(b->parsed, parsed);
	assert_int_equal(b->recv, recv);
	assert_int_equal(iobuf_pending(b), parsed - sent);
	assert_int_equal(iobuf_unparsed(b), recv - parsed);
	assert_int_equal(iobuf_empty(b), sent == recv);
}

static void test_init_release(void **state)
{
	struct iobuf b;

	(void)state;
	assert_int_equal(iobuf_init(&b, 1024), 0);
	assert_non_null(b.data);
	assert_int_equal(b.cap, 1024);
	check_cursors(&b, 0, 0, 0);
	assert_true(iobuf_empty(&b));
	assert_int_equal(iobuf_room(&b), 1024);
	iobuf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	check_cursors(&b, 0, 0, 0);
	iobuf_release(&b); /* twice is harmless */
}

static void test_read_mark_write(void **state)
{
	struct iobuf b;
	struct pair p;
	char out[16];

	(void)state;
	pair_open(&p);
	assert_int_equal(iobuf_init(&b, 64), 0);
	put(p.fd[1], "hello world", 11);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), 11);
	check_cursors(&b, 0, 0, 11);
	assert_memory_equal(b.data, "hello world", 11);

	/* Nothing judged yet: nothing goes out. */
	assert_int_equal(iobuf_write_fd(&b, p.fd[0]), 0);
	check_cursors(&b, 0, 0, 11);

	iobuf_mark_parsed(&b, 5);
	check_cursors(&b, 0, 5, 11);
	assert_int_equal(iobuf_write_fd(&b, p.fd[0]), 5);
	check_cursors(&b, 5, 5, 11);
	assert_int_equal(read(p.fd[1], out, sizeof(out)), 5);
	assert_memory_equal(out, "hello", 5);

	iobuf_mark_parsed(&b, 6);
	assert_int_equal(iobuf_write_fd(&b, p.fd[0]), 6);
	check_cursors(&b, 11, 11, 11);
	assert_true(iobuf_empty(&b));
	assert_int_equal(read(p.fd[1], out, sizeof(out)), 6);
	assert_memory_equal(out, " world", 6);

	/* Drained: the cursors return to zero on the next read. */
	assert_int_equal(iobuf_room(&b), 64);
	check_cursors(&b, 0, 0, 0);
	iobuf_release(&b);
	pair_close(&p);
}

static void test_read_eagain(void **state)
{
	struct iobuf b;
	struct pair p;

	(void)state;
	pair_open(&p);
	assert_int_equal(iobuf_init(&b, 64), 0);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), -EAGAIN);
	check_cursors(&b, 0, 0, 0);
	iobuf_release(&b);
	pair_close(&p);
}

static void test_read_eof(void **state)
{
	struct iobuf b;
	struct pair p;

	(void)state;
	pair_open(&p);
	assert_int_equal(iobuf_init(&b, 64), 0);
	put(p.fd[1], "bye", 3);
	assert_int_equal(shutdown(p.fd[1], SHUT_WR), 0);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), 3);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), 0);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), 0);
	check_cursors(&b, 0, 0, 3);
	iobuf_release(&b);
	pair_close(&p);
}

static void test_read_bad_fd(void **state)
{
	struct iobuf b;

	(void)state;
	assert_int_equal(iobuf_init(&b, 64), 0);
	assert_int_equal(iobuf_read_fd(&b, -1), -EBADF);
	check_cursors(&b, 0, 0, 0);
	iobuf_release(&b);
}

static void test_back_pressure(void **state)
{
	struct iobuf b;
	struct pair p;
	unsigned char msg[40];
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	pair_open(&p);
	assert_int_equal(iobuf_init(&b, 16), 0);
	put(p.fd[1], msg, sizeof(msg));
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), 16);
	check_cursors(&b, 0, 0, 16);
	assert_int_equal(iobuf_room(&b), 0);
	/* Full: the reader must stop; the socket keeps the rest. */
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), -ENOBUFS);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), -ENOBUFS);
	check_cursors(&b, 0, 0, 16);

	/* Judged but not sent is still full. */
	iobuf_mark_parsed(&b, 4);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), -ENOBUFS);
	check_cursors(&b, 0, 4, 16);

	/* Sending part of it frees the front; compaction makes it usable. */
	assert_int_equal(iobuf_write_fd(&b, p.fd[0]), 4);
	assert_int_equal(read(p.fd[1], out, sizeof(out)), 4);
	assert_memory_equal(out, msg, 4);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), 4);
	check_cursors(&b, 0, 0, 16);
	assert_memory_equal(b.data, msg + 4, 16);

	/* Draining everything lets the rest in. */
	iobuf_mark_parsed(&b, 16);
	assert_int_equal(iobuf_write_fd(&b, p.fd[0]), 16);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), 16);
	assert_memory_equal(b.data, msg + 20, 16);
	iobuf_mark_parsed(&b, 16);
	assert_int_equal(iobuf_write_fd(&b, p.fd[0]), 16);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), 4);
	assert_memory_equal(b.data, msg + 36, 4);
	assert_int_equal(iobuf_read_fd(&b, p.fd[0]), -EAGAIN);
	iobuf_release(&b);
	pair_close(&p);
}

static void fill(struct iobuf *b, size_t sent, size_t parsed, size_t recv)
{
	for (size_t i = 0; i < b->cap; i++)
		b->data[i] = (unsigned char)('a' + i % 26);
	b->sent = sent;
	b->parsed = parsed;
	b->recv = recv;
}

static void test_room_compacts_when_tail_short(void **state)
{
	struct iobuf b;

	(void)state;
	assert_int_equal(iobuf_init(&b, 16), 0);
	/* 13 sent, 1 to send, 2 to parse, no room at the end. */
	fill(&b, 13, 14, 16);
	assert_int_equal(iobuf_room(&b), 13);
	check_cursors(&b, 0, 1, 3);
	assert_memory_equal(b.data, "nop", 3);

	/* Tail shorter than a quarter (3 < 4) also compacts. */
	fill(&b, 2, 5, 13);
	assert_int_equal(iobuf_room(&b), 5);
	check_cursors(&b, 0, 3, 11);
	assert_memory_equal(b.data, "cdefghijklm", 11);
	iobuf_release(&b);
}

static void test_room_no_compaction_when_tail_long(void **state)
{
	struct iobuf b;

	(void)state;
	assert_int_equal(iobuf_init(&b, 16), 0);
	/* A quarter or more left at the end: leave the bytes where they are. */
	fill(&b, 2, 5, 12);
	assert_int_equal(iobuf_room(&b), 4);
	check_cursors(&b, 2, 5, 12);
	assert_memory_equal(b.data + 2, "cdefghijkl", 10);

	/* Nothing sent yet: nothing to reclaim, even when full. */
	fill(&b, 0, 7, 16);
	assert_int_equal(iobuf_room(&b), 0);
	check_cursors(&b, 0, 7, 16);
	iobuf_release(&b);
}

static void test_room_resets_when_drained(void **state)
{
	struct iobuf b;

	(void)state;
	assert_int_equal(iobuf_init(&b, 16), 0);
	fill(&b, 10, 10, 10);
	assert_int_equal(iobuf_room(&b), 16);
	check_cursors(&b, 0, 0, 0);
	fill(&b, 16, 16, 16);
	assert_int_equal(iobuf_room(&b), 16);
	check_cursors(&b, 0, 0, 0);
	iobuf_release(&b);
}

static void test_write_eagain_when_peer_full(void **state)
{
	struct iobuf b;
	struct pair p;
	size_t total = 0;
	ssize_t n;
	int small = 4096;

	(void)state;
	pair_open(&p);
	assert_int_equal(setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &small,
				    sizeof(small)),
			 0);
	assert_int_equal(iobuf_init(&b, 4 << 20), 0);
	memset(b.data, 'x', b.cap);
	b.recv = b.cap;
	iobuf_mark_parsed(&b, b.cap);
	while ((n = iobuf_write_fd(&b, p.fd[0])) > 0)
		total += (size_t)n;
	assert_int_equal(n, -EAGAIN);
	assert_true(total > 0);
	assert_true(total < b.cap);
	check_cursors(&b, total, b.cap, b.cap);
	iobuf_release(&b);
	pair_close(&p);
}

static void test_write_closed_peer(void **state)
{
	struct iobuf b;
	struct pair p;

	(void)state;
	pair_open(&p);
	assert_int_equal(iobuf_init(&b, 64), 0);
	memcpy(b.data, "abc", 3);
	b.recv = 3;
	iobuf_mark_parsed(&b, 3);
	close(p.fd[1]);
	p.fd[1] = -1;
	/* MSG_NOSIGNAL: an error, not SIGPIPE. */
	assert_int_equal(iobuf_write_fd(&b, p.fd[0]), -EPIPE);
	check_cursors(&b, 0, 3, 3);
	iobuf_release(&b);
	pair_close(&p);
}

/*
 * A stream arriving one byte at a time through a small buffer, relayed to a
 * second socket as each byte is judged, comes out whole and in order.
 */
static void test_byte_by_byte_relay(void **state)
{
	struct iobuf b;
	struct pair in, out;
	char msg[300], got[sizeof(msg)];
	size_t ngot = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(' ' + i % 90);
	pair_open(&in);
	pair_open(&out);
	assert_int_equal(iobuf_init(&b, 8), 0);
	for (size_t i = 0; i < sizeof(msg); i++) {
		put(in.fd[1], &msg[i], 1);
		assert_int_equal(iobuf_read_fd(&b, in.fd[0]), 1);
		assert_int_equal(iobuf_unparsed(&b), 1);
		iobuf_mark_parsed(&b, 1);
		assert_int_equal(iobuf_write_fd(&b, out.fd[0]), 1);
		assert_true(iobuf_empty(&b));
		assert_int_equal(read(out.fd[1], got + ngot, 1), 1);
		ngot++;
	}
	assert_int_equal(ngot, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	iobuf_release(&b);
	pair_close(&in);
	pair_close(&out);
}

/*
 * The same stream, but the parser only releases bytes in 5-byte records
 * and the writer only runs every third byte: the cursors stay ordered and
 * the output is exact, with compaction in between.
 */
static void test_byte_by_byte_records(void **state)
{
	struct iobuf b;
	struct pair in, out;
	char msg[200], got[sizeof(msg)];
	size_t ngot = 0;
	ssize_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('A' + i % 53);
	pair_open(&in);
	pair_open(&out);
	assert_int_equal(iobuf_init(&b, 12), 0);
	for (size_t i = 0; i < sizeof(msg); i++) {
		put(in.fd[1], &msg[i], 1);
		assert_int_equal(iobuf_read_fd(&b, in.fd[0]), 1);
		if (iobuf_unparsed(&b) >= 5)
			iobuf_mark_parsed(&b, 5);
		if (i % 3 == 2) {
			n = iobuf_write_fd(&b, out.fd[0]);
			assert_true(n >= 0);
		}
		assert_true(b.sent <= b.parsed);
		assert_true(b.parsed <= b.recv);
		assert_true(b.recv <= b.cap);
		while ((n = read(out.fd[1], got + ngot, sizeof(got) - ngot)) >
		       0)
			ngot += (size_t)n;
	}
	n = (ssize_t)iobuf_pending(&b);
	assert_int_equal(iobuf_write_fd(&b, out.fd[0]), n);
	while ((n = read(out.fd[1], got + ngot, sizeof(got) - ngot)) > 0)
		ngot += (size_t)n;
	assert_int_equal(ngot, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	assert_true(iobuf_empty(&b));
	iobuf_release(&b);
	pair_close(&in);
	pair_close(&out);
}

/* Marking more bytes than arrived breaks the invariant: it must abort. */
static void test_mark_parsed_past_recv_aborts(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		struct iobuf b;

		/* No core file, and no noise from the child. */
		signal(SIGABRT, SIG_DFL);
		if (!freopen("/dev/null", "w", stderr))
			_exit(2);
		if (iobuf_init(&b, 16))
			_exit(2);
		b.recv = 4;
		iobuf_mark_parsed(&b, 5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_release),
		cmocka_unit_test(test_read_mark_write),
		cmocka_unit_test(test_read_eagain),
		cmocka_unit_test(test_read_eof),
		cmocka_unit_test(test_read_bad_fd),
		cmocka_unit_test(test_back_pressure),
		cmocka_unit_test(test_room_compacts_when_tail_short),
		cmocka_unit_test(test_room_no_compaction_when_tail_long),
		cmocka_unit_test(test_room_resets_when_drained),
		cmocka_unit_test(test_write_eagain_when_peer_full),
		cmocka_unit_test(test_write_closed_peer),
		cmocka_unit_test(test_byte_by_byte_relay),
		cmocka_unit_test(test_byte_by_byte_records),
		cmocka_unit_test(test_mark_parsed_past_recv_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
