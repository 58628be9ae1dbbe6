/*
 * Rack and region awareness on Fetch, as a consumer behind kstretch sees it:
 *
 *   - its Fetch v11+ requests reach the broker with its rack in RackId, when
 *     it sent none (and exactly as it sent them otherwise);
 *   - a leader in another region answers it with PreferredReadReplica = an
 *     in-sync replica in its own region and no records for that partition,
 *     every other byte as the broker sent it (record data referenced, not
 *     copied);
 *   - a partition whose client came back to the leader stays there for
 *     fetch.prefer.local.backoff.ms.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "api.h"
#include "codec_util.h"
#include "config.h"
#include "message.h"
#include "messages.h"
#include "metrics.h"
#include "rewrite.h"
#include "skip.h"
#include "steer.h"
#include "topology.h"

static struct kx_config cfg;

/* What the topology is built with, from cfg as it is now. */
static const struct kr_topology_rules *rules(void)
{
	static struct kr_topology_rules r;
	kx_config_topology(&cfg, &r);
	return &r;
}
static struct kx_rewriter rw;

static void setup(void)
{
	struct kx_config_error err;
	kx_config_defaults(&cfg);
	cr_assert(kx_config_set(&cfg, "bootstrap.servers", "10.0.0.1:9092", "test", &err));
	cr_assert(kx_config_set(&cfg, "advertised.host", "proxy.local", "test", &err));
	kx_rewriter_init(&rw);
}

static struct kr_steer_table table;

static void teardown(void)
{
	kr_steer_table_free(&table);
	kx_rewriter_free(&rw);
	kx_topology_clear();
}

TestSuite(fetch_steer, .init = setup, .fini = teardown);

static struct kp_span str(const char *s)
{
	return (struct kp_span){(const uint8_t *)s, (int32_t)strlen(s)};
}

static void list(struct kp_arena *a, struct kp_value *v, int32_t n)
{
	v->a.cnt = n;
	v->a.items = kp_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(struct kp_value));
}

static struct kp_struct *new_struct(struct kp_arena *a, const struct kp_schema *s, int16_t ver)
{
	struct kp_struct *st = kp_struct_new(a, s, ver);
	cr_assert_not_null(st);
	return st;
}

/* Every field of a and b (at ver) equal, recursively; path names where not. */
static void assert_same(const struct kp_struct *a, const struct kp_struct *b, int16_t ver, bool flexible,
                        const char *path);

static void assert_same_value(const struct kp_field *f, uint8_t type, const struct kp_value *x,
                              const struct kp_value *y, int16_t ver, bool flexible, const char *path)
{
	switch (type) {
	case KP_UUID:
	case KP_STRING:
	case KP_BYTES:
	case KP_RECORDS:
		cr_assert_eq(x->s.len, y->s.len, "%s.%s: length %d vs %d", path, f->name, x->s.len, y->s.len);
		if (x->s.len > 0)
			cr_assert(memcmp(x->s.ptr, y->s.ptr, (size_t)x->s.len) == 0, "%s.%s differs", path, f->name);
		break;
	case KP_ARRAY:
		cr_assert_eq(x->a.cnt, y->a.cnt, "%s.%s: %d vs %d items", path, f->name, x->a.cnt, y->a.cnt);
		for (int32_t i = 0; i < x->a.cnt; i++) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s.%s[%d]", path, f->name, i);
			if (f->elem == KP_STRUCT)
				assert_same(x->a.items[i].st, y->a.items[i].st, ver, flexible, sub);
			else
				assert_same_value(f, f->elem, &x->a.items[i], &y->a.items[i], ver, flexible, sub);
		}
		break;
	case KP_STRUCT:
		cr_assert_eq(x->st == NULL, y->st == NULL, "%s.%s: null vs not", path, f->name);
		if (x->st) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s.%s", path, f->name);
			assert_same(x->st, y->st, ver, flexible, sub);
		}
		break;
	case KP_FLOAT64: cr_assert_eq(x->f, y->f, "%s.%s", path, f->name); break;
	default:
		cr_assert_eq(x->i, y->i, "%s.%s: %lld vs %lld", path, f->name, (long long)x->i, (long long)y->i);
		break;
	}
}

static void assert_same(const struct kp_struct *a, const struct kp_struct *b, int16_t ver, bool flexible,
                        const char *path)
{
	cr_assert_eq(a->schema, b->schema, "%s: different structs", path);
	for (int i = 0; i < a->schema->nfields; i++) {
		const struct kp_field *f = &a->schema->fields[i];
		if (!kp_field_in_version(f, ver, flexible))
			continue;
		if (f->tag >= 0) {
			cr_assert_eq(a->v[i].present, b->v[i].present, "%s.%s: tagged field present in one", path,
			             f->name);
			if (!a->v[i].present)
				continue;
		}
		assert_same_value(f, f->type, &a->v[i], &b->v[i], ver, flexible, path);
	}
	cr_assert_eq(a->unknown_cnt, b->unknown_cnt, "%s: unknown tags", path);
}

