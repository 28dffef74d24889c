// SPDX-License-Identifier: Apache-2.0
/*
 * SQL classification over libpg_query's JSON parse tree. The walk is
 * generic: any object with a "relname" is a relation reference, any
 * FuncCall a function call; what the statement does to a relation is
 * decided by the node that holds it (the target of INSERT/UPDATE/DELETE/
 * MERGE, COPY FROM, SELECT INTO and DDL is written, everything else read).
 */
#include <errno.h>
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "bridle/sql.h"

static const char *const command_names[] = {
	[SQL_SELECT] = "select",
	[SQL_INSERT] = "insert",
	[SQL_UPDATE] = "update",
	[SQL_DELETE] = "delete",
	[SQL_MERGE] = "merge",
	[SQL_COPY] = "copy",
	[SQL_DDL] = "ddl",
	[SQL_PRIVILEGE] = "privilege",
	[SQL_SET] = "set",
	[SQL_SHOW] = "show",
	[SQL_TRANSACTION] = "transaction",
	[SQL_EXPLAIN] = "explain",
	[SQL_PREPARE] = "prepare",
	[SQL_EXECUTE] = "execute",
	[SQL_CALL] = "call",
	[SQL_DO] = "do",
	[SQL_UTILITY] = "utility",
};

const char *sql_command_name(enum sql_command c)
{
	return (size_t)c < sizeof(command_names) / sizeof(*command_names) ?
		       command_names[c] :
		       "?";
}

/* Functions that read or write files or run programs on the server. */
static const char *const server_file_functions[] = {
	"pg_read_file",
	"pg_read_binary_file",
	"pg_ls_dir",
	"pg_stat_file",
	"lo_import",
	"lo_export",
	"pg_file_write",
	"pg_ls_logdir",
	"pg_ls_waldir",
	"pg_ls_tmpdir",
	NULL,
};

struct walk {
	const char *schema;
	struct sql_stmt *st;
	/* CTE names in scope where the walk is: those of the WITH of every
	 * query the walk is inside, each visible only after its own
	 * definition (or in it, WITH RECURSIVE). Beyond the array's room a
	 * name is taken for a table: more to allow, never less. */
	const char *scope[64];
	size_t nscope;
	int err;
};

static int add_table(struct walk *w, const char *name, bool qualified,
		     bool write)
{
	struct sql_stmt *st = w->st;
	struct sql_table *nt;

	for (size_t i = 0; i < st->ntables; i++)
		if (strcmp(st->tables[i].name, name) == 0 &&
		    st->tables[i].qualified == qualified) {
			st->tables[i].write |= write;
			return 0;
		}
	nt = realloc(st->tables, (st->ntables + 1) * sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	st->tables = nt;
	nt[st->ntables].name = strdup(name);
	if (!nt[st->ntables].name)
		return -ENOMEM;
	nt[st->ntables].qualified = qualified;
	nt[st->ntables++].write = write;
	return 0;
}

/* Add @name to the set @v/@n (no duplicates). Returns 0 or -ENOMEM. */
static int strset_add(char ***v, size_t *n, const char *name)
{
	char **nv;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], name) == 0)
			return 0;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(name);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void column_ref(struct walk *w, json_t *cr)
{
	json_t *fields = json_object_get(cr, "fields");
	json_t *last = json_array_get(fields, json_array_size(fields) - 1);
	const char *name = json_string_value(
		json_object_get(json_object_get(last, "String"), "sval"));

	if (json_object_get(last, "A_Star"))
		w->st->star = true;
	else if (name && strset_add(&w->st->columns, &w->st->ncolumns, name))
		w->err = -ENOMEM;
}

