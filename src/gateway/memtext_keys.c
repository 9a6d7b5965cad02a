/*
 * memtext_keys.c - the keys of get, gets, gat and gats lines, returned in
 * batches of at most MEMTEXT_KEYS_MAX, and streamed when a line is too
 * long to wait for its end. The position inside such a line is kept in
 * the caller's struct memtext_cont between calls.
 */
#include "config.h"
#include "gateway/memtext_lex.h"

#include <string.h>

/* memcached closes a long line with more leading spaces than this. */
#define LEADING_SPACES_MAX 100

static bool
is_get_cmd(enum memtext_cmd cmd)
{
    return cmd == MT_GET || cmd == MT_GETS;
}

static void
add_key(struct memtext_req *req, const char *p, size_t n)
{
    req->keys[req->nkeys].ptr = p;
    req->keys[req->nkeys].len = n;
    req->nkeys++;
}

/*
 * The get-family command of a line that is still unfinished past
 * MEMTEXT_LINE_MAX bytes (buf[0..len), len > MEMTEXT_LINE_MAX), or -1.
 * As memcached: up to 100 leading spaces, then the verb and a space.
 * memcached allows only get and gets here (it closes a long gat line);
 * kumo lets gat and gats stream too.
 */
int
mt_getline_verb(const char *buf, size_t len)
{
    static const struct {
        const char *word;
        enum memtext_cmd cmd;
    } verbs[] = {
        { "get ", MT_GET }, { "gets ", MT_GETS },
        { "gat ", MT_GAT }, { "gats ", MT_GATS },
    };
    size_t i = mt_skip(buf, len, 0, true);

    if (i > LEADING_SPACES_MAX) {
        return -1;
    }
    for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
        size_t n = strlen(verbs[v].word);

        if (len - i >= n && memcmp(buf + i, verbs[v].word, n) == 0) {
            return (int)verbs[v].cmd;
        }
    }
    return -1;
}

/* Whether every token of buf[pos..end) fits a key. */
static bool
keys_valid(const char *buf, size_t pos, size_t end)
{
    for (;;) {
        size_t start = mt_skip(buf, end, pos, true);

        if (start == end) {
            return true;
        }
        pos = mt_skip(buf, end, start, false);
        if (pos - start > MEMTEXT_KEY_MAX) {
            return false;
        }
    }
}

/*
 * The next batch of a line whose end is buffered and whose keys are all
 * valid: keys of buf[pos..end), then either the line is done (*used =
 * consumed, through its '\n') or cont remembers where it stopped.
 */
static enum memtext_status
batch_of_line(struct memtext_cont *cont, struct memtext_req *req,
              const char *buf, size_t pos, size_t end, size_t consumed,
              size_t *used)
{
    while (req->nkeys < MEMTEXT_KEYS_MAX) {
        size_t start = mt_skip(buf, end, pos, true);

        if (start == end) {
            break;
        }
        pos = mt_skip(buf, end, start, false);
        add_key(req, buf + start, pos - start);
    }
    pos = mt_skip(buf, end, pos, true);
    if (pos == end) {
        bool none = req->nkeys == 0 && !cont->had_key;

        cont->where = MEMTEXT_AT_LINE;
        /* A get line without any key: memcached's "too few tokens". */
        if (none && is_get_cmd(req->cmd)) {
            return mt_fail(req, MT_ERR_UNKNOWN, consumed, used);
        }
        req->more = false;
        *used = consumed;
        return MEMTEXT_OK;
    }
    cont->where = MEMTEXT_IN_KEYS;
    cont->cmd = req->cmd;
    cont->exptime = req->exptime;
    cont->checked = true;
    cont->had_key = true;
    req->more = true;
    *used = pos;
    return MEMTEXT_OK;
}

/*
 * A whole get-family line: buf[pos..linelen) follows the verb (at least
 * one token does, the caller checked), consumed ends after its '\n'.
 * Every key is checked before the first batch, so a bad key anywhere
 * gives only the error, as memcached.
 */
enum memtext_status
mt_keys_line(struct memtext_cont *cont, struct memtext_req *req,
             const char *buf, size_t pos, size_t linelen, size_t consumed,
             size_t *used)
{
    cont->had_key = false;
    if (req->cmd == MT_GAT || req->cmd == MT_GATS) {
        struct mt_tok t;
        int32_t e;

        mt_tokenize(buf + pos, linelen - pos, &t, 1);
        if (!mt_num_i32(&t, &e)) {
            return mt_fail(req, MT_ERR_EXPTIME, consumed, used);
        }
        req->exptime = e;
        pos = (size_t)(t.p + t.n - buf);
    }
    if (!keys_valid(buf, pos, linelen)) {
        return mt_fail(req, MT_ERR_FORMAT, consumed, used);
    }
    return batch_of_line(cont, req, buf, pos, linelen, consumed, used);
}

/* From now on drop the line up to its '\n', then reply error (or END). */
static void
start_skip(struct memtext_cont *cont, const char *error)
{
    cont->where = MEMTEXT_IN_SKIP;
    cont->error = error;
}

/* IN_SKIP: drop what is buffered of the line, finish at its '\n'. */
static enum memtext_status
skip_rest(struct memtext_cont *cont, struct memtext_req *req,
          const char *buf, size_t len, size_t *used)
{
    const char *nlp;

    if (len == 0) {
        return MEMTEXT_AGAIN;
    }
    nlp = memchr(buf, '\n', len);
    if (nlp == NULL) {
        req->more = true;
        *used = len;
        return MEMTEXT_OK;
    }
    cont->where = MEMTEXT_AT_LINE;
    if (cont->error != NULL) {
        return mt_fail(req, cont->error, (size_t)(nlp - buf) + 1, used);
    }
    req->more = false;
    *used = (size_t)(nlp - buf) + 1;
    return MEMTEXT_OK;
}

