/*
 * forward.c - delivery to FK. Two threads, one owner each:
 *  - the loop thread (struct forwarder): claims from the outbox into a ready ring, the
 *    circuit breaker, what each answer means (judge), the outbox marks, metrics and logs;
 *  - the delivery thread (struct fwd_io): its own libuv loop driving libcurl multi (after
 *    curl's multi-uv.c, hardened: one uv_poll_t per curl socket, one uv_timer_t), so TLS to FK,
 *    its syscalls and parsing FK's answers never sit in front of a caller's request. It runs
 *    at a lower priority (nice +FWD_NICE): delivery is the work that may wait.
 * A struct transfer is the loop thread's until it is queued to the delivery thread (start_head),
 * the delivery thread's while libcurl has it (every curl call is made there), and the loop
 * thread's again once it is queued back (done) with its outcome.
 */
#include "forward.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "outbox.h"
#include "retry.h"
#include "riv_soap.h"
#include "server.h"
#include "xmlsafe.h"

#define FK_RESPONSE_MAX (1024 * 1024)   /* bytes of one FK answer we read */
#define FK_LEASE_MS     (5 * 60 * 1000) /* a claim's lease: longer than any attempt */
#define FK_READY_MAX    512             /* claimed records waiting for a transfer slot */
#define FWD_NICE        5               /* the delivery thread's nice, above the loop's */
#define FWD_POOL_MAX    64              /* idle easy handles the delivery thread keeps */

struct fwd_io;

struct sock_ctx {
        uv_poll_t poll;
        curl_socket_t fd;
        struct fwd_io *io;
};

struct transfer {
        struct transfer *next; /* in to_start or done */
        struct outbox_record *rec;
        enum riv_contract contract;
        /* set by the loop thread before queueing: what the delivery thread needs */
        char *body;
        size_t body_len;
        char *url, *ca, *cert, *key;
        long timeout_ms;
        unsigned gen; /* the configuration generation its TLS files and timeout are from */
        uint64_t queued_ns;
        /* the delivery thread's while in flight */
        CURL *easy;
        char *resp;
        size_t resp_len;
        char errbuf[CURL_ERROR_SIZE];
        /* the outcome, filled by the delivery thread before it hands the transfer back */
        CURLcode cc;
        long http;
        uint64_t done_ns;
        int parsed; /* riv_soap_parse_result's return */
        char code[16], eid[32], rtext[256];
};

/* The delivery thread. Only mu's fields cross threads. */
struct fwd_io {
        uv_thread_t thread;
        bool started;
        uv_loop_t loop;
        uv_async_t wake; /* the loop thread -> here: transfers to start, limits, stop */
        uv_timer_t timeout;
        CURLM *multi;
        long applied_conns;
        /* Idle easy handles, reused while the configuration generation they were set up for
         * holds: an easy handle per transfer cost an allocation-heavy init and cleanup each. */
        CURL *pool[FWD_POOL_MAX];
        unsigned pool_gen[FWD_POOL_MAX];
        int n_pool;
        struct curl_slist *hdr[2]; /* request headers: [0] register, [1] revoke */
        /* FK's answers are parsed with one kept parser: a fresh libxml2 context per answer was
         * about a third of this thread's instructions (callgrind). */
        struct xmlsafe_pool *xml_pool;
        struct xmlsafe_parser *xml;
        uv_mutex_t mu;
        struct transfer *start_head, *start_tail; /* under mu */
        long want_conns;                          /* under mu */
        bool stop;                                /* under mu */
        struct forwarder *f;
};

