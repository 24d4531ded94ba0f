/*
 * bench_outbox.c - puts per second through the SQLite outbox with group commit, keeping
 * 1, 16 and 256 puts outstanding, and how many puts share one commit (= one WAL fsync).
 * Usage: bench_outbox [DIR [SECONDS]]  (DIR defaults to $TMPDIR or /tmp; put it on the
 * disk you care about: on tmpfs an fsync costs nothing). Owns its loop; one thread + writer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outbox.h"

#define BODY_BYTES 8192    /* a typical RegisterCertificate */
#define MAX_PUTS   1000000 /* a bound on one run whatever the disk */

struct run {
        struct outbox *ob;
        int concurrency;
        uint64_t started, done, errors;
        uint64_t deadline_ns;
        bool stop;
        char body[BODY_BYTES + 1];
};

static void on_put(void *arg, enum outbox_put_result r, const char *detail);

static int put_one(struct run *rn)
{
        struct outbox_item it;
        memset(&it, 0, sizeof it);
        it.kind = INTYG_REGISTER;
        snprintf(it.id, sizeof it.id, "bench-%d-%llu", rn->concurrency,
                 (unsigned long long)rn->started);
        snprintf(it.caller, sizeof it.caller, "SE2321000016-BENCH");
        snprintf(it.tags.unit_hsa, sizeof it.tags.unit_hsa, "SE2321000016-UNIT");
        it.received_ms = (int64_t)time(NULL) * 1000;
        it.payload = malloc(BODY_BYTES);
        if (!it.payload)
                return -1;
        memcpy(it.payload, rn->body, BODY_BYTES);
        /* Make each body differ so the hash differs, as real ones do. */
        memcpy(it.payload, it.id, strlen(it.id));
        it.payload_len = BODY_BYTES;
        int rc = outbox_put(rn->ob, &it, on_put, rn);
        if (rc == 0)
                rn->started++;
        return rc;
}

static void on_put(void *arg, enum outbox_put_result r, const char *detail)
{
        struct run *rn = arg;
        rn->done++;
        if (r != OB_PUT_STORED) {
                if (rn->errors++ == 0)
                        fprintf(stderr, "put: %s: %s\n", outbox_put_result_name(r), detail);
        }
        if (!rn->stop && (uv_hrtime() >= rn->deadline_ns || rn->started >= MAX_PUTS))
                rn->stop = true;
        if (!rn->stop && put_one(rn) != 0)
                rn->stop = true;
}

static void on_closed(void *arg)
{
        *(int *)arg = 1;
}

static int bench(const char *dir, int concurrency, double seconds)
{
        char path[512];
        snprintf(path, sizeof path, "%s/bench_outbox_%d_%d.db", dir, (int)getpid(), concurrency);
        uv_loop_t loop;
        if (uv_loop_init(&loop) != 0)
                return -1;
        char err[256];
        struct outbox_sqlite_opts o = {.common = {.max_pending = 4096}};
        static struct run rn;
        memset(&rn, 0, sizeof rn);
        memset(rn.body, 'x', BODY_BYTES);
        rn.concurrency = concurrency;
        rn.ob = outbox_sqlite_new(&loop, path, "bench", &o, err, sizeof err);
        if (!rn.ob) {
                fprintf(stderr, "%s\n", err);
                uv_loop_close(&loop);
                return -1;
        }
        uint64_t t0 = uv_hrtime();
        rn.deadline_ns = t0 + (uint64_t)(seconds * 1e9);
        for (int i = 0; i < concurrency; i++)
                if (put_one(&rn) != 0)
                        break;
        uv_run(&loop, UV_RUN_DEFAULT);
        double el = (double)(uv_hrtime() - t0) / 1e9;
        struct outbox_stats st;
        outbox_stats_get(rn.ob, &st);
        int closed = 0;
        outbox_close(rn.ob, on_closed, &closed);
        uv_run(&loop, UV_RUN_DEFAULT);
        int lc = uv_loop_close(&loop);
        printf("concurrency %4d: %8llu puts in %.2f s = %9.0f puts/s; %7llu commits (fsyncs), "
               "%6.1f puts per commit, largest batch %llu, errors %llu\n",
               concurrency, (unsigned long long)rn.done, el, (double)rn.done / el,
               (unsigned long long)st.commits,
               st.commits ? (double)st.puts / (double)st.commits : 0.0,
               (unsigned long long)st.max_batch, (unsigned long long)rn.errors);
        const char *sfx[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
                char p[600];
                snprintf(p, sizeof p, "%s%s", path, sfx[i]);
                unlink(p);
        }
        return closed == 1 && lc == 0 && rn.errors == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
        const char *dir = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        double seconds = argc > 2 ? atof(argv[2]) : 3.0;
        if (seconds <= 0 || seconds > 600) {
                fprintf(stderr, "usage: bench_outbox [DIR [SECONDS 0..600]]\n");
                return 2;
        }
        printf("outbox group commit, %d-byte bodies, WAL + synchronous=FULL, in %s\n", BODY_BYTES,
               dir);
        int rc = 0;
        const int conc[] = {1, 16, 256};
        for (size_t i = 0; i < sizeof conc / sizeof conc[0]; i++)
                rc |= bench(dir, conc[i], seconds);
        return rc ? 1 : 0;
}
