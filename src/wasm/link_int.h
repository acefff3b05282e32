/* Internal to the wasm host's addon (hyperc_link.node): what link_addon.c
 * (the link, the binding) and link_cabi.c (the hot imports in the
 * canonical ABI) share. */
#ifndef HYPERC_WASM_LINK_INT_H
#define HYPERC_WASM_LINK_INT_H

#include "../worker/binding.h"

#include <node_api.h>

/* The binding's host table, filled by ready(); hcl_bound once it is. */
extern hwn_host hcl_table;
extern bool hcl_bound;

/* Throw an Error (with `code` unless NULL) and return NULL. */
napi_value hcl_fail(napi_env env, const char *code, const char *msg);

/* link_cabi.c's functions of the addon (see there). */
napi_value hcl_cabi_bind(napi_env env, napi_callback_info info);
napi_value hcl_cabi_receive(napi_env env, napi_callback_info info);
napi_value hcl_cabi_send_request(napi_env env, napi_callback_info info);
napi_value hcl_cabi_send_requests(napi_env env, napi_callback_info info);
napi_value hcl_cabi_send_response(napi_env env, napi_callback_info info);
napi_value hcl_cabi_send_and_await(napi_env env, napi_callback_info info);
napi_value hcl_cabi_has_blob(napi_env env, napi_callback_info info);
napi_value hcl_cabi_get_blob(napi_env env, napi_callback_info info);
napi_value hcl_cabi_last_blob(napi_env env, napi_callback_info info);

#endif
