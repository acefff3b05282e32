/* vfs:distro:sys (vfs.c) in a started node (runtime.md §8.4): every
 * action with Hyperware's request and response shapes (process_lib's
 * VfsRequest / VfsResponse as serde writes them), data in blobs, cursors,
 * errors (not found, malformed requests and paths, escapes through ".." and
 * symbolic links), capabilities (own package, other packages, granted drive
 * caps, root), the read-only pkg drive mapped to the package's folder, the
 * file size limit, and the parser and path normalizer on their own. */
#include "unit_helpers.h"
#include "node/modules/modules.h"

#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>

#define VFS UT_NODE "@vfs:distro:sys"
#define KERNEL UT_NODE "@kernel:distro:sys"
#define TERMINAL UT_NODE "@terminal:terminal:sys"
#define PID_A "proc:app:pub.os"
#define PID_A2 "two:app:pub.os"
#define PID_B "other:else:pub.os"
#define ADDR_A UT_NODE "@" PID_A
#define ADDR_A2 UT_NODE "@" PID_A2
#define ADDR_B UT_NODE "@" PID_B
#define OCTET "application/octet-stream"
#define MAX_FILE 4096

typedef struct fx {
    char *home;
    char *tmp;     /* the package folder and things outside the vfs */
    char *pkg_dir; /* tmp/app/pkg, real path */
    hc_node *n;
    hcn_proc *a, *a2, *b;
    uint64_t next_id;
} fx;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    return hcn_read_file(path, NULL);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->home = ut_mkdtemp();
    f->tmp = ut_mkdtemp();
    f->next_id = 1000;
    /* A package folder: pkg/ui/{index.html,assets/app.js}, a link inside
     * it to a file outside, and one to a file inside. */
    char *p = hcn_xasprintf("%s/app/pkg/ui/assets", f->tmp);
    assert_int_equal(hcn_mkdirs(p), 0);
    free(p);
    p = hcn_xasprintf("%s/app/pkg/ui/index.html", f->tmp);
    write_file(p, "<h1>app</h1>");
    free(p);
    p = hcn_xasprintf("%s/app/pkg/ui/assets/app.js", f->tmp);
    write_file(p, "console.log(1)");
    free(p);
    p = hcn_xasprintf("%s/outside.txt", f->tmp);
    write_file(p, "secret");
    char *l = hcn_xasprintf("%s/app/pkg/ui/evil", f->tmp);
    assert_int_equal(symlink(p, l), 0);
    free(l);
    free(p);
    l = hcn_xasprintf("%s/app/pkg/ui/same", f->tmp);
    assert_int_equal(symlink("index.html", l), 0);
    free(l);
    p = hcn_xasprintf("%s/app/pkg", f->tmp);
    f->pkg_dir = realpath(p, NULL);
    free(p);
    assert_non_null(f->pkg_dir);

    hc_node_config cfg;
    hc_node_config_default(&cfg);
    cfg.name = UT_NODE;
    cfg.home = f->home;
    cfg.mailbox_max = 64;
    cfg.spin_us = 0;
    cfg.shutdown_grace_s = 2;
    cfg.vfs_max_file_bytes = MAX_FILE;
    char err[256] = "";
    f->n = hc_node_new(&cfg, err, sizeof err);
    if (f->n == NULL)
        fail_msg("hc_node_new: %s", err);
    hcn_vfs_add_package(f->n, "app:pub.os", f->pkg_dir);
    if (hc_node_start(f->n, err, sizeof err) != 0)
        fail_msg("hc_node_start: %s", err);
    f->a = ut_add_proc(f->n, PID_A, false);
    f->a2 = ut_add_proc(f->n, PID_A2, false);
    f->b = ut_add_proc(f->n, PID_B, false);
    /* As "request_capabilities": ["vfs:distro:sys"] in a manifest: vfs is
     * not public. */
    hcn_grant_messaging(f->n, f->a, "vfs:distro:sys");
    hcn_grant_messaging(f->n, f->a2, "vfs:distro:sys");
    hcn_grant_messaging(f->n, f->b, "vfs:distro:sys");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    hc_node_shutdown(f->n);
    hcn_proc_unref(f->a);
    hcn_proc_unref(f->a2);
    hcn_proc_unref(f->b);
    hc_node_free(f->n);
    ut_rm_rf(f->home);
    ut_rm_rf(f->tmp);
    free(f->home);
    free(f->tmp);
    free(f->pkg_dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static char *body_of(const char *path, const char *action)
{
    json_error_t je;
    json_t *a = json_loads(action, JSON_DECODE_ANY, &je);
    if (a == NULL)
        fail_msg("bad action JSON in test: %s", action);
    json_t *j = json_pack("{ssso}", "path", path, "action", a);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* Send raw `body` from `source` (rsvp, expects 5 s, metadata "md"). */
static uint64_t send_raw(fx *f, const char *source, const char *rsvp,
                         bool expects, const char *body, const void *blob,
                         size_t blob_len, bool with_blob)
{
    hcn_blob *b = with_blob ? hcn_blob_new(NULL, blob, blob_len) : NULL;
    uint64_t id = f->next_id++;
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = id, .source = source,
                    .target = VFS, .rsvp = rsvp, .has_expects = expects,
                    .expects = 5, .body = body, .body_len = strlen(body),
                    .metadata = "md", .blob = b);
    hcn_blob_unref(b);
    hcn_route(f->n, m);
    return id;
}

/* The next message of `p`: vfs's response to `id`. */
static hcn_msg *reply_to(hcn_proc *p, uint64_t id)
{
    hcn_msg *m = ut_pop(p, 5000);
    assert_int_equal(m->kind, HCN_MSG_RESPONSE);
    if (m->id != id) {
        uint64_t got = m->id;
        hcn_msg_unref(m);
        fail_msg("reply to id %llu, expected %llu", (unsigned long long)got,
                 (unsigned long long)id);
    }
    assert_string_equal(m->source, VFS);
    return m;
}

/* A request from process `p`, answered to it; caller unrefs. */
static hcn_msg *vreq_blob(fx *f, hcn_proc *p, const char *path,
                          const char *action, const void *blob, size_t len)
{
    char *body = body_of(path, action);
    uint64_t id =
        send_raw(f, p->addr, NULL, true, body, blob, len, blob != NULL);
    free(body);
    return reply_to(p, id);
}

static hcn_msg *vreq(fx *f, hcn_proc *p, const char *path, const char *action)
{
    return vreq_blob(f, p, path, action, NULL, 0);
}

static void assert_json_body(const hcn_msg *m, const char *json)
{
    char *body = hcn_xstrndup((const char *)m->body, m->body_len);
    char *a = hcn_json_canonical(body);
    char *b = hcn_json_canonical(json);
    assert_non_null(b);
    if (a == NULL || strcmp(a, b) != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", body);
        free(a);
        free(b);
        free(body);
        fail_msg("body %s, expected %s", msg, json);
    }
    free(a);
    free(b);
    free(body);
}

/* Request and expect `json` as the answer (no blob unless `blob`). */
static void expect(fx *f, hcn_proc *p, const char *path, const char *action,
                   const char *json)
{
    hcn_msg *m = vreq(f, p, path, action);
    assert_json_body(m, json);
    hcn_msg_unref(m);
}

static void expect_blob(fx *f, hcn_proc *p, const char *path,
                        const char *action, const char *blob, const char *json)
{
    hcn_msg *m = vreq_blob(f, p, path, action, blob, blob ? strlen(blob) : 0);
    assert_json_body(m, json);
    hcn_msg_unref(m);
}

static void ok(fx *f, hcn_proc *p, const char *path, const char *action)
{
    expect(f, p, path, action, "\"Ok\"");
}

/* A read-type action answered "Read" with `content` in an octet blob. */
static void expect_read(fx *f, hcn_proc *p, const char *path,
                        const char *action, const void *content, size_t len)
{
    hcn_msg *m = vreq(f, p, path, action);
    assert_json_body(m, "\"Read\"");
    assert_non_null(m->blob);
    assert_non_null(m->blob->mime);
    assert_string_equal(m->blob->mime, OCTET);
    assert_int_equal(m->blob->len, len);
    if (len)
        assert_memory_equal(m->blob->bytes, content, len);
    hcn_msg_unref(m);
}

static void expect_text(fx *f, hcn_proc *p, const char *path,
                        const char *action, const char *content)
{
    expect_read(f, p, path, action, content, strlen(content));
}

static char *io_err(int e)
{
    return hcn_xasprintf("{\"Err\":{\"IOError\":\"%s (os error %d)\"}}",
                         strerror(e), e);
}

static void expect_errno(fx *f, hcn_proc *p, const char *path,
                         const char *action, int e)
{
    char *want = io_err(e);
    expect(f, p, path, action, want);
    free(want);
}

static char *vfs_path(fx *f, const char *rel)
{
    return hcn_xasprintf("%s/vfs/%s", f->home, rel);
}

static bool holds_vfs_cap(fx *f, hcn_proc *p, const char *params)
{
    char *canon = hcn_json_canonical(params);
    pthread_mutex_lock(&p->lock);
    bool ok = hcn_capset_has(&p->caps, VFS, canon);
    pthread_mutex_unlock(&p->lock);
    free(canon);
    (void)f;
    return ok;
}

/* -------------------------------------------------------------- tests */

static void drive_write_read_metadata(void **state)
{
    fx *f = *state;
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");
    char *d = vfs_path(f, "app:pub.os/data");
    struct stat st;
    assert_int_equal(stat(d, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    free(d);
    /* CreateDrive grants read and write for the drive, issued by vfs. */
    assert_true(holds_vfs_cap(
        f, f->a, "{\"kind\": \"read\", \"drive\": \"/app:pub.os/data\"}"));
    assert_true(holds_vfs_cap(
        f, f->a, "{\"kind\": \"write\", \"drive\": \"/app:pub.os/data\"}"));
    /* Again: still Ok. */
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");

    expect_blob(f, f->a, "/app:pub.os/data/f.txt", "\"Write\"", "hello",
                "\"Ok\"");
    char *p = vfs_path(f, "app:pub.os/data/f.txt");
    char *c = slurp(p);
    assert_string_equal(c, "hello");
    free(c);
    /* Success replies carry the request's metadata and no blob. */
    hcn_msg *m = vreq(f, f->a, "/app:pub.os/data/f.txt", "\"Read\"");
    assert_json_body(m, "\"Read\"");
    ut_assert_blob(m->blob, "hello");
    assert_string_equal(m->blob->mime, OCTET);
    assert_non_null(m->metadata);
    assert_string_equal(m->metadata, "md");
    hcn_msg_unref(m);
    expect(f, f->a, "/app:pub.os/data/f.txt", "\"Metadata\"",
           "{\"Metadata\":{\"file_type\":\"File\",\"len\":5}}");
    expect(f, f->a, "/app:pub.os/data/f.txt", "\"Len\"", "{\"Len\":5}");
    m = vreq(f, f->a, "/app:pub.os/data", "\"Metadata\"");
    assert_non_null(strstr((const char *)m->body, "\"Directory\""));
    hcn_msg_unref(m);
    /* Write replaces the whole file. */
    expect_blob(f, f->a, "/app:pub.os/data/f.txt", "\"Write\"", "hi", "\"Ok\"");
    expect_text(f, f->a, "/app:pub.os/data/f.txt", "\"Read\"", "hi");
    /* Binary data, NULs included, round trips. */
    uint8_t bin[MAX_FILE];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i * 7);
    m = vreq_blob(f, f->a, "/app:pub.os/data/bin", "\"Write\"", bin,
                  sizeof bin);
    assert_json_body(m, "\"Ok\"");
    hcn_msg_unref(m);
    expect_read(f, f->a, "/app:pub.os/data/bin", "\"Read\"", bin, sizeof bin);
    /* An empty blob writes an empty file. */
    m = vreq_blob(f, f->a, "/app:pub.os/data/empty", "\"Write\"", "", 0);
    assert_json_body(m, "\"Ok\"");
    hcn_msg_unref(m);
    expect_read(f, f->a, "/app:pub.os/data/empty", "\"Read\"", "", 0);
    /* Another process of the same package may use the drive. */
    expect_text(f, f->a2, "/app:pub.os/data/f.txt", "\"Read\"", "hi");
    ok(f, f->a2, "/app:pub.os/other-drive", "\"CreateDrive\"");
    /* Errors. */
    expect(f, f->a, "/app:pub.os/data/f.txt", "\"Write\"",
           "{\"Err\":\"NoBlob\"}");
    expect(f, f->a, "/app:pub.os/data/f.txt", "\"Append\"",
           "{\"Err\":\"NoBlob\"}");
    expect(f, f->a, "/app:pub.os/data/f.txt", "\"WriteAll\"",
           "{\"Err\":\"NoBlob\"}");
    expect_errno(f, f->a, "/app:pub.os/data/nope", "\"Read\"", ENOENT);
    expect_errno(f, f->a, "/app:pub.os/data/nope", "\"Metadata\"", ENOENT);
    expect_errno(f, f->a, "/app:pub.os/data/nope", "\"Len\"", ENOENT);
    expect_errno(f, f->a, "/app:pub.os/data", "\"Read\"", EISDIR);
    expect_errno(f, f->a, "/app:pub.os/data", "\"Len\"", EISDIR);
    char *enoent = io_err(ENOENT);
    expect_blob(f, f->a, "/app:pub.os/nodrive/x", "\"Write\"", "x", enoent);
    free(enoent);
    /* Errors carry no metadata. */
    m = vreq(f, f->a, "/app:pub.os/data/nope", "\"Read\"");
    assert_null(m->metadata);
    assert_null(m->blob);
    hcn_msg_unref(m);
    free(p);
}

static void cursors(void **state)
{
    fx *f = *state;
    const char *fp = "/app:pub.os/data/c.txt";
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");
    expect_errno(f, f->a, fp, "{\"OpenFile\":{\"create\":false}}", ENOENT);
    ok(f, f->a, fp, "\"CreateFile\"");
    expect(f, f->a, fp, "\"Len\"", "{\"Len\":0}");
    /* WriteAll writes at the cursor and moves it. */
    expect_blob(f, f->a, fp, "\"WriteAll\"", "abc", "\"Ok\"");
    expect_blob(f, f->a, fp, "\"WriteAll\"", "def", "\"Ok\"");
    expect_text(f, f->a, fp, "\"Read\"", "abcdef");
    /* OpenFile puts the cursor back at 0. */
    ok(f, f->a, fp, "{\"OpenFile\":{\"create\":false}}");
    expect_text(f, f->a, fp, "{\"ReadExact\":{\"length\":2}}", "ab");
    expect_text(f, f->a, fp, "\"ReadToEnd\"", "cdef");
    expect_text(f, f->a, fp, "\"ReadToEnd\"", "");
    expect(f, f->a, fp, "{\"Seek\":{\"Start\":1}}",
           "{\"SeekFrom\":{\"new_offset\":1}}");
    expect(f, f->a, fp, "\"ReadToString\"", "{\"ReadToString\":\"bcdef\"}");
    expect(f, f->a, fp, "{\"Seek\":{\"End\":-2}}",
           "{\"SeekFrom\":{\"new_offset\":4}}");
    expect(f, f->a, fp, "{\"Seek\":{\"Current\":-1}}",
           "{\"SeekFrom\":{\"new_offset\":3}}");
    expect_text(f, f->a, fp, "{\"ReadExact\":{\"length\":1}}", "d");
    expect_errno(f, f->a, fp, "{\"Seek\":{\"Current\":-10}}", EINVAL);
    /* ReadExact past the end: tokio's "early eof". */
    expect(f, f->a, fp, "{\"ReadExact\":{\"length\":10}}",
           "{\"Err\":{\"IOError\":\"early eof\"}}");
    /* Append writes at the end and leaves the cursor there. */
    ok(f, f->a, fp, "{\"OpenFile\":{\"create\":true}}");
    expect_blob(f, f->a, fp, "\"Append\"", "gh", "\"Ok\"");
    expect_text(f, f->a, fp, "\"ReadToEnd\"", "");
    expect_text(f, f->a, fp, "\"Read\"", "abcdefgh");
    /* CloseFile forgets the cursor; without expects_response nothing
     * answers. */
    char *body = body_of(fp, "\"CloseFile\"");
    send_raw(f, f->a->addr, NULL, false, body, NULL, 0, false);
    free(body);
    ut_assert_empty(f->a, 200);
    expect_text(f, f->a, fp, "\"ReadToEnd\"", "abcdefgh");
    ok(f, f->a, fp, "\"CloseFile\"");
    /* SetLen shrinks and grows (with zeros). */
    ok(f, f->a, fp, "{\"SetLen\":3}");
    expect(f, f->a, fp, "\"Len\"", "{\"Len\":3}");
    ok(f, f->a, fp, "{\"SetLen\":5}");
    expect_read(f, f->a, fp, "\"Read\"", "abc\0\0", 5);
    ok(f, f->a, fp, "{\"SetLen\":3}");
    ok(f, f->a, fp, "\"SyncAll\"");
    /* Hash: SHA-256 of the whole file, as 32 numbers. */
    expect(f, f->a, fp, "\"Hash\"",
           "{\"Hash\":[186,120,22,191,143,1,207,234,65,65,64,222,93,174,34,"
           "35,176,3,97,163,150,23,122,156,180,16,255,97,242,0,21,173]}");
    /* ReadToString of bytes that are not UTF-8. */
    const uint8_t bad[] = {0x61, 0xff, 0xfe};
    hcn_msg *m =
        vreq_blob(f, f->a, fp, "\"Write\"", bad, sizeof bad); /* truncates */
    hcn_msg_unref(m);
    ok(f, f->a, fp, "{\"OpenFile\":{\"create\":false}}");
    expect(f, f->a, fp, "\"ReadToString\"",
           "{\"Err\":{\"IOError\":\"stream did not contain valid UTF-8\"}}");
    /* CreateFile truncates an existing file; OpenFile create makes one. */
    ok(f, f->a, fp, "\"CreateFile\"");
    expect(f, f->a, fp, "\"Len\"", "{\"Len\":0}");
    ok(f, f->a, "/app:pub.os/data/new", "{\"OpenFile\":{\"create\":true}}");
    expect(f, f->a, "/app:pub.os/data/new", "\"Len\"", "{\"Len\":0}");
    /* Cursor actions on a missing file or a directory. */
    expect_errno(f, f->a, "/app:pub.os/data/nope", "\"ReadToEnd\"", ENOENT);
    char *enoent = io_err(ENOENT);
    expect_blob(f, f->a, "/app:pub.os/data/nope", "\"WriteAll\"", "x", enoent);
    expect_blob(f, f->a, "/app:pub.os/data/nope", "\"Append\"", "x", enoent);
    free(enoent);
    expect_errno(f, f->a, "/app:pub.os/data",
                 "{\"OpenFile\":{\"create\":true}}", EISDIR);
    expect_errno(f, f->a, "/app:pub.os/data", "\"Hash\"", EISDIR);
}

static void directories(void **state)
{
    fx *f = *state;
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");
    ok(f, f->a, "/app:pub.os/data/d", "\"CreateDir\"");
    expect_errno(f, f->a, "/app:pub.os/data/d", "\"CreateDir\"", EEXIST);
    expect_errno(f, f->a, "/app:pub.os/data/a/b", "\"CreateDir\"", ENOENT);
    ok(f, f->a, "/app:pub.os/data/x/y/z", "\"CreateDirAll\"");
    ok(f, f->a, "/app:pub.os/data/x/y/z", "\"CreateDirAll\"");
    expect_blob(f, f->a, "/app:pub.os/data/x/y/z/f", "\"Write\"", "1",
                "\"Ok\"");
    expect_blob(f, f->a, "/app:pub.os/data/b.txt", "\"Write\"", "22", "\"Ok\"");
    expect_errno(f, f->a, "/app:pub.os/data/b.txt", "\"CreateDirAll\"", EEXIST);
    expect(f, f->a, "/app:pub.os/data", "\"ReadDir\"",
           "{\"ReadDir\":["
           "{\"path\":\"app:pub.os/data/b.txt\",\"file_type\":\"File\"},"
           "{\"path\":\"app:pub.os/data/d\",\"file_type\":\"Directory\"},"
           "{\"path\":\"app:pub.os/data/x\",\"file_type\":\"Directory\"}]}");
    expect(f, f->a, "/app:pub.os/data/d", "\"ReadDir\"", "{\"ReadDir\":[]}");
    expect_errno(f, f->a, "/app:pub.os/data/b.txt", "\"ReadDir\"", ENOTDIR);
    expect_errno(f, f->a, "/app:pub.os/data/nope", "\"ReadDir\"", ENOENT);
    expect_errno(f, f->a, "/app:pub.os/data/x", "\"RemoveDir\"", ENOTEMPTY);
    expect_errno(f, f->a, "/app:pub.os/data/d", "\"RemoveFile\"", EISDIR);
    expect_errno(f, f->a, "/app:pub.os/data/b.txt", "\"RemoveDirAll\"",
                 ENOTDIR);
    expect_errno(f, f->a, "/app:pub.os/data/b.txt", "\"RemoveDir\"", ENOTDIR);
    ok(f, f->a, "/app:pub.os/data/x", "\"RemoveDirAll\"");
    expect_errno(f, f->a, "/app:pub.os/data/x", "\"Metadata\"", ENOENT);
    ok(f, f->a, "/app:pub.os/data/d", "\"RemoveDir\"");
    expect_errno(f, f->a, "/app:pub.os/data/d", "\"RemoveDir\"", ENOENT);
    /* Rename and CopyFile. */
    ok(f, f->a, "/app:pub.os/data/b.txt",
       "{\"Rename\":{\"new_path\":\"/app:pub.os/data/c.txt\"}}");
    expect_errno(f, f->a, "/app:pub.os/data/b.txt", "\"Read\"", ENOENT);
    expect_text(f, f->a, "/app:pub.os/data/c.txt", "\"Read\"", "22");
    ok(f, f->a, "/app:pub.os/data/c.txt",
       "{\"CopyFile\":{\"new_path\":\"/app:pub.os/data/d.txt\"}}");
    expect_text(f, f->a, "/app:pub.os/data/c.txt", "\"Read\"", "22");
    expect_text(f, f->a, "/app:pub.os/data/d.txt", "\"Read\"", "22");
    /* Copying a file onto itself keeps it. */
    ok(f, f->a, "/app:pub.os/data/c.txt",
       "{\"CopyFile\":{\"new_path\":\"/app:pub.os/data/c.txt\"}}");
    expect_text(f, f->a, "/app:pub.os/data/c.txt", "\"Read\"", "22");
    ok(f, f->a, "/app:pub.os/data/e", "\"CreateDir\"");
    expect(f, f->a, "/app:pub.os/data/e",
           "{\"CopyFile\":{\"new_path\":\"/app:pub.os/data/f\"}}",
           "{\"Err\":{\"IOError\":\"the source path is neither a regular "
           "file nor a symlink to a regular file\"}}");
    /* Rename across drives of the same package, and of a directory. */
    ok(f, f->a, "/app:pub.os/logs", "\"CreateDrive\"");
    ok(f, f->a, "/app:pub.os/data/e",
       "{\"Rename\":{\"new_path\":\"/app:pub.os/logs/e2\"}}");
    expect(f, f->a, "/app:pub.os/logs", "\"ReadDir\"",
           "{\"ReadDir\":[{\"path\":\"app:pub.os/logs/e2\","
           "\"file_type\":\"Directory\"}]}");
    expect(f, f->a, "/app:pub.os/data/c.txt",
           "{\"Rename\":{\"new_path\":\"/app:pub.os\"}}",
           "{\"Err\":\"MalformedRequest\"}");
    expect_errno(f, f->a, "/app:pub.os/data/nope",
                 "{\"Rename\":{\"new_path\":\"/app:pub.os/data/n2\"}}", ENOENT);
    /* RemoveFile. */
    ok(f, f->a, "/app:pub.os/data/d.txt", "\"RemoveFile\"");
    expect_errno(f, f->a, "/app:pub.os/data/d.txt", "\"RemoveFile\"", ENOENT);
    /* A path without a leading '/', with '.', '..' and '//' inside. */
    expect_text(f, f->a, "app:pub.os//data/./zz/../c.txt", "\"Read\"", "22");
}

static void malformed(void **state)
{
    fx *f = *state;
    static const char *const bodies[] = {
        "not json",
        "",
        "{}",
        "[]",
        "\"Read\"",
        "{\"path\":\"/app:pub.os/data/f\"}",
        "{\"action\":\"Read\"}",
        "{\"path\":5,\"action\":\"Read\"}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":\"Frobnicate\"}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":\"read\"}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":\"OpenFile\"}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":{\"OpenFile\":{}}}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":{\"OpenFile\":"
        "{\"create\":1}}}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":{\"SetLen\":-1}}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":{\"SetLen\":1.5}}",
        "{\"path\":\"/app:pub.os/data/"
        "f\",\"action\":{\"Seek\":{\"Start\":-1}}}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":{\"Seek\":{\"Back\":1}}}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":{\"Read\":1}}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":{\"Read\":null,"
        "\"Len\":null}}",
        "{\"path\":\"/app:pub.os/data/f\",\"path\":\"/x:y/z\","
        "\"action\":\"Read\"}",
        "{\"path\":\"/app:pub.os/data/f\",\"action\":{\"Rename\":{}}}",
        "[\"/app:pub.os/data/f\"]",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        uint64_t id =
            send_raw(f, f->a->addr, NULL, true, bodies[i], NULL, 0, false);
        hcn_msg *m = reply_to(f->a, id);
        char *b = hcn_xstrndup((const char *)m->body, m->body_len);
        char msg[256];
        snprintf(msg, sizeof msg, "%s", b);
        bool ok = strcmp(b, "{\"Err\":\"MalformedRequest\"}") == 0;
        free(b);
        hcn_msg_unref(m);
        if (!ok)
            fail_msg("body '%s' got %s", bodies[i], msg);
    }
    /* Paths that do not name /package:publisher/drive, or climb out. */
    static const char *const paths[] = {
        "",
        "/app:pub.os",
        "/app:pub.os/",
        "/app/data/f",
        "/:pub.os/data/f",
        "/app:/data/f",
        "/a:b:c/data/f",
        "/App:pub.os/data/f",
        "/app:pub_os/data/f",
        "/app:pub.os/../../etc/passwd",
        "/app:pub.os/data/../../../x",
        "/..",
        "../app:pub.os/data/f",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        hcn_msg *m = vreq(f, f->a, paths[i], "\"Read\"");
        char *b = hcn_xstrndup((const char *)m->body, m->body_len);
        char msg[256];
        snprintf(msg, sizeof msg, "%s", b);
        bool ok = strcmp(b, "{\"Err\":\"MalformedRequest\"}") == 0;
        free(b);
        hcn_msg_unref(m);
        if (!ok)
            fail_msg("path '%s' got %s", paths[i], msg);
    }
    /* A ".." that stays inside the vfs is resolved, as in Hyperware. */
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");
    expect_blob(f, f->a, "/else:pub.os/../app:pub.os/data/f", "\"Write\"", "q",
                "\"Ok\"");
    expect_text(f, f->a, "/app:pub.os/data/f", "\"Read\"", "q");
    /* serde's other spellings are accepted: unit variants as {"X": null},
     * struct variants as arrays, the request as [path, action]. */
    expect_text(f, f->a, "/app:pub.os/data/f", "{\"Read\":null}", "q");
    ok(f, f->a, "/app:pub.os/data/f", "{\"OpenFile\":[false]}");
    uint64_t id = send_raw(f, f->a->addr, NULL, true,
                           "[\"/app:pub.os/data/f\",\"Len\"]", NULL, 0, false);
    hcn_msg *m = reply_to(f->a, id);
    assert_json_body(m, "{\"Len\":1}");
    hcn_msg_unref(m);
    /* Unknown fields are ignored, as serde does. */
    id = send_raw(f, f->a->addr, NULL, true,
                  "{\"path\":\"/app:pub.os/data/f\",\"action\":\"Len\","
                  "\"extra\":1}",
                  NULL, 0, false);
    m = reply_to(f->a, id);
    assert_json_body(m, "{\"Len\":1}");
    hcn_msg_unref(m);
    /* AddZip is not supported: an error (NoBlob first, as Hyperware). */
    expect(f, f->a, "/app:pub.os/data/z", "\"AddZip\"", "{\"Err\":\"NoBlob\"}");
    expect_blob(f, f->a, "/app:pub.os/data/z", "\"AddZip\"", "PK",
                "{\"Err\":{\"IOError\":\"AddZip is not supported by this "
                "node\"}}");
    /* vfs is not public: without messaging for it, a request is refused
     * by the kernel (a timeout error at once). */
    char *body;
    hcn_proc *nc = ut_add_proc(f->n, "nocap:app:pub.os", false);
    body = body_of("/app:pub.os/data/f", "\"Read\"");
    id = send_raw(f, nc->addr, NULL, true, body, NULL, 0, false);
    free(body);
    m = ut_pop(nc, 5000);
    assert_int_equal(m->kind, HCN_MSG_SEND_ERROR);
    assert_int_equal(m->id, id);
    hcn_msg_unref(m);
    hcn_proc_unref(nc);
    /* Errors without expects_response are not answered. */
    send_raw(f, f->a->addr, NULL, false, "nope", NULL, 0, false);
    body = body_of("/app:pub.os/data/nope", "\"Read\"");
    send_raw(f, f->a->addr, NULL, false, body, NULL, 0, false);
    free(body);
    ut_assert_empty(f->a, 200);
}

static void other_packages_and_caps(void **state)
{
    fx *f = *state;
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");
    expect_blob(f, f->a, "/app:pub.os/data/f", "\"Write\"", "mine", "\"Ok\"");
    /* Another package: no access without capabilities. */
    expect(f, f->b, "/app:pub.os/data/f", "\"Read\"",
           "{\"Err\":\"NoReadCap\"}");
    expect(f, f->b, "/app:pub.os/data/f", "\"Metadata\"",
           "{\"Err\":\"NoReadCap\"}");
    expect(f, f->b, "/app:pub.os/data", "\"ReadDir\"",
           "{\"Err\":\"NoReadCap\"}");
    expect_blob(f, f->b, "/app:pub.os/data/f", "\"Write\"", "theirs",
                "{\"Err\":\"NoWriteCap\"}");
    expect(f, f->b, "/app:pub.os/data/f", "\"RemoveFile\"",
           "{\"Err\":\"NoWriteCap\"}");
    expect(f, f->b, "/app:pub.os/data2", "\"CreateDrive\"",
           "{\"Err\":\"NoWriteCap\"}");
    expect(f, f->b, "/app:pub.os/pkg/ui/index.html", "\"Read\"",
           "{\"Err\":\"NoReadCap\"}");
    expect(f, f->b, "/app:pub.os/data/f",
           "{\"CopyFile\":{\"new_path\":\"/else:pub.os/mine/f\"}}",
           "{\"Err\":\"NoWriteCap\"}");
    /* Listing above the drives needs root. */
    expect(f, f->a, "/", "\"ReadDir\"", "{\"Err\":\"NoReadCap\"}");
    expect(f, f->a, "/app:pub.os", "\"ReadDir\"", "{\"Err\":\"NoReadCap\"}");
    char *d = vfs_path(f, "app:pub.os/data2");
    assert_false(exists(d));
    free(d);
    /* The file is untouched. */
    expect_text(f, f->a, "/app:pub.os/data/f", "\"Read\"", "mine");

    /* A read capability for the drive (as CreateDrive gives, passed on). */
    char *vfs_addr = hcn_xstrdup(VFS);
    hcn_grant(f->b, vfs_addr,
              "{\"kind\":\"read\",\"drive\":\"/app:pub.os/data\"}");
    expect_text(f, f->b, "/app:pub.os/data/f", "\"Read\"", "mine");
    expect(f, f->b, "/app:pub.os/data/f", "\"Len\"", "{\"Len\":4}");
    expect_blob(f, f->b, "/app:pub.os/data/f", "\"Write\"", "theirs",
                "{\"Err\":\"NoWriteCap\"}");
    expect(f, f->b, "/app:pub.os/logs/f", "\"Read\"",
           "{\"Err\":\"NoReadCap\"}");
    /* ... and a write capability. */
    hcn_grant(f->b, vfs_addr,
              "{\"kind\":\"write\",\"drive\":\"/app:pub.os/data\"}");
    expect_blob(f, f->b, "/app:pub.os/data/f", "\"Append\"", "+b", "\"Ok\"");
    expect_text(f, f->a, "/app:pub.os/data/f", "\"Read\"", "mine+b");
    ok(f, f->b, "/app:pub.os/data/f",
       "{\"CopyFile\":{\"new_path\":\"/app:pub.os/data/g\"}}");
    /* Copying out to its own drive needs write on it too. */
    ok(f, f->b, "/else:pub.os/mine", "\"CreateDrive\"");
    ok(f, f->b, "/app:pub.os/data/f",
       "{\"CopyFile\":{\"new_path\":\"/else:pub.os/mine/f\"}}");
    expect_text(f, f->b, "/else:pub.os/mine/f", "\"Read\"", "mine+b");
    /* Still no CreateDrive in another package without root. */
    expect(f, f->b, "/app:pub.os/data3", "\"CreateDrive\"",
           "{\"Err\":\"NoWriteCap\"}");
    /* Root: everything, listing "/" included. */
    hcn_grant(f->b, vfs_addr, "{\"root\":true}");
    ok(f, f->b, "/app:pub.os/data3", "\"CreateDrive\"");
    expect(f, f->b, "/", "\"ReadDir\"",
           "{\"ReadDir\":["
           "{\"path\":\"app:pub.os\",\"file_type\":\"Directory\"},"
           "{\"path\":\"else:pub.os\",\"file_type\":\"Directory\"}]}");
    expect(f, f->b, "/app:pub.os", "\"ReadDir\"",
           "{\"ReadDir\":["
           "{\"path\":\"app:pub.os/data\",\"file_type\":\"Directory\"},"
           "{\"path\":\"app:pub.os/data3\",\"file_type\":\"Directory\"},"
           "{\"path\":\"app:pub.os/pkg\",\"file_type\":\"Directory\"}]}");
    expect(f, f->b, "/..", "\"ReadDir\"", "{\"Err\":\"MalformedRequest\"}");
    free(vfs_addr);
}

static void privileged_sources(void **state)
{
    fx *f = *state;
    /* The kernel (with an rsvp) and the terminal act with root rights. */
    char *body = body_of("/else:pub.os/k", "\"CreateDrive\"");
    uint64_t id = send_raw(f, KERNEL, ADDR_A, true, body, NULL, 0, false);
    free(body);
    hcn_msg *m = reply_to(f->a, id);
    assert_json_body(m, "\"Ok\"");
    assert_string_equal(m->target, ADDR_A);
    hcn_msg_unref(m);
    body = body_of("/else:pub.os/k/f", "\"Write\"");
    id = send_raw(f, KERNEL, ADDR_A, true, body, "kk", 2, true);
    free(body);
    hcn_msg_unref(reply_to(f->a, id));
    /* An rsvp gets the success even without expects_response. */
    body = body_of("/else:pub.os/k/f", "\"Read\"");
    id = send_raw(f, KERNEL, ADDR_A, false, body, NULL, 0, false);
    free(body);
    m = reply_to(f->a, id);
    ut_assert_blob(m->blob, "kk");
    hcn_msg_unref(m);
    /* Terminal: listing the root, answered to its rsvp (the fake). */
    body = body_of("/", "\"ReadDir\"");
    id = send_raw(f, TERMINAL, ADDR_B, true, body, NULL, 0, false);
    free(body);
    m = reply_to(f->b, id);
    assert_json_body(m, "{\"ReadDir\":["
                        "{\"path\":\"app:pub.os\",\"file_type\":\"Directory\"},"
                        "{\"path\":\"else:pub.os\",\"file_type\":"
                        "\"Directory\"}]}");
    hcn_msg_unref(m);
    /* Requests from another node are ignored; responses too. */
    body = body_of("/else:pub.os/k/f", "\"Read\"");
    send_raw(f, "far.os@" PID_A, ADDR_A, true, body, NULL, 0, false);
    free(body);
    hcn_route(f->n, ut_resp(5, ADDR_A, VFS, "\"Ok\"", NULL));
    ut_assert_empty(f->a, 300);
    /* The module still answers. */
    expect_text(f, f->b, "/else:pub.os/k/f", "\"Read\"", "kk");
}

static void pkg_drive_read_only(void **state)
{
    fx *f = *state;
    expect_text(f, f->a, "/app:pub.os/pkg/ui/index.html", "\"Read\"",
                "<h1>app</h1>");
    expect_text(f, f->a2, "/app:pub.os/pkg/ui/assets/app.js", "\"Read\"",
                "console.log(1)");
    expect(f, f->a, "/app:pub.os/pkg/ui", "\"ReadDir\"",
           "{\"ReadDir\":["
           "{\"path\":\"app:pub.os/pkg/ui/assets\",\"file_type\":"
           "\"Directory\"},"
           "{\"path\":\"app:pub.os/pkg/ui/evil\",\"file_type\":\"Symlink\"},"
           "{\"path\":\"app:pub.os/pkg/ui/index.html\",\"file_type\":"
           "\"File\"},"
           "{\"path\":\"app:pub.os/pkg/ui/same\",\"file_type\":\"Symlink\"}"
           "]}");
    expect(f, f->a, "/app:pub.os/pkg", "\"ReadDir\"",
           "{\"ReadDir\":[{\"path\":\"app:pub.os/pkg/ui\",\"file_type\":"
           "\"Directory\"}]}");
    hcn_msg *m = vreq(f, f->a, "/app:pub.os/pkg", "\"Metadata\"");
    assert_non_null(strstr((const char *)m->body, "\"Directory\""));
    hcn_msg_unref(m);
    expect(f, f->a, "/app:pub.os/pkg/ui/index.html", "\"Len\"", "{\"Len\":12}");
    /* Cursor reads work without write access. */
    ok(f, f->a, "/app:pub.os/pkg/ui/index.html",
       "{\"OpenFile\":{\"create\":false}}");
    ok(f, f->a, "/app:pub.os/pkg/ui/index.html",
       "{\"OpenFile\":{\"create\":true}}"); /* exists: nothing created */
    expect_text(f, f->a, "/app:pub.os/pkg/ui/index.html",
                "{\"ReadExact\":{\"length\":4}}", "<h1>");
    expect_text(f, f->a, "/app:pub.os/pkg/ui/index.html", "\"ReadToEnd\"",
                "app</h1>");
    ok(f, f->a, "/app:pub.os/pkg", "\"CreateDrive\"");
    /* Nothing changes it. */
    const char *nw = "{\"Err\":\"NoWriteCap\"}";
    expect_blob(f, f->a, "/app:pub.os/pkg/ui/index.html", "\"Write\"", "x", nw);
    expect_blob(f, f->a, "/app:pub.os/pkg/ui/index.html", "\"Append\"", "x",
                nw);
    expect_blob(f, f->a, "/app:pub.os/pkg/ui/index.html", "\"WriteAll\"", "x",
                nw);
    expect_blob(f, f->a, "/app:pub.os/pkg/new", "\"Write\"", "x", nw);
    expect(f, f->a, "/app:pub.os/pkg/ui/index.html", "{\"SetLen\":0}", nw);
    expect(f, f->a, "/app:pub.os/pkg/ui/index.html", "\"CreateFile\"", nw);
    expect(f, f->a, "/app:pub.os/pkg/new", "{\"OpenFile\":{\"create\":true}}",
           nw);
    expect(f, f->a, "/app:pub.os/pkg/ui/index.html", "\"RemoveFile\"", nw);
    expect(f, f->a, "/app:pub.os/pkg/ui", "\"RemoveDirAll\"", nw);
    expect(f, f->a, "/app:pub.os/pkg", "\"RemoveDirAll\"", nw);
    expect(f, f->a, "/app:pub.os/pkg/ui/assets", "\"RemoveDir\"", nw);
    expect(f, f->a, "/app:pub.os/pkg/d", "\"CreateDir\"", nw);
    expect(f, f->a, "/app:pub.os/pkg/d/e", "\"CreateDirAll\"", nw);
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");
    expect(f, f->a, "/app:pub.os/pkg/ui/index.html",
           "{\"Rename\":{\"new_path\":\"/app:pub.os/data/i.html\"}}", nw);
    expect_blob(f, f->a, "/app:pub.os/data/w", "\"Write\"", "w", "\"Ok\"");
    expect(f, f->a, "/app:pub.os/data/w",
           "{\"Rename\":{\"new_path\":\"/app:pub.os/pkg/w\"}}", nw);
    expect(f, f->a, "/app:pub.os/data/w",
           "{\"CopyFile\":{\"new_path\":\"/app:pub.os/pkg/w\"}}", nw);
    /* Not even the terminal may. */
    char *body = body_of("/app:pub.os/pkg/ui/index.html", "\"RemoveFile\"");
    uint64_t id = send_raw(f, TERMINAL, ADDR_A, true, body, NULL, 0, false);
    free(body);
    m = reply_to(f->a, id);
    assert_json_body(m, nw);
    hcn_msg_unref(m);
    /* Copying out of it is a read. */
    ok(f, f->a, "/app:pub.os/pkg/ui/index.html",
       "{\"CopyFile\":{\"new_path\":\"/app:pub.os/data/i.html\"}}");
    expect_text(f, f->a, "/app:pub.os/data/i.html", "\"Read\"", "<h1>app</h1>");
    /* On disk: the package folder as it was. */
    char *p = hcn_xasprintf("%s/ui/index.html", f->pkg_dir);
    char *c = slurp(p);
    assert_string_equal(c, "<h1>app</h1>");
    free(c);
    free(p);
    p = hcn_xasprintf("%s/new", f->pkg_dir);
    assert_false(exists(p));
    free(p);
    p = hcn_xasprintf("%s/w", f->pkg_dir);
    assert_false(exists(p));
    free(p);
    /* A package that is not loaded has an empty, read-only pkg drive. */
    expect_errno(f, f->b, "/else:pub.os/pkg/x", "\"Read\"", ENOENT);
    expect_blob(f, f->b, "/else:pub.os/pkg/x", "\"Write\"", "x", nw);
}

static void symlink_escapes(void **state)
{
    fx *f = *state;
    const char *esc = "{\"Err\":{\"ParseError\":{\"error\":\"path leaves its "
                      "drive through a symbolic link\",\"path\":\"%s\"}}}";
    char *want = hcn_xasprintf(esc, "/app:pub.os/pkg/ui/evil");
    expect(f, f->a, "/app:pub.os/pkg/ui/evil", "\"Read\"", want);
    free(want);
    /* A link inside the drive is followed. */
    expect_text(f, f->a, "/app:pub.os/pkg/ui/same", "\"Read\"", "<h1>app</h1>");
    /* Links planted in a drive: to a folder outside, dangling to outside,
     * relative climbing out, and a drive that is itself a link. */
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");
    char *out_dir = hcn_xasprintf("%s/outdir", f->tmp);
    assert_int_equal(mkdir(out_dir, 0700), 0);
    char *l = vfs_path(f, "app:pub.os/data/out");
    assert_int_equal(symlink(out_dir, l), 0);
    free(l);
    char *target = hcn_xasprintf("%s/created.txt", out_dir);
    l = vfs_path(f, "app:pub.os/data/dang");
    assert_int_equal(symlink(target, l), 0);
    free(l);
    l = vfs_path(f, "app:pub.os/data/up");
    assert_int_equal(symlink("../../../..", l), 0);
    free(l);
    l = vfs_path(f, "app:pub.os/linked");
    assert_int_equal(symlink(out_dir, l), 0);
    free(l);
    l = vfs_path(f, "app:pub.os/data/sib");
    assert_int_equal(symlink("../logs", l), 0); /* another drive */
    free(l);
    ok(f, f->a, "/app:pub.os/logs", "\"CreateDrive\"");
    static const char *const bad[] = {
        "/app:pub.os/data/out/x",  "/app:pub.os/data/dang",
        "/app:pub.os/data/up/etc", "/app:pub.os/linked/x",
        "/app:pub.os/data/sib/x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        want = hcn_xasprintf(esc, bad[i]);
        expect_blob(f, f->a, bad[i], "\"Write\"", "x", want);
        expect(f, f->a, bad[i], "\"Read\"", want);
        expect(f, f->a, bad[i], "{\"OpenFile\":{\"create\":true}}", want);
        expect(f, f->a, bad[i], "\"CreateDirAll\"", want);
        free(want);
    }
    /* Nor as the second path of Rename or CopyFile. */
    expect_blob(f, f->a, "/app:pub.os/data/ok", "\"Write\"", "o", "\"Ok\"");
    want = hcn_xasprintf(esc, "/app:pub.os/linked/x");
    expect(f, f->a, "/app:pub.os/data/ok",
           "{\"Rename\":{\"new_path\":\"/app:pub.os/linked/x\"}}", want);
    free(want);
    want = hcn_xasprintf(esc, "/app:pub.os/data/out/x");
    expect(f, f->a, "/app:pub.os/data/ok",
           "{\"CopyFile\":{\"new_path\":\"/app:pub.os/data/out/x\"}}", want);
    free(want);
    assert_false(exists(target));
    char *x = hcn_xasprintf("%s/x", out_dir);
    assert_false(exists(x));
    free(x);
    /* The links show as links. */
    expect(f, f->a, "/app:pub.os/data", "\"ReadDir\"",
           "{\"ReadDir\":["
           "{\"path\":\"app:pub.os/data/dang\",\"file_type\":\"Symlink\"},"
           "{\"path\":\"app:pub.os/data/ok\",\"file_type\":\"File\"},"
           "{\"path\":\"app:pub.os/data/out\",\"file_type\":\"Symlink\"},"
           "{\"path\":\"app:pub.os/data/sib\",\"file_type\":\"Symlink\"},"
           "{\"path\":\"app:pub.os/data/up\",\"file_type\":\"Symlink\"}]}");
    /* Removing or renaming a link works on the link, not its target. */
    ok(f, f->a, "/app:pub.os/data/out", "\"RemoveDirAll\"");
    assert_true(exists(out_dir));
    ok(f, f->a, "/app:pub.os/data/dang",
       "{\"Rename\":{\"new_path\":\"/app:pub.os/data/dang2\"}}");
    ok(f, f->a, "/app:pub.os/data/dang2", "\"RemoveFile\"");
    l = vfs_path(f, "app:pub.os/data/dang2");
    assert_false(exists(l));
    free(l);
    expect(f, f->a, "/app:pub.os/data", "\"ReadDir\"",
           "{\"ReadDir\":["
           "{\"path\":\"app:pub.os/data/ok\",\"file_type\":\"File\"},"
           "{\"path\":\"app:pub.os/data/sib\",\"file_type\":\"Symlink\"},"
           "{\"path\":\"app:pub.os/data/up\",\"file_type\":\"Symlink\"}]}");
    free(target);
    free(out_dir);
}

static void size_limit(void **state)
{
    fx *f = *state;
    ok(f, f->a, "/app:pub.os/data", "\"CreateDrive\"");
    static char big[MAX_FILE + 2];
    memset(big, 'x', sizeof big - 1);
    char *too = hcn_xasprintf(
        "{\"Err\":{\"IOError\":\"file too large: %d bytes, over this node's "
        "limit of %d (--vfs-max-file-size)\"}}",
        MAX_FILE + 1, MAX_FILE);
    hcn_msg *m = vreq_blob(f, f->a, "/app:pub.os/data/big", "\"Write\"", big,
                           MAX_FILE + 1);
    assert_json_body(m, too);
    hcn_msg_unref(m);
    char *p = vfs_path(f, "app:pub.os/data/big");
    assert_false(exists(p));
    m = vreq_blob(f, f->a, "/app:pub.os/data/big", "\"Write\"", big, MAX_FILE);
    assert_json_body(m, "\"Ok\"");
    hcn_msg_unref(m);
    expect_blob(f, f->a, "/app:pub.os/data/big", "\"Append\"", "y", too);
    char *sl = hcn_xasprintf("{\"SetLen\":%d}", MAX_FILE + 1);
    expect(f, f->a, "/app:pub.os/data/big", sl, too);
    free(sl);
    expect(f, f->a, "/app:pub.os/data/big", "{\"Seek\":{\"Start\":4096}}",
           "{\"SeekFrom\":{\"new_offset\":4096}}");
    expect_blob(f, f->a, "/app:pub.os/data/big", "\"WriteAll\"", "y", too);
    expect(f, f->a, "/app:pub.os/data/big", "{\"Seek\":{\"Start\":4095}}",
           "{\"SeekFrom\":{\"new_offset\":4095}}");
    expect_blob(f, f->a, "/app:pub.os/data/big", "\"WriteAll\"", "y", "\"Ok\"");
    char *re = hcn_xasprintf("{\"ReadExact\":{\"length\":%d}}", MAX_FILE + 1);
    expect(f, f->a, "/app:pub.os/data/big", re, too);
    free(re);
    /* A file grown behind the node's back is refused whole. */
    FILE *fh = fopen(p, "ab");
    assert_non_null(fh);
    fputc('z', fh);
    fclose(fh);
    expect(f, f->a, "/app:pub.os/data/big", "\"Read\"", too);
    ok(f, f->a, "/app:pub.os/data/big", "{\"OpenFile\":{\"create\":false}}");
    expect(f, f->a, "/app:pub.os/data/big", "\"ReadToEnd\"", too);
    /* ... but a read of a part that fits is not. */
    expect(f, f->a, "/app:pub.os/data/big", "{\"Seek\":{\"End\":-1}}",
           "{\"SeekFrom\":{\"new_offset\":4096}}");
    expect_text(f, f->a, "/app:pub.os/data/big", "\"ReadToEnd\"", "z");
    expect(f, f->a, "/app:pub.os/data/big",
           "{\"CopyFile\":{\"new_path\":\"/app:pub.os/data/b2\"}}", too);
    /* Len and Metadata still work. */
    char *len = hcn_xasprintf("{\"Len\":%d}", MAX_FILE + 1);
    expect(f, f->a, "/app:pub.os/data/big", "\"Len\"", len);
    free(len);
    free(p);
    free(too);
}

/* ------------------------------------------------- parser and normalizer */

static void parser(void **state)
{
    (void)state;
    hcn_vfs_request r;
    static const struct {
        const char *body;
        hcn_vfs_action action;
    } units[] = {
        {"{\"path\":\"/a:b/c\",\"action\":\"CreateDrive\"}",
         HCN_VFS_CREATE_DRIVE},
        {"{\"path\":\"/a:b/c\",\"action\":\"CreateDir\"}", HCN_VFS_CREATE_DIR},
        {"{\"path\":\"/a:b/c\",\"action\":\"CreateDirAll\"}",
         HCN_VFS_CREATE_DIR_ALL},
        {"{\"path\":\"/a:b/c\",\"action\":\"CreateFile\"}",
         HCN_VFS_CREATE_FILE},
        {"{\"path\":\"/a:b/c\",\"action\":\"CloseFile\"}", HCN_VFS_CLOSE_FILE},
        {"{\"path\":\"/a:b/c\",\"action\":\"Write\"}", HCN_VFS_WRITE},
        {"{\"path\":\"/a:b/c\",\"action\":\"WriteAll\"}", HCN_VFS_WRITE_ALL},
        {"{\"path\":\"/a:b/c\",\"action\":\"Append\"}", HCN_VFS_APPEND},
        {"{\"path\":\"/a:b/c\",\"action\":\"SyncAll\"}", HCN_VFS_SYNC_ALL},
        {"{\"path\":\"/a:b/c\",\"action\":\"Read\"}", HCN_VFS_READ},
        {"{\"path\":\"/a:b/c\",\"action\":\"ReadDir\"}", HCN_VFS_READ_DIR},
        {"{\"path\":\"/a:b/c\",\"action\":\"ReadToEnd\"}", HCN_VFS_READ_TO_END},
        {"{\"path\":\"/a:b/c\",\"action\":\"ReadToString\"}",
         HCN_VFS_READ_TO_STRING},
        {"{\"path\":\"/a:b/c\",\"action\":\"RemoveFile\"}",
         HCN_VFS_REMOVE_FILE},
        {"{\"path\":\"/a:b/c\",\"action\":\"RemoveDir\"}", HCN_VFS_REMOVE_DIR},
        {"{\"path\":\"/a:b/c\",\"action\":\"RemoveDirAll\"}",
         HCN_VFS_REMOVE_DIR_ALL},
        {"{\"path\":\"/a:b/c\",\"action\":\"Metadata\"}", HCN_VFS_METADATA},
        {"{\"path\":\"/a:b/c\",\"action\":\"AddZip\"}", HCN_VFS_ADD_ZIP},
        {"{\"path\":\"/a:b/c\",\"action\":\"Len\"}", HCN_VFS_LEN},
        {"{\"path\":\"/a:b/c\",\"action\":\"Hash\"}", HCN_VFS_HASH},
        {"{\"action\":{\"Hash\":null},\"path\":\"/a:b/c\"}", HCN_VFS_HASH},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        assert_int_equal(
            hcn_vfs_parse_request(units[i].body, strlen(units[i].body), &r), 0);
        assert_int_equal(r.action, units[i].action);
        assert_string_equal(r.path, "/a:b/c");
        hcn_vfs_request_fini(&r);
    }
    const char *b =
        "{\"path\":\"p\",\"action\":{\"OpenFile\":{\"create\":true}}}";
    assert_int_equal(hcn_vfs_parse_request(b, strlen(b), &r), 0);
    assert_int_equal(r.action, HCN_VFS_OPEN_FILE);
    assert_true(r.create);
    hcn_vfs_request_fini(&r);
    b = "{\"path\":\"p\",\"action\":{\"ReadExact\":{\"length\":7}}}";
    assert_int_equal(hcn_vfs_parse_request(b, strlen(b), &r), 0);
    assert_int_equal(r.action, HCN_VFS_READ_EXACT);
    assert_int_equal(r.n, 7);
    hcn_vfs_request_fini(&r);
    b = "{\"path\":\"p\",\"action\":{\"SetLen\":9}}";
    assert_int_equal(hcn_vfs_parse_request(b, strlen(b), &r), 0);
    assert_int_equal(r.action, HCN_VFS_SET_LEN);
    assert_int_equal(r.n, 9);
    hcn_vfs_request_fini(&r);
    b = "{\"path\":\"p\",\"action\":{\"Seek\":{\"End\":-3}}}";
    assert_int_equal(hcn_vfs_parse_request(b, strlen(b), &r), 0);
    assert_int_equal(r.action, HCN_VFS_SEEK);
    assert_int_equal(r.whence, SEEK_END);
    assert_int_equal(r.offset, -3);
    hcn_vfs_request_fini(&r);
    b = "{\"path\":\"p\",\"action\":{\"Rename\":{\"new_path\":\"/x:y/z\"}}}";
    assert_int_equal(hcn_vfs_parse_request(b, strlen(b), &r), 0);
    assert_int_equal(r.action, HCN_VFS_RENAME);
    assert_string_equal(r.new_path, "/x:y/z");
    hcn_vfs_request_fini(&r);
    b = "{\"path\":\"p\",\"action\":{\"CopyFile\":[\"/x:y/z\"]}}";
    assert_int_equal(hcn_vfs_parse_request(b, strlen(b), &r), 0);
    assert_int_equal(r.action, HCN_VFS_COPY_FILE);
    assert_string_equal(r.new_path, "/x:y/z");
    hcn_vfs_request_fini(&r);
    /* A NUL inside the path is refused (jansson's default). */
    b = "{\"path\":\"/a:b/c\\u0000x\",\"action\":\"Read\"}";
    assert_int_equal(hcn_vfs_parse_request(b, strlen(b), &r), -1);
}

static void normalizer(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/a:b/c/d", "a:b/c/d"},
        {"a:b/c/d", "a:b/c/d"},
        {"///a:b//c/./d/", "a:b/c/d"},
        {"/a:b/c/../d", "a:b/d"},
        {"/a:b/c/x/y/../../d", "a:b/c/d"},
        {"/x/../a:b/c", "a:b/c"},
        {"/", ""},
        {"", ""},
        {"/./.", ""},
        {"/a/..", ""},
        {"/...", "..."},
        {"/a:b/..c", "a:b/..c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o = hcn_vfs_normalize(cases[i].in);
        assert_non_null(o);
        assert_string_equal(o, cases[i].out);
        free(o);
    }
    static const char *const escapes[] = {"/..", "..", "/a/../..",
                                          "/a:b/c/../../../d", "a/b/../../../"};
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++)
        assert_null(hcn_vfs_normalize(escapes[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(drive_write_read_metadata, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(directories, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(other_packages_and_caps, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(privileged_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(pkg_drive_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(symlink_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(size_limit, setup, teardown),
        cmocka_unit_test(parser),
        cmocka_unit_test(normalizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
