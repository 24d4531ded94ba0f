/*
 * main.c - intygsgw-load: the command line of the load generator. Parses options, sets up
 * the certificate generator, then either writes documents (--write-docs), validates generated
 * documents in-process (--check), or runs a load test (client.c) and prints the report (text
 * on stdout, and JSON with --json). Owns everything it allocates; main thread only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "client.h"
#include "gen.h"
#include "hist.h"
#include "intyg.h"
#include "log.h"
#include "selftest.h"
#include "validate.h"

#ifndef INTYGSGW_SCHEMA_DIR
#define INTYGSGW_SCHEMA_DIR "schemas"
#endif
#define DEFAULT_TEMPLATE INTYGSGW_SCHEMA_DIR "/../tests/data/templates/lisjp-v1.xml.in"

#define MAX_WRITE_DOCS 10000000ull /* --write-docs */
#define MAX_CHECK_DOCS 10000000ull /* --check */
#define URL_MAX        512

static void usage(FILE *f)
{
        fprintf(f,
                "usage: intygsgw-load --url https://HOST:PORT/PATH --pki DIR [options]\n"
                "       intygsgw-load --write-docs DIR --count N [--soap] [options]\n"
                "       intygsgw-load --check N [--schemas DIR] [options]\n"
                "       intygsgw-load --self-test\n"
                "Load: mutual-TLS keep-alive connections posting generated FK7804 certificates.\n"
                "  --connections N    connections (default 16; up to %d)\n"
                "  --rate R           open loop: R certificates/s (latency from the intended\n"
                "                     send time); 0 or absent: closed loop, as fast as answered\n"
                "  --count N          stop after N certificates\n"
                "  --duration S       stop issuing after S seconds (with --count: the first)\n"
                "  --new-conn         a new connection and full TLS handshake per certificate\n"
                "  --timeout-ms MS    one request or connection set-up (default 10000)\n"
                "  --regions LIST     callers among a,b,c (default a,b,c): connection i is\n"
                "                     region LIST[i %% n], with its own client certificate\n"
                "  --seed S           documents are a function of (seed, number); default: time\n"
                "  --id-prefix P      certificate ids start with P (default: from the seed)\n"
                "  --first-seq N      number of the first document (default 0)\n"
                "  --template FILE    default %s\n"
                "  --progress MS      a progress line on stderr every MS\n"
                "  --json FILE        also write the report as JSON\n"
                "Exit: 0 every answer OK; 1 some request not OK; 2 usage or set-up error.\n",
                LOAD_MAX_CONNECTIONS, DEFAULT_TEMPLATE);
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v > max)
                return false;
        *out = v;
        return true;
}

static bool parse_double(const char *s, double max, double *out)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end || !(v >= 0) || v > max)
                return false;
        *out = v;
        return true;
}

/* https://HOST:PORT/PATH with a numeric host; [v6]:port allowed. */
static bool parse_url(const char *url, char *host, size_t hostlen, int *port, char *path,
                      size_t pathlen)
{
        if (strncmp(url, "https://", 8) != 0 || strlen(url) >= URL_MAX)
                return false;
        const char *h = url + 8, *hend, *p;
        if (*h == '[') {
                hend = strchr(h, ']');
                if (!hend || hend[1] != ':')
                        return false;
                h++;
                p = hend + 2;
        } else {
                hend = strchr(h, ':');
                if (!hend)
                        return false;
                p = hend + 1;
        }
        if ((size_t)(hend - h) >= hostlen || hend == h)
                return false;
        snprintf(host, hostlen, "%.*s", (int)(hend - h), h);
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 65535 || (*end && *end != '/'))
                return false;
        *port = (int)v;
        snprintf(path, pathlen, "%s", *end ? end : "/");
        return true;
}

static bool parse_regions(const char *s, struct load_opts *o)
{
        o->n_regions = 0;
        for (const char *p = s; *p; p++) {
                if (*p == ',')
                        continue;
                if (*p < 'a' || *p > 'c' || o->n_regions == GEN_N_REGIONS)
                        return false;
                for (size_t i = 0; i < o->n_regions; i++)
                        if (o->regions[i] == (size_t)(*p - 'a'))
                                return false;
                o->regions[o->n_regions++] = (size_t)(*p - 'a');
        }
        return o->n_regions > 0;
}

static int32_t today_day(void)
{
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        char ymd[11];
        strftime(ymd, sizeof ymd, "%Y-%m-%d", &tm);
        return intyg_date_to_day(ymd);
}

