/* SPDX-License-Identifier: MIT */

/* tests/unit/test_value.c — canonical field values (src/model/value.c). */
/* link: model config */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "core/error.h"
#include "model/value.h"

/* Coerce the JSON text in to type; return the canonical text of the result
 * (caller frees), or NULL with *err filled. */
static char *
coerce_text(enum config_type type, const char *in, struct error *err)
{
    cJSON *v = cJSON_Parse(in), *out = NULL;
    char *text = NULL;

    CHECK(v != NULL);
    if (value_coerce(type, v, &out, err) == 0) {
        /* Not cJSON_Print: it writes 9007199254740992 as 9.00719925474099e+15. */
        text = value_canonical_text(out);
        cJSON_Delete(out);
    } else {
        CHECK(out == NULL);
    }
    cJSON_Delete(v);
    return text;
}

/* Check that in coerces to want (both JSON texts). */
static void
expect(enum config_type type, const char *in, const char *want)
{
    struct error err = {0};
    char *got = coerce_text(type, in, &err);

    if (got == NULL)
        check_fail(__FILE__, __LINE__, "%s: unexpected error: %s", in, err.msg);
    if (strcmp(got, want) != 0)
        check_fail(__FILE__, __LINE__, "%s: got %s, want %s", in, got, want);
    free(got);
}

/* Check that in fails with ERROR_MAPPING and a message containing part. */
static void
expect_error(enum config_type type, const char *in, const char *part)
{
    struct error err = {0};
    char *got = coerce_text(type, in, &err);

    if (got != NULL)
        check_fail(__FILE__, __LINE__, "%s: got %s, want an error", in, got);
    CHECK_EQ(err.kind, ERROR_MAPPING);
    if (strstr(err.msg, part) == NULL)
        check_fail(__FILE__, __LINE__, "%s: message \"%s\" lacks \"%s\"", in, err.msg, part);
}

static void
decimals_are_exact_canonical_strings(void)
{
    expect(CONFIG_TYPE_DECIMAL, "\"12.50\"", "\"12.5\"");
    expect(CONFIG_TYPE_DECIMAL, "12.5", "\"12.5\"");
    expect(CONFIG_TYPE_DECIMAL, "1.25e1", "\"12.5\"");
    expect(CONFIG_TYPE_DECIMAL, "\" 12.5 \"", "\"12.5\"");
    expect(CONFIG_TYPE_DECIMAL, "\"012.500\"", "\"12.5\"");
    expect(CONFIG_TYPE_DECIMAL, "\"+7\"", "\"7\"");
    expect(CONFIG_TYPE_DECIMAL, "\"100\"", "\"100\"");
    expect(CONFIG_TYPE_DECIMAL, "\"100.000\"", "\"100\"");
    expect(CONFIG_TYPE_DECIMAL, "1e-7", "\"0.0000001\"");
    expect(CONFIG_TYPE_DECIMAL, "1e21", "\"1000000000000000000000\"");
    expect(CONFIG_TYPE_DECIMAL, "0.1", "\"0.1\"");
    /* A double that is not 0.3 keeps the text that reads back as itself. */
    expect(CONFIG_TYPE_DECIMAL, "0.30000000000000004", "\"0.30000000000000004\"");
    expect(CONFIG_TYPE_DECIMAL, "-0", "\"0\"");
    expect(CONFIG_TYPE_DECIMAL, "\"-0.00\"", "\"0\"");
    expect(CONFIG_TYPE_DECIMAL, "-3.10", "\"-3.1\"");
    /* Strings are read digit by digit: more digits than a double holds. */
    expect(CONFIG_TYPE_DECIMAL, "\"12345678901234567890.123456789\"",
           "\"12345678901234567890.123456789\"");
    expect(CONFIG_TYPE_DECIMAL, "\".5\"", "\"0.5\"");
    expect(CONFIG_TYPE_DECIMAL, "null", "null");

    expect_error(CONFIG_TYPE_DECIMAL, "\"abc\"", "\"abc\" is not a decimal");
    expect_error(CONFIG_TYPE_DECIMAL, "\"\"", "is not a decimal");
    expect_error(CONFIG_TYPE_DECIMAL, "\"1.2.3\"", "is not a decimal");
    expect_error(CONFIG_TYPE_DECIMAL, "\"NaN\"", "is not a decimal");
    expect_error(CONFIG_TYPE_DECIMAL, "\"Infinity\"", "is not a decimal");
    expect_error(CONFIG_TYPE_DECIMAL, "\"0x10\"", "is not a decimal");
    expect_error(CONFIG_TYPE_DECIMAL, "true", "is not a decimal");
    expect_error(CONFIG_TYPE_DECIMAL, "[1]", "is not a decimal");
}

