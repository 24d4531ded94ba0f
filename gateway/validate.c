/*
 * validate.c - one request body to a verdict: size -> safe parse -> envelope/contract -> XSD
 * -> patient id and HSA-ids -> FK7804 rules -> extract -> standalone payload.
 * Owns: struct validator (schemas). Threads: validate_request on any pool thread.
 */
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "extract.h"
#include "personid.h"
#include "rules_fk7804.h"
#include "schema.h"
#include "xmlsafe.h"

struct validator {
        struct schema_set *schemas;
        struct xmlsafe_pool *parsers; /* reused parser contexts, one per concurrent request */
};

struct validator *validator_new(const char *schema_dir, char *err, size_t errlen)
{
        xmlsafe_init();
        struct validator *v = calloc(1, sizeof *v);
        if (!v) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        v->parsers = xmlsafe_pool_new();
        if (!v->parsers) {
                snprintf(err, errlen, "out of memory");
                free(v);
                return NULL;
        }
        v->schemas = schema_set_load(schema_dir, err, errlen);
        if (!v->schemas) {
                xmlsafe_pool_free(v->parsers);
                free(v);
                return NULL;
        }
        return v;
}

void validator_free(struct validator *v)
{
        if (!v)
                return;
        schema_set_free(v->schemas);
        xmlsafe_pool_free(v->parsers);
        free(v);
}

const char *validate_status_name(enum validate_status s)
{
        switch (s) {
        case VALIDATE_OK:
                return "ok";
        case VALIDATE_INVALID:
                return "invalid";
        case VALIDATE_FAULT:
                return "fault";
        }
        return "unknown";
}

static int fault(struct validate_result *out, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fault(struct validate_result *out, const char *code, const char *fmt, ...)
{
        out->status = VALIDATE_FAULT;
        snprintf(out->fault_code, sizeof out->fault_code, "%s", code);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->fault, sizeof out->fault, fmt, ap);
        va_end(ap);
        return out->status;
}

/* Trimmed text of n into dst; false if it does not fit. */
static bool text_fits(const xmlNode *n, char *dst, size_t size)
{
        char buf[INTYG_ID_MAX * 2 + 2];
        size_t full = xmlsafe_text(n, buf, sizeof buf);
        if (full >= sizeof buf)
                return false;
        char *s = buf;
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                s++;
        size_t len = strlen(s);
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                       s[len - 1] == '\r'))
                len--;
        if (len >= size)
                return false;
        memcpy(dst, s, len);
        dst[len] = '\0';
        return true;
}

/* Find the request element: a SOAP 1.1 envelope's only Body child, or the root itself. */
static xmlNode *find_request(xmlNode *root, struct validate_result *out)
{
        if (xmlsafe_is(root, NS_SOAP11, "Envelope")) {
                out->had_envelope = true;
                xmlNode *header = xmlsafe_child(root, NS_SOAP11, "Header");
                xmlNode *body = xmlsafe_child(root, NS_SOAP11, "Body");
                if (header) {
                        xmlNode *la = xmlsafe_child(header, NS_ITR, "LogicalAddress");
                        if (la &&
                            !text_fits(la, out->logical_address, sizeof out->logical_address)) {
                                fault(out, "soap_bad_header",
                                      "the LogicalAddress header is longer than %d characters",
                                      HSA_ID_MAX);
                                return NULL;
                        }
                }
                if (!body) {
                        fault(out, "soap_no_body", "the SOAP envelope has no Body");
                        return NULL;
                }
                xmlNode *req = xmlsafe_first_elem(body);
                if (!req) {
                        fault(out, "soap_empty_body", "the SOAP Body is empty");
                        return NULL;
                }
                if (xmlsafe_next_elem(req)) {
                        fault(out, "soap_body_count",
                              "the SOAP Body must hold exactly one element");
                        return NULL;
                }
                return req;
        }
        if (strcmp((const char *)root->name, "Envelope") == 0) {
                if (strcmp(xmlsafe_ns(root), NS_SOAP12) == 0)
                        fault(out, "soap_version",
                              "SOAP 1.2 is not supported: RIV-TA BP 2.1 uses SOAP 1.1");
                else
                        fault(out, "soap_not_envelope",
                              "Envelope is not in the SOAP 1.1 namespace " NS_SOAP11);
                return NULL;
        }
        return root;
}

