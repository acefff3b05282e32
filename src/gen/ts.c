/* The TypeScript client as `kit b --hyperapp` writes target/ui/caller-utils.ts
 * (kit @2b1eac5, src/build/caller_utils_ts_generator.rs).  kit derives it
 * from the WIT files of the package's api directory, reading them line by
 * line, so this writer does the same with the WIT text wit.c produces:
 * every kebab name, `%` escape, type order and quirk of the WIT carries
 * over.  What kit writes, in brief (docs/gen-design.md §5.2):
 *
 *   - a fixed preamble: ApiError, parseResponse, apiRequest;
 *   - per interface file ("hyperapp", named by the file's PascalCase stem)
 *     a namespace with the WIT records as interfaces, variants as string
 *     unions or tagged unions, enums as TS enums, aliases as types; then
 *     for each http signature record a <Fn>RequestWrapper interface, a
 *     <Fn>Response type and an async function named in snake_case that
 *     POSTs (or the method of the HTTP comment) {"<Fn>": null | x | [x, y]}
 *     to the path of the HTTP comment;
 *   - no file at all when no interface has an http signature.
 *
 * Without kit_exact, one addition: a GET or HEAD function with parameters
 * puts them in the query string (kit's apiRequest sends no body for those,
 * so kit's client loses them), by their snake_case WIT names, strings,
 * chars, addresses and enums as they are and other values as JSON, as the
 * hyperprocess runtime reads them (rt_http.c, args_from_query).
 *
 * Only ASCII case mapping: WIT names here come from C identifiers. */
#include "gen.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- spans */

typedef struct span {
    const char *p;
    size_t n;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static span sp(const char *s)
{
    return (span){s, strlen(s)};
}

static void spans_push(spans *a, span s)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (a->v == NULL)
            abort();
    }
    a->v[a->n++] = s;
}

static bool sp_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

static span sp_trim(span s)
{
    while (s.n && sp_space(s.p[0]))
        s.p++, s.n--;
    while (s.n && sp_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

static bool sp_starts(span s, const char *pre)
{
    size_t k = strlen(pre);
    return s.n >= k && memcmp(s.p, pre, k) == 0;
}

static bool sp_ends(span s, const char *suf)
{
    size_t k = strlen(suf);
    return s.n >= k && memcmp(s.p + s.n - k, suf, k) == 0;
}

static bool sp_eq(span s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Remove every repetition of a prefix / suffix. */
static span sp_drop_prefixes(span s, const char *pre)
{
    size_t k = strlen(pre);
    while (k && sp_starts(s, pre))
        s.p += k, s.n -= k;
    return s;
}

static span sp_drop_suffixes(span s, const char *suf)
{
    size_t k = strlen(suf);
    while (k && sp_ends(s, suf))
        s.n -= k;
    return s;
}

/* A WIT identifier without its keyword escape. */
static span sp_unescape(span s)
{
    if (s.n && s.p[0] == '%')
        s.p++, s.n--;
    return s;
}

/* Offset of the first occurrence of c, or -1. */
static long sp_find(span s, char c)
{
    const char *f = memchr(s.p, c, s.n);
    return f ? (long)(f - s.p) : -1;
}

static span sp_sub(span s, size_t from, size_t to)
{
    if (to > s.n)
        to = s.n;
    if (from > to)
        from = to;
    return (span){s.p + from, to - from};
}

/* The text between "<kw>" (len k) and the final '>' of a generic type. */
static span sp_generic_inner(span t, size_t k)
{
    return t.n > k ? sp_sub(t, k, t.n - 1) : (span){t.p + t.n, 0};
}

static json_t *js(span s)
{
    return json_stringn_nocheck(s.p, s.n);
}

static span sp_json(json_t *v)
{
    return (span){json_string_value(v), json_string_length(v)};
}

/* Pieces separated by commas outside <...>, each trimmed; a last piece
 * that is blank is dropped (an inner blank piece is kept). */
static spans split_top(span s)
{
    spans out = {0};
    int depth = 0;
    size_t start = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '<') {
            depth++;
        } else if (s.p[i] == '>') {
            depth--;
        } else if (s.p[i] == ',' && depth == 0) {
            spans_push(&out, sp_trim(sp_sub(s, start, i)));
            start = i + 1;
        }
    }
    span last = sp_trim(sp_sub(s, start, s.n));
    if (last.n)
        spans_push(&out, last);
    return out;
}

/* The offset of the first comma outside <...>, or -1. */
static long top_comma(span s)
{
    int depth = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '<')
            depth++;
        else if (s.p[i] == '>')
            depth--;
        else if (s.p[i] == ',' && depth == 0)
            return (long)i;
    }
    return -1;
}

