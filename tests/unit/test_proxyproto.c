/*
 * The PROXY protocol header (v1 and v2): sources read, every cut of a valid
 * header incomplete, hostile headers refused with a reason.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxyproto.h"

static enum kp_proxy_status parse(enum kp_proxy_version v, const void *p, size_t len, size_t *consumed,
                                  bool *has_src, struct sockaddr_storage *src)
{
	socklen_t srclen = 0;
	const char *why = NULL;
	enum kp_proxy_status st = kp_proxy_parse(v, p, len, consumed, has_src, src, &srclen, &why);
	if (st == KP_PROXY_MALFORMED)
		cr_assert_not_null(why);
	return st;
}

static void every_cut_is_incomplete(enum kp_proxy_version v, const uint8_t *p, size_t whole)
{
	for (size_t n = 0; n < whole; n++) {
		size_t consumed;
		bool has;
		struct sockaddr_storage src;
		cr_assert_eq(parse(v, p, n, &consumed, &has, &src), KP_PROXY_INCOMPLETE, "cut at %zu of %zu", n, whole);
	}
}

Test(proxyproto, v1_tcp4_and_tcp6_give_the_source_and_every_cut_waits)
{
	const char *h4 = "PROXY TCP4 10.1.2.3 10.0.0.1 51000 9092\r\n";
	char buf[128];
	snprintf(buf, sizeof(buf), "%sKAFKA", h4);
	size_t consumed;
	bool has;
	struct sockaddr_storage src;
	cr_assert_eq(parse(KP_PROXY_V1, buf, strlen(buf), &consumed, &has, &src), KP_PROXY_OK);
	cr_assert_eq(consumed, strlen(h4));
	cr_assert(has);
	const struct sockaddr_in *in = (const struct sockaddr_in *)&src;
	cr_assert_eq(in->sin_family, AF_INET);
	cr_assert_eq(ntohl(in->sin_addr.s_addr), 0x0a010203);
	cr_assert_eq(ntohs(in->sin_port), 51000);
	every_cut_is_incomplete(KP_PROXY_V1, (const uint8_t *)h4, strlen(h4));

	const char *h6 = "PROXY TCP6 fd00::5 fd00::1 40000 9092\r\n";
	cr_assert_eq(parse(KP_PROXY_V1, h6, strlen(h6), &consumed, &has, &src), KP_PROXY_OK);
	cr_assert(has);
	cr_assert_eq(((const struct sockaddr_in6 *)&src)->sin6_family, AF_INET6);
	cr_assert_eq(ntohs(((const struct sockaddr_in6 *)&src)->sin6_port), 40000);

	const char *unk = "PROXY UNKNOWN\r\n";
	cr_assert_eq(parse(KP_PROXY_V1, unk, strlen(unk), &consumed, &has, &src), KP_PROXY_OK);
	cr_assert_not(has);
	cr_assert_eq(consumed, strlen(unk));
}

Test(proxyproto, v1_hostile_lines_are_refused)
{
	static const char *bad[] = {
	    "\x00\x00\x00\x10\x00\x12\x00\x03",                      /* a Kafka frame, no header */
	    "PROXY TCP4 10.1.2.3 10.0.0.1 51000\r\n",                /* a field short */
	    "PROXY TCP4 10.1.2.300 10.0.0.1 1 2\r\n",                /* not an address */
	    "PROXY TCP4 10.1.2.3 10.0.0.1 65536 2\r\n",              /* port too large */
	    "PROXY TCP4 10.1.2.3 10.0.0.1 -1 2\r\n",                 /* signed port */
	    "PROXY UDP4 10.1.2.3 10.0.0.1 1 2\r\n",                  /* not TCP */
	    "PROXY TCP6 10.1.2.3 10.0.0.1 1 2\r\n",                  /* IPv4 in TCP6 */
	    "PROXY TCP4 10.1.2.3\n10.0.0.1 1 2\r\n",                 /* a bare LF */
	    "PROXY TCP4 1.1.1.1 1.1.1.1 1 2 3 4 5 6\r\n",            /* too many fields */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t consumed;
		bool has;
		struct sockaddr_storage src;
		size_t len = i == 0 ? 8 : strlen(bad[i]);
		cr_assert_eq(parse(KP_PROXY_V1, bad[i], len, &consumed, &has, &src), KP_PROXY_MALFORMED, "case %zu", i);
	}
	char longline[200];
	memset(longline, 'a', sizeof(longline));
	static const char start[6] = {'P', 'R', 'O', 'X', 'Y', ' '};
	memcpy(longline, start, sizeof(start));
	size_t consumed;
	bool has;
	struct sockaddr_storage src;
	cr_assert_eq(parse(KP_PROXY_V1, longline, sizeof(longline), &consumed, &has, &src), KP_PROXY_MALFORMED,
	             "no CRLF within 107 bytes");
}