/* ---- RackId injection -------------------------------------------------- */

static const uint8_t topic_id_a[16] = {0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t topic_id_b[16] = {0xb2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t dir_id[16] = {0xd1, 0xd2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* A consumer's Fetch request at ver with every field of that version set. */
static struct kp_struct *fetch_request(struct kp_arena *a, int16_t ver, const char *rack)
{
	const struct kp_schema *req = &kp_fetch_request;
	const struct kp_schema *topic = req->fields[KP_FETCH_REQ_TOPICS].sub;
	const struct kp_schema *part = topic->fields[KP_FETCH_TOPIC_PARTITIONS].sub;
	const struct kp_schema *forgotten = req->fields[kp_field_index(req, "ForgottenTopicsData")].sub;
	const struct kp_schema *rstate = req->fields[KP_FETCH_REQ_REPLICA_STATE].sub;
	struct kp_struct *st = new_struct(a, req, ver);
	if (ver >= 12) {
		st->v[kp_field_index(req, "ClusterId")].s = str("cluster-x");
		st->v[kp_field_index(req, "ClusterId")].present = true;
	}
	if (ver >= 15) {
		struct kp_struct *rs = new_struct(a, rstate, ver);
		rs->v[KP_FETCH_REPLICA_STATE_REPLICA_ID].i = -1;
		st->v[KP_FETCH_REQ_REPLICA_STATE].st = rs;
		st->v[KP_FETCH_REQ_REPLICA_STATE].present = true;
	}
	st->v[KP_FETCH_REQ_REPLICA_ID].i = -1;
	st->v[kp_field_index(req, "MaxWaitMs")].i = 500;
	st->v[kp_field_index(req, "MinBytes")].i = 1;
	st->v[kp_field_index(req, "MaxBytes")].i = 52428800;
	st->v[kp_field_index(req, "IsolationLevel")].i = 1;
	st->v[KP_FETCH_REQ_SESSION_ID].i = 123456;
	st->v[KP_FETCH_REQ_SESSION_EPOCH].i = 7;
	list(a, &st->v[KP_FETCH_REQ_TOPICS], 2);
	for (int t = 0; t < 2; t++) {
		struct kp_struct *ts = new_struct(a, topic, ver);
		ts->v[KP_FETCH_TOPIC_TOPIC].s = str(t ? "payments" : "orders");
		ts->v[KP_FETCH_TOPIC_TOPIC_ID].s = (struct kp_span){t ? topic_id_b : topic_id_a, 16};
		list(a, &ts->v[KP_FETCH_TOPIC_PARTITIONS], 3);
		for (int p = 0; p < 3; p++) {
			struct kp_struct *ps = new_struct(a, part, ver);
			ps->v[KP_FETCH_PART_PARTITION].i = p * 2 + t;
			ps->v[kp_field_index(part, "CurrentLeaderEpoch")].i = 11 + p;
			ps->v[kp_field_index(part, "FetchOffset")].i = 1000000 + p;
			ps->v[kp_field_index(part, "LastFetchedEpoch")].i = 9;
			ps->v[kp_field_index(part, "LogStartOffset")].i = -1;
			ps->v[kp_field_index(part, "PartitionMaxBytes")].i = 1048576;
			if (ver >= 17 && p == 1) {
				ps->v[kp_field_index(part, "ReplicaDirectoryId")].s = (struct kp_span){dir_id, 16};
				ps->v[kp_field_index(part, "ReplicaDirectoryId")].present = true;
			}
			if (ver >= 18 && p == 2) {
				ps->v[kp_field_index(part, "HighWatermark")].i = 999;
				ps->v[kp_field_index(part, "HighWatermark")].present = true;
			}
			ts->v[KP_FETCH_TOPIC_PARTITIONS].a.items[p].st = ps;
		}
		st->v[KP_FETCH_REQ_TOPICS].a.items[t].st = ts;
	}
	struct kp_value *fv = &st->v[kp_field_index(req, "ForgottenTopicsData")];
	list(a, fv, 1);
	struct kp_struct *fs = new_struct(a, forgotten, ver);
	fs->v[0].s = str("old-topic");
	fs->v[1].s = (struct kp_span){topic_id_b, 16};
	list(a, &fs->v[2], 2);
	fs->v[2].a.items[0].i = 5;
	fs->v[2].a.items[1].i = 6;
	fv->a.items[0].st = fs;
	st->v[KP_FETCH_REQ_RACK_ID].s = str(rack);
	return st;
}

/* Header + body, as a client sends it (without the frame size). */
static uint8_t *encode_request(int16_t ver, const struct kp_struct *body, size_t *len)
{
	struct kp_writer w;
	struct kp_request_header h = {.api_key = KP_API_FETCH,
	                              .api_version = ver,
	                              .correlation_id = 77,
	                              .client_id = str("consumer-1"),
	                              .header_version = kp_request_header_version(KP_API_FETCH, ver)};
	kp_writer_init(&w);
	kp_request_header_write(&w, &h);
	kp_encode(&w, body, ver, kp_api_flexible(kp_api_get(KP_API_FETCH), ver), -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	return out;
}

Test(fetch_steer, an_empty_rack_id_gets_the_clients_rack_at_every_version_11_to_18)
{
	for (int16_t ver = 11; ver <= 18; ver++) {
		struct kp_arena a;
		size_t len, want_len, got_len;
		kp_arena_init(&a, 0);
		bool flexible = kp_api_flexible(kp_api_get(KP_API_FETCH), ver);
		struct kp_struct *orig = fetch_request(&a, ver, "");
		uint8_t *in = encode_request(ver, orig, &len);
		uint8_t *want = encode_request(ver, fetch_request(&a, ver, "us-east-1a"), &want_len);

		uint64_t injected = KX_METRIC_VALUE(fetch_rack_injected);
		cr_assert_eq(kx_fetch_inject_rack(&rw, in, len, "us-east-1a"), KX_INJECT_DONE, "v%d: %s", ver,
		             kp_error_name(rw.cur.err));
		cr_assert_eq(KX_METRIC_VALUE(fetch_rack_injected), injected + 1);

		/* Two references to the request around the new RackId: nothing else copied. */
		kp_writer_finish(&rw.out);
		/* v11: RackId is the last byte of the request; v12+: the tagged fields follow it. */
		cr_assert_eq(rw.out.nsegs, ver >= 12 ? 3u : 2u, "v%d: %zu segments", ver, rw.out.nsegs);
		cr_assert_eq(rw.out.segs[0].ref, in);
		cr_assert_null(rw.out.segs[1].ref);
		cr_assert_eq(rw.out.segs[1].len, (flexible ? 1u : 2u) + 10u, "only the RackId is written");
		if (ver >= 12) {
			cr_assert_not_null(rw.out.segs[2].ref);
			cr_assert_eq(rw.out.segs[2].ref + rw.out.segs[2].len, in + len);
		}

		uint8_t *got = kp_writer_flatten(&rw.out, &got_len);
		cr_assert_eq(got_len, want_len, "v%d", ver);
		cr_assert(memcmp(got, want, got_len) == 0, "v%d: not the codec's encoding of the same request", ver);

		/* Decoded: every field as the client sent it, RackId the client's rack. */
		struct kp_cursor c;
		struct kp_message m;
		kp_cursor_init(&c, got, got_len);
		cr_assert(kp_message_decode(&a, &c, true, -1, -1, &m), "v%d: %s at %zu", ver, kp_error_name(c.err),
		          c.err_pos);
		cr_assert_eq(m.req.correlation_id, 77);
		cr_assert(span_is(m.req.client_id, "consumer-1"));
		cr_assert(span_is(m.body->v[KP_FETCH_REQ_RACK_ID].s, "us-east-1a"), "v%d", ver);
		orig->v[KP_FETCH_REQ_RACK_ID].s = str("us-east-1a");
		char path[32];
		snprintf(path, sizeof(path), "FetchRequest v%d", ver);
		assert_same(orig, m.body, ver, flexible, path);
		free(in);
		free(want);
		free(got);
		kp_arena_free(&a);
	}
}

Test(fetch_steer, a_rack_id_the_client_set_is_never_changed)
{
	for (int16_t ver = 11; ver <= 18; ver++) {
		struct kp_arena a;
		size_t len;
		kp_arena_init(&a, 0);
		uint8_t *in = encode_request(ver, fetch_request(&a, ver, "eu-west-1b"), &len);
		cr_assert_eq(kx_fetch_inject_rack(&rw, in, len, "us-east-1a"), KX_INJECT_UNCHANGED, "v%d", ver);
		cr_assert_eq(kp_writer_size(&rw.out), 0);
		cr_assert_not(rw.changed);
		free(in);
		kp_arena_free(&a);
	}
}

Test(fetch_steer, requests_without_a_rack_id_pass_unchanged)
{
	struct kp_arena a;
	size_t len;
	kp_arena_init(&a, 0);
	uint8_t *in = encode_request(10, fetch_request(&a, 10, ""), &len);
	cr_assert_eq(kx_fetch_inject_rack(&rw, in, len, "us-east-1a"), KX_INJECT_UNCHANGED, "v10 has no RackId");
	free(in);
	in = encode_request(12, fetch_request(&a, 12, ""), &len);
	cr_assert_eq(kx_fetch_inject_rack(&rw, in, len, ""), KX_INJECT_UNCHANGED, "no rack known");
	cr_assert_eq(kx_fetch_inject_rack(&rw, in, len, NULL), KX_INJECT_UNCHANGED);
	free(in);
	kp_arena_free(&a);

	struct kx_client_view v = {.rack = "us-a", .region = "us"};
	cr_assert(kx_inject_wanted(&cfg, &v, KP_API_FETCH, 11));
	cr_assert_not(kx_inject_wanted(&cfg, &v, KP_API_FETCH, 10));
	cr_assert_not(kx_inject_wanted(&cfg, &v, KP_API_PRODUCE, 11));
	cr_assert_not(kx_inject_wanted(&cfg, NULL, KP_API_FETCH, 11));
	v.rack = "";
	cr_assert_not(kx_inject_wanted(&cfg, &v, KP_API_FETCH, 11));
	v.rack = "us-a";
	cfg.fetch_rack_inject = false;
	cr_assert_not(kx_inject_wanted(&cfg, &v, KP_API_FETCH, 11));
}

Test(fetch_steer, a_malformed_request_is_refused_and_never_read_past_its_end)
{
	struct kp_arena a;
	size_t len;
	kp_arena_init(&a, 0);
	for (int16_t ver = 11; ver <= 18; ver++) {
		uint8_t *in = encode_request(ver, fetch_request(&a, ver, ""), &len);
		for (size_t cut = 0; cut < len; cut++) {
			uint8_t *copy = malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees an over-read */
			memcpy(copy, in, cut);
			cr_assert_eq(kx_fetch_inject_rack(&rw, copy, cut, "us-a"), KX_INJECT_FAILED,
			             "v%d: cut at %zu of %zu bytes", ver, cut, len);
			cr_assert_neq(rw.cur.err, KP_OK);
			free(copy);
		}
		free(in);
	}
	const uint8_t bad[] = {0, 1, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0x7f, 0xff};
	cr_assert_eq(kx_fetch_inject_rack(&rw, bad, sizeof(bad), "us-a"), KX_INJECT_FAILED);
	cr_assert_neq(rw.cur.err, KP_OK);
	kp_arena_free(&a);
}

/* ---- PreferredReadReplica ---------------------------------------------- */

/*
 * The cluster: 1=eu-a 2=us-a 3=ap-a 4=eu-b 5=us-b. Topic orders (id
 * topic_id_a), partitions as in `parts` below; the client is in us-a, on the
 * connection to node 1 (eu).
 */
struct part_case {
	int32_t leader;      /* what the topology says */
	int32_t isr[3];      /* 0 = none */
	int16_t error;       /* in the response */
	int32_t preferred;   /* in the response (-1: none) */
	int32_t redirect_to; /* expected (-1: untouched) */
};

static const struct part_case parts[] = {
    {1, {1, 2, 3}, 0, -1, 2},  /* 0: the us-a replica, in the client's own rack */
    {1, {1, 3, 0}, 0, -1, -1}, /* 1: no in-sync replica in us */
    {1, {1, 5, 3}, 0, -1, 5},  /* 2: us-b: another rack of the region */
    {1, {1, 2, 3}, 1, -1, -1}, /* 3: an error: left for the client to handle */
    {2, {2, 1, 3}, 0, -1, -1}, /* 4: node 1 is not its leader (a follower serving it, or stale) */
    {1, {1, 2, 3}, 0, 3, -1},  /* 5: the broker chose a replica itself */
};
#define NPARTS ((int)(sizeof(parts) / sizeof(parts[0])))

static void publish_cluster(void)
{
	static const char *const racks[] = {"eu-a", "us-a", "ap-a", "eu-b", "us-b"};
	struct kx_broker b[5];
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 5; i++) {
		b[i].node_id = i + 1;
		snprintf(b[i].host, sizeof(b[i].host), "kafka-%d.internal", i + 1);
		b[i].port = 9092;
		strcpy(b[i].rack, racks[i]);
	}
	kx_topology_publish(kx_topology_new(rules(), b, 5));
	struct kx_topic *tp = kx_topic_new("orders", 6, topic_id_a, NPARTS, NPARTS * 6);
	for (int p = 0; p < NPARTS; p++) {
		int32_t isr[3];
		size_t n = 0;
		for (int k = 0; k < 3; k++)
			if (parts[p].isr[k])
				isr[n++] = parts[p].isr[k];
		cr_assert(kx_topic_add_partition(tp, p, parts[p].leader, 3, 0, isr, n, isr, n));
	}
	kx_topic_finish(tp);
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, &tp, 1));
}

static uint8_t records[NPARTS + 1][700];

/* What node 1 answers: orders' partitions with records, and one partition of a topic the topology does not know. */
static struct kp_struct *fetch_response(struct kp_arena *a, int16_t ver)
{
	const struct kp_schema *resp = &kp_fetch_response;
	const struct kp_schema *topic = resp->fields[KP_FETCH_RESP_RESPONSES].sub;
	const struct kp_schema *part = topic->fields[KP_FETCH_RESP_TOPIC_PARTITIONS].sub;
	const struct kp_schema *aborted = part->fields[kp_field_index(part, "AbortedTransactions")].sub;
	const struct kp_schema *leader = part->fields[KP_FETCH_RESP_PART_CURRENT_LEADER].sub;
	const struct kp_schema *ep = resp->fields[KP_FETCH_RESP_NODE_ENDPOINTS].sub;
	for (int p = 0; p <= NPARTS; p++)
		memset(records[p], 0x40 + p, sizeof(records[p]));
	struct kp_struct *st = new_struct(a, resp, ver);
	st->v[kp_field_index(resp, "SessionId")].i = 99;
	list(a, &st->v[KP_FETCH_RESP_RESPONSES], 2);
	for (int t = 0; t < 2; t++) {
		int n = t ? 1 : NPARTS;
		struct kp_struct *ts = new_struct(a, topic, ver);
		ts->v[KP_FETCH_TOPIC_TOPIC].s = str(t ? "unknown-topic" : "orders");
		ts->v[KP_FETCH_TOPIC_TOPIC_ID].s = (struct kp_span){t ? topic_id_b : topic_id_a, 16};
		list(a, &ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS], n);
		for (int p = 0; p < n; p++) {
			struct kp_struct *ps = new_struct(a, part, ver);
			ps->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i = p;
			ps->v[KP_FETCH_RESP_PART_ERROR_CODE].i = t ? 0 : parts[p].error;
			ps->v[kp_field_index(part, "HighWatermark")].i = 5000 + p;
			ps->v[kp_field_index(part, "LastStableOffset")].i = 4990 + p;
			ps->v[kp_field_index(part, "LogStartOffset")].i = 10;
			ps->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i = t ? -1 : parts[p].preferred;
			ps->v[KP_FETCH_RESP_PART_RECORDS].s = (struct kp_span){records[t ? NPARTS : p], 600 + p};
			if (p == 0) { /* a transactional partition */
				struct kp_value *av = &ps->v[kp_field_index(part, "AbortedTransactions")];
				list(a, av, 1);
				struct kp_struct *as = new_struct(a, aborted, ver);
				as->v[0].i = 4242;
				as->v[1].i = 4000;
				av->a.items[0].st = as;
			}
			if (ver >= 12 && p == 2) {
				struct kp_struct *ls = new_struct(a, leader, ver);
				ls->v[KP_FETCH_LEADER_ID].i = 1;
				ls->v[KP_FETCH_LEADER_EPOCH].i = 3;
				ps->v[KP_FETCH_RESP_PART_CURRENT_LEADER].st = ls;
				ps->v[KP_FETCH_RESP_PART_CURRENT_LEADER].present = true;
			}
			ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a.items[p].st = ps;
		}
		st->v[KP_FETCH_RESP_RESPONSES].a.items[t].st = ts;
	}
	if (ver >= 16) {
		struct kp_value *nv = &st->v[KP_FETCH_RESP_NODE_ENDPOINTS];
		nv->present = true;
		list(a, nv, 1);
		struct kp_struct *e = new_struct(a, ep, ver);
		e->v[KP_FETCH_ENDPOINT_NODE_ID].i = 1;
		e->v[KP_FETCH_ENDPOINT_HOST].s = str("kafka-1.internal");
		e->v[KP_FETCH_ENDPOINT_PORT].i = 9092;
		e->v[KP_FETCH_ENDPOINT_RACK].s = str("eu-a");
		nv->a.items[0].st = e;
	}
	return st;
}

