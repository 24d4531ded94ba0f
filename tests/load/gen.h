/*
 * gen.h - certificate generator for the load generator: fills the LISJP v1 template
 * (tests/data/templates/lisjp-v1.xml.in) with a unique id, a valid personnummer, a unit and
 * care provider of the caller's region, an ICD-10 diagnosis and a sick-leave period.
 * Owns the template text and its split into segments (gen_free). Document n is a pure
 * function of (seed, n, region), so the benchmark's references get the same payloads.
 * One thread at a time per struct gen (the load loop, or the --write-docs writer).
 */
#ifndef INTYGSGW_LOAD_GEN_H
#define INTYGSGW_LOAD_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_MAX_TEMPLATE  (256 * 1024) /* bytes of template text */
#define GEN_MAX_SEGMENTS  64           /* literal pieces + placeholders in the template */
#define GEN_MAX_UNITS     4            /* units of one region */
#define GEN_MAX_VALUE     64           /* bytes of one placeholder's value */
#define GEN_ID_PREFIX_MAX 32           /* characters of the run's id prefix */

/** One calling system: its client certificate's name in the PKI dir and what it may send. */
struct gen_region {
        const char *name;     /* "region-a": PKI files region-a.crt / region-a.key */
        const char *provider; /* care provider HSA-id granted to it (ops/grants.ini) */
        const char *units[GEN_MAX_UNITS];
        size_t n_units;
};

/** The three callers of the sample HSA extract (ops/HSA.md). */
#define GEN_N_REGIONS 3
const struct gen_region *gen_region_get(size_t i);

enum gen_ph {
        GEN_LITERAL = 0,
        GEN_ID,
        GEN_PERSON,
        GEN_UNIT,
        GEN_PROVIDER,
        GEN_SIGNED,
        GEN_DIAG,
        GEN_START,
        GEN_END,
};

struct gen_seg {
        enum gen_ph ph;
        const char *text; /* GEN_LITERAL: into gen.tmpl */
        size_t len;
};

struct gen {
        char *tmpl;         /* the template file, owned */
        size_t body_offset; /* first byte after the XML declaration (for the SOAP wrapper) */
        struct gen_seg segs[GEN_MAX_SEGMENTS];
        size_t n_segs;
        uint64_t seed;
        char id_prefix[GEN_ID_PREFIX_MAX + 1];
        int32_t last_day; /* latest signing day (days since 1970): yesterday */
};

/** The values one document gets (exposed for checks). */
struct gen_values {
        char id[GEN_MAX_VALUE];
        char person[13];
        const char *unit;
        const char *provider;
        char signed_day[11];
        const char *diag;
        char start[11];
        char end[11];
};

/**
 * Load and split the template. id_prefix: characters [A-Za-z0-9-] only, at most
 * GEN_ID_PREFIX_MAX (NULL: derived from the seed). today: days since 1970 of "now".
 * Returns 0, or -1 with a message.
 */
int gen_init(struct gen *g, const char *template_path, uint64_t seed, const char *id_prefix,
             int32_t today, char *err, size_t errlen);

/** Free the template; the struct may be reused by gen_init. NULL is fine. */
void gen_free(struct gen *g);

/** The values of document n for a region. */
void gen_values(const struct gen *g, uint64_t n, const struct gen_region *r,
                struct gen_values *out);

/**
 * Write document n into out[cap]: the bare RegisterCertificate (with its XML declaration) or,
 * soap=true, wrapped in a RIV-TA SOAP 1.1 envelope. Returns its length, or -1 if cap is too
 * small (nothing useful is left in out then).
 */
long gen_make(const struct gen *g, uint64_t n, const struct gen_region *r, bool soap, char *out,
              size_t cap);

/** A valid 12-digit personnummer (YYYYMMDDNNNC, Luhn check digit) into out[13] from rnd. */
void gen_personnummer(uint64_t rnd, char out[13]);

/** splitmix64 step: the generator's only source of variety. */
uint64_t gen_mix(uint64_t x);

#endif
