# Helpers to build hyperc processes and packages.

# hyperc_add_process(<target> <sources>...): a native process, a shared object
# that links the guest runtime statically and exports only hwn_entry.
function(hyperc_add_process target)
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE hyperc_guest)
  set_target_properties(${target} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
endfunction()

# hyperc_add_package(<name> SOURCE_DIR <dir> PROCESSES <targets>...):
# assemble ${CMAKE_BINARY_DIR}/packages/<name> in Hyperware's layout from
# <dir>/metadata.json, <dir>/pkg/* and the built processes (pkg/<target>.so).
function(hyperc_add_package name)
  cmake_parse_arguments(P "" "SOURCE_DIR" "PROCESSES" ${ARGN})
  set(out ${CMAKE_BINARY_DIR}/packages/${name})
  file(GLOB_RECURSE pkg_files CONFIGURE_DEPENDS ${P_SOURCE_DIR}/pkg/*)
  set(cmds)
  foreach(p IN LISTS P_PROCESSES)
    list(APPEND cmds COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:${p}> ${out}/pkg/)
  endforeach()
  add_custom_command(
    OUTPUT ${out}/.stamp
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}/pkg
    COMMAND ${CMAKE_COMMAND} -E copy ${P_SOURCE_DIR}/metadata.json ${out}/
    COMMAND ${CMAKE_COMMAND} -E copy_directory ${P_SOURCE_DIR}/pkg ${out}/pkg
    ${cmds}
    COMMAND ${CMAKE_COMMAND} -E touch ${out}/.stamp
    DEPENDS ${P_SOURCE_DIR}/metadata.json ${pkg_files} ${P_PROCESSES}
    COMMENT "Assembling package ${name}")
  add_custom_target(package_${name} ALL DEPENDS ${out}/.stamp)
endfunction()
