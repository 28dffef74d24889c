// SPDX-License-Identifier: Apache-2.0
/*
 * Configuration loading. The file is JSON; every key is checked, unknown
 * keys are errors, and the policy may be inline or in a separate file whose
 * path is relative to the config file's directory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "bridle/config.h"
#include "bridle/record.h"

int config_cgroup2_root(const char *mounts_path, char *out, size_t outlen)
{
	char line[4096];
	FILE *f = fopen(mounts_path, "re");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char dev[256], dir[PATH_MAX], type[64];

		if (sscanf(line, "%255s %4095s %63s", dev, dir, type) != 3)
			continue;
		if (strcmp(type, "cgroup2") != 0)
			continue;
		/* /proc/mounts escapes spaces as \040; such paths are refused. */
		if (strchr(dir, '\\'))
			continue;
		if ((size_t)snprintf(out, outlen, "%s", dir) >= outlen) {
			ret = -ENAMETOOLONG;
			break;
		}
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->control_socket);
	free(c->log_dir);
	free(c->record_dir);
	free(c->reviewer_listen);
	free(c->reviewer_tokens_file);
	for (size_t i = 0; i < c->nwebhooks; i++)
		free(c->webhooks[i].url);
	free(c->webhooks);
	OPENSSL_cleanse(c->record_key, sizeof(c->record_key));
	free(c->pin_dir);
	free(c->cgroup_root);
	free(c->resolvers);
	for (size_t i = 0; i < c->nworkloads; i++) {
		free(c->workloads[i].name);
		free(c->workloads[i].cgroup);
		free(c->workloads[i].netns);
		free(c->workloads[i].k8s_namespace);
		free(c->workloads[i].pod);
		free(c->workloads[i].service_account);
		json_decref(c->workloads[i].labels);
	}
	free(c->workloads);
	free(c->policy_path);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	policy_free(c->policy);
	free(c);
}

bool config_cgroup_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 &&
	       (path[n] == '/' || path[n] == '\0');
}

const char *config_cgroup_rel(const struct config *c,
			      const struct config_workload *w)
{
	/* Workload cgroups are built as <root>/<relative> at load. */
	return w->cgroup + strlen(c->cgroup_root);
}

uint32_t config_default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > CONFIG_AUTO_WORKERS_MAX ? CONFIG_AUTO_WORKERS_MAX :
					     (uint32_t)n;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool config_same_workloads(const struct config *a, const struct config *b)
{
	if (a->listen_port != b->listen_port || a->nworkloads != b->nworkloads)
		return false;
	/* The recorder is set up at start. */
	if (!same_str(a->record_dir, b->record_dir) ||
	    a->record_key_len != b->record_key_len ||
	    CRYPTO_memcmp(a->record_key, b->record_key,
			  sizeof(a->record_key)) ||
	    a->record_fsync_ms != b->record_fsync_ms ||
	    a->record_on_error != b->record_on_error ||
	    a->record_max_bytes != b->record_max_bytes ||
	    a->record_max_age_hours != b->record_max_age_hours)
		return false;
	for (size_t i = 0; i < a->nworkloads; i++) {
		const struct config_workload *x = &a->workloads[i],
					     *y = &b->workloads[i];

		if (strcmp(x->name, y->name) || strcmp(x->cgroup, y->cgroup) ||
		    strcmp(x->netns, y->netns) ||
		    !json_equal(x->labels, y->labels) ||
		    !same_str(x->k8s_namespace, y->k8s_namespace) ||
		    !same_str(x->pod, y->pod) ||
		    !same_str(x->service_account, y->service_account))
			return false;
	}
	return true;
}

/*
 * A cgroup below the root: one or more components, none empty, "." or
 * "..". The root itself is refused, since it holds bridle too.
 */
static bool cgroup_rel_ok(const char *rel)
{
	const char *p = rel;

	if (!*p)
		return false;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!*end)
			break;
		p = end + 1;
		if (!*p)
			return false; /* trailing slash */
	}
	return true;
}

static bool workload_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		      *s == '.'))
			return false;
	return true;
}

