/* vfs:distro:sys: files under <home>/vfs/, addressed as
 * /<package>:<publisher>/<drive>/<rest>, with Hyperware's wire format: the
 * request body is VfsRequest {path, action} as process_lib's serde writes
 * it, the answer a VfsResponse, file data in the blob.  A package's own
 * pkg/ folder is visible, read-only, as its drive "pkg".
 *
 * Hyperware keeps open files and their cursors per path (shared by every
 * process); here a cursor is a number per path and each action opens and
 * closes the file, so there is no descriptor limit to manage.  The module
 * runs on its own thread and handles one request at a time. */
#include "modkit.h"
#include "modules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VFS_PID "vfs:distro:sys"
#define OCTET "application/octet-stream"

/* ------------------------------------------------------------- parsing */

typedef enum arg_kind {
    ARG_UNIT,    /* "Read" (or {"Read": null}) */
    ARG_CREATE,  /* {"OpenFile": {"create": bool}} */
    ARG_LENGTH,  /* {"ReadExact": {"length": u64}} */
    ARG_NEWPATH, /* {"Rename": {"new_path": string}} */
    ARG_U64,     /* {"SetLen": u64} */
    ARG_SEEK,    /* {"Seek": {"Start": u64}|{"End": i64}|{"Current": i64}} */
} arg_kind;

static const struct {
    const char *name;
    arg_kind arg;
} actions[] = {
    [HCN_VFS_CREATE_DRIVE] = {"CreateDrive", ARG_UNIT},
    [HCN_VFS_CREATE_DIR] = {"CreateDir", ARG_UNIT},
    [HCN_VFS_CREATE_DIR_ALL] = {"CreateDirAll", ARG_UNIT},
    [HCN_VFS_CREATE_FILE] = {"CreateFile", ARG_UNIT},
    [HCN_VFS_OPEN_FILE] = {"OpenFile", ARG_CREATE},
    [HCN_VFS_CLOSE_FILE] = {"CloseFile", ARG_UNIT},
    [HCN_VFS_WRITE] = {"Write", ARG_UNIT},
    [HCN_VFS_WRITE_ALL] = {"WriteAll", ARG_UNIT},
    [HCN_VFS_APPEND] = {"Append", ARG_UNIT},
    [HCN_VFS_SYNC_ALL] = {"SyncAll", ARG_UNIT},
    [HCN_VFS_READ] = {"Read", ARG_UNIT},
    [HCN_VFS_READ_DIR] = {"ReadDir", ARG_UNIT},
    [HCN_VFS_READ_TO_END] = {"ReadToEnd", ARG_UNIT},
    [HCN_VFS_READ_EXACT] = {"ReadExact", ARG_LENGTH},
    [HCN_VFS_READ_TO_STRING] = {"ReadToString", ARG_UNIT},
    [HCN_VFS_SEEK] = {"Seek", ARG_SEEK},
    [HCN_VFS_REMOVE_FILE] = {"RemoveFile", ARG_UNIT},
    [HCN_VFS_REMOVE_DIR] = {"RemoveDir", ARG_UNIT},
    [HCN_VFS_REMOVE_DIR_ALL] = {"RemoveDirAll", ARG_UNIT},
    [HCN_VFS_RENAME] = {"Rename", ARG_NEWPATH},
    [HCN_VFS_METADATA] = {"Metadata", ARG_UNIT},
    [HCN_VFS_ADD_ZIP] = {"AddZip", ARG_UNIT},
    [HCN_VFS_COPY_FILE] = {"CopyFile", ARG_NEWPATH},
    [HCN_VFS_LEN] = {"Len", ARG_UNIT},
    [HCN_VFS_SET_LEN] = {"SetLen", ARG_U64},
    [HCN_VFS_HASH] = {"Hash", ARG_UNIT},
};
#define NACTIONS (sizeof actions / sizeof actions[0])

static bool get_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* A struct variant's one field, as serde accepts it: {"field": v, ...}
 * (other keys ignored) or [v]. */
static json_t *struct_field(json_t *v, const char *field)
{
    if (json_is_object(v))
        return json_object_get(v, field);
    if (json_is_array(v) && json_array_size(v) == 1)
        return json_array_get(v, 0);
    return NULL;
}

static int parse_action(json_t *a, hcn_vfs_request *r)
{
    const char *name;
    json_t *arg = NULL;
    if (json_is_string(a)) {
        name = json_string_value(a);
    } else if (json_is_object(a) && json_object_size(a) == 1) {
        void *it = json_object_iter(a);
        name = json_object_iter_key(it);
        arg = json_object_iter_value(it);
    } else {
        return -1;
    }
    size_t i = 0;
    while (i < NACTIONS && strcmp(actions[i].name, name) != 0)
        i++;
    if (i == NACTIONS)
        return -1;
    r->action = (hcn_vfs_action)i;
    json_t *f;
    switch (actions[i].arg) {
    case ARG_UNIT: return arg == NULL || json_is_null(arg) ? 0 : -1;
    case ARG_CREATE:
        f = struct_field(arg, "create");
        if (!json_is_boolean(f))
            return -1;
        r->create = json_is_true(f);
        return 0;
    case ARG_LENGTH:
        return get_u64(struct_field(arg, "length"), &r->n) ? 0 : -1;
    case ARG_NEWPATH:
        f = struct_field(arg, "new_path");
        if (!json_is_string(f))
            return -1;
        r->new_path = hcn_xstrndup(json_string_value(f), json_string_length(f));
        return 0;
    case ARG_U64: return get_u64(arg, &r->n) ? 0 : -1;
    case ARG_SEEK:
        if (!json_is_object(arg) || json_object_size(arg) != 1)
            return -1;
        name = json_object_iter_key(json_object_iter(arg));
        f = json_object_iter_value(json_object_iter(arg));
        if (strcmp(name, "Start") == 0) {
            r->whence = SEEK_SET;
            if (!get_u64(f, &r->n))
                return -1;
            return 0;
        }
        if (strcmp(name, "End") == 0)
            r->whence = SEEK_END;
        else if (strcmp(name, "Current") == 0)
            r->whence = SEEK_CUR;
        else
            return -1;
        if (!json_is_integer(f))
            return -1;
        r->offset = json_integer_value(f);
        return 0;
    }
    return -1;
}

