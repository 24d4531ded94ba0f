/*
 * test_hsa.c - the HSA directory: level predicate grammar, every resolution rule on each of the
 * sample regions' modelling styles (ops/hsa-extract.ldif), problems of a broken extract with
 * their lines, fatal load errors, reload that fails and keeps the old table, concurrent readers
 * during reloads, and the `hsa lookup|check` command.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_hsa.h"
#include "hsa.h"

#define SRC        INTYGSGW_SOURCE_DIR
#define SAMPLE     SRC "/ops/hsa-extract.ldif"
#define SAMPLE_MAP SRC "/ops/unit-mapping.csv"
#define DATA       SRC "/tests/data/hsa/"
#define LEVEL      "businessClassificationCode=1100,1102,1500"

static struct hsa_dir *load_ok(const char *ldif, const char *map, const char *level,
                               struct hsa_load_report *rep)
{
        struct hsa_opts o = {ldif, map, level};
        char err[300] = "";
        struct hsa_dir *d = hsa_dir_load(&o, rep, err, sizeof err);
        cr_assert_not_null(d, "load %s: %s", ldif, err);
        return d;
}

/* ---- predicate ---- */

static bool match_text(const char *expr, const char *ldif_text)
{
        char err[200] = "";
        struct hsa_level *l = hsa_level_parse(expr, err, sizeof err);
        cr_assert_not_null(l, "%s: %s", expr, err);
        FILE *f = fmemopen((void *)ldif_text, strlen(ldif_text), "r");
        cr_assert_not_null(f);
        struct ldif_reader *r = ldif_reader_new(f);
        struct ldif_entry e;
        cr_assert_eq(ldif_next(r, &e, err, sizeof err), LDIF_OK);
        bool m = hsa_level_match(l, &e);
        ldif_reader_free(r);
        fclose(f);
        hsa_level_free(l);
        return m;
}

static const char *UNIT = "dn: ou=X,o=Y\n"
                          "objectClass: hsaHealthCareUnit\n"
                          "businessClassificationCode: 1100 \n"
                          "businessClassificationCode: 2200\n"
                          "careType: 02\n"
                          "countyCode: 14\n";

Test(level, matching)
{
        cr_assert(match_text("businessClassificationCode=1100", UNIT));
        cr_assert(match_text("BUSINESSCLASSIFICATIONCODE = 9999 , 2200", UNIT));
        cr_assert(!match_text("businessClassificationCode=110", UNIT));
        cr_assert(match_text("businessClassificationCode=11*", UNIT));
        cr_assert(!match_text("businessClassificationCode=3*", UNIT));
        cr_assert(match_text("careType=*", UNIT));
        cr_assert(!match_text("hsaBusinessType=*", UNIT));
        cr_assert(match_text("objectClass=hsahealthcareunit", UNIT));
        cr_assert(match_text("careType=02 & countyCode=14", UNIT));
        cr_assert(!match_text("careType=02 & countyCode=01", UNIT));
        cr_assert(match_text("careType=01 | countyCode=14", UNIT));
        cr_assert(!match_text("!careType=02", UNIT));
        cr_assert(match_text("!(careType=01 | countyCode=01)", UNIT));
        /* & binds tighter than | */
        cr_assert(match_text("careType=01 & countyCode=01 | careType=02", UNIT));
        cr_assert(!match_text("careType=01 & (countyCode=01 | careType=02)", UNIT));
        cr_assert(match_text("!!careType=02", UNIT));
}

static void parse_fails(const char *expr, const char *offset, const char *why)
{
        char err[300] = "";
        struct hsa_level *l = hsa_level_parse(expr, err, sizeof err);
        cr_assert_null(l, "'%s' parsed", expr);
        cr_assert(strncmp(err, offset, strlen(offset)) == 0, "'%s': err '%s', want '%s'", expr, err,
                  offset);
        cr_assert_not_null(strstr(err, why), "'%s': err '%s' lacks '%s'", expr, err, why);
}

Test(level, errors_name_the_offset)
{
        parse_fails("", "offset 0: ", "empty");
        parse_fails("   ", "offset 3: ", "empty");
        parse_fails("businessClasificationCode=1100", "offset 0: ", "unknown attribute");
        parse_fails("careType=01 & verksamhet=1", "offset 14: ", "unknown attribute");
        parse_fails("careType 01", "offset 9: ", "'=' expected");
        parse_fails("careType=", "offset 9: ", "value expected");
        parse_fails("careType=01,", "offset 12: ", "value expected");
        parse_fails("(careType=01", "offset 12: ", "')' expected");
        parse_fails("careType=01)", "offset 11: ", "unexpected ')'");
        parse_fails("careType=01 careType=02", "offset 12: ", "unexpected 'c'");
        parse_fails("careType=01 &", "offset 13: ", "attribute name expected");
        parse_fails("careType=0$1", "offset 10: ", "unexpected '$'");
        cr_assert_null(hsa_level_parse(NULL, (char[64]){0}, 64));
}

