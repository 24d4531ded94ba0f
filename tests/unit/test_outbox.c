/*
 * test_outbox.c - the durable outbox over SQLite (gateway/outbox*.c) with a real uv loop:
 * idempotency, group commit, the state machine, leases across restarts and nodes, revoke
 * ordering, purge, dead letters, a full database, limits, and the read-only reader.
 * Every test ends with outbox_close and uv_loop_close returning 0.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "outbox.h"

#define T0 1700000000000LL /* a fixed "now" for tests that do not restart */

struct env {
        uv_loop_t loop;
        struct outbox *ob;
        char dir[64];
        char path[96];
};

static void env_init(struct env *e)
{
        memset(e, 0, sizeof *e);
        cr_assert_eq(uv_loop_init(&e->loop), 0);
        snprintf(e->dir, sizeof e->dir, "/tmp/test_outbox.XXXXXX");
        cr_assert_not_null(mkdtemp(e->dir));
        snprintf(e->path, sizeof e->path, "%s/outbox.db", e->dir);
}

static void open_as_opts(struct env *e, const char *node, const struct outbox_sqlite_opts *o)
{
        char err[256] = "";
        e->ob = outbox_sqlite_new(&e->loop, e->path, node, o, err, sizeof err);
        cr_assert_not_null(e->ob, "open: %s", err);
}

static void open_as(struct env *e, const char *node)
{
        open_as_opts(e, node, NULL);
}

static void on_closed(void *arg)
{
        *(int *)arg += 1;
}

static void close_ob(struct env *e)
{
        int closed = 0;
        outbox_close(e->ob, on_closed, &closed);
        e->ob = NULL;
        uv_run(&e->loop, UV_RUN_DEFAULT);
        cr_assert_eq(closed, 1);
}

static void env_done(struct env *e)
{
        if (e->ob)
                close_ob(e);
        cr_assert_eq(uv_loop_close(&e->loop), 0, "handles left open");
        const char *sfx[] = {"", "-wal", "-shm", "-journal"};
        char p[128];
        for (size_t i = 0; i < 4; i++) {
                snprintf(p, sizeof p, "%s%s", e->path, sfx[i]);
                unlink(p);
        }
        rmdir(e->dir);
}

static void run(struct env *e)
{
        uv_run(&e->loop, UV_RUN_DEFAULT);
}

/* ---- put ---- */

struct put_res {
        int calls;
        enum outbox_put_result r;
        char detail[OUTBOX_ERROR_MAX];
};

static void on_put(void *arg, enum outbox_put_result r, const char *detail)
{
        struct put_res *p = arg;
        p->calls++;
        p->r = r;
        snprintf(p->detail, sizeof p->detail, "%s", detail ? detail : "");
}

static void fill_item(struct outbox_item *it, enum intyg_kind kind, const char *id,
                      const char *body, int64_t received)
{
        memset(it, 0, sizeof *it);
        it->kind = kind;
        snprintf(it->id, sizeof it->id, "%s", id);
        snprintf(it->caller, sizeof it->caller, "SE2321000016-CALLER");
        snprintf(it->tags.unit_hsa, sizeof it->tags.unit_hsa, "SE2321000016-UNIT");
        snprintf(it->tags.followup_hsa, sizeof it->tags.followup_hsa, "SE2321000016-FOLLOW");
        it->tags.resolution = TAG_LEVEL;
        snprintf(it->tags.provider_hsa, sizeof it->tags.provider_hsa, "SE2321000016-PROV");
        snprintf(it->tags.county, sizeof it->tags.county, "01");
        snprintf(it->tags.municipality, sizeof it->tags.municipality, "0180");
        it->tags.unit_known = true;
        it->received_ms = received;
        it->payload = strdup(body);
        it->payload_len = strlen(body);
}

static int put_async(struct env *e, enum intyg_kind kind, const char *id, const char *body,
                     struct put_res *res)
{
        struct outbox_item it;
        fill_item(&it, kind, id, body, T0);
        int rc = outbox_put(e->ob, &it, on_put, res);
        cr_assert_null(it.payload, "put must take the payload");
        return rc;
}

static enum outbox_put_result put_sync(struct env *e, enum intyg_kind kind, const char *id,
                                       const char *body)
{
        struct put_res res = {0};
        cr_assert_eq(put_async(e, kind, id, body, &res), 0);
        run(e);
        cr_assert_eq(res.calls, 1);
        return res.r;
}

/* ---- claim, mark ---- */

struct claim_res {
        int calls;
        int status;
        struct outbox_record **recs;
        size_t n;
};

static void on_claim(void *arg, int status, struct outbox_record **recs, size_t n)
{
        struct claim_res *c = arg;
        c->calls++;
        c->status = status;
        c->recs = recs;
        c->n = n;
}

static struct claim_res claim_sync(struct env *e, int64_t now, size_t max, int64_t lease)
{
        struct claim_res c = {0};
        cr_assert_eq(outbox_claim(e->ob, now, max, lease, on_claim, &c), 0);
        run(e);
        cr_assert_eq(c.calls, 1);
        cr_assert_eq(c.status, 0, "claim: %s", outbox_strerror(c.status));
        return c;
}

struct done_res {
        int calls;
        int status;
        size_t changed;
};

static void on_done(void *arg, int status, size_t changed)
{
        struct done_res *d = arg;
        d->calls++;
        d->status = status;
        d->changed = changed;
}

static struct done_res delivered_sync(struct env *e, struct outbox_record *r, int64_t now)
{
        struct done_res d = {0};
        cr_assert_eq(outbox_mark_delivered(e->ob, r, "OK", "", now, on_done, &d), 0);
        run(e);
        cr_assert_eq(d.calls, 1);
        return d;
}

static struct done_res retry_sync(struct env *e, struct outbox_record *r, int64_t next,
                                  const char *err, int64_t now)
{
        struct done_res d = {0};
        cr_assert_eq(outbox_mark_retry(e->ob, r, next, err, now, on_done, &d), 0);
        run(e);
        cr_assert_eq(d.calls, 1);
        return d;
}

static struct done_res dead_sync(struct env *e, struct outbox_record *r, const char *why,
                                 int64_t now)
{
        struct done_res d = {0};
        cr_assert_eq(outbox_mark_dead(e->ob, r, "ERROR", why, now, on_done, &d), 0);
        run(e);
        cr_assert_eq(d.calls, 1);
        return d;
}

static struct done_res admin_sync(struct env *e, bool replay, enum intyg_kind kind,
                                  const char *const *ids, size_t n, int64_t now)
{
        struct done_res d = {0};
        int rc = replay ? outbox_replay(e->ob, kind, ids, n, "admin@region", now, on_done, &d)
                        : outbox_discard(e->ob, kind, ids, n, "admin@region", now, on_done, &d);
        cr_assert_eq(rc, 0);
        run(e);
        cr_assert_eq(d.calls, 1);
        return d;
}

/* ---- reads ---- */

struct get_res {
        int calls;
        int status;
        struct outbox_detail *d;
};

static void on_get(void *arg, int status, struct outbox_detail *d)
{
        struct get_res *g = arg;
        g->calls++;
        g->status = status;
        g->d = d;
}

static struct get_res get_sync(struct env *e, enum intyg_kind kind, const char *id)
{
        struct get_res g = {0};
        cr_assert_eq(outbox_get(e->ob, kind, id, on_get, &g), 0);
        run(e);
        cr_assert_eq(g.calls, 1);
        return g;
}

struct counts_res {
        int calls;
        int status;
        struct outbox_counts c;
};

