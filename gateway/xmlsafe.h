/*
 * xmlsafe.h - hostile-input-safe XML parsing with libxml2, and small tree helpers.
 *
 * Owns: the process-wide libxml2 set-up (xmlInitParser, a refuse-everything external entity
 * loader), done once by xmlsafe_init(). A parse returns a document the caller frees.
 * Threads: any; xmlsafe_init() is idempotent and thread-safe (pthread_once).
 */
#ifndef INTYGSGW_XMLSAFE_H
#define INTYGSGW_XMLSAFE_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

/** Why a document was refused. Stable names from xmlsafe_err_name(). */
enum xmlsafe_err {
        XMLSAFE_OK = 0,
        XMLSAFE_EMPTY,             /* xml_empty: zero bytes */
        XMLSAFE_TOO_LARGE,         /* xml_too_large: more bytes than max_bytes */
        XMLSAFE_MALFORMED,         /* xml_malformed: not well-formed */
        XMLSAFE_DOCTYPE,           /* xml_doctype: any DOCTYPE (DTDs, entities) */
        XMLSAFE_TOO_DEEP,          /* xml_too_deep: nesting over max_depth */
        XMLSAFE_TOO_MANY_ATTRS,    /* xml_too_many_attrs: attributes+xmlns over max_attrs */
        XMLSAFE_TEXT_TOO_LONG,     /* xml_text_too_long: a text node or value over max_text */
        XMLSAFE_TOO_MANY_ELEMENTS, /* xml_too_many_elements: over max_elements */
        XMLSAFE_BAD_ENCODING,      /* xml_bad_encoding: not UTF-8 */
        XMLSAFE_NO_MEMORY,         /* xml_no_memory */
};

/** Explicit limits of one parse (xmlsafe_limits_default fills them from limits.h). */
struct xmlsafe_limits {
        size_t max_bytes;
        unsigned max_depth;
        unsigned max_attrs;
        size_t max_text;
        size_t max_elements;
};

/** Process-wide libxml2 set-up; call before any thread parses (idempotent). */
void xmlsafe_init(void);

/** Limits from limits.h, with max_bytes given by the caller (config http.max_body). */
void xmlsafe_limits_default(struct xmlsafe_limits *lim, size_t max_bytes);

/** Stable name of an error ("xml_doctype"), for logs, metrics and SOAP faults. */
const char *xmlsafe_err_name(enum xmlsafe_err e);

/**
 * Parse len bytes as a UTF-8 XML document: no network, no DTD, no entity substitution, no
 * DOCTYPE at all, every limit of lim enforced while parsing. On success *out is the document
 * (free with xmlFreeDoc). On failure *out is NULL and err says what and on which line.
 */
enum xmlsafe_err xmlsafe_parse(const char *buf, size_t len, const struct xmlsafe_limits *lim,
                               xmlDocPtr *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/** Namespace URI of an element, or "" (never NULL). */
const char *xmlsafe_ns(const xmlNode *n);

/** Whether n is an element with this local name and namespace URI. */
bool xmlsafe_is(const xmlNode *n, const char *ns, const char *name);

/** First element child of n (any name), or NULL. */
xmlNode *xmlsafe_first_elem(const xmlNode *n);

/** Next element sibling of n, or NULL. */
xmlNode *xmlsafe_next_elem(const xmlNode *n);

/** First element child with this name and namespace, or NULL. */
xmlNode *xmlsafe_child(const xmlNode *n, const char *ns, const char *name);

/** Value of an attribute without namespace, pointing into the tree (no copy), or NULL. */
const char *xmlsafe_attr(const xmlNode *n, const char *name);

/**
 * The text content of n (its text and CDATA children, concatenated) into buf; returns the
 * full length (which may be >= buflen: truncated). Element children are not descended.
 */
size_t xmlsafe_text(const xmlNode *n, char *buf, size_t buflen);

/** Whether n has any element child. */
bool xmlsafe_has_elem_child(const xmlNode *n);

/**
 * Element path of n from top (included), e.g. /RegisterCertificate/intyg/svar[@id='32'][2];
 * [@id='..'] for elements with an id attribute, [k] when several siblings share name and id.
 */
void xmlsafe_path(const xmlNode *n, const xmlNode *top, char *buf, size_t buflen);

#endif
