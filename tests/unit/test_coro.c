/* The coroutine layer of libhyperc (src/guest/coro.h): switching between the
 * scheduler and coroutines, registers kept across switches, many live
 * coroutines, stack sizes, the guard below each stack.
 *
 * Self-contained (no node headers), so that scripts/test-aarch64.sh can
 * cross-build it with the coroutine sources alone, with HYPERC_CMOCKA_SHIM
 * standing in for cmocka. */
#ifdef HYPERC_CMOCKA_SHIM
#include "cmocka_shim.h"
#else
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#endif

#include "guest/coro.h"

#include <errno.h>
#include <fenv.h>
#include <limits.h>
#include <setjmp.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ ping-pong */

typedef struct pp {
    int id;
    int steps;
    int *log; /* shared: who ran, in order */
    int *nlog;
} pp;

static void pp_fn(void *arg)
{
    pp *c = arg;
    for (int i = 0; i < c->steps; i++) {
        assert_ptr_not_equal(hp__coro_current(), NULL);
        c->log[(*c->nlog)++] = c->id * 100 + i;
        hp__coro_yield();
    }
}

/* Three coroutines resumed round robin: each runs exactly one step per
 * resume, in the order resumed, and is done after its last resume. */
static void ping_pong_round_robin(void **state)
{
    (void)state;
    enum { N = 3, STEPS = 5 };
    int log[N * STEPS + 1], nlog = 0;
    pp c[N];
    hp__coro *co[N];
    for (int i = 0; i < N; i++) {
        c[i] = (pp){i + 1, STEPS, log, &nlog};
        co[i] = hp__coro_create(0, pp_fn, &c[i]);
        assert_non_null(co[i]);
        assert_false(hp__coro_done(co[i]));
    }
    assert_null(hp__coro_current());
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < N; i++) {
            hp__coro_resume(co[i]);
            assert_null(hp__coro_current());
            assert_int_equal(nlog, step * N + i + 1);
            assert_int_equal(log[nlog - 1], (i + 1) * 100 + step);
            assert_false(hp__coro_done(co[i]));
        }
    }
    /* One more resume each: the loop ends, the function returns. */
    for (int i = 0; i < N; i++) {
        hp__coro_resume(co[i]);
        assert_true(hp__coro_done(co[i]));
    }
    assert_int_equal(nlog, N * STEPS);
    for (int i = 0; i < N; i++)
        hp__coro_free(co[i]);
}

/* Resume order is the scheduler's choice: a reverse and an uneven order
 * give exactly that interleaving. */
static void resume_order_is_the_schedulers(void **state)
{
    (void)state;
    enum { N = 4 };
    int log[64], nlog = 0;
    pp c[N];
    hp__coro *co[N];
    for (int i = 0; i < N; i++) {
        c[i] = (pp){i, 3, log, &nlog};
        co[i] = hp__coro_create(0, pp_fn, &c[i]);
    }
    const int order[] = {3, 2, 1, 0, 0, 0, 3, 1, 2, 2, 1, 3};
    const int want[] = {300, 200, 100, 0, 1, 2, 301, 101, 201, 202, 102, 302};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        hp__coro_resume(co[order[k]]);
    assert_int_equal(nlog, 12);
    for (int k = 0; k < 12; k++)
        assert_int_equal(log[k], want[k]);
    assert_false(hp__coro_done(co[0])); /* ran 3 steps, not yet returned */
    hp__coro_resume(co[0]);
    assert_true(hp__coro_done(co[0]));
    for (int i = 0; i < N; i++)
        hp__coro_free(co[i]); /* three of them suspended */
}

/* ----------------------------------------------- values across switches */

typedef struct regs {
    long out_i;
    double out_d;
    int round_seen;
    volatile double third; /* 1/3 computed in the coroutine's rounding */
} regs;

/* Many integer and floating-point values live across each yield, so the
 * compiler keeps some in callee-saved registers (rbx, r12-r15; x19-x28,
 * d8-d15) and must find them intact. */
