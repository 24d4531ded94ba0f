/*
 * test_stats_asof.c - reproducible --as-of reports: a report as of day D is computed only
 * from the certificates signed by D and not revoked by D, so later certificates (extending,
 * joining, changing a case) and later revocations leave it byte-identical; the recomputed
 * answer equals the incremental state's; revocation days; the schema 1 -> 2 migration.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stats_fixture.h"

/* periods: "YYYY-MM-DD/YYYY-MM-DD/degree;..."; signed: "YYYY-MM-DD" */
static void reg(struct tb *t, const char *id, const char *pnr, const char *provider,
                const char *unit, const char *county, const char *dx, const char *signed_on,
                const char *periods)
{
        struct intyg in;
        struct intyg_tags tg;
        tb_mk(&in, &tg, id, pnr, provider, unit, NULL, county, TAG_LEVEL, dx, periods);
        snprintf(in.signed_at, sizeof in.signed_at, "%sT10:00:00", signed_on);
        snprintf(in.prognosis, sizeof in.prognosis, "STOR_SANNOLIKHET");
        char err[256];
        cr_assert_eq(stats_record_intyg(t->s, &in, &tg, err, sizeof err), 0, "%s", err);
}

/* ---- the scenario ---- */

#define P1 "191212121212" /* second-last digit odd: a man */
#define P2 "194910019802" /* even: a woman */
#define P3 "195001019826" /* a woman */

/* The days are in March 2024, so that the month of every as-of day shows the changes ("day
 * 1" = 2024-03-01). Day 1: A (P1, 60 days at 100 %), C1 and C2 (P2, 7 free days between:
 * two cases), a certificate at a second care provider in the same county. */
static void day1(struct tb *t)
{
        reg(t, "A", P1, "VG1", "U1", "01", "F32", "2024-03-01", "2024-01-15/2024-03-14/100");
        reg(t, "C1", P2, "VG1", "U1", "01", "M54", "2024-03-01", "2024-02-01/2024-02-20/100");
        reg(t, "C2", P2, "VG1", "U1", "01", "M54", "2024-03-01", "2024-02-28/2024-03-10/50");
        reg(t, "V2", P3, "VG2", "U9", "01", "J06", "2024-03-01", "2024-02-03/2024-02-20/100");
}

/* Day 10: B continues A's case past 90 days at 50 % with another diagnosis at another unit
 * of the provider; D closes C1-C2's gap (the two cases join into one). */
static void day10(struct tb *t)
{
        reg(t, "B", P1, "VG1", "U2", "01", "M54", "2024-03-10", "2024-03-15/2024-04-30/50");
        reg(t, "D", P2, "VG1", "U1", "01", "M54", "2024-03-10", "2024-02-21/2024-02-27/75");
}

/* ---- running reports ---- */

struct q {
        enum stats_level level;
        const char *id;
        enum stats_mode mode;
        enum stats_view view;
        bool side;
};

static const struct q queries[] = {
    {STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_UNIT, "U1", STATS_MODE_CROSS, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_UNIT, "U2", STATS_MODE_SERIES, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_UNIT, "U1", STATS_MODE_DEFAULT, STATS_VIEW_OWNER, true},
    {STATS_LEVEL_PROVIDER, "VG1", STATS_MODE_SERIES, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_PROVIDER, "VG1", STATS_MODE_CROSS, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_PROVIDER, "VG2", STATS_MODE_SERIES, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_COUNTY, "01", STATS_MODE_SERIES, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_COUNTY, "01", STATS_MODE_CROSS, STATS_VIEW_PUBLIC, false},
    {STATS_LEVEL_COUNTRY, NULL, STATS_MODE_SERIES, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_COUNTRY, NULL, STATS_MODE_CROSS, STATS_VIEW_OWNER, false},
    {STATS_LEVEL_COUNTRY, NULL, STATS_MODE_SERIES, STATS_VIEW_PUBLIC, false},
};
#define N_Q (sizeof queries / sizeof queries[0])