struct forwarder {
        struct server *srv;
        struct fwd_io io;
        uv_async_t done_async;                  /* the delivery thread -> the loop thread: done */
        struct transfer *done_head, *done_tail; /* under io.mu */
        int in_flight;
        bool claiming;
        bool rekick; /* kicked while a claim was out: it may have missed newer records */
        bool closing;
        bool async_closed;
        void (*closed_cb)(void *);
        void *closed_arg;
        struct breaker breaker;
        uint64_t rng;
        /* Claimed ahead (a ring): a finished transfer starts the next one at once instead of
         * waiting for a claim queued behind the outbox's group commit. Only while the circuit
         * is closed; released back to the queue when it opens or on close. Leases (5 min) are
         * far longer than the ring takes to drain at any rate FK answers. */
        struct outbox_record *ready[FK_READY_MAX];
        size_t ready_head, n_ready;
        /* copied from the config so that a reload never leaves dangling pointers */
        char *url, *revoke_url, *logical_address, *ca, *cert, *key;
        int concurrency, timeout_ms, retry_base_ms, retry_max_ms, horizon_s;
        unsigned cfg_gen; /* bumped by every reconfigure */
        bool enabled;
};

static int64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *forward_revoke_url(const char *u)
{
        const char *needle = "RegisterCertificate/3";
        const char *p = strstr(u, needle);
        size_t n = strlen(u) + 32;
        char *out = malloc(n);
        if (!out)
                return NULL;
        if (p)
                snprintf(out, n, "%.*sRevokeCertificate/2%s", (int)(p - u), u, p + strlen(needle));
        else
                snprintf(out, n, "%s", u);
        return out;
}

static void set_str(char **slot, const char *v)
{
        free(*slot);
        *slot = v ? strdup(v) : NULL;
}

void forwarder_reconfigure(struct forwarder *f, const struct config *cfg)
{
        set_str(&f->url, cfg->fk_url);
        free(f->revoke_url);
        f->revoke_url = forward_revoke_url(cfg->fk_url);
        set_str(&f->logical_address, cfg->fk_logical_address);
        set_str(&f->ca, cfg->fk_ca);
        set_str(&f->cert, cfg->fk_client_cert);
        set_str(&f->key, cfg->fk_client_key);
        f->concurrency = cfg->fk_concurrency;
        f->timeout_ms = cfg->fk_timeout_ms;
        f->retry_base_ms = cfg->retry_base_ms;
        f->retry_max_ms = cfg->retry_max_ms;
        f->horizon_s = cfg->retry_horizon_s;
        f->enabled = cfg->forward_enabled;
        f->cfg_gen++;
        breaker_init(&f->breaker, cfg->breaker_failures, cfg->breaker_open_ms,
                     (int64_t)cfg->breaker_open_ms * 30, (int64_t)cfg->fk_timeout_ms + 1000);
        uv_mutex_lock(&f->io.mu);
        f->io.want_conns = f->concurrency;
        uv_mutex_unlock(&f->io.mu);
        if (f->io.started)
                uv_async_send(&f->io.wake);
}

/* ---- the delivery thread ---------------------------------------------------------------- */

static void io_check_done(struct fwd_io *io);

static void on_poll(uv_poll_t *p, int status, int events)
{
        struct sock_ctx *s = p->data;
        int flags = 0;
        if (status < 0)
                flags = CURL_CSELECT_ERR;
        if (events & UV_READABLE)
                flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
                flags |= CURL_CSELECT_OUT;
        int running;
        struct fwd_io *io = s->io;
        curl_multi_socket_action(io->multi, s->fd, flags, &running);
        io_check_done(io);
}

static void on_poll_closed(uv_handle_t *h)
{
        free(h->data);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
        (void)e;
        struct fwd_io *io = userp;
        struct sock_ctx *s = socketp;
        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        uv_poll_stop(&s->poll);
                        uv_close((uv_handle_t *)&s->poll, on_poll_closed);
                        curl_multi_assign(io->multi, fd, NULL);
                }
                return 0;
        }
        if (!s) {
                s = calloc(1, sizeof *s);
                if (!s)
                        return -1;
                s->fd = fd;
                s->io = io;
                if (uv_poll_init_socket(&io->loop, &s->poll, fd) != 0) {
                        free(s);
                        return -1;
                }
                s->poll.data = s;
                curl_multi_assign(io->multi, fd, s);
        }
        int ev = 0;
        if (what & CURL_POLL_IN)
                ev |= UV_READABLE;
        if (what & CURL_POLL_OUT)
                ev |= UV_WRITABLE;
        uv_poll_start(&s->poll, ev, on_poll);
        return 0;
}

