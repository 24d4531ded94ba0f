/*
 * test_ldif.c - the LDIF reader (folding, base64, comments, CRLF, broken and change records,
 * every limit on both sides) and the DN / base64 helpers of gateway/ldif.c.
 * Single-threaded; in-memory streams only.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ldif.h"

struct rd {
        FILE *f;
        struct ldif_reader *r;
        char *buf;
};

static struct rd open_text(const char *text, size_t len)
{
        struct rd x;
        x.buf = malloc(len + 1);
        cr_assert_not_null(x.buf);
        memcpy(x.buf, text, len);
        x.f = fmemopen(x.buf, len, "r");
        cr_assert_not_null(x.f);
        x.r = ldif_reader_new(x.f);
        cr_assert_not_null(x.r);
        return x;
}

static struct rd open_str(const char *text)
{
        return open_text(text, strlen(text));
}

static void close_rd(struct rd *x)
{
        ldif_reader_free(x->r);
        fclose(x->f);
        free(x->buf);
}

static const char *attr(const struct ldif_entry *e, const char *name, size_t nth)
{
        for (size_t i = 0; i < e->n_attrs; i++)
                if (strcmp(e->attrs[i].name, name) == 0 && nth-- == 0)
                        return e->attrs[i].value;
        return NULL;
}

Test(ldif, plain_entries_comments_version)
{
        struct rd x = open_str("# leading comment\n"
                               "version: 1\n"
                               "\n"
                               "dn: ou=A,o=Org,c=SE\n"
                               "objectClass: top\n"
                               "# comment inside the entry\n"
                               "objectClass: organizationalUnit\n"
                               "OU;lang-sv: A\n"
                               "hsaIdentity:   SE1-A\n"
                               "\n\n\n"
                               "dn: ou=B,o=Org,c=SE\n"
                               "ou: B\n");
        struct ldif_entry e;
        char err[200] = "";
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_OK, "%s", err);
        cr_assert_str_eq(e.dn, "ou=A,o=Org,c=SE");
        cr_assert_eq(e.line, 4);
        cr_assert_eq(e.n_attrs, 4);
        cr_assert_str_eq(attr(&e, "objectclass", 0), "top");
        cr_assert_str_eq(attr(&e, "objectclass", 1), "organizationalUnit");
        cr_assert_str_eq(attr(&e, "ou", 0), "A"); /* type lower-cased, option removed */
        cr_assert_str_eq(attr(&e, "hsaidentity", 0), "SE1-A");
        cr_assert_eq(e.attrs[3].line, 9);
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_OK);
        cr_assert_str_eq(e.dn, "ou=B,o=Org,c=SE");
        cr_assert_eq(e.line, 13);
        cr_assert_str_eq(attr(&e, "ou", 0), "B"); /* last line without newline */
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_EOF);
        close_rd(&x);
}

Test(ldif, folded_lines_and_base64)
{
        /* "Västra Götalands län" and a DN folded in the middle of its base64 */
        struct rd x = open_str("dn:: b3U9VsOkc3RyYSxvPVLDpGduLGM9U0U\n"
                               " =\n"
                               "description: a long value that\n"
                               "  goes on here\n"
                               "l:: VsOkc3RyYSBHw7Z0YWxhbmRzIGzDpG4=\n"
                               "# a folded\n"
                               " comment\n"
                               "cn:: IGxlYWRpbmcgc3BhY2U=\n"
                               "empty:\n"
                               "empty64::\n");
        struct ldif_entry e;
        char err[200] = "";
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_OK, "%s", err);
        cr_assert_str_eq(e.dn, "ou=V\xc3\xa4stra,o=R\xc3\xa4gn,c=SE");
        cr_assert_str_eq(attr(&e, "description", 0), "a long value that goes on here");
        cr_assert_str_eq(attr(&e, "l", 0), "V\xc3\xa4stra G\xc3\xb6talands l\xc3\xa4n");
        cr_assert_str_eq(attr(&e, "cn", 0), " leading space");
        cr_assert_str_eq(attr(&e, "empty", 0), "");
        cr_assert_str_eq(attr(&e, "empty64", 0), "");
        cr_assert_eq(e.n_attrs, 5);
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_EOF);
        close_rd(&x);
}

