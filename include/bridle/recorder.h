/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enforcer's session recordings: the recording directory, one file
 * per session (record.c writes it), the helper thread that fsyncs and
 * applies retention, and what `bridle status` shows of them: recordings
 * open, records and bytes written, failures and the last error.
 */
#ifndef BRIDLE_RECORDER_H
#define BRIDLE_RECORDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "bridle/record.h"

struct enforcer;
struct recorder;
struct session_summary;

/* Set up e->recorder when the config names record_dir (else leave it
 * NULL). Returns 0, or -1 with @err. */
int recorder_start(struct enforcer *e, char *err, size_t errlen);
void recorder_stop(struct enforcer *e);

/*
 * Create the recording of session @sum ("YYYYMMDD-HHMMSS-<id>.brec",
 * UTC, in record_dir) and write its header; its id (the file name
 * without ".brec") goes to @id. Returns NULL with @err.
 */
struct record_writer *recorder_open(struct recorder *r,
				    const struct session_summary *sum, char *id,
				    size_t idlen, char *err, size_t errlen);

/* True when a record that cannot be written refuses the request. */
bool recorder_refuses(const struct recorder *r);

/* Session @session's recording failed (@err, errno) while @what; it
 * @continues unrecorded, or its requests are refused. Counted, kept as
 * the last error, logged. */
void recorder_failed(struct recorder *r, uint64_t session, const char *what,
		     int err, bool continues);

/* A request refused because its record could not be written. */
void recorder_refused(struct recorder *r);

/* Bytes and records written by a closed recording; a good write clears
 * the failing state. */
void recorder_closed(struct recorder *r, uint64_t records, uint64_t bytes);
void recorder_wrote(struct recorder *r);

json_t *recorder_status_json(struct recorder *r);

#endif
