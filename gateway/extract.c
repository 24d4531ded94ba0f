/*
 * extract.c - copy what later stages need out of a validated request tree into struct intyg
 * (fixed-size strings, truncated only after validation refused longer ones).
 * Owns nothing; any thread.
 */
#include "extract.h"

#include <string.h>

#include "personid.h"
#include "rules_fk7804.h"
#include "xmlsafe.h"

/* Trimmed text of n into dst (always NUL-terminated, truncated to size). */
static void put(char *dst, size_t size, const xmlNode *n)
{
        char buf[512];
        dst[0] = '\0';
        if (!n)
                return;
        xmlsafe_text(n, buf, sizeof buf);
        const char *s = buf;
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                s++;
        size_t len = strlen(s);
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                       s[len - 1] == '\r'))
                len--;
        if (len >= size)
                len = size - 1;
        /* do not cut a UTF-8 sequence in half */
        while (len && ((unsigned char)s[len] & 0xC0) == 0x80)
                len--;
        memcpy(dst, s, len);
        dst[len] = '\0';
}

static const xmlNode *path2(const xmlNode *n, const char *ns1, const char *a, const char *ns2,
                            const char *b)
{
        const xmlNode *x = n ? xmlsafe_child(n, ns1, a) : NULL;
        return x ? xmlsafe_child(x, ns2, b) : NULL;
}

static void put_person(struct intyg *out, const xmlNode *pid)
{
        char root[32];
        put(root, sizeof root, xmlsafe_child(pid, NS_TP, "root"));
        put(out->person_id, sizeof out->person_id, xmlsafe_child(pid, NS_TP, "extension"));
        out->person_kind = strcmp(root, PERSONID_ROOT_SNR) == 0   ? PERSON_ID_SAMORDNINGSNUMMER
                           : strcmp(root, PERSONID_ROOT_PNR) == 0 ? PERSON_ID_PERSONNUMMER
                                                                  : PERSON_ID_NONE;
        struct personid_info info;
        personid_check(root, out->person_id, &info);
        out->person_id_checksum_ok = info.checksum_ok;
        out->sex = info.sex;
        memcpy(out->birth_date, info.birth_date, sizeof out->birth_date);
}

/* HosPersonal (skapadAv / skickatAv): author, unit, unit name, provider. */
static void put_staff(struct intyg *out, const xmlNode *hp)
{
        put(out->author_hsa, sizeof out->author_hsa,
            path2(hp, NS_GN, "personal-id", NS_TP, "extension"));
        const xmlNode *enhet = xmlsafe_child(hp, NS_GN, "enhet");
        put(out->unit_hsa, sizeof out->unit_hsa,
            path2(enhet, NS_GN, "enhets-id", NS_TP, "extension"));
        put(out->unit_name, sizeof out->unit_name, xmlsafe_child(enhet, NS_GN, "enhetsnamn"));
        const xmlNode *vg = enhet ? xmlsafe_child(enhet, NS_GN, "vardgivare") : NULL;
        put(out->provider_hsa, sizeof out->provider_hsa,
            path2(vg, NS_GN, "vardgivare-id", NS_TP, "extension"));
}

void extract_id(const xmlNode *elem, struct intyg *out)
{
        const xmlNode *ii = NULL;
        if (xmlsafe_is(elem, NS_RC, "RegisterCertificate")) {
                out->kind = INTYG_REGISTER;
                const xmlNode *intyg = xmlsafe_child(elem, NS_RC, "intyg");
                ii = intyg ? xmlsafe_child(intyg, NS_GN, "intygs-id") : NULL;
        } else if (xmlsafe_is(elem, NS_RV, "RevokeCertificate")) {
                out->kind = INTYG_REVOKE;
                ii = xmlsafe_child(elem, NS_RV, "intygs-id");
        }
        put(out->id, sizeof out->id, ii ? xmlsafe_child(ii, NS_TP, "extension") : NULL);
        put(out->id_root, sizeof out->id_root, ii ? xmlsafe_child(ii, NS_TP, "root") : NULL);
}

static enum intyg_degree degree_of(const char *code)
{
        if (strcmp(code, "EN_FJARDEDEL") == 0)
                return DEGREE_25;
        if (strcmp(code, "HALFTEN") == 0)
                return DEGREE_50;
        if (strcmp(code, "TRE_FJARDEDEL") == 0)
                return DEGREE_75;
        if (strcmp(code, "HELT_NEDSATT") == 0)
                return DEGREE_100;
        return DEGREE_NONE;
}

static void cv_code(const xmlNode *d, char *dst, size_t size)
{
        put(dst, size, path2(d, NS_TP, "cv", NS_TP, "code"));
}

static bool truthy(const xmlNode *d)
{
        char v[8];
        put(v, sizeof v, d);
        return strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
}

