# End-to-end check of `scalecast backtest forecast` on a small trace:
# cmake -DSCALECAST=... -DTRACE=... -DOUT=... -P cli_test.cmake
execute_process(COMMAND ${SCALECAST} backtest forecast ${TRACE} --window 36000 --warmup 36000
                        --horizon 2 --csv ${OUT}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "exit ${rc}: ${err}")
endif()
foreach(want "horizon 2 step" "\nauto " "peer:yesterday" "peer:linreg-1h" "peer:hw-daily"
             "auto chose:")
  string(FIND "${out}" "${want}" at)
  if(at LESS 0)
    message(FATAL_ERROR "output lacks '${want}':\n${out}")
  endif()
endforeach()
file(STRINGS ${OUT} rows)
list(GET rows 0 header)
if(NOT header STREQUAL "ts,actual,forecast,lower,upper,model")
  message(FATAL_ERROR "bad csv header '${header}'")
endif()
list(LENGTH rows nrows)
if(nrows LESS 200)
  message(FATAL_ERROR "only ${nrows} csv rows")
endif()
# Errors: a missing file names it (exit 1); a bad option is a usage error (exit 2).
execute_process(COMMAND ${SCALECAST} backtest forecast ${TRACE}.absent
                RESULT_VARIABLE rc ERROR_VARIABLE err)
string(FIND "${err}" "week.csv.absent" at)
if(NOT rc EQUAL 1 OR at LESS 0)
  message(FATAL_ERROR "missing file: exit ${rc}, '${err}'")
endif()
execute_process(COMMAND ${SCALECAST} backtest forecast ${TRACE} --horizon 0
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "--horizon 0: exit ${rc}")
endif()
