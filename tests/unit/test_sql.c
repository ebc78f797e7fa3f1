/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_sql.c — SQL tables as systems (src/sql/). Every case runs
 * against SQLite (a temporary file), then against PostgreSQL when
 * CONCORD_TEST_PG holds a libpq conninfo (scripts/with-pg.sh sets one up;
 * ctest runs this binary both ways: unit/test_sql and unit/test_sql_pg).
 * On PostgreSQL each case works in a schema of its own, ct_<pid>.
 */
/* link: sql core */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "core/clock.h"
#include "core/error.h"
#include "sql/sql.h"

struct db {
    enum sql_kind kind;
    struct sql_conn *c;
    char target[512];
    char schema[32];  /* "main" or "ct_<pid>" */
    const char *name; /* for messages */
};

#define OK(call)                                                          \
    do {                                                                  \
        if ((call) == -1)                                                 \
            check_fail(__FILE__, __LINE__, "%s: %s [%s]", #call, err.msg, \
                       error_kind_name(err.kind));                        \
    } while (0)

/* Expect a failure of this kind whose message holds needle; then clear err. */
#define FAILS(call, k, needle)                                                            \
    do {                                                                                  \
        if ((call) != -1)                                                                 \
            check_fail(__FILE__, __LINE__, "%s: did not fail", #call);                    \
        if (err.kind != (k) || strstr(err.msg, (needle)) == NULL)                         \
            check_fail(__FILE__, __LINE__, "%s: [%s] %s; wanted [%s] with \"%s\"", #call, \
                       error_kind_name(err.kind), err.msg, error_kind_name(k), needle);   \
        error_clear(&err);                                                                \
    } while (0)

static void db_exec(struct db *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
db_exec(struct db *d, const char *fmt, ...)
{
    struct error err = {0};
    char sql[4096];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (sql_exec(d->c, sql, &err) == -1)
        check_fail(__FILE__, __LINE__, "%s: %s: %s", d->name, sql, err.msg);
}

/* Open the backend's database for one case; 0 when PostgreSQL is not configured. */
static int
db_open(struct db *d, enum sql_kind kind)
{
    struct error err = {0};
    const char *pg = getenv("CONCORD_TEST_PG");
    FILE *f;

    memset(d, 0, sizeof(*d));
    d->kind = kind;
    if (kind == SQL_SQLITE) {
        d->name = "sqlite";
        (void)snprintf(d->target, sizeof(d->target), "/tmp/concord-test-sql-%d.db", (int)getpid());
        (void)snprintf(d->schema, sizeof(d->schema), "main");
        f = fopen(d->target, "w"); /* an empty file is an empty database */
        CHECK(f != NULL);
        fclose(f);
    } else {
        if (pg == NULL || pg[0] == '\0')
            return 0;
        d->name = "postgres";
        (void)snprintf(d->target, sizeof(d->target), "%s", pg);
        (void)snprintf(d->schema, sizeof(d->schema), "ct_%d", (int)getpid());
    }
    if (sql_open(kind, d->target, &d->c, &err) == -1)
        check_fail(__FILE__, __LINE__, "%s: sql_open: %s", d->name, err.msg);
    if (kind == SQL_POSTGRES)
        db_exec(d, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", d->schema, d->schema);
    return 1;
}

static void
db_close(struct db *d)
{
    char side[600];

    if (d->kind == SQL_POSTGRES)
        db_exec(d, "DROP SCHEMA IF EXISTS %s CASCADE", d->schema);
    sql_close(d->c);
    if (d->kind == SQL_SQLITE) {
        unlink(d->target);
        (void)snprintf(side, sizeof(side), "%s-journal", d->target);
        unlink(side);
        (void)snprintf(side, sizeof(side), "%s-wal", d->target);
        unlink(side);
    }
}

/* Run body once per configured backend. */
static void
each_db(void (*body)(struct db *d))
{
    static const enum sql_kind kinds[] = {SQL_SQLITE, SQL_POSTGRES};
    struct db d;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (!db_open(&d, kinds[i]))
            continue;
        body(&d);
        db_close(&d);
    }
}

/* "schema.table" in a static buffer (one at a time). */
static const char *
qual(struct db *d, const char *table)
{
    static char name[128];

    (void)snprintf(name, sizeof(name), "%s.%s", d->schema, table);
    return name;
}

/* The items table: text key, a timestamp, a name. */
static void
make_items(struct db *d)
{
    if (d->kind == SQL_SQLITE)
        db_exec(d, "CREATE TABLE main.items (id TEXT PRIMARY KEY, ua TEXT, name TEXT);"
                   "CREATE INDEX main.items_ua ON items (ua, id)");
    else
        db_exec(d,
                "CREATE TABLE %s.items (id text PRIMARY KEY, ua timestamptz, name text);"
                "CREATE INDEX ON %s.items (ua, id)",
                d->schema, d->schema);
}

static void
add_item(struct db *d, const char *id, const char *ua, const char *name)
{
    db_exec(d, "INSERT INTO %s.items (id, ua, name) VALUES ('%s', '%s', '%s')", d->schema, id, ua,
            name);
}

static const char *
str_of(const cJSON *row, const char *col)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, col);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double
num_of(const cJSON *row, const char *col)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, col);

    if (!cJSON_IsNumber(v))
        check_fail(__FILE__, __LINE__, "column %s is not a number", col);
    return v->valuedouble;
}

