/*
 * test_icd10.c - ICD-10-SE washing and the chapter/section/group tables (§2.3).
 */
#include <criterion/criterion.h>

#include "icd10.h"

Test(icd10, tables)
{
        cr_assert_eq(icd10_n_sections(), 264);
        cr_assert_str_eq(icd10_chapter_range(1), "A00-B99");
        cr_assert_str_eq(icd10_chapter_range(22), "Z00-Z99");
        cr_assert_null(icd10_chapter_range(23));
        cr_assert_str_eq(icd10_section_range(1), "A00-A09");
        cr_assert_str_eq(icd10_section_range(264), "Z80-Z99");
        for (int s = 1; s <= icd10_n_sections(); s++)
                cr_assert_neq(icd10_section_chapter(s), 0, "section %d", s);
}

Test(icd10, groups_per_chapter)
{
        struct {
                const char *code;
                enum icd10_group g;
                int chapter;
        } t[] = {
            {"A09", ICD10_GROUP_SOMATIC, 1},    {"D48", ICD10_GROUP_SOMATIC, 2},
            {"D50", ICD10_GROUP_SOMATIC, 3},    {"F32.1", ICD10_GROUP_PSYCH, 5},
            {"f43", ICD10_GROUP_PSYCH, 5},      {"M54.5", ICD10_GROUP_MUSCULO, 13},
            {"O99", ICD10_GROUP_PREGNANCY, 15}, {"P96", ICD10_GROUP_OTHER, 16},
            {"S82", ICD10_GROUP_OTHER, 19},     {"T98", ICD10_GROUP_OTHER, 19},
            {"U07.1", ICD10_GROUP_OTHER, 20},   {"X85", ICD10_GROUP_OTHER, 21},
            {"Y98", ICD10_GROUP_OTHER, 21},     {"R52", ICD10_GROUP_SYMPTOM, 18},
            {"Z73", ICD10_GROUP_FACTORS, 22},   {"H95", ICD10_GROUP_SOMATIC, 8},
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct icd10_class c;
                cr_assert(icd10_classify(t[i].code, &c), "%s", t[i].code);
                cr_assert_eq(c.group, t[i].g, "%s", t[i].code);
                cr_assert_eq(c.chapter, t[i].chapter, "%s", t[i].code);
        }
}

Test(icd10, washing)
{
        struct icd10_class c;
        cr_assert(icd10_classify(" f32.1 ", &c));
        cr_assert_str_eq(c.code, "F321");
        cr_assert_str_eq(c.category, "F32");
        cr_assert_str_eq(icd10_section_range(c.section), "F30-F39");
        cr_assert(icd10_classify("M54.56789", &c));
        cr_assert_str_eq(c.code, "M5456");
}

Test(icd10, invalid_codes)
{ /* At1102, At1103, At1114: unknown -> Utan giltig ICD-10 kod */
        const char *bad[] = {"", "A1", "A10", "123", "Ö00", "ZZZ", "A0X", "H97", "U50", NULL};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct icd10_class c;
                cr_assert_not(icd10_classify(bad[i], &c), "%s", bad[i] ? bad[i] : "NULL");
                cr_assert_eq(c.group, ICD10_GROUP_UNKNOWN);
                cr_assert_eq(c.chapter, 0);
        }
        cr_assert_str_eq(icd10_group_label(ICD10_GROUP_UNKNOWN), "Utan giltig ICD-10 kod");
}
