// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL protocol v3 framing. Lengths come from the network: each is
 * checked against its limit before anything is trusted, and every string
 * must end inside the packet it belongs to.
 */
#include <string.h>

#include "bridle/pg_wire.h"

static ssize_t invalid(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return PG_INVALID;
}

/* Parse "key\0value\0...\0" in [p, end). */
static ssize_t parse_params(const uint8_t *p, const uint8_t *end,
			    struct pg_startup *out, const char **why)
{
	while (p < end && *p) {
		const uint8_t *k = p, *kz, *v, *vz;

		kz = memchr(k, 0, (size_t)(end - k));
		if (!kz)
			return invalid(why,
				       "startup parameter name not terminated");
		v = kz + 1;
		if (v >= end)
			return invalid(why,
				       "startup parameter without a value");
		vz = memchr(v, 0, (size_t)(end - v));
		if (!vz)
			return invalid(
				why, "startup parameter value not terminated");
		if (out->nparams == PG_MAX_STARTUP_PARAMS)
			return invalid(why, "too many startup parameters");
		out->keys[out->nparams] =
			(struct pg_str){ (const char *)k, (size_t)(kz - k) };
		out->values[out->nparams] =
			(struct pg_str){ (const char *)v, (size_t)(vz - v) };
		out->nparams++;
		p = vz + 1;
	}
	/* The list ends with one more NUL, the packet's last byte. */
	if (p != end - 1 || *p != 0)
		return invalid(why, "startup parameters not terminated");
	return 0;
}

ssize_t pg_parse_startup(const uint8_t *buf, size_t len, struct pg_startup *out,
			 const char **why)
{
	uint32_t plen, code;

	if (len < 8)
		return PG_NEED_MORE;
	plen = pg_get32(buf);
	code = pg_get32(buf + 4);
	if (plen < 8 || plen > PG_MAX_STARTUP_LEN)
		return invalid(why, "invalid startup packet length");
	memset(out, 0, sizeof(*out));
	switch (code) {
	case PG_SSL_REQUEST_CODE:
	case PG_GSSENC_REQUEST_CODE:
		if (plen != 8)
			return invalid(why,
				       "invalid encryption request length");
		out->kind = code == PG_SSL_REQUEST_CODE ? PG_SSL_REQUEST :
							  PG_GSSENC_REQUEST;
		return 8;
	case PG_CANCEL_REQUEST_CODE:
		if (plen != 16)
			return invalid(why, "invalid cancel request length");
		if (len < 16)
			return PG_NEED_MORE;
		out->kind = PG_CANCEL_REQUEST;
		out->cancel_pid = pg_get32(buf + 8);
		out->cancel_key = pg_get32(buf + 12);
		return 16;
	}
	if ((code >> 16) != 3)
		return invalid(why, "unsupported protocol version (need 3.x)");
	if (len < plen)
		return PG_NEED_MORE;
	out->kind = PG_STARTUP_MESSAGE;
	out->version = code;
	if (plen == 8)
		return invalid(why, "startup parameters not terminated");
	if (parse_params(buf + 8, buf + plen, out, why))
		return PG_INVALID;
	return (ssize_t)plen;
}

const struct pg_str *pg_startup_param(const struct pg_startup *s,
				      const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < s->nparams; i++)
		if (s->keys[i].len == kl && memcmp(s->keys[i].p, key, kl) == 0)
			return &s->values[i];
	return NULL;
}

ssize_t pg_parse_message(const uint8_t *buf, size_t len, size_t max_body,
			 struct pg_msg *out, const char **why)
{
	uint32_t mlen;

	if (len < 5)
		return PG_NEED_MORE;
	mlen = pg_get32(buf + 1);
	if (mlen < 4)
		return invalid(why, "invalid message length");
	if ((size_t)mlen - 4 > max_body)
		return invalid(why, "message too large");
	if (len - 1 < mlen)
		return PG_NEED_MORE;
	out->type = (char)buf[0];
	out->body = buf + 5;
	out->body_len = mlen - 4;
	return (ssize_t)mlen + 1;
}
