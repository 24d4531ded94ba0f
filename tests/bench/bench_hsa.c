/*
 * bench_hsa.c - HSA directory benchmark: writes an extract of N units (default 100,000) in
 * 21 counties with the three modelling styles of ops/hsa-extract.ldif (base64 DNs, folded
 * lines, unknown attributes) to a temp file, loads it, and prints load time, memory (VmRSS,
 * VmHWM from /proc/self/status) and hsa_tag() lookups per second over random ids (10 %
 * unknown). Usage: bench_hsa [UNITS [LOOKUPS]]. Single-threaded; removes its temp file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hsa.h"

#define COUNTIES 21

static const char *const county_codes[COUNTIES] = {"01", "03", "04", "05", "06", "07", "08",
                                                   "09", "10", "12", "13", "14", "17", "18",
                                                   "19", "20", "21", "22", "23", "24", "25"};

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* kB of a /proc/self/status field ("VmRSS:"), or -1 */
static long status_kb(const char *field)
{
        FILE *f = fopen("/proc/self/status", "r");
        if (!f)
                return -1;
        char line[256];
        long kb = -1;
        size_t n = strlen(field);
        while (fgets(line, sizeof line, f))
                if (strncmp(line, field, n) == 0)
                        kb = strtol(line + n, NULL, 10);
        fclose(f);
        return kb;
}

static void b64(const char *in, char *out)
{
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(in), o = 0;
        const unsigned char *s = (const unsigned char *)in;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t)s[i + 1] << 8;
                if (i + 2 < n)
                        v |= s[i + 2];
                out[o++] = t[(v >> 18) & 63];
                out[o++] = t[(v >> 12) & 63];
                out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
                out[o++] = i + 2 < n ? t[v & 63] : '=';
        }
        out[o] = '\0';
}

/* write "dn:: <base64>" folded at 76 columns, as ldapsearch does */
static void put_dn(FILE *f, const char *dn)
{
        char enc[4096], line[4200];
        b64(dn, enc);
        snprintf(line, sizeof line, "dn:: %s", enc);
        size_t n = strlen(line);
        fwrite(line, 1, n < 76 ? n : 76, f);
        for (size_t i = 76; i < n; i += 75) {
                fputs("\n ", f);
                fwrite(line + i, 1, n - i < 75 ? n - i : 75, f);
        }
        fputc('\n', f);
}

struct gen {
        FILE *f;
        size_t units, target;
};

static void put_unit(struct gen *g, const char *dn, const char *id, const char *name,
                     const char *bcc, bool care, const char *provider, const char *county, int muni)
{
        FILE *f = g->f;
        put_dn(f, dn);
        fprintf(f, "objectClass: top\nobjectClass: organizationalUnit\n");
        if (care)
                fprintf(f,
                        "objectClass: hsaHealthCareUnit\n"
                        "hsaResponsibleHealthCareProvider: %s\n",
                        provider);
        fprintf(f,
                "ou: %s\nhsaIdentity: %s\nbusinessClassificationCode: %s\ncareType: 0%d\n"
                "municipalityCode: %s%02d\nstartDate: 20100101000000Z\n"
                "telephoneNumber: +46 10 %06zu\npostalAddress: Box %zu$123 45 Ort\n"
                "mail: enhet%zu@region.example\n",
                name, id, bcc, 1 + (int)(g->units % 2), county, muni, g->units, g->units, g->units);
        if (g->units % 3 == 0)
                fprintf(f, "countyCode: %s\n", county);
        fputc('\n', f);
        g->units++;
}

