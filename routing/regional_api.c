/*
 * regional_api: regional mode's decision for every API key (see the header).
 * The reasons, per key, are the README's "Every API key" table; a test
 * (tests/integration/test_regional_api_table.py) keeps the two the same.
 */
#include "regional_api.h"

#include <string.h>

#include "regional.h"

/* Indexed by API key; a key not listed (0) is trimmed. */
static const uint8_t kr_rapis[] = {
    [0] = KR_RAPI_SPLIT,        /* Produce */
    [1] = KR_RAPI_SPLIT,        /* Fetch */
    [2] = KR_RAPI_SPLIT,        /* ListOffsets */
    [3] = KR_RAPI_METADATA,     /* Metadata */
    [8] = KR_RAPI_COORDINATOR,  /* OffsetCommit */
    [9] = KR_RAPI_KEYS,         /* OffsetFetch (v0-7 name one group: to its coordinator) */
    [10] = KR_RAPI_FIND,        /* FindCoordinator */
    [11] = KR_RAPI_COORDINATOR, /* JoinGroup */
    [12] = KR_RAPI_COORDINATOR, /* Heartbeat */
    [13] = KR_RAPI_COORDINATOR, /* LeaveGroup */
    [14] = KR_RAPI_COORDINATOR, /* SyncGroup */
    [15] = KR_RAPI_KEYS,        /* DescribeGroups */
    [16] = KR_RAPI_LISTING,     /* ListGroups */
    [17] = KR_RAPI_SASL,        /* SaslHandshake */
    [18] = KR_RAPI_VERSIONS,    /* ApiVersions */
    [19] = KR_RAPI_ANY,         /* CreateTopics: a broker forwards it to the controller */
    [20] = KR_RAPI_ANY,         /* DeleteTopics */
    [21] = KR_RAPI_SPLIT,       /* DeleteRecords */
    [22] = KR_RAPI_COORDINATOR, /* InitProducerId (any broker without a TransactionalId) */
    [23] = KR_RAPI_SPLIT,       /* OffsetForLeaderEpoch */
    [24] = KR_RAPI_COORDINATOR, /* AddPartitionsToTxn (v0-3) */
    [25] = KR_RAPI_COORDINATOR, /* AddOffsetsToTxn */
    [26] = KR_RAPI_COORDINATOR, /* EndTxn */
    [28] = KR_RAPI_COORDINATOR, /* TxnOffsetCommit */
    [29] = KR_RAPI_ANY,         /* DescribeAcls */
    [30] = KR_RAPI_ANY,         /* CreateAcls */
    [31] = KR_RAPI_ANY,         /* DeleteAcls */
    [32] = KR_RAPI_CONFIGS,     /* DescribeConfigs */
    [33] = KR_RAPI_CONFIGS,     /* AlterConfigs */
    [36] = KR_RAPI_SASL,        /* SaslAuthenticate */
    [37] = KR_RAPI_ANY,         /* CreatePartitions */
    [38] = KR_RAPI_ANY,         /* CreateDelegationToken */
    [39] = KR_RAPI_ANY,         /* RenewDelegationToken */
    [40] = KR_RAPI_ANY,         /* ExpireDelegationToken */
    [41] = KR_RAPI_ANY,         /* DescribeDelegationToken */
    [42] = KR_RAPI_KEYS,        /* DeleteGroups */
    [43] = KR_RAPI_ANY,         /* ElectLeaders */
    [44] = KR_RAPI_CONFIGS,     /* IncrementalAlterConfigs */
    [47] = KR_RAPI_COORDINATOR, /* OffsetDelete */
    [48] = KR_RAPI_ANY,         /* DescribeClientQuotas */
    [49] = KR_RAPI_ANY,         /* AlterClientQuotas */
    [50] = KR_RAPI_ANY,         /* DescribeUserScramCredentials */
    [51] = KR_RAPI_ANY,         /* AlterUserScramCredentials */
    [57] = KR_RAPI_ANY,         /* UpdateFeatures */
    [60] = KR_RAPI_CLUSTER,     /* DescribeCluster */
    [61] = KR_RAPI_SPLIT,       /* DescribeProducers */
    [65] = KR_RAPI_KEYS,        /* DescribeTransactions */
    [66] = KR_RAPI_LISTING,     /* ListTransactions */
    [68] = KR_RAPI_COORDINATOR, /* ConsumerGroupHeartbeat */
    [69] = KR_RAPI_KEYS,        /* ConsumerGroupDescribe */
    [71] = KR_RAPI_ANY,         /* GetTelemetrySubscriptions */
    [72] = KR_RAPI_ANY,         /* PushTelemetry */
    [88] = KR_RAPI_COORDINATOR, /* StreamsGroupHeartbeat */
    [89] = KR_RAPI_TRIMMED,     /* StreamsGroupDescribe: names several groups, not decoded */
    [93] = KR_RAPI_COORDINATOR, /* StreamsGroupTopologyDescriptionUpdate */
};

enum kr_rapi kr_regional_api(int16_t key)
{
	if (key < 0 || (size_t)key >= sizeof(kr_rapis))
		return KR_RAPI_TRIMMED;
	return (enum kr_rapi)kr_rapis[key];
}

const char *kr_regional_api_kind(enum kr_rapi kind)
{
	switch (kind) {
	case KR_RAPI_SPLIT: return "split";
	case KR_RAPI_METADATA: return "metadata";
	case KR_RAPI_CLUSTER: return "cluster";
	case KR_RAPI_VERSIONS: return "versions";
	case KR_RAPI_COORDINATOR: return "coordinator";
	case KR_RAPI_FIND: return "find";
	case KR_RAPI_CONFIGS: return "configs";
	case KR_RAPI_ANY: return "any";
	case KR_RAPI_SASL: return "sasl";
	case KR_RAPI_KEYS: return "keys";
	case KR_RAPI_LISTING: return "listing";
	case KR_RAPI_TRIMMED: break;
	}
	return "trimmed";
}

bool kr_regional_api_offered(int16_t key)
{
	return kr_regional_api(key) != KR_RAPI_TRIMMED;
}

int32_t kr_regional_stand_in(const struct kx_topology *t, const char *region, int32_t node)
{
	if (!t || t->broker_cnt == 0)
		return -1;
	size_t local = 0;
	for (size_t i = 0; region && region[0] && i < t->broker_cnt; i++)
		local += strcmp(t->brokers[i].region, region) == 0;
	/* A 64-bit mix of the id, so that consecutive ids spread (jump hash wants a well-mixed key). */
	uint64_t key = (uint64_t)(uint32_t)node * 0x9E3779B97F4A7C15ull;
	key ^= key >> 29;
	int32_t pick = kr_jump_hash(key, (int32_t)(local ? local : t->broker_cnt));
	for (size_t i = 0, k = 0; i < t->broker_cnt; i++) { /* brokers are sorted by id */
		if (local && strcmp(t->brokers[i].region, region) != 0)
			continue;
		if ((int32_t)k++ == pick)
			return t->brokers[i].node_id;
	}
	return -1;
}
