/*
 * pseudonym.c - HMAC-SHA256 pseudonyms under a secret key read from a 0600 file.
 * Owns the key copy in struct pseudonym (wiped on free). Immutable after load; any thread.
 */
#include "pseudonym.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

struct pseudonym {
        size_t len;
        unsigned char key[PSEUDONYM_KEY_MAX];
};

struct pseudonym *pseudonym_new(const unsigned char *key, size_t len, char *err, size_t errlen)
{
        if (!key || len < PSEUDONYM_KEY_MIN) {
                snprintf(err, errlen, "pseudonym key too short: %zu bytes, at least %d needed",
                         key ? len : 0, PSEUDONYM_KEY_MIN);
                return NULL;
        }
        if (len > PSEUDONYM_KEY_MAX) {
                snprintf(err, errlen, "pseudonym key too long: more than %d bytes",
                         PSEUDONYM_KEY_MAX);
                return NULL;
        }
        struct pseudonym *p = calloc(1, sizeof *p);
        if (!p) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        memcpy(p->key, key, len);
        p->len = len;
        return p;
}

struct pseudonym *pseudonym_load(const char *path, char *err, size_t errlen)
{
        if (!path || !*path) {
                snprintf(err, errlen, "no pseudonym key file configured");
                return NULL;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                snprintf(err, errlen, "pseudonym key %s: %s", path, strerror(errno));
                return NULL;
        }
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "pseudonym key %s: not a regular file", path);
                close(fd);
                return NULL;
        }
        if (st.st_mode & (S_IRWXG | S_IRWXO)) {
                snprintf(err, errlen,
                         "pseudonym key %s: group or other may access it (mode %03o); "
                         "chmod 600",
                         path, (unsigned)(st.st_mode & 0777));
                close(fd);
                return NULL;
        }
        unsigned char buf[PSEUDONYM_KEY_MAX + 2];
        size_t n = 0;
        for (;;) {
                ssize_t r = read(fd, buf + n, sizeof buf - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        snprintf(err, errlen, "pseudonym key %s: %s", path, strerror(errno));
                        close(fd);
                        OPENSSL_cleanse(buf, sizeof buf);
                        return NULL;
                }
                if (r == 0 || n + (size_t)r == sizeof buf) {
                        n += (size_t)r;
                        break;
                }
                n += (size_t)r;
        }
        close(fd);
        if (n > 0 && buf[n - 1] == '\n')
                n--;
        if (n > 0 && buf[n - 1] == '\r')
                n--;
        struct pseudonym *p = NULL;
        if (n > PSEUDONYM_KEY_MAX)
                snprintf(err, errlen, "pseudonym key %s: longer than %d bytes", path,
                         PSEUDONYM_KEY_MAX);
        else
                p = pseudonym_new(buf, n, err, errlen);
        OPENSSL_cleanse(buf, sizeof buf);
        return p;
}

void pseudonym_free(struct pseudonym *p)
{
        if (!p)
                return;
        OPENSSL_cleanse(p, sizeof *p);
        free(p);
}

int pseudonym_make(const struct pseudonym *p, const char *domain, const char *scope,
                   const char *value, unsigned char out[PSEUDONYM_LEN])
{
        if (!p || !domain || !scope || !value)
                return -1;
        size_t ld = strlen(domain), ls = strlen(scope), lv = strlen(value);
        if (ld + ls + lv + 2 > PSEUDONYM_INPUT_MAX)
                return -1;
        unsigned char in[PSEUDONYM_INPUT_MAX];
        size_t n = 0;
        memcpy(in + n, domain, ld);
        n += ld;
        in[n++] = 0x1f;
        memcpy(in + n, scope, ls);
        n += ls;
        in[n++] = 0x1f;
        memcpy(in + n, value, lv);
        n += lv;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        unsigned char *r = HMAC(EVP_sha256(), p->key, (int)p->len, in, n, md, &mdlen);
        OPENSSL_cleanse(in, sizeof in);
        if (!r || mdlen < PSEUDONYM_LEN)
                return -1;
        memcpy(out, md, PSEUDONYM_LEN);
        OPENSSL_cleanse(md, sizeof md);
        return 0;
}

int pseudonym_fingerprint(const struct pseudonym *p, unsigned char out[PSEUDONYM_LEN])
{
        return pseudonym_make(p, "fingerprint", "intygsgw", "statistics key", out);
}
