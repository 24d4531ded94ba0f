/*
 * bench_validate.c - throughput of the whole validation stack: generates N distinct valid
 * LISJP v1 certificates (ids, patients with valid check digits, units, diagnoses, periods) into
 * a directory, then runs validate_request over all of them on 1 and 2 threads and prints
 * intyg/s, intyg/s per core and p50/p99 per-document time.
 * Usage: bench_validate [--count N] [--dir DIR (kept)] [--schemas DIR] [--threads "1 2"]
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "personid.h"
#include "validate.h"

#define MAX_DOCS 1000000

static const char *const DIAG[] = {"M545", "F320", "S47",  "J06",  "M751",
                                   "F432", "R53",  "G439", "M796", "I10"};
static const char *const GRAD[] = {"EN_FJARDEDEL", "HALFTEN", "TRE_FJARDEDEL", "HELT_NEDSATT"};

static const char *const TEMPLATE =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<rg:RegisterCertificate xmlns=\"urn:riv:clinicalprocess:healthcond:certificate:3\" "
    "xmlns:rg=\"urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3\" "
    "xmlns:tp=\"urn:riv:clinicalprocess:healthcond:certificate:types:3\">\n<rg:intyg>\n"
    "<intygs-id><tp:root>TSTNMT2321000156-%04d</tp:root><tp:extension>%08x-bench-4000-8000-%012x"
    "</tp:extension></intygs-id>\n"
    "<typ><tp:code>LISJP</tp:code><tp:codeSystem>b64ea353-e8f6-4832-b563-fc7d46f29548"
    "</tp:codeSystem></typ>\n<version>1.2</version>\n"
    "<signeringstidpunkt>2024-03-01T10:00:00</signeringstidpunkt>\n"
    "<patient><person-id><tp:root>1.2.752.129.2.1.3.1</tp:root><tp:extension>%s</tp:extension>"
    "</person-id><fornamn>Test</fornamn><efternamn>Testsson</efternamn><postadress>Gatan 1"
    "</postadress><postnummer>12345</postnummer><postort>Stad</postort></patient>\n"
    "<skapadAv><personal-id><tp:root>1.2.752.129.2.1.4.1</tp:root><tp:extension>"
    "TSTNMT2321000156-L%03d</tp:extension></personal-id><fullstandigtNamn>Doktor %d"
    "</fullstandigtNamn><enhet><enhets-id><tp:root>1.2.752.129.2.1.4.1</tp:root><tp:extension>"
    "TSTNMT2321000156-%04d</tp:extension></enhets-id><arbetsplatskod><tp:root>1.2.752.29.4.71"
    "</tp:root><tp:extension>1234567890</tp:extension></arbetsplatskod><enhetsnamn>Enhet %d"
    "</enhetsnamn><postadress>Vägen 2</postadress><postnummer>12345</postnummer><postort>Stad"
    "</postort><telefonnummer>0101234567</telefonnummer><vardgivare><vardgivare-id><tp:root>"
    "1.2.752.129.2.1.4.1</tp:root><tp:extension>TSTNMT2321000156-VG%02d</tp:extension>"
    "</vardgivare-id><vardgivarnamn>VG</vardgivarnamn></vardgivare></enhet></skapadAv>\n"
    "<svar id=\"1\"><instans>1</instans><delsvar id=\"1.1\"><tp:cv><tp:code>UNDERSOKNING</tp:code>"
    "<tp:codeSystem>KV_FKMU_0001</tp:codeSystem></tp:cv></delsvar><delsvar id=\"1.2\">%s"
    "</delsvar></svar>\n"
    "<svar id=\"28\"><instans>1</instans><delsvar id=\"28.1\"><tp:cv><tp:code>NUVARANDE_ARBETE"
    "</tp:code><tp:codeSystem>KV_FKMU_0002</tp:codeSystem></tp:cv></delsvar></svar>\n"
    "<svar id=\"29\"><delsvar id=\"29.1\">Arbete nummer %d</delsvar></svar>\n"
    "<svar id=\"6\"><delsvar id=\"6.1\">Diagnos</delsvar><delsvar id=\"6.2\"><tp:cv><tp:code>%s"
    "</tp:code><tp:codeSystem>1.2.752.116.1.1.1.1.3</tp:codeSystem></tp:cv></delsvar></svar>\n"
    "<svar id=\"35\"><delsvar id=\"35.1\">Funktionsnedsättning</delsvar></svar>\n"
    "<svar id=\"17\"><delsvar id=\"17.1\">Aktivitetsbegränsning</delsvar></svar>\n"
    "<svar id=\"32\"><instans>1</instans><delsvar id=\"32.1\"><tp:cv><tp:code>%s</tp:code>"
    "<tp:codeSystem>KV_FKMU_0003</tp:codeSystem></tp:cv></delsvar><delsvar id=\"32.2\">"
    "<tp:datePeriod><tp:start>%s</tp:start><tp:end>%s</tp:end></tp:datePeriod></delsvar></svar>\n"
    "<svar id=\"32\"><instans>2</instans><delsvar id=\"32.1\"><tp:cv><tp:code>HELT_NEDSATT"
    "</tp:code><tp:codeSystem>KV_FKMU_0003</tp:codeSystem></tp:cv></delsvar><delsvar id=\"32.2\">"
    "<tp:datePeriod><tp:start>%s</tp:start><tp:end>%s</tp:end></tp:datePeriod></delsvar></svar>\n"
    "<svar id=\"33\"><delsvar id=\"33.1\">true</delsvar><delsvar id=\"33.2\">Förmiddagar"
    "</delsvar></svar>\n"
    "<svar id=\"39\"><delsvar id=\"39.1\"><tp:cv><tp:code>STOR_SANNOLIKHET</tp:code>"
    "<tp:codeSystem>KV_FKMU_0006</tp:codeSystem></tp:cv></delsvar></svar>\n"
    "<svar id=\"40\"><instans>1</instans><delsvar id=\"40.1\"><tp:cv><tp:code>ARBETSTRANING"
    "</tp:code><tp:codeSystem>KV_FKMU_0004</tp:codeSystem></tp:cv></delsvar></svar>\n"
    "</rg:intyg>\n</rg:RegisterCertificate>\n";

static unsigned long long rng = 0x9E3779B97F4A7C15ull;

static unsigned rnd(unsigned n)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (unsigned)(rng % n);
}

static void make_pnr(char out[13])
{
        for (;;) {
                int y = 1940 + (int)rnd(65), m = 1 + (int)rnd(12), d = 1 + (int)rnd(28);
                char buf[48]; /* 12 digits; the compiler cannot see the ranges */
                snprintf(buf, sizeof buf, "%04d%02d%02d%03u0", y, m, d, rnd(1000));
                memcpy(out, buf, 12);
                out[12] = '\0';
                out[11] = (char)('0' + personid_luhn(out + 2));
                if (personid_check(PERSONID_ROOT_PNR, out, NULL) == PERSONID_OK)
                        return;
        }
}

