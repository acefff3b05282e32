/* Terminal printouts and the node's log file. */
#include "node_impl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int hcn_log_open(hcn_log *l, const char *home, int level)
{
    pthread_mutex_init(&l->mu, NULL);
    l->level = level;
    l->color = isatty(STDERR_FILENO);
    char *dir = hcn_xasprintf("%s/log", home);
    int rc = hcn_mkdirs(dir);
    char *path = hcn_xasprintf("%s/node.log", dir);
    l->file = rc == 0 ? fopen(path, "a") : NULL;
    free(dir);
    free(path);
    if (l->file == NULL)
        return -1;
    setvbuf(l->file, NULL, _IOLBF, 0);
    return 0;
}

void hcn_log_close(hcn_log *l)
{
    if (l->file)
        fclose(l->file);
    l->file = NULL;
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
    if (l->file)
        fprintf(l->file, "%s [%d] %s: %s\n", stamp, v, who, text);
    if (verbosity <= shown_level) {
        if (l->color && v > 0)
            fprintf(stderr, "%s%s %s: %s\033[0m\n", colors[v], stamp, who,
                    text);
        else
            fprintf(stderr, "%s %s: %s\n", stamp, who, text);
    }
    pthread_mutex_unlock(&l->mu);
}

void hcn_logf(hcn_node *n, int verbosity, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    hcn_log_write(&n->log, "kernel", verbosity, n->log.level, buf);
}
