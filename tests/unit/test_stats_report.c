/*
 * test_stats_report.c - the reference system's rules end to end: intyg -> facts -> cases ->
 * reports (followup-statistics.md §1-§2): joins, revocation splitting a case, length across
 * units, providers never joined, duplicates, > 90 days, age, diagnosis groups, certificates,
 * comparability, side by side, incremental == batch, and the JSON/CSV renderings.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats_report.h"
#include "stats_store.h"

/* ---- test helpers: a store in a temporary directory, intyg built from short strings ---- */
struct tb {
        char dir[64], key[128], db[128];
        struct stats *s;
};

static void tb_open(struct tb *t)
{
        snprintf(t->dir, sizeof t->dir, "/tmp/test_stats.XXXXXX");
        cr_assert_not_null(mkdtemp(t->dir));
        snprintf(t->key, sizeof t->key, "%s/key", t->dir);
        snprintf(t->db, sizeof t->db, "%s/stats.db", t->dir);
        int fd = open(t->key, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, "test key test key test key test key!", 36), 36);
        close(fd);
        char err[256];
        t->s = stats_open(t->db, t->key, err, sizeof err);
        cr_assert_not_null(t->s, "%s", err);
}

static void tb_close(struct tb *t)
{
        stats_close(t->s);
        t->s = NULL;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
        cr_assert_eq(system(cmd), 0);
}

static void tb_flush(struct tb *t)
{
        char err[256];
        cr_assert_eq(stats_flush(t->s, err, sizeof err), 0, "%s", err);
}

/* periods: "YYYY-MM-DD/YYYY-MM-DD/degree;..." */
static void mk(struct intyg *in, struct intyg_tags *tg, const char *id, const char *pnr,
               const char *provider, const char *unit, const char *followup, const char *county,
               enum tag_resolution res, const char *dx, const char *periods)
{
        memset(in, 0, sizeof *in);
        memset(tg, 0, sizeof *tg);
        in->kind = INTYG_REGISTER;
        snprintf(in->id, sizeof in->id, "%s", id);
        snprintf(in->type, sizeof in->type, "LISJP");
        snprintf(in->person_id, sizeof in->person_id, "%s", pnr);
        snprintf(in->provider_hsa, sizeof in->provider_hsa, "%s", provider);
        snprintf(in->unit_hsa, sizeof in->unit_hsa, "%s", unit);
        if (dx) {
                snprintf(in->diagnoses[0], sizeof in->diagnoses[0], "%s", dx);
                in->n_diagnoses = 1;
        }
        const char *p = periods;
        while (p && *p && in->n_periods < INTYG_MAX_PERIODS) {
                struct intyg_period *ip = &in->periods[in->n_periods++];
                memcpy(ip->start, p, 10);
                memcpy(ip->end, p + 11, 10);
                ip->degree = (enum intyg_degree)atoi(p + 22);
                ip->start_day = intyg_date_to_day(ip->start);
                ip->end_day = intyg_date_to_day(ip->end);
                snprintf(in->signed_at, sizeof in->signed_at, "%sT10:00:00", in->periods[0].start);
                p = strchr(p, ';');
                if (p)
                        p++;
        }
        snprintf(tg->unit_hsa, sizeof tg->unit_hsa, "%s", unit);
        snprintf(tg->followup_hsa, sizeof tg->followup_hsa, "%s", followup ? followup : unit);
        snprintf(tg->provider_hsa, sizeof tg->provider_hsa, "%s", provider);
        snprintf(tg->county, sizeof tg->county, "%s", county ? county : "");
        tg->resolution = res;
}

static void reg(struct tb *t, const char *id, const char *pnr, const char *provider,
                const char *unit, const char *dx, const char *periods)
{
        struct intyg in;
        struct intyg_tags tg;
        mk(&in, &tg, id, pnr, provider, unit, NULL, "01", TAG_LEVEL, dx, periods);
        char err[256];
        cr_assert_eq(stats_record_intyg(t->s, &in, &tg, err, sizeof err), 0, "%s", err);
}