static uint8_t *encode_response(int16_t ver, const struct kp_struct *body, size_t *len)
{
	struct kp_writer w;
	struct kp_response_header h = {.correlation_id = 42,
	                               .header_version = kp_response_header_version(KP_API_FETCH, ver)};
	kp_writer_init(&w);
	kp_response_header_write(&w, &h);
	kp_encode(&w, body, ver, kp_api_flexible(kp_api_get(KP_API_FETCH), ver), -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	return out;
}

static struct kx_client_view client_view(struct kx_topology *t, int64_t now)
{
	return (struct kx_client_view){
	    .rack = "us-a", .region = "us", .broker_id = 1, .topology = t, .steer = &table, .now_ms = now};
}

/* The buffered frame in one-byte pieces, as the worst socket read would leave it. */
static enum kx_fetch_scan scan(struct kx_client_view *v, int16_t ver, const uint8_t *in, size_t len)
{
	struct iovec *iov = calloc(len, sizeof(*iov));
	for (size_t i = 0; i < len; i++)
		iov[i] = (struct iovec){(void *)(in + i), 1};
	enum kx_fetch_scan r = kx_fetch_response_scan(&cfg, v, ver, iov, (int)len, len);
	free(iov);
	return r;
}

/* Decodes what the client gets. */
static struct kp_message client_gets(struct kp_arena *a, int16_t ver, uint8_t **out, size_t *n)
{
	*out = kp_writer_flatten(&rw.out, n);
	struct kp_cursor c;
	struct kp_message m;
	kp_cursor_init(&c, *out, *n);
	cr_assert(kp_message_decode(a, &c, false, KP_API_FETCH, ver, &m), "v%d output: %s at %zu", ver,
	          kp_error_name(c.err), c.err_pos);
	cr_assert_eq(m.resp.correlation_id, 42);
	return m;
}

static void steer_at(int16_t ver)
{
	struct kp_arena a;
	size_t len, n;
	uint8_t *out;
	kp_arena_init(&a, 0);
	publish_cluster();
	kr_steer_table_init(&table);
	struct kx_topology *t = kx_topology_get();
	struct kx_client_view v = client_view(t, 1000);
	bool flexible = kp_api_flexible(kp_api_get(KP_API_FETCH), ver);

	cr_assert(kx_steer_wanted(&cfg, &v, ver));
	cr_assert(kx_rewrite_needed_for(&cfg, &v, KP_API_FETCH, ver));
	uint8_t *in = encode_response(ver, fetch_response(&a, ver), &len);
	cr_assert_eq(scan(&v, ver, in, len), KX_FETCH_REWRITE, "v%d", ver);
	cr_assert_eq(table.used, 0, "the scan decides nothing");

	uint64_t redirects = KX_METRIC_VALUE(fetch_redirects);
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len), "v%d: %s at %zu reading %s", ver,
	          kp_error_name(rw.cur.err), rw.cur.err_pos, rw.cur.err_field ? rw.cur.err_field : "?");
	cr_assert_eq(rw.redirects, 2, "v%d", ver);
	cr_assert_eq(KX_METRIC_VALUE(fetch_redirects), redirects + 2);
	cr_assert_eq(table.used, 2, "both redirects remembered");

	/* Record data of the partitions that keep theirs is referenced from the input. */
	kp_writer_finish(&rw.out);
	size_t owned = 0, referenced = 0;
	for (size_t i = 0; i < rw.out.nsegs; i++) {
		const struct kp_segment *s = &rw.out.segs[i];
		if (!s->ref)
			owned += s->len;
		else {
			cr_assert(s->ref >= in && s->ref + s->len <= in + len, "a reference outside the response");
			referenced += s->len;
		}
	}
	size_t kept_records = 0;
	for (int p = 0; p < NPARTS; p++)
		kept_records += parts[p].redirect_to < 0 ? 600u + (unsigned)p : 0u;
	kept_records += 600; /* the unknown topic's */
	cr_assert_eq(referenced, kept_records, "v%d: every kept record byte referenced, nothing else", ver);
	cr_assert_lt(owned, 400u, "v%d: %zu bytes written: only the structure around the records", ver, owned);

	/* What the client reads: the input, but for the redirected partitions (and v16+ NodeEndpoints). */
	struct kp_message got = client_gets(&a, ver, &out, &n);
	struct kp_cursor c;
	struct kp_message want;
	kp_cursor_init(&c, in, len);
	cr_assert(kp_message_decode(&a, &c, false, KP_API_FETCH, ver, &want));
	const struct kp_list *pl =
	    &want.body->v[KP_FETCH_RESP_RESPONSES].a.items[0].st->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a;
	for (int p = 0; p < NPARTS; p++) {
		const struct kp_struct *gp =
		    got.body->v[KP_FETCH_RESP_RESPONSES].a.items[0].st->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a.items[p].st;
		int32_t expect_pref = parts[p].redirect_to >= 0 ? parts[p].redirect_to : parts[p].preferred;
		cr_assert_eq(gp->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i, expect_pref, "v%d partition %d", ver,
		             p);
		if (parts[p].redirect_to >= 0) {
			cr_assert_eq(gp->v[KP_FETCH_RESP_PART_RECORDS].s.len, 0, "v%d partition %d: no records", ver,
			             p);
			struct kp_struct *wp = pl->items[p].st;
			wp->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i = parts[p].redirect_to;
			wp->v[KP_FETCH_RESP_PART_RECORDS].s = (struct kp_span){NULL, 0};
		}
	}
	if (ver >= 16) {
		struct kp_struct *e = want.body->v[KP_FETCH_RESP_NODE_ENDPOINTS].a.items[0].st;
		e->v[KP_FETCH_ENDPOINT_HOST].s = str("proxy.local");
		e->v[KP_FETCH_ENDPOINT_PORT].i = 19001;
	}
	char path[32];
	snprintf(path, sizeof(path), "FetchResponse v%d", ver);
	assert_same(want.body, got.body, ver, flexible, path);

	/* And byte for byte what the codec writes for that. */
	struct kp_writer w;
	size_t wlen;
	kp_writer_init(&w);
	kp_response_header_write(&w, &want.resp);
	kp_encode(&w, want.body, ver, flexible, -1);
	uint8_t *wb = kp_writer_flatten(&w, &wlen);
	cr_assert_eq(wlen, n);
	cr_assert(memcmp(wb, out, n) == 0, "v%d", ver);
	free(wb);
	kp_writer_free(&w);

	free(out);
	free(in);
	kx_topology_put(t);
	kp_arena_free(&a);
}

