// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL, protocol v3. bridle logs in upstream with the target's
 * credentials while the agent logs in to bridle without a password, hands
 * the agent a cancel key of its own, decides every statement (simple
 * query, Parse, Execute, SQL PREPARE/EXECUTE) against the policy, and
 * masks result values on their way back.
 *
 * A denied statement is never sent. In its place bridle sends a Bind of a
 * statement that cannot exist, so that the server itself fails that point
 * of the exchange: an implicit transaction is rolled back, an explicit one
 * enters the failed state, and the ReadyForQuery the agent then gets
 * carries the server's true transaction status. bridle rewrites that one
 * error into its own (42501, naming the rule).
 *
 * Responses are matched to requests through a queue of what each message
 * sent upstream will be answered with; masking needs it, since the rows
 * of an Execute carry no description of their columns.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <pg_query.h>

#include "bridle/config.h"
#include "bridle/enforcer.h"
#include "bridle/identity.h"
#include "bridle/log.h"
#include "bridle/mask.h"
#include "bridle/pg_wire.h"
#include "bridle/policy.h"
#include "bridle/proto.h"
#include "bridle/record.h"
#include "bridle/review.h"
#include "bridle/webhook.h"
#include "bridle/scram.h"
#include "bridle/sql.h"
#include "bridle/tls.h"

#define PG_EXPECT_MAX 256 /* messages in flight before reading stops */
#define PG_MAX_COLS 1664 /* the server's own MaxTupleAttributeNumber */
#define PG_DENIED_STMT "bridle.denied"
#define PG_TEXT_MASK_MAX 96
/* In a recording: a statement's first 64 KiB, a parameter's first 1 KiB
 * (binary ones: 256 bytes, in hex), and the first 64 parameters. */
#define PG_REC_TEXT_MAX 65536
#define PG_REC_PARAM_MAX 1024
#define PG_REC_BINARY_MAX 256
#define PG_REC_PARAMS_MAX 64

enum pg_phase {
	PH_STARTUP, /* waiting for the agent's first packet */
	PH_TOKEN, /* asked the agent for its user token (as a password) */
	PH_UPSSL, /* asked the destination for TLS, waiting for its answer */
	PH_AUTH, /* logging in upstream */
	PH_INIT, /* parameters and key, until the first ReadyForQuery */
	PH_SETUP, /* our own query: search path, masked columns */
	PH_READY, /* relaying */
	PH_DONE, /* finishing */
};

/* The columns of a result and what happens to each value. */
enum col_action { COL_PASS, COL_MASK, COL_SCAN };

struct pg_col {
	uint8_t action;
	uint8_t style; /* enum mask_style, for COL_MASK */
	bool text; /* a text-like type: a masked value can stay text */
};

struct pg_cols {
	int refs;
	uint16_t n;
	bool any; /* some column is not COL_PASS */
	struct pg_col c[];
};

/* A prepared statement: from Parse, or SQL PREPARE (sql_prepared). */
struct pg_stmt {
	struct pg_stmt *next;
	int refs;
	char *name;
	char *text;
	char *logged; /* for the decision log: literals replaced */
	struct sql_result cls;
	bool cls_ok; /* classified (a cached decision skips it) */
	/* Sent, not yet confirmed by the server (ParseComplete, or the
	 * PREPARE's CommandComplete): it shadows an older one of the same
	 * name, and is dropped if the server refuses it. */
	bool pending;
	bool reads_masked; /* reads a table with masked columns */
	uint64_t cache_hash; /* while deciding: its cache slot */
	size_t cache_klen;
	struct pg_cols *cols; /* from a Describe of it, NULL until then */
	uint64_t gen; /* policy generation it was last allowed under */
};

/* A portal, from Bind. Expectations of its Describe and Execute hold
 * references, so a later Bind or Close of its name cannot take the
 * columns from rows still on their way. */
struct pg_portal {
	struct pg_portal *next;
	int refs;
	bool pending; /* until BindComplete; dropped if the server refuses */
	bool described; /* its columns are known (cols NULL: none masked) */
	char *name;
	struct pg_stmt *stmt; /* a reference */
	int16_t *formats; /* result format codes, as Bind gave them */
	uint16_t nformats;
	struct pg_cols *cols; /* from a Describe of it */
	char *params; /* its parameters as a JSON array, for the recording */
};

enum expect_kind {
	X_QUERY, /* simple Query: rows, completions, then ReadyForQuery */
	X_PARSE,
	X_BIND,
	X_DESCRIBE_S,
	X_DESCRIBE_P,
	X_EXECUTE,
	X_CLOSE,
	X_SYNC,
	X_DENIED, /* our impossible Bind: its error becomes the denial */
	X_FUNCTION, /* a FunctionCall answered by its own ReadyForQuery */
};

struct pg_expect {
	uint8_t kind;
	bool hidden; /* bridle asked: the answer is not the agent's */
	struct pg_stmt *stmt; /* X_DESCRIBE_S, a reference */
	struct pg_portal *portal; /* X_DESCRIBE_P, X_EXECUTE */
	struct pg_cols *cols; /* X_EXECUTE, a reference */
	bool mask_computed; /* X_QUERY: statement reads a masked table */
	char *deny; /* X_DENIED: the message for the agent */
	struct pg_stmt **preps; /* X_QUERY: its SQL PREPAREs, in order */
	size_t npreps, nconfirmed;
	/* The request it answers, for its recording: number, and the
	 * rows, bytes and masked values of the result so far. */
	uint64_t req, rows, bytes, masked;
};

/* A masked column of a table, resolved to the server's identifiers. */
struct pg_masked_attr {
	uint32_t relid;
	int16_t attnum;
	uint8_t style;
	char *table; /* schema.table */
	char *pattern; /* the mask column it came from */
};

/*
 * Decisions already made in this session, by statement text: with the
 * literals of plain statements replaced by '?', so that the same query
 * with other values (pgbench -M simple) is decided once. Valid for one
 * policy generation and one search path.
 */
#define PG_CACHE_SLOTS 256
#define PG_CACHE_MAX_KEY 4096

struct pg_cache_entry {
	uint64_t hash;
	uint64_t gen;
	uint32_t path_ver;
	char *key; /* owned */
	char *deny; /* the denial's message; NULL when allowed */
	bool reads_masked;
	/* For the decision log: valid while gen is the policy's. */
	struct policy_decision d;
	char what[160];
	char *logged; /* the statement as the decision log shows it */
};

struct pg_cancel_entry {
	struct pg_cancel_entry *next;
	uint32_t pid, key; /* what the agent was given */
	uint32_t up_pid, up_key;
	uint64_t review; /* the session's held request, under cancel_lock */
	const struct workload *wl;
	int family;
	uint8_t addr[16];
	uint16_t port;
};

struct pg {
	struct session *s;
	enum pg_phase phase;
	size_t max_message;
	/* the login */
	char *user, *database; /* upstream */
	struct scram_client scram;
	char *password; /* only while logging in; wiped after */
	uint8_t *startup; /* the upstream startup packet, held for TLS */
	size_t startup_len;
	bool agent_tls; /* the agent's side is TLS already */
	/* cancel keys */
	struct pg_cancel_entry *cancel; /* ours in the global table */
	/* extended protocol */
	struct pg_stmt *stmts;
	struct pg_portal *portals;
	bool discard; /* after a denial: drop until Sync */
	struct pg_expect *q; /* ring of expectations */
	size_t qhead, qlen, qcap;
	struct pg_cols *cur; /* X_QUERY: the current result's columns */
	char txn; /* last ReadyForQuery status */
	bool copy_in; /* the agent is sending CopyData */
	/* An Execute of COPY FROM went out: the server ignores a Sync that
	 * arrives in copy-in mode, so the agent's Syncs until its CopyDone
	 * or CopyFail are not answered. */
	bool copy_expected;
	size_t pass[2]; /* bytes of a message still streaming, per dir */
	/* the policy as last seen */
	uint64_t gen;
	struct policy_mask_plan plan;
	bool plan_ok;
	char **schemas; /* search path candidates */
	size_t nschemas;
	uint32_t path_ver; /* changes when schemas does */
	struct pg_cache_entry cache[PG_CACHE_SLOTS];
	char keybuf[PG_CACHE_MAX_KEY];
	struct pg_masked_attr *attrs; /* resolved in PH_SETUP */
	size_t nattrs;
	/* Table-qualified mask columns the setup query resolved. One a
	 * reload adds later is matched by its column name, on any table,
	 * until the session ends: more is masked, never less. */
	char **resolved;
	size_t nresolved;
	int setup_set; /* result set of the setup query being read */
	/* scratch for rewritten rows */
	uint8_t *scratch;
	size_t scratch_cap;
	uint8_t mask_key[64];
	size_t mask_key_len;
	struct record_buf rb; /* the fields of the records it writes */
	/* A simple query held for a review: its message, the review, its
	 * request's number; nothing more is read from the agent until the
	 * review ends. */
	uint8_t *held;
	size_t held_len;
	uint64_t held_review, held_req;
	char *held_rule;
	struct pg_stmt *held_stmt; /* a held Parse's statement */
	bool held_told; /* its close went to the webhooks */
};

/* ---------------------------------------------------------- cancel keys */

#define CANCEL_BUCKETS 256
static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pg_cancel_entry *cancel_table[CANCEL_BUCKETS];

static void cancel_add(struct pg_cancel_entry *c)
{
	pthread_mutex_lock(&cancel_lock);
	c->next = cancel_table[c->pid % CANCEL_BUCKETS];
	cancel_table[c->pid % CANCEL_BUCKETS] = c;
	pthread_mutex_unlock(&cancel_lock);
}

static void cancel_del(struct pg_cancel_entry *c)
{
	struct pg_cancel_entry **pp;

	pthread_mutex_lock(&cancel_lock);
	for (pp = &cancel_table[c->pid % CANCEL_BUCKETS]; *pp;
	     pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&cancel_lock);
}

/* The upstream key for an agent's (pid, key), if it is one of ours for the
 * same workload and destination. */
static bool cancel_find(uint32_t pid, uint32_t key, const struct workload *wl,
			int family, const uint8_t *addr, uint16_t port,
			uint32_t *up_pid, uint32_t *up_key, uint64_t *review)
{
	bool found = false;

	pthread_mutex_lock(&cancel_lock);
	for (struct pg_cancel_entry *c = cancel_table[pid % CANCEL_BUCKETS]; c;
	     c = c->next)
		if (c->pid == pid && c->key == key && c->wl == wl &&
		    c->family == family && c->port == port &&
		    memcmp(c->addr, addr, 16) == 0) {
			*up_pid = c->up_pid;
			*up_key = c->up_key;
			*review = c->review;
			found = true;
			break;
		}
	pthread_mutex_unlock(&cancel_lock);
	return found;
}

/* ------------------------------------------------------- message output */

/* A message being built: type, length, body. */
struct msgb {
	uint8_t buf[2048];
	size_t len;
	bool overflow;
};

static void mb_start(struct msgb *m, char type)
{
	m->buf[0] = (uint8_t)type;
	m->len = 5;
	m->overflow = false;
}

