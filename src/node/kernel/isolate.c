/* Isolated instances: a process's instance runs in a worker, an OS process
 * of its own (src/worker/), and its ABI calls come to the node over the
 * worker protocol (docs/worker-protocol.md).  The process's thread in the
 * node serves those calls with the same host table an in-process instance
 * gets (host.c), so every pairing rule stays the node's; only where the
 * guest's code runs differs.  While that thread would sleep, it lends the
 * worker to one node thread that serves every lent worker's rings (the
 * shared server, below).  A crash, exit() or protocol breach ends the
 * worker alone: the node logs how (symbolized), and proc.c applies
 * on-exit as for any end. */
#include "kernel_int.h"

#include "../../common/abi_types.h"
#include "../../worker/lane.h"
#include "../../worker/link.h"
#include "../../worker/proto.h"
#include "../../worker/slot.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <limits.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------- the executable */

static bool executable(const char *path)
{
    return path && access(path, X_OK) == 0;
}

/* `rel` in the folder of the running program (malloc'd), or NULL when
 * that folder is not known. */
static char *beside_self(const char *rel)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    return hcn_xasprintf("%s/%s", self, rel);
}

char *hcn_worker_find(const char *configured)
{
    if (configured)
        return executable(configured) ? hcn_xstrdup(configured) : NULL;
    const char *env = getenv("HYPERC_WORKER");
    if (env && *env)
        return executable(env) ? hcn_xstrdup(env) : NULL;
    /* beside the running hyperc (installed or in the build tree) */
    char *p = beside_self("hyperc-worker");
    if (p && executable(p))
        return p;
    free(p);
#ifdef HYPERC_WORKER_BUILD_PATH
    if (executable(HYPERC_WORKER_BUILD_PATH))
        return hcn_xstrdup(HYPERC_WORKER_BUILD_PATH);
#endif
#ifdef HYPERC_WORKER_INSTALL_PATH
    if (executable(HYPERC_WORKER_INSTALL_PATH))
        return hcn_xstrdup(HYPERC_WORKER_INSTALL_PATH);
#endif
    return NULL;
}

char *hcn_wasm_host_find(void)
{
    const char *env = getenv("HYPERC_WASM_HOST");
    if (env && *env)
        return access(env, R_OK) == 0 ? hcn_xstrdup(env) : NULL;
    /* an installed hyperc: <prefix>/bin/hyperc, <prefix>/share/hyperc/wasm */
    char *p = beside_self("../share/hyperc/wasm/host.mjs");
    if (p && access(p, R_OK) == 0)
        return p;
    free(p);
#ifdef HYPERC_WASM_HOST_BUILD_PATH
    if (access(HYPERC_WASM_HOST_BUILD_PATH, R_OK) == 0)
        return hcn_xstrdup(HYPERC_WASM_HOST_BUILD_PATH);
#endif
#ifdef HYPERC_WASM_HOST_INSTALL_PATH
    if (access(HYPERC_WASM_HOST_INSTALL_PATH, R_OK) == 0)
        return hcn_xstrdup(HYPERC_WASM_HOST_INSTALL_PATH);
#endif
    return NULL;
}

static bool is_wasm(const char *path)
{
    size_t n = strlen(path);
    return n > 5 && strcmp(path + n - 5, ".wasm") == 0;
}

/* How components run (HYPERC_WASM_RUNTIME; docs/wasm-native.md): as
 * native code translated by wasm2c, or in the wasm host under V8; by
 * default as native code when the translation can be made (wasm2c, a C
 * compiler and libhyperc_component.a are there), else in the wasm host. */
typedef enum {
    WASM_AS_AUTO,
    WASM_AS_NATIVE,
    WASM_AS_V8,
    WASM_AS_BAD,
} wasm_as;

static wasm_as wasm_runtime(void)
{
    const char *r = getenv("HYPERC_WASM_RUNTIME");
    if (r == NULL || *r == '\0')
        return WASM_AS_AUTO;
    if (strcmp(r, "native") == 0)
        return WASM_AS_NATIVE;
    if (strcmp(r, "v8") == 0)
        return WASM_AS_V8;
    return WASM_AS_BAD;
}

/* Translations under way in this node, at most one a CPU (each is a
 * compiler run over megabytes of C). */
static pthread_mutex_t translating_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t translating_cv = PTHREAD_COND_INITIALIZER;
static long translating;

static char *translate_run(hcn_proc *p, const char *node_js, const char *script,
                           char *why, size_t whylen, bool *stopped);

/* Whether the node has told process p to stop (its shutdown, or a
 * reinstall) while it is not running. */
static bool told_to_stop(hcn_proc *p)
{
    return hcn_mailbox_closed(&p->mb) || hcn_mailbox_stopping(&p->mb);
}

/* Translate process p's component (translate.mjs beside the wasm host
 * `host`, run with `node_js`; it keeps its result in the wasm cache) into
 * a shared object hyperc-worker loads: its path, malloc'd, or NULL with
 * the reason in why (translate.mjs's own sentence when it gave one), and
 * *stopped set when the node told p to stop meanwhile (the translation is
 * then killed, its process group with it).  Blocks the calling process's
 * thread for as long as the translation takes (seconds, the first time
 * for a component), and for a free CPU's turn. */
static char *translate_component(hcn_proc *p, const char *node_js,
                                 const char *host, char *why, size_t whylen,
                                 bool *stopped)
{
    char *dir = hcn_xstrdup(host);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/translate.mjs",
             slash != NULL ? dir : ".");
    free(dir);
    if (access(script, R_OK) != 0) {
        snprintf(why, whylen,
                 "cannot translate it to native code: no translate.mjs "
                 "beside the wasm host (%.200s)",
                 host);
        return NULL;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_mutex_lock(&translating_mu);
    while (translating >= (cpus > 0 ? cpus : 1)) {
        if (told_to_stop(p)) {
            pthread_mutex_unlock(&translating_mu);
            *stopped = true;
            snprintf(why, whylen, "stopped before its translation");
            return NULL;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&translating_cv, &translating_mu, &until);
    }
    translating++;
    pthread_mutex_unlock(&translating_mu);
    char *so = translate_run(p, node_js, script, why, whylen, stopped);
    pthread_mutex_lock(&translating_mu);
    translating--;
    pthread_cond_signal(&translating_cv);
    pthread_mutex_unlock(&translating_mu);
    return so;
}

/* How run_capture's child ended. */
typedef enum run_end {
    RUN_EXITED,  /* on its own: *st says how */
    RUN_LATE,    /* killed: it ran past its time */
    RUN_STOPPED, /* killed: stop(p) said so */
    RUN_FAILED,  /* it could not be started (errno-style code in *st) */
} run_end;

/* Run argv (argv[0] looked up on PATH) with stdin from /dev/null, its
 * stdout into out[0..olen) and its stderr into err[0..elen) (err NULL: to
 * /dev/null), each NUL-ended, more than fits read and dropped; both pipes
 * read to their end with poll, so neither can fill and stop the other's
 * writer.  `group`: in a process group of its own (the tools it starts
 * with it) and with no signal blocked; it (its group) is killed with
 * SIGKILL once `secs` have passed or when stop(p) (may be NULL) turns
 * true, looked at every 100 ms.  Blocks the calling thread until the child
 * is reaped; *st gets its wait status. */
static run_end run_capture(char *const argv[], bool group, char *out,
                           size_t olen, char *err, size_t elen, int secs,
                           bool (*stop)(hcn_proc *), hcn_proc *p, int *st)
{
    out[0] = '\0';
    if (err != NULL)
        err[0] = '\0';
    int fds[2][2] = {{-1, -1}, {-1, -1}};
    for (int i = 0; i < (err != NULL ? 2 : 1); i++)
        if (pipe2(fds[i], O_CLOEXEC) != 0) {
            *st = errno;
            if (i == 1) {
                close(fds[0][0]);
                close(fds[0][1]);
            }
            return RUN_FAILED;
        }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[0][1], 1);
    if (err != NULL)
        posix_spawn_file_actions_adddup2(&fa, fds[1][1], 2);
    else
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    /* nothing else of the node's (a library's descriptor without CLOEXEC) */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    if (group) {
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETPGROUP |
                                          POSIX_SPAWN_SETSIGMASK);
        posix_spawnattr_setpgroup(&sa, 0);
        posix_spawnattr_setsigmask(&sa, &none);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &sa, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&sa);
    struct pollfd pf[2] = {{fds[0][0], POLLIN, 0}, {fds[1][0], POLLIN, 0}};
    int npf = err != NULL ? 2 : 1;
    for (int i = 0; i < npf; i++)
        close(fds[i][1]);
    if (rc != 0) {
        for (int i = 0; i < npf; i++)
            close(fds[i][0]);
        *st = rc;
        return RUN_FAILED;
    }
    char *to[2] = {out, err};
    size_t cap[2] = {olen - 1, elen > 0 ? elen - 1 : 0}, got[2] = {0, 0};
    int open_fds = npf;
    run_end end = RUN_EXITED;
    int64_t deadline = hcn_now_ns() + secs * (int64_t)1000000000;
    pid_t target = group ? -pid : pid;
    while (open_fds > 0) {
        int pr = poll(pf, (nfds_t)npf, 100);
        int perr = errno;
        int64_t now = hcn_now_ns();
        if (end == RUN_EXITED) {
            if (stop != NULL && stop(p))
                end = RUN_STOPPED;
            else if (now > deadline)
                end = RUN_LATE;
            if (end != RUN_EXITED) {
                kill(target, SIGKILL);
                deadline = now + 1000000000;
            }
        } else if (now > deadline) {
            break; /* killed a second ago: a child of its holds a pipe */
        }
        if (pr < 0) {
            if (perr == EINTR)
                continue;
            if (end == RUN_EXITED) /* nothing more can be read: it ends now
                                      (its status says killed) */
                kill(target, SIGKILL);
            break;
        }
        for (int i = 0; i < npf; i++) {
            if (pf[i].fd < 0 || pf[i].revents == 0)
                continue;
            char buf[512];
            ssize_t r = read(pf[i].fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
                continue;
            }
            size_t take =
                (size_t)r < cap[i] - got[i] ? (size_t)r : cap[i] - got[i];
            memcpy(to[i] + got[i], buf, take);
            got[i] += take;
        }
    }
    for (int i = 0; i < npf; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    out[got[0]] = '\0';
    if (err != NULL)
        err[got[1]] = '\0';
    *st = 0;
    pid_t r;
    while ((r = waitpid(pid, st, 0)) < 0 && errno == EINTR)
        ;
    if (r != pid && end == RUN_EXITED)
        *st = -1; /* not a status WIFEXITED takes for a success */
    return end;
}

/* translate_component's run of translate.mjs, in a process group of its
 * own (wasm2c and the compiler are its children), killed when p is told
 * to stop. */
static char *translate_run(hcn_proc *p, const char *node_js, const char *script,
                           char *why, size_t whylen, bool *stopped)
{
    char *argv[] = {(char *)node_js, (char *)script, (char *)p->so_path, NULL};
    char o[PATH_MAX + 2], e[1024];
    int st;
    /* a bound for a tool that hangs: far beyond any translation seen */
    switch (run_capture(argv, true, o, sizeof o, e, sizeof e, 600, told_to_stop,
                        p, &st)) {
    case RUN_FAILED:
        snprintf(why, whylen, "cannot run %s: %s", node_js, strerror(st));
        return NULL;
    case RUN_LATE:
        snprintf(why, whylen,
                 "cannot translate it to native code: the translation took "
                 "more than 10 minutes (stopped)");
        return NULL;
    case RUN_STOPPED:
        *stopped = true;
        snprintf(why, whylen, "stopped while it was being translated");
        return NULL;
    case RUN_EXITED: break;
    }
    o[strcspn(o, "\n")] = '\0';
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || o[0] != '/') {
        /* translate.mjs's sentence: "hyperc translate: ..." */
        const char *say = strstr(e, "hyperc translate: ");
        say = say != NULL ? say + strlen("hyperc translate: ") : e;
        size_t n = strcspn(say, "\n");
        snprintf(why, whylen, "cannot translate it to native code: %.*s",
                 (int)n, n > 0 ? say : "translate.mjs failed");
        return NULL;
    }
    return hcn_xstrdup(o);
}

/* The first line of what argv[0] (looked up on PATH) prints on stdout,
 * into out; false when it cannot run, fails, or takes over 10 s (then it
 * is killed). */
static bool first_line_of(char *const argv[], char *out, size_t len)
{
    int st;
    run_end end =
        run_capture(argv, false, out, len, NULL, 0, 10, NULL, NULL, &st);
    out[strcspn(out, "\n")] = '\0';
    return end == RUN_EXITED && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* sha256 of the file at path into ctx; false when it cannot be read. */
static bool digest_file(EVP_MD_CTX *ctx, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[65536];
    ssize_t r;
    bool ok = true;
    while ((r = read(fd, buf, sizeof buf)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || EVP_DigestUpdate(ctx, buf, (size_t)r) != 1) {
            ok = false;
            break;
        }
    }
    close(fd);
    return ok;
}

/* ctx's digest as 64 hex digits into hex[65]. */
static bool digest_hex(EVP_MD_CTX *ctx, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdl) != 1 || mdl != 32)
        return false;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return true;
}

