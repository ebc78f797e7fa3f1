/* SPDX-License-Identifier: MIT */

/*
 * syncgate: an LD_PRELOAD shim for the end-to-end tests. An fsync or
 * fdatasync of a SQLite WAL (a file whose name ends in "-wal") waits while
 * the file named by SYNCGATE_HOLD exists (up to a minute), and fails with
 * EIO while the file named by SYNCGATE_FAIL exists. Other files pass
 * through. With it a test sees what concord does while its commits are
 * written but not yet on disk, and when the disk refuses them.
 * SYNCGATE_DELAY_US adds that many microseconds to every sync of a WAL:
 * a slower disk, for bench/run.sh (BENCH_FSYNC_DELAY_US).
 */

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
is_wal(int fd)
{
    char link[64], path[4096];
    ssize_t n;

    (void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof(path) - 1);
    if (n < 4)
        return 0;
    path[n] = '\0';
    return strcmp(path + n - 4, "-wal") == 0;
}

/* 0 to go on with the real call, -1 (errno set) to fail it. */
static int
gate(int fd)
{
    const char *hold = getenv("SYNCGATE_HOLD"), *fail = getenv("SYNCGATE_FAIL");
    const char *delay = getenv("SYNCGATE_DELAY_US");
    struct timespec tick = {0, 10 * 1000 * 1000};
    long us = delay != NULL ? strtol(delay, NULL, 10) : 0;

    if (!is_wal(fd))
        return 0;
    if (us > 0) {
        struct timespec d = {us / 1000000, (us % 1000000) * 1000};

        (void)nanosleep(&d, NULL);
    }
    for (int i = 0; hold != NULL && i < 6000 && access(hold, F_OK) == 0; i++)
        (void)nanosleep(&tick, NULL);
    if (fail != NULL && access(fail, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* The next definition of name: dlsym() gives an object pointer, which
 * ISO C does not convert to a function pointer; POSIX makes the copy good. */
static int (*next_sync(const char *name))(int)
{
    void *sym = dlsym(RTLD_NEXT, name);
    int (*fn)(int);

    memcpy(&fn, &sym, sizeof(fn));
    return fn;
}

int
fdatasync(int fd)
{
    return gate(fd) == -1 ? -1 : next_sync("fdatasync")(fd);
}

int
fsync(int fd)
{
    return gate(fd) == -1 ? -1 : next_sync("fsync")(fd);
}
