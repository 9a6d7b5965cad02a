/*
 * addr.h - IPv4 node addresses: parsing "host[:port]", formatting "ip:port",
 * and the 6-byte wire form (port then IPv4, network order, as kumofs).
 */
#ifndef KUMO_COMMON_ADDR_H
#define KUMO_COMMON_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define ADDR_STRLEN 24          /* "255.255.255.255:65535" + NUL, rounded */
#define ADDR_DUMPLEN 6

#define KUMO_MANAGER_PORT 19700
#define KUMO_SERVER_PORT  19800
#define KUMO_STREAM_PORT  19900
#define KUMO_GATEWAY_PORT 11211

struct kaddr {
    uint32_t ip;    /* network byte order */
    uint16_t port;  /* host byte order */
};

/* Connectable address "host[:port]" (host resolved with getaddrinfo, IPv4).
 * A missing port takes default_port. Returns 0, or -1 with a one-line
 * reason in err. */
int addr_parse(const char *s, uint16_t default_port, struct kaddr *out,
               char *err, size_t errlen);
/* Listenable address: "port", ":port", "host" or "host:port"; a bare number
 * is a port on 0.0.0.0 (INADDR_ANY). */
int addr_parse_listen(const char *s, uint16_t default_port, struct kaddr *out,
                      char *err, size_t errlen);
/* "ip:port" into buf (at least ADDR_STRLEN bytes); returns buf. */
char *addr_format(const struct kaddr *a, char *buf, size_t len);
void addr_dump(const struct kaddr *a, uint8_t out[ADDR_DUMPLEN]);
void addr_undump(const uint8_t in[ADDR_DUMPLEN], struct kaddr *out);
void addr_to_sockaddr(const struct kaddr *a, struct sockaddr_in *sin);
void addr_from_sockaddr(const struct sockaddr_in *sin, struct kaddr *out);
bool addr_equal(const struct kaddr *a, const struct kaddr *b);
/* Total order: by IP, then port (numerically, host order). */
int addr_cmp(const struct kaddr *a, const struct kaddr *b);

#endif