static void on_timeout(uv_timer_t *t)
{
        struct fwd_io *io = t->data;
        int running;
        curl_multi_socket_action(io->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        io_check_done(io);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
        (void)m;
        struct fwd_io *io = userp;
        if (timeout_ms < 0) {
                uv_timer_stop(&io->timeout);
        } else {
                /* 0 becomes 1: never call socket_action from within this callback. */
                uv_timer_start(&io->timeout, on_timeout, timeout_ms == 0 ? 1 : (uint64_t)timeout_ms,
                               0);
        }
        return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        struct transfer *t = userdata;
        size_t n = size * nmemb;
        if (t->resp_len + n > FK_RESPONSE_MAX)
                return 0; /* aborts: CURLE_WRITE_ERROR */
        char *p = realloc(t->resp, t->resp_len + n + 1);
        if (!p)
                return 0;
        t->resp = p;
        memcpy(t->resp + t->resp_len, ptr, n);
        t->resp_len += n;
        t->resp[t->resp_len] = '\0';
        return n;
}

/* Hand a finished transfer back to the loop thread, with its easy handle gone: libcurl is
 * touched on this thread only. */
static void io_hand_back(struct fwd_io *io, struct transfer *t)
{
        if (t->easy) {
                if (io->n_pool < FWD_POOL_MAX) {
                        /* Nothing in an idle handle may point into the transfer. */
                        curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, NULL);
                        curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, NULL);
                        curl_easy_setopt(t->easy, CURLOPT_PRIVATE, NULL);
                        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, NULL);
                        io->pool[io->n_pool] = t->easy;
                        io->pool_gen[io->n_pool++] = t->gen;
                } else {
                        curl_easy_cleanup(t->easy);
                }
                t->easy = NULL;
        }
        t->done_ns = uv_hrtime();
        struct forwarder *f = io->f;
        uv_mutex_lock(&io->mu);
        t->next = NULL;
        if (f->done_tail)
                f->done_tail->next = t;
        else
                f->done_head = t;
        f->done_tail = t;
        uv_mutex_unlock(&io->mu);
}

static void io_check_done(struct fwd_io *io)
{
        CURLMsg *msg;
        int left;
        bool any = false;
        while ((msg = curl_multi_info_read(io->multi, &left)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                CURL *e = msg->easy_handle;
                struct transfer *t = NULL;
                curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
                t->cc = msg->data.result;
                curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t->http);
                curl_multi_remove_handle(io->multi, e);
                if (t->cc == CURLE_OK) {
                        if (!io->xml && io->xml_pool)
                                io->xml = xmlsafe_parser_take(io->xml_pool);
                        t->parsed = riv_soap_parse_result_with(
                            io->xml, t->resp ? t->resp : "", t->resp_len, t->code, sizeof t->code,
                            t->eid, sizeof t->eid, t->rtext, sizeof t->rtext);
                }
                io_hand_back(io, t);
                any = true;
        }
        if (any)
                uv_async_send(&io->f->done_async);
}

static const char *soap_action(enum riv_contract c)
{
        return c == RIV_REVOKE ? "SOAPAction: \"urn:riv:clinicalprocess:healthcond:certificate:"
                                 "RevokeCertificateResponder:2:RevokeCertificate\""
                               : "SOAPAction: \"urn:riv:clinicalprocess:healthcond:certificate:"
                                 "RegisterCertificateResponder:3:RegisterCertificate\"";
}

/* An easy handle set up for t's configuration generation: an idle one, or a new one with the
 * options that stay the same from transfer to transfer. */
