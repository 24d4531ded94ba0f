/*
 * pipeline.c - one intyg's way through the daemon: route -> validate (thread pool) ->
 * authorise -> tag -> persist (outbox, group commit) -> answer -> statistics -> forward.
 *
 * Owns: struct job (the request body, the validation result, the tags) from the request until
 * the answer is sent; the connection is held by a reference meanwhile.
 * Threads: job_work runs on a libuv pool thread and touches only the job and the read-only
 * validator; everything else runs on the loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "authorise.h"
#include "conn.h"
#include "forward.h"
#include "hsa.h"
#include "log.h"
#include "outbox.h"
#include "riv_soap.h"
#include "server.h"
#include "stats_store.h"
#include "validate.h"

#define PATH_REGISTER "/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"
#define PATH_REVOKE   "/clinicalprocess/healthcond/certificate/RevokeCertificate/2/rivtabp21"
#define PATH_PLAIN    "/api/v1/intyg"
#define ACTION_REGISTER                                                                            \
        "urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3:"           \
        "RegisterCertificate"
#define ACTION_REVOKE                                                                              \
        "urn:riv:clinicalprocess:healthcond:certificate:RevokeCertificateResponder:2:"             \
        "RevokeCertificate"

struct job {
        uv_work_t work;
        struct server *srv;
        struct conn *c;
        uint64_t seq;
        char caller[HSA_ID_MAX + 1];
        enum riv_contract path_contract; /* RIV_UNKNOWN: the plain-XML adapter, any contract */
        bool soap;                       /* the RIV-TA path: answer faults as SOAP faults */
        char *body;
        size_t len;
        struct validate_opts opts;
        struct validate_result res;
        struct intyg_tags tags;
        int64_t received_ms; /* loop clock */
        int64_t received_wall_ms;
        double validate_s;
        uint64_t queued_ns, started_ns, put_ns; /* uv_hrtime: queued, pool start, outbox put */
};

static int64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_free(struct job *j)
{
        intyg_wipe(&j->res.intyg);
        validate_result_clear(&j->res);
        free(j->body);
        j->srv->jobs_in_flight--;
        struct conn *c = j->c;
        struct server *srv = j->srv;
        free(j);
        conn_unref(c);
        server_conn_gone(srv);
}

static const char *kind_name(enum riv_contract c)
{
        return c == RIV_REVOKE ? "revoke" : "register";
}

static void count_outcome(struct job *j, const char *outcome)
{
        struct metrics *m = &j->srv->metrics;
        char k[160];
        snprintf(k, sizeof k, "outcome=\"%s\",kind=\"%s\"", outcome, kind_name(j->res.contract));
        labelled_add(&m->intyg_outcomes, k, 1);
        snprintf(k, sizeof k, "caller=\"%s\",outcome=\"%s\"", j->caller, outcome);
        labelled_add(&m->intyg_by_caller, k, 1);
        if (j->tags.county[0]) {
                snprintf(k, sizeof k, "county=\"%s\",outcome=\"%s\"", j->tags.county, outcome);
                labelled_add(&m->intyg_by_county, k, 1);
        }
}

/* Send a body back and finish the job. */
static void answer(struct job *j, int status, const char *ctype, char *body_take, size_t len)
{
        struct conn *c = j->c;
        if (!c->closing && c->req.seq == j->seq) {
                http_respond(c, status, ctype, NULL, body_take ? body_take : "", len);
                histogram_observe(&j->srv->metrics.ack_latency,
                                  (double)(conn_now_ms(c) - j->received_ms) / 1000.0);
        }
        free(body_take);
        job_free(j);
}

static void answer_result(struct job *j, const char *code, const char *error_id, const char *text)
{
        char *out = NULL;
        size_t len = 0;
        enum riv_contract ct = j->res.contract ? j->res.contract : RIV_REGISTER;
        if (riv_soap_response(ct, code, error_id, text, &out, &len) != 0) {
                answer(j, 500, "text/plain", strdup("cannot encode response\n"), 23);
                return;
        }
        answer(j, 200, "text/xml; charset=utf-8", out, len);
}

static void answer_fault(struct job *j, const char *faultcode, const char *faultstring)
{
        char *out = NULL;
        size_t len = 0;
        if (riv_soap_fault(faultcode, faultstring, &out, &len) != 0) {
                answer(j, 500, "text/plain", strdup("cannot encode fault\n"), 20);
                return;
        }
        /* SOAP 1.1 over HTTP: a fault travels with status 500. */
        answer(j, 500, "text/xml; charset=utf-8", out, len);
}

