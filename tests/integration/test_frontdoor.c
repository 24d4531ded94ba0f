/*
 * test_frontdoor.c - the mutual-TLS front door over real sockets on 127.0.0.1: every TLS
 * rejection, every HTTP limit on both sides of its edge, keep-alive and pipelining, timeouts,
 * connection limits, the admin listener, reload and orderly shutdown.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "pki.h"
#include "tlsclient.h"

#define REGISTER_PATH "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"

static struct gw gw;
static char ca[512], a_crt[512], a_key[512];

static void opts_for(struct tls_client_opts *o, const char *who, char *crt, char *key)
{
        memset(o, 0, sizeof *o);
        o->ca = ca;
        o->timeout_ms = 5000;
        o->confirm_ms = 300;
        if (who) {
                char n[64];
                snprintf(n, sizeof n, "%s.crt", who);
                test_pki_path(crt, 512, n);
                snprintf(n, sizeof n, "%s.key", who);
                test_pki_path(key, 512, n);
                o->cert = crt;
                o->key = key;
        }
}

static void start(const char *const *overrides)
{
        cr_assert_not_null(test_pki_dir());
        test_pki_path(ca, sizeof ca, "ca.crt");
        test_pki_path(a_crt, sizeof a_crt, "region-a.crt");
        test_pki_path(a_key, sizeof a_key, "region-a.key");
        cr_assert_eq(gw_start(&gw, NULL, overrides), 0, "gateway did not start (log in %s)",
                     gw.log);
}

static void stop(void)
{
        int rc = gw_stop(&gw);
        cr_expect_eq(rc, 0, "gateway exit status %d (log %s)", rc, gw.log);
        gw_cleanup(&gw);
}

/* Whatever happens in a test, no gateway outlives it. */
static void fini(void)
{
        if (gw.pid > 0)
                gw_kill(&gw);
        if (gw.dir[0])
                gw_cleanup(&gw);
        memset(&gw, 0, sizeof gw);
}

TestSuite(frontdoor, .fini = fini);

static struct tlsc *connect_as(const char *who)
{
        struct tls_client_opts o;
        char crt[512], key[512], err[256] = "";
        opts_for(&o, who, crt, key);
        struct tlsc *c = NULL;
        int rc = tlsc_connect(&c, "127.0.0.1", gw.port, &o, err, sizeof err);
        cr_assert_eq(rc, 0, "connect as %s failed: %s", who ? who : "(none)", err);
        return c;
}

/* Connecting with this identity must fail in the handshake (or at the first read, TLS 1.3). */
static void expect_refused(const char *who, const char *log_reason)
{
        struct tls_client_opts o;
        char crt[512], key[512], err[256] = "";
        opts_for(&o, who, crt, key);
        struct tlsc *c = NULL;
        int rc = tlsc_connect(&c, "127.0.0.1", gw.port, &o, err, sizeof err);
        if (rc == 0) {
                const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
                tlsc_send(c, req, sizeof req - 1);
                struct http_response r = {0};
                rc = tlsc_read_response(c, &r, 2000);
                http_response_clear(&r);
                tlsc_free(c);
                cr_assert_neq(rc, 0, "%s: the gateway answered a request", who ? who : "none");
        }
        /* The gateway names the reason in its log. */
        char needle[128];
        snprintf(needle, sizeof needle, "\"reason\":\"%s\"", log_reason);
        bool found = false;
        for (int i = 0; i < 100 && !found; i++) {
                char *log = test_read_file(gw.log, NULL);
                found = log && strstr(log, needle);
                free(log);
                if (!found)
                        usleep(20000);
        }
        cr_assert(found, "log has no %s (log %s)", needle, gw.log);
}

static int request(struct tlsc *c, const char *raw, struct http_response *r)
{
        if (tlsc_send(c, raw, strlen(raw)) != 0)
                return -1;
        return tlsc_read_response(c, r, 5000);
}

