/*
 * fuzz_acpi.c - libFuzzer target: any bytes into the DMAR parser, then every getter,
 * scope iterator and device lookup over what it accepted.
 */
#include <dmar/acpi.h>

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fake_bridge(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
		       uint8_t *sub)
{
	(void)ctx;
	(void)seg;
	if ((dev ^ fn ^ bus) & 1)
		return -1;
	*sub = (uint8_t)(bus + 3);
	return (uint8_t)(bus + dev + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dmar_acpi_table t;
	struct dmar_acpi_options opt = {.checksum_fatal = size > 0 && (data[size - 1] & 1)};
	if (dmar_acpi_parse(data, size, &opt, &t) != 0)
		return 0;
	char line[256];
	for (unsigned i = 0; i < t.nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++)
		dmar_acpi_finding_format(&t.findings[i], line, sizeof(line));
	struct dmar_acpi_struct st;
	for (unsigned i = 0; dmar_acpi_struct_get(&t, i, &st) == 0; i++) {
		struct dmar_acpi_scope_iter it;
		struct dmar_acpi_scope sc;
		if (dmar_acpi_scope_begin(&t, st.offset, &it) == 0)
			while (dmar_acpi_scope_next(&it, &sc))
				(void)dmar_acpi_scope_matches(&sc, 0, sc.start_bus, 1, 0, 0,
							      fake_bridge, NULL);
	}
	struct dmar_acpi_andd a;
	for (unsigned i = 0; dmar_acpi_andd_get(&t, i, &a) == 0; i++)
		;
	unsigned idx, cursor = 0;
	struct dmar_acpi_rmrr r;
	for (unsigned bus = 0; bus < 4; bus++) {
		(void)dmar_acpi_device_unit(&t, 0, (uint8_t)bus, 2, 0, fake_bridge, NULL, &idx);
		cursor = 0;
		while (dmar_acpi_device_rmrr_next(&t, 0, (uint8_t)bus, 2, 0, fake_bridge, NULL,
						  &cursor, &r) == 0)
			;
	}
	return 0;
}
