/*
 * client.c - the load generator's connection engine (see client.h). Each connection is a
 * non-blocking socket watched by a uv_poll_t, with an SSL object on the fd. One request per
 * connection at a time (no pipelining): write it whole, read the answer whole (Content-Length),
 * classify it. Everything lives in struct run, owned by load_run on the caller's thread.
 */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

#define SWEEP_MS      20  /* timeouts, reconnects, progress */
#define TICK_MS       1   /* open-loop scheduler */
#define RETRY_BASE_MS 100 /* reconnect back-off step after a failed set-up */
#define RETRY_MAX_MS  2000
#define IN_INITIAL    4096
#define REQ_HEAD_MAX  512 /* bytes of request line + headers */

enum cstate { C_DEAD = 0, C_CONNECTING, C_HANDSHAKE, C_IDLE, C_WRITING, C_READING };

struct run;

struct lconn {
        struct run *run;
        int idx;
        int region; /* index into opts->regions */
        enum cstate st;
        int fd;
        SSL *ssl;
        uv_poll_t *poll;
        int events;
        char *out; /* request being written */
        size_t out_len, out_off, out_cap;
        char *in; /* answer being read */
        size_t in_len, in_cap;
        size_t head_len; /* 0 until the header end is seen */
        size_t want;     /* head_len + Content-Length */
        bool server_close;
        bool has_req;
        bool in_free;      /* on the free stack */
        uint64_t t_start;  /* µs: intended send time of the request */
        uint64_t deadline; /* µs: request or set-up deadline */
        uint64_t retry_at; /* µs: C_DEAD, keep-alive: reconnect not before */
        int fails;         /* consecutive failed set-ups */
};

struct run {
        const struct load_opts *o;
        struct load_result *r;
        uv_loop_t loop;
        uv_timer_t sweep, tick;
        SSL_CTX *ctx[GEN_N_REGIONS];
        struct sockaddr_storage addr;
        socklen_t addr_len;
        struct lconn *conns;
        int *free_stack; /* connections ready for a request */
        int n_free;
        char *doc;         /* scratch: one generated body */
        uint64_t *backlog; /* open loop: intended send times, a ring */
        size_t bl_head, bl_len;
        uint64_t t0;        /* µs, clock start; 0 during set-up */
        uint64_t scheduled; /* open loop: requests scheduled so far */
        uint64_t issued;    /* requests handed to a connection */
        uint64_t next_seq;
        uint64_t last_answer;
        uint64_t last_ok; /* µs: the last OK answer */
        uint64_t last_issue;
        uint64_t next_progress;
        uint64_t progress_ok;
        uint64_t progress_max_us; /* the slowest OK answer since the last progress line */
        bool issuing_done;        /* count or duration reached */
        bool finished;
        bool dispatching, dispatch_again;
        uint64_t inflight;
        struct rusage ru0; /* at clock start */
        int connecting;    /* set-ups in progress */
        int setup_next;    /* keep-alive set-up: next connection to open */
        int setup_done;    /* keep-alive set-up: connections that reached IDLE or gave up */
        uint64_t setup_start;
        char err[256];
};

static const char *const err_names[LERR__N] = {
    "info", "error", "fault", "http", "malformed", "connect", "tls", "closed", "timeout", "backlog",
};

const char *load_err_name(enum load_err e)
{
        return (unsigned)e < LERR__N ? err_names[e] : "?";
}

static uint64_t now_us(struct run *u)
{
        (void)u;
        return uv_hrtime() / 1000;
}

static void conn_open(struct lconn *c);
static void conn_drive(struct lconn *c);
static void dispatch(struct run *u);
static void maybe_finish(struct run *u);

/* ---- answers ------------------------------------------------------------------------ */

static const char *find(const char *hay, size_t len, const char *needle)
{
        return memmem(hay, len, needle, strlen(needle));
}

