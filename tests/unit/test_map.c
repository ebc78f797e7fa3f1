/* SPDX-License-Identifier: MIT */

/* tests/unit/test_map.c — field maps and the jq wrapper (src/map/). */
/* link: map model config */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "core/error.h"
#include "map/map.h"
#include "model/value.h"

static struct config_field customer_fields[] = {
    {.name = "name", .type = CONFIG_TYPE_STRING},
    {.name = "email", .type = CONFIG_TYPE_STRING},
    {.name = "city", .type = CONFIG_TYPE_STRING},
    {.name = "balance", .type = CONFIG_TYPE_DECIMAL},
    {.name = "visits", .type = CONFIG_TYPE_INTEGER},
    {.name = "active", .type = CONFIG_TYPE_BOOLEAN},
    {.name = "status", .type = CONFIG_TYPE_STRING},
    {.name = "source", .type = CONFIG_TYPE_STRING},
    {.name = "since", .type = CONFIG_TYPE_DATE},
    {.name = "seen_at", .type = CONFIG_TYPE_TIMESTAMP},
};

static const struct config_model customer = {
    .name = "customer",
    .fields = customer_fields,
    .field_count = ARRAY_COUNT(customer_fields),
};

/* Map entries are built by hand, as the YAML loader would fill them. The
 * cJSON members are owned by the entry; free_entries() releases them. */
static struct config_map_entry
path_entry(const char *target, const char *path)
{
    return (struct config_map_entry){.target = (char *)(uintptr_t)target,
                                     .source = CONFIG_MAP_PATH,
                                     .path = (char *)(uintptr_t)path};
}

static struct config_map_entry
jq_entry(const char *target, const char *program)
{
    return (struct config_map_entry){.target = (char *)(uintptr_t)target,
                                     .source = CONFIG_MAP_JQ,
                                     .jq = (char *)(uintptr_t)program};
}

static struct config_map_entry
const_entry(const char *target, const char *json)
{
    return (struct config_map_entry){.target = (char *)(uintptr_t)target,
                                     .source = CONFIG_MAP_CONST,
                                     .const_value = cJSON_Parse(json)};
}

static void
free_entries(struct config_map_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(e[i].const_value);
        cJSON_Delete(e[i].default_value);
        cJSON_Delete(e[i].values);
        cJSON_Delete(e[i].values_default);
    }
}

/* Compile entries, apply them to the JSON text in, and return the compact
 * printed result (caller frees), or NULL with err filled. */
static char *
run_map(struct config_map_entry *entries, size_t n, enum map_direction dir, const char *in,
        struct error *err)
{
    struct config_map spec = {entries, n};
    struct map *m = NULL;
    cJSON *input = cJSON_Parse(in), *out = NULL;
    char *text = NULL;

    CHECK(input != NULL);
    if (map_new(&spec, &customer, dir, &m, err) != 0)
        CHECK_STR_EQ(err->msg, "(map_new must succeed)");
    if (map_apply(m, input, &out, err) == 0) {
        text = cJSON_PrintUnformatted(out);
        cJSON_Delete(out);
    } else {
        CHECK(out == NULL);
    }
    cJSON_Delete(input);
    map_free(m);
    return text;
}

static void
path_copies_fields_and_nested_paths(void)
{
    struct config_map_entry e[] = {
        path_entry("email", "email"),
        path_entry("city", ".billing.address.city"),
        path_entry("name", "names.0"),
    };
    struct error err = {0};
    char *out = run_map(e, ARRAY_COUNT(e), MAP_IN,
                        "{\"email\":\"a@b.ro\",\"billing\":{\"address\":{\"city\":\"Cluj\"}},"
                        "\"names\":[\"Ana\",\"Ioana\"],\"extra\":1}",
                        &err);

    CHECK_STR_EQ(out, "{\"email\":\"a@b.ro\",\"city\":\"Cluj\",\"name\":\"Ana\"}");
    free(out);
}

