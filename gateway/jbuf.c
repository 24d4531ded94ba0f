/*
 * jbuf.c - growable buffer with printf and JSON string escaping. Any thread.
 */
#include "jbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool grow(struct jbuf *b, size_t need)
{
        if (b->oom)
                return false;
        if (b->len + need + 1 <= b->cap)
                return true;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + need + 1)
                cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
                b->oom = true;
                return false;
        }
        b->p = p;
        b->cap = cap;
        return true;
}

void jbuf_put(struct jbuf *b, const char *s, size_t n)
{
        if (!grow(b, n))
                return;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !grow(b, (size_t)n))
                return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

void jbuf_str(struct jbuf *b, const char *s)
{
        if (!s) {
                jbuf_put(b, "null", 4);
                return;
        }
        jbuf_put(b, "\"", 1);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                char esc[8];
                switch (*p) {
                case '"':
                        jbuf_put(b, "\\\"", 2);
                        break;
                case '\\':
                        jbuf_put(b, "\\\\", 2);
                        break;
                case '\n':
                        jbuf_put(b, "\\n", 2);
                        break;
                case '\r':
                        jbuf_put(b, "\\r", 2);
                        break;
                case '\t':
                        jbuf_put(b, "\\t", 2);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f) {
                                snprintf(esc, sizeof esc, "\\u%04x", *p);
                                jbuf_put(b, esc, 6);
                        } else {
                                jbuf_put(b, (const char *)p, 1);
                        }
                }
        }
        jbuf_put(b, "\"", 1);
}

char *jbuf_take(struct jbuf *b, size_t *len)
{
        if (b->oom) {
                jbuf_free(b);
                return NULL;
        }
        if (!b->p)
                grow(b, 0);
        char *p = b->p;
        if (len)
                *len = b->len;
        if (p)
                p[b->len] = '\0';
        b->p = NULL;
        b->len = b->cap = 0;
        return p;
}

void jbuf_free(struct jbuf *b)
{
        free(b->p);
        b->p = NULL;
        b->len = b->cap = 0;
        b->oom = false;
}
