/* hyperc node: the native host that runs processes with Hyperware's message
 * semantics.  This is the API the `hyperc` CLI and the tests use to boot and
 * stop a node in-process.  Prefix hc_.
 *
 * Threads: hc_node_* functions are called from one controlling thread (the
 * CLI's main thread).  The node runs each runtime module and each isolated
 * process on a thread of its own, in-process processes as fibers on its
 * scheduler threads (or a thread each: `schedulers`). */
#ifndef HYPERC_NODE_H
#define HYPERC_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcn_node hc_node;

/* Node settings; hc_node_config_default fills every field. */
typedef struct hc_node_config {
    const char *name;     /* node id, e.g. "local.os" (hypermap-safe) */
    const char *home;     /* home directory: state, logs, control socket */
    int http_port;        /* port of http-server:distro:sys; 0 = no server */
    int verbosity;        /* default terminal level 0..3 */
    uint32_t mailbox_max; /* queued requests per process before refusing */
    uint32_t spin_us;     /* longest a receive spins before parking (the
                           * budget adapts below it; 0 = never spin) */
    /* Run in-process guest processes as fibers on this many scheduler
     * threads (default: the online CPUs; 0 = a thread each instead;
     * docs/architecture.md, "Threads").  A scheduler with nothing to run
     * spins for spin_us before it parks. */
    uint32_t schedulers;
    /* Restart policy for on-exit Restart: the first restart is immediate,
     * then restart_base_ms * 2^(n-1), capped at restart_max_ms; the count
     * resets after a healthy run of min(5 x backoff, 50 min).  When
     * restart_give_up failures happen within restart_window_ms the node
     * stops restarting the process and logs why. */
    uint32_t restart_base_ms;
    uint32_t restart_max_ms;
    uint32_t restart_give_up;
    uint32_t restart_window_ms;
    /* Seconds to wait for busy processes at shutdown before leaving. */
    uint32_t shutdown_grace_s;
    /* The log file rotates when it reaches log_max_bytes (0 = never),
     * keeping log_files files in all, as Hyperware's 16 MB over 4. */
    uint64_t log_max_bytes;
    uint32_t log_files;
    /* vfs:distro:sys refuses to read or write a file larger than this
     * (0 = no limit). */
    uint64_t vfs_max_file_bytes;
    /* http-client:distro:sys: an HTTP request gives up after
     * http_client_timeout_ms at most (0 = no limit); a response body larger
     * than http_client_max_response_bytes fails (0 = no limit; also the
     * largest WebSocket message received); at most http_client_max_ws
     * outgoing WebSocket connections are open at once. */
    uint32_t http_client_timeout_ms;
    uint64_t http_client_max_response_bytes;
    uint32_t http_client_max_ws;
    /* http-server:distro:sys (docs/node.md).  Read by hc_node_new only. */
    const char *http_addr; /* listening address, "127.0.0.1" (this
                            * machine only) if NULL */
    /* The node password; NULL = the one whose hash <home>/http/password_hash
     * keeps (made at first boot when there is none: hc_node_first_password).
     * One given replaces the kept hash when it differs, which ends every
     * login made with the old password. */
    const char *http_password;
    uint32_t http_login_lifetime_s;  /* a login (its cookie) lasts this long;
                                      * 0 = the default, 30 days */
    uint64_t http_max_body;          /* request body bytes, else 413 */
    uint32_t http_max_header;        /* request line + header bytes, else 431 */
    uint32_t http_max_connections;   /* open connections; more are closed */
    uint32_t http_idle_timeout_s;    /* idle keep-alive connection closed */
    uint32_t http_request_timeout_s; /* a request not complete by then: 408 */
    uint32_t ws_max_connections;     /* open WebSockets */
    uint32_t ws_queue_max; /* frames waiting for one WebSocket client */
    /* The http-server's event loops, each a thread owning the connections
     * handed to it in turn (docs/architecture.md); 0 = one a CPU the node
     * may run on, at most 4 (1 when it serves no port); at most 16. */
    uint32_t http_loops;
    /* Defences (docs/security-http.md): request bodies held at once, all
     * connections together, else 503; open connections and WebSockets
     * from one peer address, else 503; the longest a client may ask the
     * server to wait for a process's answer (the
     * X-Hyperware-Http-Server-Timeout header, seconds); a WebSocket
     * silent for ws_ping_interval_s seconds gets a ping and is closed when
     * nothing comes in the next as many (0 = never). */
    uint64_t http_body_budget;
    uint32_t http_max_connections_per_addr;
    uint32_t ws_max_connections_per_addr;
    uint32_t http_server_timeout_max_s;
    uint32_t ws_ping_interval_s;
    /* Run the processes of packages each in an OS process of its own (a
     * worker, docs/worker-protocol.md): a crash ends that process alone.
     * On by default; a manifest entry with "in_process": true runs in the
     * node all the same.  Read by hc_node_load_package and installs. */
    bool isolate;
    /* The hyperc-worker executable; NULL = beside the running program, or
     * $HYPERC_WORKER, or where the build or the install put it.  Read by
     * hc_node_new only. */
    const char *worker_path;
    /* An isolated process that uses more than this much CPU time (ms) on
     * one message (between two receives) is stopped: its caller gets an
     * error and on-exit applies.  0 = no limit. */
    uint32_t cpu_ms_per_message;
    /* Limits the node sets on each worker as it starts (setrlimit's):
     * address space in bytes (RLIMIT_AS; not set in a sanitizer build,
     * whose shadow memory is terabytes of address space) and open
     * descriptors (RLIMIT_NOFILE).  0 = no limit of that kind.  Core
     * files are always off (RLIMIT_CORE 0). */
    uint64_t worker_max_memory;
    uint32_t worker_max_files;
    /* Networking (net:distro:sys, docs/node.md): the TCP and WebSocket
     * ports it listens on (0: any free port; -1: not offered; both -1:
     * networking off, every other node offline),
     * the address it listens on and announces (NULL: 127.0.0.1), and the
     * peers file, a JSON array of other nodes' entries (NULL: none; re-read
     * when it changes).  Read by hc_node_new only; the strings must live as
     * long as the node. */
    int net_port;
    int net_ws_port;
    /* This node's routers (comma-separated names; NULL: none): it is then
     * an indirect node, reached through them, and keeps a connection to
     * each (networking is on even without ports).  And how many
     * connections this node splices for others as a router at once (0:
     * it routes for no one). */
    const char *net_routers;
    uint32_t net_max_passthroughs;
    const char *net_addr;
    const char *net_peers;
} hc_node_config;

