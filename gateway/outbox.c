/*
 * outbox.c - the storage-independent half of the outbox: request queue, writer thread,
 * completion through uv_async_t, and the outbox_* entry points that dispatch to outbox_ops.
 *
 * Owns: struct outbox, its thread, mutex, condition, uv_async_t and every queued request.
 * Threads: outbox_* entry points and callbacks on the loop thread; writer_main on the writer
 * thread, which alone calls ops->run_batch and ops->destroy. Queues are under ob->mu.
 */
#include "outbox.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log.h"

struct outbox {
        uv_loop_t *loop;
        uv_async_t async;
        uv_thread_t thread;
        uv_mutex_t mu;
        uv_cond_t cv;
        const struct outbox_ops *ops;
        void *impl; /* the writer thread's, until destroy */
        char node_id[OUTBOX_NODE_MAX + 1];
        size_t max_pending, max_pending_bytes, batch_max;
        struct outbox_req **batch; /* writer thread's scratch, batch_max entries */

        /* under mu */
        struct outbox_req *pend_head, *pend_tail;
        size_t n_pending;
        size_t pending_bytes; /* bodies of the waiting puts */
        struct outbox_req *done_head, *done_tail;
        bool stopping;
        bool writer_done;
        struct outbox_stats stats;

        /* loop thread only */
        size_t outstanding; /* submitted, callback not yet run */
        bool closing;
        bool joined;
        void (*closed_cb)(void *arg);
        void *closed_arg;

        atomic_bool healthy;
};

const char *outbox_strerror(int status)
{
        switch (status) {
        case OUTBOX_OK:
                return "ok";
        case OUTBOX_ENOMEM:
                return "nomem";
        case OUTBOX_EBUSY:
                return "busy";
        case OUTBOX_ECLOSED:
                return "closed";
        case OUTBOX_EINVAL:
                return "invalid";
        case OUTBOX_EIO:
                return "io";
        case OUTBOX_ESTALE:
                return "stale";
        case OUTBOX_ENOENT:
                return "notfound";
        }
        return "?";
}

const char *outbox_state_name(enum outbox_state s)
{
        switch (s) {
        case OB_QUEUED:
                return "queued";
        case OB_INFLIGHT:
                return "inflight";
        case OB_DELIVERED:
                return "delivered";
        case OB_DEAD:
                return "dead";
        case OB_DISCARDED:
                return "discarded";
        }
        return "?";
}

const char *outbox_put_result_name(enum outbox_put_result r)
{
        switch (r) {
        case OB_PUT_STORED:
                return "stored";
        case OB_PUT_DUPLICATE:
                return "duplicate";
        case OB_PUT_CONFLICT:
                return "conflict";
        case OB_PUT_ERROR:
                return "error";
        }
        return "?";
}

void outbox_record_free(struct outbox_record *r)
{
        if (!r)
                return;
        free(r->payload);
        free(r);
}

void outbox_records_free(struct outbox_record **recs, size_t n)
{
        if (!recs)
                return;
        for (size_t i = 0; i < n; i++)
                outbox_record_free(recs[i]);
        free(recs);
}

void outbox_detail_free(struct outbox_detail *d)
{
        if (!d)
                return;
        free(d->events);
        free(d);
}

static void req_free(struct outbox_req *r)
{
        if (!r)
                return;
        free(r->item.payload);
        outbox_records_free(r->recs, r->n_recs);
        if (r->ids) {
                for (size_t i = 0; i < r->n_ids; i++)
                        free(r->ids[i]);
                free(r->ids);
        }
        outbox_detail_free(r->detail_out);
        free(r);
}

/* ---- writer thread ---------------------------------------------------------------------- */

static void hash_payload(struct outbox_req *r)
{
        unsigned int len = 0;
        if (!EVP_Digest(r->item.payload ? r->item.payload : "", r->item.payload_len, r->hash, &len,
                        EVP_sha256(), NULL) ||
            len != sizeof r->hash) {
                /* Cannot happen with the default provider; refuse rather than store a zero hash. */
                r->status = OUTBOX_EIO;
                r->put_result = OB_PUT_ERROR;
                snprintf(r->detail, sizeof r->detail, "outbox: SHA-256 of the payload failed");
        }
}

