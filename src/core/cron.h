/* SPDX-License-Identifier: MIT */

/*
 * Cron schedules for polls: the five-field expression "minute hour
 * day-of-month month day-of-week" as Vixie cron reads it, and the next time
 * one fires. Pure: no clock, no allocation, no global state, so any thread
 * may call these at any time.
 *
 * Time zone: UTC only. concord carries no time zone database, so
 * "0 9 * * *" fires at 09:00 UTC whatever the host's TZ says, and there are
 * no daylight-saving gaps or repeats to reason about.
 */
#ifndef CONCORD_CORE_CRON_H
#define CONCORD_CORE_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

/*
 * A parsed schedule: one bit set per field, bit v set when the value v
 * matches. A plain value: copy it freely; it owns nothing.
 *
 * dom_star and dow_star record whether the field's text began with '*'
 * ("*", "*\/2", "*,5"), which is what Vixie cron tests for its day rule:
 * when neither is set, a day matches if its day-of-month OR its day-of-week
 * does ("0 0 1 * mon": the 1st, and every Monday); when either is set, both
 * must match ("0 0 *\/2 * mon": odd days that are Mondays).
 */
struct cron {
    uint64_t minute; /* bits 0-59 */
    uint32_t hour;   /* bits 0-23 */
    uint32_t dom;    /* bits 1-31: day of the month */
    uint16_t month;  /* bits 1-12: jan = 1 */
    uint8_t dow;     /* bits 0-6: sunday = 0 (the text's 7 is stored as 0) */
    int dom_star;    /* 1: the day-of-month field began with '*' */
    int dow_star;    /* 1: the day-of-week field began with '*' */
};

/*
 * Parse a cron expression: five fields separated by blanks,
 *
 *   minute 0-59   hour 0-23   day-of-month 1-31   month 1-12   day-of-week 0-7
 *
 * each a comma-separated list of items: a value ("5"), a range ("1-5"), '*'
 * (the whole range), or a range or '*' with a step ("1-30/7", "*\/15"; a
 * step is 1 up to the field's maximum). Months may be named jan-dec and
 * days of the week sun-sat, in any case, also as range ends ("mon-fri");
 * day of the week 7 is Sunday, like 0. As in Vixie cron, a range does not
 * wrap ("fri-mon" is an error) and a step needs a range ("5/15" is an
 * error: write "5-59/15"). Blanks around the expression are ignored.
 *
 * Instead of the five fields, text may be one macro (any case): @hourly
 * ("0 * * * *"), @daily and @midnight ("0 0 * * *"), @weekly
 * ("0 0 * * 0"), @monthly ("0 0 1 * *"), @yearly and @annually
 * ("0 0 1 1 *"). @reboot is refused: it has no next time.
 *
 * Returns 0 with *out filled, or -1 with *out untouched, a one-line reason
 * in why ("hour 24 is out of range 0-23", NUL-terminated, cut to why_len)
 * and *bad_at set to the byte offset in text of what is wrong: the value,
 * range, step or list item at fault within its field, the field itself when
 * there is one too many, the end of text when fields are missing. why and
 * bad_at may be NULL. An expression that parses may still never fire
 * ("0 0 31 2 *"); cron_next() tells.
 */
MUST_CHECK int cron_parse(const char *text, struct cron *out, char *why, size_t why_len,
                          size_t *bad_at);

/*
 * The first minute boundary strictly after after_ms (Unix time in ms, UTC,
 * any value) at which c matches, in Unix ms; -1 if there is none. None
 * means the schedule can never fire, for no date exists that it allows
 * ("0 0 31 2 *", "0 0 30 2 *"), which is found without a search; or, at
 * the far end of int64_t, that the answer would not fit. Any schedule that
 * can fire does so within 400 years of any time (the Gregorian calendar
 * repeats every 146097 days), so a leap-day schedule such as "0 0 29 2 *"
 * is answered across 2100, which is no leap year.
 *
 * The search skips whole months, days and hours that cannot match: its
 * cost is bounded by a few thousand steps, whatever the schedule. A
 * hand-made struct cron is read safely: bits outside the ranges above are
 * ignored (a dow bit 7 counts as Sunday) and an empty field never matches.
 */
int64_t cron_next(const struct cron *c, int64_t after_ms);

#endif
