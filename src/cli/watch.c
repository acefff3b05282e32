/* hyperc install / watch: put a package on a running node, and keep it there
 * as its sources change.  `install` sends the node's control socket an
 * install request (src/node/package/package.c does the swap); `watch` builds,
 * makes sure a node runs the package (the one at --home, or one it boots),
 * then rebuilds and reinstalls on every saved change (inotify). */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_ids(const char *what, json_t *arr)
{
    if (json_array_size(arr) == 0)
        return;
    printf(" %s:", what);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) printf(" %s", json_string_value(v));
    printf(";");
}

/* Install the package folder pkg on the node at home; prints one line. */
static int install(const char *home, const char *pkg, const char *who)
{
    json_t *req = json_pack("{ssss}", "op", "install", "dir", pkg);
    int64_t t0 = now_ms();
    json_t *rep = hcl_ctl_call(home, req, false);
    json_decref(req);
    if (rep == NULL)
        return 1;
    int rc = json_is_true(json_object_get(rep, "ok")) ? 0 : 1;
    if (rc != 0) {
        fprintf(stderr, "hyperc %s: %s\n", who,
                json_string_value(json_object_get(rep, "error")));
    } else {
        printf("hyperc %s: installed %s in %lld ms;", who,
               json_string_value(json_object_get(rep, "package")),
               (long long)(now_ms() - t0));
        print_ids("new", json_object_get(rep, "installed"));
        print_ids("reinstalled", json_object_get(rep, "reinstalled"));
        print_ids("removed", json_object_get(rep, "removed"));
        print_ids("still busy, will restart when they next receive",
                  json_object_get(rep, "not_restarted"));
        printf("\n");
        fflush(stdout);
    }
    json_decref(rep);
    return rc;
}

/* ------------------------------------------------------------- install */

static void usage_install(FILE *f)
{
    fprintf(f, "usage: hyperc install [--home DIR] PACKAGE_DIR\n"
               "\n"
               "Install a package on the running node at DIR (default "
               "./hyperc-home),\n"
               "or reinstall it: new processes start; present ones stop at "
               "their next\n"
               "receive and start again from the new binary with their saved "
               "state\n"
               "(what was sent to them meanwhile waits for them); processes "
               "no longer\n"
               "in the manifest stop.  PACKAGE_DIR is a built package, or a "
               "package's\n"
               "sources built by `hyperc build`.  A package that does not load "
               "changes\n"
               "nothing.\n");
}

int hcl_cmd_install(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *home = "hyperc-home";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H': home = optarg; break;
        case 'h': usage_install(stdout); return 0;
        default: usage_install(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage_install(stderr);
        return 2;
    }
    char *pkg = hcl_package_resolve(argv[optind]);
    if (pkg == NULL)
        return 1;
    int rc = install(home, pkg, "install");
    free(pkg);
    return rc;
}

/* --------------------------------------------------------------- watch */

static void usage_watch(FILE *f)
{
    fprintf(f,
            "usage: hyperc watch [options] [DIR]\n"
            "\n"
            "Build the package whose sources are in DIR (default .), make sure "
            "a node\n"
            "runs it, then rebuild and reinstall it on that node whenever a "
            "source\n"
            "changes (build/, build-wasm32/, target/ and hidden folders are "
            "not\n"
            "watched).  Processes "
            "restart\n"
            "from the new binary and load their saved state (save_config "
            "other than\n"
            "Never); what was sent to them meanwhile waits for them.  A build "
            "that\n"
            "fails changes nothing on the node.  Ctrl-C stops watching (and "
            "the node,\n"
            "when this command booted it).\n"
            "\n"
            "  --home DIR   the node's home (default ./hyperc-home): a node "
            "running\n"
            "               there gets the package; else one is booted there\n"
            "  --port N     HTTP port of a node this command boots (default: "
            "none)\n"
            "  --name NODE  name of a node this command boots (default "
            "local.os)\n"
            "  --target wasm32  build and install the processes as wasm32 "
            "components\n");
}

typedef struct watcher {
    int fd;
    char **paths; /* by watch descriptor */
    size_t npaths;
    const char *skip; /* the node's home, when inside DIR */
} watcher;

