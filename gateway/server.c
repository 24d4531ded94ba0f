/*
 * server.c - start-up order, listeners, admission counts, signals (SIGHUP reload, SIGTERM
 * and SIGINT drain), housekeeping tick, orderly shutdown. Loop thread only.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authorise.h"
#include "conn.h"
#include "forward.h"
#include "hsa.h"
#include "log.h"
#include "outbox.h"
#include "stats_store.h"
#include "tls.h"
#include "validate.h"

#define TICK_MS 1000

static unsigned caller_hash(const char *s)
{
        unsigned h = 2166136261u;
        while (*s)
                h = (h ^ (unsigned char)*s++) * 16777619u;
        return h % CALLER_BUCKETS;
}

int server_caller_count(struct server *srv, const char *id, int delta)
{
        unsigned b = caller_hash(id);
        struct caller_count **pp = &srv->callers[b];
        for (; *pp; pp = &(*pp)->next) {
                if (strcmp((*pp)->id, id) == 0)
                        break;
        }
        if (!*pp) {
                if (delta <= 0)
                        return 0;
                struct caller_count *cc = calloc(1, sizeof *cc);
                if (!cc)
                        return 0;
                snprintf(cc->id, sizeof cc->id, "%s", id);
                *pp = cc;
        }
        struct caller_count *cc = *pp;
        cc->n += delta;
        int n = cc->n;
        if (cc->n <= 0) {
                *pp = cc->next;
                free(cc);
        }
        return n;
}

static void on_connection(uv_stream_t *h, int status)
{
        struct listener *lst = h->data;
        struct server *srv = lst->handle.loop->data;
        if (status < 0) {
                LOGW("accept_failed", "error", uv_strerror(status));
                return;
        }
        conn_accept(srv, lst, h);
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
        char host[128];
        const char *colon = strrchr(addr, ':');
        if (!colon)
                return UV_EINVAL;
        size_t hl = (size_t)(colon - addr);
        if (hl >= sizeof host)
                return UV_EINVAL;
        memcpy(host, addr, hl);
        host[hl] = '\0';
        int port = atoi(colon + 1);
        if (host[0] == '[') {
                size_t l = strlen(host);
                if (l < 2 || host[l - 1] != ']')
                        return UV_EINVAL;
                host[l - 1] = '\0';
                return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss);
        }
        return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

static bool listener_open(struct server *srv, struct listener *lst, const char *addr, char *err,
                          size_t errlen)
{
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        int rc = parse_addr(addr, &ss);
        if (rc) {
                snprintf(err, errlen, "%s: bad address", addr);
                return false;
        }
        uv_tcp_init(srv->loop, &lst->handle);
        lst->handle.data = lst;
        lst->open = true;
        rc = uv_tcp_bind(&lst->handle, (struct sockaddr *)&ss, 0);
        if (rc == 0)
                rc = uv_listen((uv_stream_t *)&lst->handle, 511, on_connection);
        if (rc) {
                snprintf(err, errlen, "%s: cannot listen: %s", addr, uv_strerror(rc));
                return false;
        }
        struct sockaddr_storage bound;
        int bl = sizeof bound;
        uv_tcp_getsockname(&lst->handle, (struct sockaddr *)&bound, &bl);
        lst->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
        return true;
}

static SSL_CTX *caller_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
        struct tls_server_opts o = {.cert = cfg->tls_cert,
                                    .key = cfg->tls_key,
                                    .ca = cfg->tls_ca,
                                    .crl = cfg->tls_crl,
                                    .require_client_cert = true};
        return tls_server_ctx_new(&o, err, errlen);
}

static SSL_CTX *admin_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
        if (!cfg->admin_tls_cert)
                return NULL;
        struct tls_server_opts o = {.cert = cfg->admin_tls_cert,
                                    .key = cfg->admin_tls_key,
                                    .ca = cfg->admin_tls_ca,
                                    .crl = NULL,
                                    .require_client_cert = true};
        return tls_server_ctx_new(&o, err, errlen);
}

static struct hsa_dir *load_hsa(const struct config *cfg, char *err, size_t errlen)
{
        if (!cfg->hsa_ldif)
                return NULL;
        struct hsa_opts o = {
            .ldif = cfg->hsa_ldif, .mapping = cfg->hsa_mapping, .level = cfg->hsa_level};
        struct hsa_load_report rep;
        memset(&rep, 0, sizeof rep);
        struct hsa_dir *d = hsa_dir_load(&o, &rep, err, errlen);
        if (d && rep.units == 0) {
                /* A truncated export must not wipe the directory: refuse it whole. */
                snprintf(err, errlen, "%s: no units in the extract (truncated export?)",
                         cfg->hsa_ldif);
                hsa_dir_free(d);
                return NULL;
        }
        if (d) {
                LOGI("hsa_loaded", "file", cfg->hsa_ldif, "#units", (long long)rep.units,
                     "#skipped", (long long)rep.skipped);
                for (size_t i = 0; i < rep.n_errors && i < 8; i++)
                        LOGW("hsa_entry_skipped", "detail", rep.first_errors[i]);
        }
        return d;
}

