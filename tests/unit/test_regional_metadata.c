/*
 * The regional virtual cluster's Metadata answer (proxy/virtual_metadata.c):
 * a real cluster's answer (3 brokers; a topic with a leaderless partition and
 * one with an error, an internal topic, a topic the client may not see) at
 * v0, v1, v7, v9 (the first flexible), v12 and v13 is encoded, decoded as
 * the proxy decodes it, rebuilt for a 2-node region, encoded, and decoded
 * again: what a client reads is the region's nodes and nothing of the real
 * cluster's, the same on every kstretch node of the region.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"
#include "virtual_metadata.h"

#define REAL_ERROR_NONE          0
#define LEADER_NOT_AVAILABLE     5
#define REPLICA_NOT_AVAILABLE    9
#define TOPIC_AUTHORIZATION_FAIL 29

static const int32_t real_ids[] = {1001, 1002, 1003};
static const char *const real_hosts[] = {"b1.real.internal", "b2.real.internal", "b3.real.internal"};
static const uint8_t orders_id[16] = {0x6f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t offsets_id[16] = {0xc0, 0xff, 0x5e, 0x75, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};

/* What the rebuilt answer must hold, partition by partition of "orders" (ids 11 and 12 in the region). */
static const struct {
	int32_t index, real_leader, epoch;
	int16_t error;
	int32_t leader; /* in the virtual cluster: kr_virtual_leader, pinned here */
	int32_t replica_second;
	bool isr;
} orders[] = {
    {0, 1001, 5, REAL_ERROR_NONE, 12, 11, true},
    {1, 1002, 6, REAL_ERROR_NONE, 12, 11, true},
    {2, -1, 4, LEADER_NOT_AVAILABLE, -1, 12, false}, /* no leader: stays -1; replicas from 11 (its slot) */
    {3, 1003, 7, REPLICA_NOT_AVAILABLE, 12, 11, true},
};

static struct kp_span str(const char *s)
{
	return (struct kp_span){(const uint8_t *)s, (int32_t)strlen(s)};
}

static const struct kp_schema *schema_of(const struct kp_schema *s, int field)
{
	return s->fields[field].sub;
}

static struct kp_list ints(struct kp_arena *a, const int32_t *v, int32_t n)
{
	struct kp_value *items = n ? kp_arena_alloc(a, (size_t)n * sizeof(*items)) : NULL;
	for (int32_t i = 0; i < n; i++)
		items[i] = (struct kp_value){.i = v[i], .present = true};
	return (struct kp_list){items, n};
}

static struct kp_list structs(struct kp_arena *a, struct kp_struct **v, int32_t n)
{
	struct kp_value *items = n ? kp_arena_alloc(a, (size_t)n * sizeof(*items)) : NULL;
	for (int32_t i = 0; i < n; i++)
		items[i] = (struct kp_value){.st = v[i], .present = true};
	return (struct kp_list){items, n};
}

/* An unknown tagged field holding a real node id: it must not reach the client. */
static void add_unknown_tag(struct kp_arena *a, struct kp_struct *st, int16_t version)
{
	if (version < 9)
		return;
	static const uint8_t leak[4] = {0x00, 0x00, 0x03, 0xe9}; /* 1001 */
	st->unknown = kp_arena_alloc(a, sizeof(*st->unknown));
	st->unknown[0] = (struct kp_raw_tag){.tag = 42, .data = {leak, 4}};
	st->unknown_cnt = 1;
}

static struct kp_struct *partition(struct kp_arena *a, int16_t v, int32_t index, int16_t error, int32_t leader,
                                   int32_t epoch, const int32_t *replicas, int32_t nr, const int32_t *isr, int32_t ni,
                                   const int32_t *offline, int32_t no)
{
	const struct kp_schema *s = schema_of(schema_of(&kp_metadata_response, KP_METADATA_RESPONSE_TOPICS),
	                                      KP_METADATA_TOPIC_PARTITIONS);
	struct kp_struct *p = kp_struct_new(a, s, v);
	p->v[KP_METADATA_PARTITION_ERROR_CODE].i = error;
	p->v[KP_METADATA_PARTITION_PARTITION_INDEX].i = index;
	p->v[KP_METADATA_PARTITION_LEADER_ID].i = leader;
	p->v[KP_METADATA_PARTITION_LEADER_EPOCH].i = epoch;
	p->v[KP_METADATA_PARTITION_REPLICA_NODES].a = ints(a, replicas, nr);
	p->v[KP_METADATA_PARTITION_ISR_NODES].a = ints(a, isr, ni);
	p->v[KP_METADATA_PARTITION_OFFLINE_REPLICAS].a = ints(a, offline, no);
	add_unknown_tag(a, p, v);
	return p;
}

