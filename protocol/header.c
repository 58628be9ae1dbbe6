#include "header.h"

#include "api.h"

/* A tagged-field section, skipped and kept raw (headers define no known tags). */
static struct kp_span kp_skip_tags(struct kp_cursor *c)
{
	size_t start = c->pos;
	uint32_t n = kp_read_uvarint(c, "_tagged_fields");
	int64_t last = -1;
	if (kp_cursor_ok(c) && n > kp_cursor_left(c) / 2)
		kp_cursor_fail(c, KP_ERR_BAD_LENGTH, "_tagged_fields");
	for (uint32_t i = 0; i < n && kp_cursor_ok(c); i++) {
		size_t at = c->pos;
		uint32_t tag = kp_read_uvarint(c, "_tag");
		uint32_t size = kp_read_uvarint(c, "_tag_size");
		if (kp_cursor_ok(c) && (int64_t)tag <= last) {
			c->pos = at;
			kp_cursor_fail(c, KP_ERR_BAD_TAGS, "_tag");
		}
		last = tag;
		kp_read_raw(c, size, "_tag_data");
	}
	struct kp_span s = {c->buf + start, (int32_t)(c->pos - start)};
	return s;
}

bool kp_request_header_parse(struct kp_cursor *c, struct kp_request_header *h)
{
	size_t start = c->pos;
	h->api_key = kp_read_i16(c, "request_api_key");
	h->api_version = kp_read_i16(c, "request_api_version");
	h->correlation_id = kp_read_i32(c, "correlation_id");
	h->client_id = (struct kp_span){NULL, -1};
	h->tags = (struct kp_span){NULL, 0};
	if (!kp_cursor_ok(c))
		return false;
	if (h->api_version < 0) {
		c->pos = start + 2;
		return kp_cursor_fail(c, KP_ERR_BAD_VALUE, "request_api_version");
	}
	h->header_version = kp_request_header_version(h->api_key, h->api_version);
	if (h->header_version >= 1)
		h->client_id = kp_read_string(c, false, true, "client_id");
	if (h->header_version >= 2)
		h->tags = kp_skip_tags(c);
	h->size = c->pos - start;
	return kp_cursor_ok(c);
}

void kp_request_header_write(struct kp_writer *w, const struct kp_request_header *h)
{
	kp_write_i16(w, h->api_key);
	kp_write_i16(w, h->api_version);
	kp_write_i32(w, h->correlation_id);
	if (h->header_version >= 1)
		kp_write_string(w, false, h->client_id);
	if (h->header_version >= 2) {
		if (h->tags.len > 0)
			kp_write_raw(w, h->tags.ptr, (size_t)h->tags.len);
		else
			kp_write_uvarint(w, 0);
	}
}

bool kp_response_header_parse(struct kp_cursor *c, int header_version, struct kp_response_header *h)
{
	size_t start = c->pos;
	h->correlation_id = kp_read_i32(c, "correlation_id");
	h->header_version = header_version;
	h->tags = (struct kp_span){NULL, 0};
	if (header_version >= 1)
		h->tags = kp_skip_tags(c);
	h->size = c->pos - start;
	return kp_cursor_ok(c);
}

void kp_response_header_write(struct kp_writer *w, const struct kp_response_header *h)
{
	kp_write_i32(w, h->correlation_id);
	if (h->header_version >= 1) {
		if (h->tags.len > 0)
			kp_write_raw(w, h->tags.ptr, (size_t)h->tags.len);
		else
			kp_write_uvarint(w, 0);
	}
}

enum kp_frame_status kp_frame_check(const uint8_t *p, size_t have, int64_t max_frame, int32_t *frame_size)
{
	if (have < 4)
		return KP_FRAME_INCOMPLETE;
	int32_t size = kp_frame_size_get(p);
	if (size < 0 || size > max_frame)
		return KP_FRAME_MALFORMED;
	*frame_size = size;
	return have - 4 >= (size_t)size ? KP_FRAME_OK : KP_FRAME_INCOMPLETE;
}

void kp_frame_size_put(uint8_t out[4], size_t body_len)
{
	uint32_t n = (uint32_t)body_len;
	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
}

int32_t kp_frame_size_get(const uint8_t in[4])
{
	return (int32_t)((uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3]);
}

static void kp_put_i32_be(uint8_t *p, int32_t v)
{
	uint32_t u = (uint32_t)v;
	p[0] = (uint8_t)(u >> 24);
	p[1] = (uint8_t)(u >> 16);
	p[2] = (uint8_t)(u >> 8);
	p[3] = (uint8_t)u;
}

bool kp_request_header_set_correlation_id(uint8_t *body, size_t len, int32_t correlation_id)
{
	if (len < 8)
		return false;
	kp_put_i32_be(body + 4, correlation_id); /* after api_key and api_version */
	return true;
}

bool kp_response_header_set_correlation_id(uint8_t *body, size_t len, int32_t correlation_id)
{
	if (len < 4)
		return false;
	kp_put_i32_be(body, correlation_id);
	return true;
}
