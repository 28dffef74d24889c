/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validating walk over JSON documents (config, policy). Every error names the
 * file, the JSON path ($.workloads[2].cgroup) and the reason, and unknown keys
 * are errors rather than silently ignored.
 */
#ifndef BRIDLE_JSONV_H
#define BRIDLE_JSONV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jv {
	const char *file; /* shown in errors; not owned */
	char path[256]; /* current JSON path, "$" at the root */
	char *err; /* caller's buffer for the first error */
	size_t errlen;
	json_t *all; /* when set: every error is appended, as a string */
};

void jv_init(struct jv *v, const char *file, char *err, size_t errlen);

/* Record an error at the current path (plus @key if not NULL). Returns -1.
 * The first one goes to @err; with v->all set, every one is appended. */
int jv_fail(struct jv *v, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Path bookkeeping: push returns the old length to hand back to pop. */
size_t jv_push_key(struct jv *v, const char *key);
size_t jv_push_index(struct jv *v, size_t index);
void jv_pop(struct jv *v, size_t old);

/* The choice within two edits of @word (case aside), or NULL: hints. */
const char *jv_suggest(const char *word, const char *const *choices);

/* @obj must be an object whose keys are all in NULL-terminated @allowed. */
int jv_object(struct jv *v, json_t *obj, const char *const *allowed);

/*
 * Typed getters of obj[key]. A missing key is an error when @required, else
 * the out value is left as the caller's default and 0 is returned.
 */
int jv_string(struct jv *v, json_t *obj, const char *key, bool required,
	      const char **out);
int jv_uint(struct jv *v, json_t *obj, const char *key, bool required,
	    uint64_t min, uint64_t max, uint64_t *out);
int jv_bool(struct jv *v, json_t *obj, const char *key, bool *out);
/* obj[key], one of NULL-terminated @words: its index in *out. Else the
 * error names @what ("a mode") and lists the words. */
int jv_enum(struct jv *v, json_t *obj, const char *key,
	    const char *const *words, const char *what, int *out);

/* Parse a whole file; on error fills @err with file:line:column: reason. */
json_t *jv_load_file(const char *path, char *err, size_t errlen);

#endif
