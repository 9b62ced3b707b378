# The text-to-image pipeline, images (PNG via libpng) and SHA-256, included from the top-level
# CMakeLists.txt once the sdc library and the command exist.
find_package(PNG REQUIRED)
target_sources(sdc PRIVATE
  ${CMAKE_SOURCE_DIR}/src/pipeline.c
  ${CMAKE_SOURCE_DIR}/src/image.c
  ${CMAKE_SOURCE_DIR}/src/sha256.c)
target_link_libraries(sdc PUBLIC PNG::PNG)
target_sources(sdc_cli PRIVATE ${CMAKE_SOURCE_DIR}/tools/cli/cmd_generate.c)

# The networks are added to the library by their own modules (tests/*.cmake) as they land.
# pipeline.c calls the ones that are built: checked once everything is configured, from the
# library's final source list, so a header without its implementation never breaks the link.
function(sdc_pipeline_detect_networks)
  get_target_property(srcs sdc SOURCES)
  if(CMAKE_VERSION VERSION_LESS 3.19)  # no deferred call: judge by the files present
    set(srcs "")
    foreach(net clip unet vae)
      if(EXISTS ${CMAKE_SOURCE_DIR}/src/${net}.c)
        list(APPEND srcs ${CMAKE_SOURCE_DIR}/src/${net}.c)
      endif()
    endforeach()
  endif()
  set(defs "")
  foreach(net clip unet vae)
    string(TOUPPER ${net} NET)
    set(have 0)
    foreach(s ${srcs})
      if(s MATCHES "(^|/)src/${net}\\.c$")
        set(have 1)
      endif()
    endforeach()
    list(APPEND defs "SDC_HAVE_${NET}=${have}")
    if(NOT have)
      message(STATUS "sdc pipeline: src/${net}.c not in the build yet; text-to-image reports it missing")
    endif()
  endforeach()
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/pipeline.c PROPERTIES COMPILE_DEFINITIONS "${defs}")
endfunction()
if(CMAKE_VERSION VERSION_LESS 3.19)
  sdc_pipeline_detect_networks()
else()
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL sdc_pipeline_detect_networks)
endif()
