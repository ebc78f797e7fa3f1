/* SPDX-License-Identifier: MIT */

/* tests/unit/test_normalize.c — natural keys (src/model/normalize.c). */
/* link: model config */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "core/compiler.h"
#include "model/normalize.h"

/* The key of the JSON text json; the caller frees it. */
static char *
key_of(enum normalize_kind kind, const char *json, const char *country)
{
    cJSON *v = cJSON_Parse(json);
    char *key;

    if (v == NULL)
        check_fail(__FILE__, __LINE__, "bad JSON in the test: %s", json);
    key = normalize_key(kind, v, country);
    cJSON_Delete(v);
    return key;
}

/* Check that the JSON text json gives the key want (NULL: no key). */
static void
expect_at(const char *file, int line, enum normalize_kind kind, const char *json,
          const char *country, const char *want)
{
    char *got = key_of(kind, json, country);

    if (want == NULL && got != NULL)
        check_fail(file, line, "%s: got \"%s\", want no key", json, got);
    if (want != NULL && (got == NULL || strcmp(got, want) != 0))
        check_fail(file, line, "%s: got %s%s%s, want \"%s\"", json, got ? "\"" : "",
                   got ? got : "no key", got ? "\"" : "", want);
    free(got);
}

#define EXPECT(kind, json, country, want) expect_at(__FILE__, __LINE__, kind, json, country, want)

/* The key of a plain C string (any bytes but NUL, any length). */
static char *
key_of_string(enum normalize_kind kind, const char *s, const char *country)
{
    cJSON *v = cJSON_CreateString(s);
    char *key;

    CHECK(v != NULL);
    key = normalize_key(kind, v, country);
    cJSON_Delete(v);
    return key;
}

/* A string of n copies of fill, between head and tail; the caller frees. */
static char *
long_string(const char *head, char fill, size_t n, const char *tail)
{
    size_t h = strlen(head), t = strlen(tail);
    char *s = malloc(h + n + t + 1);

    CHECK(s != NULL);
    memcpy(s, head, h);
    memset(s + h, fill, n);
    memcpy(s + h + n, tail, t + 1);
    return s;
}

static void
exact_keeps_strings_and_canonicalises_numbers(void)
{
    EXPECT(NORMALIZE_EXACT, "\" Ana \"", NULL, " Ana ");
    EXPECT(NORMALIZE_EXACT, "\"ABC-1\"", NULL, "ABC-1");
    EXPECT(NORMALIZE_EXACT, "1.0", NULL, "1");
    EXPECT(NORMALIZE_EXACT, "1", NULL, "1");
    EXPECT(NORMALIZE_EXACT, "1e0", NULL, "1");
    EXPECT(NORMALIZE_EXACT, "\"1\"", NULL, "1"); /* the string "1" matches the number 1 */
    EXPECT(NORMALIZE_EXACT, "12.50", NULL, "12.5");
    EXPECT(NORMALIZE_EXACT, "-0", NULL, "0");
    EXPECT(NORMALIZE_EXACT, "\"\"", NULL, NULL);
    EXPECT(NORMALIZE_EXACT, "null", NULL, NULL);
    EXPECT(NORMALIZE_EXACT, "true", NULL, NULL);
    EXPECT(NORMALIZE_EXACT, "[1]", NULL, NULL);
    EXPECT(NORMALIZE_EXACT, "{\"a\":1}", NULL, NULL);
    CHECK(normalize_key(NORMALIZE_EXACT, NULL, NULL) == NULL);
}

static void
exact_refuses_non_finite_numbers(void)
{
    cJSON *v = cJSON_CreateNumber(INFINITY);

    CHECK(normalize_key(NORMALIZE_EXACT, v, NULL) == NULL);
    CHECK(normalize_key(NORMALIZE_TEXT, v, NULL) == NULL);
    CHECK(normalize_key(NORMALIZE_PHONE, v, "40") == NULL);
    cJSON_Delete(v);
}