static void job_work(uv_work_t *w)
{
        struct job *j = w->data;
        j->started_ns = uv_hrtime();
        if (validate_request(j->srv->validator, j->body, j->len, &j->opts, &j->res) != 0 &&
            j->res.status == VALIDATE_OK) {
                j->res.status = VALIDATE_FAULT;
                snprintf(j->res.fault, sizeof j->res.fault, "internal validation failure");
                snprintf(j->res.fault_code, sizeof j->res.fault_code, "internal");
        }
        j->validate_s = (double)(uv_hrtime() - j->started_ns) / 1e9;
}

/* Rule families for the rejections metric: FK7804 content rules (upstream pattern ids, and
 * our "intyg", "type" and "version"), schema, XML safety, identifiers. */
static const char *rule_family(const char *rule)
{
        if ((rule[0] == 'q' && rule[1] >= '0' && rule[1] <= '9') || !strcmp(rule, "intyg") ||
            !strcmp(rule, "type") || !strcmp(rule, "version"))
                return "fk7804";
        if (!strncmp(rule, "xsd", 3))
                return "xsd";
        if (!strncmp(rule, "xml", 3))
                return "xml";
        if (!strncmp(rule, "person", 6))
                return "person_id";
        if (!strcmp(rule, "hsa-id") || !strcmp(rule, "intyg-id"))
                return "identifier";
        return "other";
}

static void record_rejection(struct job *j)
{
        struct metrics *m = &j->srv->metrics;
        for (size_t i = 0; i < j->res.errs.n; i++) {
                char k[96];
                const struct verr *e = &j->res.errs.items[i];
                const char *rule = e->rule;
                server_note_rejection(j->srv, j->caller, j->res.intyg.id, rule, e->path,
                                      e->message);
                snprintf(k, sizeof k, "rule=\"%.40s\",family=\"%s\"", rule, rule_family(rule));
                labelled_add(&m->rejections, k, 1);
        }
}

static void on_stored(void *arg, enum outbox_put_result r, const char *detail)
{
        struct job *j = arg;
        struct server *srv = j->srv;
        const struct intyg *in = &j->res.intyg;
        histogram_observe(&srv->metrics.store_latency, (double)(uv_hrtime() - j->put_ns) / 1e9);
        switch (r) {
        case OB_PUT_STORED:
                count_outcome(j, "accepted");
                LOGI("intyg_accepted", "intyg", in->id, "kind", kind_name(j->res.contract),
                     "caller", j->caller, "unit", in->unit_hsa, "followup", j->tags.followup_hsa,
                     "#validate_us", (long long)(j->validate_s * 1e6));
                if (srv->stats) {
                        char err[256];
                        if (stats_record_intyg(srv->stats, in, &j->tags, err, sizeof err) != 0)
                                LOGW("stats_record_failed", "intyg", in->id, "reason", err);
                }
                forwarder_kick(srv->forwarder);
                answer_result(j, "OK", NULL, NULL);
                return;
        case OB_PUT_DUPLICATE:
                count_outcome(j, "duplicate");
                LOGI("intyg_duplicate", "intyg", in->id, "caller", j->caller);
                answer_result(j, "INFO", NULL, "Certificate already exists");
                return;
        case OB_PUT_CONFLICT:
                count_outcome(j, "conflict");
                LOGI("intyg_conflict", "intyg", in->id, "caller", j->caller);
                answer_result(j, "ERROR", "VALIDATION_ERROR",
                              "Certificate already exists with other content: an intygs-id may "
                              "be used for one certificate only");
                return;
        case OB_PUT_ERROR:
                count_outcome(j, "error");
                LOGE("outbox_put_failed", "intyg", in->id, "reason", detail);
                answer_result(j, "ERROR", "TECHNICAL_ERROR",
                              "The gateway could not store the certificate durably; try again "
                              "later");
                return;
        }
}

/* Authorise (grants) and tag (HSA directory) in one step; answers and returns false when
 * the intyg is refused. */
