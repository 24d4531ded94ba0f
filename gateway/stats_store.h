/*
 * stats_store.h - the follow-up statistics store: de-identified facts, sick-leave cases,
 * per-month case rows and aggregates, behind a vtable (SQLite now, PostgreSQL later);
 * and struct stats, what the daemon and `intygsgw stats` use.
 *
 * Owns: struct stats (the pseudonym key, one writer thread, its bounded queue of
 * de-identified records, the store it writes). stats_record_intyg turns an intyg into a
 * de-identified record on the caller's thread (the personnummer never leaves that call) and
 * queues it; only the writer thread writes the store. Reports open their own read-only
 * connection per call, so a slow report never delays the writer or the caller.
 * Threads: every stats_* function may be called from any thread; stats_report_* block and
 * belong on a pool thread, never on the loop thread.
 */
#ifndef INTYGSGW_STATS_STORE_H
#define INTYGSGW_STATS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "icd10.h"
#include "intyg.h"
#include "limits.h"
#include "pseudonym.h"
#include "sjukfall.h"

#define STATS_QUEUE_MAX                                                                            \
        65536                         /* records waiting for the writer; stats_record_intyg        \
                                         refuses beyond (STATS_EFULL) rather than block */
#define STATS_BATCH_MAX  2000         /* records per writer transaction */
#define STATS_MAX_UNITS  64           /* follow-up units in one query (a set) */
#define STATS_MIN_START  "2010-01-01" /* §1.2 validation: earlier starts are refused */
#define STATS_MAX_FUTURE 1826         /* days (5 years) a period may reach past signing/now */

/* Fact kinds (table fact_kind). A komplettering request from FK becomes kind 2 in a later
 * issue: same fact table, joined to the certificate by cert_ps. */
enum stats_fact_kind { STATS_FACT_PERIOD = 1, STATS_FACT_KOMPLETTERING = 2 };

/* Result codes. */
enum {
        STATS_OK = 0,
        STATS_DUPLICATE = 1,  /* exact duplicate: counted once (§1.2, At1018) */
        STATS_EINVAL = -1,    /* the intyg cannot make facts (reason in err) */
        STATS_EFULL = -2,     /* writer queue full */
        STATS_ESTORE = -3,    /* storage failure */
        STATS_ECONFLICT = -4, /* same certificate id, different content */
};

/* Q39 prognosis (KV_FKMU_0006), stored as an index. */
enum stats_prognosis {
        PROG_NONE = 0, /* not answered */
        PROG_STOR_SANNOLIKHET,
        PROG_ATER_X_ANTAL_DGR,
        PROG_SANNOLIKT_INTE,
        PROG_PROGNOS_OKLAR,
        PROG_ATER_X_ANTAL_MANADER, /* FK7804 v2 */
        PROG_OTHER,
        STATS_N_PROGNOSIS
};
/* Q40 work-oriented measures, a bit each (ArbetslivsinriktadeAtgarder, §2.8). */
enum stats_measure {
        MEAS_EJ_AKTUELLT = 0,
        MEAS_ARBETSTRANING,
        MEAS_ARBETSANPASSNING,
        MEAS_SOKA_NYTT_ARBETE,
        MEAS_BESOK_ARBETSPLATS,
        MEAS_ERGONOMISK,
        MEAS_HJALPMEDEL,
        MEAS_KONFLIKTHANTERING,
        MEAS_KONTAKT_FHV,
        MEAS_OMFORDELNING,
        MEAS_OVRIGA_ATGARDER,
        MEAS_OTHER,
        STATS_N_MEASURES /* as a group: "not answered" */
};
int stats_prognosis_index(const char *code);
const char *stats_prognosis_code(int idx);
int stats_measure_index(const char *code);
const char *stats_measure_code(int idx);

