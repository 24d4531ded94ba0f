/*
 * test_rules_fk7804.c - every FK7804 rule on both sides of its edge: documents are made by
 * editing one valid template (tests/data/gw/lisjp-v1-tolvan.xml, -v2-) in the test, then the
 * rules are run on the parsed tree and the exact upstream pattern ids are checked.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "rules_fk7804.h"
#include "xmlsafe.h"

static char *slurp(const char *rel)
{
        char path[512];
        snprintf(path, sizeof path, "%s/%s", INTYGSGW_SOURCE_DIR, rel);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *p = calloc(1, (size_t)n + 1);
        cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        return p;
}

/* Replace the first `from` with `to` in s (must occur); frees s. */
static char *sub(char *s, const char *from, const char *to)
{
        char *at = strstr(s, from);
        cr_assert_not_null(at, "template lacks: %s", from);
        size_t a = (size_t)(at - s), fl = strlen(from), tl = strlen(to), sl = strlen(s);
        char *r = malloc(sl - fl + tl + 1);
        memcpy(r, s, a);
        memcpy(r + a, to, tl);
        memcpy(r + a + tl, at + fl, sl - a - fl + 1);
        free(s);
        return r;
}

/* Insert `what` before the closing </rg:intyg>. */
static char *add_svar(char *s, const char *what)
{
        char buf[8192];
        snprintf(buf, sizeof buf, "%s</rg:intyg>", what);
        return sub(s, "</rg:intyg>", buf);
}

static struct verrs errs;

/* Run the rules; returns the number of errors; frees s. */
static int run(char *s)
{
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, 0);
        xmlDocPtr doc = NULL;
        char err[256];
        cr_assert_eq(xmlsafe_parse(s, strlen(s), &lim, &doc, err, sizeof err), XMLSAFE_OK, "%s",
                     err);
        memset(&errs, 0, sizeof errs);
        xmlNode *root = xmlDocGetRootElement(doc);
        int n = rules_fk7804_check(root, root, &errs);
        cr_assert_eq((size_t)n, errs.n + errs.dropped);
        xmlFreeDoc(doc);
        free(s);
        return n;
}

static bool has(const char *rule)
{
        for (size_t i = 0; i < errs.n; i++)
                if (strcmp(errs.items[i].rule, rule) == 0)
                        return true;
        return false;
}

static void dump(void)
{
        for (size_t i = 0; i < errs.n; i++)
                fprintf(stderr, "  %s %s: %s\n", errs.items[i].rule, errs.items[i].path,
                        errs.items[i].message);
}

#define ONLY(want_)                                                                                \
        do {                                                                                       \
                bool all_ = errs.n > 0;                                                            \
                for (size_t i_ = 0; i_ < errs.n; i_++)                                             \
                        all_ &= strcmp(errs.items[i_].rule, want_) == 0;                           \
                if (!all_)                                                                         \
                        dump();                                                                    \
                cr_assert(all_, "expected only %s errors", want_);                                 \
        } while (0)

#define OK(n)                                                                                      \
        do {                                                                                       \
                int n_ = (n);                                                                      \
                if (n_)                                                                            \
                        dump();                                                                    \
                cr_assert_eq(n_, 0);                                                               \
        } while (0)

static char *v1(void)
{
        return slurp("tests/data/gw/lisjp-v1-tolvan.xml");
}

static char *v2(void)
{
        return slurp("tests/data/gw/lisjp-v2-tolvan.xml");
}

#define CV(code, sys)                                                                              \
        "<tp:cv><tp:code>" code "</tp:code><tp:codeSystem>" sys "</tp:codeSystem></tp:cv>"

static const char *P1 = "<tp:start>2024-01-01</tp:start><tp:end>2024-01-14</tp:end>";

Test(rules_v1, template_valid)
{
        OK(run(v1()));
}

