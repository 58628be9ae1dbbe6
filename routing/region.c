#include "region.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

bool kr_glob(const char *p, const char *s)
{
	/* Iterative matcher with one backtrack point: linear in practice. */
	const char *star = NULL, *resume = NULL;
	while (*s) {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

void kr_region_of(const struct kr_region_rule *rules, size_t n, const char *rack, char *out, size_t len)
{
	size_t r = strlen(rack);
	if (len == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (kr_glob(rules[i].pattern, rack)) {
			snprintf(out, len, "%s", rules[i].region);
			return;
		}
	}
	if (r >= 3 && rack[r - 2] == '-' && isalpha((unsigned char)rack[r - 1]))
		r -= 2; /* eu-a, europe-west4-b */
	else if (r >= 2 && isdigit((unsigned char)rack[r - 2]) && islower((unsigned char)rack[r - 1]))
		r -= 1; /* us-east-1a */
	snprintf(out, len, "%.*s", (int)r, rack);
}

static bool kr_hint_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

bool kr_rack_from_client_id(const char *id, size_t len, char *out, size_t outlen)
{
	static const char *const keys[] = {"kstretch_rack", "ws_az", "warpstream_az",
	                                   "automq_az",     "zone",  "diskless_az"};
	/* kstretch's own key wins over the others wherever it stands. */
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		size_t kl = strlen(keys[k]);
		for (size_t i = 0; i + kl < len; i++) {
			bool starts =
			    i == 0 || id[i - 1] == ',' || id[i - 1] == ';' || id[i - 1] == ' ' || id[i - 1] == '&';
			if (!starts || memcmp(id + i, keys[k], kl) != 0 || id[i + kl] != '=')
				continue;
			size_t v = i + kl + 1, e = v;
			while (e < len && kr_hint_char(id[e]))
				e++;
			if (e == v || e - v >= outlen || e - v >= KR_NAME_MAX)
				continue; /* empty or oversized: not a rack */
			memcpy(out, id + v, e - v);
			out[e - v] = '\0';
			return true;
		}
	}
	return false;
}

bool kr_cidr_parse(const char *text, size_t len, struct kr_cidr_rule *rule)
{
	char buf[64];
	const char *slash = memchr(text, '/', len);
	if (!slash || (size_t)(slash - text) >= sizeof(buf))
		return false;
	memcpy(buf, text, (size_t)(slash - text));
	buf[slash - text] = '\0';
	int prefix = 0;
	size_t plen = len - (size_t)(slash + 1 - text);
	if (plen == 0 || plen > 3)
		return false;
	for (size_t i = 0; i < plen; i++) {
		if (!isdigit((unsigned char)slash[1 + i]))
			return false;
		prefix = prefix * 10 + (slash[1 + i] - '0');
	}
	memset(rule->addr, 0, sizeof(rule->addr));
	if (inet_pton(AF_INET, buf, rule->addr) == 1) {
		rule->family = AF_INET;
		if (prefix > 32)
			return false;
	} else if (inet_pton(AF_INET6, buf, rule->addr) == 1) {
		rule->family = AF_INET6;
		if (prefix > 128)
			return false;
	} else {
		return false;
	}
	rule->prefix = prefix;
	return true;
}

static bool kr_prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

const char *kr_cidr_match(const struct kr_cidr_rule *rules, size_t n, const struct sockaddr *sa)
{
	uint8_t addr[16];
	int family;
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) { /* ::ffff:10.1.2.3 matches IPv4 rules */
			memcpy(addr, a6->s6_addr + 12, 4);
			family = AF_INET;
		} else {
			memcpy(addr, a6->s6_addr, 16);
			family = AF_INET6;
		}
	} else {
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (rules[i].family == family && kr_prefix_equal(rules[i].addr, addr, rules[i].prefix))
			return rules[i].rack;
	return NULL;
}
