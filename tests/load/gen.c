/*
 * gen.c - fills the LISJP template (see gen.h). Owns nothing beyond struct gen's template;
 * values come from splitmix64 over (seed, document number), so no state changes per call and
 * any thread may call gen_make on a struct nobody is initialising.
 */
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intyg.h"
#include "personid.h"

static const struct gen_region regions[GEN_N_REGIONS] = {
    {"region-a",
     "SE2321000016-0001",
     {"SE2321000016-A111", "SE2321000016-A210", "SE2321000016-A130", "SE2321000016-A140"},
     4},
    {"region-b",
     "SE2321000131-0001",
     {"SE2321000131-B111", "SE2321000131-B210", "SE2321000131-B140"},
     3},
    {"region-c",
     "SE2321000032-0001",
     {"SE2321000032-C111", "SE2321000032-C210", "SE2321000032-C230"},
     3},
};

/* ICD-10-SE codes the FK7804 rules accept (psychiatric F-codes need four characters). */
static const char *const diagnoses[] = {"S47", "F321", "M54",  "J06",  "F438",
                                        "S82", "M51",  "M545", "F329", "S832"};
#define N_DIAG (sizeof diagnoses / sizeof diagnoses[0])

static const char soap_head[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:itr=\"urn:riv:itintegration:registry:1\">"
    "<soapenv:Header><itr:LogicalAddress>SE2321000016-GW01</itr:LogicalAddress>"
    "</soapenv:Header><soapenv:Body>";
static const char soap_tail[] = "</soapenv:Body></soapenv:Envelope>\n";

static const struct {
        const char *name;
        enum gen_ph ph;
} placeholders[] = {
    {"@ID@", GEN_ID},         {"@PERSON@", GEN_PERSON},
    {"@UNIT@", GEN_UNIT},     {"@PROVIDER@", GEN_PROVIDER},
    {"@SIGNED@", GEN_SIGNED}, {"@DIAG@", GEN_DIAG},
    {"@START@", GEN_START},   {"@END@", GEN_END},
};

const struct gen_region *gen_region_get(size_t i)
{
        return i < GEN_N_REGIONS ? &regions[i] : NULL;
}

uint64_t gen_mix(uint64_t x)
{
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

void gen_personnummer(uint64_t rnd, char out[13])
{
        /* Born 1940-01-01 .. 2005-12-31 (days since 1970). */
        const int32_t lo = -10958, hi = 13148;
        int32_t day = lo + (int32_t)(rnd % (uint64_t)(hi - lo + 1));
        char ymd[11];
        intyg_day_to_date(day, ymd);
        unsigned nnn = (unsigned)((rnd >> 32) % 1000);
        char nine[10];
        snprintf(nine, sizeof nine, "%.2s%.2s%.2s%03u", ymd + 2, ymd + 5, ymd + 8, nnn);
        int c = personid_luhn(nine);
        memcpy(out, ymd, 4);
        memcpy(out + 4, nine + 2, 7); /* MMDDNNN */
        out[11] = (char)('0' + (c < 0 ? 0 : c % 10));
        out[12] = '\0';
}

static bool prefix_ok(const char *p)
{
        size_t n = strlen(p);
        if (n == 0 || n > GEN_ID_PREFIX_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = p[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-'))
                        return false;
        }
        return true;
}

int gen_init(struct gen *g, const char *template_path, uint64_t seed, const char *id_prefix,
             int32_t today, char *err, size_t errlen)
{
        memset(g, 0, sizeof *g);
        g->seed = seed;
        g->last_day = today - 1;
        if (id_prefix) {
                if (!prefix_ok(id_prefix)) {
                        snprintf(err, errlen, "id prefix must be 1-%d of [A-Za-z0-9-]",
                                 GEN_ID_PREFIX_MAX);
                        return -1;
                }
                snprintf(g->id_prefix, sizeof g->id_prefix, "%s", id_prefix);
        } else {
                snprintf(g->id_prefix, sizeof g->id_prefix, "%08x",
                         (unsigned)(gen_mix(seed) & 0xffffffffu));
        }
        FILE *f = fopen(template_path, "rb");
        if (!f) {
                snprintf(err, errlen, "cannot open template %s: %m", template_path);
                return -1;
        }
        g->tmpl = malloc(GEN_MAX_TEMPLATE + 1);
        size_t n = g->tmpl ? fread(g->tmpl, 1, GEN_MAX_TEMPLATE + 1, f) : 0;
        fclose(f);
        if (!g->tmpl || n == 0 || n > GEN_MAX_TEMPLATE) {
                snprintf(err, errlen, "template %s: empty, unreadable or over %d bytes",
                         template_path, GEN_MAX_TEMPLATE);
                gen_free(g);
                return -1;
        }
        g->tmpl[n] = '\0';
        const char *p = g->tmpl;
        if (!strncmp(p, "<?xml", 5)) {
                const char *e = strstr(p, "?>");
                if (e)
                        g->body_offset = (size_t)(e + 2 - p);
        }
        /* Split into literal text and placeholders. */
        const char *lit = p;
        int seen[GEN_END + 1] = {0};
        for (const char *q = p; *q;) {
                size_t k;
                for (k = 0; k < sizeof placeholders / sizeof placeholders[0]; k++)
                        if (!strncmp(q, placeholders[k].name, strlen(placeholders[k].name)))
                                break;
                if (k == sizeof placeholders / sizeof placeholders[0]) {
                        q++;
                        continue;
                }
                if (g->n_segs + 2 > GEN_MAX_SEGMENTS) {
                        snprintf(err, errlen, "template has over %d segments", GEN_MAX_SEGMENTS);
                        gen_free(g);
                        return -1;
                }
                if (q > lit)
                        g->segs[g->n_segs++] =
                            (struct gen_seg){GEN_LITERAL, lit, (size_t)(q - lit)};
                g->segs[g->n_segs++] = (struct gen_seg){placeholders[k].ph, NULL, 0};
                seen[placeholders[k].ph]++;
                q += strlen(placeholders[k].name);
                lit = q;
        }
        if (*lit) {
                if (g->n_segs + 1 > GEN_MAX_SEGMENTS) {
                        snprintf(err, errlen, "template has over %d segments", GEN_MAX_SEGMENTS);
                        gen_free(g);
                        return -1;
                }
                g->segs[g->n_segs++] = (struct gen_seg){GEN_LITERAL, lit, strlen(lit)};
        }
        if (!seen[GEN_ID] || !seen[GEN_PERSON] || !seen[GEN_UNIT] || !seen[GEN_PROVIDER]) {
                snprintf(err, errlen, "template lacks @ID@, @PERSON@, @UNIT@ or @PROVIDER@");
                gen_free(g);
                return -1;
        }
        return 0;
}

void gen_free(struct gen *g)
{
        if (!g)
                return;
        free(g->tmpl);
        g->tmpl = NULL;
        g->n_segs = 0;
}

void gen_values(const struct gen *g, uint64_t n, const struct gen_region *r, struct gen_values *out)
{
        uint64_t a = gen_mix(g->seed ^ gen_mix(n));
        uint64_t b = gen_mix(a);
        uint64_t c = gen_mix(b);
        /* Unique within a run (n), distinct between runs (prefix). UUID-shaped. */
        snprintf(out->id, sizeof out->id, "%s-%04x-4%03x-8%03x-%012llx", g->id_prefix,
                 (unsigned)(a & 0xffff), (unsigned)((a >> 16) & 0xfff),
                 (unsigned)((a >> 28) & 0xfff), (unsigned long long)(n & 0xffffffffffffull));
        gen_personnummer(b, out->person);
        out->unit = r->units[(a >> 40) % r->n_units];
        out->provider = r->provider;
        out->diag = diagnoses[(c >> 8) % N_DIAG];
        /* Signed within the last 300 days; the period starts that day and lasts 7-90 days. */
        int32_t signed_day = g->last_day - (int32_t)(c % 300);
        int32_t end_day = signed_day + 6 + (int32_t)((c >> 20) % 84);
        intyg_day_to_date(signed_day, out->signed_day);
        memcpy(out->start, out->signed_day, sizeof out->start);
        intyg_day_to_date(end_day, out->end);
}

static bool put(char **w, char *end, const char *s, size_t len)
{
        if ((size_t)(end - *w) < len)
                return false;
        memcpy(*w, s, len);
        *w += len;
        return true;
}

long gen_make(const struct gen *g, uint64_t n, const struct gen_region *r, bool soap, char *out,
              size_t cap)
{
        struct gen_values v;
        gen_values(g, n, r, &v);
        char *w = out, *end = out + cap;
        if (soap && !put(&w, end, soap_head, sizeof soap_head - 1))
                return -1;
        size_t skip = soap ? g->body_offset : 0;
        for (size_t i = 0; i < g->n_segs; i++) {
                const struct gen_seg *s = &g->segs[i];
                const char *val = NULL;
                switch (s->ph) {
                case GEN_LITERAL: {
                        size_t len = s->len;
                        const char *t = s->text;
                        if (skip) { /* the XML declaration sits in the first literal */
                                size_t k = skip < len ? skip : len;
                                t += k;
                                len -= k;
                                skip -= k;
                        }
                        if (!put(&w, end, t, len))
                                return -1;
                        continue;
                }
                case GEN_ID:
                        val = v.id;
                        break;
                case GEN_PERSON:
                        val = v.person;
                        break;
                case GEN_UNIT:
                        val = v.unit;
                        break;
                case GEN_PROVIDER:
                        val = v.provider;
                        break;
                case GEN_SIGNED:
                        val = v.signed_day;
                        break;
                case GEN_DIAG:
                        val = v.diag;
                        break;
                case GEN_START:
                        val = v.start;
                        break;
                case GEN_END:
                        val = v.end;
                        break;
                }
                if (!put(&w, end, val, strlen(val)))
                        return -1;
        }
        if (soap && !put(&w, end, soap_tail, sizeof soap_tail - 1))
                return -1;
        return (long)(w - out);
}
