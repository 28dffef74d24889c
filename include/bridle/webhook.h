/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Review notifications: a JSON POST to each configured URL when a review
 * opens and when it closes (approved, rejected, expired, cancelled), in
 * bridle's own format or as a Slack-compatible {"text": …}. Sent by a
 * helper thread from a bounded queue: a worker never waits for the
 * network, and a slow or dead receiver costs dropped notifications
 * (counted), never a held request.
 */
#ifndef BRIDLE_WEBHOOK_H
#define BRIDLE_WEBHOOK_H

#include <jansson.h>

struct config;
struct webhook;

/* NULL when the config names no webhook (or with @err on failure). */
struct webhook *webhook_start(const struct config *c, char *err, size_t errlen);
void webhook_stop(struct webhook *w);

/* Queue @event ("review.opened", "review.closed") about @review (a
 * review's JSON, reference taken). Never blocks. @w may be NULL. */
void webhook_send(struct webhook *w, const char *event, json_t *review);

json_t *webhook_status_json(struct webhook *w);

#endif