Test(rules_v1, versions)
{
        OK(run(sub(v1(), "<version>1.2</version>", "<version>1</version>")));
        OK(run(sub(v1(), "<version>1.2</version>", "<version>1.0</version>")));
        OK(run(sub(v1(), "<version>1.2</version>", "<version>1.1</version>")));
        run(sub(v1(), "<version>1.2</version>", "<version>1.3</version>"));
        ONLY("version");
        run(sub(v1(), "<version>1.2</version>", "<version>2.1</version>"));
        ONLY("version");
        run(sub(v1(), "<version>1.2</version>", "<version>3</version>"));
        ONLY("version");
        cr_assert_eq(fk7804_version_of("2.0"), FK7804_V2);
        cr_assert_eq(fk7804_version_of("1.2"), FK7804_V1);
        cr_assert_eq(fk7804_version_of("1.20"), FK7804_UNKNOWN);
}

Test(rules_v1, type)
{
        run(sub(v1(), "<tp:code>LISJP</tp:code>", "<tp:code>LUSE</tp:code>"));
        ONLY("type");
        run(sub(v1(), "b64ea353-e8f6-4832-b563-fc7d46f29548", "KV_INTYGSTYP"));
        ONLY("type");
}

Test(rules_v1, intyg_cardinality)
{
        run(sub(v1(), "<svar id=\"6\">",
                "<svar id=\"6\"><delsvar id=\"6.0\">x</delsvar></svar><svar id=\"6\">"));
        cr_assert(has("intyg"));
        cr_assert(has("q6"), "unexpected 6.0 too");
        /* svar 1: 4 is the most */
        char *s = v1();
        s = add_svar(
            s, "<svar id=\"1\"><instans>3</instans><delsvar id=\"1.1\">" CV(
                   "TELEFONKONTAKT",
                   "KV_FKMU_0001") "</delsvar><delsvar id=\"1.2\">2024-01-01</delsvar></svar>");
        s = add_svar(
            s, "<svar id=\"1\"><instans>4</instans><delsvar id=\"1.1\">" CV(
                   "JOURNALUPPGIFTER",
                   "KV_FKMU_0001") "</delsvar><delsvar id=\"1.2\">2024-01-01</delsvar></svar>");
        char *five = add_svar(
            strdup(s),
            "<svar id=\"1\"><instans>5</instans><delsvar id=\"1.1\">" CV(
                "JOURNALUPPGIFTER",
                "KV_FKMU_0001") "</delsvar><delsvar id=\"1.2\">2024-01-01</delsvar></svar>");
        OK(run(s));
        run(five);
        cr_assert(has("intyg"));
        cr_assert(has("q1"), "the fifth repeats a code");
        /* unknown answer ids */
        run(add_svar(v1(), "<svar id=\"99\"><delsvar id=\"99.1\">x</delsvar></svar>"));
        ONLY("intyg");
        run(add_svar(v1(), "<svar id=\"01\"><delsvar id=\"1.1\">" CV(
                               "TELEFONKONTAKT", "KV_FKMU_0001") "</delsvar></svar>"));
        cr_assert(has("intyg"));
}

Test(rules_v1, sick_leave_count)
{
        char *s = v1();
        s = sub(s, "<svar id=\"32\"><instans>1</instans>", "<svar id=\"x32\"><instans>1</instans>");
        s = sub(s, "<svar id=\"32\"><instans>2</instans>", "<svar id=\"x32\"><instans>2</instans>");
        run(s);
        cr_assert(has("intyg"));
        /* 4 periods ok, 5 not */
        const char *p3 = "<svar id=\"32\"><instans>3</instans><delsvar id=\"32.1\">" CV(
            "TRE_FJARDEDEL",
            "KV_FKMU_0003") "</delsvar><delsvar "
                            "id=\"32.2\"><tp:datePeriod><tp:start>2024-02-01</"
                            "tp:start><tp:end>2024-02-10</tp:end></tp:datePeriod></delsvar></svar>";
        const char *p4 = "<svar id=\"32\"><instans>4</instans><delsvar id=\"32.1\">" CV(
            "EN_FJARDEDEL",
            "KV_FKMU_0003") "</delsvar><delsvar "
                            "id=\"32.2\"><tp:datePeriod><tp:start>2024-02-11</"
                            "tp:start><tp:end>2024-02-20</tp:end></tp:datePeriod></delsvar></svar>";
        const char *p5 = "<svar id=\"32\"><instans>5</instans><delsvar id=\"32.1\">" CV(
            "EN_FJARDEDEL",
            "KV_FKMU_0003") "</delsvar><delsvar "
                            "id=\"32.2\"><tp:datePeriod><tp:start>2024-03-11</"
                            "tp:start><tp:end>2024-03-20</tp:end></tp:datePeriod></delsvar></svar>";
        s = add_svar(add_svar(v1(), p3), p4);
        OK(run(strdup(s)));
        run(add_svar(s, p5));
        cr_assert(has("intyg"));
        cr_assert(has("q32.1-R22"), "EN_FJARDEDEL twice");
}