Test(fetch_steer, a_remote_leader_points_the_client_at_its_region_v11)
{
	steer_at(11);
}

Test(fetch_steer, a_remote_leader_points_the_client_at_its_region_v12)
{
	steer_at(12);
}

Test(fetch_steer, a_remote_leader_points_the_client_at_its_region_v13_topic_ids)
{
	steer_at(13);
}

Test(fetch_steer, a_remote_leader_points_the_client_at_its_region_v16_node_endpoints)
{
	steer_at(16);
}

Test(fetch_steer, a_remote_leader_points_the_client_at_its_region_v17)
{
	steer_at(17);
}

Test(fetch_steer, a_partition_whose_client_comes_back_stays_with_the_leader_for_the_backoff)
{
	struct kp_arena a;
	size_t len;
	const int16_t ver = 13;
	kp_arena_init(&a, 0);
	publish_cluster();
	kr_steer_table_init(&table);
	struct kx_topology *t = kx_topology_get();
	uint8_t *in = encode_response(ver, fetch_response(&a, ver), &len);

	struct kx_client_view v = client_view(t, 1000);
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len));
	cr_assert_eq(rw.redirects, 2);

	/* 2 s later partitions 0 and 2 are fetched from node 1 again: the followers failed the client. */
	uint64_t fallbacks = KX_METRIC_VALUE(fetch_redirect_fallbacks);
	v.now_ms = 3000;
	cr_assert_eq(scan(&v, ver, in, len), KX_FETCH_PASS, "nothing to redirect while backing off");
	cr_assert_eq(KX_METRIC_VALUE(fetch_redirect_fallbacks), fallbacks + 2, "counted by the scan");
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len));
	cr_assert_eq(rw.redirects, 0);
	cr_assert_eq(rw.fallbacks, 0, "already counted");
	cr_assert_not(rw.changed);
	kp_writer_finish(&rw.out);
	cr_assert_eq(rw.out.nsegs, 1, "the response as it came, referenced");
	cr_assert_eq(rw.out.segs[0].ref, in);

	v.now_ms = 32999; /* still within fetch.prefer.local.backoff.ms (30 s) of the return */
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len));
	cr_assert_eq(rw.redirects, 0);

	v.now_ms = 33000;
	cr_assert_eq(scan(&v, ver, in, len), KX_FETCH_REWRITE);
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len));
	cr_assert_eq(rw.redirects, 2, "redirected again once the backoff is over");

	/* Without a scan first, the rewrite notes the fallback itself. */
	v.now_ms = 34000;
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len));
	cr_assert_eq(rw.fallbacks, 2);
	cr_assert_eq(rw.redirects, 0);
	free(in);
	kx_topology_put(t);
	kp_arena_free(&a);
}

