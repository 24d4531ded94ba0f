/*
 * xmlsafe.h - hostile-input-safe XML parsing with libxml2, and small tree helpers.
 *
 * Owns: the process-wide libxml2 set-up (xmlInitParser, a refuse-everything external entity
 * loader), done once by xmlsafe_init(). A parse returns a document the caller frees. A pool of
 * reusable parsers (context and dictionary) for callers that parse many documents.
 * Threads: any; xmlsafe_init() is idempotent and thread-safe (pthread_once); a pool's take/put
 * from any thread, a taken parser by one thread at a time.
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
 * (free with xmlFreeDoc; read-only: it is parsed with XML_PARSE_COMPACT, so do not modify it,
 * copy it first). On failure *out is NULL and err says what and on which line.
 */
enum xmlsafe_err xmlsafe_parse(const char *buf, size_t len, const struct xmlsafe_limits *lim,
                               xmlDocPtr *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/**
 * Reusable parsers. Creating a libxml2 parser context and its dictionary costs about 25 K
 * instructions, a tenth of parsing a certificate, so callers that parse many documents take a
 * parser from a pool, parse with it, free the document and put the parser back. The documents
 * a parser returns share its dictionary: free them all before the parser goes back to the pool
 * (another thread may then add to the dictionary). A parser whose dictionary or buffers grew
 * past XMLSAFE_KEEP_* is freed on put instead of kept, so hostile input cannot make pooled
 * parsers hold memory.
 */
#define XMLSAFE_KEEP_DICT_ENTRIES 4096         /* names interned in one parser's dictionary */
#define XMLSAFE_KEEP_DICT_BYTES   (256 * 1024) /* bytes of strings in its dictionary */
#define XMLSAFE_KEEP_ATTS         1024         /* slots of its attribute and namespace arrays */
#define XMLSAFE_KEEP_DEPTH        256          /* slots of its element name and node stacks */

struct xmlsafe_pool;   /* free list of parsers; take/put from any thread */
struct xmlsafe_parser; /* one libxml2 parser context with the SAX checks installed */

/** An empty pool; NULL when out of memory. */
struct xmlsafe_pool *xmlsafe_pool_new(void);

/** Free a pool and every parser in it (all must have been put back); NULL is fine. */
void xmlsafe_pool_free(struct xmlsafe_pool *p);

/** A parser from the pool, or a new one; NULL when out of memory. */
struct xmlsafe_parser *xmlsafe_parser_take(struct xmlsafe_pool *p);

/** Give a parser back once every document it returned is freed; NULL is fine. */
void xmlsafe_parser_put(struct xmlsafe_pool *p, struct xmlsafe_parser *ps);

/**
 * xmlsafe_parse with a pooled parser: the same checks and limits, the same results. The
 * document must be freed before ps is put back.
 */
enum xmlsafe_err xmlsafe_parse_with(struct xmlsafe_parser *ps, const char *buf, size_t len,
                                    const struct xmlsafe_limits *lim, xmlDocPtr *out, char *err,
                                    size_t errlen) __attribute__((warn_unused_result));

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