static char *second_period(const char *start, const char *end)
{
        char to[128];
        snprintf(to, sizeof to, "<tp:start>%s</tp:start><tp:end>%s</tp:end>", start, end);
        return sub(v1(), "<tp:start>2024-01-15</tp:start><tp:end>2024-01-31</tp:end>", to);
}

Test(rules_v1, period_overlap_shared_day_counts)
{
        OK(run(second_period("2024-01-15", "2024-01-31"))); /* day after: fine */
        run(second_period("2024-01-14", "2024-01-31"));     /* shared day */
        ONLY("q32");
        cr_assert_str_eq(errs.items[0].path, "/RegisterCertificate/intyg/svar[@id='32'][2]");
        run(second_period("2024-01-13", "2024-01-31")); /* day before */
        ONLY("q32");
        run(second_period("2023-12-01", "2024-01-01")); /* ends on the first's first day */
        ONLY("q32");
        OK(run(second_period("2023-12-01", "2023-12-31")));
}

Test(rules_v1, period_values)
{
        run(sub(v1(), P1, "<tp:start>2024-01-14</tp:start><tp:end>2024-01-01</tp:end>"));
        ONLY("q32.2");
        OK(run(sub(v1(), P1, "<tp:start>2024-01-01</tp:start><tp:end>2024-01-01</tp:end>")));
        run(sub(v1(), P1, "<tp:start>2023-02-29</tp:start><tp:end>2023-03-01</tp:end>"));
        ONLY("q32.2");
        OK(run(sub(v1(), P1, "<tp:start>2023-12-29</tp:start><tp:end>2024-01-14</tp:end>")));
        run(sub(v1(), P1, "<tp:start>2024-1-01</tp:start><tp:end>2024-01-14</tp:end>"));
        ONLY("q32.2");
        run(sub(v1(),
                "<tp:datePeriod><tp:start>2024-01-01</tp:start><tp:end>2024-01-14</tp:end></"
                "tp:datePeriod>",
                "2024-01-01"));
        ONLY("q32.2");
}

Test(rules_v1, dates)
{
        OK(run(sub(v1(), "<delsvar id=\"1.2\">2024-01-02</delsvar>",
                   "<delsvar id=\"1.2\">2024-02-29</delsvar>")));
        run(sub(v1(), "<delsvar id=\"1.2\">2024-01-02</delsvar>",
                "<delsvar id=\"1.2\">2023-02-29</delsvar>"));
        ONLY("q1.2");
        run(sub(v1(), "<delsvar id=\"1.2\">2024-01-02</delsvar>",
                "<delsvar id=\"1.2\">20240102</delsvar>"));
        ONLY("q1.2");
        run(sub(v1(), "<delsvar id=\"1.2\">2024-01-02</delsvar>",
                "<delsvar id=\"1.2\"> 2024-01-02</delsvar>"));
        ONLY("q1.2"); /* castable, but does not start with the date */
        OK(run(sub(v1(), "<delsvar id=\"1.2\">2024-01-02</delsvar>",
                   "<delsvar id=\"1.2\">2024-01-02Z</delsvar>")));
}

static char *diag(const char *code, const char *sys)
{
        char to[256];
        snprintf(to, sizeof to, "<tp:code>%s</tp:code><tp:codeSystem>%s</tp:codeSystem>", code,
                 sys);
        return sub(v1(),
                   "<tp:code>M545</tp:code><tp:codeSystem>1.2.752.116.1.1.1.1.3</tp:codeSystem>",
                   to);
}

#define ICD "1.2.752.116.1.1.1.1.3"