static CURL *io_easy(struct fwd_io *io, const struct transfer *t)
{
        while (io->n_pool > 0) {
                io->n_pool--;
                if (io->pool_gen[io->n_pool] == t->gen)
                        return io->pool[io->n_pool];
                curl_easy_cleanup(io->pool[io->n_pool]); /* from before a reload */
        }
        CURL *e = curl_easy_init();
        if (!e)
                return NULL;
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t->timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         t->timeout_ms < 5000 ? t->timeout_ms : 5000L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->key);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        return e;
}

static struct curl_slist *io_headers(struct fwd_io *io, enum riv_contract c)
{
        int k = c == RIV_REVOKE;
        if (!io->hdr[k]) {
                struct curl_slist *h =
                    curl_slist_append(NULL, "Content-Type: text/xml; charset=UTF-8");
                struct curl_slist *n = h ? curl_slist_append(h, soap_action(c)) : NULL;
                n = n ? curl_slist_append(n, "Expect:") : NULL;
                if (!n) {
                        curl_slist_free_all(h);
                        return NULL;
                }
                io->hdr[k] = n;
        }
        return io->hdr[k];
}

/* Start one queued transfer in libcurl; false (with t->cc set) when it could not be. */
static bool io_start(struct fwd_io *io, struct transfer *t)
{
        struct curl_slist *headers = io_headers(io, t->contract);
        t->easy = headers ? io_easy(io, t) : NULL;
        if (!t->easy) {
                t->cc = CURLE_OUT_OF_MEMORY;
                return false;
        }
        CURL *e = t->easy;
        curl_easy_setopt(e, CURLOPT_URL, t->url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(e, CURLOPT_PRIVATE, t);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        if (curl_multi_add_handle(io->multi, e) != CURLM_OK) {
                t->cc = CURLE_FAILED_INIT;
                return false;
        }
        return true;
}

/* Free the idle handles and header lists (delivery thread, or after it ended). */
static void io_drop_pool(struct fwd_io *io)
{
        xmlsafe_parser_put(io->xml_pool, io->xml);
        io->xml = NULL;
        while (io->n_pool > 0)
                curl_easy_cleanup(io->pool[--io->n_pool]);
        for (int k = 0; k < 2; k++) {
                curl_slist_free_all(io->hdr[k]);
                io->hdr[k] = NULL;
        }
}

static void io_close_walk(uv_handle_t *h, void *arg)
{
        (void)arg;
        if (!uv_is_closing(h))
                uv_close(h, h->type == UV_POLL ? on_poll_closed : NULL);
}

static void on_wake(uv_async_t *a)
{
        struct fwd_io *io = a->data;
        uv_mutex_lock(&io->mu);
        struct transfer *to_start = io->start_head;
        io->start_head = io->start_tail = NULL;
        long want = io->want_conns;
        bool stop = io->stop;
        uv_mutex_unlock(&io->mu);
        if (want > 0 && want != io->applied_conns) {
                curl_multi_setopt(io->multi, CURLMOPT_MAX_HOST_CONNECTIONS, want);
                /* Keep every connection the concurrency may open: libcurl's default cache is
                 * 4 per easy handle added, and transfers come and go, so it closed FK
                 * connections after a few requests and paid a full TLS handshake (and a PEM
                 * load of key and CA) each time. */
                curl_multi_setopt(io->multi, CURLMOPT_MAXCONNECTS, want);
                io->applied_conns = want;
        }
        bool failed = false;
        while (to_start) {
                struct transfer *t = to_start;
                to_start = t->next;
                t->next = NULL;
                if (!io_start(io, t)) {
                        io_hand_back(io, t);
                        failed = true;
                }
        }
        if (failed)
                uv_async_send(&io->f->done_async);
        if (stop) {
                /* The loop thread stops us only with nothing in flight. */
                io_drop_pool(io);
                curl_multi_cleanup(io->multi); /* closes the kept FK connections (sock_cb) */
                io->multi = NULL;
                uv_walk(&io->loop, io_close_walk, NULL);
        }
}

static void io_main(void *arg)
{
        struct fwd_io *io = arg;
        if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), FWD_NICE) != 0)
                LOGW("forward_nice_failed", "reason", "setpriority refused");
        uv_run(&io->loop, UV_RUN_DEFAULT);
}

