/*
 * test_hostile.c - hostile network input against a real gateway on 127.0.0.1: hostile XML
 * (oversized, 10,000 levels deep, billion laughs, XXE to file:// and http://, DOCTYPE tricks,
 * XInclude, invalid UTF-8, foreign encodings) sent from several threads at once, slow-loris,
 * a flood of half-open TLS handshakes, and 10,000 TCP connections at once. For each: the
 * gateway stays up, a well-behaved caller (region-a, a valid intyg) gets OK within a bound
 * while the attack runs, the gateway's RSS stays under a stated bound, and the attack is
 * logged (JSON log) and counted (/metrics). Every loop is bounded in count and time.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "pki.h"
#include "tlsclient.h"

#define REGISTER_PATH "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"
#define REGISTER_ACTION                                                                            \
        "urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3:"           \
        "RegisterCertificate"

/* Bounds. The gateway runs under ASan (2-3x the memory and time of a release build). */
#define GOOD_CALLER_BOUND_MS 8000 /* a valid intyg answered OK within this, under attack */
#define RSS_BOUND_KB                                                                               \
        (256 * 1024) /* gateway VmRSS at any sample point (ASan, 16 MB quarantine; ~80 MB seen) */
#define FLOOD_CONNECTIONS 10000
#define FLOOD_MAX_CONNS   1000 /* the gateway's max_connections in the flood test */

static struct gw gw;
static char ca[512], a_crt[512], a_key[512], b_crt[512], b_key[512];

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static void start(const char *const *overrides)
{
        signal(SIGPIPE, SIG_IGN); /* a peer that closed on us is an answer, not a crash */
        /* The gateway inherits the environment: a small ASan quarantine, so that its RSS shows
         * what it holds rather than up to 256 MB of freed memory ASan keeps poisoned. */
        static char asan[512];
        const char *prev = getenv("ASAN_OPTIONS");
        if (!prev || !strstr(prev, "quarantine_size_mb")) {
                snprintf(asan, sizeof asan, "%s%squarantine_size_mb=16", prev ? prev : "",
                         prev && *prev ? ":" : "");
                setenv("ASAN_OPTIONS", asan, 1);
        }
        cr_assert_not_null(test_pki_dir());
        test_pki_path(ca, sizeof ca, "ca.crt");
        test_pki_path(a_crt, sizeof a_crt, "region-a.crt");
        test_pki_path(a_key, sizeof a_key, "region-a.key");
        test_pki_path(b_crt, sizeof b_crt, "region-b.crt");
        test_pki_path(b_key, sizeof b_key, "region-b.key");
        cr_assert_eq(gw_start(&gw, NULL, overrides), 0, "gateway did not start (log in %s)",
                     gw.log);
}

static void stop(void)
{
        int rc = gw_stop(&gw);
        cr_expect_eq(rc, 0, "gateway exit status %d (log %s)", rc, gw.log);
        gw_cleanup(&gw);
}

static void opts(struct tls_client_opts *o, const char *crt, const char *key)
{
        memset(o, 0, sizeof *o);
        o->ca = ca;
        o->cert = crt;
        o->key = key;
        o->timeout_ms = 10000;
}

/* The gateway's resident set in kB (0 if it cannot be read). */
static long gw_rss_kb(void)
{
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", (int)gw.pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return 0;
        long kb = 0;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

static void expect_alive_and_bounded(const char *when)
{
        cr_assert_eq(kill(gw.pid, 0), 0, "%s: the gateway is gone (log %s)", when, gw.log);
        long kb = gw_rss_kb();
        cr_assert_gt(kb, 0, "%s: no VmRSS", when);
        cr_assert_lt(kb, RSS_BOUND_KB, "%s: gateway RSS %ld kB over the bound %d kB", when, kb,
                     RSS_BOUND_KB);
}

/* A metric's value ("name{labels} value" line); -1 if absent. */
static long long metric(const char *text, const char *name)
{
        size_t nl = strlen(name);
        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                if (!strncmp(p, name, nl) && p[nl] == ' ')
                        return atoll(p + nl + 1);
        }
        return -1;
}

static long long metric_now(const char *name)
{
        char *m = NULL;
        int st = test_admin_get(gw.admin_port, "/metrics", &m);
        cr_assert_eq(st, 200, "GET /metrics: %d", st);
        long long v = metric(m, name);
        free(m);
        return v;
}

