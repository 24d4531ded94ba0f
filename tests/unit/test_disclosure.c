/*
 * test_disclosure.c - disclosure control (followup-statistics.md §2.9): cutoff 5, floor 3,
 * per care provider and cell before summing (At3001), none inside the viewer's own provider
 * (At3100); and beyond the reference: suppressed cells marked, totals only from published
 * parts, secondary suppression so that no complement gives a cell back.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats_fixture.h"

static int npnr;

/* n cases of one sex at provider/unit in June 2024 with diagnosis dx */
static void cases(struct tb *t, int n, bool woman, const char *provider, const char *unit,
                  const char *dx)
{
        for (int i = 0; i < n; i++) {
                char id[32], pnr[16];
                npnr++;
                snprintf(id, sizeof id, "c%d", npnr);
                snprintf(pnr, sizeof pnr, "19%02u0101%02u%u0", 40u + (unsigned)npnr % 50u,
                         (unsigned)npnr % 100u, woman ? 8u : 9u);
                tb_reg(t, id, pnr, provider, unit, dx, "2024-06-01/2024-06-10/100");
        }
}

static struct stats_table *q(struct tb *t, const char *report, enum stats_level level,
                             const char *id, int cutoff, enum stats_view view, const char *viewer)
{
        struct stats_query qq = {.report = report,
                                 .level = level,
                                 .from = "2024-06",
                                 .to = "2024-06",
                                 .as_of = "2024-07-01",
                                 .cutoff = cutoff,
                                 .view = view,
                                 .viewer_provider = viewer};
        if (id) {
                qq.ids[0] = id;
                qq.n_ids = 1;
        }
        return tb_run(t, &qq);
}

Test(disclosure, national_per_provider_before_sum_at3001)
{ /* vg1: 3 women 2 men; vg3: 1 woman 4 men; cutoff 3 -> national 3 women + 4 men */
        struct tb t;
        tb_open(&t);
        cases(&t, 3, true, "VG1", "E1", "F32");
        cases(&t, 2, false, "VG1", "E1", "F32");
        cases(&t, 1, true, "VG3", "E3", "F32");
        cases(&t, 4, false, "VG3", "E3", "F32");
        struct stats_table *r =
            q(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, 3, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "kvinnor"), 3);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "man"), 4);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "totalt"), 7);
        cr_assert(tb_cellp(r, "2024-06", "all", "kvinnor")->partial);
        cr_assert_eq(r->cutoff, 3);
        stats_table_free(r);
        /* the same through the cross-section path (case rows instead of aggregates) */
        r = q(&t, "lan", STATS_LEVEL_COUNTRY, NULL, 3, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(tb_cell(r, "", "01", "kvinnor"), 3);
        cr_assert_eq(tb_cell(r, "", "01", "man"), 4);
        stats_table_free(r);
        tb_close(&t);
}

Test(disclosure, cutoff_default_5_and_floor_3)
{
        struct tb t;
        tb_open(&t);
        cases(&t, 4, true, "VG1", "E1", "F32");
        cases(&t, 5, false, "VG1", "E1", "F32");
        struct stats_table *r =
            q(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(r->cutoff, 5);
        cr_assert(tb_cellp(r, "2024-06", "all", "kvinnor")->suppressed); /* 4 < 5 */
        cr_assert_eq(tb_cell(r, "2024-06", "all", "kvinnor"), 0);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "man"), 5); /* 5 is shown */
        cr_assert_not(tb_cellp(r, "2024-06", "all", "man")->partial);
        stats_table_free(r);
        r = q(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, 1, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(r->cutoff, 3); /* raised to the floor */
        cr_assert_eq(tb_cell(r, "2024-06", "all", "kvinnor"), 4);
        stats_table_free(r);
        tb_close(&t);
}

Test(disclosure, none_inside_own_provider)
{ /* At3100 */
        struct tb t;
        tb_open(&t);
        cases(&t, 2, true, "VG1", "E1", "F32");
        cases(&t, 2, true, "VG2", "E2", "F32");
        struct stats_table *r =
            q(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, 0, STATS_VIEW_PROVIDER, "vg1");
        cr_assert_eq(tb_cell(r, "2024-06", "all", "kvinnor"), 2); /* VG1's own 2; VG2's cut */
        cr_assert(tb_cellp(r, "2024-06", "all", "kvinnor")->partial);
        stats_table_free(r);
        r = q(&t, "sjukfall", STATS_LEVEL_UNIT, "E1", 0, STATS_VIEW_OWNER, NULL);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "kvinnor"), 2);
        cr_assert_eq(r->cutoff, 0);
        stats_table_free(r);
        r = q(&t, "sjukfall", STATS_LEVEL_UNIT, "E1", 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert(tb_cellp(r, "2024-06", "all", "kvinnor")->suppressed);
        cr_assert(tb_cellp(r, "2024-06", "all", "totalt")->suppressed); /* not shown as 0 */
        stats_table_free(r);
        tb_close(&t);
}

