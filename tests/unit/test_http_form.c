/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_http_form.c — form bodies with bracket notation
 * (src/http/http_form.c), as Stripe's v1 API takes them: encode cases from
 * a table, decode cases, refusals, and a seeded round-trip property
 * (decode(encode(x)) == x); replay one with
 * CONCORD_TEST_SEED=N ./test_http_form round_trip_random_objects.
 */
/* link: http core */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "core/error.h"
#include "http/http_form.h"

#define BIG_LEN ((size_t)1 << 20)

/* The compact JSON text of v, for comparing trees in order. The caller frees. */
static char *
json_text(const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);

    CHECK(s != NULL);
    return s;
}

static void
expect_encode_obj(const cJSON *obj, const char *want)
{
    struct error err = {0};
    char *got = NULL;

    if (http_form_encode(obj, BIG_LEN, &got, &err) == -1)
        check_fail(__FILE__, __LINE__, "encode of %s failed: %s", want, err.msg);
    CHECK_STR_EQ(got, want);
    free(got);
}

static void
expect_encode(const char *json, const char *want)
{
    cJSON *obj = cJSON_Parse(json);

    if (obj == NULL)
        check_fail(__FILE__, __LINE__, "bad test JSON: %s", json);
    expect_encode_obj(obj, want);
    cJSON_Delete(obj);
}

/* Encoding obj fails with ERROR_PERMANENT and a message holding part. */
static void
expect_encode_refused_obj(const cJSON *obj, size_t max_len, const char *part)
{
    struct error err = {0};
    char *got = NULL;

    if (http_form_encode(obj, max_len, &got, &err) == 0)
        check_fail(__FILE__, __LINE__, "wanted a refusal (%s), got \"%s\"", part, got);
    CHECK(got == NULL);
    CHECK_EQ(err.kind, ERROR_PERMANENT);
    if (strstr(err.msg, part) == NULL)
        check_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"", err.msg, part);
}

static void
expect_encode_refused(const char *json, const char *part)
{
    cJSON *obj = cJSON_Parse(json);

    if (obj == NULL)
        check_fail(__FILE__, __LINE__, "bad test JSON: %s", json);
    expect_encode_refused_obj(obj, BIG_LEN, part);
    cJSON_Delete(obj);
}

static void
expect_decode(const char *body, const char *want_json)
{
    struct error err = {0};
    cJSON *got = NULL;
    char *text;

    if (http_form_decode(body, strlen(body), &got, &err) == -1)
        check_fail(__FILE__, __LINE__, "decode of \"%s\" failed: %s", body, err.msg);
    text = json_text(got);
    CHECK_STR_EQ(text, want_json);
    free(text);
    cJSON_Delete(got);
}

/* Decoding the len bytes at body fails with ERROR_INVALID, naming part. */
static void
expect_malformed_len(const char *body, size_t len, const char *part)
{
    struct error err = {0};
    cJSON *got = NULL;

    if (http_form_decode(body, len, &got, &err) == 0) {
        char *text = json_text(got);

        check_fail(__FILE__, __LINE__, "\"%s\": wanted malformed (%s), got %s", body, part, text);
    }
    CHECK(got == NULL);
    CHECK_EQ(err.kind, ERROR_INVALID);
    if (strstr(err.msg, part) == NULL)
        check_fail(__FILE__, __LINE__, "\"%s\": message \"%s\" lacks \"%s\"", body, err.msg, part);
}

static void
expect_malformed(const char *body, const char *part)
{
    expect_malformed_len(body, strlen(body), part);
}