static void regs_fn(void *arg)
{
    regs *r = arg;
    volatile long seed = 7;
    long a = seed, b = a * 3, c = b + 11, d = c * 5, e = d - 2, f = e * 7;
    double x = (double)seed / 2, y = x * 1.5, z = y + 0.25, w = z * 3.5,
           u = w - 1.125, v = u * 0.5, s = v + x, t = s * y;
    fesetround(FE_UPWARD);
    for (int i = 0; i < 10; i++) {
        hp__coro_yield();
        /* The rounding mode set here survives the scheduler's own. */
        r->round_seen = fegetround();
        volatile double one = 1.0, three = 3.0;
        r->third = one / three;
        a += b;
        b ^= c;
        c += d;
        d -= e;
        e += f;
        f ^= a;
        x += y;
        y *= 1.0625;
        z -= w * 0.125;
        w += u;
        u *= 0.9375;
        v += s;
        s -= t * 0.0625;
        t += x;
    }
    fesetround(FE_TONEAREST);
    r->out_i = a + b + c + d + e + f;
    r->out_d = x + y + z + w + u + v + s + t;
}

/* The same computation on one stack, for the expected values. */
static void regs_plain(long *oi, double *od)
{
    volatile long seed = 7;
    long a = seed, b = a * 3, c = b + 11, d = c * 5, e = d - 2, f = e * 7;
    double x = (double)seed / 2, y = x * 1.5, z = y + 0.25, w = z * 3.5,
           u = w - 1.125, v = u * 0.5, s = v + x, t = s * y;
    fesetround(FE_UPWARD);
    for (int i = 0; i < 10; i++) {
        a += b;
        b ^= c;
        c += d;
        d -= e;
        e += f;
        f ^= a;
        x += y;
        y *= 1.0625;
        z -= w * 0.125;
        w += u;
        u *= 0.9375;
        v += s;
        s -= t * 0.0625;
        t += x;
    }
    fesetround(FE_TONEAREST);
    *oi = a + b + c + d + e + f;
    *od = x + y + z + w + u + v + s + t;
}

static void registers_preserved(void **state)
{
    (void)state;
    long want_i;
    double want_d;
    regs_plain(&want_i, &want_d);

    regs r = {0};
    hp__coro *co = hp__coro_create(0, regs_fn, &r);
    /* The scheduler's own live values, and its rounding mode. */
    volatile double seed = 1.25;
    double p = seed, q = p * 2, m = q + 0.5, k = m * 3;
    long li = (long)(seed * 8), lj = li * 3, lk = lj + 5;
    int rounds = 0;
    while (!hp__coro_done(co)) {
        hp__coro_resume(co);
        assert_int_equal(fegetround(), FE_TONEAREST);
        volatile double one = 1.0, three = 3.0;
        double near = one / three;
        if (!hp__coro_done(co) && rounds > 0) {
            assert_int_equal(r.round_seen, FE_UPWARD);
            assert_true(r.third > near); /* rounded up there, not here */
        }
        p += q;
        q *= 1.5;
        m -= k * 0.25;
        k += p;
        li += lj;
        lj ^= lk;
        lk += li;
        rounds++;
    }
    assert_int_equal(rounds, 11);
    assert_int_equal(r.out_i, want_i);
    /* Equal up to how the compiler contracted each copy into fused
     * multiply-adds; a clobbered register is off by far more. */
    assert_true(fabs(r.out_d - want_d) <= 1e-12 * fabs(want_d));
    /* The scheduler's values, recomputed on one stack. */
    double p2 = seed, q2 = p2 * 2, m2 = q2 + 0.5, k2 = m2 * 3;
    long li2 = (long)(seed * 8), lj2 = li2 * 3, lk2 = lj2 + 5;
    for (int i = 0; i < 11; i++) {
        p2 += q2;
        q2 *= 1.5;
        m2 -= k2 * 0.25;
        k2 += p2;
        li2 += lj2;
        lj2 ^= lk2;
        lk2 += li2;
    }
    assert_true(p == p2 && q == q2 && m == m2 && k == k2);
    assert_true(li == li2 && lj == lj2 && lk == lk2);
    hp__coro_free(co);
}

/* setjmp/longjmp inside a coroutine, across a yield (the sanitizers must
 * know which stack the coroutine is on). */
static jmp_buf *jb_target;

static void jump_back(void)
{
    longjmp(*jb_target, 7);
}

static void jumper_fn(void *arg)
{
    int *out = arg;
    jmp_buf jb;
    jb_target = &jb;
    int v = setjmp(jb);
    if (v == 0) {
        hp__coro_yield();
        jump_back();
    }
    *out = v;
}

static void longjmp_inside_a_coroutine(void **state)
{
    (void)state;
    int out = 0;
    hp__coro *co = hp__coro_create(0, jumper_fn, &out);
    hp__coro_resume(co);
    hp__coro_resume(co);
    assert_true(hp__coro_done(co));
    assert_int_equal(out, 7);
    hp__coro_free(co);
}

