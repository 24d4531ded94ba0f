/*
 * fuzz_http.c - libFuzzer harness for the HTTP/1.1 request layer (gateway/http.c) on a real
 * struct conn: a stub struct server (default config, small limits) and a plain-listener conn
 * whose uv_tcp_t is opened on one end of an AF_UNIX socketpair, so responses really go
 * through conn_write/uv_write. Input bytes are fed to http_process in chunks, as on_read does.
 * Owns: the stub server, loop and config (process lifetime). One thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "server.h"
#include "fuzz_entry.h"

/* Small limits so that the fuzzer reaches every refusal (431, 413, 414) quickly. */
#define FZ_HTTP_MAX_HEADER 2048
#define FZ_HTTP_MAX_BODY   8192
#define FZ_HTTP_MAX_ROUNDS 64 /* deferred answers per input (each answers >= 1 request) */

static uv_loop_t fz_http_loop;
static struct server fz_http_srv;
static struct listener fz_http_lst;
static struct conn *fz_http_deferred; /* a request waiting for its (deferred) answer */
static bool fz_http_defer;            /* answer on_request later, as the pipeline does */

static void fz_http_check(bool ok, const char *what)
{
        if (!ok) {
                fprintf(stderr, "fuzz_http: invariant broken: %s\n", what);
                abort();
        }
}

static void fz_http_on_request(struct conn *c, struct http_req *req)
{
        fz_http_check(c->busy, "on_request on a connection that is not busy");
        fz_http_check(strlen(req->path) < sizeof req->path, "path not terminated");
        fz_http_check(strlen(req->query) < sizeof req->query, "query not terminated");
        fz_http_check(strlen(req->content_type) < sizeof req->content_type, "content_type");
        fz_http_check(strlen(req->soap_action) < sizeof req->soap_action, "soap_action");
        fz_http_check(strlen(req->accept) < sizeof req->accept, "accept");
        fz_http_check(req->header_bytes <= (size_t)FZ_HTTP_MAX_HEADER, "header over the limit");
        fz_http_check(req->body_len <= (size_t)FZ_HTTP_MAX_BODY, "body over the limit");
        fz_http_check(!req->body || req->body[req->body_len] == '\0', "body not terminated");
        fz_http_check(req->body_len == 0 || req->body != NULL, "body_len without body");
        if (fz_http_defer) {
                fz_http_check(fz_http_deferred == NULL, "two requests answered at once");
                conn_ref(c);
                fz_http_deferred = c;
                return;
        }
        char body[64];
        int n = snprintf(body, sizeof body, "%zu %zu\n", strlen(req->path), req->body_len);
        /* Take the body as the pipeline does; the connection must not free it again. */
        size_t len = 0;
        free(http_req_take_body(req, &len));
        http_respond(c, req->method == HTTP_HEAD ? 204 : 200, "text/plain", NULL, body, (size_t)n);
}

static void fz_http_init(void)
{
        log_set_level(LOG_ERROR); /* the layer logs refusals at info: keep the run quiet */
        struct config *cfg = config_new_defaults();
        if (!cfg)
                abort();
        cfg->max_header_bytes = FZ_HTTP_MAX_HEADER;
        cfg->max_body_bytes = FZ_HTTP_MAX_BODY;
        uv_loop_init(&fz_http_loop);
        memset(&fz_http_srv, 0, sizeof fz_http_srv);
        fz_http_srv.loop = &fz_http_loop;
        fz_http_loop.data = &fz_http_srv;
        fz_http_srv.cfg = cfg;
        fz_http_lst.kind = LISTENER_ADMIN; /* plain listener: no TLS context */
        fz_http_lst.ctx = NULL;
        fz_http_lst.on_request = fz_http_on_request;
}

static void fz_http_fini(void)
{
        uv_loop_close(&fz_http_loop);
        config_free(fz_http_srv.cfg);
        fz_http_srv.cfg = NULL;
}

