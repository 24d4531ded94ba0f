/*
 * stats_sqlite.c - the embedded statistics store: facts, sick-leave cases, per-month case
 * rows and aggregates in one SQLite file next to the outbox (its own file and connection:
 * never in the hot path's transaction).
 * Owns one sqlite3 connection and its prepared statements. A writable store belongs to the
 * stats writer thread alone; a read-only one to the report call that opened it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "stats_store.h"

/* 2: fact.revoked_day, revoked.day and table horizon, for reproducible --as-of reports
 * (migrated from 1 on a writable open, see migrate_v1). */
#define SCHEMA_VERSION "2"

struct sq {
        sqlite3 *db;
        bool readonly;
        int64_t next_fact_id;
        struct stats_map delta; /* aggregate changes of the open transaction */
        sqlite3_stmt *hsa_get, *hsa_ins, *cert_find, *revoked_find, *revoked_ins, *fact_ins,
            *fact_deact, *key_facts, *key_cases, *case_rows, *row_ins, *row_del, *row_upd,
            *case_ins, *case_upd, *case_del, *fact_case, *agg_upd, *sp_begin, *sp_release,
            *sp_rollback, *horizon_upd;
};

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    /* Fact kinds: 1 = one sick-leave period of one FK7804 (answer 32); 2 is reserved for
     * FK's completion requests (one row per requested question group, joined to the
     * certificate by cert_ps, code = question group), the later komplettering issue. */
    "CREATE TABLE IF NOT EXISTS fact_kind(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT "
    "NULL, description TEXT NOT NULL);"
    "INSERT OR IGNORE INTO fact_kind VALUES(1,'sjukpenning_period','one answer 32 period "
    "of one FK7804');"
    "INSERT OR IGNORE INTO fact_kind VALUES(2,'komplettering','reserved: one requested "
    "question group of one FK completion request');"
    "CREATE TABLE IF NOT EXISTS hsa(id INTEGER PRIMARY KEY, hsa TEXT UNIQUE NOT NULL);"
    "CREATE TABLE IF NOT EXISTS fact("
    " id INTEGER PRIMARY KEY, kind INTEGER NOT NULL REFERENCES fact_kind(id),"
    " cert_ps BLOB NOT NULL, cert_seq INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " active INTEGER NOT NULL, content BLOB, signed_day INTEGER NOT NULL,"
    " start_day INTEGER, end_day INTEGER, degree INTEGER,"
    " provider INTEGER NOT NULL, unit INTEGER, followup INTEGER, resolution INTEGER,"
    " county INTEGER, municipality TEXT, patient_ps BLOB, sex INTEGER, age INTEGER,"
    " icd TEXT, dxgroup INTEGER, chapter INTEGER, section INTEGER, prognosis INTEGER,"
    " measures INTEGER, treatment INTEGER, code INTEGER, case_id INTEGER,"
    " revoked_day INTEGER);"
    "CREATE INDEX IF NOT EXISTS fact_cert ON fact(cert_ps);"
    "CREATE INDEX IF NOT EXISTS fact_key ON fact(provider, patient_ps);"
    "CREATE INDEX IF NOT EXISTS fact_unit ON fact(followup, signed_day) WHERE seq = 0;"
    "CREATE TABLE IF NOT EXISTS revoked(cert_ps BLOB PRIMARY KEY, day INTEGER) WITHOUT ROWID;"
    /* The newest signing or revocation day per care provider: the incremental case state
     * answers any --as-of at or after it; an earlier one recomputes from the facts. */
    "CREATE TABLE IF NOT EXISTS horizon(provider INTEGER PRIMARY KEY, day INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sjukfall(id INTEGER PRIMARY KEY, provider INTEGER NOT "
    "NULL, patient_ps BLOB NOT NULL, start_day INTEGER, end_day INTEGER, length INTEGER,"
    " ncert INTEGER);"
    "CREATE INDEX IF NOT EXISTS sjukfall_key ON sjukfall(provider, patient_ps);"
    "CREATE TABLE IF NOT EXISTS case_month("
    " case_id INTEGER NOT NULL, scope INTEGER NOT NULL, month INTEGER NOT NULL,"
    " provider INTEGER NOT NULL, county INTEGER, sex INTEGER, age INTEGER, degree INTEGER,"
    " dxgroup INTEGER, chapter INTEGER, section INTEGER, prognosis INTEGER,"
    " measures INTEGER, length INTEGER, ncert INTEGER, resolved INTEGER,"
    " anchor_start INTEGER, anchor_cert INTEGER, degmask INTEGER, dxmask INTEGER,"
    " chmask INTEGER, progmask INTEGER, measmask INTEGER,"
    " PRIMARY KEY(case_id, scope, month)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS cm_scope ON case_month(scope, month);"
    "CREATE INDEX IF NOT EXISTS cm_provider ON case_month(provider, month) WHERE scope=0;"
    "CREATE INDEX IF NOT EXISTS cm_county ON case_month(county, month) WHERE scope = 0;"
    "CREATE TABLE IF NOT EXISTS agg(dim INTEGER, month INTEGER, provider INTEGER,"
    " county INTEGER, sex INTEGER, grp INTEGER, n INTEGER NOT NULL, nres INTEGER NOT NULL,"
    " PRIMARY KEY(dim, month, provider, county, sex, grp)) WITHOUT ROWID;";

#define ROW_COLS                                                                                   \
        "case_id, provider, month, scope, county, sex, age, degree, dxgroup, chapter, "            \
        "section, prognosis, measures, length, ncert, resolved, anchor_start, anchor_cert, "       \
        "degmask, dxmask, chmask, progmask, measmask"

static struct sq *SQ(struct stats_store *st)
{
        return st->impl;
}

static int sqerr(struct sq *q, char *err, size_t errlen, const char *what)
{
        snprintf(err, errlen, "statistics store: %s: %s", what, sqlite3_errmsg(q->db));
        return STATS_ESTORE;
}

static int exec(struct sq *q, const char *sql, char *err, size_t errlen)
{
        char *msg = NULL;
        if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                snprintf(err, errlen, "statistics store: %s", msg ? msg : "error");
                sqlite3_free(msg);
                return STATS_ESTORE;
        }
        return 0;
}

static int prep(struct sq *q, sqlite3_stmt **st, const char *sql, char *err, size_t errlen)
{
        if (sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
                return sqerr(q, err, errlen, "prepare");
        return 0;
}

/* Run a statement that returns no rows, then reset it. */
static int step_done(struct sq *q, sqlite3_stmt *st, char *err, size_t errlen)
{
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_DONE)
                return sqerr(q, err, errlen, "write");
        return 0;
}

/* ---- aggregates: changes collected in memory, written at commit ---- */

static uint64_t agg_a(int dim, int32_t month, int county, int sex)
{
        return (uint64_t)(unsigned)dim << 48 | (uint64_t)(uint32_t)month << 16 |
               (uint64_t)(unsigned)(county & 0xff) << 8 | (uint64_t)(unsigned)(sex & 0xff);
}

static int agg_add(struct sq *q, int dim, int32_t month, int32_t provider, int county, int sex,
                   int32_t grp, int sign, bool resolved)
{
        struct stats_map_entry *e =
            stats_map_get(&q->delta, agg_a(dim, month, county, sex),
                          (uint64_t)(uint32_t)provider << 32 | (uint64_t)(uint32_t)grp);
        if (!e)
                return STATS_ESTORE;
        e->v[0] += sign;
        e->v[1] += resolved ? sign : 0;
        return 0;
}

/* What one case row adds to (sign +1) or takes from (-1) the aggregates. */
static int agg_row(struct sq *q, int32_t provider, const struct sf_row *r, int sign)
{
        int rc = 0;
#define ADD(dim, grp)                                                                              \
        rc |= agg_add(q, dim, r->month, provider, r->county, r->sex, grp, sign, r->resolved)
        if (r->scope != 0) {
                ADD(DIM_UNIT, r->scope);
                return rc;
        }
        ADD(DIM_TOTAL, 0);
        ADD(DIM_DXGROUP, r->dxgroup);
        ADD(DIM_CHAPTER, r->chapter);
        ADD(DIM_AGE, sf_age_group(r->age));
        ADD(DIM_DEGREE, sf_degree_index(r->degree));
        ADD(DIM_LENGTH, sf_length_group(r->length));
        if (r->length > SF_LONG_CASE) /* §1.5: > 90, from the month it passes 90 */
                ADD(DIM_OVER90, 0);
        ADD(DIM_NCERT, sf_ncert_group(r->ncert));
        ADD(DIM_PROGNOSIS, r->prognosis);
        if (r->measures == 0)
                ADD(DIM_MEASURE, STATS_N_MEASURES);
        for (int b = 0; b < STATS_N_MEASURES; b++)
                if (r->measures & (1u << b))
                        ADD(DIM_MEASURE, b);
#undef ADD
        return rc;
}

