/* SPDX-License-Identifier: MIT */

/*
 * The operator's configuration: one YAML file with the listen address, the
 * store, the systems concord talks to, their collections, the models concord
 * owns and the syncs that bind them. docs/config.md describes every key.
 *
 * Pipeline: config_file.c (path -> bytes) -> config_parse.c (libyaml -> a
 * node tree that keeps line:col) -> config_schema.c and the files of its
 * walk, one per section (keys, types, references, secrets, jq; config_int.h
 * lists them) -> an immutable struct config. `concord check` and
 * `concord run` use the same path.
 *
 * Every problem is collected, not just the first, and each is reported as
 * "file:line:col: message" with a hint. A struct config, once loaded, is
 * never modified; readers share it.
 */
#ifndef CONCORD_CONFIG_CONFIG_H
#define CONCORD_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/breaker.h"
#include "core/compiler.h"
#include "core/cron.h"
#include "core/retry.h"
#include "core/secret.h"

struct cJSON;
struct error;

/* The types a model field can have (DESIGN.md, "model"). */
enum config_type {
    CONFIG_TYPE_STRING = 1,
    CONFIG_TYPE_INTEGER,
    CONFIG_TYPE_DECIMAL,
    CONFIG_TYPE_BOOLEAN,
    CONFIG_TYPE_TIMESTAMP,
    CONFIG_TYPE_DATE,
    CONFIG_TYPE_REF, /* a reference to a record of another model */
};

/* Where a node stood in the file, for messages that come after loading. */
struct config_pos {
    int line; /* 1-based; 0 when unknown */
    int col;  /* 1-based */
};

struct config_field {
    char *name;
    enum config_type type;
    char *ref_model; /* CONFIG_TYPE_REF only: the model referred to */
    struct config_pos pos;
};

struct config_model {
    char *name;
    struct config_field *fields;
    size_t field_count;
    struct config_pos pos;
};

/*
 * One entry of a field map. A map turns one shape into another: a
 * collection's map_in turns the system's record into the model's fields
 * (target = model field), its map_out turns the model into the system's
 * record (target = the system's field, dotted for nesting: "address.city").
 *
 * Exactly one of path, jq and const_value gives the value; default_value
 * stands in when it is null or missing; values then translates it.
 */
enum config_map_source {
    CONFIG_MAP_PATH = 1, /* copy the value at path ("email", ".billing.city") */
    CONFIG_MAP_JQ,       /* compute it with a jq expression over the input */
    CONFIG_MAP_CONST,    /* a constant */
};

struct config_map_entry {
    char *target;
    enum config_map_source source;
    char *path;                   /* CONFIG_MAP_PATH: dotted path, leading '.' optional */
    char *jq;                     /* CONFIG_MAP_JQ: the expression (checked to compile) */
    struct cJSON *const_value;    /* CONFIG_MAP_CONST: owned */
    struct cJSON *default_value;  /* NULL, or used when the value is null/missing; owned */
    struct cJSON *values;         /* NULL, or an object: value map {from: to}; owned */
    struct cJSON *values_default; /* NULL, or what a value missing from values becomes */
    struct config_pos pos;
};

struct config_map {
    struct config_map_entry *entries;
    size_t entry_count;
};

/*
 * How webhook signatures are checked (webhook.signature; http/http_sig.h
 * does the checking). A named scheme fixes its headers, signed bytes and
 * encoding; only the generic hmac scheme reads header, encoding, prefix,
 * timestamp_header and signed_template. Values in the order of the config
 * names, so a name's index + 1 is its value.
 */
enum config_sig_scheme {
    CONFIG_SIG_SCHEME_HMAC = 1,          /* "hmac": generic, configured below */
    CONFIG_SIG_SCHEME_STRIPE,            /* "stripe": Stripe-Signature t=,v1= */
    CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, /* "standard-webhooks": webhook-id/-timestamp/-signature */
    CONFIG_SIG_SCHEME_GITHUB,            /* "github": X-Hub-Signature-256 */
    CONFIG_SIG_SCHEME_SHOPIFY,           /* "shopify": X-Shopify-Hmac-Sha256 */
    CONFIG_SIG_SCHEME_HUBSPOT_V3,        /* "hubspot-v3": X-HubSpot-Signature-v3, needs url */
};

enum config_sig_encoding {
    CONFIG_SIG_HEX = 1,
    CONFIG_SIG_BASE64,
};

/* At most this many secrets are accepted at once: the new and the old one. */
#define CONFIG_SIG_MAX_SECRETS 2

