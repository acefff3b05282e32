/* abi_probe: a raw-ABI process that calls every function of
 * include/hyperc/abi.h once, built to a component, for tests/wasm/abi_test.mjs.
 *
 * That test runs the component under a host built by jco (the canonical ABI
 * on the host side is jco's, not ours) whose imports record the arguments
 * they get and return fixed values.  Here each call's inputs are fixed and
 * each output is printed, as one "name: ..." line through
 * print-to-terminal, so the test checks both directions of every function:
 * what the guest lowered (the recorded arguments) and what it lifted (the
 * lines). */
#include <hyperc/abi.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    hw_print_to_terminal(1, line);
}

static const char *addr_str(const hw_address *a, char *buf, size_t n)
{
    hw_address_format(a, buf, n);
    return buf;
}

/* bytes as text, '\0' as '.' */
static const char *bytes_str(const hw_bytes *b, char *buf, size_t n)
{
    size_t k = 0;
    for (; k < b->len && k + 1 < n; k++)
        buf[k] = b->ptr[k] ? (char)b->ptr[k] : '.';
    buf[k] = '\0';
    return buf;
}

static void say_caps(const char *name, const hw_capability_list *l)
{
    char a[256];
    say("%s: %zu", name, l->len);
    for (size_t i = 0; i < l->len; i++)
        say("%s[%zu]: %s %s", name, i, addr_str(&l->ptr[i].issuer, a, sizeof a),
            l->ptr[i].params);
}

static void say_message(const char *name, const hw_message *m)
{
    char b[256];
    if (m->kind == HW_MESSAGE_REQUEST) {
        const hw_request *r = &m->request;
        say("%s: request inherit=%d expects=%s%llu body=%s metadata=%s", name,
            r->inherit, r->has_expects_response ? "" : "none/",
            (unsigned long long)r->expects_response,
            bytes_str(&r->body, b, sizeof b),
            r->metadata ? r->metadata : "(none)");
        say_caps(name, &r->capabilities);
    } else {
        const hw_response *r = &m->response;
        char c[64];
        say("%s: response inherit=%d body=%s metadata=%s context=%s", name,
            r->inherit, bytes_str(&r->body, b, sizeof b),
            r->metadata ? r->metadata : "(none)",
            m->has_context ? bytes_str(&m->context, c, sizeof c) : "(none)");
        say_caps(name, &r->capabilities);
    }
}

static void say_blob(const char *name, bool has, const hw_blob *blob)
{
    char b[256];
    if (!has)
        say("%s: none", name);
    else
        say("%s: mime=%s bytes=%s", name, blob->mime ? blob->mime : "(none)",
            bytes_str(&blob->bytes, b, sizeof b));
}

static void say_send_error(const char *name, const hw_send_error *e)
{
    char a[256];
    say("%s: kind=%s target=%s", name,
        e->kind == HW_SEND_ERROR_OFFLINE ? "offline" : "timeout",
        addr_str(&e->target, a, sizeof a));
    say_message(name, &e->message);
    say_blob(name, e->has_blob, &e->blob);
}

