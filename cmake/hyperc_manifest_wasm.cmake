# cmake -DMANIFEST=<pkg/manifest.json> -P hyperc_manifest_wasm.cmake: point
# each process_wasm_path of a package's manifest that names a shared object
# (/<name>.so) at the component (/<name>.wasm).
file(READ ${MANIFEST} json)
string(JSON n LENGTH "${json}")
if(n GREATER 0)
  math(EXPR last "${n} - 1")
  foreach(i RANGE ${last})
    string(JSON path GET "${json}" ${i} process_wasm_path)
    if(path MATCHES "^(.*)\\.so$")
      string(JSON json SET "${json}" ${i} process_wasm_path "\"${CMAKE_MATCH_1}.wasm\"")
    endif()
  endforeach()
endif()
file(WRITE ${MANIFEST} "${json}\n")
