/*
 * test_dashboard.c - the dashboard (ops/dashboard) in headless Chromium against a running
 * gateway fed by the FK simulator: the page polls while a scripted load goes through, and
 * every view's charts must plot the numbers the admin API and /metrics report (the page's
 * test=1 mode writes what it handed Chart.js into <pre id="plotted">). A screenshot of each
 * view is kept in <build>/artifacts/dashboard-<view>.png. Skipped, saying so, when Chromium
 * is not installed. Test thread only.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../dashboard/cdp.h"
#include "../dashboard/feed.h"

#define CHARTJS_DEFAULT "/usr/share/javascript/chart.js/chart.min.js"
#define WIDTH           1280
#define HEIGHT          1000
#define MAX_SHOT_HEIGHT 4000
#define POLL_MS         200
#define WAIT_POLLS_MS   15000

static struct fksim fk;
static struct gw gw;
static struct cdp cdp;
static char tmp[256]; /* dashboard copy, statistics store and key */
static char artifacts[512];

static int copy_file(const char *from, const char *to)
{
        FILE *a = fopen(from, "rb");
        if (!a)
                return -1;
        FILE *b = fopen(to, "wb");
        if (!b) {
                fclose(a);
                return -1;
        }
        char buf[65536];
        size_t n;
        int rc = 0;
        while ((n = fread(buf, 1, sizeof buf, a)) > 0)
                if (fwrite(buf, 1, n, b) != n)
                        rc = -1;
        fclose(a);
        if (fclose(b) != 0)
                rc = -1;
        return rc;
}

/* A dashboard dir as the build makes it: the page's files and vendor/chart.js. */
static void make_dashboard_dir(void)
{
        char from[700], to[700];
        const char *files[] = {"index.html", "app.js", "style.css"};
        snprintf(to, sizeof to, "%s/dash/vendor", tmp);
        char mk[800];
        snprintf(mk, sizeof mk, "mkdir -p '%s'", to);
        cr_assert_eq(system(mk), 0);
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                snprintf(from, sizeof from, "%s/ops/dashboard/%s", INTYGSGW_SOURCE_DIR, files[i]);
                snprintf(to, sizeof to, "%s/dash/%s", tmp, files[i]);
                cr_assert_eq(copy_file(from, to), 0, "cannot copy %s", from);
        }
        const char *cj = getenv("INTYGSGW_CHARTJS");
        if (!cj || !*cj)
                cj = CHARTJS_DEFAULT;
        snprintf(to, sizeof to, "%s/dash/vendor/chart.js", tmp);
        cr_assert_eq(copy_file(cj, to), 0,
                     "no Chart.js at %s: apt-get install libjs-chart.js (or set INTYGSGW_CHARTJS)",
                     cj);
}

static void setup(void)
{
        signal(SIGPIPE, SIG_IGN);
        tmp[0] = '\0'; /* made by the test once it knows it will run */
        snprintf(artifacts, sizeof artifacts, "%s/../artifacts", INTYGSGW_BIN_DIR);
        mkdir(artifacts, 0755);
}

static void teardown(void)
{
        cdp_stop(&cdp);
        if (gw.pid > 0)
                gw_stop(&gw);
        gw_cleanup(&gw);
        if (fk.pid > 0)
                fksim_stop(&fk);
        if (tmp[0] && !getenv("INTYGSGW_KEEP_TEST_DIRS")) {
                char cmd[400];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", tmp);
        }
}

/* ---- reading the page ---- */

static const char PLOTTED_JS[] = "(()=>{const p=document.getElementById('plotted');"
                                 "return p&&p.dataset.polls?p.textContent:'';})()";

/* The page's plotted JSON once it has polled at least min_polls times since it was loaded
 * with this query string (NULL: any). */
