/*
 * riv_soap.h - the RIV-TA BP 2.1 SOAP 1.1 wire format: response and fault envelopes to
 * callers, the request envelope towards FK, and decoders for FK's answers and (for the FK
 * simulator) for requests. Every string written is XML-escaped; every parse is xmlsafe.
 * Pure functions; any thread. Output buffers are malloc'd; the caller frees them.
 */
#ifndef INTYGSGW_RIV_SOAP_H
#define INTYGSGW_RIV_SOAP_H

#include <stddef.h>

#include "intyg.h"
#include "validate.h"

#define RIV_NS_REGISTER                                                                            \
        "urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3"
#define RIV_NS_REVOKE "urn:riv:clinicalprocess:healthcond:certificate:RevokeCertificateResponder:2"
#define RIV_NS_CORE   "urn:riv:clinicalprocess:healthcond:certificate:3"

/**
 * The contract's response envelope (RegisterCertificateResponse / RevokeCertificateResponse
 * with core:ResultType). result_code OK|INFO|ERROR; error_id NULL or VALIDATION_ERROR |
 * TECHNICAL_ERROR | APPLICATION_ERROR | REVOKED; result_text NULL or any text (escaped).
 * Returns 0, or -1 for an unknown contract/code (nothing allocated).
 */
int riv_soap_response(enum riv_contract c, const char *result_code, const char *error_id,
                      const char *result_text, char **out, size_t *out_len)
    __attribute__((warn_unused_result));

/** A SOAP 1.1 Fault; faultcode "soap:Client" or "soap:Server". Returns 0 or -1. */
int riv_soap_fault(const char *faultcode, const char *faultstring, char **out, size_t *out_len)
    __attribute__((warn_unused_result));

/**
 * Every failed check as resultText: "rule path: message" joined with "; " (and a count of
 * dropped ones). Always NUL-terminated; returns the length written.
 */
size_t riv_soap_verrs_text(const struct verrs *v, char *buf, size_t buflen);

/**
 * The request envelope the gateway sends to FK: SOAP 1.1, LogicalAddress header, payload
 * (a standalone document; its XML declaration is stripped) as the Body. Returns 0 or -1.
 */
int riv_soap_wrap_request(enum riv_contract c, const char *logical_address, const char *payload,
                          size_t len, char **out, size_t *out_len)
    __attribute__((warn_unused_result));

/**
 * Decode a response: result_code "OK"/"INFO"/"ERROR" with error_id and result_text (""
 * when absent), or "FAULT" with error_id = faultcode and result_text = faultstring.
 * Returns 0, or -1 when body is not a recognisable response.
 */
int riv_soap_parse_result(const char *body, size_t len, char *result_code, size_t rc_len,
                          char *error_id, size_t eid_len, char *result_text, size_t rt_len);

struct xmlsafe_parser;
/** riv_soap_parse_result with a pooled parser the caller holds (NULL: a fresh one); the
 * document is freed before it returns, so ps may go back to its pool after. */
int riv_soap_parse_result_with(struct xmlsafe_parser *ps, const char *body, size_t len,
                               char *result_code, size_t rc_len, char *error_id, size_t eid_len,
                               char *result_text, size_t rt_len);

/**
 * The contract and intygs-id/extension of a RegisterCertificate or RevokeCertificate
 * request (enveloped or bare). Returns 0, or -1 if neither.
 */
int riv_soap_request_intyg_id(const char *body, size_t len, enum riv_contract *c, char *id,
                              size_t idlen);

#endif
