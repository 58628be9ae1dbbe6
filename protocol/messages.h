/*
 * messages: the message tables of the APIs this build decodes, one file per
 * API (apiversions.c, metadata.c, ...), each written from Kafka's message
 * definitions, and the field indexes that routing code uses.
 */
#ifndef KP_MESSAGES_H
#define KP_MESSAGES_H

#include "schema.h"

extern const struct kp_schema kp_api_versions_request;
extern const struct kp_schema kp_api_versions_response;

/*
 * The ErrorCode of an ApiVersions response, whatever form its body has.
 * body/len: the bytes after the response header (always header v0, so the
 * frame body from its 5th byte). ErrorCode is the first field of every
 * version, and it is all a broker's answer is sure to hold: a broker answers a
 * too-new request (UNSUPPORTED_VERSION, 35) in the v0 layout whatever version
 * was asked, and some answer an error with a body cut short after the code,
 * or in the requested (flexible) layout. Nothing after the code is read.
 * Returns false (c, when not NULL, says where) when fewer than 2 bytes.
 */
bool kp_api_versions_error(const uint8_t *body, size_t len, int16_t *error_code, struct kp_cursor *c);

/* Metadata (metadata.c) */
extern const struct kp_schema kp_metadata_request;
extern const struct kp_schema kp_metadata_response;

/*
 * Indexes of the Metadata fields routing code reads or rewrites (in
 * kp_struct.v[]). The broker rewrite decodes only the first
 * KP_METADATA_RESPONSE_PREFIX fields (ThrottleTimeMs, Brokers) and references
 * the rest of the message unchanged.
 */
enum kp_metadata_field {
	KP_METADATA_RESPONSE_THROTTLE_TIME_MS = 0,
	KP_METADATA_RESPONSE_BROKERS = 1,
	KP_METADATA_RESPONSE_PREFIX = 2,
	KP_METADATA_RESPONSE_CLUSTER_ID = 2,
	KP_METADATA_RESPONSE_CONTROLLER_ID = 3,
	KP_METADATA_RESPONSE_TOPICS = 4,
	KP_METADATA_RESPONSE_ERROR_CODE = 6,

	KP_METADATA_BROKER_NODE_ID = 0,
	KP_METADATA_BROKER_HOST = 1,
	KP_METADATA_BROKER_PORT = 2,
	KP_METADATA_BROKER_RACK = 3,

	KP_METADATA_TOPIC_ERROR_CODE = 0,
	KP_METADATA_TOPIC_NAME = 1,
	KP_METADATA_TOPIC_TOPIC_ID = 2,
	KP_METADATA_TOPIC_PARTITIONS = 4,

	KP_METADATA_PARTITION_ERROR_CODE = 0,
	KP_METADATA_PARTITION_PARTITION_INDEX = 1,
	KP_METADATA_PARTITION_LEADER_ID = 2,
	KP_METADATA_PARTITION_LEADER_EPOCH = 3,
	KP_METADATA_PARTITION_REPLICA_NODES = 4,
	KP_METADATA_PARTITION_ISR_NODES = 5,
	KP_METADATA_PARTITION_OFFLINE_REPLICAS = 6,
};

/* FindCoordinator (findcoordinator.c) */
extern const struct kp_schema kp_find_coordinator_request;
extern const struct kp_schema kp_find_coordinator_response;

/* FindCoordinator fields: the response's that carry an address and an error (v0-3 top level, v4+ per
 * Coordinator), and the request's keys. */
enum kp_find_coordinator_field {
	KP_FIND_COORDINATOR_REQUEST_KEY = 0,      /* v0-3 */
	KP_FIND_COORDINATOR_REQUEST_KEY_TYPE = 1, /* v1+ */
	KP_FIND_COORDINATOR_RESPONSE_ERROR_CODE = 1, /* v0-3 */
	KP_FIND_COORDINATOR_RESPONSE_NODE_ID = 3,    /* v0-3 */
	KP_FIND_COORDINATOR_RESPONSE_HOST = 4,
	KP_FIND_COORDINATOR_RESPONSE_PORT = 5,
	KP_FIND_COORDINATOR_RESPONSE_COORDINATORS = 6, /* v4+ */
	KP_FIND_COORDINATOR_COORDINATOR_NODE_ID = 1,
	KP_FIND_COORDINATOR_COORDINATOR_HOST = 2,
	KP_FIND_COORDINATOR_COORDINATOR_PORT = 3,
	KP_FIND_COORDINATOR_COORDINATOR_KEY = 0,
	KP_FIND_COORDINATOR_COORDINATOR_ERROR_CODE = 4,
};

/* DescribeCluster (describecluster.c) */
extern const struct kp_schema kp_describe_cluster_request;
extern const struct kp_schema kp_describe_cluster_response;