static void mb_bytes(struct msgb *m, const void *p, size_t n)
{
	if (m->len + n > sizeof(m->buf)) {
		m->overflow = true;
		return;
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
}

static void mb_str(struct msgb *m, const char *s)
{
	mb_bytes(m, s, strlen(s) + 1);
}

static void mb_u32(struct msgb *m, uint32_t v)
{
	uint8_t b[4];

	pg_put32(b, v);
	mb_bytes(m, b, 4);
}

static void mb_u16(struct msgb *m, uint16_t v)
{
	uint8_t b[2];

	pg_put16(b, v);
	mb_bytes(m, b, 2);
}

/* Finish @m and queue it in direction @dir. Returns 0 or -ENOBUFS. */
static int mb_send(struct pg *pg, enum proto_dir dir, struct msgb *m)
{
	if (m->overflow)
		return -EMSGSIZE;
	pg_put32(m->buf + 1, (uint32_t)(m->len - 1));
	return iobuf_append(session_out(pg->s, dir), m->buf, m->len);
}

/* An ErrorResponse (or, with @notice, a NoticeResponse) to the agent. */
static int send_error(struct pg *pg, bool notice, const char *severity,
		      const char *code, const char *msg, const char *detail,
		      const char *hint)
{
	struct msgb m;
	char text[1024];

	mb_start(&m, notice ? 'N' : 'E');
	mb_bytes(&m, "S", 1);
	mb_str(&m, severity);
	mb_bytes(&m, "V", 1);
	mb_str(&m, severity);
	mb_bytes(&m, "C", 1);
	mb_str(&m, code);
	/* Cut long texts: the message must fit whatever it quotes. */
	snprintf(text, sizeof(text), "%s", msg);
	mb_bytes(&m, "M", 1);
	mb_str(&m, text);
	if (detail) {
		snprintf(text, sizeof(text), "%s", detail);
		mb_bytes(&m, "D", 1);
		mb_str(&m, text);
	}
	if (hint) {
		mb_bytes(&m, "H", 1);
		mb_str(&m, hint);
	}
	mb_bytes(&m, "", 1);
	return mb_send(pg, PROTO_TO_AGENT, &m);
}

/* A fatal error: tell the agent, and close once it is sent. */
static int fatal(struct pg *pg, const char *code, const char *msg)
{
	log_msg(LOG_WARN, "pg", "session %llu (%s → %s): %s",
		(unsigned long long)session_id(pg->s),
		session_workload_name(pg->s), session_target_name(pg->s), msg);
	session_record(pg->s, "error",
		       json_pack("{s:s,s:o}", "sqlstate", code, "message",
				 log_utf8_json(msg, 1024)));
	/* With no room even for this, the reset says it. */
	if (send_error(pg, false, "FATAL", code, msg, NULL, NULL))
		return -EPROTO;
	pg->phase = PH_DONE;
	session_finish(pg->s, msg);
	return 0;
}

/* ------------------------------------------------------- expectations */

static struct pg_cols *cols_ref(struct pg_cols *c)
{
	if (c)
		c->refs++;
	return c;
}

static void cols_unref(struct pg_cols *c)
{
	if (c && --c->refs == 0)
		free(c);
}

static void stmt_unref(struct pg_stmt *st)
{
	if (!st || --st->refs > 0)
		return;
	free(st->name);
	free(st->text);
	free(st->logged);
	sql_result_free(&st->cls);
	cols_unref(st->cols);
	free(st);
}

static void portal_free(struct pg_portal *p)
{
	if (!p || --p->refs > 0)
		return;
	free(p->name);
	stmt_unref(p->stmt);
	free(p->formats);
	cols_unref(p->cols);
	free(p->params);
	free(p);
}

static void portal_unlink(struct pg *pg, struct pg_portal *po)
{
	for (struct pg_portal **pp = &pg->portals; *pp; pp = &(*pp)->next)
		if (*pp == po) {
			*pp = po->next;
			portal_free(po);
			return;
		}
}

/* BindComplete: older portals of its name are gone. */
static void portal_confirm(struct pg_portal *po)
{
	struct pg_portal **pp = &po->next;

	po->pending = false;
	while (*pp) {
		struct pg_portal *o = *pp;

		if (strcmp(o->name, po->name) == 0) {
			*pp = o->next;
			portal_free(o);
		} else {
			pp = &o->next;
		}
	}
}

static void stmt_unlink(struct pg *pg, struct pg_stmt *st)
{
	for (struct pg_stmt **pp = &pg->stmts; *pp; pp = &(*pp)->next)
		if (*pp == st) {
			*pp = st->next;
			stmt_unref(st);
			return;
		}
}

/* The server confirmed @st: older statements of its name (after it in
 * the list, newest first) are gone; newer pending ones stay. */
static void stmt_confirm(struct pg *pg, struct pg_stmt *st)
{
	struct pg_stmt **pp = &st->next;

	(void)pg;
	st->pending = false;
	while (*pp) {
		struct pg_stmt *o = *pp;

		if (strcmp(o->name, st->name) == 0) {
			*pp = o->next;
			stmt_unref(o);
		} else {
			pp = &o->next;
		}
	}
}

static struct pg_expect *expect_push(struct pg *pg, enum expect_kind kind)
{
	struct pg_expect *x;

	if (pg->qlen == pg->qcap)
		return NULL;
	x = &pg->q[(pg->qhead + pg->qlen++) % pg->qcap];
	memset(x, 0, sizeof(*x));
	x->kind = (uint8_t)kind;
	return x;
}

/* An expected ReadyForQuery in front of the queue (see copy_expected). */
static void expect_push_front_sync(struct pg *pg)
{
	if (pg->qlen == pg->qcap)
		return;
	pg->qhead = (pg->qhead + pg->qcap - 1) % pg->qcap;
	pg->qlen++;
	memset(&pg->q[pg->qhead], 0, sizeof(pg->q[0]));
	pg->q[pg->qhead].kind = X_SYNC;
}

static struct pg_expect *expect_head(struct pg *pg)
{
	return pg->qlen ? &pg->q[pg->qhead] : NULL;
}

static void expect_pop(struct pg *pg)
{
	struct pg_expect *x = expect_head(pg);

	if (!x)
		return;
	/* A statement the server did not confirm does not exist there. */
	if (x->kind == X_PARSE && x->stmt && x->stmt->pending)
		stmt_unlink(pg, x->stmt);
	for (size_t i = 0; i < x->npreps; i++) {
		if (x->preps[i]->pending)
			stmt_unlink(pg, x->preps[i]);
		stmt_unref(x->preps[i]);
	}
	free(x->preps);
	stmt_unref(x->stmt);
	cols_unref(x->cols);
	free(x->deny);
	if (x->kind == X_BIND && x->portal && x->portal->pending)
		portal_unlink(pg, x->portal);
	portal_free(x->portal);
	pg->qhead = (pg->qhead + 1) % pg->qcap;
	pg->qlen--;
}

/* -------------------------------------------------------- named things */

static struct pg_stmt *stmt_find(struct pg *pg, const char *name)
{
	for (struct pg_stmt *st = pg->stmts; st; st = st->next)
		if (strcmp(st->name, name) == 0)
			return st;
	return NULL;
}

static void stmt_remove(struct pg *pg, const char *name)
{
	for (struct pg_stmt **pp = &pg->stmts; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0) {
			struct pg_stmt *st = *pp;

			*pp = st->next;
			stmt_unref(st);
			return;
		}
}

static struct pg_portal *portal_find(struct pg *pg, const char *name)
{
	for (struct pg_portal *p = pg->portals; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void portal_remove(struct pg *pg, const char *name)
{
	for (struct pg_portal **pp = &pg->portals; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0) {
			struct pg_portal *p = *pp;

			*pp = p->next;
			portal_free(p);
			return;
		}
}

/* Unnamed portals end at a Sync outside a transaction block; drop ours
 * then, so they do not pile up. */
static void portals_at_sync(struct pg *pg)
{
	if (pg->txn == 'I' && pg->portals)
		portal_remove(pg, "");
}

/* ---------------------------------------------------------- decisions */

static void add_schema(struct pg *pg, const char *s)
{
	char **n;

	for (size_t i = 0; i < pg->nschemas; i++)
		if (strcmp(pg->schemas[i], s) == 0)
			return;
	n = realloc(pg->schemas, (pg->nschemas + 1) * sizeof(*n));
	if (!n)
		return;
	pg->schemas = n;
	n[pg->nschemas] = strdup(s);
	if (n[pg->nschemas])
		pg->nschemas++;
	pg->path_ver++;
}

/*
 * The cache key of @text in pg->keybuf: 'N' and the text with numbers and
 * plain '…' strings as '?', or 'X' and the text as it is when it holds
 * anything a simple scan could read otherwise than PostgreSQL does
 * (backslashes, comments, dollar quotes, prefixed strings). Returns the
 * key's length, or 0 when the text is too long to cache.
 */
static size_t cache_key(struct pg *pg, const char *text)
{
	size_t len = strlen(text), o = 1;
	char *k = pg->keybuf;
	/* U&"…" UESCAPE '…': the literal changes the identifier. */
	bool plain = !strpbrk(text, "\\$&") && !strstr(text, "--") &&
		     !strstr(text, "/*");

	if (len + 2 > PG_CACHE_MAX_KEY)
		return 0;
	/* A prefix on an opening quote: E'', B'', X'', U&''. Strings and
	 * quoted identifiers are skipped whole, so a closing quote after a
	 * letter ('abc') is not taken for one. */
	for (size_t i = 0; plain && i < len; i++) {
		char q = text[i];

		if (q != '\'' && q != '"')
			continue;
		if (q == '\'' && i > 0 &&
		    (isalnum((unsigned char)text[i - 1]) || text[i - 1] == '&'))
			plain = false;
		for (i++; i < len; i++)
			if (text[i] == q) {
				if (i + 1 < len && text[i + 1] == q)
					i++; /* '' or "" inside */
				else
					break;
			}
	}
	if (!plain) {
		k[0] = 'X';
		memcpy(k + 1, text, len + 1);
		return len + 1;
	}
	k[0] = 'N';
	for (size_t i = 0; i < len;) {
		char c = text[i];

		if (c == '"') { /* a quoted identifier, as it is */
			size_t j = i + 1;

			while (j < len &&
			       !(text[j] == '"' &&
				 (j + 1 >= len || text[j + 1] != '"')))
				j += text[j] == '"' ? 2 : 1;
			j = j < len ? j + 1 : len;
			memcpy(k + o, text + i, j - i);
			o += j - i;
			i = j;
		} else if (c == '\'') {
			size_t j = i + 1;

			while (j < len &&
			       !(text[j] == '\'' &&
				 (j + 1 >= len || text[j + 1] != '\'')))
				j += text[j] == '\'' ? 2 : 1;
			i = j < len ? j + 1 : len;
			k[o++] = '?';
		} else if (isalpha((unsigned char)c) || c == '_' ||
			   (unsigned char)c >= 0x80) {
			/* An identifier or keyword, digits in it included. */
			while (i < len && (isalnum((unsigned char)text[i]) ||
					   text[i] == '_' ||
					   (unsigned char)text[i] >= 0x80))
				k[o++] = text[i++];
		} else if (isdigit((unsigned char)c) ||
			   (c == '.' && i + 1 < len &&
			    isdigit((unsigned char)text[i + 1]))) {
			while (i < len &&
			       (isalnum((unsigned char)text[i]) ||
				text[i] == '.' ||
				((text[i] == '+' || text[i] == '-') &&
				 (text[i - 1] == 'e' || text[i - 1] == 'E'))))
				i++;
			k[o++] = '?';
		} else {
			k[o++] = text[i++];
		}
	}
	k[o] = '\0';
	return o;
}

/* Has the session's user token expired? Then nothing runs on it. */
static bool user_expired(struct pg *pg)
{
	const struct identity_user *u = session_user(pg->s);

	return u && u->u.expires && (int64_t)time(NULL) > u->u.expires;
}

static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return h;
}

/* A decision is cached only for statements without side effects on
 * what later decisions see, and whose literals cannot change it. */
static bool cacheable(const struct sql_result *r)
{
	for (size_t i = 0; i < r->nstmts; i++) {
		const struct sql_stmt *st = &r->stmts[i];

		switch (st->command) {
		case SQL_SELECT:
		case SQL_INSERT:
		case SQL_UPDATE:
		case SQL_DELETE:
		case SQL_MERGE:
			break;
		default:
			return false;
		}
		if (st->nsearch_path || st->prepared || st->fetch)
			return false;
		for (size_t f = 0; f < st->nfunctions; f++) {
			const char *dot = strrchr(st->functions[f], '.');

			if (!strcmp(dot ? dot + 1 : st->functions[f],
				    "set_config"))
				return false;
		}
	}
	return r->nstmts > 0;
}

static struct pg_cache_entry *cache_find(struct pg *pg, size_t klen,
					 uint64_t *hash)
{
	struct pg_cache_entry *c;

	*hash = fnv1a(pg->keybuf, klen);
	/* A token that expired decides again (and is denied). */
	if (user_expired(pg))
		return NULL;
	c = &pg->cache[*hash % PG_CACHE_SLOTS];
	if (c->key && c->hash == *hash && c->gen == pg->gen &&
	    c->path_ver == pg->path_ver && strcmp(c->key, pg->keybuf) == 0)
		return c;
	return NULL;
}

static void cache_store(struct pg *pg, uint64_t hash, const char *deny,
			bool reads, const struct policy_decision *d,
			const char *what, const char *logged)
{
	struct pg_cache_entry *c = &pg->cache[hash % PG_CACHE_SLOTS];

	c->d = *d;
	snprintf(c->what, sizeof(c->what), "%s", what);
	free(c->key);
	free(c->deny);
	free(c->logged);
	c->key = strdup(pg->keybuf);
	c->deny = deny ? strdup(deny) : NULL;
	c->logged = strdup(logged);
	c->hash = hash;
	c->gen = pg->gen;
	c->path_ver = pg->path_ver;
	c->reads_masked = reads;
	if (!c->key || (deny && !c->deny) || !c->logged) {
		free(c->key);
		free(c->deny);
		free(c->logged);
		c->key = c->deny = c->logged = NULL;
	}
}

/* After a reload: resolved columns whose mask is gone are no longer
 * masked; those still there take the new style. */
static void refresh_attrs(struct pg *pg)
{
	size_t k = 0;

	for (size_t i = 0; i < pg->nattrs; i++) {
		struct pg_masked_attr *a = &pg->attrs[i];
		bool keep = false;

		for (size_t c = 0; c < pg->plan.ncolumns && !keep; c++)
			if (strcmp(pg->plan.columns[c].pattern, a->pattern) ==
			    0) {
				keep = true;
				a->style = (uint8_t)pg->plan.columns[c].style;
			}
		if (keep) {
			pg->attrs[k++] = *a;
		} else {
			free(a->table);
			free(a->pattern);
		}
	}
	pg->nattrs = k;
}

/* Refresh what depends on the policy when a reload replaced it. */
static struct policy *current_policy(struct pg *pg, size_t *target)
{
	uint64_t gen;
	struct policy *p = session_policy(pg->s, target, &gen);

	if (gen != pg->gen || !pg->plan_ok) {
		struct policy_input in;

		policy_mask_plan_release(&pg->plan);
		session_policy_input(pg->s, &in);
		pg->plan_ok = *target != SIZE_MAX &&
			      policy_mask_plan(p, &in, *target, &pg->plan) == 0;
		pg->gen = gen;
		refresh_attrs(pg);
	}
	return p;
}

/* Does @t name a table with masked columns? */
static bool pattern_resolved(const struct pg *pg, const char *pattern)
{
	for (size_t i = 0; i < pg->nresolved; i++)
		if (strcmp(pg->resolved[i], pattern) == 0)
			return true;
	return false;
}

static bool table_masked(struct pg *pg, const struct sql_table *t)
{
	const char *bare = t->qualified && strchr(t->name, '.') ?
				   strchr(t->name, '.') + 1 :
				   t->name;

	for (size_t i = 0; i < pg->nattrs; i++) {
		const char *name = pg->attrs[i].table, *dot = strchr(name, '.');

		if (t->qualified ? strcmp(name, t->name) == 0 :
				   dot && strcmp(dot + 1, t->name) == 0)
			return true;
	}
	/* Not resolved: the pattern's table part, as a glob. */
	for (size_t i = 0; i < pg->plan.ncolumns; i++) {
		const struct policy_mask_column *c = &pg->plan.columns[i];
		char tab[512];
		const char *last;
		size_t n;

		if (c->dots == 0 || pattern_resolved(pg, c->pattern))
			continue;
		last = strrchr(c->pattern, '.');
		n = (size_t)(last - c->pattern);
		if (n >= sizeof(tab))
			continue;
		memcpy(tab, c->pattern, n);
		tab[n] = '\0';
		if (c->dots == 2 && t->qualified ?
			    fnmatch(tab, t->name, 0) == 0 :
			    fnmatch(c->dots == 2 ? strchr(tab, '.') + 1 : tab,
				    bare, 0) == 0)
			return true;
	}
	return false;
}

/* Does column name @c match a mask's column part? */
static bool column_masked(const struct pg *pg, const char *c)
{
	for (size_t i = 0; i < pg->plan.ncolumns; i++) {
		const char *pat = pg->plan.columns[i].pattern;
		const char *glob = strrchr(pat, '.') ? strrchr(pat, '.') + 1 :
						       pat;

		if (fnmatch(glob, c, 0) == 0)
			return true;
	}
	return false;
}

/*
 * Could a computed column of @st's result (email || '', lower(e),
 * row_to_json(c)) carry a masked value? When it reads a table with masked
 * columns, or masks match columns by name, and it names a masked column,
 * a whole row, or a star. count(*) or sum(amount) then stays as it is.
 */
static bool stmt_refs_masked(struct pg *pg, const struct sql_stmt *st)
{
	bool reads = false;

	for (size_t k = 0; k < st->ntables && !reads; k++)
		reads = table_masked(pg, &st->tables[k]);
	for (size_t i = 0; i < pg->plan.ncolumns && !reads; i++)
		reads = pg->plan.columns[i].dots == 0;
	if (!reads)
		return false;
	if (st->star)
		return true;
	for (size_t i = 0; i < st->ncolumns; i++) {
		if (column_masked(pg, st->columns[i]))
			return true;
		for (size_t k = 0; k < st->nrowrefs; k++)
			if (strcmp(st->columns[i], st->rowrefs[k]) == 0)
				return true;
	}
	return false;
}

static bool reads_masked(struct pg *pg, const struct sql_result *r)
{
	for (size_t i = 0; i < r->nstmts; i++) {
		const struct sql_stmt *st = &r->stmts[i];
		struct pg_stmt *prep;

		if (stmt_refs_masked(pg, st))
			return true;
		/* A cursor's rows: its query is not at hand, so every
		 * computed value is masked when anything is. */
		if (st->fetch && (pg->plan.ncolumns || pg->plan.detectors))
			return true;
		/* EXECUTE reads what its PREPARE named. */
		if (st->command == SQL_EXECUTE && st->prepared &&
		    (prep = stmt_find(pg, st->prepared)) && prep->reads_masked)
			return true;
	}
	return false;
}

static bool plan_masks_anything(struct pg *pg)
{
	return pg->plan.ncolumns || pg->plan.detectors;
}

/*
 * The text the decision log shows, with every literal replaced: the
 * cache key when @klen says pg->keybuf holds the plain form of @text, else
 * PostgreSQL's own normaliser ($1, $2…); a statement neither can read is
 * not shown, only its length. The log never holds a literal's value.
 */
static void log_text(struct pg *pg, size_t klen, const char *text, char *buf,
		     size_t len)
{
	PgQueryNormalizeResult n;

	if (klen && pg->keybuf[0] == 'N') {
		snprintf(buf, len, "%s", pg->keybuf + 1);
		return;
	}
	n = pg_query_normalize(text);
	if (!n.error && n.normalized_query)
		snprintf(buf, len, "%s", n.normalized_query);
	else
		snprintf(buf, len, "(a statement of %zu bytes, not parsed)",
			 strlen(text));
	pg_query_free_normalize_result(n);
}

/* A refusal no rule made, in the decision log as rule "bridle". */
static void refused_line(struct pg *pg, const char *msg, const char *logged)
{
	size_t target;
	struct policy *p = session_policy(pg->s, &target, NULL);
	struct policy_decision d;

	policy_refused(p, msg, &d);
	session_decision(pg->s, p, &d, "statement", logged);
}

/* The agent's words for a decision that is not an allow. */
static char *refusal_message(const struct policy_decision *d, const char *what)
{
	char *msg = NULL;
	int r;

	if (d->action == POLICY_REVIEW)
		r = asprintf(&msg,
			     "bridle: %s needs a person's approval (rule "
			     "\"%s\"%s%s): it was prepared before the policy "
			     "asked for a review; prepare it again to have it "
			     "held for one",
			     what, d->rule, d->message ? ": " : "",
			     d->message ? d->message : "");
	else if (d->message)
		r = asprintf(&msg, "bridle: %s (rule \"%s\")", d->message,
			     d->rule);
	else if (strcmp(d->rule, POLICY_RULE_DEFAULT) == 0)
		r = asprintf(&msg,
			     "bridle: %s is not allowed: no rule allows it "
			     "(rule \"default\")",
			     what);
	else
		r = asprintf(&msg, "bridle: %s is denied by rule \"%s\"", what,
			     d->rule);
	return r < 0 || !msg ? strdup("bridle: denied") : msg;
}

/*
 * Decide every statement of @r. Returns NULL when all are allowed, else
 * the denial's message (malloc'ed). The decision that speaks for the
 * message (the first refusal, else the first shadowed one, else the
 * first) goes to @dec and @what, and into the decision log with @logged.
 */
static char *decide(struct pg *pg, const struct sql_result *r,
		    const char *logged, bool *denied,
		    struct policy_decision *dec, char *what, size_t wlen)
{
	struct policy_input in;
	size_t target;
	struct policy *p = current_policy(pg, &target);
	char *msg = NULL;
	bool have = false;

	*denied = true;
	memset(dec, 0, sizeof(*dec));
	dec->rule = POLICY_RULE_DEFAULT;
	dec->rule_idx = SIZE_MAX;
	snprintf(what, wlen, "statement");
	session_policy_input(pg->s, &in);
	if (target == SIZE_MAX) {
		msg = strdup("bridle: the target of this session is no longer "
			     "in the policy");
		refused_line(pg, msg ? msg : "target gone", logged);
		return msg;
	}
	for (size_t i = 0; i < r->nstmts; i++) {
		const struct sql_stmt *st = &r->stmts[i];
		struct policy_stmt ps = {
			.st = st,
			.schemas = (const char *const *)pg->schemas,
			.nschemas = pg->nschemas,
		};
		struct policy_decision d;
		struct pg_stmt *prep = NULL;

		if (st->prepared && strncmp(st->prepared, "bridle", 6) == 0) {
			msg = strdup("bridle: statement names starting with "
				     "\"bridle\" are reserved");
			refused_line(pg, msg ? msg : "reserved name", logged);
			return msg;
		}
		/* EXECUTE runs what PREPARE named: decide that. */
		if (st->command == SQL_EXECUTE && st->prepared &&
		    (prep = stmt_find(pg, st->prepared)) && prep->cls_ok &&
		    prep->cls.nstmts == 1)
			ps.st = &prep->cls.stmts[0];
		policy_decide_stmt(p, &in, target, &ps, &d);
		/* The first review speaks unless a deny comes after it. */
		if (!have ||
		    (d.action != POLICY_ALLOW &&
		     !(d.action == POLICY_REVIEW &&
		       dec->action == POLICY_REVIEW)) ||
		    (d.would_rule && !dec->would_rule &&
		     dec->action != POLICY_REVIEW)) {
			*dec = d;
			sql_describe(ps.st, what, wlen);
			have = true;
		}
		if (d.action == POLICY_ALLOW && ps.st->command == SQL_COPY &&
		    ps.st->copy_out && plan_masks_anything(pg)) {
			if (asprintf(&msg,
				     "bridle: %s is refused: results of this "
				     "target are masked, and COPY out is not "
				     "(use SELECT)",
				     what) < 0)
				msg = NULL;
			dec->action = POLICY_DENY;
			session_decision(pg->s, p, dec, what, logged);
			return msg ? msg : strdup("bridle: denied");
		}
		/* A deny ends it; a review waits for the others: every
		 * statement of a held query is one a person may let run. */
		if (d.action == POLICY_DENY) {
			session_decision(pg->s, p, dec, what, logged);
			return refusal_message(&d, what);
		}
	}
	session_decision(pg->s, p, dec, what, logged);
	if (dec->action == POLICY_REVIEW)
		return refusal_message(dec, what);
	*denied = false;
	return NULL;
}

/* Side effects of allowed statements on what later decisions need. */
static void note_allowed(struct pg *pg, const struct sql_result *r,
			 const char *text, const char *logged,
			 struct pg_expect *x)
{
	for (size_t i = 0; i < r->nstmts; i++) {
		const struct sql_stmt *st = &r->stmts[i];

		for (size_t k = 0; k < st->nsearch_path; k++) {
			/* "$user" is the login's own schema. */
			add_schema(pg, strcmp(st->search_path[k], "$user") ?
					       st->search_path[k] :
					       pg->user);
		}
		if (st->command == SQL_PREPARE && st->prepared) {
			struct pg_stmt *ps = calloc(1, sizeof(*ps));

			if (!ps)
				continue;
			ps->refs = 1;
			ps->name = strdup(st->prepared);
			ps->text = strdup(text);
			ps->logged = strdup(logged);
			/* The prepared statement alone, as EXECUTE runs it. */
			ps->cls.stmts = calloc(1, sizeof(*ps->cls.stmts));
			ps->cls_ok = ps->name && ps->text && ps->cls.stmts &&
				     sql_stmt_copy(st, ps->cls.stmts) == 0;
			if (ps->cls.stmts)
				ps->cls.nstmts = 1;
			if (ps->cls_ok) {
				ps->cls.stmts[0].command = st->inner;
				ps->reads_masked = reads_masked(pg, &ps->cls);
			}
			/* It exists once the server says PREPARE. */
			if (!x || !ps->cls_ok) {
				stmt_unref(ps);
				continue;
			}
			{
				struct pg_stmt **np =
					realloc(x->preps,
						(x->npreps + 1) * sizeof(*np));

				if (!np) {
					stmt_unref(ps);
					continue;
				}
				x->preps = np;
			}
			ps->pending = true;
			ps->refs++;
			x->preps[x->npreps++] = ps;
			ps->next = pg->stmts;
			pg->stmts = ps;
		} else if (st->command == SQL_UTILITY && st->prepared) {
			stmt_remove(pg, st->prepared);
		} else if (st->drops_prepared) {
			/* The server forgets every prepared statement: so
			 * does bridle (a later EXECUTE of one is denied). */
			while (pg->stmts) {
				struct pg_stmt *ps = pg->stmts;

				pg->stmts = ps->next;
				stmt_unref(ps);
			}
		}
	}
}

/*
 * A denied statement in the session log (and bridle's). @logged: its text
 * for the decision log when no rule decided (it does not parse, a
 * reserved name…): then it goes there too, as rule "bridle"; NULL when
 * the decision log has it already.
 */
static void log_denied(struct pg *pg, const char *text, const char *msg,
		       const char *logged)
{
	char t[1024];

	log_utf8(t, sizeof(t), text);
	session_log_event(pg->s, "statement_denied",
			  json_pack("{s:s,s:s}", "statement", t, "reason", msg),
			  true);
	if (logged)
		refused_line(pg, msg, logged);
}

/*
 * Send the upstream half of a denial: a Bind of a statement that cannot
 * exist (and a Sync for a simple query or FunctionCall). The agent gets
 * @msg in place of the server's error.
 */
static int deny_upstream(struct pg *pg, char *msg, bool sync)
{
	struct iobuf *up = session_out(pg->s, PROTO_TO_UPSTREAM);
	struct pg_expect *x;
	struct msgb m;

	if (pg->qcap - pg->qlen < 2) {
		free(msg);
		return -ENOBUFS;
	}
	mb_start(&m, 'B');
	mb_str(&m, "");
	mb_str(&m, PG_DENIED_STMT);
	mb_u16(&m, 0);
	mb_u16(&m, 0);
	mb_u16(&m, 0);
	if (iobuf_room(up) < m.len + 5) {
		free(msg);
		return -ENOBUFS;
	}
	mb_send(pg, PROTO_TO_UPSTREAM, &m);
	x = expect_push(pg, X_DENIED);
	x->deny = msg;
	if (sync) {
		mb_start(&m, 'S');
		mb_send(pg, PROTO_TO_UPSTREAM, &m);
		expect_push(pg, X_SYNC);
	}
	session_count(pg->s, 1, 1, 0);
	return 0;
}

/* ------------------------------------------------------ agent messages */

/* Room for a message of @len bytes to go on, and its expectation. */
static bool room_for(struct pg *pg, enum proto_dir dir, size_t len)
{
	return iobuf_room(session_out(pg->s, dir)) >= len + 64 &&
	       pg->qlen + 2 < pg->qcap;
}

static int forward(struct pg *pg, const uint8_t *msg, size_t len)
{
	return iobuf_append(session_out(pg->s, PROTO_TO_UPSTREAM), msg, len);
}

/* A NUL-terminated string at @p within @end, or NULL. */
static const char *cstr(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	const char *s = (const char *)*p;

	if (!z)
		return NULL;
	*p = z + 1;
	return s;
}

/* A request's record: its type, statement name and text, parameters
 * (formatted by hand: every request has one). */
static uint64_t rec_request(struct pg *pg, const char *type, const char *name,
			    const char *text, const char *params)
{
	struct record_buf *b = &pg->rb;

	if (!session_recorded(pg->s))
		return session_record_request(pg->s, NULL);
	record_buf_reset(b);
	record_buf_str(b, "type", type, 32);
	if (name && *name)
		record_buf_str(b, "name", name, 256);
	if (text) {
		size_t n = strlen(text);

		record_buf_str(b, "statement", text, PG_REC_TEXT_MAX);
		if (n > PG_REC_TEXT_MAX)
			record_buf_int(b, "statement_bytes", (long long)n);
	}
	if (params)
		record_buf_raw(b, "params", params);
	return session_record_request(pg->s, b);
}

/* The result of request x->req so far, as a "response" record. */
static void rec_response(struct pg *pg, struct pg_expect *x, const char *status,
			 const char *sqlstate, const char *message)
{
	struct record_buf *b = &pg->rb;

	if (x->req && session_recorded(pg->s)) {
		record_buf_reset(b);
		record_buf_int(b, "req", (long long)x->req);
		record_buf_str(b, "status", status, 256);
		record_buf_int(b, "rows", (long long)x->rows);
		record_buf_int(b, "bytes", (long long)x->bytes);
		record_buf_int(b, "masked", (long long)x->masked);
		if (sqlstate)
			record_buf_str(b, "sqlstate", sqlstate, 16);
		/* The text of an error about masked data may quote it. */
		if (message && !x->mask_computed)
			record_buf_str(b, "message", message, 1024);
		session_record_buf(pg->s, "response", b);
	}
	x->rows = x->bytes = x->masked = 0;
}

/* A message of the result of the request at the head, @len bytes. */
static void rec_account(struct pg *pg, char type, size_t len)
{
	struct pg_expect *x = expect_head(pg);

	if (!x || (x->kind != X_QUERY && x->kind != X_EXECUTE))
		return;
	x->bytes += len;
	if (type == 'D')
		x->rows++;
}

static int parse_allowed(struct pg *pg, const uint8_t *raw, size_t len,
			 struct pg_stmt *st, uint64_t req);
static int deny_extended(struct pg *pg, char *msg);

/* A review's event in the recording and the session log. */
static void review_event(struct pg *pg, const char *event, json_t *fields)
{
	json_object_set_new(fields, "event", json_string(event));
	session_record(pg->s, "review", json_deep_copy(fields));
	session_log_event(pg->s, "review", fields, false);
}

/*
 * A simple query, or a Parse (@st, which it takes when it holds), that
 * decision @d sends to review: a grant for requests like it lets it
 * through (returns 1); else a review is opened, the agent told with a
 * notice, and the message held (returns 0) until the review ends
 * (pg_tick). Returns -errno on failure.
 */
static int hold_request(struct pg *pg, const uint8_t *raw, size_t len,
			const char *text, const struct policy_decision *d,
			const char *what, const char *logged, uint64_t req,
			struct pg_stmt *st)
{
	struct enforcer *e = session_enforcer(pg->s);
	const struct identity_user *u = session_user(pg->s);
	const char *user = u && u->u.sub ? u->u.sub : NULL;
	struct review_request q = {
		.session = session_id(pg->s),
		.workload = session_workload_name(pg->s),
		.target = session_target_name(pg->s),
		.rule = d->rule,
		.message = d->message,
		.user = user,
		.summary = what,
		.statement = logged,
		.timeout_s = d->timeout_s,
		.approvers = d->approvers,
	};
	PgQueryFingerprintResult fp = pg_query_fingerprint(text);
	/* The reviewer sees all of it (literals replaced), not the decision
	 * log's first KiB: every statement of it runs once approved. */
	PgQueryNormalizeResult norm = pg_query_normalize(text);
	char msg[768], hint[256];
	uint64_t id, grant;
	int64_t now = log_wall_ms();

	q.fingerprint = fp.error ? 0 : fp.fingerprint;
	pg_query_free_fingerprint_result(fp);
	if (!norm.error && norm.normalized_query)
		q.statement = norm.normalized_query;
	grant = q.fingerprint ? review_grant_match(e->reviews, q.fingerprint,
						   q.workload, q.target, user,
						   d->rule, now) :
				0;
	if (grant) {
		pg_query_free_normalize_result(norm);
		session_review_line(pg->s, "grant_used", 0, d->rule, NULL, NULL,
				    grant);
		review_event(pg, "grant_used",
			     json_pack("{s:I,s:I,s:s}", "req", (json_int_t)req,
				       "grant", (json_int_t)grant, "rule",
				       d->rule));
		return 1;
	}
	{
		struct policy_input in;

		session_policy_input(pg->s, &in);
		q.exe = in.exe;
		q.pid = in.pid;
		q.uid = in.uid;
	}
	id = review_open(e->reviews, &q, now);
	pg_query_free_normalize_result(norm);
	if (!id)
		return -ENOMEM;
	webhook_send(e->webhook, "review.opened",
		     review_get_json(e->reviews, id, now));
	pg->held = malloc(len);
	pg->held_rule = strdup(d->rule);
	if (!pg->held || !pg->held_rule) {
		review_cancel(e->reviews, id, now);
		free(pg->held);
		free(pg->held_rule);
		pg->held = NULL;
		pg->held_rule = NULL;
		return -ENOMEM;
	}
	memcpy(pg->held, raw, len);
	pg->held_len = len;
	pg->held_review = id;
	pg->held_told = false;
	if (pg->cancel) {
		pthread_mutex_lock(&cancel_lock);
		pg->cancel->review = id;
		pthread_mutex_unlock(&cancel_lock);
	}
	pg->held_req = req;
	pg->held_stmt = st;
	snprintf(msg, sizeof(msg),
		 "bridle: %s is held for review %llu (rule \"%s\"%s%s); it "
		 "runs once a reviewer approves it, and fails if it is "
		 "rejected or not decided within %u s",
		 what, (unsigned long long)id, d->rule, d->message ? ": " : "",
		 d->message ? d->message : "",
		 d->timeout_s ? d->timeout_s : POLICY_REVIEW_TIMEOUT_S);
	snprintf(hint, sizeof(hint),
		 "a reviewer runs: bridle approve %llu [--for 10m] | bridle "
		 "reject %llu --reason ...",
		 (unsigned long long)id, (unsigned long long)id);
	review_event(pg, "opened",
		     json_pack("{s:I,s:I,s:s,s:I}", "req", (json_int_t)req,
			       "review", (json_int_t)id, "rule", d->rule,
			       "timeout_s",
			       (json_int_t)(d->timeout_s ?
						    d->timeout_s :
						    POLICY_REVIEW_TIMEOUT_S)));
	/* The message is held (and consumed): a notice that finds no room
	 * (pg_on_data keeps 2 KiB free) must not make it be read again. */
	(void)send_error(pg, true, "NOTICE", "01000", msg, NULL, hint);
	return 0;
}

/* The held query goes upstream, as if it had been allowed. */
static int release_held(struct pg *pg, const struct review_outcome *o)
{
	const char *text = (const char *)pg->held + 5, *rf;
	char logged[1024];
	struct sql_result r;
	struct pg_expect *x;
	int ret;

	session_review_line(pg->s, "approved", pg->held_review, pg->held_rule,
			    o->by, o->reason, o->grant);
	review_event(pg, "approved",
		     json_pack("{s:I,s:I,s:s,s:s,s:I}", "req",
			       (json_int_t)pg->held_req, "review",
			       (json_int_t)pg->held_review, "by", o->by,
			       "reason", o->reason, "grant",
			       (json_int_t)o->grant));
	if (pg->held_stmt) {
		/* A Parse: its statement becomes known, as if allowed. */
		struct pg_stmt *st = pg->held_stmt;

		pg->held_stmt = NULL;
		note_allowed(pg, &st->cls, st->text,
			     st->logged ? st->logged : "", NULL);
		st->reads_masked = reads_masked(pg, &st->cls);
		st->gen = pg->gen;
		return parse_allowed(pg, pg->held, pg->held_len, st,
				     pg->held_req);
	}
	if ((rf = session_record_commit(pg->s)))
		return deny_upstream(pg, strdup(rf), true);
	if (sql_classify(text, NULL, &r))
		return deny_upstream(pg,
				     strdup("bridle: statement not "
					    "understood"),
				     true);
	log_text(pg, 0, text, logged, sizeof(logged));
	x = expect_push(pg, X_QUERY);
	x->req = pg->held_req;
	note_allowed(pg, &r, text, logged, x);
	x->mask_computed = reads_masked(pg, &r);
	sql_result_free(&r);
	session_count(pg->s, 1, 0, 0);
	ret = forward(pg, pg->held, pg->held_len);
	return ret;
}

static void held_free(struct pg *pg)
{
	if (pg->cancel) {
		pthread_mutex_lock(&cancel_lock);
		pg->cancel->review = 0;
		pthread_mutex_unlock(&cancel_lock);
	}
	if (pg->held_stmt)
		stmt_unref(pg->held_stmt);
	pg->held_stmt = NULL;
	free(pg->held);
	free(pg->held_rule);
	pg->held = NULL;
	pg->held_rule = NULL;
	pg->held_len = 0;
	pg->held_review = 0;
}

/* Tick: a held query whose review ended goes on or fails. Returns 1
 * when there is something to send. */
static int pg_tick(struct session *s, uint64_t now_ms)
{
	struct pg *pg = session_state(s);
	struct enforcer *e = session_enforcer(s);
	struct review_outcome o = {};
	enum review_state st;
	char *msg = NULL;
	int ret;

	(void)now_ms;
	if (!pg || !pg->held)
		return 0;
	st = review_poll(e->reviews, pg->held_review, log_wall_ms(), &o);
	if (st == REVIEW_PENDING) {
		/* Waiting on a person is not idling: the rule's timeout,
		 * not idle_timeout_ms, bounds it. */
		session_keepalive(s);
		return 0;
	}
	if (!pg->held_told) {
		pg->held_told = true;
		webhook_send(e->webhook, "review.closed",
			     review_get_json(e->reviews, pg->held_review,
					     log_wall_ms()));
	}
	/* Room for the query or the denial (else: the next tick). */
	if (!room_for(pg, PROTO_TO_UPSTREAM, pg->held_len) ||
	    !room_for(pg, PROTO_TO_AGENT, 2048))
		return 0;
	if (st == REVIEW_APPROVED) {
		ret = release_held(pg, &o);
	} else {
		if (asprintf(&msg,
			     "bridle: review %llu %s%s%s%s%s (rule \"%s\")",
			     (unsigned long long)pg->held_review,
			     st == REVIEW_REJECTED ? "rejected" :
			     st == REVIEW_EXPIRED  ? "expired" :
						     "ended",
			     o.by[0] ? " by " : "", o.by,
			     o.reason[0] ? ": " : "", o.reason,
			     pg->held_rule) < 0)
			msg = NULL;
		session_review_line(pg->s, review_state_name(st),
				    pg->held_review, pg->held_rule, o.by,
				    o.reason, 0);
		review_event(pg, review_state_name(st),
			     json_pack("{s:I,s:I,s:s,s:s}", "req",
				       (json_int_t)pg->held_req, "review",
				       (json_int_t)pg->held_review, "by", o.by,
				       "reason", o.reason));
		msg = msg ? msg : strdup("bridle: rejected");
		ret = pg->held_stmt ? deny_extended(pg, msg) :
				      deny_upstream(pg, msg, true);
	}
	held_free(pg);
	if (ret)
		session_finish(s, "cannot continue after a review");
	return 1;
}

static int on_query(struct pg *pg, const uint8_t *raw, size_t len,
		    const struct pg_msg *m)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;
	const char *text = cstr(&p, end);
	struct sql_result r;
	struct pg_expect *x;
	bool denied;
	char *msg;

	size_t klen, target;
	uint64_t hash = 0;
	struct pg_cache_entry *c;
	struct policy_decision dec;
	struct policy *pol;
	char what[160], logged[1024];
	const char *rf;
	uint64_t req;

	if (!text || p != end)
		return fatal(pg, "08P01", "bridle: malformed Query message");
	req = rec_request(pg, "query", NULL, text, NULL);
	pol = current_policy(pg, &target);
	klen = cache_key(pg, text);
	if (klen && (c = cache_find(pg, klen, &hash))) {
		session_decision(pg->s, pol, &c->d, c->what, c->logged);
		if (c->deny) {
			log_denied(pg, text, c->deny, NULL);
			return deny_upstream(pg, strdup(c->deny), true);
		}
		if ((rf = session_record_commit(pg->s)))
			return deny_upstream(pg, strdup(rf), true);
		x = expect_push(pg, X_QUERY);
		x->req = req;
		x->mask_computed = c->reads_masked;
		session_count(pg->s, 1, 0, 0);
		return forward(pg, raw, len);
	}
	log_text(pg, klen, text, logged, sizeof(logged));
	if (sql_classify(text, NULL, &r)) {
		char *why = NULL;

		if (asprintf(&why,
			     "bridle: statement not understood, so not "
			     "allowed: %s",
			     r.error) < 0)
			why = NULL;
		sql_result_free(&r);
		log_denied(pg, text, why ? why : "unparseable", logged);
		return deny_upstream(pg, why ? why : strdup("bridle: denied"),
				     true);
	}
	msg = decide(pg, &r, logged, &denied, &dec, what, sizeof(what));
	if (denied && dec.action == POLICY_REVIEW) {
		/* Held for a person (never cached: each one is asked). */
		int held = hold_request(pg, raw, len, text, &dec, what, logged,
					req, NULL);

		if (held <= 0) {
			free(msg);
			sql_result_free(&r);
			return held;
		}
		/* A grant lets it through. */
		free(msg);
		msg = NULL;
		denied = false;
	} else if (klen && cacheable(&r))
		cache_store(pg, hash,
			    denied ? (msg ? msg : "bridle: denied") : NULL,
			    !denied && reads_masked(pg, &r), &dec, what,
			    logged);
	if (denied) {
		sql_result_free(&r);
		log_denied(pg, text, msg ? msg : "denied", NULL);
		return deny_upstream(pg, msg ? msg : strdup("bridle: denied"),
				     true);
	}
	if ((rf = session_record_commit(pg->s))) {
		sql_result_free(&r);
		return deny_upstream(pg, strdup(rf), true);
	}
	x = expect_push(pg, X_QUERY);
	x->req = req;
	note_allowed(pg, &r, text, logged, x);
	x->mask_computed = reads_masked(pg, &r);
	sql_result_free(&r);
	session_count(pg->s, 1, 0, 0);
	return forward(pg, raw, len);
}

static int deny_extended(struct pg *pg, char *msg)
{
	pg->discard = true;
	return deny_upstream(pg, msg, false);
}

static int on_parse(struct pg *pg, const uint8_t *raw, size_t len,
		    const struct pg_msg *m)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;
	const char *name = cstr(&p, end), *text = name ? cstr(&p, end) : NULL;
	struct pg_stmt *st;
	bool denied;
	char *msg, what[160], logged[1024];
	struct policy_decision dec;
	uint64_t req;

	if (!text || end - p < 2)
		return fatal(pg, "08P01", "bridle: malformed Parse message");
	req = rec_request(pg, "parse", name, text, NULL);
	if (strncmp(name, "bridle", 6) == 0) {
		refused_line(pg, "reserved statement name",
			     "(a Parse of a statement named bridle…)");
		return deny_extended(pg, strdup("bridle: statement names "
						"starting with \"bridle\" "
						"are reserved"));
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->refs = 1;
	st->name = strdup(name);
	st->text = strdup(text);
	if (!st->name || !st->text) {
		stmt_unref(st);
		return -ENOMEM;
	}
	{
		size_t target, klen;
		uint64_t hash = 0;
		struct pg_cache_entry *c;

		struct policy *pol = current_policy(pg, &target);

		klen = cache_key(pg, text);
		if (klen && (c = cache_find(pg, klen, &hash))) {
			session_decision(pg->s, pol, &c->d, c->what, c->logged);
			/* A later Execute may decide it again (after a
			 * reload, on expiry): with this text. */
			st->logged = strdup(c->logged);
			if (c->deny) {
				log_denied(pg, text, c->deny, NULL);
				stmt_unref(st);
				return deny_extended(pg, strdup(c->deny));
			}
			st->reads_masked = c->reads_masked;
			st->gen = pg->gen;
			goto allowed;
		}
		st->cache_hash = hash;
		st->cache_klen = klen;
		log_text(pg, klen, text, logged, sizeof(logged));
		st->logged = strdup(logged);
	}
	if (sql_classify(text, NULL, &st->cls)) {
		char *why = NULL;

		if (asprintf(&why,
			     "bridle: statement not understood, so not "
			     "allowed: %s",
			     st->cls.error) < 0)
			why = NULL;
		log_denied(pg, text, why ? why : "unparseable", logged);
		stmt_unref(st);
		return deny_extended(pg, why ? why : strdup("bridle: denied"));
	}
	st->cls_ok = true;
	if (st->cls.nstmts == 1 && (st->cls.stmts[0].command == SQL_PREPARE ||
				    st->cls.stmts[0].command == SQL_EXECUTE)) {
		log_denied(pg, text, "SQL PREPARE/EXECUTE in a Parse message",
			   logged);
		stmt_unref(st);
		return deny_extended(
			pg, strdup("bridle: PREPARE and EXECUTE go in a simple "
				   "query, not in a Parse message"));
	}
	if (st->cls.nstmts > 1) {
		log_denied(pg, text, "several statements in one Parse", logged);
		stmt_unref(st);
		return deny_extended(
			pg, strdup("bridle: a prepared statement must be "
				   "one statement"));
	}
	msg = decide(pg, &st->cls, logged, &denied, &dec, what, sizeof(what));
	if (denied && dec.action == POLICY_REVIEW) {
		/* Held for a person, with its statement (never cached). */
		int held = hold_request(pg, raw, len, text, &dec, what, logged,
					req, st);

		free(msg);
		if (held < 0)
			stmt_unref(st);
		if (held <= 0)
			return held;
		msg = NULL; /* a grant lets it through */
		denied = false;
	} else if (st->cache_klen && cacheable(&st->cls))
		cache_store(pg, st->cache_hash,
			    denied ? (msg ? msg : "bridle: denied") : NULL,
			    !denied && reads_masked(pg, &st->cls), &dec, what,
			    logged);
	if (denied) {
		log_denied(pg, text, msg ? msg : "denied", NULL);
		stmt_unref(st);
		return deny_extended(pg, msg ? msg : strdup("bridle: denied"));
	}
	note_allowed(pg, &st->cls, text, logged, NULL);
	st->reads_masked = reads_masked(pg, &st->cls);
	st->gen = pg->gen;
allowed:
	return parse_allowed(pg, raw, len, st, req);
}

/* A Parse that may go on (it takes @st): its statement is known from now
 * on, and the server's answer is expected. */
static int parse_allowed(struct pg *pg, const uint8_t *raw, size_t len,
			 struct pg_stmt *st, uint64_t req)
{
	/* Its records are written with the Execute's (or within 100 ms):
	 * a Parse runs nothing, and no Execute of it goes upstream before
	 * they are on disk. A recording already broken refuses it. */
	if (session_record_refusing(pg->s)) {
		stmt_unref(st);
		return deny_extended(pg, strdup(session_record_commit(pg->s)));
	}
	/* It shadows the statement of its name until the server confirms
	 * it (ParseComplete); the server refuses a named one that exists. */
	st->pending = true;
	st->next = pg->stmts;
	pg->stmts = st;
	{
		struct pg_expect *x = expect_push(pg, X_PARSE);

		x->req = req;
		x->stmt = st;
		st->refs++;
	}
	return forward(pg, raw, len);
}

/* One Bind parameter of @len bytes at @v (-1: NULL) in format @fmt, as
 * the recording shows it, into @b: text, or binary as "\\x" and hex. */
static void rec_param(struct record_buf *b, const uint8_t *v, int32_t len,
		      uint16_t fmt)
{
	static const char hexd[] = "0123456789abcdef";
	char buf[2 + 2 * PG_REC_BINARY_MAX + 1];
	size_t n;

	if (len < 0) {
		record_buf_put(b, "null");
		return;
	}
	if (fmt == 0) {
		char *t = strndup((const char *)v,
				  (size_t)len < PG_REC_PARAM_MAX ?
					  (size_t)len :
					  PG_REC_PARAM_MAX);

		if (!t)
			b->failed = true;
		else
			record_buf_put_str(b, t, PG_REC_PARAM_MAX);
		free(t);
		return;
	}
	n = (size_t)len < PG_REC_BINARY_MAX ? (size_t)len : PG_REC_BINARY_MAX;
	buf[0] = '\\';
	buf[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		buf[2 + 2 * i] = hexd[v[i] >> 4];
		buf[3 + 2 * i] = hexd[v[i] & 15];
	}
	buf[2 + 2 * n] = '\0';
	record_buf_put_str(b, buf, sizeof(buf) + 8);
}

static int on_bind(struct pg *pg, const uint8_t *raw, size_t len,
		   const struct pg_msg *m)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;
	const char *portal = cstr(&p, end),
		   *sname = portal ? cstr(&p, end) : NULL;
	const uint8_t *pfmt = NULL;
	struct pg_stmt *st;
	struct pg_portal *po;
	struct record_buf params = {};
	bool rec = session_recorded(pg->s);
	uint16_t n, npfmt = 0;

	if (!sname || end - p < 2)
		return fatal(pg, "08P01", "bridle: malformed Bind message");
	st = stmt_find(pg, sname);
	if (!st)
		return deny_extended(pg,
				     strdup("bridle: unknown prepared "
					    "statement: it was not prepared "
					    "through bridle"));
	/* Skip parameter formats and values to the result formats (and
	 * keep the values for the recording). */
	n = pg_get16(p);
	p += 2;
	if ((size_t)(end - p) < (size_t)n * 2 + 2)
		return fatal(pg, "08P01", "bridle: malformed Bind message");
	pfmt = p;
	npfmt = n;
	p += (size_t)n * 2;
	n = pg_get16(p);
	p += 2;
	if (rec && n)
		record_buf_put(&params, "[");
	for (uint16_t i = 0; i < n; i++) {
		int32_t l;

		if (end - p < 4) {
			record_buf_free(&params);
			return fatal(pg, "08P01",
				     "bridle: malformed Bind message");
		}
		l = (int32_t)pg_get32(p);
		p += 4;
		if (l > 0 && (size_t)(end - p) < (size_t)l) {
			record_buf_free(&params);
			return fatal(pg, "08P01",
				     "bridle: malformed Bind message");
		}
		if (rec && i < PG_REC_PARAMS_MAX) {
			if (i)
				record_buf_put(&params, ",");
			rec_param(&params, p, l,
				  npfmt == 0 ? 0 :
				  npfmt == 1 ? pg_get16(pfmt) :
					       (i < npfmt ?
							pg_get16(pfmt + 2 * i) :
							0));
		}
		if (l > 0)
			p += l;
	}
	if (rec && n)
		record_buf_put(&params, "]");
	if (end - p < 2 || (size_t)(end - p) != (size_t)pg_get16(p) * 2 + 2) {
		record_buf_free(&params);
		return fatal(pg, "08P01", "bridle: malformed Bind message");
	}
	n = pg_get16(p);
	p += 2;
	po = calloc(1, sizeof(*po));
	if (!po) {
		record_buf_free(&params);
		return -ENOMEM;
	}
	/* Its parameters as JSON text (none when the buffer failed: the
	 * record says less, never something broken). */
	po->params = params.failed ? NULL : params.p;
	if (params.failed)
		record_buf_free(&params);
	po->refs = 1;
	po->pending = true;
	po->name = strdup(portal);
	po->formats = calloc(n ? n : 1, sizeof(*po->formats));
	if (!po->name || !po->formats) {
		portal_free(po);
		return -ENOMEM;
	}
	for (uint16_t i = 0; i < n; i++)
		po->formats[i] = (int16_t)pg_get16(p + 2 * i);
	po->nformats = n;
	po->stmt = st;
	st->refs++;
	po->next = pg->portals;
	pg->portals = po;
	{
		struct pg_expect *x = expect_push(pg, X_BIND);

		x->portal = po;
		po->refs++;
	}
	return forward(pg, raw, len);
}

