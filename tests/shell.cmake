# Shell-level tests: each tests/shell/NAME.kgm runs in batch mode (kgmeta --no-rc -f) and
# its standard output and error must equal tests/shell/NAME.out byte for byte; a
# bad-NAME.kgm must also exit 1. The runner (tests/shell/run.cmake) prints the command to
# rerun and a diff on failure.

file(GLOB KGM_SHELL_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/shell/*.kgm)
foreach(script ${KGM_SHELL_SCRIPTS})
  get_filename_component(name ${script} NAME_WE)
  set(expect_fail 0)
  if(name MATCHES "^bad-")
    set(expect_fail 1)
  endif()
  add_test(NAME shell-${name}
    COMMAND ${CMAKE_COMMAND} -DKGMETA=$<TARGET_FILE:kgmeta-bin> -DSCRIPT=${script}
            -DEXPECT_FAIL=${expect_fail} -DWORKDIR=${CMAKE_CURRENT_BINARY_DIR}/shell-${name}
            -P ${CMAKE_CURRENT_SOURCE_DIR}/shell/run.cmake)
  set_tests_properties(shell-${name} PROPERTIES TIMEOUT 120)   # bounds for a loaded ASan build
endforeach()

# The demo must run clean start to end (its output is for people, not compared).
add_test(NAME shell-demo
  COMMAND $<TARGET_FILE:kgmeta-bin> --no-rc -f ${PROJECT_SOURCE_DIR}/datasets/demo.kgm
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(shell-demo PROPERTIES TIMEOUT 300)   # 2 s here, 52 s in CI's ASan build