/* DescribeCluster response fields that carry addresses. */
enum kp_describe_cluster_field {
	KP_DESCRIBE_CLUSTER_RESPONSE_ERROR_CODE = 1,
	KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID = 5,
	KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS = 6,
	KP_DESCRIBE_CLUSTER_BROKER_BROKER_ID = 0,
	KP_DESCRIBE_CLUSTER_BROKER_HOST = 1,
	KP_DESCRIBE_CLUSTER_BROKER_PORT = 2,
	KP_DESCRIBE_CLUSTER_BROKER_RACK = 3,
};

/* The group and transaction APIs that name several keys, or none (groups.c): split by key (keysplit.h). */
extern const struct kp_schema kp_describe_groups_request;
extern const struct kp_schema kp_describe_groups_response;
extern const struct kp_schema kp_list_groups_request;
extern const struct kp_schema kp_list_groups_response;
extern const struct kp_schema kp_delete_groups_request;
extern const struct kp_schema kp_delete_groups_response;
extern const struct kp_schema kp_offset_fetch_request;
extern const struct kp_schema kp_offset_fetch_response;
extern const struct kp_schema kp_consumer_group_describe_request;
extern const struct kp_schema kp_consumer_group_describe_response;
extern const struct kp_schema kp_describe_transactions_request;
extern const struct kp_schema kp_describe_transactions_response;
extern const struct kp_schema kp_list_transactions_request;
extern const struct kp_schema kp_list_transactions_response;

/* JoinGroup (joingroup.c): the request, for the rack of a consumer's subscription (KIP-881). */
extern const struct kp_schema kp_join_group_request;
extern const struct kp_schema kp_consumer_subscription; /* ConsumerProtocolSubscription, in a protocol's Metadata */

enum kp_join_group_field {
	KP_JOIN_GROUP_REQ_PROTOCOL_TYPE = 5,
	KP_JOIN_GROUP_REQ_PROTOCOLS = 6,
	KP_JOIN_GROUP_PROTOCOL_METADATA = 1,
	KP_SUBSCRIPTION_RACK_ID = 4,
	KP_CONSUMER_GROUP_HEARTBEAT_REQ_RACK_ID = 4, /* ConsumerGroupHeartbeat's RackId (nullable: unchanged) */
};

/*
 * Sets the RackId of every consumer-protocol subscription (v3, which names
 * a rack) of a decoded JoinGroup request to rack, where it names another
 * one; each changed subscription is re-encoded into the arena. A request
 * of another protocol type, a subscription with no rack, of a version
 * before 3 or after the codec's, or that does not decode, is left as it
 * is. Returns how many subscriptions changed.
 */
int kp_join_group_set_rack(struct kp_arena *a, struct kp_struct *req, struct kp_span rack);

/* ConsumerGroupHeartbeat (consumergroupheartbeat.c): decoded, never rewritten. */
extern const struct kp_schema kp_consumer_group_heartbeat_request;
extern const struct kp_schema kp_consumer_group_heartbeat_response;

/* SaslHandshake and SaslAuthenticate (sasl.c): what kstretch's own
 * connection to a bootstrap server authenticates with. */
extern const struct kp_schema kp_sasl_handshake_request;
extern const struct kp_schema kp_sasl_handshake_response;
extern const struct kp_schema kp_sasl_authenticate_request;
extern const struct kp_schema kp_sasl_authenticate_response;

enum kp_sasl_field {
	/* SaslHandshakeRequest / SaslHandshakeResponse */
	KP_SASL_HANDSHAKE_REQ_MECHANISM = 0,
	KP_SASL_HANDSHAKE_RESP_ERROR_CODE = 0,
	KP_SASL_HANDSHAKE_RESP_MECHANISMS = 1,
	/* SaslAuthenticateRequest / SaslAuthenticateResponse */
	KP_SASL_AUTH_REQ_AUTH_BYTES = 0,
	KP_SASL_AUTH_RESP_ERROR_CODE = 0,
	KP_SASL_AUTH_RESP_ERROR_MESSAGE = 1,
	KP_SASL_AUTH_RESP_AUTH_BYTES = 2,
	KP_SASL_AUTH_RESP_SESSION_LIFETIME_MS = 3,
};

/* Produce (produce.c) */
extern const struct kp_schema kp_produce_request;
extern const struct kp_schema kp_produce_response;

