/* SPDX-License-Identifier: MIT */

/* The Link header's rel="next" (http_link.h). */

#include "http/http_link.h"

#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"

/* Whether the parameters between p and end name rel next: rel=next or
 * rel="next", or "next" among the space-separated relations of a quoted
 * rel. */
static int
rel_next(const char *p, const char *end)
{
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end, *eq;

        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        eq = memchr(p, '=', (size_t)(stop - p));
        if (eq != NULL && eq - p == 3 && strncasecmp(p, "rel", 3) == 0) {
            const char *v = eq + 1, *ve = stop;

            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (v < ve && *v == '"') {
                v++;
                if (ve > v && ve[-1] == '"')
                    ve--;
            }
            while (v < ve) {
                const char *sp = memchr(v, ' ', (size_t)(ve - v));
                const char *we = sp ? sp : ve;

                if (we - v == 4 && strncasecmp(v, "next", 4) == 0)
                    return 1;
                v = we + (sp ? 1 : 0);
            }
        }
        p = semi ? semi + 1 : end;
    }
    return 0;
}

char *
http_link_next(const char *link)
{
    const char *p = link;

    while (p != NULL && *p) {
        const char *lt = strchr(p, '<'), *gt, *end;

        if (lt == NULL || (gt = strchr(lt, '>')) == NULL)
            return NULL;
        /* The link's parameters run to the next comma outside the <uri>. */
        end = strchr(gt, ',');
        if (end == NULL)
            end = gt + strlen(gt);
        if (gt > lt + 1 && rel_next(gt + 1, end))
            return xstrndup(lt + 1, (size_t)(gt - lt - 1));
        p = *end ? end + 1 : end;
    }
    return NULL;
}
