// SPDX-License-Identifier: Apache-2.0
/*
 * The review table (user/review.c): a review is pending until decided or
 * past its time; it is decided once; an approval --for leaves a grant
 * that matches the same fingerprint, workload, target and user only,
 * until it ends or is revoked; a cancelled review cannot be approved.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "bridle/review.h"

static const struct review_request req = {
	.session = 3,
	.workload = "agent-a",
	.target = "shop-db",
	.rule = "orders need a person",
	.user = "alice",
	.exe = "/usr/bin/psql",
	.summary = "UPDATE on orders",
	.statement = "update orders set amount = ?",
	.fingerprint = 0xabcdef,
	.timeout_s = 10,
};

#define R "orders need a person"

static const struct review_decider bob = { .by = "cli:bob", .name = "bob" };
static const struct review_decider eve = { .by = "cli:eve", .name = "eve" };

static void test_lifecycle(void **state)
{
	struct review_table *t = review_table_new();
	struct review_outcome o;
	char err[256];
	uint64_t a, b, c;
	json_t *j;

	(void)state;
	a = review_open(t, &req, 1000);
	b = review_open(t, &req, 1000);
	c = review_open(t, &req, 1000);
	assert_true(a && b == a + 1 && c == b + 1);
	assert_int_equal(review_poll(t, a, 5000, &o), REVIEW_PENDING);
	/* Past its 10 s: expired, and no longer decidable. */
	assert_int_equal(review_poll(t, a, 11000, &o), REVIEW_EXPIRED);
	assert_non_null(strstr(o.reason, "within 10 s"));
	assert_int_equal(review_decide(t, a, true, &bob, NULL, 0, 11001,
				       err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "expired already"));
	/* Rejected once, then not again. */
	assert_int_equal(review_decide(t, b, false, &bob, "no", 0, 2000,
				       err, sizeof(err)),
			 0);
	assert_int_equal(review_poll(t, b, 2001, &o), REVIEW_REJECTED);
	assert_string_equal(o.by, "cli:bob");
	assert_string_equal(o.reason, "no");
	assert_int_equal(review_decide(t, b, true, &eve, NULL, 0, 2002,
				       err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "rejected already by cli:bob"));
	/* Cancelled when the session ends. */
	review_cancel(t, c, 3000);
	assert_int_equal(review_poll(t, c, 3001, &o), REVIEW_CANCELLED);
	assert_int_equal(review_decide(t, 999, true, &eve, NULL, 0, 1, err,
				       sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "no review 999"));
	/* Listing: nothing pending; with --all, the three. */
	j = review_list_json(t, false, 4000);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	j = review_list_json(t, true, 4000);
	assert_int_equal(json_array_size(j), 3);
	json_decref(j);
	review_table_free(t);
}

static void test_grants(void **state)
{
	struct review_table *t = review_table_new();
	struct review_outcome o;
	char err[256];
	uint64_t a, g;
	json_t *j;

	(void)state;
	a = review_open(t, &req, 1000);
	assert_int_equal(review_decide(t, a, true, &bob, "batch", 60000,
				       2000, err, sizeof(err)),
			 0);
	assert_int_equal(review_poll(t, a, 2001, &o), REVIEW_APPROVED);
	assert_true(o.grant > 0);
	g = o.grant;
	/* Same statement and identity: granted, and counted. */
	assert_int_equal(review_grant_match(t, 0xabcdef, "agent-a", "shop-db",
					    "alice", R, 3000),
			 g);
	/* Anything else differs: not. */
	assert_int_equal(review_grant_match(t, 0xabcdee, "agent-a", "shop-db",
					    "alice", R, 3000),
			 0);
	assert_int_equal(review_grant_match(t, 0xabcdef, "agent-b", "shop-db",
					    "alice", R, 3000),
			 0);
	assert_int_equal(review_grant_match(t, 0xabcdef, "agent-a", "hr-db",
					    "alice", R, 3000),
			 0);
	assert_int_equal(review_grant_match(t, 0xabcdef, "agent-a", "shop-db",
					    NULL, R, 3000),
			 0);
	/* Another rule's review of the same statement: not. */
	assert_int_equal(review_grant_match(t, 0xabcdef, "agent-a", "shop-db",
					    "alice", "other rule", 3000),
			 0);
	/* Ended by time. */
	assert_int_equal(review_grant_match(t, 0xabcdef, "agent-a", "shop-db",
					    "alice", R, 62000),
			 0);
	j = review_grants_json(t, 3000);
	assert_int_equal(json_integer_value(
				 json_object_get(json_array_get(j, 0), "uses")),
			 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(j, 0), "state")),
			    "active");
	json_decref(j);
	/* Revoked: no more, and not twice. */
	assert_int_equal(review_grant_revoke(t, g, "cli:bob", 4000, err,
					     sizeof(err)),
			 0);
	assert_int_equal(review_grant_match(t, 0xabcdef, "agent-a", "shop-db",
					    "alice", R, 4001),
			 0);
	assert_int_equal(review_grant_revoke(t, g, "cli:bob", 4002, err,
					     sizeof(err)),
			 -1);
	assert_int_equal(review_grant_revoke(t, 77, "cli:bob", 4002, err,
					     sizeof(err)),
			 -1);
	j = review_grants_json(t, 5000);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(j, 0), "state")),
			    "revoked");
	json_decref(j);
	review_table_free(t);
}

