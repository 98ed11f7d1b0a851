/*
 * isr.S - interrupt entry stubs: vectors 0-31 (exceptions, named stubs) and 32-255
 * (external interrupts: the 8259's PIT tick that drives the watchdog, and whatever the
 * local APIC delivers: MSIs, IOAPIC pins, its spurious vector). Each stub pushes a
 * uniform frame and calls trap_dispatch().
 */
	.text
	.code64

.macro STUB vec, has_error
	.globl isr_\vec
isr_\vec:
	.if \has_error == 0
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm

	STUB 0, 0
	STUB 1, 0
	STUB 2, 0
	STUB 3, 0
	STUB 4, 0
	STUB 5, 0
	STUB 6, 0
	STUB 7, 0
	STUB 8, 1
	STUB 9, 0
	STUB 10, 1
	STUB 11, 1
	STUB 12, 1
	STUB 13, 1
	STUB 14, 1
	STUB 15, 0
	STUB 16, 0
	STUB 17, 1
	STUB 18, 0
	STUB 19, 0
	STUB 20, 0
	STUB 21, 1
	STUB 22, 0
	STUB 23, 0
	STUB 24, 0
	STUB 25, 0
	STUB 26, 0
	STUB 27, 0
	STUB 28, 0
	STUB 29, 1
	STUB 30, 1
	STUB 31, 0

/* Vectors 32..255: one 16-byte stub each, so that vector v's entry is at
 * isr_external + (v - 32) * 16 (pushq imm32 + pushq imm32 + jmp rel32 is 15 bytes). */
	.balign 16
	.globl isr_external
isr_external:
	.set vec, 32
	.rept 224
	.balign 16
	pushq $0
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	movq %rsp, %rbx
	andq $-16, %rsp
	cld
	call trap_dispatch
	movq %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

	.section .rodata
	.align 8
	.globl isr_table
isr_table:
	.quad isr_0, isr_1, isr_2, isr_3, isr_4, isr_5, isr_6, isr_7
	.quad isr_8, isr_9, isr_10, isr_11, isr_12, isr_13, isr_14, isr_15
	.quad isr_16, isr_17, isr_18, isr_19, isr_20, isr_21, isr_22, isr_23
	.quad isr_24, isr_25, isr_26, isr_27, isr_28, isr_29, isr_30, isr_31
	.section .note.GNU-stack, "", @progbits
