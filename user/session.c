// SPDX-License-Identifier: Apache-2.0
/*
 * Proxied connections. The accept path turns a connection into a decision
 * (original destination from BPF, process from /proc, policy); an allowed
 * session relays bytes between the agent ("down") and the destination
 * ("up") through two bounded buffers. A full buffer stops reading from its
 * source (back-pressure); an end of stream is passed on as a half-close
 * once the buffer has drained; a reset on one side resets the other.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "bridle/iobuf.h"
#include "bridle/keys.h"
#include "bridle/log.h"
#include "bridle/session.h"

#define ACCEPT_BATCH 64

/*
 * One direction of a session. Copy mode moves bytes through an iobuf (what
 * protocol modules need: they look at the bytes); splice mode, for opaque
 * streams, moves them through a pipe and never copies them to userspace.
 * In auto mode a relay starts copying, which is cheaper for small
 * request/response traffic, and turns to splice once it sees bulk reads.
 */
struct relay {
	struct iobuf buf; /* copy mode; owned */
	int pipe[2];      /* splice mode; -1 in copy mode; owned */
	size_t piped;     /* bytes in the pipe */
	size_t pipe_cap;
	bool may_splice;  /* auto: switch to splice on bulk */
	size_t last_read;
	bool eof;         /* read 0 from the source */
	bool shut;        /* sent FIN to the destination */
	uint64_t *bytes;  /* counter in the session summary */
};

struct session {
	struct enforcer *e;
	struct workload *wl;
	struct session *prev, *next; /* live list, or graveyard (next only) */
	struct loop_watch down, up;  /* agent side, destination side */
	bool down_registered, up_registered;
	struct relay to_up, to_down; /* agent → destination, and back */
	bool connecting, closed;
	uint64_t start_ms, last_ms, connect_deadline_ms;
	struct session_summary sum;
};

/* A read this large means bulk transfer: worth a pipe. */
#define RELAY_BULK_READ 16384

