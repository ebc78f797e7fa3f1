/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_config.c — the config loader (src/config/): the quickstart
 * example loads with every default and reference filled in, and the golden
 * files under tests/unit/golden/config/ give the exact report of
 * config_check() for broken configs.
 *
 * Golden files: for each NAME.yaml, NAME.expected holds the report with the
 * directory part of the path removed, so each line reads
 * "NAME.yaml:LINE:COL: message". They run with CONCORD_TEST_TOKEN and
 * CONCORD_TEST_SIG set and CONCORD_TEST_UNSET unset. Set
 * CONCORD_UPDATE_GOLDEN=1 to rewrite the .expected files (then read the diff).
 */
/* link: config */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "config/config.h"
#include "core/error.h"

#define GOLDEN_SECRET "golden-Secret-Value-93f1"

static char *
read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long size;

    if (f == NULL)
        return NULL;
    CHECK(fseek(f, 0, SEEK_END) == 0);
    size = ftell(f);
    CHECK(size >= 0);
    CHECK(fseek(f, 0, SEEK_SET) == 0);
    data = malloc((size_t)size + 1);
    CHECK(data != NULL);
    CHECK(fread(data, 1, (size_t)size, f) == (size_t)size);
    data[size] = '\0';
    fclose(f);
    return data;
}

static const struct config_map_entry *
entry(const struct config_map *m, const char *target)
{
    for (size_t i = 0; i < m->entry_count; i++) {
        if (strcmp(m->entries[i].target, target) == 0)
            return &m->entries[i];
    }
    return NULL;
}

static struct config *
load_quickstart(void)
{
    char path[4096];
    struct config *cfg = NULL;
    struct error err = {0};

    CHECK_EQ(setenv("SHOP_WEBHOOK_SECRET", "whsec-test", 1), 0);
    CHECK_EQ(setenv("CRM_TOKEN", "Bearer crm-test", 1), 0);
    (void)snprintf(path, sizeof(path), "%s/examples/quickstart/concord.yaml", check_source_dir());
    if (config_load(path, &cfg, &err) != 0)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(cfg != NULL);
    return cfg;
}

static void
quickstart_loads(void)
{
    struct config *cfg = load_quickstart();
    const struct config_system *shop = config_system_find(cfg, "shop");
    const struct config_system *crm = config_system_find(cfg, "crm");

    CHECK_STR_EQ(cfg->listen, "127.0.0.1:8480");
    CHECK(strncmp(cfg->store_url, "sqlite:/", 8) == 0); /* made absolute */
    CHECK(strstr(cfg->store_url, "/examples/quickstart/quickstart.db") != NULL);
    CHECK_EQ(cfg->system_count, 2);
    CHECK(shop != NULL && crm != NULL);
    CHECK_STR_EQ(shop->base_url, "http://127.0.0.1:8481");
    CHECK_EQ(shop->kind, CONFIG_SYSTEM_HTTP);
    CHECK_EQ(shop->timeout_ms, 10000);     /* default */
    CHECK_EQ(shop->retry.max_attempts, 9); /* the default list: 8 delays */
    CHECK_EQ(shop->retry.delay_count, 8);
    CHECK_EQ(shop->rate_limit.rate_per_s, 0); /* unlimited */
    CHECK_EQ(shop->rate_limit.block_ms, 60000);
    CHECK_EQ(shop->rate_limit.limited_status_count, 0);
    CHECK_EQ(shop->breaker_enabled, 1);
    CHECK_EQ(shop->breaker.failures_to_open, 5);
    CHECK(shop->retry_stop_header_name == NULL);
    CHECK_EQ(crm->timeout_ms, 5000);
    CHECK_EQ(crm->retry.max_attempts, 6);
    CHECK_EQ(crm->retry.base_ms, 500);
    CHECK_EQ(crm->retry.cap_ms, 30000);
    CHECK_EQ(crm->retry.delay_count, 0); /* base_ms/cap_ms: exponential, as before */
    CHECK(crm->retry.jitter > 0.19 && crm->retry.jitter < 0.21);
    CHECK_EQ(crm->max_in_flight, 8);
    CHECK_EQ(crm->auth_header_count, 1);
    CHECK_STR_EQ(crm->auth_headers[0].name, "Authorization");
    CHECK_STR_EQ(secret_bytes(&crm->auth_headers[0].value), "Bearer crm-test");
    CHECK_STR_EQ(crm->auth_headers[0].value.ref, "env:CRM_TOKEN");
    CHECK_EQ(crm->webhook.enabled, 1);
    CHECK_EQ(crm->webhook.has_signature, 0);

    const struct config_webhook *w = &shop->webhook;
    CHECK_EQ(w->enabled, 1);
    CHECK_STR_EQ(w->path, "/webhooks/shop");
    CHECK_STR_EQ(w->delivery_id_header, "X-Shop-Delivery");
    CHECK_EQ(w->max_body_bytes, 1048576);
    CHECK_EQ(w->has_signature, 1);
    CHECK_STR_EQ(w->signature.scheme, "hmac");
    CHECK_STR_EQ(w->signature.header, "X-Shop-Signature");
    CHECK_STR_EQ(secret_bytes(&w->signature.secret), "whsec-test");
    CHECK_EQ(w->signature.encoding, CONFIG_SIG_HEX);
    CHECK_STR_EQ(w->signature.prefix, "sha256=");
    CHECK_STR_EQ(w->signature.timestamp_header, "X-Shop-Timestamp");
    CHECK_EQ(w->signature.tolerance_s, 300);
    CHECK_STR_EQ(w->signature.signed_template, "{timestamp}.{body}");
    config_free(cfg);
}

