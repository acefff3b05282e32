/* hyperc install / watch: put a package on a running node, and keep it there
 * as its sources change.  `install` sends the node's control socket an
 * install request (src/node/package/package.c does the swap); `watch` builds,
 * makes sure a node runs the package (the one at --home, or one it boots),
 * then rebuilds and reinstalls on every saved change (inotify). */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
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

/* Install the package folder pkg on the node at home; prints one line,
 * then one a process that did not start, with why.  0; 1 nothing was
 * installed (said why); 3 installed, but a new or restarted process ended
 * before it started (it crashed, its init returned, its state did not
 * load). */
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
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(rep, "failed"), i, f)
        {
            fprintf(stderr, "hyperc %s: %s did not start: %s\n", who,
                    json_string_value(json_object_get(f, "process")),
                    json_string_value(json_object_get(f, "reason")));
            rc = 3;
        }
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
               "nothing.\n"
               "\n"
               "Exit status: 0; 1 when nothing was installed (the package "
               "does not\n"
               "load, no node answers); 3 when it was installed but a new or "
               "restarted\n"
               "process did not start (it crashed or returned as it started, "
               "or its\n"
               "state did not load: each is named with why); 2 on bad "
               "arguments.\n");
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
            "watched).  Processes restart from the new binary and load their "
            "saved\n"
            "state (save_config other than Never); what was sent to them "
            "meanwhile\n"
            "waits for them.  A build that fails changes nothing on the node; "
            "a\n"
            "process that does not start is named with why, and a process "
            "that\n"
            "crashes later too.  Ctrl-C stops watching (and the node, when "
            "this\n"
            "command booted it).\n"
            "\n"
            "  --home DIR   the node's home (default ./hyperc-home): a node "
            "running\n"
            "               there gets the package; else one is booted there\n"
            "  --port N     HTTP port of a node this command boots (default: "
            "none)\n"
            "  --name NODE  name of a node this command boots (default "
            "local.os)\n"
            "  -v, --verbose  show what a node this command boots prints (its "
            "ready\n"
            "               lines, printouts, crashes); without it, that goes "
            "to\n"
            "               log/watch-node.out in the node's home\n"
            "  --target wasm32  build and install the processes as wasm32 "
            "components\n"
            "\n"
            "Exit status, once stopped: 0; 3 when the last install left a "
            "process\n"
            "that did not start; 1 when the first build fails, the node does "
            "not boot\n"
            "or it stops; 2 on bad arguments.\n");
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

/* The node's `ps` reply (quietly): NULL when no node answers at home. */
static json_t *node_ps(const char *home)
{
    json_t *req = json_pack("{ss}", "op", "ps");
    json_t *rep = hcl_ctl_call(home, req, true);
    json_decref(req);
    return rep;
}

/* One `hyperc watch`: what it was asked, the node it booted, and what it
 * has seen of the node's processes. */
typedef struct watch_run {
    const char *home, *port, *name;
    bool verbose;   /* -v: a booted node's output shows here */
    pid_t node;     /* the node this command booted, -1: none */
    char *out_path; /* without -v, where that node's output goes */
    json_t *seen;   /* process id -> crashes already told */
} watch_run;

/* The last lines of a booted node's output, when it was not shown: why it
 * did not boot, or stopped. */
static void show_node_output(const watch_run *r)
{
    if (r->verbose || r->out_path == NULL)
        return;
    FILE *f = fopen(r->out_path, "r");
    if (f == NULL)
        return;
    char *lines[20] = {0};
    size_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        free(lines[n % 20]);
        lines[n++ % 20] = strdup(line);
    }
    free(line);
    fclose(f);
    if (n > 0)
        fprintf(stderr, "hyperc watch: the node's last words (%s):\n",
                r->out_path);
    for (size_t i = n > 20 ? n - 20 : 0; i < n; i++)
        fprintf(stderr, "  %s", lines[i % 20] ? lines[i % 20] : "\n");
    for (size_t i = 0; i < 20; i++)
        free(lines[i]);
}