/* Writer thread: hand a finished batch back to the loop (one uv_async_send per batch). */
static void writer_hand_back(struct outbox *ob, struct outbox_req **reqs, size_t n)
{
        uv_mutex_lock(&ob->mu);
        for (size_t i = 0; i < n; i++) {
                reqs[i]->next = NULL;
                if (ob->done_tail)
                        ob->done_tail->next = reqs[i];
                else
                        ob->done_head = reqs[i];
                ob->done_tail = reqs[i];
        }
        uv_mutex_unlock(&ob->mu);
        uv_async_send(&ob->async);
}

static void writer_main(void *p)
{
        struct outbox *ob = p;
        for (;;) {
                uv_mutex_lock(&ob->mu);
                while (!ob->pend_head && !ob->stopping)
                        uv_cond_wait(&ob->cv, &ob->mu);
                if (!ob->pend_head) {
                        uv_mutex_unlock(&ob->mu);
                        break;
                }
                size_t n = 0;
                while (ob->pend_head && n < ob->batch_max) {
                        struct outbox_req *r = ob->pend_head;
                        ob->pend_head = r->next;
                        r->next = NULL;
                        ob->batch[n++] = r;
                        ob->pending_bytes -= r->item.payload_len;
                }
                if (!ob->pend_head)
                        ob->pend_tail = NULL;
                ob->n_pending -= n;
                uv_mutex_unlock(&ob->mu);

                /* Hash outside the lock and the transaction; a failed hash is refused alone
                 * (moved behind the runnable ones, which run_batch sees as batch[0..runnable)). */
                size_t runnable = 0;
                for (size_t i = 0; i < n; i++) {
                        struct outbox_req *r = ob->batch[i];
                        if (r->type == OBR_PUT)
                                hash_payload(r);
                        if (r->status == OUTBOX_OK) {
                                ob->batch[i] = ob->batch[runnable];
                                ob->batch[runnable++] = r;
                        }
                }
                int committed = 0;
                if (runnable > 0)
                        committed = ob->ops->run_batch(ob->impl, ob->batch, runnable);
                for (size_t i = 0; i < n; i++) { /* the body is on disk (or refused): drop it */
                        free(ob->batch[i]->item.payload);
                        ob->batch[i]->item.payload = NULL;
                }

                uv_mutex_lock(&ob->mu);
                ob->stats.batches++;
                ob->stats.requests += runnable;
                if (committed > 0)
                        ob->stats.commits++;
                if (committed > 1)
                        ob->stats.fsyncs++;
                if (committed < 0)
                        ob->stats.rollbacks++;
                if (runnable > ob->stats.max_batch)
                        ob->stats.max_batch = runnable;
                uv_mutex_unlock(&ob->mu);
                if (committed > 0)
                        atomic_store(&ob->healthy, true);
                else if (committed < 0)
                        atomic_store(&ob->healthy, false);
                writer_hand_back(ob, ob->batch, n);
        }
        ob->ops->destroy(ob->impl);
        ob->impl = NULL;
        uv_mutex_lock(&ob->mu);
        ob->writer_done = true;
        uv_mutex_unlock(&ob->mu);
        uv_async_send(&ob->async);
}

/* ---- loop thread ------------------------------------------------------------------------ */

