// SPDX-License-Identifier: Apache-2.0
/*
 * sock_diag over netlink: dump TCP and UDP sockets of this network
 * namespace with their cgroup ids, and SOCK_DESTROY the ones that an
 * enrolled workload opened before its enrollment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridle/bpf.h"
#include "bridle/keys.h"
#include "bridle/sockdiag.h"

#define TCP_LISTEN_STATE 10
#define MAX_LISTEN_PORTS 256

struct candidate {
	struct inet_diag_sockid id;
	uint8_t family, protocol, state;
	uint64_t cgroup;
};

struct dump {
	struct candidate *v;
	size_t n, cap;
};

static int add_id(uint64_t **ids, size_t *n, size_t *cap, uint64_t id)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		uint64_t *nv = realloc(*ids, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*ids = nv;
		*cap = nc;
	}
	(*ids)[(*n)++] = id;
	return 0;
}

static int walk(const char *path, uint64_t **ids, size_t *n, size_t *cap,
		int depth)
{
	char sub[PATH_MAX];
	struct dirent *de;
	uint64_t id;
	DIR *d;
	int ret = bridle_cgroup_id(path, &id);

	if (ret)
		return ret;
	ret = add_id(ids, n, cap, id);
	if (ret || depth > 32)
		return ret;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		ret = walk(sub, ids, n, cap, depth + 1);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

int sockdiag_cgroup_tree(const char *path, uint64_t **ids, size_t *n)
{
	size_t cap = 0;

	*ids = NULL;
	*n = 0;
	return walk(path, ids, n, &cap, 0);
}

static bool in_set(const uint64_t *set, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == id)
			return true;
	return false;
}

static int request(int fd, uint16_t type, uint16_t flags, uint8_t family,
		   uint8_t protocol, const struct inet_diag_sockid *id)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = type,
			 .nlmsg_flags = flags },
		.r = { .sdiag_family = family,
		       .sdiag_protocol = protocol,
		       .idiag_states = ~0u },
	};

	if (id)
		req.r.id = *id;
	return send(fd, &req, sizeof(req), 0) == (ssize_t)sizeof(req) ? 0 :
									-errno;
}

/* Collect every socket of @family/@protocol in @set into @out. */
static int dump_sockets(int fd, uint8_t family, uint8_t protocol,
			const uint64_t *set, size_t nset, struct dump *out)
{
	char buf[32768];
	int ret = request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP,
			  family, protocol, NULL);

	if (ret)
		return ret;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (len < 0)
			return -errno;
		for (; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			struct inet_diag_msg *m = NLMSG_DATA(h);
			struct rtattr *a;
			int alen;
			uint64_t cg = 0;

			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return -EPROTO;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
			for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
			     a = RTA_NEXT(a, alen))
				if (a->rta_type == INET_DIAG_CGROUP_ID &&
				    RTA_PAYLOAD(a) >= (int)sizeof(cg))
					memcpy(&cg, RTA_DATA(a), sizeof(cg));
			if (!in_set(set, nset, cg))
				continue;
			if (out->n == out->cap) {
				size_t nc = out->cap ? out->cap * 2 : 64;
				struct candidate *nv =
					realloc(out->v, nc * sizeof(*nv));

				if (!nv)
					return -ENOMEM;
				out->v = nv;
				out->cap = nc;
			}
			out->v[out->n++] = (struct candidate){
				.id = m->id,
				.family = family,
				.protocol = protocol,
				.state = m->idiag_state,
				.cgroup = cg,
			};
		}
	}
}

static bool to_resolver53(const struct candidate *c,
			  const struct config_resolver *res, size_t nres)
{
	if (ntohs(c->id.idiag_dport) != 53)
		return false;
	for (size_t i = 0; i < nres; i++) {
		size_t len = res[i].family == AF_INET ? 4 : 16;
		int fam = c->family;
		const uint8_t *dst = (const uint8_t *)c->id.idiag_dst;

		if (fam == AF_INET6 && res[i].family == AF_INET &&
		    memcmp(dst, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
			dst += 12; /* mapped */
			fam = AF_INET;
		}
		if (fam == res[i].family && memcmp(dst, res[i].addr, len) == 0)
			return true;
	}
	return false;
}

static int destroy(int fd, const struct candidate *c)
{
	char buf[4096];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t len;
	int ret = request(fd, SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK,
			  c->family, c->protocol, &c->id);

	if (ret)
		return ret;
	len = recv(fd, buf, sizeof(buf), 0);
	if (len < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) ||
	    h->nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
}

int sockdiag_close_existing(const uint64_t *cgroups, size_t n,
			    const struct config_resolver *res, size_t nres)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	static const uint8_t protocols[] = { IPPROTO_TCP, IPPROTO_UDP };
	uint16_t listen_ports[MAX_LISTEN_PORTS];
	size_t nlisten = 0;
	struct dump d = {};
	int fd, ret = 0, closed = 0;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd == -1)
		return -errno;
	for (size_t f = 0; f < 2 && !ret; f++)
		for (size_t p = 0; p < 2 && !ret; p++)
			ret = dump_sockets(fd, families[f], protocols[p],
					   cgroups, n, &d);
	if (ret)
		goto out;
	/* Connections accepted by the workload's own servers are inbound. */
	for (size_t i = 0; i < d.n; i++)
		if (d.v[i].protocol == IPPROTO_TCP &&
		    d.v[i].state == TCP_LISTEN_STATE &&
		    nlisten < MAX_LISTEN_PORTS)
			listen_ports[nlisten++] = d.v[i].id.idiag_sport;
	for (size_t i = 0; i < d.n; i++) {
		const struct candidate *c = &d.v[i];
		bool inbound = false;

		if (c->protocol == IPPROTO_TCP) {
			if (c->state == TCP_LISTEN_STATE)
				continue;
			for (size_t k = 0; k < nlisten && !inbound; k++)
				inbound = listen_ports[k] == c->id.idiag_sport;
			if (inbound)
				continue;
		} else if (c->id.idiag_dport == 0 ||
			   to_resolver53(c, res, nres)) {
			continue; /* unconnected: the sendmsg hook judges */
		}
		if (destroy(fd, c) == 0)
			closed++;
	}
	ret = closed;
out:
	free(d.v);
	close(fd);
	return ret;
}