/*
 * Read every page of t from *wm on, appending each row's key to keys
 * (space-separated); the page sizes go to pages ("3 3 3 1 0").
 */
static void
read_all(struct db *d, const struct sql_table *t, struct sql_watermark *wm, int incremental,
         size_t limit, char *keys, size_t keys_len, char *pages, size_t pages_len)
{
    struct error err = {0};
    int n;

    do {
        struct sql_watermark next = {0};
        cJSON *rows = NULL, *row;

        n = sql_read_page(d->c, t, wm, incremental, limit, &rows, &next, &err);
        OK(n);
        CHECK_EQ(cJSON_GetArraySize(rows), n);
        cJSON_ArrayForEach(row, rows)
        {
            const char *k = str_of(row, t->key);
            char num[32];

            if (k == NULL) {
                (void)snprintf(num, sizeof(num), "%.0f", num_of(row, t->key));
                k = num;
            }
            (void)snprintf(keys + strlen(keys), keys_len - strlen(keys), "%s%s", keys[0] ? " " : "",
                           k);
        }
        (void)snprintf(pages + strlen(pages), pages_len - strlen(pages), "%s%d",
                       pages[0] ? " " : "", n);
        cJSON_Delete(rows);
        sql_watermark_fini(wm);
        *wm = next;
    } while (n > 0);
}

static void
shared_timestamps_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "items"), .key = "id", .updated_at = "ua"};
    struct sql_watermark wm = {0};
    char keys[512] = "", pages[64] = "", id[16];

    make_items(d);
    add_item(d, "a", "2026-11-26T09:00:00Z", "early");
    for (int i = 10; i >= 1; i--) {
        (void)snprintf(id, sizeof(id), "k%02d", i);
        add_item(d, id, "2026-11-26T10:00:00.123Z", "same");
    }
    add_item(d, "b", "2026-11-26T11:00:00Z", "late");
    read_all(d, &t, &wm, 1, 3, keys, sizeof(keys), pages, sizeof(pages));
    CHECK_STR_EQ(keys, "a k01 k02 k03 k04 k05 k06 k07 k08 k09 k10 b");
    CHECK_STR_EQ(pages, "3 3 3 3 0");
    CHECK_STR_EQ(wm.key, "b");
    CHECK_STR_EQ(wm.updated_at, "2026-11-26T11:00:00Z"); /* sqlite as stored; pg ISO 8601 */
    sql_watermark_fini(&wm);

    /* "Since a time": updated_at without a key includes that instant. */
    wm.updated_at = strdup("2026-11-26T10:00:00.123Z");
    keys[0] = pages[0] = '\0';
    read_all(d, &t, &wm, 1, 4, keys, sizeof(keys), pages, sizeof(pages));
    CHECK_STR_EQ(keys, "k01 k02 k03 k04 k05 k06 k07 k08 k09 k10 b");
    CHECK_STR_EQ(pages, "4 4 3 0");
    sql_watermark_fini(&wm);
}

static void
incremental_reads_lose_nothing_on_shared_timestamps(void)
{
    each_db(shared_timestamps_body);
}

static void
between_pages_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "items"), .key = "id", .updated_at = "ua"};
    struct sql_watermark wm = {0}, next = {0};
    struct error err = {0};
    char keys[256] = "", pages[64] = "";
    cJSON *rows = NULL;

    make_items(d);
    add_item(d, "k1", "2026-11-26T10:00:00Z", "x");
    add_item(d, "k2", "2026-11-26T10:00:00Z", "x");
    add_item(d, "k3", "2026-11-26T10:00:00Z", "x");
    OK(sql_read_page(d->c, &t, &wm, 1, 2, &rows, &next, &err));
    cJSON_Delete(rows);
    CHECK_STR_EQ(next.key, "k2");
    /* Committed "during" the read: the same updated_at as the watermark, a greater key. */
    add_item(d, "k9", "2026-11-26T10:00:00Z", "late");
    add_item(d, "k25", "2026-11-26T10:00:00Z", "late");
    read_all(d, &t, &next, 1, 2, keys, sizeof(keys), pages, sizeof(pages));
    CHECK_STR_EQ(keys, "k25 k3 k9");
    sql_watermark_fini(&next);
}

static void
rows_committed_between_pages_are_seen(void)
{
    each_db(between_pages_body);
}

static void
full_read_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "nums"), .key = "id"};
    struct sql_table q = {.table = qual(d, "nums"), .key = "id", .query = NULL};
    struct sql_watermark wm = {0};
    struct error err = {0};
    char keys[256] = "", pages[64] = "", query[256];
    int64_t n = 0;

    db_exec(d, "CREATE TABLE %s.nums (id integer PRIMARY KEY, v text)", d->schema);
    db_exec(d,
            "INSERT INTO %s.nums (id, v) VALUES (5,'e'),(1,'a'),(7,'g'),(3,'c'),(2,'b'),"
            "(6,'f'),(4,'d'),(10,'j')",
            d->schema);
    read_all(d, &t, &wm, 0, 3, keys, sizeof(keys), pages, sizeof(pages));
    CHECK_STR_EQ(keys, "1 2 3 4 5 6 7 10");
    CHECK_STR_EQ(pages, "3 3 2 0");
    CHECK_STR_EQ(wm.key, "10");
    CHECK(wm.updated_at == NULL);
    sql_watermark_fini(&wm);
    OK(sql_count(d->c, &t, &n, &err));
    CHECK_EQ(n, 8);

    /* A query instead of the table, trailing semicolon and all. */
    (void)snprintf(query, sizeof(query), "SELECT id, v FROM %s.nums WHERE v <> 'c';\n", d->schema);
    q.query = query;
    keys[0] = pages[0] = '\0';
    read_all(d, &q, &wm, 0, 100, keys, sizeof(keys), pages, sizeof(pages));
    CHECK_STR_EQ(keys, "1 2 4 5 6 7 10");
    sql_watermark_fini(&wm);
    OK(sql_count(d->c, &q, &n, &err));
    CHECK_EQ(n, 7);
    /* incremental needs updated_at */
    FAILS(sql_read_page(d->c, &t, NULL, 1, 3, NULL, &wm, &err), ERROR_INVALID, "updated_at");
}