static void check_hsa(struct verrs *errs, const xmlNode *ii, const xmlNode *top, const char *what)
{
        if (!ii)
                return;
        char root[64] = "", ext[HSA_ID_MAX + 2] = "";
        const xmlNode *r = xmlsafe_child(ii, NS_TP, "root");
        const xmlNode *e = xmlsafe_child(ii, NS_TP, "extension");
        bool root_ok = r && text_fits(r, root, sizeof root);
        bool fits = e && text_fits(e, ext, sizeof ext);
        enum hsaid_err he = !root_ok ? HSAID_ROOT
                            : !e     ? HSAID_EMPTY
                            : !fits  ? HSAID_TOO_LONG
                                     : hsaid_check(root, ext);
        if (he == HSAID_OK)
                return;
        char path[160];
        xmlsafe_path(ii, top, path, sizeof path);
        static const char *const text[] = {
            [HSAID_ROOT] = "the root must be " HSAID_ROOT_OID,
            [HSAID_EMPTY] = "the extension must not be empty",
            [HSAID_TOO_LONG] = "the extension is longer than the limit",
            [HSAID_CHARS] = "the extension must be printable ASCII without surrounding "
                            "spaces",
        };
        verrs_add(errs, "hsa-id", path, "%s HSA-id (%s): %s", what, hsaid_err_name(he), text[he]);
}

static void check_staff(struct verrs *errs, const xmlNode *hp, const xmlNode *top)
{
        if (!hp)
                return;
        check_hsa(errs, xmlsafe_child(hp, NS_GN, "personal-id"), top, "the author's");
        const xmlNode *enhet = xmlsafe_child(hp, NS_GN, "enhet");
        if (!enhet)
                return;
        check_hsa(errs, xmlsafe_child(enhet, NS_GN, "enhets-id"), top, "the unit's");
        const xmlNode *vg = xmlsafe_child(enhet, NS_GN, "vardgivare");
        if (vg)
                check_hsa(errs, xmlsafe_child(vg, NS_GN, "vardgivare-id"), top,
                          "the care provider's");
}

static void check_person(struct verrs *errs, const xmlNode *pid, const xmlNode *top, bool strict)
{
        char root[32] = "", ext[16] = "";
        enum personid_err e = PERSONID_FORMAT;
        if (pid && text_fits(xmlsafe_child(pid, NS_TP, "root"), root, sizeof root) &&
            text_fits(xmlsafe_child(pid, NS_TP, "extension"), ext, sizeof ext))
                e = personid_check(root, ext, NULL);
        explicit_bzero(ext, sizeof ext);
        if (e == PERSONID_OK)
                return;
        char path[160]; /* only on failure: paths cost a sibling walk per level */
        xmlsafe_path(pid ? pid : top, top, path, sizeof path);
        if (e == PERSONID_CHECKSUM && !strict)
                verrs_warn(errs, "person-id", path, "%s", personid_err_text(e));
        else
                verrs_add(errs, "person-id", path, "%s", personid_err_text(e));
}

static void check_intyg_id(struct verrs *errs, const xmlNode *ii, const xmlNode *top)
{
        char id[INTYG_ID_MAX + 1], root[HSA_ID_MAX + 1];
        char path[160];
        if (!ii)
                return;
        const xmlNode *e = xmlsafe_child(ii, NS_TP, "extension");
        const xmlNode *r = xmlsafe_child(ii, NS_TP, "root");
        bool id_ok = e && text_fits(e, id, sizeof id) && id[0];
        bool root_ok = r && text_fits(r, root, sizeof root);
        if (id_ok && root_ok)
                return;
        xmlsafe_path(ii, top, path, sizeof path);
        if (!id_ok)
                verrs_add(errs, "intyg-id", path,
                          "the certificate id (intygs-id/extension) must be 1 to %d characters",
                          INTYG_ID_MAX);
        if (!root_ok)
                verrs_add(errs, "intyg-id", path,
                          "the certificate id root (intygs-id/root) must be at most %d characters",
                          HSA_ID_MAX);
}

