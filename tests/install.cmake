# Installation and link-time namespace tests (not in sanitizer or fuzz builds, which build
# no shared library and whose instrumentation adds symbols of its own).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET dmar_shared AND TARGET dmarposix AND Python3_FOUND)
  add_test(NAME install_symbols
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/check_symbols.py
                   ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR}/include)
  add_test(NAME install_and_build_example
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/install_check.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(install_and_build_example PROPERTIES TIMEOUT 300
                       ENVIRONMENT "CC=${CMAKE_C_COMPILER}")
endif()
