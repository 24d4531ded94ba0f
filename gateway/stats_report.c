/*
 * stats_report.c - the follow-up reports: contributions per (care provider, period, sex,
 * group) from the aggregates or the case rows, disclosure control per care provider before
 * summing (followup-statistics.md §2.9), totals from published parts only, comparability,
 * side by side; rendering to JSON, CSV and text.
 * Owns the tables it builds. Read-only over a store opened for the call; any thread.
 */
#include "stats_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

enum rkind { RK_CASES, RK_CERTS };
enum rgroups {
        G_ONE,
        G_DX,
        G_CHAPTER,
        G_AGE,
        G_DEGREE,
        G_LENGTH,
        G_OVER90,
        G_NCERT,
        G_UNIT,
        G_COUNTY,
        G_PROG,
        G_MEAS
};

struct rdef {
        const char *name, *title;
        enum rkind kind;
        enum stats_dim dim;
        enum rgroups groups;
        bool cross; /* default mode */
};

/* §2.2 report list; prognos and atgarder are what the reference lacks (§2.8 gap). */
static const struct rdef defs[] = {
    {"sjukfall", "Antal sjukfall per månad", RK_CASES, DIM_TOTAL, G_ONE, false},
    {"diagnosgrupp", "Sjukfall per diagnosgrupp", RK_CASES, DIM_DXGROUP, G_DX, false},
    {"diagnoskapitel", "Sjukfall per diagnoskapitel", RK_CASES, DIM_CHAPTER, G_CHAPTER, false},
    {"aldersgrupp", "Sjukfall per åldersgrupp", RK_CASES, DIM_AGE, G_AGE, true},
    {"sjukskrivningsgrad", "Sjukfall per sjukskrivningsgrad", RK_CASES, DIM_DEGREE, G_DEGREE,
     false},
    {"sjukskrivningslangd", "Sjukfall per sjukskrivningslängd", RK_CASES, DIM_LENGTH, G_LENGTH,
     true},
    {"langa_sjukfall", "Sjukfall längre än 90 dagar", RK_CASES, DIM_OVER90, G_OVER90, false},
    {"intyg_per_sjukfall", "Intyg per sjukfall", RK_CASES, DIM_NCERT, G_NCERT, true},
    {"intyg_per_manad", "Antal intyg per månad (signeringsdatum)", RK_CERTS, DIM_CERTS, G_ONE,
     false},
    {"vardenhet", "Sjukfall per uppföljningsenhet", RK_CASES, DIM_UNIT, G_UNIT, true},
    {"lan", "Sjukfall per län", RK_CASES, DIM_TOTAL, G_COUNTY, true},
    {"prognos", "Sjukfall per prognos (fråga 39)", RK_CASES, DIM_PROGNOSIS, G_PROG, true},
    {"atgarder", "Sjukfall per arbetslivsinriktad åtgärd (fråga 40)", RK_CASES, DIM_MEASURE, G_MEAS,
     true},
};
#define N_DEFS (sizeof defs / sizeof defs[0])

const struct stats_report_info *stats_report_list(size_t *n)
{
        static struct stats_report_info info[N_DEFS];
        for (size_t i = 0; i < N_DEFS; i++)
                info[i] = (struct stats_report_info){defs[i].name, defs[i].title,
                                                     defs[i].cross ? "cross" : "series"};
        *n = N_DEFS;
        return info;
}

/* §2.7 the 21 county codes plus 00 Okänt län. */
static const int counties[] = {1,  3,  4,  5,  6,  7,  8,  9,  10, 12, 13,
                               14, 17, 18, 19, 20, 21, 22, 23, 24, 25, 0};
static const char *county_name(int c)
{
        switch (c) {
        case 1:
                return "Stockholms län";
        case 3:
                return "Uppsala län";
        case 4:
                return "Södermanlands län";
        case 5:
                return "Östergötlands län";
        case 6:
                return "Jönköpings län";
        case 7:
                return "Kronobergs län";
        case 8:
                return "Kalmar län";
        case 9:
                return "Gotlands län";
        case 10:
                return "Blekinge län";
        case 12:
                return "Skåne län";
        case 13:
                return "Hallands län";
        case 14:
                return "Västra Götalands län";
        case 17:
                return "Värmlands län";
        case 18:
                return "Örebro län";
        case 19:
                return "Västmanlands län";
        case 20:
                return "Dalarnas län";
        case 21:
                return "Gävleborgs län";
        case 22:
                return "Västernorrlands län";
        case 23:
                return "Jämtlands län";
        case 24:
                return "Västerbottens län";
        case 25:
                return "Norrbottens län";
        default:
                return "Okänt län";
        }
}

static const char *const degree_labels[SF_N_DEGREES] = {"25 %", "50 %", "75 %", "100 %"};

static const char *prognosis_label(int p)
{
        static const char *const l[STATS_N_PROGNOSIS] = {
            "Ej besvarad",
            "Stor sannolikhet att återgå helt i nuvarande sysselsättning",
            "Återgår helt efter x antal dagar",
            "Sannolikt inte återgå helt i nuvarande sysselsättning",
            "Prognos oklar",
            "Återgår helt efter x antal månader",
            "Annan kod"};
        return p >= 0 && p < STATS_N_PROGNOSIS ? l[p] : "";
}

/* ---- contributions ---- */

#define CROSS_PERIOD 0

struct merged {
        int64_t case_id;
        int32_t month, scope, provider;
        int32_t anchor_start;
        int64_t anchor_cert;
        int anchor_degree;
        int sex, age, county, degree, dxgroup, chapter, prognosis, length, ncert;
        uint32_t measures;
        bool resolved;
        uint8_t degmask;
        uint16_t dxmask;
        uint32_t chmask, progmask, measmask;
};

struct eng {
        const struct rdef *d;
        bool cross;
        struct stats_map contrib; /* a: period << 8 | sex; b: provider << 32 | group */
        bool have;
        struct merged cur;
        int rc;
};

