/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PostgreSQL frontend/backend protocol v3 framing: the startup packet
 * (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) and the typed
 * messages that follow. Pure functions over the caller's bytes, in the
 * picohttpparser style: they return the bytes one packet takes, -2 when
 * more bytes are needed, -1 when the input is invalid (with the reason),
 * and hand back views into the caller's buffer instead of copying.
 */
#ifndef BRIDLE_PG_WIRE_H
#define BRIDLE_PG_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PG_PROTOCOL_V3 0x00030000u
#define PG_CANCEL_REQUEST_CODE 80877102u
#define PG_SSL_REQUEST_CODE 80877103u
#define PG_GSSENC_REQUEST_CODE 80877104u
/* The server's own limit on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
#define PG_MAX_STARTUP_LEN 10000u
#define PG_MAX_STARTUP_PARAMS 64

/* Network byte order, as every integer of the protocol is. */
static inline uint32_t pg_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint16_t pg_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void pg_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void pg_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

#define PG_NEED_MORE (-2)
#define PG_INVALID (-1)

enum pg_startup_kind {
	PG_STARTUP_MESSAGE,
	PG_SSL_REQUEST,
	PG_GSSENC_REQUEST,
	PG_CANCEL_REQUEST,
};

struct pg_str {
	const char *p; /* into the caller's buffer, NUL-terminated there */
	size_t len;
};

struct pg_startup {
	enum pg_startup_kind kind;
	uint32_t version; /* StartupMessage: major << 16 | minor */
	struct pg_str keys[PG_MAX_STARTUP_PARAMS];
	struct pg_str values[PG_MAX_STARTUP_PARAMS];
	size_t nparams;
	uint32_t cancel_pid, cancel_key; /* CancelRequest */
};

/*
 * Parse the first packet a client sends. Returns the packet's length,
 * PG_NEED_MORE, or PG_INVALID with a static reason in *why.
 */
ssize_t pg_parse_startup(const uint8_t *buf, size_t len, struct pg_startup *out,
			 const char **why);

/* The value of startup parameter @key, or NULL. */
const struct pg_str *pg_startup_param(const struct pg_startup *s,
				      const char *key);

struct pg_msg {
	char type;
	const uint8_t *body; /* after the length word */
	size_t body_len;
};

/*
 * Parse one typed message (type byte, int32 length including itself,
 * body). Bodies longer than @max_body are invalid, so a peer cannot make
 * the caller buffer an unbounded message. Returns the message's total
 * length, PG_NEED_MORE, or PG_INVALID with a static reason in *why.
 */
ssize_t pg_parse_message(const uint8_t *buf, size_t len, size_t max_body,
			 struct pg_msg *out, const char **why);

#endif
