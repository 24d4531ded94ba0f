/*
 * admin.c - the admin listener: /healthz, /readyz, /metrics, the JSON admin API (summary,
 * one intyg's status and history, dead letters, replay, discard, recent rejections, config,
 * reload, statistics) and the dashboard's static files; and the callers' own status query.
 * A table of read-only pages beside a short list of actions (after pgbouncer's admin.c).
 * Loop thread only.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "forward.h"
#include "jbuf.h"
#include "log.h"
#include "outbox.h"
#include "server.h"
#include "stats_http.h"
#include "stats_store.h"

#define ADMIN_STATIC_MAX (4 * 1024 * 1024) /* bytes of one dashboard file */

static void send_json(struct conn *c, int status, struct jbuf *b)
{
        size_t len = 0;
        char *p = jbuf_take(b, &len);
        if (!p) {
                const char *m = "{\"error\":\"out of memory\"}";
                http_respond(c, 503, "application/json", NULL, m, strlen(m));
                return;
        }
        http_respond(c, status, "application/json", NULL, p, len);
        free(p);
}

static void send_error(struct conn *c, int status, const char *msg)
{
        struct jbuf b = {0};
        jbuf_printf(&b, "{\"error\":");
        jbuf_str(&b, msg);
        jbuf_printf(&b, "}\n");
        send_json(c, status, &b);
}

/* An admin request waiting for the outbox: the connection is held by a reference. */
struct pending {
        struct conn *c;
        uint64_t seq;
        bool json_ids; /* replay/discard */
        char actor[128];
        char what[16];
};

static struct pending *pending_new(struct conn *c)
{
        struct pending *p = calloc(1, sizeof *p);
        if (!p)
                return NULL;
        p->c = c;
        p->seq = c->req.seq;
        conn_ref(c);
        return p;
}

/* True if the connection still waits for this answer. */
static bool pending_live(struct pending *p)
{
        return !p->c->closing && p->c->req.seq == p->seq;
}

static void pending_free(struct pending *p)
{
        struct conn *c = p->c;
        free(p);
        conn_unref(c);
}

static const char *kind_str(enum intyg_kind k)
{
        return k == INTYG_REVOKE ? "revoke" : "register";
}

static const char *resolution_str(enum tag_resolution r)
{
        switch (r) {
        case TAG_MAPPING:
                return "mapping";
        case TAG_LEVEL:
                return "level";
        case TAG_COARSER:
                return "coarser";
        default:
                return "unresolved";
        }
}

static void json_time(struct jbuf *b, int64_t ms)
{
        if (ms <= 0) {
                jbuf_printf(b, "null");
                return;
        }
        time_t s = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        char t[32];
        strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
        jbuf_printf(b, "\"%s.%03dZ\"", t, (int)(ms % 1000));
}

static void json_record(struct jbuf *b, const struct outbox_record *r)
{
        jbuf_printf(b, "{\"id\":");
        jbuf_str(b, r->id);
        jbuf_printf(b, ",\"kind\":\"%s\",\"state\":\"%s\",\"caller\":", kind_str(r->kind),
                    outbox_state_name(r->state));
        jbuf_str(b, r->caller);
        jbuf_printf(b, ",\"attempts\":%d,\"received\":", r->attempts);
        json_time(b, r->received_ms);
        jbuf_printf(b, ",\"next_attempt\":");
        json_time(b, r->state == OB_QUEUED ? r->next_attempt_ms : 0);
        jbuf_printf(b, ",\"delivered\":");
        json_time(b, r->delivered_ms);
        jbuf_printf(b, ",\"last_error\":");
        jbuf_str(b, r->last_error);
        jbuf_printf(b, ",\"fk_result\":");
        jbuf_str(b, r->fk_result);
        jbuf_printf(b, ",\"fk_text\":");
        jbuf_str(b, r->fk_text);
        jbuf_printf(b, ",\"has_body\":%s,\"tags\":{\"unit\":", r->has_payload ? "true" : "false");
        jbuf_str(b, r->tags.unit_hsa);
        jbuf_printf(b, ",\"followup_unit\":");
        jbuf_str(b, r->tags.followup_hsa);
        jbuf_printf(b, ",\"resolution\":\"%s\",\"provider\":", resolution_str(r->tags.resolution));
        jbuf_str(b, r->tags.provider_hsa);
        jbuf_printf(b, ",\"county\":");
        jbuf_str(b, r->tags.county);
        jbuf_printf(b, ",\"municipality\":");
        jbuf_str(b, r->tags.municipality);
        jbuf_printf(b, "}}");
}

