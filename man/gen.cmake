# gen.cmake - one man page from its scdoc source: ";include FILE" lines are replaced
# by FILE (shared option lists), @VAR@ by the build's values, then scdoc renders it.
# cmake -DIN=x.1.scd -DOUT=x.1 -DSCDOC=/usr/bin/scdoc -DMP_VERSION=.. -DMP_SYSCONF_FILE=..
get_filename_component(dir ${IN} DIRECTORY)
file(READ ${IN} raw)
# ';' separates CMake list items: mark the include lines without it first
string(REPLACE "\n;include " "\n@MP_INCLUDE@ " raw "${raw}")
string(REGEX MATCHALL "@MP_INCLUDE@ [^\n]+" incs "${raw}")
foreach(inc ${incs})
  string(REGEX REPLACE "^@MP_INCLUDE@ " "" name "${inc}")
  file(READ ${dir}/${name} part)
  string(REPLACE "${inc}\n" "${part}" raw "${raw}")
endforeach()
string(CONFIGURE "${raw}" raw @ONLY)
file(WRITE ${OUT}.scd "${raw}")
execute_process(COMMAND ${SCDOC} INPUT_FILE ${OUT}.scd OUTPUT_FILE ${OUT}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT})
  message(FATAL_ERROR "scdoc failed on ${IN}")
endif()