static int contribute(struct eng *e, int32_t provider, int32_t period, int sex, int32_t grp,
                      int64_t n, int64_t nres)
{
        struct stats_map_entry *m =
            stats_map_get(&e->contrib, (uint64_t)(uint32_t)period << 8 | (uint64_t)(sex & 0xff),
                          (uint64_t)(uint32_t)provider << 32 | (uint32_t)grp);
        if (!m)
                return -1;
        m->v[0] += n;
        m->v[1] += nres;
        return 0;
}

static int flush_case(struct eng *e)
{
        if (!e->have)
                return 0;
        e->have = false;
        const struct merged *c = &e->cur;
        const int32_t period = e->cross ? CROSS_PERIOD : c->month;
        int32_t g[40];
        int ng = 0;
        const bool multi = e->cross; /* cross-section: once per distinct value (§1.4) */
        switch (e->d->groups) {
        case G_ONE:
                g[ng++] = 0;
                break;
        case G_DX:
                if (multi) {
                        for (int b = 0; b < ICD10_N_GROUPS; b++)
                                if (c->dxmask & (1u << b))
                                        g[ng++] = b;
                } else {
                        g[ng++] = c->dxgroup;
                }
                break;
        case G_CHAPTER:
                if (multi) {
                        for (int b = 0; b <= ICD10_N_CHAPTERS; b++)
                                if (c->chmask & (1u << b))
                                        g[ng++] = b;
                } else {
                        g[ng++] = c->chapter;
                }
                break;
        case G_AGE:
                g[ng++] = sf_age_group(c->age);
                break;
        case G_DEGREE:
                if (multi) {
                        for (int b = 0; b < SF_N_DEGREES; b++)
                                if (c->degmask & (1u << b))
                                        g[ng++] = b;
                } else if (sf_degree_index(c->degree) >= 0) {
                        g[ng++] = sf_degree_index(c->degree);
                }
                break;
        case G_LENGTH:
                g[ng++] = sf_length_group(c->length);
                break;
        case G_OVER90:
                if (c->length > SF_LONG_CASE) /* §1.5: exactly 90 excluded, 91 included */
                        g[ng++] = 0;
                break;
        case G_NCERT:
                g[ng++] = sf_ncert_group(c->ncert);
                break;
        case G_UNIT:
                g[ng++] = c->scope;
                break;
        case G_COUNTY:
                g[ng++] = c->county;
                break;
        case G_PROG:
                if (multi) {
                        for (int b = 0; b < STATS_N_PROGNOSIS; b++)
                                if (c->progmask & (1u << b))
                                        g[ng++] = b;
                } else {
                        g[ng++] = c->prognosis;
                }
                break;
        case G_MEAS: {
                uint32_t m = multi ? c->measmask : c->measures;
                if (m == 0)
                        g[ng++] = STATS_N_MEASURES;
                for (int b = 0; b < STATS_N_MEASURES; b++)
                        if (m & (1u << b))
                                g[ng++] = b;
                break;
        }
        }
        for (int i = 0; i < ng; i++)
                if (contribute(e, c->provider, period, c->sex, g[i], 1, c->resolved) != 0)
                        return -1;
        return 0;
}

/* §1.4: the later-started fact wins, then the later certificate, then the higher degree. */
static bool anchor_later(const struct sf_row *r, const struct merged *m)
{
        if (r->anchor_start != m->anchor_start)
                return r->anchor_start > m->anchor_start;
        if (r->anchor_cert != m->anchor_cert)
                return r->anchor_cert > m->anchor_cert;
        return r->degree > m->anchor_degree;
}

static int on_row(void *arg, const struct stats_row_rec *rec)
{
        struct eng *e = arg;
        const struct sf_row *r = &rec->r;
        const bool by_unit = e->d->groups == G_UNIT;
        bool same = e->have && e->cur.case_id == rec->case_id &&
                    (e->cross || e->cur.month == r->month) &&
                    (!by_unit || e->cur.scope == r->scope);
        if (!same) {
                if (flush_case(e) != 0)
                        return e->rc = -1;
                e->have = true;
                e->cur = (struct merged){.case_id = rec->case_id,
                                         .month = r->month,
                                         .scope = r->scope,
                                         .provider = rec->provider,
                                         .anchor_start = INT32_MIN};
        }
        struct merged *m = &e->cur;
        if (anchor_later(r, m)) {
                m->anchor_start = r->anchor_start;
                m->anchor_cert = r->anchor_cert;
                m->anchor_degree = r->degree;
                m->sex = r->sex;
                m->county = r->county;
                m->degree = r->degree;
                m->dxgroup = r->dxgroup;
                m->chapter = r->chapter;
                m->prognosis = r->prognosis;
                m->measures = r->measures;
                m->length = r->length;
                m->ncert = r->ncert;
                m->resolved = r->resolved;
        }
        if (r->age > m->age) /* §1.4: age = highest */
                m->age = r->age;
        m->degmask |= r->degmask;
        m->dxmask |= r->dxmask;
        m->chmask |= r->chmask;
        m->progmask |= r->progmask;
        m->measmask |= r->measmask;
        return 0;
}

static int on_agg(void *arg, const struct stats_agg_rec *a)
{
        struct eng *e = arg;
        int32_t grp = e->d->groups == G_COUNTY ? a->county : a->grp;
        return contribute(e, a->provider, e->cross ? CROSS_PERIOD : a->month, a->sex, grp, a->n,
                          a->nres);
}

static int on_cert(void *arg, const struct stats_cert_rec *c)
{
        struct eng *e = arg;
        return contribute(e, c->provider, e->cross ? CROSS_PERIOD : c->month, c->sex, 0, c->n,
                          c->nres);
}

/* ---- disclosure control (§2.9) ---- */

struct slice_item {
        uint64_t slice; /* period << 40 | sex << 32 | provider */
        int64_t n;
        struct stats_map_entry *e;
};

static int slice_cmp(const void *a, const void *b)
{
        const struct slice_item *x = a, *y = b;
        if (x->slice != y->slice)
                return x->slice < y->slice ? -1 : 1;
        if (x->n != y->n)
                return x->n < y->n ? -1 : 1;
        return (x->e > y->e) - (x->e < y->e);
}

