/*
 * cmd_stats.c - the `stats` command line: ingest (validate, tag, record, never forward) and
 * report (--list, any report at any level, text/JSON/CSV). Main thread of the CLI; owns its
 * config, validator, directory and statistics handles for the length of the command.
 */
#include "cmd_stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hsa.h"
#include "stats_report.h"
#include "stats_store.h"
#include "validate.h"

enum { X_OK = 0, X_FAIL = 1, X_USAGE = 2, X_CONFIG = 3 };

static int usage(FILE *f)
{
        fprintf(f, "usage: intygsgw stats ingest -c FILE XMLFILE...\n"
                   "       intygsgw stats report -c FILE --report NAME --level "
                   "unit|provider|county|country\n"
                   "                [--id HSA-ID|COUNTY]... --from YYYY-MM --to YYYY-MM\n"
                   "                [--as-of YYYY-MM-DD] [--mode series|cross] [--cutoff N]\n"
                   "                [--viewer HSA-ID | --public] [--side-by-side] [--json|--csv]\n"
                   "       intygsgw stats report --list\n");
        return X_USAGE;
}

static struct config *load_config(const char *path)
{
        if (!path) {
                fprintf(stderr, "stats: -c FILE is required\n");
                return NULL;
        }
        int nerr = 0;
        struct config *cfg = config_load(path, false, stderr, &nerr);
        if (cfg && !cfg->stats_path) {
                fprintf(stderr, "%s: [stats] path is not set\n", path);
                config_free(cfg);
                return NULL;
        }
        return cfg;
}

static char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
        FILE *f = fopen(path, "rb");
        if (!f) {
                snprintf(err, errlen, "%s", strerror(errno));
                return NULL;
        }
        char *b = malloc(max + 1);
        size_t n = b ? fread(b, 1, max + 1, f) : 0;
        bool bad = ferror(f);
        fclose(f);
        if (!b || bad) {
                free(b);
                snprintf(err, errlen, b ? "read error" : "out of memory");
                return NULL;
        }
        if (n > max) {
                free(b);
                snprintf(err, errlen, "larger than %zu bytes (http.max_body)", max);
                return NULL;
        }
        b[n] = '\0';
        *len = n;
        return b;
}

static int ingest(int argc, char **argv, const char *cfgpath)
{
        struct config *cfg = load_config(cfgpath);
        if (!cfg)
                return X_CONFIG;
        char err[512];
        int rc = X_OK;
        struct validator *v = NULL;
        struct hsa_dir *dir = NULL;
        struct stats *s = NULL;
        v = validator_new(cfg->schema_dir, err, sizeof err);
        if (!v) {
                fprintf(stderr, "stats ingest: schemas: %s\n", err);
                rc = X_CONFIG;
                goto done;
        }
        if (cfg->hsa_ldif) {
                struct hsa_opts o = {
                    .ldif = cfg->hsa_ldif, .mapping = cfg->hsa_mapping, .level = cfg->hsa_level};
                struct hsa_load_report rep;
                memset(&rep, 0, sizeof rep);
                dir = hsa_dir_load(&o, &rep, err, sizeof err);
                if (!dir) {
                        fprintf(stderr, "stats ingest: hsa: %s\n", err);
                        rc = X_CONFIG;
                        goto done;
                }
        }
        s = stats_open(cfg->stats_path, cfg->pseudonym_key, err, sizeof err);
        if (!s) {
                fprintf(stderr, "stats ingest: %s\n", err);
                rc = X_CONFIG;
                goto done;
        }
        struct validate_opts vo = {
            .max_bytes = cfg->max_body_bytes > 0 ? (size_t)cfg->max_body_bytes : 0,
            .person_id_strict = cfg->person_id_check == PERSON_ID_CHECK_STRICT};
        size_t max = vo.max_bytes ? vo.max_bytes : XML_MAX_DOC_BYTES_DEFAULT;
        for (int i = 0; i < argc; i++) {
                size_t len = 0;
                char *body = read_file(argv[i], max, &len, err, sizeof err);
                if (!body) {
                        printf("%s: error: %s\n", argv[i], err);
                        rc = X_FAIL;
                        continue;
                }
                struct validate_result *res = calloc(1, sizeof *res);
                if (!res) {
                        free(body);
                        rc = X_USAGE;
                        break;
                }
                validate_request(v, body, len, &vo, res);
                free(body);
                if (res->status != VALIDATE_OK) {
                        if (res->status == VALIDATE_FAULT)
                                printf("%s: invalid: %s\n", argv[i], res->fault);
                        else
                                printf("%s: invalid: %s %s\n", argv[i],
                                       res->errs.n ? res->errs.items[0].rule : "",
                                       res->errs.n ? res->errs.items[0].message : "");
                        validate_result_clear(res);
                        free(res);
                        rc = X_FAIL;
                        continue;
                }
                struct intyg_tags tags;
                memset(&tags, 0, sizeof tags);
                const struct intyg_tags *tp = NULL;
                if (res->intyg.kind == INTYG_REGISTER) {
                        hsa_tag(dir, res->intyg.unit_hsa, res->intyg.provider_hsa, &tags);
                        tp = &tags;
                }
                struct stats_counters before, after;
                stats_get_counters(s, &before);
                int r = stats_record_intyg(s, &res->intyg, tp, err, sizeof err);
                validate_result_clear(res); /* wipes the patient id */
                free(res);
                if (r != STATS_OK) {
                        printf("%s: refused: %s\n", argv[i], err);
                        rc = X_FAIL;
                        continue;
                }
                int fr = stats_flush(s, err, sizeof err);
                stats_get_counters(s, &after);
                if (fr != STATS_OK) {
                        printf("%s: error: %s\n", argv[i], err);
                        rc = X_FAIL;
                } else if (after.conflicts > before.conflicts) {
                        printf("%s: conflict: same certificate id already recorded with "
                               "other content\n",
                               argv[i]);
                        rc = X_FAIL;
                } else if (after.duplicates > before.duplicates) {
                        printf("%s: duplicate\n", argv[i]);
                } else if (after.revoked > before.revoked) {
                        printf("%s: revoked\n", argv[i]);
                } else {
                        printf("%s: stored\n", argv[i]);
                }
        }
done:
        stats_close(s);
        hsa_dir_free(dir);
        validator_free(v);
        config_free(cfg);
        return rc;
}

