/*
 * libFuzzer target: the SCRAM client's reading of a broker's messages
 * (proxy/sasl_client). Input: byte 0 picks SHA-256 (even) or SHA-512 (odd);
 * the rest, up to the first 0xff byte, is the server-first message and what
 * follows it the server-final one. The client nonce is fixed ("fuzznonce"), so
 * inputs can extend it.
 *
 * Properties: never reads past either message; an accepted server-first
 * message yields a client-final message that starts "c=biws,r=fuzznonce"
 * and carries a proof; a server-final message is never accepted without an
 * accepted server-first one; every refusal says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sasl_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum kx_scram_hash h = data[0] % 2 ? KX_SCRAM_SHA_512 : KX_SCRAM_SHA_256;
	const uint8_t *rest = data + 1, *cut = memchr(rest, 0xff, size - 1);
	size_t first_len = cut ? (size_t)(cut - rest) : size - 1;
	size_t final_len = cut ? size - 1 - first_len - 1 : 0;
	/* Exact copies: an over-read is caught by ASan. */
	uint8_t *first = malloc(first_len ? first_len : 1), *final = malloc(final_len ? final_len : 1);
	if (!first || !final)
		abort();
	memcpy(first, rest, first_len);
	if (final_len)
		memcpy(final, cut + 1, final_len);

	struct kx_scram s;
	char out[KX_SCRAM_MSG_MAX + 1], err[256] = "";
	if (!kx_scram_client_first(&s, h, "fuzz=user,", "fuzznonce", out, sizeof(out), err, sizeof(err)))
		__builtin_trap();
	bool accepted = kx_scram_client_final(&s, "secret", first, first_len, out, sizeof(out), err, sizeof(err));
	if (accepted && (strncmp(out, "c=biws,r=fuzznonce", 18) != 0 || !strstr(out, ",p=")))
		__builtin_trap();
	if (!accepted && !err[0])
		__builtin_trap();
	err[0] = '\0';
	bool verified = kx_scram_server_final(&s, final, final_len, err, sizeof(err));
	if ((verified && !accepted) || (!verified && !err[0]))
		__builtin_trap();
	kx_scram_clear(&s);
	free(first);
	free(final);
	return 0;
}
