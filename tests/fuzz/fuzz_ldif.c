/*
 * fuzz_ldif.c - libFuzzer harness for the LDIF reader (gateway/ldif.h: ldif_reader_new on
 * fmemopen, ldif_next to the end, the DN helpers on every DN) and for its real consumer,
 * hsa_dir_load (gateway/hsa.h), on the same bytes through a memfd (/proc/self/fd/N), with
 * every unit then looked up and tagged.
 * Owns: nothing between inputs. One thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hsa.h"
#include "ldif.h"
#include "log.h"
#include "fuzz_entry.h"

#define FZ_LDIF_MAX_ENTRIES 100000 /* bound of the read loop (input is at most ~1 MB) */
#define FZ_LDIF_MAX_UNITS   2000   /* units looked up per input */

static const char fz_ldif_level[] = "businessClassificationCode=1100,1102,1500 | "
                                    "(objectClass=hsaHealthCareUnit & !careType=99)";
static struct hsa_level *fz_ldif_pred;

static void fz_ldif_check(bool ok, const char *what)
{
        if (!ok) {
                fprintf(stderr, "fuzz_ldif: invariant broken: %s\n", what);
                abort();
        }
}

static void fz_ldif_init(void)
{
        log_set_level(LOG_ERROR);
        char err[256];
        fz_ldif_pred = hsa_level_parse(fz_ldif_level, err, sizeof err);
        if (!fz_ldif_pred) {
                fprintf(stderr, "fuzz_ldif: %s\n", err);
                abort();
        }
}

static void fz_ldif_fini(void)
{
        hsa_level_free(fz_ldif_pred);
        fz_ldif_pred = NULL;
}

static void fz_ldif_dn(const char *dn)
{
        char norm[LDIF_MAX_DN + 1], err[256];
        int n = ldif_dn_normalise(dn, norm, sizeof norm, err, sizeof err);
        fz_ldif_check(n >= -1 && n <= LDIF_MAX_DN_DEPTH, "RDN count out of range");
        if (n < 0)
                return;
        fz_ldif_check(strlen(norm) < sizeof norm, "normalised DN not terminated");
        /* Normalising is idempotent. */
        char again[LDIF_MAX_DN + 1];
        int m = ldif_dn_normalise(norm, again, sizeof again, err, sizeof err);
        fz_ldif_check(m == n && strcmp(norm, again) == 0, "normalising is not idempotent");
        char type[64], value[LDIF_MAX_DN + 1];
        bool has = ldif_dn_first_rdn(norm, type, sizeof type, value, sizeof value);
        fz_ldif_check(has == (n > 0), "first RDN of a non-empty DN");
        const char *parent = ldif_dn_parent(norm);
        fz_ldif_check(parent >= norm && parent <= norm + strlen(norm), "parent outside the DN");
}

static void fz_ldif_reader(const uint8_t *data, size_t size)
{
        FILE *f = fmemopen((void *)data, size, "r");
        if (!f)
                return;
        struct ldif_reader *r = ldif_reader_new(f);
        if (!r) {
                fclose(f);
                return;
        }
        char err[256];
        for (int i = 0; i < FZ_LDIF_MAX_ENTRIES; i++) {
                struct ldif_entry e;
                enum ldif_status st = ldif_next(r, &e, err, sizeof err);
                if (st == LDIF_EOF || st == LDIF_IO)
                        break;
                if (st == LDIF_BAD_ENTRY)
                        continue;
                fz_ldif_check(st == LDIF_OK, "unknown status");
                fz_ldif_check(e.n_attrs <= LDIF_MAX_ATTRS, "too many attributes");
                fz_ldif_dn(e.dn);
                for (size_t a = 0; a < e.n_attrs; a++) {
                        fz_ldif_check(strlen(e.attrs[a].name) <= LDIF_MAX_ATTR_NAME,
                                      "attribute name over the limit");
                        fz_ldif_check(e.attrs[a].value[e.attrs[a].len] == '\0',
                                      "value not terminated");
                }
                (void)hsa_level_match(fz_ldif_pred, &e);
        }
        ldif_reader_free(r);
        fclose(f);
}

static void fz_ldif_dir(const uint8_t *data, size_t size)
{
        int fd = memfd_create("fuzz.ldif", MFD_CLOEXEC);
        if (fd < 0)
                return;
        if (write(fd, data, size) != (ssize_t)size) {
                close(fd);
                return;
        }
        char path[64], err[512];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        struct hsa_opts o = {.ldif = path, .mapping = NULL, .level = fz_ldif_level};
        static struct hsa_load_report rep;
        memset(&rep, 0, sizeof rep);
        struct hsa_dir *d = hsa_dir_load(&o, &rep, err, sizeof err);
        close(fd);
        if (!d)
                return;
        size_t n = hsa_dir_n_units(d);
        fz_ldif_check(n == rep.units, "units differ from the report");
        for (size_t i = 0; i < n && i < FZ_LDIF_MAX_UNITS; i++) {
                struct hsa_unit_info u, again;
                fz_ldif_check(hsa_dir_unit(d, i, &u), "unit i < n missing");
                fz_ldif_check(hsa_dir_find(d, u.hsa_id, &again), "unit not found by its id");
                struct intyg_tags t;
                hsa_tag(d, u.hsa_id, NULL, &t);
                fz_ldif_check(t.unit_known, "a unit of the directory is unknown to hsa_tag");
        }
        struct intyg_tags t;
        hsa_tag(d, "SE2321000016-NOPE", "SE2321000016-NOPE", &t);
        hsa_dir_free(d);
}

/* Input: an LDIF extract. */
static int fz_ldif_one(const uint8_t *data, size_t size)
{
        if (size == 0)
                return 0;
        fz_ldif_reader(data, size);
        fz_ldif_dir(data, size);
        return 0;
}

FUZZ_ENTRY(ldif)