/* ---- read-only pages ---- */

static void page_healthz(struct conn *c, struct http_req *req)
{
        (void)req;
        http_respond(c, 200, "text/plain", NULL, "ok\n", 3);
}

static void page_readyz(struct conn *c, struct http_req *req)
{
        (void)req;
        struct server *srv = c->srv;
        bool outbox_ok = srv->outbox && !srv->outbox_closing && outbox_healthy(srv->outbox);
        bool ready = srv->caller.open && srv->cfg && outbox_ok && !srv->draining;
        struct jbuf b = {0};
        jbuf_printf(&b,
                    "{\"ready\":%s,\"listener\":%s,\"config\":true,\"outbox\":%s,"
                    "\"draining\":%s}\n",
                    ready ? "true" : "false", srv->caller.open ? "true" : "false",
                    outbox_ok ? "true" : "false", srv->draining ? "true" : "false");
        send_json(c, ready ? 200 : 503, &b);
}

static void page_metrics(struct conn *c, struct http_req *req)
{
        (void)req;
        struct server *srv = c->srv;
        size_t len = 0;
        double up = (double)((int64_t)uv_now(srv->loop) - srv->started_ms) / 1000.0;
        char *text = metrics_render(&srv->metrics, up, &len);
        if (!text) {
                send_error(c, 503, "out of memory");
                return;
        }
        http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, len);
        free(text);
}

static uint64_t sum_outcome(const struct labelled *l, const char *outcome)
{
        char needle[64];
        snprintf(needle, sizeof needle, "outcome=\"%s\"", outcome);
        uint64_t n = 0;
        for (size_t i = 0; i < l->n; i++)
                if (strstr(l->keys[i], needle))
                        n += l->v[i];
        return n;
}

static void page_summary(struct conn *c, struct http_req *req)
{
        (void)req;
        struct server *srv = c->srv;
        const struct metrics *m = &srv->metrics;
        struct jbuf b = {0};
        double up = (double)((int64_t)uv_now(srv->loop) - srv->started_ms) / 1000.0;
        jbuf_printf(&b, "{\"version\":\"%s\",\"node\":", INTYGSGW_VERSION);
        jbuf_str(&b, srv->node_id);
        jbuf_printf(
            &b,
            ",\"uptime_s\":%.1f,\"ready\":%s,\"connections_open\":%lld,"
            "\"intyg\":{\"accepted\":%llu,\"rejected\":%llu,\"refused\":%llu,"
            "\"duplicate\":%llu,\"conflict\":%llu,\"error\":%llu},"
            "\"outbox\":{\"queued\":%lld,\"inflight\":%lld,\"delivered\":%lld,"
            "\"dead\":%lld,\"oldest_queued_s\":%.1f},"
            "\"forward\":{\"in_flight\":%lld,\"breaker\":\"%s\","
            "\"delivered\":%llu,\"retries\":%llu,\"rejected\":%llu},"
            "\"latency_ms\":{\"ack_p50\":%.1f,\"ack_p99\":%.1f,\"deliver_p50\":%.1f,"
            "\"deliver_p99\":%.1f,\"fk_p50\":%.1f,\"fk_p99\":%.1f},"
            "\"tls_handshake_failures\":%llu}\n",
            up, srv->ready ? "true" : "false", (long long)m->connections_open,
            (unsigned long long)sum_outcome(&m->intyg_outcomes, "accepted"),
            (unsigned long long)sum_outcome(&m->intyg_outcomes, "rejected"),
            (unsigned long long)sum_outcome(&m->intyg_outcomes, "refused"),
            (unsigned long long)sum_outcome(&m->intyg_outcomes, "duplicate"),
            (unsigned long long)sum_outcome(&m->intyg_outcomes, "conflict"),
            (unsigned long long)sum_outcome(&m->intyg_outcomes, "error"),
            (long long)m->outbox_queued, (long long)m->outbox_inflight,
            (long long)m->outbox_delivered, (long long)m->outbox_dead, m->outbox_oldest_queued_s,
            (long long)m->forward_in_flight,
            m->breaker_state == 1   ? "open"
            : m->breaker_state == 2 ? "half-open"
                                    : "closed",
            (unsigned long long)(labelled_get(&m->forward_attempts, "outcome=\"delivered\"") +
                                 labelled_get(&m->forward_attempts, "outcome=\"delivered_info\"")),
            (unsigned long long)labelled_get(&m->forward_attempts, "outcome=\"retry\""),
            (unsigned long long)labelled_get(&m->forward_attempts, "outcome=\"rejected\""),
            histogram_quantile(&m->ack_latency, 0.5) * 1000,
            histogram_quantile(&m->ack_latency, 0.99) * 1000,
            histogram_quantile(&m->deliver_latency, 0.5) * 1000,
            histogram_quantile(&m->deliver_latency, 0.99) * 1000,
            histogram_quantile(&m->fk_roundtrip, 0.5) * 1000,
            histogram_quantile(&m->fk_roundtrip, 0.99) * 1000,
            (unsigned long long)(m->tls_failures[0] + m->tls_failures[1] + m->tls_failures[2] +
                                 m->tls_failures[3] + m->tls_failures[4] + m->tls_failures[5] +
                                 m->tls_failures[6] + m->tls_failures[7] + m->tls_failures[8]));
        send_json(c, 200, &b);
}

