/*
 * storage.h - what the storage controller tests share (AHCI, bus-master IDE, MegaRAID,
 * NVMe): a disk seen through its controller driver, the read/write/verify test every
 * controller runs, and the disk-check lines the QEMU runner verifies on the host.
 *
 * A controller test binds its driver (kernel/drivers/), sets up busdma for the
 * controller's PCI function with tags stating the controller's real constraints, fills
 * a struct blockdev and calls storage_rw_verify(). Everything the device reads or
 * writes in RAM (command lists, rings, PRD/PRP/SG lists and data) comes from busdma.
 */
#ifndef KERNEL_STORAGE_H
#define KERNEL_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "fixture.h"
#include "ktest.h"

/* A disk behind a controller driver. */
struct blockdev {
	const char *name;            /* "ahci", "ata", "megasas", "nvme": names the image
				      * the QEMU runner checks (see storage_disk_check) */
	struct dmar_dma_tag *tag;    /* the data tag: the controller's real constraints */
	uint32_t sector_size;        /* bytes, 512 or 4096 */
	uint64_t sectors;            /* capacity */
	uint64_t max_bytes;          /* the largest transfer one command may move (<= the
				      * tag's maxsize) */
	/* One READ (write = false: disk -> memory) or WRITE command of `count` sectors at
	 * `lba`, moving the data described by the segments of `map` (loaded with exactly
	 * count * sector_size bytes). The caller does the busdma syncs around it. Returns
	 * 0, or a negative value when the controller reports an error or times out. */
	int (*io)(struct blockdev *b, bool write, uint64_t lba, uint32_t count,
		  struct dmar_dmamap *map);
	void *drv;                   /* the driver's state */
};

/* Writes patterns with storage_pattern() and reads them back into other buffers, through
 * b->io, for: one sector; several pages; a buffer starting mid-page; physically
 * discontiguous pages (dmar_dmamap_load_pages); the largest transfer (b->max_bytes).
 * Each region lies at or above `lba_base` (regions never overlap). Prints a disk-check
 * line per write that must be on the disk afterwards. */
void storage_rw_verify(struct ktest *t, struct fixture *f, struct blockdev *b,
		       uint64_t lba_base);

/* The byte at `offset` into sector `lba` of a pattern written with `seed`. */
static inline uint8_t storage_pattern(uint32_t seed, uint64_t lba, uint32_t offset)
{
	uint32_t x = seed * 2654435761u ^ (uint32_t)lba * 40503u ^ (uint32_t)(lba >> 32);
	x ^= offset * 2246822519u;
	x ^= x >> 15;
	return (uint8_t)(x * 3266489917u >> 24);
}

/* Fills [va, va + len) with the pattern of sectors lba, lba + 1, ... */
void storage_fill(uint8_t *va, uint64_t len, uint32_t sector_size, uint32_t seed, uint64_t lba);
/* Whether [va, va + len) holds that pattern; prints the first difference. */
bool storage_matches(const uint8_t *va, uint64_t len, uint32_t sector_size, uint32_t seed,
		     uint64_t lba);

/* Prints "# disk-check: NAME lba=L sectors=N seed=S sector=B": after the run, the QEMU
 * runner reads the disk image of NAME and checks that those sectors hold the pattern
 * (scripts/disk_check.py), so the data is known to have gone through the device. */
void storage_disk_check(const struct blockdev *b, uint64_t lba, uint64_t sectors, uint32_t seed);

/* One command on an already loaded map, with the syncs a driver does around it:
 * b->io's result. */
int storage_io(struct blockdev *b, struct dmar_dmamap *map, bool write, uint64_t lba,
	       uint64_t len);
/* Loads `buf` (len bytes) into map, runs storage_io, and unloads unless `keep` (then
 * the map stays loaded when the load succeeded). 0, or the first error. */
int storage_xfer(struct blockdev *b, struct dmar_dmamap *map, bool write, uint64_t lba,
		 uint8_t *buf, uint64_t len, bool keep);

/* What an unloaded buffer holds in the stale-IOVA tests, and the seed that asks
 * storage_fresh_io to check that the disk did not get it. */
#define STORAGE_CANARY 0x5a
#define STORAGE_CANARY_SEED 0u

/* Writes (or reads and checks against the pattern of `seed`) `len` bytes at lba through
 * a fresh buffer, in RAM at or above `min` when nonzero: then the buffer's first segment
 * is printed and `check_segs` (if given) checks the loaded map. A READ with seed
 * STORAGE_CANARY_SEED checks instead that no sector holds only STORAGE_CANARY bytes.
 * Whether all went well (each failure is reported). */
bool storage_fresh_io(struct ktest *t, struct blockdev *b, bool write, uint64_t lba,
		      uint64_t len, uint32_t seed, uint64_t min,
		      void (*check_segs)(struct ktest *t, const struct blockdev *b,
					 const struct dmar_dmamap *map));

/* The fault of a stale DMA by `sid` at `iova`: exactly one record (as expect_fault checks
 * it); returns whether it was there (what the OS's fault handler tells the driver). */
bool storage_stale_fault(struct ktest *t, struct fixture *f, uint16_t sid, uint64_t iova,
			 bool is_read);

/* A controller bound for the storage benchmark (bench_storage.c), by the same setup code
 * its tests use. */
struct storage_ctl {
	struct blockdev b;            /* the disk; b.tag is the controller's data tag */
	struct dmar_busdma_dev *dev;  /* the controller's busdma device */
	void *state;                  /* the controller test file's own */
};

/* Each controller test file (test_ahci.c, test_ata.c, test_megasas.c, test_nvme.c)
 * provides one. At most one controller of a kind is up at a time. */
struct storage_ctl_ops {
	const char *name; /* as in struct blockdev */
	/* The first such controller's PCI function; false when the machine has none. */
	bool (*find)(struct dmar_pci_addr *addr);
	/* Creates busdma for f->sys with the tunables `cfg` (which decide whether the
	 * controller is translated or bounced), binds the driver and fills *c. Returns 0, or
	 * nonzero after failing (or skipping, t->skip) the test; then call down too. */
	int (*up)(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
		  struct storage_ctl *c);
	/* Unbinds the driver and destroys what up made (the caller's maps and tags on
	 * c->b.tag must be gone). */
	void (*down)(struct ktest *t, struct storage_ctl *c);
};

extern const struct storage_ctl_ops storage_ctl_ahci, storage_ctl_ata, storage_ctl_megasas,
	storage_ctl_nvme;

#endif
