/*
 * test_sjukfall.c - the reference system's case rules (followup-statistics.md §1.3-§1.5) on
 * struct sf_fact arrays: 4 and 5 free days join, 6 split; overlaps; out of order; union
 * length; per-month rows; unit viewpoint; group boundaries.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "intyg.h"
#include "sjukfall.h"

static int32_t D(const char *ymd)
{
        return intyg_date_to_day(ymd);
}

static struct sf_fact F(int64_t id, const char *s, const char *e, int degree, int32_t unit) {
        return (struct sf_fact){.id = id,
                                .cert = id,
                                .start = D(s),
                                .end = D(e),
                                .degree = degree,
                                .unit = unit,
                                .sex = 2,
                                .age = 40,
                                .dxgroup = 2,
                                .chapter = 5};
}

static size_t
ncases(struct sf_fact *f, size_t n, struct sf_case *c)
{
        size_t k = 0;
        sf_partition(f, n, c, &k);
        return k;
}

Test(sjukfall, four_free_days_join)
{ /* FitNesse At1001: 4 days between -> one case */
        struct sf_fact f[] = {F(1, "2024-03-01", "2024-03-10", 100, 1),
                              F(2, "2024-03-15", "2024-03-20", 100, 1)};
        struct sf_case c[2];
        cr_assert_eq(ncases(f, 2, c), 1);
        cr_assert_eq(c[0].length, 16); /* gap days are not counted (At1907) */
        cr_assert_eq(c[0].ncert, 2);
}

Test(sjukfall, five_free_days_join)
{ /* At1003 */
        struct sf_fact f[] = {F(1, "2024-03-01", "2024-03-10", 100, 1),
                              F(2, "2024-03-16", "2024-03-20", 100, 1)};
        struct sf_case c[2];
        cr_assert_eq(ncases(f, 2, c), 1);
        cr_assert_eq(c[0].length, 15);
}

Test(sjukfall, six_free_days_split)
{ /* At1002 */
        struct sf_fact f[] = {F(1, "2024-03-01", "2024-03-10", 100, 1),
                              F(2, "2024-03-17", "2024-03-20", 100, 1)};
        struct sf_case c[2];
        cr_assert_eq(ncases(f, 2, c), 2);
        cr_assert_eq(c[0].length, 10);
        cr_assert_eq(c[1].length, 4);
}

Test(sjukfall, joins_edge)
{
        cr_assert(sf_joins(D("2024-01-10"), D("2024-01-16")));
        cr_assert_not(sf_joins(D("2024-01-10"), D("2024-01-17")));
        cr_assert(sf_joins(D("2024-01-10"), D("2024-01-01")));
}

Test(sjukfall, overlapping_and_out_of_order)
{ /* At1019, At1023, At1909: overlapping days count once, arrival order does not matter */
        struct sf_fact f[] = {F(1, "2024-03-20", "2024-04-10", 50, 1),
                              F(2, "2024-03-01", "2024-03-25", 100, 1),
                              F(3, "2024-04-05", "2024-04-15", 25, 1)};
        struct sf_case c[3];
        cr_assert_eq(ncases(f, 3, c), 1);
        cr_assert_eq(c[0].start, D("2024-03-01"));
        cr_assert_eq(c[0].end, D("2024-04-15"));
        cr_assert_eq(c[0].length, 46);
        cr_assert_eq(f[0].id, 2); /* sorted by start */
}

Test(sjukfall, bridging_fact_joins_two)
{
        struct sf_fact f[] = {F(1, "2024-01-01", "2024-01-10", 100, 1),
                              F(2, "2024-02-01", "2024-02-10", 100, 1),
                              F(3, "2024-01-12", "2024-01-28", 100, 1)};
        struct sf_case c[3];
        cr_assert_eq(ncases(f, 3, c), 1);
        cr_assert_eq(c[0].length, 10 + 17 + 10);
}

Test(sjukfall, rows_month_attributes)
{ /* §1.4: per month the latest-started active period decides; age is the highest. */
        struct sf_fact f[] = {F(1, "2024-01-20", "2024-02-10", 100, 1),
                              F(2, "2024-02-11", "2024-03-05", 50, 1)};
        f[1].dxgroup = 3;
        f[1].age = 41;
        struct sf_case c[2];
        cr_assert_eq(ncases(f, 2, c), 1);
        struct sf_row *r = NULL;
        long n = sf_case_rows(f, 2, false, &r);
        cr_assert_eq(n, 3); /* Jan, Feb, Mar: active at least one day each */
        cr_assert_eq(r[0].month, sf_month_parse("2024-01"));
        cr_assert_eq(r[0].degree, 100);
        cr_assert_eq(r[0].length, 22); /* the case as known from its started facts */
        cr_assert_eq(r[0].age, 40);
        cr_assert_eq(r[1].degree, 50); /* two degrees in Feb: the later wins */
        cr_assert_eq(r[1].degmask, 0x2 | 0x8);
        cr_assert_eq(r[1].dxgroup, 3);
        cr_assert_eq(r[1].length, 22 + 24);
        cr_assert_eq(r[1].age, 41);
        cr_assert_eq(r[2].degree, 50);
        free(r);
}

Test(sjukfall, same_start_highest_degree_wins)
{ /* At1409: two periods of one certificate start the same day */
        struct sf_fact f[] = {F(1, "2024-05-01", "2024-05-10", 50, 1),
                              F(2, "2024-05-01", "2024-05-31", 100, 1)};
        f[1].cert = 1;
        struct sf_case c[2];
        ncases(f, 2, c);
        struct sf_row *r = NULL;
        cr_assert_eq(sf_case_rows(f, 2, false, &r), 1);
        cr_assert_eq(r[0].degree, 100);
        cr_assert_eq(r[0].ncert, 1);
        free(r);
}

