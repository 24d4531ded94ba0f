/*
 * test_payload.c - the payload forwarded to FK for an enveloped request: the request
 * element's own bytes with the namespace declarations it inherits from the envelope. Every
 * shape of envelope gives a payload that validates on its own, names the same intyg, and
 * keeps the request's inner bytes unchanged.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

static struct validator *v;
static char *bare; /* the bare v1 request, without its XML declaration */

static char *slurp(const char *rel)
{
        char path[512];
        snprintf(path, sizeof path, "%s/%s", INTYGSGW_SOURCE_DIR, rel);
        FILE *f = fopen(path, "rb");
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

static void setup(void)
{
        char err[256];
        v = validator_new(INTYGSGW_SOURCE_DIR "/schemas", err, sizeof err);
        cr_assert_not_null(v, "%s", err);
        char *f = slurp("tests/data/gw/lisjp-v1-tolvan.xml");
        char *p = strstr(f, "?>");
        bare = strdup(p ? p + 2 : f);
        free(f);
}

static void teardown(void)
{
        validator_free(v);
        free(bare);
}

TestSuite(payload, .init = setup, .fini = teardown);

/* Validate an envelope, then its payload alone; both OK and the same intyg. */
static void check(const char *envelope)
{
        struct validate_opts o = {.max_bytes = 0, .person_id_strict = true};
        struct validate_result r;
        memset(&r, 0, sizeof r);
        cr_assert_eq(validate_request(v, envelope, strlen(envelope), &o, &r), 0);
        cr_assert_eq(r.status, VALIDATE_OK, "%s: %s %s", validate_status_name(r.status), r.fault,
                     r.errs.n ? r.errs.items[0].message : "");
        cr_assert(r.had_envelope);
        cr_assert_not_null(r.payload);
        char id[INTYG_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", r.intyg.id);
        /* The request's inner bytes travel unchanged (from <intyg-level content on). */
        const char *inner = strstr(bare, "<intygs-id>");
        cr_assert_not_null(inner);
        cr_assert(strstr(r.payload, "<intygs-id>") &&
                      !strncmp(strstr(r.payload, "<intygs-id>"), inner, 200),
                  "inner bytes changed:\n%s", r.payload);
        /* Everything after the request's start tag, to its end tag, byte for byte. */
        const char *after = strchr(strchr(bare, '<'), '>') + 1;
        const char *end = strrchr(bare, '>') + 1;
        char *rest = strndup(after, (size_t)(end - after));
        cr_assert_not_null(strstr(r.payload, rest), "not the request's own bytes:\n%s", r.payload);
        free(rest);
        size_t plen = 0;
        char *payload = validate_result_take_payload(&r, &plen);
        validate_result_clear(&r);
        struct validate_result r2;
        memset(&r2, 0, sizeof r2);
        cr_assert_eq(validate_request(v, payload, plen, &o, &r2), 0);
        cr_assert_eq(r2.status, VALIDATE_OK, "payload alone: %s %s\n%s",
                     validate_status_name(r2.status), r2.fault, payload);
        cr_assert_not(r2.had_envelope);
        cr_assert_str_eq(r2.intyg.id, id);
        validate_result_clear(&r2);
        free(payload);
}

/* The bare request with its root's namespace declarations moved up to an ancestor. */
static char *strip_root_ns(void)
{
        /* bare starts with whitespace then <ns2:RegisterCertificate xmlns=... >: keep the name */
        const char *lt = strchr(bare, '<');
        const char *gt = strchr(lt, '>');
        const char *sp = strchr(lt, ' ');
        size_t namelen = (size_t)(sp - lt);
        size_t n = strlen(bare);
        char *out = malloc(n + 1);
        memcpy(out, lt, namelen);
        strcpy(out + namelen, gt);
        return out;
}

static char *root_ns_decls(void)
{
        const char *lt = strchr(bare, '<');
        const char *gt = strchr(lt, '>');
        const char *sp = strchr(lt, ' ');
        return strndup(sp, (size_t)(gt - sp));
}

static void run(const char *fmt_before, const char *fmt_after, bool move_ns_to_envelope)
{
        char *req = move_ns_to_envelope ? strip_root_ns() : strdup(strchr(bare, '<'));
        char *decls = move_ns_to_envelope ? root_ns_decls() : strdup("");
        size_t n = strlen(req) + strlen(decls) + strlen(fmt_before) + strlen(fmt_after) + 64;
        char *env = malloc(n);
        char *before = malloc(strlen(fmt_before) + strlen(decls) + 1);
        sprintf(before, fmt_before, decls);
        snprintf(env, n, "%s%s%s", before, req, fmt_after);
        check(env);
        free(env);
        free(before);
        free(req);
        free(decls);
}

#define ENV_OPEN "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""

Test(payload, declarations_on_the_request_itself)
{
        run(ENV_OPEN "%s><soapenv:Body>", "</soapenv:Body></soapenv:Envelope>", false);
}

Test(payload, declarations_only_on_the_envelope)
{
        run("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" ENV_OPEN
            "%s><soapenv:Header/><soapenv:Body>",
            "</soapenv:Body></soapenv:Envelope>", true);
}

Test(payload, declarations_only_on_the_body)
{
        run(ENV_OPEN "><soapenv:Body%s>", "</soapenv:Body></soapenv:Envelope>", true);
}

Test(payload, comments_pis_and_whitespace_around_the_request)
{
        run(ENV_OPEN
            "%s><!-- a > comment --><soapenv:Header x=\"a&gt;b\"><!-- h --></soapenv:Header>"
            "<soapenv:Body>\n  <?pi some > thing?>\n  <!-- before -->\n  ",
            "\n  <!-- after --></soapenv:Body></soapenv:Envelope>", true);
}

Test(payload, attribute_with_gt_and_cdata_in_header)
{
        run(ENV_OPEN "%s><soapenv:Header><x:h xmlns:x=\"urn:x\" a=\"1>2\"><![CDATA[<Body>]]>"
                     "</x:h></soapenv:Header><soapenv:Body>",
            "</soapenv:Body></soapenv:Envelope>", true);
}
