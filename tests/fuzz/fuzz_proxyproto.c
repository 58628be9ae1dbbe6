/*
 * libFuzzer target: the PROXY protocol header parser (protocol/proxyproto).
 * Input: byte 0 picks the version (even: v1, odd: v2); the rest is what a
 * connection starts with.
 *
 * Properties: never reads past the input; a header it accepts is within the
 * input and within its version's bound; every prefix of an accepted header is
 * "incomplete", never "malformed" nor a different header; the source, when
 * named, is IPv4 or IPv6.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum kp_proxy_version v = data[0] % 2 ? KP_PROXY_V2 : KP_PROXY_V1;
	size_t len = size - 1;
	uint8_t *copy = malloc(len ? len : 1); /* exactly the input: an over-read is caught by ASan */
	if (!copy)
		abort();
	memcpy(copy, data + 1, len);
	size_t consumed = 0;
	bool has = false;
	struct sockaddr_storage src;
	socklen_t srclen = 0;
	const char *why = NULL;
	enum kp_proxy_status st = kp_proxy_parse(v, copy, len, &consumed, &has, &src, &srclen, &why);
	if (st == KP_PROXY_MALFORMED && !why)
		abort();
	if (st == KP_PROXY_OK) {
		if (consumed == 0 || consumed > len || consumed > (v == KP_PROXY_V1 ? KP_PROXY_V1_MAX : KP_PROXY_V2_MAX))
			abort();
		if (has && !((src.ss_family == AF_INET && srclen == sizeof(struct sockaddr_in)) ||
		             (src.ss_family == AF_INET6 && srclen == sizeof(struct sockaddr_in6))))
			abort();
		for (size_t n = 0; n < consumed; n += 1 + n / 8) {
			size_t c2;
			bool h2;
			if (kp_proxy_parse(v, copy, n, &c2, &h2, &src, &srclen, &why) != KP_PROXY_INCOMPLETE)
				abort();
		}
	}
	free(copy);
	return 0;
}