static void on_counts(void *arg, int status, const struct outbox_counts *c)
{
        struct counts_res *r = arg;
        r->calls++;
        r->status = status;
        if (c)
                r->c = *c;
}

static struct outbox_counts counts_sync(struct env *e)
{
        struct counts_res r = {0};
        cr_assert_eq(outbox_counts(e->ob, on_counts, &r), 0);
        run(e);
        cr_assert_eq(r.calls, 1);
        cr_assert_eq(r.status, 0);
        return r.c;
}

struct list_res {
        int calls;
        int status;
        struct outbox_record **recs;
        size_t n;
        uint64_t total;
};

static void on_list(void *arg, int status, struct outbox_record **recs, size_t n, uint64_t total)
{
        struct list_res *l = arg;
        l->calls++;
        l->status = status;
        l->recs = recs;
        l->n = n;
        l->total = total;
}

static struct list_res list_sync(struct env *e, size_t offset, size_t limit)
{
        struct list_res l = {0};
        cr_assert_eq(outbox_list_dead(e->ob, offset, limit, on_list, &l), 0);
        run(e);
        cr_assert_eq(l.calls, 1);
        cr_assert_eq(l.status, 0);
        return l;
}

static const struct outbox_event *find_event(const struct outbox_detail *d, const char *ev)
{
        for (size_t i = 0; i < d->n_events; i++)
                if (strcmp(d->events[i].event, ev) == 0)
                        return &d->events[i];
        return NULL;
}

static int64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ================================================================================== */

Test(outbox, same_id_same_body_is_a_duplicate_other_body_a_conflict)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        cr_assert(outbox_healthy(e.ob));
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "cert-1", "<a>1</a>"), OB_PUT_STORED);
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "cert-1", "<a>1</a>"), OB_PUT_DUPLICATE);
        struct put_res res = {0};
        cr_assert_eq(put_async(&e, INTYG_REGISTER, "cert-1", "<a>2</a>", &res), 0);
        run(&e);
        cr_assert_eq(res.r, OB_PUT_CONFLICT);
        cr_assert_str_eq(res.detail, "certificate id already received with different content");
        /* The key is (kind, id): a revoke of cert-1 is another record. */
        cr_assert_eq(put_sync(&e, INTYG_REVOKE, "cert-1", "<r>1</r>"), OB_PUT_STORED);

        struct outbox_counts c = counts_sync(&e);
        cr_assert_eq(c.n[OB_QUEUED], 2);
        cr_assert_eq(c.queue_depth, 2);
        cr_assert_eq(c.oldest_queued_ms, T0);

        struct get_res g = get_sync(&e, INTYG_REGISTER, "cert-1");
        cr_assert_eq(g.status, 0);
        cr_assert_eq(g.d->n_records, 1);
        const struct outbox_record *r = &g.d->records[0];
        cr_assert_eq(r->state, OB_QUEUED);
        cr_assert_str_eq(r->caller, "SE2321000016-CALLER");
        cr_assert_str_eq(r->tags.followup_hsa, "SE2321000016-FOLLOW");
        cr_assert_str_eq(r->tags.municipality, "0180");
        cr_assert_eq(r->tags.resolution, TAG_LEVEL);
        cr_assert(r->tags.unit_known);
        cr_assert_eq(r->payload_len, 8);
        cr_assert_null(r->payload, "get never hands out the body");
        cr_assert_eq(r->received_ms, T0);
        cr_assert_eq(g.d->n_events, 3);
        cr_assert_str_eq(g.d->events[0].event, "received");
        cr_assert_str_eq(g.d->events[1].event, "duplicate");
        cr_assert_str_eq(g.d->events[2].event, "conflict");
        cr_assert_str_eq(g.d->events[2].actor, "SE2321000016-CALLER");
        outbox_detail_free(g.d);

        g = get_sync(&e, 0, "cert-1"); /* both kinds */
        cr_assert_eq(g.d->n_records, 2);
        cr_assert_eq(g.d->records[0].kind, INTYG_REGISTER);
        cr_assert_eq(g.d->records[1].kind, INTYG_REVOKE);
        cr_assert_eq(g.d->n_events, 4);
        outbox_detail_free(g.d);

        g = get_sync(&e, 0, "no-such-cert");
        cr_assert_eq(g.status, OUTBOX_ENOENT);
        cr_assert_null(g.d);

        struct outbox_stats st;
        outbox_stats_get(e.ob, &st);
        cr_assert_eq(st.puts, 4);
        cr_assert_eq(st.stored, 2);
        cr_assert_eq(st.duplicates, 1);
        cr_assert_eq(st.conflicts, 1);
        env_done(&e);
}

Test(outbox, a_burst_of_puts_shares_commits)
{
        enum { N = 300 };
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        static struct put_res res[N];
        memset(res, 0, sizeof res);
        char id[32], body[64];
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof id, "burst-%d", i);
                snprintf(body, sizeof body, "<intyg>%d</intyg>", i);
                cr_assert_eq(put_async(&e, INTYG_REGISTER, id, body, &res[i]), 0);
        }
        run(&e);
        for (int i = 0; i < N; i++) {
                cr_assert_eq(res[i].calls, 1);
                cr_assert_eq(res[i].r, OB_PUT_STORED);
        }
        struct outbox_stats st;
        outbox_stats_get(e.ob, &st);
        cr_assert_eq(st.puts, N);
        cr_assert_eq(st.stored, N);
        cr_assert_lt(st.commits, (uint64_t)N, "commits %llu", (unsigned long long)st.commits);
        cr_assert_gt(st.max_batch, 1);
        cr_assert_eq(counts_sync(&e).n[OB_QUEUED], N);
        env_done(&e);
}

Test(outbox, batch_max_bounds_a_transaction)
{
        enum { N = 100 };
        struct env e;
        env_init(&e);
        struct outbox_sqlite_opts o = {.common = {.batch_max = 8}};
        open_as_opts(&e, "node-a", &o);
        static struct put_res res[N];
        memset(res, 0, sizeof res);
        char id[32];
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof id, "b-%d", i);
                cr_assert_eq(put_async(&e, INTYG_REGISTER, id, "<x/>", &res[i]), 0);
        }
        run(&e);
        struct outbox_stats st;
        outbox_stats_get(e.ob, &st);
        cr_assert_eq(st.stored, N);
        cr_assert_leq(st.max_batch, 8);
        cr_assert_geq(st.commits, N / 8);
        env_done(&e);
}

