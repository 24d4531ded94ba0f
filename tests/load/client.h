/*
 * client.h - the load generator's engine: N mutual-TLS HTTP/1.1 connections on one libuv
 * loop (uv_poll_t + OpenSSL on the socket), posting generated certificates open-loop at a
 * target rate or closed-loop as fast as answers come, for a count or a duration, and checking
 * every answer. Owns its loop, sockets, SSL objects and buffers for the length of load_run;
 * one thread (the caller's).
 */
#ifndef INTYGSGW_LOAD_CLIENT_H
#define INTYGSGW_LOAD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gen.h"
#include "hist.h"

#define LOAD_MAX_CONNECTIONS  20000         /* --connections */
#define LOAD_MAX_RATE         1000000.0     /* --rate, certificates/s */
#define LOAD_MAX_DOC          (256 * 1024)  /* bytes of one generated request body */
#define LOAD_MAX_ANSWER       (1024 * 1024) /* bytes of one answer (header + body) */
#define LOAD_BACKLOG_MAX      (1u << 20)    /* open loop: scheduled, not yet sent */
#define LOAD_CONNECT_PARALLEL 64            /* connections in set-up at once */
#define LOAD_SAMPLES          4             /* distinct non-OK answers kept for the report */
#define LOAD_SAMPLE_LEN       240           /* bytes of one such sample */

/** What can go wrong with one request (each counted apart). */
enum load_err {
        LERR_INFO = 0,  /* resultCode INFO (e.g. a duplicate) */
        LERR_ERROR,     /* resultCode ERROR (validation or technical) */
        LERR_FAULT,     /* SOAP Fault */
        LERR_HTTP,      /* HTTP status other than 200, no SOAP Fault */
        LERR_MALFORMED, /* 200 but not a RegisterCertificateResponse with a resultCode */
        LERR_CONNECT,   /* TCP connect failed (new-connection mode: the request's own) */
        LERR_TLS,       /* TLS handshake failed */
        LERR_CLOSED,    /* connection reset or closed before the whole answer */
        LERR_TIMEOUT,   /* no whole answer within the timeout */
        LERR_BACKLOG,   /* open loop: the client could not keep up (backlog full) */
        LERR__N
};

const char *load_err_name(enum load_err e);

struct load_opts {
        const char *host; /* numeric address, "127.0.0.1" */
        int port;
        const char *path;    /* request path */
        const char *pki_dir; /* ca.crt and <region>.crt/.key */
        size_t regions[GEN_N_REGIONS];
        size_t n_regions; /* connection i uses regions[i % n_regions] */
        int connections;
        double rate;        /* > 0: open loop at this many requests/s; 0: closed loop */
        uint64_t count;     /* stop issuing after this many (0: no limit) */
        double duration_s;  /* stop issuing after this long (0: no limit) */
        bool new_conn;      /* a new connection and a full handshake per request */
        int timeout_ms;     /* one request (and one connection set-up) */
        uint64_t first_seq; /* document number of the first request */
        int progress_ms;    /* > 0: a progress line on stderr this often */
        const struct gen *gen;
};

struct load_result {
        uint64_t sent;      /* requests written (at least begun) */
        uint64_t completed; /* answered or failed */
        uint64_t ok;
        uint64_t req_errs[LERR__N];  /* per request */
        uint64_t conn_errs[LERR__N]; /* connection-level, with no request in flight */
        uint64_t http_status[6];     /* answers by status class: [2] = 2xx ... */
        uint64_t handshakes;         /* full TLS handshakes completed */
        int connected_at_start;      /* keep-alive: connections up before the clock started */
        double setup_s;              /* keep-alive: time to set them up */
        double elapsed_s;            /* clock start to the last answer */
        double issue_s;              /* clock start to the last request issued */
        double start_wall_s;         /* the clock's start, seconds since the epoch */
        double last_ok_wall_s;       /* the last OK answer, seconds since the epoch (0: none) */
        double cpu_user_s, cpu_sys_s;
        struct hist latency; /* OK answers; µs from the intended send time */
        char samples[LOAD_SAMPLES][LOAD_SAMPLE_LEN];
        size_t n_samples;
};

/** Run one load test. Returns 0 when it ran (see the result for how it went), else -1. */
int load_run(const struct load_opts *o, struct load_result *r, char *err, size_t errlen);

/**
 * Classify one whole HTTP answer (status line, headers and body, NUL-terminated).
 * Returns -1 for OK, else the enum load_err; status gets the HTTP status (0 if unparsable).
 */
int load_classify(const char *answer, size_t len, int *status);

#endif
