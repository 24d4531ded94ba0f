/*
 * test_authorise.c - the grants file (ops/grants.ini and every refusal of a bad one, limits on
 * both sides) and admit_intyg(): callers of one region submitting for another region's care
 * provider or unit, unknown callers, and the provider_mismatch / unknown_unit policies.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authorise.h"

#define SRC    INTYGSGW_SOURCE_DIR
#define GRANTS SRC "/ops/grants.ini"

#define CALLER_A "SE2321000016-7P3K"
#define CALLER_B "SE2321000131-S0AB"
#define CALLER_C "SE2321000032-U9X2"
#define VG_A     "SE2321000016-0001"
#define VG_B     "SE2321000131-0001"
#define VG_C     "SE2321000032-0001"

static struct grants *load_text(const char *text, char *err, size_t errlen)
{
        char path[] = "/tmp/test_grants_XXXXXX";
        int fd = mkstemp(path);
        cr_assert(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fputs(text, f);
        fclose(f);
        struct grants *g = grants_load(path, err, errlen);
        unlink(path);
        return g;
}

Test(grants, sample_file)
{
        char err[300] = "";
        struct grants *g = grants_load(GRANTS, err, sizeof err);
        cr_assert_not_null(g, "%s", err);
        cr_assert_eq(grants_n_callers(g), 6);
        cr_assert_eq(grants_check(g, CALLER_A, VG_A), AUTH_OK);
        cr_assert_eq(grants_check(g, CALLER_B, VG_B), AUTH_OK);
        cr_assert_eq(grants_check(g, CALLER_C, VG_C), AUTH_OK);
        cr_assert_eq(grants_check(g, CALLER_A, VG_B), AUTH_PROVIDER_NOT_GRANTED);
        cr_assert_eq(grants_check(g, CALLER_B, VG_C), AUTH_PROVIDER_NOT_GRANTED);
        cr_assert_eq(grants_check(g, CALLER_C, VG_A), AUTH_PROVIDER_NOT_GRANTED);
        cr_assert_eq(grants_check(g, "se2321000016-7p3k", " SE2321000016-0001"), AUTH_OK);
        /* the admin and gateway certificates are valid but grant nothing */
        cr_assert_eq(grants_check(g, "SE2321000016-ADM1", VG_A), AUTH_UNKNOWN_CALLER);
        cr_assert_eq(grants_check(g, "SE2321000016-GW01", VG_A), AUTH_UNKNOWN_CALLER);
        cr_assert_eq(grants_check(g, "", VG_A), AUTH_UNKNOWN_CALLER);
        cr_assert_eq(grants_check(g, NULL, VG_A), AUTH_UNKNOWN_CALLER);
        cr_assert_eq(grants_check(g, CALLER_A, ""), AUTH_PROVIDER_NOT_GRANTED);
        cr_assert_eq(grants_check(g, CALLER_A, NULL), AUTH_PROVIDER_NOT_GRANTED);
        cr_assert_eq(grants_check(NULL, CALLER_A, VG_A), AUTH_UNKNOWN_CALLER);
        cr_assert_str_eq(grants_caller_name(g, CALLER_B), "Västra Götalandsregionen EHR");
        cr_assert_str_eq(grants_caller_name(g, "SE2321000016-ADM1"), "");
        cr_assert_str_eq(auth_result_name(AUTH_PROVIDER_NOT_GRANTED), "provider_not_granted");
        grants_free(g);
        grants_free(NULL);
}

Test(grants, lists_and_repeats)
{
        char err[300] = "";
        struct grants *g = load_text("; several providers\n"
                                     "[ SE1-CALLER ]\n"
                                     "provider = SE1-VG1, se1-vg2 ,SE1-VG3\n"
                                     "provider = SE1-VG4\n"
                                     "provider = SE1-VG1\n"
                                     "[SE2-CALLER]\r\n"
                                     "name = without providers\r\n",
                                     err, sizeof err);
        cr_assert_not_null(g, "%s", err);
        for (int i = 1; i <= 4; i++) {
                char vg[16];
                snprintf(vg, sizeof vg, "SE1-VG%d", i);
                cr_assert_eq(grants_check(g, "SE1-CALLER", vg), AUTH_OK, "%s", vg);
        }
        cr_assert_eq(grants_check(g, "SE1-CALLER", "SE1-VG5"), AUTH_PROVIDER_NOT_GRANTED);
        cr_assert_eq(grants_check(g, "SE2-CALLER", "SE1-VG1"), AUTH_PROVIDER_NOT_GRANTED);
        grants_free(g);
}