static void complete(struct outbox *ob, struct outbox_req *r)
{
        switch (r->type) {
        case OBR_PUT:
                if (r->status != OUTBOX_OK)
                        r->put_result = OB_PUT_ERROR;
                ((outbox_put_cb)r->cb)(r->arg, r->put_result, r->detail);
                break;
        case OBR_CLAIM: {
                struct outbox_record **recs = r->recs;
                size_t n = r->n_recs;
                r->recs = NULL;
                r->n_recs = 0;
                ((outbox_claim_cb)r->cb)(r->arg, r->status, recs, n);
                break;
        }
        case OBR_MARK:
        case OBR_REPLAY:
        case OBR_DISCARD:
        case OBR_PURGE:
                if (r->cb)
                        ((outbox_done_cb)r->cb)(r->arg, r->status, r->changed);
                break;
        case OBR_LIST_DEAD: {
                struct outbox_record **recs = r->recs;
                size_t n = r->n_recs;
                r->recs = NULL;
                r->n_recs = 0;
                ((outbox_list_cb)r->cb)(r->arg, r->status, recs, n, r->total);
                break;
        }
        case OBR_GET: {
                struct outbox_detail *d = r->status == OUTBOX_OK ? r->detail_out : NULL;
                if (d)
                        r->detail_out = NULL;
                ((outbox_get_cb)r->cb)(r->arg, r->status, d);
                break;
        }
        case OBR_COUNTS:
                ((outbox_counts_cb)r->cb)(r->arg, r->status,
                                          r->status == OUTBOX_OK ? &r->counts : NULL);
                break;
        }
}

static void on_closed(uv_handle_t *h)
{
        struct outbox *ob = h->data;
        void (*cb)(void *) = ob->closed_cb;
        void *arg = ob->closed_arg;
        uv_cond_destroy(&ob->cv);
        uv_mutex_destroy(&ob->mu);
        free(ob->batch);
        free(ob);
        if (cb)
                cb(arg);
}

static void on_async(uv_async_t *h)
{
        struct outbox *ob = h->data;
        uv_mutex_lock(&ob->mu);
        struct outbox_req *list = ob->done_head;
        ob->done_head = ob->done_tail = NULL;
        bool finished = ob->writer_done;
        uv_mutex_unlock(&ob->mu);

        while (list) {
                struct outbox_req *r = list;
                list = r->next;
                if (r->type == OBR_PUT) {
                        uv_mutex_lock(&ob->mu);
                        ob->stats.puts++;
                        switch (r->status != OUTBOX_OK ? OB_PUT_ERROR : r->put_result) {
                        case OB_PUT_STORED:
                                ob->stats.stored++;
                                break;
                        case OB_PUT_DUPLICATE:
                                ob->stats.duplicates++;
                                break;
                        case OB_PUT_CONFLICT:
                                ob->stats.conflicts++;
                                break;
                        case OB_PUT_ERROR:
                                ob->stats.put_errors++;
                                break;
                        }
                        uv_mutex_unlock(&ob->mu);
                }
                complete(ob, r);
                req_free(r);
                ob->outstanding--;
        }
        if (ob->outstanding == 0 && !ob->closing)
                uv_unref((uv_handle_t *)&ob->async);
        if (finished && ob->closing && !ob->joined) {
                ob->joined = true;
                uv_thread_join(&ob->thread);
                uv_close((uv_handle_t *)&ob->async, on_closed);
        }
}

static void free_unstarted(uv_handle_t *h)
{
        struct outbox *ob = h->data;
        uv_cond_destroy(&ob->cv);
        uv_mutex_destroy(&ob->mu);
        free(ob->batch);
        free(ob);
}

