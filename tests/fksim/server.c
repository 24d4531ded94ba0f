/*
 * server.c - the simulator's sockets: loopback listeners, the acceptor thread, one blocking
 * thread per connection (bounded by --max-conns; keep-alive; TLS with a required client
 * certificate, or plain HTTP on the control listener), HTTP/1.1 via libhttp-parser.
 * Owns struct conn and its descriptor, SSL and buffers; the connection list is under sim->mu.
 */
#include "fksim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "log.h"

struct conn {
        struct sim *sim;
        struct conn *prev, *next;
        pthread_t tid;
        uint64_t id;
        int fd;
        SSL *ssl;
        bool control;
        bool reset;    /* end with RST (down) */
        bool no_close; /* TLS broken or cut: no close_notify */
        bool linger;   /* refused: drain what the peer still sends, so our alert or error
                          answer is not destroyed by an RST */
        char caller[FKSIM_CALLER_MAX + 1];

        /* the request being parsed */
        http_parser parser;
        struct buf url;
        struct buf body;
        size_t header_bytes;
        int local_status; /* 413/414/431 decided by a callback */
        bool keep_alive;
        bool expect_continue;
        bool in_value;
        char field[64];
        size_t field_len;
        char value[64];
        size_t value_len;
};

/* ---- listeners and TLS context ------------------------------------------------------ */

static bool is_loopback(const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        }
        return false;
}

int sim_listen(const char *hostport, int *port_out, char *err, size_t errlen)
{
        char host[64];
        const char *colon = strrchr(hostport, ':');
        if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host) {
                snprintf(err, errlen, "bad address '%s' (want 127.0.0.1:PORT or [::1]:PORT)",
                         hostport);
                return -1;
        }
        memcpy(host, hostport, (size_t)(colon - hostport));
        host[colon - hostport] = '\0';
        if (host[0] == '[') {
                size_t l = strlen(host);
                if (l < 3 || host[l - 1] != ']') {
                        snprintf(err, errlen, "bad address '%s'", hostport);
                        return -1;
                }
                memmove(host, host + 1, l - 2);
                host[l - 2] = '\0';
        }
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || end == colon + 1 || port < 0 || port > 65535) {
                snprintf(err, errlen, "bad port in '%s'", hostport);
                return -1;
        }
        struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                                 .ai_socktype = SOCK_STREAM};
        struct addrinfo *ai = NULL;
        int rc = getaddrinfo(host, colon + 1, &hints, &ai);
        if (rc != 0) {
                snprintf(err, errlen, "address '%s': %s", hostport, gai_strerror(rc));
                return -1;
        }
        if (!is_loopback(ai->ai_addr)) {
                snprintf(err, errlen, "address '%s' is not loopback", hostport);
                freeaddrinfo(ai);
                return -1;
        }
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 512) < 0) {
                snprintf(err, errlen, "listen on '%s': %s", hostport, strerror(errno));
                if (fd >= 0)
                        close(fd);
                freeaddrinfo(ai);
                return -1;
        }
        freeaddrinfo(ai);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
                snprintf(err, errlen, "getsockname: %s", strerror(errno));
                close(fd);
                return -1;
        }
        *port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
        return fd;
}

static void ssl_err_string(char *err, size_t errlen, const char *what)
{
        unsigned long e = ERR_peek_last_error();
        char tmp[256] = "no OpenSSL error";
        if (e)
                ERR_error_string_n(e, tmp, sizeof tmp);
        snprintf(err, errlen, "%s: %s", what, tmp);
        ERR_clear_error();
}

