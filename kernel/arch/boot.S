/*
 * boot.S - multiboot v1 entry: 32-bit protected mode in, 64-bit long mode out.
 *
 * The loader jumps to _start with EAX = multiboot magic, EBX = physical address of the
 * multiboot information, paging off. We clear .bss, identity-map the low 4 GiB with
 * 2 MiB pages (vm.c later refines caching and maps RAM above 4 GiB), enable PAE, EFER.LME
 * and paging, load a 64-bit GDT and call kmain(magic, info).
 */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000003 /* bit0: page-aligned modules, bit1: memory map wanted */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .boot32, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	movl %eax, %esi
	movl %ebx, %ebp

	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	movl %esi, boot_magic
	movl %ebp, boot_info
	movl $boot_stack_top, %esp

	/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages. */
	movl $boot_pdpt, %eax
	orl $3, %eax
	movl %eax, boot_pml4
	movl $boot_pd, %eax
	orl $3, %eax
	xorl %ecx, %ecx
1:	movl %eax, boot_pdpt(,%ecx,8)
	addl $4096, %eax
	incl %ecx
	cmpl $4, %ecx
	jb 1b
	movl $0x83, %eax /* present, writable, 2 MiB page */
	xorl %ecx, %ecx
2:	movl %eax, boot_pd(,%ecx,8)
	addl $0x200000, %eax
	incl %ecx
	cmpl $2048, %ecx
	jb 2b

	movl %cr4, %eax
	orl $0x20, %eax /* CR4.PAE */
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx /* EFER */
	rdmsr
	orl $0x100, %eax /* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax /* CR0.PG | CR0.PE */
	movl %eax, %cr0
	lgdt boot_gdt_ptr
	ljmp $0x08, $long_entry

	.code64
long_entry:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorw %ax, %ax
	movw %ax, %fs
	movw %ax, %gs
	movq $boot_stack_top, %rsp
	xorq %rbp, %rbp
	movl boot_magic(%rip), %edi
	movl boot_info(%rip), %esi
	call kmain
3:	cli
	hlt
	jmp 3b

	.section .rodata
	.align 16
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff /* 0x10: data */
boot_gdt_end:
	.align 4
boot_gdt_ptr:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt

	.section .bss
	.align 4096
	.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096
boot_pd:
	.skip 4 * 4096
	.align 16
boot_stack:
	.skip 65536
	.globl boot_stack_top
boot_stack_top:
	.align 4
boot_magic:
	.long 0
boot_info:
	.long 0
	.section .note.GNU-stack, "", @progbits
