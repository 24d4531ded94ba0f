/*
 * limits.h - every compile-time limit of the gateway, with its unit and reason.
 *
 * Tunable limits (sizes, timeouts, connection counts) live in the config key table
 * (config.c) with these as their defaults; each has a test on both sides of its edge.
 * Header only; any thread.
 */
#ifndef INTYGSGW_LIMITS_H
#define INTYGSGW_LIMITS_H

/* Identifiers. HSA-ids are at most 31 characters by the HSA specification; we allow 64
 * so that test ids (TSTNMT...) and odd but legal ids pass, and refuse anything longer. */
#define HSA_ID_MAX   64  /* characters */
#define INTYG_ID_MAX 128 /* characters; a UUID is 36 */

/* Answers per intyg, from the FK7804 cardinalities (32: 1..4, 6: three codes, 40: 0..10). */
#define INTYG_MAX_PERIODS   4
#define INTYG_MAX_DIAGNOSES 3
#define INTYG_MAX_MEASURES  10

/* Validation errors reported per document: enough for any real intyg, bounded for a hostile
 * one (10,000 unknown answers must not make a 10,000-line resultText). */
#define VERR_MAX          32
#define VERR_MAX_WARNINGS 8

/* XML: a real RegisterCertificate is 3-20 kB, depth < 12, a few attributes per element. */
#define XML_MAX_DOC_BYTES_DEFAULT (1024 * 1024) /* bytes; config http.max_body */
#define XML_MAX_DEPTH             64            /* element nesting */
#define XML_MAX_ATTRS             32            /* attributes (incl. xmlns) per element */
#define XML_MAX_TEXT              65536         /* bytes of one text node */
#define XML_MAX_ELEMENTS          20000         /* elements per document */

/* HTTP front door defaults (config keys http.*). */
#define HTTP_MAX_HEADER_BYTES_DEFAULT      16384 /* bytes of request line + headers: 431 above */
#define HTTP_MAX_BODY_DEFAULT              XML_MAX_DOC_BYTES_DEFAULT /* 413 above */
#define HTTP_HEADER_TIMEOUT_DEFAULT        10000 /* ms to receive a whole header (slow-loris) */
#define HTTP_IDLE_TIMEOUT_DEFAULT          60000 /* ms a kept-alive connection may idle */
#define HTTP_BODY_TIMEOUT_DEFAULT          30000 /* ms to receive a whole body */
#define HTTP_MAX_PIPELINE                  16    /* requests queued on one connection */
#define TLS_HANDSHAKE_TIMEOUT_DEFAULT      10000 /* ms */
#define MAX_CONNECTIONS_DEFAULT            2000
#define MAX_CONNECTIONS_PER_CALLER_DEFAULT 200

#endif
