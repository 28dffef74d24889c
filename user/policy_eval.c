// SPDX-License-Identifier: Apache-2.0
/*
 * Policy evaluation: connection decisions (which target, may this
 * workload's process, and later its user, reach it), statement decisions,
 * and mask plans.
 *
 * Targets are matched most-specific first: the longest address prefix wins,
 * then a target with an explicit port over one without, then file order.
 * Among the rules that apply, a deny beats a review beats an allow; within
 * one action the rule with the most conditions decides, the first in the
 * file on a tie; with no rule the policy's default applies. Shadow rules
 * are evaluated twice over: with them and without, and only the second
 * decides, the first is what gets logged as a would-be denial.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_impl.h"

static bool prefix_match(const uint8_t *net, unsigned prefix,
			 const uint8_t *addr)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(net, addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		return (net[full] & mask) == (addr[full] & mask);
	}
	return true;
}

static const struct policy_target *
match_target(const struct policy *p, const struct policy_input *in, size_t *idx)
{
	const struct policy_target *best = NULL;
	unsigned best_score = 0;

	for (size_t i = 0; i < p->ntargets; i++) {
		const struct policy_target *t = &p->targets[i];
		unsigned score;

		if (t->family != in->family)
			continue;
		if (t->port && t->port != in->port)
			continue;
		if (!prefix_match(t->addr, t->prefix, in->addr))
			continue;
		score = t->prefix * 2 + (t->port ? 1 : 0) + 1;
		if (score > best_score) {
			best = t;
			best_score = score;
			*idx = i;
		}
	}
	return best;
}

/* @flags: fnmatch's; e-mail addresses match without regard to case. */
static bool globs_hit(const struct globs *g, const char *s, int flags)
{
	if (!g->n)
		return true;
	if (!s)
		return false;
	for (size_t i = 0; i < g->n; i++)
		if (fnmatch(g->v[i], s, flags) == 0)
			return true;
	return false;
}

static bool labels_hit(json_t *want, json_t *have)
{
	const char *k;
	json_t *w;

	json_object_foreach(want, k, w) {
		json_t *h = have ? json_object_get(have, k) : NULL;
		bool hit = false;
		size_t i;
		json_t *e;

		if (!h)
			return false;
		if (json_is_string(w))
			hit = json_equal(h, w);
		json_array_foreach(w, i, e)
			hit |= json_equal(h, e);
		if (!hit)
			return false;
	}
	return true;
}

static bool user_hit(const struct policy_when *w, const struct policy_user *u)
{
	bool hit;

	if (!u || !globs_hit(&w->subs, u->sub, 0) ||
	    !globs_hit(&w->emails, u->email, FNM_CASEFOLD) ||
	    !globs_hit(&w->issuers, u->issuer, 0))
		return false;
	if (!w->groups.n)
		return true;
	hit = false;
	for (size_t i = 0; i < u->ngroups && !hit; i++)
		hit = globs_hit(&w->groups, u->groups[i], 0);
	return hit;
}

enum match { NO, YES, PENDING };

/* Does @r apply to @in at @target? PENDING: only the user, not known yet,
 * could tell. */
static enum match rule_matches(const struct policy_rule *r, size_t target,
			       const struct policy_input *in)
{
	const struct policy_when *w = &r->when;

	if (w->ntargets) {
		bool hit = false;

		for (size_t i = 0; i < w->ntargets && !hit; i++)
			hit = w->targets[i] == target;
		if (!hit)
			return NO;
	}
	if (!globs_hit(&w->workloads, in->workload, 0) ||
	    !globs_hit(&w->namespaces, in->k8s_namespace, 0) ||
	    !globs_hit(&w->pods, in->pod, 0) ||
	    !globs_hit(&w->service_accounts, in->service_account, 0) ||
	    !globs_hit(&w->exes, in->exe, 0))
		return NO;
	if (w->labels && !labels_hit(w->labels, in->labels))
		return NO;
	if (w->nuids) {
		bool hit = false;

		for (size_t i = 0; i < w->nuids && !hit; i++)
			hit = w->uids[i] == in->uid;
		if (!hit)
			return NO;
	}
	if (w->user) {
		if (!in->user && in->user_pending)
			return PENDING;
		if (!user_hit(w, in->user))
			return NO;
	}
	return YES;
}