/* Topic "wide": WIDE partitions, all led by node 1 (eu) with node 2 (us-a) in sync. */
#define WIDE 300
static const uint8_t topic_id_wide[16] = {0xc3, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void publish_wide(void)
{
	publish_cluster();
	struct kx_topic *tp = kx_topic_new("wide", 4, topic_id_wide, WIDE, (size_t)WIDE * 4);
	int32_t isr[2] = {1, 2};
	for (int p = 0; p < WIDE; p++)
		cr_assert(kx_topic_add_partition(tp, p, 1, 3, 0, isr, 2, isr, 2));
	kx_topic_finish(tp);
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, &tp, 1));
}

static uint8_t *wide_response(struct kp_arena *a, int16_t ver, size_t *len)
{
	static uint8_t rec[16];
	const struct kp_schema *resp = &kp_fetch_response;
	const struct kp_schema *topic = resp->fields[KP_FETCH_RESP_RESPONSES].sub;
	const struct kp_schema *part = topic->fields[KP_FETCH_RESP_TOPIC_PARTITIONS].sub;
	memset(rec, 0x5a, sizeof(rec));
	struct kp_struct *st = new_struct(a, resp, ver);
	list(a, &st->v[KP_FETCH_RESP_RESPONSES], 1);
	struct kp_struct *ts = new_struct(a, topic, ver);
	ts->v[KP_FETCH_TOPIC_TOPIC].s = str("wide");
	ts->v[KP_FETCH_TOPIC_TOPIC_ID].s = (struct kp_span){topic_id_wide, 16};
	list(a, &ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS], WIDE);
	for (int p = 0; p < WIDE; p++) {
		struct kp_struct *ps = new_struct(a, part, ver);
		ps->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i = p;
		ps->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i = -1;
		ps->v[KP_FETCH_RESP_PART_RECORDS].s = (struct kp_span){rec, sizeof(rec)};
		ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a.items[p].st = ps;
	}
	st->v[KP_FETCH_RESP_RESPONSES].a.items[0].st = ts;
	return encode_response(ver, st, len);
}

