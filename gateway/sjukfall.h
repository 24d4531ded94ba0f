/*
 * sjukfall.h - sick-leave cases (sjukfall) from period facts: merging, length, per-month rows.
 *
 * Pure logic over caller-owned arrays, no I/O, no allocation except sf_case_rows' output.
 * Implements followup-statistics.md §1.3-§1.5: join when the next period starts at most 5
 * free days after the case's end; length = union of period days; a case counts in every
 * month it is active; per-month attributes from the latest-started active period.
 * Threads: any (no shared state).
 */
#ifndef INTYGSGW_SJUKFALL_H
#define INTYGSGW_SJUKFALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SF_MAX_GAP         5     /* §1.3 MAX_GAP: free days that still join */
#define SF_LONG_CASE       90    /* §1.5 "mer än 90 dagar": length > 90 */
#define SF_MAX_CASE_FACTS  20000 /* facts in one case; a larger case is refused (hostile) */
#define SF_MAX_CASE_MONTHS 240   /* months one case may span (20 years) */

/** One sick-leave period of one certificate (a fact row), as sjukfall needs it. */
struct sf_fact {
        int64_t id;        /* arrival order: a later-stored fact has a larger id */
        int64_t cert;      /* certificate key; facts of one certificate share it */
        int32_t start;     /* day number (days since 1970-01-01) */
        int32_t end;       /* inclusive */
        int degree;        /* 25, 50, 75, 100 */
        int32_t unit;      /* follow-up unit id (> 0) */
        int county;        /* 0..99, 0 unknown */
        int sex;           /* 1 male, 2 female */
        int age;           /* years at the certificate's last sick-leave day */
        int dxgroup;       /* enum icd10_group */
        int chapter;       /* 0..22 */
        int section;       /* 0..264 */
        int prognosis;     /* enum stats_prognosis */
        uint32_t measures; /* bit set of enum stats_measure */
        bool resolved;     /* follow-up unit resolved at the uniform level */
};

/** One case: facts[first .. first+n) of the sorted array. */
struct sf_case {
        size_t first;
        size_t n;
        int32_t start;
        int32_t end; /* maximum end seen */
        int length;  /* days in the union of its periods (§1.5) */
        int ncert;   /* distinct certificates */
};

/**
 * One (case, month, scope) row: what the case looks like in that month from one viewpoint.
 * scope 0 is the care provider's view (all facts); scope u > 0 the view of follow-up unit u
 * (only u's facts choose the groups; length still counts every fact of the case, §1.3).
 */
struct sf_row {
        int32_t month; /* year * 12 + month - 1 */
        int32_t scope;
        int32_t anchor_start; /* the latest-started visible fact active this month */
        int64_t anchor_cert;
        int anchor_degree;
        int sex, age, county, degree, dxgroup, chapter, section, prognosis;
        uint32_t measures; /* anchor's */
        int length;        /* union of the case's facts started no later than the anchor */
        int ncert;         /* certificates among those facts */
        bool resolved;     /* anchor's follow-up unit resolved */
        uint8_t degmask;   /* bit (degree/25 - 1) of every visible fact active this month */
        uint16_t dxmask;   /* bit dxgroup */
        uint32_t chmask;   /* bit chapter (0..22) */
        uint32_t progmask; /* bit prognosis */
        uint32_t measmask; /* union of measures */
};

/** Month index (year * 12 + month - 1) of a day number. */
int32_t sf_month_of_day(int32_t day);
/** First and last day numbers of a month index. */
int32_t sf_month_first(int32_t month);
int32_t sf_month_last(int32_t month);
/** "YYYY-MM" into out[8]. */
void sf_month_format(int32_t month, char out[8]);
/** Parse "YYYY-MM"; -1 if malformed. */
int32_t sf_month_parse(const char *s);

/** Whether fact b joins a case that ends on case_end (b.start <= case_end + 6, §1.3). */
bool sf_joins(int32_t case_end, int32_t next_start);

/** Sort facts into case order: start, then certificate arrival, then degree (§1.4). */
void sf_sort(struct sf_fact *facts, size_t n);

/**
 * Sort facts and split them into cases (§1.3). cases must hold n entries; *ncases is set.
 * The facts must all belong to one (care provider, patient).
 */
void sf_partition(struct sf_fact *facts, size_t n, struct sf_case *cases, size_t *ncases);

/**
 * The rows of one case (its facts sorted, as sf_partition leaves them): scope 0 for every
 * month the case is active, and with per_unit also one row per (month, unit) for each unit
 * with a fact active that month. *out is malloc'ed (caller frees); returns the row count,
 * or -1 on out-of-memory or a case longer than SF_MAX_CASE_MONTHS months.
 */
long sf_case_rows(const struct sf_fact *facts, size_t n, bool per_unit, struct sf_row **out);

/* Groups (§2.4, §2.5, §2.2). Each returns the group index; *_label gives its label. */
#define SF_N_AGE_GROUPS    12
#define SF_N_LENGTH_GROUPS 8
#define SF_N_NCERT_GROUPS  11 /* 1..10, "Över 10 intyg" */
#define SF_N_DEGREES       4
int sf_age_group(int age);
const char *sf_age_group_label(int g);
int sf_length_group(int days);
const char *sf_length_group_label(int g);
int sf_ncert_group(int n);
const char *sf_ncert_group_label(int g);
int sf_degree_index(int degree); /* 25 -> 0 .. 100 -> 3, -1 otherwise */

#endif
