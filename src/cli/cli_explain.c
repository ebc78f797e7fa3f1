/* SPDX-License-Identifier: MIT */

/*
 * concord explain RECORD: each field's current value, and what set it: the
 * source (a collection, an operator), the change and the version, the rule
 * that let it through (an origin, an owner, a settled conflict, a person),
 * the map entry that read it, and when. The JSON is admin_explain_json()'s
 * (engine/admin.h), as GET /api/records/{id}/explain.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/error.h"
#include "engine/admin.h"
#include "model/value.h"
#include "store/store.h"

static void
print_text(const cJSON *out)
{
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(out, "fields"), *o;

    printf("record %.0f (%s), version %.0f%s\n",
           cJSON_GetObjectItemCaseSensitive(out, "record")->valuedouble,
           cJSON_GetObjectItemCaseSensitive(out, "model")->valuestring,
           cJSON_GetObjectItemCaseSensitive(out, "version")->valuedouble,
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "deleted")) ? ", deleted" : "");
    cJSON_ArrayForEach(o, fields)
    {
        char *v = value_canonical_text(cJSON_GetObjectItemCaseSensitive(o, "value"));
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "change");

        printf("  %s = %s\n      set by %s in v%lld",
               cJSON_GetObjectItemCaseSensitive(o, "field")->valuestring, v,
               cJSON_GetObjectItemCaseSensitive(o, "source")->valuestring,
               cJSON_IsNumber(ver) ? (long long)ver->valuedouble : 0LL);
        if (cJSON_IsNumber(ch))
            printf(" (change %lld)", (long long)ch->valuedouble);
        printf(" at %s\n      rule: %s\n      mapping: %s\n",
               cJSON_GetObjectItemCaseSensitive(o, "at")->valuestring,
               cJSON_GetObjectItemCaseSensitive(o, "rule")->valuestring,
               cJSON_GetObjectItemCaseSensitive(o, "mapping")->valuestring);
        free(v);
    }
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    cJSON *out = NULL;
    int64_t id;
    int found;

    if (cli_one_id(args, &cli_cmd_explain, "a record", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    found = admin_explain_json(st, cfg, id, &out, &err);
    if (found != 1) {
        fprintf(stderr, "concord: %s\n", found == -1 ? err.msg : "no such record");
    } else if (args->json) {
        cli_print_json(out);
    } else {
        print_text(out);
        cJSON_Delete(out);
    }
    cli_close(cfg, st);
    return found == 1 ? 0 : 1;
}

const struct cli_command cli_cmd_explain = {
    .name = "explain",
    .usage = "concord explain [-c FILE] [--json] RECORD",
    .summary = "each field's value, and which system, change, rule and mapping set it, and when",
    .run = run,
};
