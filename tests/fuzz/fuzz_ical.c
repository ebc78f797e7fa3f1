/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_ical.c — any bytes given to the iCalendar reader must
 * either become an appointment or fail with ERROR_MAPPING and a message;
 * never crash, hang or leak. What it reads must survive the writers:
 *
 *   - appt_normalize() of the appointment gives it back unchanged;
 *   - appt_to_ical() writes it, and reading that text gives it back exactly
 *     (the same canonical JSON), and writing that again gives the same text;
 *   - appt_to_gcal() writes it (or fails with a message), and reading that
 *     back differs at most in what Google keeps for itself (organizer,
 *     sequence; in exceptions, their organizer);
 *   - appt_to_graph() writes it or fails with a message.
 *
 * Exercises src/connectors/ical.c, appt.c, gcal_event.c and graph_event.c,
 * with libical. Inputs are capped at 64 KiB.
 */
/* link: connectors */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "connectors/appt.h"
#include "connectors/gcal_event.h"
#include "connectors/graph_event.h"
#include "connectors/ical.h"
#include "core/error.h"
#include "model/value.h"

#define FUZZ_MAX_BYTES (64 * 1024)
#define DTSTAMP_S      1774000000

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
explained(const struct error *err)
{
    if (err->kind != ERROR_MAPPING || err->msg[0] == '\0')
        abort(); /* a failure that does not explain itself is a bug */
}

/* The organizers of a's exceptions dropped: Google does not carry them. */
static void
drop_exception_organizers(cJSON *a)
{
    cJSON *e;

    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(a, "exceptions"))
        cJSON_DeleteItemFromObjectCaseSensitive(e, "organizer");
}

static void
check_gcal(const cJSON *a)
{
    struct error err = {0};
    cJSON *ev = NULL, *inst = NULL, *back = NULL, *want;
    unsigned diff;

    if (appt_to_gcal(a, &ev, &inst, &err) != 0) {
        explained(&err);
        return;
    }
    if (appt_from_gcal(ev, inst, &back, &err) != 0)
        abort(); /* what we write, we must read */
    want = cJSON_Duplicate(a, 1);
    drop_exception_organizers(want);
    diff = appt_diff(want, back);
    if ((diff & ~(unsigned)(APPT_FIELD_ORGANIZER | APPT_FIELD_SEQUENCE | APPT_FIELD_EXCEPTIONS)) !=
        0)
        abort();
    cJSON_Delete(want);
    cJSON_Delete(ev);
    cJSON_Delete(inst);
    cJSON_Delete(back);
}

static void
check_graph(const cJSON *a)
{
    struct error err = {0};
    cJSON *ev = NULL, *inst = NULL, *back = NULL;

    if (appt_to_graph(a, &ev, &inst, &err) != 0) {
        explained(&err);
        return;
    }
    cJSON_AddItemToObject(ev, "iCalUId", cJSON_CreateString("fuzz"));
    if (appt_from_graph(ev, inst, &back, &err) != 0)
        abort(); /* what we write, we must read */
    cJSON_Delete(ev);
    cJSON_Delete(inst);
    cJSON_Delete(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct error err = {0};
    cJSON *a = NULL, *again = NULL, *b = NULL;
    char *text = NULL, *text2 = NULL;

    if (size > FUZZ_MAX_BYTES)
        return 0;
    if (appt_from_ical((const char *)data, size, &a, &err) != 0) {
        explained(&err);
        return 0;
    }
    if (appt_normalize(a, &again, &err) != 0 || !value_equal(a, again))
        abort();
    if (appt_to_ical(a, DTSTAMP_S, &text, &err) != 0)
        abort(); /* an appointment we read, we can write */
    if (appt_from_ical(text, strlen(text), &b, &err) != 0 || !value_equal(a, b))
        abort();
    if (appt_to_ical(b, DTSTAMP_S, &text2, &err) != 0 || strcmp(text, text2) != 0)
        abort();
    check_gcal(a);
    check_graph(a);
    free(text);
    free(text2);
    cJSON_Delete(a);
    cJSON_Delete(again);
    cJSON_Delete(b);
    return 0;
}
