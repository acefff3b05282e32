/* The guest's cost a message under wasm2c (bench/wasm/guest/run): the RPC
 * benchmark's callee as a component's core module (rpcponger.opt.wasm,
 * asyncify included), translated to C by Debian's wasm2c with the module
 * name "guest" and compiled with this file and wabt's runtime.  Its
 * imports here lower the same request as native.c's host table gives, in
 * the canonical ABI (src/common/cabi_layout.h), each string through the
 * guest's cabi_realloc, and read its answers from its memory.
 *
 *   guest_w2c <messages> <warm-up messages>
 *
 * prints one JSON line as native.c does.  A trap ends it with its reason. */
#include "guest.h"
#include "wasm-rt-impl.h"

#include "common/cabi_layout.h"
#include "count.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The instances of the imported interfaces: this file's, no state. */
struct Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0_instance_t {
    int unused;
};
struct Z_wasiZ3AclocksZ2FmonotonicZ2DclockZ400Z2E2Z2E0_instance_t {
    int unused;
};
struct Z_wasiZ3AclocksZ2FwallZ2DclockZ400Z2E2Z2E0_instance_t {
    int unused;
};
struct Z_wasiZ3ArandomZ2FrandomZ400Z2E2Z2E0_instance_t {
    int unused;
};
typedef struct Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0_instance_t hwi;

static Z_guest_instance_t G;

static void die(const char *what)
{
    fprintf(stderr, "guest_w2c: %s\n", what);
    exit(1);
}

/* The memory as it is now (cabi_realloc may grow it). */
static uint8_t *mem(void)
{
    return Z_guestZ_memory(&G)->data;
}

static void w8(u32 at, uint8_t v)
{
    mem()[at] = v;
}
static void w32(u32 at, u32 v)
{
    memcpy(mem() + at, &v, 4);
}
static void w64(u32 at, u64 v)
{
    memcpy(mem() + at, &v, 8);
}

/* A string at `at`: (ptr, len), its bytes in a block of the guest's. */
static void wstr(u32 at, const char *s, size_t n)
{
    u32 p = Z_guestZ_cabi_realloc(&G, 0, 0, 1, (u32)n);
    memcpy(mem() + p, s, n);
    w32(at + CW_LIST_PTR, p);
    w32(at + CW_LIST_LEN, (u32)n);
}

