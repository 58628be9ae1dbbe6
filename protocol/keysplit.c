/*
 * keysplit: requests naming several group or transaction keys, split by key
 * and merged back; listings gathered (keysplit.h). Field indexes are those
 * of groups.c's tables (tests/unit/test_keysplit.c checks them by name).
 */
#include "keysplit.h"

#include <string.h>

#include "api.h"
#include "coordinator.h"
#include "messages.h"

const struct kp_keysplit_layout kp_keysplit_describe_groups = {
    .request = &kp_describe_groups_request,
    .response = &kp_describe_groups_response,
    .key_type = KP_COORD_GROUP,
    .req_keys = 0,   /* Groups */
    .req_key = -1,   /* of strings */
    .resp_items = 1, /* Groups */
    .resp_key = 2,   /* GroupId */
    .resp_error = 0, /* ErrorCode */
    .error_code = -1,
    .throttle_time_ms = 0,
};

const struct kp_keysplit_layout kp_keysplit_delete_groups = {
    .request = &kp_delete_groups_request,
    .response = &kp_delete_groups_response,
    .key_type = KP_COORD_GROUP,
    .req_keys = 0, /* GroupsNames */
    .req_key = -1,
    .resp_items = 1, /* Results */
    .resp_key = 0,   /* GroupId */
    .resp_error = 1, /* ErrorCode */
    .error_code = -1,
    .throttle_time_ms = 0,
};

const struct kp_keysplit_layout kp_keysplit_offset_fetch = {
    .request = &kp_offset_fetch_request,
    .response = &kp_offset_fetch_response,
    .min_version = 8,
    .key_type = KP_COORD_GROUP,
    .req_keys = 2,   /* Groups */
    .req_key = 0,    /* GroupId */
    .resp_items = 3, /* Groups */
    .resp_key = 0,   /* GroupId */
    .resp_error = 2, /* ErrorCode */
    .error_code = -1,
    .throttle_time_ms = 0,
};

const struct kp_keysplit_layout kp_keysplit_consumer_group_describe = {
    .request = &kp_consumer_group_describe_request,
    .response = &kp_consumer_group_describe_response,
    .key_type = KP_COORD_GROUP,
    .req_keys = 0, /* GroupIds */
    .req_key = -1,
    .resp_items = 1, /* Groups */
    .resp_key = 2,   /* GroupId */
    .resp_error = 0, /* ErrorCode */
    .error_code = -1,
    .throttle_time_ms = 0,
};

const struct kp_keysplit_layout kp_keysplit_describe_transactions = {
    .request = &kp_describe_transactions_request,
    .response = &kp_describe_transactions_response,
    .key_type = KP_COORD_TRANSACTION,
    .req_keys = 0, /* TransactionalIds */
    .req_key = -1,
    .resp_items = 1, /* TransactionStates */
    .resp_key = 1,   /* TransactionalId */
    .resp_error = 0, /* ErrorCode */
    .error_code = -1,
    .throttle_time_ms = 0,
};

const struct kp_keysplit_layout kp_keysplit_list_groups = {
    .request = &kp_list_groups_request,
    .response = &kp_list_groups_response,
    .key_type = KP_COORD_GROUP,
    .req_keys = -1,
    .req_key = -1,
    .resp_items = 2, /* Groups */
    .resp_key = 0,   /* GroupId */
    .resp_error = -1,
    .error_code = 1, /* ErrorCode */
    .throttle_time_ms = 0,
};

const struct kp_keysplit_layout kp_keysplit_list_transactions = {
    .request = &kp_list_transactions_request,
    .response = &kp_list_transactions_response,
    .key_type = KP_COORD_TRANSACTION,
    .req_keys = -1,
    .req_key = -1,
    .resp_items = 3, /* TransactionStates */
    .resp_key = 0,   /* TransactionalId */
    .resp_error = -1,
    .error_code = 1, /* ErrorCode */
    .throttle_time_ms = 0,
};

