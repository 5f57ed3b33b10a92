/*
 * A static Linux user-mode executable, as simple as the translation layer can load:
 *
 *   text  PT_LOAD R+X  at 0x10000 (with the ELF and program headers): code, read-only data
 *   smc   PT_LOAD RWX  page-aligned, only with -DXLATE_SMC: the "awx" .smc section that smc.c
 *                      writes instructions into
 *   data  PT_LOAD RW   page-aligned: .data, .sdata, TLS template, .sbss, .bss (NOBITS tail)
 *   tls   PT_TLS       the .tdata/.tbss template, used in place as the one thread's TLS block
 *
 * Every load address is fixed, nothing is relocated at run time, and .bss is simply the zero
 * tail (p_memsz > p_filesz) of the data segment. The program break starts after `_end`.
 *
 * Run through the C preprocessor first (vmassist.riscv does: `cpp -P -undef [-DXLATE_SMC]`), so
 * that a program without self-modifying code gets no empty RWX segment.
 */
OUTPUT_ARCH(riscv)
ENTRY(_start)

PHDRS
{
    text PT_LOAD FILEHDR PHDRS FLAGS(5);    /* R X */
#ifdef XLATE_SMC
    smc  PT_LOAD FLAGS(7);                  /* R W X */
#endif
    data PT_LOAD FLAGS(6);                  /* R W */
    tls  PT_TLS;
}

SECTIONS
{
    . = 0x10000 + SIZEOF_HEADERS;

    .text : {
        KEEP (*(.text.init.enter))
        *(.text.unlikely .text.unlikely.*)
        *(.text.startup .text.startup.*)
        *(.text .text.*)
    } :text

    .rodata : {
        *(.rodata .rodata.*)
        *(.srodata.cst16) *(.srodata.cst8) *(.srodata.cst4) *(.srodata.cst2)
        *(.srodata .srodata.*)
        *(.data.rel.ro .data.rel.ro.*)
        *(.got .got.*)
    } :text

    /* ALIGN outside the braces: an assignment to `.` inside an output section that has no
       input would make it a NOBITS section in the middle of the text segment. */
    .preinit_array : ALIGN(8) {
        PROVIDE_HIDDEN (__preinit_array_start = .);
        KEEP (*(.preinit_array))
        PROVIDE_HIDDEN (__preinit_array_end = .);
    } :text
    .init_array : ALIGN(8) {
        PROVIDE_HIDDEN (__init_array_start = .);
        KEEP (*(SORT_BY_INIT_PRIORITY(.init_array.*) SORT_BY_INIT_PRIORITY(.ctors.*)))
        KEEP (*(.init_array .ctors))
        PROVIDE_HIDDEN (__init_array_end = .);
    } :text
    .fini_array : ALIGN(8) {
        PROVIDE_HIDDEN (__fini_array_start = .);
        KEEP (*(SORT_BY_INIT_PRIORITY(.fini_array.*) SORT_BY_INIT_PRIORITY(.dtors.*)))
        KEEP (*(.fini_array .dtors))
        PROVIDE_HIDDEN (__fini_array_end = .);
    } :text

#ifdef XLATE_SMC
    /* Its own pages, so that only this buffer is writable and executable at once. */
    . = ALIGN(0x1000);
    .smc : {
        KEEP (*(.smc .smc.*))
    } :smc
#endif

    . = ALIGN(0x1000);
    .data : {
        *(.data .data.*)
        . = ALIGN(8);
        PROVIDE (__global_pointer$ = . + 0x800);
        *(.sdata .sdata.* .sdata2.*)
    } :data

    /* picolibc's errno lives here; crt0 points tp at __tls_base. RISC-V local-exec offsets
       are relative to the start of the TLS segment (no TCB in front). */
    .tdata : ALIGN(16) {
        *(.tdata .tdata.*)
    } :data :tls
    .tbss : {
        *(.tbss .tbss.*)
        *(.tcommon)
    } :data :tls
    PROVIDE (__tls_base = ADDR(.tdata));
    /* ld does not advance `.` across .tbss (other threads' blocks would be elsewhere); here
       the template is the live block, so give it its own bytes. */
    . = ADDR(.tbss) + SIZEOF(.tbss);

    .bss : {
        *(.sbss .sbss.*)
        *(.bss .bss.*)
        *(COMMON)
        . = ALIGN(16);
    } :data
    PROVIDE (_end = .);
    PROVIDE (end = .);

    .comment 0 : { *(.comment) }
    .riscv.attributes 0 : { KEEP (*(.riscv.attributes)) }
    /DISCARD/ : {
        *(.note .note.*)
        *(.eh_frame .eh_frame.*)
    }
}