/* What a translation's cache key holds besides the component, as
 * translate.mjs makes it, computed once a node process (under key_mu):
 * the library's sha256 (hex) and the tools' versions ("<wasm2c
 * --version>\n<the first line of $CC --version>"); ok false when any
 * cannot be had. */
static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool done, ok;
    char lib_sha[65];
    char tools[400];
    char why[PATH_MAX + 100]; /* when not ok: what is missing */
} key_parts;

/* key_parts for the library beside the wasm host at `host` (the same for
 * every process of a node).  Under key_mu. */
static void key_parts_make(const char *host)
{
    char *dir = hcn_xstrdup(host);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    char *lib =
        hcn_xasprintf("%s/libhyperc_component.a", slash != NULL ? dir : ".");
    free(dir);
    key_parts.done = true;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              digest_file(ctx, lib) && digest_hex(ctx, key_parts.lib_sha);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        snprintf(key_parts.why, sizeof key_parts.why,
                 "cannot translate it to native code: cannot read %s (built "
                 "when wabt's wasm2c is there: scripts/setup.sh)",
                 lib);
    free(lib);
    if (!ok)
        return;
    char wabt[64], ccv[256];
    const char *cc = getenv("CC");
    cc = cc != NULL && *cc ? cc : "cc";
    char *wargv[] = {(char *)"wasm2c", (char *)"--version", NULL};
    char *cargv[] = {(char *)cc, (char *)"--version", NULL};
    if (!first_line_of(wargv, wabt, sizeof wabt)) {
        snprintf(key_parts.why, sizeof key_parts.why,
                 "cannot translate it to native code: wasm2c --version "
                 "failed (Debian: wabt)");
        return;
    }
    if (!first_line_of(cargv, ccv, sizeof ccv)) {
        snprintf(key_parts.why, sizeof key_parts.why,
                 "cannot translate it to native code: %.200s --version "
                 "failed (a C compiler: $CC, else cc)",
                 cc);
        return;
    }
    snprintf(key_parts.tools, sizeof key_parts.tools, "%s\n%s", wabt, ccv);
    key_parts.ok = true;
}

/* Whether path is as load.mjs's privateDir makes a directory of the cache
 * (or, with dir false, a file in it): not a symbolic link, this user's,
 * and (a directory) neither group nor others may write it. */
static bool cache_private(const char *path, bool dir)
{
    struct stat st;
    /* (a file's own mode is the compiler's, from the umask: the private
     * directories above it are what keeps others out) */
    return lstat(path, &st) == 0 &&
           (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) &&
           st.st_uid == getuid() && (!dir || (st.st_mode & 022) == 0);
}

/* The root of the wasm cache as load.mjs's cacheRoot finds it, when it is
 * there and private (cache_private); else false (translate.mjs then says
 * why, or makes it). */
static bool cache_root(char *out, size_t len)
{
    const char *c = getenv("HYPERC_WASM_CACHE");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    const char *tmp = getenv("TMPDIR");
    if (c != NULL && *c)
        snprintf(out, len, "%s", c);
    else if (xdg != NULL && xdg[0] == '/')
        snprintf(out, len, "%s/hyperc/wasm", xdg);
    else if (home != NULL && home[0] == '/')
        snprintf(out, len, "%s/.cache/hyperc/wasm", home);
    else
        snprintf(out, len, "%s/hyperc-wasm-cache-%u",
                 tmp != NULL && *tmp ? tmp : "/tmp", (unsigned)getuid());
    return cache_private(out, true);
}

/* The shared object a translation of component `wasm` left in the cache
 * (its key as translate.mjs's: the component's bytes, the library's sha256
 * and the tools' versions), malloc'd, or NULL when there is none: then
 * translate.mjs makes it, unless *cannot is set: the library or a tool is
 * missing, which why says (no translation can be made in this node
 * process).  Spares a start Node.js's and jco's start (about 150 ms); the
 * first call in a node process runs wasm2c and the compiler for their
 * versions. */
static char *cached_translation(const char *host, const char *wasm, char *why,
                                size_t whylen, bool *cannot)
{
    pthread_mutex_lock(&key_mu);
    if (!key_parts.done)
        key_parts_make(host);
    bool have = key_parts.ok;
    if (!have)
        snprintf(why, whylen, "%.390s", key_parts.why);
    pthread_mutex_unlock(&key_mu);
    *cannot = !have;
    char root[PATH_MAX];
    if (!have || !cache_root(root, sizeof root))
        return NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char key[65];
    bool ok =
        ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        digest_file(ctx, wasm) &&
        EVP_DigestUpdate(ctx, key_parts.lib_sha, 64) == 1 &&
        EVP_DigestUpdate(ctx, key_parts.tools, strlen(key_parts.tools)) == 1 &&
        digest_hex(ctx, key);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return NULL;
    /* each level private, as translate.mjs makes them: nobody else can
     * have put the shared object there */
    char *fmt = hcn_xasprintf("%s/native-v2", root);
    char *dir = hcn_xasprintf("%s/%s", fmt, key);
    char *so = hcn_xasprintf("%s/component.so", dir);
    bool there = cache_private(fmt, true) && cache_private(dir, true) &&
                 cache_private(so, false) && access(so, R_OK) == 0;
    free(fmt);
    free(dir);
    if (there)
        return so;
    free(so);
    return NULL;
}

/* Whether the wasm host at `host` can take a shared-memory link: its addon
 * (src/wasm/link_addon.c) is beside it, and HYPERC_WASM_LINK does not ask
 * for the socket. */
static bool wasm_host_maps(const char *host)
{
    const char *want = getenv("HYPERC_WASM_LINK");
    if (want && strcmp(want, "socket") == 0)
        return false;
    const char *slash = strrchr(host, '/');
    size_t dir = slash ? (size_t)(slash - host + 1) : 0;
    char path[PATH_MAX];
    if (dir + sizeof "hyperc_link.node" > sizeof path)
        return false;
    memcpy(path, host, dir);
    memcpy(path + dir, "hyperc_link.node", sizeof "hyperc_link.node");
    return access(path, R_OK) == 0;
}

/* READY [u32 version, [str feature...]] (protocol version 5): the version
 * HELLO named, and the optional features the worker offers, each a short
 * name; none is defined yet, so any is accepted and none is used
 * (docs/lane-design.md plans "lanes").  false with a sentence in why. */
static bool ready_ok(hcw_in *in, bool *lanes, char *why, size_t whylen)
{
    *lanes = false;
    uint64_t version = 0;
    char **feat = NULL;
    size_t nfeat = 0;
    bool ok = in->nargs == 2 && hcw_get_u64(in, &version) &&
              hcw_get_strs(in, &feat, &nfeat);
    if (!ok)
        snprintf(why, whylen, "READY wants [version, [feature...]]");
    else if (version != HCW_PROTO_VERSION) {
        ok = false;
        snprintf(why, whylen, "protocol version %llu, not %d",
                 (unsigned long long)version, HCW_PROTO_VERSION);
    } else if (nfeat > HCW_MAX_FEATURES) {
        ok = false;
        snprintf(why, whylen, "%zu features, at most %d", nfeat,
                 HCW_MAX_FEATURES);
    }
    for (size_t i = 0; i < nfeat; i++) {
        if (ok &&
            (feat[i][0] == '\0' || strlen(feat[i]) > HCW_MAX_FEATURE_LEN)) {
            ok = false;
            snprintf(why, whylen, "a feature name empty or over %d bytes",
                     HCW_MAX_FEATURE_LEN);
        }
        if (strcmp(feat[i], HCW_FEATURE_LANES) == 0)
            *lanes = true;
        free(feat[i]);
    }
    free(feat);
    return ok;
}

/* Start the worker with `fd` as its fd 3 and, unless they are -1,
 * `lane_fd` as its fd 4 and `slot_fd` (above 5; only with a lane_fd) as
 * its fd 5 (and no other descriptor past them), in a process group of its
 * own (the terminal's Ctrl-C is the node's), every signal at its default
 * and none blocked.  Its pid, or -1 with errno. */
static pid_t spawn_worker(char *const argv[], int fd, int lane_fd, int slot_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 3);
    if (lane_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, lane_fd, 4);
    if (slot_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, slot_fd, HCW_SLOT_FD);
    /* Nothing else of the node's: a library may open descriptors without
     * CLOEXEC (libcurl's wake-up socketpair does). */
    posix_spawn_file_actions_addclosefrom_np(&fa, slot_fd >= 0 ? HCW_SLOT_FD + 1
                                                  : lane_fd >= 0 ? 5
                                                                 : 4);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

/* A state slot for p's next worker from the store (hcn_store.slot_open),
 * on a descriptor above HCW_SLOT_FD (the caller closes it), with the
 * node's own mapping in *map; -1 when there is none (the worker saves by
 * message). */
static int slot_open(hcn_proc *p, uint8_t **map)
{
    hcn_store *st = &p->node->store;
    *map = NULL;
    int fd = st->slot_open != NULL ? st->slot_open(st->ctx, p->id) : -1;
    if (fd < 0)
        return -1;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, HCW_SLOT_FD + 1);
    close(fd);
    if (hi >= 0 && (*map = hcw_slot_map(hi)) != NULL)
        return hi;
    hcn_logf(p->node, 0,
             "%s: cannot map its state slot: %s; it saves by "
             "message",
             p->id, strerror(errno));
    if (hi >= 0)
        close(hi);
    if (st->slot_close != NULL)
        st->slot_close(st->ctx, p->id);
    return -1;
}

/* p's worker has ended (or never started): its slot's newer value goes
 * into the store, and the slot away. */
static void slot_close(hcn_proc *p, uint8_t *map)
{
    if (map == NULL)
        return;
    hcw_slot_unmap(map);
    hcn_store *st = &p->node->store;
    if (st->slot_close != NULL)
        st->slot_close(st->ctx, p->id);
}

/* The socket on which the node will hand a native worker its lanes
 * (docs/lane-design.md): sv[0] the node's end, sv[1] the worker's fd 4.
 * SOCK_SEQPACKET; the node's end is shut for reading, which makes the
 * worker's sends fail (EPIPE), so a worker cannot queue anything in the
 * node.  The worker's end is kept above 4, which spawn_worker's dup2 onto
 * 3 would otherwise clobber.  0, or -1 with errno. */
static int lane_socket(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    if (sv[1] < 5) {
        int hi = fcntl(sv[1], F_DUPFD_CLOEXEC, 5);
        close(sv[1]);
        sv[1] = hi;
    }
    if (sv[1] < 0 || shutdown(sv[0], SHUT_RD) != 0) {
        int e = errno;
        close(sv[0]);
        if (sv[1] >= 0)
            close(sv[1]);
        errno = e;
        return -1;
    }
    return 0;
}

/* The address-space limit of a worker (hc_node_config's
 * worker_max_memory; 0: none).  None for a wasm host or a translated
 * component, whose memories reserve address space far beyond what they use
 * (guard regions; the component's memory has its own bound), and none in a
 * sanitizer build: ASan's shadow memory is terabytes of it (and RLIMIT_DATA
 * counts that shadow too). */
static uint64_t worker_max_as(const hc_node_config *c, bool wasm)
{
#ifdef HYPERC_SANITIZED
    (void)c;
    (void)wasm;
    return 0;
#else
    return wasm ? 0 : c->worker_max_memory;
#endif
}

/* Set a wasm host's limits (hc_node_config's worker_max_files; no core
 * files) before it is told what to load; a refusal is logged.
 * (hyperc-worker sets its own from its command line, spawn's `--limits`,
 * before it loads anything.) */
static void limit_wasm_host(hcn_proc *p, pid_t pid)
{
    char why[96];
    if (hcw_limits_set(pid, p->node->cfg.worker_max_files, 0, why,
                       sizeof why) != 0)
        hcn_logf(p->node, 0, "%s: its wasm host: %s", p->id, why);
}

/* ----------------------------------------------------------- serving */

