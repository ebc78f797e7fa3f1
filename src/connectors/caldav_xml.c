/* SPDX-License-Identifier: MIT */

/*
 * CalDAV request bodies and multistatus answers (caldav_xml.h), with
 * libxml2 parsing the answers. Requests are a handful of fixed documents
 * with escaped text put in, so they are written as text. Answers are walked
 * as a tree, each element matched by namespace URI and local name.
 */

#include "connectors/caldav_xml.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"

#define NS_DAV    "DAV:"
#define NS_CALDAV "urn:ietf:params:xml:ns:caldav"
#define NS_CS     "http://calendarserver.org/ns/"

/* A request body is a few hundred bytes plus its hrefs. */
#define CALDAV_REQUEST_MAX ((size_t)16 * 1024 * 1024)

/* --- requests ------------------------------------------------------------- */

static const char xml_head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/* Append s with the five XML specials escaped. */
static void
put_escaped(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        const char *e = NULL;
        int rc;

        switch (*s) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&apos;";
            break;
        default:
            break;
        }
        rc = e != NULL ? buf_puts(b, e) : buf_append(b, s, 1);
        ASSERT(rc == 0); /* CALDAV_REQUEST_MAX is far above any request */
    }
}

static void
put(struct buf *b, const char *s)
{
    int rc = buf_puts(b, s);

    ASSERT(rc == 0);
}

char *
caldav_xml_propfind_principal(void)
{
    return xasprintf("%s<D:propfind xmlns:D=\"DAV:\">\n"
                     "  <D:prop><D:current-user-principal/></D:prop>\n"
                     "</D:propfind>\n",
                     xml_head);
}

char *
caldav_xml_propfind_home(void)
{
    return xasprintf("%s<D:propfind xmlns:D=\"DAV:\" xmlns:C=\"" NS_CALDAV "\">\n"
                     "  <D:prop><C:calendar-home-set/></D:prop>\n"
                     "</D:propfind>\n",
                     xml_head);
}

char *
caldav_xml_propfind_calendars(void)
{
    return xasprintf("%s<D:propfind xmlns:D=\"DAV:\" xmlns:C=\"" NS_CALDAV "\" xmlns:CS=\"" NS_CS
                     "\">\n"
                     "  <D:prop>\n"
                     "    <D:displayname/>\n"
                     "    <D:resourcetype/>\n"
                     "    <C:supported-calendar-component-set/>\n"
                     "    <CS:getctag/>\n"
                     "    <D:sync-token/>\n"
                     "  </D:prop>\n"
                     "</D:propfind>\n",
                     xml_head);
}

char *
caldav_xml_sync_collection(const char *sync_token, int with_data, unsigned limit)
{
    struct buf b;

    buf_init(&b, CALDAV_REQUEST_MAX);
    put(&b, xml_head);
    put(&b, "<D:sync-collection xmlns:D=\"DAV:\" xmlns:C=\"" NS_CALDAV "\">\n");
    if (sync_token == NULL || sync_token[0] == '\0') {
        put(&b, "  <D:sync-token/>\n");
    } else {
        put(&b, "  <D:sync-token>");
        put_escaped(&b, sync_token);
        put(&b, "</D:sync-token>\n");
    }
    put(&b, "  <D:sync-level>1</D:sync-level>\n");
    if (limit > 0) {
        char n[64];

        (void)snprintf(n, sizeof(n), "  <D:limit><D:nresults>%u</D:nresults></D:limit>\n", limit);
        put(&b, n);
    }
    put(&b, with_data ? "  <D:prop><D:getetag/><C:calendar-data/></D:prop>\n"
                      : "  <D:prop><D:getetag/></D:prop>\n");
    put(&b, "</D:sync-collection>\n");
    return buf_take(&b);
}

char *
caldav_xml_multiget(const char *const *hrefs, size_t count)
{
    struct buf b;

    buf_init(&b, CALDAV_REQUEST_MAX);
    put(&b, xml_head);
    put(&b, "<C:calendar-multiget xmlns:D=\"DAV:\" xmlns:C=\"" NS_CALDAV "\">\n");
    put(&b, "  <D:prop><D:getetag/><C:calendar-data/></D:prop>\n");
    for (size_t i = 0; i < count; i++) {
        put(&b, "  <D:href>");
        put_escaped(&b, hrefs[i]);
        put(&b, "</D:href>\n");
    }
    put(&b, "</C:calendar-multiget>\n");
    return buf_take(&b);
}

