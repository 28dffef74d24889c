// SPDX-License-Identifier: Apache-2.0
/*
 * `bridle run`: wire the configuration, BPF programs, workloads, sessions
 * and control socket onto one event loop; reload the policy on SIGHUP; on
 * SIGTERM stop accepting, drain live sessions and exit. Enrolled cgroups
 * keep their pinned programs after exit, so they stay closed, not open.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bridle/api.h"
#include "bridle/enforcer.h"
#include "bridle/jwks.h"
#include "bridle/tls.h"
#include "bridle/log.h"
#include "bridle/recorder.h"
#include "bridle/review.h"
#include "bridle/reviewer_api.h"
#include "bridle/webhook.h"
#include "bridle/run.h"
#include "bridle/session.h"

#define TICK_MS 100
#define RESCAN_MS 2000

static const char *const event_kinds[] = {
	[BRIDLE_EV_NOT_READY] = "workload not ready",
	[BRIDLE_EV_UDP_DENIED] =
		"UDP to a destination that is not a DNS resolver",
	[BRIDLE_EV_SOCK_DENIED] = "socket type not allowed",
	[BRIDLE_EV_SELF_CONNECT] = "connect to the enforcer's own listener",
	[BRIDLE_EV_BIND_DENIED] = "bind to the enforcer's listener port",
	[BRIDLE_EV_FRAME_DROPPED] =
		"frame from a non-inet socket dropped on egress",
	[BRIDLE_EV_IP_DROPPED] = "IP packet with options, an extension "
				 "header, or UDP to a non-resolver dropped",
	[BRIDLE_EV_SOCKOPT_DENIED] = "socket option refused (source route, "
				     "packet qdisc bypass or AF_XDP)",
};

/*
 * The workload a kernel event came from. The event names the process's own
 * cgroup, often a container's below the workload's: then the process's
 * cgroup path (/proc/PID/cgroup) is matched against the workloads'.
 */
