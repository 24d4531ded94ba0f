/*
 * gw.c - start/stop the gateway and the FK simulator as real processes for integration tests.
 * Test process only; every child is reaped by its _stop.
 */
#include "gw.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "pki.h"

#define START_WAIT_MS 15000
#define STOP_WAIT_MS  15000

static void sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

char *test_read_file(const char *rel, size_t *len)
{
        char path[1024];
        if (rel[0] == '/')
                snprintf(path, sizeof path, "%s", rel);
        else
                snprintf(path, sizeof path, "%s/tests/data/%s", INTYGSGW_SOURCE_DIR, rel);
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        if (buf) {
                buf[n] = '\0';
                if (len)
                        *len = (size_t)n;
        }
        return buf;
}

char *test_soap_wrap(const char *bare, size_t len, size_t *out_len)
{
        /* Drop the XML declaration of the bare element. */
        const char *p = bare;
        if (!strncmp(p, "<?xml", 5)) {
                const char *e = strstr(p, "?>");
                if (e) {
                        len -= (size_t)(e + 2 - p);
                        p = e + 2;
                }
        }
        static const char head[] =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
            "xmlns:itr=\"urn:riv:itintegration:registry:1\">"
            "<soapenv:Header><itr:LogicalAddress>SE2321000016-GW01</itr:LogicalAddress>"
            "</soapenv:Header><soapenv:Body>";
        static const char tail[] = "</soapenv:Body></soapenv:Envelope>\n";
        size_t n = sizeof head - 1 + len + sizeof tail - 1;
        char *out = malloc(n + 1);
        if (!out)
                return NULL;
        memcpy(out, head, sizeof head - 1);
        memcpy(out + sizeof head - 1, p, len);
        memcpy(out + sizeof head - 1 + len, tail, sizeof tail);
        *out_len = n;
        return out;
}

static char *replace_all(char *s, const char *key, const char *val)
{
        size_t kl = strlen(key), vl = strlen(val);
        for (;;) {
                char *at = strstr(s, key);
                if (!at)
                        return s;
                size_t sl = strlen(s);
                char *n = malloc(sl - kl + vl + 1);
                if (!n) {
                        free(s);
                        return NULL;
                }
                size_t pre = (size_t)(at - s);
                memcpy(n, s, pre);
                memcpy(n + pre, val, vl);
                memcpy(n + pre + vl, at + kl, sl - pre - kl + 1);
                free(s);
                s = n;
        }
}

char *test_make_intyg(const char *id, const char *person, const char *unit, const char *provider,
                      size_t *len)
{
        char *s = test_read_file("templates/lisjp-v1.xml.in", NULL);
        const char *keys[] = {"@ID@",     "@PERSON@", "@UNIT@",  "@PROVIDER@",
                              "@SIGNED@", "@DIAG@",   "@START@", "@END@"};
        const char *vals[] = {id,           person, unit,         provider,
                              "2026-10-01", "S47",  "2026-10-01", "2026-10-20"};
        for (size_t i = 0; s && i < sizeof keys / sizeof keys[0]; i++)
                s = replace_all(s, keys[i], vals[i]);
        if (s && len)
                *len = strlen(s);
        return s;
}

static int read_ports(const char *file, int *a, int *b)
{
        FILE *f = fopen(file, "r");
        if (!f)
                return -1;
        int n = fscanf(f, "%d %d", a, b);
        fclose(f);
        return n >= 1 ? 0 : -1;
}

static int wait_port_file(pid_t pid, const char *file, int *a, int *b)
{
        for (int waited = 0; waited < START_WAIT_MS; waited += 20) {
                if (read_ports(file, a, b) == 0)
                        return 0;
                int st;
                pid_t w = waitpid(pid, &st, WNOHANG);
                if (w == pid || (w < 0 && errno == ECHILD))
                        return -1; /* died (or already reaped) */
                sleep_ms(20);
        }
        return -1;
}

static pid_t spawn(char *const argv[], const char *log)
{
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
                if (fd >= 0) {
                        dup2(fd, 2);
                        dup2(fd, 1);
                        close(fd);
                }
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0)
                        dup2(devnull, 0);
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static int stop_pid(pid_t *pidp)
{
        pid_t pid = *pidp;
        if (pid <= 0)
                return 0;
        kill(pid, SIGTERM);
        int st = 0;
        for (int waited = 0; waited < STOP_WAIT_MS; waited += 20) {
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        *pidp = 0;
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                }
                sleep_ms(20);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        *pidp = 0;
        return -1;
}

