// SPDX-License-Identifier: Apache-2.0
/*
 * JWKS sources (see include/bridle/jwks.h): each issuer's key set fetched
 * over HTTPS with libcurl by one refresher thread, swapped in under a
 * per-source rwlock, and kept when a fetch fails. The thread sleeps on a
 * condition variable until the next source is due, so that registration,
 * an unknown kid and jwks_stop() wake it at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "bridle/jwks.h"
#include "bridle/log.h"

#define JWKS_MAX_URL 2048
#define JWKS_IDLE_MS 60000 /* the longest sleep with nothing due */

struct jwks_source {
	struct jwks_source *next; /* jwks.sources, under jwks.lock */
	char *url, *ca_file; /* owned; constant; ca_file may be NULL */
	/* Under jwks.lock: */
	unsigned refs; /* the refresher holds one while it fetches */
	uint32_t refresh_s;
	int64_t due_ms; /* monotonic: the refresher's next fetch */
	int64_t kid_refresh_ms; /* monotonic: the last on-demand refresh */
	bool wanted; /* a fetch asked for ahead of due_ms */
	bool busy; /* the refresher is fetching it now */
	uint64_t fetches, failures;
	int64_t last_ok_ms; /* wall clock; 0: never */
	size_t nkeys;
	char last_error[512]; /* "": the last fetch went well, or none yet */
	/* The keys: written only to swap in a fetched set. */
	pthread_rwlock_t keys_lock;
	struct jwt_keyset *keys; /* owned; NULL until the first good fetch */
};

static struct {
	pthread_mutex_t lock; /* the list, every source's schedule, counters */
	pthread_cond_t wake; /* on CLOCK_MONOTONIC; set up by init_once */
	struct jwks_source *sources;
	bool stopping; /* under lock: the refresher must return */
	atomic_bool abort; /* fetches in progress must give up */
	pthread_mutex_t ctl; /* serializes jwks_start and jwks_stop */
	bool running; /* under ctl */
	pthread_t thread; /* under ctl */
} jwks = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.ctl = PTHREAD_MUTEX_INITIALIZER,
};

static pthread_once_t jwks_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void init_once(void)
{
	pthread_condattr_t attr;

	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&jwks.wake, &attr);
	pthread_condattr_destroy(&attr);
}

static int64_t clock_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Errors quote documents and servers: printable ASCII only, so that they
 * log and serialize as JSON safely. */