/* Lines as Rust's str::lines: split on '\n' (a '\r' before it dropped),
 * no empty last line after a final '\n'. */
static spans lines_of(const char *text)
{
    spans out = {0};
    span s = sp(text);
    size_t start = 0;
    for (size_t i = 0; i <= s.n; i++) {
        if (i < s.n && s.p[i] != '\n')
            continue;
        if (i == s.n && start == s.n)
            break;
        span l = sp_sub(s, start, i);
        if (i < s.n && l.n && l.p[l.n - 1] == '\r')
            l.n--;
        spans_push(&out, l);
        start = i + 1;
    }
    return out;
}

/* ------------------------------------------------------ name mapping */

/* kebab -> PascalCase: each non-empty '-' piece capitalised. */
static void add_pascal(hcg_buf *b, span s)
{
    s = sp_unescape(s);
    size_t i = 0;
    while (i < s.n) {
        size_t j = i;
        while (j < s.n && s.p[j] != '-')
            j++;
        if (j > i)
            hcg_buf_add(b, "%c%.*s", toupper((unsigned char)s.p[i]),
                        (int)(j - i - 1), s.p + i + 1);
        i = j + 1;
    }
}

static char *pascal(span s)
{
    hcg_buf b = {0};
    add_pascal(&b, s);
    return hcg_buf_take(&b);
}

/* kebab -> camelCase: PascalCase with the first letter lowered. */
static char *camel(span s)
{
    char *o = pascal(s);
    o[0] = (char)tolower((unsigned char)o[0]);
    return o;
}

/* kebab -> snake_case. */
static void add_snake(hcg_buf *b, span s)
{
    s = sp_unescape(s);
    for (size_t i = 0; i < s.n; i++)
        hcg_buf_add(b, "%c", s.p[i] == '-' ? '_' : s.p[i]);
}

/* ------------------------------------------------------- type mapping */

static void add_ts_type(hcg_buf *b, span t)
{
    static const char *const numbers[] = {"s8",  "u8",  "s16", "u16", "s32",
                                          "u32", "s64", "u64", "f32", "f64"};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        if (sp_eq(t, numbers[i])) {
            hcg_buf_add(b, "number");
            return;
        }
    if (sp_eq(t, "string") || sp_eq(t, "address")) {
        hcg_buf_add(b, "string");
    } else if (sp_eq(t, "bool")) {
        hcg_buf_add(b, "boolean");
    } else if (sp_eq(t, "_")) {
        hcg_buf_add(b, "void");
    } else if (sp_starts(t, "list<")) {
        span in = sp_generic_inner(t, 5);
        add_ts_type(b, in);
        hcg_buf_add(b, "[]");
    } else if (sp_starts(t, "option<")) {
        /* no parentheses: list<option<T>> reads "T | null[]" */
        add_ts_type(b, sp_generic_inner(t, 7));
        hcg_buf_add(b, " | null");
    } else if (sp_starts(t, "result<")) {
        span in = sp_generic_inner(t, 7);
        long c = top_comma(in);
        hcg_buf_add(b, "{ Ok: ");
        if (c >= 0) {
            add_ts_type(b, sp_trim(sp_sub(in, 0, (size_t)c)));
            hcg_buf_add(b, " } | { Err: ");
            add_ts_type(b, sp_trim(sp_sub(in, (size_t)c + 1, in.n)));
            hcg_buf_add(b, " }");
        } else {
            add_ts_type(b, in);
            hcg_buf_add(b, " } | { Err: void }");
        }
    } else if (sp_starts(t, "tuple<")) {
        spans items = split_top(sp_generic_inner(t, 6));
        hcg_buf_add(b, "[");
        for (size_t i = 0; i < items.n; i++) {
            if (i)
                hcg_buf_add(b, ", ");
            add_ts_type(b, items.v[i]);
        }
        hcg_buf_add(b, "]");
        free(items.v);
    } else {
        /* a custom type, and whatever else kit does not know (a bare
         * `result` becomes "Result") */
        add_pascal(b, t);
    }
}

static char *ts_type(span t)
{
    hcg_buf b = {0};
    add_ts_type(&b, t);
    return hcg_buf_take(&b);
}

/* The TS type a function resolves to: the ok side of a result<...>. */
static char *ts_unwrapped(span t)
{
    if (!sp_starts(t, "result<"))
        return ts_type(t);
    span in = sp_generic_inner(t, 7);
    long c = top_comma(in);
    return ts_type(c >= 0 ? sp_trim(sp_sub(in, 0, (size_t)c)) : in);
}

/* --------------------------------------------------------- WIT reader */