static void
full_read_pages_by_key(void)
{
    each_db(full_read_body);
}

static void
upsert_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "people"), .key = "id"};
    struct error err = {0};
    cJSON *row, *got = NULL;
    char *key = NULL;
    int64_t n = 0;

    if (d->kind == SQL_SQLITE)
        db_exec(d, "CREATE TABLE main.people (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)");
    else
        db_exec(d,
                "CREATE TABLE %s.people (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                "name text, qty int)",
                d->schema);
    row = cJSON_Parse("{\"name\":\"ada\",\"qty\":1}");
    OK(sql_upsert(d->c, &t, row, &key, &err));
    CHECK_STR_EQ(key, "1"); /* assigned by the database */
    free(key);
    cJSON_Delete(row);

    row = cJSON_Parse("{\"id\":1,\"name\":\"ada l\"}"); /* update; qty keeps its value */
    OK(sql_upsert(d->c, &t, row, &key, &err));
    CHECK_STR_EQ(key, "1");
    free(key);
    cJSON_Delete(row);

    row = cJSON_Parse("{\"id\":\"40\",\"name\":\"bob\",\"qty\":null}"); /* a text key into int */
    OK(sql_upsert(d->c, &t, row, &key, &err));
    CHECK_STR_EQ(key, "40");
    free(key);
    cJSON_Delete(row);

    row = cJSON_Parse("{\"id\":41}"); /* only the key */
    OK(sql_upsert(d->c, &t, row, NULL, &err));
    OK(sql_upsert(d->c, &t, row, NULL, &err));
    cJSON_Delete(row);

    row = cJSON_Parse("{\"id\":null,\"name\":\"cy\"}"); /* a null key: the database assigns */
    OK(sql_upsert(d->c, &t, row, &key, &err));
    CHECK(key != NULL && strcmp(key, "1") != 0 && strcmp(key, "40") != 0);
    free(key);
    cJSON_Delete(row);

    CHECK_EQ(sql_get(d->c, &t, "1", &got, &err), 1);
    CHECK_STR_EQ(str_of(got, "name"), "ada l");
    CHECK_EQ(num_of(got, "qty"), 1);
    CHECK_EQ(num_of(got, "id"), 1);
    cJSON_Delete(got);
    got = NULL;
    CHECK_EQ(sql_get(d->c, &t, "40", &got, &err), 1);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(got, "qty")));
    cJSON_Delete(got);
    got = NULL;
    CHECK_EQ(sql_get(d->c, &t, "999", &got, &err), 0);
    CHECK(got == NULL);
    OK(sql_count(d->c, &t, &n, &err));
    CHECK_EQ(n, 4);
}

static void
upsert_inserts_updates_and_returns_the_key(void)
{
    each_db(upsert_body);
}

static void
update_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "people"), .key = "id"};
    struct error err = {0};
    cJSON *row, *got = NULL;
    char *key = NULL;

    /* mail is NOT NULL: an upsert naming only qty would fail its INSERT. */
    if (d->kind == SQL_SQLITE)
        db_exec(d, "CREATE TABLE main.people (id INTEGER PRIMARY KEY, mail TEXT NOT NULL, "
                   "name TEXT, qty INTEGER)");
    else
        db_exec(d,
                "CREATE TABLE %s.people (id int PRIMARY KEY, mail text NOT NULL, name text, "
                "qty int)",
                d->schema);
    db_exec(d, "INSERT INTO %s.people (id, mail, name, qty) VALUES (1, 'a@x', 'ada', 1)",
            d->schema);
    row = cJSON_Parse("{\"id\":1,\"qty\":5}");
    CHECK_EQ(sql_update(d->c, &t, row, &key, &err), 1);
    CHECK_STR_EQ(key, "1");
    free(key);
    key = NULL;
    CHECK_EQ(sql_get(d->c, &t, "1", &got, &err), 1);
    CHECK_STR_EQ(str_of(got, "mail"), "a@x"); /* the columns not named keep their values */
    CHECK_STR_EQ(str_of(got, "name"), "ada");
    CHECK_EQ(num_of(got, "qty"), 5);
    cJSON_Delete(got);
    cJSON_Delete(row);
    row = cJSON_Parse("{\"id\":\"2\",\"qty\":5}"); /* no such row: 0, and nothing made */
    CHECK_EQ(sql_update(d->c, &t, row, &key, &err), 0);
    CHECK(key == NULL);
    got = NULL;
    CHECK_EQ(sql_get(d->c, &t, "2", &got, &err), 0);
    cJSON_Delete(row);
    row = cJSON_Parse("{\"qty\":5}"); /* no key: refused */
    CHECK_EQ(sql_update(d->c, &t, row, NULL, &err), -1);
    CHECK_EQ(err.kind, ERROR_PERMANENT);
    cJSON_Delete(row);
    error_clear(&err);
    row = cJSON_Parse("{\"id\":1,\"mail\":null}"); /* a constraint: permanent, named */
    CHECK_EQ(sql_update(d->c, &t, row, NULL, &err), -1);
    CHECK_EQ(err.kind, ERROR_PERMANENT);
    CHECK(strstr(err.msg, "mail") != NULL);
    cJSON_Delete(row);
}

