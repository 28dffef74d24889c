/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Protocol modules. Each protocol is one const struct proto_ops in
 * user/proto/; the session core calls it and never names a protocol. A
 * module judges the bytes that arrived in one direction: it marks in the
 * buffer what may go on (iobuf_mark_parsed), keeps the rest until more
 * arrives, and may end the session. A module must not keep the buffer
 * full of unparsed bytes: a message larger than the buffer is its error
 * to report, or the session would wait forever.
 */
#ifndef BRIDLE_PROTO_H
#define BRIDLE_PROTO_H

#include <stdbool.h>

#include "bridle/iobuf.h"
#include "bridle/policy.h"

struct session;

enum proto_dir {
	PROTO_TO_UPSTREAM, /* bytes from the agent */
	PROTO_TO_AGENT, /* bytes from the destination */
};

struct proto_ops {
	const char *name;
	/* No byte needs looking at: the relay may move them with splice. */
	bool opaque;
	/* Judge the unparsed bytes of @b. Returns 0, or -errno to end the
	 * session (with a reset). */
	int (*on_data)(struct session *s, enum proto_dir dir, struct iobuf *b);
};

extern const struct proto_ops proto_tcp_ops;

/* The module for a target's protocol. Never NULL. */
const struct proto_ops *proto_for(enum policy_proto p);

#endif