/* Indexes into the struct named in each comment (checked in test_produce.c). */
enum kp_produce_field {
	/* ProduceRequest */
	KP_PRODUCE_REQ_TRANSACTIONAL_ID = 0,
	KP_PRODUCE_REQ_ACKS = 1,
	KP_PRODUCE_REQ_TOPIC_DATA = 3,
	/* TopicProduceData */
	KP_PRODUCE_TOPIC_NAME = 0,     /* v0-12 */
	KP_PRODUCE_TOPIC_TOPIC_ID = 1, /* v13+ */
	KP_PRODUCE_TOPIC_PARTITION_DATA = 2,
	/* PartitionProduceData */
	KP_PRODUCE_PART_INDEX = 0,
	KP_PRODUCE_PART_RECORDS = 1,
	/* ProduceResponse */
	KP_PRODUCE_RESP_RESPONSES = 0,
	KP_PRODUCE_RESP_THROTTLE_TIME_MS = 1, /* v1+ */
	KP_PRODUCE_RESP_NODE_ENDPOINTS = 2, /* tagged, v10+ */
	/* TopicProduceResponse */
	KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES = 2,
	/* PartitionProduceResponse */
	KP_PRODUCE_RESP_PART_INDEX = 0,
	KP_PRODUCE_RESP_PART_ERROR_CODE = 1,
	KP_PRODUCE_RESP_PART_CURRENT_LEADER = 7, /* tagged, v10+ */
	/* LeaderIdAndEpoch */
	KP_PRODUCE_LEADER_ID = 0,
	KP_PRODUCE_LEADER_EPOCH = 1,
	/* NodeEndpoint */
	KP_PRODUCE_ENDPOINT_NODE_ID = 0,
	KP_PRODUCE_ENDPOINT_HOST = 1,
	KP_PRODUCE_ENDPOINT_PORT = 2,
	KP_PRODUCE_ENDPOINT_RACK = 3,
};

/* Fetch (fetch.c) */
extern const struct kp_schema kp_fetch_request;
extern const struct kp_schema kp_fetch_response;

/* Indexes into the struct named in each comment (checked in test_fetch.c). */
enum kp_fetch_field {
	/* FetchRequest */
	KP_FETCH_REQ_REPLICA_ID = 1,    /* v0-14 */
	KP_FETCH_REQ_REPLICA_STATE = 2, /* tagged, v15+ */
	KP_FETCH_REQ_MAX_WAIT_MS = 3,
	KP_FETCH_REQ_MAX_BYTES = 5,     /* v3+ */
	KP_FETCH_REQ_SESSION_ID = 7,
	KP_FETCH_REQ_SESSION_EPOCH = 8,
	KP_FETCH_REQ_TOPICS = 9,
	KP_FETCH_REQ_FORGOTTEN_TOPICS_DATA = 10, /* v7+ */
	KP_FETCH_REQ_RACK_ID = 11, /* v11+ */
	/* ReplicaState */
	KP_FETCH_REPLICA_STATE_REPLICA_ID = 0,
	/* FetchTopic */
	KP_FETCH_TOPIC_TOPIC = 0,    /* v0-12 */
	KP_FETCH_TOPIC_TOPIC_ID = 1, /* v13+ */
	KP_FETCH_TOPIC_PARTITIONS = 2,
	/* FetchPartition */
	KP_FETCH_PART_PARTITION = 0,
	/* FetchResponse */
	KP_FETCH_RESP_THROTTLE_TIME_MS = 0, /* v1+ */
	KP_FETCH_RESP_ERROR_CODE = 1,       /* v7+ */
	KP_FETCH_RESP_SESSION_ID = 2,       /* v7+ */
	KP_FETCH_RESP_RESPONSES = 3,
	KP_FETCH_RESP_NODE_ENDPOINTS = 4, /* tagged, v16+ */
	/* FetchableTopicResponse */
	KP_FETCH_RESP_TOPIC_PARTITIONS = 2,
	/* PartitionData */
	KP_FETCH_RESP_PART_PARTITION_INDEX = 0,
	KP_FETCH_RESP_PART_ERROR_CODE = 1,
	KP_FETCH_RESP_PART_HIGH_WATERMARK = 2,
	KP_FETCH_RESP_PART_ABORTED_TRANSACTIONS = 8, /* v4+, nullable */
	KP_FETCH_RESP_PART_CURRENT_LEADER = 6,         /* tagged, v12+ */
	KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA = 9, /* v11+ */
	KP_FETCH_RESP_PART_RECORDS = 10,
	/* LeaderIdAndEpoch */
	KP_FETCH_LEADER_ID = 0,
	KP_FETCH_LEADER_EPOCH = 1,
	/* NodeEndpoint */
	KP_FETCH_ENDPOINT_NODE_ID = 0,
	KP_FETCH_ENDPOINT_HOST = 1,
	KP_FETCH_ENDPOINT_PORT = 2,
	KP_FETCH_ENDPOINT_RACK = 3,
};

/* ListOffsets (listoffsets.c) */
extern const struct kp_schema kp_list_offsets_request;
extern const struct kp_schema kp_list_offsets_response;