static int parse_workload(struct jv *v, json_t *j, struct config *c, size_t i,
			  const char *cgroup_root)
{
	static const char *const keys[] = { "name",   "cgroup",	    "netns",
					    "labels", "kubernetes", NULL };
	static const char *const kkeys[] = { "namespace", "pod",
					     "service_account", NULL };
	const char *kv[3] = {};
	json_t *k8s;
	struct config_workload *w = &c->workloads[i];
	const char *name = NULL, *cgroup = NULL, *netns = "/proc/self/ns/net";
	const char *rel;
	json_t *labels;
	char path[PATH_MAX];

	if (jv_object(v, j, keys) || jv_string(v, j, "name", true, &name) ||
	    jv_string(v, j, "cgroup", true, &cgroup) ||
	    jv_string(v, j, "netns", false, &netns))
		return -1;
	rel = cgroup;
	if (!workload_name_ok(name))
		return jv_fail(v, "name",
			       "\"%s\" is not a workload name (1-63 of "
			       "A-Z a-z 0-9 . _ -)",
			       name);
	for (size_t k = 0; k < i; k++)
		if (strcmp(c->workloads[k].name, name) == 0)
			return jv_fail(v, "name",
				       "duplicate workload name \"%s\"", name);
	if (cgroup[0] == '/') {
		size_t rl = strlen(cgroup_root);

		if (strncmp(cgroup, cgroup_root, rl) != 0 ||
		    (cgroup[rl] != '/' && cgroup[rl] != '\0'))
			return jv_fail(v, "cgroup",
				       "\"%s\" is not below the cgroup2 mount "
				       "%s (give a path relative to it, or "
				       "one below it)",
				       cgroup, cgroup_root);
		rel = cgroup + rl + (cgroup[rl] == '/');
	}
	if (!cgroup_rel_ok(rel))
		return jv_fail(v, "cgroup",
			       "\"%s\" must name a cgroup below the cgroup2 "
			       "root with plain components (no \".\", \"..\", "
			       "empty or trailing \"/\")",
			       cgroup);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", cgroup_root, rel) >=
	    sizeof(path))
		return jv_fail(v, "cgroup", "path too long");
	if (netns[0] != '/')
		return jv_fail(v, "netns", "must be an absolute path");
	labels = json_object_get(j, "labels");
	if (labels) {
		const char *k;
		json_t *val;

		if (!json_is_object(labels))
			return jv_fail(v, "labels",
				       "expected an object of label: value");
		json_object_foreach(labels, k, val) {
			if (!json_is_string(val)) {
				size_t old = jv_push_key(v, "labels");

				jv_fail(v, k, "label values must be strings");
				jv_pop(v, old);
				return -1;
			}
		}
		w->labels = json_deep_copy(labels);
	} else {
		w->labels = json_object();
	}
	k8s = json_object_get(j, "kubernetes");
	if (k8s) {
		size_t old = jv_push_key(v, "kubernetes");
		int bad = jv_object(v, k8s, kkeys);

		for (int k = 0; k < 3 && !bad; k++)
			bad = jv_string(v, k8s, kkeys[k], false, &kv[k]);
		jv_pop(v, old);
		if (bad)
			return -1;
	}
	w->name = strdup(name);
	w->cgroup = strdup(path);
	w->netns = strdup(netns);
	if (!w->name || !w->cgroup || !w->netns || !w->labels)
		return jv_fail(v, NULL, "out of memory");
	if ((kv[0] && !(w->k8s_namespace = strdup(kv[0]))) ||
	    (kv[1] && !(w->pod = strdup(kv[1]))) ||
	    (kv[2] && !(w->service_account = strdup(kv[2]))))
		return jv_fail(v, NULL, "out of memory");
	return 0;
}