void hc_node_config_default(hc_node_config *cfg);

/* Create a node: creates the home directory, opens the log file and the state
 * database, registers the runtime modules.  Strings in cfg are copied.
 * Returns NULL with a message in err (size errlen) on failure. */
hc_node *hc_node_new(const hc_node_config *cfg, char *err, size_t errlen);

/* Register the processes of a package in Hyperware's layout (metadata.json,
 * pkg/manifest.json, the shared objects named by process_wasm_path) with the
 * capabilities the manifest asks and grants.  Processes wait for the run
 * signal (hc_node_start).  0, or -1 with a message in err. */
int hc_node_load_package(hc_node *n, const char *dir, char *err, size_t errlen);

/* Set the terminal level of a loaded process (pid is
 * "process:package:publisher"), before or after hc_node_start: 0..3, -1 to
 * follow the node's level, -100 to mute it (the level is not checked).  0, or
 * -1 when n has no such process.  Any thread. */
int hc_node_set_verbosity(hc_node *n, const char *pid, int level);

/* Start the runtime modules and the control socket, then run every
 * registered process.  0, or -1 with a message in err. */
int hc_node_start(hc_node *n, char *err, size_t errlen);

/* Wait until every process has started (a hyperprocess: bindings made and
 * init done; another: its first receive), or has stopped or is waiting to
 * restart, for at most timeout_ms.  0 when all have; else -1 with the ids
 * still starting in `pending` (comma-separated, cut to pendlen).  Blocks;
 * any thread but a process's own. */
