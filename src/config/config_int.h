/* SPDX-License-Identifier: MIT */

/*
 * What the files of src/config/ share and nothing else includes: the node
 * tree that config_parse.c builds from libyaml's events, the list of
 * problems every stage adds to, and the entry points of each stage:
 *
 *   config_file.c        path -> bytes
 *   config_parse.c       bytes -> struct config_node tree (line:col kept)
 *   config_schema.c      tree -> struct config: the walk's order, the top level,
 *                        models; the rest of the walk is split by section:
 *     config_value.c       typed getters over nodes that report what is wrong
 *     config_jq.c          whether a jq program compiles
 *     config_system.c      systems.X: kinds, base_url, the SQL kinds, the order
 *     config_policy.c      retry, rate_limit, breaker, delete_guard
 *     config_auth.c        auth: headers, bearer, basic, oauth2
 *     config_webhook.c     webhook and its signature
 *     config_collection.c  collections: maps, calls, ids, on_delete, SQL tables
 *     config_poll.c        a collection's poll: schedule, list, cursor, pages
 *     config_sync.c        syncs: origins, owners, conflicts, match, filters
 *     config_stripe.c, config_invoicing.c (smartbill, oblio), config_hubspot.c,
 *     config_calendar.c (caldav, google_calendar, microsoft_graph): the named
 *                          kinds, which fill in what a vendor's API fixes
 *     config_admin.c, config_automation.c: the admin: and automations: sections
 *   config_secret.c      "env:NAME" / "file:PATH" -> struct secret
 *   config.c             the public functions of config.h that tie them together
 */
#ifndef CONCORD_CONFIG_CONFIG_INT_H
#define CONCORD_CONFIG_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/compiler.h"

struct cJSON;
struct error;
struct secret;

/* A config larger than this is refused (config_file.c). */
#define CONFIG_MAX_BYTES (4L * 1024 * 1024)

/* Mappings and sequences nested deeper than this are refused (config_parse.c). */
#define CONFIG_MAX_DEPTH 64

enum config_node_kind {
    CONFIG_NODE_SCALAR = 1,
    CONFIG_NODE_MAPPING,
    CONFIG_NODE_SEQUENCE,
};

/*
 * One YAML node. A mapping's kids alternate key, value (kid_count is even;
 * keys are scalars, no key appears twice); a sequence's kids are its items.
 */
struct config_node {
    enum config_node_kind kind;
    int line;      /* 1-based */
    int col;       /* 1-based */
    char *value;   /* CONFIG_NODE_SCALAR: NUL-terminated, no NUL inside */
    size_t len;    /* strlen(value) */
    int is_quoted; /* written '...', "...", | or >: never null, bool or number */
    struct config_node **kids;
    size_t kid_count;
};

/* One problem found in a config; see config_diags_report(). */
struct config_diag {
    int line;
    int col;
    char *msg;  /* one line, no "file:line:col: " */
    size_t seq; /* order of discovery: ties of line:col keep it */
};

/* Every problem of one load. Zero it before use; config_diags_fini() after. */
struct config_diags {
    struct config_diag *items;
    size_t count;
    size_t cap;
};

/*
 * Record a problem at line:col. The message is made one line (control
 * characters become '?') and bounded. Must never be given a secret value.
 */