/* Say which processes crashed since the last look (the node's own lines
 * say it too, but they are not shown here unless -v booted it); remember
 * the counts.  tell: false only takes the counts. */
static void note_crashes(watch_run *r, json_t *rep, bool tell)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rep, "processes"), i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        json_int_t n = json_integer_value(json_object_get(p, "crashes"));
        if (id == NULL)
            continue;
        json_int_t was = json_integer_value(json_object_get(r->seen, id));
        if (tell && n > was)
            printf("hyperc watch: %s crashed: %s\n", id,
                   json_string_value(json_object_get(p, "last_crash")));
        json_object_set_new(r->seen, id, json_integer(n));
    }
    fflush(stdout);
}

/* A package's id ("package:publisher") and its processes' names, from its
 * metadata.json and pkg/manifest.json; false when they do not read (the
 * node has loaded them already, so this is only what watch can say). */
static bool package_procs(const char *pkg, char **pkg_id, json_t **names)
{
    char *mp = hcl_fmt("%s/metadata.json", pkg);
    char *fp = hcl_fmt("%s/pkg/manifest.json", pkg);
    json_t *meta = json_load_file(mp, 0, NULL);
    json_t *man = json_load_file(fp, 0, NULL);
    free(mp);
    free(fp);
    json_t *props = json_object_get(meta, "properties");
    const char *name =
        json_string_value(json_object_get(props, "package_name"));
    const char *pub = json_string_value(json_object_get(props, "publisher"));
    bool ok = name && pub && json_is_array(man);
    if (ok) {
        *pkg_id = hcl_fmt("%s:%s", name, pub);
        *names = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(man, i, e)
        {
            const char *pn =
                json_string_value(json_object_get(e, "process_name"));
            if (pn)
                json_array_append_new(*names, json_string(pn));
        }
    }
    json_decref(meta);
    json_decref(man);
    return ok;
}

/* After booting: each process of the package that is not running, with
 * why when the node knows (a start failure), or where to look.  Whether
 * any is. */
static bool report_boot(const watch_run *r, const char *pkg, json_t *rep)
{
    char *pkg_id = NULL;
    json_t *names = NULL;
    if (!package_procs(pkg, &pkg_id, &names))
        return false;
    bool failed = false;
    size_t i, k;
    json_t *n, *p;
    json_array_foreach(names, i, n)
    {
        char *id = hcl_fmt("%s:%s", json_string_value(n), pkg_id);
        json_t *found = NULL;
        json_array_foreach(json_object_get(rep, "processes"), k, p)
        {
            const char *pid = json_string_value(json_object_get(p, "id"));
            if (pid && strcmp(pid, id) == 0)
                found = p;
        }
        const char *why =
            json_string_value(json_object_get(found, "start_failure"));
        if (found == NULL)
            fprintf(stderr,
                    "hyperc watch: %s did not start: it stopped as it started "
                    "(the node's log says why: hyperc logs --home %s)\n",
                    id, r->home);
        else if (why)
            fprintf(stderr, "hyperc watch: %s did not start: %s\n", id, why);
        failed = failed || found == NULL || why != NULL;
        free(id);
    }
    free(pkg_id);
    json_decref(names);
    return failed;
}

/* When the node this command boots would make its first password and
 * print it into r->out_path (a file): a password made here instead, handed
 * to the node in its environment and shown on our terminal only (pw gets
 * it, else ""), so that no file holds it. */
static void first_password(const watch_run *r, char pw[21])
{
    pw[0] = 0;
    if (r->port == NULL || r->out_path == NULL || getenv("HYPERC_PASSWORD"))
        return;
    char *hash = hcl_fmt("%s/http/password_hash", r->home);
    char *plain = hcl_fmt("%s/http/password", r->home);
    bool set = access(hash, F_OK) == 0 || access(plain, F_OK) == 0;
    free(hash);
    free(plain);
    if (set)
        return;
    static const char abc[] = "abcdefghijkmnpqrstuvwxyz23456789";
    uint8_t rnd[20];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return; /* the node makes one (into the file) */
    for (int i = 0; i < 20; i++)
        pw[i] = abc[rnd[i] % 32];
    pw[20] = 0;
}

