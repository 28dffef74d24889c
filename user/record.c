// SPDX-License-Identifier: Apache-2.0
/*
 * Session recordings: the file format, its writer and its verifying
 * reader (see include/bridle/record.h). The writer hands every record to
 * write(2) before it returns, compressed with a sync flush so the bytes
 * on disk decode up to the last record; the reader trusts nothing it
 * reads: lengths, markers and the compressed stream are all checked, and
 * every record must carry the keyed chain value its bytes give.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>

#include "bridle/log.h"
#include "bridle/record.h"

#define CHAIN_LABEL "bridle-rec-1\n"
#define MAX_KEY 64
#define MAX_BLOCK_OUT (64u << 20) /* decoded bytes of one block, at most */
/* On the event loop records are stored, not compressed (a copy, with the
 * smallest window and tables: 3 KiB a session); the syncer compresses a
 * recording once it is closed (syncer_compress). */
#define ZLEVEL 0
#define ZWBITS 9
#define ZMEMLEVEL 1
#define RETENTION_MS 60000
#define COMPRESS_MAX (256u << 20) /* bytes of a file compressed at close */

/* A file the syncer fsyncs and, once its session ended, closes. The
 * writer sets dirty and closing; only the syncer frees it. */
struct rec_file {
	struct rec_file *next;
	int fd;
	int dirty; /* atomic: written since the last fsync */
	int closing; /* atomic: the writer is done with it */
	int error; /* atomic: errno of a failed fsync */
	char name[256]; /* within the directory, for retention */
};

struct record_syncer {
	struct record_syncer_cfg cfg;
	char *dir;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct rec_file *files; /* under lock */
	uint64_t last_retention_ms;
	struct record_syncer_stats st; /* under lock */
};

struct record_writer {
	int fd;
	struct rec_file *rf; /* with a syncer */
	struct record_syncer *syncer;
	z_stream z;
	bool in_block;
	bool unflushed; /* records in deflate not yet flushed out of it */
	bool failed;
	uint32_t in_blk; /* records in the open block */
	uint64_t seq; /* the next record's */
	uint64_t written; /* bytes */
	uint8_t h[32]; /* the chain value of the last record */
	uint8_t key[MAX_KEY];
	size_t keylen;
	uint8_t *buf; /* staged, not yet written */
	size_t len, cap;
	EVP_MAC_CTX *mac; /* HMAC keyed with key, re-initialised per record */
	char *line; /* one record line, before compression */
	size_t line_cap;
};

static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* h = HMAC-SHA256(key, prev || data). */
static int chain(const uint8_t *key, size_t keylen, const uint8_t prev[32],
		 size_t prevlen, const void *data, size_t len, uint8_t out[32])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx;
	size_t outl = 0;
	int ok;

	pthread_once(&hmac_once, hmac_fetch);
	ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	ok = ctx && EVP_MAC_init(ctx, key, keylen, params) &&
	     EVP_MAC_update(ctx, prev, prevlen) &&
	     EVP_MAC_update(ctx, data, len) &&
	     EVP_MAC_final(ctx, out, &outl, 32) && outl == 32;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* The writer's chain step: its HMAC context keeps the key, so a record
 * costs no key set-up and no allocation. */
