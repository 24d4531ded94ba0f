/*
 * metrics.c - counters, histograms, Prometheus text format. Loop thread only.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const double bounds[HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                            0.25,   0.5,   1,      2.5,   5,    10,    60,   600};

static const char *tlsf_names[TLSF_N] = {"no_client_cert", "cert_revoked", "cert_expired",
                                         "cert_untrusted", "protocol",     "timeout",
                                         "no_caller_id",   "peer_closed",  "other"};

void metrics_tls_failure(struct metrics *m, const char *reason)
{
        enum tls_failure_kind k = TLSF_OTHER;
        if (!strcmp(reason, "no_client_cert"))
                k = TLSF_NO_CLIENT_CERT;
        else if (!strcmp(reason, "cert_revoked"))
                k = TLSF_REVOKED;
        else if (!strcmp(reason, "cert_expired"))
                k = TLSF_EXPIRED;
        else if (!strcmp(reason, "cert_untrusted"))
                k = TLSF_UNTRUSTED;
        else if (!strcmp(reason, "protocol"))
                k = TLSF_PROTOCOL;
        else if (!strcmp(reason, "peer_closed"))
                k = TLSF_PEER_CLOSED;
        m->tls_failures[k]++;
}

void labelled_add(struct labelled *l, const char *labels, uint64_t n)
{
        for (size_t i = 0; i < l->n; i++) {
                if (strcmp(l->keys[i], labels) == 0) {
                        l->v[i] += n;
                        return;
                }
        }
        if (l->n == LABELLED_MAX || strlen(labels) >= sizeof l->keys[0]) {
                l->overflow += n;
                return;
        }
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", labels);
        l->v[l->n++] = n;
}

uint64_t labelled_get(const struct labelled *l, const char *labels)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->keys[i], labels) == 0)
                        return l->v[i];
        return 0;
}

void metrics_http_status(struct metrics *m, int status)
{
        char k[32];
        snprintf(k, sizeof k, "code=\"%d\"", status);
        labelled_add(&m->http_responses, k, 1);
}

void metrics_http_refused(struct metrics *m, int status)
{
        char k[32];
        snprintf(k, sizeof k, "code=\"%d\"", status);
        labelled_add(&m->http_refused, k, 1);
}

void histogram_observe(struct histogram *h, double s)
{
        size_t i = 0;
        while (i < HIST_BUCKETS && s > bounds[i])
                i++;
        h->counts[i]++;
        h->sum += s;
        h->n++;
}

double histogram_quantile(const struct histogram *h, double q)
{
        if (h->n == 0)
                return 0;
        /* Linear interpolation inside the bucket that holds the q-th observation. */
        double want = q * (double)h->n;
        uint64_t acc = 0;
        for (size_t i = 0; i <= HIST_BUCKETS; i++) {
                if (h->counts[i] == 0)
                        continue;
                if ((double)(acc + h->counts[i]) >= want) {
                        if (i == HIST_BUCKETS)
                                return bounds[HIST_BUCKETS - 1];
                        double lo = i ? bounds[i - 1] : 0, hi = bounds[i];
                        double frac = (want - (double)acc) / (double)h->counts[i];
                        return lo + (hi - lo) * (frac < 0 ? 0 : frac > 1 ? 1 : frac);
                }
                acc += h->counts[i];
        }
        return bounds[HIST_BUCKETS - 1];
}

struct sbuf {
        char *p;
        size_t len, cap;
        int oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
        if (b->oom)
                return;
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = 1;
                        return;
                }
                if ((size_t)n < b->cap - b->len) {
                        b->len += (size_t)n;
                        return;
                }
                size_t cap = b->cap * 2 + (size_t)n;
                char *np = realloc(b->p, cap);
                if (!np) {
                        b->oom = 1;
                        return;
                }
                b->p = np;
                b->cap = cap;
        }
}

static void counter(struct sbuf *b, const char *name, const char *help, uint64_t v)
{
        sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                  (unsigned long long)v);
}

