// SPDX-License-Identifier: Apache-2.0
/*
 * Validating JSON walk used by the config and policy loaders: a path that
 * follows the walk, strict key sets and typed getters with ranges.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bridle/jsonv.h"

void jv_init(struct jv *v, const char *file, char *err, size_t errlen)
{
	v->file = file;
	snprintf(v->path, sizeof(v->path), "$");
	v->err = err;
	v->errlen = errlen;
	v->all = NULL;
	if (errlen)
		err[0] = '\0';
}

int jv_fail(struct jv *v, const char *key, const char *fmt, ...)
{
	char reason[512], line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s: %s%s%s: %s", v->file, v->path,
		 key ? "." : "", key ? key : "", reason);
	if (v->all)
		json_array_append_new(v->all, json_string(line));
	/* Keep the first error: later ones often follow from it. */
	if (v->err && v->errlen && !v->err[0])
		snprintf(v->err, v->errlen, "%s", line);
	return -1;
}

size_t jv_push_key(struct jv *v, const char *key)
{
	size_t old = strlen(v->path);

	snprintf(v->path + old, sizeof(v->path) - old, ".%s", key);
	return old;
}

size_t jv_push_index(struct jv *v, size_t index)
{
	size_t old = strlen(v->path);

	snprintf(v->path + old, sizeof(v->path) - old, "[%zu]", index);
	return old;
}

void jv_pop(struct jv *v, size_t old)
{
	if (old < sizeof(v->path))
		v->path[old] = '\0';
}

static const char *jv_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* Edit distance of @a and @b, a swap of neighbours counting one
 * ("wehn"), capped: anything above 3 is 4. */
static unsigned distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned d[33][33];

	if (la > 32 || lb > 32)
		return 4;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			unsigned best =
				d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb] > 4 ? 4 : d[la][lb];
}

const char *jv_suggest(const char *word, const char *const *choices)
{
	const char *best = NULL;
	unsigned bd = 3; /* at most two edits */

	for (; *choices; choices++) {
		unsigned d = strcasecmp(word, *choices) == 0 ?
				     0 :
				     distance(word, *choices);

		/* A short word is near anything: at most one edit in three
		 * letters ("z" is no typo of "a"). */
		if (d < bd && d * 3 <= strlen(word)) {
			bd = d;
			best = *choices;
		}
	}
	return best;
}

int jv_object(struct jv *v, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *val;
	int ret = 0;

	if (!json_is_object(obj))
		return jv_fail(v, NULL, "expected an object, found %s",
			       jv_type_name(obj));
	json_object_foreach(obj, key, val) {
		const char *const *a;
		char hint[300] = "";
		size_t off = 0;
		const char *near;

		for (a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				break;
		if (*a)
			continue;
		near = jv_suggest(key, allowed);
		for (a = allowed; *a && off < sizeof(hint); a++)
			off += snprintf(hint + off, sizeof(hint) - off, "%s%s",
					off ? ", " : "", *a);
		if (near)
			ret = jv_fail(v, key,
				      "unknown key: did you mean \"%s\"? "
				      "(allowed: %s)",
				      near, hint);
		else
			ret = jv_fail(v, key, "unknown key (allowed: %s)",
				      hint);
		/* Every unknown key when all errors are wanted. */
		if (!v->all)
			break;
	}
	return ret;
}

int jv_string(struct jv *v, json_t *obj, const char *key, bool required,
	      const char **out)
{
	json_t *j = json_object_get(obj, key);

	if (!j) {
		if (required)
			return jv_fail(v, key, "required key is missing");
		return 0;
	}
	if (!json_is_string(j))
		return jv_fail(v, key, "expected a string, found %s",
			       jv_type_name(j));
	if (json_string_length(j) == 0)
		return jv_fail(v, key, "must not be empty");
	if (strlen(json_string_value(j)) != json_string_length(j))
		return jv_fail(v, key, "must not contain NUL characters");
	*out = json_string_value(j);
	return 0;
}

int jv_enum(struct jv *v, json_t *obj, const char *key,
	    const char *const *words, const char *what, int *out)
{
	const char *s = NULL;
	char list[128] = "";
	size_t off = 0;

	if (jv_string(v, obj, key, false, &s))
		return -1;
	if (!s)
		return 0;
	for (int i = 0; words[i]; i++) {
		if (strcmp(s, words[i]) == 0) {
			*out = i;
			return 0;
		}
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
					i ? ", " : "", words[i]);
	}
	return jv_fail(v, key, "\"%s\" is not %s (%s)", s, what, list);
}

int jv_uint(struct jv *v, json_t *obj, const char *key, bool required,
	    uint64_t min, uint64_t max, uint64_t *out)
{
	json_t *j = json_object_get(obj, key);
	json_int_t n;

	if (!j) {
		if (required)
			return jv_fail(v, key, "required key is missing");
		return 0;
	}
	if (!json_is_integer(j))
		return jv_fail(v, key, "expected an integer, found %s",
			       jv_type_name(j));
	n = json_integer_value(j);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return jv_fail(v, key, "%lld is out of range %llu..%llu",
			       (long long)n, (unsigned long long)min,
			       (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

int jv_bool(struct jv *v, json_t *obj, const char *key, bool *out)
{
	json_t *j = json_object_get(obj, key);

	if (!j)
		return 0;
	if (!json_is_boolean(j))
		return jv_fail(v, key, "expected true or false, found %s",
			       jv_type_name(j));
	*out = json_is_true(j);
	return 0;
}

json_t *jv_load_file(const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	FILE *f = fopen(path, "re");

	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
			 strerror(errno));
		return NULL;
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
	fclose(f);
	if (!root)
		snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path,
			 je.line, je.column, je.text);
	return root;
}
