#include "regional.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

int32_t kr_jump_hash(uint64_t key, int32_t buckets)
{
	if (buckets < 1)
		return 0;
	/* Follow the key's pseudo-random sequence of jumps; the last bucket
	 * reached below `buckets` is its bucket. A linear congruential step
	 * drives it (the paper's constant), so the loop runs O(log buckets)
	 * times on average and at most `buckets` times. */
	int64_t b = -1, j = 0;
	while (j < buckets) {
		b = j;
		key = key * UINT64_C(2862933555777941757) + 1;
		j = (int64_t)((double)(b + 1) * ((double)(INT64_C(1) << 31) / (double)((key >> 33) + 1)));
	}
	return (int32_t)b;
}

uint64_t kr_partition_key(const char *topic, size_t topic_len, int32_t partition)
{
	/* The partition's number (big-endian), hashed with the topic's hash as seed. */
	uint8_t p[4] = {(uint8_t)((uint32_t)partition >> 24), (uint8_t)((uint32_t)partition >> 16),
	                (uint8_t)((uint32_t)partition >> 8), (uint8_t)partition};
	return XXH3_64bits_withSeed(p, sizeof(p), XXH3_64bits(topic, topic_len));
}

int32_t kr_virtual_leader(const int32_t *ids, size_t cnt, const char *topic, size_t topic_len, int32_t partition)
{
	if (cnt == 0 || cnt > INT32_MAX)
		return -1;
	return ids[kr_jump_hash(kr_partition_key(topic, topic_len, partition), (int32_t)cnt)];
}

int32_t kr_regional_node_id(const char *host, uint16_t port)
{
	char addr[300];
	int n = snprintf(addr, sizeof(addr), "%s:%u", host, port);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof(addr) ? (size_t)n : sizeof(addr) - 1;
	return (int32_t)(XXH32(addr, len, 0) & ((UINT32_C(1) << 30) - 1)) + 1;
}

/* ---- the region's node set ---------------------------------------------- */

static void kr_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void kr_why(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

void kr_regional_nodes_init(struct kr_regional_nodes *set)
{
	set->cnt = 0;
	set->finished = false;
}

/* A DNS name or IPv4 address ([A-Za-z0-9._-]), or an IPv6 address (hex digits, ':' and '.'). */
static bool kr_valid_host(const char *host, size_t len)
{
	if (len == 0 || len >= KR_REGIONAL_HOST_MAX)
		return false;
	bool v6 = memchr(host, ':', len) != NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)host[i];
		bool ok = v6 ? isxdigit(ch) || ch == ':' || ch == '.'
		             : isalnum(ch) || ch == '.' || ch == '-' || ch == '_';
		if (!ok)
			return false;
	}
	return true;
}

bool kr_regional_nodes_add(struct kr_regional_nodes *set, int32_t id, const char *host, size_t host_len,
                           uint16_t port, char *why, size_t whylen)
{
	if (set->cnt >= KR_REGIONAL_NODES_MAX) {
		kr_why(why, whylen, "more than %d nodes", KR_REGIONAL_NODES_MAX);
		return false;
	}
	if (!kr_valid_host(host, host_len)) {
		int shown = host_len > 300 ? 300 : (int)host_len;
		kr_why(why, whylen, "'%.*s' is not a host name or address of 1..%d characters", shown, host,
		       KR_REGIONAL_HOST_MAX - 1);
		return false;
	}
	if (port == 0) {
		kr_why(why, whylen, "port 0 of %.*s is not a port", (int)host_len, host);
		return false;
	}
	struct kr_regional_node *n = &set->nodes[set->cnt];
	memcpy(n->host, host, host_len);
	n->host[host_len] = '\0';
	n->port = port;
	n->id = id >= 0 ? id : kr_regional_node_id(n->host, port);
	set->ids[set->cnt++] = n->id;
	set->finished = false;
	return true;
}

