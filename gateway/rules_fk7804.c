/*
 * rules_fk7804.c - FK7804 (LISJP) business rules from lisjp.v1.sch and lisjp.v2.sch, as a
 * walk over the intyg's svar/delsvar (collected once into arrays; no XPath engine).
 * Owns: nothing beyond one call (a per-call array of answers). Any thread.
 *
 * Where upstream's Schematron has a defect, the evident intent is implemented and the spot is
 * marked "QUIRK:" below; the list is in the validation section of the README.
 */
#include "rules_fk7804.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmlsafe.h"

/* ---- the document, collected once ---- */

struct dsv {
        const xmlNode *node;
        const char *id; /* "" when missing */
};

struct sv {
        const xmlNode *node;
        const char *id;
        long num; /* numeric id, -1 if not all digits */
        const xmlNode *instans;
        struct dsv *d;
        size_t nd;
};

struct ctx {
        const xmlNode *top;
        const xmlNode *intyg;
        struct verrs *errs;
        int added;
        enum fk7804_version ver;
        struct sv *s;
        size_t ns;
};

#define CODE_MAX 128 /* codes longer than this are in no code list */

static void err_at(struct ctx *c, const char *rule, const xmlNode *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_at(struct ctx *c, const char *rule, const xmlNode *n, const char *fmt, ...)
{
        char path[160];
        char msg[256];
        xmlsafe_path(n, c->top, path, sizeof path);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        verrs_add(c->errs, rule, path, "%s", msg);
        c->added++;
}

/* normalize-space() of n's text children into buf; returns the full normalized length. */
static size_t norm_text(const xmlNode *n, char *buf, size_t buflen)
{
        size_t o = 0, full = 0;
        bool pending_space = false;
        if (buflen)
                buf[0] = '\0';
        for (const xmlNode *t = n ? n->children : NULL; t; t = t->next) {
                if ((t->type != XML_TEXT_NODE && t->type != XML_CDATA_SECTION_NODE) || !t->content)
                        continue;
                for (const unsigned char *p = t->content; *p; p++) {
                        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
                                pending_space = full > 0;
                                continue;
                        }
                        if (pending_space) {
                                if (o + 1 < buflen)
                                        buf[o++] = ' ';
                                full++;
                                pending_space = false;
                        }
                        if (o + 1 < buflen)
                                buf[o++] = (char)*p;
                        full++;
                }
        }
        if (buflen)
                buf[o < buflen ? o : buflen - 1] = '\0';
        return full;
}

/* Characters (UTF-8 code points) of normalize-space(text). */
static size_t norm_chars(const xmlNode *n)
{
        size_t chars = 0;
        bool pending_space = false;
        for (const xmlNode *t = n ? n->children : NULL; t; t = t->next) {
                if ((t->type != XML_TEXT_NODE && t->type != XML_CDATA_SECTION_NODE) || !t->content)
                        continue;
                for (const unsigned char *p = t->content; *p; p++) {
                        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
                                pending_space = chars > 0;
                                continue;
                        }
                        if (pending_space) {
                                chars++;
                                pending_space = false;
                        }
                        if ((*p & 0xC0) != 0x80)
                                chars++;
                }
        }
        return chars;
}

/* Normalized text into a small buffer; false if longer than the buffer (then never equal to
 * any code or keyword). */
static bool norm_small(const xmlNode *n, char *buf, size_t buflen)
{
        return norm_text(n, buf, buflen) < buflen;
}

static bool in_list(const char *s, const char *const *list)
{
        for (; *list; list++)
                if (strcmp(s, *list) == 0)
                        return true;
        return false;
}

static size_t count_svar(const struct ctx *c, const char *id)
{
        size_t k = 0;
        for (size_t i = 0; i < c->ns; i++)
                k += strcmp(c->s[i].id, id) == 0;
        return k;
}

static size_t count_d(const struct sv *s, const char *id)
{
        size_t k = 0;
        for (size_t i = 0; i < s->nd; i++)
                k += strcmp(s->d[i].id, id) == 0;
        return k;
}

static const xmlNode *find_d(const struct sv *s, const char *id)
{
        for (size_t i = 0; i < s->nd; i++)
                if (strcmp(s->d[i].id, id) == 0)
                        return s->d[i].node;
        return NULL;
}

/* First tp:cv/tp:code of a delsvar, normalized; false if none (or too long). */
static bool cv_code(const xmlNode *d, char *buf, size_t buflen, const xmlNode **code_node)
{
        const xmlNode *cv = xmlsafe_child(d, NS_TP, "cv");
        const xmlNode *code = cv ? xmlsafe_child(cv, NS_TP, "code") : NULL;
        if (code_node)
                *code_node = code;
        buf[0] = '\0';
        return code && norm_small(code, buf, buflen);
}

static bool cv_system(const xmlNode *d, char *buf, size_t buflen)
{
        const xmlNode *cv = xmlsafe_child(d, NS_TP, "cv");
        const xmlNode *cs = cv ? xmlsafe_child(cv, NS_TP, "codeSystem") : NULL;
        buf[0] = '\0';
        return cs && norm_small(cs, buf, buflen);
}

/* matches(normalize-space(.), '1|true'): unanchored, as upstream writes it. */
static bool truthy(const xmlNode *d)
{
        char v[64];
        if (!norm_small(d, v, sizeof v))
                return false;
        return strchr(v, '1') || strstr(v, "true");
}

static bool falsy(const xmlNode *d)
{
        char v[64];
        if (!norm_small(d, v, sizeof v))
                return false;
        return strchr(v, '0') || strstr(v, "false");
}

/* ---- abstract rules (reported under the pattern that extends them) ---- */

static void chk_text(struct ctx *c, const char *rule, const xmlNode *d, const char *id)
{
        if (xmlsafe_has_elem_child(d))
                err_at(c, rule, d, "%s: the value must be plain text, not inside an element", id);
        /* normalize-space(text()): the first text node, as XPath 2.0 evaluates it */
        const xmlNode *t = d->children;
        while (t && t->type != XML_TEXT_NODE && t->type != XML_CDATA_SECTION_NODE)
                t = t->next;
        bool has = false;
        for (const unsigned char *p = t && t->content ? t->content : (const unsigned char *)"";
             *p && !has; p++)
                has = !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r');
        if (!has)
                err_at(c, rule, d, "%s: the text must not be empty", id);
}

static void chk_bool(struct ctx *c, const char *rule, const xmlNode *d, const char *id)
{
        if (xmlsafe_has_elem_child(d))
                err_at(c, rule, d, "%s: a boolean must be plain text, not inside an element", id);
        char v[16];
        if (!norm_small(d, v, sizeof v) || !(strcmp(v, "true") == 0 || strcmp(v, "false") == 0 ||
                                             strcmp(v, "1") == 0 || strcmp(v, "0") == 0))
                err_at(c, rule, d, "%s: must be a boolean: true, false, 1 or 0", id);
}