/* One worker's life, seen from the process's thread. */
typedef struct wctx {
    hcn_host *h;
    hcn_proc *p;
    hcw_link *link;
    pid_t pid;
    hcw_frame *out;
    hcw_in in;
    bool done;       /* DONE came: the entry returned */
    int64_t done_rc; /* its value */
    bool told;       /* CRASH or EXIT came */
    int told_op;
    hcw_crash crash;
    char *binary;     /* a component's translation (else the process's
                       * binary is p->so_path) */
    char *trap;       /* TRAP: the wasm host's message */
    char *trap_stack; /* and its stack */
    char why[256];    /* a protocol breach, said once */
    bool has_cpu_clock;
    clockid_t cpu_clock;    /* the worker's CPU time */
    int64_t cpu_at_receive; /* CPU ms used at the first check of the
                               current message; -1 before it */
    int64_t next_check;     /* monotonic ns of the next checks */
    bool over_cpu;          /* stopped for using too much CPU */
    bool stop;              /* the mailbox closed: the process is to stop */
    bool gone;              /* the worker has exited */
    bool receiving;         /* the guest has called receive: messages may
                               be delivered ahead */
    int *held;              /* held[i]: the host's handle for the worker's
                               handle i + 1 (0: held, but nothing was
                               prompting); -1: not held */
    size_t nheld;
    /* Parking (a shared-memory link only): a RECEIVE that found nothing
     * leaves the process "parked" and its thread waits for the worker's
     * next frame, not for the mailbox; whoever pushes a message into the
     * mailbox meanwhile answers the RECEIVE in its place (hand_over).
     * serve_mu: who serves the worker (its host, w->out, the replies
     * ring); the process's thread holds it but while parked. */
    bool can_park;
    pthread_mutex_t serve_mu;
    _Atomic bool parked;  /* a RECEIVE waits for a message */
    _Atomic bool recheck; /* a hand-over found serve_mu taken */
    bool reply_pending;   /* w->out holds an answer to send (it did not fit
                             in the ring at once) */
    bool hand_failed;     /* a hand-over found the replies ring broken */
    /* Lending to the shared server (a shared-memory link, no hand-over):
     * while the guest works through messages delivered ahead, the
     * process's thread sleeps and one node thread serves the rings of
     * every such worker (server_main).  lent: the server may serve it
     * (under serve_mu); back: the server gave it back; have_frame: w->in
     * holds a frame the server read and left to this thread; srv_failed:
     * the server found a breach (why). */
    bool lendable;
    bool lent;
    _Atomic uint32_t back;
    bool have_frame;
    bool srv_failed;
    /* srv_recv: the server took a RECEIVE that found nothing and answers
     * it when a message comes (the mailbox's notify wakes it), as a parked
     * one (above) is; srv_deadline: the host's next timeout then.
     * recv_now: given back owing that RECEIVE (the process is stopping):
     * the process's thread serves it. */
    bool srv_recv;
    int64_t srv_deadline;
    bool recv_now;
    _Atomic bool lent_a; /* lent, for the notify function */
    uint32_t srv_streak; /* frames the server served without a pause */
    /* the node's end of the worker's fd 4 (send-only), or -1 (a wasm
     * host) */
    int lane_sock;
    uint8_t *slot; /* the worker's state slot, the node's mapping (slot.h),
                      or NULL */
    /* lanes: the worker takes them (READY) and the node opens them; the
     * instance they are of; the frame of their control entries */
    bool lanes;
    int inst;
    hcw_frame *ctl;
    /* NEED was sent (a lane worker, which sends RECEIVE only when it takes
     * an item): the next item waits for a RECEIVE; down at each RECEIVE */
    bool need_sent;
    uint32_t served;     /* frames served since READY (a lane worker's) */
    uint32_t taken_seen; /* the link's `taken` at the last CPU check */
    /* FORGETs that did not fit in the replies ring when their contexts
     * were filed (forget), oldest first: written before anything else
     * that can wait goes, and `served` is not published while any waits */
    uint64_t *forget;
    size_t nforget, forget_cap;
} wctx;

static int forget_flush(wctx *w, bool may_wait);

/* A frame of a lane worker's is served, its effects done: say so in the
 * link's header (the worker switches to a lane only once all it sent has
 * been, docs/lane-design.md §3a; and a FORGET the frame caused is in the
 * replies ring before the word moves past it: a worker reads what came
 * before it gives the guest a lane context's timeout). */
static void served(wctx *w)
{
    if (!w->lanes)
        return;
    w->served++;
    if (w->nforget)
        forget_flush(w, false); /* (a broken ring: the next write finds it) */
    if (w->nforget == 0)
        hcw_link_set_served(w->link, w->served);
}

/* Put the host's current blob (after a message came) as `blob | nil`,
 * borrowing its bytes. */
/* Put a message's blob as `blob | nil`, borrowing its bytes. */
static void put_msg_blob(hcw_frame *f, const hcn_blob *b)
{
    if (b == NULL) {
        hcw_put_nil(f);
        return;
    }
    hw_blob view = {.mime = b->mime,
                    .bytes = {.ptr = (uint8_t *)b->bytes, .len = b->len}};
    hcw_put_blob_opt(f, &view);
}

/* Put the host's current blob (after a message came) as `blob | nil`. */
static void put_current_blob(wctx *w, hcw_frame *f)
{
    put_msg_blob(f, w->h->last_blobbed ? w->h->last_blob : NULL);
}

/* To a lane worker, what DELIVER and RECEIVE's REPLY carry after the
 * blob (docs/lane-design.md §3a and §10, step 5): the item's number in the
 * mailbox, its flags and the id of an ANSWER (else 0). */
static void put_item_tail(wctx *w, hcw_frame *f)
{
    hcw_put_u64(f, hcn_host_taken_seq(w->h));
    hcw_put_u64(f, hcn_host_taken_flags(w->h));
    hcw_put_u64(f, hcn_host_taken_answer(w->h));
}

/* Write the REPLY to a RECEIVE into w->out: the message `r` came (a new
 * CPU budget from now), then its blob or nil; r is released. */
static void put_receive_reply(wctx *w, hw_receive_result *r)
{
    w->cpu_at_receive = -1; /* a new message: a new budget */
    hcw_frame_begin(w->out, HCW_REPLY, w->lanes ? 5 : 2);
    hcw_put_receive_result(w->out, r);
    if (r->is_err)
        hcw_put_nil(w->out);
    else
        put_current_blob(w, w->out);
    if (w->lanes)
        put_item_tail(w, w->out);
    hw_receive_result_fini(r);
}

/* A RECEIVE found nothing: the guest waits (for `hyperc ps`: not busy),
 * and the server answers it when a message comes. */
static void hold_receive(wctx *w)
{
    atomic_store_explicit(&w->p->busy_since, 0, memory_order_relaxed);
    w->srv_deadline = hcn_host_next_deadline(w->h);
}

