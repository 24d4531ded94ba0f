/*
 * authorise.c - the grants file (caller HSA-id -> care providers) and the admission decision.
 *
 * Owns: struct grants: callers sorted by normalised HSA-id, each with a sorted array of
 * normalised provider ids; lookups are two binary searches. Immutable after grants_load().
 * Threads: any; a loaded table is only read.
 */
#include "authorise.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct caller {
        char id[HSA_ID_MAX + 1]; /* normalised */
        char *name;
        char (*providers)[HSA_ID_MAX + 1]; /* normalised, sorted */
        size_t n_providers, cap_providers;
        unsigned long line;
};

struct grants {
        struct caller *callers; /* sorted by id after load */
        size_t n_callers, cap_callers;
};

const char *auth_result_name(enum auth_result r)
{
        switch (r) {
        case AUTH_OK:
                return "ok";
        case AUTH_UNKNOWN_CALLER:
                return "unknown_caller";
        case AUTH_PROVIDER_NOT_GRANTED:
                return "provider_not_granted";
        }
        return "unknown";
}

const char *admit_result_name(enum admit_result r)
{
        switch (r) {
        case ADMIT_OK:
                return "ok";
        case ADMIT_UNKNOWN_CALLER:
                return "unknown_caller";
        case ADMIT_PROVIDER_NOT_GRANTED:
                return "provider_not_granted";
        case ADMIT_PROVIDER_MISMATCH:
                return "provider_mismatch";
        case ADMIT_UNKNOWN_UNIT:
                return "unknown_unit";
        }
        return "unknown";
}

void grants_free(struct grants *g)
{
        if (!g)
                return;
        for (size_t i = 0; i < g->n_callers; i++) {
                free(g->callers[i].name);
                free(g->callers[i].providers);
        }
        free(g->callers);
        free(g);
}

static int cmp_caller(const void *a, const void *b)
{
        return strcmp(((const struct caller *)a)->id, ((const struct caller *)b)->id);
}

static int cmp_id(const void *a, const void *b)
{
        return strcmp((const char *)a, (const char *)b);
}

static char *strip(char *s)
{
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                s[--n] = '\0';
        return s;
}

static int add_provider(struct caller *c, const char *norm)
{
        if (c->n_providers >= GRANTS_MAX_PROVIDERS)
                return -2;
        if (c->n_providers == c->cap_providers) {
                size_t nc = c->cap_providers ? c->cap_providers * 2 : 4;
                void *p = realloc(c->providers, nc * sizeof *c->providers);
                if (!p)
                        return -1;
                c->providers = p;
                c->cap_providers = nc;
        }
        memcpy(c->providers[c->n_providers++], norm, HSA_ID_MAX + 1);
        return 0;
}