static const struct {
    const char *json;
    const char *body;
} encode_cases[] = {
    /* Stripe's documented shapes (docs.stripe.com/api, metadata and expand). */
    {"{\"amount\":2000,\"currency\":\"ron\"}", "amount=2000&currency=ron"},
    {"{\"metadata\":{\"order_id\":\"6735\"}}", "metadata[order_id]=6735"},
    {"{\"metadata\":{\"order_id\":6735}}", "metadata[order_id]=6735"},
    /* Indexed, as stripe-python sends lists; never expand[]=. */
    {"{\"expand\":[\"latest_charge\",\"customer\"]}", "expand[0]=latest_charge&expand[1]=customer"},
    {"{\"automatic_payment_methods\":{\"enabled\":true}}",
     "automatic_payment_methods[enabled]=true"},
    /* Nested addresses. */
    {"{\"name\":\"Jenny Rosen\",\"address\":{\"line1\":\"1 Main St\",\"city\":\"Cluj-Napoca\","
     "\"postal_code\":\"400001\",\"country\":\"RO\"}}",
     "name=Jenny+Rosen&address[line1]=1+Main+St&address[city]=Cluj-Napoca"
     "&address[postal_code]=400001&address[country]=RO"},
    {"{\"shipping\":{\"name\":\"J\",\"address\":{\"city\":\"Ia\xc8\x99i\"}}}",
     "shipping[name]=J&shipping[address][city]=Ia%C8%99i"},
    /* Arrays of objects, arrays in arrays. */
    {"{\"items\":[{\"price\":\"price_1\",\"quantity\":2},{\"price\":\"price_2\"}]}",
     "items[0][price]=price_1&items[0][quantity]=2&items[1][price]=price_2"},
    {"{\"a\":[[1,2],[\"x\"]]}", "a[0][0]=1&a[0][1]=2&a[1][0]=x"},
    {"{\"a\":[null,true,false,\"\"]}", "a[0]=&a[1]=true&a[2]=false&a[3]="},
    /* Unicode: the UTF-8 bytes, in keys and values. */
    {"{\"description\":\"caf\xc3\xa9 \xe2\x82\xac"
     "5 \xf0\x9f\x98\x80\"}",
     "description=caf%C3%A9+%E2%82%AC5+%F0%9F%98%80"},
    {"{\"metadata\":{\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\":\"v\"}}",
     "metadata[%D0%BA%D0%BB%D1%8E%D1%87]=v"},
    {"{\"d\":\"\\u00e9\"}", "d=%C3%A9"},
    /* Empty strings and nulls: the empty value, which Stripe takes as "unset". */
    {"{\"description\":\"\",\"email\":null}", "description=&email="},
    {"{\"metadata\":{\"old_key\":null,\"keep\":\"1\"}}", "metadata[old_key]=&metadata[keep]=1"},
    /* Empty containers: unset too; an empty top level is an empty body. */
    {"{\"default_tax_rates\":[]}", "default_tax_rates="},
    {"{\"metadata\":{}}", "metadata="},
    {"{}", ""},
    /* Numbers. */
    {"{\"a\":0,\"b\":-1,\"c\":1.5,\"d\":1e20,\"e\":-0.0}",
     "a=0&b=-1&c=1.5&d=100000000000000000000&e=0"},
    {"{\"a\":9007199254740993,\"b\":-123456789012345678901}",
     "a=9007199254740992&b=-123456789012345680000"},
    {"{\"a\":0.1,\"b\":1e-7,\"c\":0.000001,\"d\":-2.5e-10,\"e\":123.456}",
     "a=0.1&b=1e-7&c=0.000001&d=-2.5e-10&e=123.456"},
    {"{\"a\":5e-324,\"b\":0.3333333333333333,\"c\":100.25}",
     "a=5e-324&b=0.3333333333333333&c=100.25"},
    /* Booleans. */
    {"{\"confirm\":true,\"livemode\":false}", "confirm=true&livemode=false"},
    /* Special characters in values and keys: & = + % space [ ] and the rest. */
    {"{\"q\":\"a&b=c+d%e f\"}", "q=a%26b%3Dc%2Bd%25e+f"},
    {"{\"v\":\"[1]\",\"w\":\"A-z_0.9~\",\"x\":\"*/?#:@!$'(),;\\\"\\\\\"}",
     "v=%5B1%5D&w=A-z_0.9~&x=%2A%2F%3F%23%3A%40%21%24%27%28%29%2C%3B%22%5C"},
    {"{\"metadata\":{\"a&b=c\":\"x\",\"sp ace\":\"y\",\"br[ack]et\":\"z\",\"p+%\":\"w\"}}",
     "metadata[a%26b%3Dc]=x&metadata[sp+ace]=y&metadata[br%5Back%5Det]=z&metadata[p%2B%25]=w"},
    {"{\"a[b]\":\"1\",\"\\t\\n\":\"2\"}", "a%5Bb%5D=1&%09%0A=2"},
};

