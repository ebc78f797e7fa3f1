/* SPDX-License-Identifier: MIT */
/*
 * OAuth2 access tokens for the systems whose config has auth.oauth2.
 *
 * One struct oauth serves every thread that sends requests (the delivery
 * thread and the poll thread). oauth_header() hands out the current
 * "Bearer TOKEN" of a system; when there is none, or it expires within the
 * system's margin, the caller fetches a new one from the token endpoint
 * while any other caller for the same system waits for that one answer:
 * never two refreshes of one system at once (single flight). Tokens, and
 * refresh tokens rotated by the provider, are kept in the store, so a
 * restart neither asks for a token nor loses a rotated refresh token.
 *
 * A token endpoint that refuses (400 invalid_grant, 401 invalid_client)
 * is remembered for a second, so a burst of requests draws one refusal,
 * not one each; the error says what the endpoint said, never a secret.
 */
#ifndef CONCORD_CONNECTORS_OAUTH_H
#define CONCORD_CONNECTORS_OAUTH_H

#include <stdint.h>

#include "core/compiler.h"

struct config;
struct config_system;
struct error;
struct oauth;

/*
 * The token cache of cfg's OAuth2 systems, with its own store connection
 * (store_url). *out is NULL, and 0 returned, when no system uses OAuth2.
 */
MUST_CHECK int oauth_new(const struct config *cfg, struct oauth **out, struct error *err);
void oauth_free(struct oauth *o);

/*
 * "Bearer TOKEN" for sys into *value (malloc()ed; free with oauth_value_free()).
 * Blocks while this or another thread fetches a token (at most the
 * system's timeout). Returns 0, or -1 with err (ERROR_TRANSIENT: the
 * endpoint failed or refused; the message says why).
 */
MUST_CHECK int oauth_header(struct oauth *o, const struct config_system *sys, char **value,
                            struct error *err);

/* Wipe and free a value oauth_header() gave. Accepts NULL. */
void oauth_value_free(char *value);

/*
 * sys answered 401 to a request sent with value: that token is no good.
 * The next oauth_header() fetches another (unless one already replaced it).
 */
void oauth_reject(struct oauth *o, const struct config_system *sys, const char *value);

/* How many tokens were fetched for sys since oauth_new() (for status and tests). */
int64_t oauth_refresh_count(struct oauth *o, const struct config_system *sys);

/*
 * The consent step (concord auth): the URL a person opens to allow access,
 * with redirect_uri and state (malloc()ed), and the exchange of the code
 * the redirect brought for tokens, which are stored. Both return -1 with
 * err when sys has no authorize_url or the endpoint refuses.
 */
MUST_CHECK int oauth_consent_url(const struct config_system *sys, const char *redirect_uri,
                                 const char *state, char **out, struct error *err);
MUST_CHECK int oauth_exchange_code(const struct config *cfg, const struct config_system *sys,
                                   const char *code, const char *redirect_uri, struct error *err);

#endif