static void
map_in_coerces_to_the_field_type(void)
{
    struct config_map_entry e[] = {
        path_entry("balance", "balance"),
        path_entry("visits", "visits"),
        path_entry("active", "active"),
        path_entry("since", "created"),
    };
    struct error err = {0};
    char *out = run_map(
        e, ARRAY_COUNT(e), MAP_IN,
        "{\"balance\":12.50,\"visits\":\"3\",\"active\":\"yes\",\"created\":\"2026-11-26T10:00:00Z\"}",
        &err);

    CHECK_STR_EQ(out,
                 "{\"balance\":\"12.5\",\"visits\":3,\"active\":true,\"since\":\"2026-11-26\"}");
    free(out);
}

static void
missing_source_leaves_the_field_out_and_null_stays(void)
{
    struct config_map_entry e[] = {
        path_entry("email", "email"),
        path_entry("city", "address.city"),
        path_entry("name", "name"),
    };
    struct error err = {0};
    char *out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"email\":null,\"address\":{}}", &err);

    CHECK_STR_EQ(out, "{\"email\":null}");
    free(out);
    out = run_map(e, ARRAY_COUNT(e), MAP_OUT, "{\"name\":\"Ana\"}", &err);
    CHECK_STR_EQ(out, "{\"name\":\"Ana\"}");
    free(out);
}

static void
constants_and_defaults(void)
{
    struct config_map_entry e[] = {
        const_entry("source", "\"stripe\""),
        path_entry("status", "status"),
        path_entry("city", "city"),
    };
    struct error err = {0};
    char *out;

    e[1].default_value = cJSON_CreateString("new");
    e[2].default_value = cJSON_CreateString("unknown");
    out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"city\":null}", &err);
    CHECK_STR_EQ(out, "{\"source\":\"stripe\",\"status\":\"new\",\"city\":\"unknown\"}");
    free(out);
    out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"city\":\"Iasi\",\"status\":\"vip\"}", &err);
    CHECK_STR_EQ(out, "{\"source\":\"stripe\",\"status\":\"vip\",\"city\":\"Iasi\"}");
    free(out);
    free_entries(e, ARRAY_COUNT(e));
}

static void
value_maps_translate_and_else_catches_the_rest(void)
{
    struct config_map_entry e[] = {
        path_entry("status", "state"),
        path_entry("active", "flag"),
    };
    struct error err = {0};
    char *out;

    e[0].values = cJSON_Parse("{\"A\":\"active\",\"L\":\"lapsed\",\"1\":\"one\",\"true\":\"yes\"}");
    e[1].values = cJSON_Parse("{\"Y\":true,\"N\":false}");
    out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"state\":\"L\",\"flag\":\"Y\"}", &err);
    CHECK_STR_EQ(out, "{\"status\":\"lapsed\",\"active\":true}");
    free(out);
    /* Numbers and booleans are looked up by their text. */
    out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"state\":1.0}", &err);
    CHECK_STR_EQ(out, "{\"status\":\"one\"}");
    free(out);
    out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"state\":true}", &err);
    CHECK_STR_EQ(out, "{\"status\":\"yes\"}");
    free(out);
    /* A miss keeps the value... */
    out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"state\":\"Z\"}", &err);
    CHECK_STR_EQ(out, "{\"status\":\"Z\"}");
    free(out);
    /* ...unless there is an else. */
    e[0].values_default = cJSON_CreateString("other");
    out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"state\":\"Z\"}", &err);
    CHECK_STR_EQ(out, "{\"status\":\"other\"}");
    free(out);
    free_entries(e, ARRAY_COUNT(e));
}

static void
jq_computes_values_from_the_whole_record(void)
{
    struct config_map_entry e[] = {
        jq_entry("name", "[.first, .last] | join(\" \")"),
        jq_entry("visits", ".orders | length"),
        jq_entry("city", ".nothing | empty"),
    };
    struct error err = {0};
    char *out = run_map(e, ARRAY_COUNT(e), MAP_IN,
                        "{\"first\":\"Ana\",\"last\":\"Pop\",\"orders\":[1,2,3]}", &err);

    /* A program with no output gives null. */
    CHECK_STR_EQ(out, "{\"name\":\"Ana Pop\",\"visits\":3,\"city\":null}");
    free(out);
}