static void trace_add(struct policy_trace *t, const struct policy_rule *r)
{
	if (!t)
		return;
	if (t->n < sizeof(t->m) / sizeof(t->m[0]))
		t->m[t->n] =
			(struct policy_match){ r->name, r->action, r->mode };
	t->n++;
}

/* The winner so far of one action: the most specific, then the first. */
static void consider(const struct policy_rule **best,
		     const struct policy_rule *r)
{
	if (!*best || r->specificity > (*best)->specificity)
		*best = r;
}

static void set_rule(const struct policy *p, struct policy_decision *out,
		     enum policy_action a, const struct policy_rule *r)
{
	out->action = a;
	out->rule = r->name;
	out->rule_idx = (size_t)(r - p->rules);
	out->message = r->message;
	out->timeout_s = r->timeout_s;
	out->approvers = &r->approvers;
}

static void set_pseudo(const struct policy *p, struct policy_decision *out,
		       enum policy_action a, int which, const char *message)
{
	out->action = a;
	out->rule = policy_pseudo_names[which];
	out->rule_idx = p->nrules + (size_t)which;
	out->message = message;
}

static bool rule_on(const struct policy_rule *r, bool shadow)
{
	return r->mode == POLICY_ENFORCE ||
	       (shadow && r->mode == POLICY_SHADOW);
}

/* What one evaluation looks at: the request, and for a statement the
 * statement. */
struct eval_ctx {
	const struct policy_input *in;
	size_t target; /* index; valid when t is set */
	const struct policy_target *t; /* NULL: no target matched */
	const struct policy_stmt *ps; /* NULL: the connection */
};

/* The connection decision with rules of mode enforce (and shadow, with
 * @shadow). */
static void eval_connect(const struct policy *p, const struct eval_ctx *c,
			 bool shadow, struct policy_decision *out,
			 struct policy_trace *trace)
{
	const struct policy_rule *deny = NULL, *allow = NULL;
	const struct policy_target *t = c->t;
	size_t idx = c->target;
	struct policy_input pin;
	const struct policy_input *in = &pin;

	if (!t)
		return; /* the default */
	/* Only a target that asks for a token will learn the user: a rule
	 * about users never admits a connection to any other. */
	pin = *c->in;
	pin.user_pending = pin.user_pending && t->require_user;

	set_pseudo(p, out, p->def, PSEUDO_DEFAULT, NULL);
	if (t->require_user && !in->user && !in->user_pending) {
		set_pseudo(p, out, POLICY_DENY, PSEUDO_TOKEN,
			   "this target requires a user token");
		return;
	}
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		enum match m;

		if (!rule_on(r, shadow))
			continue;
		/* An sql part speaks of statements: such a rule says nothing
		 * of a target without them. */
		if ((r->sql || r->mask) && t->proto != PROTO_POSTGRES)
			continue;
		m = rule_matches(r, idx, in);
		if (m == NO)
			continue;
		/* A user's rules decide at login, once the user is known. */
		if (m == PENDING && r->action == POLICY_DENY)
			continue;
		trace_add(trace, r);
		/* A deny rule with an sql part denies statements, not the
		 * connection; a review rule holds requests, not the session. */
		if (r->action == POLICY_DENY && !r->sql)
			consider(&deny, r);
		else if (r->action != POLICY_DENY)
			consider(&allow, r);
	}
	if (deny)
		set_rule(p, out, POLICY_DENY, deny);
	else if (allow)
		set_rule(p, out, POLICY_ALLOW, allow);
}

static int rank(enum policy_action a)
{
	return a == POLICY_DENY ? 2 : a == POLICY_REVIEW ? 1 : 0;
}