static int parse_resolvers(struct jv *v, json_t *root, struct config *c)
{
	json_t *r = json_object_get(root, "dns_resolvers");
	size_t old;

	if (!r)
		return 0;
	if (!json_is_array(r))
		return jv_fail(v, "dns_resolvers",
			       "expected an array of IP addresses");
	if (json_array_size(r) > 64)
		return jv_fail(v, "dns_resolvers", "at most 64 resolvers");
	c->resolvers = calloc(json_array_size(r) + 1, sizeof(*c->resolvers));
	if (!c->resolvers)
		return jv_fail(v, NULL, "out of memory");
	old = jv_push_key(v, "dns_resolvers");
	for (size_t i = 0; i < json_array_size(r); i++) {
		json_t *e = json_array_get(r, i);
		struct config_resolver *res = &c->resolvers[i];
		unsigned prefix;
		size_t o2 = jv_push_index(v, i);

		if (!json_is_string(e) ||
		    policy_parse_cidr(json_string_value(e), &res->family,
				      res->addr, &prefix) ||
		    prefix != (res->family == AF_INET ? 32u : 128u))
			return jv_fail(v, NULL, "expected an IP address");
		c->nresolvers++;
		jv_pop(v, o2);
	}
	jv_pop(v, old);
	return 0;
}

static int parse_policy(struct jv *v, json_t *root, struct config *c,
			const char *cfg_path)
{
	json_t *p = json_object_get(root, "policy");
	size_t old;

	if (!p)
		return jv_fail(v, "policy",
			       "required key is missing (an object, or the "
			       "path of a policy file)");
	if (json_is_string(p)) {
		const char *s = json_string_value(p);
		char path[PATH_MAX];

		if (!*s)
			return jv_fail(v, "policy",
				       "must not be empty (an object, or the "
				       "path of a policy file)");
		if (s[0] == '/') {
			snprintf(path, sizeof(path), "%s", s);
		} else {
			const char *slash = strrchr(cfg_path, '/');
			int dl = slash ? (int)(slash - cfg_path) : 1;

			snprintf(path, sizeof(path), "%.*s/%s", dl,
				 slash ? cfg_path : ".", s);
		}
		c->policy_path = strdup(path);
		if (!c->policy_path)
			return jv_fail(v, NULL, "out of memory");
		c->policy = policy_load_file(path, v->err, v->errlen);
		return c->policy ? 0 : -1;
	}
	old = jv_push_key(v, "policy");
	c->policy = policy_compile(v, p);
	jv_pop(v, old);
	return c->policy ? 0 : -1;
}

/*
 * The key of the "hash" masking style: from a root-only file, so that the
 * same value hashes the same across restarts and nodes; without one, a
 * random key that lives as long as the process.
 */
static int load_mask_key(struct jv *v, const char *path, struct config *c)
{
	struct stat st;
	ssize_t n;
	int fd;

	if (!path) {
		c->mask_key_len = sizeof(c->mask_key);
		return RAND_bytes(c->mask_key, sizeof(c->mask_key)) == 1 ?
			       0 :
			       jv_fail(v, NULL, "no random bytes for a key");
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return jv_fail(v, "mask_key_file", "cannot open %s: %s", path,
			       strerror(errno));
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		close(fd);
		return jv_fail(v, "mask_key_file",
			       "%s is readable by others than its owner "
			       "(chmod 600)",
			       path);
	}
	n = read(fd, c->mask_key, sizeof(c->mask_key));
	close(fd);
	if (n < 16)
		return jv_fail(v, "mask_key_file",
			       "%s: a key needs at least 16 bytes", path);
	c->mask_key_len = (size_t)n;
	return 0;
}

/* reviewer_api: {"listen": "127.0.0.1:8440" | "[::1]:8440",
 * "tokens_file": "/etc/bridle/reviewers.json"} */
