/*
 * handler.c - what the simulator answers: RegisterCertificate / RevokeCertificate (OK, INFO
 * on a repeat, or the simulated failure drawn from the configured rates) and the /_sim/
 * control endpoints (config, received, revoked, attempts, callers, logical-addresses, stats,
 * reset).
 * Runs on connection threads; takes sim->mu for every read or write of shared state.
 */
#include "fksim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

double sim_rand_locked(struct sim *s)
{
        /* splitmix64: deterministic for a given --seed and request order */
        uint64_t z = (s->rng += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        return (double)(z >> 11) / 9007199254740992.0;
}

static bool draw(struct sim *s, double rate)
{
        if (rate <= 0.0)
                return false;
        if (rate >= 1.0)
                return true;
        return sim_rand_locked(s) < rate;
}

/* ---- form-encoded config ------------------------------------------------------------ */

static int unhex(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decode src[0..n) into dst (cap bytes incl. NUL); -1 if bad or too long. */
static int form_decode(const char *src, size_t n, char *dst, size_t cap)
{
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                int c = (unsigned char)src[i];
                if (c == '+') {
                        c = ' ';
                } else if (c == '%') {
                        if (i + 2 >= n)
                                return -1;
                        int h = unhex(src[i + 1]), l = unhex(src[i + 2]);
                        if (h < 0 || l < 0)
                                return -1;
                        c = h * 16 + l;
                        i += 2;
                }
                if (c == 0 || o + 1 >= cap)
                        return -1;
                dst[o++] = (char)c;
        }
        dst[o] = '\0';
        return 0;
}

static int parse_rate(const char *v, double *out)
{
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(d) || d < 0.0 || d > 1.0)
                return -1;
        *out = d;
        return 0;
}

static int parse_int(const char *v, long lo, long hi, long *out)
{
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < lo || n > hi)
                return -1;
        *out = n;
        return 0;
}

int sim_apply_config(struct sim *s, const char *body, size_t len, char *err, size_t errlen)
{
        pthread_mutex_lock(&s->mu);
        struct sim_behaviour nb = s->b;
        pthread_mutex_unlock(&s->mu);
        bool have_seed = false;
        uint64_t seed = 0;
        size_t i = 0;
        while (i < len) {
                size_t j = i;
                while (j < len && body[j] != '&')
                        j++;
                const char *pair = body + i;
                size_t plen = j - i;
                i = j + 1;
                while (plen && (pair[plen - 1] == '\n' || pair[plen - 1] == '\r'))
                        plen--;
                if (plen == 0)
                        continue;
                const char *eq = memchr(pair, '=', plen);
                char key[32], val[FKSIM_REASON_MAX];
                if (!eq || form_decode(pair, (size_t)(eq - pair), key, sizeof key) < 0 ||
                    form_decode(eq + 1, plen - (size_t)(eq - pair) - 1, val, sizeof val) < 0) {
                        snprintf(err, errlen, "malformed pair (want key=value, value < %d bytes)",
                                 FKSIM_REASON_MAX);
                        return -1;
                }
                long n = 0;
                int bad = 0;
                if (strcmp(key, "down") == 0) {
                        bad = parse_int(val, 0, 1, &n);
                        nb.down = n == 1;
                } else if (strcmp(key, "slow_ms") == 0) {
                        bad = parse_int(val, 0, FKSIM_MAX_SLOW_MS, &n);
                        nb.slow_ms = (int)n;
                } else if (strcmp(key, "fail_500_rate") == 0) {
                        bad = parse_rate(val, &nb.fail_500_rate);
                } else if (strcmp(key, "technical_rate") == 0) {
                        bad = parse_rate(val, &nb.technical_rate);
                } else if (strcmp(key, "reject_rate") == 0) {
                        bad = parse_rate(val, &nb.reject_rate);
                } else if (strcmp(key, "reject") == 0) {
                        bad = parse_int(val, 0, 1, &n);
                        nb.reject_rate = n == 1 ? 1.0 : 0.0;
                } else if (strcmp(key, "cut_rate") == 0) {
                        bad = parse_rate(val, &nb.cut_rate);
                } else if (strcmp(key, "reject_text") == 0) {
                        snprintf(nb.reject_text, sizeof nb.reject_text, "%s", val);
                } else if (strcmp(key, "seed") == 0) {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(val, &end, 10);
                        bad = (errno || end == val || *end) ? -1 : 0;
                        seed = v;
                        have_seed = true;
                } else {
                        snprintf(err, errlen, "unknown key '%.31s'", key);
                        return -1;
                }
                if (bad) {
                        snprintf(err, errlen, "bad value for %s", key);
                        return -1;
                }
        }
        pthread_mutex_lock(&s->mu);
        bool was_down = s->b.down;
        s->b = nb;
        if (have_seed) {
                s->seed = seed;
                s->rng = seed;
        }
        if (nb.down && !was_down)
                sim_reset_main_conns_locked(s);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
        return 0;
}

