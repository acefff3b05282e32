/* Internal to http-server:distro:sys (server.c, util.c, auth.c,
 * access.c): the pieces that do not need a socket, kept apart so that
 * unit tests can reach them.  Prefix hcn_http_. */
#ifndef HYPERC_NODE_HTTP_INT_H
#define HYPERC_NODE_HTTP_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ------------------------------------------------------------ routing */

/* One bound path: a pattern as Hyperware stores it ("/app:pkg:pub/api/:id",
 * "/app:pkg:pub/files/ *rest" without the space), split into segments.  A
 * segment ":name" matches one non-empty segment, "*name" one or more
 * characters, '/' included; anything else matches itself. */
typedef struct hcn_http_route {
    char *pattern;
    char **segs;
    size_t nsegs;
    unsigned nstatic, ndyn, nstar;
    void *data; /* the binding (owned by the caller) */
} hcn_http_route;

typedef struct hcn_http_router {
    hcn_http_route *v;
    size_t len, cap;
} hcn_http_router;

/* Add `pattern` with `data`.  A pattern already present keeps its place and
 * takes the new data; its old data is returned (to free), else NULL. */
void *hcn_http_router_add(hcn_http_router *r, const char *pattern, void *data);
/* The best route for `path` (a leading '/' is optional on both sides), as
 * route_recognizer ranks them: fewest '*' segments, then fewest ':'
 * segments, then most static ones.  Fills `params` (a JSON object, may be
 * NULL) with the ':' and '*' values; each '*' takes the most segments that
 * let the rest of its pattern match.  Time O(routes x pattern segments x
 * path segments), never backtracking, whatever a client sends.  NULL when
 * nothing matches. */
const hcn_http_route *hcn_http_router_match(const hcn_http_router *r,
                                            const char *path, json_t *params);
/* Free every route; free_data (may be NULL) releases each data. */
void hcn_http_router_fini(hcn_http_router *r, void (*free_data)(void *));

/* The node's home page (home.c): HTML listing the installed apps, each
 * with its homepage tile and a link to its UI; `uis` is a JSON array of
 * {app, path}, the UI roots bound on the server (borrowed).  malloc'd, its
 * length in *len; any thread. */
struct hcn_node;
char *hcn_http_home_page(struct hcn_node *n, json_t *uis, size_t *len);

/* Hyperware's normalize_path: one trailing '/' stripped.  Fresh string. */
char *hcn_http_normalize(const char *path, size_t len);
/* Hyperware's format_path_with_process: "/" + pid + path, trailing '/'
 * stripped; homepage:homepage:sys binds at the root.  Fresh string. */
char *hcn_http_format_path(const char *pid, const char *path);
/* package-publisher with every non-alphanumeric character turned into '-'
 * (generate_secure_subdomain).  Fresh string. */
char *hcn_http_secure_subdomain(const char *pid);

/* ---------------------------------------------------------- decoding */

/* Percent-decode s[0..len) (and '+' as space when `plus`); the result is
 * made valid UTF-8 lossily.  Fresh NUL-terminated string. */
char *hcn_http_url_decode(const char *s, size_t len, bool plus);
/* Parse a query string ("a=1&b=x%20y") into obj as serde_urlencoded does
 * into a HashMap: '+' is a space, percent-decoding, the last value wins. */
void hcn_http_parse_query(const char *q, size_t len, json_t *obj);
/* Bytes as valid UTF-8: every invalid sequence becomes U+FFFD, as Rust's
 * String::from_utf8_lossy.  Fresh string; *outlen gets its length. */
char *hcn_http_utf8_lossy(const uint8_t *s, size_t len, size_t *outlen);

/* ------------------------------------------------------------ output */

/* A growing byte string the server writes its JSON and responses into,
 * without building a jansson tree.  Zero-initialise it; `buf` is malloc'd
 * (the caller frees it) and NUL-terminated after the first write; out of
 * memory aborts, as hcn_xmalloc does.  Loop thread or any single thread. */
typedef struct hcn_http_out {
    char *buf;
    size_t len, cap;
} hcn_http_out;

