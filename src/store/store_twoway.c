/* SPDX-License-Identifier: MIT */

/*
 * The store's part of the Two-way issue: when and by whom each field was
 * last set, the states concord wrote to each copy lately (late echoes),
 * copies deleted in their system, natural keys, conflicts, held deletes and
 * tombstones. docs/internals/store-schema.md, migration 4.
 */

#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store_int.h"

enum {
    T_META_GET = 0,
    T_META_SET,
    T_RECENT_GET,
    T_RECENT_NOTE,
    T_LINK_GONE,
    T_LINK_BY_GONE,
    T_JOBS_OF_LINK,
    T_INBOX_OF_LINK,
    T_KEYS_DEL,
    T_KEYS_ADD,
    T_KEYS_FIND,
    T_INBOX_DETAIL,
    T_CONFLICT_OPEN,
    T_INBOX_KIND,
    T_INBOX_KIND_ALL,
    T_INBOX_FULL,
    T_HELD_COUNT,
    T_LINKED_COUNT,
    T_PURGE_LINKS,
    T_PURGE_VERSIONS,
    T_PURGE_KEYS,
    T_PURGE_RECORDS,
    T_HELD_APPROVED,
    T_COPY_CHANGES,
    T_CONFLICTS_OF,
    T_PINNED,
    T_DEL_CLEAN_INBOX,
    T_DEL_CLEAN_JOBS,
    T_MATCH_CLOSE,
    T_MATCH_OPEN,
    T_LINK_REMOVING,
    T_MATCH_FIND,
    T_DELETES_SINCE,
    T_CREATE_OPEN,
    T_MOOT_INBOX,
    T_MOOT_JOBS,
    T_COUNT,
};

