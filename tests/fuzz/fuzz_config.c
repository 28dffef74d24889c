// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: config_parse() over arbitrary bytes, with a fixed
 * cgroup2 root. Accepted configs are checked for the promises config.h
 * makes (cgroups below the root, labels and policy present); refused ones
 * must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bridle/config.h"

#define ROOT "/sys/fs/cgroup/unified"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct config *c;

	err[0] = '\0';
	c = config_parse((const char *)data, size, "fuzz.json", ROOT, err,
			 sizeof(err));
	if (!c) {
		if (!err[0])
			abort(); /* refused without a reason */
		return 0;
	}
	if (!c->policy || !c->path || !c->control_socket || !c->log_dir ||
	    !c->pin_dir || c->listen_port == 0 || c->buffer_size < 4096)
		abort();
	if (c->control_socket[0] != '/' || strlen(c->control_socket) >= 108)
		abort();
	for (size_t i = 0; i < c->nworkloads; i++) {
		const struct config_workload *w = &c->workloads[i];
		size_t rl = strlen(ROOT);

		if (!w->name || !w->netns || !json_is_object(w->labels))
			abort();
		if (strncmp(w->cgroup, ROOT, rl) != 0 ||
		    (w->cgroup[rl] != '/' && w->cgroup[rl] != '\0') ||
		    strstr(w->cgroup, ".."))
			abort();
		for (size_t k = 0; k < i; k++)
			if (strcmp(c->workloads[k].name, w->name) == 0)
				abort();
	}
	for (size_t i = 0; i < c->nresolvers; i++)
		if (c->resolvers[i].family != AF_INET &&
		    c->resolvers[i].family != AF_INET6)
			abort();
	if (!config_same_workloads(c, c))
		abort();
	config_free(c);
	return 0;
}