void hw_init(const char *our)
{
    char a[256], b[256];
    say("init: %s", our);

    hw_address me;
    hw_our(&me);
    say("our: %s", addr_str(&me, a, sizeof a));

    hw_address target;
    hw_address_parse("peer.os@echo:probe:hyperc.os", &target);
    hw_capability caps[2] = {{target, "\"messaging\""},
                             {me, "{\"root\":true}"}};

    /* on-exit: set three kinds, read one back */
    hw_set_on_exit(&(hw_on_exit){HW_ON_EXIT_RESTART, NULL, 0});
    uint8_t body1[] = {'h', 'i', 0, '!'};
    hw_outgoing_request exits[1] = {{
        .target = target,
        .request = {.inherit = false,
                    .has_expects_response = true,
                    .expects_response = 7,
                    .body = {body1, sizeof body1},
                    .metadata = "{\"m\":1}",
                    .capabilities = {caps, 1}},
        .has_blob = true,
        .blob = {"text/plain", {(uint8_t *)"xyz", 3}},
    }};
    hw_set_on_exit(&(hw_on_exit){HW_ON_EXIT_REQUESTS, exits, 1});
    hw_on_exit oe;
    hw_get_on_exit(&oe);
    say("get-on-exit: kind=%d n=%zu", (int)oe.kind, oe.requests_len);
    for (size_t i = 0; i < oe.requests_len; i++) {
        say("get-on-exit[%zu]: target=%s blob=%d", i,
            addr_str(&oe.requests[i].target, a, sizeof a),
            oe.requests[i].has_blob);
        say_message("get-on-exit[req]",
                    &(hw_message){.kind = HW_MESSAGE_REQUEST,
                                  .request = oe.requests[i].request});
        say_blob("get-on-exit[blob]", oe.requests[i].has_blob,
                 &oe.requests[i].blob);
    }
    hw_on_exit_fini(&oe);

    /* state */
    hw_bytes st;
    bool has = hw_get_state(&st);
    say("get-state: %s", has ? bytes_str(&st, a, sizeof a) : "none");
    if (has)
        hw_bytes_fini(&st);
    has = hw_get_state(&st);
    say("get-state: %s len=%zu", has ? bytes_str(&st, a, sizeof a) : "none",
        has ? st.len : 0);
    if (has)
        hw_bytes_fini(&st);
    say("set-state: %d", hw_set_state((const uint8_t *)"s\0t", 3));
    say("clear-state: %d", hw_clear_state());

    /* spawn: ok, then each error */
    hw_process_id gp[2];
    gp[0] = target.process;
    gp[1] = me.process;
    const char *gparams[2] = {"\"messaging\"", "{\"x\":2}"};
    hw_process_id child;
    hw_spawn_error se =
        hw_spawn("kid", "/kid.wasm", &(hw_on_exit){HW_ON_EXIT_RESTART, NULL, 0},
                 caps, 2, gp, gparams, 2, true, &child);
    if (se == HW_SPAWN_OK) {
        say("spawn: ok %s:%s:%s", child.process_name, child.package_name,
            child.publisher_node);
        hw_process_id_fini(&child);
    } else {
        say("spawn: error %d", (int)se);
    }
    hw_on_exit none = {HW_ON_EXIT_NONE, NULL, 0};
    se = hw_spawn(NULL, "/taken.wasm", &none, NULL, 0, NULL, NULL, 0, false,
                  &child);
    say("spawn: error %d", (int)se);
    se = hw_spawn(NULL, "/nofile.wasm", &none, NULL, 0, NULL, NULL, 0, false,
                  &child);
    say("spawn: error %d", (int)se);

    /* capabilities */
    hw_save_capabilities(caps, 2);
    hw_drop_capabilities(caps, 1);
    hw_capability_list ours;
    hw_our_capabilities(&ours);
    say_caps("our-capabilities", &ours);
    hw_capability_list_fini(&ours);

    /* receive: a request, a response with context, an error */
    for (int i = 0; i < 3; i++) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err) {
            say("receive: ok source=%s", addr_str(&r.source, a, sizeof a));
            say_message("receive", &r.message);
        } else {
            say_send_error("receive: err", &r.error);
            say("receive: err context=%s",
                r.has_context ? bytes_str(&r.context, b, sizeof b) : "(none)");
        }
        hw_receive_result_fini(&r);
    }

    /* blobs */
    say("has-blob: %d", hw_has_blob());
    hw_blob blob;
    has = hw_get_blob(&blob);
    say_blob("get-blob", has, &blob);
    if (has)
        hw_blob_fini(&blob);
    has = hw_last_blob(&blob);
    say_blob("last-blob", has, &blob);
    if (has)
        hw_blob_fini(&blob);
    has = hw_get_blob(&blob);
    say_blob("get-blob", has, &blob);
    if (has)
        hw_blob_fini(&blob);

    /* sends */
    hw_request req = {.inherit = true,
                      .has_expects_response = true,
                      .expects_response = 12345678901ull,
                      .body = {(uint8_t *)"ping", 4},
                      .metadata = NULL,
                      .capabilities = {caps, 2}};
    hw_bytes ctx = {(uint8_t *)"\7\10\11", 3};
    hw_send_request(&target, &req, &ctx, &(hw_blob){NULL, {(uint8_t *)"b", 1}});
    hw_request plain = {.body = {NULL, 0}};
    hw_send_request(&target, &plain, NULL, NULL);
    hw_outgoing_request many[2] = {
        {.target = target, .request = req, .has_context = true, .context = ctx},
        {.target = me,
         .request = plain,
         .has_blob = true,
         .blob = {"a/b", {(uint8_t *)"q", 1}}},
    };
    hw_send_requests(many, 2);
    hw_send_response(&(hw_response){.inherit = false,
                                    .body = {(uint8_t *)"pong", 4},
                                    .metadata = "{}",
                                    .capabilities = {caps + 1, 1}},
                     &(hw_blob){"m/t", {(uint8_t *)"rb", 2}});
    hw_send_response(&(hw_response){0}, NULL);

    /* send-and-await: refused locally, ok, err */
    hw_await_result ar;
    say("send-and-await-response: no-expects rc=%d",
        hw_send_and_await_response(&target, &plain, NULL, &ar));
    say("send-and-await-response: self rc=%d",
        hw_send_and_await_response(&me, &req, NULL, &ar));
    for (int i = 0; i < 2; i++) {
        int rc = hw_send_and_await_response(
            &target, &req, i ? NULL : &(hw_blob){NULL, {(uint8_t *)"aw", 2}},
            &ar);
        if (rc != 0) {
            say("send-and-await-response: rc=%d", rc);
            continue;
        }
        if (!ar.is_err) {
            say("send-and-await-response: ok source=%s",
                addr_str(&ar.source, a, sizeof a));
            say_message("send-and-await-response", &ar.message);
        } else {
            say_send_error("send-and-await-response: err", &ar.error);
        }
        hw_await_result_fini(&ar);
    }
    /* the C library's system calls (src/guest/wasi_shim.c) */
    printf("stdout: %d\n", 42);
    fflush(stdout);
    fprintf(stderr, "stderr: %s\n", "two");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    say("realtime: %lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    say("monotonic: %lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
    unsigned char rnd[10];
    getentropy(rnd, sizeof rnd);
    say("entropy: %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x", rnd[0],
        rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9]);

    struct timespec nap = {0, 5000};
    say("nanosleep: %d", nanosleep(&nap, NULL));

    hw_address_fini(&target);
    hw_address_fini(&me);
    say("done");
}
