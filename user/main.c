// SPDX-License-Identifier: Apache-2.0
/*
 * The bridle command. `bridle run` is the enforcer; the other subcommands
 * talk to it over the control socket or work on files. Every command that
 * lists or reports takes --json; errors go to stderr with a non-zero exit.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include "bridle/api.h"
#include "bridle/bpf.h"
#include "bridle/config.h"
#include "bridle/log.h"
#include "bridle/cli.h"
#include "bridle/policy.h"
#include "bridle/run.h"

#define BRIDLE_VERSION "0.1.0"

static const char usage_text[] =
	"usage: bridle <command> [options]\n"
	"\n"
	"commands:\n"
	"  run [--config FILE]             run the enforcer in the foreground\n"
	"  status [--json]                 workloads, readiness, attached "
	"programs\n"
	"  sessions [--json]               live and recent connections\n"
	"  sessions --recorded [filters]   recorded sessions: --workload, "
	"--target,\n"
	"                                  --user, --since, --until, "
	"--decision\n"
	"  replay ID [--follow]            a recorded session as a transcript\n"
	"  export ID --format jsonl|csv    a recorded session's records\n"
	"  reload                          reload the policy (like SIGHUP)\n"
	"  reviews [--all] [--json]        requests held for a person's "
	"approval\n"
	"  approve ID [--for 10m] [--reason TEXT]\n"
	"                                  let a held request run (--for: and "
	"requests\n"
	"                                  like it, for that long: a grant)\n"
	"  reject ID --reason TEXT         refuse a held request\n"
	"  grants [--json]                 grants; revoke ID ends one\n"
	"  policy check FILE [--json]      validate a policy or config file:\n"
	"                                  every error, with its JSON path\n"
	"  policy explain FILE [options]   decide a described request offline\n"
	"  policy stats [--json]           decisions per rule, live\n"
	"  verify [--key-file K] FILE|DIR  verify session recordings [--json]\n"
	"  unenroll --cgroup PATH          remove pinned programs of a cgroup\n"
	"  version                         print the version\n"
	"\n"
	"client options: --socket PATH (default from --config, else\n"
	"  /run/bridle/control.sock), --config FILE (default " CONFIG_DEFAULT_PATH
	")\n";

struct opts {
	const char *config;
	const char *socket;
	const char *cgroup;
	const char *pin_dir;
	const char *reason, *for_;
	bool json, all;
	int argc; /* positional arguments left */
	char **argv;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "reason", required_argument, NULL, 'r' },
		{ "for", required_argument, NULL, 'f' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'g':
			o->cgroup = optarg;
			break;
		case 'p':
			o->pin_dir = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'r':
			o->reason = optarg;
			break;
		case 'f':
			o->for_ = optarg;
			break;
		case 'a':
			o->all = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fputs(usage_text, stderr);
			return -1;
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	return 0;
}

/* The control socket: --socket, else the config's, else the default. */
static const char *socket_path(const struct opts *o, char *buf, size_t len)
{
	json_t *root;
	json_error_t je;

	if (o->socket)
		return o->socket;
	snprintf(buf, len, "/run/bridle/control.sock");
	root = json_load_file(o->config ? o->config : CONFIG_DEFAULT_PATH, 0,
			      &je);
	if (root) {
		const char *s = json_string_value(
			json_object_get(root, "control_socket"));

		if (s)
			snprintf(buf, len, "%s", s);
		json_decref(root);
	}
	return buf;
}

/* A request with arguments; the reply when "ok", else NULL (said). */
static json_t *call_req(const struct opts *o, json_t *req)
{
	char path[256], err[512];
	json_t *r = api_call_json(socket_path(o, path, sizeof(path)), req, err,
				  sizeof(err));

	if (!r) {
		fprintf(stderr, "bridle: %s\n", err);
		return NULL;
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		fprintf(stderr, "bridle: %s\n",
			json_string_value(json_object_get(r, "error")) ?:
				"request failed");
		json_decref(r);
		return NULL;
	}
	return r;
}

