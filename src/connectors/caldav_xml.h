/* SPDX-License-Identifier: MIT */

/*
 * CalDAV's XML (EXTERNAL-APIS.md §7): the request bodies a CalDAV client
 * sends (WebDAV PROPFIND, RFC 4918; CalDAV calendar-multiget, RFC 4791;
 * sync-collection, RFC 6578) and the answers it reads (207 multistatus,
 * and DAV:error bodies that name a failed precondition). Elements are
 * matched by namespace and local name, never by prefix: "D:", "d:" and a
 * default xmlns="DAV:" are all the same to this file. It does no HTTP
 * (the caller sends the bodies with the method and Depth each one names)
 * and no iCalendar (calendar-data is handed out as text for ical.h).
 *
 * Thread: any thread, once libxml2 is initialised (it initialises itself
 * on first use; a threaded program calls xmlInitParser() at start-up, as
 * libxml2 asks).
 */
#ifndef CONCORD_CONNECTORS_CALDAV_XML_H
#define CONCORD_CONNECTORS_CALDAV_XML_H

#include <stddef.h>

#include "core/compiler.h"

struct error;

/* An answer body longer than this is refused before it is parsed. */
#define CALDAV_XML_MAX_BYTES (64 * 1024 * 1024)
/* A multistatus with more responses than this is refused. */
#define CALDAV_XML_MAX_RESPONSES 100000

/*
 * Request bodies. Each returns a malloc()ed UTF-8 XML document the caller
 * frees; send it with Content-Type: application/xml; charset=utf-8.
 *
 * caldav_xml_propfind_principal: PROPFIND, Depth 0, on the server's root or
 *   its /.well-known/caldav: asks for DAV:current-user-principal.
 * caldav_xml_propfind_home: PROPFIND, Depth 0, on the principal: asks for
 *   CALDAV:calendar-home-set.
 * caldav_xml_propfind_calendars: PROPFIND, Depth 1, on the home: asks each
 *   member for displayname, resourcetype,
 *   supported-calendar-component-set, CS:getctag and sync-token.
 */
char *caldav_xml_propfind_principal(void);
char *caldav_xml_propfind_home(void);
char *caldav_xml_propfind_calendars(void);

/*
 * REPORT sync-collection, Depth 0, on a calendar: what changed since
 * sync_token (NULL or "" for everything: the first sync; "0" is a real
 * token). Asks for getetag, and calendar-data too when with_data. limit > 0
 * asks the server for at most that many results (DAV:limit; servers may
 * answer with a 507 truncation instead, see caldav_multistatus). Tokens are
 * XML-escaped. Returns a malloc()ed document.
 */
char *caldav_xml_sync_collection(const char *sync_token, int with_data, unsigned limit);

/*
 * REPORT calendar-multiget, Depth 1, on a calendar: getetag and
 * calendar-data of each of the count hrefs (paths as the server gave
 * them; XML-escaped here). Returns a malloc()ed document.
 */
char *caldav_xml_multiget(const char *const *hrefs, size_t count);

/* One DAV:response of a multistatus. Strings are NULL when not given. */
struct caldav_response {
    char *href;          /* as the server wrote it: a path or an absolute URL */
    char *path;          /* caldav_href_path(href): use it to compare hrefs */
    int status;          /* its HTTP status: 200 (or another 2xx) when it has
                            properties, 404 for a removed resource, 0 if none */
    int is_self;         /* the href is the collection the request went to */
    char *etag;          /* DAV:getetag, as written (quotes and W/ kept) */
    char *calendar_data; /* CALDAV:calendar-data: iCalendar text for ical.h */
    /* Answers to the PROPFINDs above: */
    char *principal_href; /* DAV:current-user-principal's href */
    char *home_href;      /* CALDAV:calendar-home-set's (first) href */
    char *displayname;    /* DAV:displayname */
    char *ctag;           /* CS:getctag (http://calendarserver.org/ns/) */
    char *sync_token;     /* DAV:sync-token, the property of a collection */
    int is_collection;    /* resourcetype holds DAV:collection */
    int is_calendar;      /* resourcetype holds CALDAV:calendar */
    int has_vevent;       /* a calendar that takes VEVENTs: its
                             supported-calendar-component-set names VEVENT, or
                             it has no such property (RFC 4791 §5.2.3: all) */
};