static void
decimal_canonical_checks_its_buffer(void)
{
    char out[8];

    CHECK_EQ(value_decimal_canonical("012.500", out, sizeof(out)), 0);
    CHECK_STR_EQ(out, "12.5");
    CHECK_EQ(value_decimal_canonical("-0.0", out, sizeof(out)), 0);
    CHECK_STR_EQ(out, "0");
    CHECK_EQ(value_decimal_canonical("12345678", out, sizeof(out)), -1); /* 9 bytes with NUL */
    CHECK_EQ(value_decimal_canonical("1e", out, sizeof(out)), -1);
    CHECK_EQ(value_decimal_canonical("1e99999", out, sizeof(out)), -1);
}

static void
decimal_values_compare_equal_after_coercion(void)
{
    const char *inputs[] = {"\"12.50\"", "12.5", "1.25e1", "\"12.5\""};
    cJSON *first = NULL;
    struct error err = {0};

    for (size_t i = 0; i < ARRAY_COUNT(inputs); i++) {
        cJSON *in = cJSON_Parse(inputs[i]), *out = NULL;

        CHECK_EQ(value_coerce(CONFIG_TYPE_DECIMAL, in, &out, &err), 0);
        if (first == NULL)
            first = out;
        else {
            CHECK(value_equal(first, out));
            cJSON_Delete(out);
        }
        cJSON_Delete(in);
    }
    cJSON_Delete(first);
}

static void
integers_are_whole_and_exact(void)
{
    expect(CONFIG_TYPE_INTEGER, "42", "42");
    expect(CONFIG_TYPE_INTEGER, "42.0", "42");
    expect(CONFIG_TYPE_INTEGER, "\"42\"", "42");
    expect(CONFIG_TYPE_INTEGER, "\"12.0\"", "12");
    expect(CONFIG_TYPE_INTEGER, "\"-7\"", "-7");
    expect(CONFIG_TYPE_INTEGER, "-0", "0");
    expect(CONFIG_TYPE_INTEGER, "9007199254740992", "9007199254740992");
    expect(CONFIG_TYPE_INTEGER, "\"-9007199254740992\"", "-9007199254740992");
    expect(CONFIG_TYPE_INTEGER, "1e3", "1000");

    expect_error(CONFIG_TYPE_INTEGER, "\"12.5\"", "\"12.5\" is not an integer");
    expect_error(CONFIG_TYPE_INTEGER, "12.5", "12.5 is not an integer");
    expect_error(CONFIG_TYPE_INTEGER, "\"9007199254740993\"", "is not an integer");
    expect_error(CONFIG_TYPE_INTEGER, "1e300", "is not an integer");
    expect_error(CONFIG_TYPE_INTEGER, "\"abc\"", "is not an integer");
    expect_error(CONFIG_TYPE_INTEGER, "true", "is not an integer");
}

static void
booleans_accept_the_usual_spellings(void)
{
    expect(CONFIG_TYPE_BOOLEAN, "true", "true");
    expect(CONFIG_TYPE_BOOLEAN, "false", "false");
    expect(CONFIG_TYPE_BOOLEAN, "\"yes\"", "true");
    expect(CONFIG_TYPE_BOOLEAN, "\"No\"", "false");
    expect(CONFIG_TYPE_BOOLEAN, "\"TRUE\"", "true");
    expect(CONFIG_TYPE_BOOLEAN, "\"1\"", "true");
    expect(CONFIG_TYPE_BOOLEAN, "\"0\"", "false");
    expect(CONFIG_TYPE_BOOLEAN, "1", "true");
    expect(CONFIG_TYPE_BOOLEAN, "0", "false");
    expect_error(CONFIG_TYPE_BOOLEAN, "2", "2 is not a boolean");
    expect_error(CONFIG_TYPE_BOOLEAN, "\"maybe\"", "is not a boolean");
}

