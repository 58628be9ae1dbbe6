/*
 * Names from the network (a broker's host and rack): what kstretch keeps,
 * and how it prints them into JSON and Prometheus text, which must be UTF-8.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static size_t char_len(const char *s)
{
	return kx_utf8_char((const uint8_t *)s, strlen(s));
}

Test(text, utf8_characters_well_formed_or_not)
{
	cr_assert_eq(char_len("a"), 1);
	cr_assert_eq(char_len("\xc3\xa9"), 2);         /* é */
	cr_assert_eq(char_len("\xe2\x82\xac"), 3);     /* € */
	cr_assert_eq(char_len("\xf0\x9f\x98\x80"), 4); /* U+1F600 */
	cr_assert_eq(char_len("\xff"), 0);
	cr_assert_eq(char_len("\x80"), 0, "a lone continuation byte");
	cr_assert_eq(char_len("\xc0\xaf"), 0, "overlong /");
	cr_assert_eq(char_len("\xe0\x80\xaf"), 0, "overlong, 3 bytes");
	cr_assert_eq(char_len("\xed\xa0\x80"), 0, "a surrogate");
	cr_assert_eq(char_len("\xf4\x90\x80\x80"), 0, "past U+10FFFF");
	cr_assert_eq(char_len("\xe2\x82"), 0, "cut short");
	cr_assert_eq(char_len("\xc3("), 0, "continuation missing");
}

Test(text, names_are_kept_only_when_clean_and_they_fit)
{
	char dst[8];
	cr_assert(kx_name_copy(dst, sizeof(dst), (const uint8_t *)"us-a", 4));
	cr_assert_str_eq(dst, "us-a");
	cr_assert(kx_name_copy(dst, sizeof(dst), (const uint8_t *)"z\xc3\xbcrich", 7));
	cr_assert_str_eq(dst, "z\xc3\xbcrich");
	cr_assert(kx_name_copy(dst, sizeof(dst), NULL, -1), "null: no name");
	cr_assert_str_eq(dst, "");
	cr_assert(kx_name_copy(dst, sizeof(dst), (const uint8_t *)"", 0));
	cr_assert_str_eq(dst, "");

	const char *bad[] = {"rack-\xff", "a\nb", "a\tb", "del\x7f", "nul\0x"};
	const int32_t len[] = {6, 3, 3, 4, 5};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(dst, "junk", 5);
		cr_assert_not(kx_name_copy(dst, sizeof(dst), (const uint8_t *)bad[i], len[i]), "case %zu", i);
		cr_assert_str_eq(dst, "", "case %zu leaves no name", i);
	}
	cr_assert_not(kx_name_copy(dst, sizeof(dst), (const uint8_t *)"12345678", 8), "does not fit");
	cr_assert_str_eq(dst, "");
	cr_assert_not(kx_name_copy(dst, sizeof(dst), (const uint8_t *)"x", -2), "a length below -1");
}

static char *printed(void (*write)(FILE *, const char *), const char *s)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	cr_assert(f);
	write(f, s);
	fclose(f);
	return buf;
}

Test(text, json_strings_are_escaped_and_always_utf8)
{
	char *s = printed(kx_json_string, "a\"b\\c\n\x01 \xc3\xa9 \xff!");
	cr_assert_str_eq(s, "\"a\\\"b\\\\c\\u000a\\u0001 \xc3\xa9 \xef\xbf\xbd!\"");
	free(s);
}

Test(text, prometheus_labels_are_escaped_and_always_utf8)
{
	char *s = printed(kx_prom_label, "eu\"\\\n\xfe\xc3\xa9");
	cr_assert_str_eq(s, "eu\\\"\\\\\\n\xef\xbf\xbd\xc3\xa9");
	free(s);
}
