/*
 * fuzz_soap.c - libFuzzer harness for validate_request (gateway/validate.h): safe XML parse,
 * SOAP envelope and contract, XSD, patient id and HSA-ids, FK7804 rules, extraction and the
 * standalone payload, on arbitrary bytes, with the schemas the daemon uses.
 * Owns: one validator (process lifetime). One thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "validate.h"
#include "fuzz_entry.h"

static struct validator *fz_soap_v;

static void fz_soap_check(bool ok, const char *what)
{
        if (!ok) {
                fprintf(stderr, "fuzz_soap: invariant broken: %s\n", what);
                abort();
        }
}

static void fz_soap_init(void)
{
        log_set_level(LOG_ERROR);
        char err[512];
        fz_soap_v = validator_new(INTYGSGW_SCHEMA_DIR, err, sizeof err);
        if (!fz_soap_v) {
                fprintf(stderr, "fuzz_soap: %s\n", err);
                abort();
        }
}

static void fz_soap_fini(void)
{
        validator_free(fz_soap_v);
        fz_soap_v = NULL;
}

static bool fz_soap_terminated(const char *s, size_t cap)
{
        return memchr(s, '\0', cap) != NULL;
}

/* Input: the request body. Its length's parity chooses person_id_check strict or warn. */
static int fz_soap_one(const uint8_t *data, size_t size)
{
        static struct validate_result r; /* ~20 kB: not on the stack */
        struct validate_opts o = {.max_bytes = 0, .person_id_strict = (size & 1) == 0};
        int st = validate_request(fz_soap_v, (const char *)data, size, &o, &r);
        fz_soap_check(st == (int)r.status, "returned status differs from out->status");
        fz_soap_check(st == VALIDATE_OK || st == VALIDATE_INVALID || st == VALIDATE_FAULT,
                      "unknown status");
        fz_soap_check(fz_soap_terminated(r.fault, sizeof r.fault), "fault not terminated");
        fz_soap_check(fz_soap_terminated(r.fault_code, sizeof r.fault_code), "fault_code");
        fz_soap_check(fz_soap_terminated(r.logical_address, sizeof r.logical_address),
                      "logical_address");
        fz_soap_check(r.errs.n <= VERR_MAX && r.errs.n_warnings <= VERR_MAX_WARNINGS,
                      "error list over its bound");
        for (size_t i = 0; i < r.errs.n; i++) {
                const struct verr *e = &r.errs.items[i];
                fz_soap_check(fz_soap_terminated(e->rule, sizeof e->rule) &&
                                  fz_soap_terminated(e->path, sizeof e->path) &&
                                  fz_soap_terminated(e->message, sizeof e->message),
                              "verr not terminated");
        }
        if (st == VALIDATE_FAULT)
                fz_soap_check(r.fault_code[0] != '\0', "fault without a code");
        if (st == VALIDATE_INVALID)
                fz_soap_check(r.errs.n > 0 || r.errs.dropped > 0, "invalid without errors");
        if (st == VALIDATE_OK) {
                fz_soap_check(r.payload && r.payload_len > 0, "ok without payload");
                fz_soap_check(r.payload[r.payload_len] == '\0', "payload not terminated");
                fz_soap_check(r.contract == RIV_REGISTER || r.contract == RIV_REVOKE,
                              "ok without a contract");
                fz_soap_check(r.intyg.id[0] != '\0', "ok without an intygs-id");
                /* The payload is itself a request the validator accepts (no envelope). */
                size_t plen = 0;
                char *p = validate_result_take_payload(&r, &plen);
                validate_result_clear(&r);
                st = validate_request(fz_soap_v, p, plen, &o, &r);
                fz_soap_check(st == VALIDATE_OK, "the payload of an OK request is not OK");
                fz_soap_check(!r.had_envelope, "the payload has an envelope");
                free(p);
        } else {
                fz_soap_check(r.payload == NULL, "payload on a refusal");
        }
        validate_result_clear(&r);
        return 0;
}

FUZZ_ENTRY(soap)
