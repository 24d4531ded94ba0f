/*
 * bench_stats.c - follow-up statistics at national volume: loads synthetic certificates
 * (default 5,000,000 over 24 months, about two years of FK7804 nationally) through
 * stats_record_intyg (struct intyg built here, NOT through XML validation), then times every
 * report at unit, region and country level. Prints ingest rate, store size and timings.
 * Usage: bench_stats [--certs N] [--db PATH] [--keep] [--reports-only]
 * Not a ctest: it takes minutes to hours at full size.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stats_report.h"
#include "stats_store.h"

#define N_REGIONS 21
#define N_UNITS   5000
#define N_PRIVATE 500 /* private care providers owning units 4000..4999 */

static const char *const county_codes[N_REGIONS] = {"01", "03", "04", "05", "06", "07", "08",
                                                    "09", "10", "12", "13", "14", "17", "18",
                                                    "19", "20", "21", "22", "23", "24", "25"};
static const char *const dx[] = {"F32", "F43", "M54", "M75", "J06", "S82", "R53",
                                 "Z73", "C50", "O26", "G43", "I10", "K58", "XX1"};

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void unit_of(int u, char unit[32], char provider[32], const char **county)
{
        snprintf(unit, 32, "SE2321000000-U%04d", u);
        if (u < 4000) {
                snprintf(provider, 32, "SE2321000000-R%02d", u % N_REGIONS);
                *county = county_codes[u % N_REGIONS];
        } else {
                snprintf(provider, 32, "SE5560000000-P%03d", (u - 4000) / 2);
                *county = county_codes[(u * 7) % N_REGIONS];
        }
}

static long fsize(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0 ? (long)st.st_size : 0;
}

static void time_report_at(const char *db, const char *report, enum stats_level level,
                           const char *id, const char *from, const char *to, enum stats_mode mode,
                           enum stats_view view, const char *as_of)
{
        char err[256];
        double t0 = now();
        struct stats_store *st = stats_report_open(db, err, sizeof err);
        if (!st) {
                printf("open: %s\n", err);
                return;
        }
        struct stats_query q = {.report = report,
                                .level = level,
                                .from = from,
                                .to = to,
                                .as_of = as_of,
                                .mode = mode,
                                .view = view};
        if (id) {
                q.ids[0] = id;
                q.n_ids = 1;
        }
        struct stats_table *t = NULL;
        int rc = stats_report_run(st, &q, &t, err, sizeof err);
        double ms = (now() - t0) * 1000;
        int64_t total = 0;
        for (size_t i = 0; t && i < t->nrows; i++)
                total += t->cells[i * t->ncols + 2].n;
        printf("%-20s %-8s %-6s %-22s %-10s %9.1f ms  rows %5zu  sum %lld%s%s\n", report,
               level == STATS_LEVEL_UNIT       ? "unit"
               : level == STATS_LEVEL_COUNTY   ? "region"
               : level == STATS_LEVEL_PROVIDER ? "provider"
                                               : "country",
               mode == STATS_MODE_SERIES ? "series" : "cross", id ? id : "", as_of, ms,
               t ? t->nrows : 0, (long long)total, rc ? " ERROR " : "", rc ? err : "");
        stats_table_free(t);
        stats_store_close(st);
}

/* As of a day after every signing and revocation: the incremental state answers. A case's
 * later certificates are signed after the 24 generated months (the newest near 2026-08), so
 * 2025-12-31 was before the store's horizon and every report recomputed from the facts. */
static void time_report(const char *db, const char *report, enum stats_level level, const char *id,
                        const char *from, const char *to, enum stats_mode mode,
                        enum stats_view view)
{
        time_report_at(db, report, level, id, from, to, mode, view, "2026-12-31");
}

