/*
 * test_store_forward.c - the whole path over real mutual TLS: region system -> gateway
 * (validate, authorise, tag, outbox) -> FK simulator. Samples get the upstream verdicts;
 * duplicates are answered INFO and sent once; an FK outage queues and then delivers; an FK
 * rejection becomes a dead letter that replay delivers; SIGKILL at random moments loses
 * nothing that was answered OK.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "pki.h"
#include "tlsclient.h"

#define REGISTER_PATH "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"
#define REVOKE_PATH   "/clinicalprocess/healthcond/certificate/RevokeCertificate/2/rivtabp21"
#define UNIT_A        "SE2321000016-A111"
#define PROVIDER_A    "SE2321000016-0001"
#define PERSON        "191212121212"

static struct gw gw;
static struct fksim fk;
static char ca[512], crt[512], key[512];

static void client_opts(struct tls_client_opts *o, const char *who)
{
        memset(o, 0, sizeof *o);
        test_pki_path(ca, sizeof ca, "ca.crt");
        char n[64];
        snprintf(n, sizeof n, "%s.crt", who);
        test_pki_path(crt, sizeof crt, n);
        snprintf(n, sizeof n, "%s.key", who);
        test_pki_path(key, sizeof key, n);
        o->ca = ca;
        o->cert = crt;
        o->key = key;
        o->timeout_ms = 5000;
}

/* A keep-alive client that reconnects when the gateway went away. */
struct client {
        struct tlsc *c;
        int port;
        struct tls_client_opts o;
};

static void client_close(struct client *cl)
{
        tlsc_free(cl->c);
        cl->c = NULL;
}

/* POST; fills code ("OK", "INFO", "ERROR", "FAULT") and text. 0, or -1 (no answer). */
static int post(struct client *cl, const char *path, const char *body, size_t len, char *code,
                size_t codelen, char *text, size_t textlen, int *http_status)
{
        char err[256];
        if (!cl->c && tlsc_connect(&cl->c, "127.0.0.1", cl->port, &cl->o, err, sizeof err) != 0) {
                cl->c = NULL;
                return -1;
        }
        char head[512];
        int hn = snprintf(head, sizeof head,
                          "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; "
                          "charset=UTF-8\r\nContent-Length: %zu\r\n\r\n",
                          path, len);
        struct http_response r = {0};
        if (tlsc_send(cl->c, head, (size_t)hn) != 0 || tlsc_send(cl->c, body, len) != 0 ||
            tlsc_read_response(cl->c, &r, 15000) != 0) {
                fprintf(stderr, "post %s: no answer: %s\n", path, tlsc_error(cl->c));
                http_response_clear(&r);
                client_close(cl);
                return -1;
        }
        if (http_status)
                *http_status = r.status;
        code[0] = text[0] = '\0';
        const char *rc = r.body ? strstr(r.body, "resultCode>") : NULL;
        if (rc)
                snprintf(code, codelen, "%.*s", (int)strcspn(rc + 11, "<"), rc + 11);
        else if (r.body && strstr(r.body, "Fault>"))
                snprintf(code, codelen, "FAULT");
        const char *rt = r.body ? strstr(r.body, "resultText>") : NULL;
        if (!rt && r.body)
                rt = strstr(r.body, "faultstring>");
        if (rt) {
                const char *s = strchr(rt, '>') + 1;
                snprintf(text, textlen, "%.*s", (int)strcspn(s, "<"), s);
        }
        http_response_clear(&r);
        return 0;
}

static char *make_soap(const char *id, const char *person, size_t *len)
{
        size_t bl;
        char *bare = test_make_intyg(id, person, UNIT_A, PROVIDER_A, &bl);
        cr_assert_not_null(bare);
        char *soap = test_soap_wrap(bare, bl, len);
        free(bare);
        return soap;
}

/* How many times FK got this id (0 if never); parses {"id":n,...}. */
static int fk_count(const char *json, const char *id)
{
        char needle[200];
        snprintf(needle, sizeof needle, "\"%s\":", id);
        const char *p = strstr(json, needle);
        return p ? atoi(p + strlen(needle)) : 0;
}

static bool wait_fk_has(const char *id, int want, int timeout_ms)
{
        for (int t = 0; t < timeout_ms; t += 50) {
                char *j = fksim_get(&fk, "/_sim/received");
                int n = j ? fk_count(j, id) : 0;
                free(j);
                if (n >= want)
                        return true;
                usleep(50000);
        }
        return false;
}

/* Post n registers "prefix-0".."prefix-(n-1)" as region-a over one connection; each must be
 * answered OK. */