/* --- hrefs ---------------------------------------------------------------- */

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The '%' at p in normal form, into out: an escape of a character a path
 * segment may hold as it is (RFC 3986 §3.3 pchar, but ':', which could make
 * the path read as a URL) is decoded; another escape keeps its hex,
 * upper-cased; a '%' that starts no escape stands for itself, "%25".
 * Returns the bytes read at p; *w advances by those written.
 */
static size_t
normal_escape(const char *p, char *out, size_t *w)
{
    static const char kept[] = "-._~!$&'()*+,;=@";
    int hi = hex_value(p[1]), lo = hi >= 0 ? hex_value(p[2]) : -1;
    char c;

    if (hi < 0 || lo < 0) {
        out[(*w)++] = '%';
        out[(*w)++] = '2';
        out[(*w)++] = '5';
        return 1;
    }
    c = (char)(hi * 16 + lo);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        (c != '\0' && strchr(kept, c) != NULL)) {
        out[(*w)++] = c;
        return 3;
    }
    out[(*w)++] = '%';
    out[(*w)++] = "0123456789ABCDEF"[hi];
    out[(*w)++] = "0123456789ABCDEF"[lo];
    return 3;
}

char *
caldav_href_path(const char *href)
{
    const char *p = href, *colon = strstr(href, "://");
    size_t w = 0;
    char *out;

    /* An absolute URL: the path starts after the authority. */
    if (colon != NULL && strcspn(href, "/?#") > (size_t)(colon - href)) {
        p = strchr(colon + 3, '/');
        if (p == NULL)
            return xstrdup("/");
    }
    out = xcalloc(strlen(p) + 1, 3);
    while (*p != '\0') {
        if (*p == '%')
            p += normal_escape(p, out, &w);
        else
            out[w++] = *p++;
    }
    out[w] = '\0';
    return out;
}

/* Whether two normalised paths name one resource, ignoring a trailing '/'. */
static int
same_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

/* --- answers -------------------------------------------------------------- */

/* Whether node is the element ns:name. */
static int
is_el(const xmlNode *node, const char *ns, const char *name)
{
    return node != NULL && node->type == XML_ELEMENT_NODE && node->ns != NULL &&
           node->ns->href != NULL && strcmp((const char *)node->ns->href, ns) == 0 &&
           strcmp((const char *)node->name, name) == 0;
}

/* The first child element ns:name of parent; NULL if none. */
static xmlNode *
child(const xmlNode *parent, const char *ns, const char *name)
{
    for (xmlNode *c = parent ? parent->children : NULL; c != NULL; c = c->next) {
        if (is_el(c, ns, name))
            return c;
    }
    return NULL;
}

