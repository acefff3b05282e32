/* Naming where a worker crashed: the return addresses it reported, mapped
 * to the objects it had loaded, named by binutils' addr2line (function,
 * file and line from the object's debug information; "??" without it). */
#include "kernel_int.h"

#include "../../worker/proto.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct frame {
    int module; /* index in c->modules, -1 = unknown */
    uint64_t off;
    char *fn, *line; /* the innermost function there, inlined or not */
    char *inl;       /* ", inlined in F (file:line)" for each function it is
                      * inlined in, outwards; NULL if none */
} frame;

/* The loaded object holding pc: the one with the highest base at or
 * below it. */
static int module_of(const hcw_crash *c, uint64_t pc)
{
    int best = -1;
    for (size_t i = 0; i < c->nmodules; i++)
        if (c->modules[i].base <= pc &&
            (best < 0 || c->modules[i].base > c->modules[best].base))
            best = (int)i;
    return best;
}

static bool known(const char *s)
{
    /* addr2line's unknowns: "??", "??:0", "??:?", and ":?" (code without
     * a file, as an assembly trampoline) */
    return s && strcmp(s, "??") != 0 && strncmp(s, "??:", 3) != 0 &&
           s[0] != ':';
}

/* Run addr2line on `path` for the frames of module m; fills fn and line. */
static void name_frames(const char *path, frame *fr, size_t n, int m)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += fr[i].module == m;
    if (k == 0)
        return;
    char **argv = hcn_xcalloc(k + 8, sizeof *argv);
    size_t a = 0;
    argv[a++] = (char *)"addr2line";
    argv[a++] = (char *)"-a"; /* each address's lines start with it */
    argv[a++] = (char *)"-i"; /* the functions inlined there, innermost first */
    argv[a++] = (char *)"-f";
    argv[a++] = (char *)"-C";
    argv[a++] = (char *)"-e";
    argv[a++] = (char *)path;
    for (size_t i = 0; i < n; i++)
        if (fr[i].module == m)
            argv[a++] = hcn_xasprintf("%#llx", (unsigned long long)fr[i].off);
    int pfd[2];
    if (pipe(pfd) != 0)
        goto out;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 0, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "addr2line", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        goto out;
    }
    FILE *in = fdopen(pfd[0], "r");
    char *buf = NULL, *fn = NULL;
    char *last = NULL; /* the frame's outermost function so far */
    size_t cap = 0;
    ssize_t got;
    size_t i = 0;
    bool started = false;
    /* per address: "0x<address>", then (function, file:line) pairs, the
     * innermost first and the function they are inlined in last; an
     * address line starts the next frame wherever it comes (no function
     * name starts with "0x") */
    while (in && (got = getline(&buf, &cap, in)) >= 0) {
        buf[strcspn(buf, "\n")] = '\0';
        if (strncmp(buf, "0x", 2) == 0) {
            if (started)
                i++;
            while (i < n && fr[i].module != m)
                i++;
            started = true;
            free(fn);
            fn = NULL;
            continue;
        }
        if (!started || i >= n)
            break;
        if (fn == NULL) {
            fn = hcn_xstrdup(buf);
            continue;
        }
        /* "file:line (discriminator N)" -> "file:line", last path part */
        char *sp = strchr(buf, ' ');
        if (sp)
            *sp = '\0';
        const char *slash = strrchr(buf, '/');
        const char *line = slash ? slash + 1 : buf;
        if (fr[i].fn == NULL) {
            fr[i].fn = fn;
            fr[i].line = hcn_xstrdup(line);
            free(last);
            last = hcn_xstrdup(fn);
        } else if (strcmp(fn, last) == 0) {
            /* the same function again (a part the compiler split out of
             * it, inlined back): once, at its innermost known line */
            if (fr[i].inl == NULL && !known(fr[i].line) && known(line)) {
                free(fr[i].line);
                fr[i].line = hcn_xstrdup(line);
            }
            free(fn);
        } else {
            char *more = hcn_xasprintf("%s, inlined in %s (%s)",
                                       fr[i].inl ? fr[i].inl : "", fn,
                                       known(line) ? line : "??");
            free(fr[i].inl);
            fr[i].inl = more;
            free(last);
            last = fn;
        }
        fn = NULL;
    }
    free(fn);
    free(last);
    free(buf);
    if (in)
        fclose(in);
    else
        close(pfd[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
out:
    for (size_t j = 7; j < a; j++)
        free(argv[j]);
    free(argv);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

void hcn_symbolize(const hcw_crash *c, bool first_exact, const char *binary,
                   char *where, size_t wl, char **trace)
{
    *trace = NULL;
    snprintf(where, wl, "an unknown place");
    if (c->npcs == 0)
        return;
    frame *fr = hcn_xcalloc(c->npcs, sizeof *fr);
    for (size_t i = 0; i < c->npcs; i++) {
        fr[i].module = module_of(c, c->pcs[i]);
        /* a return address: its call is the byte before (but a signal's
         * first frame is the interrupted instruction itself) */
        uint64_t pc =
            c->pcs[i] && !(i == 0 && first_exact) ? c->pcs[i] - 1 : c->pcs[i];
        fr[i].off = fr[i].module >= 0 ? pc - c->modules[fr[i].module].base : pc;
    }
    for (size_t m = 0; m < c->nmodules; m++)
        name_frames(c->modules[m].path, fr, c->npcs, (int)m);
    /* The guest's own frames start below the worker's handler: the first
     * frame in a known object other than the worker's signal path. */
    size_t first = 0;
    for (size_t i = 0; i < c->npcs; i++)
        if (fr[i].fn && strcmp(fr[i].fn, "__restore_rt") == 0)
            first = i + 1;
    int in_binary = -1;
    for (size_t i = first; i < c->npcs && in_binary < 0; i++)
        if (fr[i].module >= 0 &&
            strcmp(base_name(c->modules[fr[i].module].path),
                   base_name(binary)) == 0 &&
            known(fr[i].fn))
            in_binary = (int)i;
    int pick = in_binary;
    for (size_t i = first; i < c->npcs && pick < 0; i++)
        if (known(fr[i].fn))
            pick = (int)i;
    if (pick >= 0) {
        int w = snprintf(where, wl, "%s (%s)", fr[pick].fn,
                         known(fr[pick].line) ? fr[pick].line
                                              : "no line information");
        if (fr[pick].inl != NULL && w > 0 && (size_t)w < wl)
            snprintf(where + w, wl - (size_t)w, "%s", fr[pick].inl);
    }
    size_t cap = 256, used = 0;
    for (size_t i = 0; i < c->npcs; i++)
        cap += 96 + (fr[i].fn ? strlen(fr[i].fn) : 0) +
               (fr[i].line ? strlen(fr[i].line) : 0) +
               (fr[i].inl ? strlen(fr[i].inl) : 0) +
               (fr[i].module >= 0
                    ? strlen(base_name(c->modules[fr[i].module].path))
                    : 0);
    char *t = hcn_xmalloc(cap);
    t[0] = '\0';
    for (size_t i = first; i < c->npcs; i++) {
        const char *mod =
            fr[i].module >= 0 ? base_name(c->modules[fr[i].module].path) : "?";
        int w = snprintf(
            t + used, cap - used, "  #%zu %s (%s)%s [%s+%#llx]%s", i - first,
            known(fr[i].fn) ? fr[i].fn : "??",
            known(fr[i].line) ? fr[i].line : "??", fr[i].inl ? fr[i].inl : "",
            mod, (unsigned long long)fr[i].off, i + 1 < c->npcs ? "\n" : "");
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
    *trace = t;
    for (size_t i = 0; i < c->npcs; i++) {
        free(fr[i].fn);
        free(fr[i].line);
        free(fr[i].inl);
    }
    free(fr);
}