/*
 * A consumer of WIDE partitions (more than a fixed memory of 64 held) led in
 * eu, whose us follower fails it: after the redirect every partition comes
 * back to the leader and stays there for the backoff; none is redirected
 * again round after round (which would keep it from ever being read).
 */
Test(fetch_steer, with_a_failing_replica_no_partition_is_redirected_again_whatever_their_number)
{
	struct kp_arena a;
	size_t len;
	kp_arena_init(&a, 0);
	publish_wide();
	kr_steer_table_init(&table);
	struct kx_topology *t = kx_topology_get();
	for (int16_t ver = 12; ver <= 13; ver++) { /* keyed by name, then by topic id */
		uint8_t *in = wide_response(&a, ver, &len);
		struct kx_client_view v = client_view(t, 1000 + ver * 100000);
		cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len));
		cr_assert_eq(rw.redirects, WIDE, "v%d: every partition to the us replica", ver);

		uint64_t fallbacks = KX_METRIC_VALUE(fetch_redirect_fallbacks);
		for (int round = 1; round <= 20; round++) { /* the client fetches them all from the leader again */
			v.now_ms += 1000;
			cr_assert_eq(scan(&v, ver, in, len), KX_FETCH_PASS, "v%d round %d: nothing to redirect", ver,
			             round);
			cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len));
			cr_assert_eq(rw.redirects, 0, "v%d round %d: %d partitions redirected again", ver, round,
			             rw.redirects);
			cr_assert_not(rw.changed);
		}
		cr_assert_eq(KX_METRIC_VALUE(fetch_redirect_fallbacks), fallbacks + WIDE, "v%d: each fallback counted once",
		             ver);
		v.now_ms += 30000; /* the backoff is over */
		cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_FETCH, ver, in, len));
		cr_assert_eq(rw.redirects, WIDE, "v%d: tried again after the backoff", ver);
		free(in);
	}
	kx_topology_put(t);
	kp_arena_free(&a);
}

