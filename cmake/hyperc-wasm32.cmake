# The tree built for wasm32 (CMAKE_TOOLCHAIN_FILE=cmake/wasm32-toolchain.cmake,
# as the native build's `wasm32` sub-build does): the guest runtime and the
# example processes as components, with their packages in packages/.
#   HYPERC_NATIVE_EXE   the native hyperc command (hyperc gen runs on the host)
#   HYPERC_WASM_TOOLS   the folder with componentize.mjs and its node_modules
#   HYPERC_YAJL_SOURCE  Debian's yajl source tree (apt-get source yajl)

if(NOT HYPERC_NATIVE_EXE OR NOT HYPERC_WASM_TOOLS OR NOT HYPERC_YAJL_SOURCE)
  message(FATAL_ERROR "the wasm32 build needs HYPERC_NATIVE_EXE, HYPERC_WASM_TOOLS "
          "and HYPERC_YAJL_SOURCE")
endif()
add_compile_options(-Wall -Wextra -Werror -Wno-unused-parameter
                    -Wstrict-prototypes -Wshadow -g)
add_compile_definitions(_GNU_SOURCE)

# yajl, from its Debian source package (patches applied by apt-get source):
# its headers as installed (yajl/*.h, yajl_version.h configured).
set(yajl_inc ${CMAKE_BINARY_DIR}/yajl-include)
file(GLOB yajl_api ${HYPERC_YAJL_SOURCE}/src/api/*.h)
file(COPY ${yajl_api} DESTINATION ${yajl_inc}/yajl)
file(STRINGS ${HYPERC_YAJL_SOURCE}/CMakeLists.txt yajl_ver REGEX "SET \\(YAJL_M")
foreach(line IN LISTS yajl_ver)
  if(line MATCHES "SET \\((YAJL_[A-Z]+) ([0-9]+)\\)")
    set(${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()
configure_file(${HYPERC_YAJL_SOURCE}/src/api/yajl_version.h.cmake
               ${yajl_inc}/yajl/yajl_version.h)
file(GLOB yajl_src ${HYPERC_YAJL_SOURCE}/src/*.c)
add_library(yajl_wasm32 STATIC ${yajl_src})
target_include_directories(yajl_wasm32 PUBLIC ${yajl_inc})
target_compile_options(yajl_wasm32 PRIVATE -w -Wno-error)

# uthash is header-only: the one header, not the host's /usr/include
find_path(UTHASH_INCLUDE_DIR uthash.h PATHS /usr/include /usr/local/include REQUIRED
          NO_CMAKE_FIND_ROOT_PATH)
file(COPY ${UTHASH_INCLUDE_DIR}/uthash.h DESTINATION ${CMAKE_BINARY_DIR}/uthash-include)

# The guest runtime for wasm32: the same runtime with the wasm32 binding of
# the ABI (abi_wasm.c), coroutines on asyncify and wasi-libc's system calls
# answered in the module (wasi_shim.c).
add_library(hyperc_guest STATIC
  src/guest/arena.c src/guest/json_write.c src/guest/json_read.c
  src/guest/runtime.c src/guest/rt_log.c src/guest/rt_state.c src/guest/rt_task.c
  src/guest/rt_http.c src/guest/rt_bind.c src/guest/inst.c
  src/guest/abi_wasm.c src/guest/coro_asyncify.c src/guest/wasi_shim.c
  src/common/common.c src/common/abi_types.c src/common/ws_push.c)
target_include_directories(hyperc_guest PUBLIC ${CMAKE_SOURCE_DIR}/include
                           PRIVATE ${CMAKE_BINARY_DIR}/uthash-include)
target_link_libraries(hyperc_guest PUBLIC yajl_wasm32)


add_executable(hyperc IMPORTED)
set_target_properties(hyperc PROPERTIES IMPORTED_LOCATION ${HYPERC_NATIVE_EXE})
set(HYPERC_EXE hyperc)
set(HYPERC_GUEST hyperc_guest)
find_program(HYPERC_WASM_OPT wasm-opt REQUIRED)
find_program(HYPERC_NODE_JS node REQUIRED)
include(cmake/hyperc.cmake)

add_subdirectory(examples)
add_subdirectory(tests/wasm)
add_subdirectory(tests/procs)
add_subdirectory(bench/wasm)