static void on_tick(uv_timer_t *t);

static void on_counts(void *arg, int status, const struct outbox_counts *c)
{
        struct server *srv = arg;
        if (status != OUTBOX_OK)
                return;
        srv->metrics.outbox_queued = (int64_t)c->n[OB_QUEUED];
        srv->metrics.outbox_inflight = (int64_t)c->n[OB_INFLIGHT];
        srv->metrics.outbox_delivered = (int64_t)c->n[OB_DELIVERED];
        srv->metrics.outbox_dead = (int64_t)c->n[OB_DEAD];
        int64_t now = (int64_t)uv_now(srv->loop);
        (void)now;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        srv->metrics.outbox_oldest_queued_s =
            c->oldest_queued_ms ? (double)(wall - c->oldest_queued_ms) / 1000.0 : 0;
}

static void on_purged(void *arg, int status, size_t changed)
{
        (void)arg;
        if (status == OUTBOX_OK && changed)
                LOGI("outbox_purged", "#bodies", (long long)changed);
}

static void on_tick(uv_timer_t *t)
{
        struct server *srv = t->data;
        static const int64_t day_ms = 24LL * 3600 * 1000;
        if (!srv->outbox)
                return;
        if (outbox_counts(srv->outbox, on_counts, srv) != 0)
                LOGW("outbox_busy", "op", "counts");
        struct outbox_stats st;
        outbox_stats_get(srv->outbox, &st);
        srv->metrics.outbox_commits = st.commits;
        srv->metrics.outbox_fsyncs = st.fsyncs;
        srv->metrics.outbox_puts = st.puts;
        srv->ready = srv->caller.open && outbox_healthy(srv->outbox) && !srv->draining;
        /* Purge delivered bodies past retention once a minute. */
        static const uint64_t purge_every = 60;
        uint64_t ticks = (uv_now(srv->loop) - (uint64_t)srv->started_ms) / TICK_MS;
        if (ticks % purge_every == 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
                int64_t before = wall - (int64_t)srv->cfg->retention_days * day_ms;
                if (outbox_purge(srv->outbox, before, on_purged, srv) != 0)
                        LOGW("outbox_busy", "op", "purge");
        }
        if (srv->forwarder)
                forwarder_kick(srv->forwarder);
}

