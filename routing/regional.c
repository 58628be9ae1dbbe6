#include "regional.h"

#include <stdio.h>
#include <string.h>
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