/* Skip one markup construct that starts at p ('<'); returns the byte after it, or NULL. The
 * document is already known to be well-formed, so this only has to find ends, not judge. */
static const char *skip_markup(const char *p, const char *end, int *depth_change, bool *is_start)
{
        *depth_change = 0;
        *is_start = false;
        size_t left = (size_t)(end - p);
        if (left >= 4 && !memcmp(p, "<!--", 4)) {
                const char *e = memmem(p + 4, left - 4, "-->", 3);
                return e ? e + 3 : NULL;
        }
        if (left >= 9 && !memcmp(p, "<![CDATA[", 9)) {
                const char *e = memmem(p + 9, left - 9, "]]>", 3);
                return e ? e + 3 : NULL;
        }
        if (left >= 2 && p[1] == '?') {
                const char *e = memmem(p + 2, left - 2, "?>", 2);
                return e ? e + 2 : NULL;
        }
        if (left >= 2 && p[1] == '/') {
                const char *e = memchr(p, '>', left);
                *depth_change = -1;
                return e ? e + 1 : NULL;
        }
        /* A start tag: '>' may sit inside a quoted attribute value. */
        char q = 0;
        for (const char *c = p + 1; c < end; c++) {
                if (q) {
                        if (*c == q)
                                q = 0;
                } else if (*c == '"' || *c == '\'') {
                        q = *c;
                } else if (*c == '>') {
                        *is_start = true;
                        *depth_change = c[-1] == '/' ? 0 : 1;
                        return c + 1;
                }
        }
        return NULL;
}

/* Byte range of the first element at depth 3 (Envelope > Body > request) in the text. */
static int find_request_bytes(const char *body, size_t len, const char **from, const char **to)
{
        const char *p = body, *end = body + len;
        int depth = 0;
        bool in_body = false;
        *from = NULL;
        while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
                int dc;
                bool start;
                const char *next = skip_markup(p, end, &dc, &start);
                if (!next)
                        return -1;
                if (start && depth == 1) {
                        const char *n = p + 1, *colon = NULL, *ne = n;
                        while (ne < end && !strchr(" \t\r\n/>", *ne)) {
                                if (*ne == ':')
                                        colon = ne;
                                ne++;
                        }
                        const char *local = colon ? colon + 1 : n;
                        in_body = (size_t)(ne - local) == 4 && !memcmp(local, "Body", 4);
                }
                if (start && depth == 2 && in_body && !*from)
                        *from = p;
                depth += dc;
                if (*from && depth == 2) {
                        *to = next;
                        return 0;
                }
                p = next;
        }
        return -1;
}

static bool sb_add(char **buf, size_t *n, size_t *cap, const char *s, size_t len)
{
        if (*n + len + 1 > *cap) {
                size_t nc = (*n + len + 1) * 2;
                char *nb = realloc(*buf, nc);
                if (!nb)
                        return false;
                *buf = nb;
                *cap = nc;
        }
        memcpy(*buf + *n, s, len);
        *n += len;
        (*buf)[*n] = '\0';
        return true;
}

static bool sb_add_attr_esc(char **buf, size_t *n, size_t *cap, const char *s)
{
        for (; *s; s++) {
                const char *r = *s == '&'   ? "&amp;"
                                : *s == '<' ? "&lt;"
                                : *s == '"' ? "&quot;"
                                            : NULL;
                if (!(r ? sb_add(buf, n, cap, r, strlen(r)) : sb_add(buf, n, cap, s, 1)))
                        return false;
        }
        return true;
}

/* The enveloped request's own bytes, with the namespace declarations it inherits from the
 * envelope added to its start tag: no copy of the tree, no serialisation. */
