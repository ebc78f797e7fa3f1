/* SPDX-License-Identifier: MIT */

/*
 * What the files of src/config/ share and nothing else includes: the node
 * tree that config_parse.c builds from libyaml's events, the list of
 * problems every stage adds to, and the entry points of each stage:
 *
 *   config_file.c    path -> bytes
 *   config_parse.c   bytes -> struct config_node tree (line:col kept)
 *   config_schema.c  tree -> struct config (keys, types, references, jq)
 *   config_secret.c  "env:NAME" / "file:PATH" -> struct secret
 *   config.c         the public functions of config.h that tie them together
 */
#ifndef CONCORD_CONFIG_CONFIG_INT_H
#define CONCORD_CONFIG_CONFIG_INT_H

#include <stddef.h>

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

/*
 * Whether a jq program compiles (config_schema.c): 0, or -1 with why
 * filled ("jq does not compile: ..."). Never runs the program.
 */
MUST_CHECK int config_jq_problem(const char *program, char *why, size_t why_len);

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
