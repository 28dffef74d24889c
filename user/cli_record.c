// SPDX-License-Identifier: Apache-2.0
/*
 * Reading recordings back: `bridle verify` checks files; `bridle sessions
 * --recorded` lists the recording directory, with filters; `bridle replay`
 * prints a session as a transcript (and follows a live one); `bridle
 * export` writes its records as JSON lines or CSV. Each reads the files
 * directly (the enforcer need not run) and shows only records that
 * verify: a file that does not is reported, from the record where it
 * stops verifying.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bridle/cli.h"
#include "bridle/config.h"
#include "bridle/record.h"

/* Where recordings are and the key that seals them. */
struct rec_src {
	char dir[4096];
	uint8_t key[64];
	int keylen;
};

/* The options every command here takes: where, and with which key. */
struct src_args {
	const char *dir, *key_file, *config;
};

/* Option @c ('d', 'k', 'c') into @a; false when it is another. */
static bool src_arg(int c, struct src_args *a)
{
	if (c == 'd')
		a->dir = optarg;
	else if (c == 'k')
		a->key_file = optarg;
	else if (c == 'c')
		a->config = optarg;
	else
		return false;
	return true;
}

/* The whole of @path, or NULL with @err. */
static uint8_t *read_all(const char *path, size_t *len, char *err,
			 size_t errlen)
{
	struct stat st;
	uint8_t *b = NULL;
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 fd < 0 ? strerror(errno) : "not a regular file");
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	while (b && off < (size_t)st.st_size) {
		ssize_t n = read(fd, b + off, (size_t)st.st_size - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (!b || off != (size_t)st.st_size) {
		snprintf(err, errlen, "cannot read %s", path);
		free(b);
		b = NULL;
	}
	*len = off;
out:
	if (fd >= 0)
		close(fd);
	return b;
}

/*
 * The directory (--dir, else record_dir of the config) and the key
 * (--key-file, else record_key_file of the config). Returns 0, or prints
 * the error and returns 2.
 */
static int rec_source(const char *config, const char *dir, const char *key_file,
		      bool need_dir, struct rec_src *src)
{
	struct config *c = NULL;
	char err[1024];

	memset(src, 0, sizeof(*src));
	if ((!dir && need_dir) || !key_file) {
		c = config_load(config ? config : CONFIG_DEFAULT_PATH, NULL,
				err, sizeof(err));
		if (!c) {
			fprintf(stderr,
				"bridle: %s\n(give --dir and --key-file to "
				"read recordings without a config)\n",
				err);
			return 2;
		}
		if (!c->record_dir) {
			fprintf(stderr,
				"bridle: %s does not record sessions "
				"(record_dir is not set)\n",
				c->path);
			config_free(c);
			return 2;
		}
	}
	snprintf(src->dir, sizeof(src->dir), "%s",
		 dir		    ? dir :
		 c && c->record_dir ? c->record_dir :
				      "");
	if (key_file) {
		src->keylen = record_key_load(key_file, false, src->key, err,
					      sizeof(err));
		if (src->keylen < 0) {
			fprintf(stderr, "bridle: %s\n", err);
			config_free(c);
			return 2;
		}
	} else {
		memcpy(src->key, c->record_key, c->record_key_len);
		src->keylen = (int)c->record_key_len;
	}
	config_free(c);
	return 0;
}

static void src_wipe(struct rec_src *src)
{
	OPENSSL_cleanse(src->key, sizeof(src->key));
}

/* Read and verify @path; @cb sees each verified record. Returns 0 when
 * it verifies, -1 with @r->error (or @err when it cannot be read). */
static int rec_read(const char *path, const struct rec_src *src,
		    void (*cb)(json_t *, void *), void *arg,
		    struct record_report *r)
{
	char err[512];
	size_t len;
	uint8_t *b = read_all(path, &len, err, sizeof(err));
	int ret;

	if (!b) {
		memset(r, 0, sizeof(*r));
		r->bad_seq = -1;
		snprintf(r->error, sizeof(r->error), "%s", err);
		return -1;
	}
	ret = record_verify(b, len, src->key, (size_t)src->keylen, cb, arg, r);
	free(b);
	return ret;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static long long jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* @ms (wall clock) as "2026-11-26T01:31:00.123Z". */
static void fmt_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[32];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", s, (int)(ms % 1000));
}

long long cli_parse_duration(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (end == s || v < 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	if (!strcmp(end, "d"))
		return v * 86400;
	return -1;
}

/*
 * A time given on the command line: RFC 3339 ("2026-11-26T01:00:00Z",
 * or a date), or an age ("90s", "15m", "2h", "7d") before now. Returns
 * ms of the wall clock, or -1.
 */
static int64_t parse_when(const char *s)
{
	struct tm tm = {};
	size_t n = strlen(s);
	long long age;
	const char *p;

	/* An age has its unit (a bare number is not a time). */
	if (n && strchr("smhd", s[n - 1]) && (age = cli_parse_duration(s)) >= 0)
		return ((int64_t)time(NULL) - age) * 1000;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p) {
		memset(&tm, 0, sizeof(tm));
		p = strptime(s, "%Y-%m-%d", &tm);
	}
	if (!p || (*p && strcmp(p, "Z")))
		return -1;
	return (int64_t)timegm(&tm) * 1000;
}

/* ----------------------------------------------------------- verify */

/* Verify one recording: a line (or a JSON object in @out). */
static bool verify_one(const char *path, const struct rec_src *src, json_t *out)
{
	struct record_report r;
	int ret = rec_read(path, src, NULL, NULL, &r);
	const char *state;

	state = ret	 ? "FAILED" :
		r.torn	 ? "OK up to a torn tail (the writer stopped inside a "
			   "block)" :
		!r.ended ? "OK, not ended (open, or cut between blocks)" :
			   "OK";
	if (out) {
		json_t *j = json_pack("{s:s,s:b,s:I,s:I,s:b,s:b}", "file", path,
				      "ok", ret == 0, "records",
				      (json_int_t)r.records, "blocks",
				      (json_int_t)r.blocks, "torn", r.torn,
				      "ended", r.ended);

		if (ret) {
			json_object_set_new(j, "error", json_string(r.error));
			json_object_set_new(j, "bad_record",
					    json_integer(r.bad_seq));
		}
		json_array_append_new(out, j);
	} else if (ret) {
		fprintf(stderr, "%s: FAILED after %llu good records: %s\n",
			path, (unsigned long long)r.records, r.error);
	} else {
		printf("%s: %s, %llu records\n", path, state,
		       (unsigned long long)r.records);
	}
	return ret == 0;
}

static bool is_recording(const char *name)
{
	size_t l = strlen(name), sl = strlen(RECORD_SUFFIX);

	return l > sl && strcmp(name + l - sl, RECORD_SUFFIX) == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The recordings of @dir, sorted by name (so by start time), or -1. */
static int list_dir(const char *dir, struct dirent ***names)
{
	struct dirent **v;
	int n = scandir(dir, &v, NULL, by_name), k = 0;

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (is_recording(v[i]->d_name))
			v[k++] = v[i];
		else
			free(v[i]);
	}
	*names = v;
	return k;
}

static void free_names(struct dirent **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int cli_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct src_args a = { .dir = "-" };
	bool json = false, all_ok = true;
	struct rec_src src;
	json_t *out;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'd' || !src_arg(c, &a))
			goto usage;
	}
	if (optind >= argc)
		goto usage;
	if ((r = rec_source(a.config, a.dir, a.key_file, false, &src)))
		return r;
	out = json ? json_array() : NULL;
	for (int i = optind; i < argc; i++) {
		struct stat st;
		struct dirent **v;
		int n;

		if (stat(argv[i], &st) || !S_ISDIR(st.st_mode)) {
			all_ok &= verify_one(argv[i], &src, out);
			continue;
		}
		n = list_dir(argv[i], &v);
		if (n < 0) {
			fprintf(stderr, "bridle: cannot read %s: %s\n", argv[i],
				strerror(errno));
			all_ok = false;
			continue;
		}
		for (int k = 0; k < n; k++) {
			char p[8192];

			snprintf(p, sizeof(p), "%s/%s", argv[i], v[k]->d_name);
			all_ok &= verify_one(p, &src, out);
		}
		free_names(v, n);
	}
	if (out) {
		cli_print_json(out);
		json_decref(out);
	}
	src_wipe(&src);
	return all_ok ? 0 : 1;
