/*
 * test_samples_mtls.c - every upstream FK7804 sample through the running daemon over real
 * mutual TLS, inside a RIV-TA SOAP envelope: the upstream verdict, and for each failing one
 * the upstream rule it breaks; the hostile XML cases with their exact answers while another
 * caller keeps being served; a certificate of another type; the plain-XML adapter; the
 * authorisation of a caller for another region's care provider.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw.h"
#include "pki.h"
#include "tlsclient.h"

#define REGISTER_PATH "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"

static struct gw gw;
static char grants_path[300];

static void fini(void)
{
        if (gw.pid > 0)
                gw_kill(&gw);
        if (gw.dir[0])
                gw_cleanup(&gw);
        memset(&gw, 0, sizeof gw);
        if (grants_path[0])
                unlink(grants_path);
}

TestSuite(samples, .fini = fini);

static void start(void)
{
        cr_assert_not_null(test_pki_dir());
        /* The samples' care provider is "12345678": grant it to region-a for this test. */
        snprintf(grants_path, sizeof grants_path, "/tmp/intygsgw-grants-%d.ini", (int)getpid());
        FILE *f = fopen(grants_path, "w");
        cr_assert_not_null(f);
        fprintf(f, "[SE2321000016-7P3K]\nname = region A\nprovider = 12345678\n"
                   "provider = SE2321000016-0001\n"
                   "[SE2321000131-S0AB]\nname = region B\nprovider = SE2321000131-0001\n");
        fclose(f);
        char ov[400];
        snprintf(ov, sizeof ov, "auth.grants=%s", grants_path);
        /* The samples' patient fails the check digit; the national service accepts it. */
        const char *overrides[] = {ov, "validation.person_id_check=warn", NULL};
        cr_assert_eq(gw_start(&gw, NULL, overrides), 0, "gateway did not start (%s)", gw.log);
}

static struct tls_client_opts opts_for(const char *who, char *crt, char *key, char *ca)
{
        struct tls_client_opts o = {0};
        char n[64];
        test_pki_path(ca, 512, "ca.crt");
        snprintf(n, sizeof n, "%s.crt", who);
        test_pki_path(crt, 512, n);
        snprintf(n, sizeof n, "%s.key", who);
        test_pki_path(key, 512, n);
        o.ca = ca;
        o.cert = crt;
        o.key = key;
        o.timeout_ms = 5000;
        return o;
}

/* POST body as region `who`; returns the HTTP status and the body in *out. */
static int post_as(const char *who, const char *path, const char *body, size_t len, char **out)
{
        char crt[512], key[512], ca[512], err[256];
        struct tls_client_opts o = opts_for(who, crt, key, ca);
        struct http_response r = {0};
        int rc = tlsc_request("127.0.0.1", gw.port, &o, "POST", path, "text/xml; charset=UTF-8",
                              NULL, body, len, &r, err, sizeof err);
        cr_assert_eq(rc, 0, "no answer: %s", err);
        *out = r.body;
        r.body = NULL;
        int st = r.status;
        http_response_clear(&r);
        return st;
}

static int post_sample(const char *file, char **out)
{
        size_t len, slen;
        char rel[256];
        snprintf(rel, sizeof rel, "lisjp-v1/%s", file);
        char *bare = test_read_file(rel, &len);
        cr_assert_not_null(bare, "%s", rel);
        char *soap = test_soap_wrap(bare, len, &slen);
        free(bare);
        int st = post_as("region-a", REGISTER_PATH, soap, slen, out);
        free(soap);
        return st;
}

static const struct {
        const char *file;
        const char *rule; /* NULL: valid */
} samples[] = {
    {"lisjp.xml", NULL},
    {"fleraSjukskrivningOchOmArbetstidsforlaggning.xml", NULL},
    {"pass-diagnos-med-bidiagnoser.xml", NULL},
    {"pass-diagnosPsykiskDiagnoskod.xml", NULL},
    {"pass-flera-sysselsattningar.xml", NULL},
    {"pass-grundForMUFyraSvar.xml", NULL},
    {"pass-minimal.xml", NULL},
    {"pass-prognos.xml", NULL},
    {"pass-smittskydd-false.xml", NULL},
    {"pass-smittskydd.xml", NULL},
    {"fail-arbetstidsforlaggningMotiveringBordeInteFinnas.xml", "q33.1-33.2"},
    {"fail-diagnosPsykiskDiagnoskodFelAntalTecken.xml", "q6.2"},
    {"fail-diagnosSaknas.xml", "intyg"},
    {"fail-diagnoserMedOlikaKodsystem.xml", "q6.2-6.4-6.6-R12"},
    {"fail-diagnoskodMedMindreAnTrePositioner.xml", "q6.2"},
    {"fail-grundForMUBeskrivningBordeInteFinnas.xml", "q1.3"},
    {"fail-grundForMUBeskrivningSaknas.xml", "q1.1-1.3"},
    {"fail-sjukskrivning25Till75ProcentArbetstidsforlaggningSaknas.xml", "q32.1-33"},
    {"fail-sjukskrivningSaknas.xml", "intyg"},
    {"fail-sysselsattningNuvarandeArbeteBeskrivningSaknas.xml", "q28.1-q29"},
    {"sjukskrivningOverlappandePerioder.xml", "q32"},
    {"prognosMedDelfraga39-2.xml", "q39"},
};