static void post_all_ok(const char *prefix, int n)
{
        struct client cl = {.port = gw.port};
        client_opts(&cl.o, "region-a");
        char code[16], text[512], id[64];
        for (int i = 0; i < n; i++) {
                snprintf(id, sizeof id, "%s-%d", prefix, i);
                size_t len;
                char *soap = make_soap(id, PERSON, &len);
                cr_assert_eq(
                    post(&cl, REGISTER_PATH, soap, len, code, sizeof code, text, sizeof text, NULL),
                    0);
                cr_assert_str_eq(code, "OK", "%s: %s %s", id, code, text);
                free(soap);
        }
        client_close(&cl);
}

/* FK has "prefix-0".."prefix-(n-1)", each at least once, within timeout_ms each. */
static void wait_fk_has_all(const char *prefix, int n, int timeout_ms)
{
        char id[64];
        for (int i = 0; i < n; i++) {
                snprintf(id, sizeof id, "%s-%d", prefix, i);
                cr_assert(wait_fk_has(id, 1, timeout_ms), "FK never got %s", id);
        }
}

static void start_both(const char *const *fkflags, const char *const *overrides)
{
        cr_assert_not_null(test_pki_dir());
        cr_assert_eq(fksim_start(&fk, fkflags), 0, "fk-sim did not start");
        cr_assert_eq(gw_start(&gw, &fk, overrides), 0, "gateway did not start (log %s)", gw.log);
}

/* Whatever happens in a test, no process outlives it. */
static void fini(void)
{
        if (gw.pid > 0)
                gw_kill(&gw);
        if (gw.dir[0])
                gw_cleanup(&gw);
        memset(&gw, 0, sizeof gw);
        if (fk.pid > 0)
                fksim_stop(&fk);
        memset(&fk, 0, sizeof fk);
}

TestSuite(store_forward, .fini = fini);

static void stop_both(void)
{
        int rc = gw_stop(&gw);
        cr_expect_eq(rc, 0, "gateway exit %d (log %s)", rc, gw.log);
        gw_cleanup(&gw);
        fksim_stop(&fk);
}

