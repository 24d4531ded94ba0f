/*
 * validate.h - the validation entry point for the daemon and the CLI: size, safe parse,
 * SOAP envelope and contract, XSD, patient id, HSA-ids, FK7804 rules, extraction.
 *
 * Owns: struct validator (the compiled schemas, shared read-only; created once at start-up,
 * freed at exit or after a reload swap). A validate_result owns its payload (malloc'd).
 * Threads: validate_request runs on many libuv pool threads at once; validator_new/free on
 * one thread while no request runs.
 */
#ifndef INTYGSGW_VALIDATE_H
#define INTYGSGW_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "intyg.h"
#include "limits.h"

#define NS_SOAP11 "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_SOAP12 "http://www.w3.org/2003/05/soap-envelope"
#define NS_ITR    "urn:riv:itintegration:registry:1"

struct validator; /* compiled schemas; shared read-only across threads */

/** Load and compile the schemas under schema_dir; NULL and a message on failure. */
struct validator *validator_new(const char *schema_dir, char *err, size_t errlen);

/** Free a validator; NULL is fine. */
void validator_free(struct validator *v);

struct validate_opts {
        size_t max_bytes;      /* 0: XML_MAX_DOC_BYTES_DEFAULT */
        bool person_id_strict; /* false: a failed check digit is a warning only */
};

enum validate_status {
        VALIDATE_OK = 0,
        VALIDATE_INVALID = 1, /* errs filled: answer ERROR / VALIDATION_ERROR */
        VALIDATE_FAULT = 2,   /* not XML / not a SOAP envelope / unknown contract: SOAP Fault */
};

enum riv_contract { RIV_UNKNOWN = 0, RIV_REGISTER = 1, RIV_REVOKE = 2 };

struct validate_result {
        enum validate_status status;
        enum riv_contract contract;
        bool had_envelope;
        char logical_address[HSA_ID_MAX + 1]; /* from the SOAP header, "" if none */
        char fault[256];                      /* VALIDATE_FAULT: a clear faultstring */
        char fault_code[32]; /* stable name: xml_doctype, soap_not_envelope, unknown_contract */
        struct intyg intyg;  /* filled when OK (and as far as possible otherwise: id) */
        struct verrs errs;
        char *payload; /* OK only: the request element as a standalone XML document (a bare
                        * request: the body unchanged; enveloped: copied out, xmlDocDumpMemory) */
        size_t payload_len;
};

/**
 * Validate one request body (SOAP 1.1 envelope or bare RegisterCertificate /
 * RevokeCertificate). Fills out (cleared first). Returns out->status. Thread-safe.
 */
int validate_request(const struct validator *v, const char *body, size_t len,
                     const struct validate_opts *opts, struct validate_result *out);

/** Take the payload (the caller frees it); the result no longer owns it. */
char *validate_result_take_payload(struct validate_result *r, size_t *len);

/** Free the payload and wipe the patient id; the struct may be reused. */
void validate_result_clear(struct validate_result *r);

/** Stable name of a status ("ok", "invalid", "fault"). */
const char *validate_status_name(enum validate_status s);

#endif