Test(level, limits_both_sides)
{
        char expr[HSA_LEVEL_MAX_BYTES * 2], err[300];
        /* nesting */
        for (int depth = HSA_LEVEL_MAX_DEPTH; depth <= HSA_LEVEL_MAX_DEPTH + 1; depth++) {
                size_t n = 0;
                for (int i = 0; i < depth; i++)
                        expr[n++] = '(';
                n += (size_t)sprintf(expr + n, "careType=1");
                for (int i = 0; i < depth; i++)
                        expr[n++] = ')';
                expr[n] = '\0';
                struct hsa_level *l = hsa_level_parse(expr, err, sizeof err);
                if (depth <= HSA_LEVEL_MAX_DEPTH) {
                        cr_assert_not_null(l, "depth %d: %s", depth, err);
                } else {
                        cr_assert_null(l, "depth %d parsed", depth);
                        cr_assert_not_null(strstr(err, "nested deeper"), "%s", err);
                }
                hsa_level_free(l);
        }
        /* values */
        for (int nv = HSA_LEVEL_MAX_VALUES; nv <= HSA_LEVEL_MAX_VALUES + 1; nv++) {
                size_t n = (size_t)sprintf(expr, "careType=");
                for (int i = 0; i < nv; i++)
                        n += (size_t)sprintf(expr + n, i ? ",%d" : "%d", i % 10);
                struct hsa_level *l = hsa_level_parse(expr, err, sizeof err);
                cr_assert_eq(l != NULL, nv == HSA_LEVEL_MAX_VALUES, "%d values: %s", nv, err);
                hsa_level_free(l);
        }
        /* bytes */
        memset(expr, ' ', HSA_LEVEL_MAX_BYTES + 1);
        memcpy(expr, "careType=1", 10);
        expr[HSA_LEVEL_MAX_BYTES] = '\0';
        struct hsa_level *l = hsa_level_parse(expr, err, sizeof err);
        cr_assert_not_null(l, "%s", err);
        hsa_level_free(l);
        expr[HSA_LEVEL_MAX_BYTES] = ' ';
        expr[HSA_LEVEL_MAX_BYTES + 1] = '\0';
        cr_assert_null(hsa_level_parse(expr, err, sizeof err));
        cr_assert_not_null(strstr(err, "longer than"), "%s", err);
        /* a 47-character value fits, 48 does not */
        char v[100];
        snprintf(v, sizeof v, "careType=%047d", 1);
        l = hsa_level_parse(v, err, sizeof err);
        cr_assert_not_null(l, "%s", err);
        hsa_level_free(l);
        snprintf(v, sizeof v, "careType=%048d", 1);
        cr_assert_null(hsa_level_parse(v, err, sizeof err));
}

Test(hsa, id_normalise)
{
        char out[HSA_ID_MAX + 1];
        cr_assert(hsa_id_normalise(" se2321000016-a100 ", out));
        cr_assert_str_eq(out, "SE2321000016-A100");
        cr_assert(hsa_id_normalise("SE 2321000016-A1 00", out));
        cr_assert_str_eq(out, "SE2321000016-A100");
        cr_assert(!hsa_id_normalise("", out));
        cr_assert(!hsa_id_normalise("  ", out));
        cr_assert(!hsa_id_normalise(NULL, out));
        cr_assert(!hsa_id_normalise("SE2321000016/A100", out));
        cr_assert(!hsa_id_normalise("SE23210000\xc3\x85", out));
        char id[HSA_ID_MAX + 2];
        memset(id, 'A', HSA_ID_MAX);
        id[HSA_ID_MAX] = '\0';
        cr_assert(hsa_id_normalise(id, out));
        id[HSA_ID_MAX] = 'A';
        id[HSA_ID_MAX + 1] = '\0';
        cr_assert(!hsa_id_normalise(id, out));
}

/* ---- resolution on the sample's three modelling styles ---- */

struct expect {
        const char *unit;
        const char *followup;
        enum tag_resolution res;
        const char *provider;
        const char *county;
        const char *muni;
};

