/*
 * cmd_validate.h - `intygsgw validate [--json] [--person-id-check=strict|warn] [--schemas DIR]
 * FILE...`: the validation stack from the command line, one verdict per file.
 * Runs on the main thread of the CLI; owns its validator for the duration of the command.
 */
#ifndef INTYGSGW_CMD_VALIDATE_H
#define INTYGSGW_CMD_VALIDATE_H

/** argv[0] is "validate". Exit status: 0 every file valid, 1 any invalid, 2 usage or I/O. */
int cmd_validate(int argc, char **argv);

#endif
