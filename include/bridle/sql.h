/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQL statement classification from the real PostgreSQL grammar
 * (libpg_query): for each statement of a query string, the command, the
 * tables it reads and writes (schema-qualified, CTE names resolved,
 * unqualified names given the session's first search_path schema), the
 * functions it calls, and flags for what a policy must treat with care.
 * Groundwork for the PostgreSQL module: unparseable means an error, which
 * the caller turns into a denial.
 */
#ifndef BRIDLE_SQL_H
#define BRIDLE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sql_command {
	SQL_SELECT,
	SQL_INSERT,
	SQL_UPDATE,
	SQL_DELETE,
	SQL_MERGE,
	SQL_COPY,
	SQL_DDL,
	SQL_PRIVILEGE,
	SQL_SET,
	SQL_SHOW,
	SQL_TRANSACTION,
	SQL_EXPLAIN,
	SQL_PREPARE,
	SQL_EXECUTE,
	SQL_CALL,
	SQL_DO,
	SQL_UTILITY,
};

#define SQL_F_WRITE (1u << 0) /* changes data or schema */
#define SQL_F_PRIV_CHANGE (1u << 1) /* SET ROLE, set_config('role'), GRANT… */
#define SQL_F_SERVER_FILE (1u << 2) /* COPY … PROGRAM/file, pg_read_file… */
#define SQL_F_OPAQUE (1u << 3) /* DO, CALL, EXECUTE: code not seen */
#define SQL_F_SELECT_INTO (1u << 4) /* SELECT … INTO creates a table */
#define SQL_F_EXPLAIN_ANALYZE (1u << 5) /* EXPLAIN ANALYZE runs its query */

struct sql_table {
	char *name; /* schema.table as written (quoted case kept), or the
		     * bare table name when unqualified and no schema given;
		     * a database name before them is dropped (PostgreSQL
		     * accepts only the current one) */
	bool write;
	bool qualified; /* the statement named the schema */
};

struct sql_stmt {
	enum sql_command command;
	uint32_t flags;
	/* Bit set of the data-changing commands (insert, update, delete,
	 * merge) the statement runs anywhere: a DELETE in a CTE of a SELECT,
	 * EXPLAIN ANALYZE UPDATE, COPY FROM (an insert); and update for
	 * SELECT … FOR UPDATE/SHARE, which locks rows as PostgreSQL's own
	 * UPDATE privilege check does. */
	uint32_t dml;
	struct sql_table *tables;
	size_t ntables;
	char **functions; /* as called, schema-qualified when written so */
	size_t nfunctions;
	/* PREPARE, EXECUTE, DEALLOCATE: the prepared statement's name (NULL
	 * for DEALLOCATE ALL). PREPARE also gives the command it wraps. */
	char *prepared;
	enum sql_command inner;
	/* Column references, for masking: the last name of each (email
	 * in c.email), whether any is a star (t.*, *), and the names and
	 * aliases of the relations, so that a reference to one of them is
	 * known for a whole row (row_to_json(c)). */
	char **columns;
	size_t ncolumns;
	bool star;
	char **rowrefs;
	size_t nrowrefs;
	/* SET search_path: the schemas named, in order. */
	char **search_path;
	size_t nsearch_path;
	bool resets_search_path; /* RESET search_path / RESET ALL / DISCARD ALL */
	/* FETCH, MOVE, CLOSE of a cursor: a select of rows whose query was
	 * decided at DECLARE (itself classified as its query). */
	bool fetch;
	bool copy_out; /* COPY … TO (a file, a program, or STDOUT) */
	bool drops_prepared; /* DEALLOCATE ALL, DISCARD ALL */
};

struct sql_result {
	struct sql_stmt *stmts;
	size_t nstmts;
	char error[256]; /* set when classification failed */
};

/*
 * Classify @text. @schema names unqualified tables (the session's first
 * search_path entry); NULL leaves them bare, with qualified false, for a
 * caller that resolves them against a whole search path. Returns 0, or -1 with out->error set (parse error,
 * out of memory). Free with sql_result_free() either way.
 */
int sql_classify(const char *text, const char *schema, struct sql_result *out);
void sql_result_free(struct sql_result *r);

/* Deep copy of @src into @dst (zeroed by the caller). Returns 0 or
 * -ENOMEM; free with the sql_result that holds @dst. */
int sql_stmt_copy(const struct sql_stmt *src, struct sql_stmt *dst);

const char *sql_command_name(enum sql_command c);

/* "DELETE on public.orders, public.x" for messages and logs. */
void sql_describe(const struct sql_stmt *st, char *buf, size_t len);

#endif