static json_t *plotted_after(int min_polls, const char *search)
{
        char err[256] = "";
        json_t *last = NULL;
        for (int64_t end = cdp_now_ms() + WAIT_POLLS_MS; cdp_now_ms() < end;) {
                char *s = cdp_eval_string(&cdp, PLOTTED_JS, err, sizeof err);
                if (s && *s) {
                        json_error_t je;
                        json_t *j = json_loads(s, 0, &je);
                        cr_assert_not_null(j, "plotted is not JSON: %s", je.text);
                        json_decref(last);
                        last = j;
                        const char *se = json_string_value(json_object_get(j, "search"));
                        if (json_integer_value(json_object_get(j, "polls")) >= min_polls &&
                            (!search || (se && !strcmp(se, search)))) {
                                free(s);
                                return j;
                        }
                }
                free(s);
                usleep(100000);
        }
        char *diag = cdp_eval_string(&cdp,
                                     "location.href+' | Chart: '+typeof Chart+' | status: '+"
                                     "(document.getElementById('status')||{}).textContent",
                                     err, sizeof err);
        char page[512];
        snprintf(page, sizeof page, "%s", diag ? diag : "?");
        free(diag);
        json_decref(last);
        cr_assert_fail("the page did not poll %d times within %d ms (%s; page: %s)", min_polls,
                       WAIT_POLLS_MS, err, page);
        return NULL;
}

static int polls_of(const json_t *p)
{
        return (int)json_integer_value(json_object_get(p, "polls"));
}

static json_t *open_view(const char *view, const char *extra, int min_polls)
{
        char url[1024], search[800], err[256] = "";
        snprintf(search, sizeof search, "?view=%s&test=1&poll_ms=%d%s%s", view, POLL_MS,
                 extra ? "&" : "", extra ? extra : "");
        snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", gw.admin_port, search);
        cr_assert_eq(cdp_navigate(&cdp, url, err, sizeof err), 0, "%s: %s", url, err);
        json_t *p = plotted_after(min_polls, search);
        json_t *errors = json_object_get(p, "errors");
        cr_assert_eq(json_array_size(errors), 0, "%s: the page reported errors: %s", view,
                     json_string_value(json_array_get(errors, 0)));
        cr_assert_str_eq(json_string_value(json_object_get(p, "view")), view);
        return p;
}

static void screenshot(const char *name)
{
        char path[700], err[256] = "";
        snprintf(path, sizeof path, "%s/dashboard-%s.png", artifacts, name);
        cr_assert_eq(cdp_screenshot(&cdp, path, WIDTH, MAX_SHOT_HEIGHT, err, sizeof err), 0,
                     "%s: %s", name, err);
        struct stat sb;
        cr_assert_eq(stat(path, &sb), 0);
        cr_assert_gt(sb.st_size, 10000, "%s is only %lld bytes", path, (long long)sb.st_size);
        /* Back to the normal viewport for the next view. */
        json_t *r = cdp_call(&cdp, "Emulation.setDeviceMetricsOverride",
                             json_pack("{s:i,s:i,s:i,s:b}", "width", WIDTH, "height", HEIGHT,
                                       "deviceScaleFactor", 1, "mobile", 0),
                             true, err, sizeof err);
        cr_assert_not_null(r, "%s", err);
        json_decref(r);
}

static json_t *chart(const json_t *p, const char *id)
{
        json_t *c = json_object_get(json_object_get(p, "charts"), id);
        cr_assert_not_null(c, "no chart %s in the plotted data", id);
        return c;
}

/* The data array of the dataset with this label. */
static json_t *dataset(const json_t *ch, const char *label)
{
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(ch, "datasets"), i, d)
        {
                if (!strcmp(json_string_value(json_object_get(d, "label")), label))
                        return d;
        }
        cr_assert_fail("no dataset %s", label);
        return NULL;
}

/* The value plotted at a label; NAN if the label is absent. */
static double value_at(const json_t *ch, const char *ds_label, const char *label)
{
        json_t *labels = json_object_get(ch, "labels");
        json_t *data = json_object_get(dataset(ch, ds_label), "data");
        for (size_t i = 0; i < json_array_size(labels); i++)
                if (!strcmp(json_string_value(json_array_get(labels, i)), label))
                        return json_number_value(json_array_get(data, i));
        return NAN;
}

static const char *tile(const json_t *p, const char *id)
{
        const char *s = json_string_value(json_object_get(json_object_get(p, "tiles"), id));
        cr_assert_not_null(s, "no tile %s", id);
        return s;
}

