/*
 * The config APIs (protocol/configs.c): hand-written vectors from Kafka's
 * definitions decode and re-encode byte for byte at every version and survive
 * every truncation and hostile length; and regional mode's broker-id rewrite:
 * a broker resource naming a regional node goes to its real broker by the real
 * id and comes back named by the node, one naming anything else is answered
 * INVALID_REQUEST in the client's order, and a described broker's identity
 * configs show the node, never the real broker.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "configs.h"
#include "header.h"
#include "writer.h"

static uint8_t buf[4096];

/* DescribeConfigs v4 request (flexible): TOPIC "t" [keys null], BROKER "2" [keys "node.id"], synonyms, docs. */
static const char dc_v4_request[] = "0020 0004 00000007 0004 6b636174 00"     /* header v2: key 32 v4 corr 7 */
                                    "03"                                      /* Resources: 2 */
                                    "02 02 74 00 00"                          /* TOPIC "t", keys null */
                                    "04 02 32 02 08 6e6f64652e6964 00"        /* BROKER "2", ["node.id"] */
                                    "01 01 00";                               /* synonyms, docs */
/* DescribeConfigs v0 request: BROKER "103" every key. */
static const char dc_v0_request[] = "0020 0000 00000001 0004 6b636174"
                                    "00000001 04 0003 313033 ffffffff";
/* DescribeConfigs v4 response: BROKER "103" [node.id=103 (synonym node.id=103), broker.rack=r1, x=y]. */
static const char dc_v4_response[] = "00000007 00"                                    /* header v1 */
                                     "00000000"                                       /* ThrottleTimeMs */
                                     "02"                                             /* Results: 1 */
                                     "0000 00 04 04 313033"                           /* ok, null msg, BROKER "103" */
                                     "04"                                             /* Configs: 3 */
                                     "08 6e6f64652e6964 04 313033 01 05 00"           /* node.id = "103" RO, src 5 */
                                     "02 08 6e6f64652e6964 04 313033 05 00"           /* synonyms: node.id=103 */
                                     "01 00 00"                                       /* ConfigType, doc null */
                                     "0c 62726f6b65722e7261636b 03 7231 00 05 00"     /* broker.rack = "r1" */
                                     "01 01 00 00"                                    /* no synonyms */
                                     "02 78 02 79 00 05 00 01 00 00 00"               /* x = "y" */
                                     "00"                                             /* result tags */
                                     "00";
/* IncrementalAlterConfigs v1 request: BROKER "2" [x SET "1"], validate false. */
static const char iac_v1_request[] = "002c 0001 00000009 0004 6b636174 00"
                                     "02 04 02 32 02 02 78 00 02 31 00 00 00 00";
/* AlterConfigs v0 request: TOPIC "t" [retention.ms = "1"], BROKER "" [], validate true. */
static const char ac_v0_request[] = "0021 0000 00000003 0004 6b636174"
                                    "00000002 02 0001 74 00000001 000c 726574656e74696f6e2e6d73 0001 31"
                                    "04 0000 00000000 01";
/* AlterConfigs v2 response: TOPIC "t" ok, BROKER "103" error 42 "no". */
static const char ac_v2_response[] = "00000003 00 00000000 03"
                                     "0000 00 02 02 74 00"
                                     "002a 03 6e6f 04 04 313033 00 00";

Test(configs, field_indexes_used_by_routing_match_the_tables)
{
	const struct kp_schema *reqs[] = {&kp_describe_configs_request, &kp_alter_configs_request,
	                                  &kp_incremental_alter_configs_request};
	const struct kp_schema *resps[] = {&kp_describe_configs_response, &kp_alter_configs_response,
	                                   &kp_incremental_alter_configs_response};
	for (int i = 0; i < 3; i++) {
		const struct kp_schema *r = sub(reqs[i], KP_CONFIGS_REQ_RESOURCES);
		cr_assert_eq(kp_field_index(r, "ResourceType"), KP_CONFIGS_RES_TYPE);
		cr_assert_eq(kp_field_index(r, "ResourceName"), KP_CONFIGS_RES_NAME);
		cr_assert_eq(kp_field_index(resps[i], "ThrottleTimeMs"), KP_CONFIGS_RESP_THROTTLE_TIME_MS);
		const struct kp_schema *x = sub(resps[i], KP_CONFIGS_RESP_RESULTS);
		cr_assert_eq(kp_field_index(x, "ErrorCode"), KP_CONFIGS_RESULT_ERROR_CODE);
		cr_assert_eq(kp_field_index(x, "ErrorMessage"), KP_CONFIGS_RESULT_ERROR_MESSAGE);
		cr_assert_eq(kp_field_index(x, "ResourceType"), KP_CONFIGS_RESULT_TYPE);
		cr_assert_eq(kp_field_index(x, "ResourceName"), KP_CONFIGS_RESULT_NAME);
	}
	const struct kp_schema *x = sub(&kp_describe_configs_response, KP_CONFIGS_RESP_RESULTS);
	cr_assert_eq(kp_field_index(x, "Configs"), KP_DESCRIBE_CONFIGS_RESULT_CONFIGS);
	const struct kp_schema *cf = sub(x, KP_DESCRIBE_CONFIGS_RESULT_CONFIGS);
	cr_assert_eq(kp_field_index(cf, "Name"), KP_DESCRIBE_CONFIGS_CONFIG_NAME);
	cr_assert_eq(kp_field_index(cf, "Value"), KP_DESCRIBE_CONFIGS_CONFIG_VALUE);
	cr_assert_eq(kp_field_index(cf, "Synonyms"), KP_DESCRIBE_CONFIGS_CONFIG_SYNONYMS);
	const struct kp_schema *sy = sub(cf, KP_DESCRIBE_CONFIGS_CONFIG_SYNONYMS);
	cr_assert_eq(kp_field_index(sy, "Name"), KP_DESCRIBE_CONFIGS_SYNONYM_NAME);
	cr_assert_eq(kp_field_index(sy, "Value"), KP_DESCRIBE_CONFIGS_SYNONYM_VALUE);
}