static void
update_sets_only_the_named_columns(void)
{
    each_db(update_body);
}

/* Read row 1 of table, check it against want (JSON text), then write it into copy and compare. */
static void
check_types_round_trip(struct db *d, const char *want_text)
{
    struct sql_table t = {.table = qual(d, "types"), .key = "id"};
    struct sql_table t2 = {.table = NULL, .key = "id"};
    struct error err = {0};
    cJSON *got = NULL, *want = cJSON_Parse(want_text), *back = NULL;
    char name2[128];
    char *printed;

    CHECK(want != NULL);
    CHECK_EQ(sql_get(d->c, &t, "1", &got, &err), 1);
    printed = cJSON_PrintUnformatted(got);
    if (!cJSON_Compare(got, want, 1))
        check_fail(__FILE__, __LINE__, "%s: read %s\nwanted %s", d->name, printed, want_text);
    /* The row writes back unchanged into a table of the same shape. */
    (void)snprintf(name2, sizeof(name2), "%s.types2", d->schema);
    t2.table = name2;
    OK(sql_upsert(d->c, &t2, got, NULL, &err));
    CHECK_EQ(sql_get(d->c, &t2, "1", &back, &err), 1);
    if (!cJSON_Compare(got, back, 1)) {
        char *p2 = cJSON_PrintUnformatted(back);

        check_fail(__FILE__, __LINE__, "%s: wrote %s\nread back %s", d->name, printed, p2);
    }
    cJSON_free(printed);
    cJSON_Delete(want);
    cJSON_Delete(got);
    cJSON_Delete(back);
}

static void
types_body(struct db *d)
{
    if (d->kind == SQL_SQLITE) {
        static const char cols[] =
            "(id INTEGER PRIMARY KEY, i INTEGER, big INTEGER, r REAL, "
            "t TEXT, b BOOLEAN, j JSON, ts TEXT, blob BLOB, n TEXT, inf REAL)";

        db_exec(d, "CREATE TABLE main.types %s; CREATE TABLE main.types2 %s", cols, cols);
        db_exec(d, "INSERT INTO main.types VALUES (1, -42, 9007199254740993, 1.5, 'héllo', 1, "
                   "'{\"a\":[1,2]}', '2026-11-26T10:00:00.123Z', x'000102ff', NULL, 9e999)");
        check_types_round_trip(
            d, "{\"id\":1,\"i\":-42,\"big\":\"9007199254740993\",\"r\":1.5,\"t\":\"héllo\","
               "\"b\":true,\"j\":{\"a\":[1,2]},\"ts\":\"2026-11-26T10:00:00.123Z\","
               "\"blob\":\"AAEC/w==\",\"n\":null,\"inf\":\"Infinity\"}");
        return;
    }
    static const char cols[] =
        "(id int4 PRIMARY KEY, s int2, i int4, big int8, bigx int8, num numeric(12,4), "
        "numx numeric, f8 float8, f4 float4, t text, vc varchar(20), b bool, j json, jb jsonb, "
        "tz timestamptz, ts timestamp, d date, by bytea, n text, u uuid, nan float8)";

    db_exec(d, "CREATE TABLE %s.types %s; CREATE TABLE %s.types2 %s", d->schema, cols, d->schema,
            cols);
    db_exec(d,
            "INSERT INTO %s.types VALUES (1, 7, -42, 9007199254740992, 9007199254740993, "
            "123.4500, 12345678901234567890.5, 0.1, 1.5, 'héllo', 'vc', true, '{\"a\": [1, 2]}', "
            "'{\"b\": null}', '2026-11-26 12:00:00.123+02', '2026-11-26 10:00:00', '2026-11-26', "
            "'\\x000102ff', NULL, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'NaN')",
            d->schema);
    check_types_round_trip(
        d, "{\"id\":1,\"s\":7,\"i\":-42,\"big\":9007199254740992,\"bigx\":\"9007199254740993\","
           "\"num\":123.45,\"numx\":\"12345678901234567890.5\",\"f8\":0.1,\"f4\":1.5,"
           "\"t\":\"héllo\",\"vc\":\"vc\",\"b\":true,\"j\":{\"a\":[1,2]},\"jb\":{\"b\":null},"
           "\"tz\":\"2026-11-26T10:00:00.123Z\",\"ts\":\"2026-11-26T10:00:00\","
           "\"d\":\"2026-11-26\",\"by\":\"AAEC/w==\",\"n\":null,"
           "\"u\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\",\"nan\":\"NaN\"}");
}

static void
types_map_to_json_and_back(void)
{
    each_db(types_body);
}

