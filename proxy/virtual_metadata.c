/*
 * virtual_metadata: the real cluster's Metadata answer rebuilt as the
 * region's virtual cluster's. See virtual_metadata.h for what changes; the
 * decisions (leader, replica order, controller) are routing/regional.c's.
 */
#include "virtual_metadata.h"

#include <string.h>

#include "api.h"
#include "messages.h"

#define KX_VMETA_RACK_MAX 255 /* a region name; far below a string's int16 length */

static const struct kp_schema *kx_topic_schema(void)
{
	return kp_metadata_response.fields[KP_METADATA_RESPONSE_TOPICS].sub;
}

static const struct kp_schema *kx_partition_schema(void)
{
	return kx_topic_schema()->fields[KP_METADATA_TOPIC_PARTITIONS].sub;
}

/* What one rebuild shares: the arena, the node set, and the replica list of each leader once made. */
struct kx_vmeta {
	struct kp_arena *a;
	const struct kr_regional_nodes *set;
	int16_t version;
	enum kx_vmeta_result result; /* why a step gave NULL: KX_VMETA_NOMEM unless a struct was missing */
	struct kp_value *replicas[KR_REGIONAL_NODES_MAX]; /* by leader index; NULL: not made yet */
};

/*
 * A copy of st's values (unknown tagged fields dropped); NULL: no memory, or
 * st is not a whole struct of schema s (vm->result says which).
 */
static struct kp_struct *kx_copy_struct(struct kx_vmeta *vm, const struct kp_struct *st, const struct kp_schema *s)
{
	if (!st || st->schema != s || st->complete != s->nfields) {
		vm->result = KX_VMETA_BAD_INPUT; /* not what kp_decode makes: a caller's mistake */
		return NULL;
	}
	size_t size = sizeof(*st) + s->nfields * sizeof(struct kp_value);
	struct kp_struct *c = kp_arena_alloc(vm->a, size);
	if (!c)
		return NULL;
	memcpy(c, st, size);
	c->unknown = NULL;
	c->unknown_cnt = 0;
	return c;
}

/* A string in the arena (the answer must not point at the node set, which may be replaced). */
static bool kx_arena_span(struct kp_arena *a, const char *s, struct kp_span *out)
{
	size_t len = s ? strlen(s) : 0;
	if (len == 0) {
		*out = (struct kp_span){NULL, -1};
		return true;
	}
	uint8_t *p = kp_arena_alloc(a, len);
	if (!p)
		return false;
	memcpy(p, s, len);
	*out = (struct kp_span){p, (int32_t)len};
	return true;
}

/* The Brokers array: one struct per node, ascending id, Rack = rack (v1+). */
static bool kx_virtual_brokers(struct kx_vmeta *vm, struct kp_span rack, struct kp_value *brokers)
{
	const struct kp_schema *s = kp_metadata_response.fields[KP_METADATA_RESPONSE_BROKERS].sub;
	size_t n = vm->set->cnt;
	struct kp_value *items = kp_arena_alloc(vm->a, n * sizeof(*items));
	if (!items)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct kr_regional_node *node = &vm->set->nodes[i];
		struct kp_struct *b = kp_struct_new(vm->a, s, vm->version);
		if (!b || !kx_arena_span(vm->a, node->host, &b->v[KP_METADATA_BROKER_HOST].s))
			return false;
		b->v[KP_METADATA_BROKER_NODE_ID].i = node->id;
		b->v[KP_METADATA_BROKER_PORT].i = node->port;
		b->v[KP_METADATA_BROKER_RACK].s = rack; /* absent at v0: not encoded */
		items[i] = (struct kp_value){.st = b, .present = true};
	}
	brokers->a = (struct kp_list){items, (int32_t)n};
	return true;
}

