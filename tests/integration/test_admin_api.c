/*
 * test_admin_api.c - the admin listener after a scripted run over real mutual TLS: /metrics
 * counts exactly what was sent (accepted, rejected by rule, refused, duplicates, conflicts,
 * forward attempts, TLS handshake failures by reason, outbox gauges, histogram counts) and
 * carries no personnummer or intygs-id; the JSON admin API (summary, one intyg, dead letters
 * paged, replay, discard, rejections, config, statistics) answers as documented; and a caller
 * sees the status of its own intyg and a 404 for another region's. Test thread only.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../dashboard/feed.h"
#include "intyg.h"

static struct fksim fk;
static struct gw gw;
static char tmp[256];

static void setup(void)
{
        snprintf(tmp, sizeof tmp, "/tmp/intygsgw-admintest-XXXXXX");
        cr_assert_not_null(mkdtemp(tmp));
}

static void teardown(void)
{
        if (gw.pid > 0)
                gw_stop(&gw);
        gw_cleanup(&gw);
        if (fk.pid > 0)
                fksim_stop(&fk);
        if (tmp[0]) {
                char cmd[400];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", tmp);
        }
}

static void start(const char *const *overrides)
{
        cr_assert_not_null(test_pki_dir());
        cr_assert_eq(fksim_start(&fk, NULL), 0, "fk-sim did not start");
        cr_assert_eq(gw_start(&gw, &fk, overrides), 0, "gateway did not start (log %s)", gw.log);
}

static json_t *get_json(const char *path, int want_status)
{
        char *body = NULL;
        int st = test_admin_get(gw.admin_port, path, &body);
        cr_assert_eq(st, want_status, "GET %s: %d %s", path, st, body ? body : "");
        json_error_t je;
        json_t *j = json_loads(body ? body : "", 0, &je);
        cr_assert_not_null(j, "GET %s: not JSON: %s", path, body ? body : "");
        free(body);
        return j;
}

static json_t *post_json(const char *path, int want_status)
{
        char *body = NULL;
        int st = test_admin_post(gw.admin_port, path, &body);
        cr_assert_eq(st, want_status, "POST %s: %d %s", path, st, body ? body : "");
        json_error_t je;
        json_t *j = json_loads(body ? body : "", 0, &je);
        cr_assert_not_null(j, "POST %s: not JSON: %s", path, body ? body : "");
        free(body);
        return j;
}

static long long jint(json_t *o, const char *a, const char *b)
{
        json_t *v = json_object_get(o, a);
        if (b)
                v = json_object_get(v, b);
        cr_assert(json_is_integer(v), "%s.%s is not an integer", a, b ? b : "");
        return json_integer_value(v);
}

static void expect_post(struct feed_client *cl, const struct feed_region *rg, const char *id,
                        const char *person, const char *from, const char *to, const char *want)
{
        char code[32];
        cr_assert_eq(feed_one(cl, rg, id, person, from, to, code, sizeof code), 0, "%s: no answer",
                     id);
        cr_assert_str_eq(code, want, "%s", id);
}

static void expect_metric(const char *m, const char *series, double want)
{
        double v = feed_metric(m, series);
        cr_assert_eq(v, want, "%s is %g, want %g", series, v, want);
}

/* ---- /metrics after a scripted run ---- */

#define ACC_A 5
#define ACC_B 3
#define ACC_C 2
#define ACC   (ACC_A + ACC_B + ACC_C)

static const char *const IDS_SENT[] = {"adm-a-0",       "adm-a-4",     "adm-b-2",
                                       "adm-c-1",       "adm-bad-pnr", "adm-bad-period",
                                       "adm-refused-1", "adm-conflict"};

/* Every label name the gateway may use: none of them can carry a person or an intyg. */
static bool allowed_label(const char *name, size_t len)
{
        static const char *const ok[] = {"reason",     "phase",  "code",    "outcome", "kind",
                                         "caller",     "county", "rule",    "family",  "state",
                                         "resolution", "le",     "overflow"};
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
                if (strlen(ok[i]) == len && !strncmp(ok[i], name, len))
                        return true;
        return false;
}

/* Every sample line is "name{labels} value" or "name value" with a # TYPE for its family,
 * and its labels are from the allowed set. */
