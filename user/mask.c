// SPDX-License-Identifier: Apache-2.0
/*
 * PII detectors and masking styles. Each detector is a function that
 * tries to match at one position (which must start a token) and returns
 * the match length or 0; mask_scan walks the text once and asks each
 * enabled detector, the first that matches wins and the walk skips it.
 *
 * Most values hold no PII, so mask_scan first asks Vectorscan, with one
 * loose pattern per detector compiled into one database, whether any
 * enabled detector could match at all; only then does the exact walk,
 * with its validators, run. Each loose pattern accepts everything its
 * detector accepts (tests/unit/test_mask.c and the mask fuzz target check
 * that the two scans agree).
 */
#include <ctype.h>
#include <hs/hs.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "bridle/mask.h"

static const char *const detector_names[MASK_NDETECTORS] = {
	[MASK_EMAIL] = "email",
	[MASK_CREDIT_CARD] = "credit_card",
	[MASK_US_SSN] = "us_ssn",
	[MASK_PHONE] = "phone",
	[MASK_IBAN] = "iban",
	[MASK_IPV4] = "ipv4",
	[MASK_AWS_KEY] = "aws_access_key",
	[MASK_PRIVATE_KEY] = "private_key",
	[MASK_JWT] = "jwt",
};

const char *mask_detector_name(enum mask_detector d)
{
	if (d == MASK_COLUMN)
		return "column";
	return (unsigned)d < MASK_NDETECTORS ? detector_names[d] : "?";
}

int mask_detector_from_name(const char *name)
{
	for (int i = 0; i < MASK_NDETECTORS; i++)
		if (strcmp(name, detector_names[i]) == 0)
			return i;
	return -1;
}

