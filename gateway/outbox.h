/*
 * outbox.h - the durable outbox: certificates waiting for, or done with, delivery to FK.
 *
 * Owns: struct outbox (a writer thread, its request queues and one uv_async_t), the records
 * handed out by claim/get/list (the caller frees them). Storage sits behind struct outbox_ops
 * so that a shared database (PostgreSQL, several gateway nodes) can replace the embedded
 * SQLite one: nothing here assumes that one process owns the data (claims are leases).
 * Threads: every outbox_* call below is made on the loop thread unless it says otherwise;
 * every callback runs on the loop thread. Only the writer thread touches the database.
 */
#ifndef INTYGSGW_OUTBOX_H
#define INTYGSGW_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "intyg.h"
#include "limits.h"

/*
 * Crash safety: what is durable when a callback fires.
 *
 * outbox_put's callback runs on the loop thread only after the writer thread's COMMIT has
 * returned, and the database runs with journal_mode=WAL and synchronous=FULL, so the WAL has
 * been fsync'ed: OB_PUT_STORED and OB_PUT_DUPLICATE mean the record (body, hash, tags and the
 * "received" event) survives a crash of the process or of the machine from that moment on,
 * and only then may the caller be told "OK". OB_PUT_ERROR means nothing of the request was
 * written: the whole batch it was part of was rolled back. Every other write (claim, mark_*,
 * replay, discard, purge) also calls back after COMMIT; replay and discard are fsync'd like
 * puts, but a batch of claims and marks alone commits without fsync (synchronous=NORMAL): a
 * crash may undo the latest of those, which only sends an intyg to FK again (answered INFO).
 * The next fsync'd commit makes every earlier commit durable, in order.
 *
 * A claimed record is a lease (owner node id, expiry). If the node dies with records in
 * flight, they are claimable again once their lease expires (by any node), and at start-up
 * the node takes back its own in-flight records at once. So a record may be sent to FK more
 * than once after a crash (at-least-once); FK's answer to a repeat is handled by the
 * forwarder. A mark_* that arrives after the lease was lost to another claim is refused
 * (OUTBOX_ESTALE) except mark_delivered, which always wins (over queued, in flight and dead;
 * not over discarded): FK has the certificate.
 */

/* Compile-time limits of the outbox (each has a test on both sides). */
#define OUTBOX_CLAIM_MAX             256  /* records one claim may return */
#define OUTBOX_LIST_MAX              1000 /* records one list_dead page may return */
#define OUTBOX_EVENTS_MAX            200  /* newest events returned by get; older are counted */
#define OUTBOX_IDS_MAX               1000 /* ids in one replay/discard request */
#define OUTBOX_PAYLOAD_MAX           (16 * 1024 * 1024) /* bytes of one body (http.max_body <= this) */
#define OUTBOX_PURGE_CHUNK           10000 /* bodies dropped by one outbox_purge call */
#define OUTBOX_PENDING_DEFAULT       8192  /* requests waiting for the writer before put refuses */
#define OUTBOX_PENDING_BYTES_DEFAULT (256u * 1024 * 1024)     /* body bytes of the waiting puts */
#define OUTBOX_BATCH_DEFAULT         512                      /* requests per group commit */
#define OUTBOX_RETENTION_DEFAULT     (7LL * 24 * 3600 * 1000) /* ms a delivered body is kept */
#define OUTBOX_ERROR_MAX             256 /* bytes of last_error, reason, detail: longer is cut */
#define OUTBOX_NODE_MAX              64  /* characters of a node id */
#define OUTBOX_ACTOR_MAX             128 /* characters of an administrator identity */

/** Status values returned by the submitting calls and passed to callbacks (0 = OK). */
enum outbox_status {
        OUTBOX_OK = 0,
        OUTBOX_ENOMEM = -1,  /* out of memory */
        OUTBOX_EBUSY = -2,   /* too many requests waiting for the writer (opts.max_pending) */
        OUTBOX_ECLOSED = -3, /* outbox_close was called */
        OUTBOX_EINVAL = -4,  /* bad argument: over a limit, empty id, NULL record */
        OUTBOX_EIO = -5,     /* the database failed (full disk, unwritable, corrupt): rolled back */
        OUTBOX_ESTALE = -6,  /* mark_* on a record whose lease this node no longer holds */
        OUTBOX_ENOENT = -7,  /* get: no record with that id */
};