struct config_signature {
    char *scheme;                       /* the scheme's name: "hmac" (default), "stripe", ... */
    enum config_sig_scheme scheme_kind; /* decides; 0 (a struct filled by hand) reads as hmac */
    char *header;                       /* hmac: header that carries the signature */
    struct secret secret;               /* the signing key; the first of a list */
    struct secret secret_rotated; /* the second of a list (a rotation), also accepted; else empty */
    size_t secret_count;          /* 1, or 2 with secret_rotated; 0 reads as 1 */
    enum config_sig_encoding encoding;
    char *prefix;           /* NULL, or stripped from the header value: "sha256=" */
    char *timestamp_header; /* NULL, or the header with a Unix timestamp in seconds */
    int64_t tolerance_s;    /* schemes with a timestamp: allowed skew either way; default 300 */
    char *signed_template;  /* bytes signed: "{body}" (default), "{timestamp}.{body}" */
    char *url;              /* hubspot-v3: the public URL HubSpot calls (it is signed); else NULL */
};

struct config_webhook {
    int enabled; /* 1 when the system has a webhook section */
    char *path;  /* "/webhooks/<system>" by default */
    int has_signature;
    struct config_signature signature;
    char *delivery_id_header; /* NULL, or the header that names a delivery */
    char *reply_header;       /* NULL, or a header whose value, base64, is the answer's body
                                 (Oblio's handshake: X-Oblio-Request-Id); the status is 200 */
    size_t max_body_bytes;    /* default 1 MiB */
};

struct config_header {
    char *name;
    struct secret value; /* header values under auth are secrets */
};

enum config_system_kind {
    CONFIG_SYSTEM_HTTP = 1,
    CONFIG_SYSTEM_SQLITE,   /* a SQLite database file: its tables are collections */
    CONFIG_SYSTEM_POSTGRES, /* a PostgreSQL database (libpq) */
};

/*
 * A system's request budget (systems.NAME.rate_limit and the two
 * rate_limited_* keys beside it); see core/ratelimit.h.
 */
struct config_rate_limit {
    double rate_per_s;   /* requests per second; 0 (the default): unlimited */
    double burst;        /* requests at once; >= 1; default: the rate per `per`, at least 1 */
    int *limited_status; /* answers that mean "rate limited", besides 429; owned */
    size_t limited_status_count;
    int64_t block_ms; /* how long such an answer (or a 429) without Retry-After blocks; 60000 */
};

/*
 * How a system's answers say what went wrong (systems.X.errors): the path
 * of the message in an error body, shown in the inbox, and the path that,
 * non-empty in a 2xx answer, makes it a refusal (SmartBill's errorText).
 */
struct config_errors {
    char *message_path; /* NULL: error.message, message, error_description, errorText, error */
    char *in_ok_path;   /* NULL: a 2xx is a success */
};

/* When a system's health turns degraded (health: ...; engine/health.c). */
struct config_health {
    int64_t lag_ms;           /* the oldest pending delivery older than this; 5 min */
    int64_t inbox_growth;     /* this many new failed entries within window_ms; 10 */
    int64_t window_ms;        /* 15 min */
    int64_t webhook_grace_ms; /* a poll found changes this long after the last webhook; 2 min */
};

/*
 * Where health transitions are sent (alerts: ...; daemon/daemon_alerts.c):
 * a Slack-compatible webhook and/or e-mail over SMTP.
 */
struct config_alerts {
    int enabled;
    int64_t every_ms;        /* how often health is judged; 30 s */
    int64_t group_ms;        /* changes within this go in one message; 10 s */
    int64_t min_interval_ms; /* at most one message per this; 5 min */
    struct secret webhook;   /* the webhook URL (it is a credential); empty: none */
    char *smtp_url;          /* "smtp://host:port" or "smtps://..."; NULL: no e-mail */
    char *mail_from;
    char **mail_to;
    size_t mail_to_count;
    char *smtp_user;
    struct secret smtp_password;
};

/* How a system's OAuth2 access tokens are had (systems.X.auth.oauth2). */
enum config_oauth_grant {
    CONFIG_GRANT_CLIENT_CREDENTIALS = 1, /* the client's own id and secret buy a token */
    CONFIG_GRANT_REFRESH_TOKEN, /* a person's consent (concord auth) gave a refresh token */
};

/*
 * OAuth2 (RFC 6749) for a system: concord gets access tokens from
 * token_url, caches them in the store, refreshes each system's token one
 * request at a time, and sends "Authorization: Bearer TOKEN". A 401 drops
 * the token that drew it. docs/config.md ("OAuth2").
 */
