/* SPDX-License-Identifier: MIT */

/* The secret holder of secret.h: values are wiped before they are freed. */

#include "core/secret.h"

#include <stdlib.h>
#include <string.h>

const char *
secret_bytes(const struct secret *s)
{
    return s != NULL && s->value != NULL ? s->value : "";
}

void
secret_fini(struct secret *s)
{
    if (s == NULL)
        return;
    if (s->value != NULL) {
        explicit_bzero(s->value, s->len);
        free(s->value);
    }
    free(s->ref);
    s->ref = NULL;
    s->value = NULL;
    s->len = 0;
}
