/*
 * intyg.c - small helpers for struct intyg and struct verrs: error lists, dates, wiping.
 * Pure functions; any thread.
 */
#include "intyg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void verr_fill(struct verr *e, const char *rule, const char *path, const char *fmt,
                      va_list ap)
{
        snprintf(e->rule, sizeof e->rule, "%s", rule ? rule : "");
        snprintf(e->path, sizeof e->path, "%s", path ? path : "");
        vsnprintf(e->message, sizeof e->message, fmt, ap);
}

void verrs_add(struct verrs *v, const char *rule, const char *path, const char *fmt, ...)
{
        if (v->n >= VERR_MAX) {
                v->dropped++;
                return;
        }
        va_list ap;
        va_start(ap, fmt);
        verr_fill(&v->items[v->n++], rule, path, fmt, ap);
        va_end(ap);
}

void verrs_warn(struct verrs *v, const char *rule, const char *path, const char *fmt, ...)
{
        if (v->n_warnings >= VERR_MAX_WARNINGS)
                return;
        va_list ap;
        va_start(ap, fmt);
        verr_fill(&v->warnings[v->n_warnings++], rule, path, fmt, ap);
        va_end(ap);
}

void intyg_wipe(struct intyg *in)
{
        explicit_bzero(in->person_id, sizeof in->person_id);
        explicit_bzero(in->birth_date, sizeof in->birth_date);
}

static int is_leap(int y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
        static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from civil and back, after Howard Hinnant's algorithms. */
int32_t intyg_civil_to_days(int y, int m, int d)
{
        y -= m <= 2;
        const int era = (y >= 0 ? y : y - 399) / 400;
        const int yoe = y - era * 400;
        const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

int32_t intyg_date_to_day(const char *s)
{
        if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
                return -1;
        for (int i = 0; i < 10; i++)
                if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
                        return -1;
        int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        int m = (s[5] - '0') * 10 + (s[6] - '0');
        int d = (s[8] - '0') * 10 + (s[9] - '0');
        if (y < 1840 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
                return -1;
        return intyg_civil_to_days(y, m, d);
}

void intyg_days_to_civil(int32_t z, int *yp, int *mp_out, int *dp)
{
        z += 719468;
        const int era = (z >= 0 ? z : z - 146096) / 146097;
        const unsigned doe = (unsigned)(z - era * 146097);
        const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int y = (int)yoe + era * 400;
        const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const unsigned mp = (5 * doy + 2) / 153;
        const unsigned d = doy - (153 * mp + 2) / 5 + 1;
        const unsigned m = mp < 10 ? mp + 3 : mp - 9;
        y += m <= 2;
        *yp = y;
        *mp_out = (int)m;
        *dp = (int)d;
}

void intyg_day_to_date(int32_t z, char out[11])
{
        int y, m, d;
        intyg_days_to_civil(z, &y, &m, &d);
        char buf[32];
        snprintf(buf, sizeof buf, "%04d-%02d-%02d", y % 10000, m % 100, d % 100);
        memcpy(out, buf, 10);
        out[10] = '\0';
}
