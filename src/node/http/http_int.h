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

/* A process's answer to an HTTP request, {"status":S,"headers":{...}},
 * read without a jansson tree (hcn_http_answer_read): the status and the
 * headers in their order, NUL-terminated in `text`. */
#define HCN_HTTP_ANSWER_HEADERS 16
typedef struct hcn_http_answer {
    int64_t status;
    size_t nheaders;
    const char *names[HCN_HTTP_ANSWER_HEADERS];
    const char *values[HCN_HTTP_ANSWER_HEADERS];
    size_t used; /* bytes of text taken */
    char text[2048];
} hcn_http_answer;

/* Read an HttpResponse into *a: by hand when it has no backslash and only
 * JSON's blanks, else with yajl's callbacks.  True only for the
 * plain shape: an object with "status" (decimal digits, at most 18) and
 * "headers" (an object of strings: at most HCN_HTTP_ANSWER_HEADERS
 * distinct names, no NUL, no \u escape, 2 KiB of text in all), once each
 * and nothing else.  Any other body, valid or not, gives false and is for
 * the caller to parse in full (jansson), which reads the bodies taken here
 * the same way. */
bool hcn_http_answer_read(const char *body, size_t len, hcn_http_answer *a);

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
/* The key under which a peer's connections and failed logins are counted:
 * key[0] the family (4 or 6, 0 for another), then the IPv4 address (also
 * when mapped into IPv6) or the /64 of an IPv6 one (one host usually has a
 * whole /64 to pick addresses from); the rest zero. */
void hcn_http_addr_key(const struct sockaddr *sa, uint8_t key[17]);
/* Whether a header name is one a proxy adds, making a request not local:
 * Forwarded, Via, any X-Forwarded-*, X-Real-IP, X-Client-IP,
 * X-Cluster-Client-IP, True-Client-IP, Cf-Connecting-Ip, Forwarded-For,
 * X-Originating-IP; in any case, with '_' for '-', blanks around it
 * ignored. */
bool hcn_http_is_proxy_header(const char *name);

/* ------------------------------------------------------ authentication */

/* An HS256 JWT with Hyperware's claims {username, subdomain, expiration}
 * (subdomain null when sub is NULL or empty) and the standard iat and exp
 * (issued at `iat`, expiring at `exp`, seconds since the epoch; Hyperware's
 * expiration is exp too).  Fresh string or NULL. */
char *hcn_http_jwt_make(const uint8_t *secret, size_t slen, const char *node,
                        const char *sub, uint64_t iat, uint64_t exp);
/* Whether `token` is a valid HS256 JWT for `node` signed with the secret,
 * with the expected subdomain (NULL = none), at `now`: not expired (exp and
 * expiration), issued no later than a minute from now, and younger than
 * max_age seconds (so a shorter lifetime applies to tokens already out). */
bool hcn_http_jwt_valid(const uint8_t *secret, size_t slen, const char *token,
                        const char *node, const char *sub, uint64_t now,
                        uint64_t max_age);
/* Find cookie `name` in a Cookie header ("a=1; b=2", entries split on
 * "; " and '=' as Hyperware does).  Fresh string or NULL. */
char *hcn_http_cookie(const char *header, const char *name);
/* A Cookie header without the node's login cookies (hyperware-auth_<node>
 * and every hyperware-auth_<node>@<app>), the others kept in order,
 * joined with "; ".  Fresh string, "" when none is left. */
char *hcn_http_cookie_strip(const char *header, const char *node);

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

/* The argon2id hash the node keeps of its password (argon2's encoded
 * form, "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"), with Hyperware's
 * parameters and salt (the node name, repeated to 8 bytes when shorter),
 * so that its raw hash is what Hyperware's login page sends.  Fresh
 * string, or NULL when argon2 fails. */
char *hcn_http_password_hash(const char *node, const char *password);
/* Hyperware's password_hash form of an encoded hash: "0x" and the raw hash
 * in lowercase hex.  Fresh string, or NULL when `encoded` is not of the
 * form hcn_http_password_hash makes. */
char *hcn_http_hash_hex(const char *encoded);

