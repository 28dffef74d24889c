// SPDX-License-Identifier: Apache-2.0
/*
 * The PostgreSQL module (user/proto/pg.c) against arbitrary bytes from
 * both sides. The session core is replaced by a small stand-in here: two
 * input buffers the bytes are fed into, two output buffers that are
 * emptied after each call, and a fixed policy with SQL rules and masks.
 *
 * Input: chunks of [direction byte (even: from the agent, odd: from the
 * server)][length, 2 bytes big-endian][bytes]. The module must never
 * crash, read or write out of bounds, or leak, whatever arrives in
 * whatever order; tests/fuzz/gen_pgproto_seeds.py writes seeds that walk
 * a whole session (login, setup, queries, extended protocol, denials,
 * masking, COPY).
 */
#include <stdint.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/config.h"
#include "bridle/enforcer.h"
#include "bridle/identity.h"
#include "bridle/proto.h"
#include "bridle/record.h"
#include "bridle/review.h"

struct session {
	void *state;
	struct iobuf in[2], out[2];
	bool finishing;
	uint64_t gen;
};

static struct enforcer enf;
static struct config cfg;
static struct config_workload wcfg;
static struct workload wl;
static struct policy *pol;

static const char policy_json[] =
	"{\"default\": \"deny\", \"targets\": [{\"name\": \"db\", "
	"\"address\": \"10.77.0.1\", \"port\": 5432, \"protocol\": "
	"\"postgres\", \"credentials\": {\"user\": \"app\", "
	"\"password_env\": \"BRIDLE_FUZZ_PW\"}}], \"rules\": ["
	"{\"name\": \"read\", \"when\": {\"target\": \"db\"}, \"action\": "
	"\"allow\", \"sql\": {\"commands\": [\"select\", \"insert\", "
	"\"copy\"], \"tables\": [\"public.*\"]}, \"mask\": {\"columns\": "
	"[\"email\", \"public.customers.card\"], \"detectors\": [\"email\", "
	"\"credit_card\", \"us_ssn\", \"jwt\"], \"style\": \"partial\"}},"
	"{\"name\": \"hash\", \"when\": {\"target\": \"db\"}, \"action\": "
	"\"allow\", \"mask\": {\"columns\": [\"*ssn*\"], \"style\": \"hash\"}, "
	"\"sql\": {\"commands\": [\"select\"], \"tables\": [\"hr.*\"]}},"
	"{\"name\": \"no deletes\", \"when\": {\"target\": \"db\"}, "
	"\"action\": \"deny\", \"message\": \"no\", \"sql\": {\"commands\": "
	"[\"delete\"]}},"
	"{\"name\": \"hold\", \"when\": {\"target\": \"db\"}, "
	"\"action\": \"review\", \"timeout_seconds\": 60, \"sql\": "
	"{\"commands\": [\"update\"], \"tables\": [\"held\"]}}]}";

const char *session_refusal(const struct session *s)
{
	(void)s;
	return NULL;
}

void *session_state(struct session *s)
{
	return s->state;
}

void session_set_state(struct session *s, void *state)
{
	s->state = state;
}

struct iobuf *session_out(struct session *s, enum proto_dir dir)
{
	return &s->out[dir];
}

void session_finish(struct session *s, const char *reason)
{
	(void)reason;
	s->finishing = true;
}

struct policy *session_policy(struct session *s, size_t *target,
			      uint64_t *generation)
{
	(void)s;
	*target = 0;
	if (generation)
		*generation = 1;
	return pol;
}

void session_policy_input(struct session *s, struct policy_input *in)
{
	static const uint8_t addr[16] = { 10, 77, 0, 1 };

	(void)s;
	memset(in, 0, sizeof(*in));
	in->workload = "agent";
	in->labels = wcfg.labels;
	in->family = AF_INET;
	in->addr = addr;
	in->port = 5432;
}

int session_start_tls(struct session *s, enum proto_dir toward, SSL_CTX *ctx,
		      const char *verify_name)
{
	(void)s;
	(void)toward;
	(void)ctx;
	(void)verify_name;
	return 0;
}

void session_keepalive(struct session *s)
{
	(void)s;
}

uint64_t session_id(const struct session *s)
{
	(void)s;
	return 1;
}

void session_log_event(struct session *s, const char *event, json_t *fields,
		       bool warn)
{
	(void)s;
	(void)event;
	(void)warn;
	json_decref(fields);
}

void session_decision(struct session *s, const struct policy *p,
		      const struct policy_decision *d, const char *request,
		      const char *statement)
{
	(void)s;
	(void)request;
	(void)statement;
	policy_note(p, d);
}

static struct identity_user *fuzz_user;

void session_set_user(struct session *s, struct identity_user *u)
{
	(void)s;
	identity_user_free(fuzz_user);
	fuzz_user = u;
}

const struct identity_user *session_user(const struct session *s)
{
	(void)s;
	return fuzz_user;
}

void session_count(struct session *s, unsigned requests, unsigned denied,
		   uint64_t masked)
{
	(void)s;
	(void)requests;
	(void)denied;
	(void)masked;
}

/* Recording: every record is built and serialised (what would go into
 * the file), so the module's record fields meet the fuzzed bytes. */
static uint64_t fuzz_req;