static const struct expect sample[] = {
    /* Region A, Stockholm: the whole hospital is one vårdenhet */
    {"SE2321000016-A111", "SE2321000016-A110", TAG_LEVEL, "SE2321000016-0001", "01", "0184"},
    {"SE2321000016-A112", "SE2321000016-A112", TAG_LEVEL, "SE2321000016-0001", "01", "0184"},
    {"SE2321000016-A121", "SE2321000016-A120", TAG_LEVEL, "SE2321000016-0001", "01", "0184"},
    {"SE2321000016-A130", "SE2321000016-A110", TAG_MAPPING, "SE2321000016-0001", "01", "0184"},
    {"SE2321000016-A140", "SE2321000016-A100", TAG_COARSER, "SE2321000016-0001", "01", "0184"},
    {"SE2321000016-A100", "SE2321000016-A100", TAG_COARSER, "SE2321000016-0001", "01", "0184"},
    {"SE2321000016-A210", "SE2321000016-A210", TAG_LEVEL, "SE2321000016-0001", "01", "0184"},
    {"SE2321000016-A221", "SE2321000016-A220", TAG_LEVEL, "SE2321000016-0001", "01", "0180"},
    {"SE2321000016-A910", "SE2321000016-A910", TAG_UNRESOLVED, "SE2321000016-0001", "01", "0180"},
    /* Region B, Västra Götaland: clinics are vårdenheter, wards their members */
    {"SE2321000131-B110", "SE2321000131-B110", TAG_LEVEL, "SE2321000131-0001", "14", "1480"},
    {"SE2321000131-B111", "SE2321000131-B110", TAG_LEVEL, "SE2321000131-0001", "14", "1480"},
    {"SE2321000131-B112", "SE2321000131-B112", TAG_LEVEL, "SE2321000131-0001", "14", "1480"},
    {"SE2321000131-B121", "SE2321000131-B120", TAG_LEVEL, "SE2321000131-0001", "14", "1480"},
    {"SE2321000131-B130", "SE2321000131-B130", TAG_COARSER, "SE2321000131-0001", "14", "1480"},
    {"SE2321000131-B140", "SE2321000131-B210", TAG_MAPPING, "SE2321000131-0001", "14", "1480"},
    {"SE2321000131-B310", "SE2321000131-B220", TAG_COARSER, "SE2321000131-0001", "14", "1441"},
    {"SE2321000131-B200", "SE2321000131-B200", TAG_UNRESOLVED, "SE2321000131-0001", "14", "1480"},
    /* Region C, Uppsala: wards are vårdenheter under clinics that are plain units */
    {"SE2321000032-C111", "SE2321000032-C110", TAG_LEVEL, "SE2321000032-0001", "03", "0380"},
    {"SE2321000032-C112", "SE2321000032-C110", TAG_LEVEL, "SE2321000032-0001", "03", "0380"},
    {"SE2321000032-C113", "SE2321000032-C113", TAG_LEVEL, "SE2321000032-0001", "03", "0380"},
    {"SE2321000032-C114", "SE2321000032-C110", TAG_LEVEL, "SE2321000032-0001", "03", "0380"},
    {"SE2321000032-C121", "SE2321000032-C120", TAG_LEVEL, "SE2321000032-0001", "03", "0380"},
    {"SE2321000032-C130", "SE2321000032-C130", TAG_COARSER, "SE2321000032-0001", "03", "0380"},
    {"SE2321000032-C220", "SE2321000032-C220", TAG_LEVEL, "SE2321000032-0001", "03", "0382"},
    {"SE2321000032-C230", "SE2321000032-C240", TAG_MAPPING, "SE2321000032-0001", "03", "0360"},
    {"SE2321000032-C100", "SE2321000032-C100", TAG_UNRESOLVED, "SE2321000032-0001", "03", "0380"},
};

Test(hsa, sample_regions_each_rule)
{
        struct hsa_load_report rep;
        struct hsa_dir *d = load_ok(SAMPLE, SAMPLE_MAP, LEVEL, &rep);
        cr_assert_eq(rep.skipped, 0);
        cr_assert_eq(rep.n_errors, 0);
        cr_assert_eq(rep.problems, 0, "the sample extract should be clean");
        cr_assert_eq(rep.mappings, 3);
        cr_assert_eq(rep.units, 44);
        cr_assert_eq(rep.entries, 48);
        for (size_t i = 0; i < sizeof sample / sizeof sample[0]; i++) {
                const struct expect *x = &sample[i];
                struct intyg_tags t;
                hsa_tag(d, x->unit, x->provider, &t);
                cr_assert_str_eq(t.unit_hsa, x->unit);
                cr_assert(t.unit_known, "%s", x->unit);
                cr_assert_str_eq(t.followup_hsa, x->followup, "%s", x->unit);
                cr_assert_eq(t.resolution, x->res, "%s: %s", x->unit,
                             tag_resolution_name(t.resolution));
                cr_assert_str_eq(t.provider_hsa, x->provider, "%s", x->unit);
                cr_assert_str_eq(t.county, x->county, "%s", x->unit);
                cr_assert_str_eq(t.municipality, x->muni, "%s", x->unit);
                cr_assert(!t.provider_mismatch, "%s", x->unit);
        }
        hsa_dir_free(d);
}