static void
quickstart_collections_and_maps(void)
{
    struct config *cfg = load_quickstart();
    const struct config_collection *shop = config_collection_find(cfg, "shop.customers");
    const struct config_collection *crm = config_collection_find(cfg, "crm.contacts");
    const struct config_map_entry *e;
    char *json;

    CHECK_EQ(cfg->collection_count, 2);
    CHECK(shop != NULL && crm != NULL);
    CHECK_STR_EQ(shop->short_name, "customers");
    CHECK_STR_EQ(shop->system->name, "shop");
    CHECK_STR_EQ(shop->model, "customer");
    CHECK_STR_EQ(shop->id_path, "id");
    CHECK_STR_EQ(shop->record_path, "customer");
    CHECK_STR_EQ(shop->deleted_jq, ".event == \"customer.deleted\"");
    CHECK(shop->match_jq == NULL);
    CHECK_EQ(shop->map_in.entry_count, 6);
    CHECK_EQ(shop->map_out.entry_count, 0);
    CHECK(shop->create.method == NULL);

    e = entry(&shop->map_in, "email");
    CHECK(e != NULL && e->source == CONFIG_MAP_PATH);
    CHECK_STR_EQ(e->path, "email");
    e = entry(&shop->map_in, "name");
    CHECK(e != NULL && e->source == CONFIG_MAP_JQ);
    CHECK(strstr(e->jq, "join(\" \")") != NULL);
    e = entry(&shop->map_in, "status");
    CHECK(e != NULL && e->source == CONFIG_MAP_PATH);
    CHECK_STR_EQ(e->path, "state");
    json = cJSON_PrintUnformatted(e->values);
    CHECK_STR_EQ(json, "{\"open\":\"active\",\"closed\":\"archived\"}");
    free(json);
    CHECK(cJSON_IsString(e->default_value));
    CHECK_STR_EQ(e->default_value->valuestring, "open");
    CHECK(e->values_default == NULL);

    e = entry(&crm->map_out, "source");
    CHECK(e != NULL && e->source == CONFIG_MAP_CONST);
    CHECK_STR_EQ(e->const_value->valuestring, "concord");
    CHECK_STR_EQ(crm->create.method, "POST");
    CHECK_STR_EQ(crm->create.path, "/contacts");
    CHECK_STR_EQ(crm->update.method, "PUT");
    CHECK_STR_EQ(crm->update.path, "/contacts/{id}");
    CHECK_STR_EQ(crm->remove.method, "DELETE");
    CHECK_STR_EQ(crm->created_id_path, "id");

    const struct config_model *m = config_model_find(cfg, "customer");
    CHECK(m != NULL);
    CHECK_EQ(m->field_count, 6);
    CHECK_EQ(config_model_field(m, "balance")->type, CONFIG_TYPE_DECIMAL);
    CHECK_EQ(config_model_field(m, "vip")->type, CONFIG_TYPE_BOOLEAN);
    CHECK(config_model_field(m, "nope") == NULL);

    CHECK_EQ(cfg->sync_count, 1);
    CHECK_STR_EQ(cfg->syncs[0].model, "customer");
    CHECK_EQ(cfg->syncs[0].origin_count, 1);
    CHECK_STR_EQ(cfg->syncs[0].origins[0], "shop");
    CHECK_EQ(cfg->syncs[0].collection_count, 2);
    CHECK(cfg->syncs[0].collections[0] == shop);
    CHECK(cfg->syncs[0].collections[1] == crm);

    /* The two-way keys' defaults. */
    CHECK_EQ(cfg->tombstone_ttl_ms, 30 * 86400000LL);
    CHECK_EQ(cfg->echo_window_ms, 600000);
    CHECK_EQ(shop->on_delete, CONFIG_DELETE_IGNORE); /* no delete call */
    CHECK_EQ(crm->on_delete, CONFIG_DELETE_DELETE);
    CHECK(crm->archive == NULL && crm->updated_at_path == NULL);
    const struct config_system *sys = config_system_find(cfg, "shop");
    CHECK_EQ(sys->delete_guard_enabled, 1);
    CHECK_EQ(sys->delete_guard_max_count, 50);
    CHECK(sys->delete_guard_max_share > 0.2499 && sys->delete_guard_max_share < 0.2501);
    CHECK_EQ(sys->delete_guard_min_count, 10);
    CHECK_EQ(sys->delete_guard_window_ms, 300000);
    CHECK_EQ(cfg->syncs[0].conflict, CONFIG_CONFLICT_MANUAL);
    CHECK_EQ(cfg->syncs[0].skew_ms, 2000);
    CHECK_EQ(cfg->syncs[0].write_back, 0);
    CHECK(cfg->syncs[0].prefer == NULL);
    CHECK_EQ(cfg->syncs[0].owner_count + cfg->syncs[0].match_count + cfg->syncs[0].filter_count, 0);
    config_free(cfg);
}

static const char minimal[] = "systems:\n"
                              "  a:\n"
                              "    kind: http\n"
                              "    base_url: https://a.example/api//\n"
                              "    collections:\n"
                              "      things:\n"
                              "        model: thing\n"
                              "        match: '\"t\\(.a + \")\")\" == .x # a \"quote'\n"
                              "        map_out:\n"
                              "          n: {const: 12}\n"
                              "          q: {const: \"12\"}\n"
                              "          b: {const: true}\n"
                              "          z: {const: ~}\n"
                              "          l: {const: [1, {x: yes}]}\n"
                              "          v: {path: kind, values: {a: 1, b: false}, else: other}\n"
                              "models:\n"
                              "  thing:\n"
                              "    fields: {n: integer, parent: ref:thing, at: timestamp}\n";

static struct config *
parse_ok(const char *text)
{
    struct config *cfg = NULL;
    struct error err = {0};

    if (config_parse(text, strlen(text), "mem.yaml", &cfg, &err) != 0)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(cfg != NULL);
    return cfg;
}

static void
defaults_and_yaml_scalars(void)
{
    struct config *cfg = parse_ok(minimal);
    const struct config_collection *col = config_collection_find(cfg, "a.things");
    const struct config_system *a = config_system_find(cfg, "a");
    const char *want[][2] = {
        {"n", "12"}, {"q", "\"12\""}, {"b", "true"}, {"z", "null"}, {"l", "[1,{\"x\":\"yes\"}]"}};
    char *json;

    CHECK_STR_EQ(cfg->listen, "127.0.0.1:8480");
    CHECK_STR_EQ(cfg->store_url, "sqlite:concord.db"); /* no file, no directory */
    CHECK(cfg->log_level == NULL);
    CHECK_STR_EQ(a->base_url, "https://a.example/api");
    CHECK_EQ(a->max_in_flight, 8);
    CHECK_EQ(a->retry.base_ms, 1000);
    CHECK_EQ(a->retry.cap_ms, 600000);
    CHECK_EQ(a->webhook.enabled, 0);
    CHECK_STR_EQ(a->webhook.path, "/webhooks/a");
    CHECK_EQ(cfg->sync_count, 0);
    CHECK(col != NULL);
    CHECK_STR_EQ(col->match_jq, "\"t\\(.a + \")\")\" == .x # a \"quote");
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct config_map_entry *e = entry(&col->map_out, want[i][0]);

        CHECK(e != NULL && e->source == CONFIG_MAP_CONST);
        json = cJSON_PrintUnformatted(e->const_value);
        CHECK_STR_EQ(json, want[i][1]);
        free(json);
    }
    const struct config_map_entry *v = entry(&col->map_out, "v");
    json = cJSON_PrintUnformatted(v->values);
    CHECK_STR_EQ(json, "{\"a\":1,\"b\":false}");
    free(json);
    CHECK_STR_EQ(v->values_default->valuestring, "other");
    const struct config_model *m = config_model_find(cfg, "thing");
    CHECK_EQ(config_model_field(m, "parent")->type, CONFIG_TYPE_REF);
    CHECK_STR_EQ(config_model_field(m, "parent")->ref_model, "thing");
    config_free(cfg);
}