static bool authorise_and_tag(struct job *j)
{
        struct server *srv = j->srv;
        const struct intyg *in = &j->res.intyg;
        struct admit_policy pol = {.provider_mismatch = srv->cfg->provider_mismatch,
                                   .unknown_unit = srv->cfg->unknown_unit};
        enum admit_result ar;
        memset(&j->tags, 0, sizeof j->tags);
        if (srv->grants)
                ar = admit_intyg(srv->grants, srv->hsa, &pol, j->caller, in->unit_hsa,
                                 in->provider_hsa, &j->tags);
        else
                ar = ADMIT_UNKNOWN_CALLER;
        char k[64];
        snprintf(k, sizeof k, "resolution=\"%s\"", tag_resolution_name(j->tags.resolution));
        if (!j->tags.unit_known)
                srv->metrics.unknown_unit++;
        if (j->tags.provider_mismatch) {
                srv->metrics.provider_mismatch++;
                LOGW("provider_mismatch", "intyg", in->id, "unit", in->unit_hsa, "intyg_provider",
                     in->provider_hsa, "directory_provider", j->tags.provider_hsa);
        }
        char msg[400];
        switch (ar) {
        case ADMIT_OK:
                labelled_add(&srv->metrics.tag_resolution, k, 1);
                if (!j->tags.unit_known)
                        LOGI("unit_unknown", "intyg", in->id, "unit", in->unit_hsa, "caller",
                             j->caller);
                return true;
        case ADMIT_UNKNOWN_CALLER:
        case ADMIT_PROVIDER_NOT_GRANTED:
                count_outcome(j, "refused");
                if (ar == ADMIT_UNKNOWN_CALLER)
                        snprintf(msg, sizeof msg,
                                 "Not authorised: caller %s has no grants in this gateway",
                                 j->caller);
                else
                        snprintf(msg, sizeof msg,
                                 "Not authorised: caller %s may not submit for care provider %s",
                                 j->caller,
                                 j->tags.provider_mismatch ? j->tags.provider_hsa
                                                           : in->provider_hsa);
                LOGW("intyg_refused", "intyg", in->id, "caller", j->caller, "provider",
                     in->provider_hsa, "directory_provider", j->tags.provider_hsa, "reason",
                     admit_result_name(ar));
                server_note_rejection(srv, j->caller, in->id, admit_result_name(ar), "", msg);
                /* As the national platform answers VP007: a SOAP fault, HTTP 500. */
                answer_fault(j, "soap:Client", msg);
                return false;
        case ADMIT_PROVIDER_MISMATCH:
                count_outcome(j, "refused");
                snprintf(msg, sizeof msg,
                         "Care provider %s does not match the HSA directory's care provider %s "
                         "for unit %s",
                         in->provider_hsa, j->tags.provider_hsa, in->unit_hsa);
                server_note_rejection(srv, j->caller, in->id, "provider_mismatch", "", msg);
                answer_result(j, "ERROR", "VALIDATION_ERROR", msg);
                return false;
        case ADMIT_UNKNOWN_UNIT:
                count_outcome(j, "refused");
                snprintf(msg, sizeof msg,
                         "Issuing unit %s is not in the gateway's HSA directory extract",
                         in->unit_hsa);
                server_note_rejection(srv, j->caller, in->id, "unknown_unit", "", msg);
                answer_result(j, "ERROR", "VALIDATION_ERROR", msg);
                return false;
        }
        return false;
}

static void job_done(uv_work_t *w, int status)
{
        struct job *j = w->data;
        struct server *srv = j->srv;
        histogram_observe(&srv->metrics.validate_time, j->validate_s);
        if (j->started_ns)
                histogram_observe(&srv->metrics.queue_wait,
                                  (double)(j->started_ns - j->queued_ns) / 1e9);
        if (status == UV_ECANCELED || j->c->closing) {
                job_free(j);
                return;
        }
        struct validate_result *r = &j->res;
        if (r->status == VALIDATE_FAULT) {
                count_outcome(j, "rejected");
                char k[96];
                snprintf(k, sizeof k, "rule=\"%.40s\",family=\"%s\"", r->fault_code,
                         !strncmp(r->fault_code, "xml", 3) ? "xml" : "soap");
                labelled_add(&srv->metrics.rejections, k, 1);
                LOGI("intyg_rejected", "caller", j->caller, "fault", r->fault_code, "detail",
                     r->fault);
                server_note_rejection(srv, j->caller, "", r->fault_code, "", r->fault);
                answer_fault(j, "soap:Client", r->fault);
                return;
        }
        if (j->path_contract != RIV_UNKNOWN && r->contract != j->path_contract) {
                count_outcome(j, "rejected");
                answer_fault(j, "soap:Client",
                             "The body's contract does not match the endpoint: post "
                             "RegisterCertificate to .../RegisterCertificate/3/rivtabp21 and "
                             "RevokeCertificate to .../RevokeCertificate/2/rivtabp21");
                return;
        }
        if (r->status == VALIDATE_INVALID) {
                count_outcome(j, "rejected");
                record_rejection(j);
                /* Every failed check, bounded: VERR_MAX entries of ~440 bytes. */
                size_t cap = (VERR_MAX + 1) * 480;
                char *text = malloc(cap);
                if (text)
                        riv_soap_verrs_text(&r->errs, text, cap);
                LOGI("intyg_rejected", "intyg", r->intyg.id, "caller", j->caller, "#errors",
                     (long long)r->errs.n, "first_rule", r->errs.n ? r->errs.items[0].rule : "");
                answer_result(j, "ERROR", "VALIDATION_ERROR", text ? text : "validation failed");
                free(text);
                return;
        }
        if (!authorise_and_tag(j))
                return;
        struct outbox_item item;
        memset(&item, 0, sizeof item);
        item.kind = r->contract == RIV_REVOKE ? INTYG_REVOKE : INTYG_REGISTER;
        snprintf(item.id, sizeof item.id, "%s", r->intyg.id);
        snprintf(item.caller, sizeof item.caller, "%s", j->caller);
        item.tags = j->tags;
        item.received_ms = j->received_wall_ms;
        item.payload = r->payload;
        item.payload_len = r->payload_len;
        r->payload = NULL;
        r->payload_len = 0;
        j->put_ns = uv_hrtime();
        int rc = outbox_put(srv->outbox, &item, on_stored, j);
        if (rc != 0) {
                count_outcome(j, "error");
                LOGW("outbox_put_refused", "intyg", r->intyg.id, "error", outbox_strerror(rc));
                answer_result(j, "ERROR", "TECHNICAL_ERROR",
                              rc == OUTBOX_EBUSY ? "The gateway is overloaded; try again later"
                                                 : "The gateway cannot store certificates now");
        }
}

