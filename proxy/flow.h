/*
 * flow: one direction of a proxied connection, as bytes: read from a source
 * transport, cleared to go, written to a destination transport. It knows no
 * Kafka (pgbouncer's sbuf plays this part there): what a frame is and
 * whether it may pass is the session's business; the flow moves the bytes
 * it is told are cleared, splices the rest of a large cleared run socket to
 * pipe to socket, and holds a frame taken out whole to be rewritten.
 *
 *   source transport ─readv─► buf ─┬─ cleared (pass) ──────────────► writev ─► destination
 *                     └splice─► pipe ──────────────────────────────► splice ─┘
 *                                   └─ take_frame ─► held copy ─► out ─► writev (before buf)
 *
 * Order on the wire: the pipe's bytes, then out's, then buf's cleared ones.
 * `pass` may run past what has arrived: the rest of a frame cleared at its
 * header is cut through as it comes, spliced when KX_SPLICE_MIN or more of
 * it is still due and nothing waits ahead of it.
 *
 * A transport is how a flow reaches one connection: a raw socket, or TLS
 * (tls.h), without the session changing. Only a transport that can splice
 * (a raw socket) lets bytes bypass user space; a flow splices when both its
 * ends can (kx_flow_init's can_splice).
 *
 * A transport may hold bytes of its own: TLS decrypts a whole record, so
 * after a read that filled what it was given, more may wait inside it with
 * nothing left on the socket (`pending`: read again without waiting for the
 * socket). And one direction may wait on the other's readiness (TLS: a read
 * that must first write, a write that must first read): `blocked` says so,
 * and the owner of the events then waits for that readiness instead.
 */
#ifndef KX_FLOW_H
#define KX_FLOW_H

#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct evbuffer;
struct kx_blk;
struct kx_transport;

struct kx_transport_ops {
	const char *name;
	/* As readv(2)/writev(2): bytes moved, 0 at end of stream (read), -1 with errno. */
	ssize_t (*readv)(struct kx_transport *t, const struct iovec *iov, int cnt);
	ssize_t (*writev)(struct kx_transport *t, const struct iovec *iov, int cnt);
	/* Whether bytes may go between t's descriptor and a pipe (splice(2)). */
	bool (*can_splice)(const struct kx_transport *t);
	/* Whether bytes already read from the socket wait inside t (read them now). */
	bool (*pending)(const struct kx_transport *t);
	int (*shutdown)(struct kx_transport *t, int how);
	void (*close)(struct kx_transport *t);
};

/* kx_transport.blocked: the last call could not go on until the socket is ready the other way. */
enum {
	KX_TR_READ_WANTS_WRITE = 1, /* the read waits for the socket to be writable */
	KX_TR_WRITE_WANTS_READ = 2, /* the write waits for the socket to be readable */
};

struct kx_transport {
	const struct kx_transport_ops *ops; /* NULL: none */
	evutil_socket_t fd;                 /* the descriptor events wait on; -1: none */
	void *impl;                         /* the transport's own state (TLS: its connection) */
	uint8_t blocked;                    /* KX_TR_*: set by the last read or write, cleared by the next */
};

/* A plain non-blocking socket (its fd). */
extern const struct kx_transport_ops kx_raw_transport;

static inline void kx_transport_raw(struct kx_transport *t, evutil_socket_t fd)
{
	*t = (struct kx_transport){.ops = &kx_raw_transport, .fd = fd};
}

/* A frame taken out of a flow whole, to be rewritten: the bytes that
 * reference it (kx_flow_put_ref) keep it alive. */
struct kx_hold {
	int refs;
	uint8_t data[];
};

