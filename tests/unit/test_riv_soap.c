/*
 * test_riv_soap.c - response and fault envelopes (validated against the responder XSDs),
 * escaping, resultText from verrs, the FK request envelope (re-validated end to end), and the
 * response / request decoders.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "riv_soap.h"
#include "schema.h"
#include "validate.h"
#include "xmlsafe.h"

static struct schema_set *S;

static void setup(void)
{
        char err[256];
        S = schema_set_load(INTYGSGW_SOURCE_DIR "/schemas", err, sizeof err);
        cr_assert_not_null(S, "%s", err);
}

static void teardown(void)
{
        schema_set_free(S);
}

TestSuite(riv_soap, .init = setup, .fini = teardown);

/* Parse an envelope and validate its Body element against the contract's responder XSD. */
static int body_xsd_errors(const char *env, size_t len, enum schema_kind kind)
{
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, 0);
        xmlDocPtr doc = NULL;
        char err[256];
        cr_assert_eq(xmlsafe_parse(env, len, &lim, &doc, err, sizeof err), XMLSAFE_OK, "%s", err);
        xmlNode *root = xmlDocGetRootElement(doc);
        cr_assert(xmlsafe_is(root, "http://schemas.xmlsoap.org/soap/envelope/", "Envelope"));
        xmlNode *body = xmlsafe_child(root, "http://schemas.xmlsoap.org/soap/envelope/", "Body");
        cr_assert_not_null(body);
        struct verrs v = {0};
        int n = schema_validate(S, kind, xmlsafe_first_elem(body), xmlsafe_first_elem(body), &v);
        if (n)
                fprintf(stderr, "%s\n", v.items[0].message);
        xmlFreeDoc(doc);
        return n;
}

Test(riv_soap, responses_validate_against_the_xsd)
{
        const char *codes[][2] = {{"OK", NULL},
                                  {"INFO", NULL},
                                  {"ERROR", "VALIDATION_ERROR"},
                                  {"ERROR", "TECHNICAL_ERROR"},
                                  {"ERROR", "APPLICATION_ERROR"},
                                  {"ERROR", "REVOKED"}};
        for (int c = RIV_REGISTER; c <= RIV_REVOKE; c++)
                for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
                        char *out = NULL;
                        size_t len = 0;
                        cr_assert_eq(riv_soap_response(c, codes[i][0], codes[i][1],
                                                       codes[i][1] ? "text <&>" : NULL, &out, &len),
                                     0);
                        cr_assert_eq(strlen(out), len);
                        cr_assert_eq(
                            body_xsd_errors(out, len,
                                            c == RIV_REGISTER ? SCHEMA_REGISTER : SCHEMA_REVOKE),
                            0, "%s", out);
                        cr_assert(strstr(out, c == RIV_REGISTER ? "RegisterCertificateResponse"
                                                                : "RevokeCertificateResponse"));
                        free(out);
                }
}

Test(riv_soap, bad_arguments_refused)
{
        char *out = (char *)1;
        size_t len;
        cr_assert_eq(riv_soap_response(RIV_UNKNOWN, "OK", NULL, NULL, &out, &len), -1);
        cr_assert_null(out);
        cr_assert_eq(riv_soap_response(RIV_REGISTER, "FINE", NULL, NULL, &out, &len), -1);
        cr_assert_eq(riv_soap_response(RIV_REGISTER, "ERROR", "OOPS", NULL, &out, &len), -1);
        cr_assert_eq(riv_soap_fault("soap:Whatever", "x", &out, &len), -1);
}