static void gauge(struct sbuf *b, const char *name, const char *help, double v)
{
        sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void family(struct sbuf *b, const char *name, const char *help, const struct labelled *l)
{
        sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
        for (size_t i = 0; i < l->n; i++)
                sb_printf(b, "%s{%s} %llu\n", name, l->keys[i], (unsigned long long)l->v[i]);
        if (l->overflow)
                sb_printf(b, "%s{overflow=\"true\"} %llu\n", name, (unsigned long long)l->overflow);
}

static void hist(struct sbuf *b, const char *name, const char *help, const struct histogram *h)
{
        sb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
        uint64_t acc = 0;
        for (size_t i = 0; i < HIST_BUCKETS; i++) {
                acc += h->counts[i];
                sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                          (unsigned long long)acc);
        }
        acc += h->counts[HIST_BUCKETS];
        sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name,
                  (unsigned long long)acc, name, h->sum, name, (unsigned long long)h->n);
}

static void proc_memory(long *rss_bytes, long *vsz_bytes)
{
        *rss_bytes = *vsz_bytes = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f)
                return;
        long size = 0, res = 0;
        if (fscanf(f, "%ld %ld", &size, &res) == 2) {
                long pg = sysconf(_SC_PAGESIZE);
                *rss_bytes = res * pg;
                *vsz_bytes = size * pg;
        }
        fclose(f);
}