static int write_docs(const struct gen *g, const struct load_opts *o, const char *dir,
                      uint64_t count, bool soap)
{
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "intygsgw-load: cannot make %s: %s\n", dir, strerror(errno));
                return 2;
        }
        char *buf = malloc(LOAD_MAX_DOC);
        if (!buf)
                return 2;
        int rc = 0;
        for (uint64_t i = 0; i < count && rc == 0; i++) {
                const struct gen_region *r = gen_region_get(o->regions[i % o->n_regions]);
                long n = gen_make(g, o->first_seq + i, r, soap, buf, LOAD_MAX_DOC);
                char path[1024];
                snprintf(path, sizeof path, "%s/%08llu.xml", dir,
                         (unsigned long long)(o->first_seq + i));
                FILE *f = n < 0 ? NULL : fopen(path, "wb");
                if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
                        fprintf(stderr, "intygsgw-load: cannot write %s\n", path);
                        rc = 2;
                }
                if (f && fclose(f) != 0)
                        rc = 2;
        }
        free(buf);
        if (rc == 0)
                printf("wrote %llu %s documents to %s\n", (unsigned long long)count,
                       soap ? "SOAP" : "bare", dir);
        return rc;
}

/* Validate generated documents in-process with the gateway's own validator (strict). */
static int check_docs(const struct gen *g, const struct load_opts *o, const char *schemas,
                      uint64_t count)
{
        char err[256];
        struct validator *v = validator_new(schemas, err, sizeof err);
        if (!v) {
                fprintf(stderr, "intygsgw-load: schemas: %s\n", err);
                return 2;
        }
        char *buf = malloc(LOAD_MAX_DOC);
        struct validate_result *res = calloc(1, sizeof *res);
        if (!buf || !res) {
                free(buf);
                free(res);
                validator_free(v);
                return 2;
        }
        struct validate_opts vo = {.max_bytes = 0, .person_id_strict = true};
        uint64_t ok = 0, bad = 0;
        for (uint64_t i = 0; i < count; i++) {
                const struct gen_region *r = gen_region_get(o->regions[i % o->n_regions]);
                bool soap = i % 2 == 1; /* both forms */
                long n = gen_make(g, o->first_seq + i, r, soap, buf, LOAD_MAX_DOC);
                if (n < 0) {
                        bad++;
                        continue;
                }
                memset(res, 0, sizeof *res);
                validate_request(v, buf, (size_t)n, &vo, res);
                if (res->status == VALIDATE_OK && res->errs.n_warnings == 0) {
                        ok++;
                } else {
                        if (bad < 3) {
                                fprintf(stderr, "document %llu: %s %s",
                                        (unsigned long long)(o->first_seq + i),
                                        validate_status_name(res->status), res->fault);
                                for (size_t k = 0; k < res->errs.n; k++)
                                        fprintf(stderr, " [%s %s: %s]", res->errs.items[k].rule,
                                                res->errs.items[k].path,
                                                res->errs.items[k].message);
                                for (size_t k = 0; k < res->errs.n_warnings; k++)
                                        fprintf(stderr, " [warning %s: %s]",
                                                res->errs.warnings[k].rule,
                                                res->errs.warnings[k].message);
                                fputc('\n', stderr);
                        }
                        bad++;
                }
                validate_result_clear(res);
        }
        printf("checked %llu generated documents: %llu valid, %llu not\n",
               (unsigned long long)count, (unsigned long long)ok, (unsigned long long)bad);
        free(buf);
        free(res);
        validator_free(v);
        return bad ? 1 : 0;
}

static double ms(uint64_t us)
{
        return (double)us / 1000.0;
}