Test(ldif, crlf_line_endings)
{
        struct rd x = open_str("version: 1\r\n\r\ndn: o=X\r\nou: Y\r\n continued\r\n\r\n");
        struct ldif_entry e;
        char err[200];
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_OK);
        cr_assert_str_eq(e.dn, "o=X");
        cr_assert_str_eq(attr(&e, "ou", 0), "Ycontinued");
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_EOF);
        close_rd(&x);
}

/* Every broken record is reported with its line and skipped; the next one is read. */
static void expect_bad_then_good(const char *bad, unsigned long line, const char *why)
{
        char text[4096];
        snprintf(text, sizeof text, "%s\n\ndn: o=Good\nou: g\n", bad);
        struct rd x = open_str(text);
        struct ldif_entry e;
        char err[300] = "";
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_BAD_ENTRY, "for: %s", bad);
        char want[64];
        snprintf(want, sizeof want, "line %lu: ", line);
        cr_assert(strncmp(err, want, strlen(want)) == 0, "err '%s' want '%s'", err, want);
        cr_assert_not_null(strstr(err, why), "err '%s' lacks '%s'", err, why);
        cr_assert_eq(ldif_reader_error_line(x.r), line);
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_OK, "after: %s", bad);
        cr_assert_str_eq(e.dn, "o=Good");
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_EOF);
        close_rd(&x);
}

Test(ldif, bad_entries_are_skipped)
{
        expect_bad_then_good("dn: o=A\nno colon here", 2, "no ':'");
        expect_bad_then_good("dn: o=A\nou:: not*base64", 2, "bad base64");
        expect_bad_then_good("dn: o=A\nou:: QR==", 2, "bad base64"); /* non-zero pad bits */
        expect_bad_then_good("dn: o=A\nou:: Q", 2, "bad base64");
        expect_bad_then_good("dn: o=A\nchangetype: modify\nreplace: ou\nou: x\n-", 2,
                             "change records");
        expect_bad_then_good("dn: o=A\nchangetype: add\nou: x", 2, "change records");
        expect_bad_then_good("dn: o=A\ncontrol: 1.2.3 true\nchangetype: delete", 2,
                             "change records");
        expect_bad_then_good("dn: o=A\njpegPhoto:< file:///etc/passwd", 2, "URL");
        expect_bad_then_good("ou: no dn first\ndn: o=A", 1, "does not start with dn:");
        expect_bad_then_good(" continuation first", 1, "continuation");
        expect_bad_then_good("dn: o=A\nou: x\ndn: o=B", 3, "second dn:");
        expect_bad_then_good("dn: o=A\n: empty name", 2, "empty attribute name");
        expect_bad_then_good("dn: o=A\nb@d: x", 2, "bad character");
        expect_bad_then_good("dn: o=A\n-ou: x", 2, "change records");
        expect_bad_then_good("version: 2\ndn: o=A", 1, "unsupported LDIF version");
}

Test(ldif, nul_byte_is_refused)
{
        static const char text[] = "dn: o=A\nou: a\0b\n\ndn: o=Good\n";
        struct rd x = open_text(text, sizeof text - 1);
        struct ldif_entry e;
        char err[200];
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_BAD_ENTRY);
        cr_assert_not_null(strstr(err, "NUL"), "%s", err);
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_OK);
        cr_assert_str_eq(e.dn, "o=Good");
        close_rd(&x);
}

/* A logical line of exactly LDIF_MAX_LINE bytes passes; one byte more is refused. */
static enum ldif_status one_value_of(size_t value_len, bool folded)
{
        size_t prefix = strlen("ou: ");
        size_t len = value_len + prefix;
        char *text = malloc(len * 2 + 64);
        cr_assert_not_null(text);
        size_t n = (size_t)sprintf(text, "dn: o=A\nou: ");
        for (size_t i = 0; i < value_len; i++) {
                if (folded && i > 0 && i % 70 == 0) {
                        text[n++] = '\n';
                        text[n++] = ' ';
                }
                text[n++] = 'x';
        }
        n += (size_t)sprintf(text + n, "\n\ndn: o=Good\n");
        struct rd x = open_text(text, n);
        struct ldif_entry e;
        char err[200];
        enum ldif_status st = ldif_next(x.r, &e, err, sizeof err);
        if (st == LDIF_OK)
                cr_assert_eq(strlen(attr(&e, "ou", 0)), value_len);
        else
                cr_assert_not_null(strstr(err, "LDIF_MAX_LINE"), "%s", err);
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_OK);
        cr_assert_str_eq(e.dn, "o=Good");
        close_rd(&x);
        free(text);
        return st;
}