static int parse_reviewer_api(struct jv *v, json_t *root, struct config *c)
{
	static const char *const keys[] = { "listen", "tokens_file", NULL };
	json_t *o = json_object_get(root, "reviewer_api");
	const char *listen = NULL, *tokens = NULL, *colon;
	char host[64];
	size_t old, hl;
	char *end;
	long port;

	if (!o)
		return 0;
	old = jv_push_key(v, "reviewer_api");
	if (jv_object(v, o, keys) || jv_string(v, o, "listen", true, &listen) ||
	    jv_string(v, o, "tokens_file", true, &tokens))
		return -1;
	colon = strrchr(listen, ':');
	hl = colon ? (size_t)(colon - listen) : 0;
	if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
		snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), listen + 1);
		c->reviewer_family = AF_INET6;
	} else {
		snprintf(host, sizeof(host), "%.*s", (int)hl, listen);
		c->reviewer_family = AF_INET;
	}
	port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (!colon || hl == 0 || hl >= sizeof(host) || *end || port < 1 ||
	    port > 65535 ||
	    inet_pton(c->reviewer_family, host, c->reviewer_addr) != 1)
		return jv_fail(v, "listen",
			       "\"%s\" is not ADDRESS:PORT (127.0.0.1:8440, "
			       "[::1]:8440)",
			       listen);
	c->reviewer_port = (uint16_t)port;
	if (tokens[0] != '/')
		return jv_fail(v, "tokens_file", "must be an absolute path");
	c->reviewer_listen = strdup(listen);
	c->reviewer_tokens_file = strdup(tokens);
	jv_pop(v, old);
	return c->reviewer_listen && c->reviewer_tokens_file ?
		       0 :
		       jv_fail(v, NULL, "out of memory");
}

/* review_webhooks: [{"url": "https://…", "format": "json" | "slack"}] */
static int parse_webhooks(struct jv *v, json_t *root, struct config *c)
{
	static const char *const keys[] = { "url", "format", NULL };
	static const char *const formats[] = { "json", "slack", NULL };
	json_t *a = json_object_get(root, "review_webhooks"), *h;
	size_t old, i;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return jv_fail(v, "review_webhooks",
			       "expected an array of {\"url\", \"format\"}");
	c->webhooks = calloc(json_array_size(a) + 1, sizeof(*c->webhooks));
	if (!c->webhooks)
		return jv_fail(v, "review_webhooks", "out of memory");
	old = jv_push_key(v, "review_webhooks");
	json_array_foreach(a, i, h) {
		size_t o2 = jv_push_index(v, i);
		const char *url = NULL;
		int fmt = 0;

		if (jv_object(v, h, keys) ||
		    jv_string(v, h, "url", true, &url) ||
		    jv_enum(v, h, "format", formats, "a webhook format", &fmt))
			return -1;
		if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))
			return jv_fail(v, "url",
				       "must be an http:// or https:// "
				       "URL");
		c->webhooks[i].url = strdup(url);
		c->webhooks[i].slack = fmt == 1;
		c->nwebhooks = i + 1;
		if (!c->webhooks[i].url)
			return jv_fail(v, "url", "out of memory");
		jv_pop(v, o2);
	}
	jv_pop(v, old);
	return 0;
}

/* record_dir and its key go together; the key only its owner reads. */
static int parse_recording(struct jv *v, const char *dir, const char *key,
			   struct config *c)
{
	char why[512];
	int n;

	if (!dir && !key)
		return 0;
	if (!dir || !key)
		return jv_fail(v, dir ? "record_key_file" : "record_dir",
			       "record_dir and record_key_file go together "
			       "(the key seals every recording)");
	if (dir[0] != '/')
		return jv_fail(v, "record_dir", "must be an absolute path");
	n = record_key_load(key, true, c->record_key, why, sizeof(why));
	if (n < 0)
		return jv_fail(v, "record_key_file", "%s", why);
	c->record_key_len = (size_t)n;
	c->record_dir = strdup(dir);
	return c->record_dir ? 0 : jv_fail(v, "record_dir", "out of memory");
}