static int slice_payload(xmlNode *req, const char *body, size_t len, struct validate_result *out)
{
        const char *from, *to;
        if (find_request_bytes(body, len, &from, &to) != 0)
                return -1;
        const char *name_end = from + 1;
        while (name_end < to && !strchr(" \t\r\n/>", *name_end))
                name_end++;
        static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        size_t cap = sizeof decl + (size_t)(to - from) + 512, n = 0;
        char *buf = malloc(cap);
        if (!buf)
                return -1;
        bool ok = sb_add(&buf, &n, &cap, decl, sizeof decl - 1) &&
                  sb_add(&buf, &n, &cap, from, (size_t)(name_end - from));
        /* In-scope declarations from the ancestors that the element does not redeclare. */
        const xmlNs *seen[64];
        size_t n_seen = 0;
        for (const xmlNs *d = req->nsDef; d && n_seen < 64; d = d->next)
                seen[n_seen++] = d;
        for (const xmlNode *a = req->parent; ok && a && a->type == XML_ELEMENT_NODE;
             a = a->parent) {
                for (const xmlNs *d = a->nsDef; ok && d; d = d->next) {
                        bool shadowed = false;
                        for (size_t i = 0; i < n_seen && !shadowed; i++)
                                shadowed = (!d->prefix && !seen[i]->prefix) ||
                                           (d->prefix && seen[i]->prefix &&
                                            xmlStrEqual(d->prefix, seen[i]->prefix));
                        if (shadowed)
                                continue;
                        if (n_seen == 64) {
                                ok = false;
                                break;
                        }
                        seen[n_seen++] = d;
                        ok = sb_add(&buf, &n, &cap, " xmlns", 6) &&
                             (!d->prefix || (sb_add(&buf, &n, &cap, ":", 1) &&
                                             sb_add(&buf, &n, &cap, (const char *)d->prefix,
                                                    strlen((const char *)d->prefix)))) &&
                             sb_add(&buf, &n, &cap, "=\"", 2) &&
                             sb_add_attr_esc(&buf, &n, &cap, (const char *)d->href) &&
                             sb_add(&buf, &n, &cap, "\"", 1);
                }
        }
        ok = ok && sb_add(&buf, &n, &cap, name_end, (size_t)(to - name_end)) &&
             sb_add(&buf, &n, &cap, "\n", 1);
        if (!ok) {
                free(buf);
                return -1;
        }
        out->payload = buf;
        out->payload_len = n;
        return 0;
}

/* The request as a standalone document. A bare request is its own payload, byte for byte
 * (cheapest, and a signature over it stays intact); an enveloped one is copied out with the
 * namespaces it uses declared on its root. */
static int make_payload(xmlNode *req, const char *body, size_t len, struct validate_result *out)
{
        if (!out->had_envelope) {
                out->payload = malloc(len + 1);
                if (!out->payload)
                        return -1;
                memcpy(out->payload, body, len);
                out->payload[len] = '\0';
                out->payload_len = len;
                return 0;
        }
        if (slice_payload(req, body, len, out) == 0)
                return 0;
        xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
        if (!doc)
                return -1;
        xmlNode *copy = xmlDocCopyNode(req, doc, 1);
        if (!copy) {
                xmlFreeDoc(doc);
                return -1;
        }
        xmlDocSetRootElement(doc, copy);
        xmlReconciliateNs(doc, copy);
        xmlChar *mem = NULL;
        int size = 0;
        xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
        xmlFreeDoc(doc);
        if (!mem || size <= 0) {
                xmlFree(mem);
                return -1;
        }
        out->payload = malloc((size_t)size + 1);
        if (!out->payload) {
                xmlFree(mem);
                return -1;
        }
        memcpy(out->payload, mem, (size_t)size);
        out->payload[size] = '\0';
        out->payload_len = (size_t)size;
        xmlFree(mem);
        return 0;
}

/* Clear a result for a new request. Not a memset of the whole struct: its error lists are
 * about 18 kB, and every reader stops at n / n_warnings, so only the counts are zeroed; every
 * other field is set here and then only written, never read before it is. */
static void result_reset(struct validate_result *out)
{
        out->status = VALIDATE_OK;
        out->contract = RIV_UNKNOWN;
        out->had_envelope = false;
        out->logical_address[0] = '\0';
        out->fault[0] = '\0';
        out->fault_code[0] = '\0';
        memset(&out->intyg, 0, sizeof out->intyg);
        out->errs.n = 0;
        out->errs.dropped = 0;
        out->errs.warnings_only = false;
        out->errs.n_warnings = 0;
        out->payload = NULL;
        out->payload_len = 0;
}

