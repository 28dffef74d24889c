// SPDX-License-Identifier: Apache-2.0
/*
 * JSON-lines logger. Each call formats one complete line and writes it with
 * a single write(2), so lines from the loop never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
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
