{
  "targets": [
    {
      "target_name": "auralink_rtp",
      "sources": ["src/addon.c", "src/parse.c"],
      "cflags_c": ["-std=gnu11", "-O3", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
