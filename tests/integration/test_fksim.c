/*
 * test_fksim.c - the FK simulator driven through tests/support/tlsclient: OK / INFO,
 * keep-alive, revocations, rejections, cut answers, down and up, handshake refusals with
 * their reasons, and a clean exit. Each test starts its own fk-sim child on port 0 (port
 * files in a temp dir) and stops it (SIGTERM, bounded waitpid, SIGKILL as last resort).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "pki.h"
#include "tlsclient.h"

extern char **environ;

#define REGISTER_PATH "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"
#define REVOKE_PATH   "/clinicalprocess/healthcond/certificate/RevokeCertificate/2/rivtabp21"
#define SOAP_ACTION                                                                                \
        "urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3:"           \
        "RegisterCertificate"

struct simproc {
        pid_t pid;
        int port;
        int cport;
        char dir[128];
};

/* fixture state of the one test running in this process */
static struct simproc sim;
static char ca[512], fk_crt[512], fk_key[512], ra_crt[512], ra_key[512];

static void sleep_ms(int ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static int read_int_file(const char *path)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        int v = -1;
        if (fscanf(f, "%d", &v) != 1)
                v = -1;
        fclose(f);
        return v;
}

static void pki_paths(void)
{
        cr_assert_not_null(test_pki_dir(), "no test PKI");
        cr_assert_eq(test_pki_path(ca, sizeof ca, "ca.crt"), 0);
        cr_assert_eq(test_pki_path(fk_crt, sizeof fk_crt, "fk.crt"), 0);
        cr_assert_eq(test_pki_path(fk_key, sizeof fk_key, "fk.key"), 0);
        cr_assert_eq(test_pki_path(ra_crt, sizeof ra_crt, "region-a.crt"), 0);
        cr_assert_eq(test_pki_path(ra_key, sizeof ra_key, "region-a.key"), 0);
}

