// SPDX-License-Identifier: Apache-2.0
/*
 * The reviewers' HTTP API (include/bridle/reviewer_api.h), on
 * libmicrohttpd. Routes:
 *
 *   GET  /  and /app.js                the reviewers' page (no token)
 *   GET  /api/reviews[?all=1]          reviews (pending first)
 *   POST /api/reviews/ID/approve       {"for_s": N, "reason": "…"}
 *   POST /api/reviews/ID/reject        {"reason": "…"}
 *   GET  /api/grants
 *   POST /api/grants/ID/revoke
 *
 * Answers are JSON; an error is {"ok": false, "error": "…"} with 400,
 * 401 (no or unknown token), 404 or 413.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bridle/api.h"
#include "bridle/enforcer.h"
#include "bridle/log.h"
#include "bridle/reviewer_api.h"

#define BODY_MAX 8192

/* The reviewers' page and its script: no markup from a review ever
 * (textContent), nothing from elsewhere (the CSP below). */
static const char page_html[] =
	"<!doctype html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<title>bridle reviews</title>\n"
	"<style>\n"
	"body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }\n"
	"table { border-collapse: collapse; width: 100%; margin-top: 1em; }\n"
	"th, td { border-bottom: 1px solid #ddd; padding: .4em; text-align: left; vertical-align: top; }\n"
	"code { white-space: pre-wrap; word-break: break-all; }\n"
	"#status { margin-top: 1em; font-weight: bold; }\n"
	"</style>\n"
	"</head>\n"
	"<body>\n"
	"<h1>Requests held for review</h1>\n"
	"<p><label>Reviewer token <input id=\"token\" type=\"password\" size=\"40\" autocomplete=\"off\"></label>\n"
	"<button id=\"load\">Load</button></p>\n"
	"<table>\n"
	"<thead><tr><th>id</th><th>workload → target</th><th>user</th><th>rule</th><th>request</th><th>expires</th><th>decide</th></tr></thead>\n"
	"<tbody id=\"reviews\"></tbody>\n"
	"</table>\n"
	"<div id=\"status\"></div>\n"
	"<script src=\"/app.js\"></script>\n"
	"</body>\n"
	"</html>\n";