/* A decimal number in [0, max] from exactly len bytes. */
static bool kr_parse_number(const char *s, size_t len, long long max, long long *out)
{
	long long v = 0;
	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* One "[ID@]HOST:PORT" item of len bytes, spaces already trimmed. */
static bool kr_parse_node(struct kr_regional_nodes *set, const char *s, size_t len, char *why, size_t whylen)
{
	const char *end = s + len, *at = memchr(s, '@', len), *host = s, *colon;
	long long id = -1, port;
	size_t host_len;
	if (at && !kr_parse_number(s, (size_t)(at - s), INT32_MAX, &id)) {
		kr_why(why, whylen, "'%.*s': node id '%.*s' is not an integer in 0..%d", (int)len, s, (int)(at - s), s,
		       INT32_MAX);
		return false;
	}
	if (at)
		host = at + 1;
	if (host < end && *host == '[') { /* [IPv6]:PORT */
		const char *close = memchr(host, ']', (size_t)(end - host));
		if (!close || close + 1 >= end || close[1] != ':')
			goto bad_form;
		colon = close + 1;
		host_len = (size_t)(close - host - 1);
		host++;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		if (!colon || memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			goto bad_form;
		host_len = (size_t)(colon - host);
	}
	if (!kr_parse_number(colon + 1, (size_t)(end - colon - 1), 65535, &port) || port == 0) {
		kr_why(why, whylen, "'%.*s': port '%.*s' is not a number in 1..65535", (int)len, s,
		       (int)(end - colon - 1), colon + 1);
		return false;
	}
	return kr_regional_nodes_add(set, (int32_t)id, host, host_len, (uint16_t)port, why, whylen);
bad_form:
	kr_why(why, whylen, "'%.*s' is not [ID@]HOST:PORT (an IPv6 address in brackets)", (int)len, s);
	return false;
}

bool kr_regional_nodes_parse(struct kr_regional_nodes *set, const char *text, char *why, size_t whylen)
{
	const char *p = text;
	for (;;) {
		const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
		const char *b = p, *e = end;
		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (b == e) {
			kr_why(why, whylen, "an empty item in the node list");
			return false;
		}
		if (!kr_parse_node(set, b, (size_t)(e - b), why, whylen))
			return false;
		if (!comma)
			return true;
		p = comma + 1;
	}
}

static int kr_node_cmp(const void *a, const void *b)
{
	const struct kr_regional_node *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

bool kr_regional_nodes_finish(struct kr_regional_nodes *set, char *why, size_t whylen)
{
	set->finished = false;
	if (set->cnt == 0) {
		kr_why(why, whylen, "no nodes");
		return false;
	}
	qsort(set->nodes, set->cnt, sizeof(set->nodes[0]), kr_node_cmp);
	for (size_t i = 0; i < set->cnt; i++)
		set->ids[i] = set->nodes[i].id;
	for (size_t i = 1; i < set->cnt; i++) {
		if (set->ids[i] == set->ids[i - 1]) {
			kr_why(why, whylen, "node id %d is given to both %s:%u and %s:%u", (int)set->ids[i],
			       set->nodes[i - 1].host, set->nodes[i - 1].port, set->nodes[i].host, set->nodes[i].port);
			return false;
		}
	}
	/* At most 64 nodes: comparing every pair costs less than sorting by address. */
	for (size_t i = 0; i < set->cnt; i++) {
		for (size_t j = i + 1; j < set->cnt; j++) {
			const struct kr_regional_node *a = &set->nodes[i], *b = &set->nodes[j];
			if (a->port == b->port && strcasecmp(a->host, b->host) == 0) {
				kr_why(why, whylen, "%s:%u is listed twice (nodes %d and %d)", b->host, b->port,
				       (int)a->id, (int)b->id);
				return false;
			}
		}
	}
	set->finished = true;
	return true;
}

bool kr_regional_nodes_equal(const struct kr_regional_nodes *a, const struct kr_regional_nodes *b)
{
	if (a->cnt != b->cnt)
		return false;
	for (size_t i = 0; i < a->cnt; i++) {
		const struct kr_regional_node *x = &a->nodes[i], *y = &b->nodes[i];
		if (x->id != y->id || x->port != y->port || strcmp(x->host, y->host) != 0)
			return false;
	}
	return true;
}

uint64_t kr_regional_nodes_digest(const struct kr_regional_nodes *set)
{
	/* Each node's bytes hashed with the digest so far as seed: order and every byte count. */
	uint64_t h = set->cnt;
	for (size_t i = 0; i < set->cnt; i++) {
		const struct kr_regional_node *n = &set->nodes[i];
		uint8_t b[6 + KR_REGIONAL_HOST_MAX];
		size_t hl = strnlen(n->host, KR_REGIONAL_HOST_MAX - 1);
		b[0] = (uint8_t)((uint32_t)n->id >> 24);
		b[1] = (uint8_t)((uint32_t)n->id >> 16);
		b[2] = (uint8_t)((uint32_t)n->id >> 8);
		b[3] = (uint8_t)n->id;
		b[4] = (uint8_t)(n->port >> 8);
		b[5] = (uint8_t)n->port;
		memcpy(b + 6, n->host, hl);
		h = XXH3_64bits_withSeed(b, 6 + hl, h);
	}
	return h;
}

int kr_regional_nodes_index(const struct kr_regional_nodes *set, int32_t id)
{
	size_t lo = 0, hi = set->cnt;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (set->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < set->cnt && set->ids[lo] == id ? (int)lo : -1;
}

int kr_regional_leader(const struct kr_regional_nodes *set, const char *topic, size_t topic_len, int32_t partition)
{
	if (set->cnt == 0)
		return -1;
	return kr_jump_hash(kr_partition_key(topic, topic_len, partition), (int32_t)set->cnt);
}

int kr_regional_coordinator(const struct kr_regional_nodes *set, int8_t key_type, const char *key, size_t key_len)
{
	if (set->cnt == 0)
		return -1;
	return kr_jump_hash(XXH3_64bits_withSeed(key, key_len, (uint64_t)(uint8_t)key_type + 1), (int32_t)set->cnt);
}

int32_t kr_regional_controller(const struct kr_regional_nodes *set)
{
	return set->cnt ? set->ids[0] : -1;
}

size_t kr_regional_replicas(const struct kr_regional_nodes *set, int leader, int32_t *out)
{
	if (leader < 0 || (size_t)leader >= set->cnt)
		return 0;
	size_t k = 0;
	out[k++] = set->ids[leader];
	for (size_t i = 0; i < set->cnt; i++)
		if (i != (size_t)leader)
			out[k++] = set->ids[i];
	return k;
}
