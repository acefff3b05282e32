/* hyperc: the command line.  `run` boots a node with a package; `inject`
 * and `verbosity` talk to a running node through its control socket (`ps`
 * and `logs` are in inspect.c, `install` and `watch` in watch.c). */
#include "hyperc/node.h"

#include "../gen/gen_main.h"
#include "../node/control/frame.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *prog = "hyperc";

static void usage_main(FILE *f)
{
    fprintf(f, "usage: hyperc <command> [options]\n"
               "\n"
               "commands:\n"
               "  run PACKAGE_DIR...     boot a node running the packages "
               "(prints the URL)\n"
               "  inject PROCESS BODY    send a request to a process of a "
               "running node\n"
               "  verbosity [PROCESS] LEVEL  set terminal verbosity (0-3) of "
               "a running node\n"
               "  ps                     list the processes of a running node "
               "(--json for machines)\n"
               "  logs [PROCESS]         print (-f: follow) the node's log or "
               "a process's\n"
               "  gen FILE.c             generate code, WIT, stubs and the "
               "TypeScript client\n"
               "  new NAME               create a package that builds and "
               "passes its test\n"
               "  build [DIR]            build a package (CMake; --target "
               "wasm32: components)\n"
               "  package [DIR]          the zip a Hyperware node installs "
               "(wasm32)\n"
               "  test [DIR]             build a package and run its tests "
               "against nodes\n"
               "  watch [DIR]            rebuild and reinstall a package on "
               "a running node when a source changes\n"
               "  install PACKAGE_DIR    install (or reinstall) a package on "
               "a running node\n"
               "\n"
               "`hyperc <command> --help` describes each command.\n");
}

static void usage_run(FILE *f)
{
    fprintf(f,
            "usage: hyperc run [options] PACKAGE_DIR...\n"
            "\n"
            "Boot a node with the packages (Hyperware layout: metadata.json,\n"
            "pkg/manifest.json, pkg/<process>.so) and run until Ctrl-C.  A\n"
            "package's source folder (built by `hyperc build`) stands for\n"
            "the package its build made.  Prints the URL when serving HTTP.\n"
            "\n"
            "options:\n"
            "  --home DIR             home directory, kept (default "
            "./hyperc-home)\n"
            "  --tmp-home             a fresh temporary home, deleted when "
            "the node stops\n"
            "  --name NODE            node name (default local.os)\n"
            "  --in-process           run package processes as threads of "
            "the node (trusted code; a crash ends the node)\n"
            "  --isolate              each package process in an OS "
            "process of its own, a crash ends it alone (the default)\n"
            "  --cpu-limit-ms N       an isolated process using more CPU "
            "time on one message is stopped (default 30000; 0 = none)\n"
            "  --worker-max-memory BYTES  address space of an isolated "
            "process's worker (default 1073741824; 0 = none)\n"
            "  --worker-max-files N   open files of an isolated process's "
            "worker (default 64; 0 = none)\n"
            "  --port N               HTTP port of http-server:distro:sys "
            "(default: none, no HTTP server; 0 = none)\n"
            "  --http-addr ADDR       address or host name the HTTP server "
            "listens on (default 127.0.0.1: this machine only; 0.0.0.0 for "
            "every interface)\n"
            "  --net-port N           TCP port of net:distro:sys, node-to-node "
            "networking (0 = any free port; default: networking off)\n"
            "  --net-ws-port N        WebSocket port of net:distro:sys "
            "(0 = any free port; default: none)\n"
            "  --net-routers A,B      this node is indirect: other nodes "
            "reach it through these routers\n"
            "  --max-passthroughs N   connections this node routes for "
            "others at once (default 0: none)\n"
            "  --net-addr ADDR        address it listens on and announces "
            "(default 127.0.0.1)\n"
            "  --peers FILE           the other nodes: a JSON array of "
            "{name, public_key, ips, ports, routers} (re-read when it "
            "changes)\n"
            "  --password TEXT        set the node password for the login "
            "page (seen by `ps`: prefer the two below; default: the one set "
            "before, or made and shown at first boot)\n"
            "  --password-file PATH   set the node password to this file's "
            "first line\n"
            "  (env HYPERC_PASSWORD)  set the node password when neither "
            "flag is given\n"
            "  --login-lifetime S     seconds a login lasts (default "
            "2592000, 30 days)\n"
            "  --http-max-body BYTES  largest request body (default "
            "16777216; more: 413)\n"
            "  --http-max-header BYTES  largest request line + headers "
            "(default 65536; more: 431)\n"
            "  --http-max-connections N  open HTTP connections (default "
            "1024; more are closed)\n"
            "  --http-idle-timeout S  close an idle keep-alive connection "
            "(default 60)\n"
            "  --http-request-timeout S  a request not fully received in S "
            "seconds: 408 (default 30)\n"
            "  --ws-max-connections N  open WebSockets (default 128)\n"
            "  --ws-queue-max N       frames waiting for one WebSocket "
            "client before it is closed (default 100)\n"
            "  --http-body-budget BYTES  request body bytes held at once, "
            "all connections together (default 268435456; more: 503)\n"
            "  --http-loops N         the http-server's event loops, "
            "each a thread (default: one a CPU, at most 4; at most 16)\n"
            "  --http-max-connections-per-addr N  open connections from "
            "one peer address (default 128; more: 503)\n"
            "  --ws-max-connections-per-addr N  open WebSockets from one "
            "peer address (default 64; more: 503)\n"
            "  --http-server-timeout-max S  cap on the seconds a client's "
            "X-Hyperware-Http-Server-Timeout asks for (default 300)\n"
            "  --ws-ping-interval S   ping a WebSocket silent this long, "
            "close it if still silent as long again (default 30; 0 = "
            "never)\n"
            "  -v, --verbosity N      terminal verbosity 0-3 (default 0)\n"
            "  --process-verbosity JSON  per process, e.g. "
            "'{\"a:pkg:pub\":{\"U8\":2},\"b:pkg:pub\":\"Muted\"}'\n"
            "  --mailbox-max N        queued requests per process before "
            "refusing (default 1024)\n"
            "  --spin-us N            longest receive spins before parking, "
            "in microseconds (default 50; 0 = never spin)\n"
            "  --schedulers N         run in-process processes as fibers on "
            "N scheduler threads (default: the online CPUs; 0 = a thread "
            "each)\n"
            "  --restart-base-ms N    restart backoff base (default 1000)\n"
            "  --restart-max-ms N     restart backoff cap (default 600000)\n"
            "  --restart-give-up N    failures within the window before "
            "giving up (default 8)\n"
            "  --restart-window-ms N  give-up window (default 600000)\n"
            "  --max-log-size BYTES   rotate the log file at this size "
            "(default 16000000; 0 = never)\n"
            "  --number-log-files N   log files kept, current included "
            "(default 4)\n"
            "  --vfs-max-file-size BYTES  largest file vfs:distro:sys reads "
            "or writes (default 67108864; 0 = no limit)\n"
            "  --http-client-timeout-ms N  longest an outgoing HTTP request "
            "may take (default 60000; 0 = no limit)\n"
            "  --http-client-max-response BYTES  largest HTTP response body "
            "or WebSocket message http-client:distro:sys takes "
            "(default 67108864; 0 = no limit)\n"
            "  --http-client-max-ws N  outgoing WebSocket connections open "
            "at once (default 128)\n"
            "  -h, --help             this text\n");
}