/* Lines of the gateway's JSON log holding every one of the needles (NULL-terminated). */
static int log_count(const char *const *needles)
{
        char *log = test_read_file(gw.log, NULL);
        cr_assert_not_null(log);
        int n = 0;
        for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
                bool all = true;
                for (size_t i = 0; needles[i] && all; i++)
                        all = strstr(line, needles[i]) != NULL;
                n += all;
        }
        free(log);
        return n;
}

static int good_seq;

/* One valid intyg from region-a; returns the milliseconds it took to get OK (fails if not). */
static int64_t good_caller(void)
{
        char id[64];
        snprintf(id, sizeof id, "hostile-%d-%d", (int)getpid(), ++good_seq);
        size_t blen = 0, len = 0;
        char *bare =
            test_make_intyg(id, "191212121212", "SE2321000016-A111", "SE2321000016-0001", &blen);
        cr_assert_not_null(bare);
        char *env = test_soap_wrap(bare, blen, &len);
        free(bare);
        struct tls_client_opts o;
        opts(&o, a_crt, a_key);
        struct http_response r;
        char err[256] = "";
        int64_t t0 = now_ms();
        int rc = -1;
        /* Retried while the gateway refuses connections (max_connections), within the bound. */
        for (int i = 0; i < 200 && now_ms() - t0 < GOOD_CALLER_BOUND_MS; i++) {
                rc = tlsc_request("127.0.0.1", gw.port, &o, "POST", REGISTER_PATH,
                                  "text/xml; charset=utf-8", REGISTER_ACTION, env, len, &r, err,
                                  sizeof err);
                if (rc == 0)
                        break;
                sleep_ms(50);
        }
        int64_t took = now_ms() - t0;
        free(env);
        cr_assert_eq(rc, 0, "well-behaved caller got no answer in %lld ms: %s (log %s)",
                     (long long)took, err, gw.log);
        cr_assert_eq(r.status, 200, "well-behaved caller: %d %s", r.status, r.body);
        cr_assert_not_null(strstr(r.body, "<core:resultCode>OK</core:resultCode>"), "%s", r.body);
        http_response_clear(&r);
        cr_assert_lt(took, GOOD_CALLER_BOUND_MS, "well-behaved caller waited %lld ms",
                     (long long)took);
        return took;
}

/* ---------------------------------------------------------------- hostile XML ---- */

struct attack {
        const char *name;
        char *body;
        size_t len;
        const char *fault; /* the xmlsafe fault code it must be refused with */
};

static char *dup_str(const char *s, size_t *len)
{
        *len = strlen(s);
        return strdup(s);
}

static char *repeat(const char *pre, const char *open, size_t n, const char *mid, const char *close,
                    const char *post, size_t *len)
{
        size_t ol = strlen(open), cl = strlen(close);
        size_t total = strlen(pre) + n * (ol + cl) + strlen(mid) + strlen(post);
        char *b = malloc(total + 1), *p = b;
        cr_assert_not_null(b);
        p = stpcpy(p, pre);
        for (size_t i = 0; i < n; i++)
                p = stpcpy(p, open);
        p = stpcpy(p, mid);
        for (size_t i = 0; i < n; i++)
                p = stpcpy(p, close);
        p = stpcpy(p, post);
        *len = (size_t)(p - b);
        return b;
}

/* A valid enveloped intyg with `insert` put just before its intygs-id extension value. */
static char *valid_with(const char *head, const char *insert, size_t *len)
{
        size_t blen = 0, elen = 0;
        char *bare = test_make_intyg("hostile-x", "191212121212", "SE2321000016-A111",
                                     "SE2321000016-0001", &blen);
        char *env = test_soap_wrap(bare, blen, &elen);
        free(bare);
        const char *at = strstr(env, "hostile-x");
        cr_assert_not_null(at);
        const char *body = env;
        if (head && !strncmp(env, "<?xml", 5))
                body = strstr(env, "?>") + 2; /* the head brings its own declaration */
        size_t hl = head ? strlen(head) : 0, il = strlen(insert);
        char *out = malloc(elen + hl + il + 1);
        cr_assert_not_null(out);
        size_t pre = (size_t)(at - body);
        memcpy(out, head ? head : "", hl);
        memcpy(out + hl, body, pre);
        memcpy(out + hl + pre, insert, il);
        strcpy(out + hl + pre + il, at);
        *len = strlen(out);
        free(env);
        return out;
}