/** What one certificate leaves in the statistics: no personnummer, no birth date. */
struct stats_record {
        enum intyg_kind kind;
        int32_t revoked_day;       /* revoke: the revocation's own day (skickatTidpunkt, else the
                                      day it was recorded); outside the content hash */
        unsigned char content[32]; /* SHA-256 over everything below */
        unsigned char cert_ps[PSEUDONYM_LEN];    /* pseudonym of the certificate id */
        unsigned char patient_ps[PSEUDONYM_LEN]; /* pseudonym of (care provider, patient) */
        int32_t signed_day;
        char provider[HSA_ID_MAX + 1]; /* normalised: upper case, no spaces (At1028) */
        char unit[HSA_ID_MAX + 1];
        char followup[HSA_ID_MAX + 1];
        int resolution; /* enum tag_resolution */
        int county;     /* 0 unknown (§2.7) */
        char municipality[8];
        int sex; /* 1 male, 2 female */
        int age; /* at the last sick-leave day (§1.2) */
        struct icd10_class dx;
        int prognosis;
        uint32_t measures;
        bool treatment;
        size_t n_periods;
        struct {
                int32_t start, end;
                int degree;
        } periods[INTYG_MAX_PERIODS];
};

/** Normalise an HSA-id for statistics: drop spaces, upper-case (At1028, At8301). */
void stats_hsa_normalise(const char *in, char out[HSA_ID_MAX + 1]);

/**
 * Build a record from an intyg and its tags (pure; the caller's thread). A register needs a
 * person id with a real birth date, at least one valid period (§1.2 validation), a care
 * provider and a unit. Returns STATS_OK or STATS_EINVAL with the reason (never the number).
 */
int stats_record_from_intyg(const struct pseudonym *ps, const struct intyg *in,
                            const struct intyg_tags *tags, struct stats_record *out, char *err,
                            size_t errlen);

/* ---- the store interface ---- */

/* Aggregate dimensions (table agg): per (dim, month, care provider, county, sex, group). */
enum stats_dim {
        DIM_TOTAL = 1,
        DIM_DXGROUP,
        DIM_CHAPTER,
        DIM_AGE,
        DIM_DEGREE,
        DIM_LENGTH,
        DIM_OVER90,
        DIM_NCERT,
        DIM_PROGNOSIS,
        DIM_MEASURE,
        DIM_UNIT,  /* from unit-scope rows; group = follow-up unit id */
        DIM_CERTS, /* certificates by signing month (not cases) */
        STATS_N_DIMS
};

/** What a scan selects. */
struct stats_scan {
        int32_t month_from, month_to; /* inclusive */
        const int32_t *units;         /* unit scopes (ids); NULL: the provider scope 0 */
        size_t n_units;
        int32_t provider; /* 0: any */
        int county;       /* -1: any */
        bool all_units;   /* every unit scope (> 0) instead of units / scope 0 */
        bool scope_order; /* rows ordered by case, scope, month (else case, month, scope) */
        /* As of a past day: only facts signed on or before as_of and not revoked by then
         * (revoked_day > as_of). scan_rows then recomputes the cases of the scope from those
         * facts instead of reading the incremental state; scan_certs filters the same way. */
        bool as_of_cut;
        int32_t as_of;
};

struct stats_row_rec {
        int64_t case_id;
        int32_t provider;
        struct sf_row r;
};

struct stats_agg_rec {
        int32_t month, provider;
        int county, sex;
        int32_t grp;
        int64_t n, nres;
};

struct stats_cert_rec {
        int32_t month, provider;
        int sex, county;
        int64_t n, nres;
};

struct stats_store;
typedef int (*stats_row_cb)(void *arg, const struct stats_row_rec *r);
typedef int (*stats_agg_cb)(void *arg, const struct stats_agg_rec *r);
typedef int (*stats_cert_cb)(void *arg, const struct stats_cert_rec *r);

