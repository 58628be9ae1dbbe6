/*
 * libFuzzer target: the regional virtual cluster's Metadata answer
 * (proxy/virtual_metadata.c) built from any bytes. Input: byte 0 picks the
 * version (mod 14), byte 1 the region's size (1..64 nodes, low 6 bits) and
 * whether its nodes have a region for rack (bit 6), byte 2 whether the caller
 * asks for REBOOTSTRAP_REQUIRED (bit 0); the rest is a Metadata response body
 * (after the response header) as a real broker might send it.
 *
 * Properties, when the bytes decode as that response: the rebuild succeeds
 * (its arena has room for what the decode took and the node set's lists);
 * its encoding decodes at the same version; every node id in it (brokers,
 * controller, leaders, replicas, ISR, offline replicas) is one of the
 * region's, or a leader the real answer had as none (< 0); and a second
 * kstretch node holding the same set, added in the other order, gives the same
 * bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "messages.h"
#include "virtual_metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_nodes(struct kr_regional_nodes *set, int n, bool reversed)
{
	kr_regional_nodes_init(set);
	for (int k = 0; k < n; k++) {
		int i = reversed ? n - 1 - k : k;
		char host[32];
		int len = snprintf(host, sizeof(host), "kst-%d.region.internal", i);
		if (!kr_regional_nodes_add(set, 100 + i * 13, host, (size_t)len, (uint16_t)(9092 + i), NULL, 0))
			abort();
	}
	if (!kr_regional_nodes_finish(set, NULL, 0))
		abort();
}

static bool fuzz_is_node(const struct kr_regional_nodes *set, int64_t id)
{
	return id >= INT32_MIN && id <= INT32_MAX && kr_regional_nodes_index(set, (int32_t)id) >= 0;
}

static void fuzz_check_list(const struct kr_regional_nodes *set, const struct kp_value *v)
{
	for (int32_t i = 0; i < v->a.cnt; i++)
		if (!fuzz_is_node(set, v->a.items[i].i))
			__builtin_trap(); /* a node the region does not have */
}

/* Every node id in the decoded virtual answer st (of real) is the region's. */
static void fuzz_check(const struct kr_regional_nodes *set, const struct kp_struct *st, const struct kp_struct *real)
{
	const struct kp_list *brokers = &st->v[KP_METADATA_RESPONSE_BROKERS].a;
	if (brokers->cnt != (int32_t)set->cnt)
		__builtin_trap();
	for (int32_t i = 0; i < brokers->cnt; i++)
		if (brokers->items[i].st->v[KP_METADATA_BROKER_NODE_ID].i != set->ids[i])
			__builtin_trap();
	if (st->v[KP_METADATA_RESPONSE_CONTROLLER_ID].present &&
	    st->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i != set->ids[0])
		__builtin_trap();
	const struct kp_list *topics = &st->v[KP_METADATA_RESPONSE_TOPICS].a;
	const struct kp_list *rtopics = &real->v[KP_METADATA_RESPONSE_TOPICS].a;
	if (topics->cnt != rtopics->cnt)
		__builtin_trap();
	for (int32_t t = 0; t < topics->cnt; t++) {
		const struct kp_list *parts = &topics->items[t].st->v[KP_METADATA_TOPIC_PARTITIONS].a;
		const struct kp_list *rparts = &rtopics->items[t].st->v[KP_METADATA_TOPIC_PARTITIONS].a;
		if (parts->cnt != rparts->cnt)
			__builtin_trap();
		for (int32_t i = 0; i < parts->cnt; i++) {
			const struct kp_struct *p = parts->items[i].st, *rp = rparts->items[i].st;
			int64_t leader = p->v[KP_METADATA_PARTITION_LEADER_ID].i;
			int64_t rleader = rp->v[KP_METADATA_PARTITION_LEADER_ID].i;
			if (rleader < 0 ? leader != rleader : !fuzz_is_node(set, leader))
				__builtin_trap();
			if (p->v[KP_METADATA_PARTITION_ERROR_CODE].i != rp->v[KP_METADATA_PARTITION_ERROR_CODE].i ||
			    p->v[KP_METADATA_PARTITION_LEADER_EPOCH].i != rp->v[KP_METADATA_PARTITION_LEADER_EPOCH].i)
				__builtin_trap();
			fuzz_check_list(set, &p->v[KP_METADATA_PARTITION_REPLICA_NODES]);
			fuzz_check_list(set, &p->v[KP_METADATA_PARTITION_ISR_NODES]);
			if (p->v[KP_METADATA_PARTITION_OFFLINE_REPLICAS].a.cnt > 0)
				__builtin_trap();
		}
	}
}