static void
encode_table(void)
{
    for (size_t i = 0; i < sizeof(encode_cases) / sizeof(encode_cases[0]); i++)
        expect_encode(encode_cases[i].json, encode_cases[i].body);
}

/* 0.1 + 0.2 computed, not parsed: the shortest form that reads back. */
static void
encode_computed_numbers(void)
{
    cJSON *obj = cJSON_CreateObject();
    volatile double tenth = 0.1, fifth = 0.2;

    cJSON_AddNumberToObject(obj, "sum", tenth + fifth);
    cJSON_AddNumberToObject(obj, "third", 1.0 / 3.0);
    cJSON_AddNumberToObject(obj, "just_under", 999999999999999999999.0 - 131072.0);
    expect_encode_obj(obj, "sum=0.30000000000000004&third=0.3333333333333333"
                           "&just_under=999999999999999900000");
    cJSON_Delete(obj);
}

static void
encode_refusals(void)
{
    cJSON *obj;

    expect_encode_refused("[1,2]", "not from an array");
    expect_encode_refused("\"x\"", "not from a string");
    expect_encode_refused("null", "not from null");
    expect_encode_refused("12", "not from a number");
    expect_encode_refused_obj(NULL, BIG_LEN, "not from nothing");
    expect_encode_refused("{\"amount\":1e21}", "too large");
    expect_encode_refused("{\"a\":{\"b\":[1,-1e21]}}", "a[b][1]");
    expect_encode_refused("{\"amount\":1e300}", "too large");
    expect_encode_refused("{\"\":\"x\"}", "an empty key under the top level");
    expect_encode_refused("{\"metadata\":{\"\":\"x\"}}", "an empty key under metadata");

    obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "n", 0)->valuedouble = NAN;
    expect_encode_refused_obj(obj, BIG_LEN, "not finite");
    cJSON_Delete(obj);

    obj = cJSON_CreateObject();
    cJSON_AddRawToObject(obj, "raw", "[1]");
    expect_encode_refused_obj(obj, BIG_LEN, "raw or invalid");
    cJSON_Delete(obj);
}

/* A chain of objects depth deep ({"k":{"k":...{"k":"v"}}}), the top counting 1. */
static cJSON *
chain(int depth)
{
    cJSON *top = cJSON_CreateObject(), *at = top;

    for (int i = 1; i < depth; i++)
        at = cJSON_AddObjectToObject(at, "k");
    cJSON_AddStringToObject(at, "k", "v");
    return top;
}

