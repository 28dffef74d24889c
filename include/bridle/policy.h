/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy: OIDC issuers, named targets (address or CIDR, port,
 * protocol) and rules. A rule says when it applies (workload, process,
 * user, target), what it does (allow, deny, review) and how (mask), in a
 * mode (enforce, shadow, off). Loaded from JSON with strict validation,
 * compiled into an immutable struct, evaluated per connection and per
 * request. A reload builds a new policy and swaps the pointer; sessions
 * keep the one they started with until their next decision.
 *
 * Precedence: deny beats review beats allow; among rules of the winning
 * action the most specific one (most conditions) decides and gives the
 * message, the first in the file on a tie; nothing matching: the default.
 * docs/policy.md is the reference.
 */
#ifndef BRIDLE_POLICY_H
#define BRIDLE_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridle/jsonv.h"
#include "bridle/mask.h"
#include "bridle/sql.h"

enum policy_action { POLICY_DENY = 0, POLICY_ALLOW = 1, POLICY_REVIEW = 2 };

/* enforce: as written; shadow: a would-deny (or would-review) is logged and
 * the request allowed; off: the rule is not evaluated (for the policy:
 * nothing is, every request is allowed). */
enum policy_mode { POLICY_ENFORCE = 0, POLICY_SHADOW = 1, POLICY_OFF = 2 };

enum policy_proto { PROTO_TCP = 0, PROTO_POSTGRES = 1 };

enum policy_tls { POLICY_TLS_DISABLE, POLICY_TLS_REQUIRE, POLICY_TLS_VERIFY };

/* The credentials bridle logs in with: the secret itself is read from the
 * file or environment variable when a session needs it, never kept here. */
struct policy_credentials {
	char *user;
	char *password_file; /* absolute path, or NULL */
	char *password_env; /* variable name, or NULL */
	char *database; /* NULL: the database the agent asks for */
};

struct policy_target {
	char *name;
	int family;
	uint8_t addr[16];
	unsigned prefix;
	uint16_t port; /* 0: any */
	enum policy_proto proto;
	enum policy_tls tls; /* upstream side */
	char *ca_file; /* verify: the CA bundle */
	char *server_name; /* verify: the name to check; default the address */
	struct policy_credentials creds; /* postgres: user set */
	bool require_user; /* the agent must present a user token */
};

struct jwt_keyset;
struct jwks_source;

/* An OIDC issuer whose tokens name users. */
struct policy_issuer {
	char *name; /* how rules and logs call it */
	char *issuer; /* the "iss" its tokens carry */
	char **audiences; /* "aud" must hold one */
	size_t naudiences;
	struct jwt_keyset *keys; /* from jwks_file, or NULL */
	struct jwks_source *source; /* from jwks_url, or NULL */
	char *jwks_file, *jwks_url, *ca_file;
	uint32_t refresh_s, skew_s;
	char *groups_claim; /* default "groups" */
	char *scopes_claim; /* NULL: tokens do not narrow */
};

/* A user a verified token names. Strings are the caller's. */
struct policy_user {
	const char *issuer; /* the issuer's name in the policy */
	const char *sub, *email;
	const char *const *groups;
	size_t ngroups;
	/* With an issuer that narrows: only these scopes are granted. */
	bool scoped;
	const char *const *scopes;
	size_t nscopes;
	int64_t expires; /* exp plus the skew: valid up to that second;
			  * 0: never */
};

struct policy;

/* What the enforcer knows about a connection when it asks the policy. */
struct policy_input {
	const char *workload; /* enrolled workload name */
	json_t *labels; /* its labels: object of string → string */
	/* Kubernetes: namespace, pod and service account; NULL: none */
	const char *k8s_namespace, *pod, *service_account;
	const char *exe; /* executable path, NULL when unknown */
	uint32_t uid, pid;
	const struct policy_user *user; /* NULL: no user token */
	/* At accept, a target that takes a user token has not seen it yet:
	 * rules about users allow for now and deny at login. */
	bool user_pending;
	int64_t now; /* seconds since the epoch, for token expiry */
	int family; /* AF_INET or AF_INET6 */
	const uint8_t *addr; /* 4 or 16 bytes, network order */
	uint16_t port;
};

/* Who may decide a review rule's requests (empty lists: anyone who may
 * reach the reviewers' interfaces), and how many approvals it needs. */
struct policy_approvers {
	char **users; /* names (the CLI: login names; tokens: sub or email) */
	size_t nusers;
	char **groups;
	size_t ngroups;
	uint32_t min; /* distinct approvers needed, at least 1 */
};

struct policy_decision {
	enum policy_action action; /* what happens */
	const char *rule; /* rule name, or a pseudo-rule ("default"...) */
	size_t rule_idx; /* for policy_note */
	const char *target; /* target name, NULL if none matched */
	size_t target_idx; /* valid when target is set */
	enum policy_proto proto;
	const char *message; /* deny or review message, may be NULL */
	uint32_t timeout_s; /* review: how long the request is held */
	/* review: who decides (the policy's; valid while it lives) */
	const struct policy_approvers *approvers;
	/* Set when shadow mode let through what enforce would not: the
	 * action and rule it would have taken. */
	const char *would_rule;
	size_t would_idx;
	enum policy_action would_action;
};

/* A review rule holds a request this long unless it says otherwise. */
#define POLICY_REVIEW_TIMEOUT_S 300