Test(sjukfall, later_certificate_wins_same_start)
{
        struct sf_fact f[] = {F(5, "2024-05-01", "2024-05-10", 100, 1),
                              F(9, "2024-05-01", "2024-05-10", 25, 1)};
        struct sf_case c[2];
        ncases(f, 2, c);
        struct sf_row *r = NULL;
        cr_assert_eq(sf_case_rows(f, 2, false, &r), 1);
        cr_assert_eq(r[0].degree, 25);
        free(r);
}

Test(sjukfall, unit_view_length_up_to_my_unit)
{ /* At1901/At1906: enhet1 74 days, then enhet2 31 days: 61-90 and 91-180 */
        struct sf_fact f[] = {F(1, "2024-01-01", "2024-03-14", 100, 11),
                              F(2, "2024-03-15", "2024-04-14", 100, 12)};
        struct sf_case c[2];
        cr_assert_eq(ncases(f, 2, c), 1);
        cr_assert_eq(c[0].length, 74 + 31);
        struct sf_row *r = NULL;
        long n = sf_case_rows(f, 2, true, &r);
        int u1 = -1, u2 = -1;
        for (long i = 0; i < n; i++) {
                if (r[i].scope == 11 && r[i].month == sf_month_parse("2024-03"))
                        u1 = r[i].length;
                if (r[i].scope == 12 && r[i].month == sf_month_parse("2024-03"))
                        u2 = r[i].length;
        }
        cr_assert_eq(u1, 74);
        cr_assert_eq(u2, 105);
        cr_assert_eq(sf_length_group(u1), 3);
        cr_assert_eq(sf_length_group(u2), 4);
        free(r);
}

Test(sjukfall, unit_view_extended_by_other_unit)
{ /* At1015: A 1-10 Mar, B 11-20 Mar, A 21-30 Mar: one case seen from A */
        struct sf_fact f[] = {F(1, "2024-03-01", "2024-03-10", 100, 1),
                              F(2, "2024-03-11", "2024-03-20", 100, 2),
                              F(3, "2024-03-21", "2024-03-30", 100, 1)};
        struct sf_case c[3];
        cr_assert_eq(ncases(f, 3, c), 1);
        struct sf_row *r = NULL;
        long n = sf_case_rows(f, 3, true, &r);
        int rows_a = 0;
        for (long i = 0; i < n; i++)
                if (r[i].scope == 1) {
                        rows_a++;
                        cr_assert_eq(r[i].length, 30);
                }
        cr_assert_eq(rows_a, 1);
        free(r);
}

Test(sjukfall, long_case_every_month)
{ /* At1021: a long case appears in every month it covers */
        struct sf_fact f[] = {F(1, "2024-01-31", "2024-06-01", 100, 1)};
        struct sf_row *r = NULL;
        cr_assert_eq(sf_case_rows(f, 1, false, &r), 6);
        cr_assert_eq(r[5].month, sf_month_parse("2024-06"));
        free(r);
}

Test(sjukfall, too_many_months_refused)
{
        struct sf_fact f[] = {F(1, "2010-01-01", "2031-01-01", 100, 1)};
        struct sf_row *r = NULL;
        cr_assert_eq(sf_case_rows(f, 1, false, &r), -1);
        cr_assert_null(r);
        struct sf_fact g[] = {F(1, "2010-01-01", "2029-12-31", 100, 1)};
        cr_assert_eq(sf_case_rows(g, 1, false, &r), 240);
        free(r);
}

Test(groups, age_boundaries)
{ /* §2.4 */
        cr_assert_eq(sf_age_group(0), 0);
        cr_assert_eq(sf_age_group(15), 0);
        cr_assert_eq(sf_age_group(16), 1);
        cr_assert_eq(sf_age_group(20), 1);
        cr_assert_eq(sf_age_group(21), 2);
        cr_assert_eq(sf_age_group(60), 9);
        cr_assert_eq(sf_age_group(61), 10);
        cr_assert_eq(sf_age_group(65), 10);
        cr_assert_eq(sf_age_group(66), 11);
        cr_assert_str_eq(sf_age_group_label(11), "Över 65 år");
}

Test(groups, length_boundaries)
{ /* §2.5 */
        int edges[][2] = {{0, 0},   {14, 0},  {15, 1},  {30, 1},  {31, 2},  {60, 2},
                          {61, 3},  {90, 3},  {91, 4},  {180, 4}, {181, 5}, {364, 5},
                          {365, 6}, {730, 6}, {731, 7}, {5000, 7}};
        for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
                cr_assert_eq(sf_length_group(edges[i][0]), edges[i][1], "days %d", edges[i][0]);
}

Test(groups, ncert_and_degree)
{
        cr_assert_eq(sf_ncert_group(1), 0);
        cr_assert_eq(sf_ncert_group(10), 9);
        cr_assert_eq(sf_ncert_group(11), 10);
        cr_assert_str_eq(sf_ncert_group_label(10), "Över 10 intyg");
        cr_assert_eq(sf_degree_index(25), 0);
        cr_assert_eq(sf_degree_index(100), 3);
        cr_assert_eq(sf_degree_index(60), -1);
}

Test(months, format_parse)
{
        char b[8];
        int32_t m = sf_month_parse("2024-02");
        cr_assert_eq(sf_month_first(m), D("2024-02-01"));
        cr_assert_eq(sf_month_last(m), D("2024-02-29"));
        sf_month_format(m, b);
        cr_assert_str_eq(b, "2024-02");
        cr_assert_eq(sf_month_of_day(D("2024-12-31")), sf_month_parse("2024-12"));
        cr_assert_eq(sf_month_parse("2024-13"), -1);
        cr_assert_eq(sf_month_parse("202401"), -1);
}