int load_classify(const char *a, size_t len, int *status)
{
        *status = 0;
        if (len < 12 || strncmp(a, "HTTP/1.", 7) != 0)
                return LERR_MALFORMED;
        int st = atoi(a + 9);
        *status = st;
        const char *hend = find(a, len, "\r\n\r\n");
        if (!hend)
                return LERR_MALFORMED;
        const char *body = hend + 4;
        size_t blen = len - (size_t)(body - a);
        const char *rsp = find(body, blen, "RegisterCertificateResponse");
        if (!rsp) {
                if (find(body, blen, "Fault>"))
                        return LERR_FAULT;
                return st != 200 ? LERR_HTTP : LERR_MALFORMED;
        }
        if (st != 200)
                return LERR_HTTP;
        const char *rc = find(rsp, blen - (size_t)(rsp - body), "resultCode>");
        if (!rc)
                return LERR_MALFORMED;
        rc += strlen("resultCode>");
        size_t rest = len - (size_t)(rc - a);
        if (rest >= 3 && !memcmp(rc, "OK<", 3))
                return -1;
        if (rest >= 5 && !memcmp(rc, "INFO<", 5))
                return LERR_INFO;
        if (rest >= 6 && !memcmp(rc, "ERROR<", 6))
                return LERR_ERROR;
        return LERR_MALFORMED;
}

/* A short human sample of a non-OK answer: the resultText or faultstring, else the body. */
static void keep_sample(struct run *u, enum load_err e, int status, const char *a, size_t len)
{
        struct load_result *r = u->r;
        if (r->n_samples >= LOAD_SAMPLES)
                return;
        char what[160] = "";
        if (a && len) {
                const char *from = NULL, *tag = NULL;
                if ((from = find(a, len, "resultText>")) != NULL)
                        tag = "resultText>";
                else if ((from = find(a, len, "faultstring>")) != NULL)
                        tag = "faultstring>";
                else if ((from = find(a, len, "\r\n\r\n")) != NULL)
                        tag = "\r\n\r\n";
                if (from) {
                        from += strlen(tag);
                        size_t n = len - (size_t)(from - a);
                        const char *lt = memchr(from, '<', n);
                        if (lt && tag[0] != '\r')
                                n = (size_t)(lt - from);
                        if (n > sizeof what - 1)
                                n = sizeof what - 1;
                        for (size_t i = 0; i < n; i++)
                                what[i] = (from[i] >= 32 && from[i] < 127) ? from[i] : ' ';
                        what[n] = '\0';
                }
        }
        char line[LOAD_SAMPLE_LEN];
        snprintf(line, sizeof line, "%s (HTTP %d): %s", load_err_name(e), status, what);
        for (size_t i = 0; i < r->n_samples; i++)
                if (!strcmp(r->samples[i], line))
                        return;
        snprintf(r->samples[r->n_samples++], LOAD_SAMPLE_LEN, "%s", line);
}

/* ---- connection life ---------------------------------------------------------------- */

static void poll_closed(uv_handle_t *h)
{
        free(h);
}

static void conn_teardown(struct lconn *c)
{
        if (c->poll) {
                uv_poll_stop(c->poll);
                uv_close((uv_handle_t *)c->poll, poll_closed);
                c->poll = NULL;
        }
        if (c->ssl) {
                SSL_free(c->ssl);
                c->ssl = NULL;
        }
        if (c->fd >= 0) {
                close(c->fd);
                c->fd = -1;
        }
        if (c->st == C_CONNECTING || c->st == C_HANDSHAKE)
                c->run->connecting--;
        c->st = C_DEAD;
        c->events = 0;
        c->in_len = c->head_len = c->want = 0;
        c->server_close = false;
}

static void push_free(struct run *u, struct lconn *c)
{
        if (!c->in_free) {
                c->in_free = true;
                u->free_stack[u->n_free++] = c->idx;
        }
}

/* The request on c (if any) is over: count it. */
static void request_done(struct lconn *c, int kind, int status, const char *a, size_t len)
{
        struct run *u = c->run;
        struct load_result *r = u->r;
        if (!c->has_req)
                return;
        c->has_req = false;
        r->completed++;
        u->inflight--;
        uint64_t t = now_us(u);
        u->last_answer = t;
        if (status >= 100 && status < 600)
                r->http_status[status / 100]++;
        if (kind < 0) {
                r->ok++;
                u->last_ok = t;
                uint64_t lat = t > c->t_start ? t - c->t_start : 0;
                hist_add(&r->latency, lat);
                if (lat > u->progress_max_us)
                        u->progress_max_us = lat;
        } else {
                r->req_errs[kind]++;
                keep_sample(u, (enum load_err)kind, status, a, len);
        }
}

