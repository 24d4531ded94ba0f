/*
 * config.c - the one key table: parses the INI file (inih), checks every value, reports every
 * problem as "file:line: [section] key: reason", dumps the effective configuration.
 * Owns the struct config it returns. Any thread (no shared state).
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "limits.h"

enum key_type {
        K_STR,    /* free string */
        K_PATH,   /* a file; resolved against the config file's directory */
        K_SECRET, /* a file that must not be readable by group/other */
        K_ADDR,   /* host:port */
        K_INT,
        K_I64,
        K_BOOL,
        K_PIDCHECK, /* strict | warn */
        K_POLICY,   /* accept | flag | refuse */
        K_LEVEL,    /* debug | info | warn | error */
};

struct key {
        const char *section;
        const char *name;
        enum key_type type;
        size_t off;
        long long min, max;
        const char *def; /* NULL: no default (unset) */
        bool reload;     /* SIGHUP may change it */
        bool required;
        const char *help;
};

#define O(f) offsetof(struct config, f)

/* The table: every key once. README.md and ops/intygsgw.example.ini document the same keys;
 * tests/unit/test_config.c checks that the example names every key here. */
static const struct key keys[] = {
    {"server", "listen", K_ADDR, O(listen), 0, 0, "127.0.0.1:8443", false, false,
     "address of the mutual-TLS listener for callers"},
    {"server", "tls_cert", K_PATH, O(tls_cert), 0, 0, NULL, true, true,
     "the gateway's server certificate (PEM)"},
    {"server", "tls_key", K_SECRET, O(tls_key), 0, 0, NULL, true, true,
     "its private key (PEM, mode 0600)"},
    {"server", "tls_ca", K_PATH, O(tls_ca), 0, 0, NULL, true, true,
     "CA certificate(s) that sign callers' client certificates"},
    {"server", "tls_crl", K_PATH, O(tls_crl), 0, 0, NULL, true, false,
     "CRL of that CA; revoked callers fail the handshake"},
    {"server", "caller_id_attr", K_STR, O(caller_id_attr), 0, 0, "serialNumber", false, false,
     "subject attribute holding the caller's HSA-id (serialNumber or OU)"},
    {"server", "max_connections", K_INT, O(max_connections), 1, 100000, "2000", true, false,
     "open connections in total"},
    {"server", "max_connections_per_caller", K_INT, O(max_connections_per_caller), 1, 100000, "200",
     true, false, "open connections per caller HSA-id (and per address)"},
    {"server", "max_header_bytes", K_INT, O(max_header_bytes), 512, 1048576, "16384", true, false,
     "request line and headers, bytes (431 above)"},
    {"server", "max_body_bytes", K_I64, O(max_body_bytes), 1024, 64 * 1048576LL, "1048576", true,
     false, "request body, bytes (413 above)"},
    {"server", "header_timeout_ms", K_INT, O(header_timeout_ms), 100, 600000, "10000", true, false,
     "time to receive a whole request header"},
    {"server", "body_timeout_ms", K_INT, O(body_timeout_ms), 100, 600000, "30000", true, false,
     "time to receive a whole request body"},
    {"server", "idle_timeout_ms", K_INT, O(idle_timeout_ms), 100, 3600000, "60000", true, false,
     "time a kept-alive connection may idle"},
    {"server", "handshake_timeout_ms", K_INT, O(handshake_timeout_ms), 100, 600000, "10000", true,
     false, "time to complete the TLS handshake"},
    {"server", "workers", K_INT, O(workers), 1, 128, "4", false, false,
     "validation threads (libuv thread pool size)"},

    {"admin", "listen", K_ADDR, O(admin_listen), 0, 0, "127.0.0.1:9090", false, false,
     "address of the admin listener (/healthz, /readyz, /metrics, API)"},
    {"admin", "tls_cert", K_PATH, O(admin_tls_cert), 0, 0, NULL, false, false,
     "when set with tls_key and tls_ca, the admin listener requires mutual TLS"},
    {"admin", "tls_key", K_SECRET, O(admin_tls_key), 0, 0, NULL, false, false,
     "key of the admin listener's certificate"},
    {"admin", "tls_ca", K_PATH, O(admin_tls_ca), 0, 0, NULL, false, false,
     "CA that signs administrators' client certificates"},
    {"admin", "admins", K_STR, O(admin_ids), 0, 0, NULL, true, false,
     "HSA-ids (comma-separated) of the admin certificates allowed on a mutual-TLS admin "
     "listener"},
    {"admin", "audit_log", K_STR, O(admin_audit_log), 0, 0, NULL, false, false,
     "file that records every replay and discard with the admin's identity"},
    {"admin", "dashboard_dir", K_STR, O(dashboard_dir), 0, 0, NULL, false, false,
     "directory of the dashboard's static files"},

    {"validation", "schema_dir", K_STR, O(schema_dir), 0, 0, INTYGSGW_SCHEMA_DIR, false, false,
     "directory of the RIV-TA XSDs (schemas/ of the source tree)"},
    {"validation", "person_id_check", K_PIDCHECK, O(person_id_check), 0, 0, "strict", true, false,
     "strict: a bad personnummer check digit is an error; warn: a warning"},

    {"outbox", "path", K_STR, O(outbox_path), 0, 0, "intygsgw-outbox.db", false, false,
     "SQLite file of the durable outbox"},
    {"outbox", "retention_days", K_INT, O(retention_days), 0, 3650, "7", true, false,
     "days a delivered intyg's body is kept before it is purged"},
    {"outbox", "batch_max", K_INT, O(batch_max), 1, 10000, "512", false, false,
     "most intyg in one group commit"},

    {"forward", "enabled", K_BOOL, O(forward_enabled), 0, 0, "true", true, false,
     "forward stored intyg to Försäkringskassan"},
    {"forward", "url", K_STR, O(fk_url), 0, 0,
     "https://127.0.0.1:9443/clinicalprocess/healthcond/certificate/RegisterCertificate/3/"
     "rivtabp21",
     true, false, "FK's RegisterCertificate endpoint (RevokeCertificate derived from it)"},
    {"forward", "logical_address", K_STR, O(fk_logical_address), 0, 0, "2021005521", true, false,
     "LogicalAddress header towards FK"},
    {"forward", "ca", K_PATH, O(fk_ca), 0, 0, NULL, true, false,
     "CA that FK's server certificate must chain to (pinned)"},
    {"forward", "client_cert", K_PATH, O(fk_client_cert), 0, 0, NULL, true, false,
     "the gateway's client certificate towards FK"},
    {"forward", "client_key", K_SECRET, O(fk_client_key), 0, 0, NULL, true, false, "its key"},
    {"forward", "concurrency", K_INT, O(fk_concurrency), 1, 1024, "16", true, false,
     "transfers to FK in flight"},
    {"forward", "timeout_ms", K_INT, O(fk_timeout_ms), 100, 600000, "15000", true, false,
     "one attempt, connect to last byte"},
    {"forward", "retry_base_ms", K_INT, O(retry_base_ms), 10, 3600000, "1000", true, false,
     "first backoff; doubles per attempt, full jitter"},
    {"forward", "retry_max_ms", K_INT, O(retry_max_ms), 10, 86400000, "600000", true, false,
     "backoff ceiling"},
    {"forward", "retry_horizon_s", K_INT, O(retry_horizon_s), 1, 30 * 86400, "259200", true, false,
     "give up (dead letter) this long after the first attempt (72 h)"},
    {"forward", "breaker_failures", K_INT, O(breaker_failures), 1, 100000, "5", true, false,
     "consecutive failures that open the circuit breaker"},
    {"forward", "breaker_open_ms", K_INT, O(breaker_open_ms), 10, 3600000, "2000", true, false,
     "time the circuit stays open before one probe"},

    {"hsa", "ldif", K_PATH, O(hsa_ldif), 0, 0, NULL, true, false, "HSA directory extract (LDIF)"},
    {"hsa", "mapping", K_PATH, O(hsa_mapping), 0, 0, NULL, true, false,
     "region-agreed mapping table, CSV: unit HSA-id,follow-up unit HSA-id"},
    {"hsa", "level", K_STR, O(hsa_level), 0, 0, NULL, true, false,
     "the follow-up level: a predicate over HSA attributes (see ops/HSA.md)"},
    {"hsa", "provider_mismatch", K_POLICY, O(provider_mismatch), 0, 0, "flag", true, false,
     "intyg's care provider differs from the directory's: flag | refuse"},
    {"hsa", "unknown_unit", K_POLICY, O(unknown_unit), 0, 0, "accept", true, false,
     "issuing unit not in the directory: accept (counted and flagged) | refuse"},

    {"auth", "grants", K_PATH, O(grants), 0, 0, NULL, true, false,
     "caller HSA-id -> care providers it may submit for; unset: every caller refused"},

    {"stats", "path", K_STR, O(stats_path), 0, 0, NULL, false, false,
     "SQLite file of the follow-up statistics; unset: no statistics"},
    {"stats", "pseudonym_key", K_SECRET, O(pseudonym_key), 0, 0, NULL, false, false,
     "file with the secret HMAC key for patient pseudonyms (>= 32 bytes, mode 0600)"},

    {"log", "level", K_LEVEL, O(log_level), 0, 0, "info", true, false,
     "debug | info | warn | error"},
};

