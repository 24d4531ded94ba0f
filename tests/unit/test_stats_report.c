/*
 * test_stats_report.c - the reference system's rules end to end: intyg -> facts -> cases ->
 * reports (followup-statistics.md §1-§2): joins, revocation splitting a case, length across
 * units, providers never joined, duplicates, > 90 days, age, diagnosis groups, certificates,
 * comparability, side by side, incremental == batch, and the JSON/CSV renderings.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats_fixture.h"

#define OWNER  STATS_VIEW_OWNER
#define SERIES STATS_MODE_SERIES
#define CROSS  STATS_MODE_CROSS
#define UNIT   STATS_LEVEL_UNIT

Test(report, cases_per_month_by_sex)
{
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "c1", W1, "SE1", "U1", "F32", "2024-01-10/2024-02-05/100");
        tb_reg(&t, "c2", M1, "SE1", "U1", "M54", "2024-02-01/2024-02-20/50");
        tb_reg(&t, "c3", W2, "SE1", "U2", "F32", "2024-02-01/2024-02-20/50");
        struct stats_table *r =
            tb_report(&t, "sjukfall", UNIT, "U1", "2024-01", "2024-03", SERIES, OWNER);
        cr_assert_eq(r->nrows, 3);
        cr_assert_eq(tb_cell(r, "2024-01", "all", "kvinnor"), 1);
        cr_assert_eq(tb_cell(r, "2024-01", "all", "man"), 0);
        cr_assert_eq(tb_cell(r, "2024-02", "all", "kvinnor"), 1);
        cr_assert_eq(tb_cell(r, "2024-02", "all", "man"), 1);
        cr_assert_eq(tb_cell(r, "2024-02", "all", "totalt"), 2);
        cr_assert_eq(tb_cell(r, "2024-03", "all", "totalt"), 0);
        cr_assert_not(tb_cellp(r, "2024-03", "all", "totalt")->suppressed);
        stats_table_free(r);
        r = tb_report(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, "2024-01", "2024-03", SERIES,
                      OWNER);
        cr_assert_eq(tb_cell(r, "2024-02", "all", "totalt"), 3);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, free_days_4_5_join_6_splits)
{
        struct tb t;
        tb_open(&t);
        /* W1: 4 free days; W2: 5 free days; M1: 6 free days */
        tb_reg(&t, "a1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        tb_reg(&t, "a2", W1, "SE1", "U1", "F32", "2024-03-15/2024-03-20/100");
        tb_reg(&t, "b1", W2, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        tb_reg(&t, "b2", W2, "SE1", "U1", "F32", "2024-03-16/2024-03-20/100");
        tb_reg(&t, "d1", M1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        tb_reg(&t, "d2", M1, "SE1", "U1", "F32", "2024-03-17/2024-03-20/100");
        struct stats_table *r =
            tb_report(&t, "sjukfall", UNIT, "U1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(tb_cell(r, "2024-03", "all", "kvinnor"), 2);
        cr_assert_eq(tb_cell(r, "2024-03", "all", "man"), 2);
        stats_table_free(r);
        r = tb_report(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "2", "kvinnor"), 2);
        cr_assert_eq(tb_cell(r, "", "1", "man"), 2);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, overlapping_and_out_of_order)
{ /* At1019, At1023 */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "o2", W1, "SE1", "U1", "F32", "2024-04-05/2024-04-30/50");
        tb_reg(&t, "o1", W1, "SE1", "U1", "F32", "2024-03-20/2024-04-10/100");
        tb_reg(&t, "o3", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-21/100");
        struct stats_table *r =
            tb_report(&t, "sjukskrivningslangd", UNIT, "U1", "2024-03", "2024-04", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "length3", "kvinnor"), 1); /* 61 days: 1 Mar - 30 Apr */
        cr_assert_eq(tb_cell(r, "", "length3", "totalt"), 1);
        stats_table_free(r);
        r = tb_report(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-04", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "3", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, revocation_splits_a_case)
{ /* At1503, At2003 */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "r1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        tb_reg(&t, "r2", W1, "SE1", "U1", "F32", "2024-03-11/2024-03-20/100");
        tb_reg(&t, "r3", W1, "SE1", "U1", "F32", "2024-03-21/2024-03-30/100");
        struct stats_table *r =
            tb_report(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "3", "totalt"), 1);
        cr_assert_eq(tb_cell(r, "", "1", "totalt"), 0);
        stats_table_free(r);
        tb_revoke(&t, "r2", NULL);
        r = tb_report(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "3", "totalt"), 0);
        cr_assert_eq(tb_cell(r, "", "1", "totalt"), 2);
        stats_table_free(r);
        r = tb_report(&t, "intyg_per_manad", UNIT, "U1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(tb_cell(r, "2024-03", "all", "totalt"), 2); /* withdrawn left out (At2001) */
        stats_table_free(r);
        /* a second revocation changes nothing; re-registering the same content neither */
        tb_revoke(&t, "r2", NULL);
        tb_reg(&t, "r2", W1, "SE1", "U1", "F32", "2024-03-11/2024-03-20/100");
        r = tb_report(&t, "intyg_per_sjukfall", UNIT, "U1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "1", "totalt"), 2);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, revocation_before_registration)
{
        struct tb t;
        tb_open(&t);
        tb_revoke(&t, "early", NULL);
        tb_reg(&t, "early", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        struct stats_table *r =
            tb_report(&t, "sjukfall", UNIT, "U1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(tb_cell(r, "2024-03", "all", "totalt"), 0);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, length_across_units_of_one_provider)
{ /* At1901/At1906/At1911: enhet1 74 days, then enhet2 31 days */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "u1", W1, "SE1", "E1", "F32", "2024-01-01/2024-03-14/100");
        tb_reg(&t, "u2", W1, "SE1", "E2", "F32", "2024-03-15/2024-04-14/100");
        struct stats_table *r =
            tb_report(&t, "sjukskrivningslangd", UNIT, "E1", "2024-01", "2024-04", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "length3", "totalt"), 1); /* 61-90 */
        stats_table_free(r);
        r = tb_report(&t, "sjukskrivningslangd", UNIT, "E2", "2024-01", "2024-04", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "length4", "totalt"), 1); /* 91-180 */
        stats_table_free(r);
        r = tb_report(&t, "sjukfall", STATS_LEVEL_PROVIDER, "SE1", "2024-03", "2024-03", SERIES,
                      OWNER);
        cr_assert_eq(tb_cell(r, "2024-03", "all", "totalt"), 1); /* one case, two units */
        stats_table_free(r);
        r = tb_report(&t, "vardenhet", STATS_LEVEL_PROVIDER, "SE1", "2024-03", "2024-03", CROSS,
                      OWNER);
        cr_assert_eq(tb_cell(r, "", "E1", "totalt"), 1); /* once per unit (At5514) */
        cr_assert_eq(tb_cell(r, "", "E2", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, providers_never_joined)
{ /* At1011, At4001, At4501 */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "p1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        tb_reg(&t, "p2", W1, "SE2", "U9", "F32", "2024-03-11/2024-03-20/100");
        struct stats_table *r = tb_report(&t, "intyg_per_sjukfall", STATS_LEVEL_COUNTRY, NULL,
                                          "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "1", "totalt"), 2);
        cr_assert_eq(tb_cell(r, "", "2", "totalt"), 0);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, hsa_ids_case_and_spaces)
{ /* At1028, At8301: HSA-ids match case-insensitively and ignoring spaces */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "h1", W1, "se1", "u 1", "F32", "2024-03-01/2024-03-10/100");
        tb_reg(&t, "h2", W1, "SE1", "U1", "F32", "2024-03-11/2024-03-20/100");
        struct stats_table *r =
            tb_report(&t, "intyg_per_sjukfall", UNIT, "u1", "2024-03", "2024-03", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "2", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, exact_duplicates_once_conflicts_refused)
{ /* At1018 */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "d1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        tb_reg(&t, "d1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-10/100");
        tb_reg(&t, "d1", W1, "SE1", "U1", "F32", "2024-03-01/2024-03-31/100");
        tb_flush(&t);
        struct stats_counters c;
        stats_get_counters(t.s, &c);
        cr_assert_eq(c.stored, 1);
        cr_assert_eq(c.duplicates, 1);
        cr_assert_eq(c.conflicts, 1);
        struct stats_table *r =
            tb_report(&t, "intyg_per_manad", UNIT, "U1", "2024-03", "2024-03", SERIES, OWNER);
        cr_assert_eq(tb_cell(r, "2024-03", "all", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, over_90_days_from_the_month_it_passes)
{ /* §1.5, At1951-At1956: exactly 90 excluded, 91 included */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "l1", W1, "SE1", "U1", "F32", "2024-01-01/2024-03-30/100"); /* 90 days */
        tb_reg(&t, "l2", W2, "SE1", "U1", "F32", "2024-01-01/2024-03-31/100"); /* 91 days */
        tb_reg(&t, "l3", M1, "SE1", "U1", "F32", "2024-01-01/2024-02-29/100"); /* 60 ... */
        tb_reg(&t, "l4", M1, "SE1", "U1", "F32", "2024-03-01/2024-04-30/100"); /* ... then 121 */
        struct stats_table *r =
            tb_report(&t, "langa_sjukfall", UNIT, "U1", "2024-01", "2024-04", SERIES, OWNER);
        cr_assert_eq(tb_cell(r, "2024-01", "over90", "kvinnor"), 1); /* l2: future days count */
        cr_assert_eq(tb_cell(r, "2024-03", "over90", "kvinnor"), 1);
        cr_assert_eq(tb_cell(r, "2024-02", "over90", "man"), 0);
        cr_assert_eq(tb_cell(r, "2024-03", "over90", "man"), 1);
        cr_assert_eq(tb_cell(r, "2024-04", "over90", "man"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, age_at_last_day_and_highest)
{ /* §1.2, §1.4: W1 is born 1980-03-15 */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "g1", W1, "SE1", "U1", "F32", "2025-03-01/2025-03-14/100"); /* 44 */
        struct stats_table *r =
            tb_report(&t, "aldersgrupp", UNIT, "U1", "2025-03", "2025-03", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "age6", "totalt"), 1); /* 41-45 */
        stats_table_free(r);
        struct tb t2;
        tb_open(&t2);
        tb_reg(&t2, "g1", W1, "SE1", "U1", "F32", "2020-03-01/2020-03-14/100"); /* 39 */
        tb_reg(&t2, "g2", W1, "SE1", "U1", "F32", "2020-03-15/2020-03-20/100"); /* 40 */
        r = tb_report(&t2, "aldersgrupp", UNIT, "U1", "2020-03", "2020-03", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "age5", "totalt"), 1); /* 36-40: the highest age */
        cr_assert_eq(tb_cell(r, "", "age4", "totalt"), 0);
        stats_table_free(r);
        tb_close(&t2);
        tb_close(&t);
}

Test(report, diagnosis_series_latest_cross_distinct)
{ /* At1105-At1113, At8802 */
        struct tb t;
        tb_open(&t);
        tb_reg(&t, "x1", W1, "SE1", "U1", "F32.1", "2024-05-01/2024-05-10/100");
        tb_reg(&t, "x2", W1, "SE1", "U1", "M54", "2024-05-11/2024-05-20/100");
        tb_reg(&t, "x3", W2, "SE1", "U1", "XYZ", "2024-05-11/2024-05-20/100");
        struct stats_table *r =
            tb_report(&t, "diagnosgrupp", UNIT, "U1", "2024-05", "2024-05", SERIES, OWNER);
        cr_assert_eq(tb_cell(r, "2024-05", "musculoskeletal", "kvinnor"), 1);
        cr_assert_eq(tb_cell(r, "2024-05", "psychiatric", "kvinnor"), 0);
        cr_assert_eq(tb_cell(r, "2024-05", "unknown", "kvinnor"), 1);
        stats_table_free(r);
        r = tb_report(&t, "diagnosgrupp", UNIT, "U1", "2024-05", "2024-05", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "musculoskeletal", "kvinnor"), 1);
        cr_assert_eq(tb_cell(r, "", "psychiatric", "kvinnor"), 1);
        stats_table_free(r);
        r = tb_report(&t, "diagnoskapitel", UNIT, "U1", "2024-05", "2024-05", SERIES, OWNER);
        cr_assert_eq(tb_cell(r, "2024-05", "M00-M99", "totalt"), 1);
        stats_table_free(r);
        tb_close(&t);
}

Test(report, degree_prognosis_measures)
{
        struct tb t;
        tb_open(&t);
        struct intyg in;
        struct intyg_tags tg;
        tb_mk(&in, &tg, "m1", W1, "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
              "2024-06-01/2024-06-10/100;2024-06-11/2024-06-30/50");
        snprintf(in.prognosis, sizeof in.prognosis, "PROGNOS_OKLAR");
        snprintf(in.measures[0], sizeof in.measures[0], "ARBETSTRANING");
        snprintf(in.measures[1], sizeof in.measures[1], "KONTAKT_FHV");
        in.n_measures = 2;
        char err[256];
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0, "%s", err);
        tb_reg(&t, "m2", M1, "SE1", "U1", "F32", "2024-06-01/2024-06-10/75");
        struct stats_table *r =
            tb_report(&t, "sjukskrivningsgrad", UNIT, "U1", "2024-06", "2024-06", SERIES, OWNER);
        cr_assert_eq(tb_cell(r, "2024-06", "50", "kvinnor"), 1);
        cr_assert_eq(tb_cell(r, "2024-06", "100", "kvinnor"), 0);
        cr_assert_eq(tb_cell(r, "2024-06", "75", "man"), 1);
        stats_table_free(r);
        r = tb_report(&t, "sjukskrivningsgrad", UNIT, "U1", "2024-06", "2024-06", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "50", "kvinnor"), 1);
        cr_assert_eq(tb_cell(r, "", "100", "kvinnor"), 1);
        stats_table_free(r);
        r = tb_report(&t, "prognos", UNIT, "U1", "2024-06", "2024-06", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "PROGNOS_OKLAR", "kvinnor"), 1);
        cr_assert_eq(tb_cell(r, "", "NOT_ANSWERED", "man"), 1);
        stats_table_free(r);
        r = tb_report(&t, "atgarder", STATS_LEVEL_COUNTRY, NULL, "2024-06", "2024-06", SERIES,
                      OWNER);
        cr_assert_eq(tb_cell(r, "2024-06", "ARBETSTRANING", "totalt"), 1);
        cr_assert_eq(tb_cell(r, "2024-06", "KONTAKT_FHV", "totalt"), 1);
        cr_assert_eq(tb_cell(r, "2024-06", "NOT_ANSWERED", "totalt"), 1);
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
        tb_mk(&in, &tg, "k1", W1, "SE1", "U1", "F1", "12", TAG_LEVEL, "F32",
              "2024-06-01/2024-06-10/100");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0);
        tb_mk(&in, &tg, "k2", W2, "SE1", "U2", "F1", "12", TAG_COARSER, "F32",
              "2024-06-01/2024-06-10/100");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0);
        tb_mk(&in, &tg, "k3", M1, "SE1", "U3", "F1", "99", TAG_UNRESOLVED, "F32",
              "2024-06-01/2024-06-10/100");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0);
        struct stats_table *r =
            tb_report(&t, "sjukfall", UNIT, "F1", "2024-06", "2024-06", SERIES, OWNER);
        const struct stats_cell *c = tb_cellp(r, "2024-06", "all", "totalt");
        cr_assert_eq(c->n, 3);
        cr_assert(c->has_comparability);
        cr_assert_float_eq(c->comparability, 1.0 / 3.0, 1e-9);
        stats_table_free(r);
        r = tb_report(&t, "lan", STATS_LEVEL_COUNTRY, NULL, "2024-06", "2024-06", CROSS, OWNER);
        cr_assert_eq(tb_cell(r, "", "12", "kvinnor"), 2);
        cr_assert_eq(tb_cell(r, "", "00", "man"), 1); /* invalid county -> Okänt län (§2.7) */
        stats_table_free(r);
        r = tb_report(&t, "sjukfall", STATS_LEVEL_COUNTY, "12", "2024-06", "2024-06", SERIES,
                      OWNER);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "totalt"), 2);
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
                        tb_reg(&t, ids[k], W1, "SE1", k % 2 ? "U1" : "U2", k % 2 ? "M54" : "F32",
                               per[k]);
                }
                struct stats_table *r = tb_report(&t, "sjukskrivningslangd", STATS_LEVEL_PROVIDER,
                                                  "SE1", "2024-01", "2024-05", SERIES, OWNER);
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
                tb_reg(&t, id, pnr, "SE1", i < 10 ? "U1" : "U2", i < 8 ? "F32" : "M54",
                       "2024-06-01/2024-06-10/100");
        }
        tb_reg(&t, "m", M1, "SE2", "U7", "F32", "2024-06-01/2024-06-10/100");
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
        tb_reg(&t, "j1", W1, "SE1", "U1", "F32", "2024-06-01/2024-06-10/100");
        struct stats_table *r =
            tb_report(&t, "sjukfall", UNIT, "U1", "2024-06", "2024-06", SERIES, OWNER);
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
        tb_mk(&in, &tg, "bad1", W1, "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
              "2009-12-31/2010-01-10/100"); /* starts before 2010-01-01 (§1.2) */
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), STATS_EINVAL);
        tb_mk(&in, &tg, "bad2", W1, "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
              "2010-01-01/2010-01-10/60"); /* degree not 25/50/75/100 */
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), STATS_EINVAL);
        tb_mk(&in, &tg, "ok", W1, "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
              "2010-01-01/2010-01-10/25");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), 0, "%s", err);
        tb_mk(&in, &tg, "bad3", "19800101", "SE1", "U1", NULL, "01", TAG_LEVEL, "F32",
              "2020-01-01/2020-01-10/25");
        cr_assert_eq(stats_record_intyg(t.s, &in, &tg, err, sizeof err), STATS_EINVAL);
        cr_assert_null(strstr(err, "19800101"), "no person id in messages");
        tb_close(&t);
}
