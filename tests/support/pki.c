/*
 * pki.c - makes the shared test PKI once (certs/make-pki.sh under an flock on
 * <dir>.lock, so parallel test processes wait for one another) and remembers its path.
 * Owns a static path string, written once under pthread_once. Any thread.
 */
#include "pki.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define TEST_PKI_PATH_MAX 4096 /* bytes of any path this file builds */

#ifndef INTYGSGW_BIN_DIR
#error "INTYGSGW_BIN_DIR must be defined by the build"
#endif
#ifndef INTYGSGW_SOURCE_DIR
#error "INTYGSGW_SOURCE_DIR must be defined by the build"
#endif

static pthread_once_t pki_once = PTHREAD_ONCE_INIT;
static char pki_path[TEST_PKI_PATH_MAX];
static int pki_ok;

static int run_make_pki(const char *dir)
{
        char script[TEST_PKI_PATH_MAX];
        if (snprintf(script, sizeof script, "%s/certs/make-pki.sh", INTYGSGW_SOURCE_DIR) >=
            (int)sizeof script)
                return -1;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        char *argv[] = {"bash", script, (char *)dir, NULL};
        pid_t pid;
        int rc = posix_spawnp(&pid, "bash", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) {
                fprintf(stderr, "test_pki_dir: cannot run bash: %s\n", strerror(rc));
                return -1;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0) {
                if (errno != EINTR)
                        return -1;
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "test_pki_dir: %s %s failed (status %d)\n", script, dir, st);
                return -1;
        }
        return 0;
}

static void make_once(void)
{
        const char *env = getenv("INTYGSGW_TEST_PKI");
        int n;
        if (env && *env)
                n = snprintf(pki_path, sizeof pki_path, "%s", env);
        else
                n = snprintf(pki_path, sizeof pki_path, "%s/../test-pki", INTYGSGW_BIN_DIR);
        if (n <= 0 || n >= (int)sizeof pki_path - 16) {
                fprintf(stderr, "test_pki_dir: path too long\n");
                return;
        }
        char lock[TEST_PKI_PATH_MAX + 8];
        snprintf(lock, sizeof lock, "%s.lock", pki_path);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
                fprintf(stderr, "test_pki_dir: %s: %s\n", lock, strerror(errno));
                return;
        }
        while (flock(fd, LOCK_EX) < 0) {
                if (errno != EINTR) {
                        fprintf(stderr, "test_pki_dir: flock %s: %s\n", lock, strerror(errno));
                        close(fd);
                        return;
                }
        }
        /* make-pki.sh is idempotent and quick on a complete directory */
        if (run_make_pki(pki_path) == 0)
                pki_ok = 1;
        flock(fd, LOCK_UN);
        close(fd);
}

const char *test_pki_dir(void)
{
        pthread_once(&pki_once, make_once);
        return pki_ok ? pki_path : NULL;
}

int test_pki_path(char *out, size_t cap, const char *name)
{
        const char *dir = test_pki_dir();
        if (!dir)
                return -1;
        int n = snprintf(out, cap, "%s/%s", dir, name);
        return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}