/* Start fk-sim with extra flags (NULL-terminated); waits (bounded) for its port files. */
static void sim_start(const char *const *extra)
{
        pki_paths();
        snprintf(sim.dir, sizeof sim.dir, "/tmp/intygsgw-fksim-XXXXXX");
        cr_assert_not_null(mkdtemp(sim.dir));
        char port_file[256], cport_file[256], log_file[256];
        snprintf(port_file, sizeof port_file, "%s/port", sim.dir);
        snprintf(cport_file, sizeof cport_file, "%s/cport", sim.dir);
        snprintf(log_file, sizeof log_file, "%s/sim.log", sim.dir);
        const char *argv[40] = {INTYGSGW_BIN_DIR "/fk-sim",
                                "--cert",
                                fk_crt,
                                "--key",
                                fk_key,
                                "--ca",
                                ca,
                                "--listen",
                                "127.0.0.1:0",
                                "--control",
                                "127.0.0.1:0",
                                "--port-file",
                                port_file,
                                "--control-port-file",
                                cport_file};
        int n = 15;
        for (int i = 0; extra && extra[i] && n < 39; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_file, O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        int rc = posix_spawn(&sim.pid, argv[0], &fa, NULL, (char *const *)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        cr_assert_eq(rc, 0, "spawn fk-sim: %s", strerror(rc));
        for (int i = 0; i < 200; i++) {
                sim.port = read_int_file(port_file);
                sim.cport = read_int_file(cport_file);
                if (sim.port > 0 && sim.cport > 0)
                        return;
                if (waitpid(sim.pid, NULL, WNOHANG) == sim.pid) {
                        sim.pid = 0;
                        cr_assert_fail("fk-sim exited at start (log in %s)", log_file);
                }
                sleep_ms(50);
        }
        cr_assert_fail("fk-sim wrote no port files in 10 s");
}

/* SIGTERM, wait up to 10 s; returns the exit status (or -1 if it had to be killed). */
static int sim_stop(void)
{
        if (sim.pid <= 0)
                return -1;
        kill(sim.pid, SIGTERM);
        int st = 0;
        for (int i = 0; i < 200; i++) {
                pid_t r = waitpid(sim.pid, &st, WNOHANG);
                if (r == sim.pid) {
                        sim.pid = 0;
                        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
                }
                sleep_ms(50);
        }
        kill(sim.pid, SIGKILL);
        waitpid(sim.pid, &st, 0);
        sim.pid = 0;
        return -1;
}

static void teardown(void)
{
        sim_stop();
        if (sim.dir[0]) {
                char path[256];
                const char *files[] = {"port", "cport", "sim.log"};
                for (size_t i = 0; i < 3; i++) {
                        snprintf(path, sizeof path, "%s/%s", sim.dir, files[i]);
                        unlink(path);
                }
                rmdir(sim.dir);
        }
}

static void setup_plain(void)
{
        sim_start(NULL);
}

/* The sample LISJP certificate in a SOAP envelope, with its intygs-id extension set to id. */
static char *envelope(const char *sample, const char *id, size_t *len)
{
        char path[512];
        snprintf(path, sizeof path, "%s/tests/data/lisjp-v1/%s", INTYGSGW_SOURCE_DIR, sample);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        static char raw[256 * 1024];
        size_t n = fread(raw, 1, sizeof raw - 1, f);
        fclose(f);
        raw[n] = '\0';
        char *body = raw;
        if (strncmp(body, "<?xml", 5) == 0)
                body = strstr(body, "?>") + 2;
        const char *key = "<ns3:extension>";
        char *ext = strstr(body, key);
        cr_assert_not_null(ext);
        char *ext_end = strchr(ext + strlen(key), '<');
        const char *pre = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                          "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
                          "envelope/\" xmlns:add=\"urn:riv:itintegration:registry:1\">"
                          "<soapenv:Header><add:LogicalAddress>2021005521</add:LogicalAddress>"
                          "</soapenv:Header><soapenv:Body>";
        const char *post = "</soapenv:Body></soapenv:Envelope>\n";
        size_t cap = strlen(pre) + n + strlen(id) + strlen(post) + 1;
        char *out = malloc(cap);
        cr_assert_not_null(out);
        int w = snprintf(out, cap, "%s%.*s%s%s%s", pre, (int)(ext + strlen(key) - body), body, id,
                         ext_end, post);
        *len = (size_t)w;
        return out;
}

static struct tls_client_opts client_opts(void)
{
        struct tls_client_opts o = {.ca = ca, .cert = ra_crt, .key = ra_key, .timeout_ms = 5000};
        return o;
}

static int post_register(const char *id, struct http_response *r, char *err, size_t errlen)
{
        size_t len;
        char *body = envelope("pass-minimal.xml", id, &len);
        struct tls_client_opts o = client_opts();
        int rc = tlsc_request("127.0.0.1", sim.port, &o, "POST", REGISTER_PATH,
                              "text/xml; charset=utf-8", SOAP_ACTION, body, len, r, err, errlen);
        free(body);
        return rc;
}

static void get_json(const char *path, char *out, size_t cap)
{
        struct tls_client_opts o = client_opts();
        struct http_response r;
        char err[256];
        int rc = tlsc_request("127.0.0.1", sim.port, &o, "GET", path, NULL, NULL, NULL, 0, &r, err,
                              sizeof err);
        cr_assert_eq(rc, 0, "GET %s: %s", path, err);
        cr_assert_eq(r.status, 200);
        cr_assert_lt(r.body_len, cap);
        snprintf(out, cap, "%s", r.body);
        out[strcspn(out, "\n")] = '\0';
        http_response_clear(&r);
}

/* Plain HTTP to the control listener: POST body to path, returns the status. */
static int control_post(const char *path, const char *body)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sim.cport)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        char req[1024];
        int n = snprintf(req, sizeof req,
                         "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s",
                         path, strlen(body), body);
        cr_assert_eq(write(fd, req, (size_t)n), n);
        char resp[4096];
        size_t got = 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (got < sizeof resp - 1 && poll(&p, 1, 5000) == 1) {
                ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
                if (r <= 0)
                        break;
                got += (size_t)r;
        }
        close(fd);
        resp[got] = '\0';
        int status = 0;
        cr_assert_eq(sscanf(resp, "HTTP/1.1 %d", &status), 1, "control answer: %s", resp);
        return status;
}

