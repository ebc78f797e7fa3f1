/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_config.c — any byte string given to the config parser must
 * either load or fail with a message; it must never crash, hang or leak.
 * Exercises src/config/config_parse.c, config_schema.c and the files of its
 * walk (config_value.c ... config_calendar.c, config_admin.c,
 * config_automation.c), config_secret.c and config.c (config_parse, the
 * report, config_free). Run
 * under ASan and UBSan.
 * Inputs are capped at 64 KiB: past that only libyaml's speed is tested.
 */
/* link: config */

#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/error.h"

#define FUZZ_MAX_BYTES (64 * 1024)

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct error err = {0};
    struct config *cfg = NULL;

    if (size > FUZZ_MAX_BYTES)
        return 0;
    if (config_parse((const char *)data, size, "fuzz.yaml", &cfg, &err) == 0) {
        config_free(cfg);
        return 0;
    }
    if (err.kind == ERROR_NONE || err.msg[0] == '\0')
        abort(); /* a failure that does not explain itself is a bug */
    return 0;
}