/* One "hyperapp": what kit collects from the WIT files of one stem.
 *   sigs:     [{fn, kind, fields: [[name, type]], method?, path?, args?}]
 *   records:  [{name, fields: [[name, type]]}]
 *   variants: [{name, cases: [[name, data | null]]}]
 *   enums:    [{name, cases: [name]}]
 *   aliases:  [[name, rhs]] */
static json_t *new_app(void)
{
    return json_pack("{s:[],s:[],s:[],s:[],s:[]}", "sigs", "records",
                     "variants", "enums", "aliases");
}

/* The name of a definition line "<kw> name {" (kw given with its space). */
static span def_name(span line, const char *kw)
{
    span s = sp_drop_prefixes(line, kw);
    s = sp_trim(sp_drop_suffixes(s, " {"));
    return sp_unescape(s);
}

static bool skippable(span l)
{
    return l.n == 0 || sp_starts(l, "//");
}

/* Fields "name: type," of a record body from line *i (the line after the
 * header) to the next line starting with '}' (left in *i).  A line with
 * more or fewer than one ':' is skipped. */
static json_t *read_fields(const spans *ls, size_t *i)
{
    json_t *fields = json_array();
    for (; *i < ls->n; (*i)++) {
        span l = sp_trim(ls->v[*i]);
        if (sp_starts(l, "}"))
            break;
        if (skippable(l))
            continue;
        long c = sp_find(l, ':');
        if (c < 0 || sp_find(sp_sub(l, (size_t)c + 1, l.n), ':') >= 0)
            continue;
        span name = sp_unescape(sp_trim(sp_sub(l, 0, (size_t)c)));
        span type =
            sp_drop_suffixes(sp_trim(sp_sub(l, (size_t)c + 1, l.n)), ",");
        json_array_append_new(fields, json_pack("[o,o]", js(name), js(type)));
    }
    return fields;
}

/* Method and path of the "// HTTP: M /path" comment above line i, found
 * by walking up over blank and comment lines. */
static void http_comment(const spans *ls, size_t i, json_t *sig)
{
    for (size_t j = i; j > 0; j--) {
        span l = sp_trim(ls->v[j - 1]);
        if (l.n == 0)
            continue;
        if (sp_starts(l, "// HTTP:")) {
            span rest = sp_trim(sp_drop_prefixes(l, "// HTTP:"));
            /* the first two whitespace-separated tokens */
            for (int tok = 0; tok < 2; tok++) {
                while (rest.n && sp_space(rest.p[0]))
                    rest.p++, rest.n--;
                if (rest.n == 0)
                    break;
                size_t k = 0;
                while (k < rest.n && !sp_space(rest.p[k]))
                    k++;
                span t = sp_sub(rest, 0, k);
                if (tok == 0) {
                    char *m = strndup(t.p, t.n);
                    if (m == NULL)
                        abort();
                    for (char *c = m; *c; c++)
                        *c = (char)toupper((unsigned char)*c);
                    json_object_set_new(sig, "method", json_string_nocheck(m));
                    free(m);
                } else {
                    json_object_set_new(sig, "path", js(t));
                }
                rest = sp_sub(rest, k, rest.n);
            }
            return;
        }
        if (!sp_starts(l, "//"))
            return;
    }
}

/* Reads one WIT file into app, line by line, as kit does: a definition's
 * body runs to the next line starting with '}', so an empty `record x {}`
 * swallows the lines after it up to the next closing brace. */
