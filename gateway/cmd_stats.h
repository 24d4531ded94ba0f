/*
 * cmd_stats.h - `intygsgw stats ingest|report`: feed RegisterCertificate / RevokeCertificate
 * files through validation, tagging and fact extraction into the statistics store (without
 * forwarding), and print any follow-up report. Same code as the daemon (stats_store.h,
 * stats_report.h). Runs on the CLI's main thread; owns what it opens for the command.
 */
#ifndef INTYGSGW_CMD_STATS_H
#define INTYGSGW_CMD_STATS_H

/**
 * argv[0] is "stats". Parses -c FILE itself (config_load).
 * Exit status: 0 every file recorded (or the report printed), 1 some file invalid, refused
 * or in conflict, 2 usage or I/O, 3 configuration.
 */
int cmd_stats(int argc, char **argv);

#endif