/* Room for n more bytes (and the NUL) without another allocation. */
void hcn_http_out_reserve(hcn_http_out *o, size_t n);
/* Append s[0..n). */
void hcn_http_out_raw(hcn_http_out *o, const void *s, size_t n);
/* Append the NUL-terminated s. */
void hcn_http_out_str(hcn_http_out *o, const char *s);
/* Append v in decimal. */
void hcn_http_out_u64(hcn_http_out *o, uint64_t v);
/* Append s[0..n) as a JSON string, escaped byte for byte as jansson's
 * json_dumps escapes it (what processes parsed before the server wrote
 * its JSON itself): '"' and '\\' with a backslash, \b \f \n \r \t,
 * other bytes below 0x20 as \u00XX (upper-case hex), everything else as
 * is.  s must be valid UTF-8 (jansson refused anything else). */
void hcn_http_out_jstr(hcn_http_out *o, const char *s, size_t n);
/* Append a JSON object (borrowed) compactly, as json_dumps(JSON_COMPACT)
 * writes it: "{}" without a call into jansson when it is empty. */
void hcn_http_out_json(hcn_http_out *o, const json_t *obj);

/* -------------------------------------------------------------- peers */

/* Whether a peer address is loopback (127.0.0.0/8, ::1, ::ffff:127.x). */
bool hcn_http_is_loopback(const struct sockaddr *sa);
/* "1.2.3.4:5678" or "[::1]:5678", as Rust's SocketAddr prints. */
void hcn_http_format_addr(const struct sockaddr *sa, char *out, size_t n);
/* Whether a header name is one a proxy adds, making a request not local:
 * Forwarded, Via, any X-Forwarded-*, X-Real-IP, X-Client-IP,
 * X-Cluster-Client-IP, True-Client-IP, Cf-Connecting-Ip, Forwarded-For,
 * X-Originating-IP; in any case, with '_' for '-', blanks around it
 * ignored. */
bool hcn_http_is_proxy_header(const char *name);

/* ------------------------------------------------------ authentication */

/* An HS256 JWT with Hyperware's claims {username, subdomain, expiration}
 * (subdomain null when sub is NULL or empty).  Fresh string or NULL. */
char *hcn_http_jwt_make(const uint8_t *secret, size_t slen, const char *node,
                        const char *sub, uint64_t expiration);
/* Whether `token` is a valid HS256 JWT for `node` signed with the secret,
 * with the expected subdomain (NULL = none) and not expired at `now`. */
bool hcn_http_jwt_valid(const uint8_t *secret, size_t slen, const char *token,
                        const char *node, const char *sub, uint64_t now);
/* Find cookie `name` in a Cookie header ("a=1; b=2", entries split on
 * "; " and '=' as Hyperware does).  Fresh string or NULL. */
char *hcn_http_cookie(const char *header, const char *name);

/* ------------------------------------------------------------- access */

/* What a binding asks of the requests it serves. */
typedef struct hcn_http_rule {
    bool authenticated; /* a login is needed */
    bool local_only;    /* only from a loopback peer, not through a proxy, with
                         * a local Host and no other site's Origin */
    const char *secure_sub; /* its secure subdomain (NULL = none) */
    const char *app;        /* the bound process id */
} hcn_http_rule;

/* What a request shows, gathered before the check. */
typedef struct hcn_http_facts {
    const char *subdomain; /* the Host's first label, port dropped
                              ("localhost" when there is no Host) */
    bool subdomain_secure; /* that label is some binding's secure subdomain */
    bool logged_in;  /* the cookie hcn_http_login_sub names holds a valid JWT */
    bool loopback;   /* the peer address is loopback */
    bool proxied;    /* a reverse-proxy header is present */
    bool host_local; /* the Host names this node or loopback (or is absent):
                      * hcn_http_host_is_local */
    bool cross_site; /* a browser says another site or origin sent it:
                      * hcn_http_cross_site */
} hcn_http_facts;

