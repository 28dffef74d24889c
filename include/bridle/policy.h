/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy: named targets (address or CIDR, port, protocol) and rules that
 * allow or deny a workload's connection to a target. Loaded from JSON with
 * strict validation, compiled into an immutable struct, evaluated per
 * connection. A reload builds a new policy and swaps the pointer; sessions
 * keep the one they started with until their next decision.
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

enum policy_action { POLICY_DENY = 0, POLICY_ALLOW = 1 };

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
};

struct policy;

/* What the enforcer knows about a connection when it asks the policy. */
struct policy_input {
	const char *workload; /* enrolled workload name */
	json_t *labels; /* its labels: object of string → string */
	const char *exe; /* executable path, NULL when unknown */
	uint32_t uid;
	int family; /* AF_INET or AF_INET6 */
	const uint8_t *addr; /* 4 or 16 bytes, network order */
	uint16_t port;
};

struct policy_decision {
	enum policy_action action;
	const char *rule; /* rule name, or "default"; owned by policy */
	const char *target; /* target name, NULL if none matched */
	size_t target_idx; /* valid when target is set */
	enum policy_proto proto;
	const char *message; /* deny message, may be NULL */
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

/* Evaluate @in; always fills @out (default action when nothing matches). */
void policy_decide(const struct policy *p, const struct policy_input *in,
		   struct policy_decision *out);

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
const char *policy_proto_name(enum policy_proto p);

/* Parse "10.0.0.0/8", "::1" or "10.1.2.3" into family/bytes/prefix. */
int policy_parse_cidr(const char *s, int *family, uint8_t addr[16],
		      unsigned *prefix);

#endif