static int generate(const char *dir, int count)
{
        char *buf = malloc(16384);
        for (int i = 0; i < count; i++) {
                char pnr[13], d0[11], s1[11], e1[11], s2[11], e2[11];
                make_pnr(pnr);
                int32_t base = intyg_date_to_day("2024-01-01") + (int32_t)rnd(700);
                int len1 = 1 + (int)rnd(20), len2 = 1 + (int)rnd(30);
                intyg_day_to_date(base - (int32_t)rnd(5), d0);
                intyg_day_to_date(base, s1);
                intyg_day_to_date(base + len1 - 1, e1);
                intyg_day_to_date(base + len1, s2);
                intyg_day_to_date(base + len1 + len2 - 1, e2);
                int unit = 1000 + (int)rnd(500);
                int n = snprintf(buf, 16384, TEMPLATE, unit, (unsigned)i, (unsigned)rnd(1u << 30),
                                 pnr, (int)rnd(1000), i, unit, unit, (int)rnd(40), d0, i,
                                 DIAG[rnd(10)], GRAD[rnd(3)], s1, e1, s2, e2);
                char path[4096];
                snprintf(path, sizeof path, "%s/intyg-%05d.xml", dir, i);
                FILE *f = fopen(path, "wb");
                if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
                        fprintf(stderr, "bench_validate: %s: %s\n", path, strerror(errno));
                        if (f)
                                fclose(f);
                        free(buf);
                        return -1;
                }
                fclose(f);
        }
        free(buf);
        return 0;
}

struct doc {
        char *body;
        size_t len;
};

