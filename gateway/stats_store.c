/*
 * stats_store.c - turning an intyg into a de-identified statistics record, and struct stats:
 * the writer thread with its bounded queue that applies records to the store.
 * Owns struct stats (key, queue, thread). Records are built on the caller's thread; only the
 * writer thread calls the store's write operations.
 */
#include "stats_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "log.h"
#include "personid.h"

static const char *const prognosis_codes[STATS_N_PROGNOSIS] = {"",
                                                               "STOR_SANNOLIKHET",
                                                               "ATER_X_ANTAL_DGR",
                                                               "SANNOLIKT_INTE",
                                                               "PROGNOS_OKLAR",
                                                               "ATER_X_ANTAL_MANADER",
                                                               "OTHER"};

static const char *const measure_codes[STATS_N_MEASURES] = {
    "EJ_AKTUELLT",       "ARBETSTRANING", "ARBETSANPASSNING", "SOKA_NYTT_ARBETE",
    "BESOK_ARBETSPLATS", "ERGONOMISK",    "HJALPMEDEL",       "KONFLIKTHANTERING",
    "KONTAKT_FHV",       "OMFORDELNING",  "OVRIGA_ATGARDER",  "OTHER"};

int stats_prognosis_index(const char *code)
{
        if (!code || !*code)
                return PROG_NONE;
        for (int i = 1; i < PROG_OTHER; i++)
                if (strcmp(code, prognosis_codes[i]) == 0)
                        return i;
        return PROG_OTHER;
}

const char *stats_prognosis_code(int idx)
{
        if (idx == PROG_NONE)
                return "NOT_ANSWERED";
        return idx > 0 && idx < STATS_N_PROGNOSIS ? prognosis_codes[idx] : NULL;
}

int stats_measure_index(const char *code)
{
        for (int i = 0; i < MEAS_OTHER; i++)
                if (strcmp(code, measure_codes[i]) == 0)
                        return i;
        return MEAS_OTHER;
}

const char *stats_measure_code(int idx)
{
        if (idx == STATS_N_MEASURES)
                return "NOT_ANSWERED";
        return idx >= 0 && idx < STATS_N_MEASURES ? measure_codes[idx] : NULL;
}

void stats_hsa_normalise(const char *in, char out[HSA_ID_MAX + 1])
{
        size_t n = 0;
        for (const char *p = in ? in : ""; *p && n < HSA_ID_MAX; p++) {
                unsigned char c = (unsigned char)*p;
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
                        continue;
                out[n++] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
        }
        out[n] = '\0';
}

/* Whole years from birth (YYYY-MM-DD) to day. */
static int age_at(const char *birth, int32_t day)
{
        char d[11];
        intyg_day_to_date(day, d);
        int by = atoi(birth), bm = atoi(birth + 5), bd = atoi(birth + 8);
        int y = atoi(d), m = atoi(d + 5), dd = atoi(d + 8);
        int age = y - by;
        if (m < bm || (m == bm && dd < bd))
                age--;
        return age;
}

static int parse_county(const char *c)
{
        /* §2.7: a missing, invalid or over-long code becomes 00 (Okänt län). */
        if (!c || strlen(c) != 2 || c[0] < '0' || c[0] > '9' || c[1] < '0' || c[1] > '9')
                return 0;
        int v = (c[0] - '0') * 10 + (c[1] - '0');
        return v <= 25 ? v : 0;
}

static int32_t today_day(void)
{
        return (int32_t)(time(NULL) / 86400);
}

