/*
 * fuzz_acpi.c - libFuzzer target: any bytes into the DMAR parser, then every getter,
 * scope iterator and device lookup over what it accepted (dtb_exercise).
 */
#include <dmar/acpi.h>

#include <stddef.h>
#include <stdint.h>

#include "dmar_table_builder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dmar_acpi_table t;
	struct dmar_acpi_options opt = {.checksum_fatal = size > 0 && (data[size - 1] & 1)};
	if (dmar_acpi_parse(data, size, &opt, &t) == 0)
		(void)dtb_exercise(&t);
	return 0;
}
