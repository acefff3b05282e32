/* Internal to the node: the net room's face to node.c — adding
 * net:distro:sys (net.c), which carries every message for another node
 * over Hyperware's network protocol.  Prefix hcn_ as the node's modules. */
#ifndef HYPERC_NODE_NET_H
#define HYPERC_NODE_NET_H

#include "../kernel/kernel.h"

/* Add net:distro:sys when cfg.net_port >= 0: load or make the networking
 * key (<home>/net/), read the peers file, listen, and hand the kernel its
 * way out to other nodes.  0 (also when networking is off), or -1 with a
 * sentence in err. */
int hcn_mod_net_add(hcn_node *n, char *err, size_t errlen);

#endif
