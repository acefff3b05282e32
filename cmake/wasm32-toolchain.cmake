# Cross-compiling hyperc processes to wasm32 components: clang's wasm32-wasi
# target on Debian's wasi-libc, then Binaryen and jco (cmake/hyperc.cmake,
# HYPERC_WASM32 branch).  Used by the tree's wasm32 sub-build and by
# `hyperc build --target wasm32`.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(HYPERC_WASM32 ON CACHE BOOL "Build for wasm32 (components)" FORCE)
find_program(HYPERC_WASM_CLANG NAMES clang-14 REQUIRED)
find_program(HYPERC_WASM_AR NAMES llvm-ar-14 REQUIRED)
find_program(HYPERC_WASM_RANLIB NAMES llvm-ranlib-14 REQUIRED)
set(CMAKE_C_COMPILER ${HYPERC_WASM_CLANG})
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)
set(CMAKE_AR ${HYPERC_WASM_AR} CACHE FILEPATH "" FORCE)
set(CMAKE_RANLIB ${HYPERC_WASM_RANLIB} CACHE FILEPATH "" FORCE)
# only wasi-libc's headers, never the host's /usr/include
# -finstrument-function-entry-bare: every function that is not inlined tells
# its entry to the runtime, which checks a task's stack there
# (src/guest/coro_asyncify.c)
set(CMAKE_C_FLAGS_INIT
    "-nostdlibinc -isystem /usr/include/wasm32-wasi -finstrument-function-entry-bare")
# a reactor: no main; the component's export `init` is the entry
# -g: the name section, so that a trap names its functions
# (-O0: the link only; clang would otherwise run wasm-opt itself, before
# asyncify, and drop the names)
# The main stack: 1 MiB (wasm-ld's default is 64 KiB), first in memory, so
# that running off it goes below address 0 and traps instead of writing
# over the static data.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-mexec-model=reactor -g -O0 -Wno-unused-command-line-argument -Wl,--stack-first -Wl,-z,stack-size=1048576")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