static void read_wit(const char *text, json_t *app)
{
    spans ls = lines_of(text);
    json_t *pending_args = NULL;
    for (size_t i = 0; i < ls.n; i++) {
        span l = sp_trim(ls.v[i]);
        if (sp_starts(l, "// args:")) {
            json_decref(pending_args);
            pending_args = js(l);
            continue;
        }
        if (sp_starts(l, "type ")) {
            span rest =
                sp_trim(sp_drop_suffixes(sp_drop_prefixes(l, "type "), ";"));
            long eq = sp_find(rest, '=');
            if (eq >= 0) {
                span name = sp_unescape(sp_trim(sp_sub(rest, 0, (size_t)eq)));
                span rhs = sp_trim(sp_sub(rest, (size_t)eq + 1, rest.n));
                json_array_append_new(json_object_get(app, "aliases"),
                                      json_pack("[o,o]", js(name), js(rhs)));
            }
        } else if (sp_starts(l, "record ")) {
            span name = def_name(l, "record ");
            const char *mark = "-signature-";
            const char *m = NULL;
            size_t nmarks = 0;
            for (size_t k = 0; k + strlen(mark) <= name.n; k++)
                if (memcmp(name.p + k, mark, strlen(mark)) == 0) {
                    if (m == NULL)
                        m = name.p + k;
                    nmarks++;
                    k += strlen(mark) - 1;
                }
            if (nmarks == 0) {
                i++;
                json_t *rec = json_pack("{s:o}", "name", js(name));
                json_object_set_new(rec, "fields", read_fields(&ls, &i));
                json_array_append_new(json_object_get(app, "records"), rec);
            } else if (nmarks == 1) {
                span fn = sp_sub(name, 0, (size_t)(m - name.p));
                span kind =
                    sp_sub(name, (size_t)(m - name.p) + strlen(mark), name.n);
                json_t *sig =
                    json_pack("{s:o,s:o}", "fn", js(fn), "kind", js(kind));
                if (sp_eq(kind, "http"))
                    http_comment(&ls, i, sig);
                if (pending_args) {
                    json_object_set_new(sig, "args", pending_args);
                    pending_args = NULL;
                }
                i++;
                json_object_set_new(sig, "fields", read_fields(&ls, &i));
                json_array_append_new(json_object_get(app, "sigs"), sig);
            }
            /* a name with two "-signature-" is passed over; its body
             * lines match nothing */
        } else if (sp_starts(l, "variant ")) {
            json_t *cases = json_array();
            json_t *v = json_pack("{s:o,s:o}", "name",
                                  js(def_name(l, "variant ")), "cases", cases);
            for (i++; i < ls.n; i++) {
                span c = sp_trim(ls.v[i]);
                if (sp_starts(c, "}"))
                    break;
                if (skippable(c))
                    continue;
                c = sp_drop_suffixes(c, ",");
                long open = sp_find(c, '(');
                if (open >= 0) {
                    size_t close = c.n;
                    for (size_t k = c.n; k > 0; k--)
                        if (c.p[k - 1] == ')') {
                            close = k - 1;
                            break;
                        }
                    span nm = sp_unescape(sp_sub(c, 0, (size_t)open));
                    span data = sp_sub(c, (size_t)open + 1, close);
                    json_array_append_new(cases,
                                          json_pack("[o,o]", js(nm), js(data)));
                } else {
                    json_array_append_new(
                        cases, json_pack("[o,n]", js(sp_unescape(c))));
                }
            }
            json_array_append_new(json_object_get(app, "variants"), v);
        } else if (sp_starts(l, "enum ")) {
            json_t *cases = json_array();
            json_t *e = json_pack("{s:o,s:o}", "name", js(def_name(l, "enum ")),
                                  "cases", cases);
            for (i++; i < ls.n; i++) {
                span c = sp_trim(ls.v[i]);
                if (sp_starts(c, "}"))
                    break;
                if (skippable(c))
                    continue;
                json_array_append_new(
                    cases, js(sp_unescape(sp_drop_suffixes(c, ","))));
            }
            json_array_append_new(json_object_get(app, "enums"), e);
        }
    }
    json_decref(pending_args);
    free(ls.v);
}

/* kit refuses type names whose PascalCase form ends in one of these (they
 * would clash with the generated wrappers).  Returns the message or NULL. */
