/*
 * test_xmlsafe.c - hostile XML: malformed, DOCTYPE, entity bombs, XXE, size, depth, attributes,
 * text length, element count and encoding, each limit on both sides of its edge; tree helpers.
 * Runs single-threaded per test (Criterion may run tests in parallel processes).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "limits.h"
#include "xmlsafe.h"

static enum xmlsafe_err parse_lim(const char *buf, size_t len, const struct xmlsafe_limits *lim,
                                  char *err, size_t errlen)
{
        xmlDocPtr doc = NULL;
        enum xmlsafe_err e = xmlsafe_parse(buf, len, lim, &doc, err, errlen);
        if (e == XMLSAFE_OK)
                cr_assert_not_null(doc);
        else
                cr_assert_null(doc);
        xmlFreeDoc(doc);
        return e;
}

static enum xmlsafe_err parse(const char *buf, char *err, size_t errlen)
{
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, XML_MAX_DOC_BYTES_DEFAULT);
        return parse_lim(buf, strlen(buf), &lim, err, errlen);
}

/* A growing string for generated documents. */
static char *gen(size_t cap)
{
        char *p = calloc(1, cap);
        cr_assert_not_null(p);
        return p;
}

Test(xmlsafe, well_formed_ok)
{
        char err[256] = "";
        cr_assert_eq(parse("<?xml version=\"1.0\"?><a x=\"1\"><b>t&amp;<![CDATA[c]]></b></a>", err,
                           sizeof err),
                     XMLSAFE_OK, "%s", err);
}

Test(xmlsafe, empty_refused)
{
        char err[256];
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, 100);
        cr_assert_eq(parse_lim("", 0, &lim, err, sizeof err), XMLSAFE_EMPTY);
        cr_assert_str_eq(xmlsafe_err_name(XMLSAFE_EMPTY), "xml_empty");
}

Test(xmlsafe, malformed_named_with_line)
{
        char err[256];
        cr_assert_eq(parse("<a>\n<b>\n</a>", err, sizeof err), XMLSAFE_MALFORMED);
        cr_assert(strstr(err, "xml_malformed: line 3") != NULL, "%s", err);
        cr_assert_eq(parse("not xml at all", err, sizeof err), XMLSAFE_MALFORMED);
        cr_assert_eq(parse("<a></a><b/>", err, sizeof err), XMLSAFE_MALFORMED);
        cr_assert_eq(parse("<a>&undefined;</a>", err, sizeof err), XMLSAFE_MALFORMED);
}

Test(xmlsafe, doctype_refused)
{
        char err[256];
        cr_assert_eq(parse("<?xml version=\"1.0\"?>\n<!DOCTYPE a>\n<a/>", err, sizeof err),
                     XMLSAFE_DOCTYPE);
        cr_assert(strstr(err, "xml_doctype: line 2") != NULL, "%s", err);
        cr_assert_eq(parse("<!DOCTYPE a SYSTEM \"http://127.0.0.1:1/x.dtd\"><a/>", err, sizeof err),
                     XMLSAFE_DOCTYPE);
}

Test(xmlsafe, billion_laughs_refused)
{
        const char *bomb =
            "<?xml version=\"1.0\"?>\n"
            "<!DOCTYPE lolz [\n"
            " <!ENTITY lol \"lol\">\n"
            " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
            " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
            " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
            "]>\n<lolz>&lol3;</lolz>";
        char err[256];
        cr_assert_eq(parse(bomb, err, sizeof err), XMLSAFE_DOCTYPE, "%s", err);
}

Test(xmlsafe, xxe_refused)
{
        const char *xxe = "<?xml version=\"1.0\"?>\n"
                          "<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
                          "<a>&x;</a>";
        char err[256];
        cr_assert_eq(parse(xxe, err, sizeof err), XMLSAFE_DOCTYPE, "%s", err);
        cr_assert(strstr(err, "root:") == NULL);
        const char *pe = "<!DOCTYPE a [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><a/>";
        cr_assert_eq(parse(pe, err, sizeof err), XMLSAFE_DOCTYPE, "%s", err);
}

Test(xmlsafe, fifty_megabytes_refused_by_size_before_parse)
{
        size_t n = 50u * 1024 * 1024;
        char *big = malloc(n);
        cr_assert_not_null(big);
        memset(big, 'x', n); /* not even XML: the size check comes first */
        char err[256];
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, XML_MAX_DOC_BYTES_DEFAULT);
        cr_assert_eq(parse_lim(big, n, &lim, err, sizeof err), XMLSAFE_TOO_LARGE);
        cr_assert(strstr(err, "xml_too_large") != NULL, "%s", err);
        free(big);
}