static void
depth_limit(void)
{
    struct error err = {0};
    cJSON *ok = chain(HTTP_FORM_MAX_DEPTH), *deep = chain(HTTP_FORM_MAX_DEPTH + 1), *back = NULL;
    char *body = NULL, *again;

    /* 32 levels: a key of 32 parts, which decodes back. */
    CHECK_EQ(http_form_encode(ok, BIG_LEN, &body, &err), 0);
    CHECK(strncmp(body, "k[k][k]", 7) == 0);
    CHECK_EQ(http_form_decode(body, strlen(body), &back, &err), 0);
    again = json_text(back);
    {
        char *want = json_text(ok);

        CHECK_STR_EQ(again, want);
        free(want);
    }
    free(again);
    cJSON_Delete(back);
    expect_encode_refused_obj(deep, BIG_LEN, "nests deeper than 32 levels");

    /* The same 33-part key, spelt out, does not decode. */
    {
        char key[4 * (HTTP_FORM_MAX_DEPTH + 1) + 8] = "k";

        for (int i = 1; i < HTTP_FORM_MAX_DEPTH + 1; i++)
            strcat(key, "[k]");
        strcat(key, "=v");
        expect_malformed(key, "deeper than 32 levels");
        /* One part less is fine. */
        key[strlen(key) - 5] = '\0';
        strcat(key, "=v");
        back = NULL;
        CHECK_EQ(http_form_decode(key, strlen(key), &back, &err), 0);
        cJSON_Delete(back);
    }
    free(body);
    cJSON_Delete(ok);
    cJSON_Delete(deep);
}

static void
size_limit(void)
{
    struct error err = {0};
    cJSON *obj = cJSON_Parse("{\"a\":\"b c\",\"d\":[\"e\"]}");
    char *body = NULL;

    /* "a=b+c&d[0]=e" is 12 bytes. */
    CHECK_EQ(http_form_encode(obj, 12, &body, &err), 0);
    CHECK_STR_EQ(body, "a=b+c&d[0]=e");
    free(body);
    expect_encode_refused_obj(obj, 11, "the form body is larger than 11 bytes");
    expect_encode_refused_obj(obj, 0, "the form body is larger than 0 bytes");
    cJSON_Delete(obj);

    /* A body of escapes: three bytes out per byte in. */
    obj = cJSON_Parse("{\"k\":\"&&&&\"}");
    expect_encode_refused_obj(obj, 13, "larger than 13 bytes");
    CHECK_EQ(http_form_encode(obj, 14, &body, &err), 0);
    CHECK_STR_EQ(body, "k=%26%26%26%26");
    free(body);
    cJSON_Delete(obj);
}

static const struct {
    const char *body;
    const char *json;
} decode_cases[] = {
    {"metadata[order_id]=6735", "{\"metadata\":{\"order_id\":\"6735\"}}"},
    {"amount=2000&currency=ron&confirm=true",
     "{\"amount\":\"2000\",\"currency\":\"ron\",\"confirm\":\"true\"}"},
    /* Both array forms: Stripe's docs write expand[], clients send indexes. */
    {"expand[]=latest_charge&expand[]=customer", "{\"expand\":[\"latest_charge\",\"customer\"]}"},
    {"expand[0]=latest_charge&expand[1]=customer", "{\"expand\":[\"latest_charge\",\"customer\"]}"},
    {"a[][b]=1&a[][c]=2", "{\"a\":[{\"b\":\"1\"},{\"c\":\"2\"}]}"},
    {"items[0][price]=p&items[0][quantity]=2&items[1][price]=q",
     "{\"items\":[{\"price\":\"p\",\"quantity\":\"2\"},{\"price\":\"q\"}]}"},
    {"a[0][0]=1&a[0][1]=2&a[1][0]=x", "{\"a\":[[\"1\",\"2\"],[\"x\"]]}"},
    /* Not 0..n-1 in order: an object. The top level is always one. */
    {"a[1]=x&a[0]=y", "{\"a\":{\"1\":\"x\",\"0\":\"y\"}}"},
    {"a[0]=x&a[2]=y", "{\"a\":{\"0\":\"x\",\"2\":\"y\"}}"},
    {"a[00]=x", "{\"a\":{\"00\":\"x\"}}"},
    {"a[0]=x&a[b]=y", "{\"a\":{\"0\":\"x\",\"b\":\"y\"}}"},
    {"0=a&1=b", "{\"0\":\"a\",\"1\":\"b\"}"},
    /* Nesting keeps first-seen order. */
    {"a[b][c]=1&x=2&a[b][d]=3&a[e]=4",
     "{\"a\":{\"b\":{\"c\":\"1\",\"d\":\"3\"},\"e\":\"4\"},\"x\":\"2\"}"},
    /* Escapes, in either case; '+' is a space; a literal '+' is %2B. */
    {"q=a%26b%3Dc%2Bd%25e+f", "{\"q\":\"a&b=c+d%e f\"}"},
    {"k=%c3%a9%C3%A9", "{\"k\":\"\xc3\xa9\xc3\xa9\"}"},
    {"metadata[br%5Back%5Det]=z&metadata[sp+ace]=y",
     "{\"metadata\":{\"br[ack]et\":\"z\",\"sp ace\":\"y\"}}"},
    {"a%5Bb%5D=1", "{\"a[b]\":\"1\"}"},
    /* Values may hold '=' and literal brackets (stripe-python sends them so). */
    {"a=b=c&v=[1]", "{\"a\":\"b=c\",\"v\":\"[1]\"}"},
    /* Empty values, missing '=', empty pairs. */
    {"a=&b&c=1", "{\"a\":\"\",\"b\":\"\",\"c\":\"1\"}"},
    {"&&a=1&&", "{\"a\":\"1\"}"},
    {"", "{}"},
    {"&", "{}"},
    /* Raw bytes pass through. */
    {"k=caf\xc3\xa9", "{\"k\":\"caf\xc3\xa9\"}"},
};