Test(store_forward, accepted_delivered_once_duplicates_info, .timeout = 120)
{
        start_both(NULL, NULL);
        struct client cl = {.port = gw.port};
        client_opts(&cl.o, "region-a");
        char code[16], text[1024];
        char id[64];
        for (int i = 0; i < 20; i++) {
                snprintf(id, sizeof id, "sf-basic-%d", i);
                size_t len;
                char *soap = make_soap(id, PERSON, &len);
                cr_assert_eq(
                    post(&cl, REGISTER_PATH, soap, len, code, sizeof code, text, sizeof text, NULL),
                    0);
                cr_assert_str_eq(code, "OK", "%s: %s %s", id, code, text);
                if (i == 0) {
                        /* Same id, same body: INFO, as the national service answers. */
                        cr_assert_eq(post(&cl, REGISTER_PATH, soap, len, code, sizeof code, text,
                                          sizeof text, NULL),
                                     0);
                        cr_assert_str_eq(code, "INFO");
                        cr_assert(strstr(text, "already exists"));
                }
                free(soap);
        }
        /* Same id, another body (another patient): refused, stored nowhere. */
        size_t len;
        char *other = make_soap("sf-basic-0", "198211024578", &len);
        cr_assert_eq(
            post(&cl, REGISTER_PATH, other, len, code, sizeof code, text, sizeof text, NULL), 0);
        cr_assert_str_eq(code, "ERROR");
        cr_assert(strstr(text, "other content"), "%s", text);
        free(other);
        wait_fk_has_all("sf-basic", 20, 20000);
        usleep(300000);
        char *j = fksim_get(&fk, "/_sim/received");
        cr_assert_not_null(j);
        for (int i = 0; i < 20; i++) {
                snprintf(id, sizeof id, "sf-basic-%d", i);
                cr_assert_eq(fk_count(j, id), 1, "%s sent %d times", id, fk_count(j, id));
        }
        free(j);
        /* A revocation follows its certificate. */
        char rev[4096];
        snprintf(rev, sizeof rev,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                 "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                 "<soapenv:Body><ns4:RevokeCertificate "
                 "xmlns:ns2=\"urn:riv:clinicalprocess:healthcond:certificate:types:3\" "
                 "xmlns:ns4=\"urn:riv:clinicalprocess:healthcond:certificate:"
                 "RevokeCertificateResponder:2\" "
                 "xmlns:ns3=\"urn:riv:clinicalprocess:healthcond:certificate:3\">"
                 "<ns4:meddelande>Fel patient</ns4:meddelande>"
                 "<ns4:skickatTidpunkt>2026-10-02T10:00:00</ns4:skickatTidpunkt>"
                 "<ns4:intygs-id><ns2:root>" UNIT_A "</ns2:root><ns2:extension>sf-basic-3"
                 "</ns2:extension></ns4:intygs-id>"
                 "<ns4:patientPerson-id><ns2:root>1.2.752.129.2.1.3.1</ns2:root>"
                 "<ns2:extension>" PERSON "</ns2:extension></ns4:patientPerson-id>"
                 "<ns4:skickatAv><ns3:personal-id><ns2:root>1.2.752.129.2.1.4.1</ns2:root>"
                 "<ns2:extension>SE2321000016-L001</ns2:extension></ns3:personal-id>"
                 "<ns3:fullstandigtNamn>Doktor</ns3:fullstandigtNamn>"
                 "<ns3:enhet><ns3:enhets-id><ns2:root>1.2.752.129.2.1.4.1</ns2:root>"
                 "<ns2:extension>" UNIT_A "</ns2:extension></ns3:enhets-id>"
                 "<ns3:arbetsplatskod><ns2:root>1.2.752.29.4.71</ns2:root>"
                 "<ns2:extension>1234</ns2:extension></ns3:arbetsplatskod>"
                 "<ns3:enhetsnamn>Avd 12</ns3:enhetsnamn><ns3:postadress>Gatan 1"
                 "</ns3:postadress><ns3:postnummer>11122</ns3:postnummer>"
                 "<ns3:postort>Stockholm</ns3:postort><ns3:telefonnummer>08123"
                 "</ns3:telefonnummer><ns3:vardgivare><ns3:vardgivare-id>"
                 "<ns2:root>1.2.752.129.2.1.4.1</ns2:root><ns2:extension>" PROVIDER_A
                 "</ns2:extension></ns3:vardgivare-id><ns3:vardgivarnamn>Region Stockholm"
                 "</ns3:vardgivarnamn></ns3:vardgivare></ns3:enhet></ns4:skickatAv>"
                 "</ns4:RevokeCertificate></soapenv:Body></soapenv:Envelope>");
        cr_assert_eq(
            post(&cl, REVOKE_PATH, rev, strlen(rev), code, sizeof code, text, sizeof text, NULL),
            0);
        cr_assert_str_eq(code, "OK", "%s %s", code, text);
        bool revoked = false;
        for (int t = 0; t < 200 && !revoked; t++) {
                char *rj = fksim_get(&fk, "/_sim/revoked");
                revoked = rj && fk_count(rj, "sf-basic-3") == 1;
                free(rj);
                if (!revoked)
                        usleep(50000);
        }
        cr_assert(revoked, "FK never got the revocation");
        client_close(&cl);
        stop_both();
}

Test(store_forward, fk_outage_queues_then_delivers, .timeout = 120)
{
        start_both(NULL, NULL);
        cr_assert_eq(fksim_control(&fk, "down=1"), 0);
        post_all_ok("sf-outage", 30);
        sleep(2);
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        /* Queued on disk, not delivered, and no busy loop: the breaker holds attempts down. */
        cr_assert(strstr(m, "intygsgw_outbox_records{state=\"queued\"} 30") ||
                      strstr(m, "intygsgw_outbox_records{state=\"inflight\"}"),
                  "%s", m);
        const char *att = strstr(m, "intygsgw_forward_attempts_total{outcome=\"retry\"} ");
        long retries =
            att ? atol(att + strlen("intygsgw_forward_attempts_total{outcome=\"retry\"} ")) : 0;
        cr_assert(retries > 0 && retries < 200, "retries during 2 s outage: %ld", retries);
        free(m);
        char *log = test_read_file(gw.log, NULL);
        cr_assert(log && strstr(log, "\"event\":\"forward_retry\"") &&
                      strstr(log, "\"backoff_ms\":"),
                  "no backoff in the log");
        free(log);
        cr_assert_eq(fksim_control(&fk, "down=0"), 0);
        wait_fk_has_all("sf-outage", 30, 30000);
        stop_both();
}

