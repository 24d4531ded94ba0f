/*
 * personid.c - personnummer, samordningsnummer (day + 60) and HSA-id checks.
 * Owns nothing; pure functions, any thread. Never puts a number in a message.
 */
#include "personid.h"

#include <string.h>

#include "limits.h"

const char *personid_err_name(enum personid_err e)
{
        switch (e) {
        case PERSONID_OK:
                return "ok";
        case PERSONID_FORMAT:
                return "person_id_format";
        case PERSONID_ROOT:
                return "person_id_root";
        case PERSONID_DATE:
                return "person_id_date";
        case PERSONID_TOO_EARLY:
                return "person_id_too_early";
        case PERSONID_KIND_MISMATCH:
                return "person_id_kind";
        case PERSONID_CHECKSUM:
                return "person_id_checksum";
        }
        return "person_id_unknown";
}

const char *personid_err_text(enum personid_err e)
{
        switch (e) {
        case PERSONID_OK:
                return "valid";
        case PERSONID_FORMAT:
                return "the patient's person id must be exactly 12 digits";
        case PERSONID_ROOT:
                return "the patient's person id root must be the personnummer (" PERSONID_ROOT_PNR
                       ") or samordningsnummer (" PERSONID_ROOT_SNR ") OID";
        case PERSONID_DATE:
                return "the patient's person id does not hold a real calendar date";
        case PERSONID_TOO_EARLY:
                return "the patient's person id holds a date before " PERSONID_MIN_DATE;
        case PERSONID_KIND_MISMATCH:
                return "the patient's person id root does not match its kind (samordningsnummer "
                       "have day + 60)";
        case PERSONID_CHECKSUM:
                return "the patient's person id fails the check digit (Luhn) test";
        }
        return "invalid person id";
}

int personid_luhn(const char *s)
{
        int sum = 0;
        for (int i = 0; i < 9; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                int d = (s[i] - '0') * (i % 2 == 0 ? 2 : 1);
                sum += d > 9 ? d - 9 : d;
        }
        return (10 - sum % 10) % 10;
}

static int is_leap(int y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

enum personid_err personid_check(const char *root, const char *id, struct personid_info *out)
{
        struct personid_info info = {0};
        enum personid_err first = PERSONID_OK;
#define FAIL(e)                                                                                    \
        do {                                                                                       \
                if (first == PERSONID_OK || (e) < first)                                           \
                        first = (e);                                                               \
        } while (0)

        if (!id || strlen(id) != 12 || strspn(id, "0123456789") != 12) {
                if (out)
                        *out = info;
                return PERSONID_FORMAT;
        }
        enum person_id_kind root_kind = PERSON_ID_NONE;
        if (root) {
                if (strcmp(root, PERSONID_ROOT_PNR) == 0)
                        root_kind = PERSON_ID_PERSONNUMMER;
                else if (strcmp(root, PERSONID_ROOT_SNR) == 0)
                        root_kind = PERSON_ID_SAMORDNINGSNUMMER;
                else
                        FAIL(PERSONID_ROOT);
        }
        int y = (id[0] - '0') * 1000 + (id[1] - '0') * 100 + (id[2] - '0') * 10 + (id[3] - '0');
        int m = (id[4] - '0') * 10 + (id[5] - '0');
        int d = (id[6] - '0') * 10 + (id[7] - '0');
        info.kind = d > 60 ? PERSON_ID_SAMORDNINGSNUMMER : PERSON_ID_PERSONNUMMER;
        if (d > 60)
                d -= 60;
        static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (m < 1 || m > 12 || d < 1 || d > (m == 2 && is_leap(y) ? 29 : dim[m - 1])) {
                FAIL(PERSONID_DATE);
        } else {
                char date[11] = {id[0],
                                 id[1],
                                 id[2],
                                 id[3],
                                 '-',
                                 id[4],
                                 id[5],
                                 '-',
                                 (char)('0' + d / 10),
                                 (char)('0' + d % 10),
                                 '\0'};
                if (strcmp(date, PERSONID_MIN_DATE) < 0)
                        FAIL(PERSONID_TOO_EARLY);
                memcpy(info.birth_date, date, sizeof date);
        }
        if (root_kind != PERSON_ID_NONE && root_kind != info.kind)
                FAIL(PERSONID_KIND_MISMATCH);
        info.sex = (id[10] - '0') % 2 ? SEX_MALE : SEX_FEMALE;
        info.checksum_ok = personid_luhn(id + 2) == id[11] - '0';
        if (!info.checksum_ok)
                FAIL(PERSONID_CHECKSUM);
        if (out)
                *out = info;
        return first;
#undef FAIL
}

const char *hsaid_err_name(enum hsaid_err e)
{
        switch (e) {
        case HSAID_OK:
                return "ok";
        case HSAID_ROOT:
                return "hsa_id_root";
        case HSAID_EMPTY:
                return "hsa_id_empty";
        case HSAID_TOO_LONG:
                return "hsa_id_too_long";
        case HSAID_CHARS:
                return "hsa_id_chars";
        }
        return "hsa_id_unknown";
}

enum hsaid_err hsaid_check(const char *root, const char *ext)
{
        if (root && strcmp(root, HSAID_ROOT_OID) != 0)
                return HSAID_ROOT;
        if (!ext || !ext[0])
                return HSAID_EMPTY;
        size_t n = strlen(ext);
        if (n > HSA_ID_MAX)
                return HSAID_TOO_LONG;
        if (ext[0] == ' ' || ext[n - 1] == ' ')
                return HSAID_CHARS;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)ext[i] < 0x20 || (unsigned char)ext[i] > 0x7e)
                        return HSAID_CHARS;
        return HSAID_OK;
}
