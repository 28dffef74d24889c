// SPDX-License-Identifier: Apache-2.0
/*
 * PII detectors over arbitrary bytes (an exact-size copy, so ASan sees any
 * read past the value): matches must lie inside the input, in order,
 * without overlap, and each must render in every style. And the
 * Vectorscan prefilter must never hide a match: with it, and without it,
 * every single detector finds the same.
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
	for (int d = 0; d < MASK_NDETECTORS; d++) {
		struct mask_match a[8], b[8];

		if (mask_scan(text, size, 1u << d, a, 8) !=
		    mask_scan_exact(text, size, 1u << d, b, 8))
			abort();
	}
	n = mask_scan(text, size, MASK_ALL, m, 64);
	if (n != mask_scan_exact(text, size, MASK_ALL, NULL, 0))
		abort();
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