/* The worker's CPU time so far (user + system) in ms, -1 if unknown. */
static int64_t cpu_ms(wctx *w)
{
    struct timespec ts;
    if (!w->has_cpu_clock || clock_gettime(w->cpu_clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether the guest has used more CPU on its current message than the
 * node allows.  The clock is read at the checks only, never per message:
 * the first check of a message (at most HCW_LINK_CHECK_MS after it came)
 * takes the reading the budget counts from, so a handler may overrun the
 * limit by up to two check periods before it is stopped. */
static bool over_cpu_limit(wctx *w)
{
    uint32_t limit = w->p->node->cfg.cpu_ms_per_message;
    if (limit == 0)
        return false;
    int64_t used = cpu_ms(w);
    if (used < 0)
        return false;
    if (w->lanes) {
        /* messages by lane: the node sees them only in this count (the
         * worker's say, as it may reset its budget by messaging itself) */
        uint32_t taken = hcw_link_taken(w->link);
        if (taken != w->taken_seen) {
            w->taken_seen = taken;
            w->cpu_at_receive = -1;
        }
    }
    if (w->cpu_at_receive < 0) {
        w->cpu_at_receive = used;
        return false;
    }
    return used - w->cpu_at_receive > (int64_t)limit;
}

/* The periodic checks while serving or waiting for the worker: the CPU
 * limit, the mailbox (a node that shuts down must not wait on a guest
 * busy in a loop), and whether the worker still lives.  false: stop
 * serving (w says why). */
static bool still_serving(wctx *w)
{
    w->next_check = hcn_now_ns() + HCW_LINK_CHECK_MS * 1000000LL;
    if (over_cpu_limit(w)) {
        w->over_cpu = true;
        return false;
    }
    hcn_mailbox *mb = &w->p->mb;
    pthread_mutex_lock(&mb->mu);
    bool closed = mb->closed;
    pthread_mutex_unlock(&mb->mu);
    if (closed) {
        w->stop = true;
        return false;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid != 0) {
        w->gone = true;
        return false;
    }
    return true;
}

static bool watch(void *ctx)
{
    return still_serving(ctx);
}

static int reply(wctx *w)
{
    /* a FORGET the call caused goes first (SEND_AND_AWAIT's: the worker
     * reads it before the REPLY) */
    if (w->nforget && forget_flush(w, true) != 0)
        return -1;
    return hcw_link_send(w->link, w->out);
}

#define BREACH(w, ...)                                                         \
    do {                                                                       \
        snprintf((w)->why, sizeof(w)->why, __VA_ARGS__);                       \
        return -1;                                                             \
    } while (0)

/* Write the FORGETs that wait, in order: each only if it fits in the
 * ring at once, or (may_wait: a thread that may wait for the worker)
 * waiting for room; then `served` is published if none is left.  0, or -1
 * a broken ring (why). */
static int forget_flush(wctx *w, bool may_wait)
{
    size_t k = 0;
    int rc = 1;
    while (k < w->nforget) {
        hcw_frame_begin(w->ctl, HCW_FORGET, 1);
        hcw_put_u64(w->ctl, w->forget[k]);
        rc = may_wait ? (hcw_link_send(w->link, w->ctl) == 0 ? 1 : -1)
                      : hcw_link_try_send(w->link, w->ctl);
        if (rc != 1)
            break;
        k++;
    }
    w->nforget -= k;
    memmove(w->forget, w->forget + k, w->nforget * sizeof *w->forget);
    if (k && w->nforget == 0)
        hcw_link_set_served(w->link, w->served);
    if (rc < 0)
        BREACH(w, "its replies ring is broken (%s)", strerror(errno));
    return 0;
}

/* The host filed a context under an inherited lane id (host.c,
 * forget_lane_id): tell the worker, on the thread serving it, now if the
 * frame fits (it is small: it nearly always does), else as soon as it
 * does (forget_flush), `served` held back meanwhile. */
static void forget(void *ctx, uint64_t id)
{
    wctx *w = ctx;
    if (w->nforget == w->forget_cap) {
        w->forget_cap = w->forget_cap ? 2 * w->forget_cap : 4;
        w->forget = hcn_xrealloc(w->forget, w->forget_cap * sizeof *w->forget);
    }
    w->forget[w->nforget++] = id;
    forget_flush(w, false); /* (a broken ring: the next write finds it) */
}

/* Serve one call (w->in); 0, or -1 when the worker broke the protocol
 * (w->why says how) or the socket failed. */
/* TRAP's arguments into w (told); false if they are not [str, str]. */
static bool get_trap(wctx *w, hcw_in *in)
{
    char *msg = NULL, *stack = NULL;
    if (!hcw_get_str(in, &msg) || !hcw_get_str(in, &stack) || msg == NULL) {
        free(msg);
        free(stack);
        return false;
    }
    w->trap = msg;
    w->trap_stack = stack;
    w->told = true;
    w->told_op = HCW_TRAP;
    return true;
}

/* The innermost wasm frame of a V8 stack ("    at name (wasm://wasm/...)"),
 * as "name (wasm-function[i]:0x...)" in out; "?" when there is none. */
static void trap_where(const char *stack, char *out, size_t len)
{
    snprintf(out, len, "?");
    for (const char *l = stack; l && *l;) {
        const char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) : strlen(l);
        const char *at = memmem(l, n, "at ", 3);
        if (at && memmem(l, n, "wasm", 4)) {
            at += 3;
            snprintf(out, len, "%.*s", (int)(n - (size_t)(at - l)), at);
            return;
        }
        l = end ? end + 1 : NULL;
    }
}

/* Whether parked RECEIVEs are answered by the pushing thread (the
 * hand-over): HYPERC_ISOLATE_HANDOVER=1; read once. */
static bool handover_on(void)
{
    static _Atomic int on = -1;
    if (on < 0) {
        const char *e = getenv("HYPERC_ISOLATE_HANDOVER");
        on = e != NULL && strcmp(e, "1") == 0;
    }
    return on == 1;
}

/* Answer a parked RECEIVE with what the mailbox (or a timeout) has for
 * the guest, if anything: the caller holds serve_mu.  On the process's own
 * thread the answer is sent waiting for room as a reply is; on another
 * (a hand-over) it goes only if it fits at once, else it waits in w->out
 * for the process's thread, which is kicked.  1 answered, 0 nothing came,
 * -1 the link failed. */
static int answer_parked(wctx *w, bool own_thread)
{
    hw_receive_result r;
    if (!hcn_host_try_receive(w->h, &r, own_thread))
        return 0;
    atomic_store(&w->parked, false);
    put_receive_reply(w, &r);
    if (own_thread)
        return reply(w) == 0 ? 1 : -1;
    int rc = hcw_link_try_send(w->link, w->out);
    if (rc == 1)
        return 1;
    if (rc == 0)
        w->reply_pending = true;
    else
        w->hand_failed = true;
    hcw_link_kick(w->link);
    return 1;
}

/* The hand-over: a message came into a parked process's mailbox; the
 * pushing thread answers the worker's RECEIVE itself (one thread woken,
 * the worker, instead of the process's thread and then the worker).
 * Never waits: if another thread serves the worker, that one looks again
 * when it lets go (recheck).  Also run by the process's thread after it
 * lets go of serve_mu. */
static void hand_over(wctx *w, bool own_thread)
{
    for (;;) {
        if (!atomic_load(&w->parked))
            return;
        if (pthread_mutex_trylock(&w->serve_mu) != 0) {
            /* the holder looks again after it lets go; or, if it let go
             * between the two tries, this thread has it */
            atomic_store(&w->recheck, true);
            if (pthread_mutex_trylock(&w->serve_mu) != 0)
                return;
        }
        if (atomic_load(&w->parked))
            answer_parked(w, own_thread);
        pthread_mutex_unlock(&w->serve_mu);
        if (!atomic_exchange(&w->recheck, false))
            return;
    }
}

/* The mailbox's notify function while the worker runs (any thread). */
static void on_mailbox(void *ctx, bool ending)
{
    wctx *w = ctx;
    if (ending) {
        /* closed or stopping: the process's thread decides */
        hcw_link_kick(w->link);
        return;
    }
    /* the push (the count, before this) and the park (parked, then the
     * count) each see the other's */
    atomic_thread_fence(memory_order_seq_cst);
    hand_over(w, false);
}

/* Let go of serve_mu (the process's thread, parking), then do what a
 * hand-over that found it taken left. */
static void serve_unlock(wctx *w)
{
    pthread_mutex_unlock(&w->serve_mu);
    if (atomic_exchange(&w->recheck, false))
        hand_over(w, true);
}

/* The process's thread while parked: wait for the worker's next frame,
 * letting others hand messages over; answer a timeout when its deadline
 * comes; make the periodic checks.  Called and returns with serve_mu held.
 * 1 go on reading frames, or next_frame's codes (0 the worker is gone, -1
 * broken, -2 the process is to stop, -3 over its CPU limit). */
static int park_wait(wctx *w)
{
    atomic_store_explicit(&w->p->busy_since, 0, memory_order_relaxed);
    for (;;) {
        int64_t deadline = w->next_check;
        int64_t due = hcn_host_next_deadline(w->h);
        if (due >= 0 && due < deadline)
            deadline = due;
        serve_unlock(w);
        int got = hcw_link_wait(w->link, deadline);
        pthread_mutex_lock(&w->serve_mu);
        if (w->hand_failed) {
            snprintf(w->why, sizeof w->why, "its replies ring is broken");
            return -1;
        }
        if (w->reply_pending) {
            w->reply_pending = false;
            if (reply(w) != 0)
                return -1;
        }
        if (!atomic_load(&w->parked)) {
            hcn_host_thread_busy(w->h);
            return 1;
        }
        if (hcn_now_ns() >= w->next_check || !got) {
            if (!still_serving(w))
                return w->over_cpu ? -3 : w->stop ? -2 : 0;
        }
        int rc = answer_parked(w, true);
        if (rc != 0)
            return rc;
        if (got) {
            /* a frame before the RECEIVE was answered: a crash report, or
             * a worker out of step; served as it comes, the RECEIVE
             * staying parked */
            return 1;
        }
        if (hcn_mailbox_stopping(&w->p->mb)) {
            /* the blocking receive decides what comes (save answers, or
             * the stop), as without parking */
            atomic_store(&w->parked, false);
            hw_receive_result r;
            w->h->table.receive(w->h->table.ctx, &r); /* may not return */
            put_receive_reply(w, &r);
            return reply(w) == 0 ? 1 : -1;
        }
    }
}

/* A lane's control entry reached the worker (host.c calls this on the
 * thread serving it, serve_mu held, where the entry's place in the queue
 * comes): for LANE_OPEN the memfd goes on fd 4 first, then the frame.
 * Without may_wait, only when the frame fits in the ring at once (the fd
 * message must never go without its frame).  1 done, 0 not now. */
static int lane_ctl(void *ctx, hcn_msg *m, bool may_wait)
{
    wctx *w = ctx;
    int memfd;
    hcn_lane_given g;
    if ((int)(m->id >> 32 & 0xff) == HCW_LANE_CLOSE)
        hcn_host_lane_remove(w->h, (uint32_t)m->id); /* no more numbers */
    if (hcn_lanes_entry(w->p->node, w->p, w->inst, m, w->ctl, &memfd, &g) == 0)
        return 1;
    size_t len;
    int room = hcw_frame_finish(w->ctl, &len) == NULL ? -1
               : may_wait                             ? 1
                          : hcw_link_room_for(w->link, len);
    if (room == 0) {
        if (memfd >= 0)
            close(memfd);
        return 0; /* it comes again */
    }
    if (room < 0) {
        /* a ring the worker broke: the next write of this thread finds it
         * too, and ends the instance, which closes the lane */
        if (memfd >= 0) {
            close(memfd);
            hcn_lanes_given(w->p->node, w->p, m, false);
        }
        return 1;
    }
    if (memfd >= 0) {
        bool ok = hcw_lane_send(w->lane_sock, (uint32_t)m->id, memfd) == 0;
        close(memfd);
        hcn_lanes_given(w->p->node, w->p, m, ok);
        if (!ok) {
            hcn_logf(w->p->node, 1, "%s: cannot hand lane %u over: %s",
                     w->p->id, (unsigned)m->id, strerror(errno));
            return 1;
        }
        hcn_host_lane_add(w->h, g.peer, g.lane, (uint32_t)m->id, g.side);
    }
    if (may_wait)
        hcw_link_send(w->link, w->ctl); /* a failure ends the instance */
    else
        hcw_link_try_send(w->link, w->ctl); /* fits (room_for) */
    return 1;
}

static int serve_call(wctx *w)
{
    hwn_host *t = &w->h->table;
    void *ctx = t->ctx;
    hcw_in *in = &w->in;
    hcw_frame *f = w->out;
    switch (in->op) {
    case HCW_PRINT: {
        uint64_t v;
        char *msg = NULL;
        if (!hcw_get_u64(in, &v) || !hcw_get_str(in, &msg) || msg == NULL ||
            v > 255) {
            free(msg);
            BREACH(w, "PRINT wants [verbosity, text]");
        }
        t->print_to_terminal(ctx, (uint8_t)v, msg);
        free(msg);
        return 0;
    }
    case HCW_OUR: {
        hw_address a;
        t->our(ctx, &a);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_address(f, &a);
        hw_address_fini(&a);
        return reply(w);
    }
    case HCW_GET_ON_EXIT: {
        hw_on_exit o;
        t->get_on_exit(ctx, &o);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_on_exit(f, &o);
        hw_on_exit_fini(&o);
        return reply(w);
    }
    case HCW_SET_ON_EXIT: {
        hw_on_exit o;
        if (!hcw_get_on_exit(in, &o))
            BREACH(w, "SET_ON_EXIT wants [on-exit]");
        t->set_on_exit(ctx, &o);
        hw_on_exit_fini(&o);
        return 0;
    }
    case HCW_GET_STATE: {
        hw_bytes b = {0};
        bool has = t->get_state(ctx, &b);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_bytes_opt(f, has, &b);
        hw_bytes_fini(&b);
        return reply(w);
    }
    case HCW_SET_STATE: {
        hw_bytes b;
        if (!hcw_get_bin(in, &b))
            BREACH(w, "SET_STATE wants [bytes]");
        bool ok = t->set_state(ctx, b.ptr, b.len);
        hw_bytes_fini(&b);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_bool(f, ok);
        return reply(w);
    }
    case HCW_CLEAR_STATE: {
        bool ok = t->clear_state(ctx);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_bool(f, ok);
        return reply(w);
    }
    case HCW_SPAWN: {
        char *name = NULL, *path = NULL, **params = NULL;
        hw_on_exit o = {0};
        hw_capability_list caps = {0};
        hw_process_id *grants = NULL;
        size_t ngrants = 0, nparams = 0;
        bool pub = false;
        bool ok = hcw_get_str(in, &name) && hcw_get_str(in, &path) &&
                  path != NULL && hcw_get_on_exit(in, &o) &&
                  hcw_get_caps(in, &caps) &&
                  hcw_get_process_ids(in, &grants, &ngrants) &&
                  hcw_get_strs(in, &params, &nparams) && nparams == ngrants &&
                  hcw_get_bool(in, &pub);
        hw_process_id out = {0};
        hw_spawn_error e = HW_SPAWN_OK;
        if (ok)
            e = t->spawn(ctx, name, path, &o, caps.ptr, caps.len, grants,
                         (const char *const *)params, ngrants, pub, &out);
        free(name);
        free(path);
        hw_on_exit_fini(&o);
        hw_capability_list_fini(&caps);
        for (size_t i = 0; i < ngrants; i++)
            hw_process_id_fini(&grants[i]);
        free(grants);
        for (size_t i = 0; i < nparams; i++)
            free(params[i]);
        free(params);
        if (!ok)
            BREACH(w, "SPAWN wants [name, path, on-exit, caps, grants, "
                      "params, public]");
        hcw_frame_begin(f, HCW_REPLY, 2);
        hcw_put_u64(f, (uint64_t)e);
        if (e == HW_SPAWN_OK)
            hcw_put_process_id(f, &out);
        else
            hcw_put_nil(f);
        hw_process_id_fini(&out);
        return reply(w);
    }
    case HCW_SAVE_CAPS:
    case HCW_DROP_CAPS: {
        hw_capability_list caps;
        if (!hcw_get_caps(in, &caps))
            BREACH(w, "%s wants [caps]", hcw_op_name(in->op));
        if (in->op == HCW_SAVE_CAPS)
            t->save_capabilities(ctx, caps.ptr, caps.len);
        else
            t->drop_capabilities(ctx, caps.ptr, caps.len);
        hw_capability_list_fini(&caps);
        if (in->op == HCW_DROP_CAPS && w->lanes)
            hcn_lanes_recheck(w->p->node, w->p);
        return 0;
    }
    case HCW_LANE_DROP: {
        uint64_t number;
        char *why = NULL;
        if (!w->lanes || !hcw_get_u64(in, &number) || number > UINT32_MAX ||
            !hcw_get_str(in, &why))
            BREACH(w, "LANE_DROP wants [lane, why] (and a worker that "
                      "takes lanes)");
        hcn_host_lane_remove(w->h, (uint32_t)number);
        hcn_lanes_dropped(w->p->node, w->p, (uint32_t)number, why);
        free(why);
        return 0;
    }
    case HCW_SYNC: {
        /* the node's prompting message as the worker's is (lanes):
         * [prompting] or [prompting | nil, blob | nil]; nil leaves the
         * prompting message; the blob (nil: none) becomes the last blob */
        hcw_prompting pr = {.none = true};
        bool keep = in->nargs == 2 && hcw_get_nil(in);
        if ((in->nargs != 1 && in->nargs != 2) ||
            (!keep && !hcw_get_prompting(in, &pr)))
            BREACH(w, "SYNC wants [0 | [address, id, expects]] or [0 | "
                      "[address, id, expects] | nil, blob | nil]");
        hw_blob blob = {0};
        bool has_blob = false;
        if (in->nargs == 2 && !hcw_get_blob_opt(in, &has_blob, &blob)) {
            if (!pr.none)
                hw_address_fini(&pr.source);
            BREACH(w, "SYNC's second argument is not a blob or nil");
        }
        const char *why = NULL;
        bool ok = keep || hcn_host_sync(w->h, w->inst, &pr, &why);
        if (!pr.none)
            hw_address_fini(&pr.source);
        if (ok && in->nargs == 2)
            ok = hcn_host_sync_blob(w->h, has_blob ? &blob : NULL, &why);
        if (has_blob)
            hw_blob_fini(&blob);
        if (!ok)
            BREACH(w, "%s", why);
        return 0;
    }
    case HCW_OUR_CAPS: {
        hw_capability_list caps;
        t->our_capabilities(ctx, &caps);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_caps(f, caps.ptr, caps.len);
        hw_capability_list_fini(&caps);
        return reply(w);
    }
    case HCW_RECEIVE: {
        w->receiving = true;
        w->need_sent = false;
        /* the oldest message delivered ahead is the one the guest took */
        if (hcn_host_receive_ahead(w->h)) {
            w->cpu_at_receive = -1;
            return 0;
        }
        if (w->can_park) {
            int rc = answer_parked(w, true);
            if (rc != 0)
                return rc > 0 ? 0 : -1;
            atomic_store(&w->parked, true);
            /* a push that came before parked was up: its hand-over saw
             * nothing to do (on_mailbox) */
            atomic_thread_fence(memory_order_seq_cst);
            if (atomic_load(&w->p->mb.count)) {
                rc = answer_parked(w, true);
                if (rc != 0)
                    return rc > 0 ? 0 : -1;
            }
            return 0;
        }
        hw_receive_result r;
        if (w->lendable && !hcn_mailbox_stopping(&w->p->mb)) {
            /* nothing to take: the server holds the RECEIVE (lend) */
            if (hcn_host_try_receive(w->h, &r, true)) {
                put_receive_reply(w, &r);
                return reply(w);
            }
            w->srv_recv = true;
            hold_receive(w);
            return 0;
        }
        t->receive(ctx, &r); /* may not return: the instance is stopped */
        put_receive_reply(w, &r);
        return reply(w);
    }
    case HCW_HAS_BLOB: {
        bool has = t->has_blob(ctx);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_bool(f, has);
        return reply(w);
    }
    case HCW_GET_BLOB:
    case HCW_LAST_BLOB: {
        hw_blob b = {0};
        bool has = in->op == HCW_GET_BLOB ? t->get_blob(ctx, &b)
                                          : t->last_blob(ctx, &b);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_blob_opt(f, has ? &b : NULL);
        if (has)
            hw_blob_fini(&b);
        return reply(w);
    }
    case HCW_SEND_REQUEST: {
        hw_address target = {0};
        hw_request req = {0};
        hw_bytes ctxb = {0};
        hw_blob blob = {0};
        bool has_ctx = false, has_blob = false;
        /* the body lent from the frame: the host copies it into the
         * envelope */
        bool ok = hcw_get_address(in, &target) &&
                  hcw_get_request_view(in, &req) &&
                  hcw_get_bytes_opt(in, &has_ctx, &ctxb) &&
                  hcw_get_blob_opt(in, &has_blob, &blob);
        /* a fifth, from a worker with lanes: the lane id of a request it
         * sends again by node (no inherit; it keeps the context) */
        uint64_t lane_id = 0;
        bool lane_ok = !ok || in->nargs <= 4 ||
                       (w->lanes && hcw_get_u64(in, &lane_id) &&
                        lane_id >> 63 != 0 && !req.inherit);
        if (ok && lane_ok && lane_id != 0)
            hcn_host_send_lane_request(w->h, &target, &req,
                                       has_blob ? &blob : NULL, lane_id);
        else if (ok && lane_ok)
            t->send_request(ctx, &target, &req, has_ctx ? &ctxb : NULL,
                            has_blob ? &blob : NULL);
        hw_address_fini(&target);
        hcw_request_view_fini(&req);
        hw_bytes_fini(&ctxb);
        hw_blob_fini(&blob);
        if (!ok)
            BREACH(w, "SEND_REQUEST wants [address, request, context, "
                      "blob]");
        if (!lane_ok)
            BREACH(w, "SEND_REQUEST's fifth argument wants a lane id (bit "
                      "63, no inherit) from a worker with lanes");
        return 0;
    }
    case HCW_SEND_RESPONSE: {
        hw_response resp = {0};
        hw_blob blob = {0};
        bool has_blob = false;
        bool ok = hcw_get_response_view(in, &resp) &&
                  hcw_get_blob_opt(in, &has_blob, &blob);
        if (ok)
            t->send_response(ctx, &resp, has_blob ? &blob : NULL);
        hcw_response_view_fini(&resp);
        hw_blob_fini(&blob);
        if (!ok)
            BREACH(w, "SEND_RESPONSE wants [response, blob]");
        return 0;
    }
    case HCW_SEND_AND_AWAIT: {
        hw_address target = {0};
        hw_request req = {0};
        hw_blob blob = {0};
        bool has_blob = false;
        bool ok = hcw_get_address(in, &target) && hcw_get_request(in, &req) &&
                  hcw_get_blob_opt(in, &has_blob, &blob);
        hw_await_result r;
        memset(&r, 0, sizeof r);
        int rc = -1;
        if (ok)
            rc = t->send_and_await_response(ctx, &target, &req,
                                            has_blob ? &blob : NULL, &r);
        hw_address_fini(&target);
        hcc_request_fini(&req);
        hw_blob_fini(&blob);
        if (!ok)
            BREACH(w, "SEND_AND_AWAIT wants [address, request, blob]");
        hcw_frame_begin(f, HCW_REPLY, 3);
        hcw_put_i64(f, rc);
        if (rc == 0)
            hcw_put_await_result(f, &r);
        else
            hcw_put_nil(f);
        if (rc == 0 && !r.is_err)
            put_current_blob(w, f);
        else
            hcw_put_nil(f);
        if (rc == 0)
            hw_await_result_fini(&r);
        return reply(w);
    }
    case HCW_PROMPTING_HOLD:
    case HCW_PROMPTING_SET:
    case HCW_PROMPTING_RELEASE: {
        /* the worker's handles map to the host's (host.c) */
        int64_t wh;
        if (!hcw_get_i64(in, &wh) || wh < 1 || wh > HCW_MAX_HELD)
            BREACH(w, "%s wants [handle] from 1 to %u", hcw_op_name(in->op),
                   HCW_MAX_HELD);
        size_t i = (size_t)wh - 1;
        bool held = i < w->nheld && w->held[i] >= 0;
        if (in->op == HCW_PROMPTING_HOLD) {
            if (held)
                BREACH(w, "PROMPTING_HOLD of handle %lld, already held",
                       (long long)wh);
            if (i >= w->nheld) {
                size_t n = i + 1 > 2 * w->nheld ? i + 1 : 2 * w->nheld;
                w->held = hcn_xrealloc(w->held, n * sizeof *w->held);
                for (size_t k = w->nheld; k < n; k++)
                    w->held[k] = -1;
                w->nheld = n;
            }
            w->held[i] = t->prompting_hold(ctx);
            return 0;
        }
        if (!held)
            BREACH(w, "%s of handle %lld, not held", hcw_op_name(in->op),
                   (long long)wh);
        if (in->op == HCW_PROMPTING_SET) {
            if (w->held[i] > 0)
                t->prompting_set(ctx, w->held[i]);
        } else {
            if (w->held[i] > 0)
                t->prompting_release(ctx, w->held[i]);
            w->held[i] = -1;
        }
        return 0;
    }
    case HCW_STARTED: {
        bool done;
        if (!hcw_get_bool(in, &done))
            BREACH(w, "STARTED wants [done]");
        t->started(ctx, done);
        return 0;
    }
    case HCW_SET_STATE_START: {
        hw_bytes b = {0}, ctxb = {0};
        bool has_ctx = false;
        uint64_t timeout_s;
        bool ok = hcw_get_bin(in, &b) &&
                  hcw_get_bytes_opt(in, &has_ctx, &ctxb) &&
                  hcw_get_u64(in, &timeout_s);
        if (ok) {
            t->set_state_start(ctx, b.ptr, b.len, has_ctx ? &ctxb : NULL,
                               timeout_s);
            /* stored (the store's submit stores before it returns): the
             * worker may save into its slot again */
            if (w->slot != NULL)
                hcw_slot_started(w->slot);
        }
        hw_bytes_fini(&b);
        hw_bytes_fini(&ctxb);
        if (!ok)
            BREACH(w, "SET_STATE_START wants [bytes, context, timeout]");
        return 0;
    }
    case HCW_DONE:
        if (!hcw_get_i64(in, &w->done_rc))
            BREACH(w, "DONE wants [rc]");
        w->done = true;
        return 0;
    case HCW_CRASH:
    case HCW_EXIT:
        if (w->told || !hcw_get_crash(in, &w->crash))
            BREACH(w, "%s wants [crash], once", hcw_op_name(in->op));
        w->told = true;
        w->told_op = in->op;
        return 0;
    case HCW_TRAP:
        if (w->told || !get_trap(w, in))
            BREACH(w, "TRAP wants [message, stack], once");
        return 0;
    default: BREACH(w, "operation %d is not a call a worker makes", in->op);
    }
}

/* How many messages may be delivered ahead at most (each also has to go
 * at once, hcw_link_try_send: delivering never waits). */
#define AHEAD_MAX 32

/* A lane worker sends RECEIVE only when it takes an item the node
 * delivered ahead (or after NEED), so that it never waits for the node's
 * REPLY while lane frames may be ready (docs/lane-design.md §5): when
 * nothing more can be delivered ahead but something waits for it (a
 * message whose effects must apply at once), and the worker has nothing
 * ahead to take, tell it with NEED, once.  0, or -1 (a broken ring). */
static int need(wctx *w)
{
    if (!w->lanes || w->need_sent || hcn_host_ahead_count(w->h) > 0)
        return 0;
    /* stopping: the blocking receive decides what comes (save answers, or
     * the stop), so it needs the RECEIVE too */
    if (!hcn_host_blocked(w->h) && !hcn_mailbox_stopping(&w->p->mb))
        return 0;
    hcw_frame_begin(w->ctl, HCW_NEED, 0);
    int rc = hcw_link_try_send(w->link, w->ctl);
    if (rc < 0)
        BREACH(w, "its replies ring is broken (%s)", strerror(errno));
    w->need_sent = rc == 1; /* no room: tried again with the next */
    return 0;
}

/* Deliver ahead (DELIVER frames) the messages the guest will receive next,
 * while it handles the current one, so that with many queued it takes
 * them one after the other without waiting for the node
 * (hcn_host_take_ahead says which may go).  0, or -1 when the worker broke
 * the protocol (its ring positions). */
static int deliver_ahead(wctx *w)
{
    if (w->nforget && forget_flush(w, false) != 0)
        return -1;
    while (hcn_host_ahead_count(w->h) < AHEAD_MAX) {
        hw_receive_result r;
        const hcn_blob *b;
        bool lent;
        if (!hcn_host_take_ahead(w->h, &r, &b, &lent))
            return need(w);
        hcw_frame_begin(w->out, HCW_DELIVER, w->lanes ? 5 : 2);
        hcw_put_receive_result(w->out, &r);
        if (r.is_err)
            hcw_put_nil(w->out);
        else
            put_msg_blob(w->out, b);
        if (w->lanes)
            put_item_tail(w, w->out);
        if (!lent)
            hw_receive_result_fini(&r);
        int rc = hcw_link_try_send(w->link, w->out);
        if (rc == 1)
            continue;
        hcn_host_untake_ahead(w->h); /* no room now: it waits its turn */
        if (rc < 0)
            BREACH(w, "its replies ring is broken (%s)", strerror(errno));
        return 0;
    }
    return 0;
}

/* ------------------------------------------------------ the shared server */

/* One node thread serves the rings of every lent worker (at most
 * SERVER_MAX), so that two isolated processes exchanging messages keep
 * three threads busy (two workers and this one), not four, on machines
 * with few cores.  A process's thread lends its worker when it would
 * sleep: its link's spin found no frame, or a RECEIVE found nothing to
 * take (the server holds that RECEIVE and answers it when a message comes,
 * woken by the mailbox's notify function, or at the host's next timeout).
 * The server serves only what cannot block: the calls without results, a
 * RECEIVE, and delivering ahead (replies only if they fit in the ring at
 * once); anything else (a call waiting for a result, a crash report, the
 * end, a frame larger than the ring, a stop) it gives back to the
 * process's own thread, which serves it as before.  So does it a worker
 * that kept it busy for SERVER_STREAK frames while others are lent (on an
 * idle machine two node threads beat one).  The process's thread keeps
 * the periodic checks (it wakes every HCW_LINK_CHECK_MS while lent) and
 * the worker's end.  The server sleeps on every lent worker's calls ring
 * at once (futex_waitv).  Off with HYPERC_ISOLATE_SHARED=0. */
#define SERVER_MAX (FUTEX_WAITV_MAX - 1)
/* Frames of one worker the server serves without a pause before it gives
 * the worker back to its own thread, when others are lent too. */
#ifndef SERVER_STREAK
#define SERVER_STREAK 256
#endif

static struct {
    pthread_mutex_t mu; /* the list; held through a pass */
    bool started;
    wctx *list[SERVER_MAX];
    size_t n;
    _Atomic uint32_t seq; /* bumped when a worker is lent, or a message
                             comes for one, while the server sleeps */
    _Atomic bool sleeping;
    int64_t spin_ns;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool shared_on(void)
{
    static _Atomic int on = -1;
    if (on < 0) {
        const char *e = getenv("HYPERC_ISOLATE_SHARED");
        on = !(e != NULL && strcmp(e, "0") == 0);
    }
    return on == 1;
}

static int deliver_ahead(wctx *w);
static int serve_call(wctx *w);

static void give_back(wctx *w)
{
    atomic_store(&w->back, 1);
    syscall(SYS_futex, (uint32_t *)&w->back, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
            0);
}

/* Serve the frame in w->in if it is the server's to serve: 1 served, 0
 * not (left in w->in for the process's thread), -1 a breach (why). */
static int server_call(wctx *w)
{
    switch (w->in.op) {
    case HCW_PRINT:
    case HCW_SEND_REQUEST:
    case HCW_SEND_RESPONSE:
    case HCW_PROMPTING_HOLD:
    case HCW_PROMPTING_SET:
    case HCW_PROMPTING_RELEASE:
    case HCW_SAVE_CAPS:
    case HCW_DROP_CAPS:
    case HCW_LANE_DROP:
    case HCW_SET_STATE_START: /* a record appended to the state log (a
                                 copy, or one write), answered by message:
                                 not the process's thread's to wait for */
    case HCW_SYNC: return serve_call(w) == 0 ? 1 : -1;
    case HCW_RECEIVE: {
        w->need_sent = false;
        if (hcn_host_receive_ahead(w->h)) {
            w->cpu_at_receive = -1;
            return 1;
        }
        hw_receive_result r;
        if (!hcn_host_try_receive(w->h, &r, false)) {
            if (hcn_mailbox_stopping(&w->p->mb))
                return 0;
            w->srv_recv = true;
            hold_receive(w); /* answered when a message comes */
            return 1;
        }
        put_receive_reply(w, &r);
        int rc = hcw_link_try_send(w->link, w->out);
        if (rc == 0)
            w->reply_pending = true; /* the process's thread sends it */
        if (rc < 0) {
            snprintf(w->why, sizeof w->why, "its replies ring is broken (%s)",
                     strerror(errno));
            return -1;
        }
        return 1;
    }
    default: return 0;
    }
}

/* Serve a lent worker (serve_mu held): its frames that have come, then
 * what can be delivered ahead.  Whether anything was done. */
static bool server_serve(wctx *w)
{
    bool work = false;
    if (w->nforget && forget_flush(w, false) != 0) {
        /* (one that waited for room: looked at again at each pass) */
        w->srv_failed = true;
        give_back(w);
        return true;
    }
    if (w->srv_recv) {
        /* a frame while the RECEIVE waits (a crash report), or a stop:
         * the process's thread sees to it */
        if (hcw_link_frame_ready(w->link) != 0 ||
            hcn_mailbox_stopping(&w->p->mb)) {
            w->recv_now = hcw_link_frame_ready(w->link) == 0;
            if (w->recv_now)
                w->srv_recv = false;
            give_back(w);
            return true;
        }
        if (!atomic_load_explicit(&w->p->mb.count, memory_order_acquire) &&
            w->h->deferred_head == NULL &&
            (w->srv_deadline < 0 || hcn_now_ns() < w->srv_deadline))
            return false; /* (a lane's entry that waited for room is
                             deferred: looked at again) */
        hw_receive_result r;
        if (!hcn_host_try_receive(w->h, &r, false)) {
            w->srv_deadline = hcn_host_next_deadline(w->h);
            return false;
        }
        w->srv_recv = false;
        put_receive_reply(w, &r);
        int rc = hcw_link_try_send(w->link, w->out);
        if (rc != 1) {
            if (rc == 0)
                w->reply_pending = true;
            else {
                snprintf(w->why, sizeof w->why,
                         "its replies ring is broken (%s)", strerror(errno));
                w->srv_failed = true;
            }
            give_back(w);
        }
        return true;
    }
    for (int budget = 32; budget > 0; budget--) {
        int fr = hcw_link_frame_ready(w->link);
        if (fr == 0) {
            if (!work)
                w->srv_streak = 0; /* the worker paused */
            break;
        }
        if (fr == 2) {
            give_back(w);
            return true;
        }
        char err[160];
        work = true;
        if (hcw_link_recv(w->link, &w->in, err, sizeof err) != 1) {
            snprintf(w->why, sizeof w->why, "a broken frame: %s", err);
            w->srv_failed = true;
            give_back(w);
            return true;
        }
        int rc = server_call(w);
        if (rc == 1)
            served(w);
        if (rc <= 0 || w->reply_pending) {
            w->have_frame = rc == 0;
            w->srv_failed = rc < 0;
            give_back(w);
            return true;
        }
        if (w->srv_recv)
            return true; /* it waits: nothing is delivered ahead of the
                            answer */
        if ((!hcw_link_pending(w->link) ||
             hcn_host_ahead_count(w->h) < AHEAD_MAX / 2) &&
            deliver_ahead(w) != 0) {
            w->srv_failed = true;
            give_back(w);
            return true;
        }
        w->srv_streak++;
    }
    if (w->srv_streak >= SERVER_STREAK && srv.n > 1) {
        /* a worker that keeps the server busy while others wait: its own
         * thread serves it again (and lends it once it would sleep) */
        w->srv_streak = 0;
        give_back(w);
        return true;
    }
    if (w->lanes)
        w->srv_deadline = hcn_host_next_deadline(w->h);
    if (!work && hcn_host_ahead_count(w->h) < AHEAD_MAX &&
        (atomic_load_explicit(&w->p->mb.count, memory_order_relaxed) > 0 ||
         (w->lanes &&
          (w->h->deferred_head != NULL ||
           (w->srv_deadline >= 0 && hcn_now_ns() >= w->srv_deadline))))) {
        /* (a lane worker is not waiting in a RECEIVE: what is deferred,
         * and its timeouts at their deadlines, go ahead too) */
        /* messages came while the guest works: hand it more */
        size_t before = hcn_host_ahead_count(w->h);
        if (deliver_ahead(w) != 0) {
            w->srv_failed = true;
            give_back(w);
            return true;
        }
        work = hcn_host_ahead_count(w->h) > before;
    }
    return work;
}

/* One look at every lent worker (srv.mu held).  Whether anything was
 * done. */
static bool server_pass(void)
{
    bool work = false;
    for (size_t i = 0; i < srv.n; i++) {
        wctx *w = srv.list[i];
        if (atomic_load(&w->back) || pthread_mutex_trylock(&w->serve_mu) != 0)
            continue;
        if (w->lent)
            work |= server_serve(w);
        pthread_mutex_unlock(&w->serve_mu);
    }
    return work;
}

/* Sleep until a lent worker writes, a worker is lent, or a check period
 * passes. */
static void server_sleep(void)
{
    struct futex_waitv wv[SERVER_MAX + 1];
    memset(wv, 0, sizeof wv);
    size_t k = 0;
    bool ready = false;
    int64_t deadline = hcn_now_ns() + HCW_LINK_CHECK_MS * 1000000LL;
    pthread_mutex_lock(&srv.mu);
    /* up before the mailboxes are looked at: a push from now on wakes
     * this thread (srv_notify) */
    atomic_store(&srv.sleeping, true);
    uint32_t seq = atomic_load(&srv.seq);
    for (size_t i = 0; i < srv.n; i++) {
        wctx *w = srv.list[i];
        if (atomic_load(&w->back))
            continue;
        /* the server's own fields of a lent worker (only it writes them
         * while the worker is lent) */
        if (w->srv_recv) {
            if (atomic_load(&w->p->mb.count))
                ready = true;
        }
        /* a RECEIVE held, or a lane worker's timeouts (delivered ahead) */
        if ((w->srv_recv || w->lanes) && w->srv_deadline >= 0 &&
            w->srv_deadline < deadline)
            deadline = w->srv_deadline;
        _Atomic uint32_t *word = hcw_link_sleep_word(w->link);
        atomic_store(word, 1);
        wv[k].val = 1;
        wv[k].uaddr = (uintptr_t)word;
        wv[k].flags = FUTEX_32;
        k++;
        /* after the flag is up: a frame from now on takes it down */
        if (hcw_link_frame_ready(w->link) != 0)
            ready = true;
    }
    pthread_mutex_unlock(&srv.mu);
    wv[k].val = seq;
    wv[k].uaddr = (uintptr_t)&srv.seq;
    wv[k].flags = FUTEX_32;
    k++;
    /* the first sleep short, then the links looked at again with their
     * flags still up (a writer looks at a flag without a full fence:
     * HCW_LINK_FIRST_SLEEP_US) */
    int64_t first = hcn_now_ns() + HCW_LINK_FIRST_SLEEP_US * 1000LL;
    for (int phase = 0; phase < 2 && !ready; phase++) {
        int64_t until = phase == 0 && first < deadline ? first : deadline;
        struct timespec ts = {.tv_sec = (time_t)(until / 1000000000),
                              .tv_nsec = (long)(until % 1000000000)};
        if (syscall(SYS_futex_waitv, wv, (unsigned)k, 0u, &ts,
                    CLOCK_MONOTONIC) >= 0 ||
            errno != ETIMEDOUT || until == deadline)
            break;
        pthread_mutex_lock(&srv.mu);
        for (size_t i = 0; i < srv.n; i++)
            if (!atomic_load(&srv.list[i]->back) &&
                hcw_link_frame_ready(srv.list[i]->link) != 0)
                ready = true;
        pthread_mutex_unlock(&srv.mu);
    }
    atomic_store(&srv.sleeping, false);
    /* flags down: only of workers still lent (one given back is its own
     * thread's again once it leaves the list) */
    pthread_mutex_lock(&srv.mu);
    for (size_t i = 0; i < srv.n; i++)
        atomic_store(hcw_link_sleep_word(srv.list[i]->link), 0);
    pthread_mutex_unlock(&srv.mu);
}

static void *server_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "hc-wserver"); /* top -H, perf */
    int64_t idle_since = hcn_now_ns();
    for (;;) {
        pthread_mutex_lock(&srv.mu);
        bool work = server_pass();
        bool none = srv.n == 0;
        pthread_mutex_unlock(&srv.mu);
        int64_t now = hcn_now_ns();
        if (work) {
            idle_since = now;
            continue;
        }
        if (!none && now - idle_since < srv.spin_ns) {
            sched_yield(); /* the workers may be runnable here */
            continue;
        }
        server_sleep();
        idle_since = hcn_now_ns();
    }
    return NULL;
}

/* Put w on the server's list (its thread started on first use).  false
 * when it cannot take it. */
static bool server_add(wctx *w)
{
    pthread_mutex_lock(&srv.mu);
    bool ok = srv.n < SERVER_MAX;
    if (ok && !srv.started) {
        srv.spin_ns = (int64_t)w->p->node->cfg.spin_us * 1000;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        ok = pthread_create(&t, &at, server_main, NULL) == 0;
        pthread_attr_destroy(&at);
        srv.started = ok;
    }
    if (ok)
        srv.list[srv.n++] = w;
    pthread_mutex_unlock(&srv.mu);
    if (ok) {
        atomic_fetch_add(&srv.seq, 1);
        syscall(SYS_futex, (uint32_t *)&srv.seq, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    return ok;
}

static void server_remove(wctx *w)
{
    pthread_mutex_lock(&srv.mu);
    for (size_t i = 0; i < srv.n; i++)
        if (srv.list[i] == w) {
            srv.list[i] = srv.list[--srv.n];
            break;
        }
    pthread_mutex_unlock(&srv.mu);
}

/* The mailbox's notify function while the worker may be lent (any
 * thread): a message came; wake the server if it sleeps (it answers a
 * RECEIVE it holds, or delivers ahead); a stop goes to the process's
 * thread. */
static void srv_notify(void *ctx, bool ending)
{
    wctx *w = ctx;
    if (!atomic_load(&w->lent_a)) {
        /* the process's thread serves it: the mailbox wakes it, or (a lane
         * worker, which holds no RECEIVE) the kick does (lane_wait) */
        if (w->lanes)
            hcw_link_kick(w->link);
        return;
    }
    if (ending) {
        give_back(w);
        return;
    }
    /* the push (the count, before this) and the sleep (sleeping, then the
     * counts) each see the other's */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&srv.sleeping)) {
        atomic_fetch_add(&srv.seq, 1);
        syscall(SYS_futex, (uint32_t *)&srv.seq, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
}

/* Lend the worker to the server (its ring empty, serve_mu held) and sleep
 * until it is given back or the next check is due.  1 w->in holds a frame
 * to serve; 2 the check is due; 0 not lent (serve on this thread); -1
 * broken (why).  Returns with serve_mu held. */
static int lend(wctx *w)
{
    if (hcn_now_ns() >= w->next_check)
        return 2;
    w->lent = true;
    w->have_frame = false;
    w->srv_failed = false;
    if (w->lanes)
        w->srv_deadline = hcn_host_next_deadline(w->h);
    atomic_store(&w->back, 0);
    if (!server_add(w)) {
        w->lent = false;
        w->lendable = false;
        w->recv_now = w->srv_recv; /* one it held is this thread's now */
        w->srv_recv = false;
        return 0;
    }
    atomic_store(&w->lent_a, true);
    pthread_mutex_unlock(&w->serve_mu);
    for (;;) {
        if (atomic_load(&w->back))
            break;
        int64_t ns = w->next_check - hcn_now_ns();
        if (ns <= 0)
            break;
        struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000),
                              .tv_nsec = (long)(ns % 1000000000)};
        syscall(SYS_futex, (uint32_t *)&w->back, FUTEX_WAIT_PRIVATE, 0, &ts,
                NULL, 0);
    }
    atomic_store(&w->lent_a, false);
    server_remove(w);
    pthread_mutex_lock(&w->serve_mu);
    w->lent = false;
    if (w->srv_failed)
        return -1;
    if (w->reply_pending) {
        w->reply_pending = false;
        if (reply(w) != 0)
            return -1;
    }
    if (w->have_frame) {
        w->have_frame = false;
        return 1;
    }
    return 2;
}

/* Wait for the next frame, making the periodic checks (still_serving)
 * while waiting and, for a worker that keeps sending, between frames.
 * 1 a frame, 0 the worker is gone, -1 broken, -2 the process is to stop,
 * -3 over its CPU limit. */
static int next_frame(wctx *w)
{
    if (hcn_now_ns() >= w->next_check && !still_serving(w))
        return w->over_cpu ? -3 : w->stop ? -2 : 0;
    char err[160];
    int r = hcw_link_recv(w->link, &w->in, err, sizeof err);
    if (r == 0)
        return w->over_cpu ? -3 : w->stop ? -2 : 0;
    if (r < 0)
        snprintf(w->why, sizeof w->why, "a broken frame: %s", err);
    return r;
}

/* A lane worker this thread serves itself (the shared server had no room
 * for it): it holds no RECEIVE, so wait for its next frame or for a
 * message (srv_notify kicks the link), delivering ahead meanwhile, and make
 * the periodic checks.  1 a frame is there (or the process is stopping:
 * its RECEIVE comes after NEED), else next_frame's codes. */
static int lane_wait(wctx *w)
{
    for (;;) {
        if (hcw_link_pending(w->link))
            return 1;
        if (deliver_ahead(w) != 0)
            return -1;
        if (hcn_mailbox_stopping(&w->p->mb))
            return 1;
        int64_t deadline = w->next_check;
        int64_t due = hcn_host_next_deadline(w->h);
        if (due >= 0 && due < deadline)
            deadline = due;
        if (hcw_link_wait(w->link, deadline) == 1)
            return 1;
        if (hcn_now_ns() >= w->next_check && !still_serving(w))
            return w->over_cpu ? -3 : w->stop ? -2 : 0;
    }
}

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGSYS: return "SIGSYS";
    case SIGTRAP: return "SIGTRAP";
    case SIGKILL: return "SIGKILL";
    case SIGXCPU: return "SIGXCPU";
    default: return NULL;
    }
}