static void
timestamps_become_utc(void)
{
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T05:41:52Z\"", "\"2026-11-26T05:41:52Z\"");
    /* +02:00 is two hours ahead of UTC: the same instant is 2 hours earlier. */
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T07:41:52+02:00\"", "\"2026-11-26T05:41:52Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T00:30:00-05:30\"", "\"2026-11-26T06:00:00Z\"");
    /* An offset can move the date, and the year. */
    expect(CONFIG_TYPE_TIMESTAMP, "\"2027-01-01T01:00:00+02:00\"", "\"2026-12-31T23:00:00Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T05:41:52.123Z\"", "\"2026-11-26T05:41:52.123Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T05:41:52.5Z\"", "\"2026-11-26T05:41:52.500Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T05:41:52.000Z\"", "\"2026-11-26T05:41:52Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T05:41:52.123456+01:00\"",
           "\"2026-11-26T04:41:52.123Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26 05:41:52\"", "\"2026-11-26T05:41:52Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26\"", "\"2026-11-26T00:00:00Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "0", "\"1970-01-01T00:00:00Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "1795671712", "\"2026-11-26T05:41:52Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "1795671712.25", "\"2026-11-26T05:41:52.250Z\"");
    expect(CONFIG_TYPE_TIMESTAMP, "\"2024-02-29T12:00:00Z\"", "\"2024-02-29T12:00:00Z\"");

    expect_error(CONFIG_TYPE_TIMESTAMP, "\"yesterday\"", "\"yesterday\" is not a timestamp");
    expect_error(CONFIG_TYPE_TIMESTAMP, "\"2026-02-30T00:00:00Z\"", "is not a timestamp");
    expect_error(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T24:00:00Z\"", "is not a timestamp");
    expect_error(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T05:41:52+02:\"", "is not a timestamp");
    expect_error(CONFIG_TYPE_TIMESTAMP, "\"2026-11-26T05:41:52Zjunk\"", "is not a timestamp");
    expect_error(CONFIG_TYPE_TIMESTAMP, "1e300", "is not a timestamp");
    expect_error(CONFIG_TYPE_TIMESTAMP, "true", "is not a timestamp");
}

static void
dates_are_validated(void)
{
    expect(CONFIG_TYPE_DATE, "\"2026-11-26\"", "\"2026-11-26\"");
    expect(CONFIG_TYPE_DATE, "\"2024-02-29\"", "\"2024-02-29\"");
    /* The date part as written, not moved to UTC. */
    expect(CONFIG_TYPE_DATE, "\"2026-11-26T23:30:00-05:00\"", "\"2026-11-26\"");
    expect_error(CONFIG_TYPE_DATE, "\"2026-02-30\"", "\"2026-02-30\" is not a date");
    expect_error(CONFIG_TYPE_DATE, "\"2025-02-29\"", "is not a date");
    expect_error(CONFIG_TYPE_DATE, "\"2026-13-01\"", "is not a date");
    expect_error(CONFIG_TYPE_DATE, "\"26-11-2026\"", "is not a date");
    expect_error(CONFIG_TYPE_DATE, "20261126", "is not a date");
}

static void
strings_and_refs_take_scalars(void)
{
    expect(CONFIG_TYPE_STRING, "\"a b\"", "\"a b\"");
    expect(CONFIG_TYPE_STRING, "42", "\"42\"");
    expect(CONFIG_TYPE_STRING, "12.5", "\"12.5\"");
    expect(CONFIG_TYPE_STRING, "true", "\"true\"");
    expect(CONFIG_TYPE_STRING, "null", "null");
    expect_error(CONFIG_TYPE_STRING, "{\"a\":1}", "{\"a\":1} is not a string");
    expect_error(CONFIG_TYPE_STRING, "[1,2]", "is not a string");

    expect(CONFIG_TYPE_REF, "\"cus_123\"", "\"cus_123\"");
    expect(CONFIG_TYPE_REF, "812", "\"812\"");
    expect_error(CONFIG_TYPE_REF, "8.5", "is not a reference id");
    expect_error(CONFIG_TYPE_REF, "{}", "is not a reference id");
}

static void
quoted_values_are_cut_to_64_bytes(void)
{
    char in[300], *got;
    struct error err = {0};
    const char *q;

    memset(in, 'x', sizeof(in));
    in[0] = '"';
    in[sizeof(in) - 2] = '"';
    in[sizeof(in) - 1] = '\0';
    got = coerce_text(CONFIG_TYPE_DECIMAL, in, &err);
    CHECK(got == NULL);
    q = strstr(err.msg, " is not a decimal");
    CHECK(q != NULL);
    CHECK_EQ(q - err.msg, 64);
    CHECK(strncmp(q - 3, "...", 3) == 0);
}