Test(rules_v1, diagnosis_codes)
{
        OK(run(diag("M54", ICD)));   /* 3 characters */
        OK(run(diag("M5451", ICD))); /* 5 characters */
        run(diag("M54512", ICD));    /* 6 */
        ONLY("q6.2");
        run(diag("M5", ICD));
        ONLY("q6.2");
        run(diag("F32", ICD)); /* F needs 4 */
        ONLY("q6.2");
        OK(run(diag("F320", ICD)));
        run(diag("Z73", ICD)); /* Z73 needs 4 */
        ONLY("q6.2");
        OK(run(diag("Z730", ICD)));
        OK(run(diag("Z72", ICD)));
        OK(run(diag("z74", ICD)));
        run(diag("1AB", ICD));
        ONLY("q6.2");
        run(diag("M5_4", ICD));
        ONLY("q6.2");
        OK(run(diag("M54-", ICD)));
        run(diag("M54", "1.2.752.116.1.1.1")); /* the v2 OID is not a v1 code system */
        cr_assert(has("q6.2"));
        cr_assert(has("q6.2-6.4-6.6-R12"));
        run(diag("M54", "1x2.752.116.1.1.1.1.3"));
        cr_assert(has("q6.2"), "the OID is compared exactly, not as a regex");
        run(sub(v1(), "<tp:code>F320</tp:code><tp:codeSystem>1.2.752.116.1.1.1.1.3</tp:codeSystem>",
                "<tp:code>F32</tp:code><tp:codeSystem>1.2.752.116.1.1.1.1.3</tp:codeSystem>"));
        ONLY("q6.4");
}

Test(rules_v1, diagnosis_structure)
{
        run(sub(v1(), "<tp:code>F320</tp:code><tp:codeSystem>1.2.752.116.1.1.1.1.3</tp:codeSystem>",
                "<tp:code>F320</tp:code><tp:codeSystem>1.2.752.116.1.3.1.4.1</tp:codeSystem>"));
        ONLY("q6.2-6.4-6.6-R12");
        run(sub(v1(), "<delsvar id=\"6.3\">Lätt depression</delsvar>", ""));
        ONLY("q6.3-6.4");
        run(sub(
            v1(), "<delsvar id=\"6.3\">Lätt depression</delsvar>",
            "<delsvar id=\"6.3\">Lätt depression</delsvar><delsvar id=\"6.5\">Annat</delsvar>"));
        ONLY("q6.5-6.6-6.3");
        OK(run(sub(v1(), "<delsvar id=\"6.3\">Lätt depression</delsvar>",
                   "<delsvar id=\"6.3\">Lätt depression</delsvar><delsvar "
                   "id=\"6.5\">Annat</delsvar><delsvar id=\"6.6\">" CV("J06", ICD) "</delsvar>")));
        run(sub(v1(), "<delsvar id=\"6.1\">Ländryggssmärta</delsvar>", ""));
        ONLY("q6");
        run(sub(v1(), "<delsvar id=\"6.1\">Ländryggssmärta</delsvar>",
                "<delsvar id=\"6.1\">  \n </delsvar>"));
        ONLY("q6.1");
}

Test(rules_v1, basis_and_other)
{
        run(sub(v1(), "<delsvar id=\"1.3\">Samtal med arbetsgivaren</delsvar>", ""));
        ONLY("q1.1-1.3");
        run(sub(v1(), "<delsvar id=\"1.2\">2024-01-02</delsvar>",
                "<delsvar id=\"1.2\">2024-01-02</delsvar><delsvar id=\"1.3\">x</delsvar>"));
        ONLY("q1.3");
        run(sub(v1(), "<tp:code>ANNAT</tp:code>", "<tp:code>UNDERSOKNING</tp:code>"));
        cr_assert(has("q1"), "same basis code twice");
        cr_assert(has("q1.3"));
        run(sub(v1(), "<svar id=\"1\"><instans>1</instans>", "<svar id=\"1\">"));
        ONLY("q1");
        run(sub(v1(), "<svar id=\"1\"><instans>1</instans>",
                "<svar id=\"1\"><instans>0</instans>"));
        ONLY("instans-pattern");
        run(sub(v1(), "<tp:code>UNDERSOKNING</tp:code><tp:codeSystem>KV_FKMU_0001</tp:codeSystem>",
                "<tp:code>UNDERSOKNING</tp:code><tp:codeSystem>KV_FKMU_0002</tp:codeSystem>"));
        ONLY("q1.1");
        run(sub(v1(), "<tp:code>UNDERSOKNING</tp:code>", "<tp:code>FYSISKUNDERSOKNING</tp:code>"));
        ONLY("q1.1");
        run(sub(v1(), "<delsvar id=\"1.2\">2024-01-02</delsvar>",
                "<delsvar id=\"1.2\">2024-01-02</delsvar><delsvar id=\"1.4\">x</delsvar>"));
        ONLY("q1");
}

