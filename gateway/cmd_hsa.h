/*
 * cmd_hsa.h - `intygsgw hsa lookup|check`: what the gateway would tag a unit with, and what is
 * wrong with the directory extract.
 *
 * Owns nothing after it returns (loads its own struct hsa_dir and frees it).
 * Threads: the main thread of the command-line tool.
 */
#ifndef INTYGSGW_CMD_HSA_H
#define INTYGSGW_CMD_HSA_H

#include <stdio.h>

#include "hsa.h"

/**
 * argv[0] = "hsa", argv[1] = "lookup" or "check".
 *   hsa lookup [-c FILE] HSA-ID [--provider VG-HSA-ID]   the tag of one unit and how it resolved
 *   hsa check  [-c FILE]                                 the extract's problems, per-region counts
 * "-c FILE" is accepted and skipped (the caller has loaded the config into o). Results go to
 * out, errors to stderr. Exit code: 0 fine; 1 lookup: unit not in the directory / check:
 * problems found; 2 usage error or the extract, mapping or predicate could not be loaded.
 */
int cmd_hsa(int argc, char **argv, const struct hsa_opts *o, FILE *out);

#endif