/*
 * Apply the modes: @full was decided with the shadow rules too, @enf (when
 * the policy has shadow rules) without them. The effective decision goes
 * to @out, and what shadow mode let through to its would_* fields.
 */
static void apply_modes(const struct policy *p,
			const struct policy_decision *full,
			const struct policy_decision *enf,
			struct policy_decision *out)
{
	if (p->mode == POLICY_SHADOW) {
		*out = *full;
		if (full->action != POLICY_ALLOW) {
			out->would_rule = full->rule;
			out->would_idx = full->rule_idx;
			out->would_action = full->action;
			out->action = POLICY_ALLOW;
		}
		return;
	}
	*out = *enf;
	if (rank(full->action) > rank(enf->action)) {
		out->would_rule = full->rule;
		out->would_idx = full->rule_idx;
		out->would_action = full->action;
	}
}

static void decide_common(const struct policy *p, struct policy_decision *out)
{
	memset(out, 0, sizeof(*out));
	out->proto = PROTO_TCP;
	set_pseudo(p, out, p->def, PSEUDO_DEFAULT, NULL);
}

typedef void (*eval_fn)(const struct policy *p, const struct eval_ctx *c,
			bool shadow, struct policy_decision *out,
			struct policy_trace *trace);

/*
 * Evaluate with the modes: once with the shadow rules (what is logged),
 * and, when the policy has shadow rules, once without (what is done).
 * @out comes with the target and the default filled in.
 */
static void decide_modes(const struct policy *p, const struct eval_ctx *c,
			 eval_fn eval, struct policy_decision *out,
			 struct policy_trace *trace)
{
	struct policy_decision full = *out, enf;

	if (p->mode == POLICY_OFF) {
		set_pseudo(p, out, POLICY_ALLOW, PSEUDO_OFF, NULL);
		return;
	}
	eval(p, c, true, &full, trace);
	enf = full;
	if (p->has_shadow && p->mode != POLICY_SHADOW) {
		enf = *out;
		eval(p, c, false, &enf, NULL);
	}
	apply_modes(p, &full, &enf, out);
}

void policy_decide_trace(const struct policy *p, const struct policy_input *in,
			 struct policy_decision *out,
			 struct policy_trace *trace)
{
	struct eval_ctx c = { .in = in };

	decide_common(p, out);
	c.t = match_target(p, in, &c.target);
	if (c.t) {
		out->target = c.t->name;
		out->target_idx = c.target;
		out->proto = c.t->proto;
	}
	decide_modes(p, &c, eval_connect, out, trace);
}

void policy_decide(const struct policy *p, const struct policy_input *in,
		   struct policy_decision *out)
{
	policy_decide_trace(p, in, out, NULL);
}

/*
 * Functions a statement may call without a rule naming them: built-ins
 * that compute, aggregate or read catalog metadata, and never touch files,
 * settings or other sessions. Anything else is opaque code to the policy.
 */
