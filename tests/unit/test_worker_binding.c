/* The worker's binding as a library (src/worker/binding.h), embedded as
 * binding.h says an embedder does: this test provides hcw_w (a socket link,
 * the node's end kept here) and hcw_die, and nothing else of
 * hyperc-worker, so the link itself checks that the library needs no more.
 * The table it fills (every entry but the guards), a call carried to the
 * node and its REPLY read back (counted in hcw_w.sent), and a frame no
 * call waits for ending in hcw_die. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker/binding.h"
#include "worker/slot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------- what the embedder gives */

struct hcw_worker hcw_w;

static jmp_buf died;
static char died_why[160];

_Noreturn void hcw_die(const char *why)
{
    snprintf(died_why, sizeof died_why, "%s", why ? why : "(none)");
    longjmp(died, 1);
}

/* hcw_w on one end of a socket pair; the node's end into *node. */
static void embed(hcw_link **node)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(&hcw_w, 0, sizeof hcw_w);
    hcw_w.link = hcw_link_socket(sv[0]);
    assert_non_null(hcw_w.link);
    hcw_w.out = hcw_frame_new();
    hcw_in_init(&hcw_w.in);
    hcw_w.pid = "t:tpkg:sys";
    *node = hcw_link_socket(sv[1]);
    assert_non_null(*node);
}

static void unembed(hcw_link *node)
{
    hcw_link_free(node);
    hcw_link_free(hcw_w.link);
    hcw_frame_free(hcw_w.out);
    hcw_in_fini(&hcw_w.in);
    memset(&hcw_w, 0, sizeof hcw_w);
}

/* ------------------------------------------------------------------ tests */

static void table_filled(void **state)
{
    (void)state;
    hwn_host t;
    memset(&t, 0xa5, sizeof t);
    hcw_binding_init(&t);
    assert_int_equal(t.abi_version, HW_ABI_VERSION);
    assert_int_equal(t.size, sizeof t);
    assert_non_null(t.print_to_terminal);
    assert_non_null(t.our);
    assert_non_null(t.receive);
    assert_non_null(t.send_request);
    assert_non_null(t.send_response);
    assert_non_null(t.send_and_await_response);
    assert_non_null(t.prompting_hold);
    assert_non_null(t.set_state_start);
    assert_non_null(t.tasks);
    /* the embedder's, when its guest has native task stacks */
    assert_null(t.guard_add);
    assert_null(t.guard_remove);
}

/* OUR: the call goes to the node as a frame of the protocol, its REPLY is
 * read from hcw_w.in, and the frame is counted in hcw_w.sent. */
static void call_through_the_link(void **state)
{
    (void)state;
    hcw_link *node;
    embed(&node);
    hwn_host t;
    hcw_binding_init(&t);
    hw_address want = {.node = "our.os",
                       .process = {.process_name = "p",
                                   .package_name = "tpkg",
                                   .publisher_node = "sys"}};
    /* the REPLY waits in the socket before the call is made */
    hcw_frame *f = hcw_frame_new();
    hcw_frame_begin(f, HCW_REPLY, 1);
    hcw_put_address(f, &want);
    assert_int_equal(hcw_link_send(node, f), 0);

    hw_address got;
    memset(&got, 0, sizeof got);
    if (setjmp(died))
        fail_msg("hcw_die: %s", died_why);
    t.our(t.ctx, &got);
    assert_string_equal(got.node, "our.os");
    assert_string_equal(got.process.process_name, "p");
    assert_string_equal(got.process.package_name, "tpkg");
    assert_string_equal(got.process.publisher_node, "sys");
    hw_address_fini(&got);
    assert_int_equal(hcw_w.sent, 1);

    char err[128];
    hcw_in in;
    hcw_in_init(&in);
    assert_int_equal(hcw_link_recv(node, &in, err, sizeof err), 1);
    assert_int_equal(in.op, HCW_OUR);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    unembed(node);
}

/* A call answered with another operation: the node broke the protocol,
 * and the library gives up through the embedder's hcw_die. */
static void broken_protocol_dies(void **state)
{
    (void)state;
    hcw_link *node;
    embed(&node);
    hwn_host t;
    hcw_binding_init(&t);
    hcw_frame *f = hcw_frame_new();
    hcw_frame_begin(f, HCW_HELLO, 0);
    assert_int_equal(hcw_link_send(node, f), 0);
    died_why[0] = 0;
    if (setjmp(died) == 0) {
        hw_address got;
        t.our(t.ctx, &got);
        fail_msg("the call returned");
    }
    assert_string_equal(died_why,
                        "the node answered a call with another operation");
    hcw_frame_free(f);
    unembed(node);
}

/* The node's view of the slot: a value newer than `after`, number seq,
 * holding `want`. */
static void slot_holds(const uint8_t *map, uint64_t after, uint64_t seq,
                       const char *want)
{
    uint8_t *v;
    size_t len;
    uint64_t got;
    char why[160];
    assert_int_equal(hcw_slot_take(map, after, &v, &len, &got, why, sizeof why),
                     1);
    assert_int_equal(got, seq);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
    free(v);
}

/* set_state_now into the state slot (worker/slot.h): stored there at
 * once; -1 without a slot, for a value over its size, and while a
 * SET_STATE_START sent is not yet stored by the node (its `starts` word),
 * so that no slot value is overtaken by an older one by message. */
static void saves_into_the_slot(void **state)
{
    (void)state;
    hcw_link *node;
    embed(&node);
    hwn_host t;
    hcw_binding_init(&t);
    assert_non_null(t.set_state_now);
    if (setjmp(died))
        fail_msg("hcw_die: %s", died_why);
    /* no slot: by message */
    assert_int_equal(t.set_state_now(t.ctx, (const uint8_t *)"a", 1), -1);
    int fd = memfd_create("slot", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(hcw_slot_format(fd), 0);
    uint8_t *mine = hcw_slot_map(fd); /* the node's mapping */
    hcw_w.slot = hcw_slot_map(fd);
    assert_non_null(mine);
    assert_non_null(hcw_w.slot);
    assert_int_equal(t.set_state_now(t.ctx, (const uint8_t *)"one", 3), 1);
    slot_holds(mine, 0, 1, "one");
    uint8_t *big = calloc(1, HCW_SLOT_VALUE_MAX + 1);
    assert_int_equal(t.set_state_now(t.ctx, big, HCW_SLOT_VALUE_MAX + 1), -1);
    free(big);
    /* a save by message: the node has not stored it yet */
    hw_bytes ctx = {.ptr = (uint8_t *)"c", .len = 1};
    t.set_state_start(t.ctx, (const uint8_t *)"two", 3, &ctx, 5);
    char err[128];
    hcw_in in;
    hcw_in_init(&in);
    assert_int_equal(hcw_link_recv(node, &in, err, sizeof err), 1);
    assert_int_equal(in.op, HCW_SET_STATE_START);
    hcw_in_fini(&in);
    assert_int_equal(t.set_state_now(t.ctx, (const uint8_t *)"three", 5), -1);
    assert_int_equal(hcw_slot_seq(mine), 1);
    /* stored: into the slot again, after it */
    hcw_slot_started(mine);
    assert_int_equal(t.set_state_now(t.ctx, (const uint8_t *)"three", 5), 1);
    slot_holds(mine, 1, 2, "three");
    hcw_slot_unmap(hcw_w.slot);
    hcw_slot_unmap(mine);
    close(fd);
    unembed(node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_filled),
        cmocka_unit_test(call_through_the_link),
        cmocka_unit_test(broken_protocol_dies),
        cmocka_unit_test(saves_into_the_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
