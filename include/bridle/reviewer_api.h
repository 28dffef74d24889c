/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reviewers' HTTP API (config "reviewer_api"): list, approve and
 * reject held requests, list and revoke grants, over HTTP on an address
 * of bridle's own network namespace (agent workloads live in theirs and
 * reach nothing but what the policy allows). Every request carries a
 * reviewer's bearer token; the tokens file holds their SHA-256 only, with
 * the reviewer's name and groups, which a rule's approvers name.
 * Served by libmicrohttpd's own thread.
 */
#ifndef BRIDLE_REVIEWER_API_H
#define BRIDLE_REVIEWER_API_H

struct enforcer;

/* Start it when the config asks (e->reviewer_api stays NULL otherwise).
 * Returns 0, or -1 with @err. */
int reviewer_api_start(struct enforcer *e, char *err, size_t errlen);
void reviewer_api_stop(struct enforcer *e);

#endif