static const char *const plain_functions[] = {
	"abs",
	"age",
	"array_agg",
	"array_length",
	"array_position",
	"array_to_string",
	"avg",
	"bit_length",
	"bool_and",
	"bool_or",
	"btrim",
	"cardinality",
	"ceil",
	"ceiling",
	"char_length",
	"character_length",
	"col_description",
	"concat",
	"concat_ws",
	"count",
	"cume_dist",
	"current_database",
	"current_schema",
	"current_schemas",
	"date_part",
	"date_trunc",
	"decode",
	"dense_rank",
	"encode",
	"every",
	"exp",
	"extract",
	"first_value",
	"floor",
	"format",
	"format_type",
	"generate_series",
	"initcap",
	"json_agg",
	"json_array_elements",
	"json_build_array",
	"json_build_object",
	"json_extract_path_text",
	"json_object_agg",
	"jsonb_agg",
	"jsonb_array_elements",
	"jsonb_build_array",
	"jsonb_build_object",
	"jsonb_each",
	"jsonb_extract_path",
	"jsonb_extract_path_text",
	"jsonb_object_keys",
	"jsonb_pretty",
	"lag",
	"last_value",
	"lead",
	"left",
	"length",
	"ln",
	"log",
	"lower",
	"lpad",
	"ltrim",
	"make_date",
	"make_interval",
	"make_timestamp",
	"max",
	"md5",
	"min",
	"mod",
	"mode",
	"now",
	"ntile",
	"obj_description",
	"octet_length",
	"percent_rank",
	"percentile_cont",
	"percentile_disc",
	"pg_encoding_to_char",
	"pg_function_is_visible",
	"pg_get_constraintdef",
	"pg_get_expr",
	"pg_get_function_arguments",
	"pg_get_function_result",
	"pg_get_indexdef",
	"pg_get_triggerdef",
	"pg_get_userbyid",
	"pg_get_viewdef",
	"pg_relation_size",
	"pg_size_pretty",
	"pg_table_is_visible",
	"pg_total_relation_size",
	"pg_type_is_visible",
	"position",
	"power",
	"quote_ident",
	"quote_literal",
	"random",
	"rank",
	"regexp_match",
	"regexp_matches",
	"regexp_replace",
	"repeat",
	"replace",
	"reverse",
	"right",
	"round",
	"row_number",
	"row_to_json",
	"rpad",
	"rtrim",
	"sign",
	"split_part",
	"sqrt",
	"starts_with",
	"statement_timestamp",
	"stddev",
	"string_agg",
	"strpos",
	"substr",
	"substring",
	"sum",
	"timezone",
	"to_char",
	"to_date",
	"to_json",
	"to_jsonb",
	"to_number",
	"to_timestamp",
	"translate",
	"trim",
	"trunc",
	"unnest",
	"upper",
	"variance",
	"version",
	NULL,
};

static bool plain_function(const char *name)
{
	if (strncmp(name, "pg_catalog.", 11) == 0)
		name += 11;
	else if (strchr(name, '.'))
		return false;
	for (int i = 0; plain_functions[i]; i++)
		if (strcmp(plain_functions[i], name) == 0)
			return true;
	return false;
}

static bool glob_any(char *const *globs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(globs[i], name, 0) == 0)
			return true;
	return false;
}

/* Relations of pg_catalog (PostgreSQL 15): an unqualified name among
 * these is the catalog's, since pg_catalog is searched first. */