static const char page_js[] =
	"\"use strict\";\n"
	"// The reviewers' page: every text from a review (the agent's statement\n"
	"// above all) goes in with textContent, never as markup.\n"
	"const $ = (id) => document.getElementById(id);\n"
	"const token = () => $(\"token\").value || sessionStorage.getItem(\"bridle-token\") || \"\";\n"
	"\n"
	"function say(text) { $(\"status\").textContent = text; }\n"
	"\n"
	"async function call(method, path, body) {\n"
	"  const r = await fetch(path, {\n"
	"    method,\n"
	"    headers: { \"Authorization\": \"Bearer \" + token(), \"Content-Type\": \"application/json\" },\n"
	"    body: body ? JSON.stringify(body) : undefined,\n"
	"  });\n"
	"  const j = await r.json().catch(() => ({ ok: false, error: \"HTTP \" + r.status }));\n"
	"  if (!r.ok || !j.ok) throw new Error(j.error || (\"HTTP \" + r.status));\n"
	"  return j;\n"
	"}\n"
	"\n"
	"function cell(row, text) {\n"
	"  const td = document.createElement(\"td\");\n"
	"  td.textContent = text;\n"
	"  row.appendChild(td);\n"
	"  return td;\n"
	"}\n"
	"\n"
	"async function load() {\n"
	"  sessionStorage.setItem(\"bridle-token\", token());\n"
	"  try {\n"
	"    const j = await call(\"GET\", \"/api/reviews\");\n"
	"    const body = $(\"reviews\");\n"
	"    body.replaceChildren();\n"
	"    for (const r of j.reviews) {\n"
	"      const tr = document.createElement(\"tr\");\n"
	"      tr.id = \"review-\" + r.id;\n"
	"      cell(tr, String(r.id));\n"
	"      cell(tr, (r.workload || \"?\") + \" → \" + (r.target || \"?\"));\n"
	"      cell(tr, r.user || \"-\");\n"
	"      cell(tr, r.rule || \"\");\n"
	"      const req = cell(tr, (r.request || \"\") + \"\\n\");\n"
	"      const code = document.createElement(\"code\");\n"
	"      code.textContent = r.statement || \"\";\n"
	"      req.appendChild(code);\n"
	"      cell(tr, new Date(r.expires_ms).toISOString());\n"
	"      const td = cell(tr, \"\");\n"
	"      const reason = document.createElement(\"input\");\n"
	"      reason.placeholder = \"reason\";\n"
	"      reason.className = \"reason\";\n"
	"      const mins = document.createElement(\"input\");\n"
	"      mins.placeholder = \"grant minutes\";\n"
	"      mins.size = 6;\n"
	"      mins.className = \"minutes\";\n"
	"      const ok = document.createElement(\"button\");\n"
	"      ok.textContent = \"Approve\";\n"
	"      ok.className = \"approve\";\n"
	"      ok.onclick = () => decide(r.id, \"approve\", reason.value, mins.value);\n"
	"      const no = document.createElement(\"button\");\n"
	"      no.textContent = \"Reject\";\n"
	"      no.className = \"reject\";\n"
	"      no.onclick = () => decide(r.id, \"reject\", reason.value, \"\");\n"
	"      td.append(reason, mins, ok, no);\n"
	"      body.appendChild(tr);\n"
	"    }\n"
	"    say(j.reviews.length + \" pending\");\n"
	"  } catch (e) {\n"
	"    say(\"error: \" + e.message);\n"
	"  }\n"
	"}\n"
	"\n"
	"async function decide(id, action, reason, minutes) {\n"
	"  const body = { reason };\n"
	"  if (minutes) body.for_s = Math.round(Number(minutes) * 60);\n"
	"  try {\n"
	"    const j = await call(\"POST\", \"/api/reviews/\" + id + \"/\" + action, body);\n"
	"    say(\"review \" + id + \": \" + (j.pending ? j.message : action === \"approve\" ? \"approved\" : \"rejected\"));\n"
	"    const row = $(\"review-\" + id);\n"
	"    if (row && !j.pending) row.remove();\n"
	"  } catch (e) {\n"
	"    say(\"review \" + id + \": error: \" + e.message);\n"
	"  }\n"
	"}\n"
	"\n"
	"$(\"load\").onclick = load;\n"
	"if (sessionStorage.getItem(\"bridle-token\")) load();\n";

#define PAGE_CSP                                                             \
	"default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; " \
	"connect-src 'self'; img-src 'none'; form-action 'none'; "           \
	"frame-ancestors 'none'; base-uri 'none'"

struct reviewer {
	char *name;
	json_t *groups; /* array of strings */
	uint8_t sha256[32];
};

struct reviewer_api {
	struct MHD_Daemon *d;
	struct enforcer *e;
	struct reviewer *r;
	size_t n;
};

struct body {
	char buf[BODY_MAX];
	size_t len;
	bool too_big;
};

