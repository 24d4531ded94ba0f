/*
 * feed.h - a scripted load for the admin API, CLI and dashboard tests: certificates posted over
 * real mutual TLS as the three regions' systems (accepted, duplicate, rejected by a named
 * rule, refused by the grants), handshakes that must fail, and readers for /metrics lines.
 * Header-only (static inline) so that each test program gets its own copy; test thread only.
 */
#ifndef INTYGSGW_TEST_FEED_H
#define INTYGSGW_TEST_FEED_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "pki.h"
#include "tlsclient.h"

#define FEED_REGISTER_PATH "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"
#define FEED_PATH_MAX      512
#define FEED_WAIT_STEP_US  50000

/* The sample directory's three regions: caller certificate, issuing unit, care provider,
 * follow-up unit and county (ops/HSA.md). */
struct feed_region {
        const char *who;
        const char *unit;
        const char *provider;
        const char *followup;
        const char *county;
};

static const struct feed_region FEED_A = {"region-a", "SE2321000016-A111", "SE2321000016-0001",
                                          "SE2321000016-A110", "01"};
static const struct feed_region FEED_B = {"region-b", "SE2321000131-B111", "SE2321000131-0001",
                                          "SE2321000131-B110", "14"};
static const struct feed_region FEED_C = {"region-c", "SE2321000032-C111", "SE2321000032-0001",
                                          "SE2321000032-C110", "03"};

/* Valid test personnummer: men (191212121212, 198211024578), women (the other two). */
static const char *const FEED_PATIENTS[4] = {"191212121212", "197503142387", "198211024578",
                                             "199006231162"};

/* A keep-alive mutual-TLS client that reconnects when the gateway closed. */
struct feed_client {
        struct tlsc *c;
        int port;
        struct tls_client_opts o;
        char ca[FEED_PATH_MAX], crt[FEED_PATH_MAX], key[FEED_PATH_MAX];
};

/* who: a PKI name ("region-a") or NULL for no client certificate. 0, or -1 (no PKI). */
static inline int feed_client_init(struct feed_client *cl, int port, const char *who)
{
        memset(cl, 0, sizeof *cl);
        cl->port = port;
        if (test_pki_path(cl->ca, sizeof cl->ca, "ca.crt") != 0)
                return -1;
        cl->o.ca = cl->ca;
        cl->o.timeout_ms = 5000;
        cl->o.confirm_ms = 300;
        if (who) {
                char n[64];
                snprintf(n, sizeof n, "%s.crt", who);
                if (test_pki_path(cl->crt, sizeof cl->crt, n) != 0)
                        return -1;
                snprintf(n, sizeof n, "%s.key", who);
                if (test_pki_path(cl->key, sizeof cl->key, n) != 0)
                        return -1;
                cl->o.cert = cl->crt;
                cl->o.key = cl->key;
        }
        return 0;
}

static inline void feed_client_close(struct feed_client *cl)
{
        tlsc_free(cl->c);
        cl->c = NULL;
}

/* One request on the client's connection; the response in *r (caller clears). 0 or -1. */
static inline int feed_request(struct feed_client *cl, const char *method, const char *path,
                               const char *body, size_t len, struct http_response *r)
{
        char err[TLSC_ERR_MAX];
        if (!cl->c && tlsc_connect(&cl->c, "127.0.0.1", cl->port, &cl->o, err, sizeof err) != 0) {
                cl->c = NULL;
                return -1;
        }
        char head[FEED_PATH_MAX + 256];
        int hn = snprintf(
            head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n",
            method, path, body ? "Content-Type: text/xml; charset=UTF-8\r\n" : "", len);
        memset(r, 0, sizeof *r);
        if (tlsc_send(cl->c, head, (size_t)hn) != 0 || (len && tlsc_send(cl->c, body, len) != 0) ||
            tlsc_read_response(cl->c, r, 15000) != 0) {
                http_response_clear(r);
                feed_client_close(cl);
                return -1;
        }
        return 0;
}

/* POST a RegisterCertificate; code: "OK", "INFO", "ERROR" or "FAULT". 0, or -1 (no answer). */
static inline int feed_post(struct feed_client *cl, const char *soap, size_t len, char *code,
                            size_t codelen)
{
        struct http_response r;
        if (feed_request(cl, "POST", FEED_REGISTER_PATH, soap, len, &r) != 0)
                return -1;
        code[0] = '\0';
        const char *rc = r.body ? strstr(r.body, "resultCode>") : NULL;
        if (rc)
                snprintf(code, codelen, "%.*s", (int)strcspn(rc + 11, "<"), rc + 11);
        else if (r.body && strstr(r.body, "Fault>"))
                snprintf(code, codelen, "FAULT");
        http_response_clear(&r);
        return 0;
}

