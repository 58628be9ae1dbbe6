/*
 * kstretch-decode: prints Kafka frames as JSON, and proves the codec
 * re-encodes them byte for byte.
 *
 *   kstretch-decode --request [--hex] [--reencode] [--decoded] [--compact] [FILE...]
 *   kstretch-decode --response --api KEY --version V [...] [FILE...]
 *
 * Input is one or more length-prefixed frames (int32 size, then the frame),
 * binary, or hex text with --hex (whitespace ignored). Without FILE, stdin.
 * Exit 0 when every frame decoded (and, with --reencode, re-encoded to the
 * same bytes, and with --decoded, every body was decoded by the codec rather
 * than kept as raw bytes); 1 on malformed input (offset and field printed),
 * a re-encoding that differs or, with --decoded, a body of an API or version
 * this build does not decode; 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

struct opts {
	bool request, response, hex, reencode, decoded, compact;
	int api, version;
};

static void usage(FILE *out)
{
	fputs("usage: kstretch-decode --request [--hex] [--reencode] [--decoded] [--compact] [FILE...]\n"
	      "       kstretch-decode --response --api KEY --version V [--hex] [--reencode] [--decoded] [--compact]\n"
	      "                       [FILE...]\n"
	      "Prints length-prefixed Kafka frames as JSON (field names as in Kafka's message\n"
	      "definitions). --reencode exits 1 unless re-encoding gives identical bytes;\n"
	      "--decoded exits 1 when a body is not decoded (an API or version this build\n"
	      "keeps as raw bytes).\n",
	      out);
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

static uint8_t *read_all(FILE *f, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		uint8_t *nb = cap > (SIZE_MAX >> 1) ? NULL : realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			return NULL;
		}
		buf = nb;
		cap *= 2;
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* Hex text to bytes, in place; whitespace ignored. Returns false on a bad digit. */
static bool unhex(uint8_t *buf, size_t *len)
{
	size_t out = 0;
	int hi = -1;
	for (size_t i = 0; i < *len; i++) {
		int c = buf[i], d;
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else {
			fprintf(stderr, "kstretch-decode: --hex: bad character at offset %zu\n", i);
			return false;
		}
		if (hi < 0) {
			hi = d;
		} else {
			buf[out++] = (uint8_t)(hi << 4 | d);
			hi = -1;
		}
	}
	if (hi >= 0) {
		fprintf(stderr, "kstretch-decode: --hex: odd number of digits\n");
		return false;
	}
	*len = out;
	return true;
}

static void print_header(FILE *out, const struct kp_message *m)
{
	if (!m->request) {
		fprintf(out, "{\"correlation_id\":%d,\"header_version\":%d}", m->resp.correlation_id,
		        m->resp.header_version);
		return;
	}
	fprintf(out, "{\"request_api_key\":%d,\"request_api_version\":%d,\"correlation_id\":%d", m->req.api_key,
	        m->req.api_version, m->req.correlation_id);
	if (m->req.header_version >= 1) {
		fputs(",\"client_id\":", out);
		if (m->req.client_id.len < 0) {
			fputs("null", out);
		} else {
			fputc('"', out);
			for (int32_t i = 0; i < m->req.client_id.len; i++) {
				uint8_t ch = m->req.client_id.ptr[i];
				if (ch == '"' || ch == '\\')
					fprintf(out, "\\%c", ch);
				else if (ch < 0x20 || ch >= 0x7f)
					fprintf(out, "\\u%04x", ch);
				else
					fputc(ch, out);
			}
			fputc('"', out);
		}
	}
	fprintf(out, ",\"header_version\":%d}", m->req.header_version);
}