static const char *const sql[T_COUNT] = {
    [T_META_GET] = "SELECT field_meta FROM records WHERE id = ?1",
    [T_META_SET] = "UPDATE records SET field_meta = ?2 WHERE id = ?1",
    [T_RECENT_GET] = "SELECT recent FROM links WHERE id = ?1",
    [T_RECENT_NOTE] =
        "UPDATE links SET recent = " STORE_RECENT_NOTE("?2", "?3", "?4") " WHERE id = ?1",
    [T_LINK_GONE] = "UPDATE links SET gone_ext_id = coalesce(ext_id, gone_ext_id), ext_id = NULL, "
                    "base = NULL, recent = NULL, updated_at = ?2 WHERE id = ?1",
    [T_LINK_BY_GONE] = "SELECT id, collection, record_id, gone_ext_id FROM links "
                       "WHERE collection = ?1 AND gone_ext_id = ?2 AND ext_id IS NULL",
    [T_JOBS_OF_LINK] = "DELETE FROM jobs WHERE link_id = ?1 AND state IN (1, 3)",
    [T_INBOX_OF_LINK] = "UPDATE inbox SET state = 'skipped', resolved_by = 'concord', note = ?3, "
                        "updated_at = ?2 WHERE state = 'open' AND job_id IS NOT NULL AND job_id "
                        "NOT IN (SELECT id FROM jobs) AND record_id = ?1",
    [T_KEYS_DEL] = "DELETE FROM record_keys WHERE record_id = ?1",
    [T_KEYS_ADD] = "INSERT OR IGNORE INTO record_keys (model, name, value, record_id) "
                   "VALUES (?1, ?2, ?3, ?4)",
    [T_KEYS_FIND] = "SELECT k.record_id FROM record_keys k JOIN records r ON r.id = k.record_id "
                    "WHERE k.model = ?1 AND k.name = ?2 AND k.value = ?3 AND r.deleted = 0 "
                    "ORDER BY k.record_id LIMIT 16",
    [T_INBOX_DETAIL] = "UPDATE inbox SET field = coalesce(?2, field), detail = ?3, "
                       "state = coalesce(?4, state), resolved_by = coalesce(?5, resolved_by), "
                       "updated_at = ?6 WHERE id = ?1",
    [T_CONFLICT_OPEN] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                        "journal_seq, reason, http_status, response, attempts, created_at, "
                        "updated_at, field, detail FROM inbox WHERE record_id = ?1 AND field = ?2 "
                        "AND state = 'open' AND kind = 4 ORDER BY id DESC LIMIT 1",
    [T_INBOX_KIND] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                     "journal_seq, reason, http_status, response, attempts, created_at, "
                     "updated_at, field, detail FROM inbox WHERE kind = ?1 AND state = 'open' "
                     "ORDER BY id",
    [T_INBOX_KIND_ALL] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                         "journal_seq, reason, http_status, response, attempts, created_at, "
                         "updated_at, field, detail FROM inbox WHERE kind = ?1 ORDER BY id",
    [T_INBOX_FULL] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                     "journal_seq, reason, http_status, response, attempts, created_at, "
                     "updated_at, field, detail FROM inbox WHERE id = ?1",
    [T_HELD_COUNT] = "SELECT count(*) FROM inbox WHERE kind = 5 AND state = 'open' AND system = ?1",
    [T_LINKED_COUNT] = "SELECT count(*) FROM links WHERE collection = ?1 AND ext_id IS NOT NULL",
    [T_PURGE_LINKS] = "DELETE FROM links WHERE record_id IN (SELECT id FROM records WHERE "
                      "deleted = 1 AND updated_at < ?1) AND id NOT IN (SELECT link_id FROM jobs)",
    [T_PURGE_VERSIONS] = "DELETE FROM versions WHERE record_id IN (SELECT id FROM records WHERE "
                         "deleted = 1 AND updated_at < ?1 AND id NOT IN (SELECT record_id FROM "
                         "links))",
    [T_PURGE_KEYS] = "DELETE FROM record_keys WHERE record_id IN (SELECT id FROM records WHERE "
                     "deleted = 1 AND updated_at < ?1 AND id NOT IN (SELECT record_id FROM links))",
    [T_PURGE_RECORDS] = "DELETE FROM records WHERE deleted = 1 AND updated_at < ?1 AND id NOT IN "
                        "(SELECT record_id FROM links)",
    [T_COPY_CHANGES] =
        "SELECT j.seq, j.system, j.collection, j.ext_id, j.received_at, j.state, "
        "j.note FROM journal j JOIN links l ON l.collection = j.collection AND "
        "j.ext_id IN (l.ext_id, l.gone_ext_id) WHERE l.record_id = ?1 "
        "UNION SELECT j.seq, j.system, NULL, NULL, j.received_at, j.state, j.note "
        "FROM journal j WHERE j.system = '@operator' AND json_valid(CAST(j.body AS TEXT)) "
        "AND ?1 IN (json_extract(CAST(j.body AS TEXT), '$.record'), "
        "json_extract(CAST(j.body AS TEXT), '$.restore')) ORDER BY 1",
    [T_CONFLICTS_OF] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                       "journal_seq, reason, http_status, response, attempts, created_at, "
                       "updated_at, field, detail FROM inbox WHERE record_id = ?1 "
                       "AND state = 'open' AND kind = 4 AND field IS NOT NULL ORDER BY id",
    [T_PINNED] = "SELECT l.id, l.record_id, j.sent_version FROM jobs j JOIN links l ON "
                 "l.id = j.link_id WHERE l.collection = ?1 AND l.ext_id IS NULL AND "
                 "j.sent_version IS NOT NULL AND j.sent_version != 0 ORDER BY j.id LIMIT 64",
    [T_DEL_CLEAN_INBOX] = "UPDATE inbox SET state = 'skipped', resolved_by = 'concord', note = ?3, "
                          "updated_at = ?2 WHERE state = 'open' AND record_id = ?1 AND (kind = 4 "
                          "OR job_id IN (SELECT id FROM jobs WHERE record_id = ?1 AND state = 3 "
                          "AND op = 1 AND coalesce(sent_version, 0) = 0))",
    [T_DEL_CLEAN_JOBS] = "DELETE FROM jobs WHERE record_id = ?1 AND state = 3 AND op = 1 AND "
                         "coalesce(sent_version, 0) = 0",
    [T_MATCH_CLOSE] = "UPDATE inbox SET state = 'skipped', resolved_by = 'concord', note = ?4, "
                      "updated_at = ?3 WHERE kind = 4 AND field = '@match' AND state = 'open' "
                      "AND collection = ?1 AND json_extract(detail, '$.ext_id') = ?2",
    [T_MATCH_OPEN] = "SELECT count(*) FROM inbox WHERE kind = 4 AND field = '@match' AND "
                     "state = 'open'",
    /* op 2 and 3: JOB_OP_DELETE, JOB_OP_ARCHIVE; state 1 and 2: pending, running */
    [T_LINK_REMOVING] = "SELECT count(*) FROM jobs WHERE link_id = ?1 AND state IN (1, 2) AND "
                        "op IN (2, 3)",
    [T_MOOT_INBOX] = "UPDATE inbox SET state = 'skipped', resolved_by = 'concord', note = ?3, "
                     "updated_at = ?2 WHERE state = 'open' AND job_id IN (SELECT id FROM jobs "
                     "WHERE link_id = ?1 AND state = 3 AND op IN (2, 3))",
    [T_MOOT_JOBS] = "DELETE FROM jobs WHERE link_id = ?1 AND state = 3 AND op IN (2, 3)",
    [T_MATCH_FIND] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                     "journal_seq, reason, http_status, response, attempts, created_at, "
                     "updated_at, field, detail FROM inbox WHERE kind = 4 AND field = '@match' "
                     "AND state = 'open' AND collection = ?1 AND "
                     "json_extract(detail, '$.ext_id') = ?2 ORDER BY id LIMIT 1",
    /* Deletes merge_delete() let through (state 1, applied, noted "deleted"),
     * not those a person approved. */
    [T_DELETES_SINCE] = "SELECT received_at FROM journal j WHERE received_at > ?2 AND "
                        "system = ?1 AND state = 1 AND note = 'deleted' AND NOT EXISTS "
                        "(SELECT 1 FROM inbox i WHERE i.kind = 5 AND i.journal_seq = j.seq) "
                        "ORDER BY received_at",
    /* state 2: running; a sent_version: a create was sent, its answer lost */
    [T_CREATE_OPEN] = "SELECT count(*) FROM jobs j JOIN links l ON l.id = j.link_id WHERE "
                      "j.link_id = ?1 AND l.ext_id IS NULL AND (j.state = 2 OR "
                      "coalesce(j.sent_version, 0) != 0)",
    [T_HELD_APPROVED] = "SELECT count(*) FROM inbox WHERE kind = 5 AND journal_seq = ?1 "
                        "AND state = 'approved'",
};