static void
errors_name_the_field(void)
{
    struct config_map_entry e[] = {
        path_entry("email", "email"),
        path_entry("balance", "balance"),
    };
    struct error err = {0};
    char *out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"email\":\"x\",\"balance\":\"abc\"}", &err);

    CHECK(out == NULL);
    CHECK_EQ(err.kind, ERROR_MAPPING);
    CHECK_STR_EQ(err.msg, "field \"balance\": \"abc\" is not a decimal");
}

static void
jq_runtime_errors_are_mapping_errors(void)
{
    struct config_map_entry e[] = {jq_entry("visits", ".orders + 1")};
    struct error err = {0};
    char *out = run_map(e, ARRAY_COUNT(e), MAP_IN, "{\"orders\":\"many\"}", &err);

    CHECK(out == NULL);
    CHECK_EQ(err.kind, ERROR_MAPPING);
    CHECK(strncmp(err.msg, "field \"visits\": jq: ", 20) == 0);
    CHECK(strstr(err.msg, "cannot be added") != NULL);

    {
        struct map_jq *q = NULL;
        cJSON *in = cJSON_Parse("{}"), *v = NULL;

        error_clear(&err);
        CHECK_EQ(map_jq_new("error(\"no customer id\")", &q, &err), 0);
        CHECK_EQ(map_jq_eval(q, in, &v, &err), -1);
        CHECK_EQ(err.kind, ERROR_MAPPING);
        CHECK_STR_EQ(err.msg, "jq: no customer id");
        map_jq_free(q);
        cJSON_Delete(in);
    }
}

static void
map_new_rejects_bad_entries(void)
{
    struct config_map_entry unknown[] = {path_entry("phone", "phone")};
    struct config_map_entry bad_jq[] = {jq_entry("name", ".first |||")};
    struct config_map_entry nested[] = {path_entry("a", "name"), path_entry("a.b", "city")};
    struct config_map spec;
    struct map *m = NULL;
    struct error err = {0};

    spec = (struct config_map){unknown, 1};
    CHECK_EQ(map_new(&spec, &customer, MAP_IN, &m, &err), -1);
    CHECK_EQ(err.kind, ERROR_INVALID);
    CHECK(strstr(err.msg, "\"phone\"") != NULL);
    CHECK(m == NULL);

    error_clear(&err);
    spec = (struct config_map){bad_jq, 1};
    CHECK_EQ(map_new(&spec, &customer, MAP_IN, &m, &err), -1);
    CHECK_EQ(err.kind, ERROR_INVALID);
    CHECK(strstr(err.msg, "syntax error") != NULL);

    error_clear(&err);
    spec = (struct config_map){nested, 2};
    CHECK_EQ(map_new(&spec, &customer, MAP_OUT, &m, &err), -1);
    CHECK_EQ(err.kind, ERROR_INVALID);
}

static void
map_out_nests_targets_and_writes_exact_decimals(void)
{
    struct config_map_entry e[] = {
        path_entry("contact.email", "email"), path_entry("contact.address.city", "city"),
        path_entry("balance", "balance"),     path_entry("visits", "visits"),
        const_entry("kind", "\"person\""),
    };
    struct error err = {0};
    char *out = run_map(
        e, ARRAY_COUNT(e), MAP_OUT,
        "{\"email\":\"a@b.ro\",\"city\":\"Cluj\",\"balance\":\"12345678901234567.10\",\"visits\":3}",
        &err);

    /* The decimal is a JSON number with every digit, not a rounded double. */
    CHECK_STR_EQ(out, "{\"contact\":{\"email\":\"a@b.ro\",\"address\":{\"city\":\"Cluj\"}},"
                      "\"balance\":12345678901234567.1,\"visits\":3,\"kind\":\"person\"}");
    free(out);
    out = run_map(e, ARRAY_COUNT(e), MAP_OUT, "{\"balance\":\"0.30000000000000004\"}", &err);
    CHECK_STR_EQ(out, "{\"balance\":0.30000000000000004,\"kind\":\"person\"}");
    free(out);
    free_entries(e, ARRAY_COUNT(e));
}

