#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "metrics.h"
#include "placement.h"
#include "sni.h"
#include "topology.h"

/* A TLS record carries at most this much plaintext. */
#define KX_TLS_RECORD 16384
/* Upstream sessions a worker keeps (one per broker address, oldest replaced). */
#define KX_TLS_SESSIONS_MAX 64

struct kx_tls_sessions {
	struct {
		char key[KX_HOST_MAX + 8];
		SSL_SESSION *sess;
	} e[KX_TLS_SESSIONS_MAX];
	unsigned next;
};

/* One TLS connection: the transport's impl. */
struct kx_tls_conn {
	SSL *ssl;
	bool server;
	bool hello_checked; /* server: the first byte was seen to be a TLS handshake record */
	bool established;
	bool read_full;     /* the last read stopped because its buffer was full (more may wait inside) */
	size_t retry_len;   /* a write OpenSSL must be offered again: at least these bytes */
	int32_t sni_node;   /* listener.mode=sni: the broker its server name picked; -1 the bootstrap */
	struct kx_tls_sessions *cache;
	char cache_key[KX_HOST_MAX + 8];
	uint8_t *stage; /* gathered small pieces (KX_TLS_RECORD bytes, made when first needed) */
	char err[256];
};

static pthread_mutex_t kx_tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *kx_tls_server_ctx, *kx_tls_client_ctx;
static int kx_tls_conn_index = -1;
static const struct kx_config *_Atomic kx_tls_cfg; /* for the server name callback (SIGHUP replaces it) */

/* ---- errors ------------------------------------------------------------ */

/* OpenSSL's error queue, most recent first reason, as one line (and emptied). */
static void kx_tls_errstr(char *out, size_t len, const char *fallback)
{
	unsigned long e, last = 0;
	while ((e = ERR_get_error()) != 0)
		last = e;
	if (!last) {
		snprintf(out, len, "%s", fallback);
		return;
	}
	const char *reason = ERR_reason_error_string(last);
	if (reason)
		snprintf(out, len, "%s", reason);
	else
		ERR_error_string_n(last, out, len);
}

static void kx_tls_fail(struct kx_tls_conn *c, const char *what)
{
	char reason[200];
	kx_tls_errstr(reason, sizeof(reason), what);
	long vr = SSL_get_verify_result(c->ssl);
	if (vr != X509_V_OK && (!c->server || SSL_get0_peer_certificate(c->ssl)))
		snprintf(c->err, sizeof(c->err), "%s: %s (certificate: %s)", what, reason,
		         X509_verify_cert_error_string(vr));
	else
		snprintf(c->err, sizeof(c->err), "%s: %s", what, reason);
}

/* ---- contexts ---------------------------------------------------------- */

static bool kx_tls_why(char *why, size_t whylen, const char *key, const char *file, const char *what)
{
	char reason[200];
	kx_tls_errstr(reason, sizeof(reason), "unknown error");
	snprintf(why, whylen, "%s: %s%s%s: %s", key, what, file ? " " : "", file ? file : "", reason);
	return false;
}

static bool kx_tls_common(SSL_CTX *ctx, const struct kx_config *cfg, char *why, size_t whylen)
{
	int min = cfg->tls_protocols & KX_TLS_V12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	int max = cfg->tls_protocols & KX_TLS_V13 ? TLS1_3_VERSION : TLS1_2_VERSION;
	if (!SSL_CTX_set_min_proto_version(ctx, min) || !SSL_CTX_set_max_proto_version(ctx, max))
		return kx_tls_why(why, whylen, "tls.protocols", NULL, "not supported by this OpenSSL");
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION |
	                             SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Records are read as many as the socket has in one read(2), not header then body. */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (cfg->tls_ciphers[0]) {
		/* TLS_* names are TLS 1.3 suites, the rest a TLS 1.2 cipher list. */
		char v12[KX_CIPHERS_MAX] = "", v13[KX_CIPHERS_MAX] = "", copy[KX_CIPHERS_MAX];
		snprintf(copy, sizeof(copy), "%s", cfg->tls_ciphers);
		char *save = NULL;
		for (char *tok = strtok_r(copy, ":, ", &save); tok; tok = strtok_r(NULL, ":, ", &save)) {
			char *dst = strncmp(tok, "TLS_", 4) == 0 ? v13 : v12;
			size_t used = strlen(dst);
			snprintf(dst + used, sizeof(v12) - used, "%s%s", used ? ":" : "", tok);
		}
		if (v12[0] && !SSL_CTX_set_cipher_list(ctx, v12))
			return kx_tls_why(why, whylen, "tls.ciphers", NULL, "no TLS 1.2 cipher known in");
		if (v13[0] && !SSL_CTX_set_ciphersuites(ctx, v13))
			return kx_tls_why(why, whylen, "tls.ciphers", NULL, "no TLS 1.3 suite known in");
		if (!v12[0] && (cfg->tls_protocols & KX_TLS_V12))
			SSL_CTX_set_cipher_list(ctx, "DEFAULT");
	}
	return true;
}

