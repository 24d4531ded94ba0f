/*
 * ldif.c - streaming LDIF (RFC 2849) content-record reader and RFC 4514 DN normalisation.
 *
 * Owns: the reader's block buffer, the logical-line buffer and one entry buffer (fixed sizes,
 * allocated once). Reads a stream in 64 kB blocks, unfolds continuation lines, decodes
 * base64 values, skips comments; a broken entry is reported by line and skipped.
 * Threads: a reader belongs to one thread; the DN and base64 helpers are pure.
 */
#include "ldif.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LDIF_BLOCK 65536
#define STR_(x)    #x
#define STR(x)     STR_(x)

struct ldif_reader {
        FILE *f;
        char *block; /* raw bytes read from f */
        size_t bpos, blen;
        bool eof;           /* f has no more bytes */
        bool io_error;      /* ferror() seen */
        unsigned long line; /* physical lines consumed into look */

        /* one physical line of lookahead */
        char *look;
        size_t look_len;
        bool look_valid;
        bool look_toolong;
        bool look_nul;
        unsigned long look_line;

        /* the current logical (unfolded) line */
        char *lbuf;
        size_t llen;
        bool ltoolong;
        bool lnul;
        unsigned long lline;

        /* the entry being built: names and values, NUL-terminated, back to back */
        char *ebuf;
        size_t elen;
        struct ldif_attr *attrs;
        size_t n_attrs;
        bool started;           /* a first record or version line was seen */
        unsigned long err_line; /* line of the last bad entry's fault */
};

struct ldif_reader *ldif_reader_new(FILE *f)
{
        struct ldif_reader *r = calloc(1, sizeof *r);
        if (!r)
                return NULL;
        r->f = f;
        r->block = malloc(LDIF_BLOCK);
        r->look = malloc(LDIF_MAX_LINE + 1);
        r->lbuf = malloc(LDIF_MAX_LINE + 1);
        r->ebuf = malloc(LDIF_MAX_ENTRY_BYTES);
        r->attrs = calloc(LDIF_MAX_ATTRS, sizeof *r->attrs);
        if (!r->block || !r->look || !r->lbuf || !r->ebuf || !r->attrs) {
                ldif_reader_free(r);
                return NULL;
        }
        return r;
}

void ldif_reader_free(struct ldif_reader *r)
{
        if (!r)
                return;
        free(r->block);
        free(r->look);
        free(r->lbuf);
        free(r->ebuf);
        free(r->attrs);
        free(r);
}

unsigned long ldif_reader_line(const struct ldif_reader *r)
{
        return r->line;
}

unsigned long ldif_reader_error_line(const struct ldif_reader *r)
{
        return r->err_line;
}

static bool refill(struct ldif_reader *r)
{
        if (r->eof)
                return false;
        r->bpos = 0;
        r->blen = fread(r->block, 1, LDIF_BLOCK, r->f);
        if (r->blen == 0) {
                r->eof = true;
                if (ferror(r->f))
                        r->io_error = true;
                return false;
        }
        return true;
}

/* Read one physical line into the lookahead (without its LF or CRLF). False at end of input. */
static bool read_physical(struct ldif_reader *r)
{
        r->look_len = 0;
        r->look_toolong = false;
        r->look_nul = false;
        bool any = false;
        for (;;) {
                if (r->bpos >= r->blen && !refill(r))
                        break;
                any = true;
                const char *start = r->block + r->bpos;
                size_t avail = r->blen - r->bpos;
                const char *nl = memchr(start, '\n', avail);
                size_t seg = nl ? (size_t)(nl - start) : avail;
                if (memchr(start, '\0', seg))
                        r->look_nul = true;
                if (r->look_len + seg > LDIF_MAX_LINE) {
                        r->look_toolong = true;
                        size_t room = LDIF_MAX_LINE - r->look_len;
                        memcpy(r->look + r->look_len, start, room);
                        r->look_len += room;
                } else {
                        memcpy(r->look + r->look_len, start, seg);
                        r->look_len += seg;
                }
                r->bpos += seg + (nl ? 1 : 0);
                if (nl)
                        break;
        }
        if (!any) {
                r->look_valid = false;
                return false;
        }
        if (r->look_len > 0 && r->look[r->look_len - 1] == '\r')
                r->look_len--;
        r->look[r->look_len] = '\0';
        r->look_valid = true;
        r->line++;
        r->look_line = r->line;
        return true;
}