static void
text_trims_collapses_and_folds(void)
{
    EXPECT(NORMALIZE_TEXT, "\"  Hello   World \"", NULL, "hello world");
    EXPECT(NORMALIZE_TEXT, "\"\\tACME\\n\\r S.R.L.\\f\"", NULL, "acme s.r.l.");
    EXPECT(NORMALIZE_TEXT, "\"x\"", NULL, "x");
    /* Only ASCII folds: UTF-8 stays byte for byte ("ÉCOLE Î"). */
    EXPECT(NORMALIZE_TEXT, "\"\xc3\x89\x43OLE  \xc3\x8e\"", NULL, "\xc3\x89\x63ole \xc3\x8e");
    EXPECT(NORMALIZE_TEXT, "12.50", NULL, "12.5");
    EXPECT(NORMALIZE_TEXT, "\"\"", NULL, NULL);
    EXPECT(NORMALIZE_TEXT, "\" \\t\\n \"", NULL, NULL);
    EXPECT(NORMALIZE_TEXT, "null", NULL, NULL);
    EXPECT(NORMALIZE_TEXT, "false", NULL, NULL);
}

static void
email_needs_one_at_with_text_around_it(void)
{
    EXPECT(NORMALIZE_EMAIL, "\"  Ana@Example.COM \"", NULL, "ana@example.com");
    EXPECT(NORMALIZE_EMAIL, "\"\\tBOB+Tag@X.RO\\n\"", NULL, "bob+tag@x.ro");
    /* Non-ASCII bytes are left as they are ("Ána@Exämple.ro"). */
    EXPECT(NORMALIZE_EMAIL, "\"\xc3\x81na@Ex\xc3\xa4mple.ro\"", NULL,
           "\xc3\x81na@ex\xc3\xa4mple.ro");
    EXPECT(NORMALIZE_EMAIL, "\"ana.example.com\"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\"ana@@example.com\"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\"a@b@c\"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\"@example.com\"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\" @example.com\"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\"ana@\"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\"ana@  \"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\"@\"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\"\"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "\"   \"", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "42", NULL, NULL);
    EXPECT(NORMALIZE_EMAIL, "null", NULL, NULL);
}

static void
phones_become_e164(void)
{
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456\"", "40", "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456\"", "+40", "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"+40 (0)722-123-456\"", NULL, "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"+40 (0)722-123-456\"", "49", "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"0040722123456\"", NULL, "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"0040722123456\"", "40", "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"00 40 (0) 722 123 456\"", NULL, "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"0040(0)722123456\"", NULL, "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"+44 (0)20 7946 0958\"", NULL, "+442079460958");
    EXPECT(NORMALIZE_PHONE, "\"+1 (415) 555-0100\"", NULL, "+14155550100");
    EXPECT(NORMALIZE_PHONE, "\"  +40.722/123.456  \"", NULL, "+40722123456");
    /* Without a country, a national number keeps its digits, no "+". */
    EXPECT(NORMALIZE_PHONE, "\"(0722) 123.456\"", NULL, "0722123456");
    EXPECT(NORMALIZE_PHONE, "\"0722-123-456\"", NULL, "0722123456");
    EXPECT(NORMALIZE_PHONE, "\"0722123456\"", "", "0722123456");
    /* Leading "00" is international even with a country; no trunk, nothing dropped. */
    EXPECT(NORMALIZE_PHONE, "\"00722 123 456\"", "40", "+722123456");
    EXPECT(NORMALIZE_PHONE, "\"722 123 456\"", "40", "+40722123456");
    /* A "(0)" that is not right after a country code is ordinary digits. */
    EXPECT(NORMALIZE_PHONE, "\"+40 722 (0)12 345\"", NULL, "+40722012345");
    EXPECT(NORMALIZE_PHONE, "\"(0)722 123 456\"", "40", "+40722123456");
    /* Integer numbers are read as their digits. */
    EXPECT(NORMALIZE_PHONE, "722123456", "40", "+40722123456");
    EXPECT(NORMALIZE_PHONE, "722123456", NULL, "722123456");
    EXPECT(NORMALIZE_PHONE, "7.22123456e8", "40", "+40722123456");
}