Test(hsa, the_level_decides_not_the_vardenhet_flag)
{
        /* The same predicate over three regions: Stockholm's ward resolves to its clinic
         * although its vårdenhet is the hospital; Uppsala's ward is a vårdenhet but still
         * resolves to its clinic. A different predicate moves every region the same way. */
        struct hsa_dir *d = load_ok(SAMPLE, NULL, "businessClassificationCode=1000,1500", NULL);
        struct intyg_tags t;
        hsa_tag(d, "SE2321000016-A111", NULL, &t);
        cr_assert_str_eq(t.followup_hsa, "SE2321000016-A100");
        cr_assert_eq(t.resolution, TAG_LEVEL);
        hsa_tag(d, "SE2321000131-B111", NULL, &t);
        cr_assert_str_eq(t.followup_hsa, "SE2321000131-B100");
        cr_assert_eq(t.resolution, TAG_LEVEL);
        hsa_tag(d, "SE2321000032-C111", NULL, &t);
        cr_assert_str_eq(t.followup_hsa, "SE2321000032-C100");
        cr_assert_eq(t.resolution, TAG_LEVEL);
        /* without a mapping table, the mapped unit falls to the next rule */
        hsa_tag(d, "SE2321000016-A130", NULL, &t);
        cr_assert_str_eq(t.followup_hsa, "SE2321000016-A100");
        cr_assert_eq(t.resolution, TAG_LEVEL);
        hsa_dir_free(d);
}

Test(hsa, unknown_unit_and_mismatch)
{
        struct hsa_dir *d = load_ok(SAMPLE, SAMPLE_MAP, LEVEL, NULL);
        struct intyg_tags t;
        hsa_tag(d, "SE2321000016-ZZZZ", "SE2321000016-0001", &t);
        cr_assert(!t.unit_known);
        cr_assert_eq(t.resolution, TAG_UNRESOLVED);
        cr_assert_str_eq(t.followup_hsa, "SE2321000016-ZZZZ");
        cr_assert_str_eq(t.provider_hsa, "SE2321000016-0001"); /* the intyg's own */
        cr_assert_str_eq(t.county, "");
        cr_assert(!t.provider_mismatch);
        /* case and spaces do not matter */
        hsa_tag(d, " se2321000016-a111", "se2321000016-0001 ", &t);
        cr_assert(t.unit_known);
        cr_assert_str_eq(t.unit_hsa, " se2321000016-a111"); /* as in the intyg */
        cr_assert_str_eq(t.followup_hsa, "SE2321000016-A110");
        cr_assert(!t.provider_mismatch);
        /* Stockholm unit, intyg claims Västra Götaland's provider */
        hsa_tag(d, "SE2321000016-A111", "SE2321000131-0001", &t);
        cr_assert(t.provider_mismatch);
        cr_assert_str_eq(t.provider_hsa, "SE2321000016-0001");
        /* a provider that is not even an HSA-id */
        hsa_tag(d, "SE2321000016-A111", "not/an/id", &t);
        cr_assert(t.provider_mismatch);
        /* not an HSA-id, over-long: unknown, never a crash */
        char longid[200];
        memset(longid, 'A', sizeof longid - 1);
        longid[sizeof longid - 1] = '\0';
        hsa_tag(d, longid, NULL, &t);
        cr_assert(!t.unit_known);
        cr_assert_eq(strlen(t.unit_hsa), HSA_ID_MAX);
        hsa_tag(d, "", NULL, &t);
        cr_assert(!t.unit_known);
        hsa_tag(NULL, "SE2321000016-A111", "SE2321000016-0001", &t);
        cr_assert(!t.unit_known);
        cr_assert_str_eq(t.provider_hsa, "SE2321000016-0001");
        hsa_dir_free(d);
}