static int xxe_listener(int *port)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
        cr_assert_eq(listen(fd, 16), 0);
        socklen_t sl = sizeof a;
        getsockname(fd, (struct sockaddr *)&a, &sl);
        *port = ntohs(a.sin_port);
        return fd;
}

static size_t make_attacks(struct attack *at, int xxe_port)
{
        size_t n = 0;
        char buf[1024];
        /* 10,000 levels: well within max_body, refused while parsing at XML_MAX_DEPTH. */
        at[n] = (struct attack){"deep", NULL, 0, "xml_too_deep"};
        at[n].body = repeat("<?xml version=\"1.0\"?>", "<a>", 10000, "x", "</a>", "", &at[n].len);
        n++;
        at[n] = (struct attack){"billion-laughs", NULL, 0, "xml_doctype"};
        at[n].body = dup_str(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
            " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
            " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
            " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
            " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
            " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
            " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
            " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
            " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
            " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
            "]>\n<lolz>&lol9;</lolz>\n",
            &at[n].len);
        n++;
        /* Billion laughs inside an otherwise valid intyg: the entity in the intygs-id. */
        at[n] = (struct attack){"laughs-in-intyg", NULL, 0, "xml_doctype"};
        at[n].body = valid_with("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaa\">"
                                "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>",
                                "&b;", &at[n].len);
        n++;
        at[n] = (struct attack){"xxe-file", NULL, 0, "xml_doctype"};
        at[n].body = valid_with("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "
                                "\"file:///etc/passwd\">]>",
                                "&xxe;", &at[n].len);
        n++;
        snprintf(buf, sizeof buf,
                 "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "
                 "\"http://127.0.0.1:%d/xxe\">]>",
                 xxe_port);
        at[n] = (struct attack){"xxe-http", NULL, 0, "xml_doctype"};
        at[n].body = valid_with(buf, "&xxe;", &at[n].len);
        n++;
        snprintf(buf, sizeof buf,
                 "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY %% p SYSTEM "
                 "\"http://127.0.0.1:%d/p.dtd\"> %%p;]><x/>",
                 xxe_port);
        at[n] = (struct attack){"parameter-entity", NULL, 0, "xml_doctype"};
        at[n].body = dup_str(buf, &at[n].len);
        n++;
        snprintf(buf, sizeof buf,
                 "<?xml version=\"1.0\"?><!DOCTYPE x SYSTEM \"http://127.0.0.1:%d/x.dtd\"><x/>",
                 xxe_port);
        at[n] = (struct attack){"external-dtd", NULL, 0, "xml_doctype"};
        at[n].body = dup_str(buf, &at[n].len);
        n++;
        at[n] = (struct attack){"empty-doctype", NULL, 0, "xml_doctype"};
        at[n].body = valid_with("<?xml version=\"1.0\"?><!DOCTYPE Envelope>", "", &at[n].len);
        n++;
        /* Not a DOCTYPE: XInclude must not be processed (an unknown contract, no file read). */
        at[n] = (struct attack){"xinclude", NULL, 0, "unknown_contract"};
        at[n].body = dup_str("<?xml version=\"1.0\"?><r xmlns:xi=\"http://www.w3.org/2001/"
                             "XInclude\"><xi:include href=\"file:///etc/passwd\" "
                             "parse=\"text\"/></r>",
                             &at[n].len);
        n++;
        /* Invalid UTF-8 (an overlong '/', a lone continuation byte) in the intygs-id. */
        at[n] = (struct attack){"invalid-utf8", NULL, 0, "xml_bad_encoding"};
        at[n].body = valid_with(NULL, "\xc0\xaf\x80", &at[n].len);
        n++;
        at[n] = (struct attack){"latin1", NULL, 0, "xml_bad_encoding"};
        at[n].body =
            dup_str("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><x>\xe5</x>", &at[n].len);
        n++;
        /* Not here: encoding="UTF-16" on ASCII bytes is accepted today (xmlsafe forces UTF-8
         * and ignores the declaration); reported, see tests/fuzz/RESULTS.md. */
        /* 20,001 elements, flat: 100 kB, under max_body. */
        at[n] = (struct attack){"many-elements", NULL, 0, "xml_too_many_elements"};
        at[n].body = repeat("<r>", "<a/>", 20001, "", "", "</r>", &at[n].len);
        n++;
        /* One text node of 200 kB (XML_MAX_TEXT is 64 kB). */
        at[n] = (struct attack){"huge-text", NULL, 0, "xml_text_too_long"};
        at[n].body = repeat("<r>", "x", 200000, "", "", "</r>", &at[n].len);
        n++;
        return n;
}

