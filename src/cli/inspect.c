/* hyperc ps / logs: looking at a node.  `ps` asks the running node for its
 * processes (control socket) and shows them as a table for people or as
 * JSON for machines; `logs` prints the node's log file or a process's log
 * file from the node's home, and follows them with -f (the files are read
 * directly: a node that stopped still has its logs). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A process busy in one handler for longer than this is flagged by
 * `hyperc ps` (--busy-ms): no healthy handler takes that long, and it is
 * well under what callers wait by default (15 s for inject and HTTP, 30 s
 * for the stubs), so a stuck process shows before its callers time out. */
#define PS_BUSY_MS_DEFAULT 5000

/* ------------------------------------------------------------------ ps */

static void usage_ps(FILE *f)
{
    fprintf(f,
            "usage: hyperc ps [--home DIR] [--json] [--busy-ms N]\n"
            "\n"
            "List the processes of the running node at DIR (default "
            "./hyperc-home):\n"
            "PROCESS, STATE (loaded, starting, running, restarting, exited), "
            "RESTARTS\n"
            "(by its on-exit Restart), QUEUE (requests sent to it not yet "
            "taken),\n"
            "TASKS (a hyperprocess's handlers in flight; - when not told), "
            "BUSY (how long\n"
            "it has been in one handler, shown past N ms, default %d) and "
            "LAST CRASH\n"
            "(or why its newest instance did not start).\n"
            "\n"
            "  --home DIR    the node's home (default ./hyperc-home)\n"
            "  --json        the same as a JSON array, one object a process\n"
            "  --busy-ms N   flag a process busy in one handler longer than "
            "N ms\n"
            "\n"
            "Exit status: 0, 1 when no node answers, 2 on bad arguments.\n",
            PS_BUSY_MS_DEFAULT);
}

/* Whether p is busy past the threshold (busy_ms known and at least it). */
static bool ps_busy(json_t *p, long long threshold)
{
    json_t *b = json_object_get(p, "busy_ms");
    return json_is_integer(b) && json_integer_value(b) >= threshold;
}

static const char *ps_state(json_t *p)
{
    const char *st = json_string_value(json_object_get(p, "status"));
    if (st && strcmp(st, "running") == 0 &&
        !json_is_true(json_object_get(p, "started")))
        return "starting";
    return st ? st : "?";
}

static int by_id(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t **)a, "id"));
    const char *y = json_string_value(json_object_get(*(json_t **)b, "id"));
    return strcmp(x ? x : "", y ? y : "");
}

/* The cells of one row (heap strings, caller frees them). */
enum { PS_COLS = 7 };
static void ps_cells(json_t *p, long long threshold, char *cell[PS_COLS])
{
    json_t *tasks = json_object_get(p, "tasks");
    json_t *fail = json_object_get(p, "start_failure");
    json_t *crash = json_object_get(p, "last_crash");
    const char *id = json_string_value(json_object_get(p, "id"));
    cell[0] = hcl_fmt("%s", id ? id : "?");
    cell[1] = hcl_fmt("%s", ps_state(p));
    cell[2] = hcl_fmt(
        "%lld", (long long)json_integer_value(json_object_get(p, "restarts")));
    cell[3] = hcl_fmt(
        "%lld", (long long)json_integer_value(json_object_get(p, "queued")));
    cell[4] = json_is_integer(tasks)
                  ? hcl_fmt("%lld", (long long)json_integer_value(tasks))
                  : hcl_fmt("-");
    cell[5] = ps_busy(p, threshold)
                  ? hcl_fmt("%.1fs", (double)json_integer_value(
                                         json_object_get(p, "busy_ms")) /
                                         1000.0)
                  : hcl_fmt("-");
    cell[6] = json_is_string(fail)
                  ? hcl_fmt("did not start: %s", json_string_value(fail))
              : json_is_string(crash) ? hcl_fmt("%s", json_string_value(crash))
                                      : hcl_fmt("-");
}

