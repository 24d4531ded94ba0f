/*
 * sjukfall.c - case merging, union length and per-month rows (followup-statistics.md
 * §1.3-§1.5). Pure functions over caller arrays; any thread.
 */
#include "sjukfall.h"

#include "intyg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int32_t sf_month_of_day(int32_t z)
{
        int y, m, d;
        intyg_days_to_civil(z, &y, &m, &d);
        return y * 12 + m - 1;
}

int32_t sf_month_first(int32_t month)
{
        return intyg_civil_to_days(month / 12, month % 12 + 1, 1);
}

int32_t sf_month_last(int32_t month)
{
        return sf_month_first(month + 1) - 1;
}

void sf_month_format(int32_t month, char out[8])
{
        unsigned y = month < 0 || month / 12 > 9999 ? 0u : (unsigned)(month / 12);
        unsigned m = month < 0 ? 1u : (unsigned)(month % 12 + 1);
        snprintf(out, 8, "%04u-%02u", y % 10000u, m % 100u);
}

int32_t sf_month_parse(const char *s)
{
        if (!s || strlen(s) != 7 || s[4] != '-')
                return -1;
        for (int i = 0; i < 7; i++)
                if (i != 4 && (s[i] < '0' || s[i] > '9'))
                        return -1;
        int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        int m = (s[5] - '0') * 10 + (s[6] - '0');
        if (y < 1900 || m < 1 || m > 12)
                return -1;
        return y * 12 + m - 1;
}

/* §1.3: a fact joins unless start > case end + MAX_GAP + 1, so 5 free days join, 6 split. */
bool sf_joins(int32_t case_end, int32_t next_start)
{
        return (int64_t)next_start <= (int64_t)case_end + SF_MAX_GAP + 1;
}

/* §1.4: order by start date, then certificate (the later-arriving certificate wins), then
 * degree (two periods of one certificate starting the same day: the highest degree wins). */
static int fact_cmp(const void *a, const void *b)
{
        const struct sf_fact *x = a, *y = b;
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        if (x->cert != y->cert)
                return x->cert < y->cert ? -1 : 1;
        if (x->degree != y->degree)
                return x->degree < y->degree ? -1 : 1;
        return x->id < y->id ? -1 : x->id > y->id;
}

void sf_sort(struct sf_fact *facts, size_t n)
{
        if (n > 1)
                qsort(facts, n, sizeof *facts, fact_cmp);
}

struct cert_pos {
        int64_t cert;
        size_t pos;
};

