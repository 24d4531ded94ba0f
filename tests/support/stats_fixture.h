/*
 * stats_fixture.h - the statistics tests' shared fixture: a stats store (and its pseudonym key)
 * in a temporary directory, intyg records built from short strings, report queries run
 * against the store's database, and cell look-ups in the resulting tables. Every helper fails
 * the current Criterion test on error, so it is only for test programs that link Criterion.
 */
#ifndef INTYGSGW_TEST_STATS_FIXTURE_H
#define INTYGSGW_TEST_STATS_FIXTURE_H

#include <stdint.h>

#include "stats_report.h"
#include "stats_store.h"

/* Women: second-last digit even; men: odd. Checksums are not checked for statistics. */
#define W1 "198003152380" /* born 1980-03-15, woman */
#define W2 "197501012420"
#define M1 "198506062390" /* man */
#define M2 "199002022310"

/* The 36-byte pseudonym key tb_open writes. */
#define TB_KEY "test key test key test key test key!"

/* A store in a temporary directory: dir/key (the pseudonym key) and dir/stats.db. */
struct tb {
        char dir[64], key[128], db[128];
        struct stats *s;
};

/** Write key (its strlen bytes) to path, created or truncated, mode 0600. */
void tb_write_key(const char *path, const char *key);

/** A new temporary directory with the key TB_KEY and a store opened for writing. */
void tb_open(struct tb *t);

/** Close the store and remove the directory. */
void tb_close(struct tb *t);

/** Flush what the store has recorded, so that reports read it. */
void tb_flush(struct tb *t);

/**
 * A registration of certificate id for person pnr at provider/unit (followup unit: followup,
 * or unit when NULL), in county (NULL: ""), with diagnosis dx (NULL: none), tag resolution res.
 * periods: "YYYY-MM-DD/YYYY-MM-DD/degree;...". Signed at 10:00 on the first period's start.
 */
void tb_mk(struct intyg *in, struct intyg_tags *tg, const char *id, const char *pnr,
           const char *provider, const char *unit, const char *followup, const char *county,
           enum tag_resolution res, const char *dx, const char *periods);

/** Record tb_mk(id, pnr, provider, unit, NULL, "01", TAG_LEVEL, dx, periods). */
void tb_reg(struct tb *t, const char *id, const char *pnr, const char *provider, const char *unit,
            const char *dx, const char *periods);

/** Record a revocation of id on day on ("YYYY-MM-DD"), or NULL: none given (the day it
 * arrives). */
void tb_revoke(struct tb *t, const char *id, const char *on);

/** Flush, then run q on a report store opened on t->db; the table (stats_table_free it). */
struct stats_table *tb_run(struct tb *t, const struct stats_query *q);

/** tb_run of one report, as of 2030-01-01, for id at level (id NULL: none). */
struct stats_table *tb_report(struct tb *t, const char *report, enum stats_level level,
                              const char *id, const char *from, const char *to,
                              enum stats_mode mode, enum stats_view view);

/** The cell (period, group_id, column); period "" matches any (cross-sections). */
const struct stats_cell *tb_cellp(const struct stats_table *t, const char *period,
                                  const char *group_id, const char *col);

/** tb_cellp's count. */
int64_t tb_cell(const struct stats_table *t, const char *period, const char *group_id,
                const char *col);

#endif
