# ACPI DMAR script tests: dmarctl as a user sees it, and the iasl cross-check of the
# parser over the corpus (skips, exit 77, without the corpus or iasl).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET dmarctl AND Python3_FOUND)
  add_test(NAME acpi_dmarctl
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/dmarctl_check.py
                   $<TARGET_FILE:dmarctl>)
  set_tests_properties(acpi_dmarctl PROPERTIES TIMEOUT 120)
  # Runs in every build, the sanitizer one too (there its 368 dmarctl runs take ~50 s).
  add_test(NAME acpi_iasl_crosscheck
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/acpi_iasl_check.py
                   $<TARGET_FILE:dmarctl> ${DMAR_CORPUS})
  set_tests_properties(acpi_iasl_crosscheck PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
