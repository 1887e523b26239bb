# SLIDESTREAM_SANITIZE=address|thread: the whole project instrumented for scripts/test-sanitize.sh
# (docs/RELIABILITY.md, "Sanitizers"). "address" is ASan with UBSan, "thread" is TSan.
# Third-party libraries stay uninstrumented; their inline header code in our objects is checked.
if(SLIDESTREAM_SANITIZE STREQUAL "address")
  set(slidestream_sanitize_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined)
elseif(SLIDESTREAM_SANITIZE STREQUAL "thread")
  set(slidestream_sanitize_flags -fsanitize=thread)
else()
  message(FATAL_ERROR "SLIDESTREAM_SANITIZE is '${SLIDESTREAM_SANITIZE}'; use address or thread")
endif()
add_compile_options(${slidestream_sanitize_flags} -fno-omit-frame-pointer)
add_link_options(${slidestream_sanitize_flags})
# GCC's -Wmaybe-uninitialized gives false positives under sanitizer instrumentation (it inlines
# differently); the normal build keeps the warning as an error.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  add_compile_options(-Wno-maybe-uninitialized)
endif()