static void
map_out_differs_only_on_written_fields(void)
{
    struct config_map_entry e[] = {
        path_entry("contact.email", "email"),
        path_entry("balance", "balance"),
        path_entry("name", "name"),
    };
    struct config_map spec = {e, ARRAY_COUNT(e)};
    struct map *m = NULL;
    struct error err = {0};
    cJSON *model = cJSON_Parse("{\"email\":\"a@b.ro\",\"balance\":\"12.50\"}");
    cJSON *desired = NULL, *base;

    CHECK_EQ(map_new(&spec, &customer, MAP_OUT, &m, &err), 0);
    CHECK_EQ(map_apply(m, model, &desired, &err), 0);

    /* The system's own fields and a field the map did not write ("name",
     * missing from the model) never count. */
    base = cJSON_Parse("{\"id\":7,\"name\":\"Old\",\"contact\":{\"email\":\"a@b.ro\",\"x\":1},"
                       "\"balance\":12.5}");
    CHECK_EQ(map_out_differs(m, desired, base), 0);
    cJSON_Delete(base);

    /* A number echoed back as a string is the same amount. */
    base = cJSON_Parse("{\"contact\":{\"email\":\"a@b.ro\"},\"balance\":\"12.5\"}");
    CHECK_EQ(map_out_differs(m, desired, base), 0);
    cJSON_Delete(base);

    base = cJSON_Parse("{\"contact\":{\"email\":\"a@b.ro\"},\"balance\":12.51}");
    CHECK_EQ(map_out_differs(m, desired, base), 1);
    cJSON_Delete(base);

    /* Present in desired, missing in base: a difference. */
    base = cJSON_Parse("{\"balance\":12.5}");
    CHECK_EQ(map_out_differs(m, desired, base), 1);
    cJSON_Delete(base);
    CHECK_EQ(map_out_differs(m, desired, NULL), 1);

    cJSON_Delete(desired);
    cJSON_Delete(model);
    map_free(m);
}

/* A system that keeps a value in its own form (a timestamp in its zone, a
 * boolean or a count as text) holds what concord wrote: no write is due,
 * or every reconcile and every change of another field would write again. */
static void
map_out_same_value_in_the_system_s_form(void)
{
    struct config_map_entry e[] = {
        path_entry("seen", "seen_at"),
        path_entry("active", "active"),
        path_entry("visits", "visits"),
        path_entry("since", "since"),
    };
    struct config_map spec = {e, ARRAY_COUNT(e)};
    struct map *m = NULL;
    struct error err = {0};
    cJSON *model = cJSON_Parse("{\"seen_at\":\"2026-01-01T10:00:00Z\",\"active\":true,"
                               "\"visits\":3,\"since\":\"2026-01-01\"}");
    cJSON *desired = NULL, *base;

    CHECK_EQ(map_new(&spec, &customer, MAP_OUT, &m, &err), 0);
    CHECK_EQ(map_apply(m, model, &desired, &err), 0);
    base = cJSON_Parse("{\"seen\":\"2026-01-01T12:00:00.000+02:00\",\"active\":\"true\","
                       "\"visits\":\"3\",\"since\":\"2026-01-01\"}");
    CHECK_EQ(map_out_differs(m, desired, base), 0);
    cJSON_Delete(base);
    /* Another instant, or another truth, still differs. */
    base = cJSON_Parse("{\"seen\":\"2026-01-01T10:00:00+02:00\",\"active\":true,"
                       "\"visits\":3,\"since\":\"2026-01-01\"}");
    CHECK_EQ(map_out_differs(m, desired, base), 1);
    cJSON_Delete(base);
    base = cJSON_Parse("{\"seen\":\"2026-01-01T10:00:00Z\",\"active\":\"false\","
                       "\"visits\":3,\"since\":\"2026-01-01\"}");
    CHECK_EQ(map_out_differs(m, desired, base), 1);
    cJSON_Delete(base);

    cJSON_Delete(desired);
    cJSON_Delete(model);
    map_free(m);
    free_entries(e, ARRAY_COUNT(e));
}