static void refused(const char *text, const char *why)
{
        char err[300] = "";
        struct grants *g = load_text(text, err, sizeof err);
        cr_assert_null(g, "accepted: %s", text);
        cr_assert_not_null(strstr(err, why), "'%s': err '%s' lacks '%s'", text, err, why);
}

Test(grants, bad_files_are_refused_whole)
{
        refused("provider = SE1-VG1\n", ":1: 'provider' before any [caller] section");
        refused("[SE1-C]\nprovider = SE1-VG1\n[SE1/C]\n", ":3: caller 'SE1/C' is not an HSA-id");
        refused("[SE1-C\n", ":1: section header must be [HSA-ID]");
        refused("[SE1-C] x\n", ":1: section header");
        refused("[SE1-C]\nprovider = SE1-VG1\n[se1-c]\n", ":3: caller SE1-C appears twice");
        refused("[SE1-C]\nprovidr = SE1-VG1\n", ":2: unknown key 'providr'");
        refused("[SE1-C]\nprovider = SE1-VG1, SE1 VG/2\n", ":2: provider 'SE1 VG/2'");
        refused("[SE1-C]\nprovider =\n", ":2: provider has no value");
        refused("[SE1-C]\nprovider = ,\n", ":2: provider has no value");
        refused("[SE1-C]\njust words\n", ":2: expected 'key = value'");
        refused("[SE1-C]\nname = a\nname = b\n", ":3: name given twice");
        char err[300];
        cr_assert_null(grants_load("/nonexistent/grants.ini", err, sizeof err));
        cr_assert_not_null(strstr(err, "No such file"), "%s", err);
}

Test(grants, line_limit_both_sides)
{
        for (int extra = 0; extra <= 1; extra++) {
                size_t len = GRANTS_MAX_LINE + (size_t)extra;
                char *text = malloc(len + 64);
                cr_assert_not_null(text);
                size_t n = (size_t)sprintf(text, "[SE1-C]\nname = ");
                size_t start = n;
                while (n - start + strlen("name = ") < len)
                        text[n++] = 'x';
                n += (size_t)sprintf(text + n, "\nprovider = SE1-VG1\n");
                text[n] = '\0';
                char err[300] = "";
                struct grants *g = load_text(text, err, sizeof err);
                if (extra == 0) {
                        cr_assert_not_null(g, "%s", err);
                        cr_assert_eq(grants_check(g, "SE1-C", "SE1-VG1"), AUTH_OK);
                } else {
                        cr_assert_null(g);
                        cr_assert_not_null(strstr(err, ":2: line longer than"), "%s", err);
                }
                grants_free(g);
                free(text);
        }
}

Test(grants, provider_count_limit_both_sides)
{
        for (int extra = 0; extra <= 1; extra++) {
                size_t count = GRANTS_MAX_PROVIDERS + (size_t)extra;
                char *text = malloc(count * 32 + 64);
                cr_assert_not_null(text);
                size_t n = (size_t)sprintf(text, "[SE1-C]\n");
                for (size_t i = 0; i < count; i++)
                        n += (size_t)sprintf(text + n, "provider = SE1-VG%zu\n", i);
                char err[300] = "";
                struct grants *g = load_text(text, err, sizeof err);
                if (extra == 0) {
                        cr_assert_not_null(g, "%s", err);
                        cr_assert_eq(grants_check(g, "SE1-C", "SE1-VG9999"), AUTH_OK);
                        cr_assert_eq(grants_check(g, "SE1-C", "SE1-VG10000"),
                                     AUTH_PROVIDER_NOT_GRANTED);
                } else {
                        cr_assert_null(g);
                        cr_assert_not_null(strstr(err, "more than 10000 providers"), "%s", err);
                }
                grants_free(g);
                free(text);
        }
}

/* ---- admission: grants + directory + policies ---- */

static struct hsa_dir *sample_dir(void)
{
        struct hsa_opts o = {SRC "/ops/hsa-extract.ldif", SRC "/ops/unit-mapping.csv",
                             "businessClassificationCode=1100,1102,1500"};
        char err[300] = "";
        struct hsa_dir *d = hsa_dir_load(&o, NULL, err, sizeof err);
        cr_assert_not_null(d, "%s", err);
        return d;
}