struct grants *grants_load(const char *path, char *err, size_t errlen)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                return NULL;
        }
        struct grants *g = calloc(1, sizeof *g);
        if (!g) {
                fclose(f);
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        char line[GRANTS_MAX_LINE + 2];
        unsigned long ln = 0;
        struct caller *cur = NULL;
        bool failed = false;
        while (!failed && fgets(line, sizeof line, f)) {
                ln++;
                size_t n = strlen(line);
                if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
                        snprintf(err, errlen, "%s:%lu: line longer than %d bytes", path, ln,
                                 GRANTS_MAX_LINE);
                        failed = true;
                        break;
                }
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (memchr(line, '\0', n) != NULL || strlen(line) != n) {
                        snprintf(err, errlen, "%s:%lu: NUL byte", path, ln);
                        failed = true;
                        break;
                }
                char *s = strip(line);
                if (*s == '\0' || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        char *close = strchr(s, ']');
                        if (!close || strip(close + 1)[0] != '\0') {
                                snprintf(err, errlen, "%s:%lu: section header must be [HSA-ID]",
                                         path, ln);
                                failed = true;
                                break;
                        }
                        *close = '\0';
                        char id[HSA_ID_MAX + 1];
                        if (!hsa_id_normalise(strip(s + 1), id)) {
                                snprintf(err, errlen, "%s:%lu: caller '%.80s' is not an HSA-id",
                                         path, ln, strip(s + 1));
                                failed = true;
                                break;
                        }
                        for (size_t i = 0; i < g->n_callers; i++) {
                                if (strcmp(g->callers[i].id, id) == 0) {
                                        snprintf(err, errlen,
                                                 "%s:%lu: caller %s appears twice (first at "
                                                 "line %lu)",
                                                 path, ln, id, g->callers[i].line);
                                        failed = true;
                                        break;
                                }
                        }
                        if (failed)
                                break;
                        if (g->n_callers >= GRANTS_MAX_CALLERS) {
                                snprintf(err, errlen, "%s:%lu: more than %d callers", path, ln,
                                         GRANTS_MAX_CALLERS);
                                failed = true;
                                break;
                        }
                        if (g->n_callers == g->cap_callers) {
                                size_t nc = g->cap_callers ? g->cap_callers * 2 : 8;
                                void *p = realloc(g->callers, nc * sizeof *g->callers);
                                if (!p) {
                                        snprintf(err, errlen, "out of memory");
                                        failed = true;
                                        break;
                                }
                                g->callers = p;
                                g->cap_callers = nc;
                        }
                        cur = &g->callers[g->n_callers++];
                        memset(cur, 0, sizeof *cur);
                        memcpy(cur->id, id, sizeof id);
                        cur->line = ln;
                        continue;
                }
                char *eq = strchr(s, '=');
                if (!eq) {
                        snprintf(err, errlen, "%s:%lu: expected 'key = value' or [HSA-ID]", path,
                                 ln);
                        failed = true;
                        break;
                }
                *eq = '\0';
                char *key = strip(s);
                char *val = strip(eq + 1);
                if (!cur) {
                        snprintf(err, errlen, "%s:%lu: '%.40s' before any [caller] section", path,
                                 ln, key);
                        failed = true;
                        break;
                }
                if (strcmp(key, "name") == 0) {
                        if (cur->name) {
                                snprintf(err, errlen, "%s:%lu: name given twice", path, ln);
                                failed = true;
                                break;
                        }
                        cur->name = strdup(val);
                        if (!cur->name) {
                                snprintf(err, errlen, "out of memory");
                                failed = true;
                        }
                        continue;
                }
                if (strcmp(key, "provider") != 0) {
                        snprintf(err, errlen,
                                 "%s:%lu: unknown key '%.40s' (expected provider or name)", path,
                                 ln, key);
                        failed = true;
                        break;
                }
                char *save = NULL;
                bool any = false;
                for (char *tok = strtok_r(val, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                        char id[HSA_ID_MAX + 1];
                        if (!hsa_id_normalise(strip(tok), id)) {
                                snprintf(err, errlen, "%s:%lu: provider '%.80s' is not an HSA-id",
                                         path, ln, strip(tok));
                                failed = true;
                                break;
                        }
                        int r = add_provider(cur, id);
                        if (r < 0) {
                                if (r == -2)
                                        snprintf(err, errlen,
                                                 "%s:%lu: more than %d providers for one caller",
                                                 path, ln, GRANTS_MAX_PROVIDERS);
                                else
                                        snprintf(err, errlen, "out of memory");
                                failed = true;
                                break;
                        }
                        any = true;
                }
                if (!failed && !any) {
                        snprintf(err, errlen, "%s:%lu: provider has no value", path, ln);
                        failed = true;
                }
        }
        if (!failed && ferror(f)) {
                snprintf(err, errlen, "%s: read error", path);
                failed = true;
        }
        fclose(f);
        if (failed) {
                grants_free(g);
                return NULL;
        }
        for (size_t i = 0; i < g->n_callers; i++) {
                struct caller *c = &g->callers[i];
                if (c->n_providers)
                        qsort(c->providers, c->n_providers, sizeof *c->providers, cmp_id);
                /* drop duplicates (the same provider listed twice is harmless) */
                size_t w = 0;
                for (size_t r = 0; r < c->n_providers; r++)
                        if (w == 0 || strcmp(c->providers[w - 1], c->providers[r]) != 0)
                                memmove(c->providers[w++], c->providers[r], HSA_ID_MAX + 1);
                c->n_providers = w;
        }
        if (g->n_callers)
                qsort(g->callers, g->n_callers, sizeof *g->callers, cmp_caller);
        return g;
}

size_t grants_n_callers(const struct grants *g)
{
        return g ? g->n_callers : 0;
}

static const struct caller *find_caller(const struct grants *g, const char *caller_hsa)
{
        struct caller key;
        if (!g || !g->n_callers || !hsa_id_normalise(caller_hsa, key.id))
                return NULL;
        return bsearch(&key, g->callers, g->n_callers, sizeof *g->callers, cmp_caller);
}

enum auth_result grants_check(const struct grants *g, const char *caller_hsa,
                              const char *provider_hsa)
{
        const struct caller *c = find_caller(g, caller_hsa);
        if (!c)
                return AUTH_UNKNOWN_CALLER;
        char p[HSA_ID_MAX + 1];
        if (!c->n_providers || !hsa_id_normalise(provider_hsa, p))
                return AUTH_PROVIDER_NOT_GRANTED;
        if (!bsearch(p, c->providers, c->n_providers, sizeof *c->providers, cmp_id))
                return AUTH_PROVIDER_NOT_GRANTED;
        return AUTH_OK;
}

const char *grants_caller_name(const struct grants *g, const char *caller_hsa)
{
        const struct caller *c = find_caller(g, caller_hsa);
        return c && c->name ? c->name : "";
}

enum admit_result admit_intyg(const struct grants *g, const struct hsa_dir *d,
                              const struct admit_policy *p, const char *caller_hsa,
                              const char *unit_hsa, const char *provider_hsa,
                              struct intyg_tags *tags)
{
        hsa_tag(d, unit_hsa, provider_hsa, tags);
        enum auth_result a = grants_check(g, caller_hsa, provider_hsa);
        if (a == AUTH_UNKNOWN_CALLER)
                return ADMIT_UNKNOWN_CALLER;
        if (a != AUTH_OK)
                return ADMIT_PROVIDER_NOT_GRANTED;
        if (tags->provider_mismatch && grants_check(g, caller_hsa, tags->provider_hsa) != AUTH_OK)
                return ADMIT_PROVIDER_NOT_GRANTED;
        if (tags->provider_mismatch && p && p->provider_mismatch == POLICY_REFUSE)
                return ADMIT_PROVIDER_MISMATCH;
        if (!tags->unit_known && p && p->unknown_unit == POLICY_REFUSE)
                return ADMIT_UNKNOWN_UNIT;
        return ADMIT_OK;
}