/* ------------------------------------------------- many live coroutines */

typedef struct many {
    unsigned id;
    unsigned out;
} many;

static void many_fn(void *arg)
{
    many *m = arg;
    unsigned local = m->id * 2654435761u; /* lives on this stack */
    hp__coro_yield();
    m->out = local ^ m->id;
}

/* 10,000 coroutines with the smallest stacks, all suspended at once, each
 * with its own stack contents. */
static void ten_thousand_live(void **state)
{
    (void)state;
    enum { N = 10000 };
    many *m = calloc(N, sizeof *m);
    hp__coro **co = calloc(N, sizeof *co);
    assert_non_null(m);
    assert_non_null(co);
    for (unsigned i = 0; i < N; i++) {
        m[i].id = i;
        co[i] = hp__coro_create(HP__CORO_STACK_MIN, many_fn, &m[i]);
        if (co[i] == NULL)
            fail_msg("create #%u: %s", i, strerror(errno));
        hp__coro_resume(co[i]);
        assert_false(hp__coro_done(co[i]));
    }
    /* Finish them in a different order than they started. */
    for (unsigned k = 0; k < N; k++) {
        unsigned i = (k * 7919u) % N;
        hp__coro_resume(co[i]);
        assert_true(hp__coro_done(co[i]));
        assert_int_equal(m[i].out, (i * 2654435761u) ^ i);
    }
    for (unsigned i = 0; i < N; i++)
        hp__coro_free(co[i]);
    free(co);
    free(m);
}

/* -------------------------------------------------- sizes, done, free */

static void nothing_fn(void *arg)
{
    (*(int *)arg)++;
}

static void sizes_done_and_free(void **state)
{
    (void)state;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    int runs = 0;
    hp__coro *a = hp__coro_create(0, nothing_fn, &runs);
    hp__coro *b = hp__coro_create(1, nothing_fn, &runs);
    hp__coro *c =
        hp__coro_create(HP__CORO_STACK_DEFAULT + 1, nothing_fn, &runs);
    assert_int_equal(hp__coro_stack_size(a), HP__CORO_STACK_DEFAULT);
    assert_int_equal(hp__coro_stack_size(b), HP__CORO_STACK_MIN);
    assert_int_equal(hp__coro_stack_size(c), HP__CORO_STACK_DEFAULT + pg);
    assert_false(hp__coro_done(a));
    hp__coro_resume(a); /* runs to the end without yielding */
    assert_true(hp__coro_done(a));
    assert_int_equal(runs, 1);
    hp__coro_free(a);
    hp__coro_free(b); /* never started */
    hp__coro_free(c);
    hp__coro_free(NULL);
    assert_int_equal(runs, 1);
    /* Reuse (the cache) gives a fresh start each time. */
    for (int i = 0; i < 40; i++) {
        hp__coro *d = hp__coro_create(0, nothing_fn, &runs);
        hp__coro_resume(d);
        assert_true(hp__coro_done(d));
        hp__coro_free(d);
    }
    assert_int_equal(runs, 41);
}

/* A coroutine may create, run (through the scheduler) and free others. */
typedef struct spawner {
    hp__coro *child;
    int child_runs;
} spawner;

static void spawner_fn(void *arg)
{
    spawner *s = arg;
    s->child = hp__coro_create(0, nothing_fn, &s->child_runs);
    hp__coro_yield(); /* the scheduler runs the child */
    assert_true(hp__coro_done(s->child));
    hp__coro_free(s->child);
}

static void create_inside_a_coroutine(void **state)
{
    (void)state;
    spawner s = {0};
    hp__coro *co = hp__coro_create(0, spawner_fn, &s);
    hp__coro_resume(co);
    assert_non_null(s.child);
    hp__coro_resume(s.child);
    assert_int_equal(s.child_runs, 1);
    hp__coro_resume(co);
    assert_true(hp__coro_done(co));
    hp__coro_free(co);
}

/* Nearly the whole stack is usable. */
static unsigned deep(unsigned n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    if (n == 0)
        return (unsigned)pad[0];
    return deep(n - 1) + 1 + (unsigned)pad[0] * 0;
}

static void deep_fn(void *arg)
{
    unsigned *n = arg;
    *n = deep(*n);
}

static void stack_is_usable(void **state)
{
    (void)state;
    /* 96 KiB of frames (more with sanitizers' redzones) on a 1 MiB
     * stack, and back. */
    unsigned n = 96;
    hp__coro *co = hp__coro_create(1024 * 1024, deep_fn, &n);
    hp__coro_resume(co);
    assert_true(hp__coro_done(co));
    assert_int_equal(n, 96);
    hp__coro_free(co);
}