int stats_record_from_intyg(const struct pseudonym *ps, const struct intyg *in,
                            const struct intyg_tags *tags, struct stats_record *out, char *err,
                            size_t errlen)
{
        memset(out, 0, sizeof *out);
        if (!in || !ps) {
                snprintf(err, errlen, "no intyg or no key");
                return STATS_EINVAL;
        }
        out->kind = in->kind;
        if (!in->id[0]) {
                snprintf(err, errlen, "certificate id missing");
                return STATS_EINVAL;
        }
        if (pseudonym_make(ps, "intyg", "", in->id, out->cert_ps) != 0) {
                snprintf(err, errlen, "certificate id too long to pseudonymise");
                return STATS_EINVAL;
        }
        if (in->kind == INTYG_REVOKE) {
                /* The revocation's own day decides what --as-of sees; without one, the day
                 * the gateway learns of it. */
                out->revoked_day = -1;
                if (strlen(in->sent_at) >= 10) {
                        char d[11];
                        memcpy(d, in->sent_at, 10);
                        d[10] = '\0';
                        out->revoked_day = intyg_date_to_day(d);
                }
                if (out->revoked_day < 0)
                        out->revoked_day = today_day();
                return STATS_OK;
        }
        if (in->kind != INTYG_REGISTER) {
                snprintf(err, errlen, "unknown request kind");
                return STATS_EINVAL;
        }
        /* §1.1: only sick-pay certificates build cases. */
        if (in->type[0] && strcmp(in->type, "LISJP") != 0 && strcmp(in->type, "FK7804") != 0 &&
            strcmp(in->type, "FK7263") != 0) {
                snprintf(err, errlen, "certificate type %.15s builds no sick-leave cases",
                         in->type);
                return STATS_EINVAL;
        }
        /* §3.2: the care provider comes from the directory, else the certificate. */
        stats_hsa_normalise(tags && tags->provider_hsa[0] ? tags->provider_hsa : in->provider_hsa,
                            out->provider);
        stats_hsa_normalise(in->unit_hsa, out->unit);
        stats_hsa_normalise(tags && tags->followup_hsa[0] ? tags->followup_hsa : in->unit_hsa,
                            out->followup);
        if (!out->provider[0] || !out->unit[0]) {
                snprintf(err, errlen, "care provider or unit missing (§1.2)");
                return STATS_EINVAL;
        }
        out->resolution = tags ? (int)tags->resolution : TAG_UNRESOLVED;
        out->county = parse_county(tags ? tags->county : NULL);
        if (tags)
                snprintf(out->municipality, sizeof out->municipality, "%.4s", tags->municipality);

        /* §1.2 patient: sex from the second-last digit, samordningsnummer day - 60. */
        struct personid_info pi;
        memset(&pi, 0, sizeof pi);
        enum personid_err pe = personid_check(NULL, in->person_id, &pi);
        if ((pe != PERSONID_OK && pe != PERSONID_CHECKSUM && pe != PERSONID_KIND_MISMATCH) ||
            !pi.birth_date[0] || pi.sex == SEX_UNKNOWN) {
                snprintf(err, errlen, "patient id gives no birth date or sex (%s)",
                         personid_err_name(pe));
                explicit_bzero(&pi, sizeof pi);
                return STATS_EINVAL;
        }
        out->sex = pi.sex;
        const int32_t birth = intyg_date_to_day(pi.birth_date);

        const int32_t min_start = intyg_date_to_day(STATS_MIN_START);
        int32_t signed_day = -1;
        if (strlen(in->signed_at) >= 10) {
                char d[11];
                memcpy(d, in->signed_at, 10);
                d[10] = '\0';
                signed_day = intyg_date_to_day(d);
        }
        const int32_t horizon =
            (signed_day > today_day() ? signed_day : today_day()) + STATS_MAX_FUTURE;
        int32_t last = -1;
        for (size_t i = 0; i < in->n_periods && i < INTYG_MAX_PERIODS; i++) {
                const struct intyg_period *p = &in->periods[i];
                /* §1.2 validation: degree 25/50/75/100, start >= 2010-01-01, start <= end,
                 * at most 5 years ahead, not before birth. A bad period is left out. */
                if (sf_degree_index((int)p->degree) < 0 || p->start_day < min_start ||
                    p->start_day > p->end_day || p->end_day > horizon || p->start_day < birth)
                        continue;
                out->periods[out->n_periods].start = p->start_day;
                out->periods[out->n_periods].end = p->end_day;
                out->periods[out->n_periods].degree = (int)p->degree;
                out->n_periods++;
                if (p->end_day > last)
                        last = p->end_day;
        }
        if (out->n_periods == 0) {
                snprintf(err, errlen, "no valid sick-leave period (answer 32, §1.2)");
                explicit_bzero(&pi, sizeof pi);
                return STATS_EINVAL;
        }
        out->signed_day = signed_day >= 0 ? signed_day : out->periods[0].start;
        /* §1.2: age at the last sick-leave day of the certificate. */
        out->age = age_at(pi.birth_date, last);
        explicit_bzero(&pi, sizeof pi);
        if (out->age < 0 || out->age > 150) {
                snprintf(err, errlen, "patient age out of range");
                return STATS_EINVAL;
        }
        if (pseudonym_make(ps, "patient", out->provider, in->person_id, out->patient_ps) != 0) {
                snprintf(err, errlen, "cannot pseudonymise the patient");
                return STATS_EINVAL;
        }
        icd10_classify(in->n_diagnoses > 0 ? in->diagnoses[0] : "", &out->dx);
        out->prognosis = stats_prognosis_index(in->prognosis);
        for (size_t i = 0; i < in->n_measures && i < INTYG_MAX_MEASURES; i++)
                out->measures |= 1u << stats_measure_index(in->measures[i]);
        out->treatment = in->treatment_given;
        /* Exact duplicates (§1.2, At1018) are recognised by this hash of all of the above. */
        SHA256((const unsigned char *)out->cert_ps,
               sizeof *out - offsetof(struct stats_record, cert_ps), out->content);
        return STATS_OK;
}

