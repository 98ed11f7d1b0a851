# `dmarctl explain` over real kernel fault lines (tests/data/fault_lines.tsv) and inputs
# built from their formats (explain_dmarctl, always), and the rows' checks against files
# of the real-table corpus (explain_dmarctl_tables: skipped, exit 77, without it).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET dmarctl AND Python3_FOUND)
  add_test(NAME explain_dmarctl
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/explain_check.py
                   $<TARGET_FILE:dmarctl>)
  set_tests_properties(explain_dmarctl PROPERTIES TIMEOUT 300)
  add_test(NAME explain_dmarctl_tables
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/explain_check.py
                   --tables $<TARGET_FILE:dmarctl> ${DMAR_CORPUS})
  set_tests_properties(explain_dmarctl_tables PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
