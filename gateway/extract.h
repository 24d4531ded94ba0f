/*
 * extract.h - fill struct intyg from a validated RegisterCertificate or RevokeCertificate
 * element, once, so that nothing after validation parses XML again.
 * Pure (reads the tree, writes the struct); any thread.
 */
#ifndef INTYGSGW_EXTRACT_H
#define INTYGSGW_EXTRACT_H

#include <libxml/tree.h>

#include "intyg.h"

#define NS_RV "urn:riv:clinicalprocess:healthcond:certificate:RevokeCertificateResponder:2"

/** Fill out from a RegisterCertificate element (XSD-valid). Clears out first. */
void extract_register(const xmlNode *rc, struct intyg *out);

/** Fill out from a RevokeCertificate element (XSD-valid): ids, unit, provider, patient, time,
 * reason. Clears out first. */
void extract_revoke(const xmlNode *rv, struct intyg *out);

/** Only the certificate id (intygs-id extension and root), for error answers. */
void extract_id(const xmlNode *elem, struct intyg *out);

#endif