/* The store_int_stmt() slots of this file start here. */
#define SLOT0 0
_Static_assert(T_COUNT <= 40,
               "store_twoway.c needs more statement slots (store_poll.c starts at 40)");

static sqlite3_stmt *
tstmt(struct store *st, int id, struct error *err)
{
    return store_int_stmt(st, SLOT0 + id, sql[id], err);
}

/* Statements of this file beyond its first 40 slots, each in its own. */
#define SLOT_LINK_JOBS 137
_Static_assert(SLOT_LINK_JOBS < STORE_EXTRA_SLOTS, "store_int.h: raise STORE_EXTRA_SLOTS");
static const char sql_link_jobs[] = "SELECT count(*) FROM jobs WHERE link_id = ?1 AND state IN "
                                    "(1, 2)";

static void
text_from_row(sqlite3_stmt *s, void *out)
{
    *(char **)out = store_int_col_text(s, 0);
}

static void
int64_from_row(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
}

static int
get_text(struct store *st, int id, int64_t key, char **out, const char *what, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, id, err);
    int rc;

    *out = NULL;
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, key);
    rc = store_int_one_row(st, s, text_from_row, out, what, err);
    return rc == -1 ? -1 : 0;
}

static int
set_text(struct store *st, int id, int64_t key, const char *text, const char *what,
         struct error *err)
{
    sqlite3_stmt *s = tstmt(st, id, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, key);
    store_int_bind_text(s, 2, text);
    return store_int_exec(st, s, what, err);
}

int
store_record_meta(struct store *st, int64_t record_id, char **out, struct error *err)
{
    return get_text(st, T_META_GET, record_id, out, "read a record's field times", err);
}

int
store_record_set_meta(struct store *st, int64_t record_id, const char *meta, struct error *err)
{
    return set_text(st, T_META_SET, record_id, meta, "write a record's field times", err);
}

