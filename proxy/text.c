/* text: checks and escapes for names that come from the network. */
#include "text.h"

#include <string.h>

size_t kx_utf8_char(const uint8_t *s, size_t n)
{
	if (n == 0)
		return 0;
	uint8_t c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* nothing past U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

bool kx_text_clean(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = kx_utf8_char(s + i, n - i);
		if (k == 0 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7f)))
			return false;
		i += k;
	}
	return true;
}

bool kx_name_copy(char *dst, size_t cap, const uint8_t *s, int32_t len)
{
	dst[0] = '\0';
	if (len <= 0)
		return len == 0 || len == -1;
	if ((size_t)len >= cap || !kx_text_clean(s, (size_t)len))
		return false;
	memcpy(dst, s, (size_t)len);
	dst[len] = '\0';
	return true;
}

/* Writes s, each well-formed character through put(), U+FFFD for a bad byte. */
static void kx_text_write(FILE *out, const char *s, void (*put)(FILE *, const uint8_t *, size_t))
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = kx_utf8_char(p + i, n - i);
		if (k == 0) {
			fputs("\xef\xbf\xbd", out);
			i++;
		} else {
			put(out, p + i, k);
			i += k;
		}
	}
}

static void kx_json_char(FILE *out, const uint8_t *c, size_t k)
{
	if (k == 1 && (c[0] == '"' || c[0] == '\\'))
		fprintf(out, "\\%c", c[0]);
	else if (k == 1 && c[0] < 0x20)
		fprintf(out, "\\u%04x", c[0]);
	else
		fwrite(c, 1, k, out);
}

static void kx_prom_char(FILE *out, const uint8_t *c, size_t k)
{
	if (k == 1 && (c[0] == '"' || c[0] == '\\'))
		fprintf(out, "\\%c", c[0]);
	else if (k == 1 && c[0] == '\n')
		fputs("\\n", out);
	else
		fwrite(c, 1, k, out);
}

void kx_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	kx_text_write(out, s, kx_json_char);
	fputc('"', out);
}

void kx_prom_label(FILE *out, const char *s)
{
	kx_text_write(out, s, kx_prom_char);
}
