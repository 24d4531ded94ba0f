/*
 * outbox_sqlite.c - the embedded outbox: struct outbox_ops over one SQLite file (WAL,
 * synchronous=FULL), and the synchronous read-only reader for the command line.
 *
 * Owns: the sqlite3 connection and its prepared statements (struct sq). Threads: opened on
 * the loop thread by outbox_sqlite_new, then used by the writer thread only (run_batch,
 * destroy). A reader belongs to whichever one thread opened it.
 */
#include "outbox.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>
#include <uv.h>

#include "log.h"

#define SQ_SCHEMA_VERSION 2
#define SQ_STR_(x)        #x
#define SQ_STR(x)         SQ_STR_(x)

enum sq_stmt {
        S_BEGIN,
        S_COMMIT,
        S_ROLLBACK,
        S_FIND,
        S_INSERT,
        S_INSERT_BODY,
        S_EVENT,
        S_DUE_EXPIRED,
        S_DUE_QUEUED,
        S_TAKE,
        S_LOAD,
        S_DELIVERED,
        S_RETRY,
        S_DEAD,
        S_REPLAY,
        S_DISCARD,
        S_PURGE,
        S_LIST_DEAD,
        S_COUNT_STATES,
        S_OLDEST,
        S_GET,
        S_EVENTS_N,
        S_EVENTS,
        S_COUNT
};

#define REC_COLS                                                                                   \
        "kind,id,caller,unit_hsa,followup_hsa,resolution,provider_hsa,county,municipality,"        \
        "unit_known,provider_mismatch,state,attempts,received_ms,next_attempt_ms,"                 \
        "first_attempt_ms,state_ms,delivered_ms,last_error,fk_result,fk_text,lease_owner,"         \
        "lease_until_ms,lease_gen,payload_hash,has_payload,payload_len"
#define REC_NCOLS 27

/* Dead letters replayed or discarded: by id and kind (?3 = 0: any), or all (?2 NULL). */
#define ADMIN_WHERE "state=3 AND (?2 IS NULL OR id=?2) AND (?3=0 OR kind=?3) RETURNING kind,id"

static const char *const sq_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_FIND] = "SELECT payload_hash FROM outbox WHERE kind=?1 AND id=?2",
    [S_INSERT] = "INSERT INTO outbox(kind,id,caller,unit_hsa,followup_hsa,resolution,"
                 "provider_hsa,county,municipality,unit_known,provider_mismatch,received_ms,"
                 "state,attempts,next_attempt_ms,state_ms,has_payload,payload_len,payload_hash)"
                 " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,0,0,?12,?12,1,?13,?14)",
    [S_INSERT_BODY] = "INSERT INTO payloads(seq,body) VALUES(?1,?2)",
    [S_EVENT] = "INSERT INTO events(rec,kind,id,at_ms,event,detail,actor)"
                " VALUES((SELECT seq FROM outbox WHERE kind=?1 AND id=?2),?1,?2,?3,?4,?5,?6)",
    [S_DUE_EXPIRED] = "SELECT rowid,lease_owner FROM outbox WHERE state=1 AND lease_until_ms<=?1"
                      " ORDER BY lease_until_ms LIMIT ?2",
    [S_DUE_QUEUED] = "SELECT rowid FROM outbox AS o WHERE state=0 AND next_attempt_ms<=?1 AND"
                     " NOT (kind=2 AND EXISTS(SELECT 1 FROM outbox AS r WHERE r.kind=1 AND"
                     " r.id=o.id AND r.state IN (0,1,3)))"
                     " ORDER BY next_attempt_ms,rowid LIMIT ?2",
    [S_TAKE] = "UPDATE outbox SET state=1,lease_owner=?1,lease_until_ms=?2,lease_gen=lease_gen+1,"
               "attempts=attempts+1,first_attempt_ms=COALESCE(first_attempt_ms,?3),state_ms=?3"
               " WHERE rowid=?4",
    [S_LOAD] = "SELECT " REC_COLS ",(SELECT body FROM payloads AS p WHERE p.seq=o.seq)"
               " FROM outbox AS o WHERE seq=?1",
    [S_DELIVERED] = "UPDATE outbox SET state=2,fk_result=?3,fk_text=?4,delivered_ms=?5,"
                    "state_ms=?5,lease_owner=NULL,lease_until_ms=NULL"
                    " WHERE kind=?1 AND id=?2 AND state IN (0,1,3)",
    [S_RETRY] = "UPDATE outbox SET state=0,next_attempt_ms=?5,last_error=?6,state_ms=?7,"
                "lease_owner=NULL,lease_until_ms=NULL"
                " WHERE kind=?1 AND id=?2 AND state=1 AND lease_owner=?3 AND lease_gen=?4",
    [S_DEAD] = "UPDATE outbox SET state=3,last_error=?6,fk_result=?5,state_ms=?7,"
               "lease_owner=NULL,lease_until_ms=NULL"
               " WHERE kind=?1 AND id=?2 AND state=1 AND lease_owner=?3 AND lease_gen=?4",
    [S_REPLAY] = "UPDATE outbox SET state=0,attempts=0,next_attempt_ms=?1,first_attempt_ms=NULL,"
                 "state_ms=?1 WHERE " ADMIN_WHERE,
    [S_DISCARD] = "UPDATE outbox SET state=4,has_payload=0,state_ms=?1 WHERE " ADMIN_WHERE,
    [S_PURGE] = "UPDATE outbox SET has_payload=0 WHERE rowid IN (SELECT rowid FROM outbox"
                " WHERE state=2 AND has_payload=1 AND delivered_ms<?1 LIMIT ?2)",
    [S_LIST_DEAD] = "SELECT " REC_COLS " FROM outbox WHERE state=3"
                    " ORDER BY state_ms DESC,rowid DESC LIMIT ?1 OFFSET ?2",
    [S_COUNT_STATES] = "SELECT state,n FROM state_counts",
    [S_OLDEST] = "SELECT min(received_ms) FROM outbox WHERE state IN (0,1)",
    [S_GET] = "SELECT " REC_COLS " FROM outbox WHERE kind IN (?1,?2) AND id=?3 ORDER BY kind",
    [S_EVENTS_N] = "SELECT count(*) FROM events WHERE rec IN (SELECT seq FROM outbox"
                   " WHERE id=?3 AND kind IN (?1,?2))",
    [S_EVENTS] = "SELECT kind,at_ms,event,detail,actor FROM (SELECT seq,kind,at_ms,event,"
                 "detail,actor FROM events WHERE rec IN (SELECT seq FROM outbox"
                 " WHERE id=?3 AND kind IN (?1,?2)) ORDER BY seq DESC LIMIT ?4) ORDER BY seq",
};