/* One report as JSON (csv: as CSV, which does not name the as-of day). */
static char *run(struct tb *t, const char *report, const struct q *x, const char *as_of, bool csv)
{
        struct stats_query q = {.report = report,
                                .level = x->level,
                                .from = "2024-01",
                                .to = "2024-06",
                                .as_of = as_of,
                                .mode = x->mode,
                                .cutoff = 3,
                                .view = x->view,
                                .side_by_side = x->side};
        if (x->id) {
                q.ids[0] = x->id;
                q.n_ids = 1;
        }
        struct stats_table *tab = tb_run(t, &q);
        char *out = NULL;
        size_t len = 0;
        cr_assert_eq(csv ? stats_table_csv(tab, &out, &len) : stats_table_json(tab, &out, &len), 0);
        stats_table_free(tab);
        return out;
}

/* Every report at every query of the list, as of a day. */
struct snap {
        char *out[16][N_Q];
        size_t nrep;
};

static void take(struct tb *t, struct snap *s, const char *as_of, bool csv)
{
        const struct stats_report_info *li = stats_report_list(&s->nrep);
        cr_assert(s->nrep <= 16);
        for (size_t r = 0; r < s->nrep; r++)
                for (size_t k = 0; k < N_Q; k++)
                        s->out[r][k] = run(t, li[r].name, &queries[k], as_of, csv);
}

static void same(const struct snap *a, const struct snap *b, const char *what)
{
        const struct stats_report_info *li = stats_report_list(&(size_t){0});
        for (size_t r = 0; r < a->nrep; r++)
                for (size_t k = 0; k < N_Q; k++)
                        cr_assert_str_eq(a->out[r][k], b->out[r][k], "%s: %s, query %zu", what,
                                         li[r].name, k);
}

static void drop(struct snap *s)
{
        for (size_t r = 0; r < s->nrep; r++)
                for (size_t k = 0; k < N_Q; k++)
                        free(s->out[r][k]);
}

/* The count of (period, group_id, col) of one report query, from the table itself (not a
 * rendering). */
static int64_t cell(struct tb *t, const char *report, enum stats_level level, const char *id,
                    enum stats_mode mode, const char *as_of, const char *period,
                    const char *group_id, const char *col)
{
        struct stats_query q = {.report = report,
                                .level = level,
                                .from = "2024-01",
                                .to = "2024-06",
                                .as_of = as_of,
                                .mode = mode,
                                .view = STATS_VIEW_OWNER};
        if (id) {
                q.ids[0] = id;
                q.n_ids = 1;
        }
        struct stats_table *tab = tb_run(t, &q);
        int64_t v = tb_cell(tab, period, group_id, col);
        stats_table_free(tab);
        return v;
}

static void today_str(char out[11])
{
        intyg_day_to_date((int32_t)(time(NULL) / 86400), out);
}

/* ---- tests ---- */