/* The table, columns as wide as their widest cell; numbers to the right. */
static void ps_table(json_t *procs, long long threshold)
{
    static const char *const head[PS_COLS] = {
        "PROCESS", "STATE", "RESTARTS", "QUEUE", "TASKS", "BUSY", "LAST CRASH"};
    static const bool right[PS_COLS] = {false, false, true, true,
                                        true,  true,  false};
    size_t n = json_array_size(procs);
    json_t **rows = calloc(n + 1, sizeof *rows);
    char *(*cells)[PS_COLS] = calloc(n + 1, sizeof *cells);
    if (rows == NULL || cells == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        rows[i] = json_array_get(procs, i);
    qsort(rows, n, sizeof *rows, by_id);
    int width[PS_COLS];
    for (int c = 0; c < PS_COLS; c++)
        width[c] = (int)strlen(head[c]);
    for (size_t i = 0; i < n; i++) {
        ps_cells(rows[i], threshold, cells[i]);
        for (int c = 0; c < PS_COLS; c++)
            if ((int)strlen(cells[i][c]) > width[c])
                width[c] = (int)strlen(cells[i][c]);
    }
    for (size_t i = 0; i <= n; i++) {
        for (int c = 0; c < PS_COLS; c++) {
            const char *v = i == 0 ? head[c] : cells[i - 1][c];
            if (c == PS_COLS - 1)
                printf("%s\n", v); /* the last column is not padded */
            else
                printf(right[c] ? "%*s  " : "%-*s  ", width[c], v);
        }
    }
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < PS_COLS; c++)
            free(cells[i][c]);
    free(cells);
    free(rows);
}

int hcl_cmd_ps(int argc, char **argv)
{
    enum { O_HOME = 256, O_JSON, O_BUSY };
    static const struct option opts[] = {
        {"home", required_argument, NULL, O_HOME},
        {"json", no_argument, NULL, O_JSON},
        {"busy-ms", required_argument, NULL, O_BUSY},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *home = "hyperc-home";
    bool as_json = false;
    long long threshold = PS_BUSY_MS_DEFAULT;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_HOME: home = optarg; break;
        case O_JSON: as_json = true; break;
        case O_BUSY: {
            char *end;
            errno = 0;
            threshold = strtoll(optarg, &end, 10);
            if (errno || *optarg == '\0' || *end != '\0' || threshold < 0) {
                fprintf(stderr, "hyperc ps: --busy-ms needs milliseconds "
                                "(an integer >= 0)\n");
                return 2;
            }
            break;
        }
        case 'h': usage_ps(stdout); return 0;
        default: usage_ps(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage_ps(stderr);
        return 2;
    }
    json_t *req = json_pack("{ss}", "op", "ps");
    json_t *rep = hcl_ctl_call(home, req, false);
    json_decref(req);
    if (rep == NULL)
        return 1;
    json_t *procs = json_object_get(rep, "processes");
    if (!json_is_true(json_object_get(rep, "ok")) || !json_is_array(procs)) {
        const char *e = json_string_value(json_object_get(rep, "error"));
        fprintf(stderr, "hyperc ps: %s\n", e ? e : "a bad reply from the node");
        json_decref(rep);
        return 1;
    }
    if (as_json) {
        size_t i;
        json_t *p;
        json_array_foreach(procs, i, p)
            json_object_set_new(p, "busy", json_boolean(ps_busy(p, threshold)));
        char *s = json_dumps(procs, JSON_INDENT(2));
        puts(s);
        free(s);
    } else {
        ps_table(procs, threshold);
    }
    json_decref(rep);
    return 0;
}

/* ---------------------------------------------------------------- logs */

static void usage_logs(FILE *f)
{
    fprintf(f, "usage: hyperc logs [--home DIR] [-f] [-n N] [PROCESS]\n"
               "\n"
               "Print the node's log (DIR/log/node.log: every printout at "
               "every level,\n"
               "the kernel's lines too), or with PROCESS "
               "(process:package:publisher)\n"
               "that process's log file, /<package>:<publisher>/log/"
               "<process>.log in\n"
               "its vfs drive (DIR/vfs/...), where a hyperprocess's "
               "hp_log_* lines go\n"
               "from debug up.  The files are read from the home: the node "
               "need not run.\n"
               "\n"
               "  --home DIR      the node's home (default ./hyperc-home)\n"
               "  -f, --follow    then print lines as they are written, "
               "across rotations,\n"
               "                  until Ctrl-C (waits for a file not made "
               "yet)\n"
               "  -n, --lines N   only the last N lines (default: all)\n"
               "\n"
               "Exit status: 0, 1 when there is no such log, 2 on bad "
               "arguments.\n");
}

static volatile sig_atomic_t logs_stop;

static void logs_on_signal(int sig)
{
    (void)sig;
    logs_stop = 1;
}

/* The bytes of open file fd from `from` to its end (heap, *len); NULL
 * when it cannot be read. */
static char *read_fd_from(int fd, long long from, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL)
            abort();
        ssize_t r = pread(fd, buf + n, cap - n, (off_t)(from + (long long)n));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL)
                free(buf);
            buf = nb;
        }
    }
    *len = n;
    return buf;
}