Test(configs, vectors_round_trip_and_survive_malformation_at_every_layout)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	struct {
		const char *hex;
		bool request;
		int16_t api, ver;
	} v[] = {
	    {dc_v4_request, true, -1, -1},  {dc_v0_request, true, -1, -1},  {dc_v4_response, false, 32, 4},
	    {iac_v1_request, true, -1, -1}, {ac_v0_request, true, -1, -1},  {ac_v2_response, false, 33, 2},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = unhex(v[i].hex, buf, sizeof(buf));
		struct kp_message m = check_roundtrip(&a, v[i].request, v[i].api, v[i].ver, buf, n);
		cr_assert_not_null(m.body, "vector %zu", i);
		check_malformations(v[i].request, v[i].api, v[i].ver, buf, n);
	}
	size_t n = unhex(dc_v0_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	const struct kp_struct *r0 = item(field(m.body, "Resources"), 0);
	cr_assert_eq(field(r0, "ResourceType")->i, KP_RESOURCE_BROKER);
	cr_assert(span_is(field(r0, "ResourceName")->s, "103"));
	cr_assert_eq(field(r0, "ConfigurationKeys")->a.cnt, -1, "null keys: every config");
	kp_arena_free(&a);
}

Test(configs, broker_ids_parse_only_as_kafka_writes_them)
{
	int32_t id = 0;
	struct {
		const char *s;
		bool ok;
		int32_t id;
	} v[] = {{"0", true, 0},         {"2", true, 2},        {"2147483647", true, INT32_MAX}, {"-1", true, -1},
	         {"", false, 0},         {"-", false, 0},       {"2147483648", false, 0},         {"1a", false, 0},
	         {" 1", false, 0},       {"+1", false, 0},      {"99999999999", false, 0},        {"0x10", false, 0}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct kp_span s = {(const uint8_t *)v[i].s, (int32_t)strlen(v[i].s)};
		cr_assert_eq(kp_configs_parse_id(s, &id), v[i].ok, "\"%s\"", v[i].s);
		if (v[i].ok)
			cr_assert_eq(id, v[i].id, "\"%s\"", v[i].s);
	}
}

/* Decodes the body of a request vector (after its header). */
static struct kp_struct *request_body(struct kp_arena *a, const char *hex, int16_t *api, int16_t *ver)
{
	uint8_t *req = kp_arena_alloc(a, sizeof(buf)); /* the tree points into it: not the shared buf */
	size_t n = unhex(hex, req, sizeof(buf));
	struct kp_message m = check_roundtrip(a, true, -1, -1, req, n);
	*api = m.api_key;
	*ver = m.api_version;
	return m.body;
}

/* Encodes st and decodes it again as the client would read it. */
static struct kp_struct *reread(struct kp_arena *a, const struct kp_struct *st, int16_t ver, bool flexible)
{
	struct kp_writer w;
	kp_writer_init(&w);
	kp_encode(&w, st, ver, flexible, -1);
	cr_assert(kp_writer_ok(&w));
	size_t n = 0;
	uint8_t *flat = kp_writer_flatten(&w, &n);
	cr_assert_not_null(flat);
	kp_writer_free(&w);
	uint8_t *out = kp_arena_alloc(a, n + 1);
	memcpy(out, flat, n);
	free(flat);
	struct kp_cursor c;
	kp_cursor_init(&c, out, n);
	struct kp_struct *back = kp_decode(a, &c, st->schema, ver, flexible, -1);
	cr_assert_not_null(back, "re-encoded answer decodes");
	cr_assert_eq(kp_cursor_left(&c), 0);
	return back;
}

