/*
 * Placement rules: which region a rack is in, and which rack a client is in.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <netinet/in.h>
#include <string.h>

#include "region.h"

struct region_case {
	char rack[32];
	char region[32];
};

static struct region_case default_regions[] = {
    {"us-east-1a", "us-east-1"},
    {"eu-west-1c", "eu-west-1"},
    {"eu-a", "eu"},
    {"europe-west4-b", "europe-west4"},
    {"ap-b", "ap"},
    {"dc1", "dc1"},
    {"rack7", "rack7"},
    {"", ""},
    {"a", "a"},
    {"zone-B", "zone"},
};

ParameterizedTestParameters(region, the_default_rule_strips_the_zone)
{
	return cr_make_param_array(struct region_case, default_regions,
	                           sizeof(default_regions) / sizeof(default_regions[0]));
}

ParameterizedTest(struct region_case *c, region, the_default_rule_strips_the_zone)
{
	char out[64];
	kr_region_of(NULL, 0, c->rack, out, sizeof(out));
	cr_assert_str_eq(out, c->region, "rack '%s'", c->rack);
}

Test(region, region_map_rules_apply_in_order_first_match_wins)
{
	const struct kr_region_rule rules[] = {
	    {"eu-west-1*", "eu"}, {"eu-*", "europe-other"}, {"*-dr", "disaster"}, {"us-*", "us"}};
	char out[64];
	kr_region_of(rules, 4, "eu-west-1a", out, sizeof(out));
	cr_assert_str_eq(out, "eu");
	kr_region_of(rules, 4, "eu-central-1b", out, sizeof(out));
	cr_assert_str_eq(out, "europe-other");
	kr_region_of(rules, 4, "ap-dr", out, sizeof(out));
	cr_assert_str_eq(out, "disaster");
	kr_region_of(rules, 4, "ap-south-1a", out, sizeof(out));
	cr_assert_str_eq(out, "ap-south-1", "no rule: the default rule");
}

Test(region, globs)
{
	cr_assert(kr_glob("*", ""));
	cr_assert(kr_glob("eu-*", "eu-"));
	cr_assert(kr_glob("*a*b*", "xxaxxbxx"));
	cr_assert_not(kr_glob("*a*b", "xxaxxbxx"));
	cr_assert(kr_glob("a**b", "ab"));
	cr_assert_not(kr_glob("eu", "eu-a"));
	/* pathological pattern stays fast (one backtrack point) */
	char s[2001];
	memset(s, 'a', 2000);
	s[2000] = '\0';
	cr_assert_not(kr_glob("*a*a*a*a*a*a*a*a*b", s));
}

struct hint_case {
	char client_id[80];
	char rack[32]; /* "" = none */
};

static struct hint_case hints[] = {
    {"app,kstretch_rack=us-a", "us-a"},
    {"kstretch_rack=eu-west-1a", "eu-west-1a"},
    {"svc;ws_az=us-east-1b", "us-east-1b"},
    {"warpstream_az=use1-az2 other", "use1-az2"},
    {"automq_az=cn-a&x=1", "cn-a"},
    {"app zone=eu-b", "eu-b"},
    {"diskless_az=ap-c", "ap-c"},
    {"zone=eu-b,kstretch_rack=us-a", "us-a"}, /* kstretch's own key wins */
    {"myzone=eu-b", ""},                      /* not a key of its own */
    {"kstretch_rack=", ""},
    {"kstretch_rack", ""},
    {"plain-client", ""},
    {"kstretch_rack=a\"b", "a"},
};

ParameterizedTestParameters(region, client_id_hints_name_the_clients_rack)
{
	return cr_make_param_array(struct hint_case, hints, sizeof(hints) / sizeof(hints[0]));
}

ParameterizedTest(struct hint_case *c, region, client_id_hints_name_the_clients_rack)
{
	char out[64] = "";
	bool found = kr_rack_from_client_id(c->client_id, strlen(c->client_id), out, sizeof(out));
	cr_assert_eq(found, c->rack[0] != '\0', "client.id '%s'", c->client_id);
	if (found)
		cr_assert_str_eq(out, c->rack, "client.id '%s'", c->client_id);
}

Test(region, cidr_rules_match_ipv4_ipv6_and_mapped_addresses)
{
	struct kr_cidr_rule rules[3];
	cr_assert(kr_cidr_parse("10.1.0.0/16", 11, &rules[0]));
	strcpy(rules[0].rack, "eu-a");
	cr_assert(kr_cidr_parse("127.0.0.1/32", 12, &rules[1]));
	strcpy(rules[1].rack, "us-a");
	cr_assert(kr_cidr_parse("fd00::/8", 8, &rules[2]));
	strcpy(rules[2].rack, "ap-a");

	struct sockaddr_in in4 = {.sin_family = AF_INET};
	inet_pton(AF_INET, "10.1.200.3", &in4.sin_addr);
	cr_assert_str_eq(kr_cidr_match(rules, 3, (struct sockaddr *)&in4), "eu-a");
	inet_pton(AF_INET, "10.2.0.1", &in4.sin_addr);
	cr_assert_null(kr_cidr_match(rules, 3, (struct sockaddr *)&in4));
	inet_pton(AF_INET, "127.0.0.1", &in4.sin_addr);
	cr_assert_str_eq(kr_cidr_match(rules, 3, (struct sockaddr *)&in4), "us-a");

	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "fd12::1", &in6.sin6_addr);
	cr_assert_str_eq(kr_cidr_match(rules, 3, (struct sockaddr *)&in6), "ap-a");
	inet_pton(AF_INET6, "::ffff:10.1.0.9", &in6.sin6_addr);
	cr_assert_str_eq(kr_cidr_match(rules, 3, (struct sockaddr *)&in6), "eu-a", "v4-mapped v6 matches v4 rules");
}

Test(region, bad_cidrs_are_refused)
{
	struct kr_cidr_rule r;
	const char *bad[] = {"10.0.0.0", "10.0.0.0/33", "10.0.0/8",    "fd00::/129",
	                     "x/1",      "10.0.0.0/",   "10.0.0.0/1x", "/8"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(kr_cidr_parse(bad[i], strlen(bad[i]), &r), "accepted '%s'", bad[i]);
}