static bool is_word(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

bool mask_luhn_valid(const char *s, size_t len)
{
	int sum = 0, n = 0;

	for (size_t i = len; i-- > 0;) {
		int d;

		if (s[i] == ' ' || s[i] == '-')
			continue;
		if (!isdigit((unsigned char)s[i]))
			return false;
		d = s[i] - '0';
		if (n++ % 2) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return n >= 13 && n <= 19 && sum % 10 == 0;
}

bool mask_iban_valid(const char *s, size_t len)
{
	char c[40];
	size_t n = 0;
	unsigned rem = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ')
			continue;
		if (n == sizeof(c) || !isalnum((unsigned char)s[i]))
			return false;
		c[n++] = (char)toupper((unsigned char)s[i]);
	}
	if (n < 15 || n > 34 || !isalpha((unsigned char)c[0]) ||
	    !isalpha((unsigned char)c[1]) || !isdigit((unsigned char)c[2]) ||
	    !isdigit((unsigned char)c[3]))
		return false;
	/* Move the first four characters to the end; letters count 10..35. */
	for (size_t k = 0; k < n; k++) {
		char ch = c[(k + 4) % n];

		if (isdigit((unsigned char)ch))
			rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
		else
			rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
	}
	return rem == 1;
}

bool mask_ssn_valid(const char *s, size_t len)
{
	int area, group, serial;

	if (len != 11 || s[3] != '-' || s[6] != '-')
		return false;
	for (size_t i = 0; i < 11; i++)
		if (i != 3 && i != 6 && !isdigit((unsigned char)s[i]))
			return false;
	area = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	group = (s[4] - '0') * 10 + (s[5] - '0');
	serial = (s[7] - '0') * 1000 + (s[8] - '0') * 100 + (s[9] - '0') * 10 +
		 (s[10] - '0');
	/* Never issued: area 000, 666, 900-999; group 00; serial 0000. */
	return area != 0 && area != 666 && area < 900 && group != 0 &&
	       serial != 0;
}

/* Digits with single ' ' or '-' between them; returns the span. */
static size_t digit_run(const char *s, size_t len, size_t *ndigits)
{
	size_t i = 0, last = 0;

	*ndigits = 0;
	while (i < len) {
		if (isdigit((unsigned char)s[i])) {
			(*ndigits)++;
			last = ++i;
		} else if ((s[i] == ' ' || s[i] == '-') && i > 0 &&
			   isdigit((unsigned char)s[i - 1]) && i + 1 < len &&
			   isdigit((unsigned char)s[i + 1])) {
			i++;
		} else {
			break;
		}
	}
	return last;
}

static size_t match_card(const char *s, size_t len)
{
	size_t nd, span = digit_run(s, len, &nd);

	if (nd < 13 || nd > 19 || (span < len && is_word(s[span])))
		return 0;
	return mask_luhn_valid(s, span) ? span : 0;
}

static size_t match_ssn(const char *s, size_t len)
{
	if (len < 11 ||
	    (len > 11 && (isdigit((unsigned char)s[11]) || s[11] == '-')))
		return 0;
	return mask_ssn_valid(s, 11) ? 11 : 0;
}

static size_t match_phone(const char *s, size_t len)
{
	size_t i = 0, nd, span;

	if (s[0] == '+')
		i = 1;
	else if (s[0] == '(') {
		/* (ddd) ddd-dddd */
		if (len < 14 || !isdigit((unsigned char)s[1]) ||
		    !isdigit((unsigned char)s[2]) ||
		    !isdigit((unsigned char)s[3]) || s[4] != ')' || s[5] != ' ')
			return 0;
		span = digit_run(s + 6, len - 6, &nd);
		return nd == 7 && span == 8 ? 14 : 0;
	}
	span = digit_run(s + i, len - i, &nd);
	if (i + span < len && is_word(s[i + span]))
		return 0;
	/* International with '+': 10-15 digits; else ddd-ddd-dddd. */
	if (i == 1 && nd >= 10 && nd <= 15)
		return i + span;
	if (i == 0 && nd == 10 && span == 12 && s[3] == '-' && s[7] == '-')
		return span;
	return 0;
}

static size_t match_iban(const char *s, size_t len)
{
	size_t i = 0, n = 0;

	if (len < 15 || !isupper((unsigned char)s[0]) ||
	    !isupper((unsigned char)s[1]) || !isdigit((unsigned char)s[2]) ||
	    !isdigit((unsigned char)s[3]))
		return 0;
	while (i < len && n < 34) {
		if (isalnum((unsigned char)s[i])) {
			n++;
			i++;
		} else if (s[i] == ' ' && i + 1 < len &&
			   isalnum((unsigned char)s[i + 1]) && n % 4 == 0) {
			i++;
		} else {
			break;
		}
	}
	if (i < len && is_word(s[i]))
		return 0;
	return mask_iban_valid(s, i) ? i : 0;
}

static size_t match_ipv4(const char *s, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		int v = 0, nd = 0;

		while (i < len && isdigit((unsigned char)s[i]) && nd < 3) {
			v = v * 10 + (s[i++] - '0');
			nd++;
		}
		if (!nd || v > 255)
			return 0;
		if (part < 3) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len &&
	    (isdigit((unsigned char)s[i]) ||
	     (s[i] == '.' && i + 1 < len && isdigit((unsigned char)s[i + 1]))))
		return 0;
	return i;
}

static size_t match_aws(const char *s, size_t len)
{
	static const char *const prefixes[] = { "AKIA", "ASIA", "AGPA",
						"AIDA", "AROA", "ANPA",
						"ANVA", "AIPA", NULL };

	if (len < 20)
		return 0;
	for (int p = 0; prefixes[p]; p++) {
		if (memcmp(s, prefixes[p], 4) != 0)
			continue;
		for (size_t i = 4; i < 20; i++)
			if (!isupper((unsigned char)s[i]) &&
			    !isdigit((unsigned char)s[i]))
				return 0;
		return len > 20 && is_word(s[20]) ? 0 : 20;
	}
	return 0;
}

static size_t match_private_key(const char *s, size_t len)
{
	static const char begin[] = "-----BEGIN ";
	const char *hdr_end, *end;

	if (len < sizeof(begin) - 1 || memcmp(s, begin, sizeof(begin) - 1))
		return 0;
	hdr_end = memmem(s, len, "PRIVATE KEY-----", 16);
	if (!hdr_end || hdr_end - s > 64)
		return 0;
	end = memmem(hdr_end, len - (size_t)(hdr_end - s), "-----END ", 9);
	if (!end)
		return len; /* cut off: mask the rest */
	end = memmem(end, len - (size_t)(end - s), "KEY-----", 8);
	return end ? (size_t)(end - s) + 8 : len;
}

