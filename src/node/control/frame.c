/* The control socket's frames (frame.h): a 4-byte big-endian length and a
 * JSON text, at most HCN_CTL_MAX_FRAME bytes, read and written the same way
 * by the node (control.c) and the hyperc command. */
#include "frame.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Read up to n bytes, stopping early only at end of file or an error; the
 * count read. */
static size_t read_upto(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    return got;
}

int hcn_ctl_read_full(int fd, void *buf, size_t n)
{
    return read_upto(fd, buf, n) == n ? 0 : -1;
}

int hcn_ctl_write_full(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

hcn_ctl_status hcn_ctl_read_frame(int fd, json_t **out, char *err,
                                  size_t errlen)
{
    *out = NULL;
    uint8_t hdr[4];
    size_t got = read_upto(fd, hdr, 4);
    if (got == 0) {
        snprintf(err, errlen, "the connection closed");
        return HCN_CTL_CLOSED;
    }
    if (got < 4) {
        snprintf(err, errlen,
                 "the connection closed within a frame's length (%zu of 4 "
                 "bytes)",
                 got);
        return HCN_CTL_CLOSED;
    }
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
                   (uint32_t)hdr[2] << 8 | hdr[3];
    if (len > HCN_CTL_MAX_FRAME) {
        snprintf(err, errlen,
                 "a frame of %u bytes is over the control socket's limit of "
                 "%u bytes",
                 len, HCN_CTL_MAX_FRAME);
        return HCN_CTL_BAD;
    }
    char *buf = malloc((size_t)len + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "no memory for a frame of %u bytes", len);
        return HCN_CTL_BAD;
    }
    got = read_upto(fd, buf, len);
    if (got < len) {
        free(buf);
        snprintf(err, errlen,
                 "the connection closed within a frame (%zu of %u bytes)", got,
                 len);
        return HCN_CTL_CLOSED;
    }
    json_error_t je;
    *out = json_loadb(buf, len, 0, &je);
    free(buf);
    if (*out == NULL) {
        snprintf(err, errlen, "a frame is not JSON: %s", je.text);
        return HCN_CTL_BAD;
    }
    return HCN_CTL_OK;
}

hcn_ctl_status hcn_ctl_write_frame(int fd, const json_t *j, char *err,
                                   size_t errlen)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s == NULL) {
        snprintf(err, errlen, "cannot encode a frame as JSON");
        return HCN_CTL_BAD;
    }
    size_t len = strlen(s);
    if (len > HCN_CTL_MAX_FRAME) {
        free(s);
        snprintf(err, errlen,
                 "a frame of %zu bytes is over the control socket's limit of "
                 "%u bytes",
                 len, HCN_CTL_MAX_FRAME);
        return HCN_CTL_BAD;
    }
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 8), (uint8_t)len};
    bool sent = hcn_ctl_write_full(fd, hdr, 4) == 0 &&
                hcn_ctl_write_full(fd, s, len) == 0;
    if (!sent)
        snprintf(err, errlen, "cannot write a frame: %s", strerror(errno));
    free(s);
    return sent ? HCN_CTL_OK : HCN_CTL_CLOSED;
}