static int
equal_texts(const char *a, const char *b)
{
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    char *tx, *ty;
    int eq;

    CHECK(x != NULL && y != NULL);
    eq = value_equal(x, y);
    /* The contract: equal exactly when the canonical texts are. */
    tx = value_canonical_text(x);
    ty = value_canonical_text(y);
    CHECK_EQ(eq, strcmp(tx, ty) == 0);
    free(tx);
    free(ty);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

static void
equality_ignores_key_order_and_number_spelling(void)
{
    CHECK(equal_texts("{\"a\":1,\"b\":[1,2]}", "{\"b\":[1,2],\"a\":1}"));
    CHECK(equal_texts("1", "1.0"));
    CHECK(equal_texts("{\"n\":1e2}", "{\"n\":100}"));
    CHECK(!equal_texts("[1,2]", "[2,1]"));
    CHECK(!equal_texts("{\"a\":1}", "{\"a\":1,\"b\":2}"));
    CHECK(!equal_texts("1", "\"1\""));
    CHECK(!equal_texts("null", "false"));
    CHECK(!equal_texts("{\"a\":null}", "{}"));
    /* JSON text may repeat a key: a value still equals itself. */
    CHECK(equal_texts("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}"));
    CHECK(!equal_texts("{\"a\":1,\"a\":2}", "{\"a\":2,\"a\":1}"));
    CHECK(value_equal(NULL, NULL));
    {
        cJSON *n = cJSON_CreateNull();

        CHECK(!value_equal(n, NULL));
        cJSON_Delete(n);
    }
}

static void
raw_numbers_compare_by_decimal_value(void)
{
    cJSON *raw = cJSON_CreateRaw("12.50"), *num = cJSON_CreateNumber(12.5);
    cJSON *str = cJSON_CreateString("12.5");
    char *t;

    CHECK(value_equal(raw, num));
    CHECK(!value_equal(raw, str)); /* a string is not a number */
    t = value_canonical_text(raw);
    CHECK_STR_EQ(t, "12.5");
    free(t);
    cJSON_Delete(raw);
    cJSON_Delete(num);
    cJSON_Delete(str);
}

static void
canonical_text_sorts_keys(void)
{
    cJSON *v = cJSON_Parse("{\"b\":{\"y\":1,\"x\":\"q\\\"\\n\"},\"a\":[true,null,1.50]}");
    char *t = value_canonical_text(v);

    CHECK_STR_EQ(t, "{\"a\":[true,null,1.5],\"b\":{\"x\":\"q\\\"\\n\",\"y\":1}}");
    free(t);
    cJSON_Delete(v);
}

/* Many keys (sorted another way), repeated keys (kept in their order) and
 * integers at the edges of the short path. */
static void
canonical_text_sorts_many_keys_and_prints_integers(void)
{
    cJSON *v = cJSON_CreateObject();
    char key[16], want[1024], *t;
    size_t at = 0;

    for (int i = 19; i >= 0; i--) {
        (void)snprintf(key, sizeof(key), "k%02d", i);
        cJSON_AddNumberToObject(v, key, i % 2 ? -i * 1000003.0 : i);
    }
    for (int i = 0; i < 20; i++)
        at += (size_t)snprintf(want + at, sizeof(want) - at, "%s\"k%02d\":%lld", i ? "," : "{", i,
                               i % 2 ? -i * 1000003LL : (long long)i);
    (void)snprintf(want + at, sizeof(want) - at, "}");
    t = value_canonical_text(v);
    CHECK_STR_EQ(t, want);
    free(t);
    cJSON_Delete(v);
    v = cJSON_Parse("{\"b\":2,\"a\":1,\"b\":1,\"n\":[-0.0,999999999999999,-999999999999999,"
                    "1000000000000000,0.5,-7]}");
    t = value_canonical_text(v);
    CHECK_STR_EQ(t, "{\"a\":1,\"b\":2,\"b\":1,\"n\":[0,999999999999999,-999999999999999,"
                    "1000000000000000,0.5,-7]}");
    free(t);
    cJSON_Delete(v);
}

/* The escape of byte c as JSON (the reference the printer must match). */
static size_t
escape_byte(int c, char *out)
{
    const char *sh = c == '"'    ? "\\\""
                     : c == '\\' ? "\\\\"
                     : c == '\b' ? "\\b"
                     : c == '\f' ? "\\f"
                     : c == '\n' ? "\\n"
                     : c == '\r' ? "\\r"
                     : c == '\t' ? "\\t"
                                 : NULL;

    if (sh != NULL)
        return (size_t)snprintf(out, 8, "%s", sh);
    if (c < 0x20)
        return (size_t)snprintf(out, 8, "\\u%04x", c);
    out[0] = (char)c;
    return 1;
}

/* Every byte of a string as JSON writes it: '"', '\\' and the control
 * characters escaped (the short forms where JSON has one), the rest as it
 * is; in keys too, and in a string long enough to make the text grow. */
static void
canonical_text_escapes_every_control_character(void)
{
    char in[300], want[2400], *t;
    size_t n = 0, at = 0;
    cJSON *v = cJSON_CreateObject();

    for (int c = 1; c < 256; c++)
        in[n++] = (char)c;
    in[n] = '\0';
    at += (size_t)snprintf(want + at, sizeof(want) - at, "{\"k\\n\":\"");
    for (int c = 1; c < 256; c++)
        at += escape_byte(c, want + at);
    (void)snprintf(want + at, sizeof(want) - at, "\"}");
    cJSON_AddStringToObject(v, "k\n", in);
    t = value_canonical_text(v);
    CHECK_STR_EQ(t, want);
    free(t);
    cJSON_Delete(v);
}

/* The printer copies eight plain bytes at a time: a byte to escape at
 * any place of a run of eight, and runs of any length, print as one at a
 * time would. Seeded: replay with CONCORD_TEST_SEED. */
static void
canonical_text_escapes_at_every_place_in_a_run(void)
{
    static const unsigned char pool[] = {'a',  'Z',  '0',  ' ',  '~',  '"',  '\\', 0x01,
                                         '\n', 0x1f, 0x7f, 0xc3, 0xa9, 0x80, 0xff, '\t'};
    uint64_t x = check_seed() | 1;

    for (int round = 0; round < 3000; round++) {
        char in[64], want[64 * 6 + 3], *t;
        size_t n, at = 0;
        cJSON *v;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        n = (size_t)(x % 41);
        want[at++] = '"';
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* mostly plain, so that whole runs of eight occur */
            in[i] = (char)(x % 4 != 0 ? pool[x % 5] : pool[(x >> 8) % sizeof(pool)]);
            at += escape_byte((unsigned char)in[i], want + at);
        }
        in[n] = '\0';
        want[at++] = '"';
        want[at] = '\0';
        v = cJSON_CreateString(in);
        t = value_canonical_text(v);
        CHECK_STR_EQ(t, want);
        free(t);
        cJSON_Delete(v);
    }
}