static size_t b64url_run(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len &&
	       (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_'))
		i++;
	return i;
}

static size_t match_jwt(const char *s, size_t len)
{
	size_t a, b, c;

	if (len < 10 || memcmp(s, "eyJ", 3))
		return 0;
	a = b64url_run(s, len);
	if (a >= len || s[a] != '.' || a + 4 > len ||
	    memcmp(s + a + 1, "eyJ", 3))
		return 0;
	b = b64url_run(s + a + 1, len - a - 1);
	if (a + 1 + b >= len || s[a + 1 + b] != '.')
		return 0;
	c = b64url_run(s + a + 2 + b, len - a - 2 - b);
	return a + 2 + b + c;
}

/*
 * At an '@' in @s[0..len) (@s points at it), with @before characters of
 * unmatched text before it: the local part's length in *back, and the
 * length from '@' to the end of the domain, or 0.
 */
static size_t match_email(const char *s, size_t len, size_t before,
			  size_t *back)
{
	size_t l = 0, r = 1, dot = 0;

	while (l < before && (isalnum((unsigned char)s[-(long)l - 1]) ||
			      strchr("._%+-", s[-(long)l - 1])))
		l++;
	while (r < len &&
	       (isalnum((unsigned char)s[r]) || s[r] == '.' || s[r] == '-'))
		r++;
	while (r > 1 && (s[r - 1] == '.' || s[r - 1] == '-'))
		r--; /* trailing punctuation is not the domain's */
	for (size_t k = 1; k < r; k++)
		if (s[k] == '.')
			dot = k;
	/* A local part, a domain label, and a top-level domain of letters. */
	if (!l || dot < 2 || r - dot - 1 < 2)
		return 0;
	for (size_t k = dot + 1; k < r; k++)
		if (!isalpha((unsigned char)s[k]))
			return 0;
	*back = l;
	return r;
}

typedef size_t (*match_fn)(const char *, size_t);

/* Most specific shapes first: a key block holds base64, a JWT digits… */
static const struct {
	enum mask_detector kind;
	match_fn fn;
} matchers[] = {
	{ MASK_PRIVATE_KEY, match_private_key },
	{ MASK_JWT, match_jwt },
	{ MASK_AWS_KEY, match_aws },
	{ MASK_IBAN, match_iban },
	{ MASK_US_SSN, match_ssn },
	{ MASK_CREDIT_CARD, match_card },
	{ MASK_IPV4, match_ipv4 },
	{ MASK_PHONE, match_phone },
};

/* A match starts a token: not inside a word, nor in "1.2.3" after a dot. */
static bool token_start(const char *s, size_t i)
{
	if (i == 0)
		return true;
	if (is_word(s[i - 1]))
		return false;
	return !(s[i - 1] == '.' && i >= 2 && isdigit((unsigned char)s[i - 2]));
}

/* Necessary conditions of each detector, as Vectorscan patterns. */
static const char *const loose[MASK_NDETECTORS] = {
	[MASK_EMAIL] = "@",
	[MASK_CREDIT_CARD] = "[0-9](?:[ -]?[0-9]){12}",
	[MASK_US_SSN] = "[0-9]{3}-[0-9]{2}-[0-9]{4}",
	[MASK_PHONE] = ("\\+(?:[ -]?[0-9]){10}|\\([0-9]{3}\\) [0-9]|"
			"[0-9]{3}-[0-9]{3}-[0-9]{4}"),
	[MASK_IBAN] = "[A-Z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11}",
	[MASK_IPV4] = "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]",
	[MASK_AWS_KEY] = "A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)[A-Z0-9]{16}",
	[MASK_PRIVATE_KEY] = "-----BEGIN ",
	[MASK_JWT] = "eyJ[A-Za-z0-9_-]*\\.eyJ",
};

static pthread_once_t hs_once = PTHREAD_ONCE_INIT;
static hs_database_t *hs_db; /* NULL: Vectorscan unusable, walk always */
static __thread hs_scratch_t *hs_scratch;

static void hs_setup(void)
{
	unsigned ids[MASK_NDETECTORS], flags[MASK_NDETECTORS];
	hs_compile_error_t *err = NULL;

	for (unsigned i = 0; i < MASK_NDETECTORS; i++) {
		ids[i] = i;
		flags[i] = HS_FLAG_SINGLEMATCH;
	}
	if (hs_compile_multi(loose, flags, ids, MASK_NDETECTORS, HS_MODE_BLOCK,
			     NULL, &hs_db, &err) != HS_SUCCESS) {
		hs_free_compile_error(err);
		hs_db = NULL;
	}
}

struct hs_want {
	uint32_t detectors;
	bool hit;
};

static int hs_on_match(unsigned id, unsigned long long from,
		       unsigned long long to, unsigned flags, void *ctx)
{
	struct hs_want *w = ctx;

	(void)from;
	(void)to;
	(void)flags;
	if (!(w->detectors & (1u << id)))
		return 0;
	w->hit = true;
	return 1; /* stop: one is enough */
}

bool mask_prefilter(const char *s, size_t len, uint32_t detectors)
{
	struct hs_want w = { detectors, false };
	hs_error_t r;

	pthread_once(&hs_once, hs_setup);
	if (!hs_db || len > UINT32_MAX ||
	    (!hs_scratch && hs_alloc_scratch(hs_db, &hs_scratch) != HS_SUCCESS))
		return true;
	r = hs_scan(hs_db, s, (unsigned)len, 0, hs_scratch, hs_on_match, &w);
	return r == HS_SCAN_TERMINATED || r != HS_SUCCESS || w.hit;
}

size_t mask_scan(const char *s, size_t len, uint32_t detectors,
		 struct mask_match *out, size_t max)
{
	if (!detectors || !mask_prefilter(s, len, detectors))
		return 0;
	return mask_scan_exact(s, len, detectors, out, max);
}

size_t mask_scan_exact(const char *s, size_t len, uint32_t detectors,
		       struct mask_match *out, size_t max)
{
	size_t n = 0, i = 0, last_end = 0;

	while (i < len) {
		struct mask_match m = { 0, 0, MASK_NDETECTORS };

		if ((detectors & (1u << MASK_EMAIL)) && s[i] == '@') {
			size_t back = 0, r = match_email(s + i, len - i,
							 i - last_end, &back);

			if (r)
				m = (struct mask_match){ i - back, back + r,
							 MASK_EMAIL };
		}
		if (!m.len && token_start(s, i)) {
			for (size_t k = 0;
			     k < sizeof(matchers) / sizeof(*matchers); k++) {
				size_t l;

				if (!(detectors & (1u << matchers[k].kind)))
					continue;
				l = matchers[k].fn(s + i, len - i);
				if (l) {
					m = (struct mask_match){
						i, l, matchers[k].kind
					};
					break;
				}
			}
		}
		if (!m.len) {
			i++;
			continue;
		}
		if (n < max)
			out[n] = m;
		n++;
		i = m.off + m.len;
		last_end = i;
	}
	return n;
}

int mask_render(enum mask_style style, enum mask_detector kind,
		const char *value, size_t len, const uint8_t *key,
		size_t keylen, char *out, size_t outlen)
{
	char upper[32];
	int n;

	switch (style) {
	case MASK_PARTIAL: {
		size_t keep = len > 4 ? 4 : 0, stars = len - keep;

		if (len + 1 > outlen)
			return -1;
		memset(out, '*', stars);
		memcpy(out + stars, value + stars, keep);
		out[len] = '\0';
		return (int)len;
	}
	case MASK_HASH: {
		uint8_t mac[32];
		unsigned int mlen = sizeof(mac);

		if (!HMAC(EVP_sha256(), key, (int)keylen,
			  (const unsigned char *)value, len, mac, &mlen))
			return -1;
		n = snprintf(out, outlen, "[HASH:");
		for (int i = 0; i < 8 && n > 0 && (size_t)n < outlen; i++)
			n += snprintf(out + n, outlen - (size_t)n, "%02x",
				      mac[i]);
		if (n < 0 || (size_t)n + 2 > outlen)
			return -1;
		out[n++] = ']';
		out[n] = '\0';
		return n;
	}
	case MASK_REDACT:
	default:
		snprintf(upper, sizeof(upper), "%s", mask_detector_name(kind));
		for (char *p = upper; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		n = snprintf(out, outlen, "[REDACTED:%s]", upper);
		return n < 0 || (size_t)n >= outlen ? -1 : n;
	}
}