static int inject_describe_portal(struct pg *pg, struct pg_portal *po)
{
	struct pg_expect *x;
	struct msgb m;

	mb_start(&m, 'D');
	mb_bytes(&m, "P", 1);
	mb_str(&m, po->name);
	if (mb_send(pg, PROTO_TO_UPSTREAM, &m))
		return -ENOBUFS;
	x = expect_push(pg, X_DESCRIBE_P);
	x->hidden = true;
	x->portal = po;
	po->refs++;
	return 0;
}

/* Is a Describe of portal @po already on its way? */
static bool describe_pending(struct pg *pg, const struct pg_portal *po)
{
	for (size_t i = 0; i < pg->qlen; i++) {
		const struct pg_expect *x = &pg->q[(pg->qhead + i) % pg->qcap];

		if (x->kind == X_DESCRIBE_P && x->portal == po)
			return true;
	}
	return false;
}

static int on_execute(struct pg *pg, const uint8_t *raw, size_t len,
		      const struct pg_msg *m)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;
	const char *name = cstr(&p, end);
	struct pg_portal *po;
	struct pg_expect *x;
	const char *rf;
	uint64_t req;
	int ret;

	if (!name || end - p != 4)
		return fatal(pg, "08P01", "bridle: malformed Execute message");
	po = portal_find(pg, name);
	if (!po || !po->stmt)
		return deny_extended(pg, strdup("bridle: unknown portal"));
	req = rec_request(pg, "execute", po->stmt->name, po->stmt->text,
			  po->params);
	/* Decided at Parse; again here when the policy changed since, so
	 * that a statement prepared before a reload runs under the new
	 * policy. */
	{
		size_t target;

		current_policy(pg, &target);
	}
	if (po->stmt->gen != pg->gen || user_expired(pg)) {
		bool denied;
		char *msg, what[160];
		struct policy_decision dec;

		if (!po->stmt->cls_ok) {
			if (sql_classify(po->stmt->text, NULL, &po->stmt->cls))
				return deny_extended(
					pg, strdup("bridle: statement not "
						   "understood, so not "
						   "allowed"));
			po->stmt->cls_ok = true;
		}
		msg = decide(pg, &po->stmt->cls,
			     po->stmt->logged ? po->stmt->logged :
						"(a prepared statement)",
			     &denied, &dec, what, sizeof(what));

		if (denied) {
			log_denied(pg, po->stmt->text, msg ? msg : "denied",
				   NULL);
			return deny_extended(
				pg, msg ? msg : strdup("bridle: denied"));
		}
		po->stmt->gen = pg->gen;
	}
	if ((rf = session_record_commit(pg->s)))
		return deny_extended(pg, strdup(rf));
	/* Masking needs the columns; the agent may never have asked. */
	if (plan_masks_anything(pg) && !po->described &&
	    !describe_pending(pg, po)) {
		ret = inject_describe_portal(pg, po);
		if (ret)
			return ret;
	}
	x = expect_push(pg, X_EXECUTE);
	x->req = req;
	x->portal = po;
	po->refs++;
	if (po->stmt->cls_ok && po->stmt->cls.nstmts == 1 &&
	    po->stmt->cls.stmts[0].command == SQL_COPY &&
	    !po->stmt->cls.stmts[0].copy_out)
		pg->copy_expected = true;
	x->mask_computed = po->stmt->reads_masked;
	x->cols = cols_ref(po->cols);
	session_count(pg->s, 1, 0, 0);
	return forward(pg, raw, len);
}