/** A stable name for a status ("ok", "io", ...), for logs and metric labels. */
const char *outbox_strerror(int status);

enum outbox_state {
        OB_QUEUED = 0,    /* waiting for its next attempt */
        OB_INFLIGHT = 1,  /* claimed by a node (lease) */
        OB_DELIVERED = 2, /* FK accepted it */
        OB_DEAD = 3,      /* final failure, kept with the reason until replayed or discarded */
        OB_DISCARDED = 4, /* dead letter an administrator gave up on; body purged */
};
#define OB_NSTATES 5

/** "queued", "inflight", "delivered", "dead", "discarded"; "?" otherwise. */
const char *outbox_state_name(enum outbox_state s);

/** What the pipeline hands over. outbox_put copies it and takes ownership of payload. */
struct outbox_item {
        enum intyg_kind kind;
        char id[INTYG_ID_MAX + 1];
        char caller[HSA_ID_MAX + 1]; /* the calling system's HSA-id (client certificate) */
        struct intyg_tags tags;
        int64_t received_ms; /* wall clock, ms since the epoch */
        char *payload;       /* the XML to send to FK (malloc'ed); taken by outbox_put */
        size_t payload_len;
};

enum outbox_put_result {
        OB_PUT_STORED = 0,    /* new record, durable */
        OB_PUT_DUPLICATE = 1, /* same (kind, id), same body: answer as the first time */
        OB_PUT_CONFLICT = 2,  /* same (kind, id), another body: refuse */
        OB_PUT_ERROR = 3,     /* technical (disk, database): nothing stored; retry later */
};

/** "stored", "duplicate", "conflict", "error". */
const char *outbox_put_result_name(enum outbox_put_result r);

/** A record as stored. Handed out by claim (with payload), get and list_dead (without). */
struct outbox_record {
        enum intyg_kind kind;
        char id[INTYG_ID_MAX + 1];
        char caller[HSA_ID_MAX + 1];
        struct intyg_tags tags;
        enum outbox_state state;
        int attempts; /* attempts started (a claim counts as one) */
        int64_t received_ms;
        int64_t next_attempt_ms;
        int64_t first_attempt_ms; /* 0 = never attempted (replay resets it: new horizon) */
        int64_t state_ms;         /* when the state last changed */
        int64_t delivered_ms;     /* 0 unless delivered */
        char last_error[OUTBOX_ERROR_MAX];
        char fk_result[16]; /* FK's resultCode: OK, INFO, ERROR */
        char fk_text[OUTBOX_ERROR_MAX];
        char lease_owner[OUTBOX_NODE_MAX + 1];
        int64_t lease_until_ms;
        int64_t lease_gen;        /* which claim this is; mark_* checks it */
        uint8_t payload_hash[32]; /* SHA-256 of the body */
        bool has_payload;         /* false once purged or discarded */
        size_t payload_len;       /* length of the stored body (kept after purge) */
        char *payload; /* the body, NUL-terminated past payload_len: claim only, NULL elsewhere */
};

/** Free a record and its payload; NULL is fine. Any thread. */
void outbox_record_free(struct outbox_record *r);

/** Free an array of n records as handed to a claim or list callback (and the array). */
void outbox_records_free(struct outbox_record **recs, size_t n);

/** One line of a record's history. */
struct outbox_event {
        enum intyg_kind kind;
        int64_t at_ms;
        char event[24]; /* received, claimed, resumed, attempt_failed, delivered, dead, ... */
        char detail[OUTBOX_ERROR_MAX];
        char actor[OUTBOX_ACTOR_MAX + 1]; /* node id or administrator identity */
};

/** Everything known about one certificate id (a register and a revoke record at most). */
struct outbox_detail {
        size_t n_records;
        struct outbox_record records[2];
        size_t n_events; /* newest OUTBOX_EVENTS_MAX, oldest first */
        size_t events_dropped;
        struct outbox_event *events;
};

