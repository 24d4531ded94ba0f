/*
 * test_reload.c - SIGHUP: a broken HSA extract or grants file keeps the old tables (and says
 * why); a good one is swapped in without dropping an open connection; grants take effect.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw.h"
#include "pki.h"
#include "tlsclient.h"

#define REGISTER_PATH "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"

static struct gw gw;
static char dir[64];

static void fini(void)
{
        if (gw.pid > 0)
                gw_kill(&gw);
        if (gw.dir[0])
                gw_cleanup(&gw);
        memset(&gw, 0, sizeof gw);
        if (dir[0]) {
                char cmd[128];
                snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", dir);
        }
}

TestSuite(reload, .fini = fini);

static void copy(const char *from, const char *to)
{
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
        cr_assert_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
}

/* Post one intyg as region-a on an open connection; returns the body (malloc'd). */
static char *post(struct tlsc *c, const char *id)
{
        size_t bl, sl;
        char *bare =
            test_make_intyg(id, "191212121212", "SE2321000016-A111", "SE2321000016-0001", &bl);
        char *soap = test_soap_wrap(bare, bl, &sl);
        char head[256];
        int hn = snprintf(head, sizeof head,
                          "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          sl);
        cr_assert_eq(tlsc_send(c, head, (size_t)hn), 0);
        cr_assert_eq(tlsc_send(c, soap, sl), 0);
        struct http_response r = {0};
        cr_assert_eq(tlsc_read_response(c, &r, 10000), 0, "%s", tlsc_error(c));
        char *body = r.body;
        r.body = NULL;
        http_response_clear(&r);
        free(bare);
        free(soap);
        return body;
}

static bool log_has(const char *needle, int count)
{
        for (int t = 0; t < 100; t++) {
                char *log = test_read_file(gw.log, NULL);
                int n = 0;
                for (const char *p = log; p && (p = strstr(p, needle)); p++)
                        n++;
                free(log);
                if (n >= count)
                        return true;
                usleep(30000);
        }
        return false;
}

static char *followup_of(const char *id)
{
        char path[256], *body = NULL;
        snprintf(path, sizeof path, "/api/v1/intyg/%s", id);
        cr_assert_eq(test_admin_get(gw.admin_port, path, &body), 200);
        return body;
}

Test(reload, bad_files_keep_old_tables_good_ones_swap, .timeout = 120)
{
        cr_assert_not_null(test_pki_dir());
        snprintf(dir, sizeof dir, "/tmp/intygsgw-reload-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        char ldif[128], grants[128], src[512];
        snprintf(ldif, sizeof ldif, "%s/hsa.ldif", dir);
        snprintf(grants, sizeof grants, "%s/grants.ini", dir);
        snprintf(src, sizeof src, "%s/ops/hsa-extract.ldif", INTYGSGW_SOURCE_DIR);
        copy(src, ldif);
        snprintf(src, sizeof src, "%s/ops/grants.ini", INTYGSGW_SOURCE_DIR);
        copy(src, grants);
        char o1[200], o2[200];
        snprintf(o1, sizeof o1, "hsa.ldif=%s", ldif);
        snprintf(o2, sizeof o2, "auth.grants=%s", grants);
        const char *ov[] = {o1, o2, NULL};
        cr_assert_eq(gw_start(&gw, NULL, ov), 0, "%s", gw.log);

        char ca[512], crt[512], key[512], err[256];
        test_pki_path(ca, sizeof ca, "ca.crt");
        test_pki_path(crt, sizeof crt, "region-a.crt");
        test_pki_path(key, sizeof key, "region-a.key");
        struct tls_client_opts o = {.ca = ca, .cert = crt, .key = key, .timeout_ms = 5000};
        struct tlsc *c = NULL;
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", gw.port, &o, err, sizeof err), 0, "%s", err);

        char *b = post(c, "reload-1");
        cr_assert(strstr(b, "resultCode>OK<"), "%s", b);
        free(b);

        /* A broken extract (no units at all): the reload fails and says why; tags unchanged. */
        write_text(ldif, "version: 1\n\ndn: c=SE\nobjectClass: country\n");
        kill(gw.pid, SIGHUP);
        cr_assert(log_has("\"event\":\"reload_failed\"", 1), "no reload_failed in the log");
        b = post(c, "reload-2");
        cr_assert(strstr(b, "resultCode>OK<"), "%s", b);
        free(b);
        b = followup_of("reload-2");
        cr_assert(strstr(b, "\"followup_unit\":\"SE2321000016-A110\"") &&
                      strstr(b, "\"resolution\":\"level\""),
                  "old directory not kept: %s", b);
        free(b);

        /* A broken grants file: refused whole, the old grants stay. */
        snprintf(src, sizeof src, "%s/ops/hsa-extract.ldif", INTYGSGW_SOURCE_DIR);
        copy(src, ldif);
        write_text(grants, "[SE2321000016-7P3K]\nprovider SE2321000016-0001\n");
        kill(gw.pid, SIGHUP);
        cr_assert(log_has("\"event\":\"reload_failed\"", 2), "broken grants accepted");
        b = post(c, "reload-3");
        cr_assert(strstr(b, "resultCode>OK<"), "%s", b);
        free(b);

        /* Good files: swapped in, on the same open connection. Region A loses its grant. */
        write_text(grants, "[SE2321000131-S0AB]\nprovider = SE2321000131-0001\n");
        kill(gw.pid, SIGHUP);
        cr_assert(log_has("\"event\":\"reload_done\"", 1), "no reload_done");
        b = post(c, "reload-4");
        cr_assert(strstr(b, "Not authorised") && strstr(b, "no grants"), "%s", b);
        free(b);
        tlsc_free(c);
        cr_assert_eq(gw_stop(&gw), 0);
}
