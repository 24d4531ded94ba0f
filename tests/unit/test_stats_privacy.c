/*
 * test_stats_privacy.c - no personnummer, and nothing reversible to one without the key, in
 * the statistics store: scan every byte of the database files for the number in every usual
 * form, its birth date, and unkeyed hashes of it; and show the pseudonym needs the key.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <sqlite3.h>

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

static unsigned char *slurp(const char *path, size_t *n)
{
        *n = 0;
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        size_t cap = 1 << 20;
        unsigned char *b = malloc(cap);
        size_t r;
        while ((r = fread(b + *n, 1, cap - *n, f)) > 0) {
                *n += r;
                if (*n == cap)
                        b = realloc(b, cap *= 2);
        }
        fclose(f);
        return b;
}

static bool contains(const unsigned char *hay, size_t n, const void *needle, size_t m)
{
        return m > 0 && memmem(hay, n, needle, m) != NULL;
}

static void hexs(const unsigned char *b, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
}

Test(privacy, no_personnummer_in_store)
{
        struct tb t;
        tb_open(&t);
        const char *pnrs[] = {"197311172395", "196502282864", "198812245680"};
        const char *forms[][6] = {
            {"197311172395", "7311172395", "731117-2395", "19731117-2395", "19731117", "731117"},
            {"196502282864", "6502282864", "650228-2864", "19650228-2864", "19650228", "650228"},
            {"198812245680", "8812245680", "881224-5680", "19881224-5680", "19881224", "881224"}};
        const char *dates[] = {"1973-11-17", "1965-02-28", "1988-12-24"};
        char id[16];
        for (int i = 0; i < 3; i++)
                for (int k = 0; k < 4; k++) {
                        snprintf(id, sizeof id, "p%d-%d", i, k);
                        reg(&t, id, pnrs[i], k % 2 ? "SE1" : "SE2", "U1", "F32",
                            k < 2 ? "2024-01-01/2024-01-20/100" : "2024-01-25/2024-02-20/50");
                }
        revoke_intyg(&t, "p0-1");
        tb_flush(&t);
        stats_close(t.s); /* checkpoint the WAL into the main file */
        char err[256];
        t.s = stats_open(t.db, t.key, err, sizeof err);
        cr_assert_not_null(t.s);

        const char *suffix[] = {"", "-wal", "-shm"};
        size_t scanned = 0;
        for (int f = 0; f < 3; f++) {
                char path[160];
                snprintf(path, sizeof path, "%s%s", t.db, suffix[f]);
                size_t n;
                unsigned char *b = slurp(path, &n);
                if (!b)
                        continue;
                scanned += n;
                for (int i = 0; i < 3; i++) {
                        for (int k = 0; k < 6; k++)
                                cr_assert_not(contains(b, n, forms[i][k], strlen(forms[i][k])),
                                              "%s found in %s", forms[i][k], path);
                        cr_assert_not(contains(b, n, dates[i], 10));
                        /* unkeyed hashes are reversible by trying every personnummer */
                        unsigned char h[SHA256_DIGEST_LENGTH];
                        char hx[2 * SHA256_DIGEST_LENGTH + 1];
                        SHA256((const unsigned char *)pnrs[i], 12, h);
                        hexs(h, sizeof h, hx);
                        cr_assert_not(contains(b, n, h, 8));
                        cr_assert_not(contains(b, n, hx, 16));
                        unsigned char md[EVP_MAX_MD_SIZE];
                        unsigned int l;
                        HMAC(EVP_sha256(), "", 0, (const unsigned char *)pnrs[i], 12, md, &l);
                        cr_assert_not(contains(b, n, md, 8));
                        /* the keyed pseudonym is there, and only under the right key */
                        unsigned char ps[PSEUDONYM_LEN], other[PSEUDONYM_LEN];
                        struct pseudonym *p = pseudonym_load(t.key, err, sizeof err);
                        cr_assert_not_null(p);
                        pseudonym_make(p, "patient", "SE1", pnrs[i], ps);
                        pseudonym_free(p);
                        struct pseudonym *wrong =
                            pseudonym_new((const unsigned char *)"a different key, 32 bytes long!!",
                                          32, err, sizeof err);
                        pseudonym_make(wrong, "patient", "SE1", pnrs[i], other);
                        pseudonym_free(wrong);
                        if (f == 0)
                                cr_assert(contains(b, n, ps, PSEUDONYM_LEN));
                        cr_assert_not(contains(b, n, other, PSEUDONYM_LEN));
                }
                free(b);
        }
        cr_assert_gt(scanned, 4096);

        /* every column of every table: no text that looks like a person id */
        sqlite3 *db;
        cr_assert_eq(sqlite3_open_v2(t.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *s;
        cr_assert_eq(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type='table'", -1,
                                        &s, NULL),
                     SQLITE_OK);
        int tables = 0;
        while (sqlite3_step(s) == SQLITE_ROW) {
                char sql[200];
                snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"",
                         (const char *)sqlite3_column_text(s, 0));
                sqlite3_stmt *r;
                cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &r, NULL), SQLITE_OK);
                while (sqlite3_step(r) == SQLITE_ROW)
                        for (int c = 0; c < sqlite3_column_count(r); c++) {
                                if (sqlite3_column_type(r, c) != SQLITE_TEXT)
                                        continue;
                                const char *v = (const char *)sqlite3_column_text(r, c);
                                size_t digits = strspn(v, "0123456789");
                                cr_assert_lt(digits, 6, "%s: %s", sql, v);
                        }
                sqlite3_finalize(r);
                tables++;
        }
        sqlite3_finalize(s);
        sqlite3_close(db);
        cr_assert_geq(tables, 7);
        tb_close(&t);
}

Test(privacy, changed_key_refused)
{
        struct tb t;
        tb_open(&t);
        reg(&t, "k1", "197311172395", "SE1", "U1", "F32", "2024-01-01/2024-01-20/100");
        tb_flush(&t);
        stats_close(t.s);
        int fd = open(t.key, O_WRONLY | O_TRUNC);
        cr_assert_eq(write(fd, "another key another key another key!", 36), 36);
        close(fd);
        char err[256];
        t.s = stats_open(t.db, t.key, err, sizeof err);
        cr_assert_null(t.s);
        cr_assert(strstr(err, "another pseudonym key"), "%s", err);
        tb_close(&t);
}