TestSuite(fksim, .init = setup_plain, .fini = teardown, .timeout = 60);

Test(fksim, register_ok_then_info_and_counted)
{
        struct http_response r;
        char err[256];
        cr_assert_eq(post_register("fksim-a", &r, err, sizeof err), 0, "%s", err);
        cr_assert_eq(r.status, 200);
        cr_assert_not_null(strstr(r.body, "<rsp:RegisterCertificateResponse xmlns:rsp=\"urn:riv:"
                                          "clinicalprocess:healthcond:certificate:"
                                          "RegisterCertificateResponder:3\""));
        cr_assert_not_null(strstr(r.body, "<rsp:result><core:resultCode>OK</core:resultCode>"
                                          "</rsp:result>"));
        char ct[64];
        cr_assert_eq(http_response_header(&r, "content-type", ct, sizeof ct), 0);
        cr_assert_str_eq(ct, "text/xml; charset=utf-8");
        http_response_clear(&r);

        cr_assert_eq(post_register("fksim-a", &r, err, sizeof err), 0, "%s", err);
        cr_assert_not_null(strstr(r.body, "<core:resultCode>INFO</core:resultCode>"
                                          "<core:resultText>Certificate already exists"
                                          "</core:resultText>"));
        http_response_clear(&r);
        cr_assert_eq(post_register("fksim-b", &r, err, sizeof err), 0, "%s", err);
        cr_assert_not_null(strstr(r.body, "<core:resultCode>OK</core:resultCode>"));
        http_response_clear(&r);

        char json[512];
        get_json("/_sim/received", json, sizeof json);
        cr_assert_str_eq(json, "{\"fksim-a\":2,\"fksim-b\":1}");
        get_json("/_sim/revoked", json, sizeof json);
        cr_assert_str_eq(json, "{}");
        get_json("/_sim/callers", json, sizeof json);
        cr_assert_str_eq(json, "{\"SE2321000016-7P3K\":3}");
        get_json("/_sim/logical-addresses", json, sizeof json);
        cr_assert_str_eq(json, "{\"2021005521\":3}");
        cr_assert_eq(sim_stop(), 0, "fk-sim did not exit 0 on SIGTERM");
}

Test(fksim, keep_alive_serves_many_requests_on_one_connection)
{
        struct tls_client_opts o = client_opts();
        struct tlsc *c;
        char err[256];
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), 0, "%s", err);
        for (int i = 0; i < 20; i++) {
                char id[32];
                snprintf(id, sizeof id, "ka-%d", i % 10);
                size_t len;
                char *body = envelope("pass-minimal.xml", id, &len);
                char head[256];
                int hn = snprintf(head, sizeof head,
                                  "POST " REGISTER_PATH " HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Type: text/xml\r\nContent-Length: %zu\r\n\r\n",
                                  len);
                cr_assert_eq(tlsc_send(c, head, (size_t)hn), 0, "%s", tlsc_error(c));
                cr_assert_eq(tlsc_send(c, body, len), 0, "%s", tlsc_error(c));
                free(body);
                struct http_response r;
                cr_assert_eq(tlsc_read_response(c, &r, 5000), 0, "%s", tlsc_error(c));
                cr_assert_eq(r.status, 200);
                cr_assert_not_null(
                    strstr(r.body, i < 10 ? "<core:resultCode>OK<" : "<core:resultCode>INFO<"));
                http_response_clear(&r);
        }
        /* still open: nothing arrives, the peer does not close */
        cr_assert_eq(tlsc_read_closed(c, 200), 0);
        tlsc_free(c);
        char json[2048];
        get_json("/_sim/stats", json, sizeof json);
        cr_assert_not_null(strstr(json, "\"connections\":2,"), "%s", json); /* ours + GET */
        cr_assert_not_null(strstr(json, "\"ok\":10,\"info\":10,"), "%s", json);
}

