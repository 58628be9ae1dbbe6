/* SNI names (listener.mode=sni): made from the pattern and read back to a node. */
#include <criterion/criterion.h>
#include <string.h>

#include "sni.h"

Test(sni, names_are_made_from_the_pattern)
{
	char out[256], why[200];
	cr_assert(kr_sni_pattern_valid("broker-$(nodeId).$(region).kafka.example", why, sizeof(why)), "%s", why);
	cr_assert(kr_sni_name("broker-$(nodeId).$(region).kafka.example", 12, "us-east-1a", "us", out, sizeof(out)));
	cr_assert_str_eq(out, "broker-12.us.kafka.example");
	cr_assert(kr_sni_name("b$(nodeId)-$(rack).k", 3, "eu_west.a", NULL, out, sizeof(out)));
	cr_assert_str_eq(out, "b3-eu-west-a.k", "characters outside [A-Za-z0-9-] become '-'");
	cr_assert(kr_sni_name("b$(nodeId)-$(rack)-$(region).k", 3, "", "", out, sizeof(out)));
	cr_assert_str_eq(out, "b3-unknown-unknown.k");
	cr_assert_not(kr_sni_name("broker-$(nodeId).kafka.example", 1, NULL, NULL, out, 10), "does not fit");
}

Test(sni, names_read_back_to_their_node)
{
	int32_t node = -7;
	const char *p = "broker-$(nodeId)-$(region).kafka.test";
	cr_assert(kr_sni_node(p, "broker-3-ap.kafka.test", &node));
	cr_assert_eq(node, 3);
	cr_assert(kr_sni_node(p, "BROKER-42-US-east.Kafka.Test", &node), "DNS names compare without case");
	cr_assert_eq(node, 42);
	cr_assert(kr_sni_node("$(rack)-$(region)-$(nodeId).x", "eu-a-eu-7.x", &node), "labels backtrack");
	cr_assert_eq(node, 7);
	node = -7;
	cr_assert_not(kr_sni_node(p, "broker--ap.kafka.test", &node));
	cr_assert_not(kr_sni_node(p, "broker-03-ap.kafka.test", &node), "no leading zeros: one name per node");
	cr_assert_not(kr_sni_node(p, "broker-99999999999-ap.kafka.test", &node));
	cr_assert_not(kr_sni_node(p, "broker-3-ap.kafka.test.evil", &node));
	cr_assert_not(kr_sni_node(p, "broker-3-.kafka.test", &node));
	cr_assert_not(kr_sni_node(p, "kafka.test", &node));
	cr_assert_not(kr_sni_node(p, "", &node));
	cr_assert_eq(node, -7, "untouched when nothing matched");
}

Test(sni, bad_patterns_say_why)
{
	char why[200];
	cr_assert_not(kr_sni_pattern_valid("", why, sizeof(why)));
	cr_assert_not(kr_sni_pattern_valid("a-$(nodeId)-$(nodeId)", why, sizeof(why)));
	cr_assert(strstr(why, "exactly once"), "%s", why);
	cr_assert_not(kr_sni_pattern_valid("a-$(nodeId)-$(az)", why, sizeof(why)));
	cr_assert(strstr(why, "unknown placeholder"), "%s", why);
	cr_assert_not(kr_sni_pattern_valid("a/$(nodeId)", why, sizeof(why)));
}
