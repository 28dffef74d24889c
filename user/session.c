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
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bridle/identity.h"
#include "bridle/iobuf.h"
#include "bridle/keys.h"
#include "bridle/log.h"
#include "bridle/proto.h"
#include "bridle/recorder.h"
#include "bridle/session.h"
#include "bridle/tls.h"

/* A decision line: who (at most DECISION_WHO_MAX), then fields with their
 * budgets (rule, allowed_by, message 512 each, request 512, statement
 * 2048) and the fixed parts. */
#define DECISION_WHO_MAX 3072
#define DECISION_LINE_MAX 8192

#define ACCEPT_BATCH 64

/*
 * One direction of a session. Copy mode moves bytes through an iobuf (what
 * protocol modules need: they look at the bytes); splice mode, for opaque
 * streams, moves them through a pipe and never copies them to userspace.
 * In auto mode a relay starts copying, which is cheaper for small
 * request/response traffic, and turns to splice once it sees bulk reads.
 */
struct relay {
	struct iobuf buf; /* copy mode; owned; a rewriting module's input */
	struct iobuf out; /* a rewriting module's output; owned */
	bool rewrite; /* the module rewrites: bytes go out of @out */
	int pipe[2]; /* splice mode; -1 in copy mode; owned */
	size_t piped; /* bytes in the pipe */
	size_t pipe_cap;
	bool may_splice; /* auto: switch to splice on bulk */
	size_t last_read;
	bool eof; /* read 0 from the source */
	bool shut; /* sent FIN to the destination */
	uint64_t count; /* bytes moved; the API reads it (relaxed atomic) */
	uint64_t written; /* bytes written to the destination */
};

/*
 * TLS on one side of a session: pending until the bytes queued before
 * session_start_tls() went out in the clear, then handshaking, then
 * established (ssl set, neither flag).
 */
struct tls_side {
	SSL *ssl; /* owned */
	SSL_CTX *ctx; /* not owned (tls.c or the enforcer) */
	bool server;
	char verify_name[256]; /* client: the name or address to check */
	uint64_t at; /* pending: start once this many bytes were written */
	bool pending, handshaking, want_read, want_write;
	bool failed; /* the module told the agent; nothing moves here */
};

struct session {
	struct enforcer *e;
	const struct proto_ops *ops; /* the target's protocol module */
	struct worker *wk; /* the thread that owns it */
	struct workload *wl;
	struct session *prev, *next; /* live list, or graveyard (next only) */
	struct loop_watch down, up; /* agent side, destination side */
	bool down_registered, up_registered;
	struct relay to_up, to_down; /* agent → destination, and back */
	struct tls_side tls_down, tls_up; /* agent side, destination side */
	bool connecting, closed;
	bool finishing; /* session_finish: flush to the agent, then close */
	char finish_reason[96];
	uint64_t start_ms, last_ms, connect_deadline_ms;
	void *state; /* the protocol module's; it frees it in release */
	struct policy *policy; /* a reference: the one decisions use */
	struct identity_user *user; /* from a verified token, or NULL */
	char *who; /* identity part of its decision lines, built once */
	uint64_t policy_gen;
	size_t target_idx; /* in policy; SIZE_MAX once the target is gone */
	struct bridle_orig orig;
	uint64_t requests, denied, masked; /* see session_count */
	/* A session the policy refused, kept only to say so in the
	 * protocol's words: no destination socket. Empty otherwise. */
	char refusal[256];
	/* Its recording: NULL when not recorded, or no longer (rec_err). */
	struct record_writer *rec;
	int rec_err; /* errno of the failure that ended the recording */
	char rec_refusal[192]; /* what refused requests get, then */
	uint64_t req; /* the last request's number */
	bool rec_dirty; /* on wk->rec_dirty */
	struct session *rec_next;
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
		      bool rewrite)
{
	r->pipe[0] = r->pipe[1] = -1;
	r->may_splice = mode == RELAY_AUTO;
	r->rewrite = rewrite;
	if (rewrite) {
		r->may_splice = false;
		if (iobuf_init(&r->out, cap))
			return -ENOMEM;
	}
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
	iobuf_release(&r->out);
}

static size_t relay_room(struct relay *r)
{
	return r->pipe[0] >= 0 ? r->pipe_cap - r->piped : iobuf_room(&r->buf);
}

