/*
 * conn.h - one client connection: TCP handle, optional TLS over memory BIOs, one timer for
 * every phase (handshake, header, body, idle), HTTP/1.1 parsing state (http.c) and writes.
 *
 * Owns: the uv_tcp_t and uv_timer_t (memory freed only after both close callbacks), the SSL
 * object, the pending input and the request being parsed. Asynchronous work holding a
 * connection takes a reference (conn_ref/conn_unref) and checks conn->closing when it returns.
 * Threads: the loop thread only.
 */
#ifndef INTYGSGW_CONN_H
#define INTYGSGW_CONN_H

#include <http_parser.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "limits.h"

struct server;
struct listener;

/** One parsed HTTP request; its body is owned by the connection until taken. */
struct http_req {
        enum http_method method;
        char path[512];
        char query[512];
        char content_type[128];
        char soap_action[256];
        char accept[64];
        char *body; /* NUL-terminated; take with http_req_take_body */
        size_t body_len;
        size_t body_cap;
        size_t header_bytes;
        bool keep_alive;
        bool too_long_url;
        int64_t started_ms; /* first byte of the request */
        uint64_t seq;       /* request number on this connection */
};

enum conn_phase { PHASE_HANDSHAKE, PHASE_IDLE, PHASE_HEADER, PHASE_BODY, PHASE_BUSY };

struct conn {
        uint64_t id;
        struct server *srv;
        struct listener *lst;
        uv_tcp_t tcp;
        uv_timer_t timer;
        int handles_open;
        int refs;

        SSL *ssl; /* NULL on a plain listener */
        BIO *rbio, *wbio;
        bool handshake_done;

        char caller[HSA_ID_MAX + 1]; /* HSA-id from the client certificate, or "" */
        char admin_id[HSA_ID_MAX + 1];
        char peer[64];
        bool counted_caller; /* included in the server's per-caller count */
        bool over_caller_limit;

        http_parser parser;
        struct http_req req;
        char hdr_name[32];
        size_t hdr_name_len;
        int hdr_target; /* which header value is being collected */
        bool in_headers;

        char *pending; /* received plaintext not yet parsed */
        size_t pending_len, pending_cap;
        bool busy;       /* a request is being answered */
        bool processing; /* inside the parse loop */
        bool reading;    /* uv_read_start is active */
        bool close_after_write;
        bool closing;
        int writes_pending;
        enum conn_phase phase;
        uint64_t requests;
        struct conn *prev, *next; /* server's list */
};

/** Accept one connection from a listener's server handle. NULL if refused (closed). */
struct conn *conn_accept(struct server *srv, struct listener *lst, uv_stream_t *server_handle);

/** Close with a reason (logged); memory goes once both handles are closed and refs are 0. */
void conn_close(struct conn *c, const char *reason);

/** Hold the connection across asynchronous work. */
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);

/** Write bytes (through TLS when there is TLS). */
void conn_write(struct conn *c, const void *data, size_t len);

/** Whether answers queued for the peer exceed the write back-pressure bound (then neither
 * reading nor parsing goes on until the peer reads). */
bool conn_write_backlogged(const struct conn *c);

/** Start reading again after back-pressure stopped it (not while writes are backlogged). */
void conn_resume_reading(struct conn *c);

/** Arm the connection's single timer for a phase (stops it for PHASE_BUSY). */
void conn_set_phase(struct conn *c, enum conn_phase phase);

/** Parse what is pending (http.c). */
void http_process(struct conn *c);

/** Initialise the HTTP parser for a new connection (http.c). */
void http_conn_init(struct conn *c);

/**
 * Answer the current request. Exactly once per request; then the next pipelined request is
 * parsed. extra_headers: "Name: value\r\n" lines or NULL.
 */
void http_respond(struct conn *c, int status, const char *content_type, const char *extra_headers,
                  const char *body, size_t len);

/** Answer and close the connection afterwards, whatever the request asked. */
void http_respond_close(struct conn *c, int status, const char *content_type, const char *body,
                        size_t len);

/** Take ownership of the request body (the connection forgets it). */
char *http_req_take_body(struct http_req *r, size_t *len);

/**
 * The index-th value (0 = first) of key in a URL query string, %-decoded and '+' as space,
 * into out (truncated to outlen - 1). False if there is no such occurrence.
 */
bool http_query_get(const char *query, const char *key, int index, char *out, size_t outlen);

/** Reason phrase of a status code. */
const char *http_status_text(int status);

/** Milliseconds on the loop's clock. */
int64_t conn_now_ms(struct conn *c);

#endif
