/*
 * intyg.h - the one plain struct a certificate (intyg) becomes after validation.
 *
 * Owns: every string in struct intyg (fixed arrays, no pointers into the XML document),
 * so that nothing downstream (authorise, tag, outbox, statistics) parses XML again.
 * Threads: filled on a pool thread by validation, then handed whole to the loop thread;
 * one owner at a time. intyg_wipe() clears the patient id once the pipeline is done with it.
 */
#ifndef INTYGSGW_INTYG_H
#define INTYGSGW_INTYG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/** What a request asks for. */
enum intyg_kind {
        INTYG_REGISTER = 1, /* RegisterCertificate v3 */
        INTYG_REVOKE = 2,   /* RevokeCertificate v2 */
};

/** Degree of sick leave (sjukskrivningsgrad), KV_FKMU_0003. */
enum intyg_degree {
        DEGREE_NONE = 0,
        DEGREE_25 = 25,  /* EN_FJARDEDEL */
        DEGREE_50 = 50,  /* HALFTEN */
        DEGREE_75 = 75,  /* TRE_FJARDEDEL */
        DEGREE_100 = 100 /* HELT_NEDSATT */
};

/** One answer 32: degree and date period. Days are days since 1970-01-01. */
struct intyg_period {
        enum intyg_degree degree;
        char start[11]; /* YYYY-MM-DD */
        char end[11];
        int32_t start_day;
        int32_t end_day;
};

/** Patient id kind, from the person-id root. */
enum person_id_kind {
        PERSON_ID_NONE = 0,
        PERSON_ID_PERSONNUMMER = 1,     /* 1.2.752.129.2.1.3.1 */
        PERSON_ID_SAMORDNINGSNUMMER = 2 /* 1.2.752.129.2.1.3.3 */
};

/** Sex derived from the personnummer's ninth digit (odd = man). */
enum person_sex { SEX_UNKNOWN = 0, SEX_MALE = 1, SEX_FEMALE = 2 };

/**
 * What later stages need from one RegisterCertificate or RevokeCertificate request.
 * Strings are NUL-terminated and truncated to their array size only after validation
 * has refused anything longer (INTYG_ID_MAX etc. in limits.h).
 */
struct intyg {
        enum intyg_kind kind;
        char id[INTYG_ID_MAX + 1];         /* intygs-id/extension: the certificate id */
        char id_root[HSA_ID_MAX + 1];      /* intygs-id/root: normally the issuing unit */
        char type[16];                     /* typ/code, "LISJP" */
        char version[16];                  /* "1", "1.0".."1.2", "2.0" */
        int major_version;                 /* 1 or 2 */
        char signed_at[20];                /* signeringstidpunkt YYYY-MM-DDThh:mm:ss, or "" */
        char sent_at[20];                  /* skickatTidpunkt (revoke: the revocation time) */
        char unit_hsa[HSA_ID_MAX + 1];     /* skapadAv/enhet/enhets-id */
        char unit_name[128];               /* enhetsnamn */
        char provider_hsa[HSA_ID_MAX + 1]; /* skapadAv/enhet/vardgivare/vardgivare-id */
        char author_hsa[HSA_ID_MAX + 1];   /* skapadAv/personal-id (a person: never logged) */

        /* The patient. person_id is personal data: kept only while the pipeline needs it
         * (pseudonym, sex, age), never logged, never stored by statistics; intyg_wipe(). */
        enum person_id_kind person_kind;
        char person_id[13]; /* 12 digits */
        bool person_id_checksum_ok;
        enum person_sex sex;
        char birth_date[11]; /* YYYY-MM-DD (samordningsnummer: day - 60) */

        /* Answers, RegisterCertificate only. */
        bool smittskydd;  /* 27.1 = true */
        size_t n_periods; /* answer 32, in document order */
        struct intyg_period periods[INTYG_MAX_PERIODS];
        size_t n_diagnoses; /* 6.2, 6.4, 6.6 in that order; [0] is the main diagnosis */
        char diagnoses[INTYG_MAX_DIAGNOSES][8];
        char diagnosis_system[40]; /* code system OID of 6.2 */
        char prognosis[32];        /* 39.1 code, or "" */
        char prognosis_days[32];   /* 39.3 code (v1) or 39.4 months (v2), or "" */
        size_t n_measures;         /* 40.1 codes (v1) */
        char measures[INTYG_MAX_MEASURES][24];
        bool treatment_given;   /* 19 or 20 answered */
        bool contact_fk_wanted; /* 26.1 true */
        char relation_type[8];  /* relation/typ code (ERSATT, KOMPLT, FRLANG, KOPIA) or "" */
        char relation_id[INTYG_ID_MAX + 1];

        /* RevokeCertificate only. */
        char revoke_reason[128]; /* meddelande, truncated */
};

/** How a follow-up unit was found (care-units issue). */
enum tag_resolution {
        TAG_UNRESOLVED = 0, /* unit itself; not in the directory or nothing matched */
        TAG_MAPPING = 1,    /* explicit region-agreed mapping table entry */
        TAG_LEVEL = 2,      /* nearest unit (self or ancestor) at the follow-up level */
        TAG_COARSER = 3,    /* nearest vårdenhet, coarser than the follow-up level */
};

/** The gateway's own metadata about where an intyg was issued. Never sent to FK. */
struct intyg_tags {
        char unit_hsa[HSA_ID_MAX + 1];     /* the issuing unit, as in the intyg */
        char followup_hsa[HSA_ID_MAX + 1]; /* the follow-up unit */
        enum tag_resolution resolution;
        char provider_hsa[HSA_ID_MAX + 1]; /* care provider according to the directory */
        char county[4];                    /* länskod, 2 digits, or "" */
        char municipality[8];              /* kommunkod, 4 digits, or "" */
        bool unit_known;                   /* the issuing unit is in the directory */
        bool provider_mismatch; /* the intyg's vårdgivare differs from the directory's */
};

/** One failed check, as reported to the caller: rule id, element path, message. */
struct verr {
        char rule[24];     /* upstream Schematron pattern id ("q6.2", "q32") or our own ("xsd") */
        char path[160];    /* element path, e.g. /RegisterCertificate/intyg/svar[@id='32'][2] */
        char message[256]; /* the project's own words; never contains a personnummer */
};

/** Every failed check of one document, up to VERR_MAX; the rest are counted. */
struct verrs {
        size_t n;
        size_t dropped;
        bool warnings_only; /* every entry is a warning (validation.person_id_check = warn) */
        struct verr items[VERR_MAX];
        size_t n_warnings;
        struct verr warnings[VERR_MAX_WARNINGS];
};

/** Append one error; silently counts it in dropped when the list is full. */
void verrs_add(struct verrs *v, const char *rule, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Append one warning (kept apart: a warning does not make the intyg invalid). */
void verrs_warn(struct verrs *v, const char *rule, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Clear the patient's identity from memory (explicit_bzero). */
void intyg_wipe(struct intyg *in);

/** Days since 1970-01-01 of a YYYY-MM-DD date, or -1 unless it is a real calendar date. */
int32_t intyg_date_to_day(const char *ymd);

/** Days since 1970-01-01 of a proleptic Gregorian date (no range check). */
int32_t intyg_civil_to_days(int y, int m, int d);

/** The proleptic Gregorian date of a day number. */
void intyg_days_to_civil(int32_t day, int *y, int *m, int *d);

/** Format a day number as YYYY-MM-DD into out[11]. */
void intyg_day_to_date(int32_t day, char out[11]);

#endif