static void page_rejections(struct conn *c, struct http_req *req)
{
        (void)req;
        struct server *srv = c->srv;
        struct jbuf b = {0};
        uint64_t total = srv->rejections_total;
        uint64_t n = total < REJECTIONS_KEPT ? total : REJECTIONS_KEPT;
        jbuf_printf(&b, "{\"total\":%llu,\"recent\":[", (unsigned long long)total);
        for (uint64_t i = 0; i < n; i++) {
                const struct rejection *r = &srv->rejections[(total - 1 - i) % REJECTIONS_KEPT];
                jbuf_printf(&b, "%s{\"at\":", i ? "," : "");
                json_time(&b, r->at_ms);
                jbuf_printf(&b, ",\"caller\":");
                jbuf_str(&b, r->caller);
                jbuf_printf(&b, ",\"intyg\":");
                jbuf_str(&b, r->intyg);
                jbuf_printf(&b, ",\"rule\":");
                jbuf_str(&b, r->rule);
                jbuf_printf(&b, ",\"path\":");
                jbuf_str(&b, r->path);
                jbuf_printf(&b, ",\"message\":");
                jbuf_str(&b, r->message);
                jbuf_printf(&b, "}");
        }
        jbuf_printf(&b, "]}\n");
        send_json(c, 200, &b);
}

static void page_config(struct conn *c, struct http_req *req)
{
        (void)req;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) {
                send_error(c, 503, "out of memory");
                return;
        }
        config_dump_json(c->srv->cfg, f);
        fclose(f);
        http_respond(c, 200, "application/json", NULL, buf, len);
        free(buf);
}

static void on_dead_list(void *arg, int status, struct outbox_record **recs, size_t n,
                         uint64_t total)
{
        struct pending *p = arg;
        if (pending_live(p)) {
                if (status != OUTBOX_OK) {
                        send_error(p->c, 503, outbox_strerror(status));
                } else {
                        struct jbuf b = {0};
                        jbuf_printf(&b, "{\"total\":%llu,\"items\":[", (unsigned long long)total);
                        for (size_t i = 0; i < n; i++) {
                                if (i)
                                        jbuf_put(&b, ",", 1);
                                json_record(&b, recs[i]);
                        }
                        jbuf_printf(&b, "]}\n");
                        send_json(p->c, 200, &b);
                }
        }
        outbox_records_free(recs, n);
        pending_free(p);
}

static void page_deadletters(struct conn *c, struct http_req *req)
{
        char v[32];
        size_t offset = 0, limit = 50;
        if (http_query_get(req->query, "offset", 0, v, sizeof v))
                offset = (size_t)strtoull(v, NULL, 10);
        if (http_query_get(req->query, "limit", 0, v, sizeof v))
                limit = (size_t)strtoull(v, NULL, 10);
        if (limit == 0 || limit > OUTBOX_LIST_MAX) {
                send_error(c, 400, "limit must be 1..1000");
                return;
        }
        struct pending *p = pending_new(c);
        if (!p) {
                send_error(c, 503, "out of memory");
                return;
        }
        int rc = outbox_list_dead(c->srv->outbox, offset, limit, on_dead_list, p);
        if (rc != 0) {
                send_error(c, 503, outbox_strerror(rc));
                pending_free(p);
        }
}