Test(hsa, mapping_of_units_outside_the_extract)
{
        struct hsa_load_report rep;
        struct hsa_dir *d = load_ok(DATA "broken.ldif", DATA "mapping-unknown.csv",
                                    "businessClassificationCode=1100", &rep);
        cr_assert_eq(rep.mappings, 3);
        struct intyg_tags t;
        /* a unit the extract lacks, mapped to a known one: mapping, geography from the target */
        hsa_tag(d, "TST-GONE", "TST-VG1", &t);
        cr_assert(!t.unit_known);
        cr_assert_eq(t.resolution, TAG_MAPPING);
        cr_assert_str_eq(t.followup_hsa, "TST-K1");
        cr_assert_str_eq(t.provider_hsa, "TST-VG1");
        cr_assert_str_eq(t.county, "99");
        /* a known unit mapped to a unit the extract lacks (quoted, lower-case in the CSV) */
        hsa_tag(d, "TST-K2", NULL, &t);
        cr_assert(t.unit_known);
        cr_assert_eq(t.resolution, TAG_MAPPING);
        cr_assert_str_eq(t.followup_hsa, "TST-ELSEWHERE");
        /* mapping wins over the level */
        hsa_tag(d, "TST-W1", NULL, &t);
        cr_assert_eq(t.resolution, TAG_MAPPING);
        cr_assert_str_eq(t.followup_hsa, "TST-K2");
        cr_assert_str_eq(hsa_dir_mapping(d, "tst-w1"), "TST-K2");
        cr_assert_null(hsa_dir_mapping(d, "TST-K1"));
        hsa_dir_free(d);
}

/* ---- a broken extract: every problem with its line ---- */

struct seen {
        size_t n;
        struct {
                enum hsa_problem_kind kind;
                unsigned long line;
                char id[HSA_ID_MAX + 1];
                char detail[200];
        } p[64];
};

static void collect(void *ctx, const struct hsa_problem *p)
{
        struct seen *s = ctx;
        if (s->n >= 64)
                return;
        s->p[s->n].kind = p->kind;
        s->p[s->n].line = p->line;
        snprintf(s->p[s->n].id, sizeof s->p[0].id, "%s", p->hsa_id);
        snprintf(s->p[s->n].detail, sizeof s->p[0].detail, "%s", p->detail);
        s->n++;
}

static bool has(const struct seen *s, enum hsa_problem_kind k, unsigned long line, const char *id)
{
        for (size_t i = 0; i < s->n; i++)
                if (s->p[i].kind == k && s->p[i].line == line && strcmp(s->p[i].id, id) == 0)
                        return true;
        return false;
}

Test(hsa, broken_extract_reports_and_skips)
{
        struct hsa_load_report rep;
        struct hsa_dir *d =
            load_ok(DATA "broken.ldif", NULL, "businessClassificationCode=1100", &rep);
        cr_assert_eq(rep.entries, 13);
        cr_assert_eq(rep.units, 5);
        cr_assert_eq(rep.skipped, 6);
        cr_assert_eq(rep.n_errors, 6);
        cr_assert_not_null(strstr(rep.first_errors[0], "broken.ldif:30: no ':'"), "%s",
                           rep.first_errors[0]);
        struct seen s = {0};
        size_t n = hsa_dir_problems(d, collect, &s);
        cr_assert_eq(n, s.n);
        cr_assert_eq(n, rep.problems);
        cr_assert(has(&s, HSA_PROBLEM_BROKEN_ENTRY, 30, ""));
        cr_assert(has(&s, HSA_PROBLEM_DUPLICATE_ID, 33, "tst-k1"));
        cr_assert(has(&s, HSA_PROBLEM_DANGLING_PARENT, 37, "TST-DANG"));
        cr_assert(has(&s, HSA_PROBLEM_NO_COUNTY, 37, "TST-DANG"));
        cr_assert(has(&s, HSA_PROBLEM_NO_PROVIDER, 37, "TST-DANG"));
        cr_assert(has(&s, HSA_PROBLEM_BAD_VALUE, 45, "TST-W1"));
        cr_assert(has(&s, HSA_PROBLEM_CARE_UNIT_NO_PROVIDER, 41, "TST-W1"));
        cr_assert(has(&s, HSA_PROBLEM_BAD_VALUE, 52, "TST-K2"));
        cr_assert(has(&s, HSA_PROBLEM_MEMBER_UNKNOWN, 24, "TST-K1"));
        cr_assert(has(&s, HSA_PROBLEM_MEMBER_CONFLICT, 51, "TST-W1"));
        cr_assert(has(&s, HSA_PROBLEM_BROKEN_ENTRY, 56, ""));
        cr_assert(has(&s, HSA_PROBLEM_BROKEN_ENTRY, 62, ""));
        cr_assert(has(&s, HSA_PROBLEM_BROKEN_ENTRY, 66, ""));
        cr_assert(has(&s, HSA_PROBLEM_DUPLICATE_DN, 69, "TST-K3"));
        cr_assert_eq(n, 14);

        /* what survived resolves */
        struct intyg_tags t;
        hsa_tag(d, "TST-K1", "TST-VG1", &t);
        cr_assert_eq(t.resolution, TAG_LEVEL);
        cr_assert_str_eq(t.county, "99");
        hsa_tag(d, "TST-W1", NULL, &t); /* a vårdenhet below the level unit: level */
        cr_assert_eq(t.resolution, TAG_LEVEL);
        cr_assert_str_eq(t.followup_hsa, "TST-K1");
        cr_assert_str_eq(t.provider_hsa, "TST-VG1"); /* via the member-of vårdenhet */
        cr_assert_str_eq(t.county, "99");            /* its own '1X' was ignored */
        hsa_tag(d, "TST-K2", NULL, &t);
        cr_assert_eq(t.resolution, TAG_COARSER);
        hsa_tag(d, "TST-DANG", "TST-VG1", &t);
        cr_assert(t.unit_known);
        cr_assert_eq(t.resolution, TAG_UNRESOLVED);
        cr_assert_str_eq(t.provider_hsa, "TST-VG1"); /* none in the directory: the intyg's */
        cr_assert(!t.provider_mismatch);
        hsa_tag(d, "TST-K3", NULL, &t); /* the duplicate DN was skipped */
        cr_assert(!t.unit_known);
        struct hsa_unit_info u;
        cr_assert(hsa_dir_find(d, "tst-k1", &u));
        cr_assert_eq(u.line, 18); /* the first TST-K1 is kept, not the duplicate */
        cr_assert(u.is_care_unit);
        cr_assert(u.at_level);
        cr_assert_str_eq(u.organisation, "Testregionen");
        cr_assert(hsa_dir_find(d, "TST-DANG", &u));
        cr_assert(u.dangling);
        cr_assert(hsa_dir_find(d, "TST-K2", &u));
        cr_assert_str_eq(u.start_date, ""); /* 2019-02-30 ignored */
        cr_assert(!hsa_dir_unit(d, 5, &u));
        cr_assert(hsa_dir_unit(d, 4, &u));
        hsa_dir_free(d);
}