static void check_exposition(const char *m)
{
        int samples = 0;
        for (const char *p = m; *p;) {
                const char *eol = strchr(p, '\n');
                cr_assert_not_null(eol, "the text does not end with a newline");
                if (*p != '#') {
                        size_t nl = strspn(p, "abcdefghijklmnopqrstuvwxyz_0123456789");
                        cr_assert_gt(nl, 0, "bad line: %.*s", (int)(eol - p), p);
                        char type_line[160];
                        char fam[128];
                        snprintf(fam, sizeof fam, "%.*s", (int)nl, p);
                        /* histogram series belong to their family */
                        static const char *const suf[] = {"_bucket", "_sum", "_count"};
                        for (size_t s = 0; s < 3; s++) {
                                size_t fl = strlen(fam), sl = strlen(suf[s]);
                                if (fl > sl && !strcmp(fam + fl - sl, suf[s]) &&
                                    strstr(m, "_seconds histogram") && strstr(fam, "_seconds"))
                                        fam[fl - sl] = '\0';
                        }
                        snprintf(type_line, sizeof type_line, "# TYPE %s ", fam);
                        cr_assert_not_null(strstr(m, type_line), "no TYPE for %s", fam);
                        const char *q = p + nl;
                        if (*q == '{') {
                                q++;
                                while (*q != '}') {
                                        size_t kl = strspn(q, "abcdefghijklmnopqrstuvwxyz_");
                                        cr_assert(allowed_label(q, kl), "label %.*s in %.*s",
                                                  (int)kl, q, (int)(eol - p), p);
                                        cr_assert_eq(q[kl], '=');
                                        cr_assert_eq(q[kl + 1], '"');
                                        const char *end = strchr(q + kl + 2, '"');
                                        cr_assert(end && end < eol);
                                        q = end + 1;
                                        if (*q == ',')
                                                q++;
                                        cr_assert(q < eol);
                                }
                                q++;
                        }
                        cr_assert_eq(*q, ' ', "%.*s", (int)(eol - p), p);
                        char *num_end = NULL;
                        strtod(q + 1, &num_end);
                        cr_assert_eq(num_end, eol, "value of %.*s", (int)(eol - p), p);
                        samples++;
                }
                p = eol + 1;
        }
        cr_assert_gt(samples, 50);
}

/* ops/METRICS.md documents every family /metrics has, and ops/alerts.yml and
 * ops/prometheus.yml use no metric name that /metrics lacks. */