/* A request without arguments. */
static json_t *call(const struct opts *o, const char *cmd)
{
	return call_req(o, json_pack("{s:s}", "cmd", cmd));
}

/* With --json, print reply @r as it is (and free it): true when done. */
static bool json_out(const struct opts *o, json_t *r)
{
	if (!o->json)
		return false;
	cli_print_json(r);
	json_decref(r);
	return true;
}

static int cmd_status(const struct opts *o)
{
	json_t *r = call(o, "status"), *w;
	size_t i;

	if (!r)
		return 1;
	if (json_out(o, r))
		return 0;
	printf("bridle pid %lld, up %lld s, listen port %lld, policy %s "
	       "generation %lld (%s mode)%s\n",
	       json_integer_value(json_object_get(r, "pid")),
	       json_integer_value(json_object_get(r, "uptime_ms")) / 1000,
	       json_integer_value(json_object_get(r, "listen_port")),
	       json_string_value(json_object_get(json_object_get(r, "policy"), "version")) ?:
		       "?",
	       json_integer_value(json_object_get(json_object_get(r, "policy"),
						  "generation")),
	       json_string_value(json_object_get(json_object_get(r, "policy"), "mode")) ?:
		       "?",
	       json_is_true(json_object_get(r, "draining")) ? " (draining)" :
							      "");
	{
		json_t *rec = json_object_get(r, "recording");

		if (json_is_true(json_object_get(rec, "enabled")))
			printf("recording to %s: %lld sessions, %lld open, "
			       "%lld write failures, %lld requests refused, "
			       "%lld sessions unrecorded%s%s\n",
			       json_string_value(json_object_get(rec, "dir")),
			       json_integer_value(
				       json_object_get(rec, "sessions")),
			       json_integer_value(
				       json_object_get(rec, "open_files")),
			       json_integer_value(
				       json_object_get(rec, "write_failures")),
			       json_integer_value(json_object_get(
				       rec, "refused_requests")),
			       json_integer_value(json_object_get(
				       rec, "unrecorded_sessions")),
			       json_is_true(json_object_get(rec, "failing")) ?
				       "; FAILING: " :
				       "",
			       json_is_true(json_object_get(rec, "failing")) ?
				       json_string_value(json_object_get(rec, "last_error")) ?:
				       "?" :
				       "");
		else
			printf("sessions are not recorded (no record_dir)\n");
	}
	printf("%-20s %-6s %-8s %-8s %-9s %s\n", "WORKLOAD", "READY",
	       "ACCEPTED", "REFUSED", "PROGRAMS", "CGROUP / ERROR");
	json_array_foreach(json_object_get(r, "workloads"), i, w) {
		const char *err =
			json_string_value(json_object_get(w, "error"));

		printf("%-20s %-6s %-8lld %-8lld %-9zu %s\n",
		       json_string_value(json_object_get(w, "name")),
		       json_is_true(json_object_get(w, "ready")) ? "yes" : "NO",
		       json_integer_value(json_object_get(w, "accepted")),
		       json_integer_value(json_object_get(w, "refused")),
		       json_array_size(json_object_get(w, "programs")),
		       err ? err :
			     json_string_value(json_object_get(w, "cgroup")));
	}
	json_decref(r);
	return 0;
}