/* ---- the loop thread -------------------------------------------------------------------- */

static void breaker_gauge(struct forwarder *f)
{
        f->srv->metrics.breaker_state = (int)f->breaker.state;
}

static void count_attempt(struct forwarder *f, const char *outcome)
{
        char k[64];
        snprintf(k, sizeof k, "outcome=\"%s\"", outcome);
        labelled_add(&f->srv->metrics.forward_attempts, k, 1);
}

static void transfer_free(struct transfer *t)
{
        if (!t)
                return;
        free(t->body);
        free(t->url);
        free(t->ca);
        free(t->cert);
        free(t->key);
        free(t->resp);
        outbox_record_free(t->rec);
        free(t);
}

static char *dup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

/* Queue one claimed record to the delivery thread. */
static void start_one(struct forwarder *f, struct outbox_record *rec)
{
        struct transfer *t = calloc(1, sizeof *t);
        if (!t)
                goto fail;
        t->rec = rec;
        t->contract = rec->kind == INTYG_REVOKE ? RIV_REVOKE : RIV_REGISTER;
        if (!rec->payload || riv_soap_wrap_request(t->contract, f->logical_address, rec->payload,
                                                   rec->payload_len, &t->body, &t->body_len) != 0)
                goto fail;
        t->url = dup_or_null(t->contract == RIV_REVOKE ? f->revoke_url : f->url);
        t->ca = dup_or_null(f->ca);
        t->cert = dup_or_null(f->cert);
        t->key = dup_or_null(f->key);
        if (!t->url || (f->ca && !t->ca) || (f->cert && !t->cert) || (f->key && !t->key))
                goto fail;
        t->timeout_ms = f->timeout_ms;
        t->gen = f->cfg_gen;
        t->queued_ns = uv_hrtime();
        /* The record's body is in the envelope now; the record keeps only what marks need. */
        free(rec->payload);
        rec->payload = NULL;
        struct fwd_io *io = &f->io;
        uv_mutex_lock(&io->mu);
        if (io->start_tail)
                io->start_tail->next = t;
        else
                io->start_head = t;
        io->start_tail = t;
        uv_mutex_unlock(&io->mu);
        uv_async_send(&io->wake);
        f->in_flight++;
        f->srv->metrics.forward_in_flight = f->in_flight;
        return;
fail:
        LOGE("forward_start_failed", "intyg", rec->id, "reason", "out of memory or bad payload");
        if (t)
                t->rec = NULL;
        transfer_free(t);
        if (outbox_mark_retry(f->srv->outbox, rec, wall_ms() + f->retry_base_ms,
                              "could not start a transfer", wall_ms(), NULL, NULL) != 0)
                LOGE("outbox_mark_failed", "op", "retry");
}

static void maybe_closed(struct forwarder *f);

static void ready_push(struct forwarder *f, struct outbox_record *rec)
{
        f->ready[(f->ready_head + f->n_ready) % FK_READY_MAX] = rec;
        f->n_ready++;
}

static struct outbox_record *ready_pop(struct forwarder *f)
{
        struct outbox_record *rec = f->ready[f->ready_head];
        f->ready_head = (f->ready_head + 1) % FK_READY_MAX;
        f->n_ready--;
        return rec;
}

/* Give claimed but unstarted records back to the queue (circuit opened, or closing). */
static void release_ready(struct forwarder *f, const char *why)
{
        int64_t now = wall_ms();
        while (f->n_ready > 0) {
                struct outbox_record *rec = ready_pop(f);
                if (outbox_mark_retry(f->srv->outbox, rec, now, why, now, NULL, NULL) != 0)
                        LOGE("outbox_mark_failed", "op", "release");
        }
}