Test(admit, callers_and_regions)
{
        char err[300] = "";
        struct grants *g = grants_load(GRANTS, err, sizeof err);
        cr_assert_not_null(g, "%s", err);
        struct hsa_dir *d = sample_dir();
        struct admit_policy flag = {POLICY_FLAG, POLICY_ACCEPT};
        struct intyg_tags t;

        /* each region for its own units */
        cr_assert_eq(admit_intyg(g, d, &flag, CALLER_A, "SE2321000016-A111", VG_A, &t), ADMIT_OK);
        cr_assert_str_eq(t.followup_hsa, "SE2321000016-A110");
        cr_assert_eq(admit_intyg(g, d, &flag, CALLER_B, "SE2321000131-B310", VG_B, &t), ADMIT_OK);
        cr_assert_eq(admit_intyg(g, d, &flag, CALLER_C, "SE2321000032-C230", VG_C, &t), ADMIT_OK);
        cr_assert_eq(t.resolution, TAG_MAPPING);

        /* Stockholm's system submitting for Västra Götaland's provider and unit: refused,
         * and the tags still say which unit and provider it was */
        cr_assert_eq(admit_intyg(g, d, &flag, CALLER_A, "SE2321000131-B111", VG_B, &t),
                     ADMIT_PROVIDER_NOT_GRANTED);
        cr_assert_str_eq(t.unit_hsa, "SE2321000131-B111");
        cr_assert_str_eq(t.provider_hsa, VG_B);

        /* ... or naming its own provider on the other region's unit: still refused, since
         * the directory's provider of that unit is not granted to it */
        cr_assert_eq(admit_intyg(g, d, &flag, CALLER_A, "SE2321000131-B111", VG_A, &t),
                     ADMIT_PROVIDER_NOT_GRANTED);
        cr_assert(t.provider_mismatch);
        cr_assert_str_eq(t.provider_hsa, VG_B);

        /* a valid certificate of an unknown caller */
        cr_assert_eq(admit_intyg(g, d, &flag, "SE2321000016-ADM1", "SE2321000016-A111", VG_A, &t),
                     ADMIT_UNKNOWN_CALLER);
        cr_assert_str_eq(admit_result_name(ADMIT_UNKNOWN_CALLER), "unknown_caller");

        /* unknown unit: accepted and flagged, or refused */
        cr_assert_eq(admit_intyg(g, d, &flag, CALLER_A, "SE2321000016-NEW9", VG_A, &t), ADMIT_OK);
        cr_assert(!t.unit_known);
        cr_assert_eq(t.resolution, TAG_UNRESOLVED);
        struct admit_policy refuse_unknown = {POLICY_FLAG, POLICY_REFUSE};
        cr_assert_eq(admit_intyg(g, d, &refuse_unknown, CALLER_A, "SE2321000016-NEW9", VG_A, &t),
                     ADMIT_UNKNOWN_UNIT);
        cr_assert_eq(admit_intyg(g, d, &refuse_unknown, CALLER_A, "SE2321000016-A111", VG_A, &t),
                     ADMIT_OK);
        /* no directory at all: every unit unknown */
        cr_assert_eq(admit_intyg(g, NULL, &flag, CALLER_A, "SE2321000016-A111", VG_A, &t),
                     ADMIT_OK);
        cr_assert(!t.unit_known);
        hsa_dir_free(d);
        grants_free(g);
}

Test(admit, provider_mismatch_policy)
{
        /* a caller granted both providers: a mismatch is only the policy's business */
        char err[300] = "";
        struct grants *g = load_text("[SE2321000016-BOTH]\n"
                                     "provider = SE2321000016-0001, SE2321000131-0001\n",
                                     err, sizeof err);
        cr_assert_not_null(g, "%s", err);
        struct hsa_dir *d = sample_dir();
        struct intyg_tags t;
        struct admit_policy flag = {POLICY_FLAG, POLICY_ACCEPT};
        struct admit_policy refuse = {POLICY_REFUSE, POLICY_ACCEPT};
        cr_assert_eq(admit_intyg(g, d, &flag, "SE2321000016-BOTH", "SE2321000131-B111", VG_A, &t),
                     ADMIT_OK);
        cr_assert(t.provider_mismatch);
        cr_assert_eq(admit_intyg(g, d, &refuse, "SE2321000016-BOTH", "SE2321000131-B111", VG_A, &t),
                     ADMIT_PROVIDER_MISMATCH);
        cr_assert_eq(admit_intyg(g, d, &refuse, "SE2321000016-BOTH", "SE2321000131-B111", VG_B, &t),
                     ADMIT_OK);
        cr_assert(!t.provider_mismatch);
        hsa_dir_free(d);
        grants_free(g);
}
