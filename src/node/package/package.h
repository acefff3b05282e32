/* Internal to the node: packages (metadata.json, pkg/manifest.json, the
 * processes' binaries): loading at boot and installing on a running
 * node. */
#ifndef HYPERC_NODE_PACKAGE_H
#define HYPERC_NODE_PACKAGE_H

#include "../kernel/kernel.h"

/* Package loading (package.c), used by hc_node_load_package. */
int hcn_load_package(hcn_node *n, const char *dir, char *err, size_t errlen);
/* Install a package on a running node, or reinstall it: processes new to
 * the node start; present ones stop at their next receive (what was sent
 * to them stays queued, requests they were answering get a timeout error)
 * and start again from the new binary, keeping their state in
 * state:distro:sys; processes of the package no longer in its manifest
 * (spawned ones too) stop and leave.  Capabilities the manifest asks for
 * are granted (none are taken away).  Nothing changes when the package
 * does not parse or a binary is missing: -1 with a message in err.
 * Blocks until the restarted processes run again (at most 10 s; those
 * that did not are listed).  report gets package, installed, reinstalled,
 * removed, not_restarted and failed (the new or restarted processes whose
 * instance ended before it started: {"process", "reason"}).  Any thread but
 * a process's own. */
struct json_t;
int hcn_install_package(hcn_node *n, const char *dir, struct json_t *report,
                        char *err, size_t errlen);

#endif
