/* hc_package_parse (package.c): metadata.json + pkg/manifest.json in
 * Hyperware's layout, good input and many bad ones; every error names the
 * file and field. */
#include "unit_helpers.h"

#define META_OK                                                                \
    "{\"name\": \"Chat\", \"properties\": {\"package_name\": \"chat\", "       \
    "\"publisher\": \"template.os\", \"current_version\": \"1.0.0\", "         \
    "\"mirrors\": [], \"code_hashes\": {\"1.0.0\": \"\"}}}"

#define ENTRY(name, extra)                                                     \
    "{\"process_name\": \"" name "\", \"process_wasm_path\": \"/" name         \
    ".so\", \"on_exit\": \"Restart\", \"request_networking\": false, "         \
    "\"request_capabilities\": [], \"grant_capabilities\": [], "               \
    "\"public\": false" extra "}"

static const char *const good_manifest =
    "[\n"
    "  {\n"
    "    \"process_name\": \"chat\",\n"
    "    \"process_wasm_path\": \"/chat.so\",\n"
    "    \"on_exit\": \"Restart\",\n"
    "    \"request_networking\": true,\n"
    "    \"request_capabilities\": [\n"
    "      \"http-server:distro:sys\",\n"
    "      {\"process\": \"vfs:distro:sys\", \"params\": {\"kind\": "
    "\"read\", \"drive\": \"/chat:template.os/pkg\"}},\n"
    "      {\"process\": \"homepage:homepage:sys\", \"params\": "
    "\"RemoveOther\"}\n"
    "    ],\n"
    "    \"grant_capabilities\": [\"timer:distro:sys\", {\"process\": "
    "\"worker:chat:template.os\", \"params\": [1, {\"b\": 2, \"a\": 1}]}],\n"
    "    \"public\": true\n"
    "  },\n"
    "  {\n"
    "    \"process_name\": \"worker\",\n"
    "    \"process_wasm_path\": \"worker.so\",\n"
    "    \"on_exit\": \"None\",\n"
    "    \"request_networking\": false,\n"
    "    \"request_capabilities\": [],\n"
    "    \"grant_capabilities\": [],\n"
    "    \"public\": false,\n"
    "    \"in_process\": true\n"
    "  },\n"
    "  {\n"
    "    \"process_name\": \"notify-1\",\n"
    "    \"process_wasm_path\": \"bin/notify.so\",\n"
    "    \"on_exit\": {\"Requests\": [[\"our@chat:chat:template.os\", "
    "{\"inherit\": false, \"body\": [104, 105], \"metadata\": null, "
    "\"capabilities\": []}, null]]},\n"
    "    \"request_networking\": false,\n"
    "    \"request_capabilities\": [],\n"
    "    \"grant_capabilities\": [],\n"
    "    \"public\": false\n"
    "  }\n"
    "]\n";

static void parse_good(void **state)
{
    (void)state;
    hc_package p;
    char err[256] = "";
    int rc = hc_package_parse(META_OK, good_manifest, &p, err, sizeof err);
    if (rc != 0)
        fail_msg("good package refused: %s", err);
    assert_string_equal(p.package_name, "chat");
    assert_string_equal(p.publisher, "template.os");
    assert_string_equal(p.version, "1.0.0");
    assert_int_equal(p.entries_len, 3);

    hc_manifest_entry *e = &p.entries[0];
    assert_string_equal(e->process_name, "chat");
    assert_string_equal(e->process_wasm_path, "/chat.so");
    assert_int_equal(e->on_exit, HW_ON_EXIT_RESTART);
    assert_null(e->on_exit_requests);
    assert_true(e->request_networking);
    assert_true(e->public_);
    assert_int_equal(e->request_capabilities_len, 3);
    assert_string_equal(e->request_capabilities[0].process,
                        "http-server:distro:sys");
    assert_string_equal(e->request_capabilities[0].params, "\"messaging\"");
    assert_string_equal(e->request_capabilities[1].process, "vfs:distro:sys");
    /* Object params are kept as canonical JSON. */
    assert_string_equal(
        e->request_capabilities[1].params,
        "{\"drive\":\"/chat:template.os/pkg\",\"kind\":\"read\"}");
    assert_string_equal(e->request_capabilities[2].params, "\"RemoveOther\"");
    assert_int_equal(e->grant_capabilities_len, 2);
    assert_string_equal(e->grant_capabilities[0].process, "timer:distro:sys");
    assert_string_equal(e->grant_capabilities[0].params, "\"messaging\"");
    assert_string_equal(e->grant_capabilities[1].process,
                        "worker:chat:template.os");
    assert_string_equal(e->grant_capabilities[1].params,
                        "[1,{\"a\":1,\"b\":2}]");

    e = &p.entries[1];
    assert_string_equal(e->process_name, "worker");
    assert_int_equal(e->on_exit, HW_ON_EXIT_NONE);
    assert_false(e->request_networking);
    assert_false(e->public_);
    assert_true(e->in_process);
    assert_int_equal(e->request_capabilities_len, 0);
    assert_int_equal(e->grant_capabilities_len, 0);

    e = &p.entries[2];
    assert_string_equal(e->process_name, "notify-1");
    assert_false(e->in_process); /* absent: isolated like the rest */
    assert_int_equal(e->on_exit, HW_ON_EXIT_REQUESTS);
    assert_non_null(e->on_exit_requests);
    assert_true(e->on_exit_requests[0] == '[');
    assert_non_null(strstr(e->on_exit_requests, "our@chat:chat:template.os"));

    hc_package_fini(&p);
    assert_null(p.entries);
    assert_int_equal(p.entries_len, 0);
    hc_package_fini(&p); /* twice is fine */
}