static void check_docs_match(const char *m)
{
        char *doc = test_read_file(INTYGSGW_SOURCE_DIR "/ops/METRICS.md", NULL);
        cr_assert_not_null(doc, "ops/METRICS.md is missing");
        int families = 0;
        for (const char *p = strstr(m, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
                char name[128], want[140];
                cr_assert_eq(sscanf(p, "# TYPE %127s", name), 1);
                snprintf(want, sizeof want, "| `%s` |", name);
                cr_assert_not_null(strstr(doc, want), "%s is not in ops/METRICS.md", name);
                families++;
        }
        cr_assert_gt(families, 30);
        free(doc);
        static const char *const files[] = {"/ops/alerts.yml", "/ops/prometheus.yml"};
        for (size_t f = 0; f < 2; f++) {
                char path[512];
                snprintf(path, sizeof path, "%s%s", INTYGSGW_SOURCE_DIR, files[f]);
                char *y = test_read_file(path, NULL);
                cr_assert_not_null(y, "%s is missing", path);
                int used = 0;
                for (const char *p = strstr(y, "intygsgw_"); p; p = strstr(p + 1, "intygsgw_")) {
                        if (p > y && (p[-1] == ':' || p[-1] == '_' || p[-1] == '-'))
                                continue; /* a recording rule's own name */
                        char name[128], want[140];
                        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
                        snprintf(name, sizeof name, "%.*s", (int)n, p);
                        static const char *const suf[] = {"_bucket", "_sum", "_count"};
                        for (size_t k = 0; k < 3; k++) {
                                size_t nl = strlen(name), sl = strlen(suf[k]);
                                if (nl > sl && !strcmp(name + nl - sl, suf[k]))
                                        name[nl - sl] = '\0';
                        }
                        snprintf(want, sizeof want, "# TYPE %s ", name);
                        cr_assert_not_null(strstr(m, want), "%s uses %s, which /metrics lacks",
                                           files[f], name);
                        used++;
                }
                if (f == 0)
                        cr_assert_gt(used, 8);
                free(y);
        }
}

Test(metrics, scrape_counts_exactly_what_was_sent, .init = setup, .fini = teardown, .timeout = 60)
{
        start(NULL);
        struct feed_client a, b, c;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        cr_assert_eq(feed_client_init(&b, gw.port, "region-b"), 0);
        cr_assert_eq(feed_client_init(&c, gw.port, "region-c"), 0);
        char id[64];
        for (int i = 0; i < ACC_A; i++) {
                snprintf(id, sizeof id, "adm-a-%d", i);
                expect_post(&a, &FEED_A, id, FEED_PATIENTS[i % 4], NULL, NULL, "OK");
        }
        for (int i = 0; i < ACC_B; i++) {
                snprintf(id, sizeof id, "adm-b-%d", i);
                expect_post(&b, &FEED_B, id, FEED_PATIENTS[i % 4], NULL, NULL, "OK");
        }
        for (int i = 0; i < ACC_C; i++) {
                snprintf(id, sizeof id, "adm-c-%d", i);
                expect_post(&c, &FEED_C, id, FEED_PATIENTS[i % 4], NULL, NULL, "OK");
        }
        /* 2 duplicates, 1 conflict (same id, another patient) */
        expect_post(&a, &FEED_A, "adm-a-0", FEED_PATIENTS[0], NULL, NULL, "INFO");
        expect_post(&b, &FEED_B, "adm-b-1", FEED_PATIENTS[1], NULL, NULL, "INFO");
        expect_post(&a, &FEED_A, "adm-a-1", FEED_PATIENTS[3], NULL, NULL, "ERROR");
        /* 4 rejected: 2 by the person-id check, 1 by FK7804 rule 32.2, 1 malformed XML */
        expect_post(&a, &FEED_A, "adm-bad-pnr", "191212121213", NULL, NULL, "ERROR");
        expect_post(&c, &FEED_C, "adm-bad-pnr-c", "199006231163", NULL, NULL, "ERROR");
        expect_post(&a, &FEED_A, "adm-bad-period", FEED_PATIENTS[1], "2026-10-20</ns3:end>",
                    "2026-09-20</ns3:end>", "ERROR");
        char code[32];
        cr_assert_eq(feed_post(&a, "<RegisterCertificate", 20, code, sizeof code), 0);
        cr_assert_str_eq(code, "FAULT");
        /* 2 refused: region B's system for region A's care provider */
        expect_post(&b, &FEED_A, "adm-refused-1", FEED_PATIENTS[2], NULL, NULL, "FAULT");
        expect_post(&b, &FEED_A, "adm-refused-2", FEED_PATIENTS[3], NULL, NULL, "FAULT");
        /* 4 handshakes refused, one per reason */
        cr_assert(feed_tls_refused(gw.port, NULL));
        cr_assert(feed_tls_refused(gw.port, "revoked"));
        cr_assert(feed_tls_refused(gw.port, "expired"));
        cr_assert(feed_tls_refused(gw.port, "foreign"));
        feed_client_close(&a);
        feed_client_close(&b);
        feed_client_close(&c);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_outbox_records{state=\"delivered\"}",
                                      ACC, 20000),
                     ACC);
        cr_assert_eq(feed_wait_metric(gw.admin_port,
                                      "intygsgw_tls_handshake_failures_total{reason=\"cert_"
                                      "untrusted\"}",
                                      1, 5000),
                     1);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_connections_open", 1, 5000), 1);
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        expect_metric(m, "intygsgw_intyg_total{outcome=\"accepted\",kind=\"register\"}", ACC);
        expect_metric(m, "intygsgw_intyg_total{outcome=\"duplicate\",kind=\"register\"}", 2);
        expect_metric(m, "intygsgw_intyg_total{outcome=\"conflict\",kind=\"register\"}", 1);
        expect_metric(m, "intygsgw_intyg_total{outcome=\"rejected\",kind=\"register\"}", 4);
        expect_metric(m, "intygsgw_intyg_total{outcome=\"refused\",kind=\"register\"}", 2);
        expect_metric(m, "intygsgw_intyg_total{outcome=\"error\",kind=\"register\"}", -1);
        expect_metric(m, "intygsgw_rejections_total{rule=\"person-id\",family=\"person_id\"}", 2);
        expect_metric(m, "intygsgw_rejections_total{rule=\"q32.2\",family=\"fk7804\"}", 1);
        expect_metric(m, "intygsgw_rejections_total{rule=\"xml_malformed\",family=\"xml\"}", 1);
        expect_metric(m,
                      "intygsgw_intyg_by_caller_total{caller=\"SE2321000016-7P3K\",outcome="
                      "\"accepted\"}",
                      ACC_A);
        expect_metric(m,
                      "intygsgw_intyg_by_caller_total{caller=\"SE2321000131-S0AB\",outcome="
                      "\"refused\"}",
                      2);
        expect_metric(m,
                      "intygsgw_intyg_by_caller_total{caller=\"SE2321000032-U9X2\",outcome="
                      "\"rejected\"}",
                      1);
        expect_metric(m, "intygsgw_intyg_by_county_total{county=\"01\",outcome=\"accepted\"}",
                      ACC_A);
        expect_metric(m, "intygsgw_intyg_by_county_total{county=\"14\",outcome=\"accepted\"}",
                      ACC_B);
        expect_metric(m, "intygsgw_intyg_by_county_total{county=\"03\",outcome=\"accepted\"}",
                      ACC_C);
        expect_metric(m, "intygsgw_intyg_by_county_total{county=\"01\",outcome=\"refused\"}", 2);
        expect_metric(m, "intygsgw_tag_resolutions_total{resolution=\"level\"}", ACC + 3);
        expect_metric(m, "intygsgw_forward_attempts_total{outcome=\"delivered\"}", ACC);
        expect_metric(m, "intygsgw_forward_attempts_total{outcome=\"retry\"}", -1);
        expect_metric(m, "intygsgw_forward_breaker_state", 0);
        expect_metric(m, "intygsgw_forward_in_flight", 0);
        static const char *const reasons[] = {"no_client_cert", "cert_revoked", "cert_expired",
                                              "cert_untrusted", "protocol",     "timeout",
                                              "no_caller_id",   "peer_closed",  "other"};
        for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
                char s[128];
                snprintf(s, sizeof s, "intygsgw_tls_handshake_failures_total{reason=\"%s\"}",
                         reasons[i]);
                expect_metric(m, s, i < 4 ? 1 : 0);
        }
        expect_metric(m, "intygsgw_outbox_records{state=\"queued\"}", 0);
        expect_metric(m, "intygsgw_outbox_records{state=\"inflight\"}", 0);
        expect_metric(m, "intygsgw_outbox_records{state=\"delivered\"}", ACC);
        expect_metric(m, "intygsgw_outbox_records{state=\"dead\"}", 0);
        expect_metric(m, "intygsgw_dead_letters", 0);
        expect_metric(m, "intygsgw_outbox_oldest_queued_seconds", 0);
        /* puts handled by group commits: the duplicates and the conflict too */
        expect_metric(m, "intygsgw_outbox_puts_total", ACC + 3);
        /* Every answered certificate request has its latency; every delivery its own. */
        const double answered = ACC + 2 + 1 + 4 + 2;
        expect_metric(m, "intygsgw_ack_latency_seconds_count", answered);
        expect_metric(m, "intygsgw_ack_latency_seconds_bucket{le=\"+Inf\"}", answered);
        expect_metric(m, "intygsgw_validation_seconds_count", answered);
        expect_metric(m, "intygsgw_delivery_latency_seconds_count", ACC);
        expect_metric(m, "intygsgw_fk_roundtrip_seconds_count", ACC);
        expect_metric(m, "intygsgw_http_responses_total{code=\"500\"}", 3); /* the faults */
        /* only the connection that scrapes */
        expect_metric(m, "intygsgw_connections_open", 1);
        cr_assert_gt(feed_metric(m, "intygsgw_uptime_seconds"), 0);
        cr_assert_gt(feed_metric(m, "process_resident_memory_bytes"), 0);
        /* No personnummer and no intygs-id anywhere in the text. */
        for (size_t i = 0; i < 4; i++)
                cr_assert_null(strstr(m, FEED_PATIENTS[i]), "a personnummer in /metrics");
        cr_assert_null(strstr(m, "191212121213"));
        cr_assert_null(strstr(m, "adm-"), "an intygs-id in /metrics");
        for (size_t i = 0; i < sizeof IDS_SENT / sizeof IDS_SENT[0]; i++)
                cr_assert_null(strstr(m, IDS_SENT[i]));
        check_exposition(m);
        check_docs_match(m);
        /* The summary says the same. */
        json_t *s = get_json("/api/v1/summary", 200);
        cr_assert_eq(jint(s, "intyg", "accepted"), ACC);
        cr_assert_eq(jint(s, "intyg", "rejected"), 4);
        cr_assert_eq(jint(s, "intyg", "refused"), 2);
        cr_assert_eq(jint(s, "intyg", "duplicate"), 2);
        cr_assert_eq(jint(s, "intyg", "conflict"), 1);
        cr_assert_eq(jint(s, "intyg", "error"), 0);
        cr_assert_eq(jint(s, "outbox", "delivered"), ACC);
        cr_assert_eq(jint(s, "forward", "delivered"), ACC);
        cr_assert_eq(jint(s, "forward", "retries"), 0);
        cr_assert_eq(jint(s, "tls_handshake_failures", NULL), 4);
        cr_assert(json_is_true(json_object_get(s, "ready")));
        cr_assert_str_eq(json_string_value(json_object_get(s, "node")), "test-node");
        json_decref(s);
        free(m);
}

