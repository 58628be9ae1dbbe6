/*
 * The codec as a whole: every decoded API at every version it decodes
 * survives encode -> decode -> encode byte for byte, with random values in
 * every field (tagged and unknown tagged fields included), and no prefix or
 * hostile overwrite of those messages crashes or over-reads.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "message.h"

/* A small deterministic generator (xorshift), so failures reproduce. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct kp_span rnd_bytes(struct kp_arena *a, int maxlen, bool nullable)
{
	if (nullable && rnd() % 4 == 0)
		return (struct kp_span){NULL, -1};
	int32_t n = (int32_t)(rnd() % (uint64_t)(maxlen + 1));
	uint8_t *p = kp_arena_alloc(a, (size_t)n + 1);
	for (int32_t i = 0; i < n; i++)
		p[i] = (uint8_t)('a' + rnd() % 26);
	return (struct kp_span){p, n};
}

static struct kp_struct *rnd_struct(struct kp_arena *a, const struct kp_schema *s, int16_t ver, bool flexible,
                                    int depth);

static void rnd_value(struct kp_arena *a, const struct kp_field *f, uint8_t type, struct kp_value *v, int16_t ver,
                      bool flexible, bool nullable, int depth)
{
	v->present = true;
	switch (type) {
	case KP_BOOL: v->i = (int64_t)(rnd() & 1); break;
	case KP_INT8: v->i = (int8_t)rnd(); break;
	case KP_INT16: v->i = (int16_t)rnd(); break;
	case KP_UINT16: v->i = (uint16_t)rnd(); break;
	case KP_INT32: v->i = (int32_t)rnd(); break;
	case KP_UINT32: v->i = (uint32_t)rnd(); break;
	case KP_INT64: v->i = (int64_t)rnd(); break;
	case KP_FLOAT64: v->f = (double)(int32_t)rnd() / 7.0; break;
	case KP_UUID: {
		uint8_t *p = kp_arena_alloc(a, 16);
		for (int i = 0; i < 16; i++)
			p[i] = (uint8_t)rnd();
		v->s = (struct kp_span){p, 16};
		break;
	}
	case KP_STRING: v->s = rnd_bytes(a, 12, nullable); break;
	case KP_BYTES:
	case KP_RECORDS: v->s = rnd_bytes(a, 40, nullable); break;
	case KP_STRUCT:
		v->st = nullable && rnd() % 4 == 0 ? NULL : rnd_struct(a, f->sub, ver, flexible, depth + 1);
		break;
	case KP_ARRAY:
		if (nullable && rnd() % 4 == 0) {
			v->a = (struct kp_list){NULL, -1};
			break;
		}
		v->a.cnt = depth > 3 ? 0 : (int32_t)(rnd() % 4);
		v->a.items = kp_arena_alloc(a, (size_t)(v->a.cnt + 1) * sizeof(struct kp_value));
		for (int32_t i = 0; i < v->a.cnt; i++)
			rnd_value(a, f, f->elem, &v->a.items[i], ver, flexible, false, depth);
		break;
	}
}

static struct kp_struct *rnd_struct(struct kp_arena *a, const struct kp_schema *s, int16_t ver, bool flexible,
                                    int depth)
{
	struct kp_struct *st = kp_struct_new(a, s, ver);
	for (int i = 0; i < s->nfields; i++) {
		const struct kp_field *f = &s->fields[i];
		if (!kp_field_in_version(f, ver, flexible))
			continue;
		if (f->tag >= 0 && rnd() % 2)
			continue; /* tagged and absent */
		rnd_value(a, f, f->type, &st->v[i], ver, flexible, f->null_since >= 0 && ver >= f->null_since, depth);
	}
	if (flexible && rnd() % 3 == 0) {
		/* Unknown tags from a newer peer, above any tag we know. */
		st->unknown_cnt = 1 + (uint32_t)(rnd() % 2);
		st->unknown = kp_arena_alloc(a, st->unknown_cnt * sizeof(*st->unknown));
		for (uint32_t t = 0; t < st->unknown_cnt; t++)
			st->unknown[t] = (struct kp_raw_tag){100 + 7 * t, rnd_bytes(a, 6, false)};
	}
	return st;
}

