/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `bridle policy …`: check, explain. They read files only and never talk to
 * a running enforcer (stats does, from main.c).
 */
#ifndef BRIDLE_CLI_H
#define BRIDLE_CLI_H

#include <jansson.h>
#include <stdbool.h>

/* A --json answer on stdout: indented, in the order it was built. */
void cli_print_json(json_t *j);

/* `bridle policy check FILE [--json]`. Returns the exit status. */
int cli_policy_check(const char *file, bool json);

/* `bridle policy explain FILE [options]`: @argc/@argv start after
 * "explain". Returns the exit status. */
int cli_policy_explain(int argc, char **argv);

/* `bridle verify --key-file K [--json] FILE|DIR...`: each recording
 * verified (record.h). Returns the exit status: 1 when one fails. */
int cli_verify(int argc, char **argv);

#endif