/* Assemble the next logical line (first physical line plus its continuations). */
static bool next_logical(struct ldif_reader *r)
{
        if (!r->look_valid && !read_physical(r))
                return false;
        memcpy(r->lbuf, r->look, r->look_len + 1);
        r->llen = r->look_len;
        r->ltoolong = r->look_toolong;
        r->lnul = r->look_nul;
        r->lline = r->look_line;
        r->look_valid = false;
        if (r->llen == 0)
                return true; /* a blank line is never continued */
        while (read_physical(r)) {
                if (r->look_len == 0 || r->look[0] != ' ')
                        break; /* keep it as lookahead */
                size_t add = r->look_len - 1;
                r->ltoolong |= r->look_toolong;
                r->lnul |= r->look_nul;
                if (r->llen + add > LDIF_MAX_LINE) {
                        r->ltoolong = true;
                        add = LDIF_MAX_LINE - r->llen;
                }
                memcpy(r->lbuf + r->llen, r->look + 1, add);
                r->llen += add;
                r->lbuf[r->llen] = '\0';
                r->look_valid = false;
        }
        return true;
}

static const signed char b64_table[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

long ldif_base64_decode(const char *in, size_t inlen, char *out, size_t outcap)
{
        while (inlen > 0 && in[inlen - 1] == '=')
                inlen--;
        if (inlen % 4 == 1)
                return -1;
        size_t outlen = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
        if (outlen > outcap)
                return -1;
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;
        for (size_t i = 0; i < inlen; i++) {
                int v = b64_table[(unsigned char)in[i]];
                if (v == 0)
                        return -1;
                acc = (acc << 6) | (uint32_t)(v - 1);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char)((acc >> bits) & 0xff);
                }
        }
        /* leftover bits must be zero (canonical encoding) */
        if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
                return -1;
        return (long)o;
}

/* Copy into the entry buffer; NULL when it would pass LDIF_MAX_ENTRY_BYTES. */
static char *ebuf_put(struct ldif_reader *r, const char *s, size_t n)
{
        if (r->elen + n + 1 > LDIF_MAX_ENTRY_BYTES)
                return NULL;
        char *p = r->ebuf + r->elen;
        memcpy(p, s, n);
        p[n] = '\0';
        r->elen += n + 1;
        return p;
}

/* Skip the rest of the current entry: logical lines up to a blank line or the end. */
static void skip_entry(struct ldif_reader *r)
{
        while (next_logical(r)) {
                if (r->llen == 0)
                        return;
        }
}

static bool blank_line(const char *s, size_t n)
{
        return n == 0 && s[0] == '\0';
}

/*
 * Split "type[;opts]:[:|<] value" of the logical line. Fills name (lower-cased, no options),
 * *kind (':' plain, '=' base64, '<' URL) and *val, *vlen. False with err on bad syntax.
 */
static bool split_attr_line(const char *s, size_t n, char *name, size_t namecap, char *kind,
                            const char **val, size_t *vlen, const char **err)
{
        const char *colon = memchr(s, ':', n);
        if (!colon) {
                *err = "no ':' in attribute line";
                return false;
        }
        size_t desc = (size_t)(colon - s);
        if (desc == 0) {
                *err = "empty attribute name";
                return false;
        }
        size_t tlen = desc;
        const char *semi = memchr(s, ';', desc);
        if (semi)
                tlen = (size_t)(semi - s);
        if (tlen == 0 || tlen >= namecap) {
                *err = tlen == 0 ? "empty attribute name" : "attribute name too long";
                return false;
        }
        for (size_t i = 0; i < desc; i++) {
                unsigned char c = (unsigned char)s[i];
                if (!(isalnum(c) || c == '-' || c == '.' || c == ';')) {
                        *err = "bad character in attribute name";
                        return false;
                }
        }
        if (!isalnum((unsigned char)s[0])) {
                *err = "attribute name must start with a letter or digit";
                return false;
        }
        for (size_t i = 0; i < tlen; i++)
                name[i] = (char)tolower((unsigned char)s[i]);
        name[tlen] = '\0';
        const char *p = colon + 1;
        const char *end = s + n;
        *kind = ':';
        if (p < end && *p == ':') {
                *kind = '=';
                p++;
        } else if (p < end && *p == '<') {
                *kind = '<';
                p++;
        }
        while (p < end && *p == ' ')
                p++;
        *val = p;
        *vlen = (size_t)(end - p);
        return true;
}