static char *admin_get(const char *path)
{
        char *body = NULL;
        int st = test_admin_get(gw.admin_port, path, &body);
        cr_assert_eq(st, 200, "GET %s: %d %s", path, st, body ? body : "");
        return body;
}

static json_t *admin_json(const char *path)
{
        char *body = admin_get(path);
        json_error_t je;
        json_t *j = json_loads(body, 0, &je);
        cr_assert_not_null(j, "%s: %s", path, body);
        free(body);
        return j;
}

static long long jpath_int(json_t *root, const char *a, const char *b)
{
        return json_integer_value(json_object_get(json_object_get(root, a), b));
}

static double jpath_num(json_t *root, const char *a, const char *b)
{
        return json_number_value(json_object_get(json_object_get(root, a), b));
}

/* ---- the scripted load ---- */

#define N_A 12
#define N_B 4
#define N_C 3

static void post_expect(struct feed_client *cl, const struct feed_region *rg, const char *id,
                        const char *person, const char *from, const char *to, const char *want)
{
        char code[32];
        cr_assert_eq(feed_one(cl, rg, id, person, from, to, code, sizeof code), 0, "%s: no answer",
                     id);
        cr_assert_str_eq(code, want, "%s", id);
        usleep(60000); /* spread the load over several polls of the page */
}

static void run_script(void)
{
        struct feed_client a, b, c;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        cr_assert_eq(feed_client_init(&b, gw.port, "region-b"), 0);
        cr_assert_eq(feed_client_init(&c, gw.port, "region-c"), 0);
        char id[64];
        for (int i = 0; i < N_A; i++) {
                snprintf(id, sizeof id, "dash-a-%d", i);
                post_expect(&a, &FEED_A, id, FEED_PATIENTS[i % 4], NULL, NULL, "OK");
        }
        for (int i = 0; i < N_B; i++) {
                snprintf(id, sizeof id, "dash-b-%d", i);
                post_expect(&b, &FEED_B, id, FEED_PATIENTS[i % 4], NULL, NULL, "OK");
        }
        for (int i = 0; i < N_C; i++) {
                snprintf(id, sizeof id, "dash-c-%d", i);
                post_expect(&c, &FEED_C, id, FEED_PATIENTS[i % 4], NULL, NULL, "OK");
        }
        post_expect(&a, &FEED_A, "dash-a-0", FEED_PATIENTS[0], NULL, NULL, "INFO");
        post_expect(&a, &FEED_A, "dash-bad-pnr-1", "191212121213", NULL, NULL, "ERROR");
        post_expect(&a, &FEED_A, "dash-bad-pnr-2", "197503142388", NULL, NULL, "ERROR");
        post_expect(&a, &FEED_A, "dash-bad-period", FEED_PATIENTS[1], "2026-10-20</ns3:end>",
                    "2026-09-20</ns3:end>", "ERROR");
        /* Region B's system may not submit for region A's care provider. */
        post_expect(&b, &FEED_A, "dash-refused-1", FEED_PATIENTS[2], NULL, NULL, "FAULT");
        post_expect(&b, &FEED_A, "dash-refused-2", FEED_PATIENTS[3], NULL, NULL, "FAULT");
        cr_assert(feed_tls_refused(gw.port, NULL));
        cr_assert(feed_tls_refused(gw.port, "revoked"));
        cr_assert(feed_tls_refused(gw.port, "expired"));
        cr_assert(feed_tls_refused(gw.port, "foreign"));
        feed_client_close(&a);
        feed_client_close(&b);
        feed_client_close(&c);
}

/* One more, which FK rejects: a dead letter for the queue view. */
static void make_dead_letter(void)
{
        cr_assert_eq(fksim_control(&fk, "reject_rate=1"), 0);
        struct feed_client a;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        post_expect(&a, &FEED_A, "dash-dead-1", FEED_PATIENTS[1], NULL, NULL, "OK");
        feed_client_close(&a);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_dead_letters", 1, 15000), 1);
        cr_assert_eq(fksim_control(&fk, "reject_rate=0"), 0);
}

/* ---- the checks per view ---- */