/** Free a detail handed to a get callback; NULL is fine. */
void outbox_detail_free(struct outbox_detail *d);

/** Records per state, for metrics and readiness. */
struct outbox_counts {
        uint64_t n[OB_NSTATES];   /* indexed by enum outbox_state */
        uint64_t queue_depth;     /* queued + inflight */
        int64_t oldest_queued_ms; /* received_ms of the oldest queued/inflight record, 0: none */
};

/** Writer statistics (monotonic since outbox_new). */
struct outbox_stats {
        uint64_t requests; /* requests the writer executed */
        uint64_t puts;     /* put requests */
        uint64_t stored, duplicates, conflicts, put_errors;
        uint64_t batches;   /* wakeups of the writer that found work */
        uint64_t commits;   /* COMMITs of write transactions */
        uint64_t fsyncs;    /* those fsync'd (they held a put, replay or discard) */
        uint64_t rollbacks; /* batches rolled back after a database error */
        uint64_t max_batch; /* most requests in one transaction */
};

/* Callbacks: all run on the loop thread, after the request's transaction committed. */
typedef void (*outbox_put_cb)(void *arg, enum outbox_put_result r, const char *detail);
/** recs (n of them) belong to the callback: release each by mark_* or outbox_records_free. */
typedef void (*outbox_claim_cb)(void *arg, int status, struct outbox_record **recs, size_t n);
/** Done: status, and how many records changed (replay, discard, purge, mark_*: 0 or 1). */
typedef void (*outbox_done_cb)(void *arg, int status, size_t changed);
/** recs belong to the callback; total is the number of dead letters in all. */
typedef void (*outbox_list_cb)(void *arg, int status, struct outbox_record **recs, size_t n,
                               uint64_t total);
/** d belongs to the callback (outbox_detail_free); NULL unless status is OUTBOX_OK. */
typedef void (*outbox_get_cb)(void *arg, int status, struct outbox_detail *d);
typedef void (*outbox_counts_cb)(void *arg, int status, const struct outbox_counts *c);

/*
 * The storage interface. An implementation's functions run on the writer thread only, one
 * batch at a time; open-time work happens in its constructor. run_batch executes the write
 * requests of the batch in one transaction (all or nothing: on a database error every one of
 * them gets OUTBOX_EIO) and then the read requests, and fills each request's result.
 */
struct outbox_req;
struct outbox_ops {
        const char *name;
        /** Execute reqs[0..n) (writer thread): 2 = a write transaction committed durably
         *  (fsync), 1 = committed without fsync (claims and marks only), 0 = there was nothing
         *  to write, -1 = the write transaction failed and was rolled back. */
        int (*run_batch)(void *impl, struct outbox_req **reqs, size_t n);
        /** Release the connection and impl (writer thread, after the last batch). */
        void (*destroy)(void *impl);
};

struct outbox_opts {
        size_t max_pending;       /* requests waiting for the writer; 0 = OUTBOX_PENDING_DEFAULT */
        size_t max_pending_bytes; /* body bytes waiting; 0 = OUTBOX_PENDING_BYTES_DEFAULT */
        size_t batch_max;         /* requests per transaction; 0 = OUTBOX_BATCH_DEFAULT */
};

struct outbox_sqlite_opts {
        struct outbox_opts common;
        int busy_timeout_ms;  /* waiting for another process's lock; 0 = 5000 */
        int64_t max_db_bytes; /* cap on the database file (PRAGMA max_page_count); 0 = none */
};

struct outbox;

/**
 * Open (creating if need be) the SQLite outbox at PATH for node NODE_ID, take back this
 * node's in-flight records (state queued, "resumed" event) and start the writer thread.
 * Returns NULL and a message in err on failure (unwritable path, not a database, ...).
 * Blocks on the database while opening: call it at start-up, before serving. NODE_ID must
 * be unique among the nodes sharing a database and stable across restarts of one node (that
 * is how a restarted node knows its own leases). Several outboxes (nodes) may open one file.
 */
struct outbox *outbox_sqlite_new(uv_loop_t *loop, const char *path, const char *node_id,
                                 const struct outbox_sqlite_opts *o, char *err, size_t errlen);

