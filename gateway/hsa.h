/*
 * hsa.h - the HSA directory extract (LDIF), the region-agreed mapping table, the follow-up
 * level predicate, and the tag every intyg gets (struct intyg_tags, intyg.h).
 *
 * Owns: struct hsa_dir, immutable once loaded; every tag is precomputed at load, so hsa_tag()
 * is one hash lookup. Threads: load on any thread; a loaded hsa_dir is shared read-only by
 * every thread and reference-counted; struct hsa_holder swaps a new one in atomically (mutex)
 * and keeps the old one when a reload fails.
 *
 * Follow-up unit of an issuing unit U (first rule that applies; the tag records which):
 *   1 mapping    U is in the mapping CSV: its follow-up unit is the one given there;
 *   2 level      the nearest unit, U itself or a DN-tree ancestor, matching the level predicate;
 *   3 coarser    the nearest vårdenhet (hsaHealthCareUnit): U itself, else the vårdenhet whose
 *                hsaHealthCareUnitMember lists U, else the nearest vårdenhet ancestor;
 *   4 unresolved U itself (also when U is not in the directory at all).
 * Care provider: U's hsaResponsibleHealthCareProvider, else U if it is an hsaHealthCareProvider,
 * else the same taken from the vårdenhet listing U as member, else from the nearest ancestor.
 * County and municipality: U's countyCode/municipalityCode, else the member-of vårdenhet's,
 * else the nearest ancestor's (at issue time: the extract loaded when the intyg arrived).
 *
 * Level predicate grammar (config hsa.level), parsed once, errors name the byte offset:
 *   expr  := and ( '|' and )*          alternatives
 *   and   := unary ( '&' unary )*      all of
 *   unary := '!' unary | '(' expr ')' | test
 *   test  := ATTR '=' value ( ',' value )*   the unit has ATTR with any of the values
 *   value := [A-Za-z0-9_.:-]+ [ '*' ]  |  '*'     case-insensitive; trailing '*' = prefix;
 *                                                 '*' alone = the attribute is present
 *   ATTR  := businessClassificationCode | careType | hsaBusinessType | management |
 *            objectClass | countyCode | municipalityCode | hsaIdentity   (case-insensitive)
 * White space is allowed between tokens. Example: "businessClassificationCode=1100,1102,1500".
 * The predicate looks at the unit's own attributes only (not inherited ones).
 */
#ifndef INTYGSGW_HSA_H
#define INTYGSGW_HSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "intyg.h"
#include "ldif.h"

#define HSA_LEVEL_MAX_BYTES  1024    /* bytes of the level predicate */
#define HSA_LEVEL_MAX_NODES  128     /* tests and operators in it */
#define HSA_LEVEL_MAX_VALUES 256     /* values over all its tests */
#define HSA_LEVEL_MAX_DEPTH  16      /* nesting of '(' and '!' */
#define HSA_MAPPING_MAX_LINE 1024    /* bytes of one mapping CSV line */
#define HSA_MAX_ENTRIES      4000000 /* LDIF entries in one extract (HSA has ~250,000 units) */
#define HSA_REPORT_ERRORS    8       /* errors kept in struct hsa_load_report */

struct hsa_dir;
struct hsa_level;

struct hsa_opts {
        const char *ldif;    /* the extract (required) */
        const char *mapping; /* CSV unit HSA-id -> follow-up unit HSA-id, or NULL */
        const char *level;   /* the level predicate (required, see above) */
};

/** What a load saw. Errors are "file:line: reason"; n_errors counts all, the first 8 kept. */
struct hsa_load_report {
        size_t entries;  /* LDIF records read (broken ones included) */
        size_t units;    /* entries with an hsaIdentity kept in the table */
        size_t skipped;  /* broken or duplicate entries left out */
        size_t mappings; /* rows of the mapping table */
        size_t problems; /* everything hsa_dir_problems() would report */
        char first_errors[HSA_REPORT_ERRORS][200];
        size_t n_errors;
};

/** Name of a resolution: "unresolved", "mapping", "level", "coarser". */
const char *tag_resolution_name(enum tag_resolution r);

/**
 * Normalise an HSA-id for comparison: ASCII upper-cased, spaces removed (HSA-ids compare
 * case-insensitively and ignoring spaces). False unless 1..HSA_ID_MAX of [A-Z0-9-] remain.
 */
bool hsa_id_normalise(const char *in, char out[HSA_ID_MAX + 1]);

/** Parse a level predicate; NULL with err "offset N: reason" on a syntax error. */
struct hsa_level *hsa_level_parse(const char *expr, char *err, size_t errlen);

/** Free a predicate; NULL is fine. */
void hsa_level_free(struct hsa_level *l);

/** Whether one LDIF entry's own attributes satisfy the predicate. */
bool hsa_level_match(const struct hsa_level *l, const struct ldif_entry *e);

/**
 * Load the extract and the mapping, check the predicate, precompute every unit's tag.
 * A broken LDIF entry is reported in rep (with its line) and skipped; NULL only on a fatal
 * error (file unreadable, bad predicate, bad mapping file, out of memory, too many entries),
 * with err saying why. The result holds one reference (hsa_dir_free drops it).
 */
struct hsa_dir *hsa_dir_load(const struct hsa_opts *o, struct hsa_load_report *rep, char *err,
                             size_t errlen) __attribute__((warn_unused_result));

/** Take one more reference (for another thread); returns d. */
const struct hsa_dir *hsa_dir_ref(const struct hsa_dir *d);

/** Drop one reference; the last one frees the directory. NULL is fine. */
void hsa_dir_free(const struct hsa_dir *d);