struct outbox *outbox_new_impl(uv_loop_t *loop, const struct outbox_ops *ops, void *impl,
                               const char *node_id, const struct outbox_opts *o, char *err,
                               size_t errlen)
{
        struct outbox *ob = NULL;
        if (!loop || !ops || !node_id || !*node_id || strlen(node_id) > OUTBOX_NODE_MAX) {
                snprintf(err, errlen, "outbox: node id must be 1..%d characters", OUTBOX_NODE_MAX);
                goto fail;
        }
        ob = calloc(1, sizeof *ob);
        if (!ob)
                goto nomem;
        ob->loop = loop;
        ob->ops = ops;
        ob->impl = impl;
        snprintf(ob->node_id, sizeof ob->node_id, "%s", node_id);
        ob->max_pending = o && o->max_pending ? o->max_pending : OUTBOX_PENDING_DEFAULT;
        ob->batch_max = o && o->batch_max ? o->batch_max : OUTBOX_BATCH_DEFAULT;
        ob->max_pending_bytes =
            o && o->max_pending_bytes ? o->max_pending_bytes : OUTBOX_PENDING_BYTES_DEFAULT;
        atomic_init(&ob->healthy, true);
        ob->batch = calloc(ob->batch_max, sizeof *ob->batch);
        if (!ob->batch)
                goto nomem;
        if (uv_mutex_init(&ob->mu) != 0) {
                snprintf(err, errlen, "outbox: mutex init failed");
                goto fail;
        }
        if (uv_cond_init(&ob->cv) != 0) {
                uv_mutex_destroy(&ob->mu);
                snprintf(err, errlen, "outbox: condition init failed");
                goto fail;
        }
        int rc = uv_async_init(loop, &ob->async, on_async);
        if (rc != 0) {
                uv_cond_destroy(&ob->cv);
                uv_mutex_destroy(&ob->mu);
                snprintf(err, errlen, "outbox: uv_async_init: %s", uv_strerror(rc));
                goto fail;
        }
        ob->async.data = ob;
        uv_unref((uv_handle_t *)&ob->async);
        rc = uv_thread_create(&ob->thread, writer_main, ob);
        if (rc != 0) {
                snprintf(err, errlen, "outbox: writer thread: %s", uv_strerror(rc));
                ops->destroy(impl);
                uv_close((uv_handle_t *)&ob->async, free_unstarted); /* memory freed there */
                return NULL;
        }
        return ob;
nomem:
        snprintf(err, errlen, "outbox: out of memory");
fail:
        if (ob)
                free(ob->batch);
        free(ob);
        if (ops && impl)
                ops->destroy(impl);
        return NULL;
}

void outbox_close(struct outbox *ob, void (*closed_cb)(void *arg), void *arg)
{
        if (!ob || ob->closing)
                return;
        ob->closing = true;
        ob->closed_cb = closed_cb;
        ob->closed_arg = arg;
        uv_ref((uv_handle_t *)&ob->async); /* keep the loop alive until the writer is gone */
        uv_mutex_lock(&ob->mu);
        ob->stopping = true;
        uv_cond_signal(&ob->cv);
        uv_mutex_unlock(&ob->mu);
}

bool outbox_healthy(const struct outbox *ob)
{
        return atomic_load(&((struct outbox *)ob)->healthy);
}

void outbox_stats_get(const struct outbox *ob, struct outbox_stats *out)
{
        struct outbox *m = (struct outbox *)ob;
        uv_mutex_lock(&m->mu);
        *out = m->stats;
        uv_mutex_unlock(&m->mu);
}

const char *outbox_node_id(const struct outbox *ob)
{
        return ob->node_id;
}

static struct outbox_req *req_new(struct outbox *ob, enum outbox_req_type t, void (*cb)(void),
                                  void *arg)
{
        struct outbox_req *r = calloc(1, sizeof *r);
        if (!r)
                return NULL;
        r->type = t;
        r->node_id = ob->node_id;
        r->cb = cb;
        r->arg = arg;
        return r;
}

/* Queue r for the writer; on failure r is freed and the status returned. */
static int submit(struct outbox *ob, struct outbox_req *r)
{
        if (ob->closing) {
                req_free(r);
                return OUTBOX_ECLOSED;
        }
        uv_mutex_lock(&ob->mu);
        if (ob->n_pending >= ob->max_pending ||
            (ob->pending_bytes > 0 &&
             ob->pending_bytes + r->item.payload_len > ob->max_pending_bytes)) {
                uv_mutex_unlock(&ob->mu);
                req_free(r);
                return OUTBOX_EBUSY;
        }
        if (ob->pend_tail)
                ob->pend_tail->next = r;
        else
                ob->pend_head = r;
        ob->pend_tail = r;
        ob->n_pending++;
        ob->pending_bytes += r->item.payload_len;
        uv_cond_signal(&ob->cv);
        uv_mutex_unlock(&ob->mu);
        if (ob->outstanding++ == 0)
                uv_ref((uv_handle_t *)&ob->async);
        return OUTBOX_OK;
}

static bool id_ok(const char *id)
{
        return id && *id && strlen(id) <= INTYG_ID_MAX;
}