static const char *workload_of_event(struct enforcer *e,
				     const struct bridle_event *ev)
{
	char path[64], line[PATH_MAX + 8];
	const char *name = NULL;
	FILE *f;

	for (size_t i = 0; i < e->cfg->nworkloads; i++)
		if (e->workloads[i].cgroup_id == ev->cgroup_id)
			return e->workloads[i].cfg->name;
	snprintf(path, sizeof(path), "/proc/%u/cgroup", ev->tgid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (!name && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		for (size_t i = 0; i < e->cfg->nworkloads && !name; i++)
			if (config_cgroup_within(
				    line + 3,
				    config_cgroup_rel(e->cfg,
						      &e->cfg->workloads[i])))
				name = e->cfg->workloads[i].name;
	}
	fclose(f);
	return name;
}

static void on_kernel_event(void *ctx, const struct bridle_event *ev)
{
	struct enforcer *e = ctx;
	const char *kind =
		ev->kind < sizeof(event_kinds) / sizeof(*event_kinds) &&
				event_kinds[ev->kind] ?
			event_kinds[ev->kind] :
			"unknown";
	char dst[80];
	json_t *j;

	session_format_addr(ev->family, ev->addr, ev->port, dst, sizeof(dst));
	j = json_pack("{s:s,s:s*,s:I,s:i,s:i}", "reason", kind, "workload",
		      workload_of_event(e, ev), "cgroup_id",
		      (json_int_t)ev->cgroup_id, "pid", (int)ev->tgid, "uid",
		      (int)ev->uid);
	if (ev->kind == BRIDLE_EV_SOCKOPT_DENIED)
		json_object_set_new(j, "sockopt",
				    json_pack("{s:i,s:i}", "level",
					      (int)ev->sock_type, "optname",
					      (int)ev->sock_proto));
	else if (ev->kind == BRIDLE_EV_SOCK_DENIED)
		json_object_set_new(j, "socket",
				    json_pack("{s:i,s:i,s:i}", "family",
					      ev->family, "type",
					      (int)ev->sock_type, "protocol",
					      (int)ev->sock_proto));
	else
		json_object_set_new(j, "destination", json_string(dst));
	log_json(LOG_WARN, "kernel_refused", j);
}

static void on_events(struct loop_watch *w, uint32_t events)
{
	struct enforcer *e = container_of(w, struct enforcer, events);

	(void)events;
	bridle_bpf_events_drain(e->bpf, on_kernel_event, e);
}

/* Worker side of a drain: stop listening, let sessions finish. */
static void worker_on_wake(struct loop_watch *w, uint32_t events)
{
	struct worker *wk = container_of(w, struct worker, wake);
	uint64_t v;

	(void)events;
	if (read(w->fd, &v, sizeof(v)) != sizeof(v) || wk->draining)
		return;
	wk->draining = true;
	wk->drain_deadline_ms =
		loop_now_ms(wk->loop) + wk->e->cfg->drain_timeout_ms;
	enroll_stop_listening(wk);
	if (wk->nsessions == 0)
		loop_stop(wk->loop);
}

static void wake_worker(struct worker *wk)
{
	uint64_t one = 1;

	if (wk->wake.fd >= 0 && write(wk->wake.fd, &one, sizeof(one)) == -1)
		log_msg(LOG_ERROR, "worker", "cannot wake worker %d: %s",
			wk->id, strerror(errno));
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;

	if (loop_run(wk->loop))
		log_msg(LOG_ERROR, "worker", "worker %d: event loop failed",
			wk->id);
	session_close_all(wk, "enforcer exit");
	session_reap(wk);
	__atomic_store_n(&wk->stopped, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Main tick: the control loop ends once every worker has drained. */
static void watch_workers(void *arg)
{
	struct enforcer *e = arg;

	if (!e->draining)
		return;
	for (uint32_t i = 0; i < e->cfg->workers; i++)
		if (!__atomic_load_n(&e->workers[i].stopped, __ATOMIC_ACQUIRE))
			return;
	loop_stop(e->loop);
}

static void start_drain(struct enforcer *e, const char *why)
{
	if (e->draining)
		return;
	e->draining = true;
	/* Refuse new connects in the kernel, then let workers drain. */
	enroll_mark_unready(e);
	log_json(
		LOG_INFO, "draining",
		json_pack("{s:s,s:i,s:i}", "signal", why, "live_sessions",
			  (int)__atomic_load_n(&e->nsessions, __ATOMIC_RELAXED),
			  "timeout_ms", (int)e->cfg->drain_timeout_ms));
	for (uint32_t i = 0; i < e->cfg->workers; i++)
		wake_worker(&e->workers[i]);
}

static int worker_init(struct enforcer *e, struct worker *wk, int id)
{
	int fd;

	wk->e = e;
	wk->id = id;
	wk->spare_fd = -1;
	wk->wake.fd = -1;
	pthread_mutex_init(&wk->lock, NULL);
	wk->loop = loop_new();
	wk->listeners =
		calloc(2 * (e->cfg->nworkloads + 1), sizeof(*wk->listeners));
	if (!wk->loop || !wk->listeners)
		return -ENOMEM;
	for (size_t i = 0; i < 2 * e->cfg->nworkloads; i++)
		wk->listeners[i].watch.fd = -1;
	if (e->cfg->recent_sessions) {
		wk->recent =
			calloc(e->cfg->recent_sessions, sizeof(*wk->recent));
		if (!wk->recent)
			return -ENOMEM;
	}
	wk->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd == -1)
		return -errno;
	loop_add_tick(wk->loop, TICK_MS, session_tick, wk);
	loop_set_after(wk->loop, session_reap, wk);
	return loop_add(wk->loop, &wk->wake, fd, EPOLLIN, worker_on_wake);
}

static void worker_free(struct worker *wk)
{
	if (wk->started) {
		loop_stop(wk->loop);
		wake_worker(wk);
		pthread_join(wk->thread, NULL);
	}
	/* A worker whose set-up failed half way has no loop and listeners
	 * that were never opened. */
	if (wk->listeners && wk->loop)
		enroll_stop_listening(wk);
	session_close_all(wk, "enforcer exit");
	session_reap(wk);
	if (wk->wake.fd >= 0)
		close(wk->wake.fd);
	if (wk->spare_fd >= 0)
		close(wk->spare_fd);
	free(wk->listeners);
	free(wk->recent);
	record_buf_free(&wk->rb);
	loop_free(wk->loop);
	pthread_mutex_destroy(&wk->lock);
}

int enforcer_reload(struct enforcer *e, char *err, size_t errlen)
{
	struct config *nc = config_load(e->cfg->path, NULL, err, errlen);

	if (!nc) {
		e->reload_failures++;
		log_json(LOG_ERROR, "reload_failed",
			 json_pack("{s:s,s:s}", "error", err, "kept",
				   "previous policy"));
		return -EINVAL;
	}
	/* Only the policy and resolvers change on reload. */
	if (!config_same_workloads(e->cfg, nc))
		log_msg(LOG_WARN, "reload",
			"workloads, listen_port or other settings changed in "
			"%s: only the policy and dns_resolvers are reloaded; "
			"restart bridle to apply the rest",
			e->cfg->path);
	/* Sessions holding a reference keep the old policy alive until
	 * their next decision sees the new generation. */
	pthread_rwlock_wrlock(&e->policy_lock);
	policy_free(e->cfg->policy);
	e->cfg->policy = nc->policy;
	__atomic_add_fetch(&e->policy_generation, 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&e->policy_lock);
	nc->policy = NULL;
	if (bridle_bpf_set_resolvers(e->bpf, nc->resolvers, nc->nresolvers))
		log_msg(LOG_ERROR, "reload",
			"cannot update dns_resolvers in the kernel: %s",
			strerror(errno));
	e->reloads++;
	log_json(LOG_INFO, "policy_reloaded",
		 json_pack("{s:I,s:i,s:i}", "generation",
			   (json_int_t)e->policy_generation, "targets",
			   (int)policy_target_count(e->cfg->policy), "rules",
			   (int)policy_rule_count(e->cfg->policy)));
	config_free(nc);
	return 0;
}

/* The base name of @path, and its directory in @dir. */
static const char *split_path(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		snprintf(dir, len, ".");
		return path;
	}
	snprintf(dir, len, "%.*s", (int)(slash == path ? 1 : slash - path),
		 path);
	return slash + 1;
}

/*
 * Watch the directories of the config and policy files: editors and
 * `kubectl` (ConfigMap symlink swaps) replace files by rename, which a
 * watch on the file itself would miss. A change schedules a reload a
 * little later, so a burst of writes is one reload.
 */
static void on_files(struct loop_watch *w, uint32_t events)
{
	struct enforcer *e = container_of(w, struct enforcer, files);
	char buf[4096] __attribute__((aligned(8)));
	char dir[PATH_MAX];
	ssize_t n;

	(void)events;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			const char *names[2] = {
				split_path(e->cfg->path, dir, sizeof(dir)),
				e->cfg->policy_path ?
					split_path(e->cfg->policy_path, dir,
						   sizeof(dir)) :
					NULL,
			};

			for (int i = 0; i < 2; i++)
				if (ev->len && names[i] &&
				    (strcmp(ev->name, names[i]) == 0 ||
				     strcmp(ev->name, "..data") == 0))
					e->reload_at_ms = loop_now_ms(e->loop) +
							  RELOAD_SETTLE_MS;
			p += sizeof(*ev) + ev->len;
		}
	}
}

