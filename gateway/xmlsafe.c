/*
 * xmlsafe.c - parse untrusted bytes with libxml2: no network, no DTD, no entities, no DOCTYPE,
 * every size limit checked while parsing (SAX2 callbacks wrapped), every refusal named.
 * Owns: the one-time libxml2 set-up (xmlsafe_init) and pools of reusable parser contexts.
 * Threads: any; a parser (context) is used by one thread at a time, a pool behind a mutex.
 */
#include "xmlsafe.h"

#include <linux/limits.h> /* PATH_MAX; <limits.h> is shadowed by gateway/limits.h */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>

#include "limits.h"

/* The external entity loader: the gateway never loads anything a document points to.
 * (schema.c installs a narrower loader of its own only while compiling the XSDs.) */
static xmlParserInputPtr refuse_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
        (void)url;
        (void)id;
        (void)ctxt;
        return NULL;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_once_fn(void)
{
        xmlInitParser();
        xmlSetExternalEntityLoader(refuse_loader);
}

void xmlsafe_init(void)
{
        pthread_once(&init_once, init_once_fn);
}

void xmlsafe_limits_default(struct xmlsafe_limits *lim, size_t max_bytes)
{
        lim->max_bytes = max_bytes ? max_bytes : XML_MAX_DOC_BYTES_DEFAULT;
        lim->max_depth = XML_MAX_DEPTH;
        lim->max_attrs = XML_MAX_ATTRS;
        lim->max_text = XML_MAX_TEXT;
        lim->max_elements = XML_MAX_ELEMENTS;
}

const char *xmlsafe_err_name(enum xmlsafe_err e)
{
        switch (e) {
        case XMLSAFE_OK:
                return "ok";
        case XMLSAFE_EMPTY:
                return "xml_empty";
        case XMLSAFE_TOO_LARGE:
                return "xml_too_large";
        case XMLSAFE_MALFORMED:
                return "xml_malformed";
        case XMLSAFE_DOCTYPE:
                return "xml_doctype";
        case XMLSAFE_TOO_DEEP:
                return "xml_too_deep";
        case XMLSAFE_TOO_MANY_ATTRS:
                return "xml_too_many_attrs";
        case XMLSAFE_TEXT_TOO_LONG:
                return "xml_text_too_long";
        case XMLSAFE_TOO_MANY_ELEMENTS:
                return "xml_too_many_elements";
        case XMLSAFE_BAD_ENCODING:
                return "xml_bad_encoding";
        case XMLSAFE_NO_MEMORY:
                return "xml_no_memory";
        }
        return "xml_unknown";
}

/* Per-parse state, reached from the SAX callbacks through ctxt->_private. */
struct pstate {
        const struct xmlsafe_limits *lim;
        enum xmlsafe_err err;
        int line;
        char msg[200];
        unsigned depth;
        size_t elements;
        size_t text_run;
        const struct xmlsafe_parser *ps; /* libxml2's own SAX2 tree builders */
};

/* One parser context with the checks below installed in its SAX handler; reusable. */
struct xmlsafe_parser {
        xmlParserCtxtPtr ctxt;
        startElementNsSAX2Func start;
        endElementNsSAX2Func end;
        charactersSAXFunc chars;
        charactersSAXFunc blanks;
        struct xmlsafe_parser *next; /* in a pool's free list */
};

struct xmlsafe_pool {
        pthread_mutex_t lock;
        struct xmlsafe_parser *free_list;
};

