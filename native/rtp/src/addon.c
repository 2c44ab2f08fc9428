/* N-API surface of the RTP parser: argument checks (the same order and error classes as
 * src/aic/rtp/api.ts checkBatchArgs), then one call into parse.c for the whole batch, so
 * the JS -> C boundary is crossed once per batch, not once per packet. */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <math.h>
#include <node_api.h>

#include "parse.h"

#define CALL(env, expr)                                    \
  do {                                                     \
    if ((expr) != napi_ok) {                               \
      napi_throw_error((env), NULL, "N-API call failed: " #expr); \
      return NULL;                                         \
    }                                                      \
  } while (0)

/* One N-API call per array: napi_get_typedarray_info fails by itself on a non-typed-array,
 * and every call across the boundary is what a batch of 1 pays for. */
static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, data, &ab, &off) != napi_ok) return 0;
  return type == want;
}

static napi_value parse_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "parseBatch(buf, offsets, lengths, count, out, codecs)");
    return NULL;
  }
  void *buf, *offsets, *lengths, *out, *codecs;
  size_t buf_len, n_off, n_len, n_out, n_codecs;
  if (!typed(env, argv[0], napi_uint8_array, &buf, &buf_len)) {
    napi_throw_type_error(env, NULL, "buf must be a Uint8Array or Buffer");
    return NULL;
  }
  if (!typed(env, argv[1], napi_uint32_array, &offsets, &n_off) || !typed(env, argv[2], napi_uint32_array, &lengths, &n_len)) {
    napi_throw_type_error(env, NULL, "offsets and lengths must be Uint32Arrays");
    return NULL;
  }
  if (!typed(env, argv[4], napi_int32_array, &out, &n_out)) {
    napi_throw_type_error(env, NULL, "out must be an Int32Array");
    return NULL;
  }
  if (!typed(env, argv[5], napi_uint8_array, &codecs, &n_codecs)) {
    napi_throw_type_error(env, NULL, "codecs must be a Uint8Array (codecMap)");
    return NULL;
  }
  double count_d = -1;
  napi_status count_ok = napi_get_value_double(env, argv[3], &count_d); /* napi_number_expected if not a number */
  if (count_ok != napi_ok || !(count_d >= 0) || count_d != floor(count_d) || isinf(count_d)) {
    napi_throw_range_error(env, NULL, "count must be a non-negative integer");
    return NULL;
  }
  if (count_d > (double)n_off || count_d > (double)n_len) {
    napi_throw_range_error(env, NULL, "count exceeds offsets/lengths");
    return NULL;
  }
  if (count_d * RTP_RECORD_SIZE > (double)n_out) {
    napi_throw_range_error(env, NULL, "out holds fewer than count records");
    return NULL;
  }
  if (n_codecs < 128) {
    napi_throw_range_error(env, NULL, "codecs must have 128 entries (payload types 0-127)");
    return NULL;
  }
  uint32_t valid = rtp_parse_batch(buf, buf_len, offsets, lengths, (uint32_t)count_d, out, codecs);
  napi_value result;
  CALL(env, napi_create_uint32(env, valid, &result));
  return result;
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value r;
  return napi_create_int32(env, v, &r) == napi_ok ? r : NULL;
}

/* The layout this binary was compiled with, for the loader to compare with layout.ts. */
static napi_value layout_object(napi_env env) {
  napi_value o, fields;
  if (napi_create_object(env, &o) != napi_ok || napi_create_object(env, &fields) != napi_ok) return NULL;
#define RTP_FIELD_PROP(name, index) napi_set_named_property(env, fields, #name, int_value(env, index));
  RTP_FIELDS(RTP_FIELD_PROP)
#undef RTP_FIELD_PROP
  napi_set_named_property(env, o, "fields", fields);
  napi_set_named_property(env, o, "recordSize", int_value(env, RTP_RECORD_SIZE));
  napi_set_named_property(env, o, "maxExt", int_value(env, RTP_MAX_EXT));
  return o;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  CALL(env, napi_create_function(env, "parseBatch", NAPI_AUTO_LENGTH, parse_batch, NULL, &fn));
  CALL(env, napi_set_named_property(env, exports, "parseBatch", fn));
  napi_value layout = layout_object(env);
  if (layout == NULL) return NULL;
  CALL(env, napi_set_named_property(env, exports, "layout", layout));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
