/*
 * tlsclient.c - the tests' TLS client: non-blocking socket + poll() deadlines under a
 * blocking-style API, OpenSSL for TLS, libhttp-parser for responses (length, chunked, EOF).
 * Owns struct tlsc: socket, SSL_CTX, SSL and the decrypted bytes not yet parsed.
 * One thread per struct tlsc; no shared state.
 */
#include "tlsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLSC_DEFAULT_TIMEOUT_MS 5000
#define TLSC_MAX_UNREAD         (TLSC_MAX_RESPONSE_BODY + TLSC_MAX_HEADER_BYTES)

struct tlsc {
        int fd;
        SSL_CTX *ctx;
        SSL *ssl;
        int timeout_ms;
        bool ticket; /* a TLS 1.3 session ticket arrived: the server accepted us */
        bool closed; /* the peer closed, reset or alerted */
        char err[TLSC_ERR_MAX];
        char *in; /* decrypted, not yet parsed */
        size_t in_len;
        size_t in_cap;
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(char *err, size_t errlen, const char *what)
{
        unsigned long e = ERR_peek_last_error();
        char tmp[200];
        if (e) {
                ERR_error_string_n(e, tmp, sizeof tmp);
                snprintf(err, errlen, "%s: %s", what, tmp);
        } else {
                snprintf(err, errlen, "%s", what);
        }
        ERR_clear_error();
}

/* Wait until fd is ready for ev or the deadline passes; 0 ready, -1 timeout or error. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
        for (;;) {
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return -1;
                struct pollfd p = {.fd = fd, .events = ev};
                int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return -1;
        }
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
        struct tlsc *c = SSL_get_app_data(ssl);
        if (c)
                c->ticket = true;
        return 0; /* not kept */
}

static int tcp_connect(const char *host, int port, int64_t deadline, char *err, size_t errlen)
{
        char portstr[16];
        snprintf(portstr, sizeof portstr, "%d", port);
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        int rc = getaddrinfo(host, portstr, &hints, &ai);
        if (rc != 0) {
                snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(rc));
                return -1;
        }
        int fd = -1;
        snprintf(err, errlen, "connect %s:%d: no address", host, port);
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        continue;
                int r = connect(fd, a->ai_addr, a->ai_addrlen);
                if (r < 0 && errno == EINPROGRESS) {
                        if (wait_fd(fd, POLLOUT, deadline) < 0) {
                                snprintf(err, errlen, "connect %s:%d: timed out", host, port);
                                close(fd);
                                fd = -1;
                                continue;
                        }
                        int soerr = 0;
                        socklen_t sl = sizeof soerr;
                        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                        r = soerr ? -1 : 0;
                        errno = soerr;
                }
                if (r == 0)
                        break;
                snprintf(err, errlen, "connect %s:%d: %s", host, port, strerror(errno));
                close(fd);
                fd = -1;
        }
        freeaddrinfo(ai);
        if (fd >= 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        return fd;
}

static SSL_CTX *client_ctx(const struct tls_client_opts *o, char *err, size_t errlen)
{
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx) {
                set_err(err, errlen, "SSL_CTX_new");
                return NULL;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        if (o->max_version)
                SSL_CTX_set_max_proto_version(ctx, o->max_version);
        SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
        SSL_CTX_sess_set_new_cb(ctx, on_new_session);
        if (o->ca) {
                if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
                        set_err(err, errlen, o->ca);
                        goto fail;
                }
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        } else {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        }
        if (o->cert) {
                if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
                        set_err(err, errlen, o->cert);
                        goto fail;
                }
                if (SSL_CTX_use_PrivateKey_file(ctx, o->key ? o->key : o->cert, SSL_FILETYPE_PEM) !=
                        1 ||
                    SSL_CTX_check_private_key(ctx) != 1) {
                        set_err(err, errlen, o->key ? o->key : o->cert);
                        goto fail;
                }
        }
        return ctx;
fail:
        SSL_CTX_free(ctx);
        return NULL;
}

/* Describe a failed SSL call; sets c->closed when the connection is gone. */
static void describe(struct tlsc *c, int ret, const char *what)
{
        int e = SSL_get_error(c->ssl, ret);
        int saved = errno;
        if (e == SSL_ERROR_SSL) {
                long vr = SSL_get_verify_result(c->ssl);
                if (vr != X509_V_OK) {
                        snprintf(c->err, sizeof c->err, "%s: server certificate: %s", what,
                                 X509_verify_cert_error_string(vr));
                        ERR_clear_error();
                } else {
                        set_err(c->err, sizeof c->err, what);
                }
                c->closed = true;
        } else if (e == SSL_ERROR_SYSCALL) {
                snprintf(c->err, sizeof c->err, "%s: %s", what,
                         saved && saved != EAGAIN ? strerror(saved) : "connection closed");
                ERR_clear_error();
                c->closed = true;
        } else if (e == SSL_ERROR_ZERO_RETURN) {
                snprintf(c->err, sizeof c->err, "%s: connection closed by peer", what);
                c->closed = true;
        } else {
                snprintf(c->err, sizeof c->err, "%s: SSL error %d", what, e);
                ERR_clear_error();
        }
}