static void fuzz_record(const char *kind, json_t *fields)
{
	char *text;

	/* No fields: a json_pack that failed (bytes that are not UTF-8
	 * reached a record unsanitised). */
	if (!kind || !fields)
		abort();
	text = json_dumps(fields, JSON_COMPACT);
	if (!text)
		abort(); /* a record that cannot be written */
	free(text);
	json_decref(fields);
}

bool session_recorded(const struct session *s)
{
	(void)s;
	return true;
}

/* Fields formatted by hand: they must make a valid JSON object. */
static void fuzz_record_buf(const struct record_buf *b)
{
	char *text;
	json_t *j;
	json_error_t e;

	if (!b || b->failed)
		abort();
	if (!b->len)
		return;
	if (asprintf(&text, "{%s}", b->p + 1) < 0)
		abort();
	j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	if (!json_is_object(j)) {
		fprintf(stderr, "record fields are not JSON: %s (%s)\n", text,
			e.text);
		abort();
	}
	json_decref(j);
	free(text);
}

uint64_t session_record_request(struct session *s, struct record_buf *fields)
{
	(void)s;
	fuzz_record_buf(fields);
	return ++fuzz_req;
}

void session_record_buf(struct session *s, const char *kind,
			const struct record_buf *fields)
{
	(void)s;
	if (!kind)
		abort();
	fuzz_record_buf(fields);
}

void session_record(struct session *s, const char *kind, json_t *fields)
{
	(void)s;
	fuzz_record(kind, fields);
}

const char *session_record_commit(struct session *s)
{
	(void)s;
	return NULL;
}

void session_review_line(struct session *s, const char *outcome,
			 uint64_t review, const char *rule, const char *by,
			 const char *reason, uint64_t grant)
{
	(void)s;
	(void)outcome;
	(void)review;
	(void)rule;
	(void)by;
	(void)reason;
	(void)grant;
}

bool session_record_refusing(const struct session *s)
{
	(void)s;
	return false;
}

const struct workload *session_workload(const struct session *s)
{
	(void)s;
	return &wl;
}

const char *session_workload_name(const struct session *s)
{
	(void)s;
	return "agent";
}

const char *session_target_name(const struct session *s)
{
	(void)s;
	return "db";
}

size_t session_buffer_size(const struct session *s)
{
	(void)s;
	return 65536;
}

struct enforcer *session_enforcer(struct session *s)
{
	(void)s;
	return &enf;
}

void session_orig(const struct session *s, int *family, uint8_t addr[16],
		  uint16_t *port)
{
	(void)s;
	*family = AF_INET;
	memset(addr, 0, 16);
	addr[0] = 10;
	addr[1] = 77;
	addr[3] = 1;
	*port = 5432;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];
	struct jv v;
	json_t *root = json_loads(policy_json, 0, NULL);

	(void)argc;
	(void)argv;
	setenv("BRIDLE_FUZZ_PW", "fuzz-secret", 1);
	jv_init(&v, "fuzz", err, sizeof(err));
	pol = root ? policy_compile(&v, root) : NULL;
	json_decref(root);
	if (!pol)
		abort();
	cfg.max_message = 65536;
	cfg.mask_key_len = 16;
	cfg.nworkloads = 1;
	wcfg.name = "agent";
	wcfg.labels = json_object();
	wl.cfg = &wcfg;
	enf.cfg = &cfg;
	enf.workloads = &wl;
	enf.reviews = review_table_new();
	return 0;
}

/* A review the module opened: decided by a bit of the input (approve,
 * or reject; with another bit, approve for a minute: a grant), then the
 * module's tick lets the held query go on or fail. */
static void fuzz_review(struct session *s, uint8_t flags)
{
	json_t *l = review_list_json(enf.reviews, false, 0);
	json_t *id = json_object_get(json_array_get(l, 0), "id");
	char err[128];

	if (json_is_integer(id)) {
		const struct review_decider d = { .by = "fuzz", .name = "fuzz" };

		review_decide(enf.reviews, (uint64_t)json_integer_value(id),
			      flags & 2, &d, "because", flags & 4 ? 60000 : 0,
			      0, err, sizeof(err));
		if (proto_pg_ops.tick(s, 0) > 0 && iobuf_unparsed(&s->in[0]))
			proto_pg_ops.on_data(s, PROTO_TO_UPSTREAM, &s->in[0]);
	}
	json_decref(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session s = { 0 };

	for (int d = 0; d < 2; d++)
		if (iobuf_init(&s.in[d], 65536) || iobuf_init(&s.out[d], 65536))
			abort();
	if (proto_pg_ops.init(&s))
		abort();
	while (size >= 3 && !s.finishing) {
		int d = data[0] & 1;
		size_t len = (size_t)data[1] << 8 | data[2];
		struct iobuf *b = &s.in[d];

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (len > iobuf_room(b))
			len = iobuf_room(b);
		memcpy(b->data + b->recv, data, len);
		b->recv += len;
		data += len;
		size -= len;
		if (proto_pg_ops.on_data(&s, d ? PROTO_TO_AGENT :
						 PROTO_TO_UPSTREAM,
					 b))
			break;
		fuzz_review(&s, data[-(ssize_t)len - 3]);
		/* What the module queued went out. */
		for (int o = 0; o < 2; o++)
			s.out[o].sent = s.out[o].parsed = s.out[o].recv = 0;
	}
	proto_pg_ops.release(&s);
	for (int d = 0; d < 2; d++) {
		iobuf_release(&s.in[d]);
		iobuf_release(&s.out[d]);
	}
	return 0;
}
