/* SPDX-License-Identifier: MIT */

/*
 * Compiler attributes, spelled once. Every other header uses these names, so
 * a port to another compiler touches only this file.
 */
#ifndef CONCORD_CORE_COMPILER_H
#define CONCORD_CORE_COMPILER_H

#define PRINTF_LIKE(fmt, first) __attribute__((format(printf, fmt, first)))
#define MUST_CHECK              __attribute__((warn_unused_result))
#define NORETURN                __attribute__((noreturn))
#define UNUSED                  __attribute__((unused))

#define ARRAY_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Assertions that hold in every build. They print the expression and abort. */
void compiler_assert_fail(const char *expr, const char *file, int line) NORETURN;

#define ASSERT(e) ((e) ? (void)0 : compiler_assert_fail(#e, __FILE__, __LINE__))

/*
 * Defensive branches that "cannot happen" (SQLite's ALWAYS/NEVER): they abort
 * in a debug build and let the caller recover in a release build.
 */
#ifdef NDEBUG
#define ALWAYS(e) (e)
#define NEVER(e)  (e)
#else
#define ALWAYS(e) ((e) ? 1 : (compiler_assert_fail(#e, __FILE__, __LINE__), 0))
#define NEVER(e)  ((e) ? (compiler_assert_fail(#e, __FILE__, __LINE__), 1) : 0)
#endif

#endif
