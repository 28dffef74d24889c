// SPDX-License-Identifier: Apache-2.0
/*
 * BPF loader: open the skeleton with maps pinned by name, load, and attach
 * per cgroup through pinned bpf_links. A link that is already pinned for a
 * cgroup is updated in place with the new program, which is atomic in the
 * kernel; links are never detached by a restart.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridle/bpf.h"
#include "bridle/config.h"
#include "bridle/keys.h"
#include "redirect.skel.h"

struct bridle_bpf {
	struct redirect_bpf *skel;
	struct ring_buffer *events;
	bridle_event_cb event_cb;
	void *event_ctx;
	char pin_dir[PATH_MAX];
	bool lsm; /* the lsm_cgroup program is loaded */
	int lsm_err; /* why not, when it is not */
	int retired_maps; /* pinned maps set aside as incompatible */
};

static const char *const counter_names[BRIDLE_CNT_MAX] = {
	[BRIDLE_CNT_REDIRECTED] = "redirected",
	[BRIDLE_CNT_NOT_READY] = "refused_not_ready",
	[BRIDLE_CNT_UDP_ALLOWED] = "udp_dns_allowed",
	[BRIDLE_CNT_UDP_DENIED] = "udp_denied",
	[BRIDLE_CNT_SOCK_DENIED] = "socket_denied",
	[BRIDLE_CNT_SELF_CONNECT] = "refused_self_connect",
	[BRIDLE_CNT_TUPLE_RECORDED] = "tuples_recorded",
	[BRIDLE_CNT_NO_ORIG] = "no_original_destination",
	[BRIDLE_CNT_BIND_DENIED] = "bind_denied",
	[BRIDLE_CNT_FRAME_DROPPED] = "frames_dropped",
	[BRIDLE_CNT_IP_DROPPED] = "ip_packets_dropped",
	[BRIDLE_CNT_EVENTS_SUPPRESSED] = "events_suppressed",
};

const char *bridle_bpf_counter_name(int idx)
{
	return idx >= 0 && idx < BRIDLE_CNT_MAX ? counter_names[idx] : "?";
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	if (getenv("BRIDLE_LIBBPF_VERBOSE"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct bridle_bpf *b = ctx;

	if (len >= sizeof(struct bridle_event) && b->event_cb)
		b->event_cb(b->event_ctx, data);
	return 0;
}

/*
 * Before an upgrade loads its maps, set aside each pinned map whose shape
 * differs from the new object's (type, key, value, entries, flags): libbpf
 * would refuse to reuse it. Compatible maps are reused, so the state the
 * running programs see (pod_cfg, original destinations) carries over. The
 * set-aside pins move to <pin_dir>/retired and are removed once the new
 * programs are attached (bridle_bpf_drop_retired); until then the old
 * programs keep their old maps and keep refusing or redirecting.
 */
static int retire_incompatible_maps(struct bpf_object *obj, const char *pin_dir,
				    int *retired)
{
	char maps[PATH_MAX], old_dir[PATH_MAX];
	struct bpf_map *map;

	*retired = 0;
	snprintf(maps, sizeof(maps), "%s/maps", pin_dir);
	snprintf(old_dir, sizeof(old_dir), "%s/retired", pin_dir);
	bpf_object__for_each_map(map, obj) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		char pin[PATH_MAX], to[PATH_MAX];
		int fd;

		if (bpf_map__is_internal(map))
			continue;
		snprintf(pin, sizeof(pin), "%s/%s", maps, bpf_map__name(map));
		fd = bpf_obj_get(pin);
		if (fd < 0)
			continue; /* not pinned yet: libbpf creates it */
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    info.type == bpf_map__type(map) &&
		    info.key_size == bpf_map__key_size(map) &&
		    info.value_size == bpf_map__value_size(map) &&
		    info.max_entries == bpf_map__max_entries(map) &&
		    info.map_flags == bpf_map__map_flags(map)) {
			close(fd);
			continue;
		}
		close(fd);
		if (mkdir(old_dir, 0700) == -1 && errno != EEXIST)
			return -errno;
		/* bpffs reserves "." in names. */
		snprintf(to, sizeof(to), "%s/%s-%d", old_dir,
			 bpf_map__name(map), (int)getpid());
		if (rename(pin, to) == -1)
			return -errno;
		(*retired)++;
	}
	return 0;
}

void bridle_bpf_drop_retired(const char *pin_dir)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/retired", pin_dir);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