static void
decode_table(void)
{
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++)
        expect_decode(decode_cases[i].body, decode_cases[i].json);
}

static void
decode_malformed(void)
{
    expect_malformed("a=%", "'%' not followed by two hex digits");
    expect_malformed("a=%4", "two hex digits");
    expect_malformed("a=%zz", "two hex digits");
    expect_malformed("a%g1=1", "two hex digits");
    expect_malformed("a[%]=1", "two hex digits");
    expect_malformed("a=x%00", "byte 3: a NUL byte");
    expect_malformed_len("a=x\0y", 5, "byte 3: a NUL byte");
    expect_malformed("a[b=1", "a '[' without its ']'");
    expect_malformed("a[b[c]]=1", "a '[' without its ']'");
    expect_malformed("a]=1", "a ']' without its '['");
    expect_malformed("a[b]]=1", "text after a ']'");
    expect_malformed("a[b]c=1", "text after a ']'");
    expect_malformed("=1", "empty name");
    expect_malformed("x=1&[a]=1", "byte 4: a key with an empty name");
    expect_malformed("a=1&a=2", "given twice");
    expect_malformed("a[b]=1&a[b]=2", "given twice");
    expect_malformed("a[1]=x&a[]=y", "given twice");
    expect_malformed("a=1&a[b]=2", "both a value and a parent");
    expect_malformed("a[b]=2&a=1", "both a value and a parent");
    expect_malformed("a[b][c]=2&a[b]=1", "both a value and a parent");
}

/* Encoding what was decoded gives the canonical body. */
static void
decode_then_encode(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"expand[]=a&expand[]=b", "expand[0]=a&expand[1]=b"},
        {"q=%7e%20x", "q=~+x"},
        {"v=[1]&k", "v=%5B1%5D&k="},
        {"a[1]=x&a[0]=y", "a[1]=x&a[0]=y"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct error err = {0};
        cJSON *obj = NULL;
        char *body = NULL;

        CHECK_EQ(http_form_decode(cases[i].in, strlen(cases[i].in), &obj, &err), 0);
        CHECK_EQ(http_form_encode(obj, BIG_LEN, &body, &err), 0);
        CHECK_STR_EQ(body, cases[i].out);
        free(body);
        cJSON_Delete(obj);
    }
}

