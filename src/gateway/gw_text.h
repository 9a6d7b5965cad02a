/*
 * gw_text.h - the memcached text protocol front end (gw_text.c).
 */
#ifndef KUMO_GATEWAY_GW_TEXT_H
#define KUMO_GATEWAY_GW_TEXT_H

#include "gateway/gw_request.h"

extern const struct gw_frontend gw_text_frontend;

#endif