static bool skipped_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] == '.' || strcmp(n, "build") == 0 ||
           strcmp(n, "build-wasm32") == 0 || strcmp(n, "target") == 0 ||
           strcmp(n, "api") == 0 || /* written by every build */
           strcmp(n, "node_modules") == 0 || (l && n[l - 1] == '~') ||
           strcmp(n, "4913") == 0; /* vim's write test */
}

static void watch_tree(watcher *w, const char *dir)
{
    char *real = realpath(dir, NULL);
    if (real == NULL || (w->skip && strcmp(real, w->skip) == 0)) {
        free(real);
        return;
    }
    free(real);
    int wd = inotify_add_watch(w->fd, dir,
                               IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                                   IN_CREATE | IN_DELETE | IN_ONLYDIR);
    if (wd < 0) {
        fprintf(stderr, "hyperc watch: cannot watch %s: %s\n", dir,
                strerror(errno));
        return;
    }
    if ((size_t)wd >= w->npaths) {
        size_t n = (size_t)wd + 16;
        char **p = realloc(w->paths, n * sizeof *p);
        if (p == NULL)
            abort();
        memset(p + w->npaths, 0, (n - w->npaths) * sizeof *p);
        w->paths = p;
        w->npaths = n;
    }
    free(w->paths[wd]);
    w->paths[wd] = strdup(dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (skipped_name(e->d_name))
            continue;
        char *sub;
        if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0)
            abort();
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(w, sub);
        free(sub);
    }
    if (d)
        closedir(d);
}

/* Read what inotify has; the first changed file's path into `what` (for the
 * message).  New folders are watched too.  Whether a source changed. */
static bool read_events(watcher *w, char *what, size_t whatlen)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    for (;;) {
        ssize_t r = read(w->fd, buf, sizeof buf);
        if (r <= 0)
            break;
        for (char *p = buf; p < buf + r;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->len == 0 || skipped_name(ev->name) || ev->wd < 0 ||
                (size_t)ev->wd >= w->npaths || w->paths[ev->wd] == NULL)
                continue;
            char *full;
            if (asprintf(&full, "%s/%s", w->paths[ev->wd], ev->name) < 0)
                abort();
            if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && (ev->mask & IN_ISDIR))
                watch_tree(w, full);
            if (!(ev->mask & IN_ISDIR) || (ev->mask & IN_MOVED_TO)) {
                if (!changed)
                    snprintf(what, whatlen, "%s", full);
                changed = true;
            }
            free(full);
        }
    }
    return changed;
}

/* Whether a ps reply shows every process started (or stopped). */
static bool all_started(json_t *rep)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rep, "processes"), i, p)
    {
        const char *st = json_string_value(json_object_get(p, "status"));
        if (!json_is_true(json_object_get(p, "started")) && st &&
            strcmp(st, "running") == 0)
            return false;
    }
    return true;
}

/* Whether a node answers at home (quietly). */
static bool node_answers(const char *home)
{
    json_t *req = json_pack("{ss}", "op", "ps");
    json_t *rep = hcl_ctl_call(home, req, true);
    json_decref(req);
    json_decref(rep);
    return rep != NULL;
}