static int generate(const char *path, size_t target)
{
        struct gen g = {fopen(path, "w"), 0, target};
        if (!g.f)
                return -1;
        fprintf(g.f, "version: 1\n\ndn: c=SE\nobjectClass: country\n\n");
        size_t quota = target / COUNTIES;
        for (int r = 0; r < COUNTIES; r++) {
                size_t stop = r == COUNTIES - 1 ? target : g.units + quota;
                char l[128], o[256], dn[1024], id[64], vg[64], name[64], hosp[512], clin[768];
                const char *cc = county_codes[r];
                snprintf(l, sizeof l, "l=Län %s,c=SE", cc);
                put_dn(g.f, l);
                fprintf(g.f, "objectClass: locality\ncountyCode: %s\n\n", cc);
                snprintf(o, sizeof o, "o=Region %s,%s", cc, l);
                snprintf(vg, sizeof vg, "SE23210000%s-0001", cc);
                put_dn(g.f, o);
                fprintf(g.f,
                        "objectClass: organization\nobjectClass: hsaHealthCareProvider\n"
                        "hsaIdentity: %s\no: Region %s\ncountyCode: %s\n\n",
                        vg, cc, cc);
                g.units++;
                int style = r % 3; /* 0 hospital, 1 clinic, 2 ward is the vårdenhet */
                for (int h = 0; g.units < stop; h++) {
                        snprintf(hosp, sizeof hosp, "ou=Sjukhus %d,%s", h, o);
                        snprintf(id, sizeof id, "SE23210000%s-H%d", cc, h);
                        snprintf(name, sizeof name, "Sjukhus %d", h);
                        put_unit(&g, hosp, id, name, "1000", style == 0, vg, cc, h % 80);
                        for (int c = 0; c < 20 && g.units < stop; c++) {
                                snprintf(clin, sizeof clin, "ou=Klinik %d,%s", c, hosp);
                                snprintf(id, sizeof id, "SE23210000%s-H%dK%d", cc, h, c);
                                snprintf(name, sizeof name, "Klinik %d", c);
                                put_unit(&g, clin, id, name, c % 5 ? "1100" : "1600", style == 1,
                                         vg, cc, h % 80);
                                for (int w = 0; w < 20 && g.units < stop; w++) {
                                        snprintf(dn, sizeof dn, "ou=Avdelning %d,%s", w, clin);
                                        snprintf(id, sizeof id, "SE23210000%s-H%dK%dW%d", cc, h, c,
                                                 w);
                                        snprintf(name, sizeof name, "Avdelning %d", w);
                                        put_unit(&g, dn, id, name, "1200", style == 2, vg, cc,
                                                 h % 80);
                                }
                        }
                }
        }
        int rc = ferror(g.f) ? -1 : 0;
        if (fclose(g.f) != 0)
                rc = -1;
        return rc;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

int main(int argc, char **argv)
{
        size_t target = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
        size_t lookups = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000;
        if (target < COUNTIES * 2 || lookups == 0) {
                fprintf(stderr, "usage: bench_hsa [UNITS >= 42 [LOOKUPS]]\n");
                return 2;
        }
        char path[] = "/tmp/bench_hsa_XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) {
                perror("mkstemp");
                return 1;
        }
        close(fd);
        double t0 = now_s();
        if (generate(path, target) < 0) {
                fprintf(stderr, "bench_hsa: cannot write %s\n", path);
                unlink(path);
                return 1;
        }
        double t_gen = now_s() - t0;
        FILE *sz = fopen(path, "r");
        long bytes = 0;
        if (sz) {
                fseek(sz, 0, SEEK_END);
                bytes = ftell(sz);
                fclose(sz);
        }

        long rss0 = status_kb("VmRSS:");
        struct hsa_opts o = {path, NULL, "businessClassificationCode=1100,1102,1500"};
        struct hsa_load_report rep;
        char err[300];
        t0 = now_s();
        struct hsa_dir *d = hsa_dir_load(&o, &rep, err, sizeof err);
        double t_load = now_s() - t0;
        unlink(path);
        if (!d) {
                fprintf(stderr, "bench_hsa: load failed: %s\n", err);
                return 1;
        }
        long rss1 = status_kb("VmRSS:");
        long hwm = status_kb("VmHWM:");

        /* ids to look up: 90 % drawn from the table, 10 % unknown */
        size_t n_ids = 65536;
        char(*ids)[HSA_ID_MAX + 1] = malloc(n_ids * sizeof *ids);
        if (!ids) {
                hsa_dir_free(d);
                return 1;
        }
        size_t n_units = hsa_dir_n_units(d);
        for (size_t i = 0; i < n_ids; i++) {
                struct hsa_unit_info u;
                if (next_rand() % 10 == 0 || !hsa_dir_unit(d, next_rand() % n_units, &u))
                        snprintf(ids[i], sizeof ids[i], "SE2321000099-X%zu", i);
                else
                        snprintf(ids[i], sizeof ids[i], "%s", u.hsa_id);
        }
        size_t known = 0, by_res[4] = {0};
        struct intyg_tags t;
        t0 = now_s();
        for (size_t i = 0; i < lookups; i++) {
                hsa_tag(d, ids[i & (n_ids - 1)], "SE2321000001-0001", &t);
                known += t.unit_known;
                by_res[t.resolution]++;
        }
        double t_look = now_s() - t0;

        printf("bench_hsa: %zu units requested, extract %.1f MB written in %.2f s\n", target,
               (double)bytes / 1e6, t_gen);
        printf("load:      %.3f s  (%zu entries, %zu units, %zu skipped, %zu problems) = %.0f "
               "units/s\n",
               t_load, rep.entries, rep.units, rep.skipped, rep.problems,
               (double)rep.units / t_load);
        printf("memory:    VmRSS %.1f MB before, %.1f MB after load (+%.1f MB, %.0f bytes/unit); "
               "VmHWM %.1f MB\n",
               rss0 / 1024.0, rss1 / 1024.0, (rss1 - rss0) / 1024.0,
               (double)(rss1 - rss0) * 1024.0 / (double)rep.units, hwm / 1024.0);
        printf("lookups:   %zu in %.3f s = %.2f M lookups/s (%.0f ns each); %zu known; "
               "level %zu, coarser %zu, mapping %zu, unresolved %zu\n",
               lookups, t_look, (double)lookups / t_look / 1e6, t_look * 1e9 / (double)lookups,
               known, by_res[TAG_LEVEL], by_res[TAG_COARSER], by_res[TAG_MAPPING],
               by_res[TAG_UNRESOLVED]);
        free(ids);
        hsa_dir_free(d);
        return rep.units == target ? 0 : 1;
}