/*
 * Primary: a care provider's cell (provider, period, sex, group) under the cutoff is left
 * out before summing (§2.9, At3001-At3019), except inside the viewer's own provider (At3100).
 * Secondary (beyond the reference): within one (provider, period, sex) the suppressed cells
 * together must hold at least `cutoff` cases, else the smallest kept cells are suppressed
 * too, so that the provider's published total in another report minus what this report
 * publishes cannot give back a small cell.
 * Marks v[2] = 1 on suppressed cells. Returns 0, -1 on out-of-memory.
 */
static int disclose(struct stats_map *m, int cutoff, enum stats_view view, int32_t viewer)
{
        if (view == STATS_VIEW_OWNER)
                return 0;
        size_t n = 0;
        struct slice_item *it = malloc((m->n ? m->n : 1) * sizeof *it);
        if (!it)
                return -1;
        for (size_t i = 0; i < m->cap; i++) {
                struct stats_map_entry *e = &m->e[i];
                if (!e->used || e->v[0] <= 0)
                        continue;
                int32_t provider = (int32_t)(e->b >> 32);
                if (view == STATS_VIEW_PROVIDER && provider == viewer)
                        continue;
                uint64_t period = e->a >> 8, sex = e->a & 0xff;
                it[n++] = (struct slice_item){
                    .slice = period << 40 | sex << 32 | (uint32_t)provider, .n = e->v[0], .e = e};
                if (e->v[0] < cutoff)
                        e->v[2] = 1;
        }
        if (n > 1)
                qsort(it, n, sizeof *it, slice_cmp);
        for (size_t i = 0; i < n;) {
                size_t j = i;
                int64_t sup = 0;
                while (j < n && it[j].slice == it[i].slice) {
                        if (it[j].e->v[2])
                                sup += it[j].n;
                        j++;
                }
                /* items are sorted by n within the slice: suppress the smallest kept first */
                for (size_t k = i; k < j && sup > 0 && sup < cutoff; k++) {
                        if (it[k].e->v[2])
                                continue;
                        it[k].e->v[2] = 1;
                        sup += it[k].n;
                }
                i = j;
        }
        free(it);
        return 0;
}

/* ---- building the table ---- */

struct outcell {
        int64_t n, nres;
        bool supp;
};

static void put_cell(struct stats_cell *c, int64_t n, int64_t nres, bool supp)
{
        memset(c, 0, sizeof *c);
        c->n = n;
        c->suppressed = n == 0 && supp;
        c->partial = n > 0 && supp;
        if (n > 0) {
                c->has_comparability = true;
                c->comparability = (double)nres / (double)n;
        }
}

struct resolved_query {
        const struct rdef *d;
        bool cross;
        int32_t m_from, m_to;
        int cutoff;
        int32_t viewer;
        bool as_of_given; /* --as-of: the report the store would have given on that day */
        int32_t as_of;    /* day */
        struct stats_scan scan;
        int32_t units[STATS_MAX_UNITS];
        size_t n_units;
        /* unit level: every requested unit (normalised) and its id, 0 if the store has never
         * seen it: its row looks the same as a known unit's with nothing by --as-of */
        char req[STATS_MAX_UNITS][HSA_ID_MAX + 1];
        int32_t req_id[STATS_MAX_UNITS];
        size_t n_req;
};

static int group_list(struct stats_store *st, const struct resolved_query *rq,
                      const struct stats_map *pub, int32_t **out, size_t *n)
{
        size_t cap = 64, k = 0;
        int32_t *g = malloc(cap * sizeof *g);
        if (!g)
                return -1;
#define PUSH(v)                                                                                    \
        do {                                                                                       \
                if (k == cap) {                                                                    \
                        int32_t *ng_ = realloc(g, (cap *= 2) * sizeof *g);                         \
                        if (!ng_) {                                                                \
                                free(g);                                                           \
                                return -1;                                                         \
                        }                                                                          \
                        g = ng_;                                                                   \
                }                                                                                  \
                g[k++] = (v);                                                                      \
        } while (0)
        switch (rq->d->groups) {
        case G_ONE:
        case G_OVER90:
                PUSH(0);
                break;
        case G_DX:
                for (int i = 1; i < ICD10_N_GROUPS; i++)
                        PUSH(i);
                PUSH(0);
                break;
        case G_CHAPTER:
                for (int i = 1; i <= ICD10_N_CHAPTERS; i++)
                        PUSH(i);
                PUSH(0);
                break;
        case G_AGE:
                for (int i = 0; i < SF_N_AGE_GROUPS; i++)
                        PUSH(i);
                break;
        case G_DEGREE:
                for (int i = 0; i < SF_N_DEGREES; i++)
                        PUSH(i);
                break;
        case G_LENGTH:
                for (int i = 0; i < SF_N_LENGTH_GROUPS; i++)
                        PUSH(i);
                break;
        case G_NCERT:
                for (int i = 0; i < SF_N_NCERT_GROUPS; i++)
                        PUSH(i);
                break;
        case G_COUNTY:
                for (size_t i = 0; i < sizeof counties / sizeof counties[0]; i++)
                        PUSH(counties[i]);
                break;
        case G_PROG:
                for (int i = 1; i < STATS_N_PROGNOSIS; i++)
                        PUSH(i);
                PUSH(0);
                break;
        case G_MEAS:
                for (int i = 0; i <= STATS_N_MEASURES; i++)
                        PUSH(i);
                break;
        case G_UNIT: {
                /* the selected units first (an unknown one as -(its place) - 1), then every
                 * other unit with a published figure */
                for (size_t i = 0; i < rq->n_req; i++)
                        PUSH(rq->req_id[i] > 0 ? rq->req_id[i] : -(int32_t)i - 1);
                for (size_t i = 0; i < pub->cap; i++) {
                        if (!pub->e[i].used)
                                continue;
                        int32_t u = (int32_t)(uint32_t)pub->e[i].b;
                        bool seen = false;
                        for (size_t j = 0; j < k && !seen; j++)
                                seen = g[j] == u;
                        if (!seen)
                                PUSH(u);
                }
                break;
        }
        }
#undef PUSH
        (void)st;
        *out = g;
        *n = k;
        return 0;
}

