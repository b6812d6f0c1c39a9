# Runs one shell script in batch mode and compares what it printed (standard output and
# error interleaved, in order) with NAME.out byte for byte.
# Inputs: KGMETA (program), SCRIPT (.kgm), EXPECT_FAIL (0/1), WORKDIR (made fresh).
# The script and the data files beside it (*.ttl, *.nt) are copied into WORKDIR and run
# there, so messages read "NAME.kgm:LINE:" and files the script writes stay inside it.
get_filename_component(dir ${SCRIPT} DIRECTORY)
get_filename_component(name ${SCRIPT} NAME_WE)
file(REMOVE_RECURSE ${WORKDIR})
file(MAKE_DIRECTORY ${WORKDIR})
file(GLOB data ${dir}/*.ttl ${dir}/*.nt)
file(COPY ${SCRIPT} ${data} DESTINATION ${WORKDIR})
set(ENV{KGMETA_RC} "")
set(ENV{KGMETA_HISTORY} "")
execute_process(COMMAND ${KGMETA} --no-rc -f ${name}.kgm
  WORKING_DIRECTORY ${WORKDIR} RESULT_VARIABLE status
  OUTPUT_FILE ${WORKDIR}/got.out ERROR_FILE ${WORKDIR}/got.out)
set(rerun "cd ${WORKDIR} && ${KGMETA} --no-rc -f ${name}.kgm")
if(EXPECT_FAIL AND NOT status EQUAL 1)
  message(FATAL_ERROR "${name}: expected exit status 1, got ${status}\nrerun: ${rerun}")
endif()
if(NOT EXPECT_FAIL AND NOT status EQUAL 0)
  message(FATAL_ERROR "${name}: expected exit status 0, got ${status}\nrerun: ${rerun}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORKDIR}/got.out ${dir}/${name}.out
  RESULT_VARIABLE differ)
if(differ)
  execute_process(COMMAND diff -u ${dir}/${name}.out ${WORKDIR}/got.out OUTPUT_VARIABLE d)
  message(FATAL_ERROR "${name}: output differs from ${name}.out\nrerun: ${rerun}\n${d}")
endif()
