/*
 * conn.c - connection transport: accept with admission control, TLS over memory BIOs,
 * reads into the HTTP layer, writes, the phase timer, reasoned close. Loop thread only.
 */
#include "conn.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "tls.h"

/* Answers queued for a peer that does not read them, above which the connection stops reading
 * and parsing its requests until the queue drains to half (a caller that pipelines requests
 * and never reads the answers must not grow the gateway's memory: without this every answer
 * is queued, ~500 bytes each, without bound). */
#define CONN_WRITE_QUEUE_MAX (256 * 1024) /* bytes */

static bool write_backlogged(const struct conn *c)
{
        return c->tcp.write_queue_size > CONN_WRITE_QUEUE_MAX;
}

/* Pending plaintext above which we stop reading until the current request is answered. */
#define CONN_PENDING_SOFT_MAX(c)                                                                   \
        ((size_t)(c)->srv->cfg->max_header_bytes + (size_t)(c)->srv->cfg->max_body_bytes + 65536)

int64_t conn_now_ms(struct conn *c)
{
        return (int64_t)uv_now(c->srv->loop);
}

static void conn_free(struct conn *c)
{
        if (c->ssl)
                SSL_free(c->ssl); /* frees both BIOs */
        free(c->req.body);
        free(c->pending);
        struct server *srv = c->srv;
        free(c);
        server_conn_gone(srv);
}

void conn_ref(struct conn *c)
{
        c->refs++;
}

void conn_unref(struct conn *c)
{
        if (--c->refs == 0 && c->handles_open == 0)
                conn_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
        struct conn *c = h->data;
        if (--c->handles_open == 0 && c->refs == 0)
                conn_free(c);
}

void conn_close(struct conn *c, const char *reason)
{
        if (c->closing)
                return;
        c->closing = true;
        struct server *srv = c->srv;
        LOGD("conn_close", "#conn", (long long)c->id, "caller", c->caller, "reason", reason);
        if (c->prev)
                c->prev->next = c->next;
        else
                srv->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        srv->n_conns--;
        if (c->counted_caller)
                server_caller_count(srv, c->caller, -1);
        srv->metrics.connections_open--;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

struct write_req {
        uv_write_t req;
        struct conn *c;
        char data[];
};

static void on_write(uv_write_t *req, int status)
{
        struct write_req *w = (struct write_req *)req;
        struct conn *c = w->c;
        free(w);
        c->writes_pending--;
        if (status < 0 && !c->closing) {
                conn_close(c, "write failed");
        } else if (c->close_after_write && c->writes_pending == 0 && !c->closing) {
                conn_close(c, "closed after response");
        } else if (!c->closing && !c->busy && !c->close_after_write &&
                   (!c->reading || c->pending_len > 0) &&
                   c->tcp.write_queue_size <= CONN_WRITE_QUEUE_MAX / 2) {
                /* The peer caught up: parse what is pending, then read again. */
                conn_resume_reading(c);
                if (c->pending_len > 0)
                        http_process(c);
        }
        conn_unref(c);
}

static void raw_write(struct conn *c, const void *data, size_t len)
{
        if (c->closing || len == 0)
                return;
        struct write_req *w = malloc(sizeof *w + len);
        if (!w) {
                conn_close(c, "out of memory");
                return;
        }
        w->c = c;
        memcpy(w->data, data, len);
        uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
        conn_ref(c);
        c->writes_pending++;
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc < 0) {
                c->writes_pending--;
                free(w);
                conn_unref(c);
                conn_close(c, "write failed");
        }
}

static void flush_tls(struct conn *c)
{
        char buf[16384];
        int n;
        while ((n = BIO_read(c->wbio, buf, sizeof buf)) > 0)
                raw_write(c, buf, (size_t)n);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
        if (c->closing)
                return;
        if (!c->ssl) {
                raw_write(c, data, len);
                return;
        }
        const char *p = data;
        while (len > 0) {
                /* The error queue is per thread and shared with curl's TLS on this loop:
                 * clear it, or SSL_get_error() reports someone else's failure. */
                ERR_clear_error();
                int n = SSL_write(c->ssl, p, (int)(len > 1 << 30 ? 1 << 30 : len));
                if (n <= 0) {
                        ERR_clear_error();
                        conn_close(c, "tls write failed");
                        return;
                }
                p += n;
                len -= (size_t)n;
        }
        flush_tls(c);
}

