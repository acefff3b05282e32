# Part of the native build: the wasm32 tools and the wasm32 sub-build.
find_program(HYPERC_WASM_CLANG NAMES clang-14)
find_program(HYPERC_WASM_OPT wasm-opt)
find_program(HYPERC_NODE_JS node)
find_program(HYPERC_NPM npm)
if(HYPERC_WASM_CLANG AND HYPERC_WASM_OPT AND HYPERC_NODE_JS AND HYPERC_NPM
   AND EXISTS /usr/include/wasm32-wasi/stdio.h)
  set(wasm_default ON)
else()
  set(wasm_default OFF)
endif()
option(HYPERC_WASM "Build the wasm32 target (components) too" ${wasm_default})
if(NOT HYPERC_WASM)
  message(STATUS "hyperc: wasm32 target off (needs clang-14, wasi-libc, "
          "binaryen, node and npm: scripts/setup.sh)")
  return()
endif()

# The tools: copied into wasm/, packages installed beside them by npm ci
# (again only when package-lock.json changed).
set(tools ${CMAKE_BINARY_DIR}/wasm)
set(tool_files package.json package-lock.json componentize.mjs host.mjs load.mjs abi.mjs inspect.mjs
    translate.mjs
    wit/hyperware.wit wit/wasi.wit wit/hyperc.wit)
set(tool_outs)
foreach(f IN LISTS tool_files)
  add_custom_command(OUTPUT ${tools}/${f}
    COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_SOURCE_DIR}/src/wasm/${f} ${tools}/${f}
    DEPENDS ${CMAKE_SOURCE_DIR}/src/wasm/${f})
  list(APPEND tool_outs ${tools}/${f})
endforeach()
add_custom_command(OUTPUT ${tools}/node_modules/.stamp
  COMMAND ${HYPERC_NPM} ci --no-audit --no-fund --loglevel=error
  COMMAND ${CMAKE_COMMAND} -E touch ${tools}/node_modules/.stamp
  DEPENDS ${tools}/package.json ${tools}/package-lock.json
  WORKING_DIRECTORY ${tools}
  COMMENT "npm ci: the wasm tools' packages")
add_custom_target(wasm_tools ALL DEPENDS ${tool_outs} ${tools}/node_modules/.stamp)
# The host's end of a shared-memory link (src/wasm/link_addon.c): a
# Node-API addon beside host.mjs, built from the worker's own link.c and
# binding (binding.c, lane_table.c, prompt.c, with their codec) and
# libhyperc's arena (src/guest/arena.c, for a call's strings).  Node-API's
# headers come with Node.js (nodesource) or Debian's libnode-dev; without
# them there is no addon and the node gives its hosts a socket.  Built
# from the sources, not from hyperc_wbinding: without the sanitizers (it is
# loaded into Node.js, which has no ASan runtime), with only what it uses
# kept.
get_filename_component(node_prefix ${HYPERC_NODE_JS} DIRECTORY)
get_filename_component(node_prefix ${node_prefix} DIRECTORY)
find_path(HYPERC_NODE_API_INCLUDE node_api.h
          HINTS ${node_prefix}/include/node /usr/include/node)
