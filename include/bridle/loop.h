/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event loop: epoll over non-blocking descriptors, plus periodic ticks
 * for coarse timers (connect and idle timeouts, drain deadline). Nothing run
 * from the loop may block.
 */
#ifndef BRIDLE_LOOP_H
#define BRIDLE_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop_watch;
typedef void (*loop_cb)(struct loop_watch *w, uint32_t events);

/* Embedded in the owner's struct; the owner recovers itself with container_of.
 */
struct loop_watch {
	int fd;
	uint32_t events; /* EPOLLIN/EPOLLOUT currently asked for */
	loop_cb cb;
};

typedef void (*loop_tick_cb)(void *arg);

struct loop;

struct loop *loop_new(void);
void loop_free(struct loop *l);

int loop_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events,
	     loop_cb cb);
/* Change interest; a no-op when it is already @events. */
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events);
void loop_del(struct loop *l, struct loop_watch *w);

/* Call @cb every @interval_ms (coarse: checked once per wakeup). */
int loop_add_tick(struct loop *l, uint32_t interval_ms, loop_tick_cb cb,
		  void *arg);

/* Monotonic milliseconds, cached once per loop iteration. */
uint64_t loop_now_ms(const struct loop *l);
uint64_t loop_clock_ms(void);

/* Call @cb after each batch of events: deferred frees happen there. */
void loop_set_after(struct loop *l, loop_tick_cb cb, void *arg);

int loop_run(struct loop *l);
/* Ask loop_run to return after the current batch. Safe from another
 * thread, which must then wake the loop (an eventfd it watches). */
void loop_stop(struct loop *l);

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))

#endif
