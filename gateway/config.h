/*
 * config.h - the gateway's configuration: one INI file, one key table (config.c).
 *
 * Owns: struct config and every string in it (config_free). A loaded config is immutable;
 * reload builds a new one and swaps (build-new-then-swap), so readers on the loop thread
 * never see a half-made one. Threads: load/check on any thread; the live one belongs to the
 * loop thread, pool workers get copies of what they need.
 */
#ifndef INTYGSGW_CONFIG_H
#define INTYGSGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum person_id_check { PERSON_ID_CHECK_STRICT = 0, PERSON_ID_CHECK_WARN = 1 };
enum policy_flag { POLICY_ACCEPT = 0, POLICY_FLAG = 1, POLICY_REFUSE = 2 };

struct config {
        char *path; /* the file it came from */

        /* [server] the mutual-TLS listener for callers */
        char *listen;         /* "127.0.0.1:8443" or "[::1]:8443" */
        char *tls_cert;       /* gateway server certificate (PEM) */
        char *tls_key;        /* its key; refused if group/other may read it */
        char *tls_ca;         /* CA that signs callers' client certificates */
        char *tls_crl;        /* CRL of that CA, or NULL */
        char *caller_id_attr; /* subject attribute with the caller's HSA-id: serialNumber */
        int max_connections;
        int max_connections_per_caller;
        int max_header_bytes;
        int64_t max_body_bytes;
        int header_timeout_ms;
        int body_timeout_ms;
        int idle_timeout_ms;
        int handshake_timeout_ms;
        int workers; /* libuv thread pool size for validation */

        /* [admin] */
        char *admin_listen;   /* "127.0.0.1:9090" */
        char *admin_tls_cert; /* when set, the admin listener requires mutual TLS */
        char *admin_tls_key;
        char *admin_tls_ca;
        char *admin_audit_log;
        char *admin_ids;     /* comma-separated HSA-ids allowed on a mutual-TLS admin listener */
        char *dashboard_dir; /* static files of the dashboard */

        /* [validation] */
        char *schema_dir;
        enum person_id_check person_id_check;

        /* [outbox] */
        char *outbox_path;  /* SQLite file */
        int retention_days; /* body purge after delivery */
        int batch_max;      /* intyg per group commit */

        /* [forward] towards Försäkringskassan */
        char *fk_url;             /* https://127.0.0.1:9443/clinicalprocess/... */
        char *fk_logical_address; /* default 2021005521 */
        char *fk_ca;              /* pinned CA for FK's server certificate */
        char *fk_client_cert;     /* the gateway's own client certificate towards FK */
        char *fk_client_key;
        int fk_concurrency;   /* transfers in flight */
        int fk_timeout_ms;    /* one attempt */
        int retry_base_ms;    /* first backoff */
        int retry_max_ms;     /* backoff ceiling */
        int retry_horizon_s;  /* give up (dead letter) after this long; default 72 h */
        int breaker_failures; /* consecutive failures that open the circuit */
        int breaker_open_ms;  /* how long it stays open before one probe */
        bool forward_enabled;

        /* [hsa] directory extract and follow-up unit rule */
        char *hsa_ldif;
        char *hsa_mapping;                  /* CSV unit -> follow-up unit, or NULL */
        char *hsa_level;                    /* predicate over HSA attributes, see hsa.h */
        enum policy_flag provider_mismatch; /* flag | refuse */
        enum policy_flag unknown_unit;      /* accept | refuse */

        /* [auth] */
        char *grants; /* caller HSA-id -> care provider HSA-ids it may submit for */

        /* [stats] */
        char *stats_path;    /* SQLite file of the follow-up statistics, or NULL: off */
        char *pseudonym_key; /* file with the HMAC key (secret; mode 0600) */

        /* [log] */
        char *log_level;
};

/** Defaults for every key (strings are copied). Returns NULL on out-of-memory. */
struct config *config_new_defaults(void);

/**
 * Load FILE. Every problem is written to errs (one "file:line: key: reason" a line) and
 * counted; returns the config only when there were none (the caller frees it), else NULL.
 * check_files: also open every certificate, key and data file it names.
 */
struct config *config_load(const char *path, bool check_files, FILE *errs, int *n_errors);

/** Free a config and every string in it; NULL is fine. */
void config_free(struct config *cfg);

/** Write every key with its value, default and whether SIGHUP may change it (JSON object). */
void config_dump_json(const struct config *cfg, FILE *out);

/** The key table, for tests and documentation: number of keys and the i-th key's name. */
size_t config_key_count(void);
void config_key_name(size_t i, const char **section, const char **name);

/** Resolve a path relative to the config file's directory (returns a new string). */
char *config_path_resolve(const struct config *cfg, const char *p);

#endif