struct config_oauth2 {
    int enabled;
    enum config_oauth_grant grant;
    char *token_url;     /* absolute, or a path under the system's base_url */
    char *authorize_url; /* the consent page (concord auth); NULL: not offered */
    char *client_id;     /* not a secret: it shows in the consent URL */
    struct secret client_secret;
    struct secret refresh_token; /* the first refresh token; the store keeps rotated ones */
    char *scope;                 /* NULL, or space-separated scopes */
    int credentials_basic;       /* 1: client id and secret as HTTP Basic; 0: in the form body */
    int64_t margin_ms;           /* a token is renewed this long before it expires; 60000 */
};

/* A named system kind that knows an API (kind: stripe), over kind http. */
enum config_profile {
    CONFIG_PROFILE_NONE = 0,
    CONFIG_PROFILE_STRIPE,          /* Stripe: docs/stripe.md */
    CONFIG_PROFILE_SMARTBILL,       /* SmartBill: docs/invoicing.md */
    CONFIG_PROFILE_OBLIO,           /* Oblio: docs/invoicing.md */
    CONFIG_PROFILE_HUBSPOT,         /* HubSpot CRM: docs/hubspot.md */
    CONFIG_PROFILE_CALDAV,          /* a CalDAV server's calendars: docs/calendars.md */
    CONFIG_PROFILE_GOOGLE_CALENDAR, /* Google Calendar: docs/calendars.md */
    CONFIG_PROFILE_MICROSOFT_GRAPH, /* Microsoft 365 calendars (Graph): docs/calendars.md */
};

/*
 * Push registrations of a calendar kind (public_url; engine/push.c): Google
 * watch channels or Graph change-notification subscriptions that announce
 * url, kept alive by replacing (Google) or renewing (Graph) each one
 * renew_before_ms before it expires.
 */
struct config_push {
    int enabled;    /* public_url is set */
    char *url;      /* public_url + the webhook's path: what registrations announce */
    char *resource; /* Google: the events path under base_url ("/calendars/primary/events");
                       Graph: the subscription's resource ("me/events") */
    int64_t ttl_ms; /* the lifetime asked for; Google 7 d, Graph 10,070 min */
    int64_t renew_before_ms; /* default 1 h (at most half of ttl_ms) */
};

struct config_system {
    char *name;
    enum config_system_kind kind;
    enum config_profile profile; /* kind http, with what the profile knows filled in */
    char *base_url;              /* "http://127.0.0.1:9102"; no trailing slash; "" for SQL kinds */
    char *db_path;               /* SQLITE: the database file, absolute */
    struct secret dsn;           /* POSTGRES: the libpq conninfo (it may hold a password) */
    struct config_webhook webhook;
    struct config_header *auth_headers; /* sent with every request */
    size_t auth_header_count;
    struct config_oauth2 oauth2; /* and/or an OAuth2 bearer token (auth.oauth2) */
    struct config_errors errors; /* how its answers tell an error (systems.X.errors) */
    char *cif;                   /* SmartBill, Oblio: the company's tax id; else NULL */
    struct config_push push;     /* calendar kinds: push registrations; enabled 0 otherwise */
    int64_t timeout_ms;          /* per request; default 10000 */
    int max_in_flight;           /* transfers at once to this system; default 8 */
    /*
     * Default: retry_policy_default() (the list 0, 5 s, 5 min, 30 min, 2 h,
     * 5 h, 10 h, 10 h; 9 attempts). max_attempts is already cut to what the
     * schedule allows (retry_attempt_limit()).
     */
    struct retry_policy retry;
    /* retry.stop_header split: an answer whose header retry_stop_header_name
     * (case-insensitive) has the value retry_stop_header_value (compared
     * case-insensitively, blanks around it ignored) is not retried. Both
     * NULL when unset. */
    char *retry_stop_header_name;
    char *retry_stop_header_value;
    struct config_rate_limit rate_limit;
    struct breaker_policy breaker; /* default: breaker_policy_default() */
    int breaker_enabled;           /* 0 after `breaker: off`; default 1 */
    /*
     * The mass-delete guard (systems.X.delete_guard): deletes from this
     * system are held for approval once, within window_ms, more than
     * max_count arrived, or at least min_count arrived and they are more
     * than max_share of its linked copies.
     */
    int delete_guard_enabled;       /* default 1; 0 after `delete_guard: off` */
    int64_t delete_guard_max_count; /* default 50 */
    double delete_guard_max_share;  /* 0..1; default 0.25 */
    int64_t delete_guard_min_count; /* default 10 */
    int64_t delete_guard_window_ms; /* default 300000 */
    struct config_pos pos;
};