Test(rules_v1, occupation_and_current_work)
{
        run(sub(v1(), "<svar id=\"29\"><delsvar id=\"29.1\">Snickare, bygger hus</delsvar></svar>",
                ""));
        ONLY("q28.1-q29");
        run(sub(v1(), "<tp:code>NUVARANDE_ARBETE</tp:code>", "<tp:code>STUDIER</tp:code>"));
        ONLY("q28.1-q29");
        run(add_svar(v1(), "<svar id=\"28\"><instans>2</instans><delsvar id=\"28.1\">" CV(
                               "NUVARANDE_ARBETE", "KV_FKMU_0002") "</delsvar></svar>"));
        cr_assert(has("q28.1-R5"));
        OK(run(add_svar(v1(), "<svar id=\"28\"><instans>2</instans><delsvar id=\"28.1\">" CV(
                                  "STUDIER", "KV_FKMU_0002") "</delsvar></svar>")));
        run(sub(v1(), "<tp:code>NUVARANDE_ARBETE</tp:code>", "<tp:code>ARBETSLOS</tp:code>"));
        cr_assert(has("q28.1"));
}

Test(rules_v1, working_time_arrangement)
{
        run(sub(v1(),
                "<svar id=\"33\"><delsvar id=\"33.1\">true</delsvar><delsvar id=\"33.2\">Arbetar "
                "förmiddagar</delsvar></svar>",
                ""));
        ONLY("q32.1-33");
        run(sub(v1(), "<tp:code>HALFTEN</tp:code>", "<tp:code>TRE_FJARDEDEL</tp:code>"));
        cr_assert_eq(errs.n, 0);
        run(sub(sub(v1(), "<tp:code>HALFTEN</tp:code>", "<tp:code>TRE_FJARDEDEL</tp:code>"),
                "<tp:code>HELT_NEDSATT</tp:code>", "<tp:code>EN_FJARDEDEL</tp:code>"));
        cr_assert_eq(errs.n, 0);
        run(sub(sub(v1(), "<tp:code>HALFTEN</tp:code>", "<tp:code>HELT_NEDSATT</tp:code>"),
                "<tp:code>HELT_NEDSATT</tp:code><tp:codeSystem>KV_FKMU_0003</tp:codeSystem></"
                "tp:cv></delsvar><delsvar id=\"32.2\"><tp:datePeriod><tp:start>2024-01-15",
                "<tp:code>TRE_FJARDEDEL</tp:code><tp:codeSystem>KV_FKMU_0003</tp:codeSystem></"
                "tp:cv></delsvar><delsvar id=\"32.2\"><tp:datePeriod><tp:start>2024-01-15"));
        cr_assert_eq(errs.n, 0, "a partial degree in the second period is enough");
        char *only_full =
            sub(sub(v1(), "<tp:code>HALFTEN</tp:code>", "<tp:code>HELT_NEDSATT</tp:code>"),
                "<svar id=\"32\"><instans>2</instans>", "<svar id=\"x\"><instans>2</instans>");
        run(only_full);
        cr_assert(has("q32.1-33.1-R26"));
        run(sub(v1(), "<delsvar id=\"33.1\">true</delsvar>",
                "<delsvar id=\"33.1\">false</delsvar>"));
        ONLY("q33.1-33.2");
        run(sub(v1(), "<delsvar id=\"33.2\">Arbetar förmiddagar</delsvar>", ""));
        ONLY("q33.1-33.2");
        OK(run(sub(sub(v1(), "<delsvar id=\"33.2\">Arbetar förmiddagar</delsvar>", ""),
                   "<delsvar id=\"33.1\">true</delsvar>", "<delsvar id=\"33.1\">0</delsvar>")));
        run(sub(v1(), "<delsvar id=\"33.1\">true</delsvar>", "<delsvar id=\"33.1\">yes</delsvar>"));
        ONLY("q33.1");
        run(sub(v1(), "<delsvar id=\"34.1\">false</delsvar>",
                "<delsvar id=\"34.1\"><b>false</b></delsvar>"));
        ONLY("q34.1");
}

