/*
 * personid.h - Swedish personnummer / samordningsnummer and HSA-id checks.
 *
 * Pure functions over strings; any thread. Nothing here logs or keeps a person id: error
 * messages name the kind of fault, never the number.
 */
#ifndef INTYGSGW_PERSONID_H
#define INTYGSGW_PERSONID_H

#include <stdbool.h>
#include <stddef.h>

#include "intyg.h"

#define PERSONID_ROOT_PNR "1.2.752.129.2.1.3.1"
#define PERSONID_ROOT_SNR "1.2.752.129.2.1.3.3"
#define HSAID_ROOT_OID    "1.2.752.129.2.1.4.1"

/** Earliest birth date a personnummer can carry (the system started 1947, but the
 * validators upstream accept back to this date). */
#define PERSONID_MIN_DATE "1840-05-06"

/** What is wrong with a person id, in the order they are checked. */
enum personid_err {
        PERSONID_OK = 0,
        PERSONID_FORMAT,        /* not exactly 12 digits */
        PERSONID_ROOT,          /* root is neither personnummer nor samordningsnummer */
        PERSONID_DATE,          /* not a real calendar date (samordningsnummer: day - 60) */
        PERSONID_TOO_EARLY,     /* before 1840-05-06 */
        PERSONID_KIND_MISMATCH, /* a samordningsnummer under the personnummer root or v.v. */
        PERSONID_CHECKSUM,      /* Luhn check digit over YYMMDDNNN does not match */
};

/** What a person id says, filled as far as the checks got. */
struct personid_info {
        enum person_id_kind kind; /* from the digits: day > 60 is a samordningsnummer */
        enum person_sex sex;
        char birth_date[11]; /* YYYY-MM-DD or "" */
        bool checksum_ok;
};

/** Stable name ("person_id_checksum") of an error. */
const char *personid_err_name(enum personid_err e);

/** Clear English text for an error (never contains the number). */
const char *personid_err_text(enum personid_err e);

/** The Luhn check digit (0-9) of the first nine digits of s (YYMMDDNNN); -1 if not digits. */
int personid_luhn(const char *yymmddnnn);

/**
 * Check a 12-digit person id. root may be NULL (then the kind comes from the digits only).
 * Every check is made; the first failing one (in enum order) is returned, and out (if not
 * NULL) is filled with what could be derived, including checksum_ok.
 */
enum personid_err personid_check(const char *root, const char *id, struct personid_info *out);

/** What is wrong with an HSA-id. */
enum hsaid_err {
        HSAID_OK = 0,
        HSAID_ROOT,     /* root is not 1.2.752.129.2.1.4.1 */
        HSAID_EMPTY,    /* extension missing or empty */
        HSAID_TOO_LONG, /* more than HSA_ID_MAX characters */
        HSAID_CHARS,    /* a character outside printable ASCII, or leading/trailing space */
};

/** Stable name ("hsa_id_root") of an error. */
const char *hsaid_err_name(enum hsaid_err e);

/** Check an HSA-id; root NULL skips the root check. */
enum hsaid_err hsaid_check(const char *root, const char *ext);

#endif
