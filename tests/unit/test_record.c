// SPDX-License-Identifier: Apache-2.0
/*
 * Recordings (user/record.c): a round trip over several blocks; every
 * byte flipped is caught (or changes nothing that decodes); a cut at
 * every point where an append returned keeps every record written before
 * it, and reports the torn tail; blocks removed, reordered, spliced from
 * another session; a file sealed with another key. Staged records reach
 * the file only when flushed; the syncer fsyncs and closes files of
 * ended sessions and deletes old ones, never an open one; the key file
 * is checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bridle/record.h"

static const uint8_t key1[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t key2[32] = "fedcba9876543210fedcba9876543210";

#define NREC 600

static char path[64];
static off_t sizes[NREC + 2]; /* file size after each append */

static uint8_t *slurp(const char *p, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(p, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	assert_non_null(b);
	assert_int_equal(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static void write_file(const char *p, const uint8_t *key, int n, bool end)
{
	char err[256];
	struct record_writer *w;
	struct stat st;

	unlink(p);
	w = record_create(p, 42, key, 32, NULL, err, sizeof(err));
	if (!w)
		fail_msg("%s", err);
	for (int i = 0; i < n; i++) {
		assert_int_equal(
			record_append(w, "request",
				      json_pack("{s:s,s:i}", "sql",
						"SELECT * FROM orders WHERE id = ?",
						"i", i)),
			0);
		assert_int_equal(stat(p, &st), 0);
		sizes[i + 1] = st.st_size;
	}
	if (end)
		assert_int_equal(record_append(w, "end", NULL), 0);
	assert_int_equal(record_close(w), 0);
}

/* Digest of the records the callback saw: their texts, in order. */
struct seen {
	uint64_t n;
	unsigned long sum;
};

static void see(json_t *rec, void *arg)
{
	struct seen *s = arg;
	char *t = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);

	for (char *c = t; *c; c++)
		s->sum = s->sum * 131 + (unsigned char)*c;
	s->n++;
	free(t);
}

static void test_round_trip(void **state)
{
	struct record_report r;
	struct seen s = {};
	uint8_t *b;
	size_t len;

	(void)state;
	write_file(path, key1, NREC, true);
	b = slurp(path, &len);
	assert_int_equal(record_verify(b, len, key1, 32, see, &s, &r), 0);
	assert_string_equal(r.error, "");
	assert_int_equal(r.records, NREC + 1);
	assert_int_equal(s.n, NREC + 1);
	assert_int_equal(r.blocks, (NREC + 1 + RECORD_BLOCK_RECORDS - 1) /
					   RECORD_BLOCK_RECORDS);
	assert_true(r.ended);
	assert_false(r.torn);
	/* Another key: the very first record does not verify. */
	assert_int_equal(record_verify(b, len, key2, 32, NULL, NULL, &r), -1);
	assert_int_equal(r.bad_seq, 1);
	assert_non_null(strstr(r.error, "record 1: does not verify"));
	/* Stored, not compressed (test_syncer compresses): every line
	 * whole, about 170 bytes each. */
	assert_true(len > (NREC + 1) * 150);
	free(b);
}

static void test_flip_every_byte(void **state)
{
	struct record_report r;
	struct seen good = {};
	uint8_t *b;
	size_t len;
	int caught = 0, harmless = 0;

	(void)state;
	write_file(path, key1, 120, true);
	b = slurp(path, &len);
	assert_int_equal(record_verify(b, len, key1, 32, see, &good, &r), 0);
	for (size_t i = 0; i < len; i++) {
		struct seen s = {};

		b[i] ^= 0x01;
		if (record_verify(b, len, key1, 32, see, &s, &r) == -1) {
			caught++;
			assert_true(r.error[0]);
		} else {
			/* A padding bit of the deflate stream: the records
			 * decode the same, or the flip would show. */
			if (s.n != good.n || s.sum != good.sum || r.torn)
				fail_msg("byte %zu flipped: accepted with "
					 "other records",
					 i);
			harmless++;
		}
		b[i] ^= 0x01;
	}
	assert_true(caught > (int)len * 9 / 10);
	(void)harmless;
	free(b);
}

static void test_cut(void **state)
{
	struct record_report r;
	uint8_t *b;
	size_t len;

	(void)state;
	write_file(path, key1, 300, false); /* two blocks, one open */
	b = slurp(path, &len);
	/* Cut where an append had returned: every record before it
	 * verifies, and the tail is reported, not an error. */
	for (int i = 1; i <= 300; i++) {
		assert_int_equal(record_verify(b, (size_t)sizes[i], key1, 32,
					       NULL, NULL, &r),
				 0);
		assert_int_equal(r.records, i);
		assert_false(r.ended);
	}
	/* Anywhere at all: never a crash, never a record invented. */
	for (size_t n = 0; n < len; n += 53) {
		int ret = record_verify(b, n, key1, 32, NULL, NULL, &r);

		assert_true(r.records <= 300);
		if (ret == 0)
			assert_true(r.torn || r.records == 0);
	}
	free(b);
}

/* The byte offsets of the "BLK " markers. */
static size_t blocks_of(const uint8_t *b, size_t len, size_t *at, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i + 4 < len && n < max; i++)
		if (memcmp(b + i, "\nBLK ", 5) == 0 ||
		    (i == 0 && memcmp(b, "BLK ", 4) == 0))
			at[n++] = b[i] == '\n' ? i + 1 : i;
	return n;
}

static void test_blocks_moved(void **state)
{
	struct record_report r;
	char other[80];
	uint8_t *a, *o, *m;
	size_t la, lo, ba[8], bo[8], na, no;

	(void)state;
	write_file(path, key1, NREC, true);
	snprintf(other, sizeof(other), "%s.other", path);
	write_file(other, key1, NREC, true);
	a = slurp(path, &la);
	o = slurp(other, &lo);
	na = blocks_of(a, la, ba, 8);
	no = blocks_of(o, lo, bo, 8);
	assert_int_equal(na, 3);
	assert_int_equal(no, 3);
	m = malloc(la + lo);

	/* Block 2 removed. */
	memcpy(m, a, ba[1]);
	memcpy(m + ba[1], a + ba[2], la - ba[2]);
	assert_int_equal(record_verify(m, ba[1] + la - ba[2], key1, 32, NULL,
				       NULL, &r),
			 -1);
	assert_int_equal(r.bad_seq, RECORD_BLOCK_RECORDS + 1);
	assert_non_null(strstr(r.error, "records removed, reordered"));

	/* Blocks 2 and 3 swapped. */
	memcpy(m, a, ba[1]);
	memcpy(m + ba[1], a + ba[2], la - ba[2]);
	memcpy(m + ba[1] + la - ba[2], a + ba[1], ba[2] - ba[1]);
	assert_int_equal(record_verify(m, la, key1, 32, NULL, NULL, &r), -1);
	assert_int_equal(r.bad_seq, RECORD_BLOCK_RECORDS + 1);

	/* Block 2 from another session (same key, same numbering). */
	memcpy(m, a, ba[1]);
	memcpy(m + ba[1], o + bo[1], bo[2] - bo[1]);
	memcpy(m + ba[1] + bo[2] - bo[1], a + ba[2], la - ba[2]);
	assert_int_equal(record_verify(m, ba[1] + (bo[2] - bo[1]) + la - ba[2],
				       key1, 32, NULL, NULL, &r),
			 -1);
	assert_int_equal(r.bad_seq, RECORD_BLOCK_RECORDS + 1);
	assert_non_null(strstr(r.error, "does not verify"));

	/* Re-sealed with another key: from the first record. */
	write_file(other, key2, 10, true);
	free(o);
	o = slurp(other, &lo);
	assert_int_equal(record_verify(o, lo, key1, 32, NULL, NULL, &r), -1);
	assert_int_equal(r.bad_seq, 1);
	unlink(other);
	free(a);
	free(o);
	free(m);
}

static void test_bad_input(void **state)
{
	struct record_report r;
	static const char *const bad[] = {
		"",
		"BRIDLE-REC 2\n{}\n",
		"BRIDLE-REC 1\n",
		"BRIDLE-REC 1\n{}\nBLK x\n",
		"BRIDLE-REC 1\n{}\nBLK 2\n",
		"BRIDLE-REC 1\n{}\nnot a block",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(record_verify((const uint8_t *)bad[i],
					       strlen(bad[i]), key1, 32, NULL,
					       NULL, &r),
				 -1);
	/* A header and nothing else: an empty recording. */
	assert_int_equal(record_verify((const uint8_t *)"BRIDLE-REC 1\n{}\n",
				       16, key1, 32, NULL, NULL, &r),
			 0);
	assert_int_equal(r.records, 0);
	assert_false(r.ended);
}


/* Staged records are in memory only: a flush writes them all. */
static void test_stage_flush(void **state)
{
	char err[256];
	struct record_writer *w;
	struct record_report r;
	struct stat st;
	off_t before;
	size_t len;
	uint8_t *b;

	(void)state;
	unlink(path);
	w = record_create(path, 7, key1, 32, NULL, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(stat(path, &st), 0);
	before = st.st_size;
	assert_int_equal(record_stage(w, "request",
				      json_pack("{s:s}", "statement", "a")),
			 0);
	assert_int_equal(record_stage(w, "decision",
				      json_pack("{s:s}", "decision", "allow")),
			 0);
	assert_true(record_pending(w) > 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, before);
	assert_int_equal(record_flush(w), 0);
	assert_int_equal(record_pending(w), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > before);
	assert_int_equal(record_bytes(w), (uint64_t)st.st_size);
	/* What was flushed verifies before the file is closed. */
	b = slurp(path, &len);
	assert_int_equal(record_verify(b, len, key1, 32, NULL, NULL, &r), 0);
	assert_int_equal(r.records, 2);
	assert_false(r.ended);
	free(b);
	/* A record too large for a line fails the writer, for good. */
	{
		char *big = malloc(RECORD_MAX_LINE);

		assert_non_null(big);
		memset(big, 'x', RECORD_MAX_LINE - 1);
		big[RECORD_MAX_LINE - 1] = '\0';
		assert_true(record_stage(w, "request",
					 json_pack("{s:s}", "statement",
						   big)) < 0);
		free(big);
		assert_true(record_flush(w) < 0);
		assert_true(record_append(w, "end", NULL) < 0);
	}
	assert_true(record_close(w) < 0);
	b = slurp(path, &len);
	assert_int_equal(record_verify(b, len, key1, 32, NULL, NULL, &r), 0);
	assert_int_equal(r.records, 2);
	free(b);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Make @name in @dir a closed recording last written @age seconds ago. */
static void old_file(const char *dir, const char *name, int age)
{
	char p[256], err[256];
	struct record_writer *w;
	struct timeval tv[2];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	w = record_create(p, 1, key1, 32, NULL, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(record_append(w, "end", NULL), 0);
	assert_int_equal(record_close(w), 0);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age;
	tv[1] = tv[0];
	assert_int_equal(utimes(p, tv), 0);
}

/*
 * The syncer: files of ended sessions are fsynced and closed off the
 * caller's thread; at start, recordings older than the age limit go,
 * then the oldest while over the size limit, never an open one.
 */
static void test_syncer(void **state)
{
	char dir[] = "/tmp/bridle-recdir-XXXXXX", p[256], err[256];
	struct record_syncer_cfg cfg = { .fsync_ms = 10 };
	struct record_syncer_stats st;
	struct record_syncer *s;
	struct record_writer *w;

	(void)state;
	assert_non_null(mkdtemp(dir));
	cfg.dir = dir;
	/* Written: fsynced within the interval; closed: the syncer closes
	 * it. */
	s = record_syncer_start(&cfg, err, sizeof(err));
	assert_non_null(s);
	snprintf(p, sizeof(p), "%s/one%s", dir, RECORD_SUFFIX);
	w = record_create(p, 2, key1, 32, s, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(record_append(w, "start", NULL), 0);
	for (int i = 0; i < 300; i++) {
		record_syncer_stats(s, &st);
		if (st.fsyncs)
			break;
		usleep(10000);
	}
	assert_true(st.fsyncs >= 1);
	assert_int_equal(st.open_files, 1);
	for (int i = 0; i < NREC; i++)
		assert_int_equal(
			record_stage(w, "request",
				     json_pack("{s:s,s:i}", "sql",
					       "SELECT * FROM orders WHERE id = ?",
					       "i", i)),
			0);
	assert_int_equal(record_append(w, "end", NULL), 0);
	{
		struct record_report r;
		struct stat before, after;
		size_t len;
		uint8_t *b;

		assert_int_equal(stat(p, &before), 0);
		assert_int_equal(record_close(w), 0);
		for (int i = 0; i < 300; i++) {
			record_syncer_stats(s, &st);
			if (!st.open_files && st.compressed_files)
				break;
			usleep(10000);
		}
		assert_int_equal(st.open_files, 0);
		/* Closed: compressed by the syncer, the same records. */
		assert_int_equal(st.compressed_files, 1);
		assert_int_equal(stat(p, &after), 0);
		assert_true(after.st_size * 2 < before.st_size);
		b = slurp(p, &len);
		assert_int_equal(record_verify(b, len, key1, 32, NULL, NULL,
					       &r),
				 0);
		assert_int_equal(r.records, NREC + 2);
		assert_true(r.ended);
		assert_false(r.torn);
		free(b);
	}
	record_syncer_stop(s);

	old_file(dir, "a-old" RECORD_SUFFIX, 7200);
	old_file(dir, "b-new" RECORD_SUFFIX, 10);
	old_file(dir, "c-newer" RECORD_SUFFIX, 5);
	snprintf(p, sizeof(p), "%s/not-a-recording.txt", dir);
	assert_int_equal(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	assert_int_equal(count_files(dir), 5);
	/* Age, one hour: at start, the old one goes. */
	cfg.max_age_s = 3600;
	s = record_syncer_start(&cfg, err, sizeof(err));
	assert_non_null(s);
	record_syncer_stats(s, &st);
	assert_int_equal(st.deleted_files, 1);
	snprintf(p, sizeof(p), "%s/a-old%s", dir, RECORD_SUFFIX);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(count_files(dir), 4);
	record_syncer_stop(s);
	/* Size, one byte: every closed recording goes, oldest first; an
	 * open one and other files stay. */
	cfg.max_age_s = 0;
	cfg.max_bytes = 1;
	s = record_syncer_start(&cfg, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(count_files(dir), 1);
	snprintf(p, sizeof(p), "%s/live%s", dir, RECORD_SUFFIX);
	w = record_create(p, 4, key1, 32, s, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(record_append(w, "start", NULL), 0);
	old_file(dir, "d-closed" RECORD_SUFFIX, 100);
	record_syncer_retention(s);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(count_files(dir), 2);
	assert_int_equal(record_close(w), 0);
	for (int i = 0; i < 300 && access(p, F_OK) == 0; i++) {
		record_syncer_retention(s);
		usleep(10000);
	}
	assert_int_equal(access(p, F_OK), -1);
	record_syncer_stop(s);
	snprintf(p, sizeof(p), "%s/not-a-recording.txt", dir);
	assert_int_equal(access(p, F_OK), 0);
	unlink(p);
	assert_int_equal(rmdir(dir), 0);
}

static void test_key_file(void **state)
{
	char p[] = "/tmp/bridle-key-XXXXXX", err[512];
	uint8_t key[64];
	int fd = mkstemp(p);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "short", 5), 5);
	assert_int_equal(record_key_load(p, true, key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "16 to 64 bytes"));
	assert_int_equal(write(fd, "0123456789abcdef", 16), 16);
	assert_int_equal(record_key_load(p, true, key, err, sizeof(err)), 21);
	assert_memory_equal(key, "short0123456789abcdef", 21);
	assert_int_equal(fchmod(fd, 0640), 0);
	assert_int_equal(record_key_load(p, true, key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	/* The CLI reads a key it is given without the mode check. */
	assert_int_equal(record_key_load(p, false, key, err, sizeof(err)), 21);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, key1, 32, 0), 32);
	assert_int_equal(pwrite(fd, key1, 32, 32), 32);
	assert_int_equal(pwrite(fd, "x", 1, 64), 1);
	assert_int_equal(record_key_load(p, false, key, err, sizeof(err)), -1);
	close(fd);
	unlink(p);
	assert_int_equal(record_key_load(p, false, key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
}


/* Fields formatted by hand: valid JSON whatever the bytes, cut to their
 * budget between characters; the record's own keys come first. */
static void test_record_buf(void **state)
{
	struct record_buf b = {};
	char err[256], *text;
	struct record_writer *w;
	struct record_report r;
	json_t *j;
	size_t len;
	uint8_t *data;
	static const char nasty[] = "a\"b\\c\n\x01\xff\xc3(\xe2\x82\xac\t";

	(void)state;
	record_buf_str(&b, "s", nasty, 256);
	record_buf_str(&b, "cut", "ééééééééééééééééééé", 16);
	record_buf_str(&b, "null", NULL, 16);
	record_buf_int(&b, "neg", -9223372036854775807LL - 1);
	record_buf_int(&b, "zero", 0);
	record_buf_raw(&b, "arr", "[1,null]");
	record_buf_put(&b, "");
	assert_false(b.failed);
	assert_int_equal(asprintf(&text, "{%s}", b.p + 1) > 0, 1);
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "s")),
			    "a\"b\\c\n\x01\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac\t");
	assert_true(strlen(json_string_value(json_object_get(j, "cut"))) <= 16);
	assert_true(json_is_null(json_object_get(j, "null")));
	assert_int_equal(json_integer_value(json_object_get(j, "neg")),
			 -9223372036854775807LL - 1);
	assert_int_equal(json_integer_value(json_object_get(j, "zero")), 0);
	json_decref(j);
	free(text);
	unlink(path);
	w = record_create(path, 9, key1, 32, NULL, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(record_stage_buf(w, "request", &b), 0);
	record_buf_reset(&b);
	assert_int_equal(record_stage_buf(w, "end", &b), 0);
	assert_int_equal(record_close(w), 0);
	record_buf_free(&b);
	data = slurp(path, &len);
	assert_int_equal(record_verify(data, len, key1, 32, NULL, NULL, &r), 0);
	assert_int_equal(r.records, 2);
	assert_true(r.ended);
	free(data);
}

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/bridle-rec-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_flip_every_byte),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_blocks_moved),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_stage_flush),
		cmocka_unit_test(test_syncer),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_record_buf),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