static char *reserved_name(json_t *app, const char *stem)
{
    static const char *const groups[] = {"records", "variants", "enums"};
    static const char *const sufs[] = {"Request", "Response", "RequestWrapper",
                                       "ResponseWrapper"};
    for (size_t g = 0; g < 3; g++) {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(app, groups[g]), i, t)
        {
            span name = sp_json(json_object_get(t, "name"));
            char *p = pascal(name);
            for (size_t s = 0; s < 4; s++) {
                if (!sp_ends(sp(p), sufs[s]))
                    continue;
                hcg_buf b = {0};
                hcg_buf_add(
                    &b,
                    "%s.wit: type '%.*s' is '%s' in TypeScript, and kit "
                    "refuses names ending in '%s' (reserved for its "
                    "generated wrapper types); rename the type",
                    stem, (int)name.n, name.p, p, sufs[s]);
                free(p);
                return hcg_buf_take(&b);
            }
            free(p);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------- TS writer */

static const char preamble[] =
    "// Define a custom error type for API errors\n"
    "export class ApiError extends Error {\n"
    "  constructor(message: string, public readonly details?: unknown) {\n"
    "    super(message);\n"
    "    this.name = 'ApiError';\n"
    "  }\n"
    "}\n"
    "\n"
    "// Parser for the Result-style responses\n"
    "// eslint-disable-next-line @typescript-eslint/no-explicit-any\n"
    "export function parseResponse<T>(response: any): T {\n"
    "  try {\n"
    "    if ('Ok' in response && response.Ok !== undefined && response.Ok "
    "!== null) {\n"
    "      return response.Ok as T;\n"
    "    }\n"
    "\n"
    "    if ('Err' in response && response.Err !== undefined) {\n"
    "      throw new ApiError(`API returned an error`, response.Err);\n"
    "    }\n"
    "  } catch (e) {\n"
    "    return response as T;\n"
    "  }\n"
    "  return response as T;\n"
    "}\n"
    "\n"
    "/**\n"
    " * Generic API request function\n"
    " * @param path - API endpoint path\n"
    " * @param method - HTTP method (GET, POST, PUT, DELETE, etc.)\n"
    " * @param data - Request data\n"
    " * @returns Promise with parsed response data\n"
    " * @throws ApiError if the request fails or response contains an error\n"
    " */\n"
    "async function apiRequest<T, R>(path: string, method: string, data: T): "
    "Promise<R> {\n"
    "  const BASE_URL = import.meta.env.BASE_URL || window.location.origin;\n"
    "\n"
    "  const requestOptions: RequestInit = {\n"
    "    method: method,\n"
    "    headers: {\n"
    "      \"Content-Type\": \"application/json\",\n"
    "    },\n"
    "  };\n"
    "\n"
    "  // Only add body for methods that support it\n"
    "  if (method !== 'GET' && method !== 'HEAD') {\n"
    "    requestOptions.body = JSON.stringify(data);\n"
    "  }\n"
    "\n"
    "  const url = path.startsWith('/') ? `${BASE_URL}${path}` : "
    "`${BASE_URL}/${path}`;\n"
    "  const result = await fetch(url, requestOptions);\n"
    "\n"
    "  if (!result.ok) {\n"
    "    throw new ApiError(`HTTP request failed with status: "
    "${result.status}`);\n"
    "  }\n"
    "\n"
    "  const jsonResponse = await result.json();\n"
    "  return parseResponse<R>(jsonResponse);\n"
    "}\n"
    "\n";

/* Appends text inside a namespace: each non-empty line indented by 2,
 * then "\n\n". */
static void add_nested(hcg_buf *out, const char *text)
{
    spans ls = lines_of(text);
    for (size_t i = 0; i < ls.n; i++)
        hcg_buf_add(out, "%s%s%.*s", i ? "\n" : "", ls.v[i].n ? "  " : "",
                    (int)ls.v[i].n, ls.v[i].p);
    hcg_buf_add(out, "\n\n");
    free(ls.v);
}

static void add_record(hcg_buf *out, json_t *r)
{
    hcg_buf b = {0};
    hcg_buf_add(&b, "export interface ");
    add_pascal(&b, sp_json(json_object_get(r, "name")));
    hcg_buf_add(&b, " {\n");
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(r, "fields"), i, f)
    {
        hcg_buf_add(&b, "%s  ", i ? "\n" : "");
        add_snake(&b, sp_json(json_array_get(f, 0)));
        hcg_buf_add(&b, ": ");
        add_ts_type(&b, sp_json(json_array_get(f, 1)));
        hcg_buf_add(&b, ";");
    }
    hcg_buf_add(&b, "\n}");
    add_nested(out, b.s);
    free(b.s);
}

static void add_enum(hcg_buf *out, json_t *e)
{
    hcg_buf b = {0};
    hcg_buf_add(&b, "export enum ");
    add_pascal(&b, sp_json(json_object_get(e, "name")));
    hcg_buf_add(&b, " {\n");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(e, "cases"), i, c)
    {
        char *p = pascal(sp_json(c));
        hcg_buf_add(&b, "  %s = \"%s\",\n", p, p);
        free(p);
    }
    hcg_buf_add(&b, "}");
    add_nested(out, b.s);
    free(b.s);
}

/* Fields of an inline `record { a: T, ... }` case payload. */
static void add_inline_record(hcg_buf *b, span s)
{
    s = sp_trim(sp_drop_prefixes(s, "record"));
    s = sp_trim(sp_drop_suffixes(sp_drop_prefixes(s, "{"), "}"));
    hcg_buf_add(b, "{ ");
    bool first = true;
    size_t start = 0;
    for (size_t i = 0; i <= s.n; i++) {
        if (i < s.n && s.p[i] != ',')
            continue;
        span f = sp_trim(sp_sub(s, start, i));
        start = i + 1;
        long c = sp_find(f, ':');
        if (f.n == 0 || c < 0)
            continue;
        hcg_buf_add(b, "%s", first ? "" : ", ");
        first = false;
        add_snake(b, sp_unescape(sp_trim(sp_sub(f, 0, (size_t)c))));
        hcg_buf_add(b, ": ");
        add_ts_type(b, sp_trim(sp_sub(f, (size_t)c + 1, f.n)));
    }
    hcg_buf_add(b, " }");
}

