/*
 * http.c - HTTP/1.1 on a connection with libhttp-parser: header and body limits counted as
 * bytes arrive, keep-alive, pipelining (one request answered at a time, in order), responses.
 * Loop thread only.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "log.h"
#include "server.h"

enum hdr_target { H_NONE, H_CONTENT_TYPE, H_SOAP_ACTION, H_ACCEPT };

const char *http_status_text(int status)
{
        switch (status) {
        case 200:
                return "OK";
        case 202:
                return "Accepted";
        case 204:
                return "No Content";
        case 400:
                return "Bad Request";
        case 401:
                return "Unauthorized";
        case 403:
                return "Forbidden";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 408:
                return "Request Timeout";
        case 409:
                return "Conflict";
        case 411:
                return "Length Required";
        case 413:
                return "Content Too Large";
        case 414:
                return "URI Too Long";
        case 415:
                return "Unsupported Media Type";
        case 429:
                return "Too Many Requests";
        case 431:
                return "Request Header Fields Too Large";
        case 500:
                return "Internal Server Error";
        case 503:
                return "Service Unavailable";
        default:
                return "Unknown";
        }
}

bool http_query_get(const char *q, const char *key, int index, char *out, size_t outlen)
{
        size_t kl = strlen(key);
        for (const char *p = q; p && *p;) {
                const char *amp = strchr(p, '&');
                size_t seg = amp ? (size_t)(amp - p) : strlen(p);
                if (seg > kl && !strncmp(p, key, kl) && p[kl] == '=' && index-- == 0) {
                        size_t o = 0;
                        for (size_t i = kl + 1; i < seg && o + 1 < outlen; i++) {
                                char ch = p[i];
                                if (ch == '+') {
                                        ch = ' ';
                                } else if (ch == '%' && i + 2 < seg) {
                                        char hx[3] = {p[i + 1], p[i + 2], 0};
                                        ch = (char)strtol(hx, NULL, 16);
                                        i += 2;
                                }
                                out[o++] = ch;
                        }
                        out[o] = '\0';
                        return true;
                }
                p = amp ? amp + 1 : NULL;
        }
        return false;
}

static struct conn *conn_of(http_parser *p)
{
        return p->data;
}

static void req_reset(struct http_req *r)
{
        free(r->body);
        memset(r, 0, sizeof *r);
}

char *http_req_take_body(struct http_req *r, size_t *len)
{
        char *b = r->body;
        *len = r->body_len;
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        return b;
}

/* A limit was hit while parsing: answer with its status, name it, close. */
static int refuse(struct conn *c, int status, const char *limit, const char *msg)
{
        char body[256];
        int n = snprintf(body, sizeof body, "%s (%s)\n", msg, limit);
        LOGI("http_refused", "#conn", (long long)c->id, "caller", c->caller, "#status",
             (long long)status, "limit", limit);
        metrics_http_refused(&c->srv->metrics, status);
        c->busy = true;
        http_respond_close(c, status, "text/plain; charset=utf-8", body, (size_t)n);
        return -1;
}

static int count_header(struct conn *c, size_t len)
{
        c->req.header_bytes += len;
        if (c->req.header_bytes > (size_t)c->srv->cfg->max_header_bytes)
                return refuse(c, 431, "max_header_bytes", "request header too large");
        return 0;
}

static int on_message_begin(http_parser *p)
{
        struct conn *c = conn_of(p);
        uint64_t seq = c->req.seq;
        req_reset(&c->req);
        c->req.seq = seq + 1;
        c->req.started_ms = conn_now_ms(c);
        c->in_headers = true;
        c->hdr_name_len = 0;
        c->hdr_target = H_NONE;
        conn_set_phase(c, PHASE_HEADER);
        return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
        struct conn *c = conn_of(p);
        if (count_header(c, len))
                return -1;
        /* Collect the URL into path; split the query at on_headers_complete. */
        size_t have = strlen(c->req.path);
        if (have + len >= sizeof c->req.path) {
                c->req.too_long_url = true;
                return 0;
        }
        memcpy(c->req.path + have, at, len);
        c->req.path[have + len] = '\0';
        return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
        struct conn *c = conn_of(p);
        if (count_header(c, len))
                return -1;
        if (c->hdr_target != -1)
                c->hdr_name_len = 0; /* a new field starts (after a value, or the first) */
        size_t room = sizeof c->hdr_name - 1 - c->hdr_name_len;
        size_t n = len < room ? len : room;
        memcpy(c->hdr_name + c->hdr_name_len, at, n);
        c->hdr_name_len += n;
        c->hdr_name[c->hdr_name_len] = '\0';
        c->hdr_target = -1; /* in a field */
        return 0;
}