int
store_link_recent(struct store *st, int64_t link_id, char **out, struct error *err)
{
    return get_text(st, T_RECENT_GET, link_id, out, "read a link's past writes", err);
}

int
store_link_note(struct store *st, int64_t link_id, const char *state, char kind, int64_t at_ms,
                struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_RECENT_NOTE, err);
    char k[2] = {kind, '\0'};

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, at_ms);
    sqlite3_bind_text(s, 4, k, 1, SQLITE_TRANSIENT);
    return store_int_exec(st, s, "note a link's state", err);
}

int
store_link_gone(struct store *st, int64_t link_id, int64_t record_id, int64_t now_ms,
                const char *why, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_LINK_GONE, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    sqlite3_bind_int64(s, 2, now_ms);
    if (store_int_exec(st, s, "mark a copy deleted", err) == -1)
        return -1;
    /* Work for a copy that no longer exists is moot. */
    if ((s = tstmt(st, T_JOBS_OF_LINK, err)) == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    if (store_int_exec(st, s, "drop a deleted copy's jobs", err) == -1)
        return -1;
    if ((s = tstmt(st, T_INBOX_OF_LINK, err)) == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    sqlite3_bind_int64(s, 2, now_ms);
    store_int_bind_text(s, 3, why);
    return store_int_exec(st, s, "close a deleted copy's inbox entries", err);
}

static void
gone_from_row(sqlite3_stmt *s, void *out)
{
    struct link *l = out;

    l->id = sqlite3_column_int64(s, 0);
    l->collection = store_int_col_text(s, 1);
    l->record_id = sqlite3_column_int64(s, 2);
    l->ext_id = store_int_col_text(s, 3);
}

int
store_link_by_gone(struct store *st, const char *collection, const char *ext_id, struct link *out,
                   struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_LINK_BY_GONE, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    store_int_bind_text(s, 2, ext_id);
    return store_int_one_row(st, s, gone_from_row, out, "find a deleted copy", err);
}

int
store_keys_set(struct store *st, int64_t record_id, const char *model, const char *const *names,
               const char *const *values, size_t count, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_KEYS_DEL, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    if (store_int_exec(st, s, "drop a record's keys", err) == -1)
        return -1;
    for (size_t i = 0; i < count; i++) {
        if (values[i] == NULL)
            continue;
        if ((s = tstmt(st, T_KEYS_ADD, err)) == NULL)
            return -1;
        store_int_bind_text(s, 1, model);
        store_int_bind_text(s, 2, names[i]);
        store_int_bind_text(s, 3, values[i]);
        sqlite3_bind_int64(s, 4, record_id);
        if (store_int_exec(st, s, "add a record's key", err) == -1)
            return -1;
    }
    return 0;
}

static void
ids_free(void *list, int count)
{
    (void)count;
    free(list);
}

int
store_keys_find(struct store *st, const char *model, const char *name, const char *value,
                int64_t **out, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_KEYS_FIND, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, model);
    store_int_bind_text(s, 2, name);
    store_int_bind_text(s, 3, value);
    return store_int_many_rows(st, s, sizeof(int64_t), int64_from_row, ids_free, (void **)out,
                               "find records by key", err);
}

int
store_inbox_set_detail(struct store *st, int64_t id, const char *field, const char *detail,
                       const char *state, const char *by, int64_t now_ms, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_INBOX_DETAIL, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    store_int_bind_text(s, 2, field);
    store_int_bind_text(s, 3, detail);
    store_int_bind_text(s, 4, state);
    store_int_bind_text(s, 5, by);
    sqlite3_bind_int64(s, 6, now_ms);
    return store_int_exec(st, s, "write an inbox entry's detail", err);
}

static void
full_from_row(sqlite3_stmt *s, void *out)
{
    struct inbox_entry *e = out;

    e->id = sqlite3_column_int64(s, 0);
    e->kind = (enum inbox_kind)sqlite3_column_int(s, 1);
    e->state = store_int_col_text(s, 2);
    e->system = store_int_col_text(s, 3);
    e->collection = store_int_col_text(s, 4);
    e->record_id = sqlite3_column_int64(s, 5);
    e->job_id = sqlite3_column_int64(s, 6);
    e->journal_seq = sqlite3_column_int64(s, 7);
    e->reason = store_int_col_text(s, 8);
    e->http_status = sqlite3_column_int(s, 9);
    e->response = store_int_col_text(s, 10);
    e->attempts = sqlite3_column_int(s, 11);
    e->created_at_ms = sqlite3_column_int64(s, 12);
    e->updated_at_ms = sqlite3_column_int64(s, 13);
    e->field = store_int_col_text(s, 14);
    e->detail = store_int_col_text(s, 15);
}

static void
full_free(void *list, int count)
{
    store_inbox_free(list, count);
}

int
store_conflict_open(struct store *st, int64_t record_id, const char *field, struct inbox_entry *out,
                    struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_CONFLICT_OPEN, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    store_int_bind_text(s, 2, field);
    return store_int_one_row(st, s, full_from_row, out, "find an open conflict", err);
}

int
store_match_conflict_find(struct store *st, const char *collection, const char *ext_id,
                          struct inbox_entry *out, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_MATCH_FIND, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    store_int_bind_text(s, 2, ext_id);
    return store_int_one_row(st, s, full_from_row, out, "find a match conflict", err);
}

int
store_inbox_by_kind(struct store *st, enum inbox_kind kind, int open_only, struct inbox_entry **out,
                    struct error *err)
{
    sqlite3_stmt *s = tstmt(st, open_only ? T_INBOX_KIND : T_INBOX_KIND_ALL, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, (int)kind);
    return store_int_many_rows(st, s, sizeof(struct inbox_entry), full_from_row, full_free,
                               (void **)out, "read the inbox", err);
}

int
store_inbox_get_full(struct store *st, int64_t id, struct inbox_entry *out, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_INBOX_FULL, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return store_int_one_row(st, s, full_from_row, out, "read an inbox entry", err);
}

static int
count_of(struct store *st, int id, const char *name, int64_t *out, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, id, err);

    *out = 0;
    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, name);
    return store_int_one_row(st, s, int64_from_row, out, "count", err) == -1 ? -1 : 0;
}