Test(samples, upstream_verdicts_over_mtls, .timeout = 180)
{
        start();
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
                char *body = NULL;
                int st = post_sample(samples[i].file, &body);
                cr_assert_eq(st, 200, "%s: HTTP %d %s", samples[i].file, st, body);
                if (!samples[i].rule) {
                        /* Several samples share one intygs-id: the first is OK, the others
                         * the duplicate rule's answer (INFO, or ERROR for other content). */
                        bool ok = strstr(body, "resultCode>OK<") ||
                                  strstr(body, "resultCode>INFO<") ||
                                  strstr(body, "already exists with other content");
                        cr_assert(ok, "%s: %s", samples[i].file, body);
                        cr_assert(!strstr(body, "VALIDATION_ERROR") ||
                                      strstr(body, "other content"),
                                  "%s: %s", samples[i].file, body);
                } else {
                        cr_assert(strstr(body, "resultCode>ERROR<") &&
                                      strstr(body, "VALIDATION_ERROR"),
                                  "%s: %s", samples[i].file, body);
                        char needle[64];
                        snprintf(needle, sizeof needle, "%s ", samples[i].rule);
                        cr_assert(strstr(body, needle), "%s: rule %s not named: %s",
                                  samples[i].file, samples[i].rule, body);
                        /* No personnummer in what goes back to the caller. */
                        cr_assert_null(strstr(body, "192703104321"), "%s", body);
                }
                free(body);
        }
        cr_assert_eq(gw_stop(&gw), 0);
}

Test(samples, strict_person_id_refuses_bad_check_digit)
{
        cr_assert_not_null(test_pki_dir());
        snprintf(grants_path, sizeof grants_path, "/tmp/intygsgw-grants-s%d.ini", (int)getpid());
        FILE *f = fopen(grants_path, "w");
        fprintf(f, "[SE2321000016-7P3K]\nprovider = 12345678\n");
        fclose(f);
        char ov[400];
        snprintf(ov, sizeof ov, "auth.grants=%s", grants_path);
        const char *overrides[] = {ov, NULL};
        cr_assert_eq(gw_start(&gw, NULL, overrides), 0);
        char *body = NULL;
        cr_assert_eq(post_sample("pass-minimal.xml", &body), 200);
        cr_assert(strstr(body, "VALIDATION_ERROR") && strstr(body, "person-id"), "%s", body);
        cr_assert_null(strstr(body, "192703104321"), "personnummer echoed: %s", body);
        free(body);
        cr_assert_eq(gw_stop(&gw), 0);
        char *log = test_read_file(gw.log, NULL);
        cr_assert_null(strstr(log, "192703104321"), "personnummer in the log");
        free(log);
}

static void expect_fault(const char *body, size_t len, const char *code)
{
        char *out = NULL;
        int st = post_as("region-b", REGISTER_PATH, body, len, &out);
        cr_assert_eq(st, 500, "HTTP %d: %s", st, out);
        cr_assert(strstr(out, "faultstring"), "%s", out);
        cr_assert(strstr(out, code), "expected %s in %s", code, out);
        free(out);
}