static int on_describe(struct pg *pg, const uint8_t *raw, size_t len,
		       const struct pg_msg *m)
{
	const uint8_t *p = m->body + 1, *end = m->body + m->body_len;
	const char *name;
	struct pg_expect *x;

	if (m->body_len < 2 || !(name = cstr(&p, end)) || p != end ||
	    (m->body[0] != 'S' && m->body[0] != 'P'))
		return fatal(pg, "08P01", "bridle: malformed Describe message");
	if (m->body[0] == 'S') {
		struct pg_stmt *st = stmt_find(pg, name);

		if (!st)
			return deny_extended(pg,
					     strdup("bridle: unknown prepared "
						    "statement"));
		x = expect_push(pg, X_DESCRIBE_S);
		x->stmt = st;
		st->refs++;
	} else {
		struct pg_portal *po = portal_find(pg, name);

		if (!po)
			return deny_extended(pg,
					     strdup("bridle: unknown portal"));
		x = expect_push(pg, X_DESCRIBE_P);
		x->portal = po;
		po->refs++;
	}
	return forward(pg, raw, len);
}

static int on_close(struct pg *pg, const uint8_t *raw, size_t len,
		    const struct pg_msg *m)
{
	const uint8_t *p = m->body + 1, *end = m->body + m->body_len;
	const char *name;

	if (m->body_len < 2 || !(name = cstr(&p, end)) || p != end ||
	    (m->body[0] != 'S' && m->body[0] != 'P'))
		return fatal(pg, "08P01", "bridle: malformed Close message");
	if (m->body[0] == 'S')
		stmt_remove(pg, name);
	else
		portal_remove(pg, name);
	expect_push(pg, X_CLOSE);
	return forward(pg, raw, len);
}