static void parse_empty_manifest(void **state)
{
    (void)state;
    hc_package p;
    char err[256] = "";
    assert_int_equal(hc_package_parse(META_OK, "[]", &p, err, sizeof err), 0);
    assert_int_equal(p.entries_len, 0);
    assert_string_equal(p.package_name, "chat");
    hc_package_fini(&p);
}

/* Parse a bad pair: must fail, zero the output, and the message must
 * contain every fragment in `want` (NULL-terminated). */
static void expect_error(const char *meta, const char *man,
                         const char *const *want)
{
    hc_package p;
    memset(&p, 0x5a, sizeof p);
    char err[512];
    memset(err, 0, sizeof err);
    int rc = hc_package_parse(meta, man, &p, err, sizeof err);
    if (rc != -1) {
        if (rc == 0)
            hc_package_fini(&p);
        fail_msg("accepted:\nmetadata: %s\nmanifest: %s", meta, man);
    }
    assert_null(p.package_name);
    assert_null(p.entries);
    assert_int_equal(p.entries_len, 0);
    for (const char *const *w = want; *w; w++)
        if (strstr(err, *w) == NULL)
            fail_msg("error \"%s\" lacks \"%s\"", err, *w);
}

#define BAD_META(meta, ...)                                                    \
    do {                                                                       \
        static const char *const w_[] = {__VA_ARGS__, NULL};                   \
        expect_error(meta, "[]", w_);                                          \
    } while (0)

#define BAD_MAN(man, ...)                                                      \
    do {                                                                       \
        static const char *const w_[] = {__VA_ARGS__, NULL};                   \
        expect_error(META_OK, man, w_);                                        \
    } while (0)

static void bad_metadata(void **state)
{
    (void)state;
    BAD_META("", "metadata.json:1:");
    BAD_META("{\"properties\": {", "metadata.json:1:");
    BAD_META("{\n\n  \"properties\": [1,]\n}", "metadata.json:3:");
    BAD_META("\"just a string\"", "metadata.json");
    BAD_META("{}", "metadata.json", "missing field \"properties\"");
    BAD_META("[]", "metadata.json", "\"properties\"");
    BAD_META("{\"properties\": []}", "metadata.json",
             "\"properties\" must be an object", "not an array");
    BAD_META("{\"properties\": {\"publisher\": \"a.os\", "
             "\"current_version\": \"1\"}}",
             "metadata.json properties", "missing field \"package_name\"");
    BAD_META("{\"properties\": {\"package_name\": \"chat\", "
             "\"current_version\": \"1\"}}",
             "metadata.json properties", "missing field \"publisher\"");
    BAD_META("{\"properties\": {\"package_name\": \"chat\", \"publisher\": "
             "\"a.os\"}}",
             "metadata.json properties", "\"current_version\"");
    BAD_META("{\"properties\": {\"package_name\": 5, \"publisher\": \"a.os\", "
             "\"current_version\": \"1\"}}",
             "\"package_name\" must be a string", "not a number");
    BAD_META("{\"properties\": {\"package_name\": \"chat\", \"publisher\": "
             "null, \"current_version\": \"1\"}}",
             "\"publisher\" must be a string", "not null");
    BAD_META("{\"properties\": {\"package_name\": \"Chat\", \"publisher\": "
             "\"a.os\", \"current_version\": \"1\"}}",
             "metadata.json", "package_name 'Chat'", "hypermap-safe");
    BAD_META("{\"properties\": {\"package_name\": \"chat.app\", "
             "\"publisher\": \"a.os\", \"current_version\": \"1\"}}",
             "package_name 'chat.app'", "hypermap-safe");
    BAD_META("{\"properties\": {\"package_name\": \"\", \"publisher\": "
             "\"a.os\", \"current_version\": \"1\"}}",
             "package_name ''");
    BAD_META("{\"properties\": {\"package_name\": \"chat\", \"publisher\": "
             "\"A_os\", \"current_version\": \"1\"}}",
             "publisher 'A_os'", "hypermap-safe");
    BAD_META("{\"properties\": {\"package_name\": \"chat\", \"publisher\": "
             "\"a:os\", \"current_version\": \"1\"}}",
             "publisher 'a:os'");
}