static void
durations(void)
{
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"0", 0},         {"250", 250},
                {"250ms", 250},   {"5s", 5000},
                {"5m", 300000},   {"2h", 7200000},
                {"1d", 86400000}, {"007s", 7000},
                {"0h", 0},        {"2305843009213693951", INT64_MAX / 4}};
    static const char *const bad[] = {"",
                                      "s",
                                      "5x",
                                      "-1s",
                                      "+5s",
                                      "1.5s",
                                      "2 h",
                                      " 5s",
                                      "5s ",
                                      "5S",
                                      "5sec",
                                      "5ms5",
                                      "1e3",
                                      "0x10",
                                      "2305843009213693952",
                                      "106751991167301d",
                                      "99999999999999999999999ms"};
    int64_t ms;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ms = -7;
        if (config_duration_ms(good[i].text, &ms) != 0 || ms != good[i].ms)
            check_fail(__FILE__, __LINE__, "\"%s\": got %lld, want %lld", good[i].text,
                       (long long)ms, (long long)good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = -7;
        if (config_duration_ms(bad[i], &ms) != -1 || ms != -7)
            check_fail(__FILE__, __LINE__, "\"%s\" accepted", bad[i]);
    }
    CHECK_EQ(config_duration_ms(NULL, &ms), -1);
}

static const char limits_yaml[] =
    "systems:\n"
    "  listed:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9001\n"
    "    retry:\n"
    "      delays: [0, 250ms, 5s, 5m, 2h, 1d, 1500]\n"
    "      max_age: 24h\n"
    "      jitter: 0\n"
    "      stop_header: \"Stripe-Should-Retry:  false \"\n"
    "    rate_limit: {rate: 5, per: 1s, burst: 10}\n"
    "    rate_limited_status: [403, 503]\n"
    "    rate_limited_block: 10m\n"
    "    breaker: {failures: 3, failure_rate: 0.25, min_requests: 8, window: 1m, cooldown: 250ms}\n"
    "  cut:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9002\n"
    "    retry: {delays: [10, 20, 30], max_attempts: 2}\n"
    "    rate_limit: {rate: 30, per: 1m}\n"
    "    breaker: off\n"
    "  capped:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9003\n"
    "    retry: {delays: [10, 20], max_attempts: 50}\n"
    "    rate_limit: {rate: 0.5}\n"
    "    breaker: {}\n"
    "  old:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9004\n"
    "    retry: {max_attempts: 3, base_ms: 50, cap_ms: 200, jitter: 0.1}\n"
    "  cap_only:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9005\n"
    "    retry: {cap_ms: 30000}\n"
    "  attempts_only:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9006\n"
    "    retry: {max_attempts: 4}\n"
    "models: {}\n";

static void
retry_rate_limit_and_breaker(void)
{
    struct config *cfg = parse_ok(limits_yaml);
    const struct config_system *s = config_system_find(cfg, "listed");
    static const int64_t want[] = {0, 250, 5000, 300000, 7200000, 86400000, 1500};

    CHECK_EQ(s->retry.delay_count, 7);
    for (size_t i = 0; i < 7; i++)
        CHECK_EQ(s->retry.delays_ms[i], want[i]);
    CHECK_EQ(s->retry.max_attempts, 8);
    CHECK_EQ(retry_delay_ms(&s->retry, 3, 0.5), 5000);
    CHECK_EQ(s->retry.max_age_ms, 86400000);
    CHECK(s->retry.jitter == 0);
    CHECK_STR_EQ(s->retry_stop_header_name, "Stripe-Should-Retry");
    CHECK_STR_EQ(s->retry_stop_header_value, "false");
    CHECK(s->rate_limit.rate_per_s > 4.999 && s->rate_limit.rate_per_s < 5.001);
    CHECK(s->rate_limit.burst > 9.999 && s->rate_limit.burst < 10.001);
    CHECK_EQ(s->rate_limit.limited_status_count, 2);
    CHECK_EQ(s->rate_limit.limited_status[0], 403);
    CHECK_EQ(s->rate_limit.limited_status[1], 503);
    CHECK_EQ(s->rate_limit.block_ms, 600000);
    CHECK_EQ(s->breaker_enabled, 1);
    CHECK_EQ(s->breaker.failures_to_open, 3);
    CHECK(s->breaker.failure_rate > 0.249 && s->breaker.failure_rate < 0.251);
    CHECK_EQ(s->breaker.min_requests, 8);
    CHECK_EQ(s->breaker.window_ms, 60000);
    CHECK_EQ(s->breaker.cooldown_ms, 250);

    s = config_system_find(cfg, "cut");
    CHECK_EQ(s->retry.delay_count, 3);
    CHECK_EQ(s->retry.max_attempts, 2);                      /* fewer than the list allows */
    CHECK(s->retry.jitter > 0.19 && s->retry.jitter < 0.21); /* the default jitter */
    CHECK(s->rate_limit.rate_per_s > 0.4999 && s->rate_limit.rate_per_s < 0.5001);
    CHECK(s->rate_limit.burst > 29.999 && s->rate_limit.burst < 30.001); /* the rate per `per` */
    CHECK_EQ(s->breaker_enabled, 0);

    s = config_system_find(cfg, "capped");
    CHECK_EQ(s->retry.max_attempts, 3); /* 2 delays: 3 attempts, whatever max_attempts says */
    CHECK(s->rate_limit.burst > 0.999 && s->rate_limit.burst < 1.001); /* never below 1 */
    CHECK_EQ(s->breaker_enabled, 1);
    CHECK_EQ(s->breaker.cooldown_ms, 30000); /* an empty mapping keeps the defaults */

    s = config_system_find(cfg, "old"); /* an existing exponential section: unchanged */
    CHECK_EQ(s->retry.delay_count, 0);
    CHECK_EQ(s->retry.max_attempts, 3);
    CHECK_EQ(s->retry.base_ms, 50);
    CHECK_EQ(s->retry.cap_ms, 200);
    CHECK_EQ(retry_delay_ms(&s->retry, 2, 0), 100);
    CHECK_EQ(s->retry.max_age_ms, 0);

    s = config_system_find(cfg, "cap_only");
    CHECK_EQ(s->retry.delay_count, 0);
    CHECK_EQ(s->retry.base_ms, 1000);
    CHECK_EQ(s->retry.cap_ms, 30000);
    CHECK_EQ(s->retry.max_attempts, 8); /* the exponential form's default */

    s = config_system_find(cfg, "attempts_only");
    CHECK_EQ(s->retry.delay_count, 8);  /* the default list ... */
    CHECK_EQ(s->retry.max_attempts, 4); /* ... cut short */
    config_free(cfg);
}

