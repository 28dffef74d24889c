// SPDX-License-Identifier: Apache-2.0
/*
 * Review notifications by HTTP POST (include/bridle/webhook.h), with
 * libcurl on one helper thread: 2 s to connect, 5 s in all, no redirects,
 * certificates checked for https.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/config.h"
#include "bridle/log.h"
#include "bridle/webhook.h"

#define QUEUE_MAX 1024

struct event {
	struct event *next;
	char *event;
	json_t *review;
};

struct webhook {
	const struct config *cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct event *head, *tail;
	size_t queued;
	/* under lock */
	uint64_t sent, failed, dropped;
	char last_error[256];
};

/* A line of text for Slack-compatible receivers. */
static char *slack_text(const char *event, json_t *r)
{
	const char *st = json_string_value(json_object_get(r, "state"));
	char *t = NULL;
	long long id = json_integer_value(json_object_get(r, "id"));
	int n;

	if (!strcmp(event, "review.opened"))
		n = asprintf(
			&t,
			"bridle: review %lld is waiting: %s → %s: %s "
			"(rule \"%s\"). `bridle approve %lld` or `bridle "
			"reject %lld --reason …`",
			id,
			json_string_value(json_object_get(r, "workload")) ?:
									    "?",
			json_string_value(json_object_get(r, "target")) ?: "?",
			json_string_value(json_object_get(r, "request")) ?: "?",
			json_string_value(json_object_get(r, "rule")) ?: "?",
			id, id);
	else
		n = asprintf(
			&t, "bridle: review %lld %s%s%s%s%s", id,
			st ? st : "closed",
			json_object_get(r, "by") ? " by " : "",
			json_string_value(json_object_get(r, "by")) ?: "",
			json_string_value(json_object_get(r, "reason")) &&
					*json_string_value(
						json_object_get(r, "reason")) ?
				": " :
				"",
			json_string_value(json_object_get(r, "reason")) ?: "");
	return n < 0 ? NULL : t;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static void post(struct webhook *w, const struct config_webhook *h,
		 const struct event *ev)
{
	char *body = NULL, cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	CURL *c = curl_easy_init();
	CURLcode rc = CURLE_FAILED_INIT;
	long code = 0;

	if (h->slack) {
		char *t = slack_text(ev->event, ev->review);
		json_t *j = json_pack("{s:s}", "text", t ? t : "bridle");

		body = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		free(t);
	} else {
		json_t *j = json_pack("{s:s,s:O}", "event", ev->event, "review",
				      ev->review);

		body = json_dumps(j, JSON_COMPACT);
		json_decref(j);
	}
	if (c && body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_URL, h->url);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
		curl_easy_setopt(c, CURLOPT_USERAGENT, "bridle");
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	}
	pthread_mutex_lock(&w->lock);
	if (rc == CURLE_OK && code >= 200 && code < 300) {
		w->sent++;
	} else {
		w->failed++;
		snprintf(w->last_error, sizeof(w->last_error), "%s: %s", h->url,
			 rc != CURLE_OK ?
				 (cerr[0] ? cerr : curl_easy_strerror(rc)) :
				 "HTTP status not 2xx");
		log_msg(LOG_WARN, "webhook", "%s", w->last_error);
	}
	pthread_mutex_unlock(&w->lock);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	free(body);
}

static void *webhook_main(void *arg)
{
	struct webhook *w = arg;

	for (;;) {
		struct event *ev;

		pthread_mutex_lock(&w->lock);
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop) {
			/* Exiting: what is left is dropped, not sent (a dead
			 * receiver must not hold the exit). */
			while ((ev = w->head)) {
				w->head = ev->next;
				free(ev->event);
				json_decref(ev->review);
				free(ev);
			}
			w->tail = NULL;
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		ev = w->head;
		w->head = ev->next;
		if (!w->head)
			w->tail = NULL;
		w->queued--;
		pthread_mutex_unlock(&w->lock);
		for (size_t i = 0; i < w->cfg->nwebhooks; i++)
			post(w, &w->cfg->webhooks[i], ev);
		free(ev->event);
		json_decref(ev->review);
		free(ev);
	}
}

struct webhook *webhook_start(const struct config *c, char *err, size_t errlen)
{
	struct webhook *w;

	err[0] = '\0';
	if (!c->nwebhooks)
		return NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, errlen, "cannot set up libcurl");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cfg = c;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->thread, NULL, webhook_main, w)) {
		snprintf(err, errlen, "cannot start the webhook thread");
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void webhook_stop(struct webhook *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void webhook_send(struct webhook *w, const char *event, json_t *review)
{
	struct event *ev;

	if (!w || !review) {
		json_decref(review);
		return;
	}
	ev = calloc(1, sizeof(*ev));
	if (!ev || !(ev->event = strdup(event))) {
		free(ev);
		json_decref(review);
		return;
	}
	ev->review = review;
	pthread_mutex_lock(&w->lock);
	if (w->queued >= QUEUE_MAX) {
		w->dropped++;
		pthread_mutex_unlock(&w->lock);
		free(ev->event);
		json_decref(ev->review);
		free(ev);
		return;
	}
	if (w->tail)
		w->tail->next = ev;
	else
		w->head = ev;
	w->tail = ev;
	w->queued++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

json_t *webhook_status_json(struct webhook *w)
{
	json_t *j;

	if (!w)
		return json_pack("{s:i}", "urls", 0);
	pthread_mutex_lock(&w->lock);
	j = json_pack("{s:i,s:I,s:I,s:I,s:I}", "urls", (int)w->cfg->nwebhooks,
		      "queued", (json_int_t)w->queued, "sent",
		      (json_int_t)w->sent, "failed", (json_int_t)w->failed,
		      "dropped", (json_int_t)w->dropped);
	if (w->last_error[0])
		json_object_set_new(j, "last_error",
				    json_string(w->last_error));
	pthread_mutex_unlock(&w->lock);
	return j;
}
