// SPDX-License-Identifier: Apache-2.0
/*
 * Enrolling workloads: attach the programs to the workload's cgroup, create
 * the enforcer's listeners inside the workload's network namespace, then
 * mark the namespace ready in bridle_pod_cfg. The order matters: until the
 * last step the programs refuse every connect, so no connection ever gets
 * around the enforcer while it starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridle/enforcer.h"
#include "bridle/log.h"
#include "bridle/session.h"
#include "bridle/sockdiag.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* Enter @w's network namespace; netns_leave() must follow. */
static int netns_enter(struct workload *w)
{
	return setns(w->netns_fd, CLONE_NEWNET) == -1 ? -errno : 0;
}

static void netns_leave(struct enforcer *e)
{
	if (setns(e->self_netns_fd, CLONE_NEWNET) == -1) {
		/* Staying in a workload's namespace would be worse than dying. */
		log_msg(LOG_ERROR, "fatal",
			"cannot return to own network namespace: %s",
			strerror(errno));
		abort();
	}
}

int enroll_socket_in(struct enforcer *e, struct workload *w, int family,
		     int type)
{
	int fd, err = netns_enter(w);

	if (err)
		return err;
	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	err = errno;
	netns_leave(e);
	return fd == -1 ? -err : fd;
}

static int netns_cookie_of(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) == -1)
		return -errno;
	return 0;
}

/* Pods have lo up; a bare namespace may not. The listeners need it. */
static void loopback_up(int fd)
{
	struct ifreq ifr = {};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1 || (ifr.ifr_flags & IFF_UP))
		return;
	ifr.ifr_flags |= IFF_UP;
	ioctl(fd, SIOCSIFFLAGS, &ifr);
}

/* The enforcer's listener address in a workload netns: loopback, listen_port. */
static socklen_t listener_addr(const struct enforcer *e, int family,
			       struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(e->cfg->listen_port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(e->cfg->listen_port);
	sin6->sin6_addr = in6addr_loopback;
	return sizeof(*sin6);
}

static int listen_in(struct enforcer *e, struct workload *w, int family,
		     char *err, size_t errlen)
{
	struct sockaddr_storage ss = {};
	socklen_t sl;
	int one = 1, fd = enroll_socket_in(e, w, family, SOCK_STREAM);

	if (fd < 0) {
		snprintf(err, errlen, "socket in netns %s: %s", w->cfg->netns,
			 strerror(-fd));
		return fd;
	}
	sl = listener_addr(e, family, &ss);
	if (family == AF_INET)
		loopback_up(fd);
	else
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* One listener per worker: the kernel spreads connections. */
	if (e->cfg->workers > 1)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(fd, SOMAXCONN) == -1) {
		int ret = -errno;

		snprintf(err, errlen, "listen on %s port %u in netns %s: %s",
			 family == AF_INET ? "127.0.0.1" : "[::1]",
			 e->cfg->listen_port, w->cfg->netns, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * Publish @w's state in bridle_pod_cfg. Not ready keeps the entry (and the
 * listener port the bind hook protects) and only clears the flag.
 */
static int set_pod_state(struct enforcer *e, struct workload *w, bool ready)
{
	struct bridle_pod_cfg pc = {
		.pod_id = w->pod_id,
		.flags = ready ? BRIDLE_POD_READY : 0,
		.listen_port = e->cfg->listen_port,
	};

	return bridle_bpf_pod_set(e->bpf, w->netns_cookie, &pc);
}

/* Put the egress guard on the workload's interfaces (from inside its netns). */
static int guard_interfaces(struct enforcer *e, struct workload *w, char *err,
			    size_t errlen)
{
	int n;

	json_decref(w->guarded);
	w->guarded = json_array();
	n = netns_enter(w);
	if (n) {
		snprintf(err, errlen, "setns %s: %s", w->cfg->netns,
			 strerror(-n));
		return n;
	}
	n = bridle_bpf_guard_interfaces(e->bpf, w->guarded, err, errlen);
	/* IPv6 link-local destinations need an interface, which connect()
	 * does not pass to the hooks: with exactly one, it is that one. */
	__atomic_store_n(
		&w->link_scope,
		(uint32_t)(json_array_size(w->guarded) == 1 ?
				   if_nametoindex(json_string_value(
					   json_array_get(w->guarded, 0))) :
				   0),
		__ATOMIC_RELAXED); /* workers read it */
	netns_leave(e);
	return n;
}

void enroll_rescan(void *arg)
{
	struct enforcer *e = arg;

	for (size_t k = 0; k < e->cfg->nworkloads; k++) {
		struct workload *w = &e->workloads[k];
		json_t *before;
		char err[256];

		if (!w->ready)
			continue;
		/* Attach again (in place) on every interface: this covers new
		 * interfaces and a guard someone removed from an old one. */
		before = json_incref(w->guarded);
		if (guard_interfaces(e, w, err, sizeof(err)) < 0) {
			/* An unguarded interface is a way around: close the pod. */
			set_pod_state(e, w, false);
			w->ready = false;
			snprintf(w->error, sizeof(w->error), "%s", err);
			log_json(LOG_ERROR, "workload_not_ready",
				 json_pack("{s:s,s:s}", "workload",
					   w->cfg->name, "error", err));
		} else if (!json_equal(before, w->guarded)) {
			log_json(LOG_INFO, "interfaces_guarded",
				 json_pack("{s:s,s:O}", "workload",
					   w->cfg->name, "interfaces",
					   w->guarded));
		}
		json_decref(before);
	}
}

/* Read our own cgroup (v2 line "0::/path") so we never enroll ourselves. */
static int self_cgroup(char *out, size_t outlen)
{
	char line[PATH_MAX + 8];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, outlen, "%s", line + 3);
			ret = 0;
		}
	}
	fclose(f);
	return ret;
}