/* ---- control endpoints -------------------------------------------------------------- */

/* When FK first saw a new certificate (for end-to-end rates measured at FK's side). */
static void note_new(struct sim_stats *st)
{
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        st->last_new_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
        if (!st->first_new_ms)
                st->first_new_ms = st->last_new_ms;
}

static void config_json_locked(const struct sim *s, struct buf *o)
{
        const struct sim_behaviour *b = &s->b;
        buf_printf(o,
                   "{\"down\":%d,\"slow_ms\":%d,\"fail_500_rate\":%g,\"technical_rate\":%g,"
                   "\"reject_rate\":%g,\"cut_rate\":%g,\"seed\":%llu,\"reject_text\":\"",
                   b->down ? 1 : 0, b->slow_ms, b->fail_500_rate, b->technical_rate, b->reject_rate,
                   b->cut_rate, (unsigned long long)s->seed);
        buf_json_str(o, b->reject_text);
        buf_puts(o, "\"}\n");
}

static void stats_json_locked(const struct sim *s, struct buf *o)
{
        const struct sim_stats *t = &s->st;
        buf_printf(o,
                   "{\"connections\":%llu,\"control_connections\":%llu,\"active_connections\":%d,"
                   "\"handshake_failures\":%llu,\"refused_down\":%llu,\"refused_full\":%llu,"
                   "\"requests\":%llu,\"register\":%llu,\"revoke\":%llu,\"ok\":%llu,\"info\":%llu,"
                   "\"errors\":{\"validation\":%llu,\"technical\":%llu,\"http_500\":%llu,"
                   "\"bad_request\":%llu},\"cuts\":%llu,\"control_requests\":%llu,"
                   "\"distinct_received\":%zu,\"distinct_revoked\":%zu,"
                   "\"first_new_ms\":%lld,\"last_new_ms\":%lld}\n",
                   (unsigned long long)t->connections, (unsigned long long)t->control_connections,
                   s->active, (unsigned long long)t->handshake_failures,
                   (unsigned long long)t->refused_down, (unsigned long long)t->refused_full,
                   (unsigned long long)t->requests, (unsigned long long)t->register_requests,
                   (unsigned long long)t->revoke_requests, (unsigned long long)t->ok,
                   (unsigned long long)t->info, (unsigned long long)t->validation_errors,
                   (unsigned long long)t->technical_errors, (unsigned long long)t->http_500,
                   (unsigned long long)t->bad_requests, (unsigned long long)t->cuts,
                   (unsigned long long)t->control_requests, s->received.n, s->revoked.n,
                   (long long)t->first_new_ms, (long long)t->last_new_ms);
}

static void plain(struct sim_response *rs, int status, const char *msg)
{
        rs->status = status;
        rs->content_type = "text/plain; charset=utf-8";
        buf_reset(&rs->body);
        buf_puts(&rs->body, msg);
        buf_puts(&rs->body, "\n");
}

