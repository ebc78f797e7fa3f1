/* SPDX-License-Identifier: MIT */

/* Inside the store: the schema's migrations. Only src/store/ includes this. */
#ifndef CONCORD_STORE_STORE_INT_H
#define CONCORD_STORE_STORE_INT_H

#include "core/compiler.h"

/* How many migrations exist. */
int store_schema_count(void);

/* The SQL of migration n (0-based); borrowed, static. */
const char *store_schema_migration(int n);

#endif
