/* SPDX-License-Identifier: MIT */

/* concord's main(): the command table, and nothing else. */

#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        puts("concord 0.1.0");
        return 0;
    }
    fprintf(stderr, "usage: concord COMMAND [ARGS]\n");
    return 2;
}