static void usage_inject(FILE *f)
{
    fprintf(f,
            "usage: hyperc inject [options] PROCESS BODY\n"
            "\n"
            "Send BODY (text, as kit inject-message does) as a request to\n"
            "PROCESS (process:package:publisher) on a running node, from\n"
            "terminal:terminal:sys, and print the response body.\n"
            "\n"
            "options:\n"
            "  --home DIR       the node's home directory (default "
            "./hyperc-home)\n"
            "  -n, --node NODE  target node (default: the local node)\n"
            "  -t, --timeout S  expects_response in seconds (default 15)\n"
            "  -l, --non-block  fire and forget; print nothing\n"
            "  -b, --blob FILE  attach FILE's bytes as the blob\n"
            "  --mime TYPE      the blob's mime type\n"
            "  --json           print the whole reply as JSON\n"
            "  -h, --help       this text\n"
            "\n"
            "Exit status: 0 on a response; 3 on a response that is the\n"
            "framework's error reply ({\"HypercError\":{\"kind\":...}}: "
            "BadJson,\n"
            "UnknownVariant, Forbidden, BadArguments, HandlerFailed, Busy), "
            "still\n"
            "printed; 1 on timeout, offline or another failure to deliver; 2 "
            "on\n"
            "bad arguments.\n");
}

/* -------------------------------------------------------------- run */

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == 0 || *end != 0 || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A decimal byte count (digits only). */
static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *s < '0' || *s > '9' || *end != 0)
        return -1;
    *out = v;
    return 0;
}

static int apply_process_verbosity(hc_node *n, const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    if (!json_is_object(j)) {
        fprintf(stderr, "%s run: --process-verbosity must be a JSON object\n",
                prog);
        json_decref(j);
        return -1;
    }
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(j, k, v)
    {
        int level = -2;
        if (json_is_integer(v))
            level = (int)json_integer_value(v);
        else if (json_is_integer(json_object_get(v, "U8")))
            level = (int)json_integer_value(json_object_get(v, "U8"));
        else if (json_is_string(v) &&
                 strcmp(json_string_value(v), "Muted") == 0)
            level = -100;
        if (level == -2 || level > 3 ||
            hc_node_set_verbosity(n, k, level) != 0) {
            fprintf(stderr,
                    "%s run: --process-verbosity: bad entry for %s (expected "
                    "a loaded process and {\"U8\":0..3} or \"Muted\")\n",
                    prog, k);
            rc = -1;
        }
    }
    json_decref(j);
    return rc;
}

/* What `hyperc run` was asked for, and what it made on the way. */
typedef struct run_opts {
    hc_node_config cfg;
    const char *pverb; /* --process-verbosity JSON, or NULL */
    bool tmp_home;     /* --tmp-home */
    bool made_tmp;     /* tmp_dir made: removed at the end */
    char tmp_dir[sizeof "/tmp/hyperc-home-XXXXXX"];
    char **dirs; /* the PACKAGE_DIR arguments */
    int ndirs;
    char **pkgs;               /* the package folder each stands for (heap) */
    const char *password_file; /* --password-file */
    const char *password_from; /* what gave the password, NULL = none */
    char *password_buf;        /* from a file or the environment (heap) */
} run_opts;

