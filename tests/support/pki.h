/*
 * pki.h - the test PKI for every test program: certs/make-pki.sh run once into
 * <build>/test-pki (shared by all test processes through flock), then only looked up.
 * Owns one static path string per process. Any thread (pthread_once).
 */
#ifndef INTYGSGW_TEST_PKI_H
#define INTYGSGW_TEST_PKI_H

#include <stddef.h>

/**
 * The directory of a complete test PKI (ca.crt, crl.pem, gateway.crt/.key, fk.crt/.key,
 * region-a/b/c, admin, revoked, expired, foreign...; see certs/README.md).
 * Made on first use; INTYGSGW_TEST_PKI in the environment overrides the location.
 * Returns NULL (and says why on stderr) when the PKI cannot be made.
 */
const char *test_pki_dir(void);

/** Path of one PKI file ("region-a.crt") into out; 0, or -1 (no PKI, or out too small). */
int test_pki_path(char *out, size_t cap, const char *name);

#endif