/* One whole message from the agent in PH_READY. */
static int agent_message(struct pg *pg, const uint8_t *raw, size_t len,
			 const struct pg_msg *m)
{
	if (m->type == 'c' || m->type == 'f')
		pg->copy_expected = false;
	if (pg->copy_in && (m->type == 'd' || m->type == 'c' || m->type == 'f'))
		return forward(pg, raw, len);
	if (pg->discard && m->type != 'S' && m->type != 'X')
		return 0;
	switch (m->type) {
	case 'Q':
		return on_query(pg, raw, len, m);
	case 'P':
		return on_parse(pg, raw, len, m);
	case 'B':
		return on_bind(pg, raw, len, m);
	case 'E':
		return on_execute(pg, raw, len, m);
	case 'D':
		return on_describe(pg, raw, len, m);
	case 'C':
		return on_close(pg, raw, len, m);
	case 'S':
		pg->discard = false;
		if (!pg->copy_expected)
			expect_push(pg, X_SYNC);
		return forward(pg, raw, len);
	case 'H':
		return forward(pg, raw, len);
	case 'X':
		pg->phase = PH_DONE;
		return forward(pg, raw, len);
	case 'F':
		rec_request(pg, "function", NULL, NULL, NULL);
		log_denied(pg, "(FunctionCall)", "FunctionCall refused",
			   "(FunctionCall)");
		return deny_upstream(pg,
				     strdup("bridle: the FunctionCall message "
					    "is not allowed; call the function "
					    "in a query"),
				     true);
	case 'd':
	case 'c':
	case 'f':
		/* Copy messages outside COPY: the server ignores them after
		 * CopyFail/CopyDone; pass them so its answer stays exact. */
		return forward(pg, raw, len);
	default: {
		char why[80];

		snprintf(why, sizeof(why),
			 "bridle: unexpected message type 0x%02x from the "
			 "client",
			 (unsigned char)m->type);
		return fatal(pg, "08P01", why);
	}
	}
}

/* ------------------------------------------------------------ startup */

static char *read_secret(const struct policy_credentials *c, char *err,
			 size_t errlen)
{
	char buf[1024];
	ssize_t n;
	int fd;

	if (c->password_env) {
		const char *v = getenv(c->password_env);

		if (!v) {
			snprintf(err, errlen,
				 "environment variable %s is not set",
				 c->password_env);
			return NULL;
		}
		return strdup(v);
	}
	fd = open(c->password_file, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		snprintf(err, errlen, "cannot read %s: %s", c->password_file,
			 strerror(errno));
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", c->password_file,
			 strerror(errno));
		return NULL;
	}
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return strdup(buf);
}

static void wipe_password(struct pg *pg)
{
	if (pg->password) {
		OPENSSL_cleanse(pg->password, strlen(pg->password));
		free(pg->password);
		pg->password = NULL;
	}
	scram_client_clear(&pg->scram);
}

/* Startup parameters passed on; the rest are refused or replaced. */
static const char *const passed_params[] = {
	"application_name",   "client_encoding",    "DateStyle", "TimeZone",
	"extra_float_digits", "IntervalStyle",	    "datestyle", "timezone",
	"intervalstyle",      "search_path_unused", NULL,
};

static bool param_passed(const char *k)
{
	for (int i = 0; passed_params[i]; i++)
		if (strcmp(k, passed_params[i]) == 0)
			return true;
	return false;
}

static int on_cancel(struct pg *pg, const struct pg_startup *st)
{
	uint32_t up_pid, up_key;
	uint64_t review = 0;
	int family;
	uint8_t addr[16];
	uint16_t port;
	uint8_t msg[16];

	session_orig(pg->s, &family, addr, &port);
	pg->phase = PH_DONE;
	if (!cancel_find(st->cancel_pid, st->cancel_key,
			 session_workload(pg->s), family, addr, port, &up_pid,
			 &up_key, &review)) {
		session_finish(pg->s, "cancel request with an unknown key");
		return 0;
	}
	/* A request held for review is what the agent cancels: the review
	 * ends (its session's tick tells the agent). */
	if (review) {
		char err[128];

		/* The agent may always withdraw its own request. */
		struct review_decider d = { .by = "agent" };

		review_cancel_by(session_enforcer(pg->s)->reviews, review, &d,
				 "cancelled by the agent", log_wall_ms());
		(void)err;
	}
	pg_put32(msg, 16);
	pg_put32(msg + 4, PG_CANCEL_REQUEST_CODE);
	pg_put32(msg + 8, up_pid);
	pg_put32(msg + 12, up_key);
	session_log_event(pg->s, "cancel_request", json_object(), false);
	if (forward(pg, msg, sizeof(msg)))
		return -ENOBUFS;
	/* The server closes after a cancel request: so do we, once sent. */
	return 0;
}

static int start_upstream(struct pg *pg, const struct policy_target *t);

static int on_startup(struct pg *pg, const struct pg_startup *st)
{
	size_t target;
	struct policy *p = session_policy(pg->s, &target, NULL);
	const struct policy_target *t = policy_target_at(p, target);
	const struct pg_str *db = pg_startup_param(st, "database");
	const struct pg_str *user = pg_startup_param(st, "user");
	char err[512], msg[768];
	struct msgb m;

	if (!t)
		return fatal(pg, "28000",
			     "bridle: the target is no longer in the policy");
	if ((st->version >> 16) != 3)
		return fatal(pg, "0A000",
			     "bridle: unsupported frontend protocol version");
	for (size_t i = 0; i < st->nparams; i++) {
		const char *k = st->keys[i].p;

		if (!strcmp(k, "replication") || !strcmp(k, "options")) {
			snprintf(msg, sizeof(msg),
				 "bridle: the startup parameter \"%s\" is not "
				 "allowed through bridle",
				 k);
			return fatal(pg, "28000", msg);
		}
	}
	if (!user)
		return fatal(pg, "28000",
			     "bridle: no user name in the startup packet");
	pg->user = strdup(t->creds.user);
	if (t->creds.database) {
		if (db && strcmp(db->p, t->creds.database)) {
			snprintf(msg, sizeof(msg),
				 "bridle: target \"%s\" serves database "
				 "\"%s\" only",
				 t->name, t->creds.database);
			return fatal(pg, "3D000", msg);
		}
		pg->database = strdup(t->creds.database);
	} else {
		pg->database = strdup(db ? db->p : user->p);
	}
	pg->password = read_secret(&t->creds, err, sizeof(err));
	if (!pg->password) {
		log_msg(LOG_ERROR, "pg", "target %s: credentials: %s", t->name,
			err);
		snprintf(msg, sizeof(msg),
			 "bridle: the credentials of target \"%s\" cannot be "
			 "read (see bridle's log)",
			 t->name);
		return fatal(pg, "28000", msg);
	}
	if (!pg->user || !pg->database)
		return -ENOMEM;
	session_record(pg->s, "login",
		       json_pack("{s:o,s:o,s:o}", "database",
				 log_utf8_json(pg->database, 256), "db_user",
				 log_utf8_json(pg->user, 256), "agent_user",
				 log_utf8_json(user->p, 256)));
	/* Protocol 3.0 upstream, whatever minor version the agent asked
	 * for; the agent is told when it asked for more. */
	if ((st->version & 0xffff) != 0) {
		mb_start(&m, 'v');
		mb_u32(&m, PG_PROTOCOL_V3);
		mb_u32(&m, 0);
		if (mb_send(pg, PROTO_TO_AGENT, &m))
			return -ENOBUFS;
	}
	mb_start(&m, 0);
	mb_u32(&m, PG_PROTOCOL_V3);
	mb_str(&m, "user");
	mb_str(&m, pg->user);
	mb_str(&m, "database");
	mb_str(&m, pg->database);
	for (size_t i = 0; i < st->nparams; i++)
		if (param_passed(st->keys[i].p)) {
			mb_str(&m, st->keys[i].p);
			mb_str(&m, st->values[i].p);
		}
	mb_bytes(&m, "", 1);
	if (m.overflow)
		return fatal(pg, "08P01", "bridle: startup packet too large");
	/* The startup packet has no type byte: send from offset 1. It is
	 * held until the agent's token is checked and TLS is up. */
	pg_put32(m.buf + 1, (uint32_t)(m.len - 1));
	pg->startup = malloc(m.len - 1);
	if (!pg->startup)
		return -ENOMEM;
	memcpy(pg->startup, m.buf + 1, m.len - 1);
	pg->startup_len = m.len - 1;
	if (t->require_user) {
		/* AuthenticationCleartextPassword: the password is the
		 * user's token. */
		static const uint8_t ask[] = { 'R', 0, 0, 0, 8, 0, 0, 0, 3 };

		if (iobuf_append(session_out(pg->s, PROTO_TO_AGENT), ask,
				 sizeof(ask)))
			return -ENOBUFS;
		pg->phase = PH_TOKEN;
		return 0;
	}
	return start_upstream(pg, t);
}

/* Send the held startup packet on: after TLS when the target wants it
 * (never in the clear to a target that requires TLS). */
static int start_upstream(struct pg *pg, const struct policy_target *t)
{
	if (t->tls != POLICY_TLS_DISABLE) {
		static const uint8_t sslreq[8] = { 0,	 0,    0,    8,
						   0x04, 0xd2, 0x16, 0x2f };

		if (forward(pg, sslreq, sizeof(sslreq)))
			return -ENOBUFS;
		pg->phase = PH_UPSSL;
		return 0;
	}
	if (iobuf_append(session_out(pg->s, PROTO_TO_UPSTREAM), pg->startup,
			 pg->startup_len))
		return -ENOBUFS;
	free(pg->startup);
	pg->startup = NULL;
	pg->phase = PH_AUTH;
	return 0;
}

