// SPDX-License-Identifier: Apache-2.0
/*
 * The recording directory of a running enforcer: checked (root's, no
 * access for others) or created at start, one file per session named by
 * its start time and id, the helper thread (record.c) that fsyncs and
 * deletes old files, and the counters `bridle status` shows.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bridle/enforcer.h"
#include "bridle/log.h"
#include "bridle/recorder.h"
#include "bridle/session.h"

struct recorder {
	const struct config *cfg;
	struct record_syncer *syncer;
	/* Atomics: workers add. */
	uint64_t opened, closed, records, bytes;
	uint64_t failures, refused, unrecorded;
	int failing; /* the last attempt to write failed */
	pthread_mutex_t lock;
	char last_error[256];
	uint64_t last_error_ms;
};

static int check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "record_dir %s: cannot create it: %s",
			 dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "record_dir %s is not a directory", dir);
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "record_dir %s must belong to uid %u with no access "
			 "for others (chmod 700); it is %04o, uid %u",
			 dir, (unsigned)geteuid(),
			 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return -1;
	}
	return 0;
}

int recorder_start(struct enforcer *e, char *err, size_t errlen)
{
	const struct config *c = e->cfg;
	struct record_syncer_cfg sc = {
		.dir = c->record_dir,
		.fsync_ms = c->record_fsync_ms,
		.max_bytes = c->record_max_bytes,
		.max_age_s = (uint64_t)c->record_max_age_hours * 3600,
	};
	struct recorder *r;

	if (!c->record_dir)
		return 0;
	if (check_dir(c->record_dir, err, errlen))
		return -1;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->cfg = c;
	pthread_mutex_init(&r->lock, NULL);
	r->syncer = record_syncer_start(&sc, err, errlen);
	if (!r->syncer) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -1;
	}
	e->recorder = r;
	return 0;
}

void recorder_stop(struct enforcer *e)
{
	struct recorder *r = e->recorder;

	if (!r)
		return;
	record_syncer_stop(r->syncer);
	pthread_mutex_destroy(&r->lock);
	free(r);
	e->recorder = NULL;
}

struct record_writer *recorder_open(struct recorder *r,
				    const struct session_summary *sum, char *id,
				    size_t idlen, char *err, size_t errlen)
{
	time_t t = (time_t)(sum->start_wall_ms / 1000);
	struct record_writer *w = NULL;
	char stamp[32], path[4096];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	/* Session ids start again at 1 with each run: a name taken by an
	 * earlier run in the same second gets a suffix. */
	for (int n = 1; n <= 9 && !w; n++) {
		if (n == 1)
			snprintf(id, idlen, "%s-%llu", stamp,
				 (unsigned long long)sum->id);
		else
			snprintf(id, idlen, "%s-%llu-%d", stamp,
				 (unsigned long long)sum->id, n);
		snprintf(path, sizeof(path), "%s/%s%s", r->cfg->record_dir, id,
			 RECORD_SUFFIX);
		w = record_create(path, sum->id, r->cfg->record_key,
				  r->cfg->record_key_len, r->syncer, err,
				  errlen);
		if (!w && errno != EEXIST)
			break;
	}
	if (w)
		__atomic_add_fetch(&r->opened, 1, __ATOMIC_RELAXED);
	return w;
}

bool recorder_refuses(const struct recorder *r)
{
	return r->cfg->record_on_error == RECORD_ON_ERROR_REFUSE;
}

void recorder_failed(struct recorder *r, uint64_t session, const char *what,
		     int err, bool continues)
{
	__atomic_add_fetch(&r->failures, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&r->failing, 1, __ATOMIC_RELAXED);
	if (continues)
		__atomic_add_fetch(&r->unrecorded, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&r->lock);
	snprintf(r->last_error, sizeof(r->last_error), "session %llu: %s: %s",
		 (unsigned long long)session, what, strerror(err));
	r->last_error_ms = (uint64_t)log_wall_ms();
	pthread_mutex_unlock(&r->lock);
	log_json(LOG_ERROR, "recording_failed",
		 json_pack("{s:I,s:s,s:s,s:s}", "session", (json_int_t)session,
			   "while", what, "error", strerror(err), "then",
			   continues ? "the session goes on UNRECORDED "
				       "(record_on_error: continue)" :
				       "its requests are refused "
				       "(record_on_error: refuse)"));
}

void recorder_refused(struct recorder *r)
{
	__atomic_add_fetch(&r->refused, 1, __ATOMIC_RELAXED);
}

void recorder_closed(struct recorder *r, uint64_t records, uint64_t bytes)
{
	__atomic_add_fetch(&r->closed, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->records, records, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->bytes, bytes, __ATOMIC_RELAXED);
}

void recorder_wrote(struct recorder *r)
{
	if (__atomic_load_n(&r->failing, __ATOMIC_RELAXED))
		__atomic_store_n(&r->failing, 0, __ATOMIC_RELAXED);
}

#define LOAD(x) ((json_int_t)__atomic_load_n(&(x), __ATOMIC_RELAXED))

json_t *recorder_status_json(struct recorder *r)
{
	struct record_syncer_stats st;
	json_t *j;

	if (!r)
		return json_pack("{s:b}", "enabled", 0);
	record_syncer_stats(r->syncer, &st);
	j = json_pack(
		"{s:b,s:s,s:s,s:i,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
		"s:I,s:I,s:I}",
		"enabled", 1, "dir", r->cfg->record_dir, "on_error",
		recorder_refuses(r) ? "refuse" : "continue", "fsync_ms",
		(int)r->cfg->record_fsync_ms, "failing", LOAD(r->failing) != 0,
		"sessions", LOAD(r->opened), "open_files",
		(json_int_t)st.open_files, "closed", LOAD(r->closed),
		"records_closed", LOAD(r->records), "bytes_closed",
		LOAD(r->bytes), "write_failures", LOAD(r->failures),
		"refused_requests", LOAD(r->refused), "unrecorded_sessions",
		LOAD(r->unrecorded), "fsyncs", (json_int_t)st.fsyncs,
		"dir_bytes", (json_int_t)st.dir_bytes, "deleted_files",
		(json_int_t)st.deleted_files, "max_bytes",
		(json_int_t)r->cfg->record_max_bytes, "max_age_hours",
		(json_int_t)r->cfg->record_max_age_hours);
	pthread_mutex_lock(&r->lock);
	if (r->last_error[0]) {
		json_object_set_new(j, "last_error",
				    json_string(r->last_error));
		json_object_set_new(j, "last_error_ms",
				    json_integer((json_int_t)r->last_error_ms));
	}
	pthread_mutex_unlock(&r->lock);
	json_object_set_new(j, "compressed_files",
			    json_integer((json_int_t)st.compressed_files));
	json_object_set_new(j, "compressed_saved_bytes",
			    json_integer((json_int_t)st.compressed_saved));
	if (st.errors)
		json_object_set_new(j, "sync_errors",
				    json_pack("{s:I,s:s}", "count",
					      (json_int_t)st.errors, "last",
					      st.last_error));
	return j;
}