int hcn_vfs_parse_request(const void *body, size_t len, hcn_vfs_request *r)
{
    memset(r, 0, sizeof *r);
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    json_t *path = NULL, *action = NULL;
    if (json_is_object(j)) {
        path = json_object_get(j, "path");
        action = json_object_get(j, "action");
    } else if (json_is_array(j) && json_array_size(j) == 2) {
        path = json_array_get(j, 0);
        action = json_array_get(j, 1);
    }
    int rc = -1;
    if (json_is_string(path) && action != NULL &&
        parse_action(action, r) == 0) {
        r->path =
            hcn_xstrndup(json_string_value(path), json_string_length(path));
        rc = 0;
    }
    json_decref(j);
    if (rc != 0)
        hcn_vfs_request_fini(r);
    return rc;
}

void hcn_vfs_request_fini(hcn_vfs_request *r)
{
    free(r->path);
    free(r->new_path);
    memset(r, 0, sizeof *r);
}

char *hcn_vfs_normalize(const char *path)
{
    size_t len = strlen(path);
    char *out = hcn_xmalloc(len + 1);
    size_t *starts = hcn_xmalloc((len / 2 + 1) * sizeof *starts);
    size_t o = 0, depth = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t n = (size_t)(e - p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* empty or "." */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (depth == 0) {
                free(out);
                free(starts);
                return NULL; /* climbs above the vfs root */
            }
            o = starts[--depth];
            if (o > 0)
                o--; /* the '/' before the component */
        } else {
            if (o > 0)
                out[o++] = '/';
            starts[depth++] = o;
            memcpy(out + o, p, n);
            o += n;
        }
        p = e;
    }
    out[o] = 0;
    free(starts);
    return out;
}

/* Split a normalized path into package id, drive and the rest (which may be
 * empty).  The package id must be "package:publisher" with hypermap-safe
 * names (Hyperware only asks for two non-empty parts). */
static bool split_path(const char *rel, char **pkg, char **drive,
                       const char **rest)
{
    const char *s1 = strchr(rel, '/');
    if (s1 == NULL || s1 == rel)
        return false;
    const char *colon = memchr(rel, ':', (size_t)(s1 - rel));
    if (colon == NULL || colon == rel || colon + 1 == s1 ||
        memchr(colon + 1, ':', (size_t)(s1 - colon - 1)) != NULL ||
        !hcc_name_safe(rel, (size_t)(colon - rel), false) ||
        !hcc_name_safe(colon + 1, (size_t)(s1 - colon - 1), true))
        return false;
    const char *d = s1 + 1;
    const char *s2 = strchr(d, '/');
    size_t dl = s2 ? (size_t)(s2 - d) : strlen(d);
    if (dl == 0)
        return false;
    *pkg = hcn_xstrndup(rel, (size_t)(s1 - rel));
    *drive = hcn_xstrndup(d, dl);
    *rest = s2 ? s2 + 1 : d + dl;
    return true;
}

/* -------------------------------------------------------------- module */

typedef struct vfs_cursor {
    UT_hash_handle hh;
    uint64_t pos;
    char path[];
} vfs_cursor;

typedef struct vfs_pkg {
    UT_hash_handle hh;
    char *dir; /* the package's pkg/ folder (a real path) */
    char id[]; /* "package:publisher" */
} vfs_pkg;

typedef struct vfs_mod {
    char *root;         /* real path of <home>/vfs */
    uint64_t max_file;  /* 0 = no limit */
    pthread_mutex_t mu; /* guards pkgs (packages may load from another
                         * thread) */
    vfs_pkg *pkgs;
    vfs_cursor *cursors; /* module thread only */
} vfs_mod;

static uint64_t cur_get(vfs_mod *v, const char *p)
{
    vfs_cursor *c;
    HASH_FIND_STR(v->cursors, p, c);
    return c ? c->pos : 0;
}

static void cur_set(vfs_mod *v, const char *p, uint64_t pos)
{
    vfs_cursor *c;
    HASH_FIND_STR(v->cursors, p, c);
    if (c == NULL && pos == 0)
        return;
    if (c == NULL) {
        size_t n = strlen(p);
        c = hcn_xmalloc(sizeof *c + n + 1);
        memcpy(c->path, p, n + 1);
        HASH_ADD_KEYPTR(hh, v->cursors, c->path, n, c);
    }
    if (pos == 0) {
        HASH_DEL(v->cursors, c);
        free(c);
    } else {
        c->pos = pos;
    }
}

/* Forget the cursors of p and, when it is a directory, of everything below
 * it (remove, rename). */
static void cur_drop(vfs_mod *v, const char *p)
{
    size_t n = strlen(p);
    vfs_cursor *c, *tmp;
    HASH_ITER(hh, v->cursors, c, tmp)
    {
        if (strncmp(c->path, p, n) == 0 &&
            (c->path[n] == 0 || c->path[n] == '/')) {
            HASH_DEL(v->cursors, c);
            free(c);
        }
    }
}