usage:
	fprintf(stderr,
		"usage: bridle verify [--key-file FILE | --config FILE] "
		"[--json] RECORDING|DIR...\n"
		"  (the key defaults to record_key_file of the config)\n");
	return 2;
}

/* --------------------------------------------------------- listing */

/* What a recording says about its session. */
struct rec_sum {
	json_t *start, *user, *login, *end; /* references, or NULL */
	uint64_t requests;
	uint64_t decisions[6]; /* allow, deny, review, shadow_*, other */
	json_t *decided; /* decision name → count */
	int64_t started_ms;
};

static void sum_cb(json_t *rec, void *arg)
{
	struct rec_sum *s = arg;
	const char *kind = jstr(rec, "kind");

	if (!kind)
		return;
	if (!strcmp(kind, "start") && !s->start) {
		s->start = json_incref(rec);
		s->started_ms = jint(rec, "wall_ms");
	} else if (!strcmp(kind, "user")) {
		json_decref(s->user);
		s->user = json_incref(json_object_get(rec, "user"));
	} else if (!strcmp(kind, "login") && !s->login) {
		s->login = json_incref(rec);
	} else if (!strcmp(kind, "end")) {
		json_decref(s->end);
		s->end = json_incref(rec);
	} else if (!strcmp(kind, "request")) {
		s->requests++;
	} else if (!strcmp(kind, "decision") && jstr(rec, "decision")) {
		const char *d = jstr(rec, "decision");

		json_object_set_new(s->decided, d,
				    json_integer(jint(s->decided, d) + 1));
	}
}

