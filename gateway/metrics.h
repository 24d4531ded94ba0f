/*
 * metrics.h - the gateway's counters, gauges and latency histograms, and their Prometheus
 * text rendering. Labels are bounded sets (outcomes, rule ids, caller and county ids): never a
 * personnummer or an intyg id.
 * Owns: struct metrics (embedded in struct server). Threads: the loop thread only.
 */
#ifndef INTYGSGW_METRICS_H
#define INTYGSGW_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum tls_failure_kind {
        TLSF_NO_CLIENT_CERT,
        TLSF_REVOKED,
        TLSF_EXPIRED,
        TLSF_UNTRUSTED,
        TLSF_PROTOCOL,
        TLSF_TIMEOUT,
        TLSF_NO_ID,
        TLSF_PEER_CLOSED,
        TLSF_OTHER,
        TLSF_N
};

/** Labelled counter family: up to LABELLED_MAX distinct label sets, the rest under "other". */
#define LABELLED_MAX 256
struct labelled {
        size_t n;
        char keys[LABELLED_MAX][96]; /* rendered label set: a="x",b="y" */
        uint64_t v[LABELLED_MAX];
        uint64_t overflow;
};

/** Latency histogram in seconds with fixed bucket bounds. */
#define HIST_BUCKETS 16
struct histogram {
        uint64_t counts[HIST_BUCKETS + 1]; /* last: +Inf */
        double sum;
        uint64_t n;
};

struct metrics {
        /* connections and TLS */
        int64_t connections_open;
        uint64_t connections_total;
        uint64_t tls_handshakes;
        uint64_t tls_failures[TLSF_N];
        uint64_t refused_max_connections;
        uint64_t refused_caller_limit;
        uint64_t timeouts_header, timeouts_body, timeouts_idle;
        uint64_t bytes_in;

        /* HTTP */
        uint64_t http_requests;
        uint64_t http_malformed;
        struct labelled http_responses; /* code="200" */
        struct labelled http_refused;   /* code="413" */

        /* intyg */
        struct labelled
            intyg_outcomes; /* outcome="accepted|rejected|refused|duplicate|conflict|error",kind= */
        struct labelled intyg_by_caller; /* caller="SE...",outcome= */
        struct labelled intyg_by_county; /* county="01",outcome= */
        struct labelled rejections;      /* rule="q32",family="fk7804|xsd|xml|person_id|soap" */
        struct labelled tag_resolution;  /* resolution="level|mapping|coarser|unresolved" */
        uint64_t provider_mismatch;
        uint64_t unknown_unit;

        /* forwarding */
        struct labelled forward_attempts; /* outcome="delivered|retry|dead|..." */
        uint64_t breaker_opens;
        int breaker_state; /* 0 closed, 1 open, 2 half-open */
        int64_t forward_in_flight;

        /* outbox gauges (refreshed from the outbox) */
        int64_t outbox_queued, outbox_inflight, outbox_delivered, outbox_dead;
        double outbox_oldest_queued_s;
        uint64_t outbox_commits, outbox_fsyncs, outbox_puts;

        /* latency */
        struct histogram ack_latency;     /* receive -> OK sent */
        struct histogram deliver_latency; /* OK -> delivered to FK */
        struct histogram fk_roundtrip;    /* one FK request */
        struct histogram validate_time;   /* validation on the pool */
        struct histogram queue_wait;      /* request read -> a pool thread starts validating */
        struct histogram store_latency;   /* outbox put -> durable (the group commit's fsync) */
};

void metrics_tls_failure(struct metrics *m, const char *reason);
void metrics_http_status(struct metrics *m, int status);
void metrics_http_refused(struct metrics *m, int status);

/** Add to a labelled counter; labels is a rendered set such as `outcome="accepted"`. */
void labelled_add(struct labelled *l, const char *labels, uint64_t n);
uint64_t labelled_get(const struct labelled *l, const char *labels);

void histogram_observe(struct histogram *h, double seconds);
/** Approximate quantile (0..1) from the buckets, in seconds. */
double histogram_quantile(const struct histogram *h, double q);

/** Render everything in the Prometheus text exposition format (malloc'd). */
char *metrics_render(const struct metrics *m, double uptime_s, size_t *len);

#endif