static bool is_leap(long y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "castable as xs:date": [-]YYYY-MM-DD[Z|(+|-)hh:mm] with a real calendar date. */
static bool xs_date(const char *s)
{
        const char *p = s;
        if (*p == '-')
                p++;
        size_t yd = strspn(p, "0123456789");
        if (yd < 4 || (yd > 4 && p[0] == '0'))
                return false;
        long y = strtol(p, NULL, 10);
        p += yd;
        if (y == 0 || p[0] != '-' || !isdigit((unsigned char)p[1]) ||
            !isdigit((unsigned char)p[2]) || p[3] != '-' || !isdigit((unsigned char)p[4]) ||
            !isdigit((unsigned char)p[5]))
                return false;
        int m = (p[1] - '0') * 10 + (p[2] - '0');
        int d = (p[4] - '0') * 10 + (p[5] - '0');
        static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (m < 1 || m > 12 || d < 1 || d > (m == 2 && is_leap(y) ? 29 : dim[m - 1]))
                return false;
        p += 6;
        if (*p == '\0' || strcmp(p, "Z") == 0)
                return true;
        if ((p[0] == '+' || p[0] == '-') && isdigit((unsigned char)p[1]) &&
            isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
            isdigit((unsigned char)p[5]) && p[6] == '\0') {
                int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
                return mm < 60 && (hh < 14 || (hh == 14 && mm == 0));
        }
        return false;
}

/* matches(., '^\d{4}-\d\d-\d\d') on the raw (not normalized) value. */
static bool starts_ymd(const xmlNode *n)
{
        char raw[16];
        xmlsafe_text(n, raw, sizeof raw);
        for (int i = 0; i < 10; i++) {
                bool dash = i == 4 || i == 7;
                if (dash ? raw[i] != '-' : !isdigit((unsigned char)raw[i]))
                        return false;
        }
        return true;
}

static void chk_date(struct ctx *c, const char *rule, const xmlNode *d, const char *id)
{
        if (xmlsafe_has_elem_child(d))
                err_at(c, rule, d, "%s: a date must be plain text, not inside an element", id);
        char v[40];
        if (!norm_small(d, v, sizeof v) || !xs_date(v))
                err_at(c, rule, d, "%s: must be a valid date", id);
        if (!starts_ymd(d))
                err_at(c, rule, d, "%s: the date must be written YYYY-MM-DD", id);
}

/* Returns the cv element when the structure is right enough to read a code. */
static void chk_cv(struct ctx *c, const char *rule, const xmlNode *d, const char *id)
{
        size_t n_cv = 0, n_cs = 0, n_code = 0, n_dn = 0;
        bool cs_nested = false, code_nested = false;
        for (const xmlNode *cv = xmlsafe_first_elem(d); cv; cv = xmlsafe_next_elem(cv)) {
                if (!xmlsafe_is(cv, NS_TP, "cv"))
                        continue;
                n_cv++;
                for (const xmlNode *e = xmlsafe_first_elem(cv); e; e = xmlsafe_next_elem(e)) {
                        if (xmlsafe_is(e, NS_TP, "codeSystem")) {
                                n_cs++;
                                cs_nested |= xmlsafe_has_elem_child(e);
                        } else if (xmlsafe_is(e, NS_TP, "code")) {
                                n_code++;
                                code_nested |= xmlsafe_has_elem_child(e);
                        } else if (xmlsafe_is(e, NS_TP, "displayName")) {
                                n_dn++;
                        }
                }
        }
        if (n_cv != 1)
                err_at(c, rule, d, "%s: a coded value must have exactly one cv element", id);
        if (n_cs != 1)
                err_at(c, rule, d, "%s: the coded value must have exactly one codeSystem", id);
        if (cs_nested)
                err_at(c, rule, d, "%s: codeSystem must be plain text", id);
        if (n_code != 1)
                err_at(c, rule, d, "%s: the coded value must have exactly one code", id);
        if (code_nested)
                err_at(c, rule, d, "%s: code must be plain text", id);
        if (n_dn > 1)
                err_at(c, rule, d, "%s: at most one displayName", id);
}

/* Code system (exact string value, as `tp:cv/tp:codeSystem = 'X'`) and code list. */
static void chk_codes(struct ctx *c, const char *rule, const xmlNode *d, const char *id,
                      const char *system, const char *const *codes)
{
        const xmlNode *cv = xmlsafe_child(d, NS_TP, "cv");
        const xmlNode *cs = cv ? xmlsafe_child(cv, NS_TP, "codeSystem") : NULL;
        char raw[64];
        bool ok = false;
        for (const xmlNode *e = cv ? xmlsafe_first_elem(cv) : NULL; e && !ok;
             e = xmlsafe_next_elem(e))
                if (xmlsafe_is(e, NS_TP, "codeSystem"))
                        ok = xmlsafe_text(e, raw, sizeof raw) < sizeof raw &&
                             strcmp(raw, system) == 0;
        (void)cs;
        if (!ok)
                err_at(c, rule, d, "%s: codeSystem must be %s", id, system);
        char code[CODE_MAX];
        if (!cv_code(d, code, sizeof code, NULL) || !in_list(code, codes)) {
                char allowed[200];
                size_t o = 0;
                allowed[0] = '\0';
                for (const char *const *p = codes; *p && o + 1 < sizeof allowed; p++) {
                        int w = snprintf(allowed + o, sizeof allowed - o, "%s%s",
                                         p == codes ? "" : ", ", *p);
                        if (w < 0)
                                break;
                        o += (size_t)w;
                }
                err_at(c, rule, d, "%s: the code must be one of %s", id, allowed);
        }
}

static void chk_period(struct ctx *c, const char *rule, const xmlNode *d, const char *id)
{
        const xmlNode *p = xmlsafe_child(d, NS_TP, "datePeriod");
        if (!p) {
                err_at(c, rule, d, "%s: a period must be inside a datePeriod element", id);
                return;
        }
        const xmlNode *s = xmlsafe_child(p, NS_TP, "start");
        const xmlNode *e = xmlsafe_child(p, NS_TP, "end");
        const xmlNode *ends[2] = {s, e};
        const char *names[2] = {"start", "end"};
        char v[2][40];
        for (int i = 0; i < 2; i++) {
                v[i][0] = '\0';
                if (ends[i] && xmlsafe_has_elem_child(ends[i]))
                        err_at(c, rule, d, "%s: the period %s must be plain text", id, names[i]);
                if (!ends[i] || !norm_small(ends[i], v[i], sizeof v[i]) || !xs_date(v[i]))
                        err_at(c, rule, d, "%s: the period %s must be a valid date", id, names[i]);
                if (!ends[i] || !starts_ymd(ends[i]))
                        err_at(c, rule, d, "%s: the period %s must be written YYYY-MM-DD", id,
                               names[i]);
        }
        if (strcmp(v[0], v[1]) > 0)
                err_at(c, rule, d, "%s: the period must not start after it ends", id);
}

/* q6.2 regex of lisjp.v1.sch, written out. */
bool fk7804_diagnosis_code_ok(const char *s)
{
        size_t n = strlen(s);
        if (n < 3)
                return false;
        for (size_t i = 1; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-')
                        return false;
        if (!isascii((unsigned char)s[0]) || !isalpha((unsigned char)s[0]))
                return false;
        char l = (char)toupper((unsigned char)s[0]);
        bool d1 = isdigit((unsigned char)s[1]), d2 = isdigit((unsigned char)s[2]);
        if (l == 'F')
                return d1 && d2 && n >= 4;
        if (l == 'Z') {
                if (!d1 || !d2)
                        return false;
                if (s[1] == '7' && s[2] == '3')
                        return n >= 4;
                return true;
        }
        return d1 && d2;
}

static const char *const V1_DIAG_SYSTEMS[] = {"1.2.752.116.1.1.1.1.3", "1.2.752.116.1.3.1.4.1",
                                              NULL};
static const char *const V2_DIAG_SYSTEMS[] = {"1.2.752.116.1.1.1", "1.2.752.116.1.1.1.1.3",
                                              "1.2.752.116.1.1.1.1.8", NULL};

static void chk_diagnosis(struct ctx *c, const char *rule, const xmlNode *d, const char *id)
{
        chk_cv(c, rule, d, id);
        const char *const *systems = c->ver == FK7804_V2 ? V2_DIAG_SYSTEMS : V1_DIAG_SYSTEMS;
        char cs[64];
        /* QUIRK: upstream matches() the code system against an unanchored regex with
         * unescaped dots; the evident intent is one of the listed OIDs exactly. */
        if (!cv_system(d, cs, sizeof cs) || !in_list(cs, systems))
                err_at(c, rule, d, "%s: the diagnosis code system must be the OID of %s", id,
                       c->ver == FK7804_V2 ? "ICD-10-SE (1.2.752.116.1.1.1)"
                                           : "ICD-10-SE (1.2.752.116.1.1.1.1.3) or KSH97-P "
                                             "(1.2.752.116.1.3.1.4.1)");
        char code[CODE_MAX];
        bool have = cv_code(d, code, sizeof code, NULL);
        if (!have || !fk7804_diagnosis_code_ok(code))
                err_at(c, rule, d,
                       "%s: a diagnosis code is a letter and two digits, then letters, digits or "
                       "'-'; codes starting with F or Z73 need at least 4 characters",
                       id);
        if (!have || strlen(code) > 5)
                err_at(c, rule, d, "%s: a diagnosis code is at most 5 characters", id);
}

/* ---- code lists ---- */

static const char *const C_GRUND_V1[] = {"UNDERSOKNING", "TELEFONKONTAKT", "JOURNALUPPGIFTER",
                                         "ANNAT", NULL};
static const char *const C_GRUND_V2[] = {"FYSISKUNDERSOKNING",
                                         "DIGITALUNDERSOKNING",
                                         "TELEFONKONTAKT",
                                         "JOURNALUPPGIFTER",
                                         "ANNAT",
                                         NULL};
static const char *const C_SYSS[] = {"NUVARANDE_ARBETE", "ARBETSSOKANDE", "FORALDRALEDIG",
                                     "STUDIER", NULL};
static const char *const C_GRAD[] = {"HELT_NEDSATT", "TRE_FJARDEDEL", "HALFTEN", "EN_FJARDEDEL",
                                     NULL};
static const char *const C_PARTIAL[] = {"TRE_FJARDEDEL", "HALFTEN", "EN_FJARDEDEL", NULL};
static const char *const C_PROGNOS_V1[] = {"STOR_SANNOLIKHET", "SANNOLIKT_INTE", "PROGNOS_OKLAR",
                                           "ATER_X_ANTAL_DGR", NULL};
static const char *const C_PROGNOS_V2[] = {"STOR_SANNOLIKHET", "ATER_X_ANTAL_MANADER",
                                           "SANNOLIKT_INTE", "PROGNOS_OKLAR", NULL};
static const char *const C_DAGAR[] = {
    "TRETTIO_DGR", "SEXTIO_DGR", "NITTIO_DGR", "HUNDRAATTIO_DAGAR", "TREHUNDRASEXTIOFEM_DAGAR",
    NULL};
static const char *const C_ATGARD[] = {"EJ_AKTUELLT",      "ARBETSTRANING",     "ARBETSANPASSNING",
                                       "SOKA_NYTT_ARBETE", "BESOK_ARBETSPLATS", "ERGONOMISK",
                                       "HJALPMEDEL",       "KONFLIKTHANTERING", "KONTAKT_FHV",
                                       "OMFORDELNING",     "OVRIGA_ATGARDER",   NULL};

/* ---- per-delsvar value rules, by delsvar id (as the //gn:delsvar[@id=..] contexts) ---- */

enum vt { VT_TEXT, VT_BOOL, VT_DATE, VT_PERIOD, VT_CV, VT_DIAG, VT_INT_1_99 };

struct drule {
        const char *id;
        const char *rule;
        enum vt type;
        const char *system;
        const char *const *codes;
        size_t max_chars; /* 0: no limit */
};

static const struct drule D_V1[] = {
    {"1.1", "q1.1", VT_CV, "KV_FKMU_0001", C_GRUND_V1, 0},
    {"1.2", "q1.2", VT_DATE, NULL, NULL, 0},
    {"1.3", "q1.3", VT_TEXT, NULL, NULL, 0},
    {"27.1", "q27.1", VT_BOOL, NULL, NULL, 0},
    {"28.1", "q28.1", VT_CV, "KV_FKMU_0002", C_SYSS, 0},
    {"29.1", "q29.1", VT_TEXT, NULL, NULL, 0},
    {"6.1", "q6.1", VT_TEXT, NULL, NULL, 0},
    {"6.2", "q6.2", VT_DIAG, NULL, NULL, 0},
    {"6.3", "q6.3", VT_TEXT, NULL, NULL, 0},
    {"6.4", "q6.4", VT_DIAG, NULL, NULL, 0},
    {"6.5", "q6.5", VT_TEXT, NULL, NULL, 0},
    {"6.6", "q6.6", VT_DIAG, NULL, NULL, 0},
    {"35.1", "q35.1", VT_TEXT, NULL, NULL, 0},
    {"17.1", "q17.1", VT_TEXT, NULL, NULL, 0},
    {"19.1", "q19.1", VT_TEXT, NULL, NULL, 0},
    {"20.1", "q20.1", VT_TEXT, NULL, NULL, 0},
    {"32.1", "q32.1", VT_CV, "KV_FKMU_0003", C_GRAD, 0},
    {"32.2", "q32.2", VT_PERIOD, NULL, NULL, 0},
    {"37.1", "q37.1", VT_TEXT, NULL, NULL, 0},
    {"33.1", "q33.1", VT_BOOL, NULL, NULL, 0},
    {"33.2", "q33.2", VT_TEXT, NULL, NULL, 0},
    {"34.1", "q34.1", VT_BOOL, NULL, NULL, 0},
    {"39.1", "q39.1", VT_CV, "KV_FKMU_0006", C_PROGNOS_V1, 0},
    {"39.3", "q39.3", VT_CV, "KV_FKMU_0007", C_DAGAR, 0},
    {"40.1", "q40.1", VT_CV, "KV_FKMU_0004", C_ATGARD, 0},
    {"44.1", "q44.1", VT_TEXT, NULL, NULL, 0},
    {"25.1", "q25.1", VT_TEXT, NULL, NULL, 0},
    {"26.1", "q26.1", VT_BOOL, NULL, NULL, 0},
    {"26.2", "q26.2", VT_TEXT, NULL, NULL, 0},
    {NULL, NULL, VT_TEXT, NULL, NULL, 0},
};

/* lisjp.v2.sch has value rules for 1.1, 1.2, 1.3, 27.1, 28.1, 29.1, 35.1, 17.1; the rest below
 * are the FK7804 v2.0 element rules of WIRE-FORMAT §2.5 (certificate-service), under the id of
 * the v1 pattern that checks the same delsvar. */
static const struct drule D_V2[] = {
    {"1.1", "q1.1", VT_CV, "KV_FKMU_0001", C_GRUND_V2, 0},
    {"1.2", "q1.2", VT_DATE, NULL, NULL, 0},
    {"1.3", "q1.3", VT_TEXT, NULL, NULL, 50},
    {"27.1", "q27.1", VT_BOOL, NULL, NULL, 0},
    {"28.1", "q28.1", VT_CV, "KV_FKMU_0002", C_SYSS, 0},
    {"29.1", "q29.1", VT_TEXT, NULL, NULL, 0},
    {"6.1", "q6.1", VT_TEXT, NULL, NULL, 0},
    {"6.2", "q6.2", VT_DIAG, NULL, NULL, 0},
    {"6.3", "q6.3", VT_TEXT, NULL, NULL, 0},
    {"6.4", "q6.4", VT_DIAG, NULL, NULL, 0},
    {"6.5", "q6.5", VT_TEXT, NULL, NULL, 0},
    {"6.6", "q6.6", VT_DIAG, NULL, NULL, 0},
    {"35.1", "q35.1", VT_TEXT, NULL, NULL, 0},
    {"17.1", "q17.1", VT_TEXT, NULL, NULL, 0},
    {"19.1", "q19.1", VT_TEXT, NULL, NULL, 0},
    {"32.1", "q32.1", VT_CV, "KV_FKMU_0003", C_GRAD, 0},
    {"32.2", "q32.2", VT_PERIOD, NULL, NULL, 0},
    {"37.1", "q37.1", VT_TEXT, NULL, NULL, 0},
    {"33.1", "q33.1", VT_BOOL, NULL, NULL, 0},
    {"33.2", "q33.2", VT_TEXT, NULL, NULL, 0},
    {"34.1", "q34.1", VT_BOOL, NULL, NULL, 0},
    {"39.1", "q39.1", VT_CV, "KV_FKMU_0006", C_PROGNOS_V2, 0},
    {"39.2", "q39.2", VT_TEXT, NULL, NULL, 0},
    {"39.4", "q39.4", VT_INT_1_99, NULL, NULL, 0},
    {"44.1", "q44.1", VT_TEXT, NULL, NULL, 4000},
    {"25.1", "q25.1", VT_TEXT, NULL, NULL, 0},
    {"26.1", "q26.1", VT_BOOL, NULL, NULL, 0},
    {"26.2", "q26.2", VT_TEXT, NULL, NULL, 0},
    {NULL, NULL, VT_TEXT, NULL, NULL, 0},
};

static void chk_int_1_99(struct ctx *c, const char *rule, const xmlNode *d, const char *id)
{
        char v[16];
        bool ok = !xmlsafe_has_elem_child(d) && norm_small(d, v, sizeof v) && v[0] &&
                  strspn(v, "0123456789") == strlen(v) && strlen(v) <= 2 && atoi(v) >= 1;
        if (!ok)
                err_at(c, rule, d, "%s: must be a whole number of months from 1 to 99", id);
}

static void run_drule(struct ctx *c, const struct drule *r, const xmlNode *d)
{
        switch (r->type) {
        case VT_TEXT:
                chk_text(c, r->rule, d, r->id);
                if (r->max_chars && norm_chars(d) > r->max_chars)
                        err_at(c, r->rule, d, "%s: at most %zu characters", r->id, r->max_chars);
                break;
        case VT_BOOL:
                chk_bool(c, r->rule, d, r->id);
                break;
        case VT_DATE:
                chk_date(c, r->rule, d, r->id);
                break;
        case VT_PERIOD:
                chk_period(c, r->rule, d, r->id);
                break;
        case VT_CV:
                chk_cv(c, r->rule, d, r->id);
                chk_codes(c, r->rule, d, r->id, r->system, r->codes);
                break;
        case VT_DIAG:
                chk_diagnosis(c, r->rule, d, r->id);
                break;
        case VT_INT_1_99:
                chk_int_1_99(c, r->rule, d, r->id);
                break;
        }
}

/* ---- per-svar structure rules (qN patterns with context //gn:svar[@id='N']) ---- */

struct card {
        const char *ds;
        int min, max;
};

struct srule {
        const char *id;
        const char *rule;
        const char *label;
        bool instans;
        const char *const *allowed; /* NULL: no delsvar-id check in that pattern */
        struct card card[6];
};

#define A(...) ((const char *const[]){__VA_ARGS__, NULL})

static const struct srule S_V1[] = {
    {"1",
     "q1",
     "basis for the certificate",
     true,
     A("1.1", "1.2", "1.3"),
     {{"1.1", 1, 1}, {"1.2", 1, 1}, {"1.3", 0, 1}}},
    {"27", "q27", "infection control (smittbärarpenning)", false, A("27.1"), {{"27.1", 1, 1}}},
    {"28", "q28", "occupation", true, A("28.1"), {{"28.1", 1, 1}}},
    {"29", "q29", "current work", false, A("29.1"), {{"29.1", 1, 1}}},
    {"6",
     "q6",
     "diagnosis",
     false,
     A("6.1", "6.2", "6.3", "6.4", "6.5", "6.6"),
     {{"6.1", 1, 1}, {"6.2", 1, 1}}},
    {"35", "q35", "functional impairment", false, A("35.1"), {{"35.1", 1, 1}}},
    {"17", "q17", "activity limitation", false, A("17.1"), {{"17.1", 1, 1}}},
    {"19", "q19", "ongoing treatment", false, A("19.1"), {{"19.1", 1, 1}}},
    {"20", "q20", "planned treatment", false, A("20.1"), {{"20.1", 1, 1}}},
    {"32", "q32", "sick leave", true, A("32.1", "32.2"), {{"32.1", 1, 1}, {"32.2", 1, 1}}},
    {"37", "q37", "insurance medicine decision support", false, A("37.1"), {{"37.1", 1, 1}}},
    {"33",
     "q33",
     "working-time arrangement",
     false,
     A("33.1", "33.2"),
     {{"33.1", 1, 1}, {"33.2", 0, 1}}},
    {"34", "q34", "travel to work", false, A("34.1"), {{"34.1", 1, 1}}},
    {"39", "q39", "prognosis", false, A("39.1", "39.3"), {{"39.1", 1, 1}, {"39.3", 0, 1}}},
    {"40", "q40", "work-oriented measures", true, A("40.1"), {{"40.1", 1, 1}}},
    {"44", "q44", "description of work-oriented measures", false, A("44.1"), {{"44.1", 1, 1}}},
    {"25", "q25", "other information", false, A("25.1"), {{"25.1", 1, 1}}},
    {"26",
     "q26",
     "contact with FK wanted",
     false,
     A("26.1", "26.2"),
     {{"26.1", 1, 1}, {"26.2", 0, 1}}},
    {NULL, NULL, NULL, false, NULL, {{NULL, 0, 0}}},
};

static const struct srule S_V2[] = {
    {"1",
     "q1",
     "basis for the certificate",
     true,
     A("1.1", "1.2", "1.3"),
     {{"1.1", 1, 1}, {"1.2", 1, 1}, {"1.3", 0, 1}}},
    {"27", "q27", "infection control (smittbärarpenning)", false, A("27.1"), {{"27.1", 1, 1}}},
    {"28", "q28", "occupation", true, NULL, {{"28.1", 1, 1}}},
    {"29", "q29", "current work", false, A("29.1"), {{"29.1", 1, 1}}},
    {"6",
     "q6",
     "diagnosis",
     false,
     A("6.1", "6.2", "6.3", "6.4", "6.5", "6.6"),
     {{"6.1", 1, 1}, {"6.2", 1, 1}, {"6.3", 0, 1}, {"6.4", 0, 1}, {"6.5", 0, 1}, {"6.6", 0, 1}}},
    {"19", "q19", "medical treatment", false, NULL, {{"19.1", 1, 1}}},
    {"25", "q25", "other information", false, NULL, {{"25.1", 1, 1}}},
    {"32", "q32", "reduced work capacity", false, NULL, {{"32.1", 1, 1}, {"32.2", 1, 1}}},
    {"33", "q33", "working-time arrangement", false, NULL, {{"33.1", 1, 1}, {"33.2", 0, 1}}},
    {"34", "q34", "travel support", false, NULL, {{"34.1", 1, 1}}},
    {"37", "q37", "insurance medicine decision support", false, NULL, {{"37.1", 1, 1}}},
    /* §2.5: no KV_FKMU_0007 (39.3) in v2: the delsvar ids are 39.1, 39.2, 39.4. */
    {"39",
     "q39",
     "prognosis",
     false,
     A("39.1", "39.2", "39.4"),
     {{"39.1", 1, 1}, {"39.2", 0, 1}, {"39.4", 0, 1}}},
    {"44", "q44", "measures that help the return to work", false, NULL, {{"44.1", 1, 1}}},
    {NULL, NULL, NULL, false, NULL, {{NULL, 0, 0}}},
};

static void run_srule(struct ctx *c, const struct srule *r, const struct sv *s)
{
        if (r->instans && !s->instans)
                err_at(c, r->rule, s->node, "answer %s (%s) must have an instans number", r->id,
                       r->label);
        for (int i = 0; i < 6 && r->card[i].ds; i++) {
                size_t k = count_d(s, r->card[i].ds);
                if ((int)k < r->card[i].min)
                        err_at(c, r->rule, s->node, "answer %s (%s) must have %s %s", r->id,
                               r->label, r->card[i].max == 1 ? "exactly one" : "at least one",
                               r->card[i].ds);
                else if ((int)k > r->card[i].max)
                        err_at(c, r->rule, s->node, "answer %s (%s) may have %s %s, found %zu",
                               r->id, r->label, r->card[i].min == 1 ? "exactly one" : "at most one",
                               r->card[i].ds, k);
        }
        if (r->allowed)
                for (size_t i = 0; i < s->nd; i++)
                        if (!in_list(s->d[i].id, r->allowed))
                                err_at(c, r->rule, s->d[i].node,
                                       "answer %s (%s) has an unexpected sub-answer id '%s'", r->id,
                                       r->label, s->d[i].id);
}

/* ---- the intyg pattern: answer cardinalities ---- */

struct icard {
        const char *id;
        int min, max;
        bool min_unless_27; /* the minimum applies only when there is no answer 27 */
        const char *label;
};

static const struct icard I_V1[] = {
    {"1", 1, 4, true, "basis for the certificate"},
    {"28", 1, 4, true, "occupation"},
    {"29", 0, 1, false, "current work"},
    {"6", 1, 1, false, "diagnosis"},
    {"35", 1, 1, true, "functional impairment"},
    {"17", 1, 1, true, "activity limitation"},
    {"19", 0, 1, false, "ongoing treatment"},
    {"20", 0, 1, false, "planned treatment"},
    {"32", 1, 4, false, "sick leave"},
    {"37", 0, 1, false, "insurance medicine decision support"},
    {"33", 0, 1, false, "working-time arrangement"},
    {"34", 0, 1, false, "travel to work"},
    {"39", 1, 1, true, "prognosis"},
    {"40", 1, 10, true, "work-oriented measures"},
    {"44", 0, 1, false, "description of work-oriented measures"},
    {"25", 0, 1, false, "other information"},
    {"26", 0, 1, false, "contact with FK wanted"},
    {"27", 0, 1, false, "infection control (smittbärarpenning)"},
    {NULL, 0, 0, false, NULL},
};

static const struct icard I_V2[] = {
    {"6", 1, 1, false, "diagnosis"},
    {"32", 1, 4, false, "reduced work capacity"},
    {"1", 0, 5, false, "basis for the certificate"},
    {"28", 0, 4, false, "occupation"},
    {NULL, 0, 0, false, NULL},
};

/* ^([16]|1[79]|2[056789]|3[234579]|4[04]|9[0-9]{3})$ (v1); v2 has no 20 and no 40 (§2.5). */
static bool svar_id_allowed(const char *id, enum fk7804_version ver)
{
        static const char *const v1[] = {"1",  "6",  "17", "19", "20", "25", "26", "27", "28", "29",
                                         "32", "33", "34", "35", "37", "39", "40", "44", NULL};
        if (strlen(id) == 4 && id[0] == '9' && strspn(id, "0123456789") == 4)
                return true;
        if (!in_list(id, v1))
                return false;
        return ver != FK7804_V2 || (strcmp(id, "20") != 0 && strcmp(id, "40") != 0);
}

static void rule_intyg(struct ctx *c, const struct icard *tab)
{
        size_t n27 = count_svar(c, "27");
        for (const struct icard *r = tab; r->id; r++) {
                size_t k = count_svar(c, r->id);
                if ((int)k > r->max)
                        err_at(c, "intyg", c->intyg,
                               "answer %s (%s) may occur at most %d time%s, found %zu", r->id,
                               r->label, r->max, r->max == 1 ? "" : "s", k);
                if ((int)k < r->min && !(r->min_unless_27 && n27 == 1)) {
                        if (r->min_unless_27)
                                err_at(c, "intyg", c->intyg,
                                       "answer %s (%s) is required unless answer 27 "
                                       "(smittbärarpenning) is given",
                                       r->id, r->label);
                        else
                                err_at(c, "intyg", c->intyg,
                                       "answer %s (%s) must occur %s%d time%s, found %zu", r->id,
                                       r->label, r->max == r->min ? "" : "at least ", r->min,
                                       r->min == 1 ? "" : "s", k);
                }
        }
        for (size_t i = 0; i < c->ns; i++)
                if (!svar_id_allowed(c->s[i].id, c->ver))
                        err_at(c, "intyg", c->s[i].node, "unexpected answer id '%s'", c->s[i].id);
}

/* ---- cross-answer rules ---- */

/* Uniqueness of a code among answers with the same id (q1, q28.1-R5, q32.1-R22, q40.1-R29):
 * not(preceding-sibling::svar[@id=X]/delsvar[@id=X.1]/cv/code = this code). */
static void rule_unique(struct ctx *c, const char *svar_id, const char *ds_id, const char *rule,
                        const char *label)
{
        for (size_t i = 0; i < c->ns; i++) {
                if (strcmp(c->s[i].id, svar_id) != 0)
                        continue;
                const xmlNode *d = find_d(&c->s[i], ds_id);
                char code[CODE_MAX];
                /* QUIRK (q32.1-R22, q40.1-R29): upstream's delsvar['32.1'] predicate is always
                 * true; the intent, comparing the 32.1 (40.1) codes, is what is checked. */
                if (!d || !cv_code(d, code, sizeof code, NULL))
                        continue;
                bool dup = false;
                for (size_t j = 0; j < i && !dup; j++) {
                        if (strcmp(c->s[j].id, svar_id) != 0)
                                continue;
                        for (size_t k = 0; k < c->s[j].nd && !dup; k++) {
                                char other[CODE_MAX];
                                if (strcmp(c->s[j].d[k].id, ds_id) == 0 &&
                                    cv_code(c->s[j].d[k].node, other, sizeof other, NULL))
                                        dup = strcmp(code, other) == 0;
                        }
                }
                if (dup)
                        err_at(c, rule, c->s[i].node, "%s: the %s code %s is given more than once",
                               ds_id, label, code);
        }
}

static void rule_27_switch(struct ctx *c)
{
        for (size_t i = 0; i < c->ns; i++)
                for (size_t k = 0; k < c->s[i].nd; k++) {
                        if (strcmp(c->s[i].d[k].id, "27.1") != 0 || truthy(c->s[i].d[k].node))
                                continue;
                        const xmlNode *d = c->s[i].d[k].node;
                        const char *what = "is not true";
                        if (count_svar(c, "1") < 1)
                                err_at(c, "q27.1", d,
                                       "27.1 %s: at least one answer 1 (basis) is required", what);
                        if (count_svar(c, "28") < 1)
                                err_at(c, "q27.1", d,
                                       "27.1 %s: at least one answer 28 (occupation) is required",
                                       what);
                        if (count_svar(c, "35") != 1)
                                err_at(c, "q27.1", d,
                                       "27.1 %s: answer 35 (functional impairment) is required",
                                       what);
                        if (count_svar(c, "17") != 1)
                                err_at(c, "q27.1", d,
                                       "27.1 %s: answer 17 (activity limitation) is required",
                                       what);
                        if (count_svar(c, "39") != 1)
                                err_at(c, "q27.1", d, "27.1 %s: answer 39 (prognosis) is required",
                                       what);
                        if (c->ver == FK7804_V1 && count_svar(c, "40") < 1)
                                err_at(c, "q27.1", d,
                                       "27.1 %s: at least one answer 40 (work-oriented "
                                       "measures) is required",
                                       what);
                }
}

static bool any_27_true(const struct ctx *c)
{
        for (size_t i = 0; i < c->ns; i++)
                for (size_t k = 0; k < c->s[i].nd; k++)
                        if (strcmp(c->s[i].d[k].id, "27.1") == 0 && truthy(c->s[i].d[k].node))
                                return true;
        return false;
}

static void rule_cross(struct ctx *c)
{
        bool v1 = c->ver == FK7804_V1;
        size_t n29 = count_svar(c, "29"), n33 = count_svar(c, "33"), n44 = count_svar(c, "44");
        size_t n_nuvarande = 0, n_partial = 0;
        bool smitta = any_27_true(c);
        for (size_t i = 0; i < c->ns; i++)
                for (size_t k = 0; k < c->s[i].nd; k++) {
                        char code[CODE_MAX];
                        if (strcmp(c->s[i].d[k].id, "28.1") == 0 &&
                            cv_code(c->s[i].d[k].node, code, sizeof code, NULL) &&
                            strcmp(code, "NUVARANDE_ARBETE") == 0)
                                n_nuvarande++;
                        if (strcmp(c->s[i].id, "32") == 0 && strcmp(c->s[i].d[k].id, "32.1") == 0 &&
                            cv_code(c->s[i].d[k].node, code, sizeof code, NULL) &&
                            in_list(code, C_PARTIAL))
                                n_partial++;
                }

        for (size_t i = 0; i < c->ns; i++) {
                const struct sv *s = &c->s[i];
                for (size_t k = 0; k < s->nd; k++) {
                        const xmlNode *d = s->d[k].node;
                        const char *id = s->d[k].id;
                        char code[CODE_MAX];
                        const xmlNode *code_node = NULL;
                        bool has_code = cv_code(d, code, sizeof code, &code_node);

                        if (strcmp(id, "1.3") == 0) {
                                /* q1.3: 1.3 only next to 1.1 = ANNAT */
                                bool other = false;
                                for (size_t j = 0; j < s->nd; j++) {
                                        char cc[CODE_MAX];
                                        const xmlNode *cn = NULL;
                                        if (strcmp(s->d[j].id, "1.1") == 0) {
                                                bool h = cv_code(s->d[j].node, cc, sizeof cc, &cn);
                                                if (cn && (!h || strcmp(cc, "ANNAT") != 0))
                                                        other = true;
                                        }
                                }
                                if (other)
                                        err_at(c, "q1.3", d,
                                               "1.3 (other basis) may only be given when 1.1 is "
                                               "ANNAT");
                        }
                        if (strcmp(id, "1.1") == 0 && has_code && strcmp(code, "ANNAT") == 0 &&
                            !find_d(s, "1.3"))
                                err_at(c, "q1.1-1.3", code_node,
                                       "1.1 is ANNAT: 1.3 (what the other basis is) is required");
                        if (strcmp(id, "28.1") == 0 && has_code &&
                            strcmp(code, "NUVARANDE_ARBETE") == 0 && n29 != 1)
                                err_at(c, "q28.1-q29", code_node,
                                       "28.1 is NUVARANDE_ARBETE: answer 29 (current work) is "
                                       "required");
                        if (strcmp(id, "32.1") == 0 && has_code && in_list(code, C_PARTIAL) && v1 &&
                            n33 != 1 && !smitta)
                                err_at(c, "q32.1-33", code_node,
                                       "32.1 is %s: answer 33 (working-time arrangement) is "
                                       "required",
                                       code);
                        if (strcmp(id, "33.1") == 0) {
                                if (truthy(d)) {
                                        if (!find_d(s, "33.2"))
                                                err_at(c, "q33.1-33.2", d,
                                                       "33.1 is true: 33.2 (the reason) is "
                                                       "required");
                                } else if (falsy(d) && find_d(s, "33.2")) {
                                        err_at(c, "q33.1-33.2", d,
                                               "33.1 is false: 33.2 (the reason) must not be "
                                               "given");
                                }
                        }
                        if (v1 && strcmp(id, "39.1") == 0 && has_code) {
                                bool ater = strcmp(code, "ATER_X_ANTAL_DGR") == 0;
                                if (ater && !find_d(s, "39.3"))
                                        err_at(c, "q39.1-39.3", code_node,
                                               "39.1 is ATER_X_ANTAL_DGR: 39.3 (number of days) "
                                               "is required");
                                if (!ater && find_d(s, "39.3"))
                                        err_at(c, "q39.1-39.3", code_node,
                                               "39.1 is not ATER_X_ANTAL_DGR: 39.3 (number of "
                                               "days) must not be given");
                        }
                        if (!v1 && strcmp(id, "39.1") == 0 && has_code) {
                                bool ater = strcmp(code, "ATER_X_ANTAL_MANADER") == 0;
                                bool oklar = strcmp(code, "PROGNOS_OKLAR") == 0;
                                if (ater != (find_d(s, "39.4") != NULL))
                                        err_at(c, "q39.1-39.4", code_node,
                                               ater ? "39.1 is ATER_X_ANTAL_MANADER: 39.4 "
                                                      "(number of months) is required"
                                                    : "39.4 (number of months) may only be "
                                                      "given when 39.1 is ATER_X_ANTAL_MANADER");
                                if (oklar != (find_d(s, "39.2") != NULL))
                                        err_at(c, "q39.1-39.2", code_node,
                                               oklar ? "39.1 is PROGNOS_OKLAR: 39.2 (basis for "
                                                       "the assessment) is required"
                                                     : "39.2 (basis for the assessment) may "
                                                       "only be given when 39.1 is "
                                                       "PROGNOS_OKLAR");
                        }
                        if (v1 && strcmp(id, "40.1") == 0 && has_code &&
                            strcmp(code, "EJ_AKTUELLT") == 0 && n44 != 0)
                                err_at(c, "q40.1-44", code_node,
                                       "40.1 is EJ_AKTUELLT: answer 44 (description of "
                                       "measures) must not be given");
                        if (v1 && strcmp(id, "26.1") == 0 && falsy(d) && find_d(s, "26.2"))
                                err_at(c, "q26.1-26.2", d,
                                       "26.1 is false: 26.2 (why contact is wanted) must not be "
                                       "given");
                }

                if (strcmp(s->id, "29") == 0 && n_nuvarande != 1)
                        err_at(c, "q28.1-q29", s->node,
                               "answer 29 (current work) may only be given when exactly one "
                               "28.1 is NUVARANDE_ARBETE");
                if (strcmp(s->id, "33") == 0 && n_partial < 1)
                        err_at(c, "q32.1-33.1-R26", s->node,
                               "answer 33 (working-time arrangement) may only be given when a "
                               "32.1 is EN_FJARDEDEL, HALFTEN or TRE_FJARDEDEL");
                if (strcmp(s->id, "6") == 0) {
                        size_t n3 = count_d(s, "6.3"), n4 = count_d(s, "6.4");
                        size_t n5 = count_d(s, "6.5"), n6 = count_d(s, "6.6");
                        if (!((n3 == 1 && n4 == 1) || (n3 == 0 && n4 == 0)))
                                err_at(c, "q6.3-6.4", s->node,
                                       "answer 6: a secondary diagnosis needs both its text (6.3) "
                                       "and its code (6.4)");
                        if (!((n5 == 1 && n6 == 1 && n3 == 1) || (n5 == 0 && n6 == 0)))
                                err_at(c, "q6.5-6.6-6.3", s->node,
                                       "answer 6: a second secondary diagnosis needs both 6.5 and "
                                       "6.6, and 6.3/6.4 before it");
                        /* QUIRK (R12): upstream matches() 6.2's code system against 6.4's and
                         * 6.6's as regular expressions; the intent is equality when present. */
                        const xmlNode *d2 = find_d(s, "6.2");
                        char cs2[64] = "", csx[64];
                        if (d2)
                                cv_system(d2, cs2, sizeof cs2);
                        bool same = true;
                        const char *other_ids[] = {"6.4", "6.6"};
                        for (int j = 0; j < 2; j++) {
                                const xmlNode *dx = find_d(s, other_ids[j]);
                                if (dx && cv_system(dx, csx, sizeof csx) && csx[0] &&
                                    strcmp(cs2, csx) != 0)
                                        same = false;
                        }
                        if (!same)
                                err_at(c, "q6.2-6.4-6.6-R12", s->node,
                                       "answer 6: 6.2, 6.4 and 6.6 must use the same code system");
                }
                if (v1 && strcmp(s->id, "40") == 0) {
                        const xmlNode *d = find_d(s, "40.1");
                        char code[CODE_MAX];
                        if (d && cv_code(d, code, sizeof code, NULL)) {
                                bool ej = strcmp(code, "EJ_AKTUELLT") == 0, bad = false;
                                for (size_t j = 0; j < i && !bad; j++) {
                                        if (strcmp(c->s[j].id, "40") != 0)
                                                continue;
                                        for (size_t k = 0; k < c->s[j].nd && !bad; k++) {
                                                char o[CODE_MAX];
                                                if (strcmp(c->s[j].d[k].id, "40.1") == 0 &&
                                                    cv_code(c->s[j].d[k].node, o, sizeof o, NULL))
                                                        bad = ej != (strcmp(o, "EJ_AKTUELLT") == 0);
                                        }
                                }
                                if (bad)
                                        err_at(c, "q40", s->node,
                                               "40.1: EJ_AKTUELLT (not relevant) cannot be "
                                               "combined with other measures");
                        }
                }
                if (v1 && s->num >= 9001) {
                        /* QUIRK (q9000): upstream's string-join(@id, '.1') compares each delsvar
                         * with itself; the intent is exactly one delsvar "<id>.1". */
                        char want[32];
                        snprintf(want, sizeof want, "%s.1", s->id);
                        if (s->nd != 1 || strcmp(s->d[0].id, want) != 0)
                                err_at(c, "q9000", s->node,
                                       "additional question %s must have exactly one sub-answer, "
                                       "with id %s",
                                       s->id, want);
                        for (size_t j = 0; j < i; j++)
                                if (strcmp(c->s[j].id, s->id) == 0) {
                                        err_at(c, "q9000", s->node,
                                               "additional question %s is given more than once",
                                               s->id);
                                        break;
                                }
                        for (size_t k = 0; k < s->nd; k++)
                                chk_text(c, "q9000.1", s->d[k].node, s->d[k].id);
                }
        }

        /* q32: no two periods may overlap. QUIRK: lisjp.v1.sch uses strict inequalities, so a
         * shared boundary day passes; Webcert and certificate-service (v2) count a shared day
         * as overlap, which is the evident intent, and is what is checked here (both versions). */
        for (size_t i = 0; i < c->ns; i++) {
                if (strcmp(c->s[i].id, "32") != 0)
                        continue;
                int32_t cs, ce;
                {
                        const xmlNode *d = find_d(&c->s[i], "32.2");
                        const xmlNode *p = d ? xmlsafe_child(d, NS_TP, "datePeriod") : NULL;
                        char a[16] = "", b[16] = "";
                        if (p) {
                                const xmlNode *s0 = xmlsafe_child(p, NS_TP, "start");
                                const xmlNode *e0 = xmlsafe_child(p, NS_TP, "end");
                                if (s0)
                                        norm_small(s0, a, sizeof a);
                                if (e0)
                                        norm_small(e0, b, sizeof b);
                        }
                        cs = intyg_date_to_day(a);
                        ce = intyg_date_to_day(b);
                }
                if (cs < 0 || ce < 0)
                        continue;
                for (size_t j = 0; j < i; j++) {
                        if (strcmp(c->s[j].id, "32") != 0)
                                continue;
                        const xmlNode *d = find_d(&c->s[j], "32.2");
                        const xmlNode *p = d ? xmlsafe_child(d, NS_TP, "datePeriod") : NULL;
                        char a[16] = "", b[16] = "";
                        if (p) {
                                const xmlNode *s0 = xmlsafe_child(p, NS_TP, "start");
                                const xmlNode *e0 = xmlsafe_child(p, NS_TP, "end");
                                if (s0)
                                        norm_small(s0, a, sizeof a);
                                if (e0)
                                        norm_small(e0, b, sizeof b);
                        }
                        int32_t ps = intyg_date_to_day(a), pe = intyg_date_to_day(b);
                        if (ps >= 0 && pe >= 0 && ps <= ce && pe >= cs) {
                                err_at(c, "q32", c->s[i].node,
                                       "32.2: two sick-leave periods must not overlap (a shared "
                                       "day counts as overlap)");
                                break;
                        }
                }
        }
}

/* instans-pattern: every instans is a number >= 1. */
static void rule_instans(struct ctx *c)
{
        for (size_t i = 0; i < c->ns; i++) {
                const xmlNode *n = c->s[i].instans;
                if (!n)
                        continue;
                char v[32];
                char *end = NULL;
                double x = 0;
                bool ok = norm_small(n, v, sizeof v) && v[0];
                if (ok) {
                        x = strtod(v, &end);
                        ok = end && *end == '\0' && x >= 1;
                }
                if (!ok)
                        err_at(c, "instans-pattern", n, "answer %s: instans must be 1 or more",
                               c->s[i].id);
        }
}

enum fk7804_version fk7804_version_of(const char *v)
{
        if (!v)
                return FK7804_UNKNOWN;
        if (strcmp(v, "1") == 0 || strcmp(v, "1.0") == 0 || strcmp(v, "1.1") == 0 ||
            strcmp(v, "1.2") == 0)
                return FK7804_V1;
        if (strcmp(v, "2.0") == 0)
                return FK7804_V2;
        return FK7804_UNKNOWN;
}

static size_t count_elems(const xmlNode *n, const char *ns, const char *name)
{
        size_t k = 0;
        for (const xmlNode *c = xmlsafe_first_elem(n); c; c = xmlsafe_next_elem(c))
                k += xmlsafe_is(c, ns, name);
        return k;
}

int rules_fk7804_check(const xmlNode *rc, const xmlNode *top, struct verrs *errs)
{
        struct ctx c = {.top = top, .errs = errs};
        c.intyg = xmlsafe_child(rc, NS_RC, "intyg");
        if (!c.intyg) {
                verrs_add(errs, "intyg", "/RegisterCertificate", "the request has no intyg");
                return 1;
        }
        /* type: LISJP in KV_INTYGSTYP */
        const xmlNode *typ = xmlsafe_child(c.intyg, NS_GN, "typ");
        char code[64] = "", system[64] = "";
        const xmlNode *tc = typ ? xmlsafe_child(typ, NS_TP, "code") : NULL;
        const xmlNode *ts = typ ? xmlsafe_child(typ, NS_TP, "codeSystem") : NULL;
        if (tc)
                norm_small(tc, code, sizeof code);
        if (ts)
                norm_small(ts, system, sizeof system);
        if (strcmp(code, "LISJP") != 0 || strcmp(system, KV_INTYGSTYP) != 0) {
                err_at(&c, "type", typ ? typ : c.intyg,
                       "the certificate type must be LISJP (FK7804) in code system "
                       "KV_INTYGSTYP " KV_INTYGSTYP "; this gateway takes no other type");
                return c.added;
        }
        const xmlNode *vn = xmlsafe_child(c.intyg, NS_GN, "version");
        char ver[32] = "";
        if (vn)
                norm_small(vn, ver, sizeof ver);
        c.ver = fk7804_version_of(ver);
        if (c.ver == FK7804_UNKNOWN) {
                err_at(&c, "version", vn ? vn : c.intyg,
                       "LISJP version '%.16s' is not supported (1, 1.0, 1.1, 1.2 or 2.0)", ver);
                return c.added;
        }

        /* Collect the answers once. */
        size_t n_svar = count_elems(c.intyg, NS_GN, "svar"), n_d = 0;
        for (const xmlNode *s = xmlsafe_first_elem(c.intyg); s; s = xmlsafe_next_elem(s))
                if (xmlsafe_is(s, NS_GN, "svar"))
                        n_d += count_elems(s, NS_GN, "delsvar");
        c.s = calloc(n_svar ? n_svar : 1, sizeof *c.s);
        struct dsv *pool = calloc(n_d ? n_d : 1, sizeof *pool);
        if (!c.s || !pool) {
                free(c.s);
                free(pool);
                verrs_add(errs, "intyg", "", "internal: out of memory");
                return 1;
        }
        size_t used = 0;
        for (const xmlNode *s = xmlsafe_first_elem(c.intyg); s; s = xmlsafe_next_elem(s)) {
                if (!xmlsafe_is(s, NS_GN, "svar"))
                        continue;
                struct sv *v = &c.s[c.ns++];
                const char *id = xmlsafe_attr(s, "id");
                v->node = s;
                v->id = id ? id : "";
                v->num =
                    (v->id[0] && strspn(v->id, "0123456789") == strlen(v->id) && strlen(v->id) < 10)
                        ? strtol(v->id, NULL, 10)
                        : -1;
                v->instans = xmlsafe_child(s, NS_GN, "instans");
                v->d = pool + used;
                for (const xmlNode *d = xmlsafe_first_elem(s); d; d = xmlsafe_next_elem(d)) {
                        if (!xmlsafe_is(d, NS_GN, "delsvar"))
                                continue;
                        const char *did = xmlsafe_attr(d, "id");
                        v->d[v->nd].node = d;
                        v->d[v->nd].id = did ? did : "";
                        v->nd++;
                }
                used += v->nd;
        }

        const bool v1 = c.ver == FK7804_V1;
        rule_intyg(&c, v1 ? I_V1 : I_V2);
        const struct srule *stab = v1 ? S_V1 : S_V2;
        const struct drule *dtab = v1 ? D_V1 : D_V2;
        for (size_t i = 0; i < c.ns; i++) {
                for (const struct srule *r = stab; r->id; r++)
                        if (strcmp(r->id, c.s[i].id) == 0)
                                run_srule(&c, r, &c.s[i]);
                for (size_t k = 0; k < c.s[i].nd; k++)
                        for (const struct drule *r = dtab; r->id; r++)
                                if (strcmp(r->id, c.s[i].d[k].id) == 0)
                                        run_drule(&c, r, c.s[i].d[k].node);
        }
        rule_unique(&c, "1", "1.1", "q1", "basis (1.1)");
        rule_unique(&c, "28", "28.1", "q28.1-R5", "occupation (28.1)");
        if (v1) {
                rule_unique(&c, "32", "32.1", "q32.1-R22", "sick-leave degree (32.1)");
                rule_unique(&c, "40", "40.1", "q40.1-R29", "measure (40.1)");
        }
        rule_27_switch(&c);
        rule_cross(&c);
        rule_instans(&c);
        free(pool);
        free(c.s);
        return c.added;
}
