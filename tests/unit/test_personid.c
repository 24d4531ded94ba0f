/*
 * test_personid.c - personnummer, samordningsnummer and HSA-id checks on both sides of every
 * boundary: calendar (leap years), day + 60, 1840-05-06, Luhn, sex, kind/root agreement.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "personid.h"

static enum personid_err chk(const char *root, const char *id, struct personid_info *info)
{
        return personid_check(root, id, info);
}

/* Replace the check digit of an 11-digit prefix with the right one. */
static void fix_luhn(char id[13])
{
        id[11] = (char)('0' + personid_luhn(id + 2));
}

Test(personid, tolvan_valid)
{
        struct personid_info info;
        cr_assert_eq(chk(PERSONID_ROOT_PNR, "191212121212", &info), PERSONID_OK);
        cr_assert_eq(info.kind, PERSON_ID_PERSONNUMMER);
        cr_assert_eq(info.sex, SEX_MALE);
        cr_assert_str_eq(info.birth_date, "1912-12-12");
        cr_assert(info.checksum_ok);
}

Test(personid, upstream_sample_fails_luhn)
{
        struct personid_info info;
        cr_assert_eq(chk(PERSONID_ROOT_PNR, "192703104321", &info), PERSONID_CHECKSUM);
        cr_assert(!info.checksum_ok);
        cr_assert_str_eq(info.birth_date, "1927-03-10"); /* still derived */
        cr_assert_eq(personid_luhn("2703104321" /* YYMMDDNNN */), 9);
        cr_assert_eq(chk(PERSONID_ROOT_PNR, "192703104329", NULL), PERSONID_OK);
}

Test(personid, luhn_off_by_one)
{
        cr_assert_eq(chk(NULL, "191212121211", NULL), PERSONID_CHECKSUM);
        cr_assert_eq(chk(NULL, "191212121213", NULL), PERSONID_CHECKSUM);
        cr_assert_eq(chk(NULL, "191212121212", NULL), PERSONID_OK);
}

Test(personid, samordningsnummer)
{
        struct personid_info info;
        cr_assert_eq(chk(PERSONID_ROOT_SNR, "198001910002", &info), PERSONID_OK);
        cr_assert_eq(info.kind, PERSON_ID_SAMORDNINGSNUMMER);
        cr_assert_str_eq(info.birth_date, "1980-01-31");
        cr_assert_eq(info.sex, SEX_FEMALE);
        /* day 61 = 1st, 91 = 31st; 60 and 92 are not days */
        char id[13] = "19800161000";
        fix_luhn(id);
        cr_assert_eq(chk(PERSONID_ROOT_SNR, id, &info), PERSONID_OK);
        cr_assert_str_eq(info.birth_date, "1980-01-01");
        memcpy(id, "19800160000", 11);
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_DATE, "day 60 is neither kind");
        memcpy(id, "19800192000", 11);
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_DATE);
        memcpy(id, "19800291000", 11); /* February 31st */
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_DATE);
}

Test(personid, kind_must_match_root)
{
        cr_assert_eq(chk(PERSONID_ROOT_PNR, "198001910002", NULL), PERSONID_KIND_MISMATCH);
        cr_assert_eq(chk(PERSONID_ROOT_SNR, "191212121212", NULL), PERSONID_KIND_MISMATCH);
        cr_assert_eq(chk("1.2.3", "191212121212", NULL), PERSONID_ROOT);
}

Test(personid, leap_days)
{
        char id[13] = {0};
        memcpy(id, "20000229000", 11); /* 2000: leap (400) */
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_OK);
        memcpy(id, "19000229000", 11); /* 1900: not leap (100) */
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_DATE);
        memcpy(id, "20040229000", 11);
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_OK);
        memcpy(id, "20230229000", 11);
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_DATE);
        memcpy(id, "20230228000", 11);
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_OK);
        memcpy(id, "20240289000", 11); /* samordningsnummer Feb 29 2024 */
        fix_luhn(id);
        cr_assert_eq(chk(PERSONID_ROOT_SNR, id, NULL), PERSONID_OK);
        memcpy(id, "20230289000", 11);
        fix_luhn(id);
        cr_assert_eq(chk(PERSONID_ROOT_SNR, id, NULL), PERSONID_DATE);
}

Test(personid, earliest_date)
{
        char id[13] = {0};
        memcpy(id, "18400506000", 11);
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_OK);
        memcpy(id, "18400505000", 11);
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, NULL), PERSONID_TOO_EARLY);
}

Test(personid, format)
{
        cr_assert_eq(chk(NULL, "19121212121", NULL), PERSONID_FORMAT);
        cr_assert_eq(chk(NULL, "1912121212120", NULL), PERSONID_FORMAT);
        cr_assert_eq(chk(NULL, "19121212-1212", NULL), PERSONID_FORMAT);
        cr_assert_eq(chk(NULL, "19121212121a", NULL), PERSONID_FORMAT);
        cr_assert_eq(chk(NULL, NULL, NULL), PERSONID_FORMAT);
        cr_assert_eq(chk(NULL, "191213121212", NULL), PERSONID_DATE, "month 13");
        cr_assert_eq(chk(NULL, "191200121212", NULL), PERSONID_DATE, "month 0");
}

Test(personid, sex_from_eleventh_digit)
{
        char id[13] = {0};
        memcpy(id, "19121212122", 11);
        fix_luhn(id);
        struct personid_info info;
        cr_assert_eq(chk(NULL, id, &info), PERSONID_OK);
        cr_assert_eq(info.sex, SEX_FEMALE);
        memcpy(id, "19121212123", 11);
        fix_luhn(id);
        cr_assert_eq(chk(NULL, id, &info), PERSONID_OK);
        cr_assert_eq(info.sex, SEX_MALE);
}

Test(personid, names_and_texts_never_hold_the_number)
{
        for (int e = PERSONID_OK; e <= PERSONID_CHECKSUM; e++) {
                cr_assert(strncmp(personid_err_name(e), "person_id", 9) == 0 || e == PERSONID_OK);
                cr_assert(strstr(personid_err_text(e), "1912") == NULL);
        }
}

Test(hsaid, checks)
{
        char max[HSA_ID_MAX + 2];
        memset(max, 'A', HSA_ID_MAX);
        max[HSA_ID_MAX] = '\0';
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, "TSTNMT2321000156-1077"), HSAID_OK);
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, "SE2321000016-ABCD"), HSAID_OK);
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, max), HSAID_OK);
        max[HSA_ID_MAX] = 'A';
        max[HSA_ID_MAX + 1] = '\0';
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, max), HSAID_TOO_LONG);
        cr_assert_eq(hsaid_check("1.2.752.129.2.1.4.2", "SE1"), HSAID_ROOT);
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, ""), HSAID_EMPTY);
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, NULL), HSAID_EMPTY);
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, "SE1\x01"), HSAID_CHARS);
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, " SE1"), HSAID_CHARS);
        cr_assert_eq(hsaid_check(HSAID_ROOT_OID, "SE\xc3\xa5"), HSAID_CHARS);
        cr_assert_eq(hsaid_check(NULL, "x"), HSAID_OK);
        cr_assert_str_eq(hsaid_err_name(HSAID_TOO_LONG), "hsa_id_too_long");
}