/* Boot `hyperc run` for pkg at r->home (its output to r->out_path unless
 * -v); r->node is its pid once it is ready.  0, or 1 (said why). */
static int boot_node(watch_run *r, const char *pkg)
{
    if (!r->verbose) {
        char *logdir = hcl_fmt("%s/log", r->home);
        mkdir(r->home, 0700);
        mkdir(logdir, 0700);
        free(logdir);
        r->out_path = hcl_fmt("%s/log/watch-node.out", r->home);
    }
    int out = -1;
    if (r->out_path &&
        (out = open(r->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0600)) < 0) {
        fprintf(stderr, "hyperc watch: cannot write %s: %s\n", r->out_path,
                strerror(errno));
        return 1;
    }
    printf("hyperc watch: booting a node at %s%s%s\n", r->home,
           r->out_path ? "; its output goes to " : "",
           r->out_path ? r->out_path : "");
    fflush(stdout);
    char pw[21];
    first_password(r, pw);
    char *exe = hcl_self_exe();
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (pw[0])
            setenv("HYPERC_PASSWORD", pw, 1);
        if (out >= 0 &&
            (dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0))
            _exit(127);
        char *argv[12];
        int k = 0;
        argv[k++] = exe;
        argv[k++] = "run";
        argv[k++] = "--home";
        argv[k++] = (char *)r->home;
        if (r->port) {
            argv[k++] = "--port";
            argv[k++] = (char *)r->port;
        }
        if (r->name) {
            argv[k++] = "--name";
            argv[k++] = (char *)r->name;
        }
        argv[k++] = (char *)pkg;
        argv[k] = NULL;
        execv(exe, argv);
        _exit(127);
    }
    free(exe);
    if (out >= 0)
        close(out);
    if (pid < 0) {
        fprintf(stderr, "hyperc watch: cannot start a node: %s\n",
                strerror(errno));
        return 1;
    }
    /* ready when its control socket shows every process started: 30 s,
     * besides the time the node spends translating components to native
     * code (their first start), up to 5 minutes */
    int64_t translating_until = now_ms() + 300000;
    for (int i = 0; i < 600; i++) {
        json_t *rep = node_ps(r->home);
        bool up = rep && all_started(rep);
        if (!up && rep && now_ms() < translating_until &&
            json_integer_value(json_object_get(rep, "translating")) > 0)
            i = 0; /* (not counted) */
        if (up) {
            r->node = pid;
            if (!r->verbose)
                printf("hyperc watch: node %s ready%s%s%s\n",
                       r->name ? r->name : "local.os",
                       r->port ? "; serving http://localhost:" : "",
                       r->port ? r->port : "", r->port ? "/" : "");
            if (pw[0])
                printf("hyperc watch: log in with the node password %s (made "
                       "at this first boot, shown only now; the node keeps "
                       "only its hash)\n",
                       pw);
            fflush(stdout);
            note_crashes(r, rep, false);
            json_decref(rep);
            return 0;
        }
        json_decref(rep);
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "hyperc watch: the node did not start\n");
            show_node_output(r);
            return 1;
        }
        usleep(50000);
    }
    fprintf(stderr, "hyperc watch: the node did not start within 30 s\n");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    show_node_output(r);
    return 1;
}

/* Stop the node this command booted: SIGINT, then SIGKILL after 10 s. */
static void stop_node(watch_run *r)
{
    if (r->node <= 0)
        return;
    kill(r->node, SIGINT);
    for (int i = 0; i < 200; i++) {
        if (waitpid(r->node, NULL, WNOHANG) == r->node) {
            r->node = -1;
            break;
        }
        usleep(50000);
    }
    if (r->node > 0) {
        kill(r->node, SIGKILL);
        waitpid(r->node, NULL, 0);
        r->node = -1;
    }
    if (!r->verbose)
        printf("hyperc watch: node stopped\n");
}

/* Wait for the writes of a change to settle (an editor or `git checkout`
 * writes several files): whether a source changed, the first in `what`. */
