/* Terminal printouts and the node's log file. */
#include "base.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int hcn_log_open(hcn_log *l, const char *home, int level, uint64_t max_bytes,
                 uint32_t files)
{
    pthread_mutex_init(&l->mu, NULL);
    l->level = level;
    l->color = isatty(STDERR_FILENO);
    l->max_bytes = max_bytes;
    l->files = files < 1 ? 1 : files;
    char *dir = hcn_xasprintf("%s/log", home);
    int rc = hcn_mkdirs(dir);
    l->path = hcn_xasprintf("%s/node.log", dir);
    free(dir);
    l->file = rc == 0 ? fopen(l->path, "a") : NULL;
    if (l->file == NULL)
        return -1;
    setvbuf(l->file, NULL, _IOLBF, 0);
    long at = ftell(l->file);
    l->size = at > 0 ? (uint64_t)at : 0;
    return 0;
}

/* node.log -> node.log.1 -> ... -> node.log.<files-1>; the oldest goes.
 * Called with the lock held. */
static void rotate(hcn_log *l)
{
    fclose(l->file);
    for (uint32_t i = l->files - 1; i >= 1; i--) {
        char *from = i == 1 ? hcn_xstrdup(l->path)
                            : hcn_xasprintf("%s.%u", l->path, i - 1);
        char *to = hcn_xasprintf("%s.%u", l->path, i);
        rename(from, to);
        free(from);
        free(to);
    }
    if (l->files == 1)
        unlink(l->path);
    l->file = fopen(l->path, "a");
    if (l->file)
        setvbuf(l->file, NULL, _IOLBF, 0);
    l->size = 0;
}

void hcn_log_close(hcn_log *l)
{
    if (l->file)
        fclose(l->file);
    l->file = NULL;
    free(l->path);
    l->path = NULL;
    pthread_mutex_destroy(&l->mu);
}

void hcn_log_write(hcn_log *l, const char *who, int verbosity, int shown_level,
                   const char *text)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%a %H:%M:%S", &tm);
    static const char *const colors[] = {"", "\033[36m", "\033[35m",
                                         "\033[33m"};
    int v = verbosity < 0 ? 0 : verbosity > 3 ? 3 : verbosity;
    pthread_mutex_lock(&l->mu);
    if (l->file) {
        int w = fprintf(l->file, "%s [%d] %s: %s\n", stamp, v, who, text);
        l->size += w > 0 ? (uint64_t)w : 0;
        if (l->max_bytes && l->size >= l->max_bytes)
            rotate(l);
    }
    if (verbosity <= shown_level) {
        if (l->color && v > 0)
            fprintf(stderr, "%s%s %s: %s\033[0m\n", colors[v], stamp, who,
                    text);
        else
            fprintf(stderr, "%s %s: %s\n", stamp, who, text);
    }
    pthread_mutex_unlock(&l->mu);
}
