/*
 * test_disclosure.c - disclosure control (followup-statistics.md §2.9): cutoff 5, floor 3,
 * per care provider and cell before summing (At3001), none inside the viewer's own provider
 * (At3100); and beyond the reference: suppressed cells marked, totals only from published
 * parts, secondary suppression so that no complement gives a cell back.
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
                reg(t, id, pnr, provider, unit, dx, "2024-06-01/2024-06-10/100");
        }
}

static struct stats_table *q(struct tb *t, const char *report, enum stats_level level,
                             const char *id, int cutoff, enum stats_view view, const char *viewer)
{
        tb_flush(t);
        char err[256];
        struct stats_store *st = stats_report_open(t->db, err, sizeof err);
        cr_assert_not_null(st, "%s", err);
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
        struct stats_table *r = NULL;
        cr_assert_eq(stats_report_run(st, &qq, &r, err, sizeof err), 0, "%s", err);
        stats_store_close(st);
        return r;
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
        cr_assert_eq(cell(r, "2024-06", "all", "kvinnor"), 3);
        cr_assert_eq(cell(r, "2024-06", "all", "man"), 4);
        cr_assert_eq(cell(r, "2024-06", "all", "totalt"), 7);
        cr_assert(cellp(r, "2024-06", "all", "kvinnor")->partial);
        cr_assert_eq(r->cutoff, 3);
        stats_table_free(r);
        /* the same through the cross-section path (case rows instead of aggregates) */
        r = q(&t, "lan", STATS_LEVEL_COUNTRY, NULL, 3, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(cell(r, "", "01", "kvinnor"), 3);
        cr_assert_eq(cell(r, "", "01", "man"), 4);
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
        cr_assert(cellp(r, "2024-06", "all", "kvinnor")->suppressed); /* 4 < 5 */
        cr_assert_eq(cell(r, "2024-06", "all", "kvinnor"), 0);
        cr_assert_eq(cell(r, "2024-06", "all", "man"), 5); /* 5 is shown */
        cr_assert_not(cellp(r, "2024-06", "all", "man")->partial);
        stats_table_free(r);
        r = q(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, 1, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(r->cutoff, 3); /* raised to the floor */
        cr_assert_eq(cell(r, "2024-06", "all", "kvinnor"), 4);
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
        cr_assert_eq(cell(r, "2024-06", "all", "kvinnor"), 2); /* VG1's own 2; VG2's cut */
        cr_assert(cellp(r, "2024-06", "all", "kvinnor")->partial);
        stats_table_free(r);
        r = q(&t, "sjukfall", STATS_LEVEL_UNIT, "E1", 0, STATS_VIEW_OWNER, NULL);
        cr_assert_eq(cell(r, "2024-06", "all", "kvinnor"), 2);
        cr_assert_eq(r->cutoff, 0);
        stats_table_free(r);
        r = q(&t, "sjukfall", STATS_LEVEL_UNIT, "E1", 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert(cellp(r, "2024-06", "all", "kvinnor")->suppressed);
        cr_assert(cellp(r, "2024-06", "all", "totalt")->suppressed); /* not shown as 0 */
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
        cr_assert_eq(cell(r, "2024-06", "all", "kvinnor"), 6);
        cr_assert(cellp(r, "2024-06", "all", "man")->suppressed);
        cr_assert_eq(cell(r, "2024-06", "all", "totalt"), 6);
        cr_assert(cellp(r, "2024-06", "all", "totalt")->partial);
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
        cr_assert_eq(cell(tot, "2024-06", "all", "kvinnor"), 12);
        stats_table_free(tot);
        struct stats_table *r =
            q(&t, "diagnosgrupp", STATS_LEVEL_COUNTRY, NULL, 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert(cellp(r, "2024-06", "somatic", "kvinnor")->suppressed);
        cr_assert(cellp(r, "2024-06", "psychiatric", "kvinnor")->suppressed);
        /* nothing published in that slice: 12 minus the published sum gives only 12 */
        int64_t published = 0;
        for (size_t i = 0; i < r->nrows; i++)
                published += r->cells[i * r->ncols].n;
        cr_assert_eq(published, 0);
        stats_table_free(r);
        /* with 5 somatic, both are shown */
        cases(&t, 2, true, "VG1", "E1", "J45");
        r = q(&t, "diagnosgrupp", STATS_LEVEL_COUNTRY, NULL, 0, STATS_VIEW_PUBLIC, NULL);
        cr_assert_eq(cell(r, "2024-06", "somatic", "kvinnor"), 5);
        cr_assert_eq(cell(r, "2024-06", "psychiatric", "kvinnor"), 9);
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
        cr_assert_eq(cell(r, "2024-06", "psychiatric", "kvinnor"), 10);
        cr_assert(cellp(r, "2024-06", "somatic", "kvinnor")->suppressed);
        cr_assert(cellp(r, "2024-06", "musculoskeletal", "kvinnor")->suppressed);
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
        cr_assert(cellp(r, "2024-06", "all", "kvinnor")->suppressed);
        cr_assert_eq(cell(r, "2024-06", "all", "kvinnor"), 0);
        stats_table_free(r);
        r = q(&t, "sjukfall", STATS_LEVEL_COUNTY, "01", 0, STATS_VIEW_OWNER, NULL);
        cr_assert_eq(cell(r, "2024-06", "all", "kvinnor"), 8);
        stats_table_free(r);
        tb_close(&t);
}
