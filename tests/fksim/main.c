/*
 * main.c - fk-sim command line: flags, start-up (TLS context, listeners, port and ready
 * files), then waits for SIGTERM/SIGINT in the main thread and stops cleanly (exit 0).
 * Owns the one struct sim of the process. Signals are blocked in every other thread.
 */
#include "fksim.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <openssl/err.h>

#include "log.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: fk-sim --cert FILE --key FILE --ca FILE [options]\n"
                "  --listen HOST:PORT     mutual-TLS listener, loopback only (127.0.0.1:9443;\n"
                "                         port 0 = any)\n"
                "  --crl FILE             also check client certificates against this CRL\n"
                "  --control HOST:PORT    plain-HTTP control listener for /_sim/ (loopback)\n"
                "  --port-file F          write the bound TLS port to F\n"
                "  --control-port-file F  write the bound control port to F\n"
                "  --ready-file F         write \"ready\" to F once both listeners accept\n"
                "  --down                 refuse (reset) every connection on the TLS listener\n"
                "  --slow-ms N            delay each SOAP answer N ms (0..%d)\n"
                "  --fail-500-rate R      HTTP 500 with a SOAP fault (0..1)\n"
                "  --technical-rate R     ERROR/TECHNICAL_ERROR (0..1)\n"
                "  --reject               ERROR/VALIDATION_ERROR always (= --reject-rate 1)\n"
                "  --reject-rate R        ERROR/VALIDATION_ERROR (0..1)\n"
                "  --reject-text TEXT     resultText of the rejections\n"
                "  --cut-rate R           close mid-response after processing (0..1)\n"
                "  --seed N               seed of the deterministic random draws (default 1)\n"
                "  --max-conns N          live connections (default %d, max %d)\n"
                "  --log-level L          debug|info|warn|error (default info)\n"
                "Control (both listeners): GET /_sim/received|revoked|attempts|callers|\n"
                "logical-addresses|stats|config,\n"
                "POST /_sim/config (form: down=1&slow_ms=0&fail_500_rate=0.5&...), POST "
                "/_sim/reset\n",
                FKSIM_MAX_SLOW_MS, FKSIM_MAX_CONNS_DEFAULT, FKSIM_MAX_CONNS_LIMIT);
}

static int write_file_atomic(const char *path, const char *text)
{
        char tmp[4096];
        if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
                return -1;
        FILE *f = fopen(tmp, "w");
        if (!f)
                return -1;
        int ok = fputs(text, f) >= 0;
        ok = (fclose(f) == 0) && ok;
        if (!ok || rename(tmp, path) != 0) {
                unlink(tmp);
                return -1;
        }
        return 0;
}

static int arg_rate(const char *name, const char *v, double *out)
{
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(d) || d < 0.0 || d > 1.0) {
                fprintf(stderr, "fk-sim: %s wants a number in 0..1, got '%s'\n", name, v);
                return -1;
        }
        *out = d;
        return 0;
}

static int arg_long(const char *name, const char *v, long lo, long hi, long *out)
{
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < lo || n > hi) {
                fprintf(stderr, "fk-sim: %s wants an integer in %ld..%ld, got '%s'\n", name, lo, hi,
                        v);
                return -1;
        }
        *out = n;
        return 0;
}

