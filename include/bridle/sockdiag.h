/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Closing a workload's connections that predate its enrollment. The cgroup
 * hooks govern a socket from its next connect or send, but a TCP connection
 * established (or a UDP socket connected) before the programs were
 * attached would keep its destination. sock_diag finds them by cgroup id
 * and SOCK_DESTROY resets them.
 */
#ifndef BRIDLE_SOCKDIAG_H
#define BRIDLE_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

#include "bridle/config.h"

/*
 * In the calling thread's network namespace, destroy the outbound TCP
 * connections and connected UDP sockets (other than to a resolver's port
 * 53) whose cgroup is one of @cgroups[0..n). Listening sockets and the
 * connections accepted from them are left alone. Returns the number
 * destroyed, or -errno.
 */
int sockdiag_close_existing(const uint64_t *cgroups, size_t n,
			    const struct config_resolver *res, size_t nres);

/* The ids of the cgroup at @path and every cgroup below it. Caller frees. */
int sockdiag_cgroup_tree(const char *path, uint64_t **ids, size_t *n);

#endif
