/*
 * forward.c - libcurl multi on the libuv loop (after curl's multi-uv.c, hardened): the socket
 * callback keeps one uv_poll_t per curl socket (curl_multi_assign), the timer callback one
 * uv_timer_t; completions are read in check_done. Our own bound on transfers in flight, so
 * none waits inside curl burning its timeout. Loop thread only.
 */
#include "forward.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "outbox.h"
#include "retry.h"
#include "riv_soap.h"
#include "server.h"

#define FK_RESPONSE_MAX (1024 * 1024)   /* bytes of one FK answer we read */
#define FK_LEASE_MS     (5 * 60 * 1000) /* a claim's lease: longer than any attempt */
#define FK_READY_MAX    512             /* claimed records waiting for a transfer slot */

struct sock_ctx {
        uv_poll_t poll;
        curl_socket_t fd;
        struct forwarder *f;
};

struct transfer {
        struct forwarder *f;
        CURL *easy;
        struct outbox_record *rec;
        struct curl_slist *headers;
        char *body;
        size_t body_len;
        char *resp;
        size_t resp_len;
        int64_t started_ms;
        char errbuf[CURL_ERROR_SIZE];
};

struct forwarder {
        struct server *srv;
        CURLM *multi;
        uv_timer_t timeout;
        int in_flight;
        bool claiming;
        bool rekick; /* kicked while a claim was out: it may have missed newer records */
        bool closing;
        bool timer_closed;
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
        breaker_init(&f->breaker, cfg->breaker_failures, cfg->breaker_open_ms,
                     (int64_t)cfg->breaker_open_ms * 30, (int64_t)cfg->fk_timeout_ms + 1000);
        curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)f->concurrency);
        /* Keep every connection the concurrency may open: libcurl's default cache is 4 per
         * easy handle added, and transfers come and go, so it closed FK connections after a few
         * requests and paid a full TLS handshake (and a PEM load of key and CA) each time. */
        curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)f->concurrency);
}

static void check_done(struct forwarder *f);

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
        struct forwarder *f = s->f;
        curl_multi_socket_action(f->multi, s->fd, flags, &running);
        check_done(f);
}