static void printable_only(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* 0 when @url is an https URL with a host, else -1 with @err. */
static int check_url(const char *url, char *err, size_t errlen)
{
	CURLU *u;
	CURLUcode rc;
	char *scheme = NULL, *host = NULL;
	int ret = -1;

	if (strlen(url) > JWKS_MAX_URL) {
		snprintf(err, errlen, "JWKS URL longer than %d bytes",
			 JWKS_MAX_URL);
		return -1;
	}
	for (const char *p = url; *p; p++) {
		if (*p <= 0x20 || *p > 0x7e) {
			snprintf(err, errlen,
				 "JWKS URL with a space, a control or a "
				 "non-ASCII byte");
			return -1;
		}
	}
	/* Checked before curl's parser, which would guess a scheme. */
	if (strncasecmp(url, "https://", 8)) {
		snprintf(err, errlen, "JWKS URL \"%.64s\" is not https://",
			 url);
		return -1;
	}
	u = curl_url();
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (rc != CURLUE_OK)
		snprintf(err, errlen, "bad JWKS URL \"%.64s\": %s", url,
			 curl_url_strerror(rc));
	else if (strcasecmp(scheme, "https") || !host[0])
		snprintf(err, errlen, "JWKS URL \"%.64s\" is not https://",
			 url);
	else
		ret = 0;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

static void source_free(struct jwks_source *s)
{
	if (!s)
		return;
	jwt_keyset_free(s->keys);
	pthread_rwlock_destroy(&s->keys_lock);
	free(s->url);
	free(s->ca_file);
	free(s);
}

struct jwks_source *jwks_source_get(const char *url, const char *ca_file,
				    uint32_t refresh_s, char *err,
				    size_t errlen)
{
	struct jwks_source *s;

	pthread_once(&jwks_once, init_once);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl: %s",
			 curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	if (!url) {
		snprintf(err, errlen, "no JWKS URL");
		return NULL;
	}
	if (check_url(url, err, errlen))
		return NULL;
	if (refresh_s < 1) {
		snprintf(err, errlen, "JWKS refresh interval must be >= 1 s");
		return NULL;
	}
	pthread_mutex_lock(&jwks.lock);
	for (s = jwks.sources; s; s = s->next) {
		if (strcmp(s->url, url) || !same(s->ca_file, ca_file))
			continue;
		s->refs++;
		if (refresh_s < s->refresh_s) {
			int64_t due = clock_ms(CLOCK_MONOTONIC) +
				      (int64_t)refresh_s * 1000;

			s->refresh_s = refresh_s;
			if (due < s->due_ms) {
				s->due_ms = due;
				pthread_cond_signal(&jwks.wake);
			}
		}
		pthread_mutex_unlock(&jwks.lock);
		return s;
	}
	/* Allocated under the lock (no I/O), so that a racing get of the
	 * same URL finds this one. */
	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->url = strdup(url);
	s->ca_file = ca_file ? strdup(ca_file) : NULL;
	if (!s->url || (ca_file && !s->ca_file) ||
	    pthread_rwlock_init(&s->keys_lock, NULL)) {
		free(s->url);
		free(s->ca_file);
		free(s);
		goto nomem;
	}
	s->refs = 1;
	s->refresh_s = refresh_s;
	s->next = jwks.sources;
	jwks.sources = s;
	pthread_cond_signal(&jwks.wake); /* due_ms 0: fetch it now */
	pthread_mutex_unlock(&jwks.lock);
	return s;
nomem:
	pthread_mutex_unlock(&jwks.lock);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

/* Drop a reference with jwks.lock held; the last one unlinks and frees. */
static void put_locked(struct jwks_source *s)
{
	struct jwks_source **pp;

	if (--s->refs)
		return;
	for (pp = &jwks.sources; *pp != s; pp = &(*pp)->next)
		;
	*pp = s->next;
	source_free(s);
}

void jwks_source_put(struct jwks_source *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&jwks.lock);
	put_locked(s);
	pthread_mutex_unlock(&jwks.lock);
}

/* The response body, at most JWKS_MAX_BODY bytes; owned by fetch(). */
struct body {
	char *buf;
	size_t len, cap;
	bool too_big;
};

static size_t body_write(char *data, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (len > JWKS_MAX_BODY - b->len) {
		b->too_big = true;
		return 0; /* anything but len aborts the transfer */
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *p;

		while (cap < b->len + len)
			cap *= 2;
		if (cap > JWKS_MAX_BODY)
			cap = JWKS_MAX_BODY;
		p = realloc(b->buf, cap);
		if (!p)
			return 0;
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	return len;
}

/* Called by libcurl about once a second at least: jwks_stop() aborts. */
static int fetch_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&jwks.abort) ? 1 : 0;
}

/*
 * GET @s->url and parse it. No lock is held: this is the network I/O.
 * Returns the key set, or NULL with @err.
 */
static struct jwt_keyset *fetch(const struct jwks_source *s, char *err,
				size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "", perr[256];
	struct body b = { 0 };
	struct jwt_keyset *ks = NULL;
	long status = 0;
	CURLcode rc;
	CURL *h = curl_easy_init();

	if (!h) {
		snprintf(err, errlen, "%s: cannot set up libcurl", s->url);
		return NULL;
	}
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (s->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)JWKS_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)JWKS_TIMEOUT_MS);
	/* Refuses a declared Content-Length over the cap before the body;
	 * body_write enforces it on any response. */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
			 (curl_off_t)JWKS_MAX_BODY);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, fetch_progress);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we are a thread */
	curl_easy_setopt(h, CURLOPT_USERAGENT, "bridle");

	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);

	if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED)
		snprintf(err, errlen,
			 "%s: the JWKS document is larger than "
			 "1 MiB",
			 s->url);
	else if (rc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(err, errlen, "%s: fetch interrupted (stopping)",
			 s->url);
	else if (rc != CURLE_OK)
		snprintf(err, errlen, "%s: %s", s->url,
			 cerr[0] ? cerr : curl_easy_strerror(rc));
	else if (status != 200)
		snprintf(err, errlen, "%s: HTTP status %ld (want 200)", s->url,
			 status);
	else if (!(ks = jwt_keyset_parse(b.buf ? b.buf : "", b.len, perr,
					 sizeof(perr))))
		snprintf(err, errlen, "%s: %s", s->url, perr);
	free(b.buf);
	return ks;
}

