/* SPDX-License-Identifier: Apache-2.0 */
/* Entry point of `bridle run`. */
#ifndef BRIDLE_RUN_H
#define BRIDLE_RUN_H

/* Run the enforcer in the foreground. Returns the process exit code. */
int run_enforcer(const char *config_path);

#endif