static struct kp_struct *topic(struct kp_arena *a, int16_t v, int16_t error, const char *name, const uint8_t *id,
                               bool internal, int32_t auth_ops, struct kp_struct **parts, int32_t nparts)
{
	static const uint8_t zero[16];
	struct kp_struct *t = kp_struct_new(a, schema_of(&kp_metadata_response, KP_METADATA_RESPONSE_TOPICS), v);
	t->v[KP_METADATA_TOPIC_ERROR_CODE].i = error;
	t->v[KP_METADATA_TOPIC_NAME].s = str(name);
	t->v[KP_METADATA_TOPIC_TOPIC_ID].s = (struct kp_span){id ? id : zero, 16};
	t->v[kp_field_index(t->schema, "IsInternal")].i = internal;
	t->v[KP_METADATA_TOPIC_PARTITIONS].a = structs(a, parts, nparts);
	t->v[kp_field_index(t->schema, "TopicAuthorizedOperations")].i = auth_ops;
	return t;
}

/* The real cluster's answer at version v, encoded: what the proxy reads from the broker. */
static uint8_t *real_response(int16_t v, int16_t top_error, size_t *len)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	const int32_t all[] = {1001, 1002, 1003}, p1r[] = {1002, 1003, 1001}, p2r[] = {1003, 1001, 1002},
	              p2off[] = {1003}, p3isr[] = {1003}, co0[] = {1001, 1002}, co1[] = {1002, 1003};
	struct kp_struct *op[] = {
	    partition(&a, v, 0, REAL_ERROR_NONE, 1001, 5, all, 3, all, 2, NULL, 0),
	    partition(&a, v, 1, REAL_ERROR_NONE, 1002, 6, p1r, 3, p1r, 3, NULL, 0),
	    partition(&a, v, 2, LEADER_NOT_AVAILABLE, -1, 4, p2r, 3, NULL, 0, p2off, 1),
	    partition(&a, v, 3, REPLICA_NOT_AVAILABLE, 1003, 7, p2r, 3, p3isr, 1, NULL, 0),
	};
	struct kp_struct *cp[] = {
	    partition(&a, v, 0, REAL_ERROR_NONE, 1001, 2, co0, 2, co0, 2, NULL, 0),
	    partition(&a, v, 1, REAL_ERROR_NONE, 1003, 3, co1, 2, co1, 2, NULL, 0),
	};
	struct kp_struct *topics[] = {
	    topic(&a, v, REAL_ERROR_NONE, "orders", orders_id, false, 0x0df8, op, 4),
	    topic(&a, v, REAL_ERROR_NONE, "__consumer_offsets", offsets_id, true, 0x0df8, cp, 2),
	    topic(&a, v, TOPIC_AUTHORIZATION_FAIL, "secret", NULL, false, INT32_MIN, NULL, 0),
	};
	struct kp_struct *brokers[3];
	for (int i = 0; i < 3; i++) {
		brokers[i] = kp_struct_new(&a, schema_of(&kp_metadata_response, KP_METADATA_RESPONSE_BROKERS), v);
		brokers[i]->v[KP_METADATA_BROKER_NODE_ID].i = real_ids[i];
		brokers[i]->v[KP_METADATA_BROKER_HOST].s = str(real_hosts[i]);
		brokers[i]->v[KP_METADATA_BROKER_PORT].i = 9092 + i;
		brokers[i]->v[KP_METADATA_BROKER_RACK].s = str(i == 2 ? "us-a" : i ? "eu-b" : "eu-a");
		add_unknown_tag(&a, brokers[i], v);
	}
	struct kp_struct *st = kp_struct_new(&a, &kp_metadata_response, v);
	st->v[KP_METADATA_RESPONSE_THROTTLE_TIME_MS].i = 7;
	st->v[KP_METADATA_RESPONSE_BROKERS].a = structs(&a, brokers, 3);
	st->v[KP_METADATA_RESPONSE_CLUSTER_ID].s = str("real-cluster-id");
	st->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i = 1002;
	st->v[KP_METADATA_RESPONSE_TOPICS].a = structs(&a, topics, 3);
	st->v[kp_field_index(&kp_metadata_response, "ClusterAuthorizedOperations")].i = 0x123;
	st->v[KP_METADATA_RESPONSE_ERROR_CODE].i = top_error;
	add_unknown_tag(&a, st, v);

	struct kp_writer w;
	kp_writer_init(&w);
	kp_encode(&w, st, v, kp_api_flexible(kp_api_get(KP_API_METADATA), v), -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	cr_assert_not_null(out);
	kp_writer_free(&w);
	kp_arena_free(&a);
	return out;
}

static struct kp_struct *decode(struct kp_arena *a, int16_t v, const uint8_t *body, size_t len)
{
	struct kp_cursor c;
	kp_cursor_init(&c, body, len);
	struct kp_struct *st =
	    kp_decode(a, &c, &kp_metadata_response, v, kp_api_flexible(kp_api_get(KP_API_METADATA), v), -1);
	cr_assert_not_null(st, "v%d: %s at %zu (%s)", v, kp_error_name(c.err), c.err_pos, c.err_field);
	cr_assert_eq(kp_cursor_left(&c), 0, "v%d: trailing bytes", v);
	return st;
}

