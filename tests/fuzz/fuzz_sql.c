// SPDX-License-Identifier: Apache-2.0
/*
 * SQL classification over arbitrary text: libpg_query parses it, our walk
 * goes over whatever tree comes back. Nothing may crash or leak, a
 * success has at least one statement, a failure has a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sql_result r;
	char *text;

	if (size > 4096)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (sql_classify(text, "public", &r) == 0) {
		if (r.nstmts == 0)
			abort();
		for (size_t i = 0; i < r.nstmts; i++)
			for (size_t k = 0; k < r.stmts[i].ntables; k++)
				if (!r.stmts[i].tables[k].name[0])
					abort();
	} else if (!r.error[0]) {
		abort();
	}
	sql_result_free(&r);
	free(text);
	return 0;
}