static void handle_control(struct sim *s, const struct sim_request *rq, struct sim_response *rs)
{
        const char *p = rq->path + strlen("/_sim/");
        bool get = strcmp(rq->method, "GET") == 0;
        bool post = strcmp(rq->method, "POST") == 0;
        rs->status = 200;
        rs->content_type = "application/json";
        pthread_mutex_lock(&s->mu);
        s->st.control_requests++;
        const struct records *table = NULL;
        if (strcmp(p, "received") == 0)
                table = &s->received;
        else if (strcmp(p, "revoked") == 0)
                table = &s->revoked;
        else if (strcmp(p, "attempts") == 0)
                table = &s->attempts;
        else if (strcmp(p, "callers") == 0)
                table = &s->callers;
        else if (strcmp(p, "logical-addresses") == 0)
                table = &s->logical_addresses;
        if (table) {
                if (!get)
                        plain(rs, 405, "use GET");
                else if (records_json(table, &rs->body) < 0 || buf_puts(&rs->body, "\n") < 0)
                        plain(rs, 500, "out of memory");
                pthread_mutex_unlock(&s->mu);
                return;
        }
        if (strcmp(p, "stats") == 0) {
                if (get)
                        stats_json_locked(s, &rs->body);
                else
                        plain(rs, 405, "use GET");
                pthread_mutex_unlock(&s->mu);
                return;
        }
        if (strcmp(p, "reset") == 0) {
                if (post) {
                        records_clear(&s->received);
                        records_clear(&s->revoked);
                        records_clear(&s->attempts);
                        records_clear(&s->callers);
                        records_clear(&s->logical_addresses);
                        memset(&s->st, 0, sizeof s->st);
                        s->rng = s->seed;
                        buf_puts(&rs->body, "{\"reset\":true}\n");
                } else {
                        plain(rs, 405, "use POST");
                }
                pthread_mutex_unlock(&s->mu);
                return;
        }
        if (strcmp(p, "config") == 0 && get) {
                config_json_locked(s, &rs->body);
                pthread_mutex_unlock(&s->mu);
                return;
        }
        pthread_mutex_unlock(&s->mu);
        if (strcmp(p, "config") == 0 && post) {
                char err[160];
                if (sim_apply_config(s, rq->body, rq->body_len, err, sizeof err) < 0) {
                        LOGW("fksim_config_refused", "reason", err);
                        plain(rs, 400, err);
                        return;
                }
                pthread_mutex_lock(&s->mu);
                config_json_locked(s, &rs->body);
                pthread_mutex_unlock(&s->mu);
                LOGI("fksim_config", "config", rs->body.p);
                return;
        }
        if (strcmp(p, "config") == 0) {
                plain(rs, 405, "use GET or POST");
                return;
        }
        plain(rs, 404, "unknown /_sim/ endpoint");
}

/* ---- SOAP operations ---------------------------------------------------------------- */