Test(xmlsafe, max_bytes_edge)
{
        const char *doc = "<a>0123456789</a>"; /* 17 bytes */
        size_t n = strlen(doc);
        struct xmlsafe_limits lim;
        char err[256];
        xmlsafe_limits_default(&lim, n);
        cr_assert_eq(parse_lim(doc, n, &lim, err, sizeof err), XMLSAFE_OK, "%s", err);
        xmlsafe_limits_default(&lim, n - 1);
        cr_assert_eq(parse_lim(doc, n, &lim, err, sizeof err), XMLSAFE_TOO_LARGE);
}

static char *nested(unsigned depth)
{
        char *p = gen(depth * 8 + 16);
        size_t o = 0;
        for (unsigned i = 0; i < depth; i++)
                o += (size_t)sprintf(p + o, "<e>");
        for (unsigned i = 0; i < depth; i++)
                o += (size_t)sprintf(p + o, "</e>");
        return p;
}

Test(xmlsafe, ten_thousand_nested_refused)
{
        char *p = nested(10000);
        char err[256];
        cr_assert_eq(parse(p, err, sizeof err), XMLSAFE_TOO_DEEP, "%s", err);
        cr_assert(strstr(err, "xml_too_deep") != NULL);
        free(p);
}

Test(xmlsafe, depth_edge)
{
        char err[256];
        char *ok = nested(XML_MAX_DEPTH), *bad = nested(XML_MAX_DEPTH + 1);
        cr_assert_eq(parse(ok, err, sizeof err), XMLSAFE_OK, "%s", err);
        cr_assert_eq(parse(bad, err, sizeof err), XMLSAFE_TOO_DEEP);
        free(ok);
        free(bad);
}

static char *with_attrs(unsigned n_attrs, unsigned n_ns)
{
        char *p = gen(64 + (n_attrs + n_ns) * 32);
        size_t o = (size_t)sprintf(p, "<a");
        for (unsigned i = 0; i < n_attrs; i++)
                o += (size_t)sprintf(p + o, " a%u=\"v\"", i);
        for (unsigned i = 0; i < n_ns; i++)
                o += (size_t)sprintf(p + o, " xmlns:n%u=\"urn:x:%u\"", i, i);
        sprintf(p + o, "/>");
        return p;
}

Test(xmlsafe, attrs_edge)
{
        char err[256];
        char *ok = with_attrs(XML_MAX_ATTRS, 0), *bad = with_attrs(XML_MAX_ATTRS + 1, 0);
        char *bad_ns = with_attrs(XML_MAX_ATTRS - 1, 2);
        cr_assert_eq(parse(ok, err, sizeof err), XMLSAFE_OK, "%s", err);
        cr_assert_eq(parse(bad, err, sizeof err), XMLSAFE_TOO_MANY_ATTRS);
        cr_assert_eq(parse(bad_ns, err, sizeof err), XMLSAFE_TOO_MANY_ATTRS, "xmlns count too");
        free(ok);
        free(bad);
        free(bad_ns);
}

static char *with_text(size_t n, bool in_attr)
{
        char *p = gen(n + 32);
        size_t o = (size_t)sprintf(p, in_attr ? "<a v=\"" : "<a>");
        memset(p + o, 'x', n);
        o += n;
        sprintf(p + o, in_attr ? "\"/>" : "</a>");
        return p;
}

Test(xmlsafe, text_edge)
{
        char err[256];
        for (int attr = 0; attr < 2; attr++) {
                char *ok = with_text(XML_MAX_TEXT, attr), *bad = with_text(XML_MAX_TEXT + 1, attr);
                cr_assert_eq(parse(ok, err, sizeof err), XMLSAFE_OK, "%s", err);
                cr_assert_eq(parse(bad, err, sizeof err), XMLSAFE_TEXT_TOO_LONG, "%s", err);
                free(ok);
                free(bad);
        }
}

Test(xmlsafe, whitespace_text_counts_too)
{
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, XML_MAX_DOC_BYTES_DEFAULT);
        lim.max_text = 10;
        char err[256];
        const char *ok = "<a><b/>          <b/></a>", *bad = "<a><b/>           <b/></a>";
        cr_assert_eq(parse_lim(ok, strlen(ok), &lim, err, sizeof err), XMLSAFE_OK, "%s", err);
        cr_assert_eq(parse_lim(bad, strlen(bad), &lim, err, sizeof err), XMLSAFE_TEXT_TOO_LONG);
}