int
store_held_count(struct store *st, const char *system, int64_t *out, struct error *err)
{
    return count_of(st, T_HELD_COUNT, system, out, err);
}

int
store_linked_count(struct store *st, const char *collection, int64_t *out, struct error *err)
{
    return count_of(st, T_LINKED_COUNT, collection, out, err);
}

int
store_link_jobs(struct store *st, int64_t link_id, int64_t *out, struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, SLOT_LINK_JOBS, sql_link_jobs, err);

    *out = 0;
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    return store_int_one_row(st, s, int64_from_row, out, "count a link's jobs", err) == -1 ? -1 : 0;
}

int
store_link_removing(struct store *st, int64_t link_id, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_LINK_REMOVING, err);
    int64_t n = 0;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    if (store_int_one_row(st, s, int64_from_row, &n, "look for a copy's delete", err) == -1)
        return -1;
    return n > 0;
}

int
store_link_removal_moot(struct store *st, int64_t link_id, int64_t now_ms, const char *why,
                        struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_MOOT_INBOX, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    sqlite3_bind_int64(s, 2, now_ms);
    store_int_bind_text(s, 3, why);
    if (store_int_exec(st, s, "close a copy's parked delete", err) == -1)
        return -1;
    if ((s = tstmt(st, T_MOOT_JOBS, err)) == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    return store_int_exec(st, s, "drop a copy's parked delete", err);
}

int
store_deletes_since(struct store *st, const char *system, int64_t since_ms, int64_t **out,
                    struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_DELETES_SINCE, err);

    *out = NULL;
    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    sqlite3_bind_int64(s, 2, since_ms);
    return store_int_many_rows(st, s, sizeof(int64_t), int64_from_row, ids_free, (void **)out,
                               "read a system's recent deletes", err);
}

int
store_link_create_open(struct store *st, int64_t link_id, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_CREATE_OPEN, err);
    int64_t n = 0;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    if (store_int_one_row(st, s, int64_from_row, &n, "look for a copy's create", err) == -1)
        return -1;
    return n > 0;
}