static int agg_flush(struct sq *q, char *err, size_t errlen)
{
        for (size_t i = 0; i < q->delta.cap; i++) {
                const struct stats_map_entry *e = &q->delta.e[i];
                if (!e->used || (e->v[0] == 0 && e->v[1] == 0))
                        continue;
                sqlite3_stmt *st = q->agg_upd;
                sqlite3_bind_int(st, 1, (int)(e->a >> 48));
                sqlite3_bind_int(st, 2, (int32_t)(uint32_t)(e->a >> 16));
                sqlite3_bind_int(st, 3, (int32_t)(uint32_t)(e->b >> 32));
                sqlite3_bind_int(st, 4, (int)((e->a >> 8) & 0xff));
                sqlite3_bind_int(st, 5, (int)(e->a & 0xff));
                sqlite3_bind_int(st, 6, (int32_t)(uint32_t)(e->b & 0xffffffffu));
                sqlite3_bind_int64(st, 7, e->v[0]);
                sqlite3_bind_int64(st, 8, e->v[1]);
                if (step_done(q, st, err, errlen) != 0)
                        return STATS_ESTORE;
        }
        stats_map_clear(&q->delta);
        return 0;
}

/* ---- transactions ---- */

static int sq_begin(struct stats_store *st, char *err, size_t errlen)
{
        stats_map_clear(&SQ(st)->delta);
        return exec(SQ(st), "BEGIN IMMEDIATE", err, errlen);
}

static int sq_commit(struct stats_store *st, char *err, size_t errlen)
{
        struct sq *q = SQ(st);
        if (agg_flush(q, err, errlen) != 0)
                return STATS_ESTORE;
        return exec(q, "COMMIT", err, errlen);
}

static void sq_rollback(struct stats_store *st)
{
        char err[128];
        exec(SQ(st), "ROLLBACK", err, sizeof err);
        stats_map_clear(&SQ(st)->delta);
}

/* ---- HSA-id dimension ---- */

static int sq_hsa_id(struct stats_store *st, const char *hsa, int32_t *id)
{
        struct sq *q = SQ(st);
        *id = 0;
        sqlite3_bind_text(q->hsa_get, 1, hsa, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q->hsa_get);
        if (rc == SQLITE_ROW)
                *id = sqlite3_column_int(q->hsa_get, 0);
        sqlite3_reset(q->hsa_get);
        sqlite3_clear_bindings(q->hsa_get);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : STATS_ESTORE;
}

static int hsa_intern(struct sq *q, const char *hsa, int32_t *id, char *err, size_t errlen)
{
        struct stats_store tmp = {.impl = q};
        if (sq_hsa_id(&tmp, hsa, id) != 0)
                return sqerr(q, err, errlen, "hsa lookup");
        if (*id)
                return 0;
        sqlite3_bind_text(q->hsa_ins, 1, hsa, -1, SQLITE_STATIC);
        if (step_done(q, q->hsa_ins, err, errlen) != 0)
                return STATS_ESTORE;
        *id = (int32_t)sqlite3_last_insert_rowid(q->db);
        return 0;
}

static int sq_hsa_name(struct stats_store *st, int32_t id, char *buf, size_t len)
{
        struct sq *q = SQ(st);
        sqlite3_stmt *s = NULL;
        buf[0] = '\0';
        if (sqlite3_prepare_v2(q->db, "SELECT hsa FROM hsa WHERE id = ?", -1, &s, NULL) !=
            SQLITE_OK)
                return STATS_ESTORE;
        sqlite3_bind_int(s, 1, id);
        if (sqlite3_step(s) == SQLITE_ROW)
                snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        return 0;
}

/* ---- case rows ---- */

static void row_read(sqlite3_stmt *s, int c, struct stats_row_rec *o)
{
        memset(o, 0, sizeof *o);
        o->case_id = sqlite3_column_int64(s, c + 0);
        o->provider = sqlite3_column_int(s, c + 1);
        struct sf_row *r = &o->r;
        r->month = sqlite3_column_int(s, c + 2);
        r->scope = sqlite3_column_int(s, c + 3);
        r->county = sqlite3_column_int(s, c + 4);
        r->sex = sqlite3_column_int(s, c + 5);
        r->age = sqlite3_column_int(s, c + 6);
        r->degree = sqlite3_column_int(s, c + 7);
        r->dxgroup = sqlite3_column_int(s, c + 8);
        r->chapter = sqlite3_column_int(s, c + 9);
        r->section = sqlite3_column_int(s, c + 10);
        r->prognosis = sqlite3_column_int(s, c + 11);
        r->measures = (uint32_t)sqlite3_column_int64(s, c + 12);
        r->length = sqlite3_column_int(s, c + 13);
        r->ncert = sqlite3_column_int(s, c + 14);
        r->resolved = sqlite3_column_int(s, c + 15) != 0;
        r->anchor_start = sqlite3_column_int(s, c + 16);
        r->anchor_cert = sqlite3_column_int64(s, c + 17);
        r->anchor_degree = r->degree;
        r->degmask = (uint8_t)sqlite3_column_int(s, c + 18);
        r->dxmask = (uint16_t)sqlite3_column_int(s, c + 19);
        r->chmask = (uint32_t)sqlite3_column_int64(s, c + 20);
        r->progmask = (uint32_t)sqlite3_column_int64(s, c + 21);
        r->measmask = (uint32_t)sqlite3_column_int64(s, c + 22);
}

static void row_bind(sqlite3_stmt *s, int64_t case_id, int32_t provider, const struct sf_row *r)
{
        sqlite3_bind_int64(s, 1, case_id);
        sqlite3_bind_int(s, 2, provider);
        sqlite3_bind_int(s, 3, r->month);
        sqlite3_bind_int(s, 4, r->scope);
        sqlite3_bind_int(s, 5, r->county);
        sqlite3_bind_int(s, 6, r->sex);
        sqlite3_bind_int(s, 7, r->age);
        sqlite3_bind_int(s, 8, r->degree);
        sqlite3_bind_int(s, 9, r->dxgroup);
        sqlite3_bind_int(s, 10, r->chapter);
        sqlite3_bind_int(s, 11, r->section);
        sqlite3_bind_int(s, 12, r->prognosis);
        sqlite3_bind_int64(s, 13, r->measures);
        sqlite3_bind_int(s, 14, r->length);
        sqlite3_bind_int(s, 15, r->ncert);
        sqlite3_bind_int(s, 16, r->resolved);
        sqlite3_bind_int(s, 17, r->anchor_start);
        sqlite3_bind_int64(s, 18, r->anchor_cert);
        sqlite3_bind_int(s, 19, r->degmask);
        sqlite3_bind_int(s, 20, r->dxmask);
        sqlite3_bind_int64(s, 21, r->chmask);
        sqlite3_bind_int64(s, 22, r->progmask);
        sqlite3_bind_int64(s, 23, r->measmask);
}

static bool row_same(const struct sf_row *a, const struct sf_row *b)
{
        return a->month == b->month && a->scope == b->scope && a->county == b->county &&
               a->sex == b->sex && a->age == b->age && a->degree == b->degree &&
               a->dxgroup == b->dxgroup && a->chapter == b->chapter && a->section == b->section &&
               a->prognosis == b->prognosis && a->measures == b->measures &&
               a->length == b->length && a->ncert == b->ncert && a->resolved == b->resolved &&
               a->anchor_start == b->anchor_start && a->anchor_cert == b->anchor_cert &&
               a->degmask == b->degmask && a->dxmask == b->dxmask && a->chmask == b->chmask &&
               a->progmask == b->progmask && a->measmask == b->measmask;
}

static int row_key_cmp(const void *x, const void *y)
{
        const struct sf_row *a = x, *b = y;
        if (a->scope != b->scope)
                return a->scope < b->scope ? -1 : 1;
        return a->month < b->month ? -1 : a->month > b->month;
}

/* Old rows of one case, sorted by (scope, month). */
static long load_case_rows(struct sq *q, int64_t case_id, struct sf_row **out)
{
        *out = NULL;
        size_t n = 0, cap = 0;
        struct sf_row *v = NULL;
        sqlite3_bind_int64(q->case_rows, 1, case_id);
        int rc;
        while ((rc = sqlite3_step(q->case_rows)) == SQLITE_ROW) {
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        struct sf_row *nv = realloc(v, cap * sizeof *nv);
                        if (!nv) {
                                free(v);
                                sqlite3_reset(q->case_rows);
                                return -1;
                        }
                        v = nv;
                }
                struct stats_row_rec rec;
                row_read(q->case_rows, 0, &rec);
                v[n++] = rec.r;
        }
        sqlite3_reset(q->case_rows);
        if (rc != SQLITE_DONE) {
                free(v);
                return -1;
        }
        if (n > 1)
                qsort(v, n, sizeof *v, row_key_cmp);
        *out = v;
        return (long)n;
}