/**
 * Generic constructor for an implementation (used by outbox_sqlite_new): takes impl, starts
 * the writer thread. On failure calls ops->destroy(impl) and returns NULL.
 */
struct outbox *outbox_new_impl(uv_loop_t *loop, const struct outbox_ops *ops, void *impl,
                               const char *node_id, const struct outbox_opts *o, char *err,
                               size_t errlen);

/**
 * Stop: refuse new requests, let the writer finish every request already submitted (their
 * callbacks fire), stop the writer, close the database and the uv_async; closed_cb(arg) runs
 * on the loop once everything is freed. ob must not be used after this call.
 */
void outbox_close(struct outbox *ob, void (*closed_cb)(void *arg), void *arg);

/**
 * Store an intyg. Never blocks. Takes item->payload (sets it to NULL) whatever it returns.
 * On 0, cb fires exactly once (after COMMIT+fsync for STORED/DUPLICATE); on a negative
 * return (EBUSY: too many requests or body bytes waiting; ECLOSED, EINVAL, ENOMEM) cb is
 * never called. Every other submitting call below follows the same rule.
 */
int outbox_put(struct outbox *ob, struct outbox_item *item, outbox_put_cb cb, void *arg)
    __attribute__((warn_unused_result));

/**
 * Claim up to max (<= OUTBOX_CLAIM_MAX) due records: queued with next_attempt <= now, or in
 * flight with a lease expired before now. They become in flight for this node until
 * now + lease_ms, and their attempts count goes up by one. A revoke is not claimed while the
 * register record of the same id is queued, in flight or dead. Oldest due first.
 */
int outbox_claim(struct outbox *ob, int64_t now_ms, size_t max, int64_t lease_ms,
                 outbox_claim_cb cb, void *arg) __attribute__((warn_unused_result));

/* Release a claimed record: each takes rec (freed now, whatever the result); cb may be NULL.
 * Stale leases: cb gets OUTBOX_ESTALE and nothing changes (delivered always applies). */
/** FK accepted: state delivered, FK's result code and text kept. */
int outbox_mark_delivered(struct outbox *ob, struct outbox_record *rec_take, const char *fk_result,
                          const char *fk_text, int64_t now_ms, outbox_done_cb cb, void *arg)
    __attribute__((warn_unused_result));
/** A technical failure: back to queued until next_attempt_ms, error kept. */
int outbox_mark_retry(struct outbox *ob, struct outbox_record *rec_take, int64_t next_attempt_ms,
                      const char *error, int64_t now_ms, outbox_done_cb cb, void *arg)
    __attribute__((warn_unused_result));
/** A final failure (FK refused, horizon passed): dead letter with the reason. */
int outbox_mark_dead(struct outbox *ob, struct outbox_record *rec_take, const char *fk_result,
                     const char *reason, int64_t now_ms, outbox_done_cb cb, void *arg)
    __attribute__((warn_unused_result));

/**
 * Administrator actions on dead letters, by id: kind 0 matches both kinds. ids == NULL with
 * n_ids == 0 means every dead letter. actor is recorded in each record's history.
 * Replay: dead -> queued, attempts 0, next attempt now_ms, a new horizon.
 * Discard: dead -> discarded, body purged. cb gets how many records changed.
 */
int outbox_replay(struct outbox *ob, enum intyg_kind kind, const char *const *ids, size_t n_ids,
                  const char *actor, int64_t now_ms, outbox_done_cb cb, void *arg)
    __attribute__((warn_unused_result));
int outbox_discard(struct outbox *ob, enum intyg_kind kind, const char *const *ids, size_t n_ids,
                   const char *actor, int64_t now_ms, outbox_done_cb cb, void *arg)
    __attribute__((warn_unused_result));

/** Dead letters, newest first, offset/limit (limit <= OUTBOX_LIST_MAX). No bodies. */
int outbox_list_dead(struct outbox *ob, size_t offset, size_t limit, outbox_list_cb cb, void *arg)
    __attribute__((warn_unused_result));

/** The records with this id (kind 0: both kinds) and their history. No bodies. */
int outbox_get(struct outbox *ob, enum intyg_kind kind, const char *id, outbox_get_cb cb, void *arg)
    __attribute__((warn_unused_result));