/* Schema 2. Every table grows at its end: a record's seq, its body's seq (the same) and an
 * event's rec follow arrival, so a commit touches the last pages of each b-tree, not a page
 * per certificate scattered by its random intygs-id. Only UNIQUE(kind, id), the idempotency
 * check, is keyed by the id. (Schema 1 indexed bodies and events by id: 9.7 pages of WAL per
 * certificate, 2.5 of them for the events index alone.) */
#define OUTBOX_COLS                                                                                \
        " kind INTEGER NOT NULL, id TEXT NOT NULL, caller TEXT NOT NULL,"                          \
        " unit_hsa TEXT NOT NULL, followup_hsa TEXT NOT NULL, resolution INTEGER NOT NULL,"        \
        " provider_hsa TEXT NOT NULL, county TEXT NOT NULL, municipality TEXT NOT NULL,"           \
        " unit_known INTEGER NOT NULL, provider_mismatch INTEGER NOT NULL,"                        \
        " received_ms INTEGER NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL,"        \
        " next_attempt_ms INTEGER NOT NULL, first_attempt_ms INTEGER, state_ms INTEGER NOT NULL,"  \
        " delivered_ms INTEGER, last_error TEXT, fk_result TEXT, fk_text TEXT,"                    \
        " lease_owner TEXT, lease_until_ms INTEGER, lease_gen INTEGER NOT NULL DEFAULT 0,"         \
        " payload_hash BLOB NOT NULL, payload_len INTEGER NOT NULL,"                               \
        " has_payload INTEGER NOT NULL DEFAULT 1, UNIQUE(kind, id)"
#define EVENTS_COLS                                                                                \
        " seq INTEGER PRIMARY KEY, rec INTEGER, kind INTEGER NOT NULL, id TEXT NOT NULL,"          \
        " at_ms INTEGER NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL, actor TEXT NOT NULL"

static const char sq_schema[] =
    "CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY," OUTBOX_COLS ");"
    /* Bodies live apart from the record: a record's row is rewritten whole by every state
     * change (claim, delivered, retry), and with the body inline each rewrite copied its
     * overflow pages into the WAL again. A body (payloads.seq = outbox.seq) is written once and
     * deleted (purge, discard) by the trigger below. */
    "CREATE TABLE IF NOT EXISTS payloads(seq INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt_ms);"
    "CREATE INDEX IF NOT EXISTS outbox_purgeable ON outbox(delivered_ms)"
    " WHERE state=2 AND has_payload=1;"
    "CREATE TRIGGER IF NOT EXISTS outbox_body_gone AFTER UPDATE OF has_payload ON outbox"
    " WHEN NEW.has_payload=0 BEGIN DELETE FROM payloads WHERE seq=OLD.seq; END;"
    /* events.rec is the record's seq (kind and id kept for people reading the table). */
    "CREATE TABLE IF NOT EXISTS events(" EVENTS_COLS ");"
    "CREATE INDEX IF NOT EXISTS events_rec ON events(rec, seq);"
    /* Counts per state kept by triggers: metrics and readiness ask often, and a scan of
     * every delivered record ever would grow with the years. */
    "CREATE TABLE IF NOT EXISTS state_counts(state INTEGER PRIMARY KEY, n INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO state_counts VALUES(0,0),(1,0),(2,0),(3,0),(4,0);"
    "CREATE TRIGGER IF NOT EXISTS outbox_ins AFTER INSERT ON outbox BEGIN"
    " UPDATE state_counts SET n=n+1 WHERE state=NEW.state; END;"
    "CREATE TRIGGER IF NOT EXISTS outbox_upd AFTER UPDATE OF state ON outbox"
    " WHEN OLD.state<>NEW.state BEGIN"
    " UPDATE state_counts SET n=n-1 WHERE state=OLD.state;"
    " UPDATE state_counts SET n=n+1 WHERE state=NEW.state; END;"
    "CREATE TRIGGER IF NOT EXISTS outbox_del AFTER DELETE ON outbox BEGIN"
    " UPDATE state_counts SET n=n-1 WHERE state=OLD.state;"
    " DELETE FROM payloads WHERE seq=OLD.seq; END;";

/* Schema 1 -> 2 (see above): the record's rowid becomes its seq, bodies and events move to
 * tables keyed by it. Runs inside the opening transaction, before sq_schema (which makes the
 * indexes and triggers), on a database whose user_version is 1. */
#define V1_COLS                                                                                    \
        "kind,id,caller,unit_hsa,followup_hsa,resolution,provider_hsa,county,municipality,"        \
        "unit_known,provider_mismatch,received_ms,state,attempts,next_attempt_ms,"                 \
        "first_attempt_ms,state_ms,delivered_ms,last_error,fk_result,fk_text,lease_owner,"         \
        "lease_until_ms,lease_gen,payload_hash,payload_len"
static const char sq_migrate_1_2[] =
    "CREATE TABLE outbox_v2(seq INTEGER PRIMARY KEY," OUTBOX_COLS ");"
    "INSERT INTO outbox_v2(seq," V1_COLS ",has_payload) SELECT rowid," V1_COLS ","
    " payload IS NOT NULL FROM outbox ORDER BY rowid;"
    "CREATE TABLE payloads(seq INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    "INSERT INTO payloads(seq,body) SELECT rowid,payload FROM outbox WHERE payload IS NOT NULL;"
    "CREATE TABLE events_v2(" EVENTS_COLS ");"
    "INSERT INTO events_v2(seq,rec,kind,id,at_ms,event,detail,actor)"
    " SELECT e.seq,o.rowid,e.kind,e.id,e.at_ms,e.event,e.detail,e.actor FROM events AS e"
    " LEFT JOIN outbox AS o ON o.kind=e.kind AND o.id=e.id ORDER BY e.seq;"
    "DROP TABLE events;"
    "DROP TABLE outbox;"
    "ALTER TABLE outbox_v2 RENAME TO outbox;"
    "ALTER TABLE events_v2 RENAME TO events;";

struct sq {
        sqlite3 *db;
        sqlite3_stmt *st[S_COUNT];
        char node[OUTBOX_NODE_MAX + 1];
        char err[256];  /* the last database error, for the batch's callers */
        bool sync_full; /* PRAGMA synchronous is FULL (else NORMAL) */
        /* The checkpointer: its own connection and thread copy the WAL into the database in
         * the background (PASSIVE), so that neither the copy nor its fsync of the database
         * file ever sits in the writer's path between a put and its OK. */
        uv_thread_t ck_thread;
        uv_mutex_t ck_mu;
        uv_cond_t ck_cond;
        bool ck_started, ck_stop;
        /* Set by the checkpointer when the WAL is past SQ_WAL_RESTART_FRAMES: the writer then
         * finishes the checkpoint itself, between two batches (see sq_run_batch). */
        atomic_bool wal_restart;
        char path[4096];
};