static struct doc *load(const char *dir, int count)
{
        struct doc *docs = calloc((size_t)count, sizeof *docs);
        for (int i = 0; i < count; i++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/intyg-%05d.xml", dir, i);
                FILE *f = fopen(path, "rb");
                if (!f)
                        return NULL;
                fseek(f, 0, SEEK_END);
                long n = ftell(f);
                fseek(f, 0, SEEK_SET);
                docs[i].body = malloc((size_t)n);
                docs[i].len = fread(docs[i].body, 1, (size_t)n, f);
                fclose(f);
        }
        return docs;
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct worker {
        const struct validator *v;
        struct doc *docs;
        int from, to;
        double *lat;
        int bad;
};

static void *work(void *arg)
{
        struct worker *w = arg;
        struct validate_opts o = {.max_bytes = 0, .person_id_strict = true};
        struct validate_result *r = calloc(1, sizeof *r);
        for (int i = w->from; i < w->to; i++) {
                double t0 = now();
                if (validate_request(w->v, w->docs[i].body, w->docs[i].len, &o, r) != VALIDATE_OK) {
                        if (w->bad++ == 0)
                                fprintf(stderr, "doc %d: %s %s %s\n", i, r->fault,
                                        r->errs.n ? r->errs.items[0].rule : "",
                                        r->errs.n ? r->errs.items[0].message : "");
                }
                validate_result_clear(r);
                w->lat[i] = now() - t0;
        }
        free(r);
        return NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static int rm_dir(const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return -1;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
        }
        closedir(d);
        return rmdir(dir);
}

int main(int argc, char **argv)
{
        int count = 10000;
        const char *keep = NULL, *schemas = INTYGSGW_SOURCE_DIR "/schemas", *threads = "1 2";
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = atoi(argv[++i]);
                else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
                        keep = argv[++i];
                else if (strcmp(argv[i], "--schemas") == 0 && i + 1 < argc)
                        schemas = argv[++i];
                else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
                        threads = argv[++i];
                else {
                        fprintf(stderr, "usage: bench_validate [--count N] [--dir DIR] "
                                        "[--schemas DIR] [--threads \"1 2\"]\n");
                        return 2;
                }
        }
        if (count < 1 || count > MAX_DOCS) {
                fprintf(stderr, "bench_validate: --count must be 1..%d\n", MAX_DOCS);
                return 2;
        }
        char tmpl[] = "/tmp/bench_validate.XXXXXX";
        const char *dir = keep;
        if (keep) {
                if (mkdir(keep, 0700) != 0 && errno != EEXIST) {
                        perror(keep);
                        return 2;
                }
        } else if (!(dir = mkdtemp(tmpl))) {
                perror("mkdtemp");
                return 2;
        }
        if (generate(dir, count) != 0)
                return 2;
        struct doc *docs = load(dir, count);
        if (!docs)
                return 2;
        char err[256];
        struct validator *v = validator_new(schemas, err, sizeof err);
        if (!v) {
                fprintf(stderr, "bench_validate: %s\n", err);
                return 2;
        }
        printf("bench_validate: %d distinct certificates in %s\n", count, dir);
        double *lat = calloc((size_t)count, sizeof *lat);
        int rc = 0;
        for (const char *p = threads; *p;) {
                int n = (int)strtol(p, (char **)&p, 10);
                while (*p == ' ')
                        p++;
                if (n < 1 || n > 64)
                        break;
                struct worker w[64];
                pthread_t t[64];
                double t0 = now();
                for (int k = 0; k < n; k++) {
                        w[k] = (struct worker){v, docs, count * k / n, count * (k + 1) / n, lat, 0};
                        pthread_create(&t[k], NULL, work, &w[k]);
                }
                int bad = 0;
                for (int k = 0; k < n; k++) {
                        pthread_join(t[k], NULL);
                        bad += w[k].bad;
                }
                double wall = now() - t0;
                qsort(lat, (size_t)count, sizeof *lat, cmp_double);
                printf("threads=%d docs=%d invalid=%d wall=%.3fs rate=%.0f intyg/s "
                       "per_core=%.0f intyg/s p50=%.3fms p99=%.3fms\n",
                       n, count, bad, wall, count / wall, count / wall / n, lat[count / 2] * 1e3,
                       lat[(int)(count * 0.99)] * 1e3);
                if (bad)
                        rc = 1;
        }
        for (int i = 0; i < count; i++)
                free(docs[i].body);
        free(docs);
        free(lat);
        validator_free(v);
        if (!keep)
                rm_dir(dir);
        xmlCleanupParser();
        return rc;
}
