/*
 * test_stats_privacy.c - no personnummer, and nothing reversible to one without the key, in
 * the statistics store: scan every byte of the database files for the number in every usual
 * form, its birth date, and unkeyed hashes of it; and show the pseudonym needs the key.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <sqlite3.h>

#include "stats_fixture.h"

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
                        tb_reg(&t, id, pnrs[i], k % 2 ? "SE1" : "SE2", "U1", "F32",
                               k < 2 ? "2024-01-01/2024-01-20/100" : "2024-01-25/2024-02-20/50");
                }
        tb_revoke(&t, "p0-1", NULL);
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
        tb_reg(&t, "k1", "197311172395", "SE1", "U1", "F32", "2024-01-01/2024-01-20/100");
        tb_flush(&t);
        stats_close(t.s);
        tb_write_key(t.key, "another key another key another key!");
        char err[256];
        t.s = stats_open(t.db, t.key, err, sizeof err);
        cr_assert_null(t.s);
        cr_assert(strstr(err, "another pseudonym key"), "%s", err);
        tb_close(&t);
}
