/*
 * fksim.h - the FK simulator (build/bin/fk-sim): a mutual-TLS HTTP/1.1 server that plays
 * Försäkringskassan's RegisterCertificate v3 / RevokeCertificate v2 producer for tests.
 *
 * Owns: struct sim (behaviour, records, statistics, listeners, the live connection list).
 * Threads: main (signals, start, stop), one acceptor, one thread per connection (bounded);
 * every mutable field of struct sim is guarded by sim->mu.
 */
#ifndef FKSIM_H
#define FKSIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* Limits of the simulator (hostile input is normal, even in a test tool). */
#define FKSIM_MAX_CONNS_DEFAULT 256               /* live connections, both listeners */
#define FKSIM_MAX_CONNS_LIMIT   4096              /* --max-conns ceiling */
#define FKSIM_MAX_HEADER_BYTES  16384             /* request line + headers: 431 above */
#define FKSIM_MAX_URL           2048              /* bytes of request target */
#define FKSIM_MAX_BODY_BYTES    (4 * 1024 * 1024) /* 413 above */
#define FKSIM_MAX_RECORDS       1000000           /* distinct ids per table */
#define FKSIM_HANDSHAKE_MS      10000             /* TLS handshake timeout */
#define FKSIM_IDLE_MS           60000         /* a kept-alive connection may idle (and one read) */
#define FKSIM_MAX_SLOW_MS       600000        /* --slow-ms ceiling */
#define FKSIM_REASON_MAX        512           /* bytes of the reject text */
#define FKSIM_LINGER_MS         1000          /* drain time after a refusal */
#define FKSIM_LINGER_BYTES      (1024 * 1024) /* bytes drained after a refusal */
#define FKSIM_STOP_WAIT_MS      15000         /* connections must end within this at shutdown */
#define FKSIM_CONN_STACK        (512 * 1024)  /* bytes of stack per connection thread */
#define FKSIM_ID_MAX            128           /* intygs-id characters (= INTYG_ID_MAX in gateway) */
#define FKSIM_CALLER_MAX        64 /* serialNumber characters (= HSA_ID_MAX in gateway) */