Test(outbox, queued_inflight_retry_delivered)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "c1", "<body>c1</body>"), OB_PUT_STORED);

        struct claim_res c = claim_sync(&e, T0, 10, 30000);
        cr_assert_eq(c.n, 1);
        struct outbox_record *r = c.recs[0];
        cr_assert_str_eq(r->id, "c1");
        cr_assert_eq(r->state, OB_INFLIGHT);
        cr_assert_eq(r->attempts, 1);
        cr_assert_eq(r->first_attempt_ms, T0);
        cr_assert_str_eq(r->lease_owner, "node-a");
        cr_assert_eq(r->lease_until_ms, T0 + 30000);
        cr_assert_eq(r->payload_len, 15);
        cr_assert_eq(memcmp(r->payload, "<body>c1</body>", 15), 0);
        free(c.recs);

        struct claim_res none = claim_sync(&e, T0 + 1, 10, 30000); /* leased */
        cr_assert_eq(none.n, 0);
        free(none.recs);
        struct outbox_counts cnt = counts_sync(&e);
        cr_assert_eq(cnt.n[OB_INFLIGHT], 1);
        cr_assert_eq(cnt.queue_depth, 1);

        struct done_res d = retry_sync(&e, r, T0 + 5000, "timeout after 30000 ms", T0 + 100);
        cr_assert_eq(d.status, 0);
        cr_assert_eq(d.changed, 1);
        none = claim_sync(&e, T0 + 4999, 10, 30000);
        cr_assert_eq(none.n, 0);
        free(none.recs);
        c = claim_sync(&e, T0 + 5000, 10, 30000);
        cr_assert_eq(c.n, 1);
        r = c.recs[0];
        free(c.recs);
        cr_assert_eq(r->attempts, 2);
        cr_assert_eq(r->first_attempt_ms, T0, "the horizon counts from the first attempt");
        cr_assert_str_eq(r->last_error, "timeout after 30000 ms");
        d = delivered_sync(&e, r, T0 + 6000);
        cr_assert_eq(d.status, 0);
        cr_assert_eq(d.changed, 1);

        struct get_res g = get_sync(&e, INTYG_REGISTER, "c1");
        cr_assert_eq(g.d->records[0].state, OB_DELIVERED);
        cr_assert_eq(g.d->records[0].delivered_ms, T0 + 6000);
        cr_assert_str_eq(g.d->records[0].fk_result, "OK");
        cr_assert(g.d->records[0].has_payload);
        cr_assert_eq(g.d->n_events, 3);
        cr_assert_str_eq(g.d->events[1].event, "attempt_failed");
        cr_assert_str_eq(g.d->events[1].detail, "timeout after 30000 ms");
        cr_assert_eq(g.d->events[1].at_ms, T0 + 100);
        cr_assert_str_eq(g.d->events[2].event, "delivered");
        cr_assert_str_eq(g.d->events[2].actor, "node-a");
        outbox_detail_free(g.d);
        cnt = counts_sync(&e);
        cr_assert_eq(cnt.n[OB_DELIVERED], 1);
        cr_assert_eq(cnt.queue_depth, 0);
        cr_assert_eq(cnt.oldest_queued_ms, 0);
        none = claim_sync(&e, T0 + 999999, 10, 30000);
        cr_assert_eq(none.n, 0);
        free(none.recs);
        env_done(&e);
}

Test(outbox, dead_letters_listed_replayed_and_discarded)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        const char *ids[] = {"d1", "d2", "d3"};
        for (int i = 0; i < 3; i++)
                cr_assert_eq(put_sync(&e, INTYG_REGISTER, ids[i], "<x>dead</x>"), OB_PUT_STORED);
        struct claim_res c = claim_sync(&e, T0, 10, 30000);
        cr_assert_eq(c.n, 3);
        for (size_t i = 0; i < c.n; i++)
                cr_assert_eq(
                    dead_sync(&e, c.recs[i], "FK refused: VALIDATION_ERROR", T0 + 10 + i).changed,
                    1);
        free(c.recs);

        struct list_res l = list_sync(&e, 0, 2);
        cr_assert_eq(l.total, 3);
        cr_assert_eq(l.n, 2);
        cr_assert_str_eq(l.recs[0]->id, "d3"); /* newest first */
        cr_assert_str_eq(l.recs[1]->id, "d2");
        cr_assert_eq(l.recs[0]->state, OB_DEAD);
        cr_assert_str_eq(l.recs[0]->last_error, "FK refused: VALIDATION_ERROR");
        cr_assert_str_eq(l.recs[0]->fk_result, "ERROR");
        cr_assert_null(l.recs[0]->payload);
        outbox_records_free(l.recs, l.n);
        l = list_sync(&e, 2, 2);
        cr_assert_eq(l.n, 1);
        cr_assert_str_eq(l.recs[0]->id, "d1");
        outbox_records_free(l.recs, l.n);
        l = list_sync(&e, 3, 2);
        cr_assert_eq(l.n, 0);
        outbox_records_free(l.recs, l.n);

        const char *one[] = {"d1"};
        struct done_res d = admin_sync(&e, true, 0, one, 1, T0 + 1000);
        cr_assert_eq(d.status, 0);
        cr_assert_eq(d.changed, 1);
        d = admin_sync(&e, true, 0, one, 1, T0 + 1000); /* not dead any more */
        cr_assert_eq(d.changed, 0);
        struct get_res g = get_sync(&e, 0, "d1");
        cr_assert_eq(g.d->records[0].state, OB_QUEUED);
        cr_assert_eq(g.d->records[0].attempts, 0);
        cr_assert_eq(g.d->records[0].first_attempt_ms, 0);
        cr_assert_eq(g.d->records[0].next_attempt_ms, T0 + 1000);
        const struct outbox_event *ev = find_event(g.d, "replayed");
        cr_assert_not_null(ev);
        cr_assert_str_eq(ev->actor, "admin@region");
        cr_assert_not_null(find_event(g.d, "dead"));
        outbox_detail_free(g.d);
        c = claim_sync(&e, T0 + 1000, 10, 30000);
        cr_assert_eq(c.n, 1);
        cr_assert_str_eq(c.recs[0]->id, "d1");
        cr_assert_eq(c.recs[0]->attempts, 1);
        cr_assert_eq(c.recs[0]->first_attempt_ms, T0 + 1000, "a replay starts a new horizon");
        cr_assert_str_eq(c.recs[0]->payload, "<x>dead</x>");
        cr_assert_eq(delivered_sync(&e, c.recs[0], T0 + 1001).changed, 1);
        free(c.recs);

        const char *two[] = {"d2"};
        d = admin_sync(&e, false, INTYG_REVOKE, two, 1, T0 + 2000); /* wrong kind */
        cr_assert_eq(d.changed, 0);
        d = admin_sync(&e, false, INTYG_REGISTER, two, 1, T0 + 2000);
        cr_assert_eq(d.changed, 1);
        g = get_sync(&e, 0, "d2");
        cr_assert_eq(g.d->records[0].state, OB_DISCARDED);
        cr_assert_not(g.d->records[0].has_payload);
        cr_assert_eq(g.d->records[0].payload_len, 11);
        cr_assert_not_null(find_event(g.d, "discarded"));
        outbox_detail_free(g.d);
        d = admin_sync(&e, true, 0, two, 1, T0 + 3000); /* discarded is final */
        cr_assert_eq(d.changed, 0);

        /* No ids: every dead letter (d3 only now). */
        d = admin_sync(&e, true, 0, NULL, 0, T0 + 4000);
        cr_assert_eq(d.changed, 1);
        struct outbox_counts cnt = counts_sync(&e);
        cr_assert_eq(cnt.n[OB_DEAD], 0);
        cr_assert_eq(cnt.n[OB_DISCARDED], 1);
        cr_assert_eq(cnt.n[OB_DELIVERED], 1);
        cr_assert_eq(cnt.n[OB_QUEUED], 1);
        env_done(&e);
}