static const char two_way_yaml[] =
    "tombstone_ttl: 7d\n"
    "echo_window: 90s\n"
    "systems:\n"
    "  shop:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9001\n"
    "    delete_guard: {max_count: 0, max_share: 12.5%, min_count: 3, window: 1h}\n"
    "    collections:\n"
    "      customers:\n"
    "        model: customer\n"
    "        updated_at: meta.updated\n"
    "        delete: DELETE /customers/{id}\n"
    "  crm:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9002\n"
    "    delete_guard: {max_share: 0.5}\n"
    "    collections:\n"
    "      contacts:\n"
    "        model: customer\n"
    "        update: PATCH /contacts/{id}\n"
    "        delete: DELETE /contacts/{id}\n"
    "        on_delete: archive\n"
    "        archive: {status: archived, active: false, archived_at: ~}\n"
    "  erp:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9003\n"
    "    delete_guard: off\n"
    "    collections:\n"
    "      partners:\n"
    "        model: customer\n"
    "        delete: DELETE /partners/{id}\n"
    "        on_delete: ignore\n"
    "      leads: {model: customer}\n"
    "models:\n"
    "  customer:\n"
    "    fields: {email: string, name: string, phone: string, vat: string, vip: boolean}\n"
    "syncs:\n"
    "  customers:\n"
    "    model: customer\n"
    "    origin: [shop, crm]\n"
    "    collections: [shop.customers, crm.contacts, erp.partners]\n"
    "    owners:\n"
    "      email: shop\n"
    "      name: [crm, shop]\n"
    "    conflict: prefer\n"
    "    prefer: crm\n"
    "    write_back: true\n"
    "    match:\n"
    "      - email\n"
    "      - {field: phone, normalize: phone, country: \"+40\"}\n"
    "      - {field: vat, normalize: vat}\n"
    "      - {field: name, normalize: text}\n"
    "      - {field: vip}\n"
    "    filters:\n"
    "      erp.partners: '.vip == true'\n"
    "      crm.contacts: '.email != null'\n"
    "  newest:\n"
    "    model: customer\n"
    "    origin: erp\n"
    "    collections: [erp.leads, shop.customers]\n"
    "    conflict: newest\n"
    "    skew: 500ms\n"
    "    write_back: false\n"
    "  no_stamps:\n"
    "    model: customer\n"
    "    origin: erp\n"
    "    collections: [erp.leads]\n"
    "    conflict: newest\n"
    "  owned:\n"
    "    model: customer\n"
    "    origin: erp\n"
    "    collections: [erp.leads]\n"
    "    conflict: owner\n"
    "    match: [{field: phone, normalize: phone}]\n";