#define NKEYS (sizeof keys / sizeof keys[0])

struct load_state {
        struct config *cfg;
        const char *path;
        FILE *errs;
        int n_errors;
        int line;
        bool seen[NKEYS];
        bool check_files;
};

static void cfg_err(struct load_state *st, const char *section, const char *name, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

static void cfg_err(struct load_state *st, const char *section, const char *name, const char *fmt,
                    ...)
{
        st->n_errors++;
        if (!st->errs)
                return;
        if (st->line > 0)
                fprintf(st->errs, "%s:%d: ", st->path, st->line);
        else
                fprintf(st->errs, "%s: ", st->path);
        if (section)
                fprintf(st->errs, "[%s] %s: ", section, name ? name : "");
        va_list ap;
        va_start(ap, fmt);
        vfprintf(st->errs, fmt, ap);
        va_end(ap);
        fputc('\n', st->errs);
}

static char **str_at(struct config *cfg, const struct key *k)
{
        return (char **)((char *)cfg + k->off);
}

static int *int_at(struct config *cfg, const struct key *k)
{
        return (int *)((char *)cfg + k->off);
}

static bool parse_ll(const char *v, long long *out)
{
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end != '\0')
                return false;
        *out = x;
        return true;
}

static bool addr_ok(const char *v)
{
        const char *colon = strrchr(v, ':');
        if (!colon || colon == v)
                return false;
        long long port;
        if (!parse_ll(colon + 1, &port) || port < 0 || port > 65535)
                return false;
        if (v[0] == '[')
                return colon[-1] == ']';
        return true;
}