static void check_traffic(json_t *p, json_t *sum)
{
        /* Tiles: the summary's numbers. */
        static const char *const outcomes[] = {"accepted",  "rejected", "refused",
                                               "duplicate", "conflict", "error"};
        for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
                char tid[32];
                snprintf(tid, sizeof tid, "t-%s", outcomes[i]);
                cr_assert_eq(atoll(tile(p, tid)), jpath_int(sum, "intyg", outcomes[i]), "%s",
                             outcomes[i]);
        }
        /* Throughput: the rates between polls add up to what went through while the page
         * watched (everything: it was open before the first certificate). */
        json_t *tp = chart(p, "c-throughput");
        json_t *t = json_object_get(p, "t");
        size_t nt = json_array_size(t);
        cr_assert_gt(nt, 5, "too few samples");
        static const char *const shown[] = {"accepted", "rejected", "refused", "duplicate"};
        const long long want[] = {N_A + N_B + N_C, 3, 2, 1};
        for (size_t k = 0; k < 4; k++) {
                json_t *data = json_object_get(dataset(tp, shown[k]), "data");
                double total = 0, peak = 0;
                size_t di = 0;
                for (size_t i = 1; i < nt; i++) {
                        double dt = json_number_value(json_array_get(t, i)) -
                                    json_number_value(json_array_get(t, i - 1));
                        if (dt <= 0)
                                continue;
                        double r = json_number_value(json_array_get(data, di++));
                        total += r * dt;
                        peak = r > peak ? r : peak;
                }
                cr_assert_eq(di, json_array_size(data));
                cr_assert_float_eq(total, (double)want[k], 1e-6, "%s: rates add up to %f", shown[k],
                                   total);
                cr_assert_float_eq(total, (double)jpath_int(sum, "intyg", shown[k]), 1e-6);
                cr_assert_gt(peak, 0, "%s: no rate above zero", shown[k]);
        }
        /* Latency: the page's quantiles from the /metrics histograms are the summary's. */
        json_t *lat = chart(p, "c-latency");
        static const char *const kinds[][3] = {{"answer to caller", "ack_p50", "ack_p99"},
                                               {"OK to FK delivered", "deliver_p50", "deliver_p99"},
                                               {"one FK request", "fk_p50", "fk_p99"}};
        for (size_t i = 0; i < 3; i++) {
                double p50 = value_at(lat, "p50", kinds[i][0]);
                double p99 = value_at(lat, "p99", kinds[i][0]);
                cr_assert_float_eq(p50, jpath_num(sum, "latency_ms", kinds[i][1]), 0.051,
                                   "%s: plotted %f, summary %f", kinds[i][1], p50,
                                   jpath_num(sum, "latency_ms", kinds[i][1]));
                cr_assert_float_eq(p99, jpath_num(sum, "latency_ms", kinds[i][2]), 0.051,
                                   "%s: plotted %f, summary %f", kinds[i][2], p99,
                                   jpath_num(sum, "latency_ms", kinds[i][2]));
                cr_assert_gt(p99, 0);
        }
}

static void check_queue(json_t *p, const char *metrics)
{
        cr_assert_eq(
            atoll(tile(p, "t-delivered")),
            (long long)feed_metric(metrics, "intygsgw_outbox_records{state=\"delivered\"}"));
        cr_assert_eq(atoll(tile(p, "t-delivered")), N_A + N_B + N_C);
        cr_assert_eq(atoll(tile(p, "t-dead")), 1);
        cr_assert_eq(atoll(tile(p, "t-queued")), 0);
        cr_assert_str_eq(tile(p, "t-breaker"), "closed");
        json_t *q = chart(p, "c-queue");
        json_t *dead = json_object_get(dataset(q, "dead"), "data");
        json_t *queued = json_object_get(dataset(q, "queued"), "data");
        size_t n = json_array_size(dead);
        cr_assert_gt(n, 0);
        cr_assert_eq(json_number_value(json_array_get(dead, n - 1)), 1);
        cr_assert_eq(json_number_value(json_array_get(queued, n - 1)), 0);
        json_t *f = chart(p, "c-forward");
        cr_assert_eq(
            value_at(f, "attempts", "delivered"),
            feed_metric(metrics, "intygsgw_forward_attempts_total{outcome=\"delivered\"}"));
        cr_assert_eq(value_at(f, "attempts", "delivered"), N_A + N_B + N_C);
        cr_assert_eq(value_at(f, "attempts", "rejected"), 1);
}

