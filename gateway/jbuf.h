/*
 * jbuf.h - a growable byte buffer for building JSON and text answers.
 * Owns its memory (jbuf_take hands it over). Any thread; one owner at a time.
 */
#ifndef INTYGSGW_JBUF_H
#define INTYGSGW_JBUF_H

#include <stdbool.h>
#include <stddef.h>

struct jbuf {
        char *p;
        size_t len, cap;
        bool oom;
};

/** Append formatted text. */
void jbuf_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Append raw bytes. */
void jbuf_put(struct jbuf *b, const char *s, size_t n);

/** Append a JSON string literal (quotes and escapes added); NULL becomes null. */
void jbuf_str(struct jbuf *b, const char *s);

/** Hand the NUL-terminated contents to the caller (NULL if out of memory); b is emptied. */
char *jbuf_take(struct jbuf *b, size_t *len);

void jbuf_free(struct jbuf *b);

#endif
