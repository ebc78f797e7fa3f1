/* SPDX-License-Identifier: MIT */

/* The runner of check.h: a fork per case, a 30 s alarm (CONCORD_CHECK_TIMEOUT_S
 * for slower builds: scripts/tsan.sh), TAP on stdout. */

#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void
check_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "# %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

const char *
check_source_dir(void)
{
    const char *dir = getenv("CONCORD_SOURCE_DIR");

    return dir != NULL ? dir : ".";
}

static int
run_case(const struct check_case *c)
{
    pid_t pid;
    int status;

    fflush(stdout);
    pid = fork();
    if (pid == -1) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        const char *t = getenv("CONCORD_CHECK_TIMEOUT_S");
        long secs = t != NULL ? strtol(t, NULL, 10) : 30;

        alarm(secs > 0 && secs < 3600 ? (unsigned)secs : 30);
        c->fn();
        exit(0);
    }
    if (waitpid(pid, &status, 0) == -1)
        return -1;
    if (WIFSIGNALED(status))
        fprintf(stderr, "# %s: killed by signal %d\n", c->name, WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
    int count = 0, failed = 0, n = 0;

    for (const struct check_case *c = check_cases; c->name != NULL; c++)
        count++;
    if (argc > 1) {
        for (const struct check_case *c = check_cases; c->name != NULL; c++) {
            if (strcmp(c->name, argv[1]) == 0)
                return run_case(c) == 0 ? 0 : 1;
        }
        fprintf(stderr, "no case named %s\n", argv[1]);
        return 2;
    }
    printf("1..%d\n", count);
    for (const struct check_case *c = check_cases; c->name != NULL; c++) {
        int ok = run_case(c) == 0;

        printf("%s %d - %s\n", ok ? "ok" : "not ok", ++n, c->name);
        failed += !ok;
    }
    printf("# %d passed, %d failed\n", count - failed, failed);
    return failed ? 1 : 0;
}

uint64_t
check_seed(void)
{
    const char *env = getenv("CONCORD_TEST_SEED");
    uint64_t seed;

    if (env != NULL && env[0] != '\0')
        seed = strtoull(env, NULL, 10);
    else
        seed = (uint64_t)time(NULL);
    printf("# seed %llu (CONCORD_TEST_SEED)\n", (unsigned long long)seed);
    (void)fflush(stdout);
    return seed;
}

uint64_t
check_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int
check_below(uint64_t *s, int n)
{
    return (int)(check_rand(s) % (uint64_t)n);
}