Test(outbox, an_expired_lease_is_resumed_by_another_node)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "lease-1", "<x/>"), OB_PUT_STORED);
        struct claim_res c = claim_sync(&e, T0, 10, 60000);
        cr_assert_eq(c.n, 1);
        outbox_records_free(c.recs, c.n); /* node-a "crashes" holding the lease */
        close_ob(&e);

        open_as(&e, "node-b");
        c = claim_sync(&e, T0 + 59999, 10, 60000);
        cr_assert_eq(c.n, 0, "node-a's lease still runs");
        free(c.recs);
        c = claim_sync(&e, T0 + 60000, 10, 60000);
        cr_assert_eq(c.n, 1);
        struct outbox_record *r = c.recs[0];
        free(c.recs);
        cr_assert_str_eq(r->lease_owner, "node-b");
        cr_assert_eq(r->attempts, 2);
        cr_assert_eq(r->first_attempt_ms, T0);
        cr_assert_str_eq(r->payload, "<x/>");

        /* node-b's own lease expires and it claims again: the old claim is stale. */
        c = claim_sync(&e, T0 + 200000, 10, 60000);
        cr_assert_eq(c.n, 1);
        struct outbox_record *again = c.recs[0];
        free(c.recs);
        cr_assert_eq(again->lease_gen, r->lease_gen + 1);
        struct done_res d = retry_sync(&e, r, T0 + 300000, "late", T0 + 200001);
        cr_assert_eq(d.status, OUTBOX_ESTALE);
        cr_assert_eq(d.changed, 0);
        d = retry_sync(&e, again, T0 + 300000, "503", T0 + 200002);
        cr_assert_eq(d.status, 0);
        cr_assert_eq(d.changed, 1);

        struct get_res g = get_sync(&e, 0, "lease-1");
        const struct outbox_event *ev = find_event(g.d, "resumed");
        cr_assert_not_null(ev);
        cr_assert_str_eq(ev->detail, "lease of node-a expired");
        cr_assert_str_eq(ev->actor, "node-b");
        outbox_detail_free(g.d);
        env_done(&e);
}

Test(outbox, a_late_delivery_wins_over_a_stale_dead_mark)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "late", "<x/>"), OB_PUT_STORED);
        struct claim_res c = claim_sync(&e, T0, 1, 1000);
        struct outbox_record *slow = c.recs[0]; /* its transfer hangs past the lease */
        free(c.recs);
        c = claim_sync(&e, T0 + 1000, 1, 1000);
        cr_assert_eq(c.n, 1);
        cr_assert_eq(dead_sync(&e, c.recs[0], "refused", T0 + 1001).changed, 1);
        free(c.recs);
        struct done_res d = delivered_sync(&e, slow, T0 + 1002); /* FK did take it */
        cr_assert_eq(d.status, 0);
        cr_assert_eq(d.changed, 1);
        struct get_res g = get_sync(&e, 0, "late");
        cr_assert_eq(g.d->records[0].state, OB_DELIVERED);
        outbox_detail_free(g.d);
        cr_assert_eq(counts_sync(&e).n[OB_DEAD], 0);
        env_done(&e);
}

Test(outbox, a_restarted_node_takes_back_its_own_inflight_at_once)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        int64_t now = wall_ms();
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "crash-1", "<x>crash</x>"), OB_PUT_STORED);
        struct claim_res c = claim_sync(&e, now, 10, 3600 * 1000);
        cr_assert_eq(c.n, 1);
        outbox_records_free(c.recs, c.n); /* no mark: the process dies */
        close_ob(&e);

        open_as(&e, "node-a");
        c = claim_sync(&e, wall_ms() + 1000, 10, 30000); /* long before the hour-long lease */
        cr_assert_eq(c.n, 1);
        cr_assert_str_eq(c.recs[0]->id, "crash-1");
        cr_assert_eq(c.recs[0]->attempts, 2);
        cr_assert_str_eq(c.recs[0]->payload, "<x>crash</x>");
        cr_assert_eq(delivered_sync(&e, c.recs[0], wall_ms()).changed, 1);
        free(c.recs);
        struct get_res g = get_sync(&e, 0, "crash-1");
        const struct outbox_event *ev = find_event(g.d, "resumed");
        cr_assert_not_null(ev);
        cr_assert_str_eq(ev->detail, "node restarted");
        outbox_detail_free(g.d);
        env_done(&e);
}

Test(outbox, a_revoke_waits_for_its_register)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        cr_assert_eq(put_sync(&e, INTYG_REVOKE, "x1", "<revoke>x1</revoke>"), OB_PUT_STORED);
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "x1", "<reg>x1</reg>"), OB_PUT_STORED);
        cr_assert_eq(put_sync(&e, INTYG_REVOKE, "lonely", "<revoke/>"), OB_PUT_STORED);

        struct claim_res c = claim_sync(&e, T0, 10, 30000);
        cr_assert_eq(c.n, 2);
        struct outbox_record *reg = NULL;
        for (size_t i = 0; i < c.n; i++) {
                if (strcmp(c.recs[i]->id, "x1") == 0) {
                        cr_assert_eq(c.recs[i]->kind, INTYG_REGISTER);
                        reg = c.recs[i];
                } else {
                        cr_assert_str_eq(c.recs[i]->id, "lonely"); /* no register in the outbox */
                        cr_assert_eq(delivered_sync(&e, c.recs[i], T0).changed, 1);
                }
        }
        free(c.recs);
        cr_assert_not_null(reg);

        /* Register failed and waits: its revoke still waits. */
        cr_assert_eq(retry_sync(&e, reg, T0 + 1000, "503", T0).changed, 1);
        c = claim_sync(&e, T0 + 500, 10, 30000);
        cr_assert_eq(c.n, 0);
        free(c.recs);
        c = claim_sync(&e, T0 + 1000, 10, 30000);
        cr_assert_eq(c.n, 1);
        cr_assert_eq(c.recs[0]->kind, INTYG_REGISTER);
        /* Dead register: the revoke must still wait (an administrator decides). */
        cr_assert_eq(dead_sync(&e, c.recs[0], "FK refused", T0 + 1001).changed, 1);
        free(c.recs);
        c = claim_sync(&e, T0 + 2000, 10, 30000);
        cr_assert_eq(c.n, 0);
        free(c.recs);
        const char *ids[] = {"x1"};
        cr_assert_eq(admin_sync(&e, true, INTYG_REGISTER, ids, 1, T0 + 3000).changed, 1);
        c = claim_sync(&e, T0 + 3000, 10, 30000);
        cr_assert_eq(c.n, 1);
        cr_assert_eq(c.recs[0]->kind, INTYG_REGISTER);
        cr_assert_eq(delivered_sync(&e, c.recs[0], T0 + 3001).changed, 1);
        free(c.recs);
        /* Delivered register: now the revoke goes. */
        c = claim_sync(&e, T0 + 3002, 10, 30000);
        cr_assert_eq(c.n, 1);
        cr_assert_eq(c.recs[0]->kind, INTYG_REVOKE);
        cr_assert_str_eq(c.recs[0]->payload, "<revoke>x1</revoke>");
        outbox_records_free(c.recs, c.n);
        env_done(&e);
}

Test(outbox, purge_drops_old_bodies_and_keeps_metadata)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "old", "<old/>"), OB_PUT_STORED);
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "new", "<new/>"), OB_PUT_STORED);
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "queued", "<q/>"), OB_PUT_STORED);
        struct claim_res c = claim_sync(&e, T0, 2, 30000);
        cr_assert_eq(c.n, 2);
        for (size_t i = 0; i < 2; i++)
                delivered_sync(&e, c.recs[i],
                               strcmp(c.recs[i]->id, "old") == 0 ? T0 + 1000 : T0 + 5000);
        free(c.recs);

        struct done_res d = {0};
        cr_assert_eq(outbox_purge(e.ob, T0 + 3000, on_done, &d), 0);
        run(&e);
        cr_assert_eq(d.status, 0);
        cr_assert_eq(d.changed, 1);
        struct get_res g = get_sync(&e, 0, "old");
        cr_assert_eq(g.d->records[0].state, OB_DELIVERED);
        cr_assert_not(g.d->records[0].has_payload);
        cr_assert_eq(g.d->records[0].payload_len, 6);
        cr_assert_str_eq(g.d->records[0].tags.unit_hsa, "SE2321000016-UNIT");
        cr_assert_eq(g.d->records[0].delivered_ms, T0 + 1000);
        cr_assert_eq(g.d->n_events, 2);
        outbox_detail_free(g.d);
        g = get_sync(&e, 0, "new");
        cr_assert(g.d->records[0].has_payload);
        outbox_detail_free(g.d);

        memset(&d, 0, sizeof d);
        cr_assert_eq(outbox_purge(e.ob, T0 + 100000, on_done, &d), 0);
        run(&e);
        cr_assert_eq(d.changed, 1); /* "new"; the queued one is never purged */
        g = get_sync(&e, 0, "queued");
        cr_assert(g.d->records[0].has_payload);
        outbox_detail_free(g.d);
        env_done(&e);
}