/* One HTTP call of a collection: "PUT /contacts/{id}". */
struct config_endpoint {
    char *method; /* NULL when the collection does not do this */
    char *path;   /* may hold {id} (the external id) and {field} of the outgoing record */
};

/* What a record's deletion does to a collection's copy (collections.X.on_delete). */
enum config_delete_mode {
    CONFIG_DELETE_DELETE = 1, /* send the collection's delete call (the default with one) */
    CONFIG_DELETE_ARCHIVE,    /* write the copy with the archive fields set instead */
    CONFIG_DELETE_IGNORE,     /* leave the copy alone (the default without a delete call) */
};

/* How a collection's changes are read on a schedule (collections.X.poll). */
enum config_cursor_kind {
    CONFIG_CURSOR_NONE = 1,      /* every poll reads the whole collection */
    CONFIG_CURSOR_UPDATED_SINCE, /* a watermark of (timestamp, id), with a look-back */
    CONFIG_CURSOR_SYNC_TOKEN,    /* an opaque token from the last page; invalid: resync */
    CONFIG_CURSOR_DELTA_LINK,    /* Graph's delta query: nextLink pages, then a deltaLink */
    CONFIG_CURSOR_EVENTS,        /* an event list read after the last event's id (Stripe) */
    CONFIG_CURSOR_SEARCH,        /* a search call with a body, from a watermark (HubSpot) */
};

enum config_page_kind {
    CONFIG_PAGE_NONE = 1, /* one answer holds everything */
    CONFIG_PAGE_NUMBER,   /* ?page=1, 2, ... until a short or empty page */
    CONFIG_PAGE_OFFSET,   /* ?offset=0, size, 2*size, ... */
    CONFIG_PAGE_CURSOR,   /* the answer names the next page's cursor */
    CONFIG_PAGE_LINK,     /* the Link header's rel="next" */
};

struct config_poll {
    int enabled;
    int64_t every_ms; /* between polls; 0 with a cron schedule */
    int has_cron;     /* the polls run on `cron` (UTC) instead of `every` */
    struct cron cron;
    double jitter;               /* a random share of every_ms added to each wait; 0.1 */
    struct config_endpoint list; /* "GET /contacts" */
    struct config_endpoint each; /* instead of a list: "GET /status?n={id}" per linked copy */
    char *items_path;            /* where an answer holds its records; NULL: it is the list */
    enum config_cursor_kind cursor;
    char *cursor_param;  /* the query parameter that carries the cursor */
    char *cursor_field;  /* UPDATED_SINCE: the records' timestamp field */
    char *cursor_format; /* UPDATED_SINCE: "ms" (default), "s" or "iso" */
    int64_t overlap_ms;  /* UPDATED_SINCE: look-back; default 2000 */
    char *token_path;    /* SYNC_TOKEN: where the last page holds the next token */
    int *resync_status;  /* SYNC_TOKEN, DELTA_LINK: answers that mean "start over"; {410} */
    size_t resync_status_count;
    char *delta_next_path;         /* DELTA_LINK: the next page's URL; "@odata.nextLink" */
    char *delta_path;              /* DELTA_LINK: the next round's URL; "@odata.deltaLink" */
    char *removed_path;            /* DELTA_LINK: an item holding it is a deletion; "@removed" */
    struct config_endpoint events; /* EVENTS: the event list, "GET /v1/events" */
    char *event_object_path;       /* EVENTS: where an event holds the record; "data.object" */
    char *event_type_path;         /* EVENTS: where an event holds its type; "type" */
    char *event_deleted_suffix;    /* EVENTS: the type's end that means a deletion; ".deleted" */
    struct config_endpoint search; /* SEARCH: "POST /crm/v3/objects/contacts/search" */
    struct cJSON *search_body;     /* SEARCH: the body; "{since}" and "{after}" filled; owned */
    char *search_next_path;        /* SEARCH: where an answer says more follow; paging.next.after */
    int64_t search_window;         /* SEARCH: results one query can page through; 10000 */
    enum config_page_kind page;
    char *page_param;           /* NUMBER: "page"; OFFSET: "offset"; CURSOR: "cursor" */
    char *size_param;           /* NULL, or the page-size parameter: "limit" */
    int64_t page_size;          /* default 100 */
    char *next_path;            /* CURSOR: where an answer holds the next cursor (none: the end) */
    char *has_more_path;        /* NULL, or where an answer says whether more pages follow */
    int64_t reconcile_every_ms; /* 0: reconcile only when asked (concord reconcile) */
    char **token_drop;          /* SYNC_TOKEN: query parameters of list left out of a read that
                                   sends a token (Google refuses timeMin and others with one) */
    size_t token_drop_count;
};

