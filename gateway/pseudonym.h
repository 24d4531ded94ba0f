/*
 * pseudonym.h - keyed pseudonyms (HMAC-SHA256, truncated) for the statistics store.
 *
 * Owns: struct pseudonym, which holds a copy of the secret key (wiped by pseudonym_free).
 * The key comes from a file that only its owner may read and is at least 32 bytes long.
 * Threads: a loaded pseudonym is immutable; pseudonym_make may be called from any thread.
 */
#ifndef INTYGSGW_PSEUDONYM_H
#define INTYGSGW_PSEUDONYM_H

#include <stddef.h>
#include <stdint.h>

#define PSEUDONYM_LEN       16   /* bytes kept of the 32-byte HMAC-SHA256: 128 bits */
#define PSEUDONYM_KEY_MIN   32   /* bytes; shorter keys are refused */
#define PSEUDONYM_KEY_MAX   4096 /* bytes; a longer key file is refused */
#define PSEUDONYM_INPUT_MAX 512  /* bytes of domain + scope + value together */

struct pseudonym;

/**
 * Load the key from a file. Refused: a file that group or other may read, write or execute
 * (any of mode 077), not a regular file, shorter than PSEUDONYM_KEY_MIN bytes after one
 * trailing newline is dropped, or longer than PSEUDONYM_KEY_MAX bytes.
 */
struct pseudonym *pseudonym_load(const char *path, char *err, size_t errlen);

/** A pseudonym maker from key bytes in memory (copied); the same length rules. */
struct pseudonym *pseudonym_new(const unsigned char *key, size_t len, char *err, size_t errlen);

/** Wipe the key and free; NULL is fine. */
void pseudonym_free(struct pseudonym *p);

/**
 * out = first PSEUDONYM_LEN bytes of HMAC-SHA256(key, domain 0x1f scope 0x1f value).
 * domain separates kinds ("patient", "intyg"); scope narrows linkage (the care provider for
 * patients, so that the store itself cannot link one person across care providers).
 * Returns 0, or -1 if an input is NULL or too long.
 */
int pseudonym_make(const struct pseudonym *p, const char *domain, const char *scope,
                   const char *value, unsigned char out[PSEUDONYM_LEN]);

/** A key fingerprint (a pseudonym of a fixed string) to detect a changed key. */
int pseudonym_fingerprint(const struct pseudonym *p, unsigned char out[PSEUDONYM_LEN]);

#endif
