/*
 * _start for a static RV64 Linux user-mode program (qemu-riscv64-static, the xlate layer).
 *
 * The kernel (or the emulator) enters with the System V initial stack:
 *
 *     sp -> argc, argv[0..argc-1], NULL, envp[0..], NULL, auxv pairs ..., AT_NULL
 *
 * and no other register defined. We set gp (for linker relaxation of small data) and tp (the one
 * thread's TLS block, where picolibc keeps errno: the PT_TLS template itself, see link.ld), run the
 * constructors, and call exit(main(argc, argv, envp)). No floating point: lp64, no F/D.
 */
    .section .text.init.enter, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax             /* gp is not set yet: `la gp` must not become gp-relative */
    la      gp, __global_pointer$
    .option pop
    la      tp, __tls_base

    ld      s0, 0(sp)           /* argc */
    addi    s1, sp, 8           /* argv */
    slli    t0, s0, 3
    add     s2, s1, t0
    addi    s2, s2, 8           /* envp: past argv's NULL */
    andi    sp, sp, -16         /* the psABI wants 16-byte alignment at calls */

    call    __libc_init_array

    mv      a0, s0
    mv      a1, s1
    mv      a2, s2
    call    main
    call    exit                /* flushes stdout (via _exit) and never returns */
1:  j       1b
    .size _start, . - _start