/* The field times' text is the canonical text of the object it stands for. */
static void
canonical_times_are_the_objects_text(void)
{
    static const char *const fields[] = {
        "{}",
        "{\"b\":1,\"a\":\"x\",\"b\":2}",
        "{\"q\\\"\\n\":null,\"\u00e9\":true}",
        "{\"k19\":1,\"k18\":1,\"k17\":1,\"k16\":1,\"k15\":1,\"k14\":1,\"k13\":1,"
        "\"k12\":1,\"k11\":1,\"k10\":1,\"k09\":1,\"k08\":1,\"k07\":1,\"k06\":1,"
        "\"k05\":1,\"k04\":1,\"k03\":1,\"k02\":1,\"k01\":1,\"k00\":1,\"k01\":2}",
    };
    static const double ats[] = {0, 1764000000123.0, -5, 1e15, 12345678901234567.0, 0.25};
    static const char *const sources[] = {"crm.people", "a\"b\\c\x01", NULL};

    for (size_t f = 0; f < sizeof(fields) / sizeof(*fields); f++) {
        for (size_t a = 0; a < sizeof(ats) / sizeof(*ats); a++) {
            for (size_t k = 0; k < sizeof(sources) / sizeof(*sources); k++) {
                cJSON *in = cJSON_Parse(fields[f]), *meta = cJSON_CreateObject();
                const cJSON *x;
                char *want, *got;

                cJSON_ArrayForEach(x, in)
                {
                    cJSON *when = cJSON_CreateArray();

                    cJSON_AddItemToArray(when, cJSON_CreateNumber(ats[a]));
                    if (sources[k] != NULL)
                        cJSON_AddItemToArray(when, cJSON_CreateString(sources[k]));
                    cJSON_AddItemToObject(meta, x->string, when);
                }
                want = value_canonical_text(meta);
                got = value_canonical_times(in, ats[a], sources[k]);
                CHECK_STR_EQ(got, want);
                free(want);
                free(got);
                cJSON_Delete(meta);
                cJSON_Delete(in);
            }
        }
    }
}