/* Everything after the parse; the caller frees doc. */
static int validate_tree(const struct validator *v, xmlDocPtr doc, const char *body, size_t len,
                         bool strict, struct validate_result *out)
{
        xmlNode *req = find_request(xmlDocGetRootElement(doc), out);
        if (!req)
                return out->status;
        enum schema_kind kind;
        if (xmlsafe_is(req, NS_RC, "RegisterCertificate")) {
                out->contract = RIV_REGISTER;
                kind = SCHEMA_REGISTER;
        } else if (xmlsafe_is(req, NS_RV, "RevokeCertificate")) {
                out->contract = RIV_REVOKE;
                kind = SCHEMA_REVOKE;
        } else {
                return fault(out, "unknown_contract",
                             "unknown service contract: %.60s in namespace %.120s (expected "
                             "RegisterCertificate v3 or RevokeCertificate v2)",
                             (const char *)req->name, xmlsafe_ns(req));
        }

        int xsd = v ? schema_validate(v->schemas, kind, req, req, &out->errs) : -1;
        if (!v)
                verrs_add(&out->errs, "xsd", "", "internal: no validator");
        if (xsd != 0) {
                extract_id(req, &out->intyg);
                out->status = VALIDATE_INVALID;
                return out->status;
        }

        if (out->contract == RIV_REGISTER) {
                const xmlNode *intyg = xmlsafe_child(req, NS_RC, "intyg");
                const xmlNode *patient = xmlsafe_child(intyg, NS_GN, "patient");
                check_intyg_id(&out->errs, xmlsafe_child(intyg, NS_GN, "intygs-id"), req);
                check_person(&out->errs,
                             patient ? xmlsafe_child(patient, NS_GN, "person-id") : NULL, req,
                             strict);
                check_staff(&out->errs, xmlsafe_child(intyg, NS_GN, "skapadAv"), req);
                rules_fk7804_check(req, req, &out->errs);
                extract_register(req, &out->intyg);
        } else {
                check_intyg_id(&out->errs, xmlsafe_child(req, NS_RV, "intygs-id"), req);
                check_person(&out->errs, xmlsafe_child(req, NS_RV, "patientPerson-id"), req,
                             strict);
                check_staff(&out->errs, xmlsafe_child(req, NS_RV, "skickatAv"), req);
                extract_revoke(req, &out->intyg);
        }

        if (out->errs.n > 0 || out->errs.dropped > 0) {
                out->status = VALIDATE_INVALID;
                intyg_wipe(&out->intyg);
                return out->status;
        }
        out->errs.warnings_only = out->errs.n_warnings > 0;
        if (make_payload(req, body, len, out) != 0) {
                intyg_wipe(&out->intyg);
                return fault(out, "internal", "internal: cannot serialise the request");
        }
        out->status = VALIDATE_OK;
        return out->status;
}

int validate_request(const struct validator *v, const char *body, size_t len,
                     const struct validate_opts *opts, struct validate_result *out)
{
        result_reset(out);
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, opts ? opts->max_bytes : 0);
        const bool strict = opts ? opts->person_id_strict : true;
        char err[256];
        xmlDocPtr doc = NULL;
        /* A pooled parser: its context and dictionary outlive the request; the document is
         * freed before it goes back (the document shares the dictionary). */
        struct xmlsafe_parser *ps = v ? xmlsafe_parser_take(v->parsers) : NULL;
        enum xmlsafe_err xe = v ? xmlsafe_parse_with(ps, body, len, &lim, &doc, err, sizeof err)
                                : xmlsafe_parse(body, len, &lim, &doc, err, sizeof err);
        int rc = xe != XMLSAFE_OK ? fault(out, xmlsafe_err_name(xe), "%s", err)
                                  : validate_tree(v, doc, body, len, strict, out);
        xmlFreeDoc(doc);
        xmlsafe_parser_put(v ? v->parsers : NULL, ps);
        return rc;
}

char *validate_result_take_payload(struct validate_result *r, size_t *len)
{
        char *p = r->payload;
        if (len)
                *len = r->payload_len;
        r->payload = NULL;
        r->payload_len = 0;
        return p;
}

void validate_result_clear(struct validate_result *r)
{
        if (!r)
                return;
        free(r->payload);
        r->payload = NULL;
        r->payload_len = 0;
        intyg_wipe(&r->intyg);
}
