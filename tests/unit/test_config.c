/*
 * test_config.c - the one key table: defaults, every kind of bad value with its file:line,
 * secrets with loose modes refused, paths resolved against the file, and the shipped example
 * and the README naming every key.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char dir[64];

static void setup(void)
{
        snprintf(dir, sizeof dir, "/tmp/intygsgw-cfgtest-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        cr_assert_eq(system(cmd), 0);
}

static const char *write_file(const char *name, const char *text, int mode)
{
        static char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
        chmod(path, (mode_t)mode);
        return path;
}

/* Load and capture the error text. */
static struct config *load(const char *path, bool check, char *errs, size_t cap, int *n)
{
        FILE *ef = fmemopen(errs, cap, "w");
        struct config *c = config_load(path, check, ef, n);
        fclose(ef);
        return c;
}

TestSuite(config, .init = setup, .fini = teardown);

Test(config, defaults_and_minimal_file)
{
        const char *p = write_file("ok.ini",
                                   "[server]\ntls_cert = a.crt\ntls_key = a.key\ntls_ca = ca.crt\n"
                                   "[forward]\nenabled = false\n",
                                   0600);
        char errs[2048] = "";
        int n = -1;
        struct config *c = load(p, false, errs, sizeof errs, &n);
        cr_assert_not_null(c, "%s", errs);
        cr_assert_eq(n, 0);
        cr_assert_str_eq(c->listen, "127.0.0.1:8443");
        cr_assert_eq(c->max_connections, 2000);
        cr_assert_eq(c->max_body_bytes, 1048576);
        cr_assert_str_eq(c->fk_logical_address, "2021005521");
        cr_assert_eq(c->retry_horizon_s, 259200);
        cr_assert_eq(c->person_id_check, PERSON_ID_CHECK_STRICT);
        cr_assert_eq(c->unknown_unit, POLICY_ACCEPT);
        /* Relative paths resolve against the file's directory. */
        char want[256];
        snprintf(want, sizeof want, "%s/a.crt", dir);
        cr_assert_str_eq(c->tls_cert, want);
        config_free(c);
}

Test(config, every_problem_with_its_line)
{
        const char *p = write_file("bad.ini",
                                   "[server]\n"
                                   "listen = localhost\n"  /* 2: no port */
                                   "max_connections = 0\n" /* 3: below min */
                                   "max_body_bytes = 1k\n" /* 4: not an integer */
                                   "unknown_key = 1\n"     /* 5 */
                                   "workers = 4\n"
                                   "workers = 5\n" /* 7: twice */
                                   "[validation]\n"
                                   "person_id_check = lenient\n" /* 9 */
                                   "[nosuch]\n"
                                   "x = 1\n" /* 11 */
                                   "[forward]\n"
                                   "retry_base_ms = 5000\nretry_max_ms = 100\n",
                                   0600);
        char errs[4096] = "";
        int n = 0;
        struct config *c = load(p, false, errs, sizeof errs, &n);
        cr_assert_null(c);
        cr_assert(strstr(errs, "bad.ini:2: [server] listen: expected host:port"), "%s", errs);
        cr_assert(strstr(errs, "bad.ini:3: [server] max_connections: out of range"), "%s", errs);
        cr_assert(strstr(errs, "bad.ini:4: [server] max_body_bytes: expected an integer"));
        cr_assert(strstr(errs, "bad.ini:5: [server] unknown_key: unknown key"));
        cr_assert(strstr(errs, "bad.ini:7: [server] workers: set twice"));
        cr_assert(strstr(errs, "bad.ini:9: [validation] person_id_check: expected strict or warn"));
        cr_assert(strstr(errs, "bad.ini:11: [nosuch] x: unknown key"));
        cr_assert(strstr(errs, "[forward] retry_base_ms: larger than retry_max_ms"));
        cr_assert(strstr(errs, "[server] tls_cert: required"));
        cr_assert(strstr(errs, "[forward] ca: forwarding is enabled"));
        cr_assert_geq(n, 10, "%d problems: %s", n, errs);
}