static void on_get(void *arg, int status, struct outbox_detail *d)
{
        struct pending *p = arg;
        if (pending_live(p)) {
                if (status == OUTBOX_ENOENT) {
                        send_error(p->c, 404, "no intyg with that id");
                } else if (status != OUTBOX_OK || !d) {
                        send_error(p->c, 503, outbox_strerror(status));
                } else {
                        struct jbuf b = {0};
                        jbuf_printf(&b, "{\"records\":[");
                        for (size_t i = 0; i < d->n_records; i++) {
                                if (i)
                                        jbuf_put(&b, ",", 1);
                                json_record(&b, &d->records[i]);
                        }
                        jbuf_printf(&b, "],\"events\":[");
                        for (size_t i = 0; i < d->n_events; i++) {
                                const struct outbox_event *e = &d->events[i];
                                jbuf_printf(&b, "%s{\"at\":", i ? "," : "");
                                json_time(&b, e->at_ms);
                                jbuf_printf(&b, ",\"kind\":\"%s\",\"event\":", kind_str(e->kind));
                                jbuf_str(&b, e->event);
                                jbuf_printf(&b, ",\"detail\":");
                                jbuf_str(&b, e->detail);
                                jbuf_printf(&b, ",\"actor\":");
                                jbuf_str(&b, e->actor);
                                jbuf_printf(&b, "}");
                        }
                        jbuf_printf(&b, "],\"events_dropped\":%zu}\n", d->events_dropped);
                        send_json(p->c, 200, &b);
                }
        }
        outbox_detail_free(d);
        pending_free(p);
}

static void page_intyg(struct conn *c, struct http_req *req)
{
        const char *id = req->path + strlen("/api/v1/intyg/");
        if (!*id || strlen(id) > INTYG_ID_MAX) {
                send_error(c, 400, "expected /api/v1/intyg/{intygs-id}");
                return;
        }
        struct pending *p = pending_new(c);
        if (!p) {
                send_error(c, 503, "out of memory");
                return;
        }
        int rc = outbox_get(c->srv->outbox, 0, id, on_get, p);
        if (rc != 0) {
                send_error(c, 503, outbox_strerror(rc));
                pending_free(p);
        }
}

/* ---- actions ---- */