static const char *const catalog_relations[] = {
	"pg_aggregate",
	"pg_am",
	"pg_amop",
	"pg_amproc",
	"pg_attrdef",
	"pg_attribute",
	"pg_auth_members",
	"pg_authid",
	"pg_available_extension_versions",
	"pg_available_extensions",
	"pg_backend_memory_contexts",
	"pg_cast",
	"pg_class",
	"pg_collation",
	"pg_config",
	"pg_constraint",
	"pg_conversion",
	"pg_cursors",
	"pg_database",
	"pg_db_role_setting",
	"pg_default_acl",
	"pg_depend",
	"pg_description",
	"pg_enum",
	"pg_event_trigger",
	"pg_extension",
	"pg_file_settings",
	"pg_foreign_data_wrapper",
	"pg_foreign_server",
	"pg_foreign_table",
	"pg_group",
	"pg_hba_file_rules",
	"pg_ident_file_mappings",
	"pg_index",
	"pg_indexes",
	"pg_inherits",
	"pg_init_privs",
	"pg_language",
	"pg_largeobject",
	"pg_largeobject_metadata",
	"pg_locks",
	"pg_matviews",
	"pg_namespace",
	"pg_opclass",
	"pg_operator",
	"pg_opfamily",
	"pg_parameter_acl",
	"pg_partitioned_table",
	"pg_policies",
	"pg_policy",
	"pg_prepared_statements",
	"pg_prepared_xacts",
	"pg_proc",
	"pg_publication",
	"pg_publication_namespace",
	"pg_publication_rel",
	"pg_publication_tables",
	"pg_range",
	"pg_replication_origin",
	"pg_replication_origin_status",
	"pg_replication_slots",
	"pg_rewrite",
	"pg_roles",
	"pg_rules",
	"pg_seclabel",
	"pg_seclabels",
	"pg_sequence",
	"pg_sequences",
	"pg_settings",
	"pg_shadow",
	"pg_shdepend",
	"pg_shdescription",
	"pg_shmem_allocations",
	"pg_shseclabel",
	"pg_stat_activity",
	"pg_stat_all_indexes",
	"pg_stat_all_tables",
	"pg_stat_archiver",
	"pg_stat_bgwriter",
	"pg_stat_database",
	"pg_stat_database_conflicts",
	"pg_stat_gssapi",
	"pg_stat_progress_analyze",
	"pg_stat_progress_basebackup",
	"pg_stat_progress_cluster",
	"pg_stat_progress_copy",
	"pg_stat_progress_create_index",
	"pg_stat_progress_vacuum",
	"pg_stat_recovery_prefetch",
	"pg_stat_replication",
	"pg_stat_replication_slots",
	"pg_stat_slru",
	"pg_stat_ssl",
	"pg_stat_subscription",
	"pg_stat_subscription_stats",
	"pg_stat_sys_indexes",
	"pg_stat_sys_tables",
	"pg_stat_user_functions",
	"pg_stat_user_indexes",
	"pg_stat_user_tables",
	"pg_stat_wal",
	"pg_stat_wal_receiver",
	"pg_stat_xact_all_tables",
	"pg_stat_xact_sys_tables",
	"pg_stat_xact_user_functions",
	"pg_stat_xact_user_tables",
	"pg_statio_all_indexes",
	"pg_statio_all_sequences",
	"pg_statio_all_tables",
	"pg_statio_sys_indexes",
	"pg_statio_sys_sequences",
	"pg_statio_sys_tables",
	"pg_statio_user_indexes",
	"pg_statio_user_sequences",
	"pg_statio_user_tables",
	"pg_statistic",
	"pg_statistic_ext",
	"pg_statistic_ext_data",
	"pg_stats",
	"pg_stats_ext",
	"pg_stats_ext_exprs",
	"pg_subscription",
	"pg_subscription_rel",
	"pg_tables",
	"pg_tablespace",
	"pg_timezone_abbrevs",
	"pg_timezone_names",
	"pg_transform",
	"pg_trigger",
	"pg_ts_config",
	"pg_ts_config_map",
	"pg_ts_dict",
	"pg_ts_parser",
	"pg_ts_template",
	"pg_type",
	"pg_user",
	"pg_user_mapping",
	"pg_user_mappings",
	"pg_views",
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool catalog_relation(const char *name)
{
	return bsearch(&name, catalog_relations,
		       sizeof(catalog_relations) / sizeof(*catalog_relations),
		       sizeof(*catalog_relations), cmp_str) != NULL;
}

/*
 * Does table @t match @globs? A qualified name is matched as written. An
 * unqualified one may be any schema of the search path (or pg_catalog for
 * pg_* names, which PostgreSQL searches first): with @all every one of them
 * must match, else any one.
 */
/*
 * Does unqualified @bare match @globs as some schema of the search path
 * would name it (and pg_catalog, with @catalog)? With @all every one of
 * them must match, else any one.
 */
static bool path_matches(const struct policy_stmt *ps, const char *bare,
			 char *const *globs, size_t n, bool all, bool catalog)
{
	static const char *const fallback[] = { "public" };
	const char *const *sch = ps->nschemas ? ps->schemas : fallback;
	size_t nsch = ps->nschemas ? ps->nschemas : 1;
	char name[512];
	bool any = false;

	for (size_t i = 0; i < nsch + catalog; i++) {
		bool hit;

		snprintf(name, sizeof(name), "%s.%s",
			 i < nsch ? sch[i] : "pg_catalog", bare);
		hit = glob_any(globs, n, name);
		if (all && !hit)
			return false;
		any |= hit;
	}
	return any;
}

static bool table_matches(const struct policy_stmt *ps,
			  const struct sql_table *t, char *const *globs,
			  size_t n, bool all)
{
	char name[512];

	if (t->qualified)
		return glob_any(globs, n, t->name);
	if (catalog_relation(t->name)) {
		snprintf(name, sizeof(name), "pg_catalog.%s", t->name);
		return glob_any(globs, n, name);
	}
	return path_matches(ps, t->name, globs, n, all,
			    strncmp(t->name, "pg_", 3) == 0);
}

/*
 * Does function @f match @globs? As written, or, called without a schema,
 * as any schema of the search path would name it: with @all every one,
 * else any one.
 */
static bool function_matches(const struct policy_stmt *ps, const char *f,
			     char *const *globs, size_t n, bool all)
{
	if (glob_any(globs, n, f))
		return true;
	/* For a deny, "dblink*" also catches public.dblink(). */
	if (!all && strrchr(f, '.') && glob_any(globs, n, strrchr(f, '.') + 1))
		return true;
	if (strchr(f, '.'))
		return false;
	return path_matches(ps, f, globs, n, all, false);
}

static enum sql_command stmt_command(const struct sql_stmt *st)
{
	return st->command == SQL_PREPARE ? st->inner : st->command;
}

/* A deny rule's sql part matches when every list it has hits. */
static bool sql_deny_matches(const struct policy_sql *q,
			     const struct policy_stmt *ps)
{
	const struct sql_stmt *st = ps->st;
	bool hit;

	/* Any command the statement runs, a DELETE in a CTE included. */
	if (q->commands &&
	    !(q->commands & ((1u << stmt_command(st)) | st->dml)))
		return false;
	if (q->ntables) {
		hit = false;
		for (size_t i = 0; i < st->ntables && !hit; i++)
			hit = table_matches(ps, &st->tables[i], q->tables,
					    q->ntables, false);
		if (!hit)
			return false;
	}
	if (q->nfunctions) {
		hit = false;
		for (size_t i = 0; i < st->nfunctions && !hit; i++)
			hit = function_matches(ps, st->functions[i],
					       q->functions, q->nfunctions,
					       false);
		if (!hit)
			return false;
	}
	return true;
}

/* An allow rule's sql part covers a statement when it allows the command,
 * every table, every function that is not plain, and every risky flag. */
static bool sql_allow_covers(const struct policy_sql *q,
			     const struct policy_stmt *ps)
{
	const struct sql_stmt *st = ps->st;
	uint32_t risky = st->flags & ~SQL_F_WRITE;

	/* Every command it runs: the statement's own, and the writes
	 * inside it (WITH d AS (DELETE …) SELECT needs delete too). */
	if (q->commands &&
	    (((1u << stmt_command(st)) | st->dml) & ~q->commands))
		return false;
	if (risky & ~q->permit)
		return false;
	/* A DDL statement whose objects are not tables (DROP FUNCTION…)
	 * touches no table: only a rule without a table list covers it. */
	if (q->ntables && st->ntables == 0 && stmt_command(st) == SQL_DDL)
		return false;
	for (size_t i = 0; i < st->ntables; i++)
		if (q->ntables && !table_matches(ps, &st->tables[i], q->tables,
						 q->ntables, true))
			return false;
	for (size_t i = 0; i < st->nfunctions; i++)
		if (!plain_function(st->functions[i]) &&
		    !function_matches(ps, st->functions[i], q->functions,
				      q->nfunctions, true))
			return false;
	return true;
}

/* Statements any allowed session may run unless a rule denies them. */
static bool housekeeping(const struct sql_stmt *st)
{
	switch (st->command) {
	case SQL_TRANSACTION:
	case SQL_SHOW:
		return true;
	case SQL_SET:
		/* search_path changes what unqualified names mean. */
		return st->flags == 0 && !st->nsearch_path &&
		       !st->resets_search_path;
	default:
		return false;
	}
}

/*
 * Does the token's scope list grant every command @st runs on every table
 * it names? A scope is "sql:COMMAND:TABLE", where COMMAND may be "*" and
 * TABLE a glob as in rules ("sql:select" alone: any table).
 */
static bool scopes_cover(const struct policy_user *u,
			 const struct policy_stmt *ps)
{
	const struct sql_stmt *st = ps->st;
	uint32_t need = (1u << stmt_command(st)) | st->dml;

	for (int c = 0; c <= SQL_UTILITY; c++) {
		const char *cmd = sql_command_name(c);
		size_t clen = strlen(cmd);

		if (!(need & (1u << c)))
			continue;
		/* Every table, or the command alone when it names none. */
		for (size_t t = 0; t < (st->ntables ? st->ntables : 1); t++) {
			bool hit = false;

			for (size_t i = 0; i < u->nscopes && !hit; i++) {
				const char *s = u->scopes[i], *tab;
				char *glob;

				if (strncmp(s, "sql:", 4))
					continue;
				s += 4;
				if (!strncmp(s, "*", 1) &&
				    (s[1] == ':' || !s[1]))
					tab = s + 1;
				else if (!strncmp(s, cmd, clen) &&
					 (s[clen] == ':' || !s[clen]))
					tab = s + clen;
				else
					continue;
				if (!*tab || !strcmp(tab, ":*")) {
					hit = true;
					continue;
				}
				if (!st->ntables)
					continue;
				glob = (char *)(tab + 1);
				hit = table_matches(ps, &st->tables[t], &glob,
						    1, true);
			}
			if (!hit)
				return false;
		}
	}
	return true;
}

static void eval_stmt(const struct policy *p, const struct eval_ctx *c,
		      bool shadow, struct policy_decision *out,
		      struct policy_trace *trace)
{
	const struct policy_rule *deny = NULL, *review = NULL, *allow = NULL;
	const struct policy_input *in = c->in;
	const struct policy_stmt *ps = c->ps;
	const struct policy_target *t = c->t;
	size_t target = c->target;
	bool connects = p->def == POLICY_ALLOW;

	if (t->require_user && !in->user) {
		set_pseudo(p, out, POLICY_DENY, PSEUDO_TOKEN,
			   "this target requires a user token");
		return;
	}
	if (in->user && in->user->expires && in->now > in->user->expires) {
		set_pseudo(p, out, POLICY_DENY, PSEUDO_TOKEN,
			   "token expired: reconnect with a fresh token");
		return;
	}
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!rule_on(r, shadow) || rule_matches(r, target, in) != YES)
			continue;
		if (r->action != POLICY_ALLOW) {
			connects |= r->action == POLICY_REVIEW;
			if (r->sql && !sql_deny_matches(r->sql, ps))
				continue;
			trace_add(trace, r);
			consider(r->action == POLICY_DENY ? &deny : &review, r);
			continue;
		}
		connects = true;
		if (r->sql && !sql_allow_covers(r->sql, ps))
			continue;
		trace_add(trace, r);
		consider(&allow, r);
	}
	if (deny)
		set_rule(p, out, POLICY_DENY, deny);
	else if (review)
		set_rule(p, out, POLICY_REVIEW, review);
	else if (allow)
		set_rule(p, out, POLICY_ALLOW, allow);
	else if (connects && housekeeping(ps->st))
		set_pseudo(p, out, POLICY_ALLOW, PSEUDO_SESSION, NULL);
	else
		return; /* the default */
	/* The token narrows what the rules grant. */
	if (out->action != POLICY_DENY && in->user && in->user->scoped &&
	    !housekeeping(ps->st) && !scopes_cover(in->user, ps))
		set_pseudo(p, out, POLICY_DENY, PSEUDO_TOKEN,
			   "the token's scopes do not allow this statement");
}

