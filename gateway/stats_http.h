/*
 * stats_http.h - the admin API's /api/v1/stats/{report}?... : query string to struct
 * stats_query, run, render JSON or CSV. Blocking: call on a pool thread, never on the loop.
 */
#ifndef INTYGSGW_STATS_HTTP_H
#define INTYGSGW_STATS_HTTP_H

#include <stddef.h>

struct stats;

/**
 * name: a report name or "list"; query: the URL query (level=unit|provider|county|country,
 * id=... (repeatable), from=YYYY-MM, to=YYYY-MM, as_of=YYYY-MM-DD, mode=series|cross,
 * side_by_side=1, format=json|csv). 0 and *out (malloc'd); -2 unknown report; -1 bad query.
 */
int stats_http_report(struct stats *s, const char *name, const char *query, char **out, size_t *len,
                      char *err, size_t errlen);

#endif