static bool settle(watcher *w, char *what, size_t whatlen)
{
    bool changed = read_events(w, what, whatlen);
    for (;;) {
        struct pollfd q = {.fd = w->fd, .events = POLLIN};
        if (poll(&q, 1, 250) <= 0)
            break;
        char more[4096];
        if (read_events(w, more, sizeof more) && !changed) {
            snprintf(what, whatlen, "%s", more);
            changed = true;
        }
    }
    return changed;
}

/* Rebuild and reinstall after a change: the install's status (0, 1, 3),
 * or -1 when the build failed (the node keeps what it runs). */
static int rebuild(watch_run *r, const char *dir, const char *what)
{
    printf("hyperc watch: %s changed; rebuilding\n", what);
    fflush(stdout);
    if (hcl_build_dir(dir, true) != 0) {
        printf("hyperc watch: the build failed; the node keeps the "
               "previous build\n");
        fflush(stdout);
        return -1;
    }
    char *again = hcl_package_resolve(dir);
    if (again == NULL)
        return -1;
    int rc = install(r->home, again, "watch");
    free(again);
    if (rc == 3)
        printf("hyperc watch: fix it and save: watch rebuilds and "
               "reinstalls\n");
    json_t *rep = node_ps(r->home);
    if (rep)
        note_crashes(r, rep, false); /* the install said it */
    json_decref(rep);
    fflush(stdout);
    return rc;
}

int hcl_cmd_watch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},
        {"target", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    watch_run r = {.home = "hyperc-home", .node = -1};
    int c, t;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        switch (c) {
        case 'H': r.home = optarg; break;
        case 'p': r.port = optarg; break;
        case 'n': r.name = optarg; break;
        case 'v': r.verbose = true; break;
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
    r.seen = json_object(); /* released at the end (below) */
    int rc = 0;
    /* whether the last install left a process that did not start */
    bool failing = false;
    json_t *rep = node_ps(r.home);
    bool attached = rep != NULL;
    if (attached) {
        printf("hyperc watch: a node runs at %s; installing there\n", r.home);
        note_crashes(&r, rep, false);
        int irc = install(r.home, pkg, "watch");
        failing = irc == 3;
        rc = irc == 3 ? 0 : irc;
    } else {
        rc = boot_node(&r, pkg);
        json_t *now = rc == 0 ? node_ps(r.home) : NULL;
        failing = now && report_boot(&r, pkg, now);
        json_decref(now);
    }
    json_decref(rep);
    watcher w = {.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
    char *home_real = realpath(r.home, NULL);
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
        if (r.node > 0 && waitpid(r.node, NULL, WNOHANG) == r.node) {
            fprintf(stderr, "hyperc watch: the node stopped\n");
            r.node = -1;
            show_node_output(&r);
            rc = 1;
            break;
        }
        if (n == 0) {
            /* idle: is the node there, and did a process crash? */
            json_t *now = node_ps(r.home);
            if (now == NULL && r.node <= 0) {
                fprintf(stderr, "hyperc watch: the node at %s stopped\n",
                        r.home);
                rc = 1;
                break;
            }
            if (now)
                note_crashes(&r, now, attached || !r.verbose);
            json_decref(now);
            continue;
        }
        if (!(pf[0].revents & POLLIN))
            continue;
        char what[4096] = "";
        if (!settle(&w, what, sizeof what))
            continue;
        int irc = rebuild(&r, dir, what);
        if (irc >= 0)
            failing = irc == 3;
        /* (the build writes only under build/, which is not watched: a
         * save made while it ran is still queued, and rebuilds next) */
    }
    stop_node(&r);
    for (size_t i = 0; i < w.npaths; i++)
        free(w.paths[i]);
    free(w.paths);
    free(home_real);
    free(pkg);
    free(r.out_path);
    json_decref(r.seen);
    if (w.fd >= 0)
        close(w.fd);
    if (sfd >= 0)
        close(sfd);
    return rc != 0 ? rc : failing ? 3 : 0;
}