const struct kp_keysplit_layout *kp_keysplit_layout(int16_t api, int16_t ver)
{
	switch (api) {
	case KP_API_OFFSET_FETCH: return ver >= kp_keysplit_offset_fetch.min_version ? &kp_keysplit_offset_fetch : NULL;
	case KP_API_DESCRIBE_GROUPS: return &kp_keysplit_describe_groups;
	case KP_API_LIST_GROUPS: return &kp_keysplit_list_groups;
	case KP_API_DELETE_GROUPS: return &kp_keysplit_delete_groups;
	case KP_API_CONSUMER_GROUP_DESCRIBE: return &kp_keysplit_consumer_group_describe;
	case KP_API_DESCRIBE_TRANSACTIONS: return &kp_keysplit_describe_transactions;
	case KP_API_LIST_TRANSACTIONS: return &kp_keysplit_list_transactions;
	default: return NULL;
	}
}

int32_t kp_keysplit_count(const struct kp_keysplit_layout *l, const struct kp_struct *req)
{
	if (!req || req->schema != l->request || l->req_keys < 0)
		return -1;
	int32_t n = req->v[l->req_keys].a.cnt;
	return n < 0 ? 0 : n;
}

static struct kp_span kp_keysplit_span(struct kp_span s)
{
	return s.len < 0 ? (struct kp_span){s.ptr, 0} : s;
}

struct kp_span kp_keysplit_key(const struct kp_keysplit_layout *l, const struct kp_struct *req, int32_t i)
{
	const struct kp_value *e = &req->v[l->req_keys].a.items[i];
	return kp_keysplit_span(l->req_key < 0 ? e->s : e->st->v[l->req_key].s);
}

/* A struct with st's values (shared, not deep-copied). */
static struct kp_struct *kp_keysplit_clone(struct kp_arena *a, const struct kp_struct *st)
{
	size_t size = sizeof(*st) + st->schema->nfields * sizeof(struct kp_value);
	struct kp_struct *c = kp_arena_alloc(a, size);
	if (c)
		memcpy(c, st, size);
	return c;
}

bool kp_keysplit_request(struct kp_arena *a, const struct kp_keysplit_layout *l, const struct kp_struct *req,
                         int16_t ver, const int32_t *dest, size_t n, int ndest, struct kp_struct **out)
{
	(void)ver;
	int32_t cnt = kp_keysplit_count(l, req);
	if (cnt < 0 || (size_t)cnt != n || ndest < 1)
		return false;
	int32_t *per = kp_arena_alloc(a, (size_t)ndest * sizeof(*per));
	if (!per)
		return false;
	memset(per, 0, (size_t)ndest * sizeof(*per));
	for (size_t i = 0; i < n; i++) {
		if (dest[i] >= ndest)
			return false;
		if (dest[i] >= 0)
			per[dest[i]]++;
	}
	const struct kp_list *keys = &req->v[l->req_keys].a;
	for (int d = 0; d < ndest; d++) {
		out[d] = NULL;
		if (per[d] == 0)
			continue;
		struct kp_struct *r = kp_keysplit_clone(a, req);
		struct kp_value *items = kp_arena_alloc(a, (size_t)per[d] * sizeof(*items));
		if (!r || !items)
			return false;
		int32_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (dest[i] == d)
				items[k++] = keys->items[i];
		r->v[l->req_keys].a = (struct kp_list){items, k};
		out[d] = r;
	}
	return true;
}

/* The answer's ThrottleTimeMs, or 0 (absent at this version). */
static int64_t kp_keysplit_throttle(const struct kp_keysplit_layout *l, const struct kp_struct *r)
{
	return l->throttle_time_ms >= 0 && r->v[l->throttle_time_ms].present ? r->v[l->throttle_time_ms].i : 0;
}

/* The client's answer's top level: the first present answer's fields, the largest ThrottleTimeMs. */
static struct kp_struct *kp_keysplit_top(struct kp_arena *a, const struct kp_keysplit_layout *l, int16_t ver,
                                         struct kp_struct *const *answers, int n)
{
	struct kp_struct *m = NULL;
	int64_t throttle = 0;
	for (int d = 0; d < n; d++) {
		if (!answers[d])
			continue;
		if (answers[d]->schema != l->response)
			return NULL;
		if (!m && !(m = kp_keysplit_clone(a, answers[d])))
			return NULL;
		int64_t t = kp_keysplit_throttle(l, answers[d]);
		throttle = t > throttle ? t : throttle;
	}
	if (!m && !(m = kp_struct_new(a, l->response, ver)))
		return NULL;
	if (l->throttle_time_ms >= 0 && m->v[l->throttle_time_ms].present)
		m->v[l->throttle_time_ms].i = throttle;
	return m;
}