/*
 * The shape of a collection's records when it is not the system's JSON as
 * it comes (engine/shape.c): calendar events are read into the canonical
 * appointment (connectors/appt.h) plus "id" and "updated", and
 * appointments are written back as the system's events.
 */
enum config_shape {
    CONFIG_SHAPE_NONE = 0,
    CONFIG_SHAPE_GCAL_EVENT,  /* Google Calendar events (connectors/gcal_event.h) */
    CONFIG_SHAPE_GRAPH_EVENT, /* Microsoft Graph events (connectors/graph_event.h) */
};

/*
 * Numbered creates (collections.X.numbering): the target gives each new
 * copy the next number of a series and takes no idempotency key, so the
 * series' next number is read before each create, creates go one at a
 * time, and a create whose answer was lost is settled by reading it again
 * (SmartBill's invoices). engine/deliver.c, "Numbered creates".
 */
struct config_numbering {
    int enabled;
    struct config_endpoint next;    /* reads the series: "GET /series?cif={companyVatCode}" */
    char *items_path;               /* where its answer holds the series; NULL: the answer */
    char *item_series_path;         /* a series' name in an item: "name" */
    char *series_field;             /* the outgoing record's series: "seriesName" */
    char *number_path;              /* a series' next number in an item: "nextNumber" */
    struct config_endpoint confirm; /* a number's copy exists (2xx): {number} is filled in */
};

/* The field of a record that holds its event's time (event_time_path). */
#define CONFIG_EVENT_TIME_FIELD "@event_time"

struct config_collection {
    char *name;                   /* "system.collection", unique */
    char *short_name;             /* "collection" */
    struct config_system *system; /* borrowed from config->systems */
    char *model;
    char *id_path;             /* where the external id sits in the system's record; default "id" */
    char *record_path;         /* where the record sits in a webhook body; NULL = the body itself */
    char *match_jq;            /* NULL, or a jq condition that routes a webhook body here */
    char *deleted_jq;          /* NULL, or a jq condition: the webhook announces a delete */
    struct config_map map_in;  /* system -> model; entry_count 0: not a source */
    struct config_map map_out; /* model -> system; entry_count 0: not a target */
    struct config_endpoint create, update, remove;
    struct config_endpoint restore; /* brings back a deleted (cancelled) copy, by its old id,
                                       instead of a new create: SmartBill's invoice restore */
    char *created_id_path;          /* where a create's answer holds the new id; default "id"; paths
                                       joined by "," make a composite id "A/B" ({id.0}, {id.1}) */
    int created_id_from_request;    /* created_id_from: request: the paths address the body sent,
                                       for a target whose answer names nothing (a SmartBill payment) */
    char *idempotency_header; /* NULL, or the header that carries each write's idempotency key */
    char *idempotency_field;  /* NULL, or the body field that carries it (Oblio's idempotencyKey) */
    struct config_endpoint lookup; /* natural-key look-up before a create is sent again:
                                      "GET /contacts?email={contact_email}" */
    char *lookup_result_path;      /* where the look-up's answer holds its list; NULL: the answer */
    int lookup_missing_status;     /* 0, or the status (400-499) of a look-up's answer that says
                                      "no such copy": a look-up by a unique key (HubSpot's
                                      GET /contacts/{email}?idProperty=email answers 404) */
    struct config_numbering numbering;
    enum config_delete_mode on_delete;
    struct cJSON *archive; /* CONFIG_DELETE_ARCHIVE: {system field: value} set on the copy; owned */
    struct cJSON *remove_body;  /* NULL, or the JSON body of the delete call, whose string values
                                   "{id}" and "{id.N}" take the copy's id or its parts (Oblio's
                                   cancel: {cif, seriesName, number}); owned */
    struct cJSON *restore_body; /* NULL, or the JSON body of the restore call, filled in as
                                   remove_body is (Oblio's restore); owned */
    char *updated_at_path;      /* NULL, or where the system's record holds its last-change time,
                                   the source timestamp for the `newest` policy */
    char *event_time_path;      /* NULL, or where an event (around record_path) holds the time of
                                   the state it carries: Stripe's "created". Copied into the record
                                   as CONFIG_EVENT_TIME_FIELD, which updated_at then defaults to */
    /* on_conflict: a create answered conflict_status names the copy that
     * already exists (HubSpot's 409 "Contact already exists. Existing ID:
     * N"): it is linked and written as an update. 0: off. */
    int conflict_status;
    char *conflict_id_path;  /* where the answer holds that copy's id; or NULL */
    char *conflict_id_after; /* or the text of the error message that the id follows */
    struct config_poll poll;
    int webhook_hint;         /* hint: poll: a webhook only says "something changed"; poll now */
    char *deleted_id_path;    /* with hint: where an event for which deleted_when holds names the
                                 deleted copy (HubSpot's objectId); NULL */
    int issued;               /* copies are issued documents (the smartbill and oblio kinds):
                                 without an update call, a later change of the record is not
                                 written to one */
    int body_form;            /* body: form: writes go as application/x-www-form-urlencoded
                                 with brackets (Stripe), not JSON */
    char *string_values_path; /* NULL, or the object of a write whose values all go as strings
                                 (HubSpot's properties): 12 -> "12", null -> "" */
    enum config_shape shape;  /* how records are read and written; NONE: as the JSON comes */
    char *shape_events;       /* with a shape: the events' path under base_url, "/me/events" */
    /* SQL systems: the table (create/update/delete are then synthesized:
     * "INSERT /t", "UPDATE /t/{id}", "DELETE /t/{id}"; id is the key). */
    char *sql_table;
    char *sql_key;               /* default "id" */
    char *sql_soft_delete;       /* NULL: real deletes; else the column set on delete */
    char *sql_soft_delete_value; /* JSON text; "true" */
    char *sql_query;             /* NULL, or the SELECT read instead of the table */
    /* Kind caldav: the calendar, as its path or URL ("/ana/work/"), or its
     * display name or last path segment, found by discovery; NULL: the one
     * calendar of events that discovery finds (engine/caldav.c). */
    char *caldav_calendar;
    struct config_pos pos;
};