static void region_nodes(struct kr_regional_nodes *set, const char *text)
{
	char why[128];
	kr_regional_nodes_init(set);
	cr_assert(kr_regional_nodes_parse(set, text, why, sizeof(why)), "%s", why);
	cr_assert(kr_regional_nodes_finish(set, why, sizeof(why)), "%s", why);
}

/* The real answer at v rebuilt for the region (nodes), encoded: what the client reads. */
static uint8_t *virtual_response(int16_t v, int16_t real_top_error, const struct kr_regional_nodes *nodes,
                                 int16_t error_code, size_t *len)
{
	size_t rlen;
	uint8_t *real = real_response(v, real_top_error, &rlen);
	struct kp_arena a;
	kp_arena_init(&a, 64 * rlen + (1 << 20));
	struct kp_struct *st = decode(&a, v, real, rlen), *out;
	struct kx_virtual_cluster vc = {.nodes = nodes, .region = "eu-west"};
	cr_assert_eq(kx_virtual_metadata(&a, st, v, &vc, error_code, &out), KX_VMETA_OK, "v%d", v);
	struct kp_writer w;
	kp_writer_init(&w);
	kp_encode(&w, out, v, kp_api_flexible(kp_api_get(KP_API_METADATA), v), -1);
	uint8_t *bytes = kp_writer_flatten(&w, len);
	cr_assert_not_null(bytes);
	kp_writer_free(&w);
	kp_arena_free(&a);
	free(real);
	return bytes;
}

static bool is_real_id(int64_t id)
{
	return id == 1001 || id == 1002 || id == 1003;
}

/* No int32 field or int32 array element anywhere in the decoded answer is a real node id. */
static void assert_no_real_id(const struct kp_struct *st, int16_t v)
{
	for (int i = 0; i < st->schema->nfields; i++) {
		const struct kp_field *f = &st->schema->fields[i];
		const struct kp_value *val = &st->v[i];
		if (!val->present)
			continue;
		if (f->type == KP_INT32)
			cr_assert_not(is_real_id(val->i), "v%d: %s.%s is a real node id", v, st->schema->name, f->name);
		if (f->type != KP_ARRAY)
			continue;
		for (int32_t k = 0; k < val->a.cnt; k++) {
			if (f->elem == KP_STRUCT)
				assert_no_real_id(val->a.items[k].st, v);
			else
				cr_assert_not(is_real_id(val->a.items[k].i), "v%d: %s.%s[%d] is a real node id", v,
				              st->schema->name, f->name, k);
		}
	}
}

static void assert_ids(const struct kp_list *l, const int32_t *want, int32_t n, const char *what, int32_t p)
{
	cr_assert_eq(l->cnt, n, "%s of partition %d: %d nodes", what, p, l->cnt);
	for (int32_t i = 0; i < n; i++)
		cr_assert_eq(l->items[i].i, want[i], "%s[%d] of partition %d: %lld", what, i, p,
		             (long long)l->items[i].i);
}

static void assert_brokers(const struct kp_struct *st, int16_t v)
{
	const struct kp_value *brokers = &st->v[KP_METADATA_RESPONSE_BROKERS];
	cr_assert_eq(brokers->a.cnt, 2, "v%d: only the region's 2 nodes", v);
	static const struct {
		int32_t id;
		const char *host;
		int32_t port;
	} want[] = {{11, "kst-a.eu-west", 9092}, {12, "kst-b.eu-west", 9093}};
	for (int i = 0; i < 2; i++) {
		const struct kp_struct *b = item(brokers, i);
		cr_assert_eq(b->v[KP_METADATA_BROKER_NODE_ID].i, want[i].id);
		cr_assert(span_is(b->v[KP_METADATA_BROKER_HOST].s, want[i].host));
		cr_assert_eq(b->v[KP_METADATA_BROKER_PORT].i, want[i].port);
		if (v >= 1)
			cr_assert(span_is(b->v[KP_METADATA_BROKER_RACK].s, "eu-west"), "v%d: rack is the region", v);
		else
			cr_assert_not(b->v[KP_METADATA_BROKER_RACK].present, "v0 has no Rack");
		cr_assert_eq(b->unknown_cnt, 0);
	}
}