/* Set one key from text. Returns NULL on success or the reason. */
static const char *key_set(struct config *cfg, const struct key *k, const char *v)
{
        long long x;
        switch (k->type) {
        case K_STR:
        case K_PATH:
        case K_SECRET:
        case K_ADDR:
        case K_LEVEL: {
                if (k->type == K_ADDR && !addr_ok(v))
                        return "expected host:port (IPv6 as [addr]:port)";
                if (k->type == K_LEVEL && strcmp(v, "debug") && strcmp(v, "info") &&
                    strcmp(v, "warn") && strcmp(v, "error"))
                        return "expected debug, info, warn or error";
                char *dup = strdup(v);
                if (!dup)
                        return "out of memory";
                free(*str_at(cfg, k));
                *str_at(cfg, k) = dup;
                return NULL;
        }
        case K_INT:
        case K_I64:
                if (!parse_ll(v, &x))
                        return "expected an integer";
                if (x < k->min || x > k->max)
                        return "out of range";
                if (k->type == K_INT)
                        *int_at(cfg, k) = (int)x;
                else
                        *(int64_t *)((char *)cfg + k->off) = x;
                return NULL;
        case K_BOOL:
                if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
                        *(bool *)((char *)cfg + k->off) = true;
                else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") ||
                         !strcmp(v, "0"))
                        *(bool *)((char *)cfg + k->off) = false;
                else
                        return "expected true or false";
                return NULL;
        case K_PIDCHECK:
                if (!strcmp(v, "strict"))
                        cfg->person_id_check = PERSON_ID_CHECK_STRICT;
                else if (!strcmp(v, "warn"))
                        cfg->person_id_check = PERSON_ID_CHECK_WARN;
                else
                        return "expected strict or warn";
                return NULL;
        case K_POLICY: {
                enum policy_flag *p = (enum policy_flag *)((char *)cfg + k->off);
                if (!strcmp(v, "accept"))
                        *p = POLICY_ACCEPT;
                else if (!strcmp(v, "flag"))
                        *p = POLICY_FLAG;
                else if (!strcmp(v, "refuse"))
                        *p = POLICY_REFUSE;
                else
                        return "expected accept, flag or refuse";
                return NULL;
        }
        }
        return "unknown key type";
}

struct config *config_new_defaults(void)
{
        struct config *cfg = calloc(1, sizeof *cfg);
        if (!cfg)
                return NULL;
        for (size_t i = 0; i < NKEYS; i++) {
                if (keys[i].def && key_set(cfg, &keys[i], keys[i].def)) {
                        config_free(cfg);
                        return NULL;
                }
        }
        return cfg;
}

