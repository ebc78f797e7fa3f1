/* SPDX-License-Identifier: MIT */

/*
 * The store's part of OAuth2 (migration 6): each system's access token,
 * when it expires, and its latest refresh token. Providers that rotate
 * refresh tokens (Microsoft, Google on request) make the store the only
 * place the current one lives.
 */

#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/store_int.h"

enum {
    O_GET = 0,
    O_PUT,
    O_COUNT,
};

static const char *const sql[O_COUNT] = {
    [O_GET] = "SELECT access_token, expires_at, refresh_token, seed FROM oauth_tokens WHERE "
              "system = ?1",
    [O_PUT] = "INSERT OR REPLACE INTO oauth_tokens (system, access_token, expires_at, "
              "refresh_token, seed, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
};

/* The store_int_stmt() slots of this file (store_poll.c has the ones below). */
#define SLOT0 56
_Static_assert(SLOT0 + O_COUNT <= STORE_EXTRA_SLOTS, "store_oauth.c needs more statement slots");

static void
oauth_from_row(sqlite3_stmt *s, void *out)
{
    struct store_oauth *t = out;

    t->access_token = store_int_col_text(s, 0);
    t->expires_at_ms = sqlite3_column_int64(s, 1);
    t->refresh_token = store_int_col_text(s, 2);
    t->seed = store_int_col_text(s, 3);
}

void
store_oauth_fini(struct store_oauth *t)
{
    /* Tokens are credentials: leave no copy in freed memory. */
    if (t->access_token != NULL)
        explicit_bzero(t->access_token, strlen(t->access_token));
    if (t->refresh_token != NULL)
        explicit_bzero(t->refresh_token, strlen(t->refresh_token));
    free(t->access_token);
    free(t->refresh_token);
    free(t->seed);
    memset(t, 0, sizeof(*t));
}

int
store_oauth_get(struct store *st, const char *system, struct store_oauth *out, struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, SLOT0 + O_GET, sql[O_GET], err);

    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    return store_int_one_row(st, s, oauth_from_row, out, "read a system's OAuth2 tokens", err);
}

int
store_oauth_put(struct store *st, const char *system, const struct store_oauth *t, int64_t now_ms,
                struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, SLOT0 + O_PUT, sql[O_PUT], err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    store_int_bind_text(s, 2, t->access_token);
    sqlite3_bind_int64(s, 3, t->expires_at_ms);
    store_int_bind_text(s, 4, t->refresh_token);
    store_int_bind_text(s, 5, t->seed);
    sqlite3_bind_int64(s, 6, now_ms);
    return store_int_exec(st, s, "write a system's OAuth2 tokens", err);
}