Test(fetch_steer, no_steering_where_it_cannot_help)
{
	struct kp_arena a;
	size_t len;
	kp_arena_init(&a, 0);
	publish_cluster();
	kr_steer_table_init(&table);
	struct kx_topology *t = kx_topology_get();
	struct kx_client_view v = client_view(t, 1000);

	v.broker_id = 2; /* the client's own region */
	cr_assert_not(kx_steer_wanted(&cfg, &v, 13));
	cr_assert_not(kx_rewrite_needed_for(&cfg, &v, KP_API_FETCH, 13));
	cr_assert(kx_rewrite_needed_for(&cfg, &v, KP_API_FETCH, 16), "v16: NodeEndpoints, as before");
	v.broker_id = 1;
	cr_assert_not(kx_steer_wanted(&cfg, &v, 10), "v10: no PreferredReadReplica");
	cr_assert_not(kx_steer_wanted(&cfg, NULL, 13));
	v.region = "";
	cr_assert_not(kx_steer_wanted(&cfg, &v, 13), "client region unknown");
	v.region = "us";
	v.topology = NULL;
	cr_assert_not(kx_steer_wanted(&cfg, &v, 13));
	v.topology = t;
	v.broker_id = 9;
	cr_assert_not(kx_steer_wanted(&cfg, &v, 13), "a broker the topology does not know");
	v.broker_id = 1;
	cfg.fetch_prefer_local = false;
	cr_assert_not(kx_steer_wanted(&cfg, &v, 13));
	cfg.fetch_prefer_local = true;
	cr_assert(kx_steer_wanted(&cfg, &v, 13));

	/* A response from the client's own region: the scan lets it pass. */
	uint8_t *in = encode_response(13, fetch_response(&a, 13), &len);
	v.broker_id = 2;
	cr_assert_eq(scan(&v, 13, in, len), KX_FETCH_PASS);
	free(in);
	in = encode_response(16, fetch_response(&a, 16), &len);
	cr_assert_eq(scan(&v, 16, in, len), KX_FETCH_REWRITE, "NodeEndpoints");
	cr_assert_eq(scan(NULL, 16, in, len), KX_FETCH_REWRITE);
	free(in);
	kx_topology_put(t);
	kp_arena_free(&a);
}

Test(fetch_steer, the_scan_fails_on_a_cut_response_instead_of_reading_past_it)
{
	struct kp_arena a;
	size_t len;
	kp_arena_init(&a, 0);
	publish_cluster();
	kr_steer_table_init(&table);
	struct kx_topology *t = kx_topology_get();
	struct kx_client_view v = client_view(t, 1000);
	for (int16_t ver = 11; ver <= 17; ver++) {
		uint8_t *in = encode_response(ver, fetch_response(&a, ver), &len);
		for (size_t cut = 0; cut < len; cut += 7) {
			uint8_t *copy = malloc(cut ? cut : 1);
			memcpy(copy, in, cut);
			struct iovec iov = {copy, cut};
			enum kx_fetch_scan r = kx_fetch_response_scan(&cfg, &v, ver, &iov, 1, cut);
			/* the first redirectable partition comes before its records end */
			cr_assert(r == KX_FETCH_MALFORMED || r == KX_FETCH_REWRITE, "v%d cut at %zu", ver, cut);
			free(copy);
		}
		free(in);
	}
	kx_topology_put(t);
	kp_arena_free(&a);
}
