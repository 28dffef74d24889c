/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps shared by bridle's cgroup programs. Every map carries the bridle_
 * prefix; the enforcer pins them under /sys/fs/bpf/bridle/maps so that a
 * restarted enforcer reuses the state the attached programs already see.
 */
#ifndef BRIDLE_BPF_LIB_MAPS_H
#define BRIDLE_BPF_LIB_MAPS_H

#include "bridle/bpf_shared.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BRIDLE_MAX_PODS);
	__type(key, __u64); /* netns cookie */
	__type(value, struct bridle_pod_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bridle_pod_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct bridle_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bridle_orig_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BRIDLE_MAX_TUPLES);
	__type(key, struct bridle_tuple_key);
	__type(value, struct bridle_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bridle_orig_by_tuple SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BRIDLE_MAX_RESOLVERS);
	__type(key, struct bridle_resolver_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bridle_resolvers SEC(".maps");

/* Enrolled cgroup ids, for programs that are not attached to a cgroup. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BRIDLE_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bridle_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BRIDLE_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bridle_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BRIDLE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bridle_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bridle_event_rate);
} bridle_event_rate SEC(".maps");

static __always_inline void bridle_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&bridle_counters, &idx);

	if (v)
		*v += 1;
}

#endif
