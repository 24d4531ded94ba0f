/*
 * cli.c - status, deadletters and show: HTTP calls to the admin API (libcurl easy, blocking),
 * answers printed as human tables (jansson parses them) or passed through with --json.
 * Main thread only.
 */
#include "cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jbuf.h"

#define CLI_RESPONSE_MAX (16 * 1024 * 1024)

struct cli_opts {
        char base[300]; /* http(s)://host:port */
        const char *cert, *key, *cacert;
        bool json;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
        struct jbuf *b = ud;
        if (b->len + sz * n > CLI_RESPONSE_MAX)
                return 0;
        jbuf_put(b, p, sz * n);
        return b->oom ? 0 : sz * n;
}

/* Options common to every command; unknown words are left for the command. */
static int parse_opts(int argc, char **argv, struct cli_opts *o, char **rest, int *nrest)
{
        const char *admin = NULL, *cfgpath = NULL;
        *nrest = 0;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (!strcmp(a, "--json"))
                        o->json = true;
                else if ((!strcmp(a, "--admin") || !strcmp(a, "-a")) && i + 1 < argc)
                        admin = argv[++i];
                else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc)
                        cfgpath = argv[++i];
                else if (!strcmp(a, "--cert") && i + 1 < argc)
                        o->cert = argv[++i];
                else if (!strcmp(a, "--key") && i + 1 < argc)
                        o->key = argv[++i];
                else if (!strcmp(a, "--cacert") && i + 1 < argc)
                        o->cacert = argv[++i];
                else
                        rest[(*nrest)++] = argv[i];
        }
        bool tls = o->cert != NULL;
        if (!admin && cfgpath) {
                int nerr = 0;
                struct config *cfg = config_load(cfgpath, false, stderr, &nerr);
                if (!cfg)
                        return 3;
                snprintf(o->base, sizeof o->base, "%s://%s", cfg->admin_tls_cert ? "https" : "http",
                         cfg->admin_listen);
                config_free(cfg);
                return 0;
        }
        snprintf(o->base, sizeof o->base, "%s://%s", tls ? "https" : "http",
                 admin ? admin : "127.0.0.1:9090");
        return 0;
}

/* One request; returns the HTTP status (0: no answer) and the body in *out. */
static long call(const struct cli_opts *o, const char *method, const char *path, char **out)
{
        CURL *e = curl_easy_init();
        if (!e)
                return 0;
        char url[1024];
        snprintf(url, sizeof url, "%s%s", o->base, path);
        struct jbuf b = {0};
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (!strcmp(method, "POST")) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        }
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        if (o->cert) {
                curl_easy_setopt(e, CURLOPT_SSLCERT, o->cert);
                curl_easy_setopt(e, CURLOPT_SSLKEY, o->key);
        }
        if (o->cacert)
                curl_easy_setopt(e, CURLOPT_CAINFO, o->cacert);
        long status = 0;
        CURLcode cc = curl_easy_perform(e);
        if (cc == CURLE_OK)
                curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        else
                fprintf(stderr, "intygsgw: %s: %s\n", url, curl_easy_strerror(cc));
        curl_easy_cleanup(e);
        *out = jbuf_take(&b, NULL);
        return status;
}

static const char *js(json_t *o, const char *k)
{
        json_t *v = json_object_get(o, k);
        return json_is_string(v) ? json_string_value(v) : "-";
}

static long long ji(json_t *o, const char *k)
{
        json_t *v = json_object_get(o, k);
        return json_is_integer(v) ? json_integer_value(v) : (long long)json_number_value(v);
}

/* Fetch, print JSON as is or hand the parsed object to a printer. Exit codes: 0, 1 no answer
 * or an error status, 2 usage. */
static int fetch_and_print(const struct cli_opts *o, const char *method, const char *path,
                           void (*print)(json_t *))
{
        char *body = NULL;
        long st = call(o, method, path, &body);
        if (st == 0) {
                free(body);
                return 1;
        }
        if (o->json) {
                fputs(body ? body : "", stdout);
                free(body);
                return st >= 200 && st < 300 ? 0 : 1;
        }
        json_error_t jerr;
        json_t *root = json_loads(body ? body : "", 0, &jerr);
        free(body);
        if (!root) {
                fprintf(stderr, "intygsgw: the admin API answered %ld with no JSON\n", st);
                return 1;
        }
        if (st < 200 || st >= 300) {
                fprintf(stderr, "intygsgw: %ld: %s\n", st, js(root, "error"));
                json_decref(root);
                return 1;
        }
        print(root);
        json_decref(root);
        return 0;
}