/* Wait for what an SSL call wants; 0 to retry, -1 on timeout (err set). */
static int ssl_wait(struct tlsc *c, int ret, int64_t deadline, const char *what)
{
        int e = SSL_get_error(c->ssl, ret);
        short ev;
        if (e == SSL_ERROR_WANT_READ)
                ev = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
                ev = POLLOUT;
        else
                return -2;
        if (wait_fd(c->fd, ev, deadline) < 0) {
                snprintf(c->err, sizeof c->err, "%s: timed out", what);
                return -1;
        }
        return 0;
}

int tlsc_connect(struct tlsc **out, const char *host, int port, const struct tls_client_opts *o,
                 char *err, size_t errlen)
{
        *out = NULL;
        struct tls_client_opts none = {0};
        if (!o)
                o = &none;
        struct tlsc *c = calloc(1, sizeof *c);
        if (!c) {
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        c->fd = -1;
        c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : TLSC_DEFAULT_TIMEOUT_MS;
        int64_t deadline = now_ms() + c->timeout_ms;
        ERR_clear_error();
        c->ctx = client_ctx(o, err, errlen);
        if (!c->ctx)
                goto fail;
        c->fd = tcp_connect(host, port, deadline, err, errlen);
        if (c->fd < 0)
                goto fail;
        c->ssl = SSL_new(c->ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
                set_err(err, errlen, "SSL_new");
                goto fail;
        }
        SSL_set_app_data(c->ssl, c);
        unsigned char addr[16];
        bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
        if (!is_ip)
                SSL_set_tlsext_host_name(c->ssl, host);
        if (o->ca) {
                X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
                int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                               : X509_VERIFY_PARAM_set1_host(vp, host, 0);
                if (ok != 1) {
                        set_err(err, errlen, "server name check");
                        goto fail;
                }
        }
        for (;;) {
                ERR_clear_error();
                int r = SSL_connect(c->ssl);
                if (r == 1)
                        break;
                int w = ssl_wait(c, r, deadline, "handshake");
                if (w == 0)
                        continue;
                if (w == -2)
                        describe(c, r, "handshake");
                snprintf(err, errlen, "%s", c->err);
                goto fail;
        }
        if (o->confirm_ms > 0 && SSL_version(c->ssl) == TLS1_3_VERSION) {
                int64_t dl = now_ms() + o->confirm_ms;
                while (!c->ticket) {
                        char b;
                        ERR_clear_error();
                        int r = SSL_peek(c->ssl, &b, 1);
                        if (r > 0)
                                break;
                        int w = ssl_wait(c, r, dl, "handshake");
                        if (w == 0)
                                continue;
                        if (w == -1) {
                                c->err[0] = '\0'; /* no ticket and no alert: assume accepted */
                                break;
                        }
                        describe(c, r, "handshake");
                        snprintf(err, errlen, "%s", c->err);
                        goto fail;
                }
        }
        *out = c;
        return 0;
fail:
        tlsc_free(c);
        return -1;
}

int tlsc_send(struct tlsc *c, const void *buf, size_t len)
{
        const char *p = buf;
        int64_t deadline = now_ms() + c->timeout_ms;
        while (len > 0) {
                int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
                ERR_clear_error();
                int n = SSL_write(c->ssl, p, chunk);
                if (n > 0) {
                        p += n;
                        len -= (size_t)n;
                        continue;
                }
                int w = ssl_wait(c, n, deadline, "send");
                if (w == 0)
                        continue;
                if (w == -2)
                        describe(c, n, "send");
                return -1;
        }
        return 0;
}

/* Read more decrypted bytes into c->in: >0 bytes, 0 the peer closed, -1 timeout / error. */
static int fill(struct tlsc *c, int64_t deadline)
{
        if (c->closed)
                return 0;
        char tmp[16384];
        for (;;) {
                ERR_clear_error();
                int n = SSL_read(c->ssl, tmp, sizeof tmp);
                if (n > 0) {
                        if (c->in_len + (size_t)n > TLSC_MAX_UNREAD) {
                                snprintf(c->err, sizeof c->err, "response larger than %d bytes",
                                         TLSC_MAX_UNREAD);
                                return -1;
                        }
                        if (c->in_len + (size_t)n > c->in_cap) {
                                size_t cap = c->in_cap ? c->in_cap : 16384;
                                while (cap < c->in_len + (size_t)n)
                                        cap *= 2;
                                char *q = realloc(c->in, cap);
                                if (!q) {
                                        snprintf(c->err, sizeof c->err, "out of memory");
                                        return -1;
                                }
                                c->in = q;
                                c->in_cap = cap;
                        }
                        memcpy(c->in + c->in_len, tmp, (size_t)n);
                        c->in_len += (size_t)n;
                        return n;
                }
                int w = ssl_wait(c, n, deadline, "read");
                if (w == 0)
                        continue;
                if (w == -1)
                        return -1;
                describe(c, n, "read");
                int e = SSL_get_error(c->ssl, n);
                return (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) ? 0 : -1;
        }
}

/* ---- response parsing --------------------------------------------------------------- */

struct rparse {
        struct http_response *r;
        size_t hcap, bcap;
        bool last_was_value;
        bool done;
        bool too_big;
};

static int grow_append(char **p, size_t *len, size_t *cap, const char *at, size_t n, size_t max)
{
        if (*len + n > max)
                return -1;
        if (*len + n + 1 > *cap) {
                size_t c = *cap ? *cap : 1024;
                while (c < *len + n + 1)
                        c *= 2;
                char *q = realloc(*p, c);
                if (!q)
                        return -1;
                *p = q;
                *cap = c;
        }
        memcpy(*p + *len, at, n);
        *len += n;
        (*p)[*len] = '\0';
        return 0;
}

static int hdr(struct rparse *rp, const char *at, size_t n)
{
        if (grow_append(&rp->r->headers, &rp->r->headers_len, &rp->hcap, at, n,
                        TLSC_MAX_HEADER_BYTES) < 0) {
                rp->too_big = true;
                return -1;
        }
        return 0;
}

static int r_begin(http_parser *p)
{
        struct rparse *rp = p->data;
        rp->r->headers_len = rp->r->body_len = 0;
        if (rp->r->headers)
                rp->r->headers[0] = '\0';
        if (rp->r->body)
                rp->r->body[0] = '\0';
        rp->last_was_value = false;
        return 0;
}

static int r_field(http_parser *p, const char *at, size_t n)
{
        struct rparse *rp = p->data;
        if (rp->last_was_value && hdr(rp, "\r\n", 2) < 0)
                return -1;
        rp->last_was_value = false;
        return hdr(rp, at, n);
}

static int r_value(http_parser *p, const char *at, size_t n)
{
        struct rparse *rp = p->data;
        if (!rp->last_was_value && hdr(rp, ": ", 2) < 0)
                return -1;
        rp->last_was_value = true;
        return hdr(rp, at, n);
}

static int r_headers_complete(http_parser *p)
{
        struct rparse *rp = p->data;
        rp->r->status = (int)p->status_code;
        if (rp->last_was_value && hdr(rp, "\r\n", 2) < 0)
                return -1;
        rp->last_was_value = false;
        return 0;
}

static int r_body(http_parser *p, const char *at, size_t n)
{
        struct rparse *rp = p->data;
        if (grow_append(&rp->r->body, &rp->r->body_len, &rp->bcap, at, n, TLSC_MAX_RESPONSE_BODY) <
            0) {
                rp->too_big = true;
                return -1;
        }
        return 0;
}

static int r_complete(http_parser *p)
{
        struct rparse *rp = p->data;
        if (p->status_code / 100 == 1)
                return 0; /* 100 Continue and friends: the real response follows */
        rp->done = true;
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings rsettings = {
    .on_message_begin = r_begin,
    .on_header_field = r_field,
    .on_header_value = r_value,
    .on_headers_complete = r_headers_complete,
    .on_body = r_body,
    .on_message_complete = r_complete,
};

int tlsc_read_response(struct tlsc *c, struct http_response *r, int timeout_ms)
{
        memset(r, 0, sizeof *r);
        struct rparse rp = {.r = r};
        http_parser p;
        http_parser_init(&p, HTTP_RESPONSE);
        p.data = &rp;
        int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : c->timeout_ms);
        c->err[0] = '\0';
        for (;;) {
                if (c->in_len > 0) {
                        size_t n = http_parser_execute(&p, &rsettings, c->in, c->in_len);
                        memmove(c->in, c->in + n, c->in_len - n);
                        c->in_len -= n;
                        enum http_errno e = HTTP_PARSER_ERRNO(&p);
                        if (rp.done)
                                return 0;
                        if (e != HPE_OK) {
                                snprintf(c->err, sizeof c->err, "bad response: %s",
                                         rp.too_big ? "too large" : http_errno_description(e));
                                goto fail;
                        }
                        continue;
                }
                int f = fill(c, deadline);
                if (f > 0)
                        continue;
                if (f == 0) {
                        http_parser_execute(&p, &rsettings, NULL, 0); /* EOF ends some bodies */
                        if (rp.done)
                                return 0;
                        char why[TLSC_ERR_MAX / 2];
                        snprintf(why, sizeof why, "%.100s", c->err[0] ? c->err : "closed");
                        snprintf(c->err, sizeof c->err,
                                 "connection closed before a whole response (%s)", why);
                }
                goto fail;
        }
fail:
        http_response_clear(r);
        r->status = 0;
        return -1;
}

int tlsc_read_closed(struct tlsc *c, int timeout_ms)
{
        int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : c->timeout_ms);
        for (;;) {
                if (c->closed)
                        return 1;
                int f = fill(c, deadline);
                if (f == 0)
                        return 1;
                if (f < 0)
                        return c->closed ? 1 : 0;
        }
}

