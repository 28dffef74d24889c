// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL framing over arbitrary bytes: the first byte picks the
 * startup or the message parser; whatever comes back must lie inside the
 * input, and every parameter view must be NUL-terminated within it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/pg_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	uint8_t *buf;
	ssize_t n;

	if (size < 1)
		return 0;
	/* An exact-size copy, so ASan sees any read past the input. */
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1) {
		struct pg_startup s;

		n = pg_parse_startup(buf, size - 1, &s, &why);
		if (n > 0) {
			if ((size_t)n > size - 1)
				abort();
			for (size_t i = 0; i < s.nparams; i++) {
				const uint8_t *k = (const uint8_t *)s.keys[i].p;
				const uint8_t *v = (const uint8_t *)s.values[i].p;

				if (k < buf || v + s.values[i].len >= buf + n ||
				    k[s.keys[i].len] != 0 ||
				    v[s.values[i].len] != 0)
					abort();
			}
		} else if (n == PG_INVALID && !why) {
			abort();
		}
	} else {
		size_t off = 0;
		struct pg_msg m;

		/* Walk the messages back to back, as the relay will. */
		while ((n = pg_parse_message(buf + off, size - 1 - off,
					     1 << 16, &m, &why)) > 0) {
			if ((size_t)n > size - 1 - off ||
			    m.body + m.body_len != buf + off + n)
				abort();
			off += (size_t)n;
		}
	}
	free(buf);
	return 0;
}