/* Where a follow stands: the file open (so that what is written to it
 * before a rotation renames it is still read), the bytes consumed (up to
 * the end of the last whole line), and the last line printed, to find the
 * place again when the file is rewritten in place (a hyperprocess keeps its
 * log under its size by dropping the older half). */
typedef struct follow {
    const char *path;
    int fd; /* -1: not open (not made yet) */
    long long off;
    char *last; /* the last whole line printed, with its '\n'; NULL: none */
} follow;

/* Print the whole lines of buf[0, n) and return how many bytes they take
 * (a line not ended yet waits for its end); keep the last in fw->last.
 * only >= 0: print only the last that many. */
static size_t print_lines(follow *fw, const char *buf, size_t n, long long only)
{
    const char *end = buf + n;
    while (end > buf && end[-1] != '\n')
        end--;
    if (end == buf)
        return 0;
    const char *start = buf;
    if (only == 0) {
        start = end;
    } else if (only > 0) {
        /* just after the (N+1)th '\n' from the end, the last one first */
        long long seen = 0;
        for (const char *p = end; p > buf;)
            if (*--p == '\n' && ++seen == only + 1) {
                start = p + 1;
                break;
            }
    }
    fwrite(start, 1, (size_t)(end - start), stdout);
    fflush(stdout);
    const char *ls = end - 1;
    while (ls > buf && ls[-1] != '\n')
        ls--;
    free(fw->last);
    fw->last = malloc((size_t)(end - ls) + 1);
    if (fw->last == NULL)
        abort();
    memcpy(fw->last, ls, (size_t)(end - ls));
    fw->last[end - ls] = '\0';
    return (size_t)(end - buf);
}

/* Print what the open file has past fw->off (only >= 0: its last lines). */
static void follow_read(follow *fw, long long only)
{
    size_t n;
    char *add = read_fd_from(fw->fd, fw->off, &n);
    if (add == NULL)
        return;
    fw->off += (long long)print_lines(fw, add, n, only);
    free(add);
}

/* The file is shorter than what was read: it was rewritten in place.  Go
 * on after the last line printed if it still holds it, else from its
 * start. */
static void follow_rewritten(follow *fw)
{
    size_t n;
    char *all = read_fd_from(fw->fd, 0, &n);
    if (all == NULL)
        return;
    long long at = 0;
    if (fw->last) {
        size_t ll = strlen(fw->last);
        const char *p = all, *hit;
        while ((hit = memmem(p, n - (size_t)(p - all), fw->last, ll))) {
            if (hit == all || hit[-1] == '\n')
                at = (long long)(hit - all) + (long long)ll;
            p = hit + 1;
        }
    }
    fw->off = at;
    free(all);
    follow_read(fw, -1);
}

/* The node rotates its log as node.log -> node.log.1 -> node.log.2 ...:
 * when it did so more than once between two looks, whole files lie
 * between the one read (inode `was`, now node.log.K) and the new
 * node.log.  Print them, oldest first. */
static void follow_rotated(follow *fw, ino_t was)
{
    int k = 0;
    for (int i = 1; i <= 64 && k == 0; i++) {
        char *p = hcl_fmt("%s.%d", fw->path, i);
        struct stat st;
        if (stat(p, &st) == 0 && st.st_ino == was)
            k = i;
        free(p);
    }
    for (int i = k - 1; i >= 1; i--) {
        char *p = hcl_fmt("%s.%d", fw->path, i);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        free(p);
        size_t n;
        char *all = fd >= 0 ? read_fd_from(fd, 0, &n) : NULL;
        if (all)
            print_lines(fw, all, n, -1);
        free(all);
        if (fd >= 0)
            close(fd);
    }
}