void policy_decide_stmt_trace(const struct policy *p,
			      const struct policy_input *in, size_t target,
			      const struct policy_stmt *ps,
			      struct policy_decision *out,
			      struct policy_trace *trace)
{
	struct eval_ctx c = { .in = in, .target = target, .ps = ps };

	decide_common(p, out);
	if (target >= p->ntargets) {
		set_pseudo(p, out, POLICY_DENY, PSEUDO_DEFAULT, NULL);
		return;
	}
	c.t = &p->targets[target];
	out->target = c.t->name;
	out->target_idx = target;
	out->proto = c.t->proto;
	decide_modes(p, &c, eval_stmt, out, trace);
}

void policy_decide_stmt(const struct policy *p, const struct policy_input *in,
			size_t target, const struct policy_stmt *ps,
			struct policy_decision *out)
{
	policy_decide_stmt_trace(p, in, target, ps, out, NULL);
}

void policy_refused(const struct policy *p, const char *message,
		    struct policy_decision *out)
{
	decide_common(p, out);
	set_pseudo(p, out, POLICY_DENY, PSEUDO_BRIDLE, message);
}

void policy_note(const struct policy *p, const struct policy_decision *d)
{
	size_t n = p->nrules + PSEUDO_N;
	int c = d->action == POLICY_ALLOW  ? CNT_ALLOW :
		d->action == POLICY_REVIEW ? CNT_REVIEW :
					     CNT_DENY;

	if (d->would_rule && d->would_idx < n)
		__atomic_add_fetch(&p->counters[d->would_idx][CNT_SHADOW], 1,
				   __ATOMIC_RELAXED);
	if (d->rule_idx < n && !(d->would_rule && d->would_idx == d->rule_idx))
		__atomic_add_fetch(&p->counters[d->rule_idx][c], 1,
				   __ATOMIC_RELAXED);
}

