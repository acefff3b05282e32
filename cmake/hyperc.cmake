# Helpers to build hyperc processes and packages.  With HYPERC_WASM32 (the
# wasm32 toolchain file sets it) they build components and wasm packages.  They build with
# ${HYPERC_EXE} (the hyperc command's target) and ${HYPERC_GUEST} (the guest
# runtime's): set by the hyperc tree, or by find_package(hyperc).

# hyperc_add_process(<target> <sources>...): a native process on the raw ABI,
# a shared object that links libhyperc's entry part (${HYPERC_PROCESS_RUNTIME})
# and takes the rest of the runtime from the node that loads it; it exports
# hwn_entry and hwn_runtime_abi.
# hyperc_add_process(<target> HYPERPROCESS <src.c> [<more sources>...]): a
# hyperprocess: `hyperc gen --process` turns <src.c> (HYPERPROCESS(...) and
# annotated handlers) into the whole process, which is built as above.
function(hyperc_add_process target)
  cmake_parse_arguments(P "" "HYPERPROCESS" "" ${ARGN})
  set(hp_src)
  if(P_HYPERPROCESS)
    get_filename_component(src ${P_HYPERPROCESS} ABSOLUTE)
    set(gen ${CMAKE_CURRENT_BINARY_DIR}/${target}.process.c)
    # the generator reads the source as the compiler will: the target's
    # include directories (those of linked caller stubs included) and
    # definitions, each one argument whatever it holds (VERBATIM: a
    # definition such as SAVE=HP_SAVE_EVERY_N_MESSAGE(3) or NAME="a b"
    # reaches hyperc unchanged, not through the shell's hands)
    set(inc "$<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>")
    set(def "$<TARGET_PROPERTY:${target},COMPILE_DEFINITIONS>")
    add_custom_command(
      OUTPUT ${gen}
      COMMAND ${HYPERC_EXE} gen --process ${gen} --depfile ${gen}.d
              "$<$<BOOL:${inc}>:-I$<JOIN:${inc},;-I>>"
              "$<$<BOOL:${def}>:-D$<JOIN:${def},;-D>>" ${src}
      DEPENDS ${HYPERC_EXE} ${src}
      DEPFILE ${gen}.d
      COMMAND_EXPAND_LISTS
      VERBATIM
      COMMENT "hyperc gen ${P_HYPERPROCESS}")
    set(srcs ${gen} ${P_UNPARSED_ARGUMENTS})
    set(hp_src ${src})
  else()
    set(srcs ${ARGN})
  endif()
  if(HYPERC_WASM32)
    _hyperc_add_component(${target} ${srcs})
  else()
    add_library(${target} MODULE ${srcs})
  endif()
  if(hp_src)
    # its WIT goes to the package's api/ (hyperc_add_package)
    set_property(TARGET ${target} PROPERTY HYPERC_HYPERPROCESS ${hp_src})
  endif()
  if(HYPERC_WASM32)
    return()
  endif()
  # the entry point and the instance's state; the runtime's code is the
  # node's (or the worker's), which exports it
  if(NOT HYPERC_PROCESS_RUNTIME)
    set(HYPERC_PROCESS_RUNTIME ${HYPERC_GUEST})
  endif()
  target_link_libraries(${target} PRIVATE ${HYPERC_PROCESS_RUNTIME})
  # Each instance of a process maps a private copy of its code: leave out
  # what it does not use (the runtime is built in sections of a function
  # each), and the process's own unused functions.
  target_compile_options(${target} PRIVATE -ffunction-sections
                                           -fdata-sections)
  target_link_options(${target} PRIVATE -Wl,--gc-sections)
  # A crash report names the function, file and line (docs/node.md): with
  # no build type nor C flags chosen (`hyperc build` chooses none), the
  # optimizer and debug info, as a release build with its symbols (no
  # NDEBUG: the app's asserts stay)
  if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES AND
     NOT CMAKE_C_FLAGS)
    target_compile_options(${target} PRIVATE -O2 -g)
  endif()
  if(HYPERC_APP_FLAGS)
    target_compile_options(${target} PRIVATE ${HYPERC_APP_FLAGS})
    target_link_options(${target} PRIVATE ${HYPERC_APP_FLAGS})
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
endfunction()

