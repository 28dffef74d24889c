// SPDX-License-Identifier: Apache-2.0
/*
 * SQL classification, table-driven: each statement with its expected
 * command(s), flags, tables (with r/w) and functions. Tricky cases on
 * purpose: CTEs that shadow tables, data-modifying CTEs, SELECT INTO,
 * EXPLAIN with and without ANALYZE, privilege changes spelled several
 * ways, server-side files, quoted names, several statements.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bridle/sql.h"

#define W SQL_F_WRITE
#define P SQL_F_PRIV_CHANGE
#define F SQL_F_SERVER_FILE
#define O SQL_F_OPAQUE
#define I SQL_F_SELECT_INTO
#define A SQL_F_EXPLAIN_ANALYZE

struct sql_case {
	const char *sql;
	const char *commands; /* space-separated, one per statement */
	uint32_t flags;       /* OR of all statements' flags */
	const char *tables;   /* "name:r name:w", sorted as found */
	const char *functions;
};

static const struct sql_case cases[] = {
	{ "select * from orders", "select", 0, "public.orders:r", "" },
	{ "SELECT id FROM sales.orders o JOIN customers c ON c.id = o.cid",
	  "select", 0, "sales.orders:r public.customers:r", "" },
	{ "select * from \"Mixed Case\".\"T\"", "select", 0, "Mixed Case.T:r",
	  "" },
	{ "insert into orders (id) values (1)", "insert", W, "public.orders:w",
	  "" },
	{ "insert into archive select * from orders", "insert", W,
	  "public.archive:w public.orders:r", "" },
	{ "update orders set total = 0 where id in (select id from refunds)",
	  "update", W, "public.orders:w public.refunds:r", "" },
	{ "delete from orders using customers c where c.id = orders.cid",
	  "delete", W, "public.orders:w public.customers:r", "" },
	{ "merge into stock s using deliveries d on s.id = d.id "
	  "when matched then update set qty = s.qty + d.qty",
	  "merge", W, "public.stock:w public.deliveries:r", "" },
	/* A CTE named like a table hides the table. */
	{ "with orders as (select 1 as id) select * from orders", "select", 0,
	  "", "" },
	{ "with o as (select * from public.orders) select * from o", "select",
	  0, "public.orders:r", "" },
	/* Data-modifying CTE inside a SELECT. */
	{ "with d as (delete from secrets returning *) select * from d",
	  "select", W, "public.secrets:w", "" },
	{ "select * into copy_of_orders from orders", "select", W | I,
	  "public.copy_of_orders:w public.orders:r", "" },
	{ "create table t2 as select * from orders", "ddl", W,
	  "public.orders:r public.t2:w", "" },
	{ "explain select * from orders", "explain", 0, "public.orders:r", "" },
	{ "explain delete from orders", "explain", 0, "public.orders:r", "" },
	{ "explain analyze delete from orders", "explain", W | A,
	  "public.orders:w", "" },
	{ "explain (analyze, buffers) update orders set x = 1", "explain",
	  W | A, "public.orders:w", "" },
	{ "set role admin", "set", P, "", "" },
	{ "set session authorization postgres", "set", P, "", "" },
	{ "set search_path = public", "set", 0, "", "" },
	{ "select set_config('role', 'admin', false)", "select", P, "",
	  "set_config" },
	{ "select set_config('application_name', 'x', false)", "select", 0,
	  "", "set_config" },
	{ "select set_config(current_setting('x'), 'admin', false)", "select",
	  P, "", "set_config,current_setting" },
	{ "copy orders to stdout", "copy", 0, "public.orders:r", "" },
	{ "copy orders from stdin", "copy", W, "public.orders:w", "" },
	{ "copy orders to '/tmp/x'", "copy", F, "public.orders:r", "" },
	{ "copy orders from program 'curl evil'", "copy", W | F,
	  "public.orders:w", "" },
	{ "select pg_read_file('/etc/passwd')", "select", F, "",
	  "pg_read_file" },
	{ "select lo_import('/etc/shadow')", "select", F, "", "lo_import" },
	{ "select pg_catalog.pg_read_binary_file('x')", "select", F, "",
	  "pg_catalog.pg_read_binary_file" },
	{ "do $$ begin perform 1; end $$", "do", O, "", "" },
	{ "call refresh_all()", "call", O, "", "refresh_all" },
	{ "prepare q as select * from orders", "prepare", 0, "public.orders:r",
	  "" },
	{ "execute q", "execute", O, "", "" },
	{ "grant select on orders to agent", "privilege", W | P,
	  "public.orders:r", "" },
	{ "alter role agent superuser", "privilege", W | P, "", "" },
	{ "drop table orders", "ddl", W, "public.orders:w", "" },
	{ "DROP TABLE IF EXISTS hr.salaries, \"Audit\"", "ddl", W,
	  "hr.salaries:w public.Audit:w", "" },
	{ "drop view v", "ddl", W, "public.v:w", "" },
	{ "prepare p as delete from orders", "prepare", W, "public.orders:w",
	  "" },
	{ "set search_path to hr, public", "set", 0, "", "" },
	{ "declare c cursor with hold for select lower(email) from customers",
	  "select", 0, "public.customers:r", "lower" },
	{ "fetch 10 from c", "select", 0, "", "" },
	{ "explain analyze execute p", "explain", A | O, "", "" },
	{ "select * from orders for update", "select", 0, "public.orders:r",
	  "" },
	{ "create table t as execute p", "ddl", W | O, "public.t:w", "" },
	/* A CTE name never hides a written table, nor one outside its
	 * scope, nor a table read before the CTE of that name is defined. */
	{ "with orders as (select 1) insert into orders values (1)", "insert",
	  W, "public.orders:w", "" },
	{ "select * from audit where exists (with audit as (select 1) "
	  "select 1 from audit)",
	  "select", 0, "public.audit:r", "" },
	{ "with a as (select * from secret), secret as (select 1) "
	  "select * from a, secret",
	  "select", 0, "public.secret:r", "" },
	{ "with recursive t(n) as (select 1 union all select n + 1 from t "
	  "where n < 3) select * from t",
	  "select", 0, "", "" },
	{ "select set_config('search_path', 'hr', false)", "select", P,
	  "", "set_config" },
	{ "truncate orders, refunds", "ddl", W,
	  "public.orders:w public.refunds:w", "" },
	{ "alter table orders add column x int", "ddl", W, "public.orders:w",
	  "" },
	{ "begin", "transaction", 0, "", "" },
	{ "show search_path", "show", 0, "", "" },
	{ "listen jobs", "utility", 0, "", "" },
	{ "select 1; delete from orders", "select delete", W,
	  "public.orders:w", "" },
	{ "select upper(name), count(*) from mydb.s.t group by 1", "select", 0,
	  "s.t:r", "upper,count" },
	{ "select * from orders where id = (select max(id) from orders)",
	  "select", 0, "public.orders:r", "max" },
};

