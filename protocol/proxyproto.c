#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t kp_proxy_v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static enum kp_proxy_status kp_proxy_bad(const char **why, const char *what)
{
	*why = what;
	return KP_PROXY_MALFORMED;
}

/* A decimal port, 0..65535, no sign, no leading zeros beyond "0". */
static bool kp_proxy_port(const char *s, uint16_t *out)
{
	size_t n = strlen(s);
	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static enum kp_proxy_status kp_proxy_v1(const uint8_t *p, size_t len, size_t *consumed, bool *has_src,
                                        struct sockaddr_storage *src, socklen_t *srclen, const char **why)
{
	static const char prefix[] = "PROXY ";
	size_t cmp = len < 6 ? len : 6;
	if (memcmp(p, prefix, cmp) != 0)
		return kp_proxy_bad(why, "no \"PROXY \" at the start (v1)");
	size_t end = 0;
	for (size_t i = 0; i + 1 < len && i + 1 < KP_PROXY_V1_MAX; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n') {
			end = i;
			break;
		}
		if (p[i] == '\0' || p[i] == '\n')
			return kp_proxy_bad(why, "a control byte inside the v1 line");
	}
	if (!end)
		return len >= KP_PROXY_V1_MAX ? kp_proxy_bad(why, "no CRLF within 107 bytes (v1)") : KP_PROXY_INCOMPLETE;
	char line[KP_PROXY_V1_MAX + 1];
	memcpy(line, p, end);
	line[end] = '\0';
	*consumed = end + 2;
	char *fields[7];
	int n = 0;
	for (char *save = NULL, *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == 7)
			return kp_proxy_bad(why, "too many fields (v1)");
		fields[n++] = t;
	}
	if (n >= 2 && strcmp(fields[1], "UNKNOWN") == 0) {
		*has_src = false;
		return KP_PROXY_OK;
	}
	if (n != 6)
		return kp_proxy_bad(why, "not PROXY TCP4|TCP6 SRC DST SPORT DPORT (v1)");
	uint16_t sport, dport;
	if (!kp_proxy_port(fields[4], &sport) || !kp_proxy_port(fields[5], &dport))
		return kp_proxy_bad(why, "a port that is not a number in 0..65535 (v1)");
	memset(src, 0, sizeof(*src));
	if (strcmp(fields[1], "TCP4") == 0) {
		struct sockaddr_in *in = (struct sockaddr_in *)src;
		struct in_addr dst;
		if (inet_pton(AF_INET, fields[2], &in->sin_addr) != 1 || inet_pton(AF_INET, fields[3], &dst) != 1)
			return kp_proxy_bad(why, "an address that is not IPv4 (v1 TCP4)");
		in->sin_family = AF_INET;
		in->sin_port = htons(sport);
		*srclen = sizeof(*in);
	} else if (strcmp(fields[1], "TCP6") == 0) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)src;
		struct in6_addr dst;
		if (inet_pton(AF_INET6, fields[2], &in6->sin6_addr) != 1 || inet_pton(AF_INET6, fields[3], &dst) != 1)
			return kp_proxy_bad(why, "an address that is not IPv6 (v1 TCP6)");
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(sport);
		*srclen = sizeof(*in6);
	} else {
		return kp_proxy_bad(why, "a protocol other than TCP4, TCP6 or UNKNOWN (v1)");
	}
	*has_src = true;
	return KP_PROXY_OK;
}

static enum kp_proxy_status kp_proxy_v2(const uint8_t *p, size_t len, size_t *consumed, bool *has_src,
                                        struct sockaddr_storage *src, socklen_t *srclen, const char **why)
{
	size_t cmp = len < sizeof(kp_proxy_v2_sig) ? len : sizeof(kp_proxy_v2_sig);
	if (memcmp(p, kp_proxy_v2_sig, cmp) != 0)
		return kp_proxy_bad(why, "no PROXY v2 signature at the start");
	if (len < 16)
		return KP_PROXY_INCOMPLETE;
	uint8_t ver_cmd = p[12], fam = p[13];
	size_t body = (size_t)p[14] << 8 | p[15];
	if ((ver_cmd >> 4) != 2)
		return kp_proxy_bad(why, "a version other than 2 in the v2 header");
	uint8_t cmd = ver_cmd & 0x0f;
	if (cmd > 1)
		return kp_proxy_bad(why, "a command other than LOCAL or PROXY (v2)");
	if (len < 16 + body)
		return KP_PROXY_INCOMPLETE;
	*consumed = 16 + body;
	*has_src = false;
	if (cmd == 0) /* LOCAL: the balancer's own connection (a health check) */
		return KP_PROXY_OK;
	memset(src, 0, sizeof(*src));
	switch (fam) {
	case 0x11: { /* TCP over IPv4 */
		if (body < 12)
			return kp_proxy_bad(why, "IPv4 addresses cut short (v2)");
		struct sockaddr_in *in = (struct sockaddr_in *)src;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, p + 16, 4);
		memcpy(&in->sin_port, p + 24, 2);
		*srclen = sizeof(*in);
		*has_src = true;
		return KP_PROXY_OK;
	}
	case 0x21: { /* TCP over IPv6 */
		if (body < 36)
			return kp_proxy_bad(why, "IPv6 addresses cut short (v2)");
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)src;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, p + 16, 16);
		memcpy(&in6->sin6_port, p + 48, 2);
		*srclen = sizeof(*in6);
		*has_src = true;
		return KP_PROXY_OK;
	}
	case 0x00: /* unspecified: keep the connection's address */
		return KP_PROXY_OK;
	default:
		return kp_proxy_bad(why, "a family other than TCP over IPv4 or IPv6 (v2)");
	}
}

enum kp_proxy_status kp_proxy_parse(enum kp_proxy_version version, const uint8_t *p, size_t len, size_t *consumed,
                                    bool *has_src, struct sockaddr_storage *src, socklen_t *srclen,
                                    const char **why)
{
	*consumed = 0;
	*has_src = false;
	*why = NULL;
	if (len == 0)
		return KP_PROXY_INCOMPLETE;
	if (version == KP_PROXY_V1)
		return kp_proxy_v1(p, len, consumed, has_src, src, srclen, why);
	return kp_proxy_v2(p, len, consumed, has_src, src, srclen, why);
}
