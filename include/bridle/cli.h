/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Commands that read files only and never talk to a running enforcer:
 * `bridle policy check|explain` (cli.c; stats does talk, from main.c),
 * and the recordings' verify, sessions --recorded, replay and export.
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

/* Recordings (cli_record.c); @argc/@argv start at the command's name.
 * `bridle verify [--key-file K] [--json] FILE|DIR...`: each recording
 * verified (record.h); the exit status is 1 when one fails. */
int cli_verify(int argc, char **argv);
/* "90s", "10m", "2h", "1d" (or plain seconds) in seconds; -1 if bad. */
long long cli_parse_duration(const char *s);
/* `bridle sessions --recorded [filters] [--json]` */
int cli_recorded_sessions(int argc, char **argv);
/* `bridle replay ID [--follow] [--json]` */
int cli_replay(int argc, char **argv);
/* `bridle export ID --format jsonl|csv` */
int cli_export(int argc, char **argv);

#endif
