/*
 * hsa.c - HSA directory extract: load (LDIF + mapping CSV + level predicate), precompute every
 * unit's tag, answer hsa_tag() with one hash lookup; reload by build-new-then-swap.
 *
 * Owns: struct hsa_dir (an arena of strings, the unit array, two hash tables, the problems
 * found at load) and struct hsa_holder (the live pointer and its mutex). A loaded directory is
 * never written again: any thread may read it while it holds a reference.
 */
#include "hsa.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

/* ---------------------------------------------------------------- arena */

struct arena_chunk {
        struct arena_chunk *next;
        size_t used, cap;
        max_align_t data[];
};

struct arena {
        struct arena_chunk *head;
        size_t bytes;
};

#define ARENA_CHUNK (256 * 1024)

static void *arena_alloc(struct arena *a, size_t n)
{
        n = (n + 7) & ~(size_t)7;
        struct arena_chunk *c = a->head;
        if (!c || c->cap - c->used < n) {
                size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
                c = malloc(sizeof *c + cap);
                if (!c)
                        return NULL;
                c->next = a->head;
                c->used = 0;
                c->cap = cap;
                a->head = c;
                a->bytes += cap;
        }
        void *p = (char *)c->data + c->used;
        c->used += n;
        return p;
}

static const char *arena_strndup(struct arena *a, const char *s, size_t n)
{
        char *p = arena_alloc(a, n + 1);
        if (!p)
                return NULL;
        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

static void arena_free(struct arena *a)
{
        struct arena_chunk *c = a->head;
        while (c) {
                struct arena_chunk *next = c->next;
                free(c);
                c = next;
        }
        a->head = NULL;
}

/* ---------------------------------------------------------------- hash table */

struct slot {
        const char *key; /* NULL: empty */
        uint32_t hash;
        uint32_t idx;
};

struct table {
        struct slot *slots;
        size_t cap; /* power of two */
        size_t n;
        uint64_t seed;
};

static uint32_t hash_str(uint64_t seed, const char *s)
{
        uint64_t h = 1469598103934665603ULL ^ seed;
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 1099511628211ULL;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return (uint32_t)h;
}

static bool table_init(struct table *t, size_t expect)
{
        size_t cap = 16;
        while (cap < expect * 2)
                cap <<= 1;
        t->slots = calloc(cap, sizeof *t->slots);
        if (!t->slots)
                return false;
        t->cap = cap;
        t->n = 0;
        if (getrandom(&t->seed, sizeof t->seed, GRND_NONBLOCK) != sizeof t->seed)
                t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ULL;
        return true;
}

static void table_free(struct table *t)
{
        free(t->slots);
        t->slots = NULL;
        t->cap = t->n = 0;
}

/* Index stored under key, or -1. */
static long table_get(const struct table *t, const char *key)
{
        if (!t->slots)
                return -1;
        uint32_t h = hash_str(t->seed, key);
        size_t mask = t->cap - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
                const struct slot *s = &t->slots[i];
                if (!s->key)
                        return -1;
                if (s->hash == h && strcmp(s->key, key) == 0)
                        return (long)s->idx;
        }
}

static bool table_grow(struct table *t)
{
        struct table n = {0};
        n.cap = t->cap * 2;
        n.slots = calloc(n.cap, sizeof *n.slots);
        if (!n.slots)
                return false;
        n.seed = t->seed;
        for (size_t i = 0; i < t->cap; i++) {
                struct slot *s = &t->slots[i];
                if (!s->key)
                        continue;
                size_t mask = n.cap - 1;
                size_t j = s->hash & mask;
                while (n.slots[j].key)
                        j = (j + 1) & mask;
                n.slots[j] = *s;
        }
        n.n = t->n;
        free(t->slots);
        *t = n;
        return true;
}

/* Insert key -> idx. Returns 1 inserted, 0 present (*old set), -1 out of memory. */
static int table_put(struct table *t, const char *key, uint32_t idx, long *old)
{
        if ((t->n + 1) * 2 > t->cap && !table_grow(t))
                return -1;
        uint32_t h = hash_str(t->seed, key);
        size_t mask = t->cap - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
                struct slot *s = &t->slots[i];
                if (!s->key) {
                        s->key = key;
                        s->hash = h;
                        s->idx = idx;
                        t->n++;
                        return 1;
                }
                if (s->hash == h && strcmp(s->key, key) == 0) {
                        if (old)
                                *old = (long)s->idx;
                        return 0;
                }
        }
}

/* ---------------------------------------------------------------- small helpers */

const char *tag_resolution_name(enum tag_resolution r)
{
        switch (r) {
        case TAG_MAPPING:
                return "mapping";
        case TAG_LEVEL:
                return "level";
        case TAG_COARSER:
                return "coarser";
        case TAG_UNRESOLVED:
                break;
        }
        return "unresolved";
}

bool hsa_id_normalise(const char *in, char out[HSA_ID_MAX + 1])
{
        size_t n = 0;
        out[0] = '\0';
        if (!in)
                return false;
        for (const char *p = in; *p; p++) {
                char c = *p;
                if (c == ' ' || c == '\t')
                        continue;
                if (c >= 'a' && c <= 'z')
                        c = (char)(c - 'a' + 'A');
                else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
                        return false;
                if (n >= HSA_ID_MAX)
                        return false;
                out[n++] = c;
        }
        out[n] = '\0';
        return n > 0;
}

/* Copy at most cap-1 bytes, always NUL-terminated. */
static void copy_str(char *dst, size_t cap, const char *src)
{
        size_t n = src ? strnlen(src, cap - 1) : 0;
        if (n)
                memcpy(dst, src, n);
        dst[n] = '\0';
}

/* Trim ASCII spaces of a value; returns start, *n updated. */
static const char *trim(const char *s, size_t *n)
{
        while (*n > 0 && (s[0] == ' ' || s[0] == '\t')) {
                s++;
                (*n)--;
        }
        while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
                (*n)--;
        return s;
}

static bool all_digits(const char *s, size_t n, size_t want)
{
        if (n != want)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char)s[i]))
                        return false;
        return true;
}