static void on_poll_closed(uv_handle_t *h)
{
        free(h->data);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
        (void)e;
        struct forwarder *f = userp;
        struct sock_ctx *s = socketp;
        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        uv_poll_stop(&s->poll);
                        uv_close((uv_handle_t *)&s->poll, on_poll_closed);
                        curl_multi_assign(f->multi, fd, NULL);
                }
                return 0;
        }
        if (!s) {
                s = calloc(1, sizeof *s);
                if (!s)
                        return -1;
                s->fd = fd;
                s->f = f;
                if (uv_poll_init_socket(f->srv->loop, &s->poll, fd) != 0) {
                        free(s);
                        return -1;
                }
                s->poll.data = s;
                curl_multi_assign(f->multi, fd, s);
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
        struct forwarder *f = t->data;
        int running;
        curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done(f);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
        (void)m;
        struct forwarder *f = userp;
        if (timeout_ms < 0) {
                uv_timer_stop(&f->timeout);
        } else {
                /* 0 becomes 1: never call socket_action from within this callback. */
                uv_timer_start(&f->timeout, on_timeout, timeout_ms == 0 ? 1 : (uint64_t)timeout_ms,
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

static void transfer_free(struct transfer *t)
{
        if (!t)
                return;
        if (t->easy)
                curl_easy_cleanup(t->easy);
        curl_slist_free_all(t->headers);
        free(t->body);
        free(t->resp);
        outbox_record_free(t->rec);
        free(t);
}

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

static void start_one(struct forwarder *f, struct outbox_record *rec)
{
        struct transfer *t = calloc(1, sizeof *t);
        if (!t)
                goto fail;
        t->f = f;
        t->rec = rec;
        enum riv_contract c = rec->kind == INTYG_REVOKE ? RIV_REVOKE : RIV_REGISTER;
        if (!rec->payload || riv_soap_wrap_request(c, f->logical_address, rec->payload,
                                                   rec->payload_len, &t->body, &t->body_len) != 0)
                goto fail;
        t->easy = curl_easy_init();
        if (!t->easy)
                goto fail;
        const char *action = c == RIV_REVOKE
                                 ? "SOAPAction: \"urn:riv:clinicalprocess:healthcond:certificate:"
                                   "RevokeCertificateResponder:2:RevokeCertificate\""
                                 : "SOAPAction: \"urn:riv:clinicalprocess:healthcond:certificate:"
                                   "RegisterCertificateResponder:3:RegisterCertificate\"";
        t->headers = curl_slist_append(NULL, "Content-Type: text/xml; charset=UTF-8");
        t->headers = curl_slist_append(t->headers, action);
        t->headers = curl_slist_append(t->headers, "Expect:");
        CURL *e = t->easy;
        curl_easy_setopt(e, CURLOPT_URL, c == RIV_REVOKE ? f->revoke_url : f->url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(e, CURLOPT_PRIVATE, t);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(f->timeout_ms < 5000 ? f->timeout_ms : 5000));
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(e, CURLOPT_CAINFO, f->ca);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(e, CURLOPT_SSLCERT, f->cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, f->key);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        t->started_ms = (int64_t)uv_now(f->srv->loop);
        if (curl_multi_add_handle(f->multi, e) != CURLM_OK)
                goto fail;
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

static enum verdict judge(struct transfer *t, CURLcode cc, long http, char *fk_result, size_t rlen,
                          char *text, size_t tlen)
{
        fk_result[0] = text[0] = '\0';
        if (cc != CURLE_OK) {
                snprintf(text, tlen, "transport: %s",
                         t->errbuf[0] ? t->errbuf : curl_easy_strerror(cc));
                return V_RETRY;
        }
        char code[16] = "", eid[32] = "", rtext[256] = "";
        int prc = riv_soap_parse_result(t->resp ? t->resp : "", t->resp_len, code, sizeof code, eid,
                                        sizeof eid, rtext, sizeof rtext);
        if (http >= 500 || prc != 0 || !strcmp(code, "FAULT")) {
                snprintf(text, tlen, "FK answered HTTP %ld%s%s", http, rtext[0] ? ": " : "", rtext);
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

static void finish(struct forwarder *f, struct transfer *t, CURLcode cc)
{
        long http = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
        int64_t now_loop = (int64_t)uv_now(f->srv->loop);
        histogram_observe(&f->srv->metrics.fk_roundtrip,
                          (double)(now_loop - t->started_ms) / 1000.0);
        char fk_result[16], text[300];
        enum verdict v = judge(t, cc, http, fk_result, sizeof fk_result, text, sizeof text);
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

static void maybe_closed(struct forwarder *f);

static void check_done(struct forwarder *f)
{
        CURLMsg *msg;
        int left;
        bool any = false;
        while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                CURL *e = msg->easy_handle;
                CURLcode cc = msg->data.result;
                struct transfer *t = NULL;
                curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
                curl_multi_remove_handle(f->multi, e);
                f->in_flight--;
                f->srv->metrics.forward_in_flight = f->in_flight;
                finish(f, t, cc);
                transfer_free(t);
                any = true;
        }
        if (f->closing)
                maybe_closed(f);
        else if (any)
                forwarder_kick(f);
}

struct forwarder *forwarder_new(struct server *srv, char *err, size_t errlen)
{
        struct forwarder *f = calloc(1, sizeof *f);
        if (!f) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        f->srv = srv;
        f->multi = curl_multi_init();
        if (!f->multi) {
                free(f);
                snprintf(err, errlen, "curl_multi_init failed");
                return NULL;
        }
        f->rng = (uint64_t)wall_ms() ^ ((uint64_t)(uintptr_t)f << 16);
        uv_timer_init(srv->loop, &f->timeout);
        f->timeout.data = f;
        curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
        curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
        curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
        forwarder_reconfigure(f, srv->cfg);
        return f;
}

bool forwarder_closing(const struct forwarder *f)
{
        return f->closing;
}

static void on_timer_closed(uv_handle_t *h)
{
        struct forwarder *f = h->data;
        void (*cb)(void *) = f->closed_cb;
        void *arg = f->closed_arg;
        curl_multi_cleanup(f->multi);
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
        if (!f->closing || f->in_flight > 0 || f->claiming || f->timer_closed)
                return;
        f->timer_closed = true;
        uv_timer_stop(&f->timeout);
        uv_close((uv_handle_t *)&f->timeout, on_timer_closed);
}

void forwarder_close(struct forwarder *f, void (*closed_cb)(void *), void *arg)
{
        f->closing = true;
        release_ready(f, "forwarder stopped before sending");
        f->closed_cb = closed_cb;
        f->closed_arg = arg;
        maybe_closed(f);
}