/* Approvers: only those named (by name or group) decide, each approval
 * counts once, and the minimum must be reached. */
static void test_approvers(void **state)
{
	static char *users[] = { "alice", "bob" };
	static char *groups[] = { "dba" };
	const struct policy_approvers ap = { .users = users,
					     .nusers = 2,
					     .groups = groups,
					     .ngroups = 1,
					     .min = 2 };
	static const char *const dba[] = { "staff", "dba" };
	const struct review_decider carol = { .by = "cli:carol",
					      .name = "carol",
					      .groups = dba,
					      .ngroups = 2 };
	struct review_table *t = review_table_new();
	struct review_request q = req;
	struct review_outcome o;
	char err[256];
	uint64_t a;

	(void)state;
	q.approvers = &ap;
	a = review_open(t, &q, 1000);
	assert_int_equal(review_decide(t, a, true, &eve, NULL, 0, 1001, err,
				       sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not an approver"));
	assert_int_equal(review_decide(t, a, true, &bob, NULL, 0, 1002, err,
				       sizeof(err)),
			 1);
	assert_non_null(strstr(err, "approval 1 of 2"));
	assert_int_equal(review_decide(t, a, true, &bob, NULL, 0, 1003, err,
				       sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "already"));
	assert_int_equal(review_poll(t, a, 1004, &o), REVIEW_PENDING);
	/* carol is in dba: the second approval. */
	assert_int_equal(review_decide(t, a, true, &carol, "ok", 0, 1005, err,
				       sizeof(err)),
			 0);
	assert_int_equal(review_poll(t, a, 1006, &o), REVIEW_APPROVED);
	assert_string_equal(o.by, "cli:bob, cli:carol");
	/* One approver's rejection is enough. */
	a = review_open(t, &q, 2000);
	assert_int_equal(review_decide(t, a, false, &carol, "no", 0, 2001, err,
				       sizeof(err)),
			 0);
	assert_int_equal(review_poll(t, a, 2002, &o), REVIEW_REJECTED);
	review_table_free(t);
}

/* A reason cut to its room stays valid UTF-8: the JSON keeps it. */
static void test_utf8(void **state)
{
	struct review_table *t = review_table_new();
	char reason[600], err[256];
	uint64_t a;
	json_t *j;

	(void)state;
	for (size_t i = 0; i + 2 < sizeof(reason); i += 2)
		memcpy(reason + i, "\xd0\x96", 2); /* Ж */
	reason[sizeof(reason) - 1] = '\0';
	reason[sizeof(reason) - 2] = '\0';
	a = review_open(t, &req, 1000);
	assert_int_equal(review_decide(t, a, false, &bob, reason, 0, 1001, err,
				       sizeof(err)),
			 0);
	j = review_get_json(t, a, 1002);
	assert_non_null(j);
	assert_non_null(json_string_value(json_object_get(j, "reason")));
	assert_string_equal(json_string_value(json_object_get(j, "by")),
			    "cli:bob");
	json_decref(j);
	review_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_grants),
		cmocka_unit_test(test_approvers),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