static bool kp_keysplit_same(struct kp_span x, struct kp_span y)
{
	x = kp_keysplit_span(x);
	y = kp_keysplit_span(y);
	return x.len == y.len && (x.len == 0 || memcmp(x.ptr, y.ptr, (size_t)x.len) == 0);
}

struct kp_struct *kp_keysplit_merge(struct kp_arena *a, const struct kp_keysplit_layout *l, const struct kp_struct *req,
                                    int16_t ver, const int32_t *dest, struct kp_struct *const *answers, int ndest,
                                    int16_t error)
{
	int32_t n = kp_keysplit_count(l, req);
	struct kp_struct *m = n < 0 ? NULL : kp_keysplit_top(a, l, ver, answers, ndest);
	if (!m)
		return NULL;
	const struct kp_schema *elem = l->response->fields[l->resp_items].sub;
	/* taken[d][j]: element j of answer d went to an earlier key */
	bool **taken = kp_arena_alloc(a, (size_t)ndest * sizeof(*taken) + 1);
	struct kp_value *items = kp_arena_alloc(a, (size_t)n * sizeof(*items) + 1);
	if (!taken || !items)
		return NULL;
	for (int d = 0; d < ndest; d++) {
		taken[d] = NULL;
		int32_t cnt = answers[d] ? answers[d]->v[l->resp_items].a.cnt : 0;
		if (cnt > 0) {
			if (!(taken[d] = kp_arena_alloc(a, (size_t)cnt)))
				return NULL;
			memset(taken[d], 0, (size_t)cnt);
		}
	}
	for (int32_t i = 0; i < n; i++) {
		struct kp_span key = kp_keysplit_key(l, req, i);
		struct kp_struct *found = NULL;
		int32_t d = dest[i];
		if (d >= 0 && d < ndest && answers[d]) {
			const struct kp_list *got = &answers[d]->v[l->resp_items].a;
			for (int32_t j = 0; j < got->cnt && !found; j++) {
				if (!taken[d][j] && kp_keysplit_same(got->items[j].st->v[l->resp_key].s, key)) {
					taken[d][j] = true;
					found = got->items[j].st;
				}
			}
		}
		if (!found) {
			if (!(found = kp_struct_new(a, elem, ver)))
				return NULL;
			found->v[l->resp_key].s = key;
			found->v[l->resp_error].i = error;
		}
		items[i] = (struct kp_value){.st = found, .present = true};
	}
	m->v[l->resp_items].a = (struct kp_list){items, n};
	return m;
}

struct kp_struct *kp_keysplit_gather(struct kp_arena *a, const struct kp_keysplit_layout *l, int16_t ver,
                                     struct kp_struct *const *answers, int n, kp_keysplit_keep keep, void *ctx,
                                     int16_t missing_error)
{
	if (l->req_keys >= 0)
		return NULL;
	struct kp_struct *m = kp_keysplit_top(a, l, ver, answers, n);
	if (!m)
		return NULL;
	size_t total = 0;
	int64_t error = 0;
	bool missing = false;
	for (int d = 0; d < n; d++) {
		if (!answers[d]) {
			missing = true;
			continue;
		}
		int32_t cnt = answers[d]->v[l->resp_items].a.cnt;
		total += cnt > 0 ? (size_t)cnt : 0;
		if (!error && l->error_code >= 0)
			error = answers[d]->v[l->error_code].i;
	}
	struct kp_value *items = kp_arena_alloc(a, total * sizeof(*items) + 1);
	if (!items)
		return NULL;
	int32_t k = 0;
	for (int d = 0; d < n; d++) {
		if (!answers[d])
			continue;
		const struct kp_list *got = &answers[d]->v[l->resp_items].a;
		for (int32_t j = 0; j < got->cnt; j++)
			if (!keep || keep(kp_keysplit_span(got->items[j].st->v[l->resp_key].s), ctx))
				items[k++] = got->items[j];
	}
	m->v[l->resp_items].a = (struct kp_list){items, k};
	if (l->error_code >= 0)
		m->v[l->error_code].i = error ? error : missing ? missing_error : 0;
	return m;
}
