/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading bridle's BPF programs, attaching them to workload cgroups with
 * pinned links, and the map operations the enforcer needs. Maps are pinned
 * by name under <pin_dir>/maps and links under <pin_dir>/cgroups/<id>/, so a
 * restarted or upgraded enforcer atomically swaps programs in place
 * (BPF_LINK_UPDATE) instead of detaching: there is never a moment in which
 * an enrolled cgroup runs without the programs.
 */
#ifndef BRIDLE_BPF_H
#define BRIDLE_BPF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridle/bpf_shared.h"

struct bridle_bpf;
struct config_resolver;

int bridle_bpf_open(const char *pin_dir, struct bridle_bpf **out, char *err,
		    size_t errlen);
void bridle_bpf_close(struct bridle_bpf *b);

/* Pinned maps an upgrade set aside as incompatible, and their removal
 * once the new programs are attached everywhere. */
int bridle_bpf_retired_maps(const struct bridle_bpf *b);
void bridle_bpf_drop_retired(const char *pin_dir);

/* The cgroup id (kernfs node id) of the cgroup directory @path. */
int bridle_cgroup_id(const char *path, uint64_t *id);

/*
 * Attach every program to the cgroup at @path, reusing and updating pinned
 * links when they exist. Fills @cgroup_id. Returns 0 or -errno with @err.
 */
int bridle_bpf_attach(struct bridle_bpf *b, const char *path,
		      uint64_t *cgroup_id, char *err, size_t errlen);

/*
 * Remove the pinned links of cgroup @path under @pin_dir: the programs are
 * detached once nothing else holds them. This opens the cgroup.
 */
int bridle_bpf_unpin_cgroup(const char *pin_dir, const char *path, char *err,
			    size_t errlen);

/*
 * Attach the egress guard to every non-loopback interface of the network
 * namespace the calling thread is in (replacing an older guard), adding
 * each interface name to @names. Returns the number guarded or -errno.
 */
#define BRIDLE_TC_HANDLE 0xb1d1
#define BRIDLE_TC_PRIORITY 0xb1d
int bridle_bpf_guard_interfaces(struct bridle_bpf *b, json_t *names, char *err,
				size_t errlen);

int bridle_bpf_pod_set(struct bridle_bpf *b, uint64_t netns_cookie,
		       const struct bridle_pod_cfg *cfg);

/* Look up and delete the original destination recorded for @key. */
int bridle_bpf_take_orig(struct bridle_bpf *b,
			 const struct bridle_tuple_key *key,
			 struct bridle_orig *out);

/* Replace the resolver set with @res[0..n). */
int bridle_bpf_set_resolvers(struct bridle_bpf *b,
			     const struct config_resolver *res, size_t n);

/* Sum the per-CPU counters. */
int bridle_bpf_counters(struct bridle_bpf *b, uint64_t out[BRIDLE_CNT_MAX]);
const char *bridle_bpf_counter_name(int idx);

/* Whether packet and other non-inet sockets are refused (needs bpf LSM). */
bool bridle_bpf_has_lsm(const struct bridle_bpf *b);
const char *bridle_bpf_lsm_error(const struct bridle_bpf *b);

/* Kernel refusal events: an fd to poll, and a drain that calls @cb. */
typedef void (*bridle_event_cb)(void *ctx, const struct bridle_event *ev);
int bridle_bpf_events_fd(struct bridle_bpf *b);
int bridle_bpf_events_drain(struct bridle_bpf *b, bridle_event_cb cb,
			    void *ctx);

/* Programs attached to the cgroup at @path, as the kernel reports them. */
json_t *bridle_bpf_cgroup_programs(const char *path);

#endif