static int unhex32(const char *s, uint8_t out[32])
{
	if (!s || strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* {"reviewers": [{"name", "groups", "token_sha256"}]}, owner-only. */
static int load_tokens(struct reviewer_api *a, const char *path, char *err,
		       size_t errlen)
{
	struct stat st;
	json_error_t je;
	json_t *root, *list, *r;
	size_t i;

	if (stat(path, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "reviewer_api.tokens_file %s: %s", path,
			 strerror(errno ? errno : EINVAL));
		return -1;
	}
	if ((st.st_mode & 077) || st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "reviewer_api.tokens_file %s must be readable by its "
			 "owner only (chmod 600)",
			 path);
		return -1;
	}
	root = json_load_file(path, 0, &je);
	list = json_object_get(root, "reviewers");
	if (!json_is_array(list) || !json_array_size(list)) {
		snprintf(err, errlen, "reviewer_api.tokens_file %s: %s", path,
			 root ? "expected {\"reviewers\": [{\"name\", "
				"\"groups\", \"token_sha256\"}, …]}" :
				je.text);
		json_decref(root);
		return -1;
	}
	a->r = calloc(json_array_size(list), sizeof(*a->r));
	if (!a->r) {
		json_decref(root);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(list, i, r) {
		const char *name =
			json_string_value(json_object_get(r, "name"));
		json_t *g = json_object_get(r, "groups");

		if (!name || !*name ||
		    unhex32(json_string_value(
				    json_object_get(r, "token_sha256")),
			    a->r[i].sha256) ||
		    (g && !json_is_array(g))) {
			snprintf(err, errlen,
				 "reviewer_api.tokens_file %s: reviewers[%zu]: "
				 "needs \"name\", \"token_sha256\" (64 hex "
				 "digits) and optional \"groups\" (array)",
				 path, i);
			json_decref(root);
			return -1;
		}
		a->r[i].name = strdup(name);
		a->r[i].groups = g ? json_incref(g) : json_array();
		a->n = i + 1;
	}
	json_decref(root);
	return 0;
}

/* The reviewer whose token the request carries, or NULL. */
static const struct reviewer *authenticate(struct reviewer_api *a,
					   struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    "Authorization");
	uint8_t sum[32];
	unsigned int n = 0;
	const struct reviewer *found = NULL;

	if (!h || strncmp(h, "Bearer ", 7) || !h[7])
		return NULL;
	if (!EVP_Digest(h + 7, strlen(h + 7), sum, &n, EVP_sha256(), NULL))
		return NULL;
	/* Every entry compared, in constant time. */
	for (size_t i = 0; i < a->n; i++)
		if (CRYPTO_memcmp(sum, a->r[i].sha256, 32) == 0)
			found = &a->r[i];
	return found;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     json_t *j, bool challenge)
{
	char *text = json_dumps(j, JSON_COMPACT);
	struct MHD_Response *r;
	enum MHD_Result ret;

	json_decref(j);
	if (!text)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text,
					    MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (challenge)
		MHD_add_response_header(r, "WWW-Authenticate",
					"Bearer realm=\"bridle reviewers\"");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result static_file(struct MHD_Connection *c, const char *text,
				   const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy", PAGE_CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result fail(struct MHD_Connection *c, unsigned status,
			    const char *msg)
{
	return reply(c, status, json_pack("{s:b,s:s}", "ok", 0, "error", msg),
		     status == MHD_HTTP_UNAUTHORIZED);
}

/* "/api/KIND/ID/ACTION": the id and action, or false. */
static bool route(const char *url, const char *kind, long long *id,
		  char *action, size_t alen)
{
	size_t kl = strlen(kind);
	char *end;

	if (strncmp(url, kind, kl) || url[kl] != '/')
		return false;
	*id = strtoll(url + kl + 1, &end, 10);
	if (end == url + kl + 1 || *id <= 0 || *end != '/' || !end[1] ||
	    strchr(end + 1, '/') || strlen(end + 1) >= alen)
		return false;
	snprintf(action, alen, "%s", end + 1);
	return true;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct reviewer_api *a = cls;
	struct body *b = *con_cls;
	const struct reviewer *rv;
	json_t *req, *res;
	long long id;
	char action[16];
	const char *cmd = NULL;

	(void)version;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;
		*con_cls = b;
		return MHD_YES;
	}
	if (*upload_size) {
		if (b->len + *upload_size >= BODY_MAX)
			b->too_big = true;
		else {
			memcpy(b->buf + b->len, upload, *upload_size);
			b->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (b->too_big)
		return fail(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large");
	/* The page itself needs no token: what it shows does. */
	if (!strcmp(method, "GET") &&
	    (!strcmp(url, "/") || !strcmp(url, "/app.js")))
		return static_file(c, !strcmp(url, "/") ? page_html : page_js,
				   !strcmp(url, "/") ?
					   "text/html; charset=utf-8" :
					   "text/javascript; charset=utf-8");
	rv = authenticate(a, c);
	if (!rv)
		return fail(c, MHD_HTTP_UNAUTHORIZED,
			    "a reviewer's bearer token is required");
	req = b->len ? json_loadb(b->buf, b->len, 0, NULL) : json_object();
	if (!json_is_object(req)) {
		json_decref(req);
		return fail(c, MHD_HTTP_BAD_REQUEST,
			    "the body must be a JSON object");
	}
	if (!strcmp(method, "GET") && !strcmp(url, "/api/reviews")) {
		const char *all = MHD_lookup_connection_value(
			c, MHD_GET_ARGUMENT_KIND, "all");

		cmd = "reviews";
		json_object_set_new(req, "all",
				    json_boolean(all && strcmp(all, "0")));
	} else if (!strcmp(method, "GET") && !strcmp(url, "/api/grants")) {
		cmd = "grants";
	} else if (!strcmp(method, "POST") &&
		   route(url, "/api/reviews", &id, action, sizeof(action)) &&
		   (!strcmp(action, "approve") || !strcmp(action, "reject"))) {
		cmd = !strcmp(action, "approve") ? "approve" : "reject";
		json_object_set_new(req, "id", json_integer(id));
	} else if (!strcmp(method, "POST") &&
		   route(url, "/api/grants", &id, action, sizeof(action)) &&
		   !strcmp(action, "revoke")) {
		cmd = "revoke";
		json_object_set_new(req, "id", json_integer(id));
	} else {
		json_decref(req);
		return fail(c, MHD_HTTP_NOT_FOUND, "no such resource");
	}
	/* Who decides is the token's reviewer, whatever the body says. */
	json_object_set_new(req, "by", json_string(rv->name));
	json_object_set(req, "groups", rv->groups);
	res = api_review_command(a->e, cmd, req, "api");
	json_decref(req);
	return reply(c,
		     json_is_true(json_object_get(res, "ok")) ?
			     MHD_HTTP_OK :
			     MHD_HTTP_BAD_REQUEST,
		     res, false);
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
		 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static void api_free(struct reviewer_api *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->r[i].name);
		json_decref(a->r[i].groups);
	}
	free(a->r);
	free(a);
}

int reviewer_api_start(struct enforcer *e, char *err, size_t errlen)
{
	const struct config *c = e->cfg;
	struct sockaddr_storage ss = {};
	struct reviewer_api *a;

	if (!c->reviewer_listen)
		return 0;
	if (c->reviewer_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(c->reviewer_port);
		memcpy(&s4->sin_addr, c->reviewer_addr, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(c->reviewer_port);
		memcpy(&s6->sin6_addr, c->reviewer_addr, 16);
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->e = e;
	if (load_tokens(a, c->reviewer_tokens_file, err, errlen)) {
		api_free(a);
		return -1;
	}
	a->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
			(c->reviewer_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		c->reviewer_port, NULL, NULL, handle, a, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)64, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)10, MHD_OPTION_NOTIFY_COMPLETED, done, NULL,
		MHD_OPTION_END);
	if (!a->d) {
		snprintf(err, errlen, "reviewer_api: cannot listen on %s",
			 c->reviewer_listen);
		api_free(a);
		return -1;
	}
	e->reviewer_api = a;
	log_msg(LOG_INFO, "reviewer_api", "listening on %s, %zu reviewers",
		c->reviewer_listen, a->n);
	return 0;
}

void reviewer_api_stop(struct enforcer *e)
{
	struct reviewer_api *a = e->reviewer_api;

	if (!a)
		return;
	MHD_stop_daemon(a->d);
	api_free(a);
	e->reviewer_api = NULL;
}