char *metrics_render(const struct metrics *m, double uptime_s, size_t *len)
{
        struct sbuf b = {.cap = 16384};
        b.p = malloc(b.cap);
        if (!b.p)
                return NULL;
        gauge(&b, "intygsgw_connections_open", "Open connections, callers and admin.",
              (double)m->connections_open);
        counter(&b, "intygsgw_connections_total", "Connections accepted.", m->connections_total);
        counter(&b, "intygsgw_connections_refused_total",
                "Connections refused by max_connections or while draining.",
                m->refused_max_connections);
        counter(&b, "intygsgw_connections_caller_limit_total",
                "Connections refused by max_connections_per_caller.", m->refused_caller_limit);
        counter(&b, "intygsgw_tls_handshakes_total", "Completed mutual-TLS handshakes.",
                m->tls_handshakes);
        sb_printf(&b, "# HELP intygsgw_tls_handshake_failures_total Failed TLS handshakes by "
                      "reason.\n# TYPE intygsgw_tls_handshake_failures_total counter\n");
        for (int i = 0; i < TLSF_N; i++)
                sb_printf(&b, "intygsgw_tls_handshake_failures_total{reason=\"%s\"} %llu\n",
                          tlsf_names[i], (unsigned long long)m->tls_failures[i]);
        sb_printf(&b,
                  "# HELP intygsgw_http_timeouts_total Connections closed by a timeout.\n"
                  "# TYPE intygsgw_http_timeouts_total counter\n"
                  "intygsgw_http_timeouts_total{phase=\"header\"} %llu\n"
                  "intygsgw_http_timeouts_total{phase=\"body\"} %llu\n"
                  "intygsgw_http_timeouts_total{phase=\"idle\"} %llu\n",
                  (unsigned long long)m->timeouts_header, (unsigned long long)m->timeouts_body,
                  (unsigned long long)m->timeouts_idle);
        counter(&b, "intygsgw_received_bytes_total", "Bytes received from clients.", m->bytes_in);
        counter(&b, "intygsgw_http_requests_total", "HTTP requests parsed.", m->http_requests);
        counter(&b, "intygsgw_http_malformed_total", "Malformed HTTP requests (400).",
                m->http_malformed);
        family(&b, "intygsgw_http_responses_total", "HTTP responses by status code.",
               &m->http_responses);
        family(&b, "intygsgw_http_limit_refusals_total",
               "Requests refused by a limit, by status code.", &m->http_refused);
        family(&b, "intygsgw_intyg_total", "Certificates by outcome and kind.", &m->intyg_outcomes);
        family(&b, "intygsgw_intyg_by_caller_total", "Certificates by caller and outcome.",
               &m->intyg_by_caller);
        family(&b, "intygsgw_intyg_by_county_total", "Certificates by county and outcome.",
               &m->intyg_by_county);
        family(&b, "intygsgw_rejections_total", "Failed checks by rule and rule family.",
               &m->rejections);
        family(&b, "intygsgw_tag_resolutions_total", "Follow-up unit tags by resolution.",
               &m->tag_resolution);
        counter(&b, "intygsgw_provider_mismatch_total",
                "Certificates whose care provider differs from the directory's.",
                m->provider_mismatch);
        counter(&b, "intygsgw_unknown_unit_total",
                "Certificates whose issuing unit is not in the directory.", m->unknown_unit);
        family(&b, "intygsgw_forward_attempts_total", "Delivery attempts to FK by outcome.",
               &m->forward_attempts);
        counter(&b, "intygsgw_forward_breaker_opens_total", "Times the circuit breaker opened.",
                m->breaker_opens);
        gauge(&b, "intygsgw_forward_breaker_state",
              "Circuit breaker towards FK: 0 closed, 1 open, 2 half-open.",
              (double)m->breaker_state);
        gauge(&b, "intygsgw_forward_in_flight", "Transfers to FK in flight.",
              (double)m->forward_in_flight);
        sb_printf(&b,
                  "# HELP intygsgw_outbox_records Records in the outbox by state.\n"
                  "# TYPE intygsgw_outbox_records gauge\n"
                  "intygsgw_outbox_records{state=\"queued\"} %lld\n"
                  "intygsgw_outbox_records{state=\"inflight\"} %lld\n"
                  "intygsgw_outbox_records{state=\"delivered\"} %lld\n"
                  "intygsgw_outbox_records{state=\"dead\"} %lld\n",
                  (long long)m->outbox_queued, (long long)m->outbox_inflight,
                  (long long)m->outbox_delivered, (long long)m->outbox_dead);
        gauge(&b, "intygsgw_dead_letters", "Dead letters waiting for an administrator.",
              (double)m->outbox_dead);
        gauge(&b, "intygsgw_outbox_oldest_queued_seconds", "Age of the oldest queued record.",
              m->outbox_oldest_queued_s);
        counter(&b, "intygsgw_outbox_commits_total", "Outbox write transactions committed.",
                m->outbox_commits);
        counter(&b, "intygsgw_outbox_fsyncs_total",
                "Outbox commits made durable with an fsync (those holding a put).",
                m->outbox_fsyncs);
        counter(&b, "intygsgw_outbox_puts_total",
                "Put requests executed by group commits (stored, duplicate or conflict).",
                m->outbox_puts);
        hist(&b, "intygsgw_ack_latency_seconds", "From first byte of a request to its answer.",
             &m->ack_latency);
        hist(&b, "intygsgw_delivery_latency_seconds", "From OK to the caller to FK's OK.",
             &m->deliver_latency);
        hist(&b, "intygsgw_fk_roundtrip_seconds", "One request to FK.", &m->fk_roundtrip);
        hist(&b, "intygsgw_validation_seconds", "Validation on the thread pool.",
             &m->validate_time);
        hist(&b, "intygsgw_validation_queue_seconds",
             "From a request read to a pool thread starting its validation.", &m->queue_wait);
        hist(&b, "intygsgw_store_seconds", "From an outbox put to its durable commit.",
             &m->store_latency);
        long rss, vsz;
        proc_memory(&rss, &vsz);
        gauge(&b, "process_resident_memory_bytes", "Resident memory size in bytes.", (double)rss);
        gauge(&b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", (double)vsz);
        gauge(&b, "intygsgw_uptime_seconds", "Seconds since start.", uptime_s);
        if (b.oom) {
                free(b.p);
                return NULL;
        }
        *len = b.len;
        return b.p;
}