static bool give_up(void *ctx)
{
    (void)ctx;
    return false;
}

/* A call that has no results: the guest went on after writing it, so
 * the node carries it out even when it reads it after the worker ended
 * (as an in-process host would have at once). */
static bool one_way(int op)
{
    switch (op) {
    case HCW_PRINT:
    case HCW_SET_ON_EXIT:
    case HCW_SAVE_CAPS:
    case HCW_DROP_CAPS:
    case HCW_SEND_REQUEST:
    case HCW_SEND_RESPONSE:
    case HCW_PROMPTING_HOLD:
    case HCW_PROMPTING_SET:
    case HCW_PROMPTING_RELEASE:
    case HCW_STARTED:
    case HCW_SET_STATE_START:
    case HCW_LANE_DROP:
    case HCW_SYNC:
    case HCW_DONE: return true;
    default: return false;
    }
}

/* The worker is reaped, and what it wrote before it ended may still wait
 * in the ring (its end can be seen before the frames are read): the calls
 * without results it made (the guest went on after them: a response, the
 * requests it fired, its DONE) if it ended by itself, the crash report it
 * wrote as it died.  Read and apply them in order; a call that waited for
 * results is moot, as is everything from a worker the node stopped. */
static void last_words(wctx *w)
{
    if (w->told)
        return;
    hcw_link_watch(w->link, give_up, NULL);
    char err[160];
    while (!w->told && !w->done &&
           hcw_link_recv(w->link, &w->in, err, sizeof err) == 1)
        if (w->in.op == HCW_RECEIVE) {
            /* it took a message delivered ahead before it died: the one
             * it was handling (failed to its sender by hcn_host_fini) */
            hcn_host_receive_ahead(w->h);
        } else if ((w->in.op == HCW_CRASH || w->in.op == HCW_EXIT) &&
                   hcw_get_crash(&w->in, &w->crash)) {
            w->told = true;
            w->told_op = w->in.op;
        } else if (w->in.op == HCW_TRAP) {
            get_trap(w, &w->in);
        } else if (w->gone && one_way(w->in.op) && serve_call(w) != 0) {
            break; /* broken: the rest cannot be trusted */
        }
}

