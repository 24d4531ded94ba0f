/*
 * gw.h - starting and stopping real processes for integration tests: the gateway
 * (build/bin/intygsgw serve) with a generated configuration on loopback ports chosen by the
 * kernel, and the FK simulator. Every process started is stopped by its _stop (SIGTERM, then
 * SIGKILL after a bound). Test process only.
 */
#ifndef INTYGSGW_TEST_GW_H
#define INTYGSGW_TEST_GW_H

#include <stdbool.h>
#include <sys/types.h>

struct fksim {
        pid_t pid;
        int port;         /* mutual-TLS listener */
        int control_port; /* plain control listener */
        char dir[256];
};

struct gw {
        pid_t pid;
        int port;       /* mutual-TLS caller listener */
        int admin_port; /* admin listener */
        char dir[256];  /* temp dir: config, outbox, stats, log */
        char config[300];
        char log[300]; /* the gateway's stderr */
};

/**
 * Start fk-sim with extra command-line flags (NULL-terminated array, may be NULL).
 * Returns 0 when it is listening.
 */
int fksim_start(struct fksim *f, const char *const *flags);
void fksim_stop(struct fksim *f);

/** Change fk-sim's behaviour at run time ("down=1", "reject_rate=1", ...). 0 on success. */
int fksim_control(const struct fksim *f, const char *form);

/** GET a control path (e.g. "/_sim/received") into a malloc'd body; NULL on failure. */
char *fksim_get(const struct fksim *f, const char *path);

/**
 * Write a configuration into a new temp dir and start the gateway. overrides are
 * "section.key=value" strings (NULL-terminated, may be NULL) that replace or add keys.
 * fk: where to forward (NULL: forwarding disabled). Returns 0 when both listeners are bound.
 */
int gw_start(struct gw *g, const struct fksim *fk, const char *const *overrides);

/** Start again on the same dir and config (after gw_kill), new ports. */
int gw_restart(struct gw *g);

/** SIGTERM and wait (bounded); returns the exit status, or -1 if it had to be killed. */
int gw_stop(struct gw *g);

/** SIGKILL, no cleanup (crash tests). */
void gw_kill(struct gw *g);

/** Remove the temp dir (after stop). */
void gw_cleanup(struct gw *g);

/** Read a sample from tests/data (malloc'd, NUL-terminated); NULL on failure. */
char *test_read_file(const char *relpath, size_t *len);

/** Wrap a bare RegisterCertificate/RevokeCertificate element in a RIV-TA SOAP envelope. */
char *test_soap_wrap(const char *bare, size_t len, size_t *out_len);

/** A valid LISJP RegisterCertificate (bare element) with this intygs-id and patient, for
 * a unit and care provider of the sample HSA extract (malloc'd). */
char *test_make_intyg(const char *id, const char *person_id, const char *unit, const char *provider,
                      size_t *len);

/** Simple HTTP GET on the admin listener (plain); body malloc'd, status returned (0: none). */
int test_admin_get(int port, const char *path, char **body);
int test_admin_post(int port, const char *path, char **body);

#endif
