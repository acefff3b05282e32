/* Internal to the node: the control socket (<home>/node.sock) through
 * which the CLI talks to a running node. */
#ifndef HYPERC_NODE_CONTROL_H
#define HYPERC_NODE_CONTROL_H

#include "../kernel/kernel.h"

/* Control socket (control.c). */
/* Open <home>/node.sock (mode 0600; refused with EADDRINUSE when a live
 * node answers there) and start accepting on a thread of its own.  0, or
 * -1 with errno.  Once, from hc_node_start. */
int hcn_control_start(hcn_node *n);
/* Stop accepting, remove the socket file and wake every connection still
 * reading (their threads end by themselves; the node's thread census
 * waits for them).  Safe when start failed or never ran. */
void hcn_control_stop(hcn_node *n);
/* Release what start made; after stop, from hc_node_free. */
void hcn_control_free(hcn_node *n);
/* The socket's path, or NULL before start. */
const char *hcn_control_path(const hcn_node *n);

#endif