static void group_label(struct stats_store *st, const struct resolved_query *rq, int32_t g,
                        struct stats_trow *row)
{
        const struct rdef *d = rq->d;
        const char *l = "";
        switch (d->groups) {
        case G_ONE:
                l = d->kind == RK_CERTS ? "Intyg" : "Sjukfall";
                snprintf(row->group_id, sizeof row->group_id, "all");
                break;
        case G_OVER90:
                l = "Mer än 90 dagar";
                snprintf(row->group_id, sizeof row->group_id, "over90");
                break;
        case G_DX:
                l = icd10_group_label((enum icd10_group)g);
                snprintf(row->group_id, sizeof row->group_id, "%s",
                         icd10_group_id((enum icd10_group)g));
                break;
        case G_CHAPTER:
                l = icd10_chapter_range(g);
                snprintf(row->group_id, sizeof row->group_id, "%s", l);
                break;
        case G_AGE:
                l = sf_age_group_label(g);
                snprintf(row->group_id, sizeof row->group_id, "age%d", g);
                break;
        case G_DEGREE:
                l = degree_labels[g & 3];
                snprintf(row->group_id, sizeof row->group_id, "%d", (g + 1) * 25);
                break;
        case G_LENGTH:
                l = sf_length_group_label(g);
                snprintf(row->group_id, sizeof row->group_id, "length%d", g);
                break;
        case G_NCERT:
                l = sf_ncert_group_label(g);
                snprintf(row->group_id, sizeof row->group_id, "%s", g == 10 ? ">10" : "");
                if (g < 10)
                        snprintf(row->group_id, sizeof row->group_id, "%d", g + 1);
                break;
        case G_COUNTY:
                l = county_name(g);
                snprintf(row->group_id, sizeof row->group_id, "%02d", g % 100);
                break;
        case G_PROG:
                l = prognosis_label(g);
                snprintf(row->group_id, sizeof row->group_id, "%s", stats_prognosis_code(g));
                break;
        case G_MEAS:
                l = stats_measure_code(g);
                snprintf(row->group_id, sizeof row->group_id, "%s", l);
                break;
        case G_UNIT:
                if (g < 0 && (size_t)(-(g + 1)) < rq->n_req)
                        snprintf(row->group_id, sizeof row->group_id, "%s", rq->req[-(g + 1)]);
                else
                        st->ops->hsa_name(st, g, row->group_id, sizeof row->group_id);
                l = row->group_id;
                break;
        }
        snprintf(row->group, sizeof row->group, "%s", l ? l : "");
}

static int resolve(struct stats_store *st, const struct stats_query *q, struct resolved_query *rq,
                   char *err, size_t errlen)
{
        memset(rq, 0, sizeof *rq);
        for (size_t i = 0; i < N_DEFS; i++)
                if (q->report && strcmp(q->report, defs[i].name) == 0)
                        rq->d = &defs[i];
        if (!rq->d) {
                snprintf(err, errlen, "unknown report '%.40s' (see --list)",
                         q->report ? q->report : "");
                return STATS_EINVAL;
        }
        rq->cross = q->mode == STATS_MODE_DEFAULT ? rq->d->cross : q->mode == STATS_MODE_CROSS;
        rq->m_from = sf_month_parse(q->from);
        rq->m_to = sf_month_parse(q->to);
        if (rq->m_from < 0 || rq->m_to < 0 || rq->m_from > rq->m_to ||
            rq->m_to - rq->m_from >= SF_MAX_CASE_MONTHS) {
                snprintf(err, errlen,
                         "--from and --to must be YYYY-MM, from <= to, at most %d "
                         "months",
                         SF_MAX_CASE_MONTHS);
                return STATS_EINVAL;
        }
        int32_t today;
        if (q->as_of && *q->as_of) {
                today = intyg_date_to_day(q->as_of);
                if (today < 0) {
                        snprintf(err, errlen, "--as-of must be YYYY-MM-DD");
                        return STATS_EINVAL;
                }
                rq->as_of_given = true;
                rq->as_of = today;
        } else {
                today = (int32_t)(time(NULL) / 86400);
        }
        /* "today" fixes the last month a report may show: nothing after it. */
        if (rq->m_to > sf_month_of_day(today))
                rq->m_to = sf_month_of_day(today);
        if (rq->m_from > rq->m_to) {
                snprintf(err, errlen, "the range starts after --as-of");
                return STATS_EINVAL;
        }
        rq->cutoff = q->cutoff > 0 ? q->cutoff : STATS_CUTOFF_DEFAULT;
        if (rq->cutoff < STATS_CUTOFF_FLOOR) /* §2.9: the minimum is 3 */
                rq->cutoff = STATS_CUTOFF_FLOOR;
        if (q->view == STATS_VIEW_PROVIDER) {
                char h[HSA_ID_MAX + 1];
                stats_hsa_normalise(q->viewer_provider, h);
                if (!h[0]) {
                        snprintf(err, errlen, "a viewer care provider is needed");
                        return STATS_EINVAL;
                }
                st->ops->hsa_id(st, h, &rq->viewer);
        }
        rq->scan =
            (struct stats_scan){.month_from = rq->m_from, .month_to = rq->m_to, .county = -1};
        switch (q->level) {
        case STATS_LEVEL_UNIT:
                if (q->n_ids == 0 || q->n_ids > STATS_MAX_UNITS) {
                        snprintf(err, errlen, "level unit needs 1 to %d unit HSA-ids",
                                 STATS_MAX_UNITS);
                        return STATS_EINVAL;
                }
                for (size_t i = 0; i < q->n_ids; i++) {
                        char *h = rq->req[rq->n_req];
                        int32_t id = 0;
                        stats_hsa_normalise(q->ids[i], h);
                        st->ops->hsa_id(st, h, &id);
                        rq->req_id[rq->n_req++] = id;
                        if (id > 0)
                                rq->units[rq->n_units++] = id;
                }
                rq->scan.units = rq->units;
                rq->scan.n_units = rq->n_units;
                break;
        case STATS_LEVEL_PROVIDER: {
                char h[HSA_ID_MAX + 1];
                if (q->n_ids != 1) {
                        snprintf(err, errlen, "level provider needs one care provider HSA-id");
                        return STATS_EINVAL;
                }
                stats_hsa_normalise(q->ids[0], h);
                st->ops->hsa_id(st, h, &rq->scan.provider);
                if (rq->scan.provider == 0)
                        rq->scan.provider = -1; /* unknown: matches nothing */
                break;
        }
        case STATS_LEVEL_COUNTY: {
                const char *c = q->n_ids == 1 ? q->ids[0] : "";
                if (strlen(c) != 2 || c[0] < '0' || c[0] > '9' || c[1] < '0' || c[1] > '9') {
                        snprintf(err, errlen, "level county needs a two-digit county code");
                        return STATS_EINVAL;
                }
                rq->scan.county = (c[0] - '0') * 10 + (c[1] - '0');
                break;
        }
        case STATS_LEVEL_COUNTRY:
                if (q->n_ids != 0) {
                        snprintf(err, errlen, "level country takes no --id");
                        return STATS_EINVAL;
                }
                break;
        default:
                snprintf(err, errlen, "unknown level");
                return STATS_EINVAL;
        }
        return 0;
}