void config_free(struct config *cfg)
{
        if (!cfg)
                return;
        for (size_t i = 0; i < NKEYS; i++) {
                switch (keys[i].type) {
                case K_STR:
                case K_PATH:
                case K_SECRET:
                case K_ADDR:
                case K_LEVEL:
                        free(*str_at(cfg, &keys[i]));
                        break;
                default:
                        break;
                }
        }
        free(cfg->path);
        free(cfg);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
        struct load_state *st = user;
        for (size_t i = 0; i < NKEYS; i++) {
                if (strcmp(keys[i].section, section) || strcmp(keys[i].name, name))
                        continue;
                if (st->seen[i])
                        cfg_err(st, section, name, "set twice");
                st->seen[i] = true;
                const char *why = key_set(st->cfg, &keys[i], value);
                if (why)
                        cfg_err(st, section, name, "%s: \"%s\"", why, value);
                return 1;
        }
        cfg_err(st, section, name, "unknown key");
        return 1;
}

/* A reader that counts lines so that errors can name them. */
struct line_reader {
        FILE *f;
        struct load_state *st;
};

static char *read_line(char *buf, int size, void *stream)
{
        struct line_reader *r = stream;
        char *s = fgets(buf, size, r->f);
        if (s)
                r->st->line++;
        return s;
}

char *config_path_resolve(const struct config *cfg, const char *p)
{
        if (!p)
                return NULL;
        if (p[0] == '/' || !cfg->path)
                return strdup(p);
        char *copy = strdup(cfg->path);
        if (!copy)
                return NULL;
        const char *dir = dirname(copy);
        size_t n = strlen(dir) + strlen(p) + 2;
        char *out = malloc(n);
        if (out)
                snprintf(out, n, "%s/%s", dir, p);
        free(copy);
        return out;
}

static void check_file(struct load_state *st, const struct key *k, const char *p)
{
        struct stat sb;
        if (stat(p, &sb) != 0) {
                cfg_err(st, k->section, k->name, "%s: %s", p, strerror(errno));
                return;
        }
        if (!S_ISREG(sb.st_mode)) {
                cfg_err(st, k->section, k->name, "%s: not a regular file", p);
                return;
        }
        if (access(p, R_OK) != 0) {
                cfg_err(st, k->section, k->name, "%s: not readable: %s", p, strerror(errno));
                return;
        }
        if (k->type == K_SECRET && (sb.st_mode & 077))
                cfg_err(st, k->section, k->name,
                        "%s: readable by group or others (mode %03o); chmod 600 it", p,
                        (unsigned)(sb.st_mode & 0777));
}

struct config *config_load(const char *path, bool check_files, FILE *errs, int *n_errors)
{
        struct load_state st = {.path = path, .errs = errs, .check_files = check_files};
        *n_errors = 0;
        st.cfg = config_new_defaults();
        if (!st.cfg) {
                cfg_err(&st, NULL, NULL, "out of memory");
                *n_errors = st.n_errors;
                return NULL;
        }
        st.cfg->path = strdup(path);
        FILE *f = fopen(path, "r");
        if (!f) {
                cfg_err(&st, NULL, NULL, "cannot open: %s", strerror(errno));
                goto fail;
        }
        struct line_reader rd = {.f = f, .st = &st};
        int rc = ini_parse_stream(read_line, &rd, on_key, &st);
        fclose(f);
        if (rc > 0) {
                st.line = rc;
                cfg_err(&st, NULL, NULL, "syntax error");
        }
        st.line = 0;

        /* Whole-file checks, then path resolution. */
        for (size_t i = 0; i < NKEYS; i++) {
                const struct key *k = &keys[i];
                if (k->required && !*str_at(st.cfg, k))
                        cfg_err(&st, k->section, k->name, "required");
        }
        bool admin_tls = st.cfg->admin_tls_cert || st.cfg->admin_tls_key || st.cfg->admin_tls_ca;
        if (admin_tls && !st.cfg->admin_ids)
                cfg_err(&st, "admin", "admins",
                        "required with mutual TLS on the admin listener (who may administer)");
        if (admin_tls && !(st.cfg->admin_tls_cert && st.cfg->admin_tls_key && st.cfg->admin_tls_ca))
                cfg_err(&st, "admin", "tls_cert",
                        "tls_cert, tls_key and tls_ca go together (mutual TLS on the admin "
                        "listener)");
        if (st.cfg->forward_enabled &&
            !(st.cfg->fk_ca && st.cfg->fk_client_cert && st.cfg->fk_client_key))
                cfg_err(&st, "forward", "ca",
                        "forwarding is enabled: ca, client_cert and client_key are required");
        if (st.cfg->retry_base_ms > st.cfg->retry_max_ms)
                cfg_err(&st, "forward", "retry_base_ms", "larger than retry_max_ms");
        if (st.cfg->stats_path && !st.cfg->pseudonym_key)
                cfg_err(&st, "stats", "pseudonym_key", "required when [stats] path is set");
        if (strcmp(st.cfg->caller_id_attr, "serialNumber") &&
            strcmp(st.cfg->caller_id_attr, "OU") && strcmp(st.cfg->caller_id_attr, "CN"))
                cfg_err(&st, "server", "caller_id_attr", "expected serialNumber, OU or CN");

