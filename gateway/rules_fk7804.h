/*
 * rules_fk7804.h - the FK7804 (LISJP) content rules, natively in C, from the upstream ISO
 * Schematron files lisjp.v1.sch (versions 1, 1.0, 1.1, 1.2) and lisjp.v2.sch (2.0).
 *
 * One C check per Schematron pattern; each failure names the upstream pattern id ("q6.2",
 * "q32", "q32.1-33.1-R26", "intyg") or our own ("type", "version"), the element path and
 * a message naming the answer id. Pure; any thread (reads the tree, writes errs).
 */
#ifndef INTYGSGW_RULES_FK7804_H
#define INTYGSGW_RULES_FK7804_H

#include <libxml/tree.h>

#include "intyg.h"

#define KV_INTYGSTYP "b64ea353-e8f6-4832-b563-fc7d46f29548"
#define NS_RC        "urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3"
#define NS_GN        "urn:riv:clinicalprocess:healthcond:certificate:3"
#define NS_TP        "urn:riv:clinicalprocess:healthcond:certificate:types:3"

/** Which rule set a version string selects. */
enum fk7804_version { FK7804_UNKNOWN = 0, FK7804_V1 = 1, FK7804_V2 = 2 };

/** "1", "1.0", "1.1", "1.2" -> V1; "2.0" -> V2; anything else UNKNOWN (refused). */
enum fk7804_version fk7804_version_of(const char *version);

/**
 * Check a RegisterCertificate element (already valid against the XSD): type LISJP with the
 * KV_INTYGSTYP code system, a known version, then every rule of that version's Schematron.
 * Paths start at top. Returns the number of errors added to errs.
 */
int rules_fk7804_check(const xmlNode *register_elem, const xmlNode *top, struct verrs *errs);

/** Whether a diagnosis code has the ICD-10-SE shape lisjp.v1.sch asks for (q6.2 regex). */
bool fk7804_diagnosis_code_ok(const char *code);

#endif