static void refuse(xmlParserCtxtPtr ctxt, struct pstate *st, enum xmlsafe_err e, const char *msg)
{
        if (st->err == XMLSAFE_OK) {
                st->err = e;
                st->line = xmlSAX2GetLineNumber(ctxt);
                snprintf(st->msg, sizeof st->msg, "%s", msg);
        }
        xmlStopParser(ctxt);
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int nb_namespaces, const xmlChar **namespaces, int nb_attributes,
                     int nb_defaulted, const xmlChar **attributes)
{
        xmlParserCtxtPtr ctxt = ctx;
        struct pstate *st = ctxt->_private;
        char m[120];
        if (st->err)
                return;
        st->text_run = 0;
        if (++st->depth > st->lim->max_depth) {
                snprintf(m, sizeof m, "elements nested deeper than %u", st->lim->max_depth);
                refuse(ctxt, st, XMLSAFE_TOO_DEEP, m);
                return;
        }
        if (++st->elements > st->lim->max_elements) {
                snprintf(m, sizeof m, "more than %zu elements", st->lim->max_elements);
                refuse(ctxt, st, XMLSAFE_TOO_MANY_ELEMENTS, m);
                return;
        }
        if ((unsigned)nb_attributes + (unsigned)nb_namespaces > st->lim->max_attrs) {
                snprintf(m, sizeof m, "more than %u attributes on one element", st->lim->max_attrs);
                refuse(ctxt, st, XMLSAFE_TOO_MANY_ATTRS, m);
                return;
        }
        for (int i = 0; i < nb_attributes; i++) {
                const xmlChar *v = attributes[i * 5 + 3], *ve = attributes[i * 5 + 4];
                if ((size_t)(ve - v) > st->lim->max_text) {
                        snprintf(m, sizeof m, "an attribute value longer than %zu bytes",
                                 st->lim->max_text);
                        refuse(ctxt, st, XMLSAFE_TEXT_TOO_LONG, m);
                        return;
                }
        }
        st->ps->start(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
                      nb_defaulted, attributes);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
        xmlParserCtxtPtr ctxt = ctx;
        struct pstate *st = ctxt->_private;
        if (st->err)
                return;
        st->text_run = 0;
        if (st->depth)
                st->depth--;
        st->ps->end(ctx, localname, prefix, uri);
}

static void count_text(xmlParserCtxtPtr ctxt, struct pstate *st, int len)
{
        st->text_run += (size_t)len;
        if (st->text_run > st->lim->max_text) {
                char m[120];
                snprintf(m, sizeof m, "a text node longer than %zu bytes", st->lim->max_text);
                refuse(ctxt, st, XMLSAFE_TEXT_TOO_LONG, m);
        }
}

static void on_chars(void *ctx, const xmlChar *ch, int len)
{
        xmlParserCtxtPtr ctxt = ctx;
        struct pstate *st = ctxt->_private;
        if (st->err)
                return;
        count_text(ctxt, st, len);
        if (!st->err && st->ps->chars)
                st->ps->chars(ctx, ch, len);
}

static void on_blanks(void *ctx, const xmlChar *ch, int len)
{
        xmlParserCtxtPtr ctxt = ctx;
        struct pstate *st = ctxt->_private;
        if (st->err)
                return;
        count_text(ctxt, st, len);
        if (!st->err && st->ps->blanks)
                st->ps->blanks(ctx, ch, len);
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
        xmlParserCtxtPtr ctxt = ctx;
        refuse(ctxt, ctxt->_private, XMLSAFE_DOCTYPE, "a DOCTYPE is not allowed");
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                           const xmlChar *system_id, xmlChar *content)
{
        xmlParserCtxtPtr ctxt = ctx;
        refuse(ctxt, ctxt->_private, XMLSAFE_DOCTYPE, "an entity declaration is not allowed");
}

static xmlEntityPtr on_get_entity(void *ctx, const xmlChar *name)
{
        /* Only the five predefined entities exist; libxml2 resolves those itself. */
        return xmlGetPredefinedEntity(name);
}

/* libxml2's own errors: remember the first one, print nothing. */
static void on_error(void *ctx, xmlErrorPtr e)
{
        xmlParserCtxtPtr ctxt = ctx;
        if (!ctxt || !ctxt->_private || !e)
                return;
        struct pstate *st = ctxt->_private;
        if (st->err != XMLSAFE_OK || e->level < XML_ERR_ERROR)
                return;
        enum xmlsafe_err kind = XMLSAFE_MALFORMED;
        const char *msg = e->message ? e->message : "not well-formed";
        if (e->code == XML_ERR_NO_MEMORY)
                kind = XMLSAFE_NO_MEMORY;
        else if (e->code == XML_ERR_INVALID_ENCODING || e->code == XML_ERR_UNKNOWN_ENCODING ||
                 e->code == XML_ERR_UNSUPPORTED_ENCODING ||
                 (e->code == XML_ERR_INVALID_CHAR && strstr(msg, "UTF-8")))
                kind = XMLSAFE_BAD_ENCODING;
        else if (e->code == XML_ERR_DOCTYPE_NOT_FINISHED ||
                 e->code == XML_ERR_ENTITYREF_SEMICOL_MISSING)
                kind = XMLSAFE_MALFORMED;
        st->err = kind;
        st->line = e->line;
        size_t n = strcspn(msg, "\n");
        if (n >= sizeof st->msg)
                n = sizeof st->msg - 1;
        memcpy(st->msg, msg, n);
        st->msg[n] = '\0';
}

