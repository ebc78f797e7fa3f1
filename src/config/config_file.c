/* SPDX-License-Identifier: MIT */

/*
 * Reading config files from disk. Parsing is in config_parse.c; this file only
 * turns a path into bytes, so the parser and its fuzzer never touch the
 * filesystem.
 */

#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_int.h"
#include "core/error.h"
#include "core/xmalloc.h"

int
config_read_file(const char *path, char **out_text, size_t *out_len, struct error *err)
{
    struct stat sb;
    char *text = NULL;
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return error_set_errno(err, ERROR_IO, "open %s", path);
    if (fstat(fd, &sb) == -1) {
        error_set_errno(err, ERROR_IO, "stat %s", path);
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        error_set(err, ERROR_IO, "open %s: is a directory", path);
        goto fail;
    }
    if (sb.st_size > CONFIG_MAX_BYTES) {
        error_set(err, ERROR_INVALID, "%s: %lld bytes; a config may have at most %ld", path,
                  (long long)sb.st_size, CONFIG_MAX_BYTES);
        goto fail;
    }

    text = xmalloc((size_t)sb.st_size + 1);
    while (len < (size_t)sb.st_size) {
        ssize_t n = read(fd, text + len, (size_t)sb.st_size - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            error_set_errno(err, ERROR_IO, "read %s", path);
            goto fail;
        }
        if (n == 0)
            break; /* the file shrank while we read it; use what is there */
        len += (size_t)n;
    }
    text[len] = '\0';
    close(fd);

    *out_text = text;
    *out_len = len;
    return 0;

fail:
    free(text);
    close(fd);
    return -1;
}
