/* Internal to the writers of C (codec.c, process.c, callers.c, fuzz.c):
 * what they share about the model's types and handlers and the statements
 * they emit.  Prefix hcg_. */
#ifndef HYPERC_GEN_EMIT_H
#define HYPERC_GEN_EMIT_H

#include "gen.h"

/* ---- types (codec.c); `id` indexes the model's type table */

/* The kind of type id (a valid index). */
hcg_kind hcg_type_kind(const hcg_model *m, int id);
/* The C spelling of type id ("struct point", "int32_t"...). */
const char *hcg_type_c(const hcg_model *m, int id);
/* Records, enums and the generic types: the ones with generated codecs
 * (false for -1). */
bool hcg_composite(const hcg_model *m, int id);
/* Composite types with a generated deep copy (not enums or unit). */
bool hcg_clonable(const hcg_model *m, int id);
/* The C identifier part for type id ("struct point" -> "struct_point");
 * the caller frees it. */
char *hcg_fname(const hcg_model *m, int id);
/* The C type a value of type id is held in (union members, stubs). */
const char *hcg_wire_c(const hcg_model *m, int id);
/* "get_count" -> "GET_COUNT"; the caller frees it. */
char *hcg_upper(const char *s);

/* Statements encoding the value `expr` of type id on `hp_jw *w`; a failure
 * returns -1. */
void hcg_enc(hcg_buf *b, const hcg_model *m, int id, const char *expr,
             const char *ind);
/* Statements decoding the `const hp_jv *` expression `j` into the lvalue
 * `lv` of type id; a failure returns -1 with *err prefixed by `ctx` (a C
 * string literal's content). */
void hcg_dec(hcg_buf *b, const hcg_model *m, int id, const char *j,
             const char *lv, const char *ctx, const char *ind);
/* The codecs (and deep copies) of every composite type of the model. */
void hcg_emit_type_codecs(hcg_buf *b, const hcg_model *m);

/* ---- the process (process.c) */

/* The Request and Response unions and their codecs. */
void hcg_emit_unions(hcg_buf *b, const hcg_model *m);

#endif