/* Close c after a failure that is already counted, and schedule what comes next. */
static void conn_drop(struct lconn *c)
{
        struct run *u = c->run;
        bool setup = c->st == C_CONNECTING || c->st == C_HANDSHAKE;
        bool setup_phase = u->t0 == 0 && !u->o->new_conn;
        conn_teardown(c);
        if (setup)
                c->fails++;
        int back = RETRY_BASE_MS * c->fails;
        c->retry_at = now_us(u) + (uint64_t)(back < RETRY_MAX_MS ? back : RETRY_MAX_MS) * 1000;
        if (setup_phase && setup)
                u->setup_done++; /* given up for the set-up; the sweep retries it later */
        if (u->o->new_conn)
                push_free(u, c);
        dispatch(u);
        maybe_finish(u);
}

/* Something failed on c: count it against its request (or the connection), then drop c. */
static void conn_fail(struct lconn *c, enum load_err kind)
{
        if (c->has_req)
                request_done(c, kind, 0, NULL, 0);
        else
                c->run->r->conn_errs[kind]++;
        conn_drop(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
        struct lconn *c = h->data;
        (void)events;
        if (status < 0) {
                conn_fail(c, c->st == C_CONNECTING ? LERR_CONNECT : LERR_CLOSED);
                return;
        }
        conn_drive(c);
}

static void want(struct lconn *c, int ev)
{
        if (!c->poll || c->events == ev)
                return;
        c->events = ev;
        uv_poll_start(c->poll, ev, on_poll);
}

static void conn_open(struct lconn *c)
{
        struct run *u = c->run;
        c->fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
                c->st = C_DEAD;
                conn_fail(c, LERR_CONNECT);
                return;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->st = C_CONNECTING;
        u->connecting++;
        c->deadline = now_us(u) + (uint64_t)u->o->timeout_ms * 1000;
        int rc = connect(c->fd, (struct sockaddr *)&u->addr, u->addr_len);
        if (rc < 0 && errno != EINPROGRESS) {
                conn_fail(c, LERR_CONNECT);
                return;
        }
        c->poll = malloc(sizeof *c->poll);
        if (!c->poll || uv_poll_init(&u->loop, c->poll, c->fd) != 0) {
                free(c->poll);
                c->poll = NULL;
                conn_fail(c, LERR_CONNECT);
                return;
        }
        c->poll->data = c;
        c->events = 0;
        want(c, UV_WRITABLE);
}

/* The connection is ready for a request. */
static void conn_ready(struct lconn *c)
{
        struct run *u = c->run;
        c->st = C_IDLE;
        c->fails = 0;
        u->connecting--;
        u->r->handshakes++;
        if (u->t0 == 0 && !u->o->new_conn)
                u->setup_done++;
        if (c->has_req) { /* new-connection mode: the request was waiting for this */
                c->st = C_WRITING;
                want(c, UV_WRITABLE);
                conn_drive(c);
                return;
        }
        want(c, UV_READABLE); /* notice a server that closes an idle connection */
        push_free(u, c);
        dispatch(u);
}

static void do_handshake(struct lconn *c)
{
        ERR_clear_error();
        int rc = SSL_do_handshake(c->ssl);
        if (rc == 1) {
                conn_ready(c);
                return;
        }
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_READ)
                want(c, UV_READABLE);
        else if (e == SSL_ERROR_WANT_WRITE)
                want(c, UV_WRITABLE);
        else {
                if (!c->run->err[0]) {
                        unsigned long le = ERR_peek_error();
                        char b[160];
                        ERR_error_string_n(le, b, sizeof b);
                        snprintf(c->run->err, sizeof c->run->err, "TLS handshake: %s",
                                 le ? b : "connection closed");
                }
                conn_fail(c, LERR_TLS);
        }
}