struct kx_flow {
	struct evbuffer *buf; /* read from the source, in arrival order */
	struct evbuffer *out; /* goes before buf's cleared bytes: rewritten frames and what preceded them */
	uint64_t pass;        /* bytes at buf's front cleared to go; beyond its end while a frame is cut through */
	uint32_t readsz;      /* the next read's size: doubles while reads fill it */
	bool full;            /* above the high watermark: source not read until below the low one */
	bool can_splice;      /* both ends are transports that splice */
	/* The rest of a large frame goes socket -> pipe -> socket (splice), never
	 * through user space. The pipe's bytes go before out's and buf's. */
	int pipe[2];           /* -1: none (made for a frame to splice, closed empty after it) */
	uint32_t piped;        /* bytes in the pipe */
	uint32_t pipesz;       /* its capacity (at least KX_SPLICE_MIN); 0: no pipe */
	int64_t pipe_retry_ms; /* no pipe could be made: none asked for before then (0: ask) */
	bool pipe_stuck;       /* splice into it found no room: the source waits until it drains */
	/* A frame held whole as it arrives (kx_flow_hold): read straight into it. */
	struct kx_hold *hold;
	size_t hold_len, hold_have;
	/* kx_flow_put_ref copies a part shorter than this instead (KX_REF_MIN unless the owner says). */
	size_t ref_min;
	/* Read in blocks (kx_flow_read_in_blocks): buf's bytes lie in
	 * reference-counted blocks the flow reads into, and frames are taken out
	 * by reference to them (kx_flow_take_frame), never copied. */
	bool blocks;
	struct kx_hold *blk;     /* the block reads go into (the flow's reference); NULL: none yet */
	size_t blk_cap, blk_used;
	struct kx_blk *inbuf;    /* the blocks buf's bytes lie in, in order, each with a reference */
	size_t inbuf_head, inbuf_cnt, inbuf_cap;
	uint32_t adds;           /* reads added to buf since it was last compacted (one piece each) */
	size_t want;             /* the owner's hint: bytes the frame being read still needs (0: none known) */
};

/* A frame part at least this large is spliced, not read (below it, the two
 * extra system calls cost more than the copies they save). */
#ifndef KX_SPLICE_MIN
#define KX_SPLICE_MIN (UINT64_C(64) << 10)
#endif

/* False when out of memory (kx_flow_free still frees what was made). */
bool kx_flow_init(struct kx_flow *f, bool can_splice);
void kx_flow_free(struct kx_flow *f);

/* Bytes f can write now: its pipe, its out, then what is cleared at buf's front. */
size_t kx_flow_ready(const struct kx_flow *f);

/* A frame is being cut through: part of it is still to arrive. */
bool kx_flow_cut(const struct kx_flow *f);

/*
 * One read from src into f (or one splice into f's pipe, see above).
 * Returns the bytes read, 0 at end of stream, -1 on an error (errno says
 * which), -2 when nothing is there yet (or the pipe has no room:
 * f->pipe_stuck, read again once it drained).
 */
ssize_t kx_flow_read(struct kx_flow *f, struct kx_transport *src);

/* Writes what f has ready to dst until all is written or dst is full.
 * False on a write error (errno says which). */
bool kx_flow_write(struct kx_flow *f, struct kx_transport *dst);

/*
 * Takes the whole frame of `len` bytes that follows f's cleared bytes out
 * of buf into a held copy (counted in kstretch_bytes_copied); the cleared
 * bytes go to out first, so order is kept. NULL when out of memory. The
 * caller holds one reference.
 */
struct kx_hold *kx_flow_take(struct kx_flow *f, size_t len);

/*
 * Starts holding the frame of `len` bytes behind f's cleared bytes, of
 * which only the start has arrived: the cleared bytes go to out, the part
 * buffered is copied into the hold (counted), and the rest is read straight
 * into it (kx_flow_read), never through buf: a large frame to rewrite costs
 * no copy of what it carries. len is the peer's word: the caller checks it
 * against its frame limit (max.frame.bytes) first; the block's pages are
 * only touched as bytes arrive. False when out of memory.
 */
bool kx_flow_hold(struct kx_flow *f, size_t len);

/*
 * Reads in blocks from now on (before the first read): each read goes into
 * the free end of a reference-counted block (a new one, of the read size,
 * when too little is left) and its bytes are added to buf by reference to
 * it. A whole frame is then taken out by reference (kx_flow_take_frame):
 * its bytes stay where they were read, however many reads and blocks they
 * span, and go out referenced from there. Only for a flow whose bytes are
 * never cleared to pass (pass stays 0) and never held (kx_flow_hold).
 */