/* What conn.c's on_read does with plaintext: append to pending, then parse. */
static bool fz_http_feed(struct conn *c, const uint8_t *data, size_t len)
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
        http_process(c);
        return true;
}

/* A connection as conn_accept makes one on a plain listener, over fd. */
static struct conn *fz_http_conn_new(int fd)
{
        struct server *srv = &fz_http_srv;
        struct conn *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        c->srv = srv;
        c->lst = &fz_http_lst;
        c->id = ++srv->next_conn_id;
        uv_tcp_init(srv->loop, &c->tcp);
        uv_timer_init(srv->loop, &c->timer);
        c->tcp.data = c;
        c->timer.data = c;
        c->handles_open = 2;
        c->next = srv->conns;
        if (srv->conns)
                srv->conns->prev = c;
        srv->conns = c;
        srv->n_conns++;
        srv->metrics.connections_open++;
        if (uv_tcp_open(&c->tcp, fd) != 0) {
                close(fd);
                conn_close(c, "fuzz: open failed");
                return NULL;
        }
        c->handshake_done = true;
        conn_set_phase(c, PHASE_IDLE);
        http_conn_init(c);
        conn_resume_reading(c);
        return c;
}

/* Answer the deferred request, as pipeline.c does when validation comes back. */
static void fz_http_answer_deferred(void)
{
        struct conn *c = fz_http_deferred;
        fz_http_deferred = NULL;
        if (!c->closing) {
                static const char ok[] = "deferred\n";
                http_respond(c, 202, "text/plain", "X-Fuzz: 1\r\n", ok, sizeof ok - 1);
        }
        conn_unref(c);
}

/*
 * Input: byte 0 selects the feeding (bits 0-5: chunk size 1..64, or whole when bit 6 is set),
 * bit 7 answers requests deferred; byte 1 bit 0 puts the server in draining. The rest is
 * what the peer sends.
 */
static int fz_http_one(const uint8_t *data, size_t size)
{
        if (size < 2)
                return 0;
        size_t chunk = (data[0] & 0x40) ? size : (size_t)(data[0] & 0x3f) + 1;
        fz_http_defer = (data[0] & 0x80) != 0;
        fz_http_srv.draining = (data[1] & 1) != 0;
        /* A draining server finishes when its last connection goes (maybe_finish closes the
         * outbox, then the loop handles). The stub has none: a job "in flight" holds it. */
        fz_http_srv.jobs_in_flight = fz_http_srv.draining ? 1 : 0;
        data += 2;
        size -= 2;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
                return 0;
        struct conn *c = fz_http_conn_new(sv[0]);
        if (c) {
                conn_ref(c); /* keep it readable after a close, until the end */
                for (size_t off = 0; off < size && !c->closing;) {
                        size_t n = size - off < chunk ? size - off : chunk;
                        if (!fz_http_feed(c, data + off, n))
                                break;
                        off += n;
                        /* Deferred answers arrive between reads (each may parse more). */
                        for (int r = 0; r < FZ_HTTP_MAX_ROUNDS && fz_http_deferred; r++)
                                fz_http_answer_deferred();
                        uv_run(&fz_http_loop, UV_RUN_NOWAIT);
                }
                for (int r = 0; r < FZ_HTTP_MAX_ROUNDS && fz_http_deferred; r++)
                        fz_http_answer_deferred();
                if (fz_http_deferred) /* bounded rounds: drop the rest */
                        conn_unref(fz_http_deferred);
                fz_http_deferred = NULL;
                fz_http_check(c->pending_len <= size, "more pending than was sent");
                if (!c->closing)
                        conn_close(c, "fuzz: end of input");
                conn_unref(c);
        }
        uv_run(&fz_http_loop, UV_RUN_DEFAULT); /* close callbacks free the connection */
        fz_http_check(fz_http_srv.n_conns == 0 && fz_http_srv.conns == NULL,
                      "connection still listed after close");
        close(sv[1]);
        return 0;
}

FUZZ_ENTRY(http)