Test(rules_v1, prognosis)
{
        run(sub(v1(), "<delsvar id=\"39.3\">" CV("SEXTIO_DGR", "KV_FKMU_0007") "</delsvar>", ""));
        ONLY("q39.1-39.3");
        run(sub(v1(), "<tp:code>ATER_X_ANTAL_DGR</tp:code>",
                "<tp:code>STOR_SANNOLIKHET</tp:code>"));
        ONLY("q39.1-39.3");
        OK(run(sub(
            sub(v1(), "<tp:code>ATER_X_ANTAL_DGR</tp:code>", "<tp:code>STOR_SANNOLIKHET</tp:code>"),
            "<delsvar id=\"39.3\">" CV("SEXTIO_DGR", "KV_FKMU_0007") "</delsvar>", "")));
        run(sub(v1(), "<delsvar id=\"39.3\">",
                "<delsvar id=\"39.2\">Error</delsvar><delsvar id=\"39.3\">"));
        ONLY("q39");
        run(sub(v1(), "<tp:code>SEXTIO_DGR</tp:code>", "<tp:code>SJUTTIO_DGR</tp:code>"));
        ONLY("q39.3");
}

Test(rules_v1, measures)
{
        run(add_svar(v1(), "<svar id=\"40\"><instans>2</instans><delsvar id=\"40.1\">" CV(
                               "EJ_AKTUELLT", "KV_FKMU_0004") "</delsvar></svar>"));
        cr_assert(has("q40"));
        cr_assert(has("q40.1-44"));
        char *s =
            sub(sub(v1(), "<tp:code>ARBETSTRANING</tp:code>", "<tp:code>EJ_AKTUELLT</tp:code>"),
                "<svar id=\"44\"><delsvar id=\"44.1\">Arbetsträning via "
                "företagshälsovården</delsvar></svar>",
                "");
        OK(run(s));
        run(add_svar(v1(), "<svar id=\"40\"><instans>2</instans><delsvar id=\"40.1\">" CV(
                               "ARBETSTRANING", "KV_FKMU_0004") "</delsvar></svar>"));
        ONLY("q40.1-R29");
        char *ten = v1();
        const char *codes[] = {"ARBETSANPASSNING", "SOKA_NYTT_ARBETE", "BESOK_ARBETSPLATS",
                               "ERGONOMISK",       "HJALPMEDEL",       "KONFLIKTHANTERING",
                               "KONTAKT_FHV",      "OMFORDELNING",     "OVRIGA_ATGARDER"};
        for (int i = 0; i < 9; i++) {
                char one[512];
                snprintf(one, sizeof one,
                         "<svar id=\"40\"><instans>%d</instans><delsvar id=\"40.1\">" CV(
                             "%s", "KV_FKMU_0004") "</delsvar></svar>",
                         i + 2, codes[i]);
                ten = add_svar(ten, one);
        }
        char *eleven =
            add_svar(strdup(ten), "<svar id=\"40\"><instans>11</instans><delsvar id=\"40.1\">" CV(
                                      "ARBETSTRANING", "KV_FKMU_0004") "</delsvar></svar>");
        OK(run(ten));
        run(eleven);
        cr_assert(has("intyg"));
}

Test(rules_v1, contact_and_texts)
{
        run(sub(v1(), "<delsvar id=\"26.1\">true</delsvar>",
                "<delsvar id=\"26.1\">false</delsvar>"));
        ONLY("q26.1-26.2");
        OK(run(sub(v1(), "<delsvar id=\"26.2\">Vill diskutera rehabilitering</delsvar>", "")));
        run(sub(v1(), "<delsvar id=\"35.1\">Nedsatt rörlighet i ländryggen</delsvar>",
                "<delsvar id=\"35.1\"> </delsvar>"));
        ONLY("q35.1");
        run(sub(v1(), "<delsvar id=\"17.1\">Kan inte lyfta tungt</delsvar>",
                "<delsvar id=\"17.1\"><p>Kan inte</p></delsvar>"));
        ONLY("q17.1");
        run(sub(v1(), "<svar id=\"17\"><delsvar id=\"17.1\">Kan inte lyfta tungt</delsvar></svar>",
                ""));
        ONLY("intyg");
        run(sub(v1(), "<delsvar id=\"25.1\">Inga övriga upplysningar</delsvar>",
                "<delsvar id=\"25.2\">x</delsvar>"));
        ONLY("q25");
}