static void
phone_extensions_are_dropped(void)
{
    EXPECT(NORMALIZE_PHONE, "\"+40 722 123 456 ext. 12\"", NULL, "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"+40 722 123 456 EXT:12\"", NULL, "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 x12\"", "40", "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 X 1-2\"", "40", "+40722123456");
    EXPECT(NORMALIZE_PHONE, "\"0722123456#99 \"", NULL, "0722123456");
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 ext\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 x\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 #\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 ext 12a\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 ext 12 x 3\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 extension 12\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"ext 12\"", "40", NULL);
}

static void
phones_refuse_what_is_not_a_number(void)
{
    EXPECT(NORMALIZE_PHONE, "\"abc\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"abc\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"12\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"12\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"12345\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"123456\"", NULL, "123456");
    EXPECT(NORMALIZE_PHONE, "\"0123\"", "40", NULL);
    EXPECT(NORMALIZE_PHONE, "\"+40 123\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"+40 1234\"", NULL, "+401234");
    EXPECT(NORMALIZE_PHONE, "\"+123456789012345\"", NULL, "+123456789012345");
    EXPECT(NORMALIZE_PHONE, "\"+1234567890123456\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"001234567890123456\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"1234567890123456\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"0712345678901234\"", "40", NULL); /* 16 digits with the 40 */
    EXPECT(NORMALIZE_PHONE, "\"+0722123456\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"000722123456\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"++40722123456\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"+40 722 + 123 456\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456 +\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 l23 456\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722\\u00a0123456\"", NULL, NULL); /* no-break space: UTF-8 */
    EXPECT(NORMALIZE_PHONE, "\"+\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\"\"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "\" - () \"", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "null", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "true", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "-722123456", NULL, NULL);
    EXPECT(NORMALIZE_PHONE, "722123.5", NULL, NULL);
    /* A country that is not a calling code gives national numbers no key. */
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456\"", "RO", NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456\"", "4000", NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456\"", "040", NULL);
    EXPECT(NORMALIZE_PHONE, "\"0722 123 456\"", "+", NULL);
    EXPECT(NORMALIZE_PHONE, "\"+40 722 123 456\"", "RO", "+40722123456");
}

static void
vat_codes_lose_punctuation(void)
{
    EXPECT(NORMALIZE_VAT, "\"RO 123.456-78\"", NULL, "RO12345678");
    EXPECT(NORMALIZE_VAT, "\" ro12345678 \"", NULL, "RO12345678");
    EXPECT(NORMALIZE_VAT, "\"de/123\\t456\"", NULL, "DE123456");
    EXPECT(NORMALIZE_VAT, "12345678", NULL, "12345678");
    EXPECT(NORMALIZE_VAT, "\"\xc3\xa9u1\"", NULL, "\xc3\xa9U1"); /* UTF-8 stays as it is */
    EXPECT(NORMALIZE_VAT, "1.5", NULL, NULL);
    EXPECT(NORMALIZE_VAT, "-5", NULL, NULL);
    EXPECT(NORMALIZE_VAT, "\" . - / \"", NULL, NULL);
    EXPECT(NORMALIZE_VAT, "\"\"", NULL, NULL);
    EXPECT(NORMALIZE_VAT, "null", NULL, NULL);
}

static void
unknown_kinds_give_no_key(void)
{
    EXPECT((enum normalize_kind)0, "\"x\"", NULL, NULL);
    EXPECT((enum normalize_kind)99, "\"x\"", NULL, NULL);
}

