/* SPDX-License-Identifier: MIT */

/*
 * A link's recent states (links.recent): what concord wrote to the copy
 * ('w') and what the copy was seen to hold ('r'), newest last, each with
 * the time concord noted it. merge.c reads them to recognise the late echo
 * of an older write, and to merge news older than the link's base against
 * the state the copy had then.
 */

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/error.h"
#include "engine/engine_int.h"
#include "store/store.h"

/* How many states a link remembers. */
#define RECENT_KEEP 6

int
engine_recent_note(struct engine *e, int64_t link_id, const char *state, char kind,
                   struct error *err)
{
    char *text = NULL, *out, k[2] = {kind, '\0'};
    cJSON *recent, *kept, *w, *last;
    int n, skip, rc;

    if (store_link_recent(e->st, link_id, &text, err) == -1)
        return -1;
    recent = text ? cJSON_Parse(text) : NULL;
    free(text);
    n = cJSON_GetArraySize(recent);
    last = n > 0 ? cJSON_GetArrayItem(recent, n - 1) : NULL;
    if (last != NULL && cJSON_IsString(cJSON_GetArrayItem(last, 1)) &&
        strcmp(cJSON_GetArrayItem(last, 1)->valuestring, state) == 0 &&
        cJSON_IsString(cJSON_GetArrayItem(last, 2)) &&
        cJSON_GetArrayItem(last, 2)->valuestring[0] == kind) {
        cJSON_Delete(recent);
        return 0; /* the same state again (a retry): once is enough */
    }
    kept = cJSON_CreateArray();
    skip = n >= RECENT_KEEP ? n - RECENT_KEEP + 1 : 0;
    cJSON_ArrayForEach(w, recent)
    {
        if (skip > 0) {
            skip--;
            continue;
        }
        cJSON_AddItemToArray(kept, cJSON_Duplicate(w, 1));
    }
    w = cJSON_CreateArray();
    cJSON_AddItemToArray(w, cJSON_CreateNumber((double)clock_now_ms()));
    cJSON_AddItemToArray(w, cJSON_CreateString(state));
    cJSON_AddItemToArray(w, cJSON_CreateString(k));
    cJSON_AddItemToArray(kept, w);
    out = cJSON_PrintUnformatted(kept);
    rc = store_link_set_recent(e->st, link_id, out, err);
    free(out);
    cJSON_Delete(kept);
    cJSON_Delete(recent);
    return rc;
}
