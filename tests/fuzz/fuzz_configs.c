/*
 * libFuzzer target: regional mode's broker-id rewrite of the config APIs
 * (protocol/configs.c). Input:
 *
 *   byte 0  message (mod 3): DescribeConfigs, AlterConfigs, IncrementalAlterConfigs
 *   byte 1  version (mod the versions decoded)
 *   byte 2  the real broker id the named node stands for (0-255)
 *   bytes 3-4  length of the request body (big-endian); then that body, then
 *           a response body (without headers)
 *
 * Properties: a request that decodes always routes (nodes 1, 2 and 3); every
 * resource is forwarded or refused, never both; what is forwarded names at
 * most one node, and after the rename encodes and decodes again naming only
 * the real id. The answer made without a broker holds exactly the refused
 * resources; the response body of the input, when it decodes, is restored and
 * virtualized without a crash, and the result encodes and decodes again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "configs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int16_t apis[] = {32, 33, 44};
static const int32_t nodes[] = {1, 2, 3};

/* Encodes st at ver and decodes it again with schema s (it must: it is our own encoding). */
static struct kp_struct *reread(struct kp_arena *a, const struct kp_struct *st, const struct kp_schema *s, int16_t ver,
                                bool flexible)
{
	struct kp_writer w;
	struct kp_cursor c;
	size_t len = 0;
	kp_writer_init(&w);
	kp_encode(&w, st, ver, flexible, -1);
	uint8_t *flat = kp_writer_flatten(&w, &len);
	kp_writer_free(&w);
	if (!flat)
		abort();
	uint8_t *bytes = kp_arena_alloc(a, len + 1);
	if (!bytes)
		abort();
	memcpy(bytes, flat, len);
	free(flat);
	kp_cursor_init(&c, bytes, len);
	struct kp_struct *back = kp_decode(a, &c, s, ver, flexible, -1);
	if (!back || kp_cursor_left(&c))
		abort();
	return back;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	int16_t api = apis[data[0] % 3];
	const struct kp_api *info = kp_api_get(api);
	int16_t ver = (int16_t)(info->decode_min + data[1] % (info->decode_max - info->decode_min + 1));
	bool flexible = kp_api_flexible(info, ver);
	int32_t real = data[2];
	size_t qlen = (size_t)data[3] << 8 | data[4];
	const uint8_t *q = data + 5, *resp_bytes = q + qlen;
	if (qlen > size - 5)
		return 0;
	size_t rlen = size - 5 - qlen;
	struct kp_arena a;
	kp_arena_init(&a, 64 * size + (1 << 20));
	struct kp_cursor c;
	kp_cursor_init(&c, q, qlen);
	struct kp_struct *req = kp_decode(&a, &c, kp_configs_request_schema(api), ver, flexible, -1);
	if (!req)
		goto out;
	struct kp_configs_route r;
	if (!kp_configs_route(&a, api, req, nodes, 3, &r))
		abort();
	int32_t refused = 0;
	for (int32_t i = 0; i < r.cnt; i++)
		refused += r.refused[i] != 0;
	if (refused + r.forwarded != r.cnt || (r.node >= 0 && (r.node < 1 || r.node > 3)))
		abort();
	if (!kp_configs_rename(&a, req, real))
		abort();
	struct kp_struct *sent = reread(&a, req, kp_configs_request_schema(api), ver, flexible);
	const struct kp_list *res = &sent->v[KP_CONFIGS_REQ_RESOURCES].a;
	for (int32_t i = 0; i < res->cnt; i++) {
		const struct kp_struct *x = res->items[i].st;
		int32_t id;
		struct kp_span name = x->v[KP_CONFIGS_RES_NAME].s;
		if (kp_configs_names_broker(x->v[KP_CONFIGS_RES_TYPE].i) && name.len > 0 &&
		    (!kp_configs_parse_id(name, &id) || id != real))
			abort(); /* a broker resource forwarded under another name than the real id */
	}
	struct kp_struct *local = kp_configs_restore(&a, api, ver, NULL, &r, real);
	if (!local)
		abort();
	if (r.forwarded == 0 && local->v[KP_CONFIGS_RESP_RESULTS].a.cnt != refused)
		abort();
	(void)reread(&a, local, kp_configs_response_schema(api), ver, flexible);
	kp_cursor_init(&c, resp_bytes, rlen);
	struct kp_struct *resp = kp_decode(&a, &c, kp_configs_response_schema(api), ver, flexible, -1);
	if (resp) {
		struct kp_struct *out = kp_configs_restore(&a, api, ver, resp, &r, real);
		if (!out || kp_configs_virtualize(&a, out, r.node >= 0 ? r.node : 1, "eu") < 0)
			abort();
		(void)reread(&a, out, kp_configs_response_schema(api), ver, flexible);
	}
out:
	kp_arena_free(&a);
	return 0;
}
