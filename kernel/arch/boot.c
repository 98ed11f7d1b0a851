/* Multiboot v1 information: memory map and command line. */
#include "boot.h"

#include "util.h"

#define MB_LOADER_MAGIC 0x2badb002u
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP (1u << 6)

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct mb_mmap_entry {
	uint32_t size; /* of the rest of the entry */
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

bool boot_info_parse(uint32_t magic, uint32_t info_phys, struct boot_info *out)
{
	dmar_memset(out, 0, sizeof(*out));
	if (magic != MB_LOADER_MAGIC || info_phys == 0)
		return false;
	const struct mb_info *mbi = (const struct mb_info *)(uintptr_t)info_phys;

	if (mbi->flags & MB_INFO_CMDLINE) {
		/* QEMU passes "<image path> <append text>": drop the first word. */
		const char *s = (const char *)(uintptr_t)mbi->cmdline;
		while (*s && *s != ' ')
			s++;
		while (*s == ' ')
			s++;
		size_t n = dmar_strlen(s);
		if (n >= sizeof(out->cmdline))
			n = sizeof(out->cmdline) - 1;
		dmar_memcpy(out->cmdline, s, n);
		out->cmdline[n] = 0;
	}

	if (!(mbi->flags & MB_INFO_MMAP))
		return false;
	uint32_t off = 0;
	while (off + sizeof(struct mb_mmap_entry) <= mbi->mmap_length &&
	       out->nregions < BOOT_MAX_REGIONS) {
		const struct mb_mmap_entry *e =
			(const struct mb_mmap_entry *)(uintptr_t)(mbi->mmap_addr + off);
		if (e->len) {
			struct boot_region *r = &out->region[out->nregions++];
			r->base = e->addr;
			r->len = e->len;
			r->type = e->type;
		}
		off += e->size + 4;
	}
	return out->nregions > 0;
}

bool boot_cmdline_get(const struct boot_info *bi, const char *key, char *buf, unsigned len)
{
	size_t klen = dmar_strlen(key);
	const char *s = bi->cmdline;
	while (*s) {
		while (*s == ' ')
			s++;
		const char *w = s;
		while (*s && *s != ' ')
			s++;
		if ((size_t)(s - w) > klen && dmar_memcmp(w, key, klen) == 0 && w[klen] == '=') {
			size_t n = (size_t)(s - w) - klen - 1;
			if (len == 0)
				return true;
			if (n >= len)
				n = len - 1;
			dmar_memcpy(buf, w + klen + 1, n);
			buf[n] = 0;
			return true;
		}
	}
	return false;
}
