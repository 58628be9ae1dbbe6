#include "apiplan.h"

#include <stddef.h>

#include "api.h"

/* The table apiplan.h draws. Versions: the first one Kafka's layout carries
 * what the entry needs (NodeEndpoints: Produce v10, Fetch v16; RackId and
 * PreferredReadReplica: Fetch v11). Fetch v16-18 as v15: protocol/fetch.c
 * shows the layouts (v17 and v18 add request tags 0 and 1 to a partition,
 * v16 the response's NodeEndpoints tag). */
static const struct kr_api_plan kr_plans[] = {
    {KP_API_PRODUCE, 10, true, -1, -1, -1, -1},
    {KP_API_FETCH, 16, true, 11, 11, 15, 18},
    {KP_API_METADATA, 0, false, -1, -1, -1, -1},
    {KP_API_FIND_COORDINATOR, 0, false, -1, -1, -1, -1},
    {KP_API_API_VERSIONS, 0, false, -1, -1, -1, -1},
    {KP_API_DESCRIBE_CLUSTER, 0, false, -1, -1, -1, -1},
};

const struct kr_api_plan *kr_api_plan(int16_t api_key)
{
	for (size_t i = 0; i < sizeof(kr_plans) / sizeof(kr_plans[0]); i++)
		if (kr_plans[i].api_key == api_key)
			return &kr_plans[i];
	return NULL;
}

static bool kr_from(int16_t from, int16_t version)
{
	return from >= 0 && version >= from;
}

bool kr_api_plan_per_client(int16_t api_key)
{
	const struct kr_api_plan *p = kr_api_plan(api_key);
	return p && (p->steer_from >= 0 || p->set_rack_from >= 0);
}

enum kr_request_plan kr_request_plan(int16_t api_key, int16_t version, bool may_set_rack)
{
	const struct kr_api_plan *p = kr_api_plan(api_key);
	return p && may_set_rack && kr_from(p->set_rack_from, version) ? KR_REQUEST_SET_RACK : KR_REQUEST_PASS;
}

enum kr_response_plan kr_response_plan(int16_t api_key, int16_t version, bool may_steer)
{
	const struct kr_api_plan *p = kr_api_plan(api_key);
	if (!p)
		return KR_RESPONSE_PASS;
	bool steer = may_steer && kr_from(p->steer_from, version);
	if (!kr_from(p->rewrite_from, version) && !steer)
		return KR_RESPONSE_PASS;
	return p->scan || steer ? KR_RESPONSE_SCAN : KR_RESPONSE_REWRITE;
}

int16_t kr_request_forward_version(int16_t api_key, int16_t version, bool cut_through)
{
	const struct kr_api_plan *p = kr_api_plan(api_key);
	if (!cut_through || !p || p->forward_as < 0 || version <= p->forward_as || version > p->forward_up_to)
		return version;
	return p->forward_as;
}

bool kr_api_steers(int16_t api_key, int16_t version)
{
	const struct kr_api_plan *p = kr_api_plan(api_key);
	return p && kr_from(p->steer_from, version);
}
