/*
 * libFuzzer target: the RackId injection into Fetch requests
 * (kx_fetch_inject_rack, proxy/rewrite.c). Input: byte 0 picks the client's
 * rack (none, short, or as long as a rack name may be); the rest is a
 * request frame body (header and body, without the size).
 *
 * Properties: no crash, no over-read; a request the codec reads as Fetch
 * v11+ with an empty RackId gets the rack, and the new request decodes with
 * RackId = the rack; every other request is left alone or refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz_fixture.h"
#include "message.h"
#include "messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The request's RackId when it decodes as Fetch v11+ (len -2: it does not). */
static struct kp_span fuzz_rack_id(struct kp_arena *a, const uint8_t *body, size_t len)
{
	struct kp_cursor c;
	struct kp_message m;
	kp_cursor_init(&c, body, len);
	if (!kp_message_decode(a, &c, true, 0, 0, &m) || !m.body || m.api_key != KP_API_FETCH || m.api_version < 11)
		return (struct kp_span){NULL, -2};
	return m.body->v[KP_FETCH_REQ_RACK_ID].s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_fixture f;
	static char long_rack[KX_NAME_MAX];
	if (size < 1)
		return 0;
	if (!long_rack[0])
		memset(long_rack, 'r', sizeof(long_rack) - 1);
	const char *racks[] = {"", "us-a", long_rack};
	const char *rack = racks[data[0] % 3];
	const uint8_t *body = data + 1;
	size_t len = size - 1;

	fuzz_fixture_reset(&f);
	struct kp_arena a;
	kp_arena_init(&a, 64 * len + (1 << 20));
	struct kp_span before = fuzz_rack_id(&a, body, len);
	enum kx_inject_result r = kx_fetch_inject_rack(&f.rw, body, len, rack);
	if (before.len == 0 && rack[0] && r != KX_INJECT_DONE)
		__builtin_trap(); /* a Fetch request with an empty RackId kept it */
	if (r == KX_INJECT_DONE) {
		size_t n = 0;
		uint8_t *out = kp_writer_flatten(&f.rw.out, &n);
		if (!out)
			abort();
		struct kp_span after = fuzz_rack_id(&a, out, n);
		if (before.len == 0 &&
		    (after.len != (int32_t)strlen(rack) || memcmp(after.ptr, rack, (size_t)after.len) != 0))
			__builtin_trap(); /* the new request does not carry the rack */
		free(out);
	}
	kp_arena_free(&a);
	return 0;
}