static void assert_orders(const struct kp_struct *t, int16_t v, const struct kr_regional_nodes *set)
{
	const struct kp_value *parts = &t->v[KP_METADATA_TOPIC_PARTITIONS];
	cr_assert_eq(parts->a.cnt, 4);
	for (int32_t i = 0; i < 4; i++) {
		const struct kp_struct *p = item(parts, i);
		int32_t leader = (int32_t)p->v[KP_METADATA_PARTITION_LEADER_ID].i;
		cr_assert_eq(p->v[KP_METADATA_PARTITION_PARTITION_INDEX].i, orders[i].index);
		cr_assert_eq(p->v[KP_METADATA_PARTITION_ERROR_CODE].i, orders[i].error, "v%d p%d: error kept", v, i);
		cr_assert_eq(leader, orders[i].leader, "v%d p%d: leader %d", v, i, leader);
		if (orders[i].real_leader >= 0)
			cr_assert_eq(leader, kr_virtual_leader(set->ids, set->cnt, "orders", 6, orders[i].index));
		int32_t slot = kr_virtual_leader(set->ids, set->cnt, "orders", 6, orders[i].index);
		int32_t replicas[2] = {slot, orders[i].replica_second};
		assert_ids(&p->v[KP_METADATA_PARTITION_REPLICA_NODES].a, replicas, 2, "ReplicaNodes", i);
		assert_ids(&p->v[KP_METADATA_PARTITION_ISR_NODES].a, replicas, orders[i].isr ? 2 : 0, "IsrNodes", i);
		if (v >= 5)
			cr_assert_eq(p->v[KP_METADATA_PARTITION_OFFLINE_REPLICAS].a.cnt, 0, "p%d: none offline", i);
		int32_t epoch = v >= 7 ? orders[i].epoch : -1;
		cr_assert_eq(p->v[KP_METADATA_PARTITION_LEADER_EPOCH].i, epoch, "v%d p%d", v, i);
		cr_assert_eq(p->unknown_cnt, 0);
	}
}

static void assert_topics(const struct kp_struct *st, int16_t v, const struct kr_regional_nodes *set)
{
	const struct kp_value *topics = &st->v[KP_METADATA_RESPONSE_TOPICS];
	cr_assert_eq(topics->a.cnt, 3);
	const struct kp_struct *o = item(topics, 0), *c = item(topics, 1), *s = item(topics, 2);
	cr_assert(span_is(o->v[KP_METADATA_TOPIC_NAME].s, "orders"));
	cr_assert(span_is(c->v[KP_METADATA_TOPIC_NAME].s, "__consumer_offsets"));
	cr_assert(span_is(s->v[KP_METADATA_TOPIC_NAME].s, "secret"));
	cr_assert_eq(o->v[KP_METADATA_TOPIC_ERROR_CODE].i, 0);
	cr_assert_eq(s->v[KP_METADATA_TOPIC_ERROR_CODE].i, TOPIC_AUTHORIZATION_FAIL);
	cr_assert_eq(s->v[KP_METADATA_TOPIC_PARTITIONS].a.cnt, 0);
	if (v >= 10) {
		cr_assert_arr_eq(o->v[KP_METADATA_TOPIC_TOPIC_ID].s.ptr, orders_id, 16);
		cr_assert_arr_eq(c->v[KP_METADATA_TOPIC_TOPIC_ID].s.ptr, offsets_id, 16);
	}
	int internal = kp_field_index(o->schema, "IsInternal");
	int ops = kp_field_index(o->schema, "TopicAuthorizedOperations");
	if (v >= 1) {
		cr_assert_eq(o->v[internal].i, 0);
		cr_assert_eq(c->v[internal].i, 1);
	}
	if (v >= 8) {
		cr_assert_eq(o->v[ops].i, 0x0df8);
		cr_assert_eq(s->v[ops].i, INT32_MIN);
	}
	assert_orders(o, v, set);
	/* __consumer_offsets: both partitions led by 11 (pinned), replicas [11, 12]. */
	const int32_t led_by_11[] = {11, 12};
	for (int32_t i = 0; i < 2; i++) {
		const struct kp_struct *p = item(&c->v[KP_METADATA_TOPIC_PARTITIONS], i);
		cr_assert_eq(p->v[KP_METADATA_PARTITION_LEADER_ID].i, 11);
		cr_assert_eq(p->v[KP_METADATA_PARTITION_LEADER_ID].i,
		             kr_virtual_leader(set->ids, set->cnt, "__consumer_offsets", 18, i));
		assert_ids(&p->v[KP_METADATA_PARTITION_REPLICA_NODES].a, led_by_11, 2, "ReplicaNodes", i);
		assert_ids(&p->v[KP_METADATA_PARTITION_ISR_NODES].a, led_by_11, 2, "IsrNodes", i);
		cr_assert_eq(p->v[KP_METADATA_PARTITION_LEADER_EPOCH].i, v >= 7 ? 2 + i : -1);
	}
}