static void start_tls(struct lconn *c)
{
        struct run *u = c->run;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
                if (!u->err[0])
                        snprintf(u->err, sizeof u->err, "connect: %s", strerror(soerr));
                conn_fail(c, LERR_CONNECT);
                return;
        }
        c->ssl = SSL_new(u->ctx[u->o->regions[c->region]]);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
                conn_fail(c, LERR_TLS);
                return;
        }
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, u->o->host) != 1)
                SSL_set1_host(c->ssl, u->o->host);
        SSL_set_connect_state(c->ssl);
        c->st = C_HANDSHAKE;
        do_handshake(c);
}

/* Make the next request into c->out. */
static int build_request(struct lconn *c)
{
        struct run *u = c->run;
        const struct load_opts *o = u->o;
        const struct gen_region *reg = gen_region_get(o->regions[c->region]);
        long blen = gen_make(o->gen, u->next_seq++, reg, true, u->doc, LOAD_MAX_DOC);
        if (blen < 0) {
                snprintf(u->err, sizeof u->err, "generated document over %d bytes", LOAD_MAX_DOC);
                return -1;
        }
        size_t need = (size_t)blen + REQ_HEAD_MAX;
        if (need > c->out_cap) {
                char *n = realloc(c->out, need);
                if (!n)
                        return -1;
                c->out = n;
                c->out_cap = need;
        }
        int h =
            snprintf(c->out, REQ_HEAD_MAX,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Content-Type: text/xml; charset=UTF-8\r\n"
                     "Content-Length: %ld\r\n%s\r\n",
                     o->path, o->host, o->port, blen, o->new_conn ? "Connection: close\r\n" : "");
        if (h < 0 || h >= REQ_HEAD_MAX)
                return -1;
        memcpy(c->out + h, u->doc, (size_t)blen);
        c->out_len = (size_t)h + (size_t)blen;
        c->out_off = 0;
        return 0;
}

/* Hand a request with intended start time t to connection c. */
static void assign(struct lconn *c, uint64_t t)
{
        struct run *u = c->run;
        if (build_request(c) != 0) {
                u->finished = true; /* cannot make requests at all: stop */
                uv_stop(&u->loop);
                return;
        }
        u->issued++;
        u->inflight++;
        u->r->sent++;
        u->last_issue = now_us(u);
        c->has_req = true;
        c->t_start = t;
        c->deadline = now_us(u) + (uint64_t)u->o->timeout_ms * 1000;
        c->in_len = c->head_len = c->want = 0;
        c->server_close = false;
        if (c->st == C_DEAD) { /* new-connection mode */
                conn_open(c);
                return;
        }
        c->st = C_WRITING;
        want(c, UV_WRITABLE);
        conn_drive(c);
}

static void do_write(struct lconn *c)
{
        while (c->out_off < c->out_len) {
                ERR_clear_error();
                int n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
                if (n > 0) {
                        c->out_off += (size_t)n;
                        continue;
                }
                int e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_WANT_WRITE) {
                        want(c, UV_WRITABLE);
                        return;
                }
                if (e == SSL_ERROR_WANT_READ) {
                        want(c, UV_READABLE);
                        return;
                }
                conn_fail(c, LERR_CLOSED);
                return;
        }
        c->st = C_READING;
        want(c, UV_READABLE);
}

/* Parse the header once it is all in: Content-Length and Connection: close. */
static int parse_head(struct lconn *c)
{
        const char *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!e)
                return c->in_len > 65536 ? -1 : 0;
        c->head_len = (size_t)(e + 4 - c->in);
        long long clen = -1;
        for (const char *p = memchr(c->in, '\n', c->head_len); p && p < e;
             p = memchr(p, '\n', (size_t)(e - p))) {
                p++;
                if (!strncasecmp(p, "Content-Length:", 15))
                        clen = atoll(p + 15);
                else if (!strncasecmp(p, "Connection:", 11)) {
                        const char *v = p + 11;
                        while (*v == ' ')
                                v++;
                        if (!strncasecmp(v, "close", 5))
                                c->server_close = true;
                } else if (!strncasecmp(p, "Transfer-Encoding:", 18))
                        return -1; /* not used by the gateway, fk-sim or nginx here */
        }
        if (clen < 0 || clen > LOAD_MAX_ANSWER)
                return -1;
        c->want = c->head_len + (size_t)clen;
        return 1;
}