/* Encodes a random message of api/version; returns a malloc'd frame body. */
static uint8_t *rnd_message(const struct kp_api *api, int16_t ver, bool request, size_t *len)
{
	struct kp_arena a;
	struct kp_writer w;
	struct kp_message m = {.request = request, .api_key = api->key, .api_version = ver, .api = api};
	kp_arena_init(&a, 0);
	kp_writer_init(&w);
	m.flexible = kp_api_flexible(api, ver);
	if (request) {
		m.req = (struct kp_request_header){.api_key = api->key,
		                                   .api_version = ver,
		                                   .correlation_id = (int32_t)rnd(),
		                                   .client_id = {(const uint8_t *)"test", 4},
		                                   .header_version = kp_request_header_version(api->key, ver)};
	} else {
		m.resp = (struct kp_response_header){.correlation_id = (int32_t)rnd(),
		                                     .header_version = kp_response_header_version(api->key, ver)};
	}
	m.body = rnd_struct(&a, request ? api->request : api->response, ver, m.flexible, 0);
	kp_message_encode(&w, &m);
	uint8_t *out = kp_writer_flatten(&w, len);
	cr_assert_not_null(out);
	kp_writer_free(&w);
	kp_arena_free(&a);
	return out;
}

/* Calls fn for every decoded (api, version, direction). */
static int for_each_decoded(void (*fn)(const struct kp_api *api, int16_t ver, bool request))
{
	int n = 0;
	for (int16_t key = 0; key <= kp_api_max_key(); key++) {
		const struct kp_api *api = kp_api_get(key);
		for (int dir = 0; api && dir < 2; dir++) {
			for (int16_t v = api->decode_min; v <= api->decode_max; v++) {
				if (kp_api_decodes(api, v, dir == 0)) {
					fn(api, v, dir == 0);
					n++;
				}
			}
		}
	}
	return n;
}

static void roundtrip_random(const struct kp_api *api, int16_t ver, bool request)
{
	for (int i = 0; i < 50; i++) {
		size_t len;
		struct kp_arena a;
		uint8_t *body = rnd_message(api, ver, request, &len);
		kp_arena_init(&a, 0);
		check_roundtrip(&a, request, api->key, ver, body, len);
		kp_arena_free(&a);
		free(body);
	}
}

Test(codec, every_decoded_api_and_version_round_trips_random_messages)
{
	rng_state = 0x9e3779b97f4a7c15ULL;
	int combos = for_each_decoded(roundtrip_random);
	cr_assert_geq(combos, 10, "only %d decoded (api, version, direction) combinations", combos);
}

static void truncate_and_corrupt(const struct kp_api *api, int16_t ver, bool request)
{
	size_t len;
	uint8_t *body = rnd_message(api, ver, request, &len);
	check_malformations(request, api->key, ver, body, len);
	free(body);
}

Test(codec, no_prefix_or_hostile_overwrite_of_any_decoded_message_crashes, .timeout = 120)
{
	rng_state = 0x2545f4914f6cdd1dULL;
	for_each_decoded(truncate_and_corrupt);
}

Test(codec, the_api_table_covers_every_key_and_header_versions_follow_it)
{
	cr_assert_geq(kp_api_max_key(), 94, "Kafka 4.4.0 defines keys up to 94");
	for (int16_t key = 0; key <= kp_api_max_key(); key++) {
		const struct kp_api *api = kp_api_get(key);
		cr_assert_not_null(api, "API key %d missing", key);
		cr_assert_eq(api->key, key);
		cr_assert_leq(api->min_version, api->max_version, "%s", api->name);
		if (api->request)
			cr_assert(api->decode_min >= api->min_version && api->decode_max <= api->max_version, "%s",
			          api->name);
	}
	cr_assert_null(kp_api_get(-1));
	cr_assert_null(kp_api_get(kp_api_max_key() + 1));
	cr_assert_eq(kp_request_header_version(KP_API_METADATA, 8), 1);
	cr_assert_eq(kp_request_header_version(KP_API_METADATA, 9), 2);
	cr_assert_eq(kp_request_header_version(KP_API_CONTROLLED_SHUTDOWN, 0), 0);
	cr_assert_eq(kp_response_header_version(KP_API_METADATA, 9), 1);
	cr_assert_eq(kp_response_header_version(KP_API_API_VERSIONS, 3), 0);
	cr_assert_eq(kp_request_header_version(KP_API_SASL_HANDSHAKE, 1), 1);
}