static const char *level_name(enum stats_level l)
{
        static const char *const n[] = {"unit", "provider", "county", "country"};
        return (unsigned)l < 4 ? n[l] : "";
}

static const char *view_name(enum stats_view v)
{
        static const char *const n[] = {"public", "provider", "owner"};
        return (unsigned)v < 3 ? n[v] : "";
}

static int run_one(struct stats_store *st, const struct stats_query *q, struct stats_table **out,
                   char *err, size_t errlen)
{
        *out = NULL;
        struct resolved_query rq;
        int rc = resolve(st, q, &rq, err, errlen);
        if (rc != 0)
                return rc;
        struct eng e = {.d = rq.d, .cross = rq.cross};
        struct stats_map pub = {0};
        int32_t *groups = NULL;
        size_t ngroups = 0;
        struct stats_table *t = NULL;

        bool empty_units = q->level == STATS_LEVEL_UNIT && rq.n_units == 0;
        /* --as-of D: the facts signed by D and not revoked by D. The incremental state holds
         * every fact, so it answers only when nothing in the scope is newer than D; else the
         * store recomputes the scope's cases from the facts visible on D. Both feed the same
         * contributions, disclosure control and table code below. */
        if (rq.as_of_given && !empty_units && rq.scan.provider != -1) {
                int32_t horizon = INT32_MIN;
                if (st->ops->horizon(st, &rq.scan, &horizon) != 0) {
                        snprintf(err, errlen, "statistics store: cannot read the horizon");
                        rc = STATS_ESTORE;
                        goto done;
                }
                if (horizon > rq.as_of) {
                        rq.scan.as_of_cut = true;
                        rq.scan.as_of = rq.as_of;
                }
        }
        if (empty_units || rq.scan.provider == -1) {
                rc = 0; /* nothing recorded for these ids: an all-zero table */
        } else if (rq.d->kind == RK_CERTS) {
                rc = q->level == STATS_LEVEL_UNIT || rq.scan.as_of_cut
                         ? st->ops->scan_certs(st, &rq.scan, on_cert, &e, err, errlen)
                         : st->ops->scan_agg(st, &rq.scan, DIM_CERTS, on_agg, &e, err, errlen);
        } else if (!rq.cross && q->level != STATS_LEVEL_UNIT && !rq.scan.as_of_cut) {
                rc = st->ops->scan_agg(st, &rq.scan, rq.d->dim, on_agg, &e, err, errlen);
        } else {
                struct stats_scan sc = rq.scan;
                if (rq.d->groups == G_UNIT && q->level != STATS_LEVEL_UNIT)
                        sc.all_units = true;
                sc.scope_order = rq.d->groups == G_UNIT;
                rc = st->ops->scan_rows(st, &sc, on_row, &e, err, errlen);
                if (rc == 0 && e.rc == 0 && flush_case(&e) != 0)
                        rc = -1;
                if (e.rc)
                        rc = e.rc;
        }
        if (rc != 0) {
                if (!err[0])
                        snprintf(err, errlen, "report failed (out of memory?)");
                goto done;
        }
        if (disclose(&e.contrib, rq.cutoff, q->view, rq.viewer) != 0) {
                rc = STATS_ESTORE;
                snprintf(err, errlen, "out of memory");
                goto done;
        }
        /* Sum the published parts per (period, sex, group): a: period << 8 | sex, b: group. */
        for (size_t i = 0; i < e.contrib.cap; i++) {
                const struct stats_map_entry *c = &e.contrib.e[i];
                if (!c->used || c->v[0] == 0)
                        continue;
                struct stats_map_entry *p = stats_map_get(&pub, c->a, (uint32_t)c->b);
                if (!p) {
                        rc = STATS_ESTORE;
                        goto done;
                }
                if (c->v[2])
                        p->v[2] = 1;
                else {
                        p->v[0] += c->v[0];
                        p->v[1] += c->v[1];
                }
        }
        if (group_list(st, &rq, &pub, &groups, &ngroups) != 0) {
                rc = STATS_ESTORE;
                goto done;
        }
        size_t nperiods = rq.cross ? 1 : (size_t)(rq.m_to - rq.m_from + 1);
        size_t nrows = nperiods * ngroups;
        if (nrows > STATS_MAX_ROWS) {
                snprintf(err, errlen, "report too large (%zu rows, at most %d)", nrows,
                         STATS_MAX_ROWS);
                rc = STATS_EINVAL;
                goto done;
        }
        t = calloc(1, sizeof *t);
        if (t) {
                t->rows = calloc(nrows ? nrows : 1, sizeof *t->rows);
                t->cells = calloc((nrows ? nrows : 1) * 3, sizeof *t->cells);
        }
        if (!t || !t->rows || !t->cells) {
                rc = STATS_ESTORE;
                snprintf(err, errlen, "out of memory");
                goto done;
        }
        snprintf(t->report, sizeof t->report, "%s", rq.d->name);
        snprintf(t->title, sizeof t->title, "%s", rq.d->title);
        snprintf(t->level, sizeof t->level, "%s", level_name(q->level));
        for (size_t i = 0; i < q->n_ids; i++) {
                size_t l = strlen(t->scope);
                snprintf(t->scope + l, sizeof t->scope - l, "%s%.64s", i ? "," : "", q->ids[i]);
        }
        sf_month_format(rq.m_from, t->from);
        sf_month_format(rq.m_to, t->to);
        snprintf(t->as_of, sizeof t->as_of, "%s", q->as_of ? q->as_of : "");
        snprintf(t->mode, sizeof t->mode, "%s", rq.cross ? "cross" : "series");
        snprintf(t->view, sizeof t->view, "%s", view_name(q->view));
        t->cutoff = q->view == STATS_VIEW_OWNER ? 0 : rq.cutoff;
        t->ncols = 3;
        snprintf(t->cols[0], sizeof t->cols[0], "kvinnor");
        snprintf(t->cols[1], sizeof t->cols[1], "man");
        snprintf(t->cols[2], sizeof t->cols[2], "totalt");
        for (size_t p = 0; p < nperiods; p++) {
                int32_t period = rq.cross ? CROSS_PERIOD : rq.m_from + (int32_t)p;
                for (size_t gi = 0; gi < ngroups; gi++) {
                        struct stats_trow *row = &t->rows[t->nrows];
                        struct stats_cell *cells = &t->cells[t->nrows * 3];
                        t->nrows++;
                        if (rq.cross)
                                snprintf(row->period, sizeof row->period, "%s..%s", t->from, t->to);
                        else
                                sf_month_format(period, row->period);
                        group_label(st, &rq, groups[gi], row);
                        struct outcell oc[2] = {{0}};
                        for (int s = 0; s < 2; s++) {
                                int sex = s == 0 ? SEX_FEMALE : SEX_MALE;
                                struct stats_map_entry *pe = stats_map_get(
                                    &pub, (uint64_t)(uint32_t)period << 8 | (uint64_t)sex,
                                    (uint32_t)groups[gi]);
                                if (!pe) {
                                        rc = STATS_ESTORE;
                                        goto done;
                                }
                                oc[s] = (struct outcell){pe->v[0], pe->v[1], pe->v[2] != 0};
                                put_cell(&cells[s], oc[s].n, oc[s].nres, oc[s].supp);
                        }
                        /* The total is the sum of the published parts, never the true sum:
                         * total minus one sex cannot give back a suppressed cell. */
                        put_cell(&cells[2], oc[0].n + oc[1].n, oc[0].nres + oc[1].nres,
                                 oc[0].supp || oc[1].supp);
                }
        }
done:
        stats_map_free(&e.contrib);
        stats_map_free(&pub);
        free(groups);
        if (rc != 0) {
                stats_table_free(t);
                return rc < 0 ? rc : STATS_ESTORE;
        }
        *out = t;
        return 0;
}

