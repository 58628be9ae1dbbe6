/*
 * text: names that come from the network (a broker's host and rack, a
 * client's id) checked before kstretch keeps them or prints them in a
 * document that must be UTF-8 (the admin endpoint's JSON, Prometheus text).
 */
#ifndef KX_TEXT_H
#define KX_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Length (1-4) of the well-formed UTF-8 character at s[0..n), 0 when none is. */
size_t kx_utf8_char(const uint8_t *s, size_t n);

/* Whether s[0..n) is well-formed UTF-8 without control characters. */
bool kx_text_clean(const uint8_t *s, size_t n);

/*
 * Copies a name a peer sent (len < 0: null) into dst when it is clean and
 * fits (len < cap); otherwise dst is "" and the answer false.
 */
bool kx_name_copy(char *dst, size_t cap, const uint8_t *s, int32_t len);

/* Writes s into a JSON string (quotes included): escapes what JSON requires
 * and a byte that is not UTF-8 as U+FFFD. */
void kx_json_string(FILE *out, const char *s);

/* Writes s as a Prometheus label value (no quotes): \\ \" \n escaped, a byte
 * that is not UTF-8 as U+FFFD. */
void kx_prom_label(FILE *out, const char *s);

#endif
