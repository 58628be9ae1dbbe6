/*
 * log.h as an operator's log pipeline reads it: log.format=json lines are one
 * JSON object with escaped strings whatever bytes a message holds, both
 * formats carry a connection's identity, and a kx_log_limit passes one line
 * per interval and counts the rest.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char captured[16384];

/* Runs fn with stderr going to a temporary file; returns what was written. */
static char *capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	cr_assert(tmp);
	int saved = dup(STDERR_FILENO);
	cr_assert(saved >= 0);
	cr_assert(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn();
	cr_assert(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	size_t n = fread(captured, 1, sizeof(captured) - 1, tmp);
	captured[n] = '\0';
	fclose(tmp);
	return captured;
}

/* Line i of out (cut at its newline, which must be there). */
static char *line_of(char *out, int i)
{
	char *p = out;
	for (int k = 0; k < i; k++) {
		p = strchr(p, '\n');
		cr_assert(p, "no line %d in: %s", i, out);
		p++;
	}
	char *nl = strchr(p, '\n');
	cr_assert(nl, "line %d has no newline: %s", i, p);
	*nl = '\0';
	return p;
}

/* What follows the timestamp that follows prefix. */
static const char *after_time(const char *line, const char *prefix)
{
	cr_assert(strncmp(line, prefix, strlen(prefix)) == 0, "line does not start with %s: %s", prefix, line);
	const char *p = line + strlen(prefix);
	cr_assert(strlen(p) > 24 && p[4] == '-' && p[10] == 'T' && p[23] == 'Z', "no timestamp: %s", line);
	return p + 24;
}

static void json_lines(void)
{
	kx_log_set_level(KX_LOG_INFO);
	kx_log_set_format(KX_LOG_JSON);
	struct kx_log_id id = {.client = "10.0.0.7:51234", .listener = 19002, .broker = 2};
	kx_log_at(KX_LOG_WARN, &id, 0, "session %s: cannot connect", id.client);
	kx_log(KX_LOG_INFO, "ready: %d workers", 2);
	struct kx_log_id bootstrap = {.client = "[::1]:4000", .listener = 9092, .broker = -1};
	kx_log_at(KX_LOG_ERROR, &bootstrap, 41, "group \"a\\b\"\n\ttab \x01 caf\xc3\xa9 bad \xff\xc3 end");
	kx_log(KX_LOG_DEBUG, "not written at info");
	kx_log_set_format(KX_LOG_TEXT);
}

Test(log, json_lines_carry_time_level_message_and_the_connection_s_identity_with_strings_escaped)
{
	char *out = capture(json_lines);
	cr_assert_str_eq(after_time(line_of(out, 0), "{\"time\":\""),
	                 "\",\"level\":\"warn\",\"client\":\"10.0.0.7:51234\",\"listener\":19002,\"broker\":2,"
	                 "\"message\":\"session 10.0.0.7:51234: cannot connect\"}");
	capture(json_lines);
	cr_assert_str_eq(after_time(line_of(out, 1), "{\"time\":\""),
	                 "\",\"level\":\"info\",\"message\":\"ready: 2 workers\"}");
	capture(json_lines);
	cr_assert_str_eq(after_time(line_of(out, 2), "{\"time\":\""),
	                 "\",\"level\":\"error\",\"client\":\"[::1]:4000\",\"listener\":9092,\"suppressed\":41,"
	                 "\"message\":\"group \\\"a\\\\b\\\"\\n\\ttab \\u0001 caf\xc3\xa9 bad \\ufffd\\ufffd end\"}");
	capture(json_lines);
	cr_assert_null(strstr(out, "not written"));
}

static void text_lines(void)
{
	kx_log_set_level(KX_LOG_INFO);
	kx_log_set_format(KX_LOG_TEXT);
	struct kx_log_id id = {.client = "10.0.0.7:51234", .listener = 19002, .broker = 2};
	kx_log_at(KX_LOG_WARN, &id, 0, "session %s: cannot connect", id.client);
	kx_log_at(KX_LOG_INFO, &id, 7, "again");
	kx_log(KX_LOG_INFO, "ready");
}

Test(log, text_lines_put_listener_and_broker_before_the_message_and_the_suppressed_count_after)
{
	char *out = capture(text_lines);
	cr_assert_str_eq(after_time(line_of(out, 0), ""),
	                 " WARN  [listener=19002 broker=2] session 10.0.0.7:51234: cannot connect");
	capture(text_lines);
	cr_assert_str_eq(after_time(line_of(out, 1), ""),
	                 " INFO  [listener=19002 broker=2] again (7 more like this suppressed since the last)");
	capture(text_lines);
	cr_assert_str_eq(after_time(line_of(out, 2), ""), " INFO  ready");
}

static void long_line(void)
{
	static char big[6000];
	memset(big, '"', sizeof(big) - 1);
	kx_log_set_format(KX_LOG_JSON);
	kx_log(KX_LOG_ERROR, "%s", big);
	kx_log_set_format(KX_LOG_TEXT);
}

Test(log, a_message_too_long_for_a_line_is_cut_and_the_json_object_still_closes)
{
	char *out = capture(long_line);
	size_t n = strlen(out);
	cr_assert(n > 1000 && n <= 4096, "line of %zu bytes", n);
	cr_assert_str_eq(out + n - 3, "\"}\n");
	cr_assert_eq(strchr(out, '\n'), out + n - 1, "more than one line");
}

Test(log, a_limit_passes_one_line_of_a_kind_per_interval_and_counts_the_rest)
{
	static struct kx_log_limit lim = KX_LOG_LIMIT_INIT;
	long long suppressed = -1;
	uint64_t down = kx_log_kind("session 10.0.0.7:5000: cannot connect to node 2: refused", "10.0.0.7:5000");
	cr_assert(kx_log_limit_pass(&lim, down, 60000, &suppressed));
	cr_assert_eq(suppressed, 0);
	for (int i = 0; i < 25; i++) {
		char msg[128], client[32];
		snprintf(client, sizeof(client), "[fe80::%x]:%d", i, 40000 + i);
		snprintf(msg, sizeof(msg), "session %s: cannot connect to node %d: refused", client, i % 3);
		cr_assert_eq(kx_log_kind(msg, client), down, "%s is another kind", msg);
		cr_assert_not(kx_log_limit_pass(&lim, kx_log_kind(msg, client), 60000, &suppressed));
	}
	/* another kind of line at the same site passes on its own */
	uint64_t tls = kx_log_kind("session 10.0.0.7:5000: certificate verify failed; closing", "10.0.0.7:5000");
	cr_assert_neq(tls, down);
	cr_assert(kx_log_limit_pass(&lim, tls, 60000, &suppressed));
	cr_assert_eq(suppressed, 0);
	/* an interval later the kind passes again with its count */
	static struct kx_log_limit fast = KX_LOG_LIMIT_INIT;
	cr_assert(kx_log_limit_pass(&fast, down, 1, &suppressed));
	usleep(5000);
	cr_assert(kx_log_limit_pass(&fast, down, 1, &suppressed));
	cr_assert_eq(suppressed, 0);
	cr_assert_not(kx_log_limit_pass(&fast, down, 1000000, &suppressed));
	cr_assert_not(kx_log_limit_pass(&fast, down, 1000000, &suppressed));
	usleep(5000);
	cr_assert(kx_log_limit_pass(&fast, down, 1, &suppressed));
	cr_assert_eq(suppressed, 2);
}

Test(log, more_kinds_than_a_site_tracks_are_held_back_and_counted_not_written)
{
	static struct kx_log_limit lim = KX_LOG_LIMIT_INIT;
	long long suppressed;
	int passed = 0;
	for (uint64_t k = 1; k <= 2u * (uint64_t)KX_LOG_LIMIT_KINDS; k++)
		passed += kx_log_limit_pass(&lim, k * 1000, 60000, &suppressed);
	cr_assert_eq(passed, KX_LOG_LIMIT_KINDS);
	long long held = 0;
	for (int i = 0; i < KX_LOG_LIMIT_KINDS; i++)
		held += lim.kinds[i].suppressed;
	cr_assert_eq(held, KX_LOG_LIMIT_KINDS);
}