/* Find a row by (period, group_id). Rows are few enough for a linear search per period. */
static const struct stats_cell *find_cells(const struct stats_table *t, const char *period,
                                           const char *group_id)
{
        for (size_t i = 0; t && i < t->nrows; i++)
                if (strcmp(t->rows[i].period, period) == 0 &&
                    strcmp(t->rows[i].group_id, group_id) == 0)
                        return &t->cells[i * t->ncols];
        return NULL;
}

/* The denominator of a share: the level's cases (or certificates) in that period. */
static const struct stats_cell *den_cell(const struct stats_table *den, const char *period)
{
        for (size_t i = 0; den && i < den->nrows; i++)
                if (strcmp(den->rows[i].period, period) == 0)
                        return &den->cells[i * den->ncols + 2];
        return NULL;
}

static int side_by_side(struct stats_store *st, const struct stats_query *q,
                        struct stats_table **out, char *err, size_t errlen)
{
        if (q->level != STATS_LEVEL_UNIT) {
                snprintf(err, errlen, "--side-by-side needs --level unit");
                return STATS_EINVAL;
        }
        struct stats_query lq[3] = {*q, *q, *q}, dq[3];
        struct stats_table *t[3] = {0}, *d[3] = {0};
        char county[4] = "00";
        char h[HSA_ID_MAX + 1];
        int32_t uid = 0;
        stats_hsa_normalise(q->ids[0], h);
        st->ops->hsa_id(st, h, &uid);
        int c = 0;
        int32_t as_of = INT32_MAX;
        if (q->as_of && *q->as_of) {
                as_of = intyg_date_to_day(q->as_of);
                if (as_of < 0) {
                        snprintf(err, errlen, "--as-of must be YYYY-MM-DD");
                        return STATS_EINVAL;
                }
        }
        if (uid)
                st->ops->unit_county(st, uid, as_of, &c);
        snprintf(county, sizeof county, "%02d", c % 100);
        for (int i = 0; i < 3; i++)
                lq[i].side_by_side = false;
        lq[1].level = STATS_LEVEL_COUNTY;
        lq[1].n_ids = 1;
        lq[1].ids[0] = county;
        lq[2].level = STATS_LEVEL_COUNTRY;
        lq[2].n_ids = 0;
        for (int i = 1; i < 3; i++)
                lq[i].view =
                    q->view == STATS_VIEW_PROVIDER ? STATS_VIEW_PROVIDER : STATS_VIEW_PUBLIC;
        const char *base = NULL;
        for (size_t i = 0; i < N_DEFS; i++)
                if (q->report && strcmp(q->report, defs[i].name) == 0)
                        base = defs[i].kind == RK_CERTS ? "intyg_per_manad" : "sjukfall";
        if (!base) {
                snprintf(err, errlen, "unknown report '%.40s' (see --list)",
                         q->report ? q->report : "");
                return STATS_EINVAL;
        }
        int rc = 0;
        for (int i = 0; i < 3 && rc == 0; i++) {
                dq[i] = lq[i];
                dq[i].report = base;
                const struct rdef *bd = NULL;
                for (size_t k = 0; k < N_DEFS; k++)
                        if (strcmp(q->report, defs[k].name) == 0)
                                bd = &defs[k];
                /* same mode as the report, so that shares are per period */
                dq[i].mode =
                    (q->mode == STATS_MODE_DEFAULT ? bd->cross : q->mode == STATS_MODE_CROSS)
                        ? STATS_MODE_CROSS
                        : STATS_MODE_SERIES;
                rc = run_one(st, &lq[i], &t[i], err, errlen);
                if (rc == 0)
                        rc = run_one(st, &dq[i], &d[i], err, errlen);
        }
        struct stats_table *o = NULL;
        if (rc != 0)
                goto done;
        o = calloc(1, sizeof *o);
        size_t nrows = t[0]->nrows * 3;
        if (o) {
                *o = *t[0];
                o->rows = calloc(nrows ? nrows : 1, sizeof *o->rows);
                o->cells = calloc((nrows ? nrows : 1) * 6, sizeof *o->cells);
        }
        if (!o || !o->rows || !o->cells) {
                if (o) {
                        free(o->rows);
                        free(o->cells);
                        free(o);
                        o = NULL;
                }
                rc = STATS_ESTORE;
                snprintf(err, errlen, "out of memory");
                goto done;
        }
        o->nrows = 0;
        o->ncols = 6;
        static const char *const cn[6] = {"enhet",          "enhet_per_100", "region",
                                          "region_per_100", "riket",         "riket_per_100"};
        for (int i = 0; i < 6; i++)
                snprintf(o->cols[i], sizeof o->cols[i], "%s", cn[i]);
        snprintf(o->scope + strlen(o->scope), sizeof o->scope - strlen(o->scope),
                 " vs county %s vs country", county);
        for (size_t r = 0; r < t[0]->nrows; r++) {
                for (int s = 0; s < 3; s++) {
                        struct stats_trow *row = &o->rows[o->nrows];
                        struct stats_cell *cells = &o->cells[o->nrows * 6];
                        o->nrows++;
                        *row = t[0]->rows[r];
                        snprintf(row->sex, sizeof row->sex, "%s", t[0]->cols[s]);
                        for (int l = 0; l < 3; l++) {
                                const struct stats_cell *src =
                                    l == 0 ? &t[0]->cells[r * 3]
                                           : find_cells(t[l], row->period, row->group_id);
                                const struct stats_cell *dn = den_cell(d[l], row->period);
                                struct stats_cell v = src ? src[s] : (struct stats_cell){0};
                                cells[2 * l] = v;
                                struct stats_cell sh = {0};
                                if (!v.suppressed && dn && dn->n > 0) {
                                        sh.has_share = true;
                                        sh.share = 100.0 * (double)v.n / (double)dn->n;
                                        sh.n = v.n;
                                        sh.partial = v.partial || dn->partial;
                                        sh.has_comparability = v.has_comparability;
                                        sh.comparability = v.comparability;
                                }
                                sh.suppressed = v.suppressed;
                                cells[2 * l + 1] = sh;
                        }
                }
        }
        snprintf(o->mode + strlen(o->mode), sizeof o->mode - strlen(o->mode), "%s", "");
done:
        for (int i = 0; i < 3; i++) {
                stats_table_free(t[i]);
                stats_table_free(d[i]);
        }
        if (rc == 0)
                *out = o;
        return rc;
}