#define SQ_CHECKPOINT_MS 100        /* how often the checkpointer looks at the WAL */
#define SQ_WAL_LIMIT     "67108864" /* bytes of WAL file kept after a restart (64 MiB) */
/* WAL frames (32 MiB of 4 kB pages) past which the writer ends a checkpoint itself */
#define SQ_WAL_RESTART_FRAMES 8192

static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t cap);

static void checkpointer(void *arg)
{
        struct sq *q = arg;
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(q->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK) {
                LOGE("outbox_checkpointer", "error", db ? sqlite3_errmsg(db) : "cannot open");
                sqlite3_close(db);
                return;
        }
        sqlite3_busy_timeout(db, 1000);
        /* A connection learns that the database is in WAL mode only when it first reads it;
         * until then sqlite3_wal_checkpoint_v2 returns SQLITE_OK and copies nothing, and the WAL
         * grew without bound (45 kB per certificate). */
        char mode[16] = "";
        if (pragma_text(db, "PRAGMA journal_mode", mode, sizeof mode) != SQLITE_OK ||
            strcmp(mode, "wal") != 0) {
                LOGE("outbox_checkpointer", "error", "the database is not in WAL mode", "mode",
                     mode);
                sqlite3_close(db);
                return;
        }
        uv_mutex_lock(&q->ck_mu);
        while (!q->ck_stop) {
                uv_cond_timedwait(&q->ck_cond, &q->ck_mu, (uint64_t)SQ_CHECKPOINT_MS * 1000000);
                if (q->ck_stop)
                        break;
                uv_mutex_unlock(&q->ck_mu);
                int log_frames = 0, done = 0;
                int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                                   &done);
                /* Under steady load a passive checkpoint never catches the writer, so the WAL
                 * never starts over and grows without bound. Past SQ_WAL_RESTART_FRAMES the
                 * writer finishes the job between two batches. Not RESTART from here: it takes
                 * the write lock, and the writer, finding it busy, sleeps in SQLite's busy
                 * handler steps (up to 100 ms) long after the checkpoint is done. */
                if (rc == SQLITE_OK && log_frames > SQ_WAL_RESTART_FRAMES)
                        atomic_store(&q->wal_restart, true);
                if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                        LOGW("outbox_checkpoint_failed", "error", sqlite3_errmsg(db));
                uv_mutex_lock(&q->ck_mu);
        }
        uv_mutex_unlock(&q->ck_mu);
        sqlite3_close(db);
}

static int checkpointer_start(struct sq *q)
{
        if (uv_mutex_init(&q->ck_mu) != 0)
                return -1;
        if (uv_cond_init(&q->ck_cond) != 0) {
                uv_mutex_destroy(&q->ck_mu);
                return -1;
        }
        if (uv_thread_create(&q->ck_thread, checkpointer, q) != 0) {
                uv_cond_destroy(&q->ck_cond);
                uv_mutex_destroy(&q->ck_mu);
                return -1;
        }
        q->ck_started = true;
        return 0;
}

static void checkpointer_stop(struct sq *q)
{
        if (!q->ck_started)
                return;
        uv_mutex_lock(&q->ck_mu);
        q->ck_stop = true;
        uv_cond_signal(&q->ck_cond);
        uv_mutex_unlock(&q->ck_mu);
        uv_thread_join(&q->ck_thread);
        uv_cond_destroy(&q->ck_cond);
        uv_mutex_destroy(&q->ck_mu);
        q->ck_started = false;
}

static int64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The statement, prepared on first use and reset for the caller. NULL on error (q->err). */
static sqlite3_stmt *stmt(struct sq *q, enum sq_stmt s)
{
        if (!q->st[s]) {
                int rc = sqlite3_prepare_v3(q->db, sq_sql[s], -1, SQLITE_PREPARE_PERSISTENT,
                                            &q->st[s], NULL);
                if (rc != SQLITE_OK) {
                        snprintf(q->err, sizeof q->err, "%s", sqlite3_errmsg(q->db));
                        return NULL;
                }
        }
        sqlite3_reset(q->st[s]);
        sqlite3_clear_bindings(q->st[s]);
        return q->st[s];
}

static int fail(struct sq *q, int rc)
{
        const char *msg = sqlite3_errmsg(q->db), *str = sqlite3_errstr(rc);
        if (strcmp(msg, str) == 0)
                snprintf(q->err, sizeof q->err, "%s", msg);
        else
                snprintf(q->err, sizeof q->err, "%s (%s)", msg, str);
        return rc;
}