static char *with_elements(size_t n)
{
        char *p = gen(n * 4 + 16);
        size_t o = (size_t)sprintf(p, "<a>");
        for (size_t i = 1; i < n; i++)
                o += (size_t)sprintf(p + o, "<b/>");
        sprintf(p + o, "</a>");
        return p;
}

Test(xmlsafe, elements_edge)
{
        char err[256];
        char *ok = with_elements(XML_MAX_ELEMENTS), *bad = with_elements(XML_MAX_ELEMENTS + 1);
        cr_assert_eq(parse(ok, err, sizeof err), XMLSAFE_OK, "%s", err);
        cr_assert_eq(parse(bad, err, sizeof err), XMLSAFE_TOO_MANY_ELEMENTS, "%s", err);
        free(ok);
        free(bad);
}

Test(xmlsafe, invalid_utf8_refused)
{
        char err[256];
        cr_assert_eq(parse("<a>\xff\xfe bad</a>", err, sizeof err), XMLSAFE_BAD_ENCODING, "%s",
                     err);
        cr_assert(strstr(err, "xml_bad_encoding") != NULL, "%s", err);
        cr_assert_eq(parse("<a>\xc3\x28</a>", err, sizeof err), XMLSAFE_BAD_ENCODING, "%s", err);
        /* a declared Latin-1 document is read as UTF-8: its bytes must be UTF-8 */
        cr_assert_eq(
            parse("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe5</a>", err, sizeof err),
            XMLSAFE_BAD_ENCODING, "%s", err);
        cr_assert_eq(parse("<a>L\xc3\xa4karintyg</a>", err, sizeof err), XMLSAFE_OK, "%s", err);
}

Test(xmlsafe, helpers_and_paths)
{
        const char *s = "<r xmlns=\"urn:a\"><svar id=\"32\"><d id=\"32.1\"> x </d></svar>"
                        "<svar id=\"32\"><d id=\"32.2\">y<![CDATA[z]]></d></svar><k/><k/></r>";
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, 0);
        xmlDocPtr doc = NULL;
        char err[256];
        cr_assert_eq(xmlsafe_parse(s, strlen(s), &lim, &doc, err, sizeof err), XMLSAFE_OK);
        xmlNode *r = xmlDocGetRootElement(doc);
        xmlNode *s1 = xmlsafe_child(r, "urn:a", "svar");
        xmlNode *s2 = xmlsafe_next_elem(s1);
        xmlNode *d2 = xmlsafe_first_elem(s2);
        char path[160], text[16];
        xmlsafe_path(d2, r, path, sizeof path);
        cr_assert_str_eq(path, "/r/svar[@id='32'][2]/d[@id='32.2']");
        xmlsafe_path(xmlsafe_next_elem(xmlsafe_next_elem(s2)), r, path, sizeof path);
        cr_assert_str_eq(path, "/r/k[2]");
        cr_assert_eq(xmlsafe_text(d2, text, sizeof text), 2);
        cr_assert_str_eq(text, "yz");
        cr_assert_str_eq(xmlsafe_attr(s1, "id"), "32");
        cr_assert_null(xmlsafe_attr(s1, "nope"));
        cr_assert_null(xmlsafe_child(r, "urn:other", "svar"));
        xmlFreeDoc(doc);
}

/* The good document of the pooled-parser test: namespaces, repeated names, CDATA, an entity,
 * UTF-8 and line numbers, all of which a reused context must report as a new one does. */