enum ldif_status ldif_next(struct ldif_reader *r, struct ldif_entry *e, char *err, size_t errlen)
{
        memset(e, 0, sizeof *e);
        r->elen = 0;
        r->n_attrs = 0;

        /* Skip blank lines and comments before the record; accept "version: 1" once. */
        for (;;) {
                if (!next_logical(r))
                        return r->io_error ? LDIF_IO : LDIF_EOF;
                if (blank_line(r->lbuf, r->llen))
                        continue;
                if (r->lbuf[0] == '#')
                        continue;
                if (!r->started && strncmp(r->lbuf, "version:", 8) == 0) {
                        r->started = true;
                        const char *v = r->lbuf + 8;
                        while (*v == ' ')
                                v++;
                        if (strcmp(v, "1") != 0) {
                                snprintf(err, errlen, "line %lu: unsupported LDIF version '%.20s'",
                                         r->lline, v);
                                r->err_line = r->lline;
                                skip_entry(r);
                                return LDIF_BAD_ENTRY;
                        }
                        continue;
                }
                break;
        }
        r->started = true;
        unsigned long entry_line = r->lline;
        unsigned long bad_line = 0;
        const char *why = NULL;
        char name[LDIF_MAX_ATTR_NAME];
        bool have_dn = false;

        for (;;) {
                /* r->lbuf holds a non-blank logical line of this record */
                if (r->lbuf[0] == '#')
                        goto next_line;
                if (r->ltoolong) {
                        why = "line longer than LDIF_MAX_LINE (" STR(LDIF_MAX_LINE) " bytes)";
                        bad_line = r->lline;
                        break;
                }
                if (r->lnul) {
                        why = "NUL byte in line";
                        bad_line = r->lline;
                        break;
                }
                char kind;
                const char *val;
                size_t vlen;
                if (r->lbuf[0] == ' ' || r->lbuf[0] == '-') {
                        why = r->lbuf[0] == '-' ? "'-' line: change records are not supported"
                                                : "continuation line without a line to continue";
                        bad_line = r->lline;
                        break;
                }
                if (!split_attr_line(r->lbuf, r->llen, name, sizeof name, &kind, &val, &vlen,
                                     &why)) {
                        bad_line = r->lline;
                        break;
                }
                if (kind == '<') {
                        why = "URL values (:<) are not supported";
                        bad_line = r->lline;
                        break;
                }
                if (!have_dn && strcmp(name, "dn") != 0) {
                        why = "record does not start with dn:";
                        bad_line = r->lline;
                        break;
                }
                if (have_dn && (strcmp(name, "changetype") == 0 || strcmp(name, "control") == 0)) {
                        why = "change records are not supported (content records only)";
                        bad_line = r->lline;
                        break;
                }
                if (have_dn && strcmp(name, "dn") == 0) {
                        why = "second dn: in one record (missing blank line?)";
                        bad_line = r->lline;
                        break;
                }
                char *stored_val;
                if (kind == '=') {
                        size_t cap = LDIF_MAX_ENTRY_BYTES - r->elen;
                        if (cap < 1) {
                                why = "entry larger than LDIF_MAX_ENTRY_BYTES";
                                bad_line = r->lline;
                                break;
                        }
                        long dl = ldif_base64_decode(val, vlen, r->ebuf + r->elen, cap - 1);
                        if (dl < 0) {
                                why = vlen / 4 * 3 > cap ? "entry larger than LDIF_MAX_ENTRY_BYTES"
                                                         : "bad base64 value";
                                bad_line = r->lline;
                                break;
                        }
                        stored_val = r->ebuf + r->elen;
                        stored_val[dl] = '\0';
                        r->elen += (size_t)dl + 1;
                        vlen = (size_t)dl;
                } else {
                        stored_val = ebuf_put(r, val, vlen);
                        if (!stored_val) {
                                why = "entry larger than LDIF_MAX_ENTRY_BYTES";
                                bad_line = r->lline;
                                break;
                        }
                }
                if (!have_dn) {
                        if (memchr(stored_val, '\0', vlen)) {
                                why = "NUL byte in dn";
                                bad_line = r->lline;
                                break;
                        }
                        e->dn = stored_val;
                        e->line = r->lline;
                        have_dn = true;
                } else {
                        if (r->n_attrs >= LDIF_MAX_ATTRS) {
                                why = "more than LDIF_MAX_ATTRS attribute lines";
                                bad_line = r->lline;
                                break;
                        }
                        char *stored_name = ebuf_put(r, name, strlen(name));
                        if (!stored_name) {
                                why = "entry larger than LDIF_MAX_ENTRY_BYTES";
                                bad_line = r->lline;
                                break;
                        }
                        struct ldif_attr *a = &r->attrs[r->n_attrs++];
                        a->name = stored_name;
                        a->value = stored_val;
                        a->len = vlen;
                        a->line = r->lline;
                }
        next_line:
                if (!next_logical(r))
                        break;
                if (blank_line(r->lbuf, r->llen))
                        break;
        }
        if (why) {
                snprintf(err, errlen, "line %lu: %s (record at line %lu skipped)", bad_line, why,
                         entry_line);
                r->err_line = bad_line;
                skip_entry(r);
                return LDIF_BAD_ENTRY;
        }
        if (r->io_error) {
                snprintf(err, errlen, "read error after line %lu", r->line);
                return LDIF_IO;
        }
        e->n_attrs = r->n_attrs;
        e->attrs = r->attrs;
        return LDIF_OK;
}