/* Step a statement that returns no rows (or whose rows are ignored) to its end. */
static int exec_stmt(struct sq *q, sqlite3_stmt *st)
{
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                ;
        if (rc != SQLITE_DONE)
                return fail(q, rc);
        sqlite3_reset(st);
        return SQLITE_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
        sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
        const unsigned char *t = sqlite3_column_text(st, i);
        snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int add_event(struct sq *q, int kind, const char *id, int64_t at, const char *event,
                     const char *detail, const char *actor)
{
        sqlite3_stmt *st = stmt(q, S_EVENT);
        if (!st)
                return SQLITE_ERROR;
        sqlite3_bind_int(st, 1, kind);
        bind_text(st, 2, id);
        sqlite3_bind_int64(st, 3, at);
        bind_text(st, 4, event);
        bind_text(st, 5, detail);
        bind_text(st, 6, actor);
        return exec_stmt(q, st);
}

/* Fill r from a row of REC_COLS (and payload at column REC_NCOLS when with_payload). */
static int read_record(sqlite3_stmt *st, struct outbox_record *r, bool with_payload)
{
        memset(r, 0, sizeof *r);
        r->kind = (enum intyg_kind)sqlite3_column_int(st, 0);
        col_text(st, 1, r->id, sizeof r->id);
        col_text(st, 2, r->caller, sizeof r->caller);
        col_text(st, 3, r->tags.unit_hsa, sizeof r->tags.unit_hsa);
        col_text(st, 4, r->tags.followup_hsa, sizeof r->tags.followup_hsa);
        r->tags.resolution = (enum tag_resolution)sqlite3_column_int(st, 5);
        col_text(st, 6, r->tags.provider_hsa, sizeof r->tags.provider_hsa);
        col_text(st, 7, r->tags.county, sizeof r->tags.county);
        col_text(st, 8, r->tags.municipality, sizeof r->tags.municipality);
        r->tags.unit_known = sqlite3_column_int(st, 9) != 0;
        r->tags.provider_mismatch = sqlite3_column_int(st, 10) != 0;
        r->state = (enum outbox_state)sqlite3_column_int(st, 11);
        r->attempts = sqlite3_column_int(st, 12);
        r->received_ms = sqlite3_column_int64(st, 13);
        r->next_attempt_ms = sqlite3_column_int64(st, 14);
        r->first_attempt_ms = sqlite3_column_int64(st, 15);
        r->state_ms = sqlite3_column_int64(st, 16);
        r->delivered_ms = sqlite3_column_int64(st, 17);
        col_text(st, 18, r->last_error, sizeof r->last_error);
        col_text(st, 19, r->fk_result, sizeof r->fk_result);
        col_text(st, 20, r->fk_text, sizeof r->fk_text);
        col_text(st, 21, r->lease_owner, sizeof r->lease_owner);
        r->lease_until_ms = sqlite3_column_int64(st, 22);
        r->lease_gen = sqlite3_column_int64(st, 23);
        const void *h = sqlite3_column_blob(st, 24);
        if (h && sqlite3_column_bytes(st, 24) == (int)sizeof r->payload_hash)
                memcpy(r->payload_hash, h, sizeof r->payload_hash);
        r->has_payload = sqlite3_column_int(st, 25) != 0;
        r->payload_len = (size_t)sqlite3_column_int64(st, 26);
        if (with_payload && r->has_payload) {
                const void *p = sqlite3_column_blob(st, REC_NCOLS);
                size_t n = (size_t)sqlite3_column_bytes(st, REC_NCOLS);
                r->payload = malloc(n + 1); /* NUL-terminated for the caller's convenience */
                if (!r->payload)
                        return SQLITE_NOMEM;
                if (n)
                        memcpy(r->payload, p, n);
                r->payload[n] = '\0';
                r->payload_len = n;
        }
        return SQLITE_OK;
}

/* ---- write requests (inside the batch's transaction) ------------------------------------ */

static int do_put(struct sq *q, struct outbox_req *r)
{
        const struct outbox_item *it = &r->item;
        sqlite3_stmt *st = stmt(q, S_FIND);
        if (!st)
                return SQLITE_ERROR;
        sqlite3_bind_int(st, 1, it->kind);
        bind_text(st, 2, it->id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                bool same = sqlite3_column_bytes(st, 0) == (int)sizeof r->hash &&
                            memcmp(sqlite3_column_blob(st, 0), r->hash, sizeof r->hash) == 0;
                sqlite3_reset(st);
                if (same) {
                        r->put_result = OB_PUT_DUPLICATE;
                        snprintf(r->detail, sizeof r->detail,
                                 "certificate id already received with the same content;"
                                 " stored once");
                } else {
                        r->put_result = OB_PUT_CONFLICT;
                        snprintf(r->detail, sizeof r->detail,
                                 "certificate id already received with different content");
                }
                return add_event(q, it->kind, it->id, it->received_ms,
                                 same ? "duplicate" : "conflict", "", it->caller);
        }
        if (rc != SQLITE_DONE)
                return fail(q, rc);
        sqlite3_reset(st);

        st = stmt(q, S_INSERT);
        if (!st)
                return SQLITE_ERROR;
        sqlite3_bind_int(st, 1, it->kind);
        bind_text(st, 2, it->id);
        bind_text(st, 3, it->caller);
        bind_text(st, 4, it->tags.unit_hsa);
        bind_text(st, 5, it->tags.followup_hsa);
        sqlite3_bind_int(st, 6, it->tags.resolution);
        bind_text(st, 7, it->tags.provider_hsa);
        bind_text(st, 8, it->tags.county);
        bind_text(st, 9, it->tags.municipality);
        sqlite3_bind_int(st, 10, it->tags.unit_known);
        sqlite3_bind_int(st, 11, it->tags.provider_mismatch);
        sqlite3_bind_int64(st, 12, it->received_ms);
        sqlite3_bind_int64(st, 13, (sqlite3_int64)it->payload_len);
        sqlite3_bind_blob(st, 14, r->hash, sizeof r->hash, SQLITE_STATIC);
        rc = exec_stmt(q, st);
        if (rc != SQLITE_OK)
                return rc;
        sqlite3_int64 seq = sqlite3_last_insert_rowid(q->db);
        st = stmt(q, S_INSERT_BODY);
        if (!st)
                return SQLITE_ERROR;
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_blob64(st, 2, it->payload ? it->payload : "", it->payload_len, SQLITE_STATIC);
        rc = exec_stmt(q, st);
        if (rc != SQLITE_OK)
                return rc;
        char detail[64];
        snprintf(detail, sizeof detail, "%zu bytes", it->payload_len);
        rc = add_event(q, it->kind, it->id, it->received_ms, "received", detail, it->caller);
        if (rc == SQLITE_OK) {
                r->put_result = OB_PUT_STORED;
                snprintf(r->detail, sizeof r->detail, "stored");
        }
        return rc;
}

/* Make one row in flight for this node and load it into r->recs. */
static int take_row(struct sq *q, struct outbox_req *r, sqlite3_int64 rowid, const char *prev_owner)
{
        sqlite3_stmt *st = stmt(q, S_TAKE);
        if (!st)
                return SQLITE_ERROR;
        bind_text(st, 1, r->node_id);
        sqlite3_bind_int64(st, 2, r->now_ms + r->lease_ms);
        sqlite3_bind_int64(st, 3, r->now_ms);
        sqlite3_bind_int64(st, 4, rowid);
        int rc = exec_stmt(q, st);
        if (rc != SQLITE_OK)
                return rc;
        st = stmt(q, S_LOAD);
        if (!st)
                return SQLITE_ERROR;
        sqlite3_bind_int64(st, 1, rowid);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return fail(q, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc);
        struct outbox_record *rec = calloc(1, sizeof *rec);
        if (!rec)
                return SQLITE_NOMEM;
        r->recs[r->n_recs++] = rec;
        rc = read_record(st, rec, true);
        sqlite3_reset(st);
        if (rc != SQLITE_OK) {
                snprintf(q->err, sizeof q->err, "out of memory loading a payload");
                return rc;
        }
        if (prev_owner) {
                char detail[OUTBOX_ERROR_MAX];
                snprintf(detail, sizeof detail, "lease of %s expired", prev_owner);
                rc = add_event(q, rec->kind, rec->id, r->now_ms, "resumed", detail, r->node_id);
        }
        return rc;
}

static int do_claim(struct sq *q, struct outbox_req *r)
{
        r->recs = calloc(r->max, sizeof *r->recs);
        if (!r->recs) {
                snprintf(q->err, sizeof q->err, "out of memory");
                return SQLITE_NOMEM;
        }
        sqlite3_int64 rowids[OUTBOX_CLAIM_MAX];
        char(*owners)[OUTBOX_NODE_MAX + 1] = calloc(r->max, sizeof *owners);
        if (!owners) {
                snprintf(q->err, sizeof q->err, "out of memory");
                return SQLITE_NOMEM;
        }
        int rc = SQLITE_OK;
        /* Expired leases first: they were due before anything queued now. */
        for (int pass = 0; pass < 2 && rc == SQLITE_OK && r->n_recs < r->max; pass++) {
                sqlite3_stmt *st = stmt(q, pass == 0 ? S_DUE_EXPIRED : S_DUE_QUEUED);
                if (!st) {
                        rc = SQLITE_ERROR;
                        break;
                }
                sqlite3_bind_int64(st, 1, r->now_ms);
                sqlite3_bind_int64(st, 2, (sqlite3_int64)(r->max - r->n_recs));
                size_t n = 0;
                while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < r->max) {
                        rowids[n] = sqlite3_column_int64(st, 0);
                        if (pass == 0)
                                col_text(st, 1, owners[n], sizeof owners[n]);
                        n++;
                }
                if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                        rc = fail(q, rc);
                        break;
                }
                sqlite3_reset(st);
                rc = SQLITE_OK;
                for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
                        rc = take_row(q, r, rowids[i], pass == 0 ? owners[i] : NULL);
        }
        free(owners);
        return rc;
}

