/* SPDX-License-Identifier: MIT */

/*
 * The command line. Each command lives in cli_<name>.c and exports one
 * const struct cli_command; cli/main.c collects them in its table, and
 * `concord help` prints it. Commands share the options parsed here.
 */
#ifndef CONCORD_CLI_CLI_H
#define CONCORD_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

struct config;
struct store;

/* Options every command understands, and its remaining arguments. */
struct cli_args {
    const char *config_path; /* -c FILE; default $CONCORD_CONFIG or ./concord.yaml */
    int json;                /* --json */
    int all;                 /* --all */
    int is_new;              /* --new */
    int help;                /* --help / -h */
    const char *log_level;   /* --log-level */
    int argc;                /* positional arguments */
    char **argv;
    const char *opt_names[8]; /* --name VALUE options the command accepts */
    const char *opt_values[8];
    int opt_count;
};

struct cli_command {
    const char *name;
    const char *usage;   /* "concord retry [-c FILE] ID | --all" */
    const char *summary; /* one line for `concord help` */
    int (*run)(const struct cli_args *args);
    const char *const *options; /* NULL-ended names of its --name VALUE options, or NULL */
    const char *const *flags;   /* NULL-ended names of its --name options (no value): cli_opt()
                                   gives "1" when given */
};

/* The value of --name, or NULL when it was not given. */
const char *cli_opt(const struct cli_args *args, const char *name);

/* Who runs the command, for the audit of operator actions: $CONCORD_OPERATOR,
 * else the login name. Returns a static string. */
const char *cli_operator(void);

extern const struct cli_command cli_cmd_run;
extern const struct cli_command cli_cmd_check;
extern const struct cli_command cli_cmd_runs;
extern const struct cli_command cli_cmd_status;
extern const struct cli_command cli_cmd_failed;
extern const struct cli_command cli_cmd_inbox;
extern const struct cli_command cli_cmd_retry;
extern const struct cli_command cli_cmd_history;
extern const struct cli_command cli_cmd_skip;
extern const struct cli_command cli_cmd_edit;
extern const struct cli_command cli_cmd_replay;
extern const struct cli_command cli_cmd_pause;
extern const struct cli_command cli_cmd_resume;
extern const struct cli_command cli_cmd_conflicts;
extern const struct cli_command cli_cmd_resolve;
extern const struct cli_command cli_cmd_held;
extern const struct cli_command cli_cmd_approve;
extern const struct cli_command cli_cmd_restore;
extern const struct cli_command cli_cmd_changes;
extern const struct cli_command cli_cmd_explain;
extern const struct cli_command cli_cmd_poll;
extern const struct cli_command cli_cmd_reconcile;
extern const struct cli_command cli_cmd_plan;
extern const struct cli_command cli_cmd_auth;
extern const struct cli_command cli_cmd_forget;
extern const struct cli_command cli_cmd_reload;
extern const struct cli_command cli_cmd_audit;

/*
 * Load the config (secret references are checked, not read: these commands
 * talk to no system) and open its store, for a command that reads or
 * changes state without the daemon. Prints the reason and returns -1 on failure;
 * on success the caller releases both with cli_close().
 */
MUST_CHECK int cli_open(const struct cli_args *args, struct config **cfg, struct store **st);
void cli_close(struct config *cfg, struct store *st);

struct admin_actor;
struct admin_result;
struct error;

/* Who runs an operator's action (engine/admin.h): cli_operator(), via "cli".
 * Returns a static object. */
const struct admin_actor *cli_actor(void);

/*
 * Print what an action of engine/admin.h that returned rc did: its message
 * on stdout (rc 1), missing on stderr (rc 0; NULL: the message), or the
 * error (rc -1). Returns the exit status: 0 for rc 1, else 1.
 */
int cli_admin_done(int rc, const struct admin_result *res, const struct error *err,
                   const char *missing);

struct cJSON;

/* Print a JSON value, indented, on stdout, then delete it. */
void cli_print_json(struct cJSON *v);

/* Parse --since/--until into *out_ms with admin_parse_time(); prints why
 * not and returns -1 when text is neither form. */
MUST_CHECK int cli_parse_time_opt(const char *opt, const char *text, int64_t now_ms,
                                  int64_t *out_ms);

/* Parse a positive id; on failure print "concord: TEXT is not WHAT id" and
 * return -1 (what: "a record", "an inbox"). Returns 0 with *out set. */
MUST_CHECK int cli_parse_id(const char *text, const char *what, int64_t *out);

/* The command's one positional argument as an id: prints the usage when
 * there is not exactly one, or why it is no id, and returns -1. */
MUST_CHECK int cli_one_id(const struct cli_args *args, const struct cli_command *cmd,
                          const char *what, int64_t *out);

/* Format an epoch-ms time for people: "2026-11-26 05:41:52Z", or "never". */
const char *cli_time(int64_t at_ms, char *out, size_t out_len);

#endif
