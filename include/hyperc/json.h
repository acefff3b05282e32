/* hyperc JSON writer: writes exactly what Rust's serde_json writes, so that
 * generated codecs are byte-compatible with Rust hyperprocesses
 * (docs/gen-design.md §2.2).  Compact output; strings escaped with
 * serde_json's table; floats as the shortest digits that read back to the
 * same value, in ryu's layout; NaN and infinities as null.
 *
 * Part of libhyperc (guest side): no host calls.  A writer owns a growing
 * heap buffer; after an allocation failure every call is a no-op and
 * hp_jw_ok() is false. */
#ifndef HYPERC_JSON_H
#define HYPERC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wire types beyond C's own (docs/types.md): a Rust `char` (one Unicode
 * scalar value; JSON a one-character string), `u128` / `i128` (JSON
 * numbers), and a serde_json::Value, any JSON, kept as its text. */
typedef uint32_t hp_char;
typedef unsigned __int128 hp_u128;
typedef __int128 hp_i128;
typedef struct hp_json {
    /* A JSON text; NULL is `null`.  Written as serde_json writes a Value
     * (object keys sorted, a repeated key's last value, numbers as u64,
     * i64 or f64); decoders leave that form here, in the message arena. */
    char *text;
} hp_json;

typedef struct hp_jw {
    char *buf; /* NUL-terminated text so far; owned by the writer */
    size_t len, cap;
    bool failed;
} hp_jw;

void hp_jw_init(hp_jw *w);
/* Releases the buffer (a small one is kept for the process's next writer:
 * w->buf is not to be used after this; take it and set w->buf = NULL
 * first to keep the text). */
void hp_jw_fini(hp_jw *w);
/* True while no allocation failed. */
bool hp_jw_ok(const hp_jw *w);
/* Append bytes as they are (punctuation written by generated code). */
void hp_jw_raw(hp_jw *w, const char *s, size_t n);
void hp_jw_null(hp_jw *w);
void hp_jw_bool(hp_jw *w, bool v);
void hp_jw_i64(hp_jw *w, int64_t v);
void hp_jw_u64(hp_jw *w, uint64_t v);
/* Shortest round-trip representation in ryu's f64 / f32 layout. */
void hp_jw_f64(hp_jw *w, double v);
void hp_jw_f32(hp_jw *w, float v);
/* A JSON string of the n bytes at s.  Returns 0, or -1 (writing nothing)
 * when they are not valid UTF-8, which a Rust String cannot hold. */
int hp_jw_string(hp_jw *w, const char *s, size_t n);

/* A char as a one-character string; -1 (nothing written) when c is not a
 * Unicode scalar value (a surrogate, or above U+10FFFF). */
int hp_jw_char(hp_jw *w, hp_char c);
void hp_jw_u128(hp_jw *w, hp_u128 v);
void hp_jw_i128(hp_jw *w, hp_i128 v);
/* An integer map key, as serde_json writes it: the number in quotes. */
void hp_jw_key_i64(hp_jw *w, int64_t v);
void hp_jw_key_u64(hp_jw *w, uint64_t v);

/* Whether the n bytes at s are valid UTF-8 (no surrogates, no overlongs). */
bool hp_utf8_valid(const char *s, size_t n);

/* ------------------------------------------------------------- reading */

#include "hyperc/abi.h"
#include "hyperc/arena.h"

typedef enum hp_jv_kind {
    HP_JV_NULL = 0,
    HP_JV_BOOL,
    HP_JV_NUMBER, /* kept as its text: decoders convert per target type */
    HP_JV_STRING,
    HP_JV_ARRAY,
    HP_JV_OBJECT,
} hp_jv_kind;

/* A parsed JSON value; everything lives in the arena given to
 * hp_json_parse.  Objects keep every member in document order, duplicates
 * included (decoders apply serde's rules). */
typedef struct hp_jv {
    hp_jv_kind kind;
    bool b;               /* HP_JV_BOOL */
    const char *str;      /* HP_JV_STRING (UTF-8, NUL-terminated) or NUMBER */
    size_t len;           /* bytes of str, or items of an array/object */
    struct hp_jv **items; /* HP_JV_ARRAY / HP_JV_OBJECT values */
    const char **keys;    /* HP_JV_OBJECT keys */
} hp_jv;

