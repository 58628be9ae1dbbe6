/*
 * apiplan: the table of what kstretch does with each API, checked against
 * the behaviour it stands for, written out here version by version.
 */
#include <criterion/criterion.h>

#include "api.h"
#include "apiplan.h"

struct plan_case {
	const char *name;
	int16_t api, from, to; /* versions from..to */
	enum kr_response_plan plain, steering; /* may_steer false / true */
	enum kr_request_plan request, with_rack; /* may_set_rack false / true */
};

#define PASS    KR_RESPONSE_PASS
#define REWRITE KR_RESPONSE_REWRITE
#define SCAN    KR_RESPONSE_SCAN
#define RQ_PASS KR_REQUEST_PASS
#define RQ_RACK KR_REQUEST_SET_RACK

static const struct plan_case cases[] = {
    {"Produce before NodeEndpoints", KP_API_PRODUCE, 0, 9, PASS, PASS, RQ_PASS, RQ_PASS},
    {"Produce with NodeEndpoints: scanned for tags", KP_API_PRODUCE, 10, 13, SCAN, SCAN, RQ_PASS, RQ_PASS},
    {"Fetch before RackId", KP_API_FETCH, 0, 10, PASS, PASS, RQ_PASS, RQ_PASS},
    {"Fetch with RackId: scanned when steering", KP_API_FETCH, 11, 15, PASS, SCAN, RQ_PASS, RQ_RACK},
    {"Fetch with NodeEndpoints: always scanned", KP_API_FETCH, 16, 18, SCAN, SCAN, RQ_PASS, RQ_RACK},
    {"Metadata", KP_API_METADATA, 0, 13, REWRITE, REWRITE, RQ_PASS, RQ_PASS},
    {"FindCoordinator", KP_API_FIND_COORDINATOR, 0, 6, REWRITE, REWRITE, RQ_PASS, RQ_PASS},
    {"ApiVersions", KP_API_API_VERSIONS, 0, 4, REWRITE, REWRITE, RQ_PASS, RQ_PASS},
    {"DescribeCluster", KP_API_DESCRIBE_CLUSTER, 0, 2, REWRITE, REWRITE, RQ_PASS, RQ_PASS},
    {"ListOffsets", 2, 0, 10, PASS, PASS, RQ_PASS, RQ_PASS},
    {"OffsetCommit", 8, 0, 10, PASS, PASS, RQ_PASS, RQ_PASS},
    {"JoinGroup", 11, 0, 10, PASS, PASS, RQ_PASS, RQ_PASS},
    {"SaslHandshake", KP_API_SASL_HANDSHAKE, 0, 1, PASS, PASS, RQ_PASS, RQ_PASS},
    {"ShareFetch (hidden by ApiVersions)", KP_API_SHARE_FETCH, 0, 2, PASS, PASS, RQ_PASS, RQ_PASS},
    {"an unknown API key", 999, 0, 5, PASS, PASS, RQ_PASS, RQ_PASS},
    {"a negative API key", -1, 0, 5, PASS, PASS, RQ_PASS, RQ_PASS},
};

Test(apiplan, each_api_gets_what_kstretch_does_with_it_at_every_version)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct plan_case *c = &cases[i];
		for (int16_t v = c->from; v <= c->to; v++) {
			cr_assert_eq(kr_response_plan(c->api, v, false), c->plain, "%s v%d response", c->name, v);
			cr_assert_eq(kr_response_plan(c->api, v, true), c->steering, "%s v%d response, steering",
			             c->name, v);
			cr_assert_eq(kr_request_plan(c->api, v, false), c->request, "%s v%d request", c->name, v);
			cr_assert_eq(kr_request_plan(c->api, v, true), c->with_rack, "%s v%d request, rack known",
			             c->name, v);
			bool steers = c->api == KP_API_FETCH && v >= 11;
			cr_assert_eq(kr_api_steers(c->api, v), steers, "%s v%d steers", c->name, v);
		}
	}
}

Test(apiplan, only_fetch_depends_on_the_clients_place)
{
	for (int api = -1; api <= 100; api++)
		cr_assert_eq(kr_api_plan_per_client((int16_t)api), api == KP_API_FETCH, "api %d", api);
}

/* What the table rewrites, scans or steers, the codec must decode (the
 * rewrite and the walks need the response's layout); ApiVersions clamps
 * what clients may ask for to the decoded range. */
Test(apiplan, every_api_kstretch_changes_has_its_layout_in_the_codec)
{
	for (int api = 0; api <= 100; api++) {
		const struct kr_api_plan *p = kr_api_plan((int16_t)api);
		if (!p)
			continue;
		const struct kp_api *info = kp_api_get((int16_t)api);
		cr_assert_not_null(info, "api %d", api);
		cr_assert_not_null(info->response, "%s: no response layout", info->name);
		cr_assert_leq(p->rewrite_from, info->decode_max, "%s", info->name);
		if (p->steer_from >= 0 || p->set_rack_from >= 0) {
			cr_assert_not_null(info->request, "%s: no request layout", info->name);
			cr_assert_leq(p->steer_from, info->decode_max, "%s", info->name);
			cr_assert_leq(p->set_rack_from, info->decode_max, "%s", info->name);
		}
	}
}

/* fetch.cut.through: Fetch v16-18 go to the broker as v15, whose request
 * reads the same and whose answer lacks only NodeEndpoints; nothing else
 * changes version, and nothing does with the setting off. */
Test(apiplan, only_fetch_v16_to_v18_are_forwarded_as_v15_and_only_with_cut_through)
{
	for (int api = -1; api <= 100; api++) {
		for (int16_t v = 0; v <= 20; v++) {
			int16_t want = (int16_t)(api == KP_API_FETCH && v >= 16 && v <= 18 ? 15 : v);
			cr_assert_eq(kr_request_forward_version((int16_t)api, v, true), want, "api %d v%d", api, v);
			cr_assert_eq(kr_request_forward_version((int16_t)api, v, false), v, "api %d v%d, off", api, v);
		}
	}
	/* What v15 is answered with kstretch need not hold whole unless it steers. */
	cr_assert_eq(kr_response_plan(KP_API_FETCH, 15, false), KR_RESPONSE_PASS);
	const struct kr_api_plan *p = kr_api_plan(KP_API_FETCH);
	cr_assert_leq(p->forward_up_to, kp_api_get(KP_API_FETCH)->decode_max);
}
