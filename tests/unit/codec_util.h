/*
 * Helpers shared by the protocol tests: hex vectors, and the checks every
 * decoder must pass (decode -> encode byte identity; no prefix decodes).
 */
#ifndef KSTRETCH_TEST_CODEC_UTIL_H
#define KSTRETCH_TEST_CODEC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

/* Hex text (whitespace ignored) to bytes; returns the byte count. Aborts on bad hex. */
size_t unhex(const char *hex, uint8_t *out, size_t cap);

/*
 * Decodes a frame body (header + body, no size prefix) and checks it decodes
 * fully into a body of the API's schema, then re-encodes to identical bytes.
 * For responses, api/version say what the request was. Returns the decoded
 * message (valid until the arena is freed).
 */
struct kp_message check_roundtrip(struct kp_arena *a, bool request, int16_t api, int16_t version, const uint8_t *body,
                                  size_t len);

/* Every strict prefix of a valid frame body must fail to decode, and never read past its end. */
void check_truncations(bool request, int16_t api, int16_t version, const uint8_t *body, size_t len);

/* Overwrites every 1/2/4-byte window with hostile lengths (-2, 0x7fffffff, 0xff..): no crash. */
void check_corruptions(bool request, int16_t api, int16_t version, const uint8_t *body, size_t len);

/* Both of the above: what every decoder must survive. */
void check_malformations(bool request, int16_t api, int16_t version, const uint8_t *body, size_t len);

/* Item i of an array of structs (asserts it exists). */
struct kp_struct *item(const struct kp_value *v, int32_t i);

/* Whether a span holds exactly text. */
bool span_is(struct kp_span s, const char *text);

/* The sub-struct schema of field idx. */
const struct kp_schema *sub(const struct kp_schema *s, int idx);

/* The value of a field by Kafka name (asserts the field exists). */
const struct kp_value *field(const struct kp_struct *st, const char *name);

#endif
