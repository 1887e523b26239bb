# slidestream_warnings(TARGET): the project's own code builds with -Wall -Wextra (and -Werror).
function(slidestream_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
  if(SLIDESTREAM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# slidestream_add_module(NAME SOURCES ... [PUBLIC deps...] [PRIVATE deps...])
# A static library slidestream_<NAME>, installed and exported. Its public headers are
# include/<NAME>/slidestream/*.hpp; that folder is its only public include directory, so a
# module sees the headers of the modules it links and no others: an #include against the
# layering (docs/ARCHITECTURE.md) fails to compile.
function(slidestream_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC;PRIVATE" ${ARGN})
  set(target slidestream_${name})
  add_library(${target} STATIC ${ARG_SOURCES})
  set(headers ${PROJECT_SOURCE_DIR}/include/${name})
  if(EXISTS ${headers})
    target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${headers}>)
    install(DIRECTORY ${headers}/slidestream DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
  target_include_directories(${target} PUBLIC $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC} PRIVATE ${ARG_PRIVATE})
  slidestream_warnings(${target})
  # Every module is installed and exported (cmake/SlidestreamInstall.cmake): a static library's
  # private dependencies are still needed to link it.
  install(TARGETS ${target} EXPORT slidestreamTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
endfunction()