/*
 * The agent's answer to AuthenticationCleartextPassword: its user token.
 * A bad token gets 28P01; a user the policy refuses gets 28000; a good
 * one becomes the session's user, and the login goes on upstream.
 */
static int on_token(struct pg *pg, const struct pg_msg *m)
{
	size_t target, len;
	struct policy *p = session_policy(pg->s, &target, NULL);
	const struct policy_target *t = policy_target_at(p, target);
	struct identity_user *u;
	struct policy_input in;
	struct policy_decision d;
	char err[256], msg[768];

	if (!t)
		return fatal(pg, "28000",
			     "bridle: the target is no longer in the policy");
	if (m->type != 'p')
		return fatal(pg, "08P01",
			     "bridle: expected a password message carrying "
			     "the user token");
	len = strnlen((const char *)m->body, m->body_len);
	if (len + 1 != m->body_len)
		return fatal(pg, "08P01", "bridle: malformed password message");
	if (identity_authenticate(p, (const char *)m->body, len,
				  (int64_t)time(NULL), &u, err, sizeof(err))) {
		session_log_event(pg->s, "token_rejected",
				  json_pack("{s:s}", "reason", err), true);
		snprintf(msg, sizeof(msg), "bridle: user token rejected: %s",
			 err);
		return fatal(pg, "28P01", msg);
	}
	session_set_user(pg->s, u);
	session_log_event(pg->s, "user", identity_user_json(u), false);
	session_policy_input(pg->s, &in);
	policy_decide(p, &in, &d);
	session_decision(pg->s, p, &d, "login", NULL);
	if (d.action != POLICY_ALLOW || !d.target || d.target_idx != target) {
		if (d.message)
			snprintf(msg, sizeof(msg), "bridle: %s (rule \"%s\")",
				 d.message, d.rule);
		else
			snprintf(msg, sizeof(msg),
				 "bridle: user \"%s\" may not reach target "
				 "\"%s\" (rule \"%s\")",
				 u->u.sub ? u->u.sub : "?", t->name, d.rule);
		return fatal(pg, "28000", msg);
	}
	return start_upstream(pg, t);
}

/* The destination's one-byte answer to our SSLRequest. */
static int upstream_ssl_answer(struct pg *pg, struct iobuf *b)
{
	size_t target;
	struct policy *p = session_policy(pg->s, &target, NULL);
	const struct policy_target *t = policy_target_at(p, target);
	char err[512], name[INET6_ADDRSTRLEN];
	uint8_t c = b->data[b->parsed];
	const char *verify = NULL;
	SSL_CTX *ctx;
	int ret;

	if (!t)
		return fatal(pg, "28000",
			     "bridle: the target is no longer in the policy");
	if (c != 'S') {
		snprintf(err, sizeof(err),
			 "bridle: target \"%s\" does not accept TLS, and its "
			 "policy requires it",
			 t->name);
		iobuf_consume(b, iobuf_unparsed(b));
		return fatal(pg, "08001", err);
	}
	/* Bytes after the 'S' were not encrypted (CVE-2021-23222). */
	if (iobuf_unparsed(b) != 1) {
		iobuf_consume(b, iobuf_unparsed(b));
		return fatal(pg, "08P01",
			     "bridle: the server sent data after accepting "
			     "TLS");
	}
	iobuf_consume(b, 1);
	ctx = tls_client_ctx(t->tls == POLICY_TLS_VERIFY ? t->ca_file : NULL,
			     err, sizeof(err));
	if (!ctx) {
		log_msg(LOG_ERROR, "pg", "target %s: %s", t->name, err);
		return fatal(pg, "08001",
			     "bridle: cannot set up TLS to the target (see "
			     "bridle's log)");
	}
	if (t->tls == POLICY_TLS_VERIFY) {
		int family;
		uint8_t addr[16];
		uint16_t port;

		session_orig(pg->s, &family, addr, &port);
		verify = t->server_name;
		if (!verify)
			verify = inet_ntop(family, addr, name, sizeof(name));
	}
	ret = session_start_tls(pg->s, PROTO_TO_UPSTREAM, ctx, verify);
	if (ret)
		return ret;
	ret = forward(pg, pg->startup, pg->startup_len);
	if (ret)
		return ret;
	free(pg->startup);
	pg->startup = NULL;
	pg->phase = PH_AUTH;
	return 0;
}

static int agent_startup(struct pg *pg, struct iobuf *b)
{
	struct pg_startup st;
	const char *why = NULL;
	ssize_t n = pg_parse_startup(b->data + b->parsed, iobuf_unparsed(b),
				     &st, &why);

	if (n == PG_NEED_MORE)
		return 0;
	if (n < 0) {
		char msg[160];

		snprintf(msg, sizeof(msg), "bridle: invalid startup packet: %s",
			 why ? why : "?");
		iobuf_consume(b, iobuf_unparsed(b));
		return fatal(pg, "08P01", msg);
	}
	switch (st.kind) {
	case PG_SSL_REQUEST:
	case PG_GSSENC_REQUEST: {
		bool tls = st.kind == PG_SSL_REQUEST && !pg->agent_tls;
		int ret;

		/* Bytes after the request would be read as if they came
		 * over the encrypted channel (CVE-2021-23214). */
		if ((size_t)n != iobuf_unparsed(b)) {
			iobuf_consume(b, iobuf_unparsed(b));
			return fatal(pg, "08P01",
				     "bridle: data after an encryption "
				     "request");
		}
		iobuf_consume(b, (size_t)n);
		ret = iobuf_append(session_out(pg->s, PROTO_TO_AGENT),
				   tls ? "S" : "N", 1);
		if (ret || !tls)
			return ret;
		pg->agent_tls = true;
		return session_start_tls(pg->s, PROTO_TO_AGENT,
					 session_enforcer(pg->s)->tls_server,
					 NULL);
	}
	case PG_CANCEL_REQUEST:
		iobuf_consume(b, (size_t)n);
		if (session_refusal(pg->s)) {
			pg->phase = PH_DONE;
			return 0;
		}
		return on_cancel(pg, &st);
	case PG_STARTUP_MESSAGE:
	default: {
		int ret;

		/* The policy refused the connection: say so, in its words. */
		if (session_refusal(pg->s)) {
			iobuf_consume(b, (size_t)n);
			return fatal(pg, "28000", session_refusal(pg->s));
		}
		ret = on_startup(pg, &st);

		iobuf_consume(b, (size_t)n);
		return ret;
	}
	}
}

/* ------------------------------------------------ upstream: logging in */

static const char *error_field(const struct pg_msg *m, char field)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;

	while (p < end && *p) {
		char f = (char)*p++;
		const char *s = cstr(&p, end);

		if (!s)
			return NULL;
		if (f == field)
			return s;
	}
	return NULL;
}

static int login_failed(struct pg *pg, const char *code, const char *why)
{
	char msg[768];

	snprintf(msg, sizeof(msg),
		 "bridle: cannot log in to target \"%s\" as \"%s\": %s",
		 session_target_name(pg->s), pg->user ? pg->user : "?", why);
	wipe_password(pg);
	return fatal(pg, code, msg);
}

static void md5_hex(const void *a, size_t alen, const void *b, size_t blen,
		    char out[33])
{
	unsigned char d[16];
	unsigned int dl = sizeof(d);
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	EVP_DigestInit_ex(c, EVP_md5(), NULL);
	EVP_DigestUpdate(c, a, alen);
	EVP_DigestUpdate(c, b, blen);
	EVP_DigestFinal_ex(c, d, &dl);
	EVP_MD_CTX_free(c);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int send_password(struct pg *pg, const char *pw)
{
	struct msgb m;

	mb_start(&m, 'p');
	mb_str(&m, pw);
	int ret = mb_send(pg, PROTO_TO_UPSTREAM, &m);

	OPENSSL_cleanse(m.buf, sizeof(m.buf));
	return ret;
}

static int on_auth_request(struct pg *pg, const struct pg_msg *m)
{
	char out[512], err[160];
	uint32_t code;
	int n;

	if (m->body_len < 4)
		return login_failed(pg, "08P01", "malformed authentication");
	code = pg_get32(m->body);
	switch (code) {
	case 0: { /* AuthenticationOk: now the agent is logged in too */
		static const uint8_t ok[] = { 'R', 0, 0, 0, 8, 0, 0, 0, 0 };

		wipe_password(pg);
		pg->phase = PH_INIT;
		return iobuf_append(session_out(pg->s, PROTO_TO_AGENT), ok,
				    sizeof(ok));
	}
	case 3: /* cleartext */
		if (!pg->password)
			return login_failed(pg, "28P01", "no password");
		return send_password(pg, pg->password);
	case 5: { /* md5 */
		char inner[33], outer[36];

		if (m->body_len != 8 || !pg->password)
			return login_failed(pg, "08P01",
					    "malformed md5 request");
		md5_hex(pg->password, strlen(pg->password), pg->user,
			strlen(pg->user), inner);
		memcpy(outer, "md5", 3);
		md5_hex(inner, 32, m->body + 4, 4, outer + 3);
		n = send_password(pg, outer);
		OPENSSL_cleanse(inner, sizeof(inner));
		OPENSSL_cleanse(outer, sizeof(outer));
		return n;
	}
	case 10: { /* SASL: the mechanisms the server offers */
		const uint8_t *p = m->body + 4, *end = m->body + m->body_len;
		const char *mech;
		bool scram = false;
		struct msgb mb;

		while ((mech = cstr(&p, end)) && *mech)
			scram |= strcmp(mech, "SCRAM-SHA-256") == 0;
		if (!scram)
			return login_failed(pg, "28000",
					    "the server offers no SASL "
					    "mechanism bridle speaks "
					    "(SCRAM-SHA-256)");
		n = scram_client_first(&pg->scram, "", NULL, out, sizeof(out),
				       err, sizeof(err));
		if (n < 0)
			return login_failed(pg, "28000", err);
		mb_start(&mb, 'p');
		mb_str(&mb, "SCRAM-SHA-256");
		mb_u32(&mb, (uint32_t)n);
		mb_bytes(&mb, out, (size_t)n);
		return mb_send(pg, PROTO_TO_UPSTREAM, &mb);
	}
	case 11: { /* SASLContinue */
		struct msgb mb;

		if (!pg->password)
			return login_failed(pg, "08P01",
					    "unexpected SASL step");
		n = scram_client_final(&pg->scram, pg->password,
				       (const char *)m->body + 4,
				       m->body_len - 4, out, sizeof(out), err,
				       sizeof(err));
		if (n < 0)
			return login_failed(pg, "28000", err);
		mb_start(&mb, 'p');
		mb_bytes(&mb, out, (size_t)n);
		n = mb_send(pg, PROTO_TO_UPSTREAM, &mb);
		OPENSSL_cleanse(out, sizeof(out));
		OPENSSL_cleanse(mb.buf, sizeof(mb.buf));
		return n;
	}
	case 12: /* SASLFinal: the server proves it knew the password */
		if (scram_client_verify(&pg->scram, (const char *)m->body + 4,
					m->body_len - 4, err, sizeof(err)))
			return login_failed(pg, "28000", err);
		return 0;
	default:
		snprintf(err, sizeof(err),
			 "the server asks for an authentication method bridle "
			 "does not speak (%u)",
			 code);
		return login_failed(pg, "28000", err);
	}
}

/* The setup query: the search path, and where the masked columns are. */
static int send_setup(struct pg *pg)
{
	char *sql = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&sql, &len);
	bool cols = false;
	struct msgb m;
	int ret;

	if (!f)
		return -ENOMEM;
	fputs("SELECT pg_catalog.unnest(pg_catalog.current_schemas(false))", f);
	for (size_t i = 0; i < pg->plan.ncolumns; i++) {
		char **nr;

		if (pg->plan.columns[i].dots == 0)
			continue;
		cols = true;
		nr = realloc(pg->resolved, (pg->nresolved + 1) * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		pg->resolved = nr;
		nr[pg->nresolved] = strdup(pg->plan.columns[i].pattern);
		if (!nr[pg->nresolved])
			return -ENOMEM;
		pg->nresolved++;
	}
	if (cols)
		fputs("; SELECT c.oid, a.attnum, n.nspname, c.relname, "
		      "a.attname FROM pg_catalog.pg_attribute a "
		      "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
		      "JOIN pg_catalog.pg_namespace n ON n.oid = "
		      "c.relnamespace WHERE a.attnum > 0 AND NOT "
		      "a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'p', "
		      "'f') AND n.nspname <> 'pg_catalog' AND n.nspname <> "
		      "'information_schema'",
		      f);
	fclose(f);
	if (!sql)
		return -ENOMEM;
	mb_start(&m, 'Q');
	mb_str(&m, sql);
	free(sql);
	ret = mb_send(pg, PROTO_TO_UPSTREAM, &m);
	if (ret)
		return ret;
	pg->phase = PH_SETUP;
	pg->setup_set = 0;
	return 0;
}

static void setup_row(struct pg *pg, const struct pg_msg *m)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;
	char vals[5][256];
	uint16_t n;

	if (m->body_len < 2)
		return;
	n = pg_get16(p);
	p += 2;
	for (uint16_t i = 0; i < n && i < 5; i++) {
		int32_t l;

		if (end - p < 4)
			return;
		l = (int32_t)pg_get32(p);
		p += 4;
		if (l < 0 || (size_t)(end - p) < (size_t)l ||
		    (size_t)l >= sizeof(vals[i]))
			return;
		memcpy(vals[i], p, (size_t)l);
		vals[i][l] = '\0';
		p += l;
	}
	if (pg->setup_set == 0 && n == 1) {
		add_schema(pg, vals[0]);
	} else if (pg->setup_set == 1 && n == 5) {
		char full[800], tc[600];

		snprintf(full, sizeof(full), "%s.%s.%s", vals[2], vals[3],
			 vals[4]);
		snprintf(tc, sizeof(tc), "%s.%s", vals[3], vals[4]);
		for (size_t i = 0; i < pg->plan.ncolumns; i++) {
			const struct policy_mask_column *c =
				&pg->plan.columns[i];
			struct pg_masked_attr *na;

			if (c->dots == 0 ||
			    fnmatch(c->pattern, c->dots == 2 ? full : tc, 0))
				continue;
			na = realloc(pg->attrs, (pg->nattrs + 1) * sizeof(*na));
			if (!na)
				return;
			pg->attrs = na;
			na[pg->nattrs].relid =
				(uint32_t)strtoul(vals[0], NULL, 10);
			na[pg->nattrs].attnum = (int16_t)atoi(vals[1]);
			na[pg->nattrs].style = (uint8_t)c->style;
			snprintf(full, sizeof(full), "%s.%s", vals[2], vals[3]);
			na[pg->nattrs].table = strdup(full);
			na[pg->nattrs].pattern = strdup(c->pattern);
			if (na[pg->nattrs].table && na[pg->nattrs].pattern)
				pg->nattrs++;
			else {
				free(na[pg->nattrs].table);
				free(na[pg->nattrs].pattern);
			}
			break;
		}
	}
}

/* ------------------------------------------------- upstream: results */

/* Text-like types: a masked value of these stays a string. */
static bool text_type(uint32_t oid)
{
	switch (oid) {
	case 25: /* text */
	case 1043: /* varchar */
	case 1042: /* bpchar */
	case 19: /* name */
	case 114: /* json */
	case 705: /* unknown */
		return true;
	default:
		return false;
	}
}

/*
 * What to do with each column of RowDescription @m. @formats are a
 * portal's result formats (NULL: the formats in @m). Returns a new
 * pg_cols, or NULL when nothing needs masking or on error.
 */
