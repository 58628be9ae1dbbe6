/*
 * messages: the message tables of the APIs this build decodes, one file per
 * API (apiversions.c, metadata.c, ...), each written from Kafka's message
 * definitions, and the field indexes that routing code uses.
 */
#ifndef KP_MESSAGES_H
#define KP_MESSAGES_H

#include "schema.h"

extern const struct kp_schema kp_api_versions_request;
extern const struct kp_schema kp_api_versions_response;

#endif