static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *addr, uint16_t addrlen, uint16_t tlv)
{
	static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	uint16_t len = (uint16_t)(addrlen + tlv);
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	if (addrlen)
		memcpy(out + 16, addr, addrlen);
	memset(out + 16 + addrlen, 0xee, tlv);
	return 16 + (size_t)len;
}

Test(proxyproto, v2_ipv4_ipv6_local_and_tlvs)
{
	uint8_t h[200];
	const uint8_t a4[12] = {10, 9, 8, 7, 10, 0, 0, 1, 0xc3, 0x50, 0x23, 0x84}; /* 10.9.8.7:50000 -> 10.0.0.1:9092 */
	size_t n = v2(h, 0x21, 0x11, a4, 12, 20);                                /* 20 bytes of TLVs */
	size_t consumed;
	bool has;
	struct sockaddr_storage src;
	cr_assert_eq(parse(KP_PROXY_V2, h, n, &consumed, &has, &src), KP_PROXY_OK);
	cr_assert_eq(consumed, n);
	cr_assert(has);
	const struct sockaddr_in *in = (const struct sockaddr_in *)&src;
	cr_assert_eq(ntohl(in->sin_addr.s_addr), 0x0a090807);
	cr_assert_eq(ntohs(in->sin_port), 50000);
	every_cut_is_incomplete(KP_PROXY_V2, h, n);
	/* From its first 16 bytes on, an incomplete v2 header says how long it is. */
	cr_assert_eq(parse(KP_PROXY_V2, h, 16, &consumed, &has, &src), KP_PROXY_INCOMPLETE);
	cr_assert_eq(consumed, n);
	cr_assert_eq(parse(KP_PROXY_V2, h, 15, &consumed, &has, &src), KP_PROXY_INCOMPLETE);
	cr_assert_eq(consumed, 0);

	uint8_t a6[36] = {0};
	a6[0] = 0xfd;
	a6[15] = 5;
	a6[32] = 0x9c;
	a6[33] = 0x40; /* port 40000 */
	n = v2(h, 0x21, 0x21, a6, 36, 0);
	cr_assert_eq(parse(KP_PROXY_V2, h, n, &consumed, &has, &src), KP_PROXY_OK);
	cr_assert(has);
	cr_assert_eq(ntohs(((const struct sockaddr_in6 *)&src)->sin6_port), 40000);

	n = v2(h, 0x20, 0x00, NULL, 0, 0); /* LOCAL: a health check */
	cr_assert_eq(parse(KP_PROXY_V2, h, n, &consumed, &has, &src), KP_PROXY_OK);
	cr_assert_not(has);
	cr_assert_eq(consumed, 16);
}

Test(proxyproto, v2_hostile_headers_are_refused)
{
	uint8_t h[200];
	const uint8_t a4[12] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2};
	size_t consumed;
	bool has;
	struct sockaddr_storage src;
	size_t n = v2(h, 0x31, 0x11, a4, 12, 0); /* version 3 */
	cr_assert_eq(parse(KP_PROXY_V2, h, n, &consumed, &has, &src), KP_PROXY_MALFORMED);
	n = v2(h, 0x22, 0x11, a4, 12, 0); /* command 2 */
	cr_assert_eq(parse(KP_PROXY_V2, h, n, &consumed, &has, &src), KP_PROXY_MALFORMED);
	n = v2(h, 0x21, 0x11, a4, 8, 0); /* IPv4 addresses cut short */
	cr_assert_eq(parse(KP_PROXY_V2, h, n, &consumed, &has, &src), KP_PROXY_MALFORMED);
	n = v2(h, 0x21, 0x12, a4, 12, 0); /* UDP */
	cr_assert_eq(parse(KP_PROXY_V2, h, n, &consumed, &has, &src), KP_PROXY_MALFORMED);
	const char *v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"; /* v1 where v2 is expected */
	cr_assert_eq(parse(KP_PROXY_V2, v1, strlen(v1), &consumed, &has, &src), KP_PROXY_MALFORMED);
}