static void relation(struct walk *w, json_t *rv, bool write)
{
	const char *rel = json_string_value(json_object_get(rv, "relname"));
	const char *sch = json_string_value(json_object_get(rv, "schemaname"));
	bool qualified = sch != NULL;
	char name[256];

	if (!rel)
		return;
	{
		json_t *al = json_object_get(rv, "alias");
		const char *alias =
			json_string_value(json_object_get(al, "aliasname"));

		/* t(a, b, x) renames the columns: any name may now be a
		 * masked column's, so count it as a star. */
		if (json_array_size(json_object_get(al, "colnames")))
			w->st->star = true;

		if (strset_add(&w->st->rowrefs, &w->st->nrowrefs, rel) ||
		    (alias &&
		     strset_add(&w->st->rowrefs, &w->st->nrowrefs, alias)))
			w->err = -ENOMEM;
	}
	if (!sch) {
		/* A CTE in scope, not a table. A written relation never is:
		 * INSERT INTO x writes table x whatever WITH x says. */
		for (size_t i = 0; i < w->nscope && !write; i++)
			if (strcmp(w->scope[i], rel) == 0)
				return;
		sch = w->schema;
		qualified = sch != NULL;
	}
	/* A database name before the schema can only be the current
	 * database: the table is the same without it. */
	if (sch)
		snprintf(name, sizeof(name), "%s.%s", sch, rel);
	else
		snprintf(name, sizeof(name), "%s", rel);
	if (add_table(w, name, qualified, write))
		w->err = -ENOMEM;
	if (write)
		w->st->flags |= SQL_F_WRITE;
}

/* "a.b" from a list of String nodes, or NULL. */
static char *dotted(json_t *list, char *buf, size_t len)
{
	size_t i, off = 0;
	json_t *e;

	buf[0] = '\0';
	json_array_foreach(list, i, e) {
		const char *s = json_string_value(
			json_object_get(json_object_get(e, "String"), "sval"));

		if (!s)
			return NULL;
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
					"%s%s", i ? "." : "", s);
	}
	return off && off < len ? buf : NULL;
}

static void function(struct walk *w, json_t *fc)
{
	struct sql_stmt *st = w->st;
	char name[256], **nf;
	const char *last;
	json_t *args = json_object_get(fc, "args");

	if (!dotted(json_object_get(fc, "funcname"), name, sizeof(name)))
		return;
	last = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
	for (int i = 0; server_file_functions[i]; i++)
		if (strcmp(last, server_file_functions[i]) == 0)
			st->flags |= SQL_F_SERVER_FILE;
	if (strcmp(last, "set_config") == 0) {
		const char *what = json_string_value(json_object_get(
			json_object_get(json_object_get(json_array_get(args, 0),
							"A_Const"),
					"sval"),
			"sval"));

		/* A computed setting name could be anything: assume the worst. */
		if (!what || strcmp(what, "role") == 0 ||
		    strcmp(what, "session_authorization") == 0 ||
		    strcmp(what, "search_path") == 0)
			st->flags |= SQL_F_PRIV_CHANGE;
	}
	for (size_t i = 0; i < st->nfunctions; i++)
		if (strcmp(st->functions[i], name) == 0)
			return;
	nf = realloc(st->functions, (st->nfunctions + 1) * sizeof(*nf));
	if (!nf || !(nf[st->nfunctions] = strdup(name))) {
		if (nf)
			st->functions = nf;
		w->err = -ENOMEM;
		return;
	}
	st->functions = nf;
	st->nfunctions++;
}

static void walk(struct walk *w, json_t *j);
static void walk_fields(struct walk *w, json_t *j, const char *skip);

/* A node whose "relation" is written: DML anywhere (also in a CTE). */
static bool writes_relation(const char *key, json_t *node)
{
	if (!strcmp(key, "InsertStmt") || !strcmp(key, "UpdateStmt") ||
	    !strcmp(key, "DeleteStmt") || !strcmp(key, "MergeStmt"))
		return true;
	return !strcmp(key, "CopyStmt") &&
	       json_is_true(json_object_get(node, "is_from"));
}