static void reload_tick(void *arg)
{
	struct enforcer *e = arg;
	char err[1024];

	if (!e->reload_at_ms || loop_now_ms(e->loop) < e->reload_at_ms)
		return;
	e->reload_at_ms = 0;
	log_msg(LOG_INFO, "reload", "a policy or config file changed");
	enforcer_reload(e, err, sizeof(err));
}

static int watch_files(struct enforcer *e)
{
	char dir[PATH_MAX];
	const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd == -1)
		return -errno;
	split_path(e->cfg->path, dir, sizeof(dir));
	if (inotify_add_watch(fd, dir, mask) == -1)
		log_msg(LOG_WARN, "reload", "cannot watch %s: %s", dir,
			strerror(errno));
	if (e->cfg->policy_path) {
		split_path(e->cfg->policy_path, dir, sizeof(dir));
		if (inotify_add_watch(fd, dir, mask) == -1)
			log_msg(LOG_WARN, "reload", "cannot watch %s: %s", dir,
				strerror(errno));
	}
	return loop_add(e->loop, &e->files, fd, EPOLLIN, on_files);
}

static void on_signal(struct loop_watch *w, uint32_t events)
{
	struct enforcer *e = container_of(w, struct enforcer, signals);
	struct signalfd_siginfo si;
	char err[1024];

	(void)events;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			enforcer_reload(e, err, sizeof(err));
		else
			start_drain(e, si.ssi_signo == SIGINT ? "SIGINT" :
								"SIGTERM");
	}
}