static void report_text(const struct load_opts *o, const struct load_result *r, FILE *f)
{
        if (o->new_conn)
                fprintf(f, "intygsgw-load: new connection per request, %d in parallel",
                        o->connections);
        else
                fprintf(f, "intygsgw-load: %d keep-alive connections (%d up in %.2f s)",
                        o->connections, r->connected_at_start, r->setup_s);
        if (o->rate > 0)
                fprintf(f, ", open loop at %.0f/s", o->rate);
        else
                fprintf(f, ", closed loop");
        fprintf(f, "\n");
        uint64_t errs = 0, cerrs = 0;
        for (int k = 0; k < LERR__N; k++) {
                errs += r->req_errs[k];
                cerrs += r->conn_errs[k];
        }
        fprintf(f, "requests    sent %llu  completed %llu  ok %llu  not ok %llu\n",
                (unsigned long long)r->sent, (unsigned long long)r->completed,
                (unsigned long long)r->ok, (unsigned long long)errs);
        fprintf(f, "not ok by kind:");
        for (int k = 0; k < LERR__N; k++)
                fprintf(f, " %s %llu", load_err_name((enum load_err)k),
                        (unsigned long long)r->req_errs[k]);
        fprintf(f, "\n");
        if (cerrs) {
                fprintf(f, "connection errors (no request in flight):");
                for (int k = 0; k < LERR__N; k++)
                        if (r->conn_errs[k])
                                fprintf(f, " %s %llu", load_err_name((enum load_err)k),
                                        (unsigned long long)r->conn_errs[k]);
                fprintf(f, "\n");
        }
        fprintf(f, "HTTP status 2xx %llu 4xx %llu 5xx %llu\n",
                (unsigned long long)r->http_status[2], (unsigned long long)r->http_status[4],
                (unsigned long long)r->http_status[5]);
        double tput = r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0;
        fprintf(f, "throughput  %.1f ok/s over %.2f s (issuing for %.2f s)\n", tput, r->elapsed_s,
                r->issue_s);
        const struct hist *h = &r->latency;
        fprintf(f,
                "latency ms  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f "
                "(OK answers, from the intended send time)\n",
                ms(hist_quantile(h, 0.50)), ms(hist_quantile(h, 0.90)), ms(hist_quantile(h, 0.99)),
                ms(hist_quantile(h, 0.999)), ms(h->max_us),
                h->count ? ms(h->sum_us / h->count) : 0.0);
        double cpu = r->cpu_user_s + r->cpu_sys_s;
        fprintf(f,
                "client      %.2f s CPU (%.2f user, %.2f sys), %.1f us per request; %llu TLS "
                "handshakes\n",
                cpu, r->cpu_user_s, r->cpu_sys_s, r->sent ? cpu * 1e6 / (double)r->sent : 0.0,
                (unsigned long long)r->handshakes);
        for (size_t i = 0; i < r->n_samples; i++)
                fprintf(f, "sample      %s\n", r->samples[i]);
}

