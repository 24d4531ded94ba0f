/*
 * soap.c - the simulator's SOAP: reads the operation, the intygs-id extension and the
 * LogicalAddress out of a RegisterCertificate v3 / RevokeCertificate v2 request (libxml2, no
 * network, DTDs refused, nothing else kept), and writes *Response envelopes and SOAP faults.
 * Owns nothing beyond one call. Any thread (libxml2 initialised once by main).
 */
#include "fksim.h"

#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>

#define NS_SOAP11   "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_REGISTER "urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3"
#define NS_REVOKE   "urn:riv:clinicalprocess:healthcond:certificate:RevokeCertificateResponder:2"
#define NS_CORE     "urn:riv:clinicalprocess:healthcond:certificate:3"
#define NS_TYPES    "urn:riv:clinicalprocess:healthcond:certificate:types:3"
#define NS_REGISTRY "urn:riv:itintegration:registry:1"

struct parse_guard {
        bool had_dtd;
};

static void refuse_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                          const xmlChar *system_id)
{
        xmlParserCtxtPtr c = ctx;
        struct parse_guard *g = c->_private;
        g->had_dtd = true;
        xmlStopParser(c);
}

static void quiet_serror(void *data, xmlErrorPtr e)
{
}

static bool is_el(const xmlNode *n, const char *ns, const char *name)
{
        return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
               strcmp((const char *)n->ns->href, ns) == 0 &&
               strcmp((const char *)n->name, name) == 0;
}

static xmlNode *first_el(xmlNode *parent)
{
        for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE)
                        return c;
        return NULL;
}

static xmlNode *child(xmlNode *parent, const char *ns, const char *name)
{
        for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
                if (is_el(c, ns, name))
                        return c;
        return NULL;
}

/* Trimmed text of n into dst; *too_long when it does not fit in max chars. */
static void text_of(xmlNode *n, char *dst, size_t cap, size_t max, bool *too_long)
{
        dst[0] = '\0';
        if (!n)
                return;
        xmlChar *t = xmlNodeGetContent(n);
        if (!t)
                return;
        const char *s = (const char *)t;
        size_t len = strlen(s);
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                       s[len - 1] == '\r'))
                len--;
        while (len && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
                s++;
                len--;
        }
        if (len > max || len >= cap) {
                if (too_long)
                        *too_long = true;
        } else {
                memcpy(dst, s, len);
                dst[len] = '\0';
        }
        xmlFree(t);
}

int soap_parse(const char *body, size_t len, struct soap_req *out, char *err, size_t errlen)
{
        memset(out, 0, sizeof *out);
        if (len == 0 || len > FKSIM_MAX_BODY_BYTES) {
                snprintf(err, errlen, "empty or oversized body");
                return -1;
        }
        struct parse_guard g = {0};
        xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(body, (int)len);
        if (!ctxt) {
                snprintf(err, errlen, "no memory for the XML parser");
                return -1;
        }
        ctxt->_private = &g;
        ctxt->sax->internalSubset = refuse_subset;
        ctxt->sax->externalSubset = refuse_subset;
        ctxt->sax->serror = quiet_serror;
        xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlParseDocument(ctxt);
        xmlDocPtr doc = ctxt->myDoc;
        bool wf = ctxt->wellFormed;
        xmlFreeParserCtxt(ctxt);
        int rc = -1;
        if (g.had_dtd) {
                snprintf(err, errlen, "DOCTYPE refused");
                goto out;
        }
        if (!wf || !doc) {
                snprintf(err, errlen, "not well-formed XML");
                goto out;
        }
        xmlNode *root = xmlDocGetRootElement(doc);
        xmlNode *op = NULL;
        if (is_el(root, NS_SOAP11, "Envelope")) {
                xmlNode *hdr = child(root, NS_SOAP11, "Header");
                text_of(child(hdr, NS_REGISTRY, "LogicalAddress"), out->logical_address,
                        sizeof out->logical_address, sizeof out->logical_address - 1, NULL);
                op = first_el(child(root, NS_SOAP11, "Body"));
        } else {
                op = root; /* a bare request element is accepted too */
        }
        if (is_el(op, NS_REGISTER, "RegisterCertificate")) {
                out->op = SIM_OP_REGISTER;
                xmlNode *ext = child(child(child(op, NS_REGISTER, "intyg"), NS_CORE, "intygs-id"),
                                     NS_TYPES, "extension");
                text_of(ext, out->id, sizeof out->id, FKSIM_ID_MAX, &out->id_too_long);
        } else if (is_el(op, NS_REVOKE, "RevokeCertificate")) {
                out->op = SIM_OP_REVOKE;
                xmlNode *ext = child(child(op, NS_REVOKE, "intygs-id"), NS_TYPES, "extension");
                text_of(ext, out->id, sizeof out->id, FKSIM_ID_MAX, &out->id_too_long);
        } else {
                snprintf(err, errlen, "no RegisterCertificate v3 or RevokeCertificate v2 in Body");
                goto out;
        }
        for (const unsigned char *p = (const unsigned char *)out->id; *p; p++) {
                if (*p < 0x20 || *p == 0x7f) {
                        out->id[0] = '\0';
                        out->id_too_long = true; /* reported as an invalid id */
                        break;
                }
        }
        rc = 0;
out:
        xmlFreeDoc(doc);
        return rc;
}

int soap_result(struct buf *out, enum sim_op op, const char *code, const char *text,
                const char *error_id)
{
        const char *el =
            op == SIM_OP_REVOKE ? "RevokeCertificateResponse" : "RegisterCertificateResponse";
        const char *ns = op == SIM_OP_REVOKE ? NS_REVOKE : NS_REGISTER;
        if (buf_printf(out,
                       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<soap:Envelope xmlns:soap=\"" NS_SOAP11 "\"><soap:Body>"
                       "<rsp:%s xmlns:rsp=\"%s\" xmlns:core=\"" NS_CORE "\">"
                       "<rsp:result><core:resultCode>%s</core:resultCode>",
                       el, ns, code) < 0)
                return -1;
        if (text && (buf_puts(out, "<core:resultText>") < 0 || buf_xml_str(out, text) < 0 ||
                     buf_puts(out, "</core:resultText>") < 0))
                return -1;
        if (error_id && buf_printf(out, "<core:errorId>%s</core:errorId>", error_id) < 0)
                return -1;
        return buf_printf(out, "</rsp:result></rsp:%s></soap:Body></soap:Envelope>\n", el);
}

int soap_fault(struct buf *out, const char *faultcode, const char *faultstring)
{
        if (buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                          "<soap:Envelope xmlns:soap=\"" NS_SOAP11 "\"><soap:Body><soap:Fault>"
                          "<faultcode>") < 0 ||
            buf_xml_str(out, faultcode) < 0 || buf_puts(out, "</faultcode><faultstring>") < 0 ||
            buf_xml_str(out, faultstring) < 0)
                return -1;
        return buf_puts(out, "</faultstring></soap:Fault></soap:Body></soap:Envelope>\n");
}
