/* dmarctl_explain.c - `dmarctl explain` (being written: exits 2 until then). */
#include "dmarctl_explain.h"

#include <stdio.h>

int dmarctl_explain(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dmarctl: explain: not built yet\n");
	return 2;
}