static int row_delete(struct sq *q, int64_t case_id, const struct sf_row *r, char *err,
                      size_t errlen)
{
        sqlite3_bind_int64(q->row_del, 1, case_id);
        sqlite3_bind_int(q->row_del, 2, r->scope);
        sqlite3_bind_int(q->row_del, 3, r->month);
        return step_done(q, q->row_del, err, errlen);
}

static int row_write(struct sq *q, sqlite3_stmt *s, int64_t case_id, int32_t provider,
                     const struct sf_row *r, char *err, size_t errlen)
{
        row_bind(s, case_id, provider, r);
        return step_done(q, s, err, errlen);
}

/* Replace a case's rows by rows (sorted), touching only rows that changed. */
static int rows_apply(struct sq *q, int64_t case_id, int32_t provider, bool had_rows,
                      struct sf_row *rows, long n, char *err, size_t errlen)
{
        struct sf_row *old = NULL;
        long nold = 0;
        if (had_rows) {
                nold = load_case_rows(q, case_id, &old);
                if (nold < 0)
                        return sqerr(q, err, errlen, "read case rows");
        }
        if (n > 1)
                qsort(rows, (size_t)n, sizeof *rows, row_key_cmp);
        long i = 0, j = 0;
        int rc = 0;
        while (rc == 0 && (i < nold || j < n)) {
                int c = i >= nold ? 1 : j >= n ? -1 : row_key_cmp(&old[i], &rows[j]);
                if (c < 0) {
                        rc = agg_row(q, provider, &old[i], -1);
                        rc = rc ? rc : row_delete(q, case_id, &old[i], err, errlen);
                        i++;
                } else if (c > 0) {
                        rc = agg_row(q, provider, &rows[j], +1);
                        rc =
                            rc ? rc
                               : row_write(q, q->row_ins, case_id, provider, &rows[j], err, errlen);
                        j++;
                } else {
                        if (!row_same(&old[i], &rows[j])) {
                                rc = agg_row(q, provider, &old[i], -1);
                                rc = rc ? rc : agg_row(q, provider, &rows[j], +1);
                                rc = rc ? rc
                                        : row_write(q, q->row_upd, case_id, provider, &rows[j], err,
                                                    errlen);
                        }
                        i++;
                        j++;
                }
        }
        free(old);
        return rc;
}

/* ---- recomputing the cases of one (care provider, patient) ---- */

/* What sjukfall needs of a fact row; fact_read reads these columns from column c on. */
#define FACT_COLS                                                                                  \
        "id, cert_seq, start_day, end_day, degree, followup, county, sex, age, dxgroup, "          \
        "chapter, section, prognosis, measures, resolution"

static void fact_read(sqlite3_stmt *s, int c, struct sf_fact *x)
{
        x->id = sqlite3_column_int64(s, c + 0);
        x->cert = sqlite3_column_int64(s, c + 1);
        x->start = sqlite3_column_int(s, c + 2);
        x->end = sqlite3_column_int(s, c + 3);
        x->degree = sqlite3_column_int(s, c + 4);
        x->unit = sqlite3_column_int(s, c + 5);
        x->county = sqlite3_column_int(s, c + 6);
        x->sex = sqlite3_column_int(s, c + 7);
        x->age = sqlite3_column_int(s, c + 8);
        x->dxgroup = sqlite3_column_int(s, c + 9);
        x->chapter = sqlite3_column_int(s, c + 10);
        x->section = sqlite3_column_int(s, c + 11);
        x->prognosis = sqlite3_column_int(s, c + 12);
        x->measures = (uint32_t)sqlite3_column_int64(s, c + 13);
        int res = sqlite3_column_int(s, c + 14);
        x->resolved = res == TAG_MAPPING || res == TAG_LEVEL;
}

struct fact_case {
        int64_t fact_id;
        int64_t case_id;
};

static int fc_cmp(const void *a, const void *b)
{
        const struct fact_case *x = a, *y = b;
        return x->fact_id < y->fact_id ? -1 : x->fact_id > y->fact_id;
}

static int64_t old_case_of(const struct fact_case *fc, size_t n, int64_t fact_id)
{
        struct fact_case key = {.fact_id = fact_id};
        const struct fact_case *hit = bsearch(&key, fc, n, sizeof *fc, fc_cmp);
        return hit ? hit->case_id : 0;
}

/* §1.3: cases are per (vårdgivare, patient) and only there; this recomputes exactly the
 * facts of one such key, so an update costs the size of one patient's history at one care
 * provider and never touches another provider's cases. */
static int recompute_key(struct sq *q, int32_t provider, const unsigned char *patient_ps, char *err,
                         size_t errlen)
{
        size_t n = 0, cap = 0;
        struct sf_fact *f = NULL;
        struct fact_case *fc = NULL;
        int64_t *old_ids = NULL;
        size_t nold = 0, capold = 0;
        struct sf_case *cases = NULL;
        int64_t *new_ids = NULL;
        int rc = STATS_ESTORE;

        sqlite3_stmt *s = q->key_facts;
        sqlite3_bind_int(s, 1, provider);
        sqlite3_bind_blob(s, 2, patient_ps, PSEUDONYM_LEN, SQLITE_STATIC);
        int sr;
        while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
                if (n >= SF_MAX_CASE_FACTS) {
                        snprintf(err, errlen,
                                 "more than %d sick-leave facts for one patient at one care "
                                 "provider",
                                 SF_MAX_CASE_FACTS);
                        sqlite3_reset(s);
                        rc = STATS_EINVAL;
                        goto done;
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        struct sf_fact *nf = realloc(f, cap * sizeof *nf);
                        struct fact_case *nfc = nf ? realloc(fc, cap * sizeof *nfc) : NULL;
                        if (nf)
                                f = nf;
                        if (nfc)
                                fc = nfc;
                        if (!nf || !nfc) {
                                sqlite3_reset(s);
                                snprintf(err, errlen, "out of memory");
                                goto done;
                        }
                }
                struct sf_fact *x = &f[n];
                fact_read(s, 0, x);
                fc[n].fact_id = x->id;
                fc[n].case_id = sqlite3_column_int64(s, 15);
                n++;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (sr != SQLITE_DONE) {
                sqerr(q, err, errlen, "read facts");
                goto done;
        }
        s = q->key_cases;
        sqlite3_bind_int(s, 1, provider);
        sqlite3_bind_blob(s, 2, patient_ps, PSEUDONYM_LEN, SQLITE_STATIC);
        while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
                if (nold == capold) {
                        capold = capold ? capold * 2 : 8;
                        int64_t *no = realloc(old_ids, capold * sizeof *no);
                        if (!no) {
                                sqlite3_reset(s);
                                snprintf(err, errlen, "out of memory");
                                goto done;
                        }
                        old_ids = no;
                }
                old_ids[nold++] = sqlite3_column_int64(s, 0);
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (sr != SQLITE_DONE) {
                sqerr(q, err, errlen, "read cases");
                goto done;
        }
        if (fc)
                if (n > 1)
                        qsort(fc, n, sizeof *fc, fc_cmp);
        cases = malloc((n ? n : 1) * sizeof *cases);
        new_ids = calloc(n ? n : 1, sizeof *new_ids);
        if (!cases || !new_ids) {
                snprintf(err, errlen, "out of memory");
                goto done;
        }
        size_t ncases = 0;
        sf_partition(f, n, cases, &ncases);

        /* Keep a case's id when it carries on (the old id most of its facts had). */
        bool *taken = calloc(nold ? nold : 1, sizeof *taken);
        if (!taken) {
                snprintf(err, errlen, "out of memory");
                goto done;
        }
        for (size_t c = 0; c < ncases; c++) {
                size_t best = SIZE_MAX, bestn = 0;
                for (size_t o = 0; o < nold; o++) {
                        if (taken[o])
                                continue;
                        size_t cnt = 0;
                        for (size_t i = 0; i < cases[c].n; i++)
                                cnt += old_case_of(fc, n, f[cases[c].first + i].id) == old_ids[o];
                        if (cnt > bestn) {
                                best = o;
                                bestn = cnt;
                        }
                }
                if (best != SIZE_MAX) {
                        taken[best] = true;
                        new_ids[c] = old_ids[best];
                }
        }
        rc = 0;
        for (size_t o = 0; rc == 0 && o < nold; o++) {
                if (taken[o])
                        continue;
                /* A case that no longer exists (revocation, merge): take its rows away. */
                rc = rows_apply(q, old_ids[o], provider, true, NULL, 0, err, errlen);
                if (rc == 0) {
                        sqlite3_bind_int64(q->case_del, 1, old_ids[o]);
                        rc = step_done(q, q->case_del, err, errlen);
                }
        }
        free(taken);
        for (size_t c = 0; rc == 0 && c < ncases; c++) {
                const struct sf_case *cs = &cases[c];
                bool had = new_ids[c] != 0;
                if (had) {
                        sqlite3_stmt *u = q->case_upd;
                        sqlite3_bind_int(u, 1, cs->start);
                        sqlite3_bind_int(u, 2, cs->end);
                        sqlite3_bind_int(u, 3, cs->length);
                        sqlite3_bind_int(u, 4, cs->ncert);
                        sqlite3_bind_int64(u, 5, new_ids[c]);
                        rc = step_done(q, u, err, errlen);
                } else {
                        sqlite3_stmt *u = q->case_ins;
                        sqlite3_bind_int(u, 1, provider);
                        sqlite3_bind_blob(u, 2, patient_ps, PSEUDONYM_LEN, SQLITE_STATIC);
                        sqlite3_bind_int(u, 3, cs->start);
                        sqlite3_bind_int(u, 4, cs->end);
                        sqlite3_bind_int(u, 5, cs->length);
                        sqlite3_bind_int(u, 6, cs->ncert);
                        rc = step_done(q, u, err, errlen);
                        new_ids[c] = sqlite3_last_insert_rowid(q->db);
                }
                struct sf_row *rows = NULL;
                long nr = rc == 0 ? sf_case_rows(f + cs->first, cs->n, true, &rows) : 0;
                if (nr < 0) {
                        snprintf(err, errlen,
                                 "sick-leave case spans more than %d months or out of memory",
                                 SF_MAX_CASE_MONTHS);
                        rc = STATS_EINVAL;
                }
                if (rc == 0)
                        rc = rows_apply(q, new_ids[c], provider, had, rows, nr, err, errlen);
                free(rows);
                for (size_t i = 0; rc == 0 && i < cs->n; i++) {
                        const struct sf_fact *x = &f[cs->first + i];
                        if (old_case_of(fc, n, x->id) == new_ids[c])
                                continue;
                        sqlite3_bind_int64(q->fact_case, 1, new_ids[c]);
                        sqlite3_bind_int64(q->fact_case, 2, x->id);
                        rc = step_done(q, q->fact_case, err, errlen);
                }
        }
done:
        free(f);
        free(fc);
        free(old_ids);
        free(cases);
        free(new_ids);
        return rc;
}

