/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enforcer's configuration file: listener port, control socket, log
 * directory, DNS resolvers, enrolled workloads, timeouts and the policy
 * (inline or a path). Validated strictly; errors name file, path and reason.
 */
#ifndef BRIDLE_CONFIG_H
#define BRIDLE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridle/policy.h"

#define CONFIG_DEFAULT_PATH "/etc/bridle/config.json"
#define CONFIG_MAX_WORKERS 64
#define CONFIG_AUTO_WORKERS_MAX 8

struct config_resolver {
	int family;
	uint8_t addr[16];
};

struct config_workload {
	char *name;
	char *cgroup; /* absolute path below the cgroup2 mount */
	char *netns; /* path of a netns file; "/proc/self/ns/net" if unset */
	json_t *labels; /* object of string → string, never NULL */
	/* Kubernetes metadata (namespace, pod, service account); NULL when
	 * not given. */
	char *k8s_namespace, *pod, *service_account;
};

/* Where review notifications go (webhook.c). */
struct config_webhook {
	char *url; /* http:// or https:// */
	bool slack; /* {"text": …} rather than bridle's JSON */
};

struct config {
	char *path; /* the file it came from */
	uint16_t listen_port;
	char *control_socket;
	char *log_dir;
	char *pin_dir; /* bpffs directory for links and maps */
	char *cgroup_root; /* the cgroup2 mount the workload cgroups are below */
	struct config_resolver *resolvers;
	size_t nresolvers;
	struct config_workload *workloads;
	size_t nworkloads;
	uint32_t connect_timeout_ms;
	uint32_t idle_timeout_ms; /* 0: none */
	uint32_t drain_timeout_ms;
	uint32_t buffer_size; /* per direction, per session */
	uint32_t max_message; /* largest protocol message bridle reads whole */
	char *tls_cert_file, *tls_key_file; /* agent side; NULL: generated */
	uint8_t mask_key[64]; /* the "hash" masking style's key */
	size_t mask_key_len;
	enum relay_mode { RELAY_AUTO, RELAY_COPY, RELAY_SPLICE } relay;
	/* decisions.jsonl: every decision, or all but allowed statements
	 * (connections and logins, refusals, reviews and shadow decisions
	 * stay); the per-rule counters count everything either way. */
	enum decision_log {
		DECISION_LOG_ALL,
		DECISION_LOG_REFUSALS
	} decision_log;
	/* Session recordings (record.c); record_dir NULL: none. */
	char *record_dir;
	uint8_t record_key[64];
	size_t record_key_len;
	uint32_t record_fsync_ms;
	/* A record that cannot be written: refuse the request (and the
	 * session), or go on unrecorded, loudly. */
	enum record_on_error {
		RECORD_ON_ERROR_REFUSE,
		RECORD_ON_ERROR_CONTINUE
	} record_on_error;
	uint64_t record_max_bytes; /* 0: no limit */
	struct config_webhook *webhooks; /* review notifications */
	size_t nwebhooks;
	/* The reviewers' HTTP API (reviewer_api.c); listen NULL: none. */
	char *reviewer_listen, *reviewer_tokens_file;
	int reviewer_family;
	uint8_t reviewer_addr[16];
	uint16_t reviewer_port;
	uint32_t record_max_age_hours; /* 0: no limit */
	uint32_t max_sessions;
	uint32_t max_sessions_per_workload;
	uint32_t recent_sessions; /* closed sessions kept for `bridle sessions` */
	uint32_t workers; /* data-path threads */
	char *policy_path; /* NULL when inline */
	struct policy *policy;
};

/*
 * Parse and validate @path. @cgroup_root is the cgroup2 mount point used to
 * resolve relative cgroup paths (NULL: look it up in /proc/mounts). Returns
 * NULL with a message naming file, JSON path and reason in @err.
 */
struct config *config_load(const char *path, const char *cgroup_root, char *err,
			   size_t errlen);

/* Same, from a JSON text in memory (used by tests and fuzzing). */
struct config *config_parse(const char *text, size_t len, const char *name,
			    const char *cgroup_root, char *err, size_t errlen);

void config_free(struct config *c);

/* True when cgroup path @path is @dir or below it ("/a/b" is within "/a"). */
bool config_cgroup_within(const char *path, const char *dir);

/* @w's cgroup as /proc/PID/cgroup writes it: relative to the cgroup2 root. */
const char *config_cgroup_rel(const struct config *c,
			      const struct config_workload *w);

/* Workers when the config names none: online CPUs, at most 8. */
uint32_t config_default_workers(void);

/* True when @a and @b enroll the same workloads on the same port and
 * record the same way: what a reload cannot change. */
bool config_same_workloads(const struct config *a, const struct config *b);

/* Find the cgroup2 mount point in @mounts_path (normally /proc/mounts). */
int config_cgroup2_root(const char *mounts_path, char *out, size_t outlen);

#endif
