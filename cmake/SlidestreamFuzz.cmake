# SLIDESTREAM_FUZZ: the libFuzzer build of tests/fuzz (scripts/fuzz.sh, docs/RELIABILITY.md).
# Every target of the project is compiled with ASan, UBSan and libFuzzer's coverage
# instrumentation (fuzzer-no-link); only the harnesses link libFuzzer itself (-fsanitize=fuzzer).
# Third-party libraries stay uninstrumented; their inline header code in our objects is checked.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SLIDESTREAM_FUZZ needs clang (libFuzzer), e.g. "
    "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ (scripts/fuzz.sh does this)")
endif()
# No recovery: a UBSan report must end the run so libFuzzer saves the input.
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                    -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
