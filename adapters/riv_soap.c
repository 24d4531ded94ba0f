/*
 * riv_soap.c - RIV-TA SOAP 1.1 envelopes: write responses, faults and FK requests with every
 * value escaped; read FK responses and requests with xmlsafe_parse. Owns only the buffers it
 * returns (malloc'd, caller frees). Any thread.
 */
#include "riv_soap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmlsafe.h"

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"

/* A growing output buffer. */
struct sb {
        char *p;
        size_t n, cap;
        bool oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
        if (b->oom)
                return;
        if (b->n + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 1024;
                while (cap < b->n + n + 1)
                        cap *= 2;
                char *np = realloc(b->p, cap);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->cap = cap;
        }
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
        sb_put(b, s, strlen(s));
}

/* Length of a valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
        if (s[0] < 0x80)
                return 1;
        size_t n = (s[0] & 0xE0) == 0xC0   ? 2
                   : (s[0] & 0xF0) == 0xE0 ? 3
                   : (s[0] & 0xF8) == 0xF0 ? 4
                                           : 0;
        if (n == 0 || (n == 2 && s[0] < 0xC2) || (n == 4 && s[0] > 0xF4))
                return 0;
        for (size_t i = 1; i < n; i++)
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
        if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
                return 0; /* overlong, surrogates */
        if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
                return 0;
        return n;
}

/* XML-escape text; characters XML 1.0 cannot carry and invalid UTF-8 become '?'. */
static void sb_esc(struct sb *b, const char *text)
{
        const unsigned char *s = (const unsigned char *)(text ? text : "");
        while (*s) {
                const char *rep = NULL;
                switch (*s) {
                case '&':
                        rep = "&amp;";
                        break;
                case '<':
                        rep = "&lt;";
                        break;
                case '>':
                        rep = "&gt;";
                        break;
                case '"':
                        rep = "&quot;";
                        break;
                case '\'':
                        rep = "&apos;";
                        break;
                default:
                        break;
                }
                if (rep) {
                        sb_str(b, rep);
                        s++;
                        continue;
                }
                if (*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') {
                        sb_put(b, "?", 1);
                        s++;
                        continue;
                }
                size_t n = utf8_len(s);
                if (n == 0) {
                        sb_put(b, "?", 1);
                        s++;
                        continue;
                }
                /* U+FFFE and U+FFFF are not XML characters */
                if (n == 3 && s[0] == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF)) {
                        sb_put(b, "?", 1);
                        s += 3;
                        continue;
                }
                sb_put(b, (const char *)s, n);
                s += n;
        }
}

static int sb_done(struct sb *b, char **out, size_t *out_len)
{
        if (b->oom || !b->p) {
                free(b->p);
                *out = NULL;
                if (out_len)
                        *out_len = 0;
                return -1;
        }
        *out = b->p;
        if (out_len)
                *out_len = b->n;
        return 0;
}

static const char *const ENVELOPE_OPEN = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                         "<soap:Envelope xmlns:soap=\"" NS_SOAP "\">";

static bool one_of(const char *s, const char *const *list)
{
        for (; *list; list++)
                if (strcmp(s, *list) == 0)
                        return true;
        return false;
}

int riv_soap_response(enum riv_contract c, const char *result_code, const char *error_id,
                      const char *result_text, char **out, size_t *out_len)
{
        static const char *const codes[] = {"OK", "INFO", "ERROR", NULL};
        static const char *const ids[] = {"VALIDATION_ERROR", "TECHNICAL_ERROR",
                                          "APPLICATION_ERROR", "REVOKED", NULL};
        *out = NULL;
        if ((c != RIV_REGISTER && c != RIV_REVOKE) || !result_code || !one_of(result_code, codes) ||
            (error_id && !one_of(error_id, ids)))
                return -1;
        const char *name =
            c == RIV_REGISTER ? "RegisterCertificateResponse" : "RevokeCertificateResponse";
        struct sb b = {0};
        sb_str(&b, ENVELOPE_OPEN);
        sb_str(&b, "<soap:Header/><soap:Body><rsp:");
        sb_str(&b, name);
        sb_str(&b, " xmlns:rsp=\"");
        sb_str(&b, c == RIV_REGISTER ? RIV_NS_REGISTER : RIV_NS_REVOKE);
        sb_str(&b, "\" xmlns:core=\"" RIV_NS_CORE "\"><rsp:result><core:resultCode>");
        sb_str(&b, result_code);
        sb_str(&b, "</core:resultCode>");
        if (result_text) {
                sb_str(&b, "<core:resultText>");
                sb_esc(&b, result_text);
                sb_str(&b, "</core:resultText>");
        }
        if (error_id) {
                sb_str(&b, "<core:errorId>");
                sb_str(&b, error_id);
                sb_str(&b, "</core:errorId>");
        }
        sb_str(&b, "</rsp:result></rsp:");
        sb_str(&b, name);
        sb_str(&b, "></soap:Body></soap:Envelope>\n");
        return sb_done(&b, out, out_len);
}

