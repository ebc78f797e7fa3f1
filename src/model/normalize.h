/* SPDX-License-Identifier: MIT */

/*
 * Natural keys: the text two records are matched by when a record arrives
 * from a system for the first time and may already exist under another id
 * (the same customer by email, the same company by VAT code). Two spellings
 * of one key normalise to the same text; a value that cannot be a key gives
 * NULL, and a NULL key matches nothing.
 *
 * Each kind reads a JSON string or number; null, a missing value, booleans,
 * arrays and objects give no key, and so does a value that is empty after
 * normalising. Only ASCII is folded or trimmed: other bytes (UTF-8) are kept
 * as they are, except where a kind refuses them (phone numbers). Inputs may
 * be of any length; the work is linear in it.
 *
 *   NORMALIZE_EXACT  a string as it is; a number as its canonical text
 *                    (value_canonical_text(): 1, 1.0 and 1e0 give "1"), so
 *                    the string "1" and the number 1 match
 *   NORMALIZE_TEXT   "  Hello \t World " -> "hello world"
 *   NORMALIZE_EMAIL  "  Ana@Example.COM " -> "ana@example.com"; no key
 *                    unless exactly one '@' has text on both sides
 *   NORMALIZE_PHONE  E.164 (see normalize_key())
 *   NORMALIZE_VAT    "ro 123.456-78" -> "RO12345678"; a number must be a
 *                    whole one, read as its digits
 *
 * Thread: pure functions; any thread.
 */
#ifndef CONCORD_MODEL_NORMALIZE_H
#define CONCORD_MODEL_NORMALIZE_H

struct cJSON;

enum normalize_kind {
    NORMALIZE_EXACT = 1, /* the value's canonical text (value_canonical_text for non-strings; a
                            string as it is) */
    NORMALIZE_TEXT,      /* trimmed, runs of whitespace collapsed to one space, ASCII lower-cased */
    NORMALIZE_EMAIL,     /* trimmed, lower-cased (ASCII); must contain exactly one '@' with text on
                            both sides, else no key */
    NORMALIZE_PHONE,     /* E.164 */
    NORMALIZE_VAT,       /* upper-cased ASCII, without blanks, dots, dashes, slashes */
};

/*
 * The normalised key of value (a cJSON string or number, borrowed), as a
 * malloc()ed string the caller frees; NULL when the value gives no usable
 * key (null, missing, empty after normalising, or not a phone number) or
 * kind is not one of the above.
 *
 * country: the calling code for national phone numbers ("40"; a leading '+'
 * is allowed), or NULL (or "") when unknown. Only NORMALIZE_PHONE reads it.
 *
 * Phone numbers: a string, or a whole non-negative number read as its
 * digits. Blanks, '-', '.', '/', '(' and ')' are ignored, and so is a "(0)"
 * trunk right after an international country code ("+40 (0)722 123 456").
 * A trailing extension introduced by "ext", "x" or "#" (any case) and made
 * of digits is dropped: "0722 123 456 ext. 12". Any other character, a '+'
 * that does not start the number, or a bad extension gives NULL.
 *   - "+" or "00" first: international; the key is "+" and the digits.
 *     A country code cannot start with 0, so "+0..." gives NULL.
 *   - otherwise national: with country, one leading '0' (the trunk prefix)
 *     is dropped and "+" country put in front ("0722 123 456" ->
 *     "+40722123456"); a country that is not 1 to 3 digits, the first not
 *     0, gives NULL. Without country, the key is the digits as they are,
 *     without "+" ("(0722) 123.456" -> "0722123456"), so two spellings of
 *     one national number still match, though not its international form.
 * The key must hold 6 to 15 digits, else NULL.
 */
char *normalize_key(enum normalize_kind kind, const struct cJSON *value, const char *country);

#endif