Test(outbox, an_unwritable_path_is_refused_with_a_message)
{
        uv_loop_t loop;
        cr_assert_eq(uv_loop_init(&loop), 0);
        char err[256] = "";
        struct outbox *ob =
            outbox_sqlite_new(&loop, "/proc/intygsgw-no/outbox.db", "n", NULL, err, sizeof err);
        cr_assert_null(ob);
        cr_assert(strstr(err, "cannot open") != NULL, "err: %s", err);
        ob = outbox_sqlite_new(&loop, "/tmp/x.db", "", NULL, err, sizeof err);
        cr_assert_null(ob);
        cr_assert(strstr(err, "node id") != NULL, "err: %s", err);
        /* Not a database. */
        char path[] = "/tmp/test_outbox_notdb.XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd,
                           "this is not SQLite, just text that is long enough........"
                           "................................................",
                           104),
                     104);
        close(fd);
        ob = outbox_sqlite_new(&loop, path, "n", NULL, err, sizeof err);
        cr_assert_null(ob);
        cr_assert(strstr(err, path) != NULL, "err: %s", err);
        unlink(path);
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert_eq(uv_loop_close(&loop), 0);
}

/* Another writer of the same file (as another process would) takes or frees space. */
static void sql_on(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        char *msg = NULL;
        cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "");
        cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

Test(outbox, a_full_database_fails_puts_whole_and_recovers)
{
        enum { N = 40 };
        struct env e;
        env_init(&e);
        /* The cap stands for the disk: 512 kB, of which a filler table takes 400 kB. */
        struct outbox_sqlite_opts o = {.max_db_bytes = 512 * 1024};
        open_as_opts(&e, "node-a", &o);
        sql_on(e.path, "CREATE TABLE filler(b BLOB); INSERT INTO filler VALUES(zeroblob(400000))");
        size_t blen = 16 * 1024;
        char *body = malloc(blen + 1);
        static struct put_res res[N];
        memset(res, 0, sizeof res);
        char id[32];
        for (int i = 0; i < N; i++) {
                memset(body, 'a' + i % 26, blen);
                body[blen] = '\0';
                snprintf(id, sizeof id, "full-%d", i);
                cr_assert_eq(put_async(&e, INTYG_REGISTER, id, body, &res[i]), 0);
                if (i % 4 == 3)
                        run(&e); /* several batches: the first ones fit, the later cannot */
        }
        run(&e);
        free(body);
        int stored = 0, errors = 0;
        for (int i = 0; i < N; i++) {
                cr_assert_eq(res[i].calls, 1);
                if (res[i].r == OB_PUT_STORED) {
                        stored++;
                } else {
                        cr_assert_eq(res[i].r, OB_PUT_ERROR);
                        cr_assert(strstr(res[i].detail, "outbox database error") != NULL,
                                  "detail: %s", res[i].detail);
                        cr_assert(strstr(res[i].detail, "full") != NULL, "detail: %s",
                                  res[i].detail);
                        errors++;
                }
        }
        cr_assert_gt(stored, 0);
        cr_assert_gt(errors, 0);
        cr_assert_not(outbox_healthy(e.ob));
        struct outbox_stats st;
        outbox_stats_get(e.ob, &st);
        cr_assert_gt(st.rollbacks, 0);
        cr_assert_eq(st.put_errors, (uint64_t)errors);
        /* Nothing half-written: exactly the STORED ones exist. */
        cr_assert_eq(counts_sync(&e).n[OB_QUEUED], (uint64_t)stored);
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof id, "full-%d", i);
                struct get_res g = get_sync(&e, INTYG_REGISTER, id);
                cr_assert_eq(g.status, res[i].r == OB_PUT_STORED ? 0 : OUTBOX_ENOENT, "%s", id);
                outbox_detail_free(g.d);
        }
        cr_assert_not(outbox_healthy(e.ob), "reads do not make it healthy");
        /* Space comes back: the next write commits and health returns. */
        sql_on(e.path, "DROP TABLE filler");
        cr_assert_not(outbox_healthy(e.ob));
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "after-full", "<x/>"), OB_PUT_STORED);
        cr_assert(outbox_healthy(e.ob));
        struct claim_res c = claim_sync(&e, T0, OUTBOX_CLAIM_MAX, 30000);
        cr_assert_eq(c.n, (size_t)stored + 1);
        outbox_records_free(c.recs, c.n);
        env_done(&e);
}

static void on_put_count(void *arg, enum outbox_put_result r, const char *detail)
{
        (void)detail;
        if (r == OB_PUT_STORED)
                *(int *)arg += 1;
}

Test(outbox, limits_on_both_sides)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        struct claim_res c = {0};
        cr_assert_eq(outbox_claim(e.ob, T0, 0, 1000, on_claim, &c), OUTBOX_EINVAL);
        cr_assert_eq(outbox_claim(e.ob, T0, OUTBOX_CLAIM_MAX + 1, 1000, on_claim, &c),
                     OUTBOX_EINVAL);
        cr_assert_eq(outbox_claim(e.ob, T0, 1, 0, on_claim, &c), OUTBOX_EINVAL);
        c = claim_sync(&e, T0, OUTBOX_CLAIM_MAX, 1000);
        cr_assert_eq(c.n, 0);
        free(c.recs);

        struct list_res l = {0};
        cr_assert_eq(outbox_list_dead(e.ob, 0, OUTBOX_LIST_MAX + 1, on_list, &l), OUTBOX_EINVAL);
        cr_assert_eq(outbox_list_dead(e.ob, 0, 0, on_list, &l), OUTBOX_EINVAL);
        l = list_sync(&e, 0, OUTBOX_LIST_MAX);
        cr_assert_eq(l.n, 0);
        cr_assert_eq(l.total, 0);
        free(l.recs);

        char id[INTYG_ID_MAX + 2];
        memset(id, 'i', sizeof id);
        id[INTYG_ID_MAX] = '\0';
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, id, "<x/>"), OB_PUT_STORED);
        struct outbox_item it;
        fill_item(&it, INTYG_REGISTER, "", "<x/>", T0);
        memcpy(it.id, id, INTYG_ID_MAX);
        it.id[INTYG_ID_MAX] = 'i'; /* one too long: not terminated in the array */
        struct put_res pr = {0};
        cr_assert_eq(outbox_put(e.ob, &it, on_put, &pr), OUTBOX_EINVAL);
        cr_assert_null(it.payload);
        fill_item(&it, INTYG_REGISTER, "", "<x/>", T0);
        cr_assert_eq(outbox_put(e.ob, &it, on_put, &pr), OUTBOX_EINVAL); /* empty id */
        fill_item(&it, 7, "k", "<x/>", T0);
        cr_assert_eq(outbox_put(e.ob, &it, on_put, &pr), OUTBOX_EINVAL); /* bad kind */
        fill_item(&it, INTYG_REGISTER, "k", "<x/>", T0);
        it.payload_len = 0;
        cr_assert_eq(outbox_put(e.ob, &it, on_put, &pr), OUTBOX_EINVAL);
        fill_item(&it, INTYG_REGISTER, "k", "<x/>", T0);
        it.payload_len = (size_t)OUTBOX_PAYLOAD_MAX + 1; /* refused before the body is read */
        cr_assert_eq(outbox_put(e.ob, &it, on_put, &pr), OUTBOX_EINVAL);
        cr_assert_eq(pr.calls, 0);

        const char *ids[OUTBOX_IDS_MAX + 1];
        for (size_t i = 0; i <= OUTBOX_IDS_MAX; i++)
                ids[i] = "some-id";
        struct done_res d = {0};
        cr_assert_eq(outbox_replay(e.ob, 0, ids, OUTBOX_IDS_MAX + 1, "adm", T0, on_done, &d),
                     OUTBOX_EINVAL);
        d = admin_sync(&e, true, 0, ids, OUTBOX_IDS_MAX, T0);
        cr_assert_eq(d.changed, 0);
        cr_assert_eq(outbox_replay(e.ob, 0, ids, 1, "", T0, on_done, &d), OUTBOX_EINVAL);
        cr_assert_eq(outbox_discard(e.ob, 9, ids, 1, "adm", T0, on_done, &d), OUTBOX_EINVAL);
        cr_assert_eq(d.calls, 1);
        env_done(&e);
}