static void
delete_body(struct db *d)
{
    struct sql_table hard = {.table = qual(d, "items"), .key = "id"};
    struct sql_table soft = {.table = NULL, .key = "id", .updated_at = "ua", .soft_delete = "gone"};
    struct sql_table status = {
        .table = NULL, .key = "id", .soft_delete = "state", .soft_delete_value = "\"deleted\""};
    struct error err = {0};
    char name_soft[128];
    cJSON *row = NULL;

    make_items(d);
    add_item(d, "k1", "2026-11-26T10:00:00Z", "x");
    CHECK_EQ(sql_delete(d->c, &hard, "k1", &err), 1);
    CHECK_EQ(sql_delete(d->c, &hard, "k1", &err), 0); /* already gone: not an error */
    CHECK_EQ(sql_get(d->c, &hard, "k1", &row, &err), 0);

    (void)snprintf(name_soft, sizeof(name_soft), "%s.soft", d->schema);
    soft.table = status.table = name_soft;
    db_exec(d,
            "CREATE TABLE %s.soft (id text PRIMARY KEY, ua %s, gone boolean NOT NULL DEFAULT "
            "false, state text)",
            d->schema, d->kind == SQL_SQLITE ? "text" : "timestamptz");
    db_exec(d, "INSERT INTO %s.soft (id, ua, state) VALUES ('s1', '2020-01-01T00:00:00Z', 'ok')",
            d->schema);
    CHECK_EQ(sql_get(d->c, &soft, "s1", &row, &err), 1);
    CHECK_EQ(sql_row_is_deleted(&soft, row), 0);
    cJSON_Delete(row);
    CHECK_EQ(sql_delete(d->c, &soft, "s1", &err), 1);
    CHECK_EQ(sql_delete(d->c, &soft, "s1", &err), 0); /* already soft-deleted */
    CHECK_EQ(sql_delete(d->c, &soft, "nope", &err), 0);
    CHECK_EQ(sql_get(d->c, &soft, "s1", &row, &err), 1);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "gone")));
    CHECK_EQ(sql_row_is_deleted(&soft, row), 1);
    CHECK(strncmp(str_of(row, "ua"), "2020", 4) > 0); /* updated_at moved to now */
    CHECK_EQ(sql_row_is_deleted(&status, row), 0);
    cJSON_Delete(row);
    CHECK_EQ(sql_delete(d->c, &status, "s1", &err), 1);
    CHECK_EQ(sql_get(d->c, &status, "s1", &row, &err), 1);
    CHECK_STR_EQ(str_of(row, "state"), "deleted");
    CHECK_EQ(sql_row_is_deleted(&status, row), 1);
    cJSON_Delete(row);
}

static void
soft_and_real_deletes(void)
{
    each_db(delete_body);
}

static void
errors_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "strict"), .key = "id"};
    struct sql_table missing = {.table = NULL, .key = "id"};
    struct error err = {0};
    cJSON *row;

    db_exec(d,
            "CREATE TABLE %s.strict (id integer PRIMARY KEY, name text NOT NULL, "
            "qty integer CONSTRAINT qty_positive CHECK (qty > 0), email text UNIQUE)",
            d->schema);
    row = cJSON_Parse("{\"id\":1,\"name\":\"a\",\"bogus\":2}");
    FAILS(sql_upsert(d->c, &t, row, NULL, &err), ERROR_PERMANENT, "bogus");
    cJSON_Delete(row);
    row = cJSON_Parse("{\"id\":1,\"name\":\"a\",\"qty\":0}");
    FAILS(sql_upsert(d->c, &t, row, NULL, &err), ERROR_PERMANENT, "qty_positive");
    cJSON_Delete(row);
    row = cJSON_Parse("{\"id\":1,\"qty\":3}");
    FAILS(sql_upsert(d->c, &t, row, NULL, &err), ERROR_PERMANENT, "name");
    cJSON_Delete(row);
    row = cJSON_Parse("{\"id\":1,\"name\":\"a\",\"email\":\"x@y\"}");
    OK(sql_upsert(d->c, &t, row, NULL, &err));
    cJSON_Delete(row);
    row = cJSON_Parse("{\"id\":2,\"name\":\"b\",\"email\":\"x@y\"}");
    FAILS(sql_upsert(d->c, &t, row, NULL, &err), ERROR_PERMANENT, "email");
    cJSON_Delete(row);
    if (d->kind == SQL_POSTGRES) {
        row = cJSON_Parse("{\"id\":3,\"name\":\"c\",\"qty\":\"many\"}");
        FAILS(sql_upsert(d->c, &t, row, NULL, &err), ERROR_PERMANENT, "integer");
        cJSON_Delete(row);
    }
    missing.table = qual(d, "nosuch");
    FAILS(sql_count(d->c, &missing, &(int64_t){0}, &err), ERROR_PERMANENT, "nosuch");
    missing.table = "bad\ttable";
    FAILS(sql_table_check(&missing, &err), ERROR_INVALID, "not a valid name");
    FAILS(sql_count(d->c, &missing, &(int64_t){0}, &err), ERROR_INVALID, "not a valid name");
    row = cJSON_Parse("{\"id\":1,\"\":2}");
    FAILS(sql_upsert(d->c, &t, row, NULL, &err), ERROR_PERMANENT, "not a valid name");
    cJSON_Delete(row);
}

static void
bad_columns_and_constraints_are_permanent_and_named(void)
{
    each_db(errors_body);
}