void config_diag_add(struct config_diags *d, int line, int col, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

/* Release what d holds; d may be reused. */
void config_diags_fini(struct config_diags *d);

/*
 * Every problem as "name:line:col: message\n", sorted by line, then column,
 * then order of discovery. Returns a malloc()ed string the caller frees.
 */
char *config_diags_report(struct config_diags *d, const char *name);

/*
 * Read the file at path, at most CONFIG_MAX_BYTES. On success *out_text is
 * the caller's to free() (NUL-terminated) and *out_len its length; on
 * failure neither is touched and err says why (ERROR_IO, or ERROR_INVALID
 * for a file too large).
 */
MUST_CHECK int config_read_file(const char *path, char **out_text, size_t *out_len,
                                struct error *err);

/*
 * Parse len bytes of YAML into a node tree. Returns the root (the caller's,
 * freed with config_node_free()), or NULL after adding the problem to d: a
 * syntax error, an alias, a duplicate key, nesting deeper than
 * CONFIG_MAX_DEPTH, an empty file. Only the first document is read; more are
 * a problem.
 */
struct config_node *config_yaml_parse(const char *text, size_t len, struct config_diags *d);

/* Release a node tree. Accepts NULL. */
void config_node_free(struct config_node *n);

/*
 * A JSON value for a node: scalars by YAML's plain rules (unquoted true and
 * false are booleans, null, ~ and nothing are null, numbers are numbers,
 * anything else and every quoted scalar is a string), mappings as objects,
 * sequences as arrays. The result is the caller's (cJSON_Delete()).
 */
struct cJSON *config_node_json(const struct config_node *n);

/*
 * Walk the tree and fill a new struct config. name is the file name used in
 * config->path; base_dir (NULL for none) is the absolute directory of the
 * file, against which relative sqlite paths and secret files are resolved.
 * flags are CONFIG_LOAD_*. Every problem is added to d. Always returns a
 * config (the caller's, freed with config_free()), complete only when d
 * stayed empty.
 */
struct config *config_schema_build(const struct config_node *root, const char *name,
                                   const char *base_dir, unsigned flags, struct config_diags *d);

/*
 * ---- The schema's walk, shared by config_schema.c and the files it calls ----
 *
 * Each parse function takes the walk's context, the node it reads and the
 * dotted path of that node for messages ("systems.crm.retry"), and fills
 * part of c->cfg. None fails: every problem is added to c->diags with
 * CONFIG_PROBLEM at the node it is about, and the walk goes on. Outputs
 * are written only when the value is good; strings replaced are freed.
 * Nothing here is thread-safe: one walk belongs to one thread.
 */

/* One walk of the tree: where problems go and the config being filled. */
struct config_ctx {
    struct config_diags *diags;
    struct config *cfg;
    const char *base_dir; /* for relative sqlite paths and secret files; NULL: none */
    size_t hint_budget;   /* edit distances "did you mean" may still compute */
    unsigned flags;       /* CONFIG_LOAD_* */
};

/* Record a problem at node n: CONFIG_PROBLEM(c, n, "%s: ...", path, ...). */
#define CONFIG_PROBLEM(c, n, ...) config_diag_add((c)->diags, (n)->line, (n)->col, __VA_ARGS__)

/* The integers a key accepts, both ends included. */
struct config_range {
    int64_t lo;
    int64_t hi;
};

/* ---- config_value.c: nodes ---- */

/* "parent.key" (or "key" when parent is ""), a new string the caller frees. */
char *config_join(const char *parent, const char *key);

/* The value at key of map; NULL when absent or when map is NULL or not a mapping. */
const struct config_node *config_node_get(const struct config_node *map, const char *key);

/* The key node of key in map, for problems about the key itself; NULL if absent. */
const struct config_node *config_node_key(const struct config_node *map, const char *key);

/* 1 when n is an unquoted empty scalar, "~" or "null". */
int config_node_is_null(const struct config_node *n);

/*
 * How a node reads in a message: a value is quoted and cut (written into
 * out, which is returned), a collection named ("a mapping").
 */
const char *config_node_show(const struct config_node *n, char *out, size_t len);

/* The index of s in list, or -1. */
int config_in_list(const char *s, const char *const *list, size_t n);

/*
 * "; hint: did you mean "x"?" (written into out) when a name is close
 * enough to word to be a typo, else "". Spends c->hint_budget.
 */
const char *config_did_you_mean(struct config_ctx *c, const char *word, const char *const *names,
                                size_t n, char *out, size_t len);

/* Report every key of map not in allowed, with a hint. */
void config_check_keys(struct config_ctx *c, const struct config_node *map, const char *path,
                       const char *const *allowed, size_t n);

/* Whether n is a mapping; if not, says so. With n NULL, says nothing. */
int config_want_map(struct config_ctx *c, const struct config_node *n, const char *path);

/* Report key missing from the mapping parent. */
void config_missing(struct config_ctx *c, const struct config_node *parent, const char *path,
                    const char *key);

/* Names of systems, collections and models go into "s.c" and URLs. */
void config_check_name(struct config_ctx *c, const struct config_node *k, const char *path,
                       const char *what);

/* An OAuth2 client's client_id, client_secret and refresh_token (config_auth.c). */
void config_oauth_client(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_oauth2 *o);

/* Whether s is a name concord takes for a system, collection, model or
 * automation: letters, digits, "_" and "-", at least one. */
int config_name_ok(const char *s);

/* RFC 9110 §5.6.2: whether s is a header name (a token). */
int config_header_name_ok(const char *s);

/* ---- config_value.c: typed values ---- */

/*
 * The get_ functions read the node n at path: 0 with *out set, or -1 after
 * saying why at n. The opt_ functions read key of map (path is the map's),
 * and do nothing when the key is absent.
 */
int config_get_str(struct config_ctx *c, const struct config_node *n, const char *path, char **out);
void config_opt_str(struct config_ctx *c, const struct config_node *map, const char *path,
                    const char *key, char **out);
int config_get_int(struct config_ctx *c, const struct config_node *n, const char *path,
                   struct config_range r, int64_t *out);
void config_opt_int(struct config_ctx *c, const struct config_node *map, const char *path,
                    const char *key, struct config_range r, int64_t *out);

/* A YAML boolean at key of map (unquoted true or false) into *out, when the key is there. */
void config_opt_bool(struct config_ctx *c, const struct config_node *map, const char *path,
                     const char *key, int *out);

/* A duration (config_duration_ms) of at least lo ms; as the getters above. */
int config_get_duration(struct config_ctx *c, const struct config_node *n, const char *path,
                        int64_t lo, int64_t *out);
void config_opt_duration(struct config_ctx *c, const struct config_node *map, const char *path,
                         const char *key, int64_t lo, int64_t *out);

/* A finite number from lo to hi (both included) at n; what says the range in the message. */
int config_get_number(struct config_ctx *c, const struct config_node *n, const char *path,
                      double lo, double hi, const char *what, double *out);

/* A share: a number from 0 to 1 ("0.25") or a percentage ("25%"). */
int config_get_share(struct config_ctx *c, const struct config_node *n, const char *path,
                     double *out);

/* The index of the value of key among choices, or -1 (reported unless absent). */
int config_opt_choice(struct config_ctx *c, const struct config_node *map, const char *path,
                      const char *key, const char *const *choices, size_t n);

/*
 * A secret reference at n into *out, resolved (only checked for form under
 * CONFIG_LOAD_NO_SECRETS). The scalar is never shown: if it is not a
 * reference, it may be the secret itself. out is the caller's to
 * secret_fini().
 */
int config_get_secret(struct config_ctx *c, const struct config_node *n, const char *path,
                      struct secret *out);

/* ---- config_jq.c ---- */

/*
 * Whether a jq program compiles: 0, or -1 with why filled ("jq does not
 * compile: ..."). Never runs the program.
 */
MUST_CHECK int config_jq_problem(const char *program, char *why, size_t why_len);

/* Report at n when its program does not compile. */
void config_check_jq(struct config_ctx *c, const struct config_node *n, const char *path);

/* A jq expression at key of map, checked to compile, into *out. */
void config_opt_jq(struct config_ctx *c, const struct config_node *map, const char *path,
                   const char *key, char **out);

/* ---- config_schema.c ---- */

/* The model called name, or NULL after saying so at n (with n NULL: silently). */
const struct config_model *config_ref_model(struct config_ctx *c, const struct config_node *n,
                                            const char *path, const char *name);

/* ---- config_system.c ---- */

/* systems: every system and its collections into c->cfg. */
void config_parse_systems(struct config_ctx *c, const struct config_node *v);

/* base_url at v: http:// or https://, its trailing slashes cut. */
void config_parse_base_url(struct config_ctx *c, const struct config_node *v, const char *path,
                           struct config_system *s);

/* The name a named kind is written with ("smartbill"). */
const char *config_profile_name(enum config_profile profile);

/*
 * The start of a named kind's http system: its profile, base_url (the
 * given one, else base_url), and auth refused: it authenticates with its
 * owner keys ("username and token").
 */
void config_profile_base(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_system *s, enum config_profile profile, const char *base_url,
                         const char *owner);

/* ---- config_policy.c ---- */

/*
 * retry: either delays (a list) or base_ms/cap_ms (exponential); without
 * either the default list stays. max_attempts defaults to what the list
 * allows, or to 8 for the exponential form, and is cut to what a list
 * allows (retry.h).
 */
void config_parse_retry(struct config_ctx *c, const struct config_node *v, const char *path,
                        struct config_system *s);

/* rate_limit: {rate, per, burst}. */
void config_parse_rate_limit(struct config_ctx *c, const struct config_node *v, const char *path,
                             struct config_rate_limit *rl);

/* rate_limited_status: [403, ...] — answers that mean "rate limited". */
void config_parse_limited_status(struct config_ctx *c, const struct config_node *v,
                                 const char *path, struct config_rate_limit *rl);

/*
 * A non-empty list of HTTP statuses 400..599 at v into *out and *count
 * (what they held is freed); example is the hint's list ("[403]").
 */
void config_parse_status_list(struct config_ctx *c, const struct config_node *v, const char *path,
                              const char *example, int **out, size_t *count);

/* breaker: off, or {failures, failure_rate, min_requests, window, cooldown}. */
void config_parse_breaker(struct config_ctx *c, const struct config_node *v, const char *path,
                          struct config_system *s);

/* delete_guard: off, or {max_count, max_share, min_count, window}. */
void config_parse_delete_guard(struct config_ctx *c, const struct config_node *v, const char *path,
                               struct config_system *s);

/* ---- config_auth.c ---- */

/* auth: headers, bearer, basic and oauth2 into s's auth headers and s->oauth2. */
void config_parse_auth(struct config_ctx *c, const struct config_node *v, const char *path,
                       struct config_system *s);

/*
 * Basic auth from the system's username (node user) and the secret at key
 * (its node sec_n): the one Authorization header of every request. The
 * encoded pair is a secret too, named by the secret's reference.
 */
void config_basic_auth(struct config_ctx *c, const char *path, const struct config_node *user,
                       const char *key, const struct config_node *sec_n, struct config_system *s);

/* A vendor kind's API key at path.key (node n) as s's only auth header,
 * "Authorization: Bearer <key>" (Stripe's api_key, HubSpot's token). */
void config_bearer_key(struct config_ctx *c, const struct config_node *n, const char *path,
                       const char *key, struct config_system *s);

/* Replace s's value by prefix + value (the ref stays: it is what a person may see). */
void config_secret_prefix(struct secret *s, const char *prefix);

/* RFC 4648 §4 base64 of len bytes, NUL-terminated, into a new buffer the caller frees. */
char *config_base64(const unsigned char *in, size_t len, size_t *out_len);

/* A URL that is absolute (http/https) or a path under the system's base_url. */
void config_get_url_or_path(struct config_ctx *c, const struct config_node *v, const char *path,
                            char **out);

/* ---- config_webhook.c ---- */

/* webhook: its path, delivery and reply headers, body limit and signature. */
void config_parse_webhook(struct config_ctx *c, const struct config_node *v, const char *path,
                          struct config_webhook *w);

/*
 * secret: one reference, or a list of up to CONFIG_SIG_MAX_SECRETS during a
 * rotation ([env:NEW, env:OLD]); a signature made with any of them passes.
 */
void config_parse_sig_secrets(struct config_ctx *c, const struct config_node *v, const char *path,
                              struct config_signature *sig);

/* ---- config_collection.c ---- */

/* collections: each collection of s into c->cfg->collections (sized by the caller). */
void config_parse_collections(struct config_ctx *c, const struct config_node *v, const char *path,
                              struct config_system *s);

/* "METHOD /path" at key of map into *ep, replacing what it held. */
void config_parse_endpoint(struct config_ctx *c, const struct config_node *map, const char *path,
                           const char *key, struct config_endpoint *ep);

/*
 * A named kind's call: method and path (taken: freed when unused) into
 * *ep, unless the operator gave one.
 */
void config_set_endpoint(struct config_endpoint *ep, const char *method, char *path);

/* ---- config_poll.c ---- */

/*
 * poll: sql is 1 for a table (no list, cursor or page), 2 for a profile's
 * collection (the list may be left to the profile), 3 for a calendar of a
 * caldav system (read by sync-collection: no list, cursor or page), 0
 * otherwise.
 */
void config_parse_poll(struct config_ctx *c, const struct config_node *v, const char *path,
                       struct config_poll *pl, int sql);

/* What an events cursor reads unless told otherwise: Stripe's feed. */
void config_poll_events_defaults(struct config_poll *pl);

/* ---- config_sync.c ---- */

/* syncs: every sync into c->cfg, after the systems. */
void config_parse_syncs(struct config_ctx *c, const struct config_node *v);

/*
 * ---- The named kinds ----
 *
 * config_<kind>_system() runs for systems.X of that kind before the common
 * keys; config_<kind>_collection() after each collection of such a system
 * is parsed (v a mapping; key its name's node), and fills in what the
 * operator did not say.
 */

/* config_stripe.c: kind stripe (docs/stripe.md). */
void config_stripe_system(struct config_ctx *c, const struct config_node *v, const char *path,
                          struct config_system *s);
void config_stripe_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                              struct config_collection *col, const struct config_node *key);