static void
two_way_keys(void)
{
    struct config *cfg = parse_ok(two_way_yaml);
    const struct config_system *shop = config_system_find(cfg, "shop");
    const struct config_system *crm = config_system_find(cfg, "crm");
    const struct config_system *erp = config_system_find(cfg, "erp");
    const struct config_collection *customers = config_collection_find(cfg, "shop.customers");
    const struct config_collection *contacts = config_collection_find(cfg, "crm.contacts");
    const struct config_collection *partners = config_collection_find(cfg, "erp.partners");
    const struct config_collection *leads = config_collection_find(cfg, "erp.leads");
    const struct config_sync *s;
    char *json;

    CHECK_EQ(cfg->tombstone_ttl_ms, 7 * 86400000LL);
    CHECK_EQ(cfg->echo_window_ms, 90000);

    CHECK_EQ(shop->delete_guard_enabled, 1);
    CHECK_EQ(shop->delete_guard_max_count, 0);
    CHECK(shop->delete_guard_max_share > 0.1249 && shop->delete_guard_max_share < 0.1251);
    CHECK_EQ(shop->delete_guard_min_count, 3);
    CHECK_EQ(shop->delete_guard_window_ms, 3600000);
    CHECK_EQ(crm->delete_guard_enabled, 1); /* a partial mapping keeps the other defaults */
    CHECK(crm->delete_guard_max_share > 0.4999 && crm->delete_guard_max_share < 0.5001);
    CHECK_EQ(crm->delete_guard_max_count, 50);
    CHECK_EQ(crm->delete_guard_min_count, 10);
    CHECK_EQ(crm->delete_guard_window_ms, 300000);
    CHECK_EQ(erp->delete_guard_enabled, 0);

    CHECK_EQ(customers->on_delete, CONFIG_DELETE_DELETE); /* the default with a delete call */
    CHECK_STR_EQ(customers->updated_at_path, "meta.updated");
    CHECK(customers->archive == NULL);
    CHECK_EQ(contacts->on_delete, CONFIG_DELETE_ARCHIVE);
    json = cJSON_PrintUnformatted(contacts->archive);
    CHECK_STR_EQ(json, "{\"status\":\"archived\",\"active\":false,\"archived_at\":null}");
    free(json);
    CHECK(contacts->updated_at_path == NULL);
    CHECK_EQ(partners->on_delete, CONFIG_DELETE_IGNORE);
    CHECK_EQ(leads->on_delete, CONFIG_DELETE_IGNORE); /* the default without one */

    CHECK_EQ(cfg->sync_count, 4);
    s = &cfg->syncs[0];
    CHECK_EQ(s->owner_count, 2);
    CHECK_STR_EQ(s->owners[0].field, "email");
    CHECK_EQ(s->owners[0].system_count, 1);
    CHECK_STR_EQ(s->owners[0].systems[0], "shop");
    CHECK_STR_EQ(s->owners[1].field, "name");
    CHECK_EQ(s->owners[1].system_count, 2);
    CHECK_STR_EQ(s->owners[1].systems[0], "crm"); /* the order is kept: strongest first */
    CHECK_STR_EQ(s->owners[1].systems[1], "shop");
    CHECK_EQ(s->owners[1].pos.line, 44);
    CHECK_EQ(s->conflict, CONFIG_CONFLICT_PREFER);
    CHECK_STR_EQ(s->prefer, "crm");
    CHECK_EQ(s->skew_ms, 2000);
    CHECK_EQ(s->write_back, 1);
    CHECK_EQ(s->match_count, 5);
    CHECK_STR_EQ(s->match[0].field, "email");
    CHECK_EQ(s->match[0].normalize, CONFIG_NORMALIZE_EMAIL); /* by its name */
    CHECK(s->match[0].country == NULL);
    CHECK_STR_EQ(s->match[1].field, "phone");
    CHECK_EQ(s->match[1].normalize, CONFIG_NORMALIZE_PHONE);
    CHECK_STR_EQ(s->match[1].country, "40"); /* the "+" dropped */
    CHECK_EQ(s->match[2].normalize, CONFIG_NORMALIZE_VAT);
    CHECK_EQ(s->match[3].normalize, CONFIG_NORMALIZE_TEXT);
    CHECK_STR_EQ(s->match[4].field, "vip");
    CHECK_EQ(s->match[4].normalize, CONFIG_NORMALIZE_EXACT);
    CHECK_EQ(s->filter_count, 2);
    CHECK(s->filters[0].collection == partners);
    CHECK_STR_EQ(s->filters[0].jq, ".vip == true");
    CHECK(s->filters[1].collection == contacts);
    CHECK_STR_EQ(s->filters[1].jq, ".email != null");

    s = &cfg->syncs[1];
    CHECK_EQ(s->conflict, CONFIG_CONFLICT_NEWEST);
    CHECK_EQ(s->skew_ms, 500);
    CHECK_EQ(s->write_back, 0);
    CHECK(s->prefer == NULL);
    CHECK_EQ(s->owner_count, 0);
    CHECK_EQ(s->match_count, 0);
    CHECK_EQ(s->filter_count, 0);

    s = &cfg->syncs[2]; /* newest with no updated_at anywhere: concord's receive time */
    CHECK_EQ(s->conflict, CONFIG_CONFLICT_NEWEST);
    CHECK_EQ(s->skew_ms, 2000);

    s = &cfg->syncs[3];
    CHECK_EQ(s->conflict, CONFIG_CONFLICT_OWNER);
    CHECK_EQ(s->match_count, 1);
    CHECK_EQ(s->match[0].normalize, CONFIG_NORMALIZE_PHONE);
    CHECK(s->match[0].country == NULL);
    config_free(cfg);
}

static const char poll_yaml[] =
    "systems:\n"
    "  crm:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9002\n"
    "    collections:\n"
    "      contacts:\n"
    "        model: customer\n"
    "        map_in: {email: email}\n"
    "        poll:\n"
    "          every: 30s\n"
    "          jitter: 25%\n"
    "          list: GET /contacts?active=1\n"
    "          items: data.rows\n"
    "          cursor:\n"
    "            kind: updated_since\n"
    "            param: modified_after\n"
    "            field: meta.updated_at\n"
    "            format: iso\n"
    "            overlap: 5s\n"
    "          page:\n"
    "            kind: cursor\n"
    "            param: cursor\n"
    "            size_param: limit\n"
    "            size: 250\n"
    "            next: meta.next_cursor\n"
    "            has_more: meta.has_more\n"
    "          reconcile: 1h\n"
    "      events:\n"
    "        model: customer\n"
    "        map_in: {email: email}\n"
    "        poll:\n"
    "          every: 100ms\n"
    "          jitter: 0\n"
    "          list: GET /events\n"
    "          cursor: {kind: sync_token, param: syncToken, token: nextSyncToken,\n"
    "                   resync_status: [410, 400]}\n"
    "          page: {kind: number, param: page}\n"
    "      leads:\n"
    "        model: customer\n"
    "        map_in: {email: email}\n"
    "        poll:\n"
    "          every: 1m\n"
    "          list: GET /leads\n"
    "          cursor: none\n"
    "      deals:\n"
    "        model: customer\n"
    "        map_in: {email: email}\n"
    "        poll:\n"
    "          every: 2m\n"
    "          list: GET /deals\n"
    "          cursor: {kind: updated_since, param: since, field: updated}\n"
    "          page: link\n"
    "      notes:\n"
    "        model: customer\n"
    "        map_in: {email: email}\n"
    "        poll:\n"
    "          every: 5m\n"
    "          list: GET /notes\n"
    "          cursor: {kind: sync_token, param: t, token: next}\n"
    "          page: {kind: offset, param: skip, size: 1}\n"
    "      plain:\n"
    "        model: customer\n"
    "        map_in: {email: email}\n"
    "models:\n"
    "  customer:\n"
    "    fields: {email: string}\n";