/* Render a result in the case's textual form and compare. */
static void check(const struct sql_case *c)
{
	struct sql_result r;
	char cmds[256] = "", tables[512] = "", funcs[256] = "";
	uint32_t flags = 0;
	size_t oc = 0, ot = 0, of = 0;

	if (sql_classify(c->sql, "public", &r))
		fail_msg("%s: %s", c->sql, r.error);
	for (size_t i = 0; i < r.nstmts; i++) {
		const struct sql_stmt *st = &r.stmts[i];

		oc += (size_t)snprintf(cmds + oc, sizeof(cmds) - oc, "%s%s",
				       i ? " " : "",
				       sql_command_name(st->command));
		flags |= st->flags;
		for (size_t k = 0; k < st->ntables; k++)
			ot += (size_t)snprintf(tables + ot, sizeof(tables) - ot,
					       "%s%s:%s", ot ? " " : "",
					       st->tables[k].name,
					       st->tables[k].write ? "w" : "r");
		for (size_t k = 0; k < st->nfunctions; k++)
			of += (size_t)snprintf(funcs + of, sizeof(funcs) - of,
					       "%s%s", of ? "," : "",
					       st->functions[k]);
	}
	sql_result_free(&r);
	if (strcmp(cmds, c->commands) || flags != c->flags ||
	    strcmp(tables, c->tables) || strcmp(funcs, c->functions))
		fail_msg("%s\n  got:  %s flags %#x tables [%s] functions [%s]"
			 "\n  want: %s flags %#x tables [%s] functions [%s]",
			 c->sql, cmds, flags, tables, funcs, c->commands,
			 c->flags, c->tables, c->functions);
}

static void test_corpus(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		check(&cases[i]);
}

static void test_errors(void **state)
{
	static const char *const bad[] = { "selec 1", "select (", "", ";",
					   "delete from", NULL };
	struct sql_result r;

	(void)state;
	for (int i = 0; bad[i]; i++) {
		if (sql_classify(bad[i], "public", &r) == 0)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_true(r.error[0] != '\0');
		sql_result_free(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
