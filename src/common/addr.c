/*
 * addr.c - IPv4 node addresses: "host[:port]" parsing (getaddrinfo, AF_INET
 * only), "ip:port" formatting, the 6-byte wire form and ordering.
 * Knows nothing about sockets beyond struct sockaddr_in.
 */
#include "config.h"
#include "common/addr.h"
#include "common/errbuf.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define ADDR_HOSTMAX 256        /* DNS names are at most 253 bytes */

/* Digits only, 1..65535. Stops early so a long digit string cannot
 * overflow. */
static int
addr_port(const char *s, size_t n, uint16_t *port)
{
    unsigned long v = 0;

    if (n == 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > 65535) {
            return -1;
        }
    }
    if (v == 0) {
        return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

static bool
addr_all_digits(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

/* Resolves host (NUL-terminated) to its first IPv4 address. */
static int
addr_resolve(const char *host, uint32_t *ip)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    /* One socktype, so each address is listed once. */
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return -1;
    }
    *ip = ((const struct sockaddr_in *)(const void *)res->ai_addr)
              ->sin_addr.s_addr;
    freeaddrinfo(res);
    return 0;
}

/*
 * Shared body of both parsers. A missing host is allowed only when
 * empty_host_any is set (listen addresses: ":port" means INADDR_ANY).
 */
static int
addr_parse_common(const char *s, uint16_t default_port, bool empty_host_any,
                  struct kaddr *out, char *err, size_t errlen)
{
    char host[ADDR_HOSTMAX];
    const char *colon;
    size_t hostlen;
    uint16_t port = default_port;
    uint32_t ip;

    if (s == NULL) {
        errbuf_set(err, errlen, "invalid address: (null)");
        return -1;
    }
    colon = strchr(s, ':');
    hostlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
    /* A second colon would be IPv6, which kumo does not speak. */
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        errbuf_set(err, errlen, "invalid address: %s", s);
        return -1;
    }
    /* "" is never an address; ":port" is one only when listening. */
    if (hostlen >= sizeof(host)
        || (hostlen == 0 && (!empty_host_any || colon == NULL))) {
        errbuf_set(err, errlen, "invalid address: %s", s);
        return -1;
    }
    if (colon != NULL
        && addr_port(colon + 1, strlen(colon + 1), &port) != 0) {
        errbuf_set(err, errlen, "invalid port in %s", s);
        return -1;
    }
    if (hostlen == 0) {
        ip = htonl(INADDR_ANY);
    } else {
        memcpy(host, s, hostlen);
        host[hostlen] = '\0';
        if (addr_resolve(host, &ip) != 0) {
            errbuf_set(err, errlen, "cannot resolve host: %s", host);
            return -1;
        }
    }
    out->ip = ip;
    out->port = port;
    return 0;
}

/*
 * Parses a connectable "host[:port]"; the host must be present and
 * resolve to IPv4, the port (if given) must be 1..65535 in digits. A
 * missing port takes default_port. Fills *out and returns 0; on error
 * leaves *out untouched, writes "invalid address: S", "invalid port in S"
 * or "cannot resolve host: H" into err (may be NULL) and returns -1.
 */
int
addr_parse(const char *s, uint16_t default_port, struct kaddr *out,
           char *err, size_t errlen)
{
    return addr_parse_common(s, default_port, false, out, err, errlen);
}

/*
 * Parses a listen address: "port" (all digits: port on 0.0.0.0), ":port"
 * (0.0.0.0), "host" (default_port) or "host:port". Same errors and
 * ownership as addr_parse().
 */
int
addr_parse_listen(const char *s, uint16_t default_port, struct kaddr *out,
                  char *err, size_t errlen)
{
    uint16_t port;

    if (s != NULL && addr_all_digits(s)) {
        if (addr_port(s, strlen(s), &port) != 0) {
            errbuf_set(err, errlen, "invalid port in %s", s);
            return -1;
        }
        out->ip = htonl(INADDR_ANY);
        out->port = port;
        return 0;
    }
    return addr_parse_common(s, default_port, true, out, err, errlen);
}

/*
 * Writes "a.b.c.d:port" into buf (len bytes, ADDR_STRLEN is always
 * enough; shorter buffers are truncated). Returns buf.
 */
char *
addr_format(const struct kaddr *a, char *buf, size_t len)
{
    char ip[INET_ADDRSTRLEN];
    struct in_addr in;

    if (len == 0) {
        return buf;
    }
    in.s_addr = a->ip;
    if (inet_ntop(AF_INET, &in, ip, sizeof(ip)) == NULL) {
        /* Cannot happen for AF_INET with a big enough buffer. */
        snprintf(ip, sizeof(ip), "?");
    }
    snprintf(buf, len, "%s:%u", ip, (unsigned)a->port);
    return buf;
}

/*
 * Writes the 6-byte wire form: port (2 bytes, big-endian), then the IPv4
 * address (4 bytes, network order), as kumofs does.
 */
void
addr_dump(const struct kaddr *a, uint8_t out[ADDR_DUMPLEN])
{
    out[0] = (uint8_t)(a->port >> 8);
    out[1] = (uint8_t)(a->port & 0xff);
    memcpy(out + 2, &a->ip, 4);    /* already network order */
}

/* Reads the 6-byte wire form written by addr_dump(). */
void
addr_undump(const uint8_t in[ADDR_DUMPLEN], struct kaddr *out)
{
    out->port = (uint16_t)(((unsigned)in[0] << 8) | in[1]);
    memcpy(&out->ip, in + 2, 4);
}

/* Fills a zeroed AF_INET sockaddr for connect()/bind(). */
void
addr_to_sockaddr(const struct kaddr *a, struct sockaddr_in *sin)
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = a->ip;
    sin->sin_port = htons(a->port);
}

/* Takes the address and port of an AF_INET sockaddr (accept, getsockname). */
void
addr_from_sockaddr(const struct sockaddr_in *sin, struct kaddr *out)
{
    out->ip = sin->sin_addr.s_addr;
    out->port = ntohs(sin->sin_port);
}

/* True if both IP and port are equal. */
bool
addr_equal(const struct kaddr *a, const struct kaddr *b)
{
    return a->ip == b->ip && a->port == b->port;
}

/*
 * Total order for sorting node lists: IP as a number (host order, so
 * 10.0.0.2 < 10.0.0.10), then port. Returns <0, 0 or >0.
 */
int
addr_cmp(const struct kaddr *a, const struct kaddr *b)
{
    uint32_t ia = ntohl(a->ip), ib = ntohl(b->ip);

    if (ia != ib) {
        return ia < ib ? -1 : 1;
    }
    if (a->port != b->port) {
        return a->port < b->port ? -1 : 1;
    }
    return 0;
}