Test(fksim, pipelined_requests_answered_in_order)
{
        struct tls_client_opts o = client_opts();
        struct tlsc *c;
        char err[256];
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), 0, "%s", err);
        const char *two = "GET /_sim/config HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /_sim/nope HTTP/1.1\r\nHost: x\r\n\r\n";
        cr_assert_eq(tlsc_send(c, two, strlen(two)), 0);
        struct http_response r;
        cr_assert_eq(tlsc_read_response(c, &r, 5000), 0, "%s", tlsc_error(c));
        cr_assert_eq(r.status, 200);
        cr_assert_not_null(strstr(r.body, "\"down\":0"));
        http_response_clear(&r);
        cr_assert_eq(tlsc_read_response(c, &r, 5000), 0, "%s", tlsc_error(c));
        cr_assert_eq(r.status, 404);
        http_response_clear(&r);
        tlsc_free(c);
}

Test(fksim, revoke_recorded_separately)
{
        char path[512];
        snprintf(path, sizeof path, "%s/tests/data/lisjp-v1/revokerequest.xml",
                 INTYGSGW_SOURCE_DIR);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f);
        char body[16384];
        size_t n = fread(body, 1, sizeof body, f);
        fclose(f);
        struct tls_client_opts o = client_opts();
        struct http_response r;
        char err[256];
        for (int i = 0; i < 2; i++) {
                cr_assert_eq(tlsc_request("127.0.0.1", sim.port, &o, "POST", REVOKE_PATH,
                                          "text/xml", NULL, body, n, &r, err, sizeof err),
                             0, "%s", err);
                cr_assert_not_null(strstr(r.body, "<rsp:RevokeCertificateResponse"));
                cr_assert_not_null(
                    strstr(r.body, i == 0 ? "<core:resultCode>OK<" : "<core:resultCode>INFO<"));
                http_response_clear(&r);
        }
        char json[256];
        get_json("/_sim/revoked", json, sizeof json);
        cr_assert_str_eq(json, "{\"intygId\":2}");
        get_json("/_sim/received", json, sizeof json);
        cr_assert_str_eq(json, "{}");
}

Test(fksim, runtime_config_rejects_and_technical_errors)
{
        struct http_response r;
        char err[256];
        cr_assert_eq(control_post("/_sim/config", "reject_rate=1&reject_text=Fel+i+f%C3%A4lt"),
                     200);
        cr_assert_eq(post_register("cfg-1", &r, err, sizeof err), 0, "%s", err);
        cr_assert_not_null(strstr(r.body, "<core:resultCode>ERROR</core:resultCode>"
                                          "<core:resultText>Fel i fält</core:resultText>"
                                          "<core:errorId>VALIDATION_ERROR</core:errorId>"),
                           "%s", r.body);
        http_response_clear(&r);
        cr_assert_eq(control_post("/_sim/config", "reject_rate=0&technical_rate=1"), 200);
        cr_assert_eq(post_register("cfg-1", &r, err, sizeof err), 0, "%s", err);
        cr_assert_not_null(strstr(r.body, "<core:errorId>TECHNICAL_ERROR</core:errorId>"));
        http_response_clear(&r);
        cr_assert_eq(control_post("/_sim/config", "technical_rate=0&fail_500_rate=1"), 200);
        cr_assert_eq(post_register("cfg-1", &r, err, sizeof err), 0, "%s", err);
        cr_assert_eq(r.status, 500);
        cr_assert_not_null(strstr(r.body, "<soap:Fault><faultcode>soap:Server</faultcode>"));
        http_response_clear(&r);
        cr_assert_eq(control_post("/_sim/config", "fail_500_rate=0"), 200);
        cr_assert_eq(post_register("cfg-1", &r, err, sizeof err), 0, "%s", err);
        cr_assert_not_null(strstr(r.body, "<core:resultCode>OK<"), "first acceptance is OK");
        http_response_clear(&r);
        /* bad config changes nothing */
        cr_assert_eq(control_post("/_sim/config", "technical_rate=1&reject_rate=1.5"), 400);
        cr_assert_eq(control_post("/_sim/config", "bogus=1"), 400);
        char json[512];
        get_json("/_sim/config", json, sizeof json);
        cr_assert_not_null(strstr(json, "\"technical_rate\":0,"), "%s", json);
        get_json("/_sim/attempts", json, sizeof json);
        cr_assert_str_eq(json, "{\"cfg-1\":4}");
        get_json("/_sim/received", json, sizeof json);
        cr_assert_str_eq(json, "{\"cfg-1\":1}");
}