static bool kx_tls_load_pair(SSL_CTX *ctx, const char *certkey, const char *cert, const char *keykey, const char *key,
                             char *why, size_t whylen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return kx_tls_why(why, whylen, certkey, cert, "cannot load the certificate chain from");
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return kx_tls_why(why, whylen, keykey, key, "cannot load the private key from");
	if (SSL_CTX_check_private_key(ctx) != 1)
		return kx_tls_why(why, whylen, keykey, key, "does not match the certificate of");
	X509 *x = SSL_CTX_get0_certificate(ctx);
	if (x && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		kx_warn("%s: the certificate in %s has expired: peers will refuse it", certkey, cert);
	return true;
}

static int kx_tls_servername(SSL *ssl, int *alert, void *arg);

static SSL_CTX *kx_tls_server_new(const struct kx_config *cfg, char *why, size_t whylen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		kx_tls_why(why, whylen, "tls.cert", NULL, "no TLS context");
		return NULL;
	}
	if (!kx_tls_common(ctx, cfg, why, whylen) ||
	    !kx_tls_load_pair(ctx, "tls.cert", cfg->tls_cert, "tls.key", cfg->tls_key, why, whylen))
		goto fail;
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"kstretch", 8);
	if (cfg->listener_mode == KX_LISTENER_SNI)
		SSL_CTX_set_tlsext_servername_callback(ctx, kx_tls_servername);
	if (cfg->tls_client_auth != KX_TLS_AUTH_NONE) {
		if (SSL_CTX_load_verify_file(ctx, cfg->tls_client_ca) != 1) {
			kx_tls_why(why, whylen, "tls.client.ca", cfg->tls_client_ca, "cannot load CA certificates from");
			goto fail;
		}
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_client_ca);
		if (!names) {
			kx_tls_why(why, whylen, "tls.client.ca", cfg->tls_client_ca, "no CA names in");
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx,
		                   SSL_VERIFY_PEER |
		                       (cfg->tls_client_auth == KX_TLS_AUTH_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
		                   NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * listener.mode=sni: the ClientHello's server name picks the broker. No
 * name (a client given an IP address) or advertised.host is the bootstrap; a
 * name sni.host.pattern makes for a broker the topology knows is that
 * broker; any other name is refused with an unrecognized_name alert.
 */
static int kx_tls_servername(SSL *ssl, int *alert, void *arg)
{
	struct kx_tls_conn *c = SSL_get_ex_data(ssl, kx_tls_conn_index);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	int32_t node;
	(void)arg;
	if (!c)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	c->sni_node = -1;
	if (!name || !name[0] || strcasecmp(name, kx_config_advertised_host(kx_tls_cfg)) == 0)
		return SSL_TLSEXT_ERR_OK;
	if (kr_sni_node(kx_tls_cfg->sni_host_pattern, name, &node)) {
		struct kx_topology *t = kx_topology_get();
		bool known = kx_topology_broker(t, node) != NULL;
		kx_topology_put(t);
		if (known) {
			c->sni_node = node;
			return SSL_TLSEXT_ERR_OK;
		}
	}
	snprintf(c->err, sizeof(c->err), "TLS handshake: unknown server name '%.100s' (neither advertised.host nor a "
	         "broker's sni.host.pattern name); refused with unrecognized_name", name);
	*alert = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* A new upstream session: kept for the next connection to the same broker. */
static int kx_tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct kx_tls_conn *c = SSL_get_ex_data(ssl, kx_tls_conn_index);
	if (!c || !c->cache || !c->cache_key[0])
		return 0;
	struct kx_tls_sessions *cache = c->cache;
	unsigned slot = KX_TLS_SESSIONS_MAX;
	for (unsigned i = 0; i < KX_TLS_SESSIONS_MAX; i++)
		if (cache->e[i].sess && strcmp(cache->e[i].key, c->cache_key) == 0)
			slot = i;
	if (slot == KX_TLS_SESSIONS_MAX)
		slot = cache->next++ % KX_TLS_SESSIONS_MAX;
	if (cache->e[slot].sess)
		SSL_SESSION_free(cache->e[slot].sess);
	snprintf(cache->e[slot].key, sizeof(cache->e[slot].key), "%s", c->cache_key);
	cache->e[slot].sess = sess;
	return 1; /* the cache holds the reference */
}

static SSL_CTX *kx_tls_client_new(const struct kx_config *cfg, char *why, size_t whylen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		kx_tls_why(why, whylen, "upstream.tls", NULL, "no TLS context");
		return NULL;
	}
	if (!kx_tls_common(ctx, cfg, why, whylen))
		goto fail;
	if (cfg->upstream_tls_ca[0]) {
		if (SSL_CTX_load_verify_file(ctx, cfg->upstream_tls_ca) != 1) {
			kx_tls_why(why, whylen, "upstream.tls.ca", cfg->upstream_tls_ca, "cannot load CA certificates from");
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		kx_tls_why(why, whylen, "upstream.tls.ca", NULL, "no system CA certificates (set upstream.tls.ca)");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cfg->upstream_tls_cert[0] && !kx_tls_load_pair(ctx, "upstream.tls.cert", cfg->upstream_tls_cert,
	                                                   "upstream.tls.key", cfg->upstream_tls_key, why, whylen))
		goto fail;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, kx_tls_new_session);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static bool kx_tls_build(const struct kx_config *cfg, SSL_CTX **server, SSL_CTX **client, char *why, size_t whylen)
{
	*server = *client = NULL;
	if (cfg->tls_cert[0] && !(*server = kx_tls_server_new(cfg, why, whylen)))
		return false;
	if (cfg->upstream_tls && !(*client = kx_tls_client_new(cfg, why, whylen))) {
		SSL_CTX_free(*server);
		*server = NULL;
		return false;
	}
	return true;
}

static void kx_tls_swap(SSL_CTX *server, SSL_CTX *client)
{
	pthread_mutex_lock(&kx_tls_lock);
	SSL_CTX *old_server = kx_tls_server_ctx, *old_client = kx_tls_client_ctx;
	kx_tls_server_ctx = server;
	kx_tls_client_ctx = client;
	pthread_mutex_unlock(&kx_tls_lock);
	SSL_CTX_free(old_server); /* connections made from them keep their own references */
	SSL_CTX_free(old_client);
}

bool kx_tls_setup(const struct kx_config *cfg, char *why, size_t whylen)
{
	SSL_CTX *server, *client;
	if (kx_tls_conn_index < 0)
		kx_tls_conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	kx_tls_cfg = cfg;
	if (!kx_tls_build(cfg, &server, &client, why, whylen))
		return false;
	kx_tls_swap(server, client);
	if (server || client) {
		FILE *ulp = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
		char line[256] = "";
		if (ulp) {
			if (!fgets(line, sizeof(line), ulp))
				line[0] = '\0';
			fclose(ulp);
		}
		kx_info("TLS: %s%s%s (%s); kernel TLS %s", server ? "towards clients" : "",
		        server && client ? " and " : "", client ? "towards brokers" : "", OpenSSL_version(OPENSSL_VERSION),
		        strstr(line, "tls") ? "available: OpenSSL may hand records to it" : "not available here");
	}
	return true;
}

bool kx_tls_reload(const struct kx_config *cfg, char *why, size_t whylen)
{
	SSL_CTX *server, *client;
	if (!kx_tls_build(cfg, &server, &client, why, whylen))
		return false;
	kx_tls_cfg = cfg;
	kx_tls_swap(server, client);
	return true;
}

void kx_tls_teardown(void)
{
	kx_tls_swap(NULL, NULL);
}

bool kx_tls_towards_clients(void)
{
	pthread_mutex_lock(&kx_tls_lock);
	bool on = kx_tls_server_ctx != NULL;
	pthread_mutex_unlock(&kx_tls_lock);
	return on;
}

bool kx_tls_towards_brokers(void)
{
	pthread_mutex_lock(&kx_tls_lock);
	bool on = kx_tls_client_ctx != NULL;
	pthread_mutex_unlock(&kx_tls_lock);
	return on;
}

struct kx_tls_sessions *kx_tls_sessions_new(void)
{
	return calloc(1, sizeof(struct kx_tls_sessions));
}

void kx_tls_sessions_free(struct kx_tls_sessions *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < KX_TLS_SESSIONS_MAX; i++)
		if (c->e[i].sess)
			SSL_SESSION_free(c->e[i].sess);
	free(c);
}

/* ---- connections ------------------------------------------------------- */

static struct kx_tls_conn *kx_tls_new(SSL_CTX **which, int fd, bool server)
{
	pthread_mutex_lock(&kx_tls_lock);
	SSL_CTX *ctx = *which;
	if (ctx)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&kx_tls_lock);
	if (!ctx)
		return NULL;
	struct kx_tls_conn *c = calloc(1, sizeof(*c));
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (!c || !ssl || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	c->ssl = ssl;
	c->server = server;
	c->sni_node = -1;
	SSL_set_ex_data(ssl, kx_tls_conn_index, c);
	return c;
}

bool kx_tls_accept(struct kx_transport *t, int fd)
{
	struct kx_tls_conn *c = kx_tls_new(&kx_tls_server_ctx, fd, true);
	if (!c)
		return false;
	SSL_set_accept_state(c->ssl);
	*t = (struct kx_transport){.ops = &kx_tls_transport, .fd = fd, .impl = c};
	return true;
}

static bool kx_is_ip(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

bool kx_tls_connect(struct kx_transport *t, int fd, const char *host, uint16_t port, bool verify_hostname,
                    struct kx_tls_sessions *cache)
{
	struct kx_tls_conn *c = kx_tls_new(&kx_tls_client_ctx, fd, false);
	if (!c)
		return false;
	bool ip = kx_is_ip(host);
	SSL_set_connect_state(c->ssl);
	if (!ip)
		SSL_set_tlsext_host_name(c->ssl, host); /* SNI: names only (RFC 6066) */
	if (verify_hostname) {
		bool ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) == 1
		             : SSL_set1_host(c->ssl, host) == 1;
		if (!ok) {
			SSL_free(c->ssl);
			free(c);
			ERR_clear_error();
			return false;
		}
	}
	c->cache = cache;
	snprintf(c->cache_key, sizeof(c->cache_key), "%s:%u", host, port);
	for (unsigned i = 0; cache && i < KX_TLS_SESSIONS_MAX; i++) {
		if (cache->e[i].sess && strcmp(cache->e[i].key, c->cache_key) == 0) {
			SSL_set_session(c->ssl, cache->e[i].sess);
			break;
		}
	}
	*t = (struct kx_transport){.ops = &kx_tls_transport, .fd = fd, .impl = c};
	return true;
}

enum kx_tls_step kx_tls_handshake(struct kx_transport *t)
{
	struct kx_tls_conn *c = t->impl;
	if (c->established)
		return KX_TLS_DONE;
	if (c->server && !c->hello_checked) {
		/* Plain Kafka (a 4-byte size, then the header) on a TLS port: say so. */
		uint8_t b[4];
		ssize_t n = recv(t->fd, b, sizeof(b), MSG_PEEK);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return KX_TLS_WANT_READ;
		if (n <= 0) {
			snprintf(c->err, sizeof(c->err), "closed before the TLS handshake%s%s", n < 0 ? ": " : "",
			         n < 0 ? strerror(errno) : "");
			return KX_TLS_FAILED;
		}
		if (b[0] != 0x16) {
			snprintf(c->err, sizeof(c->err),
			         "not a TLS handshake (first bytes %02x %02x %02x %02x): a plaintext Kafka client on a TLS "
			         "listener?", b[0], n > 1 ? b[1] : 0, n > 2 ? b[2] : 0, n > 3 ? b[3] : 0);
			return KX_TLS_FAILED;
		}
		c->hello_checked = true;
	}
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->established = true;
		if (c->server)
			KX_METRIC_ADD(tls_handshakes, 1);
		else if (SSL_session_reused(c->ssl))
			KX_METRIC_ADD(upstream_tls_resumed, 1);
		else
			KX_METRIC_ADD(upstream_tls_full_handshakes, 1);
		return KX_TLS_DONE;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ: return KX_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE: return KX_TLS_WANT_WRITE;
	case SSL_ERROR_SYSCALL:
		if (errno == EAGAIN || errno == EINTR)
			return KX_TLS_WANT_READ;
		snprintf(c->err, sizeof(c->err), "TLS handshake: %s", errno ? strerror(errno) : "peer closed");
		ERR_clear_error();
		return KX_TLS_FAILED;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(c->err, sizeof(c->err), "TLS handshake: peer closed");
		return KX_TLS_FAILED;
	default:
		if (c->err[0]) /* the server name callback said why */
			ERR_clear_error();
		else
			kx_tls_fail(c, "TLS handshake failed");
		return KX_TLS_FAILED;
	}
}