enum run_option {
    RUN_HOME = 256,
    RUN_NAME,
    RUN_PORT,
    RUN_PVERB,
    RUN_MBOX,
    RUN_SPIN,
    RUN_RBASE,
    RUN_RMAX,
    RUN_RGIVE,
    RUN_RWIN,
    RUN_LOGSZ,
    RUN_LOGN,
    RUN_VFSMAX,
    RUN_HCTIME,
    RUN_HCMAX,
    RUN_HCWS,
    RUN_HADDR,
    RUN_PASSWORD,
    RUN_HBODY,
    RUN_HHDR,
    RUN_HCONNS,
    RUN_HIDLE,
    RUN_HREQ,
    RUN_WSMAX,
    RUN_WSQ,
    RUN_HBUDGET,
    RUN_HPERADDR,
    RUN_HLOOPS,
    RUN_WSPERADDR,
    RUN_HWAITMAX,
    RUN_WSPING,
    RUN_TMPHOME,
    RUN_ISOLATE,
    RUN_INPROC,
    RUN_CPUMS,
    RUN_WMEM,
    RUN_WFILES,
    RUN_NETPORT,
    RUN_NETWSPORT,
    RUN_NETROUTERS,
    RUN_MAXPASS,
    RUN_NETADDR,
    RUN_PEERS,
    RUN_PWFILE,
    RUN_LOGINLIFE,
    RUN_SCHED
};