/* ---- DN helpers ---- */

static int hexval(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c = tolower(c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

struct outbuf {
        char *p;
        size_t cap, len;
        bool overflow;
};

static void out_c(struct outbuf *o, char c)
{
        if (o->len + 1 >= o->cap) {
                o->overflow = true;
                return;
        }
        o->p[o->len++] = c;
        o->p[o->len] = '\0';
}

static bool dn_special(unsigned char c)
{
        return c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' ||
               c == '=';
}

/* Write an unescaped value in canonical escaped form. */
static void out_value(struct outbuf *o, const char *v, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)v[i];
                if (c < 0x20 || c == 0x7f) {
                        out_c(o, '\\');
                        out_c(o, hex[c >> 4]);
                        out_c(o, hex[c & 15]);
                        continue;
                }
                if (dn_special(c) || (i == 0 && (c == '#' || c == ' ')) || (i == n - 1 && c == ' '))
                        out_c(o, '\\');
                out_c(o, (char)tolower(c));
        }
}

int ldif_dn_normalise(const char *dn, char *out, size_t outlen, char *err, size_t errlen)
{
        struct outbuf o = {out, outlen, 0, false};
        if (outlen == 0) {
                snprintf(err, errlen, "no room");
                return -1;
        }
        out[0] = '\0';
        char val[LDIF_MAX_DN];
        const char *p = dn;
        while (*p == ' ')
                p++;
        if (*p == '\0')
                return 0;
        int rdns = 0;
        for (;;) {
                /* one RDN: type=value(+type=value)* */
                for (;;) {
                        while (*p == ' ')
                                p++;
                        const char *t = p;
                        while (isalnum((unsigned char)*p) || *p == '-' || *p == '.')
                                p++;
                        if (p == t) {
                                snprintf(err, errlen, "attribute type expected at offset %zu",
                                         (size_t)(t - dn));
                                return -1;
                        }
                        for (const char *q = t; q < p; q++)
                                out_c(&o, (char)tolower((unsigned char)*q));
                        while (*p == ' ')
                                p++;
                        if (*p != '=') {
                                snprintf(err, errlen, "'=' expected at offset %zu",
                                         (size_t)(p - dn));
                                return -1;
                        }
                        p++;
                        out_c(&o, '=');
                        while (*p == ' ')
                                p++;
                        if (*p == '#') {
                                snprintf(err, errlen,
                                         "BER-encoded (#) values are not supported (offset %zu)",
                                         (size_t)(p - dn));
                                return -1;
                        }
                        size_t vn = 0, keep = 0; /* keep: length up to the last significant */
                        bool quoted = false;
                        if (*p == '"') {
                                quoted = true;
                                p++;
                        }
                        for (;;) {
                                unsigned char c = (unsigned char)*p;
                                if (c == '\0') {
                                        if (quoted) {
                                                snprintf(err, errlen, "unterminated quoted value");
                                                return -1;
                                        }
                                        break;
                                }
                                if (quoted && c == '"') {
                                        p++;
                                        while (*p == ' ')
                                                p++;
                                        break;
                                }
                                if (!quoted && (c == ',' || c == '+' || c == ';'))
                                        break;
                                if (vn + 1 >= sizeof val) {
                                        snprintf(err, errlen, "value too long");
                                        return -1;
                                }
                                if (c == '\\') {
                                        int h1 = hexval((unsigned char)p[1]);
                                        int h2 = h1 >= 0 ? hexval((unsigned char)p[2]) : -1;
                                        if (h1 >= 0 && h2 >= 0) {
                                                val[vn++] = (char)(h1 * 16 + h2);
                                                p += 3;
                                        } else if (p[1] != '\0' &&
                                                   (dn_special((unsigned char)p[1]) ||
                                                    p[1] == ' ' || p[1] == '#')) {
                                                val[vn++] = p[1];
                                                p += 2;
                                        } else {
                                                snprintf(err, errlen, "bad escape at offset %zu",
                                                         (size_t)(p - dn));
                                                return -1;
                                        }
                                        keep = vn;
                                        continue;
                                }
                                if (!quoted && (c == '=' || c == '<' || c == '>' || c == '"')) {
                                        snprintf(err, errlen,
                                                 "unescaped '%c' in value at offset %zu", c,
                                                 (size_t)(p - dn));
                                        return -1;
                                }
                                val[vn++] = (char)c;
                                if (c != ' ' || quoted)
                                        keep = vn;
                                p++;
                        }
                        out_value(&o, val, keep);
                        if (*p == '+') {
                                p++;
                                out_c(&o, '+');
                                continue;
                        }
                        break;
                }
                rdns++;
                if (rdns > LDIF_MAX_DN_DEPTH) {
                        snprintf(err, errlen, "more than %d RDNs", LDIF_MAX_DN_DEPTH);
                        return -1;
                }
                if (*p == '\0')
                        break;
                if (*p == ',' || *p == ';') {
                        p++;
                        out_c(&o, ',');
                        continue;
                }
                snprintf(err, errlen, "',' expected at offset %zu", (size_t)(p - dn));
                return -1;
        }
        if (o.overflow) {
                snprintf(err, errlen, "normalised DN longer than %zu bytes", outlen - 1);
                return -1;
        }
        return rdns;
}