static int netns_cookie_in(struct enforcer *e, struct workload *w,
			   uint64_t *cookie)
{
	int fd = enroll_socket_in(e, w, AF_INET, SOCK_DGRAM), ret;

	if (fd < 0)
		return fd;
	ret = netns_cookie_of(fd, cookie);
	close(fd);
	return ret;
}

/*
 * With several workers the listeners share the port (SO_REUSEPORT), and a
 * socket of the same uid already bound there would silently join the
 * group and get a share of the agent's connections. A plain bind first
 * fails if anyone holds the port.
 */
static int port_is_free(struct enforcer *e, struct workload *w, int family,
			char *err, size_t errlen)
{
	struct sockaddr_storage ss = {};
	socklen_t sl;
	int one = 1, fd = enroll_socket_in(e, w, family, SOCK_STREAM), ret = 0;

	if (fd < 0)
		return 0; /* listen_in reports it */
	sl = listener_addr(e, family, &ss);
	/* Connections of a previous run in TIME_WAIT hold the port too,
	 * and are no one's: SO_REUSEADDR passes them and still fails on a
	 * listener. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1 && errno == EADDRINUSE) {
		snprintf(err, errlen,
			 "listen on %s port %u in netns %s: Address already in "
			 "use (by a socket that is not bridle's)",
			 family == AF_INET ? "127.0.0.1" : "[::1]",
			 e->cfg->listen_port, w->cfg->netns);
		ret = -EADDRINUSE;
	}
	close(fd);
	return ret;
}

/*
 * Reset the workload's outbound connections that predate its programs (an
 * agent already running when it is enrolled). Best effort: a kernel
 * without SOCK_DESTROY gets a warning.
 */
static void close_existing(struct enforcer *e, struct workload *w)
{
	uint64_t *ids;
	size_t n;
	int ret = sockdiag_cgroup_tree(w->cfg->cgroup, &ids, &n);

	if (ret == 0) {
		ret = netns_enter(w);
		if (ret == 0) {
			ret = sockdiag_close_existing(ids, n, e->cfg->resolvers,
						      e->cfg->nresolvers);
			netns_leave(e);
		}
	}
	free(ids);
	if (ret > 0)
		log_json(LOG_WARN, "existing_connections_reset",
			 json_pack("{s:s,s:i,s:s}", "workload", w->cfg->name,
				   "count", ret, "reason",
				   "opened before the workload was enrolled"));
	else if (ret < 0)
		log_json(LOG_WARN, "existing_connections_unchecked",
			 json_pack("{s:s,s:s}", "workload", w->cfg->name,
				   "error", strerror(-ret)));
}

/* Listeners on 127.0.0.1 and ::1 in @w's netns, one pair per worker. */
static int listen_all_workers(struct enforcer *e, struct workload *w, char *err,
			      size_t errlen)
{
	size_t idx = (size_t)(w - e->workloads);
	int ret;

	if (e->cfg->workers > 1) {
		ret = port_is_free(e, w, AF_INET, err, errlen);
		if (ret == 0)
			ret = port_is_free(e, w, AF_INET6, err, errlen);
		if (ret)
			return ret;
	}

	for (uint32_t k = 0; k < e->cfg->workers; k++) {
		struct worker *wk = &e->workers[k];
		struct listener *l4 = &wk->listeners[2 * idx];
		struct listener *l6 = &wk->listeners[2 * idx + 1];
		int fd = listen_in(e, w, AF_INET, err, errlen);

		if (fd < 0)
			return fd;
		l4->wl = l6->wl = w;
		l4->wk = l6->wk = wk;
		ret = loop_add(wk->loop, &l4->watch, fd, EPOLLIN,
			       session_on_listen);
		if (ret) {
			close(fd);
			l4->watch.fd = -1;
			snprintf(err, errlen, "epoll: %s", strerror(-ret));
			return ret;
		}
		fd = listen_in(e, w, AF_INET6, err, errlen);
		if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT) {
			/* IPv6 disabled in the pod: IPv6 connects find no
			 * listener and are refused, which is still closed. */
			if (k == 0)
				log_json(LOG_WARN, "ipv6_unavailable",
					 json_pack("{s:s,s:s}", "workload",
						   w->cfg->name, "error", err));
			err[0] = '\0';
			continue;
		}
		if (fd < 0)
			return fd;
		ret = loop_add(wk->loop, &l6->watch, fd, EPOLLIN,
			       session_on_listen);
		if (ret) {
			close(fd);
			l6->watch.fd = -1;
			snprintf(err, errlen, "epoll: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int enroll_one(struct enforcer *e, struct workload *w,
		      const char *self_cg)
{
	char err[512] = "";
	int ret;

	/* The enforcer must stay outside every enrolled cgroup. */
	if (self_cg) {
		if (config_cgroup_within(self_cg,
					 config_cgroup_rel(e->cfg, w->cfg))) {
			snprintf(w->error, sizeof(w->error),
				 "bridle itself runs in cgroup %s, inside %s: "
				 "run it outside the workloads it enforces",
				 self_cg, w->cfg->cgroup);
			return -EINVAL;
		}
	}
	w->netns_fd = open(w->cfg->netns, O_RDONLY | O_CLOEXEC);
	if (w->netns_fd == -1) {
		ret = -errno;
		snprintf(w->error, sizeof(w->error),
			 "cannot open network namespace %s: %s", w->cfg->netns,
			 strerror(-ret));
		return ret;
	}
	/* Closed first: the entry exists (not ready, port protected) before
	 * any program is attached. */
	ret = netns_cookie_in(e, w, &w->netns_cookie);
	if (ret == 0)
		ret = set_pod_state(e, w, false);
	if (ret) {
		snprintf(w->error, sizeof(w->error),
			 "cannot register network namespace %s: %s",
			 w->cfg->netns, strerror(-ret));
		return ret;
	}
	ret = bridle_bpf_attach(e->bpf, w->cfg->cgroup, &w->cgroup_id, err,
				sizeof(err));
	if (ret) {
		snprintf(w->error, sizeof(w->error), "%s", err);
		return ret;
	}
	close_existing(e, w);
	ret = listen_all_workers(e, w, err, sizeof(err));
	if (ret) {
		snprintf(w->error, sizeof(w->error), "%s", err);
		return ret;
	}
	ret = guard_interfaces(e, w, err, sizeof(err));
	if (ret < 0) {
		snprintf(w->error, sizeof(w->error), "%s", err);
		return ret;
	}
	ret = set_pod_state(e, w, true);
	if (ret) {
		snprintf(w->error, sizeof(w->error),
			 "cannot mark the workload ready: %s", strerror(-ret));
		return ret;
	}
	w->ready = true;
	w->error[0] = '\0';
	return 0;
}

/*
 * One workload per network namespace (the listeners and pod_cfg are per
 * netns) and no workload cgroup inside another's (the inner programs would
 * redirect first and the outer ones would refuse the result). A workload
 * that breaks either rule is not enrolled at all. Returns 0 or -EINVAL.
 */
static int overlaps_earlier(struct enforcer *e, size_t i, char *err,
			    size_t errlen)
{
	const struct config_workload *w = &e->cfg->workloads[i];
	struct stat st;

	if (stat(w->netns, &st) == -1)
		return 0; /* enroll_one reports it */
	for (size_t k = 0; k < i; k++) {
		const struct config_workload *o = &e->cfg->workloads[k];
		struct stat ost;

		if (stat(o->netns, &ost) == 0 && ost.st_dev == st.st_dev &&
		    ost.st_ino == st.st_ino) {
			snprintf(err, errlen,
				 "shares its network namespace with workload "
				 "%s: one workload per network namespace",
				 o->name);
			return -EINVAL;
		}
		if (config_cgroup_within(w->cgroup, o->cgroup) ||
		    config_cgroup_within(o->cgroup, w->cgroup)) {
			snprintf(err, errlen,
				 "cgroup %s overlaps workload %s's cgroup %s",
				 w->cgroup, o->name, o->cgroup);
			return -EINVAL;
		}
	}
	return 0;
}

int enroll_all(struct enforcer *e)
{
	char self_cg[PATH_MAX];
	int ready = 0, r;

	r = self_cgroup(self_cg, sizeof(self_cg));
	e->workloads = calloc(e->cfg->nworkloads ? e->cfg->nworkloads : 1,
			      sizeof(*e->workloads));
	if (!e->workloads)
		return -ENOMEM;
	for (size_t i = 0; i < e->cfg->nworkloads; i++) {
		struct workload *w = &e->workloads[i];

		w->e = e;
		w->cfg = &e->cfg->workloads[i];
		w->pod_id = (uint32_t)i + 1;
		w->netns_fd = -1;
		if (overlaps_earlier(e, i, w->error, sizeof(w->error)) == 0 &&
		    enroll_one(e, w, r == 0 ? self_cg : NULL) == 0) {
			ready++;
			log_json(LOG_INFO, "workload_ready",
				 json_pack("{s:s,s:s,s:s,s:I,s:I,s:i}",
					   "workload", w->cfg->name, "cgroup",
					   w->cfg->cgroup, "netns",
					   w->cfg->netns, "cgroup_id",
					   (json_int_t)w->cgroup_id,
					   "netns_cookie",
					   (json_int_t)w->netns_cookie, "port",
					   e->cfg->listen_port));
		} else {
			log_json(LOG_ERROR, "workload_not_ready",
				 json_pack("{s:s,s:s}", "workload",
					   w->cfg->name, "error", w->error));
		}
	}
	return ready;
}

void enroll_stop_listening(struct worker *wk)
{
	struct enforcer *e = wk->e;

	for (size_t i = 0; i < 2 * e->cfg->nworkloads; i++) {
		struct loop_watch *lw = &wk->listeners[i].watch;

		if (lw->fd < 0)
			continue;
		loop_del(wk->loop, lw);
		close(lw->fd);
		lw->fd = -1;
	}
}

void enroll_mark_unready(struct enforcer *e)
{
	for (size_t i = 0; i < e->cfg->nworkloads; i++) {
		struct workload *w = &e->workloads[i];

		if (!w->ready)
			continue;
		set_pod_state(e, w, false);
		w->ready = false;
		snprintf(w->error, sizeof(w->error), "enforcer stopping");
	}
}