json_t *enforcer_status_json(struct enforcer *e)
{
	uint64_t cnt[BRIDLE_CNT_MAX];
	json_t *wls = json_array(), *counters = json_object();

	for (size_t i = 0; i < e->cfg->nworkloads; i++) {
		struct workload *w = &e->workloads[i];
		json_t *j = json_pack(
			"{s:s,s:O,s:s,s:I,s:s,s:I,s:b,s:I,s:I,s:o}", "name",
			w->cfg->name, "labels", w->cfg->labels, "cgroup",
			w->cfg->cgroup, "cgroup_id", (json_int_t)w->cgroup_id,
			"netns", w->cfg->netns, "netns_cookie",
			(json_int_t)w->netns_cookie, "ready", w->ready,
			"accepted",
			(json_int_t)__atomic_load_n(&w->accepted,
						    __ATOMIC_RELAXED),
			"refused",
			(json_int_t)__atomic_load_n(&w->refused,
						    __ATOMIC_RELAXED),
			"programs", bridle_bpf_cgroup_programs(w->cfg->cgroup));

		json_object_set_new(j, "guarded_interfaces",
				    w->guarded ? json_incref(w->guarded) :
						 json_array());
		if (w->error[0])
			json_object_set_new(j, "error", json_string(w->error));
		json_array_append_new(wls, j);
	}
	if (bridle_bpf_counters(e->bpf, cnt) == 0)
		for (int i = 0; i < BRIDLE_CNT_MAX; i++)
			json_object_set_new(counters,
					    bridle_bpf_counter_name(i),
					    json_integer((json_int_t)cnt[i]));
	json_t *st;

	st = json_pack(
		"{s:b,s:i,s:I,s:s,s:i,s:b,s:{s:s,s:I,s:i,s:i,s:I,s:I},s:o,s:o,s:{s:i}}",
		"ok", 1, "pid", (int)getpid(), "uptime_ms",
		(json_int_t)(loop_now_ms(e->loop) - e->started_ms), "config",
		e->cfg->path, "listen_port", e->cfg->listen_port, "draining",
		e->draining, "policy", "source",
		e->cfg->policy_path ? e->cfg->policy_path : e->cfg->path,
		"generation", (json_int_t)e->policy_generation, "targets",
		(int)policy_target_count(e->cfg->policy), "rules",
		(int)policy_rule_count(e->cfg->policy), "reloads",
		(json_int_t)e->reloads, "reload_failures",
		(json_int_t)e->reload_failures, "workloads", wls,
		"kernel_counters", counters, "sessions", "live",
		(int)__atomic_load_n(&e->nsessions, __ATOMIC_RELAXED));
	json_object_set_new(json_object_get(st, "policy"), "version",
			    json_string(policy_version(e->cfg->policy)));
	json_object_set_new(
		json_object_get(st, "policy"), "mode",
		json_string(policy_mode_name(policy_mode_of(e->cfg->policy))));
	json_object_set_new(st, "issuers", jwks_status_json());
	json_object_set_new(st, "recording", recorder_status_json(e->recorder));
	json_object_set_new(st, "webhooks", webhook_status_json(e->webhook));
	json_object_set_new(st, "workers", json_integer(e->cfg->workers));
	json_object_set_new(st, "non_inet_sockets_refused",
			    json_boolean(bridle_bpf_has_lsm(e->bpf)));
	return st;
}