/* ---- record ---- */

static int cert_agg(struct sq *q, int32_t signed_day, int32_t provider, int county, int sex,
                    bool resolved, int sign)
{
        return agg_add(q, DIM_CERTS, sf_month_of_day(signed_day), provider, county, sex, 0, sign,
                       resolved);
}

/* The provider's newest signing or revocation day (table horizon) moves to at least day. */
static int horizon_add(struct sq *q, int32_t provider, int32_t day, char *err, size_t errlen)
{
        sqlite3_bind_int(q->horizon_upd, 1, provider);
        sqlite3_bind_int(q->horizon_upd, 2, day);
        return step_done(q, q->horizon_upd, err, errlen);
}

static int do_revoke(struct sq *q, const struct stats_record *r, char *err, size_t errlen)
{
        sqlite3_stmt *s = q->cert_find;
        sqlite3_bind_blob(s, 1, r->cert_ps, PSEUDONYM_LEN, SQLITE_STATIC);
        int sr = sqlite3_step(s);
        if (sr != SQLITE_ROW) {
                sqlite3_reset(s);
                if (sr != SQLITE_DONE)
                        return sqerr(q, err, errlen, "find certificate");
                /* Revoked before it arrived: remember (with the day), so that it arrives
                 * inactive. */
                sqlite3_bind_blob(q->revoked_ins, 1, r->cert_ps, PSEUDONYM_LEN, SQLITE_STATIC);
                sqlite3_bind_int(q->revoked_ins, 2, r->revoked_day);
                return step_done(q, q->revoked_ins, err, errlen);
        }
        bool active = sqlite3_column_int(s, 1) != 0;
        int32_t provider = sqlite3_column_int(s, 2);
        unsigned char patient[PSEUDONYM_LEN];
        memcpy(patient, sqlite3_column_blob(s, 3), PSEUDONYM_LEN);
        int32_t signed_day = sqlite3_column_int(s, 4);
        int county = sqlite3_column_int(s, 5), sex = sqlite3_column_int(s, 6);
        int res = sqlite3_column_int(s, 7);
        sqlite3_reset(s);
        if (!active)
                return STATS_DUPLICATE;
        sqlite3_bind_int(q->fact_deact, 1, r->revoked_day);
        sqlite3_bind_blob(q->fact_deact, 2, r->cert_ps, PSEUDONYM_LEN, SQLITE_STATIC);
        int rc = step_done(q, q->fact_deact, err, errlen);
        if (rc == 0)
                rc = horizon_add(q, provider, r->revoked_day, err, errlen);
        /* §1.2: withdrawn certificates are left out; this may split a case (At1503). */
        if (rc == 0)
                rc = cert_agg(q, signed_day, provider, county, sex,
                              res == TAG_MAPPING || res == TAG_LEVEL, -1);
        if (rc == 0)
                rc = recompute_key(q, provider, patient, err, errlen);
        return rc;
}

static int do_register(struct sq *q, const struct stats_record *r, char *err, size_t errlen)
{
        sqlite3_stmt *s = q->cert_find;
        sqlite3_bind_blob(s, 1, r->cert_ps, PSEUDONYM_LEN, SQLITE_STATIC);
        int sr = sqlite3_step(s);
        if (sr == SQLITE_ROW) {
                const void *c = sqlite3_column_blob(s, 0);
                bool same = c && sqlite3_column_bytes(s, 0) == 32 && memcmp(c, r->content, 32) == 0;
                sqlite3_reset(s);
                if (same)
                        return STATS_DUPLICATE; /* §1.2, At1018: counted once */
                snprintf(err, errlen, "certificate already recorded with other content");
                return STATS_ECONFLICT;
        }
        sqlite3_reset(s);
        if (sr != SQLITE_DONE)
                return sqerr(q, err, errlen, "find certificate");
        sqlite3_bind_blob(q->revoked_find, 1, r->cert_ps, PSEUDONYM_LEN, SQLITE_STATIC);
        sr = sqlite3_step(q->revoked_find);
        bool active = sr == SQLITE_DONE;
        /* A revocation whose day a schema-1 store did not keep counts from the signing day:
         * what every report showed before. */
        int32_t revoked_day = r->signed_day;
        if (sr == SQLITE_ROW && sqlite3_column_type(q->revoked_find, 0) != SQLITE_NULL)
                revoked_day = sqlite3_column_int(q->revoked_find, 0);
        sqlite3_reset(q->revoked_find);
        if (sr != SQLITE_ROW && sr != SQLITE_DONE)
                return sqerr(q, err, errlen, "find revocation");

        int32_t provider, unit, followup;
        if (hsa_intern(q, r->provider, &provider, err, errlen) ||
            hsa_intern(q, r->unit, &unit, err, errlen) ||
            hsa_intern(q, r->followup, &followup, err, errlen))
                return STATS_ESTORE;
        const int64_t cert_seq = q->next_fact_id;
        for (size_t i = 0; i < r->n_periods; i++) {
                sqlite3_stmt *fi = q->fact_ins;
                int k = 1;
                sqlite3_bind_int64(fi, k++, q->next_fact_id++);
                sqlite3_bind_int(fi, k++, STATS_FACT_PERIOD);
                sqlite3_bind_blob(fi, k++, r->cert_ps, PSEUDONYM_LEN, SQLITE_STATIC);
                sqlite3_bind_int64(fi, k++, cert_seq);
                sqlite3_bind_int(fi, k++, (int)i);
                sqlite3_bind_int(fi, k++, active);
                sqlite3_bind_blob(fi, k++, r->content, 32, SQLITE_STATIC);
                sqlite3_bind_int(fi, k++, r->signed_day);
                sqlite3_bind_int(fi, k++, r->periods[i].start);
                sqlite3_bind_int(fi, k++, r->periods[i].end);
                sqlite3_bind_int(fi, k++, r->periods[i].degree);
                sqlite3_bind_int(fi, k++, provider);
                sqlite3_bind_int(fi, k++, unit);
                sqlite3_bind_int(fi, k++, followup);
                sqlite3_bind_int(fi, k++, r->resolution);
                sqlite3_bind_int(fi, k++, r->county);
                sqlite3_bind_text(fi, k++, r->municipality, -1, SQLITE_STATIC);
                sqlite3_bind_blob(fi, k++, r->patient_ps, PSEUDONYM_LEN, SQLITE_STATIC);
                sqlite3_bind_int(fi, k++, r->sex);
                sqlite3_bind_int(fi, k++, r->age);
                sqlite3_bind_text(fi, k++, r->dx.code, -1, SQLITE_STATIC);
                sqlite3_bind_int(fi, k++, (int)r->dx.group);
                sqlite3_bind_int(fi, k++, r->dx.chapter);
                sqlite3_bind_int(fi, k++, r->dx.section);
                sqlite3_bind_int(fi, k++, r->prognosis);
                sqlite3_bind_int64(fi, k++, r->measures);
                sqlite3_bind_int(fi, k++, r->treatment);
                if (active)
                        sqlite3_bind_null(fi, k++);
                else
                        sqlite3_bind_int(fi, k++, revoked_day);
                if (step_done(q, fi, err, errlen) != 0)
                        return STATS_ESTORE;
        }
        int rc = horizon_add(q, provider,
                             !active && revoked_day > r->signed_day ? revoked_day : r->signed_day,
                             err, errlen);
        if (rc != 0 || !active)
                return rc;
        rc = cert_agg(q, r->signed_day, provider, r->county, r->sex,
                      r->resolution == TAG_MAPPING || r->resolution == TAG_LEVEL, +1);
        return rc ? rc : recompute_key(q, provider, r->patient_ps, err, errlen);
}