int bridle_bpf_open(const char *pin_dir, struct bridle_bpf **out, char *err,
		    size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	char maps_dir[PATH_MAX];
	struct bridle_bpf *b;
	int ret;

	libbpf_set_print(libbpf_quiet);
	if (access("/sys/fs/bpf", F_OK) == -1 ||
	    snprintf(maps_dir, sizeof(maps_dir), "%s/maps", pin_dir) >=
		    (int)sizeof(maps_dir)) {
		snprintf(err, errlen, "%s: bpffs is not available", pin_dir);
		return -ENOENT;
	}
	ret = mkdir_p(maps_dir, 0700);
	if (ret) {
		snprintf(err, errlen,
			 "cannot create %s: %s (is bpffs mounted on "
			 "/sys/fs/bpf?)",
			 maps_dir, strerror(-ret));
		return ret;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	snprintf(b->pin_dir, sizeof(b->pin_dir), "%s", pin_dir);
	opts.pin_root_path = maps_dir;
	/* Second attempt without the LSM program, for kernels whose active
	 * LSMs do not include bpf. */
	for (int attempt = 0; attempt < 2; attempt++) {
		b->skel = redirect_bpf__open_opts(&opts);
		if (!b->skel) {
			ret = -errno;
			snprintf(err, errlen, "cannot open BPF object: %s",
				 strerror(-ret));
			goto fail;
		}
		b->lsm = attempt == 0;
		if (!b->lsm)
			bpf_program__set_autoload(
				b->skel->progs.bridle_lsm_socket_create, false);
		if (attempt == 0) {
			ret = retire_incompatible_maps(b->skel->obj, pin_dir,
						       &b->retired_maps);
			if (ret) {
				snprintf(err, errlen,
					 "cannot set aside incompatible pinned "
					 "maps in %s: %s",
					 maps_dir, strerror(-ret));
				goto fail;
			}
		}
		ret = redirect_bpf__load(b->skel);
		if (ret == 0)
			break;
		b->lsm_err = ret;
		redirect_bpf__destroy(b->skel);
		b->skel = NULL;
	}
	if (ret) {
		snprintf(err, errlen,
			 "cannot load BPF programs: %s (run with "
			 "BRIDLE_LIBBPF_VERBOSE=1 for the libbpf log)",
			 strerror(-ret));
		goto fail;
	}
	b->events = ring_buffer__new(bpf_map__fd(b->skel->maps.bridle_events),
				     on_event, b, NULL);
	if (!b->events) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the event ring: %s",
			 strerror(-ret));
		goto fail;
	}
	*out = b;
	return 0;
fail:
	bridle_bpf_close(b);
	return ret;
}

void bridle_bpf_close(struct bridle_bpf *b)
{
	if (!b)
		return;
	ring_buffer__free(b->events);
	redirect_bpf__destroy(b->skel);
	free(b);
}

int bridle_cgroup_id(const char *path, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	int mount_id;

	h.fh.handle_bytes = sizeof(h.id);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) == -1)
		return -errno;
	if (h.fh.handle_bytes != sizeof(uint64_t))
		return -EINVAL;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