const char *policy_decision_name(const struct policy_decision *d)
{
	if (d->would_rule)
		return d->would_action == POLICY_REVIEW ? "shadow_review" :
							  "shadow_deny";
	return policy_action_name(d->action);
}

/* The stronger of two styles: redact hides most, then hash, then partial. */
static enum mask_style stronger(enum mask_style a, enum mask_style b)
{
	static const int rank[] = {
		[MASK_REDACT] = 3, [MASK_HASH] = 2, [MASK_PARTIAL] = 1
	};

	return rank[a] >= rank[b] ? a : b;
}

int policy_mask_plan(const struct policy *p, const struct policy_input *in,
		     size_t target, struct policy_mask_plan *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		struct policy_mask_column *nc;

		if (!r->mask || r->mode != POLICY_ENFORCE ||
		    p->mode == POLICY_OFF || rule_matches(r, target, in) != YES)
			continue;
		for (int d = 0; d < MASK_NDETECTORS; d++) {
			if (!(r->mask->detectors & (1u << d)))
				continue;
			out->detector_style[d] =
				out->detectors & (1u << d) ?
					stronger(out->detector_style[d],
						 r->mask->style) :
					r->mask->style;
			out->detectors |= 1u << d;
		}
		if (!r->mask->ncolumns)
			continue;
		nc = realloc(out->columns,
			     (out->ncolumns + r->mask->ncolumns) * sizeof(*nc));
		if (!nc) {
			policy_mask_plan_release(out);
			return -ENOMEM;
		}
		out->columns = nc;
		for (size_t k = 0; k < r->mask->ncolumns; k++) {
			struct policy_mask_column *c =
				&out->columns[out->ncolumns++];

			c->pattern = r->mask->columns[k];
			c->style = r->mask->style;
			c->dots = 0;
			for (const char *q = c->pattern; *q; q++)
				c->dots += *q == '.';
		}
	}
	return 0;
}

void policy_mask_plan_release(struct policy_mask_plan *m)
{
	free(m->columns);
	memset(m, 0, sizeof(*m));
}