static void bad_manifest_shape(void **state)
{
    (void)state;
    BAD_MAN("", "pkg/manifest.json:1:");
    BAD_MAN("[\n  {\"process_name\": \"a\",,}\n]", "pkg/manifest.json:2:");
    BAD_MAN("{\"process_name\": \"chat\"}", "pkg/manifest.json",
            "must be an array", "not an object");
    BAD_MAN("\"chat\"", "pkg/manifest.json"); /* not even an array/object */
    BAD_MAN("[1]", "pkg/manifest.json[0]", "must be an object", "a number");
    BAD_MAN("[" ENTRY("a", "") ", []]", "pkg/manifest.json[1]",
            "must be an object", "an array");
}

static void bad_manifest_fields(void **state)
{
    (void)state;
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": false, \"in_process\": \"yes\"}]",
            "pkg/manifest.json[0]", "\"in_process\" must be true or false");
    BAD_MAN("[{\"process_wasm_path\": \"/a.so\", \"on_exit\": \"None\", "
            "\"request_networking\": false, \"request_capabilities\": [], "
            "\"grant_capabilities\": [], \"public\": false}]",
            "pkg/manifest.json[0]", "missing field \"process_name\"");
    BAD_MAN("[{\"process_name\": \"a\", \"on_exit\": \"None\", "
            "\"request_networking\": false, \"request_capabilities\": [], "
            "\"grant_capabilities\": [], \"public\": false}]",
            "pkg/manifest.json[0]", "missing field \"process_wasm_path\"");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"request_networking\": false, \"request_capabilities\": [], "
            "\"grant_capabilities\": [], \"public\": false}]",
            "pkg/manifest.json[0]", "\"on_exit\"");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_capabilities\": [], "
            "\"grant_capabilities\": [], \"public\": false}]",
            "pkg/manifest.json[0]", "\"request_networking\"");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"grant_capabilities\": [], \"public\": false}]",
            "pkg/manifest.json[0]", "\"request_capabilities\"");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"public\": false}]",
            "pkg/manifest.json[0]", "\"grant_capabilities\"");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": []}]",
            "pkg/manifest.json[0]", "\"public\"");
    /* Wrong types. */
    BAD_MAN("[{\"process_name\": 1, \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": false}]",
            "pkg/manifest.json[0]", "\"process_name\" must be a string");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": [\"/a.so\"], "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": false}]",
            "\"process_wasm_path\" must be a string", "an array");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": \"yes\", "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": false}]",
            "\"request_networking\" must be a boolean", "a string");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"request_capabilities\": {}, \"grant_capabilities\": [], "
            "\"public\": false}]",
            "\"request_capabilities\" must be an array", "an object");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": null, "
            "\"public\": false}]",
            "\"grant_capabilities\" must be an array", "null");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"None\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": 1}]",
            "\"public\" must be a boolean", "a number");
    /* on_exit values. */
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"Sometimes\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": false}]",
            "pkg/manifest.json[0]", "on_exit");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": {\"Requests\": {}}, \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": false}]",
            "pkg/manifest.json[0]", "on_exit");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": \"none\", \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": false}]",
            "on_exit");
    BAD_MAN("[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "
            "\"on_exit\": 0, \"request_networking\": false, "
            "\"request_capabilities\": [], \"grant_capabilities\": [], "
            "\"public\": false}]",
            "on_exit");
}

static void bad_names(void **state)
{
    (void)state;
    BAD_MAN("[" ENTRY("Chat", "") "]", "pkg/manifest.json[0]",
            "process_name 'Chat'", "hypermap-safe");
    BAD_MAN("[" ENTRY("chat.x", "") "]", "process_name 'chat.x'");
    BAD_MAN("[" ENTRY("", "") "]", "process_name ''");
    BAD_MAN("[" ENTRY("a b", "") "]", "process_name 'a b'");
    BAD_MAN("[" ENTRY("a:b", "") "]", "process_name 'a:b'");
    /* Duplicate names, reported at the second entry. */
    BAD_MAN("[" ENTRY("a", "") ", " ENTRY("b", "") ", " ENTRY("a", "") "]",
            "pkg/manifest.json[2]", "'a'", "entry 0");
    /* The error is about the right entry. */
    BAD_MAN("[" ENTRY("a", "") ", " ENTRY("B", "") "]", "pkg/manifest.json[1]",
            "'B'");
}