Test(frontdoor, tls_rejections)
{
        start(NULL);
        expect_refused(NULL, "no_client_cert");
        expect_refused("revoked", "cert_revoked");
        expect_refused("expired", "cert_expired");
        expect_refused("foreign", "cert_untrusted");
        /* The accepted one still works after all of that. */
        struct tlsc *c = connect_as("region-a");
        struct http_response r = {0};
        cr_assert_eq(request(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        cr_assert_eq(r.status, 404);
        http_response_clear(&r);
        tlsc_free(c);
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        cr_assert(strstr(m, "intygsgw_tls_handshake_failures_total{reason=\"cert_revoked\"} 1"),
                  "%s", m);
        cr_assert(strstr(m, "intygsgw_tls_handshake_failures_total{reason=\"cert_expired\"} 1"));
        cr_assert(strstr(m, "intygsgw_tls_handshake_failures_total{reason=\"cert_untrusted\"} 1"));
        free(m);
        stop();
}

Test(frontdoor, routes_and_methods)
{
        start(NULL);
        struct tlsc *c = connect_as("region-a");
        struct http_response r = {0};
        cr_assert_eq(request(c, "GET /unknown HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        cr_assert_eq(r.status, 404);
        http_response_clear(&r);
        cr_assert_eq(request(c, "GET " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        cr_assert_eq(r.status, 405);
        char allow[32];
        cr_assert_eq(http_response_header(&r, "Allow", allow, sizeof allow), 0);
        cr_assert_str_eq(allow, "POST");
        http_response_clear(&r);
        /* Keep-alive: the same connection still answers. */
        cr_assert_eq(request(c,
                             "PUT " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\nContent-Length: "
                             "0\r\n\r\n",
                             &r),
                     0);
        cr_assert_eq(r.status, 405);
        http_response_clear(&r);
        tlsc_free(c);
        stop();
}

Test(frontdoor, pipelined_requests_answered_in_order)
{
        start(NULL);
        struct tlsc *c = connect_as("region-a");
        const char two[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        cr_assert_eq(tlsc_send(c, two, sizeof two - 1), 0);
        int want[] = {404, 405, 404};
        for (int i = 0; i < 3; i++) {
                struct http_response r = {0};
                cr_assert_eq(tlsc_read_response(c, &r, 5000), 0, "response %d", i);
                cr_assert_eq(r.status, want[i], "response %d: %d", i, r.status);
                http_response_clear(&r);
        }
        tlsc_free(c);
        stop();
}

static void header_of_size(char *buf, size_t total)
{
        /* A request whose request line + headers are exactly `total` bytes. */
        const char *pre = "GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: ";
        size_t fixed = strlen(pre) + 4; /* "\r\n\r\n" */
        size_t pad = total - fixed;
        strcpy(buf, pre);
        memset(buf + strlen(pre), 'a', pad);
        strcpy(buf + strlen(pre) + pad, "\r\n\r\n");
}

Test(frontdoor, header_limit_both_sides)
{
        const char *ov[] = {"server.max_header_bytes=1024", NULL};
        start(ov);
        char *buf = malloc(4096);
        struct http_response r = {0};
        /* The limit counts request line, header names and values (not CRLFs): 1000 fits. */
        struct tlsc *c = connect_as("region-a");
        header_of_size(buf, 1000);
        cr_assert_eq(request(c, buf, &r), 0);
        cr_assert_eq(r.status, 404);
        http_response_clear(&r);
        tlsc_free(c);
        c = connect_as("region-a");
        header_of_size(buf, 1200);
        cr_assert_eq(request(c, buf, &r), 0);
        cr_assert_eq(r.status, 431);
        cr_assert(strstr(r.body, "max_header_bytes"));
        http_response_clear(&r);
        cr_assert_eq(tlsc_read_closed(c, 2000), 1, "connection not closed after 431");
        tlsc_free(c);
        free(buf);
        stop();
}

Test(frontdoor, body_limit_both_sides)
{
        const char *ov[] = {"server.max_body_bytes=2048", NULL};
        start(ov);
        char req[8192];
        struct http_response r = {0};
        /* 2048 bytes: read whole, then refused as XML (a fault), not as too large. */
        struct tlsc *c = connect_as("region-a");
        char body[4096];
        memset(body, 'x', sizeof body);
        int n = snprintf(req, sizeof req,
                         "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                         "Content-Length: 2048\r\n\r\n");
        memcpy(req + n, body, 2048);
        req[n + 2048] = '\0';
        cr_assert_eq(request(c, req, &r), 0);
        cr_assert_neq(r.status, 413);
        http_response_clear(&r);
        tlsc_free(c);
        /* 2049 by Content-Length: 413 before a byte of body is read. */
        c = connect_as("region-a");
        snprintf(req, sizeof req,
                 "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                 "Content-Length: 2049\r\n\r\n");
        cr_assert_eq(request(c, req, &r), 0);
        cr_assert_eq(r.status, 413);
        cr_assert(strstr(r.body, "max_body_bytes"));
        http_response_clear(&r);
        cr_assert_eq(tlsc_read_closed(c, 2000), 1);
        tlsc_free(c);
        /* Chunked, 3000 bytes in all: 413 as the body crosses the limit. */
        c = connect_as("region-a");
        n = snprintf(req, sizeof req,
                     "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < 3; i++) {
                n += snprintf(req + n, sizeof req - (size_t)n, "3e8\r\n");
                memset(req + n, 'y', 1000);
                n += 1000;
                n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
        }
        n += snprintf(req + n, sizeof req - (size_t)n, "0\r\n\r\n");
        cr_assert_eq(request(c, req, &r), 0);
        cr_assert_eq(r.status, 413);
        http_response_clear(&r);
        tlsc_free(c);
        stop();
}

Test(frontdoor, malformed_http_400_and_closed)
{
        start(NULL);
        struct tlsc *c = connect_as("region-a");
        struct http_response r = {0};
        cr_assert_eq(request(c, "GARBAGE\x01\x02 / HTTP/9.9\r\n\r\n", &r), 0);
        cr_assert_eq(r.status, 400);
        http_response_clear(&r);
        cr_assert_eq(tlsc_read_closed(c, 2000), 1);
        tlsc_free(c);
        stop();
}

Test(frontdoor, slowloris_and_idle_closed_others_served)
{
        const char *ov[] = {"server.header_timeout_ms=300", "server.idle_timeout_ms=500", NULL};
        start(ov);
        struct tlsc *slow = connect_as("region-a");
        const char partial[] = "GET /x HTTP/1.1\r\nHost: x\r\n";
        cr_assert_eq(tlsc_send(slow, partial, sizeof partial - 1), 0);
        /* Meanwhile another caller is served at once. */
        struct tlsc *c = connect_as("region-b");
        struct http_response r = {0};
        cr_assert_eq(request(c, "GET /y HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        cr_assert_eq(r.status, 404);
        http_response_clear(&r);
        cr_assert_eq(tlsc_read_closed(slow, 3000), 1, "slow-loris connection not closed");
        tlsc_free(slow);
        /* The idle one goes after idle_timeout_ms. */
        cr_assert_eq(tlsc_read_closed(c, 3000), 1, "idle connection not closed");
        tlsc_free(c);
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        cr_assert(strstr(m, "intygsgw_http_timeouts_total{phase=\"header\"} 1"), "%s", m);
        cr_assert(strstr(m, "intygsgw_http_timeouts_total{phase=\"idle\"} 1"));
        free(m);
        stop();
}

Test(frontdoor, connection_limits)
{
        const char *ov[] = {"server.max_connections=3", "server.max_connections_per_caller=2",
                            NULL};
        start(ov);
        struct tlsc *a1 = connect_as("region-a"), *a2 = connect_as("region-a");
        /* Third of the same caller: its request is refused by name. */
        struct tlsc *a3 = connect_as("region-a");
        struct http_response r = {0};
        cr_assert_eq(request(a3, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        cr_assert_eq(r.status, 503);
        cr_assert(strstr(r.body, "max_connections_per_caller"));
        http_response_clear(&r);
        tlsc_free(a3);
        usleep(100000);
        /* Another caller fits (3 of 3), a fourth connection does not (before TLS). */
        struct tlsc *b1 = connect_as("region-b");
        cr_assert_eq(request(b1, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        cr_assert_eq(r.status, 404);
        http_response_clear(&r);
        struct tls_client_opts o;
        char crt[512], key[512], err[256];
        opts_for(&o, "region-c", crt, key);
        struct tlsc *c4 = NULL;
        int rc = tlsc_connect(&c4, "127.0.0.1", gw.port, &o, err, sizeof err);
        cr_assert_neq(rc, 0, "fourth connection was accepted");
        tlsc_free(c4);
        tlsc_free(a1);
        tlsc_free(a2);
        tlsc_free(b1);
        stop();
}

Test(frontdoor, admin_health_ready_and_reload)
{
        start(NULL);
        char *b = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/healthz", &b), 200);
        cr_assert_str_eq(b, "ok\n");
        free(b);
        cr_assert_eq(test_admin_get(gw.admin_port, "/readyz", &b), 200);
        cr_assert(strstr(b, "\"ready\":true"));
        free(b);
        cr_assert_eq(test_admin_get(gw.admin_port, "/nope", &b), 404);
        free(b);
        /* SIGHUP with a connection open: it keeps working. */
        struct tlsc *c = connect_as("region-a");
        kill(gw.pid, SIGHUP);
        usleep(300000);
        struct http_response r = {0};
        cr_assert_eq(request(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        cr_assert_eq(r.status, 404);
        http_response_clear(&r);
        tlsc_free(c);
        char *log = test_read_file(gw.log, NULL);
        cr_assert(log && strstr(log, "\"event\":\"reload_done\""), "%s", log ? log : "");
        free(log);
        stop();
}

Test(frontdoor, check_config_reports_every_problem)
{
        char dir[] = "/tmp/intygsgw-cfg-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char path[300], cmd[1024];
        snprintf(path, sizeof path, "%s/bad.ini", dir);
        FILE *f = fopen(path, "w");
        fprintf(f, "[server]\nlisten = nowhere\nmax_connections = -5\nbogus = 1\n"
                   "tls_cert = /nonexistent.crt\n[forward]\nenabled = maybe\n");
        fclose(f);
        snprintf(cmd, sizeof cmd, "%s/intygsgw check-config -c %s 2>%s/err.txt", INTYGSGW_BIN_DIR,
                 path, dir);
        int st = system(cmd);
        cr_assert_eq(WEXITSTATUS(st), 3);
        char ep[300];
        snprintf(ep, sizeof ep, "%s/err.txt", dir);
        char *err = test_read_file(ep, NULL);
        cr_assert_not_null(err);
        cr_assert(strstr(err, "bad.ini:2: [server] listen: expected host:port"), "%s", err);
        cr_assert(strstr(err, "bad.ini:3: [server] max_connections: out of range"), "%s", err);
        cr_assert(strstr(err, "bad.ini:4: [server] bogus: unknown key"), "%s", err);
        cr_assert(strstr(err, "[forward] enabled: expected true or false"), "%s", err);
        cr_assert(strstr(err, "[server] tls_key: required"), "%s", err);
        free(err);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        cr_assert_eq(system(cmd), 0);
}

Test(frontdoor, sigterm_drains_and_exits_zero)
{
        start(NULL);
        struct tlsc *c = connect_as("region-a");
        struct http_response r = {0};
        cr_assert_eq(request(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        http_response_clear(&r);
        int rc = gw_stop(&gw);
        cr_assert_eq(rc, 0, "exit %d", rc);
        cr_assert_eq(tlsc_read_closed(c, 2000), 1);
        tlsc_free(c);
        char *log = test_read_file(gw.log, NULL);
        cr_assert(log && strstr(log, "\"event\":\"draining\"") &&
                      strstr(log, "\"event\":\"stopped\""),
                  "%s", log ? log : "");
        free(log);
        gw_cleanup(&gw);
}
