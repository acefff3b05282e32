/* Internal to the node: the control socket (<home>/node.sock) through
 * which the CLI talks to a running node. */
#ifndef HYPERC_NODE_CONTROL_H
#define HYPERC_NODE_CONTROL_H

#include "../kernel/kernel.h"

/* Control socket (control.c). */
int hcn_control_start(hcn_node *n);
void hcn_control_stop(hcn_node *n);

#endif
