/*
 * schema.h - the RIV-TA XSDs, compiled once, and XSD validation of one request element.
 *
 * Owns: the compiled xmlSchemaPtr of RegisterCertificate 3.1 and RevokeCertificate 2.1 (shared
 * read-only by every thread) and a mutex-protected free list of validation contexts: a worker
 * takes one, validates, puts it back; schema_set_free() frees them all. (Chosen over
 * _Thread_local contexts: libuv pool threads never exit before the process, so per-thread
 * contexts could never be freed and ASan would report them.)
 * Threads: load/free on one thread; schema_validate from any number of threads at once.
 */
#ifndef INTYGSGW_SCHEMA_H
#define INTYGSGW_SCHEMA_H

#include <stddef.h>

#include <libxml/tree.h>

#include "intyg.h"

#define SCHEMA_REGISTER_XSD                                                                        \
        "interactions/RegisterCertificateInteraction/RegisterCertificateResponder_3.1.xsd"
#define SCHEMA_REVOKE_XSD                                                                          \
        "interactions/RevokeCertificateInteraction/RevokeCertificateResponder_2.1.xsd"

/** Which contract's schema to validate against. */
enum schema_kind { SCHEMA_REGISTER = 0, SCHEMA_REVOKE = 1, SCHEMA_KINDS = 2 };

struct schema_set;

/**
 * Compile both responder XSDs under dir. Imports resolve from files under dir only (no
 * network, nothing outside dir). NULL and a message in err on failure.
 */
struct schema_set *schema_set_load(const char *dir, char *err, size_t errlen);

/** Free the schemas and every pooled validation context; NULL is fine. */
void schema_set_free(struct schema_set *s);

/**
 * Validate elem (a RegisterCertificate or RevokeCertificate element, standalone or inside an
 * envelope) against the kind's schema. Each problem goes to errs as rule "xsd" with the
 * element path from top and the line. Returns the number of problems (0 = valid), or -1 on an
 * internal failure (also reported in errs).
 */
int schema_validate(const struct schema_set *s, enum schema_kind kind, xmlNode *elem,
                    const xmlNode *top, struct verrs *errs);

#endif
