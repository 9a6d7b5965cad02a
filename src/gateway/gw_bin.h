/*
 * gw_bin.h - the memcached binary protocol front end (gw_bin.c), and the
 * front end that picks text or binary by a connection's first byte
 * (gw_detect.c).
 */
#ifndef KUMO_GATEWAY_GW_BIN_H
#define KUMO_GATEWAY_GW_BIN_H

#include "gateway/gw_request.h"

extern const struct gw_frontend gw_bin_frontend;

/* memcached's rule: a first byte of 0x80 (the binary request magic) makes
 * the connection binary, anything else text. Replaces itself in the
 * client (gw_client.fe) before parsing anything; its write_error is the
 * text protocol's (nothing has been read when a client is refused). */
extern const struct gw_frontend gw_detect_frontend;

#endif
