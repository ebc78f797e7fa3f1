/* SPDX-License-Identifier: MIT */

/*
 * concord edit ID | --record N: an operator corrects a record's fields, as
 * JSON on stdin ({"email": "ada@example.com"}) or in $EDITOR. The change is
 * journaled from the operator (engine.h, ENGINE_OPERATOR_SYSTEM); the daemon
 * makes the new version and fans it out as any change. Given an inbox
 * entry, the entry is closed as "edited" and its parked job dropped, in the
 * same transaction.
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
#include "core/clock.h"
#include "core/error.h"
#include "engine/engine.h"
#include "model/value.h"
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

/* The fields of edited that differ from old, checked against the model. */
static cJSON *
fields_to_set(const struct config_model *model, const cJSON *old, const cJSON *edited)
{
    cJSON *fields = cJSON_CreateObject();
    const cJSON *f;

    cJSON_ArrayForEach(f, edited)
    {
        const struct config_field *fd = config_model_field(model, f->string);
        struct error err = {0};
        cJSON *v = NULL;

        if (fd == NULL) {
            fprintf(stderr, "concord: %s has no field \"%s\"\n", model->name, f->string);
            goto fail;
        }
        if (value_coerce(fd->type, f, &v, &err) == -1) {
            fprintf(stderr, "concord: field \"%s\": %s\n", f->string, err.msg);
            goto fail;
        }
        if (!value_equal(v, cJSON_GetObjectItemCaseSensitive(old, f->string)))
            cJSON_AddItemToObject(fields, f->string, v);
        else
            cJSON_Delete(v);
    }
    return fields;
fail:
    cJSON_Delete(fields);
    return NULL;
}

static int
journal_edit(struct store *st, int64_t record_id, cJSON *fields, int64_t inbox_id)
{
    cJSON *body = cJSON_CreateObject();
    int rc;

    cJSON_AddNumberToObject(body, "record", (double)record_id);
    cJSON_AddItemReferenceToObject(body, "fields", fields);
    rc = cli_journal_operator(st, body, inbox_id, "edited", NULL);
    cJSON_Delete(body);
    return rc;
}

/* The record an edit is about: --record N, or the inbox entry's record. */
static int64_t
target_record(const struct cli_args *args, struct store *st, int64_t *inbox_id)
{
    const char *rec = cli_opt(args, "record");
    struct inbox_entry e = {0};
    struct error err = {0};
    int64_t id;
    char *end;

    if (rec != NULL) {
        id = strtoll(rec, &end, 10);
        return *end == '\0' && id > 0 ? id : -1;
    }
    *inbox_id = strtoll(args->argv[0], &end, 10);
    if (*end != '\0' || *inbox_id <= 0 || store_inbox_get(st, *inbox_id, &e, &err) != 1)
        return -1;
    id = e.record_id;
    inbox_entry_fini(&e);
    return id > 0 ? id : -1;
}

static int
edit(const struct cli_args *args, struct config *cfg, struct store *st)
{
    struct record rec = {0};
    struct error err = {0};
    int64_t inbox_id = 0, id = target_record(args, st, &inbox_id);
    cJSON *old = NULL, *edited = NULL, *fields = NULL;
    char *text = NULL;
    int rc = 1;

    if (id <= 0 || store_record_get(st, id, &rec, &err) != 1) {
        fprintf(stderr, "concord: no such record or inbox entry with a record\n");
        return 1;
    }
    old = cJSON_Parse(rec.state);
    text = isatty(0) ? run_editor(rec.state) : read_all(stdin);
    edited = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsObject(edited)) {
        fprintf(stderr, "concord: the edit must be a JSON object of fields\n");
        goto out;
    }
    fields = fields_to_set(config_model_find(cfg, rec.model), old, edited);
    if (fields == NULL)
        goto out;
    if (cJSON_GetArraySize(fields) == 0) {
        printf("record %lld: nothing changed\n", (long long)id);
        rc = 0;
    } else if (journal_edit(st, id, fields, inbox_id) == 0) {
        printf("record %lld: %d field%s changed by %s; the daemon makes the new version and "
               "delivers it\n",
               (long long)id, cJSON_GetArraySize(fields),
               cJSON_GetArraySize(fields) == 1 ? "" : "s", cli_operator());
        rc = 0;
    }
out:
    cJSON_Delete(old);
    cJSON_Delete(edited);
    cJSON_Delete(fields);
    free(text);
    record_fini(&rec);
    return rc;
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    int rc;

    if ((cli_opt(args, "record") == NULL) != (args->argc == 1)) {
        fprintf(stderr, "usage: %s\n", cli_cmd_edit.usage);
        return 2;
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = edit(args, cfg, st);
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