static int sq_record(struct stats_store *st, const struct stats_record *r, char *err, size_t errlen)
{
        struct sq *q = SQ(st);
        if (q->readonly) {
                snprintf(err, errlen, "statistics store opened read-only");
                return STATS_ESTORE;
        }
        if (step_done(q, q->sp_begin, err, errlen) != 0)
                return STATS_ESTORE;
        /* The aggregate changes of this record are kept apart until it succeeds. */
        struct stats_map saved = q->delta;
        struct stats_map mine = {0};
        q->delta = mine;
        int64_t saved_next = q->next_fact_id;
        int rc =
            r->kind == INTYG_REVOKE ? do_revoke(q, r, err, errlen) : do_register(q, r, err, errlen);
        mine = q->delta;
        q->delta = saved;
        char e2[128];
        if (rc < 0) {
                step_done(q, q->sp_rollback, e2, sizeof e2);
                step_done(q, q->sp_release, e2, sizeof e2);
                q->next_fact_id = saved_next;
                stats_map_free(&mine);
                return rc;
        }
        for (size_t i = 0; i < mine.cap; i++) {
                if (!mine.e[i].used)
                        continue;
                struct stats_map_entry *e = stats_map_get(&q->delta, mine.e[i].a, mine.e[i].b);
                if (!e) {
                        rc = STATS_ESTORE;
                        break;
                }
                e->v[0] += mine.e[i].v[0];
                e->v[1] += mine.e[i].v[1];
        }
        stats_map_free(&mine);
        if (step_done(q, q->sp_release, err, errlen) != 0)
                return STATS_ESTORE;
        return rc;
}

/* ---- scans for reports ---- */

static int bind_range(sqlite3_stmt *s, int k, const struct stats_scan *q)
{
        sqlite3_bind_int(s, k, q->month_from);
        sqlite3_bind_int(s, k + 1, q->month_to);
        return k + 2;
}

/* ---- as of a past day: the cases of the scope recomputed from the facts visible then ---- */

/* A fact is visible on day D when it was signed by D and not revoked by D. */
#define VISIBLE_AT "signed_day <= ? AND (active = 1 OR revoked_day > ?)"

struct asof {
        struct sq *q;
        const struct stats_scan *qs;
        stats_row_cb cb;
        void *arg;
        int32_t day_from, day_to; /* the scan's months as days */
        bool per_unit;            /* unit-scope rows are needed */
        int64_t next_case;        /* case ids of this scan only (ordering, not identity) */
        struct sf_fact *f;
        size_t n, cap;
        struct sf_case *cases;
        size_t ccap;
        struct sf_row *keep;
        size_t kcap;
        char *err;
        size_t errlen;
};

static bool asof_row_wanted(const struct stats_scan *qs, const struct sf_row *r)
{
        if (r->month < qs->month_from || r->month > qs->month_to)
                return false;
        if (qs->county >= 0 && r->county != qs->county)
                return false;
        if (qs->all_units)
                return r->scope > 0;
        if (qs->units) {
                for (size_t u = 0; u < qs->n_units; u++)
                        if (r->scope == qs->units[u])
                                return true;
                return false;
        }
        return r->scope == 0;
}

static int row_month_cmp(const void *x, const void *y)
{
        const struct sf_row *a = x, *b = y;
        if (a->month != b->month)
                return a->month < b->month ? -1 : 1;
        return a->scope < b->scope ? -1 : a->scope > b->scope;
}

static int asof_push(struct asof *a, const struct sf_fact *x)
{
        if (a->n >= SF_MAX_CASE_FACTS) {
                snprintf(a->err, a->errlen,
                         "more than %d sick-leave facts for one patient at one care provider",
                         SF_MAX_CASE_FACTS);
                return STATS_EINVAL;
        }
        if (a->n == a->cap) {
                size_t nc = a->cap ? a->cap * 2 : 64;
                struct sf_fact *nf = realloc(a->f, nc * sizeof *nf);
                if (!nf) {
                        snprintf(a->err, a->errlen, "out of memory");
                        return STATS_ESTORE;
                }
                a->f = nf;
                a->cap = nc;
        }
        a->f[a->n++] = *x;
        return 0;
}

/* The facts of one (care provider, patient) in a->f: partition them into cases with the
 * same code as the incremental state (sf_partition, sf_case_rows), keep the rows the scan
 * selects, and hand them on in the scan's order, one case after the other. */
static int asof_emit_key(struct asof *a, int32_t provider)
{
        const struct stats_scan *qs = a->qs;
        bool overlap = false, county = qs->county < 0, unit = !qs->units || qs->all_units;
        for (size_t i = 0; i < a->n; i++) {
                const struct sf_fact *x = &a->f[i];
                overlap |= x->start <= a->day_to && x->end >= a->day_from;
                county |= x->county == qs->county; /* a row's county is one of its facts' */
                for (size_t u = 0; !unit && u < qs->n_units; u++)
                        unit = x->unit == qs->units[u];
        }
        if (!overlap || !county || !unit)
                return 0;
        if (a->ccap < a->n) {
                struct sf_case *nc = realloc(a->cases, a->n * sizeof *nc);
                if (!nc) {
                        snprintf(a->err, a->errlen, "out of memory");
                        return STATS_ESTORE;
                }
                a->cases = nc;
                a->ccap = a->n;
        }
        size_t ncases = 0;
        sf_partition(a->f, a->n, a->cases, &ncases);
        int rc = 0;
        for (size_t c = 0; rc == 0 && c < ncases; c++) {
                const struct sf_case *cs = &a->cases[c];
                if (cs->start > a->day_to || cs->end < a->day_from)
                        continue;
                struct sf_row *rows = NULL;
                long nr = sf_case_rows(a->f + cs->first, cs->n, a->per_unit, &rows);
                if (nr < 0) {
                        snprintf(a->err, a->errlen,
                                 "sick-leave case spans more than %d months or out of memory",
                                 SF_MAX_CASE_MONTHS);
                        return STATS_EINVAL;
                }
                size_t k = 0;
                for (long i = 0; i < nr; i++) {
                        if (!asof_row_wanted(qs, &rows[i]))
                                continue;
                        if (k == a->kcap) {
                                size_t ncap = a->kcap ? a->kcap * 2 : 64;
                                struct sf_row *nk = realloc(a->keep, ncap * sizeof *nk);
                                if (!nk) {
                                        free(rows);
                                        snprintf(a->err, a->errlen, "out of memory");
                                        return STATS_ESTORE;
                                }
                                a->keep = nk;
                                a->kcap = ncap;
                        }
                        a->keep[k++] = rows[i];
                }
                free(rows);
                if (k > 1)
                        qsort(a->keep, k, sizeof *a->keep,
                              qs->scope_order ? row_key_cmp : row_month_cmp);
                const int64_t case_id = ++a->next_case;
                for (size_t i = 0; rc == 0 && i < k; i++) {
                        struct stats_row_rec rec = {
                            .case_id = case_id, .provider = provider, .r = a->keep[i]};
                        rc = a->cb(a->arg, &rec);
                }
        }
        return rc;
}

/* Unit scans: the (care provider, patient) keys with a certificate at one of the units,
 * visible on the day, with a period in the scan's months; then each key's visible facts at
 * every unit of its provider (length counts them all, §1.3). */
