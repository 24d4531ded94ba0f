/*
 * tls.c - server SSL_CTX construction (CA, CRL, TLS 1.2+), caller identity from the client
 * certificate, handshake failure reasons. Any thread builds; the loop thread uses.
 */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "limits.h"

void tls_errstr(char *out, size_t outlen)
{
        unsigned long e;
        size_t o = 0;
        out[0] = '\0';
        while ((e = ERR_get_error()) != 0) {
                char buf[256];
                ERR_error_string_n(e, buf, sizeof buf);
                int n = snprintf(out + o, outlen - o, "%s%s", o ? "; " : "", buf);
                if (n < 0 || (size_t)n >= outlen - o)
                        break;
                o += (size_t)n;
        }
        ERR_clear_error();
}

static int load_crl(X509_STORE *store, const char *path, char *err, size_t errlen)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                snprintf(err, errlen, "%s: cannot open CRL", path);
                return -1;
        }
        int n = 0;
        X509_CRL *crl;
        while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
                X509_STORE_add_crl(store, crl);
                X509_CRL_free(crl);
                n++;
        }
        fclose(f);
        ERR_clear_error();
        if (n == 0) {
                snprintf(err, errlen, "%s: no CRL in file", path);
                return -1;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
        return 0;
}

SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *o, char *err, size_t errlen)
{
        char why[512];
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx) {
                tls_errstr(why, sizeof why);
                snprintf(err, errlen, "SSL_CTX_new: %s", why);
                return NULL;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_NO_COMPRESSION);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        static const unsigned char sid[] = "intygsgw";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);

        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
                tls_errstr(why, sizeof why);
                snprintf(err, errlen, "%s: cannot load certificate: %s", o->cert, why);
                goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1) {
                tls_errstr(why, sizeof why);
                snprintf(err, errlen, "%s: cannot load key: %s", o->key, why);
                goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
                snprintf(err, errlen, "%s: key does not match %s", o->key, o->cert);
                goto fail;
        }
        if (o->ca) {
                if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
                        tls_errstr(why, sizeof why);
                        snprintf(err, errlen, "%s: cannot load CA: %s", o->ca, why);
                        goto fail;
                }
                STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca);
                if (names)
                        SSL_CTX_set_client_CA_list(ctx, names);
        }
        if (o->crl && load_crl(SSL_CTX_get_cert_store(ctx), o->crl, err, errlen) != 0)
                goto fail;
        if (o->require_client_cert)
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_verify_depth(ctx, 4);
        return ctx;
fail:
        SSL_CTX_free(ctx);
        return NULL;
}

static bool plausible_id(const unsigned char *s, int len)
{
        if (len <= 0 || len > HSA_ID_MAX)
                return false;
        for (int i = 0; i < len; i++)
                if (s[i] < 0x21 || s[i] > 0x7e)
                        return false;
        return true;
}

bool tls_peer_id(SSL *ssl, const char *attr, char *out, size_t outlen)
{
        out[0] = '\0';
        X509 *peer = SSL_get0_peer_certificate(ssl);
        if (!peer)
                return false;
        int nid = strcmp(attr, "OU") == 0   ? NID_organizationalUnitName
                  : strcmp(attr, "CN") == 0 ? NID_commonName
                                            : NID_serialNumber;
        X509_NAME *subj = X509_get_subject_name(peer);
        int idx = X509_NAME_get_index_by_NID(subj, nid, -1);
        if (idx < 0)
                return false;
        ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, v);
        bool ok = plausible_id(utf8, len) && (size_t)len < outlen;
        if (ok) {
                memcpy(out, utf8, (size_t)len);
                out[len] = '\0';
        }
        OPENSSL_free(utf8);
        return ok;
}

const char *tls_failure_reason(SSL *ssl, int ssl_err, char *detail, size_t detaillen)
{
        long vr = SSL_get_verify_result(ssl);
        unsigned long e = ERR_peek_error();
        char buf[256] = "";
        if (e)
                ERR_error_string_n(e, buf, sizeof buf);
        ERR_clear_error();
        const char *reason = "handshake_failed";
        if (vr != X509_V_OK) {
                snprintf(detail, detaillen, "%s", X509_verify_cert_error_string(vr));
                switch (vr) {
                case X509_V_ERR_CERT_REVOKED:
                        return "cert_revoked";
                case X509_V_ERR_CERT_HAS_EXPIRED:
                        return "cert_expired";
                case X509_V_ERR_CERT_NOT_YET_VALID:
                        return "cert_not_yet_valid";
                case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
                case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
                case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
                case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
                case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
                case X509_V_ERR_CERT_SIGNATURE_FAILURE:
                        return "cert_untrusted";
                case X509_V_ERR_UNABLE_TO_GET_CRL:
                case X509_V_ERR_CRL_HAS_EXPIRED:
                        return "crl_unavailable";
                default:
                        return "cert_invalid";
                }
        }
        snprintf(detail, detaillen, "%s", buf[0] ? buf : "peer closed or sent garbage");
        if (strstr(buf, "peer did not return a certificate") || strstr(buf, "certificate required"))
                return "no_client_cert";
        if (strstr(buf, "wrong version number") || strstr(buf, "unsupported protocol") ||
            strstr(buf, "http request"))
                return "protocol";
        if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN)
                return "peer_closed";
        (void)reason;
        return "handshake_failed";
}
