/*
 * cost.per.gb rules (cost.h): what parses, what is refused with a reason,
 * and which rule prices a pair of regions. And the close causes /metrics
 * counts kx_session_close's reasons under (metrics.h).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cost.h"
#include "metrics.h"

static struct kx_cost_rules parsed(const char *text)
{
	struct kx_cost_rules r;
	char why[256] = "";
	cr_assert(kx_cost_parse(&r, text, why, sizeof(why)), "%s: %s", text, why);
	return r;
}

Test(cost, the_first_matching_rule_prices_a_pair_and_wildcards_match_any_region)
{
	struct kx_cost_rules r = parsed("eu>us:0.02,us>eu:0.03,*>ap:0.05,*>*:0.01");
	cr_assert_eq(r.cnt, 4);
	cr_assert_float_eq(kx_cost_price(&r, "eu", "us"), 0.02, 1e-12);
	cr_assert_float_eq(kx_cost_price(&r, "us", "eu"), 0.03, 1e-12);
	cr_assert_float_eq(kx_cost_price(&r, "eu", "ap"), 0.05, 1e-12);
	cr_assert_float_eq(kx_cost_price(&r, "ap", "eu"), 0.01, 1e-12, "*>* after *>ap");
	cr_assert_float_eq(kx_cost_price(&r, "eu", "eu"), 0, 1e-12, "in-region traffic is never priced");
	cr_assert_float_eq(kx_cost_price(&r, "", "eu"), 0, 1e-12, "an unknown region is never priced");
	struct kx_cost_rules one = parsed("eu>us:1.5");
	cr_assert_float_eq(kx_cost_price(&one, "us", "eu"), 0, 1e-12, "no rule: free");
	cr_assert_eq(parsed("").cnt, 0);
}

Test(cost, malformed_rules_are_refused_with_a_reason_and_leave_the_rules_unchanged)
{
	static const char *const bad[] = {
	    "eu>us",    "eu-us:0.02", ">us:0.02",  "eu>:0.02",    "eu>us:",      "eu>us:abc",
	    "eu>us:-1", "eu>us:nan",  "eu>us:inf", "eu>us:0.02,", ",eu>us:0.02", "eu>us:0.02,,us>eu:1",
	    "e u>us:1", "eu*>us:1",   "eu>us:2e9", "eu>us:0.02x", "e\"u>us:1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kx_cost_rules r = parsed("eu>us:7");
		char why[256] = "";
		cr_assert_not(kx_cost_parse(&r, bad[i], why, sizeof(why)), "accepted %s", bad[i]);
		cr_assert(why[0], "no reason for %s", bad[i]);
		cr_assert_eq(r.cnt, 1, "%s changed the rules", bad[i]);
	}
	char many[4096];
	size_t at = 0;
	for (int i = 0; i <= KX_COST_RULES_MAX; i++)
		at += (size_t)snprintf(many + at, sizeof(many) - at, "%sa>b:1", i ? "," : "");
	cr_assert_lt(at, sizeof(many));
	struct kx_cost_rules r;
	char why[256] = "";
	cr_assert_not(kx_cost_parse(&r, many, why, sizeof(why)));
	cr_assert(strstr(why, "more than"), "%s", why);
}

Test(metrics, close_reasons_map_to_their_cause)
{
	cr_assert_eq(kx_close_cause_of("client closed"), KX_CLOSE_client_closed);
	cr_assert_eq(kx_close_cause_of("idle timeout"), KX_CLOSE_idle_timeout);
	cr_assert_eq(kx_close_cause_of("request timeout"), KX_CLOSE_request_timeout);
	cr_assert_eq(kx_close_cause_of("write timeout"), KX_CLOSE_write_timeout);
	cr_assert_eq(kx_close_cause_of("linger timeout"), KX_CLOSE_client_closed, "the longest prefix wins");
	cr_assert_eq(kx_close_cause_of("timeout"), KX_CLOSE_upstream_lost, "the upstream's connect/answer timeout");
	cr_assert_eq(kx_close_cause_of("protocol error"), KX_CLOSE_protocol_error);
	cr_assert_eq(kx_close_cause_of("TLS handshake failed"), KX_CLOSE_tls);
	cr_assert_eq(kx_close_cause_of("broker closed the connection"), KX_CLOSE_upstream_lost);
	cr_assert_eq(kx_close_cause_of("connect failed"), KX_CLOSE_upstream_lost);
	cr_assert_eq(kx_close_cause_of("out of memory"), KX_CLOSE_out_of_memory);
	cr_assert_eq(kx_close_cause_of("something new"), KX_CLOSE_other);
	cr_assert_eq(kx_close_cause_of(NULL), KX_CLOSE_other);
}