static int do_mark(struct sq *q, struct outbox_req *r)
{
        static const enum sq_stmt which[] = {
            [OBM_DELIVERED] = S_DELIVERED, [OBM_RETRY] = S_RETRY, [OBM_DEAD] = S_DEAD};
        sqlite3_stmt *st = stmt(q, which[r->mark]);
        if (!st)
                return SQLITE_ERROR;
        sqlite3_bind_int(st, 1, r->kind);
        bind_text(st, 2, r->id);
        if (r->mark == OBM_DELIVERED) {
                bind_text(st, 3, r->fk_result);
                bind_text(st, 4, r->text);
                sqlite3_bind_int64(st, 5, r->now_ms);
        } else {
                bind_text(st, 3, r->node_id);
                sqlite3_bind_int64(st, 4, r->lease_gen);
                if (r->mark == OBM_RETRY)
                        sqlite3_bind_int64(st, 5, r->next_attempt_ms);
                else
                        bind_text(st, 5, r->fk_result);
                bind_text(st, 6, r->text);
                sqlite3_bind_int64(st, 7, r->now_ms);
        }
        int rc = exec_stmt(q, st);
        if (rc != SQLITE_OK)
                return rc;
        r->changed = (size_t)sqlite3_changes(q->db);
        if (r->changed == 0) {
                /* Delivered twice is harmless; a retry or dead on a lost lease is stale. */
                if (r->mark != OBM_DELIVERED) {
                        r->status = OUTBOX_ESTALE;
                        LOGW("outbox_mark_stale", "id", r->id, "node", r->node_id);
                }
                return SQLITE_OK;
        }
        char detail[OUTBOX_ERROR_MAX];
        const char *event = "delivered";
        if (r->mark == OBM_DELIVERED) {
                snprintf(detail, sizeof detail, "%.15s%s%.200s", r->fk_result,
                         r->text[0] ? ": " : "", r->text);
        } else if (r->mark == OBM_RETRY) {
                event = "attempt_failed";
                snprintf(detail, sizeof detail, "%s", r->text);
        } else {
                event = "dead";
                snprintf(detail, sizeof detail, "%.15s%s%.200s", r->fk_result,
                         r->fk_result[0] ? ": " : "", r->text);
        }
        return add_event(q, r->kind, r->id, r->now_ms, event, detail, r->node_id);
}

static int do_admin_one(struct sq *q, struct outbox_req *r, const char *id)
{
        sqlite3_stmt *st = stmt(q, r->type == OBR_REPLAY ? S_REPLAY : S_DISCARD);
        if (!st)
                return SQLITE_ERROR;
        sqlite3_bind_int64(st, 1, r->now_ms);
        if (id)
                bind_text(st, 2, id);
        else
                sqlite3_bind_null(st, 2);
        sqlite3_bind_int(st, 3, r->kind);
        /* RETURNING rows are all computed at the first step, so events may be added while
         * stepping through them; collect (kind, id) first to keep it simple anyway. */
        struct changed {
                int kind;
                char id[INTYG_ID_MAX + 1];
        } *list = NULL;
        size_t n = 0, cap = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        struct changed *nl = realloc(list, ncap * sizeof *nl);
                        if (!nl) {
                                free(list);
                                sqlite3_reset(st);
                                snprintf(q->err, sizeof q->err, "out of memory");
                                return SQLITE_NOMEM;
                        }
                        list = nl;
                        cap = ncap;
                }
                list[n].kind = sqlite3_column_int(st, 0);
                col_text(st, 1, list[n].id, sizeof list[n].id);
                n++;
        }
        if (rc != SQLITE_DONE) {
                free(list);
                return fail(q, rc);
        }
        sqlite3_reset(st);
        rc = SQLITE_OK;
        for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
                rc = add_event(q, list[i].kind, list[i].id, r->now_ms,
                               r->type == OBR_REPLAY ? "replayed" : "discarded", "", r->actor);
        free(list);
        r->changed += n;
        return rc;
}

static int do_admin(struct sq *q, struct outbox_req *r)
{
        if (!r->ids)
                return do_admin_one(q, r, NULL);
        int rc = SQLITE_OK;
        for (size_t i = 0; i < r->n_ids && rc == SQLITE_OK; i++)
                rc = do_admin_one(q, r, r->ids[i]);
        return rc;
}

static int do_purge(struct sq *q, struct outbox_req *r)
{
        sqlite3_stmt *st = stmt(q, S_PURGE);
        if (!st)
                return SQLITE_ERROR;
        sqlite3_bind_int64(st, 1, r->before_ms);
        sqlite3_bind_int(st, 2, OUTBOX_PURGE_CHUNK);
        int rc = exec_stmt(q, st);
        if (rc == SQLITE_OK)
                r->changed = (size_t)sqlite3_changes(q->db);
        return rc;
}

/* ---- read requests (no transaction of ours; each statement sees committed data) --------- */