SSL_CTX *sim_tls_ctx_new(const char *cert, const char *key, const char *ca, const char *crl,
                         char *err, size_t errlen)
{
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx) {
                ssl_err_string(err, errlen, "SSL_CTX_new");
                return NULL;
        }
        STACK_OF(X509_NAME) *names = NULL;
        static const unsigned char sid_ctx[] = "fk-sim";
        if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
                ssl_err_string(err, errlen, "min protocol");
                goto fail;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
                ssl_err_string(err, errlen, cert);
                goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
                ssl_err_string(err, errlen, key);
                goto fail;
        }
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
                ssl_err_string(err, errlen, ca);
                goto fail;
        }
        names = SSL_load_client_CA_file(ca);
        if (!names) {
                ssl_err_string(err, errlen, ca);
                goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        if (crl) {
                X509_STORE *st = SSL_CTX_get_cert_store(ctx);
                X509_LOOKUP *lk = X509_STORE_add_lookup(st, X509_LOOKUP_file());
                if (!lk || X509_load_crl_file(lk, crl, X509_FILETYPE_PEM) <= 0) {
                        ssl_err_string(err, errlen, crl);
                        goto fail;
                }
                X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
        return ctx;
fail:
        SSL_CTX_free(ctx);
        return NULL;
}

/* ---- helpers ------------------------------------------------------------------------ */

static void set_timeouts(int fd, int ms)
{
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Half-close, read and drop what the peer still sends (bounded), then close: the peer
 * gets our last bytes instead of an RST caused by its own unread request. */
static void close_lingering(int fd)
{
        shutdown(fd, SHUT_WR);
        set_timeouts(fd, FKSIM_LINGER_MS);
        char sink[4096];
        size_t total = 0;
        while (total < FKSIM_LINGER_BYTES) {
                ssize_t n = recv(fd, sink, sizeof sink, 0);
                if (n <= 0)
                        break;
                total += (size_t)n;
        }
        close(fd);
}

static void close_rst(int fd)
{
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
}

void sim_reset_main_conns_locked(struct sim *s)
{
        for (struct conn *c = s->conns; c; c = c->next) {
                if (c->control)
                        continue;
                c->reset = true;
                shutdown(c->fd, SHUT_RDWR);
        }
}

/* Sleep ms, cut short by stop; -1 when stopping. */
static int sim_sleep(struct sim *s, int ms)
{
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += ms / 1000;
        dl.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && pthread_cond_timedwait(&s->cond, &s->mu, &dl) != ETIMEDOUT)
                ;
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        return stop ? -1 : 0;
}

static void caller_of(SSL *ssl, char *out, size_t cap)
{
        snprintf(out, cap, "-");
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (!peer)
                return;
        X509_NAME *name = X509_get_subject_name(peer);
        int i = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1);
        if (i >= 0) {
                unsigned char *u = NULL;
                int n =
                    ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
                if (n > 0 && (size_t)n < cap) {
                        size_t o = 0;
                        for (int k = 0; k < n; k++)
                                out[o++] = (u[k] >= 0x20 && u[k] < 0x7f) ? (char)u[k] : '?';
                        out[o] = '\0';
                }
                OPENSSL_free(u);
        }
        X509_free(peer);
}

static int io_read(struct conn *c, char *buf, size_t cap)
{
        if (c->ssl) {
                int n = SSL_read(c->ssl, buf, (int)cap);
                if (n <= 0) {
                        int e = SSL_get_error(c->ssl, n);
                        if (e != SSL_ERROR_ZERO_RETURN)
                                c->no_close = true;
                        ERR_clear_error();
                        return -1;
                }
                return n;
        }
        ssize_t n = recv(c->fd, buf, cap, 0);
        return n > 0 ? (int)n : -1;
}