Test(ldif, line_limit_both_sides)
{
        size_t max_value = LDIF_MAX_LINE - strlen("ou: ");
        cr_assert_eq(one_value_of(max_value, false), LDIF_OK);
        cr_assert_eq(one_value_of(max_value + 1, false), LDIF_BAD_ENTRY);
        cr_assert_eq(one_value_of(max_value, true), LDIF_OK);
        cr_assert_eq(one_value_of(max_value + 1, true), LDIF_BAD_ENTRY);
        cr_assert_eq(one_value_of(max_value * 4, false), LDIF_BAD_ENTRY);
}

static enum ldif_status n_attrs_entry(size_t n_attrs)
{
        size_t cap = n_attrs * 16 + 64;
        char *text = malloc(cap);
        cr_assert_not_null(text);
        size_t n = (size_t)sprintf(text, "dn: o=A\n");
        for (size_t i = 0; i < n_attrs; i++)
                n += (size_t)sprintf(text + n, "a: %zu\n", i);
        n += (size_t)sprintf(text + n, "\ndn: o=Good\n");
        struct rd x = open_text(text, n);
        struct ldif_entry e;
        char err[200];
        enum ldif_status st = ldif_next(x.r, &e, err, sizeof err);
        if (st == LDIF_OK)
                cr_assert_eq(e.n_attrs, n_attrs);
        cr_assert_eq(ldif_next(x.r, &e, err, sizeof err), LDIF_OK);
        close_rd(&x);
        free(text);
        return st;
}

Test(ldif, attribute_count_limit_both_sides)
{
        cr_assert_eq(n_attrs_entry(LDIF_MAX_ATTRS), LDIF_OK);
        cr_assert_eq(n_attrs_entry(LDIF_MAX_ATTRS + 1), LDIF_BAD_ENTRY);
}

Test(ldif, entry_size_limit)
{
        /* 20 values of 15000 bytes = 300 kB > LDIF_MAX_ENTRY_BYTES; 15 = 225 kB fits */
        for (int count = 15; count <= 20; count += 5) {
                size_t cap = (size_t)count * 15100 + 64;
                char *text = malloc(cap);
                cr_assert_not_null(text);
                size_t n = (size_t)sprintf(text, "dn: o=A\n");
                for (int i = 0; i < count; i++) {
                        n += (size_t)sprintf(text + n, "a: ");
                        memset(text + n, 'y', 15000);
                        n += 15000;
                        text[n++] = '\n';
                }
                struct rd x = open_text(text, n);
                struct ldif_entry e;
                char err[200];
                enum ldif_status st = ldif_next(x.r, &e, err, sizeof err);
                cr_assert_eq(st, count == 15 ? LDIF_OK : LDIF_BAD_ENTRY, "count %d", count);
                close_rd(&x);
                free(text);
        }
}

Test(ldif, base64_decode)
{
        char out[16];
        cr_assert_eq(ldif_base64_decode("", 0, out, sizeof out), 0);
        cr_assert_eq(ldif_base64_decode("QQ==", 4, out, sizeof out), 1);
        cr_assert_eq(out[0], 'A');
        cr_assert_eq(ldif_base64_decode("QQ", 2, out, sizeof out), 1);
        cr_assert_eq(ldif_base64_decode("QUJD", 4, out, sizeof out), 3);
        cr_assert_eq(memcmp(out, "ABC", 3), 0);
        cr_assert_eq(ldif_base64_decode("Q", 1, out, sizeof out), -1);
        cr_assert_eq(ldif_base64_decode("QR==", 4, out, sizeof out), -1);
        cr_assert_eq(ldif_base64_decode("QU JD", 5, out, sizeof out), -1);
        cr_assert_eq(ldif_base64_decode("QUJD", 4, out, 2), -1); /* too small a buffer */
        cr_assert_eq(ldif_base64_decode("AA==", 4, out, sizeof out), 1);
        cr_assert_eq(out[0], '\0');
}