static int setup_signals(struct enforcer *e)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd == -1)
		return -errno;
	return loop_add(e->loop, &e->signals, fd, EPOLLIN, on_signal);
}

static void enforcer_free(struct enforcer *e)
{
	/* No reviewer decides on what is being torn down. */
	reviewer_api_stop(e);
	api_close(e);
	if (e->workloads)
		enroll_mark_unready(e);
	if (e->workers)
		for (uint32_t i = 0; i < e->cfg->workers; i++)
			if (e->workers[i].e)
				worker_free(&e->workers[i]);
	free(e->workers);
	if (e->workloads) {
		for (size_t i = 0; i < e->cfg->nworkloads; i++) {
			if (e->workloads[i].netns_fd >= 0)
				close(e->workloads[i].netns_fd);
			json_decref(e->workloads[i].guarded);
		}
	}
	free(e->workloads);
	/* After the workers: every session's recording is closed. */
	recorder_stop(e);
	webhook_stop(e->webhook);
	review_table_free(e->reviews);
	bridle_bpf_close(e->bpf);
	if (e->signals.fd >= 0)
		close(e->signals.fd);
	if (e->files.fd >= 0)
		close(e->files.fd);
	jwks_stop();
	if (e->session_log_fd >= 0)
		close(e->session_log_fd);
	if (e->decision_log_fd >= 0)
		close(e->decision_log_fd);
	if (e->self_netns_fd >= 0)
		close(e->self_netns_fd);
	loop_free(e->loop);
	SSL_CTX_free(e->tls_server);
	if (e->cfg)
		pthread_rwlock_destroy(&e->policy_lock);
	config_free(e->cfg);
}

