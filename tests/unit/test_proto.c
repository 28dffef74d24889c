// SPDX-License-Identifier: Apache-2.0
/*
 * Protocol module table: the opaque TCP module judges every byte as it
 * arrives, in both directions and byte by byte, and is what a tcp target
 * gets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "bridle/proto.h"

static void test_tcp_marks_everything(void **state)
{
	struct iobuf b;

	(void)state;
	assert_int_equal(iobuf_init(&b, 64), 0);
	for (int dir = PROTO_TO_UPSTREAM; dir <= PROTO_TO_AGENT; dir++) {
		memcpy(b.data + b.recv, "hello", 5);
		b.recv += 5;
		assert_int_equal(proto_tcp_ops.on_data(NULL, dir, &b), 0);
		assert_int_equal(iobuf_unparsed(&b), 0);
		assert_int_equal(iobuf_pending(&b), b.recv - b.sent);
	}
	/* Byte by byte: nothing is ever held back. */
	for (int i = 0; i < 7; i++) {
		b.data[b.recv++] = (unsigned char)i;
		assert_int_equal(proto_tcp_ops.on_data(NULL, PROTO_TO_AGENT, &b),
				 0);
		assert_int_equal(b.parsed, b.recv);
	}
	iobuf_release(&b);
}

static void test_table(void **state)
{
	(void)state;
	assert_ptr_equal(proto_for(PROTO_TCP), &proto_tcp_ops);
	assert_true(proto_tcp_ops.opaque);
	assert_string_equal(proto_tcp_ops.name, "tcp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_marks_everything),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