static void soap_answer(struct sim *s, const struct sim_request *rq, struct sim_response *rs)
{
        struct soap_req sr;
        char err[160];
        rs->content_type = "text/xml; charset=utf-8";
        if (soap_parse(rq->body, rq->body_len, &sr, err, sizeof err) < 0) {
                pthread_mutex_lock(&s->mu);
                s->st.bad_requests++;
                pthread_mutex_unlock(&s->mu);
                rs->status = 500;
                soap_fault(&rs->body, "soap:Client", err);
                LOGI("fksim_bad_request", "caller", rq->caller, "reason", err, "#conn",
                     (long long)rq->conn_id);
                return;
        }
        const char *opname = sr.op == SIM_OP_REGISTER ? "register" : "revoke";

        pthread_mutex_lock(&s->mu);
        struct sim_behaviour b = s->b;
        pthread_mutex_unlock(&s->mu);
        rs->delay_ms = b.slow_ms;

        const char *code = "OK", *text = NULL, *error_id = NULL;
        char textbuf[FKSIM_REASON_MAX + 64];
        pthread_mutex_lock(&s->mu);
        s->st.requests++;
        if (sr.op == SIM_OP_REGISTER)
                s->st.register_requests++;
        else
                s->st.revoke_requests++;
        if (sr.id[0])
                records_add(&s->attempts, sr.id);
        records_add(&s->callers, rq->caller[0] ? rq->caller : "-");
        records_add(&s->logical_addresses, sr.logical_address[0] ? sr.logical_address : "(none)");
        if (draw(s, s->b.fail_500_rate)) {
                s->st.http_500++;
                pthread_mutex_unlock(&s->mu);
                rs->status = 500;
                soap_fault(&rs->body, "soap:Server", "Simulated internal error in the producer");
                LOGI("fksim_request", "op", opname, "id", sr.id, "caller", rq->caller, "result",
                     "http_500", "#conn", (long long)rq->conn_id);
                return;
        }
        rs->status = 200;
        if (draw(s, s->b.technical_rate)) {
                code = "ERROR";
                error_id = "TECHNICAL_ERROR";
                text = "Simulated technical error, try again later";
                s->st.technical_errors++;
        } else if (draw(s, s->b.reject_rate)) {
                code = "ERROR";
                error_id = "VALIDATION_ERROR";
                text = s->b.reject_text[0] ? s->b.reject_text : "Simulated validation error";
                snprintf(textbuf, sizeof textbuf, "%s", text);
                text = textbuf;
                s->st.validation_errors++;
        } else if (sr.id_too_long || sr.id[0] == '\0') {
                code = "ERROR";
                error_id = "VALIDATION_ERROR";
                text = sr.id_too_long ? "intygs-id/extension is too long or has control characters"
                                      : "intygs-id/extension is missing";
                s->st.validation_errors++;
        } else {
                struct records *t = sr.op == SIM_OP_REGISTER ? &s->received : &s->revoked;
                long n = records_add(t, sr.id);
                if (n < 0) {
                        code = "ERROR";
                        error_id = "TECHNICAL_ERROR";
                        text = "Simulator record table full";
                        s->st.technical_errors++;
                } else if (n > 1) {
                        code = "INFO";
                        text = sr.op == SIM_OP_REGISTER ? "Certificate already exists"
                                                        : "Certificate already revoked";
                        s->st.info++;
                } else {
                        s->st.ok++;
                        if (sr.op == SIM_OP_REGISTER)
                                note_new(&s->st);
                }
                if (n > 0 && draw(s, s->b.cut_rate)) {
                        rs->action = SIM_SEND_CUT;
                        s->st.cuts++;
                }
        }
        pthread_mutex_unlock(&s->mu);
        soap_result(&rs->body, sr.op, code, text, error_id);
        LOGI("fksim_request", "op", opname, "id", sr.id, "caller", rq->caller, "logical_address",
             sr.logical_address, "result", error_id ? error_id : code, "cut",
             rs->action == SIM_SEND_CUT ? "1" : "0", "#conn", (long long)rq->conn_id);
}

void sim_handle(struct sim *s, const struct sim_request *rq, struct sim_response *rs)
{
        buf_reset(&rs->body);
        rs->action = SIM_SEND;
        rs->delay_ms = 0;
        if (strncmp(rq->path, "/_sim/", 6) == 0) {
                handle_control(s, rq, rs);
                return;
        }
        if (rq->control_listener) {
                plain(rs, 404, "the control listener serves /_sim/ only");
                return;
        }
        if (strcmp(rq->method, "POST") != 0) {
                plain(rs, 405, "use POST with a SOAP 1.1 envelope");
                return;
        }
        soap_answer(s, rq, rs);
}