int run_enforcer(const char *config_path)
{
	struct enforcer e = { .self_netns_fd = -1,
			      .session_log_fd = -1,
			      .decision_log_fd = -1 };
	struct rlimit rl;
	char err[1024];
	int ret = 1, ready;

	e.control.fd = e.signals.fd = e.events.fd = e.files.fd = -1;
	e.cfg = config_load(config_path, NULL, err, sizeof(err));
	if (!e.cfg) {
		log_json(LOG_ERROR, "config_invalid",
			 json_pack("{s:s}", "error", err));
		return 2;
	}
	pthread_rwlock_init(&e.policy_lock, NULL);
	e.reviews = review_table_new();
	e.loop = loop_new();
	e.self_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!e.reviews || !e.loop || e.self_netns_fd == -1) {
		log_msg(LOG_ERROR, "startup", "cannot set up: %s",
			strerror(errno));
		goto out;
	}
	e.started_ms = loop_now_ms(e.loop);
	/* Two descriptors per session: take what the system allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	e.policy_generation = 1;
	e.workers = calloc(e.cfg->workers, sizeof(*e.workers));
	if (!e.workers)
		goto out;
	for (uint32_t i = 0; i < e.cfg->workers; i++)
		if (worker_init(&e, &e.workers[i], (int)i)) {
			log_msg(LOG_ERROR, "startup",
				"cannot set up worker %u: %s", i,
				strerror(errno));
			goto out;
		}
	/* Signals are blocked before any thread starts, so only the main
	 * thread's signalfd sees them. */
	e.webhook = webhook_start(e.cfg, err, sizeof(err));
	if (setup_signals(&e) || session_log_open(&e, err, sizeof(err)) ||
	    (!e.webhook && err[0]) || recorder_start(&e, err, sizeof(err)) ||
	    reviewer_api_start(&e, err, sizeof(err)) ||
	    api_listen(&e, err, sizeof(err))) {
		log_msg(LOG_ERROR, "startup", "%s",
			err[0] ? err : strerror(errno));
		goto out;
	}
	/* Issuers' keys by HTTPS, and reloads when the files change. */
	if (jwks_start() || watch_files(&e)) {
		log_msg(LOG_ERROR, "startup", "%s",
			err[0] ? err : strerror(errno));
		goto out;
	}
	e.tls_server = tls_server_ctx(e.cfg->tls_cert_file, e.cfg->tls_key_file,
				      err, sizeof(err));
	if (!e.tls_server) {
		log_msg(LOG_ERROR, "tls", "%s", err);
		goto out;
	}
	if (bridle_bpf_open(e.cfg->pin_dir, &e.bpf, err, sizeof(err))) {
		log_msg(LOG_ERROR, "bpf", "%s", err);
		goto out;
	}
	if (!bridle_bpf_has_lsm(e.bpf))
		log_msg(LOG_WARN, "bpf",
			"the lsm_cgroup/socket_create program could not be "
			"loaded (%s): packet and other non-inet sockets can be "
			"created in enrolled cgroups, and their frames are "
			"dropped by the egress guard on the workload's "
			"interfaces instead",
			bridle_bpf_lsm_error(e.bpf));
	if (bridle_bpf_set_resolvers(e.bpf, e.cfg->resolvers,
				     e.cfg->nresolvers)) {
		log_msg(LOG_ERROR, "bpf", "cannot set DNS resolvers");
		goto out;
	}
	loop_add(e.loop, &e.events, bridle_bpf_events_fd(e.bpf), EPOLLIN,
		 on_events);
	ready = enroll_all(&e);
	if (ready < 0) {
		log_msg(LOG_ERROR, "enroll", "%s", strerror(-ready));
		goto out;
	}
	if (bridle_bpf_retired_maps(e.bpf))
		log_json(
			LOG_WARN, "maps_replaced",
			json_pack("{s:i,s:s}", "maps",
				  bridle_bpf_retired_maps(e.bpf), "reason",
				  "pinned maps of an incompatible version were "
				  "replaced; the old ones are removed now that "
				  "the new programs are attached"));
	/* Attached everywhere (or failed closed): old maps are unused. */
	bridle_bpf_drop_retired(e.cfg->pin_dir);
	loop_add_tick(e.loop, TICK_MS, watch_workers, &e);
	loop_add_tick(e.loop, RESCAN_MS, enroll_rescan, &e);
	loop_add_tick(e.loop, TICK_MS, reload_tick, &e);
	for (uint32_t i = 0; i < e.cfg->workers; i++) {
		if (pthread_create(&e.workers[i].thread, NULL, worker_main,
				   &e.workers[i])) {
			log_msg(LOG_ERROR, "startup", "cannot start worker %u",
				i);
			goto out;
		}
		e.workers[i].started = true;
	}
	log_json(LOG_INFO, "started",
		 json_pack("{s:s,s:i,s:i,s:i,s:s,s:i}", "config", config_path,
			   "workloads", (int)e.cfg->nworkloads, "ready", ready,
			   "listen_port", e.cfg->listen_port, "control_socket",
			   e.cfg->control_socket, "workers",
			   (int)e.cfg->workers));
	ret = loop_run(e.loop) ? 1 : 0;
	log_json(LOG_INFO, "stopped",
		 json_pack("{s:i}", "live_sessions",
			   (int)__atomic_load_n(&e.nsessions,
						__ATOMIC_RELAXED)));
out:
	enforcer_free(&e);
	return ret;
}