int riv_soap_fault(const char *faultcode, const char *faultstring, char **out, size_t *out_len)
{
        *out = NULL;
        if (!faultcode ||
            (strcmp(faultcode, "soap:Client") != 0 && strcmp(faultcode, "soap:Server") != 0))
                return -1;
        struct sb b = {0};
        sb_str(&b, ENVELOPE_OPEN);
        sb_str(&b, "<soap:Body><soap:Fault><faultcode>");
        sb_str(&b, faultcode);
        sb_str(&b, "</faultcode><faultstring>");
        sb_esc(&b, faultstring ? faultstring : "");
        sb_str(&b, "</faultstring></soap:Fault></soap:Body></soap:Envelope>\n");
        return sb_done(&b, out, out_len);
}

size_t riv_soap_verrs_text(const struct verrs *v, char *buf, size_t buflen)
{
        size_t o = 0;
        if (!buflen)
                return 0;
        buf[0] = '\0';
        for (size_t i = 0; v && i < v->n && o + 1 < buflen; i++) {
                int w =
                    snprintf(buf + o, buflen - o, "%s%s %s: %s", i ? "; " : "", v->items[i].rule,
                             v->items[i].path[0] ? v->items[i].path : "/", v->items[i].message);
                if (w < 0)
                        break;
                o += (size_t)w;
        }
        if (v && v->dropped && o + 1 < buflen) {
                int w = snprintf(buf + o, buflen - o, "; and %zu more", v->dropped);
                if (w > 0)
                        o += (size_t)w;
        }
        if (o >= buflen)
                o = buflen - 1;
        /* never leave half a UTF-8 sequence at a cut */
        while (o > 0 && ((unsigned char)buf[o - 1] & 0x80)) {
                size_t start = o - 1;
                while (start > 0 && ((unsigned char)buf[start] & 0xC0) == 0x80)
                        start--;
                if (utf8_len((const unsigned char *)buf + start) == o - start)
                        break;
                o = start;
        }
        buf[o] = '\0';
        return o;
}

int riv_soap_wrap_request(enum riv_contract c, const char *logical_address, const char *payload,
                          size_t len, char **out, size_t *out_len)
{
        *out = NULL;
        if ((c != RIV_REGISTER && c != RIV_REVOKE) || !payload || !logical_address)
                return -1;
        const char *p = payload, *end = payload + len;
        if (len >= 5 && memcmp(p, "<?xml", 5) == 0) {
                const char *q = memmem(p, len, "?>", 2);
                if (!q)
                        return -1;
                p = q + 2;
        }
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
                p++;
        if (p >= end || *p != '<')
                return -1;
        while (end > p && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\r' ||
                           end[-1] == '\t' || end[-1] == '\0'))
                end--;
        struct sb b = {0};
        sb_str(&b, ENVELOPE_OPEN);
        sb_str(&b, "<soap:Header><itr:LogicalAddress xmlns:itr=\"" NS_ITR "\">");
        sb_esc(&b, logical_address);
        sb_str(&b, "</itr:LogicalAddress></soap:Header><soap:Body>");
        sb_put(&b, p, (size_t)(end - p));
        sb_str(&b, "</soap:Body></soap:Envelope>\n");
        return sb_done(&b, out, out_len);
}

/* Trimmed text of n (may be NULL) into dst. */
static void put(char *dst, size_t size, const xmlNode *n)
{
        if (!size)
                return;
        dst[0] = '\0';
        if (!n)
                return;
        char tmp[4096];
        xmlsafe_text(n, tmp, sizeof tmp);
        const char *s = tmp;
        while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
                s++;
        size_t l = strlen(s);
        while (l && (s[l - 1] == ' ' || s[l - 1] == '\n' || s[l - 1] == '\r' || s[l - 1] == '\t'))
                l--;
        if (l >= size)
                l = size - 1;
        while (l && ((unsigned char)s[l] & 0xC0) == 0x80)
                l--;
        memcpy(dst, s, l);
        dst[l] = '\0';
}