static void full_queue(bool by_bytes)
{
        enum { N = 2000 };
        struct env e;
        env_init(&e);
        /* By count: one request may wait. By bytes: two 4-byte bodies may wait. */
        struct outbox_sqlite_opts o = {
            .common = {.max_pending = by_bytes ? 10000 : 1, .max_pending_bytes = by_bytes ? 8 : 0}};
        open_as_opts(&e, "node-a", &o);
        int stored = 0, accepted = 0, busy = 0;
        char id[32];
        for (int i = 0; i < N; i++) {
                struct outbox_item it;
                snprintf(id, sizeof id, "q-%d", i);
                fill_item(&it, INTYG_REGISTER, id, "<x/>", T0);
                int rc = outbox_put(e.ob, &it, on_put_count, &stored);
                cr_assert(rc == 0 || rc == OUTBOX_EBUSY, "rc %d", rc);
                accepted += rc == 0;
                busy += rc == OUTBOX_EBUSY;
        }
        run(&e);
        cr_assert_gt(busy, 0, "a writer busy with a commit cannot take 2000 puts one by one");
        cr_assert_eq(stored, accepted);
        cr_assert_eq(counts_sync(&e).n[OB_QUEUED], (uint64_t)accepted);

        /* Submitted before close: completes. After close: refused. */
        struct put_res before = {0};
        cr_assert_eq(put_async(&e, INTYG_REGISTER, "before-close", "<x/>", &before), 0);
        int closed = 0;
        struct outbox *ob = e.ob;
        outbox_close(ob, on_closed, &closed);
        struct put_res after = {0};
        struct outbox_item it;
        fill_item(&it, INTYG_REGISTER, "after-close", "<x/>", T0);
        cr_assert_eq(outbox_put(ob, &it, on_put, &after), OUTBOX_ECLOSED);
        e.ob = NULL;
        run(&e);
        cr_assert_eq(closed, 1);
        cr_assert_eq(before.calls, 1);
        cr_assert_eq(before.r, OB_PUT_STORED);
        cr_assert_eq(after.calls, 0);
        env_done(&e);
}

Test(outbox, a_full_queue_refuses_at_once_and_close_refuses_after)
{
        full_queue(false);
}

Test(outbox, too_many_waiting_body_bytes_refuse_at_once)
{
        full_queue(true);
}

Test(outbox, two_nodes_on_one_database_never_claim_the_same_record)
{
        enum { N = 40 };
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        struct outbox *a = e.ob;
        char err[256];
        struct outbox *b = outbox_sqlite_new(&e.loop, e.path, "node-b", NULL, err, sizeof err);
        cr_assert_not_null(b, "%s", err);
        char id[32];
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof id, "n-%d", i);
                cr_assert_eq(put_sync(&e, INTYG_REGISTER, id, "<x/>"), OB_PUT_STORED);
        }
        struct claim_res ca = {0}, cb = {0};
        for (int round = 0; round < 2; round++) {
                cr_assert_eq(outbox_claim(a, T0, 15, 60000, on_claim, &ca), 0);
                cr_assert_eq(outbox_claim(b, T0, 15, 60000, on_claim, &cb), 0);
                run(&e);
                cr_assert_eq(ca.status, 0);
                cr_assert_eq(cb.status, 0);
                if (round == 0) { /* 40 due: each gets its 15 */
                        cr_assert_eq(ca.n, 15);
                        cr_assert_eq(cb.n, 15);
                } else { /* 10 left: split between them in whatever order they ran */
                        cr_assert_eq(ca.n + cb.n, 10, "a %zu b %zu", ca.n, cb.n);
                }
                for (size_t i = 0; i < ca.n; i++)
                        for (size_t j = 0; j < cb.n; j++)
                                cr_assert_str_neq(ca.recs[i]->id, cb.recs[j]->id);
                for (size_t i = 0; i < cb.n; i++)
                        cr_assert_str_eq(cb.recs[i]->lease_owner, "node-b");
                outbox_records_free(ca.recs, ca.n);
                outbox_records_free(cb.recs, cb.n);
        }
        int closed = 0;
        outbox_close(b, on_closed, &closed);
        run(&e);
        cr_assert_eq(closed, 1);
        struct outbox_counts cnt = counts_sync(&e);
        cr_assert_eq(cnt.n[OB_INFLIGHT], N);
        env_done(&e);
}

Test(outbox, the_reader_sees_what_the_writer_committed)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "r1", "<x>1</x>"), OB_PUT_STORED);
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "r2", "<x>2</x>"), OB_PUT_STORED);
        struct claim_res c = claim_sync(&e, T0, 1, 30000);
        cr_assert_eq(dead_sync(&e, c.recs[0], "refused", T0 + 1).changed, 1);
        free(c.recs);

        char err[256] = "";
        struct outbox_reader *r = outbox_reader_open(e.path, err, sizeof err);
        cr_assert_not_null(r, "%s", err);
        struct outbox_counts cnt;
        cr_assert_eq(outbox_reader_counts(r, &cnt, err, sizeof err), 0);
        cr_assert_eq(cnt.n[OB_DEAD], 1);
        cr_assert_eq(cnt.n[OB_QUEUED], 1);
        struct outbox_record **recs;
        size_t n;
        uint64_t total;
        cr_assert_eq(outbox_reader_list_dead(r, 0, 10, &recs, &n, &total, err, sizeof err), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(total, 1);
        cr_assert_str_eq(recs[0]->id, "r1");
        outbox_records_free(recs, n);
        cr_assert_eq(
            outbox_reader_list_dead(r, 0, OUTBOX_LIST_MAX + 1, &recs, &n, &total, err, sizeof err),
            OUTBOX_EINVAL);
        struct outbox_detail *d;
        cr_assert_eq(outbox_reader_get(r, 0, "r1", &d, err, sizeof err), 0);
        cr_assert_eq(d->records[0].state, OB_DEAD);
        cr_assert_str_eq(d->events[d->n_events - 1].event, "dead");
        outbox_detail_free(d);
        cr_assert_eq(outbox_reader_get(r, 0, "none", &d, err, sizeof err), OUTBOX_ENOENT);
        outbox_reader_close(r);

        cr_assert_null(outbox_reader_open("/proc/none/outbox.db", err, sizeof err));
        cr_assert(strstr(err, "cannot open") != NULL, "%s", err);
        env_done(&e);
}