static bool kind_ok(enum intyg_kind k)
{
        return k == INTYG_REGISTER || k == INTYG_REVOKE;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
        snprintf(dst, cap, "%s", src ? src : "");
}

int outbox_put(struct outbox *ob, struct outbox_item *item, outbox_put_cb cb, void *arg)
{
        char *payload = item ? item->payload : NULL;
        if (item)
                item->payload = NULL;
        if (!ob || !item || !cb || !kind_ok(item->kind) || !id_ok(item->id) || !payload ||
            item->payload_len == 0 || item->payload_len > OUTBOX_PAYLOAD_MAX ||
            strnlen(item->caller, sizeof item->caller) >= sizeof item->caller) {
                free(payload);
                return OUTBOX_EINVAL;
        }
        struct outbox_req *r = req_new(ob, OBR_PUT, (void (*)(void))cb, arg);
        if (!r) {
                free(payload);
                return OUTBOX_ENOMEM;
        }
        r->item = *item;
        r->item.payload = payload;
        /* Make every string terminated whatever the caller left in the arrays. */
        r->item.id[sizeof r->item.id - 1] = '\0';
        r->item.tags.unit_hsa[sizeof r->item.tags.unit_hsa - 1] = '\0';
        r->item.tags.followup_hsa[sizeof r->item.tags.followup_hsa - 1] = '\0';
        r->item.tags.provider_hsa[sizeof r->item.tags.provider_hsa - 1] = '\0';
        r->item.tags.county[sizeof r->item.tags.county - 1] = '\0';
        r->item.tags.municipality[sizeof r->item.tags.municipality - 1] = '\0';
        return submit(ob, r);
}

int outbox_claim(struct outbox *ob, int64_t now_ms, size_t max, int64_t lease_ms,
                 outbox_claim_cb cb, void *arg)
{
        if (!ob || !cb || max == 0 || max > OUTBOX_CLAIM_MAX || lease_ms <= 0)
                return OUTBOX_EINVAL;
        struct outbox_req *r = req_new(ob, OBR_CLAIM, (void (*)(void))cb, arg);
        if (!r)
                return OUTBOX_ENOMEM;
        r->now_ms = now_ms;
        r->max = max;
        r->lease_ms = lease_ms;
        return submit(ob, r);
}

static int mark(struct outbox *ob, struct outbox_record *rec, enum outbox_mark m,
                const char *fk_result, const char *text, int64_t next_ms, int64_t now_ms,
                outbox_done_cb cb, void *arg)
{
        if (!ob || !rec) {
                outbox_record_free(rec);
                return OUTBOX_EINVAL;
        }
        struct outbox_req *r = req_new(ob, OBR_MARK, (void (*)(void))cb, arg);
        if (!r) {
                outbox_record_free(rec);
                return OUTBOX_ENOMEM;
        }
        r->mark = m;
        r->kind = rec->kind;
        copy_str(r->id, sizeof r->id, rec->id);
        r->lease_gen = rec->lease_gen;
        r->next_attempt_ms = next_ms;
        r->now_ms = now_ms;
        copy_str(r->fk_result, sizeof r->fk_result, fk_result);
        copy_str(r->text, sizeof r->text, text);
        outbox_record_free(rec);
        return submit(ob, r);
}

int outbox_mark_delivered(struct outbox *ob, struct outbox_record *rec_take, const char *fk_result,
                          const char *fk_text, int64_t now_ms, outbox_done_cb cb, void *arg)
{
        return mark(ob, rec_take, OBM_DELIVERED, fk_result, fk_text, 0, now_ms, cb, arg);
}

int outbox_mark_retry(struct outbox *ob, struct outbox_record *rec_take, int64_t next_attempt_ms,
                      const char *error, int64_t now_ms, outbox_done_cb cb, void *arg)
{
        return mark(ob, rec_take, OBM_RETRY, "", error, next_attempt_ms, now_ms, cb, arg);
}

int outbox_mark_dead(struct outbox *ob, struct outbox_record *rec_take, const char *fk_result,
                     const char *reason, int64_t now_ms, outbox_done_cb cb, void *arg)
{
        return mark(ob, rec_take, OBM_DEAD, fk_result, reason, 0, now_ms, cb, arg);
}