Test(samples, hostile_xml_exact_answers_others_served, .timeout = 120)
{
        start();
        /* Malformed XML. */
        expect_fault("<soapenv:Envelope", 17, "xml_malformed");
        /* A DOCTYPE, an entity bomb, an external entity: all refused before expansion. */
        const char *doctype = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>";
        expect_fault(doctype, strlen(doctype), "xml_doctype");
        const char *laughs =
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
            "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
            "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
            "<lolz>&lol3;</lolz>";
        expect_fault(laughs, strlen(laughs), "xml_doctype");
        const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM "
                          "\"file:///etc/passwd\">]><x>&e;</x>";
        expect_fault(xxe, strlen(xxe), "xml_doctype");
        /* 10,000 nested elements. */
        size_t n = 10000, len = n * 7 + 64;
        char *deep = malloc(len);
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
                o += (size_t)sprintf(deep + o, "<a>");
        for (size_t i = 0; i < n; i++)
                o += (size_t)sprintf(deep + o, "</a>");
        expect_fault(deep, o, "xml_too_deep");
        free(deep);
        /* Invalid UTF-8. */
        const char bad8[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><x>\xc3\x28</x>";
        expect_fault(bad8, sizeof bad8 - 1, "xml_bad_encoding");
        /* Not a SOAP envelope, and an unknown contract. */
        const char *notsoap = "<hello/>";
        expect_fault(notsoap, strlen(notsoap), "unknown service contract");
        const char *unknown =
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
            "<soapenv:Body><x:Other xmlns:x=\"urn:other\"/></soapenv:Body></soapenv:Envelope>";
        expect_fault(unknown, strlen(unknown), "unknown service contract");
        /* A 50 MB body: refused by Content-Length before it is read. */
        {
                char crt[512], key[512], ca[512], err[256];
                struct tls_client_opts o2 = opts_for("region-b", crt, key, ca);
                struct tlsc *c = NULL;
                cr_assert_eq(tlsc_connect(&c, "127.0.0.1", gw.port, &o2, err, sizeof err), 0);
                const char head[] = "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\n"
                                    "Content-Type: text/xml\r\nContent-Length: 52428800\r\n\r\n";
                cr_assert_eq(tlsc_send(c, head, sizeof head - 1), 0);
                struct http_response r = {0};
                cr_assert_eq(tlsc_read_response(c, &r, 5000), 0);
                cr_assert_eq(r.status, 413);
                http_response_clear(&r);
                tlsc_free(c);
        }
        /* Meanwhile a well-behaved caller is served normally. */
        size_t bl, sl;
        char *bare = test_make_intyg("samples-ok-1", "191212121212", "SE2321000016-A111",
                                     "SE2321000016-0001", &bl);
        char *soap = test_soap_wrap(bare, bl, &sl);
        char *out = NULL;
        cr_assert_eq(post_as("region-a", REGISTER_PATH, soap, sl, &out), 200);
        cr_assert(strstr(out, "resultCode>OK<"), "%s", out);
        free(out);
        free(soap);
        free(bare);
        /* Each attack counted by name. */
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        cr_assert(strstr(m, "rule=\"xml_doctype\",family=\"xml\"} 3"), "%s", m);
        cr_assert(strstr(m, "rule=\"xml_too_deep\",family=\"xml\"} 1"));
        cr_assert(strstr(m, "rule=\"xml_bad_encoding\",family=\"xml\"} 1"));
        free(m);
        cr_assert_eq(gw_stop(&gw), 0);
}

Test(samples, other_type_plain_adapter_and_foreign_provider)
{
        start();
        /* A certificate of another type (not LISJP): refused by name. */
        size_t bl, sl;
        char *bare = test_make_intyg("samples-type-1", "191212121212", "SE2321000016-A111",
                                     "SE2321000016-0001", &bl);
        char *other = strdup(bare);
        char *t = strstr(other, ">LISJP<");
        cr_assert_not_null(t);
        memcpy(t + 1, "LUSE_", 5);
        char *soap = test_soap_wrap(other, strlen(other), &sl);
        char *out = NULL;
        cr_assert_eq(post_as("region-a", REGISTER_PATH, soap, sl, &out), 200);
        cr_assert(strstr(out, "VALIDATION_ERROR") && strstr(out, "type "), "%s", out);
        free(out);
        free(soap);
        free(other);
        /* The plain-XML adapter: the bare element, the same pipeline. */
        cr_assert_eq(post_as("region-a", "/api/v1/intyg", bare, bl, &out), 200);
        cr_assert(strstr(out, "resultCode>OK<"), "%s", out);
        free(out);
        free(bare);
        /* Region B's system submitting for region A's care provider: refused, logged, counted. */
        bare = test_make_intyg("samples-foreign-1", "191212121212", "SE2321000016-A111",
                               "SE2321000016-0001", &bl);
        soap = test_soap_wrap(bare, bl, &sl);
        cr_assert_eq(post_as("region-b", REGISTER_PATH, soap, sl, &out), 500);
        cr_assert(strstr(out, "Not authorised") && strstr(out, "SE2321000016-0001"), "%s", out);
        free(out);
        /* ... and naming its own provider for region A's unit does not help. */
        free(bare);
        free(soap);
        bare = test_make_intyg("samples-foreign-2", "191212121212", "SE2321000016-A111",
                               "SE2321000131-0001", &bl);
        soap = test_soap_wrap(bare, bl, &sl);
        cr_assert_eq(post_as("region-b", REGISTER_PATH, soap, sl, &out), 500);
        cr_assert(strstr(out, "Not authorised"), "%s", out);
        free(out);
        free(bare);
        free(soap);
        char *m = NULL;
        cr_assert_eq(test_admin_get(gw.admin_port, "/metrics", &m), 200);
        cr_assert(strstr(m, "intygsgw_intyg_by_caller_total{caller=\"SE2321000131-S0AB\","
                            "outcome=\"refused\"} 2"),
                  "%s", m);
        free(m);
        cr_assert_eq(gw_stop(&gw), 0);
        char *log = test_read_file(gw.log, NULL);
        cr_assert(strstr(log, "\"event\":\"intyg_refused\"") &&
                      strstr(log, "\"caller\":\"SE2321000131-S0AB\"") &&
                      strstr(log, "\"provider\":\"SE2321000016-0001\""),
                  "%s", log);
        free(log);
}