int stats_report_run(struct stats_store *st, const struct stats_query *q, struct stats_table **out,
                     char *err, size_t errlen)
{
        *out = NULL;
        if (err && errlen)
                err[0] = '\0';
        if (q->side_by_side)
                return side_by_side(st, q, out, err, errlen);
        return run_one(st, q, out, err, errlen);
}

void stats_table_free(struct stats_table *t)
{
        if (!t)
                return;
        free(t->rows);
        free(t->cells);
        free(t);
}

/* ---- rendering ---- */

struct buf {
        char *p;
        size_t len, cap;
        bool oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
        if (b->oom)
                return;
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if (b->p && b->len + (size_t)n < b->cap) {
                        b->len += (size_t)n;
                        return;
                }
                size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
                char *np = realloc(b->p, ncap);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->cap = ncap;
        }
}

static void bjson(struct buf *b, const char *s)
{
        char tmp[1024];
        json_escape(tmp, sizeof tmp, s);
        bprintf(b, "\"%s\"", tmp);
}

static int bdone(struct buf *b, char **out, size_t *len)
{
        if (b->oom || !b->p) {
                free(b->p);
                *out = NULL;
                return -1;
        }
        *out = b->p;
        if (len)
                *len = b->len;
        return 0;
}

static void json_cell(struct buf *b, const struct stats_cell *c, bool share_col)
{
        if (c->suppressed) {
                bprintf(b, "{\"suppressed\":true}");
                return;
        }
        if (share_col) {
                if (!c->has_share) {
                        bprintf(b, "null");
                        return;
                }
                bprintf(b, "{\"per_100\":%.2f", c->share);
        } else {
                bprintf(b, "{\"n\":%lld", (long long)c->n);
        }
        if (c->partial)
                bprintf(b, ",\"partial\":true");
        if (c->has_comparability)
                bprintf(b, ",\"comparability\":%.3f", c->comparability);
        bprintf(b, "}");
}

static bool is_share_col(const char *name)
{
        return strstr(name, "per_100") != NULL;
}

