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

enum policy_action { POLICY_DENY = 0, POLICY_ALLOW = 1 };

enum policy_proto { PROTO_TCP = 0 };

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
	enum policy_proto proto;
	const char *message; /* deny message, may be NULL */
};

/*
 * Compile @root (the policy object) into a policy. @v carries the file name
 * and JSON path for errors. Returns NULL with the error in @v on failure.
 */
struct policy *policy_compile(struct jv *v, json_t *root);

/* Load a policy from a JSON file. Returns NULL with @err filled. */
struct policy *policy_load_file(const char *path, char *err, size_t errlen);

void policy_free(struct policy *p);

/* Evaluate @in; always fills @out (default action when nothing matches). */
void policy_decide(const struct policy *p, const struct policy_input *in,
		   struct policy_decision *out);

size_t policy_target_count(const struct policy *p);
size_t policy_rule_count(const struct policy *p);
const char *policy_action_name(enum policy_action a);
const char *policy_proto_name(enum policy_proto p);

/* Parse "10.0.0.0/8", "::1" or "10.1.2.3" into family/bytes/prefix. */
int policy_parse_cidr(const char *s, int *family, uint8_t addr[16],
		      unsigned *prefix);

#endif