/* Neither a real node id (as an int32 anywhere) nor a real host is in the bytes. */
static void assert_nothing_real(const uint8_t *bytes, size_t len, int16_t v)
{
	for (int i = 0; i < 3; i++) {
		uint32_t id = (uint32_t)real_ids[i];
		uint8_t be[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
		cr_assert_null(memmem(bytes, len, be, 4), "v%d: real node id %d in the bytes", v, real_ids[i]);
		cr_assert_null(memmem(bytes, len, real_hosts[i], strlen(real_hosts[i])), "v%d: real host", v);
	}
	cr_assert_null(memmem(bytes, len, "us-a", 4), "v%d: a real rack", v);
}

static void assert_virtual(int16_t v)
{
	struct kr_regional_nodes set;
	region_nodes(&set, "11@kst-a.eu-west:9092,12@kst-b.eu-west:9093");
	size_t len;
	uint8_t *bytes = virtual_response(v, REAL_ERROR_NONE, &set, KX_VMETA_REAL_ERROR, &len);
	struct kp_arena a;
	kp_arena_init(&a, 0);
	struct kp_struct *st = decode(&a, v, bytes, len);

	assert_brokers(st, v);
	if (v >= 1)
		cr_assert_eq(st->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i, 11, "v%d: the lowest id controls", v);
	if (v >= 2)
		cr_assert(span_is(st->v[KP_METADATA_RESPONSE_CLUSTER_ID].s, "real-cluster-id"));
	if (v >= 3)
		cr_assert_eq(st->v[KP_METADATA_RESPONSE_THROTTLE_TIME_MS].i, 7);
	if (v >= 8 && v <= 10)
		cr_assert_eq(st->v[kp_field_index(&kp_metadata_response, "ClusterAuthorizedOperations")].i, 0x123);
	if (v >= 13)
		cr_assert_eq(st->v[KP_METADATA_RESPONSE_ERROR_CODE].i, 0);
	cr_assert_eq(st->unknown_cnt, 0, "v%d: unknown tagged fields dropped", v);
	assert_topics(st, v, &set);
	assert_no_real_id(st, v);
	assert_nothing_real(bytes, len, v);
	kp_arena_free(&a);
	free(bytes);
}

Test(regional_metadata, v0_without_racks_shows_only_the_region_nodes)
{
	assert_virtual(0);
}

Test(regional_metadata, v1_shows_the_region_as_every_nodes_rack_and_the_lowest_id_as_controller)
{
	assert_virtual(1);
}

Test(regional_metadata, v7_keeps_leader_epochs_and_empties_offline_replicas)
{
	assert_virtual(7);
}

Test(regional_metadata, v9_flexible_drops_unknown_tagged_fields_that_could_name_real_nodes)
{
	assert_virtual(9);
}

Test(regional_metadata, v12_keeps_topic_ids_and_errors)
{
	assert_virtual(12);
}

Test(regional_metadata, v13_keeps_the_real_top_level_error_code_when_told_to)
{
	assert_virtual(13);
}

Test(regional_metadata, every_version_rebuilds_without_a_real_node)
{
	for (int16_t v = 0; v <= 13; v++)
		assert_virtual(v);
}

static int16_t top_error(const uint8_t *bytes, size_t len)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	int16_t e = (int16_t)decode(&a, 13, bytes, len)->v[KP_METADATA_RESPONSE_ERROR_CODE].i;
	kp_arena_free(&a);
	return e;
}

Test(regional_metadata, v13_says_rebootstrap_required_when_the_caller_says_the_node_set_changed)
{
	struct kr_regional_nodes set;
	region_nodes(&set, "11@kst-a.eu-west:9092,12@kst-b.eu-west:9093");
	size_t len;
	uint8_t *b = virtual_response(13, REAL_ERROR_NONE, &set, KR_ERR_REBOOTSTRAP_REQUIRED, &len);
	cr_assert_eq(top_error(b, len), 129);
	free(b);
	/* The real answer's own error passes when the caller does not override it. */
	b = virtual_response(13, 41, &set, KX_VMETA_REAL_ERROR, &len);
	cr_assert_eq(top_error(b, len), 41);
	free(b);
	b = virtual_response(13, 41, &set, KR_ERR_REBOOTSTRAP_REQUIRED, &len);
	cr_assert_eq(top_error(b, len), 129);
	free(b);
}

Test(regional_metadata, below_v13_the_error_code_parameter_changes_nothing)
{
	struct kr_regional_nodes set;
	region_nodes(&set, "11@kst-a.eu-west:9092,12@kst-b.eu-west:9093");
	for (int16_t v = 0; v < 13; v++) {
		size_t l1, l2;
		uint8_t *a = virtual_response(v, REAL_ERROR_NONE, &set, KX_VMETA_REAL_ERROR, &l1);
		uint8_t *b = virtual_response(v, REAL_ERROR_NONE, &set, KR_ERR_REBOOTSTRAP_REQUIRED, &l2);
		cr_assert_eq(l1, l2, "v%d", v);
		cr_assert_arr_eq(a, b, l1, "v%d", v);
		free(a);
		free(b);
	}
}