        for (size_t i = 0; i < NKEYS; i++) {
                const struct key *k = &keys[i];
                if (k->type != K_PATH && k->type != K_SECRET)
                        continue;
                char **slot = str_at(st.cfg, k);
                if (!*slot)
                        continue;
                char *abs = config_path_resolve(st.cfg, *slot);
                if (!abs) {
                        cfg_err(&st, k->section, k->name, "out of memory");
                        continue;
                }
                free(*slot);
                *slot = abs;
                if (check_files)
                        check_file(&st, k, abs);
        }
        /* Data files that may not exist yet (databases): resolve only. */
        char **dbs[] = {&st.cfg->outbox_path, &st.cfg->stats_path, &st.cfg->admin_audit_log,
                        &st.cfg->dashboard_dir, &st.cfg->schema_dir};
        for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
                if (!*dbs[i])
                        continue;
                char *abs = config_path_resolve(st.cfg, *dbs[i]);
                if (abs) {
                        free(*dbs[i]);
                        *dbs[i] = abs;
                }
        }
        if (st.n_errors)
                goto fail;
        *n_errors = 0;
        return st.cfg;
fail:
        *n_errors = st.n_errors;
        config_free(st.cfg);
        return NULL;
}

static void dump_value(const struct config *cfg, const struct key *k, FILE *out)
{
        struct config *c = (struct config *)cfg;
        char esc[1024];
        switch (k->type) {
        case K_STR:
        case K_PATH:
        case K_SECRET:
        case K_ADDR:
        case K_LEVEL: {
                const char *s = *str_at(c, k);
                if (!s) {
                        fputs("null", out);
                        return;
                }
                size_t o = 0;
                for (const char *p = s; *p && o < sizeof esc - 3; p++) {
                        if (*p == '"' || *p == '\\')
                                esc[o++] = '\\';
                        esc[o++] = *p;
                }
                esc[o] = '\0';
                fprintf(out, "\"%s\"", esc);
                return;
        }
        case K_INT:
                fprintf(out, "%d", *int_at(c, k));
                return;
        case K_I64:
                fprintf(out, "%lld", (long long)*(int64_t *)((char *)c + k->off));
                return;
        case K_BOOL:
                fputs(*(bool *)((char *)c + k->off) ? "true" : "false", out);
                return;
        case K_PIDCHECK:
                fputs(cfg->person_id_check == PERSON_ID_CHECK_WARN ? "\"warn\"" : "\"strict\"",
                      out);
                return;
        case K_POLICY: {
                enum policy_flag p = *(enum policy_flag *)((char *)c + k->off);
                fputs(p == POLICY_REFUSE ? "\"refuse\""
                      : p == POLICY_FLAG ? "\"flag\""
                                         : "\"accept\"",
                      out);
                return;
        }
        }
}

void config_dump_json(const struct config *cfg, FILE *out)
{
        fputs("[", out);
        for (size_t i = 0; i < NKEYS; i++) {
                const struct key *k = &keys[i];
                fprintf(out, "%s{\"section\":\"%s\",\"key\":\"%s\",\"value\":", i ? "," : "",
                        k->section, k->name);
                dump_value(cfg, k, out);
                fprintf(out, ",\"default\":");
                if (k->def) {
                        fputc('"', out);
                        for (const char *p = k->def; *p; p++) {
                                if (*p == '"' || *p == '\\')
                                        fputc('\\', out);
                                fputc(*p, out);
                        }
                        fputc('"', out);
                } else {
                        fputs("null", out);
                }
                fprintf(out, ",\"reload\":%s,\"help\":\"%s\"}", k->reload ? "true" : "false",
                        k->help);
        }
        fputs("]\n", out);
}

size_t config_key_count(void)
{
        return NKEYS;
}

void config_key_name(size_t i, const char **section, const char **name)
{
        *section = keys[i].section;
        *name = keys[i].name;
}