const char *kx_tls_error(const struct kx_transport *t)
{
	const struct kx_tls_conn *c = t->ops == &kx_tls_transport ? t->impl : NULL;
	return c ? c->err : "";
}

void kx_tls_describe(const struct kx_transport *t, char *out, size_t len)
{
	const struct kx_tls_conn *c = t->impl;
	snprintf(out, len, "%s %s%s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
	         SSL_session_reused(c->ssl) ? ", resumed" : "");
}

bool kx_tls_peer_subject(const struct kx_transport *t, char *out, size_t len)
{
	const struct kx_tls_conn *c = t->impl;
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	if (!x || !len)
		return false;
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return false;
	X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
	int n = BIO_read(b, out, (int)len - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
	return true;
}

bool kx_tls_peer_rack(const struct kx_transport *t, enum kx_cert_attr attr, const char *prefix, char *out, size_t len)
{
	const struct kx_tls_conn *c = t->impl;
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	if (!x || attr == KX_CERT_ATTR_NONE)
		return false;
	if (attr == KX_CERT_ATTR_SAN) {
		GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
		bool found = false;
		for (int i = 0; names && !found && i < sk_GENERAL_NAME_num(names); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
			if (g->type == GEN_DNS)
				found = kr_rack_from_cert_value(prefix, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
				                                (size_t)ASN1_STRING_length(g->d.dNSName), out, len);
		}
		GENERAL_NAMES_free(names);
		return found;
	}
	int nid = attr == KX_CERT_ATTR_CN ? NID_commonName : NID_organizationalUnitName;
	const X509_NAME *name = X509_get_subject_name(x);
	for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0; i = X509_NAME_get_index_by_NID(name, nid, i)) {
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		if (kr_rack_from_cert_value(prefix, (const char *)ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v),
		                            out, len))
			return true;
	}
	return false;
}