/*
 * Fetch @s (the caller holds a reference, not jwks.lock), swap the keys in
 * on success, record the outcome and schedule the next fetch: after the
 * interval, or sooner after a failure. Returns 0 or -1 with @err.
 */
static int refresh(struct jwks_source *s, char *err, size_t errlen)
{
	char ferr[512];
	struct jwt_keyset *ks = fetch(s, ferr, sizeof(ferr)), *old = NULL;
	int64_t now = clock_ms(CLOCK_MONOTONIC);
	size_t n = ks ? jwt_keyset_count(ks) : 0;
	bool stopping = !ks && atomic_load(&jwks.abort);

	if (!ks)
		printable_only(ferr);
	if (ks) {
		pthread_rwlock_wrlock(&s->keys_lock);
		old = s->keys;
		s->keys = ks;
		pthread_rwlock_unlock(&s->keys_lock);
		jwt_keyset_free(old);
	}
	pthread_mutex_lock(&jwks.lock);
	s->fetches++;
	if (ks) {
		s->nkeys = n;
		s->last_ok_ms = clock_ms(CLOCK_REALTIME);
		s->last_error[0] = 0;
		s->due_ms = now + (int64_t)s->refresh_s * 1000;
	} else {
		uint32_t retry = s->refresh_s < JWKS_RETRY_MAX_S ?
					 s->refresh_s :
					 JWKS_RETRY_MAX_S;

		s->failures++;
		snprintf(s->last_error, sizeof(s->last_error), "%s", ferr);
		s->due_ms = now + (int64_t)retry * 1000;
	}
	pthread_mutex_unlock(&jwks.lock);
	if (ks)
		return 0;
	/* Logged unlocked: a slow stderr must not hold up verification. */
	if (!stopping)
		log_msg(LOG_WARN, "jwks",
			"fetch failed, the previous keys (if any) stay: %s",
			ferr);
	snprintf(err, errlen, "%s", ferr);
	return -1;
}

int jwks_fetch_now(struct jwks_source *s, char *err, size_t errlen)
{
	return refresh(s, err, errlen);
}

static void *refresher(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&jwks.lock);
	while (!jwks.stopping) {
		int64_t now = clock_ms(CLOCK_MONOTONIC);
		int64_t next = now + JWKS_IDLE_MS;
		struct jwks_source *s, *pick = NULL;
		char err[512];

		for (s = jwks.sources; s; s = s->next) {
			if (s->busy)
				continue;
			if (s->wanted || s->due_ms <= now) {
				pick = s;
				break;
			}
			if (s->due_ms < next)
				next = s->due_ms;
		}
		if (!pick) {
			struct timespec ts = { .tv_sec = next / 1000,
					       .tv_nsec =
						       next % 1000 * 1000000 };

			pthread_cond_timedwait(&jwks.wake, &jwks.lock, &ts);
			continue;
		}
		/* The reference keeps it alive while unlocked. */
		pick->refs++;
		pick->busy = true;
		pick->wanted = false;
		pthread_mutex_unlock(&jwks.lock);
		refresh(pick, err, sizeof(err));
		pthread_mutex_lock(&jwks.lock);
		pick->busy = false;
		put_locked(pick);
	}
	pthread_mutex_unlock(&jwks.lock);
	return NULL;
}

