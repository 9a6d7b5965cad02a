/*
 * errbuf.h - one-line error messages into a caller's buffer (the err,
 * errlen pairs of the parsing and opening functions). NULL or an empty
 * buffer discards the message.
 */
#ifndef KUMO_COMMON_ERRBUF_H
#define KUMO_COMMON_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void
errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#endif