/* A SOAP RegisterCertificate for a region's unit and provider; if from is not NULL, its
 * first occurrence in the bare certificate is replaced by to (to break one rule). */
static inline char *feed_make(const char *id, const char *person, const char *unit,
                              const char *provider, const char *from, const char *to, size_t *len)
{
        size_t bl;
        char *bare = test_make_intyg(id, person, unit, provider, &bl);
        if (!bare)
                return NULL;
        if (from) {
                char *at = strstr(bare, from);
                if (!at) {
                        free(bare);
                        return NULL;
                }
                size_t fl = strlen(from), tl = strlen(to);
                char *n = malloc(bl - fl + tl + 1);
                if (!n) {
                        free(bare);
                        return NULL;
                }
                size_t pre = (size_t)(at - bare);
                memcpy(n, bare, pre);
                memcpy(n + pre, to, tl);
                memcpy(n + pre + tl, at + fl, bl - pre - fl + 1);
                free(bare);
                bare = n;
                bl = bl - fl + tl;
        }
        char *soap = test_soap_wrap(bare, bl, len);
        free(bare);
        return soap;
}

/* Post one certificate as region rg (its own unit and provider unless unit/provider given);
 * returns the result code in code. 0, or -1. */
static inline int feed_one(struct feed_client *cl, const struct feed_region *rg, const char *id,
                           const char *person, const char *from, const char *to, char *code,
                           size_t codelen)
{
        size_t len;
        char *soap = feed_make(id, person, rg->unit, rg->provider, from, to, &len);
        if (!soap)
                return -1;
        int rc = feed_post(cl, soap, len, code, codelen);
        free(soap);
        return rc;
}

/* A handshake that the gateway must refuse: true if it was refused (at the handshake or at
 * the first read, TLS 1.3). who: PKI name or NULL (no client certificate). */
static inline bool feed_tls_refused(int port, const char *who)
{
        struct feed_client cl;
        if (feed_client_init(&cl, port, who) != 0)
                return false;
        char err[TLSC_ERR_MAX];
        if (tlsc_connect(&cl.c, "127.0.0.1", port, &cl.o, err, sizeof err) != 0)
                return true;
        const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        struct http_response r = {0};
        int rc = tlsc_send(cl.c, req, sizeof req - 1);
        if (rc == 0)
                rc = tlsc_read_response(cl.c, &r, 2000);
        http_response_clear(&r);
        feed_client_close(&cl);
        return rc != 0;
}

/* The value of one exposition line "name{labels}" (or "name") in /metrics text; -1 if the
 * series is absent. */
static inline double feed_metric(const char *text, const char *series)
{
        size_t sl = strlen(series);
        for (const char *p = text; p && *p;) {
                if (!strncmp(p, series, sl) && p[sl] == ' ')
                        return strtod(p + sl + 1, NULL);
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return -1;
}

/* Scrape /metrics until series has value want (bounded by timeout_ms); the last value. */
static inline double feed_wait_metric(int admin_port, const char *series, double want,
                                      int timeout_ms)
{
        double v = -1;
        for (int t = 0; t <= timeout_ms; t += FEED_WAIT_STEP_US / 1000) {
                char *m = NULL;
                if (test_admin_get(admin_port, "/metrics", &m) == 200 && m)
                        v = feed_metric(m, series);
                free(m);
                if (v == want)
                        return v;
                usleep(FEED_WAIT_STEP_US);
        }
        return v;
}

/* A file of 32 random bytes, mode 0600, for [stats] pseudonym_key. 0 or -1. */
static inline int feed_write_key(const char *path)
{
        FILE *r = fopen("/dev/urandom", "rb");
        unsigned char k[32];
        if (!r)
                return -1;
        size_t got = fread(k, 1, sizeof k, r);
        fclose(r);
        if (got != sizeof k)
                return -1;
        FILE *f = fopen(path, "wb");
        if (!f)
                return -1;
        size_t put = fwrite(k, 1, sizeof k, f);
        if (fclose(f) != 0 || put != sizeof k)
                return -1;
        return chmod(path, 0600);
}

#endif
