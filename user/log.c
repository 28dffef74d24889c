// SPDX-License-Identifier: Apache-2.0
/*
 * JSON-lines logger. Each call formats one complete line and writes it with
 * a single write(2), so lines from the loop never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bridle/log.h"

static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warn",
	[LOG_ERROR] = "error",
};

void log_set_level(enum log_level level)
{
	log_min = level;
}

bool log_enabled(enum log_level level)
{
	return level >= log_min;
}

void log_timestamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;
	char base[24];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", base, (long)tv.tv_usec);
}

void log_json(enum log_level level, const char *event, json_t *fields)
{
	char ts[40];
	json_t *line;
	char *text;

	if (level < log_min) {
		json_decref(fields);
		return;
	}
	log_timestamp(ts, sizeof(ts));
	line = json_object();
	json_object_set_new(line, "ts", json_string(ts));
	json_object_set_new(line, "level", json_string(level_names[level]));
	json_object_set_new(line, "event", json_string(event));
	if (fields)
		json_object_update(line, fields);
	json_decref(fields);
	text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(line);
	if (!text)
		return;
	size_t n = strlen(text);
	text[n] = '\n';
	/* Best effort: a full stderr pipe must not stop the enforcer. */
	if (write(STDERR_FILENO, text, n + 1) == -1) {
	}
	free(text);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_json(level, event, json_pack("{s:s}", "msg", msg));
}

size_t log_utf8_char(const unsigned char *s)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	/* RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF. */
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned lo = c == 0xe0 ? 0xa0 : 0x80,
			 hi = c == 0xed ? 0x9f : 0xbf;

		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 :
									   0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned lo = c == 0xf0 ? 0x90 : 0x80,
			 hi = c == 0xf4 ? 0x8f : 0xbf;

		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
				       (s[3] & 0xc0) == 0x80 ?
			       4 :
			       0;
	}
	return 0;
}

size_t log_utf8(char *dst, size_t cap, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (!cap)
		return 0;
	while (*s) {
		size_t n = log_utf8_char(s);
		const unsigned char *from = s;

		if (!n) { /* U+FFFD for the byte */
			from = (const unsigned char *)"\xef\xbf\xbd";
			n = 3;
		}
		if (o + n + 1 > cap)
			break;
		memcpy(dst + o, from, n);
		o += n;
		s += from == s ? n : 1;
	}
	dst[o] = '\0';
	return o;
}

json_t *log_utf8_json(const char *src, size_t max)
{
	size_t n = strlen(src), cap = n * 3 + 1;
	char *b;
	json_t *j;

	if (cap > max + 1)
		cap = max + 1;
	b = malloc(cap);
	if (!b)
		return json_null();
	n = log_utf8(b, cap, src);
	j = json_stringn(b, n);
	free(b);
	return j ? j : json_null();
}

size_t log_json_str(char *out, size_t cap, size_t budget, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *c = (const unsigned char *)str;
	size_t o = 0;

	if (budget > cap)
		budget = cap;
	if (!str)
		return budget >= 4 ? (memcpy(out, "null", 4), 4) : 0;
	if (budget < 8)
		return 0;
	out[o++] = '"';
	while (*c) {
		size_t n = log_utf8_char(c), need;
		enum { RAW, BAD, CTL, ESC } kind;

		kind = !n		       ? BAD :
		       *c < 0x20 || *c == 0x7f ? CTL :
		       *c == '"' || *c == '\\' ? ESC :
						 RAW;
		need = kind == BAD ? 3 : kind == CTL ? 6 : kind == ESC ? 2 : n;
		/* Room for this, or for "…" and the quote. */
		if (o + need + 4 > budget) {
			memcpy(out + o, "\xe2\x80\xa6", 3);
			o += 3;
			break;
		}
		switch (kind) {
		case BAD:
			memcpy(out + o, "\xef\xbf\xbd", 3);
			break;
		case CTL:
			out[o] = '\\';
			out[o + 1] = 'u';
			out[o + 2] = '0';
			out[o + 3] = '0';
			out[o + 4] = hex[*c >> 4];
			out[o + 5] = hex[*c & 15];
			break;
		case ESC:
			out[o] = '\\';
			out[o + 1] = (char)*c;
			break;
		case RAW:
			memcpy(out + o, c, n);
			break;
		}
		o += need;
		c += n ? n : 1;
	}
	out[o++] = '"';
	return o;
}

int64_t log_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