/** Records per state and the oldest queued age. */
int outbox_counts(struct outbox *ob, outbox_counts_cb cb, void *arg)
    __attribute__((warn_unused_result));

/**
 * Drop the bodies of records delivered before before_ms (metadata and history stay). At most
 * OUTBOX_PURGE_CHUNK per call so one purge never holds up puts: call again while changed is
 * that many. Typically from a periodic timer with before = now - retention.
 */
int outbox_purge(struct outbox *ob, int64_t before_ms, outbox_done_cb cb, void *arg)
    __attribute__((warn_unused_result));

/** False from a failed write transaction until a later one commits. Any thread. */
bool outbox_healthy(const struct outbox *ob);

/** A copy of the writer statistics. Any thread. */
void outbox_stats_get(const struct outbox *ob, struct outbox_stats *out);

/** The node id given at creation. */
const char *outbox_node_id(const struct outbox *ob);

/*
 * Synchronous read-only access to a SQLite outbox, for the command line (no loop, no writer,
 * no recovery: it never changes the database). Any one thread at a time per reader.
 */
struct outbox_reader;
struct outbox_reader *outbox_reader_open(const char *path, char *err, size_t errlen);
void outbox_reader_close(struct outbox_reader *r);
int outbox_reader_counts(struct outbox_reader *r, struct outbox_counts *out, char *err,
                         size_t errlen);
/** *recs_out (n_out of them) for outbox_records_free. */
int outbox_reader_list_dead(struct outbox_reader *r, size_t offset, size_t limit,
                            struct outbox_record ***recs_out, size_t *n_out, uint64_t *total,
                            char *err, size_t errlen);
/** OUTBOX_ENOENT when no record has that id; *out for outbox_detail_free. */
int outbox_reader_get(struct outbox_reader *r, enum intyg_kind kind, const char *id,
                      struct outbox_detail **out, char *err, size_t errlen);

/*
 * For implementations of struct outbox_ops only: one request as the writer thread sees it.
 * The generic layer (outbox.c) fills the inputs and, for puts, the SHA-256 of the payload;
 * run_batch fills status and the outputs; outbox.c calls the callback on the loop thread.
 */
enum outbox_req_type {
        OBR_PUT,
        OBR_CLAIM,
        OBR_MARK,
        OBR_REPLAY,
        OBR_DISCARD,
        OBR_PURGE,
        OBR_LIST_DEAD, /* reads from here on: run after the write transaction */
        OBR_GET,
        OBR_COUNTS,
};
enum outbox_mark { OBM_DELIVERED, OBM_RETRY, OBM_DEAD };

struct outbox_req {
        struct outbox_req *next;
        enum outbox_req_type type;
        const char *node_id; /* the submitting node (lease owner, event actor) */
        int status;          /* OUTBOX_OK or a negative enum outbox_status */

        /* OBR_PUT */
        struct outbox_item item; /* payload owned by the request */
        uint8_t hash[32];
        enum outbox_put_result put_result;
        char detail[OUTBOX_ERROR_MAX];

        /* OBR_CLAIM, OBR_MARK, admin */
        int64_t now_ms;
        size_t max;
        int64_t lease_ms;
        enum outbox_mark mark;
        enum intyg_kind kind; /* 0: any (admin) */
        char id[INTYG_ID_MAX + 1];
        int64_t lease_gen;
        int64_t next_attempt_ms;
        char fk_result[16];
        char text[OUTBOX_ERROR_MAX]; /* fk_text, error or reason */
        char **ids;                  /* replay/discard; NULL = every dead letter */
        size_t n_ids;
        char actor[OUTBOX_ACTOR_MAX + 1];
        int64_t before_ms;
        size_t offset, limit;

        /* outputs */
        struct outbox_record **recs;
        size_t n_recs;
        uint64_t total;
        size_t changed;
        struct outbox_detail *detail_out;
        struct outbox_counts counts;

        void (*cb)(void);
        void *arg;
};

/** Whether a request type writes (runs inside the batch's transaction). */
static inline bool outbox_req_writes(enum outbox_req_type t)
{
        return t < OBR_LIST_DEAD;
}

#endif