Test(rules_v1, additional_questions)
{
        OK(run(add_svar(v1(), "<svar id=\"9001\"><delsvar id=\"9001.1\">Svar</delsvar></svar>")));
        run(add_svar(v1(), "<svar id=\"9001\"><delsvar id=\"9001.2\">Svar</delsvar></svar>"));
        ONLY("q9000");
        run(add_svar(v1(), "<svar id=\"9001\"><delsvar id=\"9001.1\">a</delsvar></svar><svar "
                           "id=\"9001\"><delsvar id=\"9001.1\">b</delsvar></svar>"));
        ONLY("q9000");
        run(add_svar(v1(), "<svar id=\"9002\"><delsvar id=\"9002.1\"> </delsvar></svar>"));
        ONLY("q9000.1");
        OK(run(add_svar(v1(), "<svar id=\"9000\"><delsvar id=\"9000.1\">x</delsvar></svar>")));
}

static const char *SMITTA =
    "<svar id=\"27\"><delsvar id=\"27.1\">%s</delsvar></svar>"
    "<svar id=\"6\"><delsvar id=\"6.1\">Salmonella</delsvar><delsvar id=\"6.2\">" CV(
        "A02", ICD) "</delsvar></svar>"
                    "<svar id=\"32\"><instans>1</instans><delsvar id=\"32.1\">" CV(
                        "HALFTEN", "KV_FKMU_0003") "</delsvar><delsvar "
                                                   "id=\"32.2\"><tp:datePeriod><tp:start>2024-01-"
                                                   "01</tp:start><tp:end>2024-01-07</tp:end></"
                                                   "tp:datePeriod></delsvar></svar>";

static char *smitta(const char *value)
{
        char *s = v1();
        char *from = strstr(s, "<svar id=\"1\">"), *to = strstr(s, "</rg:intyg>");
        char body[2048];
        snprintf(body, sizeof body, SMITTA, value);
        size_t head = (size_t)(from - s);
        char *r = malloc(head + strlen(body) + strlen(to) + 1);
        memcpy(r, s, head);
        strcpy(r + head, body);
        strcat(r, to);
        free(s);
        return r;
}

Test(rules_v1, smittbararpenning_switch)
{
        OK(run(smitta("true")));
        OK(run(smitta("1")));
        run(smitta("false"));
        cr_assert(has("q27.1"));
        cr_assert(!has("intyg"), "27 given: intyg's own minimums are satisfied");
        size_t n27 = 0;
        for (size_t i = 0; i < errs.n; i++)
                n27 += strcmp(errs.items[i].rule, "q27.1") == 0;
        cr_assert_eq(n27, 6, "one per required answer");
        cr_assert(has("q32.1-33"), "HALFTEN needs 33 when 27.1 is not true");
        run(smitta("ja"));
        cr_assert(has("q27.1"));
}

Test(rules_v2, template_valid)
{
        OK(run(v2()));
}

Test(rules_v2, v1_codes_refused)
{
        run(sub(v2(), "<tp:code>FYSISKUNDERSOKNING</tp:code>", "<tp:code>UNDERSOKNING</tp:code>"));
        ONLY("q1.1");
        run(add_svar(v2(), "<svar id=\"40\"><instans>1</instans><delsvar id=\"40.1\">" CV(
                               "ARBETSTRANING", "KV_FKMU_0004") "</delsvar></svar>"));
        ONLY("intyg");
        run(add_svar(v2(), "<svar id=\"20\"><delsvar id=\"20.1\">x</delsvar></svar>"));
        ONLY("intyg");
        run(sub(v2(), "<delsvar id=\"39.4\">3</delsvar>",
                "<delsvar id=\"39.4\">3</delsvar><delsvar id=\"39.3\">" CV(
                    "SEXTIO_DGR", "KV_FKMU_0007") "</delsvar>"));
        ONLY("q39");
}