/*
 * IN_KEYS without the line's '\n' in buf: the keys that are complete
 * (followed by a space, or by a NUL, which ends the line for memcached).
 * A last token still arriving stays in the buffer unless it is already
 * too long for a key.
 */
static enum memtext_status
batch_of_stream(struct memtext_cont *cont, struct memtext_req *req,
                const char *buf, size_t len, size_t *used)
{
    const char *z = memchr(buf, '\0', len);
    size_t end = z != NULL ? (size_t)(z - buf) : len;
    size_t pos = 0;
    bool bad = false;

    while (req->nkeys < MEMTEXT_KEYS_MAX) {
        size_t start = mt_skip(buf, end, pos, true);
        size_t stop;

        pos = start;
        if (start == end) {
            break;
        }
        stop = mt_skip(buf, end, start, false);
        if (stop - start > MEMTEXT_KEY_MAX) {
            bad = true;
            break;
        }
        if (stop == len) {
            break;                      /* may go on in the next read */
        }
        add_key(req, buf + start, stop - start);
        pos = stop;
    }
    if (req->nkeys > 0) {
        /* The bad key or the NUL is met again by the next call. */
        cont->had_key = true;
        req->more = true;
        *used = pos;
        return MEMTEXT_OK;
    }
    if (bad) {
        start_skip(cont, MT_ERR_FORMAT);
    } else if (z != NULL && pos == end) {
        start_skip(cont, !cont->had_key && is_get_cmd(cont->cmd)
                         ? MT_ERR_UNKNOWN : NULL);
    } else if (pos > 0) {
        req->more = true;               /* only spaces so far */
        *used = pos;
        return MEMTEXT_OK;
    } else {
        return MEMTEXT_AGAIN;
    }
    return skip_rest(cont, req, buf, len, used);
}

/* A call while cont is inside a get-family line (IN_KEYS or IN_SKIP). */
enum memtext_status
mt_keys_next(struct memtext_cont *cont, struct memtext_req *req,
             const char *buf, size_t len, size_t *used)
{
    const char *nlp;
    size_t nl, end;

    req->cmd = cont->cmd;
    req->exptime = cont->exptime;
    if (cont->where == MEMTEXT_IN_SKIP) {
        return skip_rest(cont, req, buf, len, used);
    }
    if (len == 0) {
        return MEMTEXT_AGAIN;
    }
    nlp = memchr(buf, '\n', len);
    if (nlp == NULL) {
        return batch_of_stream(cont, req, buf, len, used);
    }
    /* The line started earlier, so a '\r' before its '\n' is its end. */
    nl = (size_t)(nlp - buf);
    end = nl > 0 && buf[nl - 1] == '\r' ? nl - 1 : nl;
    nlp = memchr(buf, '\0', end);
    if (nlp != NULL) {
        end = (size_t)(nlp - buf);
    }
    if (!cont->checked) {
        if (!keys_valid(buf, 0, end)) {
            cont->where = MEMTEXT_AT_LINE;
            return mt_fail(req, MT_ERR_FORMAT, nl + 1, used);
        }
        cont->checked = true;
    }
    return batch_of_line(cont, req, buf, 0, end, nl + 1, used);
}

/*
 * A get-family line still unfinished after MEMTEXT_GETLINE_STREAM bytes
 * (buf[0..len) holds no '\n'; mt_getline_verb accepted it): read the verb
 * and the gat exptime, then stream its keys. A gat exptime that has not
 * ended by now closes the connection, as memcached closes every long gat
 * line.
 */
enum memtext_status
mt_keys_stream(struct memtext_cont *cont, struct memtext_req *req,
               const char *buf, size_t len, size_t *used)
{
    const char *z = memchr(buf, '\0', len);
    size_t end = z != NULL ? (size_t)(z - buf) : len;
    size_t pos = mt_skip(buf, len, 0, true);
    enum memtext_status st;

    req->cmd = (enum memtext_cmd)mt_getline_verb(buf, len);
    pos = mt_skip(buf, len, pos, false);          /* the verb, then ' ' */
    cont->where = MEMTEXT_IN_KEYS;
    cont->cmd = req->cmd;
    cont->exptime = 0;
    cont->checked = false;
    cont->had_key = false;
    if (req->cmd == MT_GAT || req->cmd == MT_GATS) {
        size_t start = mt_skip(buf, end, pos, true);
        struct mt_tok t;
        int32_t e;

        pos = mt_skip(buf, end, start, false);
        t.p = buf + start;
        t.n = pos - start;
        if (pos == len) {
            /* No '\n', no NUL: the exptime (or the spaces before it)
             * still arriving. */
            cont->where = MEMTEXT_AT_LINE;
            return MEMTEXT_CLOSE;
        } else if (start == end) {
            start_skip(cont, MT_ERR_UNKNOWN);     /* "gat" alone */
        } else if (!mt_num_i32(&t, &e)) {
            start_skip(cont, MT_ERR_EXPTIME);
        } else {
            cont->exptime = e;
        }
    }
    st = mt_keys_next(cont, req, buf + pos, len - pos, used);
    if (st == MEMTEXT_AGAIN) {
        /* The verb is consumed all the same: cont is past it now. */
        req->more = true;
        *used = 0;
        st = MEMTEXT_OK;
    }
    *used += pos;
    return st;
}