/* A list of members prints as the object that holds them would. */
static void
canonical_members_are_the_objects_text(void)
{
    cJSON *v = cJSON_Parse("{\"b\":{\"y\":1,\"x\":2},\"a\":[1],\"b\":\"z\",\"c\":null}");
    const cJSON *list[8];
    size_t n = 0;
    char *want = value_canonical_text(v), *got;

    for (const cJSON *x = v->child; x != NULL; x = x->next)
        list[n++] = x;
    got = value_canonical_members(list, n);
    CHECK_STR_EQ(got, want);
    free(got);
    got = value_canonical_members(list, 0);
    CHECK_STR_EQ(got, "{}");
    free(got);
    free(want);
    cJSON_Delete(v);
}

/* A value reads back from its canonical text unless it holds an exact
 * decimal (raw) or a number JSON cannot write. */
static void
values_read_back_but_raw_and_non_finite_numbers(void)
{
    cJSON *v = cJSON_Parse("{\"a\":[1,2.5,\"x\",null,true,{\"b\":-0.0}]}");

    CHECK_EQ(value_reads_back(v), 1);
    cJSON_AddItemToArray(cJSON_GetObjectItem(v, "a"), cJSON_CreateRaw("12.50"));
    CHECK_EQ(value_reads_back(v), 0);
    cJSON_Delete(v);
    v = cJSON_CreateObject();
    cJSON_AddItemToObject(v, "n", cJSON_CreateNumber(HUGE_VAL));
    CHECK_EQ(value_reads_back(v), 0);
    cJSON_Delete(v);
    CHECK_EQ(value_reads_back(NULL), 1);
}

static void
paths_walk_objects_and_arrays(void)
{
    cJSON *v = cJSON_Parse("{\"customer\":{\"email\":\"a@b\"},\"items\":[{\"id\":7}],\"0\":\"z\"}");

    CHECK_STR_EQ(value_path_get(v, "customer.email")->valuestring, "a@b");
    CHECK_STR_EQ(value_path_get(v, ".customer.email")->valuestring, "a@b");
    CHECK_EQ(value_path_get(v, "items.0.id")->valueint, 7);
    CHECK_STR_EQ(value_path_get(v, "0")->valuestring, "z");
    CHECK(value_path_get(v, "") == v);
    CHECK(value_path_get(v, ".") == v);
    CHECK(value_path_get(v, "items.1.id") == NULL);
    CHECK(value_path_get(v, "items.x") == NULL);
    CHECK(value_path_get(v, "customer..email") == NULL);
    CHECK(value_path_get(v, "customer.email.more") == NULL);
    CHECK(value_path_get(v, "cust") == NULL);
    CHECK(value_path_get(NULL, "a") == NULL);
    cJSON_Delete(v);
    /* -1 is an array's last element (Stripe pages after the last id). */
    v = cJSON_Parse("{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"none\":[]}");
    CHECK_STR_EQ(value_path_get(v, "data.-1.id")->valuestring, "b");
    CHECK(value_path_get(v, "none.-1") == NULL);
    CHECK(value_path_get(v, "data.-2") == NULL);
    cJSON_Delete(v);
}

const struct check_case check_cases[] = {
    CHECK_CASE(decimals_are_exact_canonical_strings),
    CHECK_CASE(decimal_canonical_checks_its_buffer),
    CHECK_CASE(decimal_values_compare_equal_after_coercion),
    CHECK_CASE(integers_are_whole_and_exact),
    CHECK_CASE(booleans_accept_the_usual_spellings),
    CHECK_CASE(timestamps_become_utc),
    CHECK_CASE(dates_are_validated),
    CHECK_CASE(strings_and_refs_take_scalars),
    CHECK_CASE(quoted_values_are_cut_to_64_bytes),
    CHECK_CASE(equality_ignores_key_order_and_number_spelling),
    CHECK_CASE(raw_numbers_compare_by_decimal_value),
    CHECK_CASE(canonical_text_sorts_keys),
    CHECK_CASE(canonical_text_sorts_many_keys_and_prints_integers),
    CHECK_CASE(canonical_text_escapes_every_control_character),
    CHECK_CASE(canonical_text_escapes_at_every_place_in_a_run),
    CHECK_CASE(canonical_times_are_the_objects_text),
    CHECK_CASE(canonical_members_are_the_objects_text),
    CHECK_CASE(values_read_back_but_raw_and_non_finite_numbers),
    CHECK_CASE(paths_walk_objects_and_arrays),
    {0},
};