/* ---- the callers' own status query ---- */

static int status_of(struct feed_client *cl, const char *method, const char *id, char **body)
{
        char path[FEED_PATH_MAX];
        snprintf(path, sizeof path, "/api/v1/status/%s", id);
        struct http_response r;
        cr_assert_eq(feed_request(cl, method, path, NULL, 0, &r), 0, "no answer to %s", path);
        int st = r.status;
        if (body)
                *body = r.body ? strdup(r.body) : NULL;
        http_response_clear(&r);
        return st;
}

Test(caller_status, own_intyg_only, .init = setup, .fini = teardown, .timeout = 60)
{
        start(NULL);
        struct feed_client a, b;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        cr_assert_eq(feed_client_init(&b, gw.port, "region-b"), 0);
        expect_post(&a, &FEED_A, "st-a-1", FEED_PATIENTS[0], NULL, NULL, "OK");
        expect_post(&b, &FEED_B, "st-b-1", FEED_PATIENTS[1], NULL, NULL, "OK");
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_outbox_records{state=\"delivered\"}",
                                      2, 20000),
                     2);
        char *body = NULL;
        cr_assert_eq(status_of(&a, "GET", "st-a-1", &body), 200, "%s", body);
        json_error_t je;
        json_t *j = json_loads(body, 0, &je);
        cr_assert_not_null(j, "%s", body);
        json_t *rec = json_array_get(json_object_get(j, "records"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(rec, "id")), "st-a-1");
        cr_assert_str_eq(json_string_value(json_object_get(rec, "state")), "delivered");
        cr_assert_str_eq(json_string_value(json_object_get(rec, "fk_result")), "OK");
        cr_assert_eq(json_integer_value(json_object_get(rec, "attempts")), 1);
        cr_assert_eq(json_array_size(json_object_get(j, "records")), 1);
        /* The caller's own status carries no patient and no other caller. */
        cr_assert_null(strstr(body, FEED_PATIENTS[0]));
        cr_assert_null(strstr(body, "SE2321000131"));
        json_decref(j);
        free(body);
        /* Another region's intyg is answered exactly like one that does not exist. */
        char *other = NULL, *none = NULL;
        cr_assert_eq(status_of(&b, "GET", "st-a-1", &other), 404);
        cr_assert_eq(status_of(&b, "GET", "st-never-sent", &none), 404);
        cr_assert_str_eq(other, none);
        cr_assert_null(strstr(other, "st-a-1"));
        free(other);
        free(none);
        cr_assert_eq(status_of(&a, "GET", "st-b-1", NULL), 404);
        cr_assert_eq(status_of(&b, "GET", "st-b-1", NULL), 200);
        /* Method and length limits: an id of INTYG_ID_MAX is looked up, one more is refused. */
        cr_assert_eq(status_of(&a, "POST", "st-a-1", NULL), 405);
        char longid[INTYG_ID_MAX + 2];
        memset(longid, 'x', sizeof longid - 1);
        longid[INTYG_ID_MAX] = '\0';
        cr_assert_eq(status_of(&a, "GET", longid, NULL), 404);
        longid[INTYG_ID_MAX] = 'x';
        longid[INTYG_ID_MAX + 1] = '\0';
        cr_assert_eq(status_of(&a, "GET", longid, NULL), 400);
        /* The admin API, in contrast, sees every caller's intyg. */
        json_t *adm = get_json("/api/v1/intyg/st-a-1", 200);
        json_decref(adm);
        feed_client_close(&a);
        feed_client_close(&b);
}

