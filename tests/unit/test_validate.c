/*
 * test_validate.c - the whole stack through validate_request: every upstream sample's verdict
 * (with person_id_check strict and warn), SOAP envelope handling, faults, XSD errors with paths,
 * extraction, the standalone payload, and concurrent validation on several threads.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "validate.h"

static struct validator *V;

static void setup(void)
{
        char err[256];
        V = validator_new(INTYGSGW_SOURCE_DIR "/schemas", err, sizeof err);
        cr_assert_not_null(V, "%s", err);
}

static void teardown(void)
{
        validator_free(V);
        V = NULL;
}

static char *slurp(const char *rel, size_t *len)
{
        char path[512];
        snprintf(path, sizeof path, "%s/%s", INTYGSGW_SOURCE_DIR, rel);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *p = calloc(1, (size_t)n + 1);
        cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        if (len)
                *len = (size_t)n;
        return p;
}

static struct validate_result R;

static int check_str(const char *s, bool strict)
{
        struct validate_opts o = {.max_bytes = 0, .person_id_strict = strict};
        validate_result_clear(&R);
        return validate_request(V, s, strlen(s), &o, &R);
}

static int check_file(const char *rel, bool strict)
{
        char *s = slurp(rel, NULL);
        int rc = check_str(s, strict);
        free(s);
        return rc;
}

static bool has(const char *rule)
{
        for (size_t i = 0; i < R.errs.n; i++)
                if (strcmp(R.errs.items[i].rule, rule) == 0)
                        return true;
        return false;
}

TestSuite(validate, .init = setup, .fini = teardown);

static const char *const VALID[] = {
    "fleraSjukskrivningOchOmArbetstidsforlaggning.xml",
    "lisjp.xml",
    "pass-diagnos-med-bidiagnoser.xml",
    "pass-diagnosPsykiskDiagnoskod.xml",
    "pass-flera-sysselsattningar.xml",
    "pass-grundForMUFyraSvar.xml",
    "pass-minimal.xml",
    "pass-prognos.xml",
    "pass-smittskydd-false.xml",
    "pass-smittskydd.xml",
};

Test(validate, upstream_valid_samples)
{
        for (size_t i = 0; i < sizeof VALID / sizeof *VALID; i++) {
                char rel[256];
                snprintf(rel, sizeof rel, "tests/data/lisjp-v1/%s", VALID[i]);
                cr_assert_eq(check_file(rel, false), VALIDATE_OK, "%s: %s %s", VALID[i],
                             R.errs.n ? R.errs.items[0].rule : "",
                             R.errs.n ? R.errs.items[0].message : "");
                cr_assert_eq(R.errs.n_warnings, 1, "%s: the Luhn warning", VALID[i]);
                cr_assert_str_eq(R.errs.warnings[0].rule, "person-id");
                cr_assert(R.errs.warnings_only);
                cr_assert_not_null(R.payload);
                cr_assert_eq(R.intyg.person_id_checksum_ok, false);
                /* strict (the default): the same document is invalid, only for the person id */
                cr_assert_eq(check_file(rel, true), VALIDATE_INVALID, "%s", VALID[i]);
                cr_assert_eq(R.errs.n, 1);
                cr_assert_str_eq(R.errs.items[0].rule, "person-id");
                cr_assert_null(R.payload);
        }
}