/* ---- the transport ----------------------------------------------------- */

/* After SSL_read_ex/SSL_write_ex failed: -1 with errno EAGAIN (and the
 * direction it waits on in t->blocked) or another errno (c->err says why). */
static ssize_t kx_tls_io_error(struct kx_transport *t, struct kx_tls_conn *c, int ret, bool reading)
{
	int e = SSL_get_error(c->ssl, ret);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		if (!reading)
			t->blocked |= KX_TR_WRITE_WANTS_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			t->blocked |= KX_TR_READ_WANTS_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN: return 0; /* close_notify (or, with IGNORE_UNEXPECTED_EOF, a plain end) */
	case SSL_ERROR_SYSCALL:
		if (errno == 0) {
			ERR_clear_error();
			return 0;
		}
		snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
		ERR_clear_error();
		return -1;
	default:
		kx_tls_fail(c, reading ? "TLS read" : "TLS write");
		errno = EPROTO;
		return -1;
	}
}

static ssize_t kx_tls_readv(struct kx_transport *t, const struct iovec *iov, int cnt)
{
	struct kx_tls_conn *c = t->impl;
	size_t total = 0;
	t->blocked &= (uint8_t)~KX_TR_READ_WANTS_WRITE;
	c->read_full = false;
	for (int i = 0; i < cnt; i++) {
		size_t off = 0;
		while (off < iov[i].iov_len) {
			size_t n = 0;
			ERR_clear_error();
			int r = SSL_read_ex(c->ssl, (uint8_t *)iov[i].iov_base + off, iov[i].iov_len - off, &n);
			if (r != 1) {
				if (total)
					return (ssize_t)total; /* the error (or end) comes again on the next read */
				return kx_tls_io_error(t, c, r, true);
			}
			off += n;
			total += n;
		}
	}
	c->read_full = true;
	return (ssize_t)total;
}