static void on_claimed(void *arg, int status, struct outbox_record **recs, size_t n)
{
        struct forwarder *f = arg;
        f->claiming = false;
        if (status != OUTBOX_OK) {
                LOGW("forward_claim_failed", "error", outbox_strerror(status));
                outbox_records_free(recs, n);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                if (f->n_ready < FK_READY_MAX)
                        ready_push(f, recs[i]);
                else
                        outbox_record_free(recs[i]); /* cannot happen: claims are sized */
        }
        free(recs);
        if (f->closing) {
                release_ready(f, "forwarder stopped before sending");
                maybe_closed(f);
                return;
        }
        /* Claim again when this one brought records, or when records were stored while it was
         * out (it may have run before their commit); otherwise they would wait for the next
         * tick, a second later. */
        bool again = n > 0 || f->rekick;
        f->rekick = false;
        if (again)
                forwarder_kick(f);
}

void forwarder_kick(struct forwarder *f)
{
        if (!f || f->closing || !f->enabled || !f->srv->outbox)
                return;
        int64_t now = (int64_t)uv_now(f->srv->loop);
        /* Start what is ready, as far as concurrency and the circuit breaker allow. */
        while (f->n_ready > 0 && f->in_flight < f->concurrency) {
                if (f->breaker.state != BREAKER_CLOSED && f->in_flight > 0)
                        break; /* a probe is out: wait for its answer */
                bool allow = breaker_allow(&f->breaker, now);
                breaker_gauge(f);
                if (!allow)
                        break;
                bool probe = f->breaker.state == BREAKER_HALF_OPEN;
                start_one(f, ready_pop(f));
                if (probe)
                        break;
        }
        if (f->claiming) {
                f->rekick = true;
                return;
        }
        /* While FK answers, refill in bulk once fewer than `concurrency` records are ready: a
         * claim is a write that waits behind the outbox's group commit (one fsync), so under
         * load each commit cycle must hand over many records, not a few. One at a time (the
         * next probe) while the circuit is open. */
        size_t want;
        if (f->breaker.state == BREAKER_CLOSED) {
                want = f->n_ready < (size_t)f->concurrency ? FK_READY_MAX - f->n_ready : 0;
        } else {
                want = f->n_ready == 0 && f->in_flight == 0 ? 1 : 0;
                if (want && breaker_next_probe_ms(&f->breaker) > now)
                        want = 0; /* not yet time for a probe */
        }
        if (want > FK_READY_MAX - f->n_ready)
                want = FK_READY_MAX - f->n_ready;
        if (want > OUTBOX_CLAIM_MAX)
                want = OUTBOX_CLAIM_MAX;
        if (want == 0)
                return;
        if (outbox_claim(f->srv->outbox, wall_ms(), want, FK_LEASE_MS, on_claimed, f) == 0)
                f->claiming = true;
}

/* What to do with one finished transfer. */
enum verdict { V_DELIVERED, V_RETRY, V_DEAD };

static enum verdict judge(const struct transfer *t, char *fk_result, size_t rlen, char *text,
                          size_t tlen)
{
        fk_result[0] = text[0] = '\0';
        if (t->cc != CURLE_OK) {
                snprintf(text, tlen, "transport: %s",
                         t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->cc));
                return V_RETRY;
        }
        const char *code = t->code, *eid = t->eid, *rtext = t->rtext;
        if (t->http >= 500 || t->parsed != 0 || !strcmp(code, "FAULT")) {
                snprintf(text, tlen, "FK answered HTTP %ld%s%s", t->http, rtext[0] ? ": " : "",
                         rtext);
                snprintf(fk_result, rlen, "%s", code[0] ? code : "HTTP");
                return V_RETRY;
        }
        snprintf(fk_result, rlen, "%s", code);
        snprintf(text, tlen, "%s%s%s", eid, eid[0] && rtext[0] ? ": " : "", rtext);
        if (!strcmp(code, "OK") || !strcmp(code, "INFO"))
                return V_DELIVERED;
        if (!strcmp(code, "ERROR") && !strcmp(eid, "TECHNICAL_ERROR"))
                return V_RETRY;
        return V_DEAD;
}