static void append_value(char *dst, size_t cap, const char *at, size_t len)
{
        size_t have = strlen(dst);
        size_t room = cap - 1 - have;
        size_t n = len < room ? len : room;
        memcpy(dst + have, at, n);
        dst[have + n] = '\0';
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
        struct conn *c = conn_of(p);
        if (count_header(c, len))
                return -1;
        if (c->hdr_target == -1) {
                /* The field name is complete: decide where its value goes. */
                const char *n = c->hdr_name;
                c->hdr_target = !strcasecmp(n, "content-type") ? H_CONTENT_TYPE
                                : !strcasecmp(n, "soapaction") ? H_SOAP_ACTION
                                : !strcasecmp(n, "accept")     ? H_ACCEPT
                                                               : H_NONE;
                c->hdr_name_len = 0;
        }
        switch (c->hdr_target) {
        case H_CONTENT_TYPE:
                append_value(c->req.content_type, sizeof c->req.content_type, at, len);
                break;
        case H_SOAP_ACTION:
                append_value(c->req.soap_action, sizeof c->req.soap_action, at, len);
                break;
        case H_ACCEPT:
                append_value(c->req.accept, sizeof c->req.accept, at, len);
                break;
        default:
                break;
        }
        return 0;
}

static int on_headers_complete(http_parser *p)
{
        struct conn *c = conn_of(p);
        c->in_headers = false;
        if (c->req.too_long_url)
                return refuse(c, 414, "max_url_bytes", "request URL too long");
        char *q = strchr(c->req.path, '?');
        if (q) {
                snprintf(c->req.query, sizeof c->req.query, "%s", q + 1);
                *q = '\0';
        }
        c->req.method = (enum http_method)p->method;
        c->req.keep_alive = http_should_keep_alive(p);
        int64_t max = c->srv->cfg->max_body_bytes;
        /* Checked before a byte of body is read (refuse early). */
        if (p->content_length != ULLONG_MAX && p->content_length > (uint64_t)max)
                return refuse(c, 413, "max_body_bytes", "request body too large");
        if (p->content_length != ULLONG_MAX && p->content_length > 0) {
                c->req.body_cap = (size_t)p->content_length + 1;
                c->req.body = malloc(c->req.body_cap);
                if (!c->req.body)
                        return refuse(c, 503, "memory", "out of memory");
        }
        conn_set_phase(c, PHASE_BODY);
        return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
        struct conn *c = conn_of(p);
        struct http_req *r = &c->req;
        if (r->body_len + len > (size_t)c->srv->cfg->max_body_bytes)
                return refuse(c, 413, "max_body_bytes", "request body too large");
        if (r->body_len + len + 1 > r->body_cap) {
                size_t cap = r->body_cap ? r->body_cap * 2 : 8192;
                while (cap < r->body_len + len + 1)
                        cap *= 2;
                char *nb = realloc(r->body, cap);
                if (!nb)
                        return refuse(c, 503, "memory", "out of memory");
                r->body = nb;
                r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, at, len);
        r->body_len += len;
        r->body[r->body_len] = '\0';
        return 0;
}

