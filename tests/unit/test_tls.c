/*
 * The TLS transport (proxy/tls.c) over socketpairs: kstretch's server side
 * and client side talking to each other through the flow's transport ops,
 * the way a session drives them (non-blocking, each call as far as the
 * socket allows). Certificates are made for the test with the openssl
 * command line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"
#include "tls.h"

static char dir[64];
static struct kx_config cfg;
static struct kx_tls_sessions *cache;

/* Runs a shell command made of parts around the temporary directory's name. */
static void sh(const char *before, const char *after)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "%s%s%s", before, dir, after);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* as kstretch's main: OpenSSL writes with write(2) */
	strcpy(dir, "/tmp/kstretch-tls-XXXXXX");
	cr_assert(mkdtemp(dir));
	sh("cd ", " && openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=ca -keyout ca.key -out "
	   "ca.crt -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1");
	sh("cd ", " && openssl req -newkey rsa:2048 -nodes -sha256 -subj /CN=server -keyout server.key -out server.csr "
	   ">/dev/null 2>&1 && printf 'subjectAltName=IP:127.0.0.1,DNS:broker.test\\n' > ext && openssl x509 -req "
	   "-in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.crt >/dev/null "
	   "2>&1");
	kx_config_defaults(&cfg);
	snprintf(cfg.tls_cert, sizeof(cfg.tls_cert), "%s/server.crt", dir);
	snprintf(cfg.tls_key, sizeof(cfg.tls_key), "%s/server.key", dir);
	cfg.upstream_tls = true;
	snprintf(cfg.upstream_tls_ca, sizeof(cfg.upstream_tls_ca), "%s/ca.crt", dir);
	char why[512];
	cr_assert(kx_tls_setup(&cfg, why, sizeof(why)), "%s", why);
	cache = kx_tls_sessions_new();
	cr_assert(cache);
}

static void teardown(void)
{
	kx_tls_sessions_free(cache);
	kx_tls_teardown();
	sh("rm -rf ", "");
}

TestSuite(tls, .init = setup, .fini = teardown, .timeout = 60);

struct pair {
	struct kx_transport server, client;
};

/* A connected pair of non-blocking sockets, small buffers when asked (so that writes fill them). */
static void pair_open(struct pair *p, const char *host, int sndbuf)
{
	int fds[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	if (sndbuf) {
		setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	}
	cr_assert(kx_tls_accept(&p->server, fds[0]));
	cr_assert(kx_tls_connect(&p->client, fds[1], host, 9093, true, cache));
}

/* Both handshakes to their end (bounded); returns the client's final step. */
static enum kx_tls_step pair_handshake(struct pair *p)
{
	enum kx_tls_step s = KX_TLS_WANT_READ, c = KX_TLS_WANT_READ;
	for (int i = 0; i < 200 && (s != KX_TLS_DONE || c != KX_TLS_DONE); i++) {
		if (c != KX_TLS_DONE && c != KX_TLS_FAILED)
			c = kx_tls_handshake(&p->client);
		if (s != KX_TLS_DONE && s != KX_TLS_FAILED)
			s = kx_tls_handshake(&p->server);
		if (s == KX_TLS_FAILED || c == KX_TLS_FAILED)
			break;
	}
	return c == KX_TLS_DONE && s != KX_TLS_DONE ? s : c;
}

static void pair_close(struct pair *p)
{
	p->client.ops->close(&p->client);
	p->server.ops->close(&p->server);
}

/* Moves n bytes from one end to the other through readv/writev, in pieces of
 * `piece` bytes (many iovecs), until all arrived; checks them. */
static void transfer(struct kx_transport *from, struct kx_transport *to, size_t n, size_t piece)
{
	uint8_t *src = malloc(n), *dst = malloc(n);
	cr_assert(src && dst);
	for (size_t i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 8));
	size_t sent = 0, got = 0;
	for (int round = 0; round < 100000 && got < n; round++) {
		if (sent < n) {
			struct iovec v[64];
			int cnt = 0;
			for (size_t at = sent; at < n && cnt < 64; at += piece)
				v[cnt++] = (struct iovec){src + at, at + piece <= n ? piece : n - at};
			ssize_t w = from->ops->writev(from, v, cnt);
			if (w < 0)
				cr_assert(errno == EAGAIN, "writev: %s (%s)", strerror(errno), kx_tls_error(from));
			else
				sent += (size_t)w;
		}
		struct iovec r = {dst + got, n - got < 3000 ? n - got : 3000};
		ssize_t k = to->ops->readv(to, &r, 1);
		if (k < 0)
			cr_assert(errno == EAGAIN, "readv: %s (%s)", strerror(errno), kx_tls_error(to));
		else
			got += (size_t)k;
	}
	cr_assert_eq(got, n);
	cr_assert(memcmp(src, dst, n) == 0, "bytes differ after the TLS round trip");
	free(src);
	free(dst);
}