Test(outbox, node_id_and_actor_lengths)
{
        struct env e;
        env_init(&e);
        char node[OUTBOX_NODE_MAX + 2];
        memset(node, 'n', sizeof node);
        node[OUTBOX_NODE_MAX + 1] = '\0';
        char err[256] = "";
        cr_assert_null(outbox_sqlite_new(&e.loop, e.path, node, NULL, err, sizeof err));
        cr_assert(strstr(err, "node id") != NULL, "%s", err);
        node[OUTBOX_NODE_MAX] = '\0';
        open_as(&e, node);
        cr_assert_str_eq(outbox_node_id(e.ob), node);

        char actor[OUTBOX_ACTOR_MAX + 2];
        memset(actor, 'a', sizeof actor);
        actor[OUTBOX_ACTOR_MAX + 1] = '\0';
        const char *ids[] = {"x"};
        struct done_res d = {0};
        cr_assert_eq(outbox_replay(e.ob, 0, ids, 1, actor, T0, on_done, &d), OUTBOX_EINVAL);
        actor[OUTBOX_ACTOR_MAX] = '\0';
        cr_assert_eq(outbox_replay(e.ob, 0, ids, 1, actor, T0, on_done, &d), 0);
        run(&e);
        cr_assert_eq(d.calls, 1);
        cr_assert_eq(d.status, 0);
        env_done(&e);
}

static void many_events(int n_events)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        static struct put_res res[OUTBOX_EVENTS_MAX + 1];
        memset(res, 0, sizeof res);
        for (int i = 0; i < n_events; i++) /* 1 received + (n - 1) duplicates */
                cr_assert_eq(put_async(&e, INTYG_REGISTER, "chatty", "<x/>", &res[i]), 0);
        run(&e);
        cr_assert_eq(res[0].r, OB_PUT_STORED);
        cr_assert_eq(res[n_events - 1].r, OB_PUT_DUPLICATE);
        struct get_res g = get_sync(&e, 0, "chatty");
        size_t want = n_events > OUTBOX_EVENTS_MAX ? OUTBOX_EVENTS_MAX : (size_t)n_events;
        cr_assert_eq(g.d->n_events, want);
        cr_assert_eq(g.d->events_dropped, (size_t)n_events - want);
        /* The newest are kept, oldest first: "received" only fits when nothing was dropped. */
        cr_assert_str_eq(g.d->events[0].event,
                         n_events > OUTBOX_EVENTS_MAX ? "duplicate" : "received");
        outbox_detail_free(g.d);
        env_done(&e);
}

Test(outbox, get_returns_at_most_the_newest_events_max)
{
        many_events(OUTBOX_EVENTS_MAX);
        many_events(OUTBOX_EVENTS_MAX + 1);
}

Test(outbox, the_largest_payload_is_stored_whole)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        struct outbox_item it;
        fill_item(&it, INTYG_REGISTER, "big", "", T0);
        free(it.payload);
        it.payload = malloc(OUTBOX_PAYLOAD_MAX);
        cr_assert_not_null(it.payload);
        memset(it.payload, 'b', OUTBOX_PAYLOAD_MAX);
        it.payload[OUTBOX_PAYLOAD_MAX - 1] = 'e';
        it.payload_len = OUTBOX_PAYLOAD_MAX;
        struct put_res res = {0};
        cr_assert_eq(outbox_put(e.ob, &it, on_put, &res), 0);
        run(&e);
        cr_assert_eq(res.r, OB_PUT_STORED);
        struct claim_res c = claim_sync(&e, T0, 1, 1000);
        cr_assert_eq(c.n, 1);
        cr_assert_eq(c.recs[0]->payload_len, (size_t)OUTBOX_PAYLOAD_MAX);
        cr_assert_eq(c.recs[0]->payload[OUTBOX_PAYLOAD_MAX - 1], 'e');
        cr_assert_eq(c.recs[0]->payload[OUTBOX_PAYLOAD_MAX], '\0');
        outbox_records_free(c.recs, c.n);
        env_done(&e);
}

Test(outbox, purge_works_in_chunks, .timeout = 300)
{
        enum { N = OUTBOX_PURGE_CHUNK + 1 };
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        static struct put_res res[N];
        memset(res, 0, sizeof res);
        char id[32];
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof id, "p-%d", i);
                cr_assert_eq(put_async(&e, INTYG_REGISTER, id, "<x/>", &res[i]), 0);
                if (i % 1000 == 999)
                        run(&e);
        }
        run(&e);
        size_t delivered = 0;
        static struct done_res d[OUTBOX_CLAIM_MAX];
        for (int round = 0; round < N / OUTBOX_CLAIM_MAX + 2 && delivered < N; round++) {
                struct claim_res c = claim_sync(&e, T0, OUTBOX_CLAIM_MAX, 60000);
                memset(d, 0, sizeof d);
                for (size_t i = 0; i < c.n; i++)
                        cr_assert_eq(
                            outbox_mark_delivered(e.ob, c.recs[i], "OK", "", T0, on_done, &d[i]),
                            0);
                run(&e);
                for (size_t i = 0; i < c.n; i++)
                        cr_assert_eq(d[i].changed, 1);
                delivered += c.n;
                free(c.recs);
        }
        cr_assert_eq(delivered, N);
        struct done_res p = {0};
        cr_assert_eq(outbox_purge(e.ob, T0 + 1, on_done, &p), 0);
        run(&e);
        cr_assert_eq(p.changed, OUTBOX_PURGE_CHUNK);
        memset(&p, 0, sizeof p);
        cr_assert_eq(outbox_purge(e.ob, T0 + 1, on_done, &p), 0);
        run(&e);
        cr_assert_eq(p.changed, 1);
        struct outbox_counts cnt = counts_sync(&e);
        cr_assert_eq(cnt.n[OB_DELIVERED], N);
        env_done(&e);
}

static long long sql_int(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s",
                     sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
        long long v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        cr_assert_eq(sqlite3_close(db), SQLITE_OK);
        return v;
}

Test(outbox, bodies_live_apart_and_go_with_purge_and_discard)
{
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "a", "<a/>"), OB_PUT_STORED);
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "b", "<b/>"), OB_PUT_STORED);
        cr_assert_eq(sql_int(e.path, "SELECT count(*) FROM payloads"), 2);
        struct claim_res c = claim_sync(&e, T0, 2, 30000);
        cr_assert_eq(c.n, 2);
        for (size_t i = 0; i < 2; i++) {
                cr_assert_str_eq(c.recs[i]->payload,
                                 strcmp(c.recs[i]->id, "a") == 0 ? "<a/>" : "<b/>");
                if (strcmp(c.recs[i]->id, "a") == 0)
                        delivered_sync(&e, c.recs[i], T0 + 1000);
                else
                        dead_sync(&e, c.recs[i], "FK refused", T0 + 1000);
        }
        free(c.recs);
        cr_assert_eq(sql_int(e.path, "SELECT count(*) FROM payloads"), 2);
        struct done_res d = {0};
        cr_assert_eq(outbox_purge(e.ob, T0 + 3000, on_done, &d), 0);
        run(&e);
        cr_assert_eq(d.changed, 1);
        cr_assert_eq(
            sql_int(
                e.path,
                "SELECT count(*) FROM payloads WHERE seq=(SELECT seq FROM outbox WHERE id='a')"),
            0);
        const char *ids[] = {"b"};
        cr_assert_eq(admin_sync(&e, false, INTYG_REGISTER, ids, 1, T0 + 4000).changed, 1);
        cr_assert_eq(sql_int(e.path, "SELECT count(*) FROM payloads"), 0);
        cr_assert_eq(sql_int(e.path, "SELECT count(*) FROM outbox"), 2, "records stay");
        env_done(&e);
}

