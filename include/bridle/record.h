/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Session recordings: one file per
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
 * docs/recording.md describes it for other readers.
 */
#ifndef BRIDLE_RECORD_H
#define BRIDLE_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORD_MAGIC "BRIDLE-REC 1\n"
#define RECORD_SUFFIX ".brec" /* a recording's file name ends so */
#define RECORD_BLOCK_RECORDS 256
#define RECORD_MAX_LINE (1u << 20)

struct record_writer;
struct record_syncer;

/*
 * The helper thread of the recordings of one enforcer: it fsyncs files
 * written to (every @fsync_ms), fsyncs, closes and compresses the files
 * of ended sessions (the writer stores records uncompressed: cheap on the
 * event loop), and applies the retention limits to @dir, oldest file
 * first, never touching a file still open. Nothing on the event loop
 * blocks on the disk but write(2).
 */
struct record_syncer_cfg {
	const char *dir;
	uint32_t fsync_ms;
	uint64_t max_bytes; /* 0: no limit */
	uint64_t max_age_s; /* 0: no limit */
};

struct record_syncer_stats {
	uint64_t open_files, fsyncs, deleted_files, deleted_bytes;
	uint64_t dir_bytes; /* at the last retention pass */
	uint64_t errors;
	char last_error[256];
	/* Closed recordings compressed, and the bytes that saved. */
	uint64_t compressed_files, compressed_saved;
};

struct record_syncer *record_syncer_start(const struct record_syncer_cfg *cfg,
					  char *err, size_t errlen);
/* Fsync and close what is left, stop the thread, free. */
void record_syncer_stop(struct record_syncer *s);
void record_syncer_stats(struct record_syncer *s,
			 struct record_syncer_stats *out);
/* A retention pass now, on the calling thread (it reads the directory:
 * not on an event loop). The syncer runs one at start and every
 * minute. */
void record_syncer_retention(struct record_syncer *s);

/*
 * Read the recording key from @path: a regular file of 16 to 64 bytes
 * that only its owner may read or write (@strict: the enforcer; the CLI
 * reads one it is given without the mode check). Returns the length, or
 * -1 with @err.
 */
int record_key_load(const char *path, bool strict, uint8_t key[64], char *err,
		    size_t errlen);

/*
 * Create @path (it must not exist; mode 0600) for session @session and
 * write its header. @key seals the chain. @syncer (may be NULL: then
 * close fsyncs itself) takes over fsync and close. Returns NULL with
 * @err (and errno EEXIST when the file exists).
 */
struct record_writer *record_create(const char *path, uint64_t session,
				    const uint8_t *key, size_t keylen,
				    struct record_syncer *syncer, char *err,
				    size_t errlen);

/*
 * Stage a record of @kind with @fields (a JSON object whose reference is
 * taken; may be NULL): seq, mono_ns and wall_ms are added. Nothing is
 * written until record_flush(). Returns 0 or -errno (the writer is then
 * failed: every later call fails too).
 */
int record_stage(struct record_writer *w, const char *kind, json_t *fields);

/*
 * A record's fields written as JSON text by hand, for the records every
 * request makes (no JSON objects on that path): ",\"key\":value…". A
 * failed allocation marks it failed, and staging it fails then.
 */
struct record_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

void record_buf_reset(struct record_buf *b);
void record_buf_free(struct record_buf *b);
/* "key": @val as a JSON string of at most @budget bytes (made UTF-8,
 * escaped, cut with "…"); NULL: null. */
void record_buf_str(struct record_buf *b, const char *key, const char *val,
		    size_t budget);
void record_buf_int(struct record_buf *b, const char *key, long long v);
/* "key": @json, which must be valid JSON. */
void record_buf_raw(struct record_buf *b, const char *key, const char *json);
/* Without a key: @raw as it is, or @val as a JSON string (as above). */
void record_buf_put(struct record_buf *b, const char *raw);
void record_buf_put_str(struct record_buf *b, const char *val, size_t budget);

/* record_stage with the fields of @b. */
int record_stage_buf(struct record_writer *w, const char *kind,
		     const struct record_buf *b);

/* Write what was staged. When it returns 0, write(2) took every byte.
 * Returns -errno on a failed write, or when the file's fsync failed. */
int record_flush(struct record_writer *w);

/* Bytes staged, not yet written. */
size_t record_pending(const struct record_writer *w);

/* record_stage then record_flush. */
int record_append(struct record_writer *w, const char *kind, json_t *fields);

/* fsync the file (on the calling thread). Returns 0 or -errno. */
int record_sync(struct record_writer *w);

/* Stage the end of the open block, write, then fsync and close (through
 * the syncer when there is one), free @w. Returns 0 or -errno (@w is
 * freed either way). */
int record_close(struct record_writer *w);

/* record_close, telling how many records and bytes the file got (each
 * may be NULL). */
int record_finish(struct record_writer *w, uint64_t *records, uint64_t *bytes);

uint64_t record_count(const struct record_writer *w);
/* Bytes written to the file so far. */
uint64_t record_bytes(const struct record_writer *w);

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