static void on_timer(uv_timer_t *t)
{
        struct conn *c = t->data;
        switch (c->phase) {
        case PHASE_HANDSHAKE:
                c->srv->metrics.tls_failures[TLSF_TIMEOUT]++;
                LOGI("tls_handshake_failed", "#conn", (long long)c->id, "peer", c->peer, "reason",
                     "timeout");
                conn_close(c, "handshake timeout");
                break;
        case PHASE_HEADER:
                c->srv->metrics.timeouts_header++;
                LOGI("http_timeout", "#conn", (long long)c->id, "caller", c->caller, "limit",
                     "header_timeout_ms");
                conn_close(c, "header timeout (header_timeout_ms)");
                break;
        case PHASE_BODY:
                c->srv->metrics.timeouts_body++;
                LOGI("http_timeout", "#conn", (long long)c->id, "caller", c->caller, "limit",
                     "body_timeout_ms");
                conn_close(c, "body timeout (body_timeout_ms)");
                break;
        case PHASE_IDLE:
                c->srv->metrics.timeouts_idle++;
                conn_close(c, "idle timeout (idle_timeout_ms)");
                break;
        case PHASE_BUSY:
                break;
        }
}

void conn_set_phase(struct conn *c, enum conn_phase phase)
{
        if (c->closing)
                return;
        const struct config *cfg = c->srv->cfg;
        c->phase = phase;
        uint64_t ms = 0;
        switch (phase) {
        case PHASE_HANDSHAKE:
                ms = (uint64_t)cfg->handshake_timeout_ms;
                break;
        case PHASE_IDLE:
                ms = (uint64_t)cfg->idle_timeout_ms;
                break;
        case PHASE_HEADER:
                ms = (uint64_t)cfg->header_timeout_ms;
                break;
        case PHASE_BODY:
                ms = (uint64_t)cfg->body_timeout_ms;
                break;
        case PHASE_BUSY:
                uv_timer_stop(&c->timer);
                return;
        }
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static bool append_pending(struct conn *c, const char *data, size_t len)
{
        if (c->pending_len + len + 1 > c->pending_cap) {
                size_t cap = c->pending_cap ? c->pending_cap : 4096;
                while (cap < c->pending_len + len + 1)
                        cap *= 2;
                char *p = realloc(c->pending, cap);
                if (!p)
                        return false;
                c->pending = p;
                c->pending_cap = cap;
        }
        memcpy(c->pending + c->pending_len, data, len);
        c->pending_len += len;
        return true;
}

static void handshake_done(struct conn *c)
{
        struct server *srv = c->srv;
        c->handshake_done = true;
        srv->metrics.tls_handshakes++;
        const char *attr =
            c->lst->kind == LISTENER_ADMIN ? "serialNumber" : srv->cfg->caller_id_attr;
        char *idbuf = c->lst->kind == LISTENER_ADMIN ? c->admin_id : c->caller;
        size_t idlen = c->lst->kind == LISTENER_ADMIN ? sizeof c->admin_id : sizeof c->caller;
        if (!tls_peer_id(c->ssl, attr, idbuf, idlen)) {
                srv->metrics.tls_failures[TLSF_NO_ID]++;
                LOGI("tls_handshake_failed", "#conn", (long long)c->id, "peer", c->peer, "reason",
                     "no_caller_id", "detail",
                     "client certificate has no HSA-id in the configured subject attribute");
                conn_close(c, "no caller id in certificate");
                return;
        }
        if (c->lst->kind == LISTENER_CALLER) {
                int n = server_caller_count(srv, c->caller, +1);
                c->counted_caller = true;
                if (n > srv->cfg->max_connections_per_caller) {
                        c->over_caller_limit = true;
                        srv->metrics.refused_caller_limit++;
                        LOGI("conn_refused", "#conn", (long long)c->id, "caller", c->caller,
                             "limit", "max_connections_per_caller");
                }
        }
        LOGD("tls_handshake", "#conn", (long long)c->id, "caller", c->caller, "version",
             SSL_get_version(c->ssl));
        conn_set_phase(c, PHASE_IDLE);
}

static void tls_input(struct conn *c, const char *data, size_t len)
{
        if (BIO_write(c->rbio, data, (int)len) != (int)len) {
                conn_close(c, "tls buffer");
                return;
        }
        if (!c->handshake_done) {
                ERR_clear_error();
                int rc = SSL_do_handshake(c->ssl);
                flush_tls(c);
                if (rc != 1) {
                        int e = SSL_get_error(c->ssl, rc);
                        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                                return;
                        char detail[256];
                        const char *why = tls_failure_reason(c->ssl, e, detail, sizeof detail);
                        metrics_tls_failure(&c->srv->metrics, why);
                        LOGI("tls_handshake_failed", "#conn", (long long)c->id, "peer", c->peer,
                             "reason", why, "detail", detail);
                        /* Let the alert reach the peer, then close. */
                        c->close_after_write = true;
                        if (c->writes_pending == 0)
                                conn_close(c, "handshake failed");
                        return;
                }
                handshake_done(c);
                if (c->closing)
                        return;
        }
        char buf[16384];
        for (;;) {
                ERR_clear_error();
                int n = SSL_read(c->ssl, buf, sizeof buf);
                if (n > 0) {
                        if (!append_pending(c, buf, (size_t)n)) {
                                conn_close(c, "out of memory");
                                return;
                        }
                        continue;
                }
                int e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_WANT_READ)
                        break;
                if (e == SSL_ERROR_ZERO_RETURN) {
                        flush_tls(c);
                        /* close_notify: answer what is already in, then close. */
                        c->close_after_write = true;
                        break;
                }
                ERR_clear_error();
                conn_close(c, "tls read failed");
                return;
        }
        flush_tls(c); /* session tickets, key updates */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        (void)h;
        (void)suggested;
        static _Thread_local char slab[65536];
        buf->base = slab;
        buf->len = sizeof slab;
}

