/* Internal to libhyperc: the coroutine context switch for x86_64 (System V
 * ABI).  See coro.h and coro_native.c.
 *
 * void hp__coro_switch(void **save_sp, void *to_sp)
 *   Pushes the callee-saved state on the current stack, stores the stack
 *   pointer in *save_sp, loads to_sp and pops the state saved there, then
 *   returns into the other context.  Saved, from the top down: rbp, rbx,
 *   r12-r15, then one 8-byte word with MXCSR (low 4 bytes) and the x87
 *   control word (next 2 bytes); their control bits are callee-saved.
 *   rcx (caller-saved) carries the return address.
 *
 * hp__coro_trampoline
 *   Where a new coroutine first "returns" to: its initial frame
 *   (coro_native.c) holds the argument in r12 and the C entry function in
 *   r13.  The entry never returns.
 *
 * With -fcf-protection the compiler defines __CET__: both entry points then
 * start with endbr64 and the object is marked IBT-compatible.  It is not
 * marked as shadow-stack compatible, since a switch returns to a different
 * address than the one its call pushed. */

#if defined(__CET__) && (__CET__ & 1)
#define HP_ENDBR endbr64
#else
#define HP_ENDBR
#endif

/* Into the other context: pop its return address and jump there.  A ret
 * would do the same, but the return-address predictor expects this call's
 * own return address and mispredicts on every switch (about a third of a
 * round trip's cost here).  With IBT an indirect jump must land on endbr64,
 * which return addresses lack: ret then. */
#if defined(__CET__) && (__CET__ & 1)
#define HP_RETURN ret
#else
#define HP_RETURN                                                              \
        popq    %rcx;                                                          \
        jmp     *%rcx
#endif

        .text
        .p2align 4
        .globl  hp__coro_switch
        .hidden hp__coro_switch
        .type   hp__coro_switch, @function
hp__coro_switch:
        .cfi_startproc
        HP_ENDBR
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        HP_RETURN
        .cfi_endproc
        .size   hp__coro_switch, .-hp__coro_switch

        .p2align 4
        .globl  hp__coro_trampoline
        .hidden hp__coro_trampoline
        .type   hp__coro_trampoline, @function
hp__coro_trampoline:
        .cfi_startproc
        .cfi_undefined rip      /* the outermost frame of a coroutine */
        HP_ENDBR
        movq    %r12, %rdi
        callq   *%r13
        ud2
        .cfi_endproc
        .size   hp__coro_trampoline, .-hp__coro_trampoline

#if defined(__CET__) && (__CET__ & 1)
        .section .note.gnu.property, "a"
        .p2align 3
        .long   4               /* name size */
        .long   16              /* descriptor size */
        .long   5               /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   0xc0000002      /* GNU_PROPERTY_X86_FEATURE_1_AND */
        .long   4
        .long   1               /* GNU_PROPERTY_X86_FEATURE_1_IBT */
        .p2align 3
#endif

        .section .note.GNU-stack, "", @progbits