static int on_message_complete(http_parser *p)
{
        struct conn *c = conn_of(p);
        c->busy = true;
        c->requests++;
        conn_set_phase(c, PHASE_BUSY);
        http_parser_pause(p, 1);
        c->srv->metrics.http_requests++;
        if (c->over_caller_limit) {
                const char *msg = "too many connections for this caller "
                                  "(max_connections_per_caller)\n";
                http_respond_close(c, 503, "text/plain; charset=utf-8", msg, strlen(msg));
                return 0;
        }
        if (c->srv->draining)
                c->close_after_write = true;
        c->lst->on_request(c, &c->req);
        return 0;
}

static http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_conn_init(struct conn *c)
{
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        c->hdr_target = H_NONE;
}

void http_process(struct conn *c)
{
        if (c->processing)
                return;
        c->processing = true;
        while (!c->closing && !c->busy && c->pending_len > 0 && !conn_write_backlogged(c)) {
                size_t n = http_parser_execute(&c->parser, &settings, c->pending, c->pending_len);
                enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
                if (n > c->pending_len)
                        n = c->pending_len;
                memmove(c->pending, c->pending + n, c->pending_len - n);
                c->pending_len -= n;
                if (e == HPE_PAUSED) {
                        http_parser_pause(&c->parser, 0);
                        continue;
                }
                if (e != HPE_OK) {
                        if (c->closing || c->close_after_write)
                                break; /* a limit already answered */
                        if (e == HPE_HEADER_OVERFLOW) {
                                refuse(c, 431, "max_header_bytes", "request header too large");
                                break;
                        }
                        c->srv->metrics.http_malformed++;
                        LOGI("http_malformed", "#conn", (long long)c->id, "caller", c->caller,
                             "error", http_errno_name(e));
                        char body[160];
                        int bl = snprintf(body, sizeof body, "malformed HTTP request: %s\n",
                                          http_errno_description(e));
                        c->busy = true;
                        http_respond_close(c, 400, "text/plain; charset=utf-8", body, (size_t)bl);
                        break;
                }
                if (n == 0)
                        break;
        }
        c->processing = false;
        if (!c->closing && c->close_after_write && !c->busy && c->writes_pending == 0)
                conn_close(c, "peer finished");
}

static void respond(struct conn *c, int status, const char *ctype, const char *extra,
                    const char *body, size_t len, bool close_after)
{
        if (c->closing) {
                c->busy = false;
                return;
        }
        if (!c->req.keep_alive || c->srv->draining)
                close_after = true;
        char head[1024];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                         "Connection: %s\r\n%s\r\n",
                         status, http_status_text(status), ctype ? ctype : "text/plain", len,
                         close_after ? "close" : "keep-alive", extra ? extra : "");
        if (n < 0 || (size_t)n >= sizeof head) {
                conn_close(c, "response header too large");
                return;
        }
        metrics_http_status(&c->srv->metrics, status);
        /* One write for head and body: one TLS record when small. */
        size_t total = (size_t)n + len;
        char stackbuf[8192];
        char *buf = total <= sizeof stackbuf ? stackbuf : malloc(total);
        if (!buf) {
                conn_close(c, "out of memory");
                return;
        }
        memcpy(buf, head, (size_t)n);
        if (len)
                memcpy(buf + n, body, len);
        if (close_after)
                c->close_after_write = true;
        conn_write(c, buf, total);
        if (buf != stackbuf)
                free(buf);
        c->busy = false;
        free(c->req.body);
        c->req.body = NULL;
        c->req.body_len = c->req.body_cap = 0;
        if (c->closing)
                return;
        if (c->close_after_write) {
                /* Stop parsing; closed when the write completes. */
                c->pending_len = 0;
                return;
        }
        conn_set_phase(c, PHASE_IDLE);
        conn_resume_reading(c);
        if (c->pending_len > 0 && !c->processing) {
                /* Pipelined requests already received: answer them in order. */
                http_process(c);
        }
}

void http_respond(struct conn *c, int status, const char *ctype, const char *extra,
                  const char *body, size_t len)
{
        respond(c, status, ctype, extra, body, len, false);
}

void http_respond_close(struct conn *c, int status, const char *ctype, const char *body, size_t len)
{
        respond(c, status, ctype, NULL, body, len, true);
}