static void add_variant(hcg_buf *out, json_t *v)
{
    json_t *cases = json_object_get(v, "cases");
    bool data = false;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        if (json_is_string(json_array_get(c, 1)))
            data = true;
    }
    hcg_buf b = {0};
    hcg_buf_add(&b, "export type ");
    add_pascal(&b, sp_json(json_object_get(v, "name")));
    hcg_buf_add(&b, " = ");
    json_array_foreach(cases, i, c)
    {
        char *p = pascal(sp_json(json_array_get(c, 0)));
        json_t *d = json_array_get(c, 1);
        if (i)
            hcg_buf_add(&b, " | ");
        if (!data) {
            hcg_buf_add(&b, "\"%s\"", p);
        } else if (!json_is_string(d)) {
            hcg_buf_add(&b, "{ %s: null }", p);
        } else {
            hcg_buf_add(&b, "{ %s: ", p);
            if (sp_starts(sp_trim(sp_json(d)), "record {"))
                add_inline_record(&b, sp_json(d));
            else
                add_ts_type(&b, sp_json(d));
            hcg_buf_add(&b, " }");
        }
        free(p);
    }
    hcg_buf_add(&b, ";");
    add_nested(out, b.s);
    free(b.s);
}

/* Whether a parameter of WIT type t goes into the query string as it is
 * (string, char, address, an enum, or an alias of one): the hyperprocess
 * runtime takes those as text and parses every other one as JSON.  kit's
 * `value` alias is any JSON, though WIT spells it string. */
static bool query_text(json_t *app, span t, int depth)
{
    t = sp_unescape(sp_trim(t));
    if (sp_eq(t, "string") || sp_eq(t, "char") || sp_eq(t, "address"))
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(app, "enums"), i, v)
    {
        if (sp_eq(t, json_string_value(json_object_get(v, "name"))))
            return true;
    }
    json_array_foreach(json_object_get(app, "aliases"), i, v)
    {
        span nm = sp_json(json_array_get(v, 0));
        if (nm.n == t.n && memcmp(nm.p, t.p, t.n) == 0)
            return !sp_eq(nm, "value") && depth < 16 &&
                   query_text(app, sp_json(json_array_get(v, 1)), depth + 1);
    }
    return false;
}

/* One http signature as TS: the wrapper interface and response type
 * (decls) and the function (fn); app gives the types (enums, aliases) and
 * kit_exact leaves out the query string of GET parameters. */