static struct config *config_from_json(json_t *root, const char *name,
				       const char *cgroup_root, char *err,
				       size_t errlen)
{
	static const char *const keys[] = { "listen_port",
					    "control_socket",
					    "log_dir",
					    "bpf_pin_dir",
					    "dns_resolvers",
					    "workloads",
					    "policy",
					    "connect_timeout_ms",
					    "idle_timeout_ms",
					    "drain_timeout_ms",
					    "buffer_size",
					    "max_sessions",
					    "max_sessions_per_workload",
					    "recent_sessions",
					    "relay",
					    "workers",
					    "max_message_size",
					    "mask_key_file",
					    "tls_cert_file",
					    "tls_key_file",
					    "decision_log",
					    "record_dir",
					    "record_key_file",
					    "record_fsync_ms",
					    "record_on_error",
					    "record_max_bytes",
					    "record_max_age_hours",
					    "review_webhooks",
					    "reviewer_api",
					    NULL };
	const char *control = "/run/bridle/control.sock";
	const char *log_dir = "/var/lib/bridle",
		   *pin_dir = "/sys/fs/bpf/bridle";
	static const char *const relays[] = { "auto", "copy", "splice", NULL };
	static const char *const declogs[] = { "all", "refusals", NULL };
	static const char *const onerr[] = { "refuse", "continue", NULL };
	int relay = RELAY_AUTO, declog = DECISION_LOG_ALL,
	    rec_onerr = RECORD_ON_ERROR_REFUSE;
	uint64_t rec_fsync = 1000, rec_max_bytes = 0, rec_max_age = 0;
	const char *rec_dir = NULL, *rec_key = NULL;
	uint64_t port = 15001, ct = 5000, idle = 3600000, drain = 10000,
		 bufsz = 65536, maxs = 10000, maxw = 0, recent = 256,
		 workers = 0, maxmsg = 1 << 20;
	const char *mask_key_file = NULL, *cert = NULL, *key = NULL;
	struct config *c;
	json_t *wl;
	struct jv v;
	char root_buf[PATH_MAX];

	jv_init(&v, name, err, errlen);
	if (!cgroup_root) {
		int r = config_cgroup2_root("/proc/mounts", root_buf,
					    sizeof(root_buf));

		if (r) {
			snprintf(err, errlen,
				 "%s: no cgroup2 file system is mounted "
				 "(/proc/mounts): %s",
				 name, strerror(-r));
			return NULL;
		}
		cgroup_root = root_buf;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (jv_object(&v, root, keys) ||
	    jv_uint(&v, root, "listen_port", false, 1, 65535, &port) ||
	    jv_string(&v, root, "control_socket", false, &control) ||
	    jv_string(&v, root, "log_dir", false, &log_dir) ||
	    jv_string(&v, root, "bpf_pin_dir", false, &pin_dir) ||
	    jv_uint(&v, root, "connect_timeout_ms", false, 1, 600000, &ct) ||
	    jv_uint(&v, root, "idle_timeout_ms", false, 0, 86400000, &idle) ||
	    jv_uint(&v, root, "drain_timeout_ms", false, 0, 3600000, &drain) ||
	    jv_uint(&v, root, "buffer_size", false, 4096, 16 << 20, &bufsz) ||
	    jv_uint(&v, root, "max_sessions", false, 1, 1000000, &maxs) ||
	    jv_uint(&v, root, "max_sessions_per_workload", false, 1, 1000000,
		    &maxw) ||
	    jv_uint(&v, root, "recent_sessions", false, 0, 100000, &recent) ||
	    jv_uint(&v, root, "workers", false, 1, CONFIG_MAX_WORKERS,
		    &workers) ||
	    jv_enum(&v, root, "relay", relays, "a relay mode", &relay) ||
	    jv_uint(&v, root, "max_message_size", false, 1024, 1 << 30,
		    &maxmsg) ||
	    jv_string(&v, root, "mask_key_file", false, &mask_key_file) ||
	    jv_string(&v, root, "tls_cert_file", false, &cert) ||
	    jv_string(&v, root, "tls_key_file", false, &key) ||
	    jv_enum(&v, root, "decision_log", declogs, "a decision log level",
		    &declog) ||
	    jv_string(&v, root, "record_dir", false, &rec_dir) ||
	    jv_string(&v, root, "record_key_file", false, &rec_key) ||
	    jv_uint(&v, root, "record_fsync_ms", false, 10, 60000,
		    &rec_fsync) ||
	    jv_enum(&v, root, "record_on_error", onerr,
		    "what to do when a record cannot be written", &rec_onerr) ||
	    jv_uint(&v, root, "record_max_bytes", false, 0, UINT64_MAX / 2,
		    &rec_max_bytes) ||
	    jv_uint(&v, root, "record_max_age_hours", false, 0, 24 * 3650,
		    &rec_max_age) ||
	    parse_resolvers(&v, root, c) || parse_webhooks(&v, root, c) ||
	    parse_reviewer_api(&v, root, c) ||
	    parse_recording(&v, rec_dir, rec_key, c))
		goto fail;
	/* In the order of enum relay_mode and enum decision_log. */
	c->relay = (enum relay_mode)relay;
	c->decision_log = (enum decision_log)declog;
	c->record_on_error = (enum record_on_error)rec_onerr;
	c->record_fsync_ms = (uint32_t)rec_fsync;
	c->record_max_bytes = rec_max_bytes;
	c->record_max_age_hours = (uint32_t)rec_max_age;
	if (control[0] != '/' ||
	    strlen(control) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		jv_fail(&v, "control_socket",
			"must be an absolute path shorter than 108 bytes");
		goto fail;
	}
	if (load_mask_key(&v, mask_key_file, c))
		goto fail;
	if (!cert != !key) {
		jv_fail(&v, cert ? "tls_key_file" : "tls_cert_file",
			"tls_cert_file and tls_key_file go together");
		goto fail;
	}
	if ((cert && !(c->tls_cert_file = strdup(cert))) ||
	    (key && !(c->tls_key_file = strdup(key))))
		goto fail;
	if (pin_dir[0] != '/' || log_dir[0] != '/') {
		jv_fail(&v, pin_dir[0] != '/' ? "bpf_pin_dir" : "log_dir",
			"must be an absolute path");
		goto fail;
	}
	wl = json_object_get(root, "workloads");
	if (!wl || !json_is_array(wl)) {
		jv_fail(&v, "workloads",
			wl ? "expected an array of workloads" :
			     "required key is missing");
		goto fail;
	}
	if (json_array_size(wl)) {
		size_t old = jv_push_key(&v, "workloads");

		c->workloads =
			calloc(json_array_size(wl), sizeof(*c->workloads));
		if (!c->workloads)
			goto fail;
		for (size_t i = 0; i < json_array_size(wl); i++) {
			size_t o2 = jv_push_index(&v, i);

			c->nworkloads = i + 1;
			if (parse_workload(&v, json_array_get(wl, i), c, i,
					   cgroup_root))
				goto fail;
			jv_pop(&v, o2);
		}
		jv_pop(&v, old);
	}
	if (parse_policy(&v, root, c, name))
		goto fail;
	c->path = strdup(name);
	c->listen_port = (uint16_t)port;
	c->control_socket = strdup(control);
	c->log_dir = strdup(log_dir);
	c->pin_dir = strdup(pin_dir);
	c->cgroup_root = strdup(cgroup_root);
	c->connect_timeout_ms = (uint32_t)ct;
	c->idle_timeout_ms = (uint32_t)idle;
	c->drain_timeout_ms = (uint32_t)drain;
	c->buffer_size = (uint32_t)bufsz;
	c->max_message = (uint32_t)maxmsg;
	c->max_sessions = (uint32_t)maxs;
	/* Default: with several workloads none may hold more than half. */
	if (!maxw)
		maxw = c->nworkloads > 1 && maxs > 1 ? maxs / 2 : maxs;
	c->max_sessions_per_workload = (uint32_t)maxw;
	c->recent_sessions = (uint32_t)recent;
	c->workers = (uint32_t)(workers ? workers : config_default_workers());
	if (!c->path || !c->control_socket || !c->log_dir || !c->pin_dir ||
	    !c->cgroup_root) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	return c;
fail:
	config_free(c);
	return NULL;
}

struct config *config_load(const char *path, const char *cgroup_root, char *err,
			   size_t errlen)
{
	struct config *c;
	json_t *root = jv_load_file(path, err, errlen);

	if (!root)
		return NULL;
	c = config_from_json(root, path, cgroup_root, err, errlen);
	json_decref(root);
	return c;
}

struct config *config_parse(const char *text, size_t len, const char *name,
			    const char *cgroup_root, char *err, size_t errlen)
{
	json_error_t je;
	struct config *c;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);

	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", name,
			 je.line, je.column, je.text);
		return NULL;
	}
	c = config_from_json(root, name, cgroup_root, err, errlen);
	json_decref(root);
	return c;
}
