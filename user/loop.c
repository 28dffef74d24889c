// SPDX-License-Identifier: Apache-2.0
/*
 * epoll event loop. Watches are embedded in their owners; the loop keeps no
 * per-fd table of its own. Ticks drive the coarse timers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bridle/loop.h"

#define LOOP_MAX_TICKS 8
#define LOOP_BATCH 128

struct loop_tick {
	uint32_t interval_ms;
	uint64_t next_ms;
	loop_tick_cb cb;
	void *arg;
};

struct loop {
	int epfd;
	bool stop;
	uint64_t now_ms;
	struct loop_tick ticks[LOOP_MAX_TICKS];
	int nticks;
	loop_tick_cb after;
	void *after_arg;
};

void loop_set_after(struct loop *l, loop_tick_cb cb, void *arg)
{
	l->after = cb;
	l->after_arg = arg;
}

uint64_t loop_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1) {
		free(l);
		return NULL;
	}
	l->now_ms = loop_clock_ms();
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

int loop_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events,
	     loop_cb cb)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	w->fd = fd;
	w->events = events;
	w->cb = cb;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return -errno;
	return 0;
}

int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (w->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) == -1)
		return -errno;
	w->events = events;
	return 0;
}

void loop_del(struct loop *l, struct loop_watch *w)
{
	if (w->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

int loop_add_tick(struct loop *l, uint32_t interval_ms, loop_tick_cb cb,
		  void *arg)
{
	struct loop_tick *t;

	if (l->nticks == LOOP_MAX_TICKS)
		return -ENOSPC;
	t = &l->ticks[l->nticks++];
	t->interval_ms = interval_ms;
	t->next_ms = l->now_ms + interval_ms;
	t->cb = cb;
	t->arg = arg;
	return 0;
}

uint64_t loop_now_ms(const struct loop *l)
{
	return l->now_ms;
}

void loop_stop(struct loop *l)
{
	__atomic_store_n(&l->stop, true, __ATOMIC_RELEASE);
}

static int loop_timeout(const struct loop *l)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < l->nticks; i++)
		if (l->ticks[i].next_ms < next)
			next = l->ticks[i].next_ms;
	if (next == UINT64_MAX)
		return -1;
	return next <= l->now_ms ? 0 : (int)(next - l->now_ms);
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_BATCH];

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(l->epfd, evs, LOOP_BATCH, loop_timeout(l));

		if (n == -1 && errno != EINTR)
			return -errno;
		l->now_ms = loop_clock_ms();
		for (int i = 0; i < n; i++) {
			struct loop_watch *w = evs[i].data.ptr;

			w->cb(w, evs[i].events);
		}
		if (l->after)
			l->after(l->after_arg);
		for (int i = 0; i < l->nticks; i++) {
			struct loop_tick *t = &l->ticks[i];

			if (t->next_ms <= l->now_ms) {
				t->next_ms = l->now_ms + t->interval_ms;
				t->cb(t->arg);
			}
		}
	}
	return 0;
}
