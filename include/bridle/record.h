/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Session recordings (groundwork for the recording issue): one file per
 * session, records as JSON lines, each carrying a keyed hash chain value
 * h_n = HMAC-SHA256(key, h_(n-1) || record_n), so every record verifies
 * on its own and a change, a reordering, a splice from another session or
 * a re-seal with another key shows at the exact record. Records go into
 * zlib (raw deflate) blocks, flushed after each record so that what
 * write(2) returned for decodes after a crash; a block is closed (with its
 * count and last hash) every RECORD_BLOCK_RECORDS records.
 *
 * File: "BRIDLE-REC 1\n", a header line (JSON: session, nonce, started),
 * then blocks: "BLK <first seq>\n", a raw deflate stream of record lines
 * "<json>\t<hex h_n>\n", then "\nEND <count> <hex h_last>\n".
 * docs/recording.md will describe it for other readers.
 */
#ifndef BRIDLE_RECORD_H
#define BRIDLE_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORD_MAGIC "BRIDLE-REC 1\n"
#define RECORD_BLOCK_RECORDS 256
#define RECORD_MAX_LINE (1u << 20)

struct record_writer;

/*
 * Create @path (it must not exist; mode 0600) for session @session and
 * write its header. @key seals the chain. Returns NULL with @err.
 */
struct record_writer *record_create(const char *path, uint64_t session,
				    const uint8_t *key, size_t keylen,
				    char *err, size_t errlen);

/*
 * Append a record of @kind with @fields (a JSON object whose reference is
 * taken; may be NULL): seq, mono_ns and wall are added. When it returns 0
 * the record's bytes were handed to write(2) in full. Returns -errno (the
 * writer is then failed: every later append fails too).
 */
int record_append(struct record_writer *w, const char *kind, json_t *fields);

/* fsync the file. Returns 0 or -errno. */
int record_sync(struct record_writer *w);

/* Close the open block, fsync, close the file, free @w. Returns 0 or
 * -errno (@w is freed either way). */
int record_close(struct record_writer *w);

uint64_t record_count(const struct record_writer *w);

/* What verification found. */
struct record_report {
	uint64_t records; /* decoded and verified */
	uint64_t blocks; /* closed blocks */
	bool ended; /* the last record is of kind "end" */
	bool torn; /* the file ends inside a block */
	int64_t bad_seq; /* the first record that does not verify, or -1 */
	char error[256]; /* what is wrong, "" when the file verifies */
};

/*
 * Read and verify the recording in @data (@len bytes) with @key. Calls
 * @cb (if not NULL) for each verified record in order. Returns 0 when
 * every record verifies (a torn tail or a missing end is reported in @r
 * but is not an error), -1 with @r->error otherwise.
 */
int record_verify(const uint8_t *data, size_t len, const uint8_t *key,
		  size_t keylen, void (*cb)(json_t *record, void *arg),
		  void *arg, struct record_report *r);

#endif