Test(riv_soap, escaping_round_trip)
{
        const char *text = "a<b>&\"c\" 'd' \x01 L\xc3\xa4kare \xff end";
        char *out = NULL;
        size_t len = 0;
        cr_assert_eq(riv_soap_response(RIV_REGISTER, "ERROR", "VALIDATION_ERROR", text, &out, &len),
                     0);
        char code[16], eid[32], rt[256];
        cr_assert_eq(
            riv_soap_parse_result(out, len, code, sizeof code, eid, sizeof eid, rt, sizeof rt), 0);
        cr_assert_str_eq(code, "ERROR");
        cr_assert_str_eq(eid, "VALIDATION_ERROR");
        cr_assert_str_eq(rt, "a<b>&\"c\" 'd' ? L\xc3\xa4kare ? end");
        free(out);
        cr_assert_eq(riv_soap_response(RIV_REVOKE, "OK", NULL, NULL, &out, &len), 0);
        cr_assert_eq(
            riv_soap_parse_result(out, len, code, sizeof code, eid, sizeof eid, rt, sizeof rt), 0);
        cr_assert_str_eq(code, "OK");
        cr_assert_str_eq(eid, "");
        cr_assert_str_eq(rt, "");
        free(out);
}

Test(riv_soap, fault_round_trip)
{
        char *out = NULL;
        size_t len = 0;
        cr_assert_eq(riv_soap_fault("soap:Client", "xml_doctype: line 1: <no>", &out, &len), 0);
        char code[16], eid[32], rt[256];
        cr_assert_eq(
            riv_soap_parse_result(out, len, code, sizeof code, eid, sizeof eid, rt, sizeof rt), 0);
        cr_assert_str_eq(code, "FAULT");
        cr_assert_str_eq(eid, "soap:Client");
        cr_assert_str_eq(rt, "xml_doctype: line 1: <no>");
        free(out);
        cr_assert_eq(
            riv_soap_parse_result("<x/>", 4, code, sizeof code, eid, sizeof eid, rt, sizeof rt),
            -1);
        cr_assert_eq(
            riv_soap_parse_result("garbage", 7, code, sizeof code, eid, sizeof eid, rt, sizeof rt),
            -1);
}

Test(riv_soap, verrs_text)
{
        struct verrs v = {0};
        verrs_add(&v, "q32", "/RegisterCertificate/intyg/svar[@id='32'][2]", "overlap");
        verrs_add(&v, "intyg", "/RegisterCertificate/intyg", "answer 6 missing");
        char buf[512];
        riv_soap_verrs_text(&v, buf, sizeof buf);
        cr_assert_str_eq(buf, "q32 /RegisterCertificate/intyg/svar[@id='32'][2]: overlap; "
                              "intyg /RegisterCertificate/intyg: answer 6 missing");
        char small[20];
        size_t n = riv_soap_verrs_text(&v, small, sizeof small);
        cr_assert_eq(n, strlen(small));
        cr_assert_lt(n, sizeof small);
        for (int i = 0; i < VERR_MAX + 3; i++)
                verrs_add(&v, "x", "", "m");
        riv_soap_verrs_text(&v, buf, sizeof buf);
        cr_assert(strstr(buf, "and 5 more") != NULL, "%s", buf);
}

static char *slurp(const char *rel, size_t *len)
{
        char path[512];
        snprintf(path, sizeof path, "%s/%s", INTYGSGW_SOURCE_DIR, rel);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *p = calloc(1, (size_t)n + 1);
        cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        *len = (size_t)n;
        return p;
}

Test(riv_soap, wrap_request_round_trip)
{
        char err[256];
        struct validator *v = validator_new(INTYGSGW_SOURCE_DIR "/schemas", err, sizeof err);
        cr_assert_not_null(v, "%s", err);
        size_t len;
        char *doc = slurp("tests/data/gw/lisjp-v1-tolvan.xml", &len);
        struct validate_opts o = {0, true};
        struct validate_result *r = calloc(1, sizeof *r);
        cr_assert_eq(validate_request(v, doc, len, &o, r), VALIDATE_OK);
        size_t plen;
        char *payload = validate_result_take_payload(r, &plen);
        char *env = NULL;
        size_t elen;
        cr_assert_eq(
            riv_soap_wrap_request(RIV_REGISTER, "2021005521 & <x>", payload, plen, &env, &elen), 0);
        cr_assert(strstr(env, "<?xml") == env, "one declaration, at the start");
        cr_assert_null(strstr(env + 5, "<?xml"));
        validate_result_clear(r);
        cr_assert_eq(validate_request(v, env, elen, &o, r), VALIDATE_OK);
        cr_assert(r->had_envelope);
        cr_assert_str_eq(r->logical_address, "2021005521 & <x>");
        enum riv_contract c;
        char id[64];
        cr_assert_eq(riv_soap_request_intyg_id(env, elen, &c, id, sizeof id), 0);
        cr_assert_eq(c, RIV_REGISTER);
        cr_assert_str_eq(id, "9f02dd2f-f57c-4a73-8190-2fe602bd6e39");
        cr_assert_eq(riv_soap_request_intyg_id(doc, len, &c, id, sizeof id), 0);
        cr_assert_str_eq(id, "9f02dd2f-f57c-4a73-8190-2fe602bd6e39");
        free(env);
        cr_assert_eq(riv_soap_wrap_request(RIV_REGISTER, "x", "no xml", 6, &env, &elen), -1);
        cr_assert_null(env);
        free(payload);
        free(doc);
        validate_result_clear(r);
        free(r);
        validator_free(v);
}