Test(disclosure, total_only_from_published_parts)
{ /* 6 women, 2 men: the total must not be 8, or 8 - 6 gives the 2 back */
        struct tb t;
        tb_open(&t);
        cases(&t, 6, true, "VG1", "E1", "F32");
        cases(&t, 2, false, "VG1", "E1", "F32");
        struct stats_table *r =
            q(&t, "sjukfall", STATS_LEVEL_UNIT, "E1", 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "kvinnor"), 6);
        cr_assert(tb_cellp(r, "2024-06", "all", "man")->suppressed);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "totalt"), 6);
        cr_assert(tb_cellp(r, "2024-06", "all", "totalt")->partial);
        char *csv = NULL;
        size_t len;
        cr_assert_eq(stats_table_csv(r, &csv, &len), 0);
        cr_assert(strstr(csv, ",man,,suppressed,\n"), "%s", csv);
        cr_assert_null(strstr(csv, ",8,"), "%s", csv);
        free(csv);
        char *json = NULL;
        cr_assert_eq(stats_table_json(r, &json, &len), 0);
        cr_assert(strstr(json, "\"man\":{\"suppressed\":true}"), "%s", json);
        free(json);
        stats_table_free(r);
        tb_close(&t);
}

Test(disclosure, secondary_suppression_no_complement)
{ /* 9 psychiatric + 3 somatic women: the case total (12) is published by `sjukfall`;
   * if diagnosgrupp showed 9 psychiatric, 12 - 9 would give the 3 back. */
        struct tb t;
        tb_open(&t);
        cases(&t, 9, true, "VG1", "E1", "F32");
        cases(&t, 3, true, "VG1", "E1", "J45");
        struct stats_table *tot =
            q(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(tb_cell(tot, "2024-06", "all", "kvinnor"), 12);
        stats_table_free(tot);
        struct stats_table *r =
            q(&t, "diagnosgrupp", STATS_LEVEL_COUNTRY, NULL, 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert(tb_cellp(r, "2024-06", "somatic", "kvinnor")->suppressed);
        cr_assert(tb_cellp(r, "2024-06", "psychiatric", "kvinnor")->suppressed);
        /* nothing published in that slice: 12 minus the published sum gives only 12 */
        int64_t published = 0;
        for (size_t i = 0; i < r->nrows; i++)
                published += r->cells[i * r->ncols].n;
        cr_assert_eq(published, 0);
        stats_table_free(r);
        /* with 5 somatic, both are shown */
        cases(&t, 2, true, "VG1", "E1", "J45");
        r = q(&t, "diagnosgrupp", STATS_LEVEL_COUNTRY, NULL, 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(tb_cell(r, "2024-06", "somatic", "kvinnor"), 5);
        cr_assert_eq(tb_cell(r, "2024-06", "psychiatric", "kvinnor"), 9);
        stats_table_free(r);
        tb_close(&t);
}

Test(disclosure, secondary_two_small_cells_cover_each_other)
{ /* 3 + 3 suppressed in one slice: together 6 >= 5, so the 10 stays */
        struct tb t;
        tb_open(&t);
        cases(&t, 10, true, "VG1", "E1", "F32");
        cases(&t, 3, true, "VG1", "E1", "J45");
        cases(&t, 3, true, "VG1", "E1", "M54");
        struct stats_table *r =
            q(&t, "diagnosgrupp", STATS_LEVEL_COUNTRY, NULL, 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(tb_cell(r, "2024-06", "psychiatric", "kvinnor"), 10);
        cr_assert(tb_cellp(r, "2024-06", "somatic", "kvinnor")->suppressed);
        cr_assert(tb_cellp(r, "2024-06", "musculoskeletal", "kvinnor")->suppressed);
        stats_table_free(r);
        tb_close(&t);
}

Test(disclosure, per_provider_then_sum_region)
{ /* two providers each under the cutoff in the same county: the sum (8) is not shown */
        struct tb t;
        tb_open(&t);
        cases(&t, 4, true, "VG1", "E1", "F32");
        cases(&t, 4, true, "VG2", "E2", "F32");
        struct stats_table *r =
            q(&t, "sjukfall", STATS_LEVEL_COUNTY, "01", 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert(tb_cellp(r, "2024-06", "all", "kvinnor")->suppressed);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "kvinnor"), 0);
        stats_table_free(r);
        r = q(&t, "sjukfall", STATS_LEVEL_COUNTY, "01", 0, STATS_VIEW_OWNER, NULL);
        cr_assert_eq(tb_cell(r, "2024-06", "all", "kvinnor"), 8);
        stats_table_free(r);
        tb_close(&t);
}