Test(config, limits_on_both_sides)
{
        char text[512], errs[2048];
        int n;
        const char *base = "[server]\ntls_cert = a\ntls_key = b\ntls_ca = c\n%s\n"
                           "[forward]\nenabled = false\n";
        struct {
                const char *line;
                bool ok;
        } cases[] = {
            {"max_header_bytes = 512", true},
            {"max_header_bytes = 511", false},
            {"max_header_bytes = 1048576", true},
            {"max_header_bytes = 1048577", false},
            {"max_body_bytes = 1024", true},
            {"max_body_bytes = 1023", false},
            {"max_body_bytes = 67108864", true},
            {"max_body_bytes = 67108865", false},
            {"header_timeout_ms = 100", true},
            {"header_timeout_ms = 99", false},
            {"max_connections = 100000", true},
            {"max_connections = 100001", false},
            {"workers = 128", true},
            {"workers = 129", false},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                snprintf(text, sizeof text, base, cases[i].line);
                const char *p = write_file("lim.ini", text, 0600);
                errs[0] = '\0';
                struct config *c = load(p, false, errs, sizeof errs, &n);
                cr_assert_eq(c != NULL, cases[i].ok, "%s: %s", cases[i].line, errs);
                config_free(c);
        }
}

Test(config, files_checked_and_loose_key_refused)
{
        write_file("a.crt", "x", 0644);
        write_file("a.key", "x", 0644); /* readable by others */
        write_file("ca.crt", "x", 0644);
        char p[256];
        snprintf(p, sizeof p, "%s",
                 write_file("f.ini",
                            "[server]\ntls_cert = a.crt\ntls_key = a.key\ntls_ca = ca.crt\n"
                            "tls_crl = missing.pem\n[forward]\nenabled = false\n",
                            0600));
        char errs[2048] = "";
        int n = 0;
        struct config *c = load(p, true, errs, sizeof errs, &n);
        cr_assert_null(c);
        cr_assert(strstr(errs, "[server] tls_key:") && strstr(errs, "chmod 600"), "%s", errs);
        cr_assert(strstr(errs, "[server] tls_crl:") && strstr(errs, "No such file"), "%s", errs);
        cr_assert_eq(n, 2, "%s", errs);
        char kp[256];
        snprintf(kp, sizeof kp, "%s/a.key", dir);
        chmod(kp, 0600);
        snprintf(kp, sizeof kp, "%s/missing.pem", dir);
        write_file("missing.pem", "x", 0644);
        c = load(p, true, errs, sizeof errs, &n);
        cr_assert_not_null(c, "%s", errs);
        config_free(c);
}

static char *slurp(const char *rel)
{
        char path[512];
        snprintf(path, sizeof path, "%s/%s", INTYGSGW_SOURCE_DIR, rel);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "%s", path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *b = malloc((size_t)n + 1);
        cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
        b[n] = '\0';
        fclose(f);
        return b;
}

Test(config, example_and_readme_name_every_key)
{
        char *ex = slurp("ops/intygsgw.example.ini");
        char *readme = slurp("README.md");
        for (size_t i = 0; i < config_key_count(); i++) {
                const char *sec, *name;
                config_key_name(i, &sec, &name);
                /* The example: "[sec]" then "name =" or "; name =" inside it. */
                char hdr[64];
                snprintf(hdr, sizeof hdr, "[%s]", sec);
                const char *s = strstr(ex, hdr);
                cr_assert_not_null(s, "example has no %s", hdr);
                const char *next = strstr(s + 1, "\n[");
                char k1[96], k2[96];
                snprintf(k1, sizeof k1, "\n%s = ", name);
                snprintf(k2, sizeof k2, "\n; %s = ", name);
                const char *f1 = strstr(s, k1), *f2 = strstr(s, k2);
                bool in = (f1 && (!next || f1 < next)) || (f2 && (!next || f2 < next));
                cr_assert(in, "ops/intygsgw.example.ini: [%s] %s missing", sec, name);
                /* The README's table: `sec.name`. */
                char dotted[96];
                snprintf(dotted, sizeof dotted, "%s.%s`", sec, name);
                cr_assert_not_null(strstr(readme, dotted), "README.md: %s.%s missing", sec, name);
        }
        free(ex);
        free(readme);
}

Test(config, example_loads)
{
        char path[512], errs[4096] = "";
        snprintf(path, sizeof path, "%s/ops/intygsgw.example.ini", INTYGSGW_SOURCE_DIR);
        int n = 0;
        struct config *c = load(path, false, errs, sizeof errs, &n);
        cr_assert_not_null(c, "%s", errs);
        config_free(c);
}