int jwks_start(void)
{
	int rc = 0;

	pthread_once(&jwks_once, init_once);
	if (curl_init_rc != CURLE_OK)
		return -EIO;
	pthread_mutex_lock(&jwks.ctl);
	if (!jwks.running) {
		pthread_mutex_lock(&jwks.lock);
		jwks.stopping = false;
		for (struct jwks_source *s = jwks.sources; s; s = s->next)
			s->due_ms = 0; /* every source now */
		pthread_mutex_unlock(&jwks.lock);
		atomic_store(&jwks.abort, false);
		rc = -pthread_create(&jwks.thread, NULL, refresher, NULL);
		jwks.running = rc == 0;
	}
	pthread_mutex_unlock(&jwks.ctl);
	return rc;
}

void jwks_stop(void)
{
	pthread_mutex_lock(&jwks.ctl);
	if (jwks.running) {
		atomic_store(&jwks.abort, true);
		pthread_mutex_lock(&jwks.lock);
		jwks.stopping = true;
		pthread_cond_broadcast(&jwks.wake);
		pthread_mutex_unlock(&jwks.lock);
		pthread_join(jwks.thread, NULL);
		jwks.running = false;
		atomic_store(&jwks.abort, false);
	}
	pthread_mutex_unlock(&jwks.ctl);
}

/* An out-of-schedule fetch of @s, at most once per JWKS_KID_REFRESH_S;
 * with jwks.lock held. */
static void request_refresh_locked(struct jwks_source *s)
{
	int64_t now = clock_ms(CLOCK_MONOTONIC);

	if (s->kid_refresh_ms &&
	    now - s->kid_refresh_ms < JWKS_KID_REFRESH_S * 1000)
		return;
	s->kid_refresh_ms = now;
	s->wanted = true;
	pthread_cond_signal(&jwks.wake);
}

int jwks_verify(struct jwks_source *s, const char *token, size_t len,
		const struct jwt_expect *ex, struct jwt_claims *out, char *err,
		size_t errlen)
{
	bool loaded, unknown = false;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&s->keys_lock);
	loaded = s->keys != NULL;
	if (loaded) {
		ret = jwt_verify(s->keys, token, len, ex, out, err, errlen);
		/* jwt_verify's reasons when no key of the set fits: the
		 * issuer may have rotated its keys since our last fetch. */
		unknown = ret && (!strncmp(err, "unknown key id", 14) ||
				  !strcmp(err, "no key for this token"));
	}
	pthread_rwlock_unlock(&s->keys_lock);
	if (loaded && !unknown)
		return ret;
	pthread_mutex_lock(&jwks.lock);
	/* Not loaded: the refresher has it due already (now, or a retry). */
	if (!loaded)
		snprintf(err, errlen,
			 "the issuer's keys are not loaded yet (%s)",
			 s->last_error[0] ? s->last_error : "fetching");
	else
		request_refresh_locked(s);
	pthread_mutex_unlock(&jwks.lock);
	return -1;
}

json_t *jwks_status_json(void)
{
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	pthread_mutex_lock(&jwks.lock);
	for (struct jwks_source *s = jwks.sources; s; s = s->next)
		json_array_append_new(
			arr,
			json_pack("{s:s, s:I, s:I, s:I, s:o, s:o}", "url",
				  s->url, "keys", (json_int_t)s->nkeys,
				  "fetches", (json_int_t)s->fetches, "failures",
				  (json_int_t)s->failures, "last_ok_ms",
				  s->last_ok_ms ? json_integer(s->last_ok_ms) :
						  json_null(),
				  "last_error",
				  s->last_error[0] ?
					  json_string(s->last_error) :
					  json_null()));
	pthread_mutex_unlock(&jwks.lock);
	return arr;
}