/* The XML declaration may name no encoding but UTF-8: the bytes are parsed as UTF-8 whatever
 * it says, and a bare request is forwarded byte for byte with its declaration, so a body that
 * says UTF-16 (or ISO-8859-1) over UTF-8 bytes would reach FK mislabelled. */
static bool declared_encoding_ok(const char *buf, size_t len, char *name, size_t namecap)
{
        name[0] = '\0';
        if (len < 5 || memcmp(buf, "<?xml", 5) != 0)
                return true;
        const char *end = memmem(buf, len < 512 ? len : 512, "?>", 2);
        if (!end)
                return true; /* not a complete declaration: the parser reports it */
        const char *e = memmem(buf, (size_t)(end - buf), "encoding", 8);
        if (!e)
                return true;
        e += 8;
        while (e < end && (*e == ' ' || *e == '\t' || *e == '\r' || *e == '\n' || *e == '='))
                e++;
        if (e >= end || (*e != '"' && *e != '\''))
                return true; /* malformed: the parser reports it */
        char q = *e++;
        size_t n = 0;
        while (e + n < end && e[n] != q)
                n++;
        snprintf(name, namecap, "%.*s", (int)n, e);
        return n == 5 && strncasecmp(e, "UTF-8", 5) == 0;
}

static struct xmlsafe_parser *parser_new(void)
{
        xmlsafe_init();
        struct xmlsafe_parser *ps = calloc(1, sizeof *ps);
        if (!ps)
                return NULL;
        ps->ctxt = xmlNewParserCtxt();
        if (!ps->ctxt) {
                free(ps);
                return NULL;
        }
        xmlSAXHandlerPtr sax = ps->ctxt->sax;
        ps->start = sax->startElementNs;
        ps->end = sax->endElementNs;
        ps->chars = sax->characters;
        ps->blanks = sax->ignorableWhitespace;
        sax->startElementNs = on_start;
        sax->endElementNs = on_end;
        sax->characters = on_chars;
        sax->cdataBlock = NULL; /* CDATA arrives as characters (XML_PARSE_NOCDATA) */
        sax->ignorableWhitespace = on_blanks;
        sax->internalSubset = on_doctype;
        sax->externalSubset = on_doctype;
        sax->entityDecl = on_entity_decl;
        sax->getEntity = on_get_entity;
        sax->getParameterEntity = NULL;
        sax->resolveEntity = NULL;
        sax->serror = on_error;
        sax->error = NULL;
        sax->warning = NULL;
        return ps;
}

static void parser_free(struct xmlsafe_parser *ps)
{
        if (!ps)
                return;
        xmlFreeParserCtxt(ps->ctxt);
        free(ps);
}

/* Whether a used parser is still small enough to keep: hostile documents can grow its
 * dictionary (names) and its attribute and name stacks, and a pooled parser lives long. */
static bool parser_keep(const struct xmlsafe_parser *ps)
{
        const xmlParserCtxt *c = ps->ctxt;
        return xmlDictSize(c->dict) <= XMLSAFE_KEEP_DICT_ENTRIES &&
               xmlDictGetUsage(c->dict) <= XMLSAFE_KEEP_DICT_BYTES &&
               c->maxatts <= XMLSAFE_KEEP_ATTS && c->nsMax <= XMLSAFE_KEEP_ATTS &&
               c->nameMax <= XMLSAFE_KEEP_DEPTH && c->nodeMax <= XMLSAFE_KEEP_DEPTH &&
               c->spaceMax <= XMLSAFE_KEEP_DEPTH;
}

struct xmlsafe_pool *xmlsafe_pool_new(void)
{
        struct xmlsafe_pool *p = calloc(1, sizeof *p);
        if (!p)
                return NULL;
        if (pthread_mutex_init(&p->lock, NULL) != 0) {
                free(p);
                return NULL;
        }
        return p;
}

void xmlsafe_pool_free(struct xmlsafe_pool *p)
{
        if (!p)
                return;
        struct xmlsafe_parser *ps = p->free_list;
        while (ps) {
                struct xmlsafe_parser *next = ps->next;
                parser_free(ps);
                ps = next;
        }
        pthread_mutex_destroy(&p->lock);
        free(p);
}

