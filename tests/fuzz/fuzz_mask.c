// SPDX-License-Identifier: Apache-2.0
/*
 * PII detectors over arbitrary bytes (an exact-size copy, so ASan sees any
 * read past the value): matches must lie inside the input, in order,
 * without overlap, and each must render in every style.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/mask.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mask_match m[64];
	char *text = malloc(size ? size : 1);
	size_t n, prev_end = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	n = mask_scan(text, size, MASK_ALL, m, 64);
	for (size_t i = 0; i < n && i < 64; i++) {
		char out[4096];

		if (m[i].len == 0 || m[i].off < prev_end ||
		    m[i].off + m[i].len > size ||
		    (unsigned)m[i].kind >= MASK_NDETECTORS)
			abort();
		prev_end = m[i].off + m[i].len;
		for (int st = MASK_REDACT; st <= MASK_HASH; st++)
			mask_render(st, m[i].kind, text + m[i].off, m[i].len,
				    (const uint8_t *)"k", 1, out, sizeof(out));
	}
	free(text);
	return 0;
}