if(HYPERC_NODE_API_INCLUDE)
  add_library(hyperc_link MODULE ${CMAKE_SOURCE_DIR}/src/wasm/link_addon.c
              ${CMAKE_SOURCE_DIR}/src/wasm/link_cabi.c
              ${CMAKE_SOURCE_DIR}/src/wasm/cabi.c
              ${CMAKE_SOURCE_DIR}/src/worker/binding.c
              ${CMAKE_SOURCE_DIR}/src/worker/lane_table.c
              ${CMAKE_SOURCE_DIR}/src/worker/prompt.c
              ${CMAKE_SOURCE_DIR}/src/worker/proto.c
              ${CMAKE_SOURCE_DIR}/src/worker/link.c
              ${CMAKE_SOURCE_DIR}/src/worker/lane.c
              ${CMAKE_SOURCE_DIR}/src/common/common.c
              ${CMAKE_SOURCE_DIR}/src/common/abi_types.c
              ${CMAKE_SOURCE_DIR}/src/guest/arena.c)
  set_target_properties(hyperc_link PROPERTIES PREFIX "" SUFFIX ".node"
    LIBRARY_OUTPUT_DIRECTORY ${tools}
    COMPILE_OPTIONS "-Wall;-Wextra;-Werror;-Wno-unused-parameter;-Wstrict-prototypes;-Wshadow;-ffunction-sections;-fdata-sections"
    LINK_OPTIONS "-Wl,--gc-sections"
    C_VISIBILITY_PRESET hidden)
  target_compile_definitions(hyperc_link PRIVATE NODE_GYP_MODULE_NAME=hyperc_link)
  target_include_directories(hyperc_link PRIVATE ${CMAKE_SOURCE_DIR}/include)
  target_include_directories(hyperc_link SYSTEM PRIVATE ${HYPERC_NODE_API_INCLUDE})
  target_link_libraries(hyperc_link PRIVATE PkgConfig::MSGPACK PkgConfig::YAJL hyperc_msgpuck)
  add_dependencies(wasm_tools hyperc_link)
else()
  message(STATUS "hyperc: no Node-API headers (node_api.h; Debian: libnode-dev): "
          "the wasm host talks to the node over a socket")
endif()
# A component's code as native code (docs/wasm-native.md): translate.mjs
# turns a component's core module into C with Debian's wasm2c (wabt) and
# compiles it with this library, the adapter (component_entry.c: the entry
# point and the imports), cabi.c and wabt's runtime, into a shared object
# that hyperc-worker loads.  Position-independent, everything hidden but
# hwn_entry and the imports; no out-of-bounds signal handler of wabt's (the
# worker's fault handler reports such a fault as the crash it is).
find_program(HYPERC_WASM2C wasm2c)
set(HYPERC_WABT_RUNTIME /usr/share/wabt/wasm2c CACHE PATH "wabt's wasm2c runtime (wasm-rt-impl.c)")
if(HYPERC_WASM2C AND EXISTS ${HYPERC_WABT_RUNTIME}/wasm-rt-impl.c)
  add_library(hyperc_component STATIC ${CMAKE_SOURCE_DIR}/src/wasm/component_entry.c
              ${CMAKE_SOURCE_DIR}/src/wasm/cabi.c ${CMAKE_SOURCE_DIR}/src/guest/arena.c
              ${CMAKE_SOURCE_DIR}/src/common/abi_types.c ${CMAKE_SOURCE_DIR}/src/common/common.c
              ${HYPERC_WABT_RUNTIME}/wasm-rt-impl.c)
  set_target_properties(hyperc_component PROPERTIES POSITION_INDEPENDENT_CODE ON
    C_VISIBILITY_PRESET hidden ARCHIVE_OUTPUT_DIRECTORY ${tools})
  target_compile_definitions(hyperc_component PRIVATE WASM_RT_SKIP_SIGNAL_RECOVERY=1)
  # without the sanitizers, as the translated module it is linked with: a
  # component's shared object needs no sanitizer runtime from its worker
  if(HYPERC_SANITIZE OR HYPERC_TSAN)
    target_compile_options(hyperc_component PRIVATE -fno-sanitize=all)
  endif()
  target_include_directories(hyperc_component PRIVATE ${CMAKE_SOURCE_DIR}/include
                             ${HYPERC_WABT_RUNTIME})
  # wabt's runtime is not this project's: its own warnings are not errors
  # (and its traps go to component_entry.c's handler, which ends the
  # process, instead of a longjmp)
  set_source_files_properties(${HYPERC_WABT_RUNTIME}/wasm-rt-impl.c PROPERTIES
                              COMPILE_OPTIONS "-w;-include;${CMAKE_SOURCE_DIR}/src/wasm/wabt_trap.h"
                              COMPILE_DEFINITIONS "WASM_RT_TRAP_HANDLER=hcx_trap_handler")
  add_dependencies(wasm_tools hyperc_component)