int main(int argc, char **argv)
{
        long ncerts = 5000000;
        const char *db = "/tmp/bench_stats.db";
        bool keep = false, reports_only = false;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--certs") && i + 1 < argc)
                        ncerts = atol(argv[++i]);
                else if (!strcmp(argv[i], "--db") && i + 1 < argc)
                        db = argv[++i];
                else if (!strcmp(argv[i], "--keep"))
                        keep = true;
                else if (!strcmp(argv[i], "--reports-only"))
                        reports_only = true;
                else {
                        fprintf(stderr, "usage: bench_stats [--certs N] [--db PATH] [--keep] "
                                        "[--reports-only]\n");
                        return 2;
                }
        }
        char key[256], err[256];
        snprintf(key, sizeof key, "%s.key", db);
        if (!reports_only) {
                char cmd[600];
                snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
                if (system(cmd) != 0)
                        return 1;
                int fd = open(key, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                if (fd < 0 || write(fd, "bench key bench key bench key bench!", 36) != 36)
                        return 1;
                close(fd);
                struct stats *s = stats_open(db, key, err, sizeof err);
                if (!s) {
                        fprintf(stderr, "%s\n", err);
                        return 1;
                }
                const int32_t day0 = intyg_date_to_day("2024-01-01");
                const int32_t span = 730 - 60;
                double t0 = now();
                long made = 0, patient = 0;
                struct intyg in;
                struct intyg_tags tg;
                while (made < ncerts) {
                        /* one sick-leave case: 1..6 certificates, 7..60 days, 0..8 day gaps */
                        long p = patient++;
                        char pnr[32]; /* 12 digits; room for what the compiler cannot rule out */
                        snprintf(pnr, sizeof pnr, "%04ld%02ld%02ld%03ld%ld", 1950 + p % 50,
                                 1 + (p / 50) % 12, 1 + (p / 600) % 28, (p / 16800) % 1000,
                                 (long)(rnd() % 10));
                        int u = (int)(rnd() % N_UNITS);
                        int ncase = 1 + (int)(rnd() % 4) + (rnd() % 5 == 0 ? 2 : 0);
                        int32_t d = day0 + (int32_t)(rnd() % (uint64_t)span);
                        const char *dcode = dx[rnd() % (sizeof dx / sizeof dx[0])];
                        for (int c = 0; c < ncase && made < ncerts; c++) {
                                memset(&in, 0, sizeof in);
                                memset(&tg, 0, sizeof tg);
                                in.kind = INTYG_REGISTER;
                                snprintf(in.id, sizeof in.id, "bench-%ld", made);
                                snprintf(in.type, sizeof in.type, "LISJP");
                                memcpy(in.person_id, pnr, 13);
                                if (rnd() % 8 == 0) /* a case moves on to another unit */
                                        u = (u + 1) % N_UNITS;
                                const char *county;
                                char unit[32], provider[32];
                                unit_of(u, unit, provider, &county);
                                snprintf(in.unit_hsa, sizeof in.unit_hsa, "%s", unit);
                                snprintf(in.provider_hsa, sizeof in.provider_hsa, "%s", provider);
                                snprintf(in.diagnoses[0], sizeof in.diagnoses[0], "%s", dcode);
                                in.n_diagnoses = 1;
                                int32_t len = 7 + (int32_t)(rnd() % 54);
                                in.n_periods = 1 + (rnd() % 3 == 0);
                                for (size_t k = 0; k < in.n_periods; k++) {
                                        in.periods[k].degree =
                                            (enum intyg_degree)(25 * (1 + rnd() % 4));
                                        in.periods[k].start_day = d;
                                        in.periods[k].end_day = d + len / (int32_t)in.n_periods;
                                        d = in.periods[k].end_day + 1;
                                }
                                char sd[11];
                                intyg_day_to_date(in.periods[0].start_day, sd);
                                snprintf(in.signed_at, sizeof in.signed_at, "%sT09:00:00", sd);
                                snprintf(in.prognosis, sizeof in.prognosis, "%s",
                                         rnd() % 2 ? "STOR_SANNOLIKHET" : "PROGNOS_OKLAR");
                                if (rnd() % 3 == 0) {
                                        snprintf(in.measures[0], sizeof in.measures[0],
                                                 "ARBETSTRANING");
                                        in.n_measures = 1;
                                }
                                snprintf(tg.unit_hsa, sizeof tg.unit_hsa, "%s", unit);
                                snprintf(tg.followup_hsa, sizeof tg.followup_hsa, "%s", unit);
                                snprintf(tg.provider_hsa, sizeof tg.provider_hsa, "%s", provider);
                                snprintf(tg.county, sizeof tg.county, "%s", county);
                                tg.resolution = rnd() % 10 ? TAG_LEVEL : TAG_COARSER;
                                int rc;
                                while ((rc = stats_record_intyg(s, &in, &tg, err, sizeof err)) ==
                                       STATS_EFULL)
                                        usleep(2000);
                                if (rc != 0) {
                                        fprintf(stderr, "record: %s\n", err);
                                        return 1;
                                }
                                made++;
                                d += (int32_t)(rnd() % 9);
                                if (made % 250000 == 0) {
                                        stats_flush(s, err, sizeof err);
                                        printf("%ld certificates, %.0f/s\n", made,
                                               (double)made / (now() - t0));
                                        fflush(stdout);
                                }
                        }
                }
                stats_flush(s, err, sizeof err);
                double secs = now() - t0;
                struct stats_counters c;
                stats_get_counters(s, &c);
                stats_close(s);
                printf("ingest: %ld certificates in %.1f s = %.0f/s (stored %llu, errors %llu)\n",
                       made, secs, (double)made / secs, (unsigned long long)c.stored,
                       (unsigned long long)c.errors);
        }
        char walp[300];
        snprintf(walp, sizeof walp, "%s-wal", db);
        printf("store: %.1f MB (+ WAL %.1f MB)\n", (double)fsize(db) / 1e6,
               (double)fsize(walp) / 1e6);
        size_t n;
        const struct stats_report_info *li = stats_report_list(&n);
        const char *unit = "SE2321000000-U0042";
        for (size_t i = 0; i < n; i++) {
                time_report(db, li[i].name, STATS_LEVEL_UNIT, unit, "2024-04", "2025-09",
                            STATS_MODE_SERIES, STATS_VIEW_OWNER);
                time_report(db, li[i].name, STATS_LEVEL_UNIT, unit, "2024-04", "2025-09",
                            STATS_MODE_CROSS, STATS_VIEW_OWNER);
        }
        for (size_t i = 0; i < n; i++)
                time_report(db, li[i].name, STATS_LEVEL_COUNTY, "01", "2024-04", "2025-09",
                            STATS_MODE_SERIES, STATS_VIEW_PUBLIC);
        for (size_t i = 0; i < n; i++)
                time_report(db, li[i].name, STATS_LEVEL_COUNTRY, NULL, "2024-04", "2025-09",
                            STATS_MODE_SERIES, STATS_VIEW_PUBLIC);
        time_report(db, "sjukfall", STATS_LEVEL_COUNTY, "01", "2024-10", "2025-09",
                    STATS_MODE_CROSS, STATS_VIEW_PUBLIC);
        time_report(db, "sjukskrivningslangd", STATS_LEVEL_COUNTRY, NULL, "2024-10", "2025-09",
                    STATS_MODE_CROSS, STATS_VIEW_PUBLIC);
        /* As of a day before the newest certificates: the scope's cases are recomputed from
         * the facts visible then. */
        printf("as of 2025-06-30 (recomputed from the facts):\n");
        for (size_t i = 0; i < n; i++) {
                time_report_at(db, li[i].name, STATS_LEVEL_UNIT, unit, "2024-01", "2025-06",
                               STATS_MODE_SERIES, STATS_VIEW_OWNER, "2025-06-30");
                time_report_at(db, li[i].name, STATS_LEVEL_UNIT, unit, "2024-01", "2025-06",
                               STATS_MODE_CROSS, STATS_VIEW_OWNER, "2025-06-30");
        }
        const char *prov = "SE2321000000-R01";
        time_report_at(db, "sjukfall", STATS_LEVEL_PROVIDER, prov, "2024-01", "2025-06",
                       STATS_MODE_SERIES, STATS_VIEW_OWNER, "2025-06-30");
        time_report_at(db, "diagnosgrupp", STATS_LEVEL_PROVIDER, prov, "2024-01", "2025-06",
                       STATS_MODE_CROSS, STATS_VIEW_OWNER, "2025-06-30");
        time_report_at(db, "sjukfall", STATS_LEVEL_COUNTY, "01", "2024-01", "2025-06",
                       STATS_MODE_SERIES, STATS_VIEW_PUBLIC, "2025-06-30");
        time_report_at(db, "sjukfall", STATS_LEVEL_COUNTRY, NULL, "2024-01", "2025-06",
                       STATS_MODE_SERIES, STATS_VIEW_PUBLIC, "2025-06-30");
        time_report_at(db, "sjukskrivningslangd", STATS_LEVEL_COUNTRY, NULL, "2024-07", "2025-06",
                       STATS_MODE_CROSS, STATS_VIEW_PUBLIC, "2025-06-30");
        if (!keep && !reports_only) {
                unlink(db);
                unlink(walp);
                snprintf(walp, sizeof walp, "%s-shm", db);
                unlink(walp);
                unlink(key);
        }
        return 0;
}
