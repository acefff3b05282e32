/* Internal to the node: the runtime modules' room (src/node/modules/):
 * state:distro:sys, timer:distro:sys, vfs:distro:sys, homepage:homepage:sys
 * and the terminal injector, and the toolkit every module uses (modkit.c).
 * A module is a process the node implements itself (hcn_module_ops); it
 * sits on the kernel (kernel/kernel.h) and nothing below it calls it.  The
 * node's life (node.c) adds each one from its module table. */
#ifndef HYPERC_NODE_MODULES_H
#define HYPERC_NODE_MODULES_H

#include "../kernel/kernel.h"

/* Each registers its module in n's process table (status LOADED; the
 * node's life starts its thread): 0, or -1 with a message in err.  Called
 * once, from hc_node_new, before any thread runs. */
int hcn_mod_state_add(hcn_node *n, char *err, size_t errlen);
int hcn_mod_timer_add(hcn_node *n, char *err, size_t errlen);
int hcn_mod_terminal_add(hcn_node *n, char *err, size_t errlen);
int hcn_mod_vfs_add(hcn_node *n, char *err, size_t errlen);
int hcn_mod_homepage_add(hcn_node *n, char *err, size_t errlen);

/* The homepage tiles as homepage's GetApps lists them (a JSON array of
 * App records, sorted by process id), for the node's home page; any
 * thread.  malloc'd; NULL when the module is absent. */
char *hcn_homepage_apps(hcn_node *n);

/* vfs:distro:sys (vfs.c): VfsAction variants, in process_lib's order. */
typedef enum hcn_vfs_action {
    HCN_VFS_CREATE_DRIVE,
    HCN_VFS_CREATE_DIR,
    HCN_VFS_CREATE_DIR_ALL,
    HCN_VFS_CREATE_FILE,
    HCN_VFS_OPEN_FILE,
    HCN_VFS_CLOSE_FILE,
    HCN_VFS_WRITE,
    HCN_VFS_WRITE_ALL,
    HCN_VFS_APPEND,
    HCN_VFS_SYNC_ALL,
    HCN_VFS_READ,
    HCN_VFS_READ_DIR,
    HCN_VFS_READ_TO_END,
    HCN_VFS_READ_EXACT,
    HCN_VFS_READ_TO_STRING,
    HCN_VFS_SEEK,
    HCN_VFS_REMOVE_FILE,
    HCN_VFS_REMOVE_DIR,
    HCN_VFS_REMOVE_DIR_ALL,
    HCN_VFS_RENAME,
    HCN_VFS_METADATA,
    HCN_VFS_ADD_ZIP,
    HCN_VFS_COPY_FILE,
    HCN_VFS_LEN,
    HCN_VFS_SET_LEN,
    HCN_VFS_HASH,
} hcn_vfs_action;

/* A VfsRequest {path, action} as serde reads it. */
typedef struct hcn_vfs_request {
    hcn_vfs_action action;
    char *path;
    char *new_path; /* Rename, CopyFile */
    bool create;    /* OpenFile */
    uint64_t n;     /* ReadExact length, SetLen, Seek Start */
    int whence;     /* Seek: SEEK_SET, SEEK_END or SEEK_CUR */
    int64_t offset; /* Seek End / Current */
} hcn_vfs_request;

/* Parse a request body; 0, or -1 (Hyperware's MalformedRequest).  The
 * caller releases a parsed request with hcn_vfs_request_fini. */
int hcn_vfs_parse_request(const void *body, size_t len, hcn_vfs_request *out);
void hcn_vfs_request_fini(hcn_vfs_request *r);
/* Normalize a vfs path lexically ("/a:b//d/./x/../y" -> "a:b/d/y", no
 * leading '/'); NULL if ".." climbs above the vfs root.  Caller frees. */
char *hcn_vfs_normalize(const char *path);
/* Make a loaded package's pkg/ folder (a real path) its read-only drive
 * /<package_id>/pkg. */
void hcn_vfs_add_package(hcn_node *n, const char *package_id,
                         const char *pkg_dir);

/* Injector (terminal module): send `m` (a request from
 * our@terminal:terminal:sys) and wait up to timeout_ms for its answer.
 * Returns HCC_EOK with *resp (response envelope), HCC_ETIMEOUT/HCC_EOFFLINE
 * for a send error, or HCC_ETIMEOUT if nothing came. Fire-and-forget
 * requests (no expects) return HCC_EOK with *resp NULL at once. */
int hcn_inject(hcn_node *n, hcn_msg *m, int64_t timeout_ms, hcn_msg **resp);

#endif