Test(store_forward, fk_rejection_dead_letter_then_replay, .timeout = 120)
{
        start_both(NULL, NULL);
        cr_assert_eq(fksim_control(&fk, "reject_rate=1"), 0);
        struct client cl = {.port = gw.port};
        client_opts(&cl.o, "region-a");
        char code[16], text[512];
        size_t len;
        char *soap = make_soap("sf-reject-1", PERSON, &len);
        cr_assert_eq(
            post(&cl, REGISTER_PATH, soap, len, code, sizeof code, text, sizeof text, NULL), 0);
        cr_assert_str_eq(code, "OK");
        free(soap);
        char *body = NULL;
        bool dead = false;
        for (int t = 0; t < 200 && !dead; t++) {
                free(body);
                body = NULL;
                test_admin_get(gw.admin_port, "/api/v1/deadletters", &body);
                dead = body && strstr(body, "\"sf-reject-1\"");
                if (!dead)
                        usleep(50000);
        }
        cr_assert(dead, "no dead letter: %s", body ? body : "");
        cr_assert(strstr(body, "VALIDATION_ERROR"), "FK's reason missing: %s", body);
        free(body);
        cr_assert_eq(fksim_control(&fk, "reject_rate=0"), 0);
        cr_assert_eq(
            test_admin_post(gw.admin_port, "/api/v1/deadletters/replay?id=sf-reject-1", &body),
            200);
        cr_assert(strstr(body, "\"changed\":1"), "%s", body);
        free(body);
        /* FK records what it accepted: the rejected attempt is not in /_sim/received. */
        cr_assert(wait_fk_has("sf-reject-1", 1, 20000), "replay did not deliver");
        /* History: received, dead, replayed, delivered. */
        cr_assert_eq(test_admin_get(gw.admin_port, "/api/v1/intyg/sf-reject-1", &body), 200);
        cr_assert(strstr(body, "\"replayed\"") && strstr(body, "\"delivered\""), "%s", body);
        free(body);
        client_close(&cl);
        stop_both();
}

/* The crash test: N intyg posted while another thread SIGKILLs the gateway at random moments
 * (so kills land mid-request, mid-commit and mid-delivery) and restarts it. */
#define CRASH_N     2000
#define CRASH_KILLS 4

struct killer {
        pthread_t th;
        atomic_int port; /* the gateway's current port (changes on restart) */
        atomic_int done; /* the client finished posting */
        atomic_int kills;
        atomic_int restart_failed;
        unsigned seed;
};

static void *killer_main(void *arg)
{
        struct killer *k = arg;
        unsigned seed = k->seed;
        while (!atomic_load(&k->done) && atomic_load(&k->kills) < CRASH_KILLS) {
                /* 0.5 to 2.5 s between kills: several land while the client is posting. */
                int ms = 500 + (int)(rand_r(&seed) % 2000);
                for (int t = 0; t < ms && !atomic_load(&k->done); t += 10)
                        usleep(10000);
                if (atomic_load(&k->done))
                        break;
                gw_kill(&gw);
                atomic_fetch_add(&k->kills, 1);
                if (gw_restart(&gw) != 0) {
                        atomic_store(&k->restart_failed, 1);
                        break;
                }
                atomic_store(&k->port, gw.port);
        }
        return NULL;
}

Test(store_forward, crash_loses_nothing_answered_ok, .timeout = 900)
{
        start_both(NULL, NULL);
        struct client cl = {.port = gw.port};
        client_opts(&cl.o, "region-a");
        static bool ok[CRASH_N];
        struct killer k = {.seed = (unsigned)time(NULL)};
        atomic_store(&k.port, gw.port);
        unsigned seed = k.seed;
        cr_assert_eq(pthread_create(&k.th, NULL, killer_main, &k), 0);
        int oks = 0, retries = 0;
        char code[16], text[512], id[64];
        for (int i = 0; i < CRASH_N; i++) {
                snprintf(id, sizeof id, "crash-%u-%d", seed, i);
                size_t len;
                char *soap = make_soap(id, PERSON, &len);
                for (int tries = 0;; tries++) {
                        if (cl.port != atomic_load(&k.port)) {
                                client_close(&cl);
                                cl.port = atomic_load(&k.port);
                        }
                        int rc = post(&cl, REGISTER_PATH, soap, len, code, sizeof code, text,
                                      sizeof text, NULL);
                        if (rc == 0 && (!strcmp(code, "OK") || !strcmp(code, "INFO"))) {
                                ok[i] = true;
                                oks++;
                                break;
                        }
                        /* No answer (killed) or a technical error: the client retries, as
                         * a region's system would. */
                        cr_assert(tries < 200, "%s never answered OK: %s %s", id, code, text);
                        retries++;
                        usleep(50000);
                }
                free(soap);
                if (i == CRASH_N / 2) {
                        /* Make sure the second half also sees kills: wait for at least two. */
                        for (int t = 0; t < 600 && atomic_load(&k.kills) < 2; t++)
                                usleep(10000);
                }
        }
        atomic_store(&k.done, 1);
        pthread_join(k.th, NULL);
        cr_assert_eq(atomic_load(&k.restart_failed), 0, "restart failed (log %s)", gw.log);
        client_close(&cl);
        /* Everything the client heard OK for reaches FK. */
        char *j = NULL;
        int missing = CRASH_N;
        for (int t = 0; t < 1200 && missing; t++) {
                free(j);
                j = fksim_get(&fk, "/_sim/received");
                missing = 0;
                for (int i = 0; i < CRASH_N && j; i++) {
                        snprintf(id, sizeof id, "crash-%u-%d", seed, i);
                        if (ok[i] && fk_count(j, id) == 0)
                                missing++;
                }
                if (missing)
                        usleep(100000);
        }
        int repeats = 0;
        for (int i = 0; i < CRASH_N && j; i++) {
                snprintf(id, sizeof id, "crash-%u-%d", seed, i);
                int n = fk_count(j, id);
                if (n > 1)
                        repeats += n - 1;
        }
        free(j);
        printf("crash test: %d intyg, %d answered OK, %d kills, %d client retries, %d repeats "
               "at FK (allowed only for deaths between FK's answer and its recording)\n",
               CRASH_N, oks, atomic_load(&k.kills), retries, repeats);
        cr_assert_eq(missing, 0, "%d intyg answered OK never reached FK", missing);
        cr_assert_geq(atomic_load(&k.kills), 2, "too few kills landed during the run");
        stop_both();
}