static int report_json(const struct load_opts *o, const struct load_result *r, const char *path)
{
        FILE *f = fopen(path, "w");
        if (!f) {
                fprintf(stderr, "intygsgw-load: cannot write %s: %s\n", path, strerror(errno));
                return -1;
        }
        const struct hist *h = &r->latency;
        fprintf(f,
                "{\"mode\":\"%s\",\"loop\":\"%s\",\"rate\":%.1f,\"connections\":%d,"
                "\"connected_at_start\":%d,\"setup_s\":%.3f,\"sent\":%llu,\"completed\":%llu,"
                "\"ok\":%llu,\"elapsed_s\":%.3f,\"issue_s\":%.3f,\"throughput\":%.1f,",
                o->new_conn ? "new-conn" : "keep-alive", o->rate > 0 ? "open" : "closed", o->rate,
                o->connections, r->connected_at_start, r->setup_s, (unsigned long long)r->sent,
                (unsigned long long)r->completed, (unsigned long long)r->ok, r->elapsed_s,
                r->issue_s, r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0.0);
        fprintf(f,
                "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
                "\"max\":%.3f,\"mean\":%.3f},",
                ms(hist_quantile(h, 0.50)), ms(hist_quantile(h, 0.90)), ms(hist_quantile(h, 0.99)),
                ms(hist_quantile(h, 0.999)), ms(h->max_us),
                h->count ? ms(h->sum_us / h->count) : 0.0);
        fprintf(f, "\"errors\":{");
        for (int k = 0; k < LERR__N; k++)
                fprintf(f, "%s\"%s\":%llu", k ? "," : "", load_err_name((enum load_err)k),
                        (unsigned long long)r->req_errs[k]);
        fprintf(f, "},\"connection_errors\":{");
        for (int k = 0; k < LERR__N; k++)
                fprintf(f, "%s\"%s\":%llu", k ? "," : "", load_err_name((enum load_err)k),
                        (unsigned long long)r->conn_errs[k]);
        fprintf(f,
                "},\"handshakes\":%llu,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,"
                "\"start_wall_s\":%.6f,\"last_ok_wall_s\":%.6f}\n",
                (unsigned long long)r->handshakes, r->cpu_user_s, r->cpu_sys_s, r->start_wall_s,
                r->last_ok_wall_s);
        return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
        struct load_opts o = {
            .connections = 16,
            .timeout_ms = 10000,
            .regions = {0, 1, 2},
            .n_regions = 3,
        };
        char host[128] = "", path[URL_MAX] = "";
        const char *url = NULL, *tmpl = DEFAULT_TEMPLATE, *json = NULL, *prefix = NULL;
        const char *write_dir = NULL, *schemas = INTYGSGW_SCHEMA_DIR;
        uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), check = 0, v;
        bool soap = false, have_seed = false, self_test = false;
        log_set_level(LOG_WARN);
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *val = i + 1 < argc ? argv[i + 1] : NULL;
                bool ok = true, takes = true;
                if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        usage(stdout);
                        return 0;
                } else if (!strcmp(a, "--new-conn")) {
                        o.new_conn = true;
                        takes = false;
                } else if (!strcmp(a, "--self-test")) {
                        self_test = true;
                        takes = false;
                } else if (!strcmp(a, "--soap")) {
                        soap = true;
                        takes = false;
                } else if (!val) {
                        ok = false;
                } else if (!strcmp(a, "--url")) {
                        url = val;
                } else if (!strcmp(a, "--pki")) {
                        o.pki_dir = val;
                } else if (!strcmp(a, "--connections")) {
                        ok = parse_u64(val, LOAD_MAX_CONNECTIONS, &v) && v > 0;
                        o.connections = (int)v;
                } else if (!strcmp(a, "--rate")) {
                        ok = parse_double(val, LOAD_MAX_RATE, &o.rate);
                } else if (!strcmp(a, "--count")) {
                        ok = parse_u64(val, UINT64_MAX / 2, &o.count);
                } else if (!strcmp(a, "--duration")) {
                        ok = parse_double(val, 7 * 86400.0, &o.duration_s);
                } else if (!strcmp(a, "--timeout-ms")) {
                        ok = parse_u64(val, 3600000, &v) && v > 0;
                        o.timeout_ms = (int)v;
                } else if (!strcmp(a, "--regions")) {
                        ok = parse_regions(val, &o);
                } else if (!strcmp(a, "--seed")) {
                        ok = parse_u64(val, UINT64_MAX, &seed);
                        have_seed = true;
                } else if (!strcmp(a, "--id-prefix")) {
                        prefix = val;
                } else if (!strcmp(a, "--first-seq")) {
                        ok = parse_u64(val, UINT64_MAX / 2, &o.first_seq);
                } else if (!strcmp(a, "--template")) {
                        tmpl = val;
                } else if (!strcmp(a, "--progress")) {
                        ok = parse_u64(val, 3600000, &v);
                        o.progress_ms = (int)v;
                } else if (!strcmp(a, "--json")) {
                        json = val;
                } else if (!strcmp(a, "--write-docs")) {
                        write_dir = val;
                } else if (!strcmp(a, "--check")) {
                        ok = parse_u64(val, MAX_CHECK_DOCS, &check) && check > 0;
                } else if (!strcmp(a, "--schemas")) {
                        schemas = val;
                } else {
                        fprintf(stderr, "intygsgw-load: unknown option %s\n", a);
                        usage(stderr);
                        return 2;
                }
                if (!ok) {
                        fprintf(stderr, "intygsgw-load: bad or missing value for %s\n", a);
                        return 2;
                }
                if (takes)
                        i++;
        }
        (void)have_seed;
        struct gen g;
        char err[256];
        if (gen_init(&g, tmpl, seed, prefix, today_day(), err, sizeof err) != 0) {
                fprintf(stderr, "intygsgw-load: %s\n", err);
                return 2;
        }
        o.gen = &g;
        int rc;
        if (self_test) {
                rc = load_self_test(&g);
        } else if (write_dir) {
                if (o.count == 0 || o.count > MAX_WRITE_DOCS) {
                        fprintf(stderr, "intygsgw-load: --write-docs needs --count 1-%llu\n",
                                MAX_WRITE_DOCS);
                        rc = 2;
                } else {
                        rc = write_docs(&g, &o, write_dir, o.count, soap);
                }
        } else if (check) {
                rc = check_docs(&g, &o, schemas, check);
                xmlCleanupParser();
        } else if (!url || !o.pki_dir) {
                fprintf(stderr, "intygsgw-load: --url and --pki are required\n");
                usage(stderr);
                rc = 2;
        } else if (!parse_url(url, host, sizeof host, &o.port, path, sizeof path)) {
                fprintf(stderr, "intygsgw-load: --url must be https://NUMERIC-HOST:PORT/PATH\n");
                rc = 2;
        } else {
                o.host = host;
                o.path = path;
                struct load_result *r = calloc(1, sizeof *r);
                if (!r) {
                        rc = 2;
                } else if (load_run(&o, r, err, sizeof err) != 0) {
                        fprintf(stderr, "intygsgw-load: %s\n", err);
                        report_text(&o, r, stderr);
                        rc = 2;
                } else {
                        report_text(&o, r, stdout);
                        if (json && report_json(&o, r, json) != 0)
                                rc = 2;
                        else
                                rc = (r->ok == r->sent && r->completed == r->sent && r->sent > 0)
                                         ? 0
                                         : 1;
                }
                free(r);
        }
        gen_free(&g);
        return rc;
}
