/*
 * stats_http.c - /api/v1/stats/{report}: query parsing, running and rendering.
 * Pool threads (blocking reads of the statistics store).
 */
#include "stats_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "jbuf.h"
#include "stats_report.h"
#include "stats_store.h"

#define STATS_HTTP_MAX_IDS 16

static int list_reports(char **out, size_t *len)
{
        size_t n;
        const struct stats_report_info *r = stats_report_list(&n);
        struct jbuf b = {0};
        jbuf_printf(&b, "{\"reports\":[");
        for (size_t i = 0; i < n; i++) {
                jbuf_printf(&b, "%s{\"name\":", i ? "," : "");
                jbuf_str(&b, r[i].name);
                jbuf_printf(&b, ",\"title\":");
                jbuf_str(&b, r[i].title);
                jbuf_printf(&b, ",\"default_mode\":");
                jbuf_str(&b, r[i].default_mode);
                jbuf_printf(&b, "}");
        }
        jbuf_printf(&b, "]}\n");
        *out = jbuf_take(&b, len);
        return *out ? 0 : -1;
}

int stats_http_report(struct stats *s, const char *name, const char *query, char **out, size_t *len,
                      char *err, size_t errlen)
{
        *out = NULL;
        if (!strcmp(name, "list") || !*name)
                return list_reports(out, len);
        size_t n;
        const struct stats_report_info *info = stats_report_list(&n);
        bool known = false;
        for (size_t i = 0; i < n; i++)
                known |= !strcmp(info[i].name, name);
        if (!known) {
                snprintf(err, errlen, "unknown report \"%s\"; GET /api/v1/stats/list names them",
                         name);
                return -2;
        }
        struct stats_query q;
        memset(&q, 0, sizeof q);
        q.report = name;
        char level[16] = "country", from[8] = "", to[8] = "", as_of[11] = "", mode[8] = "",
             v[16] = "", format[8] = "json";
        char ids[STATS_HTTP_MAX_IDS][HSA_ID_MAX + 1];
        http_query_get(query, "level", 0, level, sizeof level);
        if (!strcmp(level, "unit"))
                q.level = STATS_LEVEL_UNIT;
        else if (!strcmp(level, "provider"))
                q.level = STATS_LEVEL_PROVIDER;
        else if (!strcmp(level, "county"))
                q.level = STATS_LEVEL_COUNTY;
        else if (!strcmp(level, "country"))
                q.level = STATS_LEVEL_COUNTRY;
        else {
                snprintf(err, errlen, "level must be unit, provider, county or country");
                return -1;
        }
        while (q.n_ids < STATS_HTTP_MAX_IDS && q.n_ids < STATS_MAX_UNITS &&
               http_query_get(query, "id", (int)q.n_ids, ids[q.n_ids], sizeof ids[0])) {
                q.ids[q.n_ids] = ids[q.n_ids];
                q.n_ids++;
        }
        if (q.level != STATS_LEVEL_COUNTRY && q.n_ids == 0) {
                snprintf(err, errlen, "level %s needs id=", level);
                return -1;
        }
        if (!http_query_get(query, "from", 0, from, sizeof from) ||
            !http_query_get(query, "to", 0, to, sizeof to)) {
                snprintf(err, errlen, "from=YYYY-MM and to=YYYY-MM are required");
                return -1;
        }
        q.from = from;
        q.to = to;
        if (http_query_get(query, "as_of", 0, as_of, sizeof as_of))
                q.as_of = as_of;
        if (http_query_get(query, "mode", 0, mode, sizeof mode))
                q.mode = !strcmp(mode, "cross") ? STATS_MODE_CROSS : STATS_MODE_SERIES;
        if (http_query_get(query, "side_by_side", 0, v, sizeof v))
                q.side_by_side = !strcmp(v, "1") || !strcmp(v, "true");
        http_query_get(query, "format", 0, format, sizeof format);
        /* Public by default: the cut-off applies to every care provider. viewer=HSA-ID lifts
         * it inside that care provider only (its own figures). */
        char viewer[HSA_ID_MAX + 1] = "";
        q.view = STATS_VIEW_PUBLIC;
        if (http_query_get(query, "viewer", 0, viewer, sizeof viewer) && viewer[0]) {
                q.view = STATS_VIEW_PROVIDER;
                q.viewer_provider = viewer;
        }
        if (strcmp(format, "csv") != 0)
                return stats_report_json(s, &q, out, len, err, errlen) == 0 ? 0 : -1;
        struct stats_store *st = stats_report_open(stats_path(s), err, errlen);
        if (!st)
                return -1;
        struct stats_table *t = NULL;
        int rc = stats_report_run(st, &q, &t, err, errlen);
        if (rc == 0 && stats_table_csv(t, out, len) != 0) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
        }
        stats_table_free(t);
        stats_store_close(st);
        return rc == 0 ? 0 : -1;
}