/* Pseudo-rules: decisions no rule of the file made. */
#define POLICY_RULE_DEFAULT "default"
#define POLICY_RULE_TOKEN "token" /* missing, expired or narrowing token */
#define POLICY_RULE_OFF "off" /* the policy's mode is off */
#define POLICY_RULE_BRIDLE "bridle" /* refused before any rule: unparsable… */

/* A rule that matched a request, for `bridle policy explain`. */
struct policy_match {
	const char *rule;
	enum policy_action action;
	enum policy_mode mode;
};

struct policy_trace {
	struct policy_match m[64];
	size_t n; /* may exceed 64: the rest were not kept */
};

/* A statement, as the policy sees it: its classification, and the schemas
 * an unqualified table name may resolve to (every one must be allowed). */
struct policy_stmt {
	const struct sql_stmt *st;
	const char *const *schemas;
	size_t nschemas;
};

/* Rule name of statements every allowed session may run (BEGIN, SHOW…). */
#define POLICY_RULE_SESSION "session"

/* One column rule of a mask plan: "email" (any column of that name, glob),
 * "customers.email" (table.column) or "public.customers.email". */
struct policy_mask_column {
	const char *pattern; /* owned by the policy */
	int dots; /* 0, 1 or 2: which form */
	enum mask_style style;
};

/* What a session masks: the union of the masks of every allow rule that
 * matches its workload and target, so one rule cannot un-mask another's. */
struct policy_mask_plan {
	struct policy_mask_column *columns; /* owned by the plan */
	size_t ncolumns;
	uint32_t detectors; /* bit set of enum mask_detector */
	enum mask_style detector_style[MASK_NDETECTORS];
};

/*
 * Compile @root (the policy object) into a policy. @v carries the file name
 * and JSON path for errors. Returns NULL with the error in @v on failure.
 */
struct policy *policy_compile(struct jv *v, json_t *root);

/* Load a policy from a JSON file. Returns NULL with @err filled. */
struct policy *policy_load_file(const char *path, char *err, size_t errlen);

/* Policies are shared by reference: a session keeps the one it decides
 * with while a reload installs the next. policy_free drops a reference. */
struct policy *policy_ref(struct policy *p);
void policy_free(struct policy *p);

/* Evaluate @in; always fills @out (default action when nothing matches).
 * With @trace, every rule that matched is listed there. */
void policy_decide(const struct policy *p, const struct policy_input *in,
		   struct policy_decision *out);
void policy_decide_trace(const struct policy *p, const struct policy_input *in,
			 struct policy_decision *out,
			 struct policy_trace *trace);

/*
 * Decide one SQL statement of a session allowed to reach target @target
 * (an index from policy_decide). A deny rule whose sql part matches wins;
 * then an allow rule must cover the command, every table and function,
 * and every risky flag; session housekeeping (BEGIN, SHOW, plain SET…) is
 * allowed unless denied; else the default.
 */
void policy_decide_stmt(const struct policy *p, const struct policy_input *in,
			size_t target, const struct policy_stmt *ps,
			struct policy_decision *out);
void policy_decide_stmt_trace(const struct policy *p,
			      const struct policy_input *in, size_t target,
			      const struct policy_stmt *ps,
			      struct policy_decision *out,
			      struct policy_trace *trace);

/* A refusal no rule made (a statement that does not parse, a reserved
 * name, a FunctionCall): rule "bridle" with @message (kept, not copied),
 * for the decision log and the counters. */
void policy_refused(const struct policy *p, const char *message,
		    struct policy_decision *out);

/* Count decision @d in the per-rule counters of @p (thread-safe). */
void policy_note(const struct policy *p, const struct policy_decision *d);
/* {"version", "mode", "rules": [{name, action, mode, allow, deny, review,
 * shadow}...]} with the pseudo-rules last; a new reference. */
json_t *policy_stats_json(const struct policy *p);
/* "sha256:" and 16 hex digits of the policy's canonical JSON. */
const char *policy_version(const struct policy *p);
enum policy_mode policy_mode_of(const struct policy *p);
/* The log's word for a decision: allow, deny, review, shadow_deny... */
const char *policy_decision_name(const struct policy_decision *d);

/* Things that are valid but likely not what was meant, each a string
 * with its JSON path ($.rules[2]: ...); a new array. */
json_t *policy_warnings(const struct policy *p);

size_t policy_issuer_count(const struct policy *p);
const struct policy_issuer *policy_issuer_at(const struct policy *p,
					     size_t idx);

/* Build @out for a session. Returns 0 or -ENOMEM. */
int policy_mask_plan(const struct policy *p, const struct policy_input *in,
		     size_t target, struct policy_mask_plan *out);
void policy_mask_plan_release(struct policy_mask_plan *m);

/* The target named @name, or NULL; its index in *idx. */
const struct policy_target *policy_target_find(const struct policy *p,
					       const char *name, size_t *idx);
const struct policy_target *policy_target_at(const struct policy *p,
					     size_t idx);

size_t policy_target_count(const struct policy *p);
size_t policy_rule_count(const struct policy *p);
const char *policy_action_name(enum policy_action a);
const char *policy_mode_name(enum policy_mode m);
const char *policy_proto_name(enum policy_proto p);

/* Parse "10.0.0.0/8", "::1" or "10.1.2.3" into family/bytes/prefix. */
int policy_parse_cidr(const char *s, int *family, uint8_t addr[16],
		      unsigned *prefix);

#endif