/* Reap the worker: its wait status (-1 if it could not be had). */
static int reap(pid_t pid, bool kill_first)
{
    if (kill_first)
        kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

/* A system call the worker's sandbox refused (a CRASH with SIGSYS carries
 * its number as the address; 0: a SIGSYS from elsewhere): "system call
 * NAME is not allowed (sandbox) in WHERE" in out, true; false if not. */
static bool sandbox_refusal(const hcw_crash *c, const char *where, char *out,
                            size_t len)
{
    if (c->code != SIGSYS || c->addr == 0 || c->addr > INT_MAX)
        return false;
    char *name =
        seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int)c->addr);
    char num[32];
    snprintf(num, sizeof num, "#%llu", (unsigned long long)c->addr);
    snprintf(out, len, "system call %s is not allowed (sandbox) in %s",
             name ? name : num, where);
    free(name);
    return true;
}

/* In a translated component's backtrace (hcn_symbolize's trace, a line
 * "  #N function (file:line)[, inlined in function (file:line)]
 * [module+off]" a frame), the innermost function of the component's own
 * code, wasm2c's w2c_ functions (not the adapter's or wabt's helpers,
 * called or inlined, above it), as "function (file:line)" without the
 * prefix into where; where unchanged when there is none. */
static void component_frame(const char *trace, char *where, size_t wl)
{
    const char *f = trace != NULL ? strstr(trace, " w2c_") : NULL;
    if (f == NULL)
        return;
    f += 5;
    size_t len = strcspn(f, ",[\n");
    while (len > 0 && f[len - 1] == ' ')
        len--;
    snprintf(where, wl, "%.*s", (int)len, f);
}