/* The access check's decision. */
typedef enum hcn_http_access {
    HCN_HTTP_ALLOW,         /* serve the request */
    HCN_HTTP_LOGIN,         /* not logged in: the login page */
    HCN_HTTP_NO_SUBDOMAIN,  /* 401: a secure subdomain's binding, no label */
    HCN_HTTP_TO_SECURE_SUB, /* 307 to the binding's secure subdomain */
    HCN_HTTP_OTHER_PACKAGE, /* 403: a secure subdomain serves only its own */
    HCN_HTTP_NOT_LOCAL,     /* 403: local-only, asked from elsewhere */
} hcn_http_access;

/* Whether a Host header names this node from the machine itself: absent or
 * empty (not a browser: browsers always send one), or, case aside and with
 * or without a ":port", "localhost", a name under ".localhost", a 127.x.y.z
 * address, "[::1]" or the node's own name `node`.  Any other name may be
 * an attacker's domain that DNS-rebinding points at 127.0.0.1. */
bool hcn_http_host_is_local(const char *host, const char *node);
/* Whether a browser says the request comes from another origin: an Origin
 * header other than "http://" or "https://" followed by the Host header
 * (case aside; "null" is another origin), or Sec-Fetch-Site "cross-site" or
 * "same-site" (another port or subdomain of the same site).  NULL headers
 * are absent: a request typed into the address bar, or from a program. */
bool hcn_http_cross_site(const char *origin, const char *sec_fetch_site,
                         const char *host);
/* Why `facts` fail a local-only binding (static text), NULL when they do
 * not. */
const char *hcn_http_not_local_reason(const hcn_http_facts *facts);

/* Whose login cookie counts for `rule`: the app's subdomain one (the app
 * id) for a secure-subdomain binding asked through a Host naming localhost,
 * else the node's own (NULL). */
const char *hcn_http_login_sub(const hcn_http_rule *rule, bool localhost);
/* Whether a request with `facts` may reach a binding with `rule`: for an
 * authenticated binding the subdomain, then the login; then local-only.
 * Pure: no I/O, nothing global. */
hcn_http_access hcn_http_access_check(const hcn_http_rule *rule,
                                      const hcn_http_facts *facts);

/* ------------------------------------------------------ login (auth.c) */

struct hcn_node;
/* The login's set-up for node n: the password (from password_opt, else
 * <home>/http/password, made on first boot), its hash, the JWT secret
 * (<home>/http/jwt_secret) and the login page.  0, or -1 with a message in
 * err.  Without an HTTP port nothing is written to disk. */
int hcn_http_auth_init(struct hcn_node *n, const char *password_opt,
                       uint8_t *secret, char **password, char **password_hash,
                       char **html, size_t *html_len, char *err, size_t errlen);
/* Whether a login request's JSON body ({"password": ...} or
 * {"password_hash": ...}, compared in constant time) holds the node's
 * password; on success *subdomain gets its "subdomain" (malloc'd) or NULL. */
bool hcn_http_login_check(const char *password, const char *password_hash,
                          const char *body, size_t len, char **subdomain);

/* ------------------------------- internal: for fuzzing and tests only */

/* A server of node n as its http-server module's (same limits, login,
 * answers under the node's http-server entry) but with no listener and no
 * thread: the caller drives its loop with the calls below, from one
 * thread.  NULL with a message in err. */
struct hcn_http *hcn_http_probe_new(struct hcn_node *n, char *err,
                                    size_t errlen);
/* A connection whose socket is `sock` (one end of a socketpair; the server
 * owns it from now on), from a loopback peer or not.  0, or -1. */
int hcn_http_probe_connect(struct hcn_http *h, int sock, bool loopback);
/* One turn of the loop without waiting; the connections still open. */
size_t hcn_http_probe_run(struct hcn_http *h);
/* A message for the server (consumed), as the module's thread hands it
 * over: an action of a process, or its answer to a request. */
struct hcn_msg;
void hcn_http_probe_msg(struct hcn_http *h, struct hcn_msg *m);
/* Close every connection. */
void hcn_http_probe_disconnect(struct hcn_http *h);
/* Close every connection, drop every binding. */
void hcn_http_probe_reset(struct hcn_http *h);
void hcn_http_probe_free(struct hcn_http *h);

#endif