static int asof_units(struct asof *a)
{
        struct sq *q = a->q;
        const struct stats_scan *qs = a->qs;
        char in[8 + 2 * STATS_MAX_UNITS] = "(";
        for (size_t u = 0; u < qs->n_units; u++)
                strcat(in, u ? ",?" : "?");
        strcat(in, ")");
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "SELECT DISTINCT f.provider, f.patient_ps FROM fact f WHERE f.followup IN %s "
                 "AND f.seq = 0 AND f.kind = 1 AND f.signed_day <= ? AND (f.active = 1 OR "
                 "f.revoked_day > ?) AND EXISTS (SELECT 1 FROM fact g WHERE g.id BETWEEN f.id "
                 "AND f.id + %d AND g.cert_seq = f.cert_seq AND g.start_day <= ? AND "
                 "g.end_day >= ?)%s",
                 in, INTYG_MAX_PERIODS - 1, qs->provider ? " AND f.provider = ?" : "");
        sqlite3_stmt *ks = NULL, *fs = NULL;
        struct key {
                int32_t provider;
                unsigned char ps[PSEUDONYM_LEN];
        } *keys = NULL;
        size_t nkeys = 0, kcap = 0;
        int rc = 0, sr;
        if (sqlite3_prepare_v2(q->db, sql, -1, &ks, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(q->db,
                               "SELECT " FACT_COLS " FROM fact WHERE provider = ? AND "
                               "patient_ps = ? AND kind = 1 AND " VISIBLE_AT,
                               -1, &fs, NULL) != SQLITE_OK) {
                rc = sqerr(q, a->err, a->errlen, "prepare as-of scan");
                goto done;
        }
        int k = 1;
        for (size_t u = 0; u < qs->n_units; u++)
                sqlite3_bind_int(ks, k++, qs->units[u]);
        sqlite3_bind_int(ks, k++, qs->as_of);
        sqlite3_bind_int(ks, k++, qs->as_of);
        sqlite3_bind_int(ks, k++, a->day_to);
        sqlite3_bind_int(ks, k++, a->day_from);
        if (qs->provider)
                sqlite3_bind_int(ks, k++, qs->provider);
        while ((sr = sqlite3_step(ks)) == SQLITE_ROW) {
                if (sqlite3_column_bytes(ks, 1) != PSEUDONYM_LEN)
                        continue;
                if (nkeys == kcap) {
                        size_t ncap = kcap ? kcap * 2 : 64;
                        struct key *nk = realloc(keys, ncap * sizeof *nk);
                        if (!nk) {
                                snprintf(a->err, a->errlen, "out of memory");
                                rc = STATS_ESTORE;
                                goto done;
                        }
                        keys = nk;
                        kcap = ncap;
                }
                keys[nkeys].provider = sqlite3_column_int(ks, 0);
                memcpy(keys[nkeys].ps, sqlite3_column_blob(ks, 1), PSEUDONYM_LEN);
                nkeys++;
        }
        if (sr != SQLITE_DONE) {
                rc = sqerr(q, a->err, a->errlen, "as-of scan");
                goto done;
        }
        for (size_t i = 0; rc == 0 && i < nkeys; i++) {
                sqlite3_bind_int(fs, 1, keys[i].provider);
                sqlite3_bind_blob(fs, 2, keys[i].ps, PSEUDONYM_LEN, SQLITE_STATIC);
                sqlite3_bind_int(fs, 3, qs->as_of);
                sqlite3_bind_int(fs, 4, qs->as_of);
                a->n = 0;
                while (rc == 0 && (sr = sqlite3_step(fs)) == SQLITE_ROW) {
                        struct sf_fact x;
                        fact_read(fs, 0, &x);
                        rc = asof_push(a, &x);
                }
                if (rc == 0 && sr != SQLITE_DONE)
                        rc = sqerr(q, a->err, a->errlen, "as-of facts");
                sqlite3_reset(fs);
                if (rc == 0)
                        rc = asof_emit_key(a, keys[i].provider);
        }
done:
        sqlite3_finalize(ks);
        sqlite3_finalize(fs);
        free(keys);
        return rc;
}

/* Provider, county and country scans: every visible fact of the provider (or of all), in
 * (provider, patient) order, one key at a time. */
static int asof_all(struct asof *a)
{
        struct sq *q = a->q;
        const struct stats_scan *qs = a->qs;
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT provider, patient_ps, " FACT_COLS " FROM fact WHERE kind = 1 AND "
                 "patient_ps IS NOT NULL AND " VISIBLE_AT "%s ORDER BY provider, patient_ps",
                 qs->provider ? " AND provider = ?" : "");
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) != SQLITE_OK)
                return sqerr(q, a->err, a->errlen, "prepare as-of scan");
        sqlite3_bind_int(s, 1, qs->as_of);
        sqlite3_bind_int(s, 2, qs->as_of);
        if (qs->provider)
                sqlite3_bind_int(s, 3, qs->provider);
        int32_t cur_provider = 0;
        unsigned char cur[PSEUDONYM_LEN] = {0};
        int rc = 0, sr;
        a->n = 0;
        while (rc == 0 && (sr = sqlite3_step(s)) == SQLITE_ROW) {
                int32_t provider = sqlite3_column_int(s, 0);
                const void *ps = sqlite3_column_blob(s, 1);
                if (!ps || sqlite3_column_bytes(s, 1) != PSEUDONYM_LEN)
                        continue;
                if (a->n > 0 && (provider != cur_provider || memcmp(ps, cur, PSEUDONYM_LEN))) {
                        rc = asof_emit_key(a, cur_provider);
                        a->n = 0;
                }
                cur_provider = provider;
                memcpy(cur, ps, PSEUDONYM_LEN);
                struct sf_fact x;
                fact_read(s, 2, &x);
                if (rc == 0)
                        rc = asof_push(a, &x);
        }
        if (rc == 0 && sr != SQLITE_DONE)
                rc = sqerr(q, a->err, a->errlen, "as-of scan");
        if (rc == 0 && a->n > 0)
                rc = asof_emit_key(a, cur_provider);
        sqlite3_finalize(s);
        return rc;
}

static int scan_rows_asof(struct sq *q, const struct stats_scan *qs, stats_row_cb cb, void *arg,
                          char *err, size_t errlen)
{
        struct asof a = {.q = q,
                         .qs = qs,
                         .cb = cb,
                         .arg = arg,
                         .day_from = sf_month_first(qs->month_from),
                         .day_to = sf_month_last(qs->month_to),
                         .per_unit = qs->units != NULL || qs->all_units,
                         .err = err,
                         .errlen = errlen};
        int rc = qs->units && !qs->all_units ? asof_units(&a) : asof_all(&a);
        free(a.f);
        free(a.cases);
        free(a.keep);
        return rc > 0 ? 0 : rc;
}

static int sq_horizon(struct stats_store *st, const struct stats_scan *qs, int32_t *day)
{
        struct sq *q = SQ(st);
        *day = INT32_MIN;
        char sql[512];
        bool units = qs->units && !qs->all_units && qs->n_units > 0;
        if (qs->n_units > STATS_MAX_UNITS)
                return STATS_EINVAL;
        if (units) {
                char in[8 + 2 * STATS_MAX_UNITS] = "(";
                for (size_t u = 0; u < qs->n_units; u++)
                        strcat(in, u ? ",?" : "?");
                strcat(in, ")");
                snprintf(sql, sizeof sql,
                         "SELECT max(day) FROM horizon WHERE provider IN (SELECT DISTINCT "
                         "provider FROM fact WHERE followup IN %s AND seq = 0)",
                         in);
        } else {
                snprintf(sql, sizeof sql, "SELECT max(day) FROM horizon%s",
                         qs->provider ? " WHERE provider = ?" : "");
        }
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) != SQLITE_OK)
                return STATS_ESTORE;
        int k = 1;
        if (units)
                for (size_t u = 0; u < qs->n_units; u++)
                        sqlite3_bind_int(s, k++, qs->units[u]);
        else if (qs->provider)
                sqlite3_bind_int(s, k++, qs->provider);
        int sr = sqlite3_step(s);
        if (sr == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
                *day = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        return sr == SQLITE_ROW || sr == SQLITE_DONE ? 0 : STATS_ESTORE;
}

static int sq_scan_rows(struct stats_store *st, const struct stats_scan *qs, stats_row_cb cb,
                        void *arg, char *err, size_t errlen)
{
        struct sq *q = SQ(st);
        if (qs->units && !qs->all_units && (qs->n_units == 0 || qs->n_units > STATS_MAX_UNITS)) {
                snprintf(err, errlen, "1 to %d units per query", STATS_MAX_UNITS);
                return STATS_EINVAL;
        }
        if (qs->as_of_cut)
                return scan_rows_asof(q, qs, cb, arg, err, errlen);
        char scope[8 + 2 * STATS_MAX_UNITS] = "= 0";
        if (qs->all_units) {
                snprintf(scope, sizeof scope, "> 0");
        } else if (qs->units) {
                size_t k = 0;
                scope[k++] = 'I';
                scope[k++] = 'N';
                scope[k++] = '(';
                for (size_t u = 0; u < qs->n_units; u++) {
                        if (u)
                                scope[k++] = ',';
                        scope[k++] = '?';
                }
                scope[k++] = ')';
                scope[k] = '\0';
        }
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "SELECT " ROW_COLS " FROM case_month WHERE scope %s AND month BETWEEN ? AND ?"
                 "%s%s ORDER BY case_id, %s",
                 scope, qs->provider ? " AND provider = ?" : "",
                 qs->county >= 0 ? " AND county = ?" : "",
                 qs->scope_order ? "scope, month" : "month, scope");
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) != SQLITE_OK)
                return sqerr(q, err, errlen, "prepare scan");
        int k = 1;
        if (qs->units && !qs->all_units)
                for (size_t u = 0; u < qs->n_units; u++)
                        sqlite3_bind_int(s, k++, qs->units[u]);
        k = bind_range(s, k, qs);
        if (qs->provider)
                sqlite3_bind_int(s, k++, qs->provider);
        if (qs->county >= 0)
                sqlite3_bind_int(s, k++, qs->county);
        int sr, rc = 0;
        struct stats_row_rec rec;
        while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
                row_read(s, 0, &rec);
                if ((rc = cb(arg, &rec)) != 0)
                        break;
        }
        if (rc == 0 && sr != SQLITE_DONE)
                rc = sqerr(q, err, errlen, "scan");
        sqlite3_finalize(s);
        return rc > 0 ? 0 : rc;
}

