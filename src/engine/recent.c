/* SPDX-License-Identifier: MIT */

/*
 * A link's recent states (links.recent): what concord wrote to the copy
 * ('w') and what the copy was seen to hold ('r'), newest last, each with
 * the time concord noted it. merge.c reads them to recognise the late echo
 * of an older write, and to merge news older than the link's base against
 * the state the copy had then.
 */

#include "core/clock.h"
#include "engine/engine_int.h"
#include "store/store.h"

int
engine_recent_note(struct engine *e, int64_t link_id, const char *state, char kind,
                   struct error *err)
{
    /* One statement (store_link_note): six kept, newest last, a retry's
     * same state once. */
    return store_link_note(e->st, link_id, state, kind, clock_now_ms(), err);
}