static const struct {
        const char *file;
        const char *rule;
} INVALID[] = {
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

Test(validate, upstream_invalid_samples)
{
        for (size_t i = 0; i < sizeof INVALID / sizeof *INVALID; i++) {
                char rel[256];
                snprintf(rel, sizeof rel, "tests/data/lisjp-v1/%s", INVALID[i].file);
                for (int strict = 0; strict < 2; strict++) {
                        cr_assert_eq(check_file(rel, strict), VALIDATE_INVALID, "%s",
                                     INVALID[i].file);
                        cr_assert(has(INVALID[i].rule), "%s should break %s", INVALID[i].file,
                                  INVALID[i].rule);
                        cr_assert_eq(has("person-id"), (bool)strict);
                        cr_assert_str_eq(R.intyg.id, "1234567", "the id is known even so");
                }
        }
}

Test(validate, tolvan_and_extraction)
{
        cr_assert_eq(check_file("tests/data/gw/lisjp-v1-tolvan.xml", true), VALIDATE_OK);
        cr_assert_eq(R.contract, RIV_REGISTER);
        cr_assert(!R.had_envelope);
        cr_assert_eq(R.errs.n_warnings, 0);
        const struct intyg *in = &R.intyg;
        cr_assert_eq(in->kind, INTYG_REGISTER);
        cr_assert_str_eq(in->id, "9f02dd2f-f57c-4a73-8190-2fe602bd6e39");
        cr_assert_str_eq(in->id_root, "TSTNMT2321000156-1077");
        cr_assert_str_eq(in->type, "LISJP");
        cr_assert_str_eq(in->version, "1.2");
        cr_assert_eq(in->major_version, 1);
        cr_assert_str_eq(in->signed_at, "2024-01-02T10:11:12");
        cr_assert_str_eq(in->unit_hsa, "TSTNMT2321000156-1077");
        cr_assert_str_eq(in->unit_name, "NMT vg3 ve1");
        cr_assert_str_eq(in->provider_hsa, "TSTNMT2321000156-102Q");
        cr_assert_str_eq(in->author_hsa, "TSTNMT2321000156-1079");
        cr_assert_str_eq(in->person_id, "191212121212");
        cr_assert_eq(in->person_kind, PERSON_ID_PERSONNUMMER);
        cr_assert_eq(in->sex, SEX_MALE);
        cr_assert_str_eq(in->birth_date, "1912-12-12");
        cr_assert(in->person_id_checksum_ok);
        cr_assert_eq(in->n_periods, 2);
        cr_assert_eq(in->periods[0].degree, DEGREE_50);
        cr_assert_str_eq(in->periods[0].start, "2024-01-01");
        cr_assert_str_eq(in->periods[1].end, "2024-01-31");
        cr_assert_eq(in->periods[1].end_day - in->periods[1].start_day, 16);
        cr_assert_eq(in->periods[1].degree, DEGREE_100);
        cr_assert_eq(in->n_diagnoses, 2);
        cr_assert_str_eq(in->diagnoses[0], "M545");
        cr_assert_str_eq(in->diagnoses[1], "F320");
        cr_assert_str_eq(in->diagnosis_system, "1.2.752.116.1.1.1.1.3");
        cr_assert_str_eq(in->prognosis, "ATER_X_ANTAL_DGR");
        cr_assert_str_eq(in->prognosis_days, "SEXTIO_DGR");
        cr_assert_eq(in->n_measures, 1);
        cr_assert_str_eq(in->measures[0], "ARBETSTRANING");
        cr_assert(in->treatment_given);
        cr_assert(in->contact_fk_wanted);
        cr_assert(!in->smittskydd);
        validate_result_clear(&R);
        cr_assert_str_eq(R.intyg.person_id, "", "wiped");
}

Test(validate, v2_tolvan)
{
        cr_assert_eq(check_file("tests/data/gw/lisjp-v2-tolvan.xml", true), VALIDATE_OK, "%s",
                     R.errs.n ? R.errs.items[0].message : "");
        cr_assert_eq(R.intyg.major_version, 2);
        cr_assert_str_eq(R.intyg.prognosis, "ATER_X_ANTAL_MANADER");
        cr_assert_str_eq(R.intyg.prognosis_days, "3");
}

Test(validate, envelope_and_payload)
{
        cr_assert_eq(check_file("tests/data/gw/soap-register-tolvan.xml", true), VALIDATE_OK);
        cr_assert(R.had_envelope);
        cr_assert_str_eq(R.logical_address, "2021005521");
        size_t len = 0;
        char *payload = validate_result_take_payload(&R, &len);
        cr_assert_not_null(payload);
        cr_assert_eq(strlen(payload), len);
        cr_assert_null(R.payload);
        cr_assert(strstr(payload, "Envelope") == NULL);
        /* the payload is a standalone document that validates on its own */
        cr_assert_eq(check_str(payload, true), VALIDATE_OK, "%s",
                     R.errs.n ? R.errs.items[0].message : "");
        cr_assert(!R.had_envelope);
        cr_assert_str_eq(R.intyg.id, "9f02dd2f-f57c-4a73-8190-2fe602bd6e39");
        free(payload);
}

Test(validate, revoke)
{
        cr_assert_eq(check_file("tests/data/lisjp-v1/revokerequest.xml", true), VALIDATE_OK);
        cr_assert_eq(R.contract, RIV_REVOKE);
        cr_assert_eq(R.intyg.kind, INTYG_REVOKE);
        cr_assert_str_eq(R.intyg.id, "intygId");
        cr_assert_str_eq(R.intyg.id_root, "hsaId");
        cr_assert_str_eq(R.intyg.unit_hsa, "hsaId");
        cr_assert_str_eq(R.intyg.provider_hsa, "hsaId");
        cr_assert_str_eq(R.intyg.sent_at, "2016-05-13T14:32:45");
        cr_assert_str_eq(R.intyg.revoke_reason, "meddelande");
        cr_assert_str_eq(R.intyg.person_id, "191212121212");
        cr_assert_not_null(R.payload);
}

static const char *ENV_HEAD =
    "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>";

static char *enveloped(const char *inner)
{
        char *p = malloc(strlen(ENV_HEAD) + strlen(inner) + 64);
        sprintf(p, "%s%s</s:Body></s:Envelope>", ENV_HEAD, inner);
        return p;
}

Test(validate, faults)
{
        cr_assert_eq(check_str("this is not xml", true), VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "xml_malformed");
        cr_assert_eq(check_str("<!DOCTYPE a><a/>", true), VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "xml_doctype");
        cr_assert(strstr(R.fault, "line 1") != NULL, "%s", R.fault);
        cr_assert_eq(
            check_str("<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"/>", true),
            VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "soap_version");
        cr_assert_eq(check_str("<Envelope/>", true), VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "soap_not_envelope");
        char *s = enveloped("<x:Other xmlns:x=\"urn:x\"/>");
        cr_assert_eq(check_str(s, true), VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "unknown_contract");
        free(s);
        s = enveloped("");
        cr_assert_eq(check_str(s, true), VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "soap_empty_body");
        free(s);
        s = enveloped("<a/><b/>");
        cr_assert_eq(check_str(s, true), VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "soap_body_count");
        free(s);
        cr_assert_eq(
            check_str("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"/>", true),
            VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "soap_no_body");
        cr_assert_eq(check_str("<Foo/>", true), VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "unknown_contract");
}

Test(validate, size_limit_edge)
{
        size_t len;
        char *s = slurp("tests/data/gw/lisjp-v1-tolvan.xml", &len);
        struct validate_opts o = {.max_bytes = len, .person_id_strict = true};
        validate_result_clear(&R);
        cr_assert_eq(validate_request(V, s, len, &o, &R), VALIDATE_OK);
        o.max_bytes = len - 1;
        validate_result_clear(&R);
        cr_assert_eq(validate_request(V, s, len, &o, &R), VALIDATE_FAULT);
        cr_assert_str_eq(R.fault_code, "xml_too_large");
        free(s);
}

Test(validate, xsd_error_has_path_and_line)
{
        size_t len;
        char *s = slurp("tests/data/gw/lisjp-v1-tolvan.xml", &len);
        char *at = strstr(s, "<fullstandigtNamn>");
        memcpy(at, "<fullstandigtNAMN>", 18);
        at = strstr(s, "</fullstandigtNamn>");
        memcpy(at, "</fullstandigtNAMN>", 19);
        cr_assert_eq(check_str(s, true), VALIDATE_INVALID);
        cr_assert_str_eq(R.errs.items[0].rule, "xsd");
        cr_assert_str_eq(R.errs.items[0].path,
                         "/RegisterCertificate/intyg/skapadAv/fullstandigtNAMN");
        cr_assert(strstr(R.errs.items[0].message, "line 15") != NULL, "%s",
                  R.errs.items[0].message);
        cr_assert_str_eq(R.intyg.id, "9f02dd2f-f57c-4a73-8190-2fe602bd6e39");
        free(s);
}

static char *replace(const char *s, const char *from, const char *to)
{
        const char *at = strstr(s, from);
        cr_assert_not_null(at);
        char *r = malloc(strlen(s) + strlen(to) + 1);
        size_t a = (size_t)(at - s);
        memcpy(r, s, a);
        strcpy(r + a, to);
        strcat(r, at + strlen(from));
        return r;
}

Test(validate, person_and_hsa_ids)
{
        char *s = slurp("tests/data/gw/lisjp-v1-tolvan.xml", NULL);
        char *t = replace(s, "<tp:root>1.2.752.129.2.1.3.1</tp:root><tp:extension>191212121212",
                          "<tp:root>1.2.752.129.2.1.3.3</tp:root><tp:extension>198001910002");
        cr_assert_eq(check_str(t, true), VALIDATE_OK);
        cr_assert_eq(R.intyg.person_kind, PERSON_ID_SAMORDNINGSNUMMER);
        cr_assert_str_eq(R.intyg.birth_date, "1980-01-31");
        free(t);
        t = replace(s, "191212121212", "198001910002"); /* samordningsnummer under pnr root */
        cr_assert_eq(check_str(t, false), VALIDATE_INVALID, "not downgraded by warn");
        cr_assert(has("person-id"));
        for (size_t i = 0; i < R.errs.n; i++)
                cr_assert(strstr(R.errs.items[i].message, "19800191") == NULL, "no personnummer");
        free(t);
        t = replace(s, "191212121212", "191302301212");
        cr_assert_eq(check_str(t, false), VALIDATE_INVALID);
        cr_assert(has("person-id"));
        free(t);
        t = replace(s, "TSTNMT2321000156-1079", "TSTNMT\t2321");
        cr_assert_eq(check_str(t, true), VALIDATE_INVALID);
        cr_assert(has("hsa-id"));
        free(t);
        char longid[HSA_ID_MAX + 2];
        memset(longid, 'A', HSA_ID_MAX + 1);
        longid[HSA_ID_MAX + 1] = '\0';
        t = replace(s, "TSTNMT2321000156-102Q", longid);
        cr_assert_eq(check_str(t, true), VALIDATE_INVALID);
        cr_assert(has("hsa-id"));
        free(t);
        longid[HSA_ID_MAX] = '\0';
        t = replace(s, "TSTNMT2321000156-102Q", longid);
        cr_assert_eq(check_str(t, true), VALIDATE_OK);
        free(t);
        free(s);
}

struct job {
        const char *doc;
        const char *bad;
        int ok, invalid;
};

static void *worker(void *arg)
{
        struct job *j = arg;
        struct validate_opts o = {.max_bytes = 0, .person_id_strict = true};
        struct validate_result *r = calloc(1, sizeof *r);
        for (int i = 0; i < 100; i++) {
                const char *d = i % 2 ? j->bad : j->doc;
                int rc = validate_request(V, d, strlen(d), &o, r);
                j->ok += rc == VALIDATE_OK;
                j->invalid += rc == VALIDATE_INVALID;
                validate_result_clear(r);
        }
        free(r);
        return NULL;
}

Test(validate, concurrent_threads)
{
        char *doc = slurp("tests/data/gw/soap-register-tolvan.xml", NULL);
        char *bad = slurp("tests/data/lisjp-v1/sjukskrivningOverlappandePerioder.xml", NULL);
        pthread_t t[4];
        struct job jobs[4];
        for (int i = 0; i < 4; i++) {
                jobs[i] = (struct job){doc, bad, 0, 0};
                cr_assert_eq(pthread_create(&t[i], NULL, worker, &jobs[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                cr_assert_eq(jobs[i].ok, 50);
                cr_assert_eq(jobs[i].invalid, 50);
        }
        free(doc);
        free(bad);
}

Test(validate, bad_schema_dir)
{
        char err[256] = "";
        cr_assert_null(validator_new("/nonexistent/schemas", err, sizeof err));
        cr_assert(err[0] != '\0');
        cr_assert_null(validator_new("/tmp", err, sizeof err), "no XSDs there");
        validator_free(NULL);
}
