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
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "store/store.h"

/* How many states a link remembers. */
#define RECENT_KEEP 6

int
engine_recent_note(struct engine *e, int64_t link_id, const char *state, char kind,
                   struct error *err)
{
    char *old = NULL, *out, k[2] = {kind, '\0'};
    cJSON *recent, *kept, *w, *x, *last;
    size_t text_end = 0;
    int n, skip, rc;

    if (store_link_recent(e->st, link_id, &old, err) == -1)
        return -1;
    recent = old ? cJSON_Parse(old) : NULL;
    n = cJSON_GetArraySize(recent);
    /* Where the text's closing bracket is (0: no array there to extend). */
    if (old != NULL && cJSON_IsArray(recent)) {
        text_end = strlen(old);
        while (text_end > 0 && strchr(" \t\r\n", old[text_end - 1]) != NULL)
            text_end--;
        if (text_end == 0 || old[text_end - 1] != ']')
            text_end = 0;
    } else if (recent == NULL) {
        text_end = 1; /* none yet: a new array */
    }
    last = n > 0 ? cJSON_GetArrayItem(recent, n - 1) : NULL;
    if (last != NULL && cJSON_IsString(cJSON_GetArrayItem(last, 1)) &&
        strcmp(cJSON_GetArrayItem(last, 1)->valuestring, state) == 0 &&
        cJSON_IsString(cJSON_GetArrayItem(last, 2)) &&
        cJSON_GetArrayItem(last, 2)->valuestring[0] == kind) {
        free(old);
        cJSON_Delete(recent);
        return 0; /* the same state again (a retry): once is enough */
    }
    w = cJSON_CreateArray();
    cJSON_AddItemToArray(w, cJSON_CreateNumber((double)clock_now_ms()));
    cJSON_AddItemToArray(w, cJSON_CreateString(state));
    cJSON_AddItemToArray(w, cJSON_CreateString(k));
    if (n < RECENT_KEEP && text_end > 0) {
        /* Room for one more: the new entry is appended to the text as it
         * is, without printing the others again. */
        char *entry = cJSON_PrintUnformatted(w);

        out = n == 0 ? xasprintf("[%s]", entry)
                     : xasprintf("%.*s,%s]", (int)(text_end - 1), old, entry);
        rc = store_link_set_recent(e->st, link_id, out, err);
        free(entry);
        free(out);
        free(old);
        cJSON_Delete(w);
        cJSON_Delete(recent);
        return rc;
    }
    free(old);
    kept = cJSON_CreateArray();
    skip = n >= RECENT_KEEP ? n - RECENT_KEEP + 1 : 0;
    cJSON_ArrayForEach(x, recent)
    {
        if (skip > 0) {
            skip--;
            continue;
        }
        cJSON_AddItemToArray(kept, cJSON_Duplicate(x, 1));
    }
    cJSON_AddItemToArray(kept, w);
    out = cJSON_PrintUnformatted(kept);
    rc = store_link_set_recent(e->st, link_id, out, err);
    free(out);
    cJSON_Delete(kept);
    cJSON_Delete(recent);
    return rc;
}