static void check_rejections(json_t *p, const char *metrics)
{
        json_t *r = chart(p, "c-rules");
        cr_assert_eq(json_array_size(json_object_get(r, "labels")), 2);
        cr_assert_eq(value_at(r, "failed checks", "person-id (person_id)"), 2);
        cr_assert_eq(
            value_at(r, "failed checks", "person-id (person_id)"),
            feed_metric(metrics,
                        "intygsgw_rejections_total{rule=\"person-id\",family=\"person_id\"}"));
        cr_assert_eq(value_at(r, "failed checks", "q32.2 (fk7804)"), 1);
        json_t *tls = chart(p, "c-tls");
        static const char *const reasons[] = {"no_client_cert", "cert_revoked", "cert_expired",
                                              "cert_untrusted"};
        for (size_t i = 0; i < 4; i++) {
                char series[128];
                snprintf(series, sizeof series,
                         "intygsgw_tls_handshake_failures_total{reason=\"%s\"}", reasons[i]);
                cr_assert_eq(value_at(tls, "handshake failures", reasons[i]), 1, "%s", reasons[i]);
                cr_assert_eq(value_at(tls, "handshake failures", reasons[i]),
                             feed_metric(metrics, series));
        }
        cr_assert_eq(value_at(tls, "handshake failures", "protocol"), 0);
        /* The table: the recent list, newest first, as the API has it. */
        json_t *api = admin_json("/api/v1/rejections");
        json_t *rows = json_object_get(json_object_get(p, "tables"), "rej-table");
        json_t *recent = json_object_get(api, "recent");
        cr_assert_eq(json_array_size(rows), json_array_size(recent));
        cr_assert_eq(json_array_size(rows), 5); /* 3 failed validations, 2 refusals */
        for (size_t i = 0; i < json_array_size(rows); i++) {
                json_t *row = json_array_get(rows, i), *x = json_array_get(recent, i);
                cr_assert_str_eq(json_string_value(json_array_get(row, 3)),
                                 json_string_value(json_object_get(x, "rule")));
                cr_assert_str_eq(json_string_value(json_array_get(row, 2)),
                                 json_string_value(json_object_get(x, "intyg")));
        }
        cr_assert_str_eq(json_string_value(json_array_get(json_array_get(rows, 0), 3)),
                         "provider_not_granted");
        json_decref(api);
}

static void check_counties(json_t *p, const char *metrics)
{
        json_t *c = chart(p, "c-counties");
        static const char *const labels[] = {"01 Stockholms län", "03 Uppsala län",
                                             "14 Västra Götalands län"};
        static const char *const codes[] = {"01", "03", "14"};
        const double accepted[] = {N_A + 1, N_C, N_B}; /* + the dead letter, accepted too */
        cr_assert_eq(json_array_size(json_object_get(c, "labels")), 3);
        for (size_t i = 0; i < 3; i++) {
                char series[128];
                snprintf(series, sizeof series,
                         "intygsgw_intyg_by_county_total{county=\"%s\",outcome=\"accepted\"}",
                         codes[i]);
                cr_assert_eq(value_at(c, "accepted", labels[i]), accepted[i], "%s", labels[i]);
                cr_assert_eq(value_at(c, "accepted", labels[i]), feed_metric(metrics, series));
        }
        /* The refusals name region A's unit: they count in county 01. */
        cr_assert_eq(value_at(c, "refused", labels[0]), 2);
        cr_assert_eq(value_at(c, "refused", labels[2]), 0);
        json_t *rows = json_object_get(json_object_get(p, "tables"), "caller-table");
        cr_assert_eq(json_array_size(rows), 3);
        bool seen_b = false;
        for (size_t i = 0; i < 3; i++) {
                json_t *row = json_array_get(rows, i);
                if (!strcmp(json_string_value(json_array_get(row, 0)), "SE2321000131-S0AB")) {
                        seen_b = true;
                        cr_assert_str_eq(json_string_value(json_array_get(row, 1)), "4");
                        cr_assert_str_eq(json_string_value(json_array_get(row, 3)), "2");
                }
        }
        cr_assert(seen_b);
}