/* How a conflict (two systems changed one field to different values since
 * their bases) is settled (syncs.X.conflict). */
enum config_conflict_policy {
    CONFIG_CONFLICT_MANUAL = 1, /* parked in the inbox; the record keeps its value (the default) */
    CONFIG_CONFLICT_OWNER,      /* the field's first owner wins; the first origin without owners */
    CONFIG_CONFLICT_NEWEST,     /* the later source timestamp wins; within skew_ms: manual */
    CONFIG_CONFLICT_PREFER,     /* the system `prefer` names wins; between two others: manual */
};

/* How a natural key's value is normalised before records are compared. */
enum config_normalize {
    CONFIG_NORMALIZE_EXACT = 1, /* as it is (canonical text of the value) */
    CONFIG_NORMALIZE_TEXT,      /* trimmed, blanks collapsed, lower-cased */
    CONFIG_NORMALIZE_EMAIL,     /* trimmed and lower-cased */
    CONFIG_NORMALIZE_PHONE,     /* E.164: "+" and digits, national numbers get `country` */
    CONFIG_NORMALIZE_VAT,       /* upper-cased, without blanks, dots and dashes */
};

/* One natural key of a sync (syncs.X.match): a model field and its form. */
struct config_match_key {
    char *field;
    enum config_normalize normalize; /* default: EMAIL for a field named "email", else EXACT */
    char *country;                   /* PHONE: calling code for national numbers ("40"); NULL */
    struct config_pos pos;
};

/* The systems that may change one field (syncs.X.owners.FIELD), strongest first. */
struct config_field_owner {
    char *field;
    char **systems;
    size_t system_count;
    struct config_pos pos;
};

/* Which records belong in one collection (syncs.X.filters.COLLECTION): a jq
 * condition over the model record. */
struct config_filter {
    struct config_collection *collection; /* borrowed */
    char *jq;
    struct config_pos pos;
};