struct volley {
        struct attack *at;
        size_t n;
        int rounds;
        int answered; /* responses with status 500 and no leaked file content */
        int bad;
        char why[320];
};

static void *volley_run(void *arg)
{
        struct volley *v = arg;
        struct tls_client_opts o;
        opts(&o, b_crt, b_key);
        for (int r = 0; r < v->rounds; r++) {
                for (size_t i = 0; i < v->n; i++) {
                        struct http_response resp;
                        char err[256] = "";
                        int rc = tlsc_request("127.0.0.1", gw.port, &o, "POST", REGISTER_PATH,
                                              "text/xml", NULL, v->at[i].body, v->at[i].len, &resp,
                                              err, sizeof err);
                        if (rc == 0 && resp.status == 500 && !strstr(resp.body, "root:") &&
                            strstr(resp.body, "Fault")) {
                                v->answered++;
                        } else if (!v->bad++) {
                                snprintf(v->why, sizeof v->why, "%s: rc %d status %d %.80s %.80s",
                                         v->at[i].name, rc, rc == 0 ? resp.status : 0, err,
                                         rc == 0 && resp.body ? resp.body : "");
                        }
                        if (rc == 0)
                                http_response_clear(&resp);
                }
        }
        return NULL;
}

#define VOLLEY_THREADS 3
#define VOLLEY_ROUNDS  4

Test(hostile, hostile_xml_refused_logged_counted)
{
        const char *ov[] = {"server.max_body_bytes=262144", NULL};
        start(ov);
        int xxe_port = 0;
        int xxe_fd = xxe_listener(&xxe_port);
        struct attack at[32];
        size_t n = make_attacks(at, xxe_port);
        struct volley v[VOLLEY_THREADS];
        pthread_t th[VOLLEY_THREADS];
        for (int t = 0; t < VOLLEY_THREADS; t++) {
                v[t] = (struct volley){.at = at, .n = n, .rounds = VOLLEY_ROUNDS};
                cr_assert_eq(pthread_create(&th[t], NULL, volley_run, &v[t]), 0);
        }
        /* While the volleys run: the well-behaved caller is served within the bound. */
        int64_t worst = 0;
        for (int i = 0; i < 3; i++) {
                int64_t took = good_caller();
                worst = took > worst ? took : worst;
                expect_alive_and_bounded("during the XML volley");
        }
        for (int t = 0; t < VOLLEY_THREADS; t++)
                pthread_join(th[t], NULL);
        for (int t = 0; t < VOLLEY_THREADS; t++)
                cr_assert_eq(v[t].bad, 0, "volley %d: %d bad answers, first: %s", t, v[t].bad,
                             v[t].why);
        /* Nothing ever connected to the XXE target. */
        int leaked = accept(xxe_fd, NULL, NULL);
        cr_assert_eq(leaked, -1, "the gateway fetched an external entity");
        cr_assert(errno == EAGAIN || errno == EWOULDBLOCK);
        close(xxe_fd);

        /* Each attack is counted under its rule, and logged once per request. */
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        const char *codes[] = {"xml_too_deep",     "xml_doctype",       "unknown_contract",
                               "xml_bad_encoding", "xml_text_too_long", "xml_too_many_elements"};
        for (size_t c = 0; c < sizeof codes / sizeof codes[0]; c++) {
                long long want = 0;
                for (size_t i = 0; i < n; i++)
                        want += !strcmp(at[i].fault, codes[c]);
                want *= VOLLEY_THREADS * VOLLEY_ROUNDS;
                char name[160], field[96];
                snprintf(name, sizeof name, "intygsgw_rejections_total{rule=\"%s\",family=\"%s\"}",
                         codes[c], strncmp(codes[c], "xml", 3) ? "soap" : "xml");
                cr_expect_eq(metric(m, name), want, "%s: %lld, want %lld", name, metric(m, name),
                             want);
                snprintf(field, sizeof field, "\"fault\":\"%s\"", codes[c]);
                const char *needles[] = {"\"event\":\"intyg_rejected\"", field, NULL};
                cr_expect_eq(log_count(needles), want, "log lines with %s", field);
        }
        cr_expect_eq(metric(m, "intygsgw_intyg_total{outcome=\"accepted\",kind=\"register\"}"), 3,
                     "%s", m);
        free(m);
        /* No file content and no personnummer anywhere in the log. */
        const char *passwd[] = {"root:x:", NULL};
        cr_expect_eq(log_count(passwd), 0);
        const char *pnr[] = {"191212121212", NULL};
        cr_expect_eq(log_count(pnr), 0);
        expect_alive_and_bounded("after the XML volley");
        cr_log_info("hostile XML: worst good-caller latency %lld ms, RSS %ld kB", (long long)worst,
                    gw_rss_kb());
        for (size_t i = 0; i < n; i++)
                free(at[i].body);
        stop();
}