static void
poll_keys(void)
{
    struct config *cfg = parse_ok(poll_yaml);
    const struct config_poll *p;

    p = &config_collection_find(cfg, "crm.contacts")->poll;
    CHECK_EQ(p->enabled, 1);
    CHECK_EQ(p->every_ms, 30000);
    CHECK(p->jitter > 0.2499 && p->jitter < 0.2501);
    CHECK_STR_EQ(p->list.method, "GET");
    CHECK_STR_EQ(p->list.path, "/contacts?active=1");
    CHECK_STR_EQ(p->items_path, "data.rows");
    CHECK_EQ(p->cursor, CONFIG_CURSOR_UPDATED_SINCE);
    CHECK_STR_EQ(p->cursor_param, "modified_after");
    CHECK_STR_EQ(p->cursor_field, "meta.updated_at");
    CHECK_STR_EQ(p->cursor_format, "iso");
    CHECK_EQ(p->overlap_ms, 5000);
    CHECK(p->token_path == NULL);
    CHECK_EQ(p->resync_status_count, 0);
    CHECK(p->resync_status == NULL);
    CHECK_EQ(p->page, CONFIG_PAGE_CURSOR);
    CHECK_STR_EQ(p->page_param, "cursor");
    CHECK_STR_EQ(p->size_param, "limit");
    CHECK_EQ(p->page_size, 250);
    CHECK_STR_EQ(p->next_path, "meta.next_cursor");
    CHECK_STR_EQ(p->has_more_path, "meta.has_more");
    CHECK_EQ(p->reconcile_every_ms, 3600000);

    p = &config_collection_find(cfg, "crm.events")->poll;
    CHECK_EQ(p->enabled, 1);
    CHECK_EQ(p->every_ms, 100); /* the least allowed */
    CHECK_EQ(p->jitter, 0);
    CHECK(p->items_path == NULL); /* the answer is the list */
    CHECK_EQ(p->cursor, CONFIG_CURSOR_SYNC_TOKEN);
    CHECK_STR_EQ(p->cursor_param, "syncToken");
    CHECK_STR_EQ(p->token_path, "nextSyncToken");
    CHECK_EQ(p->resync_status_count, 2);
    CHECK_EQ(p->resync_status[0], 410);
    CHECK_EQ(p->resync_status[1], 400);
    CHECK(p->cursor_field == NULL);
    CHECK(p->cursor_format == NULL); /* updated_since only */
    CHECK_EQ(p->overlap_ms, 0);
    CHECK_EQ(p->page, CONFIG_PAGE_NUMBER);
    CHECK_STR_EQ(p->page_param, "page");
    CHECK(p->size_param == NULL);
    CHECK_EQ(p->page_size, 100); /* default */
    CHECK(p->next_path == NULL);
    CHECK(p->has_more_path == NULL);
    CHECK_EQ(p->reconcile_every_ms, 0); /* never */

    p = &config_collection_find(cfg, "crm.leads")->poll; /* the defaults */
    CHECK_EQ(p->enabled, 1);
    CHECK_EQ(p->every_ms, 60000);
    CHECK(p->jitter > 0.0999 && p->jitter < 0.1001);
    CHECK_STR_EQ(p->list.path, "/leads");
    CHECK_EQ(p->cursor, CONFIG_CURSOR_NONE); /* bare "none" */
    CHECK(p->cursor_param == NULL);
    CHECK_EQ(p->page, CONFIG_PAGE_NONE);
    CHECK(p->page_param == NULL);
    CHECK_EQ(p->page_size, 100);
    CHECK_EQ(p->reconcile_every_ms, 0);

    p = &config_collection_find(cfg, "crm.deals")->poll;
    CHECK_EQ(p->cursor, CONFIG_CURSOR_UPDATED_SINCE);
    CHECK_STR_EQ(p->cursor_format, "ms"); /* default */
    CHECK_EQ(p->overlap_ms, 2000);        /* default */
    CHECK_STR_EQ(p->cursor_field, "updated");
    CHECK_EQ(p->page, CONFIG_PAGE_LINK); /* bare "link" */
    CHECK(p->page_param == NULL);

    p = &config_collection_find(cfg, "crm.notes")->poll;
    CHECK_EQ(p->cursor, CONFIG_CURSOR_SYNC_TOKEN);
    CHECK_EQ(p->resync_status_count, 1); /* default [410] */
    CHECK_EQ(p->resync_status[0], 410);
    CHECK_EQ(p->page, CONFIG_PAGE_OFFSET);
    CHECK_STR_EQ(p->page_param, "skip");
    CHECK_EQ(p->page_size, 1);

    p = &config_collection_find(cfg, "crm.plain")->poll; /* no poll key */
    CHECK_EQ(p->enabled, 0);
    CHECK(p->list.method == NULL && p->list.path == NULL);
    CHECK_EQ(p->cursor, CONFIG_CURSOR_NONE);
    CHECK_EQ(p->page, CONFIG_PAGE_NONE);
    CHECK(p->resync_status == NULL);
    config_free(cfg);
}

