/*
 * libFuzzer target: the walk over a buffered Fetch response that decides
 * whether it is steered (kx_fetch_response_scan, proxy/rewrite.c), for the
 * client of fuzz_fixture.h (us-a) on the connection to node 1 (eu). Input:
 * byte 0 picks the version (11-18), bytes 1-2 where the body is cut into
 * three pieces (as socket reads leave it), byte 3 the partitions of
 * "orders" redirected before (bit n: partition n, so some come back); the
 * rest is a response frame body (header and body, without the size).
 *
 * Properties: no crash, no over-read; the verdict does not depend on how the
 * body is cut; and a response the scan lets pass is one the rewrite leaves
 * as it is (the session forwards it untouched).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "api.h"
#include "fuzz_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_redirected(struct fuzz_fixture *f, uint8_t mask)
{
	for (int32_t p = 0; p < 8; p++) {
		if (!(mask >> p & 1))
			continue;
		if (!kr_steer_note_redirect(&f->steer, kr_steer_key("orders", 6, p), 0, 30000) ||
		    !kr_steer_note_redirect(&f->steer, kr_steer_key(fuzz_topic_id, 16, p), 0, 30000))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_fixture f;
	if (size < 4)
		return 0;
	int16_t version = (int16_t)(11 + data[0] % 8);
	const uint8_t *body = data + 4;
	size_t len = size - 4;
	/* Each piece in its own allocation, so that reading past one is caught. */
	size_t a = data[1] % (len + 1), b = a + data[2] % (len - a + 1);
	size_t at[4] = {0, a, b, len};
	struct iovec iov[3];
	for (int i = 0; i < 3; i++) {
		iov[i].iov_len = at[i + 1] - at[i];
		iov[i].iov_base = malloc(iov[i].iov_len ? iov[i].iov_len : 1);
		if (!iov[i].iov_base)
			abort();
		memcpy(iov[i].iov_base, body + at[i], iov[i].iov_len);
	}

	fuzz_fixture_reset(&f);
	fuzz_redirected(&f, data[3]);
	enum kx_fetch_scan cut = kx_fetch_response_scan(&f.cfg, &f.view, version, iov, 3, len);
	for (int i = 0; i < 3; i++)
		free(iov[i].iov_base);

	fuzz_fixture_reset(&f);
	fuzz_redirected(&f, data[3]);
	struct iovec whole = {(void *)body, len};
	enum kx_fetch_scan scan = kx_fetch_response_scan(&f.cfg, &f.view, version, &whole, 1, len);
	if (scan != cut)
		__builtin_trap(); /* the verdict depends on where the reads ended */
	if (kx_rewrite_response_for(&f.rw, &f.cfg, &f.view, KP_API_FETCH, version, body, len) &&
	    scan == KX_FETCH_PASS && f.rw.changed)
		__builtin_trap(); /* passed untouched, yet the rewrite would have changed it */
	return 0;
}
