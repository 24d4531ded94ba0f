/*
 * main.c - the intygsgw command line: a small keyword table of commands (serve, check-config,
 * validate, hsa, stats, status, deadletters, show, version). `serve` hands over to the loop in
 * server.c. Runs on the main thread.
 */
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include "cli.h"
#include "cmd_hsa.h"
#include "cmd_stats.h"
#include "cmd_validate.h"
#include "authorise.h"
#include "config.h"
#include "hsa.h"
#include "log.h"
#include "server.h"
#include "tls.h"

/* Exit codes (README: "Exit codes"). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_START = 4 };

static const char *find_opt(int argc, char **argv, const char *shortopt, const char *longopt)
{
        for (int i = 1; i < argc; i++) {
                if ((!strcmp(argv[i], shortopt) || !strcmp(argv[i], longopt)) && i + 1 < argc)
                        return argv[i + 1];
                size_t ll = strlen(longopt);
                if (!strncmp(argv[i], longopt, ll) && argv[i][ll] == '=')
                        return argv[i] + ll + 1;
        }
        return NULL;
}

static int cmd_check_config(int argc, char **argv)
{
        const char *path = find_opt(argc, argv, "-c", "--config");
        if (!path) {
                fprintf(stderr, "usage: intygsgw check-config -c FILE\n");
                return EXIT_USAGE;
        }
        int nerr = 0;
        struct config *cfg = config_load(path, true, stderr, &nerr);
        if (!cfg) {
                fprintf(stderr, "%s: %d problem%s\n", path, nerr, nerr == 1 ? "" : "s");
                return EXIT_CONFIG;
        }
        /* Beyond syntax: the TLS material must load, as serve would load it. */
        char err[512];
        int bad = 0;
        struct tls_server_opts o = {.cert = cfg->tls_cert,
                                    .key = cfg->tls_key,
                                    .ca = cfg->tls_ca,
                                    .crl = cfg->tls_crl,
                                    .require_client_cert = true};
        SSL_CTX *ctx = tls_server_ctx_new(&o, err, sizeof err);
        if (!ctx) {
                fprintf(stderr, "%s: [server] tls: %s\n", path, err);
                bad++;
        }
        SSL_CTX_free(ctx);
        if (cfg->hsa_ldif) {
                struct hsa_opts ho = {
                    .ldif = cfg->hsa_ldif, .mapping = cfg->hsa_mapping, .level = cfg->hsa_level};
                struct hsa_load_report rep;
                memset(&rep, 0, sizeof rep);
                struct hsa_dir *d = hsa_dir_load(&ho, &rep, err, sizeof err);
                if (!d) {
                        fprintf(stderr, "%s: [hsa]: %s\n", path, err);
                        bad++;
                }
                hsa_dir_free(d);
        }
        if (cfg->grants) {
                struct grants *g = grants_load(cfg->grants, err, sizeof err);
                if (!g) {
                        fprintf(stderr, "%s: [auth] grants: %s\n", path, err);
                        bad++;
                }
                grants_free(g);
        }
        config_free(cfg);
        if (bad) {
                fprintf(stderr, "%s: %d problem%s\n", path, bad, bad == 1 ? "" : "s");
                return EXIT_CONFIG;
        }
        printf("configuration OK\n");
        return EXIT_OK;
}

static int cmd_serve(int argc, char **argv)
{
        const char *path = find_opt(argc, argv, "-c", "--config");
        if (!path) {
                fprintf(stderr, "usage: intygsgw serve -c FILE [--port-file FILE]\n");
                return EXIT_USAGE;
        }
        int nerr = 0;
        struct config *cfg = config_load(path, true, stderr, &nerr);
        if (!cfg) {
                fprintf(stderr, "%s: %d problem%s; not starting\n", path, nerr,
                        nerr == 1 ? "" : "s");
                return EXIT_CONFIG;
        }
        /* The pool size must be set before the loop's first uv_queue_work. */
        char workers[16];
        snprintf(workers, sizeof workers, "%d", cfg->workers);
        setenv("UV_THREADPOOL_SIZE", workers, 1);
        signal(SIGPIPE, SIG_IGN);

        struct server *srv = calloc(1, sizeof *srv);
        uv_loop_t *loop = calloc(1, sizeof *loop);
        if (!srv || !loop || uv_loop_init(loop) != 0) {
                fprintf(stderr, "out of memory\n");
                free(srv);
                free(loop);
                config_free(cfg);
                return EXIT_START;
        }
        srv->port_file = find_opt(argc, argv, "--port-file", "--port-file");
        const char *node = find_opt(argc, argv, "--node-id", "--node-id");
        if (node)
                snprintf(srv->node_id, sizeof srv->node_id, "%s", node);
        char err[1024] = "";
        int rc;
        if (!server_start(srv, loop, cfg, err, sizeof err)) {
                LOGE("start_failed", "reason", err);
                fprintf(stderr, "intygsgw: cannot start: %s\n", err);
                server_abort(srv);
                rc = EXIT_START;
        } else {
                rc = server_run(srv);
        }
        if (uv_loop_close(loop) != 0)
                LOGW("loop_not_empty", "detail", "handles left open at exit");
        free(loop);
        free(srv);
        return rc;
}