/* A parsed 207 answer. Release with caldav_multistatus_fini(). */
struct caldav_multistatus {
    struct caldav_response *responses; /* in document order; the 507 of a
                                          truncated sync is not among them */
    size_t response_count;
    char *sync_token; /* the new DAV:sync-token of a sync-collection report */
    int is_truncated; /* the server answered 507 for the collection itself
                         (RFC 6578 §3.6): more changes wait; repeat the report
                         with sync_token until this is 0 */
};

/*
 * Parse a multistatus body of len bytes. request_path is the href the
 * request went to (a path or a URL; NULL if unknown): the response for it is
 * marked is_self, and a 507 for it marks the answer truncated. Without it,
 * any 507 response marks it truncated. A property counts only from a
 * propstat whose status is 2xx (a 404 propstat lists what the resource does
 * not have). A response's status is its own DAV:status when it has one,
 * else that of its first 2xx propstat, else that of its first propstat.
 *
 * On success out is filled (zero it first; release it with
 * caldav_multistatus_fini()). On failure returns -1 with ERROR_PERMANENT
 * ("caldav: multistatus: ..."): not XML, a DOCTYPE (refused, so no entity
 * can expand), a root that is not DAV:multistatus, over the limits above;
 * out is then empty.
 */
MUST_CHECK int caldav_xml_parse_multistatus(const char *body, size_t len, const char *request_path,
                                            struct caldav_multistatus *out, struct error *err);

/* Release what ms holds; ms is then empty. Accepts an empty ms. */
void caldav_multistatus_fini(struct caldav_multistatus *ms);

/* The precondition a DAV:error body names (RFC 4918 §16, RFC 6578 §3.2). */
enum caldav_condition {
    CALDAV_CONDITION_NONE = 0,          /* not a DAV:error body */
    CALDAV_CONDITION_VALID_SYNC_TOKEN,  /* DAV:valid-sync-token: the token is
                                           invalid or expired; sync from scratch */
    CALDAV_CONDITION_NUMBER_OF_MATCHES, /* DAV:number-of-matches-within-limits */
    CALDAV_CONDITION_NO_UID_CONFLICT,   /* CALDAV:no-uid-conflict: the UID is
                                           already used by href */
    CALDAV_CONDITION_OTHER,             /* another one, named in name */
};

struct caldav_error_body {
    enum caldav_condition condition;
    char name[64]; /* the element's local name ("valid-sync-token"); "" if none */
    char *href;    /* no-uid-conflict: the resource that has the UID; else NULL */
};

/*
 * Read the body of a 403/409/507 answer. Returns 1 with *out filled when it
 * is a DAV:error document, 0 when it is anything else (HTML, empty, not
 * XML): not an error, the caller classifies by status alone. Release with
 * caldav_error_body_fini().
 */
int caldav_xml_parse_error(const char *body, size_t len, struct caldav_error_body *out);

/* Release what e holds. */
void caldav_error_body_fini(struct caldav_error_body *e);

/*
 * The path of an href in one spelling: "https://host:8443/cal/a%2Db.ics" and
 * "/cal/a-b.ics" both give "/cal/a-b.ics". The scheme and authority of an
 * absolute URL are dropped; percent-escapes of characters a path segment may
 * hold as they are (RFC 3986 §3.3: letters, digits, "-._~!$&'()*+,;=@") are
 * decoded, so "ana%40example.com" is "ana@example.com", and the others keep
 * their escape with upper-case hex ("%2F", "%20"), and a '%' that starts no
 * escape becomes "%25"; a trailing '/' stays (it
 * marks a collection). The result is still a valid path. Returns a
 * malloc()ed string.
 */
char *caldav_href_path(const char *href);

#endif
