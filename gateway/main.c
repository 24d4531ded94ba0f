/*
 * main.c - the intygsgw command line: serve, check-config, validate, hsa, stats, status, ...
 * Runs on the main thread; `serve` hands over to the loop in server.c.
 */
#include <stdio.h>
#include <string.h>

static int usage(FILE *f)
{
        fprintf(f, "usage: intygsgw COMMAND [ARGS]\n"
                   "commands: serve, check-config, validate, version\n");
        return 2;
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return usage(stderr);
        if (strcmp(argv[1], "version") == 0) {
                printf("intygsgw %s\n", INTYGSGW_VERSION);
                return 0;
        }
        return usage(stderr);
}