void kx_flow_read_in_blocks(struct kx_flow *f);

/*
 * The owner of a flow reading in blocks says how many more bytes the frame
 * it waits for needs (0 once it has them): the next block is made that large
 * (up to KX_WANT_MAX), so a large frame arrives in as few reads and pieces as
 * the socket allows, as into a hold, instead of one per read size.
 */
static inline void kx_flow_want(struct kx_flow *f, size_t bytes)
{
	f->want = bytes;
}

/*
 * A frame taken out of a flow by reference: its bytes, in order, where they
 * were read (iov), and one reference to each block they lie in (holds, with
 * each block's size in lens: as kx_queue_frame_refs takes them). A part made
 * contiguous (kx_frame_flat) adds its copy to holds.
 */
struct kx_frame {
	size_t len; /* bytes, with the 4 size bytes */
	struct iovec *iov;
	int niov;
	struct kx_hold **holds;
	size_t *lens;
	int nholds, holds_cap;
};

/*
 * Takes the whole frame of `len` bytes at the front of a flow that reads in
 * blocks (all of it buffered) out of buf by reference into *fr: nothing is
 * copied. False when out of memory (nothing taken; *fr is empty).
 */
bool kx_flow_take_frame(struct kx_flow *f, size_t len, struct kx_frame *fr);

/* The flow lets its read block go when nothing waits in buf (the frames
 * taken from it keep it while they need it): an idle connection holds none. */
void kx_flow_trim(struct kx_flow *f);

/* Drops len bytes at the front of f's buffer, none of them cleared to go (a
 * PROXY header): a flow reading in blocks lets go of the blocks they were in. */
void kx_flow_drain(struct kx_flow *f, size_t len);

/* Drops fr's references (its blocks live on while output references them); fr is then empty. */
void kx_frame_release(struct kx_frame *fr);

/*
 * The bytes [from, to) of fr, contiguous: where they lie when one read's
 * piece holds them all, else copied into a block of their own (counted in
 * kstretch_bytes_copied) that fr then holds. False when out of memory.
 */
bool kx_frame_flat(struct kx_frame *fr, size_t from, size_t to, const uint8_t **p);

/*
 * A frame kept a while (an answer waiting for its client) keeps every block
 * it lies in: when those blocks are more than `ratio` times its size (a
 * small answer in a large block shared with others' bytes), its bytes are
 * copied into a block of their own (counted in kstretch_bytes_copied) and
 * the others let go, so what a slow client pins stays near what it is owed.
 * False when out of memory (fr unchanged).
 */
bool kx_frame_unpin(struct kx_frame *fr, size_t ratio);

/* Writes into out (room for fr->niov) the pieces of fr's bytes [from, len), as fr holds them; returns how many. */
int kx_frame_iov_from(const struct kx_frame *fr, size_t from, struct iovec *out);

/* Whether a frame is being held (kx_flow_hold) and how much of it is there. */
static inline bool kx_flow_holding(const struct kx_flow *f)
{
	return f->hold != NULL;
}

/* The held frame once all of it arrived (the caller now owns its reference;
 * its bytes are h->data[0 .. *len)), else NULL. */
struct kx_hold *kx_flow_held(struct kx_flow *f, size_t *len);

/* Queues bytes on f's out: copied (kx_flow_put_copy, counted), or by
 * reference into h (kx_flow_put_ref: parts shorter than f->ref_min are
 * copied instead, see flow.c) while h lives. */
void kx_flow_put_copy(struct kx_flow *f, const void *data, size_t len);
void kx_flow_put_ref(struct kx_flow *f, struct kx_hold *h, const uint8_t *data, size_t len);

/* Drops a reference to h (the caller's, once its frame is queued). */
void kx_hold_put(struct kx_hold *h);

/* A block of len bytes with one reference (the caller's); NULL when out of memory. */
struct kx_hold *kx_hold_new(size_t len);

#endif