/*
 * Writes iov's bytes as records of up to KX_TLS_RECORD: a piece that long
 * or longer straight from where it is, shorter ones gathered first. A
 * write OpenSSL did not finish is offered again as it requires: the same
 * bytes, at least as many (retry_len; they are the same because the flow
 * drains nothing it was not told was written).
 */
static ssize_t kx_tls_writev(struct kx_transport *t, const struct iovec *iov, int cnt)
{
	struct kx_tls_conn *c = t->impl;
	size_t total = 0;
	int i = 0;
	size_t off = 0;
	t->blocked &= (uint8_t)~KX_TR_WRITE_WANTS_READ;
	while (i < cnt) {
		if (off == iov[i].iov_len) {
			i++;
			off = 0;
			continue;
		}
		const uint8_t *src = (const uint8_t *)iov[i].iov_base + off;
		size_t want = iov[i].iov_len - off;
		if (want > KX_TLS_RECORD)
			want = KX_TLS_RECORD;
		size_t need = c->retry_len ? c->retry_len : KX_TLS_RECORD;
		if (want < need && i + 1 < cnt) {
			/* Gather the following pieces behind this one, up to one record. */
			if (!c->stage && !(c->stage = malloc(KX_TLS_RECORD))) {
				errno = ENOMEM;
				return total ? (ssize_t)total : -1;
			}
			size_t got = 0, o = off;
			for (int j = i; j < cnt && got < need; j++, o = 0) {
				size_t take = iov[j].iov_len - o;
				if (take > need - got)
					take = need - got;
				memcpy(c->stage + got, (const uint8_t *)iov[j].iov_base + o, take);
				got += take;
			}
			src = c->stage;
			want = got;
		}
		if (c->retry_len && want < c->retry_len) {
			/* Cannot happen while the flow keeps its bytes; refuse rather than corrupt the stream. */
			snprintf(c->err, sizeof(c->err), "TLS write retried with %zu bytes of %zu", want, c->retry_len);
			errno = EPROTO;
			return -1;
		}
		size_t n = 0;
		ERR_clear_error();
		int r = SSL_write_ex(c->ssl, src, want, &n);
		if (r != 1) {
			c->retry_len = want;
			if (total)
				return (ssize_t)total;
			return kx_tls_io_error(t, c, r, false);
		}
		c->retry_len = 0;
		total += n;
		/* Advance over n bytes of the pieces. */
		while (n && i < cnt) {
			size_t left = iov[i].iov_len - off;
			if (n < left) {
				off += n;
				n = 0;
			} else {
				n -= left;
				i++;
				off = 0;
			}
		}
	}
	return (ssize_t)total;
}

