/* SPDX-License-Identifier: MIT */

/*
 * A secret that the operator provides: an auth token, a password, a webhook
 * signing key. The config names where it comes from (env:NAME, file:PATH);
 * the value is read once at load and lives only here.
 *
 * There is deliberately no function that formats a secret into text for a
 * person: code that needs the bytes asks for them with secret_bytes() and
 * hands them straight to the library that uses them (OpenSSL, libcurl).
 */
#ifndef CONCORD_CORE_SECRET_H
#define CONCORD_CORE_SECRET_H

#include <stddef.h>

struct secret {
    char *ref;   /* where it came from, "env:CRM_TOKEN": safe to show */
    char *value; /* the bytes, NUL-terminated; never logged */
    size_t len;
};

/* The bytes of s (borrowed, valid while s lives). "" if s holds nothing. */
const char *secret_bytes(const struct secret *s);

/* Wipe and release what s holds; s may be reused. Accepts NULL. */
void secret_fini(struct secret *s);

#endif
