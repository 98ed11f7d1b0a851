/* A small printf for the library's log lines and fault text (the library has no libc). */
#include "util.h"

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_rep(struct out *o, char c, int n)
{
	while (n-- > 0)
		put(o, c);
}

enum { F_LEFT = 1, F_ZERO = 2, F_SPACE = 4, F_PLUS = 8, F_ALT = 16 };

static void put_num(struct out *o, uint64_t v, int neg, unsigned base, int upper, int flags,
		    int width, int prec)
{
	char tmp[24];
	int n = 0;
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	if (v == 0 && prec != 0)
		tmp[n++] = '0';
	while (v) {
		tmp[n++] = digits[v % base];
		v /= base;
	}
	char sign = neg ? '-' : (flags & F_PLUS) ? '+' : (flags & F_SPACE) ? ' ' : 0;
	const char *prefix = "";
	if ((flags & F_ALT) && base == 16 && n && !(n == 1 && tmp[0] == '0'))
		prefix = upper ? "0X" : "0x";
	else if ((flags & F_ALT) && base == 8 && (n == 0 || tmp[n - 1] != '0'))
		prefix = "0";
	int plen = (int)dmar_strlen(prefix);
	int zeros = prec > n ? prec - n : 0;
	int total = n + zeros + plen + (sign ? 1 : 0);
	if ((flags & F_ZERO) && !(flags & F_LEFT) && prec < 0 && width > total) {
		zeros += width - total;
		total = width;
	}
	if (!(flags & F_LEFT))
		put_rep(o, ' ', width - total);
	if (sign)
		put(o, sign);
	for (int i = 0; i < plen; i++)
		put(o, prefix[i]);
	put_rep(o, '0', zeros);
	while (n)
		put(o, tmp[--n]);
	if (flags & F_LEFT)
		put_rep(o, ' ', width - total);
}

int dmar__vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	va_list args;
	va_copy(args, ap);
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			put(&o, *p);
			continue;
		}
		p++;
		int flags = 0;
		for (;; p++) {
			if (*p == '-') flags |= F_LEFT;
			else if (*p == '0') flags |= F_ZERO;
			else if (*p == ' ') flags |= F_SPACE;
			else if (*p == '+') flags |= F_PLUS;
			else if (*p == '#') flags |= F_ALT;
			else break;
		}
		int width = 0;
		if (*p == '*') {
			width = va_arg(args, int);
			if (width < 0) {
				flags |= F_LEFT;
				width = -width;
			}
			p++;
		} else {
			while (*p >= '0' && *p <= '9')
				width = width * 10 + (*p++ - '0');
		}
		int prec = -1;
		if (*p == '.') {
			p++;
			prec = 0;
			if (*p == '*') {
				prec = va_arg(args, int);
				p++;
			} else {
				while (*p >= '0' && *p <= '9')
					prec = prec * 10 + (*p++ - '0');
			}
		}
		int lng = 0; /* 0 int, 1 long, 2 long long, 3 size_t/ptrdiff/intmax, -1 short, -2 char */
		if (*p == 'h') {
			lng = -1;
			if (*++p == 'h') { lng = -2; p++; }
		} else if (*p == 'l') {
			lng = 1;
			if (*++p == 'l') { lng = 2; p++; }
		} else if (*p == 'z' || *p == 't' || *p == 'j') {
			lng = *p == 'j' ? 2 : 3;
			p++;
		}
		char c = *p;
		if (c == 0)
			break;
		switch (c) {
		case 'd':
		case 'i': {
			int64_t v;
			if (lng == 2) v = va_arg(args, long long);
			else if (lng == 1) v = va_arg(args, long);
			else if (lng == 3) v = (int64_t)va_arg(args, ptrdiff_t);
			else v = va_arg(args, int);
			if (lng == -1) v = (short)v;
			if (lng == -2) v = (signed char)v;
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			put_num(&o, mag, v < 0, 10, 0, flags, width, prec);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uint64_t v;
			if (lng == 2) v = va_arg(args, unsigned long long);
			else if (lng == 1) v = va_arg(args, unsigned long);
			else if (lng == 3) v = va_arg(args, size_t);
			else v = va_arg(args, unsigned int);
			if (lng == -1) v = (unsigned short)v;
			if (lng == -2) v = (unsigned char)v;
			unsigned base = c == 'u' ? 10 : c == 'o' ? 8 : 16;
			put_num(&o, v, 0, base, c == 'X', flags & ~(F_PLUS | F_SPACE), width, prec);
			break;
		}
		case 'p':
			put_num(&o, (uint64_t)(uintptr_t)va_arg(args, void *), 0, 16, 0, F_ALT, width, -1);
			break;
		case 'c': {
			char ch = (char)va_arg(args, int);
			if (!(flags & F_LEFT)) put_rep(&o, ' ', width - 1);
			put(&o, ch);
			if (flags & F_LEFT) put_rep(&o, ' ', width - 1);
			break;
		}
		case 's': {
			const char *s = va_arg(args, const char *);
			if (!s) s = "(null)";
			int n = 0;
			while (s[n] && (prec < 0 || n < prec)) n++;
			if (!(flags & F_LEFT)) put_rep(&o, ' ', width - n);
			for (int i = 0; i < n; i++) put(&o, s[i]);
			if (flags & F_LEFT) put_rep(&o, ' ', width - n);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		default:
			put(&o, '%');
			put(&o, c);
			break;
		}
	}
	va_end(args);
	if (size)
		buf[o.len < size ? o.len : size - 1] = 0;
	return (int)o.len;
}

int dmar__snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = dmar__vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
