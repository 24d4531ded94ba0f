/*
 * test_admin_tls.c - the admin listener with mutual TLS: no certificate, a region's
 * certificate (403) and the administrator's; a replay through it is written to the audit log
 * with the administrator's identity.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw.h"
#include "pki.h"
#include "tlsclient.h"

#define REGISTER_PATH "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"

static struct gw gw;
static struct fksim fk;

static void fini(void)
{
        if (gw.pid > 0)
                gw_kill(&gw);
        if (gw.dir[0])
                gw_cleanup(&gw);
        if (fk.pid > 0)
                fksim_stop(&fk);
        memset(&gw, 0, sizeof gw);
        memset(&fk, 0, sizeof fk);
}

TestSuite(admin_tls, .fini = fini);

static int call(int port, const char *who, const char *method, const char *path, char **body,
                char *err, size_t errlen)
{
        char ca[512], crt[512], key[512], n[64];
        struct tls_client_opts o = {0};
        test_pki_path(ca, sizeof ca, "ca.crt");
        o.ca = ca;
        o.timeout_ms = 5000;
        if (who) {
                snprintf(n, sizeof n, "%s.crt", who);
                test_pki_path(crt, sizeof crt, n);
                snprintf(n, sizeof n, "%s.key", who);
                test_pki_path(key, sizeof key, n);
                o.cert = crt;
                o.key = key;
        }
        struct http_response r = {0};
        int rc =
            tlsc_request("127.0.0.1", port, &o, method, path, NULL, NULL, "", 0, &r, err, errlen);
        if (rc != 0)
                return -1;
        *body = r.body;
        r.body = NULL;
        int st = r.status;
        http_response_clear(&r);
        return st;
}

Test(admin_tls, only_admins_and_audited, .timeout = 120)
{
        const char *pki = test_pki_dir();
        cr_assert_not_null(pki);
        cr_assert_eq(fksim_start(&fk, NULL), 0);
        cr_assert_eq(fksim_control(&fk, "reject_rate=1"), 0);
        char a1[600], a2[600], a3[600], a4[600];
        snprintf(a1, sizeof a1, "admin.tls_cert=%s/gateway.crt", pki);
        snprintf(a2, sizeof a2, "admin.tls_key=%s/gateway.key", pki);
        snprintf(a3, sizeof a3, "admin.tls_ca=%s/ca.crt", pki);
        snprintf(a4, sizeof a4, "admin.audit_log=/tmp/intygsgw-audit-%d.log", (int)getpid());
        const char *ov[] = {a1, a2, a3, a4, "admin.admins=SE2321000016-ADM1", NULL};
        cr_assert_eq(gw_start(&gw, &fk, ov), 0, "gateway did not start (%s)", gw.log);

        /* An intyg that FK rejects becomes a dead letter. */
        size_t bl, sl;
        char *bare = test_make_intyg("admintls-1", "191212121212", "SE2321000016-A111",
                                     "SE2321000016-0001", &bl);
        char *soap = test_soap_wrap(bare, bl, &sl);
        char ca[512], crt[512], key[512], err[256];
        test_pki_path(ca, sizeof ca, "ca.crt");
        test_pki_path(crt, sizeof crt, "region-a.crt");
        test_pki_path(key, sizeof key, "region-a.key");
        struct tls_client_opts o = {.ca = ca, .cert = crt, .key = key, .timeout_ms = 5000};
        struct http_response r = {0};
        cr_assert_eq(tlsc_request("127.0.0.1", gw.port, &o, "POST", REGISTER_PATH, "text/xml", NULL,
                                  soap, sl, &r, err, sizeof err),
                     0, "%s", err);
        cr_assert(strstr(r.body, "resultCode>OK<"), "%s", r.body);
        http_response_clear(&r);
        free(bare);
        free(soap);

        char *body = NULL;
        /* Plain HTTP on the admin port: no answer (it speaks TLS only). */
        cr_assert_eq(test_admin_get(gw.admin_port, "/healthz", &body), 0);
        free(body);
        body = NULL;
        /* No client certificate: refused in the handshake. */
        cr_assert_eq(call(gw.admin_port, NULL, "GET", "/healthz", &body, err, sizeof err), -1);
        /* A region's valid certificate is not an administrator's. */
        cr_assert_eq(
            call(gw.admin_port, "region-a", "GET", "/api/v1/summary", &body, err, sizeof err), 403,
            "%s", err);
        free(body);
        /* The administrator. */
        bool dead = false;
        for (int t = 0; t < 200 && !dead; t++) {
                cr_assert_eq(call(gw.admin_port, "admin", "GET", "/api/v1/deadletters", &body, err,
                                  sizeof err),
                             200, "%s", err);
                dead = strstr(body, "admintls-1") != NULL;
                free(body);
                if (!dead)
                        usleep(50000);
        }
        cr_assert(dead, "no dead letter");
        cr_assert_eq(fksim_control(&fk, "reject_rate=0"), 0);
        cr_assert_eq(call(gw.admin_port, "admin", "POST",
                          "/api/v1/deadletters/replay?id=admintls-1", &body, err, sizeof err),
                     200, "%s", err);
        cr_assert(strstr(body, "\"changed\":1"), "%s", body);
        free(body);
        cr_assert_eq(gw_stop(&gw), 0);
        char *audit = test_read_file(a4 + strlen("admin.audit_log="), NULL);
        cr_assert_not_null(audit, "no audit log");
        cr_assert(strstr(audit, "\"actor\":\"x509:SE2321000016-ADM1\"") &&
                      strstr(audit, "\"action\":\"replay\"") && strstr(audit, "admintls-1"),
                  "%s", audit);
        free(audit);
        unlink(a4 + strlen("admin.audit_log="));
}