static struct pg_cols *plan_columns(struct pg *pg, const struct pg_msg *m,
				    const int16_t *formats, uint16_t nformats,
				    bool mask_computed)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;
	struct pg_cols *c;
	uint16_t n;

	if (!plan_masks_anything(pg) || m->body_len < 2)
		return NULL;
	n = pg_get16(p);
	p += 2;
	if (n > PG_MAX_COLS)
		return NULL;
	c = calloc(1, sizeof(*c) + n * sizeof(c->c[0]));
	if (!c)
		return NULL;
	c->refs = 1;
	c->n = n;
	for (uint16_t i = 0; i < n; i++) {
		const char *name = cstr(&p, end);
		uint32_t relid, typoid;
		int16_t attnum, format;
		struct pg_col *col = &c->c[i];

		if (!name || end - p < 18) {
			free(c);
			return NULL;
		}
		relid = pg_get32(p);
		attnum = (int16_t)pg_get16(p + 4);
		typoid = pg_get32(p + 6);
		format = (int16_t)pg_get16(p + 16);
		p += 18;
		if (formats)
			format = nformats == 0 ? 0 :
				 nformats == 1 ? formats[0] :
				 i < nformats  ? formats[i] :
						 0;
		col->text = text_type(typoid);
		col->action = COL_PASS;
		for (size_t k = 0; k < pg->nattrs; k++)
			if (relid && pg->attrs[k].relid == relid &&
			    pg->attrs[k].attnum == attnum) {
				col->action = COL_MASK;
				col->style = pg->attrs[k].style;
			}
		for (size_t k = 0; k < pg->plan.ncolumns && !col->action; k++) {
			const struct policy_mask_column *mc =
				&pg->plan.columns[k];
			/* A column name, or an unresolved table column's. */
			const char *glob =
				mc->dots == 0 ? mc->pattern :
				pattern_resolved(pg, mc->pattern) ?
						NULL :
						strrchr(mc->pattern, '.') + 1;

			if (glob && fnmatch(glob, name, 0) == 0) {
				col->action = COL_MASK;
				col->style = (uint8_t)mc->style;
			}
		}
		/* A computed value of a statement that reads a masked
		 * table may be that column in disguise (email || ''). */
		if (!col->action && !relid && mask_computed) {
			col->action = COL_MASK;
			col->style = MASK_REDACT;
		}
		if (!col->action && pg->plan.detectors &&
		    (col->text ||
		     (format == 0 && typoid != 16 &&
		      (typoid < 20 || typoid > 23) && typoid != 700 &&
		      typoid != 701 && typoid != 1700)))
			col->action = COL_SCAN;
		/* Binary values are not text: the scan cannot read them. A
		 * binary text-like value is the text itself, though. */
		if (col->action == COL_SCAN && format != 0 && !col->text)
			col->action = COL_PASS;
		c->any |= col->action != COL_PASS;
		(void)format;
	}
	if (!c->any) {
		free(c);
		return NULL;
	}
	return c;
}

static int scratch_need(struct pg *pg, size_t n)
{
	uint8_t *ns;
	size_t cap = pg->scratch_cap ? pg->scratch_cap : 4096;

	if (n <= pg->scratch_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	ns = realloc(pg->scratch, cap);
	if (!ns)
		return -ENOMEM;
	pg->scratch = ns;
	pg->scratch_cap = cap;
	return 0;
}

/*
 * Rewrite DataRow @m under @cols into pg->scratch. Returns the new
 * message's length, or -errno. *masked counts the values changed.
 */
static ssize_t mask_row(struct pg *pg, const struct pg_msg *m,
			const struct pg_cols *cols, uint64_t *masked)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;
	struct mask_match hits[32];
	char rendered[PG_TEXT_MASK_MAX];
	size_t o;
	uint16_t n;

	*masked = 0;
	if (m->body_len < 2)
		return -EPROTO;
	n = pg_get16(p);
	p += 2;
	/* Worst case: every byte of a value becomes part of a mask. */
	if (scratch_need(pg, 7 + m->body_len * 2 + (size_t)n * 4 +
				     (size_t)n * PG_TEXT_MASK_MAX * 2))
		return -ENOMEM;
	pg->scratch[0] = 'D';
	pg_put16(pg->scratch + 5, n);
	o = 7;
	for (uint16_t i = 0; i < n; i++) {
		const struct pg_col *col = i < cols->n ? &cols->c[i] : NULL;
		int32_t l;

		if (end - p < 4)
			return -EPROTO;
		l = (int32_t)pg_get32(p);
		p += 4;
		if (l > 0 && (size_t)(end - p) < (size_t)l)
			return -EPROTO;
		/* Room for this value at its largest: itself, or every one of
		 * up to 32 hits turned into a mask of up to 96 bytes. */
		if (scratch_need(pg, o + 4 + (size_t)(l > 0 ? l : 0) +
					     33 * PG_TEXT_MASK_MAX + 64))
			return -ENOMEM;
		if (l < 0 || !col || col->action == COL_PASS) {
			memcpy(pg->scratch + o, p - 4,
			       4 + (size_t)(l > 0 ? l : 0));
			o += 4 + (size_t)(l > 0 ? l : 0);
			p += l > 0 ? l : 0;
			continue;
		}
		if (col->action == COL_MASK) {
			int r;

			(*masked)++;
			if (!col->text) {
				/* Any other type would not parse a string:
				 * NULL is the mask every type accepts. */
				pg_put32(pg->scratch + o, 0xffffffffu);
				o += 4;
				p += l;
				continue;
			}
			r = mask_render(col->style, MASK_COLUMN,
					(const char *)p, (size_t)l,
					pg->mask_key, pg->mask_key_len,
					rendered, sizeof(rendered));
			if (r < 0 || col->style == MASK_PARTIAL) {
				/* partial keeps the value's length: render in
				 * place of it. */
				if (scratch_need(pg, o + 4 + (size_t)l + 64))
					return -ENOMEM;
				r = mask_render(col->style, MASK_COLUMN,
						(const char *)p, (size_t)l,
						pg->mask_key, pg->mask_key_len,
						(char *)pg->scratch + o + 4,
						(size_t)l + 1);
				if (r < 0)
					r = 0;
				pg_put32(pg->scratch + o, (uint32_t)r);
				o += 4 + (size_t)r;
			} else {
				pg_put32(pg->scratch + o, (uint32_t)r);
				memcpy(pg->scratch + o + 4, rendered,
				       (size_t)r);
				o += 4 + (size_t)r;
			}
			p += l;
			continue;
		}
		/* COL_SCAN: replace each detected value. */
		{
			size_t nh = mask_scan((const char *)p, (size_t)l,
					      pg->plan.detectors, hits, 32);
			size_t at = 0, start = o;

			if (nh == 0) {
				memcpy(pg->scratch + o, p - 4, 4 + (size_t)l);
				o += 4 + (size_t)l;
				p += l;
				continue;
			}
			if (nh > 32) {
				/* More than we can place: hide it all. */
				int r = mask_render(MASK_REDACT, MASK_COLUMN,
						    "", 0, NULL, 0, rendered,
						    sizeof(rendered));

				pg_put32(pg->scratch + o, (uint32_t)r);
				memcpy(pg->scratch + o + 4, rendered,
				       (size_t)r);
				o += 4 + (size_t)r;
				p += l;
				(*masked) += nh;
				continue;
			}
			o += 4;
			for (size_t h = 0; h < nh; h++) {
				int r;
				enum mask_style style =
					pg->plan.detector_style[hits[h].kind];

				memcpy(pg->scratch + o, p + at,
				       hits[h].off - at);
				o += hits[h].off - at;
				if (style == MASK_PARTIAL) {
					r = mask_render(style, hits[h].kind,
							(const char *)p +
								hits[h].off,
							hits[h].len, NULL, 0,
							(char *)pg->scratch + o,
							hits[h].len + 1);
				} else {
					r = mask_render(
						style, hits[h].kind,
						(const char *)p + hits[h].off,
						hits[h].len, pg->mask_key,
						pg->mask_key_len, rendered,
						sizeof(rendered));
					if (r > 0)
						memcpy(pg->scratch + o,
						       rendered, (size_t)r);
				}
				o += r > 0 ? (size_t)r : 0;
				at = hits[h].off + hits[h].len;
			}
			memcpy(pg->scratch + o, p + at, (size_t)l - at);
			o += (size_t)l - at;
			pg_put32(pg->scratch + start,
				 (uint32_t)(o - start - 4));
			*masked += nh;
			p += l;
		}
	}
	pg_put32(pg->scratch + 1, (uint32_t)(o - 1));
	return (ssize_t)o;
}

/*
 * An ErrorResponse or NoticeResponse may quote values ("invalid input
 * syntax for type integer: \"alice@…\"", a DETAIL with a row). Where the
 * session masks anything, the detectors run over its texts; for a
 * statement that names a masked column (@hide), quoted text in the
 * message and the detail, context and query fields are hidden too.
 * Returns the new message's length in pg->scratch, 0 when there is
 * nothing to change, or -errno.
 */
static ssize_t mask_notice(struct pg *pg, const struct pg_msg *m, bool hide)
{
	const uint8_t *p = m->body, *end = m->body + m->body_len;
	struct mask_match hits[32];
	char rendered[PG_TEXT_MASK_MAX];
	size_t o = 5;

	if (!plan_masks_anything(pg))
		return 0;
	if (scratch_need(pg,
			 8 + m->body_len * 2 + 33 * PG_TEXT_MASK_MAX * 8 + 512))
		return -ENOMEM;
	pg->scratch[0] = (uint8_t)m->type;
	while (p < end && *p) {
		char f = (char)*p++;
		const char *t = cstr(&p, end);
		size_t len, nh, at = 0;
		char *dst;

		if (!t)
			return -EPROTO;
		pg->scratch[o++] = (uint8_t)f;
		dst = (char *)pg->scratch + o;
		if (hide && (f == 'D' || f == 'W' || f == 'q')) {
			o += (size_t)sprintf(dst, "(hidden by bridle: the "
						  "statement reads masked "
						  "columns)") +
			     1;
			continue;
		}
		len = strlen(t);
		if (f != 'M' && f != 'D' && f != 'W' && f != 'H' && f != 'q') {
			memcpy(dst, t, len + 1);
			o += len + 1;
			continue;
		}
		nh = pg->plan.detectors ?
			     mask_scan(t, len, pg->plan.detectors, hits, 32) :
			     0;
		if (nh > 32)
			nh = 32;
		for (size_t h = 0; h <= nh; h++) {
			size_t stop = h < nh ? hits[h].off : len;
			bool quoted = false;

			/* The text before the hit; quoted runs hidden. */
			for (size_t i = at; i < stop; i++) {
				if (hide && t[i] == '"') {
					quoted = !quoted;
					pg->scratch[o++] = '"';
					if (quoted) {
						memcpy(pg->scratch + o, "...",
						       3);
						o += 3;
					}
					continue;
				}
				if (!quoted)
					pg->scratch[o++] = (uint8_t)t[i];
			}
			if (h < nh) {
				int r = mask_render(MASK_REDACT, hits[h].kind,
						    t + hits[h].off,
						    hits[h].len, NULL, 0,
						    rendered, sizeof(rendered));

				if (r > 0) {
					memcpy(pg->scratch + o, rendered,
					       (size_t)r);
					o += (size_t)r;
				}
				at = hits[h].off + hits[h].len;
			}
		}
		pg->scratch[o++] = '\0';
	}
	pg->scratch[o++] = '\0';
	pg_put32(pg->scratch + 1, (uint32_t)(o - 1));
	return (ssize_t)o;
}

/* The columns that apply to a DataRow arriving now. */
static const struct pg_cols *row_cols(struct pg *pg)
{
	struct pg_expect *x = expect_head(pg);

	if (!x)
		return NULL;
	if (x->kind == X_QUERY)
		return pg->cur;
	if (x->kind == X_EXECUTE)
		return x->cols ? x->cols : x->portal ? x->portal->cols : NULL;
	return NULL;
}

/* Rows of an Execute whose columns were never described, where anything
 * is masked: they must not pass. */
static bool rows_unknown(struct pg *pg)
{
	struct pg_expect *x = expect_head(pg);

	return x && x->kind == X_EXECUTE && plan_masks_anything(pg) &&
	       !row_cols(pg) && !(x->portal && x->portal->described);
}

/* Pop expectations after an error: up to the Sync (extended) or not at
 * all (a simple query ends with its ReadyForQuery). */
static void skip_to_sync(struct pg *pg)
{
	struct pg_expect *x;

	while ((x = expect_head(pg)) && x->kind != X_SYNC &&
	       x->kind != X_QUERY && x->kind != X_FUNCTION)
		expect_pop(pg);
}

static int upstream_protocol_error(struct pg *pg, const char *what)
{
	char msg[200];

	snprintf(msg, sizeof(msg),
		 "bridle: lost track of the server's answers (%s)", what);
	return fatal(pg, "08P01", msg);
}

/*
 * One whole message from the server in PH_READY. Sets *drop when it is
 * not for the agent, *replace with a rewritten message in pg->scratch.
 */