static void respond_text(struct conn *c, int status, const char *extra, const char *msg)
{
        http_respond(c, status, "text/plain; charset=utf-8", extra, msg, strlen(msg));
}

static bool content_type_ok(const char *ct)
{
        return !strncasecmp(ct, "text/xml", 8) || !strncasecmp(ct, "application/xml", 15) ||
               !strncasecmp(ct, "application/soap+xml", 20);
}

void pipeline_on_request(struct conn *c, struct http_req *req)
{
        struct server *srv = c->srv;
        enum riv_contract pc;
        bool soap = true;
        const char *want_action = NULL;
        if (!strcmp(req->path, PATH_REGISTER)) {
                pc = RIV_REGISTER;
                want_action = ACTION_REGISTER;
        } else if (!strcmp(req->path, PATH_REVOKE)) {
                pc = RIV_REVOKE;
                want_action = ACTION_REVOKE;
        } else if (!strcmp(req->path, PATH_PLAIN)) {
                pc = RIV_UNKNOWN;
                soap = false;
        } else if (!strncmp(req->path, "/api/v1/status/", 15)) {
                caller_status_request(c, req);
                return;
        } else {
                respond_text(c, 404, NULL,
                             "no such endpoint; intyg go to POST " PATH_REGISTER "\n");
                return;
        }
        if (req->method != HTTP_POST) {
                respond_text(c, 405, "Allow: POST\r\n", "method not allowed; use POST\n");
                return;
        }
        if (!content_type_ok(req->content_type)) {
                respond_text(c, 415, NULL, "Content-Type must be text/xml\n");
                return;
        }
        struct job *j = calloc(1, sizeof *j);
        if (!j) {
                respond_text(c, 503, NULL, "out of memory\n");
                return;
        }
        j->srv = srv;
        j->c = c;
        j->seq = req->seq;
        j->path_contract = pc;
        j->soap = soap;
        snprintf(j->caller, sizeof j->caller, "%s", c->caller);
        j->body = http_req_take_body(req, &j->len);
        j->received_ms = req->started_ms;
        j->received_wall_ms = wall_ms();
        j->opts.max_bytes = (size_t)srv->cfg->max_body_bytes;
        j->opts.person_id_strict = srv->cfg->person_id_check == PERSON_ID_CHECK_STRICT;
        j->work.data = j;
        conn_ref(c);
        srv->jobs_in_flight++;
        if (want_action && req->soap_action[0]) {
                /* SOAPAction is quoted on the wire; compare without the quotes. */
                char act[256];
                const char *a = req->soap_action;
                size_t l = strlen(a);
                if (l >= 2 && a[0] == '"' && a[l - 1] == '"') {
                        a++;
                        l -= 2;
                }
                snprintf(act, sizeof act, "%.*s", (int)l, a);
                if (strcmp(act, want_action) != 0) {
                        j->res.contract = pc;
                        answer_fault(j, "soap:Client",
                                     "SOAPAction names another contract than this endpoint's");
                        return;
                }
        }
        if (!j->body || j->len == 0) {
                j->res.contract = pc;
                answer_fault(j, "soap:Client", "empty request body: expected a SOAP envelope");
                return;
        }
        j->queued_ns = uv_hrtime();
        int rc = uv_queue_work(srv->loop, &j->work, job_work, job_done);
        if (rc != 0) {
                j->res.contract = pc;
                answer_fault(j, "soap:Server", "cannot schedule validation");
        }
}