struct config_sync {
    char *name;
    char *model;
    char **origins; /* system names allowed to change records */
    size_t origin_count;
    struct config_collection **collections; /* borrowed from config->collections */
    size_t collection_count;
    /* Per-field owners; a field listed here may be changed only by its owners,
     * every other field by the origins. */
    struct config_field_owner *owners;
    size_t owner_count;
    enum config_conflict_policy conflict;
    char *prefer;    /* CONFIG_CONFLICT_PREFER: the system that wins */
    int64_t skew_ms; /* CONFIG_CONFLICT_NEWEST: clock-skew tolerance; default 2000 */
    int write_back;  /* 1: a refused field is written back to the system that strayed */
    struct config_match_key *match; /* natural keys for first contact; none: never match */
    size_t match_count;
    struct config_filter *filters;
    size_t filter_count;
    /* syncs.X.automations: the fields automations may set on its records;
     * automation_fields_given 0: every field (the default). */
    char **automation_fields;
    size_t automation_field_count;
    int automation_fields_given;
    struct config_pos pos;
};

/* One bearer token of the admin API (admin.tokens.NAME). */
struct config_admin_token {
    char *name;           /* who it stands for in the audit log: "alice", "ci" */
    struct secret secret; /* the token; compared in constant time, never shown */
    struct config_pos pos;
};

/*
 * The admin API (admin:; docs/admin-api.md). Without tokens it is off:
 * /api/ answers 404. Without listen it is served on the webhooks'
 * listener to clients on this machine only (loopback peers); with listen,
 * on its own listener, to whoever reaches it.
 */
struct config_admin {
    char *listen; /* NULL, or "host:port" of its own listener */
    struct config_admin_token *tokens;
    size_t token_count;
    struct config_pos pos;
};

/* What starts an automation (automations.X.on), as a set of events. */
#define CONFIG_ON_CREATED 1u /* a record of the model is made */
#define CONFIG_ON_UPDATED 2u /* a live record changes (a restore counts) */
#define CONFIG_ON_DELETED 4u /* a record is deleted */

/* One side of a field transition ("status: pending -> paid"). */
struct config_values {
    int any;       /* "*" or "any": every value, a missing one too */
    char **values; /* otherwise each value's text: "paid", "12", "true", "null" */
    size_t count;
};

enum config_action_kind {
    CONFIG_ACTION_SET = 1, /* fields of the record itself */
    CONFIG_ACTION_CREATE,  /* a new record of a model, through that model's syncs */
    CONFIG_ACTION_UPDATE,  /* fields of existing records of a model */
    CONFIG_ACTION_HTTP,    /* a templated request to a configured system */
    CONFIG_ACTION_NOTIFY,  /* a message to a webhook, or an e-mail */
    CONFIG_ACTION_WAIT,    /* a delay, or a time relative to a field */
};

/*
 * One action of an automation. Values (fields, body, record, match) are
 * map entries over the run's context ({"new", "old", "current", "source",
 * "record", ...}; docs/automations.md): a scalar in the YAML is a constant,
 * {path: P} copies, {jq: E} computes. Templates (request paths, texts) hold
 * {dotted.path} placeholders into the same context.
 */
struct config_action {
    enum config_action_kind kind;
    char *model;              /* SET, CREATE, UPDATE: the model whose records are written */
    struct config_map fields; /* SET, CREATE, UPDATE: model field <- value */
    struct config_map record; /* UPDATE: one entry (target "record"): the record's id; or none */
    struct config_map match;  /* UPDATE: model field <- value the records must hold; or none */
    char *system;             /* HTTP: the system the request goes to */
    struct config_endpoint request; /* HTTP: "POST /accounts/{new.account}/activate" */
    struct config_map body;         /* HTTP: the JSON body (dotted targets nest); none: no body */
    char *idempotency_header;       /* HTTP: NULL, or the header of a key per run and action */
    struct secret webhook;          /* NOTIFY: a Slack-compatible webhook URL; empty: none */
    char *text;                     /* NOTIFY: the message, a template */
    char *subject;                  /* NOTIFY by e-mail: the subject, a template */
    char *smtp_url;                 /* NOTIFY by e-mail: the server (else alerts.email's) */
    char *mail_from;
    char **mail_to; /* NULL when the action sends no e-mail */
    size_t mail_to_count;
    char *smtp_user;
    struct secret smtp_password;
    int64_t wait_ms;  /* WAIT: the delay; with wait_field the offset (negative: before it) */
    char *wait_field; /* WAIT: NULL, or the timestamp or date field the time is relative to */
    struct config_pos pos;
};

/* When a record changes like this, do that (automations.NAME). */
struct config_automation {
    char *name;
    char *model;
    unsigned on;               /* CONFIG_ON_* events; 0 with a transition */
    char *field;               /* a transition: the field; NULL for events */
    struct config_values from; /* a transition: what the old value may be */
    struct config_values to;   /* a transition: what the new value must be */
    char **conditions;         /* jq over the context; all must hold (truthy) */
    size_t condition_count;
    struct config_action *actions;
    size_t action_count;
    struct config_pos pos;
};