/* The registered pkg/ folder of a package, copied; NULL if none. */
static char *pkg_dir_of(vfs_mod *v, const char *pkg)
{
    pthread_mutex_lock(&v->mu);
    vfs_pkg *e;
    HASH_FIND_STR(v->pkgs, pkg, e);
    char *d = e ? hcn_xstrdup(e->dir) : NULL;
    pthread_mutex_unlock(&v->mu);
    return d;
}

/* ------------------------------------------------------------- replies */

static json_t *err_unit(const char *variant)
{
    return json_pack("{ss}", "Err", variant);
}

static json_t *err_io(const char *msg)
{
    return json_pack("{s{ss}}", "Err", "IOError", msg);
}

/* Rust's io::Error text for an OS error, as Hyperware's IOError carries. */
static json_t *err_errno(int e)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%s (os error %d)", strerror(e), e);
    return err_io(buf);
}

static json_t *err_parse(const char *error, const char *path)
{
    json_t *p = json_stringn(path, strlen(path));
    return json_pack("{s{s{sss o}}}", "Err", "ParseError", "error", error,
                     "path", p ? p : json_string(""));
}

static json_t *err_too_large(vfs_mod *v, uint64_t size)
{
    char buf[200];
    snprintf(buf, sizeof buf,
             "file too large: %llu bytes, over this node's limit of %llu "
             "(--vfs-max-file-size)",
             (unsigned long long)size, (unsigned long long)v->max_file);
    return err_io(buf);
}

static bool too_large(vfs_mod *v, uint64_t size)
{
    return v->max_file != 0 && size > v->max_file;
}

/* As Hyperware's vfs: a success goes to the rsvp, or to the source when it
 * expects a response, with the request's metadata; an error goes to the
 * rsvp or source only when a response is expected, without metadata. */
static void reply(hcn_proc *self, hcn_msg *m, json_t *body, bool is_err,
                  hcn_blob *blob)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    HCN_MOD_REPLY(self, m,
                  .when = is_err ? HCN_MOD_IF_EXPECTS : HCN_MOD_IF_ASKED,
                  .body = s, .with_metadata = !is_err, .blob = blob);
    free(s);
}

/* --------------------------------------------------------- capabilities */

/* Sources that act with root rights: the kernel (Hyperware skips vfs's
 * checks for it) and the node owner's injector. */
static bool privileged(const char *spid)
{
    return strcmp(spid, "kernel:distro:sys") == 0 ||
           strcmp(spid, "terminal:terminal:sys") == 0;
}