static const char pool_good[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<r xmlns=\"urn:a\">\n"
                                "<svar id=\"32\"><d id=\"32.1\">x&amp;y<![CDATA[z]]></d></svar>\n"
                                "<svar id=\"32\"><d id=\"32.2\">L\xc3\xa4k</d></svar>\n"
                                "<k/><k/></r>";

/* Parse pool_good with ps and check everything extracted from it; frees the document. */
static void pool_parse_good(struct xmlsafe_parser *ps, const struct xmlsafe_limits *lim, int round)
{
        xmlDocPtr doc = NULL;
        char err[256] = "";
        cr_assert_eq(
            xmlsafe_parse_with(ps, pool_good, strlen(pool_good), lim, &doc, err, sizeof err),
            XMLSAFE_OK, "round %d: %s", round, err);
        cr_assert_not_null(doc);
        xmlNode *r = xmlDocGetRootElement(doc);
        cr_assert(xmlsafe_is(r, "urn:a", "r"), "round %d", round);
        xmlNode *s1 = xmlsafe_child(r, "urn:a", "svar");
        cr_assert_not_null(s1, "round %d", round);
        xmlNode *s2 = xmlsafe_next_elem(s1);
        xmlNode *d1 = xmlsafe_first_elem(s1), *d2 = xmlsafe_first_elem(s2);
        cr_assert(xmlsafe_is(d1, "urn:a", "d") && xmlsafe_is(d2, "urn:a", "d"), "round %d", round);
        char text[16], path[160];
        cr_assert_eq(xmlsafe_text(d1, text, sizeof text), 4);
        cr_assert_str_eq(text, "x&yz", "round %d", round);
        cr_assert_eq(xmlsafe_text(d2, text, sizeof text), 4);
        cr_assert_str_eq(text, "L\xc3\xa4k", "round %d", round);
        cr_assert_str_eq(xmlsafe_attr(d1, "id"), "32.1", "round %d", round);
        cr_assert_str_eq(xmlsafe_attr(d2, "id"), "32.2", "round %d", round);
        xmlsafe_path(d2, r, path, sizeof path);
        cr_assert_str_eq(path, "/r/svar[@id='32'][2]/d[@id='32.2']", "round %d", round);
        xmlsafe_path(xmlsafe_next_elem(xmlsafe_next_elem(s2)), r, path, sizeof path);
        cr_assert_str_eq(path, "/r/k[2]", "round %d", round);
        cr_assert_eq(xmlGetLineNo(d1), 3, "round %d", round);
        cr_assert_eq(xmlGetLineNo(d2), 4, "round %d", round);
        xmlFreeDoc(doc);
}

Test(xmlsafe, pooled_parser_reused_after_hostile_input_gives_the_same_results)
{
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, XML_MAX_DOC_BYTES_DEFAULT);
        char *deep = nested(XML_MAX_DEPTH + 1), *attrs = with_attrs(XML_MAX_ATTRS + 1, 0);
        /* each refused part-way through, with elements open, names interned, entities declared */
        const struct {
                const char *doc;
                enum xmlsafe_err want;
        } bad[] = {
            {deep, XMLSAFE_TOO_DEEP},
            {"<?xml version=\"1.0\"?>\n<!DOCTYPE a [<!ENTITY e \"x\">]>\n<a>&e;</a>",
             XMLSAFE_DOCTYPE},
            {"<a>\n<b>\n</a>", XMLSAFE_MALFORMED},
            {attrs, XMLSAFE_TOO_MANY_ATTRS},
            {"<r xmlns=\"urn:a\">\n<svar id=\"32\"><d", XMLSAFE_MALFORMED},
            {"<a>&undefined;</a>", XMLSAFE_MALFORMED},
        };
        const size_t nbad = sizeof bad / sizeof bad[0];
        struct xmlsafe_pool *pool = xmlsafe_pool_new();
        cr_assert_not_null(pool);
        struct xmlsafe_parser *ps = xmlsafe_parser_take(pool);
        cr_assert_not_null(ps);
        pool_parse_good(ps, &lim, -1);
        for (int round = 0; round < 60; round++) {
                size_t k = (size_t)round % nbad;
                /* the same refusal, with the same line, as a fresh parser gives */
                char want_err[256], err[256];
                xmlDocPtr doc = NULL;
                cr_assert_eq(xmlsafe_parse(bad[k].doc, strlen(bad[k].doc), &lim, &doc, want_err,
                                           sizeof want_err),
                             bad[k].want, "fresh %zu: %s", k, want_err);
                cr_assert_null(doc);
                cr_assert_eq(xmlsafe_parse_with(ps, bad[k].doc, strlen(bad[k].doc), &lim, &doc, err,
                                                sizeof err),
                             bad[k].want, "round %d, document %zu: %s", round, k, err);
                cr_assert_null(doc);
                cr_assert_str_eq(err, want_err, "round %d, document %zu", round, k);
                cr_assert(strncmp(err, xmlsafe_err_name(bad[k].want),
                                  strlen(xmlsafe_err_name(bad[k].want))) == 0,
                          "%s", err);
                /* then the good document again, several times, on the same context */
                for (int again = 0; again < 3; again++)
                        pool_parse_good(ps, &lim, round);
        }
        /* back to the pool and out again: the same (kept) parser, still giving the same */
        xmlsafe_parser_put(pool, ps);
        struct xmlsafe_parser *again = xmlsafe_parser_take(pool);
        cr_assert_eq(again, ps, "a parser that stayed small is kept and reused");
        pool_parse_good(again, &lim, 60);
        xmlsafe_parser_put(pool, again);
        xmlsafe_pool_free(pool);
        free(deep);
        free(attrs);
}
