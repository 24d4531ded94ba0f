/*
 * test_cli.c - the operator commands against a running gateway (--admin 127.0.0.1:PORT):
 * intygsgw status, deadletters list|replay|discard and show ID, each as a human table and
 * with --json, plus their exit codes (0 ok, 1 no answer or an error status, 2 usage).
 * Runs build/bin/intygsgw as a child with a bound on its run time. Test thread only.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../dashboard/feed.h"

#define CLI_RUN_MS  20000   /* one command */
#define CLI_OUT_MAX 1048576 /* bytes kept of its stdout or stderr */
#define CLI_ARGS    24

static struct fksim fk;
static struct gw gw;
static char admin[64];

struct run {
        int status; /* exit code; -1 killed */
        char *out, *err;
};

static void run_clear(struct run *r)
{
        free(r->out);
        free(r->err);
        memset(r, 0, sizeof *r);
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void append(char **buf, size_t *len, const char *p, size_t n)
{
        if (*len + n > CLI_OUT_MAX)
                n = CLI_OUT_MAX - *len;
        char *nb = realloc(*buf, *len + n + 1);
        cr_assert_not_null(nb);
        memcpy(nb + *len, p, n);
        *len += n;
        nb[*len] = '\0';
        *buf = nb;
}

/* Run intygsgw with the words given (NULL-terminated), collecting stdout and stderr. */
static void cli(struct run *r, ...)
{
        char bin[512];
        snprintf(bin, sizeof bin, "%s/intygsgw", INTYGSGW_BIN_DIR);
        char *argv[CLI_ARGS + 2];
        int n = 0;
        argv[n++] = bin;
        va_list ap;
        va_start(ap, r);
        const char *a;
        while ((a = va_arg(ap, const char *)) != NULL && n < CLI_ARGS)
                argv[n++] = (char *)a;
        va_end(ap);
        argv[n] = NULL;
        int po[2], pe[2];
        cr_assert_eq(pipe(po), 0);
        cr_assert_eq(pipe(pe), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                dup2(po[1], 1);
                dup2(pe[1], 2);
                close(po[0]);
                close(pe[0]);
                close(po[1]);
                close(pe[1]);
                execv(bin, argv);
                _exit(127);
        }
        close(po[1]);
        close(pe[1]);
        memset(r, 0, sizeof *r);
        size_t lo = 0, le = 0;
        append(&r->out, &lo, "", 0);
        append(&r->err, &le, "", 0);
        bool open_o = true, open_e = true;
        int64_t end = now_ms() + CLI_RUN_MS;
        while ((open_o || open_e) && now_ms() < end) {
                struct pollfd p[2] = {{.fd = open_o ? po[0] : -1, .events = POLLIN},
                                      {.fd = open_e ? pe[0] : -1, .events = POLLIN}};
                if (poll(p, 2, (int)(end - now_ms())) <= 0)
                        continue;
                char buf[4096];
                for (int i = 0; i < 2; i++) {
                        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        ssize_t k = read(p[i].fd, buf, sizeof buf);
                        if (k <= 0) {
                                if (i == 0)
                                        open_o = false;
                                else
                                        open_e = false;
                        } else if (i == 0) {
                                append(&r->out, &lo, buf, (size_t)k);
                        } else {
                                append(&r->err, &le, buf, (size_t)k);
                        }
                }
        }
        close(po[0]);
        close(pe[0]);
        int st = 0;
        pid_t w = 0;
        while (now_ms() < end + 1000 && (w = waitpid(pid, &st, WNOHANG)) == 0)
                usleep(10000);
        if (w != pid) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                r->status = -1;
                return;
        }
        r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void setup(void)
{
        cr_assert_not_null(test_pki_dir());
        cr_assert_eq(fksim_start(&fk, NULL), 0, "fk-sim did not start");
        cr_assert_eq(gw_start(&gw, &fk, NULL), 0, "gateway did not start (log %s)", gw.log);
        snprintf(admin, sizeof admin, "127.0.0.1:%d", gw.admin_port);
}

static void teardown(void)
{
        if (gw.pid > 0)
                gw_stop(&gw);
        gw_cleanup(&gw);
        if (fk.pid > 0)
                fksim_stop(&fk);
}

static void post(struct feed_client *cl, const char *id, const char *person, const char *want)
{
        char code[32];
        cr_assert_eq(feed_one(cl, &FEED_A, id, person, NULL, NULL, code, sizeof code), 0);
        cr_assert_str_eq(code, want, "%s", id);
}

static json_t *parse(const char *s)
{
        json_error_t je;
        json_t *j = json_loads(s, 0, &je);
        cr_assert_not_null(j, "not JSON: %s", s);
        return j;
}

/* The line of out that starts with prefix (copied into line). */
static bool line_starting(const char *out, const char *prefix, char *line, size_t cap)
{
        size_t pl = strlen(prefix);
        for (const char *p = out; p && *p;) {
                const char *eol = strchr(p, '\n');
                size_t ll = eol ? (size_t)(eol - p) : strlen(p);
                if (ll >= pl && !strncmp(p, prefix, pl)) {
                        snprintf(line, cap, "%.*s", (int)ll, p);
                        return true;
                }
                p = eol ? eol + 1 : NULL;
        }
        return false;
}

static int count_lines_starting(const char *out, const char *prefix)
{
        int n = 0;
        size_t pl = strlen(prefix);
        for (const char *p = out; p && *p;) {
                if (!strncmp(p, prefix, pl))
                        n++;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return n;
}

Test(cli, status_table_json_and_errors, .init = setup, .fini = teardown, .timeout = 60)
{
        struct feed_client a;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        post(&a, "cli-s-1", FEED_PATIENTS[0], "OK");
        post(&a, "cli-s-2", FEED_PATIENTS[1], "OK");
        post(&a, "cli-s-1", FEED_PATIENTS[0], "INFO");
        post(&a, "cli-s-bad", "191212121213", "ERROR");
        feed_client_close(&a);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_outbox_records{state=\"delivered\"}",
                                      2, 20000),
                     2);
        struct run r;
        cli(&r, "status", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        char line[512];
        cr_assert(line_starting(r.out, "intygsgw ", line, sizeof line), "%s", r.out);
        cr_assert(strstr(line, "node test-node") && strstr(line, "ready") &&
                      !strstr(line, "NOT READY"),
                  "%s", line);
        /* The intyg table: a header, then the counts in the header's order. */
        cr_assert(line_starting(r.out, "intyg ", line, sizeof line), "%s", r.out);
        char w[6][16];
        cr_assert_eq(
            sscanf(line, "intyg %15s %15s %15s %15s %15s %15s", w[0], w[1], w[2], w[3], w[4], w[5]),
            6, "%s", line);
        cr_assert_str_eq(w[0], "accepted");
        cr_assert_str_eq(w[3], "duplicate");
        const char *nl = strstr(r.out, line) + strlen(line) + 1;
        long long v[6];
        cr_assert_eq(
            sscanf(nl, "%lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]),
            6, "%s", nl);
        cr_assert(v[0] == 2 && v[1] == 1 && v[2] == 0 && v[3] == 1 && v[4] == 0 && v[5] == 0, "%s",
                  r.out);
        cr_assert(line_starting(r.out, "outbox ", line, sizeof line));
        nl = strstr(r.out, line) + strlen(line) + 1;
        cr_assert_eq(sscanf(nl, "%lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3]), 4);
        cr_assert(v[0] == 0 && v[1] == 0 && v[2] == 2 && v[3] == 0, "%s", r.out);
        cr_assert(line_starting(r.out, "forward ", line, sizeof line));
        cr_assert(strstr(line, "breaker closed") && strstr(line, "2 delivered"), "%s", line);
        cr_assert(line_starting(r.out, "connections ", line, sizeof line));
        cr_assert(strstr(line, "0 TLS handshake failures"), "%s", line);
        run_clear(&r);
        /* --json: the API's own document. */
        cli(&r, "status", "--json", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        json_t *j = parse(r.out);
        json_t *in = json_object_get(j, "intyg");
        cr_assert_eq(json_integer_value(json_object_get(in, "accepted")), 2);
        cr_assert_eq(json_integer_value(json_object_get(in, "rejected")), 1);
        cr_assert_eq(json_integer_value(json_object_get(in, "duplicate")), 1);
        cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "outbox"), "delivered")),
                     2);
        json_decref(j);
        run_clear(&r);
        /* Nothing listening: 1 and the reason; stray words: usage, 2. */
        cli(&r, "status", "--admin", "127.0.0.1:1", NULL);
        cr_assert_eq(r.status, 1);
        cr_assert(strstr(r.err, "127.0.0.1:1"), "%s", r.err);
        cr_assert_str_eq(r.out, "");
        run_clear(&r);
        cli(&r, "status", "--admin", admin, "extra", NULL);
        cr_assert_eq(r.status, 2);
        cr_assert(strstr(r.err, "usage: intygsgw status"), "%s", r.err);
        run_clear(&r);
}

Test(cli, deadletters_list_replay_discard, .init = setup, .fini = teardown, .timeout = 60)
{
        cr_assert_eq(fksim_control(&fk, "reject_rate=1"), 0);
        struct feed_client a;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        post(&a, "cli-dl-0", FEED_PATIENTS[0], "OK");
        post(&a, "cli-dl-1", FEED_PATIENTS[1], "OK");
        post(&a, "cli-dl-2", FEED_PATIENTS[2], "OK");
        feed_client_close(&a);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_dead_letters", 3, 15000), 3);
        struct run r;
        cli(&r, "deadletters", "list", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        char line[512];
        cr_assert(line_starting(r.out, "INTYG ", line, sizeof line), "%s", r.out);
        cr_assert(strstr(line, "KIND") && strstr(line, "STATE") && strstr(line, "CALLER") &&
                  strstr(line, "ATTEMPTS") && strstr(line, "REASON"));
        cr_assert_eq(count_lines_starting(r.out, "cli-dl-"), 3, "%s", r.out);
        cr_assert(line_starting(r.out, "cli-dl-1 ", line, sizeof line));
        char id[64], kind[16], state[16], caller[32];
        int attempts = 0;
        cr_assert_eq(sscanf(line, "%63s %15s %15s %31s %d", id, kind, state, caller, &attempts), 5,
                     "%s", line);
        cr_assert_str_eq(kind, "register");
        cr_assert_str_eq(state, "dead");
        cr_assert_str_eq(caller, "SE2321000016-7P3K");
        cr_assert_eq(attempts, 1);
        cr_assert(strstr(line, "VALIDATION_ERROR"), "the reason is missing: %s", line);
        cr_assert(strstr(r.out, "(3 dead letters in all)"), "%s", r.out);
        cr_assert_null(strstr(r.out, FEED_PATIENTS[1]), "a personnummer in the list");
        run_clear(&r);
        /* Paging. */
        cli(&r, "deadletters", "list", "--limit", "2", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0);
        cr_assert_eq(count_lines_starting(r.out, "cli-dl-"), 2, "%s", r.out);
        cr_assert(strstr(r.out, "(3 dead letters in all)"));
        run_clear(&r);
        cli(&r, "deadletters", "list", "--offset", "2", "--limit", "2", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0);
        cr_assert_eq(count_lines_starting(r.out, "cli-dl-"), 1, "%s", r.out);
        run_clear(&r);
        cli(&r, "deadletters", "list", "--limit", "0", "--admin", admin, NULL);
        cr_assert_eq(r.status, 1);
        cr_assert(strstr(r.err, "400") && strstr(r.err, "limit must be"), "%s", r.err);
        run_clear(&r);
        cli(&r, "deadletters", "list", "--json", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0);
        json_t *j = parse(r.out);
        cr_assert_eq(json_integer_value(json_object_get(j, "total")), 3);
        cr_assert_eq(json_array_size(json_object_get(j, "items")), 3);
        json_decref(j);
        run_clear(&r);
        /* Discard one; an id is a value, never more query: "x&all=1" discards nothing. */
        cli(&r, "deadletters", "discard", "cli-dl-2", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        cr_assert_str_eq(r.out, "discard: 1 changed\n");
        run_clear(&r);
        cli(&r, "deadletters", "discard", "x&all=1", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        cr_assert_str_eq(r.out, "discard: 0 changed\n");
        run_clear(&r);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_dead_letters", 2, 5000), 2);
        /* Replay the rest with FK accepting again, --json. */
        cr_assert_eq(fksim_control(&fk, "reject_rate=0"), 0);
        cli(&r, "deadletters", "replay", "--all", "--json", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        j = parse(r.out);
        cr_assert_str_eq(json_string_value(json_object_get(j, "action")), "replay");
        cr_assert_eq(json_integer_value(json_object_get(j, "changed")), 2);
        json_decref(j);
        run_clear(&r);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_outbox_records{state=\"delivered\"}",
                                      2, 15000),
                     2);
        cli(&r, "deadletters", "list", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0);
        cr_assert_eq(count_lines_starting(r.out, "cli-dl-"), 0, "%s", r.out);
        cr_assert(strstr(r.out, "(0 dead letters in all)"), "%s", r.out);
        run_clear(&r);
        /* A replay of what is not dead changes nothing. */
        cli(&r, "deadletters", "replay", "cli-dl-0", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0);
        cr_assert_str_eq(r.out, "replay: 0 changed\n");
        run_clear(&r);
        /* Usage errors: no ids, unknown word, no word. */
        cli(&r, "deadletters", "replay", "--admin", admin, NULL);
        cr_assert_eq(r.status, 2);
        cr_assert(strstr(r.err, "usage: intygsgw deadletters"), "%s", r.err);
        run_clear(&r);
        cli(&r, "deadletters", "frobnicate", "--admin", admin, NULL);
        cr_assert_eq(r.status, 2);
        cr_assert(strstr(r.err, "unknown word \"frobnicate\""), "%s", r.err);
        run_clear(&r);
        cli(&r, "deadletters", NULL);
        cr_assert_eq(r.status, 2);
        run_clear(&r);
}

Test(cli, show_table_json_and_unknown, .init = setup, .fini = teardown, .timeout = 60)
{
        struct feed_client a;
        cr_assert_eq(feed_client_init(&a, gw.port, "region-a"), 0);
        post(&a, "cli-show-1", FEED_PATIENTS[3], "OK");
        feed_client_close(&a);
        cr_assert_eq(feed_wait_metric(gw.admin_port, "intygsgw_outbox_records{state=\"delivered\"}",
                                      1, 20000),
                     1);
        struct run r;
        cli(&r, "show", "cli-show-1", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        char line[1024];
        cr_assert(line_starting(r.out, "cli-show-1 ", line, sizeof line), "%s", r.out);
        char id[64], kind[16], state[16], caller[32];
        int attempts = 0;
        cr_assert_eq(sscanf(line, "%63s %15s %15s %31s %d", id, kind, state, caller, &attempts), 5,
                     "%s", line);
        cr_assert_str_eq(state, "delivered");
        cr_assert_str_eq(caller, "SE2321000016-7P3K");
        cr_assert_eq(attempts, 1);
        cr_assert(line_starting(r.out, "  register: ", line, sizeof line), "%s", r.out);
        cr_assert(strstr(line, "unit SE2321000016-A111 -> follow-up unit SE2321000016-A110 "
                               "(level), provider SE2321000016-0001, county 01"),
                  "%s", line);
        cr_assert(strstr(line, "FK OK"), "%s", line);
        /* The history: one line per event, after its header. */
        cr_assert(line_starting(r.out, "AT ", line, sizeof line), "%s", r.out);
        cr_assert(strstr(line, "EVENT") && strstr(line, "ACTOR"));
        const char *hist = strstr(r.out, "\nAT ");
        cr_assert(strstr(hist, " received ") && strstr(hist, " delivered "), "%s", hist);
        cr_assert_null(strstr(r.out, FEED_PATIENTS[3]), "a personnummer in show");
        run_clear(&r);
        cli(&r, "show", "--json", "cli-show-1", "--admin", admin, NULL);
        cr_assert_eq(r.status, 0);
        json_t *j = parse(r.out);
        json_t *rec = json_array_get(json_object_get(j, "records"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(rec, "id")), "cli-show-1");
        cr_assert_str_eq(json_string_value(json_object_get(rec, "state")), "delivered");
        cr_assert_geq(json_array_size(json_object_get(j, "events")), 2);
        json_decref(j);
        run_clear(&r);
        /* Unknown id: 1 and the API's reason; --json still passes the body through. */
        cli(&r, "show", "cli-never", "--admin", admin, NULL);
        cr_assert_eq(r.status, 1);
        cr_assert(strstr(r.err, "404") && strstr(r.err, "no intyg with that id"), "%s", r.err);
        run_clear(&r);
        cli(&r, "show", "--json", "cli-never", "--admin", admin, NULL);
        cr_assert_eq(r.status, 1);
        cr_assert(strstr(r.out, "\"error\""), "%s", r.out);
        run_clear(&r);
        /* An id is one path segment however it is spelt. */
        cli(&r, "show", "../summary", "--admin", admin, NULL);
        cr_assert_eq(r.status, 1, "%s", r.out);
        run_clear(&r);
        cli(&r, "show", "--admin", admin, NULL);
        cr_assert_eq(r.status, 2);
        cr_assert(strstr(r.err, "usage: intygsgw show"), "%s", r.err);
        run_clear(&r);
        cli(&r, "show", "a", "b", "--admin", admin, NULL);
        cr_assert_eq(r.status, 2);
        run_clear(&r);
}