/* The text of node, malloc()ed; trimmed of white space unless raw. */
static char *
text_of(const xmlNode *node, int raw)
{
    xmlChar *t = xmlNodeGetContent(node);
    const char *s = t != NULL ? (const char *)t : "";
    size_t n;
    char *out;

    if (!raw) {
        while (isspace((unsigned char)*s))
            s++;
    }
    n = strlen(s);
    while (!raw && n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    out = xstrndup(s, n);
    xmlFree(t);
    return out;
}

/* "HTTP/1.1 404 Not Found" -> 404; 0 if it is not a status line. */
static int
status_code(const xmlNode *node)
{
    char *t = text_of(node, 0);
    const char *sp = strchr(t, ' ');
    int code = 0;

    if (sp != NULL && isdigit((unsigned char)sp[1]) && isdigit((unsigned char)sp[2]) &&
        isdigit((unsigned char)sp[3]) && (sp[4] == '\0' || sp[4] == ' '))
        code = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
    free(t);
    return code;
}

static void
take_text(char **field, const xmlNode *node, int raw)
{
    if (node == NULL || *field != NULL)
        return;
    *field = text_of(node, raw);
}

/* The href inside a property (current-user-principal, calendar-home-set). */
static void
take_href(char **field, const xmlNode *prop)
{
    take_text(field, child(prop, NS_DAV, "href"), 0);
}

static void
read_component_set(struct caldav_response *r, const xmlNode *set)
{
    r->has_vevent = 0;
    for (xmlNode *c = set->children; c != NULL; c = c->next) {
        xmlChar *name;

        if (!is_el(c, NS_CALDAV, "comp"))
            continue;
        name = xmlGetNoNsProp(c, (const xmlChar *)"name");
        if (name != NULL && strcasecmp((const char *)name, "VEVENT") == 0)
            r->has_vevent = 1;
        xmlFree(name);
    }
}

/* The properties of a 2xx propstat. */
static void
read_prop(struct caldav_response *r, const xmlNode *prop)
{
    const xmlNode *v;

    take_text(&r->etag, child(prop, NS_DAV, "getetag"), 0);
    take_text(&r->calendar_data, child(prop, NS_CALDAV, "calendar-data"), 1);
    take_text(&r->displayname, child(prop, NS_DAV, "displayname"), 0);
    take_text(&r->ctag, child(prop, NS_CS, "getctag"), 0);
    take_text(&r->sync_token, child(prop, NS_DAV, "sync-token"), 0);
    take_href(&r->principal_href, child(prop, NS_DAV, "current-user-principal"));
    take_href(&r->home_href, child(prop, NS_CALDAV, "calendar-home-set"));
    v = child(prop, NS_DAV, "resourcetype");
    if (v != NULL) {
        r->is_collection = child(v, NS_DAV, "collection") != NULL;
        r->is_calendar = child(v, NS_CALDAV, "calendar") != NULL;
        if (r->is_calendar && child(prop, NS_CALDAV, "supported-calendar-component-set") == NULL)
            r->has_vevent = 1;
    }
    v = child(prop, NS_CALDAV, "supported-calendar-component-set");
    if (v != NULL)
        read_component_set(r, v);
}

static void
response_fini(struct caldav_response *r)
{
    free(r->href);
    free(r->path);
    free(r->etag);
    free(r->calendar_data);
    free(r->principal_href);
    free(r->home_href);
    free(r->displayname);
    free(r->ctag);
    free(r->sync_token);
    memset(r, 0, sizeof(*r));
}

static void
read_response(const xmlNode *node, const char *self, struct caldav_response *r)
{
    const xmlNode *own = child(node, NS_DAV, "status");
    int first = 0, first_ok = 0;

    memset(r, 0, sizeof(*r));
    take_text(&r->href, child(node, NS_DAV, "href"), 0);
    if (r->href == NULL)
        r->href = xstrdup("");
    r->path = caldav_href_path(r->href);
    r->is_self = self != NULL && same_path(r->path, self);
    for (xmlNode *ps = node->children; ps != NULL; ps = ps->next) {
        int code;

        if (!is_el(ps, NS_DAV, "propstat"))
            continue;
        code = status_code(child(ps, NS_DAV, "status"));
        if (first == 0)
            first = code;
        if (code < 200 || code > 299)
            continue;
        if (first_ok == 0)
            first_ok = code;
        read_prop(r, child(ps, NS_DAV, "prop"));
    }
    r->status = own != NULL ? status_code(own) : first_ok != 0 ? first_ok : first;
}

void
caldav_multistatus_fini(struct caldav_multistatus *ms)
{
    for (size_t i = 0; i < ms->response_count; i++)
        response_fini(&ms->responses[i]);
    free(ms->responses);
    free(ms->sync_token);
    memset(ms, 0, sizeof(*ms));
}

/* Parse body, refusing a DOCTYPE (no entity is ever expanded) and the
 * network (no external anything). NULL when it is not well-formed XML. */
static xmlDoc *
parse(const char *body, size_t len)
{
    xmlDoc *doc;

    if (len > (size_t)CALDAV_XML_MAX_BYTES) /* also keeps len an int */
        return NULL;
    if (memmem(body, len, "<!DOCTYPE", 9) != NULL || memmem(body, len, "<!ENTITY", 8) != NULL)
        return NULL;
    xmlInitParser();
    doc = xmlReadMemory(body, (int)len, "caldav.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                            XML_PARSE_NOCDATA);
    if (doc != NULL && (doc->intSubset != NULL || doc->extSubset != NULL)) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

int
caldav_xml_parse_multistatus(const char *body, size_t len, const char *request_path,
                             struct caldav_multistatus *out, struct error *err)
{
    xmlDoc *doc;
    xmlNode *root;
    char *self = request_path != NULL ? caldav_href_path(request_path) : NULL;
    size_t cap = 0;

    memset(out, 0, sizeof(*out));
    if (len > (size_t)CALDAV_XML_MAX_BYTES) {
        free(self);
        return error_set(err, ERROR_PERMANENT, "caldav: multistatus of %zu bytes; at most %d", len,
                         CALDAV_XML_MAX_BYTES);
    }
    doc = parse(body, len);
    root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
    if (!is_el(root, NS_DAV, "multistatus")) {
        error_set(err, ERROR_PERMANENT, "caldav: %s",
                  doc == NULL ? "multistatus: not XML (or has a DOCTYPE)"
                              : "not a DAV:multistatus");
        goto fail;
    }
    for (xmlNode *c = root->children; c != NULL; c = c->next) {
        struct caldav_response r;

        if (is_el(c, NS_DAV, "sync-token")) {
            take_text(&out->sync_token, c, 0);
            continue;
        }
        if (!is_el(c, NS_DAV, "response"))
            continue;
        if (out->response_count == CALDAV_XML_MAX_RESPONSES) {
            error_set(err, ERROR_PERMANENT, "caldav: multistatus: more than %d responses",
                      CALDAV_XML_MAX_RESPONSES);
            goto fail;
        }
        read_response(c, self, &r);
        /* RFC 6578 §3.6: a 507 on the collection itself means "truncated". */
        if (r.status == 507 && (self == NULL || r.is_self)) {
            out->is_truncated = 1;
            response_fini(&r);
            continue;
        }
        if (out->response_count == cap) {
            cap = cap ? cap * 2 : 16;
            out->responses = xreallocarray(out->responses, cap, sizeof(*out->responses));
        }
        out->responses[out->response_count++] = r;
    }
    xmlFreeDoc(doc);
    free(self);
    return 0;

fail:
    if (doc != NULL)
        xmlFreeDoc(doc);
    free(self);
    caldav_multistatus_fini(out);
    return -1;
}

int
caldav_xml_parse_error(const char *body, size_t len, struct caldav_error_body *out)
{
    static const struct {
        const char *ns, *name;
        enum caldav_condition condition;
    } known[] = {
        {NS_DAV, "valid-sync-token", CALDAV_CONDITION_VALID_SYNC_TOKEN},
        {NS_DAV, "number-of-matches-within-limits", CALDAV_CONDITION_NUMBER_OF_MATCHES},
        {NS_CALDAV, "no-uid-conflict", CALDAV_CONDITION_NO_UID_CONFLICT},
    };
    xmlDoc *doc;
    xmlNode *root, *c;

    memset(out, 0, sizeof(*out));
    if (body == NULL || len == 0)
        return 0;
    doc = parse(body, len);
    root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
    if (!is_el(root, NS_DAV, "error")) {
        if (doc != NULL)
            xmlFreeDoc(doc);
        return 0;
    }
    out->condition = CALDAV_CONDITION_OTHER;
    for (c = root->children; c != NULL && c->type != XML_ELEMENT_NODE; c = c->next)
        ;
    if (c != NULL) {
        (void)snprintf(out->name, sizeof(out->name), "%s", (const char *)c->name);
        for (size_t i = 0; i < ARRAY_COUNT(known); i++) {
            if (is_el(c, known[i].ns, known[i].name))
                out->condition = known[i].condition;
        }
        if (out->condition == CALDAV_CONDITION_NO_UID_CONFLICT)
            take_href(&out->href, c);
    }
    xmlFreeDoc(doc);
    return 1;
}

void
caldav_error_body_fini(struct caldav_error_body *e)
{
    free(e->href);
    memset(e, 0, sizeof(*e));
}