struct stats_store_ops {
        const char *name;
        int (*begin)(struct stats_store *st, char *err, size_t errlen);
        int (*commit)(struct stats_store *st, char *err, size_t errlen);
        void (*rollback)(struct stats_store *st);
        /** Register: facts + case update (STATS_OK/DUPLICATE/ECONFLICT); revoke: deactivate. */
        int (*record)(struct stats_store *st, const struct stats_record *r, char *err,
                      size_t errlen);
        /** Id of a normalised HSA-id, 0 if never seen. */
        int (*hsa_id)(struct stats_store *st, const char *hsa, int32_t *id);
        /** The HSA-id of an id into buf ("" if unknown). */
        int (*hsa_name)(struct stats_store *st, int32_t id, char *buf, size_t len);
        int (*scan_rows)(struct stats_store *st, const struct stats_scan *q, stats_row_cb cb,
                         void *arg, char *err, size_t errlen);
        int (*scan_agg)(struct stats_store *st, const struct stats_scan *q, enum stats_dim dim,
                        stats_agg_cb cb, void *arg, char *err, size_t errlen);
        /** Certificates of the given unit scopes by signing month (active ones, or those
         * visible at as_of with as_of_cut); without units (provider, county or every
         * certificate) only with as_of_cut: otherwise the aggregates answer. */
        int (*scan_certs)(struct stats_store *st, const struct stats_scan *q, stats_cert_cb cb,
                          void *arg, char *err, size_t errlen);
        /** The county most of a follow-up unit's visible certificates carry (0 if none); as_of
         * (a day, or INT32_MAX for now) hides certificates signed later or revoked by then. */
        int (*unit_county)(struct stats_store *st, int32_t unit, int32_t as_of, int *county);
        /** The newest signing or revocation day of the facts that can reach the scan's rows
         * (the care providers of its units, its provider, or every provider); INT32_MIN if
         * none. The incremental state answers any as_of at or after it. */
        int (*horizon)(struct stats_store *st, const struct stats_scan *q, int32_t *day);
        /** Counts for the operator: facts, certificates, cases, rows. */
        int (*counts)(struct stats_store *st, int64_t out[4]);
        void (*close)(struct stats_store *st);
};

struct stats_store {
        const struct stats_store_ops *ops;
        void *impl;
};

/**
 * Open (create if need be) the SQLite store. readonly: a report connection. fingerprint
 * (may be NULL) is compared with the one stored at creation, so a changed key is refused
 * instead of silently splitting every patient's history.
 */
struct stats_store *stats_sqlite_open(const char *path, bool readonly,
                                      const unsigned char *fingerprint, char *err, size_t errlen);

/** Close any store; NULL is fine. */
void stats_store_close(struct stats_store *st);

/* ---- a small hash map (two 64-bit keys, four counters), used by store and reports ---- */

struct stats_map_entry {
        uint64_t a, b;
        int64_t v[4];
        bool used;
};
struct stats_map {
        struct stats_map_entry *e;
        size_t cap, n;
};
/** The entry for (a, b), inserted zeroed if absent; NULL on out-of-memory. */
struct stats_map_entry *stats_map_get(struct stats_map *m, uint64_t a, uint64_t b);
/** Forget every entry (keeps the memory). */
void stats_map_clear(struct stats_map *m);
/** Free the memory (the struct itself is the caller's). */
void stats_map_free(struct stats_map *m);

/* ---- the daemon's interface ---- */

struct stats;
struct stats_query; /* stats_report.h */

/** Open the store at path with the key in pseudonym_key_file and start the writer thread. */
struct stats *stats_open(const char *path, const char *pseudonym_key_file, char *err,
                         size_t errlen);

/** Drain the queue, stop the writer, close; NULL is fine. */
void stats_close(struct stats *s);

/**
 * Register: facts + case update; revoke: deactivate. Pseudonymises on the caller's thread,
 * copies what it needs (never person_id) and queues it for the writer: returns at once.
 * STATS_OK when queued, STATS_EINVAL (not a statistics fact; reason in err), STATS_EFULL.
 * Duplicates and conflicts are found by the writer (counted in stats_counters).
 */
int stats_record_intyg(struct stats *s, const struct intyg *in, const struct intyg_tags *tags,
                       char *err, size_t errlen);

/** Wait until everything queued so far is committed; returns the writer's last status. */
int stats_flush(struct stats *s, char *err, size_t errlen);

/** Writer counters. */
struct stats_counters {
        uint64_t queued, stored, duplicates, conflicts, revoked, refused, errors;
        uint64_t queue_len;
};
void stats_get_counters(struct stats *s, struct stats_counters *out);

/** The path of the store (for report connections). */
const char *stats_path(const struct stats *s);

#endif
