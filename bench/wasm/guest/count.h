/* What native.c and w2c.c share (bench/wasm/guest/run): the count of
 * requests handed out and answers taken, and at the last request the
 * figures, one JSON line on stdout, and the end of the program. */
#ifndef BENCH_WASM_GUEST_COUNT_H
#define BENCH_WASM_GUEST_COUNT_H

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static long n_timed, n_warm, n_recv, n_answers;
static unsigned long long answer_sum;
static struct timespec t0;

/* Called at each receive before the request is made: starts the clock
 * after the warm-up, and after the last request prints the figures of
 * `runtime` and ends the program (the guest is left in its receive). */
static void count_receive(const char *runtime)
{
    if (n_recv == n_warm)
        clock_gettime(CLOCK_MONOTONIC, &t0);
    if (n_recv == n_warm + n_timed) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double ns = (double)(t.tv_sec - t0.tv_sec) * 1e9 +
                    (double)(t.tv_nsec - t0.tv_nsec);
        printf("{\"runtime\": \"%s\", \"n\": %ld, \"ns_per_msg\": %.1f, "
               "\"answers\": %ld, \"sum\": %llu}\n",
               runtime, n_timed, ns / (double)n_timed, n_answers, answer_sum);
        fflush(stdout);
        _exit(0);
    }
    n_recv++;
}

#endif
