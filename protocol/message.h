/*
 * message: a whole request or response (header + body) from one frame body.
 */
#ifndef KP_MESSAGE_H
#define KP_MESSAGE_H

#include "api.h"
#include "header.h"
#include "schema.h"

struct kp_message {
	bool request;
	int16_t api_key, api_version; /* responses: from the request they answer */
	struct kp_request_header req; /* when request */
	struct kp_response_header resp;
	const struct kp_api *api; /* NULL: unknown key */
	struct kp_struct *body;   /* NULL: not decoded (API or version not decoded here) */
	struct kp_span raw_body;  /* the body bytes after the header */
	bool flexible;
};

/*
 * Decodes one frame body (without its size). For a response, api_key and
 * api_version come from the request it answers; for a request they are read
 * from the header (pass -1). Bodies of APIs this build does not decode are
 * left raw. A decoded body must use every byte (KP_ERR_TRAILING otherwise).
 * On failure the cursor says where and what.
 */
bool kp_message_decode(struct kp_arena *a, struct kp_cursor *c, bool request, int16_t api_key, int16_t api_version,
                       struct kp_message *m);

/* Encodes header and body (or the raw body when not decoded). */
void kp_message_encode(struct kp_writer *w, const struct kp_message *m);

#endif