struct config {
    char *path;         /* the file it came from */
    char *listen;       /* "127.0.0.1:8080" */
    char *store_url;    /* "sqlite:concord.db"; relative paths are relative to the file */
    char *log_level;    /* NULL or "info" ... */
    char *log_format;   /* NULL, "json", "text" */
    unsigned log_trace; /* subsystems traced (core/log.h enum log_trace_sub) */
    struct config_system *systems;
    size_t system_count;
    struct config_model *models;
    size_t model_count;
    struct config_collection *collections;
    size_t collection_count;
    struct config_sync *syncs;
    size_t sync_count;
    int64_t tombstone_ttl_ms;  /* how long deleted records are kept for restore; default 30 d */
    int64_t echo_window_ms;    /* how long concord's past writes are recognised as echoes; 10 min */
    struct config_admin admin; /* the admin API; off without tokens */
    struct config_automation *automations;
    size_t automation_count;
    int64_t automation_depth; /* runs caused by automations' own changes deeper than this
                                 are cut (a loop); default 5 */
    struct config_health health;
    struct config_alerts alerts;
    /* retention: how long processed journal rows, versions (not the
     * current one), attempts, settled inbox entries and finished
     * automation runs are kept; 0: forever */
    int64_t keep_journal_ms, keep_versions_ms, keep_attempts_ms, keep_inbox_ms, keep_runs_ms;
};

/*
 * Read and validate the file at path. Secret references are resolved.
 * On success *out is the caller's, released with config_free(). On failure
 * *out is untouched and err holds every problem found, one per line, each
 * "file:line:col: message" with a hint; err->kind is ERROR_INVALID for a bad
 * config, ERROR_IO when the file cannot be read.
 */
MUST_CHECK int config_load(const char *path, struct config **out, struct error *err);

/* Flags for config_load_flags(). */
#define CONFIG_LOAD_NO_SECRETS 1u /* check secret references' form, read none of them */

/*
 * config_load() with flags. CONFIG_LOAD_NO_SECRETS is for commands that
 * read state without talking to any system (status, failed, history): they
 * work where the daemon's secrets are not in the environment. Secrets then
 * hold only their reference.
 */
MUST_CHECK int config_load_flags(const char *path, unsigned flags, struct config **out,
                                 struct error *err);

/*
 * The same from bytes already in memory (name is used in messages). Secrets
 * are resolved from the environment and the filesystem as config_load() does.
 */
MUST_CHECK int config_parse(const char *text, size_t len, const char *name, struct config **out,
                            struct error *err);

/*
 * The full list of problems of the last failed load is longer than a struct
 * error can hold: config_load_report() does the same as config_load() but
 * writes every diagnostic line to *report (malloc()ed, caller frees; NULL when
 * valid). Returns the number of problems (0 when valid), -1 when the file
 * cannot be read (err set).
 */
MUST_CHECK int config_check(const char *path, char **report, struct error *err);

/*
 * Parse a duration as the config writes it: a whole number of milliseconds
 * ("250", also what an unquoted YAML integer gives) or a whole number with
 * one unit, ms, s, m, h or d ("250ms", "5s", "5m", "2h", "1d"); no sign,
 * blanks or fractions. Returns 0 with *out_ms set, or -1 (*out_ms untouched)
 * when s is not of that form or the value does not fit in INT64_MAX / 4 ms.
 */
MUST_CHECK int config_duration_ms(const char *s, int64_t *out_ms);

/*
 * A time relative to now as a poll's list may hold it between braces
 * ("{now-30d}", docs/config.md): the len bytes at s are "now", "now-D" or
 * "now+D" with D a duration (config_duration_ms). Returns 0 with *out_ms
 * the offset from now (negative for the past), or -1.
 */
MUST_CHECK int config_now_offset(const char *s, size_t len, int64_t *out_ms);

/* Release a config and everything it owns. Accepts NULL. */
void config_free(struct config *cfg);

/* Look-ups by name; NULL if there is none. The result is borrowed from cfg. */
const struct config_system *config_system_find(const struct config *cfg, const char *name);
const struct config_collection *config_collection_find(const struct config *cfg, const char *name);
const struct config_model *config_model_find(const struct config *cfg, const char *name);

/* The field of a model by name, or NULL. */
const struct config_field *config_model_field(const struct config_model *m, const char *name);

#endif