static void waddr(u32 at, const char *node, const char *name)
{
    wstr(at + CW_ADDR_NODE, node, strlen(node));
    wstr(at + CW_ADDR_PROCESS + CW_PID_NAME, name, strlen(name));
    wstr(at + CW_ADDR_PROCESS + CW_PID_PACKAGE, "rpcbench", 8);
    wstr(at + CW_ADDR_PROCESS + CW_PID_PUBLISHER, "bench.os", 8);
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_receive(hwi *h, u32 ret)
{
    (void)h;
    count_receive("wasm2c");
    memset(mem() + ret, 0, CW_RECEIVE_RESULT_SIZE);
    w8(ret, 0); /* ok */
    u32 src = ret + CW_RESULT_PAYLOAD;
    waddr(src, "bench.os", "rpcpinger");
    u32 msg = src + CW_SOURCE_MESSAGE_MESSAGE;
    w8(msg, 0); /* a request */
    u32 rq = msg + CW_MESSAGE_PAYLOAD;
    w8(rq + CW_REQUEST_INHERIT, 0);
    w8(rq + CW_REQUEST_EXPECTS, 1);
    w64(rq + CW_REQUEST_EXPECTS + CW_OPT_U64_VAL, 30);
    char body[40];
    int bl = snprintf(body, sizeof body, "{\"Pong\":%ld}", n_recv);
    wstr(rq + CW_REQUEST_BODY, body, (size_t)bl);
    w8(rq + CW_REQUEST_METADATA, 0);
    u32 caps = Z_guestZ_cabi_realloc(&G, 0, 0, CW_CAP_ALIGN, 0);
    w32(rq + CW_REQUEST_CAPS + CW_LIST_PTR, caps);
    w32(rq + CW_REQUEST_CAPS + CW_LIST_LEN, 0);
}

/* The 14 flat parameters: inherit, body, metadata, capabilities, blob. */
void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_sendZ2Dresponse(
    hwi *h, u32 inherit, u32 body, u32 body_len, u32 meta_tag, u32 meta,
    u32 meta_len, u32 caps, u32 caps_len, u32 blob_tag, u32 mime_tag, u32 mime,
    u32 mime_len, u32 bytes, u32 bytes_len)
{
    (void)h, (void)inherit, (void)meta_tag, (void)meta, (void)meta_len;
    (void)caps, (void)caps_len, (void)blob_tag, (void)mime_tag, (void)mime;
    (void)mime_len, (void)bytes, (void)bytes_len;
    n_answers++;
    const uint8_t *b = mem() + body;
    for (u32 i = 0; i < body_len; i++)
        answer_sum += b[i];
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_our(hwi *h, u32 ret)
{
    (void)h;
    waddr(ret, "bench.os", "rpcponger");
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_getZ2Dblob(hwi *h, u32 ret)
{
    (void)h;
    w8(ret, 0);
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_lastZ2Dblob(hwi *h, u32 ret)
{
    (void)h;
    w8(ret, 0);
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_getZ2Dstate(hwi *h, u32 ret)
{
    (void)h;
    w8(ret, 0);
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_setZ2Dstate(hwi *h, u32 p,
                                                               u32 n)
{
    (void)h, (void)p, (void)n;
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_setZ2DonZ2Dexit(hwi *h,
                                                                   u32 a, u32 b,
                                                                   u32 c)
{
    (void)h, (void)a, (void)b, (void)c;
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_printZ2DtoZ2Dterminal(
    hwi *h, u32 level, u32 p, u32 n)
{
    (void)h;
    (void)level;
    fprintf(stderr, "guest_w2c: the process says: %.*s\n", (int)n,
            (const char *)mem() + p);
}

void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_sendZ2Drequest(hwi *h, u32 p)
{
    (void)h, (void)p;
    die("the process sent a request");
}

/* Its only call: the log's drive at init (vfs), answered offline, so it
 * logs to the terminal alone. */
void Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_sendZ2DandZ2DawaitZ2Dresponse(
    hwi *h, u32 params, u32 ret)
{
    (void)h;
    (void)params;
    memset(mem() + ret, 0, CW_AWAIT_RESULT_SIZE);
    w8(ret, 1); /* err */
    u32 e = ret + CW_RESULT_PAYLOAD;
    w8(e, 0); /* offline */
    waddr(e + CW_SEND_ERROR_TARGET, "bench.os", "vfs");
    w8(e + CW_SEND_ERROR_MESSAGE, 0);
    w8(e + CW_SEND_ERROR_BLOB, 0);
}

u64 Z_wasiZ3AclocksZ2FmonotonicZ2DclockZ400Z2E2Z2E0Z_now(
    struct Z_wasiZ3AclocksZ2FmonotonicZ2DclockZ400Z2E2Z2E0_instance_t *i)
{
    (void)i;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (u64)t.tv_sec * 1000000000u + (u64)t.tv_nsec;
}

void Z_wasiZ3AclocksZ2FwallZ2DclockZ400Z2E2Z2E0Z_now(
    struct Z_wasiZ3AclocksZ2FwallZ2DclockZ400Z2E2Z2E0_instance_t *i, u32 ret)
{
    (void)i;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    w64(ret, (u64)t.tv_sec);
    w32(ret + 8, (u32)t.tv_nsec);
}

u64 Z_wasiZ3ArandomZ2FrandomZ400Z2E2Z2E0Z_getZ2DrandomZ2Du64(
    struct Z_wasiZ3ArandomZ2FrandomZ400Z2E2Z2E0_instance_t *i)
{
    (void)i;
    static u64 x = 0x9e3779b97f4a7c15u; /* a bench needs no entropy */
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (n_timed = atol(argv[1])) <= 0 ||
        (n_warm = atol(argv[2])) < 0)
        die("usage: guest_w2c <messages> <warm-up>");
    static struct Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0_instance_t hw;
    static struct Z_wasiZ3AclocksZ2FmonotonicZ2DclockZ400Z2E2Z2E0_instance_t mc;
    static struct Z_wasiZ3AclocksZ2FwallZ2DclockZ400Z2E2Z2E0_instance_t wc;
    static struct Z_wasiZ3ArandomZ2FrandomZ400Z2E2Z2E0_instance_t rnd;
    wasm_rt_init();
    Z_guest_init_module();
    Z_guest_instantiate(&G, &hw, &mc, &wc, &rnd);
    wasm_rt_trap_t trap = wasm_rt_impl_try();
    if (trap != WASM_RT_TRAP_NONE)
        die(wasm_rt_strerror(trap));
    Z_guestZ__initialize(&G);
    static const char our[] = "rpcponger:rpcbench:bench.os@bench.os";
    u32 p = Z_guestZ_cabi_realloc(&G, 0, 0, 1, sizeof our - 1);
    memcpy(mem() + p, our, sizeof our - 1);
    Z_guestZ_init(&G, p, sizeof our - 1);
    die("the process returned before its last message");
}