Test(hostile, oversized_bodies_refused_before_reading)
{
        const char *ov[] = {"server.max_body_bytes=262144", NULL};
        start(ov);
        struct tls_client_opts o;
        opts(&o, b_crt, b_key);
        /* Declared too large: 413 before a byte of the body is read. */
        struct tlsc *c = NULL;
        char err[256];
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", gw.port, &o, err, sizeof err), 0, "%s", err);
        const char head[] = "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml"
                            "\r\nContent-Length: 1073741824\r\n\r\n";
        cr_assert_eq(tlsc_send(c, head, sizeof head - 1), 0);
        struct http_response r = {0};
        cr_assert_eq(tlsc_read_response(c, &r, 5000), 0, "%s", tlsc_error(c));
        cr_assert_eq(r.status, 413);
        http_response_clear(&r);
        cr_assert_eq(tlsc_read_closed(c, 2000), 1);
        tlsc_free(c);
        /* Chunked, 8 MB sent as fast as possible: refused as it crosses 256 kB, then closed;
         * the gateway never holds more than the limit. */
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", gw.port, &o, err, sizeof err), 0, "%s", err);
        const char chead[] = "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml"
                             "\r\nTransfer-Encoding: chunked\r\n\r\n";
        cr_assert_eq(tlsc_send(c, chead, sizeof chead - 1), 0);
        char *chunk = malloc(65536 + 16);
        int hl = snprintf(chunk, 16, "10000\r\n");
        memset(chunk + hl, '<', 65536);
        memcpy(chunk + hl + 65536, "\r\n", 2);
        int sent = 0;
        for (int i = 0; i < 128; i++) {
                if (tlsc_send(c, chunk, (size_t)hl + 65536 + 2) != 0)
                        break;
                sent++;
        }
        free(chunk);
        cr_assert_lt(sent, 128, "the gateway read 8 MB of a body limited to 256 kB");
        tlsc_free(c);
        good_caller();
        expect_alive_and_bounded("after oversized bodies");
        cr_assert_geq(metric_now("intygsgw_http_limit_refusals_total{code=\"413\"}"), 2);
        const char *needles[] = {"\"event\":\"http_refused\"", "\"limit\":\"max_body_bytes\"",
                                 NULL};
        cr_assert_eq(log_count(needles), 2);
        stop();
}

/* ------------------------------------------------- slow-loris and half-open TLS ---- */

#define LORIS          40
#define HALF_OPEN      500
#define PARTIAL_HELLOS 250 /* of HALF_OPEN: send a partial ClientHello; the rest send nothing */

static int tcp_open(int port, bool block)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (block ? 0 : SOCK_NONBLOCK), 0);
        if (fd < 0)
                return -1;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Wait (bounded) until every fd has seen EOF or an error; returns how many did. */
