/*
 * libFuzzer target: the server name a TLS client sends, matched against
 * sni.host.pattern (routing/sni). The name is the client's word: any bytes.
 * Input: byte 0 picks a pattern; the rest (up to 300 bytes, cut at a NUL as
 * OpenSSL hands names over) is the name.
 *
 * Properties: never reads past the name; a name that matches gives a node id
 * >= 0, and for a pattern without labels the node's name made again equals
 * the input, ignoring case (one name per node: no leading zeros, no sign).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const patterns[] = {
    "broker-$(nodeId).kafka.example",
    "b$(nodeId)-$(rack)-$(region).k",
    "$(region).$(rack).$(nodeId)",
    "$(rack)$(region)$(nodeId)$(rack)",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 301)
		return 0;
	const char *pattern = patterns[data[0] % (sizeof(patterns) / sizeof(patterns[0]))];
	char *name = malloc(size); /* exactly the name and its NUL: an over-read is caught by ASan */
	if (!name)
		abort();
	memcpy(name, data + 1, size - 1);
	name[size - 1] = '\0';
	int32_t node = -1;
	if (kr_sni_node(pattern, name, &node)) {
		if (node < 0)
			abort();
		if (!strstr(pattern, "$(rack)") && !strstr(pattern, "$(region)")) {
			char again[512];
			if (!kr_sni_name(pattern, node, NULL, NULL, again, sizeof(again)) || strcasecmp(again, name) != 0)
				abort();
		}
	}
	free(name);
	return 0;
}