void extract_register(const xmlNode *rc, struct intyg *out)
{
        memset(out, 0, sizeof *out);
        extract_id(rc, out);
        const xmlNode *intyg = xmlsafe_child(rc, NS_RC, "intyg");
        if (!intyg)
                return;
        put(out->type, sizeof out->type, path2(intyg, NS_GN, "typ", NS_TP, "code"));
        put(out->version, sizeof out->version, xmlsafe_child(intyg, NS_GN, "version"));
        enum fk7804_version v = fk7804_version_of(out->version);
        out->major_version = v == FK7804_V1 ? 1 : v == FK7804_V2 ? 2 : 0;
        put(out->signed_at, sizeof out->signed_at,
            xmlsafe_child(intyg, NS_GN, "signeringstidpunkt"));
        put(out->sent_at, sizeof out->sent_at, xmlsafe_child(intyg, NS_GN, "skickatTidpunkt"));
        const xmlNode *patient = xmlsafe_child(intyg, NS_GN, "patient");
        if (patient)
                put_person(out, xmlsafe_child(patient, NS_GN, "person-id"));
        put_staff(out, xmlsafe_child(intyg, NS_GN, "skapadAv"));
        const xmlNode *rel = xmlsafe_child(intyg, NS_GN, "relation");
        if (rel) {
                put(out->relation_type, sizeof out->relation_type,
                    path2(rel, NS_GN, "typ", NS_TP, "code"));
                put(out->relation_id, sizeof out->relation_id,
                    path2(rel, NS_GN, "intygs-id", NS_TP, "extension"));
        }

        const xmlNode *diag[3] = {NULL, NULL, NULL};
        for (const xmlNode *s = xmlsafe_first_elem(intyg); s; s = xmlsafe_next_elem(s)) {
                if (!xmlsafe_is(s, NS_GN, "svar"))
                        continue;
                const char *sid = xmlsafe_attr(s, "id");
                if (!sid)
                        continue;
                if (strcmp(sid, "19") == 0 || strcmp(sid, "20") == 0)
                        out->treatment_given = true;
                struct intyg_period *per = NULL;
                if (strcmp(sid, "32") == 0 && out->n_periods < INTYG_MAX_PERIODS)
                        per = &out->periods[out->n_periods++];
                for (const xmlNode *d = xmlsafe_first_elem(s); d; d = xmlsafe_next_elem(d)) {
                        const char *id = xmlsafe_attr(d, "id");
                        if (!id || !xmlsafe_is(d, NS_GN, "delsvar"))
                                continue;
                        if (strcmp(id, "27.1") == 0) {
                                out->smittskydd = truthy(d);
                        } else if (per && strcmp(id, "32.1") == 0) {
                                char code[32];
                                cv_code(d, code, sizeof code);
                                per->degree = degree_of(code);
                        } else if (per && strcmp(id, "32.2") == 0) {
                                const xmlNode *p = xmlsafe_child(d, NS_TP, "datePeriod");
                                put(per->start, sizeof per->start,
                                    p ? xmlsafe_child(p, NS_TP, "start") : NULL);
                                put(per->end, sizeof per->end,
                                    p ? xmlsafe_child(p, NS_TP, "end") : NULL);
                                per->start_day = intyg_date_to_day(per->start);
                                per->end_day = intyg_date_to_day(per->end);
                        } else if (strcmp(id, "6.2") == 0) {
                                diag[0] = d;
                        } else if (strcmp(id, "6.4") == 0) {
                                diag[1] = d;
                        } else if (strcmp(id, "6.6") == 0) {
                                diag[2] = d;
                        } else if (strcmp(id, "39.1") == 0) {
                                cv_code(d, out->prognosis, sizeof out->prognosis);
                        } else if (strcmp(id, "39.3") == 0) {
                                cv_code(d, out->prognosis_days, sizeof out->prognosis_days);
                        } else if (strcmp(id, "39.4") == 0) {
                                put(out->prognosis_days, sizeof out->prognosis_days, d);
                        } else if (strcmp(id, "40.1") == 0 &&
                                   out->n_measures < INTYG_MAX_MEASURES) {
                                cv_code(d, out->measures[out->n_measures++],
                                        sizeof out->measures[0]);
                        } else if (strcmp(id, "26.1") == 0) {
                                out->contact_fk_wanted = truthy(d);
                        }
                }
        }
        for (int i = 0; i < 3; i++) {
                if (!diag[i])
                        continue;
                cv_code(diag[i], out->diagnoses[out->n_diagnoses++], sizeof out->diagnoses[0]);
                if (i == 0)
                        put(out->diagnosis_system, sizeof out->diagnosis_system,
                            path2(diag[0], NS_TP, "cv", NS_TP, "codeSystem"));
        }
}

void extract_revoke(const xmlNode *rv, struct intyg *out)
{
        memset(out, 0, sizeof *out);
        extract_id(rv, out);
        put(out->sent_at, sizeof out->sent_at, xmlsafe_child(rv, NS_RV, "skickatTidpunkt"));
        put(out->revoke_reason, sizeof out->revoke_reason, xmlsafe_child(rv, NS_RV, "meddelande"));
        put_person(out, xmlsafe_child(rv, NS_RV, "patientPerson-id"));
        put_staff(out, xmlsafe_child(rv, NS_RV, "skickatAv"));
}