const char *tlsc_error(const struct tlsc *c)
{
        return c ? c->err : "no connection";
}

const char *tlsc_version(const struct tlsc *c)
{
        return c && c->ssl ? SSL_get_version(c->ssl) : "";
}

void http_response_clear(struct http_response *r)
{
        if (!r)
                return;
        free(r->headers);
        free(r->body);
        r->headers = r->body = NULL;
        r->headers_len = r->body_len = 0;
}

void tlsc_free(struct tlsc *c)
{
        if (!c)
                return;
        if (c->ssl) {
                if (!c->closed) {
                        ERR_clear_error();
                        SSL_shutdown(c->ssl); /* non-blocking: one try at close_notify */
                }
                SSL_free(c->ssl);
        }
        if (c->fd >= 0)
                close(c->fd);
        SSL_CTX_free(c->ctx);
        free(c->in);
        ERR_clear_error();
        free(c);
}

int http_response_header(const struct http_response *r, const char *name, char *out, size_t cap)
{
        size_t nl = strlen(name);
        const char *p = r->headers;
        while (p && *p) {
                const char *eol = strstr(p, "\r\n");
                size_t ll = eol ? (size_t)(eol - p) : strlen(p);
                if (ll > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
                        const char *v = p + nl + 1;
                        while (v < p + ll && (*v == ' ' || *v == '\t'))
                                v++;
                        size_t vl = (size_t)(p + ll - v);
                        if (vl >= cap)
                                return -1;
                        memcpy(out, v, vl);
                        out[vl] = '\0';
                        return 0;
                }
                p = eol ? eol + 2 : p + ll;
        }
        return -1;
}

