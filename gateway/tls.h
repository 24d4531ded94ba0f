/*
 * tls.h - OpenSSL contexts for the listeners: TLS 1.2/1.3 only, client certificate required
 * and verified against the configured CA and CRL; the caller's HSA-id from the subject.
 *
 * Owns: the SSL_CTX (refcounted by OpenSSL: connections keep the one they started with, so a
 * reload builds a new context and swaps it in without dropping anyone).
 * Threads: built on any thread; used by the loop thread only.
 */
#ifndef INTYGSGW_TLS_H
#define INTYGSGW_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct tls_server_opts {
        const char *cert;
        const char *key;
        const char *ca;
        const char *crl; /* may be NULL */
        bool require_client_cert;
};

/** A server context, or NULL with err filled (names the file and OpenSSL's reason). */
SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *o, char *err, size_t errlen);

/**
 * Read the caller id from the verified peer certificate's subject attribute `attr`
 * ("serialNumber", "OU" or "CN") into out. False if there is no such attribute or it is not
 * a plausible HSA-id (printable, 1..HSA_ID_MAX characters).
 */
bool tls_peer_id(SSL *ssl, const char *attr, char *out, size_t outlen);

/** Why a handshake failed, in a stable short form for logs and metric labels. */
const char *tls_failure_reason(SSL *ssl, int ssl_err, char *detail, size_t detaillen);

/** OpenSSL's error queue as one string (and cleared). */
void tls_errstr(char *out, size_t outlen);

#endif
