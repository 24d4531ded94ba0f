/*
 * cmd_validate.c - the `validate` command: read each file, validate_request it, print a human
 * line or one JSON object a line. Owns its validator and file buffers; main thread only.
 * Schema dir: --schemas DIR, else $INTYGSGW_SCHEMAS, else the build's INTYGSGW_SCHEMA_DIR.
 */
#include "cmd_validate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "validate.h"

#ifndef INTYGSGW_SCHEMA_DIR
#define INTYGSGW_SCHEMA_DIR "schemas"
#endif

static void usage(FILE *f)
{
        fprintf(f, "usage: intygsgw validate [--json] [--person-id-check=strict|warn] "
                   "[--schemas DIR] FILE...\n"
                   "  exit 0: every file valid; 1: some file invalid; 2: usage or I/O error\n");
}

/* Read a whole file, refusing more than cap bytes (+1 so the size limit itself can bite). */
static char *read_file(const char *path, size_t cap, size_t *len, char *err, size_t errlen)
{
        FILE *f = fopen(path, "rb");
        if (!f) {
                snprintf(err, errlen, "cannot open: %m");
                return NULL;
        }
        size_t size = 0, alloc = 65536;
        char *buf = malloc(alloc);
        while (buf) {
                if (size == alloc) {
                        if (alloc > cap) {
                                break; /* already over the limit: validation refuses by size */
                        }
                        char *nb = realloc(buf, alloc * 2);
                        if (!nb) {
                                free(buf);
                                buf = NULL;
                                break;
                        }
                        buf = nb;
                        alloc *= 2;
                }
                size_t n = fread(buf + size, 1, alloc - size, f);
                size += n;
                if (n == 0)
                        break;
        }
        bool io_error = ferror(f);
        fclose(f);
        if (!buf || io_error) {
                free(buf);
                snprintf(err, errlen, io_error ? "read error" : "out of memory");
                return NULL;
        }
        *len = size;
        return buf;
}

static void json_str(FILE *out, const char *s)
{
        char buf[1024];
        json_escape(buf, sizeof buf, s ? s : "");
        fprintf(out, "\"%s\"", buf);
}

static void json_list(FILE *out, const struct verr *items, size_t n)
{
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
                fputs(i ? ",{\"rule\":" : "{\"rule\":", out);
                json_str(out, items[i].rule);
                fputs(",\"path\":", out);
                json_str(out, items[i].path);
                fputs(",\"message\":", out);
                json_str(out, items[i].message);
                fputc('}', out);
        }
        fputc(']', out);
}

static void print_json(FILE *out, const char *file, const struct validate_result *r)
{
        fputs("{\"file\":", out);
        json_str(out, file);
        fprintf(out, ",\"valid\":%s,\"errors\":", r->status == VALIDATE_OK ? "true" : "false");
        if (r->status == VALIDATE_FAULT) {
                fputs("[{\"rule\":", out);
                json_str(out, r->fault_code);
                fputs(",\"path\":\"\",\"message\":", out);
                json_str(out, r->fault);
                fputs("}]", out);
        } else {
                json_list(out, r->errs.items, r->errs.n);
        }
        fputs(",\"warnings\":", out);
        json_list(out, r->errs.warnings, r->errs.n_warnings);
        if (r->errs.dropped)
                fprintf(out, ",\"errors_dropped\":%zu", r->errs.dropped);
        fputs("}\n", out);
}

static void print_human(FILE *out, const char *file, const struct validate_result *r)
{
        if (r->status == VALIDATE_FAULT) {
                fprintf(out, "%s: refused (%s): %s\n", file, r->fault_code, r->fault);
                return;
        }
        fprintf(out, "%s: %s\n", file, r->status == VALIDATE_OK ? "valid" : "invalid");
        for (size_t i = 0; i < r->errs.n; i++)
                fprintf(out, "  error %s %s: %s\n", r->errs.items[i].rule, r->errs.items[i].path,
                        r->errs.items[i].message);
        if (r->errs.dropped)
                fprintf(out, "  (%zu more errors not shown)\n", r->errs.dropped);
        for (size_t i = 0; i < r->errs.n_warnings; i++)
                fprintf(out, "  warning %s %s: %s\n", r->errs.warnings[i].rule,
                        r->errs.warnings[i].path, r->errs.warnings[i].message);
}

int cmd_validate(int argc, char **argv)
{
        bool json = false, strict = true;
        const char *schemas = getenv("INTYGSGW_SCHEMAS");
        if (!schemas || !schemas[0])
                schemas = INTYGSGW_SCHEMA_DIR;
        int i = 1;
        for (; i < argc; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                }
                if (a[0] != '-' || a[1] == '\0')
                        break;
                if (strcmp(a, "--json") == 0) {
                        json = true;
                } else if (strcmp(a, "--person-id-check=strict") == 0) {
                        strict = true;
                } else if (strcmp(a, "--person-id-check=warn") == 0) {
                        strict = false;
                } else if (strcmp(a, "--schemas") == 0 && i + 1 < argc) {
                        schemas = argv[++i];
                } else if (strncmp(a, "--schemas=", 10) == 0) {
                        schemas = a + 10;
                } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        usage(stdout);
                        return 0;
                } else {
                        fprintf(stderr, "intygsgw validate: unknown option %s\n", a);
                        usage(stderr);
                        return 2;
                }
        }
        if (i >= argc) {
                usage(stderr);
                return 2;
        }
        char err[512];
        struct validator *v = validator_new(schemas, err, sizeof err);
        if (!v) {
                fprintf(stderr, "intygsgw validate: schemas: %s\n", err);
                return 2;
        }
        const struct validate_opts opts = {.max_bytes = XML_MAX_DOC_BYTES_DEFAULT,
                                           .person_id_strict = strict};
        struct validate_result *r = malloc(sizeof *r);
        if (!r) {
                validator_free(v);
                fprintf(stderr, "intygsgw validate: out of memory\n");
                return 2;
        }
        int rc = 0;
        for (; i < argc; i++) {
                size_t len = 0;
                char *body = read_file(argv[i], opts.max_bytes, &len, err, sizeof err);
                if (!body) {
                        fprintf(stderr, "intygsgw validate: %s: %s\n", argv[i], err);
                        rc = 2;
                        continue;
                }
                validate_request(v, body, len, &opts, r);
                free(body);
                if (json)
                        print_json(stdout, argv[i], r);
                else
                        print_human(stdout, argv[i], r);
                if (r->status != VALIDATE_OK && rc == 0)
                        rc = 1;
                validate_result_clear(r);
        }
        fflush(stdout);
        free(r);
        validator_free(v);
        return rc;
}
