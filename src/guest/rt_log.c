/* libhyperc runtime: logging: to the terminal at its level, and to
 * /<package>/log/<process>.log through vfs.  Internal (rt_int.h). */
#include "rt_int.h"

/* --------------------------------------------------------------- logging */

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

/* A blocking request to vfs:distro:sys (setup and rotation only); true when
 * the reply is not {"Err":...}.  The reply's blob, if wanted, in *blob; its
 * body, if wanted, in reply[cap] (NUL-terminated, cut to fit). */
static bool vfs_call(const char *body, const uint8_t *data, size_t len,
                     hw_blob *blob_out, char *reply, size_t cap)
{
    hw_address to;
    hpr_addr_set(&to, hpr_rt.our.node, "vfs", "distro", "sys");
    hw_request req;
    memset(&req, 0, sizeof req);
    req.has_expects_response = true;
    req.expects_response = 5;
    req.body.ptr = (uint8_t *)body;
    req.body.len = strlen(body);
    hw_blob b;
    memset(&b, 0, sizeof b);
    b.bytes.ptr = (uint8_t *)data;
    b.bytes.len = len;
    hw_await_result r;
    if (hw_send_and_await_response(&to, &req, data ? &b : NULL, &r) != 0)
        return false;
    bool ok = !r.is_err && r.message.kind == HW_MESSAGE_RESPONSE &&
              !(r.message.response.body.len >= 6 &&
                memcmp(r.message.response.body.ptr, "{\"Err\"", 6) == 0);
    if (ok && reply && cap) {
        size_t n = r.message.response.body.len < cap - 1
                       ? r.message.response.body.len
                       : cap - 1;
        memcpy(reply, r.message.response.body.ptr, n);
        reply[n] = '\0';
    }
    if (ok && blob_out)
        ok = hw_last_blob(blob_out);
    hw_await_result_fini(&r);
    return ok;
}

/* Keep the file under its size: drop the older half (as process_lib's
 * logging does). */
void hpr_log_file_trim(void)
{
    char body[600];
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Read\"}",
             hpr_rt.log_path);
    hw_blob old;
    memset(&old, 0, sizeof old);
    if (!vfs_call(body, NULL, 0, &old, NULL, 0)) {
        hpr_rt.file_size = 0; /* try again after another max bytes */
        hpr_rt.trim_pending = false;
        return;
    }
    size_t half = old.bytes.len / 2;
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Write\"}",
             hpr_rt.log_path);
    if (vfs_call(body, old.bytes.ptr + half, old.bytes.len - half, NULL, NULL,
                 0))
        hpr_rt.file_size = old.bytes.len - half;
    else
        hpr_rt.file_size = 0;
    hw_blob_fini(&old);
    hpr_rt.trim_pending = false;
}

static void log_file_append(const char *line, size_t n)
{
    char body[600];
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Append\"}",
             hpr_rt.log_path);
    hpr_send_to("vfs", "distro", "sys", body, false, 0, NULL,
                (const uint8_t *)line, n);
    hpr_rt.file_size += n;
    /* trimmed between messages: a blocking request inside a handler would
     * change the message the handler's reply answers */
    if (hpr_rt.file_size > hpr_rt.file_max)
        hpr_rt.trim_pending = true;
}

void hp_log_init(hp_log_level file, hp_log_level terminal,
                 uint64_t max_file_bytes)
{
    hpr_rt.file_level = file;
    hpr_rt.term_level = terminal;
    hpr_rt.file_max =
        max_file_bytes ? max_file_bytes : HPR_LOG_FILE_DEFAULT_MAX;
    hpr_rt.log_ready = true;
    hpr_rt.log_file = false;
    free(hpr_rt.log_path);
    hpr_rt.log_path = NULL;
    /* /<package>:<publisher>/log/<process>.log, as process_lib names it */
    char drive[400], body[600];
    snprintf(drive, sizeof drive, "/%s:%s/log", hpr_rt.our.process.package_name,
             hpr_rt.our.process.publisher_node);
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"CreateDrive\"}",
             drive);
    if (!vfs_call(body, NULL, 0, NULL, NULL, 0)) {
        hp_log(HP_LOG_WARN,
               "logging: vfs:distro:sys did not create %s (does "
               "pkg/manifest.json list \"vfs:distro:sys\" in "
               "request_capabilities?); logging to the terminal only",
               drive);
        return;
    }
    size_t plen = strlen(drive) + strlen(hpr_rt.our.process.process_name) + 6;
    hpr_rt.log_path = malloc(plen);
    if (hpr_rt.log_path == NULL)
        return;
    snprintf(hpr_rt.log_path, plen, "%s/%s.log", drive,
             hpr_rt.our.process.process_name);
    snprintf(body, sizeof body,
             "{\"path\":\"%s\",\"action\":{\"OpenFile\":{\"create\":true}}}",
             hpr_rt.log_path);
    if (!vfs_call(body, NULL, 0, NULL, NULL, 0)) {
        hp_log(HP_LOG_WARN,
               "logging: vfs:distro:sys did not open %s; logging to the "
               "terminal only",
               hpr_rt.log_path);
        return;
    }
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Len\"}",
             hpr_rt.log_path);
    char reply[64];
    hpr_rt.file_size = 0;
    if (vfs_call(body, NULL, 0, NULL, reply, sizeof reply) &&
        strncmp(reply, "{\"Len\":", 7) == 0) /* {"Len":N} */
        hpr_rt.file_size = strtoull(reply + 7, NULL, 10);
    hpr_rt.log_file = true;
}

void hp_logv(hp_log_level level, const char *fmt, va_list ap)
{
    if ((unsigned)level > HP_LOG_DEBUG)
        level = HP_LOG_DEBUG;
    hp_log_level term = hpr_rt.log_ready ? hpr_rt.term_level : HP_LOG_INFO;
    bool to_term = level <= term;
    /* a debug line below the terminal level still goes to the terminal at
     * level 3: the node shows (and keeps) it only at verbosity 3 */
    bool to_debug = !to_term && level == HP_LOG_DEBUG;
    bool to_file =
        hpr_rt.log_file && level <= hpr_rt.file_level && !hpr_rt.log_busy;
    if (!to_term && !to_debug && !to_file)
        return;
    char line[HPR_LOG_LINE_MAX];
    int n = snprintf(line, sizeof line, "%s %s: ", level_names[level],
                     hpr_rt.our.process.process_name
                         ? hpr_rt.our.process.process_name
                         : "?");
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    if (to_term || to_debug) {
        line[len] = '\0';
        /* error, warn -> 0; info, debug -> 1 (Rust's default mapping); a
         * debug line the terminal level leaves out -> 3 */
        hw_print_to_terminal(to_debug ? 3 : level <= HP_LOG_WARN ? 0 : 1, line);
    }
    if (to_file) {
        /* the file's lines carry the time, as tracing's do */
        char file_line[HPR_LOG_LINE_MAX + 40];
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        int t = (int)strftime(file_line, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        t += snprintf(file_line + t, 16, ".%06ldZ ", ts.tv_nsec / 1000);
        memcpy(file_line + t, line, len);
        file_line[t + (int)len] = '\n';
        hpr_rt.log_busy = true;
        log_file_append(file_line, (size_t)t + len + 1);
        hpr_rt.log_busy = false;
    }
}

void hp_log(hp_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hp_logv(level, fmt, ap);
    va_end(ap);
}