static int cmd_sessions(const struct opts *o)
{
	json_t *r = call(o, "sessions"), *s;
	size_t i;

	if (!r)
		return 1;
	if (o->json) {
		cli_print_json(json_object_get(r, "sessions"));
		json_decref(r);
		return 0;
	}
	printf("%-6s %-8s %-14s %-7s %-12s %-22s %-12s %-6s %-20s %10s %10s "
	       "%8s %s\n",
	       "ID", "STATE", "WORKLOAD", "PID", "USER", "DESTINATION",
	       "TARGET", "ACTION", "RULE", "BYTES_UP", "BYTES_DN", "MS",
	       "REQUESTS(DENIED,MASKED)");
	json_array_foreach(json_object_get(r, "sessions"), i, s) {
		json_t *p = json_object_get(s, "process");
		json_t *q = json_object_get(s, "requests");
		char req[64] = "-";

		/* Protocol modules count the requests they decided. */
		if (q)
			snprintf(req, sizeof(req), "%lld(%lld,%lld)",
				 json_integer_value(
					 json_object_get(q, "decided")),
				 json_integer_value(
					 json_object_get(q, "denied")),
				 json_integer_value(
					 json_object_get(q, "masked_values")));
		printf("%-6lld %-8s %-14s %-7lld %-12s %-22s %-12s %-6s %-20s "
		       "%10lld %10lld %8lld %s\n",
		       json_integer_value(json_object_get(s, "id")),
		       json_string_value(json_object_get(s, "state")),
		       json_string_value(json_object_get(s, "workload")),
		       json_integer_value(json_object_get(p, "pid")),
		       json_string_value(json_object_get(s, "user")) ?: "-",
		       json_string_value(
			       json_object_get(s, "original_destination")),
		       json_string_value(json_object_get(s, "target")) ?: "-",
		       json_string_value(json_object_get(s, "action")),
		       json_string_value(json_object_get(s, "rule")),
		       json_integer_value(json_object_get(s, "bytes_up")),
		       json_integer_value(json_object_get(s, "bytes_down")),
		       json_integer_value(json_object_get(s, "duration_ms")),
		       req);
	}
	json_decref(r);
	return 0;
}

/* Who decides, as the control socket records it: the user behind sudo,
 * or the login. */
static const char *decider(void)
{
	const char *u = getenv("SUDO_USER");

	if (!u || !*u)
		u = getenv("USER");
	return u && *u ? u : "root";
}

/* The decider's groups (a rule's approvers may name groups). */
static json_t *decider_groups(void)
{
	struct passwd *pw = getpwnam(decider());
	gid_t gids[64];
	int n = 64;
	json_t *a = json_array();

	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, gids, &n) < 0)
		return a;
	for (int i = 0; i < n; i++) {
		struct group *g = getgrgid(gids[i]);

		if (g)
			json_array_append_new(a, json_string(g->gr_name));
	}
	return a;
}

static void print_time(const char *label, json_t *ms)
{
	time_t t = (time_t)(json_integer_value(ms) / 1000);
	struct tm tm;
	char b[32];

	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s%s", label, b);
}

static int cmd_reviews(const struct opts *o)
{
	json_t *r = call_req(o, json_pack("{s:s,s:b}", "cmd", "reviews", "all",
					  o->all)),
	       *v;
	size_t i;

	if (!r)
		return 1;
	if (o->json) {
		cli_print_json(json_object_get(r, "reviews"));
		json_decref(r);
		return 0;
	}
	printf("%-6s %-10s %-14s %-12s %-14s %-24s %-22s %s\n", "ID", "STATE",
	       "WORKLOAD", "TARGET", "USER", "RULE", "EXPIRES", "REQUEST");
	json_array_foreach(json_object_get(r, "reviews"), i, v) {
		printf("%-6lld %-10s %-14s %-12s %-14s %-24s ",
		       json_integer_value(json_object_get(v, "id")),
		       json_string_value(json_object_get(v, "state")),
		       json_string_value(json_object_get(v, "workload")) ?: "-",
		       json_string_value(json_object_get(v, "target")) ?: "-",
		       json_string_value(json_object_get(v, "user")) ?: "-",
		       json_string_value(json_object_get(v, "rule")) ?: "-");
		print_time("", json_object_get(v, "expires_ms"));
		printf("   %s\n    %s%s%s\n",
		       json_string_value(json_object_get(v, "request")) ?: "",
		       json_string_value(json_object_get(v, "statement")) ?: "",
		       json_object_get(v, "by") ? "\n    decided by " : "",
		       json_string_value(json_object_get(v, "by")) ?: "");
	}
	json_decref(r);
	return 0;
}

