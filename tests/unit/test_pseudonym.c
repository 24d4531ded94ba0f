/*
 * test_pseudonym.c - the key file rules (mode, length) and the HMAC pseudonyms.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/hmac.h>

#include "pseudonym.h"

static char dir[64];

static void setup(void)
{
        snprintf(dir, sizeof dir, "/tmp/test_pseudonym.XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        cr_assert_eq(system(cmd), 0);
}

static const char *keyfile(const char *name, const char *content, size_t len, mode_t mode)
{
        static char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, content, len), (ssize_t)len);
        close(fd);
        cr_assert_eq(chmod(path, mode), 0);
        return path;
}

#define KEY32 "0123456789abcdef0123456789abcdef"

TestSuite(pseudonym, .init = setup, .fini = teardown);

Test(pseudonym, key_mode_0600_accepted_0640_0604_refused)
{
        char err[256];
        struct pseudonym *p = pseudonym_load(keyfile("k1", KEY32 "\n", 33, 0600), err, sizeof err);
        cr_assert_not_null(p, "%s", err);
        pseudonym_free(p);
        cr_assert_null(pseudonym_load(keyfile("k2", KEY32, 32, 0640), err, sizeof err));
        cr_assert(strstr(err, "chmod 600"));
        cr_assert_null(pseudonym_load(keyfile("k3", KEY32, 32, 0604), err, sizeof err));
        cr_assert_null(pseudonym_load(keyfile("k4", KEY32, 32, 0620), err, sizeof err));
}

Test(pseudonym, key_length_edges)
{
        char err[256];
        /* 31 bytes (after the newline is dropped) refused, 32 accepted */
        cr_assert_null(pseudonym_load(keyfile("s", KEY32 "\n", 31, 0600), err, sizeof err));
        cr_assert(strstr(err, "too short"));
        struct pseudonym *p = pseudonym_load(keyfile("ok", KEY32, 32, 0600), err, sizeof err);
        cr_assert_not_null(p);
        pseudonym_free(p);
        char *big = malloc(PSEUDONYM_KEY_MAX + 1);
        memset(big, 'k', PSEUDONYM_KEY_MAX + 1);
        p = pseudonym_load(keyfile("max", big, PSEUDONYM_KEY_MAX, 0600), err, sizeof err);
        cr_assert_not_null(p, "%s", err);
        pseudonym_free(p);
        cr_assert_null(
            pseudonym_load(keyfile("big", big, PSEUDONYM_KEY_MAX + 1, 0600), err, sizeof err));
        free(big);
        cr_assert_null(pseudonym_load("/nonexistent/key", err, sizeof err));
        pseudonym_free(NULL);
}

Test(pseudonym, hmac_value_domain_scope)
{
        char err[256];
        struct pseudonym *p = pseudonym_new((const unsigned char *)KEY32, 32, err, sizeof err);
        cr_assert_not_null(p);
        unsigned char a[PSEUDONYM_LEN], b[PSEUDONYM_LEN], c[PSEUDONYM_LEN];
        cr_assert_eq(pseudonym_make(p, "patient", "SE1", "191212121212", a), 0);
        /* equals HMAC-SHA256(key, "patient" 0x1f "SE1" 0x1f value), first 16 bytes */
        unsigned char md[32];
        unsigned int l = 0;
        const char msg[] = "patient\x1fSE1\x1f"
                           "191212121212";
        HMAC(EVP_sha256(), KEY32, 32, (const unsigned char *)msg, sizeof msg - 1, md, &l);
        cr_assert_eq(memcmp(a, md, PSEUDONYM_LEN), 0);
        cr_assert_eq(pseudonym_make(p, "patient", "SE2", "191212121212", b), 0);
        cr_assert_neq(memcmp(a, b, PSEUDONYM_LEN), 0, "scoped per care provider");
        cr_assert_eq(pseudonym_make(p, "intyg", "SE1", "191212121212", c), 0);
        cr_assert_neq(memcmp(a, c, PSEUDONYM_LEN), 0, "domain separated");
        char longv[PSEUDONYM_INPUT_MAX];
        memset(longv, '1', sizeof longv - 1);
        longv[sizeof longv - 1] = '\0';
        cr_assert_eq(pseudonym_make(p, "patient", "", longv, c), -1);
        cr_assert_eq(pseudonym_make(p, "patient", "", NULL, c), -1);
        pseudonym_free(p);
        struct pseudonym *q = pseudonym_new(
            (const unsigned char *)"another key of 32 bytes length!!", 32, err, sizeof err);
        cr_assert_not_null(q);
        cr_assert_eq(pseudonym_make(q, "patient", "SE1", "191212121212", b), 0);
        cr_assert_neq(memcmp(a, b, PSEUDONYM_LEN), 0, "another key, another pseudonym");
        pseudonym_free(q);
}
