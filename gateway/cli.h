/*
 * cli.h - the administrator's commands that talk to a running gateway's admin API:
 * status, deadletters list|replay|discard, show. Human tables by default, --json for scripts.
 * Main thread only (blocking libcurl easy calls).
 */
#ifndef INTYGSGW_CLI_H
#define INTYGSGW_CLI_H

/** `intygsgw status [--admin HOST:PORT | -c FILE] [--json]`; argv[0] is "status". */
int cli_status(int argc, char **argv);

/** `intygsgw deadletters list|replay|discard [ID...|--all] [--json]`. */
int cli_deadletters(int argc, char **argv);

/** `intygsgw show ID [--json]`. */
int cli_show(int argc, char **argv);

#endif