static int usage(FILE *f)
{
        fprintf(f, "usage: intygsgw COMMAND [ARGS]\n\n"
                   "commands:\n"
                   "  serve -c FILE              run the gateway\n"
                   "  check-config -c FILE       report every problem in FILE\n"
                   "  validate [--json] FILE...  validate RegisterCertificate requests offline\n"
                   "  hsa lookup|check -c FILE   the HSA directory extract and follow-up units\n"
                   "  stats ingest|report ...    follow-up statistics\n"
                   "  status [--json]            the running gateway's summary (admin API)\n"
                   "  deadletters list|replay|discard [ID...] [--json]\n"
                   "  show ID [--json]           one intyg's status and history\n"
                   "  version\n");
        return EXIT_USAGE;
}

static int run_hsa(int argc, char **argv)
{
        const char *path = find_opt(argc, argv, "-c", "--config");
        if (!path) {
                fprintf(stderr, "usage: intygsgw hsa lookup -c FILE HSA-ID | hsa check -c FILE\n");
                return EXIT_USAGE;
        }
        int nerr = 0;
        struct config *cfg = config_load(path, false, stderr, &nerr);
        if (!cfg)
                return EXIT_CONFIG;
        if (!cfg->hsa_ldif) {
                fprintf(stderr, "%s: [hsa] ldif is not set\n", path);
                config_free(cfg);
                return EXIT_CONFIG;
        }
        struct hsa_opts o = {
            .ldif = cfg->hsa_ldif, .mapping = cfg->hsa_mapping, .level = cfg->hsa_level};
        /* cmd_hsa sees the arguments without -c FILE. */
        char *args[64];
        int n = 0;
        for (int i = 0; i < argc && n < 63; i++) {
                if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
                        i++;
                        continue;
                }
                args[n++] = argv[i];
        }
        args[n] = NULL;
        int rc = cmd_hsa(n, args, &o, stdout);
        config_free(cfg);
        return rc;
}

struct command {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
};

static int cmd_version(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        printf("intygsgw %s\n", INTYGSGW_VERSION);
        return EXIT_OK;
}

static const struct command commands[] = {
    {"serve", cmd_serve, "run the gateway"},
    {"check-config", cmd_check_config, "check a configuration file"},
    {"validate", cmd_validate, "validate RegisterCertificate requests offline"},
    {"hsa", run_hsa, "HSA directory lookups and checks"},
    {"stats", cmd_stats, "follow-up statistics"},
    {"status", cli_status, "summary of a running gateway"},
    {"deadletters", cli_deadletters, "list, replay or discard dead letters"},
    {"show", cli_show, "one intyg's status and history"},
    {"version", cmd_version, "print the version"},
};

int main(int argc, char **argv)
{
        if (argc < 2)
                return usage(stderr);
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
                return usage(stdout), EXIT_OK;
        xmlInitParser();
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = -1;
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
                if (!strcmp(argv[1], commands[i].name)) {
                        rc = commands[i].fn(argc - 1, argv + 1);
                        break;
                }
        }
        if (rc == -1) {
                fprintf(stderr, "intygsgw: unknown command \"%s\"; valid commands:", argv[1]);
                for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                        fprintf(stderr, " %s", commands[i].name);
                fputc('\n', stderr);
                rc = EXIT_USAGE;
        }
        curl_global_cleanup();
        xmlCleanupParser();
        return rc;
}