static void
jq_conditions_route_records(void)
{
    struct map_jq *q = NULL;
    struct error err = {0};
    cJSON *a = cJSON_Parse("{\"type\":\"customer.updated\",\"data\":{}}");
    cJSON *b = cJSON_Parse("{\"type\":\"invoice.paid\"}");

    CHECK_EQ(map_jq_new(".type | startswith(\"customer.\")", &q, &err), 0);
    CHECK_EQ(map_jq_test(q, a, &err), 1);
    CHECK_EQ(map_jq_test(q, b, &err), 0);
    map_jq_free(q);

    /* null, false and no output are not truthy; 0 and "" are. */
    CHECK_EQ(map_jq_new(".data", &q, &err), 0);
    CHECK_EQ(map_jq_test(q, a, &err), 1);
    CHECK_EQ(map_jq_test(q, b, &err), 0);
    map_jq_free(q);
    CHECK_EQ(map_jq_new("empty", &q, &err), 0);
    CHECK_EQ(map_jq_test(q, a, &err), 0);
    map_jq_free(q);
    CHECK_EQ(map_jq_new("0", &q, &err), 0);
    CHECK_EQ(map_jq_test(q, a, &err), 1);
    map_jq_free(q);

    CHECK_EQ(map_jq_new(".type | ascii_downcase | test(1)", &q, &err), 0);
    CHECK_EQ(map_jq_test(q, a, &err), -1);
    CHECK_EQ(err.kind, ERROR_MAPPING);
    map_jq_free(q);

    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void
jq_values_cross_over_intact(void)
{
    struct map_jq *q = NULL;
    struct error err = {0};
    cJSON *in = cJSON_Parse("{\"s\":\"\\u0103\\n\",\"n\":[1.5,-2,true,null,{\"k\":{}}]}");
    cJSON *out = NULL;
    char *t;

    CHECK_EQ(map_jq_new(".", &q, &err), 0);
    CHECK_EQ(map_jq_eval(q, in, &out, &err), 0);
    CHECK(value_equal(in, out));
    cJSON_Delete(out);
    map_jq_free(q);

    CHECK_EQ(map_jq_new("{b: .n[0], a: (.s | length)}, 2", &q, &err), 0);
    CHECK_EQ(map_jq_eval(q, in, &out, &err), 0);
    t = value_canonical_text(out);
    CHECK_STR_EQ(t, "{\"a\":2,\"b\":1.5}"); /* the first output only */
    free(t);
    cJSON_Delete(out);
    /* The state is reused for the next record. */
    CHECK_EQ(map_jq_eval(q, in, &out, &err), 0);
    cJSON_Delete(out);
    map_jq_free(q);
    cJSON_Delete(in);
}

/*
 * `.a.b == "text"` is tested natively (map_jq.c, fast_test); the same
 * condition in parentheses goes through jq. Both must answer alike on
 * every shape of input, errors included.
 */
static void
jq_native_equality_answers_as_jq(void)
{
    static const char *const programs[][2] = {
        {".event == \"customer.deleted\"", "(.event) == \"customer.deleted\""},
        {" .data.object.status==\"paid\" ", "(.data.object.status) == \"paid\""},
        {".a == \"\"", "(.a) == \"\""},
    };
    static const char *const inputs[] = {
        "{\"event\":\"customer.deleted\"}",
        "{\"event\":\"customer.created\"}",
        "{\"event\":\"customer.deleted\",\"event\":\"x\"}",
        "{\"event\":\"x\",\"event\":\"customer.deleted\"}",
        "{\"event\":null,\"a\":\"\"}",
        "{\"event\":1,\"a\":0}",
        "{\"event\":[\"customer.deleted\"]}",
        "{\"data\":{\"object\":{\"status\":\"paid\"}}}",
        "{\"data\":{\"object\":null}}",
        "{\"data\":{\"object\":\"paid\"}}",
        "{\"data\":[1,2]}",
        "{\"data\":7}",
        "{}",
        "null",
        "[1,2]",
        "\"text\"",
        "3",
    };
    struct error err = {0};

    for (size_t p = 0; p < sizeof(programs) / sizeof(programs[0]); p++) {
        struct map_jq *fast = NULL, *slow = NULL;

        CHECK_EQ(map_jq_new(programs[p][0], &fast, &err), 0);
        CHECK_EQ(map_jq_new(programs[p][1], &slow, &err), 0);
        for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
            cJSON *in = cJSON_Parse(inputs[i]);
            struct error e1 = {0}, e2 = {0};
            int a = map_jq_test(fast, in, &e1), b = map_jq_test(slow, in, &e2);

            if (a != b)
                fprintf(stderr, "program %s, input %s: %d vs jq %d\n", programs[p][0], inputs[i], a,
                        b);
            CHECK_EQ(a, b);
            CHECK_EQ(e1.kind, e2.kind);
            cJSON_Delete(in);
        }
        map_jq_free(fast);
        map_jq_free(slow);
    }
}

