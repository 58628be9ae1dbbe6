/*
 * JoinGroup (key 11), versions 0-9, flexible 6+: the request only, for the
 * rack a consumer's subscription names (KIP-881: rack-aware assignors),
 * and the consumer protocol's subscription embedded in it.
 *
 * Request:  GroupId string, SessionTimeoutMs int32,
 *           RebalanceTimeoutMs int32 (1+, default -1), MemberId string,
 *           GroupInstanceId string (5+, nullable, default null),
 *           ProtocolType string, Protocols [Name string, Metadata bytes],
 *           Reason string (8+, nullable, default null).
 *
 * With ProtocolType "consumer", each protocol's Metadata is a
 * ConsumerProtocolSubscription, versions 0-3, never flexible, its version
 * an int16 before it: Topics [string], UserData bytes (nullable),
 * OwnedPartitions [Topic string, Partitions [int32]] (1+), GenerationId
 * int32 (2+, default -1), RackId string (3+, nullable, default null).
 */
#include <stdlib.h>
#include <string.h>

#include "messages.h"

static const struct kp_field protocol_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_FIELD("Metadata", KP_BYTES, 0, KP_VMAX),
};
static const struct kp_schema protocol = KP_SCHEMA("JoinGroupRequestProtocol", protocol_fields);

static const struct kp_field request_fields[] = {
    KP_FIELD("GroupId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("SessionTimeoutMs", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("RebalanceTimeoutMs", KP_INT32, 1, KP_VMAX, -1),
    KP_FIELD("MemberId", KP_STRING, 0, KP_VMAX),
    KP_NULL_STRING("GroupInstanceId", 5, 5),
    KP_FIELD("ProtocolType", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Protocols", &protocol, 0, KP_VMAX),
    KP_NULL_STRING("Reason", 8, 8),
};
const struct kp_schema kp_join_group_request = KP_SCHEMA("JoinGroupRequest", request_fields);

static const struct kp_field owned_fields[] = {
    KP_FIELD("Topic", KP_STRING, 1, KP_VMAX),
    KP_ARRAY_OF("Partitions", KP_INT32, 1, KP_VMAX),
};
static const struct kp_schema owned = KP_SCHEMA("TopicPartition", owned_fields);

static const struct kp_field subscription_fields[] = {
    KP_ARRAY_OF("Topics", KP_STRING, 0, KP_VMAX),
    KP_NFIELD("UserData", KP_BYTES, 0, KP_VMAX, 0),
    KP_STRUCTS("OwnedPartitions", &owned, 1, KP_VMAX),
    KP_FIELD_D("GenerationId", KP_INT32, 2, KP_VMAX, -1),
    KP_NULL_STRING("RackId", 3, 3),
};
const struct kp_schema kp_consumer_subscription = KP_SCHEMA("ConsumerProtocolSubscription", subscription_fields);

#define KP_SUBSCRIPTION_MAX_VERSION 3

/* A subscription's RackId set to rack when it names another one: true and
 * *out (arena bytes) when it changed, false when it is left as it is. */
static bool kp_subscription_set_rack(struct kp_arena *a, struct kp_span meta, struct kp_span rack, struct kp_span *out)
{
	struct kp_cursor c;
	kp_cursor_init(&c, meta.ptr, meta.len > 0 ? (size_t)meta.len : 0);
	int16_t ver = kp_read_i16(&c, "Version");
	if (!kp_cursor_ok(&c) || ver < 3 || ver > KP_SUBSCRIPTION_MAX_VERSION)
		return false; /* no rack before v3; a later version is not ours to re-encode */
	struct kp_struct *sub = kp_decode(a, &c, &kp_consumer_subscription, ver, false, -1);
	if (!sub || c.pos != c.len)
		return false; /* not a subscription this codec reads: the broker and the leader see it as it was */
	struct kp_value *r = &sub->v[KP_SUBSCRIPTION_RACK_ID];
	if (r->s.len < 0 || (r->s.len == rack.len && memcmp(r->s.ptr, rack.ptr, (size_t)rack.len) == 0))
		return false; /* no rack named, or already the one */
	r->s = rack;
	struct kp_writer w;
	kp_writer_init(&w);
	kp_write_i16(&w, ver);
	kp_encode(&w, sub, ver, false, -1);
	size_t len;
	uint8_t *flat = kp_writer_ok(&w) ? kp_writer_flatten(&w, &len) : NULL;
	kp_writer_free(&w);
	uint8_t *bytes = flat ? kp_arena_alloc(a, len + 1) : NULL;
	if (bytes)
		memcpy(bytes, flat, len);
	free(flat);
	if (!bytes)
		return false;
	*out = (struct kp_span){bytes, (int32_t)len};
	return true;
}

int kp_join_group_set_rack(struct kp_arena *a, struct kp_struct *req, struct kp_span rack)
{
	struct kp_span type = req->v[KP_JOIN_GROUP_REQ_PROTOCOL_TYPE].s;
	if (type.len != 8 || memcmp(type.ptr, "consumer", 8) != 0)
		return 0; /* Connect, Streams' own (also "consumer"), or any other: only the consumer protocol is read
		           */
	int changed = 0;
	const struct kp_list *protocols = &req->v[KP_JOIN_GROUP_REQ_PROTOCOLS].a;
	for (int32_t i = 0; i < protocols->cnt; i++) {
		struct kp_value *meta = &protocols->items[i].st->v[KP_JOIN_GROUP_PROTOCOL_METADATA];
		changed += kp_subscription_set_rack(a, meta->s, rack, &meta->s);
	}
	return changed;
}