struct xmlsafe_parser *xmlsafe_parser_take(struct xmlsafe_pool *p)
{
        pthread_mutex_lock(&p->lock);
        struct xmlsafe_parser *ps = p->free_list;
        if (ps)
                p->free_list = ps->next;
        pthread_mutex_unlock(&p->lock);
        if (ps) {
                ps->next = NULL;
                return ps;
        }
        return parser_new();
}

void xmlsafe_parser_put(struct xmlsafe_pool *p, struct xmlsafe_parser *ps)
{
        if (!ps)
                return;
        if (!p || !parser_keep(ps)) {
                parser_free(ps);
                return;
        }
        pthread_mutex_lock(&p->lock);
        ps->next = p->free_list;
        p->free_list = ps;
        pthread_mutex_unlock(&p->lock);
}

enum xmlsafe_err xmlsafe_parse_with(struct xmlsafe_parser *ps, const char *buf, size_t len,
                                    const struct xmlsafe_limits *lim, xmlDocPtr *out, char *err,
                                    size_t errlen)
{
        *out = NULL;
        if (!buf || len == 0) {
                snprintf(err, errlen, "xml_empty: the body is empty");
                return XMLSAFE_EMPTY;
        }
        if (len > lim->max_bytes || len > (size_t)__INT_MAX__) {
                snprintf(err, errlen, "xml_too_large: %zu bytes, more than the limit of %zu", len,
                         lim->max_bytes);
                return XMLSAFE_TOO_LARGE;
        }
        char enc[64];
        if (!declared_encoding_ok(buf, len, enc, sizeof enc)) {
                snprintf(err, errlen,
                         "xml_bad_encoding: line 1: the declaration names %s; only "
                         "UTF-8 is accepted",
                         enc);
                return XMLSAFE_BAD_ENCODING;
        }
        if (!ps) {
                snprintf(err, errlen, "xml_no_memory: no parser context");
                return XMLSAFE_NO_MEMORY;
        }
        xmlParserCtxtPtr ctxt = ps->ctxt;
        struct pstate st = {.lim = lim, .ps = ps};
        ctxt->_private = &st;

        /* XML_PARSE_COMPACT keeps short text inside its node (no separate allocation); such a
         * tree must not be modified afterwards, which no caller does (see xmlsafe.h). */
        const int opts = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR |
                         XML_PARSE_NOWARNING | XML_PARSE_COMPACT;
        /* xmlCtxtReadMemory resets the context first (xmlCtxtReset): a reused context starts
         * from the same state as a new one, but keeps its dictionary. */
        xmlDocPtr doc = xmlCtxtReadMemory(ctxt, buf, (int)len, NULL, "UTF-8", opts);
        enum xmlsafe_err e = st.err;
        if (e == XMLSAFE_OK && (!doc || !ctxt->wellFormed)) {
                e = XMLSAFE_MALFORMED;
                snprintf(st.msg, sizeof st.msg, "not well-formed");
                st.line = xmlSAX2GetLineNumber(ctxt);
        }
        if (e == XMLSAFE_OK && (doc->intSubset || doc->extSubset)) {
                e = XMLSAFE_DOCTYPE; /* belt and braces: the SAX hook refuses it first */
                snprintf(st.msg, sizeof st.msg, "a DOCTYPE is not allowed");
                st.line = 1;
        }
        if (e == XMLSAFE_OK && !xmlDocGetRootElement(doc)) {
                e = XMLSAFE_MALFORMED;
                snprintf(st.msg, sizeof st.msg, "no root element");
                st.line = 1;
        }
        /* Drop the input (a copy of the body) now rather than at the next parse. */
        xmlCtxtReset(ctxt);
        ctxt->_private = NULL;
        if (e != XMLSAFE_OK) {
                xmlFreeDoc(doc);
                snprintf(err, errlen, "%s: line %d: %s", xmlsafe_err_name(e), st.line, st.msg);
                return e;
        }
        *out = doc;
        return XMLSAFE_OK;
}

enum xmlsafe_err xmlsafe_parse(const char *buf, size_t len, const struct xmlsafe_limits *lim,
                               xmlDocPtr *out, char *err, size_t errlen)
{
        *out = NULL;
        if (!buf || len == 0 || len > lim->max_bytes || len > (size_t)__INT_MAX__)
                return xmlsafe_parse_with(NULL, buf, len, lim, out, err, errlen);
        struct xmlsafe_parser *ps = parser_new();
        enum xmlsafe_err e = xmlsafe_parse_with(ps, buf, len, lim, out, err, errlen);
        parser_free(ps); /* the document keeps its own reference to the dictionary */
        return e;
}