static void finish(struct forwarder *f, struct transfer *t)
{
        int64_t now_loop = (int64_t)uv_now(f->srv->loop);
        histogram_observe(&f->srv->metrics.fk_roundtrip, (double)(t->done_ns - t->queued_ns) / 1e9);
        char fk_result[16], text[300];
        enum verdict v = judge(t, fk_result, sizeof fk_result, text, sizeof text);
        struct outbox_record *rec = t->rec;
        t->rec = NULL;
        int64_t now = wall_ms();
        struct outbox *ob = f->srv->outbox;
        int rc = 0;
        switch (v) {
        case V_DELIVERED:
                breaker_success(&f->breaker, now_loop);
                count_attempt(f, !strcmp(fk_result, "INFO") ? "delivered_info" : "delivered");
                histogram_observe(&f->srv->metrics.deliver_latency,
                                  (double)(now - rec->received_ms) / 1000.0);
                LOGI("delivered", "intyg", rec->id, "kind",
                     rec->kind == INTYG_REVOKE ? "revoke" : "register", "fk_result", fk_result,
                     "#attempts", (long long)rec->attempts);
                rc = outbox_mark_delivered(ob, rec, fk_result, text, now, NULL, NULL);
                break;
        case V_RETRY: {
                breaker_failure(&f->breaker, now_loop);
                if (f->breaker.state == BREAKER_OPEN && f->srv->metrics.breaker_state != 1) {
                        f->srv->metrics.breaker_opens++;
                        LOGW("fk_circuit_open", "reason", text);
                        release_ready(f, "FK circuit open: back in the queue");
                }
                int64_t first = rec->first_attempt_ms ? rec->first_attempt_ms : now;
                if (retry_gave_up(first, now, f->horizon_s)) {
                        count_attempt(f, "dead_horizon");
                        char why[400];
                        snprintf(why, sizeof why, "retry horizon passed; last error: %s", text);
                        LOGW("dead_letter", "intyg", rec->id, "reason", why);
                        rc = outbox_mark_dead(ob, rec, fk_result, why, now, NULL, NULL);
                        break;
                }
                int64_t backoff =
                    retry_backoff_ms(rec->attempts, f->retry_base_ms, f->retry_max_ms, &f->rng);
                count_attempt(f, "retry");
                LOGI("forward_retry", "intyg", rec->id, "reason", text, "#attempt",
                     (long long)rec->attempts, "#backoff_ms", (long long)backoff);
                rc = outbox_mark_retry(ob, rec, now + backoff, text, now, NULL, NULL);
                break;
        }
        case V_DEAD:
                breaker_success(&f->breaker, now_loop);
                count_attempt(f, "rejected");
                LOGW("dead_letter", "intyg", rec->id, "fk_result", fk_result, "reason", text);
                rc = outbox_mark_dead(ob, rec, fk_result, text, now, NULL, NULL);
                break;
        }
        breaker_gauge(f);
        if (rc != 0)
                LOGE("outbox_mark_failed", "error", outbox_strerror(rc));
}

/* The delivery thread handed transfers back. */
static void on_done(uv_async_t *a)
{
        struct forwarder *f = a->data;
        uv_mutex_lock(&f->io.mu);
        struct transfer *done = f->done_head;
        f->done_head = f->done_tail = NULL;
        uv_mutex_unlock(&f->io.mu);
        bool any = false;
        while (done) {
                struct transfer *t = done;
                done = t->next;
                f->in_flight--;
                f->srv->metrics.forward_in_flight = f->in_flight;
                finish(f, t);
                transfer_free(t);
                any = true;
        }
        if (f->closing)
                maybe_closed(f);
        else if (any)
                forwarder_kick(f);
}

