/*
 * tls: TLS on kstretch's two sides with OpenSSL 3 directly (not
 * bufferevent_openssl): a kx_transport (flow.h) over one socket.
 *
 * Two process-wide contexts: one towards clients (server role: tls.cert,
 * tls.key, tls.client.ca, tls.client.auth) and one towards brokers (client
 * role: upstream.tls.*). kx_tls_reload (SIGHUP) builds new ones from the same
 * files and swaps them in: connections made afterwards use them, established
 * ones keep theirs (an SSL holds a reference to the context it came from). A
 * file that does not load leaves the old context in place.
 *
 *   accept ─► kx_tls_accept ─► kx_tls_handshake … KX_TLS_DONE ─► flow reads/writes via the transport
 *   connect ─► kx_tls_connect ─► kx_tls_handshake … KX_TLS_DONE ─► (the same)
 *
 * The handshake runs on its own first: the caller waits for the readiness
 * kx_tls_handshake asks for and calls it again. Then the flow's reads and
 * writes go through SSL_read_ex/SSL_write_ex; a read that filled its buffer
 * may leave decrypted bytes inside (ops->pending), and a read or write that
 * waits on the other direction says so in kx_transport.blocked.
 *
 * Writes: small pieces are gathered into one record (a record per 100-byte
 * piece would cost a header, a MAC and a system call each), and a write
 * OpenSSL could not finish is offered again with the same bytes and at
 * least the same length, as it requires (they are still at the flow's
 * front: nothing is drained before it is written).
 *
 * kTLS: SSL_OP_ENABLE_KTLS is set, so where the kernel has the tls module
 * OpenSSL hands record encryption to it. Splice stays off on TLS
 * connections (a spliced read would bypass the record layer).
 *
 * OpenSSL writes to the socket with write(2): the process ignores SIGPIPE
 * (main does), so a peer gone is an error, not a signal.
 *
 * Upstream sessions are resumed across reconnects: each worker keeps the
 * last session per broker address (kx_tls_sessions), handshakes are counted
 * full or resumed.
 */
#ifndef KX_TLS_H
#define KX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "flow.h"

/* TLS transports (kx_transport.ops of a TLS connection). */
extern const struct kx_transport_ops kx_tls_transport;

/*
 * Builds the contexts cfg asks for (none when it asks for no TLS). False
 * with one line in why naming the key and the file when one does not load.
 */
bool kx_tls_setup(const struct kx_config *cfg, char *why, size_t whylen);

/* SIGHUP: builds the contexts again from cfg's files and swaps them in; on
 * failure the old ones stay (why says what failed). */
bool kx_tls_reload(const struct kx_config *cfg, char *why, size_t whylen);

void kx_tls_teardown(void);

/* Whether clients connect with TLS / kstretch connects to brokers with TLS. */
bool kx_tls_towards_clients(void);
bool kx_tls_towards_brokers(void);

/* A worker's upstream TLS sessions, by broker address (one thread only). */
struct kx_tls_sessions;
struct kx_tls_sessions *kx_tls_sessions_new(void);
void kx_tls_sessions_free(struct kx_tls_sessions *c);

/*
 * Makes t a TLS transport over fd (which it then owns: t->ops->close closes
 * it): kx_tls_accept towards a client, kx_tls_connect towards a broker at
 * host:port (SNI and hostname verification with host; a session of an
 * earlier connection there is offered for resumption). False when out of
 * memory or without a context (t is left as it was).
 */
bool kx_tls_accept(struct kx_transport *t, int fd);
bool kx_tls_connect(struct kx_transport *t, int fd, const char *host, uint16_t port, bool verify_hostname,
                    struct kx_tls_sessions *cache);

enum kx_tls_step {
	KX_TLS_DONE,       /* handshake complete: the flow may read and write */
	KX_TLS_WANT_READ,  /* call again when the socket is readable */
	KX_TLS_WANT_WRITE, /* call again when the socket is writable */
	KX_TLS_FAILED,     /* kx_tls_error says why; close the connection */
};

/* Runs the handshake as far as the socket allows. */
enum kx_tls_step kx_tls_handshake(struct kx_transport *t);

/* Why the last step or read or write failed (one line; "" when it did not). */
const char *kx_tls_error(const struct kx_transport *t);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" (+ ", resumed") of an established connection. */
void kx_tls_describe(const struct kx_transport *t, char *out, size_t len);

/* The peer certificate's subject (RFC 2253), or false when it sent none. */
bool kx_tls_peer_subject(const struct kx_transport *t, char *out, size_t len);

/*
 * The rack the peer certificate names: the first value of attribute attr
 * that starts with prefix, without the prefix (kr_rack_from_cert_value).
 * False when there is no certificate or no value names one.
 */
bool kx_tls_peer_rack(const struct kx_transport *t, enum kx_cert_attr attr, const char *prefix, char *out,
                      size_t len);

/* listener.mode=sni: the broker the client's server name picked (-1: the bootstrap). */
int32_t kx_tls_sni_node(const struct kx_transport *t);

/* Whether the bytes at the front of a plaintext connection look like a TLS ClientHello (0x16 0x03 ..). */
static inline bool kx_tls_looks_like_hello(const uint8_t *b, size_t len)
{
	return len >= 2 && b[0] == 0x16 && b[1] == 0x03;
}

#endif
