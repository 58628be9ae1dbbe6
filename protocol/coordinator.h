/*
 * coordinator: which coordinator a group or transaction request is for, read
 * from the request's body (mode=regional routes it there: issue 16).
 *
 * Kafka routes a group API to the coordinator of its group and a
 * transaction API to the coordinator of its transactional id; a client finds
 * either with FindCoordinator (KeyType 0 group, 1 transaction). The APIs
 * here name that key as the first field of their body (TxnOffsetCommit names
 * its TransactionalId, then the GroupId whose coordinator it goes to):
 *
 *   api (key)                 versions     key               type
 *   OffsetCommit (8)          all          GroupId           group
 *   OffsetFetch (9)           0-7          GroupId           group  (8+: several groups)
 *   JoinGroup (11)            all          GroupId           group
 *   Heartbeat (12)            all          GroupId           group
 *   LeaveGroup (13)           all          GroupId           group
 *   SyncGroup (14)            all          GroupId           group
 *   InitProducerId (22)       all          TransactionalId   transaction (null: any broker)
 *   AddPartitionsToTxn (24)   0-3          TransactionalId   transaction (4+: brokers' batches)
 *   AddOffsetsToTxn (25)      all          TransactionalId   transaction
 *   EndTxn (26)               all          TransactionalId   transaction
 *   TxnOffsetCommit (28)      all          GroupId (second)  group
 *   OffsetDelete (47)         all          GroupId           group
 *   ConsumerGroupHeartbeat (68) all        GroupId           group
 *   StreamsGroupHeartbeat (88) all         GroupId           group
 *   StreamsGroupTopologyDescriptionUpdate (93) GroupId       group
 *
 * No sockets, no allocation.
 */
#ifndef KP_COORDINATOR_H
#define KP_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cursor.h"

enum kp_coord_type {
	KP_COORD_NONE = -1,       /* not a request for one coordinator */
	KP_COORD_GROUP = 0,       /* FindCoordinator KeyType 0 */
	KP_COORD_TRANSACTION = 1, /* KeyType 1 */
};

/* Whether requests of (api, ver) are routed by a key (the table above): only their bodies need reading. */
bool kp_coordinator_api(int16_t api, int16_t ver);

/*
 * The coordinator request (api, ver; flexible: its body's encoding) of
 * body[0..len) is for: *type and *key (pointing into body). KP_COORD_NONE
 * (key empty) for an API or version not in the table above, and for an
 * InitProducerId without a TransactionalId. False, with c's error set (c
 * may be NULL), when the key cannot be read.
 */
bool kp_coordinator_key(int16_t api, int16_t ver, bool flexible, const uint8_t *body, size_t len,
                        enum kp_coord_type *type, struct kp_span *key, struct kp_cursor *c);

/*
 * The top-level ErrorCode of a coordinator API's response body (api, ver),
 * for the APIs that keep it at a fixed place (ErrorCode first in their
 * early versions, else after ThrottleTimeMs): JoinGroup, Heartbeat,
 * LeaveGroup, SyncGroup, InitProducerId, AddOffsetsToTxn, EndTxn,
 * OffsetDelete, ConsumerGroupHeartbeat, StreamsGroupHeartbeat. False for the others (OffsetCommit's
 * and TxnOffsetCommit's errors are per partition, OffsetFetch's follow its
 * topics) and for a body too short to hold it.
 */
bool kp_coordinator_error(int16_t api, int16_t ver, const uint8_t *body, size_t len, int16_t *error);

/*
 * Whether the coordinator holds a request of `api` until its group's
 * rebalance gets that far, rather than answering at once: JoinGroup (until
 * the members have joined, up to the group's rebalance timeout) and
 * SyncGroup (a follower's, until the leader's assignment). A broker reads a
 * connection's next request only once it answered the last, so a request
 * held behind one of these (another member's JoinGroup: the one the first
 * waits for) waits for the rebalance timeout.
 */
bool kp_coordinator_holds(int16_t api);

/* NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE: the coordinator is elsewhere, or moving. */
#define KP_ERR_NOT_COORDINATOR           16
#define KP_ERR_COORDINATOR_NOT_AVAILABLE 15

#endif