/* ------------------------------------------------------------ the guard */

static const char *g_lo;
static size_t g_len;
static int g_adds, g_removes;

static int test_guard_add(const void *lo, size_t len)
{
    g_lo = lo;
    g_len = len;
    return g_adds++;
}

static void test_guard_remove(int handle)
{
    (void)handle;
    g_removes++;
}

/* hp__coro_cache_release unmaps every freed coroutine kept for reuse
 * (their guards go too) and leaves the live ones alone; creating works
 * after it, on a new mapping. */
static void cache_release_unmaps_the_freed(void **state)
{
    (void)state;
    hp__coro_cache_release(); /* what earlier tests left */
    hp__coro_set_guard_hooks(test_guard_add, test_guard_remove);
    int adds = g_adds, removes = g_removes, runs = 0;
    hp__coro *live = hp__coro_create(0, nothing_fn, &runs);
    hp__coro *freed[3];
    for (int i = 0; i < 3; i++) {
        freed[i] = hp__coro_create(0, nothing_fn, &runs);
        assert_non_null(freed[i]);
        hp__coro_resume(freed[i]);
    }
    for (int i = 0; i < 3; i++)
        hp__coro_free(freed[i]);
    assert_int_equal(g_adds - adds, 4);
    assert_int_equal(g_removes, removes); /* cached: still mapped */
    hp__coro_cache_release();
    assert_int_equal(g_removes - removes, 3);
    hp__coro_cache_release(); /* an empty cache: nothing */
    assert_int_equal(g_removes - removes, 3);
    hp__coro *again = hp__coro_create(0, nothing_fn, &runs);
    assert_non_null(again);
    assert_int_equal(g_adds - adds, 5); /* a new mapping */
    hp__coro_resume(again);
    hp__coro_resume(live);
    assert_true(hp__coro_done(live));
    assert_int_equal(runs, 5);
    hp__coro_free(again);
    hp__coro_free(live);
    hp__coro_cache_release();
    assert_int_equal(g_removes - removes, 5);
    hp__coro_set_guard_hooks(NULL, NULL);
}

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    const char *a = si->si_addr;
    /* In the registered guard: the overflow was caught where it should. */
    _exit(a >= g_lo && a < g_lo + g_len ? 42 : 43);
}

static unsigned runaway(unsigned n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    if (n == UINT_MAX) /* never: the guard comes first */
        return 0;
    return runaway(n + 1) + (unsigned)pad[0];
}

static void runaway_fn(void *arg)
{
    (void)arg;
    runaway(0);
}

/* Guards are registered through the hooks, and running off the stack
 * faults inside the registered range (in a child process: the coroutine
 * never comes back). */
static void overflow_hits_the_registered_guard(void **state)
{
    (void)state;
    hp__coro_set_guard_hooks(test_guard_add, test_guard_remove);
    g_adds = g_removes = 0;
    hp__coro *co = hp__coro_create(32 * 1024, runaway_fn, NULL);
    assert_int_equal(g_adds, 1);
    assert_int_equal(g_len, HP__CORO_GUARD);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static char alt[64 * 1024];
        stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
        sigaltstack(&ss, NULL);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = fault_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        hp__coro_resume(co);
        _exit(44); /* not reached */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 42);
    /* Never run here: freeing it is fine.  Drain the cache so the
     * mappings go and their guards are removed. */
    hp__coro_free(co);
    hp__coro *more[40];
    for (int i = 0; i < 40; i++)
        more[i] = hp__coro_create(32 * 1024, nothing_fn, NULL);
    for (int i = 0; i < 40; i++)
        hp__coro_free(more[i]);
    assert_true(g_removes > 0);
    assert_true(g_removes <= g_adds);
    hp__coro_set_guard_hooks(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ping_pong_round_robin),
        cmocka_unit_test(resume_order_is_the_schedulers),
        cmocka_unit_test(registers_preserved),
        cmocka_unit_test(ten_thousand_live),
        cmocka_unit_test(sizes_done_and_free),
        cmocka_unit_test(create_inside_a_coroutine),
        cmocka_unit_test(stack_is_usable),
        cmocka_unit_test(longjmp_inside_a_coroutine),
        cmocka_unit_test(overflow_hits_the_registered_guard),
        cmocka_unit_test(cache_release_unmaps_the_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
