/* Tunables: one string of key=value words in, a struct dmar_config out (pure). */
#include "dmar/config.h"
#include "util.h"

void dmar_config_default(struct dmar_config *cfg)
{
	dmar_memset(cfg, 0, sizeof(*cfg));
	cfg->enable = true;
	cfg->qi = -1;
	cfg->timeout_ns = 1000000000ull;
	cfg->fault_log_size = 64;
	cfg->guard_pages = 1;
	cfg->checksum_fatal = false;
	cfg->strict = true;
	cfg->defer_max = 256;
	cfg->defer_ns = 10000000ull;
	cfg->cpu_windows = 16;
	cfg->ir = true;
	cfg->ir_entries = 256;
	cfg->ir_compat = false;
	cfg->x2apic = false;
}

struct word {
	const char *s;
	size_t n;
};

static bool word_eq(struct word w, const char *lit)
{
	size_t n = dmar_strlen(lit);
	return w.n == n && dmar_memcmp(w.s, lit, n) == 0;
}

static bool word_prefix(struct word w, const char *lit)
{
	size_t n = dmar_strlen(lit);
	return w.n >= n && dmar_memcmp(w.s, lit, n) == 0;
}

/* Decimal or 0x-hex unsigned number filling the whole word. */
static bool parse_u64(struct word w, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	unsigned base = 10;
	if (w.n > 2 && w.s[0] == '0' && (w.s[1] == 'x' || w.s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == w.n)
		return false;
	for (; i < w.n; i++) {
		char c = w.s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

static bool parse_bool(struct word w, bool *out)
{
	uint64_t v;
	if (!parse_u64(w, &v) || v > 1)
		return false;
	*out = v != 0;
	return true;
}

/* "pci<seg>:<bus>:<dev>:<fn>" as in hw.busdma.pci0:0:2:0.bounce, decimal numbers. */
static bool parse_pci(struct word w, struct dmar_pci_addr *a)
{
	uint64_t part[4];
	size_t i = 3, k = 0;
	if (!word_prefix(w, "pci"))
		return false;
	while (k < 4) {
		size_t j = i;
		while (j < w.n && w.s[j] != ':')
			j++;
		struct word num = { w.s + i, j - i };
		if (!parse_u64(num, &part[k]))
			return false;
		k++;
		if (j == w.n)
			break;
		i = j + 1;
	}
	if (k != 4 || part[0] > 0xffff || part[1] > 0xff || part[2] > 31 || part[3] > 7)
		return false;
	a->segment = (uint16_t)part[0];
	a->bus = (uint8_t)part[1];
	a->dev = (uint8_t)part[2];
	a->fn = (uint8_t)part[3];
	return true;
}

static void warn_word(dmar_config_warn_fn warn, void *ctx, const char *what, struct word key,
		      struct word val)
{
	char line[160];
	if (!warn)
		return;
	dmar__snprintf(line, sizeof(line), "tunable %.*s=%.*s: %s", (int)key.n, key.s,
		      (int)val.n, val.s, what);
	warn(ctx, line);
}

/* Index of dev in the bounce list, or nbounce when absent. */
static unsigned bounce_index(const struct dmar_config *cfg, struct dmar_pci_addr dev)
{
	unsigned i = 0;
	for (; i < cfg->nbounce; i++) {
		const struct dmar_pci_addr *b = &cfg->bounce[i];
		if (b->segment == dev.segment && b->bus == dev.bus && b->dev == dev.dev &&
		    b->fn == dev.fn)
			break;
	}
	return i;
}

bool dmar_config_device_bounces(const struct dmar_config *cfg, struct dmar_pci_addr dev)
{
	return bounce_index(cfg, dev) < cfg->nbounce;
}

/* Applies one key=value; returns false when it must be warned about. */
static bool apply(struct dmar_config *cfg, struct word key, struct word val, const char **why)
{
	uint64_t v;
	*why = "bad value";
	if (word_eq(key, "hw.dmar.enable"))
		return parse_bool(val, &cfg->enable);
	if (word_eq(key, "hw.dmar.checksum_fatal"))
		return parse_bool(val, &cfg->checksum_fatal);
	if (word_eq(key, "hw.dmar.qi")) {
		if (val.n == 2 && val.s[0] == '-' && val.s[1] == '1') {
			cfg->qi = -1;
			return true;
		}
		if (!parse_u64(val, &v) || v > 1)
			return false;
		cfg->qi = (int)v;
		return true;
	}
	if (word_eq(key, "hw.dmar.timeout_us")) {
		if (!parse_u64(val, &v) || v == 0 || v > 60000000ull)
			return false;
		cfg->timeout_ns = v * 1000ull;
		return true;
	}
	if (word_eq(key, "hw.dmar.fault_log_size")) {
		if (!parse_u64(val, &v) || v == 0 || v > 65536)
			return false;
		cfg->fault_log_size = (unsigned)v;
		return true;
	}
	if (word_eq(key, "hw.dmar.strict"))
		return parse_bool(val, &cfg->strict);
	if (word_eq(key, "hw.dmar.defer_max")) {
		if (!parse_u64(val, &v) || v == 0 || v > 65536)
			return false;
		cfg->defer_max = (unsigned)v;
		return true;
	}
	if (word_eq(key, "hw.dmar.cpu_windows")) {
		if (!parse_u64(val, &v) || v > 64)
			return false;
		cfg->cpu_windows = (unsigned)v;
		return true;
	}
	if (word_eq(key, "hw.dmar.defer_us")) {
		if (!parse_u64(val, &v) || v == 0 || v > 10000000ull)
			return false;
		cfg->defer_ns = v * 1000ull;
		return true;
	}
	if (word_eq(key, "hw.dmar.ir"))
		return parse_bool(val, &cfg->ir);
	if (word_eq(key, "hw.dmar.ir_compat"))
		return parse_bool(val, &cfg->ir_compat);
	if (word_eq(key, "hw.dmar.x2apic"))
		return parse_bool(val, &cfg->x2apic);
	if (word_eq(key, "hw.dmar.ir_entries")) {
		/* A power of two: IRTA.S encodes 2^(S+1) entries, at most 65536. */
		if (!parse_u64(val, &v) || v < 16 || v > 65536 || (v & (v - 1)) != 0)
			return false;
		cfg->ir_entries = (unsigned)v;
		return true;
	}
	if (word_eq(key, "hw.dmar.guard_pages")) {
		if (!parse_u64(val, &v) || v > 1024)
			return false;
		cfg->guard_pages = (unsigned)v;
		return true;
	}
	if (word_prefix(key, "hw.busdma.")) {
		/* hw.busdma.pciD:B:S:F.bounce */
		struct word rest = { key.s + 10, key.n - 10 };
		size_t dot = 0;
		while (dot < rest.n && rest.s[dot] != '.')
			dot++;
		struct word dev = { rest.s, dot };
		struct word leaf = { rest.s + dot, rest.n - dot };
		struct dmar_pci_addr a;
		bool on;
		if (!word_eq(leaf, ".bounce") || !parse_pci(dev, &a)) {
			*why = "unknown key";
			return false;
		}
		if (!parse_bool(val, &on))
			return false;
		unsigned i = bounce_index(cfg, a);
		if (i < cfg->nbounce) {
			if (!on)
				cfg->bounce[i] = cfg->bounce[--cfg->nbounce];
			return true;
		}
		if (!on)
			return true;
		if (cfg->nbounce == DMAR_CONFIG_MAX_BOUNCE) {
			*why = "too many bounce devices";
			return false;
		}
		cfg->bounce[cfg->nbounce++] = a;
		return true;
	}
	*why = "unknown key";
	return false;
}

int dmar_config_parse(struct dmar_config *cfg, const char *str, dmar_config_warn_fn warn,
		      void *warn_ctx)
{
	int warnings = 0;
	const char *p = str;
	if (!p)
		return 0;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		struct word w = { start, (size_t)(p - start) };
		struct word key = w, val = { w.s + w.n, 0 };
		for (size_t i = 0; i < w.n; i++) {
			if (w.s[i] == '=') {
				key.n = i;
				val.s = w.s + i + 1;
				val.n = w.n - i - 1;
				break;
			}
		}
		if (!word_prefix(key, "hw.dmar.") && !word_prefix(key, "hw.busdma."))
			continue;
		const char *why;
		if (key.n == w.n) {
			warn_word(warn, warn_ctx, "missing value", key, val);
			warnings++;
			continue;
		}
		if (!apply(cfg, key, val, &why)) {
			warn_word(warn, warn_ctx, why, key, val);
			warnings++;
		}
	}
	return warnings;
}