static const int32_t nodes[] = {1, 2};

Test(configs, a_broker_resource_naming_a_node_goes_to_its_real_broker_and_comes_back_named_by_the_node)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	int16_t api, ver;
	struct kp_struct *req = request_body(&a, dc_v4_request, &api, &ver);
	struct kp_configs_route r;
	cr_assert(kp_configs_route(&a, api, req, nodes, 2, &r));
	cr_assert_eq(r.node, 2);
	cr_assert_eq(r.cnt, 2);
	cr_assert_eq(r.forwarded, 2);
	cr_assert_eq(r.refused[0] + r.refused[1], 0);
	cr_assert(kp_configs_rename(&a, req, 103));
	const struct kp_value *res = &req->v[KP_CONFIGS_REQ_RESOURCES];
	cr_assert(span_is(item(res, 0)->v[KP_CONFIGS_RES_NAME].s, "t"), "a topic keeps its name");
	cr_assert(span_is(item(res, 1)->v[KP_CONFIGS_RES_NAME].s, "103"), "the node's real broker by its own id");

	/* The broker answers the broker resource first: the client's order is restored. */
	size_t n = unhex(dc_v4_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, 32, 4, buf, n);
	struct kp_struct *resp = m.body;
	struct kp_struct *topic = kp_struct_new(&a, sub(&kp_describe_configs_response, KP_CONFIGS_RESP_RESULTS), 4);
	topic->v[KP_CONFIGS_RESULT_TYPE].i = KP_RESOURCE_TOPIC;
	topic->v[KP_CONFIGS_RESULT_NAME].s = (struct kp_span){(const uint8_t *)"t", 1};
	struct kp_value two[2] = {resp->v[KP_CONFIGS_RESP_RESULTS].a.items[0], {.st = topic, .present = true}};
	resp->v[KP_CONFIGS_RESP_RESULTS].a = (struct kp_list){two, 2};
	struct kp_struct *out = kp_configs_restore(&a, api, ver, resp, &r, 103);
	cr_assert_not_null(out);
	cr_assert_eq(kp_configs_virtualize(&a, out, r.node, "eu"), 3, "node.id, its synonym, broker.rack");
	struct kp_struct *back = reread(&a, out, 4, true);
	const struct kp_value *results = &back->v[KP_CONFIGS_RESP_RESULTS];
	cr_assert_eq(results->a.cnt, 2);
	cr_assert(span_is(item(results, 0)->v[KP_CONFIGS_RESULT_NAME].s, "t"));
	const struct kp_struct *b = item(results, 1);
	cr_assert(span_is(b->v[KP_CONFIGS_RESULT_NAME].s, "2"), "named by the node the client asked for");
	const struct kp_value *cfgs = &b->v[KP_DESCRIBE_CONFIGS_RESULT_CONFIGS];
	cr_assert(span_is(item(cfgs, 0)->v[KP_DESCRIBE_CONFIGS_CONFIG_VALUE].s, "2"), "node.id is the node's");
	cr_assert(span_is(item(&item(cfgs, 0)->v[KP_DESCRIBE_CONFIGS_CONFIG_SYNONYMS], 0)->v[1].s, "2"));
	cr_assert(span_is(item(cfgs, 1)->v[KP_DESCRIBE_CONFIGS_CONFIG_VALUE].s, "eu"), "broker.rack is the region");
	cr_assert(span_is(item(cfgs, 2)->v[KP_DESCRIBE_CONFIGS_CONFIG_VALUE].s, "y"), "others as they were");
	kp_arena_free(&a);
}