static void audit(struct server *srv, const char *actor, const char *action, const char *ids,
                  size_t changed)
{
        LOGI("admin_action", "actor", actor, "action", action, "ids", ids, "#changed",
             (long long)changed);
        if (!srv->cfg->admin_audit_log)
                return;
        struct jbuf b = {0};
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        jbuf_printf(&b, "{\"at\":");
        json_time(&b, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        jbuf_printf(&b, ",\"actor\":");
        jbuf_str(&b, actor);
        jbuf_printf(&b, ",\"action\":");
        jbuf_str(&b, action);
        jbuf_printf(&b, ",\"ids\":");
        jbuf_str(&b, ids);
        jbuf_printf(&b, ",\"changed\":%zu}\n", changed);
        size_t len;
        char *line = jbuf_take(&b, &len);
        if (!line)
                return;
        int fd = open(srv->cfg->admin_audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
                ssize_t w = write(fd, line, len);
                if (w != (ssize_t)len || fsync(fd) != 0)
                        LOGE("audit_write_failed", "file", srv->cfg->admin_audit_log);
                close(fd);
        } else {
                LOGE("audit_open_failed", "file", srv->cfg->admin_audit_log);
        }
        free(line);
}

struct action {
        struct pending *p;
        char ids_text[1024];
        char action[16];
};

static void on_action_done(void *arg, int status, size_t changed)
{
        struct action *a = arg;
        struct pending *p = a->p;
        if (status == OUTBOX_OK) {
                audit(p->c->srv, p->actor, a->action, a->ids_text, changed);
                if (!strcmp(a->action, "replay"))
                        forwarder_kick(p->c->srv->forwarder);
        }
        if (pending_live(p)) {
                if (status != OUTBOX_OK) {
                        send_error(p->c, 503, outbox_strerror(status));
                } else {
                        struct jbuf b = {0};
                        jbuf_printf(&b, "{\"action\":\"%s\",\"changed\":%zu}\n", a->action,
                                    changed);
                        send_json(p->c, 200, &b);
                }
        }
        free(a);
        pending_free(p);
}

static void admin_identity(struct conn *c, char *out, size_t len)
{
        if (c->admin_id[0])
                snprintf(out, len, "x509:%s", c->admin_id);
        else
                snprintf(out, len, "loopback:%s", c->peer);
}

/* POST /api/v1/deadletters/{replay|discard}?id=A&id=B or ?all=1 */
static void action_deadletters(struct conn *c, struct http_req *req, bool replay)
{
        if (req->method != HTTP_POST) {
                http_respond(c, 405, "text/plain", "Allow: POST\r\n", "use POST\n", 9);
                return;
        }
        const char *ids[OUTBOX_IDS_MAX];
        char store[64][INTYG_ID_MAX + 1];
        size_t n = 0;
        char v[INTYG_ID_MAX + 1];
        while (n < 64 && http_query_get(req->query, "id", (int)n, v, sizeof v)) {
                snprintf(store[n], sizeof store[n], "%s", v);
                ids[n] = store[n];
                n++;
        }
        bool all = http_query_get(req->query, "all", 0, v, sizeof v) && !strcmp(v, "1");
        if (n == 0 && !all) {
                send_error(c, 400, "name the dead letters: ?id=ID (repeatable) or ?all=1");
                return;
        }
        struct action *a = calloc(1, sizeof *a);
        struct pending *p = a ? pending_new(c) : NULL;
        if (!p) {
                free(a);
                send_error(c, 503, "out of memory");
                return;
        }
        a->p = p;
        snprintf(a->action, sizeof a->action, "%s", replay ? "replay" : "discard");
        admin_identity(c, p->actor, sizeof p->actor);
        size_t o = 0;
        for (size_t i = 0; i < n && o + 2 < sizeof a->ids_text; i++) {
                int w =
                    snprintf(a->ids_text + o, sizeof a->ids_text - o, "%s%s", i ? "," : "", ids[i]);
                if (w < 0)
                        break;
                o += (size_t)w;
        }
        if (all)
                snprintf(a->ids_text, sizeof a->ids_text, "*");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        int rc = replay ? outbox_replay(c->srv->outbox, 0, all ? NULL : ids, all ? 0 : n, p->actor,
                                        now, on_action_done, a)
                        : outbox_discard(c->srv->outbox, 0, all ? NULL : ids, all ? 0 : n, p->actor,
                                         now, on_action_done, a);
        if (rc != 0) {
                send_error(c, 503, outbox_strerror(rc));
                free(a);
                pending_free(p);
                return;
        }
}

static void action_reload(struct conn *c, struct http_req *req)
{
        if (req->method != HTTP_POST) {
                http_respond(c, 405, "text/plain", "Allow: POST\r\n", "use POST\n", 9);
                return;
        }
        char actor[128];
        admin_identity(c, actor, sizeof actor);
        LOGI("admin_action", "actor", actor, "action", "reload");
        server_reload(c->srv);
        struct jbuf b = {0};
        jbuf_printf(&b, "{\"action\":\"reload\",\"config\":");
        jbuf_str(&b, c->srv->cfg->path);
        jbuf_printf(&b, "}\n");
        send_json(c, 200, &b);
}

struct stats_job {
        uv_work_t work;
        struct pending *p;
        struct stats *stats;
        char name[64];
        char query[512];
        char *out;
        size_t len;
        int rc;
        char err[256];
};

static void stats_work(uv_work_t *w)
{
        struct stats_job *sj = w->data;
        sj->rc = stats_http_report(sj->stats, sj->name, sj->query, &sj->out, &sj->len, sj->err,
                                   sizeof sj->err);
}

static void stats_done(uv_work_t *w, int status)
{
        struct stats_job *sj = w->data;
        struct pending *p = sj->p;
        if (pending_live(p)) {
                if (status != 0)
                        send_error(p->c, 503, "cancelled");
                else if (sj->rc != 0)
                        send_error(p->c, sj->rc == -2 ? 404 : 400, sj->err);
                else
                        http_respond(p->c, 200,
                                     strstr(sj->query, "format=csv") ? "text/csv; charset=utf-8"
                                                                     : "application/json",
                                     NULL, sj->out, sj->len);
        }
        free(sj->out);
        free(sj);
        pending_free(p);
}

/* GET /api/v1/stats/{report}?level=&id=&from=&to=&as_of=&format=json|csv: reports read the
 * store and may take a while, so they run on the pool, never on the loop. */
static void page_stats(struct conn *c, struct http_req *req)
{
        struct server *srv = c->srv;
        if (!srv->stats) {
                send_error(c, 404, "statistics are not configured ([stats] path)");
                return;
        }
        struct stats_job *sj = calloc(1, sizeof *sj);
        struct pending *p = sj ? pending_new(c) : NULL;
        if (!p) {
                free(sj);
                send_error(c, 503, "out of memory");
                return;
        }
        sj->p = p;
        sj->stats = srv->stats;
        snprintf(sj->name, sizeof sj->name, "%s", req->path + strlen("/api/v1/stats/"));
        snprintf(sj->query, sizeof sj->query, "%s", req->query);
        sj->work.data = sj;
        if (uv_queue_work(srv->loop, &sj->work, stats_work, stats_done) != 0) {
                send_error(c, 503, "cannot schedule the report");
                free(sj);
                pending_free(p);
        }
}

/* ---- dashboard: static files ---- */

static const char *mime_of(const char *path)
{
        const char *dot = strrchr(path, '.');
        if (!dot)
                return "application/octet-stream";
        if (!strcmp(dot, ".html"))
                return "text/html; charset=utf-8";
        if (!strcmp(dot, ".js"))
                return "text/javascript; charset=utf-8";
        if (!strcmp(dot, ".css"))
                return "text/css; charset=utf-8";
        if (!strcmp(dot, ".json"))
                return "application/json";
        if (!strcmp(dot, ".svg"))
                return "image/svg+xml";
        return "application/octet-stream";
}

static void page_static(struct conn *c, struct http_req *req)
{
        const char *dir = c->srv->cfg->dashboard_dir;
        if (!dir) {
                send_error(c, 404, "no dashboard configured ([admin] dashboard_dir)");
                return;
        }
        const char *rel = req->path + 1;
        if (!strcmp(req->path, "/") || !strcmp(req->path, "/dashboard") ||
            !strcmp(req->path, "/dashboard/"))
                rel = "index.html";
        else if (!strncmp(req->path, "/dashboard/", 11))
                rel = req->path + 11;
        /* No way out of the directory: plain names and subfolders only. */
        if (strstr(rel, "..") || rel[0] == '/' || strchr(rel, '\\')) {
                send_error(c, 404, "not found");
                return;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
            sb.st_size > ADMIN_STATIC_MAX) {
                if (fd >= 0)
                        close(fd);
                send_error(c, 404, "not found");
                return;
        }
        char *buf = malloc((size_t)sb.st_size + 1);
        ssize_t got = buf ? read(fd, buf, (size_t)sb.st_size) : -1;
        close(fd);
        if (got != sb.st_size) {
                free(buf);
                send_error(c, 503, "cannot read file");
                return;
        }
        http_respond(c, 200, mime_of(path), "Cache-Control: no-cache\r\n", buf, (size_t)got);
        free(buf);
}

/* The dispatch table: exact paths, then prefixes. */
struct route {
        const char *path;
        bool prefix;
        enum http_method method;
        void (*fn)(struct conn *, struct http_req *);
};

static void act_replay(struct conn *c, struct http_req *r)
{
        action_deadletters(c, r, true);
}

static void act_discard(struct conn *c, struct http_req *r)
{
        action_deadletters(c, r, false);
}

static const struct route routes[] = {
    {"/healthz", false, HTTP_GET, page_healthz},
    {"/readyz", false, HTTP_GET, page_readyz},
    {"/metrics", false, HTTP_GET, page_metrics},
    {"/api/v1/summary", false, HTTP_GET, page_summary},
    {"/api/v1/rejections", false, HTTP_GET, page_rejections},
    {"/api/v1/config", false, HTTP_GET, page_config},
    {"/api/v1/deadletters", false, HTTP_GET, page_deadletters},
    {"/api/v1/deadletters/replay", false, HTTP_POST, act_replay},
    {"/api/v1/deadletters/discard", false, HTTP_POST, act_discard},
    {"/api/v1/reload", false, HTTP_POST, action_reload},
    {"/api/v1/intyg/", true, HTTP_GET, page_intyg},
    {"/api/v1/stats/", true, HTTP_GET, page_stats},
    {"/dashboard", true, HTTP_GET, page_static},
    {"/", false, HTTP_GET, page_static},
};

/* On a mutual-TLS admin listener only the configured admin identities get in. */
static bool admin_allowed(const struct conn *c)
{
        if (!c->ssl)
                return true; /* plain HTTP: loopback by configuration */
        const char *list = c->srv->cfg->admin_ids;
        size_t idl = strlen(c->admin_id);
        for (const char *p = list; p && *p;) {
                while (*p == ' ' || *p == ',')
                        p++;
                size_t n = strcspn(p, ", ");
                if (n == idl && idl && !strncmp(p, c->admin_id, n))
                        return true;
                p += n;
        }
        return false;
}

void admin_on_request(struct conn *c, struct http_req *req)
{
        if (!admin_allowed(c)) {
                LOGW("admin_refused", "#conn", (long long)c->id, "admin", c->admin_id, "path",
                     req->path);
                send_error(c, 403, "this certificate is not an administrator's ([admin] admins)");
                return;
        }
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
                const struct route *r = &routes[i];
                bool match = r->prefix ? !strncmp(req->path, r->path, strlen(r->path))
                                       : !strcmp(req->path, r->path);
                if (!match)
                        continue;
                if (req->method != r->method &&
                    !(r->method == HTTP_GET && req->method == HTTP_HEAD)) {
                        char allow[32];
                        snprintf(allow, sizeof allow, "Allow: %s\r\n", http_method_str(r->method));
                        http_respond(c, 405, "text/plain", allow, "method not allowed\n", 19);
                        return;
                }
                r->fn(c, req);
                return;
        }
        send_error(c, 404, "no such admin endpoint");
}