static size_t relay_pending(const struct relay *r)
{
	if (r->rewrite)
		return iobuf_pending(&r->out);
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

/* Map an SSL_read/SSL_write result to bytes, 0 (EOF) or -errno. */
static ssize_t tls_result(SSL *ssl, int n)
{
	if (n > 0)
		return n;
	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_SYSCALL:
		return errno ? -errno : 0;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

/* Read from @src into @r. Returns bytes read, 0 at EOF, or -errno. */
static ssize_t relay_read(struct relay *r, int src, struct tls_side *t)
{
	ssize_t n;

	if (t->pending || t->handshaking)
		return -EAGAIN;
	if (t->ssl) {
		size_t room = iobuf_room(&r->buf), got = 0;

		if (!room)
			return -ENOBUFS;
		/* Everything TLS has decrypted, as far as there is room:
		 * epoll does not see what OpenSSL already holds. */
		while (got < room) {
			ERR_clear_error();
			n = tls_result(t->ssl,
				       SSL_read(t->ssl, iobuf_tail(&r->buf),
						(int)(room - got)));
			if (n <= 0)
				return got ? (ssize_t)got : n;
			iobuf_received(&r->buf, (size_t)n);
			got += (size_t)n;
		}
		return (ssize_t)got;
	}
	if (r->pipe[0] < 0)
		return iobuf_read_fd(&r->buf, src);
	if (r->piped == r->pipe_cap)
		return -ENOBUFS;
	n = splice_nb(src, r->pipe[1], r->pipe_cap - r->piped);
	if (n > 0)
		r->piped += (size_t)n;
	return n;
}

static ssize_t relay_write(struct relay *r, int dst, struct tls_side *t)
{
	struct iobuf *b = r->rewrite ? &r->out : &r->buf;
	ssize_t n;

	if (t->handshaking)
		return -EAGAIN;
	if (t->pending || t->ssl) {
		size_t len = iobuf_pending(b);

		/* Before TLS starts, only what was queued before it. */
		if (t->pending && len > t->at - r->written)
			len = (size_t)(t->at - r->written);
		if (!len)
			return t->pending ? -EAGAIN : 0;
		if (t->pending) {
			do
				n = send(dst, iobuf_head(b), len, MSG_NOSIGNAL);
			while (n == -1 && errno == EINTR);
			if (n == -1)
				return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		} else {
			ERR_clear_error();
			n = tls_result(t->ssl, SSL_write(t->ssl, iobuf_head(b),
							 (int)len));
			if (n <= 0)
				return n == 0 ? -EPIPE : n;
		}
		iobuf_advance(b, (size_t)n);
		r->written += (size_t)n;
		return n;
	}
	if (r->rewrite || r->pipe[0] < 0) {
		n = iobuf_write_fd(b, dst);
		if (n > 0)
			r->written += (size_t)n;
		return n;
	}
	n = splice_nb(r->pipe[0], dst, r->piped);
	if (n > 0)
		r->piped -= (size_t)n;
	return n;
}

/*
 * Move bytes from @src to @dst through @r. @can_read says @src reported
 * readiness. Returns 0, or -errno on a hard error of either socket.
 */
static int flow(struct session *s, enum proto_dir dir, int src, int dst,
		struct relay *r, bool can_read, bool other_done)
{
	struct tls_side *tin = dir == PROTO_TO_UPSTREAM ? &s->tls_down :
							  &s->tls_up;
	struct tls_side *tout = dir == PROTO_TO_UPSTREAM ? &s->tls_up :
							   &s->tls_down;

	if (can_read && !r->eof) {
		ssize_t n = relay_read(r, src, tin);

		if (n > 0) {
			/* Only this thread writes; the API loads it. */
			__atomic_store_n(&r->count, r->count + (uint64_t)n,
					 __ATOMIC_RELAXED);
			r->last_read = (size_t)n;
		} else if (n == 0)
			r->eof = true;
		else if (n != -EAGAIN && n != -ENOBUFS)
			return (int)n;
	}
	/* The module judges what arrived, and is asked again after output
	 * drained, since a rewriting module may have stopped for room. */
	if (r->pipe[0] < 0 && iobuf_unparsed(&r->buf) && !s->finishing) {
		int ret = s->ops->on_data(s, dir, &r->buf);

		if (ret)
			return ret;
	}
	if (relay_pending(r)) {
		ssize_t n = relay_write(r, dst, tout);

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
	/* The stream ended inside a message the module was still reading:
	 * passing on half of it would be worse than a reset. */
	if (r->eof && r->pipe[0] < 0 && iobuf_unparsed(&r->buf) &&
	    !s->finishing && relay_pending(r) == 0)
		return -EPROTO;
	if (r->eof && relay_pending(r) == 0 && !r->shut) {
		/* When the other direction is done too, the session closes
		 * now and close() sends the FIN. */
		if (!other_done) {
			if (tout->ssl && !tout->handshaking)
				SSL_shutdown(tout->ssl);
			shutdown(dst, SHUT_WR);
		}
		r->shut = true;
	}
	return 0;
}

void session_format_addr(int family, const void *addr, uint16_t port, char *buf,
			 size_t len)
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
	snprintf(path, sizeof(path), "%s/decisions.jsonl", e->cfg->log_dir);
	e->decision_log_fd =
		open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (e->decision_log_fd == -1) {
		snprintf(err, errlen, "cannot open decision log %s: %s", path,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

static json_t *summary_json(const struct session_summary *s)
{
	json_t *j = json_pack(
		"{s:I,s:s,s:s,s:s,s:s,s:{s:i,s:i,s:s*,s:I},s:I,s:I,s:I,s:I}",
		"id", (json_int_t)s->id, "workload", s->workload,
		"original_destination", s->orig, "action", s->action, "rule",
		s->rule, "process", "pid", (int)s->pid, "uid", (int)s->uid,
		"exe", s->exe[0] ? s->exe : NULL, "cgroup_id",
		(json_int_t)s->cgroup_id, "bytes_up", (json_int_t)s->bytes_up,
		"bytes_down", (json_int_t)s->bytes_down, "start_ms",
		(json_int_t)s->start_wall_ms, "duration_ms",
		(json_int_t)s->duration_ms);

	json_object_set_new(j, "target",
			    s->target[0] ? json_string(s->target) :
					   json_null());
	if (s->end_reason[0])
		json_object_set_new(j, "end", json_string(s->end_reason));
	if (s->user[0])
		json_object_set_new(j, "user", json_string(s->user));
	if (s->proto[0])
		json_object_set_new(j, "protocol", json_string(s->proto));
	if (s->recording[0])
		json_object_set_new(j, "recording", json_string(s->recording));
	if (s->recording_error[0])
		json_object_set_new(j, "recording_error",
				    json_string(s->recording_error));
	if (s->proto[0] && strcmp(s->proto, "tcp"))
		json_object_set_new(j, "requests",
				    json_pack("{s:I,s:I,s:I}", "decided",
					      (json_int_t)s->requests, "denied",
					      (json_int_t)s->denied,
					      "masked_values",
					      (json_int_t)s->masked));
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

void session_log_event(struct session *s, const char *event, json_t *fields,
		       bool warn)
{
	json_t *line = json_object();
	char ts[40], *text;

	log_timestamp(ts, sizeof(ts));
	json_object_set_new(line, "ts", json_string(ts));
	json_object_set_new(line, "event", json_string(event));
	json_object_set_new(line, "id", json_integer((json_int_t)s->sum.id));
	json_object_set_new(line, "workload", json_string(s->sum.workload));
	json_object_set_new(line, "target", json_string(s->sum.target));
	json_object_update(line, fields);
	text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text && s->e->session_log_fd >= 0) {
		size_t n = strlen(text);

		text[n] = '\n';
		if (write(s->e->session_log_fd, text, n + 1) == -1)
			log_msg(LOG_WARN, "session_log",
				"cannot write the session log: %s",
				strerror(errno));
	}
	free(text);
	if (warn || log_enabled(LOG_DEBUG))
		log_json(warn ? LOG_WARN : LOG_DEBUG, event, line);
	else
		json_decref(line);
	json_decref(fields);
}

void session_flush_decisions(struct worker *wk)
{
	if (!wk->declog_len)
		return;
	if (wk->e->decision_log_fd >= 0 &&
	    write(wk->e->decision_log_fd, wk->declog, wk->declog_len) == -1)
		log_msg(LOG_WARN, "decision_log",
			"cannot write the decision log: %s", strerror(errno));
	wk->declog_len = 0;
}

/* "workload":…,"process":{…},"user":…,"target":…: who a session is, for
 * its decision lines; built once (and again when a user logs in). */
static char *who_json(const struct session_summary *sum,
		      const struct identity_user *user)
{
	json_t *j = json_pack("{s:s,s:{s:s*,s:i,s:i},s:o,s:s*}", "workload",
			      sum->workload, "process", "exe",
			      sum->exe[0] ? sum->exe : NULL, "pid",
			      (int)sum->pid, "uid", (int)sum->uid, "user",
			      user ? identity_user_json(user) : json_null(),
			      "target", sum->target[0] ? sum->target : NULL);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER |
					       JSON_ENSURE_ASCII) :
			 NULL;
	size_t n;

	json_decref(j);
	/* A user with claims too large for a line: its subject only. */
	if (text && strlen(text) > DECISION_WHO_MAX && user) {
		char sub[256];

		free(text);
		log_utf8(sub, sizeof(sub), user->u.sub ? user->u.sub : "");
		j = json_pack("{s:s,s:{s:s*,s:i,s:i},s:{s:s,s:s,s:b},s:s*}",
			      "workload", sum->workload, "process", "exe",
			      sum->exe[0] ? sum->exe : NULL, "pid",
			      (int)sum->pid, "uid", (int)sum->uid, "user",
			      "issuer", "-", "sub", sub, "claims_cut", 1,
			      "target", sum->target[0] ? sum->target : NULL);
		text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER |
						 JSON_ENSURE_ASCII) :
			   NULL;
		json_decref(j);
	}
	if (!text || strlen(text) > DECISION_WHO_MAX) {
		/* Never a line without who: at least the workload. */
		free(text);
		j = json_pack("{s:s}", "workload", sum->workload);
		text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
	}
	if (!text)
		return NULL;
	/* Without the braces: the line puts it between others. */
	n = strlen(text);
	memmove(text, text + 1, n - 2);
	text[n - 2] = '\0';
	return text;
}

/* ",\"key\":" then @val as a JSON string in at most @budget bytes. */
static size_t field(char *out, size_t cap, const char *key, size_t budget,
		    const char *val)
{
	size_t o = (size_t)snprintf(out, cap, ",\"%s\":", key);

	if (o >= cap)
		return cap;
	return o + log_json_str(out + o, cap - o, budget, val);
}

/* The start of a decision line: {"ts":…,"session":…,WHO,"decision":…
 * (@who: the session's identity part, or NULL). Returns its length. */
static size_t line_head(char *line, size_t cap, const char *ts,
			uint64_t session, const char *who, const char *decision)
{
	size_t o = (size_t)snprintf(line, cap,
				    "{\"ts\":\"%s\",\"session\":%llu,%s,"
				    "\"decision\":\"%s\"",
				    ts, (unsigned long long)session,
				    who ? who : "\"workload\":null", decision);

	return o < cap ? o : cap;
}

/* A whole line of @o bytes (room for its newline after it) into the
 * worker's buffer of decision-log lines, written after the batch. */
static void declog_put(struct worker *wk, char *line, size_t o)
{
	line[o++] = '\n';
	if (wk->declog_len + o > sizeof(wk->declog))
		session_flush_decisions(wk);
	memcpy(wk->declog + wk->declog_len, line, o);
	wk->declog_len += o;
}

/*
 * One line in the decision log: who asked (@who: workload, process, user,
 * target), what (@request, a summary; @statement, its text with literals
 * replaced), and what the policy said, by which rule and version. Written
 * by hand: every statement has one. The lines of a batch of events go out
 * together (session_reap), in one write(2) of the worker's buffer. Every
 * field has its budget, so the agent's text cannot push out the others.
 */
static void decision_line(struct worker *wk, uint64_t session, const char *who,
			  const struct policy *p,
			  const struct policy_decision *d, const char *request,
			  const char *statement)
{
	struct enforcer *e = wk->e;
	char line[DECISION_LINE_MAX], ts[40];
	size_t o, cap = sizeof(line) - 2;
	const char *rule = d->would_rule ? d->would_rule : d->rule;

	policy_note(p, d);
	if (e->decision_log_fd < 0)
		return;
	/* A statement allowed outright: left out at level "refusals". */
	if (e->cfg->decision_log == DECISION_LOG_REFUSALS && statement &&
	    d->action == POLICY_ALLOW && !d->would_rule)
		return;
	log_timestamp(ts, sizeof(ts));
	o = line_head(line, cap, ts, session, who, policy_decision_name(d));
	o += field(line + o, cap - o, "rule", 512, rule);
	if (d->would_rule && strcmp(d->would_rule, d->rule))
		o += field(line + o, cap - o, "allowed_by", 512, d->rule);
	if (!d->would_rule && d->message)
		o += field(line + o, cap - o, "message", 512, d->message);
	o += field(line + o, cap - o, "request", 512, request);
	o += field(line + o, cap - o, "statement", 2048, statement);
	o += (size_t)snprintf(
		line + o, cap - o,
		",\"policy\":{\"version\":\"%s\",\"generation\":%llu}}",
		policy_version(p),
		(unsigned long long)__atomic_load_n(&e->policy_generation,
						    __ATOMIC_RELAXED));
	if (o >= cap) /* cannot happen with the budgets; never a torn line */
		o = (size_t)snprintf(line, cap,
				     "{\"ts\":\"%s\",\"session\":%llu,"
				     "\"decision\":\"%s\",\"truncated\":true}",
				     ts, (unsigned long long)session,
				     policy_decision_name(d));
	declog_put(wk, line, o);
	if (d->would_rule)
		log_msg(LOG_INFO, "shadow",
			"session %llu: %s would be %s by rule \"%s\" "
			"(shadow mode: allowed)",
			(unsigned long long)session, request,
			d->would_action == POLICY_REVIEW ? "held for review" :
							   "denied",
			d->would_rule);
}

/* Keep @s in the worker's ring of recent sessions. Caller holds wk->lock. */
static void remember(struct worker *wk, const struct session_summary *s)
{
	uint32_t cap = wk->e->cfg->recent_sessions;

	if (!wk->recent || !cap)
		return;
	wk->recent[wk->recent_head] = *s;
	wk->recent_head = (wk->recent_head + 1) % cap;
	if (wk->nrecent < cap)
		wk->nrecent++;
}

static void close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Refuse an accepted connection: reset it, log why, remember it. */
static void refuse(struct worker *wk, int fd, struct session_summary *s,
		   const char *reason)
{
	close_rst(fd);
	snprintf(s->action, sizeof(s->action), "deny");
	if (reason && reason != s->end_reason)
		snprintf(s->end_reason, sizeof(s->end_reason), "%s", reason);
	session_log(wk->e, "decision", s);
	pthread_mutex_lock(&wk->lock);
	remember(wk, s);
	pthread_mutex_unlock(&wk->lock);
}

/* ------------------------------------------------------------ recording */

/*
 * The recording of @s failed (errno @err) while @what: it ends here. By
 * config the session goes on unrecorded (said in the log, the status and
 * its summary), or every later request is refused.
 */
static void rec_fail(struct session *s, const char *what, int err)
{
	struct recorder *r = s->e->recorder;
	bool goes_on = !recorder_refuses(r);

	if (s->rec) {
		record_close(s->rec);
		s->rec = NULL;
	}
	if (s->rec_err)
		return;
	s->rec_err = err ? err : EIO;
	recorder_failed(r, s->sum.id, what, s->rec_err, goes_on);
	snprintf(s->sum.recording_error, sizeof(s->sum.recording_error),
		 "%s: %s", what, strerror(s->rec_err));
	snprintf(s->rec_refusal, sizeof(s->rec_refusal),
		 "bridle: this session can no longer be recorded (%s), so "
		 "its requests are not sent",
		 strerror(s->rec_err));
}

/* After staging (@r: its result): the session has records to write. */
static void rec_staged(struct session *s, int r)
{
	if (r) {
		rec_fail(s, "preparing a record", -r);
		return;
	}
	if (!s->rec_dirty) {
		s->rec_dirty = true;
		s->rec_next = s->wk->rec_dirty;
		s->wk->rec_dirty = s;
	}
}

static void rec_stage(struct session *s, const char *kind, json_t *fields)
{
	if (!s->rec) {
		json_decref(fields);
		return;
	}
	rec_staged(s, record_stage(s->rec, kind, fields));
}

static void rec_stage_buf(struct session *s, const char *kind,
			  const struct record_buf *b)
{
	if (s->rec)
		rec_staged(s, record_stage_buf(s->rec, kind, b));
}

static int rec_write(struct session *s, const char *what)
{
	int r;

	if (!s->rec)
		return s->rec_err ? -s->rec_err : 0;
	r = record_flush(s->rec);
	if (r) {
		rec_fail(s, what, -r);
		return r;
	}
	recorder_wrote(s->e->recorder);
	return 0;
}

/* The records staged since the last request of each session, written
 * (every tick: within TICK_MS of being staged). */
static void rec_flush_batch(struct worker *wk)
{
	while (wk->rec_dirty) {
		struct session *s = wk->rec_dirty;

		wk->rec_dirty = s->rec_next;
		s->rec_dirty = false;
		s->rec_next = NULL;
		if (s->rec && record_pending(s->rec))
			rec_write(s, "writing records");
	}
}

/* The session's first record: who, from where, to what, under which
 * policy. */
static json_t *rec_start_fields(struct session *s)
{
	const struct config_workload *wc = s->wl->cfg;
	json_t *wl =
		json_pack("{s:s,s:O}", "name", wc->name, "labels", wc->labels);

	if (wc->k8s_namespace)
		json_object_set_new(wl, "namespace",
				    json_string(wc->k8s_namespace));
	if (wc->pod)
		json_object_set_new(wl, "pod", json_string(wc->pod));
	if (wc->service_account)
		json_object_set_new(wl, "service_account",
				    json_string(wc->service_account));
	return json_pack("{s:I,s:s,s:o,s:{s:s*,s:i,s:i,s:I},s:{s:s,s:s,s:s},"
			 "s:{s:s,s:s},s:{s:s,s:I}}",
			 "session", (json_int_t)s->sum.id, "recording",
			 s->sum.recording, "workload", wl, "process", "exe",
			 s->sum.exe[0] ? s->sum.exe : NULL, "pid",
			 (int)s->sum.pid, "uid", (int)s->sum.uid, "cgroup_id",
			 (json_int_t)s->sum.cgroup_id, "target", "name",
			 s->sum.target, "protocol", s->sum.proto, "destination",
			 s->sum.orig, "connection", "decision", s->sum.action,
			 "rule", s->sum.rule, "policy", "version",
			 s->policy ? policy_version(s->policy) : "",
			 "generation", (json_int_t)s->policy_gen);
}

/*
 * Open the recording of a new session and write its start. Returns 0
 * when the session may go on (recorded, or unrecorded by config), or
 * -errno with the reason in @why when it is to be refused.
 */
static int rec_open(struct session *s, char *why, size_t len)
{
	struct recorder *r = s->e->recorder;
	char err[512];

	if (!r)
		return 0;
	s->rec = recorder_open(r, &s->sum, s->sum.recording,
			       sizeof(s->sum.recording), err, sizeof(err));
	if (!s->rec) {
		int e = errno ? errno : EIO;

		s->sum.recording[0] = '\0';
		rec_fail(s, "creating the recording", e);
		log_msg(LOG_ERROR, "recording", "session %llu: %s",
			(unsigned long long)s->sum.id, err);
		snprintf(why, len,
			 "bridle: the session cannot be recorded (%s), so it "
			 "is refused",
			 strerror(e));
		return recorder_refuses(r) ? -e : 0;
	}
	rec_stage(s, "start", rec_start_fields(s));
	if (rec_write(s, "writing the session's start") &&
	    recorder_refuses(r)) {
		snprintf(why, len,
			 "bridle: the session cannot be recorded (%s), so it "
			 "is refused",
			 strerror(s->rec_err));
		return -s->rec_err;
	}
	return 0;
}

/* The session's last record, then the file is sealed and closed. */
static void rec_end(struct session *s)
{
	uint64_t n, bytes;
	int r;

	if (!s->rec)
		return;
	rec_stage(s, "end",
		  json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "reason",
			    s->sum.end_reason, "requests",
			    (json_int_t)s->sum.requests, "denied",
			    (json_int_t)s->sum.denied, "masked",
			    (json_int_t)s->sum.masked, "bytes_up",
			    (json_int_t)s->sum.bytes_up, "bytes_down",
			    (json_int_t)s->sum.bytes_down, "duration_ms",
			    (json_int_t)s->sum.duration_ms));
	if (!s->rec)
		return;
	r = record_finish(s->rec, &n, &bytes);
	s->rec = NULL;
	if (r) {
		recorder_failed(s->e->recorder, s->sum.id,
				"closing the recording", -r, true);
		return;
	}
	recorder_closed(s->e->recorder, n, bytes);
}

bool session_recorded(const struct session *s)
{
	return s->rec != NULL;
}

uint64_t session_record_request(struct session *s, struct record_buf *fields)
{
	s->req++;
	if (!s->rec || !fields)
		return s->req;
	record_buf_int(fields, "req", (long long)s->req);
	rec_stage_buf(s, "request", fields);
	return s->req;
}

void session_record_buf(struct session *s, const char *kind,
			const struct record_buf *fields)
{
	rec_stage_buf(s, kind, fields);
}

void session_record(struct session *s, const char *kind, json_t *fields)
{
	rec_stage(s, kind, fields);
}

bool session_record_refusing(const struct session *s)
{
	return s->rec_err && recorder_refuses(s->e->recorder);
}

const char *session_record_commit(struct session *s)
{
	if (!s->rec && !s->rec_err)
		return NULL;
	if (!rec_write(s, "writing a request's record") ||
	    !recorder_refuses(s->e->recorder))
		return NULL;
	recorder_refused(s->e->recorder);
	return s->rec_refusal;
}

static void session_update_interest(struct session *s);

static void session_close(struct session *s, const char *reason, bool reset)
{
	struct worker *wk = s->wk;

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
	/* The API copies s->sum under the lock: finish it under the lock. */
	pthread_mutex_lock(&wk->lock);
	snprintf(s->sum.end_reason, sizeof(s->sum.end_reason), "%s", reason);
	s->sum.duration_ms = loop_now_ms(wk->loop) - s->start_ms;
	s->sum.bytes_up = s->to_up.count;
	s->sum.bytes_down = s->to_down.count;
	s->sum.requests = s->requests;
	s->sum.denied = s->denied;
	s->sum.masked = s->masked;
	remember(wk, &s->sum);
	/* Unlink from the live list; freed after this batch of events. */
	if (s->prev)
		s->prev->next = s->next;
	else
		wk->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	wk->nsessions--;
	pthread_mutex_unlock(&wk->lock);
	rec_end(s);
	session_log(s->e, "close", &s->sum);
	__atomic_sub_fetch(&s->e->nsessions, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&s->wl->live, 1, __ATOMIC_RELAXED);
	s->prev = NULL;
	s->next = wk->graveyard;
	wk->graveyard = s;
}

/* Free @s and all it owns (sockets are closed by session_close). */
static void session_free(struct session *s)
{
	if (s->rec) {
		/* Refused after its start was recorded: say so (before it
		 * leaves the list of sessions with records to write). */
		rec_stage(s, "end",
			  json_pack("{s:s}", "reason",
				    "refused before it started"));
		if (s->rec)
			record_close(s->rec);
		s->rec = NULL;
	}
	if (s->rec_dirty) {
		struct session **pp = &s->wk->rec_dirty;

		while (*pp && *pp != s)
			pp = &(*pp)->rec_next;
		if (*pp)
			*pp = s->rec_next;
	}
	if (s->ops->release)
		s->ops->release(s);
	relay_release(&s->to_up);
	relay_release(&s->to_down);
	SSL_free(s->tls_down.ssl);
	SSL_free(s->tls_up.ssl);
	policy_free(s->policy);
	identity_user_free(s->user);
	free(s->who);
	free(s);
}

void session_reap(void *arg)
{
	struct worker *wk = arg;

	session_flush_decisions(wk);
	while (wk->graveyard) {
		struct session *s = wk->graveyard;

		wk->graveyard = s->next;
		session_free(s);
	}
	if (wk->draining && wk->nsessions == 0)
		loop_stop(wk->loop);
}

static void watch_set(struct session *s, struct loop_watch *w, bool *reg,
		      bool done, uint32_t want)
{
	struct loop *l = s->wk->loop;

	if (done) {
		/* Both directions finished: HUP would wake us forever. */
		if (*reg) {
			loop_del(l, w);
			*reg = false;
		}
		return;
	}
	if (*reg)
		loop_mod(l, w, want);
}

/* What a side under TLS setup waits for; @normal otherwise. */
static uint32_t tls_interest(const struct tls_side *t, uint32_t normal)
{
	if (t->handshaking)
		return (t->want_read ? EPOLLIN : 0) |
		       (t->want_write ? EPOLLOUT : 0);
	if (t->pending)
		return normal & ~EPOLLIN;
	return normal;
}

static void session_update_interest(struct session *s)
{
	uint32_t down = 0, up = 0;

	if (!s->to_up.eof && relay_room(&s->to_up) && !s->finishing)
		down |= EPOLLIN;
	if (relay_pending(&s->to_down))
		down |= EPOLLOUT;
	if (!s->to_down.eof && relay_room(&s->to_down) && !s->finishing)
		up |= EPOLLIN;
	if (relay_pending(&s->to_up))
		up |= EPOLLOUT;
	down = tls_interest(&s->tls_down, down);
	up = tls_interest(&s->tls_up, up);
	/* A side is done once we read its EOF and sent it ours. */
	watch_set(s, &s->down, &s->down_registered,
		  s->to_up.eof && s->to_down.shut, down);
	watch_set(s, &s->up, &s->up_registered, s->to_down.eof && s->to_up.shut,
		  up);
}

/* "side: reason", valid until this thread's next call (callers copy it). */
static const char *errno_reason(int err, const char *side)
{
	static __thread char buf[96];

	snprintf(buf, sizeof(buf), "%s: %s", side, strerror(err));
	return buf;
}

/*
 * Move TLS setup on: start a pending side whose clear-text prefix went
 * out, and step handshakes. Returns 1 when a handshake finished (bytes
 * may now move), 0, or -1 after closing the session.
 */
static int tls_progress(struct session *s)
{
	struct {
		struct tls_side *t;
		struct relay *out;
		int fd;
		const char *who;
	} sides[2] = {
		{ &s->tls_down, &s->to_down, s->down.fd, "agent" },
		{ &s->tls_up, &s->to_up, s->up.fd, "destination" },
	};
	int done = 0;

	for (int i = 0; i < 2; i++) {
		struct tls_side *t = sides[i].t;
		char reason[96];
		int r;

		if (t->pending && sides[i].out->written >= t->at) {
			t->ssl = SSL_new(t->ctx);
			if (!t->ssl || SSL_set_fd(t->ssl, sides[i].fd) != 1)
				goto fail;
			if (t->server) {
				SSL_set_accept_state(t->ssl);
			} else {
				X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);

				SSL_set_connect_state(t->ssl);
				if (t->verify_name[0] &&
				    X509_VERIFY_PARAM_set1_ip_asc(
					    vp, t->verify_name) != 1) {
					X509_VERIFY_PARAM_set1_host(
						vp, t->verify_name, 0);
					SSL_set_tlsext_host_name(
						t->ssl, t->verify_name);
				}
			}
			t->pending = false;
			t->handshaking = true;
		}
		if (!t->handshaking || t->failed)
			continue;
		ERR_clear_error();
		r = SSL_do_handshake(t->ssl);
		t->want_read = t->want_write = false;
		if (r == 1) {
			t->handshaking = false;
			done = 1;
			continue;
		}
		switch (SSL_get_error(t->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			t->want_read = true;
			continue;
		case SSL_ERROR_WANT_WRITE:
			t->want_write = true;
			continue;
		default:
			break;
		}
fail:
		if (t->ssl && SSL_get_verify_result(t->ssl) != X509_V_OK)
			snprintf(reason, sizeof(reason),
				 "TLS with the %s: certificate: %s",
				 sides[i].who,
				 X509_verify_cert_error_string(
					 SSL_get_verify_result(t->ssl)));
		else
			snprintf(reason, sizeof(reason), "TLS with the %s: %s",
				 sides[i].who, tls_error("handshake failed"));
		log_msg(LOG_WARN, "tls", "session %llu (%s → %s): %s",
			(unsigned long long)s->sum.id, s->sum.workload,
			s->sum.target, reason);
		if (i == 1 && s->ops->upstream_failed) {
			t->failed = true;
			t->want_read = t->want_write = false;
			s->ops->upstream_failed(s, reason);
			continue;
		}
		session_close(s, reason, true);
		return -1;
	}
	return done;
}

int session_start_tls(struct session *s, enum proto_dir toward, SSL_CTX *ctx,
		      const char *verify_name)
{
	struct tls_side *t = toward == PROTO_TO_AGENT ? &s->tls_down :
							&s->tls_up;
	struct relay *r = toward == PROTO_TO_AGENT ? &s->to_down : &s->to_up;

	if (t->ssl || t->pending || !ctx)
		return -EINVAL;
	t->ctx = ctx;
	t->server = toward == PROTO_TO_AGENT;
	snprintf(t->verify_name, sizeof(t->verify_name), "%s",
		 verify_name ? verify_name : "");
	t->at = r->written + relay_pending(r);
	t->pending = true;
	return 0;
}

static void session_pump(struct session *s, bool down_ready, bool up_ready)
{
	int ret;

	ret = tls_progress(s);
	if (ret < 0)
		return;
	/* What OpenSSL decrypted already, epoll does not announce. */
	if (s->tls_down.ssl && !s->tls_down.handshaking &&
	    SSL_has_pending(s->tls_down.ssl))
		down_ready = true;
	if (s->tls_up.ssl && !s->tls_up.handshaking &&
	    SSL_has_pending(s->tls_up.ssl))
		up_ready = true;
	if (s->finishing)
		down_ready = up_ready = false;
	/* A refused session has no destination socket to read. */
	if (s->up.fd < 0)
		up_ready = false;
	ret = flow(s, PROTO_TO_UPSTREAM, s->down.fd, s->up.fd, &s->to_up,
		   down_ready, s->to_down.shut);
	if (ret) {
		session_close(s, errno_reason(-ret, "relay to destination"),
			      true);
		return;
	}
	ret = flow(s, PROTO_TO_AGENT, s->up.fd, s->down.fd, &s->to_down,
		   up_ready, s->to_up.shut);
	if (ret) {
		session_close(s, errno_reason(-ret, "relay to agent"), true);
		return;
	}
	/* What the module queued for the destination while reading from it
	 * (a login step) goes out now, not on the agent's next message. */
	if (s->to_up.rewrite && relay_pending(&s->to_up) && !s->to_up.shut) {
		ret = flow(s, PROTO_TO_UPSTREAM, s->down.fd, s->up.fd,
			   &s->to_up, false, s->to_down.shut);
		if (ret) {
			session_close(
				s, errno_reason(-ret, "relay to destination"),
				true);
			return;
		}
	}
	s->last_ms = loop_now_ms(s->wk->loop);
	if (s->finishing && relay_pending(&s->to_down) == 0) {
		session_close(s, s->finish_reason, false);
		return;
	}
	/* A clear-text prefix that just went out starts a handshake; a
	 * handshake that just finished lets queued bytes move. */
	ret = tls_progress(s);
	if (ret < 0)
		return;
	if (ret > 0) {
		session_pump(s, true, true);
		return;
	}
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
		session_close(s, errno_reason(sock_error(w->fd), "agent"),
			      true);
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
		pthread_mutex_lock(&s->wk->lock); /* the API reads it */
		s->connecting = false;
		pthread_mutex_unlock(&s->wk->lock);
		nodelay(w->fd);
		/* The agent side waited for this: start reading it now. */
		s->down_registered = true;
		if (loop_add(s->wk->loop, &s->down, s->down.fd, EPOLLIN,
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
/* Give back the session slot session_start took for a refused session. */
static void release_slot(struct enforcer *e, struct workload *w)
{
	__atomic_sub_fetch(&e->nsessions, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&w->live, 1, __ATOMIC_RELAXED);
}

/*
 * A new session of @ops for @sum, its relays and its module set up. It
 * takes @policy (a reference, may be NULL) even when it fails: then it
 * returns NULL, and the caller refuses the connection.
 */
static struct session *session_new(struct worker *wk, struct workload *w,
				   const struct bridle_orig *o,
				   const struct proto_ops *ops,
				   const struct session_summary *sum,
				   struct policy *policy, enum relay_mode mode)
{
	struct enforcer *e = wk->e;
	struct session *s = calloc(1, sizeof(*s));

	if (!s) {
		policy_free(policy);
		return NULL;
	}
	s->sum = *sum;
	s->ops = ops;
	s->e = e;
	s->wk = wk;
	s->wl = w;
	s->orig = *o;
	s->policy = policy;
	s->down.fd = s->up.fd = -1;
	if (relay_init(&s->to_up, e->cfg->buffer_size, mode, !ops->opaque) ||
	    relay_init(&s->to_down, e->cfg->buffer_size, mode, !ops->opaque) ||
	    (ops->init && ops->init(s))) {
		session_free(s);
		return NULL;
	}
	return s;
}

/* Put @s on its worker's live list, where the API sees it. */
static void session_link(struct session *s)
{
	struct worker *wk = s->wk;

	pthread_mutex_lock(&wk->lock);
	s->next = wk->sessions;
	if (wk->sessions)
		wk->sessions->prev = s;
	wk->sessions = s;
	wk->nsessions++;
	pthread_mutex_unlock(&wk->lock);
}

static void session_open_refusal(struct worker *wk, struct workload *w, int fd,
				 const struct bridle_orig *o,
				 const struct proto_ops *ops,
				 struct session_summary *sum, const char *why);

/*
 * Start the upstream connection of an allowed session. The caller took a
 * slot in e->nsessions; a refusal here gives it back.
 */
static void session_open_upstream(struct worker *wk, struct workload *w, int fd,
				  const struct bridle_orig *o,
				  const struct proto_ops *ops,
				  struct session_summary *sum,
				  struct policy *policy, uint64_t gen,
				  size_t target_idx)
{
	enum relay_mode mode;
	struct enforcer *e = wk->e;
	struct sockaddr_storage ss;
	struct session *s;
	socklen_t sl;
	int family = keys_orig_sockaddr(o, &ss, &sl), ufd;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	if (family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr)) {
		uint32_t scope =
			__atomic_load_n(&w->link_scope, __ATOMIC_RELAXED);

		if (!scope) {
			release_slot(e, w);
			policy_free(policy);
			refuse(wk, fd, sum,
			       "IPv6 link-local destination, and the workload "
			       "has several interfaces: the agent's choice "
			       "is not visible to bridle");
			return;
		}
		sin6->sin6_scope_id = scope;
	}

	/* Only an opaque protocol may move bytes it never sees. */
	mode = ops->opaque ? e->cfg->relay : RELAY_COPY;
	s = session_new(wk, w, o, ops, sum, policy, mode);
	if (!s) {
		release_slot(e, w);
		refuse(wk, fd, sum, "out of memory");
		return;
	}
	s->policy_gen = gen;
	s->target_idx = target_idx;
	{
		char why[256];

		if (rec_open(s, why, sizeof(why))) {
			session_free(s);
			release_slot(e, w);
			if (ops->opaque || !ops->init)
				refuse(wk, fd, sum, why + strlen("bridle: "));
			else
				session_open_refusal(wk, w, fd, o, ops, sum,
						     why);
			return;
		}
	}
	ufd = enroll_socket_in(e, w, family, SOCK_STREAM);
	if (ufd < 0) {
		session_free(s);
		release_slot(e, w);
		refuse(wk, fd, sum, errno_reason(-ufd, "upstream socket"));
		return;
	}
	s->down.fd = fd;
	s->up.fd = ufd;
	s->start_ms = s->last_ms = loop_now_ms(wk->loop);
	s->connect_deadline_ms = s->start_ms + e->cfg->connect_timeout_ms;
	s->connecting = true;
	session_link(s);
	nodelay(fd);
	session_log(e, "decision", &s->sum);
	if (connect(ufd, (struct sockaddr *)&ss, sl) == -1 &&
	    errno != EINPROGRESS) {
		s->down_registered = false;
		session_close(s, errno_reason(errno, "connect"), true);
		return;
	}
	/* Wait for the connect before reading the agent: nothing to send to. */
	s->up_registered = true;
	if (loop_add(wk->loop, &s->up, ufd, EPOLLOUT, on_up)) {
		s->up_registered = false;
		session_close(s, "cannot watch the upstream socket", true);
	}
}

static void count(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* Take a session slot (max_sessions, max_sessions_per_workload); on
 * failure, the reason. */
static const char *take_slot(struct enforcer *e, struct workload *w)
{
	if (__atomic_add_fetch(&e->nsessions, 1, __ATOMIC_RELAXED) >
	    e->cfg->max_sessions) {
		__atomic_sub_fetch(&e->nsessions, 1, __ATOMIC_RELAXED);
		return "too many sessions (max_sessions)";
	}
	/* One workload must not take every slot from the others. */
	if (__atomic_add_fetch(&w->live, 1, __ATOMIC_RELAXED) >
	    e->cfg->max_sessions_per_workload) {
		__atomic_sub_fetch(&w->live, 1, __ATOMIC_RELAXED);
		__atomic_sub_fetch(&e->nsessions, 1, __ATOMIC_RELAXED);
		return "too many sessions for this workload "
		       "(max_sessions_per_workload)";
	}
	return NULL;
}

/*
 * Refuse a connection to a protocol-aware target in the protocol's words
 * (PostgreSQL: FATAL 28000 after the startup packet) rather than with a
 * reset: the session has no destination socket, and its module answers
 * the agent with @why. Falls back to a reset without a free slot.
 */
static void session_open_refusal(struct worker *wk, struct workload *w, int fd,
				 const struct bridle_orig *o,
				 const struct proto_ops *ops,
				 struct session_summary *sum, const char *why)
{
	struct enforcer *e = wk->e;
	struct session *s;

	if (wk->draining || take_slot(e, w)) {
		refuse(wk, fd, sum, sum->end_reason);
		return;
	}
	s = session_new(wk, w, o, ops, sum, NULL, RELAY_COPY);
	if (!s) {
		release_slot(e, w);
		refuse(wk, fd, sum, sum->end_reason);
		return;
	}
	s->target_idx = SIZE_MAX;
	snprintf(s->refusal, sizeof(s->refusal), "%s", why);
	s->down.fd = fd;
	s->start_ms = s->last_ms = loop_now_ms(wk->loop);
	session_link(s);
	nodelay(fd);
	session_log(e, "decision", &s->sum);
	s->down_registered = true;
	if (loop_add(wk->loop, &s->down, fd, EPOLLIN, on_down)) {
		s->down_registered = false;
		session_close(s, "cannot watch the agent socket", true);
	}
}

static void session_start(struct worker *wk, struct workload *w, int fd,
			  const struct sockaddr_storage *peer,
			  socklen_t peer_len)
{
	struct enforcer *e = wk->e;
	struct session_summary sum = {};
	struct bridle_tuple_key key = {};
	struct bridle_orig o;
	struct policy_decision d;
	struct policy_input in = {};
	struct policy *policy;
	uint64_t gen;
	enum policy_proto proto;
	char path[64];
	ssize_t n;

	sum.id = __atomic_add_fetch(&e->next_session_id, 1, __ATOMIC_RELAXED);
	sum.start_wall_ms = (uint64_t)log_wall_ms();
	snprintf(sum.workload, sizeof(sum.workload), "%s", w->cfg->name);
	count(&w->accepted);
	if (keys_tuple_from_peer(w->netns_cookie, (const struct sockaddr *)peer,
				 peer_len, &key)) {
		snprintf(sum.orig, sizeof(sum.orig), "unknown");
		count(&w->refused);
		refuse(wk, fd, &sum, "peer address family not supported");
		return;
	}
	if (bridle_bpf_take_orig(e->bpf, &key, &o)) {
		/* Not redirected by our programs: a direct connection to the
		 * listener, or from a process outside the workload. */
		snprintf(sum.orig, sizeof(sum.orig), "unknown");
		count(&w->refused);
		refuse(wk, fd, &sum, "no recorded original destination");
		return;
	}
	session_format_addr(o.family, o.addr, o.port, sum.orig,
			    sizeof(sum.orig));
	sum.pid = o.tgid;
	sum.uid = o.uid;
	sum.cgroup_id = o.cgroup_id;
	snprintf(path, sizeof(path), "/proc/%u/exe", o.tgid);
	{
		char raw[sizeof(sum.exe)];

		/* Any bytes at all: made UTF-8 for the logs and JSON. */
		n = readlink(path, raw, sizeof(raw) - 1);
		raw[n > 0 ? n : 0] = '\0';
		log_utf8(sum.exe, sizeof(sum.exe), raw);
	}
	/* The kernel says which enrolled cgroup the process is in; it must
	 * be the workload whose namespace this listener serves. */
	if (o.workload_cgroup != w->cgroup_id || o.pod_id != w->pod_id) {
		count(&w->refused);
		refuse(wk, fd, &sum,
		       "connection from a cgroup that is not this workload's");
		return;
	}
	in.workload = w->cfg->name;
	in.labels = w->cfg->labels;
	in.k8s_namespace = w->cfg->k8s_namespace;
	in.pod = w->cfg->pod;
	in.service_account = w->cfg->service_account;
	in.exe = sum.exe[0] ? sum.exe : NULL;
	in.uid = o.uid;
	in.pid = o.tgid;
	in.user_pending = true;
	in.now = (int64_t)time(NULL);
	in.family = o.family;
	in.addr = (const uint8_t *)o.addr;
	in.port = o.port;
	/* The decision's strings belong to the policy: copy them under the
	 * lock, since a reload may free it right after. */
	pthread_rwlock_rdlock(&e->policy_lock);
	policy_decide(e->cfg->policy, &in, &d);
	if (d.target)
		snprintf(sum.target, sizeof(sum.target), "%s", d.target);
	{
		char *who = who_json(&sum, NULL);

		decision_line(wk, sum.id, who, e->cfg->policy, &d, "connect",
			      NULL);
		free(who);
	}
	snprintf(sum.rule, sizeof(sum.rule), "%s", d.rule);
	if (d.target)
		snprintf(sum.target, sizeof(sum.target), "%s", d.target);
	if (d.message)
		snprintf(sum.end_reason, sizeof(sum.end_reason), "%s",
			 d.message);
	proto = d.proto;
	/* The session decides its statements with this policy until a
	 * reload: hold it. */
	policy = d.action == POLICY_ALLOW ? policy_ref(e->cfg->policy) : NULL;
	gen = __atomic_load_n(&e->policy_generation, __ATOMIC_ACQUIRE);
	pthread_rwlock_unlock(&e->policy_lock);
	if (d.action != POLICY_ALLOW) {
		const struct proto_ops *ops = proto_for(proto);
		char why[256];

		count(&w->refused);
		if (!sum.end_reason[0])
			snprintf(sum.end_reason, sizeof(sum.end_reason),
				 "denied by policy");
		if (!d.target || ops->opaque || !ops->init) {
			refuse(wk, fd, &sum, sum.end_reason);
			return;
		}
		snprintf(sum.action, sizeof(sum.action), "deny");
		snprintf(sum.proto, sizeof(sum.proto), "%s",
			 policy_proto_name(proto));
		if (strcmp(sum.end_reason, "denied by policy"))
			snprintf(why, sizeof(why), "bridle: %s (rule \"%s\")",
				 sum.end_reason, sum.rule);
		else
			snprintf(why, sizeof(why),
				 "bridle: workload \"%s\" may not reach "
				 "target \"%s\" (rule \"%s\")",
				 sum.workload, sum.target, sum.rule);
		session_open_refusal(wk, w, fd, &o, ops, &sum, why);
		return;
	}
	if (wk->draining) {
		count(&w->refused);
		policy_free(policy);
		refuse(wk, fd, &sum, "enforcer is draining");
		return;
	}
	{
		const char *full = take_slot(e, w);

		if (full) {
			count(&w->refused);
			policy_free(policy);
			refuse(wk, fd, &sum, full);
			return;
		}
	}
	snprintf(sum.action, sizeof(sum.action), "allow");
	snprintf(sum.proto, sizeof(sum.proto), "%s", policy_proto_name(proto));
	session_open_upstream(wk, w, fd, &o, proto_for(proto), &sum, policy,
			      gen, d.target_idx);
}

void session_review_line(struct session *s, const char *outcome,
			 uint64_t review, const char *rule, const char *by,
			 const char *reason, uint64_t grant)
{
	struct worker *wk = s->wk;
	char line[DECISION_LINE_MAX], ts[40];
	size_t o, cap = sizeof(line) - 2;

	if (s->e->decision_log_fd < 0)
		return;
	if (!s->who)
		s->who = who_json(&s->sum, s->user);
	log_timestamp(ts, sizeof(ts));
	o = line_head(line, cap, ts, s->sum.id, s->who, outcome);
	if (o < cap)
		o += (size_t)snprintf(line + o, cap - o, ",\"review\":%llu",
				      (unsigned long long)review);
	o += field(line + o, cap - o, "rule", 512, rule);
	if (by && *by)
		o += field(line + o, cap - o, "by", 256, by);
	if (reason && *reason)
		o += field(line + o, cap - o, "reason", 512, reason);
	if (grant && o < cap)
		o += (size_t)snprintf(line + o, cap - o, ",\"grant\":%llu",
				      (unsigned long long)grant);
	if (o >= cap - 1)
		return;
	line[o++] = '}';
	declog_put(wk, line, o);
}

void session_decision(struct session *s, const struct policy *p,
		      const struct policy_decision *d, const char *request,
		      const char *statement)
{
	if (!s->who)
		s->who = who_json(&s->sum, s->user);
	decision_line(s->wk, s->sum.id, s->who, p, d, request, statement);
	if (s->rec) {
		struct record_buf *b = &s->wk->rb;

		record_buf_reset(b);
		record_buf_int(b, "req", (long long)s->req);
		record_buf_str(b, "decision", policy_decision_name(d), 32);
		record_buf_str(b, "rule",
			       d->would_rule ? d->would_rule : d->rule, 512);
		if (d->would_rule && strcmp(d->would_rule, d->rule))
			record_buf_str(b, "allowed_by", d->rule, 512);
		if (!d->would_rule && d->message)
			record_buf_str(b, "message", d->message, 512);
		/* The summary names tables as the agent wrote them. */
		record_buf_str(b, "request", request, 512);
		record_buf_str(b, "policy", policy_version(p), 64);
		rec_stage_buf(s, "decision", b);
	}
}

void session_set_user(struct session *s, struct identity_user *u)
{
	identity_user_free(s->user);
	s->user = u;
	free(s->who);
	s->who = NULL;
	snprintf(s->sum.user, sizeof(s->sum.user), "%s",
		 u && u->u.sub ? u->u.sub : "");
	if (u)
		rec_stage(s, "user",
			  json_pack("{s:o}", "user", identity_user_json(u)));
}

const struct identity_user *session_user(const struct session *s)
{
	return s->user;
}

const char *session_refusal(const struct session *s)
{
	return s->refusal[0] ? s->refusal : NULL;
}

void *session_state(struct session *s)
{
	return s->state;
}

void session_set_state(struct session *s, void *state)
{
	s->state = state;
}

struct iobuf *session_out(struct session *s, enum proto_dir dir)
{
	return dir == PROTO_TO_UPSTREAM ? &s->to_up.out : &s->to_down.out;
}

void session_finish(struct session *s, const char *reason)
{
	if (s->finishing)
		return;
	s->finishing = true;
	snprintf(s->finish_reason, sizeof(s->finish_reason), "%s", reason);
}

struct policy *session_policy(struct session *s, size_t *target,
			      uint64_t *generation)
{
	struct enforcer *e = s->e;

	if (__atomic_load_n(&e->policy_generation, __ATOMIC_ACQUIRE) !=
	    s->policy_gen) {
		struct policy *np;

		pthread_rwlock_rdlock(&e->policy_lock);
		np = policy_ref(e->cfg->policy);
		s->policy_gen = __atomic_load_n(&e->policy_generation,
						__ATOMIC_ACQUIRE);
		pthread_rwlock_unlock(&e->policy_lock);
		policy_free(s->policy);
		s->policy = np;
		if (!policy_target_find(np, s->sum.target, &s->target_idx))
			s->target_idx = SIZE_MAX;
	}
	*target = s->target_idx;
	if (generation)
		*generation = s->policy_gen;
	return s->policy;
}

void session_policy_input(struct session *s, struct policy_input *in)
{
	memset(in, 0, sizeof(*in));
	in->workload = s->wl->cfg->name;
	in->labels = s->wl->cfg->labels;
	in->k8s_namespace = s->wl->cfg->k8s_namespace;
	in->pod = s->wl->cfg->pod;
	in->service_account = s->wl->cfg->service_account;
	in->exe = s->sum.exe[0] ? s->sum.exe : NULL;
	in->uid = s->sum.uid;
	in->pid = s->sum.pid;
	in->user = s->user ? &s->user->u : NULL;
	in->now = (int64_t)time(NULL);
	in->family = s->orig.family;
	in->addr = (const uint8_t *)s->orig.addr;
	in->port = s->orig.port;
}

void session_count(struct session *s, unsigned requests, unsigned denied,
		   uint64_t masked)
{
	/* Only this thread writes; the API loads them. */
	if (requests)
		__atomic_store_n(&s->requests, s->requests + requests,
				 __ATOMIC_RELAXED);
	if (denied)
		__atomic_store_n(&s->denied, s->denied + denied,
				 __ATOMIC_RELAXED);
	if (masked)
		__atomic_store_n(&s->masked, s->masked + masked,
				 __ATOMIC_RELAXED);
}

void session_keepalive(struct session *s)
{
	s->last_ms = loop_now_ms(s->wk->loop);
}

uint64_t session_id(const struct session *s)
{
	return s->sum.id;
}

const struct workload *session_workload(const struct session *s)
{
	return s->wl;
}

const char *session_workload_name(const struct session *s)
{
	return s->sum.workload;
}

const char *session_target_name(const struct session *s)
{
	return s->sum.target;
}

size_t session_buffer_size(const struct session *s)
{
	return s->e->cfg->buffer_size;
}

struct enforcer *session_enforcer(struct session *s)
{
	return s->e;
}

void session_orig(const struct session *s, int *family, uint8_t addr[16],
		  uint16_t *port)
{
	*family = s->orig.family;
	memcpy(addr, s->orig.addr, 16);
	*port = s->orig.port;
}

void session_on_listen(struct loop_watch *lw, uint32_t events)
{
	struct listener *l = container_of(lw, struct listener, watch);
	struct workload *w = l->wl;
	struct worker *wk = l->wk;

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
			if (wk->spare_fd >= 0) {
				close(wk->spare_fd);
				fd = accept(lw->fd, NULL, NULL);
				if (fd != -1)
					close_rst(fd);
				wk->spare_fd =
					open("/dev/null", O_RDONLY | O_CLOEXEC);
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
		session_start(wk, w, fd, &peer, pl);
	}
}

void session_tick(void *arg)
{
	struct worker *wk = arg;
	struct enforcer *e = wk->e;
	uint64_t now = loop_now_ms(wk->loop);
	struct session *s, *next;

	for (s = wk->sessions; s; s = next) {
		next = s->next;
		if (!s->connecting && !s->closed && s->ops->tick &&
		    s->ops->tick(s, now) > 0 && !s->closed) {
			session_pump(s, false, false);
			if (s->closed)
				continue;
		}
		if (s->connecting && now >= s->connect_deadline_ms)
			session_close(s, "connect timeout", true);
		else if (!s->connecting && e->cfg->idle_timeout_ms &&
			 now - s->last_ms >= e->cfg->idle_timeout_ms)
			session_close(s, "idle timeout", true);
	}
	if (wk->draining && now >= wk->drain_deadline_ms && wk->nsessions)
		session_close_all(wk, "drain timeout");
	/* Records no request wrote since (responses, errors): now. */
	rec_flush_batch(wk);
	session_reap(wk);
}

void session_close_all(struct worker *wk, const char *reason)
{
	while (wk->sessions)
		session_close(wk->sessions, reason, true);
}

static int newest_first(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t **)a, "id"));
	json_int_t y = json_integer_value(json_object_get(*(json_t **)b, "id"));

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Append @wk's sessions to @live and @closed. Takes wk->lock. */
static void worker_sessions(struct worker *wk, json_t *live, json_t *closed)
{
	uint64_t now = loop_clock_ms();
	uint32_t cap = wk->e->cfg->recent_sessions;

	pthread_mutex_lock(&wk->lock);
	for (struct session *s = wk->sessions; s; s = s->next) {
		struct session_summary sum = s->sum;
		json_t *j;

		sum.duration_ms = now - s->start_ms;
		sum.bytes_up =
			__atomic_load_n(&s->to_up.count, __ATOMIC_RELAXED);
		sum.bytes_down =
			__atomic_load_n(&s->to_down.count, __ATOMIC_RELAXED);
		sum.requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
		sum.denied = __atomic_load_n(&s->denied, __ATOMIC_RELAXED);
		sum.masked = __atomic_load_n(&s->masked, __ATOMIC_RELAXED);
		j = summary_json(&sum);
		json_object_set_new(j, "state",
				    json_string(s->connecting ? "connecting" :
								"open"));
		json_array_append_new(live, j);
	}
	for (uint32_t i = 0; i < wk->nrecent; i++) {
		uint32_t idx = (wk->recent_head + cap - 1 - i) % cap;
		json_t *j = summary_json(&wk->recent[idx]);

		json_object_set_new(j, "state", json_string("closed"));
		json_array_append_new(closed, j);
	}
	pthread_mutex_unlock(&wk->lock);
}

static void append_sorted(json_t *out, json_t *in, size_t keep)
{
	size_t n = json_array_size(in);
	json_t **v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(in, i);
	qsort(v, n, sizeof(*v), newest_first);
	for (size_t i = 0; i < n && i < keep; i++)
		json_array_append(out, v[i]);
	free(v);
}

json_t *session_list_json(struct enforcer *e)
{
	json_t *arr = json_array(), *live = json_array(),
	       *closed = json_array();

	for (uint32_t i = 0; i < e->cfg->workers; i++)
		worker_sessions(&e->workers[i], live, closed);
	append_sorted(arr, live, SIZE_MAX);
	append_sorted(arr, closed, e->cfg->recent_sessions);
	json_decref(live);
	json_decref(closed);
	return arr;
}