Test(asof, later_certificates_and_revocation_leave_an_earlier_day_unchanged)
{
        struct tb t;
        tb_open(&t);
        day1(&t);
        struct snap before = {0}, before_csv = {0};
        take(&t, &before, "2024-03-05", false);
        take(&t, &before_csv, "2024-03-05", true);
        /* as of day 5 there is one case of A, 60 days, 100 %, not long */
        cr_assert_eq(cell(&t, "langa_sjukfall", STATS_LEVEL_PROVIDER, "VG1", STATS_MODE_SERIES,
                          "2024-03-05", "2024-03", "over90", "man"),
                     0);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-03-05",
                          "2024-02", "all", "totalt"),
                     3); /* A, C1, C2 */
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-03-05",
                          "2024-03", "all", "totalt"),
                     2); /* A, C2 */

        day10(&t);
        tb_revoke(&t, "A", "2024-03-12");
        tb_flush(&t);

        /* Day 5 again: byte-identical, every report, level, mode and the side-by-side view. */
        struct snap after = {0};
        take(&t, &after, "2024-03-05", false);
        same(&before, &after, "as of day 5 before and after B, D and A's revocation");
        drop(&after);

        /* Day 11: B and D count, A's revocation (day 12) does not yet. */
        cr_assert_eq(cell(&t, "langa_sjukfall", STATS_LEVEL_PROVIDER, "VG1", STATS_MODE_SERIES,
                          "2024-03-11", "2024-03", "over90", "man"),
                     1); /* A 60 + B 47 = 107 days in March */
        cr_assert_eq(cell(&t, "sjukskrivningsgrad", STATS_LEVEL_PROVIDER, "VG1", STATS_MODE_SERIES,
                          "2024-03-11", "2024-03", "50", "man"),
                     1);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_PROVIDER, "VG1", STATS_MODE_CROSS,
                          "2024-03-11", "", "all", "kvinnor"),
                     1); /* C1, D, C2 joined into one case */
        cr_assert_eq(cell(&t, "intyg_per_sjukfall", STATS_LEVEL_PROVIDER, "VG1", STATS_MODE_CROSS,
                          "2024-03-11", "", "3", "kvinnor"),
                     1);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-03-11",
                          "2024-02", "all", "man"),
                     1); /* A still counts */
        cr_assert_eq(cell(&t, "intyg_per_manad", STATS_LEVEL_COUNTRY, NULL, STATS_MODE_SERIES,
                          "2024-03-11", "2024-03", "all", "totalt"),
                     6);

        /* Today (explicitly, and with no --as-of): A is revoked, B alone is 61 days. */
        char today[11];
        today_str(today);
        const char *days[2] = {today, NULL};
        for (int i = 0; i < 2; i++) {
                cr_assert_eq(cell(&t, "langa_sjukfall", STATS_LEVEL_PROVIDER, "VG1",
                                  STATS_MODE_SERIES, days[i], "2024-03", "over90", "man"),
                             0);
                cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES,
                                  days[i], "2024-02", "all", "man"),
                             0);
                cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U2", STATS_MODE_SERIES,
                                  days[i], "2024-03", "all", "man"),
                             1);
                cr_assert_eq(cell(&t, "intyg_per_manad", STATS_LEVEL_COUNTRY, NULL,
                                  STATS_MODE_SERIES, days[i], "2024-03", "all", "totalt"),
                             5);
        }
        struct snap now_csv = {0}, none_csv = {0};
        take(&t, &now_csv, today, true);
        take(&t, &none_csv, NULL, true);
        same(&now_csv, &none_csv, "as of today and without --as-of");
        drop(&now_csv);
        drop(&none_csv);
        drop(&before);
        drop(&before_csv);
        tb_close(&t);
}

/* The recomputed answer equals what a store holding only the facts of that day gives from
 * its incremental state: the definition of "the report the store would have given". */
Test(asof, recomputed_equals_the_store_of_that_day)
{
        struct tb full, d11;
        tb_open(&full);
        tb_open(&d11);
        day1(&full);
        day10(&full);
        tb_revoke(&full, "A", "2024-03-12");
        reg(&full, "E", P2, "VG1", "U1", "01", "F43", "2024-04-01", "2024-03-11/2024-04-30/25");
        day1(&d11);
        day10(&d11);
        struct snap a = {0}, b = {0};
        take(&full, &a, "2024-03-11", false);
        take(&d11, &b, "2024-03-11", false);
        same(&a, &b, "store with later facts as of day 11 vs the store of day 11");
        drop(&a);
        drop(&b);
        /* and as of a day after everything in the smaller store, both paths again */
        take(&full, &a, "2024-03-31", true);
        take(&d11, &b, "2024-03-31", true);
        cr_assert_str_neq(a.out[0][0], b.out[0][0]); /* A is revoked by then in full */
        drop(&a);
        drop(&b);
        tb_close(&full);
        tb_close(&d11);
}