Test(store_forward, no_kills_no_repeats, .timeout = 300)
{
        start_both(NULL, NULL);
        struct client cl = {.port = gw.port};
        client_opts(&cl.o, "region-b");
        char code[16], text[512], id[64];
        for (int i = 0; i < 200; i++) {
                snprintf(id, sizeof id, "norepeat-%d", i);
                size_t bl, len;
                char *bare =
                    test_make_intyg(id, PERSON, "SE2321000131-B111", "SE2321000131-0001", &bl);
                char *soap = test_soap_wrap(bare, bl, &len);
                free(bare);
                cr_assert_eq(
                    post(&cl, REGISTER_PATH, soap, len, code, sizeof code, text, sizeof text, NULL),
                    0);
                cr_assert_str_eq(code, "OK", "%s %s", code, text);
                free(soap);
        }
        client_close(&cl);
        cr_assert(wait_fk_has("norepeat-199", 1, 30000));
        usleep(500000);
        char *j = fksim_get(&fk, "/_sim/received");
        int repeats = 0;
        for (int i = 0; i < 200; i++) {
                snprintf(id, sizeof id, "norepeat-%d", i);
                int n = fk_count(j, id);
                cr_assert_eq(n >= 1, true, "%s missing", id);
                repeats += n - 1;
        }
        free(j);
        printf("no-kill run: 200 intyg, %d repeats at FK\n", repeats);
        cr_assert_eq(repeats, 0);
        stop_both();
}

/* SIGTERM with transfers to FK in flight on the delivery thread: the gateway waits for their
 * answers (bounded by the FK timeout), marks them, stops the delivery thread and exits 0; FK
 * got each once, and a restart sends nothing again. */
Test(store_forward, drain_waits_for_transfers_in_flight, .timeout = 120)
{
        start_both(NULL, NULL);
        cr_assert_eq(fksim_control(&fk, "slow_ms=1500"), 0);
        enum { N = 6 };
        post_all_ok("sf-drain", N);
        usleep(300 * 1000); /* the transfers are out, FK is sitting on them */
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        cr_assert_null(strstr(m, "intygsgw_forward_in_flight 0\n"), "nothing in flight: %s", m);
        free(m);
        int rc = gw_stop(&gw);
        cr_assert_eq(rc, 0, "gateway exit %d (log %s)", rc, gw.log);
        wait_fk_has_all("sf-drain", N, 5000);
        /* Restarted on the same outbox: every record was marked delivered before exit, so
         * nothing goes to FK again. */
        cr_assert_eq(fksim_control(&fk, "slow_ms=0"), 0);
        cr_assert_eq(gw_restart(&gw), 0, "restart (log %s)", gw.log);
        sleep(2);
        char *j = fksim_get(&fk, "/_sim/received");
        cr_assert_not_null(j);
        char id[64];
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof id, "sf-drain-%d", i);
                cr_assert_eq(fk_count(j, id), 1, "%s sent %d times", id, fk_count(j, id));
        }
        free(j);
        stop_both();
}