Test(fksim, rates_are_deterministic_for_a_seed)
{
        /* half the requests rejected, the same ones for the same seed */
        char pattern[2][41];
        for (int round = 0; round < 2; round++) {
                cr_assert_eq(control_post("/_sim/reset", ""), 200);
                cr_assert_eq(control_post("/_sim/config", "seed=42&reject_rate=0.5"), 200);
                for (int i = 0; i < 40; i++) {
                        struct http_response r;
                        char err[256], id[32];
                        snprintf(id, sizeof id, "seed-%d-%d", round, i);
                        cr_assert_eq(post_register(id, &r, err, sizeof err), 0, "%s", err);
                        pattern[round][i] = strstr(r.body, "VALIDATION_ERROR") ? 'R' : '.';
                        http_response_clear(&r);
                }
                pattern[round][40] = '\0';
        }
        cr_assert_str_eq(pattern[0], pattern[1]);
        int rejected = 0;
        for (int i = 0; i < 40; i++)
                rejected += pattern[0][i] == 'R';
        cr_assert(rejected > 5 && rejected < 35, "%d of 40 rejected", rejected);
}

Test(fksim, cut_answer_is_incomplete_but_processed)
{
        cr_assert_eq(control_post("/_sim/config", "cut_rate=1"), 200);
        struct http_response r;
        char err[256];
        cr_assert_eq(post_register("cut-1", &r, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "connection closed before a whole response"), "%s", err);
        cr_assert_eq(control_post("/_sim/config", "cut_rate=0"), 200);
        cr_assert_eq(post_register("cut-1", &r, err, sizeof err), 0, "%s", err);
        cr_assert_not_null(strstr(r.body, "<core:resultCode>INFO<"));
        http_response_clear(&r);
        char json[1024];
        get_json("/_sim/stats", json, sizeof json);
        cr_assert_not_null(strstr(json, "\"cuts\":1,"), "%s", json);
}

Test(fksim, down_resets_and_up_restores)
{
        struct tls_client_opts o = client_opts();
        struct tlsc *idle;
        char err[256];
        cr_assert_eq(tlsc_connect(&idle, "127.0.0.1", sim.port, &o, err, sizeof err), 0, "%s", err);
        cr_assert_eq(control_post("/_sim/config", "down=1"), 200);
        /* the existing connection is reset, new ones fail */
        cr_assert_eq(tlsc_read_closed(idle, 3000), 1);
        tlsc_free(idle);
        struct tlsc *c = NULL;
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), -1);
        cr_assert_null(c);
        cr_assert(strstr(err, "handshake") || strstr(err, "reset by peer"), "%s", err);
        cr_assert_eq(control_post("/_sim/config", "down=0"), 200);
        struct http_response r;
        cr_assert_eq(post_register("after-up", &r, err, sizeof err), 0, "%s", err);
        cr_assert_not_null(strstr(r.body, "<core:resultCode>OK<"));
        http_response_clear(&r);
}

Test(fksim, client_without_certificate_refused_at_handshake)
{
        struct tls_client_opts o = {.ca = ca, .timeout_ms = 5000, .confirm_ms = 3000};
        struct tlsc *c = NULL;
        char err[256] = "";
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "certificate required"), "%s", err);
        /* TLS 1.2: the refusal comes inside the handshake itself */
        o.max_version = TLS1_2_VERSION;
        o.confirm_ms = 0;
        err[0] = '\0';
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "handshake failure"), "%s", err);
        /* the convenience call reports it too */
        struct http_response r;
        o.max_version = 0;
        cr_assert_eq(tlsc_request("127.0.0.1", sim.port, &o, "GET", "/_sim/stats", NULL, NULL, NULL,
                                  0, &r, err, sizeof err),
                     -1);
        cr_assert_not_null(strstr(err, "certificate required"), "%s", err);
}