static int cmd_decide(const struct opts *o, const char *cmd)
{
	long long id = o->argc == 1 ? strtoll(o->argv[0], NULL, 10) : 0;
	long long for_s = o->for_ ? cli_parse_duration(o->for_) : 0;
	json_t *req, *r;

	if (id <= 0 || for_s < 0 || (o->for_ && strcmp(cmd, "approve")) ||
	    (!strcmp(cmd, "reject") && !o->reason)) {
		fprintf(stderr,
			"usage: bridle approve ID [--for 10m] [--reason TEXT]\n"
			"       bridle reject ID --reason TEXT\n"
			"       bridle revoke GRANT\n"
			"  --for: also let requests like it (same statement, "
			"identity, target) through for that long\n");
		return 2;
	}
	req = json_pack("{s:s,s:I,s:s,s:o}", "cmd", cmd, "id", (json_int_t)id,
			"by", decider(), "groups", decider_groups());
	if (o->reason)
		json_object_set_new(req, "reason", json_string(o->reason));
	if (for_s)
		json_object_set_new(req, "for_s", json_integer(for_s));
	r = call_req(o, req);
	if (!r)
		return 1;
	if (json_is_true(json_object_get(r, "pending"))) {
		printf("%s\n",
		       json_string_value(json_object_get(r, "message")) ?: "");
		json_decref(r);
		return 0;
	}
	if (!strcmp(cmd, "revoke"))
		printf("grant %lld revoked\n", id);
	else
		printf("review %lld %s%s\n", id,
		       strcmp(cmd, "approve") ? "rejected" : "approved",
		       for_s ? ", and requests like it for the time given" :
			       "");
	json_decref(r);
	return 0;
}

static int cmd_grants(const struct opts *o)
{
	json_t *r = call_req(o, json_pack("{s:s}", "cmd", "grants")), *g;
	size_t i;

	if (!r)
		return 1;
	if (o->json) {
		cli_print_json(json_object_get(r, "grants"));
		json_decref(r);
		return 0;
	}
	printf("%-6s %-8s %-7s %-14s %-12s %-14s %-6s %-22s %s\n", "ID",
	       "STATE", "REVIEW", "WORKLOAD", "TARGET", "USER", "USES", "UNTIL",
	       "REQUEST");
	json_array_foreach(json_object_get(r, "grants"), i, g) {
		printf("%-6lld %-8s %-7lld %-14s %-12s %-14s %-6lld ",
		       json_integer_value(json_object_get(g, "id")),
		       json_string_value(json_object_get(g, "state")),
		       json_integer_value(json_object_get(g, "review")),
		       json_string_value(json_object_get(g, "workload")) ?: "-",
		       json_string_value(json_object_get(g, "target")) ?: "-",
		       json_string_value(json_object_get(g, "user")) ?: "-",
		       json_integer_value(json_object_get(g, "uses")));
		print_time("", json_object_get(g, "expires_ms"));
		printf("   %s\n",
		       json_string_value(json_object_get(g, "statement")) ?:
									    "");
	}
	json_decref(r);
	return 0;
}

static int cmd_reload(const struct opts *o)
{
	json_t *r = call(o, "reload");

	if (!r)
		return 1;
	printf("policy reloaded: generation %lld\n",
	       json_integer_value(json_object_get(r, "generation")));
	json_decref(r);
	return 0;
}

static int cmd_policy_stats(const struct opts *o)
{
	json_t *r = call(o, "policy_stats"), *rules, *e;
	size_t i;

	if (!r)
		return 1;
	if (json_out(o, r))
		return 0;
	rules = json_object_get(json_object_get(r, "policy"), "rules");
	printf("policy %s, generation %lld\n",
	       json_string_value(json_object_get(json_object_get(r, "policy"),
						 "version")),
	       json_integer_value(json_object_get(r, "generation")));
	printf("%-40s %-8s %-8s %8s %8s %8s %8s\n", "RULE", "ACTION", "MODE",
	       "ALLOW", "DENY", "REVIEW", "SHADOW");
	json_array_foreach(rules, i, e) {
		json_t *pseudo = json_object_get(e, "pseudo");

		printf("%-40s %-8s %-8s %8lld %8lld %8lld %8lld\n",
		       json_string_value(json_object_get(e, "name")),
		       pseudo ? "-" :
				json_string_value(json_object_get(e, "action")),
		       pseudo ? "-" :
				json_string_value(json_object_get(e, "mode")),
		       json_integer_value(json_object_get(e, "allow")),
		       json_integer_value(json_object_get(e, "deny")),
		       json_integer_value(json_object_get(e, "review")),
		       json_integer_value(json_object_get(e, "shadow")));
	}
	json_decref(r);
	return 0;
}