/* The replica list of partitions led by node `leader` (an index), made once per rebuild. */
static struct kp_value *kx_replica_list(struct kx_vmeta *vm, int leader)
{
	if (vm->replicas[leader])
		return vm->replicas[leader];
	int32_t ids[KR_REGIONAL_NODES_MAX];
	size_t n = kr_regional_replicas(vm->set, leader, ids);
	struct kp_value *items = kp_arena_alloc(vm->a, n * sizeof(*items));
	if (!items)
		return NULL;
	for (size_t i = 0; i < n; i++)
		items[i] = (struct kp_value){.i = ids[i], .present = true};
	return vm->replicas[leader] = items;
}

/* One partition: leader, replicas, ISR and offline replicas of the virtual cluster. */
static struct kp_struct *kx_virtual_partition(struct kx_vmeta *vm, const struct kp_struct *real, struct kp_span topic)
{
	struct kp_struct *p = kx_copy_struct(vm, real, kx_partition_schema());
	if (!p)
		return NULL;
	int32_t index = (int32_t)real->v[KP_METADATA_PARTITION_PARTITION_INDEX].i;
	int leader = kr_regional_leader(vm->set, (const char *)topic.ptr, topic.len > 0 ? (size_t)topic.len : 0, index);
	struct kp_value *replicas = kx_replica_list(vm, leader);
	if (!replicas)
		return NULL;
	int32_t n = (int32_t)vm->set->cnt;
	if (real->v[KP_METADATA_PARTITION_LEADER_ID].i >= 0) /* no leader (-1) stays none: the client retries */
		p->v[KP_METADATA_PARTITION_LEADER_ID].i = vm->set->ids[leader];
	p->v[KP_METADATA_PARTITION_REPLICA_NODES].a = (struct kp_list){replicas, n};
	bool isr = real->v[KP_METADATA_PARTITION_ISR_NODES].a.cnt > 0;
	p->v[KP_METADATA_PARTITION_ISR_NODES].a = isr ? (struct kp_list){replicas, n} : (struct kp_list){NULL, 0};
	p->v[KP_METADATA_PARTITION_OFFLINE_REPLICAS].a = (struct kp_list){NULL, 0};
	return p;
}

/* One topic: its values as they were, its partitions rebuilt. */
static struct kp_struct *kx_virtual_topic(struct kx_vmeta *vm, const struct kp_struct *real)
{
	struct kp_struct *t = kx_copy_struct(vm, real, kx_topic_schema());
	if (!t)
		return NULL;
	const struct kp_list *parts = &t->v[KP_METADATA_TOPIC_PARTITIONS].a;
	struct kp_span name = real->v[KP_METADATA_TOPIC_NAME].s;
	if (parts->cnt <= 0)
		return t; /* an empty list stays as it was */
	struct kp_value *items = kp_arena_alloc(vm->a, (size_t)parts->cnt * sizeof(*items));
	if (!items)
		return NULL;
	for (int32_t i = 0; i < parts->cnt; i++) {
		struct kp_struct *p = kx_virtual_partition(vm, parts->items[i].st, name);
		if (!p)
			return NULL;
		items[i] = (struct kp_value){.st = p, .present = true};
	}
	t->v[KP_METADATA_TOPIC_PARTITIONS].a = (struct kp_list){items, parts->cnt};
	return t;
}

static bool kx_virtual_topics(struct kx_vmeta *vm, const struct kp_list *real, struct kp_list *out)
{
	if (real->cnt <= 0)
		return true; /* empty (or, hostile, null): as it was */
	struct kp_value *items = kp_arena_alloc(vm->a, (size_t)real->cnt * sizeof(*items));
	if (!items)
		return false;
	for (int32_t i = 0; i < real->cnt; i++) {
		struct kp_struct *t = kx_virtual_topic(vm, real->items[i].st);
		if (!t)
			return false;
		items[i] = (struct kp_value){.st = t, .present = true};
	}
	*out = (struct kp_list){items, real->cnt};
	return true;
}

static bool kx_vmeta_input_ok(const struct kp_struct *real, int16_t version, const struct kx_virtual_cluster *vc)
{
	const struct kp_api *api = kp_api_get(KP_API_METADATA);
	return real && vc && vc->nodes && api && kp_api_decodes(api, version, false) && vc->nodes->finished &&
	       vc->nodes->cnt > 0 && vc->nodes->cnt <= KR_REGIONAL_NODES_MAX &&
	       (!vc->region || strnlen(vc->region, KX_VMETA_RACK_MAX + 1) <= KX_VMETA_RACK_MAX);
}