__attribute__((unused)) static void revoke_intyg(struct tb *t, const char *id)
{
        struct intyg in;
        memset(&in, 0, sizeof in);
        in.kind = INTYG_REVOKE;
        snprintf(in.id, sizeof in.id, "%s", id);
        char err[256];
        cr_assert_eq(stats_record_intyg(t->s, &in, NULL, err, sizeof err), 0, "%s", err);
}

__attribute__((unused)) static struct stats_table *rep(struct tb *t, const char *report,
                                                       enum stats_level level, const char *id,
                                                       const char *from, const char *to,
                                                       enum stats_mode mode, enum stats_view view)
{
        tb_flush(t);
        char err[256];
        struct stats_store *st = stats_report_open(t->db, err, sizeof err);
        cr_assert_not_null(st, "%s", err);
        struct stats_query q = {.report = report,
                                .level = level,
                                .from = from,
                                .to = to,
                                .as_of = "2030-01-01",
                                .mode = mode,
                                .view = view};
        if (id) {
                q.ids[0] = id;
                q.n_ids = 1;
        }
        struct stats_table *tab = NULL;
        int rc = stats_report_run(st, &q, &tab, err, sizeof err);
        cr_assert_eq(rc, 0, "%s", err);
        stats_store_close(st);
        return tab;
}

/* The cell (period, group_id, column); period "" matches any (cross-sections). */
static const struct stats_cell *cellp(const struct stats_table *t, const char *period,
                                      const char *group_id, const char *col)
{
        for (size_t r = 0; r < t->nrows; r++) {
                if (period[0] && strcmp(t->rows[r].period, period) != 0)
                        continue;
                if (strcmp(t->rows[r].group_id, group_id) != 0)
                        continue;
                for (size_t c = 0; c < t->ncols; c++)
                        if (strcmp(t->cols[c], col) == 0)
                                return &t->cells[r * t->ncols + c];
        }
        cr_assert_fail("no cell %s/%s/%s", period, group_id, col);
        return NULL;
}

__attribute__((unused)) static int64_t cell(const struct stats_table *t, const char *period,
                                            const char *group_id, const char *col)
{
        return cellp(t, period, group_id, col)->n;
}

/* Women: second-last digit even; men: odd. Checksums are not checked for statistics. */
#define W1 "198003152380" /* born 1980-03-15, woman */
#define W2 "197501012420"
#define M1 "198506062390" /* man */
#define M2 "199002022310"

#define OWNER  STATS_VIEW_OWNER
#define SERIES STATS_MODE_SERIES
#define CROSS  STATS_MODE_CROSS
#define UNIT   STATS_LEVEL_UNIT