static void
txn_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "items"), .key = "id"};
    struct error err = {0};
    int64_t n = -1;
    cJSON *row;

    make_items(d);
    OK(sql_begin(d->c, &err));
    FAILS(sql_begin(d->c, &err), ERROR_INTERNAL, "already");
    row = cJSON_Parse("{\"id\":\"a\",\"name\":\"x\"}");
    OK(sql_upsert(d->c, &t, row, NULL, &err));
    cJSON_Delete(row);
    row = cJSON_Parse("{\"id\":\"b\",\"name\":\"x\"}");
    OK(sql_upsert(d->c, &t, row, NULL, &err));
    OK(sql_delete(d->c, &t, "a", &err));
    sql_rollback(d->c);
    OK(sql_count(d->c, &t, &n, &err));
    CHECK_EQ(n, 0);

    /* A failed call fails the transaction: nothing of it is kept. */
    OK(sql_begin(d->c, &err));
    OK(sql_upsert(d->c, &t, row, NULL, &err));
    cJSON_Delete(row);
    row = cJSON_Parse("{\"id\":\"c\",\"nope\":1}");
    FAILS(sql_upsert(d->c, &t, row, NULL, &err), ERROR_PERMANENT, "nope");
    cJSON_Delete(row);
    FAILS(sql_count(d->c, &t, &n, &err), ERROR_INTERNAL, "sql_rollback");
    FAILS(sql_commit(d->c, &err), ERROR_INTERNAL, "sql_rollback");
    sql_rollback(d->c);
    OK(sql_count(d->c, &t, &n, &err));
    CHECK_EQ(n, 0);

    OK(sql_begin(d->c, &err));
    row = cJSON_Parse("{\"id\":\"d\",\"name\":\"kept\"}");
    OK(sql_upsert(d->c, &t, row, NULL, &err));
    cJSON_Delete(row);
    OK(sql_commit(d->c, &err));
    FAILS(sql_commit(d->c, &err), ERROR_INTERNAL, "no transaction");
    sql_rollback(d->c); /* without a transaction: nothing */
    OK(sql_count(d->c, &t, &n, &err));
    CHECK_EQ(n, 1);
}

static void
a_rolled_back_transaction_leaves_nothing(void)
{
    each_db(txn_body);
}

/*
 * Write count rows in one transaction, row bad with qty 0 (refused by a
 * CHECK). The refusal may come at that upsert or later (queued writes), at
 * the latest at the commit; either way sql_txn_failed_write() names it.
 */
static void
refuse_one(struct db *d, const struct sql_table *t, int count, int bad)
{
    struct error err = {0};
    char text[96];
    int k, rc = 0;
    int64_t n = -1;

    OK(sql_begin(d->c, &err));
    for (k = 0; k < count && rc == 0; k++) {
        cJSON *row;

        (void)snprintf(text, sizeof(text), "{\"id\":%d,\"name\":\"n\",\"qty\":%d}", k,
                       k == bad ? 0 : 1);
        row = cJSON_Parse(text);
        rc = sql_upsert(d->c, t, row, NULL, &err);
        cJSON_Delete(row);
    }
    if (rc == 0)
        rc = sql_commit(d->c, &err);
    CHECK_EQ(rc, -1);
    if (err.kind != ERROR_PERMANENT || strstr(err.msg, "qty_positive") == NULL)
        check_fail(__FILE__, __LINE__, "%s: [%s] %s", d->name, error_kind_name(err.kind), err.msg);
    CHECK(k - 1 >= bad); /* not reported before it was written */
    CHECK_EQ(sql_txn_failed_write(d->c), bad);
    sql_rollback(d->c);
    CHECK_EQ(sql_txn_failed_write(d->c), bad);
    OK(sql_count(d->c, t, &n, &err));
    CHECK_EQ(n, 0);
}

static void
refused_row_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "strict"), .key = "id"};
    struct error err = {0};
    int64_t n = -1;
    cJSON *row;

    db_exec(d,
            "CREATE TABLE %s.strict (id integer PRIMARY KEY, name text NOT NULL, "
            "qty integer CONSTRAINT qty_positive CHECK (qty > 0))",
            d->schema);
    row = cJSON_Parse("{\"id\":0,\"name\":\"n\",\"qty\":1}");
    OK(sql_upsert(d->c, &t, row, NULL, &err)); /* prepared before the batches */
    cJSON_Delete(row);
    OK(sql_delete(d->c, &t, "0", &err));
    refuse_one(d, &t, 16, 10);   /* in the last queue: the commit reports it */
    refuse_one(d, &t, 250, 180); /* reported when the queue is full, at write 199 */
    refuse_one(d, &t, 5, 0);
    /* Without the refused row the batch goes through. */
    OK(sql_begin(d->c, &err));
    CHECK_EQ(sql_txn_failed_write(d->c), -1);
    for (int k = 0; k < 250; k++) {
        char text[96];

        (void)snprintf(text, sizeof(text), "{\"id\":%d,\"name\":\"n\",\"qty\":1}", k);
        row = cJSON_Parse(text);
        OK(sql_upsert(d->c, &t, row, NULL, &err));
        cJSON_Delete(row);
    }
    OK(sql_commit(d->c, &err));
    OK(sql_count(d->c, &t, &n, &err));
    CHECK_EQ(n, 250);
}

static void
a_refused_row_is_named_by_its_index(void)
{
    each_db(refused_row_body);
}

