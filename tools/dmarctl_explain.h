/*
 * dmarctl_explain.h - `dmarctl explain [--json] [--table FILE | --no-table] [LOG]`:
 * reads kernel log text (LOG, "-" or none: standard input) and explains each DMAR fault
 * line it finds, against the machine's DMAR table when one is given (--table) or present
 * (/sys/firmware/acpi/tables/DMAR; --no-table ignores it).
 */
#ifndef DMARCTL_EXPLAIN_H
#define DMARCTL_EXPLAIN_H

/* argv: the arguments after "explain". Returns the process exit status: 0 when the
 * input was read (with or without fault lines), 2 on a usage or I/O error. */
int dmarctl_explain(int argc, char **argv);

#endif