static void
auth_bearer_basic_and_secret_files(void)
{
    char dir[] = "/tmp/concord-test-config-XXXXXX";
    char path[256], yaml[1024];
    struct config *cfg = NULL;
    struct error err = {0};
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    (void)snprintf(path, sizeof(path), "%s/pw", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("open sesame\n", f); /* one trailing newline is stripped */
    fclose(f);
    CHECK_EQ(setenv("CONCORD_TEST_TOKEN", "tok123", 1), 0);
    (void)snprintf(
        yaml, sizeof(yaml),
        "store: sqlite:x.db\n"
        "systems:\n"
        "  b: {kind: http, base_url: 'http://h', auth: {bearer: env:CONCORD_TEST_TOKEN}}\n"
        "  c: {kind: http, base_url: 'http://h', auth: {basic: {username: Aladdin, "
        "password: 'file:pw'}, headers: {X-Key: env:CONCORD_TEST_TOKEN}}}\n"
        "models: {}\n");
    (void)snprintf(path, sizeof(path), "%s/c.yaml", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(yaml, f);
    fclose(f);
    if (config_load(path, &cfg, &err) != 0)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(cfg != NULL);
    const struct config_system *b = config_system_find(cfg, "b");
    const struct config_system *c = config_system_find(cfg, "c");
    CHECK_EQ(b->auth_header_count, 1);
    CHECK_STR_EQ(b->auth_headers[0].name, "Authorization");
    CHECK_STR_EQ(secret_bytes(&b->auth_headers[0].value), "Bearer tok123");
    CHECK_EQ(c->auth_header_count, 2);
    CHECK_STR_EQ(c->auth_headers[0].name, "X-Key");
    CHECK_STR_EQ(secret_bytes(&c->auth_headers[0].value), "tok123");
    /* RFC 7617's example: Aladdin / open sesame. */
    CHECK_STR_EQ(secret_bytes(&c->auth_headers[1].value), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    char want_store[300];
    char *real = realpath(dir, NULL);
    (void)snprintf(want_store, sizeof(want_store), "sqlite:%s/x.db", real);
    free(real);
    CHECK_STR_EQ(cfg->store_url, want_store);
    config_free(cfg);
    /* Read commands (status, failed) load without the secrets: the
     * password is not read, and nothing is built from it. */
    cfg = NULL;
    (void)snprintf(path, sizeof(path), "%s/pw", dir);
    unlink(path);
    (void)snprintf(path, sizeof(path), "%s/c.yaml", dir);
    if (config_load_flags(path, CONFIG_LOAD_NO_SECRETS, &cfg, &err) != 0)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(cfg != NULL);
    c = config_system_find(cfg, "c");
    CHECK_EQ(c->auth_header_count, 2);
    CHECK(c->auth_headers[1].value.value == NULL ||
          strstr(secret_bytes(&c->auth_headers[1].value), "open sesame") == NULL);
    config_free(cfg);
    (void)snprintf(path, sizeof(path), "%s/pw", dir);
    unlink(path);
    (void)snprintf(path, sizeof(path), "%s/c.yaml", dir);
    unlink(path);
    rmdir(dir);
}

/* A kind's own default for max_in_flight holds unless the system sets one. */
static void
kind_defaults_for_max_in_flight(void)
{
    static const char yaml[] =
        "systems:\n"
        "  ms: {kind: microsoft_graph, client_id: x, client_secret: env:CONCORD_TEST_TOKEN}\n"
        "  ms2: {kind: microsoft_graph, client_id: x, client_secret: env:CONCORD_TEST_TOKEN,\n"
        "        max_in_flight: 2}\n"
        "  web: {kind: http, base_url: 'http://127.0.0.1:9'}\n"
        "  db: {kind: sqlite, path: x.db}\n"
        "models: {}\n";
    struct config *cfg;

    CHECK_EQ(setenv("CONCORD_TEST_TOKEN", "tok123", 1), 0);
    cfg = parse_ok(yaml);
    CHECK_EQ(config_system_find(cfg, "ms")->max_in_flight, 4); /* Graph's 4 per mailbox */
    CHECK_EQ(config_system_find(cfg, "ms2")->max_in_flight, 2);
    CHECK_EQ(config_system_find(cfg, "web")->max_in_flight, 8);
    CHECK_EQ(config_system_find(cfg, "db")->max_in_flight, 1024); /* rows per transaction */
    config_free(cfg);
}

static void
load_reports_first_problem_and_count(void)
{
    const char *text = "lisen: x\nsystems: {}\nmodels: []\n";
    struct config *cfg = NULL;
    struct error err = {0};

    CHECK_EQ(config_parse(text, strlen(text), "t.yaml", &cfg, &err), -1);
    CHECK(cfg == NULL);
    CHECK_EQ(err.kind, ERROR_INVALID);
    CHECK_STR_EQ(err.msg, "t.yaml:1:1: unknown key \"lisen\"; hint: did you mean \"listen\"? "
                          "(and 2 more)");
}

static void
unreadable_file_is_io(void)
{
    struct config *cfg = NULL;
    struct error err = {0};
    char *report = NULL;

    CHECK_EQ(config_load("/nonexistent/concord.yaml", &cfg, &err), -1);
    CHECK_EQ(err.kind, ERROR_IO);
    CHECK(strstr(err.msg, "/nonexistent/concord.yaml") != NULL);
    error_clear(&err);
    CHECK_EQ(config_check("/nonexistent/concord.yaml", &report, &err), -1);
    CHECK_EQ(err.kind, ERROR_IO);
    CHECK(report == NULL);
}

/* Every way a secret can be wrong, with its value in the environment: no
 * message may carry the value, nor a literal written in place of a reference. */
static void
secret_values_never_reach_messages(void)
{
    static const char *const texts[] = {
        "systems:\n  a: {kind: http, base_url: 'http://h', auth: {bearer: 'hunter2-literal'}}\n"
        "models: {}\n",
        "systems:\n  a: {kind: http, base_url: 'http://h', auth: {headers: {X-A: "
        "env:CONCORD_TEST_NL}}}\nmodels: {}\n",
        "systems:\n  a: {kind: http, base_url: 'http://h', auth: {bearer: env:CONCORD_TEST_SECRET, "
        "headers: {Authorization: env:CONCORD_TEST_SECRET}}}\nmodels: {}\n",
        "systems:\n  a: {kind: http, base_url: 'http://h', auth: {basic: {username: u, password: "
        "hunter2-literal}}, retry: {cap_ms: 1, bse_ms: 2}}\nmodels: {}\n",
        "systems:\n  a: {kind: http, base_url: 'http://h', webhook: {signature: {header: X, "
        "secret: hunter2-literal, signed: '{timestamp}'}}}\nmodels: {}\n",
        "systems:\n  a: {kind: http, base_url: 'http://h', webhook: {signature: {header: X, "
        "secret: env:CONCORD_TEST_SECRET, signed: 'x'}}}\nmodels: {}\nbad: 1\n",
        "systems:\n  a: {kind: http, base_url: 'http://h', webhook: {signature: {header: X, "
        "secret: [hunter2-literal]}}}\nmodels: {}\n",
    };
    struct error err = {0};
    struct config *cfg = NULL;

    CHECK_EQ(setenv("CONCORD_TEST_SECRET", "s3cret-VALUE", 1), 0);
    CHECK_EQ(setenv("CONCORD_TEST_NL", "s3cret-VALUE\r\nX-Evil: 1", 1), 0);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        error_clear(&err);
        CHECK_EQ(config_parse(texts[i], strlen(texts[i]), "s.yaml", &cfg, &err), -1);
        CHECK(err.msg[0] != '\0');
        if (strstr(err.msg, "s3cret-VALUE") != NULL || strstr(err.msg, "hunter2") != NULL)
            check_fail(__FILE__, __LINE__, "case %zu leaks a secret: %s", i, err.msg);
    }
}

static void
fix_report(char *report, const char *dir)
{
    size_t dlen = strlen(dir);
    char *r = report, *w = report;

    while (*r != '\0') {
        int line_start = r == report || r[-1] == '\n';

        if (line_start && strncmp(r, dir, dlen) == 0 && r[dlen] == '/')
            r += dlen + 1;
        *w++ = *r++;
    }
    *w = '\0';
}

static const char automations_yaml[] =
    "systems:\n"
    "  shop:\n"
    "    kind: http\n"
    "    base_url: http://127.0.0.1:9001\n"
    "    collections:\n"
    "      bookings: {model: booking, map_in: {status: status, start: start}}\n"
    "models:\n"
    "  booking: {fields: {status: string, start: timestamp, note: string, n: integer}}\n"
    "syncs:\n"
    "  b: {model: booking, origin: shop, collections: [shop.bookings], automations: [note]}\n"
    "automations:\n"
    "  one:\n"
    "    model: booking\n"
    "    on: \"status: pending | 'on hold' -> *\"\n"
    "    if: '.new.n > 1'\n"
    "    actions:\n"
    "      - set: {note: hi}\n"
    "      - wait: {until: start, before: 1h}\n"
    "      - wait: 90s\n"
    "      - http: {system: shop, request: \"POST /x/{new.status}\", body: {a.b: {path: new.n}}}\n"
    "  two:\n"
    "    model: booking\n"
    "    on: [created, deleted]\n"
    "    actions: [{update: {model: booking, record: {path: record}, fields: {note: {jq: "
    "'.event'}}}}]\n";

static void
automations_parse(void)
{
    struct config *cfg = parse_ok(automations_yaml);
    const struct config_automation *one = &cfg->automations[0], *two = &cfg->automations[1];

    CHECK_EQ(cfg->automation_count, 2);
    CHECK_EQ(cfg->automation_depth, 5);
    CHECK_EQ(cfg->syncs[0].automation_fields_given, 1);
    CHECK_EQ(cfg->syncs[0].automation_field_count, 1);
    CHECK_STR_EQ(cfg->syncs[0].automation_fields[0], "note");
    CHECK_STR_EQ(one->field, "status");
    CHECK_EQ(one->on, 0u);
    CHECK_EQ(one->from.any, 0);
    CHECK_EQ(one->from.count, 2);
    CHECK_STR_EQ(one->from.values[0], "pending");
    CHECK_STR_EQ(one->from.values[1], "on hold"); /* quotes keep the blank */
    CHECK_EQ(one->to.any, 1);
    CHECK_EQ(one->condition_count, 1);
    CHECK_EQ(one->action_count, 4);
    CHECK_EQ(one->actions[0].kind, CONFIG_ACTION_SET);
    CHECK_STR_EQ(one->actions[0].model, "booking");
    CHECK_EQ(one->actions[0].fields.entries[0].source, CONFIG_MAP_CONST); /* a scalar: constant */
    CHECK_EQ(one->actions[1].kind, CONFIG_ACTION_WAIT);
    CHECK_STR_EQ(one->actions[1].wait_field, "start");
    CHECK_EQ(one->actions[1].wait_ms, -3600000);
    CHECK(one->actions[2].wait_field == NULL);
    CHECK_EQ(one->actions[2].wait_ms, 90000);
    CHECK_EQ(one->actions[3].kind, CONFIG_ACTION_HTTP);
    CHECK_STR_EQ(one->actions[3].request.method, "POST");
    CHECK_STR_EQ(one->actions[3].request.path, "/x/{new.status}");
    CHECK_STR_EQ(one->actions[3].body.entries[0].target, "a.b");
    CHECK_EQ(one->actions[3].body.entries[0].source, CONFIG_MAP_PATH);
    CHECK(two->field == NULL);
    CHECK_EQ(two->on, CONFIG_ON_CREATED | CONFIG_ON_DELETED);
    CHECK_EQ(two->actions[0].kind, CONFIG_ACTION_UPDATE);
    CHECK_EQ(two->actions[0].record.entry_count, 1);
    CHECK_EQ(two->actions[0].fields.entries[0].source, CONFIG_MAP_JQ);
    config_free(cfg);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
check_one_golden(const char *dir, const char *name, int update)
{
    char path[8192], expected_path[8192];
    struct error err = {0};
    char *report = NULL, *expected;
    int n;

    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    (void)snprintf(expected_path, sizeof(expected_path), "%s/%.*s.expected", dir,
                   (int)(strlen(name) - 5) & 0xff, name);
    n = config_check(path, &report, &err);
    if (n == -1)
        check_fail(__FILE__, __LINE__, "%s: %s", name, err.msg);
    if (report == NULL)
        report = strdup("");
    CHECK(report != NULL);
    fix_report(report, dir);
    if (strstr(report, GOLDEN_SECRET) != NULL)
        check_fail(__FILE__, __LINE__, "%s: the report shows a secret:\n%s", name, report);
    if (update) {
        FILE *f = fopen(expected_path, "w");

        CHECK(f != NULL);
        fputs(report, f);
        fclose(f);
    }
    expected = read_all(expected_path);
    if (expected == NULL)
        check_fail(__FILE__, __LINE__, "%s: no %s", name, expected_path);
    if (strcmp(expected, report) != 0)
        check_fail(__FILE__, __LINE__, "%s: report differs\n--- expected\n%s--- got\n%s", name,
                   expected, report);
    CHECK(n > 0); /* every golden config is broken */
    free(expected);
    free(report);
}

static void
golden_reports(void)
{
    char dir[4096];
    char *names[256];
    size_t count = 0;
    const char *update = getenv("CONCORD_UPDATE_GOLDEN");
    DIR *d;
    struct dirent *e;

    CHECK_EQ(setenv("CONCORD_TEST_TOKEN", GOLDEN_SECRET, 1), 0);
    CHECK_EQ(setenv("CONCORD_TEST_SIG", GOLDEN_SECRET, 1), 0);
    CHECK_EQ(unsetenv("CONCORD_TEST_UNSET"), 0);
    (void)snprintf(dir, sizeof(dir), "%s/tests/unit/golden/config", check_source_dir());
    d = opendir(dir);
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL && count < 256) {
        size_t len = strlen(e->d_name);

        if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0)
            names[count++] = strdup(e->d_name);
    }
    closedir(d);
    CHECK(count >= 12);
    qsort(names, count, sizeof(names[0]), cmp_str);
    for (size_t i = 0; i < count; i++) {
        check_one_golden(dir, names[i], update != NULL && update[0] == '1');
        free(names[i]);
    }
}

const struct check_case check_cases[] = {
    CHECK_CASE(quickstart_loads),
    CHECK_CASE(quickstart_collections_and_maps),
    CHECK_CASE(defaults_and_yaml_scalars),
    CHECK_CASE(durations),
    CHECK_CASE(retry_rate_limit_and_breaker),
    CHECK_CASE(two_way_keys),
    CHECK_CASE(automations_parse),
    CHECK_CASE(poll_keys),
    CHECK_CASE(auth_bearer_basic_and_secret_files),
    CHECK_CASE(kind_defaults_for_max_in_flight),
    CHECK_CASE(load_reports_first_problem_and_count),
    CHECK_CASE(unreadable_file_is_io),
    CHECK_CASE(secret_values_never_reach_messages),
    CHECK_CASE(golden_reports),
    {0},
};
