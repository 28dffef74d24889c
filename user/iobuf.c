// SPDX-License-Identifier: Apache-2.0
/*
 * Bounded connection buffers. The cursors only move forward; when every
 * received byte is sent, they all return to zero, and when space runs out
 * at the end, live bytes are moved to the front.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridle/iobuf.h"

int iobuf_init(struct iobuf *b, size_t cap)
{
	b->data = malloc(cap);
	if (!b->data)
		return -ENOMEM;
	b->cap = cap;
	b->sent = b->parsed = b->recv = 0;
	return 0;
}

void iobuf_release(struct iobuf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = b->sent = b->parsed = b->recv = 0;
}

static void iobuf_check(const struct iobuf *b)
{
	assert(b->sent <= b->parsed);
	assert(b->parsed <= b->recv);
	assert(b->recv <= b->cap);
}

size_t iobuf_room(struct iobuf *b)
{
	iobuf_check(b);
	if (b->sent == b->recv) {
		b->sent = b->parsed = b->recv = 0;
	} else if (b->sent > 0 && b->cap - b->recv < b->cap / 4) {
		/* Compact only when the tail is short: memmove is not free. */
		size_t live = b->recv - b->sent;

		memmove(b->data, b->data + b->sent, live);
		b->parsed -= b->sent;
		b->recv = live;
		b->sent = 0;
	}
	return b->cap - b->recv;
}

void iobuf_mark_parsed(struct iobuf *b, size_t n)
{
	assert(n <= b->recv - b->parsed);
	b->parsed += n;
}

void iobuf_consume(struct iobuf *b, size_t n)
{
	assert(b->sent == b->parsed);
	assert(n <= b->recv - b->parsed);
	b->parsed += n;
	b->sent = b->parsed;
}

int iobuf_append(struct iobuf *b, const void *data, size_t len)
{
	if (iobuf_room(b) < len)
		return -ENOBUFS;
	memcpy(b->data + b->recv, data, len);
	b->recv += len;
	b->parsed = b->recv;
	return 0;
}

int iobuf_reserve(struct iobuf *b, size_t need, size_t limit)
{
	size_t live = b->recv - b->sent, cap = b->cap;
	unsigned char *nd;

	if (need > limit)
		return -EMSGSIZE;
	if (b->cap - (b->parsed - b->sent) >= need)
		return 0;
	while (cap - (b->parsed - b->sent) < need)
		cap *= 2;
	if (cap > limit + (b->parsed - b->sent))
		cap = limit + (b->parsed - b->sent);
	nd = malloc(cap);
	if (!nd)
		return -ENOMEM;
	memcpy(nd, b->data + b->sent, live);
	free(b->data);
	b->data = nd;
	b->parsed -= b->sent;
	b->recv = live;
	b->sent = 0;
	b->cap = cap;
	return 0;
}

ssize_t iobuf_read_fd(struct iobuf *b, int fd)
{
	size_t room = iobuf_room(b);
	ssize_t n;

	if (room == 0)
		return -ENOBUFS;
	do
		n = read(fd, b->data + b->recv, room);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	b->recv += (size_t)n;
	return n;
}

ssize_t iobuf_write_fd(struct iobuf *b, int fd)
{
	size_t len = iobuf_pending(b);
	ssize_t n;

	if (len == 0)
		return 0;
	do
		n = send(fd, b->data + b->sent, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	b->sent += (size_t)n;
	iobuf_check(b);
	return n;
}