Test(hsa, report_keeps_the_first_errors_and_counts_all)
{
        /* 12 broken records: 8 kept, 12 counted */
        char path[] = "/tmp/test_hsa_XXXXXX";
        int fd = mkstemp(path);
        cr_assert(fd >= 0);
        FILE *f = fdopen(fd, "w");
        for (int i = 0; i < 12; i++)
                fprintf(f, "dn: ou=%d,c=SE\nhsaIdentity: BAD/%d\n\n", i, i);
        fprintf(f, "dn: ou=ok,c=SE\nhsaIdentity: OK-1\n");
        fclose(f);
        struct hsa_load_report rep;
        struct hsa_dir *d = load_ok(path, NULL, LEVEL, &rep);
        unlink(path);
        cr_assert_eq(rep.n_errors, 12);
        cr_assert_eq(rep.skipped, 12);
        cr_assert_eq(rep.units, 1);
        cr_assert_not_null(strstr(rep.first_errors[7], ":23: bad hsaIdentity"), "%s",
                           rep.first_errors[7]);
        hsa_dir_free(d);
}

Test(hsa, fatal_load_errors)
{
        struct hsa_load_report rep;
        char err[300];
        struct hsa_opts o = {DATA "no-such.ldif", NULL, LEVEL};
        cr_assert_null(hsa_dir_load(&o, &rep, err, sizeof err));
        cr_assert_not_null(strstr(err, "no-such.ldif: No such file"), "%s", err);
        o = (struct hsa_opts){SAMPLE, NULL, "careType=01 &"};
        cr_assert_null(hsa_dir_load(&o, &rep, err, sizeof err));
        cr_assert_not_null(strstr(err, "hsa.level: offset 13"), "%s", err);
        o = (struct hsa_opts){SAMPLE, NULL, NULL};
        cr_assert_null(hsa_dir_load(&o, &rep, err, sizeof err));
        o = (struct hsa_opts){NULL, NULL, LEVEL};
        cr_assert_null(hsa_dir_load(&o, &rep, err, sizeof err));
        o = (struct hsa_opts){SAMPLE, DATA "mapping-conflict.csv", LEVEL};
        cr_assert_null(hsa_dir_load(&o, &rep, err, sizeof err));
        cr_assert_not_null(strstr(err, "mapping-conflict.csv:4: TST-W1 is mapped twice"), "%s",
                           err);
        o = (struct hsa_opts){SAMPLE, DATA "mapping-badid.csv", LEVEL};
        cr_assert_null(hsa_dir_load(&o, &rep, err, sizeof err));
        cr_assert_not_null(strstr(err, "mapping-badid.csv:2: second column"), "%s", err);
        o = (struct hsa_opts){SAMPLE, DATA "no-such.csv", LEVEL};
        cr_assert_null(hsa_dir_load(&o, &rep, err, sizeof err));
}

