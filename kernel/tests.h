/*
 * tests.h - the kernel's test list, in running order (tests.c), and the tests (test_*.c).
 */
#ifndef KERNEL_TESTS_H
#define KERNEL_TESTS_H

#include "ktest.h"

extern const struct ktest_def kernel_tests[];
extern const unsigned kernel_test_count;

void test_acpi_dmar_parsed(struct ktest *t);
void test_edu_dma_untranslated(struct ktest *t);

#endif