Test(tls, a_handshake_then_bytes_both_ways_in_small_and_large_pieces)
{
	struct pair p;
	pair_open(&p, "127.0.0.1", 0);
	cr_assert_eq(pair_handshake(&p), KX_TLS_DONE, "%s / %s", kx_tls_error(&p.client), kx_tls_error(&p.server));
	char how[128];
	kx_tls_describe(&p.client, how, sizeof(how));
	cr_assert(strstr(how, "TLSv1.3"), "%s", how);
	transfer(&p.client, &p.server, 200000, 100);   /* small pieces: gathered into records */
	transfer(&p.server, &p.client, 1 << 20, 70000); /* large ones: a record at a time */
	pair_close(&p);
}

Test(tls, writes_into_a_full_socket_are_retried_with_the_same_bytes)
{
	struct pair p;
	pair_open(&p, "127.0.0.1", 4096);
	cr_assert_eq(pair_handshake(&p), KX_TLS_DONE);
	/* 3 MB through 4 KB socket buffers: almost every write stops half way
	 * (WANT_WRITE) and is offered again; a piece size that is not a divisor
	 * of the record size moves the gathering boundaries about. */
	transfer(&p.client, &p.server, 3 << 20, 1000);
	transfer(&p.server, &p.client, 3 << 20, 17000);
	pair_close(&p);
}

Test(tls, decrypted_bytes_left_inside_are_reported_pending)
{
	struct pair p;
	pair_open(&p, "127.0.0.1", 0);
	cr_assert_eq(pair_handshake(&p), KX_TLS_DONE);
	static uint8_t big[16000];
	struct iovec v = {big, sizeof(big)};
	cr_assert_eq(p.server.ops->writev(&p.server, &v, 1), (ssize_t)sizeof(big));
	uint8_t small[100];
	struct iovec r = {small, sizeof(small)};
	ssize_t got = -1;
	for (int i = 0; i < 100 && got < 0; i++)
		got = p.client.ops->readv(&p.client, &r, 1);
	cr_assert_eq(got, 100, "a read fills what it is given");
	cr_assert(p.client.ops->pending(&p.client), "the rest of the record waits inside TLS");
	/* Read the rest without the socket: it has nothing left. */
	size_t total = 100;
	while (p.client.ops->pending(&p.client) && total < sizeof(big)) {
		ssize_t k = p.client.ops->readv(&p.client, &r, 1);
		cr_assert_gt(k, 0);
		total += (size_t)k;
	}
	cr_assert_eq(total, sizeof(big));
	pair_close(&p);
}

Test(tls, a_second_connection_to_the_same_broker_resumes_the_session)
{
	uint64_t full = KX_METRIC_VALUE(upstream_tls_full_handshakes), resumed = KX_METRIC_VALUE(upstream_tls_resumed);
	struct pair p;
	pair_open(&p, "broker.test", 0);
	cr_assert_eq(pair_handshake(&p), KX_TLS_DONE, "%s", kx_tls_error(&p.client));
	/* TLS 1.3 tickets come after the handshake: read what the server sent. */
	transfer(&p.server, &p.client, 1000, 1000);
	pair_close(&p);
	pair_open(&p, "broker.test", 0);
	cr_assert_eq(pair_handshake(&p), KX_TLS_DONE, "%s", kx_tls_error(&p.client));
	char how[128];
	kx_tls_describe(&p.client, how, sizeof(how));
	cr_assert(strstr(how, "resumed"), "%s", how);
	pair_close(&p);
	cr_assert_eq(KX_METRIC_VALUE(upstream_tls_full_handshakes), full + 1);
	cr_assert_eq(KX_METRIC_VALUE(upstream_tls_resumed), resumed + 1);
}

Test(tls, a_name_the_certificate_does_not_hold_is_refused)
{
	struct pair p;
	pair_open(&p, "other.test", 0);
	cr_assert_eq(pair_handshake(&p), KX_TLS_FAILED);
	cr_assert(strcasestr(kx_tls_error(&p.client), "hostname mismatch"), "%s", kx_tls_error(&p.client));
	pair_close(&p);
}

Test(tls, plaintext_kafka_on_the_tls_side_is_named)
{
	int fds[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	struct kx_transport t;
	cr_assert(kx_tls_accept(&t, fds[0]));
	static const uint8_t api_versions[] = {0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0};
	cr_assert_eq(write(fds[1], api_versions, sizeof(api_versions)), (ssize_t)sizeof(api_versions));
	cr_assert_eq(kx_tls_handshake(&t), KX_TLS_FAILED);
	cr_assert(strstr(kx_tls_error(&t), "a plaintext Kafka client on a TLS listener?"), "%s", kx_tls_error(&t));
	t.ops->close(&t);
	close(fds[1]);
}
