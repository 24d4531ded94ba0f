/*
 * stats_fixture.c - the statistics tests' shared fixture (see stats_fixture.h).
 */
#include "stats_fixture.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tb_write_key(const char *path, const char *key)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert(fd >= 0, "%s", path);
        ssize_t n = (ssize_t)strlen(key);
        cr_assert_eq(write(fd, key, (size_t)n), n);
        close(fd);
}

void tb_open(struct tb *t)
{
        snprintf(t->dir, sizeof t->dir, "/tmp/test_stats.XXXXXX");
        cr_assert_not_null(mkdtemp(t->dir));
        snprintf(t->key, sizeof t->key, "%s/key", t->dir);
        snprintf(t->db, sizeof t->db, "%s/stats.db", t->dir);
        tb_write_key(t->key, TB_KEY);
        char err[256];
        t->s = stats_open(t->db, t->key, err, sizeof err);
        cr_assert_not_null(t->s, "%s", err);
}

void tb_close(struct tb *t)
{
        stats_close(t->s);
        t->s = NULL;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
        cr_assert_eq(system(cmd), 0);
}

void tb_flush(struct tb *t)
{
        char err[256];
        cr_assert_eq(stats_flush(t->s, err, sizeof err), 0, "%s", err);
}

void tb_mk(struct intyg *in, struct intyg_tags *tg, const char *id, const char *pnr,
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

void tb_reg(struct tb *t, const char *id, const char *pnr, const char *provider, const char *unit,
            const char *dx, const char *periods)
{
        struct intyg in;
        struct intyg_tags tg;
        tb_mk(&in, &tg, id, pnr, provider, unit, NULL, "01", TAG_LEVEL, dx, periods);
        char err[256];
        cr_assert_eq(stats_record_intyg(t->s, &in, &tg, err, sizeof err), 0, "%s", err);
}

void tb_revoke(struct tb *t, const char *id, const char *on)
{
        struct intyg in;
        memset(&in, 0, sizeof in);
        in.kind = INTYG_REVOKE;
        snprintf(in.id, sizeof in.id, "%s", id);
        if (on)
                snprintf(in.sent_at, sizeof in.sent_at, "%sT08:00:00", on);
        char err[256];
        cr_assert_eq(stats_record_intyg(t->s, &in, NULL, err, sizeof err), 0, "%s", err);
}

struct stats_table *tb_run(struct tb *t, const struct stats_query *q)
{
        tb_flush(t);
        char err[256];
        struct stats_store *st = stats_report_open(t->db, err, sizeof err);
        cr_assert_not_null(st, "%s", err);
        struct stats_table *tab = NULL;
        int rc = stats_report_run(st, q, &tab, err, sizeof err);
        cr_assert_eq(rc, 0, "%s level %d: %s", q->report, (int)q->level, err);
        stats_store_close(st);
        return tab;
}

struct stats_table *tb_report(struct tb *t, const char *report, enum stats_level level,
                              const char *id, const char *from, const char *to,
                              enum stats_mode mode, enum stats_view view)
{
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
        return tb_run(t, &q);
}

const struct stats_cell *tb_cellp(const struct stats_table *t, const char *period,
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

int64_t tb_cell(const struct stats_table *t, const char *period, const char *group_id,
                const char *col)
{
        return tb_cellp(t, period, group_id, col)->n;
}