static void answer_complete(struct lconn *c)
{
        struct run *u = c->run;
        c->in[c->in_len] = '\0';
        int status;
        int kind = load_classify(c->in, c->in_len, &status);
        request_done(c, kind, status, c->in, c->in_len);
        c->in_len = c->head_len = c->want = 0;
        if (c->server_close || u->o->new_conn || u->finished) {
                conn_teardown(c);
                if (u->o->new_conn)
                        push_free(u, c);
                else
                        c->retry_at = now_us(u);
        } else {
                c->st = C_IDLE;
                want(c, UV_READABLE);
                push_free(u, c);
        }
        dispatch(u);
        maybe_finish(u);
}

static void do_read(struct lconn *c)
{
        for (;;) {
                if (c->in_cap - c->in_len < 2048) {
                        size_t ncap = c->in_cap ? c->in_cap * 2 : IN_INITIAL;
                        if (ncap > LOAD_MAX_ANSWER + 65536 + 1) {
                                conn_fail(c, LERR_MALFORMED);
                                return;
                        }
                        char *n = realloc(c->in, ncap);
                        if (!n) {
                                conn_fail(c, LERR_CLOSED);
                                return;
                        }
                        c->in = n;
                        c->in_cap = ncap;
                }
                ERR_clear_error();
                int n = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len - 1));
                if (n > 0) {
                        if (c->st == C_IDLE) { /* nothing was asked */
                                conn_fail(c, LERR_MALFORMED);
                                return;
                        }
                        c->in_len += (size_t)n;
                        if (!c->head_len) {
                                int h = parse_head(c);
                                if (h < 0) {
                                        c->in[c->in_len] = '\0';
                                        int st = 0;
                                        (void)load_classify(c->in, c->in_len, &st);
                                        request_done(c, LERR_MALFORMED, st, c->in, c->in_len);
                                        conn_drop(c);
                                        return;
                                }
                        }
                        if (c->head_len && c->in_len >= c->want) {
                                if (c->in_len > c->want) { /* more than one answer */
                                        conn_fail(c, LERR_MALFORMED);
                                        return;
                                }
                                answer_complete(c);
                                return;
                        }
                        continue;
                }
                int e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_WANT_READ)
                        return; /* already polling for readable */
                if (e == SSL_ERROR_WANT_WRITE) {
                        want(c, UV_WRITABLE);
                        return;
                }
                /* Closed or reset. */
                conn_fail(c, LERR_CLOSED);
                return;
        }
}

static void conn_drive(struct lconn *c)
{
        switch (c->st) {
        case C_CONNECTING:
                start_tls(c);
                break;
        case C_HANDSHAKE:
                do_handshake(c);
                break;
        case C_WRITING:
                do_write(c);
                break;
        case C_READING:
        case C_IDLE:
                do_read(c);
                break;
        case C_DEAD:
                break;
        }
}

/* ---- scheduling ---------------------------------------------------------------------- */

static bool may_issue(struct run *u)
{
        return u->t0 != 0 && !u->issuing_done && !u->finished;
}

static void stop_issuing(struct run *u)
{
        if (!u->issuing_done) {
                u->issuing_done = true;
                u->r->issue_s = (double)(now_us(u) - u->t0) / 1e6;
        }
}

static void dispatch(struct run *u)
{
        const struct load_opts *o = u->o;
        if (u->dispatching) { /* a failure inside assign() asked again: the outer loop does it */
                u->dispatch_again = true;
                return;
        }
        u->dispatching = true;
        do {
                u->dispatch_again = false;
                while (u->n_free > 0 && !u->finished && u->t0 != 0) {
                        uint64_t t;
                        if (o->rate > 0) {
                                if (u->bl_len == 0)
                                        break;
                                t = u->backlog[u->bl_head];
                                u->bl_head = (u->bl_head + 1) % LOAD_BACKLOG_MAX;
                                u->bl_len--;
                        } else {
                                if (!may_issue(u))
                                        break;
                                if (o->count && u->issued >= o->count) {
                                        stop_issuing(u);
                                        break;
                                }
                                t = now_us(u);
                        }
                        struct lconn *c = &u->conns[u->free_stack[--u->n_free]];
                        c->in_free = false;
                        assign(c, t);
                }
        } while (u->dispatch_again && !u->finished);
        u->dispatching = false;
}