Test(asof, revocation_days)
{
        struct tb t;
        tb_open(&t);
        /* revoked before it arrived, on day 3: visible on no day before its signing... */
        tb_revoke(&t, "R", "2024-01-03");
        reg(&t, "R", P1, "VG1", "U1", "01", "F32", "2024-01-01", "2024-01-01/2024-01-31/100");
        /* ...but on days 1 and 2 it was valid */
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-01-02",
                          "2024-01", "all", "man"),
                     1);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-01-03",
                          "2024-01", "all", "man"),
                     0);
        cr_assert_eq(cell(&t, "intyg_per_manad", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES,
                          "2024-01-02", "2024-01", "all", "man"),
                     1);
        cr_assert_eq(cell(&t, "intyg_per_manad", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES,
                          "2024-01-03", "2024-01", "all", "man"),
                     0);
        /* signed on day 20, so not there on day 19, there on day 20 */
        reg(&t, "S", P2, "VG1", "U1", "01", "F32", "2024-01-20", "2024-01-15/2024-01-31/100");
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, STATS_MODE_SERIES,
                          "2024-01-19", "2024-01", "all", "kvinnor"),
                     0);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, STATS_MODE_SERIES,
                          "2024-01-20", "2024-01", "all", "kvinnor"),
                     1);
        /* a revocation without its own day counts from the day it arrives (today) */
        tb_revoke(&t, "S", NULL);
        char today[11], yesterday[11];
        today_str(today);
        intyg_day_to_date((int32_t)(time(NULL) / 86400) - 1, yesterday);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, STATS_MODE_SERIES, yesterday,
                          "2024-01", "all", "kvinnor"),
                     1);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_COUNTRY, NULL, STATS_MODE_SERIES, today,
                          "2024-01", "all", "kvinnor"),
                     0);
        tb_close(&t);
}

Test(asof, record_carries_the_revocation_day)
{
        struct pseudonym *ps = NULL;
        char dir[] = "/tmp/test_asof_rec.XXXXXX", key[64], err[256];
        cr_assert_not_null(mkdtemp(dir));
        snprintf(key, sizeof key, "%s/key", dir);
        tb_write_key(key, TB_KEY);
        ps = pseudonym_load(key, err, sizeof err);
        cr_assert_not_null(ps, "%s", err);
        struct intyg in;
        memset(&in, 0, sizeof in);
        in.kind = INTYG_REVOKE;
        snprintf(in.id, sizeof in.id, "X");
        struct stats_record r;
        snprintf(in.sent_at, sizeof in.sent_at, "2024-03-12T08:00:00");
        cr_assert_eq(stats_record_from_intyg(ps, &in, NULL, &r, err, sizeof err), STATS_OK);
        cr_assert_eq(r.revoked_day, intyg_date_to_day("2024-03-12"));
        /* a malformed or missing day: today */
        snprintf(in.sent_at, sizeof in.sent_at, "2024-13-45T08:00");
        cr_assert_eq(stats_record_from_intyg(ps, &in, NULL, &r, err, sizeof err), STATS_OK);
        cr_assert_eq(r.revoked_day, (int32_t)(time(NULL) / 86400));
        in.sent_at[0] = '\0';
        cr_assert_eq(stats_record_from_intyg(ps, &in, NULL, &r, err, sizeof err), STATS_OK);
        cr_assert_eq(r.revoked_day, (int32_t)(time(NULL) / 86400));
        pseudonym_free(ps);
        unlink(key);
        rmdir(dir);
}

Test(asof, bad_as_of_refused)
{
        struct tb t;
        tb_open(&t);
        day1(&t);
        tb_flush(&t);
        char err[256];
        struct stats_store *st = stats_report_open(t.db, err, sizeof err);
        cr_assert_not_null(st, "%s", err);
        const char *bad[] = {"2024-1-5", "yesterday", "2024-02-30", "2024-01-05x"};
        for (size_t i = 0; i < 4; i++) {
                struct stats_query q = {.report = "sjukfall",
                                        .level = STATS_LEVEL_COUNTRY,
                                        .from = "2024-01",
                                        .to = "2024-02",
                                        .as_of = bad[i]};
                struct stats_table *tab = NULL;
                cr_assert_eq(stats_report_run(st, &q, &tab, err, sizeof err), STATS_EINVAL, "%s",
                             bad[i]);
                cr_assert_null(tab);
                q.side_by_side = true;
                q.level = STATS_LEVEL_UNIT;
                q.ids[0] = "U1";
                q.n_ids = 1;
                cr_assert_eq(stats_report_run(st, &q, &tab, err, sizeof err), STATS_EINVAL, "%s",
                             bad[i]);
        }
        /* the range starts after the day */
        struct stats_query q = {.report = "sjukfall",
                                .level = STATS_LEVEL_COUNTRY,
                                .from = "2024-02",
                                .to = "2024-03",
                                .as_of = "2024-01-31"};
        struct stats_table *tab = NULL;
        cr_assert_eq(stats_report_run(st, &q, &tab, err, sizeof err), STATS_EINVAL);
        /* the day before everything: an empty (all-zero) report, not an error */
        q.from = "2023-12";
        q.as_of = "2023-12-31";
        q.view = STATS_VIEW_OWNER;
        cr_assert_eq(stats_report_run(st, &q, &tab, err, sizeof err), 0, "%s", err);
        cr_assert_eq(tab->nrows, 1);
        cr_assert_eq(tab->cells[2].n, 0);
        stats_table_free(tab);
        stats_store_close(st);
        tb_close(&t);
}

