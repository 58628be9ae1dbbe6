/*
 * coordinator: the key each group and transaction request is routed by,
 * on both sides of each API's flexible boundary, from hand-written bodies.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "coordinator.h"

static uint8_t buf[256];

static void key_is(int16_t api, int16_t ver, const char *hex, enum kp_coord_type type, const char *key)
{
	size_t n = unhex(hex, buf, sizeof(buf));
	bool flexible = kp_api_flexible(kp_api_get(api), ver);
	enum kp_coord_type t;
	struct kp_span k;
	cr_assert(kp_coordinator_key(api, ver, flexible, buf, n, &t, &k, NULL), "api %d v%d", api, ver);
	cr_assert_eq(t, type, "api %d v%d: type %d", api, ver, t);
	if (!key) {
		cr_assert_eq(k.len, 0, "api %d v%d", api, ver);
		return;
	}
	cr_assert_eq((size_t)k.len, strlen(key), "api %d v%d", api, ver);
	cr_assert_arr_eq(k.ptr, key, strlen(key), "api %d v%d", api, ver);
}

Test(coordinator, group_apis_are_routed_by_their_group_id_on_both_sides_of_the_flexible_boundary)
{
	/* JoinGroup v5 (a classic string), v6 (compact): GroupId "g1", then the rest. */
	key_is(11, 5, "0002 6731 00002710", KP_COORD_GROUP, "g1");
	key_is(11, 6, "03 6731 00002710", KP_COORD_GROUP, "g1");
	key_is(12, 3, "0003 677270 00000001", KP_COORD_GROUP, "grp");  /* Heartbeat */
	key_is(12, 4, "04 677270 00000001", KP_COORD_GROUP, "grp");
	key_is(13, 3, "0001 61", KP_COORD_GROUP, "a");                /* LeaveGroup */
	key_is(13, 4, "02 61", KP_COORD_GROUP, "a");
	key_is(14, 4, "05 61626364", KP_COORD_GROUP, "abcd");         /* SyncGroup v4: flexible */
	key_is(8, 7, "0001 67", KP_COORD_GROUP, "g");                 /* OffsetCommit */
	key_is(8, 8, "02 67", KP_COORD_GROUP, "g");
	key_is(9, 5, "0001 67", KP_COORD_GROUP, "g");                 /* OffsetFetch v0-7 */
	key_is(9, 7, "02 67", KP_COORD_GROUP, "g");
	key_is(47, 0, "0001 67", KP_COORD_GROUP, "g");                /* OffsetDelete */
	key_is(68, 0, "02 67 01", KP_COORD_GROUP, "g");               /* ConsumerGroupHeartbeat */
	key_is(88, 1, "03 6773 01", KP_COORD_GROUP, "gs");            /* StreamsGroupHeartbeat */
	key_is(93, 0, "03 6773 01", KP_COORD_GROUP, "gs");            /* StreamsGroupTopologyDescriptionUpdate */
}

Test(coordinator, transaction_apis_are_routed_by_their_transactional_id)
{
	key_is(22, 1, "0002 7478 00007530", KP_COORD_TRANSACTION, "tx"); /* InitProducerId */
	key_is(22, 2, "03 7478 00007530", KP_COORD_TRANSACTION, "tx");
	key_is(22, 4, "00 00007530", KP_COORD_NONE, NULL);                /* no TransactionalId: any broker */
	key_is(22, 1, "ffff 00007530", KP_COORD_NONE, NULL);
	key_is(24, 3, "03 7478", KP_COORD_TRANSACTION, "tx");             /* AddPartitionsToTxn v3 */
	key_is(25, 3, "03 7478", KP_COORD_TRANSACTION, "tx");             /* AddOffsetsToTxn */
	key_is(26, 2, "0002 7478", KP_COORD_TRANSACTION, "tx");           /* EndTxn */
	/* TxnOffsetCommit: TransactionalId, then GroupId: the group's coordinator. */
	key_is(28, 2, "0002 7478 0001 67", KP_COORD_GROUP, "g");
	key_is(28, 3, "03 7478 02 67", KP_COORD_GROUP, "g");
}