Test(regional_metadata, two_kstretch_nodes_of_a_region_answer_byte_for_byte_alike)
{
	/* Each node reads the list in its own order (its own configuration, or DNS). */
	struct kr_regional_nodes one, two;
	region_nodes(&one, "11@kst-a.eu-west:9092,12@kst-b.eu-west:9093");
	region_nodes(&two, " 12@kst-b.eu-west:9093 , 11@kst-a.eu-west:9092");
	for (int16_t v = 0; v <= 13; v++) {
		size_t l1, l2;
		uint8_t *a = virtual_response(v, REAL_ERROR_NONE, &one, KX_VMETA_REAL_ERROR, &l1);
		uint8_t *b = virtual_response(v, REAL_ERROR_NONE, &two, KX_VMETA_REAL_ERROR, &l2);
		cr_assert_eq(l1, l2, "v%d", v);
		cr_assert_arr_eq(a, b, l1, "v%d", v);
		free(a);
		free(b);
	}
}

Test(regional_metadata, a_64_node_region_gives_every_partition_all_64_nodes_leader_first)
{
	struct kr_regional_nodes set;
	char why[128], host[32];
	kr_regional_nodes_init(&set);
	for (int i = 0; i < KR_REGIONAL_NODES_MAX; i++) {
		int n = snprintf(host, sizeof(host), "kst-%d.eu", i);
		cr_assert(kr_regional_nodes_add(&set, 500 - i, host, (size_t)n, 9092, why, sizeof(why)), "%s", why);
	}
	cr_assert(kr_regional_nodes_finish(&set, why, sizeof(why)), "%s", why);
	size_t rlen;
	uint8_t *real = real_response(12, REAL_ERROR_NONE, &rlen);
	struct kp_arena a;
	kp_arena_init(&a, 0);
	struct kp_struct *st = decode(&a, 12, real, rlen), *out;
	struct kx_virtual_cluster vc = {.nodes = &set, .region = "eu"};
	cr_assert_eq(kx_virtual_metadata(&a, st, 12, &vc, KX_VMETA_REAL_ERROR, &out), KX_VMETA_OK);
	cr_assert_eq(out->v[KP_METADATA_RESPONSE_BROKERS].a.cnt, 64);
	cr_assert_eq(item(&out->v[KP_METADATA_RESPONSE_BROKERS], 0)->v[KP_METADATA_BROKER_NODE_ID].i, 437);
	cr_assert_eq(out->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i, 437);
	const struct kp_struct *orders_topic = item(&out->v[KP_METADATA_RESPONSE_TOPICS], 0);
	const struct kp_struct *p = item(&orders_topic->v[KP_METADATA_TOPIC_PARTITIONS], 1);
	const struct kp_list *r = &p->v[KP_METADATA_PARTITION_REPLICA_NODES].a;
	cr_assert_eq(r->cnt, 64);
	cr_assert_eq(r->items[0].i, p->v[KP_METADATA_PARTITION_LEADER_ID].i);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_LEADER_ID].i, kr_virtual_leader(set.ids, 64, "orders", 6, 1));
	for (int32_t i = 2; i < 64; i++)
		cr_assert_lt(r->items[i - 1].i, r->items[i].i, "after the leader, ascending");
	kp_arena_free(&a);
	free(real);
}