/* HSA dates: GeneralizedTime "YYYYMMDD[hhmmss[.f]][Z]" or "YYYY-MM-DD". -1 if neither. */
static int32_t parse_hsa_date(const char *s, size_t n)
{
        char ymd[11];
        if (n >= 10 && s[4] == '-' && s[7] == '-' && n == 10) {
                memcpy(ymd, s, 10);
        } else if (n >= 8 && all_digits(s, 8, 8)) {
                for (size_t i = 8; i < n; i++) {
                        char c = s[i];
                        if (!(isdigit((unsigned char)c) || c == 'Z' || c == '.' || c == '+' ||
                              c == '-'))
                                return -1;
                }
                snprintf(ymd, sizeof ymd, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
        } else {
                return -1;
        }
        ymd[10] = '\0';
        return intyg_date_to_day(ymd);
}

/* ---------------------------------------------------------------- level predicate */

static const char *const level_attrs[] = {
    "businessclassificationcode",
    "caretype",
    "hsabusinesstype",
    "management",
    "objectclass",
    "countycode",
    "municipalitycode",
    "hsaidentity",
};
#define N_LEVEL_ATTRS (sizeof level_attrs / sizeof level_attrs[0])

enum lkind { LN_TEST, LN_AND, LN_OR, LN_NOT };

struct lnode {
        enum lkind kind;
        int a, b;   /* operands (node indexes) */
        int attr;   /* LN_TEST: index into level_attrs */
        int v0, nv; /* LN_TEST: values */
};

struct lvalue {
        char text[48];
        size_t len;
        bool prefix; /* trailing '*': prefix match ("" + prefix = present) */
};

struct hsa_level {
        struct lnode nodes[HSA_LEVEL_MAX_NODES];
        int n_nodes;
        int root;
        struct lvalue values[HSA_LEVEL_MAX_VALUES];
        int n_values;
};

struct lparser {
        const char *s;
        size_t pos;
        struct hsa_level *l;
        char *err;
        size_t errlen;
        int depth;
        bool failed;
};

static void lp_fail(struct lparser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lp_fail(struct lparser *p, const char *fmt, ...)
{
        if (p->failed)
                return;
        p->failed = true;
        char msg[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(p->err, p->errlen, "offset %zu: %s", p->pos, msg);
}

static void lp_ws(struct lparser *p)
{
        while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
                p->pos++;
}

static int lp_node(struct lparser *p, enum lkind k, int a, int b)
{
        if (p->l->n_nodes >= HSA_LEVEL_MAX_NODES) {
                lp_fail(p, "more than %d tests and operators", HSA_LEVEL_MAX_NODES);
                return -1;
        }
        struct lnode *n = &p->l->nodes[p->l->n_nodes];
        memset(n, 0, sizeof *n);
        n->kind = k;
        n->a = a;
        n->b = b;
        return p->l->n_nodes++;
}

static bool value_char(char c)
{
        return isalnum((unsigned char)c) || c == '_' || c == '.' || c == ':' || c == '-';
}

static int lp_expr(struct lparser *p);

static int lp_test(struct lparser *p)
{
        lp_ws(p);
        size_t start = p->pos;
        while (isalnum((unsigned char)p->s[p->pos]))
                p->pos++;
        size_t len = p->pos - start;
        if (len == 0) {
                lp_fail(p, "attribute name expected");
                return -1;
        }
        int attr = -1;
        for (size_t i = 0; i < N_LEVEL_ATTRS; i++) {
                if (strlen(level_attrs[i]) == len &&
                    strncasecmp(level_attrs[i], p->s + start, len) == 0)
                        attr = (int)i;
        }
        if (attr < 0) {
                p->pos = start;
                lp_fail(p,
                        "unknown attribute '%.*s' (allowed: businessClassificationCode, careType, "
                        "hsaBusinessType, management, objectClass, countyCode, municipalityCode, "
                        "hsaIdentity)",
                        (int)(len > 40 ? 40 : len), p->s + start);
                return -1;
        }
        lp_ws(p);
        if (p->s[p->pos] != '=') {
                lp_fail(p, "'=' expected after attribute name");
                return -1;
        }
        p->pos++;
        int n = lp_node(p, LN_TEST, -1, -1);
        if (n < 0)
                return -1;
        p->l->nodes[n].attr = attr;
        p->l->nodes[n].v0 = p->l->n_values;
        for (;;) {
                lp_ws(p);
                size_t vs = p->pos;
                while (value_char(p->s[p->pos]))
                        p->pos++;
                size_t vl = p->pos - vs;
                bool prefix = false;
                if (p->s[p->pos] == '*') {
                        prefix = true;
                        p->pos++;
                }
                if (vl == 0 && !prefix) {
                        lp_fail(p, "value expected");
                        return -1;
                }
                if (vl >= sizeof p->l->values[0].text) {
                        p->pos = vs;
                        lp_fail(p, "value longer than %zu characters",
                                sizeof p->l->values[0].text - 1);
                        return -1;
                }
                if (p->l->n_values >= HSA_LEVEL_MAX_VALUES) {
                        p->pos = vs;
                        lp_fail(p, "more than %d values", HSA_LEVEL_MAX_VALUES);
                        return -1;
                }
                struct lvalue *v = &p->l->values[p->l->n_values++];
                memcpy(v->text, p->s + vs, vl);
                v->text[vl] = '\0';
                v->len = vl;
                v->prefix = prefix;
                p->l->nodes[n].nv++;
                lp_ws(p);
                if (p->s[p->pos] != ',')
                        break;
                p->pos++;
        }
        return n;
}

static int lp_unary(struct lparser *p)
{
        lp_ws(p);
        char c = p->s[p->pos];
        if (c != '!' && c != '(')
                return lp_test(p);
        if (++p->depth > HSA_LEVEL_MAX_DEPTH) {
                lp_fail(p, "nested deeper than %d", HSA_LEVEL_MAX_DEPTH);
                return -1;
        }
        p->pos++;
        int r;
        if (c == '!') {
                int a = lp_unary(p);
                r = a < 0 ? -1 : lp_node(p, LN_NOT, a, -1);
        } else {
                r = lp_expr(p);
                lp_ws(p);
                if (r >= 0 && p->s[p->pos] != ')') {
                        lp_fail(p, "')' expected");
                        r = -1;
                } else if (r >= 0) {
                        p->pos++;
                }
        }
        p->depth--;
        return r;
}

static int lp_and(struct lparser *p)
{
        int a = lp_unary(p);
        for (;;) {
                if (a < 0)
                        return -1;
                lp_ws(p);
                if (p->s[p->pos] != '&')
                        return a;
                p->pos++;
                int b = lp_unary(p);
                if (b < 0)
                        return -1;
                a = lp_node(p, LN_AND, a, b);
        }
}

static int lp_expr(struct lparser *p)
{
        int a = lp_and(p);
        for (;;) {
                if (a < 0)
                        return -1;
                lp_ws(p);
                if (p->s[p->pos] != '|')
                        return a;
                p->pos++;
                int b = lp_and(p);
                if (b < 0)
                        return -1;
                a = lp_node(p, LN_OR, a, b);
        }
}

struct hsa_level *hsa_level_parse(const char *expr, char *err, size_t errlen)
{
        if (!expr) {
                snprintf(err, errlen, "offset 0: the level predicate is empty");
                return NULL;
        }
        if (strlen(expr) > HSA_LEVEL_MAX_BYTES) {
                snprintf(err, errlen, "offset %d: the level predicate is longer than %d bytes",
                         HSA_LEVEL_MAX_BYTES, HSA_LEVEL_MAX_BYTES);
                return NULL;
        }
        struct hsa_level *l = calloc(1, sizeof *l);
        if (!l) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        struct lparser p = {.s = expr, .l = l, .err = err, .errlen = errlen};
        lp_ws(&p);
        if (expr[p.pos] == '\0') {
                lp_fail(&p, "the level predicate is empty");
                free(l);
                return NULL;
        }
        l->root = lp_expr(&p);
        if (!p.failed) {
                lp_ws(&p);
                if (expr[p.pos] != '\0')
                        lp_fail(&p, "unexpected '%c' (expected '&', '|', ',' or the end)",
                                expr[p.pos]);
        }
        if (p.failed || l->root < 0) {
                free(l);
                return NULL;
        }
        return l;
}

void hsa_level_free(struct hsa_level *l)
{
        free(l);
}

static bool value_matches(const struct lvalue *v, const char *s, size_t n)
{
        if (v->prefix)
                return n >= v->len && strncasecmp(s, v->text, v->len) == 0;
        return n == v->len && strncasecmp(s, v->text, n) == 0;
}

static bool lnode_eval(const struct hsa_level *l, int i, const struct ldif_entry *e)
{
        const struct lnode *n = &l->nodes[i];
        switch (n->kind) {
        case LN_AND:
                return lnode_eval(l, n->a, e) && lnode_eval(l, n->b, e);
        case LN_OR:
                return lnode_eval(l, n->a, e) || lnode_eval(l, n->b, e);
        case LN_NOT:
                return !lnode_eval(l, n->a, e);
        case LN_TEST:
                break;
        }
        const char *name = level_attrs[n->attr];
        for (size_t k = 0; k < e->n_attrs; k++) {
                const struct ldif_attr *a = &e->attrs[k];
                if (strcmp(a->name, name) != 0)
                        continue;
                size_t vn = a->len;
                const char *v = trim(a->value, &vn);
                for (int j = 0; j < n->nv; j++)
                        if (value_matches(&l->values[n->v0 + j], v, vn))
                                return true;
        }
        return false;
}

bool hsa_level_match(const struct hsa_level *l, const struct ldif_entry *e)
{
        return l && l->root >= 0 && lnode_eval(l, l->root, e);
}

/* ---------------------------------------------------------------- the directory */

enum {
        NF_UNIT = 1,  /* has an hsaIdentity */
        NF_CARE = 2,  /* hsaHealthCareUnit */
        NF_PROV = 4,  /* hsaHealthCareProvider */
        NF_LEVEL = 8, /* matches the level predicate */
        NF_DANGLING = 16,
        NF_ORG = 32, /* first RDN is o= */
};

struct node {
        const char *dn; /* normalised */
        const char *id; /* hsaIdentity as written (trimmed), NULL for non-units */
        const char *key;
        const char *name;
        const char *resp; /* own hsaResponsibleHealthCareProvider */
        const char *bcc;  /* comma-joined businessClassificationCode */
        const char *care_type;
        const char *provider;     /* resolved care provider, NULL if none */
        const char *provider_key; /* the same, normalised */
        const char *followup_id;  /* resolved follow-up unit */
        int32_t parent, member_of, vardenhet, org, parent_unit;
        int32_t lvl_tree, ve_tree; /* tree-only nearest level unit / vårdenhet */
        int32_t start_day, end_day;
        uint32_t line;
        uint8_t flags, depth, resolution;
        char county[3], muni[5];     /* own */
        char county_r[3], muni_r[5]; /* resolved */
};

struct mapping {
        const char *key;    /* normalised unit id */
        const char *target; /* normalised follow-up id */
        uint32_t line;
};

struct member_ref {
        int32_t ve;
        const char *value;
        uint32_t line;
};

struct problem {
        enum hsa_problem_kind kind;
        uint32_t line;
        const char *id;
        const char *detail;
};

struct hsa_dir {
        atomic_uint refs;
        struct arena arena;
        struct node *nodes;
        size_t n_nodes, cap_nodes;
        uint32_t *units; /* node indexes of units, file order */
        size_t n_units;
        struct table by_id;
        struct table by_dn; /* load only */
        struct mapping *maps;
        size_t n_maps;
        struct table map_by_id;
        struct problem *problems;
        size_t n_problems, cap_problems;
        struct member_ref *members; /* load only */
        size_t n_members, cap_members;
        const char *ldif_path;
        const char *map_path;
        bool oom;
};

static bool grow(void **arr, size_t *cap, size_t need, size_t size)
{
        if (need <= *cap)
                return true;
        size_t nc = *cap ? *cap * 2 : 64;
        while (nc < need)
                nc *= 2;
        void *p = realloc(*arr, nc * size);
        if (!p)
                return false;
        *arr = p;
        *cap = nc;
        return true;
}

static void add_problem(struct hsa_dir *d, enum hsa_problem_kind k, unsigned long line,
                        const char *id, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add_problem(struct hsa_dir *d, enum hsa_problem_kind k, unsigned long line,
                        const char *id, const char *fmt, ...)
{
        char msg[300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (!grow((void **)&d->problems, &d->cap_problems, d->n_problems + 1,
                  sizeof *d->problems)) {
                d->oom = true;
                return;
        }
        struct problem *p = &d->problems[d->n_problems];
        p->kind = k;
        p->line = (uint32_t)line;
        p->id = arena_strndup(&d->arena, id ? id : "", id ? strlen(id) : 0);
        p->detail = arena_strndup(&d->arena, msg, strlen(msg));
        if (!p->id || !p->detail) {
                d->oom = true;
                return;
        }
        d->n_problems++;
}

static void report_error(struct hsa_load_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report_error(struct hsa_load_report *rep, const char *fmt, ...)
{
        if (rep->n_errors < HSA_REPORT_ERRORS) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(rep->first_errors[rep->n_errors], sizeof rep->first_errors[0], fmt, ap);
                va_end(ap);
        }
        rep->n_errors++;
}

/* A broken entry: error in the report and a problem, entry skipped. */
static void broken(struct hsa_dir *d, struct hsa_load_report *rep, enum hsa_problem_kind k,
                   unsigned long line, const char *id, const char *why)
{
        report_error(rep, "%s:%lu: %s", d->ldif_path, line, why);
        add_problem(d, k, line, id, "%s", why);
        rep->skipped++;
}

/* Join every value of attribute `name` with ',' into the arena; "" if none. */
static const char *join_values(struct hsa_dir *d, const struct ldif_entry *e, const char *name)
{
        char buf[512];
        size_t n = 0;
        for (size_t i = 0; i < e->n_attrs; i++) {
                const struct ldif_attr *a = &e->attrs[i];
                if (strcmp(a->name, name) != 0)
                        continue;
                size_t vn = a->len;
                const char *v = trim(a->value, &vn);
                if (vn == 0 || memchr(v, '\0', vn) || memchr(v, ',', vn))
                        continue;
                if (n + vn + 2 > sizeof buf)
                        break;
                if (n)
                        buf[n++] = ',';
                memcpy(buf + n, v, vn);
                n += vn;
        }
        if (n == 0)
                return "";
        return arena_strndup(&d->arena, buf, n);
}

static bool printable(const char *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
                        return false;
        return true;
}

static void process_entry(struct hsa_dir *d, const struct hsa_level *level,
                          const struct ldif_entry *e, struct hsa_load_report *rep)
{
        char dn[LDIF_MAX_DN + 1];
        char why[240];
        int depth = ldif_dn_normalise(e->dn, dn, sizeof dn, why, sizeof why);
        if (depth < 0) {
                char msg[300];
                snprintf(msg, sizeof msg, "bad DN: %s", why);
                broken(d, rep, HSA_PROBLEM_BROKEN_ENTRY, e->line, "", msg);
                return;
        }
        if (depth == 0) {
                broken(d, rep, HSA_PROBLEM_BROKEN_ENTRY, e->line, "", "empty DN");
                return;
        }
        struct node nd;
        memset(&nd, 0, sizeof nd);
        nd.parent = nd.member_of = nd.vardenhet = nd.org = nd.parent_unit = -1;
        nd.lvl_tree = nd.ve_tree = -1;
        nd.start_day = nd.end_day = -1;
        nd.line = (uint32_t)e->line;
        nd.depth = (uint8_t)depth;

        char rdn_type[16], rdn_val[256];
        if (!ldif_dn_first_rdn(dn, rdn_type, sizeof rdn_type, rdn_val, sizeof rdn_val))
                rdn_type[0] = rdn_val[0] = '\0';
        if (strcmp(rdn_type, "o") == 0)
                nd.flags |= NF_ORG;

        const char *id = NULL;
        size_t id_len = 0;
        char key[HSA_ID_MAX + 1];
        const char *name = NULL;
        size_t name_len = 0;
        for (size_t i = 0; i < e->n_attrs; i++) {
                const struct ldif_attr *a = &e->attrs[i];
                size_t vn = a->len;
                const char *v = trim(a->value, &vn);
                bool ok = vn > 0 && !memchr(v, '\0', vn) && printable(v, vn);
                if (strcmp(a->name, "hsaidentity") == 0) {
                        char tmp[HSA_ID_MAX + 2];
                        if (id) {
                                broken(d, rep, HSA_PROBLEM_BROKEN_ENTRY, a->line, "",
                                       "more than one hsaIdentity");
                                return;
                        }
                        snprintf(tmp, sizeof tmp, "%.*s",
                                 (int)(vn > HSA_ID_MAX ? HSA_ID_MAX + 1 : vn), v);
                        if (!ok || vn > HSA_ID_MAX || !hsa_id_normalise(tmp, key)) {
                                broken(d, rep, HSA_PROBLEM_BROKEN_ENTRY, a->line, "",
                                       "bad hsaIdentity (want 1-64 of A-Z, 0-9, '-')");
                                return;
                        }
                        id = v;
                        id_len = vn;
                } else if (strcmp(a->name, "objectclass") == 0) {
                        if (vn == 17 && strncasecmp(v, "hsaHealthCareUnit", 17) == 0)
                                nd.flags |= NF_CARE;
                        else if (vn == 21 && strncasecmp(v, "hsaHealthCareProvider", 21) == 0)
                                nd.flags |= NF_PROV;
                } else if (strcmp(a->name, rdn_type) == 0 && !name && ok) {
                        name = v;
                        name_len = vn;
                }
        }
        /* Optional attributes: bad values are reported and ignored, the entry is kept. */
        for (size_t i = 0; i < e->n_attrs; i++) {
                const struct ldif_attr *a = &e->attrs[i];
                size_t vn = a->len;
                const char *v = trim(a->value, &vn);
                bool ok = vn > 0 && !memchr(v, '\0', vn) && printable(v, vn);
                char idbuf[HSA_ID_MAX + 1];
                snprintf(idbuf, sizeof idbuf, "%.*s", (int)id_len, id ? id : "");
                if (strcmp(a->name, "countycode") == 0) {
                        if (!ok || !all_digits(v, vn, 2) || nd.county[0])
                                add_problem(d, HSA_PROBLEM_BAD_VALUE, a->line, idbuf,
                                            "countyCode '%.*s' ignored (%s)",
                                            (int)(vn > 20 ? 20 : vn), ok ? v : "?",
                                            nd.county[0] ? "second value" : "want 2 digits");
                        else
                                memcpy(nd.county, v, 2);
                } else if (strcmp(a->name, "municipalitycode") == 0) {
                        if (!ok || !all_digits(v, vn, 4) || nd.muni[0])
                                add_problem(d, HSA_PROBLEM_BAD_VALUE, a->line, idbuf,
                                            "municipalityCode '%.*s' ignored (%s)",
                                            (int)(vn > 20 ? 20 : vn), ok ? v : "?",
                                            nd.muni[0] ? "second value" : "want 4 digits");
                        else
                                memcpy(nd.muni, v, 4);
                } else if (strcmp(a->name, "startdate") == 0 || strcmp(a->name, "enddate") == 0) {
                        int32_t day = ok ? parse_hsa_date(v, vn) : -1;
                        if (day < 0)
                                add_problem(d, HSA_PROBLEM_BAD_VALUE, a->line, idbuf,
                                            "%s '%.*s' ignored (not a date)",
                                            a->name[0] == 's' ? "startDate" : "endDate",
                                            (int)(vn > 30 ? 30 : vn), ok ? v : "?");
                        else if (a->name[0] == 's')
                                nd.start_day = day;
                        else
                                nd.end_day = day;
                } else if (strcmp(a->name, "hsaresponsiblehealthcareprovider") == 0) {
                        char k2[HSA_ID_MAX + 1], tmp[HSA_ID_MAX + 2];
                        snprintf(tmp, sizeof tmp, "%.*s",
                                 (int)(vn > HSA_ID_MAX ? HSA_ID_MAX + 1 : vn), v);
                        if (!ok || nd.resp || vn > HSA_ID_MAX || !hsa_id_normalise(tmp, k2)) {
                                add_problem(d, HSA_PROBLEM_BAD_VALUE, a->line, idbuf,
                                            "hsaResponsibleHealthCareProvider '%.*s' ignored (%s)",
                                            (int)(vn > 70 ? 70 : vn), ok ? v : "?",
                                            nd.resp ? "second value" : "not an HSA-id");
                        } else {
                                nd.resp = arena_strndup(&d->arena, v, vn);
                        }
                } else if (strcmp(a->name, "hsahealthcareunitmember") == 0) {
                        if (!ok || vn > LDIF_MAX_DN) {
                                add_problem(d, HSA_PROBLEM_BAD_VALUE, a->line, idbuf,
                                            "hsaHealthCareUnitMember value ignored");
                                continue;
                        }
                        if (!grow((void **)&d->members, &d->cap_members, d->n_members + 1,
                                  sizeof *d->members)) {
                                d->oom = true;
                                return;
                        }
                        struct member_ref *m = &d->members[d->n_members++];
                        m->ve = (int32_t)d->n_nodes; /* this node's index, if kept */
                        m->value = arena_strndup(&d->arena, v, vn);
                        m->line = (uint32_t)a->line;
                }
        }
        if (id && level && hsa_level_match(level, e))
                nd.flags |= NF_LEVEL;
        nd.bcc = join_values(d, e, "businessclassificationcode");
        nd.care_type = join_values(d, e, "caretype");
        nd.dn = arena_strndup(&d->arena, dn, strlen(dn));
        if (name)
                nd.name = arena_strndup(&d->arena, name, name_len);
        else
                nd.name = arena_strndup(&d->arena, rdn_val, strlen(rdn_val));
        if (id) {
                nd.flags |= NF_UNIT;
                nd.id = arena_strndup(&d->arena, id, id_len);
                nd.key = arena_strndup(&d->arena, key, strlen(key));
        }
        if (!nd.dn || !nd.name || !nd.bcc || !nd.care_type || (id && (!nd.id || !nd.key))) {
                d->oom = true;
                return;
        }
        if (d->n_nodes >= HSA_MAX_ENTRIES) {
                d->oom = true; /* reported by the caller as "too many entries" */
                return;
        }
        /* Drop member refs recorded for this entry if it is rejected below. */
        size_t members_before = d->n_members;
        while (members_before > 0 && d->members[members_before - 1].ve == (int32_t)d->n_nodes)
                members_before--;
        long old = id ? table_get(&d->by_id, nd.key) : -1;
        if (old >= 0) {
                char msg[200];
                snprintf(msg, sizeof msg, "duplicate hsaIdentity (first at line %u)",
                         (unsigned)d->nodes[old].line);
                d->n_members = members_before;
                broken(d, rep, HSA_PROBLEM_DUPLICATE_ID, e->line, nd.id, msg);
                return;
        }
        int r = table_put(&d->by_dn, nd.dn, (uint32_t)d->n_nodes, &old);
        if (r < 0) {
                d->oom = true;
                return;
        }
        if (r == 0) {
                char msg[200];
                snprintf(msg, sizeof msg, "duplicate DN (first at line %u)",
                         (unsigned)d->nodes[old].line);
                d->n_members = members_before;
                broken(d, rep, HSA_PROBLEM_DUPLICATE_DN, e->line, nd.id ? nd.id : "", msg);
                return;
        }
        if (id && table_put(&d->by_id, nd.key, (uint32_t)d->n_nodes, NULL) < 0) {
                d->oom = true;
                return;
        }
        if (!grow((void **)&d->nodes, &d->cap_nodes, d->n_nodes + 1, sizeof *d->nodes)) {
                d->oom = true;
                return;
        }
        d->nodes[d->n_nodes++] = nd;
}

static int load_ldif(struct hsa_dir *d, const struct hsa_level *level, const char *path,
                     struct hsa_load_report *rep, char *err, size_t errlen)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                return -1;
        }
        struct ldif_reader *r = ldif_reader_new(f);
        if (!r) {
                fclose(f);
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        int rc = 0;
        for (;;) {
                struct ldif_entry e;
                char why[300];
                enum ldif_status st = ldif_next(r, &e, why, sizeof why);
                if (st == LDIF_EOF)
                        break;
                if (st == LDIF_IO) {
                        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
                        rc = -1;
                        break;
                }
                rep->entries++;
                if (st == LDIF_BAD_ENTRY) {
                        /* why is "line N: reason"; the problem keeps the reason and the line */
                        const char *reason = strchr(why, ':');
                        reason = reason ? reason + 2 : why;
                        broken(d, rep, HSA_PROBLEM_BROKEN_ENTRY, ldif_reader_error_line(r), "",
                               reason);
                        continue;
                }
                if (rep->entries > HSA_MAX_ENTRIES) {
                        snprintf(err, errlen, "%s: more than %d entries", path, HSA_MAX_ENTRIES);
                        rc = -1;
                        break;
                }
                process_entry(d, level, &e, rep);
                if (d->oom) {
                        snprintf(err, errlen, "%s: out of memory at line %lu", path, e.line);
                        rc = -1;
                        break;
                }
        }
        ldif_reader_free(r);
        fclose(f);
        return rc;
}

/* Split one CSV field (optionally "quoted"), trimmed. Returns the next position or NULL. */
static const char *csv_field(const char *p, char *out, size_t outcap, bool *too_long)
{
        size_t n = 0;
        while (*p == ' ' || *p == '\t')
                p++;
        bool quoted = *p == '"';
        if (quoted)
                p++;
        while (*p && (quoted ? *p != '"' : *p != ',')) {
                if (n + 1 < outcap)
                        out[n++] = *p;
                else
                        *too_long = true;
                p++;
        }
        if (quoted && *p == '"')
                p++;
        while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
                n--;
        out[n] = '\0';
        while (*p == ' ' || *p == '\t')
                p++;
        if (*p == ',')
                return p + 1;
        return *p == '\0' ? NULL : p;
}

static int load_mapping(struct hsa_dir *d, const char *path, struct hsa_load_report *rep, char *err,
                        size_t errlen)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                return -1;
        }
        char line[HSA_MAPPING_MAX_LINE + 2];
        unsigned long ln = 0;
        bool first = true;
        size_t cap = 0;
        int rc = 0;
        if (!table_init(&d->map_by_id, 64)) {
                fclose(f);
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        while (fgets(line, sizeof line, f)) {
                ln++;
                size_t n = strlen(line);
                if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
                        snprintf(err, errlen, "%s:%lu: line longer than %d bytes", path, ln,
                                 HSA_MAPPING_MAX_LINE);
                        rc = -1;
                        break;
                }
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                const char *p = line;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p == '\0' || *p == '#')
                        continue;
                char f1[128], f2[128];
                bool too_long = false;
                const char *rest = csv_field(p, f1, sizeof f1, &too_long);
                f2[0] = '\0';
                if (rest)
                        csv_field(rest, f2, sizeof f2, &too_long);
                if (first) {
                        first = false;
                        if (strncasecmp(f1, "unit", 4) == 0)
                                continue; /* header */
                }
                char k1[HSA_ID_MAX + 1], k2[HSA_ID_MAX + 1];
                if (too_long || !hsa_id_normalise(f1, k1)) {
                        snprintf(err, errlen, "%s:%lu: first column is not an HSA-id", path, ln);
                        rc = -1;
                        break;
                }
                if (!rest || !hsa_id_normalise(f2, k2)) {
                        snprintf(err, errlen,
                                 "%s:%lu: second column (follow-up unit) is not an HSA-id", path,
                                 ln);
                        rc = -1;
                        break;
                }
                long old = table_get(&d->map_by_id, k1);
                if (old >= 0) {
                        if (strcmp(d->maps[old].target, k2) != 0) {
                                snprintf(err, errlen,
                                         "%s:%lu: %s is mapped twice, to different units (first "
                                         "at line %u)",
                                         path, ln, k1, (unsigned)d->maps[old].line);
                                rc = -1;
                                break;
                        }
                        continue;
                }
                if (!grow((void **)&d->maps, &cap, d->n_maps + 1, sizeof *d->maps)) {
                        snprintf(err, errlen, "out of memory");
                        rc = -1;
                        break;
                }
                struct mapping *m = &d->maps[d->n_maps];
                m->key = arena_strndup(&d->arena, k1, strlen(k1));
                m->target = arena_strndup(&d->arena, k2, strlen(k2));
                m->line = (uint32_t)ln;
                if (!m->key || !m->target ||
                    table_put(&d->map_by_id, m->key, (uint32_t)d->n_maps, NULL) < 0) {
                        snprintf(err, errlen, "out of memory");
                        rc = -1;
                        break;
                }
                d->n_maps++;
        }
        if (rc == 0 && ferror(f)) {
                snprintf(err, errlen, "%s: read error", path);
                rc = -1;
        }
        fclose(f);
        rep->mappings = d->n_maps;
        return rc;
}

/* Resolve a member value (an HSA-id or a DN) to a node, or -1. */
static long find_member(const struct hsa_dir *d, const char *value)
{
        if (strchr(value, '=')) {
                char dn[LDIF_MAX_DN + 1], why[160];
                if (ldif_dn_normalise(value, dn, sizeof dn, why, sizeof why) <= 0)
                        return -1;
                return table_get(&d->by_dn, dn);
        }
        char key[HSA_ID_MAX + 1];
        if (!hsa_id_normalise(value, key))
                return -1;
        return table_get(&d->by_id, key);
}

static int resolve_all(struct hsa_dir *d, char *err, size_t errlen)
{
        size_t n = d->n_nodes;
        /* parents */
        for (size_t i = 0; i < n; i++) {
                struct node *nd = &d->nodes[i];
                const char *pdn = ldif_dn_parent(nd->dn);
                if (*pdn == '\0')
                        continue;
                long p = table_get(&d->by_dn, pdn);
                if (p < 0 || (size_t)p == i) {
                        nd->flags |= NF_DANGLING;
                        add_problem(d, HSA_PROBLEM_DANGLING_PARENT, nd->line, nd->id,
                                    "parent entry '%.200s' is not in the extract", pdn);
                } else {
                        nd->parent = (int32_t)p;
                }
        }
        /* hsaHealthCareUnitMember */
        for (size_t k = 0; k < d->n_members; k++) {
                struct member_ref *m = &d->members[k];
                if (m->ve < 0 || (size_t)m->ve >= n)
                        continue;
                long t = find_member(d, m->value);
                if (t < 0) {
                        add_problem(d, HSA_PROBLEM_MEMBER_UNKNOWN, m->line, d->nodes[m->ve].id,
                                    "member '%.120s' is not in the extract", m->value);
                        continue;
                }
                if (t == m->ve)
                        continue;
                struct node *mn = &d->nodes[t];
                if (mn->member_of < 0) {
                        mn->member_of = m->ve;
                } else if (mn->member_of != m->ve) {
                        add_problem(d, HSA_PROBLEM_MEMBER_CONFLICT, m->line, mn->id,
                                    "listed as member of %s and of %s; the first is used",
                                    d->nodes[mn->member_of].id ? d->nodes[mn->member_of].id : "?",
                                    d->nodes[m->ve].id ? d->nodes[m->ve].id : "?");
                }
        }
        /* nodes in DN-depth order, parents before children */
        uint32_t *order = malloc((n ? n : 1) * sizeof *order);
        size_t counts[LDIF_MAX_DN_DEPTH + 2] = {0};
        if (!order) {
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        for (size_t i = 0; i < n; i++)
                counts[d->nodes[i].depth + 1]++;
        for (size_t k = 1; k < LDIF_MAX_DN_DEPTH + 2; k++)
                counts[k] += counts[k - 1];
        for (size_t i = 0; i < n; i++)
                order[counts[d->nodes[i].depth]++] = (uint32_t)i;
        /* tree pass */
        for (size_t k = 0; k < n; k++) {
                struct node *nd = &d->nodes[order[k]];
                const struct node *pa = nd->parent >= 0 ? &d->nodes[nd->parent] : NULL;
                int32_t self = (int32_t)order[k];
                bool unit = nd->flags & NF_UNIT;
                nd->lvl_tree = (unit && (nd->flags & NF_LEVEL)) ? self : pa ? pa->lvl_tree : -1;
                nd->ve_tree = (unit && (nd->flags & NF_CARE)) ? self : pa ? pa->ve_tree : -1;
                nd->org = (nd->flags & NF_ORG) ? self : pa ? pa->org : -1;
                nd->parent_unit = pa ? ((pa->flags & NF_UNIT) ? nd->parent : pa->parent_unit) : -1;
                if (nd->resp)
                        nd->provider = nd->resp;
                else if (unit && (nd->flags & NF_PROV))
                        nd->provider = nd->id;
                else
                        nd->provider = pa ? pa->provider : NULL;
                static const char none[5];
                memcpy(nd->county_r, nd->county[0] ? nd->county : pa ? pa->county_r : none, 3);
                memcpy(nd->muni_r, nd->muni[0] ? nd->muni : pa ? pa->muni_r : none, 5);
        }
        free(order);
        /* unit pass: vårdenhet via membership, provider/county via it, then the rule */
        for (size_t i = 0; i < n; i++) {
                struct node *nd = &d->nodes[i];
                if (!(nd->flags & NF_UNIT))
                        continue;
                const struct node *mo = nd->member_of >= 0 ? &d->nodes[nd->member_of] : NULL;
                if (nd->flags & NF_CARE)
                        nd->vardenhet = (int32_t)i;
                else if (mo)
                        nd->vardenhet = nd->member_of;
                else
                        nd->vardenhet = nd->ve_tree;
                bool own_prov = nd->resp || (nd->flags & NF_PROV);
                if (!own_prov && mo && mo->provider)
                        nd->provider = mo->provider;
                if (nd->provider) {
                        char pk[HSA_ID_MAX + 1];
                        if (!hsa_id_normalise(nd->provider, pk))
                                pk[0] = '\0'; /* validated at load; cannot happen */
                        nd->provider_key = arena_strndup(&d->arena, pk, strlen(pk));
                        if (!nd->provider_key)
                                d->oom = true;
                }
                if (!nd->county[0] && mo && mo->county_r[0])
                        memcpy(nd->county_r, mo->county_r, 3);
                if (!nd->muni[0] && mo && mo->muni_r[0])
                        memcpy(nd->muni_r, mo->muni_r, 5);
                long m = table_get(&d->map_by_id, nd->key);
                if (m >= 0) {
                        nd->resolution = TAG_MAPPING;
                        long t = table_get(&d->by_id, d->maps[m].target);
                        nd->followup_id = t >= 0 ? d->nodes[t].id : d->maps[m].target;
                } else if (nd->lvl_tree >= 0) {
                        nd->resolution = TAG_LEVEL;
                        nd->followup_id = d->nodes[nd->lvl_tree].id;
                } else if (nd->vardenhet >= 0) {
                        nd->resolution = TAG_COARSER;
                        nd->followup_id = d->nodes[nd->vardenhet].id;
                } else {
                        nd->resolution = TAG_UNRESOLVED;
                        nd->followup_id = nd->id;
                }
                if (!nd->county_r[0])
                        add_problem(d, HSA_PROBLEM_NO_COUNTY, nd->line, nd->id,
                                    "no countyCode on the unit or above it");
                if ((nd->flags & NF_CARE) && !nd->resp && !(nd->flags & NF_PROV))
                        add_problem(d, HSA_PROBLEM_CARE_UNIT_NO_PROVIDER, nd->line, nd->id,
                                    "vårdenhet without hsaResponsibleHealthCareProvider%s",
                                    nd->provider ? " (the tree gives one)" : "");
                if (!nd->provider)
                        add_problem(d, HSA_PROBLEM_NO_PROVIDER, nd->line, nd->id,
                                    "no care provider resolves for this unit");
        }
        for (size_t k = 0; k < d->n_maps; k++) {
                const struct mapping *m = &d->maps[k];
                if (table_get(&d->by_id, m->key) < 0)
                        add_problem(d, HSA_PROBLEM_MAPPING_UNIT_UNKNOWN, m->line, m->key,
                                    "%s: mapped unit is not in the extract",
                                    d->map_path ? d->map_path : "mapping");
                if (table_get(&d->by_id, m->target) < 0)
                        add_problem(d, HSA_PROBLEM_MAPPING_TARGET_UNKNOWN, m->line, m->key,
                                    "%s: follow-up unit %s is not in the extract",
                                    d->map_path ? d->map_path : "mapping", m->target);
        }
        /* the unit index, file order */
        d->units = malloc((n ? n : 1) * sizeof *d->units);
        if (!d->units) {
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        for (size_t i = 0; i < n; i++)
                if (d->nodes[i].flags & NF_UNIT)
                        d->units[d->n_units++] = (uint32_t)i;
        if (d->oom) {
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        return 0;
}

static void dir_destroy(struct hsa_dir *d)
{
        table_free(&d->by_id);
        table_free(&d->by_dn);
        table_free(&d->map_by_id);
        free(d->nodes);
        free(d->units);
        free(d->maps);
        free(d->problems);
        free(d->members);
        arena_free(&d->arena);
        free(d);
}

struct hsa_dir *hsa_dir_load(const struct hsa_opts *o, struct hsa_load_report *rep, char *err,
                             size_t errlen)
{
        struct hsa_load_report dummy;
        if (!rep)
                rep = &dummy;
        memset(rep, 0, sizeof *rep);
        if (!o || !o->ldif || !*o->ldif) {
                snprintf(err, errlen, "no HSA extract (hsa.ldif) configured");
                return NULL;
        }
        char perr[200];
        struct hsa_level *level = hsa_level_parse(o->level, perr, sizeof perr);
        if (!level) {
                snprintf(err, errlen, "hsa.level: %s", perr);
                return NULL;
        }
        struct hsa_dir *d = calloc(1, sizeof *d);
        if (!d) {
                hsa_level_free(level);
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        atomic_init(&d->refs, 1);
        d->ldif_path = arena_strndup(&d->arena, o->ldif, strlen(o->ldif));
        if (o->mapping && *o->mapping)
                d->map_path = arena_strndup(&d->arena, o->mapping, strlen(o->mapping));
        if (!d->ldif_path || !table_init(&d->by_id, 1024) || !table_init(&d->by_dn, 1024)) {
                snprintf(err, errlen, "out of memory");
                goto fail;
        }
        if (d->map_path && load_mapping(d, d->map_path, rep, err, errlen) < 0)
                goto fail;
        if (load_ldif(d, level, d->ldif_path, rep, err, errlen) < 0)
                goto fail;
        if (resolve_all(d, err, errlen) < 0)
                goto fail;
        table_free(&d->by_dn);
        free(d->members);
        d->members = NULL;
        d->n_members = d->cap_members = 0;
        rep->units = d->n_units;
        rep->problems = d->n_problems;
        hsa_level_free(level);
        return d;
fail:
        hsa_level_free(level);
        dir_destroy(d);
        return NULL;
}

const struct hsa_dir *hsa_dir_ref(const struct hsa_dir *d)
{
        if (d)
                atomic_fetch_add(&((struct hsa_dir *)d)->refs, 1);
        return d;
}

void hsa_dir_free(const struct hsa_dir *d)
{
        if (!d)
                return;
        struct hsa_dir *m = (struct hsa_dir *)d;
        if (atomic_fetch_sub(&m->refs, 1) == 1)
                dir_destroy(m);
}

static long find_unit(const struct hsa_dir *d, const char *hsa_id)
{
        char key[HSA_ID_MAX + 1];
        if (!d || !hsa_id_normalise(hsa_id, key))
                return -1;
        return table_get(&d->by_id, key);
}

void hsa_tag(const struct hsa_dir *d, const char *unit_hsa, const char *intyg_provider_hsa,
             struct intyg_tags *out)
{
        memset(out, 0, sizeof *out);
        copy_str(out->unit_hsa, sizeof out->unit_hsa, unit_hsa);
        copy_str(out->followup_hsa, sizeof out->followup_hsa, unit_hsa);
        out->resolution = TAG_UNRESOLVED;
        char key[HSA_ID_MAX + 1];
        const struct node *src = NULL; /* where provider and geography come from */
        if (d && hsa_id_normalise(unit_hsa, key)) {
                long i = table_get(&d->by_id, key);
                if (i >= 0) {
                        src = &d->nodes[i];
                        out->unit_known = true;
                        out->resolution = (enum tag_resolution)src->resolution;
                        copy_str(out->followup_hsa, sizeof out->followup_hsa, src->followup_id);
                } else {
                        long m = table_get(&d->map_by_id, key);
                        if (m >= 0) {
                                out->resolution = TAG_MAPPING;
                                long t = table_get(&d->by_id, d->maps[m].target);
                                if (t >= 0) {
                                        src = &d->nodes[t];
                                        copy_str(out->followup_hsa, sizeof out->followup_hsa,
                                                 src->id);
                                } else {
                                        copy_str(out->followup_hsa, sizeof out->followup_hsa,
                                                 d->maps[m].target);
                                }
                        }
                }
        }
        if (src) {
                _Static_assert(sizeof out->county >= sizeof src->county_r, "county");
                _Static_assert(sizeof out->municipality >= sizeof src->muni_r, "municipality");
                memcpy(out->county, src->county_r, sizeof src->county_r);
                memcpy(out->municipality, src->muni_r, sizeof src->muni_r);
        }
        if (src && src->provider) {
                copy_str(out->provider_hsa, sizeof out->provider_hsa, src->provider);
                char a[HSA_ID_MAX + 1];
                if (intyg_provider_hsa && *intyg_provider_hsa)
                        out->provider_mismatch = !hsa_id_normalise(intyg_provider_hsa, a) ||
                                                 strcmp(a, src->provider_key) != 0;
        } else {
                copy_str(out->provider_hsa, sizeof out->provider_hsa, intyg_provider_hsa);
        }
}

/* ---------------------------------------------------------------- inspection */

static void fill_info(const struct hsa_dir *d, const struct node *nd, struct hsa_unit_info *out)
{
        memset(out, 0, sizeof *out);
        out->hsa_id = nd->id ? nd->id : "";
        out->name = nd->name ? nd->name : "";
        out->dn = nd->dn;
        out->line = nd->line;
        out->is_care_unit = nd->flags & NF_CARE;
        out->is_provider = nd->flags & NF_PROV;
        out->at_level = nd->flags & NF_LEVEL;
        out->dangling = nd->flags & NF_DANGLING;
        out->business_classification = nd->bcc ? nd->bcc : "";
        out->care_type = nd->care_type ? nd->care_type : "";
        out->responsible_provider = nd->resp ? nd->resp : "";
        out->parent_hsa = nd->parent_unit >= 0 ? d->nodes[nd->parent_unit].id : "";
        out->vardenhet_hsa = nd->vardenhet >= 0 ? d->nodes[nd->vardenhet].id : "";
        out->organisation = nd->org >= 0 ? d->nodes[nd->org].name : "";
        out->organisation_hsa = nd->org >= 0 && d->nodes[nd->org].id ? d->nodes[nd->org].id : "";
        if (nd->start_day >= 0)
                intyg_day_to_date(nd->start_day, out->start_date);
        if (nd->end_day >= 0)
                intyg_day_to_date(nd->end_day, out->end_date);
        hsa_tag(d, nd->id, nd->provider, &out->tags);
}

size_t hsa_dir_n_units(const struct hsa_dir *d)
{
        return d ? d->n_units : 0;
}

bool hsa_dir_unit(const struct hsa_dir *d, size_t i, struct hsa_unit_info *out)
{
        if (!d || i >= d->n_units)
                return false;
        fill_info(d, &d->nodes[d->units[i]], out);
        return true;
}

bool hsa_dir_find(const struct hsa_dir *d, const char *hsa_id, struct hsa_unit_info *out)
{
        long i = find_unit(d, hsa_id);
        if (i < 0)
                return false;
        fill_info(d, &d->nodes[i], out);
        return true;
}

const char *hsa_dir_mapping(const struct hsa_dir *d, const char *hsa_id)
{
        char key[HSA_ID_MAX + 1];
        if (!d || !hsa_id_normalise(hsa_id, key))
                return NULL;
        long m = table_get(&d->map_by_id, key);
        return m >= 0 ? d->maps[m].target : NULL;
}

const char *hsa_problem_name(enum hsa_problem_kind k)
{
        static const char *const names[HSA_PROBLEM_KINDS] = {
            [HSA_PROBLEM_BROKEN_ENTRY] = "broken_entry",
            [HSA_PROBLEM_DUPLICATE_ID] = "duplicate_id",
            [HSA_PROBLEM_DUPLICATE_DN] = "duplicate_dn",
            [HSA_PROBLEM_DANGLING_PARENT] = "dangling_parent",
            [HSA_PROBLEM_NO_COUNTY] = "no_county",
            [HSA_PROBLEM_CARE_UNIT_NO_PROVIDER] = "care_unit_without_provider",
            [HSA_PROBLEM_NO_PROVIDER] = "no_provider",
            [HSA_PROBLEM_BAD_VALUE] = "bad_value",
            [HSA_PROBLEM_MEMBER_UNKNOWN] = "member_unknown",
            [HSA_PROBLEM_MEMBER_CONFLICT] = "member_conflict",
            [HSA_PROBLEM_MAPPING_UNIT_UNKNOWN] = "mapping_unit_unknown",
            [HSA_PROBLEM_MAPPING_TARGET_UNKNOWN] = "mapping_target_unknown",
        };
        return (unsigned)k < HSA_PROBLEM_KINDS ? names[k] : "unknown";
}

size_t hsa_dir_problems(const struct hsa_dir *d, void (*cb)(void *ctx, const struct hsa_problem *p),
                        void *ctx)
{
        if (!d)
                return 0;
        for (size_t i = 0; cb && i < d->n_problems; i++) {
                const struct problem *q = &d->problems[i];
                struct hsa_problem p = {q->kind, q->line, q->id, q->detail};
                cb(ctx, &p);
        }
        return d->n_problems;
}

/* ---------------------------------------------------------------- holder */

struct hsa_holder {
        pthread_mutex_t lock;
        struct hsa_dir *cur;
};

struct hsa_holder *hsa_holder_new(struct hsa_dir *d_take)
{
        struct hsa_holder *h = calloc(1, sizeof *h);
        if (!h) {
                hsa_dir_free(d_take);
                return NULL;
        }
        pthread_mutex_init(&h->lock, NULL);
        h->cur = d_take;
        return h;
}

void hsa_holder_free(struct hsa_holder *h)
{
        if (!h)
                return;
        hsa_dir_free(h->cur);
        pthread_mutex_destroy(&h->lock);
        free(h);
}

const struct hsa_dir *hsa_holder_acquire(struct hsa_holder *h)
{
        pthread_mutex_lock(&h->lock);
        const struct hsa_dir *d = hsa_dir_ref(h->cur);
        pthread_mutex_unlock(&h->lock);
        return d;
}

int hsa_holder_reload(struct hsa_holder *h, const struct hsa_opts *o, struct hsa_load_report *rep,
                      char *err, size_t errlen)
{
        struct hsa_load_report dummy;
        if (!rep)
                rep = &dummy;
        struct hsa_dir *d = hsa_dir_load(o, rep, err, errlen);
        if (d && d->n_units == 0) {
                snprintf(err, errlen, "%s: no units in the extract (%zu entries, %zu skipped)",
                         o->ldif, rep->entries, rep->skipped);
                hsa_dir_free(d);
                d = NULL;
        }
        if (!d) {
                LOGW("hsa_reload_failed", "reason", err, "action", "kept the previous directory");
                return -1;
        }
        pthread_mutex_lock(&h->lock);
        struct hsa_dir *old = h->cur;
        h->cur = d;
        pthread_mutex_unlock(&h->lock);
        hsa_dir_free(old);
        LOGI("hsa_reload", "ldif", o->ldif, "#entries", (long long)rep->entries, "#units",
             (long long)rep->units, "#skipped", (long long)rep->skipped, "#mappings",
             (long long)rep->mappings, "#problems", (long long)rep->problems);
        return 0;
}
