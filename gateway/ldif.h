/*
 * ldif.h - a streaming reader of LDIF content records (RFC 2849), and RFC 4514 DN helpers.
 *
 * Owns: the reader's line and entry buffers; an entry returned by ldif_next() borrows them and
 * is valid until the next call. Handles folded lines, base64 (::) values, comments, CRLF;
 * refuses change records and URL (:<) values per entry. Every size is bounded (LDIF_MAX_*).
 * Threads: one reader belongs to one thread; the DN helpers are pure, any thread.
 */
#ifndef INTYGSGW_LDIF_H
#define INTYGSGW_LDIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Limits. A real HSA unit entry is 1-3 kB with 20-60 attribute lines. */
#define LDIF_MAX_LINE        16384  /* bytes of one logical (unfolded) line */
#define LDIF_MAX_ENTRY_BYTES 262144 /* bytes of one entry, decoded values included */
#define LDIF_MAX_ATTRS       1024   /* attribute lines per entry */
#define LDIF_MAX_DN          1024   /* bytes of a DN, raw or normalised */
#define LDIF_MAX_DN_DEPTH    32     /* RDNs in a DN */
#define LDIF_MAX_ATTR_NAME   64     /* bytes of an attribute description */

/** One attribute line of an entry; strings are NUL-terminated (value may hold a NUL: len). */
struct ldif_attr {
        const char *name;   /* attribute type, lower-cased, options (";lang-sv") removed */
        const char *value;  /* decoded value */
        size_t len;         /* bytes of value */
        unsigned long line; /* physical line where the attribute line starts */
};

/** One content record. Borrowed from the reader; valid until the next ldif_next(). */
struct ldif_entry {
        const char *dn;     /* as written (decoded if dn::), not normalised */
        unsigned long line; /* physical line of the dn: line */
        size_t n_attrs;
        const struct ldif_attr *attrs;
};

enum ldif_status {
        LDIF_EOF = 0,        /* no more entries */
        LDIF_OK = 1,         /* *e holds an entry */
        LDIF_BAD_ENTRY = -1, /* one entry was broken and skipped; err says where; go on */
        LDIF_IO = -2,        /* read error: stop */
};

struct ldif_reader;

/** A reader over an open stream (borrowed: the caller closes it). NULL on out-of-memory. */
struct ldif_reader *ldif_reader_new(FILE *f);

/** Free the reader; NULL is fine. */
void ldif_reader_free(struct ldif_reader *r);

/**
 * Read the next content record. On LDIF_BAD_ENTRY err holds "line N: reason" and the rest of
 * that entry (up to the next blank line) has been skipped.
 */
enum ldif_status ldif_next(struct ldif_reader *r, struct ldif_entry *e, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/** Physical lines read so far. */
unsigned long ldif_reader_line(const struct ldif_reader *r);

/** Line of the last LDIF_BAD_ENTRY's fault (0 before any). */
unsigned long ldif_reader_error_line(const struct ldif_reader *r);

/**
 * Normalise a DN (RFC 4514) into a canonical string: types lower-cased, values unescaped,
 * trimmed, ASCII lower-cased, then re-escaped; RDNs joined by ','. Equal DNs (as LDAP
 * compares ou/o/l/c names, case-insensitively) give equal strings. Returns the number of RDNs
 * (0 for the empty DN), or -1 with err filled.
 */
int ldif_dn_normalise(const char *dn, char *out, size_t outlen, char *err, size_t errlen);

/** The parent of a normalised DN: a pointer into it after the first RDN, "" for one RDN. */
const char *ldif_dn_parent(const char *norm_dn);

/**
 * The first RDN of a normalised DN: its type into type[typelen] and its unescaped value
 * into value[valuelen] (first attribute of a multi-valued RDN). False if the DN is empty.
 */
bool ldif_dn_first_rdn(const char *norm_dn, char *type, size_t typelen, char *value,
                       size_t valuelen);

/**
 * Decode standard base64 (padding optional, no white space) into out[outcap]. Returns the
 * decoded length, or -1 on a bad character, bad padding or too small a buffer.
 */
long ldif_base64_decode(const char *in, size_t inlen, char *out, size_t outcap);

#endif