static const struct option run_options[] = {
    {"home", required_argument, NULL, RUN_HOME},
    {"tmp-home", no_argument, NULL, RUN_TMPHOME},
    {"isolate", no_argument, NULL, RUN_ISOLATE},
    {"in-process", no_argument, NULL, RUN_INPROC},
    {"cpu-limit-ms", required_argument, NULL, RUN_CPUMS},
    {"worker-max-memory", required_argument, NULL, RUN_WMEM},
    {"worker-max-files", required_argument, NULL, RUN_WFILES},
    {"name", required_argument, NULL, RUN_NAME},
    {"port", required_argument, NULL, RUN_PORT},
    {"verbosity", required_argument, NULL, 'v'},
    {"process-verbosity", required_argument, NULL, RUN_PVERB},
    {"mailbox-max", required_argument, NULL, RUN_MBOX},
    {"spin-us", required_argument, NULL, RUN_SPIN},
    {"schedulers", required_argument, NULL, RUN_SCHED},
    {"restart-base-ms", required_argument, NULL, RUN_RBASE},
    {"restart-max-ms", required_argument, NULL, RUN_RMAX},
    {"restart-give-up", required_argument, NULL, RUN_RGIVE},
    {"restart-window-ms", required_argument, NULL, RUN_RWIN},
    {"max-log-size", required_argument, NULL, RUN_LOGSZ},
    {"number-log-files", required_argument, NULL, RUN_LOGN},
    {"vfs-max-file-size", required_argument, NULL, RUN_VFSMAX},
    {"http-client-timeout-ms", required_argument, NULL, RUN_HCTIME},
    {"http-client-max-response", required_argument, NULL, RUN_HCMAX},
    {"http-client-max-ws", required_argument, NULL, RUN_HCWS},
    {"http-addr", required_argument, NULL, RUN_HADDR},
    {"net-port", required_argument, NULL, RUN_NETPORT},
    {"net-ws-port", required_argument, NULL, RUN_NETWSPORT},
    {"net-routers", required_argument, NULL, RUN_NETROUTERS},
    {"max-passthroughs", required_argument, NULL, RUN_MAXPASS},
    {"net-addr", required_argument, NULL, RUN_NETADDR},
    {"peers", required_argument, NULL, RUN_PEERS},
    {"password", required_argument, NULL, RUN_PASSWORD},
    {"password-file", required_argument, NULL, RUN_PWFILE},
    {"login-lifetime", required_argument, NULL, RUN_LOGINLIFE},
    {"http-max-body", required_argument, NULL, RUN_HBODY},
    {"http-max-header", required_argument, NULL, RUN_HHDR},
    {"http-max-connections", required_argument, NULL, RUN_HCONNS},
    {"http-idle-timeout", required_argument, NULL, RUN_HIDLE},
    {"http-request-timeout", required_argument, NULL, RUN_HREQ},
    {"ws-max-connections", required_argument, NULL, RUN_WSMAX},
    {"ws-queue-max", required_argument, NULL, RUN_WSQ},
    {"http-body-budget", required_argument, NULL, RUN_HBUDGET},
    {"http-max-connections-per-addr", required_argument, NULL, RUN_HPERADDR},
    {"http-loops", required_argument, NULL, RUN_HLOOPS},
    {"ws-max-connections-per-addr", required_argument, NULL, RUN_WSPERADDR},
    {"http-server-timeout-max", required_argument, NULL, RUN_HWAITMAX},
    {"ws-ping-interval", required_argument, NULL, RUN_WSPING},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* Apply one option of `hyperc run` (c as getopt_long returns it, arg its
 * argument, spelled the word that held it): -1 to go on, else the exit
 * status (0 after --help; 2 on a bad value, said on stderr). */
static int run_set_option(run_opts *o, int c, const char *arg,
                          const char *spelled)
{
    hc_node_config *cfg = &o->cfg;
    uint32_t *target = NULL, u;
    switch (c) {
    case 'h': usage_run(stdout); return 0;
    case RUN_HOME: cfg->home = arg; return -1;
    case RUN_TMPHOME: o->tmp_home = true; return -1;
    case RUN_ISOLATE: cfg->isolate = true; return -1;
    case RUN_INPROC: cfg->isolate = false; return -1;
    case RUN_NAME: cfg->name = arg; return -1;
    case RUN_PVERB: o->pverb = arg; return -1;
    case RUN_NETADDR: cfg->net_addr = arg; return -1;
    case RUN_PEERS: cfg->net_peers = arg; return -1;
    case RUN_NETPORT:
        if (parse_u32(arg, &u) != 0 || u > 65535) {
            fprintf(stderr, "%s run: --net-port needs 0..65535\n", prog);
            return 2;
        }
        cfg->net_port = (int)u;
        return -1;
    case RUN_NETROUTERS: cfg->net_routers = arg; return -1;
    case RUN_MAXPASS:
        if (parse_u32(arg, &u) != 0 || u > 4096) {
            fprintf(stderr, "%s run: --max-passthroughs needs 0..4096\n", prog);
            return 2;
        }
        cfg->net_max_passthroughs = u;
        return -1;
    case RUN_NETWSPORT:
        if (parse_u32(arg, &u) != 0 || u > 65535) {
            fprintf(stderr, "%s run: --net-ws-port needs 0..65535\n", prog);
            return 2;
        }
        cfg->net_ws_port = (int)u;
        return -1;
    case RUN_PORT:
        if (parse_u32(arg, &u) != 0 || u > 65535) {
            fprintf(stderr, "%s run: --port needs 0..65535\n", prog);
            return 2;
        }
        cfg->http_port = (int)u;
        return -1;
    case 'v':
        if (parse_u32(arg, &u) != 0 || u > 3) {
            fprintf(stderr, "%s run: --verbosity needs 0..3\n", prog);
            return 2;
        }
        cfg->verbosity = (int)u;
        return -1;
    case RUN_MBOX: target = &cfg->mailbox_max; break;
    case RUN_SPIN: target = &cfg->spin_us; break;
    case RUN_SCHED:
        /* a scheduler thread per CPU is the point; 1024 is plenty */
        if (parse_u32(arg, &u) != 0 || u > 1024) {
            fprintf(stderr, "%s run: --schedulers needs 0..1024\n", prog);
            return 2;
        }
        cfg->schedulers = u;
        return -1;
    case RUN_CPUMS: target = &cfg->cpu_ms_per_message; break;
    case RUN_WFILES: target = &cfg->worker_max_files; break;
    case RUN_WMEM:
        if (parse_u64(arg, &cfg->worker_max_memory) != 0) {
            fprintf(stderr, "%s run: --worker-max-memory needs bytes\n", prog);
            return 2;
        }
        return -1;
    case RUN_RBASE: target = &cfg->restart_base_ms; break;
    case RUN_RMAX: target = &cfg->restart_max_ms; break;
    case RUN_RGIVE: target = &cfg->restart_give_up; break;
    case RUN_RWIN: target = &cfg->restart_window_ms; break;
    case RUN_LOGN: target = &cfg->log_files; break;
    case RUN_HCTIME: target = &cfg->http_client_timeout_ms; break;
    case RUN_HCWS: target = &cfg->http_client_max_ws; break;
    case RUN_HCMAX:
        if (parse_u32(arg, &u) != 0) {
            fprintf(stderr, "%s run: --http-client-max-response needs bytes\n",
                    prog);
            return 2;
        }
        cfg->http_client_max_response_bytes = u;
        return -1;
    case RUN_HADDR: cfg->http_addr = arg; return -1;
    case RUN_PASSWORD:
        cfg->http_password = arg;
        o->password_from = "--password";
        return -1;
    case RUN_PWFILE: o->password_file = arg; return -1;
    case RUN_LOGINLIFE:
        if (parse_u32(arg, &u) != 0 || u == 0) {
            fprintf(stderr,
                    "%s run: --login-lifetime needs seconds (1 or "
                    "more)\n",
                    prog);
            return 2;
        }
        cfg->http_login_lifetime_s = u;
        return -1;
    case RUN_HHDR: target = &cfg->http_max_header; break;
    case RUN_HCONNS: target = &cfg->http_max_connections; break;
    case RUN_HIDLE: target = &cfg->http_idle_timeout_s; break;
    case RUN_HREQ: target = &cfg->http_request_timeout_s; break;
    case RUN_WSMAX: target = &cfg->ws_max_connections; break;
    case RUN_WSQ: target = &cfg->ws_queue_max; break;
    case RUN_HPERADDR: target = &cfg->http_max_connections_per_addr; break;
    case RUN_HLOOPS:
        if (parse_u32(arg, &u) != 0 || u < 1 || u > 16) {
            fprintf(stderr,
                    "%s run: --http-loops needs a number from 1 to 16\n", prog);
            return 2;
        }
        cfg->http_loops = u;
        return -1;
    case RUN_WSPERADDR: target = &cfg->ws_max_connections_per_addr; break;
    case RUN_HWAITMAX: target = &cfg->http_server_timeout_max_s; break;
    case RUN_WSPING: target = &cfg->ws_ping_interval_s; break;
    case RUN_HBUDGET:
        if (parse_u64(arg, &cfg->http_body_budget) != 0) {
            fprintf(stderr, "%s run: --http-body-budget needs bytes\n", prog);
            return 2;
        }
        return -1;
    case RUN_HBODY:
        if (parse_u64(arg, &cfg->http_max_body) != 0) {
            fprintf(stderr, "%s run: --http-max-body needs bytes\n", prog);
            return 2;
        }
        return -1;
    case RUN_LOGSZ:
        if (parse_u32(arg, &u) != 0) {
            fprintf(stderr, "%s run: --max-log-size needs bytes\n", prog);
            return 2;
        }
        cfg->log_max_bytes = u;
        return -1;
    case RUN_VFSMAX:
        if (parse_u64(arg, &cfg->vfs_max_file_bytes) != 0) {
            fprintf(stderr, "%s run: --vfs-max-file-size needs bytes\n", prog);
            return 2;
        }
        return -1;
    default: usage_run(stderr); return 2;
    }
    if (parse_u32(arg, target) != 0) {
        fprintf(stderr, "%s run: %s needs a non-negative integer\n", prog,
                spelled);
        return 2;
    }
    return -1;
}

/* The node password from --password-file, else $HYPERC_PASSWORD (unless
 * --password gave one): -1 to go on, else the exit status (2, said on
 * stderr). */
static int run_password(run_opts *o)
{
    if (o->password_file && o->password_from) {
        fprintf(stderr,
                "%s run: give --password or --password-file, not both\n", prog);
        return 2;
    }
    if (o->password_file) {
        FILE *f = fopen(o->password_file, "r");
        char line[1024];
        bool got = f && fgets(line, sizeof line, f) != NULL;
        int e = errno;
        if (f)
            fclose(f);
        if (!got && f == NULL) {
            fprintf(stderr, "%s run: cannot read --password-file %s: %s\n",
                    prog, o->password_file, strerror(e));
            return 2;
        }
        size_t n = got ? strcspn(line, "\r\n") : 0;
        if (n == 0) {
            fprintf(stderr,
                    "%s run: --password-file %s: its first line is "
                    "empty\n",
                    prog, o->password_file);
            return 2;
        }
        line[n] = 0;
        o->password_buf = strdup(line);
        if (o->password_buf == NULL)
            return 1;
        o->cfg.http_password = o->password_buf;
        o->password_from = "--password-file";
    } else if (o->password_from == NULL) {
        const char *env = getenv("HYPERC_PASSWORD");
        if (env && *env) {
            o->password_buf = strdup(env);
            if (o->password_buf == NULL)
                return 1;
            o->cfg.http_password = o->password_buf;
            o->password_from = "HYPERC_PASSWORD";
        }
    }
    /* The password is the node's alone: the workers (package code) and
     * tools it starts inherit its environment, so it leaves it here. */
    unsetenv("HYPERC_PASSWORD");
    return -1;
}

/* Parse `hyperc run`'s command line into o: -1 to go on, else the exit
 * status (0 after --help; 2 on a usage error, said on stderr). */
static int run_parse_options(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof *o);
    hc_node_config_default(&o->cfg);
    int c;
    while ((c = getopt_long(argc, argv, "hv:", run_options, NULL)) != -1) {
        int rc = run_set_option(o, c, optarg, argv[optind - 1]);
        if (rc >= 0)
            return rc;
    }
    if (optind >= argc) {
        usage_run(stderr);
        return 2;
    }
    if (o->cfg.mailbox_max == 0) {
        fprintf(stderr, "%s run: --mailbox-max must be at least 1\n", prog);
        return 2;
    }
    o->dirs = argv + optind;
    o->ndirs = argc - optind;
    return run_password(o);
}