Test(fksim, foreign_client_certificate_refused)
{
        char fcrt[512], fkey[512];
        cr_assert_eq(test_pki_path(fcrt, sizeof fcrt, "foreign.crt"), 0);
        cr_assert_eq(test_pki_path(fkey, sizeof fkey, "foreign.key"), 0);
        struct tls_client_opts o = {.ca = ca, .cert = fcrt, .key = fkey, .confirm_ms = 3000};
        struct tlsc *c = NULL;
        char err[256];
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "unknown ca"), "%s", err);
}

Test(fksim, server_certificate_checked_by_the_client)
{
        char fca[512];
        cr_assert_eq(test_pki_path(fca, sizeof fca, "foreign-ca.crt"), 0);
        struct tls_client_opts o = {.ca = fca, .cert = ra_crt, .key = ra_key};
        struct tlsc *c = NULL;
        char err[256];
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "handshake: server certificate: "), "%s", err);
        /* right CA, name in the SAN: accepted by name too */
        o.ca = ca;
        cr_assert_eq(tlsc_connect(&c, "localhost", sim.port, &o, err, sizeof err), 0, "%s", err);
        cr_assert_str_eq(tlsc_version(c), "TLSv1.3");
        tlsc_free(c);
}

Test(fksim, hostile_requests_refused)
{
        struct tls_client_opts o = client_opts();
        struct http_response r;
        char err[256];
        const char *dtd = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>";
        cr_assert_eq(tlsc_request("127.0.0.1", sim.port, &o, "POST", REGISTER_PATH, "text/xml",
                                  NULL, dtd, strlen(dtd), &r, err, sizeof err),
                     0, "%s", err);
        cr_assert_eq(r.status, 500);
        cr_assert_not_null(strstr(r.body, "<faultcode>soap:Client</faultcode><faultstring>"
                                          "DOCTYPE refused</faultstring>"));
        http_response_clear(&r);
        /* an oversized body is refused from its Content-Length */
        struct tlsc *c;
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), 0, "%s", err);
        const char *big = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4194305\r\n\r\n";
        cr_assert_eq(tlsc_send(c, big, strlen(big)), 0);
        cr_assert_eq(tlsc_read_response(c, &r, 5000), 0, "%s", tlsc_error(c));
        cr_assert_eq(r.status, 413);
        http_response_clear(&r);
        cr_assert_eq(tlsc_read_closed(c, 3000), 1);
        tlsc_free(c);
        /* the body limit itself: 4 MiB exactly is read (and is not XML) */
        size_t n = 4 * 1024 * 1024;
        char *blob = malloc(n);
        cr_assert_not_null(blob);
        memset(blob, 'a', n);
        cr_assert_eq(tlsc_request("127.0.0.1", sim.port, &o, "POST", REGISTER_PATH, "text/xml",
                                  NULL, blob, n, &r, err, sizeof err),
                     0, "%s", err);
        free(blob);
        cr_assert_eq(r.status, 500);
        cr_assert_not_null(strstr(r.body, "not well-formed XML"));
        http_response_clear(&r);
        /* headers over the limit */
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), 0, "%s", err);
        char *hdr = malloc(20000);
        cr_assert_not_null(hdr);
        int hn = snprintf(hdr, 20000, "GET /_sim/stats HTTP/1.1\r\nX-Long: ");
        memset(hdr + hn, 'b', 17000);
        memcpy(hdr + hn + 17000, "\r\n\r\n", 4);
        cr_assert_eq(tlsc_send(c, hdr, (size_t)hn + 17004), 0);
        free(hdr);
        cr_assert_eq(tlsc_read_response(c, &r, 5000), 0, "%s", tlsc_error(c));
        cr_assert_eq(r.status, 431);
        http_response_clear(&r);
        tlsc_free(c);
        /* still serving */
        cr_assert_eq(post_register("still-up", &r, err, sizeof err), 0, "%s", err);
        cr_assert_eq(r.status, 200);
        http_response_clear(&r);
}

