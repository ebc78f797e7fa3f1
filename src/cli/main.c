/* SPDX-License-Identifier: MIT */

/* concord's main(): the command table and the shared option parser. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/compiler.h"

static const struct cli_command *const commands[] = {
    &cli_cmd_run,       &cli_cmd_check,   &cli_cmd_status,    &cli_cmd_inbox,   &cli_cmd_failed,
    &cli_cmd_retry,     &cli_cmd_skip,    &cli_cmd_edit,      &cli_cmd_replay,  &cli_cmd_pause,
    &cli_cmd_resume,    &cli_cmd_history, &cli_cmd_conflicts, &cli_cmd_resolve, &cli_cmd_held,
    &cli_cmd_approve,   &cli_cmd_restore, &cli_cmd_changes,   &cli_cmd_explain, &cli_cmd_poll,
    &cli_cmd_reconcile, &cli_cmd_plan,    &cli_cmd_auth,      &cli_cmd_forget,  &cli_cmd_reload,
    &cli_cmd_audit,     &cli_cmd_runs,
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: concord COMMAND [-c FILE] [--json] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < ARRAY_COUNT(commands); i++)
        fprintf(out, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\n`concord COMMAND --help` tells more. The config is -c FILE, or "
                 "$CONCORD_CONFIG, or ./concord.yaml.\n");
}

/* The accepted name of a --name VALUE option, or NULL. */
static const char *
accepted(const struct cli_command *cmd, const char *name, size_t len)
{
    for (const char *const *o = cmd->options; o != NULL && *o != NULL; o++) {
        if (strlen(*o) == len && strncmp(*o, name, len) == 0)
            return *o;
    }
    return NULL;
}

/* The accepted name of a --name flag (no value), or NULL. */
static const char *
is_flag(const struct cli_command *cmd, const char *name)
{
    for (const char *const *f = cmd->flags; f != NULL && *f != NULL; f++) {
        if (strcmp(*f, name) == 0)
            return *f;
    }
    return NULL;
}

static int
parse(const struct cli_command *cmd, int argc, char **argv, struct cli_args *a)
{
    static char *positional[64];
    const char *env = getenv("CONCORD_CONFIG");

    memset(a, 0, sizeof(*a));
    a->config_path = env && *env ? env : "concord.yaml";
    a->argv = positional;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        const char *eq = strchr(s, '=');
        const char *name = NULL;

        if (strncmp(s, "--", 2) == 0)
            name = accepted(cmd, s + 2, eq ? (size_t)(eq - s - 2) : strlen(s + 2));
        if ((strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) && i + 1 < argc) {
            a->config_path = argv[++i];
        } else if (strncmp(s, "--config=", 9) == 0) {
            a->config_path = s + 9;
        } else if (strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if (strcmp(s, "--all") == 0) {
            a->all = 1;
        } else if (strcmp(s, "--new") == 0) {
            a->is_new = 1;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            a->help = 1;
        } else if (strncmp(s, "--", 2) == 0 && eq == NULL && is_flag(cmd, s + 2) &&
                   a->opt_count < (int)ARRAY_COUNT(a->opt_names)) {
            a->opt_names[a->opt_count] = is_flag(cmd, s + 2);
            a->opt_values[a->opt_count++] = "1";
        } else if (name != NULL && a->opt_count < (int)ARRAY_COUNT(a->opt_names)) {
            if (eq == NULL && i + 1 >= argc) {
                fprintf(stderr, "concord: %s needs a value\n", s);
                return -1;
            }
            a->opt_names[a->opt_count] = name;
            a->opt_values[a->opt_count++] = eq ? eq + 1 : argv[++i];
        } else if (s[0] == '-' && s[1] != '\0') {
            fprintf(stderr, "concord: unknown option %s\n", s);
            return -1;
        } else if (a->argc < (int)ARRAY_COUNT(positional)) {
            positional[a->argc++] = argv[i];
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct cli_args args;

    /* The zone is read once, before any thread starts. With TZ unset,
     * glibc's tzset() forgets and re-reads /etc/localtime on every call
     * (libical calls it per conversion, from several threads), under a lock
     * of its own that ThreadSanitizer cannot see; named, it is read once.
     * concord itself prints UTC only. */
    if (getenv("TZ") == NULL)
        (void)setenv("TZ", ":/etc/localtime", 0);
    tzset();
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        puts("concord 0.1.0");
        return 0;
    }
    for (size_t i = 0; i < ARRAY_COUNT(commands); i++) {
        if (strcmp(argv[1], commands[i]->name) != 0)
            continue;
        if (parse(commands[i], argc - 2, argv + 2, &args) == -1) {
            fprintf(stderr, "usage: %s\n", commands[i]->usage);
            return 2;
        }
        if (args.help) {
            printf("usage: %s\n\n%s\n", commands[i]->usage, commands[i]->summary);
            return 0;
        }
        return commands[i]->run(&args);
    }
    fprintf(stderr, "concord: unknown command %s\n\n", argv[1]);
    usage(stderr);
    return 2;
}
