/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PII detectors for masking result values: each finds candidates by shape
 * and keeps only those that validate (Luhn for card numbers, mod-97 for
 * IBANs, the SSA's invalid ranges for SSNs…), so that masking does not eat
 * every long number. And the three masking styles. Groundwork for the
 * PostgreSQL issue; pure functions over the caller's bytes.
 */
#ifndef BRIDLE_MASK_H
#define BRIDLE_MASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mask_detector {
	MASK_EMAIL,
	MASK_CREDIT_CARD,
	MASK_US_SSN,
	MASK_PHONE,
	MASK_IBAN,
	MASK_IPV4,
	MASK_AWS_KEY,
	MASK_PRIVATE_KEY,
	MASK_JWT,
	MASK_NDETECTORS,
	/* Not a detector: a whole value masked because of its column. */
	MASK_COLUMN = MASK_NDETECTORS,
};

#define MASK_ALL ((1u << MASK_NDETECTORS) - 1)

struct mask_match {
	size_t off, len;
	enum mask_detector kind;
};

/*
 * Find the matches of the detectors in bit set @detectors in @s[0..len),
 * left to right, not overlapping. Returns how many were found (at most
 * @max are stored; the count goes on past @max).
 */
size_t mask_scan(const char *s, size_t len, uint32_t detectors,
		 struct mask_match *out, size_t max);

/* The same walk without the Vectorscan prefilter (tests compare). */
size_t mask_scan_exact(const char *s, size_t len, uint32_t detectors,
		       struct mask_match *out, size_t max);

/* False when no detector of @detectors can match in @s (Vectorscan);
 * true when one may, or when Vectorscan is not usable here. */
bool mask_prefilter(const char *s, size_t len, uint32_t detectors);

bool mask_luhn_valid(const char *s, size_t len); /* digits, ' ' and '-' */
bool mask_iban_valid(const char *s, size_t len); /* spaces allowed */
bool mask_ssn_valid(const char *s, size_t len); /* "ddd-dd-dddd" */

const char *mask_detector_name(enum mask_detector d); /* "credit_card" */
int mask_detector_from_name(const char *name); /* -1 if unknown */

enum mask_style { MASK_REDACT, MASK_PARTIAL, MASK_HASH };

/*
 * Render the masked form of @value (a match of @kind) into @out:
 * "[REDACTED:CREDIT_CARD]", the last 4 characters after asterisks, or a
 * keyed hash ("[HASH:9f86d081…]", HMAC-SHA-256 under @key, stable for a
 * given key). Returns the length written, or -1 if @out is too small.
 */
int mask_render(enum mask_style style, enum mask_detector kind,
		const char *value, size_t len, const uint8_t *key,
		size_t keylen, char *out, size_t outlen);

#endif