static void walk_node(struct walk *w, const char *key, json_t *v)
{
	if (!strcmp(key, "ColumnRef")) {
		column_ref(w, v);
		return;
	}
	/* FOR UPDATE/SHARE locks rows: it takes what an update takes. */
	if (!strcmp(key, "lockingClause") && json_array_size(v))
		w->st->dml |= 1u << SQL_UPDATE;
	/* EXECUTE inside EXPLAIN ANALYZE or CREATE TABLE AS runs a
	 * prepared statement this statement does not show. */
	if (!strcmp(key, "ExecuteStmt"))
		w->st->flags |= SQL_F_OPAQUE;
	if (!strcmp(key, "FuncCall") || !strcmp(key, "funccall")) {
		/* "funccall" is CALL's typed field, a FuncCall unwrapped. */
		function(w, v);
	} else if (!strcmp(key, "intoClause") || !strcmp(key, "into")) {
		relation(w, json_object_get(v, "rel"), true);
		if (!strcmp(key, "intoClause"))
			w->st->flags |= SQL_F_SELECT_INTO;
		return;
	} else if (writes_relation(key, v)) {
		w->st->dml |= 1u << (!strcmp(key, "UpdateStmt") ? SQL_UPDATE :
				     !strcmp(key, "DeleteStmt") ? SQL_DELETE :
				     !strcmp(key, "MergeStmt")	? SQL_MERGE :
								  SQL_INSERT);
		relation(w, json_object_get(v, "relation"), true);
		walk_fields(w, v, "relation");
		return;
	}
	walk(w, v);
}

static void scope_push(struct walk *w, json_t *cte)
{
	const char *name = json_string_value(json_object_get(
		json_object_get(cte, "CommonTableExpr"), "ctename"));

	if (name && w->nscope < sizeof(w->scope) / sizeof(*w->scope))
		w->scope[w->nscope++] = name;
}

/*
 * The fields of statement object @j but @skip. A WITH brings its CTE names
 * into scope for the rest of the statement, and for each CTE's own query
 * the names defined before it (all of them, RECURSIVE).
 */
static void walk_fields(struct walk *w, json_t *j, const char *skip)
{
	json_t *wc = json_object_get(j, "withClause"), *ctes, *c, *v;
	size_t base = w->nscope, i;
	const char *k;

	if (wc) {
		ctes = json_object_get(wc, "ctes");
		if (json_is_true(json_object_get(wc, "recursive")))
			json_array_foreach(ctes, i, c)
				scope_push(w, c);
		json_array_foreach(ctes, i, c) {
			walk(w, json_object_get(
					json_object_get(c, "CommonTableExpr"),
					"ctequery"));
			if (!json_is_true(json_object_get(wc, "recursive")))
				scope_push(w, c);
		}
	}
	json_object_foreach(j, k, v)
		if ((!skip || strcmp(k, skip)) && strcmp(k, "withClause"))
			walk_node(w, k, v);
	w->nscope = base;
}

static void walk(struct walk *w, json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			walk(w, v);
		return;
	}
	if (!json_is_object(j))
		return;
	if (json_is_string(json_object_get(j, "relname"))) {
		relation(w, j, false);
		return;
	}
	if (json_object_get(j, "withClause")) {
		walk_fields(w, j, NULL);
		return;
	}
	json_object_foreach(j, k, v)
		walk_node(w, k, v);
}

static bool has_option(json_t *options, const char *name)
{
	size_t i;
	json_t *o;

	json_array_foreach(options, i, o) {
		const char *d = json_string_value(json_object_get(
			json_object_get(o, "DefElem"), "defname"));

		if (d && !strcmp(d, name))
			return true;
	}
	return false;
}

/* The "name" of @v, copied into *out (NULL when absent). */
static int dup_name(json_t *v, char **out)
{
	const char *n = json_string_value(json_object_get(v, "name"));

	if (!n)
		return 0;
	*out = strdup(n);
	return *out ? 0 : -ENOMEM;
}

/* SET search_path TO a, b: the schemas, or a computed value as "?". */
static int search_path(json_t *v, struct sql_stmt *st)
{
	json_t *args = json_object_get(v, "args"), *a;
	size_t i, n = json_array_size(args);

	st->search_path = calloc(n ? n : 1, sizeof(*st->search_path));
	if (!st->search_path)
		return -ENOMEM;
	json_array_foreach(args, i, a) {
		const char *s = json_string_value(json_object_get(
			json_object_get(json_object_get(a, "A_Const"), "sval"),
			"sval"));

		st->search_path[i] = strdup(s ? s : "?");
		if (!st->search_path[i])
			return -ENOMEM;
		st->nsearch_path++;
	}
	return 0;
}