int
store_tombstones_purge(struct store *st, int64_t before_ms, struct error *err)
{
    static const int order[] = {T_PURGE_LINKS, T_PURGE_VERSIONS, T_PURGE_KEYS, T_PURGE_RECORDS};
    int purged = 0;

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        sqlite3_stmt *s = tstmt(st, order[i], err);

        if (s == NULL)
            return -1;
        sqlite3_bind_int64(s, 1, before_ms);
        if (store_int_exec(st, s, "purge tombstones", err) == -1)
            return -1;
        if (order[i] == T_PURGE_RECORDS)
            purged = sqlite3_changes(sqlite3_db_handle(s));
    }
    return purged;
}

int
store_held_approved(struct store *st, int64_t journal_seq, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_HELD_APPROVED, err);
    int64_t n = 0;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, journal_seq);
    if (store_int_one_row(st, s, int64_from_row, &n, "find an approval", err) == -1)
        return -1;
    return n > 0;
}

static void
copy_change_from_row(sqlite3_stmt *s, void *out)
{
    struct store_copy_change *c = out;

    c->seq = sqlite3_column_int64(s, 0);
    c->system = store_int_col_text(s, 1);
    c->collection = store_int_col_text(s, 2);
    c->ext_id = store_int_col_text(s, 3);
    c->received_at_ms = sqlite3_column_int64(s, 4);
    c->state = (enum change_state)sqlite3_column_int(s, 5);
    c->note = store_int_col_text(s, 6);
}

void
store_copy_changes_free(struct store_copy_change *list, int count)
{
    for (int i = 0; list != NULL && i < count; i++) {
        free(list[i].system);
        free(list[i].collection);
        free(list[i].ext_id);
        free(list[i].note);
    }
    free(list);
}

static void
copy_changes_free(void *list, int count)
{
    store_copy_changes_free(list, count);
}

int
store_copy_changes(struct store *st, int64_t record_id, struct store_copy_change **out,
                   struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_COPY_CHANGES, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    return store_int_many_rows(st, s, sizeof(struct store_copy_change), copy_change_from_row,
                               copy_changes_free, (void **)out, "read a record's changes", err);
}

int
store_conflicts_of_record(struct store *st, int64_t record_id, struct inbox_entry **out,
                          struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_CONFLICTS_OF, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    return store_int_many_rows(st, s, sizeof(struct inbox_entry), full_from_row, full_free,
                               (void **)out, "read a record's conflicts", err);
}

static void
pinned_from_row(sqlite3_stmt *s, void *out)
{
    struct store_pinned *p = out;

    p->link_id = sqlite3_column_int64(s, 0);
    p->record_id = sqlite3_column_int64(s, 1);
    p->sent_version = sqlite3_column_int64(s, 2);
}

int
store_pinned_creates(struct store *st, const char *collection, struct store_pinned **out,
                     struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_PINNED, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    return store_int_many_rows(st, s, sizeof(struct store_pinned), pinned_from_row, ids_free,
                               (void **)out, "find creates whose outcome is unknown", err);
}

int
store_record_deleted_cleanup(struct store *st, int64_t record_id, int64_t now_ms, const char *why,
                             struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_DEL_CLEAN_INBOX, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    sqlite3_bind_int64(s, 2, now_ms);
    store_int_bind_text(s, 3, why);
    if (store_int_exec(st, s, "close a deleted record's entries", err) == -1)
        return -1;
    if ((s = tstmt(st, T_DEL_CLEAN_JOBS, err)) == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    return store_int_exec(st, s, "drop a deleted record's parked updates", err);
}

static void
count_from_row(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
}

int
store_match_conflicts_open(struct store *st, int64_t *n, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_MATCH_OPEN, err);

    *n = 0;
    if (s == NULL)
        return -1;
    return store_int_one_row(st, s, count_from_row, n, "count match conflicts", err) == -1 ? -1 : 0;
}

int
store_match_conflict_close(struct store *st, const char *collection, const char *ext_id,
                           int64_t now_ms, const char *why, struct error *err)
{
    sqlite3_stmt *s = tstmt(st, T_MATCH_CLOSE, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    store_int_bind_text(s, 2, ext_id);
    sqlite3_bind_int64(s, 3, now_ms);
    store_int_bind_text(s, 4, why);
    if (store_int_exec(st, s, "close a match conflict", err) == -1)
        return -1;
    return sqlite3_changes(sqlite3_db_handle(s));
}