/* One look: what was added, and whether the file was rotated (another
 * file is at the path now: the rest of the old one, then the new one from
 * its start) or rewritten shorter. */
static void follow_step(follow *fw)
{
    struct stat at, open_st;
    bool there = stat(fw->path, &at) == 0;
    if (fw->fd < 0) {
        if (!there || (fw->fd = open(fw->path, O_RDONLY | O_CLOEXEC)) < 0)
            return;
        fw->off = 0;
    }
    if (fstat(fw->fd, &open_st) != 0)
        return;
    if (open_st.st_size < fw->off) {
        /* a rewrite truncates, then writes: let it finish */
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
        follow_rewritten(fw);
        return;
    }
    follow_read(fw, -1);
    if (there && at.st_ino != open_st.st_ino) {
        close(fw->fd);
        fw->fd = -1;
        follow_rotated(fw, open_st.st_ino);
        follow_step(fw); /* the new file, from its start */
    }
}

/* DIR/vfs/<package>:<publisher>/log/<process>.log for "p:k:pub", NULL
 * (said on stderr) when pid is not such an id. */
static char *process_log_path(const char *home, const char *pid)
{
    const char *c1 = strchr(pid, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c1 == NULL || c2 == NULL || c1 == pid || c2 == c1 + 1 ||
        c2[1] == '\0' || strchr(c2 + 1, ':') != NULL || strchr(pid, '/') ||
        pid[0] == '.') {
        fprintf(stderr,
                "hyperc logs: '%s' is not a process id "
                "(process:package:publisher)\n",
                pid);
        return NULL;
    }
    return hcl_fmt("%s/vfs/%s/log/%.*s.log", home, c1 + 1, (int)(c1 - pid),
                   pid);
}

int hcl_cmd_logs(int argc, char **argv)
{
    enum { O_HOME = 256 };
    static const struct option opts[] = {
        {"home", required_argument, NULL, O_HOME},
        {"follow", no_argument, NULL, 'f'},
        {"lines", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *home = "hyperc-home";
    bool follow_on = false;
    long long lines = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hfn:", opts, NULL)) != -1) {
        switch (c) {
        case O_HOME: home = optarg; break;
        case 'f': follow_on = true; break;
        case 'n': {
            char *end;
            errno = 0;
            lines = strtoll(optarg, &end, 10);
            if (errno || *optarg == '\0' || *end != '\0' || lines < 0) {
                fprintf(stderr, "hyperc logs: --lines needs a count (an "
                                "integer >= 0)\n");
                return 2;
            }
            break;
        }
        case 'h': usage_logs(stdout); return 0;
        default: usage_logs(stderr); return 2;
        }
    }
    if (argc - optind > 1) {
        usage_logs(stderr);
        return 2;
    }
    const char *pid = optind < argc ? argv[optind] : NULL;
    char *path =
        pid ? process_log_path(home, pid) : hcl_fmt("%s/log/node.log", home);
    if (path == NULL)
        return 2;
    follow fw = {.path = path, .fd = open(path, O_RDONLY | O_CLOEXEC)};
    if (fw.fd < 0) {
        if (!follow_on || errno != ENOENT) {
            if (errno != ENOENT)
                fprintf(stderr, "hyperc logs: cannot read %s: %s\n", path,
                        strerror(errno));
            else if (pid)
                fprintf(stderr,
                        "hyperc logs: no log file for %s at %s (a "
                        "hyperprocess writes one once it logs, when its "
                        "manifest lists \"vfs:distro:sys\" in "
                        "request_capabilities; every printout of a process "
                        "is in the node's log: `hyperc logs --home %s`)\n",
                        pid, path, home);
            else
                fprintf(stderr,
                        "hyperc logs: no node log at %s (is %s the home of a "
                        "node? --home says where)\n",
                        path, home);
            free(path);
            return 1;
        }
        fprintf(stderr, "hyperc logs: waiting for %s\n", path);
    } else {
        follow_read(&fw, lines);
    }
    if (follow_on) {
        struct sigaction sa = {.sa_handler = logs_on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        while (!logs_stop) {
            struct timespec ts = {0, 200 * 1000000};
            nanosleep(&ts, NULL);
            follow_step(&fw);
        }
    }
    if (fw.fd >= 0)
        close(fw.fd);
    free(fw.last);
    free(path);
    return 0;
}