static void
cache_body(struct db *d)
{
    struct sql_table t = {.table = qual(d, "items"), .key = "id"};
    struct sql_table other = {.table = qual(d, "items"), .key = "name"};
    struct error err = {0};
    char text[128], query[128];
    cJSON *row = NULL;
    int64_t n = 0;

    make_items(d);
    OK(sql_begin(d->c, &err));
    for (int i = 0; i < 1000; i++) {
        /* Three shapes in turn: the cache keeps a statement for each. */
        if (i % 3 == 0)
            (void)snprintf(text, sizeof(text), "{\"id\":\"r%04d\",\"name\":\"n%d\"}", i, i);
        else if (i % 3 == 1)
            (void)snprintf(text, sizeof(text), "{\"name\":\"n%d\",\"id\":\"r%04d\"}", i, i);
        else
            (void)snprintf(text, sizeof(text), "{\"id\":\"r%04d\",\"ua\":null,\"name\":\"n%d\"}", i,
                           i);
        row = cJSON_Parse(text);
        OK(sql_upsert(d->c, &t, row, NULL, &err));
        cJSON_Delete(row);
        if (i % 100 == 99) {
            OK(sql_commit(d->c, &err));
            OK(sql_begin(d->c, &err));
        }
    }
    OK(sql_commit(d->c, &err));
    OK(sql_count(d->c, &t, &n, &err));
    CHECK_EQ(n, 1000);
    CHECK_EQ(sql_get(d->c, &t, "r0500", &row, &err), 1);
    CHECK_STR_EQ(str_of(row, "name"), "n500");
    cJSON_Delete(row);
    /* 70 statements more than the cache holds: evicting, then preparing again, still work. */
    for (int i = 0; i < 70; i++) {
        (void)snprintf(query, sizeof(query), "SELECT id, name FROM %s.items WHERE %d = %d",
                       d->schema, i, i);
        other.query = query;
        (void)snprintf(text, sizeof(text), "n%d", i * 3);
        CHECK_EQ(sql_get(d->c, &other, text, &row, &err), 1);
        cJSON_Delete(row);
        (void)snprintf(text, sizeof(text), "{\"id\":\"e%d\",\"col_%d\":1}", i, i);
        row = cJSON_Parse(text);
        FAILS(sql_upsert(d->c, &t, row, NULL, &err), ERROR_PERMANENT, "col_");
        cJSON_Delete(row);
    }
    CHECK_EQ(sql_get(d->c, &t, "r0001", &row, &err), 1);
    cJSON_Delete(row);
}

static void
the_statement_cache_serves_1000_upserts(void)
{
    each_db(cache_body);
}

static void
quoting_body(struct db *d)
{
    struct sql_table t = {.table = NULL, .key = "my \"id\"", .updated_at = "Updated At"};
    struct sql_watermark wm = {0};
    struct error err = {0};
    char name[128], keys[128] = "", pages[32] = "";
    cJSON *row;

    (void)snprintf(name, sizeof(name), "%s.we\"ird table", d->schema);
    t.table = name;
    db_exec(d,
            "CREATE TABLE %s.\"we\"\"ird table\" (\"my \"\"id\"\"\" text PRIMARY KEY, "
            "\"Updated At\" text, \"select\" text)",
            d->schema);
    row = cJSON_Parse("{\"my \\\"id\\\"\":\"x'); DROP TABLE y; --\",\"Updated At\":\"1\","
                      "\"select\":\"v\"}");
    OK(sql_upsert(d->c, &t, row, NULL, &err));
    cJSON_Delete(row);
    read_all(d, &t, &wm, 1, 10, keys, sizeof(keys), pages, sizeof(pages));
    CHECK_STR_EQ(keys, "x'); DROP TABLE y; --");
    sql_watermark_fini(&wm);
    CHECK_EQ(sql_delete(d->c, &t, "x'); DROP TABLE y; --", &err), 1);
}

static void
identifiers_are_quoted_and_values_bound(void)
{
    each_db(quoting_body);
}

static void
open_errors_are_classified(void)
{
    struct error err = {0};
    struct sql_conn *c = NULL;
    const char *pg = getenv("CONCORD_TEST_PG");
    char target[600];

    FAILS(sql_open(SQL_SQLITE, "/nonexistent/dir/x.db", &c, &err), ERROR_PERMANENT,
          "/nonexistent/dir/x.db");
    FAILS(sql_open(SQL_POSTGRES, "host=127.0.0.1 password=hunter2 bogus", &c, &err),
          ERROR_PERMANENT, "does not parse");
    FAILS(sql_open(SQL_POSTGRES, "host=127.0.0.1 port=1 password=hunter2 connect_timeout=2", &c,
                   &err),
          ERROR_TRANSIENT, "refused");
    CHECK(c == NULL);
    if (pg == NULL || pg[0] == '\0')
        return;
    (void)snprintf(target, sizeof(target), "%s dbname=no_such_db password=hunter2", pg);
    if (sql_open(SQL_POSTGRES, target, &c, &err) != -1)
        check_fail(__FILE__, __LINE__, "opened %s", target);
    CHECK_EQ(err.kind, ERROR_PERMANENT);
    CHECK(strstr(err.msg, "no_such_db") != NULL);
    CHECK(strstr(err.msg, "hunter2") == NULL);
}

static void
sqlite_busy_is_transient(void)
{
    struct db d;
    struct sql_conn *c2 = NULL;
    struct error err = {0};

    CHECK(db_open(&d, SQL_SQLITE));
    make_items(&d);
    OK(sql_open(SQL_SQLITE, d.target, &c2, &err));
    OK(sql_begin(d.c, &err));
    FAILS(sql_begin(c2, &err), ERROR_TRANSIENT, "locked");
    sql_rollback(d.c);
    OK(sql_begin(c2, &err));
    sql_rollback(c2);
    sql_close(c2);
    db_close(&d);
}

