# libFuzzer targets (-DKGM_FUZZ=ON, clang only). Each tests/fuzz_NAME.c is one target,
# instrumented together with libkgmeta, and one ctest test fuzz-NAME that runs a fixed number
# of inputs with a fixed seed from the seeds in tests/fuzz/NAME/ and fails on any crash, hang
# (-timeout) or sanitizer report. The fixed seed keeps CI reproducible (a random seed once
# found a real bug in CI, and a test must not pass or fail by luck); explore by hand with
# `./build-asan/tests/fuzz_NAME -max_total_time=600 CORPUS tests/fuzz/NAME` and add every
# crash input to tests/fuzz/NAME/. The files are not named test_*.c, so the cmocka glob skips them.
if(KGM_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "KGM_FUZZ=ON needs clang (CC=clang), not ${CMAKE_C_COMPILER_ID}")
  endif()
  target_compile_options(kgmeta PRIVATE -fsanitize=fuzzer-no-link)
  set(KGM_FUZZ_RUNS 20000 CACHE STRING "inputs each fuzz test runs under ctest")
  set(KGM_FUZZ_SEED 1 CACHE STRING "libFuzzer seed of the ctest fuzz runs")
  file(GLOB KGM_FUZZERS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_*.c)
  foreach(src ${KGM_FUZZERS})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "^fuzz_" "" short ${name})
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE kgmeta -fsanitize=fuzzer)
    set(corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz-${short}-corpus)
    file(MAKE_DIRECTORY ${corpus})
    add_test(NAME fuzz-${short}
      COMMAND ${name} -seed=${KGM_FUZZ_SEED} -runs=${KGM_FUZZ_RUNS} -max_total_time=90
              -timeout=10 -rss_limit_mb=2048
              ${corpus} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${short})
    set_tests_properties(fuzz-${short} PROPERTIES TIMEOUT 120
      ENVIRONMENT "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fuzz/lsan.supp")
  endforeach()
endif()