const char *ldif_dn_parent(const char *norm_dn)
{
        for (const char *p = norm_dn; *p; p++) {
                if (*p == '\\') {
                        if (p[1] == '\0')
                                break;
                        p++;
                        continue;
                }
                if (*p == ',')
                        return p + 1;
        }
        return norm_dn + strlen(norm_dn);
}

bool ldif_dn_first_rdn(const char *norm_dn, char *type, size_t typelen, char *value,
                       size_t valuelen)
{
        if (typelen == 0 || valuelen == 0 || norm_dn[0] == '\0')
                return false;
        const char *eq = strchr(norm_dn, '=');
        if (!eq)
                return false;
        snprintf(type, typelen, "%.*s", (int)(eq - norm_dn), norm_dn);
        size_t vn = 0;
        for (const char *p = eq + 1; *p && *p != ',' && *p != '+'; p++) {
                char c = *p;
                if (c == '\\') {
                        int h1 = hexval((unsigned char)p[1]);
                        int h2 = h1 >= 0 ? hexval((unsigned char)p[2]) : -1;
                        if (h1 >= 0 && h2 >= 0) {
                                c = (char)(h1 * 16 + h2);
                                p += 2;
                        } else if (p[1]) {
                                c = p[1];
                                p++;
                        }
                }
                if (vn + 1 < valuelen)
                        value[vn++] = c;
        }
        value[vn] = '\0';
        return true;
}
