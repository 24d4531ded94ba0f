/*
 * tlsclient.h - a small blocking OpenSSL client for tests: connect to a loopback port with
 * an optional client certificate, send bytes, read one whole HTTP/1.1 response (with a
 * timeout), see whether the peer closed, and say why a handshake failed.
 * Owns struct tlsc (socket, SSL, context, unread bytes). One thread per struct tlsc.
 */
#ifndef INTYGSGW_TEST_TLSCLIENT_H
#define INTYGSGW_TEST_TLSCLIENT_H

#include <stddef.h>

#define TLSC_MAX_HEADER_BYTES  65536              /* response status line + headers */
#define TLSC_MAX_RESPONSE_BODY (64 * 1024 * 1024) /* bytes */
#define TLSC_ERR_MAX           256                /* bytes of a kept error message */

struct tls_client_opts {
        const char *ca;   /* CA to verify the server (and its name/IP) with; NULL: no check */
        const char *cert; /* client certificate (PEM) or NULL */
        const char *key;  /* its key */
        int timeout_ms;   /* connect + handshake; 0 = 5000 */
        /* optional */
        int max_version; /* 0 = OpenSSL's (TLS 1.3); TLS1_2_VERSION to force TLS 1.2 */
        int confirm_ms;  /* TLS 1.3 only: after the handshake wait up to this long for the
                            server's session ticket or alert, so that a refused client
                            certificate fails in tlsc_connect and not at the first read.
                            0 = don't wait (the refusal then shows at the first read). */
};

struct http_response {
        int status;
        char *headers; /* "Name: value\r\n" lines, NUL-terminated */
        size_t headers_len;
        char *body; /* decoded (chunked removed), NUL-terminated */
        size_t body_len;
};

struct tlsc;

/** Connect and handshake; 0, or -1 with the reason in err (OpenSSL's string / alert). */
int tlsc_connect(struct tlsc **out, const char *host, int port, const struct tls_client_opts *o,
                 char *err, size_t errlen);
/** Send all of buf; 0, or -1 (see tlsc_error). */
int tlsc_send(struct tlsc *c, const void *buf, size_t len);
/** Read one whole response (1xx skipped); 0 ok; -1 closed, timeout or bad (see tlsc_error). */
int tlsc_read_response(struct tlsc *c, struct http_response *r, int timeout_ms);
/** 1 if the peer closed (EOF, close_notify, reset, alert) within timeout_ms, else 0. */
int tlsc_read_closed(struct tlsc *c, int timeout_ms);
/** The last failure on c ("" if none). */
const char *tlsc_error(const struct tlsc *c);
/** Negotiated protocol ("TLSv1.3"). */
const char *tlsc_version(const struct tlsc *c);
void http_response_clear(struct http_response *r);
void tlsc_free(struct tlsc *c);

/** First value of header name (case-insensitive) into out; 0, or -1 if absent/too long. */
int http_response_header(const struct http_response *r, const char *name, char *out, size_t cap);

/**
 * One request, one response (Connection: close). content_type and soap_action may be NULL.
 * 0 ok; -1 with err: handshake failure reason, or why no whole response came.
 */
int tlsc_request(const char *host, int port, const struct tls_client_opts *o, const char *method,
                 const char *path, const char *content_type, const char *soap_action,
                 const void *body, size_t len, struct http_response *r, char *err, size_t errlen);

#endif