static void on_signal(uv_signal_t *s, int signum)
{
        struct server *srv = s->data;
        if (signum == SIGHUP) {
                server_reload(srv);
                return;
        }
        server_drain(srv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void server_reload(struct server *srv)
{
        LOGI("reload_begin", "config", srv->cfg->path);
        int nerr = 0;
        char errs[4096] = "";
        FILE *ef = fmemopen(errs, sizeof errs - 1, "w");
        struct config *ncfg = config_load(srv->cfg->path, true, ef, &nerr);
        if (ef)
                fclose(ef);
        if (!ncfg) {
                LOGE("reload_failed", "reason", "configuration has errors; keeping the old one",
                     "detail", errs);
                return;
        }
        char err[512];
        SSL_CTX *nctx = caller_ctx_new(ncfg, err, sizeof err);
        if (!nctx) {
                LOGE("reload_failed", "reason", err);
                config_free(ncfg);
                return;
        }
        SSL_CTX *nadmin = NULL;
        if (ncfg->admin_tls_cert) {
                nadmin = admin_ctx_new(ncfg, err, sizeof err);
                if (!nadmin) {
                        LOGE("reload_failed", "reason", err);
                        SSL_CTX_free(nctx);
                        config_free(ncfg);
                        return;
                }
        }
        struct hsa_dir *nhsa = NULL;
        if (ncfg->hsa_ldif) {
                nhsa = load_hsa(ncfg, err, sizeof err);
                if (!nhsa) {
                        LOGE("reload_failed", "reason", err, "detail",
                             "HSA extract failed to load; keeping the old directory");
                        SSL_CTX_free(nctx);
                        SSL_CTX_free(nadmin);
                        config_free(ncfg);
                        return;
                }
        }
        struct grants *ngr = NULL;
        if (ncfg->grants) {
                ngr = grants_load(ncfg->grants, err, sizeof err);
                if (!ngr) {
                        LOGE("reload_failed", "reason", err);
                        hsa_dir_free(nhsa);
                        SSL_CTX_free(nctx);
                        SSL_CTX_free(nadmin);
                        config_free(ncfg);
                        return;
                }
        }
        /* Everything built: swap. Connections keep the SSL_CTX they started with. Jobs on the
         * pool never touch the directory or grants (those are used on the loop only). */
        SSL_CTX_free(srv->caller.ctx);
        srv->caller.ctx = nctx;
        if (nadmin && srv->admin.ctx) {
                SSL_CTX_free(srv->admin.ctx);
                srv->admin.ctx = nadmin;
        } else {
                SSL_CTX_free(nadmin);
        }
        hsa_dir_free(srv->hsa);
        srv->hsa = nhsa;
        grants_free(srv->grants);
        srv->grants = ngr;
        /* Keys that need a restart keep their old values (listen addresses, paths). */
        struct config *old = srv->cfg;
        srv->cfg = ncfg;
        enum log_level lvl;
        if (log_level_parse(ncfg->log_level, &lvl))
                log_set_level(lvl);
        if (srv->forwarder)
                forwarder_reconfigure(srv->forwarder, ncfg);
        config_free(old);
        LOGI("reload_done", "config", srv->cfg->path);
}

static void close_listener(struct listener *l)
{
        if (l->open) {
                l->open = false;
                uv_close((uv_handle_t *)&l->handle, NULL);
        }
}

static void maybe_finish(struct server *srv);

static void on_outbox_closed(void *arg)
{
        struct server *srv = arg;
        srv->outbox = NULL;
        LOGI("stopped", "#exit_code", (long long)srv->exit_code);
        maybe_finish(srv);
}

static void on_forwarder_closed(void *arg)
{
        struct server *srv = arg;
        srv->forwarder = NULL;
        maybe_finish(srv);
}

static void maybe_finish(struct server *srv)
{
        if (!srv->draining || srv->n_conns > 0 || srv->jobs_in_flight > 0)
                return;
        if (srv->forwarder) {
                struct forwarder *f = srv->forwarder;
                if (!forwarder_closing(f))
                        forwarder_close(f, on_forwarder_closed, srv);
                return;
        }
        if (srv->outbox) {
                if (!srv->outbox_closing) {
                        srv->outbox_closing = true;
                        outbox_close(srv->outbox, on_outbox_closed, srv);
                }
                return;
        }
        if (srv->finished)
                return;
        /* Nothing left: close loop handles. */
        srv->finished = true;
        uv_close((uv_handle_t *)&srv->tick, NULL);
        uv_close((uv_handle_t *)&srv->sig_term, NULL);
        uv_close((uv_handle_t *)&srv->sig_int, NULL);
        uv_close((uv_handle_t *)&srv->sig_hup, NULL);
}

void server_conn_gone(struct server *srv)
{
        maybe_finish(srv);
}

void server_drain(struct server *srv, const char *why)
{
        if (srv->draining) {
                LOGW("drain_again", "signal", why);
                return;
        }
        srv->draining = true;
        srv->ready = false;
        LOGI("draining", "signal", why, "#connections", (long long)srv->n_conns, "#jobs",
             (long long)srv->jobs_in_flight);
        close_listener(&srv->caller);
        close_listener(&srv->admin);
        uv_timer_stop(&srv->tick);
        /* Idle connections go now; busy ones close after their answer. */
        struct conn *c = srv->conns;
        while (c) {
                struct conn *next = c->next;
                if (!c->busy && c->pending_len == 0)
                        conn_close(c, "draining");
                else
                        c->close_after_write = true;
                c = next;
        }
        maybe_finish(srv);
}

static void write_port_file(struct server *srv)
{
        if (!srv->port_file)
                return;
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", srv->port_file);
        FILE *f = fopen(tmp, "w");
        if (!f)
                return;
        fprintf(f, "%d %d\n", srv->caller.port, srv->admin.port);
        fclose(f);
        if (rename(tmp, srv->port_file) != 0)
                LOGW("port_file", "error", strerror(errno));
}

bool server_start(struct server *srv, uv_loop_t *loop, struct config *cfg, char *err, size_t errlen)
{
        srv->loop = loop;
        loop->data = srv;
        srv->cfg = cfg;
        srv->started_ms = (int64_t)uv_now(loop);
        enum log_level lvl;
        if (log_level_parse(cfg->log_level, &lvl))
                log_set_level(lvl);
        if (!srv->node_id[0]) {
                /* Stable across restarts, so that a restarted node takes back its own in-flight
                 * records at once (several gateways on one host: give each --node-id). */
                char host[48] = "node";
                gethostname(host, sizeof host - 1);
                snprintf(srv->node_id, sizeof srv->node_id, "%s", host);
        }

        srv->caller.kind = LISTENER_CALLER;
        srv->caller.on_request = pipeline_on_request;
        srv->admin.kind = LISTENER_ADMIN;
        srv->admin.on_request = admin_on_request;

        srv->caller.ctx = caller_ctx_new(cfg, err, errlen);
        if (!srv->caller.ctx)
                return false;
        if (cfg->admin_tls_cert) {
                srv->admin.ctx = admin_ctx_new(cfg, err, errlen);
                if (!srv->admin.ctx)
                        return false;
        }
        srv->validator = validator_new(cfg->schema_dir, err, errlen);
        if (!srv->validator)
                return false;
        if (cfg->hsa_ldif) {
                srv->hsa = load_hsa(cfg, err, errlen);
                if (!srv->hsa)
                        return false;
        }
        if (cfg->grants) {
                srv->grants = grants_load(cfg->grants, err, errlen);
                if (!srv->grants)
                        return false;
        }
        if (cfg->stats_path) {
                srv->stats = stats_open(cfg->stats_path, cfg->pseudonym_key, err, errlen);
                if (!srv->stats)
                        return false;
        }
        struct outbox_sqlite_opts oo = {.common = {.batch_max = (size_t)cfg->batch_max}};
        srv->outbox = outbox_sqlite_new(loop, cfg->outbox_path, srv->node_id, &oo, err, errlen);
        if (!srv->outbox)
                return false;
        srv->forwarder = forwarder_new(srv, err, errlen);
        if (!srv->forwarder)
                return false;
        if (!listener_open(srv, &srv->caller, cfg->listen, err, errlen))
                return false;
        if (!listener_open(srv, &srv->admin, cfg->admin_listen, err, errlen))
                return false;

        uv_signal_init(loop, &srv->sig_term);
        uv_signal_init(loop, &srv->sig_int);
        uv_signal_init(loop, &srv->sig_hup);
        srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
        uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
        uv_signal_start(&srv->sig_int, on_signal, SIGINT);
        uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);
        uv_timer_init(loop, &srv->tick);
        srv->tick.data = srv;
        uv_timer_start(&srv->tick, on_tick, 0, TICK_MS);
        srv->ready = true;
        write_port_file(srv);
        char ports[64];
        snprintf(ports, sizeof ports, "%d/%d", srv->caller.port, srv->admin.port);
        LOGI("started", "listen", cfg->listen, "admin", cfg->admin_listen, "ports", ports, "node",
             srv->node_id, "version", INTYGSGW_VERSION);
        return true;
}

void server_note_rejection(struct server *srv, const char *caller, const char *intyg,
                           const char *rule, const char *path, const char *message)
{
        struct rejection *r = &srv->rejections[srv->rejections_total++ % REJECTIONS_KEPT];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r->at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        snprintf(r->caller, sizeof r->caller, "%s", caller ? caller : "");
        snprintf(r->intyg, sizeof r->intyg, "%s", intyg ? intyg : "");
        snprintf(r->rule, sizeof r->rule, "%s", rule ? rule : "");
        snprintf(r->path, sizeof r->path, "%s", path ? path : "");
        snprintf(r->message, sizeof r->message, "%s", message ? message : "");
}

static void server_free_parts(struct server *srv)
{
        SSL_CTX_free(srv->caller.ctx);
        SSL_CTX_free(srv->admin.ctx);
        validator_free(srv->validator);
        hsa_dir_free(srv->hsa);
        grants_free(srv->grants);
        stats_close(srv->stats);
        for (int i = 0; i < CALLER_BUCKETS; i++) {
                struct caller_count *c = srv->callers[i];
                while (c) {
                        struct caller_count *n = c->next;
                        free(c);
                        c = n;
                }
        }
        config_free(srv->cfg);
}

static void on_abort_outbox_closed(void *arg)
{
        (void)arg;
}

void server_abort(struct server *srv)
{
        close_listener(&srv->caller);
        close_listener(&srv->admin);
        if (srv->forwarder) {
                forwarder_close(srv->forwarder, NULL, NULL);
                srv->forwarder = NULL;
        }
        if (srv->outbox && !srv->outbox_closing)
                outbox_close(srv->outbox, on_abort_outbox_closed, srv);
        srv->outbox = NULL;
        if (srv->loop)
                uv_run(srv->loop, UV_RUN_DEFAULT);
        server_free_parts(srv);
}

int server_run(struct server *srv)
{
        uv_run(srv->loop, UV_RUN_DEFAULT);
        server_free_parts(srv);
        return srv->exit_code;
}