/* ---- tree helpers ---- */

const char *xmlsafe_ns(const xmlNode *n)
{
        return n && n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

bool xmlsafe_is(const xmlNode *n, const char *ns, const char *name)
{
        /* The first byte settles most misses without a call (siblings are walked by name). */
        return n && n->type == XML_ELEMENT_NODE && n->name[0] == (unsigned char)name[0] &&
               strcmp((const char *)n->name, name) == 0 && strcmp(xmlsafe_ns(n), ns) == 0;
}

xmlNode *xmlsafe_first_elem(const xmlNode *n)
{
        for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE)
                        return c;
        return NULL;
}

xmlNode *xmlsafe_next_elem(const xmlNode *n)
{
        for (xmlNode *c = n ? n->next : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE)
                        return c;
        return NULL;
}

xmlNode *xmlsafe_child(const xmlNode *n, const char *ns, const char *name)
{
        for (xmlNode *c = xmlsafe_first_elem(n); c; c = xmlsafe_next_elem(c))
                if (xmlsafe_is(c, ns, name))
                        return c;
        return NULL;
}

const char *xmlsafe_attr(const xmlNode *n, const char *name)
{
        if (!n || n->type != XML_ELEMENT_NODE)
                return NULL;
        for (const xmlAttr *a = n->properties; a; a = a->next) {
                if (a->ns || strcmp((const char *)a->name, name) != 0)
                        continue;
                if (!a->children)
                        return "";
                if (a->children->type == XML_TEXT_NODE && !a->children->next)
                        return a->children->content ? (const char *)a->children->content : "";
                return NULL; /* entity references are refused by xmlsafe_parse */
        }
        return NULL;
}

size_t xmlsafe_text(const xmlNode *n, char *buf, size_t buflen)
{
        size_t total = 0;
        if (buflen)
                buf[0] = '\0';
        for (const xmlNode *c = n ? n->children : NULL; c; c = c->next) {
                if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) || !c->content)
                        continue;
                size_t l = strlen((const char *)c->content);
                if (buflen && total < buflen - 1) {
                        size_t k = l < buflen - 1 - total ? l : buflen - 1 - total;
                        memcpy(buf + total, c->content, k);
                        buf[total + k] = '\0';
                }
                total += l;
        }
        return total;
}

bool xmlsafe_has_elem_child(const xmlNode *n)
{
        return xmlsafe_first_elem(n) != NULL;
}

static bool same_id(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

void xmlsafe_path(const xmlNode *n, const xmlNode *top, char *buf, size_t buflen)
{
        const xmlNode *chain[XML_MAX_DEPTH + 2];
        size_t depth = 0;
        for (const xmlNode *p = n; p && p->type == XML_ELEMENT_NODE && depth < XML_MAX_DEPTH + 2;
             p = p->parent) {
                chain[depth++] = p;
                if (p == top)
                        break;
        }
        size_t off = 0;
        if (buflen)
                buf[0] = '\0';
        for (size_t i = depth; i-- > 0 && off + 1 < buflen;) {
                const xmlNode *e = chain[i];
                const char *id = xmlsafe_attr(e, "id");
                int k = 0, total = 0;
                for (const xmlNode *s = e->parent ? xmlsafe_first_elem(e->parent) : e; s;
                     s = xmlsafe_next_elem(s)) {
                        if (strcmp((const char *)s->name, (const char *)e->name) != 0 ||
                            !same_id(xmlsafe_attr(s, "id"), id))
                                continue;
                        total++;
                        if (s == e)
                                k = total;
                }
                int w;
                if (id && total > 1)
                        w = snprintf(buf + off, buflen - off, "/%s[@id='%s'][%d]", e->name, id, k);
                else if (id)
                        w = snprintf(buf + off, buflen - off, "/%s[@id='%s']", e->name, id);
                else if (total > 1)
                        w = snprintf(buf + off, buflen - off, "/%s[%d]", e->name, k);
                else
                        w = snprintf(buf + off, buflen - off, "/%s", e->name);
                if (w < 0)
                        break;
                off += (size_t)w;
        }
}