static void io_free(struct fwd_io *io)
{
        io_drop_pool(io);
        if (io->multi)
                curl_multi_cleanup(io->multi);
        io->multi = NULL;
        uv_walk(&io->loop, io_close_walk, NULL);
        uv_run(&io->loop, UV_RUN_DEFAULT);
        uv_loop_close(&io->loop);
        uv_mutex_destroy(&io->mu);
        xmlsafe_pool_free(io->xml_pool);
        io->xml_pool = NULL;
}

struct forwarder *forwarder_new(struct server *srv, char *err, size_t errlen)
{
        struct forwarder *f = calloc(1, sizeof *f);
        if (!f) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        f->srv = srv;
        struct fwd_io *io = &f->io;
        io->f = f;
        if (uv_mutex_init(&io->mu) != 0) {
                free(f);
                snprintf(err, errlen, "cannot create the delivery thread's lock");
                return NULL;
        }
        if (uv_loop_init(&io->loop) != 0) {
                uv_mutex_destroy(&io->mu);
                free(f);
                snprintf(err, errlen, "cannot create the delivery thread's loop");
                return NULL;
        }
        io->xml_pool = xmlsafe_pool_new(); /* NULL: each answer gets a fresh parser */
        io->multi = curl_multi_init();
        if (!io->multi || uv_async_init(&io->loop, &io->wake, on_wake) != 0) {
                io_free(io);
                free(f);
                snprintf(err, errlen, "curl_multi_init failed");
                return NULL;
        }
        io->wake.data = io;
        uv_timer_init(&io->loop, &io->timeout);
        io->timeout.data = io;
        curl_multi_setopt(io->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
        curl_multi_setopt(io->multi, CURLMOPT_SOCKETDATA, io);
        curl_multi_setopt(io->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(io->multi, CURLMOPT_TIMERDATA, io);
        if (uv_async_init(srv->loop, &f->done_async, on_done) != 0) {
                io_free(io);
                free(f);
                snprintf(err, errlen, "cannot create the delivery thread's wake-up");
                return NULL;
        }
        f->done_async.data = f;
        f->rng = (uint64_t)wall_ms() ^ ((uint64_t)(uintptr_t)f << 16);
        forwarder_reconfigure(f, srv->cfg);
        if (uv_thread_create(&io->thread, io_main, io) != 0) {
                uv_close((uv_handle_t *)&f->done_async, NULL);
                uv_run(srv->loop, UV_RUN_NOWAIT);
                io_free(io);
                free(f);
                snprintf(err, errlen, "cannot start the delivery thread");
                return NULL;
        }
        io->started = true;
        uv_async_send(&io->wake); /* apply the limits */
        return f;
}

bool forwarder_closing(const struct forwarder *f)
{
        return f->closing;
}

static void on_async_closed(uv_handle_t *h)
{
        struct forwarder *f = h->data;
        void (*cb)(void *) = f->closed_cb;
        void *arg = f->closed_arg;
        io_free(&f->io); /* the thread has closed its handles and curl: this ends the rest */
        free(f->url);
        free(f->revoke_url);
        free(f->logical_address);
        free(f->ca);
        free(f->cert);
        free(f->key);
        free(f);
        if (cb)
                cb(arg);
}

static void maybe_closed(struct forwarder *f)
{
        if (!f->closing || f->in_flight > 0 || f->claiming || f->async_closed)
                return;
        /* Nothing in flight: stop the delivery thread (it closes the kept FK connections) and
         * wait for it; it has nothing left to wait for. */
        uv_mutex_lock(&f->io.mu);
        f->io.stop = true;
        uv_mutex_unlock(&f->io.mu);
        uv_async_send(&f->io.wake);
        uv_thread_join(&f->io.thread);
        f->async_closed = true;
        uv_close((uv_handle_t *)&f->done_async, on_async_closed);
}

void forwarder_close(struct forwarder *f, void (*closed_cb)(void *), void *arg)
{
        f->closing = true;
        release_ready(f, "forwarder stopped before sending");
        f->closed_cb = closed_cb;
        f->closed_arg = arg;
        maybe_closed(f);
}