static int chain_w(struct record_writer *w, const void *data, size_t len)
{
	size_t outl = 0;

	if (!w->mac) {
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
			OSSL_PARAM_construct_end(),
		};

		pthread_once(&hmac_once, hmac_fetch);
		w->mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
		if (!w->mac || !EVP_MAC_init(w->mac, w->key, w->keylen, params))
			return -1;
	} else if (!EVP_MAC_init(w->mac, NULL, 0, NULL)) {
		return -1;
	}
	return EVP_MAC_update(w->mac, w->h, 32) &&
			       EVP_MAC_update(w->mac, data, len) &&
			       EVP_MAC_final(w->mac, w->h, &outl, 32) &&
			       outl == 32 ?
		       0 :
		       -1;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int buf_put(struct record_writer *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *nb;

		while (cap < w->len + n)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (!nb)
			return -ENOMEM;
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

/* Write the whole buffer (short writes and EINTR retried). */
static int buf_flush(struct record_writer *w)
{
	size_t off = 0;

	while (off < w->len) {
		ssize_t n = write(w->fd, w->buf + off, w->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			/* Nothing of this write stays behind: a reader would
			 * take a cut that falls after a whole line for a
			 * record written, and its request was refused. */
			(void)!ftruncate(w->fd, (off_t)w->written);
			w->failed = true;
			return -e;
		}
		off += (size_t)n;
	}
	w->written += off;
	w->len = 0;
	if (w->rf && off)
		__atomic_store_n(&w->rf->dirty, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Compress @n bytes of @p (or finish, with @flush Z_FINISH) into buf. */
static int deflate_into(struct record_writer *w, const void *p, size_t n,
			int flush)
{
	uint8_t out[16384];
	int r;

	w->z.next_in = (Bytef *)p;
	w->z.avail_in = (uInt)n;
	do {
		w->z.next_out = out;
		w->z.avail_out = sizeof(out);
		r = deflate(&w->z, flush);
		if (r == Z_STREAM_ERROR)
			return -EIO;
		if (buf_put(w, out, sizeof(out) - w->z.avail_out))
			return -ENOMEM;
	} while (w->z.avail_out == 0 ||
		 (flush == Z_FINISH && r != Z_STREAM_END));
	return 0;
}

/* ------------------------------------------------------------ syncer */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void syncer_error(struct record_syncer *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void syncer_error(struct record_syncer *s, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->lock);
	s->st.errors++;
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", msg);
	pthread_mutex_unlock(&s->lock);
	log_msg(LOG_WARN, "recording", "%s", msg);
}

static int syncer_add(struct record_syncer *s, struct record_writer *w,
		      const char *path)
{
	struct rec_file *f = calloc(1, sizeof(*f));
	const char *base = strrchr(path, '/');

	if (!f)
		return -ENOMEM;
	f->fd = w->fd;
	snprintf(f->name, sizeof(f->name), "%s", base ? base + 1 : path);
	pthread_mutex_lock(&s->lock);
	f->next = s->files;
	s->files = f;
	s->st.open_files++;
	pthread_mutex_unlock(&s->lock);
	w->rf = f;
	w->syncer = s;
	return 0;
}

static void syncer_release(struct record_syncer *s, struct rec_file *f)
{
	__atomic_store_n(&f->closing, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&s->lock);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Compress the closed recording @name of @s's directory. The writer
 * stores records without compressing them (deflate's stored blocks: on
 * the event loop, a record costs a copy, not a compression); here each
 * block is inflated and deflated again in one go. The records, the
 * block markers and the seals are the same bytes, so the chain is
 * untouched and a reader sees no difference. The new file replaces the
 * old by rename once it is written and fsynced; on any surprise the
 * file stays as it is (it is valid either way).
 */
static void syncer_compress(struct record_syncer *s, const char *name)
{
	char path[4096], tmp[4200];
	uint8_t *in = NULL, *blk = NULL, *out = NULL;
	size_t inlen = 0, blkcap = 0, olen = 0, ocap = 0;
	const uint8_t *p, *end, *nl;
	struct stat st;
	int fd, ok = 0;

	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", s->dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* Larger recordings stay stored: this thread holds a file twice
	 * in memory while it works, and fsyncs others meanwhile. */
	if (fstat(fd, &st) == 0 && st.st_size > 0 &&
	    (uint64_t)st.st_size <= COMPRESS_MAX &&
	    (in = malloc((size_t)st.st_size))) {
		ssize_t n;

		while (inlen < (size_t)st.st_size &&
		       (n = read(fd, in + inlen, (size_t)st.st_size - inlen)) >
			       0)
			inlen += (size_t)n;
	}
	close(fd);
	if (!in || inlen != (size_t)st.st_size)
		goto out;
	p = in;
	end = in + inlen;
	/* The magic and the header, as they are. */
	nl = inlen > strlen(RECORD_MAGIC) ?
		     memchr(in + strlen(RECORD_MAGIC), '\n',
			    inlen - strlen(RECORD_MAGIC)) :
		     NULL;
	if (!nl || memcmp(in, RECORD_MAGIC, strlen(RECORD_MAGIC)))
		goto out;
	ocap = inlen + 1024;
	out = malloc(ocap);
	if (!out)
		goto out;
	memcpy(out, in, (size_t)(nl + 1 - in));
	olen = (size_t)(nl + 1 - in);
	p = nl + 1;
	while (p < end) {
		z_stream z = {};
		size_t blen = 0, mlen;
		const uint8_t *mark_end, *seal_end;
		int zr;

		/* "BLK <n>\n" */
		mark_end =
			memchr(p, '\n',
			       (size_t)(end - p) < 32 ? (size_t)(end - p) : 32);
		if (!mark_end || memcmp(p, "BLK ", 4))
			goto out;
		mlen = (size_t)(mark_end + 1 - p);
		memcpy(out + olen, p, mlen);
		olen += mlen;
		p = mark_end + 1;
		if (inflateInit2(&z, -15) != Z_OK)
			goto out;
		z.next_in = (Bytef *)p;
		z.avail_in = (uInt)(end - p);
		do {
			if (blen == blkcap) {
				uint8_t *nb;

				blkcap = blkcap ? blkcap * 2 : 65536;
				nb = blkcap <= MAX_BLOCK_OUT ?
					     realloc(blk, blkcap) :
					     NULL;
				if (!nb) {
					inflateEnd(&z);
					goto out;
				}
				blk = nb;
			}
			z.next_out = blk + blen;
			z.avail_out = (uInt)(blkcap - blen);
			zr = inflate(&z, Z_NO_FLUSH);
			blen = blkcap - z.avail_out;
		} while (zr == Z_OK);
		p += z.total_in;
		inflateEnd(&z);
		if (zr != Z_STREAM_END)
			goto out; /* a torn or damaged block: leave it */
		/* The new block fits in what the old one took (stored blocks
		 * are never smaller), plus deflate's worst case. */
		{
			z_stream d = {};
			size_t room = ocap - olen;

			if (deflateInit2(&d, 6, Z_DEFLATED, -15, 8,
					 Z_DEFAULT_STRATEGY) != Z_OK)
				goto out;
			if (room < deflateBound(&d, blen) + 160) {
				uint8_t *no;

				ocap = olen + deflateBound(&d, blen) + 160 +
				       (size_t)(end - p);
				no = realloc(out, ocap);
				if (!no) {
					deflateEnd(&d);
					goto out;
				}
				out = no;
			}
			d.next_in = blk;
			d.avail_in = (uInt)blen;
			d.next_out = out + olen;
			d.avail_out = (uInt)(ocap - olen);
			zr = deflate(&d, Z_FINISH);
			olen += d.total_out;
			deflateEnd(&d);
			if (zr != Z_STREAM_END)
				goto out;
		}
		/* "\nEND <count> <hex>\n", as it is. */
		if ((size_t)(end - p) < 6 || memcmp(p, "\nEND ", 5))
			goto out;
		seal_end = memchr(p + 1, '\n',
				  (size_t)(end - p - 1) < 128 ?
					  (size_t)(end - p - 1) :
					  128);
		if (!seal_end)
			goto out;
		if (ocap - olen < (size_t)(seal_end + 1 - p))
			goto out;
		memcpy(out + olen, p, (size_t)(seal_end + 1 - p));
		olen += (size_t)(seal_end + 1 - p);
		p = seal_end + 1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	{
		size_t off = 0;
		ssize_t n = 0;

		while (off < olen && (n = write(fd, out + off, olen - off)) > 0)
			off += (size_t)n;
		ok = off == olen && fsync(fd) == 0;
	}
	close(fd);
	if (!ok || rename(tmp, path)) {
		unlink(tmp);
		ok = 0;
	}
	if (ok &&
	    (fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd); /* the rename, on disk */
		close(fd);
	}
	if (ok) {
		pthread_mutex_lock(&s->lock);
		s->st.compressed_files++;
		s->st.compressed_saved += inlen > olen ? inlen - olen : 0;
		pthread_mutex_unlock(&s->lock);
	}
out:
	free(in);
	free(blk);
	free(out);
}

/* Fsync what was written; fsync, close and forget what was released. */
static void syncer_pass(struct record_syncer *s)
{
	struct rec_file *f, **pp, *done = NULL;

	pthread_mutex_lock(&s->lock);
	f = s->files;
	pthread_mutex_unlock(&s->lock);
	/* New files go in at the head, and only this thread unlinks:
	 * walking from a snapshot of the head is safe without the lock. */
	for (; f; f = f->next) {
		bool closing = __atomic_load_n(&f->closing, __ATOMIC_ACQUIRE);

		if (!__atomic_exchange_n(&f->dirty, 0, __ATOMIC_ACQ_REL) &&
		    !closing)
			continue;
		if (fsync(f->fd)) {
			int e = errno;

			__atomic_store_n(&f->error, e, __ATOMIC_RELEASE);
			syncer_error(s, "fsync %s: %s", f->name, strerror(e));
		} else {
			pthread_mutex_lock(&s->lock);
			s->st.fsyncs++;
			pthread_mutex_unlock(&s->lock);
		}
	}
	pthread_mutex_lock(&s->lock);
	for (pp = &s->files; (f = *pp);) {
		if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE) &&
		    !__atomic_load_n(&f->dirty, __ATOMIC_ACQUIRE)) {
			*pp = f->next;
			f->next = done;
			done = f;
			s->st.open_files--;
		} else {
			pp = &f->next;
		}
	}
	pthread_mutex_unlock(&s->lock);
	while (done) {
		f = done;
		done = f->next;
		close(f->fd);
		if (!f->error)
			syncer_compress(s, f->name);
		free(f);
	}
}

struct rec_entry {
	char name[256];
	uint64_t size;
	int64_t mtime;
};

static int oldest_first(const void *a, const void *b)
{
	const struct rec_entry *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool is_open(struct record_syncer *s, const char *name)
{
	bool open = false;

	pthread_mutex_lock(&s->lock);
	for (struct rec_file *f = s->files; f && !open; f = f->next)
		open = strcmp(f->name, name) == 0;
	pthread_mutex_unlock(&s->lock);
	return open;
}

/* Delete the oldest recordings over the age or size limit, never an
 * open one. */
void record_syncer_retention(struct record_syncer *s)
{
	struct rec_entry *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0, deleted = 0, deleted_bytes = 0;
	time_t now = time(NULL);
	DIR *d = opendir(s->dir);
	struct dirent *e;

	if (!d) {
		syncer_error(s, "cannot read %s: %s", s->dir, strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;
		size_t l = strlen(e->d_name);

		if (l < 6 || l >= sizeof(v->name) ||
		    strcmp(e->d_name + l - 5, RECORD_SUFFIX) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			struct rec_entry *nv;

			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		memcpy(v[n].name, e->d_name, l + 1);
		v[n].size = (uint64_t)st.st_blocks * 512;
		v[n].mtime = st.st_mtime;
		total += v[n].size;
		n++;
	}
	if (v)
		qsort(v, n, sizeof(*v), oldest_first);
	for (size_t i = 0; i < n; i++) {
		bool old = s->cfg.max_age_s &&
			   now - v[i].mtime > (int64_t)s->cfg.max_age_s;
		bool big = s->cfg.max_bytes && total > s->cfg.max_bytes;

		if (!old && !big)
			continue;
		if (is_open(s, v[i].name))
			continue;
		if (unlinkat(dirfd(d), v[i].name, 0)) {
			if (errno != ENOENT)
				syncer_error(s, "cannot delete %s: %s",
					     v[i].name, strerror(errno));
			continue;
		}
		log_msg(LOG_INFO, "recording", "deleted %s (%s)", v[i].name,
			old ? "older than record_max_age_hours" :
			      "over record_max_bytes");
		total -= v[i].size;
		deleted++;
		deleted_bytes += v[i].size;
	}
	closedir(d);
	free(v);
	pthread_mutex_lock(&s->lock);
	s->st.dir_bytes = total;
	s->st.deleted_files += deleted;
	s->st.deleted_bytes += deleted_bytes;
	pthread_mutex_unlock(&s->lock);
}

static void *syncer_main(void *arg)
{
	struct record_syncer *s = arg;
	bool stop = false;

	while (!stop) {
		struct timespec ts;
		uint64_t now;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += s->cfg.fsync_ms / 1000;
		ts.tv_nsec += (long)(s->cfg.fsync_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&s->lock);
		if (!s->stop)
			pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		stop = s->stop;
		pthread_mutex_unlock(&s->lock);
		syncer_pass(s);
		now = mono_ms();
		if ((s->cfg.max_bytes || s->cfg.max_age_s) &&
		    now - s->last_retention_ms >= RETENTION_MS) {
			s->last_retention_ms = now;
			record_syncer_retention(s);
		}
	}
	return NULL;
}

/* What a compression cut short left (bridle stopped during it). */
static void remove_stale(struct record_syncer *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	size_t sl = strlen(RECORD_SUFFIX ".tmp");

	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l > sl && !strcmp(e->d_name + l - sl, RECORD_SUFFIX ".tmp"))
			unlinkat(dirfd(d), e->d_name, 0);
	}
	if (d)
		closedir(d);
}

struct record_syncer *record_syncer_start(const struct record_syncer_cfg *cfg,
					  char *err, size_t errlen)
{
	struct record_syncer *s = calloc(1, sizeof(*s));

	if (!s || !(s->dir = strdup(cfg->dir))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	s->cfg.dir = s->dir;
	if (!s->cfg.fsync_ms)
		s->cfg.fsync_ms = 1000;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	remove_stale(s);
	/* The limits apply at once, then every RETENTION_MS. */
	if (s->cfg.max_bytes || s->cfg.max_age_s) {
		record_syncer_retention(s);
		s->last_retention_ms = mono_ms();
	}
	if (pthread_create(&s->thread, NULL, syncer_main, s)) {
		snprintf(err, errlen, "cannot start the recording thread");
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		free(s->dir);
		free(s);
		return NULL;
	}
	return s;
}

void record_syncer_stop(struct record_syncer *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	/* Writers still open (they should not be) keep their fds. */
	while (s->files) {
		struct rec_file *f = s->files;

		s->files = f->next;
		fsync(f->fd);
		close(f->fd);
		free(f);
	}
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
}

void record_syncer_stats(struct record_syncer *s,
			 struct record_syncer_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
}

int record_key_load(const char *path, bool strict, uint8_t key[MAX_KEY],
		    char *err, size_t errlen)
{
	struct stat st;
	uint8_t buf[MAX_KEY + 1];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open the recording key %s: %s",
			 path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "the recording key %s is not a file",
			 path);
		close(fd);
		return -1;
	}
	if (strict && ((st.st_mode & 077) || st.st_uid != geteuid())) {
		snprintf(err, errlen,
			 "the recording key %s must belong to uid %u and be "
			 "readable by its owner only (chmod 600); it is %04o, "
			 "uid %u",
			 path, (unsigned)geteuid(),
			 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n >= 16 && n <= MAX_KEY)
		memcpy(key, buf, (size_t)n);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (n < 16 || n > MAX_KEY) {
		snprintf(
			err, errlen,
			n < 0 ? "cannot read the recording key %s" :
				"the recording key %s must hold 16 to 64 bytes "
				"(head -c 32 /dev/urandom > FILE)",
			path);
		return -1;
	}
	return (int)n;
}

struct record_writer *record_create(const char *path, uint64_t session,
				    const uint8_t *key, size_t keylen,
				    struct record_syncer *syncer, char *err,
				    size_t errlen)
{
	struct record_writer *w;
	uint8_t nonce[16], zero[32] = {};
	char nhex[33], *hdr;
	json_t *h;
	int r = 0;

	if (!keylen || keylen > MAX_KEY) {
		snprintf(err, errlen, "a recording key of 1 to %d bytes",
			 MAX_KEY);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND,
		     0600);
	if (w->fd < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot create %s: %s", path,
			 strerror(e));
		free(w);
		errno = e;
		return NULL;
	}
	memcpy(w->key, key, keylen);
	w->keylen = keylen;
	w->seq = 1;
	/* Known to the syncer from the start: retention never takes it for
	 * a closed file. */
	if (syncer && syncer_add(syncer, w, path)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* A nonce binds the chain to this file: records of another session
	 * (even one with the same id) do not verify in it. */
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		snprintf(err, errlen, "no randomness");
		goto fail;
	}
	hex(nonce, sizeof(nonce), nhex);
	h = json_pack("{s:I,s:s,s:I}", "session", (json_int_t)session, "nonce",
		      nhex, "started_ms", (json_int_t)log_wall_ms());
	hdr = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(h);
	if (!hdr) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = chain(w->key, w->keylen, zero, 0, hdr, strlen(hdr), w->h);
	if (!r)
		r = buf_put(w, RECORD_MAGIC, strlen(RECORD_MAGIC)) ||
		    buf_put(w, hdr, strlen(hdr)) || buf_put(w, "\n", 1);
	free(hdr);
	if (r)
		r = -ENOMEM;
	else
		r = buf_flush(w);
	if (r) {
		snprintf(err, errlen, "cannot write %s: %s", path,
			 strerror(-r));
		goto fail;
	}
	return w;
fail:
	unlink(path);
	if (w->rf) {
		/* The syncer closes it (and leaves it be: it is gone). */
		__atomic_store_n(&w->rf->error, EIO, __ATOMIC_RELEASE);
		syncer_release(w->syncer, w->rf);
	} else {
		close(w->fd);
	}
	OPENSSL_cleanse(w->key, sizeof(w->key));
	free(w->buf);
	free(w);
	errno = r < 0 ? -r : EIO;
	return NULL;
}

static int close_block(struct record_writer *w)
{
	char tail[128], hh[65];
	int r;

	if (!w->in_block)
		return 0;
	r = deflate_into(w, NULL, 0, Z_FINISH);
	deflateEnd(&w->z);
	w->in_block = false;
	w->unflushed = false;
	if (r)
		return r;
	hex(w->h, 32, hh);
	snprintf(tail, sizeof(tail), "\nEND %u %s\n", w->in_blk, hh);
	w->in_blk = 0;
	return buf_put(w, tail, strlen(tail)) ? -ENOMEM : 0;
}

/* @v in decimal at @out (room for 21 bytes); returns the length. */
static size_t put_int(char *out, long long v)
{
	char t[24];
	size_t n = 0, o = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
				       (unsigned long long)v;

	do {
		t[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		out[o++] = '-';
	while (n)
		out[o++] = t[--n];
	out[o] = '\0';
	return o;
}

/* The keys every record starts with: a caller's fields may not hold
 * them. */
static const char *const own_keys[] = { "seq", "mono_ns", "wall_ms", "kind" };

/*
 * Stage a record of @kind whose fields are @frag (@fl bytes of JSON
 * members, "\"a\":1,\"b\":2", or none): the record's own keys first.
 */
static int stage_text(struct record_writer *w, const char *kind,
		      const char *frag, size_t fl)
{
	struct timespec mono, wall;
	char hh[65], head[160];
	size_t hl, tl, ll;
	int r = -ENOMEM;

	if (w->failed)
		return -EIO;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &wall);
	/* {"seq":N,"mono_ns":N,"wall_ms":N,"kind":"K" (no printf: every
	 * record has one) */
	if (strlen(kind) > 32 || strpbrk(kind, "\"\\"))
		goto out;
	memcpy(head, "{\"seq\":", 7);
	hl = 7 + put_int(head + 7, (long long)w->seq);
	memcpy(head + hl, ",\"mono_ns\":", 11);
	hl += 11;
	hl += put_int(head + hl,
		      (long long)mono.tv_sec * 1000000000 + mono.tv_nsec);
	memcpy(head + hl, ",\"wall_ms\":", 11);
	hl += 11;
	hl += put_int(head + hl,
		      (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000);
	memcpy(head + hl, ",\"kind\":\"", 9);
	hl += 9;
	memcpy(head + hl, kind, strlen(kind));
	hl += strlen(kind);
	head[hl++] = '"';
	tl = hl + (fl ? 1 + fl : 0) + 1;
	ll = tl + 66;
	if (ll > RECORD_MAX_LINE)
		goto out;
	if (ll > w->line_cap) {
		char *nl = realloc(w->line, ll);

		if (!nl)
			goto out;
		w->line = nl;
		w->line_cap = ll;
	}
	memcpy(w->line, head, hl);
	if (fl) {
		w->line[hl] = ',';
		memcpy(w->line + hl + 1, frag, fl);
	}
	w->line[tl - 1] = '}';
	if (chain_w(w, w->line, tl)) {
		r = -EIO;
		goto out;
	}
	hex(w->h, 32, hh);
	/* "<json>\t<hex>\n" */
	w->line[tl] = '\t';
	memcpy(w->line + tl + 1, hh, 64);
	w->line[tl + 65] = '\n';
	if (!w->in_block) {
		char mark[40];

		memset(&w->z, 0, sizeof(w->z));
		if (deflateInit2(&w->z, ZLEVEL, Z_DEFLATED, -ZWBITS, ZMEMLEVEL,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			goto out;
		w->in_block = true;
		snprintf(mark, sizeof(mark), "BLK %llu\n",
			 (unsigned long long)w->seq);
		if (buf_put(w, mark, strlen(mark)))
			goto out;
	}
	/* Flushed (to a byte boundary, decodable) when written. */
	if ((r = deflate_into(w, w->line, ll, Z_NO_FLUSH)))
		goto out;
	w->unflushed = true;
	w->seq++;
	if (++w->in_blk >= RECORD_BLOCK_RECORDS)
		r = close_block(w);
	else
		r = 0;
out:
	if (r)
		w->failed = true;
	return r;
}

int record_stage(struct record_writer *w, const char *kind, json_t *fields)
{
	char *ft = NULL;
	size_t fl = 0;
	int r;

	if (fields) {
		for (size_t i = 0; i < sizeof(own_keys) / sizeof(*own_keys);
		     i++)
			json_object_del(fields, own_keys[i]);
		ft = json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(fields);
		if (!ft || ft[0] != '{') {
			free(ft);
			w->failed = true;
			return -ENOMEM;
		}
		fl = strlen(ft) - 2; /* without the braces */
	}
	r = stage_text(w, kind, ft ? ft + 1 : NULL, fl);
	free(ft);
	return r;
}

int record_stage_buf(struct record_writer *w, const char *kind,
		     const struct record_buf *b)
{
	if (b->failed) {
		w->failed = true;
		return -ENOMEM;
	}
	/* Without the leading comma. */
	return stage_text(w, kind, b->len ? b->p + 1 : NULL,
			  b->len ? b->len - 1 : 0);
}

void record_buf_reset(struct record_buf *b)
{
	b->len = 0;
	b->failed = false;
}

void record_buf_free(struct record_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool buf_room(struct record_buf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->failed = true;
			return false;
		}
		b->p = np;
		b->cap = cap;
	}
	return true;
}

/* ",\"key\":" (keys are the caller's constants). */
static void buf_key(struct record_buf *b, const char *key)
{
	size_t n = strlen(key);

	b->p[b->len++] = ',';
	b->p[b->len++] = '"';
	memcpy(b->p + b->len, key, n);
	b->len += n;
	b->p[b->len++] = '"';
	b->p[b->len++] = ':';
	b->p[b->len] = '\0';
}

void record_buf_put_str(struct record_buf *b, const char *val, size_t budget)
{
	if (budget < 8)
		budget = 8;
	if (!buf_room(b, budget))
		return;
	b->len += log_json_str(b->p + b->len, b->cap - b->len, budget, val);
	b->p[b->len] = '\0';
}

void record_buf_put(struct record_buf *b, const char *raw)
{
	size_t n = strlen(raw);

	if (!buf_room(b, n))
		return;
	memcpy(b->p + b->len, raw, n + 1);
	b->len += n;
}

void record_buf_str(struct record_buf *b, const char *key, const char *val,
		    size_t budget)
{
	if (!buf_room(b, strlen(key) + 4))
		return;
	buf_key(b, key);
	record_buf_put_str(b, val, budget);
}

void record_buf_int(struct record_buf *b, const char *key, long long v)
{
	if (!buf_room(b, strlen(key) + 4 + 24))
		return;
	buf_key(b, key);
	b->len += put_int(b->p + b->len, v);
}

void record_buf_raw(struct record_buf *b, const char *key, const char *json)
{
	size_t n = strlen(json);

	if (!buf_room(b, strlen(key) + 4 + n))
		return;
	buf_key(b, key);
	memcpy(b->p + b->len, json, n + 1);
	b->len += n;
}

int record_flush(struct record_writer *w)
{
	int e;

	if (w->failed)
		return -EIO;
	if (w->rf && (e = __atomic_load_n(&w->rf->error, __ATOMIC_ACQUIRE))) {
		w->failed = true;
		return -e;
	}
	/* What deflate holds, out to a byte boundary: the file decodes to
	 * the last record written, whatever comes after. */
	if (w->unflushed && w->in_block &&
	    (e = deflate_into(w, NULL, 0, Z_SYNC_FLUSH))) {
		w->failed = true;
		return e;
	}
	w->unflushed = false;
	return w->len ? buf_flush(w) : 0;
}

size_t record_pending(const struct record_writer *w)
{
	return w->len + (w->unflushed ? 1 : 0);
}

int record_append(struct record_writer *w, const char *kind, json_t *fields)
{
	int r = record_stage(w, kind, fields);

	return r ? r : record_flush(w);
}

int record_sync(struct record_writer *w)
{
	return fsync(w->fd) ? -errno : 0;
}

int record_close(struct record_writer *w)
{
	return record_finish(w, NULL, NULL);
}

int record_finish(struct record_writer *w, uint64_t *records, uint64_t *bytes)
{
	int r = w->failed ? -EIO : close_block(w);

	if (!r)
		r = buf_flush(w);
	if (w->in_block)
		deflateEnd(&w->z);
	if (records)
		*records = w->seq - 1;
	if (bytes)
		*bytes = w->written;
	if (w->rf) {
		/* The syncer fsyncs and closes it, off the caller's loop. */
		int e = __atomic_load_n(&w->rf->error, __ATOMIC_ACQUIRE);

		if (!r && e)
			r = -e;
		syncer_release(w->syncer, w->rf);
	} else {
		if (!r && fsync(w->fd))
			r = -errno;
		if (close(w->fd) && !r)
			r = -errno;
	}
	OPENSSL_cleanse(w->key, sizeof(w->key));
	EVP_MAC_CTX_free(w->mac);
	free(w->line);
	free(w->buf);
	free(w);
	return r;
}

uint64_t record_count(const struct record_writer *w)
{
	return w->seq - 1;
}

uint64_t record_bytes(const struct record_writer *w)
{
	return w->written;
}

/* ------------------------------------------------------------- reading */

static int fail(struct record_report *r, int64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct record_report *r, int64_t seq, const char *fmt, ...)
{
	va_list ap;

	r->bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* "<prefix><decimal>" then @end at @p; returns the byte after it. */
static const uint8_t *parse_num(const uint8_t *p, const uint8_t *end,
				uint64_t *out)
{
	uint64_t v = 0;
	const uint8_t *s = p;

	while (p < end && *p >= '0' && *p <= '9' && p - s < 19)
		v = v * 10 + (uint64_t)(*p++ - '0');
	if (p == s)
		return NULL;
	*out = v;
	return p;
}

static bool unhex(const uint8_t *s, uint8_t out[32])
{
	for (int i = 0; i < 64; i++) {
		int c = s[i], v = c >= '0' && c <= '9' ? c - '0' :
				  c >= 'a' && c <= 'f' ? c - 'a' + 10 :
							 -1;

		if (v < 0)
			return false;
		if (i % 2)
			out[i / 2] |= (uint8_t)v;
		else
			out[i / 2] = (uint8_t)(v << 4);
	}
	return true;
}

/* One decoded line "<json>\t<hex>": verify it against the chain. */
static int one_record(const uint8_t *line, size_t n, const uint8_t *key,
		      size_t keylen, uint8_t h[32], uint64_t seq,
		      void (*cb)(json_t *, void *), void *arg,
		      struct record_report *r)
{
	uint8_t want[32], got[32];
	json_t *j, *s;
	json_error_t je;
	size_t jl;

	if (n < 66 || line[n - 65] != '\t' || !unhex(line + n - 64, want))
		return fail(r, (int64_t)seq,
			    "record %llu: malformed (no chain value)",
			    (unsigned long long)seq);
	jl = n - 65;
	if (chain(key, keylen, h, 32, line, jl, got) ||
	    CRYPTO_memcmp(got, want, 32) != 0)
		return fail(r, (int64_t)seq,
			    "record %llu: does not verify (changed, reordered, "
			    "spliced from another session, or sealed with "
			    "another key)",
			    (unsigned long long)seq);
	j = json_loadb((const char *)line, jl, 0, &je);
	s = json_object_get(j, "seq");
	if (!json_is_object(j) || !json_is_integer(s) ||
	    (uint64_t)json_integer_value(s) != seq) {
		json_decref(j);
		return fail(r, (int64_t)seq,
			    "record %llu: verifies but is not record %llu",
			    (unsigned long long)seq, (unsigned long long)seq);
	}
	memcpy(h, got, 32);
	r->records++;
	r->ended = json_is_string(json_object_get(j, "kind")) &&
		   strcmp(json_string_value(json_object_get(j, "kind")),
			  "end") == 0;
	if (cb)
		cb(j, arg);
	json_decref(j);
	return 0;
}

int record_verify(const uint8_t *data, size_t len, const uint8_t *key,
		  size_t keylen, void (*cb)(json_t *record, void *arg),
		  void *arg, struct record_report *r)
{
	const uint8_t *p = data, *end = data + len, *nl;
	uint8_t h[32], zero[32] = {};
	uint64_t seq = 1;
	uint8_t *out = NULL;
	size_t ocap = 0;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	r->bad_seq = -1;
	if (len < strlen(RECORD_MAGIC) ||
	    memcmp(data, RECORD_MAGIC, strlen(RECORD_MAGIC)) != 0)
		return fail(r, -1, "not a bridle recording (bad magic)");
	p += strlen(RECORD_MAGIC);
	nl = memchr(p, '\n',
		    (size_t)(end - p) < 4096 ? (size_t)(end - p) : 4096);
	if (!nl)
		return fail(r, -1, "header: no end of line");
	if (chain(key, keylen, zero, 0, p, (size_t)(nl - p), h))
		return fail(r, -1, "cannot compute HMAC");
	p = nl + 1;
	while (p < end) {
		size_t off = (size_t)(p - data), olen = 0, start;
		uint64_t first;
		uint32_t nrec = 0;
		z_stream z = {};
		int zr = Z_OK;
		const uint8_t *q;

		if ((size_t)(end - p) < 4 || memcmp(p, "BLK ", 4) ||
		    !(q = parse_num(p + 4, end, &first)) || q >= end ||
		    *q != '\n') {
			fail(r, (int64_t)seq, "byte %zu: no block marker", off);
			goto out;
		}
		if (first != seq) {
			fail(r, (int64_t)seq,
			     "byte %zu: the block starts at record %llu, "
			     "record %llu was next (records removed, "
			     "reordered or spliced)",
			     off, (unsigned long long)first,
			     (unsigned long long)seq);
			goto out;
		}
		p = q + 1;
		if (inflateInit2(&z, -15) != Z_OK) {
			fail(r, (int64_t)seq, "out of memory");
			goto out;
		}
		z.next_in = (Bytef *)p;
		z.avail_in = (uInt)((size_t)(end - p) > UINT32_MAX ?
					    UINT32_MAX :
					    (size_t)(end - p));
		/* Decode it all, the buffer growing as needed (to a cap). */
		for (;;) {
			if (olen == ocap) {
				uint8_t *nb;

				if (ocap >= MAX_BLOCK_OUT)
					break;
				ocap = ocap ? ocap * 4 : 65536;
				nb = realloc(out, ocap);
				if (!nb) {
					inflateEnd(&z);
					fail(r, (int64_t)seq, "out of memory");
					goto out;
				}
				out = nb;
			}
			z.next_out = out + olen;
			z.avail_out = (uInt)(ocap - olen);
			zr = inflate(&z, Z_NO_FLUSH);
			olen = ocap - z.avail_out;
			if (zr != Z_OK || z.avail_in == 0)
				break;
		}
		/* Every whole line decoded, even from a torn or damaged
		 * block: what was written before the damage verifies. */
		start = 0;
		for (size_t i = 0; i < olen; i++) {
			if (out[i] != '\n')
				continue;
			if (one_record(out + start, i - start, key, keylen, h,
				       seq, cb, arg, r)) {
				inflateEnd(&z);
				goto out;
			}
			seq++;
			nrec++;
			start = i + 1;
		}
		if (zr != Z_STREAM_END) {
			inflateEnd(&z);
			if ((zr == Z_OK || zr == Z_BUF_ERROR) &&
			    z.avail_in == 0) {
				/* The input ended: a torn tail. */
				r->torn = true;
				ret = 0;
			} else {
				fail(r, (int64_t)seq,
				     "byte %zu: the compressed block is damaged "
				     "after record %llu",
				     off, (unsigned long long)(seq - 1));
			}
			goto out;
		}
		if (start != olen) {
			inflateEnd(&z);
			fail(r, (int64_t)seq,
			     "record %llu: the block ends inside it",
			     (unsigned long long)seq);
			goto out;
		}
		p += z.total_in;
		inflateEnd(&z);
		/* The block's seal: its count and its last chain value, as
		 * the writer wrote it; a prefix of it is a torn tail. */
		{
			char seal[128], hh[65];
			size_t sl, have = (size_t)(end - p);

			hex(h, 32, hh);
			sl = (size_t)snprintf(seal, sizeof(seal),
					      "\nEND %u %s\n", nrec, hh);
			if (have < sl && memcmp(p, seal, have) == 0) {
				r->torn = true;
				ret = 0;
				goto out;
			}
			if (have < sl || memcmp(p, seal, sl) != 0) {
				fail(r, (int64_t)seq,
				     "byte %zu: the block's seal is missing or "
				     "does not match its records",
				     (size_t)(p - data));
				goto out;
			}
			q = p + sl;
		}
		r->blocks++;
		p = q;
	}
	ret = 0;
out:
	free(out);
	return ret;
}