static int cert_pos_cmp(const void *a, const void *b)
{
        const struct cert_pos *x = a, *y = b;
        if (x->cert != y->cert)
                return x->cert < y->cert ? -1 : 1;
        return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* first[i] = 1 when facts[i] is the first (in case order) fact of its certificate. */
static int mark_first_cert(const struct sf_fact *f, size_t n, unsigned char *first)
{
        struct cert_pos *cp = malloc((n ? n : 1) * sizeof *cp);
        if (!cp)
                return -1;
        for (size_t i = 0; i < n; i++)
                cp[i] = (struct cert_pos){f[i].cert, i};
        if (n > 1)
                qsort(cp, n, sizeof *cp, cert_pos_cmp);
        memset(first, 0, n);
        for (size_t i = 0; i < n; i++)
                if (i == 0 || cp[i].cert != cp[i - 1].cert)
                        first[cp[i].pos] = 1;
        free(cp);
        return 0;
}

void sf_partition(struct sf_fact *facts, size_t n, struct sf_case *cases, size_t *ncases)
{
        *ncases = 0;
        sf_sort(facts, n);
        unsigned char *first = malloc(n ? n : 1);
        bool have_first = first != NULL;
        struct sf_case *c = NULL;
        int32_t cur_end = 0;
        for (size_t i = 0; i < n; i++) {
                const struct sf_fact *f = &facts[i];
                if (!c || !sf_joins(c->end, f->start)) {
                        c = &cases[(*ncases)++];
                        *c = (struct sf_case){.first = i, .start = f->start, .end = f->end};
                        cur_end = f->start - 1;
                }
                c->n++;
                /* §1.5: union of period days; overlaps count once, gap days not at all. */
                int32_t s = f->start > cur_end + 1 ? f->start : cur_end + 1;
                if (f->end >= s)
                        c->length += f->end - s + 1;
                if (f->end > cur_end)
                        cur_end = f->end;
                if (f->end > c->end)
                        c->end = f->end;
        }
        /* Distinct certificates per case: a certificate's periods may fall into two cases
         * (a gap inside one certificate), so count per case, not globally. */
        for (size_t k = 0; k < *ncases; k++) {
                struct sf_case *cc = &cases[k];
                if (have_first && mark_first_cert(facts + cc->first, cc->n, first) == 0) {
                        for (size_t i = 0; i < cc->n; i++)
                                cc->ncert += first[i];
                } else {
                        cc->ncert = (int)cc->n;
                }
        }
        free(first);
}

struct month_slot {
        long anchor; /* index of the latest-started visible fact active that month, -1 none */
        uint8_t degmask;
        uint16_t dxmask;
        uint32_t chmask, progmask, measmask;
};

static int qsort_i32(const void *a, const void *b)
{
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
        return x < y ? -1 : x > y;
}

long sf_case_rows(const struct sf_fact *f, size_t n, bool per_unit, struct sf_row **out)
{
        *out = NULL;
        if (n == 0)
                return 0;
        int32_t maxend = f[0].end;
        for (size_t i = 1; i < n; i++)
                if (f[i].end > maxend)
                        maxend = f[i].end;
        const int32_t m0 = sf_month_of_day(f[0].start), m1 = sf_month_of_day(maxend);
        const long nm = (long)m1 - m0 + 1;
        if (nm < 1 || nm > SF_MAX_CASE_MONTHS || n > SF_MAX_CASE_FACTS)
                return -1;

        /* Prefix values over the case order: union length, distinct certificates, max age.
         * tie_end[i]: last index with the same start (facts started the same day count). */
        int *plen = malloc(n * sizeof *plen), *pncert = malloc(n * sizeof *pncert);
        int *page = malloc(n * sizeof *page);
        size_t *tie_end = malloc(n * sizeof *tie_end);
        unsigned char *first = malloc(n);
        int32_t *units = malloc((n + 1) * sizeof *units);
        struct month_slot *slot = malloc((size_t)nm * sizeof *slot);
        struct sf_row *rows = NULL;
        long nrows = -1;
        if (!plen || !pncert || !page || !tie_end || !first || !units || !slot ||
            mark_first_cert(f, n, first) != 0)
                goto done;
        int32_t cur_end = f[0].start - 1;
        int len = 0, nc = 0, age = 0;
        for (size_t i = 0; i < n; i++) {
                int32_t s = f[i].start > cur_end + 1 ? f[i].start : cur_end + 1;
                if (f[i].end >= s)
                        len += f[i].end - s + 1;
                if (f[i].end > cur_end)
                        cur_end = f[i].end;
                nc += first[i];
                if (f[i].age > age) /* §1.4: age = highest among the facts */
                        age = f[i].age;
                plen[i] = len;
                pncert[i] = nc;
                page[i] = age;
        }
        for (size_t i = n; i-- > 0;)
                tie_end[i] = (i + 1 < n && f[i + 1].start == f[i].start) ? tie_end[i + 1] : i;

        size_t nunits = 0;
        units[nunits++] = 0;
        if (per_unit) {
                for (size_t i = 0; i < n; i++)
                        units[nunits++] = f[i].unit;
                qsort(units + 1, nunits - 1, sizeof *units, qsort_i32);
                size_t w = 1;
                for (size_t i = 1; i < nunits; i++)
                        if (w == 1 || units[i] != units[w - 1])
                                units[w++] = units[i];
                nunits = w;
        }
        size_t cap = (size_t)nm * nunits;
        rows = malloc(cap * sizeof *rows);
        if (!rows)
                goto done;
        nrows = 0;
        for (size_t u = 0; u < nunits; u++) {
                const int32_t scope = units[u];
                for (long m = 0; m < nm; m++)
                        slot[m] = (struct month_slot){.anchor = -1};
                /* Facts are in case order, so the last visible fact touching a month is the
                 * latest-started one active in it (§1.4 "last fact"). */
                for (size_t i = 0; i < n; i++) {
                        if (scope != 0 && f[i].unit != scope)
                                continue;
                        int32_t a = sf_month_of_day(f[i].start) - m0;
                        int32_t b = sf_month_of_day(f[i].end) - m0;
                        for (int32_t m = a; m <= b; m++) {
                                struct month_slot *sl = &slot[m];
                                sl->anchor = (long)i;
                                if (f[i].degree >= 25 && f[i].degree <= 100)
                                        sl->degmask |= (uint8_t)(1u << (f[i].degree / 25 - 1));
                                sl->dxmask |= (uint16_t)(1u << (f[i].dxgroup & 15));
                                sl->chmask |= 1u << (f[i].chapter & 31);
                                sl->progmask |= 1u << (f[i].prognosis & 31);
                                sl->measmask |= f[i].measures;
                        }
                }
                for (long m = 0; m < nm; m++) {
                        const struct month_slot *sl = &slot[m];
                        if (sl->anchor < 0)
                                continue; /* §1.3: counted only in months active >= 1 day */
                        const struct sf_fact *a = &f[sl->anchor];
                        size_t k = tie_end[sl->anchor];
                        rows[nrows++] = (struct sf_row){
                            .month = m0 + (int32_t)m,
                            .scope = scope,
                            .anchor_start = a->start,
                            .anchor_cert = a->cert,
                            .anchor_degree = a->degree,
                            .sex = a->sex,
                            .age = page[k],
                            .county = a->county,
                            .degree = a->degree,
                            .dxgroup = a->dxgroup,
                            .chapter = a->chapter,
                            .section = a->section,
                            .prognosis = a->prognosis,
                            .measures = a->measures,
                            .length = plen[k],
                            .ncert = pncert[k],
                            .resolved = a->resolved,
                            .degmask = sl->degmask,
                            .dxmask = sl->dxmask,
                            .chmask = sl->chmask,
                            .progmask = sl->progmask,
                            .measmask = sl->measmask,
                        };
                }
        }
        *out = rows;
        rows = NULL;
done:
        free(rows);
        free(plen);
        free(pncert);
        free(page);
        free(tie_end);
        free(first);
        free(units);
        free(slot);
        return nrows;
}

/* §2.4 AgeGroup: Under 16, 16-20, 21-25 ... 61-65, Över 65. */
int sf_age_group(int age)
{
        if (age <= 15)
                return 0;
        if (age >= 66)
                return SF_N_AGE_GROUPS - 1;
        return (age - 16) / 5 + 1;
}

const char *sf_age_group_label(int g)
{
        static const char *const l[SF_N_AGE_GROUPS] = {
            "Under 16 år", "16-20 år", "21-25 år", "26-30 år", "31-35 år", "36-40 år",
            "41-45 år",    "46-50 år", "51-55 år", "56-60 år", "61-65 år", "Över 65 år"};
        return g >= 0 && g < SF_N_AGE_GROUPS ? l[g] : NULL;
}

/* §2.5 SjukfallsLangdGroup, days inclusive. */
int sf_length_group(int d)
{
        static const int upper[SF_N_LENGTH_GROUPS - 1] = {14, 30, 60, 90, 180, 364, 730};
        for (int g = 0; g < SF_N_LENGTH_GROUPS - 1; g++)
                if (d <= upper[g])
                        return g;
        return SF_N_LENGTH_GROUPS - 1;
}

const char *sf_length_group_label(int g)
{
        static const char *const l[SF_N_LENGTH_GROUPS] = {
            "Under 15 dagar", "15-30 dagar",   "31-60 dagar", "61-90 dagar",
            "91-180 dagar",   "181-364 dagar", "1-2 år",      "2- år"};
        return g >= 0 && g < SF_N_LENGTH_GROUPS ? l[g] : NULL;
}

/* §2.2 Intyg per sjukfall: 1, 2 ... 10, "Över 10 intyg". */
int sf_ncert_group(int n)
{
        if (n < 1)
                return 0;
        return n > 10 ? 10 : n - 1;
}

const char *sf_ncert_group_label(int g)
{
        static const char *const l[SF_N_NCERT_GROUPS] = {
            "1 intyg", "2 intyg", "3 intyg", "4 intyg",  "5 intyg",      "6 intyg",
            "7 intyg", "8 intyg", "9 intyg", "10 intyg", "Över 10 intyg"};
        return g >= 0 && g < SF_N_NCERT_GROUPS ? l[g] : NULL;
}

int sf_degree_index(int degree)
{
        switch (degree) {
        case 25:
                return 0;
        case 50:
                return 1;
        case 75:
                return 2;
        case 100:
                return 3;
        default:
                return -1;
        }
}
