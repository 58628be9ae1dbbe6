/*
 * DescribeProducers (key 61) v0: tables from Kafka's definitions, and the
 * cut of a request by destination (describeproducers.h).
 */
#include "describeproducers.h"

#include <string.h>

static const struct kp_field req_topic_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_ARRAY_OF("PartitionIndexes", KP_INT32, 0, KP_VMAX),
};
static const struct kp_schema req_topic = KP_SCHEMA("TopicRequest", req_topic_fields);

static const struct kp_field request_fields[] = {
    KP_STRUCTS("Topics", &req_topic, 0, KP_VMAX),
};
const struct kp_schema kp_describe_producers_request = KP_SCHEMA("DescribeProducersRequest", request_fields);

static const struct kp_field producer_fields[] = {
    KP_FIELD("ProducerId", KP_INT64, 0, KP_VMAX),
    KP_FIELD("ProducerEpoch", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("LastSequence", KP_INT32, 0, KP_VMAX, -1),
    KP_FIELD_D("LastTimestamp", KP_INT64, 0, KP_VMAX, -1),
    KP_FIELD("CoordinatorEpoch", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("CurrentTxnStartOffset", KP_INT64, 0, KP_VMAX, -1),
};
static const struct kp_schema producer = KP_SCHEMA("ProducerState", producer_fields);

static const struct kp_field partition_fields[] = {
    KP_FIELD("PartitionIndex", KP_INT32, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NULL_STRING("ErrorMessage", 0, 0),
    KP_STRUCTS("ActiveProducers", &producer, 0, KP_VMAX),
};
static const struct kp_schema partition = KP_SCHEMA("PartitionResponse", partition_fields);

static const struct kp_field resp_topic_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Partitions", &partition, 0, KP_VMAX),
};
static const struct kp_schema resp_topic = KP_SCHEMA("TopicResponse", resp_topic_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_STRUCTS("Topics", &resp_topic, 0, KP_VMAX),
};
const struct kp_schema kp_describe_producers_response = KP_SCHEMA("DescribeProducersResponse", response_fields);

const struct kp_split_layout kp_split_describe_producers_response = {
    .body = &kp_describe_producers_response,
    .topics = KP_DESCRIBE_PRODUCERS_RESP_TOPICS,
    .topic_name = KP_DESCRIBE_PRODUCERS_RESP_TOPIC_NAME,
    .topic_id = -1,
    .partitions = KP_DESCRIBE_PRODUCERS_RESP_PARTITIONS,
    .index = KP_DESCRIBE_PRODUCERS_RESP_PARTITION_INDEX,
    .error_code = KP_DESCRIBE_PRODUCERS_RESP_ERROR_CODE,
    .throttle_time_ms = KP_DESCRIBE_PRODUCERS_RESP_THROTTLE_TIME_MS,
};

int64_t kp_describe_producers_count(const struct kp_struct *st)
{
	if (!st || st->schema != &kp_describe_producers_request)
		return -1;
	int64_t n = 0;
	const struct kp_list *topics = &st->v[KP_DESCRIBE_PRODUCERS_REQ_TOPICS].a;
	for (int32_t i = 0; i < topics->cnt; i++) {
		int32_t c = topics->items[i].st->v[KP_DESCRIBE_PRODUCERS_REQ_PARTITION_INDEXES].a.cnt;
		n += c > 0 ? c : 0;
	}
	return n;
}

/* Destination d's request: its refs (in message order) grouped by topic. */
static struct kp_struct *kp_dest_request(struct kp_arena *a, const struct kp_struct *req, int16_t ver,
                                         const struct kp_split_dest *dst)
{
	const struct kp_list *topics = &req->v[KP_DESCRIBE_PRODUCERS_REQ_TOPICS].a;
	struct kp_struct *out = kp_struct_new(a, &kp_describe_producers_request, ver);
	struct kp_value *items = kp_arena_alloc(a, (size_t)dst->cnt * sizeof(*items) + 1);
	struct kp_value *idx = kp_arena_alloc(a, (size_t)dst->cnt * sizeof(*idx) + 1);
	if (!out || !items || !idx)
		return NULL;
	int32_t nt = 0;
	for (int32_t r = 0; r < dst->cnt;) {
		int32_t t = dst->refs[r].topic, first = r;
		for (; r < dst->cnt && dst->refs[r].topic == t; r++) {
			const struct kp_list *parts = &topics->items[t].st->v[KP_DESCRIBE_PRODUCERS_REQ_PARTITION_INDEXES].a;
			idx[r] = parts->items[dst->refs[r].partition];
		}
		struct kp_struct *ts = kp_struct_new(a, &req_topic, ver);
		if (!ts)
			return NULL;
		ts->v[KP_DESCRIBE_PRODUCERS_REQ_TOPIC_NAME].s = topics->items[t].st->v[KP_DESCRIBE_PRODUCERS_REQ_TOPIC_NAME].s;
		ts->v[KP_DESCRIBE_PRODUCERS_REQ_PARTITION_INDEXES].a = (struct kp_list){idx + first, r - first};
		items[nt++] = (struct kp_value){.st = ts, .present = true};
	}
	out->v[KP_DESCRIBE_PRODUCERS_REQ_TOPICS].a = (struct kp_list){items, nt};
	return out;
}

bool kp_describe_producers_split(struct kp_arena *a, const struct kp_struct *req, int16_t ver, const int32_t *dest,
                                 size_t n, int ndest, struct kp_split *s)
{
	if (kp_describe_producers_count(req) != (int64_t)n || !kp_split_init(s, ver, ndest))
		return false;
	const struct kp_list *topics = &req->v[KP_DESCRIBE_PRODUCERS_REQ_TOPICS].a;
	size_t k = 0;
	for (int32_t i = 0; i < topics->cnt; i++) {
		const struct kp_struct *ts = topics->items[i].st;
		if (!kp_split_add_topic(a, s, false, ts->v[KP_DESCRIBE_PRODUCERS_REQ_TOPIC_NAME].s))
			return false;
		const struct kp_list *parts = &ts->v[KP_DESCRIBE_PRODUCERS_REQ_PARTITION_INDEXES].a;
		for (int32_t j = 0; j < parts->cnt; j++, k++)
			if (!kp_split_add_partition(a, s, (int32_t)parts->items[j].i, dest[k] < 0 ? -1 : dest[k]))
				return false;
	}
	if (!kp_split_finish(a, s))
		return false;
	for (int d = 0; d < ndest; d++)
		if (s->dests[d].cnt > 0 && !(s->dests[d].request = kp_dest_request(a, req, ver, &s->dests[d])))
			return false;
	return true;
}