Test(hsa, mapping_line_limit_both_sides)
{
        for (int extra = 0; extra <= 1; extra++) {
                char path[] = "/tmp/test_hsa_map_XXXXXX";
                int fd = mkstemp(path);
                cr_assert(fd >= 0);
                FILE *f = fdopen(fd, "w");
                const char *row = "SE2321000016-A140,SE2321000016-A110,";
                fputs(row, f);
                for (size_t i = strlen(row); i < HSA_MAPPING_MAX_LINE + (size_t)extra; i++)
                        fputc('x', f);
                fputc('\n', f);
                fclose(f);
                struct hsa_opts o = {SAMPLE, path, LEVEL};
                char err[300] = "";
                struct hsa_dir *d = hsa_dir_load(&o, NULL, err, sizeof err);
                unlink(path);
                if (extra == 0) {
                        cr_assert_not_null(d, "%s", err);
                        struct intyg_tags t;
                        hsa_tag(d, "SE2321000016-A140", NULL, &t);
                        cr_assert_eq(t.resolution, TAG_MAPPING);
                } else {
                        cr_assert_null(d);
                        cr_assert_not_null(strstr(err, ":1: line longer than"), "%s", err);
                }
                hsa_dir_free(d);
        }
}

/* ---- reload ---- */

Test(reload, failed_reload_keeps_the_old_table)
{
        struct hsa_dir *d = load_ok(SAMPLE, SAMPLE_MAP, LEVEL, NULL);
        struct hsa_holder *h = hsa_holder_new(d);
        cr_assert_not_null(h);
        const struct hsa_dir *before = hsa_holder_acquire(h);
        char err[300];
        struct hsa_load_report rep;
        struct hsa_opts bad[] = {
            {DATA "no-such.ldif", SAMPLE_MAP, LEVEL},     /* unreadable */
            {SAMPLE, DATA "mapping-conflict.csv", LEVEL}, /* bad mapping */
            {SAMPLE, SAMPLE_MAP, "careType="},            /* bad predicate */
            {DATA "empty.ldif", NULL, LEVEL},             /* no units */
        };
        const char *why[] = {"No such file", "mapped twice", "hsa.level: offset 9",
                             "no units in the extract"};
        for (size_t i = 0; i < 4; i++) {
                err[0] = '\0';
                cr_assert_eq(hsa_holder_reload(h, &bad[i], &rep, err, sizeof err), -1);
                cr_assert_not_null(strstr(err, why[i]), "reload %zu: %s", i, err);
                const struct hsa_dir *now = hsa_holder_acquire(h);
                cr_assert_eq(now, before, "reload %zu replaced the table", i);
                struct intyg_tags t;
                hsa_tag(now, "SE2321000016-A130", NULL, &t);
                cr_assert_eq(t.resolution, TAG_MAPPING);
                hsa_dir_free(now);
        }
        /* a good reload swaps; the old reference stays usable until released */
        struct hsa_opts good = {DATA "small.ldif", NULL, "businessClassificationCode=1100"};
        cr_assert_eq(hsa_holder_reload(h, &good, &rep, err, sizeof err), 0, "%s", err);
        cr_assert_eq(rep.units, 2);
        const struct hsa_dir *after = hsa_holder_acquire(h);
        cr_assert_neq(after, before);
        struct intyg_tags t;
        hsa_tag(after, "TST-NEW1", NULL, &t);
        cr_assert(t.unit_known);
        cr_assert_eq(t.resolution, TAG_LEVEL);
        cr_assert_str_eq(t.county, "21");
        cr_assert_str_eq(t.municipality, "2180");
        hsa_tag(after, "SE2321000016-A111", NULL, &t);
        cr_assert(!t.unit_known);
        hsa_tag(before, "SE2321000016-A111", NULL, &t); /* old table, still referenced */
        cr_assert(t.unit_known);
        hsa_dir_free(before);
        hsa_dir_free(after);
        hsa_holder_free(h);
}

struct reader_arg {
        struct hsa_holder *h;
        size_t lookups, known_a, known_new, mixed;
};

static void *reader(void *p)
{
        struct reader_arg *a = p;
        for (int i = 0; i < 20000; i++) {
                const struct hsa_dir *d = hsa_holder_acquire(a->h);
                struct intyg_tags t1, t2;
                hsa_tag(d, "SE2321000016-A111", NULL, &t1);
                hsa_tag(d, "TST-NEW1", NULL, &t2);
                /* one whole table or the other, never a mix */
                a->mixed += t1.unit_known == t2.unit_known;
                a->known_a += t1.unit_known;
                a->known_new += t2.unit_known;
                a->lookups += 2;
                hsa_dir_free(d);
        }
        return NULL;
}