/* ---- the callers' own status query on the mTLS listener ---- */

struct status_q {
        struct pending *p;
        char caller[HSA_ID_MAX + 1];
};

static void on_caller_get(void *arg, int status, struct outbox_detail *d)
{
        struct status_q *q = arg;
        struct pending *p = q->p;
        if (pending_live(p)) {
                /* Someone else's intyg is answered exactly like an unknown one. */
                size_t mine = 0;
                if (status == OUTBOX_OK && d)
                        for (size_t i = 0; i < d->n_records; i++)
                                if (!strcmp(d->records[i].caller, q->caller))
                                        mine++;
                if (status != OUTBOX_OK && status != OUTBOX_ENOENT) {
                        send_error(p->c, 503, outbox_strerror(status));
                } else if (mine == 0) {
                        send_error(p->c, 404, "no intyg with that id submitted by this caller");
                } else {
                        struct jbuf b = {0};
                        jbuf_printf(&b, "{\"records\":[");
                        size_t k = 0;
                        for (size_t i = 0; i < d->n_records; i++) {
                                const struct outbox_record *r = &d->records[i];
                                if (strcmp(r->caller, q->caller))
                                        continue;
                                jbuf_printf(&b, "%s{\"id\":", k++ ? "," : "");
                                jbuf_str(&b, r->id);
                                jbuf_printf(&b, ",\"kind\":\"%s\",\"state\":\"%s\",\"received\":",
                                            kind_str(r->kind), outbox_state_name(r->state));
                                json_time(&b, r->received_ms);
                                jbuf_printf(&b, ",\"delivered\":");
                                json_time(&b, r->delivered_ms);
                                jbuf_printf(&b, ",\"attempts\":%d,\"fk_result\":", r->attempts);
                                jbuf_str(&b, r->fk_result);
                                jbuf_printf(&b, ",\"last_error\":");
                                jbuf_str(&b, r->last_error);
                                jbuf_printf(&b, "}");
                        }
                        jbuf_printf(&b, "]}\n");
                        send_json(p->c, 200, &b);
                }
        }
        outbox_detail_free(d);
        free(q);
        pending_free(p);
}

void caller_status_request(struct conn *c, struct http_req *req)
{
        if (req->method != HTTP_GET) {
                http_respond(c, 405, "text/plain", "Allow: GET\r\n", "use GET\n", 8);
                return;
        }
        const char *id = req->path + strlen("/api/v1/status/");
        if (!*id || strlen(id) > INTYG_ID_MAX) {
                send_error(c, 400, "expected /api/v1/status/{intygs-id}");
                return;
        }
        struct status_q *q = calloc(1, sizeof *q);
        struct pending *p = q ? pending_new(c) : NULL;
        if (!p) {
                free(q);
                send_error(c, 503, "out of memory");
                return;
        }
        q->p = p;
        snprintf(q->caller, sizeof q->caller, "%s", c->caller);
        int rc = outbox_get(c->srv->outbox, 0, id, on_caller_get, q);
        if (rc != 0) {
                send_error(c, 503, outbox_strerror(rc));
                free(q);
                pending_free(p);
        }
}
