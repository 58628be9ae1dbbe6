/*
 * header: request and response headers, and the frame around them.
 *
 *   frame            := int32 size, then size bytes
 *   request header   := v0: api_key int16, api_version int16, correlation_id int32
 *                       v1: + client_id nullable string (int16 length, even when flexible)
 *                       v2: + tagged fields
 *   response header  := v0: correlation_id int32;  v1: + tagged fields
 *
 * The header version follows from the API and version (api.h). An unknown
 * API key is parsed as header v1: its tagged fields cannot be located, and a
 * proxy passes such requests through by their frame size alone.
 */
#ifndef KP_HEADER_H
#define KP_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cursor.h"
#include "writer.h"

struct kp_request_header {
	int16_t api_key;
	int16_t api_version;
	int32_t correlation_id;
	struct kp_span client_id; /* len -1: null; absent in v0 */
	int header_version;       /* 0, 1 or 2 */
	struct kp_span tags;      /* v2: the raw tagged-field section, kept as is */
	size_t size;              /* bytes of the header in the frame body */
};

struct kp_response_header {
	int32_t correlation_id;
	int header_version;  /* 0 or 1 */
	struct kp_span tags; /* v1: raw tagged-field section */
	size_t size;
};

/* Parses a request header at the start of a frame body (after the size). */
bool kp_request_header_parse(struct kp_cursor *c, struct kp_request_header *h);
void kp_request_header_write(struct kp_writer *w, const struct kp_request_header *h);

/* Parses a response header, whose version the caller knows from its request. */
bool kp_response_header_parse(struct kp_cursor *c, int header_version, struct kp_response_header *h);
void kp_response_header_write(struct kp_writer *w, const struct kp_response_header *h);

/*
 * Overwrites the correlation id in place: of the request header at the start
 * of a frame body (after api_key and api_version), or of the response header
 * (its first field). A proxy that renumbers requests on a shared connection
 * does this to a frame it holds. False when the body is too short to hold it.
 */
bool kp_request_header_set_correlation_id(uint8_t *body, size_t len, int32_t correlation_id);
bool kp_response_header_set_correlation_id(uint8_t *body, size_t len, int32_t correlation_id);

/* Writes the 4-byte size that goes before a frame body of body_len bytes. */
void kp_frame_size_put(uint8_t out[4], size_t body_len);

/* The size a frame's first 4 bytes announce (any value: the caller checks it). */
int32_t kp_frame_size_get(const uint8_t in[4]);

/* The result of looking at the front of a byte stream for a frame. */
enum kp_frame_status {
	KP_FRAME_OK,         /* what was looked for is there: the whole frame for kp_frame_check(), the header
	                        for the peek.h functions (their `whole` says whether the rest is too) */
	KP_FRAME_INCOMPLETE, /* need more bytes (need says how many in all, when known) */
	KP_FRAME_MALFORMED,  /* size < 0 or > max: close the connection */
};

/*
 * Looks at `have` bytes at p: reads the int32 size and checks it against
 * max_frame before anything is allocated. On KP_FRAME_OK or INCOMPLETE with
 * a known size, *frame_size is the body size (without the 4 size bytes).
 */
enum kp_frame_status kp_frame_check(const uint8_t *p, size_t have, int64_t max_frame, int32_t *frame_size);

#endif