Test(reload, readers_see_whole_tables_during_reloads)
{
        struct hsa_holder *h = hsa_holder_new(load_ok(SAMPLE, SAMPLE_MAP, LEVEL, NULL));
        struct reader_arg args[2] = {{.h = h}, {.h = h}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
                cr_assert_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
        struct hsa_opts a = {SAMPLE, SAMPLE_MAP, LEVEL};
        struct hsa_opts b = {DATA "small.ldif", NULL, LEVEL};
        char err[300];
        for (int i = 0; i < 20; i++)
                cr_assert_eq(hsa_holder_reload(h, i % 2 ? &a : &b, NULL, err, sizeof err), 0, "%s",
                             err);
        for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
        for (int i = 0; i < 2; i++) {
                cr_assert_eq(args[i].lookups, 40000);
                cr_assert_eq(args[i].mixed, 0);
                cr_assert_eq(args[i].known_a + args[i].known_new, 20000);
        }
        hsa_holder_free(h);
}

/* ---- hsa lookup | check ---- */

static int run(struct hsa_opts *o, char **out, int argc, char **argv)
{
        size_t len = 0;
        *out = NULL;
        FILE *f = open_memstream(out, &len);
        cr_assert_not_null(f);
        int rc = cmd_hsa(argc, argv, o, f);
        fclose(f);
        return rc;
}

Test(cmd, lookup_and_check)
{
        struct hsa_opts o = {SAMPLE, SAMPLE_MAP, LEVEL};
        char *out;
        int rc = run(&o, &out, 3, (char *[]){"hsa", "lookup", "SE2321000131-B310", NULL});
        cr_assert_eq(rc, 0);
        cr_assert_not_null(strstr(out, "follow-up     SE2321000131-B220  Närhälsan Lerum"), "%s",
                           out);
        cr_assert_not_null(strstr(out, "resolution    coarser"), "%s", out);
        cr_assert_not_null(strstr(out, "county        14"), "%s", out);
        free(out);
        rc = run(&o, &out, 7,
                 (char *[]){"hsa", "lookup", "-c", "x.ini", "SE2321000016-A130", "--provider",
                            "SE2321000131-0001", NULL});
        cr_assert_eq(rc, 0);
        cr_assert_not_null(strstr(out, "resolution    mapping"), "%s", out);
        cr_assert_not_null(strstr(out, "mismatch      yes"), "%s", out);
        free(out);
        rc = run(&o, &out, 3, (char *[]){"hsa", "lookup", "SE2321000016-NONE", NULL});
        cr_assert_eq(rc, 1);
        cr_assert_not_null(strstr(out, "in directory  no"), "%s", out);
        cr_assert_not_null(strstr(out, "resolution    unresolved"), "%s", out);
        free(out);

        rc = run(&o, &out, 2, (char *[]){"hsa", "check", NULL});
        cr_assert_eq(rc, 0, "%s", out);
        cr_assert_not_null(strstr(out, "48 entries, 44 units, 0 skipped"), "%s", out);
        cr_assert_not_null(strstr(out, "Region Uppsala"), "%s", out);
        cr_assert_not_null(strstr(out, "result    OK"), "%s", out);
        free(out);

        struct hsa_opts ob = {DATA "broken.ldif", NULL, "businessClassificationCode=1100"};
        rc = run(&ob, &out, 2, (char *[]){"hsa", "check", NULL});
        cr_assert_eq(rc, 1);
        cr_assert_not_null(strstr(out, "line 33: duplicate_id: tst-k1"), "%s", out);
        cr_assert_not_null(strstr(out, "line 37: dangling_parent: TST-DANG"), "%s", out);
        cr_assert_not_null(strstr(out, "line 37: no_county: TST-DANG"), "%s", out);
        cr_assert_not_null(strstr(out, "line 41: care_unit_without_provider: TST-W1"), "%s", out);
        free(out);
}

Test(cmd, usage_and_load_errors)
{
        struct hsa_opts o = {SAMPLE, SAMPLE_MAP, LEVEL};
        char *out;
        cr_assert_eq(run(&o, &out, 2, (char *[]){"hsa", "lookup", NULL}), 2);
        free(out);
        cr_assert_eq(run(&o, &out, 2, (char *[]){"hsa", "frobnicate", NULL}), 2);
        free(out);
        cr_assert_eq(run(&o, &out, 1, (char *[]){"hsa", NULL}), 2);
        free(out);
        cr_assert_eq(run(&o, &out, 3, (char *[]){"hsa", "check", "extra", NULL}), 2);
        free(out);
        cr_assert_eq(run(&o, &out, 4, (char *[]){"hsa", "lookup", "A", "B", NULL}), 2);
        free(out);
        struct hsa_opts bad = {SAMPLE, SAMPLE_MAP, "nope=1"};
        cr_assert_eq(run(&bad, &out, 2, (char *[]){"hsa", "check", NULL}), 2);
        free(out);
}