/* What the login checks against, made once at start (read-only after). */
typedef struct hcn_http_auth {
    uint8_t key[32];     /* signs tokens: HMAC-SHA256(jwt_secret, hash), so a
                          * new password ends every login made before it */
    char *hash;          /* hcn_http_password_hash's form; NULL: no server */
    char *hex;           /* hcn_http_hash_hex(hash) */
    uint64_t lifetime_s; /* a login lasts this long */
    char *login_html;
    size_t login_len;
} hcn_http_auth;

struct hcn_node;
/* The login's set-up for node n into *a: the password hash (from
 * password_opt, which replaces the one kept when it differs; else
 * <home>/http/password_hash; else made at first boot and given to
 * hc_node_first_password; a plain <home>/http/password from an older node
 * is hashed and removed), the JWT secret (<home>/http/jwt_secret), the
 * token key and the login page.  0, or -1 with a message in err (*a then
 * holds nothing to free).  Without an HTTP port nothing is written to
 * disk and no login succeeds. */
int hcn_http_auth_init(struct hcn_node *n, const char *password_opt,
                       hcn_http_auth *a, char *err, size_t errlen);
/* Release what hcn_http_auth_init made. */
void hcn_http_auth_fini(hcn_http_auth *a);
/* Whether a login request's JSON body holds the node's password:
 * {"password": ...} checked with argon2id_verify against a->hash, or
 * {"password_hash": "0x..."} (Hyperware's login page) compared in constant
 * time with a->hex.  On success *subdomain gets its "subdomain" (malloc'd)
 * or NULL.  Costs one argon2id run (tens of ms) for a password. */
bool hcn_http_login_check(const hcn_http_auth *a, const char *body, size_t len,
                          char **subdomain);

/* Failed logins, counted per client address (an IPv4 address, or an IPv6
 * /64) to slow guessing: after HCN_LOGIN_FREE_FAILS failures in a row an
 * address is refused for 1 s, and each further failure doubles that, up to
 * HCN_LOGIN_MAX_LOCK_S; a success forgets the address.  Counts for the log
 * are kept too, said in one summary line per interval.  Not thread-safe:
 * the server's loops share it under their shared mutex. */
#define HCN_LOGIN_FREE_FAILS 5
#define HCN_LOGIN_MAX_LOCK_S 300
typedef struct hcn_http_limiter hcn_http_limiter;
hcn_http_limiter *hcn_http_limiter_new(void);
void hcn_http_limiter_free(hcn_http_limiter *l);
/* 0 when a login from `sa` may be tried at now_ms (a monotonic clock);
 * else the seconds it must wait (at least 1), the attempt counted as
 * refused.  Checks under way count as failures to come: while one from
 * `sa` runs, another that could make its HCN_LOGIN_FREE_FAILS-th failure
 * in a row waits too, so logins sent all at once gain no guesses. */
uint32_t hcn_http_limiter_check(hcn_http_limiter *l, const struct sockaddr *sa,
                                int64_t now_ms);
/* A login from `sa` that check allowed is being checked now (its result
 * comes to hcn_http_limiter_result). */
void hcn_http_limiter_start(hcn_http_limiter *l, const struct sockaddr *sa,
                            int64_t now_ms);
/* A login from `sa` tried at now_ms succeeded (ok) or failed. */
void hcn_http_limiter_result(hcn_http_limiter *l, const struct sockaddr *sa,
                             bool ok, int64_t now_ms);
/* One line summing up the failures and refusals counted since the last
 * summary (then reset) into out; false (out untouched) when there were
 * none. */
bool hcn_http_limiter_summary(hcn_http_limiter *l, char *out, size_t n);

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
/* What the module's deliver does first on a sender's thread
 * (ws_direct_push): 0, m was a plain push written whole to its socket (m
 * consumed); 1, its frame was begun and its end left for the loop; -1,
 * nothing written.  With 1 or -1, m is still the caller's, to hand to
 * hcn_http_probe_msg as the loop's queue would (after what a test puts
 * between). */
int hcn_http_probe_deliver(struct hcn_http *h, struct hcn_msg *m);
/* Close every connection. */
void hcn_http_probe_disconnect(struct hcn_http *h);
/* Close every connection, drop every binding. */
void hcn_http_probe_reset(struct hcn_http *h);
void hcn_http_probe_free(struct hcn_http *h);

#endif