int hc_node_wait_started(hc_node *n, int timeout_ms, char *pending,
                         size_t pendlen);

/* How many components the node is translating to native code now (their
 * first start: seconds each, cached after; docs/wasm-native.md), counting
 * those waiting for a CPU to be.  A process being translated has not
 * started.  Any thread. */
int hc_node_translating(hc_node *n);

/* What the node does on a clock rather than on a message: its host calls
 * it about once a second while the node runs (`hyperc run` does).  Now:
 * the count of the mailbox refusals whose lines were held back in a second
 * that has ended is logged then, not with the next refusal.  Any thread. */
void hc_node_tick(hc_node *n);

/* Stop every process and module, waiting at most shutdown_grace_s for
 * processes busy outside host calls; closes the control socket.  Blocks. */
void hc_node_shutdown(hc_node *n);

/* Release a node after hc_node_shutdown (or one never started).  When the
 * shutdown left threads still busy in guest code past its grace period,
 * nothing is released: such a thread may still reach the node, which then
 * lives until the program exits. */
void hc_node_free(hc_node *n);

/* The node's control socket path (for hc_inject and tests). */
const char *hc_node_control_path(const hc_node *n);

/* The node password when this boot made it (a first boot serving HTTP
 * without --password), for the one who started the node to see once on
 * the terminal (it is never written to the log); NULL otherwise.  Owned by
 * the node; valid after hc_node_start, until hc_node_free. */
const char *hc_node_first_password(const hc_node *n);

/* The networking key of the node whose home is `home` (created 0700 when
 * missing): loaded, or made as the node's first boot makes it, in
 * <home>/net/networking_key.pem (0600).  Its public key as 64 lowercase hex
 * digits into hex.  For tools that write peers files before nodes boot
 * (hyperc test).  0, or -1 with a sentence in err.  Any thread. */
int hc_node_net_key(const char *home, char hex[65], char *err, size_t errlen);

/* --------------------------------------------------- addresses */

/* Validate "node@process:package:publisher" as Hyperware does: exactly one
 * '@', non-empty node, three non-empty ':'-separated parts, hypermap-safe
 * names.  Returns 0 or a negative hcc error code whose name
 * (hc_err_name) says which rule failed. */
int hc_address_check(const char *addr);
/* The same for "process:package:publisher". */
int hc_process_id_check(const char *pid);
const char *hc_err_name(int err);
const char *hc_strerror(int err);

/* --------------------------------------------------- packages */

typedef struct hc_manifest_cap {
    char *process; /* "process:package:publisher" */
    char *params;  /* JSON text; "\"messaging\"" for plain string entries */
} hc_manifest_cap;

typedef struct hc_manifest_entry {
    char *process_name;
    char *process_wasm_path; /* here: the shared object, relative to pkg/ */
    int on_exit;             /* HW_ON_EXIT_* (Requests lists are parsed,
                              * kept as JSON in on_exit_requests) */
    char *on_exit_requests;  /* JSON array text for Requests, else NULL */
    bool request_networking;
    hc_manifest_cap *request_capabilities;
    size_t request_capabilities_len;
    hc_manifest_cap *grant_capabilities;
    size_t grant_capabilities_len;
    bool public_;
    bool in_process; /* "in_process": true: never isolated (trusted code) */
} hc_manifest_entry;

typedef struct hc_package {
    char *package_name;
    char *publisher;
    char *version;
    hc_manifest_entry *entries;
    size_t entries_len;
} hc_package;

/* Parse metadata.json text and pkg/manifest.json text into *out (caller owns
 * it: hc_package_fini).  Capability entries are a process id string
 * (messaging) or {"process": id, "params": JSON}.  0, or -1 with a message
 * naming the file, field and expected type. */
int hc_package_parse(const char *metadata_json, const char *manifest_json,
                     hc_package *out, char *err, size_t errlen);
void hc_package_fini(hc_package *p);

#ifdef __cplusplus
}
#endif

#endif
