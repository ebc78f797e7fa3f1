/* SPDX-License-Identifier: MIT */

/*
 * Secret references of the config: "env:NAME" reads an environment variable,
 * "file:PATH" reads a file (a Kubernetes or systemd credential) and strips
 * one trailing newline, the one an editor or `echo` leaves. The value goes
 * straight into a struct secret (core/secret.h) and never into a message:
 * every sentence here names the variable or the path only.
 *
 * Which keys are secrets, and the "written as a literal" check, are the
 * schema's business (config_value.c, config_get_secret()).
 */

#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_int.h"
#include "core/secret.h"
#include "core/xmalloc.h"

/* A secret file larger than this is surely the wrong file. */
#define SECRET_MAX_BYTES 65536

static int
env_name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    }
    return 1;
}

int
config_secret_is_ref(const char *s)
{
    if (strncmp(s, "env:", 4) == 0)
        return env_name_ok(s + 4);
    if (strncmp(s, "file:", 5) == 0)
        return s[5] != '\0';
    return 0;
}

static void
why_errno(char *why, size_t why_len, const char *what, const char *path, int e)
{
    char text[128];

    /* The GNU strerror_r returns its text, which may not be in text. */
    (void)snprintf(why, why_len, "%s %s: %s", what, path, strerror_r(e, text, sizeof(text)));
}

/*
 * O_NONBLOCK and the regular-file check keep a path to a FIFO or a device
 * from hanging or flooding the load.
 */
static int
read_secret_file(const char *path, struct secret *out, char *why, size_t why_len)
{
    struct stat sb;
    char *data;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    if (fd == -1) {
        why_errno(why, why_len, "cannot open secret file", path, errno);
        return -1;
    }
    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size > SECRET_MAX_BYTES) {
        (void)snprintf(why, why_len, "secret file %s is not a regular file of at most %d bytes",
                       path, SECRET_MAX_BYTES);
        close(fd);
        return -1;
    }
    data = xmalloc((size_t)sb.st_size + 1);
    while (len < (size_t)sb.st_size) {
        ssize_t n = read(fd, data + len, (size_t)sb.st_size - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            why_errno(why, why_len, "cannot read secret file", path, errno);
            explicit_bzero(data, len);
            free(data);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > 0 && data[len - 1] == '\n')
        len--;
    if (len > 0 && data[len - 1] == '\r')
        len--; /* a file written on Windows: "\r\n" is one newline */
    data[len] = '\0';
    out->value = data;
    out->len = len;
    return 0;
}

int
config_secret_resolve(const char *ref, const char *base_dir, struct secret *out, char *why,
                      size_t why_len)
{
    struct secret s = {0};

    if (strncmp(ref, "env:", 4) == 0) {
        /* Config loads run before worker threads start, or on the reload
         * thread while no one changes the environment.
         * NOLINTNEXTLINE(concurrency-mt-unsafe) */
        const char *v = getenv(ref + 4);

        if (v == NULL) {
            (void)snprintf(why, why_len,
                           "environment variable %s is not set; hint: export it before starting "
                           "concord",
                           ref + 4);
            return -1;
        }
        if (v[0] == '\0') {
            (void)snprintf(why, why_len, "environment variable %s is empty", ref + 4);
            return -1;
        }
        s.len = strlen(v);
        s.value = xstrndup(v, s.len);
    } else {
        const char *path = ref + 5;
        char *full = NULL;

        if (path[0] != '/' && base_dir != NULL)
            full = xasprintf("%s/%s", base_dir, path);
        if (read_secret_file(full != NULL ? full : path, &s, why, why_len) == -1) {
            free(full);
            return -1;
        }
        free(full);
        if (s.len == 0) {
            secret_fini(&s);
            (void)snprintf(why, why_len, "secret file %s is empty", path);
            return -1;
        }
    }
    s.ref = xstrdup(ref);
    *out = s;
    return 0;
}