/* ---- the admin API ---- */

static void wait_dead(long long want)
{
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_dead_letters", (double)want, 15000),
                     (double)want, "dead letters never reached %lld", want);
}

static const char *event_names(json_t *detail, char *out, size_t cap)
{
        size_t i, o = 0;
        json_t *e;
        out[0] = '\0';
        json_array_foreach(json_object_get(detail, "events"), i, e)
        {
                int w = snprintf(out + o, cap - o, "%s%s", i ? "," : "",
                                 json_string_value(json_object_get(e, "event")));
                if (w < 0 || (size_t)w >= cap - o)
                        break;
                o += (size_t)w;
        }
        return out;
}

Test(admin_api, deadletters_paged_replay_discard_and_history, .init = setup, .fini = teardown,
     .timeout = 60)
{
        start(NULL);
        cr_assert_eq(fksim_control(&fk, "reject_rate=1"), 0);
        struct feed_client a;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        char id[64];
        for (int i = 0; i < 3; i++) {
                snprintf(id, sizeof id, "dl-%d", i);
                expect_post(&a, &FEED_A, id, FEED_PATIENTS[i], NULL, NULL, "OK");
        }
        feed_client_close(&a);
        wait_dead(3);
        json_t *j = get_json("/api/v1/deadletters", 200);
        cr_assert_eq(jint(j, "total", NULL), 3);
        cr_assert_eq(json_array_size(json_object_get(j, "items")), 3);
        json_t *it = json_array_get(json_object_get(j, "items"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(it, "state")), "dead");
        cr_assert_str_eq(json_string_value(json_object_get(it, "caller")), "SE2321000016-7P3K");
        cr_assert_str_eq(json_string_value(json_object_get(it, "fk_result")), "ERROR");
        /* FK's reason (the dead-letter path keeps it in last_error; fk_text stays empty) */
        cr_assert(strstr(json_string_value(json_object_get(it, "last_error")), "VALIDATION_ERROR"));
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(it, "tags"), "followup_unit")),
            "SE2321000016-A110");
        json_decref(j);
        /* Paging: 2 + 1, every id once. */
        json_t *p1 = get_json("/api/v1/deadletters?offset=0&limit=2", 200);
        json_t *p2 = get_json("/api/v1/deadletters?offset=2&limit=2", 200);
        json_t *p3 = get_json("/api/v1/deadletters?offset=3&limit=2", 200);
        cr_assert_eq(json_array_size(json_object_get(p1, "items")), 2);
        cr_assert_eq(json_array_size(json_object_get(p2, "items")), 1);
        cr_assert_eq(json_array_size(json_object_get(p3, "items")), 0);
        cr_assert_eq(jint(p3, "total", NULL), 3);
        int seen[3] = {0};
        json_t *pages[] = {p1, p2};
        for (int pg = 0; pg < 2; pg++) {
                size_t i;
                json_t *x;
                json_array_foreach(json_object_get(pages[pg], "items"), i, x)
                {
                        const char *xid = json_string_value(json_object_get(x, "id"));
                        cr_assert(!strncmp(xid, "dl-", 3));
                        seen[atoi(xid + 3)]++;
                }
        }
        cr_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
        json_decref(p1);
        json_decref(p2);
        json_decref(p3);
        /* Limits on both sides: 1 and 1000 work, 0 and 1001 do not. */
        json_decref(get_json("/api/v1/deadletters?limit=1", 200));
        json_decref(get_json("/api/v1/deadletters?limit=1000", 200));
        json_decref(get_json("/api/v1/deadletters?limit=0", 400));
        json_decref(get_json("/api/v1/deadletters?limit=1001", 400));
        /* Actions need ids and POST. */
        json_decref(post_json("/api/v1/deadletters/replay", 400));
        char *body = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/api/v1/deadletters/replay?id=dl-0", &body),
                     405);
        free(body);
        /* Discard one, replay the rest with FK accepting again. */
        j = post_json("/api/v1/deadletters/discard?id=dl-2", 200);
        cr_assert_str_eq(json_string_value(json_object_get(j, "action")), "discard");
        cr_assert_eq(jint(j, "changed", NULL), 1);
        json_decref(j);
        j = post_json("/api/v1/deadletters/discard?id=dl-2", 200);
        cr_assert_eq(jint(j, "changed", NULL), 0, "discarded twice");
        json_decref(j);
        j = get_json("/api/v1/deadletters", 200);
        cr_assert_eq(jint(j, "total", NULL), 2);
        json_decref(j);
        cr_assert_eq(fksim_control(&fk, "reject_rate=0"), 0);
        j = post_json("/api/v1/deadletters/replay?id=dl-0&id=dl-1", 200);
        cr_assert_str_eq(json_string_value(json_object_get(j, "action")), "replay");
        cr_assert_eq(jint(j, "changed", NULL), 2);
        json_decref(j);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_outbox_records{state=\"delivered\"}",
                                      2, 15000),
                     2);
        wait_dead(0);
        j = get_json("/api/v1/deadletters", 200);
        cr_assert_eq(jint(j, "total", NULL), 0);
        json_decref(j);
        /* History: received, dead, replayed, delivered; the discarded one stays discarded. */
        char names[512];
        j = get_json("/api/v1/intyg/dl-0", 200);
        json_t *rec = json_array_get(json_object_get(j, "records"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(rec, "state")), "delivered");
        /* a replay starts the attempt count afresh: one attempt since, delivered */
        cr_assert_eq(json_integer_value(json_object_get(rec, "attempts")), 1, "attempts %lld",
                     (long long)json_integer_value(json_object_get(rec, "attempts")));
        event_names(j, names, sizeof names);
        cr_assert(strstr(names, "received") && strstr(names, "dead") && strstr(names, "replayed") &&
                      strstr(names, "delivered"),
                  "%s", names);
        cr_assert(strstr(names, "received") < strstr(names, "replayed"), "%s", names);
        json_decref(j);
        j = get_json("/api/v1/intyg/dl-2", 200);
        rec = json_array_get(json_object_get(j, "records"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(rec, "state")), "discarded");
        event_names(j, names, sizeof names);
        cr_assert(strstr(names, "discarded"), "%s", names);
        json_decref(j);
        json_decref(get_json("/api/v1/intyg/dl-never", 404));
        /* The FK simulator got dl-0 and dl-1 (twice: rejected, then accepted), never dl-2
         * after the discard. */
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        expect_metric(m, "intygsgw_forward_attempts_total{outcome=\"rejected\"}", 3);
        expect_metric(m, "intygsgw_forward_attempts_total{outcome=\"delivered\"}", 2);
        expect_metric(m, "intygsgw_outbox_records{state=\"dead\"}", 0);
        free(m);
}