int fksim_start(struct fksim *f, const char *const *flags)
{
        memset(f, 0, sizeof f->dir);
        snprintf(f->dir, sizeof f->dir, "/tmp/intygsgw-fksim-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        const char *pki = test_pki_dir();
        if (!pki)
                return -1;
        char bin[512], cert[512], key[512], ca[512], portf[300], ctlf[300], log[300];
        snprintf(bin, sizeof bin, "%s/fk-sim", INTYGSGW_BIN_DIR);
        snprintf(cert, sizeof cert, "%s/fk.crt", pki);
        snprintf(key, sizeof key, "%s/fk.key", pki);
        snprintf(ca, sizeof ca, "%s/ca.crt", pki);
        snprintf(portf, sizeof portf, "%s/port", f->dir);
        snprintf(ctlf, sizeof ctlf, "%s/control-port", f->dir);
        snprintf(log, sizeof log, "%s/fk-sim.log", f->dir);
        char *argv[64];
        int n = 0;
        argv[n++] = bin;
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--control";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--cert";
        argv[n++] = cert;
        argv[n++] = "--key";
        argv[n++] = key;
        argv[n++] = "--ca";
        argv[n++] = ca;
        argv[n++] = "--port-file";
        argv[n++] = portf;
        argv[n++] = "--control-port-file";
        argv[n++] = ctlf;
        for (size_t i = 0; flags && flags[i] && n < 62; i++)
                argv[n++] = (char *)flags[i];
        argv[n] = NULL;
        f->pid = spawn(argv, log);
        if (f->pid <= 0)
                return -1;
        int dummy;
        if (wait_port_file(f->pid, portf, &f->port, &dummy) != 0)
                return -1;
        if (wait_port_file(f->pid, ctlf, &f->control_port, &dummy) != 0)
                return -1;
        return 0;
}

void fksim_stop(struct fksim *f)
{
        stop_pid(&f->pid);
        if (f->dir[0]) {
                char cmd[400];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", f->dir);
                f->dir[0] = '\0';
        }
}

/* Minimal plain HTTP/1.0 client for the loopback control and admin listeners. */
static int http_plain(int port, const char *method, const char *path, const char *body, char **out)
{
        if (out)
                *out = NULL;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
                return 0;
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
                close(fd);
                return 0;
        }
        char req[2048];
        size_t bl = body ? strlen(body) : 0;
        int n = snprintf(req, sizeof req,
                         "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         method, path, bl, body ? body : "");
        if (write(fd, req, (size_t)n) != n) {
                close(fd);
                return 0;
        }
        size_t cap = 65536, len = 0;
        char *buf = malloc(cap);
        for (;;) {
                if (len + 4096 > cap) {
                        cap *= 2;
                        char *nb = realloc(buf, cap);
                        if (!nb)
                                break;
                        buf = nb;
                }
                ssize_t r = read(fd, buf + len, cap - len - 1);
                if (r <= 0)
                        break;
                len += (size_t)r;
        }
        close(fd);
        buf[len] = '\0';
        int status = 0;
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                status = 0;
        char *b = strstr(buf, "\r\n\r\n");
        if (out && b)
                *out = strdup(b + 4);
        free(buf);
        return status;
}

int fksim_control(const struct fksim *f, const char *form)
{
        int st = http_plain(f->control_port, "POST", "/_sim/config", form, NULL);
        return st == 200 ? 0 : -1;
}

char *fksim_get(const struct fksim *f, const char *path)
{
        char *body = NULL;
        int st = http_plain(f->control_port, "GET", path, NULL, &body);
        if (st != 200) {
                free(body);
                return NULL;
        }
        return body;
}

int test_admin_get(int port, const char *path, char **body)
{
        return http_plain(port, "GET", path, NULL, body);
}

int test_admin_post(int port, const char *path, char **body)
{
        return http_plain(port, "POST", path, "", body);
}

struct kv {
        char section[32];
        char key[64];
        char value[512];
};

static void set_kv(struct kv *kvs, size_t *n, const char *section, const char *key,
                   const char *value)
{
        for (size_t i = 0; i < *n; i++) {
                if (!strcmp(kvs[i].section, section) && !strcmp(kvs[i].key, key)) {
                        snprintf(kvs[i].value, sizeof kvs[i].value, "%s", value);
                        return;
                }
        }
        snprintf(kvs[*n].section, sizeof kvs[*n].section, "%s", section);
        snprintf(kvs[*n].key, sizeof kvs[*n].key, "%s", key);
        snprintf(kvs[*n].value, sizeof kvs[*n].value, "%s", value);
        (*n)++;
}

static int launch(struct gw *g)
{
        char bin[512], portf[300];
        snprintf(bin, sizeof bin, "%s/intygsgw", INTYGSGW_BIN_DIR);
        snprintf(portf, sizeof portf, "%s/ports", g->dir);
        unlink(portf);
        char *argv[] = {bin,   "serve",     "-c",        g->config, "--port-file",
                        portf, "--node-id", "test-node", NULL};
        g->pid = spawn(argv, g->log);
        if (g->pid <= 0)
                return -1;
        if (wait_port_file(g->pid, portf, &g->port, &g->admin_port) != 0) {
                stop_pid(&g->pid);
                return -1;
        }
        return 0;
}

int gw_start(struct gw *g, const struct fksim *fk, const char *const *overrides)
{
        memset(g, 0, sizeof *g);
        snprintf(g->dir, sizeof g->dir, "/tmp/intygsgw-gw-XXXXXX");
        if (!mkdtemp(g->dir))
                return -1;
        const char *pki = test_pki_dir();
        if (!pki)
                return -1;
        static struct kv kvs[96];
        size_t n = 0;
        char v[512];
        const char *src = INTYGSGW_SOURCE_DIR;
        set_kv(kvs, &n, "server", "listen", "127.0.0.1:0");
        snprintf(v, sizeof v, "%s/gateway.crt", pki);
        set_kv(kvs, &n, "server", "tls_cert", v);
        snprintf(v, sizeof v, "%s/gateway.key", pki);
        set_kv(kvs, &n, "server", "tls_key", v);
        snprintf(v, sizeof v, "%s/ca.crt", pki);
        set_kv(kvs, &n, "server", "tls_ca", v);
        snprintf(v, sizeof v, "%s/crl.pem", pki);
        set_kv(kvs, &n, "server", "tls_crl", v);
        set_kv(kvs, &n, "server", "workers", "2");
        set_kv(kvs, &n, "admin", "listen", "127.0.0.1:0");
        snprintf(v, sizeof v, "%s/../dashboard", INTYGSGW_BIN_DIR);
        set_kv(kvs, &n, "admin", "dashboard_dir", v);
        snprintf(v, sizeof v, "%s/schemas", src);
        set_kv(kvs, &n, "validation", "schema_dir", v);
        set_kv(kvs, &n, "validation", "person_id_check", "strict");
        snprintf(v, sizeof v, "%s/outbox.db", g->dir);
        set_kv(kvs, &n, "outbox", "path", v);
        snprintf(v, sizeof v, "%s/ops/hsa-extract.ldif", src);
        set_kv(kvs, &n, "hsa", "ldif", v);
        snprintf(v, sizeof v, "%s/ops/unit-mapping.csv", src);
        set_kv(kvs, &n, "hsa", "mapping", v);
        set_kv(kvs, &n, "hsa", "level", "businessClassificationCode=1100,1102,1500");
        snprintf(v, sizeof v, "%s/ops/grants.ini", src);
        set_kv(kvs, &n, "auth", "grants", v);
        if (fk) {
                set_kv(kvs, &n, "forward", "enabled", "true");
                snprintf(v, sizeof v,
                         "https://127.0.0.1:%d/clinicalprocess/healthcond/certificate/"
                         "RegisterCertificate/3/rivtabp21",
                         fk->port);
                set_kv(kvs, &n, "forward", "url", v);
                snprintf(v, sizeof v, "%s/ca.crt", pki);
                set_kv(kvs, &n, "forward", "ca", v);
                snprintf(v, sizeof v, "%s/gateway-client.crt", pki);
                set_kv(kvs, &n, "forward", "client_cert", v);
                snprintf(v, sizeof v, "%s/gateway-client.key", pki);
                set_kv(kvs, &n, "forward", "client_key", v);
                set_kv(kvs, &n, "forward", "retry_base_ms", "50");
                set_kv(kvs, &n, "forward", "retry_max_ms", "1000");
                set_kv(kvs, &n, "forward", "breaker_open_ms", "200");
        } else {
                set_kv(kvs, &n, "forward", "enabled", "false");
        }
        set_kv(kvs, &n, "log", "level", "info");
        for (size_t i = 0; overrides && overrides[i]; i++) {
                char sec[32], key[64];
                const char *dot = strchr(overrides[i], '.');
                const char *eq = strchr(overrides[i], '=');
                if (!dot || !eq || dot > eq)
                        return -1;
                snprintf(sec, sizeof sec, "%.*s", (int)(dot - overrides[i]), overrides[i]);
                snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
                set_kv(kvs, &n, sec, key, eq + 1);
        }
        snprintf(g->config, sizeof g->config, "%s/intygsgw.ini", g->dir);
        snprintf(g->log, sizeof g->log, "%s/intygsgw.log", g->dir);
        FILE *f = fopen(g->config, "w");
        if (!f)
                return -1;
        const char *sections[] = {"server", "admin", "validation", "outbox", "forward",
                                  "hsa",    "auth",  "stats",      "log"};
        for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
                fprintf(f, "[%s]\n", sections[s]);
                for (size_t i = 0; i < n; i++)
                        if (!strcmp(kvs[i].section, sections[s]))
                                fprintf(f, "%s = %s\n", kvs[i].key, kvs[i].value);
        }
        fclose(f);
        return launch(g);
}

int gw_restart(struct gw *g)
{
        return launch(g);
}

int gw_stop(struct gw *g)
{
        return stop_pid(&g->pid);
}

void gw_kill(struct gw *g)
{
        if (g->pid > 0) {
                kill(g->pid, SIGKILL);
                int st;
                waitpid(g->pid, &st, 0);
                g->pid = 0;
        }
}

void gw_cleanup(struct gw *g)
{
        if (g->pid > 0)
                gw_stop(g);
        if (g->dir[0] && !getenv("INTYGSGW_KEEP_TEST_DIRS")) {
                char cmd[400];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", g->dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", g->dir);
        }
        g->dir[0] = '\0';
}
