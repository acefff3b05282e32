/* What the WebSocket programs of bench/http (ws_load, the client; ws_echo,
 * the ceiling) share: the bytes one read brought, handed to wslay's
 * reader, and the bytes wslay writes, gathered so that a frame's header and
 * payload leave in one write.  Header-only: each program is one file. */
#ifndef BENCH_WS_IO_H
#define BENCH_WS_IO_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <wslay/wslay.h>

typedef struct ws_io {
    const uint8_t *in; /* what ws_io_recv hands wslay */
    size_t in_len;
    uint8_t *out; /* gathered by ws_io_send, written by the program */
    size_t out_len, out_cap, out_off;
} ws_io;

/* Append n bytes to io->out; false when out of memory (nothing added). */
static inline int ws_io_add(ws_io *io, const void *data, size_t n)
{
    if (n > io->out_cap - io->out_len) {
        size_t cap = io->out_cap ? 2 * io->out_cap : 256;
        while (cap < io->out_len + n)
            cap *= 2;
        uint8_t *o = realloc(io->out, cap);
        if (o == NULL)
            return 0;
        io->out = o;
        io->out_cap = cap;
    }
    memcpy(io->out + io->out_len, data, n);
    io->out_len += n;
    return 1;
}

/* wslay's recv callback: `user` is a ws_io (the first member of the
 * program's connection).  WOULDBLOCK once the read's bytes are taken. */
static inline ssize_t ws_io_recv(wslay_event_context_ptr ctx, uint8_t *buf,
                                 size_t len, int flags, void *user)
{
    ws_io *io = user;
    (void)flags;
    if (io->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < io->in_len ? len : io->in_len;
    memcpy(buf, io->in, n);
    io->in += n;
    io->in_len -= n;
    return (ssize_t)n;
}

/* wslay's send callback: gathered into io->out (NOMEM when that fails). */
static inline ssize_t ws_io_send(wslay_event_context_ptr ctx,
                                 const uint8_t *data, size_t len, int flags,
                                 void *user)
{
    (void)flags;
    if (!ws_io_add(user, data, len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_NOMEM);
        return -1;
    }
    return (ssize_t)len;
}

#endif