Test(admin_api, pages_rejections_config_stats_and_errors, .init = setup, .fini = teardown,
     .timeout = 60)
{
        char key[400], ov1[450], ov2[450];
        snprintf(key, sizeof key, "%s/pseudonym.key", tmp);
        cr_assert_eq(feed_write_key(key), 0);
        snprintf(ov1, sizeof ov1, "stats.path=%s/stats.db", tmp);
        snprintf(ov2, sizeof ov2, "stats.pseudonym_key=%s", key);
        const char *ov[] = {ov1, ov2, NULL};
        start(ov);
        char *body = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/healthz", &body), 200);
        cr_assert_str_eq(body, "ok\n");
        free(body);
        json_t *j = get_json("/readyz", 200);
        cr_assert(json_is_true(json_object_get(j, "ready")));
        cr_assert(json_is_true(json_object_get(j, "outbox")));
        json_decref(j);
        /* Rejections: the rule that failed, newest first; no personnummer in them. */
        struct feed_client a;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        expect_post(&a, &FEED_A, "rj-ok", FEED_PATIENTS[0], NULL, NULL, "OK");
        expect_post(&a, &FEED_A, "rj-pnr", "191212121213", NULL, NULL, "ERROR");
        expect_post(&a, &FEED_A, "rj-period", FEED_PATIENTS[1], "2026-10-20</ns3:end>",
                    "2026-09-20</ns3:end>", "ERROR");
        feed_client_close(&a);
        j = get_json("/api/v1/rejections", 200);
        cr_assert_eq(jint(j, "total", NULL), 2);
        json_t *r0 = json_array_get(json_object_get(j, "recent"), 0);
        json_t *r1 = json_array_get(json_object_get(j, "recent"), 1);
        cr_assert_str_eq(json_string_value(json_object_get(r0, "rule")), "q32.2");
        cr_assert_str_eq(json_string_value(json_object_get(r0, "intyg")), "rj-period");
        cr_assert_str_eq(json_string_value(json_object_get(r0, "caller")), "SE2321000016-7P3K");
        cr_assert(strstr(json_string_value(json_object_get(r0, "path")), "32.2"));
        cr_assert_str_eq(json_string_value(json_object_get(r1, "rule")), "person-id");
        char *dump = json_dumps(j, 0);
        cr_assert_null(strstr(dump, "191212121213"), "a personnummer in the rejections");
        cr_assert_null(strstr(dump, FEED_PATIENTS[1]));
        free(dump);
        json_decref(j);
        /* Config: JSON, and no secret in it. */
        cr_assert_eq(test_admin_get(gw.admin_port, "/api/v1/config", &body), 200);
        json_error_t je;
        j = json_loads(body, 0, &je);
        cr_assert_not_null(j, "%s", body);
        json_decref(j);
        free(body);
        /* Statistics: the list, a report as JSON and CSV, and bad queries. */
        j = get_json("/api/v1/stats/list", 200);
        cr_assert_gt(json_array_size(json_object_get(j, "reports")), 5);
        json_decref(j);
        const char *rep = "/api/v1/stats/intyg_per_manad?level=country&from=2026-10&to=2026-10"
                          "&as_of=2026-11-23";
        long long n = -1;
        for (int i = 0; i < 100 && n != 1; i++) {
                j = get_json(rep, 200);
                json_t *row = json_array_get(json_object_get(j, "rows"), 0);
                json_t *tot = json_object_get(json_object_get(row, "cells"), "totalt");
                /* one certificate: under the cutoff, so suppressed rather than 1 */
                if (json_is_true(json_object_get(tot, "suppressed")))
                        n = 1;
                json_decref(j);
                if (n != 1)
                        usleep(50000);
        }
        cr_assert_eq(n, 1, "the accepted certificate never showed (as suppressed)");
        char csv[300];
        snprintf(csv, sizeof csv, "%s&format=csv", rep);
        cr_assert_eq(test_admin_get(gw.admin_port, csv, &body), 200);
        cr_assert(!strncmp(body, "report,level,scope,period", 25), "%s", body);
        cr_assert(strstr(body, "suppressed"), "%s", body);
        free(body);
        json_decref(
            get_json("/api/v1/stats/no_such_report?level=country&from=2026-10&to=2026-10", 404));
        json_decref(get_json("/api/v1/stats/sjukfall?level=galaxy&from=2026-10&to=2026-10", 400));
        json_decref(get_json("/api/v1/stats/sjukfall?level=unit&from=2026-10&to=2026-10", 400));
        json_decref(get_json("/api/v1/stats/sjukfall?level=country", 400));
        /* Unknown endpoints and wrong methods. */
        json_decref(get_json("/api/v1/nope", 404));
        json_decref(get_json("/dashboard/../../etc/passwd", 404));
        cr_assert_eq(test_admin_post(gw.admin_port, "/api/v1/summary", &body), 405);
        free(body);
        cr_assert_eq(test_admin_get(gw.admin_port, "/api/v1/reload", &body), 405);
        free(body);
        json_decref(get_json("/api/v1/intyg/", 400));
}

Test(admin_api, stats_not_configured, .init = setup, .fini = teardown, .timeout = 60)
{
        start(NULL);
        json_t *j = get_json("/api/v1/stats/list", 404);
        cr_assert(strstr(json_string_value(json_object_get(j, "error")), "not configured"));
        json_decref(j);
}