/* config_invoicing.c: kind smartbill (docs/invoicing.md). */
void config_smartbill_system(struct config_ctx *c, const struct config_node *v, const char *path,
                             struct config_system *s);
void config_smartbill_collection(struct config_ctx *c, const struct config_node *v,
                                 const char *path, struct config_collection *col,
                                 const struct config_node *key);

/* config_invoicing.c: kind oblio (docs/invoicing.md). */
void config_oblio_system(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_system *s);
void config_oblio_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                             struct config_collection *col, const struct config_node *key);

/* config_hubspot.c: kind hubspot (docs/hubspot.md). */
void config_hubspot_system(struct config_ctx *c, const struct config_node *v, const char *path,
                           struct config_system *s);
void config_hubspot_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                               struct config_collection *col, const struct config_node *key);

/*
 * config_calendar.c: kinds caldav, google_calendar and microsoft_graph
 * (docs/calendars.md). config_caldav_collection() runs inside the
 * collection's parse (it refuses the calls concord makes itself);
 * config_calendar_collection() is the collection of the other two.
 */
void config_caldav_system(struct config_ctx *c, const struct config_node *v, const char *path,
                          struct config_system *s);
void config_caldav_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                              struct config_collection *col);
void config_gcal_system(struct config_ctx *c, const struct config_node *v, const char *path,
                        struct config_system *s);