/* A translated component's trap (component_entry.c): its stack is
 * "native-pcs <base> <pc>...", return addresses in its shared object
 * loaded at base, symbolized with the shared object's file: *trace, and
 * in where the innermost frame of the component's code ("function
 * (file:line)", wasm2c's "w2c_" prefix taken off the name).  false when
 * the stack is not of that form (a wasm host's). */
static bool native_trap_where(const wctx *w, char *where, size_t wl,
                              char **trace)
{
    static const char head[] = "native-pcs ";
    if (w->binary == NULL || w->trap_stack == NULL ||
        strncmp(w->trap_stack, head, sizeof head - 1) != 0)
        return false;
    uint64_t v[49];
    size_t n = 0;
    const char *s = w->trap_stack + sizeof head - 1;
    while (n < sizeof v / sizeof v[0]) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 16);
        if (end == s || errno != 0)
            break;
        v[n++] = x;
        s = end;
    }
    if (n < 2)
        return false;
    hcw_module m = {.path = w->binary, .base = v[0]};
    hcw_crash c = {.pcs = v + 1, .npcs = n - 1, .modules = &m, .nmodules = 1};
    hcn_symbolize(&c, false, w->binary, where, wl, trace);
    component_frame(*trace, where, wl);
    return true;
}

/* Log how the worker ended (a crash, exit(), a breach) and classify it. */
static hcn_run_end report_end(wctx *w, int st)
{
    hcn_proc *p = w->p;
    hcn_node *n = p->node;
    char what[768];
    const char *verb = "crashed"; /* "stopped" by the sandbox */
    hcn_run_end end = HCN_RUN_CRASHED;
    char *trace = NULL;
    if (w->told && w->told_op == HCW_TRAP) {
        char where[512];
        if (!native_trap_where(w, where, sizeof where, &trace))
            trap_where(w->trap_stack, where, sizeof where);
        /* V8 says "wasm trap: ..." itself; other errors are said as they
         * come */
        if (strncmp(where, "task_stack_overflow ", 20) == 0) {
            /* the runtime's stack check stopped a task */
            snprintf(what, sizeof what,
                     "task stack overflow (a wasm trap in %s)", where);
            end = HCN_RUN_OVERFLOW;
        } else {
            snprintf(what, sizeof what, "%s%s in %s",
                     strncmp(w->trap, "wasm trap: ", 11) == 0 ? ""
                                                              : "wasm trap: ",
                     w->trap, where);
        }
        if (trace == NULL && w->trap_stack && w->trap_stack[0])
            trace = hcn_xstrdup(w->trap_stack);
    } else if (w->told) {
        char where[512];
        hcn_symbolize(&w->crash, w->told_op == HCW_CRASH,
                      w->binary != NULL ? w->binary : p->so_path, where,
                      sizeof where, &trace);
        if (w->binary != NULL) /* a translated component: its own code */
            component_frame(trace, where, sizeof where);
        const char *s = sig_name(w->crash.code);
        char num[32];
        if (s == NULL) {
            snprintf(num, sizeof num, "signal %d", (int)w->crash.code);
            s = num;
        }
        if (w->told_op == HCW_EXIT)
            snprintf(what, sizeof what, "exit(%d) called in %s",
                     (int)w->crash.code, where);
        else if (sandbox_refusal(&w->crash, where, what, sizeof what))
            verb = "stopped";
        else if (w->crash.stack_overflow)
            snprintf(what, sizeof what,
                     "task stack overflow (%s at %#llx) in %s", s,
                     (unsigned long long)w->crash.addr, where);
        else
            snprintf(what, sizeof what, "%s in %s", s, where);
        if (w->crash.stack_overflow)
            end = HCN_RUN_OVERFLOW;
    } else if (w->over_cpu) {
        snprintf(what, sizeof what,
                 "stopped after more than %u ms of CPU time on one message",
                 n->cfg.cpu_ms_per_message);
    } else if (w->why[0]) {
        snprintf(what, sizeof what, "its worker broke the protocol (%s)",
                 w->why);
    } else if (st != -1 && WIFSIGNALED(st)) {
        const char *s = sig_name(WTERMSIG(st));
        snprintf(what, sizeof what, "its worker was killed by %s (%d)",
                 s ? s : "a signal", WTERMSIG(st));
    } else if (w->done) {
        return w->done_rc == 0 ? HCN_RUN_RETURNED : HCN_RUN_LOAD_FAILED;
    } else if (st != -1 && WIFEXITED(st)) {
        snprintf(what, sizeof what, "its worker exited with status %d",
                 WEXITSTATUS(st));
    } else {
        snprintf(what, sizeof what, "its worker ended");
    }
    hcn_logf(n, 0, "process %s %s: %s", p->id, verb, what);
    if (trace)
        hcn_logf(n, 0, "process %s backtrace:\n%s", p->id, trace);
    free(trace);
    hcn_proc_note_crash(p, what);
    return end;
}

int hcn_proc_live_tasks(hcn_proc *p)
{
    if (p->link == NULL)
        return atomic_load(&p->tasks);
    /* the worker's word: its own say, shown as it is */
    uint32_t v = hcw_link_tasks(p->link);
    return v == HCW_LINK_NO_TASKS ? -1 : v > INT_MAX ? INT_MAX : (int)v;
}

int64_t hcn_proc_busy_since(hcn_proc *p, int64_t now)
{
    int inst = atomic_load(&p->lane_inst);
    if (p->link == NULL || inst == 0 || inst != atomic_load(&p->instance))
        return atomic_load(&p->busy_since);
    /* the worker's word: advice, clamped */
    int64_t v = hcw_link_busy_ns(p->link);
    return v <= 0 ? 0 : v > now ? now : v;
}

