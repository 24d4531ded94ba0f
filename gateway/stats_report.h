/*
 * stats_report.h - follow-up reports over the statistics store: the reference system's
 * groups and boundaries, three levels (unit or unit set, provider, county, country),
 * time series or cross-section, side by side, comparability, disclosure control; the
 * result as a neutral table rendered to JSON, CSV or text.
 * Owns the tables it returns (stats_table_free). Pure reads: any thread, one store per call.
 */
#ifndef INTYGSGW_STATS_REPORT_H
#define INTYGSGW_STATS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats_store.h"

#define STATS_CUTOFF_DEFAULT 5      /* §2.9 reports.nationell.cutoff */
#define STATS_CUTOFF_FLOOR   3      /* §2.9 lower configured values are raised to 3 */
#define STATS_MAX_ROWS       200000 /* rows in one report table */

enum stats_level {
        STATS_LEVEL_UNIT = 0, /* one follow-up unit or a set */
        STATS_LEVEL_PROVIDER,
        STATS_LEVEL_COUNTY, /* region = län */
        STATS_LEVEL_COUNTRY,
};

enum stats_mode {
        STATS_MODE_DEFAULT = 0, /* the report's own (the reference's default) */
        STATS_MODE_SERIES,      /* per month */
        STATS_MODE_CROSS,       /* the whole range at once (tvärsnitt) */
};

/* Whose eyes: disclosure control applies to every care provider but the viewer's (§2.9). */
enum stats_view {
        STATS_VIEW_PUBLIC = 0,   /* cutoff for every provider (national, region) */
        STATS_VIEW_PROVIDER = 1, /* no cutoff inside viewer_provider */
        STATS_VIEW_OWNER = 2,    /* verksamhet: the viewer owns all it selects (no cutoff) */
};

struct stats_query {
        const char *report; /* a name from stats_report_list */
        enum stats_level level;
        const char *ids[STATS_MAX_UNITS]; /* unit HSA-ids, a provider HSA-id or a county */
        size_t n_ids;
        const char *from, *to; /* YYYY-MM, inclusive */
        /* YYYY-MM-DD or NULL (now): the report the store would have given on that day, from
         * the certificates signed by then and not revoked by then; later months left out */
        const char *as_of;
        enum stats_mode mode;
        int cutoff; /* 0: STATS_CUTOFF_DEFAULT; below the floor raised to it */
        enum stats_view view;
        const char *viewer_provider;
        bool side_by_side; /* unit level: the unit beside its county and the country */
};

struct stats_cell {
        int64_t n;
        bool suppressed; /* nothing publishable: shown as suppressed, never as 0 */
        bool partial;    /* some care provider's part was suppressed: n is a lower bound */
        bool has_share;
        double share; /* per 100 of the level's cases (side by side) */
        bool has_comparability;
        double comparability; /* share of its certificates with a resolved follow-up unit */
};

struct stats_trow {
        char period[24]; /* YYYY-MM, or "YYYY-MM..YYYY-MM" for a cross-section */
        char group_id[HSA_ID_MAX + 1];
        char group[128];
        char sex[32]; /* side by side only: kvinnor, man, totalt */
};

struct stats_table {
        char report[32];
        char title[128];
        char level[16];
        char scope[256]; /* the ids, comma separated */
        char from[8], to[8], as_of[11], mode[8];
        int cutoff;
        char view[16];
        size_t ncols;
        char cols[8][32];
        size_t nrows;
        struct stats_trow *rows;
        struct stats_cell *cells; /* nrows * ncols */
};

struct stats_report_info {
        const char *name;
        const char *title;
        const char *default_mode; /* "series" or "cross" */
};

/** The reports, in a fixed order. */
const struct stats_report_info *stats_report_list(size_t *n);

/** Run a query against an open store. */
int stats_report_run(struct stats_store *st, const struct stats_query *q, struct stats_table **out,
                     char *err, size_t errlen);

void stats_table_free(struct stats_table *t);

/** Render; *out is malloc'ed and NUL-terminated. 0 or -1 (out of memory). */
int stats_table_json(const struct stats_table *t, char **out, size_t *len);
int stats_table_csv(const struct stats_table *t, char **out, size_t *len);
int stats_table_text(const struct stats_table *t, char **out, size_t *len);

/** For /api/v1/stats/...: open a read-only connection, run, render JSON. Blocks. */
int stats_report_json(struct stats *s, const struct stats_query *q, char **out, size_t *len,
                      char *err, size_t errlen);

/** Open a read-only store for reports at path. */
struct stats_store *stats_report_open(const char *path, char *err, size_t errlen);

#endif
