/*
 * sim_fault - embedding dmar in a host program, built against the installed library.
 *
 * The program brings up one VT-d unit of the simulated machine (dmar-sim: the VT-d
 * model behind the POSIX OS layer), puts device 00:03.0 in a translated domain, maps one
 * page for it, lets the device write through the mapping, then lets it read an address
 * nobody mapped. The unit refuses that read and records a fault; the program drains it
 * and prints the library's explanation.
 *
 * On a real machine the OS layer is the embedder's own (include/dmar/os.h): MMIO,
 * page allocation, locks and time of the kernel or firmware it lives in.
 *
 * Exit status 0 when everything happened as described, 1 otherwise.
 */
#include <dmar/dmar.h>
#include <dmar/error.h>
#include <dmar/fault.h>
#include <dmar/prot.h>
#include <dmar/version.h>
#include <posix_machine.h>

#include <stdio.h>
#include <string.h>

#define REG_BASE 0xfed90000ull
#define DEVICE_SID ((0u << 8) | (3u << 3) | 0u) /* 00:03.0 */
#define IOVA 0x100000ull
#define WILD_IOVA 0x7000000ull

static int fail(const char *what, int rc)
{
	fprintf(stderr, "sim_fault: %s: %s\n", what, rc ? dmar_strerror(rc) : "unexpected");
	return 1;
}

int main(void)
{
	printf("dmar %s (headers %d.%d.%d)\n", dmar_version(), DMAR_VERSION_MAJOR,
	       DMAR_VERSION_MINOR, DMAR_VERSION_PATCH);

	struct posix_machine *pm = dmar_posix_machine_create(NULL);
	if (!pm || !dmar_posix_machine_add_unit(pm, REG_BASE, NULL))
		return fail("simulated machine", DMAR_ENOMEM);
	struct model *hw = dmar_posix_machine_unit(pm, REG_BASE);

	struct dmar_config cfg;
	dmar_config_default(&cfg);
	struct dmar_system *sys;
	struct dmar_unit *unit;
	int rc = dmar_system_create(dmar_posix_machine_os(pm), &cfg, NULL, &sys);
	if (rc)
		return fail("dmar_system_create", rc);
	if ((rc = dmar_system_add_unit(sys, 0, REG_BASE, &unit)) != 0)
		return fail("dmar_system_add_unit", rc);

	struct dmar_domain_params params = {.kind = DMAR_DOMAIN_TRANSLATED};
	struct dmar_domain *dom;
	if ((rc = dmar_domain_create(unit, &params, &dom)) != 0)
		return fail("dmar_domain_create", rc);
	if ((rc = dmar_domain_attach(dom, DEVICE_SID)) != 0)
		return fail("dmar_domain_attach", rc);

	uint64_t pa;
	char *page = dmar_posix_machine_alloc_dma(pm, 4096, 4096, &pa);
	if (!page)
		return fail("DMA buffer", DMAR_ENOMEM);
	if ((rc = dmar_map(dom, IOVA, pa, 4096, DMAR_PROT_RW)) != 0)
		return fail("dmar_map", rc);
	printf("mapped iova 0x%llx -> phys 0x%llx for 00:03.0\n", (unsigned long long)IOVA,
	       (unsigned long long)pa);

	/* The device writes through its mapping... */
	char msg[] = "written by the device";
	if (dmar_posix_machine_dma(pm, hw, DEVICE_SID, IOVA, msg, sizeof(msg), MODEL_DMA_WRITE,
				   NULL) != 0 || strcmp(page, msg) != 0)
		return fail("DMA through the mapping", 0);
	printf("device DMA write through iova 0x%llx reached the page: \"%s\"\n",
	       (unsigned long long)IOVA, page);

	/* ...and then reads where nothing is mapped: the unit refuses and records it. */
	char buf[64];
	if (dmar_posix_machine_dma(pm, hw, DEVICE_SID, WILD_IOVA, buf, sizeof(buf),
				   MODEL_DMA_READ, NULL) == 0)
		return fail("wild DMA was not refused", 0);
	dmar_fault_poll(sys);
	struct dmar_fault_record rec;
	if (dmar_fault_read(sys, &rec, 1) != 1)
		return fail("no fault record", 0);
	char text[1024];
	dmar_fault_format(sys, &rec, text, sizeof(text));
	printf("wild DMA refused: %s\n", text);
	if (rec.addr != WILD_IOVA || rec.sid != DEVICE_SID || !rec.is_read)
		return fail("fault record does not name the wild read", 0);

	if ((rc = dmar_unmap(dom, IOVA, 4096)) != 0)
		return fail("dmar_unmap", rc);
	dmar_domain_detach(dom, DEVICE_SID);
	dmar_domain_destroy(dom);
	dmar_system_destroy(sys);
	dmar_posix_machine_free_dma(pm, page, 4096);
	unsigned long leaked = (unsigned long)(dmar_posix_machine_allocs_outstanding(pm) +
					       dmar_posix_machine_pages_outstanding(pm));
	dmar_posix_machine_destroy(pm);
	if (leaked)
		return fail("allocations left behind", 0);
	printf("sim_fault: ok\n");
	return 0;
}