/**
 * Tag an intyg issued at unit_hsa whose own care provider is intyg_provider_hsa (may be NULL).
 * O(1) on average; never fails: an unknown unit gives unit_known=false, resolution unresolved
 * (or mapping, when the mapping table names it). provider_hsa is the directory's care
 * provider; when the directory knows none, the intyg's own is copied (and no mismatch flagged).
 * d may be NULL (no directory configured): every field as for an unknown unit.
 */
void hsa_tag(const struct hsa_dir *d, const char *unit_hsa, const char *intyg_provider_hsa,
             struct intyg_tags *out);

/* ---- inspection, for `intygsgw hsa lookup|check` and the admin pages ---- */

/** One unit as the directory holds it. Strings are borrowed from d ("" when absent). */
struct hsa_unit_info {
        const char *hsa_id;
        const char *name;
        const char *dn; /* normalised */
        unsigned long line;
        bool is_care_unit;                   /* hsaHealthCareUnit (vårdenhet) */
        bool is_provider;                    /* hsaHealthCareProvider (vårdgivare) */
        bool at_level;                       /* matches the level predicate itself */
        bool dangling;                       /* its DN parent is not in the extract */
        const char *business_classification; /* comma-joined codes */
        const char *care_type;               /* comma-joined codes */
        const char *responsible_provider;    /* its own hsaResponsibleHealthCareProvider */
        const char *parent_hsa;              /* nearest ancestor that is a unit, or "" */
        const char *vardenhet_hsa;           /* its vårdenhet (rule 3), or "" */
        const char *organisation;            /* name of the nearest o= entry (the region) */
        const char *organisation_hsa;        /* its hsaIdentity, or "" */
        char start_date[11];                 /* YYYY-MM-DD or "" */
        char end_date[11];
        struct intyg_tags tags; /* what hsa_tag gives it (intyg provider = directory's) */
};

/** Units in the table. */
size_t hsa_dir_n_units(const struct hsa_dir *d);

/** Unit number i (0 <= i < n_units, file order). False if out of range. */
bool hsa_dir_unit(const struct hsa_dir *d, size_t i, struct hsa_unit_info *out);

/** Find a unit by HSA-id. False if it is not in the directory. */
bool hsa_dir_find(const struct hsa_dir *d, const char *hsa_id, struct hsa_unit_info *out);

/** The mapping table's follow-up unit for hsa_id, or NULL. */
const char *hsa_dir_mapping(const struct hsa_dir *d, const char *hsa_id);

enum hsa_problem_kind {
        HSA_PROBLEM_BROKEN_ENTRY = 0,      /* LDIF syntax, bad DN or hsaIdentity: skipped */
        HSA_PROBLEM_DUPLICATE_ID,          /* second entry with the same hsaIdentity: skipped */
        HSA_PROBLEM_DUPLICATE_DN,          /* second entry with the same DN: skipped */
        HSA_PROBLEM_DANGLING_PARENT,       /* the DN's parent entry is not in the extract */
        HSA_PROBLEM_NO_COUNTY,             /* a unit with no countyCode, own or inherited */
        HSA_PROBLEM_CARE_UNIT_NO_PROVIDER, /* vårdenhet without hsaResponsibleHealthCareProvider */
        HSA_PROBLEM_NO_PROVIDER,           /* a unit for which no care provider resolves */
        HSA_PROBLEM_BAD_VALUE,             /* an attribute value ignored (bad code, date) */
        HSA_PROBLEM_MEMBER_UNKNOWN,        /* hsaHealthCareUnitMember names no entry */
        HSA_PROBLEM_MEMBER_CONFLICT,       /* a unit listed as member of two vårdenheter */
        HSA_PROBLEM_MAPPING_UNIT_UNKNOWN,  /* mapping row for a unit not in the extract */
        HSA_PROBLEM_MAPPING_TARGET_UNKNOWN, /* mapping row to a unit not in the extract */
        HSA_PROBLEM_KINDS
};

/** One problem: kind, line (LDIF or mapping CSV, 0 if none), unit id and detail. */
struct hsa_problem {
        enum hsa_problem_kind kind;
        unsigned long line;
        const char *hsa_id; /* may be "" */
        const char *detail;
};

/** Stable name of a problem kind ("duplicate_id", ...). */
const char *hsa_problem_name(enum hsa_problem_kind k);

/** Call cb for every problem found at load; returns their number. */
size_t hsa_dir_problems(const struct hsa_dir *d, void (*cb)(void *ctx, const struct hsa_problem *p),
                        void *ctx);

/* ---- reload: build new, then swap ---- */

/**
 * A holder of the live directory. Readers on any thread acquire a reference, use it, and
 * release it with hsa_dir_free(); hsa_holder_reload() (any thread, e.g. a pool job started on
 * SIGHUP) builds a new directory outside the lock and swaps the pointer under a mutex, so a
 * reader sees either the whole old table or the whole new one.
 */
struct hsa_holder;

/** A holder owning d (may be NULL: no directory). NULL on out-of-memory (d is then freed). */
struct hsa_holder *hsa_holder_new(struct hsa_dir *d_take);

/** Free the holder and drop its reference; NULL is fine. */
void hsa_holder_free(struct hsa_holder *h);

/** The current directory with one reference for the caller (release with hsa_dir_free). */
const struct hsa_dir *hsa_holder_acquire(struct hsa_holder *h);

/**
 * Load o into a new directory and swap it in. On failure (fatal load error, or an extract
 * with no units at all) the old directory stays live, err says why and -1 is returned.
 * Logs hsa_reload / hsa_reload_failed.
 */
int hsa_holder_reload(struct hsa_holder *h, const struct hsa_opts *o, struct hsa_load_report *rep,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