static void
a_killed_pg_connection_fails_transient_then_reconnects(void)
{
    struct sql_table t = {.table = NULL, .key = "id"};
    struct db d;
    struct sql_conn *victim = NULL;
    struct error err = {0};
    char target[700];
    int64_t n = 0;
    cJSON *row;

    if (!db_open(&d, SQL_POSTGRES))
        return;
    make_items(&d);
    t.table = qual(&d, "items");
    (void)snprintf(target, sizeof(target), "%s application_name=victim_%d",
                   getenv("CONCORD_TEST_PG"), (int)getpid());
    OK(sql_open(SQL_POSTGRES, target, &victim, &err));
    for (int round = 0; round < 2; round++) {
        OK(sql_count(victim, &t, &n, &err)); /* prepared in this session */
        /* pg_terminate_backend(pid, timeout) waits until the backend is gone. */
        db_exec(&d,
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                "WHERE application_name = 'victim_%d'",
                (int)getpid());
        if (round == 0) {
            FAILS(sql_count(victim, &t, &n, &err), ERROR_TRANSIENT, "");
        } else {
            /* Inside a transaction: the loss fails it; no silent reconnect mid-batch. */
            row = cJSON_Parse("{\"id\":\"z\"}");
            FAILS(sql_begin(victim, &err), ERROR_TRANSIENT, "");
            OK(sql_begin(victim, &err)); /* reconnected */
            OK(sql_upsert(victim, &t, row, NULL, &err));
            cJSON_Delete(row);
            db_exec(&d,
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                    "WHERE application_name = 'victim_%d'",
                    (int)getpid());
            FAILS(sql_commit(victim, &err), ERROR_TRANSIENT, "");
            sql_rollback(victim);
        }
        OK(sql_count(victim, &t, &n, &err)); /* the next call reconnects */
        CHECK_EQ(n, 0);
    }
    sql_close(victim);
    db_close(&d);
}

/* Upsert 20000 rows in transactions of 500, then read them all back; print rows/s. */
static void
bench(struct db *d, const char *label)
{
    const int total = 20000, batch = 500;
    struct sql_table t = {.table = qual(d, "items"), .key = "id", .updated_at = "ua"};
    struct sql_watermark wm = {0};
    struct error err = {0};
    int64_t start, read_count = 0;
    double upsert_s, read_s;
    char text[160];
    int n;

    db_exec(d, "DROP TABLE IF EXISTS %s.items", d->schema);
    make_items(d);
    start = clock_mono_ns();
    for (int i = 0; i < total; i += batch) {
        OK(sql_begin(d->c, &err));
        for (int j = i; j < i + batch; j++) {
            cJSON *row;

            (void)snprintf(text, sizeof(text),
                           "{\"id\":\"row%06d\",\"ua\":\"2026-11-26T10:%02d:%02d.%03dZ\","
                           "\"name\":\"name %d\"}",
                           j, j / 60000 % 60, j / 1000 % 60, j % 1000, j);
            row = cJSON_Parse(text);
            OK(sql_upsert(d->c, &t, row, NULL, &err));
            cJSON_Delete(row);
        }
        OK(sql_commit(d->c, &err));
    }
    upsert_s = (double)(clock_mono_ns() - start) / 1e9;
    start = clock_mono_ns();
    do {
        struct sql_watermark next = {0};
        cJSON *rows = NULL;

        n = sql_read_page(d->c, &t, &wm, 1, 1000, &rows, &next, &err);
        OK(n);
        read_count += n;
        cJSON_Delete(rows);
        sql_watermark_fini(&wm);
        wm = next;
    } while (n > 0);
    read_s = (double)(clock_mono_ns() - start) / 1e9;
    sql_watermark_fini(&wm);
    CHECK_EQ(read_count, total);
    printf("# %s: upsert %d rows (transactions of %d): %.0f rows/s; incremental read (pages "
           "of 1000): %.0f rows/s\n",
           label, total, batch, total / upsert_s, total / read_s);
}

static void
bench_body(struct db *d)
{
    bench(d, d->name);
    if (d->kind != SQL_SQLITE)
        return;
    /* Without an fsync per commit: what the code costs, not the disk. */
    db_exec(d, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
    bench(d, "sqlite (WAL, synchronous=NORMAL)");
}

static void
rows_per_second_are_printed(void)
{
    each_db(bench_body);
}

const struct check_case check_cases[] = {
    CHECK_CASE(incremental_reads_lose_nothing_on_shared_timestamps),
    CHECK_CASE(rows_committed_between_pages_are_seen),
    CHECK_CASE(full_read_pages_by_key),
    CHECK_CASE(upsert_inserts_updates_and_returns_the_key),
    CHECK_CASE(update_sets_only_the_named_columns),
    CHECK_CASE(types_map_to_json_and_back),
    CHECK_CASE(soft_and_real_deletes),
    CHECK_CASE(bad_columns_and_constraints_are_permanent_and_named),
    CHECK_CASE(a_rolled_back_transaction_leaves_nothing),
    CHECK_CASE(a_refused_row_is_named_by_its_index),
    CHECK_CASE(the_statement_cache_serves_1000_upserts),
    CHECK_CASE(identifiers_are_quoted_and_values_bound),
    CHECK_CASE(open_errors_are_classified),
    CHECK_CASE(sqlite_busy_is_transient),
    CHECK_CASE(a_killed_pg_connection_fails_transient_then_reconnects),
    CHECK_CASE(rows_per_second_are_printed),
    {0},
};