/* Decodes the frames in buf; returns the exit code. */
static int decode_all(const struct opts *o, const char *name, const uint8_t *buf, size_t len)
{
	size_t pos = 0;
	int frame = 0;

	while (pos < len) {
		int32_t size;
		enum kp_frame_status st = kp_frame_check(buf + pos, len - pos, INT32_MAX, &size);
		if (st != KP_FRAME_OK) {
			fprintf(stderr, "kstretch-decode: %s: frame %d at byte %zu: %s\n", name, frame, pos,
			        st == KP_FRAME_MALFORMED ? "negative frame size" : "truncated frame");
			return 1;
		}
		const uint8_t *body = buf + pos + 4;
		struct kp_arena arena;
		struct kp_cursor c;
		struct kp_message m;
		kp_arena_init(&arena, 64 * (size_t)size + (1 << 20));
		kp_cursor_init(&c, body, (size_t)size);
		if (!kp_message_decode(&arena, &c, o->request, (int16_t)o->api, (int16_t)o->version, &m)) {
			fprintf(stderr,
			        "kstretch-decode: %s: frame %d at byte %zu: %s at byte %zu of the frame (%zu of the "
			        "input) while reading %s\n",
			        name, frame, pos, kp_error_name(c.err), c.err_pos + 4, pos + 4 + c.err_pos,
			        c.err_field ? c.err_field : "?");
			kp_arena_free(&arena);
			return 1;
		}
		printf("{\"frame\":%d,\"offset\":%zu,\"size\":%d,\"api_name\":\"%s\",\"api_key\":%d,\"api_version\":%d,"
		       "\"header\":",
		       frame, pos, size, m.api ? m.api->name : "unknown", m.api_key, m.api_version);
		print_header(stdout, &m);
		fputs(",\"body\":", stdout);
		if (m.body)
			kp_json(stdout, m.body, m.api_version, m.flexible, body, o->compact ? -1 : 0);
		else
			fputs("null", stdout);
		printf(",\"body_bytes\":%d}\n", m.raw_body.len);

		int rc = 0;
		if (o->decoded && !m.body) {
			fprintf(stderr,
			        "kstretch-decode: %s: frame %d: %s v%d is not decoded by this build (body kept "
			        "raw)\n",
			        name, frame, m.api ? m.api->name : "unknown API", m.api_version);
			rc = 1;
		}
		if (o->reencode) {
			struct kp_writer w;
			size_t outlen = 0;
			kp_writer_init(&w);
			kp_message_encode(&w, &m);
			uint8_t *out = kp_writer_flatten(&w, &outlen);
			if (!out) {
				fprintf(stderr, "kstretch-decode: out of memory\n");
				rc = 1;
			} else if (outlen != (size_t)size || memcmp(out, body, outlen) != 0) {
				size_t at = 0;
				while (at < outlen && at < (size_t)size && out[at] == body[at])
					at++;
				fprintf(stderr,
				        "kstretch-decode: %s: frame %d: re-encoded %zu bytes differ from the %d "
				        "read, first at byte %zu of the frame\n",
				        name, frame, outlen, size, at + 4);
				rc = 1;
			}
			free(out);
			kp_writer_free(&w);
		}
		kp_arena_free(&arena);
		if (rc)
			return rc;
		pos += 4 + (size_t)size;
		frame++;
	}
	if (frame == 0) {
		fprintf(stderr, "kstretch-decode: %s: no frame\n", name);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.api = -1, .version = -1};
	int first_file = argc, rc = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--request") == 0)
			o.request = true;
		else if (strcmp(a, "--response") == 0)
			o.response = true;
		else if (strcmp(a, "--hex") == 0)
			o.hex = true;
		else if (strcmp(a, "--reencode") == 0)
			o.reencode = true;
		else if (strcmp(a, "--decoded") == 0)
			o.decoded = true;
		else if (strcmp(a, "--compact") == 0)
			o.compact = true;
		else if (strcmp(a, "--api") == 0 && i + 1 < argc && parse_int(argv[i + 1], 0, INT16_MAX, &o.api))
			i++;
		else if (strcmp(a, "--version") == 0 && i + 1 < argc &&
		         parse_int(argv[i + 1], 0, INT16_MAX, &o.version))
			i++;
		else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "kstretch-decode: bad option or value: %s\n", a);
			usage(stderr);
			return 2;
		} else {
			first_file = i;
			break;
		}
	}
	if (o.request == o.response || (o.response && (o.api < 0 || o.version < 0))) {
		usage(stderr);
		return 2;
	}
	for (int i = first_file; rc == 0 && (i < argc || i == first_file); i++) {
		const char *name = i < argc ? argv[i] : "-";
		FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
		size_t len = 0;
		if (!f) {
			fprintf(stderr, "kstretch-decode: %s: %s\n", name, strerror(errno));
			return 1;
		}
		uint8_t *buf = read_all(f, &len);
		if (f != stdin)
			fclose(f);
		if (!buf) {
			fprintf(stderr, "kstretch-decode: %s: read failed\n", name);
			return 1;
		}
		if (o.hex && !unhex(buf, &len))
			rc = 1;
		else
			rc = decode_all(&o, name, buf, len);
		free(buf);
		if (i >= argc)
			break;
	}
	return rc;
}
