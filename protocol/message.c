#include "message.h"

bool kp_message_decode(struct kp_arena *a, struct kp_cursor *c, bool request, int16_t api_key, int16_t api_version,
                       struct kp_message *m)
{
	m->request = request;
	m->body = NULL;
	m->raw_body = (struct kp_span){NULL, 0};
	if (request) {
		if (!kp_request_header_parse(c, &m->req))
			return false;
		m->api_key = m->req.api_key;
		m->api_version = m->req.api_version;
	} else {
		m->api_key = api_key;
		m->api_version = api_version;
		if (!kp_response_header_parse(c, kp_response_header_version(api_key, api_version), &m->resp))
			return false;
	}
	m->api = kp_api_get(m->api_key);
	m->flexible = kp_api_flexible(m->api, m->api_version);
	m->raw_body = (struct kp_span){c->buf + c->pos, (int32_t)kp_cursor_left(c)};
	if (!kp_api_decodes(m->api, m->api_version, request)) {
		c->pos = c->len;
		return true;
	}
	m->body = kp_decode(a, c, request ? m->api->request : m->api->response, m->api_version, m->flexible, -1);
	if (!m->body)
		return false;
	if (kp_cursor_left(c) != 0)
		return kp_cursor_fail(c, KP_ERR_TRAILING, m->body->schema->name);
	return true;
}

void kp_message_encode(struct kp_writer *w, const struct kp_message *m)
{
	if (m->request)
		kp_request_header_write(w, &m->req);
	else
		kp_response_header_write(w, &m->resp);
	if (m->body)
		kp_encode(w, m->body, m->api_version, m->flexible, -1);
	else if (m->raw_body.len > 0)
		kp_write_ref(w, m->raw_body.ptr, (size_t)m->raw_body.len);
}