static int sq_scan_agg(struct stats_store *st, const struct stats_scan *qs, enum stats_dim dim,
                       stats_agg_cb cb, void *arg, char *err, size_t errlen)
{
        struct sq *q = SQ(st);
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT month, provider, county, sex, grp, n, nres FROM agg WHERE dim = ? AND "
                 "month BETWEEN ? AND ? AND n <> 0%s%s",
                 qs->provider ? " AND provider = ?" : "", qs->county >= 0 ? " AND county = ?" : "");
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) != SQLITE_OK)
                return sqerr(q, err, errlen, "prepare aggregate scan");
        int k = 1;
        sqlite3_bind_int(s, k++, dim);
        k = bind_range(s, k, qs);
        if (qs->provider)
                sqlite3_bind_int(s, k++, qs->provider);
        if (qs->county >= 0)
                sqlite3_bind_int(s, k++, qs->county);
        int sr, rc = 0;
        while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
                struct stats_agg_rec a = {
                    .month = sqlite3_column_int(s, 0),
                    .provider = sqlite3_column_int(s, 1),
                    .county = sqlite3_column_int(s, 2),
                    .sex = sqlite3_column_int(s, 3),
                    .grp = sqlite3_column_int(s, 4),
                    .n = sqlite3_column_int64(s, 5),
                    .nres = sqlite3_column_int64(s, 6),
                };
                if ((rc = cb(arg, &a)) != 0)
                        break;
        }
        if (rc == 0 && sr != SQLITE_DONE)
                rc = sqerr(q, err, errlen, "aggregate scan");
        sqlite3_finalize(s);
        return rc > 0 ? 0 : rc;
}

static int cert_row(sqlite3_stmt *s, stats_cert_cb cb, void *arg)
{
        int res = sqlite3_column_int(s, 4);
        struct stats_cert_rec c = {
            .month = sf_month_of_day(sqlite3_column_int(s, 0)),
            .provider = sqlite3_column_int(s, 1),
            .sex = sqlite3_column_int(s, 2),
            .county = sqlite3_column_int(s, 3),
            .n = 1,
            .nres = res == TAG_MAPPING || res == TAG_LEVEL,
        };
        return cb(arg, &c);
}

static int sq_scan_certs(struct stats_store *st, const struct stats_scan *qs, stats_cert_cb cb,
                         void *arg, char *err, size_t errlen)
{
        struct sq *q = SQ(st);
        const bool by_unit = qs->units && !qs->all_units;
        if (!by_unit && !qs->as_of_cut) {
                snprintf(err, errlen, "certificate scan without units needs as_of");
                return STATS_EINVAL;
        }
        /* Without a cut: the active certificates. With one: those visible on the day. */
        int32_t last = sf_month_last(qs->month_to);
        const int32_t hide = qs->as_of_cut ? qs->as_of : INT32_MAX;
        if (qs->as_of_cut && qs->as_of < last)
                last = qs->as_of;
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT signed_day, provider, sex, county, resolution FROM fact WHERE %s"
                 "seq = 0 AND kind = 1 AND signed_day BETWEEN ? AND ? AND (active = 1 OR "
                 "revoked_day > ?)%s%s",
                 by_unit ? "followup = ? AND " : "", qs->provider ? " AND provider = ?" : "",
                 !by_unit && qs->county >= 0 ? " AND county = ?" : "");
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) != SQLITE_OK)
                return sqerr(q, err, errlen, "prepare certificate scan");
        int rc = 0;
        for (size_t u = 0; rc == 0 && u < (by_unit ? qs->n_units : 1); u++) {
                int k = 1;
                if (by_unit)
                        sqlite3_bind_int(s, k++, qs->units[u]);
                sqlite3_bind_int(s, k++, sf_month_first(qs->month_from));
                sqlite3_bind_int(s, k++, last);
                sqlite3_bind_int(s, k++, hide);
                if (qs->provider)
                        sqlite3_bind_int(s, k++, qs->provider);
                if (!by_unit && qs->county >= 0)
                        sqlite3_bind_int(s, k++, qs->county);
                int sr;
                while ((sr = sqlite3_step(s)) == SQLITE_ROW)
                        if ((rc = cert_row(s, cb, arg)) != 0)
                                break;
                if (rc == 0 && sr != SQLITE_DONE)
                        rc = sqerr(q, err, errlen, "certificate scan");
                sqlite3_reset(s);
        }
        sqlite3_finalize(s);
        return rc > 0 ? 0 : rc;
}

static int sq_unit_county(struct stats_store *st, int32_t unit, int32_t as_of, int *county)
{
        struct sq *q = SQ(st);
        sqlite3_stmt *s = NULL;
        *county = 0;
        if (sqlite3_prepare_v2(q->db,
                               "SELECT county, count(*) AS c FROM fact WHERE followup = ? AND "
                               "seq = 0 AND kind = 1 AND " VISIBLE_AT
                               " GROUP BY county ORDER BY c DESC, county LIMIT 1",
                               -1, &s, NULL) != SQLITE_OK)
                return STATS_ESTORE;
        sqlite3_bind_int(s, 1, unit);
        sqlite3_bind_int(s, 2, as_of);
        sqlite3_bind_int(s, 3, as_of);
        if (sqlite3_step(s) == SQLITE_ROW)
                *county = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        return 0;
}

static int sq_counts(struct stats_store *st, int64_t out[4])
{
        struct sq *q = SQ(st);
        static const char *const sql[4] = {
            "SELECT count(*) FROM fact", "SELECT count(*) FROM fact WHERE seq = 0",
            "SELECT count(*) FROM sjukfall", "SELECT count(*) FROM case_month"};
        for (int i = 0; i < 4; i++) {
                sqlite3_stmt *s = NULL;
                out[i] = 0;
                if (sqlite3_prepare_v2(q->db, sql[i], -1, &s, NULL) != SQLITE_OK)
                        return STATS_ESTORE;
                if (sqlite3_step(s) == SQLITE_ROW)
                        out[i] = sqlite3_column_int64(s, 0);
                sqlite3_finalize(s);
        }
        return 0;
}

static void sq_close(struct stats_store *st)
{
        struct sq *q = SQ(st);
        if (q) {
                sqlite3_stmt **all[] = {
                    &q->hsa_get,     &q->hsa_ins,    &q->cert_find,  &q->revoked_find,
                    &q->revoked_ins, &q->fact_ins,   &q->fact_deact, &q->key_facts,
                    &q->key_cases,   &q->case_rows,  &q->row_ins,    &q->row_del,
                    &q->row_upd,     &q->case_ins,   &q->case_upd,   &q->case_del,
                    &q->fact_case,   &q->agg_upd,    &q->sp_begin,   &q->sp_release,
                    &q->sp_rollback, &q->horizon_upd};
                for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                        sqlite3_finalize(*all[i]);
                sqlite3_close(q->db);
                stats_map_free(&q->delta);
                free(q);
        }
        free(st);
}

static const struct stats_store_ops sqlite_ops = {
    .name = "sqlite",
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .record = sq_record,
    .hsa_id = sq_hsa_id,
    .hsa_name = sq_hsa_name,
    .scan_rows = sq_scan_rows,
    .scan_agg = sq_scan_agg,
    .scan_certs = sq_scan_certs,
    .unit_county = sq_unit_county,
    .horizon = sq_horizon,
    .counts = sq_counts,
    .close = sq_close,
};