static int cmd_policy(const struct opts *o)
{
	if (o->argc == 2 && strcmp(o->argv[0], "check") == 0)
		return cli_policy_check(o->argv[1], o->json);
	if (o->argc == 1 && strcmp(o->argv[0], "stats") == 0)
		return cmd_policy_stats(o);
	fprintf(stderr, "usage: bridle policy check FILE [--json]\n"
			"       bridle policy explain FILE [options] "
			"(bridle policy explain --help)\n"
			"       bridle policy stats [--json]\n");
	return 2;
}

static int cmd_unenroll(const struct opts *o)
{
	char err[512];

	if (!o->cgroup) {
		fprintf(stderr, "usage: bridle unenroll --cgroup PATH "
				"[--pin-dir DIR]\n");
		return 2;
	}
	if (bridle_bpf_unpin_cgroup(o->pin_dir ? o->pin_dir :
						 "/sys/fs/bpf/bridle",
				    o->cgroup, err, sizeof(err))) {
		fprintf(stderr, "bridle: %s\n", err);
		return 1;
	}
	return 0;
}

/* `bridle sessions` reads recordings when asked to, or to filter. */
static bool recorded_args(int argc, char **argv)
{
	static const char *const opts[] = {
		"--recorded", "--dir",	 "--key-file", "--workload", "--target",
		"--user",     "--since", "--until",    "--decision", NULL
	};

	for (int i = 2; i < argc; i++)
		for (int k = 0; opts[k]; k++)
			if (!strncmp(argv[i], opts[k], strlen(opts[k])))
				return true;
	return false;
}

int main(int argc, char **argv)
{
	struct opts o = {};
	const char *cmd;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	/* explain and the recordings' commands have options of their own. */
	if (strcmp(cmd, "verify") == 0)
		return cli_verify(argc - 1, argv + 1);
	if (strcmp(cmd, "replay") == 0)
		return cli_replay(argc - 1, argv + 1);
	if (strcmp(cmd, "export") == 0)
		return cli_export(argc - 1, argv + 1);
	if (strcmp(cmd, "sessions") == 0 && recorded_args(argc, argv))
		return cli_recorded_sessions(argc - 1, argv + 1);
	if (strcmp(cmd, "policy") == 0 && argc > 2 &&
	    strcmp(argv[2], "explain") == 0)
		return cli_policy_explain(argc - 2, argv + 2);
	if (parse_opts(argc - 1, argv + 1, &o))
		return 2;
	if (strcmp(cmd, "run") == 0) {
		if (getenv("BRIDLE_LOG_DEBUG"))
			log_set_level(LOG_DEBUG);
		return run_enforcer(o.config ? o.config : CONFIG_DEFAULT_PATH);
	}
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&o);
	if (strcmp(cmd, "sessions") == 0)
		return cmd_sessions(&o);
	if (strcmp(cmd, "reload") == 0)
		return cmd_reload(&o);
	if (strcmp(cmd, "reviews") == 0)
		return cmd_reviews(&o);
	if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "reject") == 0 ||
	    strcmp(cmd, "revoke") == 0)
		return cmd_decide(&o, cmd);
	if (strcmp(cmd, "grants") == 0)
		return cmd_grants(&o);
	if (strcmp(cmd, "policy") == 0)
		return cmd_policy(&o);
	if (strcmp(cmd, "unenroll") == 0)
		return cmd_unenroll(&o);
	if (strcmp(cmd, "version") == 0) {
		printf("bridle %s\n", BRIDLE_VERSION);
		return 0;
	}
	fprintf(stderr, "bridle: unknown command \"%s\"\n\n%s", cmd,
		usage_text);
	return 2;
}
