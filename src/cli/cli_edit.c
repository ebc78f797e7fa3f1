/* SPDX-License-Identifier: MIT */

/*
 * concord edit ID | --record N: an operator corrects a record's fields, as
 * JSON on stdin ({"email": "ada@example.com"}) or in $EDITOR. The change is
 * journaled from the operator (engine.h, ENGINE_OPERATOR_SYSTEM); the daemon
 * makes the new version and fans it out as any change. Given an inbox
 * entry, the entry is closed as "edited" and its parked job dropped, in the
 * same transaction (admin_edit(), engine/admin.h).
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "engine/admin.h"
#include "store/store.h"

#define EDIT_MAX_BYTES (1024 * 1024)

static char *
read_all(FILE *f)
{
    struct buf b;
    char chunk[4096];
    size_t n;

    buf_init(&b, EDIT_MAX_BYTES);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (buf_append(&b, chunk, n) == -1) {
            buf_fini(&b);
            return NULL;
        }
    }
    return buf_take(&b);
}

/* Let the person edit state in $EDITOR; returns the new text or NULL. */
static char *
run_editor(const char *state)
{
    char path[] = "/tmp/concord-edit-XXXXXX.json";
    const char *editor = getenv("EDITOR");
    int fd = mkstemps(path, 5), status;
    char *text = NULL;
    FILE *f;
    pid_t pid;

    if (fd == -1)
        return NULL;
    f = fdopen(fd, "w+");
    if (f == NULL) {
        close(fd);
        unlink(path);
        return NULL;
    }
    fputs(state, f);
    fclose(f);
    pid = fork();
    if (pid == 0) {
        execlp(editor && *editor ? editor : "vi", editor && *editor ? editor : "vi", path,
               (char *)NULL);
        _exit(127);
    }
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
        WEXITSTATUS(status) == 0) {
        f = fopen(path, "r");
        if (f != NULL) {
            text = read_all(f);
            fclose(f);
        }
    }
    unlink(path);
    return text;
}

/* The record's state for $EDITOR: of --record N, or of the entry's record. */
static char *
state_to_edit(struct store *st, const struct admin_edit *ed)
{
    struct inbox_entry e = {0};
    struct record rec = {0};
    struct error err = {0};
    int64_t id = ed->record_id;
    char *state = NULL;

    if (id == 0 && store_inbox_get(st, ed->inbox_id, &e, &err) == 1)
        id = e.record_id;
    if (id > 0 && store_record_get(st, id, &rec, &err) == 1) {
        state = rec.state;
        rec.state = NULL;
    }
    inbox_entry_fini(&e);
    record_fini(&rec);
    return state;
}

static int
edit(struct config *cfg, struct store *st, const struct admin_edit *target)
{
    struct admin_edit ed = *target;
    struct admin_result res;
    struct error err = {0};
    cJSON *edited = NULL;
    char *text = NULL, *state = NULL;
    int rc = 1;

    if (isatty(0)) {
        state = state_to_edit(st, &ed);
        if (state == NULL) {
            fprintf(stderr, "concord: no such record or inbox entry with a record\n");
            return 1;
        }
        text = run_editor(state);
    } else {
        text = read_all(stdin);
    }
    edited = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsObject(edited)) {
        fprintf(stderr, "concord: the edit must be a JSON object of fields\n");
        goto out;
    }
    ed.fields = edited;
    rc = cli_admin_done(admin_edit(st, cfg, cli_actor(), &ed, &res, &err), &res, &err,
                        "no such record or inbox entry with a record");
out:
    cJSON_Delete(edited);
    free(text);
    free(state);
    return rc;
}

static int
run(const struct cli_args *args)
{
    const char *record = cli_opt(args, "record");
    struct admin_edit ed = {0};
    struct config *cfg = NULL;
    struct store *st = NULL;
    int rc;

    if ((record == NULL) != (args->argc == 1)) {
        fprintf(stderr, "usage: %s\n", cli_cmd_edit.usage);
        return 2;
    }
    if (record != NULL ? cli_parse_id(record, "a record", &ed.record_id) == -1
                       : cli_parse_id(args->argv[0], "an inbox", &ed.inbox_id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = edit(cfg, st, &ed);
    cli_close(cfg, st);
    return rc;
}

static const char *const options[] = {"record", NULL};

const struct cli_command cli_cmd_edit = {
    .name = "edit",
    .usage = "concord edit [-c FILE] ID | --record N  (JSON fields on stdin, or in $EDITOR)",
    .summary = "correct a record's fields as an operator; the new version fans out",
    .run = run,
    .options = options,
};
