/*
 * test_intyg.c - the calendar helpers every stage shares (periods, ages, months) and the
 * error list's bound.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "intyg.h"

Test(intyg, dates_round_trip_and_edges)
{
        cr_assert_eq(intyg_date_to_day("1970-01-01"), 0);
        cr_assert_eq(intyg_date_to_day("1970-01-02"), 1);
        cr_assert_eq(intyg_date_to_day("2000-03-01") - intyg_date_to_day("2000-02-28"), 2);
        cr_assert_eq(intyg_date_to_day("1900-03-01") - intyg_date_to_day("1900-02-28"), 1);
        /* Every day from 1840 to 2100 survives the round trip. */
        char buf[11];
        for (int32_t d = intyg_date_to_day("1840-01-01"); d <= intyg_date_to_day("2100-12-31");
             d++) {
                intyg_day_to_date(d, buf);
                cr_assert_eq(intyg_date_to_day(buf), d, "%s", buf);
                int y, m, dd;
                intyg_days_to_civil(d, &y, &m, &dd);
                cr_assert_eq(intyg_civil_to_days(y, m, dd), d);
        }
        /* Not real calendar dates. */
        cr_assert_eq(intyg_date_to_day("2023-02-29"), -1);
        cr_assert_eq(intyg_date_to_day("2024-02-30"), -1);
        cr_assert_eq(intyg_date_to_day("2024-13-01"), -1);
        cr_assert_eq(intyg_date_to_day("2024-00-10"), -1);
        cr_assert_eq(intyg_date_to_day("2024-1-01"), -1);
        cr_assert_eq(intyg_date_to_day("2024-01-01T00"), -1);
        cr_assert_eq(intyg_date_to_day("1839-12-31"), -1);
        cr_assert_eq(intyg_date_to_day(NULL), -1);
        cr_assert_neq(intyg_date_to_day("2024-02-29"), -1);
}

Test(intyg, error_list_is_bounded)
{
        struct verrs v;
        memset(&v, 0, sizeof v);
        for (int i = 0; i < VERR_MAX + 5; i++)
                verrs_add(&v, "q1", "/x", "error %d", i);
        cr_assert_eq(v.n, VERR_MAX);
        cr_assert_eq(v.dropped, 5);
        cr_assert_str_eq(v.items[0].message, "error 0");
        for (int i = 0; i < VERR_MAX_WARNINGS + 3; i++)
                verrs_warn(&v, "person-id", "/p", "w");
        cr_assert_eq(v.n_warnings, VERR_MAX_WARNINGS);
}

Test(intyg, wipe_clears_the_patient)
{
        struct intyg in;
        memset(&in, 0, sizeof in);
        snprintf(in.person_id, sizeof in.person_id, "191212121212");
        snprintf(in.birth_date, sizeof in.birth_date, "1912-12-12");
        snprintf(in.id, sizeof in.id, "keep");
        intyg_wipe(&in);
        cr_assert_eq(in.person_id[0], '\0');
        cr_assert_eq(in.birth_date[0], '\0');
        cr_assert_str_eq(in.id, "keep");
}