int bridle_bpf_attach(struct bridle_bpf *b, const char *path,
		      uint64_t *cgroup_id, char *err, size_t errlen)
{
	struct bpf_program *prog;
	char dir[PATH_MAX];
	int cgfd, ret;

	cgfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd == -1) {
		ret = -errno;
		snprintf(err, errlen, "cannot open cgroup %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	ret = bridle_cgroup_id(path, cgroup_id);
	if (ret) {
		snprintf(err, errlen, "cannot read the id of cgroup %s: %s",
			 path, strerror(-ret));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/cgroups/%llu", b->pin_dir,
		 (unsigned long long)*cgroup_id);
	ret = mkdir_p(dir, 0700);
	if (ret) {
		snprintf(err, errlen, "cannot create %s: %s", dir,
			 strerror(-ret));
		goto out;
	}
	bpf_object__for_each_program(prog, b->skel->obj) {
		char pin[PATH_MAX];
		struct bpf_link *link;

		if (!bpf_program__autoload(prog) ||
		    bpf_program__type(prog) == BPF_PROG_TYPE_SCHED_CLS)
			continue; /* not a cgroup program */
		snprintf(pin, sizeof(pin), "%s/%s", dir,
			 bpf_program__name(prog));
		link = bpf_link__open(pin);
		if (link) {
			/* Atomic in the kernel: old program out, new one in. */
			ret = bpf_link__update_program(link, prog);
			if (ret) {
				snprintf(err, errlen,
					 "cannot update pinned link %s: %s",
					 pin, strerror(-ret));
				bpf_link__destroy(link);
				goto out;
			}
		} else {
			link = bpf_program__attach_cgroup(prog, cgfd);
			if (!link) {
				ret = -errno;
				snprintf(err, errlen,
					 "cannot attach %s to %s: %s",
					 bpf_program__name(prog), path,
					 strerror(-ret));
				goto out;
			}
			ret = bpf_link__pin(link, pin);
			if (ret) {
				snprintf(err, errlen, "cannot pin %s: %s", pin,
					 strerror(-ret));
				bpf_link__destroy(link);
				goto out;
			}
		}
		/* The pin holds the link: closing our fd leaves it attached. */
		bpf_link__destroy(link);
	}
	{
		__u8 one = 1;

		if (bpf_map_update_elem(
			    bpf_map__fd(b->skel->maps.bridle_cgroups),
			    cgroup_id, &one, BPF_ANY)) {
			ret = -errno;
			snprintf(err, errlen, "cannot record cgroup %s: %s",
				 path, strerror(-ret));
			goto out;
		}
	}
	ret = 0;
out:
	close(cgfd);
	return ret;
}

int bridle_bpf_guard_interfaces(struct bridle_bpf *b, json_t *names, char *err,
				size_t errlen)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	int prog_fd = bpf_program__fd(b->skel->progs.bridle_tc_egress);
	int n = 0, sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (!ifs || sock == -1) {
		snprintf(err, errlen, "cannot list interfaces: %s",
			 strerror(errno));
		if (ifs)
			if_freenameindex(ifs);
		if (sock != -1)
			close(sock);
		return -errno;
	}
	for (i = ifs; i->if_index; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)i->if_index,
			    .attach_point = BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BRIDLE_TC_HANDLE,
			    .priority = BRIDLE_TC_PRIORITY, .prog_fd = prog_fd,
			    .flags = BPF_TC_F_REPLACE);
		struct ifreq ifr = {};
		int ret;

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
		if (ioctl(sock, SIOCGIFFLAGS, &ifr) == 0 &&
		    (ifr.ifr_flags & IFF_LOOPBACK))
			continue; /* frames on lo never leave the pod */
		ret = bpf_tc_hook_create(&hook);
		if (ret && ret != -EEXIST) {
			snprintf(err, errlen, "tc hook on %s: %s", i->if_name,
				 strerror(-ret));
			n = ret;
			break;
		}
		ret = bpf_tc_attach(&hook, &opts);
		if (ret) {
			snprintf(err, errlen, "tc filter on %s: %s", i->if_name,
				 strerror(-ret));
			n = ret;
			break;
		}
		json_array_append_new(names, json_string(i->if_name));
		n++;
	}
	if_freenameindex(ifs);
	close(sock);
	return n;
}

int bridle_bpf_unpin_cgroup(const char *pin_dir, const char *path, char *err,
			    size_t errlen)
{
	char dir[PATH_MAX], pin[PATH_MAX];
	struct dirent *de;
	uint64_t id;
	DIR *d;
	int ret = bridle_cgroup_id(path, &id);

	if (ret) {
		snprintf(err, errlen, "cannot read the id of cgroup %s: %s",
			 path, strerror(-ret));
		return ret;
	}
	snprintf(dir, sizeof(dir), "%s/cgroups/%llu", pin_dir,
		 (unsigned long long)id);
	/* Every pinned link of the cgroup, whatever this version calls it. */
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(pin, sizeof(pin), "%s/%s", dir, de->d_name);
		if (unlink(pin) == -1 && errno != ENOENT) {
			ret = -errno;
			snprintf(err, errlen, "cannot remove %s: %s", pin,
				 strerror(errno));
			closedir(d);
			return ret;
		}
	}
	if (d)
		closedir(d);
	snprintf(pin, sizeof(pin), "%s/maps/bridle_cgroups", pin_dir);
	{
		int fd = bpf_obj_get(pin);

		if (fd >= 0) {
			bpf_map_delete_elem(fd, &id);
			close(fd);
		}
	}
	if (rmdir(dir) == -1 && errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "cannot remove %s: %s", dir,
			 strerror(errno));
		return ret;
	}
	return 0;
}

int bridle_bpf_pod_set(struct bridle_bpf *b, uint64_t netns_cookie,
		       const struct bridle_pod_cfg *cfg)
{
	int fd = bpf_map__fd(b->skel->maps.bridle_pod_cfg);

	return bpf_map_update_elem(fd, &netns_cookie, cfg, BPF_ANY) ? -errno :
								      0;
}

int bridle_bpf_take_orig(struct bridle_bpf *b,
			 const struct bridle_tuple_key *key,
			 struct bridle_orig *out)
{
	int fd = bpf_map__fd(b->skel->maps.bridle_orig_by_tuple);