static void conn_read_stop(struct conn *c)
{
        if (c->reading) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = false;
        }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
        struct conn *c = s->data;
        if (nread < 0) {
                if (c->busy && nread == UV_EOF) {
                        /* Half-close after a request: answer it, then close. */
                        c->close_after_write = true;
                        conn_read_stop(c);
                        return;
                }
                conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
                return;
        }
        if (nread == 0)
                return;
        c->srv->metrics.bytes_in += (uint64_t)nread;
        if (c->ssl) {
                tls_input(c, buf->base, (size_t)nread);
        } else if (!append_pending(c, buf->base, (size_t)nread)) {
                conn_close(c, "out of memory");
                return;
        }
        if (c->closing || !c->handshake_done)
                return;
        http_process(c);
        if (!c->closing &&
            ((c->busy && c->pending_len > CONN_PENDING_SOFT_MAX(c)) || write_backlogged(c)))
                conn_read_stop(c);
}

bool conn_write_backlogged(const struct conn *c)
{
        return write_backlogged(c);
}

void conn_resume_reading(struct conn *c)
{
        if (!c->closing && !c->reading && !write_backlogged(c)) {
                if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
                        c->reading = true;
        }
}

struct conn *conn_accept(struct server *srv, struct listener *lst, uv_stream_t *server_handle)
{
        struct conn *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        c->srv = srv;
        c->lst = lst;
        c->id = ++srv->next_conn_id;
        uv_tcp_init(srv->loop, &c->tcp);
        uv_timer_init(srv->loop, &c->timer);
        c->tcp.data = c;
        c->timer.data = c;
        c->handles_open = 2;
        c->prev = NULL;
        c->next = srv->conns;
        if (srv->conns)
                srv->conns->prev = c;
        srv->conns = c;
        srv->n_conns++;
        srv->metrics.connections_open++;
        srv->metrics.connections_total++;
        if (uv_accept(server_handle, (uv_stream_t *)&c->tcp) != 0) {
                conn_close(c, "accept failed");
                return NULL;
        }
        struct sockaddr_storage ss;
        int sl = sizeof ss;
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
                char host[48] = "";
                int port = 0;
                if (ss.ss_family == AF_INET6) {
                        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
                        uv_ip6_name(a, host, sizeof host);
                        port = ntohs(a->sin6_port);
                } else {
                        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
                        uv_ip4_name(a, host, sizeof host);
                        port = ntohs(a->sin_port);
                }
                snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
        }
        uv_tcp_nodelay(&c->tcp, 1);
        /* Admission before any TLS work (refuse early and cheaply). */
        if (srv->draining || srv->n_conns > srv->cfg->max_connections) {
                srv->metrics.refused_max_connections++;
                LOGI("conn_refused", "#conn", (long long)c->id, "peer", c->peer, "limit",
                     srv->draining ? "draining" : "max_connections");
                conn_close(c, "max_connections");
                return NULL;
        }
        if (lst->ctx) {
                c->ssl = SSL_new(lst->ctx);
                c->rbio = BIO_new(BIO_s_mem());
                c->wbio = BIO_new(BIO_s_mem());
                if (!c->ssl || !c->rbio || !c->wbio) {
                        if (!c->ssl) {
                                BIO_free(c->rbio);
                                BIO_free(c->wbio);
                        } else {
                                SSL_set_bio(c->ssl, c->rbio, c->wbio);
                        }
                        conn_close(c, "out of memory");
                        return NULL;
                }
                BIO_set_mem_eof_return(c->rbio, -1);
                SSL_set_bio(c->ssl, c->rbio, c->wbio);
                SSL_set_accept_state(c->ssl);
                conn_set_phase(c, PHASE_HANDSHAKE);
        } else {
                c->handshake_done = true;
                conn_set_phase(c, PHASE_IDLE);
        }
        http_conn_init(c);
        conn_resume_reading(c);
        return c;
}
