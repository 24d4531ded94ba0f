/*
 * test_metrics.c - counters, label overflow, histogram buckets and quantiles, and the
 * Prometheus text format (every sample line names a metric that has HELP and TYPE).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

Test(metrics, labelled_counts_and_overflow)
{
        struct metrics *m = calloc(1, sizeof *m);
        labelled_add(&m->intyg_outcomes, "outcome=\"accepted\"", 2);
        labelled_add(&m->intyg_outcomes, "outcome=\"accepted\"", 3);
        cr_assert_eq(labelled_get(&m->intyg_outcomes, "outcome=\"accepted\""), 5);
        cr_assert_eq(labelled_get(&m->intyg_outcomes, "outcome=\"rejected\""), 0);
        /* LABELLED_MAX distinct label sets fit; the next goes to overflow, not lost. */
        char k[64];
        for (int i = 0; i < LABELLED_MAX; i++) {
                snprintf(k, sizeof k, "caller=\"c%d\"", i);
                labelled_add(&m->intyg_by_caller, k, 1);
        }
        cr_assert_eq(m->intyg_by_caller.n, LABELLED_MAX);
        cr_assert_eq(m->intyg_by_caller.overflow, 0);
        labelled_add(&m->intyg_by_caller, "caller=\"one-too-many\"", 7);
        cr_assert_eq(m->intyg_by_caller.overflow, 7);
        free(m);
}

Test(metrics, histogram_quantiles)
{
        struct histogram h = {0};
        cr_assert_float_eq(histogram_quantile(&h, 0.5), 0.0, 1e-12);
        for (int i = 0; i < 90; i++)
                histogram_observe(&h, 0.003); /* bucket (0.0025, 0.005] */
        for (int i = 0; i < 10; i++)
                histogram_observe(&h, 0.2); /* bucket (0.1, 0.25] */
        cr_assert_eq(h.n, 100);
        double p50 = histogram_quantile(&h, 0.5), p99 = histogram_quantile(&h, 0.99);
        cr_assert(p50 > 0.0025 && p50 <= 0.005, "p50 %g", p50);
        cr_assert(p99 > 0.1 && p99 <= 0.25, "p99 %g", p99);
        histogram_observe(&h, 10000); /* beyond the last bound: +Inf bucket */
        cr_assert_eq(h.counts[HIST_BUCKETS], 1);
}

Test(metrics, exposition_format)
{
        struct metrics *m = calloc(1, sizeof *m);
        metrics_tls_failure(m, "cert_revoked");
        metrics_tls_failure(m, "something odd");
        metrics_http_status(m, 413);
        labelled_add(&m->rejections, "rule=\"q32\",family=\"fk7804\"", 1);
        histogram_observe(&m->ack_latency, 0.004);
        size_t len = 0;
        char *t = metrics_render(m, 12.5, &len);
        cr_assert_not_null(t);
        cr_assert_eq(strlen(t), len);
        cr_assert(strstr(t, "intygsgw_tls_handshake_failures_total{reason=\"cert_revoked\"} 1\n"));
        cr_assert(strstr(t, "intygsgw_tls_handshake_failures_total{reason=\"other\"} 1\n"));
        cr_assert(strstr(t, "intygsgw_http_responses_total{code=\"413\"} 1\n"));
        cr_assert(strstr(t, "intygsgw_rejections_total{rule=\"q32\",family=\"fk7804\"} 1\n"));
        cr_assert(strstr(t, "intygsgw_ack_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        cr_assert(strstr(t, "intygsgw_ack_latency_seconds_bucket{le=\"+Inf\"} 1\n"));
        cr_assert(strstr(t, "intygsgw_ack_latency_seconds_count 1\n"));
        cr_assert(strstr(t, "intygsgw_uptime_seconds 12.5\n"));
        /* Every sample's metric family was declared with TYPE before it. */
        char *copy = strdup(t);
        for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
                if (line[0] == '#')
                        continue;
                char name[128];
                size_t n = strcspn(line, "{ ");
                cr_assert(n < sizeof name);
                memcpy(name, line, n);
                name[n] = '\0';
                char *suffix = strstr(name, "_bucket");
                if (!suffix)
                        suffix = strstr(name, "_sum");
                if (!suffix)
                        suffix = strstr(name, "_count");
                if (suffix) { /* a histogram's series: its TYPE names the base */
                        char hdecl[160];
                        snprintf(hdecl, sizeof hdecl, "# TYPE %.*s histogram\n",
                                 (int)(suffix - name), name);
                        if (strstr(t, hdecl))
                                *suffix = '\0';
                }
                char decl[160];
                snprintf(decl, sizeof decl, "# TYPE %s ", name);
                cr_assert(strstr(t, decl), "no TYPE for %s", name);
        }
        free(copy);
        free(t);
        free(m);
}