static int q_list_dead(struct sq *q, size_t offset, size_t limit, struct outbox_record ***out,
                       size_t *n_out, uint64_t *total)
{
        *out = NULL;
        *n_out = 0;
        *total = 0;
        sqlite3_stmt *st = stmt(q, S_COUNT_STATES);
        if (!st)
                return SQLITE_ERROR;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (sqlite3_column_int(st, 0) == OB_DEAD)
                        *total = (uint64_t)sqlite3_column_int64(st, 1);
        if (rc != SQLITE_DONE)
                return fail(q, rc);
        sqlite3_reset(st);
        struct outbox_record **recs = calloc(limit, sizeof *recs);
        if (!recs)
                return SQLITE_NOMEM;
        st = stmt(q, S_LIST_DEAD);
        if (!st) {
                free(recs);
                return SQLITE_ERROR;
        }
        sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
        size_t n = 0;
        while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                recs[n] = calloc(1, sizeof *recs[n]);
                if (!recs[n]) {
                        rc = SQLITE_NOMEM;
                        break;
                }
                read_record(st, recs[n++], false);
        }
        if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                if (rc != SQLITE_NOMEM)
                        fail(q, rc);
                sqlite3_reset(st);
                outbox_records_free(recs, n);
                return rc;
        }
        sqlite3_reset(st);
        *out = recs;
        *n_out = n;
        return SQLITE_OK;
}

static int q_counts(struct sq *q, struct outbox_counts *c)
{
        memset(c, 0, sizeof *c);
        sqlite3_stmt *st = stmt(q, S_COUNT_STATES);
        if (!st)
                return SQLITE_ERROR;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int s = sqlite3_column_int(st, 0);
                sqlite3_int64 n = sqlite3_column_int64(st, 1);
                if (s >= 0 && s < OB_NSTATES && n > 0)
                        c->n[s] = (uint64_t)n;
        }
        if (rc != SQLITE_DONE)
                return fail(q, rc);
        sqlite3_reset(st);
        c->queue_depth = c->n[OB_QUEUED] + c->n[OB_INFLIGHT];
        st = stmt(q, S_OLDEST);
        if (!st)
                return SQLITE_ERROR;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return fail(q, rc);
        c->oldest_queued_ms = sqlite3_column_int64(st, 0); /* NULL reads as 0 */
        sqlite3_reset(st);
        return SQLITE_OK;
}

static void bind_kinds(sqlite3_stmt *st, enum intyg_kind kind, const char *id)
{
        sqlite3_bind_int(st, 1, kind ? (int)kind : INTYG_REGISTER);
        sqlite3_bind_int(st, 2, kind ? (int)kind : INTYG_REVOKE);
        bind_text(st, 3, id);
}

/* *out NULL and SQLITE_OK when there is no record with that id. */
static int q_get(struct sq *q, enum intyg_kind kind, const char *id, struct outbox_detail **out)
{
        *out = NULL;
        struct outbox_detail *d = calloc(1, sizeof *d);
        if (!d)
                return SQLITE_NOMEM;
        sqlite3_stmt *st = stmt(q, S_GET);
        if (!st)
                goto err;
        bind_kinds(st, kind, id);
        int rc = SQLITE_OK;
        while (d->n_records < 2 && (rc = sqlite3_step(st)) == SQLITE_ROW)
                read_record(st, &d->records[d->n_records++], false);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                goto sqlerr;
        sqlite3_reset(st);
        if (d->n_records == 0) {
                outbox_detail_free(d);
                return SQLITE_OK;
        }
        st = stmt(q, S_EVENTS_N);
        if (!st)
                goto err;
        bind_kinds(st, kind, id);
        if ((rc = sqlite3_step(st)) != SQLITE_ROW)
                goto sqlerr;
        uint64_t total = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        size_t want = total < OUTBOX_EVENTS_MAX ? (size_t)total : OUTBOX_EVENTS_MAX;
        d->events_dropped = (size_t)(total - want);
        if (want) {
                d->events = calloc(want, sizeof *d->events);
                if (!d->events) {
                        outbox_detail_free(d);
                        return SQLITE_NOMEM;
                }
        }
        st = stmt(q, S_EVENTS);
        if (!st)
                goto err;
        bind_kinds(st, kind, id);
        sqlite3_bind_int(st, 4, OUTBOX_EVENTS_MAX);
        while (d->n_events < want && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct outbox_event *e = &d->events[d->n_events++];
                e->kind = (enum intyg_kind)sqlite3_column_int(st, 0);
                e->at_ms = sqlite3_column_int64(st, 1);
                col_text(st, 2, e->event, sizeof e->event);
                col_text(st, 3, e->detail, sizeof e->detail);
                col_text(st, 4, e->actor, sizeof e->actor);
        }
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                goto sqlerr;
        sqlite3_reset(st);
        *out = d;
        return SQLITE_OK;
sqlerr:
        fail(q, rc);
        sqlite3_reset(st);
err:
        outbox_detail_free(d);
        return SQLITE_ERROR;
}

static int status_of(int rc)
{
        return rc == SQLITE_NOMEM ? OUTBOX_ENOMEM : OUTBOX_EIO;
}

static void run_read(struct sq *q, struct outbox_req *r)
{
        int rc = SQLITE_OK;
        switch (r->type) {
        case OBR_LIST_DEAD:
                rc = q_list_dead(q, r->offset, r->limit, &r->recs, &r->n_recs, &r->total);
                break;
        case OBR_GET:
                rc = q_get(q, r->kind, r->id, &r->detail_out);
                if (rc == SQLITE_OK && !r->detail_out)
                        r->status = OUTBOX_ENOENT;
                break;
        case OBR_COUNTS:
                rc = q_counts(q, &r->counts);
                break;
        default:
                break;
        }
        if (rc != SQLITE_OK) {
                r->status = status_of(rc);
                LOGE("outbox_read_failed", "error", q->err);
        }
}

static int run_write(struct sq *q, struct outbox_req *r)
{
        switch (r->type) {
        case OBR_PUT:
                return do_put(q, r);
        case OBR_CLAIM:
                return do_claim(q, r);
        case OBR_MARK:
                return do_mark(q, r);
        case OBR_REPLAY:
        case OBR_DISCARD:
                return do_admin(q, r);
        case OBR_PURGE:
                return do_purge(q, r);
        default:
                return SQLITE_OK;
        }
}