Test(configs, resources_naming_no_node_or_a_second_node_are_answered_invalid_request_in_client_order)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	/* DescribeConfigs v1: BROKER "7" (no node), BROKER "1", TOPIC "t", BROKER "2" (a second node),
	 * BROKER_LOGGER "x1" (not an id), BROKER "" (the default: any broker). */
	static const char hex[] = "0020 0001 00000005 0004 6b636174"
	                          "00000006 04 0001 37 ffffffff 04 0001 31 ffffffff 02 0001 74 ffffffff"
	                          "04 0001 32 ffffffff 08 0002 7831 ffffffff 04 0000 ffffffff 00";
	int16_t api, ver;
	struct kp_struct *req = request_body(&a, hex, &api, &ver);
	struct kp_configs_route r;
	cr_assert(kp_configs_route(&a, api, req, nodes, 2, &r));
	cr_assert_eq(r.node, 1);
	cr_assert_eq(r.forwarded, 3, "BROKER 1, TOPIC t, BROKER \"\"");
	int16_t want[] = {KP_CONFIGS_INVALID_REQUEST, 0, 0, KP_CONFIGS_INVALID_REQUEST, KP_CONFIGS_INVALID_REQUEST, 0};
	for (int i = 0; i < 6; i++)
		cr_assert_eq(r.refused[i], want[i], "resource %d", i);
	cr_assert(kp_configs_rename(&a, req, 1003));
	const struct kp_value *res = &req->v[KP_CONFIGS_REQ_RESOURCES];
	cr_assert_eq(res->a.cnt, 3);
	cr_assert(span_is(item(res, 0)->v[KP_CONFIGS_RES_NAME].s, "1003"));
	cr_assert_eq(item(res, 2)->v[KP_CONFIGS_RES_NAME].s.len, 0, "the default stays \"\"");

	/* The broker answers its three (the default's and the topic's in its own order). */
	const struct kp_schema *rs = sub(&kp_describe_configs_response, KP_CONFIGS_RESP_RESULTS);
	struct kp_struct *resp = kp_struct_new(&a, &kp_describe_configs_response, 1);
	struct kp_value *items = kp_arena_alloc(&a, 3 * sizeof(*items));
	const char *names[] = {"", "t", "1003"};
	int types[] = {KP_RESOURCE_BROKER, KP_RESOURCE_TOPIC, KP_RESOURCE_BROKER};
	for (int i = 0; i < 3; i++) {
		struct kp_struct *x = kp_struct_new(&a, rs, 1);
		x->v[KP_CONFIGS_RESULT_TYPE].i = types[i];
		x->v[KP_CONFIGS_RESULT_NAME].s = (struct kp_span){(const uint8_t *)names[i], (int32_t)strlen(names[i])};
		items[i] = (struct kp_value){.st = x, .present = true};
	}
	resp->v[KP_CONFIGS_RESP_RESULTS].a = (struct kp_list){items, 3};
	struct kp_struct *back = reread(&a, kp_configs_restore(&a, api, ver, resp, &r, 1003), 1, false);
	const struct kp_value *results = &back->v[KP_CONFIGS_RESP_RESULTS];
	cr_assert_eq(results->a.cnt, 6);
	const char *want_names[] = {"7", "1", "t", "2", "x1", ""};
	for (int i = 0; i < 6; i++) {
		const struct kp_struct *x = item(results, i);
		cr_assert(span_is(x->v[KP_CONFIGS_RESULT_NAME].s, want_names[i]), "result %d", i);
		cr_assert_eq(x->v[KP_CONFIGS_RESULT_ERROR_CODE].i, want[i], "result %d", i);
		if (want[i])
			cr_assert_gt(x->v[KP_CONFIGS_RESULT_ERROR_MESSAGE].s.len, 0);
	}
	kp_arena_free(&a);
}

Test(configs, a_request_of_refused_resources_only_is_answered_without_a_broker)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	int16_t api, ver;
	struct kp_struct *req = request_body(&a, iac_v1_request, &api, &ver);
	static const int32_t others[] = {5, 6};
	struct kp_configs_route r;
	cr_assert(kp_configs_route(&a, api, req, others, 2, &r));
	cr_assert_eq(r.node, -1);
	cr_assert_eq(r.forwarded, 0);
	struct kp_struct *back = reread(&a, kp_configs_restore(&a, api, ver, NULL, &r, -1), ver, true);
	const struct kp_value *results = &back->v[KP_CONFIGS_RESP_RESULTS];
	cr_assert_eq(results->a.cnt, 1);
	cr_assert_eq(item(results, 0)->v[KP_CONFIGS_RESULT_ERROR_CODE].i, KP_CONFIGS_INVALID_REQUEST);
	cr_assert(span_is(item(results, 0)->v[KP_CONFIGS_RESULT_NAME].s, "2"));
	cr_assert_not(kp_configs_route(&a, 3, req, others, 2, &r), "not a config API");
	kp_arena_free(&a);
}

Test(configs, a_broker_result_nobody_asked_for_never_shows_a_real_id)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	int16_t api, ver;
	struct kp_struct *req = request_body(&a, ac_v0_request, &api, &ver);
	struct kp_configs_route r;
	cr_assert(kp_configs_route(&a, api, req, nodes, 2, &r));
	cr_assert_eq(r.node, -1, "the default \"\" names no node");
	size_t n = unhex(ac_v2_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, 33, 2, buf, n);
	struct kp_struct *out = kp_configs_restore(&a, api, ver, m.body, &r, -1);
	const struct kp_value *results = &out->v[KP_CONFIGS_RESP_RESULTS];
	cr_assert_eq(results->a.cnt, 1, "the topic's; BROKER \"103\" was not asked for and names a real broker");
	cr_assert(span_is(item(results, 0)->v[KP_CONFIGS_RESULT_NAME].s, "t"));
	kp_arena_free(&a);
}
