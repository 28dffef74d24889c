/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structured logging: one JSON object per line on stderr, with a timestamp,
 * a level and an event name. Callers add fields as a jansson object.
 */
#ifndef BRIDLE_LOG_H
#define BRIDLE_LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Log @event with @fields (may be NULL). Takes ownership of @fields. */
void log_json(enum log_level level, const char *event, json_t *fields);

/* Log @event with a printf-style "msg" field. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The wall clock (CLOCK_REALTIME) in ms since the epoch. */
int64_t log_wall_ms(void);

/* RFC 3339 UTC time with microseconds into @buf (at least 32 bytes). */
void log_timestamp(char *buf, size_t len);

/*
 * Copy @src into @dst (@cap bytes, NUL included) as valid UTF-8: a byte
 * that does not start a well-formed character becomes U+FFFD, and a cut
 * falls between characters. For bytes from agents and processes (statement
 * text, executable paths) on their way into JSON logs. Returns the length.
 */
size_t log_utf8(char *dst, size_t cap, const char *src);

/*
 * @str as a JSON string (or null) at @out, in at most @budget bytes (and
 * @cap): control characters escaped, what is not UTF-8 written as U+FFFD,
 * and a string too long cut between characters and ended with "…". The
 * agent's bytes can neither break the line nor push out its other fields.
 */
size_t log_json_str(char *out, size_t cap, size_t budget, const char *str);

/* @src as a JSON string made UTF-8 (log_utf8), of at most @max bytes. */
json_t *log_utf8_json(const char *src, size_t max);

/* The length of the well-formed UTF-8 character at @s (1-4), or 0 when
 * it is not one. */
size_t log_utf8_char(const unsigned char *s);

#endif