static void sql(const char *db, const char *stmt)
{
        sqlite3 *h = NULL;
        cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
        char *msg = NULL;
        int rc = sqlite3_exec(h, stmt, NULL, NULL, &msg);
        cr_assert_eq(rc, SQLITE_OK, "%s: %s", stmt, msg ? msg : "");
        sqlite3_close(h);
}

static int64_t sql_int(const char *db, const char *stmt)
{
        sqlite3 *h = NULL;
        sqlite3_stmt *s = NULL;
        cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(h, stmt, -1, &s, NULL), SQLITE_OK, "%s", stmt);
        int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
        sqlite3_finalize(s);
        sqlite3_close(h);
        return v;
}

Test(asof, migrates_a_schema_1_store)
{
        struct tb t;
        tb_open(&t);
        day1(&t);
        tb_revoke(&t, "C2", "2024-03-12");
        tb_revoke(&t, "LATE", "2024-03-12"); /* revoked before it arrives */
        tb_flush(&t);
        stats_close(t.s);
        /* make it what schema 1 was: no revocation days, no horizon */
        sql(t.db, "ALTER TABLE fact DROP COLUMN revoked_day; ALTER TABLE revoked DROP COLUMN day;"
                  "DROP TABLE horizon; UPDATE meta SET v = '1' WHERE k = 'schema';");
        char err[256];
        struct stats_store *st = stats_report_open(t.db, err, sizeof err);
        cr_assert_null(st);
        cr_assert(strstr(err, "schema 1, expected 2") != NULL, "%s", err);

        t.s = stats_open(t.db, t.key, err, sizeof err); /* writable: migrates */
        cr_assert_not_null(t.s, "%s", err);
        tb_flush(&t);
        cr_assert_eq(sql_int(t.db, "SELECT v FROM meta WHERE k = 'schema'"), 2);
        /* the unknown revocation day becomes the signing day: C2 is out on every day */
        cr_assert_eq(sql_int(t.db, "SELECT count(*) FROM fact WHERE active = 0 AND revoked_day "
                                   "= signed_day"),
                     1);
        cr_assert_eq(sql_int(t.db, "SELECT count(*) FROM fact WHERE revoked_day IS NOT NULL"), 1);
        cr_assert_eq(sql_int(t.db, "SELECT count(*) FROM horizon"), 2);
        cr_assert_eq(sql_int(t.db, "SELECT max(day) FROM horizon"),
                     intyg_date_to_day("2024-03-01"));
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-03-05",
                          "2024-03", "all", "kvinnor"),
                     0);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-03-05",
                          "2024-02", "all", "kvinnor"),
                     1);
        /* the certificate revoked before it arrived arrives revoked from its signing day */
        reg(&t, "LATE", P2, "VG1", "U1", "01", "M54", "2024-03-02", "2024-03-01/2024-03-20/100");
        tb_flush(&t);
        cr_assert_eq(sql_int(t.db, "SELECT count(*) FROM fact WHERE active = 0 AND revoked_day "
                                   "= signed_day"),
                     2);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-03-05",
                          "2024-03", "all", "kvinnor"),
                     0);
        /* a new revocation keeps its day again */
        tb_revoke(&t, "A", "2024-03-20");
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-03-19",
                          "2024-03", "all", "man"),
                     1);
        cr_assert_eq(cell(&t, "sjukfall", STATS_LEVEL_UNIT, "U1", STATS_MODE_SERIES, "2024-03-20",
                          "2024-03", "all", "man"),
                     0);
        /* opening it again does not migrate twice */
        stats_close(t.s);
        t.s = stats_open(t.db, t.key, err, sizeof err);
        cr_assert_not_null(t.s, "%s", err);
        tb_close(&t);
}