static void print_status(json_t *r)
{
        json_t *in = json_object_get(r, "intyg"), *ob = json_object_get(r, "outbox"),
               *fw = json_object_get(r, "forward"), *lat = json_object_get(r, "latency_ms");
        printf("intygsgw %s  node %s  up %.0f s  %s\n", js(r, "version"), js(r, "node"),
               json_number_value(json_object_get(r, "uptime_s")),
               json_is_true(json_object_get(r, "ready")) ? "ready" : "NOT READY");
        printf("%-12s %10s %10s %10s %10s %10s %10s\n", "intyg", "accepted", "rejected", "refused",
               "duplicate", "conflict", "error");
        printf("%-12s %10lld %10lld %10lld %10lld %10lld %10lld\n", "", ji(in, "accepted"),
               ji(in, "rejected"), ji(in, "refused"), ji(in, "duplicate"), ji(in, "conflict"),
               ji(in, "error"));
        printf("%-12s %10s %10s %10s %10s %14s\n", "outbox", "queued", "inflight", "delivered",
               "dead", "oldest queued");
        printf("%-12s %10lld %10lld %10lld %10lld %12.0f s\n", "", ji(ob, "queued"),
               ji(ob, "inflight"), ji(ob, "delivered"), ji(ob, "dead"),
               json_number_value(json_object_get(ob, "oldest_queued_s")));
        printf("%-12s breaker %s, %lld in flight, %lld delivered, %lld retries, %lld rejected by "
               "FK\n",
               "forward", js(fw, "breaker"), ji(fw, "in_flight"), ji(fw, "delivered"),
               ji(fw, "retries"), ji(fw, "rejected"));
        printf("%-12s ack p50 %.1f ms p99 %.1f ms; delivery p50 %.0f ms p99 %.0f ms; FK p99 %.1f "
               "ms\n",
               "latency", json_number_value(json_object_get(lat, "ack_p50")),
               json_number_value(json_object_get(lat, "ack_p99")),
               json_number_value(json_object_get(lat, "deliver_p50")),
               json_number_value(json_object_get(lat, "deliver_p99")),
               json_number_value(json_object_get(lat, "fk_p99")));
        printf("%-12s %lld open, %lld TLS handshake failures\n", "connections",
               ji(r, "connections_open"), ji(r, "tls_handshake_failures"));
}

static void print_records(json_t *arr)
{
        printf("%-38s %-8s %-9s %-18s %8s  %s\n", "INTYG", "KIND", "STATE", "CALLER", "ATTEMPTS",
               "REASON");
        size_t i;
        json_t *r;
        json_array_foreach(arr, i, r)
        {
                const char *why = js(r, "fk_text");
                if (!strcmp(why, "-") || !*why)
                        why = js(r, "last_error");
                printf("%-38s %-8s %-9s %-18s %8lld  %s\n", js(r, "id"), js(r, "kind"),
                       js(r, "state"), js(r, "caller"), ji(r, "attempts"), why);
        }
}

static void print_dead(json_t *r)
{
        print_records(json_object_get(r, "items"));
        printf("(%lld dead letter%s in all)\n", ji(r, "total"), ji(r, "total") == 1 ? "" : "s");
}

static void print_action(json_t *r)
{
        printf("%s: %lld changed\n", js(r, "action"), ji(r, "changed"));
}