/* What a program gives on input: its first output as text, or its error's
 * kind. */
static char *
jq_outcome(struct map_jq *q, const cJSON *input)
{
    struct error err = {0};
    cJSON *v = NULL;
    char *text;

    if (map_jq_eval(q, input, &v, &err) == -1) {
        text = malloc(32);
        (void)snprintf(text, 32, "error %d", (int)err.kind);
        return text;
    }
    text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

static void
jq_reads_only_is_never_wrong(void)
{
    /* 1: reads only new and current; 0: reads more (and the two inputs
     * below tell it); 2: reads only those, but too much jq to follow. */
    static const struct {
        const char *program;
        int expect;
    } cases[] = {
        {".new.total != null", 1},
        {".new.total | tonumber > 100", 1},
        {".new.state == \"open\" and .current.title != null", 1},
        {"(.new.items | map(.price) | add) > 10", 1},
        {"[.new.a, .current.b] | length == 2", 1},
        {"if .new.a then .new.b else false end", 1},
        {".new.items[0].price > 3", 1},
        {".new | keys | length > 0", 1},
        {".new | .version", 1},
        {"[.new.items | length, .version]", 1},
        {".new | (.a, .version)", 1},
        {"try (.new.total | tonumber) catch false", 1},
        {".new.a // \"none\" | . == \"none\"", 1},
        {".new.items[1:2] == [2]", 1},
        {".new | \"\\(.a | \"\\(.b)\")\" == \"1\"", 1},
        {".new | . as $n | $n.a", 1},
        {".new.s == \"a|b\\\"c\" or .new.s == \"x\"", 1},
        {".current?.a == -1", 1},
        {"$__loc__.line > 0 and $ENV.NOPE == null", 1},
        {"empty", 1},
        {".version > 1", 0},
        {".source != \"x\"", 0},
        {".", 0},
        {". | .version", 0},
        {"keys | length", 0},
        {"has(\"if_error\")", 0},
        {".[\"version\"]", 0},
        {"[.. | numbers]", 0},
        {".new.items[.version]", 0},
        {"to_entries | length", 0},
        {". as $c | $c.version", 0},
        {".new as $n | .version", 0},
        {"def f: .version; f", 0},
        {"\"\\(.version)\"", 0},
        {"@json", 0},
        {".new.a = 1 | .version", 0},
        {"reduce .version as $v (0; . + $v)", 0},
        {"{a: .version} | .a", 0},
        {"if .version == 1 then 1 else 2 end", 0},
        {"if .new.a then .version else 1 end", 0},
        {"if .new.z then 1 elif .version == 1 then 2 else 3 end", 0},
        {"(.new.items | length) + .version", 0},
        {"(.new | .a), .version", 0},
        {"-.version", 0},
        {".new.a and .old.a", 0},
        {"try .version catch 1", 0},
        {"getpath([\"version\"])", 0},
        {".version?", 0},
        {".\"version\"", 0},
        {"1 as $x | .version", 0},
        {"label $out | .version", 0},
        {"not", 2},
        {"\"\\(.new.a)\" == \"1\"", 2},
        {".new | def f: .a; f", 2},
        {".new.\"a\"", 2},
        {"(.new.a | length) > now", 1},
    };
    cJSON *a = cJSON_Parse("{\"record\":1,\"version\":1,\"source\":\"x\",\"old\":null,"
                           "\"new\":{\"a\":1,\"b\":2,\"s\":\"x\",\"items\":[1,2,3],\"version\":7},"
                           "\"current\":{\"a\":1,\"b\":2}}");
    cJSON *b = cJSON_Parse("{\"record\":1,\"version\":2,\"source\":\"y\",\"old\":{\"a\":0},"
                           "\"if_error\":true,"
                           "\"new\":{\"a\":1,\"b\":2,\"s\":\"x\",\"items\":[1,2,3],\"version\":7},"
                           "\"current\":{\"a\":1,\"b\":2}}");
    static const char *const keys[] = {"new", "current", NULL};

    for (size_t i = 0; i < ARRAY_COUNT(cases); i++) {
        int got = map_jq_reads_only(cases[i].program, keys);
        struct map_jq *q = NULL;
        struct error err = {0};
        char all[200];

        if (got != (cases[i].expect == 1))
            fprintf(stderr, "program %s: reads only new and current: %d\n", cases[i].program, got);
        CHECK_EQ(got, cases[i].expect == 1);
        if (cases[i].expect == 2)
            continue;
        /* All its outputs, not only the first one. */
        (void)snprintf(all, sizeof(all), "[%s]", cases[i].program);
        CHECK_EQ(map_jq_new(all, &q, &err), 0);
        if (q == NULL)
            continue;
        char *on_a = jq_outcome(q, a), *on_b = jq_outcome(q, b);

        /* What it says is what the inputs show. */
        if ((strcmp(on_a, on_b) == 0) != (cases[i].expect == 1))
            fprintf(stderr, "program %s: %s vs %s\n", cases[i].program, on_a, on_b);
        CHECK_EQ(strcmp(on_a, on_b) == 0, cases[i].expect == 1);
        free(on_a);
        free(on_b);
        map_jq_free(q);
    }
    /* Text the scan cannot follow is refused, never skipped over. */
    CHECK_EQ(map_jq_reads_only(".new.a # .version", keys), 0);
    CHECK_EQ(map_jq_reads_only(".new.a == \"open", keys), 0);
    /* An interpolation the program ends in (fuzz_map_jq found it looping). */
    CHECK_EQ(map_jq_reads_only(".new | \"\\(.a | \"\\(", keys), 0);
    CHECK_EQ(map_jq_reads_only("\"\\(", keys), 0);
    CHECK_EQ(map_jq_reads_only("(.new | {if: 1}) == .version", keys), 0);
    CHECK_EQ(map_jq_reads_only("((.new | {if: 1})) + .version", keys), 0);
    CHECK_EQ(map_jq_reads_only(".new.a ?// .version", keys), 0);
    CHECK_EQ(map_jq_reads_only("", keys), 1);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

const struct check_case check_cases[] = {
    CHECK_CASE(path_copies_fields_and_nested_paths),
    CHECK_CASE(map_in_coerces_to_the_field_type),
    CHECK_CASE(missing_source_leaves_the_field_out_and_null_stays),
    CHECK_CASE(constants_and_defaults),
    CHECK_CASE(value_maps_translate_and_else_catches_the_rest),
    CHECK_CASE(jq_computes_values_from_the_whole_record),
    CHECK_CASE(errors_name_the_field),
    CHECK_CASE(jq_runtime_errors_are_mapping_errors),
    CHECK_CASE(map_new_rejects_bad_entries),
    CHECK_CASE(map_out_nests_targets_and_writes_exact_decimals),
    CHECK_CASE(map_out_differs_only_on_written_fields),
    CHECK_CASE(map_out_same_value_in_the_system_s_form),
    CHECK_CASE(jq_conditions_route_records),
    CHECK_CASE(jq_values_cross_over_intact),
    CHECK_CASE(jq_native_equality_answers_as_jq),
    CHECK_CASE(jq_reads_only_is_never_wrong),
    {0},
};