static int admin(struct outbox *ob, enum outbox_req_type t, enum intyg_kind kind,
                 const char *const *ids, size_t n_ids, const char *actor, int64_t now_ms,
                 outbox_done_cb cb, void *arg)
{
        if (!ob || (kind != 0 && !kind_ok(kind)) || n_ids > OUTBOX_IDS_MAX || (n_ids > 0 && !ids) ||
            (ids && n_ids == 0) || !actor || !*actor || strlen(actor) > OUTBOX_ACTOR_MAX)
                return OUTBOX_EINVAL;
        for (size_t i = 0; i < n_ids; i++)
                if (!id_ok(ids[i]))
                        return OUTBOX_EINVAL;
        struct outbox_req *r = req_new(ob, t, (void (*)(void))cb, arg);
        if (!r)
                return OUTBOX_ENOMEM;
        r->kind = kind;
        r->now_ms = now_ms;
        copy_str(r->actor, sizeof r->actor, actor);
        if (n_ids > 0) {
                r->ids = calloc(n_ids, sizeof *r->ids);
                if (!r->ids) {
                        req_free(r);
                        return OUTBOX_ENOMEM;
                }
                for (size_t i = 0; i < n_ids; i++) {
                        r->ids[i] = strdup(ids[i]);
                        r->n_ids = i + 1;
                        if (!r->ids[i]) {
                                req_free(r);
                                return OUTBOX_ENOMEM;
                        }
                }
        }
        return submit(ob, r);
}

int outbox_replay(struct outbox *ob, enum intyg_kind kind, const char *const *ids, size_t n_ids,
                  const char *actor, int64_t now_ms, outbox_done_cb cb, void *arg)
{
        return admin(ob, OBR_REPLAY, kind, ids, n_ids, actor, now_ms, cb, arg);
}

int outbox_discard(struct outbox *ob, enum intyg_kind kind, const char *const *ids, size_t n_ids,
                   const char *actor, int64_t now_ms, outbox_done_cb cb, void *arg)
{
        return admin(ob, OBR_DISCARD, kind, ids, n_ids, actor, now_ms, cb, arg);
}

int outbox_list_dead(struct outbox *ob, size_t offset, size_t limit, outbox_list_cb cb, void *arg)
{
        if (!ob || !cb || limit == 0 || limit > OUTBOX_LIST_MAX || offset > INT32_MAX)
                return OUTBOX_EINVAL;
        struct outbox_req *r = req_new(ob, OBR_LIST_DEAD, (void (*)(void))cb, arg);
        if (!r)
                return OUTBOX_ENOMEM;
        r->offset = offset;
        r->limit = limit;
        return submit(ob, r);
}

int outbox_get(struct outbox *ob, enum intyg_kind kind, const char *id, outbox_get_cb cb, void *arg)
{
        if (!ob || !cb || (kind != 0 && !kind_ok(kind)) || !id_ok(id))
                return OUTBOX_EINVAL;
        struct outbox_req *r = req_new(ob, OBR_GET, (void (*)(void))cb, arg);
        if (!r)
                return OUTBOX_ENOMEM;
        r->kind = kind;
        copy_str(r->id, sizeof r->id, id);
        return submit(ob, r);
}

int outbox_counts(struct outbox *ob, outbox_counts_cb cb, void *arg)
{
        if (!ob || !cb)
                return OUTBOX_EINVAL;
        struct outbox_req *r = req_new(ob, OBR_COUNTS, (void (*)(void))cb, arg);
        if (!r)
                return OUTBOX_ENOMEM;
        return submit(ob, r);
}

int outbox_purge(struct outbox *ob, int64_t before_ms, outbox_done_cb cb, void *arg)
{
        if (!ob)
                return OUTBOX_EINVAL;
        struct outbox_req *r = req_new(ob, OBR_PURGE, (void (*)(void))cb, arg);
        if (!r)
                return OUTBOX_ENOMEM;
        r->before_ms = before_ms;
        return submit(ob, r);
}