Test(regional_metadata, wrong_input_is_refused_and_the_real_answer_is_left_alone)
{
	struct kr_regional_nodes set, unfinished;
	region_nodes(&set, "11@kst-a.eu-west:9092,12@kst-b.eu-west:9093");
	kr_regional_nodes_init(&unfinished);
	cr_assert(kr_regional_nodes_add(&unfinished, 1, "a.eu", 4, 9092, NULL, 0));
	size_t rlen;
	uint8_t *real = real_response(12, REAL_ERROR_NONE, &rlen);
	struct kp_arena a;
	kp_arena_init(&a, 0);
	struct kp_struct *st = decode(&a, 12, real, rlen), *out = (struct kp_struct *)1;
	struct kx_virtual_cluster vc = {.nodes = &set, .region = "eu-west"}, bad = {.nodes = &unfinished};
	cr_assert_eq(kx_virtual_metadata(&a, st, 14, &vc, 0, &out), KX_VMETA_BAD_INPUT, "v14 is not decoded");
	cr_assert_null(out);
	cr_assert_eq(kx_virtual_metadata(&a, st, -1, &vc, 0, &out), KX_VMETA_BAD_INPUT);
	cr_assert_eq(kx_virtual_metadata(&a, st, 12, &bad, 0, &out), KX_VMETA_BAD_INPUT, "an unfinished node set");
	cr_assert_eq(kx_virtual_metadata(&a, NULL, 12, &vc, 0, &out), KX_VMETA_BAD_INPUT);
	cr_assert_eq(kx_virtual_metadata(&a, st, 12, NULL, 0, &out), KX_VMETA_BAD_INPUT);

	/* A prefix decode (the mapped-mode rewrite's) holds no topics to lay out. */
	struct kp_cursor c;
	kp_cursor_init(&c, real, rlen);
	struct kp_struct *prefix = kp_decode(&a, &c, &kp_metadata_response, 12, true, KP_METADATA_RESPONSE_PREFIX);
	cr_assert_not_null(prefix);
	cr_assert_eq(kx_virtual_metadata(&a, prefix, 12, &vc, 0, &out), KX_VMETA_BAD_INPUT);
	/* Another message's struct. */
	struct kp_struct *other = kp_struct_new(&a, &kp_fetch_response, 12);
	cr_assert_eq(kx_virtual_metadata(&a, other, 12, &vc, 0, &out), KX_VMETA_BAD_INPUT);

	/* The input stays as it was: real leaders, real brokers. */
	cr_assert_eq(kx_virtual_metadata(&a, st, 12, &vc, 0, &out), KX_VMETA_OK);
	cr_assert_eq(item(&st->v[KP_METADATA_RESPONSE_BROKERS], 0)->v[KP_METADATA_BROKER_NODE_ID].i, 1001);
	const struct kp_struct *p0 =
	    item(&item(&st->v[KP_METADATA_RESPONSE_TOPICS], 0)->v[KP_METADATA_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p0->v[KP_METADATA_PARTITION_LEADER_ID].i, 1001);
	cr_assert_eq(p0->v[KP_METADATA_PARTITION_REPLICA_NODES].a.items[1].i, 1002);
	cr_assert_eq(st->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i, 1002);
	kp_arena_free(&a);
	free(real);
}

Test(regional_metadata, no_memory_at_any_step_is_reported_never_a_crash)
{
	struct kr_regional_nodes set;
	region_nodes(&set, "11@kst-a.eu-west:9092,12@kst-b.eu-west:9093");
	struct kx_virtual_cluster vc = {.nodes = &set, .region = "eu-west"};
	size_t rlen;
	uint8_t *real = real_response(13, REAL_ERROR_NONE, &rlen);
	struct kp_arena in;
	kp_arena_init(&in, 0);
	struct kp_struct *st = decode(&in, 13, real, rlen), *out;
	int nomem = 0;
	for (size_t cap = 1;; cap += 8) {
		struct kp_arena a;
		kp_arena_init(&a, cap);
		enum kx_vmeta_result r = kx_virtual_metadata(&a, st, 13, &vc, 0, &out);
		kp_arena_free(&a);
		if (r == KX_VMETA_OK)
			break;
		cr_assert_eq(r, KX_VMETA_NOMEM, "cap %zu", cap);
		cr_assert_null(out);
		nomem++;
		cr_assert_lt(cap, 1 << 20, "never succeeds");
	}
	cr_assert_gt(nomem, 10, "the arena cap was met at many steps");
	kp_arena_free(&in);
	free(real);
}

/* The arena bytes a rebuild of one topic of n partitions takes. */
static size_t cost_of(int32_t n, const struct kx_virtual_cluster *vc)
{
	struct kp_arena a, out;
	kp_arena_init(&a, 0);
	kp_arena_init(&out, 0);
	const int32_t reps[] = {1001, 1002, 1003};
	struct kp_struct **parts = kp_arena_alloc(&a, (size_t)n * sizeof(*parts));
	for (int32_t i = 0; i < n; i++)
		parts[i] = partition(&a, 12, i, 0, reps[i % 3], 1, reps, 3, reps, 3, NULL, 0);
	struct kp_struct *t = topic(&a, 12, 0, "big", orders_id, false, 0, parts, n);
	struct kp_struct *st = kp_struct_new(&a, &kp_metadata_response, 12), *res;
	st->v[KP_METADATA_RESPONSE_TOPICS].a = structs(&a, &t, 1);
	cr_assert_eq(kx_virtual_metadata(&out, st, 12, vc, 0, &res), KX_VMETA_OK);
	size_t used = out.used;
	kp_arena_free(&out);
	kp_arena_free(&a);
	return used;
}

Test(regional_metadata, the_cost_grows_linearly_with_partitions)
{
	struct kr_regional_nodes set;
	region_nodes(&set, "11@kst-a.eu-west:9092,12@kst-b.eu-west:9093");
	struct kx_virtual_cluster vc = {.nodes = &set, .region = "eu-west"};
	size_t c1 = cost_of(1000, &vc), c2 = cost_of(2000, &vc), c4 = cost_of(4000, &vc);
	size_t per = sizeof(struct kp_struct) + 7 * sizeof(struct kp_value) + sizeof(struct kp_value);
	cr_assert_leq(c2 - c1, 1000 * (per + 16), "%zu bytes for 1000 more partitions", c2 - c1);
	cr_assert_leq(c4 - c2, 2000 * (per + 16), "%zu bytes for 2000 more partitions", c4 - c2);
	cr_assert_geq(c4 - c2, 2000 * per);
}

/* ---- DescribeCluster: the same virtual cluster as Metadata -------------------- */

/* A real DescribeCluster answer at v (1001-1003 at real addresses, controller 1002, an unknown tag at v0+). */
static void describe_cluster_case(int16_t v, int16_t error)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	const struct kp_schema *bs = schema_of(&kp_describe_cluster_response, KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS);
	struct kp_struct *real = kp_struct_new(&a, &kp_describe_cluster_response, v);
	struct kp_value *items = kp_arena_alloc(&a, 3 * sizeof(*items));
	for (int i = 0; i < 3; i++) {
		struct kp_struct *b = kp_struct_new(&a, bs, v);
		b->v[KP_DESCRIBE_CLUSTER_BROKER_BROKER_ID].i = real_ids[i];
		b->v[KP_DESCRIBE_CLUSTER_BROKER_HOST].s = str(real_hosts[i]);
		b->v[KP_DESCRIBE_CLUSTER_BROKER_PORT].i = 9092;
		b->v[KP_DESCRIBE_CLUSTER_BROKER_RACK].s = str("us-east-1a");
		items[i] = (struct kp_value){.st = b, .present = true};
	}
	real->v[KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS].a = (struct kp_list){items, 3};
	real->v[KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID].i = 1002;
	real->v[KP_DESCRIBE_CLUSTER_RESPONSE_ERROR_CODE].i = error;
	real->v[kp_field_index(&kp_describe_cluster_response, "ClusterId")].s = str("real-cluster");
	/* As the proxy reads it: encoded by the broker, decoded whole. */
	struct kp_writer w;
	kp_writer_init(&w);
	kp_encode(&w, real, v, true, -1);
	size_t n = 0;
	uint8_t *bytes = kp_writer_flatten(&w, &n);
	kp_writer_free(&w);
	struct kp_cursor c;
	kp_cursor_init(&c, bytes, n);
	struct kp_struct *decoded = kp_decode(&a, &c, &kp_describe_cluster_response, v, true, -1);
	cr_assert_not_null(decoded);

	struct kr_regional_nodes set;
	region_nodes(&set, "12@kstretch-b.eu:9093,11@kstretch-a.eu:9092");
	struct kx_virtual_cluster vc = {.nodes = &set, .region = "eu"};
	struct kp_struct *virt;
	cr_assert_eq(kx_virtual_describe_cluster(&a, decoded, v, &vc, &virt), KX_VMETA_OK);
	kp_writer_init(&w);
	kp_encode(&w, virt, v, true, -1);
	size_t vn = 0;
	uint8_t *vbytes = kp_writer_flatten(&w, &vn);
	kp_writer_free(&w);
	for (size_t i = 0; i < 3; i++)
		cr_assert_null(memmem(vbytes, vn, real_hosts[i], strlen(real_hosts[i])), "v%d: a real host leaks", v);
	cr_assert_null(memmem(vbytes, vn, "us-east-1a", 10), "v%d: a real rack leaks", v);
	kp_cursor_init(&c, vbytes, vn);
	struct kp_struct *back = kp_decode(&a, &c, &kp_describe_cluster_response, v, true, -1);
	cr_assert_not_null(back);
	cr_assert(span_is(field(back, "ClusterId")->s, "real-cluster"), "the cluster id as Metadata passes it");
	const struct kp_value *brokers = &back->v[KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS];
	if (error) {
		cr_assert_eq(brokers->a.cnt, 0, "an error names no broker");
		cr_assert_eq(back->v[KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID].i, -1);
		cr_assert_eq(field(back, "ErrorCode")->i, error);
	} else {
		cr_assert_eq(brokers->a.cnt, 2);
		cr_assert_eq(back->v[KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID].i, kr_regional_controller(&set));
		cr_assert_eq(back->v[KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID].i, 11, "Metadata's: the lowest id");
		const struct kp_struct *b0 = item(brokers, 0), *b1 = item(brokers, 1);
		cr_assert_eq(b0->v[KP_DESCRIBE_CLUSTER_BROKER_BROKER_ID].i, 11);
		cr_assert(span_is(b0->v[KP_DESCRIBE_CLUSTER_BROKER_HOST].s, "kstretch-a.eu"));
		cr_assert_eq(b0->v[KP_DESCRIBE_CLUSTER_BROKER_PORT].i, 9092);
		cr_assert(span_is(b0->v[KP_DESCRIBE_CLUSTER_BROKER_RACK].s, "eu"));
		cr_assert_eq(b1->v[KP_DESCRIBE_CLUSTER_BROKER_BROKER_ID].i, 12);
		cr_assert_eq(b1->v[KP_DESCRIBE_CLUSTER_BROKER_PORT].i, 9093);
	}
	free(bytes);
	free(vbytes);
	kp_arena_free(&a);
}

Test(regional_metadata, describe_cluster_shows_the_region_nodes_and_metadatas_controller_at_every_version)
{
	for (int16_t v = 0; v <= 2; v++)
		describe_cluster_case(v, 0);
}

Test(regional_metadata, describe_cluster_error_answers_keep_their_error_and_name_no_broker)
{
	describe_cluster_case(1, 101); /* UNSUPPORTED_ENDPOINT_TYPE */
}