/* Indexes into the struct named in each comment (checked in test_offset_apis.c). */
enum kp_list_offsets_field {
	/* ListOffsetsRequest */
	KP_LIST_OFFSETS_REQ_REPLICA_ID = 0,
	KP_LIST_OFFSETS_REQ_ISOLATION_LEVEL = 1, /* v2+ */
	KP_LIST_OFFSETS_REQ_TOPICS = 2,
	KP_LIST_OFFSETS_REQ_TIMEOUT_MS = 3, /* v10+ */
	/* ListOffsetsTopic, ListOffsetsTopicResponse */
	KP_LIST_OFFSETS_TOPIC_NAME = 0,
	KP_LIST_OFFSETS_TOPIC_PARTITIONS = 1,
	/* ListOffsetsPartition */
	KP_LIST_OFFSETS_PART_PARTITION_INDEX = 0,
	KP_LIST_OFFSETS_PART_CURRENT_LEADER_EPOCH = 1, /* v4+ */
	KP_LIST_OFFSETS_PART_TIMESTAMP = 2,
	KP_LIST_OFFSETS_PART_MAX_NUM_OFFSETS = 3, /* v0 */
	/* ListOffsetsResponse */
	KP_LIST_OFFSETS_RESP_THROTTLE_TIME_MS = 0, /* v2+ */
	KP_LIST_OFFSETS_RESP_TOPICS = 1,
	/* ListOffsetsPartitionResponse */
	KP_LIST_OFFSETS_RESP_PART_PARTITION_INDEX = 0,
	KP_LIST_OFFSETS_RESP_PART_ERROR_CODE = 1,
	KP_LIST_OFFSETS_RESP_PART_OLD_STYLE_OFFSETS = 2, /* v0 */
	KP_LIST_OFFSETS_RESP_PART_TIMESTAMP = 3,         /* v1+ */
	KP_LIST_OFFSETS_RESP_PART_OFFSET = 4,            /* v1+ */
	KP_LIST_OFFSETS_RESP_PART_LEADER_EPOCH = 5,      /* v4+ */
};

/* OffsetForLeaderEpoch (offsetforleaderepoch.c) */
extern const struct kp_schema kp_offset_for_leader_epoch_request;
extern const struct kp_schema kp_offset_for_leader_epoch_response;

enum kp_offset_for_leader_epoch_field {
	/* OffsetForLeaderEpochRequest */
	KP_OFFSET_FOR_LEADER_EPOCH_REQ_REPLICA_ID = 0, /* v3+ */
	KP_OFFSET_FOR_LEADER_EPOCH_REQ_TOPICS = 1,
	/* OffsetForLeaderTopic, OffsetForLeaderTopicResult */
	KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_TOPIC = 0,
	KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_PARTITIONS = 1,
	/* OffsetForLeaderPartition */
	KP_OFFSET_FOR_LEADER_EPOCH_PART_PARTITION = 0,
	KP_OFFSET_FOR_LEADER_EPOCH_PART_CURRENT_LEADER_EPOCH = 1, /* v2+ */
	KP_OFFSET_FOR_LEADER_EPOCH_PART_LEADER_EPOCH = 2,
	/* OffsetForLeaderEpochResponse */
	KP_OFFSET_FOR_LEADER_EPOCH_RESP_THROTTLE_TIME_MS = 0, /* v2+ */
	KP_OFFSET_FOR_LEADER_EPOCH_RESP_TOPICS = 1,
	/* EpochEndOffset */
	KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_ERROR_CODE = 0,
	KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_PARTITION = 1,
	KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_LEADER_EPOCH = 2, /* v1+ */
	KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_END_OFFSET = 3,
};

/* DeleteRecords (deleterecords.c) */
extern const struct kp_schema kp_delete_records_request;
extern const struct kp_schema kp_delete_records_response;

enum kp_delete_records_field {
	/* DeleteRecordsRequest */
	KP_DELETE_RECORDS_REQ_TOPICS = 0,
	KP_DELETE_RECORDS_REQ_TIMEOUT_MS = 1,
	/* DeleteRecordsTopic, DeleteRecordsTopicResult */
	KP_DELETE_RECORDS_TOPIC_NAME = 0,
	KP_DELETE_RECORDS_TOPIC_PARTITIONS = 1,
	/* DeleteRecordsPartition */
	KP_DELETE_RECORDS_PART_PARTITION_INDEX = 0,
	KP_DELETE_RECORDS_PART_OFFSET = 1,
	/* DeleteRecordsResponse */
	KP_DELETE_RECORDS_RESP_THROTTLE_TIME_MS = 0,
	KP_DELETE_RECORDS_RESP_TOPICS = 1,
	/* DeleteRecordsPartitionResult */
	KP_DELETE_RECORDS_RESP_PART_PARTITION_INDEX = 0,
	KP_DELETE_RECORDS_RESP_PART_LOW_WATERMARK = 1,
	KP_DELETE_RECORDS_RESP_PART_ERROR_CODE = 2,
};

#endif
