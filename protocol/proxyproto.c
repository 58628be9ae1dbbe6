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

/* The source: family, address (4 or 16 bytes), port in network order. */
static void kp_proxy_src(struct sockaddr_storage *src, socklen_t *srclen, int family, const void *addr,
                         uint16_t port_be)
{
	memset(src, 0, sizeof(*src));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)src;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, addr, 4);
		in->sin_port = port_be;
		*srclen = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)src;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, addr, 16);
		in6->sin6_port = port_be;
		*srclen = sizeof(*in6);
	}
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
	int family = strcmp(fields[1], "TCP4") == 0 ? AF_INET : strcmp(fields[1], "TCP6") == 0 ? AF_INET6 : 0;
	if (!family)
		return kp_proxy_bad(why, "a protocol other than TCP4, TCP6 or UNKNOWN (v1)");
	uint8_t addr[16], dst[16];
	if (inet_pton(family, fields[2], addr) != 1 || inet_pton(family, fields[3], dst) != 1)
		return kp_proxy_bad(why, family == AF_INET ? "an address that is not IPv4 (v1 TCP4)"
		                                           : "an address that is not IPv6 (v1 TCP6)");
	kp_proxy_src(src, srclen, family, addr, htons(sport));
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
	if (len < 16 + body) {
		*consumed = 16 + body; /* what the whole header needs */
		return KP_PROXY_INCOMPLETE;
	}
	*consumed = 16 + body;
	*has_src = false;
	if (cmd == 0) /* LOCAL: the balancer's own connection (a health check) */
		return KP_PROXY_OK;
	/* TCP over IPv4: src, dst (4 bytes each), sport, dport; over IPv6: 16-byte addresses. */
	size_t alen = fam == 0x11 ? 4 : fam == 0x21 ? 16 : 0;
	if (fam == 0x00) /* unspecified: keep the connection's address */
		return KP_PROXY_OK;
	if (!alen)
		return kp_proxy_bad(why, "a family other than TCP over IPv4 or IPv6 (v2)");
	if (body < 2 * alen + 4)
		return kp_proxy_bad(why, "addresses cut short (v2)");
	uint16_t port_be;
	memcpy(&port_be, p + 16 + 2 * alen, 2);
	kp_proxy_src(src, srclen, alen == 4 ? AF_INET : AF_INET6, p + 16, port_be);
	*has_src = true;
	return KP_PROXY_OK;
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