int stats_table_json(const struct stats_table *t, char **out, size_t *len)
{
        struct buf b = {0};
        bprintf(&b, "{\"report\":");
        bjson(&b, t->report);
        bprintf(&b, ",\"title\":");
        bjson(&b, t->title);
        bprintf(&b, ",\"level\":");
        bjson(&b, t->level);
        bprintf(&b, ",\"scope\":");
        bjson(&b, t->scope);
        bprintf(&b, ",\"from\":\"%s\",\"to\":\"%s\",\"as_of\":", t->from, t->to);
        bjson(&b, t->as_of);
        bprintf(&b, ",\"mode\":\"%s\",\"view\":\"%s\",\"cutoff\":%d,\"columns\":[", t->mode,
                t->view, t->cutoff);
        for (size_t c = 0; c < t->ncols; c++)
                bprintf(&b, "%s\"%s\"", c ? "," : "", t->cols[c]);
        bprintf(&b, "],\"rows\":[");
        for (size_t r = 0; r < t->nrows; r++) {
                const struct stats_trow *row = &t->rows[r];
                bprintf(&b, "%s{\"period\":\"%s\",\"group_id\":", r ? "," : "", row->period);
                bjson(&b, row->group_id);
                bprintf(&b, ",\"group\":");
                bjson(&b, row->group);
                if (row->sex[0])
                        bprintf(&b, ",\"sex\":\"%s\"", row->sex);
                bprintf(&b, ",\"cells\":{");
                for (size_t c = 0; c < t->ncols; c++) {
                        bprintf(&b, "%s\"%s\":", c ? "," : "", t->cols[c]);
                        json_cell(&b, &t->cells[r * t->ncols + c], is_share_col(t->cols[c]));
                }
                bprintf(&b, "}}");
        }
        bprintf(&b, "]}\n");
        return bdone(&b, out, len);
}

static void csv_field(struct buf *b, const char *s)
{
        bool quote = strpbrk(s, ",\"\n\r") != NULL;
        if (!quote) {
                /* a leading = + - @ would be a formula in a spreadsheet */
                if (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@')
                        bprintf(b, "'");
                bprintf(b, "%s", s);
                return;
        }
        bprintf(b, "\"");
        for (const char *p = s; *p; p++)
                bprintf(b, *p == '"' ? "\"\"" : "%c", *p);
        bprintf(b, "\"");
}

int stats_table_csv(const struct stats_table *t, char **out, size_t *len)
{
        struct buf b = {0};
        bprintf(&b, "report,level,scope,period,group_id,group,sex,column,value,status,"
                    "comparability\n");
        for (size_t r = 0; r < t->nrows; r++) {
                const struct stats_trow *row = &t->rows[r];
                for (size_t c = 0; c < t->ncols; c++) {
                        const struct stats_cell *cell = &t->cells[r * t->ncols + c];
                        bool share = is_share_col(t->cols[c]);
                        csv_field(&b, t->report);
                        bprintf(&b, ",");
                        csv_field(&b, t->level);
                        bprintf(&b, ",");
                        csv_field(&b, t->scope);
                        bprintf(&b, ",%s,", row->period);
                        csv_field(&b, row->group_id);
                        bprintf(&b, ",");
                        csv_field(&b, row->group);
                        bprintf(&b, ",%s,%s,", row->sex, t->cols[c]);
                        if (cell->suppressed)
                                bprintf(&b, ",suppressed,");
                        else if (share && !cell->has_share)
                                bprintf(&b, ",none,");
                        else {
                                if (share)
                                        bprintf(&b, "%.2f", cell->share);
                                else
                                        bprintf(&b, "%lld", (long long)cell->n);
                                bprintf(&b, ",%s,", cell->partial ? "partial" : "ok");
                        }
                        if (cell->has_comparability && !cell->suppressed)
                                bprintf(&b, "%.3f", cell->comparability);
                        bprintf(&b, "\n");
                }
        }
        return bdone(&b, out, len);
}

int stats_table_text(const struct stats_table *t, char **out, size_t *len)
{
        struct buf b = {0};
        bprintf(&b, "%s (%s)\nlevel %s %s, %s..%s, %s, view %s, cutoff %d%s%s\n", t->title,
                t->report, t->level, t->scope, t->from, t->to, t->mode, t->view, t->cutoff,
                t->as_of[0] ? ", as of " : "", t->as_of);
        bprintf(&b, "%-16s %-40s", "period", "group");
        if (t->nrows && t->rows[0].sex[0])
                bprintf(&b, " %-8s", "sex");
        for (size_t c = 0; c < t->ncols; c++)
                bprintf(&b, " %14s", t->cols[c]);
        bprintf(&b, "\n");
        for (size_t r = 0; r < t->nrows; r++) {
                const struct stats_trow *row = &t->rows[r];
                bprintf(&b, "%-16s %-40.40s", row->period, row->group);
                if (row->sex[0])
                        bprintf(&b, " %-8s", row->sex);
                for (size_t c = 0; c < t->ncols; c++) {
                        const struct stats_cell *cell = &t->cells[r * t->ncols + c];
                        char v[32];
                        if (cell->suppressed)
                                snprintf(v, sizeof v, "x");
                        else if (is_share_col(t->cols[c]))
                                snprintf(v, sizeof v, cell->has_share ? "%.1f" : "-", cell->share);
                        else
                                snprintf(v, sizeof v, "%lld", (long long)cell->n);
                        bprintf(&b, " %13s%s", v, cell->partial ? "+" : " ");
                }
                bprintf(&b, "\n");
        }
        bprintf(&b,
                "x = suppressed (fewer than %d at a care provider); + = lower bound, a "
                "care provider's part suppressed\n",
                t->cutoff);
        return bdone(&b, out, len);
}

struct stats_store *stats_report_open(const char *path, char *err, size_t errlen)
{
        return stats_sqlite_open(path, true, NULL, err, errlen);
}

int stats_report_json(struct stats *s, const struct stats_query *q, char **out, size_t *len,
                      char *err, size_t errlen)
{
        *out = NULL;
        struct stats_store *st = stats_report_open(stats_path(s), err, errlen);
        if (!st)
                return STATS_ESTORE;
        struct stats_table *t = NULL;
        int rc = stats_report_run(st, q, &t, err, errlen);
        if (rc == 0 && stats_table_json(t, out, len) != 0) {
                snprintf(err, errlen, "out of memory");
                rc = STATS_ESTORE;
        }
        stats_table_free(t);
        stats_store_close(st);
        return rc;
}