static bool kx_tls_can_splice(const struct kx_transport *t)
{
	(void)t;
	return false;
}

static bool kx_tls_pending(const struct kx_transport *t)
{
	const struct kx_tls_conn *c = t->impl;
	return c->read_full && SSL_has_pending(c->ssl);
}

static int kx_tls_shutdown(struct kx_transport *t, int how)
{
	struct kx_tls_conn *c = t->impl;
	if (c->established && (how == SHUT_WR || how == SHUT_RDWR)) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl); /* close_notify, if the socket takes it now */
		ERR_clear_error();
	}
	return shutdown(t->fd, how);
}

static void kx_tls_close(struct kx_transport *t)
{
	struct kx_tls_conn *c = t->impl;
	if (c) {
		/* close_notify when the socket takes it (one try, never waited for):
		 * a connection freed without it leaves its session unresumable. */
		if (c->established && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		free(c->stage);
		free(c);
	}
	if (t->fd >= 0)
		close(t->fd);
	t->impl = NULL;
	t->fd = -1;
	ERR_clear_error();
}

const struct kx_transport_ops kx_tls_transport = {
    .name = "tls",
    .readv = kx_tls_readv,
    .writev = kx_tls_writev,
    .can_splice = kx_tls_can_splice,
    .pending = kx_tls_pending,
    .shutdown = kx_tls_shutdown,
    .close = kx_tls_close,
};

int32_t kx_tls_sni_node(const struct kx_transport *t)
{
	const struct kx_tls_conn *c = t->impl;
	return c->sni_node;
}