int tlsc_request(const char *host, int port, const struct tls_client_opts *o, const char *method,
                 const char *path, const char *content_type, const char *soap_action,
                 const void *body, size_t len, struct http_response *r, char *err, size_t errlen)
{
        memset(r, 0, sizeof *r);
        struct tlsc *c = NULL;
        if (tlsc_connect(&c, host, port, o, err, errlen) < 0)
                return -1;
        char head[2048];
        int n = snprintf(head, sizeof head,
                         "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: intygsgw-tests\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n",
                         method, path, host, port, len);
        if (n > 0 && (size_t)n < sizeof head && content_type)
                n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n",
                              content_type);
        if (n > 0 && (size_t)n < sizeof head && soap_action)
                n += snprintf(head + n, sizeof head - (size_t)n, "SOAPAction: \"%s\"\r\n",
                              soap_action);
        if (n > 0 && (size_t)n < sizeof head)
                n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
        if (n <= 0 || (size_t)n >= sizeof head) {
                snprintf(err, errlen, "request head longer than %zu bytes", sizeof head);
                tlsc_free(c);
                return -1;
        }
        int timeout = o && o->timeout_ms > 0 ? o->timeout_ms : TLSC_DEFAULT_TIMEOUT_MS;
        /* a server that refuses early may close while we send: still read its answer */
        int sent = tlsc_send(c, head, (size_t)n);
        if (sent == 0 && len)
                sent = tlsc_send(c, body, len);
        int rc = tlsc_read_response(c, r, timeout);
        if (rc < 0)
                snprintf(err, errlen, "%s", tlsc_error(c));
        tlsc_free(c);
        return rc;
}