#define CAPS_ENTRY(rc, gc)                                                     \
    "[{\"process_name\": \"a\", \"process_wasm_path\": \"/a.so\", "            \
    "\"on_exit\": \"None\", \"request_networking\": false, "                   \
    "\"request_capabilities\": " rc ", \"grant_capabilities\": " gc ", "       \
    "\"public\": false}]"

static void bad_capability_entries(void **state)
{
    (void)state;
    BAD_MAN(CAPS_ENTRY("[1]", "[]"), "pkg/manifest.json[0]",
            "request_capabilities[0]");
    BAD_MAN(CAPS_ENTRY("[\"timer:distro:sys\", null]", "[]"),
            "request_capabilities[1]");
    BAD_MAN(CAPS_ENTRY("[]", "[[\"timer:distro:sys\"]]"),
            "grant_capabilities[0]");
    /* Object entries need a string process and some params. */
    BAD_MAN(CAPS_ENTRY("[{\"params\": \"x\"}]", "[]"),
            "request_capabilities[0]");
    BAD_MAN(CAPS_ENTRY("[{\"process\": \"timer:distro:sys\"}]", "[]"),
            "request_capabilities[0]");
    BAD_MAN(CAPS_ENTRY("[{\"process\": 7, \"params\": \"x\"}]", "[]"),
            "request_capabilities[0]");
    /* Bad process ids, with the reason. */
    BAD_MAN(CAPS_ENTRY("[\"timer:distro\"]", "[]"), "request_capabilities[0]",
            "'timer:distro'", "process:package:publisher");
    BAD_MAN(CAPS_ENTRY("[\"a:b:c:d\"]", "[]"), "request_capabilities[0]",
            "too many ':'");
    BAD_MAN(CAPS_ENTRY("[]", "[\"Timer:distro:sys\"]"), "grant_capabilities[0]",
            "hypermap-safe");
    BAD_MAN(CAPS_ENTRY("[]", "[{\"process\": \"x.y:distro:sys\", "
                             "\"params\": 1}]"),
            "grant_capabilities[0]", "'x.y:distro:sys'");
    BAD_MAN(CAPS_ENTRY("[\"ok:distro:sys\", \"ok:distro:sys\", \"\"]", "[]"),
            "request_capabilities[2]");
}

static void small_error_buffer(void **state)
{
    (void)state;
    hc_package p;
    char err[8];
    memset(err, 'Z', sizeof err);
    assert_int_equal(hc_package_parse("{}", "[]", &p, err, sizeof err), -1);
    assert_int_equal(strlen(err), sizeof err - 1); /* truncated, terminated */
    /* And no buffer at all. */
    assert_int_equal(hc_package_parse("{}", "[]", &p, NULL, 0), -1);
}

/* Many mutations of a good package: never a crash, always 0 or -1, and on
 * -1 a message that names a file. */
static void mutations_never_crash(void **state)
{
    (void)state;
    size_t len = strlen(good_manifest);
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    static const char repl[] = "\"{}[],:0 \\a";
    unsigned ok = 0, bad = 0;
    for (size_t i = 0; i < len; i++) {
        for (size_t r = 0; r < sizeof repl - 1; r++) {
            memcpy(buf, good_manifest, len + 1);
            buf[i] = repl[r];
            hc_package p;
            char err[256] = "";
            int rc = hc_package_parse(META_OK, buf, &p, err, sizeof err);
            if (rc == 0) {
                ok++;
                hc_package_fini(&p);
            } else {
                assert_int_equal(rc, -1);
                bad++;
                if (strstr(err, "manifest.json") == NULL)
                    fail_msg("error without file name: %s", err);
            }
        }
        /* truncation */
        memcpy(buf, good_manifest, len + 1);
        buf[i] = 0;
        hc_package p;
        char err[256] = "";
        if (hc_package_parse(META_OK, buf, &p, err, sizeof err) == 0)
            hc_package_fini(&p);
    }
    assert_true(ok > 0);
    assert_true(bad > 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_good),
        cmocka_unit_test(parse_empty_manifest),
        cmocka_unit_test(bad_metadata),
        cmocka_unit_test(bad_manifest_shape),
        cmocka_unit_test(bad_manifest_fields),
        cmocka_unit_test(bad_names),
        cmocka_unit_test(bad_capability_entries),
        cmocka_unit_test(small_error_buffer),
        cmocka_unit_test(mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