/* Pieces of generated text: the structural and escaped bytes, UTF-8, digits. */
static const char *const pieces[] = {
    "a",        "Z",
    "0",        "7",
    "-",        ".",
    "_",        "~",
    " ",        "&",
    "=",        "+",
    "%",        "%20",
    "[",        "]",
    "[]",       "#",
    "/",        "?",
    "\"",       "\\",
    "\t",       "\x7f",
    "\xc3\xa9", "\xe2\x82\xac",
    "\xff",     "id",
    "order",
};

/* Random text of 0 to 6 pieces into out (room for 64 bytes). */
static void
random_text(uint64_t *s, char *out)
{
    int count = check_below(s, 7);

    out[0] = '\0';
    for (int i = 0; i < count; i++)
        strcat(out, pieces[check_below(s, (int)(sizeof(pieces) / sizeof(pieces[0])))]);
}

static cJSON *random_value(uint64_t *s, int depth);

/* A non-empty object of unique keys that are not all digits (an object
 * keyed "0".."n-1" reads back as an array: forms cannot tell them apart). */
static cJSON *
random_object(uint64_t *s, int depth)
{
    cJSON *o = cJSON_CreateObject();
    int count = 1 + check_below(s, 4);

    for (int i = 0; i < count; i++) {
        char key[72];

        random_text(s, key);
        if (strspn(key, "0123456789") == strlen(key))
            strcat(key, "k");
        if (cJSON_GetObjectItemCaseSensitive(o, key) == NULL)
            cJSON_AddItemToObject(o, key, random_value(s, depth + 1));
    }
    return o;
}

/* A string, or (above the depth cap) a non-empty object or array. */
static cJSON *
random_value(uint64_t *s, int depth)
{
    int kind = depth >= 6 ? 0 : check_below(s, 5);

    if (kind == 3)
        return random_object(s, depth);
    if (kind == 4) {
        cJSON *a = cJSON_CreateArray();
        int count = 1 + check_below(s, 4);

        for (int i = 0; i < count; i++)
            cJSON_AddItemToArray(a, random_value(s, depth + 1));
        return a;
    }
    {
        char text[72];

        random_text(s, text);
        return cJSON_CreateString(text);
    }
}

static void
round_trip_random_objects(void)
{
    uint64_t seed = check_seed(), s = seed;

    for (int round = 0; round < 3000; round++) {
        struct error err = {0};
        cJSON *x = random_object(&s, 1), *back = NULL;
        char *body = NULL, *body2 = NULL, *want, *got;

        if (http_form_encode(x, BIG_LEN, &body, &err) == -1)
            check_fail(__FILE__, __LINE__, "seed %llu round %d: encode: %s",
                       (unsigned long long)seed, round, err.msg);
        if (http_form_decode(body, strlen(body), &back, &err) == -1)
            check_fail(__FILE__, __LINE__, "seed %llu round %d: decode of %s: %s",
                       (unsigned long long)seed, round, body, err.msg);
        want = json_text(x);
        got = json_text(back);
        if (strcmp(want, got) != 0)
            check_fail(__FILE__, __LINE__, "seed %llu round %d: %s\nencoded %s\ndecoded %s",
                       (unsigned long long)seed, round, want, body, got);
        /* And encoding is a function of the tree alone. */
        CHECK_EQ(http_form_encode(back, BIG_LEN, &body2, &err), 0);
        CHECK_STR_EQ(body2, body);
        free(want);
        free(got);
        free(body);
        free(body2);
        cJSON_Delete(x);
        cJSON_Delete(back);
    }
}

const struct check_case check_cases[] = {
    CHECK_CASE(encode_table),
    CHECK_CASE(encode_computed_numbers),
    CHECK_CASE(encode_refusals),
    CHECK_CASE(depth_limit),
    CHECK_CASE(size_limit),
    CHECK_CASE(decode_table),
    CHECK_CASE(decode_malformed),
    CHECK_CASE(decode_then_encode),
    CHECK_CASE(round_trip_random_objects),
    {0},
};