/* Command and flags of the top-level node @key/@v. */
static void classify(struct walk *w, const char *key, json_t *v)
{
	struct sql_stmt *st = w->st;
	static const char *const privilege[] = {
		"GrantStmt",
		"GrantRoleStmt",
		"CreateRoleStmt",
		"AlterRoleStmt",
		"AlterRoleSetStmt",
		"DropRoleStmt",
		"AlterDefaultPrivilegesStmt",
		"ReassignOwnedStmt",
		NULL,
	};
	static const char *const utility[] = {
		"ListenStmt",  "UnlistenStmt",	 "NotifyStmt", "DeallocateStmt",
		"DiscardStmt", "CheckPointStmt", "LoadStmt",   NULL,
	};

	if (!strcmp(key, "SelectStmt"))
		st->command = SQL_SELECT;
	else if (!strcmp(key, "InsertStmt"))
		st->command = SQL_INSERT;
	else if (!strcmp(key, "UpdateStmt"))
		st->command = SQL_UPDATE;
	else if (!strcmp(key, "DeleteStmt"))
		st->command = SQL_DELETE;
	else if (!strcmp(key, "MergeStmt"))
		st->command = SQL_MERGE;
	else if (!strcmp(key, "CopyStmt")) {
		st->command = SQL_COPY;
		st->copy_out = !json_is_true(json_object_get(v, "is_from"));
		if (json_object_get(v, "filename") ||
		    json_is_true(json_object_get(v, "is_program")))
			st->flags |= SQL_F_SERVER_FILE;
	} else if (!strcmp(key, "VariableSetStmt")) {
		const char *n = json_string_value(json_object_get(v, "name"));

		const char *kind =
			json_string_value(json_object_get(v, "kind"));

		st->command = SQL_SET;
		if (n &&
		    (!strcmp(n, "role") || !strcmp(n, "session_authorization")))
			st->flags |= SQL_F_PRIV_CHANGE;
		if (kind && !strcmp(kind, "VAR_RESET_ALL"))
			st->resets_search_path = true;
		else if (n && !strcmp(n, "search_path")) {
			if (kind && !strcmp(kind, "VAR_SET_VALUE"))
				w->err = search_path(v, st);
			else
				st->resets_search_path = true;
		}
	} else if (!strcmp(key, "VariableShowStmt")) {
		st->command = SQL_SHOW;
	} else if (!strcmp(key, "TransactionStmt")) {
		st->command = SQL_TRANSACTION;
	} else if (!strcmp(key, "ExplainStmt")) {
		st->command = SQL_EXPLAIN;
		if (has_option(json_object_get(v, "options"), "analyze"))
			st->flags |= SQL_F_EXPLAIN_ANALYZE;
	} else if (!strcmp(key, "PrepareStmt")) {
		json_t *q = json_object_get(v, "query");
		const char *ik;
		json_t *iv;

		st->command = SQL_PREPARE;
		json_object_foreach(q, ik, iv) {
			struct sql_stmt inner = { 0 };
			struct walk iw = { .st = &inner };

			classify(&iw, ik, iv);
			st->inner = inner.command;
			st->flags |= inner.flags;
		}
		w->err = dup_name(v, &st->prepared);
	} else if (!strcmp(key, "ExecuteStmt")) {
		st->command = SQL_EXECUTE;
		st->flags |= SQL_F_OPAQUE;
		w->err = dup_name(v, &st->prepared);
	} else if (!strcmp(key, "DeclareCursorStmt")) {
		/* Its query is walked like any: the cursor reads what it
		 * reads. */
		st->command = SQL_SELECT;
	} else if (!strcmp(key, "FetchStmt") ||
		   !strcmp(key, "ClosePortalStmt")) {
		st->command = SQL_SELECT;
		st->fetch = true;
	} else if (!strcmp(key, "CallStmt")) {
		st->command = SQL_CALL;
		st->flags |= SQL_F_OPAQUE;
	} else if (!strcmp(key, "DoStmt")) {
		st->command = SQL_DO;
		st->flags |= SQL_F_OPAQUE;
	} else {
		st->command = SQL_DDL;
		st->flags |= SQL_F_WRITE;
		for (int i = 0; privilege[i]; i++)
			if (!strcmp(key, privilege[i])) {
				st->command = SQL_PRIVILEGE;
				st->flags |= SQL_F_PRIV_CHANGE;
			}
		for (int i = 0; utility[i]; i++)
			if (!strcmp(key, utility[i])) {
				st->command = SQL_UTILITY;
				st->flags &= ~SQL_F_WRITE;
			}
		if (!strcmp(key, "DeallocateStmt")) {
			w->err = dup_name(v, &st->prepared);
			st->drops_prepared = !st->prepared;
		}
		if (!strcmp(key, "DiscardStmt")) {
			const char *t =
				json_string_value(json_object_get(v, "target"));

			st->resets_search_path = true;
			st->drops_prepared = t && (!strcmp(t, "DISCARD_ALL") ||
						   !strcmp(t, "DISCARD_PLANS"));
		}
	}
}

