/*
 * records.c - the simulator's small data structures: a growable byte buffer and the
 * id -> count table (first-seen order, open-addressing index) behind /_sim/received.
 * Owns only what it allocates. Not thread-safe: struct sim locks around every call.
 */
#include "fksim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(struct buf *b, size_t extra)
{
        if (extra > ((size_t)1 << 30) || b->len + extra + 1 > ((size_t)1 << 31))
                return -1;
        size_t need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
                cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
                return -1;
        b->p = p;
        b->cap = cap;
        return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
        if (buf_reserve(b, n) < 0)
                return -1;
        if (n)
                memcpy(b->p + b->len, data, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

int buf_puts(struct buf *b, const char *s)
{
        return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char tmp[512];
        int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -1;
        if ((size_t)n < sizeof tmp)
                return buf_append(b, tmp, (size_t)n);
        if (buf_reserve(b, (size_t)n) < 0)
                return -1;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

int buf_json_str(struct buf *b, const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                int rc;
                if (*p == '"')
                        rc = buf_puts(b, "\\\"");
                else if (*p == '\\')
                        rc = buf_puts(b, "\\\\");
                else if (*p < 0x20 || *p == 0x7f)
                        rc = buf_printf(b, "\\u%04x", *p);
                else
                        rc = buf_append(b, p, 1);
                if (rc < 0)
                        return -1;
        }
        return 0;
}

int buf_xml_str(struct buf *b, const char *s)
{
        for (const char *p = s; *p; p++) {
                int rc;
                switch (*p) {
                case '<':
                        rc = buf_puts(b, "&lt;");
                        break;
                case '>':
                        rc = buf_puts(b, "&gt;");
                        break;
                case '&':
                        rc = buf_puts(b, "&amp;");
                        break;
                case '"':
                        rc = buf_puts(b, "&quot;");
                        break;
                case '\'':
                        rc = buf_puts(b, "&apos;");
                        break;
                default:
                        rc = buf_append(b, p, 1);
                }
                if (rc < 0)
                        return -1;
        }
        return 0;
}

void buf_reset(struct buf *b)
{
        b->len = 0;
        if (b->p)
                b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
        free(b->p);
        b->p = NULL;
        b->len = b->cap = 0;
}

static uint64_t hash_id(const char *s)
{
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 1099511628211ULL;
        }
        return h;
}

void records_init(struct records *r)
{
        memset(r, 0, sizeof *r);
}

/* Slot of id in the index: where it is, or the empty slot where it would go. */
static size_t find_slot(const struct records *r, const char *id)
{
        size_t mask = r->index_cap - 1;
        size_t i = (size_t)hash_id(id) & mask;
        while (r->index[i] != 0 && strcmp(r->v[r->index[i] - 1].id, id) != 0)
                i = (i + 1) & mask;
        return i;
}

static int grow_index(struct records *r)
{
        size_t cap = r->index_cap ? r->index_cap * 2 : 1024;
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!idx)
                return -1;
        free(r->index);
        r->index = idx;
        r->index_cap = cap;
        for (size_t e = 0; e < r->n; e++)
                r->index[find_slot(r, r->v[e].id)] = (uint32_t)(e + 1);
        return 0;
}

long records_get(const struct records *r, const char *id)
{
        if (r->index_cap == 0)
                return 0;
        size_t i = find_slot(r, id);
        return r->index[i] ? r->v[r->index[i] - 1].count : 0;
}

long records_add(struct records *r, const char *id)
{
        if (r->index_cap == 0 || (r->n + 1) * 10 > r->index_cap * 7) {
                if (grow_index(r) < 0)
                        return -1;
        }
        size_t i = find_slot(r, id);
        if (r->index[i]) {
                struct record *e = &r->v[r->index[i] - 1];
                e->count++;
                return e->count;
        }
        if (r->n >= FKSIM_MAX_RECORDS)
                return -1;
        if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 256;
                struct record *v = realloc(r->v, cap * sizeof *v);
                if (!v)
                        return -1;
                r->v = v;
                r->cap = cap;
        }
        char *copy = strdup(id);
        if (!copy)
                return -1;
        r->v[r->n].id = copy;
        r->v[r->n].count = 1;
        r->n++;
        r->index[i] = (uint32_t)r->n;
        return 1;
}

int records_json(const struct records *r, struct buf *out)
{
        if (buf_puts(out, "{") < 0)
                return -1;
        for (size_t e = 0; e < r->n; e++) {
                if ((e && buf_puts(out, ",") < 0) || buf_puts(out, "\"") < 0 ||
                    buf_json_str(out, r->v[e].id) < 0 ||
                    buf_printf(out, "\":%ld", r->v[e].count) < 0)
                        return -1;
        }
        return buf_puts(out, "}");
}

void records_clear(struct records *r)
{
        for (size_t e = 0; e < r->n; e++)
                free(r->v[e].id);
        free(r->v);
        free(r->index);
        records_init(r);
}