/* The follow-up view plotted exactly the API's cells: numbers as numbers, suppressed cells
 * as suppressed (never 0). Returns how many plotted cells were suppressed and numeric. */
static void check_followup(json_t *p, int *n_suppressed, int *n_numbers)
{
        const char *path = json_string_value(json_object_get(p, "stats_path"));
        cr_assert_not_null(path);
        cr_assert(strstr(path, "side_by_side=1") && strstr(path, "level=unit"), "%s", path);
        json_t *api = admin_json(path);
        json_t *rows = json_object_get(api, "rows");
        static const char *const cols[2][3] = {
            {"enhet", "region", "riket"}, {"enhet_per_100", "region_per_100", "riket_per_100"}};
        static const char *const charts_[2] = {"c-stats-n", "c-stats-share"};
        *n_suppressed = *n_numbers = 0;
        for (int which = 0; which < 2; which++) {
                json_t *ch = chart(p, charts_[which]);
                json_t *ds = json_object_get(ch, "datasets");
                cr_assert_eq(json_array_size(ds), 3);
                size_t k = 0; /* index among the "totalt" rows */
                for (size_t r = 0; r < json_array_size(rows); r++) {
                        json_t *row = json_array_get(rows, r);
                        if (strcmp(json_string_value(json_object_get(row, "sex")), "totalt"))
                                continue;
                        for (int l = 0; l < 3; l++) {
                                json_t *cell =
                                    json_object_get(json_object_get(row, "cells"), cols[which][l]);
                                json_t *d = json_array_get(ds, (size_t)l);
                                json_t *v = json_array_get(json_object_get(d, "data"), k);
                                json_t *sup = json_array_get(json_object_get(d, "suppressed"), k);
                                if (json_is_true(json_object_get(cell, "suppressed"))) {
                                        cr_assert(json_is_null(v), "suppressed plotted as a value");
                                        cr_assert(json_is_true(sup));
                                        (*n_suppressed)++;
                                } else if (json_is_null(cell)) {
                                        cr_assert(json_is_null(v));
                                } else {
                                        const char *key = which ? "per_100" : "n";
                                        cr_assert_float_eq(
                                            json_number_value(v),
                                            json_number_value(json_object_get(cell, key)), 1e-9,
                                            "%s row %zu", cols[which][l], r);
                                        cr_assert(json_is_false(sup));
                                        (*n_numbers)++;
                                }
                        }
                        k++;
                }
                cr_assert_eq(k, json_array_size(json_object_get(ch, "labels")));
        }
        /* The table says "suppressed" where the API does, and never shows those as 0. */
        json_t *table = json_object_get(json_object_get(p, "tables"), "stats-table");
        cr_assert_eq(json_array_size(table), json_array_size(rows));
        for (size_t r = 0; r < json_array_size(rows); r++) {
                json_t *cells = json_object_get(json_array_get(rows, r), "cells");
                json_t *trow = json_array_get(table, r);
                /* period, group, sex, then n and per 100 per level */
                for (int l = 0; l < 3; l++) {
                        json_t *cell = json_object_get(cells, cols[0][l]);
                        const char *txt =
                            json_string_value(json_array_get(trow, 3 + 2 * (size_t)l));
                        if (json_is_true(json_object_get(cell, "suppressed")))
                                cr_assert_str_eq(txt, "suppressed");
                        else
                                cr_assert_neq(strcmp(txt, "suppressed"), 0);
                }
        }
        json_decref(api);
}

/* Wait until the statistics store has every accepted certificate of region A's unit. */
static void wait_stats(void)
{
        const char *path = "/api/v1/stats/intyg_per_manad?level=unit&id=SE2321000016-A110"
                           "&from=2026-10&to=2026-10&as_of=2026-11-23&format=json";
        long long n = -1;
        for (int i = 0; i < 200 && n != N_A + 1; i++) {
                json_t *j = admin_json(path);
                json_t *row = json_array_get(json_object_get(j, "rows"), 0);
                n = json_integer_value(
                    json_object_get(json_object_get(json_object_get(row, "cells"), "totalt"), "n"));
                json_decref(j);
                if (n != N_A + 1)
                        usleep(50000);
        }
        cr_assert_eq(n, N_A + 1, "statistics never counted region A's certificates");
}

