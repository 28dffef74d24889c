// SPDX-License-Identifier: Apache-2.0
/*
 * Opaque TCP: the connection-level decision is the only one, so every byte
 * may go on as it arrives, and the relay may splice.
 */
#include "bridle/proto.h"

static int tcp_on_data(struct session *s, enum proto_dir dir, struct iobuf *b)
{
	(void)s;
	(void)dir;
	iobuf_mark_parsed(b, iobuf_unparsed(b));
	return 0;
}

const struct proto_ops proto_tcp_ops = {
	.name = "tcp",
	.opaque = true,
	.on_data = tcp_on_data,
};

const struct proto_ops *proto_for(enum policy_proto p)
{
	switch (p) {
	case PROTO_POSTGRES:
		return &proto_pg_ops;
	case PROTO_TCP:
	default:
		return &proto_tcp_ops;
	}
}
