/*
 * smp_trampoline.S - where an application processor starts: smp.c copies this code to
 * SMP_TRAMPOLINE_PA (0x8000) and sends a SIPI with vector 0x08, so the AP begins in real
 * mode at CS:IP = 0x0800:0000. It loads a GDT of its own (kept in the trampoline page),
 * enters 32-bit protected mode, turns on PAE, the kernel's page tables (CR3), EFER.LME
 * and paging, far-jumps to 64-bit code and calls smp_ap_entry(percpu) on the stack the
 * bootstrap CPU left in the trampoline's data for this AP.
 *
 * The code is assembled for the address it is linked at but runs at 0x8000: every
 * absolute reference is written as TRAMP(label), its address in the copy. The GDT's
 * selectors match boot.S's (0x08 64-bit code, 0x10 data), which the IDT's gates name;
 * 0x18 is the 32-bit code segment of the way up.
 */
#define TRAMP_BASE 0x8000
#define TRAMP(x) (TRAMP_BASE + (x) - smp_trampoline_start)

	.section .rodata
	.code16
	.globl smp_trampoline_start, smp_trampoline_end
	.globl smp_trampoline_cr3, smp_trampoline_stack, smp_trampoline_arg
	.globl smp_trampoline_entry
	.balign 16
smp_trampoline_start:
	cli
	cld
	ljmp $0, $TRAMP(1f)          /* CS = 0: offsets are addresses */
1:	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	lgdtl TRAMP(tramp_gdt_ptr)
	movl %cr0, %eax
	orl $1, %eax                 /* CR0.PE */
	movl %eax, %cr0
	ljmpl $0x18, $TRAMP(pm32)

	.code32
pm32:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl %cr4, %eax
	orl $0x20, %eax              /* CR4.PAE */
	movl %eax, %cr4
	movl TRAMP(smp_trampoline_cr3), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx       /* EFER */
	rdmsr
	orl $0x100, %eax             /* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax        /* CR0.PG | CR0.PE */
	movl %eax, %cr0
	ljmpl $0x08, $TRAMP(lm64)

	.code64
lm64:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorw %ax, %ax
	movw %ax, %fs
	movw %ax, %gs
	movq TRAMP(smp_trampoline_stack), %rsp
	movq TRAMP(smp_trampoline_arg), %rdi
	movq TRAMP(smp_trampoline_entry), %rax
	xorq %rbp, %rbp
	call *%rax
2:	cli
	hlt
	jmp 2b

	.balign 16
tramp_gdt:
	.quad 0
	.quad 0x00af9a000000ffff     /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff     /* 0x10: data */
	.quad 0x00cf9a000000ffff     /* 0x18: 32-bit code */
tramp_gdt_end:
	.balign 8
tramp_gdt_ptr:
	.word tramp_gdt_end - tramp_gdt - 1
	.long TRAMP(tramp_gdt)
	.balign 8
	/* Filled by smp.c in the copy before each AP's SIPI. */
smp_trampoline_cr3:
	.quad 0
smp_trampoline_stack:
	.quad 0
smp_trampoline_arg:
	.quad 0
smp_trampoline_entry:
	.quad 0
smp_trampoline_end:
	.section .note.GNU-stack, "", @progbits