static char *drive_params(const char *kind, const char *drive_id)
{
    json_t *j = json_pack("{ssss}", "kind", kind, "drive", drive_id);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

/* Whether the source process holds {issuer: our vfs, params}. */
static bool holds(hcn_proc *self, const char *spid, const char *canon)
{
    hcn_proc *p = hcn_node_find(self->node, spid);
    if (p == NULL)
        return false;
    pthread_mutex_lock(&p->lock);
    bool ok = hcn_capset_has(&p->caps, self->addr, canon);
    pthread_mutex_unlock(&p->lock);
    hcn_proc_unref(p);
    return ok;
}

static bool has_root(hcn_proc *self, const char *spid)
{
    return holds(self, spid, "{\"root\":true}");
}

static bool has_drive_cap(hcn_proc *self, const char *spid, const char *kind,
                          const char *drive_id)
{
    char *c = drive_params(kind, drive_id);
    bool ok = holds(self, spid, c);
    free(c);
    return ok || has_root(self, spid);
}

typedef enum act_class {
    CLS_WRITE,
    CLS_READ,
    CLS_TWO_PATHS,
    CLS_DRIVE,
} act_class;

static act_class class_of(hcn_vfs_action a)
{
    switch (a) {
    case HCN_VFS_READ:
    case HCN_VFS_READ_DIR:
    case HCN_VFS_READ_EXACT:
    case HCN_VFS_READ_TO_END:
    case HCN_VFS_READ_TO_STRING:
    case HCN_VFS_SEEK:
    case HCN_VFS_HASH:
    case HCN_VFS_METADATA:
    case HCN_VFS_LEN: return CLS_READ;
    case HCN_VFS_RENAME:
    case HCN_VFS_COPY_FILE: return CLS_TWO_PATHS;
    case HCN_VFS_CREATE_DRIVE: return CLS_DRIVE;
    default: return CLS_WRITE;
    }
}

/* A parsed path: package id, drive and rest, and where it lives on disk. */
typedef struct vpath {
    char *rel; /* normalized, "pkg:pub/drive/rest" */
    char *pkg, *drive;
    const char *rest;
    char *drive_id; /* "/pkg:pub/drive", as capabilities name drives */
    char *base;     /* the drive's folder on disk */
    char *real;     /* the path on disk */
    bool ro;        /* the read-only pkg drive */
    bool mapped;    /* ... mapped to a loaded package's pkg/ folder */
} vpath;

static void vpath_fini(vpath *p)
{
    free(p->rel);
    free(p->pkg);
    free(p->drive);
    free(p->drive_id);
    free(p->base);
    free(p->real);
    memset(p, 0, sizeof *p);
}

static bool parse_vpath(const char *path, vpath *out)
{
    memset(out, 0, sizeof *out);
    out->rel = hcn_vfs_normalize(path);
    if (out->rel == NULL ||
        !split_path(out->rel, &out->pkg, &out->drive, &out->rest)) {
        vpath_fini(out);
        return false;
    }
    out->drive_id = hcn_xasprintf("/%s/%s", out->pkg, out->drive);
    return true;
}

/* Hyperware's check_caps, with the source's own package always allowed. */
static json_t *check_caps(hcn_proc *self, const hcn_msg *m,
                          const hcn_vfs_request *r, const vpath *vp,
                          const vpath *np)
{
    const char *spid = hcn_addr_pid(m->source);
    if (privileged(spid))
        return NULL;
    const char *src_pkg = strchr(spid, ':');
    src_pkg = src_pkg ? src_pkg + 1 : "";
    bool same = strcmp(src_pkg, vp->pkg) == 0;
    switch (class_of(r->action)) {
    case CLS_WRITE:
        return same || has_drive_cap(self, spid, "write", vp->drive_id)
                   ? NULL
                   : err_unit("NoWriteCap");
    case CLS_READ:
        return same || has_drive_cap(self, spid, "read", vp->drive_id)
                   ? NULL
                   : err_unit("NoReadCap");
    case CLS_TWO_PATHS:
        if (same && strcmp(src_pkg, np->pkg) == 0)
            return NULL;
        if (!has_drive_cap(self, spid, "write", vp->drive_id))
            return err_unit("NoWriteCap");
        if (strcmp(np->drive_id, vp->drive_id) == 0 ||
            has_drive_cap(self, spid, "write", np->drive_id))
            return NULL;
        return err_unit("NoWriteCap");
    case CLS_DRIVE:
        if (!same && !has_root(self, spid))
            return err_unit("NoWriteCap");
        hcn_proc *p = hcn_node_find(self->node, spid);
        if (p == NULL)
            return err_unit("AddCapFailed");
        char *rd = drive_params("read", vp->drive_id);
        char *wr = drive_params("write", vp->drive_id);
        hcn_grant(p, self->addr, rd);
        hcn_grant(p, self->addr, wr);
        free(rd);
        free(wr);
        hcn_proc_unref(p);
        return NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------ the disk */

static bool inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* Whether walking `rest` (normalized, relative) down from `base` (a real
 * path) stays inside base: every symbolic link met must resolve inside it.
 * A dangling link is refused too, since creating through it would write
 * wherever it points.  Components that do not exist end the walk.  With
 * `follow_last` false the last component may be any link (the action works
 * on the link itself: remove, rename). */
static bool contained(const char *base, const char *rest, bool follow_last)
{
    if (*rest == 0)
        return true;
    char *p = hcn_xasprintf("%s/%s", base, rest);
    char *c = p + strlen(base) + 1;
    bool ok = true;
    for (;;) {
        char *slash = strchr(c, '/');
        if (slash)
            *slash = 0;
        else if (!follow_last)
            break;
        struct stat st;
        if (lstat(p, &st) != 0)
            break;
        if (S_ISLNK(st.st_mode)) {
            char *r = realpath(p, NULL);
            ok = r != NULL && inside(r, base);
            free(r);
            if (!ok)
                break;
        }
        if (slash == NULL)
            break;
        *slash = '/';
        c = slash + 1;
    }
    free(p);
    return ok;
}

static bool is_link(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
}

/* Place vp on disk: the drive's folder (the registered pkg/ folder for
 * drive "pkg") and the path below it, refusing symbolic links out. */
static json_t *locate(vfs_mod *v, vpath *vp, const char *shown,
                      bool follow_last)
{
    vp->ro = strcmp(vp->drive, "pkg") == 0;
    char *mapped = vp->ro ? pkg_dir_of(v, vp->pkg) : NULL;
    bool ok = true;
    if (mapped) {
        vp->base = mapped;
        vp->mapped = true;
    } else {
        char *pdir = hcn_xasprintf("%s/%s", v->root, vp->pkg);
        vp->base = hcn_xasprintf("%s/%s", pdir, vp->drive);
        ok = !is_link(pdir) && !is_link(vp->base);
        free(pdir);
    }
    if (!ok || !contained(vp->base, vp->rest, follow_last))
        return err_parse("path leaves its drive through a symbolic link",
                         shown);
    vp->real = *vp->rest ? hcn_xasprintf("%s/%s", vp->base, vp->rest)
                         : hcn_xstrdup(vp->base);
    return NULL;
}

/* open(2) with the flags every open here adds: no descriptor leaks into
 * spawned programs, and a FIFO or device planted in a drive cannot block
 * the module. */
static int open_nb(const char *p, int flags)
{
    return open(p, flags | O_CLOEXEC | O_NONBLOCK, 0666);
}

/* Open for the actions that work on an open file in Hyperware, which opens
 * files for reading and writing: a directory is EISDIR.  Returns the
 * descriptor or -1 with *err set. */
static int open_file(const char *p, int flags, struct stat *st, json_t **err)
{
    int fd = open_nb(p, flags);
    if (fd < 0) {
        *err = err_errno(errno);
        return -1;
    }
    int e = fstat(fd, st) != 0 ? errno : S_ISDIR(st->st_mode) ? EISDIR : 0;
    if (e == 0)
        return fd;
    close(fd);
    *err = err_errno(e);
    return -1;
}

static json_t *write_at(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return err_errno(errno);
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return NULL;
}

/* Read up to n bytes at off (fewer at end of file). */
static json_t *read_at(int fd, uint8_t *p, size_t n, uint64_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, p + *got, n - *got, (off_t)(off + *got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return err_errno(errno);
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return NULL;
}

static const char *type_name(mode_t m)
{
    return S_ISREG(m)   ? "File"
           : S_ISDIR(m) ? "Directory"
           : S_ISLNK(m) ? "Symlink"
                        : "Other";
}

/* mkdir -p that fails when the path exists as something else. */
static int mkdirs(const char *p)
{
    struct stat st;
    if (hcn_mkdirs(p) != 0)
        return errno;
    if (stat(p, &st) != 0)
        return errno;
    return S_ISDIR(st.st_mode) ? 0 : EEXIST;
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 ? errno : 0;
}

static int remove_all(const char *p)
{
    struct stat st;
    if (lstat(p, &st) != 0)
        return errno;
    if (!S_ISDIR(st.st_mode))
        return S_ISLNK(st.st_mode) ? (unlink(p) != 0 ? errno : 0) : ENOTDIR;
    int rc = nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return rc < 0 ? errno : rc;
}

static int cmp_entries(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ReadDir: entries named relative to the vfs root ("pkg:pub/drive/x"),
 * with their own type (links are not followed), as Hyperware lists them;
 * sorted by name here.  `extra` names (with type Directory) are added when
 * missing on disk: mapped pkg/ folders and their packages. */
static json_t *list_dir(const char *real, const char *rel,
                        const char *const *extra, size_t nextra, json_t **out)
{
    DIR *d = opendir(real);
    if (d == NULL && (errno != ENOENT || nextra == 0))
        return err_errno(errno);
    size_t n = 0, cap = 16 + nextra;
    char **names = hcn_xmalloc(cap * sizeof *names);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap *= 2;
            char **nn = realloc(names, cap * sizeof *nn);
            if (nn == NULL)
                abort();
            names = nn;
        }
        names[n++] = hcn_xstrdup(e->d_name);
    }
    if (d)
        closedir(d);
    size_t ondisk = n;
    for (size_t i = 0; i < nextra; i++) {
        bool have = false;
        for (size_t k = 0; k < ondisk && !have; k++)
            have = strcmp(names[k], extra[i]) == 0;
        if (!have) {
            if (n == cap) {
                cap *= 2;
                char **nn = realloc(names, cap * sizeof *nn);
                if (nn == NULL)
                    abort();
                names = nn;
            }
            names[n++] = hcn_xstrdup(extra[i]);
        }
    }
    qsort(names, n, sizeof *names, cmp_entries);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char *full = hcn_xasprintf("%s/%s", real, names[i]);
        struct stat st;
        const char *type = lstat(full, &st) == 0 ? type_name(st.st_mode)
                                                 : "Directory"; /* extra */
        char *path = *rel ? hcn_xasprintf("%s/%s", rel, names[i])
                          : hcn_xstrdup(names[i]);
        json_t *p = json_stringn(path, strlen(path));
        if (p != NULL) /* names that are not UTF-8 cannot be listed */
            json_array_append_new(
                arr, json_pack("{soss}", "path", p, "file_type", type));
        free(path);
        free(full);
        free(names[i]);
    }
    free(names);
    *out = json_pack("{so}", "ReadDir", arr);
    return NULL;
}

/* ReadDir of "/" or of a path above the drives: root rights only. */
static json_t *list_root(vfs_mod *v, const char *rel, json_t **out)
{
    if (!contained(v->root, rel, true))
        return err_parse("path leaves its drive through a symbolic link", rel);
    char *real =
        *rel ? hcn_xasprintf("%s/%s", v->root, rel) : hcn_xstrdup(v->root);
    size_t n = 0;
    char **extra = NULL;
    pthread_mutex_lock(&v->mu);
    if (*rel == 0) {
        extra = hcn_xcalloc(HASH_COUNT(v->pkgs) + 1, sizeof *extra);
        for (vfs_pkg *e = v->pkgs; e; e = e->hh.next)
            extra[n++] = hcn_xstrdup(e->id);
    } else {
        vfs_pkg *e;
        HASH_FIND_STR(v->pkgs, rel, e);
        if (e) {
            extra = hcn_xcalloc(1, sizeof *extra);
            extra[n++] = hcn_xstrdup("pkg");
        }
    }
    pthread_mutex_unlock(&v->mu);
    json_t *err = list_dir(real, rel, (const char *const *)extra, n, out);
    for (size_t i = 0; i < n; i++)
        free(extra[i]);
    free(extra);
    free(real);
    return err;
}

/* Whether an action would change anything at vp (for the read-only pkg
 * drive). */
static bool modifies(const hcn_vfs_request *r, const vpath *vp)
{
    switch (r->action) {
    case HCN_VFS_CREATE_DIR:
    case HCN_VFS_CREATE_DIR_ALL:
    case HCN_VFS_CREATE_FILE:
    case HCN_VFS_WRITE:
    case HCN_VFS_WRITE_ALL:
    case HCN_VFS_APPEND:
    case HCN_VFS_REMOVE_FILE:
    case HCN_VFS_REMOVE_DIR:
    case HCN_VFS_REMOVE_DIR_ALL:
    case HCN_VFS_ADD_ZIP:
    case HCN_VFS_SET_LEN:
    case HCN_VFS_RENAME: return true;
    case HCN_VFS_OPEN_FILE: {
        struct stat st;
        return r->create && stat(vp->real, &st) != 0;
    }
    default: return false;
    }
}

static json_t *copy_file(vfs_mod *v, const char *from, const char *to)
{
    struct stat st, dt;
    int in = open_nb(from, O_RDONLY);
    if (in < 0)
        return err_errno(errno);
    json_t *err = NULL;
    int out = -1;
    if (fstat(in, &st) != 0) {
        err = err_errno(errno);
    } else if (!S_ISREG(st.st_mode)) {
        err = err_io("the source path is neither a regular file nor a "
                     "symlink to a regular file");
    } else if (too_large(v, (uint64_t)st.st_size)) {
        err = err_too_large(v, (uint64_t)st.st_size);
    } else if ((out = open(to, O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK,
                           st.st_mode & 07777)) < 0 ||
               fstat(out, &dt) != 0) {
        err = err_errno(errno);
    } else if (dt.st_dev == st.st_dev && dt.st_ino == st.st_ino) {
        /* onto itself: nothing to do (truncating would lose it) */
    } else if (ftruncate(out, 0) != 0) {
        err = err_errno(errno);
    } else {
        uint8_t buf[65536];
        uint64_t off = 0;
        for (;;) {
            size_t got;
            if ((err = read_at(in, buf, sizeof buf, off, &got)) != NULL ||
                got == 0)
                break;
            if ((err = write_at(out, buf, got, off)) != NULL)
                break;
            off += got;
        }
    }
    close(in);
    if (out >= 0)
        close(out);
    return err;
}

static json_t *hash_file(vfs_mod *v, const char *p, json_t **out)
{
    struct stat st;
    json_t *err = NULL;
    int fd = open_file(p, O_RDONLY, &st, &err);
    if (fd < 0)
        return err;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        abort();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    uint8_t buf[65536];
    uint64_t off = 0;
    for (;;) {
        size_t got;
        if ((err = read_at(fd, buf, sizeof buf, off, &got)) != NULL || got == 0)
            break;
        EVP_DigestUpdate(ctx, buf, got);
        off += got;
    }
    close(fd);
    if (err == NULL) {
        unsigned char md[32];
        unsigned int mdl = 0;
        EVP_DigestFinal_ex(ctx, md, &mdl);
        json_t *arr = json_array();
        for (unsigned i = 0; i < mdl; i++)
            json_array_append_new(arr, json_integer(md[i]));
        *out = json_pack("{so}", "Hash", arr);
        cur_set(v, p, off);
    }
    EVP_MD_CTX_free(ctx);
    return err;
}

/* Read from the cursor to the end of the file (ReadToEnd, ReadToString). */
static json_t *read_rest(vfs_mod *v, const char *p, bool ro, uint8_t **buf,
                         size_t *len)
{
    struct stat st;
    json_t *err = NULL;
    int fd = open_file(p, ro ? O_RDONLY : O_RDWR, &st, &err);
    if (fd < 0)
        return err;
    uint64_t pos = cur_get(v, p);
    uint64_t size = (uint64_t)st.st_size;
    uint64_t want = size > pos ? size - pos : 0;
    if (too_large(v, want)) {
        close(fd);
        return err_too_large(v, want);
    }
    *buf = hcn_xmalloc((size_t)want + 1);
    err = read_at(fd, *buf, (size_t)want, pos, len);
    close(fd);
    if (err) {
        free(*buf);
        *buf = NULL;
        return err;
    }
    cur_set(v, p, pos + *len);
    return NULL;
}

/* Run one parsed request whose source may act on vp (and np). */
static json_t *act(vfs_mod *v, hcn_msg *m, const hcn_vfs_request *r, vpath *vp,
                   vpath *np, json_t **out, hcn_blob **blob)
{
    const char *p = vp->real;
    int flags = vp->ro ? O_RDONLY : O_RDWR;
    struct stat st;
    json_t *err = NULL;
    int fd;
    uint8_t *buf = NULL;
    size_t got = 0;
    *out = json_string("Ok");
    switch (r->action) {
    case HCN_VFS_CREATE_DRIVE: {
        /* A mapped pkg drive exists already (and is not ours to create). */
        int e = vp->mapped ? 0 : mkdirs(vp->base);
        return e ? err_errno(e) : NULL;
    }
    case HCN_VFS_CREATE_DIR:
        return mkdir(p, 0700) != 0 ? err_errno(errno) : NULL;
    case HCN_VFS_CREATE_DIR_ALL: {
        int e = mkdirs(p);
        return e ? err_errno(e) : NULL;
    }
    case HCN_VFS_CREATE_FILE:
        cur_drop(v, p);
        if ((fd = open_file(p, O_RDWR | O_CREAT | O_TRUNC, &st, &err)) < 0)
            return err;
        close(fd);
        return NULL;
    case HCN_VFS_OPEN_FILE:
        if ((fd = open_file(p, flags | (r->create && !vp->ro ? O_CREAT : 0),
                            &st, &err)) < 0)
            return err;
        close(fd);
        cur_set(v, p, 0);
        return NULL;
    case HCN_VFS_CLOSE_FILE: cur_set(v, p, 0); return NULL;
    case HCN_VFS_SYNC_ALL:
        if ((fd = open_file(p, flags, &st, &err)) < 0)
            return err;
        if (fsync(fd) != 0)
            err = err_errno(errno);
        close(fd);
        return err;
    case HCN_VFS_WRITE:
        if (m->blob == NULL)
            return err_unit("NoBlob");
        if (too_large(v, m->blob->len))
            return err_too_large(v, m->blob->len);
        fd = open_nb(p, O_WRONLY | O_CREAT | O_TRUNC);
        if (fd < 0)
            return err_errno(errno);
        err = write_at(fd, m->blob->bytes, m->blob->len, 0);
        close(fd);
        return err;
    case HCN_VFS_WRITE_ALL:
    case HCN_VFS_APPEND: {
        if (m->blob == NULL)
            return err_unit("NoBlob");
        if ((fd = open_file(p, O_RDWR, &st, &err)) < 0)
            return err;
        uint64_t at =
            r->action == HCN_VFS_APPEND ? (uint64_t)st.st_size : cur_get(v, p);
        uint64_t end = at + m->blob->len;
        uint64_t size = end > (uint64_t)st.st_size ? end : (uint64_t)st.st_size;
        if (too_large(v, size) || end > INT64_MAX)
            err = err_too_large(v, size);
        else if ((err = write_at(fd, m->blob->bytes, m->blob->len, at)) == NULL)
            cur_set(v, p, end);
        close(fd);
        return err;
    }
    case HCN_VFS_READ: {
        if ((fd = open_nb(p, O_RDONLY)) < 0)
            return err_errno(errno);
        if (fstat(fd, &st) != 0) {
            err = err_errno(errno);
        } else if (S_ISDIR(st.st_mode)) {
            err = err_errno(EISDIR);
        } else if (too_large(v, (uint64_t)st.st_size)) {
            err = err_too_large(v, (uint64_t)st.st_size);
        } else {
            buf = hcn_xmalloc((size_t)st.st_size + 1);
            err = read_at(fd, buf, (size_t)st.st_size, 0, &got);
        }
        close(fd);
        if (err == NULL) {
            json_decref(*out);
            *out = json_string("Read");
            *blob = hcn_blob_new(OCTET, buf, got);
        }
        free(buf);
        return err;
    }
    case HCN_VFS_READ_TO_END:
        if ((err = read_rest(v, p, vp->ro, &buf, &got)) != NULL)
            return err;
        json_decref(*out);
        *out = json_string("Read");
        *blob = hcn_blob_new(OCTET, buf, got);
        free(buf);
        return NULL;
    case HCN_VFS_READ_TO_STRING: {
        if ((err = read_rest(v, p, vp->ro, &buf, &got)) != NULL)
            return err;
        json_t *s = json_stringn((const char *)buf, got);
        free(buf);
        if (s == NULL)
            return err_io("stream did not contain valid UTF-8");
        json_decref(*out);
        *out = json_pack("{so}", "ReadToString", s);
        return NULL;
    }
    case HCN_VFS_READ_EXACT: {
        if ((fd = open_file(p, flags, &st, &err)) < 0)
            return err;
        uint64_t pos = cur_get(v, p), size = (uint64_t)st.st_size;
        if (too_large(v, r->n) || r->n > SIZE_MAX - 1) {
            err = err_too_large(v, r->n);
        } else if (pos > size || size - pos < r->n) {
            /* tokio's read_exact reads to the end, then fails */
            err = err_io("early eof");
            if (size > pos)
                cur_set(v, p, size);
        } else {
            buf = hcn_xmalloc((size_t)r->n + 1);
            err = read_at(fd, buf, (size_t)r->n, pos, &got);
            if (err == NULL && got < r->n)
                err = err_io("early eof");
            if (err == NULL) {
                cur_set(v, p, pos + got);
                json_decref(*out);
                *out = json_string("Read");
                *blob = hcn_blob_new(OCTET, buf, got);
            }
            free(buf);
        }
        close(fd);
        return err;
    }
    case HCN_VFS_SEEK: {
        if ((fd = open_file(p, flags, &st, &err)) < 0)
            return err;
        close(fd);
        int64_t from = r->whence == SEEK_END   ? (int64_t)st.st_size
                       : r->whence == SEEK_CUR ? (int64_t)cur_get(v, p)
                                               : 0;
        int64_t to;
        if (r->whence == SEEK_SET) {
            if (r->n > INT64_MAX)
                return err_errno(EINVAL);
            to = (int64_t)r->n;
        } else if (__builtin_add_overflow(from, r->offset, &to) || to < 0) {
            return err_errno(EINVAL);
        }
        cur_set(v, p, (uint64_t)to);
        json_decref(*out);
        *out = json_pack("{s{sI}}", "SeekFrom", "new_offset", (json_int_t)to);
        return NULL;
    }
    case HCN_VFS_REMOVE_FILE:
        if (unlink(p) != 0)
            return err_errno(errno);
        cur_drop(v, p);
        return NULL;
    case HCN_VFS_REMOVE_DIR:
        if (rmdir(p) != 0)
            return err_errno(errno);
        return NULL;
    case HCN_VFS_REMOVE_DIR_ALL: {
        int e = remove_all(p);
        cur_drop(v, p);
        return e ? err_errno(e) : NULL;
    }
    case HCN_VFS_RENAME:
        if (rename(p, np->real) != 0)
            return err_errno(errno);
        cur_drop(v, p);
        cur_drop(v, np->real);
        return NULL;
    case HCN_VFS_COPY_FILE: return copy_file(v, p, np->real);
    case HCN_VFS_METADATA:
        if (stat(p, &st) != 0)
            return err_errno(errno);
        json_decref(*out);
        *out = json_pack("{s{sssI}}", "Metadata", "file_type",
                         type_name(st.st_mode), "len", (json_int_t)st.st_size);
        return NULL;
    case HCN_VFS_LEN:
        if ((fd = open_file(p, flags, &st, &err)) < 0)
            return err;
        close(fd);
        json_decref(*out);
        *out = json_pack("{sI}", "Len", (json_int_t)st.st_size);
        return NULL;
    case HCN_VFS_SET_LEN:
        if (too_large(v, r->n) || r->n > INT64_MAX)
            return err_too_large(v, r->n);
        if ((fd = open_file(p, O_RDWR, &st, &err)) < 0)
            return err;
        if (ftruncate(fd, (off_t)r->n) != 0)
            err = err_errno(errno);
        close(fd);
        return err;
    case HCN_VFS_HASH:
        json_decref(*out);
        *out = NULL;
        return hash_file(v, p, out);
    case HCN_VFS_ADD_ZIP:
        if (m->blob == NULL)
            return err_unit("NoBlob");
        return err_io("AddZip is not supported by this node");
    case HCN_VFS_READ_DIR: {
        json_decref(*out);
        *out = NULL;
        const char *none[1] = {NULL};
        return list_dir(p, vp->rel, none, 0, out);
    }
    }
    return NULL;
}

/* Everything between a parsed request and its answer. */
static json_t *serve(hcn_proc *self, hcn_msg *m, const hcn_vfs_request *r,
                     json_t **out, hcn_blob **blob)
{
    vfs_mod *v = self->mod;
    const char *spid = hcn_addr_pid(m->source);
    vpath vp, np = {0};
    bool parsed = parse_vpath(r->path, &vp);
    if (r->action == HCN_VFS_READ_DIR &&
        (strcmp(r->path, "/") == 0 || !parsed)) {
        /* Listing above the drives needs root, as in Hyperware. */
        if (parsed)
            vpath_fini(&vp);
        if (!privileged(spid) && !has_root(self, spid))
            return err_unit("NoReadCap");
        char *rel = hcn_vfs_normalize(r->path);
        if (rel == NULL)
            return err_unit("MalformedRequest");
        json_t *err = list_root(v, rel, out);
        free(rel);
        return err;
    }
    if (!parsed)
        return err_unit("MalformedRequest");
    json_t *err = NULL;
    if (class_of(r->action) == CLS_TWO_PATHS && !parse_vpath(r->new_path, &np))
        err = err_unit("MalformedRequest");
    if (err == NULL)
        err = check_caps(self, m, r, &vp, &np);
    /* Removing or renaming a link works on the link, not its target. */
    bool follow = r->action != HCN_VFS_REMOVE_FILE &&
                  r->action != HCN_VFS_REMOVE_DIR_ALL &&
                  r->action != HCN_VFS_RENAME;
    if (err == NULL)
        err = locate(v, &vp, r->path, follow);
    if (err == NULL && np.rel != NULL)
        err = locate(v, &np, r->new_path, r->action != HCN_VFS_RENAME);
    /* The package's own folder is never changed through the vfs. */
    if (err == NULL &&
        ((vp.ro && modifies(r, &vp)) || (np.rel != NULL && np.ro)))
        err = err_unit("NoWriteCap");
    if (err == NULL)
        err = act(v, m, r, &vp, &np, out, blob);
    vpath_fini(&vp);
    vpath_fini(&np);
    return err;
}

static void vfs_handle(hcn_proc *self, hcn_msg *m)
{
    if (m->kind != HCN_MSG_REQUEST) {
        hcn_msg_unref(m);
        return;
    }
    if (!hcn_mod_from_local(self, m)) {
        hcn_mod_log(self, 1,
                    "vfs: got a request from another node; requests must "
                    "come from our node");
        hcn_msg_unref(m);
        return;
    }
    hcn_vfs_request r;
    json_t *out = NULL;
    hcn_blob *blob = NULL;
    json_t *err;
    if (hcn_vfs_parse_request(m->body, m->body_len, &r) != 0)
        err = err_unit("MalformedRequest");
    else
        err = serve(self, m, &r, &out, &blob);
    if (err) {
        if (blob)
            hcn_blob_unref(blob);
        blob = NULL;
        reply(self, m, err, true, NULL);
    } else {
        reply(self, m, out, false, blob);
    }
    json_decref(err);
    json_decref(out);
    hcn_blob_unref(blob);
    hcn_vfs_request_fini(&r);
    hcn_msg_unref(m);
}

static void vfs_fini(hcn_proc *self)
{
    vfs_mod *v = self->mod;
    if (v == NULL)
        return;
    vfs_cursor *c, *ct;
    HASH_ITER(hh, v->cursors, c, ct)
    {
        HASH_DEL(v->cursors, c);
        free(c);
    }
    vfs_pkg *e, *et;
    HASH_ITER(hh, v->pkgs, e, et)
    {
        HASH_DEL(v->pkgs, e);
        free(e->dir);
        free(e);
    }
    pthread_mutex_destroy(&v->mu);
    free(v->root);
    free(v);
    self->mod = NULL;
}

static const hcn_module_ops vfs_ops = {
    .handle = vfs_handle,
    .fini = vfs_fini,
};

int hcn_mod_vfs_add(hcn_node *n, char *err, size_t errlen)
{
    char *dir = hcn_xasprintf("%s/vfs", n->home);
    char *root = hcn_mkdirs(dir) == 0 ? realpath(dir, NULL) : NULL;
    free(dir);
    if (root == NULL) {
        snprintf(err, errlen, "cannot create the vfs directory %s/vfs: %s",
                 n->home, strerror(errno));
        return -1;
    }
    vfs_mod *v = hcn_xcalloc(1, sizeof *v);
    v->root = root;
    v->max_file = n->cfg.vfs_max_file_bytes;
    pthread_mutex_init(&v->mu, NULL);
    hcn_proc *p = hcn_node_add_proc(n, VFS_PID, false, NULL);
    p->ops = &vfs_ops;
    p->mod = v;
    hcn_proc_unref(p);
    return 0;
}

void hcn_vfs_add_package(hcn_node *n, const char *package_id,
                         const char *pkg_dir)
{
    hcn_proc *p = hcn_node_find(n, VFS_PID);
    if (p == NULL || pkg_dir == NULL) {
        hcn_proc_unref(p);
        return;
    }
    vfs_mod *v = p->mod;
    pthread_mutex_lock(&v->mu);
    vfs_pkg *e;
    HASH_FIND_STR(v->pkgs, package_id, e);
    if (e == NULL) {
        size_t len = strlen(package_id);
        e = hcn_xcalloc(1, sizeof *e + len + 1);
        memcpy(e->id, package_id, len + 1);
        HASH_ADD_KEYPTR(hh, v->pkgs, e->id, len, e);
    }
    free(e->dir);
    e->dir = hcn_xstrdup(pkg_dir);
    pthread_mutex_unlock(&v->mu);
    hcn_proc_unref(p);
}