# The wasm32 form of a process: the core module (<target>.core.wasm, the
# target itself), then Binaryen's asyncify (tasks unwind and rewind through
# every function that can reach a yield) and optimizer, then jco's
# componentize with the import check (src/wasm/componentize.mjs):
# <target>.wasm beside it, the file packages carry.
function(_hyperc_add_component target)
  add_executable(${target} ${ARGN})
  target_link_libraries(${target} PRIVATE ${HYPERC_GUEST})
  set_target_properties(${target} PROPERTIES SUFFIX .core.wasm)
  set(dir $<TARGET_FILE_DIR:${target}>)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${HYPERC_WASM_OPT} $<TARGET_FILE:${target}> --asyncify
            --pass-arg=asyncify-ignore-imports -O2 -g --strip-dwarf
            -o ${dir}/${target}.opt.wasm
    COMMAND ${HYPERC_NODE_JS} ${HYPERC_WASM_TOOLS}/componentize.mjs
            ${dir}/${target}.opt.wasm ${dir}/${target}.wasm
    COMMENT "Component ${target}.wasm"
    VERBATIM)
endfunction()

# hyperc_add_package(<name> SOURCE_DIR <dir> PROCESSES <targets>...):
# assemble ${CMAKE_BINARY_DIR}/packages/<name> in Hyperware's layout from
# <dir>/metadata.json, <dir>/pkg/* and the built processes (pkg/<target>.so).
# As kit does for a package's hyperapps, each hyperprocess of the package
# gets caller stubs (<target>_caller_utils, unless a target of that name
# exists) that every other process of the package links: a process calls
# another by including <iface>_caller_utils.h, nothing more to write.
function(hyperc_add_package name)
  cmake_parse_arguments(P "" "SOURCE_DIR" "PROCESSES" ${ARGN})
  set(out ${CMAKE_BINARY_DIR}/packages/${name})
  # Reading a source that includes other stubs needs them: its stubs are
  # generated after those of the processes before it in PROCESSES, and of
  # those that include no stubs themselves (no cycle).
  set(made)
  set(includers)
  foreach(p IN LISTS P_PROCESSES)
    get_property(hp_src TARGET ${p} PROPERTY HYPERC_HYPERPROCESS)
    if(hp_src AND NOT TARGET ${p}_caller_utils)
      hyperc_add_caller_utils(${p}_caller_utils ${hp_src})
      set_property(TARGET ${p}_caller_utils PROPERTY HYPERC_GEN_DEFINITIONS
                   "$<TARGET_PROPERTY:${p},COMPILE_DEFINITIONS>")
      list(APPEND made ${p})
      file(STRINGS ${hp_src} inc REGEX "#[ \t]*include[ \t]*[\"<][A-Za-z0-9_]+_caller_utils\\.h")
      if(inc)
        list(APPEND includers ${p})
      endif()
    endif()
  endforeach()
  foreach(p IN LISTS includers)
    list(FIND P_PROCESSES ${p} pi)
    foreach(q IN LISTS made)
      list(FIND P_PROCESSES ${q} qi)
      list(FIND includers ${q} q_includes)
      if(NOT q STREQUAL p AND (q_includes EQUAL -1 OR qi LESS pi))
        add_dependencies(${p}_caller_utils ${q}_caller_utils)
        set_property(TARGET ${p}_caller_utils APPEND PROPERTY
                     HYPERC_GEN_INCLUDES ${CMAKE_BINARY_DIR}/target/caller-utils/${q}_caller_utils)
      endif()
    endforeach()
  endforeach()
  foreach(p IN LISTS P_PROCESSES)
    get_property(hp_src TARGET ${p} PROPERTY HYPERC_HYPERPROCESS)
    if(NOT hp_src)
      continue()
    endif()
    foreach(q IN LISTS P_PROCESSES)
      get_property(q_src TARGET ${q} PROPERTY HYPERC_HYPERPROCESS)
      if(q_src AND NOT q STREQUAL p)
        target_link_libraries(${q} PRIVATE ${p}_caller_utils)
      endif()
    endforeach()
  endforeach()
  file(GLOB_RECURSE pkg_files CONFIGURE_DEPENDS ${P_SOURCE_DIR}/pkg/*)
  set(cmds)
  set(deps)
  foreach(p IN LISTS P_PROCESSES)
    # api/: the WIT of the package's hyperprocesses, as kit writes it
    get_property(hp_src TARGET ${p} PROPERTY HYPERC_HYPERPROCESS)
    if(hp_src)
      set(inc "$<TARGET_PROPERTY:${p},INCLUDE_DIRECTORIES>")
      set(def "$<TARGET_PROPERTY:${p},COMPILE_DEFINITIONS>")
      list(APPEND cmds COMMAND ${HYPERC_EXE} gen --wit ${out}/api
           "$<$<BOOL:${inc}>:-I$<JOIN:${inc},$<SEMICOLON>-I>>"
           "$<$<BOOL:${def}>:-D$<JOIN:${def},$<SEMICOLON>-D>>" ${hp_src})
      list(APPEND deps ${hp_src})
    endif()
    if(HYPERC_WASM32)
      list(APPEND cmds COMMAND ${CMAKE_COMMAND} -E copy
           $<TARGET_FILE_DIR:${p}>/${p}.wasm ${out}/pkg/)
    else()
      list(APPEND cmds COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:${p}> ${out}/pkg/)
    endif()
  endforeach()
  if(HYPERC_WASM32)
    # the manifest names the components: process_wasm_path /<p>.so -> .wasm
    list(APPEND cmds COMMAND ${CMAKE_COMMAND} -DMANIFEST=${out}/pkg/manifest.json
         -P ${_HYPERC_HELPERS_DIR}/hyperc_manifest_wasm.cmake)
  endif()
  add_custom_command(
    OUTPUT ${out}/.stamp
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}/pkg
    COMMAND ${CMAKE_COMMAND} -E copy ${P_SOURCE_DIR}/metadata.json ${out}/
    COMMAND ${CMAKE_COMMAND} -E copy_directory ${P_SOURCE_DIR}/pkg ${out}/pkg
    ${cmds}
    COMMAND ${CMAKE_COMMAND} -E touch ${out}/.stamp
    DEPENDS ${P_SOURCE_DIR}/metadata.json ${pkg_files} ${P_PROCESSES} ${deps}
    COMMAND_EXPAND_LISTS
    VERBATIM
    COMMENT "Assembling package ${name}")
  add_custom_target(package_${name} ALL DEPENDS ${out}/.stamp)
endfunction()

# hyperc_add_caller_utils(<lib> <hyperprocess source>): a static library of
# typed stubs for calling the process defined in <source>:
# <iface>_<fn>_local_rpc / _remote_rpc, declared in <iface>_caller_utils.h
# (the include directory, ${CMAKE_BINARY_DIR}/target/caller-utils/<lib>, as
# kit lays out target/caller-utils/, comes with the library).
function(hyperc_add_caller_utils lib src)
  get_filename_component(src ${src} ABSOLUTE)
  # kit's layout: target/caller-utils/ of the build tree
  set(dir ${CMAKE_BINARY_DIR}/target/caller-utils/${lib})
  # the folders of other stubs the source includes, and the process's
  # definitions (hyperc_add_package sets both)
  set(inc "$<TARGET_PROPERTY:${lib},HYPERC_GEN_INCLUDES>")
  set(def "$<GENEX_EVAL:$<TARGET_PROPERTY:${lib},HYPERC_GEN_DEFINITIONS>>")
  add_custom_command(
    OUTPUT ${dir}/caller_utils.c
    COMMAND ${HYPERC_EXE} gen --callers ${dir} --depfile ${dir}/caller_utils.d
            "$<$<BOOL:${inc}>:-I$<JOIN:${inc},;-I>>"
            "$<$<BOOL:${def}>:-D$<JOIN:${def},;-D>>" ${src}
    COMMAND_EXPAND_LISTS
    VERBATIM
    DEPENDS ${HYPERC_EXE} ${src}
    DEPFILE ${dir}/caller_utils.d
    COMMENT "hyperc gen --callers ${src}")
  add_library(${lib} STATIC ${dir}/caller_utils.c)
  target_include_directories(${lib} PUBLIC ${dir})
  if(HYPERC_WASM32 OR NOT HYPERC_PROCESS_RUNTIME)
    target_link_libraries(${lib} PUBLIC ${HYPERC_GUEST})
  else()
    target_link_libraries(${lib} PUBLIC ${HYPERC_PROCESS_RUNTIME})
  endif()
  set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON
                        C_VISIBILITY_PRESET hidden)
  # a process links the stubs it calls (hyperc_add_process: --gc-sections)
  if(NOT HYPERC_WASM32)
    target_compile_options(${lib} PRIVATE -ffunction-sections -fdata-sections)
  endif()
endfunction()

set(_HYPERC_HELPERS_DIR ${CMAKE_CURRENT_LIST_DIR})