Test(report, cases_per_month_by_sex)
{
        struct tb t;
        tb_open(&t);
        reg(&t, "c1", W1, "SE1", "U1", "F32", "2024-01-10/2024-02-05/100");
        reg(&t, "c2", M1, "SE1", "U1", "M54", "2024-02-01/2024-02-20/50");
        reg(&t, "c3", W2, "SE1", "U2", "F32", "2024-02-01/2024-02-20/50");
        struct stats_table *r =
            rep(&t, "sjukfall", UNIT, "U1", "2024-01", "2024-03", SERIES, OWNER);
        cr_assert_eq(r->nrows, 3);
        cr_assert_eq(cell(r, "2024-01", "all", "kvinnor"), 1);
        cr_assert_eq(cell(r, "2024-01", "all", "man"), 0);
        cr_assert_eq(cell(r, "2024-02", "all", "kvinnor"), 1);
        cr_assert_eq(cell(r, "2024-02", "all", "man"), 1);
        cr_assert_eq(cell(r, "2024-02", "all", "totalt"), 2);
        cr_assert_eq(cell(r, "2024-03", "all", "totalt"), 0);
        cr_assert_not(cellp(r, "2024-03", "all", "totalt")->suppressed);
        stats_table_free(r);
        r = rep(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, "2024-01", "2024-03", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-02", "all", "totalt"), 3);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, free_days_4_5_join_6_splits)
{
        struct tb t;
        tb_open(&t);
        /* W1: 4 free days; W2: 5 free days; M1: 6 free days */
        reg(&t, "a1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        reg(&t, "a2", W1, "SE1", "U1", "F32", "2024-03-15/2024-03-20/100");
        reg(&t, "b1", W2, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        reg(&t, "b2", W2, "SE1", "U1", "F32", "2024-03-16/2024-03-20/100");
        reg(&t, "d1", M1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        reg(&t, "d2", M1, "SE1", "U1", "F32", "2024-03-17/2024-03-20/100");
        struct stats_table *r =
            rep(&t, "sjukfall", UNIT, "U1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-03", "all", "kvinnor"), 2);
        cr_assert_eq(cell(r, "2024-03", "all", "man"), 2);
        stats_table_free(r);
        r = rep(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "2", "kvinnor"), 2);
        cr_assert_eq(cell(r, "", "1", "man"), 2);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, overlapping_and_out_of_order)
{ /* At1019, At1023 */
        struct tb t;
        tb_open(&t);
        reg(&t, "o2", W1, "SE1", "U1", "F32", "2024-04-05/2024-04-30/50");
        reg(&t, "o1", W1, "SE1", "U1", "F32", "2024-03-20/2024-04-10/100");
        reg(&t, "o3", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-21/100");
        struct stats_table *r =
            rep(&t, "sjukskrivningslangd", UNIT, "U1", "2024-03", "2024-04", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "length3", "kvinnor"), 1); /* 61 days: 1 Mar - 30 Apr */
        cr_assert_eq(cell(r, "", "length3", "totalt"), 1);
        stats_table_free(r);
        r = rep(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-04", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "3", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, revocation_splits_a_case)
{ /* At1503, At2003 */
        struct tb t;
        tb_open(&t);
        reg(&t, "r1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        reg(&t, "r2", W1, "SE1", "U1", "F32", "2024-03-11/2024-03-20/100");
        reg(&t, "r3", W1, "SE1", "U1", "F32", "2024-03-21/2024-03-30/100");
        struct stats_table *r =
            rep(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "3", "totalt"), 1);
        cr_assert_eq(cell(r, "", "1", "totalt"), 0);
        stats_table_free(r);
        revoke_intyg(&t, "r2");
        r = rep(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "3", "totalt"), 0);
        cr_assert_eq(cell(r, "", "1", "totalt"), 2);
        stats_table_free(r);
        r = rep(&t, "intyg_per_manad", UNIT, "U1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-03", "all", "totalt"), 2); /* withdrawn left out (At2001) */
        stats_table_free(r);
        /* a second revocation changes nothing; re-registering the same content neither */
        revoke_intyg(&t, "r2");
        reg(&t, "r2", W1, "SE1", "U1", "F32", "2024-03-11/2024-03-20/100");
        r = rep(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "1", "totalt"), 2);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, revocation_before_registration)
{
        struct tb t;
        tb_open(&t);
        revoke_intyg(&t, "early");
        reg(&t, "early", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        struct stats_table *r =
            rep(&t, "sjukfall", UNIT, "U1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-03", "all", "totalt"), 0);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, length_across_units_of_one_provider)
{ /* At1901/At1906/At1911: enhet1 74 days, then enhet2 31 days */
        struct tb t;
        tb_open(&t);
        reg(&t, "u1", W1, "SE1", "E1", "F32", "2024-01-01/2024-03-14/100");
        reg(&t, "u2", W1, "SE1", "E2", "F32", "2024-03-15/2024-04-14/100");
        struct stats_table *r =
            rep(&t, "sjukskrivningslangd", UNIT, "E1", "2024-01", "2024-04", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "length3", "totalt"), 1); /* 61-90 */
        stats_table_free(r);
        r = rep(&t, "sjukskrivningslangd", UNIT, "E2", "2024-01", "2024-04", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "length4", "totalt"), 1); /* 91-180 */
        stats_table_free(r);
        r = rep(&t, "sjukfall", STATS_LEVEL_PROVIDER, "SE1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-03", "all", "totalt"), 1); /* one case, two units */
        stats_table_free(r);
        r = rep(&t, "vardenhet", STATS_LEVEL_PROVIDER, "SE1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "E1", "totalt"), 1); /* once per unit (At5514) */
        cr_assert_eq(cell(r, "", "E2", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, providers_never_joined)
{ /* At1011, At4001, At4501 */
        struct tb t;
        tb_open(&t);
        reg(&t, "p1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        reg(&t, "p2", W1, "SE2", "U9", "F32", "2024-03-11/2024-03-20/100");
        struct stats_table *r = rep(&t, "intyg_per_sjukfall", STATS_LEVEL_COUNTRY, NULL, "2024-03",
                                    "2024-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "1", "totalt"), 2);
        cr_assert_eq(cell(r, "", "2", "totalt"), 0);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, hsa_ids_case_and_spaces)
{ /* At1028, At8301: HSA-ids match case-insensitively and ignoring spaces */
        struct tb t;
        tb_open(&t);
        reg(&t, "h1", W1, "se1", "u 1", "F32", "2024-03-01/2024-03-10/100");
        reg(&t, "h2", W1, "SE1", "U1", "F32", "2024-03-11/2024-03-20/100");
        struct stats_table *r =
            rep(&t, "intyg_per_sjukfall", UNIT, "u1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "2", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, exact_duplicates_once_conflicts_refused)
{ /* At1018 */
        struct tb t;
        tb_open(&t);
        reg(&t, "d1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        reg(&t, "d1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        reg(&t, "d1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-31/100");
        tb_flush(&t);
        struct stats_counters c;
        stats_get_counters(t.s, &c);
        cr_assert_eq(c.stored, 1);
        cr_assert_eq(c.duplicates, 1);
        cr_assert_eq(c.conflicts, 1);
        struct stats_table *r =
            rep(&t, "intyg_per_manad", UNIT, "U1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-03", "all", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, over_90_days_from_the_month_it_passes)
{ /* §1.5, At1951-At1956: exactly 90 excluded, 91 included */
        struct tb t;
        tb_open(&t);
        reg(&t, "l1", W1, "SE1", "U1", "F32", "2024-01-01/2024-03-30/100"); /* 90 days */
        reg(&t, "l2", W2, "SE1", "U1", "F32", "2024-01-01/2024-03-31/100"); /* 91 days */
        reg(&t, "l3", M1, "SE1", "U1", "F32", "2024-01-01/2024-02-29/100"); /* 60 ... */
        reg(&t, "l4", M1, "SE1", "U1", "F32", "2024-03-01/2024-04-30/100"); /* ... then 121 */
        struct stats_table *r =
            rep(&t, "langa_sjukfall", UNIT, "U1", "2024-01", "2024-04", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-01", "over90", "kvinnor"), 1); /* l2: future days count */
        cr_assert_eq(cell(r, "2024-03", "over90", "kvinnor"), 1);
        cr_assert_eq(cell(r, "2024-02", "over90", "man"), 0);
        cr_assert_eq(cell(r, "2024-03", "over90", "man"), 1);
        cr_assert_eq(cell(r, "2024-04", "over90", "man"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, age_at_last_day_and_highest)
{ /* §1.2, §1.4: W1 is born 1980-03-15 */
        struct tb t;
        tb_open(&t);
        reg(&t, "g1", W1, "SE1", "U1", "F32", "2025-03-01/2025-03-14/100"); /* 44 */
        struct stats_table *r =
            rep(&t, "aldersgrupp", UNIT, "U1", "2025-03", "2025-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "age6", "totalt"), 1); /* 41-45 */
        stats_table_free(r);
        struct tb t2;
        tb_open(&t2);
        reg(&t2, "g1", W1, "SE1", "U1", "F32", "2020-03-01/2020-03-14/100"); /* 39 */
        reg(&t2, "g2", W1, "SE1", "U1", "F32", "2020-03-15/2020-03-20/100"); /* 40 */
        r = rep(&t2, "aldersgrupp", UNIT, "U1", "2020-03", "2020-03", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "age5", "totalt"), 1); /* 36-40: the highest age */
        cr_assert_eq(cell(r, "", "age4", "totalt"), 0);
        stats_table_free(r);
        tb_close(&t2);
        tb_close(&t);
}

Test(report, diagnosis_series_latest_cross_distinct)
{ /* At1105-At1113, At8802 */
        struct tb t;
        tb_open(&t);
        reg(&t, "x1", W1, "SE1", "U1", "F32.1", "2024-05-01/2024-05-10/100");
        reg(&t, "x2", W1, "SE1", "U1", "M54", "2024-05-11/2024-05-20/100");
        reg(&t, "x3", W2, "SE1", "U1", "XYZ", "2024-05-11/2024-05-20/100");
        struct stats_table *r =
            rep(&t, "diagnosgrupp", UNIT, "U1", "2024-05", "2024-05", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-05", "musculoskeletal", "kvinnor"), 1);
        cr_assert_eq(cell(r, "2024-05", "psychiatric", "kvinnor"), 0);
        cr_assert_eq(cell(r, "2024-05", "unknown", "kvinnor"), 1);
        stats_table_free(r);
        r = rep(&t, "diagnosgrupp", UNIT, "U1", "2024-05", "2024-05", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "musculoskeletal", "kvinnor"), 1);
        cr_assert_eq(cell(r, "", "psychiatric", "kvinnor"), 1);
        stats_table_free(r);
        r = rep(&t, "diagnoskapitel", UNIT, "U1", "2024-05", "2024-05", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-05", "M00-M99", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, degree_prognosis_measures)
{
        struct tb t;
        tb_open(&t);
        struct intyg in;
        struct intyg_tags tg;
        mk(&in, &tg, "m1", W1, "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
           "2024-06-01/2024-06-10/100;2024-06-11/2024-06-30/50");
        snprintf(in.prognosis, sizeof in.prognosis, "PROGNOS_OKLAR");
        snprintf(in.measures[0], sizeof in.measures[0], "ARBETSTRANING");
        snprintf(in.measures[1], sizeof in.measures[1], "KONTAKT_FHV");
        in.n_measures = 2;
        char err[256];
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0, "%s", err);
        reg(&t, "m2", M1, "SE1", "U1", "F32", "2024-06-01/2024-06-10/75");
        struct stats_table *r =
            rep(&t, "sjukskrivningsgrad", UNIT, "U1", "2024-06", "2024-06", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-06", "50", "kvinnor"), 1);
        cr_assert_eq(cell(r, "2024-06", "100", "kvinnor"), 0);
        cr_assert_eq(cell(r, "2024-06", "75", "man"), 1);
        stats_table_free(r);
        r = rep(&t, "sjukskrivningsgrad", UNIT, "U1", "2024-06", "2024-06", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "50", "kvinnor"), 1);
        cr_assert_eq(cell(r, "", "100", "kvinnor"), 1);
        stats_table_free(r);
        r = rep(&t, "prognos", UNIT, "U1", "2024-06", "2024-06", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "PROGNOS_OKLAR", "kvinnor"), 1);
        cr_assert_eq(cell(r, "", "NOT_ANSWERED", "man"), 1);
        stats_table_free(r);
        r = rep(&t, "atgarder", STATS_LEVEL_COUNTRY, NULL, "2024-06", "2024-06", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-06", "ARBETSTRANING", "totalt"), 1);
        cr_assert_eq(cell(r, "2024-06", "KONTAKT_FHV", "totalt"), 1);
        cr_assert_eq(cell(r, "2024-06", "NOT_ANSWERED", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, comparability_and_county)
{
        struct tb t;
        tb_open(&t);
        struct intyg in;
        struct intyg_tags tg;
        char err[256];
        mk(&in, &tg, "k1", W1, "SE1", "U1", "F1", "12", TAG_LEVEL, "F32",
           "2024-06-01/2024-06-10/100");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0);
        mk(&in, &tg, "k2", W2, "SE1", "U2", "F1", "12", TAG_COARSER, "F32",
           "2024-06-01/2024-06-10/100");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0);
        mk(&in, &tg, "k3", M1, "SE1", "U3", "F1", "99", TAG_UNRESOLVED, "F32",
           "2024-06-01/2024-06-10/100");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0);
        struct stats_table *r =
            rep(&t, "sjukfall", UNIT, "F1", "2024-06", "2024-06", SERIES, OWNER);
        const struct stats_cell *c = cellp(r, "2024-06", "all", "totalt");
        cr_assert_eq(c->n, 3);
        cr_assert(c->has_comparability);
        cr_assert_float_eq(c->comparability, 1.0 / 3.0, 1e-9);
        stats_table_free(r);
        r = rep(&t, "lan", STATS_LEVEL_COUNTRY, NULL, "2024-06", "2024-06", CROSS, OWNER);
        cr_assert_eq(cell(r, "", "12", "kvinnor"), 2);
        cr_assert_eq(cell(r, "", "00", "man"), 1); /* invalid county -> Okänt län (§2.7) */
        stats_table_free(r);
        r = rep(&t, "sjukfall", STATS_LEVEL_COUNTY, "12", "2024-06", "2024-06", SERIES, OWNER);
        cr_assert_eq(cell(r, "2024-06", "all", "totalt"), 2);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, incremental_equals_any_order)
{
        const char *ids[] = {"i1", "i2", "i3", "i4", "i5"};
        const char *per[] = {"2024-01-01/2024-01-20/100", "2024-01-24/2024-02-20/50",
                             "2024-02-27/2024-03-31/25", "2024-01-15/2024-01-30/75",
                             "2024-04-20/2024-05-02/100"};
        char *json[2] = {0};
        for (int run = 0; run < 2; run++) {
                struct tb t;
                tb_open(&t);
                for (int i = 0; i < 5; i++) {
                        int k = run == 0 ? i : 4 - i;
                        reg(&t, ids[k], W1, "SE1", k % 2 ? "U1" : "U2", k % 2 ? "M54" : "F32",
                            per[k]);
                }
                struct stats_table *r = rep(&t, "sjukskrivningslangd", STATS_LEVEL_PROVIDER, "SE1",
                                            "2024-01", "2024-05", SERIES, OWNER);
                size_t len;
                cr_assert_eq(stats_table_json(r, &json[run], &len), 0);
                stats_table_free(r);
                tb_close(&t);
        }
        cr_assert_str_eq(json[0], json[1]);
        free(json[0]);
        free(json[1]);
}

Test(report, side_by_side_shares)
{
        struct tb t;
        tb_open(&t);
        char id[16], pnr[13];
        for (int i = 0; i < 20; i++) { /* 20 women; 8 psychiatric, 12 musculoskeletal */
                snprintf(id, sizeof id, "s%d", i);
                snprintf(pnr, sizeof pnr, "198001%02d2380", i + 1);
                reg(&t, id, pnr, "SE1", i < 10 ? "U1" : "U2", i < 8 ? "F32" : "M54",
                    "2024-06-01/2024-06-10/100");
        }
        reg(&t, "m", M1, "SE2", "U7", "F32", "2024-06-01/2024-06-10/100");
        tb_flush(&t);
        char err[256];
        struct stats_store *st = stats_report_open(t.db, err, sizeof err);
        struct stats_query q = {.report = "diagnosgrupp",
                                .level = UNIT,
                                .ids = {"U1"},
                                .n_ids = 1,
                                .from = "2024-06",
                                .to = "2024-06",
                                .as_of = "2024-06-30",
                                .mode = CROSS,
                                .view = OWNER,
                                .side_by_side = true};
        struct stats_table *r = NULL;
        cr_assert_eq(stats_report_run(st, &q, &r, err, sizeof err), 0, "%s", err);
        cr_assert_eq(r->ncols, 6);
        int seen = 0;
        for (size_t i = 0; i < r->nrows; i++) {
                const struct stats_cell *c = &r->cells[i * 6];
                if (strcmp(r->rows[i].group_id, "psychiatric") == 0 &&
                    strcmp(r->rows[i].sex, "kvinnor") == 0) {
                        seen++;
                        cr_assert_eq(c[0].n, 8);                    /* unit */
                        cr_assert_float_eq(c[1].share, 80.0, 1e-9); /* 8 of its 10 */
                        cr_assert_eq(c[4].n, 8);                    /* country */
                        cr_assert_float_eq(c[5].share, 8.0 * 100 / 20, 1e-9);
                }
                if (strcmp(r->rows[i].group_id, "psychiatric") == 0 &&
                    strcmp(r->rows[i].sex, "man") == 0) {
                        seen++;
                        cr_assert_eq(c[0].n, 0);
                        cr_assert(c[4].suppressed); /* one man at SE2: under the cutoff */
                        cr_assert_not(c[5].has_share);
                }
        }
        cr_assert_eq(seen, 2);
        stats_table_free(r);
        stats_store_close(st);
        tb_close(&t);
}

Test(report, renderings_and_errors)
{
        struct tb t;
        tb_open(&t);
        reg(&t, "j1", W1, "SE1", "U1", "F32", "2024-06-01/2024-06-10/100");
        struct stats_table *r =
            rep(&t, "sjukfall", UNIT, "U1", "2024-06", "2024-06", SERIES, OWNER);
        char *out = NULL;
        size_t len = 0;
        cr_assert_eq(stats_table_json(r, &out, &len), 0);
        cr_assert(strstr(out, "\"rows\":[{\"period\":\"2024-06\",\"group_id\":\"all\""), "%s", out);
        cr_assert(strstr(out, "\"kvinnor\":{\"n\":1,\"comparability\":1.000}"), "%s", out);
        free(out);
        cr_assert_eq(stats_table_csv(r, &out, &len), 0);
        cr_assert(strstr(out, "sjukfall,unit,U1,2024-06,all,Sjukfall,,kvinnor,1,ok,1.000\n"), "%s",
                  out);
        free(out);
        cr_assert_eq(stats_table_text(r, &out, &len), 0);
        cr_assert(strstr(out, "Antal sjukfall per månad"));
        free(out);
        stats_table_free(r);
        char err[256];
        struct stats_store *st = stats_report_open(t.db, err, sizeof err);
        struct stats_query q = {.report = "nosuch",
                                .level = UNIT,
                                .ids = {"U1"},
                                .n_ids = 1,
                                .from = "2024-01",
                                .to = "2024-02"};
        cr_assert_eq(stats_report_run(st, &q, &r, err, sizeof err), STATS_EINVAL);
        cr_assert(strstr(err, "unknown report"));
        q.report = "sjukfall";
        q.from = "2024-03";
        cr_assert_eq(stats_report_run(st, &q, &r, err, sizeof err), STATS_EINVAL);
        q.from = "2024-01";
        q.level = STATS_LEVEL_COUNTRY;
        cr_assert_eq(stats_report_run(st, &q, &r, err, sizeof err), STATS_EINVAL);
        q.n_ids = 0;
        cr_assert_eq(stats_report_run(st, &q, &r, err, sizeof err), 0, "%s", err);
        stats_table_free(r);
        stats_store_close(st);
        size_t n;
        const struct stats_report_info *li = stats_report_list(&n);
        cr_assert_eq(n, 13);
        cr_assert_str_eq(li[0].name, "sjukfall");
        tb_close(&t);
}

Test(report, refused_intyg)
{
        struct tb t;
        tb_open(&t);
        struct intyg in;
        struct intyg_tags tg;
        char err[256];
        mk(&in, &tg, "bad1", W1, "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
           "2009-12-31/2010-01-10/100"); /* starts before 2010-01-01 (§1.2) */
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), STATS_EINVAL);
        mk(&in, &tg, "bad2", W1, "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
           "2010-01-01/2010-01-10/60"); /* degree not 25/50/75/100 */
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), STATS_EINVAL);
        mk(&in, &tg, "ok", W1, "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
           "2010-01-01/2010-01-10/25");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0, "%s", err);
        mk(&in, &tg, "bad3", "19800101", "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
           "2020-01-01/2020-01-10/25");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), STATS_EINVAL);
        cr_assert_null(strstr(err, "19800101"), "no person id in messages");
        tb_close(&t);
}