static void add_function(hcg_buf *decls, hcg_buf *fns, json_t *sig, json_t *app,
                         bool kit_exact)
{
    span fname = sp_json(json_object_get(sig, "fn"));
    char *fn_p = pascal(fname);
    hcg_buf fn_s = {0};
    add_snake(&fn_s, fname);
    hcg_buf_take(&fn_s);

    /* parameter names from "// args: (a: T, b: U)", in camelCase */
    spans names = {0};
    json_t *args = json_object_get(sig, "args");
    if (args) {
        span a = sp_trim(sp_drop_prefixes(sp_trim(sp_json(args)), "//"));
        if (sp_starts(a, "args:")) {
            a = sp_trim(sp_drop_prefixes(a, "args:"));
            if (sp_starts(a, "(") && sp_ends(a, ")") && a.n >= 2) {
                spans parts = split_top(sp_sub(a, 1, a.n - 1));
                for (size_t i = 0; i < parts.n; i++) {
                    long c = sp_find(parts.v[i], ':');
                    span nm = sp_trim(c >= 0 ? sp_sub(parts.v[i], 0, (size_t)c)
                                             : parts.v[i]);
                    if (nm.n)
                        spans_push(&names, nm);
                }
                free(parts.v);
            }
        }
    }

    hcg_buf params = {0}, docs = {0}, pnames = {0}, ptypes = {0}, query = {0};
    size_t np = 0;
    char *full = strdup("void"), *unwrapped = strdup("void");
    if (full == NULL || unwrapped == NULL)
        abort();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(sig, "fields"), i, f)
    {
        span name = sp_json(json_array_get(f, 0));
        span type = sp_json(json_array_get(f, 1));
        if (sp_eq(name, "target"))
            continue;
        if (sp_eq(name, "returning")) {
            free(full);
            free(unwrapped);
            full = ts_type(type);
            unwrapped = ts_unwrapped(type);
            continue;
        }
        spans types = {0};
        if (sp_eq(name, "arg-types")) {
            if (sp_starts(type, "tuple<") && sp_ends(type, ">"))
                types = split_top(sp_generic_inner(type, 6));
        } else {
            spans_push(&types, type); /* a field per parameter (old kit) */
        }
        for (size_t k = 0; k < types.n; k++) {
            hcg_buf pn = {0}, key = {0};
            if (!sp_eq(name, "arg-types")) {
                add_snake(&pn, name);
                add_snake(&key, name);
            } else if (k < names.n) {
                char *c = camel(names.v[k]);
                hcg_buf_add(&pn, "%s", c);
                free(c);
                add_snake(&key, names.v[k]);
            } else {
                hcg_buf_add(&pn, "arg%zu", k);
                hcg_buf_add(&key, "arg%zu", k);
            }
            char *pt = ts_type(types.v[k]);
            char *pname = hcg_buf_take(&pn);
            char *qkey = hcg_buf_take(&key);
            bool text = query_text(app, types.v[k], 0);
            hcg_buf_add(&query, "%s%s: %s%s%s", np ? ", " : "", qkey,
                        text ? "String(" : "JSON.stringify(", pname, ")");
            free(qkey);
            hcg_buf_add(&params, "%s%s: %s", np ? ", " : "", pname, pt);
            hcg_buf_add(&docs, "%s * @param %s: %s", np ? "\n" : "", pname, pt);
            hcg_buf_add(&pnames, "%s%s", np ? ", " : "", pname);
            hcg_buf_add(&ptypes, "%s%s", np ? ", " : "", pt);
            np++;
            free(pname);
            free(pt);
        }
        free(types.v);
    }
    hcg_buf_take(&params);
    hcg_buf_take(&docs);
    hcg_buf_take(&pnames);
    hcg_buf_take(&ptypes);
    hcg_buf_take(&query);

    json_t *mj = json_object_get(sig, "method"),
           *pj = json_object_get(sig, "path");
    const char *method = mj ? json_string_value(mj) : "POST";
    const char *path = pj ? json_string_value(pj) : "/api";

    hcg_buf t = {0};
    if (np == 0)
        hcg_buf_add(&t, "export interface %sRequestWrapper {\n  %s: null\n}",
                    fn_p, fn_p);
    else if (np == 1)
        hcg_buf_add(&t, "export interface %sRequestWrapper {\n  %s: %s\n}",
                    fn_p, fn_p, ptypes.s);
    else
        hcg_buf_add(&t, "export interface %sRequestWrapper {\n  %s: [%s]\n}",
                    fn_p, fn_p, ptypes.s);
    add_nested(decls, t.s);
    free(t.s);
    t = (hcg_buf){0};
    hcg_buf_add(&t, "export type %sResponse = %s;", fn_p, full);
    add_nested(decls, t.s);
    free(t.s);

    /* the @param lines run into " * @returns" without a line break */
    t = (hcg_buf){0};
    hcg_buf_add(&t,
                "/**\n * %s\n%s * @returns Promise with result\n"
                " * @throws ApiError if the request fails\n */\n"
                "export async function %s(%s): Promise<%s> {\n"
                "  const data: %sRequestWrapper = {\n",
                fn_s.s, docs.s, fn_s.s, params.s, unwrapped, fn_p);
    if (np == 0)
        hcg_buf_add(&t, "    %s: null,\n", fn_p);
    else if (np == 1)
        hcg_buf_add(&t, "    %s: %s,\n", fn_p, pnames.s);
    else
        hcg_buf_add(&t, "    %s: [%s],\n", fn_p, pnames.s);
    /* kit's apiRequest sends no body for GET and HEAD: the arguments go
     * in the query string instead, where the process looks for them */
    bool in_query = !kit_exact && np > 0 &&
                    (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
    if (in_query)
        hcg_buf_add(&t,
                    "  };\n  const query = new URLSearchParams({ %s });\n\n"
                    "  return await apiRequest<%sRequestWrapper, %s>("
                    "'%s?' + query, '%s', data);\n}",
                    query.s, fn_p, unwrapped, path, method);
    else
        hcg_buf_add(&t,
                    "  };\n\n  return await apiRequest<%sRequestWrapper, %s>("
                    "'%s', '%s', data);\n}",
                    fn_p, unwrapped, path, method);
    add_nested(fns, t.s);
    free(t.s);

    free(names.v);
    free(params.s);
    free(docs.s);
    free(pnames.s);
    free(ptypes.s);
    free(query.s);
    free(full);
    free(unwrapped);
    free(fn_s.s);
    free(fn_p);
}

