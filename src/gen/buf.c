/* The growing string the generator's writers share (gen.h). */
#include "gen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void hcg_buf_add(hcg_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        char *ns = realloc(b->s, b->cap);
        if (ns == NULL)
            abort();
        b->s = ns;
    }
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

char *hcg_buf_take(hcg_buf *b)
{
    if (b->s == NULL)
        hcg_buf_add(b, "%s", "");
    return b->s;
}

char *hcg_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    hcg_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        hcg_buf_add(&b, "%.*s", (int)n, chunk);
    fclose(f);
    return hcg_buf_take(&b);
}
