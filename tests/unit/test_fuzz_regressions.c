/*
 * test_fuzz_regressions.c - replays every input in tests/fuzz/regressions/<name>/ (inputs that
 * once crashed a harness) and every seed in tests/fuzz/corpus/<name>/ through the very same
 * entry points the libFuzzer harnesses use (tests/fuzz/fuzz_<name>.c, included here without
 * their libFuzzer main), under the ordinary ASan+UBSan test build. A crash, a sanitizer report
 * or a broken harness invariant fails the test.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NO_MAIN
#include "../fuzz/fuzz_http.c"
#include "../fuzz/fuzz_ini.c"
#include "../fuzz/fuzz_ldif.c"
#include "../fuzz/fuzz_rules.c"
#include "../fuzz/fuzz_soap.c"

#define REPLAY_MAX_BYTES (4 * 1024 * 1024) /* no seed or regression input is larger */

static uint8_t *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        uint8_t *buf = malloc(REPLAY_MAX_BYTES);
        cr_assert_not_null(buf);
        *len = fread(buf, 1, REPLAY_MAX_BYTES, f);
        cr_assert(feof(f), "%s: larger than %d bytes", path, REPLAY_MAX_BYTES);
        fclose(f);
        return buf;
}

/* Replay every regular file of tests/fuzz/<kind>/<name>/; returns how many. */
static int replay_dir(const char *kind, const char *name, int (*one)(const uint8_t *, size_t))
{
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", INTYGSGW_SOURCE_DIR, kind, name);
        DIR *d = opendir(dir);
        if (!d)
                return 0; /* no regressions recorded for this harness */
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                        continue;
                char path[2048];
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                size_t len = 0;
                uint8_t *buf = slurp(path, &len);
                cr_assert_eq(one(buf, len), 0, "%s", path);
                free(buf);
                n++;
        }
        closedir(d);
        return n;
}

static void replay(const char *name, int (*one)(const uint8_t *, size_t))
{
        int seeds = replay_dir("corpus", name, one);
        int regs = replay_dir("regressions", name, one);
        cr_assert_gt(seeds, 0, "tests/fuzz/corpus/%s/ has no seeds", name);
        cr_log_info("%s: %d seeds, %d regressions replayed", name, seeds, regs);
}

Test(fuzz_regressions, http)
{
        fz_http_init();
        replay("http", fz_http_one);
        fz_http_fini();
}

Test(fuzz_regressions, soap)
{
        fz_soap_init();
        replay("soap", fz_soap_one);
        fz_soap_fini();
}

Test(fuzz_regressions, rules)
{
        fz_rules_init();
        replay("rules", fz_rules_one);
        fz_rules_fini();
}

Test(fuzz_regressions, ldif)
{
        fz_ldif_init();
        replay("ldif", fz_ldif_one);
        fz_ldif_fini();
}

Test(fuzz_regressions, ini)
{
        fz_ini_init();
        replay("ini", fz_ini_one);
        fz_ini_fini();
}

/* The harnesses' own checks can fail: a broken invariant aborts (here: a bad HTTP state). */
Test(fuzz_regressions, harness_invariants_abort, .signal = SIGABRT)
{
        fz_http_check(false, "deliberately broken (this test expects the abort)");
}