void config_graph_system(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_system *s);
void config_calendar_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                                struct config_collection *col, const struct config_node *key);

/*
 * The admin: section (config_admin.c) at v into cfg->admin; base_dir and
 * flags as for config_schema_build(). Every problem is added to d.
 */
void config_admin_parse(const struct config_node *v, struct config *cfg, const char *base_dir,
                        unsigned flags, struct config_diags *d);

/* Release what cfg->admin holds (config_admin.c). */
void config_admin_fini(struct config_admin *a);

/*
 * The automations: section (config_automation.c) of the tree at root into
 * cfg->automations, with automation_depth and each sync's automations key;
 * base_dir and flags as for config_schema_build(). Runs after the rest of
 * the schema: it refers to models, systems, syncs and alerts. Every
 * problem is added to d.
 */
void config_automations_parse(const struct config_node *root, struct config *cfg,
                              const char *base_dir, unsigned flags, struct config_diags *d);

/* Release cfg->automations and each sync's automation fields (config_automation.c). */
void config_automations_fini(struct config *cfg);

/* Release what a field map holds (config.c); m may be reused. */
void config_map_fini(struct config_map *m);

/* 1 when s has the form of a secret reference: "env:NAME" or "file:PATH". */
int config_secret_is_ref(const char *s);

/*
 * Resolve a reference (config_secret_is_ref() holds) into *out: the value of
 * the environment variable, or the file's bytes with one trailing newline
 * stripped. A relative file path is taken from base_dir when it is not NULL.
 * Returns 0, or -1 with why filled by a sentence that names the variable or
 * path and never the value; *out is then untouched.
 */
MUST_CHECK int config_secret_resolve(const char *ref, const char *base_dir, struct secret *out,
                                     char *why, size_t why_len);

/* Levenshtein distance of a and b, or a large number when either is long. */
size_t config_edit_distance(const char *a, const char *b);

#endif