/* Boot `hyperc run` for pkg at home; its pid, or -1. */
static pid_t boot_node(const char *home, const char *port, const char *name,
                       const char *pkg)
{
    char *exe = hcl_self_exe();
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        char *argv[12];
        int k = 0;
        argv[k++] = exe;
        argv[k++] = "run";
        argv[k++] = "--home";
        argv[k++] = (char *)home;
        if (port) {
            argv[k++] = "--port";
            argv[k++] = (char *)port;
        }
        if (name) {
            argv[k++] = "--name";
            argv[k++] = (char *)name;
        }
        argv[k++] = (char *)pkg;
        argv[k] = NULL;
        execv(exe, argv);
        _exit(127);
    }
    free(exe);
    if (pid < 0)
        return -1;
    /* ready when its control socket shows every process started */
    json_t *req = json_pack("{ss}", "op", "ps");
    for (int i = 0; i < 600; i++) {
        json_t *rep = hcl_ctl_call(home, req, true);
        bool up = rep && all_started(rep);
        json_decref(rep);
        if (up) {
            json_decref(req);
            return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            break;
        usleep(50000);
    }
    json_decref(req);
    fprintf(stderr, "hyperc watch: the node did not start\n");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int hcl_cmd_watch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},
        {"target", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *home = "hyperc-home", *port = NULL, *name = NULL;
    int c, t;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H': home = optarg; break;
        case 'p': port = optarg; break;
        case 'n': name = optarg; break;
        case 't':
            if ((t = hcl_parse_target(optarg)) < 0)
                return 2;
            hcl_set_target_wasm32(t == 1);
            break;
        case 'h': usage_watch(stdout); return 0;
        default: usage_watch(stderr); return 2;
        }
    }
    if (optind < argc - 1) {
        usage_watch(stderr);
        return 2;
    }
    const char *dir = optind == argc - 1 ? argv[optind] : ".";
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "hyperc watch: %s is not a folder\n", dir);
        return 2;
    }
    /* Ctrl-C and SIGTERM are read from a signalfd between builds. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (hcl_build_dir(dir, true) != 0)
        return 1;
    char *pkg = hcl_package_resolve(dir);
    if (pkg == NULL)
        return 1;
    pid_t node = -1;
    int rc = 0;
    if (node_answers(home)) {
        printf("hyperc watch: a node runs at %s; installing there\n", home);
        rc = install(home, pkg, "watch");
    } else {
        node = boot_node(home, port, name, pkg);
        rc = node < 0 ? 1 : 0;
    }
    watcher w = {.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
    char *home_real = realpath(home, NULL);
    w.skip = home_real;
    if (rc == 0 && w.fd < 0) {
        fprintf(stderr, "hyperc watch: inotify: %s\n", strerror(errno));
        rc = 1;
    }
    if (rc == 0) {
        watch_tree(&w, dir);
        printf("hyperc watch: watching %s (Ctrl-C stops)\n", dir);
        fflush(stdout);
    }
    while (rc == 0) {
        struct pollfd pf[2] = {{.fd = w.fd, .events = POLLIN},
                               {.fd = sfd, .events = POLLIN}};
        int n = poll(pf, 2, 500);
        if (n < 0 && errno != EINTR)
            break;
        if (pf[1].revents & POLLIN)
            break;
        if (node > 0 && waitpid(node, NULL, WNOHANG) == node) {
            fprintf(stderr, "hyperc watch: the node stopped\n");
            node = -1;
            rc = 1;
            break;
        }
        if (node <= 0 && n == 0 && !node_answers(home)) {
            fprintf(stderr, "hyperc watch: the node at %s stopped\n", home);
            rc = 1;
            break;
        }
        if (!(pf[0].revents & POLLIN))
            continue;
        char what[4096] = "";
        bool changed = read_events(&w, what, sizeof what);
        /* settle: an editor or `git checkout` writes several files */
        for (;;) {
            struct pollfd q = {.fd = w.fd, .events = POLLIN};
            if (poll(&q, 1, 250) <= 0)
                break;
            char more[4096];
            if (read_events(&w, more, sizeof more) && !changed) {
                snprintf(what, sizeof what, "%s", more);
                changed = true;
            }
        }
        if (!changed)
            continue;
        printf("hyperc watch: %s changed; rebuilding\n", what);
        fflush(stdout);
        if (hcl_build_dir(dir, true) != 0) {
            printf("hyperc watch: the build failed; the node keeps the "
                   "previous build\n");
            fflush(stdout);
            continue;
        }
        char *again = hcl_package_resolve(dir);
        if (again) {
            install(home, again, "watch");
            free(again);
        }
        /* (the build writes only under build/, which is not watched: a
         * save made while it ran is still queued, and rebuilds next) */
    }
    if (node > 0) {
        kill(node, SIGINT);
        int status;
        for (int i = 0; i < 200; i++) {
            if (waitpid(node, &status, WNOHANG) == node) {
                node = -1;
                break;
            }
            usleep(50000);
        }
        if (node > 0) {
            kill(node, SIGKILL);
            waitpid(node, NULL, 0);
        }
    }
    for (size_t i = 0; i < w.npaths; i++)
        free(w.paths[i]);
    free(w.paths);
    free(home_real);
    free(pkg);
    if (w.fd >= 0)
        close(w.fd);
    if (sfd >= 0)
        close(sfd);
    return rc;
}