/* The namespace of one hyperapp. */
static void add_app(hcg_buf *out, const char *name, json_t *app, bool kit_exact)
{
    hcg_buf_add(out, "\n// ============= %s Hyperapp =============\n", name);
    hcg_buf_add(out, "export namespace %s {\n", name);
    json_t *aliases = json_object_get(app, "aliases");
    json_t *enums = json_object_get(app, "enums");
    json_t *records = json_object_get(app, "records");
    json_t *variants = json_object_get(app, "variants");
    json_t *sigs = json_object_get(app, "sigs");
    size_t i;
    json_t *v;
    if (json_array_size(aliases) || json_array_size(records) ||
        json_array_size(variants) || json_array_size(enums)) {
        hcg_buf_add(out, "\n  // Custom Types\n");
        json_array_foreach(aliases, i, v)
        {
            span nm = sp_json(json_array_get(v, 0));
            hcg_buf_add(out, "  export type ");
            add_pascal(out, nm);
            hcg_buf_add(out, " = ");
            /* kit's special case: an alias named `value` is any JSON */
            if (sp_eq(nm, "value"))
                hcg_buf_add(out, "unknown");
            else
                add_ts_type(out, sp_json(json_array_get(v, 1)));
            hcg_buf_add(out, "\n");
        }
        if (json_array_size(aliases))
            hcg_buf_add(out, "\n");
        json_array_foreach(enums, i, v) add_enum(out, v);
        json_array_foreach(records, i, v) add_record(out, v);
        json_array_foreach(variants, i, v) add_variant(out, v);
    }
    if (json_array_size(sigs)) {
        hcg_buf decls = {0}, fns = {0};
        json_array_foreach(sigs, i, v)
            add_function(&decls, &fns, v, app, kit_exact);
        hcg_buf_add(out, "\n  // API Request/Response Types\n%s",
                    hcg_buf_take(&decls));
        hcg_buf_add(out, "\n  // API Functions\n%s", hcg_buf_take(&fns));
        free(decls.s);
        free(fns.s);
    }
    hcg_buf_add(out, "}\n");
}

/* The namespace name kit derives from a WIT file's stem. */
static char *app_name(const char *stem)
{
    span s = sp(stem);
    if (sp_ends(s, "-sys-v0"))
        s.n -= 7;
    if (sp_starts(s, "types-")) {
        s = sp_sub(s, 6, s.n);
        if (sp_ends(s, "-sys-v0"))
            s.n -= 7;
    }
    return pascal(s);
}

char *hcg_ts_from_wit(const hcg_wit_file *files, size_t n, bool kit_exact,
                      char **err)
{
    *err = NULL;
    json_t *apps = json_object(), *order = json_array();
    bool any_fn = false;
    for (size_t f = 0; f < n && *err == NULL; f++) {
        /* kit takes every file that does not mention "world " for an
         * interface, and every other one for a world file */
        if (strstr(files[f].text, "world ") != NULL)
            continue;
        char *name = app_name(files[f].stem);
        json_t *app = json_object_get(apps, name);
        if (app == NULL) {
            app = new_app();
            json_object_set_new(apps, name, app);
            json_array_append_new(order, json_string_nocheck(name));
        }
        json_t *file = new_app();
        read_wit(files[f].text, file);
        *err = reserved_name(file, files[f].stem);
        static const char *const groups[] = {"records", "aliases", "variants",
                                             "enums"};
        for (size_t g = 0; g < 4; g++)
            json_array_extend(json_object_get(app, groups[g]),
                              json_object_get(file, groups[g]));
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(file, "sigs"), i, s)
        {
            if (!sp_eq(sp_json(json_object_get(s, "kind")), "http"))
                continue;
            json_array_append(json_object_get(app, "sigs"), s);
            any_fn = true;
        }
        json_decref(file);
        free(name);
    }
    char *text = NULL;
    if (*err == NULL && any_fn) {
        hcg_buf out = {0};
        hcg_buf_add(&out, "%s", preamble);
        size_t i;
        json_t *nm;
        json_array_foreach(order, i, nm)
        {
            json_t *app = json_object_get(apps, json_string_value(nm));
            bool empty = true;
            const char *k;
            json_t *v;
            json_object_foreach(app, k, v) empty &= json_array_size(v) == 0;
            if (!empty)
                add_app(&out, json_string_value(nm), app, kit_exact);
        }
        hcg_buf_add(&out, "\n");
        text = hcg_buf_take(&out);
    }
    json_decref(order);
    json_decref(apps);
    return text;
}

char *hcg_ts(const hcg_model *const *models, size_t n, bool kit_exact,
             char **err)
{
    hcg_wit_file *files = calloc(n + 1, sizeof *files);
    if (files == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        files[i].stem = hcg_wit_interface_name(models[i]);
        files[i].text = hcg_wit_interface(models[i]);
    }
    char *ts = hcg_ts_from_wit(files, n, kit_exact, err);
    for (size_t i = 0; i < n; i++) {
        free((char *)files[i].stem);
        free((char *)files[i].text);
    }
    free(files);
    return ts;
}