else()
  message(STATUS "hyperc: no wasm2c (Debian: wabt): components run under V8 only")
endif()
# the node starts components with this host
target_compile_definitions(hyperc_node PRIVATE
  HYPERC_WASM_HOST_BUILD_PATH="${tools}/host.mjs")

# yajl's source, from Debian (deb-src is configured by scripts/setup.sh)
set(HYPERC_YAJL_SOURCE "" CACHE PATH "yajl's source tree (default: apt-get source yajl)")
if(NOT HYPERC_YAJL_SOURCE)
  set(srcdir ${CMAKE_BINARY_DIR}/debian-src)
  file(GLOB yajl_dirs ${srcdir}/yajl-*/src/yajl_parser.c)
  if(NOT yajl_dirs)
    file(MAKE_DIRECTORY ${srcdir})
    message(STATUS "hyperc: apt-get source yajl (for the wasm32 guest runtime)")
    execute_process(COMMAND apt-get source -qq yajl
                    WORKING_DIRECTORY ${srcdir} RESULT_VARIABLE rc
                    OUTPUT_QUIET ERROR_VARIABLE apt_err)
    file(GLOB yajl_dirs ${srcdir}/yajl-*/src/yajl_parser.c)
    if(NOT yajl_dirs)
      message(FATAL_ERROR "hyperc: cannot get yajl's Debian source (${apt_err}); "
              "run scripts/setup.sh (it enables deb-src), or set HYPERC_YAJL_SOURCE, "
              "or -DHYPERC_WASM=OFF")
    endif()
  endif()
  list(GET yajl_dirs 0 first)
  get_filename_component(first ${first} DIRECTORY)
  get_filename_component(first ${first} DIRECTORY)
  set(HYPERC_YAJL_SOURCE ${first})
endif()

include(ExternalProject)
ExternalProject_Add(wasm32
  SOURCE_DIR ${CMAKE_SOURCE_DIR}
  BINARY_DIR ${CMAKE_BINARY_DIR}/wasm32
  CMAKE_ARGS -DCMAKE_TOOLCHAIN_FILE=${CMAKE_SOURCE_DIR}/cmake/wasm32-toolchain.cmake
             -DCMAKE_BUILD_TYPE=Release
             -DHYPERC_NATIVE_EXE=$<TARGET_FILE:hyperc>
             -DHYPERC_WASM_TOOLS=${tools}
             -DHYPERC_YAJL_SOURCE=${HYPERC_YAJL_SOURCE}
  BUILD_ALWAYS ON
  INSTALL_COMMAND ""
  DEPENDS hyperc wasm_tools)

# Installed: the wasm32 guest runtime, the toolchain file beside the CMake
# package (`hyperc build --target wasm32` finds it there), and the tools with
# their npm packages, where the node looks for the wasm host.
install(FILES ${CMAKE_BINARY_DIR}/wasm32/libhyperc_guest.a
              ${CMAKE_BINARY_DIR}/wasm32/libyajl_wasm32.a
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/wasm32-wasi/hyperc)
install(FILES ${CMAKE_SOURCE_DIR}/cmake/wasm32-toolchain.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hyperc)
install(DIRECTORY ${tools}/ DESTINATION ${CMAKE_INSTALL_DATADIR}/hyperc/wasm
        USE_SOURCE_PERMISSIONS PATTERN ".stamp" EXCLUDE)
target_compile_definitions(hyperc_node PRIVATE
  HYPERC_WASM_HOST_INSTALL_PATH="${CMAKE_INSTALL_FULL_DATADIR}/hyperc/wasm/host.mjs")