static xmlNode *child_local(const xmlNode *n, const char *name)
{
        for (xmlNode *c = xmlsafe_first_elem(n); c; c = xmlsafe_next_elem(c))
                if (strcmp((const char *)c->name, name) == 0)
                        return c;
        return NULL;
}

/* The Body's element (enveloped) or the root (bare). */
static xmlNode *payload_elem(xmlDocPtr doc)
{
        xmlNode *root = xmlDocGetRootElement(doc);
        if (!xmlsafe_is(root, NS_SOAP, "Envelope"))
                return root;
        xmlNode *body = xmlsafe_child(root, NS_SOAP, "Body");
        return body ? xmlsafe_first_elem(body) : NULL;
}

/* With ps (a pooled parser) when given, else a fresh parser context. */
static xmlDocPtr parse_with(struct xmlsafe_parser *ps, const char *body, size_t len)
{
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, XML_MAX_DOC_BYTES_DEFAULT);
        xmlDocPtr doc = NULL;
        char err[256];
        enum xmlsafe_err e = ps ? xmlsafe_parse_with(ps, body, len, &lim, &doc, err, sizeof err)
                                : xmlsafe_parse(body, len, &lim, &doc, err, sizeof err);
        return e == XMLSAFE_OK ? doc : NULL;
}

static xmlDocPtr parse(const char *body, size_t len)
{
        return parse_with(NULL, body, len);
}

int riv_soap_parse_result(const char *body, size_t len, char *result_code, size_t rc_len,
                          char *error_id, size_t eid_len, char *result_text, size_t rt_len)
{
        return riv_soap_parse_result_with(NULL, body, len, result_code, rc_len, error_id, eid_len,
                                          result_text, rt_len);
}

int riv_soap_parse_result_with(struct xmlsafe_parser *ps, const char *body, size_t len,
                               char *result_code, size_t rc_len, char *error_id, size_t eid_len,
                               char *result_text, size_t rt_len)
{
        if (rc_len)
                result_code[0] = '\0';
        if (eid_len)
                error_id[0] = '\0';
        if (rt_len)
                result_text[0] = '\0';
        xmlDocPtr doc = parse_with(ps, body, len);
        if (!doc)
                return -1;
        int rc = -1;
        xmlNode *e = payload_elem(doc);
        if (xmlsafe_is(e, NS_SOAP, "Fault")) {
                snprintf(result_code, rc_len, "FAULT");
                put(error_id, eid_len, child_local(e, "faultcode"));
                put(result_text, rt_len, child_local(e, "faultstring"));
                rc = 0;
        } else if (e) {
                xmlNode *result = child_local(e, "result");
                xmlNode *code = result ? child_local(result, "resultCode") : NULL;
                if (code) {
                        put(result_code, rc_len, code);
                        put(error_id, eid_len, child_local(result, "errorId"));
                        put(result_text, rt_len, child_local(result, "resultText"));
                        rc = result_code[0] ? 0 : -1;
                }
        }
        xmlFreeDoc(doc);
        return rc;
}

int riv_soap_request_intyg_id(const char *body, size_t len, enum riv_contract *c, char *id,
                              size_t idlen)
{
        *c = RIV_UNKNOWN;
        if (idlen)
                id[0] = '\0';
        xmlDocPtr doc = parse(body, len);
        if (!doc)
                return -1;
        xmlNode *e = payload_elem(doc);
        const xmlNode *ii = NULL;
        if (xmlsafe_is(e, RIV_NS_REGISTER, "RegisterCertificate")) {
                *c = RIV_REGISTER;
                const xmlNode *intyg = xmlsafe_child(e, RIV_NS_REGISTER, "intyg");
                ii = intyg ? xmlsafe_child(intyg, RIV_NS_CORE, "intygs-id") : NULL;
        } else if (xmlsafe_is(e, RIV_NS_REVOKE, "RevokeCertificate")) {
                *c = RIV_REVOKE;
                ii = xmlsafe_child(e, RIV_NS_REVOKE, "intygs-id");
        }
        int rc = -1;
        if (ii) {
                put(id, idlen, child_local(ii, "extension"));
                rc = idlen && id[0] ? 0 : -1;
        }
        if (rc != 0)
                *c = rc == 0 ? *c : (ii ? *c : RIV_UNKNOWN);
        xmlFreeDoc(doc);
        return rc;
}
