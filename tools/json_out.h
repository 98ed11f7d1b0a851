/* json_out.h - the JSON string writer dmarctl's commands share. */
#ifndef DMARCTL_JSON_OUT_H
#define DMARCTL_JSON_OUT_H

/* Prints s to standard output as a JSON string: quoted, with '"' and '\' escaped and
 * control and non-ASCII bytes as \u00XX. */
void json_str(const char *s);

#endif
