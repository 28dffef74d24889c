// SPDX-License-Identifier: Apache-2.0
/*
 * Recordings from a disk an attacker may have written to: record_verify
 * on arbitrary bytes, with the key the seeds were sealed with
 * ("fuzz-key-0123456789abcdef"). Nothing may crash, and whatever verifies
 * must be consistent: as many records seen as counted, in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/record.h"

static const uint8_t key[] = "fuzz-key-0123456789abcdef";

struct seen {
	uint64_t n;
};

static void see(json_t *rec, void *arg)
{
	struct seen *s = arg;
	json_t *seq = json_object_get(rec, "seq");

	if (!json_is_integer(seq) ||
	    (uint64_t)json_integer_value(seq) != s->n + 1)
		abort();
	s->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record_report r;
	struct seen s = { 0 };
	int ret = record_verify(data, size, key, sizeof(key) - 1, see, &s, &r);

	if (s.n != r.records)
		abort();
	if (ret == 0 && r.error[0])
		abort();
	if (ret != 0 && !r.error[0])
		abort();
	return 0;
}