static int relay_use_pipe(struct relay *r, size_t cap)
{
	int sz;

	if (pipe2(r->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		r->pipe[0] = r->pipe[1] = -1;
		return -errno;
	}
	sz = fcntl(r->pipe[1], F_SETPIPE_SZ, (int)cap);
	if (sz == -1)
		sz = fcntl(r->pipe[1], F_GETPIPE_SZ);
	r->pipe_cap = sz > 0 ? (size_t)sz : 65536;
	r->piped = 0;
	return 0;
}

static int relay_init(struct relay *r, size_t cap, enum relay_mode mode,
		      uint64_t *bytes)
{
	r->pipe[0] = r->pipe[1] = -1;
	r->bytes = bytes;
	r->may_splice = mode == RELAY_AUTO;
	/* Pipes cost two descriptors: fall back to copying without them. */
	if (mode == RELAY_SPLICE && relay_use_pipe(r, cap) == 0)
		return 0;
	return iobuf_init(&r->buf, cap);
}

static void relay_release(struct relay *r)
{
	if (r->pipe[0] >= 0) {
		close(r->pipe[0]);
		close(r->pipe[1]);
		r->pipe[0] = r->pipe[1] = -1;
	}
	iobuf_release(&r->buf);
}

static size_t relay_room(struct relay *r)
{
	return r->pipe[0] >= 0 ? r->pipe_cap - r->piped : iobuf_room(&r->buf);
}

static size_t relay_pending(const struct relay *r)
{
	return r->pipe[0] >= 0 ? r->piped : iobuf_pending(&r->buf);
}

static ssize_t splice_nb(int in, int out, size_t len)
{
	ssize_t n;

	do
		n = splice(in, NULL, out, NULL, len,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

static ssize_t relay_read(struct relay *r, int src)
{
	ssize_t n;

	if (r->pipe[0] < 0) {
		n = iobuf_read_fd(&r->buf, src);
		/* Opaque TCP: every byte is judged as it arrives. */
		if (n > 0)
			iobuf_mark_parsed(&r->buf, (size_t)n);
		return n;
	}
	if (r->piped == r->pipe_cap)
		return -ENOBUFS;
	n = splice_nb(src, r->pipe[1], r->pipe_cap - r->piped);
	if (n > 0)
		r->piped += (size_t)n;
	return n;
}

static ssize_t relay_write(struct relay *r, int dst)
{
	ssize_t n;

	if (r->pipe[0] < 0)
		return iobuf_write_fd(&r->buf, dst);
	n = splice_nb(r->pipe[0], dst, r->piped);
	if (n > 0)
		r->piped -= (size_t)n;
	return n;
}

/*
 * Move bytes from @src to @dst through @r. @can_read says @src reported
 * readiness. Returns 0, or -errno on a hard error of either socket.
 */
static int flow(int src, int dst, struct relay *r, bool can_read,
		bool other_done)
{
	if (can_read && !r->eof) {
		ssize_t n = relay_read(r, src);

		if (n > 0) {
			*r->bytes += (uint64_t)n;
			r->last_read = (size_t)n;
		} else if (n == 0)
			r->eof = true;
		else if (n != -EAGAIN && n != -ENOBUFS)
			return (int)n;
	}
	if (relay_pending(r)) {
		ssize_t n = relay_write(r, dst);

		if (n < 0 && n != -EAGAIN)
			return (int)n;
	}
	/* Switch only with the buffer empty, so no byte changes order. */
	if (r->may_splice && r->pipe[0] < 0 && iobuf_empty(&r->buf) &&
	    r->buf.cap && r->last_read >= RELAY_BULK_READ) {
		r->may_splice = false;
		if (relay_use_pipe(r, r->buf.cap) == 0)
			iobuf_release(&r->buf);
	}
	if (r->eof && relay_pending(r) == 0 && !r->shut) {
		/* When the other direction is done too, the session closes
		 * now and close() sends the FIN. */
		if (!other_done)
			shutdown(dst, SHUT_WR);
		r->shut = true;
	}
	return 0;
}

static uint64_t wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void session_format_addr(int family, const void *addr, uint16_t port,
			 char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family, addr, a, sizeof(a));
	if (family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, port);
	else
		snprintf(buf, len, "%s:%u", a, port);
}

int session_log_open(struct enforcer *e, char *err, size_t errlen)
{
	char path[4096];

	if (mkdir(e->cfg->log_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create log_dir %s: %s",
			 e->cfg->log_dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/sessions.jsonl", e->cfg->log_dir);
	e->session_log_fd =
		open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (e->session_log_fd == -1) {
		snprintf(err, errlen, "cannot open session log %s: %s", path,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

static json_t *summary_json(const struct session_summary *s)
{
	json_t *j = json_pack(
		"{s:I,s:s,s:s,s:s,s:s,s:{s:i,s:i,s:s*,s:I},s:I,s:I,s:I,s:I}",
		"id", (json_int_t)s->id, "workload", s->workload, "original_destination",
		s->orig, "action", s->action, "rule", s->rule, "process",
		"pid", (int)s->pid, "uid", (int)s->uid, "exe",
		s->exe[0] ? s->exe : NULL, "cgroup_id",
		(json_int_t)s->cgroup_id, "bytes_up", (json_int_t)s->bytes_up,
		"bytes_down", (json_int_t)s->bytes_down, "start_ms",
		(json_int_t)s->start_wall_ms, "duration_ms",
		(json_int_t)s->duration_ms);

	json_object_set_new(j, "target",
			    s->target[0] ? json_string(s->target) : json_null());
	if (s->end_reason[0])
		json_object_set_new(j, "end", json_string(s->end_reason));
	return j;
}

/*
 * One line in the session log. Refusals also go to stderr as warnings;
 * allowed sessions only at debug level, since the session log has them.
 */
static void session_log(struct enforcer *e, const char *event,
			const struct session_summary *s)
{
	bool denied = strcmp(s->action, "deny") == 0;
	json_t *j = summary_json(s), *line = json_object();
	char ts[40], *text;

	log_timestamp(ts, sizeof(ts));
	json_object_set_new(line, "ts", json_string(ts));
	json_object_set_new(line, "event", json_string(event));
	json_object_update(line, j);
	text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(line);
	if (text && e->session_log_fd >= 0) {
		size_t n = strlen(text);

		text[n] = '\n';
		if (write(e->session_log_fd, text, n + 1) == -1)
			log_msg(LOG_WARN, "session_log",
				"cannot write the session log: %s",
				strerror(errno));
	}
	free(text);
	if (!denied && !log_enabled(LOG_DEBUG)) {
		json_decref(j);
		return;
	}
	log_json(denied ? LOG_WARN : LOG_DEBUG, event, j);
}

static void remember(struct enforcer *e, const struct session_summary *s)
{
	if (!e->recent || !e->cfg->recent_sessions)
		return;
	e->recent[e->recent_head] = *s;
	e->recent_head = (e->recent_head + 1) % e->cfg->recent_sessions;
	if (e->nrecent < e->cfg->recent_sessions)
		e->nrecent++;
}

static void close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Refuse an accepted connection: reset it, log why, remember it. */
static void refuse(struct enforcer *e, int fd, struct session_summary *s,
		   const char *reason)
{
	close_rst(fd);
	snprintf(s->action, sizeof(s->action), "deny");
	if (reason)
		snprintf(s->end_reason, sizeof(s->end_reason), "%s", reason);
	session_log(e, "decision", s);
	remember(e, s);
}

static void session_update_interest(struct session *s);

static void session_close(struct session *s, const char *reason, bool reset)
{
	struct enforcer *e = s->e;

	if (s->closed)
		return;
	s->closed = true;
	/* No EPOLL_CTL_DEL: closing the only reference removes the fd from
	 * the epoll set, and events already fetched see s->closed. */
	if (reset) {
		close_rst(s->down.fd);
		if (s->up.fd >= 0)
			close_rst(s->up.fd);
	} else {
		close(s->down.fd);
		if (s->up.fd >= 0)
			close(s->up.fd);
	}
	s->down.fd = s->up.fd = -1;
	snprintf(s->sum.end_reason, sizeof(s->sum.end_reason), "%s", reason);
	s->sum.duration_ms = loop_now_ms(e->loop) - s->start_ms;
	session_log(e, "close", &s->sum);
	remember(e, &s->sum);
	/* Unlink from the live list; freed after this batch of events. */
	if (s->prev)
		s->prev->next = s->next;
	else
		e->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	e->nsessions--;
	s->prev = NULL;
	s->next = e->graveyard;
	e->graveyard = s;
}

void session_reap(void *arg)
{
	struct enforcer *e = arg;

	while (e->graveyard) {
		struct session *s = e->graveyard;

		e->graveyard = s->next;
		relay_release(&s->to_up);
		relay_release(&s->to_down);
		free(s);
	}
	if (e->draining && e->nsessions == 0)
		loop_stop(e->loop);
}

static void watch_set(struct session *s, struct loop_watch *w, bool *reg,
		      bool done, uint32_t want)
{
	struct enforcer *e = s->e;

	if (done) {
		/* Both directions finished: HUP would wake us forever. */
		if (*reg) {
			loop_del(e->loop, w);
			*reg = false;
		}
		return;
	}
	if (*reg)
		loop_mod(e->loop, w, want);
}

static void session_update_interest(struct session *s)
{
	uint32_t down = 0, up = 0;

	if (!s->to_up.eof && relay_room(&s->to_up))
		down |= EPOLLIN;
	if (relay_pending(&s->to_down))
		down |= EPOLLOUT;
	if (!s->to_down.eof && relay_room(&s->to_down))
		up |= EPOLLIN;
	if (relay_pending(&s->to_up))
		up |= EPOLLOUT;
	/* A side is done once we read its EOF and sent it ours. */
	watch_set(s, &s->down, &s->down_registered,
		  s->to_up.eof && s->to_down.shut, down);
	watch_set(s, &s->up, &s->up_registered,
		  s->to_down.eof && s->to_up.shut, up);
}

static const char *errno_reason(int err, const char *side)
{
	static char buf[96];

	snprintf(buf, sizeof(buf), "%s: %s", side, strerror(err));
	return buf;
}

static void session_pump(struct session *s, bool down_ready, bool up_ready)
{
	int ret;

	ret = flow(s->down.fd, s->up.fd, &s->to_up, down_ready,
		   s->to_down.shut);
	if (ret) {
		session_close(s, errno_reason(-ret, "relay to destination"),
			      true);
		return;
	}
	ret = flow(s->up.fd, s->down.fd, &s->to_down, up_ready,
		   s->to_up.shut);
	if (ret) {
		session_close(s, errno_reason(-ret, "relay to agent"), true);
		return;
	}
	s->last_ms = loop_now_ms(s->e->loop);
	if (s->to_up.shut && s->to_down.shut) {
		session_close(s, "closed", false);
		return;
	}
	session_update_interest(s);
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return errno;
	return err;
}

static void on_down(struct loop_watch *w, uint32_t events)
{
	struct session *s = container_of(w, struct session, down);

	if (s->closed)
		return;
	if (events & EPOLLERR) {
		session_close(s, errno_reason(sock_error(w->fd), "agent"), true);
		return;
	}
	session_pump(s, events & (EPOLLIN | EPOLLHUP), false);
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void on_up(struct loop_watch *w, uint32_t events)
{
	struct session *s = container_of(w, struct session, up);

	if (s->closed)
		return;
	if (s->connecting) {
		int err = sock_error(w->fd);

		if (err) {
			session_close(s, errno_reason(err, "connect"), true);
			return;
		}
		s->connecting = false;
		nodelay(w->fd);
		/* The agent side waited for this: start reading it now. */
		s->down_registered = true;
		if (loop_add(s->e->loop, &s->down, s->down.fd, EPOLLIN,
			     on_down)) {
			s->down_registered = false;
			session_close(s, "cannot watch the agent socket", true);
			return;
		}
		session_pump(s, true, false);
		return;
	}
	if (events & EPOLLERR) {
		session_close(s, errno_reason(sock_error(w->fd), "destination"),
			      true);
		return;
	}
	session_pump(s, false, events & (EPOLLIN | EPOLLHUP));
}

/* Start the upstream connection of an allowed session. */
static void session_open_upstream(struct enforcer *e, struct workload *w,
				  int fd, const struct bridle_orig *o,
				  struct session_summary *sum)
{
	struct sockaddr_storage ss;
	struct session *s;
	socklen_t sl;
	int family = keys_orig_sockaddr(o, &ss, &sl), ufd;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	if (family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr)) {
		if (!w->link_scope) {
			refuse(e, fd, sum,
			       "IPv6 link-local destination, and the workload "
			       "has several interfaces: the agent's choice "
			       "is not visible to bridle");
			return;
		}
		sin6->sin6_scope_id = w->link_scope;
	}

	s = calloc(1, sizeof(*s));
	if (!s) {
		refuse(e, fd, sum, "out of memory");
		return;
	}
	s->sum = *sum;
	if (relay_init(&s->to_up, e->cfg->buffer_size, e->cfg->relay,
		       &s->sum.bytes_up) ||
	    relay_init(&s->to_down, e->cfg->buffer_size, e->cfg->relay,
		       &s->sum.bytes_down)) {
		relay_release(&s->to_up);
		relay_release(&s->to_down);
		free(s);
		refuse(e, fd, sum, "out of memory");
		return;
	}
	ufd = enroll_socket_in(e, w, family, SOCK_STREAM);
	if (ufd < 0) {
		relay_release(&s->to_up);
		relay_release(&s->to_down);
		free(s);
		refuse(e, fd, sum, errno_reason(-ufd, "upstream socket"));
		return;
	}
	s->e = e;
	s->wl = w;
	s->down.fd = fd;
	s->up.fd = ufd;
	s->start_ms = s->last_ms = loop_now_ms(e->loop);
	s->connect_deadline_ms = s->start_ms + e->cfg->connect_timeout_ms;
	s->next = e->sessions;
	if (e->sessions)
		e->sessions->prev = s;
	e->sessions = s;
	e->nsessions++;
	nodelay(fd);
	session_log(e, "decision", &s->sum);
	if (connect(ufd, (struct sockaddr *)&ss, sl) == -1 &&
	    errno != EINPROGRESS) {
		s->down_registered = false;
		session_close(s, errno_reason(errno, "connect"), true);
		return;
	}
	/* Wait for the connect before reading the agent: nothing to send to. */
	s->connecting = true;
	s->up_registered = true;
	if (loop_add(e->loop, &s->up, ufd, EPOLLOUT, on_up)) {
		s->up_registered = false;
		session_close(s, "cannot watch the upstream socket", true);
	}
}

static void session_start(struct workload *w, int fd,
			  const struct sockaddr_storage *peer,
			  socklen_t peer_len)
{
	struct enforcer *e = w->e;
	struct session_summary sum = {};
	struct bridle_tuple_key key = {};
	struct bridle_orig o;
	struct policy_decision d;
	struct policy_input in = {};
	char path[64];
	ssize_t n;

	sum.id = ++e->next_session_id;
	sum.start_wall_ms = wall_ms();
	snprintf(sum.workload, sizeof(sum.workload), "%s", w->cfg->name);
	w->accepted++;
	if (keys_tuple_from_peer(w->netns_cookie, (const struct sockaddr *)peer,
				 peer_len, &key)) {
		snprintf(sum.orig, sizeof(sum.orig), "unknown");
		w->refused++;
		refuse(e, fd, &sum, "peer address family not supported");
		return;
	}
	if (bridle_bpf_take_orig(e->bpf, &key, &o)) {
		/* Not redirected by our programs: a direct connection to the
		 * listener, or from a process outside the workload. */
		snprintf(sum.orig, sizeof(sum.orig), "unknown");
		w->refused++;
		refuse(e, fd, &sum, "no recorded original destination");
		return;
	}
	session_format_addr(o.family, o.addr, o.port, sum.orig,
			    sizeof(sum.orig));
	sum.pid = o.tgid;
	sum.uid = o.uid;
	sum.cgroup_id = o.cgroup_id;
	snprintf(path, sizeof(path), "/proc/%u/exe", o.tgid);
	n = readlink(path, sum.exe, sizeof(sum.exe) - 1);
	sum.exe[n > 0 ? n : 0] = '\0';
	if (o.pod_id != w->pod_id) {
		w->refused++;
		refuse(e, fd, &sum,
		       "original destination recorded for another workload");
		return;
	}
	in.workload = w->cfg->name;
	in.labels = w->cfg->labels;
	in.exe = sum.exe[0] ? sum.exe : NULL;
	in.uid = o.uid;
	in.family = o.family;
	in.addr = (const uint8_t *)o.addr;
	in.port = o.port;
	policy_decide(e->cfg->policy, &in, &d);
	snprintf(sum.rule, sizeof(sum.rule), "%s", d.rule);
	if (d.target)
		snprintf(sum.target, sizeof(sum.target), "%s", d.target);
	if (d.action != POLICY_ALLOW) {
		w->refused++;
		refuse(e, fd, &sum, d.message ? d.message : "denied by policy");
		return;
	}
	if (e->draining) {
		w->refused++;
		refuse(e, fd, &sum, "enforcer is draining");
		return;
	}
	if (e->nsessions >= e->cfg->max_sessions) {
		w->refused++;
		refuse(e, fd, &sum, "too many sessions (max_sessions)");
		return;
	}
	snprintf(sum.action, sizeof(sum.action), "allow");
	session_open_upstream(e, w, fd, &o, &sum);
}

void session_on_listen(struct loop_watch *lw, uint32_t events)
{
	struct listener *l = container_of(lw, struct listener, watch);
	struct workload *w = l->wl;

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(lw->fd, (struct sockaddr *)&peer, &pl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1 && (errno == EMFILE || errno == ENFILE)) {
			/* Out of descriptors: the listener would stay readable
			 * and spin the loop. Use the spare to refuse one. */
			log_msg(LOG_ERROR, "accept",
				"workload %s: out of file descriptors, "
				"refusing a connection",
				w->cfg->name);
			if (w->e->spare_fd >= 0) {
				close(w->e->spare_fd);
				fd = accept(lw->fd, NULL, NULL);
				if (fd != -1)
					close_rst(fd);
				w->e->spare_fd = open("/dev/null",
						      O_RDONLY | O_CLOEXEC);
			}
			return;
		}
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR &&
				 errno != ECONNABORTED)
				log_msg(LOG_WARN, "accept", "workload %s: %s",
					w->cfg->name, strerror(errno));
			return;
		}
		session_start(w, fd, &peer, pl);
	}
}

void session_tick(void *arg)
{
	struct enforcer *e = arg;
	uint64_t now = loop_now_ms(e->loop);
	struct session *s, *next;

	for (s = e->sessions; s; s = next) {
		next = s->next;
		if (s->connecting && now >= s->connect_deadline_ms)
			session_close(s, "connect timeout", true);
		else if (!s->connecting && e->cfg->idle_timeout_ms &&
			 now - s->last_ms >= e->cfg->idle_timeout_ms)
			session_close(s, "idle timeout", true);
	}
	if (e->draining && now >= e->drain_deadline_ms && e->nsessions)
		session_close_all(e, "drain timeout");
	session_reap(e);
}

void session_close_all(struct enforcer *e, const char *reason)
{
	while (e->sessions)
		session_close(e->sessions, reason, true);
}

json_t *session_list_json(struct enforcer *e)
{
	json_t *arr = json_array();
	uint64_t now = loop_now_ms(e->loop);

	for (struct session *s = e->sessions; s; s = s->next) {
		json_t *j;

		s->sum.duration_ms = now - s->start_ms;
		j = summary_json(&s->sum);
		json_object_set_new(j, "state",
				    json_string(s->connecting ? "connecting" :
								"open"));
		json_array_append_new(arr, j);
	}
	for (uint32_t i = 0; i < e->nrecent; i++) {
		uint32_t cap = e->cfg->recent_sessions;
		uint32_t idx = (e->recent_head + cap - 1 - i) % cap;
		json_t *j = summary_json(&e->recent[idx]);

		json_object_set_new(j, "state", json_string("closed"));
		json_array_append_new(arr, j);
	}
	return arr;
}