/* The schema of outbox databases written by schema version 1 (bodies inline). */
static const char schema_v1[] =
    "CREATE TABLE outbox(kind INTEGER NOT NULL, id TEXT NOT NULL, caller TEXT NOT NULL,"
    " unit_hsa TEXT NOT NULL, followup_hsa TEXT NOT NULL, resolution INTEGER NOT NULL,"
    " provider_hsa TEXT NOT NULL, county TEXT NOT NULL, municipality TEXT NOT NULL,"
    " unit_known INTEGER NOT NULL, provider_mismatch INTEGER NOT NULL,"
    " received_ms INTEGER NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " next_attempt_ms INTEGER NOT NULL, first_attempt_ms INTEGER, state_ms INTEGER NOT NULL,"
    " delivered_ms INTEGER, last_error TEXT, fk_result TEXT, fk_text TEXT,"
    " lease_owner TEXT, lease_until_ms INTEGER, lease_gen INTEGER NOT NULL DEFAULT 0,"
    " payload_hash BLOB NOT NULL, payload_len INTEGER NOT NULL, payload BLOB,"
    " UNIQUE(kind, id));"
    "CREATE INDEX outbox_due ON outbox(state, next_attempt_ms);"
    "CREATE INDEX outbox_purgeable ON outbox(delivered_ms) WHERE state=2 AND payload IS NOT NULL;"
    "CREATE TABLE events(seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL, id TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL, actor TEXT NOT NULL);"
    "CREATE INDEX events_id ON events(id, seq);"
    "CREATE TABLE state_counts(state INTEGER PRIMARY KEY, n INTEGER NOT NULL);"
    "INSERT INTO state_counts VALUES(0,0),(1,0),(2,0),(3,0),(4,0);"
    "CREATE TRIGGER outbox_ins AFTER INSERT ON outbox BEGIN"
    " UPDATE state_counts SET n=n+1 WHERE state=NEW.state; END;"
    "CREATE TRIGGER outbox_upd AFTER UPDATE OF state ON outbox WHEN OLD.state<>NEW.state BEGIN"
    " UPDATE state_counts SET n=n-1 WHERE state=OLD.state;"
    " UPDATE state_counts SET n=n+1 WHERE state=NEW.state; END;"
    "CREATE TRIGGER outbox_del AFTER DELETE ON outbox BEGIN"
    " UPDATE state_counts SET n=n-1 WHERE state=OLD.state; END;"
    "INSERT INTO outbox(kind,id,caller,unit_hsa,followup_hsa,resolution,provider_hsa,county,"
    " municipality,unit_known,provider_mismatch,received_ms,state,attempts,next_attempt_ms,"
    " state_ms,delivered_ms,payload_hash,payload_len,payload) VALUES"
    " (1,'queued-1','SE2321000016-CALLER','SE2321000016-UNIT','SE2321000016-UNIT',0,"
    "  'SE2321000016-PROV','01','0180',1,0,1000,0,0,1000,1000,NULL,zeroblob(32),11,"
    "  CAST('<queued-1/>' AS BLOB)),"
    " (1,'done-1','SE2321000016-CALLER','SE2321000016-UNIT','SE2321000016-UNIT',0,"
    "  'SE2321000016-PROV','01','0180',1,0,1000,2,1,1000,2000,2000,zeroblob(32),9,NULL);"
    "INSERT INTO events(kind,id,at_ms,event,detail,actor) VALUES"
    " (1,'done-1',2000,'delivered','OK','node-a');"
    "PRAGMA user_version=1;";

Test(outbox, a_schema_1_database_is_migrated_with_its_bodies)
{
        struct env e;
        env_init(&e);
        sql_on(e.path, "PRAGMA journal_mode=WAL");
        sql_on(e.path, schema_v1);
        open_as(&e, "node-a");
        cr_assert_eq(sql_int(e.path, "PRAGMA user_version"), 2);
        cr_assert_eq(sql_int(e.path, "SELECT count(*) FROM payloads"), 1);
        cr_assert_eq(sql_int(e.path, "SELECT count(*) FROM pragma_table_info('outbox')"
                                     " WHERE name='payload'"),
                     0);
        /* Records keep their rowid as seq; their bodies and events follow it. */
        cr_assert_eq(sql_int(e.path, "SELECT seq FROM outbox WHERE id='done-1'"), 2);
        cr_assert_eq(sql_int(e.path, "SELECT count(*) FROM events WHERE rec=2"), 1);
        struct outbox_counts n = counts_sync(&e);
        cr_assert_eq(n.n[OB_QUEUED], 1);
        cr_assert_eq(n.n[OB_DELIVERED], 1);
        struct get_res g = get_sync(&e, 0, "done-1");
        cr_assert_not(g.d->records[0].has_payload);
        cr_assert_eq(g.d->n_events, 1);
        cr_assert_str_eq(g.d->events[0].event, "delivered");
        outbox_detail_free(g.d);
        struct claim_res c = claim_sync(&e, T0, 10, 30000);
        cr_assert_eq(c.n, 1);
        cr_assert_str_eq(c.recs[0]->payload, "<queued-1/>");
        cr_assert_eq(c.recs[0]->payload_len, 11);
        outbox_records_free(c.recs, c.n);
        /* A new certificate after the migration goes the new way. */
        cr_assert_eq(put_sync(&e, INTYG_REGISTER, "new-1", "<new-1/>"), OB_PUT_STORED);
        cr_assert_eq(sql_int(e.path, "SELECT count(*) FROM payloads"), 2);
        close_ob(&e);
        /* Opening again is a no-op migration. */
        open_as(&e, "node-a");
        cr_assert_eq(sql_int(e.path, "PRAGMA user_version"), 2);
        env_done(&e);
}

Test(outbox, the_checkpointer_moves_the_wal_into_the_database, .timeout = 60)
{
        enum { N = 64, BODY = 16 * 1024 };
        struct env e;
        env_init(&e);
        open_as(&e, "node-a");
        char *body = malloc(BODY + 1);
        cr_assert_not_null(body);
        struct put_res res[N];
        memset(res, 0, sizeof res);
        for (int i = 0; i < N; i++) {
                memset(body, 'a' + i % 26, BODY);
                body[BODY] = '\0';
                char id[32];
                snprintf(id, sizeof id, "ck-%d", i);
                cr_assert_eq(put_async(&e, INTYG_REGISTER, id, body, &res[i]), 0);
        }
        free(body);
        run(&e);
        for (int i = 0; i < N; i++)
                cr_assert_eq(res[i].r, OB_PUT_STORED);
        /* No one else opens the database: only the gateway's own checkpointer can copy the
         * 1 MB of bodies from the WAL into the database file, within a few of its rounds. */
        struct stat sb = {0};
        for (int i = 0; i < 100; i++) {
                cr_assert_eq(stat(e.path, &sb), 0);
                if (sb.st_size >= (off_t)N * BODY)
                        break;
                usleep(50 * 1000);
        }
        cr_assert_geq(sb.st_size, (off_t)N * BODY, "database file still %lld bytes",
                      (long long)sb.st_size);
        env_done(&e);
}