static int report(int argc, char **argv, const char *cfgpath)
{
        struct stats_query q = {.level = -1};
        enum { OUT_TEXT, OUT_JSON, OUT_CSV } fmt = OUT_TEXT;
        bool list = false, public_view = false;
        const char *viewer = NULL;
        char idbuf[1024];
        size_t idlen = 0;
        for (int i = 0; i < argc; i++) {
                const char *a = argv[i];
                const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDVAL                                                                                    \
        do {                                                                                       \
                if (!val) {                                                                        \
                        fprintf(stderr, "stats report: %s needs a value\n", a);                    \
                        return X_USAGE;                                                            \
                }                                                                                  \
                i++;                                                                               \
        } while (0)
                if (!strcmp(a, "--list")) {
                        list = true;
                } else if (!strcmp(a, "--json")) {
                        fmt = OUT_JSON;
                } else if (!strcmp(a, "--csv")) {
                        fmt = OUT_CSV;
                } else if (!strcmp(a, "--public")) {
                        public_view = true;
                } else if (!strcmp(a, "--side-by-side")) {
                        q.side_by_side = true;
                } else if (!strcmp(a, "--report")) {
                        NEEDVAL;
                        q.report = val;
                } else if (!strcmp(a, "--level")) {
                        NEEDVAL;
                        if (!strcmp(val, "unit"))
                                q.level = STATS_LEVEL_UNIT;
                        else if (!strcmp(val, "provider"))
                                q.level = STATS_LEVEL_PROVIDER;
                        else if (!strcmp(val, "county") || !strcmp(val, "region"))
                                q.level = STATS_LEVEL_COUNTY;
                        else if (!strcmp(val, "country"))
                                q.level = STATS_LEVEL_COUNTRY;
                        else {
                                fprintf(stderr, "stats report: --level unit|provider|county|"
                                                "country\n");
                                return X_USAGE;
                        }
                } else if (!strcmp(a, "--id")) {
                        NEEDVAL;
                        /* repeatable, or comma separated: a set of units */
                        size_t l = strlen(val);
                        if (idlen + l + 1 > sizeof idbuf) {
                                fprintf(stderr, "stats report: too many --id\n");
                                return X_USAGE;
                        }
                        memcpy(idbuf + idlen, val, l + 1);
                        char *p = idbuf + idlen, *save = NULL;
                        idlen += l + 1;
                        for (char *tok = strtok_r(p, ",", &save); tok;
                             tok = strtok_r(NULL, ",", &save)) {
                                if (q.n_ids >= STATS_MAX_UNITS) {
                                        fprintf(stderr, "stats report: at most %d ids\n",
                                                STATS_MAX_UNITS);
                                        return X_USAGE;
                                }
                                q.ids[q.n_ids++] = tok;
                        }
                } else if (!strcmp(a, "--from")) {
                        NEEDVAL;
                        q.from = val;
                } else if (!strcmp(a, "--to")) {
                        NEEDVAL;
                        q.to = val;
                } else if (!strcmp(a, "--as-of")) {
                        NEEDVAL;
                        q.as_of = val;
                } else if (!strcmp(a, "--mode")) {
                        NEEDVAL;
                        if (!strcmp(val, "series"))
                                q.mode = STATS_MODE_SERIES;
                        else if (!strcmp(val, "cross"))
                                q.mode = STATS_MODE_CROSS;
                        else
                                return usage(stderr);
                } else if (!strcmp(a, "--cutoff")) {
                        NEEDVAL;
                        char *end = NULL;
                        long c = strtol(val, &end, 10);
                        if (!end || *end || c < 1 || c > 1000) {
                                fprintf(stderr, "stats report: --cutoff 1..1000 (3 at least "
                                                "is used)\n");
                                return X_USAGE;
                        }
                        q.cutoff = (int)c;
                } else if (!strcmp(a, "--viewer")) {
                        NEEDVAL;
                        viewer = val;
                } else {
                        fprintf(stderr, "stats report: unknown option %s\n", a);
                        return usage(stderr);
                }
#undef NEEDVAL
        }
        if (list) {
                size_t n;
                const struct stats_report_info *li = stats_report_list(&n);
                for (size_t i = 0; i < n; i++)
                        printf("%-20s %-7s %s\n", li[i].name, li[i].default_mode, li[i].title);
                return X_OK;
        }
        if (!q.report || (int)q.level < 0 || !q.from || !q.to)
                return usage(stderr);
        /* Whose eyes: a unit or provider report is the owner's view (verksamhet, no cutoff,
         * §2.9 At3100) unless --public or --viewer says otherwise; county and country are
         * public (region and national, cutoff applied per care provider). */
        if (viewer) {
                q.view = STATS_VIEW_PROVIDER;
                q.viewer_provider = viewer;
        } else if (public_view || q.level == STATS_LEVEL_COUNTY || q.level == STATS_LEVEL_COUNTRY) {
                q.view = STATS_VIEW_PUBLIC;
        } else {
                q.view = STATS_VIEW_OWNER;
        }
        struct config *cfg = load_config(cfgpath);
        if (!cfg)
                return X_CONFIG;
        char err[512] = "";
        struct stats_store *st = stats_report_open(cfg->stats_path, err, sizeof err);
        config_free(cfg);
        if (!st) {
                fprintf(stderr, "stats report: %s\n", err);
                return X_CONFIG;
        }
        struct stats_table *t = NULL;
        int rc = stats_report_run(st, &q, &t, err, sizeof err);
        stats_store_close(st);
        if (rc != 0) {
                fprintf(stderr, "stats report: %s\n", err);
                return rc == STATS_EINVAL ? X_USAGE : X_FAIL;
        }
        char *out = NULL;
        size_t len = 0;
        int r = fmt == OUT_JSON  ? stats_table_json(t, &out, &len)
                : fmt == OUT_CSV ? stats_table_csv(t, &out, &len)
                                 : stats_table_text(t, &out, &len);
        stats_table_free(t);
        if (r != 0) {
                fprintf(stderr, "stats report: out of memory\n");
                return X_FAIL;
        }
        fwrite(out, 1, len, stdout);
        free(out);
        return X_OK;
}

int cmd_stats(int argc, char **argv)
{
        if (argc < 2)
                return usage(stderr);
        const char *sub = argv[1];
        const char *cfgpath = NULL;
        char **rest = calloc((size_t)argc + 1, sizeof *rest);
        if (!rest)
                return X_USAGE;
        int n = 0;
        for (int i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
                        if (i + 1 >= argc) {
                                free(rest);
                                return usage(stderr);
                        }
                        cfgpath = argv[++i];
                        continue;
                }
                rest[n++] = argv[i];
        }
        int rc;
        if (!strcmp(sub, "ingest"))
                rc = n > 0 ? ingest(n, rest, cfgpath) : usage(stderr);
        else if (!strcmp(sub, "report"))
                rc = report(n, rest, cfgpath);
        else
                rc = usage(stderr);
        free(rest);
        return rc;
}
