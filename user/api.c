// SPDX-License-Identifier: Apache-2.0
/*
 * The control socket. Only root may connect (the socket is 0600 in a 0700
 * directory, and the peer's uid is checked with SO_PEERCRED). Requests are
 * small and read without blocking the loop; replies are written in full
 * with a short send timeout, since they go to a local root client.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bridle/api.h"
#include "bridle/log.h"
#include "bridle/review.h"
#include "bridle/session.h"

#define API_REQ_MAX 4096

struct api_conn {
	struct loop_watch watch;
	struct enforcer *e;
	char buf[API_REQ_MAX];
	size_t len;
};

static void api_reply(struct api_conn *c, json_t *reply)
{
	char *text = json_dumps(reply, JSON_COMPACT);
	struct timeval tv = { .tv_sec = 2 };
	size_t off = 0, len;

	json_decref(reply);
	if (!text)
		return;
	len = strlen(text);
	text[len++] = '\n';
	/* A bounded blocking write: replies are local and small. */
	setsockopt(c->watch.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (off < len) {
		struct pollfd p = { .fd = c->watch.fd, .events = POLLOUT };
		ssize_t n =
			send(c->watch.fd, text + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EAGAIN && poll(&p, 1, 2000) == 1)
			continue;
		break;
	}
	free(text);
}

static void api_conn_close(struct api_conn *c)
{
	loop_del(c->e->loop, &c->watch);
	close(c->watch.fd);
	free(c);
}

static json_t *api_error(const char *msg)
{
	return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

/* Reviews and grants: list, approve, reject, revoke. On the control
 * socket (root's) who decided is the name the client gives ("by"); the
 * reviewer API gives the name its token stands for. */
json_t *api_review_command(struct enforcer *e, const char *cmd, json_t *req,
			   const char *channel)
{
	int64_t now = log_wall_ms();
	json_t *id_j = json_object_get(req, "id");
	const char *by = json_string_value(json_object_get(req, "by"));
	const char *reason = json_string_value(json_object_get(req, "reason"));
	char err[256], who[160];

	if (strcmp(cmd, "reviews") == 0)
		return json_pack("{s:b,s:o}", "ok", 1, "reviews",
				 review_list_json(e->reviews,
						  json_is_true(json_object_get(
							  req, "all")),
						  now));
	if (strcmp(cmd, "grants") == 0)
		return json_pack("{s:b,s:o}", "ok", 1, "grants",
				 review_grants_json(e->reviews, now));
	if (!json_is_integer(id_j) || json_integer_value(id_j) <= 0)
		return api_error("\"id\": a review or grant number");
	snprintf(who, sizeof(who), "%s:%s", channel, by && *by ? by : "root");
	if (strcmp(cmd, "revoke") == 0) {
		if (review_grant_revoke(e->reviews,
					(uint64_t)json_integer_value(id_j), who,
					now, err, sizeof(err)))
			return api_error(err);
		log_json(LOG_INFO, "grant_revoked",
			 json_pack("{s:I,s:s}", "grant",
				   json_integer_value(id_j), "by", who));
		return json_pack("{s:b}", "ok", 1);
	}
	if (strcmp(cmd, "approve") && strcmp(cmd, "reject"))
		return api_error("unknown command");
	if (strcmp(cmd, "reject") == 0 && (!reason || !*reason))
		return api_error("a rejection needs a reason");
	{
		json_t *f = json_object_get(req, "for_s");
		json_int_t for_s = json_is_integer(f) ? json_integer_value(f) :
							0;
		int64_t for_ms = (int64_t)for_s * 1000;

		/* (checked before it is used: for_ms is valid then) */
		if (for_s < 0 || for_s > 7 * 86400)
			return api_error("\"for_s\": 0 to 7 days");
		json_t *gj = json_object_get(req, "groups"), *g;
		const char *groups[64];
		struct review_decider d = {
			.by = who,
			.name = by && *by ? by : "root",
			.groups = groups,
		};
		size_t i;
		int r;

		json_array_foreach(gj, i, g) {
			if (json_is_string(g) && d.ngroups < 64)
				groups[d.ngroups++] = json_string_value(g);
		}
		r = review_decide(e->reviews,
				  (uint64_t)json_integer_value(id_j),
				  strcmp(cmd, "approve") == 0, &d, reason,
				  for_ms, now, err, sizeof(err));
		if (r < 0)
			return api_error(err);
		if (r > 0)
			return json_pack("{s:b,s:b,s:s}", "ok", 1, "pending", 1,
					 "message", err);
		log_json(LOG_INFO, "review_decided",
			 json_pack("{s:I,s:s,s:s,s:s?,s:I}", "review",
				   json_integer_value(id_j), "outcome",
				   strcmp(cmd, "approve") == 0 ? "approved" :
								 "rejected",
				   "by", who, "reason", reason, "for_s",
				   (json_int_t)(for_ms / 1000)));
	}
	return json_pack("{s:b}", "ok", 1);
}

static void api_handle(struct api_conn *c)
{
	struct enforcer *e = c->e;
	json_error_t je;
	json_t *req = json_loadb(c->buf, c->len, 0, &je), *reply;
	const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) :
				NULL;

	if (!cmd) {
		reply = api_error("bad request: expected {\"cmd\": ...}");
	} else if (strcmp(cmd, "status") == 0) {
		reply = enforcer_status_json(e);
	} else if (strcmp(cmd, "sessions") == 0) {
		reply = json_pack("{s:b,s:o}", "ok", 1, "sessions",
				  session_list_json(e));
	} else if (strcmp(cmd, "reload") == 0) {
		char err[1024];

		if (enforcer_reload(e, err, sizeof(err)))
			reply = api_error(err);
		else
			reply = json_pack("{s:b,s:I}", "ok", 1, "generation",
					  (json_int_t)e->policy_generation);
	} else if (strcmp(cmd, "policy_stats") == 0) {
		pthread_rwlock_rdlock(&e->policy_lock);
		reply = json_pack("{s:b,s:I,s:o}", "ok", 1, "generation",
				  (json_int_t)e->policy_generation, "policy",
				  policy_stats_json(e->cfg->policy));
		pthread_rwlock_unlock(&e->policy_lock);
	} else if (strcmp(cmd, "reviews") == 0 || strcmp(cmd, "approve") == 0 ||
		   strcmp(cmd, "reject") == 0 || strcmp(cmd, "grants") == 0 ||
		   strcmp(cmd, "revoke") == 0) {
		reply = api_review_command(e, cmd, req, "cli");
	} else {
		reply = api_error("unknown command (status, sessions, reload, "
				  "policy_stats, reviews, approve, reject, "
				  "grants, revoke)");
	}
	json_decref(req);
	api_reply(c, reply);
}