Test(coordinator, other_apis_and_batched_versions_name_no_coordinator)
{
	key_is(0, 9, "00", KP_COORD_NONE, NULL);     /* Produce */
	key_is(9, 8, "02 02 67", KP_COORD_NONE, NULL); /* OffsetFetch v8: Groups */
	key_is(24, 4, "02", KP_COORD_NONE, NULL);     /* AddPartitionsToTxn v4: Transactions */
	key_is(15, 5, "02 02 67", KP_COORD_NONE, NULL); /* DescribeGroups: several groups */
	cr_assert(kp_coordinator_api(11, 9) && kp_coordinator_api(9, 7) && kp_coordinator_api(28, 4));
	cr_assert_not(kp_coordinator_api(9, 8), "OffsetFetch v8: several groups");
	cr_assert_not(kp_coordinator_api(3, 12), "Metadata");
	cr_assert_not(kp_coordinator_api(12, -1), "a negative version");
}

Test(coordinator, a_key_that_does_not_read_is_an_error_naming_the_field)
{
	struct kp_cursor c;
	enum kp_coord_type t;
	struct kp_span k;
	size_t n = unhex("0005 6731", buf, sizeof(buf)); /* 5 bytes said, 2 there */
	cr_assert_not(kp_coordinator_key(11, 5, false, buf, n, &t, &k, &c));
	cr_assert_eq(c.err, KP_ERR_TRUNCATED);
	n = unhex("ffff", buf, sizeof(buf)); /* a null GroupId */
	cr_assert_not(kp_coordinator_key(12, 3, false, buf, n, &t, &k, &c));
	n = unhex("0002 7478", buf, sizeof(buf)); /* TxnOffsetCommit without its GroupId */
	cr_assert_not(kp_coordinator_key(28, 2, false, buf, n, &t, &k, &c));
	cr_assert_str_eq(c.err_field, "GroupId");
	cr_assert_not(kp_coordinator_key(11, 5, false, NULL, 0, &t, &k, &c));
}

Test(coordinator, the_top_level_error_is_read_where_each_api_keeps_it)
{
	int16_t e;
	size_t n = unhex("0010 00000000", buf, sizeof(buf)); /* ErrorCode 16 first */
	cr_assert(kp_coordinator_error(11, 1, buf, n, &e) && e == 16, "JoinGroup v1: ErrorCode first");
	cr_assert(kp_coordinator_error(12, 0, buf, n, &e) && e == 16, "Heartbeat v0");
	cr_assert(kp_coordinator_error(47, 0, buf, n, &e) && e == 16, "OffsetDelete: ErrorCode, ThrottleTimeMs");
	n = unhex("00000064 000f", buf, sizeof(buf)); /* ThrottleTimeMs 100, ErrorCode 15 */
	cr_assert(kp_coordinator_error(11, 2, buf, n, &e) && e == 15, "JoinGroup v2");
	cr_assert(kp_coordinator_error(14, 5, buf, n, &e) && e == 15, "SyncGroup v5");
	cr_assert(kp_coordinator_error(22, 0, buf, n, &e) && e == 15, "InitProducerId");
	cr_assert(kp_coordinator_error(26, 4, buf, n, &e) && e == 15, "EndTxn");
	cr_assert(kp_coordinator_error(68, 0, buf, n, &e) && e == 15, "ConsumerGroupHeartbeat");
	cr_assert(kp_coordinator_error(88, 1, buf, n, &e) && e == 15, "StreamsGroupHeartbeat");
	cr_assert(kp_coordinator_error(93, 0, buf, n, &e) && e == 15, "StreamsGroupTopologyDescriptionUpdate");
	cr_assert_not(kp_coordinator_error(8, 8, buf, n, &e), "OffsetCommit: per partition");
	cr_assert_not(kp_coordinator_error(9, 7, buf, n, &e), "OffsetFetch: after its topics");
	cr_assert_not(kp_coordinator_error(11, 2, buf, 5, &e), "too short");
	cr_assert_not(kp_coordinator_error(12, 0, NULL, 0, &e));
}

Test(coordinator, only_joingroup_and_syncgroup_are_held_by_the_coordinator)
{
	cr_assert(kp_coordinator_holds(11), "JoinGroup waits for the other members");
	cr_assert(kp_coordinator_holds(14), "SyncGroup waits for the leader's assignment");
	const int16_t at_once[] = {0, 1, 8, 9, 10, 12, 13, 22, 24, 25, 26, 28, 47, 68, -1, 32767};
	for (size_t i = 0; i < sizeof(at_once) / sizeof(at_once[0]); i++)
		cr_assert_not(kp_coordinator_holds(at_once[i]), "api %d is answered at once", at_once[i]);
}
