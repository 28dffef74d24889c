/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The compiled policy, shared by the two halves of the policy module:
 * policy.c (loading, validating, compiling; reports) and policy_eval.c
 * (matching and deciding). Not for other modules: they see policy.h.
 */
#ifndef BRIDLE_POLICY_IMPL_H
#define BRIDLE_POLICY_IMPL_H

#include "bridle/policy.h"

/* The statement part of a rule: what it allows or denies. An empty list
 * means "any". */
struct policy_sql {
	uint32_t commands; /* bit set of enum sql_command; 0: any */
	char **tables; /* globs on schema.table */
	size_t ntables;
	char **functions; /* globs on function names */
	size_t nfunctions;
	uint32_t permit; /* SQL_F_* flags this allow rule accepts */
};

struct policy_mask {
	char **columns;
	size_t ncolumns;
	uint32_t detectors;
	enum mask_style style;
};

/* Globs, any of which matches; none: anything matches. */
struct globs {
	char **v;
	size_t n;
};

/* When a rule applies. Every condition given must hold. */
struct policy_when {
	struct globs workloads, namespaces, pods, service_accounts;
	json_t *labels; /* key → value or array of values; NULL: any */
	struct globs exes;
	uint32_t *uids;
	size_t nuids;
	bool user; /* a user token is needed */
	struct globs subs, emails, groups, issuers;
	size_t *targets; /* indexes into policy->targets; NULL: any target */
	size_t ntargets;
};

struct policy_rule {
	char *name;
	enum policy_action action;
	enum policy_mode mode;
	char *message;
	uint32_t timeout_s; /* review: how long a request is held */
	struct policy_approvers approvers; /* review: who decides */
	struct policy_when when;
	unsigned specificity; /* conditions it names: the most specific wins */
	struct policy_sql *sql; /* NULL: every statement */
	struct policy_mask *mask; /* NULL: nothing masked */
};

/* Decisions taken by a rule, for `bridle policy stats`. */
enum { CNT_ALLOW, CNT_DENY, CNT_REVIEW, CNT_SHADOW, CNT_N };

/* Pseudo-rules follow the file's rules in the counters. */
enum {
	PSEUDO_DEFAULT,
	PSEUDO_SESSION,
	PSEUDO_TOKEN,
	PSEUDO_OFF,
	PSEUDO_BRIDLE,
	PSEUDO_N
};

/* Their names, in that order. */
extern const char *const policy_pseudo_names[PSEUDO_N];

struct policy {
	int refs; /* atomic */
	enum policy_action def;
	enum policy_mode mode;
	bool has_shadow; /* some rule is in shadow mode */
	char version[32];
	struct policy_issuer *issuers;
	size_t nissuers;
	struct policy_target *targets;
	size_t ntargets;
	struct policy_rule *rules;
	size_t nrules;
	uint64_t (*counters)[CNT_N]; /* nrules + PSEUDO_N; atomic */
};

#endif