static void api_on_conn(struct loop_watch *w, uint32_t events)
{
	struct api_conn *c = container_of(w, struct api_conn, watch);
	ssize_t n;

	(void)events;
	n = read(w->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		api_conn_close(c);
		return;
	}
	c->len += (size_t)n;
	if (memchr(c->buf, '\n', c->len)) {
		api_handle(c);
		api_conn_close(c);
	} else if (c->len == sizeof(c->buf)) {
		api_reply(c, api_error("request too long"));
		api_conn_close(c);
	}
}

static void api_on_accept(struct loop_watch *w, uint32_t events)
{
	struct enforcer *e = container_of(w, struct enforcer, control);

	(void)events;
	for (;;) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct api_conn *c;
		int fd = accept4(w->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == -1 ||
		    cred.uid != 0) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->e = e;
		if (loop_add(e->loop, &c->watch, fd, EPOLLIN, api_on_conn)) {
			close(fd);
			free(c);
		}
	}
}

int api_listen(struct enforcer *e, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = e->cfg->control_socket;
	char dir[sizeof(sun.sun_path)];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", dir,
				 strerror(errno));
			return -errno;
		}
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	/* A stale socket from a killed enforcer is replaced, a live one not. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		snprintf(err, errlen,
			 "another bridle is running (control socket %s "
			 "answers)",
			 path);
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	mode_t old = umask(0077);

	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 64) == -1) {
		int ret = -errno;

		umask(old);
		snprintf(err, errlen, "cannot listen on %s: %s", path,
			 strerror(-ret));
		close(fd);
		return ret;
	}
	umask(old);
	chmod(path, 0600);
	return loop_add(e->loop, &e->control, fd, EPOLLIN, api_on_accept);
}

void api_close(struct enforcer *e)
{
	if (e->control.fd < 0)
		return;
	loop_del(e->loop, &e->control);
	close(e->control.fd);
	unlink(e->cfg->control_socket);
	e->control.fd = -1;
}

json_t *api_call_json(const char *path, json_t *request, char *err,
		      size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	char *buf = NULL, *req;
	size_t len = 0, cap = 0;
	json_error_t je;
	json_t *reply;
	int fd;

	req = request ? json_dumps(request, JSON_COMPACT) : NULL;
	json_decref(request);
	if (!req || strlen(req) + 1 >= API_REQ_MAX) {
		snprintf(err, errlen, "request too large");
		free(req);
		return NULL;
	}

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		free(req);
		return NULL;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		snprintf(err, errlen,
			 "cannot reach bridle at %s: %s (is `bridle run` "
			 "running, and are you root?)",
			 path, strerror(errno));
		if (fd != -1)
			close(fd);
		free(req);
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	len = strlen(req);
	req[len] = '\n'; /* json_dumps left room: its NUL */
	if (write(fd, req, len + 1) != (ssize_t)(len + 1)) {
		snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
		close(fd);
		free(req);
		return NULL;
	}
	free(req);
	len = 0;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		n = read(fd, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	reply = buf ? json_loadb(buf, len, 0, &je) : NULL;
	free(buf);
	if (!reply)
		snprintf(err, errlen, "%s: no valid reply from bridle", path);
	return reply;
}