static int prepare_writer(struct sq *q, char *err, size_t errlen)
{
        struct {
                sqlite3_stmt **st;
                const char *sql;
        } p[] = {
            {&q->hsa_get, "SELECT id FROM hsa WHERE hsa = ?"},
            {&q->hsa_ins, "INSERT INTO hsa(hsa) VALUES(?)"},
            {&q->cert_find,
             "SELECT content, active, provider, patient_ps, signed_day, county, sex, "
             "resolution FROM fact WHERE cert_ps = ? AND kind = 1 ORDER BY seq LIMIT 1"},
            {&q->revoked_find, "SELECT day FROM revoked WHERE cert_ps = ?"},
            {&q->revoked_ins, "INSERT OR IGNORE INTO revoked(cert_ps, day) VALUES(?, ?)"},
            {&q->fact_ins,
             "INSERT INTO fact(id, kind, cert_ps, cert_seq, seq, active, content, "
             "signed_day, start_day, end_day, degree, provider, unit, followup, "
             "resolution, county, municipality, patient_ps, sex, age, icd, dxgroup, "
             "chapter, section, prognosis, measures, treatment, revoked_day) VALUES(?,?,?,?,?,"
             "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
            {&q->fact_deact,
             "UPDATE fact SET active = 0, revoked_day = ? WHERE cert_ps = ? AND kind = 1"},
            {&q->horizon_upd, "INSERT INTO horizon(provider, day) VALUES(?, ?) ON "
                              "CONFLICT(provider) DO UPDATE SET day = max(day, excluded.day)"},
            {&q->key_facts, "SELECT " FACT_COLS ", coalesce(case_id, 0) FROM fact WHERE "
                            "provider = ? AND patient_ps = ? AND active = 1 AND kind = 1"},
            {&q->key_cases, "SELECT id FROM sjukfall WHERE provider = ? AND patient_ps = ?"},
            {&q->case_rows, "SELECT " ROW_COLS " FROM case_month WHERE case_id = ?"},
            {&q->row_ins, "INSERT INTO case_month(" ROW_COLS
                          ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
            {&q->row_upd, "REPLACE INTO case_month(" ROW_COLS
                          ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
            {&q->row_del, "DELETE FROM case_month WHERE case_id = ? AND scope = ? AND month = ?"},
            {&q->case_ins, "INSERT INTO sjukfall(provider, patient_ps, start_day, end_day, "
                           "length, ncert) VALUES(?,?,?,?,?,?)"},
            {&q->case_upd, "UPDATE sjukfall SET start_day = ?, end_day = ?, length = ?, "
                           "ncert = ? WHERE id = ?"},
            {&q->case_del, "DELETE FROM sjukfall WHERE id = ?"},
            {&q->fact_case, "UPDATE fact SET case_id = ? WHERE id = ?"},
            {&q->agg_upd, "INSERT INTO agg(dim, month, provider, county, sex, grp, n, nres) "
                          "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n, "
                          "nres = nres + excluded.nres"},
            {&q->sp_begin, "SAVEPOINT rec"},
            {&q->sp_release, "RELEASE rec"},
            {&q->sp_rollback, "ROLLBACK TO rec"},
        };
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
                if (prep(q, p[i].st, p[i].sql, err, errlen) != 0)
                        return STATS_ESTORE;
        return 0;
}

/*
 * Schema 1 -> 2: keep the revocation day. Schema 1 did not record when a certificate was
 * revoked, so its revoked facts get their signing day: an --as-of report leaves them out on
 * every day, which is what every report showed before the migration. The horizon (newest
 * signing or revocation day per care provider) is filled from the facts.
 */
static int migrate_v1(struct sq *q, char *err, size_t errlen)
{
        sqlite3_stmt *s = NULL;
        bool v1 = false;
        if (sqlite3_prepare_v2(q->db, "SELECT v FROM meta WHERE k = 'schema'", -1, &s, NULL) !=
            SQLITE_OK)
                return 0; /* a new store: no meta table yet */
        if (sqlite3_step(s) == SQLITE_ROW)
                v1 = strcmp((const char *)sqlite3_column_text(s, 0), "1") == 0;
        sqlite3_finalize(s);
        if (!v1)
                return 0;
        if (exec(q,
                 "BEGIN IMMEDIATE;"
                 "ALTER TABLE fact ADD COLUMN revoked_day INTEGER;"
                 "UPDATE fact SET revoked_day = signed_day WHERE active = 0;"
                 "ALTER TABLE revoked ADD COLUMN day INTEGER;"
                 "CREATE TABLE IF NOT EXISTS horizon(provider INTEGER PRIMARY KEY, day INTEGER "
                 "NOT NULL);"
                 "INSERT OR REPLACE INTO horizon(provider, day) SELECT provider, "
                 "max(signed_day) FROM fact GROUP BY provider;"
                 "UPDATE meta SET v = '2' WHERE k = 'schema';"
                 "COMMIT;",
                 err, errlen) != 0) {
                char e2[128];
                exec(q, "ROLLBACK", e2, sizeof e2);
                return STATS_ESTORE;
        }
        LOGI("stats_store_migrated", "from", "1", "to", SCHEMA_VERSION);
        return 0;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
        static const char d[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = d[b[i] >> 4];
                out[2 * i + 1] = d[b[i] & 15];
        }
        out[2 * n] = '\0';
}

static int check_meta(struct sq *q, const unsigned char *fingerprint, char *err, size_t errlen)
{
        sqlite3_stmt *s = NULL;
        char fp[2 * PSEUDONYM_LEN + 1] = "";
        if (fingerprint)
                hex(fingerprint, PSEUDONYM_LEN, fp);
        if (sqlite3_prepare_v2(q->db, "SELECT k, v FROM meta", -1, &s, NULL) != SQLITE_OK)
                return sqerr(q, err, errlen, "read meta");
        bool have_fp = false;
        int rc = 0;
        while (sqlite3_step(s) == SQLITE_ROW) {
                const char *k = (const char *)sqlite3_column_text(s, 0);
                const char *v = (const char *)sqlite3_column_text(s, 1);
                if (strcmp(k, "schema") == 0 && strcmp(v, SCHEMA_VERSION) != 0) {
                        snprintf(err, errlen,
                                 "statistics store schema %s, expected %s (an older store is "
                                 "migrated when the daemon or `stats ingest` opens it)",
                                 v, SCHEMA_VERSION);
                        rc = STATS_ESTORE;
                }
                if (strcmp(k, "key_fingerprint") == 0) {
                        have_fp = true;
                        if (fingerprint && strcmp(v, fp) != 0) {
                                snprintf(err, errlen,
                                         "statistics store was built under another pseudonym "
                                         "key; refusing to mix pseudonyms");
                                rc = STATS_ESTORE;
                        }
                }
        }
        sqlite3_finalize(s);
        if (rc == 0 && !q->readonly) {
                char sql[160];
                snprintf(sql, sizeof sql,
                         "INSERT OR IGNORE INTO meta VALUES('schema','" SCHEMA_VERSION "');");
                rc = exec(q, sql, err, errlen);
                if (rc == 0 && fingerprint && !have_fp) {
                        snprintf(sql, sizeof sql,
                                 "INSERT INTO meta VALUES('key_fingerprint','%s');", fp);
                        rc = exec(q, sql, err, errlen);
                }
        }
        return rc;
}

struct stats_store *stats_sqlite_open(const char *path, bool readonly,
                                      const unsigned char *fingerprint, char *err, size_t errlen)
{
        struct stats_store *st = calloc(1, sizeof *st);
        struct sq *q = calloc(1, sizeof *q);
        if (!st || !q) {
                free(st);
                free(q);
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        st->ops = &sqlite_ops;
        st->impl = q;
        q->readonly = readonly;
        int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        if (sqlite3_open_v2(path, &q->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
                snprintf(err, errlen, "statistics store %s: %s", path,
                         q->db ? sqlite3_errmsg(q->db) : "cannot open");
                sq_close(st);
                return NULL;
        }
        sqlite3_busy_timeout(q->db, 10000);
        if (!readonly) {
                if (exec(q,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
                         err, errlen) != 0 ||
                    migrate_v1(q, err, errlen) != 0 || exec(q, schema_sql, err, errlen) != 0 ||
                    check_meta(q, fingerprint, err, errlen) != 0 ||
                    prepare_writer(q, err, errlen) != 0) {
                        sq_close(st);
                        return NULL;
                }
                sqlite3_stmt *s = NULL;
                if (sqlite3_prepare_v2(q->db, "SELECT coalesce(max(id), 0) + 1 FROM fact", -1, &s,
                                       NULL) == SQLITE_OK &&
                    sqlite3_step(s) == SQLITE_ROW)
                        q->next_fact_id = sqlite3_column_int64(s, 0);
                sqlite3_finalize(s);
        } else {
                if (exec(q, "PRAGMA query_only=1; PRAGMA cache_size=-32768;", err, errlen) != 0 ||
                    check_meta(q, fingerprint, err, errlen) != 0 ||
                    prep(q, &q->hsa_get, "SELECT id FROM hsa WHERE hsa = ?", err, errlen) != 0) {
                        sq_close(st);
                        return NULL;
                }
        }
        return st;
}