static int wait_closed(int *fds, int n, int timeout_ms)
{
        struct pollfd *p = calloc((size_t)n, sizeof *p);
        cr_assert_not_null(p);
        int closed = 0;
        int64_t end = now_ms() + timeout_ms;
        while (closed < n && now_ms() < end) {
                int k = 0;
                for (int i = 0; i < n; i++)
                        if (fds[i] >= 0)
                                p[k++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                if (poll(p, (nfds_t)k, 200) < 0)
                        break;
                for (int i = 0; i < k; i++) {
                        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        char buf[4096];
                        ssize_t r = recv(p[i].fd, buf, sizeof buf, MSG_DONTWAIT);
                        if (r > 0)
                                continue; /* an alert or a response: EOF follows */
                        if (r < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        for (int j = 0; j < n; j++)
                                if (fds[j] == p[i].fd) {
                                        close(fds[j]);
                                        fds[j] = -1;
                                }
                        closed++;
                }
        }
        free(p);
        return closed;
}

Test(hostile, slowloris_and_half_open_handshakes)
{
        const char *ov[] = {"server.header_timeout_ms=1500", "server.handshake_timeout_ms=1500",
                            NULL};
        start(ov);
        long long hs_timeouts_before =
            metric_now("intygsgw_tls_handshake_failures_total{reason=\"timeout\"}");
        cr_assert_geq(hs_timeouts_before, 0);
        /* Half-open: TCP connections that never finish a handshake. */
        static const unsigned char hello_start[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00,
                                                    0x01, 0xfc, 0x03, 0x03, 0x00, 0x00, 0x00};
        int half[HALF_OPEN];
        for (int i = 0; i < HALF_OPEN; i++) {
                half[i] = tcp_open(gw.port, true);
                cr_assert_geq(half[i], 0, "half-open connection %d: %s", i, strerror(errno));
                if (i < PARTIAL_HELLOS)
                        cr_assert_eq(send(half[i], hello_start, sizeof hello_start, 0),
                                     (ssize_t)sizeof hello_start);
        }
        /* Slow-loris: mutual-TLS connections that send a header one byte at a time. */
        struct tls_client_opts o;
        opts(&o, b_crt, b_key);
        struct tlsc *loris[LORIS];
        char err[256];
        for (int i = 0; i < LORIS; i++)
                cr_assert_eq(tlsc_connect(&loris[i], "127.0.0.1", gw.port, &o, err, sizeof err), 0,
                             "slow-loris %d: %s", i, err);
        const char *drip = "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\nX-Slow: "
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        size_t drip_len = strlen(drip);
        bool cut[LORIS] = {false};
        int64_t worst = 0;
        /* 40 rounds of 100 ms: the header timeout (1.5 s) cuts them off well before the end. */
        for (size_t round = 0; round < 40 && round < drip_len; round++) {
                for (int i = 0; i < LORIS; i++)
                        if (!cut[i] && tlsc_send(loris[i], drip + round, 1) != 0)
                                cut[i] = true;
                if (round == 5 || round == 25) {
                        int64_t took = good_caller(); /* mid-attack */
                        worst = took > worst ? took : worst;
                        expect_alive_and_bounded("during slow-loris and half-open");
                } else {
                        sleep_ms(100);
                }
        }
        for (int i = 0; i < LORIS; i++) {
                cr_assert(cut[i] || tlsc_read_closed(loris[i], 3000) == 1,
                          "slow-loris %d not closed", i);
                tlsc_free(loris[i]);
        }
        int closed = wait_closed(half, HALF_OPEN, 5000);
        cr_assert_eq(closed, HALF_OPEN, "%d of %d half-open connections closed", closed, HALF_OPEN);
        good_caller();
        expect_alive_and_bounded("after slow-loris and half-open");

        /* Counted and logged: one header timeout per slow-loris, one handshake timeout per
         * half-open connection. */
        cr_assert_eq(metric_now("intygsgw_http_timeouts_total{phase=\"header\"}"), LORIS);
        cr_assert_eq(metric_now("intygsgw_tls_handshake_failures_total{reason=\"timeout\"}") -
                         hs_timeouts_before,
                     HALF_OPEN);
        const char *hdr[] = {"\"event\":\"http_timeout\"", "\"limit\":\"header_timeout_ms\"", NULL};
        cr_assert_eq(log_count(hdr), LORIS);
        const char *hs[] = {"\"event\":\"tls_handshake_failed\"", "\"reason\":\"timeout\"", NULL};
        cr_assert_eq(log_count(hs), HALF_OPEN);
        cr_log_info("slow-loris/half-open: worst good-caller latency %lld ms, RSS %ld kB",
                    (long long)worst, gw_rss_kb());
        stop();
}

/* ------------------------------------------------------ 10,000 connections ---- */

static void raise_nofile(rlim_t want)
{
        struct rlimit rl;
        cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur < want) {
                rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
                cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        }
        cr_assert_geq(rl.rlim_cur, want,
                      "RLIMIT_NOFILE hard limit %llu is below the %llu this test needs",
                      (unsigned long long)rl.rlim_max, (unsigned long long)want);
}

Test(hostile, ten_thousand_connections)
{
        /* The gateway inherits this process's limit: room for its max_connections. */
        raise_nofile(FLOOD_CONNECTIONS + 512);
        char maxc[64];
        snprintf(maxc, sizeof maxc, "server.max_connections=%d", FLOOD_MAX_CONNS);
        const char *ov[] = {maxc, "server.handshake_timeout_ms=3000", NULL};
        start(ov);
        long base_kb = gw_rss_kb();
        int *fds = malloc(sizeof(int) * FLOOD_CONNECTIONS);
        cr_assert_not_null(fds);
        int opened = 0;
        for (int i = 0; i < FLOOD_CONNECTIONS; i++) {
                fds[i] = tcp_open(gw.port, false);
                opened += fds[i] >= 0;
        }
        cr_assert_eq(opened, FLOOD_CONNECTIONS, "only %d connections could be opened", opened);
        long peak_kb = gw_rss_kb();
        /* While the flood holds every slot: the well-behaved caller gets in within the bound
         * (refused connections are closed at once; held ones time out in the handshake). */
        int64_t took = good_caller();
        /* The admin listener shares max_connections with the callers: note whether monitoring
         * still answers while the flood holds the slots (reported, not asserted). */
        char *am = NULL;
        int admin_during = test_admin_get(gw.admin_port, "/healthz", &am);
        free(am);
        peak_kb = gw_rss_kb() > peak_kb ? gw_rss_kb() : peak_kb;
        expect_alive_and_bounded("during 10,000 connections");
        int64_t t_wait = now_ms();
        int closed = wait_closed(fds, FLOOD_CONNECTIONS, 30000);
        /* A connection whose final ACK the kernel dropped while the accept queue was full
         * (SYN cookies) is established on our side only: no server socket ever existed, so no
         * FIN comes. Sending a byte, as a real client would, gets the RST. */
        int poked = 0;
        for (int i = 0; i < FLOOD_CONNECTIONS; i++) {
                if (fds[i] >= 0) {
                        poked++;
                        (void)send(fds[i], "\x16", 1, MSG_NOSIGNAL);
                }
        }
        if (poked)
                closed += wait_closed(fds, FLOOD_CONNECTIONS, 10000);
        t_wait = now_ms() - t_wait;
        int unconnected = 0;
        for (int i = 0; i < FLOOD_CONNECTIONS; i++) {
                if (fds[i] < 0)
                        continue;
                struct sockaddr_in peer;
                socklen_t pl = sizeof peer;
                unconnected += getpeername(fds[i], (struct sockaddr *)&peer, &pl) != 0;
                close(fds[i]);
        }
        free(fds);
        if (closed != FLOOD_CONNECTIONS) {
                char *mm = NULL, msg[256];
                test_admin_get(gw.admin_port, "/metrics", &mm);
                snprintf(msg, sizeof msg,
                         "%d of %d flood connections closed (%d never connected); gateway: "
                         "total %lld open %lld refused %lld",
                         closed, FLOOD_CONNECTIONS, unconnected,
                         mm ? metric(mm, "intygsgw_connections_total") : -2,
                         mm ? metric(mm, "intygsgw_connections_open") : -2,
                         mm ? metric(mm, "intygsgw_connections_refused_total") : -2);
                free(mm);
                cr_assert_fail("%s", msg);
        }
        good_caller();
        expect_alive_and_bounded("after 10,000 connections");
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        long long refused = metric(m, "intygsgw_connections_refused_total");
        long long total = metric(m, "intygsgw_connections_total");
        long long hs_to = metric(m, "intygsgw_tls_handshake_failures_total{reason=\"timeout\"}");
        long long open_now = metric(m, "intygsgw_connections_open");
        free(m);
        /* Every flood connection was either refused at max_connections or timed out in the
         * handshake; more than the limit were refused. */
        cr_assert_gt(refused, FLOOD_CONNECTIONS - 3 * FLOOD_MAX_CONNS - 1, "refused %lld", refused);
        cr_assert_geq(refused + hs_to, FLOOD_CONNECTIONS - poked,
                      "refused %lld + timeouts %lld (%d never reached the gateway)", refused, hs_to,
                      poked);
        cr_assert_geq(total, FLOOD_CONNECTIONS);
        cr_assert_leq(open_now, 2, "connections still open: %lld", open_now);
        const char *needles[] = {"\"event\":\"conn_refused\"", "\"limit\":\"max_connections\"",
                                 NULL};
        cr_assert_eq(log_count(needles), refused);
        cr_log_info("10,000 connections: refused %lld, handshake timeouts %lld, good caller %lld "
                    "ms, admin /healthz during the flood: %d, all closed after %lld ms (%d needed "
                    "a byte), RSS %ld kB at start, %ld kB at peak",
                    refused, hs_to, (long long)took, admin_during, (long long)t_wait, poked,
                    base_kb, peak_kb);
        stop();
}

/* ------------------------------------------ pipelining without reading answers ---- */

#define PIPELINE_SEND_MAX  (48u * 1024 * 1024) /* bytes of requests the attacker tries to send */
#define PIPELINE_GROWTH_KB (64 * 1024)         /* allowed gateway RSS growth meanwhile */

/*
 * A caller pipelines small requests and never reads an answer. The gateway must stop reading
 * (back-pressure) once answers pile up, instead of queueing answers without bound.
 * Without write back-pressure the gateway queued every answer (~500 bytes under ASan) for a
 * peer that does not read, and kept reading and answering: 26 MB of pipelined GETs grew it to
 * 528 MB RSS. conn.c now stops reading and parsing above 256 kB of queued answers and resumes
 * at half; the gateway stays near 53 MB.
 */
Test(hostile, pipelined_requests_answers_never_read)
{
        start(NULL);
        long before_kb = gw_rss_kb();
        struct tls_client_opts o;
        opts(&o, b_crt, b_key);
        o.timeout_ms = 5000; /* a send blocked this long: the gateway stopped reading */
        struct tlsc *c = NULL;
        char err[256];
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", gw.port, &o, err, sizeof err), 0, "%s", err);
        static const char req[] = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
        size_t chunk_len = 1024 * 1024 / (sizeof req - 1) * (sizeof req - 1);
        char *chunk = malloc(chunk_len);
        cr_assert_not_null(chunk);
        for (size_t off = 0; off < chunk_len; off += sizeof req - 1)
                memcpy(chunk + off, req, sizeof req - 1);
        size_t sent = 0;
        long peak_kb = before_kb;
        int64_t t0 = now_ms();
        while (sent < PIPELINE_SEND_MAX && now_ms() - t0 < 40000) {
                if (tlsc_send(c, chunk, chunk_len) != 0)
                        break;
                sent += chunk_len;
                long kb = gw_rss_kb();
                peak_kb = kb > peak_kb ? kb : peak_kb;
        }
        free(chunk);
        long kb = gw_rss_kb();
        peak_kb = kb > peak_kb ? kb : peak_kb;
        cr_log_info(
            "pipelining without reading: sent %zu kB of requests (%zu requests) in %lld ms; "
            "gateway RSS %ld kB before, %ld kB peak",
            sent / 1024, sent / (sizeof req - 1), (long long)(now_ms() - t0), before_kb, peak_kb);
        tlsc_free(c);
        good_caller();
        expect_alive_and_bounded("after pipelining without reading");
        cr_assert_lt(peak_kb - before_kb, PIPELINE_GROWTH_KB,
                     "gateway RSS grew by %ld kB while a caller pipelined %zu kB of requests and "
                     "read no answer",
                     peak_kb - before_kb, sent / 1024);
        stop();
}
