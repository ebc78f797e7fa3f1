/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_admin.c — the admin API's description and config:
 * docs/openapi.json and the route table of src/daemon/daemon_admin.c name
 * the same routes, both ways (a route the document lacks, or a path the
 * daemon does not serve, fails); and the admin: section loads (tokens with
 * their names, the listener; references only, without reading, for the
 * CLI). The golden files under tests/unit/golden/config/admin*.yaml hold
 * its error reports.
 */
/* link: daemon */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "config/config.h"
#include "core/error.h"
#include "daemon/daemon.h"

static cJSON *
load_openapi(void)
{
    char path[4096];
    FILE *f;
    char *text;
    long size;
    cJSON *doc;

    (void)snprintf(path, sizeof(path), "%s/docs/openapi.json", check_source_dir());
    f = fopen(path, "rb");
    CHECK(f != NULL);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    size = ftell(f);
    CHECK(size > 0 && fseek(f, 0, SEEK_SET) == 0);
    text = malloc((size_t)size + 1);
    CHECK(text != NULL && fread(text, 1, (size_t)size, f) == (size_t)size);
    text[size] = '\0';
    fclose(f);
    doc = cJSON_Parse(text);
    free(text);
    CHECK(doc != NULL);
    return doc;
}

static void
lower(const char *s, char *out, size_t len)
{
    size_t i = 0;

    for (; s[i] != '\0' && i + 1 < len; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

static void
every_route_is_in_the_document(void)
{
    cJSON *doc = load_openapi();
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
    const char *method, *path;
    size_t n = 0;

    CHECK(cJSON_IsObject(paths));
    for (size_t i = 0; daemon_admin_route(i, &method, &path); i++, n++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(paths, path);
        char m[16];

        lower(method, m, sizeof(m));
        if (item == NULL || cJSON_GetObjectItemCaseSensitive(item, m) == NULL)
            check_fail(__FILE__, __LINE__, "docs/openapi.json lacks %s %s", method, path);
        if (cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, m),
                                             "responses") == NULL)
            check_fail(__FILE__, __LINE__, "%s %s has no responses", method, path);
    }
    CHECK(n >= 20);
    cJSON_Delete(doc);
}

/* Whether the route table has method path. */
static int
served(const char *method, const char *path)
{
    const char *m, *p;

    for (size_t i = 0; daemon_admin_route(i, &m, &p); i++) {
        char lm[16];

        lower(m, lm, sizeof(lm));
        if (strcmp(lm, method) == 0 && strcmp(p, path) == 0)
            return 1;
    }
    return 0;
}

static void
every_documented_route_is_served(void)
{
    static const char *const verbs[] = {"get", "put", "post", "delete", "patch", "head", "options"};
    cJSON *doc = load_openapi();
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths"), *item, *op;
    size_t n = 0;

    cJSON_ArrayForEach(item, paths)
    {
        CHECK(strncmp(item->string, "/api/", 5) == 0);
        cJSON_ArrayForEach(op, item)
        {
            int is_verb = 0;

            for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                is_verb |= strcmp(op->string, verbs[i]) == 0;
            if (!is_verb)
                continue; /* "parameters", "summary": not an operation */
            if (!served(op->string, item->string))
                check_fail(__FILE__, __LINE__, "docs/openapi.json has %s %s; the daemon does not",
                           op->string, item->string);
            n++;
        }
    }
    CHECK(n >= 20);
    cJSON_Delete(doc);
}

static const char config_text[] = "listen: 127.0.0.1:8480\n"
                                  "systems:\n"
                                  "  shop: {kind: http, base_url: 'http://127.0.0.1:9001'}\n"
                                  "models: {}\n"
                                  "admin:\n"
                                  "  listen: 127.0.0.1:8489\n"
                                  "  tokens: {alice: env:TEST_ADMIN_A, ci: env:TEST_ADMIN_B}\n";

static void
admin_section_loads(void)
{
    struct config *cfg = NULL;
    struct error err = {0};

    CHECK_EQ(setenv("TEST_ADMIN_A", "a-token-of-enough-bytes", 1), 0);
    CHECK_EQ(setenv("TEST_ADMIN_B", "another-token-of-enough-bytes", 1), 0);
    if (config_parse(config_text, sizeof(config_text) - 1, "admin.yaml", &cfg, &err) != 0)
        check_fail(__FILE__, __LINE__, "%s", err.msg);
    CHECK_STR_EQ(cfg->admin.listen, "127.0.0.1:8489");
    CHECK_EQ(cfg->admin.token_count, 2);
    CHECK_STR_EQ(cfg->admin.tokens[0].name, "alice");
    CHECK_STR_EQ(secret_bytes(&cfg->admin.tokens[0].secret), "a-token-of-enough-bytes");
    CHECK_STR_EQ(cfg->admin.tokens[1].secret.ref, "env:TEST_ADMIN_B");
    CHECK_EQ(cfg->admin.tokens[1].pos.line, 7);
    config_free(cfg);
}

static void
without_admin_the_api_is_off(void)
{
    static const char text[] = "systems:\n"
                               "  shop: {kind: http, base_url: 'http://127.0.0.1:9001'}\n"
                               "models: {}\n";
    struct config *cfg = NULL;
    struct error err = {0};

    CHECK_EQ(config_parse(text, sizeof(text) - 1, "plain.yaml", &cfg, &err), 0);
    CHECK_EQ(cfg->admin.token_count, 0);
    CHECK(cfg->admin.listen == NULL);
    config_free(cfg);
}

const struct check_case check_cases[] = {
    CHECK_CASE(every_route_is_in_the_document),
    CHECK_CASE(every_documented_route_is_served),
    CHECK_CASE(admin_section_loads),
    CHECK_CASE(without_admin_the_api_is_off),
    {0},
};