static double tv_s(struct timeval tv)
{
        return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void finish(struct run *u)
{
        if (u->finished)
                return;
        u->finished = true;
        stop_issuing(u);
        uint64_t end = u->last_answer > u->t0 ? u->last_answer : now_us(u);
        u->r->elapsed_s = u->t0 ? (double)(end - u->t0) / 1e6 : 0;
        if (u->t0 && u->last_ok > u->t0)
                u->r->last_ok_wall_s = u->r->start_wall_s + (double)(u->last_ok - u->t0) / 1e6;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        u->r->cpu_user_s = tv_s(ru.ru_utime) - tv_s(u->ru0.ru_utime);
        u->r->cpu_sys_s = tv_s(ru.ru_stime) - tv_s(u->ru0.ru_stime);
        for (int i = 0; i < u->o->connections; i++) {
                struct lconn *c = &u->conns[i];
                if (c->has_req) /* only when the run was cut short */
                        request_done(c, LERR_TIMEOUT, 0, NULL, 0);
                conn_teardown(c);
        }
        uv_timer_stop(&u->sweep);
        uv_timer_stop(&u->tick);
}

static void maybe_finish(struct run *u)
{
        if (u->finished || u->t0 == 0 || !u->issuing_done)
                return;
        if (u->inflight == 0 && u->bl_len == 0)
                finish(u);
}

static void time_check(struct run *u, uint64_t t)
{
        const struct load_opts *o = u->o;
        if (u->t0 && o->duration_s > 0 && (double)(t - u->t0) >= o->duration_s * 1e6)
                stop_issuing(u);
}

/* Open loop: schedule every request due by now at its intended time. */
static void on_tick(uv_timer_t *h)
{
        struct run *u = h->data;
        const struct load_opts *o = u->o;
        uint64_t t = now_us(u);
        time_check(u, t);
        if (u->t0 == 0 || u->finished)
                return;
        if (!u->issuing_done) {
                double per = 1e6 / o->rate;
                uint64_t due = (uint64_t)((double)(t - u->t0) / per) + 1;
                if (o->count && due > o->count)
                        due = o->count;
                for (; u->scheduled < due; u->scheduled++) {
                        if (u->bl_len == LOAD_BACKLOG_MAX) {
                                u->r->req_errs[LERR_BACKLOG]++;
                                u->r->completed++;
                                continue;
                        }
                        size_t at = (u->bl_head + u->bl_len) % LOAD_BACKLOG_MAX;
                        u->backlog[at] = u->t0 + (uint64_t)((double)u->scheduled * per);
                        u->bl_len++;
                }
                if (o->count && u->scheduled >= o->count)
                        stop_issuing(u);
        }
        dispatch(u);
        maybe_finish(u);
}

static void progress(struct run *u, uint64_t t)
{
        struct load_result *r = u->r;
        uint64_t errs = 0;
        for (int k = 0; k < LERR__N; k++)
                errs += r->req_errs[k];
        double dt = (double)u->o->progress_ms / 1000.0;
        fprintf(stderr,
                "load: t=%.1fs sent=%llu ok=%llu errors=%llu in_flight=%llu backlog=%zu "
                "ok/s=%.0f max_ms=%.1f\n",
                (double)(t - u->t0) / 1e6, (unsigned long long)r->sent, (unsigned long long)r->ok,
                (unsigned long long)errs, (unsigned long long)u->inflight, u->bl_len,
                (double)(r->ok - u->progress_ok) / dt, (double)u->progress_max_us / 1000.0);
        u->progress_ok = r->ok;
        u->progress_max_us = 0;
}

static void start_clock(struct run *u)
{
        const struct load_opts *o = u->o;
        u->t0 = now_us(u);
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        u->r->start_wall_s = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
        u->r->setup_s = (double)(u->t0 - u->setup_start) / 1e6;
        getrusage(RUSAGE_SELF, &u->ru0);
        u->next_progress = u->t0 + (uint64_t)o->progress_ms * 1000;
        if (o->rate > 0)
                uv_timer_start(&u->tick, on_tick, TICK_MS, TICK_MS);
        dispatch(u);
}

static void on_sweep(uv_timer_t *h)
{
        struct run *u = h->data;
        const struct load_opts *o = u->o;
        uint64_t t = now_us(u);
        if (u->finished)
                return;
        if (u->t0 == 0) {
                /* Keep-alive set-up: open connections a batch at a time. */
                while (u->setup_next < o->connections && u->connecting < LOAD_CONNECT_PARALLEL)
                        conn_open(&u->conns[u->setup_next++]);
                for (int i = 0; i < o->connections; i++) {
                        struct lconn *c = &u->conns[i];
                        if ((c->st == C_CONNECTING || c->st == C_HANDSHAKE) && t > c->deadline)
                                conn_fail(c, LERR_TIMEOUT);
                }
                if (u->setup_done >= o->connections) {
                        int up = 0;
                        for (int i = 0; i < o->connections; i++)
                                up += u->conns[i].st == C_IDLE;
                        u->r->connected_at_start = up;
                        if (up == 0) {
                                if (!u->err[0])
                                        snprintf(u->err, sizeof u->err,
                                                 "no connection could be set up");
                                u->t0 = t;
                                u->issuing_done = true;
                                finish(u);
                                return;
                        }
                        start_clock(u);
                }
                return;
        }
        time_check(u, t);
        for (int i = 0; i < o->connections && !u->finished; i++) {
                struct lconn *c = &u->conns[i];
                if (c->st != C_DEAD && c->st != C_IDLE && t > c->deadline)
                        conn_fail(c, LERR_TIMEOUT);
                else if (c->st == C_DEAD && !o->new_conn && t >= c->retry_at &&
                         (!u->issuing_done || u->bl_len > 0) &&
                         u->connecting < LOAD_CONNECT_PARALLEL)
                        conn_open(c);
        }
        if (u->finished)
                return;
        if (o->progress_ms > 0 && t >= u->next_progress) {
                progress(u, t);
                u->next_progress += (uint64_t)o->progress_ms * 1000;
        }
        /* Nothing left to wait for, or nothing can make progress any more. */
        uint64_t stall = (uint64_t)o->timeout_ms * 2000 + 1000000;
        uint64_t last = u->last_answer > u->last_issue ? u->last_answer : u->last_issue;
        if (last < u->t0)
                last = u->t0;
        if (t - last > stall) {
                if (!u->err[0])
                        snprintf(u->err, sizeof u->err, "stalled: nothing answered for %.1fs",
                                 (double)(t - last) / 1e6);
                finish(u);
                return;
        }
        maybe_finish(u);
}

static SSL_CTX *make_ctx(const char *pki, const char *name, char *err, size_t errlen)
{
        char ca[1024], crt[1024], key[1024];
        snprintf(ca, sizeof ca, "%s/ca.crt", pki);
        snprintf(crt, sizeof crt, "%s/%s.crt", pki, name);
        snprintf(key, sizeof key, "%s/%s.key", pki, name);
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx) {
                snprintf(err, errlen, "SSL_CTX_new failed");
                return NULL;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        /* Every handshake is a full one: no session cache, no tickets. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
            SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
                char b[160];
                ERR_error_string_n(ERR_get_error(), b, sizeof b);
                snprintf(err, errlen, "TLS files %s, %s, %s: %s", ca, crt, key, b);
                SSL_CTX_free(ctx);
                return NULL;
        }
        return ctx;
}

static int check_opts(const struct load_opts *o, char *err, size_t errlen)
{
        if (!o->host || !o->path || !o->pki_dir || !o->gen)
                snprintf(err, errlen, "host, path, PKI dir and generator are required");
        else if (o->port < 1 || o->port > 65535)
                snprintf(err, errlen, "port must be 1-65535");
        else if (o->connections < 1 || o->connections > LOAD_MAX_CONNECTIONS)
                snprintf(err, errlen, "connections must be 1-%d", LOAD_MAX_CONNECTIONS);
        else if (!(o->rate >= 0 && o->rate <= LOAD_MAX_RATE))
                snprintf(err, errlen, "rate must be 0-%.0f", LOAD_MAX_RATE);
        else if (o->count == 0 && !(o->duration_s > 0))
                snprintf(err, errlen, "give a count or a duration");
        else if (o->timeout_ms < 1)
                snprintf(err, errlen, "timeout must be positive");
        else if (o->n_regions < 1 || o->n_regions > GEN_N_REGIONS)
                snprintf(err, errlen, "1-%d regions", GEN_N_REGIONS);
        else
                return 0;
        return -1;
}

int load_run(const struct load_opts *o, struct load_result *r, char *err, size_t errlen)
{
        memset(r, 0, sizeof *r);
        if (check_opts(o, err, errlen) != 0)
                return -1;
        struct run *u = calloc(1, sizeof *u);
        if (!u) {
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        u->o = o;
        u->r = r;
        u->next_seq = o->first_seq;
        int rc = -1;
        struct sockaddr_in *a4 = (struct sockaddr_in *)&u->addr;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&u->addr;
        if (inet_pton(AF_INET, o->host, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                a4->sin_port = htons((uint16_t)o->port);
                u->addr_len = sizeof *a4;
        } else if (inet_pton(AF_INET6, o->host, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons((uint16_t)o->port);
                u->addr_len = sizeof *a6;
        } else {
                snprintf(err, errlen, "host must be a numeric address: %s", o->host);
                free(u);
                return -1;
        }
        for (size_t i = 0; i < o->n_regions; i++) {
                size_t k = o->regions[i];
                const struct gen_region *reg = gen_region_get(k);
                if (!reg) {
                        snprintf(err, errlen, "unknown region %zu", k);
                        goto out;
                }
                if (!u->ctx[k] && !(u->ctx[k] = make_ctx(o->pki_dir, reg->name, err, errlen)))
                        goto out;
        }
        u->conns = calloc((size_t)o->connections, sizeof *u->conns);
        u->free_stack = calloc((size_t)o->connections, sizeof *u->free_stack);
        u->doc = malloc(LOAD_MAX_DOC);
        u->backlog = o->rate > 0 ? malloc(LOAD_BACKLOG_MAX * sizeof *u->backlog) : NULL;
        if (!u->conns || !u->free_stack || !u->doc || (o->rate > 0 && !u->backlog)) {
                snprintf(err, errlen, "out of memory");
                goto out;
        }
        if (uv_loop_init(&u->loop) != 0) {
                snprintf(err, errlen, "uv_loop_init failed");
                goto out;
        }
        uv_timer_init(&u->loop, &u->sweep);
        uv_timer_init(&u->loop, &u->tick);
        u->sweep.data = u->tick.data = u;
        for (int i = 0; i < o->connections; i++) {
                struct lconn *c = &u->conns[i];
                c->run = u;
                c->idx = i;
                c->fd = -1;
                c->region = (int)((size_t)i % o->n_regions);
        }
        hist_reset(&r->latency);
        u->setup_start = now_us(u);
        if (o->new_conn) {
                for (int i = o->connections - 1; i >= 0; i--)
                        push_free(u, &u->conns[i]);
                start_clock(u);
        } else {
                while (u->setup_next < o->connections && u->connecting < LOAD_CONNECT_PARALLEL)
                        conn_open(&u->conns[u->setup_next++]);
        }
        uv_timer_start(&u->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        uv_run(&u->loop, UV_RUN_DEFAULT);
        if (!u->finished) /* uv_stop: could not build a request */
                finish(u);
        uv_close((uv_handle_t *)&u->sweep, NULL);
        uv_close((uv_handle_t *)&u->tick, NULL);
        uv_run(&u->loop, UV_RUN_DEFAULT);
        uv_loop_close(&u->loop);
        if (u->err[0] && r->ok == 0) {
                snprintf(err, errlen, "%s", u->err);
        } else {
                if (u->err[0])
                        fprintf(stderr, "load: note: %s\n", u->err);
                rc = 0;
        }
out:
        if (u->conns)
                for (int i = 0; i < o->connections; i++) {
                        free(u->conns[i].in);
                        free(u->conns[i].out);
                }
        for (size_t k = 0; k < GEN_N_REGIONS; k++)
                SSL_CTX_free(u->ctx[k]);
        free(u->conns);
        free(u->free_stack);
        free(u->doc);
        free(u->backlog);
        free(u);
        return rc;
}
