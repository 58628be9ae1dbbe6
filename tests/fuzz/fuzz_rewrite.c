/*
 * libFuzzer target: the response rewrite (proxy/rewrite.c) on any bytes, for
 * every API it rewrites, with the fixed cluster of fuzz_fixture.h. Input:
 * byte 0 picks the API (low bits) and whether the client is placed (bit 7:
 * the rewrite for a client in us-a, with Metadata's topics learned and Fetch
 * steered, else plain mapped mode); bytes 1-2 are the version of the request
 * answered, byte 3 the partitions of "orders" redirected before (bit n:
 * partition n, so some come back); the rest is a response frame body
 * (header and body, without the size).
 *
 * Properties: no crash, no over-read; after a success the new frame can be
 * written out and merged into the topology; and when the input decodes as
 * that response, the output decodes too.
 */
#include <stdint.h>
#include <stdlib.h>

#include "api.h"
#include "fuzz_fixture.h"
#include "message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int16_t fuzz_apis[] = {KP_API_METADATA, KP_API_FIND_COORDINATOR, KP_API_DESCRIBE_CLUSTER,
                                    KP_API_PRODUCE,  KP_API_FETCH,            KP_API_API_VERSIONS};

/* Notes redirects of the partitions in mask, at 0 ms, keyed by name and by id. */
static void fuzz_redirected(struct fuzz_fixture *f, uint8_t mask)
{
	for (int32_t p = 0; p < 8; p++) {
		if (!(mask >> p & 1))
			continue;
		if (!kr_steer_note_redirect(&f->steer, kr_steer_key("orders", 6, p), 0, 30000) ||
		    !kr_steer_note_redirect(&f->steer, kr_steer_key(fuzz_topic_id, 16, p), 0, 30000))
			abort();
	}
}

static bool fuzz_decodes(int16_t api, int16_t version, const uint8_t *body, size_t len)
{
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	kp_arena_init(&a, 64 * len + (1 << 20));
	kp_cursor_init(&c, body, len);
	bool ok = kp_message_decode(&a, &c, false, api, version, &m) && m.body;
	kp_arena_free(&a);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_fixture f;
	if (size < 4)
		return 0;
	int16_t api = fuzz_apis[(data[0] & 0x7f) % (sizeof(fuzz_apis) / sizeof(fuzz_apis[0]))];
	int16_t version = (int16_t)(data[1] << 8 | data[2]);
	const uint8_t *body = data + 4;
	size_t len = size - 4;

	fuzz_fixture_reset(&f);
	fuzz_redirected(&f, data[3]);
	struct kx_client_view *v = data[0] & 0x80 ? &f.view : NULL;
	if (!kx_rewrite_response_for(&f.rw, &f.cfg, v, api, version, body, len))
		return 0;
	size_t n = 0;
	uint8_t *out = kp_writer_flatten(&f.rw.out, &n);
	if (!out && n)
		abort();
	if (fuzz_decodes(api, version, body, len) && !fuzz_decodes(api, version, out, n))
		__builtin_trap(); /* a response the codec reads was rewritten into one it does not */
	free(out);
	kx_rewrite_merge_topology(&f.rw, &f.cfg);
	return 0;
}