enum kx_vmeta_result kx_virtual_metadata(struct kp_arena *a, const struct kp_struct *real, int16_t version,
                                         const struct kx_virtual_cluster *vc, int16_t error_code,
                                         struct kp_struct **out)
{
	*out = NULL;
	if (!a || !kx_vmeta_input_ok(real, version, vc))
		return KX_VMETA_BAD_INPUT;
	struct kx_vmeta vm = {.a = a, .set = vc->nodes, .version = version, .result = KX_VMETA_NOMEM};
	struct kp_span rack;
	struct kp_struct *st = kx_copy_struct(&vm, real, &kp_metadata_response);
	if (!st || !kx_arena_span(a, vc->region, &rack) ||
	    !kx_virtual_brokers(&vm, rack, &st->v[KP_METADATA_RESPONSE_BROKERS]) ||
	    !kx_virtual_topics(&vm, &real->v[KP_METADATA_RESPONSE_TOPICS].a, &st->v[KP_METADATA_RESPONSE_TOPICS].a))
		return vm.result;
	st->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i = kr_regional_controller(vc->nodes);
	if (version >= 13 && error_code != KX_VMETA_REAL_ERROR)
		st->v[KP_METADATA_RESPONSE_ERROR_CODE].i = error_code;
	*out = st;
	return KX_VMETA_OK;
}

/* ---- DescribeCluster ---------------------------------------------------------- */

enum kx_vmeta_result kx_virtual_describe_cluster(struct kp_arena *a, const struct kp_struct *real, int16_t version,
                                                 const struct kx_virtual_cluster *vc, struct kp_struct **out)
{
	const struct kp_schema *s = &kp_describe_cluster_response;
	*out = NULL;
	if (!real || real->schema != s || real->complete != s->nfields || version < 0 || version > 2 || !vc ||
	    !vc->nodes || vc->nodes->cnt == 0)
		return KX_VMETA_BAD_INPUT;
	struct kx_vmeta vm = {.a = a, .set = vc->nodes, .version = version, .result = KX_VMETA_NOMEM};
	struct kp_struct *st = kx_copy_struct(&vm, real, s);
	struct kp_span rack;
	if (!st || !kx_arena_span(a, vc->region, &rack))
		return vm.result;
	struct kp_value *brokers = &st->v[KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS];
	if (st->v[KP_DESCRIBE_CLUSTER_RESPONSE_ERROR_CODE].i != 0) { /* an error names no broker */
		brokers->a = (struct kp_list){NULL, 0};
		st->v[KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID].i = -1;
		*out = st;
		return KX_VMETA_OK;
	}
	const struct kp_schema *bs = s->fields[KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS].sub;
	size_t n = vc->nodes->cnt;
	struct kp_value *items = kp_arena_alloc(a, n * sizeof(*items));
	if (!items)
		return KX_VMETA_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct kr_regional_node *node = &vc->nodes->nodes[i];
		struct kp_struct *b = kp_struct_new(a, bs, version);
		if (!b || !kx_arena_span(a, node->host, &b->v[KP_DESCRIBE_CLUSTER_BROKER_HOST].s))
			return KX_VMETA_NOMEM;
		b->v[KP_DESCRIBE_CLUSTER_BROKER_BROKER_ID].i = node->id;
		b->v[KP_DESCRIBE_CLUSTER_BROKER_PORT].i = node->port;
		b->v[KP_DESCRIBE_CLUSTER_BROKER_RACK].s = rack;
		items[i] = (struct kp_value){.st = b, .present = true};
	}
	brokers->a = (struct kp_list){items, (int32_t)n};
	st->v[KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID].i = kr_regional_controller(vc->nodes);
	*out = st;
	return KX_VMETA_OK;
}