/* Simulators started with flags: a suite without a suite-wide fixture (Criterion runs a
 * suite's .init before a test's own, which would start two simulators). */
TestSuite(fksim_flags, .timeout = 60);

static void setup_slow(void)
{
        static const char *const extra[] = {"--slow-ms", "400", NULL};
        sim_start(extra);
}

Test(fksim_flags, slow_answers_time_out_the_reader, .init = setup_slow, .fini = teardown)
{
        struct tls_client_opts o = client_opts();
        struct tlsc *c;
        char err[256];
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), 0, "%s", err);
        size_t len;
        char *body = envelope("pass-minimal.xml", "slow-1", &len);
        char head[256];
        int hn = snprintf(head, sizeof head,
                          "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", len);
        cr_assert_eq(tlsc_send(c, head, (size_t)hn), 0);
        cr_assert_eq(tlsc_send(c, body, len), 0);
        free(body);
        struct http_response r;
        cr_assert_eq(tlsc_read_response(c, &r, 100), -1);
        cr_assert_not_null(strstr(tlsc_error(c), "timed out"), "%s", tlsc_error(c));
        /* the answer still comes, on the same connection */
        cr_assert_eq(tlsc_read_response(c, &r, 5000), 0, "%s", tlsc_error(c));
        cr_assert_not_null(strstr(r.body, "<core:resultCode>OK<"));
        http_response_clear(&r);
        tlsc_free(c);
}

static void setup_reject(void)
{
        static const char *const extra[] = {"--reject", "--reject-text", "Ogiltigt intyg", NULL};
        sim_start(extra);
}

Test(fksim_flags, reject_flag_at_start, .init = setup_reject, .fini = teardown)
{
        struct http_response r;
        char err[256];
        cr_assert_eq(post_register("rej-1", &r, err, sizeof err), 0, "%s", err);
        cr_assert_not_null(strstr(r.body, "<core:resultText>Ogiltigt intyg</core:resultText>"
                                          "<core:errorId>VALIDATION_ERROR</core:errorId>"));
        http_response_clear(&r);
}

static void setup_down(void)
{
        static const char *const extra[] = {"--down", NULL};
        sim_start(extra);
}

Test(fksim_flags, down_flag_at_start_refuses_until_control_says_up, .init = setup_down,
     .fini = teardown)
{
        struct http_response r;
        char err[256];
        cr_assert_eq(post_register("d-1", &r, err, sizeof err), -1);
        cr_assert_eq(control_post("/_sim/config", "down=0"), 200);
        cr_assert_eq(post_register("d-1", &r, err, sizeof err), 0, "%s", err);
        cr_assert_eq(r.status, 200);
        http_response_clear(&r);
        cr_assert_eq(sim_stop(), 0);
}

static void setup_crl(void)
{
        static char crl[512];
        pki_paths();
        cr_assert_eq(test_pki_path(crl, sizeof crl, "crl.pem"), 0);
        const char *const extra[] = {"--crl", crl, NULL};
        sim_start(extra);
}

Test(fksim_flags, crl_refuses_revoked_client, .init = setup_crl, .fini = teardown)
{
        char rcrt[512], rkey[512];
        cr_assert_eq(test_pki_path(rcrt, sizeof rcrt, "revoked.crt"), 0);
        cr_assert_eq(test_pki_path(rkey, sizeof rkey, "revoked.key"), 0);
        struct tls_client_opts o = {.ca = ca, .cert = rcrt, .key = rkey, .confirm_ms = 3000};
        struct tlsc *c = NULL;
        char err[256];
        cr_assert_eq(tlsc_connect(&c, "127.0.0.1", sim.port, &o, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "certificate revoked"), "%s", err);
        /* a good certificate still passes the CRL check */
        struct http_response r;
        cr_assert_eq(post_register("crl-ok", &r, err, sizeof err), 0, "%s", err);
        cr_assert_eq(r.status, 200);
        http_response_clear(&r);
}