static int sq_run_batch(void *impl, struct outbox_req **reqs, size_t n)
{
        struct sq *q = impl;
        if (atomic_exchange(&q->wal_restart, false)) {
                /* The checkpointer has copied all but the last moments of the WAL; copying the
                 * rest here, with no write open, lets the next write start the WAL over. BUSY
                 * (the checkpointer is at it) returns at once: try again next batch. */
                int lf = 0, done = 0;
                int rc =
                    sqlite3_wal_checkpoint_v2(q->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &lf, &done);
                if (rc == SQLITE_BUSY)
                        atomic_store(&q->wal_restart, true);
                else if (rc != SQLITE_OK)
                        LOGW("outbox_checkpoint_failed", "error", sqlite3_errmsg(q->db));
        }
        size_t n_writes = 0;
        for (size_t i = 0; i < n; i++)
                n_writes += outbox_req_writes(reqs[i]->type);
        int result = 0;
        if (n_writes > 0) {
                q->err[0] = '\0';
                /* Only what a caller or an administrator was told must survive a power cut:
                 * puts (the OK), replays and discards. A batch of claims and marks alone
                 * commits without fsync (synchronous=NORMAL in WAL mode); losing one to a crash
                 * only re-sends an intyg, which FK answers INFO. The next fsync'd commit makes
                 * every earlier one durable too, in order. */
                bool need_fsync = false;
                for (size_t i = 0; i < n; i++) {
                        enum outbox_req_type t = reqs[i]->type;
                        need_fsync |= t == OBR_PUT || t == OBR_REPLAY || t == OBR_DISCARD;
                }
                if (need_fsync != q->sync_full) {
                        if (sqlite3_exec(q->db,
                                         need_fsync ? "PRAGMA synchronous=FULL"
                                                    : "PRAGMA synchronous=NORMAL",
                                         NULL, NULL, NULL) == SQLITE_OK)
                                q->sync_full = need_fsync;
                        else
                                LOGW("outbox_sync_mode", "error", sqlite3_errmsg(q->db));
                }
                sqlite3_stmt *st = stmt(q, S_BEGIN);
                int rc = st ? exec_stmt(q, st) : SQLITE_ERROR;
                for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
                        if (outbox_req_writes(reqs[i]->type))
                                rc = run_write(q, reqs[i]);
                if (rc == SQLITE_OK) {
                        st = stmt(q, S_COMMIT);
                        rc = st ? exec_stmt(q, st) : SQLITE_ERROR;
                }
                if (rc == SQLITE_OK) {
                        result = q->sync_full ? 2 : 1;
                } else {
                        /* All or nothing: some errors roll back by themselves. */
                        if (!sqlite3_get_autocommit(q->db)) {
                                st = stmt(q, S_ROLLBACK);
                                if (st)
                                        (void)exec_stmt(q, st);
                        }
                        result = -1;
                        LOGE("outbox_write_failed", "error", q->err, "#requests",
                             (long long)n_writes);
                        for (size_t i = 0; i < n; i++) {
                                struct outbox_req *r = reqs[i];
                                if (!outbox_req_writes(r->type))
                                        continue;
                                r->status = status_of(rc);
                                r->put_result = OB_PUT_ERROR;
                                r->changed = 0;
                                snprintf(r->detail, sizeof r->detail,
                                         "outbox database error: %.200s",
                                         q->err[0] ? q->err : sqlite3_errstr(rc));
                                outbox_records_free(r->recs, r->n_recs);
                                r->recs = NULL;
                                r->n_recs = 0;
                        }
                }
        }
        for (size_t i = 0; i < n; i++)
                if (!outbox_req_writes(reqs[i]->type))
                        run_read(q, reqs[i]);
        return result;
}

static void sq_close_db(struct sq *q)
{
        for (int i = 0; i < S_COUNT; i++)
                sqlite3_finalize(q->st[i]);
        sqlite3_close(q->db);
}

static void sq_destroy(void *impl)
{
        struct sq *q = impl;
        if (!q)
                return;
        checkpointer_stop(q);
        sq_close_db(q);
        free(q);
}

static const struct outbox_ops sqlite_ops = {
    .name = "sqlite",
    .run_batch = sq_run_batch,
    .destroy = sq_destroy,
};

static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        col_text(st, 0, out, cap);
                        rc = SQLITE_OK;
                } else if (rc == SQLITE_DONE) {
                        out[0] = '\0';
                        rc = SQLITE_OK;
                }
        }
        sqlite3_finalize(st);
        return rc;
}

/* Give this node's own in-flight records back to the queue: it restarted, so no transfer
 * of it is running any more. Other nodes' records wait for their leases to expire. */
static int recover_own(struct sq *q, int64_t now, size_t *n_out)
{
        static const char sql[] =
            "UPDATE outbox SET state=0,lease_owner=NULL,lease_until_ms=NULL,next_attempt_ms=?1,"
            "state_ms=?1 WHERE state=1 AND lease_owner=?2 RETURNING kind,id";
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return fail(q, rc);
        rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
        struct {
                int kind;
                char id[INTYG_ID_MAX + 1];
        } *list = NULL;
        size_t n = 0, cap = 0;
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, now);
                bind_text(st, 2, q->node);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        if (n == cap) {
                                size_t ncap = cap ? cap * 2 : 16;
                                void *nl = realloc(list, ncap * sizeof *list);
                                if (!nl) {
                                        rc = SQLITE_NOMEM;
                                        break;
                                }
                                list = nl;
                                cap = ncap;
                        }
                        list[n].kind = sqlite3_column_int(st, 0);
                        col_text(st, 1, list[n].id, sizeof list[n].id);
                        n++;
                }
                if (rc == SQLITE_DONE)
                        rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK)
                fail(q, rc);
        sqlite3_finalize(st);
        for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
                rc = add_event(q, list[i].kind, list[i].id, now, "resumed", "node restarted",
                               q->node);
        free(list);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                fail(q, rc);
                if (!sqlite3_get_autocommit(q->db))
                        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
                return rc;
        }
        *n_out = n;
        return SQLITE_OK;
}

