/*
 * fuzz_ini.c - libFuzzer harness for config_load (gateway/config.h): the input is written to
 * a memfd and loaded as /proc/self/fd/N, without opening the files it names (check_files
 * false: a fuzz input must not make the harness read arbitrary paths); a loaded config is
 * dumped as JSON and freed.
 * Owns: one FILE on /dev/null (process lifetime). One thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "fuzz_entry.h"

static FILE *fz_ini_null;

static void fz_ini_init(void)
{
        log_set_level(LOG_ERROR);
        fz_ini_null = fopen("/dev/null", "w");
        if (!fz_ini_null)
                abort();
}

static void fz_ini_fini(void)
{
        if (fz_ini_null)
                fclose(fz_ini_null);
        fz_ini_null = NULL;
}

/* Input: the configuration file. */
static int fz_ini_one(const uint8_t *data, size_t size)
{
        int fd = memfd_create("fuzz.ini", MFD_CLOEXEC);
        if (fd < 0)
                return 0;
        if (write(fd, data, size) != (ssize_t)size) {
                close(fd);
                return 0;
        }
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int nerr = -1;
        struct config *cfg = config_load(path, false, fz_ini_null, &nerr);
        close(fd);
        if ((cfg != NULL) != (nerr == 0)) {
                fprintf(stderr, "fuzz_ini: config %s with %d errors\n", cfg ? "loaded" : "refused",
                        nerr);
                abort();
        }
        if (cfg) {
                config_dump_json(cfg, fz_ini_null);
                config_free(cfg);
        }
        return 0;
}

FUZZ_ENTRY(ini)