static void sum_free(struct rec_sum *s)
{
	json_decref(s->start);
	json_decref(s->user);
	json_decref(s->login);
	json_decref(s->end);
	json_decref(s->decided);
}

struct filters {
	const char *workload, *target, *user, *decision;
	int64_t since, until;
};

static bool wanted(const struct rec_sum *s, const struct filters *f)
{
	json_t *wl = json_object_get(s->start, "workload");
	json_t *tg = json_object_get(s->start, "target");

	if (f->workload &&
	    (!jstr(wl, "name") || strcmp(jstr(wl, "name"), f->workload)))
		return false;
	if (f->target &&
	    (!jstr(tg, "name") || strcmp(jstr(tg, "name"), f->target)))
		return false;
	if (f->user && !((jstr(s->user, "sub") &&
			  !strcmp(jstr(s->user, "sub"), f->user)) ||
			 (jstr(s->user, "email") &&
			  !strcasecmp(jstr(s->user, "email"), f->user))))
		return false;
	if (f->since >= 0 && s->started_ms < f->since)
		return false;
	if (f->until >= 0 && s->started_ms > f->until)
		return false;
	if (f->decision && jint(s->decided, f->decision) <= 0)
		return false;
	return true;
}

static const char *state_of(int ret, const struct record_report *r)
{
	return ret ? "FAILED" : r->ended ? "ended" : r->torn ? "torn" : "open";
}

static json_t *sum_json(const char *id, const char *path,
			const struct rec_sum *s, int ret,
			const struct record_report *r)
{
	json_t *wl = json_object_get(s->start, "workload");
	json_t *tg = json_object_get(s->start, "target");
	char t[40];
	json_t *j;

	fmt_time(s->started_ms, t, sizeof(t));
	j = json_pack("{s:s,s:s,s:I,s:s,s:O,s:O,s:O,s:O,s:I,s:O,s:s,s:b,s:I}",
		      "id", id, "file", path, "session",
		      (json_int_t)jint(s->start, "session"), "started", t,
		      "workload", wl ? wl : json_null(), "target",
		      tg ? tg : json_null(), "process",
		      json_object_get(s->start, "process") ?: json_null(),
		      "user", s->user ? s->user : json_null(), "requests",
		      (json_int_t)s->requests, "decisions", s->decided, "state",
		      state_of(ret, r), "verified", ret == 0, "records",
		      (json_int_t)r->records);
	if (s->login)
		json_object_set_new(j, "database",
				    json_string(jstr(s->login, "database") ?:
									     ""));
	if (s->end)
		json_object_set_new(
			j, "end",
			json_pack("{s:s?,s:I}", "reason",
				  jstr(s->end, "reason"), "duration_ms",
				  (json_int_t)jint(s->end, "duration_ms")));
	if (ret)
		json_object_set_new(j, "error", json_string(r->error));
	return j;
}

static const char sessions_usage[] =
	"usage: bridle sessions --recorded [options] [--json]\n"
	"  --dir DIR          recordings directory (default: record_dir of "
	"the config)\n"
	"  --key-file FILE    recording key (default: record_key_file)\n"
	"  --config FILE      the enforcer's config (default " CONFIG_DEFAULT_PATH
	")\n"
	"  --workload NAME    --target NAME    --user SUB|EMAIL\n"
	"  --since WHEN       --until WHEN     (2026-11-26T01:00:00Z, "
	"2026-11-26, or an age: 90s 15m 2h 7d)\n"
	"  --decision D       sessions with at least one decision D (allow, "
	"deny, review, shadow_deny, shadow_review)\n";