/* Parse one JSON text (the whole n bytes) as serde_json accepts it: strict
 * JSON, valid UTF-8, nesting at most 128 deep, nothing after the value.
 * Plain texts (printable ASCII, no escapes, at most 16 levels) are read in
 * one pass; the others, and every error, through yajl.  Deviation: a
 * string containing \u0000 is refused (C strings).
 * Returns the root, or NULL with *err set to a message (in the arena). */
hp_jv *hp_json_parse(hp_arena *a, const char *text, size_t n, const char **err);

/* Decoding helpers for generated codecs.  Each returns 0 and writes *out,
 * or -1 with *err set to what was expected and what came (text in the
 * arena).  Strings and byte lists point into the arena. */
const char *hp_jv_kind_name(const hp_jv *j);
int hp_jd_bool(hp_arena *a, const hp_jv *j, bool *out, const char **err);
/* An integer token (no fraction or exponent) within [min, max]. */
int hp_jd_int(hp_arena *a, const hp_jv *j, int64_t min, int64_t max,
              const char *type, int64_t *out, const char **err);
int hp_jd_uint(hp_arena *a, const hp_jv *j, uint64_t max, const char *type,
               uint64_t *out, const char **err);
/* Any number; single: as f32 (a value beyond f32 becomes infinity, as serde
 * does); otherwise out of f64 range is an error. */
int hp_jd_float(hp_arena *a, const hp_jv *j, bool single, double *out,
                const char **err);
int hp_jd_string(hp_arena *a, const hp_jv *j, const char **out,
                 const char **err);
int hp_jd_bytes(hp_arena *a, const hp_jv *j, hw_bytes *out, const char **err);
int hp_jd_address(hp_arena *a, const hp_jv *j, hw_address *out,
                  const char **err);
int hp_jd_char(hp_arena *a, const hp_jv *j, hp_char *out, const char **err);
/* An integer token within the type's range, as serde_json reads u128 and
 * i128 (type: "u128" / "i128"). */
int hp_jd_u128(hp_arena *a, const hp_jv *j, hp_u128 *out, const char **err);
int hp_jd_i128(hp_arena *a, const hp_jv *j, hp_i128 *out, const char **err);
/* Any JSON value, kept as its serde_json text (in the arena). */
int hp_jd_json(hp_arena *a, const hp_jv *j, hp_json *out, const char **err);
/* A map key read as an integer, as serde_json reads integer keys (Rust's
 * str::parse): an optional sign ('+', or '-' for signed types) and digits
 * only, leading zeros allowed, within the range. */
int hp_jd_key_int(hp_arena *a, const char *key, int64_t min, int64_t max,
                  const char *type, int64_t *out, const char **err);
int hp_jd_key_uint(hp_arena *a, const char *key, uint64_t max, const char *type,
                   uint64_t *out, const char **err);
/* Prefix an error with context ("field 'x': ..."). */
const char *hp_jd_wrap(hp_arena *a, const char *ctx, const char *err);

/* Writers for the ABI types: [0,1,...] and "node@process:package:pub". */
void hp_jw_bytes(hp_jw *w, const hw_bytes *b);
/* hp_jw_address returns -1 (nothing written) when a part is NULL or the text
 * is over 511 bytes. */
int hp_jw_address(hp_jw *w, const hw_address *a);

/* A parsed value as serde_json writes a serde_json::Value: object keys in
 * byte order with a repeated key's last value, integers that fit u64 or
 * i64 as such and every other number as the f64 it reads as (`-0` is the
 * float -0.0).  Returns -1 (*err set, in a) when a number is out of f64's
 * range, as serde_json refuses it. */
int hp_jw_value(hp_jw *w, hp_arena *a, const hp_jv *j, const char **err);
/* hp_json's text written as above; -1 when it is not one JSON value. */
int hp_jw_json(hp_jw *w, const hp_json *v);

/* The first member named key of an object, or NULL. */
const hp_jv *hp_jv_get(const hp_jv *obj, const char *key);

#endif