/* The virtual answer for set, encoded (malloc'd; NULL when the rebuild was refused). */
static uint8_t *fuzz_virtual(const struct kp_struct *real, int16_t version, bool flexible,
                             const struct kx_virtual_cluster *vc, int16_t error_code, size_t cap, size_t *len)
{
	struct kp_arena a;
	struct kp_struct *out;
	kp_arena_init(&a, cap);
	enum kx_vmeta_result r = kx_virtual_metadata(&a, real, version, vc, error_code, &out);
	if (r != KX_VMETA_OK)
		__builtin_trap(); /* a decoded answer and room for it: must succeed */
	struct kp_writer w;
	kp_writer_init(&w);
	kp_encode(&w, out, version, flexible, -1);
	uint8_t *bytes = kp_writer_flatten(&w, len);
	if (!bytes && *len)
		abort();
	kp_writer_free(&w);
	kp_arena_free(&a);
	return bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kr_regional_nodes one, two;
	if (size < 3)
		return 0;
	int16_t version = (int16_t)(data[0] % 14);
	int n = 1 + (data[1] & 0x3f);
	int16_t error_code = data[2] & 1 ? KR_ERR_REBOOTSTRAP_REQUIRED : KX_VMETA_REAL_ERROR;
	bool flexible = kp_api_flexible(kp_api_get(KP_API_METADATA), version);
	const uint8_t *body = data + 3;
	size_t len = size - 3, cap = 64 * len + (1 << 20);
	struct kx_virtual_cluster vc = {.nodes = &one, .region = data[1] & 0x40 ? "eu-west" : NULL};

	struct kp_arena a;
	struct kp_cursor c;
	kp_arena_init(&a, cap);
	kp_cursor_init(&c, body, len);
	struct kp_struct *real = kp_decode(&a, &c, &kp_metadata_response, version, flexible, -1);
	if (!real) {
		kp_arena_free(&a);
		return 0;
	}
	fuzz_nodes(&one, n, false);
	fuzz_nodes(&two, n, true);
	size_t l1 = 0, l2 = 0;
	uint8_t *b1 = fuzz_virtual(real, version, flexible, &vc, error_code, cap + (1 << 20), &l1);
	vc.nodes = &two;
	uint8_t *b2 = fuzz_virtual(real, version, flexible, &vc, error_code, cap + (1 << 20), &l2);
	if (l1 != l2 || (l1 && memcmp(b1, b2, l1) != 0))
		__builtin_trap(); /* two nodes of a region told a client different things */

	struct kp_arena b;
	kp_arena_init(&b, 0);
	kp_cursor_init(&c, b1, l1);
	struct kp_struct *st = kp_decode(&b, &c, &kp_metadata_response, version, flexible, -1);
	if (!st || kp_cursor_left(&c) != 0)
		__builtin_trap(); /* the rebuilt answer does not decode */
	fuzz_check(&one, st, real);
	int64_t top_error = st->v[KP_METADATA_RESPONSE_ERROR_CODE].i;
	if (version >= 13 && error_code != KX_VMETA_REAL_ERROR && top_error != error_code)
		__builtin_trap();
	kp_arena_free(&b);
	kp_arena_free(&a);
	free(b1);
	free(b2);
	return 0;
}