/* ---- stats_map ---- */

static uint64_t mix(uint64_t a, uint64_t b)
{
        uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull + (a << 6) + (a >> 2));
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        return h;
}

static int map_grow(struct stats_map *m)
{
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        struct stats_map_entry *ne = calloc(ncap, sizeof *ne);
        if (!ne)
                return -1;
        for (size_t i = 0; i < m->cap; i++) {
                if (!m->e[i].used)
                        continue;
                size_t j = mix(m->e[i].a, m->e[i].b) & (ncap - 1);
                while (ne[j].used)
                        j = (j + 1) & (ncap - 1);
                ne[j] = m->e[i];
        }
        free(m->e);
        m->e = ne;
        m->cap = ncap;
        return 0;
}

struct stats_map_entry *stats_map_get(struct stats_map *m, uint64_t a, uint64_t b)
{
        if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) != 0)
                return NULL;
        size_t j = mix(a, b) & (m->cap - 1);
        while (m->e[j].used) {
                if (m->e[j].a == a && m->e[j].b == b)
                        return &m->e[j];
                j = (j + 1) & (m->cap - 1);
        }
        m->e[j] = (struct stats_map_entry){.a = a, .b = b, .used = true};
        m->n++;
        return &m->e[j];
}

void stats_map_clear(struct stats_map *m)
{
        if (m->e)
                memset(m->e, 0, m->cap * sizeof *m->e);
        m->n = 0;
}

void stats_map_free(struct stats_map *m)
{
        free(m->e);
        m->e = NULL;
        m->cap = m->n = 0;
}

/* ---- struct stats: queue and writer thread ---- */

struct stats {
        char *path;
        struct pseudonym *ps;
        struct stats_store *store;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t mu;
        pthread_cond_t nonempty, done;
        struct stats_record **ring;
        size_t head, len;
        bool stop;
        uint64_t enqueued, processed;
        int last_status;
        char last_err[256];
        struct stats_counters c;
};

static void apply_batch(struct stats *s, struct stats_record **batch, size_t n)
{
        char err[256] = "";
        int status = STATS_OK;
        struct stats_counters d = {0};
        if (s->store->ops->begin(s->store, err, sizeof err) != 0) {
                status = STATS_ESTORE;
                d.errors += n;
        } else {
                for (size_t i = 0; i < n; i++) {
                        char e2[256] = "";
                        int rc = s->store->ops->record(s->store, batch[i], e2, sizeof e2);
                        if (rc == STATS_OK && batch[i]->kind == INTYG_REVOKE)
                                d.revoked++;
                        else if (rc == STATS_OK)
                                d.stored++;
                        else if (rc == STATS_DUPLICATE)
                                d.duplicates++;
                        else if (rc == STATS_ECONFLICT)
                                d.conflicts++;
                        else {
                                d.errors++;
                                status = rc;
                                snprintf(err, sizeof err, "%s", e2);
                                LOGW("stats_record_failed", "reason", e2);
                        }
                }
                if (s->store->ops->commit(s->store, err, sizeof err) != 0) {
                        s->store->ops->rollback(s->store);
                        status = STATS_ESTORE;
                        d.errors += d.stored + d.duplicates + d.conflicts + d.revoked;
                        d.stored = d.duplicates = d.conflicts = d.revoked = 0;
                        LOGE("stats_commit_failed", "reason", err);
                }
        }
        pthread_mutex_lock(&s->mu);
        s->c.stored += d.stored;
        s->c.duplicates += d.duplicates;
        s->c.conflicts += d.conflicts;
        s->c.revoked += d.revoked;
        s->c.errors += d.errors;
        if (status != STATS_OK || s->last_status == STATS_OK) {
                s->last_status = status;
                snprintf(s->last_err, sizeof s->last_err, "%s", err);
        }
        s->processed += n;
        pthread_cond_broadcast(&s->done);
        pthread_mutex_unlock(&s->mu);
}