Test(riv_soap, request_id_of_revoke)
{
        size_t len;
        char *doc = slurp("tests/data/lisjp-v1/revokerequest.xml", &len);
        enum riv_contract c;
        char id[64];
        cr_assert_eq(riv_soap_request_intyg_id(doc, len, &c, id, sizeof id), 0);
        cr_assert_eq(c, RIV_REVOKE);
        cr_assert_str_eq(id, "intygId");
        cr_assert_eq(riv_soap_request_intyg_id("<a/>", 4, &c, id, sizeof id), -1);
        cr_assert_eq(c, RIV_UNKNOWN);
        free(doc);
}

/* The delivery thread parses every FK answer with one kept parser: each answer, whatever came
 * before it (garbage, a DOCTYPE, a fault), decodes exactly as with a fresh parser. */
Test(riv_soap, parse_result_with_a_kept_parser_matches_a_fresh_one)
{
        char *ok = NULL, *err = NULL, *fault = NULL;
        size_t ok_len, err_len, fault_len;
        cr_assert_eq(riv_soap_response(RIV_REGISTER, "OK", NULL, NULL, &ok, &ok_len), 0);
        cr_assert_eq(riv_soap_response(RIV_REGISTER, "ERROR", "TECHNICAL_ERROR", "try later", &err,
                                       &err_len),
                     0);
        cr_assert_eq(riv_soap_fault("soap:Server", "FK is busy", &fault, &fault_len), 0);
        const char *doctype = "<!DOCTYPE x [<!ENTITY e \"boom\">]><x>&e;</x>";
        struct {
                const char *body;
                size_t len;
        } seq[] = {{ok, ok_len},       {"garbage", 7}, {err, err_len}, {doctype, strlen(doctype)},
                   {fault, fault_len}, {"<x/>", 4},    {ok, ok_len}};
        struct xmlsafe_pool *pool = xmlsafe_pool_new();
        cr_assert_not_null(pool);
        struct xmlsafe_parser *ps = xmlsafe_parser_take(pool);
        cr_assert_not_null(ps);
        for (int round = 0; round < 20; round++) {
                for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
                        char c1[16], e1[32], t1[256], c2[16], e2[32], t2[256];
                        int r1 = riv_soap_parse_result(seq[i].body, seq[i].len, c1, sizeof c1, e1,
                                                       sizeof e1, t1, sizeof t1);
                        int r2 =
                            riv_soap_parse_result_with(ps, seq[i].body, seq[i].len, c2, sizeof c2,
                                                       e2, sizeof e2, t2, sizeof t2);
                        cr_assert_eq(r1, r2, "answer %zu", i);
                        cr_assert_str_eq(c1, c2);
                        cr_assert_str_eq(e1, e2);
                        cr_assert_str_eq(t1, t2);
                }
        }
        char c[16], e[32], t[256];
        cr_assert_eq(
            riv_soap_parse_result_with(ps, err, err_len, c, sizeof c, e, sizeof e, t, sizeof t), 0);
        cr_assert_str_eq(c, "ERROR");
        cr_assert_str_eq(e, "TECHNICAL_ERROR");
        cr_assert_str_eq(t, "try later");
        xmlsafe_parser_put(pool, ps);
        xmlsafe_pool_free(pool);
        free(ok);
        free(err);
        free(fault);
}