	if (bpf_map_lookup_and_delete_elem(fd, key, out) == 0)
		return 0;
	/* LRU hash maps gained lookup_and_delete late; fall back. */
	if (errno == ENOENT)
		return -ENOENT;
	if (bpf_map_lookup_elem(fd, key, out))
		return -errno;
	bpf_map_delete_elem(fd, key);
	return 0;
}

int bridle_bpf_set_resolvers(struct bridle_bpf *b,
			     const struct config_resolver *res, size_t n)
{
	int fd = bpf_map__fd(b->skel->maps.bridle_resolvers);
	struct bridle_resolver_key key, next;
	__u8 one = 1;
	int ret;

	/* Add the new set first, then remove what is no longer listed. */
	for (size_t i = 0; i < n; i++) {
		if (keys_resolver(res[i].family, res[i].addr, &key) ||
		    bpf_map_update_elem(fd, &key, &one, BPF_ANY))
			return -errno;
	}
	ret = bpf_map_get_next_key(fd, NULL, &key);
	while (ret == 0) {
		bool keep = false;
		int r2 = bpf_map_get_next_key(fd, &key, &next);

		for (size_t i = 0; i < n && !keep; i++)
			keep = key.family == res[i].family &&
			       memcmp(key.addr, res[i].addr,
				      res[i].family == AF_INET ? 4 : 16) == 0;
		if (!keep)
			bpf_map_delete_elem(fd, &key);
		key = next;
		ret = r2;
	}
	return 0;
}

int bridle_bpf_counters(struct bridle_bpf *b, uint64_t out[BRIDLE_CNT_MAX])
{
	int fd = bpf_map__fd(b->skel->maps.bridle_counters);
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < BRIDLE_CNT_MAX; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
	free(vals);
	return 0;
}

bool bridle_bpf_has_lsm(const struct bridle_bpf *b)
{
	return b->lsm;
}

int bridle_bpf_retired_maps(const struct bridle_bpf *b)
{
	return b->retired_maps;
}

const char *bridle_bpf_lsm_error(const struct bridle_bpf *b)
{
	return b->lsm ? "none" : strerror(-b->lsm_err);
}

int bridle_bpf_events_fd(struct bridle_bpf *b)
{
	return ring_buffer__epoll_fd(b->events);
}

int bridle_bpf_events_drain(struct bridle_bpf *b, bridle_event_cb cb, void *ctx)
{
	b->event_cb = cb;
	b->event_ctx = ctx;
	return ring_buffer__consume(b->events);
}

static const struct {
	enum bpf_attach_type type;
	const char *name;
} cgroup_hooks[] = {
	{ BPF_CGROUP_INET4_CONNECT, "connect4" },
	{ BPF_CGROUP_INET6_CONNECT, "connect6" },
	{ BPF_CGROUP_UDP4_SENDMSG, "sendmsg4" },
	{ BPF_CGROUP_UDP6_SENDMSG, "sendmsg6" },
	{ BPF_CGROUP_INET4_GETPEERNAME, "getpeername4" },
	{ BPF_CGROUP_INET6_GETPEERNAME, "getpeername6" },
	{ BPF_CGROUP_INET4_BIND, "bind4" },
	{ BPF_CGROUP_INET6_BIND, "bind6" },
	{ BPF_CGROUP_SOCK_OPS, "sock_ops" },
	{ BPF_CGROUP_INET_SOCK_CREATE, "sock_create" },
	{ BPF_LSM_CGROUP, "lsm_socket_create" },
	{ BPF_CGROUP_INET_EGRESS, "skb_egress" },
	{ BPF_CGROUP_SETSOCKOPT, "setsockopt" },
};

json_t *bridle_bpf_cgroup_programs(const char *path)
{
	json_t *arr = json_array();
	int cgfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (cgfd == -1)
		return arr;
	for (size_t h = 0; h < sizeof(cgroup_hooks) / sizeof(cgroup_hooks[0]);
	     h++) {
		__u32 ids[64], cnt = 64, flags = 0;

		if (bpf_prog_query(cgfd, cgroup_hooks[h].type,
				   BPF_F_QUERY_EFFECTIVE, &flags, ids, &cnt))
			continue;
		for (__u32 i = 0; i < cnt; i++) {
			struct bpf_prog_info info = {};
			__u32 len = sizeof(info);
			int pfd = bpf_prog_get_fd_by_id(ids[i]);

			if (pfd < 0)
				continue;
			if (bpf_obj_get_info_by_fd(pfd, &info, &len) == 0)
				json_array_append_new(
					arr, json_pack("{s:s,s:i,s:s}", "hook",
						       cgroup_hooks[h].name,
						       "id", (int)ids[i],
						       "name", info.name));
			close(pfd);
		}
	}
	close(cgfd);
	return arr;
}
