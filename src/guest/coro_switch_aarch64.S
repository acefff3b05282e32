/* Internal to libhyperc: the coroutine context switch for aarch64 (AAPCS64).
 * See coro.h and coro_native.c.
 *
 * void hp__coro_switch(void **save_sp, void *to_sp)
 *   Saves the callee-saved state in a 176-byte block on the current stack,
 *   stores the stack pointer in *save_sp, loads to_sp and restores the block
 *   saved there, then returns (to the restored lr) into the other context.
 *   Block layout (offsets): x19-x28 at 0-79, x29 (fp) at 80, x30 (lr) at 88,
 *   d8-d15 at 96-159, FPCR at 160.  FPCR is written back only when it
 *   differs, as writing it can be slow.
 *
 * hp__coro_trampoline
 *   Where a new coroutine first returns to: its initial block
 *   (coro_native.c) holds the argument in x19 and the C entry function in
 *   x20.  The entry never returns.
 *
 * With branch protection (-mbranch-protection=bti) both entry points start
 * with a BTI landing pad and the object is marked BTI-compatible. */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define HP_BTI_C hint #34
#else
#define HP_BTI_C
#endif

        .text
        .p2align 4
        .globl  hp__coro_switch
        .hidden hp__coro_switch
        .type   hp__coro_switch, %function
hp__coro_switch:
        .cfi_startproc
        HP_BTI_C
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x10, sp
        str     x10, [x0]
        mov     sp, x1
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldr     x10, [sp, #160]
        cmp     x9, x10
        b.eq    1f
        msr     fpcr, x10
1:      add     sp, sp, #176
        ret
        .cfi_endproc
        .size   hp__coro_switch, .-hp__coro_switch

        .p2align 4
        .globl  hp__coro_trampoline
        .hidden hp__coro_trampoline
        .type   hp__coro_trampoline, %function
hp__coro_trampoline:
        .cfi_startproc
        .cfi_undefined x30      /* the outermost frame of a coroutine */
        HP_BTI_C
        mov     x0, x19
        blr     x20
        brk     #0
        .cfi_endproc
        .size   hp__coro_trampoline, .-hp__coro_trampoline

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
        .section .note.gnu.property, "a"
        .p2align 3
        .long   4               /* name size */
        .long   16              /* descriptor size */
        .long   5               /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   0xc0000000      /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
        .long   4
        .long   1               /* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
        .p2align 3
#endif

        .section .note.GNU-stack, "", %progbits