static void *writer_main(void *arg)
{
        struct stats *s = arg;
        struct stats_record **batch = malloc(STATS_BATCH_MAX * sizeof *batch);
        for (;;) {
                pthread_mutex_lock(&s->mu);
                while (!s->stop && s->len == 0)
                        pthread_cond_wait(&s->nonempty, &s->mu);
                if (s->len == 0 && s->stop) {
                        pthread_mutex_unlock(&s->mu);
                        break;
                }
                size_t n = 0;
                while (s->len > 0 && n < STATS_BATCH_MAX && batch) {
                        batch[n++] = s->ring[s->head];
                        s->head = (s->head + 1) % STATS_QUEUE_MAX;
                        s->len--;
                }
                pthread_mutex_unlock(&s->mu);
                if (!batch) { /* out of memory at start: apply one at a time */
                        pthread_mutex_lock(&s->mu);
                        struct stats_record *one = s->ring[s->head];
                        s->head = (s->head + 1) % STATS_QUEUE_MAX;
                        s->len--;
                        pthread_mutex_unlock(&s->mu);
                        apply_batch(s, &one, 1);
                        free(one);
                        continue;
                }
                apply_batch(s, batch, n);
                for (size_t i = 0; i < n; i++) {
                        explicit_bzero(batch[i], sizeof *batch[i]);
                        free(batch[i]);
                }
        }
        free(batch);
        return NULL;
}

struct stats *stats_open(const char *path, const char *pseudonym_key_file, char *err, size_t errlen)
{
        if (!path || !*path) {
                snprintf(err, errlen, "no statistics store path");
                return NULL;
        }
        struct stats *s = calloc(1, sizeof *s);
        if (!s) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->nonempty, NULL);
        pthread_cond_init(&s->done, NULL);
        s->path = strdup(path);
        s->ring = calloc(STATS_QUEUE_MAX, sizeof *s->ring);
        if (!s->path || !s->ring) {
                snprintf(err, errlen, "out of memory");
                goto fail;
        }
        s->ps = pseudonym_load(pseudonym_key_file, err, errlen);
        if (!s->ps)
                goto fail;
        unsigned char fp[PSEUDONYM_LEN];
        pseudonym_fingerprint(s->ps, fp);
        s->store = stats_sqlite_open(path, false, fp, err, errlen);
        if (!s->store)
                goto fail;
        if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
                snprintf(err, errlen, "cannot start the statistics writer thread");
                goto fail;
        }
        s->thread_started = true;
        return s;
fail:
        stats_close(s);
        return NULL;
}

void stats_close(struct stats *s)
{
        if (!s)
                return;
        if (s->thread_started) {
                pthread_mutex_lock(&s->mu);
                s->stop = true;
                pthread_cond_broadcast(&s->nonempty);
                pthread_mutex_unlock(&s->mu);
                pthread_join(s->thread, NULL);
        }
        for (size_t i = 0; s->ring && i < s->len; i++)
                free(s->ring[(s->head + i) % STATS_QUEUE_MAX]);
        free(s->ring);
        stats_store_close(s->store);
        pseudonym_free(s->ps);
        free(s->path);
        pthread_cond_destroy(&s->nonempty);
        pthread_cond_destroy(&s->done);
        pthread_mutex_destroy(&s->mu);
        free(s);
}

int stats_record_intyg(struct stats *s, const struct intyg *in, const struct intyg_tags *tags,
                       char *err, size_t errlen)
{
        struct stats_record *r = malloc(sizeof *r);
        if (!r) {
                snprintf(err, errlen, "out of memory");
                return STATS_EFULL;
        }
        int rc = stats_record_from_intyg(s->ps, in, tags, r, err, errlen);
        if (rc != STATS_OK) {
                free(r);
                pthread_mutex_lock(&s->mu);
                s->c.refused++;
                pthread_mutex_unlock(&s->mu);
                return rc;
        }
        pthread_mutex_lock(&s->mu);
        if (s->len >= STATS_QUEUE_MAX || s->stop) {
                s->c.refused++;
                pthread_mutex_unlock(&s->mu);
                free(r);
                snprintf(err, errlen, "statistics queue full (%d records)", STATS_QUEUE_MAX);
                return STATS_EFULL;
        }
        s->ring[(s->head + s->len) % STATS_QUEUE_MAX] = r;
        s->len++;
        s->enqueued++;
        s->c.queued++;
        pthread_cond_signal(&s->nonempty);
        pthread_mutex_unlock(&s->mu);
        return STATS_OK;
}

int stats_flush(struct stats *s, char *err, size_t errlen)
{
        pthread_mutex_lock(&s->mu);
        uint64_t target = s->enqueued;
        while (s->processed < target)
                pthread_cond_wait(&s->done, &s->mu);
        int rc = s->last_status;
        if (rc != STATS_OK)
                snprintf(err, errlen, "%s", s->last_err);
        s->last_status = STATS_OK;
        s->last_err[0] = '\0';
        pthread_mutex_unlock(&s->mu);
        return rc;
}

void stats_get_counters(struct stats *s, struct stats_counters *out)
{
        pthread_mutex_lock(&s->mu);
        *out = s->c;
        out->queue_len = s->len;
        pthread_mutex_unlock(&s->mu);
}

const char *stats_path(const struct stats *s)
{
        return s->path;
}

void stats_store_close(struct stats_store *st)
{
        if (st)
                st->ops->close(st);
}
