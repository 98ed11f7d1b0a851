# The QEMU matrix (scripts/qemu-matrix.sh): the bare-metal kernel under QEMU's VT-d model
# in several configurations. Registered whenever the kernel is built; the script exits
# 77 (skipped) when qemu-system-x86_64 is not installed. scripts/check.sh leaves this
# test out and runs the script itself, to count each configuration's TAP results.
if(DMAR_KERNEL AND NOT DMAR_SANITIZE AND NOT DMAR_FUZZ AND
   EXISTS ${CMAKE_SOURCE_DIR}/kernel/CMakeLists.txt)
  add_test(NAME qemu_matrix
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/qemu-matrix.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(qemu_matrix PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900)
endif()