/* A List of String nodes (DROP's object names) as a relation. */
static void object_name(struct walk *w, json_t *obj)
{
	json_t *items = json_object_get(json_object_get(obj, "List"), "items");
	json_t *rv = json_object();
	size_t n = json_array_size(items);
	static const char *const keys[] = { "catalogname", "schemaname",
					    "relname" };

	if (!rv || n == 0 || n > 3) {
		json_decref(rv);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *sv = json_object_get(
			json_object_get(json_array_get(items, i), "String"),
			"sval");

		if (!json_is_string(sv))
			break;
		json_object_set(rv, keys[3 - n + i], sv);
	}
	relation(w, rv, true);
	json_decref(rv);
}

/* DDL writes the relation it names. */
static void ddl_targets(struct walk *w, json_t *v)
{
	const char *type = json_string_value(json_object_get(v, "removeType"));
	size_t i;
	json_t *r;

	/* DROP TABLE/VIEW/INDEX/SEQUENCE … a, b: the objects are names. */
	if (type &&
	    (!strcmp(type, "OBJECT_TABLE") || !strcmp(type, "OBJECT_VIEW") ||
	     !strcmp(type, "OBJECT_MATVIEW") || !strcmp(type, "OBJECT_INDEX") ||
	     !strcmp(type, "OBJECT_SEQUENCE") ||
	     !strcmp(type, "OBJECT_FOREIGN_TABLE")))
		json_array_foreach(json_object_get(v, "objects"), i, r)
			object_name(w, r);

	relation(w, json_object_get(v, "relation"), true);
	json_array_foreach(json_object_get(v, "relations"), i, r)
		relation(w,
			 json_object_get(r, "RangeVar") ?
				 json_object_get(r, "RangeVar") :
				 r,
			 true);
}

int sql_classify(const char *text, const char *schema, struct sql_result *out)
{
	PgQueryParseResult pr;
	json_error_t je;
	json_t *tree, *stmts, *s;
	size_t i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	pr = pg_query_parse(text);
	if (pr.error) {
		snprintf(out->error, sizeof(out->error), "syntax error: %s",
			 pr.error->message);
		pg_query_free_parse_result(pr);
		return -1;
	}
	tree = json_loads(pr.parse_tree, 0, &je);
	pg_query_free_parse_result(pr);
	stmts = json_object_get(tree, "stmts");
	if (!json_is_array(stmts) || json_array_size(stmts) == 0) {
		snprintf(out->error, sizeof(out->error), "no statement");
		goto out;
	}
	out->stmts = calloc(json_array_size(stmts), sizeof(*out->stmts));
	if (!out->stmts)
		goto oom;
	json_array_foreach(stmts, i, s) {
		json_t *node = json_object_get(s, "stmt");
		struct walk w = { .schema = schema, .st = &out->stmts[i] };
		const char *key;
		json_t *v;

		out->nstmts++;
		if (json_object_size(node) != 1) {
			snprintf(out->error, sizeof(out->error),
				 "statement %zu: unexpected parse tree", i + 1);
			goto out;
		}
		json_object_foreach(node, key, v) {
			classify(&w, key, v);
			if (w.st->command == SQL_DDL ||
			    w.st->command == SQL_PRIVILEGE)
				ddl_targets(&w, v);
			walk_node(&w, key, v);
		}
		/* Plain EXPLAIN only plans: nothing it names is written. With
		 * ANALYZE it runs the statement, writes included. */
		if (w.st->command == SQL_EXPLAIN &&
		    !(w.st->flags & SQL_F_EXPLAIN_ANALYZE)) {
			w.st->flags &= ~SQL_F_WRITE;
			w.st->dml = 0;
			for (size_t t = 0; t < w.st->ntables; t++)
				w.st->tables[t].write = false;
		}
		if (w.err)
			goto oom;
	}
	ret = 0;
	goto out;
oom:
	snprintf(out->error, sizeof(out->error), "out of memory");
out:
	json_decref(tree);
	return ret;
}