static int open_db(struct sq *q, const char *path, bool readonly, int busy_ms, char *err,
                   size_t errlen)
{
        int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        int rc = sqlite3_open_v2(path, &q->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                snprintf(err, errlen, "outbox: cannot open %s: %s", path,
                         q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
                return -1;
        }
        sqlite3_extended_result_codes(q->db, 1);
        sqlite3_busy_timeout(q->db, busy_ms > 0 ? busy_ms : 5000);
        return 0;
}

struct outbox *outbox_sqlite_new(uv_loop_t *loop, const char *path, const char *node_id,
                                 const struct outbox_sqlite_opts *o, char *err, size_t errlen)
{
        if (!path || !*path || !node_id || !*node_id || strlen(node_id) > OUTBOX_NODE_MAX) {
                snprintf(err, errlen, "outbox: need a path and a node id of 1..%d characters",
                         OUTBOX_NODE_MAX);
                return NULL;
        }
        struct sq *q = calloc(1, sizeof *q);
        if (!q) {
                snprintf(err, errlen, "outbox: out of memory");
                return NULL;
        }
        snprintf(q->node, sizeof q->node, "%s", node_id);
        char buf[64];
        if (open_db(q, path, false, o ? o->busy_timeout_ms : 0, err, errlen) != 0)
                goto fail;
        int rc = pragma_text(q->db, "PRAGMA journal_mode=WAL", buf, sizeof buf);
        if (rc != SQLITE_OK || strcmp(buf, "wal") != 0) {
                snprintf(err, errlen, "outbox: %s: cannot use WAL journal: %s", path,
                         rc != SQLITE_OK ? sqlite3_errmsg(q->db) : buf);
                goto fail;
        }
        q->sync_full = true;
        if (sqlite3_exec(q->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
                goto sqlfail;
        if (o && o->max_db_bytes > 0) {
                char sql[96];
                if (pragma_text(q->db, "PRAGMA page_size", buf, sizeof buf) != SQLITE_OK)
                        goto sqlfail;
                long long page = atoll(buf) > 0 ? atoll(buf) : 4096;
                long long pages = o->max_db_bytes / page > 0 ? o->max_db_bytes / page : 1;
                snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld", pages);
                if (pragma_text(q->db, sql, buf, sizeof buf) != SQLITE_OK)
                        goto sqlfail;
        }
        if (pragma_text(q->db, "PRAGMA user_version", buf, sizeof buf) != SQLITE_OK)
                goto sqlfail;
        if (atoi(buf) > SQ_SCHEMA_VERSION) {
                snprintf(err, errlen,
                         "outbox: %s has schema version %s, newer than this gateway's %d", path,
                         buf, SQ_SCHEMA_VERSION);
                goto fail;
        }
        char *msg = NULL;
        bool migrate = atoi(buf) == 1;
        if (migrate)
                LOGI("outbox_migrate", "path", path, "from", "1", "to", "2");
        if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            (migrate && sqlite3_exec(q->db, sq_migrate_1_2, NULL, NULL, &msg) != SQLITE_OK) ||
            sqlite3_exec(q->db, sq_schema, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(q->db, "PRAGMA user_version=" SQ_STR(SQ_SCHEMA_VERSION), NULL, NULL,
                         &msg) != SQLITE_OK ||
            sqlite3_exec(q->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
                snprintf(err, errlen, "outbox: %s: cannot create the schema: %s", path,
                         msg ? msg : sqlite3_errmsg(q->db));
                sqlite3_free(msg);
                goto fail;
        }
        size_t resumed = 0;
        if (recover_own(q, wall_ms(), &resumed) != SQLITE_OK) {
                snprintf(err, errlen, "outbox: %s: resuming in-flight records: %s", path, q->err);
                goto fail;
        }
        if (resumed > 0) {
                snprintf(buf, sizeof buf, "%zu", resumed);
                LOGI("outbox_resumed", "node", q->node, "records", buf);
        }
        /* Checkpoints move to their own thread (see struct sq). */
        snprintf(q->path, sizeof q->path, "%s", path);
        if (sqlite3_exec(q->db, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL) != SQLITE_OK)
                goto sqlfail;
        /* When a checkpoint has copied everything, the next write starts the WAL over; this
         * truncates the file then, so a burst does not leave it large for good. */
        if (pragma_text(q->db, "PRAGMA journal_size_limit=" SQ_WAL_LIMIT, buf, sizeof buf) !=
            SQLITE_OK)
                goto sqlfail;
        if (checkpointer_start(q) != 0) {
                snprintf(err, errlen, "outbox: cannot start the checkpoint thread");
                goto fail;
        }
        return outbox_new_impl(loop, &sqlite_ops, q, node_id, o ? &o->common : NULL, err, errlen);
sqlfail:
        snprintf(err, errlen, "outbox: %s: %s", path, sqlite3_errmsg(q->db));
fail:
        sq_destroy(q);
        return NULL;
}

/* ---- the read-only reader ---------------------------------------------------------------- */

struct outbox_reader {
        struct sq q;
};

struct outbox_reader *outbox_reader_open(const char *path, char *err, size_t errlen)
{
        struct outbox_reader *r = calloc(1, sizeof *r);
        if (!r) {
                snprintf(err, errlen, "outbox: out of memory");
                return NULL;
        }
        if (!path || open_db(&r->q, path ? path : "", true, 0, err, errlen) != 0) {
                if (!path)
                        snprintf(err, errlen, "outbox: no path");
                outbox_reader_close(r);
                return NULL;
        }
        char buf[32];
        if (pragma_text(r->q.db, "PRAGMA user_version", buf, sizeof buf) != SQLITE_OK ||
            atoi(buf) != SQ_SCHEMA_VERSION) {
                snprintf(err, errlen, "outbox: %s is not an outbox database (%s)", path,
                         sqlite3_errmsg(r->q.db));
                outbox_reader_close(r);
                return NULL;
        }
        return r;
}

void outbox_reader_close(struct outbox_reader *r)
{
        if (!r)
                return;
        sq_close_db(&r->q);
        free(r);
}

static int reader_status(struct outbox_reader *r, int rc, char *err, size_t errlen)
{
        if (rc == SQLITE_OK)
                return OUTBOX_OK;
        snprintf(err, errlen, "outbox: %s", rc == SQLITE_NOMEM ? "out of memory" : r->q.err);
        return status_of(rc);
}

int outbox_reader_counts(struct outbox_reader *r, struct outbox_counts *out, char *err,
                         size_t errlen)
{
        return reader_status(r, q_counts(&r->q, out), err, errlen);
}

int outbox_reader_list_dead(struct outbox_reader *r, size_t offset, size_t limit,
                            struct outbox_record ***recs_out, size_t *n_out, uint64_t *total,
                            char *err, size_t errlen)
{
        *recs_out = NULL;
        *n_out = 0;
        *total = 0;
        if (limit == 0 || limit > OUTBOX_LIST_MAX || offset > INT32_MAX) {
                snprintf(err, errlen, "outbox: limit must be 1..%d", OUTBOX_LIST_MAX);
                return OUTBOX_EINVAL;
        }
        return reader_status(r, q_list_dead(&r->q, offset, limit, recs_out, n_out, total), err,
                             errlen);
}

int outbox_reader_get(struct outbox_reader *r, enum intyg_kind kind, const char *id,
                      struct outbox_detail **out, char *err, size_t errlen)
{
        *out = NULL;
        if ((kind != 0 && kind != INTYG_REGISTER && kind != INTYG_REVOKE) || !id || !*id ||
            strlen(id) > INTYG_ID_MAX) {
                snprintf(err, errlen, "outbox: bad kind or id");
                return OUTBOX_EINVAL;
        }
        int rc = q_get(&r->q, kind, id, out);
        if (rc == SQLITE_OK && !*out) {
                snprintf(err, errlen, "outbox: no record with that id");
                return OUTBOX_ENOENT;
        }
        return reader_status(r, rc, err, errlen);
}
