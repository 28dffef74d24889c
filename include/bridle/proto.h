/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Protocol modules. Each protocol is one const struct proto_ops in
 * user/proto/; the session core calls it and never names a protocol.
 *
 * An opaque module judges the bytes that arrived in one direction and
 * marks in the buffer what may go on (iobuf_mark_parsed). Any other module
 * rewrites: it takes whole messages from the input buffer (iobuf_consume)
 * and writes what goes on, changed or not, into the output buffers of
 * either direction (session_out), which lets it answer the agent itself,
 * hold a message back, or speak to the destination on its own (logging
 * in with credentials the agent never sees). It is called again whenever
 * output drained, so it may stop when an output buffer is full.
 *
 * Either way a module keeps the rest until more arrives and must not keep
 * the buffer full of unparsed bytes: a message larger than the buffer is
 * its to grow (iobuf_reserve) or to refuse, or the session would wait
 * forever.
 */
#ifndef BRIDLE_PROTO_H
#define BRIDLE_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "bridle/iobuf.h"
#include "bridle/policy.h"

struct session;

enum proto_dir {
	PROTO_TO_UPSTREAM, /* bytes from the agent */
	PROTO_TO_AGENT, /* bytes from the destination */
};

struct proto_ops {
	const char *name;
	/* No byte needs looking at: the relay may move them with splice. */
	bool opaque;
	/* Set up per-session state (session_set_state) once the session is
	 * allowed. NULL: none. Returns 0, or -errno to refuse the session. */
	int (*init)(struct session *s);
	/* Judge the unparsed bytes of @b. Returns 0, or -errno to end the
	 * session (with a reset). */
	int (*on_data)(struct session *s, enum proto_dir dir, struct iobuf *b);
	/* Free the per-session state. NULL: none. */
	void (*release)(struct session *s);
	/* The destination side failed (TLS): tell the agent in the
	 * protocol's words and session_finish(). NULL: the session is
	 * reset. */
	void (*upstream_failed)(struct session *s, const char *reason);
	/* Every worker tick (held requests, timers). Returns 1 when it
	 * queued output (the session is then pumped). NULL: none. */
	int (*tick)(struct session *s, uint64_t now_ms);
};

extern const struct proto_ops proto_tcp_ops;
extern const struct proto_ops proto_pg_ops;

/* What modules may ask of their session (user/session.c). */
void *session_state(struct session *s);
/* A session the policy refused (no destination): what the module is to
 * tell the agent before closing. NULL for an allowed session. */
const char *session_refusal(const struct session *s);
void session_set_state(struct session *s, void *state);
/* The output buffer of direction @dir (rewriting modules only). */
struct iobuf *session_out(struct session *s, enum proto_dir dir);
/*
 * Speak TLS on one side from now on: toward the agent (@toward
 * PROTO_TO_AGENT, as the server) or the destination (as the client,
 * checking @verify_name when the context verifies). What the module
 * queued for that side before this call still goes out in the clear; what
 * it queues after goes through TLS once the handshake is done, and
 * nothing is read from that side until then. Returns 0 or -errno.
 */
int session_start_tls(struct session *s, enum proto_dir toward, SSL_CTX *ctx,
		      const char *verify_name);
/* Stop reading both sides, send what is queued to the agent, then close. */
void session_finish(struct session *s, const char *reason);
/* The policy for the session's next decision: the current one, with the
 * session's target index in it (SIZE_MAX when the target is gone). The
 * session holds a reference until the next call or its end. */
struct policy *session_policy(struct session *s, size_t *target,
			      uint64_t *generation);
/* The identity the policy matches. Valid while the session lives. */
void session_policy_input(struct session *s, struct policy_input *in);
uint64_t session_id(const struct session *s);
/* The session is busy though no byte moves (a request held for a
 * person): no idle timeout for now. */
void session_keepalive(struct session *s);
/* A line in the session log (and stderr when @warn): the session's id,
 * workload and target, then @fields, whose reference it takes. */
void session_log_event(struct session *s, const char *event, json_t *fields,
		       bool warn);
/* A line in the decision log for decision @d of @p about @request (a
 * summary, "SELECT on public.orders") and @statement (its text with
 * literals replaced, or NULL), and the rule's counter. */
void session_decision(struct session *s, const struct policy *p,
		      const struct policy_decision *d, const char *request,
		      const char *statement);
/* A line in the decision log about review @review of rule @rule: its
 * @outcome ("approved", "rejected", "expired", "cancelled",
 * "grant_used"), who decided and why, the grant it left or used. */
void session_review_line(struct session *s, const char *outcome,
			 uint64_t review, const char *rule, const char *by,
			 const char *reason, uint64_t grant);
/* The user a verified token named: the session owns @u from now on. */
struct identity_user;
void session_set_user(struct session *s, struct identity_user *u);
const struct identity_user *session_user(const struct session *s);
/* Count requests the module decided, those denied, and values masked. */
void session_count(struct session *s, unsigned requests, unsigned denied,
		   uint64_t masked);
const char *session_workload_name(const struct session *s);
/* The enrolled workload the session belongs to. */
const struct workload *session_workload(const struct session *s);
const char *session_target_name(const struct session *s);
/* The configured per-direction buffer size and message limit. */
size_t session_buffer_size(const struct session *s);
struct enforcer *session_enforcer(struct session *s);
/* The original destination, as the upstream socket reaches it. */
void session_orig(const struct session *s, int *family, uint8_t addr[16],
		  uint16_t *port);

/*
 * Recording (when the enforcer records sessions; each call is a no-op
 * otherwise). A module stages a request's record, and the decisions made
 * next (session_decision) refer to it; before the request goes upstream
 * it calls session_record_commit. Other records (responses, errors) are
 * staged, and written with the next request's or within 100 ms.
 */
/* True while the session is recorded (a module builds records only
 * then). */
bool session_recorded(const struct session *s);
/* Stage a "request" record with @fields (NULL: none) and the next
 * request number ("req"), which it returns. */
struct record_buf;
uint64_t session_record_request(struct session *s, struct record_buf *fields);
/* Stage a record of @kind with @fields (reference taken). */
void session_record(struct session *s, const char *kind, json_t *fields);
/* The same, with fields formatted by hand (record.h). */
void session_record_buf(struct session *s, const char *kind,
			const struct record_buf *fields);
/* Write what is staged. NULL: the request may go on (recorded, or the
 * config says to go on unrecorded); else the refusal the agent is to get
 * in its place. */
const char *session_record_commit(struct session *s);
/* True when the session's recording failed and its requests are refused
 * (session_record_commit then says how). */
bool session_record_refusing(const struct session *s);

/* The module for a target's protocol. Never NULL. */
const struct proto_ops *proto_for(enum policy_proto p);

#endif