static int server_message(struct pg *pg, const struct pg_msg *m, bool *drop,
			  ssize_t *replace)
{
	struct pg_expect *x = expect_head(pg);
	uint64_t masked = 0;

	*drop = false;
	*replace = 0;
	switch (m->type) {
	case 'N': /* notice */
		*replace = mask_notice(pg, m, x && x->mask_computed);
		return *replace < 0 ? (int)*replace : 0;
	case 'A': /* notification */
	case 'S': /* parameter status */
		return 0;
	case '1':
		if (!x || x->kind != X_PARSE)
			return upstream_protocol_error(pg, "ParseComplete");
		if (x->stmt)
			stmt_confirm(pg, x->stmt);
		expect_pop(pg);
		return 0;
	case '2':
		if (!x || x->kind != X_BIND)
			return upstream_protocol_error(pg, "BindComplete");
		if (x->portal)
			portal_confirm(x->portal);
		expect_pop(pg);
		return 0;
	case '3':
		if (!x || x->kind != X_CLOSE)
			return upstream_protocol_error(pg, "CloseComplete");
		expect_pop(pg);
		return 0;
	case 't':
		if (!x || x->kind != X_DESCRIBE_S)
			return upstream_protocol_error(pg,
						       "ParameterDescription");
		return 0;
	case 'T':
		if (x && x->kind == X_QUERY) {
			cols_unref(pg->cur);
			pg->cur =
				plan_columns(pg, m, NULL, 0, x->mask_computed);
			return 0;
		}
		if (x && x->kind == X_DESCRIBE_S) {
			cols_unref(x->stmt->cols);
			/* Formats are not known before Bind: text. */
			x->stmt->cols = plan_columns(pg, m, NULL, 0,
						     x->stmt->reads_masked);
			expect_pop(pg);
			return 0;
		}
		if (x && x->kind == X_DESCRIBE_P) {
			*drop = x->hidden;
			if (x->portal) {
				x->portal->described = true;
				cols_unref(x->portal->cols);
				x->portal->cols = plan_columns(
					pg, m, NULL, 0,
					x->portal->stmt &&
						x->portal->stmt->reads_masked);
				/* The Execute queued behind an injected
				 * Describe takes these columns. */
				if (pg->qlen > 1) {
					struct pg_expect *nx =
						&pg->q[(pg->qhead + 1) %
						       pg->qcap];

					if (nx->kind == X_EXECUTE &&
					    nx->portal == x->portal &&
					    !nx->cols)
						nx->cols = cols_ref(
							x->portal->cols);
				}
			}
			expect_pop(pg);
			return 0;
		}
		return upstream_protocol_error(pg, "RowDescription");
	case 'n':
		if (!x || (x->kind != X_DESCRIBE_S && x->kind != X_DESCRIBE_P))
			return upstream_protocol_error(pg, "NoData");
		if (x->kind == X_DESCRIBE_P && x->portal)
			x->portal->described = true;
		*drop = x->hidden;
		expect_pop(pg);
		return 0;
	case 'D': {
		const struct pg_cols *c = row_cols(pg);

		if (!x || (x->kind != X_QUERY && x->kind != X_EXECUTE))
			return upstream_protocol_error(pg, "DataRow");
		/* Rows whose columns bridle never saw are not passed where
		 * anything is masked. */
		if (rows_unknown(pg))
			return fatal(pg, "08P01",
				     "bridle: rows of a portal whose columns "
				     "were not described");
		if (!c)
			return 0;
		*replace = mask_row(pg, m, c, &masked);
		if (*replace < 0)
			return *replace == -EPROTO ?
				       upstream_protocol_error(pg, "DataRow") :
				       (int)*replace;
		if (masked) {
			session_count(pg->s, 0, 0, masked);
			x->masked += masked;
		}
		return 0;
	}
	case 'C':
	case 'I':
		if (x && (x->kind == X_QUERY || x->kind == X_EXECUTE))
			rec_response(pg, x,
				     m->type == 'I' ? "empty" :
				     memchr(m->body, 0, m->body_len) ?
						      (const char *)m->body :
						      "?",
				     NULL, NULL);
		if (x && x->kind == X_QUERY) {
			cols_unref(pg->cur);
			pg->cur = NULL;
			if (m->type == 'C' && m->body_len >= 7 &&
			    memcmp(m->body, "PREPARE", 7) == 0 &&
			    x->nconfirmed < x->npreps)
				stmt_confirm(pg, x->preps[x->nconfirmed++]);
			return 0;
		}
		if (!x || x->kind != X_EXECUTE)
			return upstream_protocol_error(pg, "CommandComplete");
		expect_pop(pg);
		return 0;
	case 's':
		if (!x || x->kind != X_EXECUTE)
			return upstream_protocol_error(pg, "PortalSuspended");
		rec_response(pg, x, "suspended", NULL, NULL);
		expect_pop(pg);
		return 0;
	case 'G': /* CopyInResponse */
		pg->copy_in = true;
		return 0;
	case 'H': /* CopyOutResponse */
	case 'd':
	case 'c':
		return 0;
	case 'W':
		return upstream_protocol_error(pg, "CopyBothResponse");
	case 'V': /* FunctionCallResponse: never asked */
		return upstream_protocol_error(pg, "FunctionCallResponse");
	case 'E': {
		const char *code = error_field(m, 'C');
		const char *text = error_field(m, 'M');
		bool was_copy_in = pg->copy_in;

		pg->copy_in = false;
		if (x && x->kind != X_DENIED)
			rec_response(pg, x, "error", code, text);
		if (x && x->kind == X_DENIED) {
			/* Our impossible Bind failed as it should: the
			 * agent gets the denial instead. Any other error
			 * (an aborted transaction) is the server's. */
			if (code && !strcmp(code, "26000") && text &&
			    strstr(text, PG_DENIED_STMT)) {
				int ret = send_error(pg, false, "ERROR",
						     "42501", x->deny, NULL,
						     NULL);

				*drop = true;
				if (ret)
					return ret;
			}
		}
		if (!*drop) {
			*replace = mask_notice(pg, m, x && x->mask_computed);
			if (*replace < 0)
				return (int)*replace;
		}
		if (x && x->kind == X_EXECUTE) {
			cols_unref(pg->cur);
			pg->cur = NULL;
		}
		/* A COPY FROM that failed before copy-in: the Sync the
		 * agent sent right behind it is answered after all. */
		if (pg->copy_expected && !was_copy_in) {
			pg->copy_expected = false;
			skip_to_sync(pg);
			if (!expect_head(pg) || expect_head(pg)->kind != X_SYNC)
				expect_push_front_sync(pg);
			return 0;
		}
		skip_to_sync(pg);
		return 0;
	}
	case 'Z':
		pg->copy_in = false;
		while ((x = expect_head(pg)) && x->kind != X_SYNC &&
		       x->kind != X_QUERY && x->kind != X_FUNCTION)
			expect_pop(pg);
		if (!x)
			return upstream_protocol_error(pg, "ReadyForQuery");
		expect_pop(pg);
		cols_unref(pg->cur);
		pg->cur = NULL;
		if (m->body_len == 1)
			pg->txn = (char)m->body[0];
		portals_at_sync(pg);
		return 0;
	default: {
		char what[40];

		snprintf(what, sizeof(what), "message type 0x%02x",
			 (unsigned char)m->type);
		return upstream_protocol_error(pg, what);
	}
	}
}

/* One whole message from the server before PH_READY. */
static int server_login_message(struct pg *pg, const struct pg_msg *m,
				bool *drop)
{
	*drop = true;
	switch (m->type) {
	case 'R':
		if (pg->phase != PH_AUTH)
			return upstream_protocol_error(pg, "authentication");
		return on_auth_request(pg, m);
	case 'E': {
		const char *code = error_field(m, 'C');
		const char *text = error_field(m, 'M');

		if (pg->phase == PH_SETUP)
			return fatal(pg, "XX000",
				     "bridle: its session setup query failed "
				     "on the server");
		return login_failed(pg, code ? code : "28000",
				    text ? text : "the server refused");
	}
	case 'v': /* NegotiateProtocolVersion: we asked for 3.0 only */
		return 0;
	case 'S':
		*drop = pg->phase == PH_SETUP;
		return 0;
	case 'N':
		*drop = pg->phase == PH_SETUP;
		return 0;
	case 'K': {
		struct pg_cancel_entry *c;

		if (m->body_len != 8 || pg->cancel)
			return upstream_protocol_error(pg, "BackendKeyData");
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->up_pid = pg_get32(m->body);
		c->up_key = pg_get32(m->body + 4);
		do {
			RAND_bytes((unsigned char *)&c->pid, sizeof(c->pid));
			RAND_bytes((unsigned char *)&c->key, sizeof(c->key));
			c->pid &= 0x7fffffff;
		} while (!c->pid);
		c->wl = session_workload(pg->s);
		session_orig(pg->s, &c->family, c->addr, &c->port);
		pg->cancel = c;
		cancel_add(c);
		{
			struct msgb mb;

			mb_start(&mb, 'K');
			mb_u32(&mb, c->pid);
			mb_u32(&mb, c->key);
			return mb_send(pg, PROTO_TO_AGENT, &mb);
		}
	}
	case 'Z':
		if (pg->phase == PH_INIT) {
			size_t target;

			current_policy(pg, &target);
			return send_setup(pg);
		}
		if (pg->phase == PH_SETUP) {
			if (m->body_len == 1)
				pg->txn = (char)m->body[0];
			pg->phase = PH_READY;
			*drop = false;
			return 0;
		}
		return upstream_protocol_error(pg, "ReadyForQuery");
	case 'T':
		if (pg->phase != PH_SETUP)
			return upstream_protocol_error(pg, "RowDescription");
		return 0;
	case 'D':
		if (pg->phase != PH_SETUP)
			return upstream_protocol_error(pg, "DataRow");
		setup_row(pg, m);
		return 0;
	case 'C':
		if (pg->phase != PH_SETUP)
			return upstream_protocol_error(pg, "CommandComplete");
		pg->setup_set++;
		return 0;
	default:
		return upstream_protocol_error(pg, "login");
	}
}

/* ------------------------------------------------------------- driver */

/* Message types whose body the module never needs: streamed through. */
static bool streamable(struct pg *pg, enum proto_dir dir, char type)
{
	if (pg->phase != PH_READY)
		return false;
	if (dir == PROTO_TO_UPSTREAM)
		return type == 'd' && pg->copy_in;
	if (type == 'd')
		return true;
	return type == 'D' && !row_cols(pg) && !rows_unknown(pg);
}

static int pg_on_data(struct session *s, enum proto_dir dir, struct iobuf *b)
{
	struct pg *pg = session_state(s);
	struct iobuf *out = session_out(s, dir == PROTO_TO_UPSTREAM ?
						   PROTO_TO_UPSTREAM :
						   PROTO_TO_AGENT);
	int d = dir == PROTO_TO_UPSTREAM ? 0 : 1;

	while (iobuf_unparsed(b) && pg->phase != PH_DONE) {
		const uint8_t *raw = b->data + b->parsed;
		size_t avail = iobuf_unparsed(b);
		struct pg_msg m;
		const char *why = NULL;
		ssize_t n;
		int ret;

		/* A held query: the agent's next messages wait behind it. */
		if (d == 0 && pg->held)
			return 0;
		/* The rest of a streamed message. */
		if (pg->pass[d]) {
			size_t k = avail < pg->pass[d] ? avail : pg->pass[d];
			size_t room = iobuf_room(out);

			if (k > room)
				k = room;
			if (!k)
				return 0;
			iobuf_append(out, raw, k);
			iobuf_consume(b, k);
			pg->pass[d] -= k;
			continue;
		}
		if (dir == PROTO_TO_UPSTREAM && pg->phase == PH_STARTUP) {
			if (iobuf_room(session_out(s, PROTO_TO_UPSTREAM)) <
				    PG_MAX_STARTUP_LEN + 64 ||
			    iobuf_room(session_out(s, PROTO_TO_AGENT)) < 2048)
				return 0;
			ret = agent_startup(pg, b);
			if (ret)
				return ret;
			if (pg->phase == PH_STARTUP &&
			    iobuf_unparsed(b) == avail)
				return 0;
			continue;
		}
		if (dir == PROTO_TO_AGENT && pg->phase == PH_UPSSL) {
			ret = upstream_ssl_answer(pg, b);
			if (ret)
				return ret;
			continue;
		}
		if (dir == PROTO_TO_UPSTREAM && pg->phase == PH_TOKEN) {
			n = pg_parse_message(raw, avail, pg->max_message, &m,
					     &why);
			if (n == PG_NEED_MORE)
				return 0;
			if (n == PG_INVALID) {
				iobuf_consume(b, avail);
				return fatal(
					pg, "08P01",
					"bridle: invalid password message");
			}
			ret = on_token(pg, &m);
			/* The token goes no further, not even in memory. */
			OPENSSL_cleanse(b->data + b->parsed, (size_t)n);
			iobuf_consume(b, (size_t)n);
			if (ret)
				return ret;
			continue;
		}
		/* The agent waits for its login before it sends more; bytes
		 * now are early, and wait too. */
		if (dir == PROTO_TO_UPSTREAM && pg->phase != PH_READY)
			return 0;
		n = pg_parse_message(raw, avail, pg->max_message, &m, &why);
		if (n == PG_INVALID) {
			char msg[160];

			snprintf(msg, sizeof(msg), "bridle: %s: %s",
				 d ? "invalid message from the server" :
				     "invalid message",
				 why ? why : "?");
			iobuf_consume(b, avail);
			return fatal(pg, "08P01", msg);
		}
		if (n == PG_NEED_MORE) {
			/* A streamable message goes on before it is whole. */
			if (avail >= 5 && streamable(pg, dir, (char)raw[0])) {
				size_t total = (size_t)pg_get32(raw + 1) + 1;

				if (d == 1)
					rec_account(pg, (char)raw[0], total);
				pg->pass[d] = total;
				continue;
			}
			if (avail >= 5) {
				size_t total = (size_t)pg_get32(raw + 1) + 1;
				int r = iobuf_reserve(b, total,
						      pg->max_message + 5);

				if (r)
					return r;
			}
			return 0;
		}
		/* Room for what this message may produce, both ways; a
		 * message larger than the output buffer grows it. */
		if ((size_t)n + 2048 > out->cap) {
			ret = iobuf_reserve(out, (size_t)n + 2048,
					    pg->max_message + 8192);
			if (ret)
				return ret;
		}
		if (!room_for(pg, PROTO_TO_UPSTREAM, 64) ||
		    !room_for(pg, PROTO_TO_AGENT, 2048))
			return 0;
		if (d == 0 && iobuf_room(out) < (size_t)n + 256)
			return 0;
		if (d == 1) {
			bool drop;
			ssize_t rep = 0;

			if (m.type != 'D' && iobuf_room(out) < (size_t)n + 2048)
				return 0;
			if (pg->phase != PH_READY) {
				ret = server_login_message(pg, &m, &drop);
			} else {
				rec_account(pg, m.type, (size_t)n);
				ret = server_message(pg, &m, &drop, &rep);
			}
			if (ret)
				return ret;
			/* After a fatal error nothing more goes to the agent. */
			if (pg->phase == PH_DONE) {
				iobuf_consume(b, iobuf_unparsed(b));
				break;
			}
			if (rep > 0) {
				if ((size_t)rep > out->cap &&
				    (ret = iobuf_reserve(out, (size_t)rep,
							 pg->max_message * 4)))
					return ret;
				if (iobuf_room(out) < (size_t)rep) {
					/* Redone when the agent has read. */
					return 0;
				}
				iobuf_append(out, pg->scratch, (size_t)rep);
			} else if (!drop) {
				if (iobuf_append(out, raw, (size_t)n))
					return 0;
			}
			iobuf_consume(b, (size_t)n);
			continue;
		}
		ret = agent_message(pg, raw, (size_t)n, &m);
		if (ret == -ENOBUFS)
			return 0;
		if (ret)
			return ret;
		iobuf_consume(b, (size_t)n);
	}
	if (pg->phase == PH_DONE && iobuf_unparsed(b))
		iobuf_consume(b, iobuf_unparsed(b));
	if (pg->phase == PH_DONE)
		session_finish(s, "closed by the agent");
	return 0;
}

static int pg_init(struct session *s)
{
	struct pg *pg = calloc(1, sizeof(*pg));
	struct enforcer *e = session_enforcer(s);

	if (!pg)
		return -ENOMEM;
	pg->s = s;
	pg->phase = PH_STARTUP;
	pg->max_message = e->cfg->max_message;
	pg->qcap = PG_EXPECT_MAX;
	pg->q = calloc(pg->qcap, sizeof(*pg->q));
	pg->txn = 'I';
	memcpy(pg->mask_key, e->cfg->mask_key, e->cfg->mask_key_len);
	pg->mask_key_len = e->cfg->mask_key_len;
	session_set_state(s, pg);
	return pg->q ? 0 : -ENOMEM;
}

static void pg_release(struct session *s)
{
	struct pg *pg = session_state(s);

	if (!pg)
		return;
	wipe_password(pg);
	if (pg->held) {
		struct enforcer *e = session_enforcer(s);

		review_cancel(e->reviews, pg->held_review, log_wall_ms());
		if (!pg->held_told)
			webhook_send(e->webhook, "review.closed",
				     review_get_json(e->reviews,
						     pg->held_review,
						     log_wall_ms()));
		held_free(pg);
	}
	if (pg->cancel) {
		cancel_del(pg->cancel);
		free(pg->cancel);
	}
	while (pg->qlen)
		expect_pop(pg);
	free(pg->q);
	while (pg->stmts) {
		struct pg_stmt *st = pg->stmts;

		pg->stmts = st->next;
		stmt_unref(st);
	}
	while (pg->portals) {
		struct pg_portal *p = pg->portals;

		pg->portals = p->next;
		portal_free(p);
	}
	cols_unref(pg->cur);
	policy_mask_plan_release(&pg->plan);
	for (size_t i = 0; i < pg->nschemas; i++)
		free(pg->schemas[i]);
	free(pg->schemas);
	for (size_t i = 0; i < pg->nattrs; i++) {
		free(pg->attrs[i].table);
		free(pg->attrs[i].pattern);
	}
	free(pg->attrs);
	for (size_t i = 0; i < pg->nresolved; i++)
		free(pg->resolved[i]);
	free(pg->resolved);
	for (size_t i = 0; i < PG_CACHE_SLOTS; i++) {
		free(pg->cache[i].key);
		free(pg->cache[i].deny);
		free(pg->cache[i].logged);
	}
	free(pg->scratch);
	record_buf_free(&pg->rb);
	free(pg->user);
	free(pg->database);
	free(pg->startup);
	OPENSSL_cleanse(pg->mask_key, sizeof(pg->mask_key));
	free(pg);
	session_set_state(s, NULL);
}

static void pg_upstream_failed(struct session *s, const char *reason)
{
	struct pg *pg = session_state(s);
	char msg[300];

	snprintf(msg, sizeof(msg), "bridle: target \"%s\": %s",
		 session_target_name(s), reason);
	if (fatal(pg, "08001", msg))
		session_finish(s, reason);
}

const struct proto_ops proto_pg_ops = {
	.upstream_failed = pg_upstream_failed,
	.tick = pg_tick,
	.name = "postgres",
	.opaque = false,
	.init = pg_init,
	.on_data = pg_on_data,
	.release = pg_release,
};
