/*
 * authorise.h - which callers may submit for which care providers (the grants file), and the
 * admission decision that combines it with the HSA tag and the configured policies.
 *
 * Owns: struct grants, immutable once loaded (reload: load a new one, swap, free the old).
 * Threads: load on any thread; a loaded grants table is read-only, any thread.
 *
 * Grants file (ops/grants.ini), UTF-8 text, one caller per section:
 *   # comment            ; comment          (whole lines only)
 *   [SE2321000016-7P3K]                     caller system HSA-id (client certificate serialNumber)
 *   name = Region Stockholm, journal system (free text, optional, once)
 *   provider = SE2321000016-0001            a care provider (vårdgivare) HSA-id it may submit for
 *   provider = SE2321000016-0002, SE...     several per line, comma-separated, or repeated lines
 * HSA-ids compare case-insensitively and ignoring spaces. Any error (unknown key, bad HSA-id, a
 * caller section twice, a line over GRANTS_MAX_LINE) refuses the whole file: a half-read grants
 * table would authorise the wrong callers. There is no wildcard.
 */
#ifndef INTYGSGW_AUTHORISE_H
#define INTYGSGW_AUTHORISE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "hsa.h"

#define GRANTS_MAX_LINE      4096  /* bytes of one line */
#define GRANTS_MAX_CALLERS   10000 /* sections */
#define GRANTS_MAX_PROVIDERS 10000 /* providers of one caller */

struct grants;

enum auth_result {
        AUTH_OK = 0,
        AUTH_UNKNOWN_CALLER,       /* caller HSA-id not in the grants file (or not an HSA-id) */
        AUTH_PROVIDER_NOT_GRANTED, /* caller known, provider not granted to it */
};

/** Stable name: "ok", "unknown_caller", "provider_not_granted". */
const char *auth_result_name(enum auth_result r);

/** Load a grants file; NULL with err "file:line: reason" on any error. */
struct grants *grants_load(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/** Free; NULL is fine. */
void grants_free(struct grants *g);

/** Callers in the table. */
size_t grants_n_callers(const struct grants *g);

/** Whether caller_hsa may submit for provider_hsa. g NULL: every caller is unknown. */
enum auth_result grants_check(const struct grants *g, const char *caller_hsa,
                              const char *provider_hsa);

/** The display name of a caller ("" if none or unknown). */
const char *grants_caller_name(const struct grants *g, const char *caller_hsa);

/** What the gateway does with one intyg after validation. */
enum admit_result {
        ADMIT_OK = 0,
        ADMIT_UNKNOWN_CALLER,       /* refused: caller not in the grants file */
        ADMIT_PROVIDER_NOT_GRANTED, /* refused: the intyg's (or the directory's) provider */
        ADMIT_PROVIDER_MISMATCH,    /* refused: provider_mismatch = refuse and they differ */
        ADMIT_UNKNOWN_UNIT,         /* refused: unknown_unit = refuse and the unit is unknown */
};

/** Stable name: "ok", "unknown_caller", "provider_not_granted", "provider_mismatch", ... */
const char *admit_result_name(enum admit_result r);

struct admit_policy {
        enum policy_flag provider_mismatch; /* POLICY_FLAG (accept, flagged) or POLICY_REFUSE */
        enum policy_flag unknown_unit;      /* POLICY_ACCEPT (flagged) or POLICY_REFUSE */
};

/**
 * Authorise and tag one intyg: the caller must be known; the intyg's care provider must be
 * granted to it, and so must the directory's provider for the issuing unit when that differs
 * (a caller cannot reach another region's unit by naming its own provider); then the two
 * policies. tags is always filled (hsa_tag), also when refused, so the refusal can be logged
 * and counted with both HSA-ids. d may be NULL (no directory: every unit unknown).
 */
enum admit_result admit_intyg(const struct grants *g, const struct hsa_dir *d,
                              const struct admit_policy *p, const char *caller_hsa,
                              const char *unit_hsa, const char *provider_hsa,
                              struct intyg_tags *tags);

#endif
