/*
 * fuzz_rules.c - libFuzzer harness for the FK7804 rules (gateway/rules_fk7804.h) and the
 * extraction (gateway/extract.h) on any document xmlsafe_parse accepts, without the XSD step
 * in front: the rules must not crash or overrun on a tree the schema would have refused
 * (defence in depth; the daemon runs them only after the XSD). A finding that needs an
 * XSD-invalid tree is graded lower than one fuzz_soap reaches.
 * Owns: nothing between inputs. One thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"
#include "log.h"
#include "rules_fk7804.h"
#include "validate.h"
#include "xmlsafe.h"
#include "fuzz_entry.h"

static void fz_rules_check(bool ok, const char *what)
{
        if (!ok) {
                fprintf(stderr, "fuzz_rules: invariant broken: %s\n", what);
                abort();
        }
}

static void fz_rules_init(void)
{
        log_set_level(LOG_ERROR);
        xmlsafe_init();
}

static void fz_rules_fini(void)
{
}

/* The request element: the only child of a SOAP 1.1 Body, or the root itself. */
static xmlNode *fz_rules_request(xmlNode *root)
{
        if (!xmlsafe_is(root, NS_SOAP11, "Envelope"))
                return root;
        xmlNode *body = xmlsafe_child(root, NS_SOAP11, "Body");
        return body ? xmlsafe_first_elem(body) : NULL;
}

static void fz_rules_check_errs(const struct verrs *e)
{
        fz_rules_check(e->n <= VERR_MAX && e->n_warnings <= VERR_MAX_WARNINGS, "errs bound");
        for (size_t i = 0; i < e->n; i++)
                fz_rules_check(memchr(e->items[i].rule, 0, sizeof e->items[i].rule) &&
                                   memchr(e->items[i].path, 0, sizeof e->items[i].path) &&
                                   memchr(e->items[i].message, 0, sizeof e->items[i].message),
                               "verr not terminated");
}

static int fz_rules_one(const uint8_t *data, size_t size)
{
        struct xmlsafe_limits lim;
        xmlsafe_limits_default(&lim, 0);
        xmlDocPtr doc = NULL;
        char err[256];
        if (xmlsafe_parse((const char *)data, size, &lim, &doc, err, sizeof err) != XMLSAFE_OK) {
                fz_rules_check(doc == NULL, "a refused parse returned a document");
                return 0;
        }
        xmlNode *req = fz_rules_request(xmlDocGetRootElement(doc));
        if (req) {
                static struct verrs errs;
                static struct intyg in;
                memset(&errs, 0, sizeof errs);
                int added = rules_fk7804_check(req, req, &errs);
                fz_rules_check(added >= 0 && (size_t)added == errs.n + errs.dropped,
                               "returned count differs from errs");
                fz_rules_check_errs(&errs);
                extract_register(req, &in);
                fz_rules_check(memchr(in.id, 0, sizeof in.id) &&
                                   in.n_periods <= INTYG_MAX_PERIODS &&
                                   in.n_diagnoses <= INTYG_MAX_DIAGNOSES &&
                                   in.n_measures <= INTYG_MAX_MEASURES,
                               "extract_register over a bound");
                for (size_t i = 0; i < in.n_diagnoses; i++)
                        (void)fk7804_diagnosis_code_ok(in.diagnoses[i]);
                intyg_wipe(&in);
                extract_revoke(req, &in);
                fz_rules_check(memchr(in.revoke_reason, 0, sizeof in.revoke_reason) != NULL,
                               "revoke_reason not terminated");
                intyg_wipe(&in);
                extract_id(req, &in);
                intyg_wipe(&in);
        }
        xmlFreeDoc(doc);
        return 0;
}

FUZZ_ENTRY(rules)