/* Megabyte inputs: no fixed buffer overflows, and no quadratic work. */
static void
long_inputs_are_safe(void)
{
    const size_t mb = 4u << 20;
    char *s, *key;

    s = long_string("+40", '7', mb, ""); /* too many digits */
    CHECK(key_of_string(NORMALIZE_PHONE, s, "40") == NULL);
    free(s);
    s = long_string("0722 123 456", ' ', mb, "x1"); /* a far-away extension */
    key = key_of_string(NORMALIZE_PHONE, s, "40");
    CHECK_STR_EQ(key, "+40722123456");
    free(key);
    free(s);
    s = long_string("0722", '-', mb, "123456");
    key = key_of_string(NORMALIZE_PHONE, s, NULL);
    CHECK_STR_EQ(key, "0722123456");
    free(key);
    free(s);
    s = long_string("+40 722 123 456", 'a', mb, "");
    CHECK(key_of_string(NORMALIZE_PHONE, s, NULL) == NULL);
    free(s);
    s = long_string("+", '(', mb, "0)");
    CHECK(key_of_string(NORMALIZE_PHONE, s, NULL) == NULL);
    free(s);

    s = long_string("  A", ' ', mb, "B  ");
    key = key_of_string(NORMALIZE_TEXT, s, NULL);
    CHECK_STR_EQ(key, "a b");
    free(key);
    free(s);
    s = long_string("", '\t', mb, "");
    CHECK(key_of_string(NORMALIZE_TEXT, s, NULL) == NULL);
    free(s);

    s = long_string("X", 'Y', mb, "@Z");
    key = key_of_string(NORMALIZE_EMAIL, s, NULL);
    CHECK(key != NULL && strlen(key) == mb + 3 && key[1] == 'y' && key[mb + 2] == 'z');
    free(key);
    free(s);
    s = long_string("a@", '@', mb, "b");
    CHECK(key_of_string(NORMALIZE_EMAIL, s, NULL) == NULL);
    free(s);

    s = long_string("ro", '.', mb, "1");
    key = key_of_string(NORMALIZE_VAT, s, NULL);
    CHECK_STR_EQ(key, "RO1");
    free(key);
    free(s);

    s = long_string("", '\xc3', mb, "");
    key = key_of_string(NORMALIZE_EXACT, s, NULL);
    CHECK(key != NULL && strlen(key) == mb);
    free(key);
    free(s);
}

/* Keys are fixed points: normalising a key again gives the same key. */
static void
keys_are_idempotent(void)
{
    static const struct {
        enum normalize_kind kind;
        const char *in, *country;
    } cases[] = {
        {NORMALIZE_TEXT, "  Hello   World ", NULL},
        {NORMALIZE_EMAIL, " Ana@Example.COM", NULL},
        {NORMALIZE_PHONE, "0722 123 456", "40"},
        {NORMALIZE_PHONE, "(0722) 123.456", NULL},
        {NORMALIZE_PHONE, "+40 (0)722-123-456 ext 9", NULL},
        {NORMALIZE_VAT, "ro 123.456-78", NULL},
    };

    for (size_t i = 0; i < ARRAY_COUNT(cases); i++) {
        char *once = key_of_string(cases[i].kind, cases[i].in, cases[i].country);
        char *twice;

        CHECK(once != NULL);
        twice = key_of_string(cases[i].kind, once, cases[i].country);
        CHECK_STR_EQ(twice, once);
        free(once);
        free(twice);
    }
}

const struct check_case check_cases[] = {
    CHECK_CASE(exact_keeps_strings_and_canonicalises_numbers),
    CHECK_CASE(exact_refuses_non_finite_numbers),
    CHECK_CASE(text_trims_collapses_and_folds),
    CHECK_CASE(email_needs_one_at_with_text_around_it),
    CHECK_CASE(phones_become_e164),
    CHECK_CASE(phone_extensions_are_dropped),
    CHECK_CASE(phones_refuse_what_is_not_a_number),
    CHECK_CASE(vat_codes_lose_punctuation),
    CHECK_CASE(unknown_kinds_give_no_key),
    CHECK_CASE(long_inputs_are_safe),
    CHECK_CASE(keys_are_idempotent),
    {0},
};
