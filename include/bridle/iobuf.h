/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded connection buffer with explicit cursors:
 *
 *     0 ........ sent ........ parsed ........ recv ........ cap
 *                |-- to send --|-- to parse ---|--- free ----|
 *
 * Bytes in [sent, parsed) have been judged and may go out; bytes in
 * [parsed, recv) arrived but no protocol module has looked at them yet.
 * The buffer never grows past cap: a full buffer is back-pressure, and the
 * reader stops until the writer drains it.
 */
#ifndef BRIDLE_IOBUF_H
#define BRIDLE_IOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct iobuf {
	unsigned char *data; /* owned; cap bytes */
	size_t cap;
	size_t sent;
	size_t parsed;
	size_t recv;
};

int iobuf_init(struct iobuf *b, size_t cap);
void iobuf_release(struct iobuf *b);

static inline size_t iobuf_pending(const struct iobuf *b)
{
	return b->parsed - b->sent;
}

static inline size_t iobuf_unparsed(const struct iobuf *b)
{
	return b->recv - b->parsed;
}

static inline bool iobuf_empty(const struct iobuf *b)
{
	return b->sent == b->recv;
}

/* For readers and writers other than the fd ones below (TLS): the free
 * space starts at iobuf_tail() and iobuf_received() commits what was
 * put there; what is ready to send starts at iobuf_head() and
 * iobuf_advance() drops what went out. */
static inline unsigned char *iobuf_tail(struct iobuf *b)
{
	return b->data + b->recv;
}

static inline void iobuf_received(struct iobuf *b, size_t n)
{
	b->recv += n;
}

static inline const unsigned char *iobuf_head(const struct iobuf *b)
{
	return b->data + b->sent;
}

static inline void iobuf_advance(struct iobuf *b, size_t n)
{
	b->sent += n;
}

/* Room left for reading, after moving live bytes to the front if useful. */
size_t iobuf_room(struct iobuf *b);

/* Mark @n unparsed bytes as judged and ready to send. */
void iobuf_mark_parsed(struct iobuf *b, size_t n);

/*
 * For protocol modules that rewrite: the @n unparsed bytes at the parse
 * cursor were taken (copied or dropped), not passed on in place.
 */
void iobuf_consume(struct iobuf *b, size_t n);

/* Append @len bytes ready to send. Returns 0, or -ENOBUFS without room. */
int iobuf_append(struct iobuf *b, const void *data, size_t len);

/*
 * Grow @b so that @need unparsed bytes fit, up to @limit. Returns 0, or
 * -EMSGSIZE past the limit, or -ENOMEM.
 */
int iobuf_reserve(struct iobuf *b, size_t need, size_t limit);

/*
 * Read from @fd into the free space. Returns bytes read, 0 at end of
 * stream, -EAGAIN when nothing is available, -ENOBUFS when the buffer is
 * full, or another -errno.
 */
ssize_t iobuf_read_fd(struct iobuf *b, int fd);

/*
 * Write the bytes ready to send to @fd. Returns bytes written (possibly 0
 * when nothing is pending), -EAGAIN when the socket is full, or -errno.
 */
ssize_t iobuf_write_fd(struct iobuf *b, int fd);

#endif