static void print_show(json_t *r)
{
        json_t *recs = json_object_get(r, "records");
        print_records(recs);
        size_t i;
        json_t *rec;
        json_array_foreach(recs, i, rec)
        {
                json_t *t = json_object_get(rec, "tags");
                printf("  %s: unit %s -> follow-up unit %s (%s), provider %s, county %s; "
                       "received %s, delivered %s, FK %s\n",
                       js(rec, "kind"), js(t, "unit"), js(t, "followup_unit"), js(t, "resolution"),
                       js(t, "provider"), js(t, "county"), js(rec, "received"),
                       js(rec, "delivered"), js(rec, "fk_result"));
        }
        printf("\n%-25s %-8s %-16s %-24s %s\n", "AT", "KIND", "EVENT", "ACTOR", "DETAIL");
        json_t *ev;
        json_array_foreach(json_object_get(r, "events"), i, ev)
        {
                printf("%-25s %-8s %-16s %-24s %s\n", js(ev, "at"), js(ev, "kind"), js(ev, "event"),
                       js(ev, "actor"), js(ev, "detail"));
        }
}

int cli_status(int argc, char **argv)
{
        struct cli_opts o = {0};
        char *rest[64];
        int nrest;
        if (argc > 64 || parse_opts(argc, argv, &o, rest, &nrest))
                return 2;
        if (nrest) {
                fprintf(stderr, "usage: intygsgw status [--admin HOST:PORT | -c FILE] [--json]\n");
                return 2;
        }
        return fetch_and_print(&o, "GET", "/api/v1/summary", print_status);
}

static void url_escape_into(struct jbuf *b, const char *s)
{
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~')
                        jbuf_put(b, (const char *)&ch, 1);
                else
                        jbuf_printf(b, "%%%02X", ch);
        }
}

int cli_deadletters(int argc, char **argv)
{
        struct cli_opts o = {0};
        char *rest[64];
        int nrest;
        if (argc > 64 || parse_opts(argc, argv, &o, rest, &nrest))
                return 2;
        static const char *use = "usage: intygsgw deadletters list [--offset N] [--limit N] | "
                                 "replay ID...|--all | discard ID...|--all  [--json]\n"
                                 "valid words: list, replay, discard\n";
        if (nrest < 1) {
                fputs(use, stderr);
                return 2;
        }
        const char *verb = rest[0];
        if (!strcmp(verb, "list")) {
                long off = 0, lim = 50;
                for (int i = 1; i < nrest; i++) {
                        if (!strcmp(rest[i], "--offset") && i + 1 < nrest)
                                off = atol(rest[++i]);
                        else if (!strcmp(rest[i], "--limit") && i + 1 < nrest)
                                lim = atol(rest[++i]);
                        else {
                                fputs(use, stderr);
                                return 2;
                        }
                }
                char path[128];
                snprintf(path, sizeof path, "/api/v1/deadletters?offset=%ld&limit=%ld", off, lim);
                return fetch_and_print(&o, "GET", path, print_dead);
        }
        if (strcmp(verb, "replay") && strcmp(verb, "discard")) {
                fprintf(stderr, "intygsgw: unknown word \"%s\"\n", verb);
                fputs(use, stderr);
                return 2;
        }
        struct jbuf b = {0};
        jbuf_printf(&b, "/api/v1/deadletters/%s?", verb);
        int ids = 0;
        for (int i = 1; i < nrest; i++) {
                if (!strcmp(rest[i], "--all")) {
                        jbuf_printf(&b, "%sall=1", ids++ ? "&" : "");
                        continue;
                }
                jbuf_printf(&b, "%sid=", ids++ ? "&" : "");
                url_escape_into(&b, rest[i]);
        }
        if (!ids) {
                jbuf_free(&b);
                fputs(use, stderr);
                return 2;
        }
        char *path = jbuf_take(&b, NULL);
        int rc = path ? fetch_and_print(&o, "POST", path, print_action) : 1;
        free(path);
        return rc;
}

int cli_show(int argc, char **argv)
{
        struct cli_opts o = {0};
        char *rest[64];
        int nrest;
        if (argc > 64 || parse_opts(argc, argv, &o, rest, &nrest))
                return 2;
        if (nrest != 1) {
                fprintf(stderr, "usage: intygsgw show ID [--admin HOST:PORT | -c FILE] [--json]\n");
                return 2;
        }
        struct jbuf b = {0};
        jbuf_printf(&b, "/api/v1/intyg/");
        url_escape_into(&b, rest[0]);
        char *path = jbuf_take(&b, NULL);
        int rc = path ? fetch_and_print(&o, "GET", path, print_show) : 1;
        free(path);
        return rc;
}