void sql_result_free(struct sql_result *r)
{
	for (size_t i = 0; i < r->nstmts; i++) {
		for (size_t k = 0; k < r->stmts[i].ntables; k++)
			free(r->stmts[i].tables[k].name);
		free(r->stmts[i].tables);
		for (size_t k = 0; k < r->stmts[i].nfunctions; k++)
			free(r->stmts[i].functions[k]);
		free(r->stmts[i].functions);
		free(r->stmts[i].prepared);
		for (size_t k = 0; k < r->stmts[i].ncolumns; k++)
			free(r->stmts[i].columns[k]);
		free(r->stmts[i].columns);
		for (size_t k = 0; k < r->stmts[i].nrowrefs; k++)
			free(r->stmts[i].rowrefs[k]);
		free(r->stmts[i].rowrefs);
		for (size_t k = 0; k < r->stmts[i].nsearch_path; k++)
			free(r->stmts[i].search_path[k]);
		free(r->stmts[i].search_path);
	}
	free(r->stmts);
	r->stmts = NULL;
	r->nstmts = 0;
}

static char *dup_or_null(const char *s, int *err)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*err = -ENOMEM;
	return d;
}

int sql_stmt_copy(const struct sql_stmt *src, struct sql_stmt *dst)
{
	int err = 0;

	dst->command = src->command;
	dst->flags = src->flags;
	dst->dml = src->dml;
	dst->inner = src->inner;
	dst->resets_search_path = src->resets_search_path;
	dst->fetch = src->fetch;
	dst->copy_out = src->copy_out;
	dst->drops_prepared = src->drops_prepared;
	dst->prepared = dup_or_null(src->prepared, &err);
	dst->tables =
		calloc(src->ntables ? src->ntables : 1, sizeof(*dst->tables));
	dst->functions = calloc(src->nfunctions ? src->nfunctions : 1,
				sizeof(*dst->functions));
	if (!dst->tables || !dst->functions)
		return -ENOMEM;
	for (size_t i = 0; i < src->ntables && !err; i++) {
		dst->tables[i] = src->tables[i];
		dst->tables[i].name = dup_or_null(src->tables[i].name, &err);
		dst->ntables += !err;
	}
	for (size_t i = 0; i < src->nfunctions && !err; i++) {
		dst->functions[i] = dup_or_null(src->functions[i], &err);
		dst->nfunctions += !err;
	}
	dst->star = src->star;
	for (size_t i = 0; i < src->ncolumns && !err; i++)
		err = strset_add(&dst->columns, &dst->ncolumns,
				 src->columns[i]);
	for (size_t i = 0; i < src->nrowrefs && !err; i++)
		err = strset_add(&dst->rowrefs, &dst->nrowrefs,
				 src->rowrefs[i]);
	return err;
}

/* "DELETE on public.orders, public.x" for messages. */
void sql_describe(const struct sql_stmt *st, char *buf, size_t len)
{
	size_t off;
	const char *cmd = sql_command_name(
		st->command == SQL_PREPARE ? st->inner : st->command);

	off = (size_t)snprintf(buf, len, "%s", cmd);
	for (size_t i = 0; i < len && cmd[i] && i < off; i++)
		buf[i] = (char)(buf[i] >= 'a' && buf[i] <= 'z' ? buf[i] - 32 :
								 buf[i]);
	for (size_t i = 0; i < st->ntables && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					i ? ", " : " on ", st->tables[i].name);
	if (st->flags & SQL_F_PRIV_CHANGE && off < len)
		off += (size_t)snprintf(buf + off, len - off,
					" (changes privileges)");
	if (st->flags & SQL_F_SERVER_FILE && off < len)
		off += (size_t)snprintf(buf + off, len - off,
					" (server files or programs)");
	for (size_t i = 0; i < st->nfunctions && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					i ? ", " : " calling ",
					st->functions[i]);
}