int cli_recorded_sessions(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "recorded", no_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "config", required_argument, NULL, 'c' },
		{ "workload", required_argument, NULL, 'w' },
		{ "target", required_argument, NULL, 't' },
		{ "user", required_argument, NULL, 'u' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'U' },
		{ "decision", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const decisions[] = { "allow",	  "deny",
						 "review",	  "shadow_deny",
						 "shadow_review", NULL };
	struct filters f = { .since = -1, .until = -1 };
	struct src_args a = {};
	struct rec_src src;
	struct dirent **v;
	bool json = false, bad = false;
	json_t *out;
	int c, n, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (src_arg(c, &a))
			continue;
		switch (c) {
		case 'r':
		case 'S':
			break;
		case 'w':
			f.workload = optarg;
			break;
		case 't':
			f.target = optarg;
			break;
		case 'u':
			f.user = optarg;
			break;
		case 's':
		case 'U':
			if (parse_when(optarg) < 0) {
				fprintf(stderr,
					"bridle: --%s %s: not a time (use "
					"2026-11-26T01:00:00Z, 2026-11-26, "
					"or an age such as 15m)\n",
					c == 's' ? "since" : "until", optarg);
				return 2;
			}
			*(c == 's' ? &f.since : &f.until) = parse_when(optarg);
			break;
		case 'D':
			f.decision = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			fputs(sessions_usage, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(sessions_usage, stderr);
		return 2;
	}
	if (f.decision) {
		bool ok = false;

		for (int i = 0; decisions[i]; i++)
			ok |= strcmp(decisions[i], f.decision) == 0;
		if (!ok) {
			fprintf(stderr,
				"bridle: --decision %s: one of allow, deny, "
				"review, shadow_deny, shadow_review\n",
				f.decision);
			return 2;
		}
	}
	if ((r = rec_source(a.config, a.dir, a.key_file, true, &src)))
		return r;
	n = list_dir(src.dir, &v);
	if (n < 0) {
		fprintf(stderr, "bridle: cannot read %s: %s\n", src.dir,
			strerror(errno));
		src_wipe(&src);
		return 1;
	}
	out = json_array();
	for (int i = n - 1; i >= 0; i--) { /* newest first */
		struct rec_sum s = { .decided = json_object() };
		struct record_report rep;
		char path[8192], id[256];
		int ret;

		snprintf(path, sizeof(path), "%s/%s", src.dir, v[i]->d_name);
		snprintf(id, sizeof(id), "%.*s",
			 (int)(strlen(v[i]->d_name) - strlen(RECORD_SUFFIX)),
			 v[i]->d_name);
		ret = rec_read(path, &src, sum_cb, &s, &rep);
		bad |= ret != 0;
		/* A file that does not verify is always shown. */
		if (ret || wanted(&s, &f))
			json_array_append_new(out, sum_json(id, path, &s, ret,
							    &rep));
		sum_free(&s);
	}
	free_names(v, n);
	src_wipe(&src);
	if (json) {
		cli_print_json(out);
	} else {
		size_t i;
		json_t *e;

		printf("%-28s %-24s %-14s %-12s %-16s %-20s %8s %6s %-7s %s\n",
		       "RECORDING", "STARTED", "WORKLOAD", "TARGET", "USER",
		       "PROCESS", "REQUESTS", "DENIED", "STATE", "END");
		json_array_foreach(out, i, e) {
			json_t *p = json_object_get(e, "process");
			const char *exe = jstr(p, "exe");
			const char *slash = exe ? strrchr(exe, '/') : NULL;

			printf("%-28s %-24s %-14s %-12s %-16s %-20s %8lld "
			       "%6lld %-7s %s\n",
			       jstr(e, "id"), jstr(e, "started"),
			       jstr(json_object_get(e, "workload"), "name") ?:
									      "?",
			       jstr(json_object_get(e, "target"), "name") ?:
									    "?",
			       jstr(json_object_get(e, "user"), "sub") ?: "-",
			       slash ? slash + 1 :
			       exe   ? exe :
				       "-",
			       jint(e, "requests"),
			       jint(json_object_get(e, "decisions"), "deny"),
			       jstr(e, "state"),
			       jstr(e, "error") ?:
				       jstr(json_object_get(e, "end"), "reason") ?:
				       "");
		}
	}
	json_decref(out);
	return bad ? 1 : 0;
}

/* ------------------------------------------------- replay and export */

/*
 * The file of recording @arg: a path, a recording id, or a session
 * number (which must name one recording). Returns 0, or prints why and
 * returns 2.
 */
static int find_recording(const struct rec_src *src, const char *arg,
			  char *path, size_t len)
{
	struct stat st;
	struct dirent **v;
	int n, found = 0;
	bool digits = *arg != '\0';

	if (strchr(arg, '/') && stat(arg, &st) == 0) {
		snprintf(path, len, "%s", arg);
		return 0;
	}
	snprintf(path, len, "%s/%s%s", src->dir, arg,
		 is_recording(arg) ? "" : RECORD_SUFFIX);
	if (stat(path, &st) == 0)
		return 0;
	for (const char *p = arg; *p; p++)
		digits &= isdigit((unsigned char)*p) != 0;
	n = digits ? list_dir(src->dir, &v) : -1;
	for (int i = n - 1; i >= 0; i--) {
		/* YYYYMMDD-HHMMSS-<session>[-k].brec */
		const char *name = v[i]->d_name, *s = name + 16;
		size_t l = strlen(arg);

		if (strlen(name) > 16 && !strncmp(s, arg, l) &&
		    (s[l] == '.' || s[l] == '-')) {
			if (!found)
				snprintf(path, len, "%s/%s", src->dir, name);
			else
				fprintf(stderr, "%s  %.*s\n",
					found == 1 ? "bridle: session number "
						     "matches several "
						     "recordings (give one "
						     "of these ids):\n" :
						     "",
					(int)(strlen(name) -
					      strlen(RECORD_SUFFIX)),
					name);
			found++;
		}
	}
	if (n >= 0)
		free_names(v, n);
	if (found == 1)
		return 0;
	if (!found)
		fprintf(stderr, "bridle: no recording \"%s\" in %s\n", arg,
			src->dir);
	return 2;
}

/* One request of a transcript, until its result is printed. */
struct req_line {
	uint64_t req;
	char *text; /* statement, or a description */
	char *decision; /* "allowed by \"r\"", "DENIED by \"r\": …" */
	bool denied, printed;
};

#define REPLAY_WINDOW 64

struct replay {
	uint64_t last_seq; /* printed up to */
	char prompt[200];
	struct req_line reqs[REPLAY_WINDOW];
	json_t *parsed; /* statement name → its decision text */
	enum { OUT_TEXT, OUT_JSON, OUT_JSONL, OUT_CSV } format;
	json_t *all; /* OUT_JSON: the records */
};

static struct req_line *req_slot(struct replay *rp, uint64_t req)
{
	struct req_line *l = &rp->reqs[req % REPLAY_WINDOW];

	return l->req == req ? l : NULL;
}

static void req_clear(struct req_line *l)
{
	free(l->text);
	free(l->decision);
	memset(l, 0, sizeof(*l));
}

/* One line of statement text: newlines and runs of spaces as one, and
 * other control characters shown as \xNN: the text is the agent's, and
 * must not drive the auditor's terminal. */
static void print_flat(const char *t)
{
	bool space = false;

	for (; t && *t; t++) {
		unsigned char c = (unsigned char)*t;

		if (isspace(c)) {
			space = true;
			continue;
		}
		if (space)
			putchar(' ');
		space = false;
		if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

/* A field of a record for the terminal: as print_flat, or "?". */
static const char *flat(char *buf, size_t len, const char *t)
{
	size_t o = 0;

	if (!t)
		return "?";
	for (; *t && o + 5 < len; t++) {
		unsigned char c = (unsigned char)*t;

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/* "SELECT … $1  -- params ('42', NULL)" */
static char *with_params(const char *text, json_t *params)
{
	char *buf = NULL;
	size_t bl = 0, i;
	json_t *p;
	FILE *m = open_memstream(&buf, &bl);

	if (!m)
		return NULL;
	fprintf(m, "%s  -- params (", text ? text : "");
	json_array_foreach(params, i, p) {
		fprintf(m, "%s", i ? ", " : "");
		if (json_is_string(p))
			fprintf(m, "'%s'", json_string_value(p));
		else
			fprintf(m, "NULL");
	}
	fprintf(m, ")");
	fclose(m);
	return buf;
}

/* "12 rows, 3 values masked", "UPDATE 3", "ERROR 42P01: …" */
static void print_result(json_t *rec)
{
	const char *st = jstr(rec, "status") ?: "?";
	long long rows = jint(rec, "rows"), masked = jint(rec, "masked");

	char b1[64], b2[1100];

	if (!strcmp(st, "error"))
		printf("ERROR %s%s%s",
		       flat(b1, sizeof(b1), jstr(rec, "sqlstate")),
		       jstr(rec, "message") ? ": " : "",
		       jstr(rec, "message") ?
			       flat(b2, sizeof(b2), jstr(rec, "message")) :
			       "");
	else if (!strncmp(st, "SELECT ", 7) || !strncmp(st, "FETCH ", 6) ||
		 !strcmp(st, "suspended"))
		printf("%lld row%s%s", rows, rows == 1 ? "" : "s",
		       strcmp(st, "suspended") ? "" : " (suspended)");
	else
		printf("%s", st);
	if (masked)
		printf(", %lld value%s masked", masked, masked == 1 ? "" : "s");
}

/* A request not shown yet: it got no answer in the recording. */
static void print_unanswered(struct replay *rp, struct req_line *l)
{
	if (!l->req || l->printed)
		return;
	printf("%s=> ", rp->prompt);
	print_flat(l->text);
	printf(";  -- %s%sno answer recorded\n",
	       l->decision ? l->decision : "not decided", ", ");
	l->printed = true;
}

/* Every request not shown yet, in order: at the end of the session or
 * of the file (a crash, an agent gone before its answer, a long query). */
static void unanswered(struct replay *rp)
{
	for (;;) {
		struct req_line *first = NULL;

		for (int i = 0; i < REPLAY_WINDOW; i++) {
			struct req_line *l = &rp->reqs[i];

			if (l->req && !l->printed &&
			    (!first || l->req < first->req))
				first = l;
		}
		if (!first)
			return;
		print_unanswered(rp, first);
	}
}

static void text_record(struct replay *rp, json_t *rec)
{
	const char *kind = jstr(rec, "kind") ?: "?";
	char t[40];
	struct req_line *l;

	fmt_time(jint(rec, "wall_ms"), t, sizeof(t));
	if (!strcmp(kind, "start")) {
		json_t *wl = json_object_get(rec, "workload"),
		       *p = json_object_get(rec, "process"),
		       *tg = json_object_get(rec, "target");

		snprintf(rp->prompt, sizeof(rp->prompt), "%s@%s",
			 jstr(wl, "name") ?: "?", jstr(tg, "name") ?: "?");
		printf("-- session %lld (%s), started %s\n"
		       "-- workload %s, process %s (pid %lld, uid %lld)\n"
		       "-- target %s (%s, %s), connection allowed by rule "
		       "\"%s\"\n",
		       jint(rec, "session"), jstr(rec, "recording") ?: "?", t,
		       jstr(wl, "name") ?: "?", jstr(p, "exe") ?: "?",
		       jint(p, "pid"), jint(p, "uid"), jstr(tg, "name") ?: "?",
		       jstr(tg, "protocol") ?: "?",
		       jstr(tg, "destination") ?: "?",
		       jstr(json_object_get(rec, "connection"), "rule") ?: "?");
	} else if (!strcmp(kind, "login")) {
		char b1[256], b2[256];

		printf("-- %s login: database \"%s\" as \"%s\"\n", t,
		       flat(b1, sizeof(b1), jstr(rec, "database")),
		       flat(b2, sizeof(b2), jstr(rec, "db_user")));
	} else if (!strcmp(kind, "user")) {
		json_t *u = json_object_get(rec, "user");

		printf("-- %s user: %s (%s)\n", t, jstr(u, "sub") ?: "?",
		       jstr(u, "issuer") ?: "?");
	} else if (!strcmp(kind, "request")) {
		uint64_t req = (uint64_t)jint(rec, "req");
		const char *type = jstr(rec, "type") ?: "?";
		const char *text = jstr(rec, "statement");
		char *line = NULL;

		l = &rp->reqs[req % REPLAY_WINDOW];
		print_unanswered(rp, l);
		req_clear(l);
		l->req = req;
		if (!strcmp(type, "function"))
			line = strdup("(FunctionCall message)");
		else if (!strcmp(type, "parse") && text &&
			 asprintf(&line, "PREPARE %s AS %s",
				  jstr(rec, "name") ?: "\"\"", text) < 0)
			line = NULL;
		else if (text && !line)
			line = strdup(text);
		l->text = line;
		if (!strcmp(type, "execute")) {
			json_t *d = json_object_get(rp->parsed,
						    jstr(rec, "name") ?: "");

			if (d)
				l->decision = strdup(json_string_value(d));
			/* The Execute shows its parameters. */
			if (json_array_size(json_object_get(rec, "params")) &&
			    (line = with_params(l->text,
						json_object_get(rec,
								"params")))) {
				free(l->text);
				l->text = line;
			}
		}
		if (!strcmp(type, "parse"))
			l->printed = true; /* shown only when refused */
	} else if (!strcmp(kind, "decision")) {
		uint64_t req = (uint64_t)jint(rec, "req");
		const char *d = jstr(rec, "decision") ?: "?";
		char *txt = NULL;
		bool allowed = !strcmp(d, "allow") || !strncmp(d, "shadow_", 7);

		if (!req) { /* the login */
			printf("-- %s %s: %s by rule \"%s\"\n", t,
			       jstr(rec, "request") ?: "?",
			       allowed ? "allowed" : "DENIED",
			       jstr(rec, "rule") ?: "?");
			return;
		}
		l = req_slot(rp, req);
		if (!l)
			return;
		if (allowed &&
		    asprintf(&txt, "%s by \"%s\"%s",
			     !strcmp(d, "allow") ?
				     "allowed" :
			     !strcmp(d, "shadow_deny") ?
				     "allowed (shadow: would be denied)" :
				     "allowed (shadow: would be held)",
			     jstr(rec, "rule") ?: "?", "") < 0)
			txt = NULL;
		if (!allowed &&
		    asprintf(&txt, "%s by \"%s\"%s%s",
			     !strcmp(d, "review") ? "HELD for review" :
						    "DENIED",
			     jstr(rec, "rule") ?: "?",
			     jstr(rec, "message") ? ": " : "",
			     jstr(rec, "message") ?: "") < 0)
			txt = NULL;
		free(l->decision);
		l->decision = txt;
		l->denied = !allowed;
		if (l->denied) {
			printf("%s=> ", rp->prompt);
			print_flat(l->text);
			printf(";  -- %s\n", l->decision ? l->decision : d);
			l->printed = true;
		} else if (l->text && !strncmp(l->text, "PREPARE ", 8)) {
			/* An Execute of it is allowed as the Parse was. */
			const char *name = l->text + 8, *sp = strchr(name, ' ');
			char key[256];

			if (sp && txt) {
				snprintf(key, sizeof(key), "%.*s",
					 (int)(sp - name), name);
				json_object_set_new(rp->parsed, key,
						    json_string(txt));
			}
		}
	} else if (!strcmp(kind, "response")) {
		l = req_slot(rp, (uint64_t)jint(rec, "req"));
		if (!l)
			return;
		if (l->printed && strcmp(jstr(rec, "status") ?: "", "error") &&
		    l->text && !strncmp(l->text, "PREPARE ", 8))
			return;
		printf("%s%s=> ", l->printed ? "   " : "", rp->prompt);
		if (!l->printed)
			print_flat(l->text);
		else
			printf("(then)");
		printf(";  -- %s%s", l->decision ? l->decision : "",
		       l->decision ? ", " : "");
		print_result(rec);
		printf("\n");
		l->printed = true;
	} else if (!strcmp(kind, "error")) {
		char b1[64], b2[1100];

		printf("-- %s error %s: %s\n", t,
		       flat(b1, sizeof(b1), jstr(rec, "sqlstate")),
		       flat(b2, sizeof(b2), jstr(rec, "message")));
	} else if (!strcmp(kind, "end")) {
		unanswered(rp);
		printf("-- %s session ended: %s; %lld requests, %lld denied, "
		       "%lld values masked, %lld ms\n",
		       t, jstr(rec, "reason") ?: "?", jint(rec, "requests"),
		       jint(rec, "denied"), jint(rec, "masked"),
		       jint(rec, "duration_ms"));
	} else {
		char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);

		printf("-- %s %s: %s\n", t, kind, s ? s : "?");
		free(s);
	}
}

/* A CSV field: quoted when it must be, quotes doubled. */
static void csv_field(const char *s, bool last)
{
	if (s && strpbrk(s, ",\"\r\n")) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else if (s) {
		fputs(s, stdout);
	}
	putchar(last ? '\n' : ',');
}

static const char *const csv_cols[] = {
	"seq",	     "time",   "kind",	   "req",     "type",
	"statement", "params", "decision", "rule",    "status",
	"rows",	     "bytes",  "masked",   "message", NULL,
};

static void csv_record(json_t *rec)
{
	for (int i = 0; csv_cols[i]; i++) {
		const char *k = csv_cols[i];
		json_t *v = json_object_get(rec,
					    !strcmp(k, "time") ? "wall_ms" : k);
		char buf[64], *dump = NULL;
		const char *s = NULL;

		if (!strcmp(k, "time") && v) {
			fmt_time(json_integer_value(v), buf, sizeof(buf));
			s = buf;
		} else if (json_is_string(v)) {
			s = json_string_value(v);
		} else if (json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%lld",
				 (long long)json_integer_value(v));
			s = buf;
		} else if (v && !json_is_null(v)) {
			s = dump = json_dumps(v, JSON_COMPACT);
		}
		csv_field(s, !csv_cols[i + 1]);
		free(dump);
	}
}

static void replay_cb(json_t *rec, void *arg)
{
	struct replay *rp = arg;
	uint64_t seq = (uint64_t)jint(rec, "seq");

	if (seq <= rp->last_seq)
		return;
	rp->last_seq = seq;
	switch (rp->format) {
	case OUT_TEXT:
		text_record(rp, rec);
		break;
	case OUT_JSON:
		json_array_append(rp->all, rec);
		break;
	case OUT_JSONL: {
		char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (s)
			puts(s);
		free(s);
		break;
	}
	case OUT_CSV:
		csv_record(rec);
		break;
	}
}

static volatile sig_atomic_t stop_follow;

static void on_sigint(int sig)
{
	(void)sig;
	stop_follow = 1;
}

static int replay_run(int argc, char **argv, bool export)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "config", required_argument, NULL, 'c' },
		{ "follow", no_argument, NULL, 'f' },
		{ "format", required_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct src_args a = {};
	const char *format = export ? NULL : "text";
	struct replay rp = {};
	struct rec_src src;
	struct record_report rep;
	bool follow = false;
	char path[8192];
	int c, r, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f", longopts, NULL)) != -1) {
		if (src_arg(c, &a))
			continue;
		switch (c) {
		case 'f':
			follow = !export;
			if (export)
				goto usage;
			break;
		case 'F':
			format = optarg;
			break;
		case 'j':
			format = "json";
			break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc || !format)
		goto usage;
	if (!strcmp(format, "text") && !export)
		rp.format = OUT_TEXT;
	else if (!strcmp(format, "json") && !export)
		rp.format = OUT_JSON;
	else if (!strcmp(format, "jsonl"))
		rp.format = OUT_JSONL;
	else if (!strcmp(format, "csv"))
		rp.format = OUT_CSV;
	else
		goto usage;
	if (follow && rp.format == OUT_JSON)
		rp.format = OUT_JSONL; /* one record per line as they come */
	if ((r = rec_source(a.config, a.dir, a.key_file,
			    !strchr(argv[optind], '/'), &src)))
		return r;
	if ((r = find_recording(&src, argv[optind], path, sizeof(path)))) {
		src_wipe(&src);
		return r;
	}
	rp.parsed = json_object();
	rp.all = json_array();
	if (rp.format == OUT_CSV)
		for (int i = 0; csv_cols[i]; i++)
			csv_field(csv_cols[i], !csv_cols[i + 1]);
	signal(SIGINT, on_sigint);
	for (;;) {
		ret = rec_read(path, &src, replay_cb, &rp, &rep);
		fflush(stdout);
		if (ret || !follow || rep.ended || stop_follow)
			break;
		usleep(200 * 1000);
	}
	if (rp.format == OUT_TEXT)
		unanswered(&rp);
	if (rp.format == OUT_JSON)
		cli_print_json(rp.all);
	for (int i = 0; i < REPLAY_WINDOW; i++)
		req_clear(&rp.reqs[i]);
	json_decref(rp.parsed);
	json_decref(rp.all);
	src_wipe(&src);
	if (ret) {
		fprintf(stderr,
			"bridle: %s does not verify after record %llu: %s\n",
			path, (unsigned long long)rep.records, rep.error);
		return 1;
	}
	if (rep.torn && !follow)
		fprintf(stderr,
			"bridle: %s ends inside a block (the writer "
			"stopped): every record before verified\n",
			path);
	return 0;
usage:
	fprintf(stderr,
		export ? "usage: bridle export RECORDING --format jsonl|csv "
			 "[--dir DIR] [--key-file FILE] [--config FILE]\n" :
			 "usage: bridle replay RECORDING [--follow] [--json] "
			 "[--dir DIR] [--key-file FILE] [--config FILE]\n");
	fprintf(stderr, "  RECORDING: a recording id, a session number, or "
			"a file\n");
	return 2;
}

int cli_replay(int argc, char **argv)
{
	return replay_run(argc, argv, false);
}

int cli_export(int argc, char **argv)
{
	return replay_run(argc, argv, true);
}