/* A growable byte buffer (NUL-terminated for convenience). */
struct buf {
        char *p;
        size_t len;
        size_t cap;
};
int buf_append(struct buf *b, const void *data, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Append s as the inside of a JSON string (escaped). */
int buf_json_str(struct buf *b, const char *s);
/** Append s XML-escaped (text or attribute). */
int buf_xml_str(struct buf *b, const char *s);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/* Id -> count, in first-seen order. Not locked: the owner (struct sim) locks. */
struct record {
        char *id;
        long count;
};
struct records {
        struct record *v;
        size_t n;
        size_t cap;
        uint32_t *index; /* open addressing; entry index + 1, 0 = empty */
        size_t index_cap;
};
void records_init(struct records *r);
/** Count one more for id; returns the new count (1 = first time), or -1 (full / no memory). */
long records_add(struct records *r, const char *id);
long records_get(const struct records *r, const char *id);
/** {"id":count,...} */
int records_json(const struct records *r, struct buf *out);
void records_clear(struct records *r);

/* What the simulator does with requests; changed by flags and POST /_sim/config. */
struct sim_behaviour {
        bool down;             /* main listener refuses and resets */
        int slow_ms;           /* delay before each SOAP answer */
        double fail_500_rate;  /* HTTP 500 + SOAP fault */
        double technical_rate; /* ERROR / TECHNICAL_ERROR */
        double reject_rate;    /* ERROR / VALIDATION_ERROR */
        double cut_rate;       /* close mid-response (after processing) */
        char reject_text[FKSIM_REASON_MAX];
};

struct sim_stats {
        uint64_t connections; /* accepted on the main listener and handshaken */
        uint64_t control_connections;
        uint64_t handshake_failures;
        uint64_t refused_down;
        uint64_t refused_full;
        uint64_t requests; /* SOAP requests */
        uint64_t register_requests;
        uint64_t revoke_requests;
        uint64_t ok;
        uint64_t info;
        uint64_t validation_errors; /* ERROR/VALIDATION_ERROR, simulated or real */
        uint64_t technical_errors;  /* ERROR/TECHNICAL_ERROR */
        uint64_t http_500;          /* simulated SOAP faults */
        uint64_t bad_requests;      /* not XML, unknown operation, bad HTTP */
        uint64_t cuts;
        uint64_t control_requests;
        int64_t first_new_ms; /* wall clock of the first and last certificate seen for the */
        int64_t last_new_ms;  /* first time (OK), ms since the epoch; 0: none since reset */
};

struct conn;

struct sim {
        pthread_mutex_t mu;
        pthread_cond_t cond; /* signalled on stop, on config change, on connection end */

        /* guarded by mu */
        struct sim_behaviour b;
        uint64_t rng;
        uint64_t seed;
        struct records received; /* RegisterCertificate ids accepted (OK, INFO, cut) */
        struct records revoked;  /* RevokeCertificate ids accepted */
        struct records attempts; /* every Register/Revoke id seen, whatever the answer */
        struct records callers;  /* client certificate serialNumber of every SOAP request */
        struct records logical_addresses; /* SOAP header LogicalAddress of every request */
        struct sim_stats st;
        struct conn *conns; /* live connections, for stop and down */
        int active;
        uint64_t next_conn_id;
        bool stopping;
        pthread_t *done; /* ended connection threads, joined by the acceptor or sim_stop */
        size_t ndone;
        size_t done_cap;

        /* set before the acceptor starts, read-only afterwards */
        SSL_CTX *ctx;
        int listen_fd;
        int control_fd; /* -1 when no --control */
        int wake[2];    /* acceptor wake-up pipe */
        int max_conns;
        pthread_t acceptor;
        bool acceptor_started;
};

/* server.c */
/** Bind host:port (loopback only); returns the fd or -1 with err. */
int sim_listen(const char *hostport, int *port_out, char *err, size_t errlen);
/** Build the server TLS context (client certificate required, verified against ca). */
SSL_CTX *sim_tls_ctx_new(const char *cert, const char *key, const char *ca, const char *crl,
                         char *err, size_t errlen);
int sim_start(struct sim *s, char *err, size_t errlen);
/** Stop accepting, end every connection, wait for them; 0 ok, -1 if some did not end. */
int sim_stop(struct sim *s);
/** Called with mu held: reset every live main-listener connection (down). */
void sim_reset_main_conns_locked(struct sim *s);

/* handler.c */
struct sim_request {
        const char *method;
        const char *path; /* without query */
        const char *body;
        size_t body_len;
        bool control_listener; /* plain-HTTP control listener */
        const char *caller;    /* client certificate serialNumber ("" on control) */
        uint64_t conn_id;
};
enum sim_action { SIM_SEND = 0, SIM_SEND_CUT = 1 };
struct sim_response {
        int status;
        const char *content_type;
        struct buf body;
        enum sim_action action;
        int delay_ms; /* sleep before answering */
};
/** Decide and build the answer to one request; records and counts. */
void sim_handle(struct sim *s, const struct sim_request *rq, struct sim_response *rs);
/** Apply a form-encoded config body; 0 ok, -1 with err (nothing applied). Locks mu. */
int sim_apply_config(struct sim *s, const char *body, size_t len, char *err, size_t errlen);
/** Uniform double in [0,1) from the seeded generator; mu held. */
double sim_rand_locked(struct sim *s);

/* soap.c */
enum sim_op { SIM_OP_UNKNOWN = 0, SIM_OP_REGISTER = 1, SIM_OP_REVOKE = 2 };
struct soap_req {
        enum sim_op op;
        char id[160]; /* intygs-id/extension, trimmed; "" if absent */
        bool id_too_long;
        char logical_address[80]; /* SOAP header LogicalAddress, "" if absent */
};
/** Parse a request body safely (no network, no DTD); 0 ok, -1 with err (not a request). */
int soap_parse(const char *body, size_t len, struct soap_req *out, char *err, size_t errlen);
/** Build a *Response envelope with result/resultCode (+ resultText, errorId when non-NULL). */
int soap_result(struct buf *out, enum sim_op op, const char *code, const char *text,
                const char *error_id);
/** Build a SOAP 1.1 fault (faultcode soap:Server / soap:Client). */
int soap_fault(struct buf *out, const char *faultcode, const char *faultstring);

#endif
