# `dmarctl explain` over real kernel fault lines (tests/data/fault_lines.tsv) and inputs
# built from their formats; the checks against real-table corpus files report themselves
# skipped when the corpus is absent, the rest still runs.
find_package(Python3 COMPONENTS Interpreter)
if(TARGET dmarctl AND Python3_FOUND)
  add_test(NAME explain_dmarctl
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/explain_check.py
                   $<TARGET_FILE:dmarctl> ${DMAR_CORPUS})
  set_tests_properties(explain_dmarctl PROPERTIES TIMEOUT 300)
endif()
