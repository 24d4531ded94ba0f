/*
 * server.h - the daemon: listeners, connections, admission control, signals, reload, and the
 * parts of the pipeline (validator, directory, grants, outbox, forwarder, statistics).
 *
 * Owns: everything the running gateway holds; one struct server, no globals.
 * Threads: the loop thread. Validation runs on libuv's pool (pipeline.c), the outbox on its
 * writer thread; both hand results back to the loop.
 */
#ifndef INTYGSGW_SERVER_H
#define INTYGSGW_SERVER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "metrics.h"

struct conn;
struct http_req;
struct validator;
struct outbox;
struct forwarder;
struct hsa_dir;
struct grants;
struct stats;

enum listener_kind { LISTENER_CALLER, LISTENER_ADMIN };

struct listener {
        enum listener_kind kind;
        uv_tcp_t handle;
        bool open;
        SSL_CTX *ctx; /* NULL: plain HTTP; swapped on reload */
        int port;     /* bound port (for port 0) */
        void (*on_request)(struct conn *c, struct http_req *req);
};

struct caller_count {
        char id[72];
        int n;
        struct caller_count *next;
};

#define CALLER_BUCKETS 256

/** Recent rejections kept for the admin API (no personnummer: rule, path, message only). */
#define REJECTIONS_KEPT 128
struct rejection {
        int64_t at_ms; /* wall clock */
        char caller[72];
        char intyg[132];
        char rule[24];
        char path[160];
        char message[256];
};

struct server {
        uv_loop_t *loop;
        struct config *cfg;
        struct listener caller;
        struct listener admin;
        uv_signal_t sig_term, sig_int, sig_hup;
        uv_timer_t tick; /* housekeeping: claims, purges, periodic stats line */

        struct conn *conns;
        int n_conns;
        uint64_t next_conn_id;
        struct caller_count *callers[CALLER_BUCKETS];

        struct validator *validator;
        struct outbox *outbox;
        struct forwarder *forwarder;
        struct hsa_dir *hsa;
        struct grants *grants;
        struct stats *stats;

        struct metrics metrics;
        struct rejection rejections[REJECTIONS_KEPT];
        uint64_t rejections_total; /* next slot = rejections_total % REJECTIONS_KEPT */
        int64_t started_ms;
        int jobs_in_flight;
        bool draining;
        bool finished;       /* every handle closed: the loop ends */
        bool outbox_closing; /* outbox_close called; srv->outbox is NULL once closed */
        bool ready;
        int exit_code;
        char node_id[64];
        const char *port_file; /* write "caller_port admin_port" here once bound */
};

/** Build and start everything from a loaded config; false with err on any failure. */
bool server_start(struct server *srv, uv_loop_t *loop, struct config *cfg_take, char *err,
                  size_t errlen);

/** Run the loop until stopped by SIGTERM/SIGINT and drained; returns the exit code. */
int server_run(struct server *srv);

/** Reload what can be reloaded (TLS contexts, CRL, HSA extract, grants, limits). */
void server_reload(struct server *srv);

/** Begin an orderly stop: no new connections, answer what is in flight, then stop. */
void server_drain(struct server *srv, const char *why);

/** Per-caller connection accounting (admission control). */
int server_caller_count(struct server *srv, const char *id, int delta);

/** Listener callbacks (pipeline.c and admin.c). */
void pipeline_on_request(struct conn *c, struct http_req *req);
void admin_on_request(struct conn *c, struct http_req *req);

/** Remember one rejection for the admin API. */
void server_note_rejection(struct server *srv, const char *caller, const char *intyg,
                           const char *rule, const char *path, const char *message);

/** Answer a caller's question about its own intyg's delivery state (mTLS listener). */
void caller_status_request(struct conn *c, struct http_req *req);

/** Release what server_start built when it failed (runs the loop until handles close). */
void server_abort(struct server *srv);

/** Called when a connection is gone, to finish draining. */
void server_conn_gone(struct server *srv);

#endif