/* Block SIGINT and SIGTERM (into *stop): every thread of the node inherits
 * the mask, so only run_serve_until_signal's sigtimedwait takes them. */
static void block_stop_signals(sigset_t *stop)
{
    sigemptyset(stop);
    sigaddset(stop, SIGINT);
    sigaddset(stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
}

/* The package folder each PACKAGE_DIR stands for (o->pkgs).  0, or 1 (said
 * on stderr). */
static int run_resolve_packages(run_opts *o)
{
    o->pkgs = calloc((size_t)o->ndirs, sizeof *o->pkgs);
    if (o->pkgs == NULL)
        return 1;
    for (int i = 0; i < o->ndirs; i++)
        if ((o->pkgs[i] = hcl_package_resolve(o->dirs[i])) == NULL)
            return 1;
    return 0;
}

/* The node's home: a fresh temporary one with --tmp-home, else the one
 * asked for, as long as no node runs there (one node per home: its state
 * and log are the node's alone).  0, or 1 (said on stderr). */
static int run_prepare_home(run_opts *o)
{
    if (o->tmp_home) {
        strcpy(o->tmp_dir, "/tmp/hyperc-home-XXXXXX");
        if (mkdtemp(o->tmp_dir) == NULL) {
            fprintf(stderr, "%s run: cannot make a temporary home: %s\n", prog,
                    strerror(errno));
            return 1;
        }
        o->made_tmp = true;
        o->cfg.home = o->tmp_dir;
        return 0;
    }
    json_t *probe = json_pack("{ss}", "op", "ps");
    json_t *live = hcl_ctl_call(o->cfg.home, probe, true);
    json_decref(probe);
    if (live == NULL)
        return 0;
    json_decref(live);
    fprintf(stderr,
            "%s run: a node already runs with home %s (stop it, or "
            "give another --home; `hyperc install --home %s DIR` "
            "adds a package to it)\n",
            prog, o->cfg.home, o->cfg.home);
    return 1;
}

/* Create the node, load the packages, set the processes' verbosity and
 * start it.  0 when it runs, else the exit status (said on stderr); *out is
 * the node to free either way (NULL when none was made). */
static int run_boot(const run_opts *o, hc_node **out)
{
    char err[1024];
    hc_node *n = *out = hc_node_new(&o->cfg, err, sizeof err);
    if (n == NULL) {
        fprintf(stderr, "%s run: %s\n", prog, err);
        return 1;
    }
    for (int i = 0; i < o->ndirs; i++) {
        if (hc_node_load_package(n, o->pkgs[i], err, sizeof err) != 0) {
            fprintf(stderr, "%s run: %s\n", prog, err);
            return 1;
        }
    }
    if (o->pverb && apply_process_verbosity(n, o->pverb) != 0)
        return 2;
    if (hc_node_start(n, err, sizeof err) != 0) {
        fprintf(stderr, "%s run: %s\n", prog, err);
        hc_node_shutdown(n);
        return 1;
    }
    return 0;
}

/* Wait until the processes have started (bindings, init) — 10 s at most,
 * besides the time components take to be translated to native code at
 * their first start — then say the node is ready, and its URL when it
 * serves HTTP.  False, with nothing said, when a signal of `stop` came
 * meanwhile: the node is to stop. */
static bool run_announce_ready(const run_opts *o, hc_node *n,
                               const sigset_t *stop)
{
    char pending[512];
    const struct timespec now = {0, 0};
    int waited_ms = 0;
    bool told = false;
    while (hc_node_wait_started(n, 100, pending, sizeof pending) != 0) {
        if (sigtimedwait(stop, NULL, &now) >= 0)
            return false;
        if (hc_node_translating(n) > 0) {
            if (!told)
                fprintf(stderr,
                        "%s run: translating components to native code "
                        "(their first start: seconds each, cached after)\n",
                        prog);
            told = true;
            continue; /* bounded by the compiler, not by the guest */
        }
        if ((waited_ms += 100) >= 10000) {
            fprintf(stderr, "%s run: still starting after 10 s: %s\n", prog,
                    pending);
            break;
        }
    }
    printf("hyperc: node %s ready (control socket %s)\n", o->cfg.name,
           hc_node_control_path(n));
    if (o->cfg.http_port > 0) {
        /* localhost, unless the server listens on one address elsewhere */
        const char *a = o->cfg.http_addr;
        bool any = a == NULL || strcmp(a, "0.0.0.0") == 0 ||
                   strcmp(a, "::") == 0 || strcmp(a, "127.0.0.1") == 0 ||
                   strcmp(a, "::1") == 0;
        bool v6 = !any && strchr(a, ':') != NULL;
        char host[128];
        snprintf(host, sizeof host, "%s%s%s", v6 ? "[" : "",
                 any ? "localhost" : a, v6 ? "]" : "");
        printf("hyperc: serving http://%s:%d/ (home %s)\n", host,
               o->cfg.http_port, o->cfg.home);
        /* what to open, and how to log in */
        const char *pw = hc_node_first_password(n);
        if (pw)
            printf("hyperc: open http://%s:%d/ and log in with the node "
                   "password %s (made at this first boot, shown only now; "
                   "the node keeps only its hash)\n",
                   host, o->cfg.http_port, pw);
        else if (o->password_from == NULL)
            printf("hyperc: open http://%s:%d/ and log in with the node "
                   "password (set before; --password-file FILE or "
                   "HYPERC_PASSWORD sets a new one)\n",
                   host, o->cfg.http_port);
        else
            printf("hyperc: open http://%s:%d/ and log in with the password "
                   "given by %s\n",
                   host, o->cfg.http_port, o->password_from);
    }
    fflush(stdout);
    return true;
}

/* Serve until SIGINT or SIGTERM (blocked in *stop), then stop the node;
 * its clock's work (hc_node_tick) each second meanwhile. */
static void run_serve_until_signal(hc_node *n, const sigset_t *stop)
{
    const struct timespec second = {1, 0};
    while (sigtimedwait(stop, NULL, &second) < 0)
        hc_node_tick(n);
    hc_node_shutdown(n);
}

/* Free the package folders; remove the temporary home. */
static void run_cleanup(run_opts *o)
{
    for (int i = 0; o->pkgs && i < o->ndirs; i++)
        free(o->pkgs[i]);
    free(o->pkgs);
    o->pkgs = NULL;
    free(o->password_buf);
    o->password_buf = NULL;
    if (o->made_tmp) {
        char *rm[] = {"rm", "-rf", o->tmp_dir, NULL};
        pid_t pid = fork();
        if (pid == 0) {
            execvp(rm[0], rm);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
}

static int cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = run_parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    sigset_t stop;
    block_stop_signals(&stop);
    hc_node *n = NULL;
    rc = run_resolve_packages(&o);
    if (rc == 0)
        rc = run_prepare_home(&o);
    if (rc == 0)
        rc = run_boot(&o, &n);
    bool started = rc == 0;
    if (started) {
        if (run_announce_ready(&o, n, &stop))
            run_serve_until_signal(n, &stop);
        else
            hc_node_shutdown(n);
    }
    if (n)
        hc_node_free(n);
    run_cleanup(&o);
    if (started)
        printf("hyperc: node stopped\n");
    return rc;
}

/* ------------------------------------------------------- control client */

static int ctl_connect(const char *home, bool quiet)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int w = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/node.sock", home);
    if (w < 0 || (size_t)w >= sizeof sa.sun_path) {
        fprintf(stderr, "%s: home path too long\n", prog);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (!quiet)
            fprintf(
                stderr,
                "%s: no running node at %s (%s); start one with `hyperc run "
                "--home %s PACKAGE`\n",
                prog, sa.sun_path, strerror(errno), home);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

json_t *hcl_ctl_call(const char *home, json_t *req, bool quiet)
{
    int fd = ctl_connect(home, quiet);
    if (fd < 0)
        return NULL;
    char err[256];
    json_t *rep = NULL;
    const char *step = "the request is not sent";
    hcn_ctl_status st = hcn_ctl_write_frame(fd, req, err, sizeof err);
    if (st == HCN_CTL_OK) {
        step = "a bad reply from the node";
        st = hcn_ctl_read_frame(fd, &rep, err, sizeof err);
    }
    close(fd);
    if (st == HCN_CTL_CLOSED)
        fprintf(stderr, "%s: the node closed the connection\n", prog);
    else if (st == HCN_CTL_BAD)
        fprintf(stderr, "%s: %s: %s\n", prog, step, err);
    return rep;
}

static char *file_b64(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf == NULL)
        return NULL;
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, buf, (int)n);
    free(buf);
    return out;
}

/* The framework's error kind when a reply body is its error reply, the
 * shape the generated dispatcher writes (src/guest/runtime.c) and the node
 * writes for a full mailbox: {"HypercError":{"kind":"...","message":...}};
 * else NULL.  A heap string. */
static char *framework_error(const char *body)
{
    if (body == NULL || strncmp(body, "{\"HypercError\"", 14) != 0)
        return NULL;
    json_t *j = json_loads(body, 0, NULL);
    json_t *e = json_object_get(j, "HypercError");
    const char *kind = json_string_value(json_object_get(e, "kind"));
    char *out = json_object_size(j) == 1 && kind ? hcl_fmt("%s", kind) : NULL;
    json_decref(j);
    return out;
}

static int cmd_inject(int argc, char **argv)
{
    const char *home = "hyperc-home", *node = NULL, *blob = NULL, *mime = NULL;
    uint32_t timeout = 15;
    bool non_block = false, as_json = false;
    enum { O_HOME = 256, O_MIME, O_JSON };
    static const struct option opts[] = {
        {"home", required_argument, NULL, O_HOME},
        {"node", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"non-block", no_argument, NULL, 'l'},
        {"blob", required_argument, NULL, 'b'},
        {"mime", required_argument, NULL, O_MIME},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "hn:t:lb:", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage_inject(stdout); return 0;
        case O_HOME: home = optarg; break;
        case 'n': node = optarg; break;
        case 't':
            if (parse_u32(optarg, &timeout) != 0 || timeout == 0) {
                fprintf(stderr, "%s inject: --timeout needs seconds > 0\n",
                        prog);
                return 2;
            }
            break;
        case 'l': non_block = true; break;
        case 'b': blob = optarg; break;
        case O_MIME: mime = optarg; break;
        case O_JSON: as_json = true; break;
        default: usage_inject(stderr); return 2;
        }
    }
    if (argc - optind != 2) {
        usage_inject(stderr);
        return 2;
    }
    json_t *req = json_pack("{ssssss}", "op", "inject", "process", argv[optind],
                            "body", argv[optind + 1]);
    if (node)
        json_object_set_new(req, "node", json_string(node));
    json_object_set_new(req, "expects_response",
                        non_block ? json_null() : json_integer(timeout));
    if (blob) {
        char *b = file_b64(blob);
        if (b == NULL) {
            fprintf(stderr, "%s inject: cannot read %s\n", prog, blob);
            json_decref(req);
            return 2;
        }
        json_object_set_new(req, "blob_b64", json_string(b));
        free(b);
        if (mime)
            json_object_set_new(req, "mime", json_string(mime));
    }
    json_t *rep = hcl_ctl_call(home, req, false);
    json_decref(req);
    if (rep == NULL)
        return 1;
    int rc = json_is_true(json_object_get(rep, "ok")) ? 0 : 1;
    char *refused =
        rc == 0
            ? framework_error(json_string_value(json_object_get(rep, "body")))
            : NULL;
    if (refused) {
        fprintf(stderr,
                "%s inject: %s answered with the framework's error reply "
                "(%s); exit status 3\n",
                prog, argv[optind], refused);
        free(refused);
        rc = 3;
    }
    if (as_json) {
        char *s = json_dumps(rep, JSON_COMPACT);
        puts(s);
        free(s);
    } else if (rc == 1) {
        fprintf(stderr, "%s inject: %s\n", prog,
                json_string_value(json_object_get(rep, "error")));
    } else if (!non_block) {
        const char *body = json_string_value(json_object_get(rep, "body"));
        if (body)
            puts(body);
        else
            printf("(binary body, base64) %s\n",
                   json_string_value(json_object_get(rep, "body_b64")));
        json_t *b = json_object_get(rep, "blob");
        if (json_is_object(b)) {
            const char *t = json_string_value(json_object_get(b, "text"));
            if (t)
                printf("blob: %s\n", t);
            else
                printf("blob (base64): %s\n",
                       json_string_value(json_object_get(b, "b64")));
        }
    }
    json_decref(rep);
    return rc;
}