Test(ldif, dn_normalise)
{
        char out[LDIF_MAX_DN + 1], err[200];
        cr_assert_eq(ldif_dn_normalise("OU = Medicin , O=Region X,L=Län,C=se", out, sizeof out, err,
                                       sizeof err),
                     4);
        cr_assert_str_eq(out, "ou=medicin,o=region x,l=län,c=se");
        cr_assert_eq(
            ldif_dn_normalise("cn=Doe\\, John+uid=jd,o=A", out, sizeof out, err, sizeof err), 2);
        cr_assert_str_eq(out, "cn=doe\\, john+uid=jd,o=a");
        cr_assert_eq(ldif_dn_normalise("cn=Doe\\2C John,o=A", out, sizeof out, err, sizeof err), 2);
        cr_assert_str_eq(out, "cn=doe\\, john,o=a");
        cr_assert_eq(ldif_dn_normalise("cn=\"Doe, John\";o=A", out, sizeof out, err, sizeof err),
                     2);
        cr_assert_str_eq(out, "cn=doe\\, john,o=a");
        cr_assert_eq(ldif_dn_normalise("cn=trail\\ ,o=A", out, sizeof out, err, sizeof err), 2);
        cr_assert_str_eq(out, "cn=trail\\ ,o=a");
        cr_assert_eq(ldif_dn_normalise("   ", out, sizeof out, err, sizeof err), 0);
        cr_assert_str_eq(out, "");
        cr_assert_eq(ldif_dn_normalise("cn=#04024869,o=A", out, sizeof out, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "BER"));
        cr_assert_eq(ldif_dn_normalise("=x,o=A", out, sizeof out, err, sizeof err), -1);
        cr_assert_eq(ldif_dn_normalise("cn x,o=A", out, sizeof out, err, sizeof err), -1);
        cr_assert_eq(ldif_dn_normalise("cn=a\\q,o=A", out, sizeof out, err, sizeof err), -1);
        cr_assert_eq(ldif_dn_normalise("cn=\"open,o=A", out, sizeof out, err, sizeof err), -1);
        cr_assert_eq(ldif_dn_normalise("cn=a=b", out, sizeof out, err, sizeof err), -1);
        char small[8];
        cr_assert_eq(
            ldif_dn_normalise("ou=longer than eight", small, sizeof small, err, sizeof err), -1);
}

Test(ldif, dn_depth_limit_both_sides)
{
        char dn[LDIF_MAX_DN * 2] = "", out[LDIF_MAX_DN + 1], err[200];
        for (int i = 0; i < LDIF_MAX_DN_DEPTH; i++)
                strcat(dn, i ? ",ou=x" : "ou=x");
        cr_assert_eq(ldif_dn_normalise(dn, out, sizeof out, err, sizeof err), LDIF_MAX_DN_DEPTH);
        strcat(dn, ",ou=x");
        cr_assert_eq(ldif_dn_normalise(dn, out, sizeof out, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "RDNs"), "%s", err);
}

Test(ldif, dn_parent_and_first_rdn)
{
        cr_assert_str_eq(ldif_dn_parent("ou=a\\,b,o=x,c=se"), "o=x,c=se");
        cr_assert_str_eq(ldif_dn_parent("c=se"), "");
        cr_assert_str_eq(ldif_dn_parent(""), "");
        char t[16], v[64];
        cr_assert(ldif_dn_first_rdn("ou=a\\,b,o=x", t, sizeof t, v, sizeof v));
        cr_assert_str_eq(t, "ou");
        cr_assert_str_eq(v, "a,b");
        cr_assert(ldif_dn_first_rdn("cn=x+uid=y,o=z", t, sizeof t, v, sizeof v));
        cr_assert_str_eq(v, "x");
        cr_assert(!ldif_dn_first_rdn("", t, sizeof t, v, sizeof v));
}
