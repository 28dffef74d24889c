/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control API: a root-only UNIX stream socket. A client sends one JSON
 * request line ({"cmd":"status"}) and reads one JSON reply, then the server
 * closes. Commands: status, sessions, reload, policy_stats; reviews
 * ({"all": bool}), approve ({"id", "for_s", "reason", "by"}), reject
 * ({"id", "reason", "by"}), grants, revoke ({"id", "by"}).
 */
#ifndef BRIDLE_API_H
#define BRIDLE_API_H

#include <jansson.h>

#include "bridle/enforcer.h"

int api_listen(struct enforcer *e, char *err, size_t errlen);
void api_close(struct enforcer *e);

/* Client side: send @request ({"cmd": …, arguments}; reference taken)
 * to the socket at @path; returns the reply or NULL with @err filled. */
json_t *api_call_json(const char *path, json_t *request, char *err,
		      size_t errlen);

/* A review command (reviews, approve, reject, grants, revoke) of @req:
 * its reply. @channel names where it came from ("cli", "api"): the
 * decider is recorded as "<channel>:<req.by>". */
json_t *api_review_command(struct enforcer *e, const char *cmd, json_t *req,
			   const char *channel);

/* Provided by enforcer.c for the API. */
json_t *enforcer_status_json(struct enforcer *e);
int enforcer_reload(struct enforcer *e, char *err, size_t errlen);

#endif