hcn_run_end hcn_isolate_run(hcn_proc *p)
{
    hcn_node *n = p->node;
    /* a component runs in the wasm host (Node.js), over shared-memory rings
     * when its addon is there, else a socket; a shared object in
     * hyperc-worker over shared-memory rings */
    bool wasm = is_wasm(p->so_path);
    const char *host = n->wasm_host_path;
    const char *node_js = getenv("HYPERC_NODE");
    if (node_js == NULL || *node_js == '\0')
        node_js = "node";
    /* a component as native code: translated, then loaded by
     * hyperc-worker as any native process */
    char *translated = NULL;
    bool native_code = false;
    wasm_as rt = wasm ? wasm_runtime() : WASM_AS_AUTO;
    if (rt == WASM_AS_BAD) {
        hcn_logf(n, 0,
                 "%s: cannot run a wasm component: HYPERC_WASM_RUNTIME is "
                 "\"%.40s\", expected native, v8 or nothing (native code "
                 "when it can be made)",
                 p->id, getenv("HYPERC_WASM_RUNTIME"));
        hcn_proc_note_end(p, "HYPERC_WASM_RUNTIME is not native, v8 or empty");
        return HCN_RUN_LOAD_FAILED;
    }
    if (wasm && host != NULL && rt != WASM_AS_V8) {
        char why[400];
        bool stopped = false, cannot = false;
        translated =
            cached_translation(host, p->so_path, why, sizeof why, &cannot);
        if (cannot && rt == WASM_AS_AUTO) {
            /* no translation can be made here: said once a node */
            static atomic_bool said;
            if (!atomic_exchange(&said, true))
                hcn_logf(n, 0,
                         "components run in the wasm host (V8): %s; "
                         "HYPERC_WASM_RUNTIME=v8 says so without this line",
                         why);
        } else if (translated == NULL) {
            atomic_fetch_add(&n->translating, 1);
            translated = translate_component(p, node_js, host, why, sizeof why,
                                             &stopped);
            atomic_fetch_sub(&n->translating, 1);
        }
        if (stopped) {
            hcn_proc_note_end(p, why);
            return HCN_RUN_KILLED;
        }
        if (translated == NULL && rt == WASM_AS_NATIVE) {
            hcn_logf(n, 0, "%s: %s", p->id, why);
            hcn_proc_note_end(p, why);
            return HCN_RUN_LOAD_FAILED;
        }
        if (translated != NULL) {
            wasm = false;
            native_code = true;
        } else if (!cannot) { /* the default: the wasm host instead */
            hcn_logf(n, 0, "%s: runs in the wasm host (V8): %s", p->id, why);
        }
    }
    const char *binary = translated != NULL ? translated : p->so_path;
    atomic_store(&p->in_wasm_host, wasm);
    if (wasm && host == NULL) {
        hcn_logf(n, 0,
                 "%s: cannot run a wasm component: the wasm host (host.mjs) "
                 "is not found (set HYPERC_WASM_HOST)",
                 p->id);
        hcn_proc_note_end(p, "the wasm host (host.mjs) is not found (set "
                             "HYPERC_WASM_HOST)");
        return HCN_RUN_LOAD_FAILED;
    }
    if (!wasm && n->worker_path == NULL) {
        hcn_logf(n, 0,
                 "%s: cannot run isolated: no hyperc-worker executable found "
                 "(set HYPERC_WORKER)",
                 p->id);
        hcn_proc_note_end(p, "no hyperc-worker executable found (set "
                             "HYPERC_WORKER)");
        free(translated);
        return HCN_RUN_LOAD_FAILED;
    }
    int lfd = -1;
    hcw_link *link = NULL;
    if (wasm && !wasm_host_maps(host)) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
            link = hcw_link_socket(sv[0]);
            lfd = sv[1];
            if (link == NULL)
                close(sv[0]);
            else
                hcw_link_socket_spin(link, n->cfg.spin_us);
        }
    } else {
        link = hcw_link_shm_new(n->cfg.spin_us, &lfd);
    }
    /* fd 4, for lanes: hyperc-worker's, and a wasm host's on the rings
     * (its addon maps lanes as a worker does; over a socket it has none) */
    int lsv[2] = {-1, -1};
    if (link != NULL && hcw_link_is_shm(link) && lane_socket(lsv) != 0) {
        int e = errno;
        hcw_link_free(link);
        link = NULL;
        errno = e;
    }
    if (link == NULL) {
        hcn_logf(n, 0, "%s: cannot make the worker's link: %s", p->id,
                 strerror(errno));
        hcn_proc_note_end(p, "cannot make the worker's link");
        if (lfd >= 0)
            close(lfd);
        free(translated);
        return HCN_RUN_LOAD_FAILED;
    }
    /* hyperc-worker sets its own limits, from here (limits_apply in
     * src/worker/main.c) */
    char files[24], bytes[24];
    snprintf(files, sizeof files, "%llu",
             (unsigned long long)n->cfg.worker_max_files);
    snprintf(bytes, sizeof bytes, "%llu",
             (unsigned long long)worker_max_as(&n->cfg, native_code));
    char *wasm_argv[] = {(char *)node_js, (char *)host, NULL};
    char *native_argv[] = {
        n->worker_path, (char *)"--limits", files, bytes, NULL, NULL};
    char **wargv = wasm ? wasm_argv : native_argv;
    /* a native worker saves into a state slot of its own (slot.h) where
     * the state module makes one (fd 5: after its lanes' fd 4) */
    uint8_t *slot = NULL;
    int sfd = wasm || lsv[1] < 0 ? -1 : slot_open(p, &slot);
    if (sfd >= 0)
        native_argv[4] = (char *)"--state-slot";
    pid_t pid = spawn_worker(wargv, lfd, lsv[1], sfd);
    int spawn_errno = errno;
    close(lfd);
    if (lsv[1] >= 0)
        close(lsv[1]);
    if (sfd >= 0)
        close(sfd);
    if (pid < 0) {
        hcn_logf(n, 0, "%s: cannot start %s: %s", p->id, wargv[0],
                 strerror(spawn_errno));
        hcn_proc_note_end(p, "its worker cannot be started");
        slot_close(p, slot);
        hcw_link_free(link);
        if (lsv[0] >= 0)
            close(lsv[0]);
        free(translated);
        return HCN_RUN_LOAD_FAILED;
    }
    if (wasm)
        limit_wasm_host(p, pid);
    wctx *w = hcn_xcalloc(1, sizeof *w);
    w->p = p;
    w->binary = translated;
    w->link = link;
    w->pid = pid;
    w->lane_sock = lsv[0];
    w->slot = slot;
    w->out = hcw_frame_new();
    hcw_in_init(&w->in);
    w->has_cpu_clock = clock_getcpuclockid(pid, &w->cpu_clock) == 0;
    w->cpu_at_receive = -1;
    hcw_link_watch(link, watch, w);
    pthread_mutex_init(&w->serve_mu, NULL);
    pthread_mutex_lock(&w->serve_mu);
    atomic_init(&w->parked, false);
    atomic_init(&w->recheck, false);
    w->h = hcn_xmalloc(sizeof *w->h);
    hcn_host_init(w->h, p);
    pthread_mutex_lock(&p->lock);
    p->link = link; /* its live tasks, for `hyperc ps` */
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->worker_pid, (int)pid);
    hcn_run_end end;
    int st = -1;
    hcw_frame_begin(w->out, HCW_HELLO, 4);
    hcw_put_u64(w->out, HCW_PROTO_VERSION);
    hcw_put_str(w->out, p->addr);
    hcw_put_str(w->out, binary);
    hcw_put_str(w->out, p->id);
    int r = hcw_link_send(w->link, w->out) == 0 ? next_frame(w) : -1;
    if (r == 1 && w->in.op == HCW_FAIL) {
        char *why = NULL;
        hcw_get_str(&w->in, &why);
        hcn_logf(n, 0, "%s: %s", p->id, why ? why : "the worker failed");
        hcn_proc_note_end(p, why ? why : "the worker failed");
        free(why);
        end = HCN_RUN_LOAD_FAILED;
        st = reap(pid, true);
        goto out;
    }
    if (r != 1 || w->in.op != HCW_READY) {
        st = reap(pid, true);
        if (r != -2)
            last_words(w);
        end = r == -2 ? HCN_RUN_KILLED : report_end(w, st);
        if (end == HCN_RUN_CRASHED && !w->told && w->why[0] == '\0')
            end = HCN_RUN_LOAD_FAILED;
        goto out;
    }
    char why[160];
    bool lanes;
    if (!ready_ok(&w->in, &lanes, why, sizeof why)) {
        hcn_logf(n, 0, "%s: the worker's READY: %s", p->id, why);
        hcn_proc_note_end(p, why);
        end = HCN_RUN_LOAD_FAILED;
        st = reap(pid, true);
        goto out;
    }
    volatile bool stopped = false;
    /* serve_mu is held from here on but while parked (park_wait) */
    /* The hand-over is opt-in (HYPERC_ISOLATE_HANDOVER=1): it halves the
     * 1-in-flight p50 on a busy machine but doubles it on a quiet one,
     * where the node thread's spin catches the worker's next frame without
     * a sleep (docs/architecture.md, "Isolated instances"). */
    w->can_park = hcw_link_is_shm(w->link) && handover_on();
    if (w->can_park)
        hcn_mailbox_set_notify(&p->mb, on_mailbox, w);
    w->lendable = hcw_link_is_shm(w->link) && !w->can_park && shared_on();
    /* lanes: a worker that asked, over shared memory, served by the shared
     * server, when the node opens them (kernel/lanes.c).  Such a worker
     * sends RECEIVE only as it takes what was delivered ahead: it is
     * delivered to from the start (receiving), and told NEED. */
    w->lanes = lanes && w->lane_sock >= 0 && w->lendable && hcn_lanes_wanted();
    if (w->lanes) {
        w->inst = atomic_load(&p->instance);
        w->ctl = hcw_frame_new();
        w->receiving = true;
        w->h->lanes = true;
        w->h->lane_ctl = lane_ctl;
        w->h->forget = forget;
        w->h->lane_ctx = w;
        atomic_store(&p->lane_inst, w->inst);
    }
    volatile bool srv_notified = w->lendable;
    if (srv_notified)
        hcn_mailbox_set_notify(&p->mb, srv_notify, w);
    hcn_kill_point_mark(w->h);
    int jumped = sigsetjmp(w->h->kill, 1);
    if (jumped == 0) {
        for (;;) {
            r = 1;
            bool lent = false; /* r is what lending brought */
            /* a lane worker holds no RECEIVE: to stop, it is asked for one */
            if (w->lanes && hcn_mailbox_stopping(&p->mb) && need(w) != 0)
                break;
            /* lent when this thread would sleep: a RECEIVE that found
             * nothing, or no frame within the link's spin */
            if (w->lendable && w->receiving && !atomic_load(&w->parked) &&
                !hcw_link_pending(w->link) &&
                (w->srv_recv || hcw_link_wait(w->link, 0) == 0)) {
                int l = lend(w);
                if (l == 2 && !still_serving(w)) {
                    r = w->over_cpu ? -3 : w->stop ? -2 : 0;
                    lent = true;
                } else if (l == 2 && !w->recv_now) {
                    continue; /* lent again */
                } else if (l == 1 || l == -1) {
                    r = l; /* 1: a frame the server left, -1 broken */
                    lent = true;
                }
            }
            /* A RECEIVE the server held and gave back (the process is
             * stopping, or the server is full), or still holds while this
             * thread does not lend: served here, waiting, as without the
             * server. */
            if (!lent && (w->recv_now || (w->srv_recv && !w->lendable))) {
                w->recv_now = false;
                w->srv_recv = false;
                hw_receive_result rr;
                w->h->table.receive(w->h->table.ctx, &rr); /* may not return */
                put_receive_reply(w, &rr);
                if (reply(w) != 0)
                    break;
                continue;
            }
            if (!lent && r == 1 && atomic_load(&w->parked))
                r = park_wait(w);
            if (!lent && r == 1 && w->lanes && !w->lendable)
                r = lane_wait(w);
            if (!lent && r == 1)
                r = next_frame(w);
            if (r == -2) {
                stopped = true;
                break;
            }
            /* CRASH, EXIT and DONE are a worker's last words */
            if (r != 1 || serve_call(w) != 0 || w->told || w->done)
                break;
            served(w);
            /* Once the calls that came are served (or the guest runs low
             * on messages), hand it the next ones. */
            if (w->receiving && !atomic_load(&w->parked) && !w->srv_recv &&
                (!hcw_link_pending(w->link) ||
                 hcn_host_ahead_count(w->h) < AHEAD_MAX / 2) &&
                deliver_ahead(w) != 0)
                break;
        }
    } else {
        stopped = true; /* a blocking host call saw the mailbox close */
    }
    /* no more hand-overs (this thread holds serve_mu to the end) */
    if (w->can_park || srv_notified)
        hcn_mailbox_set_notify(&p->mb, NULL, NULL);
    st = reap(pid, stopped || !w->done);
    if (!stopped && !w->done)
        last_words(w);
    end = stopped ? HCN_RUN_KILLED : report_end(w, st);
    w->h->crashed = end == HCN_RUN_CRASHED || end == HCN_RUN_OVERFLOW;
out:;
    hcn_msg *drained = NULL, *drained_tail = NULL;
    if (w->lanes) {
        /* the worker is reaped: its lanes close, its peers are told, and
         * what they wrote it and it did not take waits for the next
         * instance (at the front, once the host has put back its own) */
        atomic_store(&p->lane_inst, 0);
        hcn_lanes_instance_end(n, p, w->inst, &drained, &drained_tail);
    }
    pthread_mutex_unlock(&w->serve_mu);
    pthread_mutex_destroy(&w->serve_mu);
    pthread_mutex_lock(&p->lock);
    p->link = NULL;
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->worker_pid, 0);
    hcw_link_free(w->link);
    if (w->lane_sock >= 0)
        close(w->lane_sock);
    slot_close(p, w->slot); /* (the worker is reaped) */
    hcn_host_fini(w->h);
    hcn_mailbox_requeue(&p->mb, drained, drained_tail);
    free(w->h);
    hcw_in_fini(&w->in);
    hcw_frame_free(w->out);
    hcw_frame_free(w->ctl);
    hcw_crash_fini(&w->crash);
    free(w->trap);
    free(w->trap_stack);
    free(w->binary);
    free(w->held);
    free(w->forget);
    free(w);
    return end;
}