Test(dashboard, views_plot_the_api_numbers, .init = setup, .fini = teardown, .timeout = 120)
{
        const char *browser = cdp_find_browser();
        if (!browser) {
                fprintf(stderr, "test_dashboard: SKIPPED: Chromium is not installed\n");
                cr_skip_test("Chromium is not installed (apt-get install chromium; ops/test.sh "
                             "installs it): the dashboard test did not run");
        }
        snprintf(tmp, sizeof tmp, "/tmp/intygsgw-dashtest-XXXXXX");
        cr_assert_not_null(mkdtemp(tmp));
        make_dashboard_dir();
        char dash[400], spath[400], kpath[400], ov1[450], ov2[450], ov3[450];
        snprintf(dash, sizeof dash, "%s/dash", tmp);
        snprintf(spath, sizeof spath, "%s/stats.db", tmp);
        snprintf(kpath, sizeof kpath, "%s/pseudonym.key", tmp);
        cr_assert_eq(feed_write_key(kpath), 0);
        snprintf(ov1, sizeof ov1, "admin.dashboard_dir=%s", dash);
        snprintf(ov2, sizeof ov2, "stats.path=%s", spath);
        snprintf(ov3, sizeof ov3, "stats.pseudonym_key=%s", kpath);
        const char *ov[] = {ov1, ov2, ov3, NULL};
        cr_assert_not_null(test_pki_dir());
        cr_assert_eq(fksim_start(&fk, NULL), 0, "fk-sim did not start");
        cr_assert_eq(gw_start(&gw, &fk, ov), 0, "gateway did not start (log %s)", gw.log);
        char err[256] = "";
        cr_assert_eq(cdp_start(&cdp, browser, WIDTH, HEIGHT, err, sizeof err), 0,
                     "cannot drive %s: %s", browser, err);

        /* The traffic view watches the whole scripted run. */
        json_t *p = open_view("traffic", NULL, 2);
        json_decref(p);
        run_script();
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_outbox_records{state=\"delivered\"}",
                                      N_A + N_B + N_C, 20000),
                     N_A + N_B + N_C, "FK did not get everything");
        /* A few polls after the last change, so that the page has the final numbers. */
        json_t *q = plotted_after(0, NULL);
        int now = polls_of(q);
        json_decref(q);
        p = plotted_after(now + 3, NULL);
        json_t *sum = admin_json("/api/v1/summary");
        check_traffic(p, sum);
        json_decref(sum);
        json_decref(p);
        screenshot("traffic");

        make_dead_letter();
        char *metrics = admin_get("/metrics");
        p = open_view("queue", NULL, 3);
        check_queue(p, metrics);
        json_decref(p);
        screenshot("queue");

        p = open_view("rejections", NULL, 2);
        check_rejections(p, metrics);
        json_decref(p);
        screenshot("rejections");

        p = open_view("counties", NULL, 2);
        check_counties(p, metrics);
        json_decref(p);
        screenshot("counties");
        free(metrics);

        /* Follow-up statistics: region A's unit beside its region and the country. Counted
         * certificates are above the cutoff at the unit; the few patients' cases are not. */
        wait_stats();
        int sup = 0, num = 0;
        p = open_view("followup",
                      "report=intyg_per_manad&unit=SE2321000016-A110&from=2026-10&to=2026-10"
                      "&as_of=2026-11-23",
                      2);
        check_followup(p, &sup, &num);
        cr_assert_gt(num, 0, "no number was plotted");
        json_decref(p);
        screenshot("followup");
        p = open_view("followup",
                      "report=sjukfall&unit=SE2321000016-A110&from=2026-10&to=2026-10"
                      "&as_of=2026-11-23",
                      2);
        check_followup(p, &sup, &num);
        cr_assert_gt(sup, 0, "four patients' cases should be suppressed at the unit");
        json_decref(p);
        screenshot("followup-suppressed");
}