static void usage_verbosity(FILE *f)
{
    fprintf(f, "usage: hyperc verbosity [--home DIR] [PROCESS] LEVEL\n"
               "\n"
               "Set the terminal verbosity of the running node at DIR "
               "(default\n"
               "./hyperc-home), or of one process (-1: it follows the "
               "node's).  A\n"
               "printout shows when its level is at most this: 0 always "
               "(errors,\n"
               "crashes, a hyperprocess's warn and error lines), 1 notes (a "
               "hyperprocess's\n"
               "info lines, the node's reinstalls), 2 the runtime's own, 3 "
               "also every\n"
               "message the kernel routes and a hyperprocess's debug lines.  "
               "Levels\n"
               "0 to 2 always go to the node's log (`hyperc logs`), 3 while "
               "shown.\n");
}

static int cmd_verbosity(int argc, char **argv)
{
    const char *home = "hyperc-home";
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    /* LEVEL -1 (a process follows the node's) is no option: taken out
     * before getopt would read it as one */
    const char *lv = NULL;
    if (argc >= 2 && strcmp(argv[argc - 1], "-1") == 0 &&
        strcmp(argv[argc - 2], "--home") != 0)
        lv = argv[--argc];
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'H') {
            home = optarg;
        } else {
            usage_verbosity(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    int left = argc - optind + (lv != NULL);
    if (left < 1 || left > 2) {
        usage_verbosity(stderr);
        return 2;
    }
    if (lv == NULL)
        lv = argv[argc - 1];
    char *end;
    long level = strtol(lv, &end, 10);
    if (*lv == '\0' || *end != '\0' || level < (left == 2 ? -1 : 0) ||
        level > 3) {
        fprintf(stderr,
                "%s verbosity: LEVEL must be 0 to 3 (or -1 for a "
                "process to follow the node's), not '%s'\n",
                prog, lv);
        return 2;
    }
    json_t *req = json_pack("{sssi}", "op", "verbosity", "level", (int)level);
    if (left == 2)
        json_object_set_new(req, "process", json_string(argv[optind]));
    json_t *rep = hcl_ctl_call(home, req, false);
    json_decref(req);
    if (rep == NULL)
        return 1;
    int rc = json_is_true(json_object_get(rep, "ok")) ? 0 : 1;
    if (rc != 0)
        fprintf(stderr, "%s verbosity: %s\n", prog,
                json_string_value(json_object_get(rep, "error")));
    json_decref(rep);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage_main(stdout);
        return 0;
    }
    argc--;
    argv++;
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc, argv);
    if (strcmp(cmd, "inject") == 0)
        return cmd_inject(argc, argv);
    if (strcmp(cmd, "gen") == 0)
        return hcg_main(argc, argv);
    if (strcmp(cmd, "new") == 0)
        return hcl_cmd_new(argc, argv);
    if (strcmp(cmd, "build") == 0)
        return hcl_cmd_build(argc, argv);
    if (strcmp(cmd, "test") == 0)
        return hcl_cmd_test(argc, argv);
    if (strcmp(cmd, "watch") == 0)
        return hcl_cmd_watch(argc, argv);
    if (strcmp(cmd, "package") == 0)
        return hcl_cmd_package(argc, argv);
    if (strcmp(cmd, "install") == 0)
        return hcl_cmd_install(argc, argv);
    if (strcmp(cmd, "verbosity") == 0)
        return cmd_verbosity(argc, argv);
    if (strcmp(cmd, "ps") == 0)
        return hcl_cmd_ps(argc, argv);
    if (strcmp(cmd, "logs") == 0)
        return hcl_cmd_logs(argc, argv);
    fprintf(stderr, "%s: unknown command '%s'\n\n", prog, cmd);
    usage_main(stderr);
    return 2;
}