enum {
        OPT_LISTEN = 1000,
        OPT_CERT,
        OPT_KEY,
        OPT_CA,
        OPT_CRL,
        OPT_CONTROL,
        OPT_PORT_FILE,
        OPT_CONTROL_PORT_FILE,
        OPT_READY_FILE,
        OPT_DOWN,
        OPT_SLOW,
        OPT_500,
        OPT_TECH,
        OPT_REJECT,
        OPT_REJECT_RATE,
        OPT_REJECT_TEXT,
        OPT_CUT,
        OPT_SEED,
        OPT_MAX_CONNS,
        OPT_LOG_LEVEL,
        OPT_HELP,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"crl", required_argument, NULL, OPT_CRL},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"control-port-file", required_argument, NULL, OPT_CONTROL_PORT_FILE},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"down", no_argument, NULL, OPT_DOWN},
    {"slow-ms", required_argument, NULL, OPT_SLOW},
    {"fail-500-rate", required_argument, NULL, OPT_500},
    {"technical-rate", required_argument, NULL, OPT_TECH},
    {"reject", no_argument, NULL, OPT_REJECT},
    {"reject-rate", required_argument, NULL, OPT_REJECT_RATE},
    {"reject-text", required_argument, NULL, OPT_REJECT_TEXT},
    {"cut-rate", required_argument, NULL, OPT_CUT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct args {
        const char *listen, *cert, *key, *ca, *crl, *control;
        const char *port_file, *control_port_file, *ready_file;
};

static int parse_args(int argc, char **argv, struct args *a, struct sim *s)
{
        int o;
        long n;
        while ((o = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
                switch (o) {
                case OPT_LISTEN:
                        a->listen = optarg;
                        break;
                case OPT_CERT:
                        a->cert = optarg;
                        break;
                case OPT_KEY:
                        a->key = optarg;
                        break;
                case OPT_CA:
                        a->ca = optarg;
                        break;
                case OPT_CRL:
                        a->crl = optarg;
                        break;
                case OPT_CONTROL:
                        a->control = optarg;
                        break;
                case OPT_PORT_FILE:
                        a->port_file = optarg;
                        break;
                case OPT_CONTROL_PORT_FILE:
                        a->control_port_file = optarg;
                        break;
                case OPT_READY_FILE:
                        a->ready_file = optarg;
                        break;
                case OPT_DOWN:
                        s->b.down = true;
                        break;
                case OPT_SLOW:
                        if (arg_long("--slow-ms", optarg, 0, FKSIM_MAX_SLOW_MS, &n) < 0)
                                return -1;
                        s->b.slow_ms = (int)n;
                        break;
                case OPT_500:
                        if (arg_rate("--fail-500-rate", optarg, &s->b.fail_500_rate) < 0)
                                return -1;
                        break;
                case OPT_TECH:
                        if (arg_rate("--technical-rate", optarg, &s->b.technical_rate) < 0)
                                return -1;
                        break;
                case OPT_REJECT:
                        s->b.reject_rate = 1.0;
                        break;
                case OPT_REJECT_RATE:
                        if (arg_rate("--reject-rate", optarg, &s->b.reject_rate) < 0)
                                return -1;
                        break;
                case OPT_REJECT_TEXT:
                        if (strlen(optarg) >= sizeof s->b.reject_text) {
                                fprintf(stderr, "fk-sim: --reject-text longer than %zu bytes\n",
                                        sizeof s->b.reject_text - 1);
                                return -1;
                        }
                        snprintf(s->b.reject_text, sizeof s->b.reject_text, "%s", optarg);
                        break;
                case OPT_CUT:
                        if (arg_rate("--cut-rate", optarg, &s->b.cut_rate) < 0)
                                return -1;
                        break;
                case OPT_SEED: {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(optarg, &end, 10);
                        if (errno || end == optarg || *end) {
                                fprintf(stderr, "fk-sim: bad --seed '%s'\n", optarg);
                                return -1;
                        }
                        s->seed = s->rng = v;
                        break;
                }
                case OPT_MAX_CONNS:
                        if (arg_long("--max-conns", optarg, 1, FKSIM_MAX_CONNS_LIMIT, &n) < 0)
                                return -1;
                        s->max_conns = (int)n;
                        break;
                case OPT_LOG_LEVEL: {
                        enum log_level lv;
                        if (!log_level_parse(optarg, &lv)) {
                                fprintf(stderr, "fk-sim: bad --log-level '%s'\n", optarg);
                                return -1;
                        }
                        log_set_level(lv);
                        break;
                }
                case OPT_HELP:
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return -1;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "fk-sim: unexpected argument '%s'\n", argv[optind]);
                return -1;
        }
        if (!a->cert || !a->key || !a->ca) {
                fprintf(stderr, "fk-sim: --cert, --key and --ca are required\n");
                usage(stderr);
                return -1;
        }
        return 0;
}

static int sim_init(struct sim *s)
{
        memset(s, 0, sizeof *s);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        int rc = pthread_cond_init(&s->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (rc != 0 || pthread_mutex_init(&s->mu, NULL) != 0)
                return -1;
        records_init(&s->received);
        records_init(&s->revoked);
        records_init(&s->attempts);
        records_init(&s->callers);
        records_init(&s->logical_addresses);
        s->seed = s->rng = 1;
        s->max_conns = FKSIM_MAX_CONNS_DEFAULT;
        s->listen_fd = s->control_fd = -1;
        s->wake[0] = s->wake[1] = -1;
        return 0;
}

static void sim_free(struct sim *s)
{
        records_clear(&s->received);
        records_clear(&s->revoked);
        records_clear(&s->attempts);
        records_clear(&s->callers);
        records_clear(&s->logical_addresses);
        SSL_CTX_free(s->ctx);
        if (s->listen_fd >= 0)
                close(s->listen_fd);
        if (s->control_fd >= 0)
                close(s->control_fd);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cond);
}

int main(int argc, char **argv)
{
        struct sim sim;
        struct args a = {.listen = "127.0.0.1:9443"};
        char err[512];
        int status = 1;
        if (sim_init(&sim) < 0) {
                fprintf(stderr, "fk-sim: cannot initialise\n");
                return 1;
        }
        int pa = parse_args(argc, argv, &a, &sim);
        if (pa != 0) {
                sim_free(&sim);
                return pa > 0 ? 0 : 2;
        }

        /* every thread started from here on inherits the blocked set */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        xmlInitParser();

        sim.ctx = sim_tls_ctx_new(a.cert, a.key, a.ca, a.crl, err, sizeof err);
        if (!sim.ctx) {
                LOGE("fksim_start_failed", "reason", err);
                goto out;
        }
        int port = 0, cport = 0;
        sim.listen_fd = sim_listen(a.listen, &port, err, sizeof err);
        if (sim.listen_fd < 0) {
                LOGE("fksim_start_failed", "reason", err);
                goto out;
        }
        if (a.control) {
                sim.control_fd = sim_listen(a.control, &cport, err, sizeof err);
                if (sim.control_fd < 0) {
                        LOGE("fksim_start_failed", "reason", err);
                        goto out;
                }
        }
        bool down_at_start = sim.b.down; /* read before the threads start */
        if (sim_start(&sim, err, sizeof err) < 0) {
                LOGE("fksim_start_failed", "reason", err);
                goto out;
        }
        char num[32];
        snprintf(num, sizeof num, "%d\n", port);
        if (a.port_file && write_file_atomic(a.port_file, num) < 0) {
                LOGE("fksim_start_failed", "reason", "cannot write --port-file", "file",
                     a.port_file);
                goto stop;
        }
        snprintf(num, sizeof num, "%d\n", cport);
        if (a.control_port_file && write_file_atomic(a.control_port_file, num) < 0) {
                LOGE("fksim_start_failed", "reason", "cannot write --control-port-file", "file",
                     a.control_port_file);
                goto stop;
        }
        if (a.ready_file && write_file_atomic(a.ready_file, "ready\n") < 0) {
                LOGE("fksim_start_failed", "reason", "cannot write --ready-file", "file",
                     a.ready_file);
                goto stop;
        }
        LOGI("fksim_listening", "#port", (long long)port, "#control_port", (long long)cport, "down",
             down_at_start ? "1" : "0");

        int sig = 0;
        while (sigwait(&set, &sig) != 0)
                ;
        LOGI("fksim_stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        status = 0;
stop:
        if (sim_stop(&sim) < 0) {
                LOGE("fksim_stop_failed", "reason", "connections did not end in time");
                /* threads may still touch sim: leave it, exit non-zero */
                return 1;
        }
        LOGI("fksim_stopped");
out:
        sim_free(&sim);
        xmlCleanupParser();
        return status;
}