static int io_write(struct conn *c, const char *p, size_t len)
{
        while (len > 0) {
                int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
                ssize_t n;
                if (c->ssl) {
                        n = SSL_write(c->ssl, p, chunk);
                        if (n <= 0) {
                                c->no_close = true;
                                ERR_clear_error();
                                return -1;
                        }
                } else {
                        n = send(c->fd, p, (size_t)chunk, MSG_NOSIGNAL);
                        if (n <= 0)
                                return -1;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static const char *status_text(int st)
{
        switch (st) {
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 413:
                return "Payload Too Large";
        case 414:
                return "URI Too Long";
        case 431:
                return "Request Header Fields Too Large";
        case 500:
                return "Internal Server Error";
        default:
                return "Status";
        }
}

/* Write one response; -1 when the connection must end. */
static int send_response(struct conn *c, int status, const char *ctype, const struct buf *body,
                         bool keep, bool cut)
{
        struct buf out = {0};
        int rc = buf_printf(&out,
                            "HTTP/1.1 %d %s\r\nServer: fk-sim\r\nContent-Type: %s\r\n"
                            "Content-Length: %zu\r\n%s\r\n",
                            status, status_text(status), ctype, body->len,
                            keep ? "" : "Connection: close\r\n");
        size_t head = out.len;
        if (rc == 0 && body->len)
                rc = buf_append(&out, body->p, body->len);
        if (rc == 0) {
                size_t n = cut ? head + body->len / 2 : out.len;
                rc = io_write(c, out.p, n);
        }
        buf_free(&out);
        if (cut) {
                c->no_close = true;
                return -1;
        }
        return rc < 0 || !keep ? -1 : 0;
}

static int send_plain_error(struct conn *c, int status, const char *msg)
{
        c->linger = true;
        struct buf b = {0};
        buf_printf(&b, "%s\n", msg);
        send_response(c, status, "text/plain; charset=utf-8", &b, false, false);
        buf_free(&b);
        return -1;
}

/* ---- HTTP parsing callbacks --------------------------------------------------------- */

static int count_header(struct conn *c, size_t n)
{
        c->header_bytes += n;
        if (c->header_bytes > FKSIM_MAX_HEADER_BYTES) {
                c->local_status = 431;
                return -1;
        }
        return 0;
}

static int on_message_begin(http_parser *p)
{
        struct conn *c = p->data;
        buf_reset(&c->url);
        buf_reset(&c->body);
        c->header_bytes = 0;
        c->expect_continue = false;
        c->in_value = false;
        c->field_len = c->value_len = 0;
        return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
        struct conn *c = p->data;
        if (c->url.len + n > FKSIM_MAX_URL) {
                c->local_status = 414;
                return -1;
        }
        return count_header(c, n) < 0 || buf_append(&c->url, at, n) < 0 ? -1 : 0;
}

static void end_header(struct conn *c)
{
        if (c->field_len == strlen("expect") && strncasecmp(c->field, "expect", 6) == 0 &&
            c->value_len == strlen("100-continue") &&
            strncasecmp(c->value, "100-continue", 12) == 0)
                c->expect_continue = true;
        c->field_len = c->value_len = 0;
        c->in_value = false;
}

static void keep_prefix(char *dst, size_t cap, size_t *len, const char *at, size_t n)
{
        /* only short headers matter: keep their first bytes, count the rest */
        for (size_t i = 0; i < n; i++) {
                if (*len < cap)
                        dst[*len] = at[i];
                (*len)++;
        }
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
        struct conn *c = p->data;
        if (c->in_value)
                end_header(c);
        keep_prefix(c->field, sizeof c->field, &c->field_len, at, n);
        return count_header(c, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
        struct conn *c = p->data;
        c->in_value = true;
        keep_prefix(c->value, sizeof c->value, &c->value_len, at, n);
        return count_header(c, n);
}

static int on_headers_complete(http_parser *p)
{
        struct conn *c = p->data;
        if (c->in_value)
                end_header(c);
        if (p->content_length != ULLONG_MAX && p->content_length > FKSIM_MAX_BODY_BYTES) {
                c->local_status = 413;
                return -1;
        }
        if (c->expect_continue && p->http_major == 1 && p->http_minor >= 1) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                if (io_write(c, cont, sizeof cont - 1) < 0)
                        return -1;
        }
        return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
        struct conn *c = p->data;
        if (c->body.len + n > FKSIM_MAX_BODY_BYTES) {
                c->local_status = 413;
                return -1;
        }
        return buf_append(&c->body, at, n);
}

static int on_message_complete(http_parser *p)
{
        struct conn *c = p->data;
        c->keep_alive = http_should_keep_alive(p) != 0;
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- one request, one connection ---------------------------------------------------- */

static int respond(struct conn *c)
{
        struct sim *s = c->sim;
        char path[FKSIM_MAX_URL + 1];
        size_t plen = strcspn(c->url.p ? c->url.p : "", "?#");
        memcpy(path, c->url.p ? c->url.p : "", plen);
        path[plen] = '\0';
        struct sim_request rq = {
            .method = http_method_str((enum http_method)c->parser.method),
            .path = path,
            .body = c->body.p ? c->body.p : "",
            .body_len = c->body.len,
            .control_listener = c->control,
            .caller = c->caller,
            .conn_id = c->id,
        };
        struct sim_response rs = {0};
        sim_handle(s, &rq, &rs);
        int rc = 0;
        if (rs.delay_ms > 0 && sim_sleep(s, rs.delay_ms) < 0)
                rc = -1;
        if (rc == 0)
                rc = send_response(c, rs.status, rs.content_type, &rs.body, c->keep_alive,
                                   rs.action == SIM_SEND_CUT);
        buf_free(&rs.body);
        return rc;
}

static void serve(struct conn *c)
{
        char in[16384];
        size_t have = 0, off = 0;
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        for (;;) {
                if (off == have) {
                        int n = io_read(c, in, sizeof in);
                        if (n <= 0)
                                return;
                        have = (size_t)n;
                        off = 0;
                }
                size_t np = http_parser_execute(&c->parser, &parser_settings, in + off, have - off);
                off += np;
                enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
                if (c->local_status) {
                        LOGI("fksim_http_refused", "#status", (long long)c->local_status, "#conn",
                             (long long)c->id);
                        send_plain_error(c, c->local_status, status_text(c->local_status));
                        return;
                }
                if (e == HPE_PAUSED) {
                        http_parser_pause(&c->parser, 0);
                        if (respond(c) < 0)
                                return;
                        continue;
                }
                if (e != HPE_OK) {
                        pthread_mutex_lock(&c->sim->mu);
                        c->sim->st.bad_requests++;
                        pthread_mutex_unlock(&c->sim->mu);
                        LOGI("fksim_http_error", "reason", http_errno_name(e), "#conn",
                             (long long)c->id);
                        send_plain_error(c, 400, http_errno_description(e));
                        return;
                }
                if (off < have && np == 0)
                        return; /* no progress: cannot happen, but never spin */
        }
}

static int push_done_locked(struct sim *s, pthread_t t);

static void conn_end(struct conn *c)
{
        struct sim *s = c->sim;
        pthread_mutex_lock(&s->mu);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        bool rst = c->reset;
        pthread_mutex_unlock(&s->mu);

        if (c->ssl) {
                if (!rst && !c->no_close)
                        SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
        }
        if (rst)
                close_rst(c->fd);
        else if (c->linger)
                close_lingering(c->fd);
        else
                close(c->fd);
        buf_free(&c->url);
        buf_free(&c->body);
        ERR_clear_error();
        uint64_t id = c->id;
        pthread_t tid = c->tid;
        free(c);

        pthread_mutex_lock(&s->mu);
        s->active--;
        /* joined by the acceptor or by sim_stop; if the list cannot grow, detach instead */
        if (push_done_locked(s, tid) < 0)
                pthread_detach(tid);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
        LOGD("fksim_conn_closed", "#conn", (long long)id);
}

static void *conn_main(void *arg)
{
        struct conn *c = arg;
        struct sim *s = c->sim;
        set_timeouts(c->fd, FKSIM_HANDSHAKE_MS);
        if (!c->control) {
                char reason[256];
                c->ssl = SSL_new(s->ctx);
                if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
                        ssl_err_string(reason, sizeof reason, "SSL_new");
                        LOGE("fksim_tls_error", "reason", reason, "#conn", (long long)c->id);
                        c->no_close = true;
                        goto done;
                }
                ERR_clear_error();
                int r = SSL_accept(c->ssl);
                if (r != 1) {
                        int saved_errno = errno;
                        int e = SSL_get_error(c->ssl, r);
                        long vr = SSL_get_verify_result(c->ssl);
                        if (e == SSL_ERROR_SSL && vr != X509_V_OK) {
                                snprintf(reason, sizeof reason, "client certificate: %s",
                                         X509_verify_cert_error_string(vr));
                                ERR_clear_error();
                        } else if (e == SSL_ERROR_SSL) {
                                ssl_err_string(reason, sizeof reason, "handshake");
                        } else
                                snprintf(reason, sizeof reason, "handshake: connection %s",
                                         saved_errno == EAGAIN ? "timed out" : "closed by peer");
                        ERR_clear_error();
                        c->no_close = true;
                        c->linger = true;
                        pthread_mutex_lock(&s->mu);
                        s->st.handshake_failures++;
                        pthread_mutex_unlock(&s->mu);
                        LOGI("fksim_handshake_failed", "reason", reason, "#conn", (long long)c->id);
                        goto done;
                }
                caller_of(c->ssl, c->caller, sizeof c->caller);
                pthread_mutex_lock(&s->mu);
                s->st.connections++;
                pthread_mutex_unlock(&s->mu);
                LOGI("fksim_conn", "caller", c->caller, "tls", SSL_get_version(c->ssl), "#conn",
                     (long long)c->id);
        } else {
                snprintf(c->caller, sizeof c->caller, "control");
                pthread_mutex_lock(&s->mu);
                s->st.control_connections++;
                pthread_mutex_unlock(&s->mu);
        }
        set_timeouts(c->fd, FKSIM_IDLE_MS);
        serve(c);
done:
        conn_end(c);
        return NULL;
}

/* ---- acceptor ----------------------------------------------------------------------- */

static int push_done_locked(struct sim *s, pthread_t t)
{
        if (s->ndone == s->done_cap) {
                size_t cap = s->done_cap ? s->done_cap * 2 : 64;
                pthread_t *v = realloc(s->done, cap * sizeof *v);
                if (!v)
                        return -1;
                s->done = v;
                s->done_cap = cap;
        }
        s->done[s->ndone++] = t;
        return 0;
}

static void reap(struct sim *s)
{
        for (;;) {
                pthread_mutex_lock(&s->mu);
                if (s->ndone == 0) {
                        pthread_mutex_unlock(&s->mu);
                        return;
                }
                pthread_t t = s->done[--s->ndone];
                pthread_mutex_unlock(&s->mu);
                pthread_join(t, NULL);
        }
}

static void accept_one(struct sim *s, int lfd, bool control)
{
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return;
        pthread_mutex_lock(&s->mu);
        if (s->stopping) {
                pthread_mutex_unlock(&s->mu);
                close_rst(fd);
                return;
        }
        if (!control && s->b.down) {
                s->st.refused_down++;
                pthread_mutex_unlock(&s->mu);
                close_rst(fd);
                LOGD("fksim_refused", "reason", "down");
                return;
        }
        if (s->active >= s->max_conns) {
                s->st.refused_full++;
                pthread_mutex_unlock(&s->mu);
                close_rst(fd);
                LOGW("fksim_refused", "reason", "max-conns");
                return;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
                pthread_mutex_unlock(&s->mu);
                close_rst(fd);
                return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->sim = s;
        c->fd = fd;
        c->control = control;
        c->id = ++s->next_conn_id;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->active++;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, FKSIM_CONN_STACK);
        /* the thread cannot run conn_end before we unlock, so c->tid is set in time */
        int rc = pthread_create(&c->tid, &attr, conn_main, c);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
                s->conns = c->next;
                if (c->next)
                        c->next->prev = NULL;
                s->active--;
                pthread_mutex_unlock(&s->mu);
                close_rst(fd);
                free(c);
                LOGE("fksim_thread_failed", "reason", strerror(rc));
                return;
        }
        pthread_mutex_unlock(&s->mu);
}

static void *acceptor_main(void *arg)
{
        struct sim *s = arg;
        struct pollfd p[3] = {
            {.fd = s->listen_fd, .events = POLLIN},
            {.fd = s->control_fd, .events = POLLIN},
            {.fd = s->wake[0], .events = POLLIN},
        };
        for (;;) {
                reap(s);
                int n = poll(p, 3, 500);
                if (n < 0 && errno != EINTR)
                        break;
                if (n <= 0)
                        continue;
                if (p[2].revents)
                        break;
                if (p[0].revents & POLLIN)
                        accept_one(s, s->listen_fd, false);
                if (p[1].revents & POLLIN)
                        accept_one(s, s->control_fd, true);
        }
        return NULL;
}

int sim_start(struct sim *s, char *err, size_t errlen)
{
        if (pipe2(s->wake, O_CLOEXEC) < 0) {
                snprintf(err, errlen, "pipe: %s", strerror(errno));
                return -1;
        }
        int rc = pthread_create(&s->acceptor, NULL, acceptor_main, s);
        if (rc != 0) {
                snprintf(err, errlen, "acceptor thread: %s", strerror(rc));
                close(s->wake[0]);
                close(s->wake[1]);
                s->wake[0] = s->wake[1] = -1;
                return -1;
        }
        s->acceptor_started = true;
        return 0;
}

int sim_stop(struct sim *s)
{
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        for (struct conn *c = s->conns; c; c = c->next)
                shutdown(c->fd, SHUT_RDWR);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
        if (s->acceptor_started) {
                ssize_t w = write(s->wake[1], "x", 1);
                (void)w;
                pthread_join(s->acceptor, NULL);
                s->acceptor_started = false;
        }
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += FKSIM_STOP_WAIT_MS / 1000;
        int rc = 0;
        pthread_mutex_lock(&s->mu);
        while (s->active > 0) {
                if (pthread_cond_timedwait(&s->cond, &s->mu, &dl) == ETIMEDOUT) {
                        rc = -1;
                        break;
                }
        }
        pthread_mutex_unlock(&s->mu);
        if (rc == 0) {
                reap(s);
                free(s->done);
                s->done = NULL;
                s->done_cap = 0;
        }
        if (s->wake[0] >= 0) {
                close(s->wake[0]);
                close(s->wake[1]);
                s->wake[0] = s->wake[1] = -1;
        }
        return rc;
}