Test(rules_v2, prognosis_months)
{
        OK(run(sub(v2(), "<delsvar id=\"39.4\">3</delsvar>", "<delsvar id=\"39.4\">1</delsvar>")));
        OK(run(sub(v2(), "<delsvar id=\"39.4\">3</delsvar>", "<delsvar id=\"39.4\">99</delsvar>")));
        run(sub(v2(), "<delsvar id=\"39.4\">3</delsvar>", "<delsvar id=\"39.4\">0</delsvar>"));
        ONLY("q39.4");
        run(sub(v2(), "<delsvar id=\"39.4\">3</delsvar>", "<delsvar id=\"39.4\">100</delsvar>"));
        ONLY("q39.4");
        run(sub(v2(), "<delsvar id=\"39.4\">3</delsvar>", ""));
        ONLY("q39.1-39.4");
        run(sub(v2(), "<tp:code>ATER_X_ANTAL_MANADER</tp:code>",
                "<tp:code>STOR_SANNOLIKHET</tp:code>"));
        ONLY("q39.1-39.4");
        run(sub(sub(v2(), "<tp:code>ATER_X_ANTAL_MANADER</tp:code>",
                    "<tp:code>PROGNOS_OKLAR</tp:code>"),
                "<delsvar id=\"39.4\">3</delsvar>", ""));
        ONLY("q39.1-39.2");
        OK(run(sub(sub(v2(), "<tp:code>ATER_X_ANTAL_MANADER</tp:code>",
                       "<tp:code>PROGNOS_OKLAR</tp:code>"),
                   "<delsvar id=\"39.4\">3</delsvar>", "<delsvar id=\"39.2\">Oklart</delsvar>")));
}

Test(rules_v2, lengths_and_codes)
{
        char fifty[64], fiftyone[64], tag[128];
        memset(fifty, 'a', 50);
        fifty[50] = '\0';
        memset(fiftyone, 'a', 51);
        fiftyone[51] = '\0';
        snprintf(tag, sizeof tag, "<delsvar id=\"1.3\">%s</delsvar>", fifty);
        OK(run(sub(v2(), "<delsvar id=\"1.3\">Samtal med arbetsgivaren</delsvar>", tag)));
        snprintf(tag, sizeof tag, "<delsvar id=\"1.3\">%s</delsvar>", fiftyone);
        run(sub(v2(), "<delsvar id=\"1.3\">Samtal med arbetsgivaren</delsvar>", tag));
        ONLY("q1.3");
        char *t4000 = malloc(4100), *t4001 = malloc(4100);
        strcpy(t4000, "<delsvar id=\"44.1\">");
        size_t o = strlen(t4000);
        memset(t4000 + o, 'b', 4000);
        strcpy(t4000 + o + 4000, "</delsvar>");
        strcpy(t4001, "<delsvar id=\"44.1\">b");
        memset(t4001 + o + 1, 'b', 4000);
        strcpy(t4001 + o + 4001, "</delsvar>");
        OK(run(sub(v2(), "<delsvar id=\"44.1\">Arbetsträning via företagshälsovården</delsvar>",
                   t4000)));
        run(sub(v2(), "<delsvar id=\"44.1\">Arbetsträning via företagshälsovården</delsvar>",
                t4001));
        ONLY("q44.1");
        free(t4000);
        free(t4001);
        run(sub(v2(), "<tp:code>M545</tp:code><tp:codeSystem>1.2.752.116.1.1.1</tp:codeSystem>",
                "<tp:code>M545</tp:code><tp:codeSystem>1.2.752.116.1.3.1.4.1</tp:codeSystem>"));
        cr_assert(has("q6.2"));
        run(sub(v2(), "<tp:start>2024-01-15</tp:start>", "<tp:start>2024-01-14</tp:start>"));
        ONLY("q32");
}

Test(rules_v2, smittbararpenning_false_needs_answers)
{
        run(sub(
            v2(),
            "<svar id=\"35\"><delsvar id=\"35.1\">Nedsatt rörlighet i ländryggen</delsvar></svar>",
            ""));
        ONLY("q27.1");
}
