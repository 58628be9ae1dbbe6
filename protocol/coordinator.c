/*
 * coordinator: the key a group or transaction request is routed by
 * (coordinator.h has the table, from Kafka's message definitions).
 */
#include "coordinator.h"

#include "api.h"

enum { FIRST, SECOND }; /* where the key is: the body's first string, or its second */

struct kp_coord_api {
	int16_t api, max_version; /* versions 0..max_version (INT16_MAX: all) */
	enum kp_coord_type type;
	int at;
	bool nullable;
};

static const struct kp_coord_api kp_coord_apis[] = {
    {8, INT16_MAX, KP_COORD_GROUP, FIRST, false},        /* OffsetCommit: GroupId */
    {9, 7, KP_COORD_GROUP, FIRST, false},                /* OffsetFetch: GroupId (8+: Groups) */
    {11, INT16_MAX, KP_COORD_GROUP, FIRST, false},       /* JoinGroup */
    {12, INT16_MAX, KP_COORD_GROUP, FIRST, false},       /* Heartbeat */
    {13, INT16_MAX, KP_COORD_GROUP, FIRST, false},       /* LeaveGroup */
    {14, INT16_MAX, KP_COORD_GROUP, FIRST, false},       /* SyncGroup */
    {22, INT16_MAX, KP_COORD_TRANSACTION, FIRST, true},  /* InitProducerId: TransactionalId (nullable) */
    {24, 3, KP_COORD_TRANSACTION, FIRST, false},         /* AddPartitionsToTxn v0-3 (4+: Transactions) */
    {25, INT16_MAX, KP_COORD_TRANSACTION, FIRST, false}, /* AddOffsetsToTxn */
    {26, INT16_MAX, KP_COORD_TRANSACTION, FIRST, false}, /* EndTxn */
    {28, INT16_MAX, KP_COORD_GROUP, SECOND, false},      /* TxnOffsetCommit: TransactionalId, GroupId */
    {47, INT16_MAX, KP_COORD_GROUP, FIRST, false},       /* OffsetDelete */
    {68, INT16_MAX, KP_COORD_GROUP, FIRST, false},       /* ConsumerGroupHeartbeat */
    {88, INT16_MAX, KP_COORD_GROUP, FIRST, false},       /* StreamsGroupHeartbeat (KIP-1071) */
    {93, INT16_MAX, KP_COORD_GROUP, FIRST, false},       /* StreamsGroupTopologyDescriptionUpdate */
};

bool kp_coordinator_holds(int16_t api)
{
	return api == 11 || api == 14; /* JoinGroup, SyncGroup */
}

static const struct kp_coord_api *kp_coord_api_of(int16_t api, int16_t ver)
{
	for (size_t i = 0; i < sizeof(kp_coord_apis) / sizeof(kp_coord_apis[0]); i++)
		if (kp_coord_apis[i].api == api && ver >= 0 && ver <= kp_coord_apis[i].max_version)
			return &kp_coord_apis[i];
	return NULL;
}

bool kp_coordinator_api(int16_t api, int16_t ver)
{
	return kp_coord_api_of(api, ver) != NULL;
}

bool kp_coordinator_key(int16_t api, int16_t ver, bool flexible, const uint8_t *body, size_t len,
                        enum kp_coord_type *type, struct kp_span *key, struct kp_cursor *err)
{
	*type = KP_COORD_NONE;
	*key = (struct kp_span){NULL, 0};
	const struct kp_coord_api *e = kp_coord_api_of(api, ver);
	if (!e)
		return true;
	struct kp_cursor c;
	kp_cursor_init(&c, body, len);
	struct kp_span s = kp_read_string(&c, flexible, e->nullable, e->at == SECOND ? "TransactionalId" : "key");
	if (e->at == SECOND)
		s = kp_read_string(&c, flexible, false, "GroupId");
	if (!kp_cursor_ok(&c)) {
		if (err)
			*err = c;
		return false;
	}
	if (s.len < 0)
		return true; /* InitProducerId with no TransactionalId: any broker */
	*type = e->type;
	*key = s;
	return true;
}

bool kp_coordinator_error(int16_t api, int16_t ver, const uint8_t *body, size_t len, int16_t *error)
{
	int16_t first_throttled; /* the first version with ThrottleTimeMs before ErrorCode; -1: ErrorCode first */
	switch (api) {
	case 11: first_throttled = 2; break;                 /* JoinGroup */
	case 12: case 13: case 14: first_throttled = 1; break; /* Heartbeat, LeaveGroup, SyncGroup */
	case 22:  /* InitProducerId */
	case 25:  /* AddOffsetsToTxn */
	case 26:  /* EndTxn */
	case 68:  /* ConsumerGroupHeartbeat */
	case 88:  /* StreamsGroupHeartbeat */
	case 93: /* StreamsGroupTopologyDescriptionUpdate */
		first_throttled = 0;
		break;
	case 47: first_throttled = -1; break;                /* OffsetDelete: ErrorCode, then ThrottleTimeMs */
	default: return false;
	}
	size_t at = first_throttled >= 0 && ver >= first_throttled ? 4 : 0;
	if (!body || len < at + 2)
		return false;
	*error = (int16_t)(((uint16_t)body[at] << 8) | body[at + 1]);
	return true;
}
